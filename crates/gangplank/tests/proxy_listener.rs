#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! Listener features end to end, through the real `gangplank proxy` binary: the PROXY
//! protocol (`use-proxy-protocol`), client-certificate authentication (`auth-tls-*`)
//! and TLS passthrough (`ssl-passthrough`). Clients write raw PROXY headers and speak
//! HTTP/1.1 (optionally over TLS, optionally with a client certificate) to echo
//! upstreams on 127.0.0.1, and the tests assert what the upstream saw.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gangplank_e2e::echo::Echo;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

mod common;
use common::*;

/// A TLS client configuration trusting anything, with an optional client certificate.
fn tls_client(
    identity: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(gangplank_e2e::scenario::tls::AcceptAny::ring());
    let mut config = match identity {
        Some((chain, key_der)) => {
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
                rustls::pki_types::PrivatePkcs8KeyDer::from(key_der),
            );
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One HTTP/1.1 GET over `io`.
async fn get_over<IO>(
    io: IO,
    host: &str,
    path: &str,
) -> Result<(StatusCode, HeaderMap, Bytes), String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = Request::get(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, body))
}

/// A GET on a new connection that starts with `prefix` (a PROXY header or nothing),
/// over TLS with SNI `host` when `tls` is given. `Err` when the proxy closed the
/// connection or the handshake failed.
async fn fetch(
    addr: SocketAddr,
    prefix: &[u8],
    tls: Option<Arc<rustls::ClientConfig>>,
    host: &str,
    path: &str,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    fetch_as(addr, prefix, tls, host, host, path).await
}

/// [`fetch`] with an SNI that may differ from the `Host` header.
async fn fetch_as(
    addr: SocketAddr,
    prefix: &[u8],
    tls: Option<Arc<rustls::ClientConfig>>,
    sni: &str,
    host: &str,
    path: &str,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    within(path, async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(prefix).await.unwrap();
        match tls {
            None => get_over(tcp, host, path).await,
            Some(config) => {
                let name = ServerName::try_from(sni.to_owned()).unwrap();
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                get_over(stream, host, path).await
            }
        }
    })
    .await
}

fn echo_of(answer: &(StatusCode, HeaderMap, Bytes)) -> Echo {
    assert_eq!(
        answer.0,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.2)
    );
    serde_json::from_slice(&answer.2).unwrap()
}

/// A PROXY v2 header for a TCP client `source` connecting to `destination`.
fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut block = Vec::new();
    let family = match (source.ip(), destination.ip()) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            block.extend_from_slice(&s.octets());
            block.extend_from_slice(&d.octets());
            0x11
        }
        (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
            block.extend_from_slice(&s.octets());
            block.extend_from_slice(&d.octets());
            0x21
        }
        _ => panic!("mixed families"),
    };
    block.extend_from_slice(&source.port().to_be_bytes());
    block.extend_from_slice(&destination.port().to_be_bytes());
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend_from_slice(&[0x21, family]);
    out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&block);
    out
}

fn proxy_protocol_config(endpoint: SocketAddr, general: serde_json::Value) -> serde_json::Value {
    json!({
        "backends": [backend("b", &[endpoint])],
        "servers": [{"hostname": "app.test", "locations": [
            {"path": "/", "backend": "b"},
            {"path": "/allow", "backend": "b", "allowlist": {"cidrs": ["203.0.113.0/24"]}},
        ]}],
        "general": general,
    })
}

// --- PROXY protocol ----------------------------------------------------------------

