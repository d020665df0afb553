//! The Kubernetes source (feature `cluster`): one kube-rs reflector per kind, the
//! leader election, `status.loadBalancer` updates and Kubernetes Events.
//!
//! Every watch event marks the sync loop dirty; the loop reads a [`ClusterState`]
//! built from the reflectors' stores ([`Watches`] is its [`StateSource`]). Watches
//! back off on errors and relist on `410 Gone` (kube-rs' watcher does both).
//! Objects are stored without `managedFields` and without the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation, which can double
//! the memory a large cluster's Ingresses take.
//!
//! What is watched: Ingresses, Services, EndpointSlices, Secrets (except Helm
//! release Secrets) and ConfigMaps in `--watch-namespace` (or every namespace),
//! IngressClasses, and the global ConfigMap (`--configmap`) wherever it lives.

mod events;
mod leader;
mod status;
mod watches;

pub use events::KubeEvents;
pub use leader::{LeaderElection, LeaseTiming};
pub use status::{PublishFrom, StatusUpdater};
pub use watches::{Watches, WatchesConfig};

use std::path::Path;

/// Why the Kubernetes client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig file could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Neither a kubeconfig nor in-cluster configuration was found.
    #[error("no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster): {0}")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A client from `--kubeconfig` when given, else from `KUBECONFIG`,
/// `~/.kube/config` or the in-cluster service account, in kube-rs' order.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, ClusterError> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                ClusterError::Kubeconfig {
                    path: path.display().to_string(),
                    source: Box::new(e),
                }
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: path.display().to_string(),
                    source: Box::new(e),
                })?
        }
        None => kube::Config::infer().await.map_err(ClusterError::Infer)?,
    };
    kube::Client::try_from(config).map_err(ClusterError::Client)
}
