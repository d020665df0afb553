#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches: a panic is a failed assertion.
//! Integration tests: the real `gangplank` binary on a real unix socket in a temporary
//! directory, driven by the typed client, by `gangplank ctl` and by curl.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gangplank_admin_server::AdminClient;
use gangplank_model::{Backend, Configuration, SslConfiguration};

const BIN: &str = env!("CARGO_BIN_EXE_gangplank");
const PEM: &str = concat!(
    include_str!("../../model/tests/fixtures/example.com.crt"),
    include_str!("../../model/tests/fixtures/example.com.key")
);

/// A running `gangplank proxy`, stopped (SIGKILL) when dropped.
struct Proxy {
    child: Child,
    socket: PathBuf,
}

impl Proxy {
    fn start(socket: &Path, extra: &[&str]) -> Proxy {
        let child = Command::new(BIN)
            .arg("proxy")
            .arg("--admin-socket")
            .arg(socket)
            .args([
                "--http-listen",
                "127.0.0.1:0",
                "--https-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--workers",
                "2",
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gangplank");
        let proxy = Proxy {
            child,
            socket: socket.to_owned(),
        };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gangplank did not open {} in time", self.socket.display());
    }

    fn client(&self) -> AdminClient {
        AdminClient::unix(&self.socket)
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(mut self) -> Output {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"));
        child.wait_with_output().expect("output")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn seed_backends() -> Vec<Backend> {
    let json = serde_json::json!([{"endpoints":[{"address":"10.12.4.133","port":"8080"}],"name":"test-paastest-v2-webshell-80","noServer":false,"port":80,
     "secureCACert":{"caFilename":"","pemSha":"","secret":""},
     "service":{"metadata":{"creationTimestamp":null},"spec":{"clusterIP":"10.11.60.178","ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}],"selector":{"servicename":"v2-webshell"},"sessionAffinity":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}},
     "sessionAffinityConfig":{"cookieSessionAffinity":{"name":""},"name":""},"sslPassthrough":false,
     "trafficShapingPolicy":{"cookie":"","header":"","headerValue":"","weight":0},
     "upstreamHashByConfig":{"upstream-hash-by-subset-size":3}}]);
    serde_json::from_value(json).expect("seed decodes")
}

/// Posts the seed backends and maps `example.com` to the fixture certificate.
async fn post_seed_with_certificate(client: &AdminClient) {
    client.post_backends(&seed_backends()).await.unwrap();
    client
        .post_servers(&SslConfiguration {
            certificates: [("c".to_string(), PEM.to_string())].into(),
            servers: [("example.com".to_string(), "c".to_string())].into(),
        })
        .await
        .unwrap();
}

fn ctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("ctl")
        .arg("--admin-socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run gangplank ctl")
}

#[test]
fn seed_interaction_through_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("admin.sock"), &[]);
    let client = proxy.client();
    runtime().block_on(async {
        let status = client.nginx_status().await.unwrap();
        assert!(
            status.accepts >= 1,
            "the status request itself was accepted: {status:?}"
        );
        assert!(
            status.writing >= 1,
            "the status request itself is in flight: {status:?}"
        );
        assert_eq!(
            status.active,
            status.reading + status.writing + status.waiting
        );
        assert_eq!(client.general().await.unwrap(), Default::default());
        assert!(!client.is_dynamic_lb_initialized().await.unwrap());
        client.post_backends(&seed_backends()).await.unwrap();
        assert_eq!(client.backends().await.unwrap(), seed_backends());
        assert!(client.is_dynamic_lb_initialized().await.unwrap());
        let after = client.nginx_status().await.unwrap();
        assert!(after.requests > status.requests);
    });
    let out = proxy.terminate();
    assert!(
        out.status.success(),
        "exit: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("admin.sock").exists(),
        "the socket file is removed at exit"
    );
}

#[test]
fn seed_interaction_with_curl() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nginx-status-server.sock");
    let _proxy = Proxy::start(&socket, &[]);
    let backends = dir.path().join("backends.json");
    std::fs::write(&backends, serde_json::to_vec(&seed_backends()).unwrap()).unwrap();
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(&socket)
            .args(args)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let status = curl(&["http://localhost/nginx_status"]);
    assert!(status.starts_with("Active connections: "), "{status}");
    assert!(
        status.contains("\nserver accepts handled requests\n"),
        "{status}"
    );
    assert_eq!(curl(&["http://localhost/configuration/general"]), "{}");
    let data = format!("@{}", backends.display());
    let code = curl(&[
        "-X",
        "POST",
        "--data",
        &data,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://localhost/configuration/backends",
    ]);
    assert_eq!(code, "201");
    let got: Vec<Backend> =
        serde_json::from_str(&curl(&["http://localhost/configuration/backends"])).unwrap();
    assert_eq!(got, seed_backends());
}

#[test]
fn restart_with_the_same_state_dir_restores_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let proxy = Proxy::start(&socket, &["--state-dir", state_arg]);
    let version = runtime().block_on(async {
        let client = proxy.client();
        post_seed_with_certificate(&client).await;
        client.configuration().await.unwrap().1
    });
    assert!(proxy.terminate().status.success());

    let proxy = Proxy::start(&socket, &["--state-dir", state_arg]);
    runtime().block_on(async {
        let client = proxy.client();
        assert!(client.is_dynamic_lb_initialized().await.unwrap());
        let (config, restored) = client.configuration().await.unwrap();
        assert_eq!(restored, version);
        assert_eq!(config.backends, seed_backends());
        assert_eq!(
            client.certificate("example.com").await.unwrap().as_deref(),
            Some(PEM)
        );
    });
}

#[test]
fn a_corrupt_state_file_is_reported_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("snapshot.json"), "{ this is not json").unwrap();
    let proxy = Proxy::start(
        &dir.path().join("admin.sock"),
        &["--state-dir", state.to_str().unwrap()],
    );
    runtime().block_on(async {
        assert!(!proxy.client().is_dynamic_lb_initialized().await.unwrap());
        assert_eq!(
            proxy.client().configuration().await.unwrap().0,
            Configuration::default()
        );
    });
    let out = proxy.terminate();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("unusable"), "{log}");
    assert!(state.join("snapshot.json.corrupt").exists());
}

