//! Response policies per request (compiled by [`gangplank_store::policy::response`]):
//! what happens to an upstream's answer on its way to the client.
//!
//! The handler calls three hooks:
//! 1. [`Exchange::of`] on the client request, before it is turned into the upstream
//!    request (it reads `Accept-Encoding`, the method and the version);
//! 2. [`upstream_connection`] on the upstream request (`connection-proxy-header`);
//! 3. [`respond`] on the upstream response's head: it rewrites `Set-Cookie`
//!    (`proxy-cookie-domain`, `proxy-cookie-path`) and `Location` / `Refresh`
//!    (`proxy-redirect-from` / `-to`), decides on gzip, and returns the [`Shape`] that
//!    wraps the body ([`ShapedBody`]: compression, then the `limit-rate` throttle).
//!
//! Compression follows nginx's `gzip` filter with ingress-nginx's settings: only
//! statuses 200, 403 and 404; never a `HEAD` answer, a response that already has a
//! `Content-Encoding`, a `Content-Length` below `gzip-min-length`, a type outside
//! `gzip-types`, or an HTTP/1.0 request (`gzip_http_version 1.1`); `Vary:
//! Accept-Encoding` on every response that could be compressed (`gzip_vary on`);
//! the client must accept `gzip` (q-values honoured, `q=0` refuses). A compressed
//! response loses `Content-Length` and `Accept-Ranges`, and a strong `ETag` becomes
//! weak. The body is compressed as it streams: every upstream chunk is compressed
//! and flushed (`Z_SYNC_FLUSH`) at once, so server-sent events and long responses
//! still flow; nothing is buffered beyond one chunk.
//!
//! `limit-rate` is nginx's per-request `limit_rate`: after `limit-rate-after` bytes
//! sent at full speed, the body goes out at the rate, with a burst of a quarter of a
//! second (a token bucket on tokio's clock). Large chunks are split rather than
//! held back whole.

use std::future::Future as _;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use flate2::write::GzEncoder;
use gangplank_store::CompiledPolicies;
use gangplank_store::policy::{CookieRewrites, Gzip, LimitRate, ResponsePolicies};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::template::{Escape, View, expand};
use crate::body::{ProxyBody, Recorder};
use crate::headers::ClientInfo;

/// What the response policies need to know about the client request.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// The client takes a gzip body (`Accept-Encoding`, HTTP/1.1 or later).
    accepts_gzip: bool,
    /// A `HEAD` request: no body to compress.
    head: bool,
    /// `proxy-redirect-from` / `-to` with their variables evaluated for this request
    /// (only when they have variables).
    redirect: Option<Box<(String, String)>>,
}

impl Exchange {
    /// The facts of `request` that matter to `policies`' response side. `client`,
    /// `host` and `path` are as for [`super::admit`].
    pub fn of<B>(
        policies: &CompiledPolicies,
        request: &Request<B>,
        client: &ClientInfo,
        host: &str,
        path: &str,
    ) -> Exchange {
        let mut exchange = Exchange::default();
        if policies.global.gzip.is_some() {
            exchange.accepts_gzip =
                request.version() >= Version::HTTP_11 && accepts_gzip(request.headers());
            exchange.head = request.method() == Method::HEAD;
        }
        if let Some(rule) = &policies.response.redirect
            && (rule.from.as_literal().is_none() || rule.to.as_literal().is_none())
        {
            let view = View {
                method: request.method(),
                uri: request.uri(),
                headers: request.headers(),
                client,
                host,
                path,
                server_name: &policies.hostname,
            };
            exchange.redirect = Some(Box::new((
                expand(&rule.from, &view, None, Escape::None),
                expand(&rule.to, &view, None, Escape::None),
            )));
        }
        exchange
    }
}

/// True when the `Accept-Encoding` headers accept `gzip`: listed (or `x-gzip`) with a
/// non-zero q-value, or not listed and `*` accepted.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let quality = parts
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
                })
                .map_or(Some(true), q_is_positive);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                // An unparsable q-value refuses, as nginx.
                return quality.unwrap_or(false);
            }
            if coding == "*" {
                star = Some(quality.unwrap_or(false));
            }
        }
    }
    star.unwrap_or(false)
}

