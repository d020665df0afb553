//! How the proxy talks to a location's upstream, compiled at apply time:
//! `backend-protocol`, `proxy-ssl-*` (a rustls `ClientConfig`), `proxy-http-version`
//! and `proxy-next-upstream-timeout`.
//!
//! - `HTTP` (default): plain HTTP/1.1, nothing to compile.
//! - `HTTPS`: HTTP/1.1 over TLS, ALPN `http/1.1` only (as nginx's `proxy_pass https`).
//! - `AUTO_HTTP`: the client's scheme (nginx's `$scheme`): TLS for HTTPS clients.
//! - `GRPC`: HTTP/2 with prior knowledge (h2c); `GRPCS`: HTTP/2 over TLS, ALPN `h2`.
//! - `FCGI` is not spoken: the location answers 502 (see the parent module).
//!
//! TLS settings follow nginx and ingress-nginx: `proxy-ssl-verify` is off by default
//! (any certificate is accepted); on, the upstream's chain must lead to `ca.crt` of
//! `proxy-ssl-secret` within `proxy-ssl-verify-depth` intermediates and name
//! `proxy-ssl-name` (default: the endpoint's address, or its ExternalName host). SNI
//! is sent only with `proxy-ssl-server-name: on` (nginx's `proxy_ssl_server_name
//! off`), with the same name. `tls.crt`/`tls.key` of the Secret are presented as the
//! client certificate when the upstream asks for one. `proxy-ssl-protocols` keeps the
//! versions rustls speaks (TLSv1.2, TLSv1.3; older ones are reported); as in
//! ingress-nginx, the unset default is TLSv1.2 when a CA is given, and nginx's own
//! default (TLSv1.2 and TLSv1.3) otherwise. `proxy-ssl-ciphers` is mapped by
//! [`ciphers`]. A CA, certificate or key that does not parse makes the location
//! answer 503 with the reason (fail closed), even with verification off.
//!
//! Configurations are interned process-wide by their settings, so every location with
//! the same settings, in this snapshot and the next ones, shares one
//! [`UpstreamTls`]: its address identifies the upstream connections made with it in
//! the proxy's pools, and rustls' session cache survives configuration changes.
//! Nothing here runs per request.

mod ciphers;
mod verify;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use gangplank_model::policy::{BackendProtocol, ProxyHttpVersion, ProxySsl, TlsProtocol};
use gangplank_model::{GeneralConfig, Location};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

/// How to reach a location's upstream.
#[derive(Debug, Clone, Default)]
pub struct UpstreamSettings {
    /// The protocol and, for TLS, its client configuration.
    pub protocol: UpstreamProtocol,
    /// `proxy-http-version: 1.0`: HTTP/1 requests go out as HTTP/1.0 (no keep-alive).
    pub http10: bool,
    /// `proxy-next-upstream-timeout`: no new attempt starts after this much time
    /// since the first one; `None` is no limit.
    pub next_upstream_timeout: Option<Duration>,
}

/// `backend-protocol`, compiled.
#[derive(Debug, Clone, Default)]
pub enum UpstreamProtocol {
    /// Plain HTTP/1.1.
    #[default]
    Http,
    /// HTTP/1.1 over TLS.
    Https(Arc<UpstreamTls>),
    /// TLS (this configuration) for HTTPS clients, plain HTTP/1.1 for HTTP clients.
    AutoHttp(Arc<UpstreamTls>),
    /// HTTP/2 with prior knowledge, cleartext.
    Grpc,
    /// HTTP/2 over TLS.
    Grpcs(Arc<UpstreamTls>),
}

impl UpstreamProtocol {
    /// True for gRPC upstreams (HTTP/2).
    pub fn is_grpc(&self) -> bool {
        matches!(self, UpstreamProtocol::Grpc | UpstreamProtocol::Grpcs(_))
    }
}

/// A TLS client configuration for upstream connections, built once per distinct
/// setting.
pub struct UpstreamTls {
    config: Arc<ClientConfig>,
    name: Option<ServerName<'static>>,
    verify: bool,
    versions: Vec<TlsProtocol>,
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("name", &self.name)
            .field("verify", &self.verify)
            .field("versions", &self.versions)
            .field("sni", &self.config.enable_sni)
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl UpstreamTls {
    /// The rustls configuration (verification, client certificate, ALPN, SNI).
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// `proxy-ssl-name`: the name to verify and send as SNI instead of the endpoint's.
    pub fn server_name(&self) -> Option<&ServerName<'static>> {
        self.name.as_ref()
    }

    /// True when the upstream's certificate is verified.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    /// The TLS versions offered.
    pub fn versions(&self) -> &[TlsProtocol] {
        &self.versions
    }

    /// True when SNI is sent (`proxy-ssl-server-name`).
    pub fn sends_sni(&self) -> bool {
        self.config.enable_sni
    }
}

