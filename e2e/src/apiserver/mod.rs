//! A Kubernetes API-server stand-in for tests: an in-memory, single-process HTTP server
//! that speaks enough of the Kubernetes REST API (JSON only) for kube-rs (clients,
//! watchers, reflectors, Lease-based leader election) and `kubectl`.
//!
//! What it does:
//! - Discovery (`/api`, `/api/v1`, `/apis`, `/apis/{group}[/{version}]`) and `/version`.
//! - The kinds the controller needs (see [`resources::RESOURCES`]): core/v1 Namespace,
//!   Service, Endpoints, Secret, ConfigMap, Event, Pod; discovery.k8s.io/v1
//!   EndpointSlice; networking.k8s.io/v1 Ingress and IngressClass;
//!   coordination.k8s.io/v1 Lease; events.k8s.io/v1 Event.
//! - list (one namespace or all) with `labelSelector` and `fieldSelector`, get, create
//!   (`generateName`, 409 AlreadyExists), replace (a set `resourceVersion` is a
//!   precondition: stale => 409 Conflict), patch (merge, strategic merge without a
//!   schema, JSON patch, and apply patches done as create-or-merge), delete (with
//!   preconditions and finalizers), deletecollection, the `/status` subresource,
//!   `dryRun=All`.
//! - Metadata: uid, creationTimestamp, resourceVersion (one global counter), generation
//!   (bumped when anything outside metadata and status changes). A write that changes
//!   nothing keeps the resourceVersion and sends no event.
//! - Watches from a resourceVersion (replayed from a bounded history, 410 Expired when
//!   too old), from "now" with synthetic ADDED events, bookmarks, `timeoutSeconds`,
//!   selectors, and `sendInitialEvents`.
//! - Errors as `Status` objects with the real reasons and codes.
//! - [`Faults`]: dropped watches, expired resourceVersions, latency, injected 500s.
//!
//! What it deliberately does not do: TLS, authentication, authorization, admission,
//! protobuf, OpenAPI (404), aggregated discovery, server-side `Table` printing (kubectl
//! prints its default NAME/AGE columns), real server-side apply (no managedFields, no
//! field ownership or conflicts: an apply patch is a JSON merge patch), schema
//! validation beyond names, apiVersion and kind, defaulting beyond a few fields (see
//! [`meta::default_object`]), cluster IPs that route anywhere, garbage collection of
//! owned objects, graceful deletion (pods go at once), `limit`/`continue` paging (the
//! whole list comes in one page), `resourceVersionMatch` (lists are always current),
//! and any controller (no EndpointSlices are made from Services: tests create them).
//! Deleting a namespace deletes its objects at once. The core and events.k8s.io Events
//! are two separate collections.
//!
//! With kubectl: pass `--validate=false` to `create`/`apply`/`replace -f` (its
//! validation needs OpenAPI); `get`, `get -w`, `label`, `patch` (also
//! `--subresource=status`), `delete`, `apply` (client- and server-side) work as they
//! are. Generator commands such as `kubectl create configmap NAME --from-literal=...`
//! send protobuf and get 415: create from manifests instead.
//!
//! Start one with [`ApiServer::start`] (or the `fake-apiserver` binary), point clients
//! at [`ApiServer::url`] or [`ApiServer::write_kubeconfig`], and set up or inspect state
//! directly with [`ApiServer::create`], [`ApiServer::apply`], [`ApiServer::get`],
//! [`ApiServer::list`]...

pub mod discovery;
pub mod error;
pub mod faults;
pub mod meta;
pub mod patch;
pub mod resources;
mod routes;
pub mod selectors;
pub mod store;
mod watch;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::watch as signal;

pub use error::ApiError;
pub use faults::Faults;
use resources::ResourceType;
use store::{Deleted, PatchKind, Store, Target};

/// Settings of a stand-in, for [`ApiServer::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// How many changes are kept for watch replay; a watch from an older
    /// resourceVersion gets 410 Expired.
    pub history_limit: usize,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How many requests [`ApiServer::requests`] remembers.
    pub request_log_limit: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(1),
            request_log_limit: 10_000,
        }
    }
}

/// One answered request, for tests that check what a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `PATCH`...
    pub method: String,
    /// Path and query, as received.
    pub uri: String,
    /// The answer's status code (200 for a watch that started).
    pub status: u16,
}

/// State shared by the accept loop, every request and every watch.
#[derive(Debug)]
pub(crate) struct Shared {
    addr: SocketAddr,
    store: Mutex<Store>,
    faults: faults::FaultState,
    bookmark_interval: Duration,
    shutdown: signal::Receiver<()>,
    active_watches: AtomicUsize,
    requests: Mutex<VecDeque<RequestRecord>>,
    request_log_limit: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent JSON behind: carry on.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn log_request(&self, method: String, uri: String, status: u16) {
        let mut log = lock(&self.requests);
        if log.len() >= self.request_log_limit {
            log.pop_front();
        }
        log.push_back(RequestRecord {
            method,
            uri,
            status,
        });
    }
}

/// A running API-server stand-in on 127.0.0.1; it stops (and ends every open watch)
/// when dropped.
#[derive(Debug)]
pub struct ApiServer {
    shared: Arc<Shared>,
    faults: Faults,
    _shutdown: signal::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unknown_kind(api_version: &str, kind: &str) -> ApiError {
    ApiError::path_not_found(format!(
        "the server doesn't have a resource type {kind} in {api_version}"
    ))
}

fn kind_of(object: &Value) -> Result<&'static ResourceType, ApiError> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    resources::by_kind(api_version, kind).ok_or_else(|| unknown_kind(api_version, kind))
}

