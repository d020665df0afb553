//! Redirects: `ssl-redirect` / `force-ssl-redirect` (with `preserve-trailing-slash`,
//! `no-tls-redirect-locations`, `http-redirect-code`), `permanent-redirect[-code]`,
//! `temporal-redirect[-code]`, `app-root`, `from-to-www-redirect`, and the HSTS header.
//!
//! ingress-nginx semantics (Part B §3.13, §5.2):
//! - HTTPS redirect: none for a location whose path starts with one of
//!   `no-tls-redirect-locations` (default `/.well-known/acme-challenge`); otherwise
//!   with `force-ssl-redirect` whenever the scheme is http; otherwise with
//!   `ssl-redirect` (default true) when the scheme is http and the host has a
//!   certificate of its own. Target `https://<host without port><request_uri>`, one
//!   trailing `/` of the request URI removed unless `preserve-trailing-slash`; status
//!   `http-redirect-code` (308).
//! - `temporal-redirect` wins over `permanent-redirect`; the URL may hold nginx
//!   variables; codes 302 / 301 by default.
//! - `app-root`: `/` answers 302 to `<scheme>://<Host><app-root>`.
//! - `from-to-www-redirect`: the `www.` twin of the host (or the bare host for a
//!   `www.` name), when no server has that name, answers every request with
//!   `http-redirect-code` to the same URI on the server's name (one trailing `/`
//!   removed, as ingress-nginx's redirect server does).
//! - HSTS: `Strict-Transport-Security: max-age=<hsts-max-age>[; includeSubDomains][;
//!   preload]` on HTTPS responses. **Part A.2 fix:** only for hosts that have their own
//!   certificate (ingress-nginx sent it for every HTTPS response).
//!
//! `use-port-in-redirects` ([`super::ResponsePolicies::port_in_redirects`]) adds the
//! proxy's HTTPS listener port to the HTTPS redirect, as ingress-nginx adds
//! `--https-port`; `app-root` keeps the `Host` the client sent (nginx's
//! `$http_host`), port included, and the `www.` twin names non-default ports anyway.

use gangplank_model::{GeneralConfig, Location, Server};
use http::{HeaderValue, StatusCode};

use super::template::Template;

/// The HTTPS redirect of a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslRedirect {
    /// `force-ssl-redirect`: redirect http even without a certificate.
    pub force: bool,
    /// `ssl-redirect`: redirect http when the host has a certificate.
    pub when_certificate: bool,
    /// `preserve-trailing-slash`.
    pub preserve_trailing_slash: bool,
    /// `http-redirect-code`.
    pub code: StatusCode,
}

impl SslRedirect {
    /// The location's HTTPS redirect; `None` when it can never redirect.
    pub fn compile(location: &Location, general: &GeneralConfig) -> Option<SslRedirect> {
        let exempt = general
            .no_tls_redirect_locations()
            .iter()
            .any(|prefix| !prefix.is_empty() && location.path.starts_with(prefix));
        if exempt {
            return None;
        }
        let redirect = &location.redirect;
        let force = redirect
            .force_ssl_redirect
            .unwrap_or_else(|| general.force_ssl_redirect());
        let when_certificate = redirect
            .ssl_redirect
            .unwrap_or_else(|| general.ssl_redirect());
        if !(force || when_certificate) {
            return None;
        }
        Some(SslRedirect {
            force,
            when_certificate,
            preserve_trailing_slash: redirect
                .preserve_trailing_slash
                .unwrap_or_else(|| general.preserve_trailing_slash()),
            code: redirect_code(general.http_redirect_code()),
        })
    }
}

/// `http-redirect-code` (validated to 301, 302, 307 or 308), as a status.
pub fn redirect_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::PERMANENT_REDIRECT)
}

/// `permanent-redirect` / `temporal-redirect`: every request of the location answers
/// with a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationRedirect {
    /// The status (`*-redirect-code`).
    pub code: StatusCode,
    /// The URL, possibly with variables.
    pub url: Template,
}

impl LocationRedirect {
    /// The location's redirect (temporal first), if any.
    pub fn compile(location: &Location) -> Result<Option<LocationRedirect>, String> {
        let Some((code, url)) = location.redirect.location_redirect() else {
            return Ok(None);
        };
        let code = StatusCode::from_u16(code)
            .ok()
            .filter(StatusCode::is_redirection)
            .ok_or_else(|| format!("redirect code {code} is not a 3xx status"))?;
        Ok(Some(LocationRedirect {
            code,
            url: Template::parse(url).map_err(|e| format!("redirect URL {e}"))?,
        }))
    }
}

