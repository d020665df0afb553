//! Fixtures shared by the benchmarks.

/// A `/configuration/backends` body with `backends` backends of `endpoints` endpoints
/// each, in the shape ingress-nginx's controller sends.
pub fn backends_json(backends: usize, endpoints: usize) -> Vec<u8> {
    let list: Vec<serde_json::Value> = (0..backends)
        .map(|i| {
            let eps: Vec<serde_json::Value> = (0..endpoints)
                .map(|j| {
                    serde_json::json!({
                        "address": format!("10.{}.{}.{}", (i >> 8) & 0xff, i & 0xff, j + 1),
                        "port": "8080"
                    })
                })
                .collect();
            serde_json::json!({
                "name": format!("namespace-{}-service-{i}-80", i % 50),
                "service": {"metadata": {"creationTimestamp": null}, "spec": {
                    "clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                    "selector": {"app": format!("app-{i}")}, "sessionAffinity": "None", "type": "ClusterIP"},
                    "status": {"loadBalancer": {}}},
                "port": 80,
                "sslPassthrough": false,
                "endpoints": eps,
                "sessionAffinityConfig": {"name": "", "mode": "", "cookieSessionAffinity": {"name": ""}},
                "upstreamHashByConfig": {"upstream-hash-by-subset-size": 3},
                "noServer": false,
                "trafficShapingPolicy": {"weight": 0, "weightTotal": 0, "header": "", "headerValue": "", "headerPattern": "", "cookie": ""}
            })
        })
        .collect();
    serde_json::to_vec(&list).unwrap_or_default()
}

/// The objects of a cluster with `ingresses` Ingresses, one Service each (in 50
/// namespaces), and `endpoints` ready endpoints per Service in one EndpointSlice,
/// as a JSON `List` (what `kubectl get -o json` prints). Every tenth Ingress has
/// TLS-less canary-free annotations of the common kind (affinity, rewrite).
pub fn cluster_list_json(ingresses: usize, endpoints: usize) -> Vec<u8> {
    let mut items = vec![serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "gangplank"},
        "spec": {"controller": "gangplank.io/ingress-controller"}
    })];
    for i in 0..ingresses {
        let ns = format!("namespace-{}", i % 50);
        let svc = format!("service-{i}");
        items.push(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": svc, "namespace": ns, "uid": format!("uid-svc-{i}"),
                         "labels": {"app": format!("app-{i}")}},
            "spec": {"clusterIP": format!("10.96.{}.{}", (i >> 8) & 0xff, i & 0xff),
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                     "selector": {"app": format!("app-{i}")}, "type": "ClusterIP"}
        }));
        let eps: Vec<serde_json::Value> = (0..endpoints)
            .map(|j| {
                serde_json::json!({
                    "addresses": [format!("10.{}.{}.{}", (i >> 8) & 0xff, i & 0xff, j + 1)],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "targetRef": {"kind": "Pod", "name": format!("app-{i}-{j}"), "namespace": ns}
                })
            })
            .collect();
        items.push(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{svc}-abcde"), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps
        }));
        let mut annotations = serde_json::Map::new();
        if i % 10 == 0 {
            annotations.insert(
                "nginx.ingress.kubernetes.io/affinity".into(),
                "cookie".into(),
            );
            annotations.insert(
                "nginx.ingress.kubernetes.io/proxy-body-size".into(),
                "8m".into(),
            );
        }
        items.push(serde_json::json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": format!("ingress-{i}"), "namespace": ns,
                         "annotations": annotations},
            "spec": {"ingressClassName": "gangplank", "rules": [{
                "host": format!("host-{i}.example.com"),
                "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": svc, "port": {"name": "http"}}}},
                    {"path": "/api", "pathType": "Prefix",
                     "backend": {"service": {"name": svc, "port": {"number": 80}}}}
                ]}
            }]}
        }));
    }
    serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))
        .unwrap_or_default()
}
