//! HTTP/2 to the upstream (`backend-protocol: GRPC` with prior knowledge, `GRPCS` over
//! TLS with ALPN `h2`): one multiplexed connection per endpoint, configuration and
//! endpoint name, per worker, shared by concurrent requests.
//!
//! The shared connection is replaced by a fresh one when it died, when it carried
//! `upstream-keepalive-requests` requests, lived `upstream-keepalive-time`, or sat
//! unused for `upstream-keepalive-timeout`; the old one finishes its streams and
//! closes when its last request is done. With keep-alive off
//! (`upstream-keepalive-connections: 0`) every request gets its own connection.
//! Requests and responses stream both ways, trailers included (gRPC's `grpc-status`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gangplank_store::policy::UpstreamTls;
use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Failed, Pool, Timeouts, UpstreamError, tls};
use crate::body::RequestBody;

/// A worker's shared HTTP/2 connections, by endpoint address and configuration
/// identity (0 for cleartext).
#[derive(Debug, Default)]
pub(crate) struct Connections {
    map: HashMap<tls::Key, Vec<Shared>>,
    next_id: u64,
}

#[derive(Debug)]
struct Shared {
    id: u64,
    sender: SendRequest<RequestBody>,
    /// Held so the configuration's address (part of the key) stays unique.
    config: Option<Arc<UpstreamTls>>,
    host: Option<Box<str>>,
    created: Instant,
    last_used: Instant,
    requests: u32,
}

fn key(addr: SocketAddr, config: Option<&Arc<UpstreamTls>>) -> tls::Key {
    (addr, config.map_or(0, tls::identity))
}

impl Shared {
    fn is(&self, config: Option<&Arc<UpstreamTls>>, host: Option<&str>) -> bool {
        let same_config = match (&self.config, config) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_config && self.host.as_deref() == host
    }
}

/// Adjusts an upstream request for HTTP/2: absolute URI (`:scheme`, `:authority` from
/// the `Host` header, which HTTP/2 does not carry), version, and `te: trailers` when
/// the client announced it (nginx's gRPC proxy does the same).
pub fn prepare_request(parts: &mut http::request::Parts, secure: bool, te_trailers: bool) {
    let authority = parts
        .headers
        .get(header::HOST)
        .and_then(|host| Authority::try_from(host.as_bytes()).ok());
    if let Some(authority) = authority {
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        uri.scheme = Some(if secure { Scheme::HTTPS } else { Scheme::HTTP });
        uri.authority = Some(authority);
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        if let Ok(absolute) = Uri::from_parts(uri) {
            parts.uri = absolute;
            parts.headers.remove(header::HOST);
        }
    }
    parts.version = Version::HTTP_2;
    if te_trailers {
        parts
            .headers
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// True when a request's `TE` header lists `trailers`.
pub fn wants_trailers(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("trailers")
            })
        })
}

async fn handshake<IO>(io: IO, addr: SocketAddr) -> Result<SendRequest<RequestBody>, UpstreamError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .map_err(UpstreamError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, %addr, "upstream HTTP/2 connection ended with an error");
        }
    });
    Ok(sender)
}

async fn connect(
    addr: SocketAddr,
    host: Option<&str>,
    config: Option<&Arc<UpstreamTls>>,
    timeout: Duration,
) -> Result<SendRequest<RequestBody>, UpstreamError> {
    match config {
        None => handshake(tls::tcp(addr, timeout).await?, addr).await,
        Some(config) => handshake(tls::connect(addr, host, config, timeout).await?, addr).await,
    }
}

async fn exchange(
    mut sender: SendRequest<RequestBody>,
    request: Request<RequestBody>,
    timeouts: Timeouts,
) -> Result<Response<Incoming>, Failed> {
    match tokio::time::timeout(timeouts.read, sender.try_send_request(request)).await {
        Err(_) => Err(Failed {
            error: UpstreamError::ReadTimeout(timeouts.read),
            request: None,
            resend: None,
        }),
        Ok(Err(mut e)) => {
            let request = e.take_message().map(Box::new);
            Err(Failed {
                error: UpstreamError::Exchange(e.into_error()),
                request,
                resend: None,
            })
        }
        Ok(Ok(response)) => Ok(response),
    }
}

