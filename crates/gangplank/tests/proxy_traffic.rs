#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! The data plane end to end in one machine: the real `gangplank proxy` binary, echo
//! upstreams on 127.0.0.1, configuration posted through the admin socket, requests
//! over real TCP. Load here is bounded in count and time and targets 127.0.0.1 only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gangplank_admin_server::AdminClient;
use gangplank_e2e::echo::{Echo, EchoServer};
use gangplank_model::Configuration;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_gangplank");

struct Gangplank {
    child: Child,
    socket: PathBuf,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Gangplank {
    async fn start() -> Gangplank {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("admin.sock");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(BIN)
            .arg("proxy")
            .arg("--admin-socket")
            .arg(&socket)
            .args([
                "--http-listen",
                &http.to_string(),
                "--workers",
                "2",
                "--shutdown-grace",
                "10",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let g = Gangplank {
            child,
            socket,
            http,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&g.socket).is_err() {
            assert!(Instant::now() < deadline, "gangplank did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        g
    }

    fn admin(&self) -> AdminClient {
        AdminClient::unix(&self.socket)
    }

    async fn apply(&self, config: serde_json::Value) {
        let config: Configuration = serde_json::from_value(config).unwrap();
        self.admin()
            .post_configuration(&config, None)
            .await
            .unwrap();
    }

    fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Gangplank {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 client connection.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Conn { sender }
    }

    async fn send(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, http::HeaderMap, Bytes) {
        let mut req = Request::get(path).header("host", host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.sender.ready().await.unwrap();
        let response = self
            .sender
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    async fn echo(&mut self, host: &str, path: &str) -> Echo {
        let (status, _, body) = self.send(host, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

fn backend(name: &str, endpoints: &[SocketAddr]) -> serde_json::Value {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|a| json!({"address": a.ip().to_string(), "port": a.port().to_string()}))
        .collect();
    json!({"name": name, "endpoints": eps})
}

async fn echoes(n: usize) -> Vec<EchoServer> {
    let mut servers = Vec::new();
    for i in 0..n {
        servers.push(
            EchoServer::start(&format!("echo-{i}"), "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap(),
        );
    }
    servers
}

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
    g.apply(json!({
        "backends": [backend("b", &[dead, upstreams[0].addr()])],
        "servers": [{"hostname": "h", "locations": [{"path": "/", "backend": "b"}]}]
    }))
    .await;
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
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "ws.example.com", "locations": [{"path": "/", "backend": "b"}]}]
    }))
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
    g.apply(json!({
        "backends": [backend("b", &[upstreams[0].addr()])],
        "servers": [{"hostname": "h", "locations": [{"path": "/", "backend": "b"}]}]
    }))
    .await;
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
