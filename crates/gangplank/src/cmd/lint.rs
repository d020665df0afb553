//! `gangplank lint`: what changes for each Ingress when Gangplank replaces
//! ingress-nginx. Reads a manifest directory or the cluster (read-only).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use gangplank_controller::TranslateOptions;
use gangplank_controller::lint::{Finding, lint};
use gangplank_controller::manifests::{ManifestOptions, load_dir};

/// Flags of `gangplank lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Lint the Ingresses of this manifest directory instead of the cluster's.
    #[arg(long)]
    manifests: Option<PathBuf>,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Only this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Also print findings that change nothing (`info`).
    #[arg(long)]
    show_all: bool,
    /// Print findings as JSON lines.
    #[arg(long)]
    json: bool,
}

/// Prints the findings; exit status 1 when something would change behaviour.
pub fn run(args: LintArgs) -> anyhow::Result<ExitCode> {
    let state = match &args.manifests {
        Some(dir) => {
            let loaded = load_dir(dir, &ManifestOptions::default());
            for problem in &loaded.problems {
                eprintln!("skipped: {problem}");
            }
            loaded.state
        }
        None => cluster_state(&args)?,
    };
    let mut findings: Vec<Finding> = lint(&state, &TranslateOptions::default());
    if let Some(ns) = &args.namespace {
        findings.retain(|f| &f.namespace == ns);
    }
    let changes = findings.iter().filter(|f| f.changes_behaviour()).count();
    for finding in findings
        .iter()
        .filter(|f| args.show_all || f.changes_behaviour())
    {
        if args.json {
            println!("{}", serde_json::to_string(finding)?);
        } else {
            println!("{finding}");
        }
    }
    if !args.json {
        let ingresses = state.ingresses.len();
        eprintln!(
            "{ingresses} Ingress(es) checked: {changes} annotation(s) would behave differently under Gangplank"
        );
    }
    Ok(if changes == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(feature = "cluster")]
fn cluster_state(args: &LintArgs) -> anyhow::Result<gangplank_controller::ClusterState> {
    use gangplank_controller::cluster::{Watches, WatchesConfig};
    use gangplank_controller::sync::StateSource as _;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let client = gangplank_controller::cluster::client(args.kubeconfig.as_deref()).await?;
        let watches = Watches::start(
            client,
            WatchesConfig {
                namespace: args.namespace.clone(),
                configmap: None,
            },
            std::sync::Arc::new(tokio::sync::Notify::new()),
        );
        tokio::time::timeout(std::time::Duration::from_secs(60), watches.synced())
            .await
            .context("listing the cluster's objects took longer than 60 s")?;
        Ok(std::sync::Arc::unwrap_or_clone(watches.state()))
    })
}

#[cfg(not(feature = "cluster"))]
fn cluster_state(_args: &LintArgs) -> anyhow::Result<gangplank_controller::ClusterState> {
    anyhow::bail!("built without the `cluster` feature: use --manifests DIR")
}