/// A trusted peer's PROXY header (v1 or v2, IPv4 or IPv6, HTTP or HTTPS listener)
/// names the client: `X-Real-IP`, `X-Forwarded-For` and the allow list follow it.
#[tokio::test]
async fn proxy_protocol_headers_name_the_client() {
    let echo = echoes(1).await;
    let g = Gangplank::start().await;
    g.apply(proxy_protocol_config(
        echo[0].addr(),
        json!({"use-proxy-protocol": true}),
    ))
    .await;

    let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 80\r\n";
    let seen = echo_of(&fetch(g.http, v1, None, "app.test", "/").await.unwrap());
    assert_eq!(seen.headers["x-real-ip"], "203.0.113.7");
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.7");

    let v2 = v2_header(
        "[2001:db8::7]:51000".parse().unwrap(),
        "[2001:db8::1]:80".parse().unwrap(),
    );
    let seen = echo_of(&fetch(g.http, &v2, None, "app.test", "/").await.unwrap());
    assert_eq!(seen.headers["x-real-ip"], "2001:db8::7");
    assert_eq!(seen.headers["x-forwarded-for"], "2001:db8::7");

    // The HTTPS listener reads the header before the TLS handshake.
    let v2 = v2_header(
        "198.51.100.9:40000".parse().unwrap(),
        "192.0.2.1:443".parse().unwrap(),
    );
    let answer = fetch(g.https, &v2, Some(tls_client(None)), "app.test", "/")
        .await
        .unwrap();
    let seen = echo_of(&answer);
    assert_eq!(seen.headers["x-real-ip"], "198.51.100.9");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");

    // The allow list sees the address of the header.
    let (status, _, _) = fetch(g.http, v1, None, "app.test", "/allow").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let other = b"PROXY TCP4 198.51.100.9 192.0.2.1 51000 80\r\n";
    let (status, _, _) = fetch(g.http, other, None, "app.test", "/allow")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);

    // UNKNOWN and LOCAL: the peer stays the client.
    let seen = echo_of(
        &fetch(g.http, b"PROXY UNKNOWN\r\n", None, "app.test", "/")
            .await
            .unwrap(),
    );
    assert_eq!(seen.headers["x-real-ip"], "127.0.0.1");
    let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    let seen = echo_of(&fetch(g.http, local, None, "app.test", "/").await.unwrap());
    assert_eq!(seen.headers["x-real-ip"], "127.0.0.1");
}

