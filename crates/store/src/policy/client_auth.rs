//! Client-certificate authentication (`auth-tls-secret`, `auth-tls-verify-client`,
//! `auth-tls-verify-depth`, `auth-tls-error-page`, `auth-tls-pass-certificate-to-upstream`,
//! `auth-tls-match-cn`), compiled once per configuration: the CA bundle into a rustls
//! verifier, the error page into a header value, `match-cn` into a size-limited regex
//! (data, never configuration text: CVE-2025-1097).
//!
//! The handshake side (which hosts request a certificate) is per server
//! ([`CompiledServer::client_auth`](crate::CompiledServer::client_auth)); the request
//! side (what a location requires, which headers go upstream) is per location
//! ([`CompiledPolicies::client_auth`](super::CompiledPolicies::client_auth)). The
//! proxy evaluates them with nginx's semantics (`gangplank_proxy::client_cert`).

use std::sync::Arc;

use gangplank_model::policy::{AuthTls, VerifyClient};
use gangplank_model::validate::REGEX_SIZE_LIMIT;
use http::HeaderValue;
use regex::{Regex, RegexBuilder};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

/// A compiled `auth-tls-*` configuration.
#[derive(Debug)]
pub struct ClientAuth {
    /// `auth-tls-verify-client` (never `off`: that compiles to no `ClientAuth`).
    pub verify: VerifyClient,
    /// Verifies a presented chain against the CA of `auth-tls-secret`; `None` for
    /// `optional_no_ca` without a CA.
    pub verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// `auth-tls-verify-depth`: the longest accepted chain, the client certificate
    /// included (1: signed directly by a CA of the bundle).
    pub verify_depth: u32,
    /// `auth-tls-error-page`: the 302 target instead of a 400.
    pub error_page: Option<HeaderValue>,
    /// `auth-tls-pass-certificate-to-upstream`.
    pub pass_certificate: bool,
    /// `auth-tls-match-cn`, matched against the subject DN (RFC 2253 form).
    pub match_cn: Option<Regex>,
    /// The CA bundle as configured, to tell whether two hosts use the same one.
    pub ca_pem: Option<String>,
}

impl ClientAuth {
    /// Compiles `tls`; `Ok(None)` when client certificates are not requested.
    pub fn compile(tls: &AuthTls) -> Result<Option<Arc<ClientAuth>>, String> {
        if !tls.is_enabled() {
            return Ok(None);
        }
        let verifier = match &tls.ca_pem {
            Some(pem) => Some(verifier(pem)?),
            None if tls.verify_client == VerifyClient::OptionalNoCa => None,
            None => return Err("auth-tls-secret has no ca.crt to verify with".to_owned()),
        };
        let error_page = match &tls.error_page {
            Some(url) => Some(
                HeaderValue::from_str(url)
                    .map_err(|_| format!("auth-tls-error-page {url:?} is not a header value"))?,
            ),
            None => None,
        };
        let match_cn = match &tls.match_cn {
            Some(pattern) => Some(
                RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("auth-tls-match-cn: {e}"))?,
            ),
            None => None,
        };
        Ok(Some(Arc::new(ClientAuth {
            verify: tls.verify_client,
            verifier,
            verify_depth: tls.verify_depth.max(1),
            error_page,
            pass_certificate: tls.pass_certificate_to_upstream,
            match_cn,
            ca_pem: tls.ca_pem.clone(),
        })))
    }
}

/// A verifier over the CA bundle `pem` that also accepts no certificate: whether one
/// is required is decided per request, as nginx answers 400 rather than failing the
/// handshake.
fn verifier(pem: &str) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("auth-tls-secret ca.crt: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("auth-tls-secret ca.crt: {e}"))?;
    }
    if roots.is_empty() {
        return Err("auth-tls-secret ca.crt: no certificate".to_owned());
    }
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("auth-tls-secret ca.crt: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = include_str!("../../../model/tests/fixtures/example.com.crt");

    fn tls(json: serde_json::Value) -> AuthTls {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn compiles_the_ca_and_the_settings() {
        let auth = ClientAuth::compile(&tls(serde_json::json!({
            "caPem": CA, "verifyClient": "optional", "verifyDepth": 2,
            "errorPage": "https://example.com/cert", "passCertificateToUpstream": true,
            "matchCn": "CN=(alice|bob)"
        })))
        .unwrap()
        .unwrap();
        assert_eq!(auth.verify, VerifyClient::Optional);
        assert!(auth.verifier.is_some());
        assert_eq!(auth.verify_depth, 2);
        assert!(auth.pass_certificate);
        assert!(auth.match_cn.as_ref().unwrap().is_match("CN=alice,O=x"));
        assert_eq!(
            auth.error_page.as_ref().unwrap(),
            "https://example.com/cert"
        );
    }

    #[test]
    fn off_or_absent_compiles_to_nothing_and_bad_values_fail() {
        assert!(ClientAuth::compile(&AuthTls::default()).unwrap().is_none());
        let off = tls(serde_json::json!({"caPem": CA, "verifyClient": "off"}));
        assert!(ClientAuth::compile(&off).unwrap().is_none());
        let bad = tls(
            serde_json::json!({"caPem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
        );
        assert!(ClientAuth::compile(&bad).is_err());
        let bomb = tls(serde_json::json!({"caPem": CA, "matchCn": "CN=(a{1000}){1000}"}));
        assert!(ClientAuth::compile(&bomb).is_err());
        let no_ca = tls(
            serde_json::json!({"secret": {"namespace": "n", "name": "s"}, "verifyClient": "optional_no_ca"}),
        );
        let auth = ClientAuth::compile(&no_ca).unwrap().unwrap();
        assert!(auth.verifier.is_none());
    }
}
