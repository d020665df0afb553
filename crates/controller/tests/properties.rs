//! Property test: arbitrary small sets of Ingresses, Services, EndpointSlices,
//! Secrets and ConfigMaps (global and referenced), drawn from small alphabets that
//! include hostile strings (control characters, directive breakers, bad regexes,
//! over-long names), never panic the translation and always give a configuration that
//! passes model validation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.

use std::collections::BTreeMap;

use gangplank_controller::k8s_openapi::ByteString;
use gangplank_controller::k8s_openapi::api::core::v1::{
    ConfigMap, Secret, Service, ServicePort, ServiceSpec,
};
use gangplank_controller::k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use gangplank_controller::k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec,
    IngressRule, IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use gangplank_controller::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use gangplank_controller::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use gangplank_controller::{
    ANNOTATION_PREFIX, ClusterState, MAX_MESSAGE_LEN, SERVICE_NAME_LABEL, TranslateOptions,
    translate,
};
use proptest::prelude::*;
use proptest::sample::select;

const CERT: &str = include_str!("../../model/tests/fixtures/example.com.crt");
const KEY: &str = include_str!("../../model/tests/fixtures/example.com.key");
const OTHER_KEY: &str = include_str!("../../model/tests/fixtures/other.key");

fn long(c: char, n: usize) -> &'static str {
    Box::leak(
        std::iter::repeat_n(c, n)
            .collect::<String>()
            .into_boxed_str(),
    )
}

/// Mostly ordinary values (so that Ingresses, Services and slices meet), sometimes
/// hostile ones.
fn pick<T: Clone + std::fmt::Debug + 'static>(
    good: Vec<T>,
    bad: Vec<T>,
) -> impl Strategy<Value = T> {
    prop_oneof![5 => select(good), 1 => select(bad)]
}

fn namespaces() -> impl Strategy<Value = &'static str> {
    pick(
        vec!["default", "default", "ns"],
        vec!["", "N s", "a\nb", long('n', 300)],
    )
}

fn names() -> impl Strategy<Value = &'static str> {
    pick(
        vec!["web", "api", "ext"],
        vec!["", "A B", "x\r\ny", "ü", "a;b", long('s', 600)],
    )
}

fn hosts() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(pick(
        vec![
            "a.example.com",
            "example.com",
            "*.example.com",
            "b.example.com",
        ],
        vec![
            "",
            "A.Example.com",
            "*.*.x",
            "a b",
            "bad;host",
            "-x.com",
            "_",
            "a..b",
            "ü.com",
            "localhost",
            long('h', 300),
        ],
    ))
}

fn paths() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(pick(
        vec!["/", "/a", "/a/", "/b", "/v[0-9]+"],
        vec![
            "",
            "/a b",
            "/(x",
            "/v[0-9]+",
            "relative",
            "/\n}",
            "/{",
            "/%00",
            "/(?=x)",
            "/.*",
            "/a;}location /x{",
            long('p', 3000),
        ],
    ))
}

fn path_types() -> impl Strategy<Value = &'static str> {
    pick(
        vec!["Exact", "Prefix", "ImplementationSpecific"],
        vec!["", "Regex"],
    )
}

fn ports() -> impl Strategy<Value = Option<ServiceBackendPort>> {
    prop::option::of(prop_oneof![
        pick(vec![80, 443], vec![-1, 0, 8080, 70000]).prop_map(|n| ServiceBackendPort {
            number: Some(n),
            name: None,
        }),
        pick(vec!["http", "metrics"], vec!["HTTP", "", "a b"]).prop_map(|n| ServiceBackendPort {
            number: None,
            name: Some(n.to_owned()),
        }),
    ])
}

