//! TLS termination for the HTTPS listeners: the rustls [`ServerConfig`] they share and
//! the [`CertResolver`] that picks a certificate per handshake.
//!
//! Certificate selection follows ingress-nginx (Part B §3.12): the client's SNI goes to
//! [`CertificateTable::for_server_name`](gangplank_store::CertificateTable::for_server_name),
//! which applies lowercase, one trailing dot, exact host, one-level wildcard and the
//! default certificate (host `_`). When even that finds nothing, the handshake gets
//! the self-signed fallback certificate generated at startup (CN
//! `Gangplank Fake Certificate`, the counterpart of ingress-nginx's "Kubernetes
//! Ingress Controller Fake Certificate"). Every handshake loads the store's current
//! snapshot, so a certificate posted to `/configuration/servers` is served from the
//! next handshake on, without restart; connections already open keep theirs.
//!
//! Architecture invariant: the resolver never parses PEM. It only looks up what the
//! store compiled (and validated) when the configuration changed; a bad certificate is
//! refused at POST time, never discovered during a handshake.
//!
//! Protocol choices mirror ingress-nginx's defaults: TLS 1.2 and 1.3 only
//! (`ssl-protocols`), ECDHE with AEAD ciphers only (rustls' ring suites, i.e. the
//! `ssl-ciphers` default minus its DHE suites), an in-memory session cache
//! (`ssl-session-cache`), no session tickets (`ssl-session-tickets: false`), no
//! 0-RTT (`ssl-early-data: false`). ALPN offers `h2`, then `http/1.1`. Hosts with
//! `auth-tls-*` get a configuration of their own that requests a client certificate
//! ([`TlsTermination`], [`crate::client_cert`]).
//!
//! One deviation, from rustls: a server_name that is not a valid DNS name (such as
//! `hostname..`) is refused with an `illegal_parameter` alert before the resolver
//! runs, where ingress-nginx served the default certificate. An IP address sent as
//! SNI counts as no SNI, as upstream.
//!
//! What not to do: build one [`ServerConfig`] per process and share the `Arc` between
//! workers. Building one per worker would give each worker its own fallback
//! certificate and its own session cache, and a resuming client (whose connections
//! `SO_REUSEPORT` spreads over workers) would mostly miss.
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<gangplank_store::Store>, tcp: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
//! let config = gangplank_proxy::tls::server_config(store)?;
//! let acceptor = tokio_rustls::TlsAcceptor::from(config);
//! let tls = acceptor.accept(tcp).await?;
//! let h2 = gangplank_proxy::tls::negotiated_h2(&tls);
//! # let _ = h2;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use gangplank_store::Store;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};

/// Common name of the fallback certificate.
pub const FALLBACK_COMMON_NAME: &str = "Gangplank Fake Certificate";

/// ALPN protocols offered, in order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Sessions kept for resumption (TLS 1.2 session IDs and TLS 1.3 stateful tickets),
/// shared by all workers. rustls' default of 256 is sized for a client library; an
/// ingress sees thousands of clients. At a few hundred bytes per entry this is a few
/// MiB, below nginx's `ssl-session-cache-size` of 10m (about 40,000 sessions).
const SESSION_CACHE_ENTRIES: usize = 10_240;

