#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! The data plane end to end in one machine: the real `gangplank proxy` binary, echo
//! upstreams on 127.0.0.1, configuration posted through the admin socket, requests
//! over real TCP. Load here is bounded in count and time and targets 127.0.0.1 only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gangplank_e2e::echo::{Echo, EchoServer};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_balances_and_answers_errors() {
    let g = Gangplank::start().await;
    let upstreams = echoes(3).await;
    let addrs: Vec<SocketAddr> = upstreams.iter().map(EchoServer::addr).collect();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    g.apply(json!({
        "backends": [
            backend("default-echo-80", &addrs),
            backend("default-empty-80", &[]),
            backend("default-dead-80", &[dead]),
            backend("upstream-default-backend", &[]),
        ],
        "servers": [{
            "hostname": "app.example.com",
            "locations": [
                {"path": "/", "pathType": "Prefix", "backend": "default-echo-80"},
                {"path": "/empty", "pathType": "Prefix", "backend": "default-empty-80"},
                {"path": "/dead", "pathType": "Prefix", "backend": "default-dead-80"},
                {"path": "/missing", "pathType": "Prefix", "backend": "no-such-backend"},
                {"path": "/denied", "pathType": "Prefix", "backend": "default-echo-80", "denied": "invalid annotation"},
                {"path": "/exact", "pathType": "Exact", "backend": "default-echo-80"}
            ]
        }, {
            "hostname": "_",
            "locations": [{"path": "/", "pathType": "Prefix", "backend": "upstream-default-backend", "isDefBackend": true}]
        }]
    }))
    .await;

    let mut conn = Conn::open(g.http).await;
    // Round robin: 600 requests over 3 endpoints give exactly 200 each.
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..600 {
        let echo = conn.echo("app.example.com", "/anything?x=1").await;
        *counts.entry(echo.instance).or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|c| *c == 200), "{counts:?}");

    // Forwarded request: original URI and Host, forwarded headers.
    let echo = conn.echo("app.example.com", "/a/../b?q=1").await;
    assert_eq!(echo.path, "/a/../b?q=1");
    assert_eq!(echo.host, "app.example.com");
    assert_eq!(echo.headers["x-real-ip"], "127.0.0.1");
    assert_eq!(echo.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo.headers["x-forwarded-host"], "app.example.com");
    assert_eq!(echo.headers["x-forwarded-proto"], "http");
    assert_eq!(echo.headers["x-forwarded-port"], g.http.port().to_string());
    assert_eq!(echo.headers["x-request-id"].len(), 32);

    let cases = [
        ("unknown.example.com", "/", StatusCode::NOT_FOUND),
        ("app.example.com", "/empty", StatusCode::SERVICE_UNAVAILABLE),
        ("app.example.com", "/dead/x", StatusCode::BAD_GATEWAY),
        (
            "app.example.com",
            "/missing",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            "app.example.com",
            "/denied",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        ("app.example.com", "/exact", StatusCode::OK),
        (
            "app.example.com",
            "/../../etc/passwd",
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (host, path, expected) in cases {
        let (status, headers, _) = conn.send(host, path, &[]).await;
        assert_eq!(status, expected, "{host}{path}");
        assert_eq!(headers["server"], "gangplank", "{host}{path}");
    }

    // stub_status counts the proxy's traffic.
    let status = g.admin().nginx_status().await.unwrap();
    assert!(status.requests >= 607, "{status:?}");
    assert!(status.accepts >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_another_endpoint_when_one_is_down() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    g.apply(one_route("h", &[dead, upstreams[0].addr()])).await;
    let mut conn = Conn::open(g.http).await;
    for _ in 0..20 {
        assert_eq!(conn.echo("h", "/").await.instance, "echo-0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstreams_get_504() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "h", "locations": [{"path": "/", "backend": "b", "proxy": {"readTimeout": 1}}]}]
    }))
    .await;
    let mut conn = Conn::open(g.http).await;
    let started = Instant::now();
    let (status, _, _) = conn.send("h", "/delay/3000", &[]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_millis(2900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_connections_are_piped_both_ways() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(one_route("ws.example.com", &[upstreams[0].addr()]))
        .await;
    let mut stream = tokio::net::TcpStream::connect(g.http).await.unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for round in 0..100 {
        let message = format!("ping {round}");
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, message.as_bytes());
    }
}

/// Endpoints change 20 times a second for 3 seconds while requests flow: no request
/// fails, and every endpoint that stays alive keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfiguration_under_load_drops_nothing() {
    let g = Gangplank::start().await;
    let upstreams = echoes(4).await;
    let addrs: Vec<SocketAddr> = upstreams.iter().map(EchoServer::addr).collect();
    let config = |eps: &[SocketAddr]| {
        json!({
            "backends": [backend("b", eps)],
            "servers": [{"hostname": "h", "locations": [{"path": "/", "backend": "b"}]}]
        })
    };
    g.apply(config(&addrs[..2])).await;

    let http = g.http;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let mut conn = Conn::open(http).await;
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, _, _) = conn.send("h", "/", &[]).await;
                if status == StatusCode::OK {
                    ok += 1
                } else {
                    failed += 1
                }
            }
            (ok, failed)
        }));
    }
    let started = Instant::now();
    let mut changes = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let eps = match changes % 3 {
            0 => &addrs[1..3],
            1 => &addrs[2..4],
            _ => &addrs[..2],
        };
        g.apply(config(eps)).await;
        changes += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for task in load {
        let (o, f) = task.await.unwrap();
        ok += o;
        failed += f;
    }
    assert!(changes >= 30, "only {changes} changes");
    assert!(ok > 100, "only {ok} requests");
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(one_route("h", &[upstreams[0].addr()])).await;
    let http = g.http;
    let slow =
        tokio::spawn(async move { Conn::open(http).await.send("h", "/delay/1500", &[]).await.0 });
    tokio::time::sleep(Duration::from_millis(300)).await;
    g.terminate();
    assert_eq!(slow.await.unwrap(), StatusCode::OK);
    // New connections are refused once draining started.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_access_log() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("default-echo-80", &[upstreams[0].addr()])],
        "servers": [{"hostname": "app.example.com", "locations": [{
            "path": "/api", "pathType": "Prefix", "backend": "default-echo-80",
            "ingress": {"namespace": "default", "name": "web"}, "service": "echo"
        }, {
            // `enable-access-log: "false"`: counted in metrics, never logged.
            "path": "/quiet", "pathType": "Prefix", "backend": "default-echo-80",
            "ingress": {"namespace": "default", "name": "web"}, "service": "echo",
            "logs": {"access": false}
        }]}]
    }))
    .await;
    let mut conn = Conn::open(g.http).await;
    conn.echo("app.example.com", "/quiet/x").await;
    for _ in 0..3 {
        conn.echo("app.example.com", "/api/x").await;
    }
    assert_eq!(
        conn.send("unknown.example.com", "/", &[]).await.0,
        StatusCode::NOT_FOUND
    );

    // Telemetry is asynchronous: poll until the records arrived.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let mut m = Conn::open(g.metrics).await;
        let (status, _, body) = m.send("localhost", "/metrics", &[]).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(body.to_vec()).unwrap();
        if text.contains("status=\"200\"} 3") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let series = "nginx_ingress_controller_requests{canary=\"\",controller_class=\"gangplank.io/ingress-controller\",controller_namespace=\"\",controller_pod=\"\",host=\"app.example.com\",ingress=\"web\",method=\"GET\",namespace=\"default\",path=\"/api\",service=\"echo\",status=\"200\"} 3";
    assert!(text.contains(series), "{text}");
    assert!(
        !text.contains("unknown.example.com"),
        "undefined hosts are not labelled"
    );
    assert!(text.contains("nginx_ingress_controller_nginx_process_connections{"));

    // The access log is written in bursts (every 50 ms): poll for it too.
    let log = loop {
        let log = std::fs::read_to_string(&g.stdout).unwrap();
        if log.matches("GET /api/x HTTP/1.1").count() >= 3 || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("GET /api/x HTTP/1.1"))
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{}", lines[0]);
    assert!(lines[0].contains("\" 200 "), "{}", lines[0]);
    assert!(lines[0].contains(" [default-echo-80] [] "), "{}", lines[0]);
    assert!(
        lines[0].contains(&upstreams[0].addr().to_string()),
        "{}",
        lines[0]
    );
    assert!(log.contains("\"GET / HTTP/1.1\" 404 "), "{log}");
    // Logged in order: the quiet request came first, so it would be there by now.
    assert!(!log.contains("/quiet/x"), "{log}");
    assert!(text.contains("path=\"/quiet\""), "{text}");
}

