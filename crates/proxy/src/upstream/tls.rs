//! HTTP/1.1 over TLS to the upstream (`backend-protocol: HTTPS`, and `AUTO_HTTP` for
//! HTTPS clients), pooled like plain connections but apart from them.
//!
//! A pooled TLS connection is keyed by the endpoint address and the identity of the
//! store's [`UpstreamTls`] (the store interns configurations, so equal settings share
//! one), and remembers the endpoint name it verified; it is reused only for the same
//! address, configuration and name. The pooled entry holds the configuration's `Arc`,
//! so its address cannot be reused by another configuration while the entry lives.
//!
//! Upgrades (WebSocket) work as over plain connections: the upgraded stream is the TLS
//! stream.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gangplank_store::policy::UpstreamTls;
use http::{Request, Response};
use hyper::body::Incoming;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{Checkin, Failed, Idle, Pool, Timeouts, UpstreamError};
use crate::body::RequestBody;

/// Pool key of a TLS connection: endpoint address and configuration identity.
pub(super) type Key = (SocketAddr, usize);

/// What a TLS connection was made with.
#[derive(Debug)]
pub(super) struct Tag {
    config: Arc<UpstreamTls>,
    /// The endpoint name given at connect time (ExternalName), if any.
    host: Option<Box<str>>,
}

/// The identity of a configuration, as a pool key part (its address; entries hold the
/// `Arc`, so the address stays taken while they exist).
pub(super) fn identity(config: &Arc<UpstreamTls>) -> usize {
    Arc::as_ptr(config) as usize
}

impl Tag {
    fn is(&self, config: &Arc<UpstreamTls>, host: Option<&str>) -> bool {
        Arc::ptr_eq(&self.config, config) && self.host.as_deref() == host
    }
}

/// The name to verify and, with `proxy-ssl-server-name`, to send as SNI:
/// `proxy-ssl-name`, else the endpoint's name, else its address.
fn server_name(
    addr: SocketAddr,
    host: Option<&str>,
    config: &UpstreamTls,
) -> Result<ServerName<'static>, UpstreamError> {
    if let Some(name) = config.server_name() {
        return Ok(name.clone());
    }
    match host {
        Some(host) => ServerName::try_from(host.to_owned())
            .map_err(|e| UpstreamError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e))),
        None => Ok(ServerName::IpAddress(addr.ip().into())),
    }
}

/// A TCP connection to `addr` within `timeout`, without Nagle.
pub(super) async fn tcp(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, UpstreamError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(UpstreamError::ConnectTimeout(timeout)),
        Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A TLS connection to `addr`: TCP then the handshake, each within `timeout` (nginx
/// applies `proxy_connect_timeout` to both).
pub(super) async fn connect(
    addr: SocketAddr,
    host: Option<&str>,
    config: &UpstreamTls,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, UpstreamError> {
    let name = server_name(addr, host, config)?;
    let stream = tcp(addr, timeout).await?;
    let connector = tokio_rustls::TlsConnector::from(config.client_config().clone());
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(UpstreamError::ConnectTimeout(timeout)),
        Ok(Err(e)) => Err(UpstreamError::Tls(e)),
        Ok(Ok(tls)) => Ok(tls),
    }
}

impl Pool {
    fn tls_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Key, Vec<Idle>, super::Hasher>> {
        // Idle connections only; still valid after a panic elsewhere.
        self.tls_idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn put_tls(&self, addr: SocketAddr, idle: Idle) {
        let Some(tag) = idle.tls.as_ref() else {
            return;
        };
        if !self
            .settings
            .may_keep(idle.requests, idle.created, Instant::now())
            || idle.sender.is_closed()
            || !self.has_room()
        {
            return;
        }
        let key = (addr, identity(&tag.config));
        self.tls_lock().entry(key).or_default().push(idle);
        self.pushed();
    }

    fn take_tls(
        &self,
        addr: SocketAddr,
        host: Option<&str>,
        config: &Arc<UpstreamTls>,
    ) -> Option<Idle> {
        let mut map = self.tls_lock();
        let list = map.get_mut(&(addr, identity(config)))?;
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if !list[i].tls.as_ref().is_some_and(|t| t.is(config, host)) {
                continue;
            }
            // Swaps in the last entry, which was already looked at.
            let idle = list.swap_remove(i);
            self.popped();
            let fresh = self
                .settings
                .is_fresh(idle.since, idle.created, Instant::now());
            if fresh && !idle.sender.is_closed() {
                return Some(idle);
            }
        }
        None
    }

    /// [`Pool::send`] over TLS with `config`.
    pub(super) async fn send_tls(
        self: &Arc<Self>,
        addr: SocketAddr,
        host: Option<&str>,
        config: &Arc<UpstreamTls>,
        mut request: Request<RequestBody>,
        timeouts: Timeouts,
    ) -> Result<(Response<Incoming>, Option<Checkin>), Failed> {
        while let Some(mut idle) = self.take_tls(addr, host, config) {
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
        let idle = match connect_http1(addr, host, config, timeouts.connect).await {
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
}

async fn connect_http1(
    addr: SocketAddr,
    host: Option<&str>,
    config: &Arc<UpstreamTls>,
    timeout: Duration,
) -> Result<Idle, UpstreamError> {
    let stream = connect(addr, host, config, timeout).await?;
    let tag = Tag {
        config: config.clone(),
        host: host.map(Box::from),
    };
    Idle::handshake(stream, addr, Some(Box::new(tag))).await
}
