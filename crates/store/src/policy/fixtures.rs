//! Test fixtures shared by the policy compilers' tests: locations and ConfigMap
//! settings written as JSON, in the model's (ingress-nginx's) field names.
#![allow(clippy::unwrap_used)]

use gangplank_model::{GeneralConfig, Location};
use serde_json::json;

/// A location `/` to backend `b` with the fields of `value` (a JSON object) on top.
pub(crate) fn location(value: serde_json::Value) -> Location {
    let mut base = json!({"path": "/", "backend": "b"});
    base.as_object_mut()
        .unwrap()
        .extend(value.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

/// ConfigMap settings from a JSON object of ConfigMap keys.
pub(crate) fn general(value: serde_json::Value) -> GeneralConfig {
    serde_json::from_value(value).unwrap()
}
