//! Request policies per request: the ingress-nginx annotations and ConfigMap settings
//! that act on requests, evaluated against the location's compiled
//! [`CompiledPolicies`] (built at apply time by [`gangplank_store::policy`], which also
//! documents what fails closed).
//!
//! The handler calls [`admit`] once, right after the location is found, and gets a
//! [`Verdict`]: proceed (with an [`Admitted`] that adjusts the upstream request and
//! decorates the response), an answer of the proxy's own (redirect, 401, 204
//! preflight), or an error status. Checks run in this order:
//!
//! 1. real client address from trusted forwarded headers ([`realip`]);
//! 2. fail closed: a location with a policy that cannot be enforced answers 503;
//! 3. ConfigMap `block-cidrs`, `block-user-agents`, `block-referers`: 403;
//! 4. `denylist-source-range`, then `allowlist-source-range`: 403 (with `satisfy any`
//!    and basic auth, valid credentials may still admit);
//! 5. `proxy-body-size` against a declared `Content-Length`: 413;
//! 6. the `www.` twin of `from-to-www-redirect`, then the HTTPS redirect
//!    (`ssl-redirect`, `force-ssl-redirect`): `http-redirect-code` (308);
//! 7. CORS preflight (`OPTIONS` with an allowed origin): 204;
//! 8. `limit-rps`, `limit-rpm`, then `limit-connections`, per real client address
//!    ([`limit`], per-worker state): `limit-req-status-code` /
//!    `limit-conn-status-code` (503);
//! 9. basic or digest authentication: 401 ([`auth`], [`digest`]);
//! 10. external authentication (`auth-url`, `global-auth-url`): 401, a 302 to
//!     `auth-signin`, 403 or 500 ([`extauth`]);
//! 11. `temporal-redirect` / `permanent-redirect`, then `app-root` for `/`;
//! 12. `backend-protocol` the proxy does not speak (`FCGI`): 502;
//! 13. `rewrite-target` (302 for an absolute target), `proxy-set-headers` values.
//!
//! This is ingress-nginx's documented order (deny list, allow list, rate limit, auth,
//! redirect) with nginx's phases where they matter for safety or compatibility: the
//! HTTPS redirect and the CORS preflight come before authentication, as in nginx
//! (rewrite phase before access phase), so credentials are never asked for over plain
//! HTTP and preflights (which carry no credentials) still work. For the same reason
//! they do not count against rate limits (nginx's rewrite phase runs before
//! `limit_req`); requests the address lists refuse do not count either.
//!
//! Responses of the location, the proxy's own answers included, get the configured
//! response headers, CORS headers and HSTS ([`Admitted::decorate`]). Deliberate
//! difference: error pages the proxy produces after admission (502, 503, 504) do not.
//!
//! What happens to the upstream's response (`use-gzip`, `limit-rate`,
//! `proxy-cookie-*`, `proxy-redirect-*`) and the upstream `Connection` header are in
//! [`response`], called by the handler around the exchange rather than by [`admit`].
//!
//! Locations with nothing but the body size limit ([`CompiledPolicies::is_empty`]) take
//! a fast path that neither allocates nor looks at anything but `Content-Length`.

pub mod access;
pub mod auth;
pub mod body;
pub mod cors;
pub mod digest;
pub mod extauth;
pub mod headers;
pub mod limit;
pub mod realip;
pub mod redirect;
pub mod response;
pub mod rewrite;
pub mod template;

use gangplank_store::{CertificateTable, CompiledLocation, CompiledPolicies};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

pub use body::{BodyError, LimitedBody, too_large};

use crate::body::{ProxyBody, RequestBody};
use crate::headers::{ClientInfo, host_without_port};
use crate::pages::error_page;
use template::{Escape, View};

/// What the policies decided.
#[derive(Debug)]
pub enum Verdict<'p> {
    /// Proxy the request, adjusted by the [`Admitted`].
    Proceed(Admitted<'p>),
    /// Answer with this response (redirects, 401, 204 preflight), already decorated.
    Answer(Response<ProxyBody>),
    /// Answer with this status's error page (403, 413, 503, 502...).
    Reject(StatusCode),
}

