//! `gangplank proxy`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use gangplank_admin_server::server::{AdminState, listen, router, serve};
use gangplank_proxy::telemetry::{AccessLog, ConstLabels};
use gangplank_proxy::{Proxy, ProxyConfig};
use gangplank_store::{RestoreOutcome, Status, Store};
use tokio::sync::watch;

use crate::logging::{self, LogFormat};

/// Flags of `gangplank proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Plain HTTP listener (HTTP/1.1 and h2c); repeat for several.
    #[arg(long, env = "GANGPLANK_HTTP_LISTEN", default_value = "0.0.0.0:80")]
    http_listen: Vec<SocketAddr>,
    /// TLS listener (HTTP/1.1 and HTTP/2 by ALPN; certificates by SNI); repeat for several.
    #[arg(long, env = "GANGPLANK_HTTPS_LISTEN", default_value = "0.0.0.0:443")]
    https_listen: Vec<SocketAddr>,
    /// Worker threads, each with its own listener sockets (default: one per CPU).
    #[arg(long, env = "GANGPLANK_WORKERS")]
    workers: Option<usize>,
    /// Prometheus metrics (`/metrics`) and `/healthz`, as ingress-nginx's port 10254.
    #[arg(
        long,
        env = "GANGPLANK_METRICS_LISTEN",
        default_value = "0.0.0.0:10254"
    )]
    metrics_listen: SocketAddr,
    /// Write an access log line per request to stdout (format follows --log-format).
    #[arg(long, env = "GANGPLANK_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    access_log: bool,
    /// `controller_class` label of the metrics.
    #[arg(
        long,
        env = "GANGPLANK_CONTROLLER_CLASS",
        default_value = "gangplank.io/ingress-controller"
    )]
    controller_class: String,
    /// How long in-flight requests may run after SIGTERM.
    #[arg(long, value_parser = parse_seconds, default_value = "30")]
    shutdown_grace: Duration,
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
    /// Pipe the TLS connections of hosts with the `ssl-passthrough` annotation to
    /// their backend unterminated (SNI-routed TCP), as ingress-nginx's flag of the
    /// same name. Off by default: every TLS connection's SNI is read first.
    #[arg(long, env = "GANGPLANK_ENABLE_SSL_PASSTHROUGH")]
    enable_ssl_passthrough: bool,
}

impl ProxyArgs {
    /// The admin socket path.
    pub fn admin_socket(&self) -> &std::path::Path {
        &self.admin_socket
    }

    /// The `--controller-class` value.
    pub fn controller_class(&self) -> &str {
        &self.controller_class
    }
}

/// A task started next to the proxy once its admin socket is bound.
type Companion = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs until SIGTERM or SIGINT.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    run_with(args, || async {})
}

/// Runs the proxy until SIGTERM or SIGINT, with `companion` (the standalone mode's
/// controller) started as a task once the admin socket is bound.
pub fn run_with<F, Fut>(args: ProxyArgs, companion: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    logging::init(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let companion: Companion = Box::pin(companion());
    runtime.block_on(serve_until_signal(args, companion))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve_until_signal(args: ProxyArgs, companion: Companion) -> anyhow::Result<()> {
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
    let store = Arc::new(store);
    let status = Status::new();

    // Bind everything before serving anything, so a busy socket or port fails the
    // start cleanly.
    let socket = listen::bind_unix(&args.admin_socket)
        .with_context(|| format!("binding the admin socket {}", args.admin_socket.display()))?;
    let metrics_tcp = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("binding the metrics address {}", args.metrics_listen))?;
    let status_tcp = match args.status_listen {
        Some(addr) => Some(
            listen::bind_tcp(addr)
                .await
                .with_context(|| format!("binding the status address {addr}"))?,
        ),
        None => None,
    };
    let mut proxy_config = ProxyConfig {
        http_listen: args.http_listen.clone(),
        https_listen: args.https_listen.clone(),
        shutdown_grace: args.shutdown_grace,
        self_addresses: args
            .status_listen
            .into_iter()
            .chain([args.metrics_listen])
            .collect(),
        access_log: match (args.access_log, args.log_format) {
            (false, _) => AccessLog::Off,
            (true, LogFormat::Text) => AccessLog::Text,
            (true, LogFormat::Json) => AccessLog::Json,
        },
        metric_labels: ConstLabels {
            namespace: std::env::var("POD_NAMESPACE").unwrap_or_default(),
            class: args.controller_class.clone(),
            pod: std::env::var("POD_NAME").unwrap_or_default(),
        },
        ssl_passthrough: args.enable_ssl_passthrough,
        ..ProxyConfig::default()
    };
    if let Some(workers) = args.workers {
        proxy_config.workers = workers;
    }
    let proxy = Proxy::start(proxy_config, store.clone(), status.clone())
        .context("starting the proxy listeners")?;
    for addr in proxy.local_addrs() {
        tracing::info!(%addr, "proxy listening");
    }
    for addr in proxy.tls_addrs() {
        tracing::info!(%addr, "proxy listening (TLS)");
    }

    tracing::info!(addr = ?metrics_tcp.local_addr().ok(), "metrics listening");
    let metrics_server = tokio::spawn(gangplank_proxy::metrics_http::serve(
        metrics_tcp,
        proxy.telemetry().metrics().clone(),
        status.clone(),
        std::future::pending(),
    ));
    let mut state = AdminState::new(store, status);
    state.body_limit = args.admin_body_limit;
    let app = router(state.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    tracing::info!(socket = %args.admin_socket.display(), "admin API listening");
    let mut servers = vec![tokio::spawn(serve::serve(
        socket.into(),
        app.clone(),
        state.status.clone(),
        stopped(),
    ))];
    if let Some(tcp) = status_tcp {
        tracing::info!(addr = ?tcp.local_addr().ok(), "admin API listening on TCP");
        servers.push(tokio::spawn(serve::serve(
            tcp.into(),
            app,
            state.status.clone(),
            stopped(),
        )));
    }

    let companion = tokio::spawn(companion);

    wait_for_signal().await?;
    companion.abort();
    tracing::info!("shutting down: draining in-flight requests");
    state.status.set_draining(true);
    // The admin API stays up while the proxy drains, so /healthz reports 503.
    tokio::task::spawn_blocking(move || proxy.shutdown())
        .await
        .context("waiting for the proxy workers")?;
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    metrics_server.abort();
    Ok(())
}

/// Waits for SIGTERM or SIGINT.
pub(crate) async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim_end_matches('s')
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("{text:?} is not a number of seconds"))
}
