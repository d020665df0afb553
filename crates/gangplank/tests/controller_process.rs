//! `gangplank standalone` and `gangplank controller --manifests`: Kubernetes
//! manifests in a directory become routing, edits apply while serving, and a
//! restarted proxy gets the snapshot again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Gangplank, echoes, free_port};
use gangplank_e2e::echo::EchoServer;

/// An IngressClass, a Service `web` whose EndpointSlice holds `endpoint`, and an
/// Ingress routing `host` to it.
fn manifests(host: &str, endpoint: SocketAddr) -> String {
    format!(
        r#"{class}{service}---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: demo}}
spec:
  ingressClassName: gangplank
  rules:
  - host: {host}
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{name: http}}}}}}}}
"#,
        class = common::INGRESS_CLASS_YAML,
        service = common::service_yaml("demo", "web", endpoint),
    )
}

/// Kills a child process when the test ends, passed or failed.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `text` to `path` atomically, as editors and ConfigMap volumes do.
fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Asks `host` on `proxy` until the answering echo instance is `instance`; returns
/// how long that took.
async fn wait_for_instance(
    proxy: SocketAddr,
    host: &str,
    instance: &str,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let answer = async {
            // The proxy may not be listening yet (or be restarting).
            tokio::net::TcpStream::connect(proxy).await.ok()?;
            let mut conn = common::Conn::open(proxy).await;
            let (status, _, body) = conn.send(host, "/", &[]).await;
            Some((status, body))
        };
        if let Ok(Some((status, body))) = tokio::time::timeout(Duration::from_secs(2), answer).await
            && status == 200
            && let Ok(echo) = serde_json::from_slice::<gangplank_e2e::echo::Echo>(&body)
            && echo.instance == instance
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{host} was not served by {instance} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_serves_manifests_and_applies_edits_within_a_second() {
    let servers: Vec<EchoServer> = echoes(2).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yaml");
    write(&file, &manifests("app.example", servers[0].addr()));
    // A broken file next to it is reported and skipped, never fatal.
    std::fs::write(dir.path().join("broken.yaml"), "kind: [\n").unwrap();

    let manifests_dir = dir.path().to_str().unwrap().to_owned();
    let g = Gangplank::start_with("standalone", &["--manifests", &manifests_dir]).await;
    wait_for_instance(g.http, "app.example", "echo-0", Duration::from_secs(10)).await;

    // Move the Service's endpoint to the second echo: applied while serving.
    write(&file, &manifests("app.example", servers[1].addr()));
    let took = wait_for_instance(g.http, "app.example", "echo-1", Duration::from_secs(5)).await;
    eprintln!("edit applied after {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "the edit took {took:?} (target: within a second)"
    );

    // Deleting the Ingress leaves only the default backend: 404.
    std::fs::remove_file(&file).unwrap();
    let start = Instant::now();
    loop {
        let mut conn = common::Conn::open(g.http).await;
        let (status, _, _) = conn.send("app.example", "/", &[]).await;
        if status == 404 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The controller as its own process: ready only after the proxy accepted a
/// snapshot, and it pushes again when the proxy restarts without a state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_process_pushes_again_after_a_proxy_restart() {
    let servers = echoes(1).await;
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("app.yaml"),
        &manifests("app.example", servers[0].addr()),
    );
    let socket = dir.path().join("admin.sock");
    let controller_addr = free_port();
    let _controller = Killed(
        Command::new(BIN)
            .args(["controller", "--manifests"])
            .arg(dir.path())
            .arg("--admin-socket")
            .arg(&socket)
            .args(["--listen", &controller_addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // No proxy yet: the controller is up but not ready.
    let health = |addr: SocketAddr| async move {
        let start = Instant::now();
        loop {
            if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let request = http::Request::get("/healthz")
                    .header("host", "controller")
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                return sender.send_request(request).await.unwrap().status();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "controller did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(health(controller_addr).await, 503);

    let http = free_port();
    let start_proxy = || {
        Killed(
            Command::new(BIN)
                .arg("proxy")
                .arg("--admin-socket")
                .arg(&socket)
                .args([
                    "--http-listen",
                    &http.to_string(),
                    "--https-listen",
                    &free_port().to_string(),
                    "--metrics-listen",
                    &free_port().to_string(),
                    "--workers",
                    "1",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let proxy = start_proxy();
    wait_for_instance(http, "app.example", "echo-0", Duration::from_secs(10)).await;
    assert_eq!(health(controller_addr).await, 200);

    // A proxy restart without --state-dir starts empty; the controller notices.
    drop(proxy);
    let _proxy = start_proxy();
    let took = wait_for_instance(http, "app.example", "echo-0", Duration::from_secs(10)).await;
    eprintln!("served again {took:?} after the proxy restart");
}
