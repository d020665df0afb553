//! The `local` driver: everything on this machine, fresh for every scenario.
//!
//! - The Kubernetes API is the in-memory stand-in ([`ApiServer`]), run inside the
//!   runner so faults can be injected; the controller reaches it through a kubeconfig.
//! - `gangplank proxy` and `gangplank controller` are separate processes talking over
//!   the admin unix socket in a temporary directory; the proxy keeps its state in
//!   `--state-dir` there, so a restarted proxy serves before the controller is back.
//! - Each echo replica is an `echo` process on its own loopback address
//!   (127.0.0.2, 127.0.0.3... never reused within a scenario, as Pod IPs) and one
//!   port shared by all, named `<namespace>/<service>/<n>`. The driver writes the
//!   Service's EndpointSlice itself (the stand-in runs no controllers). Scaling and
//!   rollouts start replicas before adding them to the slice, and stop them only
//!   after the proxy's backends no longer list them, as a Pod's readiness and
//!   termination grace do in a cluster. Replicas of a `tls` Service speak TLS with
//!   that certificate (written to the temporary directory).
//! - The proxy runs with `--enable-ssl-passthrough` (every TLS connection's SNI is read
//!   first), so the TLS scenarios also check that termination is unaffected by it.
//! - The chart's baseline is reproduced: namespace `gangplank`, IngressClass
//!   `gangplank`, ConfigMap `gangplank/gangplank` (`--configmap`), status published
//!   as `--publish-status-address 127.0.0.1`, leader election on a Lease.
//!
//! Every process writes its output to a log file in the temporary directory (kept after
//! the run when `GANGPLANK_E2E_KEEP` is set); all are killed when the cluster is
//! dropped, whatever happened.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client;
use super::cluster::{
    CONTROLLER_CLASS, Cluster, ClusterError, ClusterResult, INGRESS_CLASS, api_version,
    service_object, tail,
};
use super::schema::{Component, Fault, ObjectRef, ServiceSpec};
use crate::apiserver::ApiServer;

/// The namespace of Gangplank's own objects (as the chart's release namespace).
pub const SYSTEM_NAMESPACE: &str = "gangplank";
/// The controller's ConfigMap, in [`SYSTEM_NAMESPACE`].
pub const CONFIG_MAP: &str = "gangplank";
/// What the controller publishes in Ingress status.
pub const PUBLISHED_ADDRESS: &str = "127.0.0.1";

/// The programs the local driver runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `gangplank`.
    pub gangplank: PathBuf,
    /// The `echo` upstream.
    pub echo: PathBuf,
}

/// A child process, killed when dropped.
struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    /// Starts `command`; its standard error goes to `log`, its standard output to
    /// `out` (default: `log` too). Both files are appended to, so restarts keep the
    /// earlier output.
    fn spawn(
        mut command: Command,
        name: &str,
        log: &Path,
        out: Option<&Path>,
    ) -> ClusterResult<Proc> {
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("opening {}: {e}", path.display()))
        };
        let mut err: File = open(log)?;
        let _ = writeln!(err, "=== e2e: starting {name}: {command:?}");
        let out = open(out.unwrap_or(log))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("starting {name} ({:?}): {e}", command.get_program()))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
        })
    }

    /// Whether it exited (and how).
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{}: {status}", self.name)),
            Ok(None) => None,
            Err(e) => Some(format!("{}: {e}", self.name)),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    async fn terminate(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One echo replica.
struct Replica {
    addr: SocketAddr,
    proc: Proc,
}

/// The replicas of one Service.
#[derive(Default)]
struct Replicas {
    next_index: usize,
    live: Vec<Replica>,
    /// Certificate and key files the replicas serve TLS with (`tls` Services).
    tls: Option<(PathBuf, PathBuf)>,
}

/// The local driver. See the module docs.
pub struct LocalCluster {
    bins: Binaries,
    /// Removed when dropped, unless `GANGPLANK_E2E_KEEP` is set.
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    api: ApiServer,
    proxy: Option<Proc>,
    controller: Option<Proc>,
    http: SocketAddr,
    https: SocketAddr,
    metrics: SocketAddr,
    controller_listen: SocketAddr,
    echo_port: u16,
    next_host: u8,
    namespace: String,
    services: BTreeMap<String, Replicas>,
}

fn free_port() -> ClusterResult<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| ClusterError::Failed(format!("finding a free port: {e}")))
}

