//! External authentication (`auth-url` and friends, ConfigMap `global-auth-*`),
//! compiled at apply time into what the proxy needs per request
//! (`gangplank_proxy::policy::extauth`): the parsed URL (or its template), the method,
//! the sign-in redirect, the headers to copy, the cache key and durations, a TLS client
//! configuration for `https` services and the timeouts.
//!
//! Which one applies to a location (ingress-nginx's `shouldApplyGlobalAuth` and
//! `isLocationInLocationList`):
//! - a location whose path starts with one of `no-auth-locations` (default
//!   `/.well-known/acme-challenge`) gets no external authentication at all, not even
//!   its own `auth-url` (ingress-nginx leaves out `auth_request` there);
//! - otherwise its own `auth-url` wins;
//! - otherwise the ConfigMap's `global-auth-url`, unless `enable-global-auth: "false"`.
//!
//! TLS to the auth service follows nginx's auth location: SNI with the URL's host,
//! and the certificate is not verified (`proxy_ssl_verify` is off there).

use std::sync::Arc;
use std::time::Duration;

use gangplank_model::policy::{CacheDuration, ExternalAuth as ExternalAuthSpec, ProxySsl};
use gangplank_model::{GeneralConfig, Location};
use http::{HeaderName, Method};

use super::headers::{RequestHeader, proxy_set_headers};
use super::template::Template;
use super::upstream::UpstreamTls;

/// Where the auth request goes: scheme, host, port and request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrl {
    /// `https://`.
    pub https: bool,
    /// The host name or IP address (IPv6 without brackets), lowercase.
    pub host: String,
    /// The port (80 / 443 when the URL has none).
    pub port: u16,
    /// Path and query (`/` when the URL has no path).
    pub path_and_query: String,
}

