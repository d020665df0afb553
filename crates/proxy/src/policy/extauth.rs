//! External authentication per request (`auth-url`, ConfigMap `global-auth-url`):
//! ingress-nginx's `auth_request` subrequest, compiled by
//! [`gangplank_store::policy::extauth`].
//!
//! The auth request carries the client's headers without its body, plus
//! `X-Original-URL`, `X-Original-Method`, `X-Sent-From: nginx-ingress-controller`,
//! `X-Real-IP`, `X-Forwarded-For`, `X-Auth-Request-Redirect`, `X-Request-ID`
//! (`X-Original-URI` and `X-Scheme` too with `auth-method`), `Host` set to the URL's
//! host, no `X-Forwarded-Proto` and the `auth-proxy-set-headers`. The method is
//! `auth-method`, else `GET` (nginx's subrequests are GET). The answer decides:
//! - 2xx: the request proceeds; each `auth-response-headers` header replaces the
//!   client's of that name in the upstream request (removed when the auth answer has
//!   none, so a client cannot forge them);
//! - 401: 401 with the auth service's `WWW-Authenticate`, or with `auth-signin` a 302
//!   to the sign-in URL carrying `rd=<scheme>://<host><escaped request URI>`;
//! - 403: 403;
//! - anything else, no answer, a timeout: 500, logged with the auth URL.
//!
//! `Set-Cookie` of the auth answer reaches the client as nginx's
//! `add_header Set-Cookie $auth_cookie` does: on responses with 200, 201, 204, 206,
//! 301, 302, 303, 304, 307 or 308 (so on a successful request and on the sign-in
//! redirect), on every status with `auth-always-set-cookie`.
//!
//! With `auth-cache-key`, answers with a listed status are remembered per worker
//! ([`AnswerCache`], bounded) under the location and the expanded key, as nginx's
//! `proxy_cache` does (answers with `Set-Cookie` or `Cache-Control: no-store`,
//! `no-cache` or `private` are not kept).
//!
//! The request never blocks the worker: it is an ordinary async exchange on a
//! per-worker connection pool of its own, bounded by the location's
//! `proxy-connect-timeout` and `proxy-read-timeout`. Host names are resolved with
//! [`crate::dns::Resolver`] (cluster DNS names included); `https` services get TLS
//! with SNI and, as nginx's auth location, no certificate verification.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use gangplank_store::policy::extauth::{AuthTarget, AuthUrl};
use gangplank_store::policy::{ExternalAuth, Template};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use sha1::{Digest as _, Sha1};

use super::template::{Escape, View, expand};
use crate::body::RequestBody;
use crate::dns::Resolver;
use crate::headers::{new_request_id, strip_hop_by_hop};
use crate::upstream::{Pool, PoolSettings, Timeouts, Transport};

/// Answers kept per worker; the cache is emptied of expired entries, then entirely,
/// when full.
pub const CACHE_MAX: usize = 10_000;
/// The largest auth answer body read (and discarded) to keep its connection.
const BODY_MAX: usize = 64 * 1024;

static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_SENT_FROM: HeaderName = HeaderName::from_static("x-sent-from");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
static X_AUTH_REQUEST_REDIRECT: HeaderName = HeaderName::from_static("x-auth-request-redirect");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the auth service decided (or the failure to ask it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// 2xx: proceed, with these upstream header changes (`None` removes).
    Allow {
        /// `auth-response-headers`, in order.
        headers: Vec<(HeaderName, Option<HeaderValue>)>,
        /// The auth answer's `Set-Cookie` headers.
        cookies: Vec<HeaderValue>,
    },
    /// 401, with the service's `WWW-Authenticate`.
    Unauthorized {
        /// `WWW-Authenticate` values.
        challenge: Vec<HeaderValue>,
        /// `Set-Cookie` values.
        cookies: Vec<HeaderValue>,
    },
    /// 401 with `auth-signin`: redirect there.
    SignIn {
        /// The `Location`.
        location: HeaderValue,
        /// `Set-Cookie` values.
        cookies: Vec<HeaderValue>,
    },
    /// 403.
    Forbidden {
        /// `Set-Cookie` values.
        cookies: Vec<HeaderValue>,
    },
    /// Any other status, or no answer: 500.
    Failed {
        /// `Set-Cookie` values.
        cookies: Vec<HeaderValue>,
    },
}

