//! CORS: `enable-cors`, `cors-allow-origin`, `-methods`, `-headers`, `-credentials`,
//! `-expose-headers`, `-max-age`, with the header values built once.
//!
//! ingress-nginx semantics (its `CORS` template): when the origin list is just `*`,
//! every response gets `Access-Control-Allow-Origin: *`, and every `OPTIONS` request
//! is answered by the proxy; otherwise only requests whose `Origin` matches an entry
//! (case-insensitively) get the headers, with the request's `Origin` echoed. An entry
//! `scheme://*.host[:port]` matches exactly one label in place of the `*`. A matching
//! `OPTIONS` request (preflight) is answered 204 with `Content-Type: text/plain
//! charset=UTF-8` and `Content-Length: 0`. The headers are set (replaced) on every
//! response, errors included.
//!
//! Deliberate differences: origins are matched against the whole `Origin` value
//! (ingress-nginx's regex was only anchored at the end, so
//! `https://evil.example/https://app.example.com` matched `https://app.example.com`);
//! a `*` in a longer list means "any origin" (ingress-nginx turned it into a
//! one-label pattern); `Vary: Origin` is added when an origin is echoed, so caches
//! keep answers for different origins apart.

use http::HeaderValue;

use gangplank_model::policy::CorsConfig;

/// Which `Origin` values get CORS headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginMatcher {
    /// `*`: every request, answered with `Access-Control-Allow-Origin: *`.
    any: bool,
    /// Whole origins, lowercased (`https://app.example.com`, `null`).
    exact: Vec<String>,
    /// `scheme://*.host[:port]`: (`scheme://`, `.host[:port]`), lowercased.
    wildcards: Vec<(String, String)>,
}

impl OriginMatcher {
    /// The matcher of `cors-allow-origin` entries (validated by the model).
    pub fn new(origins: &[String]) -> OriginMatcher {
        let mut matcher = OriginMatcher::default();
        for origin in origins {
            let origin = origin.trim().to_ascii_lowercase();
            if origin == "*" {
                matcher.any = true;
            } else if let Some((scheme, rest)) = origin.split_once("://")
                && let Some(suffix) = rest.strip_prefix('*')
            {
                matcher
                    .wildcards
                    .push((format!("{scheme}://"), suffix.to_owned()));
            } else if !origin.is_empty() {
                matcher.exact.push(origin);
            }
        }
        matcher
    }

