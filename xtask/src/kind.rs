//! The kind environment of `cargo xtask e2e --kind`: a real Kubernetes cluster in
//! Docker with Gangplank installed by its Helm chart, the way a user installs it.
//!
//! [`up`] needs `docker` (with a running daemon), `kind`, `kubectl` and `helm` on
//! `PATH` (`HELM` may name another helm), and then:
//! 1. creates the kind cluster `gangplank-e2e` (`GANGPLANK_E2E_CLUSTER` overrides the
//!    name) from `e2e/kind/kind-config.yaml`, or reuses it when it exists; its
//!    kubeconfig goes to `target/kind/<cluster>.kubeconfig`, so the user's
//!    `~/.kube/config` and current context are left alone;
//! 2. builds the Gangplank image (`ghcr.io/gangplank-ingress/gangplank:ci`, the root
//!    `Dockerfile`) and the echo image (`ghcr.io/gangplank-ingress/gangplank-echo:ci`,
//!    `e2e/Dockerfile.echo`) and loads both into the node (`kind load docker-image`);
//! 3. `helm upgrade --install gangplank charts/gangplank -n gangplank -f
//!    e2e/kind/values-kind.yaml`, with the image's id as a Pod annotation so a rebuilt
//!    `:ci` image rolls the Pods of a reused cluster;
//! 4. waits for the rollout and for the proxy to answer on the host's port 80 (kind
//!    maps the node ports 30080/30443 to the host's 80/443).
//!
//! It returns a [`KindEnv`]: what the suite's kind driver reads
//! (`gangplank_e2e::scenario::kind`), as environment variables from
//! [`KindEnv::vars`]. [`down`] deletes the cluster, unless `GANGPLANK_E2E_KEEP` is set
//! (to anything but `0` or `false`): then it is kept for a look, and reused by the
//! next run. A failing [`up`] leaves the cluster as it is, for the same reasons.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::tools;

/// The kind cluster's default name.
pub const CLUSTER: &str = "gangplank-e2e";
/// The namespace the chart is installed into.
pub const NAMESPACE: &str = "gangplank";
/// The Helm release (objects are named `gangplank`).
pub const RELEASE: &str = "gangplank";
/// The Gangplank image, as e2e/kind/values-kind.yaml expects it (tag `ci`, never pulled).
pub const IMAGE: &str = "ghcr.io/gangplank-ingress/gangplank:ci";
/// The echo image, as the suite's kind driver expects it by default.
pub const ECHO_IMAGE: &str = "ghcr.io/gangplank-ingress/gangplank-echo:ci";
/// Where the proxy answers from the host (kind-config.yaml's port mappings).
pub const HTTP_URL: &str = "http://127.0.0.1";
/// The same for HTTPS.
pub const HTTPS_URL: &str = "https://127.0.0.1";

const KIND_CONFIG: &str = "e2e/kind/kind-config.yaml";
const VALUES: &str = "e2e/kind/values-kind.yaml";
const ECHO_DOCKERFILE: &str = "e2e/Dockerfile.echo";
/// The annotation carrying the image id (a changed id rolls the Deployment).
const IMAGE_ID_ANNOTATION: &str = "e2e.gangplank.io/image-id";
/// How long the Deployment may take to become ready.
const ROLLOUT_TIMEOUT: &str = "300s";
/// How long the proxy may take to answer on the host port once ready.
const REACHABLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A cluster with Gangplank installed, ready for the suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindEnv {
    /// The kind cluster's name.
    pub cluster: String,
    /// Where the chart is installed.
    pub namespace: String,
    /// The Helm release.
    pub release: String,
    /// Where the proxy answers plain HTTP, from this machine.
    pub http_url: String,
    /// Where it answers HTTPS.
    pub https_url: String,
    /// The echo image loaded into the node.
    pub echo_image: String,
    /// The cluster's kubeconfig (for kubectl and helm: `KUBECONFIG`).
    pub kubeconfig: PathBuf,
}

impl KindEnv {
    /// The environment of the suite's process (`e2e --driver kind`): `KUBECONFIG` and
    /// the `GANGPLANK_E2E_*` variables of its kind driver.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("GANGPLANK_E2E_NAMESPACE", self.namespace.clone()),
            ("GANGPLANK_E2E_RELEASE", self.release.clone()),
            ("GANGPLANK_E2E_HTTP_URL", self.http_url.clone()),
            ("GANGPLANK_E2E_HTTPS_URL", self.https_url.clone()),
            ("GANGPLANK_E2E_ECHO_IMAGE", self.echo_image.clone()),
        ]
    }
}

