//! The [`Cluster`] trait: what a scenario needs from the environment it runs in, with
//! two implementations, [`local`](super::local) and [`kind`](super::kind).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{Value, json};

use super::schema::{Component, Fault, ObjectRef, ServiceSpec};

/// Why a cluster operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The driver cannot do this at all (the scenario is skipped, not failed).
    #[error("not supported by the {driver} driver: {what}")]
    Unsupported {
        /// The driver.
        driver: &'static str,
        /// The operation.
        what: String,
    },
    /// It was tried and failed.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for ClusterError {
    fn from(message: String) -> ClusterError {
        ClusterError::Failed(message)
    }
}

/// Results of cluster operations.
pub type ClusterResult<T> = Result<T, ClusterError>;

/// Where Gangplank's own objects live in every driver: the namespace of the chart's
/// release (`GANGPLANK_E2E_NAMESPACE` for kind) and the IngressClass it serves.
pub const INGRESS_CLASS: &str = "gangplank";
/// The `spec.controller` of that IngressClass.
pub const CONTROLLER_CLASS: &str = "gangplank.io/ingress-controller";
/// The label the echo Pods (and the Services' selectors) carry: the Service name.
pub const SERVICE_LABEL: &str = "e2e.gangplank.io/service";
/// The port every echo listens on in a Pod (kind); the Service port 80 targets it.
pub const ECHO_POD_PORT: u16 = 8080;

/// An environment running Gangplank: a fresh set of local processes per scenario, or
/// a kind cluster with the chart installed. Operations return when they are done
/// (objects written, replicas ready and, where the driver can tell, the proxy
/// configured); the controller still applies object changes asynchronously, which
/// scenarios meet with `eventually`.
///
/// The runner drives one cluster from one task, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Cluster {
    /// `local` or `kind`.
    fn driver(&self) -> &'static str;

    /// How much slower than the local driver this one applies changes (Pods start,
    /// kubelets probe): the scenario's `timeout` and every `eventually` are multiplied
    /// by it.
    fn slowness(&self) -> u32 {
        1
    }

    /// Prepares a scenario: its namespace, the echo-backed `services`, then `objects`;
    /// returns once Gangplank is running.
    async fn setup(
        &mut self,
        namespace: &str,
        services: &[ServiceSpec],
        objects: Vec<Value>,
    ) -> ClusterResult<()>;

    /// Creates or updates objects (every one names its namespace when namespaced).
    async fn apply(&mut self, objects: Vec<Value>) -> ClusterResult<()>;

    /// Deletes an object (its namespace resolved); a missing object is not an error.
    async fn delete(&mut self, object: &ObjectRef) -> ClusterResult<()>;

    /// Reads an object (its namespace resolved).
    async fn get(&mut self, object: &ObjectRef) -> ClusterResult<Option<Value>>;

    /// Sets the replica count of one of the scenario's Services.
    async fn scale(&mut self, service: &str, replicas: usize) -> ClusterResult<()>;

    /// Replaces every replica of a Service, new before old, one at a time.
    async fn rollout(&mut self, service: &str) -> ClusterResult<()>;

    /// Kills `replicas` replicas of a Service at once, without a graceful removal
    /// from its endpoints.
    async fn crash(&mut self, service: &str, replicas: usize) -> ClusterResult<()>;

    /// Stops a component.
    async fn stop(&mut self, component: Component) -> ClusterResult<()>;

    /// Starts a stopped component and waits until it is up.
    async fn start(&mut self, component: Component) -> ClusterResult<()>;

    /// Restarts a component and waits until it is up again.
    async fn restart(&mut self, component: Component) -> ClusterResult<()>;

    /// Injects an API-server fault.
    async fn fault(&mut self, fault: &Fault) -> ClusterResult<()>;

    /// Sets (`Some`) or removes (`None`) keys of the controller's ConfigMap.
    async fn patch_config_map(
        &mut self,
        data: &BTreeMap<String, Option<String>>,
    ) -> ClusterResult<()>;

    /// The proxy's HTTP and HTTPS addresses.
    fn proxy_addrs(&self) -> (SocketAddr, SocketAddr);

    /// The addresses the controller publishes in Ingress status, when the driver
    /// knows them (`None`: any non-empty status will do).
    fn published_addresses(&self) -> Option<Vec<String>>;

    /// The proxy's snapshot, as `gangplank ctl conf` prints it (JSON).
    async fn conf(&mut self) -> ClusterResult<String>;

    /// What helps understand a failure: the tail of each component's log and the
    /// snapshot.
    async fn diagnostics(&mut self) -> String;

    /// Removes what the scenario created and stops what the driver started.
    async fn teardown(&mut self);
}

/// The apiVersion of the kinds scenarios use.
pub fn api_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Ingress" | "IngressClass" => "networking.k8s.io/v1",
        "EndpointSlice" => "discovery.k8s.io/v1",
        "Service" | "Secret" | "ConfigMap" | "Namespace" | "Endpoints" | "Pod" | "Event" => "v1",
        "Lease" => "coordination.k8s.io/v1",
        "Deployment" => "apps/v1",
        _ => return None,
    })
}

/// Whether objects of `kind` live in a namespace.
pub fn is_namespaced(kind: &str) -> bool {
    !matches!(kind, "IngressClass" | "Namespace" | "ClusterRole")
}

/// Puts every namespaced object without a namespace into `namespace`.
pub fn with_namespace(objects: Vec<Value>, namespace: &str) -> Vec<Value> {
    objects
        .into_iter()
        .map(|mut object| {
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            if is_namespaced(kind)
                && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
            {
                let missing = metadata
                    .get("namespace")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
                if missing {
                    metadata.insert("namespace".to_owned(), json!(namespace));
                }
            }
            object
        })
        .collect()
}

/// The Service object of an echo-backed Service: port `http` 80 to the echo Pods'
/// port 8080, selecting the Pods by [`SERVICE_LABEL`].
pub fn service_object(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {SERVICE_LABEL: name}},
        "spec": {
            "selector": {SERVICE_LABEL: name},
            "ports": [{"name": "http", "port": 80, "targetPort": ECHO_POD_PORT, "protocol": "TCP"}]
        }
    })
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!("[… {start} earlier lines]\n"));
    }
    for line in &all[start..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}
