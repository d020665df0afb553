//! One request: route it, pick an endpoint, forward it, stream the answer back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use gangplank_model::expr::{Part, Variable};
use gangplank_model::policy::NextUpstream;
use gangplank_store::{CompiledBackend, Status, Store, Upstream};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

use crate::balancer::{PickRequest, canary, sticky};
use crate::balancers::{Balancers, Entry};
use crate::body::{ProxyBody, Recorder, RequestBody};
use crate::drive::InFlight;
use crate::headers::cookie;
use crate::headers::{self, ClientInfo};
use crate::pages::error_page;
use crate::telemetry::{RequestRecord, Telemetry};
use crate::upstream::{Pool, Timeouts, Transport};

/// What every worker shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration store.
    pub store: Arc<Store>,
    /// stub_status counters.
    pub status: Arc<Status>,
    /// Balancers of the current snapshot.
    pub balancers: Balancers,
    /// Addresses never to forward to (the proxy's own listeners).
    pub self_addresses: Vec<SocketAddr>,
    /// Access log and metrics.
    pub telemetry: Arc<Telemetry>,
    /// ExternalName lookups.
    pub resolver: crate::dns::Resolver,
    /// The first HTTPS listener's port (443 without one), for `use-port-in-redirects`.
    pub https_port: u16,
    /// `--enable-ssl-passthrough` ([`crate::passthrough`]).
    pub ssl_passthrough: bool,
}

/// One worker's view: the shared state plus its own upstream pool.
#[derive(Debug)]
pub struct WorkerContext {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// This worker's upstream connections.
    pub pool: Arc<Pool>,
}

