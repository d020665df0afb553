# syntax=docker/dockerfile:1
#
# Gangplank container image: one static-ish binary (`gangplank`) on distroless.
# The same image runs both containers of the chart's Pod (`gangplank proxy` and
# `gangplank controller`), which talk over the admin socket in a shared emptyDir.
#
#   DOCKER_BUILDKIT=1 docker build -t ghcr.io/gangplank-ingress/gangplank:dev .
#
# BuildKit is required (cache mounts below). The cache mounts keep the cargo registry
# and the target directory between local builds; they are not part of any layer, so
# the final image never carries build artefacts.

# The workspace MSRV is 1.89; `1` follows the newest stable toolchain. Pin it with
# `--build-arg RUST_VERSION=1.89` for a reproducible toolchain.
ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# The whole workspace: cargo needs every member's manifest (xtask, e2e, benches) to
# resolve it, even though only the `gangplank` package is built. .dockerignore keeps
# target/, .git and the deployment files out of the context.
COPY . .
# --locked: build exactly Cargo.lock. The binary is copied out of the cache-mounted
# target directory inside the same RUN, because the mount is gone afterwards.
RUN --mount=type=cache,id=gangplank-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=gangplank-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=gangplank-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p gangplank \
 && install -D -m 0755 target/release/gangplank /out/gangplank

# distroless/cc: glibc, libgcc and CA certificates, no shell, no package manager.
# Debian 12 matches the builder's glibc. `:nonroot` runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/gangplank /usr/local/bin/gangplank
# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 65532:65532
# Unprivileged ports (the chart's Service maps 80/443 onto 8080/8443), proxy metrics
# and /healthz, controller metrics and /healthz.
EXPOSE 8080 8443 10254 10255
ENTRYPOINT ["/usr/local/bin/gangplank"]
