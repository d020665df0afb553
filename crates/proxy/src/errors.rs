//! Custom error pages (`custom-http-errors`, `default-backend`,
//! `disable-proxy-intercept-errors`; Part B §6.4).
//!
//! When a location's upstream answers with a listed status, or the proxy itself fails
//! the request with one after the location admitted it (503 without endpoints, 502,
//! 504, the built-in default backend's 404, 404 for requests no location matched), the
//! upstream's body is discarded and the error backend (the location's
//! [`CustomErrors::backend`]) is asked `GET /` with `X-Code`, `X-Format`,
//! `X-Original-URI`, `X-Namespace`, `X-Ingress-Name`, `X-Service-Name`,
//! `X-Service-Port`, `X-Request-ID`, `X-Forwarded-For` and `Host`. Its body goes to the
//! client **with the original status**; when it fails or has no endpoints the client
//! gets the proxy's own page for that status.
//!
//! Security (CVE-2026-24513): the error request is built here from those headers only;
//! it never carries the client's `Authorization`, `Cookie` or body, never goes through
//! routing (no client can address it), never reaches the location's own upstream
//! unless the operator named that Service as the error backend, and cannot turn a 401
//! or 403 into a success because the status is always the original one. The
//! answers of the request policies (401 from basic auth, 403 from address lists,
//! limits, redirects) are never sent through the error backend: they keep the proxy's
//! own page (a deliberate difference with ingress-nginx, where `error_page` also
//! catches them).

use std::net::SocketAddr;
use std::sync::Arc;

use gangplank_store::policy::CustomErrors;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::balancer::PickRequest;
use crate::balancers::BalancerTable;
use crate::body::{ProxyBody, RequestBody};
use crate::handler::WorkerContext;
use crate::headers::ClientInfo;
use crate::pages::error_page;
use crate::upstream::Timeouts;

static X_CODE: HeaderName = HeaderName::from_static("x-code");
static X_FORMAT: HeaderName = HeaderName::from_static("x-format");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_NAMESPACE: HeaderName = HeaderName::from_static("x-namespace");
static X_INGRESS_NAME: HeaderName = HeaderName::from_static("x-ingress-name");
static X_SERVICE_NAME: HeaderName = HeaderName::from_static("x-service-name");
static X_SERVICE_PORT: HeaderName = HeaderName::from_static("x-service-port");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// At most this many endpoints of the error backend are tried.
const MAX_TRIES: usize = 3;

/// What a request needs for its error page, captured before it is forwarded.
#[derive(Debug)]
pub struct ErrorPath {
    errors: Arc<CustomErrors>,
    table: Arc<BalancerTable>,
    host: HeaderValue,
    accept: Option<HeaderValue>,
    original_uri: HeaderValue,
    client_request_id: Option<HeaderValue>,
    remote: HeaderValue,
    timeouts: Timeouts,
    generate_request_id: bool,
}

impl ErrorPath {
    /// The error path of `request` under `errors`.
    pub fn new<B>(
        errors: Arc<CustomErrors>,
        table: Arc<BalancerTable>,
        request: &Request<B>,
        host: &HeaderValue,
        client: &ClientInfo,
        timeouts: Timeouts,
        generate_request_id: bool,
    ) -> Box<ErrorPath> {
        let uri = request.uri();
        let original_uri = HeaderValue::from_str(
            uri.path_and_query()
                .map_or_else(|| uri.path(), |p| p.as_str()),
        )
        .unwrap_or(HeaderValue::from_static("/"));
        Box::new(ErrorPath {
            errors,
            table,
            host: host.clone(),
            accept: request.headers().get(header::ACCEPT).cloned(),
            original_uri,
            client_request_id: request.headers().get(&X_REQUEST_ID).cloned(),
            remote: client.remote_ip.clone(),
            timeouts,
            generate_request_id,
        })
    }
}

/// Replaces `outcome` by the error backend's page when its status is intercepted;
/// `request_id` is the id sent upstream, if the request got that far.
pub async fn intercept(
    ctx: &WorkerContext,
    outcome: Result<Response<ProxyBody>, StatusCode>,
    path: Option<Box<ErrorPath>>,
    grpc: bool,
    request_id: Option<&HeaderValue>,
) -> Result<Response<ProxyBody>, StatusCode> {
    // gRPC clients get gRPC statuses, never HTML pages.
    let Some(path) = path.filter(|_| !grpc) else {
        return outcome;
    };
    match outcome {
        Ok(response)
            if path.errors.intercept_upstream
                && path.errors.covers(response.status().as_u16())
                && matches!(
                    response.body(),
                    ProxyBody::Upstream { .. } | ProxyBody::Shaped(_)
                ) =>
        {
            let status = response.status();
            // The upstream's body is discarded (its connection is not reused); the
            // `limit-connections` slot moves to the error page's body.
            let connection = connection_slot(response.into_body());
            // Boxed: keeps the request's future small when no page is served.
            Ok(Box::pin(serve(ctx, &path, status, request_id, connection)).await)
        }
        Err(status) if path.errors.covers(status.as_u16()) => {
            Ok(Box::pin(serve(ctx, &path, status, request_id, None)).await)
        }
        other => other,
    }
}

