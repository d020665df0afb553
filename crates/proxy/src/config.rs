//! Static settings of the data plane (flags), as opposed to the configuration snapshot.

use std::net::SocketAddr;
use std::time::Duration;

/// How the proxy listens and runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Plain HTTP listeners (HTTP/1.1 and h2c prior knowledge).
    pub http_listen: Vec<SocketAddr>,
    /// Worker threads; each has its own listener sockets (`SO_REUSEPORT`).
    pub workers: usize,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Addresses the proxy must never forward to (its own listeners, the admin TCP
    /// port): ingress-nginx's "attempted to proxy to self" protection.
    pub self_addresses: Vec<SocketAddr>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            http_listen: vec![SocketAddr::from(([0, 0, 0, 0], 80))],
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            shutdown_grace: Duration::from_secs(30),
            self_addresses: Vec::new(),
        }
    }
}
