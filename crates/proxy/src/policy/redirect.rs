//! Redirect targets (see [`gangplank_store::policy::SslRedirect`] and its module for
//! the settings and ingress-nginx's semantics): the HTTPS redirect, `app-root`, the
//! `www.` twin's redirect, and whether the HTTPS redirect applies at all.

use gangplank_store::policy::SslRedirect;

use crate::headers::host_without_port;

/// ingress-nginx's `redirect_to_https`: a forced redirect for any http request,
/// otherwise `ssl-redirect` for http requests to a host with its own certificate.
/// `https` is the client's scheme (a trusted `X-Forwarded-Proto` counts).
pub fn wants_https(
    redirect: &SslRedirect,
    https: bool,
    host_has_certificate: impl FnOnce() -> bool,
) -> bool {
    if https {
        return false;
    }
    redirect.force || (redirect.when_certificate && host_has_certificate())
}

/// Removes one trailing `/` of the whole request URI (query included), as
/// ingress-nginx's Lua does: `/a/` becomes `/a`, `/` becomes empty, `/a/?x` stays.
fn strip_one_slash(request_uri: &str) -> &str {
    request_uri.strip_suffix('/').unwrap_or(request_uri)
}

/// The HTTPS redirect's target: `https://<host without port><request_uri>`, with
/// `:<port>` (the HTTPS listener's) when `use-port-in-redirects` gives one, as
/// ingress-nginx does (even for 443).
pub fn https_target(
    host: &str,
    request_uri: &str,
    preserve_trailing_slash: bool,
    port: Option<u16>,
) -> String {
    let uri = if preserve_trailing_slash {
        request_uri
    } else {
        strip_one_slash(request_uri)
    };
    match port {
        Some(port) => format!("https://{}:{port}{uri}", host_without_port(host)),
        None => format!("https://{}{uri}", host_without_port(host)),
    }
}

/// `app-root`: `<scheme>://<Host header><app-root>`.
pub fn app_root_target(https: bool, http_host: &str, app_root: &str) -> String {
    format!("{}://{http_host}{app_root}", scheme(https))
}

/// The `www.` twin's target: the same scheme and URI (one trailing `/` removed) on
/// `host`, with the port when it is not the scheme's default.
pub fn www_target(https: bool, host: &str, port: u16, request_uri: &str) -> String {
    let default_port = if https { 443 } else { 80 };
    let uri = strip_one_slash(request_uri);
    if port == default_port {
        format!("{}://{host}{uri}", scheme(https))
    } else {
        format!("{}://{host}:{port}{uri}", scheme(https))
    }
}

fn scheme(https: bool) -> &'static str {
    if https { "https" } else { "http" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn redirect(force: bool, when_certificate: bool) -> SslRedirect {
        SslRedirect {
            force,
            when_certificate,
            preserve_trailing_slash: false,
            code: StatusCode::PERMANENT_REDIRECT,
        }
    }

    #[test]
    fn when_to_redirect() {
        assert!(wants_https(&redirect(false, true), false, || true));
        assert!(!wants_https(&redirect(false, true), false, || false));
        assert!(!wants_https(&redirect(false, true), true, || true));
        assert!(wants_https(&redirect(true, false), false, || false));
        assert!(!wants_https(&redirect(true, false), true, || false));
        assert!(!wants_https(&redirect(false, false), false, || true));
    }

    #[test]
    fn https_targets() {
        assert_eq!(
            https_target("app.example.com:8080", "/a/b/?x=1", false, None),
            "https://app.example.com/a/b/?x=1"
        );
        assert_eq!(
            https_target("app.example.com", "/a/b/", false, None),
            "https://app.example.com/a/b"
        );
        assert_eq!(
            https_target("app.example.com", "/a/b/", true, None),
            "https://app.example.com/a/b/"
        );
        assert_eq!(
            https_target("app.example.com", "/", false, None),
            "https://app.example.com"
        );
        assert_eq!(
            https_target("app.example.com", "/", true, None),
            "https://app.example.com/"
        );
        assert_eq!(
            https_target("app.example.com", "/a//", false, None),
            "https://app.example.com/a/"
        );
        assert_eq!(
            https_target("[2001:db8::1]:80", "/x", false, None),
            "https://[2001:db8::1]/x"
        );
        assert_eq!(
            https_target("app.example.com:8080", "/a/", false, Some(8443)),
            "https://app.example.com:8443/a"
        );
        assert_eq!(
            https_target("[2001:db8::1]:80", "/", true, Some(443)),
            "https://[2001:db8::1]:443/"
        );
        assert_eq!(
            https_target("app.example.com", "/p?q=a/", false, None),
            "https://app.example.com/p?q=a"
        );
    }

    #[test]
    fn app_root_and_www_targets() {
        assert_eq!(
            app_root_target(false, "app.example.com:8080", "/app"),
            "http://app.example.com:8080/app"
        );
        assert_eq!(
            app_root_target(true, "app.example.com", "/app/"),
            "https://app.example.com/app/"
        );
        assert_eq!(
            www_target(false, "example.com", 80, "/a/?b=1"),
            "http://example.com/a/?b=1"
        );
        assert_eq!(
            www_target(true, "example.com", 443, "/a/"),
            "https://example.com/a"
        );
        assert_eq!(
            www_target(false, "example.com", 8080, "/"),
            "http://example.com:8080"
        );
        assert_eq!(
            www_target(true, "www.example.com", 8443, "/x"),
            "https://www.example.com:8443/x"
        );
    }
}
