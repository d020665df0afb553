//! `mirror-target`, `mirror-host`, `mirror-request-body`, compiled once per location
//! into a [`MirrorTarget`]. The proxy (`gangplank_proxy::mirror`) sends the copies.
//!
//! The target URL was checked by the model (`check_url_template`: http or https,
//! variables only where a client cannot choose the destination host); here it becomes
//! a [`Template`]. HTTPS targets get the default upstream TLS client configuration
//! (no certificate verification and no SNI, as nginx's `proxy_pass https://` without
//! `proxy_ssl_*`).

use std::sync::Arc;

use gangplank_model::Location;
use gangplank_model::policy::ProxySsl;
use http::HeaderValue;

use super::template::Template;
use super::upstream::UpstreamTls;

/// Where a location's requests are copied to.
#[derive(Debug, Clone)]
pub struct MirrorTarget {
    /// The target URL, with nginx variables.
    pub url: Template,
    /// `mirror-host`: the copy's `Host`; `None` is the target URL's host.
    pub host: Option<HeaderValue>,
    /// `mirror-request-body`: the copy carries the request body.
    pub request_body: bool,
    /// The TLS client configuration of an `https://` target.
    pub tls: Option<Arc<UpstreamTls>>,
}

/// Compiles `location`'s mirror; `Ok(None)` without `mirror-target`.
pub(super) fn compile(
    location: &Location,
    warnings: &mut Vec<String>,
) -> Result<Option<MirrorTarget>, String> {
    let Some(target) = &location.mirror.target else {
        return Ok(None);
    };
    let url = Template::parse(target).map_err(|e| format!("mirror-target: {e}"))?;
    let https = target
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    if !https
        && !target
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
    {
        return Err(format!("mirror-target {target:?} is not an http(s) URL"));
    }
    let host = match &location.mirror.host {
        Some(host) => Some(
            HeaderValue::from_str(host)
                .map_err(|_| format!("mirror-host {host:?} is not a header value"))?,
        ),
        None => None,
    };
    let tls = if https {
        Some(super::upstream::tls(&ProxySsl::default(), false, warnings)?)
    } else {
        None
    };
    Ok(Some(MirrorTarget {
        url,
        host,
        request_body: location.mirror.request_body,
        tls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::policy::Mirror;

    fn location(target: &str, host: Option<&str>, body: bool) -> Location {
        Location {
            mirror: Mirror {
                target: Some(target.into()),
                host: host.map(Into::into),
                request_body: body,
            },
            ..Location::default()
        }
    }

    #[test]
    fn targets_compile() {
        let mut warnings = Vec::new();
        assert!(
            compile(&Location::default(), &mut warnings)
                .unwrap()
                .is_none()
        );
        let m = compile(
            &location("http://mirror.test:8080$request_uri", None, true),
            &mut warnings,
        )
        .unwrap()
        .unwrap();
        assert!(m.tls.is_none() && m.host.is_none() && m.request_body);
        assert_eq!(m.url.parts.len(), 2);
        let m = compile(
            &location("HTTPS://mirror.test/copy", Some("shadow.test"), false),
            &mut warnings,
        )
        .unwrap()
        .unwrap();
        assert!(m.tls.is_some() && !m.request_body);
        assert_eq!(m.host.unwrap(), "shadow.test");
        assert!(compile(&location("ftp://mirror.test/", None, true), &mut warnings).is_err());
        assert!(compile(&location("http://m/$nope", None, true), &mut warnings).is_err());
    }
}
