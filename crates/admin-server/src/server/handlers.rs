//! Request handlers. Each POST decodes, then validates (inside `Store::apply`), then
//! applies; any failure answers with a precise error and leaves the configuration as it
//! was.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gangplank_model::json::{DecodeError, decode};
use gangplank_model::{Backend, Configuration, GeneralConfig, Problems, SslConfiguration};
use gangplank_store::{ApplyError, Update};
use http_body_util::BodyExt;

use super::AdminState;
use crate::api::{ErrorBody, etag, parse_version_tag};

/// An error answer: status plus the JSON [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>, path: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                path: path.into(),
                problems: Vec::new(),
            },
        }
    }

    fn invalid(problems: Problems) -> ApiError {
        let (error, path) = problems
            .first()
            .map(|p| (p.message.clone(), p.path.clone()))
            .unwrap_or_default();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody {
                error,
                path,
                problems: if problems.0.len() > 1 {
                    problems.0
                } else {
                    Vec::new()
                },
            },
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.message, e.path)
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Invalid(problems) => ApiError::invalid(problems),
            e @ ApplyError::VersionMismatch { .. } => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, e.to_string(), "")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::warn!(status = self.status.as_u16(), error = %self.body.error, path = %self.body.path, "admin request refused");
        let body = serde_json::to_vec(&self.body).unwrap_or_else(|_| b"{}".to_vec());
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Reads the whole body, refusing more than `limit` bytes with 413.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the limit of {limit} bytes"),
            "$",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
            "$",
        )),
    }
}

fn json_response(status: StatusCode, bytes: Vec<u8>, version: u64) -> Response {
    let mut response =
        (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the answer: {e}"),
            "",
        )
    })
}

fn created(version: u64) -> Response {
    json_response(StatusCode::CREATED, Vec::new(), version)
}

/// Runs a store update off the async workers: validation and compilation of large
/// payloads (certificates, 10,000 backends) are CPU work.
async fn apply(state: &AdminState, update: Update) -> Result<u64, ApiError> {
    let store = state.store.clone();
    let snapshot = tokio::task::spawn_blocking(move || store.apply(update))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("apply task failed: {e}"),
                "",
            )
        })??;
    Ok(snapshot.version)
}

/// `GET /healthz`: 200, or 503 while draining.
pub async fn healthz(State(state): State<AdminState>) -> Response {
    if state.status.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

/// `GET /is-dynamic-lb-initialized`: 200 `OK` once backends are known, else 500.
pub async fn is_dynamic_lb_initialized(State(state): State<AdminState>) -> Response {
    if state.store.load().dynamic_lb_initialized {
        (StatusCode::OK, "OK\n").into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "dynamic load balancer not initialized\n",
        )
            .into_response()
    }
}

/// `GET /nginx_status`: stub_status text.
pub async fn nginx_status(State(state): State<AdminState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        state.status.stub_status().to_string(),
    )
        .into_response()
}

/// `GET /configuration/backends`.
pub async fn get_backends(State(state): State<AdminState>) -> ApiResult {
    let snapshot = state.store.snapshot();
    Ok(json_response(
        StatusCode::OK,
        encode(&*snapshot.source.backends)?,
        snapshot.version,
    ))
}

/// `POST /configuration/backends`.
pub async fn post_backends(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let bytes = read_body(&headers, body, state.body_limit).await?;
    let backends: Vec<Backend> = decode(&bytes)?;
    Ok(created(apply(&state, Update::Backends(backends)).await?))
}

/// `GET /configuration/general`: `{}` until something was posted.
pub async fn get_general(State(state): State<AdminState>) -> ApiResult {
    let snapshot = state.store.snapshot();
    Ok(json_response(
        StatusCode::OK,
        encode(&*snapshot.source.general)?,
        snapshot.version,
    ))
}

/// `POST /configuration/general`.
pub async fn post_general(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let bytes = read_body(&headers, body, state.body_limit).await?;
    let general: GeneralConfig = decode(&bytes)?;
    Ok(created(apply(&state, Update::General(general)).await?))
}

/// `POST /configuration/servers`: the 0.26+ object shape or the 0.25 array shape.
pub async fn post_servers(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let bytes = read_body(&headers, body, state.body_limit).await?;
    let update = SslConfiguration::decode_update(&bytes)?;
    Ok(created(apply(&state, Update::Certificates(update)).await?))
}

/// `GET /configuration/certs?hostname=H`: exact lookup.
pub async fn get_certs(
    State(state): State<AdminState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let host = query
        .get("hostname")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "Hostname must be specified.",
                "hostname",
            )
        })?;
    let snapshot = state.store.snapshot();
    match snapshot.source.ssl.pem_for_host(host) {
        Some(pem) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            pem.to_owned(),
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "No key associated with this hostname.",
            "hostname",
        )),
    }
}

/// `GET /configuration`: the whole snapshot with its version as `ETag`.
pub async fn get_configuration(State(state): State<AdminState>) -> ApiResult {
    let snapshot = state.store.snapshot();
    Ok(json_response(
        StatusCode::OK,
        encode(&snapshot.configuration())?,
        snapshot.version,
    ))
}

/// `POST /configuration`: replaces the whole snapshot; honours `If-Match`.
pub async fn post_configuration(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let if_match = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => {
            let text = v.to_str().map_err(|_| {
                ApiError::new(StatusCode::BAD_REQUEST, "If-Match is not ASCII", "If-Match")
            })?;
            parse_version_tag(text)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e, "If-Match"))?
        }
    };
    let bytes = read_body(&headers, body, state.body_limit).await?;
    let config: Configuration = decode(&bytes)?;
    Ok(created(
        apply(&state, Update::Configuration { config, if_match }).await?,
    ))
}

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found!", "")
}

/// Known paths with a method they do not take (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this path",
        "",
    )
}
