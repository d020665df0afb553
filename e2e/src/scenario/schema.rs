//! The scenario file format: serde types, parsing and the static checks run before
//! anything starts. The format itself is described in the [module docs](super).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The YAML does not follow the format (the message names the field or step).
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or `<text>`).
        path: String,
        /// What is wrong, and where.
        message: String,
    },
}

/// One scenario, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// A DNS label (`[a-z0-9-]`, at most 40 characters), unique in the suite.
    pub name: String,
    /// What the scenario shows, in a sentence or two.
    pub description: String,
    /// Where the scenario's namespaced objects go when they name no namespace
    /// (default `e2e-<name>`).
    pub namespace: String,
    /// Set when the scenario shows a known bug: a failure is reported as `XFAIL` and
    /// does not fail the run.
    pub known_failure: Option<String>,
    /// The limit for the whole scenario (default 60 s).
    pub timeout: Duration,
    /// Echo-backed Services the driver creates before anything else.
    pub services: Vec<ServiceSpec>,
    /// TLS Secrets generated for the scenario (self-signed, one per name).
    pub tls_secrets: Vec<TlsSecretSpec>,
    /// The Kubernetes objects applied at the start.
    pub manifests: Vec<Value>,
    /// What happens then, in order.
    pub steps: Vec<Step>,
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
}

/// A Service backed by echo replicas (local: echo processes and an EndpointSlice
/// written by the driver; kind: an echo Deployment).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The Service name; its one port is named `http` (port 80).
    pub name: String,
    /// How many echo replicas serve it at the start (default 1).
    #[serde(default = "one")]
    pub replicas: usize,
    /// The replicas speak TLS with this `tls_secrets` certificate (a backend for
    /// `ssl-passthrough` or `backend-protocol: HTTPS`).
    #[serde(default)]
    pub tls: Option<String>,
    /// The certificate of `tls`, filled in by the runner before set-up.
    #[serde(skip)]
    pub tls_cert: Option<crate::scenario::tls::GeneratedCert>,
}

/// A `kubernetes.io/tls` Secret with a fresh self-signed certificate for `hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSecretSpec {
    /// The Secret name.
    pub name: String,
    /// The certificate's DNS names (wildcards allowed).
    pub hosts: Vec<String>,
}

/// One step: an action, and a note shown when it fails.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What the step does.
    pub action: Action,
    /// Free text, shown in failure messages.
    pub note: Option<String>,
}

/// The step actions (the YAML key that names them in brackets).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `apply`: create or update objects (as `kubectl apply`).
    Apply(Vec<Value>),
    /// `delete`: delete objects, `Kind/name` (scenario namespace) or
    /// `Kind/namespace/name`.
    Delete(Vec<ObjectRef>),
    /// `scale`: change a Service's echo replica count.
    Scale {
        /// The Service (one of `services`).
        service: String,
        /// The new replica count.
        replicas: usize,
    },
    /// `rollout`: replace every replica of a Service, one at a time, new before old.
    Rollout {
        /// The Service (one of `services`).
        service: String,
    },
    /// `crash`: kill replicas of a Service at once, without taking them out of its
    /// endpoints first (a crashed Pod the cluster has not noticed yet).
    Crash {
        /// The Service (one of `services`).
        service: String,
        /// How many replicas die.
        replicas: usize,
    },
    /// `request`: send requests to the proxy and check the answers.
    Request {
        /// What to send.
        request: Box<RequestSpec>,
        /// What the answers must show.
        expect: Box<ResponseExpect>,
        /// Retry the whole step until it passes or this much time went by.
        eventually: Option<Duration>,
    },
    /// `start_load`: background requests until `stop_load`.
    StartLoad(LoadSpec),
    /// `stop_load`: stop a background load and check its failures.
    StopLoad {
        /// The load's name.
        name: String,
        /// What the load must have seen.
        expect: LoadExpect,
    },
    /// `restart`: stop, then start a component, and wait until it is up.
    Restart(Component),
    /// `stop`: stop a component.
    Stop(Component),
    /// `start`: start a stopped component, and wait until it is up.
    Start(Component),
    /// `fault`: inject an API-server fault.
    Fault(Fault),
    /// `rotate_secret`: a new certificate in one of `tls_secrets`.
    RotateSecret(String),
    /// `configmap`: set (or, with `null`, remove) keys of the controller's ConfigMap.
    ConfigMap(BTreeMap<String, Option<String>>),
    /// `get`: read an object from the API and check it.
    Get {
        /// The object.
        object: ObjectRef,
        /// What it must show.
        expect: ObjectExpect,
        /// Retry until it passes or this much time went by.
        eventually: Option<Duration>,
    },
    /// `conf`: check the proxy's snapshot (`gangplank ctl conf`), JSON pointer ->
    /// expected value (`null`: absent).
    Conf {
        /// Pointer -> value.
        expect: BTreeMap<String, Value>,
        /// Retry until it passes or this much time went by.
        eventually: Option<Duration>,
    },
    /// `sleep`: wait.
    Sleep(Duration),
}

