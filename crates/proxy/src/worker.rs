//! Thread-per-core serving: one OS thread per worker, each with a current-thread tokio
//! runtime, its own `SO_REUSEPORT` listener sockets and its own upstream pool.
//!
//! Plain listeners serve HTTP/1.1 and HTTP/2 with prior knowledge; TLS listeners do
//! the handshake (certificate by SNI, see [`crate::tls`]) inside the connection's task,
//! so a slow handshake never blocks accepting, then serve HTTP/1.1 or HTTP/2. With
//! `--enable-ssl-passthrough` they read the ClientHello's SNI first and pipe the
//! connections of `ssl-passthrough` hosts to their backend ([`crate::passthrough`]).
//!
//! Shutdown ([`Proxy::shutdown`]): listeners close at once (new connections are
//! refused), open connections finish their in-flight requests (HTTP/1 keep-alive
//! connections close after the current response, HTTP/2 gets GOAWAY), and whatever is
//! still running after the grace period is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gangplank_store::{Status, Store};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use crate::balancers::Balancers;
use crate::config::ProxyConfig;
use crate::drive::{Activity, Drain, Drive, Watch};
use crate::handler::{Shared, WorkerContext, handle};
use crate::headers::ClientInfo;
use crate::listen::bind_reuseport;
use crate::proxy_protocol::PrefixedStream;
use crate::telemetry::Telemetry;
use crate::tls::TlsTermination;
use crate::upstream::{Pool, PoolSettings};

/// How long a client may take to complete the TLS handshake (nginx's default).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Starting the proxy failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS configuration could not be built.
    #[error("setting up TLS: {0}")]
    Tls(#[from] crate::tls::TlsSetupError),
    /// The telemetry thread could not start.
    #[error("starting the telemetry thread: {0}")]
    Telemetry(std::io::Error),
    /// A worker thread or runtime could not start.
    #[error("starting worker {worker}: {source}")]
    Worker {
        /// Worker index.
        worker: usize,
        /// The error.
        source: std::io::Error,
    },
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    workers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    local_addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    status: Arc<Status>,
    telemetry: Arc<Telemetry>,
}

/// One worker's listener socket and whether it speaks TLS.
struct WorkerListener {
    socket: std::net::TcpListener,
    tls: Option<TlsTermination>,
}

