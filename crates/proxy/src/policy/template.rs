//! Evaluates the store's [`Template`]s (values with nginx variables and regex
//! captures) against one request.
//!
//! Variables have nginx's meaning: `$request_uri` (original path and query, as sent),
//! `$uri` (normalised path), `$args`, `$arg_<name>`, `$host` (lowercase, no port),
//! `$http_<name>`, `$cookie_<name>`, `$remote_addr` (the real client address),
//! `$scheme` (of the connection), `$server_name`, `$server_port`... In URI mode,
//! decoded values (`$uri`, captures, header and cookie values...) are percent-escaped
//! where a URI cannot hold them raw (controls, space, non-ASCII, `"#%<>\^`{|}` and a
//! `?` before the query starts), as nginx escapes a rewritten URI; values that are
//! already URI text (`$request_uri`, `$args`, `$arg_*`) are copied as they are.

use std::fmt::Write as _;

use gangplank_model::expr::{Part, Variable};
use gangplank_store::policy::Template;
use http::{HeaderMap, Method, Uri};
use regex::Captures;

use crate::headers::cookie;
use crate::headers::{ClientInfo, host_without_port};

/// What a template can read of a request.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The method.
    pub method: &'a Method,
    /// The request target as received.
    pub uri: &'a Uri,
    /// The request headers as received.
    pub headers: &'a HeaderMap,
    /// The client (real address applied).
    pub client: &'a ClientInfo,
    /// The request host (`Host` or `:authority`, port included).
    pub host: &'a str,
    /// The normalised path (`$uri`).
    pub path: &'a str,
    /// The matched server's name.
    pub server_name: &'a str,
}

/// How dynamic parts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are (header values).
    None,
    /// Percent-escaped for a URI.
    Uri,
}

/// Expands `template` for `view`; `captures` are the location regex's.
pub fn expand(
    template: &Template,
    view: &View<'_>,
    captures: Option<&Captures<'_>>,
    escape: Escape,
) -> String {
    let mut out = String::with_capacity(64);
    let mut in_query = false;
    for part in &template.parts {
        match part {
            Part::Literal(text) => {
                out.push_str(text);
                in_query |= text.contains('?');
            }
            Part::Capture(n) => {
                let text = captures
                    .and_then(|c| c.get(usize::from(*n)))
                    .map_or("", |m| m.as_str());
                push(&mut out, text, escape, in_query);
            }
            Part::Var(var) => {
                let uri = view.uri;
                let raw_request_uri = || uri.path_and_query().map_or(uri.path(), |p| p.as_str());
                match var {
                    // Already URI text: never escaped again.
                    Variable::RequestUri => out.push_str(raw_request_uri()),
                    Variable::EscapedRequestUri => {
                        for b in raw_request_uri().bytes() {
                            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                                out.push(char::from(b));
                            } else {
                                let _ = write!(out, "%{b:02X}");
                            }
                        }
                    }
                    Variable::Args => out.push_str(uri.query().unwrap_or("")),
                    Variable::Arg(name) => out.push_str(arg(uri, name).unwrap_or("")),
                    Variable::Uri => push(&mut out, view.path, escape, in_query),
                    // `$binary_remote_addr` is only meaningful as a key; as text, the
                    // address.
                    Variable::RemoteAddr | Variable::BinaryRemoteAddr => {
                        let _ = write!(out, "{}", view.client.remote.ip());
                    }
                    Variable::RemotePort => {
                        let _ = write!(out, "{}", view.client.remote.port());
                    }
                    Variable::Host => {
                        let host = host_without_port(view.host);
                        push(&mut out, &host.to_ascii_lowercase(), escape, in_query);
                    }
                    Variable::Scheme => {
                        out.push_str(if view.client.https { "https" } else { "http" })
                    }
                    Variable::RequestMethod => out.push_str(view.method.as_str()),
                    Variable::ServerName => push(&mut out, view.server_name, escape, in_query),
                    Variable::ServerPort => {
                        let _ = write!(out, "{}", view.client.local_port);
                    }
                    Variable::Header(name) => {
                        if let Some(v) = view
                            .headers
                            .get(name.as_str())
                            .and_then(|v| v.to_str().ok())
                        {
                            push(&mut out, v, escape, in_query);
                        }
                    }
                    Variable::Cookie(name) => {
                        if let Some(v) = cookie(view.headers, name) {
                            push(&mut out, v, escape, in_query);
                        }
                    }
                }
            }
        }
    }
    out
}