/// (annotation, ordinary values) for the annotations the translation reads (those
/// with cross-object effects, and a sample of the others), plus a snippet.
const ANNOTATIONS: &[(&str, &[&str])] = &[
    ("load-balance", &["ewma", "round_robin", "chash"]),
    (
        "upstream-hash-by",
        &["$request_uri", "${host}-x", "$binary_remote_addr"],
    ),
    ("upstream-hash-by-subset", &["true"]),
    ("upstream-hash-by-subset-size", &["3", "0"]),
    ("affinity", &["cookie"]),
    ("affinity-mode", &["persistent", "balanced"]),
    ("affinity-canary-behavior", &["legacy", "sticky"]),
    ("session-cookie-name", &["route"]),
    ("session-cookie-path", &["/"]),
    ("session-cookie-domain", &[".example.com"]),
    ("session-cookie-expires", &["60"]),
    ("session-cookie-max-age", &["-1"]),
    ("session-cookie-samesite", &["Lax"]),
    ("session-cookie-secure", &["true"]),
    ("canary", &["true"]),
    ("canary-weight", &["30"]),
    ("canary-weight-total", &["1000"]),
    ("canary-by-header", &["X-Canary"]),
    ("canary-by-header-value", &["yes"]),
    ("canary-by-header-pattern", &["^v2$"]),
    ("canary-by-cookie", &["beta"]),
    ("use-regex", &["true"]),
    ("rewrite-target", &["/", "/$1"]),
    ("configuration-snippet", &["return 200;\n"]),
    (
        "auth-url",
        &["http://auth.example.com/", "https://$host/auth"],
    ),
    (
        "auth-signin",
        &["https://auth.example.com/start?rd=$request_uri"],
    ),
    ("auth-proxy-set-headers", &["headers", "default/headers"]),
    ("auth-type", &["basic", "digest"]),
    ("auth-secret", &["web", "default/web", "api"]),
    ("auth-secret-type", &["auth-map", "auth-file"]),
    ("auth-tls-secret", &["web", "api"]),
    ("auth-tls-verify-client", &["optional_no_ca", "off"]),
    ("proxy-ssl-secret", &["web"]),
    ("proxy-ssl-verify", &["on"]),
    (
        "server-alias",
        &[
            "b.example.com",
            "example.com, *.example.com",
            "a.example.com",
        ],
    ),
    ("from-to-www-redirect", &["true"]),
    ("ssl-ciphers", &["HIGH:!aNULL"]),
    ("custom-headers", &["headers", "ns/headers"]),
    ("default-backend", &["web", "api"]),
    ("custom-http-errors", &["404,503"]),
    ("service-upstream", &["true"]),
    ("whitelist-source-range", &["10.0.0.0/8, ::1"]),
    ("limit-rps", &["10"]),
    ("proxy-body-size", &["8m", "0"]),
    ("proxy-read-timeout", &["120", "1m"]),
    ("proxy-next-upstream", &["error timeout", "off"]),
    ("permanent-redirect", &["https://example.com$request_uri"]),
    ("app-root", &["/app"]),
    ("enable-cors", &["true"]),
    ("cors-allow-origin", &["https://a.example.com"]),
    ("upstream-vhost", &["internal.example.com"]),
    ("mirror-target", &["https://mirror.example.com$request_uri"]),
    ("backend-protocol", &["GRPC", "https"]),
];

const HOSTILE_VALUES: &[&str] = &[
    "$nope",
    "-1",
    "99999999999999999999",
    "a b",
    "(?=x)",
    "a\r\nb",
    "",
    "\0",
    "http://a/;}location /x{return 200;}#",
];

fn annotations() -> impl Strategy<Value = (&'static str, &'static str)> {
    (0..ANNOTATIONS.len()).prop_flat_map(|i| {
        let (key, good) = ANNOTATIONS[i];
        let mut bad: Vec<&'static str> = HOSTILE_VALUES.to_vec();
        bad.push(long('v', 5000));
        pick(good.to_vec(), bad).prop_map(move |value| (key, value))
    })
}

#[derive(Debug, Clone)]
struct PathSpec {
    path: Option<&'static str>,
    path_type: &'static str,
    service: &'static str,
    port: Option<ServiceBackendPort>,
}

fn path_specs() -> impl Strategy<Value = PathSpec> {
    (paths(), path_types(), names(), ports()).prop_map(|(path, path_type, service, port)| {
        PathSpec {
            path,
            path_type,
            service,
            port,
        }
    })
}

fn backend(service: &str, port: Option<ServiceBackendPort>) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: service.to_owned(),
            port,
        }),
        resource: None,
    }
}

