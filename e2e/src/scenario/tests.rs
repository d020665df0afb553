//! Tests of the scenario format: the suite's files parse, and mistakes are refused
//! with a message that says where and what.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::schema::{self, Action, Fault, ParseError};

fn scenarios_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
}

fn error(text: &str) -> String {
    match schema::parse(text, "test.yaml") {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(ParseError::Invalid { message, .. }) => message,
        Err(e) => panic!("unexpected error {e}"),
    }
}

const HEAD: &str = "name: t\ndescription: d\nservices: [{name: web}]\n";

#[test]
fn every_scenario_file_parses_and_names_are_unique() {
    let files = schema::files_in(scenarios_dir()).unwrap();
    assert!(files.len() >= 15, "only {} scenario files", files.len());
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        let scenario = schema::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            names.insert(scenario.name.clone()),
            "duplicate name {}",
            scenario.name
        );
        assert!(!scenario.steps.is_empty(), "{}: no steps", scenario.name);
        assert!(!scenario.description.trim().is_empty());
    }
}

#[test]
fn the_example_in_the_module_docs_parses() {
    let source = include_str!("mod.rs");
    let mut yaml = String::new();
    let mut inside = false;
    for line in source.lines() {
        let text = line.strip_prefix("//!").unwrap_or("");
        let text = text.strip_prefix(' ').unwrap_or(text);
        match (inside, text.trim_end()) {
            (false, "```yaml") => inside = true,
            (true, "```") => break,
            (true, t) => {
                yaml.push_str(t);
                yaml.push('\n');
            }
            _ => {}
        }
    }
    let scenario = schema::parse(&yaml, "module docs").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.name, "canary-by-header");
    assert_eq!(scenario.manifests.len(), 2);
    assert_eq!(scenario.steps.len(), 3);
}

