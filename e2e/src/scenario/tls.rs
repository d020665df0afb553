//! TLS for the scenarios: self-signed certificates made for `tls_secrets` (rcgen), the
//! Secrets that carry them, and the client side of HTTPS requests, which accepts any
//! certificate and keeps the one served so expectations can compare it.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};

/// A generated certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedCert {
    /// The certificate, DER: what the proxy must serve.
    pub der: Vec<u8>,
    /// The certificate, PEM (`tls.crt`).
    pub cert_pem: String,
    /// The PKCS#8 key, PEM (`tls.key`).
    pub key_pem: String,
}

/// A fresh self-signed certificate for `hosts` (ECDSA P-256, as rcgen's default).
pub fn generate(hosts: &[String]) -> Result<GeneratedCert, String> {
    let certified = rcgen::generate_simple_self_signed(hosts.to_vec())
        .map_err(|e| format!("generating a certificate for {hosts:?}: {e}"))?;
    let der = certified.cert.der().to_vec();
    Ok(GeneratedCert {
        cert_pem: pem("CERTIFICATE", &der),
        key_pem: pem("PRIVATE KEY", certified.signing_key.serialized_der()),
        der,
    })
}

/// A `kubernetes.io/tls` Secret holding `cert`.
pub fn secret(namespace: &str, name: &str, cert: &GeneratedCert) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64(cert.cert_pem.as_bytes()),
            "tls.key": base64(cert.key_pem.as_bytes()),
        }
    })
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A client configuration that accepts any server certificate (the suite checks the
/// served certificate itself, by comparing it with the generated one) and offers
/// only HTTP/1.1, without session resumption.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // A full handshake every time: a resumed session reports the certificate of the
    // session it resumes, not the one the server would serve now.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts every certificate; signatures are still checked with the provider's
/// algorithms, so a handshake proves the server holds the certificate's key. Also
/// used by the process-level tests, which look at the served certificate themselves.
#[derive(Debug)]
pub struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl AcceptAny {
    /// With ring's algorithms (the provider of the whole workspace).
    pub fn ring() -> Arc<AcceptAny> {
        Arc::new(AcceptAny(
            Arc::new(rustls::crypto::ring::default_provider()),
        ))
    }
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn generated_certificates_are_pem() {
        let Ok(cert) = generate(&["a.example".to_owned(), "*.b.example".to_owned()]) else {
            panic!("rcgen failed");
        };
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(cert.key_pem.contains("-----END PRIVATE KEY-----"));
        assert!(cert.cert_pem.lines().all(|l| l.len() <= 64));
    }
}
