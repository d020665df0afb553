//! gRPC answers for the proxy's own errors.
//!
//! A gRPC client reads the call's outcome from `grpc-status`, not from the HTTP
//! status; an HTML error page only tells it "unknown". So when the proxy itself fails
//! a gRPC request (`backend-protocol` GRPC or GRPCS and a `content-type:
//! application/grpc...` request) with 502, 503 or 504 (upstream down, no endpoints,
//! timeout), it answers the way ingress-nginx users configure with `error_page ...
//! @grpc_unavailable` snippets, and as the gRPC HTTP/2 protocol's "Trailers-Only"
//! response: HTTP 200, `content-type: application/grpc`, `grpc-status` 14
//! (UNAVAILABLE) or 4 (DEADLINE_EXCEEDED for 504) and a `grpc-message`, no body.
//! The access log keeps the proxy's status (502/503/504), so failures stay visible.

use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

use crate::body::ProxyBody;
use crate::pages::SERVER;

/// gRPC's UNAVAILABLE.
pub const UNAVAILABLE: u32 = 14;
/// gRPC's DEADLINE_EXCEEDED.
pub const DEADLINE_EXCEEDED: u32 = 4;

/// True when the request is a gRPC call (`content-type: application/grpc`, with or
/// without a `+format` or `-web` suffix).
pub fn is_grpc_request(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The gRPC form of the proxy's error `status`, or `None` for statuses gRPC clients
/// already map well (404 is UNIMPLEMENTED, 403 PERMISSION_DENIED...).
pub fn error_answer(status: StatusCode) -> Option<Response<ProxyBody>> {
    let (code, message) = match status {
        StatusCode::BAD_GATEWAY => (UNAVAILABLE, "upstream unavailable (502)"),
        StatusCode::SERVICE_UNAVAILABLE => (UNAVAILABLE, "service unavailable (503)"),
        StatusCode::GATEWAY_TIMEOUT => (DEADLINE_EXCEEDED, "upstream timed out (504)"),
        _ => return None,
    };
    let mut response = Response::new(ProxyBody::empty());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(code));
    headers.insert("grpc-message", HeaderValue::from_static(message));
    headers.insert(header::SERVER, SERVER);
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_errors_become_grpc_statuses() {
        for (status, code) in [(502, "14"), (503, "14"), (504, "4")] {
            let r = error_answer(StatusCode::from_u16(status).unwrap_or_default());
            let r = r.unwrap_or_else(|| panic!("{status}"));
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()["grpc-status"], code);
            assert_eq!(r.headers()["content-type"], "application/grpc");
        }
        assert!(error_answer(StatusCode::NOT_FOUND).is_none());
    }

    #[test]
    fn grpc_requests_by_content_type() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc_request(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc_request(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_grpc_request(&h));
    }
}