/// What a successful auth request leaves for the rest of the request.
#[derive(Debug, Clone)]
pub struct Granted {
    /// `auth-response-headers` changes to the upstream request (`None` removes).
    pub headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// The auth answer's `Set-Cookie` values, for the client response.
    pub cookies: Vec<HeaderValue>,
    /// `auth-always-set-cookie`.
    pub always_set_cookie: bool,
    /// The `X-Request-ID` the auth request carried, for the upstream request.
    pub request_id: HeaderValue,
}

impl Granted {
    /// Applies the header changes to the upstream request.
    pub fn upstream_request(&self, headers: &mut HeaderMap) {
        headers.insert(X_REQUEST_ID.clone(), self.request_id.clone());
        for (name, value) in &self.headers {
            headers.remove(name);
            if let Some(value) = value {
                headers.insert(name.clone(), value.clone());
            }
        }
    }

    /// Adds the cookies to a client response with `status`.
    pub fn response(&self, status: StatusCode, headers: &mut HeaderMap) {
        if cookies_apply(status, self.always_set_cookie) {
            for cookie in &self.cookies {
                headers.append(header::SET_COOKIE, cookie.clone());
            }
        }
    }
}

/// The parts of an auth answer that matter, as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status.
    pub status: u16,
    /// Its headers named by `auth-response-headers`, `WWW-Authenticate` and
    /// `Set-Cookie`.
    pub headers: HeaderMap,
}

/// Answers remembered for `auth-cache-key`, per worker. Time is passed in, so tests
/// control it.
#[derive(Debug, Default)]
pub struct AnswerCache {
    entries: HashMap<[u8; 20], (Instant, Arc<Answer>)>,
}

