//! HTTP routing: Kubernetes REST paths to store operations, query parameters, content
//! types, and `Status` errors.
//!
//! Paths: `/api/v1/...` and `/apis/{group}/{version}/...`, then `{plural}` (cluster-scoped
//! objects, or a namespaced resource across all namespaces), or
//! `namespaces/{ns}/{plural}`, then optionally `/{name}` and `/{name}/status`. The legacy
//! `/watch/` prefix is accepted.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::Shared;
use super::discovery;
use super::error::ApiError;
use super::resources::{self, ResourceType};
use super::selectors::Selectors;
use super::store::{Deleted, PatchKind, Target};
use super::watch::{self, WatchParams};

/// The response body type of every route.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Request bodies above this size are refused.
const MAX_BODY: usize = 16 << 20;

fn json_response(status: u16, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// Answers one request (after the injected latency) and logs it.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let resp = route(&shared, req)
        .await
        .unwrap_or_else(|e| error_response(&e));
    shared.log_request(method, uri, resp.status().as_u16());
    resp
}

/// Decoded query parameters (the last value of a repeated key wins).
#[derive(Debug, Default)]
struct Query(HashMap<String, String>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (percent_decode(k), percent_decode(v)),
                    None => (percent_decode(p), String::new()),
                })
                .collect(),
        )
    }

    fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or_default()
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), "true" | "1")
    }

    fn dry_run(&self) -> bool {
        self.get("dryRun") == "All"
    }
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::path_not_found("the server could not find the requested resource");
    match segs.as_slice() {
        ["version"] => Ok(json_response(200, &discovery::version())),
        ["healthz" | "livez" | "readyz"] => {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(resp)
        }
        ["api"] => Ok(json_response(
            200,
            &discovery::api_versions(&shared.addr.to_string()),
        )),
        ["apis"] => Ok(json_response(200, &discovery::api_group_list())),
        ["api", "v1"] => discovery::resource_list("", "v1")
            .map(|d| json_response(200, &d))
            .ok_or_else(not_found),
        ["apis", group] => discovery::api_group(group)
            .map(|d| json_response(200, &d))
            .ok_or_else(not_found),
        ["apis", group, version] => discovery::resource_list(group, version)
            .map(|d| json_response(200, &d))
            .ok_or_else(not_found),
        ["api", "v1", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource_request(shared, "", "v1", &rest, req).await
        }
        ["apis", group, version, rest @ ..] => {
            let (group, version) = (group.to_string(), version.to_string());
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource_request(shared, &group, &version, &rest, req).await
        }
        _ => Err(not_found()),
    }
}

/// Where a resource request points.
struct Location {
    rt: &'static ResourceType,
    /// `None`: all namespaces (or a cluster-scoped kind).
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn locate(group: &str, version: &str, rest: &[String]) -> Result<(Location, bool), ApiError> {
    let not_found = |what: &str| {
        ApiError::path_not_found(format!(
            "the server could not find the requested resource ({what})"
        ))
    };
    let (rest, legacy_watch) = match rest.split_first() {
        Some((w, tail)) if w == "watch" => (tail, true),
        _ => (rest, false),
    };
    let (namespace, plural, tail) = match rest {
        [ns_seg, ns, plural, tail @ ..]
            if ns_seg == "namespaces" && plural != "status" && plural != "finalize" =>
        {
            (Some(ns.clone()), plural.as_str(), tail)
        }
        [plural, tail @ ..] => (None, plural.as_str(), tail),
        [] => return Err(not_found("no resource")),
    };
    let rt = resources::by_plural(group, version, plural).ok_or_else(|| not_found(plural))?;
    if namespace.is_some() && !rt.namespaced {
        return Err(not_found("cluster-scoped resource under a namespace"));
    }
    let (name, status) = match tail {
        [] => (None, false),
        [name] => (Some(name.clone()), false),
        [name, sub] if sub == "status" && rt.status_subresource => (Some(name.clone()), true),
        _ => return Err(not_found("unknown subresource")),
    };
    if rt.namespaced && namespace.is_none() && name.is_some() {
        return Err(not_found("a namespaced object needs its namespace"));
    }
    Ok((
        Location {
            rt,
            namespace,
            name,
            status,
        },
        legacy_watch,
    ))
}

async fn read_body(req: Request<Incoming>) -> Result<(String, Bytes), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let body = http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?
        .to_bytes();
    Ok((content_type, body))
}

/// A POST or PUT body: JSON (or no content type). kubectl's generator commands
/// (`kubectl create configmap ...`) send protobuf, which is refused with 415.
fn parse_object(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if content_type.is_empty() || content_type.ends_with("json") || content_type.ends_with("yaml") {
        return if content_type.ends_with("yaml") {
            parse_yaml(body)
        } else {
            parse_json(body)
        };
    }
    Err(ApiError::unsupported_media_type(content_type))
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    serde_norway::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")))
}

