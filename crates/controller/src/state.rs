//! `ClusterState`: the Kubernetes objects one translation reads, and the lookups the
//! translation needs over them.
//!
//! The state is plain data (the watches' reflector stores, or the objects of a
//! manifest directory); [`crate::translate`] never mutates it. Objects without a
//! namespace are in `default`, as `kubectl apply` would put them. When two objects
//! of one kind share a namespace and name, the first one wins.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Every object the translation reads, shared (`Arc`) with the watches' stores so a
/// sync never deep-copies the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    /// Ingresses (`networking.k8s.io/v1`) of every class; the translation filters.
    pub ingresses: Vec<Arc<Ingress>>,
    /// IngressClasses; those whose `spec.controller` is ours select Ingresses.
    pub ingress_classes: Vec<Arc<IngressClass>>,
    /// Services referenced by Ingresses (others are ignored).
    pub services: Vec<Arc<Service>>,
    /// EndpointSlices (`discovery.k8s.io/v1`), tied to Services by the
    /// `kubernetes.io/service-name` label.
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    /// Secrets referenced by Ingresses (TLS).
    pub secrets: Vec<Arc<Secret>>,
    /// The global ConfigMap (`--configmap`), translated into the general config.
    pub config_map: Option<Arc<ConfigMap>>,
    /// ConfigMaps referenced by annotations (`custom-headers`) or by the global
    /// ConfigMap (`proxy-set-headers`, `add-headers`).
    pub config_maps: Vec<Arc<ConfigMap>>,
}

/// The namespace of an object, `default` when unset.
pub(crate) fn namespace(meta: &ObjectMeta) -> &str {
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => ns,
        _ => "default",
    }
}

/// The name of an object, empty when unset.
pub(crate) fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// Values by namespace, then name (nested so lookups take any `&str`).
type ByName<'a, V> = HashMap<&'a str, HashMap<&'a str, V>>;

fn lookup<'m, V>(map: &'m ByName<'_, V>, namespace: &str, name: &str) -> Option<&'m V> {
    map.get(namespace).and_then(|names| names.get(name))
}

/// Lookups by namespace and name, built once per translation.
pub(crate) struct Index<'a> {
    services: ByName<'a, &'a Service>,
    secrets: ByName<'a, &'a Secret>,
    /// Slices by namespace and Service name, sorted by slice name so endpoint order
    /// does not depend on watch order.
    slices: ByName<'a, Vec<&'a EndpointSlice>>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(state: &'a ClusterState) -> Index<'a> {
        let mut services: ByName<'a, &'a Service> = HashMap::new();
        for svc in &state.services {
            services
                .entry(namespace(&svc.metadata))
                .or_default()
                .entry(name(&svc.metadata))
                .or_insert(svc);
        }
        let mut secrets: ByName<'a, &'a Secret> = HashMap::new();
        for secret in &state.secrets {
            secrets
                .entry(namespace(&secret.metadata))
                .or_default()
                .entry(name(&secret.metadata))
                .or_insert(secret);
        }
        let mut slices: ByName<'a, Vec<&'a EndpointSlice>> = HashMap::new();
        for slice in &state.endpoint_slices {
            let Some(service) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            slices
                .entry(namespace(&slice.metadata))
                .or_default()
                .entry(service.as_str())
                .or_default()
                .push(slice);
        }
        for list in slices.values_mut().flat_map(HashMap::values_mut) {
            list.sort_by(|a, b| name(&a.metadata).cmp(name(&b.metadata)));
            list.dedup_by(|a, b| name(&a.metadata) == name(&b.metadata));
        }
        Index {
            services,
            secrets,
            slices,
        }
    }

    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&'a Service> {
        lookup(&self.services, namespace, name).copied()
    }

    pub(crate) fn secret(&self, namespace: &str, name: &str) -> Option<&'a Secret> {
        lookup(&self.secrets, namespace, name).copied()
    }

    pub(crate) fn slices(&self, namespace: &str, service: &str) -> &[&'a EndpointSlice] {
        lookup(&self.slices, namespace, service).map_or(&[], Vec::as_slice)
    }
}