impl Pool {
    fn h2_lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        // Senders only; still valid after a panic elsewhere.
        self.h2.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared connection for this endpoint, if one is usable (counted as used).
    fn h2_take(
        &self,
        addr: SocketAddr,
        host: Option<&str>,
        config: Option<&Arc<UpstreamTls>>,
    ) -> Option<(u64, SendRequest<RequestBody>)> {
        let s = self.settings;
        let mut connections = self.h2_lock();
        let list = connections.map.get_mut(&key(addr, config))?;
        let now = Instant::now();
        list.retain(|c| {
            !c.sender.is_closed()
                && c.requests < s.max_requests
                && s.is_fresh(c.last_used, c.created, now)
        });
        let shared = list.iter_mut().find(|c| c.is(config, host))?;
        shared.requests += 1;
        shared.last_used = Instant::now();
        Some((shared.id, shared.sender.clone()))
    }

    fn h2_forget(&self, addr: SocketAddr, config: Option<&Arc<UpstreamTls>>, id: u64) {
        if let Some(list) = self.h2_lock().map.get_mut(&key(addr, config)) {
            list.retain(|c| c.id != id);
        }
    }

    fn h2_keep(
        &self,
        addr: SocketAddr,
        host: Option<&str>,
        config: Option<&Arc<UpstreamTls>>,
        sender: &SendRequest<RequestBody>,
    ) {
        if self.settings.max_idle == 0 {
            return;
        }
        let mut connections = self.h2_lock();
        connections.next_id += 1;
        let id = connections.next_id;
        let list = connections.map.entry(key(addr, config)).or_default();
        // Another request may have connected meanwhile: the newest one is shared.
        list.retain(|c| !c.is(config, host));
        let now = Instant::now();
        list.push(Shared {
            id,
            sender: sender.clone(),
            config: config.cloned(),
            host: host.map(Box::from),
            created: now,
            last_used: now,
            requests: 1,
        });
    }

    /// Sends `request` on the endpoint's shared HTTP/2 connection, connecting when
    /// there is none (or it died), and waits for the response header.
    pub(super) async fn send_h2(
        self: &Arc<Self>,
        addr: SocketAddr,
        host: Option<&str>,
        config: Option<&Arc<UpstreamTls>>,
        mut request: Request<RequestBody>,
        timeouts: Timeouts,
    ) -> Result<Response<Incoming>, Failed> {
        // Each failure forgets the connection it happened on, so this ends.
        while let Some((id, mut sender)) = self.h2_take(addr, host, config) {
            if sender.ready().await.is_err() {
                self.h2_forget(addr, config, id);
                continue;
            }
            match exchange(sender, request, timeouts).await {
                Ok(response) => return Ok(response),
                Err(Failed {
                    request: Some(r), ..
                }) => {
                    self.h2_forget(addr, config, id);
                    request = *r;
                }
                Err(failed) => return Err(failed),
            }
        }
        let sender = match connect(addr, host, config, timeouts.connect).await {
            Ok(sender) => sender,
            Err(error) => {
                return Err(Failed {
                    error,
                    request: Some(Box::new(request)),
                    resend: None,
                });
            }
        };
        self.h2_keep(addr, host, config, &sender);
        exchange(sender, request, timeouts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_absolute_with_the_host_as_authority() {
        let (mut parts, ()) = Request::get("/pkg.Svc/Call?x=1")
            .header("host", "grpc.example.com:8443")
            .header("te", "trailers")
            .body(())
            .unwrap_or_default()
            .into_parts();
        let te = wants_trailers(&parts.headers);
        assert!(te);
        parts.headers.remove(header::TE);
        prepare_request(&mut parts, true, te);
        assert_eq!(
            parts.uri.to_string(),
            "https://grpc.example.com:8443/pkg.Svc/Call?x=1"
        );
        assert!(parts.headers.get(header::HOST).is_none());
        assert_eq!(
            parts.headers.get(header::TE).map(|v| v.as_bytes()),
            Some(&b"trailers"[..])
        );
        assert_eq!(parts.version, Version::HTTP_2);

        let (mut parts, ()) = Request::get("/")
            .header("host", "bad host")
            .body(())
            .unwrap_or_default()
            .into_parts();
        prepare_request(&mut parts, false, false);
        assert_eq!(parts.uri.to_string(), "/");
        assert!(parts.headers.get(header::HOST).is_some());
        assert!(parts.headers.get(header::TE).is_none());
    }

    #[test]
    fn te_lists_are_read_token_by_token() {
        let mut headers = http::HeaderMap::new();
        assert!(!wants_trailers(&headers));
        headers.insert(header::TE, HeaderValue::from_static("gzip, trailers;q=1"));
        assert!(wants_trailers(&headers));
        headers.insert(header::TE, HeaderValue::from_static("trailersx"));
        assert!(!wants_trailers(&headers));
    }
}