/// `Some(q > 0)` for an RFC 9110 qvalue (`0`, `0.5`, `1.000`), `None` otherwise.
fn q_is_positive(q: &str) -> Option<bool> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    let valid = matches!(int, "0" | "1")
        && frac.len() <= 3
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || frac.bytes().all(|b| b == b'0'));
    valid.then(|| int == "1" || frac.bytes().any(|b| b != b'0'))
}

/// Sets the `Connection` header of the upstream request (`connection-proxy-header`),
/// except on a protocol upgrade, which needs `Connection: upgrade`.
pub fn upstream_connection(policies: &ResponsePolicies, headers: &mut HeaderMap, upgrade: bool) {
    if let Some(value) = &policies.connection
        && !upgrade
    {
        headers.insert(header::CONNECTION, value.clone());
    }
}

/// How the response body is shaped; [`Shape::body`] applies it.
#[derive(Debug, Default)]
pub struct Shape {
    gzip: Option<u32>,
    limit_rate: Option<LimitRate>,
}

impl Shape {
    /// `body`, compressed and throttled as decided; unchanged when nothing applies.
    pub fn body(self, body: ProxyBody) -> ProxyBody {
        // An empty body has nothing to throttle; left as it is, its upstream
        // connection goes back to the pool at once (a gzip body always has bytes).
        if self.gzip.is_none() && (self.limit_rate.is_none() || body.is_end_stream()) {
            return body;
        }
        ProxyBody::Shaped(Box::new(ShapedBody::new(body, self.gzip, self.limit_rate)))
    }
}

/// Applies the response policies to an upstream response's head and says how to
/// shape its body.
pub fn respond(
    policies: &CompiledPolicies,
    exchange: &Exchange,
    status: StatusCode,
    headers: &mut HeaderMap,
) -> Shape {
    let response = &policies.response;
    if let Some(rules) = &response.cookies {
        rewrite_cookies(rules, headers);
    }
    if let Some(rule) = &response.redirect {
        let literal = rule.from.as_literal().zip(rule.to.as_literal());
        let evaluated = exchange
            .redirect
            .as_deref()
            .map(|(from, to)| (from.as_str(), to.as_str()));
        if let Some((from, to)) = literal.or(evaluated) {
            rewrite_redirects(from, to, headers);
        }
    }
    let mut gzip = None;
    if let Some(settings) = &policies.global.gzip
        && compressible(settings, exchange, status, headers)
    {
        // Caches must keep both forms apart, whatever this client accepts.
        add_vary(headers);
        if exchange.accepts_gzip {
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::ACCEPT_RANGES);
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            weaken_etag(headers);
            gzip = Some(settings.level);
        }
    }
    Shape {
        gzip,
        limit_rate: response.limit_rate,
    }
}

/// Everything but the client's acceptance allows compressing this response.
fn compressible(gzip: &Gzip, exchange: &Exchange, status: StatusCode, headers: &HeaderMap) -> bool {
    let encoded = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.is_empty());
    let too_short = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .is_some_and(|len| len < gzip.min_length);
    let content_type = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
    // gRPC has its own message compression; an HTTP-level gzip breaks its clients
    // (possible with `gzip-types: *`).
    let grpc = content_type.is_some_and(|t| t.starts_with(b"application/grpc"));
    matches!(
        status,
        StatusCode::OK | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    ) && !exchange.head
        && !encoded
        && !too_short
        && !grpc
        && gzip.compresses_type(content_type)
}

/// Adds `Accept-Encoding` to `Vary` unless it is there already (or `Vary: *`).
fn add_vary(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.eq_ignore_ascii_case("accept-encoding"));
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// A strong `ETag` names exact bytes; the compressed body is only equivalent.
fn weaken_etag(headers: &mut HeaderMap) {
    if let Some(etag) = headers.get(header::ETAG)
        && etag.as_bytes().starts_with(b"\"")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(value) = HeaderValue::from_bytes(&weak) {
            headers.insert(header::ETAG, value);
        }
    }
}

