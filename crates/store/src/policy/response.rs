//! Response policies, compiled at apply time: what the proxy does to an upstream's
//! answer on its way to the client (`gangplank_proxy::policy::response` applies them).
//!
//! - ConfigMap `use-gzip`, `gzip-level`, `gzip-min-length`, `gzip-types`: [`Gzip`],
//!   shared by every location. As nginx's `gzip` with ingress-nginx's settings
//!   (`gzip_proxied any`, `gzip_vary on`, `gzip_http_version 1.1`): `text/html` is
//!   always compressed, `*` compresses every type.
//! - `limit-rate` / `limit-rate-after` (KiB/s, KiB): [`LimitRate`], a per-request
//!   bandwidth cap of the response body after a first part sent at full speed.
//! - `proxy-cookie-domain` / `proxy-cookie-path`: [`CookieRewrites`], nginx's
//!   `proxy_cookie_domain` / `proxy_cookie_path` on upstream `Set-Cookie` headers.
//! - `proxy-redirect-from` / `-to`: [`RedirectRewrite`], nginx's `proxy_redirect` on
//!   upstream `Location` and `Refresh` headers.
//! - `connection-proxy-header`: the `Connection` header sent upstream.
//! - `use-port-in-redirects` (the annotation; the controller fills in the ConfigMap's
//!   value as its default, as ingress-nginx): the HTTPS redirect names the HTTPS
//!   listener's port.
//!
//! Values were validated by the model (plain ASCII, host names, paths, header
//! values); what is compiled here is lower-cased or parsed once, so the request path
//! only compares bytes.

use gangplank_model::{GeneralConfig, Location};
use http::HeaderValue;

use super::template::Template;

/// Response compression (`use-gzip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gzip {
    /// `gzip-level`, 1..9.
    pub level: u32,
    /// `gzip-min-length`: responses with a smaller `Content-Length` are sent as is.
    pub min_length: u64,
    /// `gzip-types`.
    pub types: GzipTypes,
}

/// The MIME types `gzip-types` compresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GzipTypes {
    /// `*`: every response, with or without a `Content-Type`.
    Any,
    /// These `type/subtype` values, lower-case (`text/html` always among them).
    List(Vec<String>),
}

impl Gzip {
    /// The ConfigMap's compression settings; `None` without `use-gzip`.
    pub fn compile(general: &GeneralConfig) -> Option<Gzip> {
        if !general.use_gzip() {
            return None;
        }
        let listed = general.gzip_types();
        let types = if listed.contains(&"*") {
            GzipTypes::Any
        } else {
            let mut list: Vec<String> = listed.iter().map(|t| t.to_ascii_lowercase()).collect();
            // nginx: "Responses with the text/html type are always compressed."
            list.push("text/html".to_owned());
            list.sort();
            list.dedup();
            GzipTypes::List(list)
        };
        Some(Gzip {
            level: u32::from(general.gzip_level().clamp(1, 9)),
            min_length: general.gzip_min_length(),
            types,
        })
    }

    /// True when a response of this `Content-Type` is compressed. Parameters
    /// (`; charset=utf-8`) are ignored, case does not matter; a response without a
    /// type is compressed only with `*`, as nginx.
    pub fn compresses_type(&self, content_type: Option<&[u8]>) -> bool {
        let list = match &self.types {
            GzipTypes::Any => return true,
            GzipTypes::List(list) => list,
        };
        let Some(value) = content_type else {
            return false;
        };
        let essence = value.split(|b| *b == b';').next().unwrap_or_default();
        let essence = essence.trim_ascii();
        list.iter()
            .any(|t| t.as_bytes().eq_ignore_ascii_case(essence))
    }
}

/// `limit-rate` / `limit-rate-after`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRate {
    /// Bytes per second of the response body once `after` bytes were sent.
    pub bytes_per_second: u64,
    /// Bytes sent at full speed first.
    pub after: u64,
}

