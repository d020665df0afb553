//! `fake-apiserver --listen 127.0.0.1:PORT [--kubeconfig-out PATH]`: runs the Kubernetes
//! API-server stand-in of `gangplank_e2e::apiserver` until SIGINT or SIGTERM. Prints its
//! URL on the first line of standard output; with `--kubeconfig-out`, writes a
//! kubeconfig (plain http, no credentials) for kubectl or kube-rs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use gangplank_e2e::apiserver::ApiServer;

const USAGE: &str = "usage: fake-apiserver --listen 127.0.0.1:PORT [--kubeconfig-out PATH]";

fn parse_args() -> Result<(SocketAddr, Option<PathBuf>), String> {
    let mut listen = None;
    let mut kubeconfig = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {v}: {e}"))?,
                );
            }
            "--kubeconfig-out" => kubeconfig = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let listen = listen.ok_or_else(|| USAGE.to_string())?;
    Ok((listen, kubeconfig))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (listen, kubeconfig) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let server = match ApiServer::start(listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-apiserver: listening on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = kubeconfig
        && let Err(e) = server.write_kubeconfig(&path)
    {
        eprintln!("fake-apiserver: writing {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("{}", server.url());
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fake-apiserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(server);
    ExitCode::SUCCESS
}
