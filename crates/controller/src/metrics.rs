//! The controller's Prometheus metrics, with ingress-nginx's names (Part B §8):
//! the pushes of the sync loop (ingress-nginx's "reloads"), orphan Ingresses,
//! certificate expiry and leadership.
//!
//! Nothing here is on a request path: the sync loop updates the values a few times
//! a second at most, so one mutex is plenty.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use gangplank_model::Configuration;

use crate::state::ClusterState;

/// Constant labels of every controller metric, as ingress-nginx sets them.
#[derive(Debug, Clone, Default)]
pub struct MetricLabels {
    /// `--controller-class`.
    pub controller_class: String,
    /// The pod's namespace (`POD_NAMESPACE`).
    pub controller_namespace: String,
    /// The pod's name (`POD_NAME`).
    pub controller_pod: String,
}

/// Why an Ingress counts as orphaned (`nginx_ingress_controller_orphan_ingress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Orphan {
    /// A path names a Service that does not exist.
    NoService,
    /// A path's Service has no ready endpoint.
    NoEndpoint,
}

impl Orphan {
    fn label(self) -> &'static str {
        match self {
            Orphan::NoService => "no-service",
            Orphan::NoEndpoint => "no-endpoint",
        }
    }
}

#[derive(Debug, Default)]
struct Values {
    config_hash: u64,
    last_successful: bool,
    last_success_timestamp: f64,
    success: u64,
    errors: u64,
    leader: Option<(String, bool)>,
    /// (namespace, ingress, kind) -> 1.
    orphans: BTreeMap<(String, String, Orphan), ()>,
    /// (host, namespace, secret) -> not-after, Unix seconds.
    ssl_expire: BTreeMap<(String, String, String), i64>,
}

/// The controller's metrics registry.
#[derive(Debug, Default)]
pub struct ControllerMetrics {
    labels: MetricLabels,
    values: Mutex<Values>,
}

impl ControllerMetrics {
    /// A registry whose metrics all carry `labels`.
    pub fn new(labels: MetricLabels) -> ControllerMetrics {
        ControllerMetrics {
            labels,
            values: Mutex::default(),
        }
    }

    fn values(&self) -> std::sync::MutexGuard<'_, Values> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A push of configuration `hash` was accepted at `timestamp` (Unix seconds).
    pub fn push_succeeded(&self, hash: u64, timestamp: f64) {
        let mut v = self.values();
        v.config_hash = hash;
        v.last_successful = true;
        v.last_success_timestamp = timestamp;
        v.success += 1;
    }

    /// A push failed.
    pub fn push_failed(&self) {
        let mut v = self.values();
        v.last_successful = false;
        v.errors += 1;
    }

    /// Leadership under the lease `name` changed.
    pub fn set_leader(&self, name: &str, leading: bool) {
        self.values().leader = Some((name.to_owned(), leading));
    }

