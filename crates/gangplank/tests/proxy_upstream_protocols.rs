#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! Upstream protocols end to end: `backend-protocol` HTTPS, AUTO_HTTP, GRPC, GRPCS and
//! `proxy-ssl-*` through the real `gangplank proxy` binary, against upstreams on
//! 127.0.0.1 that report what they saw of the connection (TLS, SNI, ALPN, client
//! certificate) and of the request (HTTP version, `:authority`, `te`, trailers).
//! Certificates come from a CA generated per test (rcgen).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

mod common;
use common::*;

// --- Bodies -------------------------------------------------------------------------

/// A body made of the given frames (data, then trailers).
struct Frames(VecDeque<Frame<Bytes>>);

impl Frames {
    fn new(data: &[u8], trailers: Option<HeaderMap>) -> Frames {
        let mut frames = VecDeque::new();
        if !data.is_empty() {
            frames.push_back(Frame::data(Bytes::copy_from_slice(data)));
        }
        if let Some(t) = trailers {
            frames.push_back(Frame::trailers(t));
        }
        Frames(frames)
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

// --- Certificates -------------------------------------------------------------------

fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

fn new_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: pem("CERTIFICATE", cert.der()),
        issuer: Issuer::new(params, key),
    }
}

/// An intermediate CA signed by `root`, and its certificate.
fn intermediate(root: &Ca, name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, &root.issuer).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: pem("CERTIFICATE", cert.der()),
        issuer: Issuer::new(params, key),
    }
}

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

/// A certificate for `dns` and 127.0.0.1, signed by `ca`.
fn leaf(ca: &Ca, dns: &str) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![dns.to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.distinguished_name.push(DnType::CommonName, dns);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let key_der = key.serialize_der();
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.clone())),
        cert_pem: pem("CERTIFICATE", cert.der()),
        key_pem: pem("PRIVATE KEY", &key_der),
    }
}

/// An upstream's TLS configuration: its certificate, client certificates required
/// when `clients` is given, and the ALPN protocols it accepts.
fn server_tls(leaf: &Leaf, clients: Option<&Ca>, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match clients {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

// --- Upstreams ----------------------------------------------------------------------

/// What an upstream saw of a connection.
#[derive(Debug, Default)]
struct ConnInfo {
    tls: bool,
    sni: Option<String>,
    alpn: Option<String>,
    client_cert: bool,
}

/// An upstream that answers every request with what it saw, in `x-*` headers. With a
/// TLS configuration it speaks TLS, and still plain HTTP to clients that do not start
/// with a TLS record (one port for both, as `AUTO_HTTP` needs). HTTP/1.1 and HTTP/2
/// (prior knowledge or ALPN); upgrades echo their bytes; gRPC calls
/// (`content-type: application/grpc`) get their body back and trailers.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

async fn upstream(tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                if stream.peek(&mut first).await.unwrap_or(0) == 0 {
                    return;
                }
                match tls.filter(|_| first[0] == 0x16) {
                    Some(config) => {
                        let Ok(stream) =
                            tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                        else {
                            return;
                        };
                        let conn = stream.get_ref().1;
                        let info = ConnInfo {
                            tls: true,
                            sni: conn.server_name().map(str::to_owned),
                            alpn: conn
                                .alpn_protocol()
                                .map(|p| String::from_utf8_lossy(p).into_owned()),
                            client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
                        };
                        serve(stream, info).await;
                    }
                    None => serve(stream, ConnInfo::default()).await,
                }
            });
        }
    });
    Upstream { addr, connections }
}

async fn serve<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: IO, info: ConnInfo) {
    let info = Arc::new(info);
    let service = hyper::service::service_fn(move |req| answer(req, info.clone()));
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await;
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap()
}

