//! Which upstream answers: `default-backend` (a Service of the Ingress's namespace for
//! when the backend has no endpoints, and for custom errors), `custom-http-errors`,
//! and `service-upstream` (the Service's ClusterIP instead of its endpoints).
//! `disable-proxy-intercept-errors` is read with the other location flags.

use super::{Context, IngressAnnotations, Reader, check_dns_subdomain, location_check};

/// `custom-http-errors`: comma-separated status codes, each in 400..599 (ingress-nginx's
/// validation), duplicates dropped.
pub(super) fn custom_http_errors(reader: &mut Reader<'_>) -> Vec<u16> {
    reader
        .with("custom-http-errors", |value| {
            let mut codes = Vec::new();
            for entry in super::split_list(value, ',') {
                let code = entry
                    .parse::<u16>()
                    .ok()
                    .filter(|code| (400..=599).contains(code))
                    .ok_or_else(|| format!("{entry:?} is not an error status code (400..599)"))?;
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
            if codes.is_empty() {
                return Err(format!("{value:?} lists no status code"));
            }
            location_check(|l| l.custom_http_errors = codes.clone())?;
            Ok(codes)
        })
        .unwrap_or_default()
}

/// `default-backend` and `service-upstream`, into `parsed`.
pub(super) fn parse(
    reader: &mut Reader<'_>,
    context: &Context<'_>,
    parsed: &mut IngressAnnotations,
) {
    parsed.service_upstream = reader.boolean("service-upstream").unwrap_or(false);
    let namespace = reader.namespace;
    let Some(service) = reader.text("default-backend", |name| {
        check_dns_subdomain(name, "Service name")
    }) else {
        return;
    };
    // As ingress-nginx: a missing Service is not an error of the Ingress.
    if context.index.service(namespace, &service).is_none() {
        reader.ignore(
            "default-backend",
            format!("Service {namespace}/{service} does not exist"),
        );
        return;
    }
    parsed.default_backend = Some(service);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse_in, parse_map};
    use crate::events::reason;
    use crate::state::ClusterState;

    #[test]
    fn backend_settings() {
        let mut state = ClusterState::default();
        state.services.push(std::sync::Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"namespace": "ns", "name": "errors"},
                "spec": {"ports": [{"port": 80}]}
            }))
            .unwrap(),
        ));
        let (a, events) = parse_in(
            &state,
            &[
                ("custom-http-errors", "404, 503,404"),
                ("default-backend", "errors"),
                ("service-upstream", "true"),
                ("disable-proxy-intercept-errors", "true"),
            ],
        );
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(a.location.custom_http_errors, [404, 503]);
        assert!(a.location.disable_proxy_intercept_errors);
        assert_eq!(a.default_backend.as_deref(), Some("errors"));
        assert!(a.service_upstream);

        let (a, events) = parse_map(&[("default-backend", "missing")]);
        assert_eq!(a.location.denied, None);
        assert_eq!(a.default_backend, None);
        assert_eq!(events[0].reason, reason::ANNOTATION_IGNORED);

        for (name, value) in [
            ("custom-http-errors", "404,200"),
            ("custom-http-errors", "302"),
            ("custom-http-errors", "404;500"),
            ("default-backend", "../x"),
            ("service-upstream", "yes"),
        ] {
            let (a, _) = parse_map(&[(name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
        }
    }
}
