//! Per-worker pools of upstream connections.
//!
//! Each worker thread owns one [`Pool`]; its locks are never contended across threads.
//! Three kinds of connections never mix, since they are kept apart by key:
//! - plain HTTP/1.1 keep-alive connections, keyed by address ([`Pool::send`], the
//!   fast path: nothing else is looked at for plain HTTP backends);
//! - HTTP/1.1 over TLS (`backend-protocol: HTTPS`, `AUTO_HTTP` for HTTPS clients),
//!   keyed by address and TLS client configuration ([`tls`]);
//! - HTTP/2 (`GRPC` cleartext with prior knowledge, `GRPCS` over TLS), one multiplexed
//!   connection per endpoint and configuration shared by concurrent requests, replaced
//!   when it dies ([`h2`]).
//!
//! An HTTP/1 connection goes back to the pool when the response body has been read to
//! the end ([`Checkin`]); a response dropped half-way closes its connection. Limits
//! follow ingress-nginx's `upstream-keepalive-*` settings: idle connections per worker,
//! idle timeout, requests per connection, and connection lifetime (for HTTP/2: how
//! long the shared connection may sit unused, how many requests it carries and how
//! long it lives before a fresh one replaces it).
//!
//! A request is given back to the caller, untouched, whenever it could not be sent
//! (connect failure or timeout, TLS handshake failure, or a pooled connection found
//! dead), so the handler can retry it on another endpoint even when it has a body.
//!
//! TLS client configurations are built by the store at apply time
//! ([`gangplank_store::policy::UpstreamTls`]); connecting only clones their `Arc`.

pub mod grpc;
pub mod h2;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use gangplank_store::policy::{UpstreamProtocol, UpstreamTls};

use crate::body::RequestBody;

/// How one request reaches its upstream, borrowed from the location's compiled
/// settings ([`gangplank_store::policy::UpstreamSettings`]).
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    /// Plain HTTP/1.1 ([`Pool::send`]).
    Http1,
    /// HTTP/1.1 over TLS with this configuration.
    Http1Tls(&'a Arc<UpstreamTls>),
    /// HTTP/2: cleartext with prior knowledge (`None`) or over TLS.
    H2(Option<&'a Arc<UpstreamTls>>),
}

impl<'a> Transport<'a> {
    /// The transport of `protocol` for a client connection that is (`client_https`)
    /// or is not TLS (`AUTO_HTTP` follows it, as nginx's `$scheme`).
    pub fn of(protocol: &'a UpstreamProtocol, client_https: bool) -> Transport<'a> {
        match protocol {
            UpstreamProtocol::Http => Transport::Http1,
            UpstreamProtocol::Https(tls) => Transport::Http1Tls(tls),
            UpstreamProtocol::AutoHttp(tls) if client_https => Transport::Http1Tls(tls),
            UpstreamProtocol::AutoHttp(_) => Transport::Http1,
            UpstreamProtocol::Grpc => Transport::H2(None),
            UpstreamProtocol::Grpcs(tls) => Transport::H2(Some(tls)),
        }
    }

    /// True for HTTP/2.
    pub fn is_h2(self) -> bool {
        matches!(self, Transport::H2(_))
    }
}

/// Pool limits (ingress-nginx's `upstream-keepalive-*` ConfigMap keys).
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Idle connections kept per worker, over all upstreams (`...-connections`, 320);
    /// 0 disables keep-alive.
    pub max_idle: usize,
    /// How long an idle connection is kept (`...-timeout`, 60 s).
    pub idle_timeout: Duration,
    /// Requests per connection (`...-requests`, 10000).
    pub max_requests: u32,
    /// Lifetime of a connection (`...-time`, 1 h).
    pub max_lifetime: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_idle: 320,
            idle_timeout: Duration::from_secs(60),
            max_requests: 10_000,
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

/// Per-request timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Establishing the TCP connection (`proxy-connect-timeout`).
    pub connect: Duration,
    /// Waiting for the response header (`proxy-read-timeout`).
    pub read: Duration,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connection could not be made.
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    /// The TCP connection (or the TLS handshake) took too long.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The TLS handshake failed (certificate refused, no common protocol...).
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// The HTTP handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(hyper::Error),
    /// Sending the request or reading the response header failed.
    #[error("upstream exchange failed: {0}")]
    Exchange(hyper::Error),
    /// No response header within the read timeout.
    #[error("no response within {0:?}")]
    ReadTimeout(Duration),
}

impl UpstreamError {
    /// 504 for timeouts, 502 for everything else (nginx's mapping).
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::ConnectTimeout(_) | UpstreamError::ReadTimeout(_) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// True for failures nginx's `proxy_next_upstream timeout` covers.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            UpstreamError::ConnectTimeout(_) | UpstreamError::ReadTimeout(_)
        )
    }
}

/// A failed attempt, with the request when it was not sent (so it can be retried).
#[derive(Debug)]
pub struct Failed {
    /// What went wrong.
    pub error: UpstreamError,
    /// The request, when it never left (retriable whatever its method and body).
    pub request: Option<Request<RequestBody>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
    created: Instant,
    requests: u32,
    /// Set for connections over TLS: what they were made with ([`tls`]).
    tls: Option<Box<tls::Tag>>,
}

impl Idle {
    /// An HTTP/1.1 connection over `stream` (plain TCP, or TLS tagged with `tls`): its
    /// connection task is spawned, its sender returned as a fresh idle connection.
    async fn handshake<S>(
        stream: S,
        addr: SocketAddr,
        tls: Option<Box<tls::Tag>>,
    ) -> Result<Idle, UpstreamError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(UpstreamError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, %addr, "upstream connection ended with an error");
            }
        });
        let now = Instant::now();
        Ok(Idle {
            sender,
            since: now,
            created: now,
            requests: 0,
            tls,
        })
    }
}