async fn answer(
    mut req: Request<Incoming>,
    info: Arc<ConnInfo>,
) -> Result<Response<Frames>, Infallible> {
    let mut headers = HeaderMap::new();
    headers.insert("x-tls", value(&info.tls.to_string()));
    headers.insert("x-sni", value(info.sni.as_deref().unwrap_or("-")));
    headers.insert("x-alpn", value(info.alpn.as_deref().unwrap_or("-")));
    headers.insert("x-client-cert", value(&info.client_cert.to_string()));
    headers.insert("x-proto", value(&format!("{:?}", req.version())));
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            req.headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    headers.insert("x-authority", value(&authority));
    headers.insert(
        "x-te",
        req.headers()
            .get("te")
            .cloned()
            .unwrap_or(HeaderValue::from_static("-")),
    );
    if req.headers().contains_key("upgrade") {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        let mut response = Response::new(Frames::new(b"", None));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        headers.insert("connection", HeaderValue::from_static("upgrade"));
        *response.headers_mut() = headers;
        return Ok(response);
    }
    let grpc = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let (data, trailers) = match req.into_body().collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().cloned();
            (collected.to_bytes(), trailers)
        }
        Err(_) => (Bytes::new(), None),
    };
    let body = if grpc {
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        let mut out = HeaderMap::new();
        out.insert("grpc-status", HeaderValue::from_static("0"));
        out.insert(
            "x-got-trailer",
            trailers
                .and_then(|t| t.get("x-client-trailer").cloned())
                .unwrap_or(HeaderValue::from_static("none")),
        );
        Frames::new(&data, Some(out))
    } else {
        Frames::new(b"ok", None)
    };
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    Ok(response)
}