#[test]
fn a_full_step_list_parses() {
    let text = format!(
        "{HEAD}tls_secrets: [{{name: t1, hosts: [a.example]}}]\n\
         manifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: x}}\n  ---\n\
         steps:\n\
         - request: {{host: a.example, paths: [/a, /b], count: 3, jar: j, remember: r}}\n  \
           expect: {{status: 404}}\n  eventually: 2s\n\
         - request: {{host: a.example, tls: true}}\n  expect: {{cert: t1, same_as: r}}\n\
         - scale: {{service: web, replicas: 3}}\n\
         - rollout: web\n\
         - crash: {{service: web, replicas: 1}}\n\
         - start_load: {{host: a.example, interval: 10ms}}\n\
         - stop_load: load\n  expect: {{max_failures: 0, min_requests: 10}}\n\
         - fault: drop_watches\n\
         - fault: {{latency: 250ms}}\n\
         - restart: controller\n\
         - rotate_secret: t1\n\
         - configmap: {{proxy-read-timeout: 1, gone: null}}\n\
         - get: Ingress/web\n  expect: {{published: true}}\n  eventually: 15s\n\
         - conf: {{/general/load-balance: ewma}}\n\
         - delete: [Ingress/web, IngressClass/other]\n\
         - sleep: 1\n  note: a pause\n"
    );
    let s = schema::parse(&text, "t").unwrap();
    assert_eq!(s.namespace, "e2e-t");
    assert_eq!(s.manifests.len(), 1);
    assert_eq!(s.steps.len(), 16);
    match &s.steps[0].action {
        Action::Request {
            request,
            expect,
            eventually,
        } => {
            assert_eq!(request.paths(), vec!["/a", "/b"]);
            assert_eq!(expect.status, Some(404));
            assert_eq!(*eventually, Some(Duration::from_secs(2)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.steps[8].action,
        Action::Fault(Fault::Latency(Duration::from_millis(250)))
    );
    match &s.steps[11].action {
        Action::ConfigMap(data) => {
            assert_eq!(data["proxy-read-timeout"].as_deref(), Some("1"));
            assert_eq!(data["gone"], None);
        }
        other => panic!("{other:?}"),
    }
    match &s.steps[13].action {
        Action::Conf { expect, .. } => assert_eq!(expect["/general/load-balance"], json!("ewma")),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.steps[15].note.as_deref(), Some("a pause"));
}

#[test]
fn unknown_keys_in_a_step_are_refused_with_the_step_and_the_key() {
    let e = error(&format!(
        "{HEAD}steps:\n- request: {{host: a}}\n  expct: {{status: 200}}\n"
    ));
    assert!(e.contains("steps[0]"), "{e}");
    assert!(e.contains("unknown field `expct`"), "{e}");
    assert!(e.contains("`request` step"), "{e}");

    let e = error(&format!("{HEAD}steps:\n- request: {{hots: a}}\n"));
    assert!(e.contains("unknown field `hots`"), "{e}");

    let e = error(&format!(
        "{HEAD}steps:\n- request: {{host: a}}\n  expect: {{stauts: 200}}\n"
    ));
    assert!(e.contains("unknown field `stauts`"), "{e}");

    // `eventually` belongs to request, get and conf only.
    let e = error(&format!(
        "{HEAD}steps:\n- scale: {{service: web, replicas: 2}}\n  eventually: 5s\n"
    ));
    assert!(e.contains("unknown field `eventually`"), "{e}");
}

#[test]
fn a_step_needs_exactly_one_action() {
    let e = error(&format!("{HEAD}steps:\n- requst: {{host: a}}\n"));
    assert!(
        e.contains("steps[0]: no action among the keys [\"requst\"]"),
        "{e}"
    );
    assert!(e.contains("request"), "{e}");
    let e = error(&format!(
        "{HEAD}steps:\n- rollout: web\n  scale: {{service: web, replicas: 1}}\n"
    ));
    assert!(e.contains("several actions (scale, rollout)"), "{e}");
    let e = error(&format!("{HEAD}steps:\n- just text\n"));
    assert!(e.contains("a step is a mapping"), "{e}");
}

#[test]
fn unknown_top_level_keys_are_refused() {
    let e = error("name: t\ndescription: d\nstep: []\n");
    assert!(e.contains("unknown field `step`"), "{e}");
}

#[test]
fn references_between_steps_are_checked() {
    let e = error(&format!(
        "{HEAD}steps:\n- scale: {{service: api, replicas: 2}}\n"
    ));
    assert!(e.contains("\"api\" is not one of `services`"), "{e}");
    let e = error(&format!(
        "{HEAD}steps:\n- request: {{host: a}}\n  expect: {{same_as: first}}\n"
    ));
    assert!(e.contains("not remembered"), "{e}");
    let e = error(&format!("{HEAD}steps:\n- start_load: {{host: a}}\n"));
    assert!(e.contains("never stopped"), "{e}");
    let e = error(&format!("{HEAD}steps:\n- stop_load: other\n"));
    assert!(e.contains("no load \"other\""), "{e}");
    let e = error(&format!(
        "{HEAD}steps:\n- request: {{host: a}}\n  expect: {{cert: default}}\n"
    ));
    assert!(e.contains("`cert` needs `tls: true`"), "{e}");
    let e = error(&format!("{HEAD}steps:\n- rotate_secret: nope\n"));
    assert!(e.contains("tls_secrets"), "{e}");
    let e = error("name: t\ndescription: d\nservices: [{name: web, tls: nope}]\nsteps: []\n");
    assert!(
        e.contains("service \"web\": tls \"nope\" is not one of `tls_secrets`"),
        "{e}"
    );
}

#[test]
fn values_are_checked() {
    let e = error(&format!("{HEAD}steps:\n- sleep: soon\n"));
    assert!(e.contains("not a duration"), "{e}");
    let e = error(&format!("{HEAD}steps:\n- fault: unplug\n"));
    assert!(e.contains("unknown fault \"unplug\""), "{e}");
    let e = error(&format!("{HEAD}steps:\n- restart: apiserver\n"));
    assert!(e.contains("unknown variant `apiserver`"), "{e}");
    let e = error(&format!("{HEAD}steps:\n- delete: web\n"));
    assert!(e.contains("Kind/name"), "{e}");
    let e = error(&format!(
        "{HEAD}steps:\n- request: {{host: a, count: 100}}\n  expect: {{fraction: {{service: web, min: 0.7, max: 0.3}}}}\n"
    ));
    assert!(e.contains("min <= max"), "{e}");
    let e = error(&format!(
        "{HEAD}steps:\n- request: {{host: a}}\n  expect: {{headers: {{x: \"(\"}}}}\n"
    ));
    assert!(e.contains("header regex"), "{e}");
    let e = error("name: Not_A_Label\ndescription: d\nsteps: [{sleep: 1}]\n");
    assert!(e.contains("DNS label"), "{e}");
    let e = error(&format!(
        "{HEAD}manifests: \"kind: Ingress\\n\"\nsteps: [{{sleep: 1}}]\n"
    ));
    assert!(e.contains("apiVersion, kind and metadata.name"), "{e}");
}

#[test]
fn durations() {
    for (text, ms) in [
        ("250ms", 250),
        ("10s", 10_000),
        ("2m", 120_000),
        ("1.5s", 1500),
    ] {
        assert_eq!(
            schema::parse_duration(&json!(text)).unwrap(),
            Duration::from_millis(ms)
        );
    }
    assert_eq!(
        schema::parse_duration(&json!(3)).unwrap(),
        Duration::from_secs(3)
    );
    assert!(schema::parse_duration(&json!("-1s")).is_err());
    assert!(schema::parse_duration(&json!("5h")).is_err());
}