/// Rewrites the `Domain` and `Path` attributes of every `Set-Cookie`.
fn rewrite_cookies(rules: &CookieRewrites, headers: &mut HeaderMap) {
    if let header::Entry::Occupied(mut entry) = headers.entry(header::SET_COOKIE) {
        for value in entry.iter_mut() {
            if let Some(new) = value
                .to_str()
                .ok()
                .and_then(|v| rewrite_set_cookie(v, rules))
                && let Ok(new) = HeaderValue::from_str(&new)
            {
                *value = new;
            }
        }
    }
}

/// One `Set-Cookie` value with its `Domain` / `Path` rewritten; `None` when nothing
/// changes. Attribute names match in any case, as nginx; the cookie's own
/// `name=value` is never touched.
pub fn rewrite_set_cookie(value: &str, rules: &CookieRewrites) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(value.len() + 16);
    for (i, segment) in value.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        let rewritten = (i > 0).then(|| rewrite_attribute(segment, rules)).flatten();
        match rewritten {
            Some(new) => {
                changed = true;
                out.push_str(&new);
            }
            None => out.push_str(segment),
        }
    }
    changed.then_some(out)
}

fn rewrite_attribute(segment: &str, rules: &CookieRewrites) -> Option<String> {
    let (name, attr_value) = segment.split_once('=')?;
    let key = name.trim();
    let lead = &attr_value[..attr_value.len() - attr_value.trim_start().len()];
    let current = attr_value.trim();
    let new_value = if key.eq_ignore_ascii_case("domain") {
        let (from, to) = rules.domain.as_ref()?;
        let (dot, bare) = match current.strip_prefix('.') {
            Some(bare) => (".", bare),
            None => ("", current),
        };
        if !bare.eq_ignore_ascii_case(from) {
            return None;
        }
        let to = if dot.is_empty() {
            to.as_str()
        } else {
            to.strip_prefix('.').unwrap_or(to)
        };
        format!("{dot}{to}")
    } else if key.eq_ignore_ascii_case("path") {
        let (from, to) = rules.path.as_ref()?;
        let rest = current.strip_prefix(from.as_str())?;
        format!("{to}{rest}")
    } else {
        return None;
    };
    Some(format!("{name}={lead}{new_value}"))
}

/// Rewrites the prefix of `Location` and of the URL of `Refresh`.
fn rewrite_redirects(from: &str, to: &str, headers: &mut HeaderMap) {
    if let Some(new) = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| rewrite_location(v, from, to))
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(header::LOCATION, new);
    }
    let refresh = http::HeaderName::from_static("refresh");
    if let Some(new) = headers
        .get(&refresh)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| rewrite_refresh(v, from, to))
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(refresh, new);
    }
}

/// A `Location` value starting with `from` (compared exactly, as nginx) gets that
/// prefix replaced by `to`.
pub fn rewrite_location(value: &str, from: &str, to: &str) -> Option<String> {
    if from.is_empty() {
        return None;
    }
    let rest = value.strip_prefix(from)?;
    Some(format!("{to}{rest}"))
}

/// `Refresh: 5; url=<URL>`: the URL after `url=` (any case) is rewritten as a
/// `Location`.
pub fn rewrite_refresh(value: &str, from: &str, to: &str) -> Option<String> {
    let at = value.to_ascii_lowercase().find("url=")? + 4;
    let (head, url) = value.split_at(at);
    let url = rewrite_location(url, from, to)?;
    Some(format!("{head}{url}"))
}

/// An upstream body, compressed and/or throttled on its way to the client.
#[derive(Debug)]
pub struct ShapedBody {
    inner: ProxyBody,
    inner_done: bool,
    gzip: Option<GzEncoder<Vec<u8>>>,
    throttle: Option<Throttle>,
    /// Output waiting for the throttle.
    pending: Bytes,
    /// The upstream's trailers, sent after the compressed tail.
    trailers: Option<HeaderMap>,
    recorder: Option<Recorder>,
}

