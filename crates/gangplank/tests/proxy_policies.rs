#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! Request policies end to end: the real `gangplank proxy` binary, echo upstreams on
//! 127.0.0.1, a `Configuration` with policy fields posted through the admin socket,
//! real requests. Each test asserts status codes, headers and what the upstream
//! received (the echo's JSON).

use std::net::SocketAddr;
use std::process::Command;

use bytes::Bytes;
use gangplank_e2e::echo::Echo;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::*;

/// The upstream's view of a request that must succeed.
async fn echo(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Echo {
    let (status, _, body) = get(addr, host, path, headers).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{host}{path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

/// Sends raw bytes on a new connection and reads the answer until the proxy closes.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The proxy may answer (and stop reading) before everything was written.
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

fn chunked(host: &str, path: &str, chunks: &[usize]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for size in chunks {
        out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        out.extend(std::iter::repeat_n(b'a', *size));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .map_or("", |v| v.to_str().unwrap_or("<binary>"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_control_and_the_real_client_address() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "acl.test", "locations": [
            {"path": "/open", "backend": "b"},
            {"path": "/allow", "backend": "b", "allowlist": {"cidrs": ["203.0.113.0/24"]}},
            {"path": "/deny", "backend": "b", "denylist": {"cidrs": ["127.0.0.1"]}},
            {"path": "/any", "backend": "b", "allowlist": {"cidrs": ["10.0.0.0/8"]}, "satisfy": "any",
             "basicDigestAuth": {"authType": "basic", "realm": "r", "credentials": {"u": "{PLAIN}p"}}}
        ]}],
        "general": {
            "use-forwarded-headers": true,
            "compute-full-forwarded-for": true,
            "proxy-real-ip-cidr": ["127.0.0.1/32"],
            "block-cidrs": ["192.0.2.0/24"],
            "block-user-agents": ["~*badbot", "curl/0.1"],
            "block-referers": ["https://spam.example/"]
        }
    }))
    .await;
    let h = g.http;
    let xff = |ip| [("x-forwarded-for", ip)];

    assert_eq!(get(h, "acl.test", "/open", &[]).await.0, StatusCode::OK);
    // Allowlist: the real client address from the trusted peer (127.0.0.1) decides.
    assert_eq!(
        get(h, "acl.test", "/allow", &[]).await.0,
        StatusCode::FORBIDDEN
    );
    let e = echo(h, "acl.test", "/allow", &xff("203.0.113.7")).await;
    assert_eq!(e.headers["x-real-ip"], "203.0.113.7");
    assert_eq!(e.headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(e.headers["x-original-forwarded-for"], "203.0.113.7");
    assert_eq!(
        get(h, "acl.test", "/allow", &xff("198.51.100.1")).await.0,
        StatusCode::FORBIDDEN
    );
    // Denylist.
    assert_eq!(
        get(h, "acl.test", "/deny", &[]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(h, "acl.test", "/deny", &xff("198.51.100.1")).await.0,
        StatusCode::OK
    );
    // ConfigMap blocks: 403 everywhere.
    assert_eq!(
        get(h, "acl.test", "/open", &xff("192.0.2.5")).await.0,
        StatusCode::FORBIDDEN
    );
    for (name, value) in [
        ("user-agent", "Mozilla/5.0 (BadBot)"),
        ("user-agent", "CURL/0.1"),
        ("referer", "https://spam.example/"),
    ] {
        let (status, headers, _) = get(h, "acl.test", "/open", &[(name, value)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert_eq!(header(&headers, "server"), "gangplank");
    }
    assert_eq!(
        get(h, "acl.test", "/open", &[("user-agent", "curl/0.1.1")])
            .await
            .0,
        StatusCode::OK
    );
    // satisfy any: the address or the credentials.
    assert_eq!(
        get(h, "acl.test", "/any", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(h, "acl.test", "/any", &xff("10.9.8.7")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(h, "acl.test", "/any", &[("authorization", "Basic dTpw")])
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [
            {"hostname": "r.test", "locations": [
                {"path": "/", "backend": "b", "redirect": {"appRoot": "/app"}},
                {"path": "/secure", "backend": "b", "redirect": {"forceSslRedirect": true}},
                {"path": "/keep", "backend": "b", "redirect": {"forceSslRedirect": true, "preserveTrailingSlash": true}},
                {"path": "/.well-known/acme-challenge", "backend": "b", "redirect": {"forceSslRedirect": true}},
                {"path": "/moved", "backend": "b", "redirect": {"permanentUrl": "https://new.example.com$request_uri"}},
                {"path": "/coded", "backend": "b", "redirect": {"permanentUrl": "https://new.example.com/", "permanentCode": 308}},
                {"path": "/temp", "backend": "b", "redirect": {"permanentUrl": "https://p.example.com/", "temporalUrl": "https://t.example.com/down", "temporalCode": 307}}
            ]},
            {"hostname": "example.test", "redirectFromToWww": true, "locations": [{"path": "/", "backend": "b"}]}
        ],
        "general": {"http-redirect-code": 301}
    }))
    .await;
    let h = g.http;
    let cases = [
        (
            "r.test",
            "/",
            StatusCode::FOUND,
            "http://r.test/app".to_owned(),
        ),
        (
            "r.test",
            "/secure/x/",
            StatusCode::MOVED_PERMANENTLY,
            "https://r.test/secure/x".to_owned(),
        ),
        (
            "r.test",
            "/secure/x/?q=1",
            StatusCode::MOVED_PERMANENTLY,
            "https://r.test/secure/x/?q=1".to_owned(),
        ),
        (
            "r.test",
            "/keep/x/",
            StatusCode::MOVED_PERMANENTLY,
            "https://r.test/keep/x/".to_owned(),
        ),
        (
            "r.test",
            "/moved/a?b=1",
            StatusCode::MOVED_PERMANENTLY,
            "https://new.example.com/moved/a?b=1".to_owned(),
        ),
        (
            "r.test",
            "/coded",
            StatusCode::PERMANENT_REDIRECT,
            "https://new.example.com/".to_owned(),
        ),
        (
            "r.test",
            "/temp",
            StatusCode::TEMPORARY_REDIRECT,
            "https://t.example.com/down".to_owned(),
        ),
        (
            "www.example.test",
            "/a/b/?c=1",
            StatusCode::MOVED_PERMANENTLY,
            format!("http://example.test:{}/a/b/?c=1", h.port()),
        ),
        (
            "www.example.test",
            "/a/",
            StatusCode::MOVED_PERMANENTLY,
            format!("http://example.test:{}/a", h.port()),
        ),
    ];
    for (host, path, status, location) in cases {
        let (got, headers, _) = get(h, host, path, &[]).await;
        assert_eq!(got, status, "{host}{path}");
        assert_eq!(header(&headers, "location"), location, "{host}{path}");
    }
    // Not redirected: app-root only for `/`, ACME challenges, the real host.
    assert_eq!(echo(h, "r.test", "/other", &[]).await.path, "/other");
    echo(h, "r.test", "/.well-known/acme-challenge/token", &[]).await;
    echo(h, "example.test", "/a/", &[]).await;
}

/// curl over TLS: `(status, response headers)`.
fn curl_tls(https: SocketAddr, host: &str, path: &str) -> (String, String) {
    let url = format!("https://{host}:{}{path}", https.port());
    let resolve = format!("{host}:{}:127.0.0.1", https.port());
    let out = Command::new("curl")
        .args([
            "-sk",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--resolve",
            &resolve,
            "-w",
            "%{http_code}",
        ])
        .arg(&url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = stdout.rsplit('\n').next().unwrap_or("").to_owned();
    (status, stdout.to_ascii_lowercase())
}

const PEM: &str = concat!(
    include_str!("../../model/tests/fixtures/example.com.crt"),
    include_str!("../../model/tests/fixtures/example.com.key")
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_with_a_certificate_redirect_to_https_and_send_hsts() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [
            {"hostname": "secure.example.com", "locations": [{"path": "/", "backend": "b"}]},
            {"hostname": "plain.example.org", "locations": [{"path": "/", "backend": "b"}]}
        ],
        "sslConfiguration": {"certificates": {"c": PEM}, "servers": {"secure.example.com": "c"}},
        "general": {"hsts-preload": true}
    }))
    .await;
    let (status, headers, _) = get(g.http, "secure.example.com", "/path/?x=1", &[]).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        header(&headers, "location"),
        "https://secure.example.com/path/?x=1"
    );
    assert!(
        !headers.contains_key("strict-transport-security"),
        "not on http"
    );
    // No certificate of its own: served over http.
    echo(g.http, "plain.example.org", "/", &[]).await;

    let https = g.https;
    let (status, headers) =
        tokio::task::spawn_blocking(move || curl_tls(https, "secure.example.com", "/x"))
            .await
            .unwrap();
    assert_eq!(status, "200", "{headers}");
    assert!(
        headers.contains("strict-transport-security: max-age=31536000; includesubdomains; preload"),
        "{headers}"
    );
    // Part A.2: no HSTS for a host served with the fallback certificate.
    let (status, headers) =
        tokio::task::spawn_blocking(move || curl_tls(https, "plain.example.org", "/x"))
            .await
            .unwrap();
    assert_eq!(status, "200", "{headers}");
    assert!(!headers.contains("strict-transport-security"), "{headers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_and_configured_headers() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "rw.test", "locations": [
            {"path": "/api(/|$)(.*)", "backend": "b", "rewrite": {"target": "/$2"}, "xForwardedPrefix": "/api",
             "customHeaders": {"headers": {"X-Team": "web", "X-Frame-Options": "SAMEORIGIN"}}},
            {"path": "/v([0-9]+)/(.*)", "backend": "b", "rewrite": {"target": "/$2/version/$1?from=rewrite"}},
            {"path": "/vhost", "backend": "b", "upstream-vhost": "internal.svc.cluster.local"},
            {"path": "/plain", "backend": "b", "xForwardedPrefix": "/ignored"}
        ]}],
        "general": {
            "add-headers": {"X-Frame-Options": "DENY", "X-Global": "1"},
            "proxy-set-headers": {"X-Env": "test", "X-Client": "$remote_addr", "X-Forwarded-Proto": "https"}
        }
    }))
    .await;
    let h = g.http;
    let (status, headers, body) = get(h, "rw.test", "/API/users/7?x=1", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let e: Echo = serde_json::from_slice(&body).unwrap();
    assert_eq!(e.path, "/users/7?x=1");
    assert_eq!(e.headers["x-forwarded-prefix"], "/api");
    assert_eq!(e.headers["x-env"], "test");
    assert_eq!(e.headers["x-client"], "127.0.0.1");
    assert_eq!(
        e.headers["x-forwarded-proto"], "https",
        "proxy-set-headers come last"
    );
    assert_eq!(header(&headers, "x-team"), "web");
    assert_eq!(
        header(&headers, "x-frame-options"),
        "SAMEORIGIN",
        "custom-headers win"
    );
    assert_eq!(header(&headers, "x-global"), "1");
    assert_eq!(echo(h, "rw.test", "/api", &[]).await.path, "/");
    assert_eq!(
        echo(h, "rw.test", "/v2/items/a%20b?page=3", &[]).await.path,
        "/items/a%20b/version/2?from=rewrite&page=3"
    );
    let e = echo(h, "rw.test", "/vhost", &[]).await;
    assert_eq!(e.host, "internal.svc.cluster.local");
    let e = echo(h, "rw.test", "/plain/x", &[]).await;
    assert_eq!(e.path, "/plain/x");
    assert!(
        !e.headers.contains_key("x-forwarded-prefix"),
        "only with a rewrite"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_size_limits() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "b.test", "locations": [
            {"path": "/", "backend": "b"},
            {"path": "/small", "backend": "b", "proxy": {"bodySize": "1k"}},
            {"path": "/unlimited", "backend": "b", "proxy": {"bodySize": "0"}}
        ]}]
    }))
    .await;
    let h = g.http;
    let post = |path: &'static str, size: usize| {
        request(h, Method::POST, "b.test", path, &[], vec![b'x'; size])
    };
    assert_eq!(post("/small", 2000).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, body) = post("/small", 1024).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Echo>(&body).unwrap().body_length,
        1024
    );
    let (status, _, body) = post("/unlimited", 3 << 20).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Echo>(&body).unwrap().body_length,
        3 << 20
    );
    // The default 1m, refused on the declared length alone.
    let answer = raw(
        h,
        b"POST / HTTP/1.1\r\nHost: b.test\r\nContent-Length: 1048577\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Chunked bodies are counted while they stream.
    let answer = raw(h, &chunked("b.test", "/small", &[400, 400, 400])).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let answer = raw(h, &chunked("b.test", "/small", &[300, 300])).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"bodyLength\":600"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_cors() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "auth.test", "locations": [
            {"path": "/", "backend": "b",
             "basicDigestAuth": {"authType": "basic", "realm": "Staff only", "credentials": {
                 "alice": "$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC",
                 "bob": "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/",
                 "carol": "{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=",
                 "dave": "aboDgbkTt9i3."
             }},
             "corsConfig": {"enabled": true, "allowOrigin": ["https://app.example.org", "https://*.example.net"], "exposeHeaders": ["X-Total"]}},
            {"path": "/map", "backend": "b",
             "basicDigestAuth": {"authType": "basic", "realm": "m", "secretType": "auth-map", "credentials": {"erin": "{PLAIN}secret"}}},
            {"path": "/public", "backend": "b", "corsConfig": {"enabled": true}}
        ]}]
    }))
    .await;
    let h = g.http;
    // base64("<user>:myPassword")
    let alice = ("authorization", "Basic YWxpY2U6bXlQYXNzd29yZA==");
    let bob = ("authorization", "Basic Ym9iOm15UGFzc3dvcmQ=");
    let carol = ("authorization", "Basic Y2Fyb2w6bXlQYXNzd29yZA==");
    let dave = ("authorization", "Basic ZGF2ZTpteVBhc3N3b3Jk");
    let wrong = ("authorization", "Basic YWxpY2U6d3Jvbmc=");

    let (status, headers, _) = get(h, "auth.test", "/", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&headers, "www-authenticate"),
        "Basic realm=\"Staff only\""
    );
    for bad in [wrong, dave] {
        assert_eq!(
            get(h, "auth.test", "/", &[bad]).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    for good in [alice, bob, carol, alice] {
        let e = echo(h, "auth.test", "/", &[good]).await;
        assert!(
            !e.headers.contains_key("authorization"),
            "credentials are not forwarded"
        );
    }
    echo(
        h,
        "auth.test",
        "/map",
        &[("authorization", "Basic ZXJpbjpzZWNyZXQ=")],
    )
    .await;
    assert_eq!(
        get(h, "auth.test", "/map", &[alice]).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Preflight: answered by the proxy, before authentication.
    let origin = ("origin", "https://app.example.org");
    let (status, headers, body) = request(
        h,
        Method::OPTIONS,
        "auth.test",
        "/",
        &[origin, ("access-control-request-method", "PUT")],
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        "https://app.example.org"
    );
    assert_eq!(
        header(&headers, "access-control-allow-methods"),
        "GET, PUT, POST, DELETE, PATCH, OPTIONS"
    );
    assert_eq!(header(&headers, "access-control-allow-credentials"), "true");
    assert_eq!(header(&headers, "access-control-max-age"), "1728000");
    assert_eq!(header(&headers, "content-type"), "text/plain charset=UTF-8");
    // hyper drops Content-Length from a 204 on the wire (RFC 9110 §8.6), as nginx's
    // header filter does.
    assert!(matches!(header(&headers, "content-length"), "" | "0"));
    // Normal responses, and the 401, carry the headers for allowed origins only.
    let (status, headers, _) = get(h, "auth.test", "/", &[origin, alice]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        "https://app.example.org"
    );
    assert_eq!(header(&headers, "access-control-expose-headers"), "X-Total");
    assert_eq!(header(&headers, "vary"), "Origin");
    let (status, headers, _) = get(
        h,
        "auth.test",
        "/",
        &[("origin", "https://a-b.example.net")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        "https://a-b.example.net"
    );
    let (_, headers, _) = get(
        h,
        "auth.test",
        "/",
        &[("origin", "https://evil.test"), alice],
    )
    .await;
    assert!(!headers.contains_key("access-control-allow-origin"));
    let (status, _, _) = request(
        h,
        Method::OPTIONS,
        "auth.test",
        "/",
        &[("origin", "https://evil.test")],
        Vec::new(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no preflight for a foreign origin"
    );
    // `*`: every response, no Origin needed.
    let (_, headers, _) = get(h, "auth.test", "/public", &[]).await;
    assert_eq!(header(&headers, "access-control-allow-origin"), "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_policies_and_upstream_protocols_on_one_host() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let ca = include_str!("../../model/tests/fixtures/example.com.crt");
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "fc.test", "locations": [
            {"path": "/open", "backend": "b"},
            {"path": "/tls", "backend": "b", "certificateAuth": {"secret": {"namespace": "d", "name": "ca"}, "caPem": ca}},
            {"path": "/grpc", "backend": "b", "backend-protocol": "GRPC"},
            {"path": "/grpcs", "backend": "b", "backend-protocol": "GRPCS"},
            {"path": "/https", "backend": "b", "backend-protocol": "HTTPS"},
            {"path": "/auto", "backend": "b", "backend-protocol": "AUTO_HTTP"},
            {"path": "/fcgi", "backend": "b", "backend-protocol": "FCGI"},
            {"path": "/mirror", "backend": "b", "mirror": {"target": "https://mirror.example.com/"}, "custom-http-errors": [404]}
        ]}]
    }))
    .await;
    let h = g.http;
    // External and digest authentication (proxy_external_auth.rs) and client
    // certificates (proxy_listener.rs) are enforced: a plain-HTTP request can carry no
    // certificate, so a location requiring one answers 400, never the upstream.
    for (path, expected) in [
        ("/open", StatusCode::OK),
        ("/tls", StatusCode::BAD_REQUEST),
        // The echo upstream speaks h2c but no TLS (proxy_upstream_protocols.rs covers
        // these protocols); FastCGI is not spoken at all.
        ("/grpc", StatusCode::OK),
        ("/grpcs", StatusCode::BAD_GATEWAY),
        ("/https", StatusCode::BAD_GATEWAY),
        ("/fcgi", StatusCode::BAD_GATEWAY),
        // HTTP clients of AUTO_HTTP get plain HTTP; a mirror never changes the answer.
        ("/auto", StatusCode::OK),
        ("/mirror", StatusCode::OK),
    ] {
        assert_eq!(get(h, "fc.test", path, &[]).await.0, expected, "{path}");
    }
}