/// `from-to-www-redirect`: where the twin host sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WwwRedirect {
    /// The server's own name (the redirect's host).
    pub host: String,
    /// `http-redirect-code`.
    pub code: StatusCode,
}

/// The `www.` twin of a server with `from-to-www-redirect`: `www.<host>`, or the bare
/// name of a `www.` host. None for the default server and wildcard hosts.
pub fn www_twin(server: &Server) -> Option<String> {
    if !server.redirect_from_to_www {
        return None;
    }
    let host = server.hostname.to_ascii_lowercase();
    if host == "_" || host.starts_with("*.") {
        return None;
    }
    match host.strip_prefix("www.") {
        Some("") => None,
        Some(bare) => Some(bare.to_owned()),
        None => Some(format!("www.{host}")),
    }
}

/// The `Strict-Transport-Security` value of the ConfigMap, if `hsts` is on.
pub fn hsts_value(general: &GeneralConfig) -> Option<HeaderValue> {
    if !general.hsts() {
        return None;
    }
    let mut value = format!("max-age={}", general.hsts_max_age().as_secs());
    if general.hsts_include_subdomains() {
        value.push_str("; includeSubDomains");
    }
    if general.hsts_preload() {
        value.push_str("; preload");
    }
    HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{general, location};
    use serde_json::json;

    #[test]
    fn hsts_header_text() {
        assert_eq!(
            hsts_value(&GeneralConfig::default()).unwrap(),
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(
            hsts_value(&general(
                json!({"hsts-max-age": 600, "hsts-include-subdomains": false, "hsts-preload": true})
            ))
            .unwrap(),
            "max-age=600; preload"
        );
        assert_eq!(
            hsts_value(&general(json!({"hsts-preload": true}))).unwrap(),
            "max-age=31536000; includeSubDomains; preload"
        );
        assert!(hsts_value(&general(json!({"hsts": false}))).is_none());
    }

    #[test]
    fn ssl_redirect_settings() {
        let defaults = GeneralConfig::default();
        let r = SslRedirect::compile(&location(json!({})), &defaults).unwrap();
        assert_eq!(
            r,
            SslRedirect {
                force: false,
                when_certificate: true,
                preserve_trailing_slash: false,
                code: StatusCode::PERMANENT_REDIRECT
            }
        );
        // ACME challenges are never redirected (the location path is compared).
        assert!(
            SslRedirect::compile(
                &location(json!({"path": "/.well-known/acme-challenge/tok"})),
                &defaults
            )
            .is_none()
        );
        assert!(
            SslRedirect::compile(
                &location(json!({"redirect": {"sslRedirect": false}})),
                &defaults
            )
            .is_none()
        );
        let g = general(
            json!({"ssl-redirect": false, "http-redirect-code": 301, "preserve-trailing-slash": true}),
        );
        assert!(SslRedirect::compile(&location(json!({})), &g).is_none());
        let forced = SslRedirect::compile(
            &location(json!({"redirect": {"forceSslRedirect": true}})),
            &g,
        )
        .unwrap();
        assert!(forced.force && !forced.when_certificate && forced.preserve_trailing_slash);
        assert_eq!(forced.code, StatusCode::MOVED_PERMANENTLY);
    }

    #[test]
    fn temporal_wins_and_twins() {
        let l = location(json!({"redirect": {
            "permanentUrl": "https://new.example.com$request_uri",
            "temporalUrl": "https://maintenance.example.com/",
            "temporalCode": 307
        }}));
        let r = LocationRedirect::compile(&l).unwrap().unwrap();
        assert_eq!(r.code, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(r.url.as_literal(), Some("https://maintenance.example.com/"));
        assert!(
            LocationRedirect::compile(&location(json!({})))
                .unwrap()
                .is_none()
        );

        let server = |host: &str, on: bool| Server {
            hostname: host.into(),
            redirect_from_to_www: on,
            ..Server::default()
        };
        assert_eq!(
            www_twin(&server("Example.com", true)).as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            www_twin(&server("www.example.com", true)).as_deref(),
            Some("example.com")
        );
        assert_eq!(www_twin(&server("example.com", false)), None);
        assert_eq!(www_twin(&server("*.example.com", true)), None);
        assert_eq!(www_twin(&server("_", true)), None);
        assert_eq!(
            www_twin(&server("www.localhost", true)).as_deref(),
            Some("localhost")
        );
    }
}