impl ShapedBody {
    fn new(inner: ProxyBody, gzip: Option<u32>, limit_rate: Option<LimitRate>) -> ShapedBody {
        ShapedBody {
            inner,
            inner_done: false,
            gzip: gzip.map(|level| GzEncoder::new(Vec::new(), flate2::Compression::new(level))),
            throttle: limit_rate.map(Throttle::new),
            pending: Bytes::new(),
            trailers: None,
            recorder: None,
        }
    }

    /// The upstream body inside, unshaped (its response is being replaced).
    pub(crate) fn into_inner(self) -> ProxyBody {
        self.inner
    }

    /// Where the access log record goes: it counts the bytes sent to the client
    /// (compressed), and is handed over when the body ends.
    pub fn set_recorder(&mut self, recorder: Recorder) {
        self.recorder = Some(recorder);
    }

    /// Compresses `data` and flushes, so the client gets it now.
    fn compress(&mut self, data: &[u8]) -> Bytes {
        let Some(encoder) = self.gzip.as_mut() else {
            return Bytes::copy_from_slice(data);
        };
        // Writing to a Vec cannot fail.
        if let Err(e) = encoder.write_all(data).and_then(|()| encoder.flush()) {
            tracing::warn!(error = %e, "gzip failed");
        }
        Bytes::from(std::mem::take(encoder.get_mut()))
    }

    fn finish(&mut self) -> Bytes {
        match self.gzip.take() {
            Some(encoder) => match encoder.finish() {
                Ok(tail) => Bytes::from(tail),
                Err(e) => {
                    tracing::warn!(error = %e, "gzip failed");
                    Bytes::new()
                }
            },
            None => Bytes::new(),
        }
    }

    fn emit(
        &mut self,
        data: Bytes,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::upstream::UpstreamBodyError>>> {
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.add_bytes(data.len());
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

impl Body for ShapedBody {
    type Data = Bytes;
    type Error = crate::upstream::UpstreamBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::upstream::UpstreamBodyError>>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = match this.throttle.as_mut() {
                    Some(throttle) => match throttle.poll_allow(cx, this.pending.len()) {
                        Poll::Ready(n) => n,
                        Poll::Pending => return Poll::Pending,
                    },
                    None => this.pending.len(),
                };
                let data = this.pending.split_to(n);
                return this.emit(data);
            }
            if this.inner_done {
                if this.gzip.is_some() {
                    this.pending = this.finish();
                    continue;
                }
                if let Some(trailers) = this.trailers.take() {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                // The end: the access log record goes out now.
                this.recorder.take();
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.pending = this.compress(&data);
                        if this.inner.is_end_stream() {
                            this.inner_done = true;
                        }
                    }
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        this.inner_done = true;
                    }
                },
                Poll::Ready(None) => this.inner_done = true,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner_done && self.gzip.is_none() && self.pending.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.gzip.is_some() {
            SizeHint::default()
        } else {
            let inner = self.inner.size_hint();
            let pending = self.pending.len() as u64;
            let mut hint = SizeHint::new();
            hint.set_lower(inner.lower().saturating_add(pending));
            if let Some(upper) = inner.upper() {
                hint.set_upper(upper.saturating_add(pending));
            }
            hint
        }
    }
}

