//! `gangplank controller` and `gangplank standalone`: Kubernetes objects (from the
//! API, or from a manifest directory) translated and pushed to the proxy's admin
//! socket.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use gangplank_controller::manifests::{ManifestOptions, Watcher};
use gangplank_controller::metrics::{ControllerMetrics, MetricLabels};
use gangplank_controller::sync::{LogEvents, Readiness, SyncLoop, SyncOptions};
use gangplank_controller::{AdminClient, TranslateOptions};

use crate::logging::{self, LogFormat};

/// What the translation needs to know, shared by `controller` and `standalone`.
#[derive(Debug, Args, Clone)]
pub struct TranslateArgs {
    /// IngressClass name served (also the legacy `kubernetes.io/ingress.class` value).
    #[arg(long, env = "GANGPLANK_INGRESS_CLASS", default_value = "gangplank")]
    ingress_class: String,
    /// Also serve Ingresses that name no class (`--watch-ingress-without-class` or
    /// `--watch-ingress-without-class=true`, as ingress-nginx's Go flags accept).
    #[arg(
        long,
        env = "GANGPLANK_WATCH_INGRESS_WITHOUT_CLASS",
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    watch_ingress_without_class: bool,
    /// Also serve Ingresses whose `spec.ingressClassName` is `--ingress-class` when no
    /// IngressClass of ours has that name (it was deleted mid-migration, or names
    /// another controller), as ingress-nginx's flag.
    #[arg(
        long,
        env = "GANGPLANK_INGRESS_CLASS_BY_NAME",
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    ingress_class_by_name: bool,
    /// The global ConfigMap (ingress-nginx's keys), as NAMESPACE/NAME.
    #[arg(long, env = "GANGPLANK_CONFIGMAP", value_parser = parse_namespaced)]
    configmap: Option<(String, String)>,
    /// The Service answering unmatched requests, as NAMESPACE/NAME.
    #[arg(long, env = "GANGPLANK_DEFAULT_BACKEND_SERVICE", value_parser = parse_namespaced)]
    default_backend_service: Option<(String, String)>,
    /// The TLS Secret served when no other certificate matches, as NAMESPACE/NAME.
    #[arg(long, env = "GANGPLANK_DEFAULT_SSL_CERTIFICATE", value_parser = parse_namespaced)]
    default_ssl_certificate: Option<(String, String)>,
}

impl TranslateArgs {
    fn options(&self, controller_class: &str) -> TranslateOptions {
        TranslateOptions {
            ingress_class: self.ingress_class.clone(),
            controller_class: controller_class.to_owned(),
            watch_ingress_without_class: self.watch_ingress_without_class,
            ingress_class_by_name: self.ingress_class_by_name,
            default_backend_service: self.default_backend_service.clone(),
            default_ssl_certificate: self.default_ssl_certificate.clone(),
        }
    }
}

/// Flags of `gangplank controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    translate: TranslateArgs,
    /// `spec.controller` of the IngressClasses served (`k8s.io/ingress-nginx` takes
    /// over an ingress-nginx installation's classes).
    #[arg(
        long,
        env = "GANGPLANK_CONTROLLER_CLASS",
        default_value = "gangplank.io/ingress-controller"
    )]
    controller_class: String,
    /// Read objects from this directory of YAML/JSON manifests instead of the API.
    #[arg(long, env = "GANGPLANK_MANIFESTS")]
    manifests: Option<PathBuf>,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Only watch this namespace.
    #[arg(long, env = "GANGPLANK_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Publish this Service's address in Ingress status, as NAMESPACE/NAME.
    #[arg(long, value_parser = parse_namespaced)]
    publish_service: Option<(String, String)>,
    /// Publish these addresses (comma-separated IPs or host names) in Ingress status.
    #[arg(long, value_delimiter = ',')]
    publish_status_address: Vec<String>,
    /// Name of the Lease used for leader election (status updates).
    #[arg(long, default_value = "gangplank-leader")]
    election_id: String,
    /// Unix socket of the proxy's admin API.
    #[arg(long, env = "GANGPLANK_ADMIN_SOCKET", default_value = gangplank_admin_server::DEFAULT_SOCKET)]
    admin_socket: PathBuf,
    /// The controller's `/healthz` and `/metrics`.
    #[arg(
        long,
        env = "GANGPLANK_CONTROLLER_LISTEN",
        default_value = "0.0.0.0:10255"
    )]
    listen: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "GANGPLANK_LOG_FORMAT")]
    log_format: LogFormat,
}

