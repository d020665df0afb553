//! Endpoints of a backend: a Service port resolved through the Service and its
//! EndpointSlices, as ingress-nginx's `serviceEndpoints`/`getEndpointsFromSlices`
//! do it, plus the copy of the Service spec that each backend carries.
//!
//! - The Ingress names a Service port by number or by name; the first Service port
//!   whose number, `targetPort` or name matches is used.
//! - Slice ports are matched by name when the Service port has one; a numeric
//!   `targetPort` is the fallback (ingress-nginx issue 7390). Only TCP ports count.
//! - Only endpoints that are ready (or whose readiness is unknown) and not
//!   terminating are used; addresses that are not IP addresses (FQDN slices) are
//!   skipped; duplicates are dropped.
//! - ExternalName Services have one endpoint, the external name itself (resolved by
//!   the proxy), unless it is `localhost`, a loopback address or not a DNS name.

use std::collections::HashSet;
use std::net::IpAddr;

use gangplank_model::validate::Validate;
use gangplank_model::{Endpoint, IntOrString};
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString as K8sIntOrString;

use crate::state::{Index, name, namespace};

const EXTERNAL_NAME: &str = "ExternalName";

fn is_external_name(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_some_and(|t| t == EXTERNAL_NAME)
}

fn ports(svc: &Service) -> &[ServicePort] {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default()
}

/// Go's `IntOrString.IntValue()`: the number, or the string parsed as one, or 0.
fn int_value(value: &K8sIntOrString) -> i32 {
    match value {
        K8sIntOrString::Int(n) => *n,
        K8sIntOrString::String(s) => s.parse().unwrap_or(0),
    }
}

/// The `targetPort` of a Service port; unset means the port itself (the API server's
/// default, which manifests may leave out).
fn target_port(port: &ServicePort) -> K8sIntOrString {
    port.target_port
        .clone()
        .unwrap_or(K8sIntOrString::Int(port.port))
}

/// The endpoints behind `backend_port` (as written in the Ingress) of `svc`.
pub(crate) fn service_endpoints(
    index: &Index<'_>,
    svc: &Service,
    backend_port: &IntOrString,
) -> Vec<Endpoint> {
    let key = backend_port.to_string();
    if is_external_name(svc) {
        return external_endpoint(svc, external_name_port(svc, &key));
    }
    let matching = ports(svc).iter().find(|p| {
        p.port.to_string() == key
            || p.name.as_deref() == Some(key.as_str())
            || match target_port(p) {
                K8sIntOrString::Int(n) => n.to_string() == key,
                K8sIntOrString::String(s) => s == key,
            }
    });
    match matching {
        Some(port) => endpoints_for_port(index, svc, port),
        None => Vec::new(),
    }
}

/// The endpoints of the first port of `svc` (`--default-backend-service`).
pub(crate) fn first_port_endpoints(index: &Index<'_>, svc: &Service) -> Vec<Endpoint> {
    match ports(svc).first() {
        Some(port) => endpoints_for_port(index, svc, port),
        None => Vec::new(),
    }
}

