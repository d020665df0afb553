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
}

#[test]
fn default_ingress_class_takes_ingresses_without_class() {
    let mut state = common::fixture("class_filtering");
    for class in &mut state.ingress_classes {
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