async fn resource_request(
    shared: &Arc<Shared>,
    group: &str,
    version: &str,
    rest: &[String],
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (loc, legacy_watch) = locate(group, version, rest)?;
    if shared.faults.should_fail() {
        return Err(ApiError::internal("injected fault: internal error"));
    }
    let query = Query::parse(req.uri().query().unwrap_or_default());
    let method = req.method().clone();
    let rt = loc.rt;
    let ns = loc.namespace.clone().unwrap_or_default();
    let dry_run = query.dry_run();
    let target = if loc.status {
        Target::Status
    } else {
        Target::Main
    };
    match (&method, &loc.name) {
        (&Method::GET, None) => {
            let selectors =
                Selectors::parse(query.get("labelSelector"), query.get("fieldSelector"))?;
            if legacy_watch || query.flag("watch") {
                let rv = match query.get("resourceVersion") {
                    "" | "0" => None,
                    v => Some(v.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resourceVersion {v:?}"))
                    })?),
                };
                let timeout = match query.get("timeoutSeconds") {
                    "" => None,
                    v => Some(Duration::from_secs(v.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid timeoutSeconds {v:?}"))
                    })?)),
                };
                let params = WatchParams {
                    rt,
                    namespace: loc.namespace.clone(),
                    selectors,
                    resource_version: rv,
                    bookmarks: query.flag("allowWatchBookmarks"),
                    timeout,
                    send_initial_events: query.flag("sendInitialEvents"),
                };
                let body = watch::start(shared, params);
                let mut resp = Response::new(body.boxed());
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                return Ok(resp);
            }
            let store = shared.store();
            let items = store.list(rt, loc.namespace.as_deref(), &selectors);
            let list = json!({
                "kind": rt.list_kind(),
                "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": store.resource_version().to_string()},
                "items": items,
            });
            Ok(json_response(200, &list))
        }
        (&Method::POST, None) => {
            if rt.namespaced && loc.namespace.is_none() {
                return Err(ApiError::method_not_allowed());
            }
            let (content_type, body) = read_body(req).await?;
            let obj = parse_object(&content_type, &body)?;
            let created = shared.store().create(rt, &ns, obj, dry_run)?;
            Ok(json_response(201, &created))
        }
        (&Method::DELETE, None) => {
            let selectors =
                Selectors::parse(query.get("labelSelector"), query.get("fieldSelector"))?;
            let items = shared.store().delete_collection(
                rt,
                loc.namespace.as_deref(),
                &selectors,
                dry_run,
            )?;
            let list = json!({
                "kind": rt.list_kind(),
                "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": shared.store().resource_version().to_string()},
                "items": items,
            });
            Ok(json_response(200, &list))
        }
        (&Method::GET, Some(name)) => Ok(json_response(200, &shared.store().get(rt, &ns, name)?)),
        (&Method::PUT, Some(name)) => {
            let (content_type, body) = read_body(req).await?;
            let obj = parse_object(&content_type, &body)?;
            let updated = shared.store().update(rt, &ns, name, obj, target, dry_run)?;
            Ok(json_response(200, &updated))
        }
        (&Method::PATCH, Some(name)) => {
            let (content_type, body) = read_body(req).await?;
            let kind = match content_type.as_str() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/json-patch+json" => PatchKind::Json,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            if kind == PatchKind::Apply && query.get("fieldManager").is_empty() {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let patch = if kind == PatchKind::Apply {
                parse_yaml(&body)?
            } else {
                parse_json(&body)?
            };
            let mut store = shared.store();
            let existed = store.get(rt, &ns, name).is_ok();
            let patched = store.patch(rt, &ns, name, kind, &patch, target, dry_run)?;
            Ok(json_response(if existed { 200 } else { 201 }, &patched))
        }
        (&Method::DELETE, Some(name)) => {
            let (_, body) = read_body(req).await?;
            let options = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                parse_json(&body)?
            };
            let dry_run = dry_run
                || options
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|v| v == "All"));
            match shared.store().delete(rt, &ns, name, &options, dry_run)? {
                Deleted::Pending(obj) => Ok(json_response(202, &obj)),
                Deleted::Gone(obj) if rt.returns_deleted_object => Ok(json_response(200, &obj)),
                Deleted::Gone(obj) => {
                    let mut details = json!({
                        "name": name,
                        "kind": rt.plural,
                        "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                    });
                    if !rt.group.is_empty() {
                        details["group"] = json!(rt.group);
                    }
                    Ok(json_response(
                        200,
                        &json!({
                            "kind": "Status",
                            "apiVersion": "v1",
                            "metadata": {},
                            "status": "Success",
                            "details": details,
                        }),
                    ))
                }
            }
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse("labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&watch=1&x");
        assert_eq!(q.get("labelSelector"), "app=web,tier in (a,b)");
        assert!(q.flag("watch"));
        assert_eq!(q.get("x"), "");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