impl AnswerCache {
    /// The answer under `key`, if still valid at `now`.
    pub fn get(&mut self, key: &[u8; 20], now: Instant) -> Option<Arc<Answer>> {
        match self.entries.get(key) {
            Some((expires, answer)) if *expires > now => Some(answer.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `answer` under `key` until `expires`.
    pub fn put(&mut self, key: [u8; 20], answer: Arc<Answer>, expires: Instant, now: Instant) {
        if self.entries.len() >= CACHE_MAX && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (e, _)| *e > now);
            if self.entries.len() >= CACHE_MAX {
                self.entries.clear();
            }
        }
        self.entries.insert(key, (expires, answer));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One worker's connections to auth services and its answer cache.
struct Worker {
    pool: Arc<Pool>,
    cache: RefCell<AnswerCache>,
}

thread_local! {
    static WORKER: Worker = Worker {
        pool: Pool::new(PoolSettings {
            max_idle: 64,
            // ingress-nginx's auth-keepalive-timeout and -requests defaults.
            idle_timeout: Duration::from_secs(60),
            max_requests: 1000,
            max_lifetime: Duration::from_secs(3600),
        }),
        cache: RefCell::new(AnswerCache::default()),
    };
}

/// Auth service names are resolved like ExternalName endpoints, with their own cache.
static RESOLVER: LazyLock<Resolver> = LazyLock::new(Resolver::default);

/// Asks the auth service about the request in `view` (or the cache). `scope` names
/// the location (cache keys never cross locations or auth URLs); `request_id` is the
/// `X-Request-ID` the upstream request will carry.
pub async fn check(
    auth: &ExternalAuth,
    scope: &str,
    view: &View<'_>,
    request_id: &HeaderValue,
) -> Decision {
    let cache_key = auth.cache.as_ref().map(|cache| {
        let mut h = Sha1::new();
        h.update(scope.as_bytes());
        h.update([0]);
        h.update(auth.url_text.as_bytes());
        h.update([0]);
        h.update(expand(&cache.key, view, None, Escape::None).as_bytes());
        <[u8; 20]>::from(h.finalize())
    });
    if let Some(key) = &cache_key {
        let now = Instant::now();
        if let Some(answer) = WORKER.with(|w| w.cache.borrow_mut().get(key, now)) {
            return decide(auth, view, &answer);
        }
    }

    let url = match &auth.target {
        AuthTarget::Fixed(url) => url.clone(),
        AuthTarget::Template(t) => match AuthUrl::parse(&expand(t, view, None, Escape::Uri)) {
            Ok(url) => url,
            Err(e) => {
                tracing::error!(location = scope, error = %e, "external auth: the auth URL does not expand to a usable URL; answering 500");
                return Decision::Failed {
                    cookies: Vec::new(),
                };
            }
        },
    };
    let answer = match ask(auth, &url, view, request_id).await {
        Ok(answer) => answer,
        Err(why) => {
            tracing::error!(location = scope, auth_url = %url, error = %why, "external auth request failed; answering 500");
            return Decision::Failed {
                cookies: Vec::new(),
            };
        }
    };
    if !(200..300).contains(&answer.status) && ![401, 403].contains(&answer.status) {
        tracing::error!(location = scope, auth_url = %url, status = answer.status, "external auth service answered an unexpected status; answering 500");
    }
    if let (Some(key), Some(cache)) = (cache_key, &auth.cache)
        && let Some(ttl) = cache.duration_for(answer.status)
        && cacheable(&answer.headers)
    {
        let now = Instant::now();
        let answer = Arc::new(answer.clone());
        WORKER.with(|w| w.cache.borrow_mut().put(key, answer, now + ttl, now));
    }
    decide(auth, view, &answer)
}

/// nginx's `proxy_cache` keeps no answer with `Set-Cookie` or a `Cache-Control` that
/// forbids it.
fn cacheable(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::SET_COOKIE) {
        return false;
    }
    !headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .any(|d| d == "no-store" || d == "no-cache" || d == "private" || d == "max-age=0")
}

/// Turns an answer into a decision.
fn decide(auth: &ExternalAuth, view: &View<'_>, answer: &Answer) -> Decision {
    let cookies: Vec<HeaderValue> = answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    match answer.status {
        200..=299 => Decision::Allow {
            headers: auth
                .response_headers
                .iter()
                .map(|name| {
                    let values: Vec<&[u8]> = answer
                        .headers
                        .get_all(name)
                        .iter()
                        .map(HeaderValue::as_bytes)
                        .collect();
                    // nginx's `$upstream_http_*` joins repeated headers with ", ".
                    let value = (!values.is_empty())
                        .then(|| HeaderValue::from_bytes(&values.join(&b", "[..])).ok())
                        .flatten();
                    (name.clone(), value)
                })
                .collect(),
            cookies,
        },
        401 => match &auth.signin {
            Some(signin) => match HeaderValue::from_str(&signin_target(signin, view)) {
                Ok(location) => Decision::SignIn { location, cookies },
                Err(_) => Decision::Failed { cookies },
            },
            None => Decision::Unauthorized {
                challenge: answer
                    .headers
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .cloned()
                    .collect(),
                cookies,
            },
        },
        403 => Decision::Forbidden { cookies },
        _ => Decision::Failed { cookies },
    }
}

/// The sign-in redirect: the expanded `auth-signin`, plus
/// `rd=<scheme>://<Host><escaped request URI>` unless it names the parameter itself.
fn signin_target(signin: &gangplank_store::policy::extauth::Signin, view: &View<'_>) -> String {
    let mut target = expand(&signin.url, view, None, Escape::Uri);
    if let Some((separator, param)) = &signin.append {
        let scheme = if view.client.is_https() {
            "https"
        } else {
            "http"
        };
        let request_uri = view.uri.path_and_query().map_or("/", |p| p.as_str());
        let _ = write!(target, "{separator}{param}={scheme}://{}", view.host);
        escape_component(&mut target, request_uri);
    }
    target
}

/// set-misc's `set_escape_uri` (the `$escaped_request_uri` of ingress-nginx's
/// sign-in redirects): everything but letters, digits and `-._~!*'()` is escaped.
fn escape_component(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Sends the auth request and reads its answer.
async fn ask(
    auth: &ExternalAuth,
    url: &AuthUrl,
    view: &View<'_>,
    request_id: &HeaderValue,
) -> Result<Answer, String> {
    let request = auth_request(auth, url, view, request_id)?;
    let addr = RESOLVER
        .resolve(&url.host, url.port)
        .await
        .ok_or_else(|| format!("{} does not resolve", url.host))?;
    let pool = WORKER.with(|w| w.pool.clone());
    let timeouts = Timeouts {
        connect: auth.connect_timeout,
        read: auth.read_timeout,
    };
    let transport = if url.https {
        Transport::Http1Tls(&auth.tls)
    } else {
        Transport::Http1
    };
    let is_ip = url.host.parse::<std::net::IpAddr>().is_ok();
    let name = (!is_ip).then_some(url.host.as_str());
    let (response, checkin) = pool
        .send_with(addr, name, transport, request, timeouts)
        .await
        .map_err(|failed| failed.error.to_string())?;
    let (parts, body) = response.into_parts();
    // The body is not used; reading it (a little, in time) keeps the connection.
    let read = tokio::time::timeout(
        auth.read_timeout,
        http_body_util::Limited::new(body, BODY_MAX).collect(),
    )
    .await;
    if let (Ok(Ok(_)), Some(checkin)) = (read, checkin) {
        checkin.checkin();
    }
    let mut headers = HeaderMap::new();
    for name in auth
        .response_headers
        .iter()
        .chain([&header::WWW_AUTHENTICATE, &header::SET_COOKIE])
        .chain([&header::CACHE_CONTROL])
    {
        for value in parts.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    Ok(Answer {
        status: parts.status.as_u16(),
        headers,
    })
}

/// The auth request (ingress-nginx's internal auth location).
fn auth_request(
    auth: &ExternalAuth,
    url: &AuthUrl,
    view: &View<'_>,
    request_id: &HeaderValue,
) -> Result<Request<RequestBody>, String> {
    let mut headers = view.headers.clone();
    strip_hop_by_hop(&mut headers);
    for name in [
        &header::CONTENT_LENGTH,
        &header::EXPECT,
        &header::HOST,
        &X_FORWARDED_PROTO,
    ] {
        headers.remove(name);
    }
    let value = |text: &str| HeaderValue::from_str(text).map_err(|e| e.to_string());
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    headers.insert(header::HOST, value(&host)?);
    headers.insert(X_REQUEST_ID.clone(), request_id.clone());
    let request_uri = view.uri.path_and_query().map_or("/", |p| p.as_str());
    let client = view.client;
    let pass_scheme = if client.is_https() { "https" } else { "http" };
    if auth.method.is_some() {
        headers.insert(X_ORIGINAL_URI.clone(), value(request_uri)?);
        headers.insert(X_SCHEME.clone(), HeaderValue::from_static(pass_scheme));
    }
    let scheme = if client.https { "https" } else { "http" };
    headers.insert(
        X_ORIGINAL_URL.clone(),
        value(&format!("{scheme}://{}{request_uri}", view.host))?,
    );
    headers.insert(X_ORIGINAL_METHOD.clone(), value(view.method.as_str())?);
    headers.insert(
        X_SENT_FROM.clone(),
        HeaderValue::from_static("nginx-ingress-controller"),
    );
    headers.insert(X_REAL_IP.clone(), client.remote_ip.clone());
    let full_for = client.forwarded.as_deref().and_then(|f| f.full_for.clone());
    headers.insert(
        X_FORWARDED_FOR.clone(),
        full_for.unwrap_or_else(|| client.remote_ip.clone()),
    );
    let redirect = match &auth.request_redirect {
        Some(t) => expand_value(t, view),
        None => value(request_uri).ok(),
    };
    match redirect {
        Some(v) => {
            headers.insert(X_AUTH_REQUEST_REDIRECT.clone(), v);
        }
        None => {
            headers.remove(&X_AUTH_REQUEST_REDIRECT);
        }
    }
    let evaluated = super::headers::evaluate(&auth.proxy_set_headers, view);
    super::headers::set_upstream(&auth.proxy_set_headers, &evaluated, &mut headers);

    let mut request = Request::new(RequestBody::Empty);
    *request.method_mut() = auth.method.clone().unwrap_or(Method::GET);
    *request.uri_mut() = url
        .path_and_query
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    *request.headers_mut() = headers;
    Ok(request)
}

fn expand_value(template: &Template, view: &View<'_>) -> Option<HeaderValue> {
    HeaderValue::from_str(&expand(template, view, None, Escape::None)).ok()
}

/// The `X-Request-ID` of a request: the client's, else a fresh one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&X_REQUEST_ID)
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// True when the auth answer's `Set-Cookie` goes on a response with `status`
/// (nginx's `add_header` without `always` covers these statuses).
pub fn cookies_apply(status: StatusCode, always: bool) -> bool {
    always
        || matches!(
            status.as_u16(),
            200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
        )
}

#[cfg(test)]
mod tests;