    /// Refreshes the orphan and certificate-expiry gauges from a translated snapshot
    /// (and the state it came from, which knows each host's TLS Secret).
    pub fn observe_configuration(&self, configuration: &Configuration, state: &ClusterState) {
        let backends: BTreeMap<&str, &gangplank_model::Backend> = configuration
            .backends
            .iter()
            .map(|b| (b.name.as_str(), b))
            .collect();
        let mut orphans = BTreeMap::new();
        let mut ssl_expire = BTreeMap::new();
        for server in &configuration.servers {
            for location in &server.locations {
                let Some(ingress) = &location.ingress else {
                    continue;
                };
                let kind = match backends.get(location.backend.as_str()) {
                    None => Some(Orphan::NoService),
                    Some(b) if b.service.is_none() && b.endpoints.is_empty() => {
                        Some(Orphan::NoService)
                    }
                    Some(b) if b.endpoints.is_empty() => Some(Orphan::NoEndpoint),
                    Some(_) => None,
                };
                if let Some(kind) = kind {
                    orphans.insert((ingress.namespace.clone(), ingress.name.clone(), kind), ());
                }
            }
        }
        // Each host's Secret, as the Ingresses name it (the first one wins, as in the
        // translation); each certificate parsed once however many hosts share it.
        let mut secrets: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for ingress in &state.ingresses {
            let namespace = crate::state::namespace(&ingress.metadata);
            for tls in ingress.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
                let Some(secret) = tls.secret_name.as_deref() else {
                    continue;
                };
                for host in tls.hosts.iter().flatten() {
                    secrets.entry(host.as_str()).or_insert((namespace, secret));
                }
            }
        }
        let mut not_after: BTreeMap<&str, Option<i64>> = BTreeMap::new();
        for (host, uid) in &configuration.ssl_configuration.servers {
            let expiry = *not_after.entry(uid.as_str()).or_insert_with(|| {
                let pem = configuration.ssl_configuration.certificates.get(uid)?;
                gangplank_model::tls::parse_pem_bundle(pem)
                    .ok()
                    .map(|bundle| bundle.info.not_after)
            });
            if let Some(expiry) = expiry {
                let (namespace, secret) = secrets.get(host.as_str()).copied().unwrap_or_default();
                ssl_expire.insert(
                    (host.clone(), namespace.to_owned(), secret.to_owned()),
                    expiry,
                );
            }
        }
        let mut v = self.values();
        v.orphans = orphans;
        v.ssl_expire = ssl_expire;
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let l = &self.labels;
        let base = format!(
            "controller_class=\"{}\",controller_namespace=\"{}\",controller_pod=\"{}\"",
            escape(&l.controller_class),
            escape(&l.controller_namespace),
            escape(&l.controller_pod)
        );
        let v = self.values();
        let mut out = String::new();
        let mut sample = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP nginx_ingress_controller_{name} {help}");
            let _ = writeln!(out, "# TYPE nginx_ingress_controller_{name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "nginx_ingress_controller_{name}{{{labels}}} {value}");
            }
        };
        sample(
            "config_hash",
            "gauge",
            "Running configuration hash actually set",
            vec![(base.clone(), format!("{}", v.config_hash as f64))],
        );
        sample(
            "config_last_reload_successful",
            "gauge",
            "Whether the last configuration push was successful",
            vec![(base.clone(), u8::from(v.last_successful).to_string())],
        );
        sample(
            "config_last_reload_successful_timestamp_seconds",
            "gauge",
            "Timestamp of the last successful configuration push",
            vec![(base.clone(), format!("{}", v.last_success_timestamp))],
        );
        sample(
            "success",
            "counter",
            "Cumulative number of successful configuration pushes",
            vec![(base.clone(), v.success.to_string())],
        );
        sample(
            "errors",
            "counter",
            "Cumulative number of failed configuration pushes",
            vec![(base.clone(), v.errors.to_string())],
        );
        sample(
            "orphan_ingress",
            "gauge",
            "Ingresses whose Service is missing or has no endpoint",
            v.orphans
                .keys()
                .map(|(ns, ingress, kind)| {
                    (
                        format!(
                            "{base},namespace=\"{}\",ingress=\"{}\",type=\"{}\"",
                            escape(ns),
                            escape(ingress),
                            kind.label()
                        ),
                        "1".to_owned(),
                    )
                })
                .collect(),
        );
        sample(
            "ssl_expire_time_seconds",
            "gauge",
            "Number of seconds since 1970 to the SSL Certificate expire",
            v.ssl_expire
                .iter()
                .map(|((host, namespace, secret), not_after)| {
                    (
                        format!(
                            "class=\"{}\",host=\"{}\",namespace=\"{}\",secret_name=\"{}\"",
                            escape(&l.controller_class),
                            escape(host),
                            escape(namespace),
                            escape(secret)
                        ),
                        not_after.to_string(),
                    )
                })
                .collect(),
        );
        sample(
            "leader_election_status",
            "gauge",
            "Whether this replica is the leader (1) or not (0)",
            v.leader
                .iter()
                .map(|(name, leading)| {
                    (
                        format!("name=\"{}\"", escape(name)),
                        u8::from(*leading).to_string(),
                    )
                })
                .collect(),
        );
        out
    }
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_are_counted_and_labelled() {
        let metrics = ControllerMetrics::new(MetricLabels {
            controller_class: "gangplank.io/ingress-controller".into(),
            controller_namespace: "ingress".into(),
            controller_pod: "gp-0".into(),
        });
        metrics.push_failed();
        metrics.push_succeeded(42, 1700000000.5);
        metrics.set_leader("gangplank-leader", true);
        let text = metrics.render();
        let base = "controller_class=\"gangplank.io/ingress-controller\",controller_namespace=\"ingress\",controller_pod=\"gp-0\"";
        assert!(text.contains(&format!("nginx_ingress_controller_success{{{base}}} 1\n")));
        assert!(text.contains(&format!("nginx_ingress_controller_errors{{{base}}} 1\n")));
        assert!(text.contains(&format!(
            "nginx_ingress_controller_config_last_reload_successful{{{base}}} 1\n"
        )));
        assert!(text.contains(&format!(
            "nginx_ingress_controller_config_hash{{{base}}} 42\n"
        )));
        assert!(text.contains(
            "nginx_ingress_controller_leader_election_status{name=\"gangplank-leader\"} 1\n"
        ));
        // Every sample line follows its family's TYPE line.
        assert!(
            text.find("# TYPE nginx_ingress_controller_errors").unwrap()
                < text.find("nginx_ingress_controller_errors{").unwrap()
        );
    }

    #[test]
    fn certificate_expiry_is_labelled_with_host_and_secret() {
        let yaml = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tls.yaml"
        ))
        .unwrap();
        let state = crate::manifests::load_str(&yaml, "tls.yaml", &Default::default()).state;
        let translation = crate::translate(&state, &Default::default());
        let metrics = ControllerMetrics::default();
        metrics.observe_configuration(&translation.configuration, &state);
        let text = metrics.render();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("nginx_ingress_controller_ssl_expire_time_seconds{"))
            .collect();
        assert!(!lines.is_empty(), "{text}");
        assert!(
            lines.iter().any(|l| l.contains("host=\"example.com\"")
                && l.contains("secret_name=\"")
                && !l.contains("secret_name=\"\"")),
            "{lines:#?}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
