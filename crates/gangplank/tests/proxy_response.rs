#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! Response policies end to end: the real `gangplank proxy` binary, a scripted upstream
//! on 127.0.0.1 that answers with the body, type and headers a query asks for, and
//! real clients. Covers `use-gzip`, `limit-rate`, `proxy-cookie-*`, `proxy-redirect-*`,
//! `connection-proxy-header` and `use-port-in-redirects`.

use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

mod common;
use common::*;

/// `%XX` decoding of a query value.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The body the scripted upstream sends for `len`: compressible text.
fn text_body(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog 0123456789\n"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

type UpstreamBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Answers from the query: `len` (body bytes), `type`, `enc` (Content-Encoding),
/// `chunks` (stream the body in that many chunks, without Content-Length), `cookie`
/// (a Set-Cookie), `location` (a 302 there). Reports the `Connection` header it got
/// and the client port of the connection (`x-seen-connection`, `x-peer-port`).
async fn scripted(request: Request<Incoming>, peer: SocketAddr) -> Response<UpstreamBody> {
    let mut len = 0usize;
    let mut chunks = 0usize;
    let mut events = false;
    let mut builder = Response::builder();
    let mut status = StatusCode::OK;
    for pair in request.uri().query().unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        match k {
            "len" => len = v.parse().unwrap(),
            "chunks" => chunks = v.parse().unwrap(),
            "events" => events = true,
            "type" => builder = builder.header("content-type", v),
            "enc" => builder = builder.header("content-encoding", v),
            "cookie" => builder = builder.header("set-cookie", v),
            "location" => {
                status = StatusCode::FOUND;
                builder = builder.header("location", v);
            }
            _ => {}
        }
    }
    if let Some(c) = request.headers().get("connection") {
        builder = builder.header("x-seen-connection", c.clone());
    }
    builder = builder
        .status(status)
        .header("x-peer-port", peer.port().to_string());
    let body = text_body(len);
    let body: UpstreamBody = if events {
        // Server-sent events: one now, the next one 5 s later.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(b"data: one\n\n")).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let _ = tx.send(Bytes::from_static(b"data: two\n\n")).await;
        });
        BodyExt::boxed(StreamBody::new(Events(rx)))
    } else if chunks > 0 {
        let size = body.len().div_ceil(chunks).max(1);
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = body
            .chunks(size)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        BodyExt::boxed(StreamBody::new(futures_iter(frames)))
    } else {
        BodyExt::boxed(Full::new(Bytes::from(body)))
    };
    builder.body(body).unwrap()
}

/// The chunks a task sends, as a body stream.
struct Events(tokio::sync::mpsc::Receiver<Bytes>);

impl futures_core::Stream for Events {
    type Item = Result<Frame<Bytes>, Infallible>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// A stream over `items` that yields between items, so each is its own chunk.
fn futures_iter<T: Unpin>(items: Vec<T>) -> impl futures_core::Stream<Item = T> + Unpin {
    struct Iter<T>(std::collections::VecDeque<T>, bool);
    impl<T: Unpin> futures_core::Stream for Iter<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            // Alternate Pending and Ready so hyper writes every chunk separately.
            self.1 = !self.1;
            if self.1 {
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(self.0.pop_front())
        }
    }
    Iter(items.into(), false)
}

