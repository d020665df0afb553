//! `status.loadBalancer` of the Ingresses of our class, written by the leader only
//! and only when the value changed.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{
    Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::watch;

use super::Watches;
use crate::TranslateOptions;
use crate::class::ClassFilter;
use crate::state::{name, namespace};

/// Where the published address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishFrom {
    /// `--publish-service NS/NAME`: the Service in front of the proxies.
    Service(String, String),
    /// `--publish-status-address A,B`: fixed IPs or host names.
    Addresses(Vec<String>),
}

/// Writes Ingress status while this replica leads.
pub struct StatusUpdater {
    client: Client,
    watches: Watches,
    publish: PublishFrom,
    options: TranslateOptions,
    interval: Duration,
}

impl StatusUpdater {
    /// An updater checking every `interval` while leading.
    pub fn new(
        client: Client,
        watches: Watches,
        publish: PublishFrom,
        options: TranslateOptions,
        interval: Duration,
    ) -> StatusUpdater {
        StatusUpdater {
            client,
            watches,
            publish,
            options,
            interval,
        }
    }

    /// Runs forever; writes only while `leading` says so.
    pub async fn run(self, mut leading: watch::Receiver<bool>) {
        loop {
            if !*leading.borrow_and_update() {
                if leading.changed().await.is_err() {
                    return;
                }
                continue;
            }
            self.update_once().await;
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                changed = leading.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn update_once(&self) {
        let wanted = match &self.publish {
            PublishFrom::Addresses(addresses) => Some(entries(addresses.iter().cloned())),
            PublishFrom::Service(ns, svc) => {
                self.watches.service(ns, svc).map(|s| service_addresses(&s))
            }
        };
        let Some(wanted) = wanted else {
            tracing::debug!("publish service not found; status left alone");
            return;
        };
        let classes = self.watches.ingress_classes();
        let filter = ClassFilter::new(&classes, &self.options);
        for ingress in self.watches.ingresses() {
            if !filter.accepts(&ingress) || current(&ingress) == wanted {
                continue;
            }
            let api: Api<Ingress> =
                Api::namespaced(self.client.clone(), namespace(&ingress.metadata));
            let patch = serde_json::json!({
                "status": { "loadBalancer": IngressLoadBalancerStatus { ingress: Some(wanted.clone()) } }
            });
            match api
                .patch_status(
                    name(&ingress.metadata),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => tracing::info!(
                    ingress = %format!("{}/{}", namespace(&ingress.metadata), name(&ingress.metadata)),
                    "status updated"
                ),
                Err(e) => tracing::warn!(
                    ingress = %format!("{}/{}", namespace(&ingress.metadata), name(&ingress.metadata)),
                    error = %e,
                    "cannot update status"
                ),
            }
        }
    }
}

/// The status an Ingress has now.
fn current(ingress: &Ingress) -> Vec<IngressLoadBalancerIngress> {
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
}

/// IPs become `ip` entries, anything else `hostname`; sorted and deduplicated, as
/// ingress-nginx publishes them.
fn entries(addresses: impl Iterator<Item = String>) -> Vec<IngressLoadBalancerIngress> {
    let mut addresses: Vec<String> = addresses.filter(|a| !a.is_empty()).collect();
    addresses.sort();
    addresses.dedup();
    addresses
        .into_iter()
        .map(|a| {
            if a.parse::<IpAddr>().is_ok() {
                IngressLoadBalancerIngress {
                    ip: Some(a),
                    ..Default::default()
                }
            } else {
                IngressLoadBalancerIngress {
                    hostname: Some(a),
                    ..Default::default()
                }
            }
        })
        .collect()
}

/// The addresses of the publish Service, by type (ingress-nginx's
/// `statusAddressFromService`).
fn service_addresses(service: &Service) -> Vec<IngressLoadBalancerIngress> {
    let spec = service.spec.clone().unwrap_or_default();
    let external_ips = spec.external_ips.clone().unwrap_or_default();
    match spec.type_.as_deref().unwrap_or("ClusterIP") {
        "ExternalName" => entries(spec.external_name.into_iter()),
        "NodePort" if !external_ips.is_empty() => entries(external_ips.into_iter()),
        "LoadBalancer" => {
            let from_status = service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.clone())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| i.ip.or(i.hostname));
            entries(from_status.chain(external_ips))
        }
        _ => entries(spec.cluster_ip.into_iter().filter(|ip| ip != "None")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: serde_json::Value) -> Service {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn addresses_follow_the_service_type() {
        let lb = service(serde_json::json!({
            "spec": {"type": "LoadBalancer", "externalIPs": ["203.0.113.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}, {"hostname": "lb.example.com"}]}}
        }));
        let got = service_addresses(&lb);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(got[1].ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(got[2].hostname.as_deref(), Some("lb.example.com"));

        let cluster_ip = service(serde_json::json!({"spec": {"clusterIP": "10.96.0.10"}}));
        assert_eq!(
            service_addresses(&cluster_ip)[0].ip.as_deref(),
            Some("10.96.0.10")
        );
        let headless = service(serde_json::json!({"spec": {"clusterIP": "None"}}));
        assert!(service_addresses(&headless).is_empty());
    }

    #[test]
    fn fixed_addresses_are_sorted_and_typed() {
        let got = entries(
            ["b.example.com", "10.0.0.1", "", "10.0.0.1"]
                .map(String::from)
                .into_iter(),
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(got[1].hostname.as_deref(), Some("b.example.com"));
    }
}
