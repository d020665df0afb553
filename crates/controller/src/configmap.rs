//! The global ConfigMap (`--configmap`) translated into [`GeneralConfig`].
//!
//! Every key `GeneralConfig` has is read from the ConfigMap's `data` with
//! ingress-nginx's spelling: booleans as Go's `strconv.ParseBool` (`"true"`), `on`/`off`
//! where nginx flags are expected (`proxy-buffering`), numbers in decimal, times and
//! sizes the nginx way (`"60"`, `"1h"`, `"8k"`), comma-separated lists
//! (`block-cidrs`, `no-tls-redirect-locations`...), space-separated ones where nginx
//! takes several words (`ssl-protocols`, `proxy-next-upstream`, `gzip-types`), and
//! `proxy-set-headers` / `add-headers` as the name of another ConfigMap
//! (`<namespace>/<name>`, or `<name>` in the global ConfigMap's namespace) found in
//! [`ClusterState::config_maps`].
//!
//! Each key is decoded and validated on its own: an invalid value is skipped with a
//! Warning event on the ConfigMap, and that setting keeps its default; the other keys
//! still apply. An empty value means "not set". Keys the data plane does not use
//! (most of ingress-nginx's nginx tuning, `log-format-*`...) are ignored, as
//! ingress-nginx ignores unknown keys.
//!
//! ConfigMap defaults that ingress-nginx copies into each location (`proxy-body-size`,
//! timeouts, `ssl-redirect`...) stay in `general`: the model's location fields are
//! `Option`s whose `None` means "the general value", read by the data plane. The one
//! default the controller applies itself is `load-balance`, onto each Ingress backend
//! that has no `load-balance` annotation, as ingress-nginx's `createUpstreams` does.

use gangplank_model::validate::check_text;
use gangplank_model::{GeneralConfig, Validate};
use serde_json::{Map, Value};

use crate::annotations::{
    cache_durations, config_map_data, find_config_map, model_check, parse_bool, split_list,
};
use crate::events::{Events, ObjectKind, reason};
use crate::state::{ClusterState, name, namespace};

/// How a ConfigMap string becomes the JSON value of a `GeneralConfig` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `true` / `false` (and Go's other spellings).
    Bool,
    /// `on` / `off`, or a boolean.
    OnOff,
    /// A non-negative decimal integer.
    Int,
    /// A string decoded by the model (times, sizes, names, URLs, enum words).
    Text,
    /// Comma-separated strings.
    CommaList,
    /// Space-separated words.
    SpaceList,
    /// Comma-separated status codes.
    Codes,
    /// `auth-cache-duration` entries (`200 202 10m, 401 5m`).
    CacheDurations,
    /// The name of a ConfigMap whose data are headers.
    Headers,
}

