//! CORS per request (see [`gangplank_store::policy::Cors`] for the settings and
//! ingress-nginx's semantics): whether the request's `Origin` is allowed, the headers
//! set on responses, and the 204 answer to preflight `OPTIONS` requests.

use gangplank_store::policy::Cors;
use http::header::{self, HeaderMap, HeaderValue};

/// The `Access-Control-Allow-Origin` value for this request, when CORS applies: `*`
/// for an `*` policy, else the request's own `Origin` when it is allowed.
pub fn allowed_origin(cors: &Cors, headers: &HeaderMap) -> Option<HeaderValue> {
    if cors.origins.is_any() {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = headers.get(header::ORIGIN)?;
    cors.origins
        .matches(origin.as_bytes())
        .then(|| origin.clone())
}

/// Sets the CORS headers on a response (replacing the upstream's).
pub fn decorate(cors: &Cors, origin: &HeaderValue, headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if cors.allow_credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        cors.allow_methods.clone(),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        cors.allow_headers.clone(),
    );
    if let Some(expose) = &cors.expose_headers {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, cors.max_age.clone());
    if origin.as_bytes() != b"*" {
        let varies = headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                let t = t.trim();
                t == "*" || t.eq_ignore_ascii_case("origin")
            });
        if !varies {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// The preflight answer's own headers (ingress-nginx's, byte for byte).
pub fn preflight_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain charset=UTF-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::policy::CorsConfig;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors::compile(&CorsConfig {
            enabled: true,
            allow_origin: origins.iter().map(|s| s.to_string()).collect(),
            allow_credentials: credentials,
            expose_headers: vec!["X-Total".into()],
            ..CorsConfig::default()
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn origins_are_echoed_when_allowed() {
        let c = cors(&["https://*.example.com"], true);
        let mut request = HeaderMap::new();
        assert_eq!(allowed_origin(&c, &request), None);
        request.insert(
            "origin",
            HeaderValue::from_static("https://app.example.com"),
        );
        let origin = allowed_origin(&c, &request).unwrap();
        assert_eq!(origin, "https://app.example.com");
        request.insert("origin", HeaderValue::from_static("https://evil.test"));
        assert_eq!(allowed_origin(&c, &request), None);

        let mut response = HeaderMap::new();
        response.insert(
            "access-control-allow-origin",
            HeaderValue::from_static("upstream"),
        );
        response.insert("vary", HeaderValue::from_static("Accept-Encoding"));
        decorate(&c, &origin, &mut response);
        assert_eq!(
            response["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(response["access-control-allow-credentials"], "true");
        assert_eq!(
            response["access-control-allow-methods"],
            "GET, PUT, POST, DELETE, PATCH, OPTIONS"
        );
        assert_eq!(response["access-control-expose-headers"], "X-Total");
        assert_eq!(response["access-control-max-age"], "1728000");
        let vary: Vec<_> = response.get_all("vary").iter().collect();
        assert_eq!(vary, vec!["Accept-Encoding", "Origin"]);
        decorate(&c, &origin, &mut response);
        assert_eq!(
            response.get_all("vary").iter().count(),
            2,
            "Vary: Origin once"
        );
    }

    #[test]
    fn any_origin_is_a_star_without_vary() {
        let c = cors(&["*"], false);
        let origin = allowed_origin(&c, &HeaderMap::new()).unwrap();
        assert_eq!(origin, "*");
        let mut response = HeaderMap::new();
        decorate(&c, &origin, &mut response);
        assert!(!response.contains_key("access-control-allow-credentials"));
        assert!(!response.contains_key("vary"));
        preflight_headers(&mut response);
        assert_eq!(response["content-type"], "text/plain charset=UTF-8");
        assert_eq!(response["content-length"], "0");
    }
}
