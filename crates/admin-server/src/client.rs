//! [`AdminClient`]: the typed client of the admin API, used by the controller (to push
//! snapshots) and by `gangplank ctl`.
//!
//! One connection per call: the API is local and called rarely, and a fresh connection
//! notices a restarted proxy without any reconnection logic.
//!
//! ```no_run
//! # async fn run() -> Result<(), gangplank_admin_server::ClientError> {
//! use gangplank_admin_server::AdminClient;
//!
//! let client = AdminClient::unix("/tmp/nginx-status-server.sock");
//! for backend in client.backends().await? {
//!     println!("{}", backend.name);
//! }
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use gangplank_model::{Backend, Configuration, GeneralConfig, SslConfiguration, StubStatus};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::api::{ErrorBody, etag, parse_version_tag, paths};

/// Where the admin API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP address (loopback).
    Tcp(SocketAddr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix socket {}", p.display()),
            Target::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// A call to the admin API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing accepts connections at the target.
    #[error("nothing is listening on {target} (is `gangplank proxy` running?)")]
    NotListening {
        /// The target.
        target: Target,
        /// The connect error.
        source: std::io::Error,
    },
    /// Connecting or talking failed otherwise.
    #[error("admin API at {target}: {message}")]
    Transport {
        /// The target.
        target: Target,
        /// What failed.
        message: String,
    },
    /// The call took longer than the client's timeout.
    #[error("admin API at {target} did not answer within {timeout:?}")]
    Timeout {
        /// The target.
        target: Target,
        /// The timeout.
        timeout: Duration,
    },
    /// The API answered with an error status.
    #[error("admin API answered {status}: {}{}", body.error, if body.path.is_empty() { String::new() } else { format!(" (at {})", body.path) })]
    Api {
        /// The status.
        status: StatusCode,
        /// The error body (or the raw text when it was not JSON).
        body: ErrorBody,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the admin API: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A raw answer: status, version (from `ETag`) and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The snapshot version, when the answer carried an `ETag`.
    pub version: Option<u64>,
    /// The body.
    pub body: Bytes,
}

/// The admin API client.
#[derive(Debug, Clone)]
pub struct AdminClient {
    target: Target,
    timeout: Duration,
}

impl AdminClient {
    /// A client for the unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> AdminClient {
        AdminClient {
            target: Target::Unix(path.into()),
            timeout: Duration::from_secs(30),
        }
    }

    /// A client for a TCP address.
    pub fn tcp(addr: SocketAddr) -> AdminClient {
        AdminClient {
            target: Target::Tcp(addr),
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the per-call timeout (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> AdminClient {
        self.timeout = timeout;
        self
    }

    /// Where this client connects.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends one request and returns the raw answer, whatever its status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(header::HeaderName, String)],
    ) -> Result<Answer, ClientError> {
        tokio::time::timeout(self.timeout, self.call_inner(method, path, body, headers))
            .await
            .map_err(|_| ClientError::Timeout {
                target: self.target.clone(),
                timeout: self.timeout,
            })?
    }

    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(header::HeaderName, String)],
    ) -> Result<Answer, ClientError> {
        let transport = |e: &dyn std::fmt::Display| ClientError::Transport {
            target: self.target.clone(),
            message: e.to_string(),
        };
        let not_listening = |source: std::io::Error| ClientError::NotListening {
            target: self.target.clone(),
            source,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| transport(&e))?;

        let response = match &self.target {
            Target::Unix(p) => {
                let stream = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(not_listening)?;
                send(TokioIo::new(stream), request).await
            }
            Target::Tcp(a) => {
                let stream = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(not_listening)?;
                send(TokioIo::new(stream), request).await
            }
        }
        .map_err(|e| transport(&e))?;

        let status = response.status();
        let version = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_version_tag(v).ok().flatten());
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(&e))?
            .to_bytes();
        Ok(Answer {
            status,
            version,
            body,
        })
    }

    /// Like [`call`](Self::call), but turns error statuses into [`ClientError::Api`].
    async fn call_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(header::HeaderName, String)],
    ) -> Result<Answer, ClientError> {
        let answer = self.call(method, path, body, headers).await?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        let body =
            serde_json::from_slice::<ErrorBody>(&answer.body).unwrap_or_else(|_| ErrorBody {
                error: String::from_utf8_lossy(&answer.body).trim().to_owned(),
                path: String::new(),
                problems: Vec::new(),
            });
        Err(ClientError::Api {
            status: answer.status,
            body,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(T, Option<u64>), ClientError> {
        let answer = self.call_ok(Method::GET, path, None, &[]).await?;
        let value =
            serde_json::from_slice(&answer.body).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok((value, answer.version))
    }

    async fn post_json<T: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        value: &T,
        headers: &[(header::HeaderName, String)],
    ) -> Result<Option<u64>, ClientError> {
        let body = serde_json::to_vec(value).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(self
            .call_ok(Method::POST, path, Some(body), headers)
            .await?
            .version)
    }

    /// `GET /healthz`: true when healthy, false while draining.
    pub async fn healthz(&self) -> Result<bool, ClientError> {
        let answer = self.call(Method::GET, paths::HEALTHZ, None, &[]).await?;
        Ok(answer.status == StatusCode::OK)
    }

    /// `GET /is-dynamic-lb-initialized`.
    pub async fn is_dynamic_lb_initialized(&self) -> Result<bool, ClientError> {
        let answer = self
            .call(Method::GET, paths::IS_DYNAMIC_LB_INITIALIZED, None, &[])
            .await?;
        Ok(answer.status == StatusCode::OK)
    }

    /// `GET /nginx_status`, parsed.
    pub async fn nginx_status(&self) -> Result<StubStatus, ClientError> {
        let answer = self
            .call_ok(Method::GET, paths::NGINX_STATUS, None, &[])
            .await?;
        let text = String::from_utf8_lossy(&answer.body);
        StubStatus::parse(&text).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `GET /configuration/backends`.
    pub async fn backends(&self) -> Result<Vec<Backend>, ClientError> {
        Ok(self.get_json(paths::BACKENDS).await?.0)
    }

    /// `POST /configuration/backends`; returns the new version.
    pub async fn post_backends(&self, backends: &[Backend]) -> Result<Option<u64>, ClientError> {
        self.post_json(paths::BACKENDS, backends, &[]).await
    }

    /// `GET /configuration/general`.
    pub async fn general(&self) -> Result<GeneralConfig, ClientError> {
        Ok(self.get_json(paths::GENERAL).await?.0)
    }

    /// `POST /configuration/general`; returns the new version.
    pub async fn post_general(&self, general: &GeneralConfig) -> Result<Option<u64>, ClientError> {
        self.post_json(paths::GENERAL, general, &[]).await
    }

    /// `POST /configuration/servers`; returns the new version.
    pub async fn post_servers(
        &self,
        update: &SslConfiguration,
    ) -> Result<Option<u64>, ClientError> {
        self.post_json(paths::SERVERS, update, &[]).await
    }

    /// `GET /configuration/certs?hostname=`: the PEM for exactly `host`, or `None`.
    pub async fn certificate(&self, host: &str) -> Result<Option<String>, ClientError> {
        let path = format!("{}?hostname={}", paths::CERTS, percent_encode(host));
        match self.call_ok(Method::GET, &path, None, &[]).await {
            Ok(answer) => Ok(Some(String::from_utf8_lossy(&answer.body).into_owned())),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /configuration`: the whole snapshot and its version.
    pub async fn configuration(&self) -> Result<(Configuration, u64), ClientError> {
        let (config, version) = self.get_json(paths::CONFIGURATION).await?;
        Ok((config, version.unwrap_or(0)))
    }

    /// `POST /configuration`, guarded by `If-Match` when `if_match` is given; returns
    /// the new version.
    pub async fn post_configuration(
        &self,
        config: &Configuration,
        if_match: Option<u64>,
    ) -> Result<u64, ClientError> {
        let headers: Vec<_> = if_match
            .map(|v| (header::IF_MATCH, etag(v)))
            .into_iter()
            .collect();
        let version = self
            .post_json(paths::CONFIGURATION, config, &headers)
            .await?;
        version.ok_or_else(|| ClientError::Decode("no ETag on the answer".into()))
    }
}

async fn send<T>(
    io: TokioIo<T>,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.send_request(request).await
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
