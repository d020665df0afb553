//! `custom-http-errors`, `default-backend` and `disable-proxy-intercept-errors`
//! (Part B §6.4), compiled once per location into [`CustomErrors`].
//!
//! A location's own list replaces the ConfigMap's (nginx's `error_page` inheritance);
//! the error backend is the location's `default-backend` upstream when the controller
//! set one, else the global default backend ([`DEFAULT_BACKEND`]). The per-request
//! part (asking the error backend, keeping the original status) lives in
//! `gangplank_proxy::errors`.

use gangplank_model::{GeneralConfig, Location};
use http::HeaderValue;

/// The name of the global default backend's upstream (ingress-nginx's).
pub const DEFAULT_BACKEND: &str = "upstream-default-backend";

/// What a location does with error statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomErrors {
    /// The intercepted status codes (300..599), sorted, without duplicates.
    pub codes: Vec<u16>,
    /// Upstream answers with a listed status are intercepted too (false with
    /// `disable-proxy-intercept-errors`: only the proxy's own errors are).
    pub intercept_upstream: bool,
    /// The upstream asked for the error page.
    pub backend: String,
    /// `X-Namespace`.
    pub namespace: HeaderValue,
    /// `X-Ingress-Name`.
    pub ingress_name: HeaderValue,
    /// `X-Service-Name`.
    pub service_name: HeaderValue,
    /// `X-Service-Port`.
    pub service_port: HeaderValue,
}

impl CustomErrors {
    /// The error handling of `location`, or `None` when no code is listed for it.
    pub fn compile(location: &Location, general: &GeneralConfig) -> Option<CustomErrors> {
        let list = if location.custom_http_errors.is_empty() {
            general.custom_http_errors()
        } else {
            &location.custom_http_errors
        };
        let mut errors = CustomErrors::with_codes(list)?;
        errors.intercept_upstream = !location.disable_proxy_intercept_errors;
        if !location.default_backend_upstream_name.is_empty() {
            errors
                .backend
                .clone_from(&location.default_backend_upstream_name);
        }
        if let Some(ingress) = &location.ingress {
            errors.namespace = header_value(&ingress.namespace);
            errors.ingress_name = header_value(&ingress.name);
        }
        errors.service_name = header_value(&location.service);
        let port = location.port.to_string();
        if port != "0" {
            errors.service_port = header_value(&port);
        }
        Some(errors)
    }

    /// The error handling of requests no location matched: the ConfigMap's list, the
    /// global default backend.
    pub fn global(general: &GeneralConfig) -> Option<CustomErrors> {
        CustomErrors::with_codes(general.custom_http_errors())
    }

    fn with_codes(list: &[u16]) -> Option<CustomErrors> {
        let mut codes: Vec<u16> = list
            .iter()
            .copied()
            .filter(|c| (300..=599).contains(c))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        if codes.is_empty() {
            return None;
        }
        Some(CustomErrors {
            codes,
            intercept_upstream: true,
            backend: DEFAULT_BACKEND.to_owned(),
            namespace: HeaderValue::from_static(""),
            ingress_name: HeaderValue::from_static(""),
            service_name: HeaderValue::from_static(""),
            service_port: HeaderValue::from_static(""),
        })
    }

    /// True when `status` is intercepted.
    pub fn covers(&self, status: u16) -> bool {
        self.codes.binary_search(&status).is_ok()
    }
}

/// `text` as a header value; a value that cannot be one (never after validation) is
/// sent empty rather than failing.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::IngressRef;
    use gangplank_model::int_or_string::IntOrString;

    fn general(codes: &[u16]) -> GeneralConfig {
        GeneralConfig {
            custom_http_errors: Some(codes.to_vec()),
            ..GeneralConfig::default()
        }
    }

    #[test]
    fn location_list_replaces_the_global_one() {
        let mut location = Location {
            service: "web".into(),
            port: IntOrString::Int(8080),
            ingress: Some(IngressRef {
                namespace: "shop".into(),
                name: "front".into(),
            }),
            ..Location::default()
        };
        let global = CustomErrors::compile(&location, &general(&[503, 404, 404])).unwrap();
        assert_eq!(global.codes, [404, 503]);
        assert_eq!(global.backend, DEFAULT_BACKEND);
        assert!(global.intercept_upstream);
        assert_eq!(global.namespace, "shop");
        assert_eq!(global.ingress_name, "front");
        assert_eq!(global.service_name, "web");
        assert_eq!(global.service_port, "8080");

        location.custom_http_errors = vec![418];
        location.default_backend_upstream_name = "custom-default-backend-shop-errors".into();
        location.disable_proxy_intercept_errors = true;
        let own = CustomErrors::compile(&location, &general(&[404])).unwrap();
        assert_eq!(own.codes, [418]);
        assert!(own.covers(418) && !own.covers(404));
        assert_eq!(own.backend, "custom-default-backend-shop-errors");
        assert!(!own.intercept_upstream);
    }

    #[test]
    fn nothing_listed_means_nothing_intercepted() {
        assert_eq!(
            CustomErrors::compile(&Location::default(), &GeneralConfig::default()),
            None
        );
        assert_eq!(CustomErrors::global(&general(&[200])), None);
        let global = CustomErrors::global(&general(&[404])).unwrap();
        assert_eq!(global.namespace, "");
        assert_eq!(global.backend, DEFAULT_BACKEND);
    }
}