/// A request body of `chunks` chunks of 64 KiB, produced lazily.
struct ChunkStream {
    left: usize,
    chunk: Bytes,
}

impl futures_core::Stream for ChunkStream {
    type Item = Result<http_body::Frame<Bytes>, std::convert::Infallible>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(self.chunk.clone()))))
    }
}

/// Peak resident memory of a process, from /proc (KiB).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_without_buffering() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let mut config = one_route("h", &[upstreams[0].addr()]);
    // `proxy-body-size: 0` (unlimited): the default 1m answers 413 to this upload.
    config["servers"][0]["locations"][0]["proxy"] = json!({"bodySize": "0"});
    g.apply(config).await;
    let before = peak_rss_kib(g.child.id());
    let stream = tokio::net::TcpStream::connect(g.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let chunks = 1600; // 100 MiB
    let body = http_body_util::StreamBody::new(ChunkStream {
        left: chunks,
        chunk: Bytes::from(vec![b'x'; 64 * 1024]),
    });
    let request = Request::post("/upload")
        .header("host", "h")
        .body(body)
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echo: Echo =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(echo.body_length, (chunks * 64 * 1024) as u64);
    assert!(
        echo.headers
            .get("transfer-encoding")
            .is_some_and(|v| v == "chunked"),
        "{:?}",
        echo.headers
    );
    // Streaming keeps the growth of the proxy's peak memory far below the body size
    // (the allocator may keep some of what it used).
    let growth = peak_rss_kib(g.child.id()).saturating_sub(before);
    assert!(
        growth < 32 * 1024,
        "the proxy's peak RSS grew by {growth} KiB for a 100 MiB upload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_and_h2c() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(one_route("h", &[upstreams[0].addr()])).await;

    // Expect: 100-continue: the body is sent only after the interim answer.
    let mut stream = tokio::net::TcpStream::connect(g.http).await.unwrap();
    stream
        .write_all(
            b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 25];
    stream.read_exact(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    stream.write_all(b"hello").await.unwrap();
    let mut rest = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&rest).contains("\"bodyLength\":5") {
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&rest)
        );
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&rest));
        rest.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&rest).contains("HTTP/1.1 200 OK"));

    // HTTP/2 with prior knowledge on the plain listener.
    let stream = tokio::net::TcpStream::connect(g.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let request = Request::get("http://h/h2")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let echo: Echo =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(echo.host, "h");
        assert_eq!(echo.proto, "HTTP/1.1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_name_backends_resolve_through_dns() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let port = upstreams[0].addr().port().to_string();
    g.apply(json!({
        "backends": [
            {"name": "ext", "service": {"spec": {"type": "ExternalName", "externalName": "localhost"}},
             "endpoints": [{"address": "localhost", "port": port}]},
            {"name": "bad", "service": {"spec": {"type": "ExternalName", "externalName": "name.invalid"}},
             "endpoints": [{"address": "name.invalid", "port": "80"}]}
        ],
        "servers": [{"hostname": "h", "locations": [
            {"path": "/", "backend": "ext"},
            {"path": "/bad", "backend": "bad"}
        ]}]
    }))
    .await;
    let mut conn = Conn::open(g.http).await;
    // localhost may also resolve to ::1, where the echo does not listen: the proxy then
    // retries with the next address of the name, so every request succeeds.
    for _ in 0..5 {
        assert_eq!(conn.echo("h", "/").await.instance, "echo-0");
    }
    // An unresolvable name: 502, as ingress-nginx's e2e expects.
    assert_eq!(conn.send("h", "/bad", &[]).await.0, StatusCode::BAD_GATEWAY);
}

const PEM: &str = concat!(
    include_str!("../../model/tests/fixtures/example.com.crt"),
    include_str!("../../model/tests/fixtures/example.com.key")
);

/// curl over TLS to the proxy: `(http_version, status, verbose output, body)`.
fn curl_tls(https: SocketAddr, host: &str, extra: &[&str]) -> (String, String, String, String) {
    let url = format!("https://{host}:{}/tls", https.port());
    let resolve = format!("{host}:{}:127.0.0.1", https.port());
    let out = Command::new("curl")
        .args([
            "-sk",
            "-v",
            "--resolve",
            &resolve,
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .args(extra)
        .arg(&url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = stdout.rsplit_once('\n').unwrap_or((&stdout, ""));
    let (version, status) = tail.split_once(' ').unwrap_or(("", ""));
    (
        version.to_owned(),
        status.to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_by_sni_with_http2_and_the_fallback_certificate() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [
            {"hostname": "www.example.com", "locations": [{"path": "/", "backend": "b"}]},
            {"hostname": "plain.example.org", "locations": [{"path": "/", "backend": "b"}]}
        ],
        "sslConfiguration": {"certificates": {"c": PEM}, "servers": {"*.example.com": "c"}}
    }))
    .await;
    let https = g.https;
    let (version, status, verbose, body) =
        tokio::task::spawn_blocking(move || curl_tls(https, "www.example.com", &["--http2"]))
            .await
            .unwrap();
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("2", "200"),
        "{verbose}"
    );
    assert!(verbose.contains("CN=example.com"), "{verbose}");
    let echo: Echo = serde_json::from_slice(body.as_bytes()).unwrap();
    assert_eq!(echo.headers["x-forwarded-proto"], "https");
    assert_eq!(echo.headers["x-forwarded-port"], "443");

    // No certificate for this host: the generated fallback answers.
    let (version, status, verbose, _) =
        tokio::task::spawn_blocking(move || curl_tls(https, "plain.example.org", &["--http1.1"]))
            .await
            .unwrap();
    assert_eq!(
        (version.as_str(), status.as_str()),
        ("1.1", "200"),
        "{verbose}"
    );
    assert!(verbose.contains("Gangplank Fake Certificate"), "{verbose}");
}

/// Upstream connections are kept alive and reused: the bug this guards against
/// (connections closed after every Content-Length response) cost 4x CPU per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_reused() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    g.apply(one_route("h", &[upstreams[0].addr()])).await;
    let mut conn = Conn::open(g.http).await;
    for _ in 0..200 {
        conn.echo("h", "/").await;
        // Empty bodies are complete before any poll: they must be reused too.
        assert_eq!(
            conn.send("h", "/status/204", &[]).await.0,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(upstreams[0].requests(), 400);
    assert!(
        upstreams[0].connections() <= 2,
        "{} upstream connections for 400 requests",
        upstreams[0].connections()
    );
}

/// Reads a request head from `stream` (up to its blank line); false when the stream
/// ended or failed first.
async fn read_request_head(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// An upstream that keeps no connection: it answers one request per connection with a
/// keep-alive response (no `Connection: close`), then closes the connection `linger`
/// later. Returns its address and the number of requests it answered.
async fn one_shot_upstream(
    linger: Duration,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let count = count.clone();
            tokio::spawn(async move {
                if !read_request_head(&mut stream).await {
                    return;
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                if stream.write_all(answer).await.is_ok() {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                tokio::time::sleep(linger).await;
            });
        }
    });
    (addr, answered)
}

const OK_BODY: Bytes = Bytes::from_static(b"ok\n");

/// Pooled upstream connections that their upstream closed (an idle timeout shorter than
/// the proxy's) never cost a client a failed request, whether the close arrived while
/// the connection sat idle or while the next request was on its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_closing_idle_connections_cost_no_request() {
    let g = Gangplank::start().await;
    let (quick, quick_answers) = one_shot_upstream(Duration::ZERO).await;
    let (slow, slow_answers) = one_shot_upstream(Duration::from_millis(30)).await;
    g.apply(json!({
        "backends": [backend("quick", &[quick]), backend("slow", &[slow])],
        "servers": [
            {"hostname": "quick", "locations": [{"path": "/", "backend": "quick"}]},
            {"hostname": "slow", "locations": [{"path": "/", "backend": "slow"}]}
        ]
    }))
    .await;
    let mut conn = Conn::open(g.http).await;
    for i in 0..40 {
        // The quick upstream's close is usually seen before the next request; the slow
        // one's races it when the request follows within its 30 ms.
        let (status, _, body) = conn.send("quick", "/", &[]).await;
        assert_eq!((status, body), (StatusCode::OK, OK_BODY), "quick #{i}");
        let (status, _, body) = conn.send("slow", "/", &[]).await;
        assert_eq!((status, body), (StatusCode::OK, OK_BODY), "slow #{i}");
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    let answered = |a: &std::sync::atomic::AtomicUsize| a.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(answered(&quick_answers), 40);
    assert_eq!(answered(&slow_answers), 40);
}

/// An upstream that answers every request with `503`.
async fn always_503() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let answer = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_next_upstream_conditions() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let bad = always_503().await;
    let dead = free_port();
    let config = |host: &str, eps: &[SocketAddr], conditions: serde_json::Value| {
        json!({
            "backends": [backend("b", eps)],
            "servers": [{"hostname": host, "locations": [{"path": "/", "backend": "b", "proxy": {"nextUpstream": conditions}}]}]
        })
    };
    let mut conn = Conn::open(g.http).await;

    // Default conditions (error timeout): a 503 is the upstream's answer, passed on.
    g.apply(config(
        "h",
        &[bad, upstreams[0].addr()],
        json!(["error", "timeout"]),
    ))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(conn.send("h", "/", &[]).await.0);
    }
    assert!(
        statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );

    // With http_503 listed, body-less GETs move on to the next endpoint.
    g.apply(config(
        "h",
        &[bad, upstreams[0].addr()],
        json!(["error", "timeout", "http_503"]),
    ))
    .await;
    for _ in 0..10 {
        assert_eq!(conn.echo("h", "/").await.instance, "echo-0");
    }

    // `off`: no retry at all, so the dead endpoint's share fails with 502.
    g.apply(config("h", &[dead, upstreams[0].addr()], json!(["off"])))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(conn.send("h", "/", &[]).await.0);
    }
    assert!(statuses.contains(&StatusCode::BAD_GATEWAY), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
}