/// Runs until SIGTERM or SIGINT.
pub fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding the controller address {}", args.listen))?;
        tracing::info!(addr = %args.listen, "controller endpoint listening");
        let controller = start(args, listener);
        tokio::select! {
            result = controller => result?,
            result = wait_for_signal() => result?,
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn metrics(controller_class: &str) -> Arc<ControllerMetrics> {
    Arc::new(ControllerMetrics::new(MetricLabels {
        controller_class: controller_class.to_owned(),
        controller_namespace: std::env::var("POD_NAMESPACE").unwrap_or_default(),
        controller_pod: std::env::var("POD_NAME").unwrap_or_default(),
    }))
}

/// Starts the controller's tasks; returns only on a fatal error.
async fn start(args: ControllerArgs, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let metrics = metrics(&args.controller_class);
    let ready = Arc::new(Readiness::default());
    tokio::spawn(gangplank_controller::serve::serve(
        listener,
        metrics.clone(),
        ready.clone(),
    ));
    let options = SyncOptions {
        translate: args.translate.options(&args.controller_class),
        ..SyncOptions::default()
    };
    let client = AdminClient::unix(&args.admin_socket).with_timeout(Duration::from_secs(30));
    if let Some(dir) = &args.manifests {
        run_manifests(
            dir.clone(),
            args.translate.configmap.clone(),
            client,
            options,
            metrics,
            ready,
        )
        .await;
        return Ok(());
    }
    run_cluster(args, client, options, metrics, ready).await
}

/// The manifest-directory mode: poll the directory, sync on change.
async fn run_manifests(
    dir: PathBuf,
    configmap: Option<(String, String)>,
    client: AdminClient,
    options: SyncOptions,
    metrics: Arc<ControllerMetrics>,
    ready: Arc<Readiness>,
) {
    tracing::info!(dir = %dir.display(), "reading Kubernetes objects from manifests");
    let watcher = Watcher::new(dir, ManifestOptions { configmap });
    let dirty = watcher.changed();
    tokio::spawn(watcher.clone().run(Duration::from_millis(250)));
    SyncLoop {
        client,
        options,
        source: Arc::new(watcher),
        events: Arc::new(LogEvents),
        metrics,
        ready,
    }
    .run(dirty)
    .await;
}

#[cfg(feature = "cluster")]
async fn run_cluster(
    args: ControllerArgs,
    admin: AdminClient,
    options: SyncOptions,
    metrics: Arc<ControllerMetrics>,
    ready: Arc<Readiness>,
) -> anyhow::Result<()> {
    use gangplank_controller::cluster::{
        KubeEvents, LeaderElection, LeaseTiming, PublishFrom, StatusUpdater, Watches, WatchesConfig,
    };

    let client = gangplank_controller::cluster::client(args.kubeconfig.as_deref()).await?;
    let pod_name = std::env::var("POD_NAME").ok();
    let pod_namespace = std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| args.watch_namespace.clone())
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let dirty = Arc::new(tokio::sync::Notify::new());
    let watches = Watches::start(
        client.clone(),
        WatchesConfig {
            namespace: args.watch_namespace.clone(),
            configmap: args.translate.configmap.clone(),
        },
        dirty.clone(),
    );
    tracing::info!("waiting for the initial lists");
    watches.synced().await;
    tracing::info!("watches synced");

    let identity = pod_name
        .clone()
        .unwrap_or_else(|| format!("gangplank-{}", std::process::id()));
    let (leading_tx, leading_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(
        LeaderElection::new(
            client.clone(),
            &pod_namespace,
            &args.election_id,
            &identity,
            LeaseTiming::default(),
            metrics.clone(),
        )
        .run(leading_tx),
    );
    let publish = match (
        &args.publish_service,
        args.publish_status_address.is_empty(),
    ) {
        (_, false) => Some(PublishFrom::Addresses(args.publish_status_address.clone())),
        (Some((ns, name)), true) => Some(PublishFrom::Service(ns.clone(), name.clone())),
        (None, true) => None,
    };
    if let Some(publish) = publish {
        tokio::spawn(
            StatusUpdater::new(
                client.clone(),
                watches.clone(),
                publish,
                options.translate.clone(),
                Duration::from_secs(5),
            )
            .run(leading_rx),
        );
    }
    let events = KubeEvents::new(client, "gangplank", pod_name);
    SyncLoop {
        client: admin,
        options,
        source: Arc::new(watches),
        events: Arc::new(events),
        metrics,
        ready,
    }
    .run(dirty)
    .await;
    Ok(())
}

#[cfg(not(feature = "cluster"))]
async fn run_cluster(
    _args: ControllerArgs,
    _admin: AdminClient,
    _options: SyncOptions,
    _metrics: Arc<ControllerMetrics>,
    _ready: Arc<Readiness>,
) -> anyhow::Result<()> {
    anyhow::bail!("built without the `cluster` feature: only --manifests is available")
}

/// Flags of `gangplank standalone`: the proxy's, plus the manifest directory.
#[derive(Debug, Args)]
pub struct StandaloneArgs {
    #[command(flatten)]
    proxy: crate::cmd::proxy::ProxyArgs,
    #[command(flatten)]
    translate: TranslateArgs,
    /// The directory of Kubernetes manifests (Ingress, Service, EndpointSlice,
    /// Secret, ConfigMap, IngressClass) to serve.
    #[arg(long, env = "GANGPLANK_MANIFESTS")]
    manifests: PathBuf,
    /// The controller's `/healthz` and `/metrics` (off unless given).
    #[arg(long)]
    controller_listen: Option<SocketAddr>,
}

/// Runs the proxy and a manifest-directory controller in one process, still
/// talking over the admin socket.
pub fn run_standalone(args: StandaloneArgs) -> anyhow::Result<ExitCode> {
    let admin_socket = args.proxy.admin_socket().to_owned();
    let controller_class = args.proxy.controller_class().to_owned();
    let options = SyncOptions {
        translate: args.translate.options(&controller_class),
        ..SyncOptions::default()
    };
    let configmap = args.translate.configmap.clone();
    let manifests = args.manifests.clone();
    let controller_listen = args.controller_listen;
    crate::cmd::proxy::run_with(args.proxy, move || async move {
        let metrics = metrics(&controller_class);
        let ready = Arc::new(Readiness::default());
        if let Some(addr) = controller_listen {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    tokio::spawn(gangplank_controller::serve::serve(
                        listener,
                        metrics.clone(),
                        ready.clone(),
                    ));
                }
                Err(e) => tracing::error!(%addr, error = %e, "cannot bind the controller address"),
            }
        }
        let client = AdminClient::unix(admin_socket).with_timeout(Duration::from_secs(30));
        run_manifests(manifests, configmap, client, options, metrics, ready).await;
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    crate::cmd::proxy::wait_for_signal().await?;
    tracing::info!("shutting down");
    Ok(())
}

/// Parses `NAMESPACE/NAME`.
fn parse_namespaced(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(format!("{text:?} is not NAMESPACE/NAME")),
    }
}
