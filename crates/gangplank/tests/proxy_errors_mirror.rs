#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! Custom error pages, request mirroring and the ConfigMap's header settings end to
//! end: the real `gangplank proxy` binary, echo upstreams on 127.0.0.1 (an echo answers
//! `/status/<code>` with that status and reports the headers it received), real
//! requests.

use std::net::SocketAddr;

use bytes::Bytes;
use gangplank_e2e::echo::Echo;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;

mod common;
use common::*;

/// One request on a new connection: `(status, headers, body)`.
async fn request(
    addr: SocketAddr,
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    request(addr, Method::GET, host, path, headers, Vec::new()).await
}

/// The echo an error page came from, and the status the client got.
async fn error_echo(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Echo) {
    let (status, _, body) = get(addr, host, path, headers).await;
    let echo = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{host}{path}: not an echo ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, echo)
}

/// A loopback address nothing listens on.
fn dead_addr() -> SocketAddr {
    free_port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_http_errors_are_served_by_the_error_backend_with_the_original_status() {
    let g = Gangplank::start().await;
    let app = echoes(1).await.remove(0);
    let errors = gangplank_e2e::echo::EchoServer::start("errors", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let custom = gangplank_e2e::echo::EchoServer::start("custom", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ingress = json!({"namespace": "shop", "name": "front"});
    g.apply(json!({
        "backends": [
            backend("upstream-default-backend", &[errors.addr()]),
            backend("app", &[app.addr()]),
            backend("custom-default-backend-shop-oops", &[custom.addr()]),
            backend("empty", &[]),
            backend("dead", &[dead_addr()]),
        ],
        "servers": [
            {"hostname": "global.test", "locations": [
                {"path": "/", "backend": "app", "ingress": ingress, "service": "web", "port": 8080}]},
            {"hostname": "own.test", "locations": [
                {"path": "/", "backend": "app", "ingress": ingress, "service": "web", "port": 8080,
                 "custom-http-errors": [418, 500],
                 "defaultBackendUpstreamName": "custom-default-backend-shop-oops"}]},
            {"hostname": "pass.test", "locations": [
                {"path": "/", "backend": "app", "disable-proxy-intercept-errors": true}]},
            {"hostname": "empty.test", "locations": [{"path": "/", "backend": "empty"}]},
            {"hostname": "down.test", "locations": [
                {"path": "/", "backend": "app", "custom-http-errors": [404],
                 "defaultBackendUpstreamName": "dead"}]},
            {"hostname": "nobody.test", "locations": [
                {"path": "/", "backend": "app", "custom-http-errors": [404],
                 "defaultBackendUpstreamName": "empty"}]}
        ],
        "general": {"custom-http-errors": [404, 503]}
    }))
    .await;
    let h = g.http;

    // The upstream's 404 is replaced by the error backend's page, status kept.
    let (status, e) = error_echo(
        h,
        "global.test",
        "/status/404",
        &[("accept", "application/json"), ("x-request-id", "req-42")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e.instance, "errors");
    assert_eq!(e.method, "GET");
    assert_eq!(e.path, "/");
    assert_eq!(e.headers["x-code"], "404");
    assert_eq!(e.headers["x-format"], "application/json");
    assert_eq!(e.headers["x-original-uri"], "/status/404");
    assert_eq!(e.headers["x-namespace"], "shop");
    assert_eq!(e.headers["x-ingress-name"], "front");
    assert_eq!(e.headers["x-service-name"], "web");
    assert_eq!(e.headers["x-service-port"], "8080");
    assert_eq!(e.headers["x-request-id"], "req-42");
    assert_eq!(e.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(e.host, "global.test");
    // Not listed: passed through untouched.
    let (status, e) = error_echo(h, "global.test", "/status/500", &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(e.instance, "echo-0");
    let (status, _, _) = get(h, "global.test", "/", &[]).await;
    assert_eq!(status, StatusCode::OK);

    // A location's own list replaces the ConfigMap's, and its default-backend answers.
    let (status, e) = error_echo(h, "own.test", "/status/418", &[]).await;
    assert_eq!(status.as_u16(), 418);
    assert_eq!(e.instance, "custom");
    assert_eq!(e.headers["x-code"], "418");
    let (status, e) = error_echo(h, "own.test", "/status/404", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e.instance, "echo-0", "404 is not in the location's list");

    // disable-proxy-intercept-errors: the upstream's own body.
    let (status, e) = error_echo(h, "pass.test", "/status/404", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e.instance, "echo-0");

    // The proxy's own 503 (no endpoints) and 404 (no server) go to the error backend
    // too, as ingress-nginx's error_page catches them.
    let (status, e) = error_echo(h, "empty.test", "/x", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(e.headers["x-code"], "503");
    let (status, e) = error_echo(h, "unknown.test", "/nowhere", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e.instance, "errors");
    assert_eq!(e.headers["x-code"], "404");
    assert_eq!(e.headers["x-original-uri"], "/nowhere");
    assert_eq!(e.headers["x-request-id"].len(), 32, "a generated id");

    // Error backend down, or without endpoints: the proxy's own page, same status.
    for host in ["down.test", "nobody.test"] {
        let (status, headers, body) = get(h, host, "/status/404", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{host}");
        assert_eq!(headers["content-type"], "text/html", "{host}");
        assert!(
            String::from_utf8_lossy(&body).contains("404 Not Found"),
            "{host}"
        );
    }
}

/// CVE-2026-24513: the error path is no way around a location's access control, and
/// the error backend never sees the client's credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_path_never_bypasses_authentication_or_address_lists() {
    let g = Gangplank::start().await;
    let app = echoes(1).await.remove(0);
    let errors = gangplank_e2e::echo::EchoServer::start("errors", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let auth = json!({"authType": "basic", "realm": "r", "credentials": {"u": "{PLAIN}p"}});
    g.apply(json!({
        "backends": [
            backend("upstream-default-backend", &[errors.addr()]),
            backend("app", &[app.addr()]),
        ],
        "servers": [
            {"hostname": "auth.test", "locations": [
                {"path": "/", "backend": "app", "basicDigestAuth": auth,
                 "custom-http-errors": [401, 403, 404]}]},
            // The operator named the protected app itself as the error backend.
            {"hostname": "self.test", "locations": [
                {"path": "/", "backend": "app", "basicDigestAuth": auth,
                 "custom-http-errors": [401, 404], "defaultBackendUpstreamName": "app"}]},
            {"hostname": "allow.test", "locations": [
                {"path": "/", "backend": "app", "allowlist": {"cidrs": ["10.0.0.0/8"]},
                 "custom-http-errors": [403, 404]}]}
        ],
        "general": {"custom-http-errors": [401, 403]}
    }))
    .await;
    let h = g.http;

    for host in ["auth.test", "self.test"] {
        for headers in [
            vec![],
            vec![("authorization", "Basic dTp3cm9uZw==")],
            vec![("x-code", "200"), ("cookie", "s=1")],
        ] {
            let (status, response_headers, body) = get(h, host, "/status/200", &headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{host} {headers:?}");
            assert!(response_headers.contains_key("www-authenticate"));
            assert!(
                !String::from_utf8_lossy(&body).contains("instance"),
                "{host}: no upstream or error backend body: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    for path in ["/", "/status/404", "/status/200"] {
        let (status, _, body) = get(h, "allow.test", path, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("instance"));
    }
    assert_eq!(
        app.requests(),
        0,
        "the protected upstream was never reached"
    );
    assert_eq!(
        errors.requests(),
        0,
        "refused requests never reach the error backend"
    );

    // Admitted requests: the error backend gets no credentials and no cookie.
    let (status, e) = error_echo(
        h,
        "auth.test",
        "/status/404",
        &[
            ("authorization", "Basic dTpw"),
            ("cookie", "session=secret"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e.instance, "errors");
    assert!(!e.headers.contains_key("authorization"));
    assert!(!e.headers.contains_key("cookie"));
    // An upstream's own 401 keeps its status whatever the error backend answers (the
    // echo answers 200): the error path never turns a refusal into a success.
    let (status, e) = error_echo(
        h,
        "self.test",
        "/status/401",
        &[("authorization", "Basic dTpw")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        e.path, "/",
        "the error request never carries the client's path"
    );
    assert!(!e.headers.contains_key("authorization"));
}