impl Action {
    /// The YAML key of the action.
    pub fn key(&self) -> &'static str {
        match self {
            Action::Apply(_) => "apply",
            Action::Delete(_) => "delete",
            Action::Scale { .. } => "scale",
            Action::Rollout { .. } => "rollout",
            Action::Crash { .. } => "crash",
            Action::Request { .. } => "request",
            Action::StartLoad(_) => "start_load",
            Action::StopLoad { .. } => "stop_load",
            Action::Restart(_) => "restart",
            Action::Stop(_) => "stop",
            Action::Start(_) => "start",
            Action::Fault(_) => "fault",
            Action::RotateSecret(_) => "rotate_secret",
            Action::ConfigMap(_) => "configmap",
            Action::Get { .. } => "get",
            Action::Conf { .. } => "conf",
            Action::Sleep(_) => "sleep",
        }
    }
}

/// Every action key, in the order the docs list them.
pub const ACTIONS: &[&str] = &[
    "apply",
    "delete",
    "scale",
    "rollout",
    "crash",
    "request",
    "start_load",
    "stop_load",
    "restart",
    "stop",
    "start",
    "fault",
    "rotate_secret",
    "configmap",
    "get",
    "conf",
    "sleep",
];

/// An object named by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `Ingress`, `Service`...
    pub kind: String,
    /// The namespace (`None`: the scenario's; ignored for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// Parses `Kind/name` or `Kind/namespace/name`.
    pub fn parse(text: &str) -> Result<ObjectRef, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = parts.iter().all(|s| !s.is_empty());
        match parts.as_slice() {
            [kind, name] if valid => Ok(ObjectRef {
                kind: (*kind).to_owned(),
                namespace: None,
                name: (*name).to_owned(),
            }),
            [kind, ns, name] if valid => Ok(ObjectRef {
                kind: (*kind).to_owned(),
                namespace: Some((*ns).to_owned()),
                name: (*name).to_owned(),
            }),
            _ => Err(format!("{text:?} is not Kind/name or Kind/namespace/name")),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// A Gangplank process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// `gangplank controller`.
    Controller,
    /// `gangplank proxy`.
    Proxy,
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Component::Controller => "controller",
            Component::Proxy => "proxy",
        })
    }
}

/// An API-server fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// End every open watch (clients re-watch from their resourceVersion).
    DropWatches,
    /// Forget the watch history and end every watch: the next watches get 410 Gone
    /// and clients relist.
    ExpireResourceVersions,
    /// Delay every API request.
    Latency(Duration),
    /// Fail this share of API requests with 500.
    ErrorRate(f64),
    /// Clear latency and error rate.
    Reset,
}