/// Starts the scripted upstream on 127.0.0.1.
async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| async move {
                    Ok::<_, Infallible>(scripted(r, peer).await)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// One host `r.test` with the given location fields, and `general`.
fn config(
    upstream: SocketAddr,
    location: serde_json::Value,
    general: serde_json::Value,
) -> serde_json::Value {
    let mut l = json!({"path": "/", "backend": "b"});
    l.as_object_mut()
        .unwrap()
        .extend(location.as_object().unwrap().clone());
    json!({
        "backends": [backend("b", &[upstream])],
        "servers": [{"hostname": "r.test", "locations": [l]}],
        "general": general
    })
}

const GZIP: &[(&str, &str)] = &[("accept-encoding", "gzip, deflate, br")];

#[tokio::test]
async fn gzip_compresses_eligible_responses_and_decodes_to_the_original() {
    let upstream = start_upstream().await;
    let g = Gangplank::start().await;
    g.apply(config(
        upstream,
        json!({}),
        json!({"use-gzip": true, "gzip-level": 6}),
    ))
    .await;

    // A declared length, a charset parameter.
    let (status, h, body) = get(
        g.http,
        "r.test",
        "/?len=20000&type=text/html%3B%20charset%3Dutf-8",
        GZIP,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{h:?}");
    assert_eq!(h.get("content-encoding").unwrap(), "gzip", "{h:?}");
    assert_eq!(h.get("vary").unwrap(), "Accept-Encoding", "{h:?}");
    assert!(!h.contains_key("content-length"), "{h:?}");
    assert!(body.len() < 5000, "{} bytes", body.len());
    assert_eq!(gunzip(&body), text_body(20000));

    // A streamed body (no length) of many chunks: each is compressed as it comes.
    let (_, h, body) = get(
        g.http,
        "r.test",
        "/?len=50000&chunks=25&type=application/json",
        &[("accept-encoding", "br;q=1, gzip;q=0.5")],
    )
    .await;
    assert_eq!(h.get("content-encoding").unwrap(), "gzip", "{h:?}");
    assert_eq!(gunzip(&body), text_body(50000));
}

#[tokio::test]
async fn gzip_flushes_each_chunk_so_events_flow() {
    let upstream = start_upstream().await;
    let g = Gangplank::start().await;
    g.apply(config(
        upstream,
        json!({}),
        json!({"use-gzip": true, "gzip-min-length": 0, "gzip-types": ["text/event-stream"]}),
    ))
    .await;
    let stream = tokio::net::TcpStream::connect(g.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get("/?events=1&type=text/event-stream")
        .header("host", "r.test")
        .header("accept-encoding", "gzip")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let mut body = response.into_body();
    // The first event arrives, decodable, while the upstream is still waiting.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut decoded = Vec::new();
    while decoded != b"data: one\n\n" {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, body.frame())
            .await
            .expect("the first event within 3 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            got.extend_from_slice(&data);
        }
        decoded.clear();
        // A flushed prefix of a gzip stream decodes up to the flush point.
        let _ = flate2::read::GzDecoder::new(&got[..]).read_to_end(&mut decoded);
    }
}

#[tokio::test]
async fn gzip_is_not_applied_where_nginx_would_not() {
    let upstream = start_upstream().await;
    let g = Gangplank::start().await;
    g.apply(config(
        upstream,
        json!({}),
        json!({"use-gzip": true, "gzip-min-length": 1000}),
    ))
    .await;
    for (path, headers, why) in [
        (
            "/?len=999&type=text/html",
            GZIP,
            "shorter than gzip-min-length",
        ),
        (
            "/?len=5000&type=image/png",
            GZIP,
            "a type outside gzip-types",
        ),
        ("/?len=5000&type=text/html&enc=br", GZIP, "already encoded"),
        ("/?len=5000&type=text/html", &[][..], "no Accept-Encoding"),
        (
            "/?len=5000&type=text/html",
            &[("accept-encoding", "gzip;q=0, br")][..],
            "gzip refused by q=0",
        ),
        (
            "/?len=5000&type=text/html",
            &[("accept-encoding", "identity")][..],
            "identity only",
        ),
    ] {
        let (status, h, body) = get(g.http, "r.test", path, headers).await;
        assert_eq!(status, StatusCode::OK, "{why}");
        assert_ne!(
            h.get("content-encoding").map(|v| v.as_bytes()),
            Some(&b"gzip"[..]),
            "{why}"
        );
        let len: usize = path
            .split("len=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len, "{why}");
    }

    // Without use-gzip nothing is compressed.
    g.apply(config(upstream, json!({}), json!({}))).await;
    let (_, h, body) = get(g.http, "r.test", "/?len=5000&type=text/html", GZIP).await;
    assert!(!h.contains_key("content-encoding"));
    assert!(!h.contains_key("vary"));
    assert_eq!(body.len(), 5000);
}

#[tokio::test]
async fn limit_rate_slows_a_large_body() {
    let upstream = start_upstream().await;
    let g = Gangplank::start().await;
    // 16 KiB/s after 8 KiB: 64 KiB take about 3 s (4 KiB of burst aside).
    g.apply(config(
        upstream,
        json!({"rateLimit": {"limitRate": 16, "limitRateAfter": 8}}),
        json!({}),
    ))
    .await;
    let started = Instant::now();
    let (status, _, body) = get(
        g.http,
        "r.test",
        "/?len=65536&type=application/octet-stream",
        &[],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), 65536);
    assert!(took >= Duration::from_millis(2000), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test]
async fn set_cookie_and_location_are_rewritten() {
    let upstream = start_upstream().await;
    let g = Gangplank::start().await;
    g.apply(config(
        upstream,
        json!({"proxy": {
            "cookieDomain": {"from": "internal.local", "to": "r.test"},
            "cookiePath": {"from": "/app/", "to": "/"},
            "redirectFrom": "http://internal.local:8080/",
            "redirectTo": "https://r.test/"
        }}),
        json!({}),
    ))
    .await;
    let (_, h, _) = get(
        g.http,
        "r.test",
        "/?cookie=sid%3D1%3B%20domain%3D.Internal.Local%3B%20Path%3D%2Fapp%2Fx%3B%20HttpOnly",
        &[],
    )
    .await;
    assert_eq!(h["set-cookie"], "sid=1; domain=.r.test; Path=/x; HttpOnly");
    // Another domain, and the cookie's own name=value, are left alone.
    let (_, h, _) = get(
        g.http,
        "r.test",
        "/?cookie=domain%3Dinternal.local%3B%20Domain%3Dother.test",
        &[],
    )
    .await;
    assert_eq!(h["set-cookie"], "domain=internal.local; Domain=other.test");

    let (status, h, _) = get(
        g.http,
        "r.test",
        "/?location=http%3A%2F%2Finternal.local%3A8080%2Flogin%3Fnext%3D%2F",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(h["location"], "https://r.test/login?next=/");
    let (_, h, _) = get(
        g.http,
        "r.test",
        "/?location=http%3A%2F%2Felsewhere.test%2F",
        &[],
    )
    .await;
    assert_eq!(h["location"], "http://elsewhere.test/");
}

#[tokio::test]
async fn connection_proxy_header_and_upstream_keep_alive() {
    let upstream = start_upstream().await;
    let g = Gangplank::start().await;
    // Default: no Connection header upstream, and the upstream connection is reused.
    g.apply(config(upstream, json!({}), json!({}))).await;
    let mut conn = Conn::open(g.http).await;
    let (_, first, _) = conn.send("r.test", "/", &[]).await;
    let (_, second, _) = conn.send("r.test", "/", &[]).await;
    assert!(!first.contains_key("x-seen-connection"));
    assert_eq!(
        first["x-peer-port"], second["x-peer-port"],
        "keep-alive upstream"
    );

    // connection-proxy-header: the value is sent; "close" is honoured.
    g.apply(config(upstream, json!({"connection": "close"}), json!({})))
        .await;
    let mut conn = Conn::open(g.http).await;
    let (_, first, _) = conn.send("r.test", "/", &[]).await;
    let (_, second, _) = conn.send("r.test", "/", &[]).await;
    assert_eq!(first["x-seen-connection"], "close");
    assert_ne!(
        first["x-peer-port"], second["x-peer-port"],
        "a new upstream connection"
    );

    g.apply(config(
        upstream,
        json!({"connection": "keep-alive"}),
        json!({}),
    ))
    .await;
    let (_, h, _) = get(g.http, "r.test", "/", &[]).await;
    assert_eq!(h["x-seen-connection"], "keep-alive");
}

#[tokio::test]
async fn use_port_in_redirects_names_the_https_port() {
    let upstream = start_upstream().await;
    let g = Gangplank::start().await;
    let https_port = g.https.port();
    g.apply(config(
        upstream,
        json!({"redirect": {"forceSslRedirect": true}, "usePortInRedirects": true}),
        json!({}),
    ))
    .await;
    let (status, h, _) = get(g.http, "r.test:8080", "/a/b/?x=1", &[]).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        h["location"],
        format!("https://r.test:{https_port}/a/b/?x=1").as_str()
    );

    // Off by default.
    g.apply(config(
        upstream,
        json!({"redirect": {"forceSslRedirect": true}}),
        json!({}),
    ))
    .await;
    let (_, h, _) = get(g.http, "r.test", "/p", &[]).await;
    assert_eq!(h["location"], "https://r.test/p");
}