/// Serves one request; never fails (errors become error pages). `in_flight` marks the
/// request busy on its connection until its response body ends. `last`: the
/// connection's last allowed request (`keep-alive-requests`), answered with
/// `Connection: close` so hyper closes the HTTP/1 connection after it.
pub async fn handle(
    ctx: Arc<WorkerContext>,
    client: ClientInfo,
    request: Request<Incoming>,
    in_flight: InFlight,
    last: bool,
) -> Result<Response<ProxyBody>, Infallible> {
    let _in_flight = ctx.shared.status.request_started();
    let started = Instant::now();
    let mut record = Box::new(new_record(&request, &client));
    let telemetry = ctx.shared.telemetry.clone();
    // Set for gRPC calls to gRPC locations: the proxy's own 502/503/504 become gRPC
    // statuses (`upstream::grpc`).
    let mut grpc = false;
    // Set when custom error pages apply to the request (`crate::errors`).
    let mut error_path = None;
    // ConfigMap `server-tokens`, read from the request's snapshot.
    let mut server_tokens = false;
    let outcome = proxy(
        &ctx,
        client,
        request,
        &mut record,
        &mut grpc,
        &mut error_path,
        &mut server_tokens,
    )
    .await;
    let outcome =
        crate::errors::intercept(&ctx, outcome, error_path, grpc, record.request_id.as_ref()).await;
    let mut response = match outcome {
        Ok(mut response) => {
            record.status = response.status().as_u16();
            match response.body_mut() {
                ProxyBody::Upstream { recorder, .. } => {
                    *recorder = Some(Recorder::new(record, started, telemetry, in_flight));
                }
                ProxyBody::Shaped(body) => {
                    body.set_recorder(Recorder::new(record, started, telemetry, in_flight));
                }
                // The proxy's own answers (policy redirects, 401, 204 preflights).
                ProxyBody::Full(bytes) => {
                    record.body_bytes_sent = bytes.as_ref().map_or(0, |b| b.len() as u64);
                    record.duration = started.elapsed();
                    telemetry.record(*record);
                }
            }
            response.body_mut().settle_if_complete();
            response
        }
        Err(status) => {
            let page = grpc
                .then(|| crate::upstream::grpc::error_answer(status))
                .flatten()
                .unwrap_or_else(|| error_page(status));
            record.status = status.as_u16();
            record.body_bytes_sent = http_body::Body::size_hint(page.body()).exact().unwrap_or(0);
            record.duration = started.elapsed();
            telemetry.record(*record);
            page
        }
    };
    // ConfigMap `server-tokens`: the version in `Server`, on every answer.
    if server_tokens {
        response
            .headers_mut()
            .insert(header::SERVER, headers::SERVER_WITH_VERSION);
    }
    if last {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// Length of the request target as sent (`path?query`).
fn target_len(uri: &Uri) -> usize {
    uri.path_and_query().map_or(1, |p| p.as_str().len())
}

/// The record of a request as it arrives; the rest is filled in on the way.
fn new_record(request: &Request<Incoming>, client: &ClientInfo) -> RequestRecord {
    let target = request.uri().clone();
    let headers = request.headers();
    // nginx's $request_length: request line, header fields and body.
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let body_bytes = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    RequestRecord {
        // Set when the line is logged, as nginx's `$time_local` (see `Telemetry::record`).
        time: SystemTime::UNIX_EPOCH,
        duration: Duration::ZERO,
        remote_addr: client.remote.ip(),
        method: request.method().clone(),
        request_length: (request.method().as_str().len() + target_len(&target) + 12 + header_bytes)
            as u64
            + body_bytes,
        target,
        version: request.version(),
        status: 0,
        body_bytes_sent: 0,
        referer: headers.get(header::REFERER).cloned(),
        user_agent: headers.get(header::USER_AGENT).cloned(),
        request_id: None,
        labels: None,
        canary: None,
        upstream_addr: None,
        upstream_status: None,
        upstream_response_time: None,
        access_log: true,
    }
}

/// The request's host: `:authority` (HTTP/2, absolute-form) or `Host`.
fn request_host(request: &Request<Incoming>) -> Option<HeaderValue> {
    if let Some(authority) = request.uri().authority() {
        return HeaderValue::from_str(authority.as_str()).ok();
    }
    request.headers().get(header::HOST).cloned()
}

async fn proxy(
    ctx: &WorkerContext,
    client: ClientInfo,
    mut request: Request<Incoming>,
    record: &mut RequestRecord,
    grpc: &mut bool,
    error_path: &mut Option<Box<crate::errors::ErrorPath>>,
    server_tokens: &mut bool,
) -> Result<Response<ProxyBody>, StatusCode> {
    let shared = &ctx.shared;
    let mut snapshot = shared.store.snapshot();
    let mut table = shared.balancers.for_snapshot(&snapshot);
    if table.version() > snapshot.version {
        snapshot = shared.store.snapshot();
        table = shared.balancers.for_snapshot(&snapshot);
    }

    let general = &snapshot.source.general;
    *server_tokens = general.server_tokens();
    if !general.enable_underscores_in_headers() && general.ignore_invalid_headers() {
        headers::drop_underscored(request.headers_mut());
    }
    let host_value = request_host(&request).ok_or(StatusCode::BAD_REQUEST)?;
    let host = host_value.to_str().map_err(|_| StatusCode::BAD_REQUEST)?;
    let path = crate::path::normalize(request.uri().path()).ok_or(StatusCode::BAD_REQUEST)?;

    let route = snapshot.routes.route(host, &path);
    let Some((server, location)) = route.and_then(|r| Some((r.server, r.location?))) else {
        // No location: the ConfigMap's custom errors may still serve the 404.
        if let Some(errors) = gangplank_store::policy::CustomErrors::global(general) {
            *error_path = Some(crate::errors::ErrorPath::new(
                Arc::new(errors),
                table.clone(),
                &request,
                &host_value,
                &client,
                Timeouts {
                    connect: general.proxy_connect_timeout(),
                    read: general.proxy_read_timeout(),
                },
                general.generate_request_id(),
            ));
        }
        return Err(StatusCode::NOT_FOUND);
    };
    record.labels = Some(location.labels.clone());
    record.access_log = location.source.logs.access;
    let upstream_settings = &location.policies.upstream;
    if upstream_settings.protocol.is_grpc() {
        *grpc = crate::upstream::grpc::is_grpc_request(request.headers());
    }
    if let Some(reason) = &location.source.denied {
        tracing::warn!(host, path = %location.source.path, %reason, "location denied by an invalid annotation");
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    // Request policies (`crate::policy`): access control, redirects, authentication,
    // CORS, body size, rewrites; they may answer the request themselves.
    let mut client = client;
    let verdict = crate::policy::admit(
        location,
        &snapshot.certificates,
        &request,
        &mut client,
        host,
        &path,
    )
    .await;
    // The real client address (`use-forwarded-headers`) is nginx's `$remote_addr`.
    record.remote_addr = client.remote.ip();
    let mut admitted = match verdict {
        crate::policy::Verdict::Proceed(admitted) => admitted,
        crate::policy::Verdict::Answer(response) => return Ok(response),
        crate::policy::Verdict::Reject(status) => return Err(status),
    };
    let proxy_settings = &location.source.proxy;
    let timeouts = Timeouts {
        connect: proxy_settings
            .connect_timeout
            .map_or_else(|| general.proxy_connect_timeout(), |d| d.as_duration()),
        read: proxy_settings
            .read_timeout
            .map_or_else(|| general.proxy_read_timeout(), |d| d.as_duration()),
    };
    if let Some(errors) = &location.policies.errors {
        *error_path = Some(crate::errors::ErrorPath::new(
            errors.clone(),
            table.clone(),
            &request,
            &host_value,
            &client,
            timeouts,
            general.generate_request_id(),
        ));
    }
    // The catch-all location of a server whose default backend has no endpoints is
    // answered by the built-in default backend: 404, as ingress-nginx's 127.0.0.1:8181.
    let builtin_default = || {
        location.source.is_def_backend
            && location
                .backend
                .as_ref()
                .is_none_or(|b| b.upstreams.is_empty())
    };
    if builtin_default() {
        return Err(StatusCode::NOT_FOUND);
    }
    let Some(backend) = &location.backend else {
        tracing::warn!(host, backend = %location.source.backend, "no such backend");
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    };
    let Some(primary) = table.get(backend.name()) else {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    };
    let entry = match choose_canary(&table, primary, &request) {
        Some(canary) => {
            record.canary = Some(canary.backend.name().to_owned());
            canary
        }
        None => primary,
    };
    let backend = &entry.backend;
    if backend.upstreams.is_empty() {
        tracing::warn!(host, backend = %backend.name(), "backend has no endpoints");
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }

    let conditions = proxy_settings
        .next_upstream
        .as_deref()
        .unwrap_or_else(|| general.proxy_next_upstream());
    let retry = RetryPolicy::new(conditions);
    // nginx: 0 means no limit, i.e. every endpoint once; `off` means one attempt.
    let tries = match proxy_settings
        .next_upstream_tries
        .unwrap_or_else(|| general.proxy_next_upstream_tries())
    {
        _ if retry.off => 1,
        0 => backend.upstreams.len().max(1),
        n => n as usize,
    };

    let hash_key = backend
        .hash_by
        .as_ref()
        .map(|expr| evaluate(&expr.parts, &request, &client, host));
    let affinity = &backend.source.session_affinity_config;
    let cookie_name = affinity_cookie_name(backend);
    let affinity_cookie = cookie_name
        .and_then(|name| cookie(request.headers(), name))
        .map(str::to_owned);

    // Response policies read the request first (`Accept-Encoding`, method, version).
    let exchange =
        crate::policy::response::Exchange::of(&location.policies, &request, &client, host, &path);
    // The upstream request: original URI (origin-form), forwarded headers.
    let client_upgrade = request
        .headers()
        .contains_key(header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    // `AUTO_HTTP` follows the connection's scheme (nginx's `$scheme`).
    let transport = Transport::of(&upstream_settings.protocol, client.https);
    let te_trailers = transport.is_h2() && crate::upstream::h2::wants_trailers(&parts.headers);
    // Origin-form (`/path?query`, HTTP/1's usual target) is kept as it is; an
    // absolute-form or HTTP/2 target loses its scheme and authority.
    if parts.uri.scheme().is_some()
        || parts.uri.authority().is_some()
        || parts.uri.path_and_query().is_none()
    {
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = Uri::try_from(path_and_query).map_err(|_| StatusCode::BAD_REQUEST)?;
    }
    parts.version = http::Version::HTTP_11;
    // `mirror-target` variables see the request as received (`$request_uri`).
    let mirror_uri = location.policies.mirror.as_ref().map(|_| parts.uri.clone());
    let send_host = if location.source.upstream_vhost.is_empty() {
        host_value.clone()
    } else {
        HeaderValue::from_str(&location.source.upstream_vhost)
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
    };
    let forwarding = headers::forwarding(
        &mut parts.headers,
        &send_host,
        &client,
        snapshot.source.general.generate_request_id(),
    );
    // Plain HTTP/1 upstreams get the forwarded headers as the request is sent: the
    // fast path writes them into the request head without a map insertion each. A
    // mirror copies the request's map, so it needs them in there.
    let deferred = matches!(transport, Transport::Http1) && location.policies.mirror.is_none();
    if !deferred {
        forwarding.apply(&mut parts.headers);
    }
    admitted.upstream_request(&mut parts);
    crate::policy::response::upstream_connection(
        &location.policies.response,
        &mut parts.headers,
        client_upgrade.is_some(),
    );
    // A request policy may have set its own (`proxy-set-headers`); it wins.
    record.request_id = match forwarding.generated_request_id() {
        Some(id) if location.policies.is_empty() => Some(id.clone()),
        generated => parts.headers.get("x-request-id").or(generated).cloned(),
    };
    let body = if body_is_empty(&parts.method, &body) {
        RequestBody::Empty
    } else {
        admitted.request_body(body)
    };
    let body = match (&location.policies.mirror, &mirror_uri) {
        (Some(target), Some(uri)) if client_upgrade.is_none() => {
            let view = crate::policy::template::View {
                method: &parts.method,
                uri,
                headers: &parts.headers,
                client: &client,
                host,
                path: uri.path(),
                server_name: &server.hostname,
            };
            crate::mirror::start(ctx, target, &parts, &view, body)
        }
        _ => body,
    };
    if let Transport::H2(config) = transport {
        crate::upstream::h2::prepare_request(&mut parts, config.is_some(), te_trailers);
    } else if upstream_settings.http10
        && client_upgrade.is_none()
        && http_body::Body::size_hint(&body).exact().is_some()
    {
        // `proxy-http-version: 1.0`, without keep-alive, as nginx. A body of unknown
        // length cannot be sent with HTTP/1.0 (no chunked encoding) and is not
        // buffered here: such requests stay HTTP/1.1.
        parts.version = http::Version::HTTP_10;
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let mut upstream_request = Request::from_parts(parts, body);

    let mut tried: Vec<usize> = Vec::new();
    let mut last_status = StatusCode::BAD_GATEWAY;
    // `proxy-next-upstream-timeout`: no new attempt once this much time has passed.
    let retry_deadline = upstream_settings
        .next_upstream_timeout
        .map(|limit| Instant::now() + limit);
    for attempt in 1..=tries {
        if attempt > 1
            && let Some(deadline) = retry_deadline
            && Instant::now() >= deadline
        {
            tracing::warn!(backend = %backend.name(), "proxy-next-upstream-timeout reached; no further attempt");
            return Err(last_status);
        }
        // Retrying after the request was sent (an upstream that resets or times out
        // mid-exchange, or answers a listed `http_NNN` status) needs the request
        // again: a copy is kept for body-less idempotent requests, when a retry
        // condition applies and another endpoint exists, as nginx retries them
        // under its default `proxy_next_upstream error timeout`.
        // The fast path hands a failed body-less request back by itself
        // (`Failed::resend`): no copy is needed unless a status may send it again.
        let hands_back = matches!(transport, Transport::Http1)
            && crate::upstream::h1::eligible(&upstream_request);
        let spare = (attempt < tries
            && backend.upstreams.len() > tried.len() + 1
            && (!retry.statuses.is_empty() || !hands_back && (retry.error || retry.timeout)))
            .then(|| spare_request(&upstream_request, &retry))
            .flatten();
        let pick = entry.balancer.pick(&PickRequest {
            hash_key: hash_key.as_deref(),
            affinity_cookie: affinity_cookie.as_deref(),
            tried: &tried,
        });
        let Some(pick) = pick else {
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        };
        let Some(upstream) = backend.upstreams.get(pick.endpoint) else {
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        };
        let addr = match resolve(&shared.resolver, upstream).await {
            Some(addr) => addr,
            None => {
                tracing::warn!(backend = %backend.name(), endpoint = %upstream, "endpoint name does not resolve");
                tried.push(pick.endpoint);
                continue;
            }
        };
        if shared.self_addresses.iter().any(|own| is_self(addr, *own)) {
            tracing::error!(backend = %backend.name(), endpoint = %addr, "attempted to proxy to self");
            tried.push(pick.endpoint);
            continue;
        }
        let started = Instant::now();
        record.upstream_addr = Some(addr);
        let sent = match transport {
            Transport::Http1 => {
                ctx.pool
                    .send_forwarded(
                        addr,
                        upstream_request,
                        deferred.then_some(&forwarding),
                        timeouts,
                    )
                    .await
            }
            // Boxed: keeps this function's future as small as the plain path needs.
            other => {
                let name = match upstream {
                    Upstream::Name { host, .. } => Some(host.as_str()),
                    Upstream::Addr(_) => None,
                };
                Box::pin(
                    ctx.pool
                        .send_with(addr, name, other, upstream_request, timeouts),
                )
                .await
            }
        };
        match sent {
            Ok((mut response, checkin)) => {
                let elapsed = started.elapsed();
                entry.balancer.observe(pick.endpoint, elapsed);
                record.upstream_status = Some(response.status().as_u16());
                record.upstream_response_time = Some(elapsed);
                if let Some(spare) =
                    spare.filter(|_| retry.statuses.contains(&response.status().as_u16()))
                {
                    tracing::warn!(backend = %backend.name(), endpoint = %addr, status = response.status().as_u16(), "upstream answered a proxy-next-upstream status; trying the next endpoint");
                    last_status = response.status();
                    tried.push(pick.endpoint);
                    upstream_request = spare;
                    continue;
                }
                let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
                if switching && let Some(client_upgrade) = client_upgrade {
                    let upstream_upgrade = hyper::upgrade::on(&mut response);
                    // The tunnel holds the `limit-connections` slot while it lasts.
                    let connection = admitted.take_connection_guard();
                    tokio::spawn(pipe_upgraded(client_upgrade, upstream_upgrade, connection));
                }
                let (mut parts, body) = response.into_parts();
                headers::to_client(&mut parts.headers, switching);
                admitted.decorate(&mut parts.headers);
                admitted.auth_cookies(parts.status, &mut parts.headers);
                let shape = if switching {
                    crate::policy::response::Shape::default()
                } else {
                    crate::policy::response::respond(
                        &location.policies,
                        &exchange,
                        parts.status,
                        &mut parts.headers,
                    )
                };
                if let Some(value) = &pick.set_cookie {
                    let server_name = server.hostname.as_str();
                    let cookie_host = crate::headers::host_without_port(host);
                    // ingress-nginx's `$location_path`: the path as written in the Ingress.
                    let location_path = if location.source.ingress_path.is_empty() {
                        location.source.path.as_str()
                    } else {
                        location.source.ingress_path.as_str()
                    };
                    if sticky::cookie_may_be_set(
                        &affinity.cookie_session_affinity,
                        cookie_host,
                        server_name,
                        location_path,
                    ) {
                        let set = sticky::set_cookie_header(
                            &affinity.cookie_session_affinity,
                            value,
                            location_path,
                            client.https,
                            record.user_agent.as_ref().and_then(|v| v.to_str().ok()),
                            unix_now(),
                        );
                        if let Ok(v) = HeaderValue::from_str(&set) {
                            parts.headers.append(header::SET_COOKIE, v);
                        }
                    }
                }
                return Ok(Response::from_parts(
                    parts,
                    shape.body(ProxyBody::Upstream {
                        body,
                        checkin,
                        recorder: None,
                        connection: admitted.take_connection_guard(),
                    }),
                ));
            }
            Err(failed) => {
                if crate::policy::too_large(&failed.error) {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                tracing::warn!(backend = %backend.name(), endpoint = %addr, error = %failed.error, "upstream failed");
                // A failure counts as the slowest possible answer, so EWMA stops
                // preferring an endpoint that refuses connections (ingress-nginx
                // records nothing and keeps trying it first).
                entry.balancer.observe(pick.endpoint, timeouts.connect);
                last_status = failed.error.status();
                tried.push(pick.endpoint);
                if !retry.covers(&failed.error) {
                    return Err(last_status);
                }
                match (failed.request, spare, failed.resend) {
                    (Some(r), _, _) => upstream_request = *r,
                    // Sent: a body-less request can go again from its spare copy...
                    (None, Some(spare), _) => upstream_request = spare,
                    // ... or as the fast path handed it back, under the same rules.
                    (None, None, Some(sent))
                        if attempt < tries
                            && backend.upstreams.len() > tried.len()
                            && may_send_again(&sent, &retry) =>
                    {
                        upstream_request = *sent;
                    }
                    // Sent with a body (at least partly): the body is gone, no retry.
                    _ => return Err(last_status),
                }
            }
        }
    }
    Err(last_status)
}

/// What `proxy-next-upstream` allows to retry.
#[derive(Debug)]
struct RetryPolicy {
    error: bool,
    timeout: bool,
    non_idempotent: bool,
    off: bool,
    /// Upstream statuses that send the request to the next endpoint.
    statuses: Vec<u16>,
}

impl RetryPolicy {
    fn new(conditions: &[NextUpstream]) -> RetryPolicy {
        let statuses = conditions
            .iter()
            .filter_map(|c| match c {
                NextUpstream::Http500 => Some(500),
                NextUpstream::Http502 => Some(502),
                NextUpstream::Http503 => Some(503),
                NextUpstream::Http504 => Some(504),
                NextUpstream::Http403 => Some(403),
                NextUpstream::Http404 => Some(404),
                NextUpstream::Http429 => Some(429),
                _ => None,
            })
            .collect();
        RetryPolicy {
            error: conditions.contains(&NextUpstream::Error),
            timeout: conditions.contains(&NextUpstream::Timeout),
            non_idempotent: conditions.contains(&NextUpstream::NonIdempotent),
            off: conditions.contains(&NextUpstream::Off),
            statuses,
        }
    }

    /// True when `error` may be retried on the next endpoint.
    fn covers(&self, error: &crate::upstream::UpstreamError) -> bool {
        if error.is_timeout() {
            self.timeout
        } else {
            self.error
        }
    }
}

/// True when `request`, once sent, may be sent again: it has no body and its method
/// is idempotent (or `non_idempotent` is configured).
fn may_send_again(request: &Request<RequestBody>, retry: &RetryPolicy) -> bool {
    matches!(request.body(), RequestBody::Empty)
        && (crate::upstream::h1::idempotent(request.method()) || retry.non_idempotent)
}

/// A copy of a body-less request for one more attempt, when it may be sent again
/// ([`may_send_again`]).
fn spare_request(
    request: &Request<RequestBody>,
    retry: &RetryPolicy,
) -> Option<Request<RequestBody>> {
    if !may_send_again(request, retry) {
        return None;
    }
    let mut copy = Request::new(RequestBody::Empty);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// The canary backend's entry when the primary has an alternative and the canary
/// policy routes this request there (Part B §3.4).
fn choose_canary<'t>(
    table: &'t crate::balancers::BalancerTable,
    primary: &'t Arc<Entry>,
    request: &Request<Incoming>,
) -> Option<&'t Arc<Entry>> {
    let alternative = primary.backend.source.alternative_backends.first()?;
    let canary_entry = table.get(alternative)?;
    if canary_entry.backend.upstreams.is_empty() {
        return None;
    }
    let headers = request.headers();
    let primary_cookie = affinity_cookie_name(&primary.backend).and_then(|n| cookie(headers, n));
    let canary_cookie =
        affinity_cookie_name(&canary_entry.backend).and_then(|n| cookie(headers, n));
    canary::route_to_canary(
        primary.balancer.as_ref(),
        primary_cookie,
        &canary_entry.canary,
        canary_entry.balancer.as_ref(),
        canary_cookie,
        |name| headers.get(name).and_then(|v| v.to_str().ok()),
        |name| cookie(headers, name),
        |total| fastrand::u64(1..=total),
    )
    .then_some(canary_entry)
}

/// The sticky cookie's name for a backend with cookie affinity.
fn affinity_cookie_name(backend: &CompiledBackend) -> Option<&str> {
    let affinity = &backend.source.session_affinity_config;
    (affinity.name == "cookie").then(|| {
        let name = affinity.cookie_session_affinity.name.as_str();
        if name.is_empty() { "route" } else { name }
    })
}

/// True when the request carries no body (none declared, none streamed).
fn body_is_empty(method: &Method, body: &Incoming) -> bool {
    use http_body::Body as _;
    body.is_end_stream() || (*method == Method::GET && body.size_hint().exact() == Some(0))
}

/// Evaluates an `upstream-hash-by` expression for this request.
fn evaluate(
    parts: &[Part],
    request: &Request<Incoming>,
    client: &ClientInfo,
    host: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let uri = request.uri();
    for part in parts {
        match part {
            Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
            Part::Capture(_) => {}
            Part::Var(var) => match var {
                Variable::RequestUri => out.extend_from_slice(
                    uri.path_and_query()
                        .map_or(uri.path(), |p| p.as_str())
                        .as_bytes(),
                ),
                Variable::EscapedRequestUri => out.extend_from_slice(
                    uri.path_and_query()
                        .map_or(uri.path(), |p| p.as_str())
                        .as_bytes(),
                ),
                Variable::Uri => out.extend_from_slice(uri.path().as_bytes()),
                Variable::Args => out.extend_from_slice(uri.query().unwrap_or("").as_bytes()),
                Variable::RemoteAddr => {
                    out.extend_from_slice(client.remote.ip().to_string().as_bytes())
                }
                Variable::BinaryRemoteAddr => match client.remote.ip() {
                    std::net::IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
                    std::net::IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
                },
                Variable::RemotePort => {
                    out.extend_from_slice(client.remote.port().to_string().as_bytes())
                }
                Variable::Host => out.extend_from_slice(
                    crate::headers::host_without_port(host)
                        .to_ascii_lowercase()
                        .as_bytes(),
                ),
                Variable::Scheme => {
                    out.extend_from_slice(if client.https { b"https" } else { b"http" })
                }
                Variable::RequestMethod => {
                    out.extend_from_slice(request.method().as_str().as_bytes())
                }
                Variable::ServerName => {
                    out.extend_from_slice(crate::headers::host_without_port(host).as_bytes())
                }
                Variable::ServerPort => {
                    out.extend_from_slice(client.local_port.to_string().as_bytes())
                }
                Variable::Header(name) => {
                    if let Some(v) = request.headers().get(name.as_str()) {
                        out.extend_from_slice(v.as_bytes());
                    }
                }
                Variable::Cookie(name) => {
                    if let Some(v) = cookie(request.headers(), name) {
                        out.extend_from_slice(v.as_bytes());
                    }
                }
                Variable::Arg(name) => {
                    if let Some(v) = uri.query().and_then(|q| {
                        q.split('&').find_map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (k == name).then_some(v)
                        })
                    }) {
                        out.extend_from_slice(v.as_bytes());
                    }
                }
            },
        }
    }
    out
}

pub(crate) async fn resolve(
    resolver: &crate::dns::Resolver,
    upstream: &Upstream,
) -> Option<SocketAddr> {
    match upstream {
        Upstream::Addr(addr) => Some(*addr),
        // Boxed: the resolver's future would otherwise size every request's.
        Upstream::Name { host, port } => Box::pin(resolver.resolve(host, *port)).await,
    }
}

/// True when forwarding to `target` would loop back into `own` (a listener of ours).
pub(crate) fn is_self(target: SocketAddr, own: SocketAddr) -> bool {
    target.port() == own.port()
        && (target.ip() == own.ip()
            || own.ip().is_unspecified() && target.ip().is_loopback()
            || target.ip().is_loopback() && own.ip().is_loopback())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Pipes an upgraded connection (WebSocket) both ways until either side closes,
/// holding the request's `limit-connections` slot (`_connection`) until then.
async fn pipe_upgraded(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    _connection: Option<crate::policy::limit::ConnectionGuard>,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(client);
    let mut upstream = hyper_util::rt::TokioIo::new(upstream);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn output_size<A, B, C, D, E, R>(_f: impl Fn(A, B, C, D, E) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every request's future is built and then moved into hyper's connection state:
    /// a large one costs a `memmove` per request (it was 13 KiB,
    /// ~5 % of the proxy's CPU, before the rare paths were boxed). Awaiting a large
    /// future inline on a rare path (auth clients, error pages, DNS, new connections)
    /// grows it again; box such futures at their call site.
    #[test]
    fn the_request_future_stays_small() {
        let size = output_size(handle);
        eprintln!("handle future: {size} bytes");
        assert!(
            size <= LIMIT,
            "handle's future is {size} bytes (limit {LIMIT})"
        );
    }

    /// 5.7 KiB when written; room for growth, not for another inline client.
    const LIMIT: usize = 8 * 1024;
}
