//! Plain HTTP/1.1 exchanges driven by the request's own task: the proxy's fast path.
//!
//! hyper's client runs every connection as a task of its own: the request crosses to
//! it through a channel, the response header comes back through another and the body
//! through a third, each crossing a task wake-up. For the common request (no body, no
//! upgrade, plain HTTP/1.1) this module does the exchange from the task that serves
//! the client instead: it writes the request head in one write, reads and parses the
//! response head (httparse, the parser hyper uses), and streams the body from the
//! pooled socket as the client side polls it ([`Body`]). A body that arrived with its
//! head (most small responses) is handed over whole, and the connection is back in
//! the pool before the client side has written a byte.
//!
//! Framing follows RFC 9112 §6.3: no body for `HEAD`, 1xx, 204 and 304; chunked when
//! `Transfer-Encoding` ends in `chunked` (trailers become a trailers frame); else
//! `Content-Length` (differing values are refused); else the body runs to the end of
//! the connection, which is then not reused. Interim 1xx responses are skipped. A
//! connection goes back to the pool only when its body was read to the end, exactly:
//! bytes past the end of a response mean the connection cannot be trusted.
//!
//! Idle pooled connections have no task watching them: `Conn::is_open` asks tokio
//! whether the socket became readable (it answers from the readiness epoll reported,
//! without a system call when nothing happened), and a reused connection that ends
//! before any byte of an answer arrived hands the request back for an idempotent
//! method, to go again on another connection (the keep-alive race: the upstream closed
//! the connection while the request was on its way).
//!
//! Requests with a body, upgrades and HTTP/1.0 go through hyper ([`super::Pool`]).

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Version};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Pool;
use crate::body::RequestBody;
use crate::headers::{Forwarding, Presence};

/// Header fields in a response head (hyper's default limit).
const MAX_HEADERS: usize = 100;
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Spare room in a response's header map (see [`parse_head_into`]).
const NEXT_REQUEST_ROOM: usize = 16;
/// Largest trailer section of a chunked body.
const MAX_TRAILERS: usize = 16 * 1024;
/// Longest chunk-size line (with extensions).
const MAX_CHUNK_LINE: usize = 4096;
/// Trailer fields in a chunked body.
const MAX_TRAILER_FIELDS: usize = 64;
/// What a read asks the socket for at first: small answers then cycle through the same
/// few cache lines of a connection's buffer (its front is reclaimed once the answers
/// read from it are gone).
const READ_MIN: usize = 2 * 1024;
/// What a read asks for at most: a read that fills its room doubles the next one's.
const READ_MAX: usize = 64 * 1024;

/// Why an exchange or a body failed.
#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    /// Reading or writing the socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The upstream closed the connection before the response header was complete.
    #[error("upstream closed the connection before sending a complete response header")]
    Closed,
    /// The upstream closed the connection before the body's announced end.
    #[error("upstream closed the connection before the end of the body")]
    Truncated,
    /// The response does not parse, or contradicts itself.
    #[error("upstream sent an invalid response: {0}")]
    Invalid(&'static str),
    /// The response head exceeds 64 KiB (`MAX_HEAD`).
    #[error("upstream sent too big a response header (over {MAX_HEAD} bytes)")]
    TooBig,
}

/// A failed exchange, and whether any byte of an answer had arrived.
#[derive(Debug)]
pub(crate) struct ExchangeError {
    pub(crate) error: Http1Error,
    pub(crate) nothing_received: bool,
}

/// True when `request` can take the fast path: no body, no upgrade, HTTP/1.1.
pub(crate) fn eligible(request: &Request<RequestBody>) -> bool {
    matches!(request.body(), RequestBody::Empty)
        && request.version() == Version::HTTP_11
        && request.method() != Method::CONNECT
        && !request.headers().contains_key(header::UPGRADE)
}

/// True for methods a request may be sent again with (RFC 9110 §9.2.2).
pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// One upstream connection, idle in the pool or carrying an exchange.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    /// The upstream's address (the pool's key).
    addr: SocketAddr,
    /// Bytes read and not yet consumed.
    read: BytesMut,
    /// The request head being written (kept for its allocation).
    write: Vec<u8>,
    pub(super) created: Instant,
    pub(super) since: Instant,
    pub(super) requests: u32,
    /// Room asked for by the next read (adaptive, [`READ_MIN`]..[`READ_MAX`]).
    read_size: usize,
    /// The read timeout's timer, kept from one exchange to the next: moving a
    /// registered timer's deadline later is one atomic update in tokio, where a new
    /// timer per exchange costs an allocation, a registration and a removal.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// An emptied header map (the last request's) for the next response head:
    /// response maps go to hyper, which reuses them for the client's next request,
    /// whose map comes back here once sent; no map is allocated in the steady state.
    pub(super) spare: Option<HeaderMap>,
}