/// The statuses of `n` requests for `path`, one after the other on one keep-alive
/// connection.
async fn statuses(
    conn: &mut Conn,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(conn.send(host, path, headers).await.0.as_u16());
    }
    out
}

/// `limit-rps` / `limit-rpm` with `nodelay`: `burst + 1` requests pass at once, then
/// `limit-req-status-code`; per real client address; `limit-allowlist` exempt.
///
/// The harness runs `--workers 2` and limit state is per worker (see
/// `gangplank_proxy::policy::limit`): each client's burst here goes over one keep-alive
/// connection, which one worker serves, so the counts are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_client_address() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "rl.test", "locations": [
            {"path": "/rps", "backend": "b", "rateLimit": {"rps": 1, "burstMultiplier": 2}},
            {"path": "/rpm", "backend": "b", "rateLimit": {"rpm": 1, "burstMultiplier": 2}},
            {"path": "/allow", "backend": "b", "rateLimit": {"rpm": 1, "burstMultiplier": 1, "allowlist": ["127.0.0.1"]}}
        ]}],
        "general": {
            "limit-req-status-code": 429,
            "use-forwarded-headers": true,
            "proxy-real-ip-cidr": ["127.0.0.1/32"]
        }
    }))
    .await;
    let h = g.http;
    let ok_then_limited = |ok: usize, n: usize| {
        let mut v = vec![200; ok];
        v.resize(n, 429);
        v
    };

    // rpm 1, burst 1 × 2: exactly 3 pass (one more only after 60 s).
    let mut conn = Conn::open(h).await;
    assert_eq!(
        statuses(&mut conn, "rl.test", "/rpm", &[], 10).await,
        ok_then_limited(3, 10)
    );
    let (status, headers, body) = conn.send("rl.test", "/rpm", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&headers, "server"), "gangplank");
    assert!(
        String::from_utf8_lossy(&body).contains("429"),
        "a small error page"
    );
    // Keyed by the real client address (from the trusted peer's X-Forwarded-For).
    for client in ["203.0.113.5", "203.0.113.6"] {
        let mut conn = Conn::open(h).await;
        let xff = [("x-forwarded-for", client)];
        assert_eq!(
            statuses(&mut conn, "rl.test", "/rpm", &xff, 5).await,
            ok_then_limited(3, 5),
            "{client}"
        );
    }

    // rps 1, burst 2: the same 3 at once, then one more per second.
    let mut conn = Conn::open(h).await;
    let started = std::time::Instant::now();
    let got = statuses(&mut conn, "rl.test", "/rps", &[], 10).await;
    let elapsed = started.elapsed();
    let passed = got.iter().filter(|s| **s == 200).count();
    assert_eq!(got[..3], [200, 200, 200], "{got:?}");
    assert!(
        passed <= 3 + elapsed.as_secs() as usize,
        "{got:?} in {elapsed:?}"
    );
    if elapsed < std::time::Duration::from_millis(900) {
        assert_eq!(got, ok_then_limited(3, 10), "in {elapsed:?}");
    }

    // limit-allowlist: 127.0.0.1 is never limited; others are (burst 1: 2 pass).
    let mut conn = Conn::open(h).await;
    assert_eq!(
        statuses(&mut conn, "rl.test", "/allow", &[], 10).await,
        vec![200; 10]
    );
    let xff = [("x-forwarded-for", "203.0.113.9")];
    assert_eq!(
        statuses(&mut conn, "rl.test", "/allow", &xff, 4).await,
        ok_then_limited(2, 4)
    );
}

