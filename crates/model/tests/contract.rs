#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches: a panic is a failed assertion.
//! The JSON contract with ingress-nginx: the seed backend of the foundation issue and
//! the §2.7 example round-trip, and their serialised forms are pinned by snapshots.

use gangplank_model::validate::{Path, Report};
use gangplank_model::{Backend, Configuration, GeneralConfig, Validate, json};
use serde_json::{Value, json};

/// The backend ingress-nginx users post in the seed interaction (an older controller:
/// it still sends `secureCACert` and no `weightTotal`).
fn seed() -> Value {
    json!({"endpoints":[{"address":"10.12.4.133","port":"8080"}],"name":"test-paastest-v2-webshell-80","noServer":false,"port":80,
     "secureCACert":{"caFilename":"","pemSha":"","secret":""},
     "service":{"metadata":{"creationTimestamp":null},"spec":{"clusterIP":"10.11.60.178","ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}],"selector":{"servicename":"v2-webshell"},"sessionAffinity":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}},
     "sessionAffinityConfig":{"cookieSessionAffinity":{"name":""},"name":""},"sslPassthrough":false,
     "trafficShapingPolicy":{"cookie":"","header":"","headerValue":"","weight":0},
     "upstreamHashByConfig":{"upstream-hash-by-subset-size":3}})
}

/// Every key of `input` is in `output` with an equivalent value; keys only in
/// `output` must hold their type's zero value (fields Go always emits).
fn assert_equivalent(input: &Value, output: &Value, path: &str) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                let Some(ov) = o.get(k) else {
                    panic!("{path}.{k} was dropped")
                };
                assert_equivalent(v, ov, &format!("{path}.{k}"));
            }
            for (k, v) in o {
                if !i.contains_key(k) {
                    let zero = matches!(v, Value::Null | Value::Bool(false))
                        || v.as_i64() == Some(0)
                        || v.as_str() == Some("")
                        || v.as_array().is_some_and(Vec::is_empty)
                        || v.as_object().is_some_and(serde_json::Map::is_empty);
                    assert!(zero, "{path}.{k} = {v} was added with a non-zero value");
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            assert_eq!(i.len(), o.len(), "{path}: array length");
            for (n, (a, b)) in i.iter().zip(o).enumerate() {
                assert_equivalent(a, b, &format!("{path}[{n}]"));
            }
        }
        _ => assert_eq!(input, output, "{path}"),
    }
}

#[test]
fn seed_backend_round_trips() {
    let body = serde_json::to_vec(&vec![seed()]).unwrap();
    let backends: Vec<Backend> = json::decode(&body).unwrap();
    let mut report = Report::new();
    gangplank_model::validate_backends(&backends, &Path::Root, &mut report);
    assert!(report.is_ok(), "{:?}", report.finish());
    let out = serde_json::to_value(&backends).unwrap();
    assert_equivalent(&Value::Array(vec![seed()]), &out, "$");
    let again: Vec<Backend> = serde_json::from_value(out.clone()).unwrap();
    assert_eq!(again, backends);
    insta::assert_json_snapshot!("seed_backend", out);
}

/// Part B §2.7, the example element of `GET /configuration/backends`.
#[test]
fn documented_example_round_trips() {
    let example = json!({"name":"default-echo-80",
     "service":{"metadata":{"creationTimestamp":null},"spec":{"ports":[{"protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"echo"},"clusterIP":"10.96.0.10","type":"ClusterIP"},"status":{"loadBalancer":{}}},
     "port":80,"sslPassthrough":false,
     "endpoints":[{"address":"10.244.0.5","port":"8080"}],
     "sessionAffinityConfig":{"name":"","mode":"","cookieSessionAffinity":{"name":""}},
     "upstreamHashByConfig":{"upstream-hash-by-subset-size":3},
     "noServer":false,
     "trafficShapingPolicy":{"weight":0,"weightTotal":0,"header":"","headerValue":"","headerPattern":"","cookie":""}});
    let backend: Backend = serde_json::from_value(example.clone()).unwrap();
    assert!(backend.validate().is_ok());
    let out = serde_json::to_value(&backend).unwrap();
    assert_equivalent(&example, &out, "$");
    // This one carries every always-emitted field, so nothing may be added.
    assert_eq!(out, example);
}

#[test]
fn empty_general_is_an_empty_object() {
    assert_eq!(
        serde_json::to_string(&GeneralConfig::default()).unwrap(),
        "{}"
    );
}

#[test]
fn empty_configuration_shape() {
    insta::assert_json_snapshot!("empty_configuration", Configuration::default());
}