/// A response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

impl Conn {
    /// A fresh connection over `stream` to `addr`.
    pub(crate) fn new(stream: TcpStream, addr: SocketAddr) -> Box<Conn> {
        let now = Instant::now();
        Box::new(Conn {
            stream,
            addr,
            read: BytesMut::new(),
            write: Vec::new(),
            created: now,
            since: now,
            requests: 0,
            read_size: READ_MIN,
            timer: None,
            spare: None,
        })
    }

    /// False when the idle connection was closed by its upstream (or sent something
    /// unasked). Answered from tokio's readiness state: no system call unless the
    /// socket was reported readable since the last read.
    pub(crate) fn is_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The upstream's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// True when nothing is left in the read buffer (a clean end of a response).
    pub(crate) fn is_clean(&self) -> bool {
        self.read.is_empty()
    }

    /// [`Conn::exchange`] with a deadline for the response head: `None` when it
    /// passed first.
    pub(crate) async fn exchange_until(
        &mut self,
        request: &Request<RequestBody>,
        forwarding: Option<&Forwarding>,
        deadline: tokio::time::Instant,
    ) -> Option<Result<Head, ExchangeError>> {
        let mut timer = match self.timer.take() {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let outcome = {
            let mut exchange = std::pin::pin!(self.exchange(request, forwarding));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = exchange.as_mut().poll(cx) {
                    return Poll::Ready(Some(result));
                }
                timer.as_mut().poll(cx).map(|()| None)
            })
            .await
        };
        self.timer = Some(timer);
        outcome
    }

    /// Writes `request`'s head (with the `forwarding` headers it lacks) and reads the
    /// response head, skipping 1xx answers.
    async fn exchange(
        &mut self,
        request: &Request<RequestBody>,
        forwarding: Option<&Forwarding>,
    ) -> Result<Head, ExchangeError> {
        encode(request, forwarding, &mut self.write);
        // Let the worker's other ready tasks run first, so that requests read in
        // the same turn reach their upstreams in one burst of writes, as they did
        // through hyper's connection tasks. Writing each at once (interleaved with
        // reading the next client's) costs the upstream a wake-up per request: in
        // an interleaved A/B on loopback, 8 % fewer requests per second without it.
        tokio::task::yield_now().await;
        if let Err(e) = self.stream.write_all(&self.write).await {
            return Err(ExchangeError {
                error: e.into(),
                nothing_received: true,
            });
        }
        let mut received = false;
        loop {
            if !self.read.is_empty() {
                received = true;
                let failed = |error| ExchangeError {
                    error,
                    nothing_received: false,
                };
                match parse_head_into(&mut self.read, &mut self.spare).map_err(failed)? {
                    Some(head) if head.status == StatusCode::SWITCHING_PROTOCOLS => {
                        return Err(failed(Http1Error::Invalid(
                            "101 Switching Protocols to a request without an upgrade",
                        )));
                    }
                    Some(head) if head.status.is_informational() => continue,
                    Some(head) => return Ok(head),
                    None if self.read.len() >= MAX_HEAD => return Err(failed(Http1Error::TooBig)),
                    None => {}
                }
            }
            let room = self.reserve();
            match self.stream.read_buf(&mut self.read).await {
                Ok(n) if n == room => self.grow(),
                Ok(0) => {
                    return Err(ExchangeError {
                        error: Http1Error::Closed,
                        nothing_received: !received,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(ExchangeError {
                        error: e.into(),
                        nothing_received: !received,
                    });
                }
            }
        }
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let room = self.reserve();
        // tokio's read clears the socket's readiness after a short read, which keeps
        // `is_open` free of system calls on idle connections.
        let read = std::pin::pin!(self.stream.read_buf(&mut self.read)).poll(cx);
        if matches!(read, Poll::Ready(Ok(n)) if n == room) {
            self.grow();
        }
        read
    }

    /// Makes room for the next read; returns how much there is.
    fn reserve(&mut self) -> usize {
        if self.read.capacity() - self.read.len() < self.read_size / 4 {
            self.read.reserve(self.read_size);
        }
        self.read.capacity() - self.read.len()
    }

    /// A read filled its room: the next one asks for twice as much.
    fn grow(&mut self) {
        self.read_size = (self.read_size * 2).min(READ_MAX);
    }

    /// Back to small reads (the connection is idle again).
    pub(super) fn shrink(&mut self) {
        self.read_size = READ_MIN;
    }
}

/// The request head, as hyper writes it: `METHOD target HTTP/1.1`, the fields as they
/// are (names lower-case), no `Transfer-Encoding` (there is no body), then the
/// forwarded headers the map does not hold.
fn encode(request: &Request<RequestBody>, forwarding: Option<&Forwarding>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(if target.is_empty() { "/" } else { target }.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut present = Presence::default();
    for (name, value) in request.headers() {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        if forwarding.is_some() {
            present.note(name);
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(forwarding) = forwarding {
        forwarding.write_missing(present, out);
    }
    out.extend_from_slice(b"\r\n");
}

/// [`parse_head_into`] a new map.
#[cfg(test)]
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, Http1Error> {
    parse_head_into(buf, &mut None)
}

/// Parses a response head at the start of `buf` and consumes it; `None` when more
/// bytes are needed. Field values share the head's buffer (no copies). The fields go
/// into the `spare` map when there is one (taken only for a complete head).
fn parse_head_into(
    buf: &mut BytesMut,
    spare: &mut Option<HeaderMap>,
) -> Result<Option<Head>, Http1Error> {
    // Offsets of each field's name and value in `buf`.
    let mut spans = [[0u32; 4]; MAX_HEADERS];
    let (len, code, minor, fields) = {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut slots,
        );
        let len = match parsed {
            Ok(httparse::Status::Partial) => return Ok(None),
            Ok(httparse::Status::Complete(len)) => len,
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Http1Error::Invalid("too many header fields"));
            }
            Err(_) => return Err(Http1Error::Invalid("malformed response header")),
        };
        let base = buf.as_ptr() as usize;
        let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        for (span, field) in spans.iter_mut().zip(response.headers.iter()) {
            let name = offset(field.name.as_bytes());
            let value = offset(field.value);
            *span = [
                name,
                name + field.name.len() as u32,
                value,
                value + field.value.len() as u32,
            ];
        }
        (len, response.code, response.version, response.headers.len())
    };
    let status = code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(Http1Error::Invalid("bad status code"))?;
    let version = if minor == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let head = buf.split_to(len).freeze();
    // hyper keeps a response's emptied map for the next request it reads on the client
    // connection: with room for that request's fields and the forwarded headers the
    // proxy adds, the map is not reallocated on the way.
    let mut headers = match spare.take() {
        Some(mut map) => {
            map.reserve(fields);
            map
        }
        None => HeaderMap::with_capacity(fields + NEXT_REQUEST_ROOM),
    };
    for [ns, ne, vs, ve] in &spans[..fields] {
        let name = head
            .get(*ns as usize..*ne as usize)
            .and_then(|n| HeaderName::from_bytes(n).ok())
            .ok_or(Http1Error::Invalid("bad header field name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(*vs as usize..*ve as usize))
            .map_err(|_| Http1Error::Invalid("bad header field value"))?;
        headers.append(name, value);
    }
    Ok(Some(Head {
        status,
        version,
        headers,
    }))
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the upstream closes the connection.
    Close,
}

/// The framing of `head`'s body and whether the connection may be reused after it.
pub(crate) fn framing(head_request: bool, head: &Head) -> Result<(Framing, bool), Http1Error> {
    let keep_alive = head.version == Version::HTTP_11 && !super::connection_close(&head.headers);
    let status = head.status;
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Empty, keep_alive));
    }
    if head.headers.contains_key(header::TRANSFER_ENCODING) {
        let last = head
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|t| !t.is_empty());
        return Ok(match last {
            // Both headers: the message may have been smuggled; do not reuse.
            Some(t) if t.eq_ignore_ascii_case("chunked") => (
                Framing::Chunked,
                keep_alive && !head.headers.contains_key(header::CONTENT_LENGTH),
            ),
            _ => (Framing::Close, false),
        });
    }
    let mut length = None;
    for value in head.headers.get_all(header::CONTENT_LENGTH) {
        let text = value
            .to_str()
            .map_err(|_| Http1Error::Invalid("bad Content-Length"))?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Http1Error::Invalid("bad Content-Length"));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| Http1Error::Invalid("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Http1Error::Invalid("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => (Framing::Empty, keep_alive),
        Some(n) => (Framing::Length(n), keep_alive),
        None => (Framing::Close, false),
    })
}

