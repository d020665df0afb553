//! The suite's HTTP/1.1 client: keep-alive connections to the proxy's HTTP or HTTPS
//! listener (with SNI, keeping the certificate served), and cookie jars.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;

use crate::echo::Echo;

/// How long one request (connect, send, read the whole answer) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where requests go.
#[derive(Clone)]
pub struct Target {
    /// The proxy's plain HTTP listener.
    pub http: SocketAddr,
    /// The proxy's HTTPS listener.
    pub https: SocketAddr,
    /// The TLS client configuration.
    pub tls: Arc<rustls::ClientConfig>,
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The request path.
    pub path: String,
    /// The status code.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The body as the echo's JSON, when it is that.
    pub echo: Option<Echo>,
    /// The certificate the server presented (HTTPS only), DER.
    pub cert: Option<Vec<u8>>,
}

impl Answer {
    /// The Service that answered: the echo's `service` (and `namespace`), or the
    /// first two segments of an instance named `<namespace>/<service>/<n>`.
    pub fn service(&self) -> Option<(String, String)> {
        let echo = self.echo.as_ref()?;
        if let Some(service) = &echo.service {
            return Some((echo.namespace.clone().unwrap_or_default(), service.clone()));
        }
        let mut parts = echo.instance.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(ns), Some(svc), Some(_)) => Some((ns.to_owned(), svc.to_owned())),
            _ => None,
        }
    }

    /// The echo instance that answered.
    pub fn instance(&self) -> Option<&str> {
        self.echo.as_ref().map(|e| e.instance.as_str())
    }

    /// A short description for failure messages.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let words: Vec<&str> = text.split_whitespace().collect();
        let joined = words.join(" ");
        let mut body: String = joined.chars().take(160).collect();
        if joined.chars().count() > 160 {
            body.push('…');
        }
        format!("{} {} (body: {body})", self.path, self.status)
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    cert: Option<Vec<u8>>,
    /// The last answer said `Connection: close` (`keep-alive-requests` reached).
    closing: bool,
}

impl Connection {
    /// Connects to the HTTP listener, or the HTTPS one with `sni` (`None` or an IP
    /// address: no SNI).
    pub async fn open(target: &Target, tls: bool, sni: Option<&str>) -> Result<Connection, String> {
        let open = async {
            let addr = if tls { target.https } else { target.http };
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connecting to {addr}: {e}"))?;
            let _ = stream.set_nodelay(true);
            if !tls {
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
                tokio::spawn(conn);
                return Ok(Connection {
                    sender,
                    cert: None,
                    closing: false,
                });
            }
            let name = sni.unwrap_or("127.0.0.1");
            let server_name =
                ServerName::try_from(name.to_owned()).map_err(|e| format!("SNI {name:?}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(target.tls.clone())
                .connect(server_name, stream)
                .await
                .map_err(|e| format!("TLS handshake with {addr} (SNI {name}): {e}"))?;
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec());
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
            tokio::spawn(conn);
            Ok(Connection {
                sender,
                cert,
                closing: false,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, open)
            .await
            .map_err(|_| "connecting timed out".to_owned())?
    }

    /// Whether another request can go on this connection.
    pub fn is_open(&self) -> bool {
        !self.closing && !self.sender.is_closed()
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<Answer, String> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|e| format!("method {method:?}: {e}"))?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, host);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("building the request {path}: {e}"))?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection closed: {e}"))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| format!("{path}: {e}"))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{path}: reading the body: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, headers, body))
        };
        let (status, headers, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{path}: no answer within {REQUEST_TIMEOUT:?}"))??;
        self.closing = headers
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let echo = serde_json::from_slice::<Echo>(&body).ok();
        Ok(Answer {
            path: path.to_owned(),
            status,
            headers,
            body,
            echo,
            cert: self.cert.clone(),
        })
    }
}

/// A cookie jar: name -> value, from `Set-Cookie` answers.
#[derive(Debug, Clone, Default)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Takes the cookies an answer sets.
    pub fn update(&mut self, headers: &http::HeaderMap) {
        for value in headers.get_all(http::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.0
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    /// The cookies, for a `Cookie` header.
    pub fn cookies(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

/// A plain GET on a fresh connection, for health checks (`/healthz`).
pub async fn get_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let target = Target {
        http: addr,
        https: addr,
        tls: crate::scenario::tls::client_config()?,
    };
    let mut conn = Connection::open(&target, false, None).await?;
    Ok(conn.send("GET", "localhost", path, &[]).await?.status)
}

/// GET `path` on the admin API's unix socket; the body.
pub async fn admin_get(socket: &std::path::Path, path: &str) -> Result<Bytes, String> {
    let exchange = async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("admin handshake: {e}"))?;
        tokio::spawn(conn);
        let request = http::Request::get(path)
            .header(http::header::HOST, "localhost")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("admin {path}: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("admin {path}: {e}"))?
            .to_bytes();
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("admin {path}: {status}"))
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("admin {path}: no answer"))?
}
