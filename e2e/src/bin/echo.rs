//! `echo --listen ADDR --instance NAME [--tls-cert PEM --tls-key PEM]`: the echo
//! upstream as a process, for the demo (`cargo xtask demo`) and the end-to-end suite.
//! Answers every request with JSON describing it (see `gangplank_e2e::echo`); with a
//! certificate and key, over TLS. Stops on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use gangplank_e2e::echo::EchoServer;

fn usage() -> ExitCode {
    eprintln!(
        "usage: echo --listen 127.0.0.1:PORT [--instance NAME] [--tls-cert PEM --tls-key PEM]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut listen: Option<SocketAddr> = None;
    let mut instance = std::env::var("POD_NAME").unwrap_or_else(|_| "echo".to_owned());
    let mut cert: Option<PathBuf> = None;
    let mut key: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => match value.parse() {
                Ok(addr) => listen = Some(addr),
                Err(_) => return usage(),
            },
            ("--instance", Some(value)) => instance = value,
            ("--tls-cert", Some(value)) => cert = Some(value.into()),
            ("--tls-key", Some(value)) => key = Some(value.into()),
            _ => return usage(),
        }
    }
    let Some(listen) = listen else {
        return usage();
    };
    let tls = match (cert, key) {
        (None, None) => None,
        (Some(cert), Some(key)) => match server_tls(&cert, &key) {
            Ok(config) => Some(config),
            Err(e) => {
                eprintln!("echo: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => return usage(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let started = match tls {
            Some(config) => EchoServer::start_tls(&instance, listen, config).await,
            None => EchoServer::start(&instance, listen).await,
        };
        let server = match started {
            Ok(server) => server,
            Err(e) => {
                eprintln!("echo: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("echo {instance} listening on {scheme}://{}", server.addr());
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return ExitCode::FAILURE;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        ExitCode::SUCCESS
    })
}

/// A TLS server configuration from PEM files (rustls on ring, as the proxy).
fn server_tls(cert: &PathBuf, key: &PathBuf) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading {}: {e}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("reading {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