/// One worker's connection pool.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    /// HTTP/1.1 over TLS, by address and configuration ([`tls`]).
    tls_idle: Mutex<HashMap<tls::Key, Vec<Idle>>>,
    /// Shared HTTP/2 connections ([`h2`]).
    h2: Mutex<h2::Connections>,
    settings: PoolSettings,
}

/// Returns a connection to its pool when its response body ended.
#[derive(Debug)]
pub struct Checkin {
    pool: Arc<Pool>,
    addr: SocketAddr,
    idle: Idle,
}

impl Checkin {
    /// Puts the connection back (or drops it when the pool is full or it is used up).
    pub fn checkin(mut self) {
        self.idle.since = Instant::now();
        self.pool.put(self.addr, self.idle);
    }
}

impl Pool {
    /// An empty pool.
    pub fn new(settings: PoolSettings) -> Arc<Pool> {
        Arc::new(Pool {
            idle: Mutex::new(HashMap::new()),
            tls_idle: Mutex::new(HashMap::new()),
            h2: Mutex::new(h2::Connections::default()),
            settings,
        })
    }

    /// Number of idle HTTP/1 connections (all upstreams, plain and TLS).
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum::<usize>() + self.tls_idle_count()
    }

    /// Sends `request` over `transport`: [`Pool::send`] for plain HTTP, otherwise TLS
    /// or HTTP/2 connections of their own. `host` is the endpoint's name when it has
    /// one (ExternalName), the default name to verify and send as SNI.
    pub async fn send_with(
        self: &Arc<Self>,
        addr: SocketAddr,
        host: Option<&str>,
        transport: Transport<'_>,
        request: Request<RequestBody>,
        timeouts: Timeouts,
    ) -> Result<(Response<Incoming>, Option<Checkin>), Failed> {
        match transport {
            Transport::Http1 => self.send(addr, request, timeouts).await,
            Transport::Http1Tls(config) => {
                self.send_tls(addr, host, config, request, timeouts).await
            }
            Transport::H2(config) => self
                .send_h2(addr, host, config, request, timeouts)
                .await
                .map(|response| (response, None)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<Idle>>> {
        // The map holds only idle connections; after a panic elsewhere it is still valid.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put(&self, addr: SocketAddr, idle: Idle) {
        if idle.tls.is_some() {
            self.put_tls(addr, idle);
            return;
        }
        let s = &self.settings;
        if idle.requests >= s.max_requests
            || idle.created.elapsed() >= s.max_lifetime
            || idle.sender.is_closed()
        {
            return;
        }
        let mut map = self.lock();
        let total: usize = map.values().map(Vec::len).sum();
        if total >= s.max_idle {
            return;
        }
        map.entry(addr).or_default().push(idle);
    }

    fn take(&self, addr: SocketAddr) -> Option<Idle> {
        let mut map = self.lock();
        let list = map.get_mut(&addr)?;
        while let Some(idle) = list.pop() {
            let fresh = idle.since.elapsed() < self.settings.idle_timeout
                && idle.created.elapsed() < self.settings.max_lifetime
                && !idle.sender.is_closed();
            if fresh {
                return Some(idle);
            }
        }
        None
    }

    /// Sends `request` to `addr` on a pooled or new connection and waits for the
    /// response header. On success, the `Checkin` (if the connection may be reused)
    /// must travel with the response body.
    pub async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut request: Request<RequestBody>,
        timeouts: Timeouts,
    ) -> Result<(Response<Incoming>, Option<Checkin>), Failed> {
        // Pooled connections first; a dead one hands the request back untouched.
        while let Some(mut idle) = self.take(addr) {
            if idle.sender.ready().await.is_err() {
                continue;
            }
            match self.exchange(addr, idle, request, timeouts).await {
                Ok(done) => return Ok(done),
                Err(Failed {
                    request: Some(r), ..
                }) => request = r,
                Err(failed) => return Err(failed),
            }
        }
        // Boxed: new connections are rare on the keep-alive path; the handshake's
        // future would otherwise size every request's.
        let idle = match Box::pin(self.connect(addr, timeouts.connect)).await {
            Ok(idle) => idle,
            Err(error) => {
                return Err(Failed {
                    error,
                    request: Some(request),
                });
            }
        };
        self.exchange(addr, idle, request, timeouts).await
    }

    async fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<Idle, UpstreamError> {
        let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await
        {
            Err(_) => return Err(UpstreamError::ConnectTimeout(timeout)),
            Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Idle::handshake(stream, addr, None).await
    }

    async fn exchange(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut idle: Idle,
        request: Request<RequestBody>,
        timeouts: Timeouts,
    ) -> Result<(Response<Incoming>, Option<Checkin>), Failed> {
        let wants_upgrade = request.headers().contains_key(http::header::UPGRADE);
        let sent = tokio::time::timeout(timeouts.read, idle.sender.try_send_request(request)).await;
        let response = match sent {
            Err(_) => {
                return Err(Failed {
                    error: UpstreamError::ReadTimeout(timeouts.read),
                    request: None,
                });
            }
            Ok(Err(mut e)) => {
                let request = e.take_message();
                return Err(Failed {
                    error: UpstreamError::Exchange(e.into_error()),
                    request,
                });
            }
            Ok(Ok(response)) => response,
        };
        idle.requests += 1;
        let reusable = self.settings.max_idle > 0
            && !wants_upgrade
            && response.status() != StatusCode::SWITCHING_PROTOCOLS
            && !connection_close(response.headers());
        let checkin = reusable.then(|| Checkin {
            pool: self.clone(),
            addr,
            idle,
        });
        Ok((response, checkin))
    }
}

fn connection_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
}