impl Proxy {
    /// Binds every listener (so errors surface here), then starts the workers.
    pub fn start(
        config: ProxyConfig,
        store: Arc<Store>,
        status: Arc<Status>,
    ) -> Result<Proxy, ProxyError> {
        let workers = config.workers.max(1);
        let mut per_worker: Vec<Vec<WorkerListener>> = (0..workers).map(|_| Vec::new()).collect();
        // One TLS configuration for all workers: one fallback certificate and one
        // session cache, since SO_REUSEPORT spreads a client's connections over workers.
        let acceptor = if config.https_listen.is_empty() {
            None
        } else {
            Some(TlsTermination::new(store.clone())?)
        };
        let mut local_addrs = Vec::new();
        let mut tls_addrs = Vec::new();
        let plain = config.http_listen.iter().map(|a| (*a, None));
        let secure = config.https_listen.iter().map(|a| (*a, acceptor.clone()));
        for (addr, tls) in plain.chain(secure) {
            let bind_error = |source| ProxyError::Bind { addr, source };
            let sockets = bind_reuseport(addr, workers).map_err(bind_error)?;
            if let Some(first) = sockets.first() {
                let local = first
                    .local_addr()
                    .map_err(|source| ProxyError::Bind { addr, source })?;
                if tls.is_some() {
                    tls_addrs.push(local);
                } else {
                    local_addrs.push(local);
                }
            }
            for (slot, socket) in per_worker.iter_mut().zip(sockets) {
                slot.push(WorkerListener {
                    socket,
                    tls: tls.clone(),
                });
            }
        }
        let telemetry = Telemetry::start(
            config.access_log,
            status.clone(),
            config.metric_labels.clone(),
            workers,
        )
        .map_err(ProxyError::Telemetry)?;
        let mut self_addresses = config.self_addresses.clone();
        self_addresses.extend(local_addrs.iter().chain(&tls_addrs).copied());
        let shared = Arc::new(Shared {
            store,
            status: status.clone(),
            balancers: Balancers::default(),
            self_addresses,
            telemetry: telemetry.clone(),
            resolver: crate::dns::Resolver::default(),
            https_port: tls_addrs.first().map_or(443, |a| a.port()),
            ssl_passthrough: config.ssl_passthrough,
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut handles = Vec::with_capacity(workers);
        for (index, listeners) in per_worker.into_iter().enumerate() {
            let shared = shared.clone();
            let stop_rx = stop_rx.clone();
            let grace = config.shutdown_grace;
            let handle = std::thread::Builder::new()
                .name(format!("gangplank-worker-{index}"))
                .spawn(move || run_worker(index, listeners, shared, stop_rx, grace))
                .map_err(|source| ProxyError::Worker {
                    worker: index,
                    source,
                })?;
            handles.push(handle);
        }
        Ok(Proxy {
            workers: handles,
            stop,
            local_addrs,
            tls_addrs,
            status,
            telemetry,
        })
    }

    /// Access log and metrics (the `/metrics` endpoint renders `telemetry().metrics()`).
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// The bound plain HTTP addresses (with the real port when 0 was asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The bound TLS addresses.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), and
    /// waits for the workers to exit.
    pub fn shutdown(self) {
        self.status.set_draining(true);
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn run_worker(
    index: usize,
    listeners: Vec<WorkerListener>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, error = %e, "could not start the worker runtime");
            return;
        }
    };
    crate::telemetry::set_worker_shard(index);
    runtime.block_on(async move {
        let general = shared.store.load().source.general.clone();
        let pool = Pool::new(PoolSettings {
            max_idle: general.upstream_keepalive_connections() as usize,
            idle_timeout: general.upstream_keepalive_timeout(),
            max_requests: general.upstream_keepalive_requests(),
            max_lifetime: general.upstream_keepalive_time(),
        });
        let ctx = Arc::new(WorkerContext { shared, pool });
        let graceful = Arc::new(Drain::new());
        let mut tasks = Vec::new();
        for WorkerListener { socket, tls } in listeners {
            let listener = match tokio::net::TcpListener::from_std(socket) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(worker = index, error = %e, "could not register a listener");
                    continue;
                }
            };
            tasks.push(tokio::spawn(accept_loop(
                listener,
                tls,
                ctx.clone(),
                graceful.clone(),
                stop.clone(),
            )));
        }
        for task in tasks {
            let _ = task.await;
        }
        match Arc::try_unwrap(graceful) {
            Ok(graceful) => {
                if tokio::time::timeout(grace, graceful.shutdown())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        worker = index,
                        "connections still open after the shutdown grace period"
                    );
                }
            }
            Err(_) => tracing::warn!(worker = index, "shutdown watcher still shared"),
        }
    });
}

/// How long a client may take to send a request header when `keep-alive` is 0 (no
/// idle period to use): nginx's `client_header_timeout`.
const CLIENT_HEADER_TIMEOUT: Duration = Duration::from_secs(60);

fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // Idle connections and slow request headers are timed by [`Drive`], not by hyper's
    // per-request header timer.
    b.http1().timer(TokioTimer::new()).header_read_timeout(None);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128);
    b
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<TlsTermination>,
    ctx: Arc<WorkerContext>,
    graceful: Arc<Drain>,
    mut stop: watch::Receiver<bool>,
) {
    let local_port = listener.local_addr().map_or(0, |a| a.port());
    let builder = Arc::new(http_builder());
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let guard = ctx.shared.status.connection_accepted();
        let connection = Accepted {
            stream,
            remote,
            local_port,
            tls: tls.clone(),
            ctx: ctx.clone(),
            builder: builder.clone(),
            // Taken now, so shutdown also waits for connections still in their
            // PROXY header or TLS handshake.
            graceful: graceful.watcher(),
        };
        tokio::spawn(async move {
            connection.serve().await;
            drop(guard);
        });
    }
}

/// One accepted connection and what serving it needs.
struct Accepted {
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    local_port: u16,
    tls: Option<TlsTermination>,
    ctx: Arc<WorkerContext>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: Watch,
}