/// Every key of [`GeneralConfig`] (except `controllerPodsCount`, which old controllers
/// posted and no ConfigMap sets), with how it is read.
const KEYS: &[(&str, Kind)] = &[
    ("load-balance", Kind::Text),
    ("upstream-keepalive-connections", Kind::Int),
    ("upstream-keepalive-time", Kind::Text),
    ("upstream-keepalive-timeout", Kind::Text),
    ("upstream-keepalive-requests", Kind::Int),
    ("keep-alive", Kind::Text),
    ("keep-alive-requests", Kind::Int),
    ("client-header-timeout", Kind::Text),
    ("client-body-timeout", Kind::Text),
    ("use-http2", Kind::Bool),
    ("http2-max-concurrent-streams", Kind::Int),
    ("proxy-connect-timeout", Kind::Text),
    ("proxy-send-timeout", Kind::Text),
    ("proxy-read-timeout", Kind::Text),
    ("proxy-next-upstream", Kind::SpaceList),
    ("proxy-next-upstream-timeout", Kind::Text),
    ("proxy-next-upstream-tries", Kind::Int),
    ("proxy-body-size", Kind::Text),
    ("client-body-buffer-size", Kind::Text),
    ("proxy-buffer-size", Kind::Text),
    ("proxy-buffers-number", Kind::Int),
    ("proxy-buffering", Kind::OnOff),
    ("proxy-request-buffering", Kind::OnOff),
    ("proxy-http-version", Kind::Text),
    ("proxy-add-original-uri-header", Kind::Bool),
    ("allow-backend-server-header", Kind::Bool),
    ("ssl-protocols", Kind::SpaceList),
    ("ssl-ciphers", Kind::Text),
    ("hsts", Kind::Bool),
    ("hsts-max-age", Kind::Int),
    ("hsts-include-subdomains", Kind::Bool),
    ("hsts-preload", Kind::Bool),
    ("ssl-redirect", Kind::Bool),
    ("force-ssl-redirect", Kind::Bool),
    ("http-redirect-code", Kind::Int),
    ("preserve-trailing-slash", Kind::Bool),
    ("use-port-in-redirects", Kind::Bool),
    ("no-tls-redirect-locations", Kind::CommaList),
    ("use-forwarded-headers", Kind::Bool),
    ("compute-full-forwarded-for", Kind::Bool),
    ("forwarded-for-header", Kind::Text),
    ("enable-real-ip", Kind::Bool),
    ("proxy-real-ip-cidr", Kind::CommaList),
    ("use-proxy-protocol", Kind::Bool),
    ("proxy-protocol-header-timeout", Kind::Text),
    ("server-tokens", Kind::Bool),
    ("generate-request-id", Kind::Bool),
    ("enable-underscores-in-headers", Kind::Bool),
    ("ignore-invalid-headers", Kind::Bool),
    ("proxy-set-headers", Kind::Headers),
    ("add-headers", Kind::Headers),
    ("global-allowed-response-headers", Kind::CommaList),
    ("custom-http-errors", Kind::Codes),
    ("block-cidrs", Kind::CommaList),
    ("whitelist-source-range", Kind::CommaList),
    ("denylist-source-range", Kind::CommaList),
    ("block-user-agents", Kind::CommaList),
    ("block-referers", Kind::CommaList),
    ("limit-req-status-code", Kind::Int),
    ("limit-conn-status-code", Kind::Int),
    ("use-gzip", Kind::Bool),
    ("gzip-level", Kind::Int),
    ("gzip-min-length", Kind::Int),
    ("gzip-types", Kind::SpaceList),
    ("global-auth-url", Kind::Text),
    ("global-auth-method", Kind::Text),
    ("global-auth-signin", Kind::Text),
    ("global-auth-signin-redirect-param", Kind::Text),
    ("global-auth-response-headers", Kind::CommaList),
    ("global-auth-request-redirect", Kind::Text),
    ("global-auth-cache-key", Kind::Text),
    ("global-auth-cache-duration", Kind::CacheDurations),
    ("global-auth-always-set-cookie", Kind::Bool),
    ("no-auth-locations", Kind::CommaList),
    ("worker-shutdown-timeout", Kind::Text),
    ("log-format-escape-json", Kind::Bool),
];

