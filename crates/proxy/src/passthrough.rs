//! `ssl-passthrough`: TLS connections for some hosts are not terminated but piped, as
//! raw TCP, to an endpoint of the host's backend, which does its own TLS.
//!
//! ingress-nginx runs a Go TCP proxy in front of nginx for this (enabled by
//! `--enable-ssl-passthrough`): it reads the ClientHello, looks its SNI up in the
//! passthrough list, and either dials the backend or hands the connection to nginx.
//! Gangplank does the same inside the TLS listener, without the extra hop:
//!
//! 1. [`read_sni`] reads the ClientHello with rustls's [`Acceptor`] (no hand-written
//!    TLS parser) and puts every byte it read back in front of the stream
//!    ([`PrefixedStream::unread`]), so nothing is consumed.
//! 2. The listener asks the route table for the name's passthrough backend
//!    ([`gangplank_store::RouteTable::passthrough`]: exact name or one-label wildcard,
//!    never the default server). Without one, the handshake goes on as usual.
//! 3. [`pipe`] picks an endpoint with the backend's balancer (connect failures try the
//!    next endpoint, each attempt bounded by `proxy-connect-timeout`), replays the
//!    ClientHello to it and copies bytes both ways until either side closes.
//!
//! As in ingress-nginx, no other annotation of the host applies to its TLS traffic:
//! the proxy sees only encrypted bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use gangplank_store::CompiledBackend;
use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

use crate::balancer::PickRequest;
use crate::handler::{Shared, is_self, resolve};
use crate::proxy_protocol::PrefixedStream;

/// A ClientHello larger than this is not looked at (it is then terminated, and most
/// likely refused, by the normal handshake). Real ones are a few KiB at most.
const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// Reads the client's ClientHello and returns its SNI (`None`: no SNI, or the bytes
/// are not a TLS ClientHello). Whatever was read is put back in front of `stream`, so
/// the TLS handshake or the passthrough pipe sees the connection from its first byte.
pub async fn read_sni<S>(stream: &mut PrefixedStream<S>) -> std::io::Result<Option<String>>
where
    S: AsyncRead + Unpin,
{
    let mut acceptor = Acceptor::default();
    let mut seen = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let sni = loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) => {
                stream.unread(&seen);
                return Err(e);
            }
        };
        if n == 0 {
            break None;
        }
        seen.extend_from_slice(&chunk[..n]);
        let mut fresh = &chunk[..n];
        let mut readable = true;
        while readable && !fresh.is_empty() {
            readable = matches!(acceptor.read_tls(&mut fresh), Ok(read) if read > 0);
        }
        if !readable {
            break None;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted.client_hello().server_name().map(str::to_owned),
            Ok(None) if seen.len() < MAX_CLIENT_HELLO => {}
            Ok(None) | Err(_) => break None,
        }
    };
    stream.unread(&seen);
    Ok(sni)
}

/// Pipes `client` (its ClientHello still unread) to an endpoint of `backend` until
/// either side closes. Returns when the connection is over; failures are logged.
pub async fn pipe<S>(
    shared: &Shared,
    backend: Arc<CompiledBackend>,
    mut client: S,
    remote: SocketAddr,
    sni: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(mut upstream) = connect(shared, &backend, remote).await else {
        tracing::warn!(backend = %backend.name(), %remote, sni, "ssl-passthrough: no endpoint accepted the connection; closing it");
        return;
    };
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((sent, received)) => {
            tracing::debug!(backend = %backend.name(), %remote, sni, sent, received, "ssl-passthrough connection closed");
        }
        Err(e) => {
            tracing::debug!(backend = %backend.name(), %remote, sni, error = %e, "ssl-passthrough connection ended with an error");
        }
    }
}