/// From a peer outside `proxy-real-ip-cidr` the header is still required, but what
/// it says is ignored.
#[tokio::test]
async fn proxy_protocol_headers_of_untrusted_peers_are_ignored() {
    let echo = echoes(1).await;
    let g = Gangplank::start().await;
    g.apply(proxy_protocol_config(
        echo[0].addr(),
        json!({"use-proxy-protocol": true, "proxy-real-ip-cidr": ["10.0.0.0/8"]}),
    ))
    .await;
    let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 80\r\n";
    let answer = fetch(g.http, v1, None, "app.test", "/").await.unwrap();
    let seen = echo_of(&answer);
    assert_eq!(seen.headers["x-real-ip"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    let (status, _, _) = fetch(g.http, v1, None, "app.test", "/allow").await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(fetch(g.http, b"", None, "app.test", "/").await.is_err());
}

/// Without a valid header (none, garbage, silence past the timeout) the connection
/// is closed; with the setting off, a header is just a bad request.
#[tokio::test]
async fn connections_without_a_valid_header_are_closed() {
    let echo = echoes(1).await;
    let g = Gangplank::start().await;
    g.apply(proxy_protocol_config(
        echo[0].addr(),
        json!({"use-proxy-protocol": true, "proxy-protocol-header-timeout": "1s"}),
    ))
    .await;
    assert!(fetch(g.http, b"", None, "app.test", "/").await.is_err());
    assert!(
        fetch(g.https, b"", Some(tls_client(None)), "app.test", "/")
            .await
            .is_err()
    );
    let garbage = b"PROXY TCP4 203.0.113.7 192.0.2.1 051000 80\r\n";
    assert!(fetch(g.http, garbage, None, "app.test", "/").await.is_err());

    // Silence: closed after the header timeout, well before the 30 s bound.
    within("silence", async {
        let mut tcp = tokio::net::TcpStream::connect(g.http).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(tcp.read(&mut buf).await.unwrap_or(0), 0);
    })
    .await;

    // Turned off again: plain requests work, the next connection needs no header.
    g.apply(proxy_protocol_config(echo[0].addr(), json!({})))
        .await;
    let seen = echo_of(&fetch(g.http, b"", None, "app.test", "/").await.unwrap());
    assert_eq!(seen.headers["x-real-ip"], "127.0.0.1");
}

// --- Client certificates ------------------------------------------------------------

struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn new_ca(name: &str) -> Ca {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: pem(cert.der()),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A client certificate `CN=<name>, O=Example` signed by `ca`, and its key (PKCS#8).
fn client_identity(ca: &Ca, name: &str) -> (Vec<CertificateDer<'static>>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (vec![cert.der().clone()], key.serialize_der())
}

fn mtls_config(endpoint: SocketAddr, ca: &Ca) -> serde_json::Value {
    let auth = |extra: serde_json::Value| {
        let mut auth = json!({
            "secret": {"namespace": "default", "name": "ca"},
            "caPem": ca.pem,
            "passCertificateToUpstream": true,
        });
        for (k, v) in extra.as_object().unwrap() {
            auth[k] = v.clone();
        }
        auth
    };
    json!({
        "backends": [backend("b", &[endpoint])],
        "servers": [
            {"hostname": "mtls.test", "certificateAuth": auth(json!({})), "locations": [
                {"path": "/", "backend": "b", "certificateAuth": auth(json!({}))},
                {"path": "/cn", "backend": "b", "certificateAuth": auth(json!({"matchCn": "CN=bob"}))},
                {"path": "/page", "backend": "b", "certificateAuth": auth(json!({"errorPage": "https://example.com/cert-error"}))},
                {"path": "/optional", "backend": "b", "certificateAuth": auth(json!({"verifyClient": "optional"}))},
            ]},
            {"hostname": "other.test", "locations": [{"path": "/", "backend": "b"}]},
        ],
    })
}

/// A certificate from the CA: 200 with the `ssl-client-*` headers upstream; none:
/// 400 (or the error page's 302, or through with `optional`); another CA's: 400;
/// `match-cn` mismatch: 403.
#[tokio::test]
async fn client_certificates_are_verified_per_host() {
    let echo = echoes(1).await;
    let g = Gangplank::start().await;
    let ca = new_ca("Test CA");
    g.apply(mtls_config(echo[0].addr(), &ca)).await;
    let alice = tls_client(Some(client_identity(&ca, "alice")));

    let answer = fetch(g.https, b"", Some(alice.clone()), "mtls.test", "/")
        .await
        .unwrap();
    let seen = echo_of(&answer);
    assert_eq!(seen.headers["ssl-client-verify"], "SUCCESS");
    assert_eq!(seen.headers["ssl-client-subject-dn"], "CN=alice,O=Example");
    assert_eq!(seen.headers["ssl-client-issuer-dn"], "CN=Test CA");
    assert!(
        seen.headers["ssl-client-cert"].starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
        "{}",
        seen.headers["ssl-client-cert"]
    );

    let anonymous = tls_client(None);
    let (status, _, _) = fetch(g.https, b"", Some(anonymous.clone()), "mtls.test", "/")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, headers, _) = fetch(g.https, b"", Some(anonymous.clone()), "mtls.test", "/page")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["location"], "https://example.com/cert-error");
    let seen = echo_of(
        &fetch(
            g.https,
            b"",
            Some(anonymous.clone()),
            "mtls.test",
            "/optional",
        )
        .await
        .unwrap(),
    );
    assert_eq!(seen.headers["ssl-client-verify"], "NONE");

    let (status, _, _) = fetch(g.https, b"", Some(alice.clone()), "mtls.test", "/cn")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let bob = tls_client(Some(client_identity(&ca, "bob")));
    let (status, _, _) = fetch(g.https, b"", Some(bob), "mtls.test", "/cn")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);

    // A certificate of another CA does not verify.
    let stranger = tls_client(Some(client_identity(&new_ca("Other CA"), "alice")));
    let (status, _, _) = fetch(g.https, b"", Some(stranger.clone()), "mtls.test", "/")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = fetch(g.https, b"", Some(stranger), "mtls.test", "/optional")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Plain HTTP never reaches a location that requires a certificate.
    let (status, _, _) = fetch(g.http, b"", None, "mtls.test", "/").await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Hosts without auth-tls are unaffected.
    let seen = echo_of(
        &fetch(g.https, b"", Some(anonymous), "other.test", "/")
            .await
            .unwrap(),
    );
    assert!(!seen.headers.contains_key("ssl-client-verify"));
}

/// A connection made for another host (its SNI) cannot serve a host that requires a
/// client certificate: 421, so the client opens a connection of its own.
#[tokio::test]
async fn requests_for_a_host_the_handshake_was_not_made_for_are_misdirected() {
    let echo = echoes(1).await;
    let g = Gangplank::start().await;
    let ca = new_ca("Test CA");
    g.apply(mtls_config(echo[0].addr(), &ca)).await;
    let alice = tls_client(Some(client_identity(&ca, "alice")));
    let (status, _, _) = fetch_as(
        g.https,
        b"",
        Some(alice.clone()),
        "other.test",
        "mtls.test",
        "/",
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    // The other way round is fine: other.test needs nothing.
    let (status, _, _) = fetch_as(g.https, b"", Some(alice), "mtls.test", "other.test", "/")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

// --- TLS passthrough ----------------------------------------------------------------

/// A TLS echo upstream named `instance` with its own self-signed certificate for
/// `pass.test` and `*.wild.test`, and that certificate (to recognise it).
async fn tls_echo(instance: &str) -> (gangplank_e2e::echo::EchoServer, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["pass.test".to_owned(), "*.wild.test".to_owned()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server = gangplank_e2e::echo::EchoServer::start_tls(
        instance,
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(config),
    )
    .await
    .unwrap();
    (server, cert.der().to_vec())
}

/// A GET over TLS with SNI and `Host` `sni`: the certificate the client was shown,
/// and the answer. `Err` when the handshake or the request failed.
async fn fetch_tls(
    addr: SocketAddr,
    sni: &str,
    path: &str,
) -> Result<(Vec<u8>, (StatusCode, HeaderMap, Bytes)), String> {
    within(path, async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(sni.to_owned()).unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls_client(None))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let shown = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.to_vec())
            .unwrap_or_default();
        Ok((shown, get_over(stream, sni, path).await?))
    })
    .await
}

/// `pass.test` and `*.wild.test` pass through to `tls_endpoints` (when `passthrough`),
/// `term.test` is terminated and proxied to the plain echo.
fn passthrough_config(
    tls_endpoints: &[SocketAddr],
    plain: SocketAddr,
    passthrough: bool,
) -> serde_json::Value {
    json!({
        "backends": [backend("tls", tls_endpoints), backend("plain", &[plain])],
        "servers": [
            {"hostname": "pass.test", "sslPassthrough": passthrough,
             "locations": [{"path": "/", "backend": "tls"}]},
            {"hostname": "*.wild.test", "sslPassthrough": passthrough,
             "locations": [{"path": "/", "backend": "tls"}]},
            {"hostname": "term.test", "locations": [{"path": "/", "backend": "plain"}]},
        ],
    })
}

/// With `--enable-ssl-passthrough`, TLS for a passthrough host (exact or wildcard
/// name) reaches its backend unterminated: the client sees the upstream's own
/// certificate, an endpoint that refuses connections is skipped, and other names are
/// terminated by the proxy as usual. Turning the annotation off applies to the next
/// connection; a backend without a live endpoint closes the connection.
#[tokio::test]
async fn tls_of_passthrough_hosts_reaches_the_backend_unterminated() {
    let plain = echoes(1).await;
    let (upstream, upstream_cert) = tls_echo("tls-upstream").await;
    let dead = free_port();
    let g = Gangplank::start_with("proxy", &["--enable-ssl-passthrough"]).await;
    g.apply(passthrough_config(
        &[dead, upstream.addr()],
        plain[0].addr(),
        true,
    ))
    .await;

    for round in 0..4 {
        for sni in ["pass.test", "a.wild.test"] {
            let (shown, answer) = fetch_tls(g.https, sni, "/hello")
                .await
                .unwrap_or_else(|e| panic!("{sni}, round {round}: {e}"));
            assert_eq!(shown, upstream_cert, "{sni}: the upstream's certificate");
            let seen = echo_of(&answer);
            assert_eq!(seen.instance, "tls-upstream");
            assert_eq!(seen.host, sni);
            // Not proxied: no forwarding headers were added.
            assert!(!seen.headers.contains_key("x-forwarded-for"), "{seen:?}");
        }
    }
    assert_eq!(upstream.connections(), 8);

    let (shown, answer) = fetch_tls(g.https, "term.test", "/").await.unwrap();
    assert_ne!(shown, upstream_cert);
    let seen = echo_of(&answer);
    assert_eq!(seen.instance, "echo-0");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    let (shown, (status, _, _)) = fetch_tls(g.https, "other.test", "/").await.unwrap();
    assert_ne!(shown, upstream_cert);
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The annotation off: the next connection is terminated by the proxy, which
    // speaks plain HTTP to the TLS-only endpoint (502).
    g.apply(passthrough_config(
        &[upstream.addr()],
        plain[0].addr(),
        false,
    ))
    .await;
    let (shown, (status, _, _)) = fetch_tls(g.https, "pass.test", "/").await.unwrap();
    assert_ne!(shown, upstream_cert);
    assert_eq!(status, StatusCode::BAD_GATEWAY);

    // Nothing to pass through to: the connection is closed.
    g.apply(passthrough_config(&[dead], plain[0].addr(), true))
        .await;
    let failed = fetch_tls(g.https, "pass.test", "/").await;
    assert!(failed.is_err(), "{:?}", failed.map(|(_, a)| a.0));
    // Terminated hosts are unaffected.
    let (_, answer) = fetch_tls(g.https, "term.test", "/").await.unwrap();
    assert_eq!(echo_of(&answer).instance, "echo-0");
}

/// Without `--enable-ssl-passthrough` the annotation has no effect, as in
/// ingress-nginx: the proxy terminates TLS for every host.
#[tokio::test]
async fn without_the_flag_passthrough_hosts_are_terminated() {
    let plain = echoes(1).await;
    let (upstream, upstream_cert) = tls_echo("tls-upstream").await;
    let g = Gangplank::start().await;
    g.apply(passthrough_config(
        &[upstream.addr()],
        plain[0].addr(),
        true,
    ))
    .await;
    let (shown, (status, _, _)) = fetch_tls(g.https, "pass.test", "/").await.unwrap();
    assert_ne!(shown, upstream_cert);
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

/// The annotation end to end: an Ingress with `ssl-passthrough` in a manifest
/// directory, `gangplank standalone --enable-ssl-passthrough`, and the client talks
/// TLS with the Service's endpoint.
#[tokio::test]
async fn standalone_passes_through_an_annotated_ingress() {
    let (upstream, upstream_cert) = tls_echo("tls-upstream").await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = format!(
        r#"{class}{service}---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: vault
  namespace: demo
  annotations: {{nginx.ingress.kubernetes.io/ssl-passthrough: "true"}}
spec:
  ingressClassName: gangplank
  rules:
  - host: pass.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: vault, port: {{name: http}}}}}}}}
"#,
        class = INGRESS_CLASS_YAML,
        service = service_yaml("demo", "vault", upstream.addr()),
    );
    std::fs::write(dir.path().join("vault.yaml"), manifests).unwrap();
    let manifests_dir = dir.path().to_str().unwrap().to_owned();
    let g = Gangplank::start_with(
        "standalone",
        &["--manifests", &manifests_dir, "--enable-ssl-passthrough"],
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((shown, answer)) = fetch_tls(g.https, "pass.test", "/v1/sys/health").await
            && shown == upstream_cert
        {
            let seen = echo_of(&answer);
            assert_eq!(seen.instance, "tls-upstream");
            assert_eq!(seen.path, "/v1/sys/health");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pass.test was not passed through within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