/// The general settings of the global ConfigMap; defaults without one.
pub(crate) fn general(state: &ClusterState, events: &mut Events) -> GeneralConfig {
    let Some(config_map) = &state.config_map else {
        return GeneralConfig::default();
    };
    let ns = namespace(&config_map.metadata);
    let cm_name = name(&config_map.metadata);
    let mut warn = |message: String| {
        events.warn_on(
            ObjectKind::ConfigMap,
            ns,
            cm_name,
            reason::INVALID_CONFIGURATION,
            message,
        );
    };
    let mut accepted = Map::new();
    if config_map
        .data
        .as_ref()
        .and_then(|data| data.get("enable-brotli"))
        .is_some_and(|v| parse_bool(v.trim()).unwrap_or(false))
    {
        warn(
            "ConfigMap key \"enable-brotli\" is not supported: responses are compressed with gzip only (use-gzip)"
                .to_owned(),
        );
    }
    for (key, value) in config_map.data.iter().flatten() {
        let Some((key, kind)) = KEYS.iter().find(|(k, _)| k == key) else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        let checked = to_json(*kind, value, state, ns).and_then(|json| {
            let single = Map::from_iter([((*key).to_owned(), json.clone())]);
            let config: GeneralConfig =
                serde_json::from_value(Value::Object(single)).map_err(|e| e.to_string())?;
            model_check(&config)?;
            Ok(json)
        });
        match checked {
            Ok(json) => {
                accepted.insert((*key).to_owned(), json);
            }
            // ingress-nginx ignores an unparsable global-auth-url with a warning, so
            // global authentication is off: said loudly, since it opens locations.
            Err(why) if *key == "global-auth-url" => {
                tracing::warn!(reason = %why, "ConfigMap key global-auth-url is invalid: global external authentication is OFF (as in ingress-nginx)");
                warn(format!(
                    "ConfigMap key \"global-auth-url\" is invalid: {why}; global external authentication is off, as in ingress-nginx"
                ));
            }
            Err(why) => warn(format!(
                "ConfigMap key {key:?} is invalid: {why}; its default is used"
            )),
        }
    }
    // Each key was checked alone and no check spans two keys, so the whole decodes
    // and validates; the fallback is belt and braces.
    match serde_json::from_value::<GeneralConfig>(Value::Object(accepted)) {
        Ok(general) if general.validate().is_ok() => general,
        Ok(general) => {
            warn(format!(
                "the ConfigMap's settings are invalid together ({}); every default is used",
                general
                    .validate()
                    .err()
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            ));
            GeneralConfig::default()
        }
        Err(e) => {
            warn(format!(
                "the ConfigMap's settings cannot be decoded together ({e}); every default is used"
            ));
            GeneralConfig::default()
        }
    }
}