/// The programs `up` runs.
struct Tools {
    docker: PathBuf,
    kind: PathBuf,
    kubectl: PathBuf,
    helm: PathBuf,
}

impl Tools {
    /// Every tool, or one error naming all the missing ones.
    fn find() -> Result<Tools, String> {
        let mut missing = Vec::new();
        let mut find = |name: &str, url: &str| {
            let found = tools::find_program(name);
            if found.is_none() {
                missing.push(format!("{name} ({url})"));
            }
            found.unwrap_or_default()
        };
        let docker = find("docker", "https://docs.docker.com/engine/install/");
        let kind = find(
            "kind",
            "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
        );
        let kubectl = find("kubectl", "https://kubernetes.io/docs/tasks/tools/");
        let helm = tools::helm()
            .map_err(|e| missing.push(e))
            .unwrap_or_default();
        if !missing.is_empty() {
            return Err(format!(
                "cargo xtask e2e --kind needs docker, kind, kubectl and helm; missing: {}",
                missing.join("; ")
            ));
        }
        Ok(Tools {
            docker,
            kind,
            kubectl,
            helm,
        })
    }
}

/// Creates or reuses the cluster, builds and loads the images, installs the chart and
/// waits until the proxy answers. See the module docs.
pub fn up() -> Result<KindEnv, String> {
    let tools = Tools::find()?;
    let root = tools::workspace_root()?;
    let mut info = Command::new(&tools.docker);
    info.args(["info", "--format", "{{.ServerVersion}}"]);
    tools::output(info)
        .map_err(|e| format!("docker is installed but its daemon does not answer: {e}"))?;

    let cluster = cluster_name(std::env::var("GANGPLANK_E2E_CLUSTER").ok().as_deref());
    let kubeconfig = tools::target_dir(&root)
        .join("kind")
        .join(format!("{cluster}.kubeconfig"));
    if let Some(dir) = kubeconfig.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }

    // 1. The cluster.
    let mut get = Command::new(&tools.kind);
    get.args(["get", "clusters"]);
    if cluster_exists(&tools::output(get)?, &cluster) {
        eprintln!("xtask: reusing the kind cluster {cluster}");
    } else {
        let mut create = Command::new(&tools.kind);
        create
            .current_dir(&root)
            .args([
                "create",
                "cluster",
                "--name",
                &cluster,
                "--config",
                KIND_CONFIG,
            ])
            .args(["--wait", "120s", "--kubeconfig"])
            .arg(&kubeconfig);
        crate::run(create)?;
    }
    let mut get_kubeconfig = Command::new(&tools.kind);
    get_kubeconfig.args(["get", "kubeconfig", "--name", &cluster]);
    let config = tools::output(get_kubeconfig)?;
    std::fs::write(&kubeconfig, config)
        .map_err(|e| format!("writing {}: {e}", kubeconfig.display()))?;
    let hint = format!(
        "the kind cluster {cluster} is kept (KUBECONFIG={}); rerun to reuse it, or \
         `kind delete cluster --name {cluster}`",
        kubeconfig.display()
    );
    install(&tools, &root, &cluster, &kubeconfig).map_err(|e| format!("{e}\n{hint}"))?;

    Ok(KindEnv {
        cluster,
        namespace: NAMESPACE.to_owned(),
        release: RELEASE.to_owned(),
        http_url: HTTP_URL.to_owned(),
        https_url: HTTPS_URL.to_owned(),
        echo_image: ECHO_IMAGE.to_owned(),
        kubeconfig,
    })
}