impl LimitRate {
    /// The location's bandwidth limit; `None` when `limit-rate` is 0 (nginx: no
    /// limit, whatever `limit-rate-after` says).
    pub fn compile(location: &Location) -> Option<LimitRate> {
        let rate = location.rate_limit.limit_rate_bytes();
        (rate > 0).then(|| LimitRate {
            bytes_per_second: rate,
            after: location.rate_limit.limit_rate_after_bytes(),
        })
    }
}

/// `proxy-cookie-domain` and `proxy-cookie-path`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieRewrites {
    /// `Domain` equal to `from` (case-insensitive, a leading dot ignored on both
    /// sides) becomes `to`; the cookie's leading dot, if any, is kept.
    pub domain: Option<(String, String)>,
    /// `Path` starting with `from` has that prefix replaced by `to`.
    pub path: Option<(String, String)>,
}

impl CookieRewrites {
    /// The location's cookie rewrites; `None` when both are off.
    pub fn compile(location: &Location) -> Option<CookieRewrites> {
        let proxy = &location.proxy;
        let domain = proxy.cookie_domain.as_ref().map(|r| {
            let strip = |s: &str| s.strip_prefix('.').unwrap_or(s).to_ascii_lowercase();
            (strip(&r.from), r.to.clone())
        });
        let path = proxy
            .cookie_path
            .as_ref()
            .map(|r| (r.from.clone(), r.to.clone()));
        (domain.is_some() || path.is_some()).then_some(CookieRewrites { domain, path })
    }
}

/// `proxy-redirect-from` / `proxy-redirect-to`: an upstream `Location` (or the URL of
/// a `Refresh`) starting with `from` gets that prefix replaced by `to`. Both may hold
/// nginx variables (`https://$host/`), evaluated per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRewrite {
    /// The prefix to replace (compared as is, as nginx).
    pub from: Template,
    /// Its replacement.
    pub to: Template,
}

impl RedirectRewrite {
    /// The location's redirect rewrite; `None` when off.
    pub fn compile(location: &Location) -> Result<Option<RedirectRewrite>, String> {
        let proxy = &location.proxy;
        match (&proxy.redirect_from, &proxy.redirect_to) {
            (Some(from), Some(to)) if !from.is_empty() => Ok(Some(RedirectRewrite {
                from: Template::parse(from).map_err(|e| format!("proxy-redirect-from {e}"))?,
                to: Template::parse(to).map_err(|e| format!("proxy-redirect-to {e}"))?,
            })),
            _ => Ok(None),
        }
    }
}

/// A location's response policies. [`ResponsePolicies::is_empty`] lets the proxy skip
/// them with one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponsePolicies {
    /// Bandwidth limit of the response body.
    pub limit_rate: Option<LimitRate>,
    /// `Set-Cookie` rewrites.
    pub cookies: Option<CookieRewrites>,
    /// `Location` / `Refresh` rewrite.
    pub redirect: Option<RedirectRewrite>,
    /// The `Connection` header sent upstream (`connection-proxy-header`).
    pub connection: Option<HeaderValue>,
    /// The HTTPS redirect names the HTTPS listener's port.
    pub port_in_redirects: bool,
}

impl ResponsePolicies {
    /// Compiles `location`'s response policies; an error names the setting that
    /// cannot be used.
    pub fn compile(location: &Location) -> Result<ResponsePolicies, String> {
        let connection = if location.connection.is_empty() {
            None
        } else {
            Some(HeaderValue::from_str(&location.connection).map_err(|_| {
                format!(
                    "connection-proxy-header {:?} is not a header value",
                    location.connection
                )
            })?)
        };
        Ok(ResponsePolicies {
            limit_rate: LimitRate::compile(location),
            cookies: CookieRewrites::compile(location),
            redirect: RedirectRewrite::compile(location)?,
            connection,
            port_in_redirects: location.use_port_in_redirects,
        })
    }

