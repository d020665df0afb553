//! `cargo xtask demo [--release] [--check]`: Gangplank on its embedded default.
//!
//! Builds `gangplank` and the `echo` upstream, starts three echo processes on
//! 127.0.0.1:18081-18083, and runs `gangplank standalone --manifests
//! examples/quickstart` with HTTP on 127.0.0.1:8080, HTTPS on 127.0.0.1:8443,
//! metrics on 127.0.0.1:10254 and the admin API on
//! `/tmp/nginx-status-server.sock`. It prints requests to try and runs until
//! Ctrl-C. `--check` instead sends those requests, checks the answers and exits
//! (CI runs it, so the README's first command keeps working).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HTTP: &str = "127.0.0.1:8080";
const SOCKET: &str = "/tmp/nginx-status-server.sock";

/// Kills the demo's processes however the task ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the demo.
pub fn run(args: &[String]) -> Result<(), String> {
    let release = args.iter().any(|a| a == "--release");
    let check = args.iter().any(|a| a == "--check");
    if let Some(other) = args.iter().find(|a| *a != "--release" && *a != "--check") {
        return Err(format!(
            "unknown demo flag {other:?} (use --release, --check)"
        ));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .ok_or("cannot find the workspace root")?;
    let mut build = crate::cargo();
    build.current_dir(&root).args([
        "build",
        "-p",
        "gangplank",
        "-p",
        "gangplank-e2e",
        "--bin",
        "gangplank",
        "--bin",
        "echo",
    ]);
    if release {
        build.arg("--release");
    }
    crate::run(build)?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"))
        .join(if release { "release" } else { "debug" });

    let mut processes = Processes(Vec::new());
    for (port, instance) in [(18081, "web-1"), (18082, "web-2"), (18083, "web-v2")] {
        let child = Command::new(target.join("echo"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--instance",
                instance,
            ])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting echo: {e}"))?;
        processes.0.push(child);
    }
    let mut gangplank = Command::new(target.join("gangplank"));
    gangplank.current_dir(&root).args([
        "standalone",
        "--manifests",
        "examples/quickstart",
        "--http-listen",
        HTTP,
        "--https-listen",
        "127.0.0.1:8443",
        "--metrics-listen",
        "127.0.0.1:10254",
        "--admin-socket",
        SOCKET,
        "--controller-listen",
        "127.0.0.1:10255",
    ]);
    if check {
        gangplank
            .args(["--access-log", "false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    processes.0.push(
        gangplank
            .spawn()
            .map_err(|e| format!("starting gangplank: {e}"))?,
    );

    // Ready when the demo host answers from one of its upstreams.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, body)) = get("demo.localhost", "/", &[])
            && body.contains("\"instance\":\"web-")
        {
            break;
        }
        if Instant::now() > deadline {
            return Err("the demo did not come up within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    if check {
        return checks();
    }
    println!(
        "\nGangplank is serving examples/quickstart (edit it: changes apply within a second).\n\
         Try:\n\
         \x20 curl -H 'Host: demo.localhost' http://{HTTP}/             # round robin over web-1, web-2 (20 % canary web-v2)\n\
         \x20 curl -H 'Host: demo.localhost' -H 'X-Canary: always' http://{HTTP}/   # always the canary\n\
         \x20 curl -H 'Host: nobody.localhost' http://{HTTP}/           # 404 from the default backend\n\
         \x20 curl -k --resolve demo.localhost:8443:127.0.0.1 https://demo.localhost:8443/\n\
         \x20 curl --unix-socket {SOCKET} http://localhost/nginx_status\n\
         \x20 curl http://127.0.0.1:10254/metrics\n\
         Ctrl-C stops everything.\n"
    );
    let _ = processes.0.last_mut().map(Child::wait);
    Ok(())
}

/// What `--check` asserts: the behaviour the printed commands promise.
fn checks() -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let (status, body) = get("demo.localhost", "/", &[])?;
        if status != 200 {
            return Err(format!("demo.localhost answered {status}"));
        }
        for instance in ["web-1", "web-2", "web-v2"] {
            if body.contains(&format!("\"instance\":\"{instance}\"")) {
                seen.insert(instance);
            }
        }
    }
    if !seen.contains("web-1") || !seen.contains("web-2") {
        return Err(format!("round robin reached only {seen:?}"));
    }
    for _ in 0..10 {
        let (_, body) = get("demo.localhost", "/", &[("X-Canary", "always")])?;
        if !body.contains("\"instance\":\"web-v2\"") {
            return Err("X-Canary: always did not reach the canary".into());
        }
    }
    let (status, _) = get("nobody.localhost", "/", &[])?;
    if status != 404 {
        return Err(format!("an unknown host answered {status}, not 404"));
    }
    println!("demo check passed: round robin {seen:?}, canary by header, 404 default backend");
    Ok(())
}

/// One HTTP/1.1 GET with `Connection: close`: (status, body).
fn get(host: &str, path: &str, headers: &[(&str, &str)]) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(HTTP).map_err(|e| format!("connect {HTTP}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
