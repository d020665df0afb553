//! The malicious-input corpus of Part B §9, tried in every ingress-nginx annotation
//! that `docs/annotations.md` lists, on an Ingress that shares its host with a clean
//! one: translation never panics and always yields a configuration the store accepts;
//! the clean Ingress's location, the server and the backends do not change; and the
//! hostile location is either denied (503 with a reason) or carries no CR, LF or NUL
//! anywhere (the value stayed inert data).
//!
//! A second test sends real requests through the proxy for every value that was
//! accepted, to check that the clean path keeps answering from its upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use gangplank_controller::manifests::{ManifestOptions, load_str};
use gangplank_controller::{TranslateOptions, Translation, translate};
use gangplank_model::{Configuration, Validate};
use gangplank_store::{Store, Update};

/// Part B §9 seeds, plus values that are dangerous for specific annotation kinds
/// (regex bombs, huge values, scheme tricks).
const SEEDS: &[&str] = &[
    ";",
    "}",
    "{",
    "\"",
    "'",
    "\\",
    "#",
    "\n",
    "\r",
    "\r\n",
    "\n}\nserver {",
    "\";\n",
    "\\\"",
    "ssl_engine /proc/self/fd/3;",
    "load_module /tmp/x.so;",
    "content_by_lua_block {os.execute('id')}",
    "alias /var/run/secrets/kubernetes.io/serviceaccount/;",
    "root /;",
    "include /etc/passwd;",
    "log_format x '$http_x';",
    "http://a/;}location /x{return 200;}#",
    "http://x/ #;\nssl_engine /proc/self/fd/3;",
    "CN=a$ ) { } location /p { alias /var/run/secrets/; } if ( $x !~ a",
    "GET;DELETE",
    "XGETX",
    "GET\r",
    "../../etc/nginx/nginx.conf",
    "%00",
    "\u{0}",
    "a\u{0}b",
    "\u{FF1B}",
    "(a+)+$",
    "((((((((((a*)*)*)*)*)*)*)*)*)*)",
    "x-injected: 1\r\nx-other: 2",
    "javascript:alert(1)",
    "file:///etc/passwd",
];

/// The annotation names of the table in `docs/annotations.md`.
fn documented_annotations() -> Vec<String> {
    let doc = include_str!("../../../docs/annotations.md");
    let mut names = BTreeSet::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        if let Some(name) = cells[1]
            .strip_prefix('`')
            .and_then(|cell| cell.strip_suffix('`'))
        {
            names.insert(name.to_owned());
        }
    }
    assert!(names.len() > 100, "the table lists {} names", names.len());
    names.into_iter().collect()
}

const HOST: &str = "hostile.example.com";