fn endpoints_for_port(index: &Index<'_>, svc: &Service, port: &ServicePort) -> Vec<Endpoint> {
    if is_external_name(svc) {
        let mut target = int_value(&target_port(port));
        if target == 0 {
            target = port.port;
        }
        return external_endpoint(svc, target);
    }
    let target = target_port(port);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for slice in index.slices(namespace(&svc.metadata), name(&svc.metadata)) {
        if slice.address_type == "FQDN" {
            continue;
        }
        let mut numbers = Vec::new();
        match slice.ports.as_deref() {
            None | Some([]) => {
                if let K8sIntOrString::Int(n) = target {
                    numbers.push(n);
                }
            }
            Some(slice_ports) => {
                for slice_port in slice_ports {
                    if slice_port.protocol.as_deref().unwrap_or("TCP") != "TCP" {
                        continue;
                    }
                    let mut number = match port.name.as_deref() {
                        None | Some("") => slice_port.port.unwrap_or(0),
                        Some(name) if slice_port.name.as_deref() == Some(name) => {
                            slice_port.port.unwrap_or(0)
                        }
                        Some(_) => 0,
                    };
                    if number == 0
                        && let K8sIntOrString::Int(n) = target
                    {
                        number = n;
                    }
                    if number != 0 {
                        numbers.push(number);
                    }
                }
            }
        }
        for endpoint in slice.endpoints.iter().flatten() {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            if !ready || terminating {
                continue;
            }
            for &number in &numbers {
                let Ok(port) = u16::try_from(number) else {
                    continue;
                };
                if port == 0 {
                    continue;
                }
                for address in &endpoint.addresses {
                    let Ok(ip) = address.parse::<IpAddr>() else {
                        continue;
                    };
                    if seen.insert((ip, port)) {
                        out.push(Endpoint {
                            address: ip.to_string(),
                            port: port.to_string(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// `service-upstream`: the Service's ClusterIP and port as the backend's single
/// endpoint (ingress-nginx's `getServiceClusterEndpoint`). The port is the number the
/// Ingress names, or the number of the Service port it names.
pub(crate) fn cluster_ip_endpoint(
    svc: &Service,
    backend_port: &IntOrString,
) -> Result<Endpoint, String> {
    let cluster_ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .ok_or("the Service has no ClusterIP (headless or ExternalName)")?;
    let ip: IpAddr = cluster_ip
        .parse()
        .map_err(|_| format!("the ClusterIP {cluster_ip:?} is not an IP address"))?;
    let port = match backend_port {
        IntOrString::Int(n) => *n,
        IntOrString::String(port_name) => ports(svc)
            .iter()
            .find(|p| p.name.as_deref() == Some(port_name.as_str()))
            .map(|p| i64::from(p.port))
            .ok_or_else(|| format!("the Service has no port named {port_name:?}"))?,
    };
    match u16::try_from(port) {
        Ok(port) if port != 0 => Ok(Endpoint {
            address: ip.to_string(),
            port: port.to_string(),
        }),
        _ => Err(format!("port {port} is not in 1..65535")),
    }
}

/// ingress-nginx's `externalNamePorts`: the port an ExternalName backend connects to.
fn external_name_port(svc: &Service, key: &str) -> i32 {
    let number: i32 = key.parse().unwrap_or(0);
    if number == 0
        && let Some(port) = ports(svc).iter().find(|p| p.name.as_deref() == Some(key))
    {
        let target = int_value(&target_port(port));
        return if target == 0 { port.port } else { target };
    }
    if let Some(port) = ports(svc).iter().find(|p| p.port == number) {
        // ingress-nginx reads the raw targetPort here, so a named one gives 0; the
        // Service port is what it meant.
        let target = int_value(&target_port(port));
        return if target == 0 { port.port } else { target };
    }
    number
}

/// The one endpoint of an ExternalName Service, if its name and port are usable.
fn external_endpoint(svc: &Service, port: i32) -> Vec<Endpoint> {
    let Some(external) = svc.spec.as_ref().and_then(|s| s.external_name.as_deref()) else {
        return Vec::new();
    };
    let Ok(port) = u16::try_from(port) else {
        return Vec::new();
    };
    if port == 0 || external == "localhost" {
        return Vec::new();
    }
    match external.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => return Vec::new(),
        Ok(_) => {}
        Err(_) => {
            if !is_dns1123_subdomain(external.strip_suffix('.').unwrap_or(external)) {
                return Vec::new();
            }
        }
    }
    vec![Endpoint {
        address: external.to_owned(),
        port: port.to_string(),
    }]
}

/// A Kubernetes DNS-1123 subdomain: lowercase labels of letters, digits and '-',
/// starting and ending with a letter or digit, 253 bytes at most.
fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The copy of `svc` a backend carries: only the spec, as ingress-nginx sends it. A
/// spec the model would reject (a hostile manifest) is cut down to its type.
pub(crate) fn model_service(svc: &Service) -> gangplank_model::Service {
    use gangplank_model::{ServicePort as ModelPort, ServiceSpec as ModelSpec};
    let empty = || serde_json::Value::Object(serde_json::Map::new());
    let spec = svc.spec.clone().unwrap_or_default();
    let full = ModelSpec {
        type_: spec.type_.clone(),
        cluster_ip: spec.cluster_ip,
        cluster_ips: spec.cluster_ips.unwrap_or_default(),
        ports: spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| ModelPort {
                name: p.name,
                protocol: p.protocol,
                app_protocol: p.app_protocol,
                port: i64::from(p.port),
                target_port: p.target_port.map(|t| match t {
                    K8sIntOrString::Int(n) => IntOrString::Int(i64::from(n)),
                    K8sIntOrString::String(s) => IntOrString::String(s),
                }),
                node_port: p.node_port.map(i64::from),
            })
            .collect(),
        selector: spec.selector.unwrap_or_default(),
        session_affinity: spec.session_affinity,
        external_name: spec.external_name,
        ip_families: spec.ip_families.unwrap_or_default(),
        ip_family_policy: spec.ip_family_policy,
        external_traffic_policy: spec.external_traffic_policy,
        internal_traffic_policy: spec.internal_traffic_policy,
        publish_not_ready_addresses: spec.publish_not_ready_addresses,
    };
    let mut service = gangplank_model::Service {
        metadata: empty(),
        spec: full,
        status: empty(),
    };
    if service.validate().is_err() {
        service.spec = ModelSpec {
            type_: spec.type_,
            ..ModelSpec::default()
        };
        if service.validate().is_err() {
            service.spec = ModelSpec::default();
        }
    }
    service
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ip_endpoints() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 8080}]}
        }))
        .unwrap();
        let endpoint =
            |port| cluster_ip_endpoint(&svc, &port).map(|e| format!("{}:{}", e.address, e.port));
        assert_eq!(endpoint(IntOrString::Int(80)).unwrap(), "10.96.0.10:80");
        assert_eq!(
            endpoint(IntOrString::String("http".into())).unwrap(),
            "10.96.0.10:8080"
        );
        assert!(endpoint(IntOrString::String("grpc".into())).is_err());
        assert!(endpoint(IntOrString::Int(0)).is_err());
        let headless: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"}, "spec": {"clusterIP": "None"}
        }))
        .unwrap();
        assert!(cluster_ip_endpoint(&headless, &IntOrString::Int(80)).is_err());
    }

    #[test]
    fn dns1123() {
        for ok in ["example.com", "a-b.c", "x"] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in ["", "Example.com", "a..b", "-a", "a_b", "*.a"] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }
}