/// An upstream that accepts connections and never answers; counts them.
struct BlackHole {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn black_hole() -> BlackHole {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    BlackHole { addr, accepted }
}

// --- Clients of the proxy -----------------------------------------------------------

fn routes(locations: serde_json::Value, backends: serde_json::Value) -> serde_json::Value {
    json!({"backends": backends, "servers": [{"hostname": "up.test", "locations": locations}]})
}

/// A GET over a new plain HTTP/1.1 connection.
async fn get(addr: SocketAddr, path: &str) -> (StatusCode, HeaderMap) {
    within(path, async {
        let mut conn = Conn::open(addr).await;
        let (status, headers, _) = conn.send("up.test", path, &[]).await;
        (status, headers)
    })
    .await
}

/// A GET over a new HTTPS (HTTP/1.1) connection to the proxy.
async fn https_get(addr: SocketAddr, path: &str) -> (StatusCode, HeaderMap) {
    within(path, async {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(gangplank_e2e::scenario::tls::AcceptAny::ring())
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("up.test").unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = Request::get(path)
            .header("host", "up.test")
            .body(Frames::new(b"", None))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        (response.status(), response.headers().clone())
    })
    .await
}

/// What a gRPC-style call over HTTP/2 returned.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

/// An h2c client connection to the proxy (HTTP/2 with prior knowledge).
async fn h2_client(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Frames> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// A gRPC-style POST (`content-type: application/grpc`, `te: trailers`) with a body
/// and a request trailer `x-client-trailer`.
async fn call(
    sender: &mut hyper::client::conn::http2::SendRequest<Frames>,
    path: &str,
    body: &[u8],
) -> Answer {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-client-trailer", HeaderValue::from_static("t1"));
    let request = Request::post(format!("http://up.test{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Frames::new(body, Some(trailers)))
        .unwrap();
    within(path, async {
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let collected = response.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        Answer {
            status,
            headers,
            body: collected.to_bytes(),
            trailers,
        }
    })
    .await
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .map_or("<absent>", |v| v.to_str().unwrap())
}

// --- Tests --------------------------------------------------------------------------

/// HTTPS upstreams: TLS with ALPN `http/1.1`, nginx's defaults (no verification, no
/// SNI), verification against the configured CA and name (IP SAN without a name),
/// SNI only with `proxy-ssl-server-name`, broken material failing closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_verify_and_send_sni_as_configured() {
    let ca = new_ca("upstream CA");
    let other = new_ca("another CA");
    let up = upstream(Some(server_tls(
        &leaf(&ca, "upstream.internal"),
        None,
        &[b"http/1.1"],
    )))
    .await;
    let g = Gangplank::start().await;
    let https = |path: &str, ssl: serde_json::Value| json!({"path": path, "backend": "b", "backend-protocol": "HTTPS", "proxySSL": ssl});
    g.apply(routes(
        json!([
            https("/default", json!({})),
            https("/verified", json!({"caPem": ca.pem, "verify": true, "name": "upstream.internal"})),
            https("/verified-ip", json!({"caPem": ca.pem, "verify": true})),
            https("/wrong-ca", json!({"caPem": other.pem, "verify": true, "name": "upstream.internal"})),
            https("/wrong-name", json!({"caPem": ca.pem, "verify": true, "name": "elsewhere.internal"})),
            https("/sni", json!({"name": "upstream.internal", "serverName": true})),
            https("/name-only", json!({"name": "upstream.internal"})),
            https("/broken", json!({"caPem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})),
            {"path": "/plain", "backend": "b"}
        ]),
        json!([backend("b", &[up.addr])]),
    ))
    .await;
    let h = g.http;

    let (status, headers) = get(h, "/default").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-tls"), "true");
    assert_eq!(header(&headers, "x-alpn"), "http/1.1");
    assert_eq!(header(&headers, "x-sni"), "-");
    assert_eq!(header(&headers, "x-proto"), "HTTP/1.1");
    assert_eq!(header(&headers, "x-authority"), "up.test");
    // The same endpoint over plain HTTP: another connection, never a TLS one.
    let (status, headers) = get(h, "/plain").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-tls"), "false");

    for path in ["/verified", "/verified-ip"] {
        let (status, headers) = get(h, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, "x-tls"), "true", "{path}");
    }
    for path in ["/wrong-ca", "/wrong-name"] {
        assert_eq!(get(h, path).await.0, StatusCode::BAD_GATEWAY, "{path}");
    }
    let (status, headers) = get(h, "/sni").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-sni"), "upstream.internal");
    let (_, headers) = get(h, "/name-only").await;
    assert_eq!(header(&headers, "x-sni"), "-");
    assert_eq!(get(h, "/broken").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

/// `proxy-ssl-verify-depth` counts intermediates (OpenSSL's semantics): an upstream
/// whose certificate comes from an intermediate CA needs a depth of at least 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_depth_counts_intermediate_certificates() {
    let root = new_ca("root CA");
    let middle = intermediate(&root, "intermediate CA");
    let mut server = leaf(&middle, "upstream.internal");
    server.chain.push(middle.der.clone());
    let up = upstream(Some(server_tls(&server, None, &[b"http/1.1"]))).await;
    let g = Gangplank::start().await;
    let depth = |path: &str, depth: u32| {
        json!({"path": path, "backend": "b", "backend-protocol": "HTTPS", "proxySSL": {
            "caPem": root.pem, "verify": true, "verifyDepth": depth, "name": "upstream.internal"
        }})
    };
    g.apply(routes(
        json!([depth("/depth0", 0), depth("/depth1", 1)]),
        json!([backend("b", &[up.addr])]),
    ))
    .await;
    assert_eq!(get(g.http, "/depth0").await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(get(g.http, "/depth1").await.0, StatusCode::OK);
}

/// `proxy-ssl-secret` with `tls.crt`/`tls.key`: presented to an upstream that
/// requires a client certificate; without one, that upstream cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_presented_to_the_upstream() {
    let ca = new_ca("upstream CA");
    let clients = new_ca("client CA");
    let client = leaf(&clients, "gangplank.internal");
    let up = upstream(Some(server_tls(
        &leaf(&ca, "upstream.internal"),
        Some(&clients),
        &[b"http/1.1"],
    )))
    .await;
    let g = Gangplank::start().await;
    g.apply(routes(
        json!([
            {"path": "/with-cert", "backend": "b", "backend-protocol": "HTTPS", "proxySSL": {
                "certPem": client.cert_pem, "keyPem": client.key_pem,
                "caPem": ca.pem, "verify": true, "name": "upstream.internal"
            }},
            {"path": "/without-cert", "backend": "b", "backend-protocol": "HTTPS"}
        ]),
        json!([backend("b", &[up.addr])]),
    ))
    .await;
    let (status, headers) = get(g.http, "/with-cert").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-client-cert"), "true");
    assert_eq!(
        get(g.http, "/without-cert").await.0,
        StatusCode::BAD_GATEWAY
    );
}

/// A WebSocket upgrade through an HTTPS upstream: 101, then bytes both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_through_an_https_upstream() {
    let ca = new_ca("upstream CA");
    let up = upstream(Some(server_tls(
        &leaf(&ca, "upstream.internal"),
        None,
        &[b"http/1.1"],
    )))
    .await;
    let g = Gangplank::start().await;
    g.apply(routes(
        json!([{"path": "/", "backend": "b", "backend-protocol": "HTTPS"}]),
        json!([backend("b", &[up.addr])]),
    ))
    .await;
    within("websocket", async {
        let mut stream = tokio::net::TcpStream::connect(g.http).await.unwrap();
        stream
            .write_all(
                b"GET /ws HTTP/1.1\r\nHost: up.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "connection closed");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("x-tls: true"), "{head}");
        stream.write_all(b"ping over tls").await.unwrap();
        let mut echoed = [0u8; 13];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping over tls");
    })
    .await;
}

/// `GRPC`: HTTP/2 with prior knowledge to the upstream, `:authority` from the host,
/// `te: trailers` passed on, trailers both ways (`grpc-status` back to an HTTP/2
/// client), and one shared upstream connection for concurrent calls of a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_goes_over_h2c_with_trailers_both_ways() {
    let up = upstream(None).await;
    let g = Gangplank::start().await;
    g.apply(routes(
        json!([{"path": "/", "backend": "b", "backend-protocol": "GRPC"}]),
        json!([backend("b", &[up.addr])]),
    ))
    .await;
    let mut client = h2_client(g.http).await;
    let answer = call(&mut client, "/pkg.Echo/Call", b"hello").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(header(&answer.headers, "x-proto"), "HTTP/2.0");
    assert_eq!(header(&answer.headers, "x-tls"), "false");
    assert_eq!(header(&answer.headers, "x-authority"), "up.test");
    assert_eq!(header(&answer.headers, "x-te"), "trailers");
    assert_eq!(header(&answer.headers, "content-type"), "application/grpc");
    assert_eq!(&answer.body[..], b"hello");
    let trailers = answer.trailers.expect("trailers");
    assert_eq!(header(&trailers, "grpc-status"), "0");
    assert_eq!(header(&trailers, "x-got-trailer"), "t1");

    // Concurrent calls on this client connection (one worker) share the upstream
    // connection the first call opened.
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let body = format!("call {i}");
                let answer = call(&mut client, "/pkg.Echo/Call", body.as_bytes()).await;
                (answer.status, answer.body, body)
            })
        })
        .collect();
    for c in calls {
        let (status, echoed, sent) = c.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&echoed[..], sent.as_bytes());
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);

