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
            {"hostname": "broken.test", "locations": [{"path": "/", "backend": "dead"}]},
            {"hostname": "down.test", "locations": [
                {"path": "/", "backend": "app", "custom-http-errors": [404],
                 "defaultBackendUpstreamName": "dead"}]},
            {"hostname": "nobody.test", "locations": [
                {"path": "/", "backend": "app", "custom-http-errors": [404],
                 "defaultBackendUpstreamName": "empty"}]}
        ],
        "general": {"custom-http-errors": [404, 502, 503]}
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
    let (status, e) = error_echo(h, "broken.test", "/x", &[]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(e.headers["x-code"], "502");
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

/// What a [`Recorder`] saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    host: String,
    headers: HeaderMap,
    body_length: usize,
}

/// A mirror target that records every request, answering after `delay`.
struct Recorder {
    addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    async fn start(delay: std::time::Duration) -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                log.lock().unwrap().push(Seen {
                                    method: parts.method.to_string(),
                                    path: parts.uri.to_string(),
                                    host: parts
                                        .headers
                                        .get("host")
                                        .map(|h| h.to_str().unwrap().to_owned())
                                        .unwrap_or_default(),
                                    headers: parts.headers,
                                    body_length: body.len(),
                                });
                                tokio::time::sleep(delay).await;
                                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                    Bytes::from_static(b"mirror"),
                                )))
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Recorder { addr, seen, task }
    }

    /// Waits (up to 10 s) until `n` requests were seen; returns them.
    async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mirror saw {} of {n} requests",
                seen.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_gets_a_copy_and_never_slows_the_main_request() {
    let g = Gangplank::start().await;
    let app = echoes(1).await.remove(0);
    let with_body = Recorder::start(std::time::Duration::ZERO).await;
    let without_body = Recorder::start(std::time::Duration::ZERO).await;
    let slow = Recorder::start(std::time::Duration::from_secs(5)).await;
    let target = |addr: SocketAddr, rest: &str| format!("http://{addr}{rest}");
    g.apply(json!({
        "backends": [backend("app", &[app.addr()])],
        "servers": [
            {"hostname": "copy.test", "locations": [{"path": "/", "backend": "app",
                "mirror": {"target": target(with_body.addr, "/copy$request_uri"), "host": "shadow.test"}}]},
            {"hostname": "nobody.test", "locations": [{"path": "/", "backend": "app",
                "mirror": {"target": target(without_body.addr, "$request_uri"), "requestBody": false}}]},
            {"hostname": "dead.test", "locations": [{"path": "/", "backend": "app",
                "mirror": {"target": target(dead_addr(), "$request_uri")}}]},
            {"hostname": "slow.test", "locations": [{"path": "/", "backend": "app",
                "mirror": {"target": target(slow.addr, "$request_uri")}}]}
        ],
        "general": {"proxy-body-size": "8m"}
    }))
    .await;
    let h = g.http;

    // A GET and a POST with a body: both copied, body included, Host = mirror-host.
    let (status, _, _) = get(h, "copy.test", "/a/b?c=1", &[("x-team", "web")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = request(
        h,
        Method::POST,
        "copy.test",
        "/upload",
        &[],
        vec![b'x'; 1000],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let main: Echo = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        main.body_length, 1000,
        "the main upstream gets the whole body"
    );
    let seen = with_body.wait_for(2).await;
    let get_copy = seen.iter().find(|s| s.method == "GET").unwrap();
    assert_eq!(get_copy.path, "/copy/a/b?c=1");
    assert_eq!(get_copy.host, "shadow.test");
    assert_eq!(get_copy.headers["x-team"], "web");
    assert_eq!(get_copy.headers["x-forwarded-host"], "copy.test");
    let post_copy = seen.iter().find(|s| s.method == "POST").unwrap();
    assert_eq!(post_copy.path, "/copy/upload");
    assert_eq!(post_copy.body_length, 1000);

    // A body over the 1 MiB cap: the upstream gets it, the copy goes without it.
    let (status, _, body) = request(
        h,
        Method::POST,
        "copy.test",
        "/big",
        &[],
        vec![b'y'; 2 * 1024 * 1024],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let main: Echo = serde_json::from_slice(&body).unwrap();
    assert_eq!(main.body_length, 2 * 1024 * 1024);
    let seen = with_body.wait_for(3).await;
    let big = seen.iter().find(|s| s.path == "/copy/big").unwrap();
    assert_eq!(big.body_length, 0);

    // mirror-request-body off: the method and headers, no body; Host = the target's.
    let (status, _, _) = request(h, Method::PUT, "nobody.test", "/p", &[], vec![b'z'; 100]).await;
    assert_eq!(status, StatusCode::OK);
    let seen = without_body.wait_for(1).await;
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].path, "/p");
    assert_eq!(seen[0].body_length, 0);
    assert_eq!(seen[0].host, without_body.addr.to_string());

    // A dead or slow (5 s) mirror changes neither the answer nor its latency.
    for host in ["dead.test", "slow.test"] {
        for i in 0..5 {
            let started = std::time::Instant::now();
            let (status, _, body) = request(
                h,
                Method::POST,
                host,
                &format!("/r{i}"),
                &[],
                vec![b'q'; 10],
            )
            .await;
            let took = started.elapsed();
            assert_eq!(status, StatusCode::OK, "{host}");
            let main: Echo = serde_json::from_slice(&body).unwrap();
            assert_eq!(main.body_length, 10);
            assert!(
                took < std::time::Duration::from_secs(2),
                "{host}: the main request took {took:?}"
            );
        }
    }
    assert!(
        !slow.wait_for(1).await.is_empty(),
        "the slow mirror got its copies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_server_tokens_and_underscored_headers() {
    let g = Gangplank::start().await;
    let app = echoes(1).await.remove(0);
    let config = |general: serde_json::Value| {
        json!({
            "backends": [backend("app", &[app.addr()])],
            "servers": [{"hostname": "h.test", "locations": [{"path": "/", "backend": "app"}]}],
            "general": general
        })
    };
    let h = g.http;
    let send = || async {
        let (status, headers, body) =
            get(h, "h.test", "/", &[("x_user", "admin"), ("x-user", "me")]).await;
        assert_eq!(status, StatusCode::OK);
        let echo: Echo = serde_json::from_slice(&body).unwrap();
        (headers, echo)
    };

    // Defaults: an id is generated, no version, underscored names are dropped.
    g.apply(config(json!({}))).await;
    let (headers, e) = send().await;
    assert_eq!(headers["server"], "gangplank");
    assert_eq!(e.headers["x-request-id"].len(), 32);
    assert_eq!(e.headers["x-user"], "me");
    assert!(!e.headers.contains_key("x_user"));

    g.apply(config(json!({
        "generate-request-id": false,
        "server-tokens": true,
        "enable-underscores-in-headers": true
    })))
    .await;
    let (headers, e) = send().await;
    let server = headers["server"].to_str().unwrap();
    assert!(server.starts_with("gangplank/"), "{server}");
    assert!(!e.headers.contains_key("x-request-id"));
    assert_eq!(e.headers["x_user"], "admin");
    // The client's own id is still passed on.
    let (_, _, body) = get(h, "h.test", "/", &[("x-request-id", "abc")]).await;
    let e: Echo = serde_json::from_slice(&body).unwrap();
    assert_eq!(e.headers["x-request-id"], "abc");
    // The proxy's own pages carry the version too.
    let (status, headers, _) = get(h, "nowhere.test", "/", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        headers["server"]
            .to_str()
            .unwrap()
            .starts_with("gangplank/")
    );

    // ignore-invalid-headers off: underscored names pass even with underscores off.
    g.apply(config(json!({"ignore-invalid-headers": false})))
        .await;
    let (_, e) = send().await;
    assert_eq!(e.headers["x_user"], "admin");
}
