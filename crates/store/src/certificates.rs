//! Certificates compiled for the TLS handshake, and SNI selection as ingress-nginx
//! does it (Part B §3.12): lowercase, strip one trailing dot, exact host, then the
//! one-level wildcard, then the default certificate (host `_`).

use std::collections::HashMap;
use std::sync::Arc;

use gangplank_model::tls::{CertificateInfo, TlsError, parse_pem_bundle};
use gangplank_model::{EMPTY_UID, SslConfiguration};
use rustls::sign::CertifiedKey;

/// A certificate bundle ready for handshakes.
#[derive(Debug)]
pub struct CompiledCertificate {
    /// The certificate UID.
    pub uid: String,
    /// The PEM text it came from (to detect changes without re-parsing).
    pub pem: String,
    /// Chain and signing key.
    pub certified_key: Arc<CertifiedKey>,
    /// Names and validity of the leaf.
    pub info: CertificateInfo,
}

/// Certificates by UID and the host lookup built from the mapping.
#[derive(Debug, Default)]
pub struct CertificateTable {
    by_uid: HashMap<String, Arc<CompiledCertificate>>,
    by_host: HashMap<String, Arc<CompiledCertificate>>,
}

impl CertificateTable {
    /// Compiles the mapping, parsing only PEMs that are new or changed relative to
    /// `previous`. Fails on the first PEM that does not parse (validation has already
    /// reported it with its path; this is the backstop).
    pub fn compile(
        ssl: &SslConfiguration,
        previous: Option<&CertificateTable>,
    ) -> Result<CertificateTable, (String, TlsError)> {
        let mut by_uid = HashMap::with_capacity(ssl.certificates.len());
        for (uid, pem) in &ssl.certificates {
            let reused = previous
                .and_then(|p| p.by_uid.get(uid))
                .filter(|c| c.pem == *pem)
                .cloned();
            let compiled = match reused {
                Some(c) => c,
                None => {
                    let bundle = parse_pem_bundle(pem).map_err(|e| (uid.clone(), e))?;
                    Arc::new(CompiledCertificate {
                        uid: uid.clone(),
                        pem: pem.clone(),
                        certified_key: bundle.certified_key,
                        info: bundle.info,
                    })
                }
            };
            by_uid.insert(uid.clone(), compiled);
        }
        let by_host = ssl
            .servers
            .iter()
            .filter(|(_, uid)| uid.as_str() != EMPTY_UID)
            .filter_map(|(host, uid)| Some((host.to_ascii_lowercase(), by_uid.get(uid)?.clone())))
            .collect();
        Ok(CertificateTable { by_uid, by_host })
    }

    /// The certificate for a TLS ClientHello's server name, per ingress-nginx's rules;
    /// `None` means "use the built-in fallback certificate".
    pub fn for_server_name(&self, sni: Option<&str>) -> Option<&Arc<CompiledCertificate>> {
        if let Some(name) = sni.and_then(normalise_sni) {
            if let Some(c) = self.by_host.get(name.as_str()) {
                return Some(c);
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(c) = self.by_host.get(format!("*.{parent}").as_str())
            {
                return Some(c);
            }
        }
        self.by_host.get("_")
    }

    /// True when `host` has a certificate of its own (exact or wildcard, not the
    /// default): ingress-nginx's `configured_for_current_request`, which gates the
    /// HTTPS redirect and, in Gangplank, HSTS.
    pub fn has_own_certificate(&self, host: &str) -> bool {
        let Some(name) = normalise_sni(host) else {
            return false;
        };
        self.by_host.contains_key(name.as_str())
            || name.split_once('.').is_some_and(|(_, parent)| {
                self.by_host.contains_key(format!("*.{parent}").as_str())
            })
    }

    /// The certificate with UID `uid`.
    pub fn get(&self, uid: &str) -> Option<&Arc<CompiledCertificate>> {
        self.by_uid.get(uid)
    }

    /// All certificates.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CompiledCertificate>> {
        self.by_uid.values()
    }
}

/// Lowercase and strip exactly one trailing dot; `hostname..` keeps a dot and so falls
/// through to the default certificate, as upstream.
fn normalise_sni(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM_COM: &str = concat!(
        include_str!("../../model/tests/fixtures/example.com.crt"),
        include_str!("../../model/tests/fixtures/example.com.key")
    );
    const PEM_ORG: &str = concat!(
        include_str!("../../model/tests/fixtures/rsa.example.org.crt"),
        include_str!("../../model/tests/fixtures/rsa.example.org.key")
    );

    fn table(servers: &[(&str, &str)]) -> CertificateTable {
        let ssl = SslConfiguration {
            certificates: [
                ("com".to_string(), PEM_COM.to_string()),
                ("org".to_string(), PEM_ORG.to_string()),
            ]
            .into(),
            servers: servers
                .iter()
                .map(|(h, u)| (h.to_string(), u.to_string()))
                .collect(),
        };
        CertificateTable::compile(&ssl, None).unwrap()
    }

    fn uid(t: &CertificateTable, sni: Option<&str>) -> Option<String> {
        t.for_server_name(sni).map(|c| c.uid.clone())
    }

    /// Part B §4.7 certificate vectors.
    #[test]
    fn sni_selection_vectors() {
        let t = table(&[
            ("hostname", "com"),
            ("*.hostname", "com"),
            ("*.nested.hostname", "com"),
            ("_", "org"),
        ]);
        assert_eq!(uid(&t, Some("hostname")).as_deref(), Some("com"));
        assert_eq!(uid(&t, Some("HOSTNAME")).as_deref(), Some("com"));
        assert_eq!(uid(&t, Some("sub.hostname")).as_deref(), Some("com"));
        assert_eq!(uid(&t, Some("hostname.")).as_deref(), Some("com"));
        assert_eq!(uid(&t, Some("hostname..")).as_deref(), Some("org"));
        assert_eq!(uid(&t, Some("sub.nested.hostname")).as_deref(), Some("com"));
        assert_eq!(uid(&t, Some("a.sub.hostname")).as_deref(), Some("org"));
        assert_eq!(uid(&t, Some("unknown")).as_deref(), Some("org"));
        assert_eq!(uid(&t, None).as_deref(), Some("org"));
        assert!(t.has_own_certificate("sub.hostname"));
        assert!(!t.has_own_certificate("unknown"));
    }

    #[test]
    fn no_default_means_fallback() {
        let t = table(&[("hostname", "com")]);
        assert_eq!(uid(&t, Some("other")), None);
    }

    #[test]
    fn unchanged_pems_are_not_parsed_again() {
        let t1 = table(&[("hostname", "com")]);
        let ssl = SslConfiguration {
            certificates: [("com".to_string(), PEM_COM.to_string())].into(),
            servers: [("other".to_string(), "com".to_string())].into(),
        };
        let t2 = CertificateTable::compile(&ssl, Some(&t1)).unwrap();
        assert!(Arc::ptr_eq(t1.get("com").unwrap(), t2.get("com").unwrap()));
    }
}