/// The JSON value of one key, before the model decodes and validates it.
fn to_json(
    kind: Kind,
    value: &str,
    state: &ClusterState,
    namespace: &str,
) -> Result<Value, String> {
    check_text(value)?;
    let value = value.trim();
    let strings = |list: Vec<String>| Value::Array(list.into_iter().map(Value::String).collect());
    Ok(match kind {
        Kind::Bool => Value::Bool(parse_bool(value)?),
        Kind::OnOff => Value::Bool(match value.to_ascii_lowercase().as_str() {
            "on" => true,
            "off" => false,
            _ => parse_bool(value).map_err(|_| format!("{value:?} is not \"on\" or \"off\""))?,
        }),
        Kind::Int => Value::from(
            value
                .parse::<u64>()
                .map_err(|_| format!("{value:?} is not a whole number"))?,
        ),
        Kind::Text => Value::String(value.to_owned()),
        Kind::CommaList => strings(split_list(value, ',')),
        Kind::SpaceList => strings(value.split_whitespace().map(str::to_owned).collect()),
        Kind::Codes => Value::Array(
            split_list(value, ',')
                .iter()
                .map(|code| {
                    code.parse::<u16>()
                        .map(Value::from)
                        .map_err(|_| format!("{code:?} is not a status code"))
                })
                .collect::<Result<_, _>>()?,
        ),
        Kind::CacheDurations => {
            serde_json::to_value(cache_durations(value)?).map_err(|e| e.to_string())?
        }
        Kind::Headers => {
            let (cm_namespace, cm_name) = value.split_once('/').unwrap_or((namespace, value));
            let config_map = find_config_map(&state.config_maps, cm_namespace, cm_name)
                .ok_or_else(|| format!("ConfigMap {cm_namespace}/{cm_name} does not exist"))?;
            let headers = config_map_data(config_map)?;
            Value::Object(
                headers
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gangplank_model::policy::{HttpMethod, NextUpstream, NginxDuration, ProxyHttpVersion};
    use gangplank_model::{LoadBalance, Validate};
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn config_map(namespace: &str, name: &str, data: &[(&str, &str)]) -> std::sync::Arc<ConfigMap> {
        std::sync::Arc::new(serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": namespace, "name": name},
            "data": data.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        }))
        .unwrap())
    }

    fn translate(data: &[(&str, &str)]) -> (GeneralConfig, Vec<crate::Event>) {
        let state = ClusterState {
            config_map: Some(config_map("ingress", "gangplank", data)),
            config_maps: vec![
                config_map("ingress", "upstream-headers", &[("X-Team", "edge")]),
                config_map("other", "response-headers", &[("X-Frame-Options", "DENY")]),
            ],
            ..ClusterState::default()
        };
        let mut events = Events::default();
        let general = general(&state, &mut events);
        (general, events.into_vec())
    }

    /// A struct literal names every field, so a field added to `GeneralConfig` fails
    /// to compile here until it is added to [`KEYS`].
    #[test]
    fn every_general_key_is_read() {
        let all = GeneralConfig {
            controller_pods_count: None,
            load_balance: Some(LoadBalance::Ewma),
            upstream_keepalive_connections: Some(1),
            upstream_keepalive_time: Some(NginxDuration::ZERO),
            upstream_keepalive_timeout: Some(NginxDuration::ZERO),
            upstream_keepalive_requests: Some(1),
            keep_alive: Some(NginxDuration::ZERO),
            keep_alive_requests: Some(1),
            client_header_timeout: Some(NginxDuration::ZERO),
            client_body_timeout: Some(NginxDuration::ZERO),
            use_http2: Some(true),
            http2_max_concurrent_streams: Some(1),
            proxy_connect_timeout: Some(NginxDuration::ZERO),
            proxy_send_timeout: Some(NginxDuration::ZERO),
            proxy_read_timeout: Some(NginxDuration::ZERO),
            proxy_next_upstream: Some(vec![NextUpstream::Error]),
            proxy_next_upstream_timeout: Some(NginxDuration::ZERO),
            proxy_next_upstream_tries: Some(1),
            proxy_body_size: Some(Default::default()),
            client_body_buffer_size: Some(Default::default()),
            proxy_buffer_size: Some(Default::default()),
            proxy_buffers_number: Some(1),
            proxy_buffering: Some(true),
            proxy_request_buffering: Some(true),
            proxy_http_version: Some(ProxyHttpVersion::Http11),
            proxy_add_original_uri_header: Some(true),
            allow_backend_server_header: Some(true),
            ssl_protocols: Some(Vec::new()),
            ssl_ciphers: Some(String::new()),
            hsts: Some(true),
            hsts_max_age: Some(1),
            hsts_include_subdomains: Some(true),
            hsts_preload: Some(true),
            ssl_redirect: Some(true),
            force_ssl_redirect: Some(true),
            http_redirect_code: Some(308),
            preserve_trailing_slash: Some(true),
            use_port_in_redirects: Some(true),
            no_tls_redirect_locations: Some(Vec::new()),
            use_forwarded_headers: Some(true),
            compute_full_forwarded_for: Some(true),
            forwarded_for_header: Some(String::new()),
            enable_real_ip: Some(true),
            proxy_real_ip_cidr: Some(Vec::new()),
            use_proxy_protocol: Some(true),
            proxy_protocol_header_timeout: Some(NginxDuration::ZERO),
            server_tokens: Some(true),
            generate_request_id: Some(true),
            enable_underscores_in_headers: Some(true),
            ignore_invalid_headers: Some(true),
            proxy_set_headers: Some(BTreeMap::new()),
            add_headers: Some(BTreeMap::new()),
            global_allowed_response_headers: Some(Vec::new()),
            custom_http_errors: Some(Vec::new()),
            block_cidrs: Some(Vec::new()),
            whitelist_source_range: Some(Vec::new()),
            denylist_source_range: Some(Vec::new()),
            block_user_agents: Some(Vec::new()),
            block_referers: Some(Vec::new()),
            limit_req_status_code: Some(503),
            limit_conn_status_code: Some(503),
            use_gzip: Some(true),
            gzip_level: Some(1),
            gzip_min_length: Some(1),
            gzip_types: Some(Vec::new()),
            global_auth_url: Some(String::new()),
            global_auth_method: Some(HttpMethod::Get),
            global_auth_signin: Some(String::new()),
            global_auth_signin_redirect_param: Some(String::new()),
            global_auth_response_headers: Some(Vec::new()),
            global_auth_request_redirect: Some(String::new()),
            global_auth_cache_key: Some(String::new()),
            global_auth_cache_duration: Some(Vec::new()),
            global_auth_always_set_cookie: Some(true),
            no_auth_locations: Some(Vec::new()),
            worker_shutdown_timeout: Some(NginxDuration::ZERO),
            log_format_escape_json: Some(true),
        };
        let json = serde_json::to_value(&all).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        known.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, known);
    }

    #[test]
    fn values_are_read_the_ingress_nginx_way() {
        let (g, events) = translate(&[
            ("load-balance", "ewma"),
            ("upstream-keepalive-connections", "64"),
            ("upstream-keepalive-time", "30m"),
            ("keep-alive", "90"),
            ("use-http2", "false"),
            ("proxy-read-timeout", "120"),
            ("proxy-next-upstream", "error timeout http_503"),
            ("proxy-body-size", "20m"),
            ("proxy-buffering", "on"),
            ("proxy-request-buffering", "off"),
            ("proxy-http-version", "1.0"),
            ("ssl-protocols", "TLSv1.2 TLSv1.3"),
            ("hsts-max-age", "63072000"),
            ("ssl-redirect", "false"),
            ("http-redirect-code", "301"),
            (
                "no-tls-redirect-locations",
                "/.well-known/acme-challenge, /healthz",
            ),
            ("proxy-real-ip-cidr", "10.0.0.0/8,2001:db8::/32"),
            ("proxy-set-headers", "upstream-headers"),
            ("add-headers", "other/response-headers"),
            (
                "global-allowed-response-headers",
                "X-Frame-Options,X-Custom",
            ),
            ("custom-http-errors", "404, 503"),
            ("block-user-agents", "~*(curl|wget),BadBot/1.0"),
            ("gzip-types", "text/html application/json"),
            (
                "global-auth-url",
                "https://auth.example.com/verify?host=$host",
            ),
            ("global-auth-method", "GET"),
            ("global-auth-cache-duration", "200 202 1m, 401 10s"),
            ("worker-shutdown-timeout", "300s"),
            (
                "log-format-upstream",
                "$remote_addr ignored: not a data-plane key",
            ),
            ("ssl-ciphers", ""),
        ]);
        assert!(events.is_empty(), "{events:?}");
        assert!(g.validate().is_ok());
        assert_eq!(g.load_balance(), LoadBalance::Ewma);
        assert_eq!(g.upstream_keepalive_connections(), 64);
        assert_eq!(g.keep_alive().as_secs(), 90);
        assert!(!g.use_http2());
        assert_eq!(g.proxy_read_timeout().as_secs(), 120);
        assert_eq!(g.proxy_next_upstream().len(), 3);
        assert_eq!(g.proxy_body_size().bytes(), 20 << 20);
        assert!(g.proxy_buffering() && !g.proxy_request_buffering());
        assert_eq!(g.proxy_http_version(), ProxyHttpVersion::Http10);
        assert_eq!(g.hsts_max_age().as_secs(), 63_072_000);
        assert!(!g.ssl_redirect());
        assert_eq!(g.http_redirect_code(), 301);
        assert_eq!(
            g.no_tls_redirect_locations(),
            ["/.well-known/acme-challenge", "/healthz"]
        );
        assert_eq!(g.proxy_set_headers().unwrap()["X-Team"], "edge");
        assert_eq!(g.add_headers().unwrap()["X-Frame-Options"], "DENY");
        assert_eq!(g.custom_http_errors(), [404, 503]);
        assert_eq!(g.block_user_agents().len(), 2);
        assert_eq!(g.gzip_types(), ["text/html", "application/json"]);
        assert_eq!(g.global_auth().unwrap().method, Some(HttpMethod::Get));
        assert_eq!(g.global_auth_cache_duration.as_ref().unwrap().len(), 2);
        assert_eq!(g.worker_shutdown_timeout().as_secs(), 300);
        assert_eq!(g.ssl_ciphers, None);
    }

    #[test]
    fn invalid_keys_keep_their_default_with_a_warning() {
        let (g, events) = translate(&[
            ("proxy-body-size", "1t"),
            ("use-gzip", "yes"),
            ("keep-alive-requests", "0"),
            ("http-redirect-code", "303"),
            ("ssl-protocols", "SSLv3"),
            ("block-cidrs", "10.0.0.0/8,300.0.0.1"),
            ("proxy-set-headers", "missing"),
            ("global-auth-url", "http://a/;}location /x{return 200;}#"),
            ("global-auth-method", "GET;DELETE"),
            ("gzip-level", "70000"),
            ("hsts", "true\r\nX: y"),
            ("proxy-read-timeout", "90"),
        ]);
        assert_eq!(events.len(), 11, "{events:#?}");
        for event in &events {
            assert_eq!(event.object_kind, ObjectKind::ConfigMap);
            assert_eq!(
                (event.namespace.as_str(), event.name.as_str()),
                ("ingress", "gangplank")
            );
            assert_eq!(event.reason, reason::INVALID_CONFIGURATION);
        }
        // Only the valid key is set.
        assert_eq!(
            g,
            GeneralConfig {
                proxy_read_timeout: Some(NginxDuration::from_secs(90).unwrap()),
                ..GeneralConfig::default()
            }
        );
    }

    #[test]
    fn an_invalid_global_auth_url_turns_global_auth_off_with_a_warning() {
        let (g, events) = translate(&[
            ("global-auth-url", "http://$http_x_target/check"),
            ("global-auth-response-headers", "X-User"),
        ]);
        assert_eq!(g.global_auth(), None);
        assert_eq!(events.len(), 1, "{events:#?}");
        assert!(
            events[0]
                .message
                .contains("global external authentication is off"),
            "{events:#?}"
        );
        let (g, events) = translate(&[("global-auth-url", "https://auth.example.com/check")]);
        assert!(events.is_empty());
        assert_eq!(
            g.global_auth().and_then(|a| a.url).as_deref(),
            Some("https://auth.example.com/check")
        );
    }

    #[test]
    fn compression_and_redirect_port_keys() {
        let (g, events) = translate(&[
            ("use-gzip", "true"),
            ("gzip-level", "5"),
            ("gzip-min-length", "1000"),
            ("use-port-in-redirects", "true"),
            ("enable-brotli", "true"),
        ]);
        assert!(g.use_gzip() && g.use_port_in_redirects());
        assert_eq!((g.gzip_level(), g.gzip_min_length()), (5, 1000));
        assert_eq!(events.len(), 1, "{events:#?}");
        assert!(events[0].message.contains("enable-brotli"), "{events:#?}");
        let (_, events) = translate(&[("enable-brotli", "false")]);
        assert!(events.is_empty(), "{events:#?}");
    }

    #[test]
    fn no_config_map_means_defaults() {
        let mut events = Events::default();
        assert_eq!(
            general(&ClusterState::default(), &mut events),
            GeneralConfig::default()
        );
        assert!(events.into_vec().is_empty());
    }
}