#[test]
fn a_second_instance_refuses_a_live_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let _first = Proxy::start(&socket, &[]);
    let second = Command::new(BIN)
        .arg("proxy")
        .arg("--admin-socket")
        .arg(&socket)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another server is listening"), "{err}");
}

#[test]
fn status_listen_is_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Command::new(BIN)
        .arg("proxy")
        .arg("--admin-socket")
        .arg(dir.path().join("a.sock"))
        .args([
            "--https-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--status-listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("loopback"));

    // Find a free loopback port, then serve the API there too.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _proxy = Proxy::start(&dir.path().join("b.sock"), &["--status-listen", &addr]);
    let client = AdminClient::tcp(addr.parse().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    runtime().block_on(async {
        loop {
            match client.healthz().await {
                Ok(healthy) => break assert!(healthy),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
}

#[test]
fn ctl_mirrors_dbg() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let proxy = Proxy::start(&socket, &[]);
    runtime().block_on(async {
        let client = proxy.client();
        post_seed_with_certificate(&client).await;
    });
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();

    let list = ctl(&socket, &["backends", "list"]);
    assert!(list.status.success());
    assert_eq!(text(&list), "test-paastest-v2-webshell-80\n");

    let get = ctl(
        &socket,
        &["backends", "get", "test-paastest-v2-webshell-80"],
    );
    let backend: Backend = serde_json::from_str(&text(&get)).unwrap();
    assert_eq!(backend, seed_backends()[0]);
    assert!(
        text(&get).contains("\n  \"name\""),
        "pretty-printed with two spaces"
    );

    let missing = ctl(&socket, &["backends", "get", "nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("A backend of this name was not found.")
    );

    let all: Vec<Backend> =
        serde_json::from_str(&text(&ctl(&socket, &["backends", "all"]))).unwrap();
    assert_eq!(all, seed_backends());

    assert_eq!(text(&ctl(&socket, &["general"])).trim(), "{}");

    assert_eq!(text(&ctl(&socket, &["certs", "get", "example.com"])), PEM);
    let no_cert = ctl(&socket, &["certs", "get", "other.example.com"]);
    assert!(!no_cert.status.success());
    assert!(
        String::from_utf8_lossy(&no_cert.stderr)
            .contains("No cert found for host other.example.com")
    );

    let conf = text(&ctl(&socket, &["conf"]));
    assert!(conf.contains("BEGIN CERTIFICATE"));
    assert!(
        !conf.contains("PRIVATE KEY-----\\n"),
        "private keys are redacted: {conf}"
    );
    assert!(text(&ctl(&socket, &["conf", "--show-secrets"])).contains("PRIVATE KEY"));

    let status = text(&ctl(&socket, &["status"]));
    assert!(status.contains("dynamic lb initialized: yes"), "{status}");
    assert!(status.contains("accepts:"), "{status}");
}

#[test]
fn ctl_says_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let out = ctl(&dir.path().join("none.sock"), &["backends", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing is listening on unix socket"), "{err}");
}
