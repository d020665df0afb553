#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! External authentication (`auth-url`, `global-auth-url`) and digest authentication
//! end to end: the real `gangplank proxy` binary, an echo upstream and an auth
//! service written here, both on 127.0.0.1. The auth service answers by path and
//! records, per path, how often it was asked and the headers of the last request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gangplank_e2e::echo::Echo;
use gangplank_proxy::policy::digest;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;

mod common;
use common::*;

/// What the auth service saw of one path.
#[derive(Debug, Default, Clone)]
struct Seen {
    calls: usize,
    headers: HeaderMap,
    method: String,
    path: String,
    body: usize,
    /// The SNI of the TLS connection the request came on, if any.
    sni: Option<String>,
}

type Log = Arc<Mutex<HashMap<String, Seen>>>;

/// The auth service: `/allow` 200 (with `X-User` and a cookie), `/deny401` 401 with
/// a challenge, `/deny403` 403, `/cached` 200 (`X-User: cached`), `/global` 200 only
/// with `X-Token: ok` (else 401), `/deny-cookie` 401 with a cookie, anything else
/// 404. The same port speaks TLS (a self-signed certificate for `localhost`) to
/// clients that start with a TLS handshake.
struct AuthServer {
    addr: SocketAddr,
    log: Log,
}

impl AuthServer {
    async fn start() -> AuthServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let shared = log.clone();
        let tls = self_signed_localhost();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let mut first = [0u8; 1];
                    if stream.peek(&mut first).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if first[0] == 0x16 {
                        let Ok(stream) = tokio_rustls::TlsAcceptor::from(tls).accept(stream).await
                        else {
                            return;
                        };
                        let sni = stream.get_ref().1.server_name().map(str::to_owned);
                        serve(TokioIo::new(stream), log, sni).await;
                    } else {
                        serve(TokioIo::new(stream), log, None).await;
                    }
                });
            }
        });
        AuthServer { addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self, path: &str) -> Seen {
        self.log
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

fn self_signed_localhost() -> Arc<rustls::ServerConfig> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    Arc::new(config)
}