fn push(out: &mut String, text: &str, escape: Escape, in_query: bool) {
    if escape == Escape::None {
        out.push_str(text);
        return;
    }
    for b in text.bytes() {
        let escaped =
            b <= 0x20 || b >= 0x7f || b"\"#%<>\\^`{|}".contains(&b) || (b == b'?' && !in_query);
        if escaped {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(char::from(b));
        }
    }
}

/// The raw value of query argument `name`.
fn arg<'u>(uri: &'u Uri, name: &str) -> Option<&'u str> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    pub(crate) fn client() -> ClientInfo {
        ClientInfo::new("192.0.2.7:5555".parse().unwrap(), 8080, false)
    }

    fn view<'a>(
        uri: &'a Uri,
        headers: &'a HeaderMap,
        client: &'a ClientInfo,
        path: &'a str,
    ) -> View<'a> {
        View {
            method: &Method::GET,
            uri,
            headers,
            client,
            host: "App.Example.com:8080",
            path,
            server_name: "app.example.com",
        }
    }

    #[test]
    fn variables_and_captures() {
        let uri: Uri = "/old/a%20b/c?x=1&y=two".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-team", HeaderValue::from_static("web ops"));
        headers.insert("cookie", HeaderValue::from_static("a=1; sess=xyz"));
        let client = client();
        let path = "/old/a b/c";
        let v = view(&uri, &headers, &client, path);
        let regex = regex::Regex::new("(?i)^/old/(.*)/(c)").unwrap();
        let caps = regex.captures(path).unwrap();
        let t = |text: &str| Template::parse(text).unwrap();
        assert_eq!(
            expand(&t("/new/$1/$2"), &v, Some(&caps), Escape::Uri),
            "/new/a%20b/c"
        );
        assert_eq!(expand(&t("/new/$3"), &v, Some(&caps), Escape::Uri), "/new/");
        assert_eq!(
            expand(&t("https://$host$request_uri"), &v, None, Escape::Uri),
            "https://app.example.com/old/a%20b/c?x=1&y=two"
        );
        assert_eq!(
            expand(
                &t("$scheme://$server_name:$server_port$uri?y=$arg_y&a=$args"),
                &v,
                None,
                Escape::Uri
            ),
            "http://app.example.com:8080/old/a%20b/c?y=two&a=x=1&y=two"
        );
        assert_eq!(
            expand(&t("/s?rd=$escaped_request_uri"), &v, None, Escape::Uri),
            "/s?rd=/old/a%2520b/c%3Fx%3D1%26y%3Dtwo"
        );
        assert_eq!(
            expand(
                &t("$remote_addr|$http_x_team|$cookie_sess|$request_method"),
                &v,
                None,
                Escape::None
            ),
            "192.0.2.7|web ops|xyz|GET"
        );
        assert_eq!(
            expand(&t("/t/$http_x_team"), &v, None, Escape::Uri),
            "/t/web%20ops"
        );
        let q: Uri = "/p?x".parse().unwrap();
        let v = view(&q, &headers, &client, "/a?b");
        assert_eq!(expand(&t("$uri"), &v, None, Escape::Uri), "/a%3Fb");
        assert_eq!(expand(&t("/x?u=$uri"), &v, None, Escape::Uri), "/x?u=/a?b");
    }
}
