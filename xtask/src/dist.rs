//! `cargo xtask dist [--target TRIPLE] [--tag TAG] [--no-image]`: the release
//! artifacts.
//!
//! 1. `cargo build --release --locked -p gangplank` (with `--target` when given);
//! 2. the binary copied to `target/dist/gangplank-<version>-<target-triple>`, with
//!    `gangplank-<version>-<target-triple>.sha256` next to it (`sha256sum -c` format);
//! 3. when `docker` is on `PATH` and its daemon answers, the container image:
//!    `docker build -t ghcr.io/gangplank-ingress/gangplank:<version> .` (`--tag` sets
//!    another tag, `--no-image` skips it). Without Docker it says so and skips.
//!
//! `<version>` is the workspace version (`[workspace.package]` in `Cargo.toml`);
//! `<target-triple>` the `--target`, or the host's (`rustc -vV`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools;

/// The image repository `dist` tags.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/gangplank-ingress/gangplank";

const USAGE: &str = "usage: cargo xtask dist [--target TRIPLE] [--tag TAG] [--no-image]";

/// What `cargo xtask dist` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Options {
    /// `--target`: cross-compile for this triple.
    target: Option<String>,
    /// `--tag`: the image tag (default: the version).
    tag: Option<String>,
    /// `--no-image`: binary only.
    no_image: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} needs a value; {USAGE}"))
        };
        match flag {
            "--target" => options.target = Some(value("--target")?),
            "--tag" => options.tag = Some(value("--tag")?),
            "--no-image" if inline.is_none() => options.no_image = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unexpected argument {other:?}; {USAGE}")),
        }
    }
    Ok(options)
}

/// `version = "..."` of `[workspace.package]` in the workspace's Cargo.toml.
fn workspace_version(cargo_toml: &str) -> Option<String> {
    let mut in_section = false;
    for line in cargo_toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "version"
        {
            let value = value.trim();
            let value = value.split('#').next().unwrap_or(value).trim();
            return value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
        }
    }
    None
}

/// The `host:` line of `rustc -vV`.
fn host_triple(rustc_vv: &str) -> Option<String> {
    rustc_vv
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|triple| triple.trim().to_owned())
        .filter(|triple| !triple.is_empty())
}

/// `gangplank-<version>-<triple>`.
fn artifact_name(version: &str, triple: &str) -> String {
    format!("gangplank-{version}-{triple}")
}

/// Where cargo puts the release binary.
fn built_binary(target_dir: &Path, target: Option<&str>) -> PathBuf {
    match target {
        Some(triple) => target_dir.join(triple).join("release").join("gangplank"),
        None => target_dir.join("release").join("gangplank"),
    }
}

/// The `.sha256` file's line, as `sha256sum` writes it (two spaces: binary mode).
fn checksum_line(hex: &str, file_name: &str) -> String {
    format!("{hex}  {file_name}\n")
}

/// The image reference built for `tag`.
fn image_reference(tag: &str) -> String {
    format!("{IMAGE_REPOSITORY}:{tag}")
}

/// Runs the task.
pub fn run(args: &[String]) -> Result<(), String> {
    let options = parse_args(args)?;
    let root = tools::workspace_root()?;
    let cargo_toml = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("reading Cargo.toml: {e}"))?;
    let version =
        workspace_version(&cargo_toml).ok_or("no version in [workspace.package] of Cargo.toml")?;
    let triple = match &options.target {
        Some(triple) => triple.clone(),
        None => {
            let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
            let mut command = Command::new(rustc);
            command.arg("-vV");
            host_triple(&tools::output(command)?).ok_or("no host: line in `rustc -vV`")?
        }
    };

    let mut build = crate::cargo();
    build
        .current_dir(&root)
        .args(["build", "--release", "--locked", "-p", "gangplank"]);
    if let Some(target) = &options.target {
        build.args(["--target", target]);
    }
    crate::run(build)?;

    let target_dir = tools::target_dir(&root);
    let binary = built_binary(&target_dir, options.target.as_deref());
    let dist = target_dir.join("dist");
    std::fs::create_dir_all(&dist).map_err(|e| format!("creating {}: {e}", dist.display()))?;
    let name = artifact_name(&version, &triple);
    let artifact = dist.join(&name);
    std::fs::copy(&binary, &artifact).map_err(|e| {
        format!(
            "copying {} to {}: {e}",
            binary.display(),
            artifact.display()
        )
    })?;
    let bytes =
        std::fs::read(&artifact).map_err(|e| format!("reading {}: {e}", artifact.display()))?;
    let checksum = dist.join(format!("{name}.sha256"));
    std::fs::write(&checksum, checksum_line(&sha256_hex(&bytes), &name))
        .map_err(|e| format!("writing {}: {e}", checksum.display()))?;
    eprintln!(
        "xtask: {} ({} bytes) and {}",
        artifact.display(),
        bytes.len(),
        checksum.display()
    );

    let image = image_reference(options.tag.as_deref().unwrap_or(&version));
    if options.no_image {
        eprintln!("xtask: --no-image: not building {image}");
        return Ok(());
    }
    let Some(docker) = tools::find_program("docker") else {
        eprintln!(
            "xtask: docker is not on PATH: skipping the image {image} \
             (build it elsewhere with `docker build -t {image} .`)"
        );
        return Ok(());
    };
    let mut info = Command::new(&docker);
    info.args(["info", "--format", "{{.ServerVersion}}"]);
    if let Err(e) = tools::output(info) {
        eprintln!("xtask: the Docker daemon does not answer, skipping the image {image}: {e}");
        return Ok(());
    }
    let mut build = Command::new(&docker);
    build
        .current_dir(&root)
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "-t", &image, "."]);
    crate::run(build)?;
    eprintln!("xtask: built the image {image}");
    Ok(())
}