async fn serve<IO>(io: IO, log: Log, sni: Option<String>)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |r: Request<Incoming>| {
        let log = log.clone();
        let sni = sni.clone();
        async move { Ok::<_, Infallible>(answer(r, &log, sni).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

async fn answer(
    request: Request<Incoming>,
    log: &Log,
    sni: Option<String>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    {
        let mut log = log.lock().unwrap();
        let seen = log.entry(path.clone()).or_default();
        seen.calls += 1;
        seen.headers = parts.headers.clone();
        seen.method = parts.method.to_string();
        seen.path = parts.uri.to_string();
        seen.body = body;
        seen.sni = sni;
    }
    let mut response = Response::builder();
    let status = match path.as_str() {
        "/allow" => {
            response = response
                .header("x-user", "alice")
                .header("set-cookie", "auth=1; Path=/");
            200
        }
        "/deny401" => {
            response = response.header("www-authenticate", "Bearer realm=\"test\"");
            401
        }
        "/deny403" => 403,
        "/cached" => {
            response = response.header("x-user", "cached");
            200
        }
        "/global" if parts.headers.get("x-token").is_some_and(|v| v == "ok") => {
            response = response.header("x-global", "yes");
            200
        }
        "/global" => 401,
        "/deny-cookie" => {
            response = response.header("set-cookie", "tried=1");
            401
        }
        _ => 404,
    };
    response
        .status(status)
        .body(Full::new(Bytes::from_static(b"auth says hi")))
        .unwrap()
}

fn echo_of(body: &Bytes) -> Echo {
    serde_json::from_slice(body).unwrap()
}

/// 2xx lets the request through with the auth answer's headers (client-sent ones
/// replaced or removed) and cookie; 401 and 403 are returned; 401 with `auth-signin`
/// redirects with `rd`; any other status and an unreachable service give 500.
#[tokio::test]
async fn external_auth_allows_denies_and_redirects() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let auth = AuthServer::start().await;
    let closed = free_port();
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "ext.test", "locations": [
            {"path": "/allow", "backend": "b", "externalAuth": {
                "url": auth.url("/allow"), "responseHeaders": ["X-User", "X-Groups"]}},
            {"path": "/d401", "backend": "b", "externalAuth": {"url": auth.url("/deny401")}},
            {"path": "/d403", "backend": "b", "externalAuth": {"url": auth.url("/deny403")}},
            {"path": "/signin", "backend": "b", "externalAuth": {
                "url": auth.url("/deny401"), "signin": "https://login.example.com/start"}},
            {"path": "/weird", "backend": "b", "externalAuth": {"url": auth.url("/nothing-here")}},
            {"path": "/down", "backend": "b", "externalAuth": {"url": format!("http://{closed}/")}}
        ]}]
    }))
    .await;
    let h = g.http;

    let (status, headers, body) = get(
        h,
        "ext.test",
        "/allow/x?y=1",
        &[
            ("x-user", "mallory"),
            ("x-groups", "admin"),
            ("cookie", "s=1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let echo = echo_of(&body);
    assert_eq!(
        echo.headers["x-user"], "alice",
        "replaced by the auth answer"
    );
    assert!(
        !echo.headers.contains_key("x-groups"),
        "absent there: removed"
    );
    assert_eq!(headers["set-cookie"], "auth=1; Path=/");
    let seen = auth.seen("/allow");
    assert_eq!((seen.calls, seen.method.as_str(), seen.body), (1, "GET", 0));
    assert_eq!(seen.path, "/allow");
    assert_eq!(seen.headers["host"], "127.0.0.1");
    assert_eq!(
        seen.headers["x-original-url"],
        "http://ext.test/allow/x?y=1"
    );
    assert_eq!(seen.headers["x-original-method"], "GET");
    assert_eq!(seen.headers["x-sent-from"], "nginx-ingress-controller");
    assert_eq!(seen.headers["x-real-ip"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-auth-request-redirect"], "/allow/x?y=1");
    assert_eq!(seen.headers["cookie"], "s=1");
    assert_eq!(seen.headers["x-request-id"], echo.headers["x-request-id"]);

    let (status, headers, _) = get(h, "ext.test", "/d401", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"test\"");
    assert_eq!(
        get(h, "ext.test", "/d403", &[]).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, headers, _) = get(h, "ext.test", "/signin/p?a=b", &[]).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        headers["location"],
        "https://login.example.com/start?rd=http://ext.test%2Fsignin%2Fp%3Fa%3Db"
    );
    assert_eq!(
        get(h, "ext.test", "/weird", &[]).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        get(h, "ext.test", "/down", &[]).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // The upstream never saw a refused request.
    assert_eq!(auth.seen("/deny401").calls, 2);
}

/// `auth-cache-key`: answers are reused per key (and per worker: one keep-alive
/// connection stays on one worker), so the auth service is asked once per key.
#[tokio::test]
async fn external_auth_answers_are_cached_by_key() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let auth = AuthServer::start().await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "cache.test", "locations": [
            {"path": "/", "backend": "b", "externalAuth": {
                "url": auth.url("/cached"), "cacheKey": "$http_authorization",
                "responseHeaders": ["X-User"]}}
        ]}]
    }))
    .await;
    let mut conn = Conn::open(g.http).await;
    for _ in 0..3 {
        let (status, _, body) = conn
            .send("cache.test", "/", &[("authorization", "Bearer one")])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echo_of(&body).headers["x-user"], "cached");
    }
    assert_eq!(auth.seen("/cached").calls, 1);
    let (status, _, _) = conn
        .send("cache.test", "/", &[("authorization", "Bearer two")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(auth.seen("/cached").calls, 2);
}

/// The ConfigMap's `global-auth-*` applies to every location except the ones that
/// opt out and `no-auth-locations`; a location's own `auth-url` wins.
#[tokio::test]
async fn global_external_auth() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let auth = AuthServer::start().await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "global.test", "locations": [
            {"path": "/app", "backend": "b", "enableGlobalAuth": true},
            {"path": "/.well-known/acme-challenge", "backend": "b", "enableGlobalAuth": true},
            {"path": "/public", "backend": "b", "enableGlobalAuth": false},
            {"path": "/own", "backend": "b", "enableGlobalAuth": true,
             "externalAuth": {"url": auth.url("/deny403")}}
        ]}],
        "general": {
            "global-auth-url": auth.url("/global"),
            "global-auth-response-headers": ["X-Global"]
        }
    }))
    .await;
    let h = g.http;
    assert_eq!(
        get(h, "global.test", "/app", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, body) = get(h, "global.test", "/app", &[("x-token", "ok")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo_of(&body).headers["x-global"], "yes");
    assert_eq!(auth.seen("/global").calls, 2);
    assert_eq!(
        get(h, "global.test", "/.well-known/acme-challenge/token", &[])
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(h, "global.test", "/public", &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(h, "global.test", "/own", &[("x-token", "ok")]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(auth.seen("/global").calls, 2, "exempt locations never ask");
}

/// `auth-type: digest`: 401 with a Digest challenge, the right answer to it passes
/// (without `Authorization` upstream), a wrong password does not.
#[tokio::test]
async fn digest_authentication() {
    use md5::{Digest as _, Md5};
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let ha1 = format!("{:x}", Md5::digest(b"alice:staff:secret"));
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "digest.test", "locations": [
            {"path": "/", "backend": "b", "basicDigestAuth": {
                "authType": "digest", "realm": "staff", "credentials": {"alice": ha1}}}
        ]}]
    }))
    .await;
    let mut conn = Conn::open(g.http).await;
    let (status, headers, _) = conn.send("digest.test", "/private?x=1", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = headers["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Digest "), "{challenge}");
    assert!(challenge.contains("qop=\"auth\"") && challenge.contains("realm=\"staff\""));
    let nonce = digest::challenge_nonce(&challenge).unwrap();

    let good = digest::authorization(
        "alice",
        "secret",
        "staff",
        &nonce,
        "GET",
        "/private?x=1",
        1,
        "abc",
    );
    let (status, _, body) = conn
        .send("digest.test", "/private?x=1", &[("authorization", &good)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!echo_of(&body).headers.contains_key("authorization"));

    let wrong = digest::authorization(
        "alice",
        "guess",
        "staff",
        &nonce,
        "GET",
        "/private?x=1",
        2,
        "abc",
    );
    let (status, headers, _) = conn
        .send("digest.test", "/private?x=1", &[("authorization", &wrong)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key("www-authenticate"));
}

/// `https` auth services (TLS with SNI, names resolved by the proxy's resolver) and
/// `auth-always-set-cookie`: the auth answer's cookie reaches the client on a 401 only
/// with it, and always on the sign-in redirect.
#[tokio::test]
async fn external_auth_over_https_and_cookies_on_refusals() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let auth = AuthServer::start().await;
    let port = auth.addr.port();
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "tls.test", "locations": [
            {"path": "/tls", "backend": "b", "externalAuth": {
                "url": format!("https://localhost:{port}/allow"), "responseHeaders": ["X-User"]}},
            {"path": "/plain-cookie", "backend": "b", "externalAuth": {"url": auth.url("/deny-cookie")}},
            {"path": "/always-cookie", "backend": "b", "externalAuth": {
                "url": auth.url("/deny-cookie"), "alwaysSetCookie": true}},
            {"path": "/signin-cookie", "backend": "b", "externalAuth": {
                "url": auth.url("/deny-cookie"), "signin": "https://login.example.com/?rd=$escaped_request_uri"}}
        ]}]
    }))
    .await;
    let h = g.http;
    let (status, _, body) = get(h, "tls.test", "/tls", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo_of(&body).headers["x-user"], "alice");
    let seen = auth.seen("/allow");
    assert_eq!(seen.sni.as_deref(), Some("localhost"));
    assert_eq!(seen.headers["host"], "localhost");

    let (status, headers, _) = get(h, "tls.test", "/plain-cookie", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!headers.contains_key("set-cookie"));
    let (status, headers, _) = get(h, "tls.test", "/always-cookie", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["set-cookie"], "tried=1");
    let (status, headers, _) = get(h, "tls.test", "/signin-cookie?a=1", &[]).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["set-cookie"], "tried=1");
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .starts_with("https://login.example.com/?rd=/signin-cookie"),
        "{:?}",
        headers["location"]
    );
}