/// A request the policies let through, and what they still do to it.
#[derive(Debug)]
pub struct Admitted<'p> {
    policies: &'p CompiledPolicies,
    /// `Access-Control-Allow-Origin` when CORS applies to this request.
    cors_origin: Option<HeaderValue>,
    /// HSTS applies (HTTPS connection, host with its own certificate).
    hsts: bool,
    /// The rewritten request target (`rewrite-target`).
    rewritten: Option<Uri>,
    /// `proxy-set-headers` values with variables, evaluated.
    evaluated: Vec<(HeaderName, HeaderValue)>,
    /// The `limit-connections` slot this request holds.
    connection: Option<limit::ConnectionGuard>,
    /// What external authentication granted (headers, cookies).
    external: Option<Box<extauth::Granted>>,
    /// `ssl-client-*` headers for the upstream (`auth-tls-*`).
    client_cert: crate::client_cert::UpstreamHeaders,
}

/// Evaluates `location`'s policies for `request`. `client` gets the real client
/// address and trusted forwarded values; `host` is the request host (port included)
/// and `path` the normalised path.
pub async fn admit<'p, B>(
    location: &'p CompiledLocation,
    certificates: &CertificateTable,
    request: &Request<B>,
    client: &mut ClientInfo,
    host: &str,
    path: &str,
) -> Verdict<'p> {
    let p: &'p CompiledPolicies = &location.policies;
    let headers = request.headers();
    let mut admitted = Admitted {
        policies: p,
        cors_origin: None,
        hsts: false,
        rewritten: None,
        evaluated: Vec::new(),
        connection: None,
        external: None,
        client_cert: Vec::new(),
    };
    let too_large = |headers: &HeaderMap| {
        p.body_limit
            .is_some_and(|limit| body::declared_length(headers).is_some_and(|len| len > limit))
    };
    if p.is_empty() {
        if too_large(headers) {
            return Verdict::Reject(StatusCode::PAYLOAD_TOO_LARGE);
        }
        return Verdict::Proceed(admitted);
    }

    if let Some(real) = &p.global.real_ip {
        realip::apply(real, headers, client);
    }
    if let Some(reason) = &p.unavailable {
        tracing::warn!(location = %p.name, %reason, "location not served (fail closed)");
        return Verdict::Reject(StatusCode::SERVICE_UNAVAILABLE);
    }
    let ip = client.remote.ip();
    if access::blocked(&p.global, ip, headers) {
        tracing::debug!(location = %p.name, client = %ip, "blocked by the ConfigMap's block-cidrs, block-user-agents or block-referers");
        return Verdict::Reject(StatusCode::FORBIDDEN);
    }
    let lists_admit = access::lists_admit(p, ip);
    if !lists_admit && !p.satisfy_any {
        tracing::debug!(location = %p.name, client = %ip, "forbidden by denylist/allowlist-source-range");
        return Verdict::Reject(StatusCode::FORBIDDEN);
    }
    if too_large(headers) {
        return Verdict::Reject(StatusCode::PAYLOAD_TOO_LARGE);
    }

    // From here on, the proxy's own answers carry the location's response headers.
    if let Some(cors) = &p.cors {
        admitted.cors_origin = cors::allowed_origin(cors, headers);
    }
    admitted.hsts = p.hsts_possible && client.https && host_has_certificate(p, certificates, host);

    let request_uri = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let forwarded = client.forwarded.as_deref();
    if let Some(www) = &p.www_redirect {
        let port = forwarded
            .and_then(|f| f.port.as_ref())
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(client.local_port);
        let target = redirect::www_target(client.is_https(), &www.host, port, request_uri);
        return Verdict::Answer(admitted.redirect(www.code, &target));
    }
    if let Some(r) = &p.ssl_redirect
        && redirect::wants_https(r, client.is_https(), || {
            host_has_certificate(p, certificates, host)
        })
    {
        let best_host = forwarded
            .and_then(|f| f.host.as_ref())
            .and_then(|v| v.to_str().ok())
            .unwrap_or(host);
        let port = p.response.port_in_redirects.then_some(client.https_port);
        let target =
            redirect::https_target(best_host, request_uri, r.preserve_trailing_slash, port);
        return Verdict::Answer(admitted.redirect(r.code, &target));
    }
    if let Some(auth) = &p.client_auth {
        match crate::client_cert::check(auth, client, &p.hostname) {
            Ok(headers) => admitted.client_cert = headers,
            Err(refusal) => {
                tracing::debug!(location = %p.name, ?refusal, "client certificate refused");
                if let crate::client_cert::Refusal::Invalid(Some(page)) = &refusal {
                    let mut response = error_page(StatusCode::FOUND);
                    response
                        .headers_mut()
                        .insert(header::LOCATION, page.clone());
                    return Verdict::Answer(response);
                }
                return Verdict::Reject(refusal.status());
            }
        }
    }
    if admitted.cors_origin.is_some() && request.method() == Method::OPTIONS {
        let mut response = Response::new(ProxyBody::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
            .headers_mut()
            .insert(header::SERVER, crate::pages::SERVER);
        admitted.decorate(response.headers_mut());
        cors::preflight_headers(response.headers_mut());
        return Verdict::Answer(response);
    }
    if let Some(limits) = &p.rate_limits {
        match limit::check(limits, ip, &p.name) {
            Ok(connection) => admitted.connection = connection,
            Err(status) => return Verdict::Reject(status),
        }
    }
    if let Some(auth) = &p.basic_auth
        && !(p.satisfy_any && lists_admit)
        && !Box::pin(auth::check(auth, headers)).await
    {
        let mut response = error_page(StatusCode::UNAUTHORIZED);
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, auth.challenge.clone());
        admitted.decorate(response.headers_mut());
        return Verdict::Answer(response);
    }
    if let Some(auth) = &p.digest_auth
        && !(p.satisfy_any && lists_admit)
    {
        let check = digest::check(auth, request.method(), request.uri(), headers);
        if check != digest::Check::Ok {
            let mut response = error_page(StatusCode::UNAUTHORIZED);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                digest::challenge(auth, check == digest::Check::Stale),
            );
            admitted.decorate(response.headers_mut());
            return Verdict::Answer(response);
        }
    }

    let view = View {
        method: request.method(),
        uri: request.uri(),
        headers,
        client,
        host,
        path,
        server_name: &p.hostname,
    };
    if let Some(auth) = &p.external_auth
        && !(p.satisfy_any && lists_admit)
    {
        let request_id = extauth::request_id(headers);
        // Boxed: the auth client's future would otherwise size every request's.
        match Box::pin(extauth::check(auth, &p.name, &view, &request_id)).await {
            extauth::Decision::Allow { headers, cookies } => {
                admitted.external = Some(Box::new(extauth::Granted {
                    headers,
                    cookies,
                    always_set_cookie: auth.always_set_cookie,
                    request_id,
                }));
            }
            denied => return Verdict::Answer(admitted.auth_denied(denied, auth.always_set_cookie)),
        }
    }
    if let Some(r) = &p.redirect {
        let captures = location.regex.as_ref().and_then(|re| re.captures(path));
        let target = template::expand(&r.url, &view, captures.as_ref(), Escape::Uri);
        return Verdict::Answer(admitted.redirect(r.code, &target));
    }
    if let Some(root) = &p.app_root
        && path == "/"
    {
        let target = redirect::app_root_target(client.is_https(), host, root);
        return Verdict::Answer(admitted.redirect(StatusCode::FOUND, &target));
    }
    if let Some(unsupported) = p.unsupported_protocol
        && (client.https || !unsupported.https_clients_only)
    {
        tracing::error!(location = %p.name, protocol = %unsupported.protocol, "backend-protocol not supported (FastCGI is out of scope): refusing to send HTTP to this upstream");
        return Verdict::Reject(StatusCode::BAD_GATEWAY);
    }
    if let Some(rule) = &p.rewrite {
        let target = rewrite::rewrite(rule, location.regex.as_ref(), &view);
        if rule.redirect {
            return Verdict::Answer(admitted.redirect(StatusCode::FOUND, &target));
        }
        match Uri::try_from(target) {
            Ok(uri) => admitted.rewritten = Some(uri),
            Err(e) => {
                tracing::warn!(location = %p.name, error = %e, "rewrite-target produced an invalid URI");
                return Verdict::Reject(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    }
    admitted.evaluated = headers::evaluate(&p.global.proxy_set_headers, &view);
    Verdict::Proceed(admitted)
}

/// True when `host` (a request host, port allowed) has a certificate of its own.
fn host_has_certificate(p: &CompiledPolicies, certificates: &CertificateTable, host: &str) -> bool {
    let name = host_without_port(host);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.eq_ignore_ascii_case(&p.hostname) {
        p.hostname_has_certificate
    } else {
        certificates.has_own_certificate(name)
    }
}

impl Admitted<'_> {
    /// The `limit-connections` slot of this request, to keep until the response ends
    /// (its body completes or is dropped) or, for an upgraded connection, until the
    /// tunnel closes. Dropping the `Admitted` without taking it frees the slot.
    pub fn take_connection_guard(&mut self) -> Option<limit::ConnectionGuard> {
        self.connection.take()
    }

    /// The body to send upstream: the client's, counted against `proxy-body-size` when
    /// its length was not declared up front.
    pub fn request_body(&self, body: Incoming) -> RequestBody {
        use http_body::Body as _;
        match self.policies.body_limit {
            Some(limit) if body.size_hint().exact().is_none() => {
                RequestBody::Limited(LimitedBody::new(body, limit))
            }
            _ => RequestBody::Client(body),
        }
    }

    /// Adjusts the upstream request after the standard forwarded headers were set:
    /// the rewritten target, `X-Forwarded-Prefix`, no `Authorization` behind basic
    /// or digest auth, the `auth-response-headers` of external auth,
    /// `proxy-set-headers`.
    pub fn upstream_request(&self, parts: &mut http::request::Parts) {
        let p = self.policies;
        if p.is_empty() {
            return;
        }
        if let Some(uri) = &self.rewritten {
            parts.uri = uri.clone();
            if let Some(prefix) = p
                .rewrite
                .as_ref()
                .and_then(|r| r.x_forwarded_prefix.as_ref())
            {
                parts.headers.insert(
                    HeaderName::from_static("x-forwarded-prefix"),
                    prefix.clone(),
                );
            }
        }
        if p.basic_auth.is_some() || p.digest_auth.is_some() {
            parts.headers.remove(header::AUTHORIZATION);
        }
        if let Some(granted) = &self.external {
            granted.upstream_request(&mut parts.headers);
        }
        crate::client_cert::set_upstream(&self.client_cert, &mut parts.headers);
        headers::set_upstream(
            &p.global.proxy_set_headers,
            &self.evaluated,
            &mut parts.headers,
        );
    }

    /// Sets the location's response headers: `add-headers`, `custom-headers`, CORS,
    /// HSTS.
    pub fn decorate(&self, headers: &mut HeaderMap) {
        let p = self.policies;
        if p.is_empty() {
            return;
        }
        headers::set_response(&p.response_headers, headers);
        if let (Some(cors), Some(origin)) = (&p.cors, &self.cors_origin) {
            cors::decorate(cors, origin, headers);
        }
        if self.hsts
            && let Some(value) = &p.global.hsts
        {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, value.clone());
        }
    }

    /// Adds what external authentication asks for to a client response with
    /// `status`: the auth answer's `Set-Cookie` (see [`extauth`]).
    pub fn auth_cookies(&self, status: StatusCode, headers: &mut HeaderMap) {
        if let Some(granted) = &self.external {
            granted.response(status, headers);
        }
    }

    /// The decorated answer to a request external authentication refused.
    fn auth_denied(&self, denied: extauth::Decision, always: bool) -> Response<ProxyBody> {
        let (mut response, cookies) = match denied {
            extauth::Decision::Unauthorized { challenge, cookies } => {
                let mut response = error_page(StatusCode::UNAUTHORIZED);
                for value in challenge {
                    response
                        .headers_mut()
                        .append(header::WWW_AUTHENTICATE, value);
                }
                (response, cookies)
            }
            extauth::Decision::SignIn { location, cookies } => {
                let mut response = error_page(StatusCode::FOUND);
                response.headers_mut().insert(header::LOCATION, location);
                (response, cookies)
            }
            extauth::Decision::Forbidden { cookies } => {
                (error_page(StatusCode::FORBIDDEN), cookies)
            }
            extauth::Decision::Failed { cookies } | extauth::Decision::Allow { cookies, .. } => {
                (error_page(StatusCode::INTERNAL_SERVER_ERROR), cookies)
            }
        };
        if extauth::cookies_apply(response.status(), always) {
            for cookie in cookies {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
        }
        self.decorate(response.headers_mut());
        response
    }

    /// A decorated redirect to `target`.
    fn redirect(&self, code: StatusCode, target: &str) -> Response<ProxyBody> {
        match HeaderValue::from_str(target) {
            Ok(location) => {
                let mut response = error_page(code);
                response.headers_mut().insert(header::LOCATION, location);
                self.decorate(response.headers_mut());
                self.auth_cookies(code, response.headers_mut());
                response
            }
            Err(_) => {
                tracing::warn!(location = %self.policies.name, "a redirect target is not a valid header value");
                error_page(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

#[cfg(test)]
mod tests;