/// The `limit-connections` slot an upstream body holds (a compressed or throttled
/// one included).
fn connection_slot(body: ProxyBody) -> Option<crate::policy::limit::ConnectionGuard> {
    match body {
        ProxyBody::Upstream { connection, .. } => connection,
        ProxyBody::Shaped(shaped) => connection_slot(shaped.into_inner()),
        ProxyBody::Full(_) => None,
    }
}

/// The error backend's page for `status`, or the proxy's own.
async fn serve(
    ctx: &WorkerContext,
    path: &ErrorPath,
    status: StatusCode,
    request_id: Option<&HeaderValue>,
    connection: Option<crate::policy::limit::ConnectionGuard>,
) -> Response<ProxyBody> {
    let backend = path.errors.backend.as_str();
    let Some(entry) = path.table.get(backend) else {
        return error_page(status);
    };
    let upstreams = &entry.backend.upstreams;
    let request_id = request_id
        .or(path.client_request_id.as_ref())
        .cloned()
        .or_else(|| {
            path.generate_request_id
                .then(crate::headers::new_request_id)
        });
    let mut tried: Vec<usize> = Vec::new();
    while tried.len() < upstreams.len().min(MAX_TRIES) {
        let Some(pick) = entry.balancer.pick(&PickRequest {
            hash_key: None,
            affinity_cookie: None,
            tried: &tried,
        }) else {
            break;
        };
        tried.push(pick.endpoint);
        let Some(upstream) = upstreams.get(pick.endpoint) else {
            break;
        };
        let Some(addr) = crate::handler::resolve(&ctx.shared.resolver, upstream).await else {
            continue;
        };
        if is_own(ctx, addr) {
            tracing::error!(backend, endpoint = %addr, "error backend endpoint is the proxy itself");
            continue;
        }
        let request = error_request(path, status, request_id.as_ref());
        match ctx.pool.send(addr, request, path.timeouts).await {
            Ok((response, checkin)) => {
                let (mut parts, body) = response.into_parts();
                crate::headers::to_client(&mut parts.headers, false);
                parts.status = status;
                let mut page = Response::from_parts(
                    parts,
                    ProxyBody::Upstream {
                        body,
                        checkin,
                        recorder: None,
                        connection,
                    },
                );
                page.body_mut().settle_if_complete();
                return page;
            }
            Err(failed) => {
                tracing::warn!(backend, endpoint = %addr, error = %failed.error, "error backend failed");
            }
        }
    }
    error_page(status)
}

fn is_own(ctx: &WorkerContext, addr: SocketAddr) -> bool {
    ctx.shared
        .self_addresses
        .iter()
        .any(|own| crate::handler::is_self(addr, *own))
}

/// The internal request to the error backend: `GET /` with the documented headers and
/// nothing of the client's but its `Accept`, URI, host and address.
fn error_request(
    path: &ErrorPath,
    status: StatusCode,
    request_id: Option<&HeaderValue>,
) -> Request<RequestBody> {
    let mut request = Request::new(RequestBody::Empty);
    *request.method_mut() = Method::GET;
    *request.uri_mut() = http::Uri::from_static("/");
    let errors = &path.errors;
    let headers = request.headers_mut();
    headers.insert(header::HOST, path.host.clone());
    headers.insert(X_CODE.clone(), HeaderValue::from(status.as_u16()));
    headers.insert(
        X_FORMAT.clone(),
        path.accept.clone().unwrap_or(HeaderValue::from_static("")),
    );
    headers.insert(X_ORIGINAL_URI.clone(), path.original_uri.clone());
    headers.insert(X_NAMESPACE.clone(), errors.namespace.clone());
    headers.insert(X_INGRESS_NAME.clone(), errors.ingress_name.clone());
    headers.insert(X_SERVICE_NAME.clone(), errors.service_name.clone());
    headers.insert(X_SERVICE_PORT.clone(), errors.service_port.clone());
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID.clone(), id.clone());
    }
    headers.insert(X_FORWARDED_FOR.clone(), path.remote.clone());
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_request_carries_no_client_credentials() {
        let errors = CustomErrors::global(&gangplank_model::GeneralConfig {
            custom_http_errors: Some(vec![404]),
            ..Default::default()
        })
        .map(Arc::new)
        .unwrap();
        let client_request = Request::get("/secret/page?q=1")
            .header("authorization", "Basic dTpw")
            .header("cookie", "session=abc")
            .header("accept", "application/json")
            .header("x-request-id", "client-id")
            .body(())
            .unwrap();
        let client = ClientInfo::new("192.0.2.7:5555".parse().unwrap(), 80, false);
        let path = ErrorPath::new(
            errors,
            Arc::new(BalancerTable::default()),
            &client_request,
            &HeaderValue::from_static("app.test"),
            &client,
            Timeouts {
                connect: std::time::Duration::from_secs(1),
                read: std::time::Duration::from_secs(1),
            },
            true,
        );
        let request = error_request(&path, StatusCode::NOT_FOUND, None);
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "/");
        let h = request.headers();
        assert_eq!(h["x-code"], "404");
        assert_eq!(h["x-format"], "application/json");
        assert_eq!(h["x-original-uri"], "/secret/page?q=1");
        assert_eq!(h["host"], "app.test");
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert!(!h.contains_key("authorization"));
        assert!(!h.contains_key("cookie"));
        assert!(!h.contains_key("x-request-id"), "only the id given is sent");
    }
}