    // An HTTP/1.1 client of a gRPC location: HTTP/2 upstream all the same.
    let (status, headers) = get(g.http, "/pkg.Echo/Other").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-proto"), "HTTP/2.0");
}

/// `GRPCS`: HTTP/2 over TLS with ALPN `h2`, verified, SNI as configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcs_speaks_h2_over_tls() {
    let ca = new_ca("upstream CA");
    let up = upstream(Some(server_tls(
        &leaf(&ca, "upstream.internal"),
        None,
        &[b"h2"],
    )))
    .await;
    let g = Gangplank::start().await;
    g.apply(routes(
        json!([{"path": "/", "backend": "b", "backend-protocol": "GRPCS", "proxySSL": {
            "caPem": ca.pem, "verify": true, "name": "upstream.internal", "serverName": true
        }}]),
        json!([backend("b", &[up.addr])]),
    ))
    .await;
    let mut client = h2_client(g.http).await;
    let answer = call(&mut client, "/pkg.Echo/Call", b"secure").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(header(&answer.headers, "x-tls"), "true");
    assert_eq!(header(&answer.headers, "x-alpn"), "h2");
    assert_eq!(header(&answer.headers, "x-sni"), "upstream.internal");
    assert_eq!(header(&answer.headers, "x-proto"), "HTTP/2.0");
    assert_eq!(&answer.body[..], b"secure");
    assert_eq!(
        header(&answer.trailers.expect("trailers"), "grpc-status"),
        "0"
    );
}

/// The proxy's own 502/503/504 for gRPC calls to gRPC locations are gRPC answers:
/// HTTP 200, `content-type: application/grpc`, `grpc-status` 14 or 4. Other requests
/// keep the HTML error pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_get_grpc_statuses_for_proxy_errors() {
    let closed = free_port();
    let hole = black_hole().await;
    let g = Gangplank::start().await;
    g.apply(routes(
        json!([
            {"path": "/down", "backend": "down", "backend-protocol": "GRPC"},
            {"path": "/empty", "backend": "empty", "backend-protocol": "GRPC"},
            {"path": "/slow", "backend": "hole", "backend-protocol": "GRPC", "proxy": {"readTimeout": "1s"}},
            {"path": "/http-down", "backend": "down"}
        ]),
        json!([
            backend("down", &[closed]),
            backend("empty", &[]),
            backend("hole", &[hole.addr])
        ]),
    ))
    .await;
    let mut client = h2_client(g.http).await;
    for (path, grpc_status) in [("/down", "14"), ("/empty", "14"), ("/slow", "4")] {
        let answer = call(&mut client, path, b"x").await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(
            header(&answer.headers, "content-type"),
            "application/grpc",
            "{path}"
        );
        assert_eq!(
            header(&answer.headers, "grpc-status"),
            grpc_status,
            "{path}"
        );
        assert_ne!(
            header(&answer.headers, "grpc-message"),
            "<absent>",
            "{path}"
        );
    }
    // Not a gRPC location, or not a gRPC call: the usual error page.
    let answer = call(&mut client, "/http-down", b"x").await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let (status, headers) = get(g.http, "/down").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(header(&headers, "content-type"), "text/html");
}