/// A cluster with a clean Ingress (`/clean` -> web) and, on the same host, an Ingress
/// (`/h` -> other) carrying `annotation: value` when given.
fn cluster_yaml(annotation: Option<(&str, &str)>, web_port: u16, other_port: u16) -> String {
    let annotations = match annotation {
        Some((name, value)) => {
            // A JSON string is a valid YAML double-quoted scalar.
            let value = serde_json::to_string(value).unwrap();
            format!("  annotations:\n    nginx.ingress.kubernetes.io/{name}: {value}\n")
        }
        None => String::new(),
    };
    format!(
        r#"{class}{web}{other}---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: clean
  namespace: corpus
  creationTimestamp: "2024-01-01T00:00:00Z"
spec:
  ingressClassName: gangplank
  rules:
    - host: {HOST}
      http:
        paths:
          - {{path: /clean, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: hostile
  namespace: corpus
  creationTimestamp: "2024-02-01T00:00:00Z"
{annotations}spec:
  ingressClassName: gangplank
  rules:
    - host: {HOST}
      http:
        paths:
          - {{path: /h, pathType: Prefix, backend: {{service: {{name: other, port: {{number: 80}}}}}}}}
"#,
        class = common::INGRESS_CLASS_YAML,
        web = common::service_yaml("corpus", "web", ([127, 0, 0, 1], web_port).into()),
        other = common::service_yaml("corpus", "other", ([127, 0, 0, 1], other_port).into()),
    )
}

/// Translates the manifests; also says whether the manifest loader skipped a document
/// (a value YAML cannot carry, such as NUL: the Ingress is then not served at all).
fn translate_yaml(yaml: &str) -> (Translation, bool) {
    let loaded = load_str(yaml, "corpus.yaml", &ManifestOptions::default());
    let skipped = !loaded.problems.is_empty();
    (
        translate(&loaded.state, &TranslateOptions::default()),
        skipped,
    )
}

/// The locations of the clean Ingress and the default server (which must never change),
/// the server-level fields of the shared host (which a valid server annotation such as
/// `server-alias` may change), and the hostile Ingress's locations.
fn split_hostile(
    config: &Configuration,
) -> (serde_json::Value, serde_json::Value, Vec<serde_json::Value>) {
    let mut untouchable = Vec::new();
    let mut host = serde_json::Value::Null;
    let mut hostile = Vec::new();
    for server in &config.servers {
        for location in &server.locations {
            let json = serde_json::to_value(location).unwrap();
            let owner = location.ingress.as_ref().map(|i| i.name.as_str());
            if owner == Some("hostile") {
                hostile.push(json);
            } else {
                untouchable.push((server.hostname.clone(), json));
            }
        }
        if server.hostname == HOST {
            let mut fields = serde_json::to_value(server).unwrap();
            if let Some(object) = fields.as_object_mut() {
                object.remove("locations");
            }
            host = fields;
        }
    }
    (serde_json::to_value(untouchable).unwrap(), host, hostile)
}

/// Whether `json` (a serialized location or server) carries a control character anywhere.
fn carries_control_characters(json: &serde_json::Value) -> bool {
    let text = json.to_string();
    ["\\r", "\\n", "\\u0000"]
        .iter()
        .any(|escape| text.contains(escape))
}

/// One (annotation, value) outcome.
struct Outcome {
    annotation: String,
    value: &'static str,
    denied: bool,
}

/// Runs the whole corpus through translation and the store, asserting the
/// invariants; returns every outcome.
fn run_corpus(web_port: u16, other_port: u16) -> Vec<Outcome> {
    let (baseline, skipped) = translate_yaml(&cluster_yaml(None, web_port, other_port));
    assert!(!skipped, "the fixture does not load");
    let (baseline_rest, _, baseline_hostile) = split_hostile(&baseline.configuration);
    assert_eq!(baseline_hostile.len(), 1);
    let baseline_backends = serde_json::to_value(&baseline.configuration.backends).unwrap();

    let mut outcomes = Vec::new();
    for annotation in documented_annotations() {
        for &value in SEEDS {
            let what = format!("{annotation}: {value:?}");
            let (t, skipped) = translate_yaml(&cluster_yaml(
                Some((&annotation, value)),
                web_port,
                other_port,
            ));
            t.configuration
                .validate()
                .unwrap_or_else(|problems| panic!("{what}: invalid translation: {problems}"));
            Store::in_memory()
                .apply(Update::Configuration {
                    config: t.configuration.clone(),
                    if_match: None,
                })
                .unwrap_or_else(|e| panic!("{what}: the store refused it: {e}"));

            let (rest, host, hostile) = split_hostile(&t.configuration);
            assert_eq!(
                rest, baseline_rest,
                "{what}: the clean Ingress's locations changed"
            );
            assert!(
                !carries_control_characters(&host),
                "{what}: CR/LF/NUL reached the server: {host}"
            );
            // The clean location's backend is untouched.
            let backends = serde_json::to_value(&t.configuration.backends).unwrap();
            let web_backend = |all: &serde_json::Value| {
                all.as_array()
                    .and_then(|list| list.iter().find(|b| b["name"] == "corpus-web-80").cloned())
                    .expect("the clean backend")
            };
            assert_eq!(
                web_backend(&backends),
                web_backend(&baseline_backends),
                "{what}: the clean backend changed"
            );

            let denied = match hostile.as_slice() {
                [] if skipped => true,
                [location] => !location["denied"].is_null(),
                _ => panic!("{what}: {} hostile locations", hostile.len()),
            };
            let location = hostile.first().cloned().unwrap_or_default();
            if !denied {
                assert!(
                    !carries_control_characters(&location),
                    "{what}: accepted, and CR/LF/NUL reached the configuration: {location}"
                );
            }
            outcomes.push(Outcome {
                annotation: annotation.clone(),
                value,
                denied,
            });
        }
    }
    outcomes
}

#[test]
fn every_annotation_rejects_or_neutralises_every_seed() {
    let outcomes = run_corpus(8080, 8081);
    // Values with CR, LF or NUL are rejected by every annotation that is read at all
    // (ingress-nginx 1.13+ rejects them in any annotation value).
    let unread = |annotation: &str| {
        annotation.ends_with("-snippet")
            || outcomes
                .iter()
                .filter(|o| o.annotation == annotation)
                .all(|o| !o.denied)
    };
    for outcome in &outcomes {
        if outcome
            .value
            .chars()
            .any(|c| matches!(c, '\r' | '\n' | '\0'))
            && !unread(&outcome.annotation)
        {
            assert!(
                outcome.denied,
                "{}: {:?} was accepted",
                outcome.annotation, outcome.value
            );
        }
    }
}

/// Every accepted hostile value, served for real: the clean path still answers from
/// its own upstream, and the hostile path never reaches the clean upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_values_leave_the_clean_path_alone() {
    let echoes = common::echoes(2).await;
    let (web_port, other_port) = (echoes[0].addr().port(), echoes[1].addr().port());
    let outcomes = run_corpus(web_port, other_port);
    let proxy = common::Gangplank::start().await;
    let admin = proxy.admin();
    let mut conn = common::Conn::open(proxy.http).await;
    let mut served = 0;
    for outcome in outcomes.iter().filter(|o| !o.denied) {
        let what = format!("{}: {:?}", outcome.annotation, outcome.value);
        let (t, _) = translate_yaml(&cluster_yaml(
            Some((&outcome.annotation, outcome.value)),
            web_port,
            other_port,
        ));
        admin
            .post_configuration(&t.configuration, None)
            .await
            .unwrap_or_else(|e| panic!("{what}: the proxy refused it: {e}"));
        let (status, _, body) = conn.send(HOST, "/clean", &[]).await;
        assert_eq!(status, 200, "{what}: /clean answered {status}");
        let echo: gangplank_e2e::echo::Echo = serde_json::from_slice(&body).unwrap();
        assert_eq!(echo.instance, "echo-0", "{what}");
        let (_, _, body) = conn.send(HOST, "/h", &[]).await;
        if let Ok(echo) = serde_json::from_slice::<gangplank_e2e::echo::Echo>(&body) {
            assert_eq!(
                echo.instance, "echo-1",
                "{what}: the hostile path reached the clean upstream"
            );
        }
        served += 1;
    }
    eprintln!("{served} accepted values of {} served", outcomes.len());
    assert!(served > 0, "no value was accepted: the test proves nothing");
}
