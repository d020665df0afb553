//! The data plane: accepts client traffic and forwards it to upstream endpoints
//! according to the current [`Snapshot`](gangplank_store::Snapshot) of the store.
//!
//! Request path, in order (one atomic load of the snapshot and one of its balancer
//! table per request; nothing is parsed or compiled here, only looked up):
//!
//! 1. [`worker`]: one OS thread per core, each with a current-thread tokio runtime and
//!    its own `SO_REUSEPORT` listener, so the kernel spreads connections and a request
//!    never crosses threads. HTTP/1.1 and HTTP/2 (prior knowledge) per connection.
//! 2. [`handler`]: host and path ([`path::normalize`]) -> route table -> location ->
//!    backend; 404 from the built-in default backend, 503 for a denied location or a
//!    backend without endpoints. Right after the location, [`policy`] enforces its
//!    annotations and the ConfigMap's request settings (access control, redirects,
//!    basic auth, CORS, body size, rewrites, headers), compiled by the store.
//! 3. [`balancers`]: the backend's balancer (shared by all workers, kept across
//!    snapshots while its endpoints do not change) picks an endpoint; canary routing
//!    picks the alternative backend first when its policy says so.
//! 4. [`upstream`]: a per-worker keep-alive pool connects (connect timeout), sends the
//!    request with the forwarded headers of [`headers`], and streams both bodies;
//!    connect failures are retried on another endpoint (`proxy-next-upstream`).
//!    A location with `mirror-target` also sends a fire-and-forget copy ([`mirror`]);
//!    an intercepted error status (`custom-http-errors`) is answered with the error
//!    backend's page, status kept ([`errors`]).
//! 5. [`telemetry`]: when the response body ends, the request's record is counted in
//!    the worker's metrics shard and queued for the access log thread.
//!
//! TLS listeners terminate TLS first ([`tls`]: certificate by SNI from the store).
//! With `--enable-ssl-passthrough`, they first read the ClientHello's SNI without
//! consuming it, and pipe the connections of `ssl-passthrough` hosts unterminated to
//! the host's backend ([`passthrough`]).
//!
//! What not to do: never take a lock shared between workers on the request path except
//! the balancer's own short critical sections, and never allocate per request what can
//! be prepared when the snapshot changes.

pub mod balancer;
pub mod balancers;
pub mod body;
pub mod calendar;
pub mod client_cert;
pub mod config;
pub mod dns;
pub mod drive;
pub mod errors;
pub mod handler;
pub mod headers;
pub mod listen;
pub mod metrics_http;
pub mod mirror;
pub mod pages;
pub mod passthrough;
pub mod path;
pub mod policy;
pub mod proxy_protocol;
pub mod telemetry;
pub mod tls;
pub mod upstream;
pub mod worker;

pub use config::ProxyConfig;
pub use worker::{Proxy, ProxyError};
