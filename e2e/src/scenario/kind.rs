//! The `kind` driver: a real cluster through `kubectl` (its current context), with
//! Gangplank already installed by the Helm chart (`.github/workflows/e2e-kind.yml`
//! does that) and reachable from this machine.
//!
//! Configuration, from the environment:
//! - `GANGPLANK_E2E_NAMESPACE` (default `gangplank`) and `GANGPLANK_E2E_RELEASE`
//!   (default `gangplank`): where the chart is installed. The Deployment, the
//!   ConfigMap (`--configmap`) and the Pods are found from them as the chart names
//!   them (`<release>` when it contains "gangplank", else `<release>-gangplank`).
//! - `GANGPLANK_E2E_HTTP_URL`, `GANGPLANK_E2E_HTTPS_URL` (default `http://127.0.0.1`,
//!   `https://127.0.0.1`): where the proxy answers.
//! - `GANGPLANK_E2E_ECHO_IMAGE` (default `ghcr.io/gangplank-ingress/gangplank-echo:ci`,
//!   built from `e2e/Dockerfile.echo` and loaded with `kind load`): the echo Pods.
//! - `GANGPLANK_E2E_DEBUG_IMAGE` (default `busybox:1.36`): the ephemeral container that
//!   restarts a Gangplank container (`kill 1` in its process namespace; the Gangplank
//!   image has no shell).
//!
//! Each scenario gets its own namespace; echo Services are Deployments of the echo
//! image (readiness probe, `preStop` sleep, surge-before-remove rollouts), so the
//! EndpointSlices come from the cluster's own controllers. Teardown deletes the
//! scenario's Ingresses (waiting), its cluster-scoped objects, restores the ConfigMap
//! and deletes the namespace (not waiting).
//!
//! Not possible here, and reported as unsupported (the scenario is skipped): stopping
//! a component without restarting it, and API-server faults.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cluster::{
    Cluster, ClusterError, ClusterResult, ECHO_POD_PORT, SERVICE_LABEL, is_namespaced,
    service_object, tail,
};
use super::schema::{Component, Fault, ObjectRef, ServiceSpec};

const DRIVER: &str = "kind";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// `http://host[:port][/]` -> a socket address.
fn parse_url(url: &str) -> Result<SocketAddr, String> {
    let (rest, port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, 80)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, 443)
    } else {
        return Err(format!("{url:?} is not an http(s) URL"));
    };
    let host = rest.trim_end_matches('/');
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !host.ends_with(']')
    {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))
}