/// Why the TLS configuration could not be built. Only happens at startup.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// rcgen could not create the fallback certificate.
    #[error("generating the fallback certificate: {0}")]
    FallbackCertificate(#[from] rcgen::Error),
    /// rustls refused the generated fallback key or certificate.
    #[error("loading the fallback certificate: {0}")]
    FallbackKey(#[source] rustls::Error),
    /// The crypto provider does not support the protocol versions asked for.
    #[error("configuring TLS protocol versions: {0}")]
    Protocol(#[source] rustls::Error),
}

/// Picks the certificate for each TLS handshake from the store's current snapshot,
/// falling back to the self-signed certificate generated when it was created.
///
/// A missing or unusable SNI (none sent, an IP address) selects the default
/// certificate (host `_`) or, without one, the fallback.
#[derive(Debug)]
pub struct CertResolver {
    store: Arc<Store>,
    fallback: Arc<CertifiedKey>,
}

impl CertResolver {
    /// A resolver over `store`, with a freshly generated fallback certificate.
    pub fn new(store: Arc<Store>) -> Result<CertResolver, TlsSetupError> {
        Ok(CertResolver {
            store,
            fallback: fallback_certificate(&provider())?,
        })
    }

    /// The self-signed certificate served when the store has none for a name.
    pub fn fallback(&self) -> &Arc<CertifiedKey> {
        &self.fallback
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let snapshot = self.store.load();
        let sni = client_hello.server_name();
        match snapshot.certificates.for_server_name(sni) {
            Some(compiled) => Some(compiled.certified_key.clone()),
            None => {
                // ingress-nginx logs this at ERR; per handshake, at a rate the client
                // chooses, that is a log flood, so it is a debug event here.
                tracing::debug!(
                    sni,
                    "no certificate for the server name, serving the fallback"
                );
                Some(self.fallback.clone())
            }
        }
    }
}

/// The rustls configuration of the HTTPS listeners: TLS 1.2 and 1.3 with the ring
/// provider, certificates from `store` through a [`CertResolver`], ALPN `h2` then
/// `http/1.1`, a shared in-memory session cache and no session tickets.
///
/// Call it once at startup and share the result between all workers (see the module
/// documentation).
pub fn server_config(store: Arc<Store>) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let resolver = Arc::new(CertResolver::new(store)?);
    build(resolver, None)
}

/// A configuration over `resolver`; with `client_auth`, one that requests client
/// certificates and resumes no sessions (a session made for another host, or before
/// the CA changed, must not skip the certificate).
fn build(
    resolver: Arc<CertResolver>,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let builder = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&TLS13, &TLS12])
        .map_err(TlsSetupError::Protocol)?;
    let with_client_auth = client_auth.is_some();
    let builder = match client_auth {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.session_storage = if with_client_auth {
        Arc::new(rustls::server::NoServerSessionStorage {})
    } else {
        ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES)
    };
    // The builder's ticketer never issues tickets (ingress-nginx's
    // `ssl-session-tickets: false`): resumption goes through the session cache only,
    // so no ticket key has to be rotated or shared. Early data stays off (0).
    debug_assert!(!config.ticketer.enabled());
    debug_assert_eq!(config.max_early_data_size, 0);
    Ok(Arc::new(config))
}

/// TLS termination for the HTTPS listeners: the shared configuration, and, for hosts
/// with `auth-tls-*`, a configuration that requests a client certificate. The host is
/// chosen from the ClientHello's SNI with the store's current snapshot (the route
/// table's host lookup: exact, one-label wildcard, default server).
///
/// Build one per process and clone it into the workers (clones share everything).
#[derive(Debug, Clone)]
pub struct TlsTermination {
    store: Arc<Store>,
    resolver: Arc<CertResolver>,
    shared: Arc<ServerConfig>,
}

/// A finished handshake and what it established about the client's certificate.
pub type Accepted<IO> = (
    tokio_rustls::server::TlsStream<IO>,
    Option<Arc<crate::client_cert::ClientCertificate>>,
);

impl TlsTermination {
    /// Generates the fallback certificate and the shared configuration.
    pub fn new(store: Arc<Store>) -> Result<TlsTermination, TlsSetupError> {
        let resolver = Arc::new(CertResolver::new(store.clone())?);
        let shared = build(resolver.clone(), None)?;
        Ok(TlsTermination {
            store,
            resolver,
            shared,
        })
    }

    /// The configuration of hosts without client authentication.
    pub fn shared_config(&self) -> &Arc<ServerConfig> {
        &self.shared
    }

    /// Reads the ClientHello, picks the configuration for its SNI and completes the
    /// handshake.
    pub async fn accept<IO>(&self, io: IO) -> std::io::Result<Accepted<IO>>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
        let client_auth = {
            let snapshot = self.store.load();
            let hello = start.client_hello();
            let sni = hello.server_name().unwrap_or("");
            snapshot.routes.server(sni).and_then(|server| {
                let auth = server.client_auth.clone()?;
                Some((server.hostname.to_ascii_lowercase(), auth))
            })
        };
        let Some((host, auth)) = client_auth else {
            let stream = start.into_stream(self.shared.clone()).await?;
            return Ok((stream, None));
        };
        let verifier = Arc::new(crate::client_cert::RecordingVerifier::new(&auth));
        let config = build(self.resolver.clone(), Some(verifier)).map_err(std::io::Error::other)?;
        let stream = start.into_stream(config).await?;
        let certificate = crate::client_cert::of_connection(&host, Some(&auth), &stream);
        Ok((stream, certificate))
    }
}

