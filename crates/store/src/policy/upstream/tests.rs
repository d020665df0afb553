#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::policy::fixtures::location;

const CRT: &str = include_str!("../../../../model/tests/fixtures/example.com.crt");
const KEY: &str = include_str!("../../../../model/tests/fixtures/example.com.key");
const OTHER_KEY: &str = include_str!("../../../../model/tests/fixtures/other.key");
/// A valid PEM envelope around bytes that are not a certificate.
const GARBAGE: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

fn compile_with(
    value: serde_json::Value,
    general: serde_json::Value,
) -> (Result<UpstreamSettings, String>, Vec<String>) {
    let general: GeneralConfig = serde_json::from_value(general).unwrap();
    let mut warnings = Vec::new();
    let settings = compile(&location(value), &general, &mut warnings);
    (settings, warnings)
}

fn tls_of(settings: &UpstreamSettings) -> &Arc<UpstreamTls> {
    match &settings.protocol {
        UpstreamProtocol::Https(t) | UpstreamProtocol::AutoHttp(t) | UpstreamProtocol::Grpcs(t) => {
            t
        }
        other => panic!("no TLS: {other:?}"),
    }
}

#[test]
fn protocols_compile_to_their_transport() {
    let (s, _) = compile_with(json!({}), json!({}));
    assert!(matches!(s.unwrap().protocol, UpstreamProtocol::Http));
    let (s, _) = compile_with(json!({"backend-protocol": "GRPC"}), json!({}));
    assert!(s.unwrap().protocol.is_grpc());
    let (s, _) = compile_with(json!({"backend-protocol": "FCGI"}), json!({}));
    assert!(matches!(s.unwrap().protocol, UpstreamProtocol::Http));

    let (s, _) = compile_with(json!({"backend-protocol": "HTTPS"}), json!({}));
    let s = s.unwrap();
    let tls = tls_of(&s);
    assert_eq!(tls.client_config().alpn_protocols, [b"http/1.1".to_vec()]);
    // nginx's defaults: no verification, no SNI.
    assert!(!tls.verifies());
    assert!(!tls.sends_sni());
    assert!(tls.server_name().is_none());

    let (s, _) = compile_with(json!({"backend-protocol": "GRPCS"}), json!({}));
    let s = s.unwrap();
    assert_eq!(tls_of(&s).client_config().alpn_protocols, [b"h2".to_vec()]);
    assert!(s.protocol.is_grpc());
    let (s, _) = compile_with(json!({"backend-protocol": "AUTO_HTTP"}), json!({}));
    assert!(matches!(s.unwrap().protocol, UpstreamProtocol::AutoHttp(_)));
}

#[test]
fn equal_settings_share_one_configuration() {
    let ssl = json!({"backend-protocol": "HTTPS", "proxySSL": {"name": "up.example.com", "serverName": true}});
    let (a, _) = compile_with(ssl.clone(), json!({}));
    let (b, _) = compile_with(ssl, json!({}));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(Arc::ptr_eq(tls_of(&a), tls_of(&b)));
    // Another ALPN is another configuration.
    let (c, _) = compile_with(
        json!({"backend-protocol": "GRPCS", "proxySSL": {"name": "up.example.com", "serverName": true}}),
        json!({}),
    );
    assert!(!Arc::ptr_eq(tls_of(&a), tls_of(&c.unwrap())));
    let t = tls_of(&a);
    assert!(t.sends_sni());
    assert_eq!(
        t.server_name(),
        Some(&ServerName::try_from("up.example.com").unwrap())
    );
}

#[test]
fn verification_and_client_certificates() {
    let (s, _) = compile_with(
        json!({"backend-protocol": "HTTPS", "proxySSL": {
            "caPem": CRT, "certPem": CRT, "keyPem": KEY, "verify": true, "verifyDepth": 2
        }}),
        json!({}),
    );
    let s = s.unwrap();
    let tls = tls_of(&s);
    assert!(tls.verifies());
    assert!(tls.client_config().client_auth_cert_resolver.has_certs());
    // With a CA and the protocols unset: TLSv1.2 only, as ingress-nginx.
    assert_eq!(tls.versions(), [TlsProtocol::TlsV1_2]);
    // Without a CA: nginx's default, TLSv1.2 and TLSv1.3.
    let (s, _) = compile_with(json!({"backend-protocol": "HTTPS"}), json!({}));
    let s = s.unwrap();
    let tls = tls_of(&s);
    assert_eq!(tls.versions(), [TlsProtocol::TlsV1_2, TlsProtocol::TlsV1_3]);
    assert!(!tls.client_config().client_auth_cert_resolver.has_certs());
}

#[test]
fn broken_material_is_an_error_with_a_reason() {
    for (ssl, expected) in [
        (json!({"caPem": GARBAGE}), "ca.crt"),
        (json!({"caPem": GARBAGE, "verify": true}), "ca.crt"),
        (
            json!({"certPem": CRT, "keyPem": OTHER_KEY}),
            "tls.crt/tls.key",
        ),
        (json!({"certPem": GARBAGE, "keyPem": KEY}), "tls.crt"),
    ] {
        let (s, _) = compile_with(
            json!({"backend-protocol": "HTTPS", "proxySSL": ssl}),
            json!({}),
        );
        let e = s.unwrap_err();
        assert!(e.contains(expected), "{e}");
    }
    // Plain HTTP never looks at proxy-ssl-*.
    let (s, _) = compile_with(json!({"proxySSL": {"caPem": GARBAGE}}), json!({}));
    assert!(s.is_ok());
}

#[test]
fn protocols_and_ciphers_warn_about_what_rustls_lacks() {
    let (s, warnings) = compile_with(
        json!({"backend-protocol": "HTTPS", "proxySSL": {
            "protocols": ["TLSv1.1", "TLSv1.3"], "ciphers": "AES128-SHA:HIGH"
        }}),
        json!({}),
    );
    let s = s.unwrap();
    assert_eq!(tls_of(&s).versions(), [TlsProtocol::TlsV1_3]);
    assert!(
        warnings.iter().any(|w| w.contains("TlsV1_1")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("AES128-SHA")),
        "{warnings:?}"
    );
}

#[test]
fn http_version_and_next_upstream_timeout() {
    let (s, _) = compile_with(json!({}), json!({}));
    let s = s.unwrap();
    assert!(!s.http10);
    assert_eq!(s.next_upstream_timeout, None);
    let (s, _) = compile_with(
        json!({}),
        json!({"proxy-http-version": "1.0", "proxy-next-upstream-timeout": "5"}),
    );
    let s = s.unwrap();
    assert!(s.http10);
    assert_eq!(s.next_upstream_timeout, Some(Duration::from_secs(5)));
    let (s, _) = compile_with(
        json!({"proxy": {"httpVersion": "1.1", "nextUpstreamTimeout": "0"}}),
        json!({"proxy-http-version": "1.0", "proxy-next-upstream-timeout": "5"}),
    );
    let s = s.unwrap();
    assert!(!s.http10);
    assert_eq!(s.next_upstream_timeout, None);
}
