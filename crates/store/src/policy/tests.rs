use serde_json::json;

use super::*;
use crate::backends::BackendTable;
use crate::policy::fixtures::general;
use crate::routes::RouteTable;

fn server(host: &str, location: serde_json::Value) -> Server {
    let mut l = json!({"path": "/", "backend": "b"});
    l.as_object_mut()
        .unwrap()
        .extend(location.as_object().unwrap().clone());
    serde_json::from_value(json!({"hostname": host, "locations": [l]})).unwrap()
}

fn compile_one(general: &GeneralConfig, server: &Server) -> Arc<CompiledPolicies> {
    let certificates = CertificateTable::default();
    let mut ctx = PolicyContext::new(general, &certificates);
    ctx.compile(&server.locations[0], server)
}

#[test]
fn a_plain_location_has_nothing_but_the_body_limit() {
    let p = compile_one(
        &GeneralConfig::default(),
        &server("a.example.com", json!({})),
    );
    assert!(p.is_empty());
    assert_eq!(p.body_limit, Some(1 << 20));
    assert!(p.unavailable.is_none());
    // No certificate anywhere: the default ssl-redirect can never fire.
    assert!(p.ssl_redirect.is_none());
    let p = compile_one(
        &general(json!({"proxy-body-size": "0"})),
        &server("a", json!({"proxy": {"bodySize": "8m"}})),
    );
    assert_eq!(p.body_limit, Some(8 << 20));
    let p = compile_one(
        &general(json!({"proxy-body-size": 0})),
        &server("a", json!({})),
    );
    assert_eq!(p.body_limit, None);
}

#[test]
fn security_settings_compile_and_fail_closed_when_they_cannot() {
    // Client certificates: a CA that parses is enforced; one that does not makes the
    // location unavailable (503) rather than letting clients in unchecked.
    let ca = include_str!("../../../model/tests/fixtures/example.com.crt");
    let tls = |pem: &str| json!({"certificateAuth": {"secret": {"namespace": "d", "name": "ca"}, "caPem": pem}});
    let p = compile_one(&GeneralConfig::default(), &server("a", tls(ca)));
    assert!(p.unavailable.is_none() && p.client_auth.is_some() && !p.is_empty());
    let broken = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
    let p = compile_one(&GeneralConfig::default(), &server("a", tls(broken)));
    let reason = p.unavailable.as_deref().unwrap_or_default();
    assert!(reason.contains("auth-tls"), "{reason:?}");
    assert!(p.client_auth.is_none() && !p.is_empty());
    // External and digest authentication: compiled, not 503.
    let p = compile_one(
        &GeneralConfig::default(),
        &server(
            "a",
            json!({"externalAuth": {"url": "https://auth.example.com/check"}}),
        ),
    );
    assert!(p.unavailable.is_none() && p.external_auth.is_some() && !p.is_empty());
    let p = compile_one(
        &GeneralConfig::default(),
        &server(
            "a",
            json!({"basicDigestAuth": {"authType": "digest", "credentials": {"u": "0123456789abcdef0123456789abcdef"}}}),
        ),
    );
    assert!(p.unavailable.is_none() && p.digest_auth.is_some() && !p.is_empty());
    // Global auth: on unless the location opts out or is a no-auth location.
    let g = general(json!({"global-auth-url": "https://auth.example.com/"}));
    let p = compile_one(&g, &server("a", json!({"enableGlobalAuth": true})));
    assert!(p.external_auth.as_ref().is_some_and(|a| a.global));
    let p = compile_one(&g, &server("a", json!({"enableGlobalAuth": false})));
    assert!(p.external_auth.is_none());
    let p = compile_one(
        &g,
        &server(
            "a",
            json!({"path": "/.well-known/acme-challenge/x", "enableGlobalAuth": true}),
        ),
    );
    assert!(p.unavailable.is_none() && p.external_auth.is_none());
    // Mirroring and custom errors never make a location unavailable.
    let p = compile_one(
        &GeneralConfig::default(),
        &server(
            "a",
            json!({"mirror": {"target": "https://mirror.example.com/"}, "custom-http-errors": [404]}),
        ),
    );
    assert!(p.unavailable.is_none());
}

