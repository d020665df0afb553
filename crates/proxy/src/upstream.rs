//! Per-worker pools of upstream connections.
//!
//! Each worker thread owns one [`Pool`]; its locks are never contended across threads.
//! Four kinds of connections never mix, since they are kept apart by key:
//! - plain HTTP/1.1 keep-alive connections for requests without a body, keyed by
//!   address and driven by the request's own task ([`h1`], the fast path: nothing
//!   else is looked at for a plain HTTP `GET`);
//! - plain HTTP/1.1 keep-alive connections through hyper's client, keyed by address,
//!   for requests with a body or an upgrade ([`Pool::send`] picks);
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
pub mod h1;
pub mod h2;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use gangplank_store::policy::{UpstreamProtocol, UpstreamTls};

use crate::body::RequestBody;
use crate::headers::Forwarding;

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

impl PoolSettings {
    /// True when a connection made at `created` that has served `requests` may go back
    /// to the pool (`...-requests`, `...-time`).
    fn may_keep(&self, requests: u32, created: Instant, now: Instant) -> bool {
        requests < self.max_requests && now.duration_since(created) < self.max_lifetime
    }

    /// True when a connection made at `created` and idle since `since` may still be
    /// used (`...-timeout`, `...-time`).
    fn is_fresh(&self, since: Instant, created: Instant, now: Instant) -> bool {
        now.duration_since(since) < self.idle_timeout
            && now.duration_since(created) < self.max_lifetime
    }
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
    /// The fast path's exchange failed ([`h1`]).
    #[error("upstream exchange failed: {0}")]
    Http1(h1::Http1Error),
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

/// An upstream response's body: read by hyper's client, or by the request's own task
/// on the fast path ([`h1`]).
#[derive(Debug)]
pub enum UpstreamBody {
    /// Through hyper's client (requests with a body, upgrades, TLS, HTTP/2).
    Hyper(Incoming),
    /// Through the fast path.
    Http1(h1::Body),
}

/// Why an upstream body broke off.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    /// hyper's client reported it.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The fast path reported it.
    #[error(transparent)]
    Http1(#[from] h1::Http1Error),
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        match self.get_mut() {
            UpstreamBody::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Http1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper(body) => body.is_end_stream(),
            UpstreamBody::Http1(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper(body) => body.size_hint(),
            UpstreamBody::Http1(body) => body.size_hint(),
        }
    }
}

/// A failed attempt, with the request when it was not sent (so it can be retried).
#[derive(Debug)]
pub struct Failed {
    /// What went wrong.
    pub error: UpstreamError,
    /// The request, when it never left (retriable whatever its method and body).
    /// Boxed, as the other: failures are rare, and a small `Failed` keeps the result
    /// of every exchange small (it is moved through each layer that returns it).
    pub request: Option<Box<Request<RequestBody>>>,
    /// The request after it left, when it had no body (the fast path keeps it): the
    /// caller may send it again if its retry rules allow a request that was sent.
    pub resend: Option<Box<Request<RequestBody>>>,
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

/// Idle fast-path connections by address. Boxed: a connection moves between the pool
/// and the response body it streams, which stays small that way.
type FastPathIdle = HashMap<SocketAddr, Vec<Box<h1::Conn>>, Hasher>;

/// The pools' map hasher: keys are configured addresses, not client input.
pub(crate) type Hasher = foldhash::fast::RandomState;

/// One worker's connection pool.
#[derive(Debug)]
pub struct Pool {
    /// The fast path's connections ([`h1`]).
    h1_idle: Mutex<FastPathIdle>,
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>, Hasher>>,
    /// HTTP/1.1 over TLS, by address and configuration ([`tls`]).
    tls_idle: Mutex<HashMap<tls::Key, Vec<Idle>, Hasher>>,
    /// Shared HTTP/2 connections ([`h2`]).
    h2: Mutex<h2::Connections>,
    /// Idle HTTP/1 connections of every kind (fast path, hyper's, TLS): one more on
    /// each push into an idle list, one less on each pop out of one.
    idle_total: AtomicUsize,
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
            h1_idle: Mutex::new(HashMap::default()),
            idle: Mutex::new(HashMap::default()),
            tls_idle: Mutex::new(HashMap::default()),
            idle_total: AtomicUsize::new(0),
            h2: Mutex::new(h2::Connections::default()),
            settings,
        })
    }

    /// Number of idle HTTP/1 connections (all upstreams, plain and TLS).
    pub fn idle_count(&self) -> usize {
        self.idle_total.load(Ordering::Relaxed)
    }

    /// A connection went into an idle list.
    fn pushed(&self) {
        self.idle_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection came out of an idle list (to be used or dropped).
    fn popped(&self) {
        self.idle_total.fetch_sub(1, Ordering::Relaxed);
    }

    /// True when the pool may take one more idle connection: one
    /// `upstream-keepalive-connections` limit over every kind. Called with no map lock
    /// held.
    fn has_room(&self) -> bool {
        self.idle_count() < self.settings.max_idle
    }

    fn h1_lock(&self) -> std::sync::MutexGuard<'_, FastPathIdle> {
        // The map holds only idle connections; after a panic elsewhere it is still valid.
        self.h1_idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a fast-path connection back after a complete response.
    pub(crate) fn put_h1(&self, mut conn: Box<h1::Conn>) {
        let now = Instant::now();
        if !self.settings.may_keep(conn.requests, conn.created, now) || !self.has_room() {
            return;
        }
        conn.since = now;
        conn.shrink();
        self.h1_lock().entry(conn.addr()).or_default().push(conn);
        self.pushed();
    }

    /// A pooled fast-path connection to `addr`, and the time it was taken.
    fn take_h1(&self, addr: SocketAddr) -> Option<(Box<h1::Conn>, Instant)> {
        let mut map = self.h1_lock();
        let list = map.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(conn) = list.pop() {
            self.popped();
            if self.settings.is_fresh(conn.since, conn.created, now) && conn.is_open() {
                return Some((conn, now));
            }
        }
        None
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
    ) -> Result<(Response<UpstreamBody>, Option<Checkin>), Failed> {
        match transport {
            Transport::Http1 => self.send(addr, request, timeouts).await,
            Transport::Http1Tls(config) => self
                .send_tls(addr, host, config, request, timeouts)
                .await
                .map(|(response, checkin)| (response.map(UpstreamBody::Hyper), checkin)),
            Transport::H2(config) => self
                .send_h2(addr, host, config, request, timeouts)
                .await
                .map(|response| (response.map(UpstreamBody::Hyper), None)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<Idle>, Hasher>> {
        // The map holds only idle connections; after a panic elsewhere it is still valid.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put(&self, addr: SocketAddr, idle: Idle) {
        if idle.tls.is_some() {
            self.put_tls(addr, idle);
            return;
        }
        if !self
            .settings
            .may_keep(idle.requests, idle.created, Instant::now())
            || idle.sender.is_closed()
            || !self.has_room()
        {
            return;
        }
        self.lock().entry(addr).or_default().push(idle);
        self.pushed();
    }

    fn take(&self, addr: SocketAddr) -> Option<Idle> {
        let mut map = self.lock();
        let list = map.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(idle) = list.pop() {
            self.popped();
            if self.settings.is_fresh(idle.since, idle.created, now) && !idle.sender.is_closed() {
                return Some(idle);
            }
        }
        None
    }

    /// Sends `request` to `addr` on a pooled or new connection and waits for the
    /// response header. On success, the `Checkin` (if the connection may be reused)
    /// must travel with the response body. Requests without a body take the fast
    /// path ([`h1`]); their body returns its connection itself.
    pub async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        request: Request<RequestBody>,
        timeouts: Timeouts,
    ) -> Result<(Response<UpstreamBody>, Option<Checkin>), Failed> {
        self.send_forwarded(addr, request, None, timeouts).await
    }

    /// [`Pool::send`] of a request whose forwarded headers are still to be added
    /// (`forwarding`): the fast path writes them into the request head, the others set
    /// them into the request first.
    pub async fn send_forwarded(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut request: Request<RequestBody>,
        forwarding: Option<&Forwarding>,
        timeouts: Timeouts,
    ) -> Result<(Response<UpstreamBody>, Option<Checkin>), Failed> {
        if h1::eligible(&request) {
            return self
                .send_h1(addr, request, forwarding, timeouts)
                .await
                .map(|response| (response, None));
        }
        if let Some(forwarding) = forwarding {
            forwarding.apply(request.headers_mut());
        }
        // Boxed: the fast path is the common one, and sizes every request's future.
        Box::pin(self.send_hyper(addr, request, timeouts))
            .await
            .map(|(response, checkin)| (response.map(UpstreamBody::Hyper), checkin))
    }

    /// The fast path: pooled connections first, a new one if none is left.
    async fn send_h1(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut request: Request<RequestBody>,
        forwarding: Option<&Forwarding>,
        timeouts: Timeouts,
    ) -> Result<Response<UpstreamBody>, Failed> {
        while let Some((conn, now)) = self.take_h1(addr) {
            match self
                .exchange_h1(conn, Some(now), request, forwarding, timeouts)
                .await
            {
                Ok(response) => return Ok(response),
                // Closed by the upstream while the request was on its way: again,
                // on the next connection.
                Err(Failed {
                    request: Some(r), ..
                }) => request = *r,
                Err(failed) => return Err(failed),
            }
        }
        let stream = match Box::pin(connect_tcp(addr, timeouts.connect)).await {
            Ok(stream) => stream,
            Err(error) => {
                return Err(Failed {
                    error,
                    request: Some(Box::new(request)),
                    resend: None,
                });
            }
        };
        self.exchange_h1(
            h1::Conn::new(stream, addr),
            None,
            request,
            forwarding,
            timeouts,
        )
        .await
    }

    /// One fast-path exchange on `conn`; `taken` is when it was taken from the pool
    /// (`None`: a new connection).
    async fn exchange_h1(
        self: &Arc<Self>,
        mut conn: Box<h1::Conn>,
        taken: Option<Instant>,
        request: Request<RequestBody>,
        forwarding: Option<&Forwarding>,
        timeouts: Timeouts,
    ) -> Result<Response<UpstreamBody>, Failed> {
        let reused = taken.is_some();
        // The read timeout runs from the moment the connection was in hand.
        let deadline =
            tokio::time::Instant::from_std(taken.unwrap_or(conn.created) + timeouts.read);
        let head = match conn.exchange_until(&request, forwarding, deadline).await {
            Some(Ok(head)) => head,
            Some(Err(e)) => {
                let error = UpstreamError::Http1(e.error);
                if reused && e.nothing_received && h1::idempotent(request.method()) {
                    return Err(Failed {
                        error,
                        request: Some(Box::new(request)),
                        resend: None,
                    });
                }
                return Err(Failed {
                    error,
                    request: None,
                    resend: Some(Box::new(request)),
                });
            }
            None => {
                return Err(Failed {
                    error: UpstreamError::ReadTimeout(timeouts.read),
                    request: None,
                    resend: Some(Box::new(request)),
                });
            }
        };
        conn.requests += 1;
        let (framing, reusable) = match h1::framing(request.method() == http::Method::HEAD, &head) {
            Ok(framing) => framing,
            Err(error) => {
                return Err(Failed {
                    error: UpstreamError::Http1(error),
                    request: None,
                    resend: Some(Box::new(request)),
                });
            }
        };
        // The request is done with: its header map, emptied at once (its values hold
        // the client connection's read buffer), serves the next response head.
        let mut request = request;
        let mut spare = std::mem::take(request.headers_mut());
        spare.clear();
        conn.spare = Some(spare);
        let home = (reusable && self.settings.max_idle > 0).then(|| self.clone());
        let mut response = Response::new(UpstreamBody::Http1(h1::Body::new(framing, conn, home)));
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        *response.headers_mut() = head.headers;
        Ok(response)
    }

    /// Through hyper's client: pooled connections first; a dead one hands the request
    /// back untouched.
    async fn send_hyper(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut request: Request<RequestBody>,
        timeouts: Timeouts,
    ) -> Result<(Response<Incoming>, Option<Checkin>), Failed> {
        while let Some(mut idle) = self.take(addr) {
            if idle.sender.ready().await.is_err() {
                continue;
            }
            match self.exchange(addr, idle, request, timeouts).await {
                Ok(done) => return Ok(done),
                Err(Failed {
                    request: Some(r), ..
                }) => request = *r,
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
                    request: Some(Box::new(request)),
                    resend: None,
                });
            }
        };
        self.exchange(addr, idle, request, timeouts).await
    }

    async fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<Idle, UpstreamError> {
        let stream = connect_tcp(addr, timeout).await?;
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
                    resend: None,
                });
            }
            Ok(Err(mut e)) => {
                let request = e.take_message().map(Box::new);
                return Err(Failed {
                    error: UpstreamError::Exchange(e.into_error()),
                    request,
                    resend: None,
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

/// A TCP connection to `addr`, without Nagle's delay.
async fn connect_tcp(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, UpstreamError> {
    let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => return Err(UpstreamError::ConnectTimeout(timeout)),
        Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn connection_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
}