/// nginx's `limit_rate` / `limit_rate_after` as a token bucket: by `elapsed` after
/// the first byte, `after + rate × elapsed + burst` bytes may have been sent.
#[derive(Debug)]
struct Throttle {
    rate: u64,
    after: u64,
    burst: u64,
    /// Smallest piece worth a wake-up (a tenth of a second's worth, 1 B..16 KiB).
    quantum: u64,
    start: Option<Instant>,
    sent: u64,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Throttle {
    fn new(limit: LimitRate) -> Throttle {
        let rate = limit.bytes_per_second.max(1);
        Throttle {
            rate,
            after: limit.after,
            burst: (rate / 4).max(1),
            quantum: (rate / 10).clamp(1, 16 * 1024),
            start: None,
            sent: 0,
            sleep: None,
        }
    }

    /// Bytes that may go out at `now`.
    fn allowance(&self, start: Instant, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(start).as_nanos();
        let earned = (u128::from(self.rate) * elapsed / 1_000_000_000).min(u128::from(u64::MAX));
        let allowed = (earned as u64)
            .saturating_add(self.after)
            .saturating_add(self.burst);
        allowed.saturating_sub(self.sent)
    }

    /// How many of `want` bytes may be sent now; pending (with a timer) when too few.
    fn poll_allow(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<usize> {
        let want = want as u64;
        let now = Instant::now();
        let start = *self.start.get_or_insert(now);
        loop {
            let allowed = self.allowance(start, now.max(Instant::now()));
            let needed = want.min(self.quantum);
            if allowed >= needed {
                self.sleep = None;
                let n = allowed.min(want);
                self.sent = self.sent.saturating_add(n);
                return Poll::Ready(n as usize);
            }
            // When `sent + needed` bytes are earned.
            let owed = self.sent.saturating_add(needed) - self.after.saturating_add(self.burst);
            let nanos = u128::from(owed) * 1_000_000_000 / u128::from(self.rate);
            let deadline = start + Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64);
            match self.sleep.as_mut() {
                Some(sleep) if sleep.deadline() == deadline => {}
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            let Some(sleep) = self.sleep.as_mut() else {
                return Poll::Pending;
            };
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.sleep = None;
                    continue;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Read as _;

    fn accept(values: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        accepts_gzip(&h)
    }

    #[test]
    fn accept_encoding() {
        assert!(accept(&["gzip"]));
        assert!(accept(&["gzip, deflate, br"]));
        assert!(accept(&["br;q=1.0, GZIP;q=0.5"]));
        assert!(accept(&["x-gzip"]));
        assert!(accept(&["identity", "gzip"]));
        assert!(accept(&["*"]));
        assert!(accept(&["br, *;q=0.1"]));
        assert!(accept(&["gzip;q=0.001"]));
        assert!(accept(&["gzip ; q=1"]));
        assert!(!accept(&[]));
        assert!(!accept(&["identity"]));
        assert!(!accept(&["br, deflate"]));
        assert!(!accept(&["gzip;q=0"]));
        assert!(!accept(&["gzip;q=0.000"]));
        assert!(!accept(&["gzip;Q=0.0, *"]));
        assert!(!accept(&["*;q=0"]));
        assert!(!accept(&["gzip;q=bogus"]));
        assert!(!accept(&["gzip;q=1.5"]));
        assert!(!accept(&["gzipx"]));
        assert!(!accept(&["notgzip"]));
        assert!(!accept(&["*, gzip;q=0"]));
        // Huge or odd values stay inert.
        assert!(!accept(&[&"a,".repeat(10_000)]));
        assert!(accept(&[&format!("{}gzip", "x;q=0.5, ".repeat(1000))]));
    }

    fn cookies(domain: Option<(&str, &str)>, path: Option<(&str, &str)>) -> CookieRewrites {
        CookieRewrites {
            domain: domain.map(|(a, b)| (a.to_owned(), b.to_owned())),
            path: path.map(|(a, b)| (a.to_owned(), b.to_owned())),
        }
    }

    #[test]
    fn set_cookie_rewriting() {
        let rules = cookies(
            Some(("internal.local", "example.com")),
            Some(("/old", "/new")),
        );
        assert_eq!(
            rewrite_set_cookie(
                "id=1; Domain=internal.local; Path=/old/app; HttpOnly",
                &rules
            )
            .as_deref(),
            Some("id=1; Domain=example.com; Path=/new/app; HttpOnly")
        );
        assert_eq!(
            rewrite_set_cookie("id=1;domain=.INTERNAL.local;PATH=/old", &rules).as_deref(),
            Some("id=1;domain=.example.com;PATH=/new")
        );
        // The cookie's own name and value are never attributes.
        assert_eq!(rewrite_set_cookie("domain=internal.local", &rules), None);
        assert_eq!(rewrite_set_cookie("path=/old; Secure", &rules), None);
        // Only equal domains; paths by prefix, case-sensitive.
        for untouched in [
            "id=1; Domain=sub.internal.local",
            "id=1; Domain=internal.local.evil.com",
            "id=1; Path=/OLD",
            "id=1; Path=/x/old",
            "id=1; Domain",
            "id=1",
            "",
            ";;;=;",
        ] {
            assert_eq!(rewrite_set_cookie(untouched, &rules), None, "{untouched}");
        }
        let path_only = cookies(None, Some(("/", "/app/")));
        assert_eq!(
            rewrite_set_cookie("a=b; Domain=internal.local; Path=/", &path_only).as_deref(),
            Some("a=b; Domain=internal.local; Path=/app/")
        );
        // Through a header map: every Set-Cookie, values that are not text left alone.
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("a=1; Path=/old"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_bytes(b"b=\xff; Path=/old").unwrap(),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("c=1; domain=internal.local"),
        );
        rewrite_cookies(&rules, &mut h);
        let got: Vec<&[u8]> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        assert_eq!(
            got,
            [
                &b"a=1; Path=/new"[..],
                b"b=\xff; Path=/old",
                b"c=1; domain=example.com"
            ]
        );
    }

    #[test]
    fn location_and_refresh_rewriting() {
        let (from, to) = ("http://internal.local/", "https://example.com/app/");
        assert_eq!(
            rewrite_location("http://internal.local/login?next=/x", from, to).as_deref(),
            Some("https://example.com/app/login?next=/x")
        );
        assert_eq!(
            rewrite_location("http://internal.local.evil/", from, to),
            None
        );
        assert_eq!(rewrite_location("HTTP://internal.local/", from, to), None);
        assert_eq!(rewrite_location("/relative", from, to), None);
        assert_eq!(rewrite_location("/anything", "", "/x"), None);
        assert_eq!(
            rewrite_refresh("5; URL=http://internal.local/next", from, to).as_deref(),
            Some("5; URL=https://example.com/app/next")
        );
        assert_eq!(rewrite_refresh("5", from, to), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::LOCATION,
            HeaderValue::from_static("http://internal.local/a"),
        );
        h.insert(
            "refresh",
            HeaderValue::from_static("0;url=http://internal.local/b"),
        );
        rewrite_redirects(from, to, &mut h);
        assert_eq!(h[header::LOCATION], "https://example.com/app/a");
        assert_eq!(h["refresh"], "0;url=https://example.com/app/b");
    }

    #[test]
    fn redirect_rewrite_with_variables() {
        let p = policies(
            serde_json::json!({}),
            serde_json::json!({"proxy": {"redirectFrom": "http://$http_x_internal/", "redirectTo": "https://$host/"}}),
        );
        let request = Request::builder()
            .uri("/x")
            .header("host", "Public.Example:8080")
            .header("x-internal", "10.0.0.1:8080")
            .body(())
            .unwrap();
        let client = ClientInfo::new("192.0.2.1:5000".parse().unwrap(), 8080, false);
        let exchange = Exchange::of(&p, &request, &client, "Public.Example:8080", "/x");
        let mut h = head(&[("location", "http://10.0.0.1:8080/login")]);
        respond(&p, &exchange, StatusCode::FOUND, &mut h);
        assert_eq!(h["location"], "https://public.example/login");
        // Without the header, `from` is "http:///": only that prefix is replaced.
        let request = Request::builder().uri("/x").body(()).unwrap();
        let exchange = Exchange::of(&p, &request, &client, "h", "/x");
        let mut h = head(&[("location", "http://10.0.0.1:8080/login")]);
        respond(&p, &exchange, StatusCode::FOUND, &mut h);
        assert_eq!(h["location"], "http://10.0.0.1:8080/login");
    }

    fn policies(general: serde_json::Value, location: serde_json::Value) -> CompiledPolicies {
        let general: gangplank_model::GeneralConfig = serde_json::from_value(general).unwrap();
        let mut l = serde_json::json!({"path": "/", "backend": "b"});
        l.as_object_mut()
            .unwrap()
            .extend(location.as_object().unwrap().clone());
        let location: gangplank_model::Location = serde_json::from_value(l).unwrap();
        let mut p = CompiledPolicies::none();
        p.global = std::sync::Arc::new(gangplank_store::policy::GlobalPolicies::compile(&general));
        p.response = ResponsePolicies::compile(&location).unwrap();
        p
    }

    fn head(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn gz_exchange() -> Exchange {
        Exchange {
            accepts_gzip: true,
            head: false,
            redirect: None,
        }
    }

    #[test]
    fn when_to_compress() {
        let p = policies(serde_json::json!({"use-gzip": true}), serde_json::json!({}));
        let html = [
            ("content-type", "text/html; charset=utf-8"),
            ("etag", "\"v1\""),
            ("accept-ranges", "bytes"),
        ];
        let mut h = head(&html);
        assert!(
            respond(&p, &gz_exchange(), StatusCode::OK, &mut h)
                .gzip
                .is_some()
        );
        assert_eq!(h["content-encoding"], "gzip");
        assert_eq!(h["vary"], "Accept-Encoding");
        assert_eq!(h["etag"], "W/\"v1\"");
        assert!(!h.contains_key("accept-ranges"));

        // The client does not take gzip: nothing changes but Vary.
        let mut h = head(&[("content-type", "text/html"), ("vary", "Origin")]);
        assert!(
            respond(&p, &Exchange::default(), StatusCode::OK, &mut h)
                .gzip
                .is_none()
        );
        assert!(!h.contains_key("content-encoding"));
        let vary: Vec<_> = h.get_all("vary").iter().collect();
        assert_eq!(vary, ["Origin", "Accept-Encoding"]);

        for (status, pairs) in [
            (StatusCode::OK, &[("content-type", "image/png")][..]),
            (
                StatusCode::OK,
                &[("content-type", "text/html"), ("content-encoding", "br")],
            ),
            (
                StatusCode::OK,
                &[("content-type", "text/html"), ("content-length", "255")],
            ),
            (StatusCode::OK, &[][..]),
            (StatusCode::NO_CONTENT, &[("content-type", "text/html")]),
            (StatusCode::NOT_MODIFIED, &[("content-type", "text/html")]),
            (
                StatusCode::PARTIAL_CONTENT,
                &[("content-type", "text/html")],
            ),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                &[("content-type", "text/html")],
            ),
        ] {
            let mut h = head(pairs);
            assert!(
                respond(&p, &gz_exchange(), status, &mut h).gzip.is_none(),
                "{status} {pairs:?}"
            );
            assert!(
                !h.contains_key("content-encoding")
                    || pairs.iter().any(|(k, _)| *k == "content-encoding")
            );
        }
        let mut h = head(&[("content-type", "text/plain"), ("content-length", "256")]);
        assert!(
            respond(&p, &gz_exchange(), StatusCode::NOT_FOUND, &mut h)
                .gzip
                .is_some()
        );
        assert!(!h.contains_key("content-length"));
        let head_request = Exchange {
            accepts_gzip: true,
            head: true,
            redirect: None,
        };
        let mut h = head(&[("content-type", "text/plain")]);
        assert!(
            respond(&p, &head_request, StatusCode::OK, &mut h)
                .gzip
                .is_none()
        );

        // Never gRPC, even with `*`.
        let any = policies(
            serde_json::json!({"use-gzip": true, "gzip-types": ["*"]}),
            serde_json::json!({}),
        );
        let mut h = head(&[("content-type", "application/grpc+proto")]);
        assert!(
            respond(&any, &gz_exchange(), StatusCode::OK, &mut h)
                .gzip
                .is_none()
        );
        let mut h = head(&[("content-type", "application/octet-stream")]);
        assert!(
            respond(&any, &gz_exchange(), StatusCode::OK, &mut h)
                .gzip
                .is_some()
        );

        // The request side: HTTP/1.1 or later, gzip accepted, not HEAD.
        let req = |version, method: Method, accept: &str| {
            let r = Request::builder()
                .version(version)
                .method(method)
                .header("accept-encoding", accept)
                .body(())
                .unwrap();
            let client = ClientInfo::new("192.0.2.1:5000".parse().unwrap(), 80, false);
            Exchange::of(&p, &r, &client, "h", "/")
        };
        let e = req(Version::HTTP_11, Method::GET, "gzip");
        assert!(e.accepts_gzip && !e.head);
        assert!(req(Version::HTTP_2, Method::GET, "gzip").accepts_gzip);
        assert!(!req(Version::HTTP_10, Method::GET, "gzip").accepts_gzip);
        assert!(!req(Version::HTTP_11, Method::GET, "br").accepts_gzip);
        assert!(req(Version::HTTP_11, Method::HEAD, "gzip").head);

        // Without use-gzip nothing happens at all.
        let off = policies(serde_json::json!({}), serde_json::json!({}));
        let mut h = head(&[("content-type", "text/html")]);
        assert!(
            respond(&off, &gz_exchange(), StatusCode::OK, &mut h)
                .gzip
                .is_none()
        );
        assert!(!h.contains_key("vary"));
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn gzip_streams_chunk_by_chunk() {
        let original: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_string().into_bytes())
            .collect();
        let body = ShapedBody::new(
            ProxyBody::full(Bytes::from(original.clone())),
            Some(6),
            None,
        );
        let collected = body.collect().await.unwrap().to_bytes();
        assert!(collected.len() < original.len() / 2);
        assert_eq!(gunzip(&collected), original);

        // Each chunk is flushed: the first frame decodes on its own.
        let mut shaped = ShapedBody::new(
            ProxyBody::full(Bytes::from_static(b"data: hello\n\n")),
            Some(1),
            None,
        );
        let first = shaped.frame().await.unwrap().unwrap().into_data().unwrap();
        let mut partial = Vec::new();
        let mut decoder = flate2::read::GzDecoder::new(&first[..]);
        let _ = decoder.read_to_end(&mut partial);
        assert_eq!(partial, b"data: hello\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn limit_rate_paces_the_body_after_the_free_part() {
        let body = ProxyBody::full(Bytes::from(vec![7u8; 30 * 1024]));
        let limit = LimitRate {
            bytes_per_second: 10 * 1024,
            after: 5 * 1024,
        };
        let start = Instant::now();
        let mut shaped = ShapedBody::new(body, None, Some(limit));
        let mut got = 0usize;
        let mut times = Vec::new();
        while let Some(frame) = shaped.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            got += data.len();
            times.push((got, start.elapsed()));
        }
        assert_eq!(got, 30 * 1024);
        // 5 KiB free + 2.5 KiB burst, then 22.5 KiB at 10 KiB/s: 2.25 s.
        let total = start.elapsed();
        assert!(
            total >= Duration::from_millis(2200) && total <= Duration::from_millis(2400),
            "{total:?}"
        );
        // The free part and the burst went out at once.
        assert_eq!(times[0], (7 * 1024 + 512, Duration::ZERO));
        assert!(shaped.is_end_stream());
    }

    #[tokio::test(start_paused = true)]
    async fn limit_rate_applies_to_compressed_bytes() {
        let body = ProxyBody::full(Bytes::from(vec![b'a'; 1_000_000]));
        let limit = LimitRate {
            bytes_per_second: 1024,
            after: 0,
        };
        let start = Instant::now();
        let collected = ShapedBody::new(body, Some(1), Some(limit))
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(gunzip(&collected).len(), 1_000_000);
        // A million repeated bytes compress to a few KiB: seconds, not 16 minutes.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }
}