/// Connects to an endpoint of `backend` picked by its balancer, trying each endpoint
/// at most once.
async fn connect(
    shared: &Shared,
    backend: &CompiledBackend,
    remote: SocketAddr,
) -> Option<TcpStream> {
    let snapshot = shared.store.snapshot();
    let table = shared.balancers.for_snapshot(&snapshot);
    let entry = table.get(backend.name())?.clone();
    let timeout = snapshot.source.general.proxy_connect_timeout();
    drop(table);
    drop(snapshot);
    // chash backends hash the client address (the only request data there is).
    let key = remote.ip().to_string();
    let mut tried = Vec::new();
    while tried.len() < entry.backend.upstreams.len() {
        let pick = entry.balancer.pick(&PickRequest {
            hash_key: Some(key.as_bytes()),
            affinity_cookie: None,
            tried: &tried,
        })?;
        if tried.contains(&pick.endpoint) {
            return None;
        }
        tried.push(pick.endpoint);
        let upstream = entry.backend.upstreams.get(pick.endpoint)?;
        let Some(addr) = resolve(&shared.resolver, upstream).await else {
            tracing::warn!(backend = %backend.name(), endpoint = %upstream, "ssl-passthrough: endpoint name does not resolve");
            continue;
        };
        if shared.self_addresses.iter().any(|own| is_self(addr, *own)) {
            tracing::error!(backend = %backend.name(), endpoint = %addr, "attempted to proxy to self");
            continue;
        }
        let started = std::time::Instant::now();
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                entry.balancer.observe(pick.endpoint, started.elapsed());
                return Some(stream);
            }
            Ok(Err(e)) => {
                tracing::warn!(backend = %backend.name(), endpoint = %addr, error = %e, "ssl-passthrough: connecting to the endpoint failed");
            }
            Err(_) => {
                tracing::warn!(backend = %backend.name(), endpoint = %addr, ?timeout, "ssl-passthrough: connecting to the endpoint timed out");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::io::Cursor;
    use tokio::io::AsyncReadExt;

    /// A real ClientHello, as rustls's client writes it.
    fn client_hello(sni: &str) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out).unwrap();
        }
        out
    }

    /// Yields its bytes a few at a time, as a slow client would.
    struct Trickle(Cursor<Vec<u8>>);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let mut small = [0u8; 7];
            let n = std::io::Read::read(&mut self.0, &mut small)?;
            buf.put_slice(&small[..n]);
            std::task::Poll::Ready(Ok(()))
        }
    }

    async fn sni_and_replay(bytes: Vec<u8>) -> (Option<String>, Vec<u8>) {
        let mut stream = PrefixedStream::plain(Trickle(Cursor::new(bytes)));
        let sni = read_sni(&mut stream).await.unwrap();
        let mut replayed = Vec::new();
        stream.read_to_end(&mut replayed).await.unwrap();
        (sni, replayed)
    }

    #[tokio::test]
    async fn the_sni_is_read_and_every_byte_is_replayed() {
        let mut bytes = client_hello("passthrough.example.com");
        bytes.extend_from_slice(b"application data after the hello");
        let (sni, replayed) = sni_and_replay(bytes.clone()).await;
        assert_eq!(sni.as_deref(), Some("passthrough.example.com"));
        assert_eq!(replayed, bytes);
    }

    #[tokio::test]
    async fn a_hello_without_sni_is_replayed_untouched() {
        // An IP address as server name: rustls sends no SNI extension.
        let bytes = client_hello("127.0.0.1");
        let (sni, replayed) = sni_and_replay(bytes.clone()).await;
        assert_eq!(sni, None);
        assert_eq!(replayed, bytes);
    }

    #[tokio::test]
    async fn plain_http_and_truncated_hellos_are_replayed_untouched() {
        let http = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
        assert_eq!(sni_and_replay(http.clone()).await, (None, http));
        let mut truncated = client_hello("passthrough.example.com");
        truncated.truncate(truncated.len() / 2);
        assert_eq!(sni_and_replay(truncated.clone()).await, (None, truncated));
    }
}
