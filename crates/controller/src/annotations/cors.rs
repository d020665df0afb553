//! `enable-cors` and `cors-*`. The settings are kept even when CORS is off, as
//! ingress-nginx parses them; they only take effect with `enable-cors: "true"`.

use gangplank_model::policy::{CorsConfig, check_cors_origin};
use gangplank_model::validate::check_header_name;

use super::{Reader, model_check};

/// A method of `cors-allow-methods`, checked as the model checks it.
fn check_method(method: &str) -> Result<(), String> {
    model_check(&CorsConfig {
        allow_methods: vec![method.to_owned()],
        ..CorsConfig::default()
    })
}

/// Every CORS setting.
pub(super) fn cors(reader: &mut Reader<'_>) -> CorsConfig {
    let defaults = CorsConfig::default();
    CorsConfig {
        enabled: reader.boolean("enable-cors").unwrap_or(false),
        allow_origin: reader
            .list("cors-allow-origin", ',', check_cors_origin)
            .unwrap_or(defaults.allow_origin),
        allow_methods: reader
            .list("cors-allow-methods", ',', check_method)
            .unwrap_or(defaults.allow_methods),
        allow_headers: reader
            .list("cors-allow-headers", ',', check_header_name)
            .unwrap_or(defaults.allow_headers),
        allow_credentials: reader
            .boolean("cors-allow-credentials")
            .unwrap_or(defaults.allow_credentials),
        expose_headers: reader
            .list("cors-expose-headers", ',', check_header_name)
            .unwrap_or(defaults.expose_headers),
        max_age: reader
            .integer("cors-max-age", 0, i64::from(u32::MAX))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(defaults.max_age),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_map;

    #[test]
    fn cors_settings() {
        let (a, events) = parse_map(&[
            ("enable-cors", "true"),
            (
                "cors-allow-origin",
                "https://app.example.com, https://*.example.org:8443",
            ),
            ("cors-allow-methods", "GET, POST, PROPFIND"),
            ("cors-allow-headers", "X-Token,Content-Type"),
            ("cors-allow-credentials", "false"),
            ("cors-expose-headers", "X-Request-Id"),
            ("cors-max-age", "600"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        let c = &a.location.cors_config;
        assert!(c.enabled && !c.allow_credentials);
        assert_eq!(
            c.allow_origin,
            ["https://app.example.com", "https://*.example.org:8443"]
        );
        assert_eq!(c.allow_methods, ["GET", "POST", "PROPFIND"]);
        assert_eq!(c.allow_headers, ["X-Token", "Content-Type"]);
        assert_eq!(c.expose_headers, ["X-Request-Id"]);
        assert_eq!(c.max_age, 600);
    }

    #[test]
    fn hostile_cors_values_deny() {
        for (name, value) in [
            ("cors-allow-origin", "https://a.example.com/path"),
            ("cors-allow-origin", "javascript:alert(1)"),
            ("cors-allow-methods", "GET;DELETE"),
            ("cors-allow-headers", "X A"),
            ("cors-expose-headers", "X-\"A\""),
            ("cors-max-age", "-1"),
            ("enable-cors", "yes"),
        ] {
            let (a, _) = parse_map(&[(name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
        }
    }
}