/// True when the client and server agreed on HTTP/2 through ALPN; the connection
/// should then be served as HTTP/2 from its first byte.
pub fn negotiated_h2<IO>(conn: &tokio_rustls::server::TlsStream<IO>) -> bool {
    conn.get_ref().1.alpn_protocol() == Some(b"h2".as_slice())
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A self-signed ECDSA P-256 server certificate named like ingress-nginx's fake one.
/// It uses rcgen's default validity (1975 to 4096): it is never trusted anyway, and
/// a fixed range cannot expire under a long-running process.
fn fallback_certificate(provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsSetupError> {
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, FALLBACK_COMMON_NAME);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let certificate = params.self_signed(&key_pair)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let certified_key = CertifiedKey::from_der(vec![certificate.der().clone()], key, provider)
        .map_err(TlsSetupError::FallbackKey)?;
    Ok(Arc::new(certified_key))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::SocketAddr;
    use std::time::Duration;

    use gangplank_model::SslConfiguration;
    use gangplank_store::Update;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, SignatureScheme};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;

    const PEM_COM: &str = concat!(
        include_str!("../../model/tests/fixtures/example.com.crt"),
        include_str!("../../model/tests/fixtures/example.com.key")
    );
    const PEM_ORG: &str = concat!(
        include_str!("../../model/tests/fixtures/rsa.example.org.crt"),
        include_str!("../../model/tests/fixtures/rsa.example.org.key")
    );
    const TIMEOUT: Duration = Duration::from_secs(10);

    fn ssl(certificates: &[(&str, &str)], servers: &[(&str, &str)]) -> SslConfiguration {
        SslConfiguration {
            certificates: certificates
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            servers: servers
                .iter()
                .map(|(h, u)| (h.to_string(), u.to_string()))
                .collect(),
        }
    }

    fn store(servers: &[(&str, &str)]) -> Arc<Store> {
        let store = Store::in_memory();
        store
            .apply(Update::Certificates(ssl(
                &[("com", PEM_COM), ("org", PEM_ORG)],
                servers,
            )))
            .unwrap();
        Arc::new(store)
    }

    /// The leaf DER the store compiled for `uid`.
    fn leaf(store: &Store, uid: &str) -> Vec<u8> {
        store
            .load()
            .certificates
            .get(uid)
            .unwrap()
            .certified_key
            .cert[0]
            .to_vec()
    }

    fn common_name(der: &[u8]) -> String {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        let cn = cert.subject().iter_common_name().next().unwrap();
        cn.as_str().unwrap().to_owned()
    }

    /// What the server saw of one connection.
    #[derive(Debug)]
    struct Served {
        h2: bool,
    }

    /// Accepts connections forever on 127.0.0.1, reporting each TLS accept.
    async fn serve(
        config: Arc<ServerConfig>,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<io::Result<Served>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let result = async {
                        let mut tls = acceptor.accept(tcp).await?;
                        let h2 = negotiated_h2(&tls);
                        tls.write_all(b"ok").await?;
                        tls.shutdown().await?;
                        Ok(Served { h2 })
                    }
                    .await;
                    let _ = tx.send(result);
                });
            }
        });
        (addr, rx)
    }

    /// Accepts any certificate (tests only) but still checks the handshake signature,
    /// so a served certificate whose key does not match would fail.
    #[derive(Debug)]
    struct AcceptAnyCertificate(CryptoProvider);

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    fn client_config(
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
        sni: bool,
    ) -> Arc<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.enable_sni = sni;
        Arc::new(config)
    }

    /// What the client saw of one connection.
    #[derive(Debug)]
    struct Seen {
        leaf: Vec<u8>,
        alpn: Option<Vec<u8>>,
        kind: Option<HandshakeKind>,
        version: Option<rustls::ProtocolVersion>,
    }

    /// One full connection: handshake, read the server's "ok" (which also consumes
    /// TLS 1.3 session tickets), clean close.
    async fn connect(addr: SocketAddr, config: Arc<ClientConfig>, name: &str) -> Seen {
        let run = async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from(name.to_owned()).unwrap();
            let mut tls = TlsConnector::from(config).connect(name, tcp).await.unwrap();
            let mut body = Vec::new();
            tls.read_to_end(&mut body).await.unwrap();
            assert_eq!(body, b"ok");
            let conn = tls.get_ref().1;
            Seen {
                leaf: conn.peer_certificates().unwrap()[0].to_vec(),
                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                kind: conn.handshake_kind(),
                version: conn.protocol_version(),
            }
        };
        tokio::time::timeout(TIMEOUT, run).await.unwrap()
    }

    async fn served(rx: &mut mpsc::UnboundedReceiver<io::Result<Served>>) -> io::Result<Served> {
        tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .unwrap()
            .unwrap()
    }

    fn tls13_h2() -> Arc<ClientConfig> {
        client_config(&[&TLS13], &[b"h2", b"http/1.1"], true)
    }

    #[tokio::test]
    async fn exact_and_wildcard_names_get_their_certificate() {
        let store = store(&[
            ("example.com", "com"),
            ("*.example.com", "com"),
            ("example.org", "org"),
        ]);
        let (addr, mut rx) = serve(server_config(store.clone()).unwrap()).await;
        for (name, uid) in [
            ("example.com", "com"),
            ("EXAMPLE.com", "com"),
            ("www.example.com", "com"),
            ("example.org", "org"),
        ] {
            let seen = connect(addr, tls13_h2(), name).await;
            assert_eq!(seen.leaf, leaf(&store, uid), "{name}");
            served(&mut rx).await.unwrap();
        }
        // One level only: `a.b.example.com` is not covered by `*.example.com`.
        let seen = connect(addr, tls13_h2(), "a.b.example.com").await;
        assert_eq!(common_name(&seen.leaf), FALLBACK_COMMON_NAME);
    }

    #[tokio::test]
    async fn unknown_or_missing_sni_gets_the_default_certificate() {
        let store = store(&[("example.com", "com"), ("_", "org")]);
        let (addr, _rx) = serve(server_config(store.clone()).unwrap()).await;
        let seen = connect(addr, tls13_h2(), "unknown.test").await;
        assert_eq!(seen.leaf, leaf(&store, "org"));
        let no_sni = client_config(&[&TLS13], &[], false);
        let seen = connect(addr, no_sni, "example.com").await;
        assert_eq!(seen.leaf, leaf(&store, "org"));
    }

    #[tokio::test]
    async fn without_a_default_certificate_the_fallback_is_served() {
        let store = store(&[("example.com", "com")]);
        let (addr, _rx) = serve(server_config(store).unwrap()).await;
        let first = connect(addr, tls13_h2(), "unknown.test").await;
        assert_eq!(common_name(&first.leaf), FALLBACK_COMMON_NAME);
        let no_sni = client_config(&[&TLS13], &[], false);
        let second = connect(addr, no_sni, "example.com").await;
        // Generated once: every handshake presents the same fallback certificate.
        assert_eq!(second.leaf, first.leaf);
        // An empty store: the fallback, over TLS 1.2 as well.
        let (addr, _rx) = serve(server_config(Arc::new(Store::in_memory())).unwrap()).await;
        let tls12 = client_config(&[&TLS12], &[], true);
        let seen = connect(addr, tls12, "example.com").await;
        assert_eq!(common_name(&seen.leaf), FALLBACK_COMMON_NAME);
        assert_eq!(seen.version, Some(rustls::ProtocolVersion::TLSv1_2));
    }

    #[test]
    fn the_fallback_certificate_is_self_signed_ecdsa_p256() {
        let resolver = CertResolver::new(Arc::new(Store::in_memory())).unwrap();
        let der = resolver.fallback().cert[0].to_vec();
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(common_name(&der), FALLBACK_COMMON_NAME);
        assert_eq!(cert.subject(), cert.issuer());
        assert_eq!(
            cert.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
        );
        assert_eq!(
            resolver.fallback().key.algorithm(),
            rustls::SignatureAlgorithm::ECDSA
        );
    }

    #[tokio::test]
    async fn certificate_changes_apply_to_the_next_handshake() {
        let store = store(&[]);
        store
            .apply(Update::Certificates(ssl(
                &[("rotating", PEM_COM)],
                &[("example.com", "rotating")],
            )))
            .unwrap();
        let (addr, _rx) = serve(server_config(store.clone()).unwrap()).await;
        let before = connect(addr, tls13_h2(), "example.com").await;
        assert_eq!(before.leaf, leaf(&store, "com"));

        // Same UID, new PEM (a renewed Secret).
        store
            .apply(Update::Certificates(ssl(&[("rotating", PEM_ORG)], &[])))
            .unwrap();
        let after = connect(addr, tls13_h2(), "example.com").await;
        assert_eq!(after.leaf, leaf(&store, "org"));

        // Mapping removed (`-1`): back to the fallback.
        store
            .apply(Update::Certificates(ssl(&[], &[("example.com", "-1")])))
            .unwrap();
        let removed = connect(addr, tls13_h2(), "example.com").await;
        assert_eq!(common_name(&removed.leaf), FALLBACK_COMMON_NAME);
    }

    #[tokio::test]
    async fn alpn_prefers_h2_and_falls_back_to_http1() {
        let (addr, mut rx) = serve(server_config(store(&[("_", "com")])).unwrap()).await;

        let seen = connect(addr, tls13_h2(), "example.com").await;
        assert_eq!(seen.alpn.as_deref(), Some(b"h2".as_slice()));
        assert!(served(&mut rx).await.unwrap().h2);

        let http1 = client_config(&[&TLS12], &[b"http/1.1"], true);
        let seen = connect(addr, http1, "example.com").await;
        assert_eq!(seen.alpn.as_deref(), Some(b"http/1.1".as_slice()));
        assert!(!served(&mut rx).await.unwrap().h2);

        let none = client_config(&[&TLS13], &[], true);
        let seen = connect(addr, none, "example.com").await;
        assert_eq!(seen.alpn, None);
        assert!(!served(&mut rx).await.unwrap().h2);
    }

    #[tokio::test]
    async fn sessions_resume_through_the_cache_without_tickets() {
        let config = server_config(store(&[("_", "com")])).unwrap();
        assert!(!config.ticketer.enabled());
        let (addr, _rx) = serve(config).await;
        for versions in [&[&TLS13], &[&TLS12]] {
            // One client config, so the second connection offers the first's session.
            let client = client_config(versions, &[b"h2"], true);
            let first = connect(addr, client.clone(), "example.com").await;
            assert_eq!(first.kind, Some(HandshakeKind::Full));
            let second = connect(addr, client, "example.com").await;
            assert_eq!(second.kind, Some(HandshakeKind::Resumed), "{versions:?}");
        }
    }

    // rustls clients cannot speak TLS 1.1 and strip a trailing dot from the SNI they
    // send, so these tests write their ClientHello by hand and read the server's
    // reply records (a TLS 1.2 server sends its certificate in clear).

    fn push_u16(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
    }

    fn push_u24(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&u32::try_from(n).unwrap().to_be_bytes()[1..]);
    }

    /// A ClientHello without `supported_versions`, so `legacy_version` is the highest
    /// version offered, as old clients send it.
    fn raw_client_hello(legacy_version: u16, sni: &str) -> Vec<u8> {
        let mut ext = Vec::new();
        // server_name: one host_name entry, sent as is.
        ext.extend_from_slice(&[0x00, 0x00]);
        push_u16(&mut ext, sni.len() + 5);
        push_u16(&mut ext, sni.len() + 3);
        ext.push(0);
        push_u16(&mut ext, sni.len());
        ext.extend_from_slice(sni.as_bytes());
        // supported_groups: x25519, secp256r1.
        ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
        // ec_point_formats: uncompressed.
        ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
        // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
        ext.extend_from_slice(&[
            0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
        ]);
        // extended_master_secret.
        ext.extend_from_slice(&[0x00, 0x17, 0x00, 0x00]);

        let mut body = Vec::new();
        body.extend_from_slice(&legacy_version.to_be_bytes());
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        // ECDHE-ECDSA/RSA-AES128-GCM-SHA256, then the CBC suites a TLS 1.1 client has.
        let suites = [0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x2f];
        push_u16(&mut body, suites.len());
        body.extend_from_slice(&suites);
        body.extend_from_slice(&[0x01, 0x00]);
        push_u16(&mut body, ext.len());
        body.extend_from_slice(&ext);

        let mut handshake = vec![0x01];
        push_u24(&mut handshake, body.len());
        handshake.extend_from_slice(&body);
        let mut record = vec![0x16, 0x03, 0x01];
        push_u16(&mut record, handshake.len());
        record.extend_from_slice(&handshake);
        record
    }

    #[derive(Debug, PartialEq)]
    enum Reply {
        /// The leaf of the server's Certificate message.
        Certificate(Vec<u8>),
        /// A fatal or warning alert: (level, description).
        Alert(u8, u8),
        /// The connection closed first.
        Closed,
    }

    async fn raw_exchange(addr: SocketAddr, hello: &[u8]) -> Reply {
        let run = async {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(hello).await.unwrap();
            let mut handshake = Vec::new();
            loop {
                let mut header = [0u8; 5];
                if tcp.read_exact(&mut header).await.is_err() {
                    return Reply::Closed;
                }
                let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
                let mut payload = vec![0u8; len];
                tcp.read_exact(&mut payload).await.unwrap();
                match header[0] {
                    0x15 => return Reply::Alert(payload[0], payload[1]),
                    0x16 => handshake.extend_from_slice(&payload),
                    other => panic!("unexpected record type {other}"),
                }
                let mut at = 0;
                while handshake.len() >= at + 4 {
                    let kind = handshake[at];
                    let len = u32::from_be_bytes([
                        0,
                        handshake[at + 1],
                        handshake[at + 2],
                        handshake[at + 3],
                    ]);
                    let end = at + 4 + usize::try_from(len).unwrap();
                    if handshake.len() < end {
                        break;
                    }
                    if kind == 11 {
                        // certificate_list<0..2^24-1>, then the first ASN.1Cert<1..2^24-1>.
                        let certs = &handshake[at + 4..end];
                        let first = u32::from_be_bytes([0, certs[3], certs[4], certs[5]]);
                        let first = usize::try_from(first).unwrap();
                        return Reply::Certificate(certs[6..6 + first].to_vec());
                    }
                    at = end;
                }
            }
        };
        tokio::time::timeout(TIMEOUT, run).await.unwrap()
    }

    #[tokio::test]
    async fn one_trailing_dot_and_case_are_ignored() {
        let store = store(&[("example.com", "com"), ("_", "org")]);
        let (addr, _rx) = serve(server_config(store.clone()).unwrap()).await;
        let reply = raw_exchange(addr, &raw_client_hello(0x0303, "Example.COM.")).await;
        assert_eq!(reply, Reply::Certificate(leaf(&store, "com")));
        let reply = raw_exchange(addr, &raw_client_hello(0x0303, "example.com")).await;
        assert_eq!(reply, Reply::Certificate(leaf(&store, "com")));
        // Deviation: ingress-nginx serves the default certificate for `hostname..`;
        // rustls refuses a server_name that is not a valid DNS name with a fatal
        // illegal_parameter alert (47) before any resolver runs.
        let reply = raw_exchange(addr, &raw_client_hello(0x0303, "example.com..")).await;
        assert_eq!(reply, Reply::Alert(2, 47));
        // An IP address is not a host name (RFC 6066): treated as no SNI.
        let reply = raw_exchange(addr, &raw_client_hello(0x0303, "127.0.0.1")).await;
        assert_eq!(reply, Reply::Certificate(leaf(&store, "org")));
    }

    #[tokio::test]
    async fn tls11_clients_are_refused() {
        let (addr, mut rx) = serve(server_config(store(&[("_", "com")])).unwrap()).await;
        let reply = raw_exchange(addr, &raw_client_hello(0x0302, "example.com")).await;
        // fatal(2) protocol_version(70).
        assert_eq!(reply, Reply::Alert(2, 70));
        assert!(served(&mut rx).await.is_err());
        // The same hello at TLS 1.2 gets a certificate: only the version was refused.
        let reply = raw_exchange(addr, &raw_client_hello(0x0303, "example.com")).await;
        assert!(matches!(reply, Reply::Certificate(_)), "{reply:?}");
    }
}