impl Accepted {
    /// PROXY protocol header (when the current snapshot asks for it), TLS handshake
    /// (TLS listeners), then HTTP until the connection ends.
    async fn serve(self) {
        let Accepted {
            stream,
            remote,
            local_port,
            tls,
            ctx,
            builder,
            graceful,
        } = self;
        // The settings of the moment the connection arrived: one snapshot load.
        let snapshot = ctx.shared.store.load();
        let general = &snapshot.source.general;
        // `keep-alive-requests` (nginx `keepalive_requests`, default 1000): the
        // response to the last allowed request of an HTTP/1 connection carries
        // `Connection: close`, and hyper closes the connection after it.
        let keep_alive_requests = general.keep_alive_requests();
        // `keep-alive`: idle connections close after it; 0 turns keep-alive off (every
        // HTTP/1 response closes its connection, as nginx's `keepalive_timeout 0`).
        let keep_alive = general.keep_alive();
        let https = tls.is_some();
        let (stream, mut client) = if general.use_proxy_protocol() {
            let timeout = general.proxy_protocol_header_timeout();
            let trusted = snapshot
                .routes
                .global()
                .real_ip
                .as_ref()
                .is_some_and(|real| real.trusted.contains(remote.ip()));
            drop(snapshot);
            match crate::proxy_protocol::read_header(stream, timeout).await {
                Ok((header, stream)) => {
                    let client = match header.source() {
                        Some(source) if trusted => {
                            ClientInfo::proxied(source, remote.ip(), local_port, https)
                        }
                        _ => ClientInfo::new(remote, local_port, https),
                    };
                    (stream, client)
                }
                Err(e) => {
                    tracing::debug!(error = %e, %remote, "connection closed: no valid PROXY protocol header");
                    return;
                }
            }
        } else {
            drop(snapshot);
            (
                PrefixedStream::plain(stream),
                ClientInfo::new(remote, local_port, https),
            )
        };
        client.https_port = ctx.shared.https_port;
        let stream = match &tls {
            None => Either::Plain(stream),
            Some(termination) => {
                let mut stream = stream;
                if ctx.shared.ssl_passthrough {
                    match passthrough_target(&ctx, &mut stream, remote).await {
                        Passthrough::Terminate => {}
                        Passthrough::Closed => return,
                        Passthrough::Pipe(backend, sni) => {
                            // The watcher lives as long as the pipe: shutdown waits
                            // for it up to the grace period.
                            let _graceful = graceful;
                            crate::passthrough::pipe(&ctx.shared, backend, stream, remote, &sni)
                                .await;
                            return;
                        }
                    }
                }
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, termination.accept(stream)).await
                {
                    Ok(Ok((stream, certificate))) => {
                        client.client_cert = certificate;
                        Either::Tls(Box::new(stream))
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, %remote, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        let service_ctx = ctx.clone();
        let served = std::cell::Cell::new(0u32);
        let activity = Activity::new();
        let requests = activity.clone();
        let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
            served.set(served.get().saturating_add(1));
            let last = (keep_alive.is_zero()
                || keep_alive_requests != 0 && served.get() >= keep_alive_requests)
                && request.version() <= http::Version::HTTP_11;
            // Returned as is: hyper moves the request's future into its connection
            // state once; a wrapping async block would move it again on first poll.
            handle(
                service_ctx.clone(),
                client.clone(),
                request,
                requests.start(),
                last,
            )
        });
        let idle_limit = if keep_alive.is_zero() {
            CLIENT_HEADER_TIMEOUT
        } else {
            keep_alive
        };
        let result = match stream {
            Either::Plain(stream) => {
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                Drive::new(connection, graceful, activity, idle_limit).await
            }
            Either::Tls(stream) => {
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(*stream), service)
                    .into_owned();
                Drive::new(connection, graceful, activity, idle_limit).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, %remote, "client connection ended with an error");
        }
    }
}

/// What the listener does with a TLS connection when passthrough is enabled.
enum Passthrough {
    /// Terminate TLS as usual.
    Terminate,
    /// The client went away (or never sent a ClientHello in time).
    Closed,
    /// Pipe it to this backend (the SNI, for logs).
    Pipe(Arc<gangplank_store::CompiledBackend>, String),
}

/// Reads the ClientHello's SNI (without consuming it) and looks up its passthrough
/// backend in the current snapshot.
async fn passthrough_target(
    ctx: &WorkerContext,
    stream: &mut PrefixedStream<tokio::net::TcpStream>,
    remote: SocketAddr,
) -> Passthrough {
    let sni =
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, crate::passthrough::read_sni(stream))
            .await
        {
            Ok(Ok(sni)) => sni,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, %remote, "connection closed before its ClientHello");
                return Passthrough::Closed;
            }
            Err(_) => {
                tracing::debug!(%remote, "no ClientHello in time");
                return Passthrough::Closed;
            }
        };
    let Some(sni) = sni else {
        return Passthrough::Terminate;
    };
    let snapshot = ctx.shared.store.load();
    match snapshot.routes.passthrough(&sni) {
        Some(backend) => Passthrough::Pipe(backend.clone(), sni),
        None => Passthrough::Terminate,
    }
}

/// A client connection after the handshakes.
enum Either {
    Plain(PrefixedStream<tokio::net::TcpStream>),
    Tls(Box<tokio_rustls::server::TlsStream<PrefixedStream<tokio::net::TcpStream>>>),
}
