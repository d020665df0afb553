//! The certificate mapping: PEM bundles by UID and host names pointing at them, as
//! `POST /configuration/servers` carries it (Part B §1.4).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::json::{DecodeError, decode, null_as_default};
use crate::validate::{Path, Report, Validate, check_hostname, check_text};

/// The UID value that deletes a host's mapping (`"-1"`, ingress-nginx's `EMPTY_UID`).
pub const EMPTY_UID: &str = "-1";

/// Certificates by UID and the host -> UID mapping.
///
/// The same shape serves as the body of `POST /configuration/servers` (0.26+ shape)
/// and as the `sslConfiguration` part of a whole snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SslConfiguration {
    /// PEM chain + PEM key, by certificate UID.
    #[serde(default, deserialize_with = "null_as_default")]
    pub certificates: BTreeMap<String, String>,
    /// Certificate UID by host name (`_` is the default certificate). In an update,
    /// `"-1"` removes the host's mapping.
    #[serde(default, deserialize_with = "null_as_default")]
    pub servers: BTreeMap<String, String>,
}

/// The 0.25 payload shape: `[{"hostname": H, "sslCert": {"pemCertKey": PEM}}]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyServer {
    hostname: String,
    #[serde(default)]
    ssl_cert: Option<LegacySslCert>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacySslCert {
    #[serde(default)]
    pem_cert_key: String,
}

impl SslConfiguration {
    /// Decodes a `POST /configuration/servers` body in either shape. The 0.25 array
    /// shape has no UIDs; each PEM gets the UID `sha1-<hex of the PEM>`, so equal PEMs
    /// share one entry.
    pub fn decode_update(bytes: &[u8]) -> Result<SslConfiguration, DecodeError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'[') {
            return decode(bytes);
        }
        let legacy: Vec<LegacyServer> = decode(bytes)?;
        let mut update = SslConfiguration::default();
        for server in legacy {
            match server.ssl_cert.filter(|c| !c.pem_cert_key.is_empty()) {
                Some(cert) => {
                    let uid = format!(
                        "sha1-{}",
                        hex::encode(Sha1::digest(cert.pem_cert_key.as_bytes()))
                    );
                    update.certificates.insert(uid.clone(), cert.pem_cert_key);
                    update.servers.insert(server.hostname, uid);
                }
                None => {
                    update.servers.insert(server.hostname, EMPTY_UID.to_owned());
                }
            }
        }
        Ok(update)
    }

    /// Applies an update: certificates are added or replaced, hosts are mapped, and
    /// `"-1"` removes a host's mapping (the certificate stays: other hosts may use it).
    pub fn merge(&mut self, update: SslConfiguration) {
        self.certificates.extend(update.certificates);
        for (host, uid) in update.servers {
            if uid == EMPTY_UID {
                self.servers.remove(&host);
            } else {
                self.servers.insert(host, uid);
            }
        }
    }

    /// The PEM bundle mapped to exactly `host` (no lowercasing, no wildcard), as
    /// `GET /configuration/certs?hostname=` answers.
    pub fn pem_for_host(&self, host: &str) -> Option<&str> {
        let uid = self.servers.get(host)?;
        self.certificates.get(uid).map(String::as_str)
    }

    /// Validates an update against the certificates already stored: UIDs and hosts are
    /// well-formed, every PEM is a consistent bundle, and every mapping points at a
    /// certificate of the update or of `stored`.
    pub fn validate_update_at(
        &self,
        stored: Option<&SslConfiguration>,
        path: &Path<'_>,
        report: &mut Report,
    ) {
        let certs = path.field("certificates");
        for (uid, pem) in &self.certificates {
            let at = certs.field(uid);
            if uid.is_empty() || uid == EMPTY_UID {
                report.add(&at, format!("{uid:?} is not a usable certificate UID"));
                continue;
            }
            if let Err(e) = check_text(uid) {
                report.add(&at, format!("certificate UID: {e}"));
                continue;
            }
            if let Err(e) = crate::tls::parse_pem_bundle(pem) {
                report.add(&at, e.to_string());
            }
        }
        let servers = path.field("servers");
        for (host, uid) in &self.servers {
            let at = servers.field(host);
            if let Err(e) = check_hostname(host) {
                report.add(&at, e);
                continue;
            }
            let known = uid == EMPTY_UID
                || self.certificates.contains_key(uid)
                || stored.is_some_and(|s| s.certificates.contains_key(uid));
            if !known {
                report.add(
                    &at,
                    format!("certificate UID {uid:?} is not among the certificates"),
                );
            }
        }
    }
}

impl Validate for SslConfiguration {
    /// Validates a complete mapping (no `"-1"` entries are needed in a snapshot, but
    /// they are accepted and mean "no mapping").
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        self.validate_update_at(None, path, report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = concat!(
        include_str!("../tests/fixtures/example.com.crt"),
        include_str!("../tests/fixtures/example.com.key")
    );

    #[test]
    fn decodes_both_shapes() {
        let body = serde_json::json!({"certificates": {"uid-1": PEM}, "servers": {"example.com": "uid-1", "old.example.com": "-1"}});
        let update = SslConfiguration::decode_update(body.to_string().as_bytes()).unwrap();
        assert_eq!(update.servers["example.com"], "uid-1");

        let legacy = serde_json::json!([{"hostname": "example.com", "sslCert": {"pemCertKey": PEM}}, {"hostname": "plain.example.com"}]);
        let update = SslConfiguration::decode_update(legacy.to_string().as_bytes()).unwrap();
        let uid = &update.servers["example.com"];
        assert!(uid.starts_with("sha1-"));
        assert_eq!(update.certificates[uid], PEM);
        assert_eq!(update.servers["plain.example.com"], EMPTY_UID);
    }

    /// Part B §4.6: posting a mapping then `{host: "-1"}` removes the mapping and keeps
    /// the certificate.
    #[test]
    fn empty_uid_removes_the_mapping_only() {
        let mut stored = SslConfiguration::default();
        stored.merge(SslConfiguration {
            certificates: [("u".to_string(), PEM.to_string())].into(),
            servers: [("hostname".to_string(), "u".to_string())].into(),
        });
        assert_eq!(stored.pem_for_host("hostname"), Some(PEM));
        stored.merge(SslConfiguration {
            certificates: BTreeMap::new(),
            servers: [("hostname".to_string(), EMPTY_UID.to_string())].into(),
        });
        assert_eq!(stored.pem_for_host("hostname"), None);
        assert!(stored.certificates.contains_key("u"));
        // Exact lookup: no lowercasing.
        stored.servers.insert("hostname".into(), "u".into());
        assert_eq!(stored.pem_for_host("HOSTNAME"), None);
    }

    #[test]
    fn update_validation_checks_pems_and_references() {
        let stored = SslConfiguration {
            certificates: [("stored".to_string(), PEM.to_string())].into(),
            servers: BTreeMap::new(),
        };
        let update = SslConfiguration {
            certificates: [("bad".to_string(), "not a pem".to_string())].into(),
            servers: [
                ("a.example.com".to_string(), "stored".to_string()),
                ("b.example.com".to_string(), "missing".to_string()),
                ("bad host".to_string(), "stored".to_string()),
            ]
            .into(),
        };
        let mut report = Report::new();
        update.validate_update_at(Some(&stored), &Path::Root, &mut report);
        let problems = report.finish().unwrap_err();
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.certificates.bad",
                "$.servers[\"b.example.com\"]",
                "$.servers[\"bad host\"]"
            ]
        );
    }
}