    /// True when nothing applies to this location's responses (compression aside,
    /// which is global).
    pub fn is_empty(&self) -> bool {
        self.limit_rate.is_none()
            && self.cookies.is_none()
            && self.redirect.is_none()
            && self.connection.is_none()
            && !self.port_in_redirects
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{general, location};
    use serde_json::json;

    #[test]
    fn gzip_is_off_by_default_and_html_is_always_compressed() {
        assert!(Gzip::compile(&GeneralConfig::default()).is_none());
        let g = Gzip::compile(&general(json!({"use-gzip": true}))).unwrap();
        assert_eq!((g.level, g.min_length), (1, 256));
        for yes in [
            &b"text/html"[..],
            b"TEXT/HTML; charset=UTF-8",
            b"application/json",
            b" text/plain ;charset=utf-8",
            b"image/svg+xml",
        ] {
            assert!(
                g.compresses_type(Some(yes)),
                "{}",
                String::from_utf8_lossy(yes)
            );
        }
        for no in [
            &b"image/png"[..],
            b"application/octet-stream",
            b"text/htmlx",
            b"text/html2; charset=utf-8",
            b"",
            b";",
        ] {
            assert!(
                !g.compresses_type(Some(no)),
                "{}",
                String::from_utf8_lossy(no)
            );
        }
        assert!(!g.compresses_type(None));

        let only = Gzip::compile(&general(
            json!({"use-gzip": true, "gzip-types": ["application/wasm"], "gzip-level": 9, "gzip-min-length": 0}),
        ))
        .unwrap();
        assert_eq!((only.level, only.min_length), (9, 0));
        assert!(only.compresses_type(Some(b"application/wasm")));
        assert!(only.compresses_type(Some(b"text/html")));
        assert!(!only.compresses_type(Some(b"text/plain")));

        let any = Gzip::compile(&general(json!({"use-gzip": true, "gzip-types": ["*"]}))).unwrap();
        assert!(any.compresses_type(Some(b"image/png")));
        assert!(any.compresses_type(None));
    }

    #[test]
    fn location_settings() {
        let none = ResponsePolicies::compile(&location(json!({}))).unwrap();
        assert!(none.is_empty());

        let l = location(json!({
            "rateLimit": {"limitRate": 10, "limitRateAfter": 100},
            "proxy": {
                "cookieDomain": {"from": ".Internal.Local", "to": "example.com"},
                "cookiePath": {"from": "/old", "to": "/new"},
                "redirectFrom": "http://internal.local/",
                "redirectTo": "/"
            },
            "connection": "keep-alive",
            "usePortInRedirects": true
        }));
        let p = ResponsePolicies::compile(&l).unwrap();
        assert_eq!(
            p.limit_rate,
            Some(LimitRate {
                bytes_per_second: 10 * 1024,
                after: 100 * 1024
            })
        );
        let cookies = p.cookies.as_ref().unwrap();
        assert_eq!(
            cookies.domain,
            Some(("internal.local".into(), "example.com".into()))
        );
        assert_eq!(cookies.path, Some(("/old".into(), "/new".into())));
        let redirect = p.redirect.as_ref().unwrap();
        assert_eq!(redirect.from.as_literal(), Some("http://internal.local/"));
        assert_eq!(redirect.to.as_literal(), Some("/"));
        let with_host = location(json!({"proxy": {
            "redirectFrom": "http://internal.local/",
            "redirectTo": "https://$host/"
        }}));
        let variables = ResponsePolicies::compile(&with_host).unwrap();
        assert!(variables.redirect.unwrap().to.as_literal().is_none());
        assert_eq!(p.connection.as_ref().unwrap(), "keep-alive");
        assert!(p.port_in_redirects && !p.is_empty());

        // limit-rate-after alone does nothing (nginx).
        let after_only = location(json!({"rateLimit": {"limitRateAfter": 100}}));
        assert!(LimitRate::compile(&after_only).is_none());

        // A hostile Connection value (bypassing validation) fails to compile.
        let mut bad = location(json!({}));
        bad.connection = "close\r\nX-Injected: 1".into();
        assert!(ResponsePolicies::compile(&bad).is_err());
    }
}
