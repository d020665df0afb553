//! The echo upstream: an HTTP/1.1 + h2c server on 127.0.0.1 that answers every request
//! with JSON describing it and naming the instance that answered.
//!
//! Paths with special meaning:
//! - `/status/<code>`: answers with that status.
//! - `/delay/<ms>`: waits that long, then answers.
//! - any request with `Upgrade:`: answers `101` and echoes the upgraded byte stream.
//! - any request with a body: the answer reports its length (`bodyLength`), so large
//!   streamed uploads can be checked without echoing them back.
//!
//! With an [`Identity`] (given to [`EchoServer::start_as`], or read by
//! [`EchoServer::start`] from `POD_NAMESPACE`, `SERVICE_NAME` and `POD_NAME`, which is
//! how the `echo` binary gets it), the answer also names the namespace, Service and Pod
//! it belongs to, so the end-to-end suite can tell which Service answered on any
//! cluster.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the echo server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Echo {
    /// The instance name given at start.
    pub instance: String,
    /// Request method.
    pub method: String,
    /// Request path and query, as received.
    pub path: String,
    /// The `Host` header.
    pub host: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub proto: String,
    /// Request headers (last value wins).
    pub headers: BTreeMap<String, String>,
    /// Length of the request body.
    pub body_length: u64,
    /// The namespace of the Service this instance belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Service this instance belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The Pod name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// Where an echo instance belongs: reported in every answer when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The namespace of the Service.
    pub namespace: Option<String>,
    /// The Service name.
    pub service: Option<String>,
    /// The Pod name.
    pub pod: Option<String>,
}

impl Identity {
    /// From the environment: `POD_NAMESPACE`, `SERVICE_NAME`, `POD_NAME` (unset or
    /// empty variables are left out).
    pub fn from_env() -> Identity {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Identity {
            namespace: var("POD_NAMESPACE"),
            service: var("SERVICE_NAME"),
            pod: var("POD_NAME"),
        }
    }
}

/// A running echo server; stops when dropped.
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl EchoServer {
    /// Starts an echo server named `instance` on `addr` (use port 0 for any).
    /// It reports the [`Identity`] of its environment ([`Identity::from_env`]), which is
    /// empty unless `POD_NAMESPACE`, `SERVICE_NAME` or `POD_NAME` are set (the `echo`
    /// binary in a Pod, or started by the end-to-end suite).
    pub async fn start(instance: &str, addr: SocketAddr) -> std::io::Result<EchoServer> {
        EchoServer::start_as(instance, Identity::from_env(), addr).await
    }

    /// Starts an echo server named `instance` that reports `identity` in its answers.
    pub async fn start_as(
        instance: &str,
        identity: Identity,
        addr: SocketAddr,
    ) -> std::io::Result<EchoServer> {
        EchoServer::spawn(instance, identity, addr, None).await
    }

    /// Starts an echo server named `instance` that speaks TLS with `config` (its own
    /// certificate) on every connection, then HTTP/1.1 or HTTP/2 as above: a TLS
    /// upstream, e.g. behind `ssl-passthrough` or `backend-protocol: HTTPS`.
    pub async fn start_tls(
        instance: &str,
        addr: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<EchoServer> {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        EchoServer::spawn(instance, Identity::from_env(), addr, Some(acceptor)).await
    }

    async fn spawn(
        instance: &str,
        identity: Identity,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<EchoServer> {
        let identity = Arc::new(identity);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let instance: Arc<str> = Arc::from(instance);
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let connections = Arc::new(AtomicU64::new(0));
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let instance = instance.clone();
                let identity = identity.clone();
                let counter = counter.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        answer(instance.clone(), identity.clone(), req)
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        None => {
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await
                        }
                    };
                });
            }
        });
        Ok(EchoServer {
            addr,
            requests,
            connections,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// How many requests it answered.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    instance: Arc<str>,
    identity: Arc<Identity>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.headers().contains_key(http::header::UPGRADE) {
        let protocol = req.headers()[http::header::UPGRADE].clone();
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response
            .headers_mut()
            .insert(http::header::UPGRADE, protocol);
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
        return Ok(response);
    }

    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut status = StatusCode::OK;
    if let Some(code) = path
        .strip_prefix("/status/")
        .and_then(|c| c.parse::<u16>().ok())
    {
        status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    }
    if let Some(ms) = path
        .strip_prefix("/delay/")
        .and_then(|c| c.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let echo = Echo {
        instance: instance.to_string(),
        method: req.method().to_string(),
        host: req
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        proto: format!("{:?}", req.version()),
        headers: req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect(),
        path,
        body_length: 0,
        namespace: identity.namespace.clone(),
        service: identity.service.clone(),
        pod: identity.pod.clone(),
    };
    let mut body = req.into_body();
    let mut length = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => length += f.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => break,
        }
    }
    let echo = Echo {
        body_length: length,
        ..echo
    };
    let json = serde_json::to_vec(&echo).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(json)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
