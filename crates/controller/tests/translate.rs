//! Translation of fixture manifests, pinned with insta snapshots of the resulting
//! configuration and events (review a changed `.snap` before accepting it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.

mod common;

use common::{for_snapshot, translate_fixture};
use gangplank_controller::{EventKind, TranslateOptions, reason};
use gangplank_model::{Backend, Configuration, LoadBalance, Location, Server};

fn options() -> TranslateOptions {
    TranslateOptions::default()
}

fn server<'a>(config: &'a Configuration, host: &str) -> &'a Server {
    config
        .servers
        .iter()
        .find(|s| s.hostname == host)
        .unwrap_or_else(|| panic!("no server {host}"))
}

fn location<'a>(server: &'a Server, path: &str) -> &'a Location {
    server
        .locations
        .iter()
        .find(|l| l.path == path)
        .unwrap_or_else(|| panic!("no location {path} in {}", server.hostname))
}

fn backend<'a>(config: &'a Configuration, name: &str) -> &'a Backend {
    config
        .backends
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no backend {name}"))
}

fn reasons(translation: &gangplank_controller::Translation) -> Vec<(&str, &str)> {
    translation
        .events
        .iter()
        .map(|e| (e.name.as_str(), e.reason.as_str()))
        .collect()
}

#[test]
fn hosts_and_default_backend() {
    let t = translate_fixture("hosts_and_default_backend", &options());
    let config = &t.configuration;
    // The catch-all Ingress owns `_`'s `/`; the host rule without a host adds /health.
    let default = server(config, "_");
    let root = location(default, "/");
    assert_eq!(root.backend, "default-web-80");
    assert!(!root.is_def_backend);
    assert_eq!(location(default, "/health").backend, "default-echo-80");
    // A host's unmatched paths go to its Ingress's spec.defaultBackend.
    let fallback = location(server(config, "static.example.com"), "/");
    assert!(fallback.is_def_backend);
    assert_eq!(fallback.backend, "default-fallback-8080");
    // No endpoints and a missing Service both give a backend without endpoints.
    assert!(backend(config, "default-empty-80").endpoints.is_empty());
    assert!(backend(config, "default-missing-80").endpoints.is_empty());
    assert!(backend(config, "default-missing-80").service.is_none());
    assert!(
        backend(config, "upstream-default-backend")
            .endpoints
            .is_empty()
    );
    assert!(t.events.is_empty(), "{:?}", t.events);
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn default_backend_service_serves_upstream_default_backend() {
    let options = TranslateOptions {
        default_backend_service: Some(("default".into(), "fallback".into())),
        ..options()
    };
    let t = translate_fixture("hosts_and_default_backend", &options);
    let default = backend(&t.configuration, "upstream-default-backend");
    assert_eq!(default.endpoints.len(), 1);
    assert_eq!(default.endpoints[0].address, "10.0.2.1");
}

#[test]
fn path_types() {
    let t = translate_fixture("path_types", &options());
    let host = server(&t.configuration, "paths.example.com");
    let paths: Vec<_> = host
        .locations
        .iter()
        .map(|l| (l.path.as_str(), l.path_type, l.backend.as_str()))
        .collect();
    use gangplank_model::PathType::*;
    assert_eq!(
        paths,
        [
            ("/prefix", Prefix, "paths-echo-80"),
            ("/prefix", Exact, "paths-other-80"),
            ("/wild*", ImplementationSpecific, "paths-echo-80"),
            ("/exact", Exact, "paths-echo-80"),
            ("/impl", ImplementationSpecific, "paths-echo-80"),
            ("/both", Exact, "paths-echo-80"),
            ("/both", Prefix, "paths-other-80"),
            ("/", ImplementationSpecific, "paths-echo-80"),
        ]
    );
    assert_eq!(reasons(&t), [("first", reason::INVALID_PATH)]);
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn named_ports() {
    let t = translate_fixture("named_ports", &options());
    let config = &t.configuration;
    let addresses = |name: &str| -> Vec<String> {
        backend(config, name)
            .endpoints
            .iter()
            .map(|e| format!("{}:{}", e.address, e.port))
            .collect()
    };
    let http = ["10.1.0.1:8080", "10.1.0.4:8080", "fd00::1:8080"];
    assert_eq!(addresses("shop-api-http"), http);
    assert_eq!(addresses("shop-api-80"), http);
    // The IPv6 slice has no `metrics` port: ingress-nginx falls back to the numeric
    // targetPort for it (its issue 7390), so fd00::1 is used on 9100 too.
    assert_eq!(
        addresses("shop-api-metrics"),
        ["10.1.0.1:9100", "10.1.0.4:9100", "fd00::1:9100"]
    );
    assert!(addresses("shop-api-81").is_empty());
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn external_name() {
    let t = translate_fixture("external_name", &options());
    let config = &t.configuration;
    let endpoint = |name: &str| {
        backend(config, name)
            .endpoints
            .iter()
            .map(|e| format!("{}:{}", e.address, e.port))
            .collect::<Vec<_>>()
    };
    assert_eq!(endpoint("default-ext-https"), ["api.example.net:443"]);
    assert_eq!(endpoint("default-ext-443"), ["api.example.net:443"]);
    assert_eq!(
        endpoint("default-ext-no-ports-8080"),
        ["backend.example.org.:8080"]
    );
    assert!(endpoint("default-ext-local-80").is_empty());
    assert!(backend(config, "default-ext-https").is_external_name());
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn canary_merge() {
    let t = translate_fixture("canary", &options());
    let config = &t.configuration;
    assert_eq!(
        backend(config, "shop-main-80").alternative_backends,
        ["shop-canary-header-80"]
    );
    assert_eq!(
        backend(config, "shop-main-api-80").alternative_backends,
        ["shop-canary-weight-80"]
    );
    assert_eq!(
        backend(config, "shop-blog-80").alternative_backends,
        ["shop-blog-canary-80", "shop-blog-canary-pattern-80"]
    );
    // Sticky (default): the canary takes the primary's cookie affinity; legacy: not.
    let header = backend(config, "shop-canary-header-80");
    assert!(header.no_server);
    assert_eq!(header.traffic_shaping_policy.header, "X-Canary");
    assert_eq!(header.traffic_shaping_policy.header_value, "yes");
    assert_eq!(
        header.session_affinity_config,
        backend(config, "shop-main-80").session_affinity_config
    );
    assert_eq!(
        header.session_affinity_config.cookie_session_affinity.name,
        "SHOP"
    );
    let weight = backend(config, "shop-canary-weight-80");
    assert_eq!(weight.traffic_shaping_policy.weight, 30);
    assert_eq!(weight.traffic_shaping_policy.weight_total, 1000);
    assert_eq!(weight.session_affinity_config.name, "");
    // Canaries own no location.
    for server in &config.servers {
        for location in &server.locations {
            assert!(!location.backend.contains("canary"), "{location:?}");
        }
    }
    assert!(t.events.is_empty(), "{:?}", t.events);
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn canary_without_primary_is_dropped() {
    let t = translate_fixture("canary_without_primary", &options());
    let config = &t.configuration;
    let names: Vec<&str> = config.backends.iter().map(|b| b.name.as_str()).collect();
    for dropped in [
        "default-canary-path-80",
        "default-canary-exact-80",
        "default-canary-host-80",
    ] {
        assert!(!names.contains(&dropped), "{dropped} in {names:?}");
    }
    assert_eq!(
        backend(config, "default-app-80").alternative_backends,
        ["default-canary-impl-80"]
    );
    // Canary settings without `canary: "true"`: a normal Ingress, with a Warning.
    let v3 = location(server(config, "app.example.com"), "/v3");
    assert_eq!(v3.backend, "default-app-v3-80");
    assert!(!backend(config, "default-app-v3-80").no_server);
    assert_eq!(
        reasons(&t),
        [
            ("not-a-canary", reason::ANNOTATION_IGNORED),
            ("canary-other-path", reason::CANARY_WITHOUT_PRIMARY),
            ("canary-other-type", reason::CANARY_WITHOUT_PRIMARY),
            ("canary-other-host", reason::CANARY_WITHOUT_PRIMARY),
        ]
    );
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn balancing_precedence() {
    let t = translate_fixture("balancing", &options());
    let config = &t.configuration;
    assert_eq!(
        backend(config, "lb-a-80").balancer(),
        LoadBalance::StickyPersistent
    );
    assert_eq!(
        backend(config, "lb-b-80").balancer(),
        LoadBalance::Chashsubset
    );
    assert_eq!(
        backend(config, "lb-b-80")
            .upstream_hash_by_config
            .upstream_hash_by_subset_size,
        2
    );
    assert_eq!(backend(config, "lb-c-80").balancer(), LoadBalance::Ewma);
    let shared = backend(config, "lb-d-80");
    assert_eq!(shared.load_balance, Some(LoadBalance::RoundRobin));
    assert_eq!(shared.balancer(), LoadBalance::StickyBalanced);
    let cookie = &shared.session_affinity_config.cookie_session_affinity;
    assert_eq!(cookie.maxage, "60");
    assert_eq!(cookie.locations["lb.example.com"], ["/shared-3"]);
    assert_eq!(cookie.locations["other.example.com"], ["/shared-2"]);
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn tls_mapping_and_broken_secret_fallback() {
    let t = translate_fixture("tls", &options());
    let ssl = &t.configuration.ssl_configuration;
    let mapped: Vec<(&str, &str)> = ssl
        .servers
        .iter()
        .map(|(h, u)| (h.as_str(), u.as_str()))
        .collect();
    assert_eq!(
        mapped,
        [
            ("api.example.com", "tls-example-com"),
            ("example.com", "tls-example-com"),
            ("example.org", "tls-org"),
            ("plain.example.com", "tls-example-com"),
            ("www.example.com", "tls-example-com"),
        ]
    );
    assert_eq!(ssl.certificates.len(), 2);
    assert_eq!(
        reasons(&t),
        [
            ("secure", reason::INVALID_SECRET),
            ("secure", reason::INVALID_SECRET),
            ("secure", reason::CERTIFICATE_MISMATCH),
        ]
    );
    assert!(t.events.iter().all(|e| e.kind == EventKind::Warning));
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn invalid_annotation_denies_only_its_ingress() {
    let t = translate_fixture("invalid_annotation", &options());
    let config = &t.configuration;
    let mixed = server(config, "mixed.example.com");
    assert_eq!(location(mixed, "/good").denied, None);
    let denied = location(mixed, "/bad").denied.as_deref().unwrap();
    assert!(denied.contains("auth-url"), "{denied}");
    assert!(denied.ends_with("(and 2 more)"), "{denied}");
    // The first Ingress of a host owns its default location: the valid one here.
    assert_eq!(location(mixed, "/").denied, None);
    let bad_only = server(config, "bad-only.example.com");
    assert!(bad_only.locations.iter().all(|l| l.denied.is_some()));
    // Rejected values are not used: the backend keeps valid settings.
    let bad = backend(config, "default-bad-80");
    assert_eq!(bad.session_affinity_config.mode, "");
    assert_eq!(
        bad.session_affinity_config.cookie_session_affinity.name,
        "INGRESSCOOKIE"
    );
    let messages: Vec<&str> = t.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(t.events.len(), 3, "{messages:#?}");
    assert!(t.events.iter().all(|e| e.name == "bad"));
    assert!(messages.iter().any(|m| m.contains("auth-url")));
    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn snippets_are_ignored_with_an_event() {
    let t = translate_fixture("snippets", &options());
    let host = server(&t.configuration, "snippets.example.com");
    assert!(host.regex_mode());
    assert!(host.locations.iter().all(|l| l.denied.is_none()));
    assert_eq!(
        reasons(&t),
        [
            ("snippets", reason::SNIPPET_IGNORED),
            ("snippets", reason::SNIPPET_IGNORED)
        ]
    );
    insta::assert_json_snapshot!(for_snapshot(t));
}

fn hosts(t: &gangplank_controller::Translation) -> Vec<&str> {
    t.configuration
        .servers
        .iter()
        .map(|s| s.hostname.as_str())
        .collect()
}

#[test]
fn class_filtering() {
    let t = translate_fixture("class_filtering", &options());
    assert_eq!(
        hosts(&t),
        ["_", "legacy-ours.example.com", "ours.example.com"]
    );
    insta::assert_json_snapshot!(for_snapshot(t));

    let without_class = TranslateOptions {
        watch_ingress_without_class: true,
        ..options()
    };
    let t = translate_fixture("class_filtering", &without_class);
    assert_eq!(
        hosts(&t),
        [
            "_",
            "legacy-ours.example.com",
            "no-class.example.com",
            "ours.example.com"
        ]
    );

    // Taking over ingress-nginx's class: its Ingresses become ours, ours do not.
    let takeover = TranslateOptions {
        controller_class: "k8s.io/ingress-nginx".into(),
        ingress_class: "nginx".into(),
        ..options()
    };
    let t = translate_fixture("class_filtering", &takeover);
    assert_eq!(
        hosts(&t),
        ["_", "legacy-theirs.example.com", "theirs.example.com"]
    );

    // By name: `ingressClassName: missing` names no IngressClass; with
    // `--ingress-class-by-name` and that class name it is served all the same (a
    // migration that deleted the class object), and the class objects still count.
    let by_name = TranslateOptions {
        ingress_class: "missing".into(),
        ingress_class_by_name: true,
        ..options()
    };
    let t = translate_fixture("class_filtering", &by_name);
    assert_eq!(
        hosts(&t),
        ["_", "ours.example.com", "unknown-class.example.com"]
    );
    let not_by_name = TranslateOptions {
        ingress_class_by_name: false,
        ..by_name
    };
    let t = translate_fixture("class_filtering", &not_by_name);
    assert_eq!(hosts(&t), ["_", "ours.example.com"]);
}

#[test]
fn default_ingress_class_takes_ingresses_without_class() {
    let mut state = common::fixture("class_filtering");
    for class in &mut state.ingress_classes {
        let class = std::sync::Arc::make_mut(class);
        if class.metadata.name.as_deref() == Some("gangplank") {
            class.metadata.annotations = Some(
                [(
                    gangplank_controller::DEFAULT_CLASS_ANNOTATION.to_owned(),
                    "true".to_owned(),
                )]
                .into(),
            );
        }
    }
    let t = gangplank_controller::translate(&state, &options());
    assert!(hosts(&t).contains(&"no-class.example.com"));
    assert!(!hosts(&t).contains(&"theirs.example.com"));
}

/// ingress-nginx's order: oldest first; equal timestamps (or none, as in manifest
/// directories) by `namespace/name` descending. The first Ingress wins a path.
#[test]
fn first_ingress_wins_in_ingress_nginx_order() {
    let ingress = |name: &str, created: Option<&str>| {
        let created = created
            .map(|t| format!("\n  creationTimestamp: \"{t}\""))
            .unwrap_or_default();
        format!(
            "---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}{created}
spec:
  rules:
    - host: order.example.com
      http:
        paths:
          - {{path: /, pathType: Prefix, backend: {{service: {{name: {name}, port: {{number: 80}}}}}}}}
"
        )
    };
    let options = TranslateOptions {
        watch_ingress_without_class: true,
        ..options()
    };
    let winner = |yaml: String| {
        let t = gangplank_controller::translate(&common::load(&yaml), &options);
        location(server(&t.configuration, "order.example.com"), "/")
            .ingress
            .clone()
            .unwrap()
            .name
    };
    assert_eq!(winner(ingress("a", None) + &ingress("b", None)), "b");
    assert_eq!(
        winner(
            ingress("a", Some("2024-01-01T00:00:00Z"))
                + &ingress("b", Some("2024-01-02T00:00:00Z"))
        ),
        "a"
    );
}

fn denied_locations(t: &gangplank_controller::Translation, host: &str) -> Vec<(String, bool)> {
    server(&t.configuration, host)
        .locations
        .iter()
        .map(|l| (l.path.clone(), l.denied.is_some()))
        .collect()
}

#[test]
fn annotations_become_location_and_host_policies() {
    use gangplank_model::policy::{AuthType, BackendProtocol, Satisfy, VerifyClient};
    let t = translate_fixture("annotations", &options());
    assert!(t.events.is_empty(), "{:#?}", t.events);
    let config = &t.configuration;

    // Host-wide: aliases (lowercase), www redirect, ciphers; the alias the
    // certificate names shares it.
    let app = server(config, "app.example.com");
    assert_eq!(app.aliases, ["www.example.com", "shop.example.net"]);
    assert!(app.redirect_from_to_www);
    assert_eq!(app.ssl_prefer_server_ciphers, Some(true));
    let certs = &config.ssl_configuration.servers;
    assert_eq!(certs["app.example.com"], "shop-shop-tls");
    assert_eq!(certs["www.example.com"], "shop-shop-tls");
    assert!(!certs.contains_key("shop.example.net"));

    let cart = location(app, "/cart");
    assert_eq!(cart.backend_protocol, BackendProtocol::Https);
    assert_eq!(cart.proxy.body_size.unwrap().bytes(), 8 << 20);
    assert_eq!(cart.proxy.read_timeout.unwrap().as_millis(), 120_000);
    assert!(cart.proxy_ssl.verify && cart.proxy_ssl.key_pem.is_some());
    assert_eq!(cart.redirect.force_ssl_redirect, Some(true));
    assert!(cart.cors_config.enabled);
    assert_eq!(cart.custom_headers.headers["X-Shop"], "v1; build=42");
    assert_eq!(cart.allowlist.cidrs.len(), 3);
    assert_eq!(cart.rate_limit.rps_burst(), 60);
    assert_eq!(cart.satisfy, Satisfy::Any);
    assert!(!cart.logs.access);
    assert!(cart.mirror.target.is_some());
    // The host's `/` is the storefront's own path, with the same policies.
    assert_eq!(location(app, "/").proxy, cart.proxy);
    // Cookie affinity covers the aliases too.
    let web = backend(config, "shop-web-80");
    let cookie_hosts: Vec<&str> = web
        .session_affinity_config
        .cookie_session_affinity
        .locations
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        cookie_hosts,
        ["app.example.com", "shop.example.net", "www.example.com"]
    );
    // The ConfigMap's load-balance is the default; an annotation overrides it.
    assert_eq!(web.load_balance, Some(LoadBalance::Ewma));
    assert_eq!(
        backend(config, "shop-grpc-grpc").load_balance,
        Some(LoadBalance::RoundRobin)
    );

    let admin = server(config, "admin.example.com");
    let root = location(admin, "/");
    assert_eq!(root.basic_digest_auth.auth_type, Some(AuthType::Basic));
    assert_eq!(root.basic_digest_auth.credentials.len(), 2);
    assert!(!root.enable_global_auth);
    assert!(cart.enable_global_auth);
    assert_eq!(root.certificate_auth.verify_client, VerifyClient::Optional);
    assert_eq!(admin.certificate_auth, root.certificate_auth);

    let login = location(server(config, "login.example.com"), "/");
    assert_eq!(login.external_auth.signin_redirect_param(), "return_to");
    assert_eq!(
        login.external_auth.proxy_set_headers["X-Auth-Origin"],
        "gangplank"
    );
    let moved = location(server(config, "old.example.com"), "/");
    assert_eq!(
        moved.redirect.location_redirect(),
        Some((308, "https://new.example.com$request_uri"))
    );

    // default-backend: the location without endpoints is served by the copy; the one
    // with endpoints keeps its backend and uses the copy for its custom errors.
    let status = server(config, "status.example.com");
    let empty = location(status, "/empty");
    assert_eq!(empty.backend, "custom-default-backend-shop-errors");
    assert_eq!(
        empty.default_backend_upstream_name,
        "custom-default-backend-shop-errors"
    );
    let with_endpoints = location(status, "/web");
    assert_eq!(with_endpoints.backend, "shop-web-80");
    assert_eq!(with_endpoints.custom_http_errors, [404, 503]);
    assert_eq!(
        with_endpoints.default_backend_upstream_name,
        "custom-default-backend-shop-errors"
    );
    let errors = backend(config, "custom-default-backend-shop-errors");
    assert_eq!(errors.endpoints.len(), 1);
    assert_eq!(errors.endpoints[0].address, "10.1.3.1");

    // service-upstream: the ClusterIP and the Service port, not the pods.
    let grpc = backend(config, "shop-grpc-grpc");
    let endpoints: Vec<String> = grpc
        .endpoints
        .iter()
        .map(|e| format!("{}:{}", e.address, e.port))
        .collect();
    assert_eq!(endpoints, ["10.96.1.4:50051"]);

    insta::assert_json_snapshot!(for_snapshot(t));
}

#[test]
fn hostile_annotations_deny_only_their_ingress() {
    let t = translate_fixture("hostile_annotations", &options());
    let host = "hostile.example.com";
    for (path, denied) in denied_locations(&t, host) {
        let clean = path == "/" || path == "/clean";
        assert_eq!(denied, !clean, "{path}");
    }
    let clean = location(server(&t.configuration, host), "/clean");
    assert_eq!(clean.proxy.body_size.unwrap().bytes(), 2 << 20);
    // Each hostile Ingress has its Warning, naming an annotation it set.
    let ingresses: std::collections::BTreeSet<&str> = t
        .events
        .iter()
        .filter(|e| e.reason == reason::INVALID_ANNOTATION)
        .map(|e| e.name.as_str())
        .collect();
    let denied_paths = denied_locations(&t, host)
        .into_iter()
        .filter(|(_, denied)| *denied)
        .count();
    assert_eq!(ingresses.len(), denied_paths);
    assert!(!ingresses.contains("clean"));
    for event in &t.events {
        assert_eq!(event.kind, EventKind::Warning);
        assert!(
            event.message.contains("nginx.ingress.kubernetes.io/"),
            "{event:?}"
        );
    }
    let view: Vec<serde_json::Value> = server(&t.configuration, host)
        .locations
        .iter()
        .map(|l| serde_json::json!({"path": l.path, "denied": l.denied}))
        .collect();
    insta::assert_json_snapshot!(serde_json::json!({
        "locations": view,
        "events": t.events,
    }));
}

#[test]
fn global_configmap_becomes_general() {
    use gangplank_controller::ObjectKind;
    let t = translate_fixture("configmap", &options());
    let general = &t.configuration.general;
    assert_eq!(general.proxy_body_size().bytes(), 20 << 20);
    assert_eq!(general.proxy_read_timeout().as_secs(), 300);
    assert_eq!(
        general.proxy_send_timeout().as_secs(),
        60,
        "invalid: default"
    );
    assert_eq!(general.keep_alive_requests(), 1000, "invalid: default");
    assert!(general.hsts(), "invalid: default");
    assert_eq!(general.proxy_set_headers().unwrap()["X-Team"], "edge");
    assert!(general.global_auth().is_some());
    // Locations leave the ConfigMap defaults to `general`.
    let app = location(server(&t.configuration, "app.example.com"), "/");
    assert_eq!(app.proxy, Default::default());
    assert_eq!(app.redirect, Default::default());
    assert_eq!(
        backend(&t.configuration, "default-app-80").load_balance,
        Some(LoadBalance::Ewma)
    );
    assert_eq!(
        backend(&t.configuration, "default-legacy-80").load_balance,
        Some(LoadBalance::RoundRobin)
    );
    // The built-in default backend is not an Ingress backend.
    assert_eq!(
        backend(&t.configuration, "upstream-default-backend").load_balance,
        None
    );
    let keys: Vec<&str> = t
        .events
        .iter()
        .map(|e| {
            assert_eq!(e.object_kind, ObjectKind::ConfigMap);
            assert_eq!(e.reason, reason::INVALID_CONFIGURATION);
            assert_eq!(
                (e.namespace.as_str(), e.name.as_str()),
                ("ingress-nginx", "ingress-nginx-controller")
            );
            e.message.split('"').nth(1).unwrap()
        })
        .collect();
    assert_eq!(
        keys,
        [
            "add-headers",
            "block-cidrs",
            "global-auth-method",
            "gzip-level",
            "hsts",
            "keep-alive-requests",
            "limit-req-status-code",
            "proxy-send-timeout",
            "ssl-ciphers",
        ]
    );
    insta::assert_json_snapshot!(serde_json::json!({
        "general": t.configuration.general,
        "events": t.events,
    }));
}

#[test]
fn default_ssl_certificate_is_the_default_server_certificate() {
    use gangplank_controller::ObjectKind;
    let with = |secret: &str| TranslateOptions {
        default_ssl_certificate: Some(("tls".into(), secret.into())),
        ..options()
    };
    let t = translate_fixture("tls", &with("org"));
    let ssl = &t.configuration.ssl_configuration;
    assert_eq!(ssl.servers["_"], "tls-org");
    assert!(ssl.certificates.contains_key("tls-org"));
    // Host mappings are unchanged.
    let plain = translate_fixture("tls", &options());
    let mut expected = plain.configuration.ssl_configuration.servers.clone();
    expected.insert("_".into(), "tls-org".into());
    assert_eq!(ssl.servers, expected);
    assert_eq!(t.events, plain.events);

    // An unusable Secret: no `_` entry (the proxy's generated certificate), and a
    // Warning on the Secret.
    let broken = translate_fixture("tls", &with("broken"));
    assert!(
        !broken
            .configuration
            .ssl_configuration
            .servers
            .contains_key("_")
    );
    let missing = translate_fixture("tls", &with("missing"));
    let secret_events: Vec<_> = broken
        .events
        .iter()
        .chain(&missing.events)
        .filter(|e| e.object_kind == ObjectKind::Secret)
        .collect();
    assert_eq!(secret_events.len(), 2, "{secret_events:#?}");
    assert!(
        secret_events
            .iter()
            .all(|e| e.reason == reason::INVALID_SECRET && e.namespace == "tls")
    );
    insta::assert_json_snapshot!(serde_json::json!({
        "servers": ssl.servers,
        "certificates": ssl.certificates.keys().collect::<Vec<_>>(),
        "events": secret_events,
    }));
}

#[test]
fn ssl_passthrough_is_decided_by_the_ingress_that_creates_the_host() {
    let ingress = |name: &str, created: &str, host: &str, path: &str, passthrough: bool| {
        let annotations = if passthrough {
            "\n  annotations: {nginx.ingress.kubernetes.io/ssl-passthrough: \"true\"}"
        } else {
            ""
        };
        format!(
            "---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  creationTimestamp: \"{created}\"{annotations}
spec:
  rules:
    - host: {host}
      http:
        paths:
          - {{path: {path}, pathType: Prefix, backend: {{service: {{name: {name}, port: {{number: 443}}}}}}}}
"
        )
    };
    let yaml = [
        ingress(
            "vault",
            "2024-01-01T00:00:00Z",
            "vault.example.com",
            "/",
            true,
        ),
        ingress(
            "vault-ui",
            "2024-01-02T00:00:00Z",
            "vault.example.com",
            "/ui",
            false,
        ),
        ingress(
            "shop",
            "2024-01-01T00:00:00Z",
            "shop.example.com",
            "/",
            false,
        ),
        ingress(
            "late",
            "2024-01-02T00:00:00Z",
            "shop.example.com",
            "/late",
            true,
        ),
    ]
    .concat();
    let options = TranslateOptions {
        watch_ingress_without_class: true,
        ..options()
    };
    let t = gangplank_controller::translate(&common::load(&yaml), &options);
    let config = &t.configuration;
    assert!(server(config, "vault.example.com").ssl_passthrough);
    assert!(!server(config, "shop.example.com").ssl_passthrough);
    assert!(backend(config, "default-vault-443").ssl_passthrough);
    assert!(!backend(config, "default-vault-ui-443").ssl_passthrough);
    assert!(backend(config, "default-late-443").ssl_passthrough);
    assert!(t.events.is_empty(), "{:?}", reasons(&t));
}

/// Found by `translation_is_always_valid`: a `default-backend` Service whose first port
/// is out of range (the API server would refuse it; a stand-in or a restored dump may
/// not) must not produce a backend that fails validation. The annotation is unusable.
#[test]
fn default_backend_with_an_out_of_range_port_is_not_used() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  clusterIP: 10.96.0.1
  ports: [{port: -5, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-1
  namespace: default
  labels: {kubernetes.io/service-name: api}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: ["10.0.0.1"]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
  annotations: {nginx.ingress.kubernetes.io/default-backend: api}
spec:
  rules:
    - host: a.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
"#;
    let options = TranslateOptions {
        watch_ingress_without_class: true,
        ..options()
    };
    let t = gangplank_controller::translate(&common::load(yaml), &options);
    gangplank_model::Validate::validate(&t.configuration).unwrap();
    let root = location(server(&t.configuration, "a.example.com"), "/");
    assert_eq!(root.backend, "default-missing-80");
    assert!(root.default_backend_upstream_name.is_empty());
}
