//! Static settings of the data plane (flags), as opposed to the configuration snapshot.

use std::net::SocketAddr;
use std::time::Duration;

use crate::telemetry::{AccessLog, ConstLabels};

/// How the proxy listens and runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Plain HTTP listeners (HTTP/1.1 and h2c prior knowledge).
    pub http_listen: Vec<SocketAddr>,
    /// TLS listeners (HTTP/1.1 and HTTP/2 by ALPN), certificates chosen by SNI.
    pub https_listen: Vec<SocketAddr>,
    /// Worker threads; each has its own listener sockets (`SO_REUSEPORT`).
    pub workers: usize,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Addresses the proxy must never forward to (its own listeners, the admin TCP
    /// port): ingress-nginx's "attempted to proxy to self" protection.
    pub self_addresses: Vec<SocketAddr>,
    /// Access log format (or off).
    pub access_log: AccessLog,
    /// Constant labels of every metric.
    pub metric_labels: ConstLabels,
    /// `--enable-ssl-passthrough`: TLS listeners pipe the connections of hosts with
    /// `ssl-passthrough` to their backend unterminated ([`crate::passthrough`]).
    /// Off by default, as in ingress-nginx: reading the SNI first costs a little on
    /// every TLS connection.
    pub ssl_passthrough: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            http_listen: vec![SocketAddr::from(([0, 0, 0, 0], 80))],
            https_listen: vec![SocketAddr::from(([0, 0, 0, 0], 443))],
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            shutdown_grace: Duration::from_secs(30),
            self_addresses: Vec::new(),
            access_log: AccessLog::Text,
            metric_labels: ConstLabels::default(),
            ssl_passthrough: false,
        }
    }
}