    /// True for `*`: every request matches and the answer is `*`.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// True when the request's `Origin` is allowed.
    pub fn matches(&self, origin: &[u8]) -> bool {
        if self.any {
            return true;
        }
        if self
            .exact
            .iter()
            .any(|e| e.as_bytes().eq_ignore_ascii_case(origin))
        {
            return true;
        }
        self.wildcards.iter().any(|(scheme, suffix)| {
            origin.len() > scheme.len() + suffix.len()
                && origin[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
                && origin[origin.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
                && origin[scheme.len()..origin.len() - suffix.len()]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        })
    }
}

/// A location's CORS policy.
#[derive(Debug, Clone)]
pub struct Cors {
    /// Allowed origins.
    pub origins: OriginMatcher,
    /// `Access-Control-Allow-Methods`.
    pub allow_methods: HeaderValue,
    /// `Access-Control-Allow-Headers`.
    pub allow_headers: HeaderValue,
    /// `Access-Control-Allow-Credentials: true` is sent.
    pub allow_credentials: bool,
    /// `Access-Control-Expose-Headers`, when any.
    pub expose_headers: Option<HeaderValue>,
    /// `Access-Control-Max-Age`.
    pub max_age: HeaderValue,
}

impl Cors {
    /// The policy of `config`; `Ok(None)` when CORS is off.
    pub fn compile(config: &CorsConfig) -> Result<Option<Cors>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let value = |what: &str, text: String| {
            HeaderValue::from_str(&text)
                .map_err(|_| format!("{what} {text:?} is not a header value"))
        };
        Ok(Some(Cors {
            origins: OriginMatcher::new(&config.allow_origin),
            // ingress-nginx's defaults: "GET, PUT, POST, DELETE, PATCH, OPTIONS" and
            // "DNT,Keep-Alive,User-Agent,...".
            allow_methods: value("cors-allow-methods", config.allow_methods.join(", "))?,
            allow_headers: value("cors-allow-headers", config.allow_headers.join(","))?,
            allow_credentials: config.allow_credentials,
            expose_headers: if config.expose_headers.is_empty() {
                None
            } else {
                Some(value(
                    "cors-expose-headers",
                    config.expose_headers.join(","),
                )?)
            },
            max_age: HeaderValue::from(config.max_age),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(list: &[&str]) -> OriginMatcher {
        OriginMatcher::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn origin_matching() {
        let m = matcher(&[
            "https://app.example.com",
            "https://*.example.org",
            "http://*.local.test:8080",
            "null",
        ]);
        assert!(!m.is_any());
        for ok in [
            "https://app.example.com",
            "HTTPS://APP.EXAMPLE.COM",
            "https://a.example.org",
            "https://a-1.example.org",
            "http://x.local.test:8080",
            "null",
        ] {
            assert!(m.matches(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "https://app.example.com.evil.test",
            "https://evil.test/https://app.example.com",
            "http://app.example.com",
            "https://example.org",
            "https://.example.org",
            "https://a.b.example.org",
            "https://a_b.example.org",
            "http://x.local.test",
            "http://x.local.test:8081",
            "",
        ] {
            assert!(!m.matches(bad.as_bytes()), "{bad}");
        }
        let any = matcher(&["https://a.example.com", "*"]);
        assert!(any.is_any() && any.matches(b"https://whatever.test"));
    }

    fn any_origin() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let label = prop::sample::select(vec!["a", "app", "x-1", "B", "example", "org"]);
        (
            prop::sample::select(vec!["http", "https", "HTTPS"]),
            prop::collection::vec(label, 1..4),
            prop::option::of(prop::sample::select(vec![80u16, 8080])),
        )
            .prop_map(|(scheme, labels, port)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{scheme}://{}{port}", labels.join("."))
            })
    }

    fn any_pattern() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (any_origin(), any::<bool>()).prop_map(|(origin, wildcard)| {
            let origin = origin.to_ascii_lowercase();
            match origin.split_once("://") {
                Some((scheme, rest)) if wildcard => format!("{scheme}://*.{rest}"),
                _ => origin,
            }
        })
    }

    proptest::proptest! {
        /// The matcher agrees with ingress-nginx's origin regex (`QuoteMeta`, the `*`
        /// replaced by one label, case-insensitive), anchored at both ends.
        #[test]
        fn origin_matcher_agrees_with_the_anchored_regex(
            patterns in proptest::collection::vec(any_pattern(), 1..4),
            origins in proptest::collection::vec(any_origin(), 1..8),
        ) {
            let alternatives: Vec<String> = patterns
                .iter()
                .map(|p| regex::escape(p).replacen("\\*", "[A-Za-z0-9\\-]+", 1))
                .collect();
            let reference = regex::Regex::new(&format!("(?i)^(?:{})$", alternatives.join("|"))).unwrap();
            let m = OriginMatcher::new(&patterns);
            for origin in &origins {
                proptest::prop_assert_eq!(m.matches(origin.as_bytes()), reference.is_match(origin), "{} vs {:?}", origin, patterns);
            }
            for pattern in &patterns {
                let concrete = pattern.replacen('*', "zz-9", 1);
                proptest::prop_assert!(m.matches(concrete.as_bytes()), "{}", concrete);
            }
        }
    }

    #[test]
    fn header_values_and_defaults() {
        assert!(Cors::compile(&CorsConfig::default()).unwrap().is_none());
        let cors = Cors::compile(&CorsConfig {
            enabled: true,
            ..CorsConfig::default()
        })
        .unwrap()
        .unwrap();
        assert!(cors.origins.is_any());
        assert_eq!(cors.allow_methods, "GET, PUT, POST, DELETE, PATCH, OPTIONS");
        assert_eq!(
            cors.allow_headers,
            "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
        );
        assert!(cors.allow_credentials);
        assert!(cors.expose_headers.is_none());
        assert_eq!(cors.max_age, "1728000");
        let cors = Cors::compile(&CorsConfig {
            enabled: true,
            expose_headers: vec!["X-A".into(), "X-B".into()],
            max_age: 60,
            ..CorsConfig::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(cors.expose_headers.unwrap(), "X-A,X-B");
        assert_eq!(cors.max_age, "60");
    }
}
