//! Thread-per-core serving: one OS thread per worker, each with a current-thread tokio
//! runtime, its own `SO_REUSEPORT` listener sockets and its own upstream pool.
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
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::watch;

use crate::balancers::Balancers;
use crate::config::ProxyConfig;
use crate::handler::{Shared, WorkerContext, handle};
use crate::headers::ClientInfo;
use crate::listen::bind_reuseport;
use crate::upstream::{Pool, PoolSettings};

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
    status: Arc<Status>,
}

impl Proxy {
    /// Binds every listener (so errors surface here), then starts the workers.
    pub fn start(
        config: ProxyConfig,
        store: Arc<Store>,
        status: Arc<Status>,
    ) -> Result<Proxy, ProxyError> {
        let workers = config.workers.max(1);
        let mut per_worker: Vec<Vec<std::net::TcpListener>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut local_addrs = Vec::new();
        for addr in &config.http_listen {
            let sockets = bind_reuseport(*addr, workers).map_err(|source| ProxyError::Bind {
                addr: *addr,
                source,
            })?;
            if let Some(first) = sockets.first() {
                local_addrs.push(first.local_addr().map_err(|source| ProxyError::Bind {
                    addr: *addr,
                    source,
                })?);
            }
            for (slot, socket) in per_worker.iter_mut().zip(sockets) {
                slot.push(socket);
            }
        }
        let mut self_addresses = config.self_addresses.clone();
        self_addresses.extend(local_addrs.iter().copied());
        let shared = Arc::new(Shared {
            store,
            status: status.clone(),
            balancers: Balancers::default(),
            self_addresses,
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
            status,
        })
    }

    /// The bound listener addresses (with the real port when 0 was asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
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
    listeners: Vec<std::net::TcpListener>,
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
    runtime.block_on(async move {
        let general = shared.store.load().source.general.clone();
        let pool = Pool::new(PoolSettings {
            max_idle: general.upstream_keepalive_connections() as usize,
            idle_timeout: general.upstream_keepalive_timeout(),
            max_requests: general.upstream_keepalive_requests(),
            max_lifetime: general.upstream_keepalive_time(),
        });
        let ctx = Arc::new(WorkerContext { shared, pool });
        let graceful = Arc::new(GracefulShutdown::new());
        let mut tasks = Vec::new();
        for listener in listeners {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(worker = index, error = %e, "could not register a listener");
                    continue;
                }
            };
            tasks.push(tokio::spawn(accept_loop(
                listener,
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

async fn accept_loop(
    listener: tokio::net::TcpListener,
    ctx: Arc<WorkerContext>,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    let local_port = listener.local_addr().map_or(0, |a| a.port());
    let builder = {
        let mut b = auto::Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(60));
        b.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(128);
        b
    };
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
        let client = ClientInfo {
            remote,
            local_port,
            https: false,
        };
        let ctx = ctx.clone();
        let service = service_fn(move |request| handle(ctx.clone(), client, request));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %remote, "client connection ended with an error");
            }
            drop(guard);
        });
    }
}