/// Gives `conn` back to `pool` after a complete response, unless bytes are left.
fn release(pool: Arc<Pool>, conn: Box<Conn>) {
    if conn.is_clean() {
        pool.put_h1(conn);
    }
}

#[derive(Debug)]
enum State {
    /// The whole body, already read (its connection is back in the pool).
    Ready(Bytes),
    /// Bytes left of a `Content-Length` body.
    Length(u64),
    Chunked(Chunk),
    Close,
    Done,
}

/// A response body read from its connection as it is polled.
#[derive(Debug)]
pub struct Body {
    state: State,
    /// The connection, while the body streams from it.
    conn: Option<Box<Conn>>,
    /// Where the connection goes at the end (`None`: it is closed).
    pool: Option<Arc<Pool>>,
}

impl Body {
    /// The body of a response framed as `framing` on `conn`; a complete body is taken
    /// from the buffer at once and the connection released.
    pub(crate) fn new(framing: Framing, mut conn: Box<Conn>, pool: Option<Arc<Pool>>) -> Body {
        let state = match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) if conn.read.len() as u64 >= n => {
                State::Ready(conn.read.split_to(n as usize).freeze())
            }
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::Close => State::Close,
        };
        if matches!(state, State::Done | State::Ready(_)) {
            if let Some(pool) = pool {
                release(pool, conn);
            }
            return Body {
                state,
                conn: None,
                pool: None,
            };
        }
        Body {
            state,
            conn: Some(conn),
            pool,
        }
    }

    /// The body ended: the connection goes back to its pool (or is closed).
    fn finish(&mut self) {
        self.state = State::Done;
        if let (Some(conn), Some(pool)) = (self.conn.take(), self.pool.take()) {
            release(pool, conn);
        }
    }

    /// A failure: the connection is closed.
    fn fail(&mut self, error: Http1Error) -> Poll<Option<Result<Frame<Bytes>, Http1Error>>> {
        self.state = State::Done;
        self.conn = None;
        self.pool = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Http1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Http1Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(match std::mem::replace(&mut this.state, State::Done) {
                    State::Ready(data) => Some(Ok(Frame::data(data))),
                    _ => None,
                });
            };
            // Take what the buffer holds first.
            match &mut this.state {
                State::Length(remaining) if !conn.read.is_empty() => {
                    let n = (*remaining).min(conn.read.len() as u64);
                    let data = conn.read.split_to(n as usize).freeze();
                    *remaining -= n;
                    if *remaining == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Close if !conn.read.is_empty() => {
                    let data = conn.read.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Chunked(chunk) => match chunk.decode(&mut conn.read) {
                    Err(e) => return this.fail(e),
                    Ok(Some(Decoded::Data(data))) => {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Ok(Some(Decoded::End(trailers))) => {
                        this.finish();
                        return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                    }
                    Ok(None) => {}
                },
                State::Ready(_) | State::Done => {
                    // Not reached: these states hold no connection.
                    this.conn = None;
                    continue;
                }
                State::Length(_) | State::Close => {}
            }
            match conn.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return this.fail(e.into()),
                Poll::Ready(Ok(0)) => {
                    if matches!(this.state, State::Close) {
                        this.state = State::Done;
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    return this.fail(Http1Error::Truncated);
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Ready(data) => SizeHint::with_exact(data.len() as u64),
            State::Length(n) => SizeHint::with_exact(*n),
            State::Done => SizeHint::with_exact(0),
            State::Chunked(_) | State::Close => SizeHint::default(),
        }
    }
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this much left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers,
}

#[derive(Debug, PartialEq)]
enum Decoded {
    Data(Bytes),
    End(Option<HeaderMap>),
}

impl Chunk {
    /// Decodes from the start of `buf`: the next piece of data or the end, or `None`
    /// when more bytes are needed.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, Http1Error> {
        loop {
            match *self {
                Chunk::Size => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        *self = if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                        return Err(Http1Error::Invalid("chunk size line too long"));
                    }
                    Ok(httparse::Status::Partial) => return Ok(None),
                    Err(_) => return Err(Http1Error::Invalid("bad chunk size")),
                },
                Chunk::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    *self = if remaining == n {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(remaining - n)
                    };
                    return Ok(Some(Decoded::Data(data)));
                }
                Chunk::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Http1Error::Invalid("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = Chunk::Size;
                }
                Chunk::Trailers => {
                    if buf.starts_with(b"\r\n") {
                        buf.advance(2);
                        return Ok(Some(Decoded::End(None)));
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if buf.len() > MAX_TRAILERS {
                            return Err(Http1Error::Invalid("trailer section too big"));
                        }
                        return Ok(None);
                    };
                    let block = buf.split_to(end + 4);
                    return Ok(Some(Decoded::End(Some(parse_trailers(&block)?))));
                }
            }
        }
    }
}

fn parse_trailers(block: &[u8]) -> Result<HeaderMap, Http1Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    let parsed = match httparse::parse_headers(block, &mut fields) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        _ => return Err(Http1Error::Invalid("malformed trailer section")),
    };
    let mut trailers = HeaderMap::with_capacity(parsed.len());
    for field in parsed {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| Http1Error::Invalid("bad trailer field name"))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| Http1Error::Invalid("bad trailer field value"))?;
        trailers.append(name, value);
    }
    Ok(trailers)
}

#[cfg(test)]
mod tests;