/// The namespace an object goes to: its own, else `default` (as kubectl does); `""` for
/// cluster-scoped kinds.
fn namespace_of(rt: &ResourceType, object: &Value) -> String {
    if !rt.namespaced {
        return String::new();
    }
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
        .to_string()
}

fn name_of(object: &Value) -> String {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl ApiServer {
    /// Starts a stand-in on `addr` (`127.0.0.1:0` for any port) with default
    /// [`Options`]. Must run inside a tokio runtime.
    pub async fn start(addr: SocketAddr) -> std::io::Result<ApiServer> {
        ApiServer::start_with(addr, Options::default()).await
    }

    /// Starts a stand-in with `options`.
    pub async fn start_with(addr: SocketAddr, options: Options) -> std::io::Result<ApiServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = signal::channel(());
        let shared = Arc::new(Shared {
            addr,
            store: Mutex::new(Store::new(options.history_limit)),
            faults: faults::FaultState::new(),
            bookmark_interval: options.bookmark_interval.max(Duration::from_millis(10)),
            shutdown: shutdown_rx,
            active_watches: AtomicUsize::new(0),
            requests: Mutex::new(VecDeque::new()),
            request_log_limit: options.request_log_limit,
        });
        let accept = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let shared = accept.clone();
                let mut shutdown = accept.shutdown.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(routes::handle(shared, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = shutdown.changed() => {}
                    }
                });
            }
        });
        Ok(ApiServer {
            faults: Faults {
                shared: shared.clone(),
            },
            shared,
            _shutdown: shutdown_tx,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The kubeconfig of a client of this server: plain http, no credentials, context
    /// `gangplank-fake` with namespace `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: gangplank-fake\n  \
               cluster:\n    \
                 server: {url}\n\
             users:\n\
             - name: gangplank-fake\n  \
               user: {{}}\n\
             contexts:\n\
             - name: gangplank-fake\n  \
               context:\n    \
                 cluster: gangplank-fake\n    \
                 user: gangplank-fake\n    \
                 namespace: default\n\
             current-context: gangplank-fake\n\
             preferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`kubeconfig`](ApiServer::kubeconfig) to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The fault-injection handle.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// How many watch streams are open now.
    pub fn active_watches(&self) -> usize {
        self.shared.active_watches.load(Ordering::Relaxed)
    }

    /// The requests answered so far (the latest [`Options::request_log_limit`]).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).iter().cloned().collect()
    }

    /// Creates `object` (which names its `apiVersion` and `kind`; a namespaced object
    /// without a namespace goes to `default`), as a POST would.
    pub fn create(&self, object: Value) -> Result<Value, ApiError> {
        let rt = kind_of(&object)?;
        let ns = namespace_of(rt, &object);
        self.shared.store().create(rt, &ns, object, false)
    }

    /// Creates `object`, or merges it (JSON merge patch) into the existing one. For
    /// test set-up, its `.status` is applied too (through the status subresource),
    /// which no single HTTP request does.
    pub fn apply(&self, object: Value) -> Result<Value, ApiError> {
        let rt = kind_of(&object)?;
        let ns = namespace_of(rt, &object);
        let name = name_of(&object);
        let mut store = self.shared.store();
        let mut result = if store.get(rt, &ns, &name).is_ok() {
            store.patch(
                rt,
                &ns,
                &name,
                PatchKind::Merge,
                &object,
                Target::Main,
                false,
            )?
        } else {
            store.create(rt, &ns, object.clone(), false)?
        };
        if rt.status_subresource
            && let Some(status) = object.get("status")
        {
            let patch = serde_json::json!({ "status": status });
            result = store.patch(
                rt,
                &ns,
                &name,
                PatchKind::Merge,
                &patch,
                Target::Status,
                false,
            )?;
        }
        Ok(result)
    }

    /// Replaces `object`, as a PUT would (a set `metadata.resourceVersion` must be the
    /// current one).
    pub fn replace(&self, object: Value) -> Result<Value, ApiError> {
        let rt = kind_of(&object)?;
        let ns = namespace_of(rt, &object);
        let name = name_of(&object);
        self.shared
            .store()
            .update(rt, &ns, &name, object, Target::Main, false)
    }

    /// Merges `patch` (JSON merge patch) into an object's status, as a PATCH of the
    /// `/status` subresource would. `namespace` is ignored for cluster-scoped kinds.
    pub fn patch_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        let rt =
            resources::by_kind(api_version, kind).ok_or_else(|| unknown_kind(api_version, kind))?;
        let ns = if rt.namespaced { namespace } else { "" };
        self.shared
            .store()
            .patch(rt, ns, name, PatchKind::Merge, patch, Target::Status, false)
    }

    /// Deletes an object; returns its last state (with a `deletionTimestamp` if
    /// finalizers keep it).
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let rt =
            resources::by_kind(api_version, kind).ok_or_else(|| unknown_kind(api_version, kind))?;
        let ns = if rt.namespaced { namespace } else { "" };
        match self
            .shared
            .store()
            .delete(rt, ns, name, &Value::Null, false)?
        {
            Deleted::Gone(v) | Deleted::Pending(v) => Ok(v),
        }
    }

    /// One object, if it exists.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = resources::by_kind(api_version, kind)?;
        let ns = if rt.namespaced { namespace } else { "" };
        self.shared.store().get(rt, ns, name).ok()
    }

    /// The objects of a kind in `namespace`, or in all namespaces (`None`), sorted by
    /// namespace and name.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(rt) = resources::by_kind(api_version, kind) else {
            return Vec::new();
        };
        self.shared
            .store()
            .list(rt, namespace, &selectors::Selectors::default())
    }
}
