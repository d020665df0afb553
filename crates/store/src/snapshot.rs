//! One immutable, versioned configuration and everything compiled from it.

use std::sync::Arc;

use gangplank_model::{Backend, Configuration, GeneralConfig, Server, SslConfiguration};

use crate::backends::BackendTable;
use crate::certificates::CertificateTable;
use crate::routes::RouteTable;

/// The configuration as it was posted, in parts that partial updates replace one at a
/// time (each part is shared, not copied, between snapshots that did not change it).
#[derive(Debug, Clone, Default)]
pub struct SourceConfig {
    /// `/configuration/backends`.
    pub backends: Arc<Vec<Backend>>,
    /// Virtual hosts and locations.
    pub servers: Arc<Vec<Server>>,
    /// `/configuration/servers`: certificates and the host mapping.
    pub ssl: Arc<SslConfiguration>,
    /// `/configuration/general`.
    pub general: Arc<GeneralConfig>,
}

/// A configuration snapshot: what every request of one moment is served from.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Monotonically increasing; 0 is the empty configuration before any change.
    pub version: u64,
    /// True once backends were posted (or restored from disk): ingress-nginx's
    /// `/is-dynamic-lb-initialized`.
    pub dynamic_lb_initialized: bool,
    /// The configuration as posted.
    pub source: SourceConfig,
    /// Backends by name, with endpoints parsed.
    pub backends: Arc<BackendTable>,
    /// Hosts and locations, compiled.
    pub routes: Arc<RouteTable>,
    /// Certificates, decoded, with the SNI lookup.
    pub certificates: Arc<CertificateTable>,
}

impl Snapshot {
    /// The whole configuration, as `GET /configuration` returns it.
    pub fn configuration(&self) -> Configuration {
        Configuration {
            backends: self.source.backends.as_ref().clone(),
            servers: self.source.servers.as_ref().clone(),
            ssl_configuration: self.source.ssl.as_ref().clone(),
            general: self.source.general.as_ref().clone(),
        }
    }
}