/// Waits until `addr` accepts connections.
async fn wait_port(addr: SocketAddr, limit: Duration, what: &str) -> ClusterResult<()> {
    let deadline = Instant::now() + limit;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen on {addr} within {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl LocalCluster {
    /// Starts the API-server stand-in and prepares a temporary directory; Gangplank
    /// starts in [`Cluster::setup`].
    pub async fn new(bins: Binaries) -> ClusterResult<LocalCluster> {
        let dir = tempfile::Builder::new()
            .prefix("gangplank-e2e-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let api = ApiServer::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| format!("starting the API-server stand-in: {e}"))?;
        api.write_kubeconfig(&dir.path().join("kubeconfig"))
            .map_err(|e| format!("writing the kubeconfig: {e}"))?;
        Ok(LocalCluster {
            bins,
            api,
            proxy: None,
            controller: None,
            http: free_port()?,
            https: free_port()?,
            metrics: free_port()?,
            controller_listen: free_port()?,
            echo_port: free_port()?.port(),
            next_host: 2,
            namespace: String::new(),
            services: BTreeMap::new(),
            path: dir.path().to_owned(),
            dir: Some(dir),
        })
    }

    fn socket(&self) -> PathBuf {
        self.path.join("admin.sock")
    }

    fn log(&self, name: &str) -> PathBuf {
        self.path.join(format!("{name}.log"))
    }

    fn api_apply(&self, object: Value) -> ClusterResult<()> {
        let what = format!(
            "{}/{}",
            object.get("kind").and_then(Value::as_str).unwrap_or("?"),
            object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
        );
        self.api
            .apply(object)
            .map(|_| ())
            .map_err(|e| ClusterError::Failed(format!("applying {what}: {e}")))
    }

    /// Writes `object` as a scenario's `apply` does: created, or replaced as a whole
    /// (status kept), so fields left out of the manifest go away, as they do with
    /// `kubectl apply`.
    fn api_put(&self, object: Value) -> ClusterResult<()> {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("?");
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let what = format!("{kind}/{name}");
        let exists = api_version(kind)
            .and_then(|v| self.api.get(v, kind, namespace, name))
            .is_some();
        let result = if exists {
            self.api.replace(object)
        } else {
            self.api.create(object)
        };
        result
            .map(|_| ())
            .map_err(|e| ClusterError::Failed(format!("applying {what}: {e}")))
    }

    async fn start_proxy(&mut self) -> ClusterResult<()> {
        let mut command = Command::new(&self.bins.gangplank);
        command
            .arg("proxy")
            .arg("--enable-ssl-passthrough")
            .arg("--http-listen")
            .arg(self.http.to_string())
            .arg("--https-listen")
            .arg(self.https.to_string())
            .arg("--metrics-listen")
            .arg(self.metrics.to_string())
            .arg("--admin-socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.path.join("state"))
            .args([
                "--workers",
                "2",
                "--shutdown-grace",
                "1",
                "--log-format",
                "text",
            ])
            .args(["--access-log", "true"]);
        let access_log = self.log("proxy-access");
        self.proxy = Some(Proc::spawn(
            command,
            "proxy",
            &self.log("proxy"),
            Some(&access_log),
        )?);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                break;
            }
            if let Some(status) = self.proxy.as_mut().and_then(Proc::exited) {
                return Err(format!("the proxy exited ({status}); see its log below").into());
            }
            if Instant::now() > deadline {
                return Err("the proxy's admin socket did not appear within 15s"
                    .to_owned()
                    .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        wait_port(self.http, Duration::from_secs(10), "the proxy").await
    }

    async fn start_controller(&mut self) -> ClusterResult<()> {
        let mut command = Command::new(&self.bins.gangplank);
        command
            .arg("controller")
            .arg("--kubeconfig")
            .arg(self.path.join("kubeconfig"))
            .arg("--admin-socket")
            .arg(self.socket())
            .arg("--listen")
            .arg(self.controller_listen.to_string())
            .args(["--ingress-class", INGRESS_CLASS])
            .args(["--controller-class", CONTROLLER_CLASS])
            .arg("--configmap")
            .arg(format!("{SYSTEM_NAMESPACE}/{CONFIG_MAP}"))
            .args(["--publish-status-address", PUBLISHED_ADDRESS])
            .args(["--election-id", "gangplank-leader", "--log-format", "text"])
            .env("POD_NAME", "gangplank-local-0")
            .env("POD_NAMESPACE", SYSTEM_NAMESPACE);
        self.controller = Some(Proc::spawn(
            command,
            "controller",
            &self.log("controller"),
            None,
        )?);
        // Ready: /healthz answers 200 once the proxy accepted the controller's snapshot.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(200) = client::get_status(self.controller_listen, "/healthz").await {
                return Ok(());
            }
            if let Some(status) = self.controller.as_mut().and_then(Proc::exited) {
                return Err(format!("the controller exited ({status}); see its log below").into());
            }
            if Instant::now() > deadline {
                return Err("the controller was not ready (healthz 200) within 20s"
                    .to_owned()
                    .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn start_replica(&mut self, service: &str) -> ClusterResult<()> {
        if self.next_host == u8::MAX {
            return Err("out of loopback addresses (253 replicas per scenario)"
                .to_owned()
                .into());
        }
        let ip = Ipv4Addr::new(127, 0, 0, self.next_host);
        self.next_host += 1;
        let addr = SocketAddr::V4(SocketAddrV4::new(ip, self.echo_port));
        let replicas = self.services.entry(service.to_owned()).or_default();
        let index = replicas.next_index;
        replicas.next_index += 1;
        let instance = format!("{}/{service}/{index}", self.namespace);
        let mut command = Command::new(&self.bins.echo);
        if let Some((cert, key)) = &replicas.tls {
            command
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
        }
        command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--instance")
            .arg(&instance)
            .env("POD_NAME", format!("{service}-{index}"))
            .env("POD_NAMESPACE", &self.namespace)
            .env("SERVICE_NAME", service);
        let log = self.log(&format!("echo-{service}-{index}"));
        let mut proc = Proc::spawn(command, &instance, &log, None)?;
        if let Err(e) = wait_port(addr, Duration::from_secs(10), &instance).await {
            let status = proc.exited().unwrap_or_else(|| "running".to_owned());
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{e} ({status}): {}", tail(&output, 5)).into());
        }
        self.services
            .entry(service.to_owned())
            .or_default()
            .live
            .push(Replica { addr, proc });
        Ok(())
    }

    /// Writes the Service's EndpointSlice from `addresses`.
    fn write_slice(&self, service: &str, addresses: &[SocketAddr]) -> ClusterResult<()> {
        let endpoints: Vec<Value> = addresses
            .iter()
            .map(|a| {
                json!({
                    "addresses": [a.ip().to_string()],
                    "conditions": {"ready": true, "serving": true, "terminating": false}
                })
            })
            .collect();
        self.api_apply(json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{service}-e2e"),
                "namespace": self.namespace,
                "labels": {
                    "kubernetes.io/service-name": service,
                    "endpointslice.kubernetes.io/managed-by": "e2e.gangplank.io"
                }
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": self.echo_port, "protocol": "TCP"}],
            "endpoints": endpoints
        }))
    }

    fn addresses(&self, service: &str) -> Vec<SocketAddr> {
        self.services
            .get(service)
            .map(|r| r.live.iter().map(|x| x.addr).collect())
            .unwrap_or_default()
    }

    /// Waits until every proxy backend of `service` has exactly `expected` as its
    /// endpoints (no backend of it: nothing to wait for).
    async fn wait_applied(&self, service: &str, expected: &[SocketAddr]) -> ClusterResult<()> {
        if self.proxy.is_none() {
            return Ok(());
        }
        let expected: BTreeSet<String> = expected.iter().map(ToString::to_string).collect();
        let names = [
            format!("{}-{service}-http", self.namespace),
            format!("{}-{service}-80", self.namespace),
        ];
        let limit = Duration::from_secs(20);
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        loop {
            match client::admin_get(&self.socket(), "/configuration/backends").await {
                Ok(body) => {
                    let backends: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
                    let mut all_match = true;
                    for backend in &backends {
                        let name = backend.get("name").and_then(Value::as_str).unwrap_or("");
                        if !names.iter().any(|n| n == name) {
                            continue;
                        }
                        let got: BTreeSet<String> = backend
                            .get("endpoints")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .map(|e| {
                                format!(
                                    "{}:{}",
                                    e.get("address").and_then(Value::as_str).unwrap_or(""),
                                    e.get("port").and_then(Value::as_str).unwrap_or("")
                                )
                            })
                            .collect();
                        if got != expected {
                            all_match = false;
                            last = format!("backend {name} has {got:?}, want {expected:?}");
                        }
                    }
                    if all_match {
                        return Ok(());
                    }
                }
                Err(e) => last = e,
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the proxy did not get the endpoints of {service} within {limit:?}: {last}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops replicas that are out of the slice and out of the proxy.
    async fn retire(&mut self, retired: Vec<Replica>) {
        // In-flight requests finish first, as a Pod's termination grace allows.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for mut replica in retired {
            replica.proc.terminate(Duration::from_secs(2)).await;
        }
    }

    fn take_replicas(&mut self, service: &str, keep: usize) -> Vec<Replica> {
        match self.services.get_mut(service) {
            Some(r) if r.live.len() > keep => r.live.split_off(keep),
            _ => Vec::new(),
        }
    }
}

impl Cluster for LocalCluster {
    fn driver(&self) -> &'static str {
        "local"
    }

    async fn setup(
        &mut self,
        namespace: &str,
        services: &[ServiceSpec],
        objects: Vec<Value>,
    ) -> ClusterResult<()> {
        self.namespace = namespace.to_owned();
        for ns in [SYSTEM_NAMESPACE, namespace] {
            self.api_apply(json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
            }))?;
        }
        self.api_apply(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": INGRESS_CLASS},
            "spec": {"controller": CONTROLLER_CLASS}
        }))?;
        self.api_apply(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIG_MAP, "namespace": SYSTEM_NAMESPACE},
            "data": {}
        }))?;
        for spec in services {
            self.api_apply(service_object(namespace, &spec.name))?;
            let tls = match &spec.tls_cert {
                Some(cert) => {
                    let files = (
                        self.path.join(format!("{}-tls.crt", spec.name)),
                        self.path.join(format!("{}-tls.key", spec.name)),
                    );
                    std::fs::write(&files.0, &cert.cert_pem)
                        .and_then(|()| std::fs::write(&files.1, &cert.key_pem))
                        .map_err(|e| format!("writing the TLS files of {}: {e}", spec.name))?;
                    Some(files)
                }
                None => None,
            };
            self.services.entry(spec.name.clone()).or_default().tls = tls;
            for _ in 0..spec.replicas {
                self.start_replica(&spec.name).await?;
            }
            self.write_slice(&spec.name, &self.addresses(&spec.name))?;
        }
        for object in objects {
            self.api_put(object)?;
        }
        self.start_proxy().await?;
        self.start_controller().await
    }

    async fn apply(&mut self, objects: Vec<Value>) -> ClusterResult<()> {
        for object in objects {
            self.api_put(object)?;
        }
        Ok(())
    }

    async fn delete(&mut self, object: &ObjectRef) -> ClusterResult<()> {
        let version =
            api_version(&object.kind).ok_or_else(|| format!("unknown kind {}", object.kind))?;
        let ns = object.namespace.as_deref().unwrap_or(&self.namespace);
        match self.api.delete(version, &object.kind, ns, &object.name) {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(format!("deleting {object}: {e}").into()),
        }
    }

    async fn get(&mut self, object: &ObjectRef) -> ClusterResult<Option<Value>> {
        let version =
            api_version(&object.kind).ok_or_else(|| format!("unknown kind {}", object.kind))?;
        let ns = object.namespace.as_deref().unwrap_or(&self.namespace);
        Ok(self.api.get(version, &object.kind, ns, &object.name))
    }

    async fn scale(&mut self, service: &str, replicas: usize) -> ClusterResult<()> {
        let current = self.addresses(service).len();
        if replicas >= current {
            for _ in current..replicas {
                self.start_replica(service).await?;
            }
            let all = self.addresses(service);
            self.write_slice(service, &all)?;
            return self.wait_applied(service, &all).await;
        }
        let keep: Vec<SocketAddr> = self.addresses(service)[..replicas].to_vec();
        self.write_slice(service, &keep)?;
        let applied = self.wait_applied(service, &keep).await;
        let retired = self.take_replicas(service, replicas);
        self.retire(retired).await;
        applied
    }

    async fn rollout(&mut self, service: &str) -> ClusterResult<()> {
        let old = self.addresses(service).len();
        for _ in 0..old {
            // Surge one new replica, then retire the oldest.
            self.start_replica(service).await?;
            let all = self.addresses(service);
            self.write_slice(service, &all)?;
            self.wait_applied(service, &all).await?;
            let remaining = all[1..].to_vec();
            self.write_slice(service, &remaining)?;
            self.wait_applied(service, &remaining).await?;
            let oldest = match self.services.get_mut(service) {
                Some(r) if !r.live.is_empty() => vec![r.live.remove(0)],
                _ => Vec::new(),
            };
            self.retire(oldest).await;
        }
        Ok(())
    }

    async fn crash(&mut self, service: &str, replicas: usize) -> ClusterResult<()> {
        // SIGKILL; the EndpointSlice still lists them until the next scale or rollout.
        let killed: Vec<Replica> = match self.services.get_mut(service) {
            Some(r) => {
                let n = replicas.min(r.live.len());
                r.live.drain(..n).collect()
            }
            None => Vec::new(),
        };
        if killed.len() < replicas {
            return Err(format!("{service} has only {} replicas", killed.len()).into());
        }
        drop(killed);
        Ok(())
    }

    async fn stop(&mut self, component: Component) -> ClusterResult<()> {
        let proc = match component {
            Component::Proxy => self.proxy.take(),
            Component::Controller => self.controller.take(),
        };
        if let Some(mut proc) = proc {
            proc.terminate(Duration::from_secs(5)).await;
        }
        Ok(())
    }

    async fn start(&mut self, component: Component) -> ClusterResult<()> {
        match component {
            Component::Proxy if self.proxy.is_none() => self.start_proxy().await,
            Component::Controller if self.controller.is_none() => self.start_controller().await,
            _ => Err(format!("the {component} is already running").into()),
        }
    }

    async fn restart(&mut self, component: Component) -> ClusterResult<()> {
        self.stop(component).await?;
        self.start(component).await
    }

    async fn fault(&mut self, fault: &Fault) -> ClusterResult<()> {
        let faults = self.api.faults();
        match fault {
            Fault::DropWatches => faults.drop_watches(),
            Fault::ExpireResourceVersions => {
                faults.expire_resource_versions();
                faults.drop_watches();
            }
            Fault::Latency(d) => faults.set_latency(*d),
            Fault::ErrorRate(r) => faults.set_error_rate(*r),
            Fault::Reset => faults.reset(),
        }
        Ok(())
    }

    async fn patch_config_map(
        &mut self,
        data: &BTreeMap<String, Option<String>>,
    ) -> ClusterResult<()> {
        // A merge patch: null removes a key.
        self.api_apply(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIG_MAP, "namespace": SYSTEM_NAMESPACE},
            "data": data
        }))
    }

    fn proxy_addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.http, self.https)
    }

    fn published_addresses(&self) -> Option<Vec<String>> {
        Some(vec![PUBLISHED_ADDRESS.to_owned()])
    }

    async fn conf(&mut self) -> ClusterResult<String> {
        let mut command = Command::new(&self.bins.gangplank);
        command
            .arg("ctl")
            .arg("--admin-socket")
            .arg(self.socket())
            .arg("conf");
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .map_err(|e| format!("gangplank ctl conf: {e}"))?
            .map_err(|e| format!("gangplank ctl conf: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "gangplank ctl conf: {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into())
        }
    }

    async fn diagnostics(&mut self) -> String {
        let mut out = format!(
            "--- logs in {} (kept with GANGPLANK_E2E_KEEP=1) ---\n",
            self.path.display()
        );
        for (name, lines) in [("controller", 40), ("proxy", 30), ("proxy-access", 10)] {
            let text = std::fs::read_to_string(self.log(name)).unwrap_or_default();
            out.push_str(&format!("--- {name} log (last {lines} lines) ---\n"));
            out.push_str(&tail(&text, lines));
        }
        out.push_str("--- gangplank ctl conf ---\n");
        match self.conf().await {
            Ok(conf) => {
                let lines: Vec<&str> = conf.lines().collect();
                for line in lines.iter().take(250) {
                    out.push_str(line);
                    out.push('\n');
                }
                if lines.len() > 250 {
                    out.push_str(&format!("[… {} more lines]\n", lines.len() - 250));
                }
            }
            Err(e) => out.push_str(&format!("{e}\n")),
        }
        out
    }

    async fn teardown(&mut self) {
        let keep = std::env::var("GANGPLANK_E2E_KEEP")
            .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        if keep && let Some(dir) = self.dir.take() {
            eprintln!("e2e: kept {}", dir.keep().display());
        }
        if let Some(mut c) = self.controller.take() {
            c.terminate(Duration::from_secs(2)).await;
        }
        if let Some(mut p) = self.proxy.take() {
            p.terminate(Duration::from_secs(2)).await;
        }
        // Echo processes are killed when dropped.
        self.services.clear();
    }
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("dir", &self.path)
            .field("http", &self.http)
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}
