//! Certificate bundles (PEM chain + PEM key, as ingress-nginx stores them): decoded and
//! checked where they enter the model, so a broken Secret is an error at POST time
//! instead of a failed handshake later.

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha1::{Digest, Sha1};

/// A decoded, consistent certificate bundle.
#[derive(Debug, Clone)]
pub struct CertificateBundle {
    /// The chain (leaf first) and its signing key, ready for a TLS handshake.
    pub certified_key: Arc<CertifiedKey>,
    /// Facts about the leaf certificate.
    pub info: CertificateInfo,
}

/// What the controller and operators want to know about a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateInfo {
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-1 of the whole PEM text, hex (ingress-nginx's `pemSha`).
    pub pem_sha1: String,
}

impl CertificateInfo {
    /// True when the certificate names `host` (exactly, or by a one-label wildcard).
    pub fn is_valid_for(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let names = self.dns_names.iter().chain(self.common_name.iter());
        names.map(|n| n.to_ascii_lowercase()).any(|name| {
            name == host
                || name.strip_prefix("*.").is_some_and(|suffix| {
                    host.split_once('.')
                        .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
                })
        })
    }
}

/// Why a bundle was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// No `CERTIFICATE` block.
    #[error("no PEM certificate found")]
    NoCertificate,
    /// No private key block.
    #[error("no PEM private key found")]
    NoKey,
    /// More than one private key block.
    #[error("more than one PEM private key found")]
    SeveralKeys,
    /// PEM framing or base64 is broken.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// The leaf certificate is not valid X.509.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// The key is of an unsupported type or broken.
    #[error("unsupported or invalid private key: {0}")]
    Key(String),
    /// The key does not belong to the leaf certificate.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
}

/// Decodes and checks a PEM bundle: at least one certificate (leaf first), exactly one
/// private key (PKCS#1, PKCS#8 or SEC1), and the key must match the leaf.
pub fn parse_pem_bundle(pem: &str) -> Result<CertificateBundle, TlsError> {
    let bytes = pem.as_bytes();
    let chain = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    let leaf = chain.first().ok_or(TlsError::NoCertificate)?;

    let mut keys = PrivateKeyDer::pem_slice_iter(bytes);
    let key = keys
        .next()
        .ok_or(TlsError::NoKey)?
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if keys.next().is_some() {
        return Err(TlsError::SeveralKeys);
    }

    let info = leaf_info(leaf, pem)?;
    let provider = rustls::crypto::ring::default_provider();
    let certified_key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
        other => TlsError::Key(other.to_string()),
    })?;
    Ok(CertificateBundle {
        certified_key: Arc::new(certified_key),
        info,
    })
}

fn leaf_info(leaf: &CertificateDer<'_>, pem: &str) -> Result<CertificateInfo, TlsError> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(TlsError::Certificate(e.to_string())),
    };
    let validity = cert.validity();
    Ok(CertificateInfo {
        common_name,
        dns_names,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        pem_sha1: hex::encode(Sha1::digest(pem.as_bytes())),
    })
}

// Fixtures are static PEM files generated once with openssl (100-year validity), so
// the tests need no certificate-generation dependency.
#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../tests/fixtures/example.com.crt");
    const KEY: &str = include_str!("../tests/fixtures/example.com.key");
    const OTHER_KEY: &str = include_str!("../tests/fixtures/other.key");

    #[test]
    fn accepts_a_matching_bundle_and_reads_names() {
        let bundle = parse_pem_bundle(&format!("{CERT}{KEY}")).unwrap();
        assert_eq!(bundle.info.common_name.as_deref(), Some("example.com"));
        assert!(bundle.info.dns_names.contains(&"*.example.com".to_string()));
        assert!(bundle.info.is_valid_for("example.com"));
        assert!(bundle.info.is_valid_for("www.example.com"));
        assert!(!bundle.info.is_valid_for("a.b.example.com"));
        assert!(!bundle.info.is_valid_for("example.org"));
        assert!(bundle.info.not_after > bundle.info.not_before);
        assert_eq!(bundle.info.pem_sha1.len(), 40);
    }

    #[test]
    fn rejects_broken_bundles_with_a_reason() {
        assert_eq!(parse_pem_bundle(KEY).unwrap_err(), TlsError::NoCertificate);
        assert_eq!(parse_pem_bundle(CERT).unwrap_err(), TlsError::NoKey);
        assert_eq!(
            parse_pem_bundle(&format!("{CERT}{OTHER_KEY}")).unwrap_err(),
            TlsError::KeyMismatch
        );
        assert_eq!(
            parse_pem_bundle(&format!("{CERT}{KEY}{OTHER_KEY}")).unwrap_err(),
            TlsError::SeveralKeys
        );
        assert!(parse_pem_bundle("garbage").is_err());
        let truncated = format!("{}{KEY}", &CERT[..CERT.len() / 2]);
        assert!(parse_pem_bundle(&truncated).is_err());
        let corrupt = CERT.replacen("MII", "MIX", 1);
        assert!(parse_pem_bundle(&format!("{corrupt}{KEY}")).is_err());
    }
}
