//! Headers: `upstream-vhost`, `x-forwarded-prefix`, `connection-proxy-header` (request
//! headers sent upstream) and `custom-headers` (response headers from a ConfigMap,
//! each name allowed by the ConfigMap's `global-allowed-response-headers`).

use gangplank_model::policy::CustomHeaders;
use gangplank_model::validate::check_header_value;

use super::{Context, Reader, config_map_data, find_config_map, location_check, model_check};

/// `upstream-vhost`: the Host header sent upstream (`host[:port]`).
pub(super) fn upstream_vhost(reader: &mut Reader<'_>) -> String {
    reader
        .text("upstream-vhost", |host| {
            location_check(|l| l.upstream_vhost = host.to_owned())
        })
        .unwrap_or_default()
}

/// `x-forwarded-prefix`: the value of the `X-Forwarded-Prefix` request header.
pub(super) fn x_forwarded_prefix(reader: &mut Reader<'_>) -> String {
    reader
        .text("x-forwarded-prefix", check_header_value)
        .unwrap_or_default()
}

/// `connection-proxy-header`: the `Connection` header sent upstream.
pub(super) fn connection(reader: &mut Reader<'_>) -> String {
    reader
        .text("connection-proxy-header", check_header_value)
        .unwrap_or_default()
}

/// `custom-headers`: the data of the named ConfigMap as response headers. A name the
/// global ConfigMap does not allow denies the Ingress, as in ingress-nginx.
pub(super) fn custom_headers(reader: &mut Reader<'_>, context: &Context<'_>) -> CustomHeaders {
    let Some((namespace, name)) = reader.reference("custom-headers", "ConfigMap") else {
        return CustomHeaders::default();
    };
    let headers = find_config_map(context.config_maps, &namespace, &name)
        .ok_or_else(|| format!("ConfigMap {namespace}/{name} does not exist"))
        .and_then(config_map_data)
        .and_then(|headers| {
            let headers = CustomHeaders { headers };
            model_check(&headers).map_err(|e| format!("ConfigMap {namespace}/{name}: {e}"))?;
            let allowed = context.general.global_allowed_response_headers();
            let refused = headers.not_allowed(allowed);
            if !refused.is_empty() {
                return Err(format!(
                    "ConfigMap {namespace}/{name} sets {} not listed in the global ConfigMap's global-allowed-response-headers",
                    refused
                        .iter()
                        .map(|h| format!("{h:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ok(headers)
        });
    match headers {
        Ok(headers) => headers,
        Err(why) => {
            reader.reject("custom-headers", why);
            CustomHeaders::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config_map, parse_in, parse_map};
    use crate::state::ClusterState;

    #[test]
    fn request_headers() {
        let (a, events) = parse_map(&[
            ("upstream-vhost", "internal.example.com:8080"),
            ("x-forwarded-prefix", "/api"),
            ("connection-proxy-header", "keep-alive"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(a.location.upstream_vhost, "internal.example.com:8080");
        assert_eq!(a.location.x_forwarded_prefix, "/api");
        assert_eq!(a.location.connection, "keep-alive");
        for (name, value) in [
            ("upstream-vhost", "a b"),
            ("upstream-vhost", "$http_host"),
            ("x-forwarded-prefix", "\u{7f}"),
        ] {
            let (a, _) = parse_map(&[(name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
        }
    }

    #[test]
    fn custom_headers_must_be_allowed() {
        let mut state = ClusterState::default();
        state
            .config_maps
            .push(config_map("ns", "ok", &[("X-Allowed", "yes; really")]));
        state.config_maps.push(config_map(
            "ns",
            "not-allowed",
            &[("X-Allowed", "1"), ("X-Other", "2")],
        ));
        state.config_maps.push(config_map(
            "ns",
            "framing",
            &[("Transfer-Encoding", "chunked")],
        ));
        let (a, events) = parse_in(&state, &[("custom-headers", "ns/ok")]);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(
            a.location.custom_headers.headers["X-Allowed"],
            "yes; really"
        );
        for name in ["not-allowed", "framing", "missing", "other/ok"] {
            let (a, _) = parse_in(&state, &[("custom-headers", name)]);
            let denied = a.location.denied.unwrap();
            assert!(denied.contains("custom-headers"), "{name}: {denied}");
            assert!(a.location.custom_headers.headers.is_empty());
        }
    }
}
