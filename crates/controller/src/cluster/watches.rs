//! One reflector per kind, feeding the sync loop.

use std::fmt::Debug;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::state::{ClusterState, name, namespace};
use crate::sync::StateSource;

/// The annotation `kubectl apply` writes: a full copy of the object, never read.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchesConfig {
    /// `--watch-namespace`: only this namespace (IngressClasses are cluster-wide).
    pub namespace: Option<String>,
    /// `--configmap NS/NAME`: the global ConfigMap.
    pub configmap: Option<(String, String)>,
}

/// The reflectors' stores.
#[derive(Clone)]
pub struct Watches {
    config: WatchesConfig,
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    secrets: Store<Secret>,
    config_maps: Store<ConfigMap>,
    /// The global ConfigMap when it lives outside `--watch-namespace`.
    global_config_map: Option<Store<ConfigMap>>,
}

impl Watches {
    /// Starts every watch as a task; each event notifies `dirty`.
    pub fn start(client: Client, config: WatchesConfig, dirty: Arc<Notify>) -> Watches {
        let ns = config.namespace.as_deref();
        let default_config = watcher::Config::default();
        let ingresses = spawn(api(&client, ns), default_config.clone(), &dirty);
        let classes = spawn(Api::all(client.clone()), default_config.clone(), &dirty);
        let services = spawn(api(&client, ns), default_config.clone(), &dirty);
        let slices = spawn(api(&client, ns), default_config.clone(), &dirty);
        // Helm keeps every release in a Secret; ingress-nginx skips them too.
        let secrets = spawn(
            api(&client, ns),
            default_config.clone().fields("type!=helm.sh/release.v1"),
            &dirty,
        );
        let config_maps = spawn(api(&client, ns), default_config.clone(), &dirty);
        let global_config_map = match (&config.configmap, ns) {
            (Some((cm_ns, cm_name)), Some(watched)) if cm_ns != watched => Some(spawn(
                Api::namespaced(client.clone(), cm_ns),
                default_config.fields(&format!("metadata.name={cm_name}")),
                &dirty,
            )),
            _ => None,
        };
        Watches {
            config,
            ingresses,
            classes,
            services,
            slices,
            secrets,
            config_maps,
            global_config_map,
        }
    }

    /// Waits until every store holds its initial list.
    pub async fn synced(&self) {
        let _ = self.ingresses.wait_until_ready().await;
        let _ = self.classes.wait_until_ready().await;
        let _ = self.services.wait_until_ready().await;
        let _ = self.slices.wait_until_ready().await;
        let _ = self.secrets.wait_until_ready().await;
        let _ = self.config_maps.wait_until_ready().await;
        if let Some(store) = &self.global_config_map {
            let _ = store.wait_until_ready().await;
        }
    }

    /// The Ingresses as currently known.
    pub fn ingresses(&self) -> Vec<Arc<Ingress>> {
        self.ingresses.state()
    }

    /// The IngressClasses as currently known.
    pub fn ingress_classes(&self) -> Vec<Arc<IngressClass>> {
        self.classes.state()
    }

    /// A Service by namespace and name.
    pub fn service(&self, ns: &str, svc: &str) -> Option<Arc<Service>> {
        self.services
            .find(|s| namespace(&s.metadata) == ns && name(&s.metadata) == svc)
    }
}

impl StateSource for Watches {
    fn state(&self) -> Arc<ClusterState> {
        // The stores' own `Arc`s: a sync copies pointers, never objects.
        fn owned<K>(store: &Store<K>) -> Vec<Arc<K>>
        where
            K: kube::runtime::reflector::Lookup + Clone + 'static,
            K::DynamicType: std::hash::Hash + Eq + Clone,
        {
            store.state()
        }
        let mut config_maps = owned(&self.config_maps);
        if let Some(store) = &self.global_config_map {
            config_maps.extend(owned(store));
        }
        let config_map = self.config.configmap.as_ref().and_then(|(ns, n)| {
            config_maps
                .iter()
                .find(|c| namespace(&c.metadata) == ns && name(&c.metadata) == n)
                .cloned()
        });
        Arc::new(ClusterState {
            ingresses: owned(&self.ingresses),
            ingress_classes: owned(&self.classes),
            services: owned(&self.services),
            endpoint_slices: owned(&self.slices),
            secrets: owned(&self.secrets),
            config_map,
            config_maps,
        })
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Starts one reflector: list, watch, back off on errors, strip what is never read.
fn spawn<K>(api: Api<K>, config: watcher::Config, dirty: &Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let dirty = dirty.clone();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|object: &mut K| {
            object.managed_fields_mut().clear();
            object.annotations_mut().remove(LAST_APPLIED);
        })
        .reflect(writer);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => dirty.notify_one(),
                Err(e) => tracing::warn!(kind = %kind, error = %e, "watch failed; retrying"),
            }
        }
        tracing::error!(kind = %kind, "watch stream ended");
    });
    reader
}