/// `limit-connections`: requests in flight per client address, freed when the
/// response ends or the client gives up. All requests share one HTTP/2 connection
/// (each stream counts, as in nginx), so one worker sees them all (limit state is
/// per worker under the harness's `--workers 2`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_count_requests_in_flight() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "lc.test", "locations": [
            {"path": "/", "backend": "b", "rateLimit": {"connections": 1}}
        ]}]
    }))
    .await;
    let stream = tokio::net::TcpStream::connect(g.http).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let send = |path: &'static str| {
        let mut sender = sender.clone();
        async move {
            let request = Request::get(format!("http://lc.test{path}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status().as_u16();
            response.into_body().collect().await.unwrap();
            status
        }
    };

    // Two concurrent slow requests: one passes, the other gets limit-conn-status-code.
    let (a, b) = tokio::join!(send("/delay/500"), send("/delay/500"));
    let mut both = [a, b];
    both.sort_unstable();
    assert_eq!(both, [200, 503]);
    // The slot was freed with the end of the response body.
    for _ in 0..3 {
        assert_eq!(send("/").await, 200);
    }

    // A client that gives up (the stream is reset) frees its slot at once.
    let mut slow = tokio::spawn(send("/delay/5000"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            std::time::Instant::now() < deadline,
            "the slow request never started"
        );
        if slow.is_finished() {
            // It arrived while a probe held the slot (and got 503): again.
            slow = tokio::spawn(send("/delay/5000"));
            continue;
        }
        if send("/").await == 503 {
            break;
        }
    }
    slow.abort();
    let aborted = std::time::Instant::now();
    while send("/").await != 200 {
        assert!(
            aborted.elapsed() < std::time::Duration::from_secs(3),
            "slot not freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