impl AuthUrl {
    /// Parses an absolute `http(s)://host[:port][/path][?query]` URL without user
    /// info. Used at apply time for literal URLs and per request for expanded
    /// templates, so it refuses anything odd rather than guessing.
    pub fn parse(url: &str) -> Result<AuthUrl, String> {
        let invalid = |why: &str| format!("auth URL {url:?}: {why}");
        if url.len() > 8192 || url.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(invalid("not visible ASCII, or too long"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("not absolute"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(invalid("scheme is not http or https")),
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid("no host, or user info"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (ip, after) = v6.split_once(']').ok_or_else(|| invalid("bad IPv6"))?;
            (ip, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
        {
            return Err(invalid("bad host"));
        }
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid("bad port"))?,
        };
        let path_and_query = match tail {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        if http::uri::PathAndQuery::try_from(path_and_query.as_str()).is_err() {
            return Err(invalid("bad path"));
        }
        Ok(AuthUrl {
            https,
            host: host.to_ascii_lowercase(),
            port,
            path_and_query,
        })
    }
}

impl std::fmt::Display for AuthUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(
                f,
                "{scheme}://[{}]:{}{}",
                self.host, self.port, self.path_and_query
            )
        } else {
            write!(
                f,
                "{scheme}://{}:{}{}",
                self.host, self.port, self.path_and_query
            )
        }
    }
}

/// The auth service's address: fixed, or evaluated per request.
#[derive(Debug, Clone)]
pub enum AuthTarget {
    /// A URL without variables, parsed once.
    Fixed(AuthUrl),
    /// A URL with variables (`https://$host/oauth2/auth`), expanded per request and
    /// then parsed with [`AuthUrl::parse`].
    Template(Template),
}

/// `auth-signin` and its redirect parameter.
#[derive(Debug, Clone)]
pub struct Signin {
    /// The sign-in URL (variables allowed, URI-escaped).
    pub url: Template,
    /// When the URL does not carry the redirect parameter itself: the separator
    /// (`?` or `&`) and the parameter name to append, with
    /// `<scheme>://<Host><escaped request URI>` as its value.
    pub append: Option<(char, String)>,
}

/// `auth-cache-key` and `auth-cache-duration`.
#[derive(Debug, Clone)]
pub struct AuthCache {
    /// The key (nginx variables), prefixed with the location's name.
    pub key: Template,
    /// Status code -> how long an answer with it is reused.
    pub durations: Vec<(u16, Duration)>,
}

impl AuthCache {
    /// How long an answer with `status` may be reused, if at all.
    pub fn duration_for(&self, status: u16) -> Option<Duration> {
        self.durations
            .iter()
            .find(|(code, _)| *code == status)
            .map(|(_, d)| *d)
            .filter(|d| !d.is_zero())
    }
}

/// One location's external authentication, ready for requests.
#[derive(Debug, Clone)]
pub struct ExternalAuth {
    /// The service.
    pub target: AuthTarget,
    /// The URL as configured, part of cache keys: answers of another service (after a
    /// configuration change) are never reused.
    pub url_text: String,
    /// The ConfigMap's `global-auth-url` (for logs).
    pub global: bool,
    /// `auth-method`; `None` sends `GET` (nginx's subrequests are GET).
    pub method: Option<Method>,
    /// `auth-signin`.
    pub signin: Option<Signin>,
    /// `auth-response-headers`: copied from a 2xx auth answer into the upstream
    /// request, replacing (or removing) the client's.
    pub response_headers: Vec<HeaderName>,
    /// `auth-request-redirect`: the `X-Auth-Request-Redirect` value; `None` sends the
    /// request URI.
    pub request_redirect: Option<Template>,
    /// `auth-cache-key` and durations.
    pub cache: Option<AuthCache>,
    /// `auth-always-set-cookie`.
    pub always_set_cookie: bool,
    /// `auth-proxy-set-headers`: extra headers on the auth request.
    pub proxy_set_headers: Vec<RequestHeader>,
    /// TLS for `https` services (also for templates, which may expand to https).
    pub tls: Arc<UpstreamTls>,
    /// Connecting (TCP and TLS) to the service.
    pub connect_timeout: Duration,
    /// Waiting for the answer (header and body).
    pub read_timeout: Duration,
}

/// True when `path` is exempt from external authentication (`no-auth-locations`).
pub fn exempt(path: &str, general: &GeneralConfig) -> bool {
    general
        .no_auth_locations()
        .iter()
        .any(|prefix| !prefix.is_empty() && path.starts_with(prefix))
}

/// The external authentication of `location`, if any: its own, else the global one.
pub(super) fn compile(
    location: &Location,
    general: &GeneralConfig,
    warnings: &mut Vec<String>,
) -> Result<Option<ExternalAuth>, String> {
    if exempt(&location.path, general) {
        return Ok(None);
    }
    let (spec, global) = if location.external_auth.is_enabled() {
        (location.external_auth.clone(), false)
    } else if location.enable_global_auth
        && let Some(spec) = general.global_auth()
    {
        (spec, true)
    } else {
        return Ok(None);
    };
    let what = if global {
        "global-auth-url"
    } else {
        "auth-url"
    };
    let connect_timeout = location
        .proxy
        .connect_timeout
        .map_or_else(|| general.proxy_connect_timeout(), |d| d.as_duration());
    let read_timeout = location
        .proxy
        .read_timeout
        .map_or_else(|| general.proxy_read_timeout(), |d| d.as_duration());
    compile_spec(&spec, global, connect_timeout, read_timeout, warnings)
        .map(Some)
        .map_err(|e| format!("{what}: {e}"))
}

fn compile_spec(
    spec: &ExternalAuthSpec,
    global: bool,
    connect_timeout: Duration,
    read_timeout: Duration,
    warnings: &mut Vec<String>,
) -> Result<ExternalAuth, String> {
    let url = spec.url.as_deref().ok_or("no URL")?;
    let template = Template::parse(url)?;
    let target = match template.as_literal() {
        Some(text) => AuthTarget::Fixed(AuthUrl::parse(text)?),
        None => AuthTarget::Template(template),
    };
    let signin = match &spec.signin {
        None => None,
        Some(url) => Some(Signin {
            url: Template::parse(url)?,
            append: signin_append(url, spec.signin_redirect_param()),
        }),
    };
    let response_headers = spec
        .response_headers
        .iter()
        .map(|name| {
            HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("auth-response-headers: {name:?} is not a header name"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let request_redirect = spec
        .request_redirect
        .as_deref()
        .map(Template::parse)
        .transpose()?;
    let cache = match &spec.cache_key {
        Some(key) if !key.is_empty() => Some(AuthCache {
            key: Template::parse(key)?,
            durations: durations(&spec.effective_cache_duration()),
        }),
        _ => None,
    };
    let proxy_set_headers = proxy_set_headers(Some(&spec.proxy_set_headers), warnings)
        .map_err(|e| format!("auth-proxy-set-headers: {e}"))?;
    let ssl = ProxySsl {
        server_name: true,
        ..ProxySsl::default()
    };
    let tls = super::upstream::tls(&ssl, false, warnings)?;
    Ok(ExternalAuth {
        target,
        url_text: url.to_owned(),
        global,
        method: spec
            .method
            .and_then(|m| Method::from_bytes(m.as_str().as_bytes()).ok()),
        signin,
        response_headers,
        request_redirect,
        cache,
        always_set_cookie: spec.always_set_cookie,
        proxy_set_headers,
        tls,
        connect_timeout,
        read_timeout,
    })
}

/// ingress-nginx's `buildAuthSignURL`: the redirect parameter is appended unless the
/// sign-in URL already has it.
fn signin_append(url: &str, param: &str) -> Option<(char, String)> {
    match url.split_once('?') {
        None => Some(('?', param.to_owned())),
        Some((_, "")) => Some(('?', param.to_owned())),
        Some((_, query)) => {
            let present = query.split('&').any(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                name == param && !value.is_empty()
            });
            (!present).then(|| ('&', param.to_owned()))
        }
    }
}

fn durations(list: &[CacheDuration]) -> Vec<(u16, Duration)> {
    let mut out: Vec<(u16, Duration)> = Vec::new();
    for entry in list {
        for code in &entry.codes {
            // The first entry naming a code wins, as nginx's `proxy_cache_valid`.
            if !out.iter().any(|(c, _)| c == code) {
                out.push((*code, entry.duration.as_duration()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::general;
    use serde_json::json;

    fn location(mut value: serde_json::Value) -> Location {
        value["backend"] = json!("b");
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn urls_parse_strictly() {
        let u = AuthUrl::parse("https://Auth.Example.com:8443/verify?x=1").unwrap();
        assert_eq!(
            u,
            AuthUrl {
                https: true,
                host: "auth.example.com".into(),
                port: 8443,
                path_and_query: "/verify?x=1".into()
            }
        );
        let u = AuthUrl::parse("http://auth.ns.svc.cluster.local").unwrap();
        assert_eq!((u.port, u.path_and_query.as_str()), (80, "/"));
        let u = AuthUrl::parse("http://[::1]:9000?a").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path_and_query.as_str()),
            ("::1", 9000, "/?a")
        );
        for bad in [
            "ftp://a/",
            "http://",
            "http://u@a/",
            "http://a:0/",
            "http://a:99999/",
            "http://a b/",
            "http://a/\r\n",
            "/relative",
            "http://a%2f/",
        ] {
            assert!(AuthUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_url_wins_and_no_auth_locations_exempt() {
        let g = general(json!({"global-auth-url": "http://global.example.com/check"}));
        let own =
            location(json!({"path": "/", "externalAuth": {"url": "http://own.example.com/"}}));
        let auth = compile(&own, &g, &mut Vec::new()).unwrap().unwrap();
        assert!(!auth.global);
        assert!(matches!(&auth.target, AuthTarget::Fixed(u) if u.host == "own.example.com"));

        let plain = location(json!({"path": "/api", "enableGlobalAuth": true}));
        let auth = compile(&plain, &g, &mut Vec::new()).unwrap().unwrap();
        assert!(auth.global);
        let opted_out = location(json!({"path": "/api", "enableGlobalAuth": false}));
        assert!(compile(&opted_out, &g, &mut Vec::new()).unwrap().is_none());
        let acme = location(
            json!({"path": "/.well-known/acme-challenge/", "enableGlobalAuth": true, "externalAuth": {"url": "http://own.example.com/"}}),
        );
        assert!(compile(&acme, &g, &mut Vec::new()).unwrap().is_none());
        // Without a global URL, nothing.
        assert!(
            compile(&plain, &GeneralConfig::default(), &mut Vec::new())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn settings_compile() {
        let l = location(json!({"path": "/", "externalAuth": {
            "url": "https://$host/oauth2/auth",
            "method": "POST",
            "signin": "https://$host/oauth2/start",
            "responseHeaders": ["X-User", "X-Email"],
            "requestRedirect": "/after",
            "cacheKey": "$http_authorization",
            "alwaysSetCookie": true,
            "proxySetHeaders": {"X-Team": "edge", "X-Client": "$remote_addr"}
        }}));
        let a = compile(&l, &GeneralConfig::default(), &mut Vec::new())
            .unwrap()
            .unwrap();
        assert!(matches!(a.target, AuthTarget::Template(_)));
        assert_eq!(a.method, Some(Method::POST));
        assert_eq!(
            a.signin.as_ref().unwrap().append,
            Some(('?', "rd".to_owned()))
        );
        assert_eq!(a.response_headers, ["x-user", "x-email"]);
        let cache = a.cache.as_ref().unwrap();
        // ingress-nginx's default when only the key is set: 200 202 401 for 5m.
        for code in [200, 202, 401] {
            assert_eq!(cache.duration_for(code), Some(Duration::from_secs(300)));
        }
        assert_eq!(cache.duration_for(403), None);
        assert!(a.always_set_cookie);
        assert_eq!(a.proxy_set_headers.len(), 2);
        assert!(a.tls.sends_sni() && !a.tls.verifies());
        assert_eq!(a.connect_timeout, Duration::from_secs(5));
    }

    #[test]
    fn signin_redirect_parameter() {
        assert_eq!(
            signin_append("https://a/start", "rd"),
            Some(('?', "rd".into()))
        );
        assert_eq!(
            signin_append("https://a/start?x=1", "rd"),
            Some(('&', "rd".into()))
        );
        assert_eq!(
            signin_append("https://a/start?rd=$escaped_request_uri", "rd"),
            None
        );
        assert_eq!(
            signin_append("https://a/start?rd=$request_uri", "return_to"),
            Some(('&', "return_to".into()))
        );
    }
}
