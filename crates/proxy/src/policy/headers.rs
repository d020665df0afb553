//! Configured headers per request: ConfigMap `proxy-set-headers` and
//! `x-forwarded-prefix` on the upstream request (after the standard forwarded headers,
//! which they may override), ConfigMap `add-headers` and `custom-headers` on every
//! response (replacing the upstream's, as `more_set_headers` does), and
//! `Strict-Transport-Security` (see [`gangplank_store::policy`]).

use gangplank_store::policy::{HeaderTemplate, RequestHeader};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::template::{Escape, View, expand};

/// Evaluates the `proxy-set-headers` values that hold variables, while the request is
/// intact (nginx evaluates them against the client's request). Values that are not
/// valid header values once expanded are left out.
pub fn evaluate(list: &[RequestHeader], view: &View<'_>) -> Vec<(HeaderName, HeaderValue)> {
    list.iter()
        .filter_map(|h| match &h.value {
            HeaderTemplate::Static(_) => None,
            HeaderTemplate::Template(t) => {
                HeaderValue::from_str(&expand(t, view, None, Escape::None))
                    .ok()
                    .map(|v| (h.name.clone(), v))
            }
        })
        .collect()
}

/// Sets `proxy-set-headers` on the upstream request: the static values from `list`,
/// the evaluated ones from `evaluated`, in configured order.
pub fn set_upstream(
    list: &[RequestHeader],
    evaluated: &[(HeaderName, HeaderValue)],
    headers: &mut HeaderMap,
) {
    let mut dynamic = evaluated.iter();
    for h in list {
        match &h.value {
            HeaderTemplate::Static(value) => {
                headers.insert(h.name.clone(), value.clone());
            }
            HeaderTemplate::Template(_) => {
                // Same order as `evaluate`; a value that did not expand is skipped there.
                if let Some((name, value)) =
                    dynamic.as_slice().first().filter(|(n, _)| *n == h.name)
                {
                    headers.insert(name.clone(), value.clone());
                    dynamic.next();
                }
            }
        }
    }
}

/// Sets configured response headers.
pub fn set_response(list: &[(HeaderName, HeaderValue)], headers: &mut HeaderMap) {
    for (name, value) in list {
        headers.insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_and_evaluated_values_in_order() {
        let general: gangplank_model::GeneralConfig = serde_json::from_value(serde_json::json!({
            "proxy-set-headers": {"X-A": "1", "X-B": "$remote_addr", "X-C": "$http_x_missing", "X-D": "d"}
        }))
        .unwrap();
        let global = gangplank_store::policy::GlobalPolicies::compile(&general);
        let uri: http::Uri = "/".parse().unwrap();
        let request = HeaderMap::new();
        let client = crate::headers::ClientInfo::new("192.0.2.1:1".parse().unwrap(), 80, false);
        let view = View {
            method: &http::Method::GET,
            uri: &uri,
            headers: &request,
            client: &client,
            host: "h",
            path: "/",
            server_name: "h",
        };
        let evaluated = evaluate(&global.proxy_set_headers, &view);
        assert_eq!(evaluated.len(), 2);
        let mut upstream = HeaderMap::new();
        upstream.insert("x-a", HeaderValue::from_static("client"));
        set_upstream(&global.proxy_set_headers, &evaluated, &mut upstream);
        assert_eq!(upstream["x-a"], "1");
        assert_eq!(upstream["x-b"], "192.0.2.1");
        assert_eq!(upstream["x-c"], "");
        assert_eq!(upstream["x-d"], "d");

        let mut response = HeaderMap::new();
        response.insert("x-frame-options", HeaderValue::from_static("upstream"));
        set_response(
            &[(
                HeaderName::from_static("x-frame-options"),
                HeaderValue::from_static("DENY"),
            )],
            &mut response,
        );
        assert_eq!(response["x-frame-options"], "DENY");
        assert_eq!(response.get_all("x-frame-options").iter().count(), 1);
    }
}