/// Runs kubectl; its standard output, or an error with its standard error.
async fn kubectl(args: Vec<String>, stdin: Option<String>) -> ClusterResult<String> {
    let shown = args.join(" ");
    let result = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("kubectl");
        command
            .args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())?;
        }
        child.wait_with_output()
    })
    .await
    .map_err(|e| format!("kubectl {shown}: {e}"))?
    .map_err(|e| format!("kubectl {shown}: {e}"))?;
    if result.status.success() {
        Ok(String::from_utf8_lossy(&result.stdout).into_owned())
    } else {
        Err(ClusterError::Failed(format!(
            "kubectl {shown}: {}: {}",
            result.status,
            String::from_utf8_lossy(&result.stderr).trim()
        )))
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The kind driver. See the module docs.
#[derive(Debug)]
pub struct KindCluster {
    system_namespace: String,
    release: String,
    fullname: String,
    http: SocketAddr,
    https: SocketAddr,
    echo_image: String,
    debug_image: String,
    namespace: String,
    cluster_scoped: Vec<ObjectRef>,
    config_map_before: Option<BTreeMap<String, String>>,
    config_map_keys: Vec<String>,
    restarts: usize,
}

impl KindCluster {
    /// Reads the configuration from the environment and checks that kubectl reaches
    /// the cluster.
    pub async fn new() -> ClusterResult<KindCluster> {
        let release = env_or("GANGPLANK_E2E_RELEASE", "gangplank");
        let fullname = if release.contains("gangplank") {
            release.clone()
        } else {
            format!("{release}-gangplank")
        };
        let cluster = KindCluster {
            system_namespace: env_or("GANGPLANK_E2E_NAMESPACE", "gangplank"),
            fullname,
            release,
            http: parse_url(&env_or("GANGPLANK_E2E_HTTP_URL", "http://127.0.0.1"))?,
            https: parse_url(&env_or("GANGPLANK_E2E_HTTPS_URL", "https://127.0.0.1"))?,
            echo_image: env_or(
                "GANGPLANK_E2E_ECHO_IMAGE",
                "ghcr.io/gangplank-ingress/gangplank-echo:ci",
            ),
            debug_image: env_or("GANGPLANK_E2E_DEBUG_IMAGE", "busybox:1.36"),
            namespace: String::new(),
            cluster_scoped: Vec::new(),
            config_map_before: None,
            config_map_keys: Vec::new(),
            restarts: 0,
        };
        kubectl(
            strings(&[
                "-n",
                &cluster.system_namespace,
                "get",
                "deployment",
                &cluster.fullname,
            ]),
            None,
        )
        .await
        .map_err(|e| format!("the Gangplank release is not reachable: {e}"))?;
        Ok(cluster)
    }

    fn deployment(&self, name: &str, replicas: usize) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {SERVICE_LABEL: name}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": {SERVICE_LABEL: name}},
                    "spec": {
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532},
                        "containers": [{
                            "name": "echo",
                            "image": self.echo_image,
                            "imagePullPolicy": "Never",
                            "args": ["--listen", format!("0.0.0.0:{ECHO_POD_PORT}")],
                            "env": [
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "SERVICE_NAME", "value": name}
                            ],
                            "ports": [{"name": "http", "containerPort": ECHO_POD_PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": ECHO_POD_PORT},
                                "periodSeconds": 1
                            },
                            // Keep serving while the endpoint removal reaches the proxy.
                            "lifecycle": {"preStop": {"sleep": {"seconds": 3}}},
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}
                            }
                        }]
                    }
                }
            }
        })
    }

    async fn kubectl_apply(&mut self, objects: Vec<Value>) -> ClusterResult<()> {
        for object in &objects {
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            if !is_namespaced(kind) {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let reference = ObjectRef {
                    kind: kind.to_owned(),
                    namespace: None,
                    name: name.to_owned(),
                };
                if kind != "Namespace" && !self.cluster_scoped.contains(&reference) {
                    self.cluster_scoped.push(reference);
                }
            }
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        kubectl(strings(&["apply", "-f", "-"]), Some(list.to_string())).await?;
        Ok(())
    }

    async fn rollout_status(&self, name: &str) -> ClusterResult<()> {
        kubectl(
            strings(&[
                "-n",
                &self.namespace,
                "rollout",
                "status",
                &format!("deployment/{name}"),
                "--timeout=180s",
            ]),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn gangplank_pod(&self) -> ClusterResult<String> {
        let selector = format!(
            "app.kubernetes.io/instance={},app.kubernetes.io/component=controller",
            self.release
        );
        let name = kubectl(
            strings(&[
                "-n",
                &self.system_namespace,
                "get",
                "pods",
                "-l",
                &selector,
                "--field-selector=status.phase=Running",
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ]),
            None,
        )
        .await?;
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err("no running Gangplank Pod".to_owned().into());
        }
        Ok(name)
    }

    async fn restart_count(&self, pod: &str, container: &str) -> ClusterResult<u64> {
        let out = kubectl(
            strings(&[
                "-n",
                &self.system_namespace,
                "get",
                "pod",
                pod,
                "-o",
                &format!(
                    "jsonpath={{.status.containerStatuses[?(@.name==\"{container}\")].restartCount}}"
                ),
            ]),
            None,
        )
        .await?;
        Ok(out.trim().parse().unwrap_or(0))
    }

    fn exec_ctl(&self, args: &[&str]) -> Vec<String> {
        let mut all = strings(&[
            "-n",
            &self.system_namespace,
            "exec",
            &format!("deployment/{}", self.fullname),
            "-c",
            "proxy",
            "--",
            "/usr/local/bin/gangplank",
            "ctl",
        ]);
        all.extend(args.iter().map(|s| (*s).to_owned()));
        all
    }
}

impl Cluster for KindCluster {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    fn slowness(&self) -> u32 {
        4
    }

    async fn setup(
        &mut self,
        namespace: &str,
        services: &[ServiceSpec],
        objects: Vec<Value>,
    ) -> ClusterResult<()> {
        if let Some(spec) = services.iter().find(|s| s.tls.is_some()) {
            return Err(ClusterError::Unsupported {
                driver: "kind",
                what: format!(
                    "TLS echo replicas (service {:?}); the echo image has no TLS mode yet",
                    spec.name
                ),
            });
        }
        self.namespace = namespace.to_owned();
        self.kubectl_apply(vec![json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}
        })])
        .await?;
        let mut echo_objects = Vec::new();
        for spec in services {
            echo_objects.push(service_object(namespace, &spec.name));
            echo_objects.push(self.deployment(&spec.name, spec.replicas));
        }
        if !echo_objects.is_empty() {
            self.kubectl_apply(echo_objects).await?;
        }
        for spec in services {
            self.rollout_status(&spec.name).await?;
        }
        if !objects.is_empty() {
            self.kubectl_apply(objects).await?;
        }
        Ok(())
    }

    async fn apply(&mut self, objects: Vec<Value>) -> ClusterResult<()> {
        self.kubectl_apply(objects).await
    }

    async fn delete(&mut self, object: &ObjectRef) -> ClusterResult<()> {
        let mut args = strings(&["delete", &object.kind, &object.name, "--ignore-not-found"]);
        if is_namespaced(&object.kind) {
            args.extend(strings(&[
                "-n",
                object.namespace.as_deref().unwrap_or(&self.namespace),
            ]));
        }
        kubectl(args, None).await.map(|_| ())
    }

    async fn get(&mut self, object: &ObjectRef) -> ClusterResult<Option<Value>> {
        let mut args = strings(&[
            "get",
            &object.kind,
            &object.name,
            "-o",
            "json",
            "--ignore-not-found",
        ]);
        if is_namespaced(&object.kind) {
            args.extend(strings(&[
                "-n",
                object.namespace.as_deref().unwrap_or(&self.namespace),
            ]));
        }
        let out = kubectl(args, None).await?;
        if out.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&out)
            .map(Some)
            .map_err(|e| ClusterError::Failed(format!("kubectl get {object}: {e}")))
    }

    async fn scale(&mut self, service: &str, replicas: usize) -> ClusterResult<()> {
        kubectl(
            strings(&[
                "-n",
                &self.namespace,
                "scale",
                &format!("deployment/{service}"),
                &format!("--replicas={replicas}"),
            ]),
            None,
        )
        .await?;
        self.rollout_status(service).await
    }

    async fn rollout(&mut self, service: &str) -> ClusterResult<()> {
        kubectl(
            strings(&[
                "-n",
                &self.namespace,
                "rollout",
                "restart",
                &format!("deployment/{service}"),
            ]),
            None,
        )
        .await?;
        self.rollout_status(service).await
    }

    async fn crash(&mut self, service: &str, replicas: usize) -> ClusterResult<()> {
        let names = kubectl(
            strings(&[
                "-n",
                &self.namespace,
                "get",
                "pods",
                "-l",
                &format!("{SERVICE_LABEL}={service}"),
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ]),
            None,
        )
        .await?;
        let pods: Vec<&str> = names.split_whitespace().take(replicas).collect();
        if pods.len() < replicas {
            return Err(format!("{service} has only {} Pods", pods.len()).into());
        }
        let mut args = strings(&["-n", &self.namespace, "delete", "pod"]);
        args.extend(pods.iter().map(|p| (*p).to_owned()));
        args.extend(strings(&["--grace-period=0", "--force", "--wait=false"]));
        kubectl(args, None).await.map(|_| ())
    }

    async fn stop(&mut self, component: Component) -> ClusterResult<()> {
        Err(ClusterError::Unsupported {
            driver: DRIVER,
            what: format!("stopping the {component} alone (the kubelet restarts it)"),
        })
    }

    async fn start(&mut self, component: Component) -> ClusterResult<()> {
        Err(ClusterError::Unsupported {
            driver: DRIVER,
            what: format!("starting the {component}"),
        })
    }

    async fn restart(&mut self, component: Component) -> ClusterResult<()> {
        let pod = self.gangplank_pod().await?;
        let container = component.to_string();
        let before = self.restart_count(&pod, &container).await?;
        self.restarts += 1;
        // An ephemeral container in the target's process namespace ends its PID 1 with
        // SIGTERM; the kubelet starts the container again (restartPolicy Always).
        kubectl(
            strings(&[
                "-n",
                &self.system_namespace,
                "debug",
                &format!("pod/{pod}"),
                &format!("--image={}", self.debug_image),
                &format!("--target={container}"),
                "--profile=general",
                "-c",
                &format!("e2e-restart-{}", self.restarts),
                "--",
                "kill",
                "1",
            ]),
            None,
        )
        .await?;
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.restart_count(&pod, &container).await? <= before {
            if Instant::now() > deadline {
                return Err(format!("the {container} container of {pod} did not restart").into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        kubectl(
            strings(&[
                "-n",
                &self.system_namespace,
                "wait",
                "--for=condition=Ready",
                &format!("pod/{pod}"),
                "--timeout=120s",
            ]),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn fault(&mut self, fault: &Fault) -> ClusterResult<()> {
        Err(ClusterError::Unsupported {
            driver: DRIVER,
            what: format!("API-server fault {fault:?}"),
        })
    }

    async fn patch_config_map(
        &mut self,
        data: &BTreeMap<String, Option<String>>,
    ) -> ClusterResult<()> {
        if self.config_map_before.is_none() {
            let out = kubectl(
                strings(&[
                    "-n",
                    &self.system_namespace,
                    "get",
                    "configmap",
                    &self.fullname,
                    "-o",
                    "json",
                ]),
                None,
            )
            .await?;
            let object: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
            let before = object
                .get("data")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            self.config_map_before = Some(before);
        }
        self.config_map_keys.extend(data.keys().cloned());
        let patch = json!({ "data": data });
        kubectl(
            strings(&[
                "-n",
                &self.system_namespace,
                "patch",
                "configmap",
                &self.fullname,
                "--type",
                "merge",
                "-p",
                &patch.to_string(),
            ]),
            None,
        )
        .await
        .map(|_| ())
    }

    fn proxy_addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.http, self.https)
    }

    fn published_addresses(&self) -> Option<Vec<String>> {
        None
    }

    async fn conf(&mut self) -> ClusterResult<String> {
        kubectl(self.exec_ctl(&["conf"]), None).await
    }

    async fn diagnostics(&mut self) -> String {
        let mut out = String::new();
        for (container, lines) in [("controller", 40), ("proxy", 30)] {
            out.push_str(&format!("--- {container} log (last {lines} lines) ---\n"));
            let logs = kubectl(
                strings(&[
                    "-n",
                    &self.system_namespace,
                    "logs",
                    &format!("deployment/{}", self.fullname),
                    "-c",
                    container,
                    &format!("--tail={lines}"),
                ]),
                None,
            )
            .await;
            match logs {
                Ok(text) => out.push_str(&text),
                Err(e) => out.push_str(&format!("{e}\n")),
            }
        }
        out.push_str("--- scenario objects ---\n");
        match kubectl(
            strings(&[
                "-n",
                &self.namespace,
                "get",
                "pods,services,endpointslices,ingresses",
                "-o",
                "wide",
            ]),
            None,
        )
        .await
        {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!("{e}\n")),
        }
        out.push_str("--- gangplank ctl conf ---\n");
        match self.conf().await {
            Ok(conf) => out.push_str(&tail(&conf, 250)),
            Err(e) => out.push_str(&format!("{e}\n")),
        }
        out
    }

    async fn teardown(&mut self) {
        let report = |r: ClusterResult<String>| {
            if let Err(e) = r {
                eprintln!("kind teardown: {e}");
            }
        };
        if !self.namespace.is_empty() {
            report(
                kubectl(
                    strings(&[
                        "-n",
                        &self.namespace,
                        "delete",
                        "ingresses",
                        "--all",
                        "--wait=true",
                        "--timeout=60s",
                    ]),
                    None,
                )
                .await,
            );
        }
        for object in std::mem::take(&mut self.cluster_scoped) {
            report(
                kubectl(
                    strings(&["delete", &object.kind, &object.name, "--ignore-not-found"]),
                    None,
                )
                .await,
            );
        }
        if let Some(before) = self.config_map_before.take() {
            let mut data: BTreeMap<String, Option<String>> = BTreeMap::new();
            for key in std::mem::take(&mut self.config_map_keys) {
                data.insert(key, None);
            }
            for (k, v) in before {
                data.insert(k, Some(v));
            }
            let patch = json!({ "data": data });
            report(
                kubectl(
                    strings(&[
                        "-n",
                        &self.system_namespace,
                        "patch",
                        "configmap",
                        &self.fullname,
                        "--type",
                        "merge",
                        "-p",
                        &patch.to_string(),
                    ]),
                    None,
                )
                .await,
            );
        }
        if !self.namespace.is_empty() {
            report(
                kubectl(
                    strings(&["delete", "namespace", &self.namespace, "--wait=false"]),
                    None,
                )
                .await,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_addresses() {
        assert_eq!(
            parse_url("http://127.0.0.1").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 80)))
        );
        assert_eq!(
            parse_url("https://127.0.0.1/").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 443)))
        );
        assert_eq!(
            parse_url("http://127.0.0.1:30080").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 30080)))
        );
        assert!(parse_url("ftp://x").is_err());
    }
}