/// `satisfy: any`: a client the address list admits skips external authentication;
/// any other client must pass it (nginx's `satisfy any` over `allow`/`deny` and
/// `auth_request`). With `satisfy: all` (the default) both apply.
#[tokio::test]
async fn satisfy_any_with_external_auth() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let auth = AuthServer::start().await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "any.test", "locations": [
            {"path": "/listed", "backend": "b", "satisfy": "any",
             "allowlist": {"cidrs": ["127.0.0.0/8"]},
             "externalAuth": {"url": auth.url("/deny403")}},
            {"path": "/unlisted", "backend": "b", "satisfy": "any",
             "allowlist": {"cidrs": ["10.0.0.0/8"]},
             "externalAuth": {"url": auth.url("/allow")}},
            {"path": "/refused", "backend": "b", "satisfy": "any",
             "allowlist": {"cidrs": ["10.0.0.0/8"]},
             "externalAuth": {"url": auth.url("/deny403")}},
            {"path": "/all", "backend": "b",
             "allowlist": {"cidrs": ["127.0.0.0/8"]},
             "externalAuth": {"url": auth.url("/deny403")}}
        ]}]
    }))
    .await;
    let h = g.http;
    assert_eq!(get(h, "any.test", "/listed", &[]).await.0, StatusCode::OK);
    assert_eq!(auth.seen("/deny403").calls, 0, "not asked");
    assert_eq!(get(h, "any.test", "/unlisted", &[]).await.0, StatusCode::OK);
    assert_eq!(
        get(h, "any.test", "/refused", &[]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(h, "any.test", "/all", &[]).await.0,
        StatusCode::FORBIDDEN
    );
}