/// Steps 2 to 4 of the module docs, on an existing cluster.
fn install(tools: &Tools, root: &Path, cluster: &str, kubeconfig: &Path) -> Result<(), String> {
    // 2. The images (the context of both is the workspace root).
    for args in image_builds() {
        let mut build = Command::new(&tools.docker);
        build
            .current_dir(root)
            .env("DOCKER_BUILDKIT", "1")
            .args(args);
        crate::run(build)?;
    }
    let mut load = Command::new(&tools.kind);
    load.args(["load", "docker-image", IMAGE, ECHO_IMAGE, "--name", cluster]);
    crate::run(load)?;
    let mut inspect = Command::new(&tools.docker);
    inspect.args(["image", "inspect", "--format", "{{.Id}}", IMAGE]);
    let image_id = tools::output(inspect)?.trim().to_owned();

    // 3. The chart.
    let mut helm = Command::new(&tools.helm);
    helm.current_dir(root)
        .env("KUBECONFIG", kubeconfig)
        .args(helm_install_args(&image_id));
    crate::run(helm)?;

    // 4. Ready, and reachable from here.
    let deployment = format!("deployment/{}", fullname(RELEASE));
    let mut rollout = Command::new(&tools.kubectl);
    rollout.env("KUBECONFIG", kubeconfig).args([
        "-n",
        NAMESPACE,
        "rollout",
        "status",
        &deployment,
        "--timeout",
        ROLLOUT_TIMEOUT,
    ]);
    if let Err(e) = crate::run(rollout) {
        let mut pods = Command::new(&tools.kubectl);
        pods.env("KUBECONFIG", kubeconfig).args([
            "-n",
            NAMESPACE,
            "get",
            "pods,events",
            "-o",
            "wide",
        ]);
        let state = tools::output(pods).unwrap_or_else(|e| e);
        return Err(format!("{e}\n{state}"));
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], 80));
    wait_reachable(addr, REACHABLE_TIMEOUT).map_err(|e| {
        format!(
            "{e}: the proxy is ready but {HTTP_URL} does not answer (is the host's port 80 \
             taken? e2e/kind/kind-config.yaml maps the node port 30080 to it)"
        )
    })?;
    eprintln!(
        "xtask: Gangplank is installed in the kind cluster {cluster} and answers on {HTTP_URL}"
    );
    Ok(())
}

/// Deletes the cluster of `env`, unless `GANGPLANK_E2E_KEEP` asks to keep it.
pub fn down(env: KindEnv) -> Result<(), String> {
    if keep_requested(std::env::var("GANGPLANK_E2E_KEEP").ok().as_deref()) {
        eprintln!(
            "xtask: GANGPLANK_E2E_KEEP is set: keeping the kind cluster {} \
             (KUBECONFIG={}; `kind delete cluster --name {}` removes it)",
            env.cluster,
            env.kubeconfig.display(),
            env.cluster
        );
        return Ok(());
    }
    teardown(&env.cluster)?;
    let _ = std::fs::remove_file(&env.kubeconfig);
    Ok(())
}

/// `kind delete cluster --name <cluster>` (a missing cluster is not an error: kind
/// says so and succeeds).
pub fn teardown(cluster: &str) -> Result<(), String> {
    let kind = tools::find_program("kind").ok_or("kind is not on PATH")?;
    let mut delete = Command::new(kind);
    delete.args(["delete", "cluster", "--name", cluster]);
    crate::run(delete)
}

/// The cluster name: `GANGPLANK_E2E_CLUSTER` when set and not empty.
fn cluster_name(from_env: Option<&str>) -> String {
    from_env
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or(CLUSTER)
        .to_owned()
}

/// Whether `kind get clusters` lists `name`.
fn cluster_exists(kind_get_clusters: &str, name: &str) -> bool {
    kind_get_clusters.lines().any(|line| line.trim() == name)
}

