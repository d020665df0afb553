//! Test support: YAML fixtures (multi-document manifests) into a `ClusterState`.
//!
//! A ConfigMap labelled `test.gangplank.io/global: "true"` is the global one
//! (`--configmap`); the others are referenced ones (`custom-headers`,
//! `proxy-set-headers`...).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Test support: a panic is a failed assertion.

use gangplank_controller::{ClusterState, TranslateOptions, Translation, translate};
use serde::Deserialize;

/// The label that makes a fixture's ConfigMap the global one.
pub const GLOBAL_LABEL: &str = "test.gangplank.io/global";

/// Parses every document of `yaml` into the state, by `kind`.
pub fn load(yaml: &str) -> ClusterState {
    let mut state = ClusterState::default();
    for document in serde_norway::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(document).unwrap();
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "Ingress" => state
                .ingresses
                .push(std::sync::Arc::new(serde_json::from_value(value).unwrap())),
            "IngressClass" => state
                .ingress_classes
                .push(std::sync::Arc::new(serde_json::from_value(value).unwrap())),
            "Service" => state
                .services
                .push(std::sync::Arc::new(serde_json::from_value(value).unwrap())),
            "EndpointSlice" => state
                .endpoint_slices
                .push(std::sync::Arc::new(serde_json::from_value(value).unwrap())),
            "Secret" => state
                .secrets
                .push(std::sync::Arc::new(serde_json::from_value(value).unwrap())),
            "ConfigMap" => {
                let global = value["metadata"]["labels"][GLOBAL_LABEL].as_str() == Some("true");
                let config_map = std::sync::Arc::new(serde_json::from_value(value).unwrap());
                if global {
                    assert!(state.config_map.is_none(), "two global ConfigMaps");
                    state.config_map = Some(config_map);
                } else {
                    state.config_maps.push(config_map);
                }
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    state
}

/// Reads `tests/fixtures/<name>.yaml`.
pub fn fixture(name: &str) -> ClusterState {
    let path = format!("{}/tests/fixtures/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    load(&std::fs::read_to_string(&path).unwrap())
}

/// Translates a fixture and checks the result is a valid snapshot.
pub fn translate_fixture(name: &str, options: &TranslateOptions) -> Translation {
    let translation = translate(&fixture(name), options);
    if let Err(problems) = gangplank_model::Validate::validate(&translation.configuration) {
        panic!("{name}: invalid configuration: {problems:#?}");
    }
    translation
}

fn shorten(pem: &mut String) {
    *pem = format!("<PEM, {} bytes>", pem.len());
}

/// The translation as reviewed in snapshots: PEM bundles (certificates, and the CAs,
/// CRLs and keys of `auth-tls-*` and `proxy-ssl-*`) shortened to their size.
pub fn for_snapshot(mut translation: Translation) -> Translation {
    let config = &mut translation.configuration;
    config
        .ssl_configuration
        .certificates
        .values_mut()
        .for_each(shorten);
    for server in &mut config.servers {
        let tls = &mut server.certificate_auth;
        tls.ca_pem
            .iter_mut()
            .chain(&mut tls.crl_pem)
            .for_each(shorten);
        for location in &mut server.locations {
            let tls = &mut location.certificate_auth;
            tls.ca_pem
                .iter_mut()
                .chain(&mut tls.crl_pem)
                .for_each(shorten);
            let ssl = &mut location.proxy_ssl;
            ssl.ca_pem
                .iter_mut()
                .chain(&mut ssl.cert_pem)
                .chain(&mut ssl.key_pem)
                .for_each(shorten);
        }
    }
    translation
}
