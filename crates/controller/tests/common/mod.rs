//! Test support: YAML fixtures (multi-document manifests) into a `ClusterState`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Test support: a panic is a failed assertion.

use gangplank_controller::{ClusterState, TranslateOptions, Translation, translate};
use serde::Deserialize;

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
            "Ingress" => state.ingresses.push(serde_json::from_value(value).unwrap()),
            "IngressClass" => state
                .ingress_classes
                .push(serde_json::from_value(value).unwrap()),
            "Service" => state.services.push(serde_json::from_value(value).unwrap()),
            "EndpointSlice" => state
                .endpoint_slices
                .push(serde_json::from_value(value).unwrap()),
            "Secret" => state.secrets.push(serde_json::from_value(value).unwrap()),
            "ConfigMap" => state.config_map = Some(serde_json::from_value(value).unwrap()),
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

/// The translation as reviewed in snapshots: PEM bundles shortened to their size.
pub fn for_snapshot(mut translation: Translation) -> Translation {
    for pem in translation
        .configuration
        .ssl_configuration
        .certificates
        .values_mut()
    {
        *pem = format!("<PEM, {} bytes>", pem.len());
    }
    translation
}
