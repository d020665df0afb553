//! The connection loop: accepts on a [`Listener`], counts connections and requests in
//! [`Status`] (so `/nginx_status` shows the admin server's own traffic until the proxy
//! listeners add theirs), and shuts down gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use gangplank_store::Status;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt as _;

use super::listen::Listener;

/// How long a client may take to send its request header.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections get to finish after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections
/// finish (up to a few seconds) and removes the unix socket file if it is still ours.
pub async fn serve(
    listener: Listener,
    app: Router,
    status: Arc<Status>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener) => accepted,
        };
        let io = match accepted {
            Ok(io) => io,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let connection_guard = status.connection_accepted();
        let app = app.clone();
        let status = status.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let request_guard = status.request_started();
            let app = app.clone();
            async move {
                let response = app.oneshot(req.map(axum::body::Body::new)).await;
                drop(request_guard);
                response
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
            drop(connection_guard);
        });
    }
    if let Listener::Unix(socket) = &listener {
        socket.remove_file_if_ours();
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("admin connections still open after the shutdown grace period");
    }
}

/// Either kind of accepted stream, boxed behind one I/O type.
type Io = TokioIo<Box<dyn Stream>>;

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

async fn accept(listener: &Listener) -> std::io::Result<Io> {
    Ok(match listener {
        Listener::Unix(s) => {
            TokioIo::new(Box::new(s.listener.accept().await?.0) as Box<dyn Stream>)
        }
        Listener::Tcp(l) => TokioIo::new(Box::new(l.accept().await?.0) as Box<dyn Stream>),
    })
}
