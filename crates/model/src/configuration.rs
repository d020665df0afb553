//! `Configuration`: the whole snapshot the data plane serves from, as
//! `GET/POST /configuration` carry it.

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, validate_backends};
use crate::certificate::SslConfiguration;
use crate::general::GeneralConfig;
use crate::server::Server;
use crate::validate::{Path, Report, Validate};

/// Everything the proxy needs: backends, routing, certificates and global settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Configuration {
    /// Upstreams, as in `/configuration/backends`.
    #[serde(default)]
    pub backends: Vec<Backend>,
    /// Virtual hosts and their locations.
    #[serde(default)]
    pub servers: Vec<Server>,
    /// Certificates and the host -> certificate mapping, as in `/configuration/servers`.
    #[serde(default)]
    pub ssl_configuration: SslConfiguration,
    /// Global settings, as in `/configuration/general`.
    #[serde(default)]
    pub general: GeneralConfig,
}

impl Validate for Configuration {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        validate_backends(&self.backends, &path.field("backends"), report);
        validate_servers(&self.servers, &path.field("servers"), report);
        self.ssl_configuration
            .validate_at(&path.field("sslConfiguration"), report);
        self.general.validate_at(&path.field("general"), report);
    }
}

/// Validates every server, and that no host name (or alias) is served twice.
pub fn validate_servers(servers: &[Server], path: &Path<'_>, report: &mut Report) {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, server) in servers.iter().enumerate() {
        let at = path.index(i);
        server.validate_at(&at, report);
        let names = std::iter::once(&server.hostname).chain(server.aliases.iter());
        for name in names {
            if let Some(first) = seen.insert(name.to_ascii_lowercase(), i) {
                report.add(
                    &at.field("hostname"),
                    format!("host {name:?} is already served by the server at index {first}"),
                );
            }
        }
    }
}
