//! `gangplank proxy`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use gangplank_admin_server::server::{AdminState, listen, router, serve};
use gangplank_store::{RestoreOutcome, Status, Store};
use tokio::sync::watch;

use crate::logging::{self, LogFormat};

/// Flags of `gangplank proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Unix socket of the admin/status API.
    #[arg(long, env = "GANGPLANK_ADMIN_SOCKET", default_value = gangplank_admin_server::DEFAULT_SOCKET)]
    admin_socket: PathBuf,
    /// Also serve the admin/status API on this loopback TCP address (e.g. 127.0.0.1:10246).
    #[arg(long, env = "GANGPLANK_STATUS_LISTEN")]
    status_listen: Option<SocketAddr>,
    /// Keep the last good configuration here and restore it at start.
    #[arg(long, env = "GANGPLANK_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Largest accepted admin request body, in bytes.
    #[arg(long, default_value_t = gangplank_admin_server::DEFAULT_BODY_LIMIT)]
    admin_body_limit: usize,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "GANGPLANK_LOG_FORMAT")]
    log_format: LogFormat,
}

/// Runs until SIGTERM or SIGINT.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve_until_signal(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve_until_signal(args: ProxyArgs) -> anyhow::Result<()> {
    let store = match &args.state_dir {
        None => Store::in_memory(),
        Some(dir) => {
            let (store, outcome) = Store::open(dir)
                .with_context(|| format!("opening the state directory {}", dir.display()))?;
            match outcome {
                RestoreOutcome::Empty => {
                    tracing::info!(dir = %dir.display(), "no saved configuration; starting empty")
                }
                RestoreOutcome::Restored { version } => {
                    tracing::info!(dir = %dir.display(), version, "restored the last good configuration")
                }
                RestoreOutcome::Corrupt { reason, moved_to } => tracing::error!(
                    %reason, moved_to = %moved_to.display(),
                    "the saved configuration is unusable; it was moved aside and Gangplank starts empty"
                ),
            }
            store
        }
    };
    let mut state = AdminState::new(Arc::new(store), Status::new());
    state.body_limit = args.admin_body_limit;
    let app = router(state.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let socket = listen::bind_unix(&args.admin_socket)
        .with_context(|| format!("binding the admin socket {}", args.admin_socket.display()))?;
    tracing::info!(socket = %args.admin_socket.display(), "admin API listening");
    let mut servers = vec![tokio::spawn(serve::serve(
        socket.into(),
        app.clone(),
        state.status.clone(),
        stopped(),
    ))];
    if let Some(addr) = args.status_listen {
        let tcp = listen::bind_tcp(addr)
            .await
            .with_context(|| format!("binding the status address {addr}"))?;
        tracing::info!(%addr, "admin API listening on TCP");
        servers.push(tokio::spawn(serve::serve(
            tcp.into(),
            app,
            state.status.clone(),
            stopped(),
        )));
    }

    wait_for_signal().await?;
    tracing::info!("shutting down");
    state.status.set_draining(true);
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