/// What a `request` step sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// The `Host` header (and the SNI name with `tls`); default: the proxy's address.
    #[serde(default)]
    pub host: Option<String>,
    /// The path (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// Several paths, each sent `count` times, all held to the same expectations.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// The method (default `GET`).
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Cookies, sent in one `Cookie` header (with the jar's, if any).
    #[serde(default)]
    pub cookies: BTreeMap<String, String>,
    /// Send to the HTTPS listener.
    #[serde(default)]
    pub tls: bool,
    /// The SNI name (default: `host`).
    #[serde(default)]
    pub sni: Option<String>,
    /// How many requests per path (default 1), one after the other on a keep-alive
    /// connection.
    #[serde(default)]
    pub count: Option<usize>,
    /// A named cookie jar: its cookies are sent, and `Set-Cookie` answers update it.
    #[serde(default)]
    pub jar: Option<String>,
    /// Remember the instance that answered last under this name (for `same_as`).
    #[serde(default)]
    pub remember: Option<String>,
}

impl RequestSpec {
    /// The paths to send.
    pub fn paths(&self) -> Vec<String> {
        match (&self.paths, &self.path) {
            (Some(paths), _) => paths.clone(),
            (None, Some(path)) => vec![path.clone()],
            (None, None) => vec!["/".to_owned()],
        }
    }

    /// Requests per path.
    pub fn count(&self) -> usize {
        self.count.unwrap_or(1)
    }
}

/// One Service name, or any of several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Any of these.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names.
    pub fn names(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// The share of answers from one Service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fraction {
    /// The Service.
    pub service: String,
    /// Lowest share (0.0 to 1.0).
    pub min: f64,
    /// Highest share (0.0 to 1.0).
    pub max: f64,
}

/// What the upstream (echo) received.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpstreamExpect {
    /// The path and query it saw, exactly.
    #[serde(default)]
    pub path: Option<String>,
    /// Headers it saw: name -> regex the value must match.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers it must not have seen.
    #[serde(default)]
    pub no_headers: Vec<String>,
}

/// What every answer of a `request` step must show. Without `status`, 200.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResponseExpect {
    /// The status of every answer (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// Every answer came from this Service (or one of these).
    #[serde(default)]
    pub service: Option<OneOrMany>,
    /// Exactly this many distinct echo instances answered.
    #[serde(default)]
    pub instances: Option<usize>,
    /// One instance answered everything.
    #[serde(default)]
    pub same_instance: bool,
    /// Every answer came from the instance remembered under this name.
    #[serde(default)]
    pub same_as: Option<String>,
    /// Every answer came from another instance than the one remembered under this name.
    #[serde(default)]
    pub not_same_as: Option<String>,
    /// The share of answers from a Service.
    #[serde(default)]
    pub fraction: Option<Fraction>,
    /// Response headers: name -> regex the value must match.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response headers that must be absent.
    #[serde(default)]
    pub no_headers: Vec<String>,
    /// The certificate served: a `tls_secrets` name, or `default` (none of them).
    #[serde(default)]
    pub cert: Option<String>,
    /// What the upstream received.
    #[serde(default)]
    pub upstream: Option<UpstreamExpect>,
}

/// A background load (`start_load`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// The load's name, for `stop_load` (default `load`).
    #[serde(default)]
    pub name: Option<String>,
    /// The `Host` header.
    #[serde(default)]
    pub host: Option<String>,
    /// The path (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Send to the HTTPS listener.
    #[serde(default)]
    pub tls: bool,
    /// Concurrent keep-alive connections (default 2).
    #[serde(default)]
    pub connections: Option<usize>,
    /// Pause between two requests of a connection (default 5ms).
    #[serde(default)]
    pub interval: Option<String>,
    /// The status that counts as success (default 200).
    #[serde(default)]
    pub status: Option<u16>,
}

impl LoadSpec {
    /// The load's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("load")
    }
}

/// What a load must have seen (`stop_load`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoadExpect {
    /// Most failed requests allowed (default 0).
    #[serde(default)]
    pub max_failures: u64,
    /// Fewest requests sent (default 1).
    #[serde(default)]
    pub min_requests: Option<u64>,
}