/// `keep-alive-requests`: the last allowed request of a client connection is answered
/// with `Connection: close`, and the connection ends after it (nginx's
/// `keepalive_requests`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connections_close_after_keep_alive_requests() {
    let g = Gangplank::start().await;
    let servers = echoes(1).await;
    let mut config = one_route("ka.example", &[servers[0].addr()]);
    config["general"] = json!({"keep-alive-requests": 3});
    g.apply(config).await;

    let mut conn = Conn::open(g.http).await;
    for _ in 0..2 {
        let (status, headers, _) = conn.send("ka.example", "/", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.get("connection").is_none());
    }
    let (status, headers, _) = conn.send("ka.example", "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("connection").unwrap(), "close");
    // The server closed the connection: the next request cannot be sent on it.
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.sender.ready()).await;
    assert!(matches!(closed, Ok(Err(_))), "the connection stayed open");
}

/// Reads one HTTP/1.1 response with a `Content-Length` from `stream`, whole.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-response: {text}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits for the proxy to close `stream`; returns how long that took.
async fn closed_after(stream: &mut tokio::net::TcpStream) -> Duration {
    let start = Instant::now();
    let mut chunk = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) => start.elapsed(),
        Ok(Ok(n)) => panic!(
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&chunk[..n])
        ),
        Err(_) => panic!("the connection was still open after 10 s"),
    }
}