prop_compose! {
    fn ingresses()(
        namespace in namespaces(),
        name in names(),
        classed in any::<bool>(),
        timestamp in prop::option::of(0i64..3),
        annotations in prop::collection::vec(annotations(), 0..8),
        default_backend in prop::option::of((names(), ports())),
        rules in prop::collection::vec((hosts(), prop::option::of(prop::collection::vec(path_specs(), 0..4))), 0..4),
        tls in prop::collection::vec((prop::collection::vec(hosts(), 0..3), prop::option::of(names())), 0..3),
    ) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                creation_timestamp: timestamp.map(|s| {
                    gangplank_controller::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        gangplank_controller::k8s_openapi::jiff::Timestamp::from_second(s).unwrap(),
                    )
                }),
                annotations: Some(
                    annotations
                        .into_iter()
                        .map(|(k, v)| (format!("{ANNOTATION_PREFIX}{k}"), v.to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(IngressSpec {
                ingress_class_name: classed.then(|| "gangplank".to_owned()),
                default_backend: default_backend.map(|(s, p)| backend(s, p)),
                rules: Some(
                    rules
                        .into_iter()
                        .map(|(host, paths)| IngressRule {
                            host: host.map(str::to_owned),
                            http: paths.map(|paths| HTTPIngressRuleValue {
                                paths: paths
                                    .into_iter()
                                    .map(|p| HTTPIngressPath {
                                        path: p.path.map(str::to_owned),
                                        path_type: p.path_type.to_owned(),
                                        backend: backend(p.service, p.port),
                                    })
                                    .collect(),
                            }),
                        })
                        .collect(),
                ),
                tls: Some(
                    tls.into_iter()
                        .map(|(hosts, secret)| IngressTLS {
                            hosts: Some(hosts.into_iter().flatten().map(str::to_owned).collect()),
                            secret_name: secret.map(str::to_owned),
                        })
                        .collect(),
                ),
            }),
            status: None,
        }
    }
}

prop_compose! {
    fn services()(
        namespace in namespaces(),
        name in names(),
        kind in pick(vec![None, Some("ClusterIP"), Some("ExternalName")], vec![Some("Weird")]),
        external in pick(
            vec![None, Some("api.example.net"), Some("x.example.org."), Some("10.0.0.1")],
            vec![Some("localhost"), Some("127.0.0.1"), Some("Bad_Name"), Some("a b")],
        ),
        ports in prop::collection::vec(
            (prop::option::of(pick(vec!["http", "metrics"], vec!["", "a\nb"])),
             pick(vec![80, 443], vec![0, 70000, -5]),
             prop::option::of(prop_oneof![
                 pick(vec![8080, 9100], vec![0, -1, 99999]).prop_map(IntOrString::Int),
                 pick(vec!["web"], vec!["", "8080", "A B"]).prop_map(|s| IntOrString::String(s.to_owned())),
             ])),
            1..3),
    ) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: kind.map(str::to_owned),
                external_name: external.map(str::to_owned),
                cluster_ip: Some("10.96.0.1".to_owned()),
                ports: Some(ports.into_iter().map(|(name, port, target)| ServicePort {
                    name: name.map(str::to_owned),
                    port,
                    target_port: target,
                    ..ServicePort::default()
                }).collect()),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }
}

prop_compose! {
    fn slices()(
        namespace in namespaces(),
        service in names(),
        address_type in pick(vec!["IPv4", "IPv6"], vec!["FQDN"]),
        ports in prop::option::of(prop::collection::vec(
            (prop::option::of(select(vec!["http", "metrics", "web"])),
             prop::option::of(pick(vec![8080, 9100], vec![0, 70000, -1])),
             prop::option::of(pick(vec!["TCP"], vec!["UDP"]))),
            0..3)),
        endpoints in prop::collection::vec(
            (prop::collection::vec(pick(vec!["10.0.0.1", "10.0.0.2", "::1", "fd00::2"], vec!["not-ip", "999.1.1.1", ""]), 1..3),
             prop::option::of(pick(vec![true], vec![false])),
             prop::option::of(pick(vec![false], vec![true]))),
            0..4),
    ) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(format!("{service}-slice")),
                labels: Some(BTreeMap::from([(SERVICE_NAME_LABEL.to_owned(), service.to_owned())])),
                ..ObjectMeta::default()
            },
            address_type: address_type.to_owned(),
            ports: ports.map(|ports| ports.into_iter().map(|(name, port, protocol)| EndpointPort {
                name: name.map(str::to_owned),
                port,
                protocol: protocol.map(str::to_owned),
                app_protocol: None,
            }).collect()),
            endpoints: Some(endpoints.into_iter().map(|(addresses, ready, terminating)| Endpoint {
                addresses: addresses.into_iter().map(str::to_owned).collect(),
                conditions: Some(EndpointConditions { ready, serving: None, terminating }),
                ..Endpoint::default()
            }).collect()),
        }
    }
}

