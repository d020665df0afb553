//! The one place that turns a validated configuration into the compiled form the proxy
//! uses. Parts that did not change are shared with the previous snapshot; backends and
//! certificates that did not change keep their compiled instance.

use std::sync::Arc;

use gangplank_model::tls::TlsError;

use crate::backends::BackendTable;
use crate::certificates::CertificateTable;
use crate::routes::RouteTable;
use crate::snapshot::{Snapshot, SourceConfig};

/// Builds the snapshot for `source`, reusing what is unchanged from `previous`.
pub fn compile(
    source: SourceConfig,
    previous: &Snapshot,
    version: u64,
    dynamic_lb_initialized: bool,
) -> Result<Snapshot, (String, TlsError)> {
    let backends_changed = !Arc::ptr_eq(&source.backends, &previous.source.backends);
    let servers_changed = !Arc::ptr_eq(&source.servers, &previous.source.servers);
    let ssl_changed = !Arc::ptr_eq(&source.ssl, &previous.source.ssl);
    // By value: the controller re-posts an unchanged ConfigMap with every sync.
    let general_changed = !Arc::ptr_eq(&source.general, &previous.source.general)
        && source.general != previous.source.general;

    let backends = if backends_changed {
        Arc::new(BackendTable::compile(
            &source.backends,
            Some(&previous.backends),
        ))
    } else {
        previous.backends.clone()
    };
    let certificates = if ssl_changed {
        Arc::new(CertificateTable::compile(
            &source.ssl,
            Some(&previous.certificates),
        )?)
    } else {
        previous.certificates.clone()
    };
    // Request policies depend on the general settings and on which hosts have a
    // certificate (HTTPS redirects, HSTS), so those changes recompile the routes too.
    let routes = if backends_changed || servers_changed || ssl_changed || general_changed {
        Arc::new(RouteTable::compile_with(
            &source.servers,
            &backends,
            &source.general,
            &certificates,
        ))
    } else {
        previous.routes.clone()
    };
    Ok(Snapshot {
        version,
        dynamic_lb_initialized,
        source,
        backends,
        routes,
        certificates,
    })
}
