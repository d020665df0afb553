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
