//! The subset of a Kubernetes `Service` that ingress-nginx copies into each backend.
//!
//! Only `spec` is interpreted (the balancer reads `spec.type`); `metadata` and
//! `status` are Kubernetes-owned and carried opaquely so that they round-trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::int_or_string::IntOrString;
use crate::json::null_as_default;
use crate::validate::{Path, Report, Validate, check_hostname, check_text};

/// A Service as carried in `Backend.service`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Service {
    /// Object metadata, carried as is (ingress-nginx sends `{"creationTimestamp":null}`).
    #[serde(default = "empty_object")]
    pub metadata: serde_json::Value,
    /// The Service spec.
    #[serde(default)]
    pub spec: ServiceSpec,
    /// Service status, carried as is (`{"loadBalancer":{}}`).
    #[serde(default = "empty_object")]
    pub status: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// The fields of `ServiceSpec` that ingress-nginx users and tools look at.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The cluster IP (or `None` for headless services).
    #[serde(rename = "clusterIP", default, skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// All cluster IPs (dual stack).
    #[serde(
        rename = "clusterIPs",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_ips: Vec<String>,
    /// Service ports.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<ServicePort>,
    /// Pod selector.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub selector: BTreeMap<String, String>,
    /// `None` or `ClientIP` (Kubernetes-level affinity, not used by the proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<String>,
    /// The DNS name of an ExternalName service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    /// IP families.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_families: Vec<String>,
    /// `SingleStack`, `PreferDualStack` or `RequireDualStack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family_policy: Option<String>,
    /// `Cluster` or `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<String>,
    /// `Cluster` or `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_traffic_policy: Option<String>,
    /// Whether not-ready endpoints are published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_not_ready_addresses: Option<bool>,
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name (required when a Service has several ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `TCP`, `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Application protocol hint (`http`, `h2c`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The Service port.
    #[serde(default)]
    pub port: i64,
    /// The pod port, a number or a named container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// The node port, for NodePort and LoadBalancer services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i64>,
}

impl Validate for Service {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        let spec = path.field("spec");
        let s = &self.spec;
        if let Some(t) = &s.type_
            && !matches!(
                t.as_str(),
                "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
            )
        {
            report.add(
                &spec.field("type"),
                format!(
                    "service type {t:?} is not ClusterIP, NodePort, LoadBalancer or ExternalName"
                ),
            );
        }
        if let Some(name) = &s.external_name {
            let bare = name.strip_suffix('.').unwrap_or(name);
            if !bare.is_empty() && bare.parse::<std::net::IpAddr>().is_err() {
                report.check(&spec.field("externalName"), check_hostname(bare));
            }
        }
        let ports = spec.field("ports");
        for (i, p) in s.ports.iter().enumerate() {
            let at = ports.index(i);
            if !(0..=65535).contains(&p.port) {
                report.add(
                    &at.field("port"),
                    format!("port {} is not in 0..65535", p.port),
                );
            }
            if let Some(name) = &p.name {
                report.check(&at.field("name"), check_text(name));
            }
            if let Some(tp) = &p.target_port {
                report.check(
                    &at.field("targetPort"),
                    crate::backend::check_service_port(tp),
                );
            }
        }
    }
}
