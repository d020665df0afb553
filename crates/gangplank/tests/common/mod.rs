//! Shared harness of the process-level tests: start the real `gangplank proxy` on free
//! loopback ports with a temporary admin socket, post configurations, talk HTTP/1.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

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

pub const BIN: &str = env!("CARGO_BIN_EXE_gangplank");

/// The binary the harness starts: `GANGPLANK_TEST_BIN` when set (a copy taken right
/// after building, for target directories shared by several checkouts, where another
/// checkout's build may replace `CARGO_BIN_EXE_gangplank` under a running test), else
/// the one cargo built.
pub fn bin() -> String {
    std::env::var("GANGPLANK_TEST_BIN").unwrap_or_else(|_| BIN.to_owned())
}

pub struct Gangplank {
    /// The proxy process.
    pub child: Child,
    /// Its admin socket.
    pub socket: PathBuf,
    /// Its plain HTTP listener.
    pub http: SocketAddr,
    /// Its TLS listener.
    pub https: SocketAddr,
    /// Its metrics listener.
    pub metrics: SocketAddr,
    /// Where its stdout (the access log) goes.
    pub stdout: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Gangplank {
    pub async fn start() -> Gangplank {
        Gangplank::start_with("proxy", &[]).await
    }

    /// Starts `gangplank <subcommand>` (`proxy` or `standalone`) with the proxy flags
    /// on free ports, plus `extra` flags. A port picked as free can be taken by a
    /// concurrent test before the child binds it: a child that exits at start is
    /// started again on other ports.
    pub async fn start_with(subcommand: &str, extra: &[&str]) -> Gangplank {
        for _ in 0..3 {
            if let Some(g) = Gangplank::try_start(subcommand, extra).await {
                return g;
            }
        }
        panic!("gangplank {subcommand} did not start (three attempts)");
    }

    async fn try_start(subcommand: &str, extra: &[&str]) -> Option<Gangplank> {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("admin.sock");
        let http = free_port();
        let https = free_port();
        let metrics = free_port();
        let stdout = dir.path().join("stdout.log");
        let child = Command::new(bin())
            .arg(subcommand)
            .args(extra)
            .arg("--admin-socket")
            .arg(&socket)
            .args([
                "--https-listen",
                &https.to_string(),
                "--metrics-listen",
                &metrics.to_string(),
                "--http-listen",
                &http.to_string(),
                "--workers",
                "2",
                "--shutdown-grace",
                "10",
            ])
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut g = Gangplank {
            child,
            socket,
            http,
            https,
            metrics,
            stdout,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ready when both the admin socket and the HTTP listener accept.
        while std::os::unix::net::UnixStream::connect(&g.socket).is_err()
            || std::net::TcpStream::connect(g.http).is_err()
        {
            if g.child.try_wait().unwrap().is_some() {
                return None; // Exited: most likely a port was taken meanwhile.
            }
            assert!(Instant::now() < deadline, "gangplank did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(g)
    }

    pub fn admin(&self) -> AdminClient {
        AdminClient::unix(&self.socket)
    }

    pub async fn apply(&self, config: serde_json::Value) {
        let config: Configuration = serde_json::from_value(config).unwrap();
        self.admin()
            .post_configuration(&config, None)
            .await
            .unwrap();
    }

    pub fn terminate(&self) {
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

/// A keep-alive HTTP/1.1 client connection. Like a browser, [`Conn::send`] opens a new
/// connection after the proxy closed one (`Connection: close` after
/// `keep-alive-requests`).
pub struct Conn {
    /// The HTTP/1.1 connection.
    pub sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    /// The last answer said `Connection: close`.
    closing: bool,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Conn {
            sender,
            addr,
            closing: false,
        }
    }

    pub async fn send(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, http::HeaderMap, Bytes) {
        let mut req = Request::get(path).header("host", host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if self.closing || self.sender.ready().await.is_err() {
            *self = Conn::open(self.addr).await;
        }
        let response = self
            .sender
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        self.closing = headers
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    pub async fn echo(&mut self, host: &str, path: &str) -> Echo {
        let (status, _, body) = self.send(host, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

pub fn backend(name: &str, endpoints: &[SocketAddr]) -> serde_json::Value {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|a| json!({"address": a.ip().to_string(), "port": a.port().to_string()}))
        .collect();
    json!({"name": name, "endpoints": eps})
}

/// A configuration with one host whose `/` goes to backend `b` over `endpoints`.
pub fn one_route(host: &str, endpoints: &[SocketAddr]) -> serde_json::Value {
    json!({
        "backends": [backend("b", endpoints)],
        "servers": [{"hostname": host, "locations": [{"path": "/", "backend": "b"}]}]
    })
}

pub async fn echoes(n: usize) -> Vec<EchoServer> {
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

/// The IngressClass `gangplank` of the manifest-directory tests.
pub const INGRESS_CLASS_YAML: &str = "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: gangplank}
spec: {controller: gangplank.io/ingress-controller}
";

/// A Service `namespace/name` (port 80, named `http`) and its EndpointSlice holding
/// `endpoint`, as YAML documents (each preceded by `---`).
pub fn service_yaml(namespace: &str, name: &str, endpoint: SocketAddr) -> String {
    format!(
        r#"---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: ["{ip}"], conditions: {{ready: true}}}}]
"#,
        port = endpoint.port(),
        ip = endpoint.ip(),
    )
}

/// Everything a test awaits on the network is bounded.
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 30 s"))
}

/// One request on a new connection: `(status, headers, body)`.
pub async fn request(
    addr: SocketAddr,
    method: http::Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, http::HeaderMap, Bytes) {
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

/// A GET on a new connection: `(status, headers, body)`.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    request(addr, http::Method::GET, host, path, headers, Vec::new()).await
}