// ---------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), so the checksum needs no dependency and no external tool.
// ---------------------------------------------------------------------------------

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The SHA-256 digest of `data`, lower-case hex.
fn sha256_hex(data: &[u8]) -> String {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    // Padding: 0x80, zeros up to 56 mod 64, then the bit length (big endian).
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut tail = Vec::with_capacity(128);
    let full = data.len() - data.len() % 64;
    tail.extend_from_slice(&data[full..]);
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&bit_len.to_be_bytes());
    for block in data[..full].chunks_exact(64).chain(tail.chunks_exact(64)) {
        compress(&mut h, block);
    }
    h.iter().map(|word| format!("{word:08x}")).collect()
}

fn compress(h: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (i, word) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = hh
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        hh = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (state, value) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
        *state = state.wrapping_add(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&[]), Ok(Options::default()));
        assert_eq!(
            parse_args(&args(&[
                "--target",
                "aarch64-unknown-linux-gnu",
                "--tag=dev",
                "--no-image"
            ])),
            Ok(Options {
                target: Some("aarch64-unknown-linux-gnu".to_owned()),
                tag: Some("dev".to_owned()),
                no_image: true,
            })
        );
        assert_eq!(
            parse_args(&args(&["--target=x86_64-unknown-linux-musl"]))
                .unwrap()
                .target
                .as_deref(),
            Some("x86_64-unknown-linux-musl")
        );
        assert!(
            parse_args(&args(&["--tag"]))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse_args(&args(&["--tag="]))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse_args(&args(&["--no-image=yes"])).is_err());
        assert!(
            parse_args(&args(&["--release"]))
                .unwrap_err()
                .contains("usage")
        );
        assert!(parse_args(&args(&["-h"])).unwrap_err().starts_with("usage"));
    }

    #[test]
    fn version_from_the_workspace_manifest() {
        let toml = "[workspace]\nmembers = [\"a\"]\n\n[workspace.package]\n\
                    edition = \"2024\"\nversion = \"1.2.3\" # released\n\n\
                    [workspace.dependencies]\nversion = \"9\"\n";
        assert_eq!(workspace_version(toml).as_deref(), Some("1.2.3"));
        assert_eq!(
            workspace_version("[package]\nversion = \"1.0.0\"\n[workspace.package]\n"),
            None
        );
        // The real manifest has one.
        let root = tools::workspace_root().unwrap();
        let real = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(workspace_version(&real).is_some());
    }

    #[test]
    fn host_triple_from_rustc() {
        let vv = "rustc 1.89.0 (29483883e 2025-08-04)\nbinary: rustc\n\
                  host: x86_64-unknown-linux-gnu\nrelease: 1.89.0\n";
        assert_eq!(host_triple(vv).as_deref(), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(host_triple("rustc 1.89.0\n"), None);
    }

    #[test]
    fn paths_and_names() {
        let target = Path::new("/w/target");
        assert_eq!(
            built_binary(target, None),
            PathBuf::from("/w/target/release/gangplank")
        );
        assert_eq!(
            built_binary(target, Some("aarch64-unknown-linux-gnu")),
            PathBuf::from("/w/target/aarch64-unknown-linux-gnu/release/gangplank")
        );
        assert_eq!(
            artifact_name("0.1.0", "x86_64-unknown-linux-gnu"),
            "gangplank-0.1.0-x86_64-unknown-linux-gnu"
        );
        assert_eq!(checksum_line("ab", "f"), "ab  f\n");
        assert_eq!(
            image_reference("0.1.0"),
            "ghcr.io/gangplank-ingress/gangplank:0.1.0"
        );
    }

    #[test]
    fn sha256_known_answers() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Two blocks after padding (56 bytes of input).
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // Several full blocks plus a tail.
        assert_eq!(
            sha256_hex(&[b'a'; 1000]),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }
}
