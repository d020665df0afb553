//! The admin/status API of Gangplank and its typed client.
//!
//! The API is ingress-nginx's internal status server, kept path for path so existing
//! scripts and tools work (Part A.1 of the contract):
//!
//! | path | methods | answer |
//! |---|---|---|
//! | `/healthz` | GET | 200, or 503 while draining |
//! | `/is-dynamic-lb-initialized` | GET | 200 `OK` once backends were posted or restored, else 500 |
//! | `/nginx_status` | GET | nginx stub_status text |
//! | `/configuration/backends` | GET, POST | the `Backend` array |
//! | `/configuration/general` | GET, POST | `GeneralConfig` |
//! | `/configuration/servers` | POST | certificates and host mapping (both historical shapes) |
//! | `/configuration/certs?hostname=H` | GET | the PEM mapped to exactly `H` |
//! | `/configuration` | GET, POST | the whole snapshot, `ETag`/`If-Match` versioned |
//!
//! Every POST body is decoded and validated before anything is applied; a bad body
//! gets 400 with `{"error": ..., "path": ...}` (413 above the body limit) and the
//! running configuration is untouched. Other methods get 405 with `Allow`.
//!
//! The server side ([`server`], feature `server`) binds a unix socket (default
//! [`DEFAULT_SOCKET`]) and optionally a loopback TCP port. The client side
//! ([`client::AdminClient`], feature `client`) is what the controller and
//! `gangplank ctl` use; it never needs the store.

pub mod api;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod server;

/// The socket path of ingress-nginx 0.25's docs, so old scripts work unchanged.
pub const DEFAULT_SOCKET: &str = "/tmp/nginx-status-server.sock";

/// Default request body limit: 21 MiB, as ingress-nginx v1.x.
pub const DEFAULT_BODY_LIMIT: usize = 21 * 1024 * 1024;

#[cfg(feature = "client")]
pub use client::{AdminClient, ClientError};
