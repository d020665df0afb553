//! The proxy's own answers (default backend, errors), nginx-style HTML pages.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::ProxyBody;

/// The `Server` header value: the product name, never a version (`server-tokens` off).
pub const SERVER: HeaderValue = HeaderValue::from_static("gangplank");

/// An nginx-style error page for `status`.
pub fn error_page(status: StatusCode) -> Response<ProxyBody> {
    let title = format!(
        "{} {}",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    let html = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>gangplank</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut response = Response::new(ProxyBody::full(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    headers.insert(header::SERVER, SERVER);
    response
}