/// What an object read by `get` must show.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectExpect {
    /// Whether it exists (default true).
    #[serde(default = "yes")]
    pub exists: bool,
    /// `true`: `status.loadBalancer.ingress` holds the addresses the controller
    /// publishes; `false`: it is empty.
    #[serde(default)]
    pub published: Option<bool>,
    /// JSON pointer -> expected value (`null`: absent).
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
}

impl Default for ObjectExpect {
    fn default() -> Self {
        ObjectExpect {
            exists: true,
            published: None,
            fields: BTreeMap::new(),
        }
    }
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// Manifests: one multi-document YAML string, one object, or a list of objects.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Manifests {
    Text(String),
    List(Vec<Value>),
    One(Map<String, Value>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    description: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    known_failure: Option<String>,
    #[serde(default)]
    timeout: Option<Value>,
    #[serde(default)]
    services: Vec<ServiceSpec>,
    #[serde(default)]
    tls_secrets: Vec<TlsSecretSpec>,
    #[serde(default)]
    manifests: Option<Manifests>,
    steps: Vec<Value>,
}

// One struct per action, each refusing keys it does not know.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyStep {
    apply: Manifests,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteStep {
    delete: OneOrMany,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleSpec {
    service: String,
    replicas: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleStep {
    scale: ScaleSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutStep {
    rollout: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrashStep {
    crash: ScaleSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestStep {
    request: RequestSpec,
    #[serde(default)]
    expect: ResponseExpect,
    #[serde(default)]
    eventually: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartLoadStep {
    start_load: LoadSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopLoadStep {
    stop_load: String,
    #[serde(default)]
    expect: LoadExpect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartStep {
    restart: Component,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopStep {
    stop: Component,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartStep {
    start: Component,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultStep {
    fault: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateStep {
    rotate_secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigMapStep {
    configmap: BTreeMap<String, Option<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetStep {
    get: String,
    #[serde(default)]
    expect: ObjectExpect,
    #[serde(default)]
    eventually: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfStep {
    conf: BTreeMap<String, Value>,
    #[serde(default)]
    eventually: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SleepStep {
    sleep: Value,
}

/// Parses a duration: `250ms`, `10s`, `2m`, or a number of seconds.
pub fn parse_duration(value: &Value) -> Result<Duration, String> {
    let bad = || format!("{value} is not a duration (like 250ms, 10s, 2m or a number of seconds)");
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 3600.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
                Some(i) => s.split_at(i),
                None => (s, "s"),
            };
            let n: f64 = number.parse().map_err(|_| bad())?;
            let seconds = match unit.trim() {
                "ms" => n / 1000.0,
                "s" => n,
                "m" => n * 60.0,
                _ => return Err(bad()),
            };
            if seconds.is_finite() && (0.0..3600.0).contains(&seconds) {
                Ok(Duration::from_secs_f64(seconds))
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

fn optional_duration(value: Option<Value>) -> Result<Option<Duration>, String> {
    value.as_ref().map(parse_duration).transpose()
}

/// Splits multi-document YAML into objects (empty documents are skipped).
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for (i, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .map_err(|e| format!("manifest document {}: {e}", i + 1))?;
        match value {
            Value::Null => {}
            Value::Object(_) => objects.push(value),
            other => {
                return Err(format!(
                    "manifest document {} is not an object: {other}",
                    i + 1
                ));
            }
        }
    }
    Ok(objects)
}

fn manifests(m: Manifests) -> Result<Vec<Value>, String> {
    let objects = match m {
        Manifests::Text(text) => parse_manifests(&text)?,
        Manifests::List(list) => list,
        Manifests::One(object) => vec![Value::Object(object)],
    };
    for (i, object) in objects.iter().enumerate() {
        let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if field("apiVersion").is_empty() || field("kind").is_empty() || name.is_empty() {
            return Err(format!(
                "object {} needs apiVersion, kind and metadata.name",
                i + 1
            ));
        }
    }
    Ok(objects)
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn parse_fault(value: &Value) -> Result<Fault, String> {
    match value {
        Value::String(s) => match s.as_str() {
            "drop_watches" => Ok(Fault::DropWatches),
            "expire_resource_versions" => Ok(Fault::ExpireResourceVersions),
            "reset" => Ok(Fault::Reset),
            other => Err(format!(
                "unknown fault {other:?}; expected drop_watches, expire_resource_versions, reset, {{latency: D}} or {{error_rate: F}}"
            )),
        },
        Value::Object(map) if map.len() == 1 => {
            let (key, v) = map.iter().next().ok_or("empty fault")?;
            match key.as_str() {
                "latency" => Ok(Fault::Latency(parse_duration(v)?)),
                "error_rate" => match v.as_f64() {
                    Some(rate) if (0.0..=1.0).contains(&rate) => Ok(Fault::ErrorRate(rate)),
                    _ => Err(format!("error_rate {v} is not a number in 0..1")),
                },
                other => Err(format!(
                    "unknown fault {other:?}; expected latency or error_rate"
                )),
            }
        }
        other => Err(format!("{other} is not a fault")),
    }
}

/// Turns one raw step into a [`Step`]; `Err` explains what is wrong with it.
fn parse_step(value: Value) -> Result<Step, String> {
    let Value::Object(mut map) = value else {
        return Err(format!(
            "a step is a mapping with one action key ({})",
            ACTIONS.join(", ")
        ));
    };
    let note = match map.remove("note") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => return Err(format!("note {other} is not text")),
    };
    let present: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    let key = match present.as_slice() {
        [key] => *key,
        [] => {
            let keys: Vec<&String> = map.keys().collect();
            return Err(format!(
                "no action among the keys {keys:?}; a step has exactly one of: {}",
                ACTIONS.join(", ")
            ));
        }
        several => {
            return Err(format!(
                "several actions ({}); a step has exactly one",
                several.join(", ")
            ));
        }
    };
    let value = Value::Object(map);
    let action = parse_action(key, value).map_err(|e| format!("`{key}` step: {e}"))?;
    Ok(Step { action, note })
}

fn parse_action(key: &str, value: Value) -> Result<Action, String> {
    Ok(match key {
        "apply" => Action::Apply(manifests(typed::<ApplyStep>(value)?.apply)?),
        "delete" => {
            let refs = typed::<DeleteStep>(value)?.delete.names();
            Action::Delete(
                refs.iter()
                    .map(|r| ObjectRef::parse(r))
                    .collect::<Result<_, _>>()?,
            )
        }
        "scale" => {
            let s = typed::<ScaleStep>(value)?.scale;
            Action::Scale {
                service: s.service,
                replicas: s.replicas,
            }
        }
        "rollout" => Action::Rollout {
            service: typed::<RolloutStep>(value)?.rollout,
        },
        "crash" => {
            let s = typed::<CrashStep>(value)?.crash;
            Action::Crash {
                service: s.service,
                replicas: s.replicas,
            }
        }
        "request" => {
            let s = typed::<RequestStep>(value)?;
            Action::Request {
                request: Box::new(s.request),
                expect: Box::new(s.expect),
                eventually: optional_duration(s.eventually)?,
            }
        }
        "start_load" => {
            let spec = typed::<StartLoadStep>(value)?.start_load;
            if let Some(interval) = &spec.interval {
                parse_duration(&Value::String(interval.clone()))?;
            }
            Action::StartLoad(spec)
        }
        "stop_load" => {
            let s = typed::<StopLoadStep>(value)?;
            Action::StopLoad {
                name: s.stop_load,
                expect: s.expect,
            }
        }
        "restart" => Action::Restart(typed::<RestartStep>(value)?.restart),
        "stop" => Action::Stop(typed::<StopStep>(value)?.stop),
        "start" => Action::Start(typed::<StartStep>(value)?.start),
        "fault" => Action::Fault(parse_fault(&typed::<FaultStep>(value)?.fault)?),
        "rotate_secret" => Action::RotateSecret(typed::<RotateStep>(value)?.rotate_secret),
        "configmap" => {
            let data = typed::<ConfigMapStep>(value)?.configmap;
            let mut out = BTreeMap::new();
            for (k, v) in data {
                let v = match v {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s),
                    // ConfigMap values are strings; numbers and booleans written bare are
                    // taken as their text, as the chart's `config` does.
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(Value::Bool(b)) => Some(b.to_string()),
                    Some(other) => return Err(format!("{k}: {other} is not a ConfigMap value")),
                };
                out.insert(k, v);
            }
            Action::ConfigMap(out)
        }
        "get" => {
            let s = typed::<GetStep>(value)?;
            Action::Get {
                object: ObjectRef::parse(&s.get)?,
                expect: s.expect,
                eventually: optional_duration(s.eventually)?,
            }
        }
        "conf" => {
            let s = typed::<ConfStep>(value)?;
            for pointer in s.conf.keys() {
                if !pointer.starts_with('/') {
                    return Err(format!(
                        "{pointer:?} is not a JSON pointer (it starts with /)"
                    ));
                }
            }
            Action::Conf {
                expect: s.conf,
                eventually: optional_duration(s.eventually)?,
            }
        }
        "sleep" => Action::Sleep(parse_duration(&typed::<SleepStep>(value)?.sleep)?),
        _ => return Err(format!("unhandled action {key}")),
    })
}

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The checks that need the whole scenario: names, references between steps.
fn check(scenario: &Scenario) -> Result<(), String> {
    if !is_dns_label(&scenario.name, 40) {
        return Err(format!(
            "name {:?} must be a DNS label of at most 40 characters ([a-z0-9-])",
            scenario.name
        ));
    }
    if !is_dns_label(&scenario.namespace, 63) {
        return Err(format!(
            "namespace {:?} is not a DNS label",
            scenario.namespace
        ));
    }
    let mut services = BTreeSet::new();
    for s in &scenario.services {
        if !is_dns_label(&s.name, 40) {
            return Err(format!("service name {:?} is not a DNS label", s.name));
        }
        if !services.insert(s.name.as_str()) {
            return Err(format!("service {:?} is listed twice", s.name));
        }
        if s.replicas > 50 {
            return Err(format!("service {:?}: at most 50 replicas", s.name));
        }
    }
    let mut secrets = BTreeSet::new();
    for s in &scenario.tls_secrets {
        if !secrets.insert(s.name.as_str()) {
            return Err(format!("tls secret {:?} is listed twice", s.name));
        }
        if s.hosts.is_empty() {
            return Err(format!("tls secret {:?} has no hosts", s.name));
        }
    }
    for s in &scenario.services {
        if let Some(name) = &s.tls
            && !secrets.contains(name.as_str())
        {
            return Err(format!(
                "service {:?}: tls {name:?} is not one of `tls_secrets`",
                s.name
            ));
        }
    }
    let mut remembered = BTreeSet::new();
    let mut loads = BTreeSet::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let at = |e: String| format!("steps[{i}] (`{}`): {e}", step.action.key());
        match &step.action {
            Action::Scale { service, replicas } => {
                if !services.contains(service.as_str()) {
                    return Err(at(format!("{service:?} is not one of `services`")));
                }
                if *replicas > 50 {
                    return Err(at("at most 50 replicas".to_owned()));
                }
            }
            Action::Rollout { service } | Action::Crash { service, .. }
                if !services.contains(service.as_str()) =>
            {
                return Err(at(format!("{service:?} is not one of `services`")));
            }
            Action::RotateSecret(name) if !secrets.contains(name.as_str()) => {
                return Err(at(format!("{name:?} is not one of `tls_secrets`")));
            }
            Action::Request {
                request, expect, ..
            } => {
                if request.path.is_some() && request.paths.is_some() {
                    return Err(at("give `path` or `paths`, not both".to_owned()));
                }
                if !(1..=2000).contains(&request.count()) {
                    return Err(at("count must be in 1..2000".to_owned()));
                }
                if request.paths().iter().any(|p| !p.starts_with('/')) {
                    return Err(at("paths start with /".to_owned()));
                }
                for name in [&expect.same_as, &expect.not_same_as].into_iter().flatten() {
                    if !remembered.contains(name.as_str()) {
                        return Err(at(format!(
                            "{name:?} is not remembered by an earlier request"
                        )));
                    }
                }
                if let Some(cert) = &expect.cert {
                    if !request.tls {
                        return Err(at("`cert` needs `tls: true`".to_owned()));
                    }
                    if cert != "default" && !secrets.contains(cert.as_str()) {
                        return Err(at(format!(
                            "cert {cert:?} is neither `default` nor one of `tls_secrets`"
                        )));
                    }
                }
                if let Some(f) = &expect.fraction
                    && !(0.0 <= f.min && f.min <= f.max && f.max <= 1.0)
                {
                    return Err(at("fraction needs 0 <= min <= max <= 1".to_owned()));
                }
                for pattern in expect
                    .headers
                    .values()
                    .chain(expect.upstream.iter().flat_map(|u| u.headers.values()))
                {
                    regex::Regex::new(pattern)
                        .map_err(|e| at(format!("header regex {pattern:?}: {e}")))?;
                }
                if let Some(name) = &request.remember {
                    remembered.insert(name.as_str());
                }
            }
            Action::StartLoad(spec) => {
                if !loads.insert(spec.name().to_owned()) {
                    return Err(at(format!("load {:?} is already running", spec.name())));
                }
                if !(1..=8).contains(&spec.connections.unwrap_or(2)) {
                    return Err(at("connections must be in 1..8".to_owned()));
                }
            }
            Action::StopLoad { name, .. } if !loads.remove(name) => {
                return Err(at(format!("no load {name:?} was started")));
            }
            _ => {}
        }
    }
    if let Some(name) = loads.iter().next() {
        return Err(format!(
            "load {name:?} is never stopped (add a stop_load step)"
        ));
    }
    Ok(())
}

/// Parses and checks a scenario from YAML text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, ParseError> {
    let invalid = |message: String| ParseError::Invalid {
        path: origin.to_owned(),
        message,
    };
    let raw: RawScenario = serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (i, value) in raw.steps.into_iter().enumerate() {
        steps.push(parse_step(value).map_err(|e| invalid(format!("steps[{i}]: {e}")))?);
    }
    let scenario = Scenario {
        namespace: raw.namespace.unwrap_or_else(|| format!("e2e-{}", raw.name)),
        name: raw.name,
        description: raw.description,
        known_failure: raw.known_failure,
        timeout: optional_duration(raw.timeout)
            .map_err(|e| invalid(format!("timeout: {e}")))?
            .unwrap_or(Duration::from_secs(60)),
        services: raw.services,
        tls_secrets: raw.tls_secrets,
        manifests: match raw.manifests {
            Some(m) => manifests(m).map_err(|e| invalid(format!("manifests: {e}")))?,
            None => Vec::new(),
        },
        steps,
        file: None,
    };
    check(&scenario).map_err(invalid)?;
    Ok(scenario)
}

/// Reads and parses one scenario file.
pub fn load(path: &Path) -> Result<Scenario, ParseError> {
    let text = std::fs::read_to_string(path).map_err(|source| ParseError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut scenario = parse(&text, &path.display().to_string())?;
    scenario.file = Some(path.to_owned());
    Ok(scenario)
}

/// The `*.yaml` files of a directory, sorted by name.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, ParseError> {
    let read = |source| ParseError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}