/// Compiles the upstream settings of `location`; `Err` is the reason the location
/// cannot be served (a CA, certificate or key that does not parse).
pub(super) fn compile(
    location: &Location,
    general: &GeneralConfig,
    warnings: &mut Vec<String>,
) -> Result<UpstreamSettings, String> {
    let proxy = &location.proxy;
    let next_upstream_timeout = proxy.next_upstream_timeout.map_or_else(
        || general.proxy_next_upstream_timeout(),
        |d| d.as_duration(),
    );
    let ssl = &location.proxy_ssl;
    let protocol = match location.backend_protocol {
        BackendProtocol::Http | BackendProtocol::Fcgi => UpstreamProtocol::Http,
        BackendProtocol::Https => UpstreamProtocol::Https(tls(ssl, false, warnings)?),
        BackendProtocol::AutoHttp => UpstreamProtocol::AutoHttp(tls(ssl, false, warnings)?),
        BackendProtocol::Grpc => UpstreamProtocol::Grpc,
        BackendProtocol::Grpcs => UpstreamProtocol::Grpcs(tls(ssl, true, warnings)?),
    };
    Ok(UpstreamSettings {
        protocol,
        http10: proxy
            .http_version
            .unwrap_or_else(|| general.proxy_http_version())
            == ProxyHttpVersion::Http10,
        next_upstream_timeout: (!next_upstream_timeout.is_zero()).then_some(next_upstream_timeout),
    })
}

/// The settings a client configuration is built from, normalised (what has no effect
/// is left at its default), so equal effects share one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TlsKey {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    ciphers: String,
    versions: Vec<TlsProtocol>,
    name: Option<String>,
    verify: bool,
    depth: u32,
    sni: bool,
    h2: bool,
}

/// The process-wide table of built configurations (weak: a configuration lives as long
/// as some snapshot uses it).
#[derive(Default)]
struct Interned {
    map: HashMap<TlsKey, Weak<UpstreamTls>>,
    /// Dead entries are dropped when the table reaches this size.
    prune_at: usize,
}

static INTERNED: LazyLock<Mutex<Interned>> = LazyLock::new(Mutex::default);

pub(super) fn tls(
    ssl: &ProxySsl,
    h2: bool,
    warnings: &mut Vec<String>,
) -> Result<Arc<UpstreamTls>, String> {
    let with_ca = ssl.ca_pem.is_some();
    let defaults = ProxySsl::default();
    let mut versions: Vec<TlsProtocol> = if !with_ca && ssl.protocols == defaults.protocols {
        vec![TlsProtocol::TlsV1_2, TlsProtocol::TlsV1_3]
    } else {
        ssl.protocols.clone()
    };
    let unspoken: Vec<String> = versions
        .iter()
        .filter(|p| !p.is_supported())
        .map(|p| format!("{p:?}"))
        .collect();
    if !unspoken.is_empty() {
        warnings.push(format!(
            "proxy-ssl-protocols: {} not spoken (TLSv1.2 and TLSv1.3 only)",
            unspoken.join(", ")
        ));
    }
    versions.retain(|p| p.is_supported());
    versions.sort();
    versions.dedup();
    let ciphers = ssl.ciphers().to_owned();
    let suites = ciphers::select(&ciphers, warnings);
    let key = TlsKey {
        ca: ssl.ca_pem.clone(),
        cert: ssl.cert_pem.clone(),
        key: ssl.key_pem.clone(),
        ciphers,
        versions,
        name: ssl.name.clone(),
        verify: ssl.verify,
        depth: if ssl.verify { ssl.verify_depth } else { 0 },
        sni: ssl.server_name,
        h2,
    };

    let mut interned = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = interned.map.get(&key).and_then(Weak::upgrade) {
        return Ok(existing);
    }
    let built = Arc::new(build(&key, suites)?);
    if interned.map.len() >= interned.prune_at {
        interned.map.retain(|_, w| w.strong_count() > 0);
        interned.prune_at = (interned.map.len() * 2).max(64);
    }
    interned.map.insert(key, Arc::downgrade(&built));
    Ok(built)
}

fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("proxy-ssl-secret {what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("proxy-ssl-secret {what}: no certificate"));
    }
    Ok(certs)
}

fn build(key: &TlsKey, suites: Vec<rustls::SupportedCipherSuite>) -> Result<UpstreamTls, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = suites;
    let algorithms = provider.signature_verification_algorithms;
    let versions: Vec<&'static SupportedProtocolVersion> = key
        .versions
        .iter()
        .filter_map(|p| match p {
            TlsProtocol::TlsV1_2 => Some(&rustls::version::TLS12),
            TlsProtocol::TlsV1_3 => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect();
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("proxy-ssl-protocols/-ciphers: {e}"))?;

    // The CA is checked even with verification off: a broken Secret is an error, as
    // nginx refuses a broken `proxy_ssl_trusted_certificate`.
    let mut roots = RootCertStore::empty();
    if let Some(ca) = &key.ca {
        for cert in certificates(ca, "ca.crt")? {
            roots
                .add(cert)
                .map_err(|e| format!("proxy-ssl-secret ca.crt: {e}"))?;
        }
    }
    let verifier: Arc<dyn ServerCertVerifier> = if key.verify {
        if roots.is_empty() {
            return Err("proxy-ssl-verify is on but there is no CA (ca.crt) to verify with".into());
        }
        Arc::new(verify::DepthLimited::new(roots, key.depth, algorithms))
    } else {
        Arc::new(verify::AcceptAny::new(algorithms))
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&key.cert, &key.key) {
        (Some(cert), Some(private)) => {
            let chain = certificates(cert, "tls.crt")?;
            let private = PrivateKeyDer::from_pem_slice(private.as_bytes())
                .map_err(|e| format!("proxy-ssl-secret tls.key: {e}"))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| format!("proxy-ssl-secret tls.crt/tls.key: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![if key.h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    config.enable_sni = key.sni;
    let name = match &key.name {
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|e| format!("proxy-ssl-name {name:?}: {e}"))?,
        ),
        None => None,
    };
    Ok(UpstreamTls {
        config: Arc::new(config),
        name,
        verify: key.verify,
        versions: key.versions.clone(),
    })
}

#[cfg(test)]
mod tests;
