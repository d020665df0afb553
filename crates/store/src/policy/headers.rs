//! Configured headers: ConfigMap `add-headers` and the `custom-headers` annotation
//! (response headers), ConfigMap `proxy-set-headers` (request headers sent upstream).
//!
//! ingress-nginx renders response headers with `more_set_headers`, which replaces the
//! upstream's header of the same name on every response, errors included;
//! `custom-headers` (location) are applied after `add-headers` (global), so they win.
//! `proxy-set-headers` come after the standard upstream headers (Part B §5.3), so they
//! may override `X-Forwarded-Proto` and friends; their values may use nginx variables
//! (`$remote_addr`, `$host`...), evaluated per request. A value with a variable the
//! data plane cannot evaluate (`$msec`, `$ssl_client_s_dn`...) is not sent, with a
//! warning at apply time, rather than sent as literal text.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};

use super::template::Template;

/// A request header sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// Its name.
    pub name: HeaderName,
    /// Its value.
    pub value: HeaderTemplate,
}

/// A request header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderTemplate {
    /// Fixed text.
    Static(HeaderValue),
    /// Text with variables, evaluated per request.
    Template(Template),
}

/// One name/value pair of a configured map.
fn header(name: &str, value: &str, what: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name_ok = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{what}: {name:?} is not a header name"))?;
    let value_ok = HeaderValue::from_str(value)
        .map_err(|_| format!("{what}: the value of {name:?} is not a header value"))?;
    Ok((name_ok, value_ok))
}

/// Response headers: `add-headers` first, then `custom-headers`, which replace any
/// global header of the same name.
pub fn response_headers(
    add_headers: Option<&BTreeMap<String, String>>,
    custom_headers: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let global = add_headers
        .into_iter()
        .flatten()
        .map(|(k, v)| header(k, v, "add-headers"));
    let local = custom_headers
        .iter()
        .map(|(k, v)| header(k, v, "custom-headers"));
    for pair in global.chain(local) {
        let (name, value) = pair?;
        out.retain(|(n, _)| *n != name);
        out.push((name, value));
    }
    Ok(out)
}

/// `proxy-set-headers`. Values with unknown variables are left out and reported in
/// `warnings`.
pub fn proxy_set_headers(
    map: Option<&BTreeMap<String, String>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<RequestHeader>, String> {
    let mut out = Vec::new();
    for (name, value) in map.into_iter().flatten() {
        let (header_name, static_value) = header(name, value, "proxy-set-headers")?;
        let value = if value.contains('$') {
            match Template::parse(value) {
                Ok(t) => match t.as_literal() {
                    Some(text) => {
                        HeaderTemplate::Static(HeaderValue::from_str(text).unwrap_or(static_value))
                    }
                    None => HeaderTemplate::Template(t),
                },
                Err(e) => {
                    warnings.push(format!(
                        "proxy-set-headers: header {name:?} is not sent: its value {e}"
                    ));
                    continue;
                }
            }
        } else {
            HeaderTemplate::Static(static_value)
        };
        out.push(RequestHeader {
            name: header_name,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn custom_headers_win_over_add_headers() {
        let global = map(&[("X-Frame-Options", "DENY"), ("X-Global", "1")]);
        let local = map(&[("x-frame-options", "SAMEORIGIN")]);
        let headers = response_headers(Some(&global), &local).unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].0, "x-global");
        assert_eq!(
            headers[1],
            (
                HeaderName::from_static("x-frame-options"),
                HeaderValue::from_static("SAMEORIGIN")
            )
        );
        assert!(response_headers(None, &map(&[("bad name", "x")])).is_err());
    }

    #[test]
    fn proxy_set_headers_with_variables() {
        let mut warnings = Vec::new();
        let headers = proxy_set_headers(
            Some(&map(&[
                ("X-Static", "yes"),
                ("X-Client", "ip=$remote_addr"),
                ("X-Time", "t=$msec"),
                ("X-Dollar", "\\$5"),
            ])),
            &mut warnings,
        )
        .unwrap();
        let names: Vec<_> = headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, vec!["x-client", "x-dollar", "x-static"]);
        assert!(matches!(headers[0].value, HeaderTemplate::Template(_)));
        assert_eq!(
            headers[1].value,
            HeaderTemplate::Static(HeaderValue::from_static("$5"))
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("X-Time"));
    }
}