prop_compose! {
    fn secrets()(
        namespace in namespaces(),
        name in names(),
        content in select(vec![0u8, 1, 2, 3, 4, 5]),
    ) -> Secret {
        let (crt, key) = match content {
            0 | 4 => (CERT.as_bytes().to_vec(), KEY.as_bytes().to_vec()),
            1 => (CERT.as_bytes().to_vec(), OTHER_KEY.as_bytes().to_vec()),
            2 | 5 => (b"garbage".to_vec(), vec![0xff, 0xfe]),
            _ => (CERT.trim_end().as_bytes().to_vec(), KEY.as_bytes().to_vec()),
        };
        let mut data = BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(crt)),
            ("tls.key".to_owned(), ByteString(key)),
        ]);
        // Credentials and a CA, usable (4) or not (5).
        if content == 4 {
            data.insert("auth".to_owned(), ByteString(b"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n".to_vec()));
            data.insert("ca.crt".to_owned(), ByteString(CERT.as_bytes().to_vec()));
        }
        if content == 5 {
            data.insert("auth".to_owned(), ByteString(b"alice\n\xff:x".to_vec()));
            data.insert("ca.crt".to_owned(), ByteString(b"-----BEGIN CERTIFICATE-----\n;\n".to_vec()));
            data.insert("bob".to_owned(), ByteString(b"".to_vec()));
        }
        Secret {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..Secret::default()
        }
    }
}

/// ConfigMap data: ordinary keys and values, sometimes hostile ones.
fn config_map_data() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        pick(
            vec![
                "X-Team",
                "X-Frame-Options",
                "proxy-body-size",
                "load-balance",
                "global-allowed-response-headers",
                "proxy-set-headers",
                "ssl-protocols",
                "custom-http-errors",
                "global-auth-url",
            ],
            vec!["Transfer-Encoding", "X Bad", "a\nb", "", "hsts-max-age"],
        )
        .prop_map(str::to_owned),
        pick(
            vec![
                "1m",
                "ewma",
                "X-Team,X-Frame-Options",
                "headers",
                "TLSv1.3",
                "404",
                "https://auth.example.com/",
                "edge",
            ],
            vec![
                "",
                "a\r\nb",
                "GET;DELETE",
                "99999999999999999999",
                "300.0.0.1",
                "ns/headers",
                long('v', 5000),
            ],
        )
        .prop_map(str::to_owned),
        0..5,
    )
}

fn config_maps() -> impl Strategy<Value = ConfigMap> {
    (
        namespaces(),
        pick(vec!["headers"], vec!["", "a b"]),
        config_map_data(),
    )
        .prop_map(|(namespace, name, data)| ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..ConfigMap::default()
        })
}

fn states() -> impl Strategy<Value = (ClusterState, TranslateOptions)> {
    (
        prop::collection::vec(ingresses(), 0..8),
        prop::collection::vec(services(), 0..6),
        prop::collection::vec(slices(), 0..6),
        prop::collection::vec(secrets(), 0..3),
        any::<bool>(),
        prop::option::of((namespaces(), names())),
        (
            prop::option::of(config_maps()),
            prop::collection::vec(config_maps(), 0..2),
            prop::option::of((namespaces(), names())),
        ),
    )
        .prop_map(
            |(
                ingresses,
                services,
                endpoint_slices,
                secrets,
                without_class,
                default,
                (config_map, config_maps, default_certificate),
            )| {
                fn arcs<T>(v: Vec<T>) -> Vec<std::sync::Arc<T>> {
                    v.into_iter().map(std::sync::Arc::new).collect()
                }
                let state = ClusterState {
                    ingresses: arcs(ingresses),
                    ingress_classes: vec![std::sync::Arc::new(IngressClass {
                        metadata: ObjectMeta {
                            name: Some("gangplank".to_owned()),
                            ..ObjectMeta::default()
                        },
                        spec: Some(IngressClassSpec {
                            controller: Some("gangplank.io/ingress-controller".to_owned()),
                            parameters: None,
                        }),
                    })],
                    services: arcs(services),
                    endpoint_slices: arcs(endpoint_slices),
                    secrets: arcs(secrets),
                    config_map: config_map.map(std::sync::Arc::new),
                    config_maps: arcs(config_maps),
                };
                let options = TranslateOptions {
                    watch_ingress_without_class: without_class,
                    default_backend_service: default.map(|(ns, n)| (ns.to_owned(), n.to_owned())),
                    default_ssl_certificate: default_certificate
                        .map(|(ns, n)| (ns.to_owned(), n.to_owned())),
                    ..TranslateOptions::default()
                };
                (state, options)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn translation_is_always_valid((state, options) in states()) {
        let translation = translate(&state, &options);
        let validated = gangplank_model::Validate::validate(&translation.configuration);
        prop_assert!(validated.is_ok(), "{:#?}", validated);
        for event in &translation.events {
            prop_assert!(event.message.len() <= MAX_MESSAGE_LEN);
            prop_assert!(!event.message.chars().any(char::is_control), "{:?}", event.message);
        }
        // Deterministic: the same objects give the same snapshot.
        prop_assert_eq!(translate(&state, &options), translation);
    }
}
