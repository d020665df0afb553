//! TLS: certificates from Secrets, and which host gets which (ingress-nginx's
//! `createServers` TLS pass and `extractTLSSecretName`).
//!
//! A Secret is usable when `tls.crt` + `tls.key` (from `data`, or `stringData` as a
//! manifest may carry it) form a bundle that `gangplank_model::tls::parse_pem_bundle`
//! accepts. Its UID in the snapshot is `<namespace>-<name>`.
//!
//! For a host of an Ingress rule, the Secret is the one of the first `spec.tls` entry
//! listing the host (case-insensitively), else the first entry whose certificate
//! names the host. The first Ingress (in ingress-nginx's order) that decides a host's
//! certificate wins. A host whose Secret is missing, broken or does not name it gets
//! no mapping, so the proxy serves its default certificate, and the Ingress gets a
//! Warning event.

use std::collections::HashMap;

use gangplank_model::tls::{CertificateInfo, parse_pem_bundle};
use gangplank_model::validate::check_text;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::IngressTLS;

use crate::state::Index;

/// A certificate ready for the snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Certificate {
    /// `<namespace>-<name>`.
    pub(crate) uid: String,
    /// Chain + key, PEM.
    pub(crate) pem: String,
    /// Names and validity of the leaf.
    pub(crate) info: CertificateInfo,
}

/// Certificates loaded so far, by Secret, each Secret parsed once per translation.
#[derive(Default)]
pub(crate) struct Certificates {
    loaded: HashMap<(String, String), Result<Certificate, String>>,
}

impl Certificates {
    /// The certificate of Secret `namespace/name`, or why it cannot be used.
    pub(crate) fn load(
        &mut self,
        index: &Index<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<&Certificate, &str> {
        self.loaded
            .entry((namespace.to_owned(), name.to_owned()))
            .or_insert_with(|| load(index, namespace, name))
            .as_ref()
            .map_err(String::as_str)
    }

    /// The Secret for `host` among `tls`, following ingress-nginx's order; `None`
    /// when no entry lists the host and no certificate names it, or the listing
    /// entry has no Secret name (both mean: the default certificate).
    pub(crate) fn secret_for_host<'t>(
        &mut self,
        index: &Index<'_>,
        namespace: &str,
        tls: &'t [IngressTLS],
        host: &str,
    ) -> Option<&'t str> {
        let listed = tls.iter().find(|entry| {
            entry
                .hosts
                .iter()
                .flatten()
                .any(|h| h.eq_ignore_ascii_case(host))
        });
        if let Some(entry) = listed {
            return entry.secret_name.as_deref().filter(|s| !s.is_empty());
        }
        tls.iter()
            .filter_map(|entry| entry.secret_name.as_deref().filter(|s| !s.is_empty()))
            .find(|secret| {
                self.load(index, namespace, secret)
                    .is_ok_and(|cert| cert.info.is_valid_for(host))
            })
    }
}

fn load(index: &Index<'_>, namespace: &str, name: &str) -> Result<Certificate, String> {
    let uid = format!("{namespace}-{name}");
    check_text(&uid).map_err(|e| format!("unusable Secret name: {e}"))?;
    let secret = index
        .secret(namespace, name)
        .ok_or_else(|| "the Secret does not exist".to_owned())?;
    let crt = secret_text(secret, "tls.crt")?;
    let key = secret_text(secret, "tls.key")?;
    let mut pem = crt;
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    pem.push_str(&key);
    let bundle = parse_pem_bundle(&pem).map_err(|e| e.to_string())?;
    Ok(Certificate {
        uid,
        pem,
        info: bundle.info,
    })
}

/// A key of a Secret as UTF-8 text: `stringData` wins over `data`, as the API server
/// merges them.
pub(crate) fn secret_text(secret: &Secret, key: &str) -> Result<String, String> {
    if let Some(text) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(text.clone());
    }
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| format!("the Secret has no {key:?} key"))?;
    String::from_utf8(bytes.0.clone()).map_err(|_| format!("{key:?} is not UTF-8 PEM text"))
}