/// `GANGPLANK_E2E_KEEP`: set, and not empty, `0` or `false`.
fn keep_requested(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// The chart's object names: `<release>` when it contains "gangplank", else
/// `<release>-gangplank` (charts/gangplank/templates/_helpers.tpl).
fn fullname(release: &str) -> String {
    if release.contains("gangplank") {
        release.to_owned()
    } else {
        format!("{release}-gangplank")
    }
}

/// `docker build` arguments of the two images: Gangplank (the root `Dockerfile`),
/// then the echo upstream (`e2e/Dockerfile.echo`).
fn image_builds() -> [[&'static str; 6]; 2] {
    [
        ["build", "-f", "Dockerfile", "-t", IMAGE, "."],
        ["build", "-f", ECHO_DOCKERFILE, "-t", ECHO_IMAGE, "."],
    ]
}

/// `helm upgrade --install` of the chart with the kind values; the image id goes into
/// a Pod annotation (dots of the key escaped for `--set-string`).
fn helm_install_args(image_id: &str) -> Vec<String> {
    let key = format!(
        "controller.podAnnotations.{}",
        IMAGE_ID_ANNOTATION.replace('.', "\\.")
    );
    [
        "upgrade",
        "--install",
        RELEASE,
        "charts/gangplank",
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "-f",
        VALUES,
        "--set-string",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("{key}={image_id}")])
    .collect()
}

/// Waits until an HTTP request to `addr` gets any HTTP answer.
fn wait_reachable(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = http_status_line(addr);
        match attempt {
            Ok(line) if line.starts_with("HTTP/") => return Ok(()),
            Ok(line) => {
                if Instant::now() >= deadline {
                    return Err(format!("{addr} answered {line:?}, not HTTP"));
                }
            }
            Err(e) => {
                if Instant::now() >= deadline {
                    return Err(format!("{addr}: {e}"));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The first line of the answer to `GET /` on `addr`.
fn http_status_line(addr: SocketAddr) -> Result<String, String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: reachability.e2e.invalid\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf[..n]);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(cluster_name(None), "gangplank-e2e");
        assert_eq!(cluster_name(Some(" ")), "gangplank-e2e");
        assert_eq!(cluster_name(Some("mine")), "mine");
        assert_eq!(fullname("gangplank"), "gangplank");
        assert_eq!(fullname("edge"), "edge-gangplank");
        assert!(cluster_exists("kind\ngangplank-e2e\n", "gangplank-e2e"));
        assert!(!cluster_exists("gangplank-e2e-old\n", "gangplank-e2e"));
        assert!(!cluster_exists(
            "No kind clusters found.\n",
            "gangplank-e2e"
        ));
    }

    #[test]
    fn keep() {
        assert!(!keep_requested(None));
        assert!(!keep_requested(Some("")));
        assert!(!keep_requested(Some("0")));
        assert!(!keep_requested(Some("False")));
        assert!(keep_requested(Some("1")));
        assert!(keep_requested(Some("yes")));
    }

    #[test]
    fn images() {
        let [gangplank, echo] = image_builds();
        assert_eq!(
            gangplank.join(" "),
            "build -f Dockerfile -t ghcr.io/gangplank-ingress/gangplank:ci ."
        );
        assert_eq!(
            echo.join(" "),
            "build -f e2e/Dockerfile.echo -t ghcr.io/gangplank-ingress/gangplank-echo:ci ."
        );
        // Both Dockerfiles exist.
        let root = tools::workspace_root().unwrap();
        for build in image_builds() {
            assert!(root.join(build[2]).is_file(), "{}", build[2]);
        }
    }

    #[test]
    fn helm_arguments() {
        let args = helm_install_args("sha256:abc");
        assert_eq!(
            args[..4],
            ["upgrade", "--install", "gangplank", "charts/gangplank"]
        );
        assert!(
            args.windows(2)
                .any(|w| w == ["-f", "e2e/kind/values-kind.yaml"])
        );
        assert_eq!(
            args.last().unwrap(),
            "controller.podAnnotations.e2e\\.gangplank\\.io/image-id=sha256:abc"
        );
        // The files it names exist.
        let root = tools::workspace_root().unwrap();
        for path in [VALUES, KIND_CONFIG, "charts/gangplank/Chart.yaml"] {
            assert!(root.join(path).is_file(), "{path}");
        }
    }

    #[test]
    fn environment_of_the_suite() {
        let env = KindEnv {
            cluster: CLUSTER.to_owned(),
            namespace: NAMESPACE.to_owned(),
            release: RELEASE.to_owned(),
            http_url: HTTP_URL.to_owned(),
            https_url: HTTPS_URL.to_owned(),
            echo_image: ECHO_IMAGE.to_owned(),
            kubeconfig: PathBuf::from("/w/target/kind/gangplank-e2e.kubeconfig"),
        };
        let vars = env.vars();
        assert!(vars.contains(&("GANGPLANK_E2E_NAMESPACE", "gangplank".to_owned())));
        assert!(vars.contains(&("GANGPLANK_E2E_HTTP_URL", "http://127.0.0.1".to_owned())));
        assert!(vars.contains(&(
            "KUBECONFIG",
            "/w/target/kind/gangplank-e2e.kubeconfig".to_owned()
        )));
    }

    #[test]
    fn reachability_of_a_local_http_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = conn.read(&mut buf).unwrap();
            conn.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        });
        wait_reachable(addr, Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        // Nothing listens there any more.
        assert!(wait_reachable(addr, Duration::from_millis(10)).is_err());
    }
}