#[test]
fn rate_limits_compile_with_nginx_burst_and_per_ingress_zones() {
    let g = GeneralConfig::default();
    // rps and rpm both apply; burst = limit × multiplier (default 5).
    let p = compile_one(
        &g,
        &server(
            "a",
            json!({"rateLimit": {"rps": 2, "rpm": 30, "connections": 3, "allowlist": ["10.0.0.0/8"]}}),
        ),
    );
    assert!(p.unavailable.is_none(), "{:?}", p.unavailable);
    assert!(!p.is_empty());
    let limits = p.rate_limits.as_ref().unwrap();
    assert_eq!(
        limits.rps,
        Some(RequestRate {
            limit: 2,
            period_nanos: 1_000_000_000,
            burst: 10
        })
    );
    assert_eq!(
        limits.rpm,
        Some(RequestRate {
            limit: 30,
            period_nanos: 60_000_000_000,
            burst: 150
        })
    );
    assert_eq!(limits.connections, Some(3));
    assert!(
        limits
            .allowlist
            .as_ref()
            .unwrap()
            .contains("10.1.2.3".parse().unwrap())
    );
    assert_eq!(limits.request_status, http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        limits.connection_status,
        http::StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(limits.zone_name, "a/");

    // Only what is set; the ConfigMap's status codes.
    let g = general(json!({"limit-req-status-code": 429, "limit-conn-status-code": 509}));
    let p = compile_one(
        &g,
        &server("a", json!({"rateLimit": {"rpm": 1, "burstMultiplier": 2}})),
    );
    let limits = p.rate_limits.as_ref().unwrap();
    assert!(limits.rps.is_none() && limits.connections.is_none() && limits.allowlist.is_none());
    assert_eq!(limits.rpm.unwrap().burst, 2);
    assert_eq!(limits.request_status.as_u16(), 429);
    assert_eq!(limits.connection_status.as_u16(), 509);

    // Zones are per Ingress (ingress-nginx's zone names), else per host and path.
    let from = |host: &str, path: &str, ingress: &str| {
        let mut location = json!({"path": path, "rateLimit": {"rps": 1}});
        if !ingress.is_empty() {
            location["ingress"] = json!({"namespace": "ns", "name": ingress});
        }
        compile_one(&g, &server(host, location))
            .rate_limits
            .as_ref()
            .unwrap()
            .zone
    };
    assert_eq!(from("a", "/x", "web"), from("b", "/y", "web"));
    assert_ne!(from("a", "/x", "web"), from("a", "/x", "api"));
    assert_ne!(from("a", "/x", ""), from("a", "/y", ""));
    assert_eq!(from("a", "/x", ""), from("a", "/x", ""));

    // Nothing but limit-rate: no request limits (limit-rate shapes the response).
    let p = compile_one(
        &GeneralConfig::default(),
        &server("a", json!({"rateLimit": {"limitRate": 10}})),
    );
    assert!(p.rate_limits.is_none());
    assert!(p.is_empty());
    assert_eq!(
        p.response.limit_rate.map(|l| l.bytes_per_second),
        Some(10 * 1024)
    );
}

#[test]
fn only_fastcgi_is_a_protocol_the_proxy_cannot_speak() {
    for protocol in ["HTTP", "HTTPS", "GRPC", "GRPCS", "AUTO_HTTP"] {
        let p = compile_one(
            &GeneralConfig::default(),
            &server("a", json!({"backend-protocol": protocol})),
        );
        assert!(p.unsupported_protocol.is_none(), "{protocol}");
        assert!(p.unavailable.is_none(), "{protocol}");
        // The protocol alone does not leave the fast path.
        assert!(p.is_empty(), "{protocol}");
    }
    let p = compile_one(
        &GeneralConfig::default(),
        &server("a", json!({"backend-protocol": "FCGI"})),
    );
    let unsupported = p.unsupported_protocol.unwrap();
    assert_eq!(unsupported.protocol, BackendProtocol::Fcgi);
    assert!(!unsupported.https_clients_only);
}

#[test]
fn broken_upstream_tls_material_fails_closed() {
    let p = compile_one(
        &GeneralConfig::default(),
        &server(
            "a",
            json!({"backend-protocol": "HTTPS", "proxySSL": {
                "caPem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            }}),
        ),
    );
    let reason = p.unavailable.as_deref().unwrap();
    assert!(reason.contains("ca.crt"), "{reason}");
}

#[test]
fn access_lists_auth_and_satisfy() {
    let p = compile_one(
        &GeneralConfig::default(),
        &server(
            "a",
            json!({
                "allowlist": {"cidrs": ["10.0.0.0/8"]},
                "denylist": {"cidrs": ["10.1.0.0/16"]},
                "basicDigestAuth": {"authType": "basic", "realm": "r", "credentials": {"u": "{PLAIN}p"}},
                "satisfy": "any"
            }),
        ),
    );
    assert!(
        p.allowlist
            .as_ref()
            .unwrap()
            .contains("10.2.0.1".parse().unwrap())
    );
    assert!(
        p.denylist
            .as_ref()
            .unwrap()
            .contains("10.1.0.1".parse().unwrap())
    );
    assert!(p.satisfy_any);
    assert_eq!(
        p.basic_auth.as_ref().unwrap().challenge,
        "Basic realm=\"r\""
    );
    let p = compile_one(
        &GeneralConfig::default(),
        &server("a", json!({"satisfy": "any"})),
    );
    assert!(!p.satisfy_any, "satisfy any needs both kinds of checks");
}

#[test]
fn global_policies() {
    let g = general(json!({
        "block-cidrs": ["192.0.2.0/24"],
        "block-user-agents": ["~*bot"],
        "use-forwarded-headers": true,
        "proxy-set-headers": {"X-Env": "prod"},
        "add-headers": {"X-Frame-Options": "DENY"}
    }));
    let p = compile_one(
        &g,
        &server(
            "a",
            json!({"customHeaders": {"headers": {"X-Team": "web"}}}),
        ),
    );
    assert!(!p.is_empty());
    assert!(p.global.block_cidrs.is_some());
    assert!(p.global.block_user_agents.is_some());
    assert!(p.global.real_ip.is_some());
    assert_eq!(p.global.proxy_set_headers.len(), 1);
    let names: Vec<_> = p.response_headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["x-frame-options", "x-team"]);
    assert!(GlobalPolicies::compile(&GeneralConfig::default()).is_empty());
}

#[test]
fn certificates_shape_https_redirects_and_hsts() {
    const PEM: &str = concat!(
        include_str!("../../../model/tests/fixtures/example.com.crt"),
        include_str!("../../../model/tests/fixtures/example.com.key")
    );
    let ssl = gangplank_model::SslConfiguration {
        certificates: [("c".to_string(), PEM.to_string())].into(),
        servers: [("secure.example.com".to_string(), "c".to_string())].into(),
    };
    let certificates = CertificateTable::compile(&ssl, None).unwrap();
    let general = GeneralConfig::default();
    let mut ctx = PolicyContext::new(&general, &certificates);
    let secure = server("Secure.example.com", json!({}));
    let p = ctx.compile(&secure.locations[0], &secure);
    assert!(p.hostname_has_certificate);
    assert!(p.ssl_redirect.is_some());
    assert!(p.hsts_possible);
    let plain = server("plain.example.com", json!({}));
    let p = ctx.compile(&plain.locations[0], &plain);
    assert!(!p.hostname_has_certificate);
    // Another host may still match by alias or wildcard: decided per request.
    assert!(p.ssl_redirect.is_some());
    let default = server("_", json!({}));
    assert!(
        !ctx.compile(&default.locations[0], &default)
            .hostname_has_certificate
    );
}

#[test]
fn www_twins_are_routed_to_a_redirect() {
    let mut with_twin = server("example.com", json!({}));
    with_twin.redirect_from_to_www = true;
    let mut taken = server("taken.example.com", json!({}));
    taken.redirect_from_to_www = true;
    let servers = vec![with_twin, taken, server("www.taken.example.com", json!({}))];
    let table = RouteTable::compile(&servers, &BackendTable::default());
    let twin = table.route("WWW.example.com:8080", "/any/path").unwrap();
    let location = twin.location.unwrap();
    assert_eq!(
        location.policies.www_redirect.as_ref().unwrap().host,
        "example.com"
    );
    assert!(location.backend.is_none());
    // A real server keeps its name.
    let real = table.route("www.taken.example.com", "/").unwrap();
    assert!(real.location.unwrap().policies.www_redirect.is_none());
}

#[test]
fn broken_policies_answer_503_and_never_fail_the_compile() {
    // A regex the set builder rejects only together would make every location 503;
    // here, an invalid CIDR slipped past validation.
    let mut s = server("a", json!({}));
    s.locations[0].allowlist.cidrs = vec!["10.0.0.0/40".into()];
    let p = compile_one(&GeneralConfig::default(), &s);
    assert!(
        p.unavailable
            .as_deref()
            .unwrap()
            .contains("allowlist-source-range")
    );
    let g = GeneralConfig {
        block_cidrs: Some(vec!["nope".into()]),
        ..GeneralConfig::default()
    };
    let p = compile_one(&g, &server("a", json!({})));
    assert!(p.unavailable.as_deref().unwrap().contains("block-cidrs"));
}

#[test]
fn configmap_source_ranges_apply_to_locations_without_their_own() {
    let g = general(json!({
        "whitelist-source-range": ["10.0.0.0/8"],
        "denylist-source-range": ["10.9.0.0/16"]
    }));
    let p = compile_one(&g, &server("a", json!({})));
    let allow = p
        .allowlist
        .as_ref()
        .expect("the ConfigMap allowlist applies");
    assert!(allow.contains("10.1.2.3".parse().unwrap()));
    assert!(!allow.contains("192.0.2.1".parse().unwrap()));
    let deny = p.denylist.as_ref().expect("the ConfigMap denylist applies");
    assert!(deny.contains("10.9.0.1".parse().unwrap()));

    // The location's own list replaces the ConfigMap's.
    let p = compile_one(
        &g,
        &server("a", json!({"allowlist": {"cidrs": ["192.0.2.0/24"]}})),
    );
    let allow = p.allowlist.as_ref().unwrap();
    assert!(allow.contains("192.0.2.1".parse().unwrap()));
    assert!(!allow.contains("10.1.2.3".parse().unwrap()));
}