/// An upstream whose one answer is a 200 with a 6-byte body sent in two halves,
/// `pause` apart.
async fn pausing_upstream(pause: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if !read_request_head(&mut stream).await {
                    return;
                }
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nabc";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                tokio::time::sleep(pause).await;
                let _ = stream.write_all(b"def").await;
            });
        }
    });
    addr
}

/// ConfigMap `keep-alive` (nginx's `keepalive_timeout`): a client connection with no
/// request for that long is closed, as is one that never completes a request header;
/// a connection in use (requests coming, an upstream slow to answer, a response body
/// still streaming) is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_connections_close_after_keep_alive() {
    let g = Gangplank::start().await;
    let servers = echoes(1).await;
    let pausing = pausing_upstream(Duration::from_millis(2500)).await;
    let mut config = json!({
        "backends": [backend("b", &[servers[0].addr()]), backend("p", &[pausing])],
        "servers": [{"hostname": "ka", "locations": [
            {"path": "/", "backend": "b"},
            {"path": "/pause", "backend": "p"}
        ]}]
    });
    config["general"] = json!({"keep-alive": "1s"});
    g.apply(config).await;
    let get = b"GET / HTTP/1.1\r\nHost: ka\r\n\r\n";

    // Idle after a response: closed after the period (at most 1.2 of it, plus slack).
    let mut idle = tokio::net::TcpStream::connect(g.http).await.unwrap();
    idle.write_all(get).await.unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    let waited = closed_after(&mut idle).await;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );

    // Silent from the start, or stuck in a request header: closed as well.
    let mut silent = tokio::net::TcpStream::connect(g.http).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(g.http).await.unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    let (silent_waited, partial_waited) =
        tokio::join!(closed_after(&mut silent), closed_after(&mut partial));
    assert!(silent_waited < Duration::from_secs(3), "{silent_waited:?}");
    assert!(
        partial_waited < Duration::from_secs(4),
        "{partial_waited:?}"
    );

    // Busy for 2.5 periods: a request every 400 ms keeps the connection open...
    let mut busy = tokio::net::TcpStream::connect(g.http).await.unwrap();
    for _ in 0..6 {
        busy.write_all(get).await.unwrap();
        assert!(read_response(&mut busy).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // ... as does a request whose upstream takes 2.5 periods to answer ...
    busy.write_all(b"GET /delay/2500 HTTP/1.1\r\nHost: ka\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut busy).await.starts_with("HTTP/1.1 200"));
    // ... and a response body that pauses for 2.5 periods midway.
    busy.write_all(b"GET /pause HTTP/1.1\r\nHost: ka\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut busy).await;
    assert!(response.ends_with("\r\n\r\nabcdef"), "{response}");
    busy.write_all(get).await.unwrap();
    assert!(read_response(&mut busy).await.starts_with("HTTP/1.1 200"));
}

/// `keep-alive: 0` turns client keep-alive off: every HTTP/1.1 response closes its
/// connection (nginx's `keepalive_timeout 0`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_zero_closes_every_connection_after_its_response() {
    let g = Gangplank::start().await;
    let servers = echoes(1).await;
    let mut config = one_route("ka", &[servers[0].addr()]);
    config["general"] = json!({"keep-alive": "0"});
    g.apply(config).await;
    let mut stream = tokio::net::TcpStream::connect(g.http).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: ka\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut stream).await;
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{response}"
    );
    assert!(closed_after(&mut stream).await < Duration::from_secs(2));
}