/// `AUTO_HTTP`: TLS to the upstream for HTTPS clients, plain HTTP for HTTP clients,
/// one endpoint for both, connections never mixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_http_follows_the_client_scheme() {
    let ca = new_ca("upstream CA");
    let up = upstream(Some(server_tls(
        &leaf(&ca, "upstream.internal"),
        None,
        &[b"http/1.1"],
    )))
    .await;
    let g = Gangplank::start().await;
    g.apply(routes(
        json!([{"path": "/", "backend": "b", "backend-protocol": "AUTO_HTTP"}]),
        json!([backend("b", &[up.addr])]),
    ))
    .await;
    for _ in 0..2 {
        let (status, headers) = get(g.http, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "x-tls"), "false");
        let (status, headers) = https_get(g.https, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "x-tls"), "true");
    }
}

/// `proxy-next-upstream-timeout`: no new attempt once that much time has passed.
/// Three endpoints that never answer: with a 1 s read timeout and a 1 s limit, the
/// first attempt uses up the time; without the limit, all three are tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_upstream_timeout_limits_the_retries() {
    let limited = [black_hole().await, black_hole().await, black_hole().await];
    let unlimited = [black_hole().await, black_hole().await, black_hole().await];
    let addrs = |holes: &[BlackHole]| holes.iter().map(|h| h.addr).collect::<Vec<_>>();
    let accepted = |holes: &[BlackHole]| {
        holes
            .iter()
            .map(|h| h.accepted.load(Ordering::SeqCst))
            .sum::<usize>()
    };
    let g = Gangplank::start().await;
    g.apply(routes(
        json!([
            {"path": "/limited", "backend": "limited", "proxy": {"readTimeout": "1s", "nextUpstreamTimeout": "1s"}},
            {"path": "/unlimited", "backend": "unlimited", "proxy": {"readTimeout": "1s"}}
        ]),
        json!([
            backend("limited", &addrs(&limited)),
            backend("unlimited", &addrs(&unlimited))
        ]),
    ))
    .await;
    assert_eq!(get(g.http, "/limited").await.0, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(accepted(&limited), 1);
    assert_eq!(
        get(g.http, "/unlimited").await.0,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(accepted(&unlimited), 3);
}

/// A request that was sent and timed out goes to the next endpoint only when it may be
/// sent again: a GET does, a body-less POST does not (nginx's `non_idempotent`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_idempotent_requests_are_sent_again_after_a_timeout() {
    let holes = [black_hole().await, black_hole().await];
    let accepted = || {
        holes
            .iter()
            .map(|h| h.accepted.load(Ordering::SeqCst))
            .sum::<usize>()
    };
    let g = Gangplank::start().await;
    let addrs: Vec<SocketAddr> = holes.iter().map(|h| h.addr).collect();
    g.apply(routes(
        json!([{"path": "/", "backend": "b", "proxy": {"readTimeout": "1s"}}]),
        json!([backend("b", &addrs)]),
    ))
    .await;
    let (status, _, _) = request(g.http, http::Method::POST, "up.test", "/", &[], Vec::new()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(accepted(), 1, "the POST was sent twice");
    let (status, _, _) = request(g.http, http::Method::GET, "up.test", "/", &[], Vec::new()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(accepted(), 3, "the GET was not sent to the other endpoint");
}

/// `proxy-http-version: 1.0`: HTTP/1.0 requests upstream, and they keep working on
/// one client connection (no keep-alive upstream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_http_version_one_zero() {
    let echo = echoes(1).await;
    let g = Gangplank::start().await;
    g.apply(routes(
        json!([
            {"path": "/ten", "backend": "b", "proxy": {"httpVersion": "1.0"}},
            {"path": "/eleven", "backend": "b"}
        ]),
        json!([backend("b", &[echo[0].addr()])]),
    ))
    .await;
    within("http version", async {
        let mut conn = Conn::open(g.http).await;
        for _ in 0..3 {
            assert_eq!(conn.echo("up.test", "/ten").await.proto, "HTTP/1.0");
        }
        assert_eq!(conn.echo("up.test", "/eleven").await.proto, "HTTP/1.1");
    })
    .await;
}
