//! Tests of the Kubernetes API-server stand-in (`gangplank_e2e::apiserver`): the raw
//! protocol through a plain HTTP client, then the real clients (kube-rs, and kubectl
//! when it is installed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gangplank_e2e::apiserver::{ApiServer, Options};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const LOCAL: &str = "127.0.0.1:0";

fn local() -> SocketAddr {
    LOCAL.parse().unwrap()
}

/// Runs a test body with an overall time limit.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("the test finished within 90 s");
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP client: one connection per request.

async fn send(
    server: &ApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: String,
) -> hyper::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", server.addr().to_string())
        .header("accept", "application/json");
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("an answer within 10 s")
        .unwrap()
}

/// One request; the status code and the JSON body (`Null` if not JSON).
async fn call(
    server: &ApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let resp = send(server, method, path, content_type, body).await;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(server: &ApiServer, path: &str) -> (u16, Value) {
    call(server, "GET", path, "", &Value::Null).await
}

async fn post(server: &ApiServer, path: &str, body: &Value) -> (u16, Value) {
    call(server, "POST", path, "application/json", body).await
}

async fn put(server: &ApiServer, path: &str, body: &Value) -> (u16, Value) {
    call(server, "PUT", path, "application/json", body).await
}

async fn patch(server: &ApiServer, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
    call(server, "PATCH", path, content_type, body).await
}

async fn delete(server: &ApiServer, path: &str) -> (u16, Value) {
    call(server, "DELETE", path, "", &Value::Null).await
}

const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// An open watch stream.
struct Watch {
    body: Incoming,
    buf: Vec<u8>,
}

impl Watch {
    async fn open(server: &ApiServer, path: &str) -> Watch {
        let resp = send(server, "GET", path, "", String::new()).await;
        assert_eq!(resp.status(), 200, "watch {path}");
        Watch {
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }

    /// The next event, `None` when the stream ends; fails after 5 s.
    async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=pos).collect();
                    return Some(serde_json::from_slice(&line).unwrap());
                }
                match self.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.buf.extend_from_slice(&data);
                        }
                    }
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .expect("a watch event (or the end) within 5 s")
    }

    /// The next event that is not a BOOKMARK.
    async fn next_change(&mut self) -> Option<Value> {
        loop {
            let ev = self.next().await?;
            if ev["type"] != "BOOKMARK" {
                return Some(ev);
            }
        }
    }
}

/// `(type, name)` of an event.
fn summary(ev: &Value) -> (String, String) {
    (
        ev["type"].as_str().unwrap_or_default().to_string(),
        ev["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn ev(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    })
}

fn ingress(name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "ingressClassName": "gangplank",
            "rules": [{"host": "example.com", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}},
            }]}}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
    })
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const INGS: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";

// ---------------------------------------------------------------------------------------
// The protocol, through a plain HTTP client.

#[tokio::test]
async fn discovery_and_version() {
    bounded(async {
        let server = ApiServer::start(local()).await.unwrap();
        let (code, api) = get(&server, "/api").await;
        assert_eq!((code, api["kind"].as_str()), (200, Some("APIVersions")));
        assert_eq!(api["versions"], json!(["v1"]));
        let (_, core) = get(&server, "/api/v1").await;
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for n in [
            "namespaces",
            "services",
            "services/status",
            "secrets",
            "configmaps",
            "events",
            "endpoints",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        let (_, groups) = get(&server, "/apis").await;
        let groups: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        for g in [
            "networking.k8s.io",
            "discovery.k8s.io",
            "coordination.k8s.io",
            "events.k8s.io",
        ] {
            assert!(groups.contains(&g), "{g} in {groups:?}");
        }
        let (code, net) = get(&server, "/apis/networking.k8s.io/v1").await;
        assert_eq!(code, 200);
        let ing = net["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "ingresses")
            .unwrap();
        assert_eq!(ing["kind"], "Ingress");
        assert_eq!(ing["namespaced"], true);
        assert!(
            net["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "ingresses/status")
        );
        let ic = net["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "ingressclasses")
            .unwrap();
        assert_eq!(ic["namespaced"], false);
        assert_eq!(get(&server, "/apis/networking.k8s.io").await.0, 200);
        let (code, version) = get(&server, "/version").await;
        assert_eq!(code, 200);
        assert_eq!(version["major"], "1");
        for path in [
            "/openapi/v2",
            "/openapi/v3",
            "/apis/example.com/v1",
            "/api/v1/widgets",
        ] {
            let (code, status) = get(&server, path).await;
            assert_eq!(code, 404, "{path}");
            assert_eq!(status["reason"], "NotFound", "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn crud_conflicts_and_patches() {
    bounded(async {
        let server = ApiServer::start(local()).await.unwrap();

        // Create, and the metadata it gets.
        let (code, a) = post(&server, CMS, &configmap("a", json!({"app": "web"}))).await;
        assert_eq!(code, 201, "{a}");
        assert_eq!(a["metadata"]["namespace"], "default");
        assert_eq!(a["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert!(a["metadata"]["creationTimestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(a["metadata"]["generation"], 1);
        let rv_a = rv(&a);

        let (code, dup) = post(&server, CMS, &configmap("a", json!({}))).await;
        assert_eq!((code, dup["reason"].as_str(), dup["code"].as_u64()), (409, Some("AlreadyExists"), Some(409)));
        assert_eq!(dup["kind"], "Status");
        assert_eq!(dup["details"]["name"], "a");

        let (code, gen_named) = post(
            &server,
            CMS,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}),
        )
        .await;
        assert_eq!(code, 201);
        let gen_name = gen_named["metadata"]["name"].as_str().unwrap();
        assert!(gen_name.starts_with("gen-") && gen_name.len() == 9, "{gen_name}");

        // Errors.
        let (code, s) = post(&server, "/api/v1/namespaces/nowhere/configmaps", &configmap("x", json!({}))).await;
        assert_eq!((code, s["reason"].as_str()), (404, Some("NotFound")), "{s}");
        let (code, s) = call(&server, "POST", CMS, "application/json", &json!("not an object")).await;
        assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")));
        let (code, s) = call(&server, "POST", CMS, "application/vnd.kubernetes.protobuf", &json!({})).await;
        assert_eq!((code, s["reason"].as_str()), (415, Some("UnsupportedMediaType")));
        let (code, s) = post(&server, CMS, &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})).await;
        assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")));
        let (code, s) = post(&server, CMS, &json!({"metadata": {"name": "Bad_Name"}})).await;
        assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
        let (code, s) = get(&server, &format!("{CMS}/missing")).await;
        assert_eq!((code, s["reason"].as_str(), s["code"].as_u64()), (404, Some("NotFound"), Some(404)));
        assert_eq!(s["message"], "configmaps \"missing\" not found");

        // Get and list (one namespace, all namespaces).
        let (code, got) = get(&server, &format!("{CMS}/a")).await;
        assert_eq!((code, &got), (200, &a));
        let (code, ns2) = post(&server, "/api/v1/namespaces", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})).await;
        assert_eq!(code, 201);
        assert_eq!(ns2["status"]["phase"], "Active");
        post(&server, "/api/v1/namespaces/other/configmaps", &configmap("b", json!({}))).await;
        let (code, list) = get(&server, CMS).await;
        assert_eq!(code, 200);
        assert_eq!(list["kind"], "ConfigMapList");
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        assert!(list["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().unwrap() >= rv_a);
        let (_, all) = get(&server, "/api/v1/configmaps?limit=500").await;
        assert_eq!(all["items"].as_array().unwrap().len(), 3);

        // Replace: a stale resourceVersion conflicts, none is unconditional.
        let mut changed = a.clone();
        changed["data"]["k"] = json!("v2");
        let (code, a2) = put(&server, &format!("{CMS}/a"), &changed).await;
        assert_eq!(code, 200, "{a2}");
        assert!(rv(&a2) > rv_a);
        assert_eq!(a2["metadata"]["uid"], a["metadata"]["uid"]);
        assert_eq!(a2["metadata"]["creationTimestamp"], a["metadata"]["creationTimestamp"]);
        let (code, s) = put(&server, &format!("{CMS}/a"), &changed).await;
        assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")));
        assert!(s["message"].as_str().unwrap().contains("the object has been modified"));
        let mut unconditional = changed.clone();
        unconditional["metadata"].as_object_mut().unwrap().remove("resourceVersion");
        unconditional["data"]["k"] = json!("v3");
        let (code, a3) = put(&server, &format!("{CMS}/a"), &unconditional).await;
        assert_eq!((code, a3["data"]["k"].as_str()), (200, Some("v3")));
        let (code, _) = put(&server, &format!("{CMS}/other-name"), &unconditional).await;
        assert_eq!(code, 400, "a body naming another object");
        let (code, _) = put(&server, &format!("{CMS}/missing"), &configmap("missing", json!({}))).await;
        assert_eq!(code, 404);
        // A write that changes nothing keeps the resourceVersion.
        let (_, same) = put(&server, &format!("{CMS}/a"), &a3).await;
        assert_eq!(rv(&same), rv(&a3));

        // Patches.
        let (code, p) = patch(&server, &format!("{CMS}/a"), MERGE, &json!({"metadata": {"labels": {"tier": "front"}}, "data": {"k": null, "m": "1"}})).await;
        assert_eq!(code, 200, "{p}");
        assert_eq!(p["metadata"]["labels"], json!({"app": "web", "tier": "front"}));
        assert_eq!(p["data"], json!({"m": "1"}));
        let (code, p) = patch(&server, &format!("{CMS}/a"), STRATEGIC, &json!({"metadata": {"labels": {"tier": null}}})).await;
        assert_eq!((code, &p["metadata"]["labels"]), (200, &json!({"app": "web"})));
        let (code, p) = patch(
            &server,
            &format!("{CMS}/a"),
            JSON_PATCH,
            &json!([{"op": "add", "path": "/data/n", "value": "2"}, {"op": "remove", "path": "/data/m"}]),
        )
        .await;
        assert_eq!((code, &p["data"]), (200, &json!({"n": "2"})));
        let (code, s) = patch(&server, &format!("{CMS}/a"), JSON_PATCH, &json!([{"op": "test", "path": "/data/n", "value": "3"}])).await;
        assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
        let (code, s) = patch(&server, &format!("{CMS}/a"), MERGE, &json!({"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}})).await;
        assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")), "a patch with a stale resourceVersion");
        let (code, _) = patch(&server, &format!("{CMS}/missing"), MERGE, &json!({})).await;
        assert_eq!(code, 404);
        let (code, _) = patch(&server, &format!("{CMS}/a"), "text/plain", &json!({})).await;
        assert_eq!(code, 415);

        // Apply patches: create or merge; a field manager is required.
        let applied = configmap("applied", json!({"owner": "test"}));
        let (code, s) = patch(&server, &format!("{CMS}/applied"), APPLY, &applied).await;
        assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")));
        let (code, p) = patch(&server, &format!("{CMS}/applied?fieldManager=test&force=true"), APPLY, &applied).await;
        assert_eq!(code, 201, "{p}");
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k: from-yaml\n";
        let resp = send(&server, "PATCH", &format!("{CMS}/applied?fieldManager=test"), APPLY, yaml.to_string()).await;
        assert_eq!(resp.status(), 200);
        let (_, p) = get(&server, &format!("{CMS}/applied")).await;
        assert_eq!(p["data"]["k"], "from-yaml");
        assert_eq!(p["metadata"]["labels"]["owner"], "test");

        // Delete: a Status with details, then 404; preconditions.
        let (code, s) = call(&server, "DELETE", &format!("{CMS}/a"), "application/json", &json!({"preconditions": {"uid": "nope"}})).await;
        assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")));
        let (code, s) = delete(&server, &format!("{CMS}/a")).await;
        assert_eq!(code, 200, "{s}");
        assert_eq!((s["kind"].as_str(), s["status"].as_str()), (Some("Status"), Some("Success")));
        assert_eq!(s["details"]["name"], "a");
        assert_eq!(s["details"]["uid"], a["metadata"]["uid"]);
        let (code, s) = delete(&server, &format!("{CMS}/a")).await;
        assert_eq!((code, s["reason"].as_str()), (404, Some("NotFound")));

        // dryRun changes nothing.
        let (code, _) = post(&server, &format!("{CMS}?dryRun=All"), &configmap("dry", json!({}))).await;
        assert_eq!(code, 201);
        assert_eq!(get(&server, &format!("{CMS}/dry")).await.0, 404);

        // Finalizers hold a deletion until they are removed.
        post(&server, CMS, &json!({"metadata": {"name": "held", "finalizers": ["gangplank.test/hold"]}})).await;
        let (code, held) = delete(&server, &format!("{CMS}/held")).await;
        assert_eq!(code, 202);
        assert!(held["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(get(&server, &format!("{CMS}/held")).await.0, 200);
        patch(&server, &format!("{CMS}/held"), MERGE, &json!({"metadata": {"finalizers": null}})).await;
        assert_eq!(get(&server, &format!("{CMS}/held")).await.0, 404);

        // Secrets fold stringData into data; services get defaults and a cluster IP.
        let (_, secret) = post(&server, "/api/v1/namespaces/default/secrets", &json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}})).await;
        assert_eq!(secret["data"]["user"], "YWRtaW4=");
        assert_eq!(secret["type"], "Opaque");
        let (_, svc) = post(&server, "/api/v1/namespaces/default/services", &json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})).await;
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert!(svc["spec"]["clusterIP"].is_string());

        // Cluster-scoped kinds: no namespace in the path or the object.
        let (code, class) = post(&server, "/apis/networking.k8s.io/v1/ingressclasses", &json!({"metadata": {"name": "gangplank", "namespace": "ignored"}, "spec": {"controller": "gangplank.io/controller"}})).await;
        assert_eq!(code, 201, "{class}");
        assert!(class["metadata"].get("namespace").is_none());
        assert_eq!(get(&server, "/apis/networking.k8s.io/v1/ingressclasses/gangplank").await.0, 200);
        assert_eq!(get(&server, "/apis/networking.k8s.io/v1/namespaces/default/ingressclasses/gangplank").await.0, 404);

        // Deleting a namespace deletes what is inside.
        let (code, _) = delete(&server, "/api/v1/namespaces/other").await;
        assert_eq!(code, 200);
        assert_eq!(get(&server, "/api/v1/namespaces/other/configmaps/b").await.0, 404);

        // deletecollection with a selector.
        let (code, gone) = call(&server, "DELETE", &format!("{CMS}?labelSelector=owner%3Dtest"), "", &Value::Null).await;
        assert_eq!(code, 200);
        assert_eq!(gone["items"].as_array().unwrap().len(), 1);
        assert_eq!(get(&server, &format!("{CMS}/applied")).await.0, 404);

        // Direct access agrees with the HTTP side.
        assert!(server.get("v1", "ConfigMap", "default", gen_name).is_some());
        assert_eq!(server.list("v1", "Service", None).len(), 1);
        let direct = server.create(configmap("direct", json!({}))).unwrap();
        assert_eq!(direct["metadata"]["namespace"], "default");
        assert_eq!(server.create(configmap("direct", json!({}))).unwrap_err().code, 409);
        assert_eq!(server.delete("v1", "ConfigMap", "default", "direct").unwrap()["metadata"]["name"], "direct");
        assert!(server.requests().iter().any(|r| r.method == "PATCH" && r.status == 409));
    })
    .await;
}

#[tokio::test]
async fn status_subresource_and_generation() {
    bounded(async {
        let server = ApiServer::start(local()).await.unwrap();
        let (code, ing) = post(&server, INGS, &ingress("web")).await;
        assert_eq!(code, 201, "{ing}");
        assert!(ing.get("status").is_none(), "a create drops .status");
        assert_eq!(ing["metadata"]["generation"], 1);

        // A normal PUT ignores .status; a spec change bumps the generation.
        let mut changed = ing.clone();
        changed["spec"]["rules"][0]["host"] = json!("example.org");
        changed["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}});
        let (code, ing2) = put(&server, &format!("{INGS}/web"), &changed).await;
        assert_eq!(code, 200);
        assert!(ing2.get("status").is_none());
        assert_eq!(ing2["spec"]["rules"][0]["host"], "example.org");
        assert_eq!(ing2["metadata"]["generation"], 2);

        // Labels are metadata: no generation bump.
        let (_, ing3) = patch(&server, &format!("{INGS}/web"), MERGE, &json!({"metadata": {"labels": {"a": "b"}}, "status": {"loadBalancer": {}}})).await;
        assert_eq!(ing3["metadata"]["generation"], 2);
        assert!(ing3.get("status").is_none(), "a normal patch ignores .status");

        // PATCH /status: only .status changes.
        let (code, st) = patch(
            &server,
            &format!("{INGS}/web/status"),
            MERGE,
            &json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}, "spec": {"ingressClassName": "other"}}),
        )
        .await;
        assert_eq!(code, 200, "{st}");
        assert_eq!(st["status"]["loadBalancer"]["ingress"][0]["ip"], "192.0.2.1");
        assert_eq!(st["spec"]["ingressClassName"], "gangplank");
        assert_eq!(st["metadata"]["generation"], 2);
        assert!(rv(&st) > rv(&ing3));

        // PUT /status with a stale resourceVersion conflicts; with the current one works.
        let mut stale = ing3.clone();
        stale["status"] = json!({"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}});
        let (code, s) = put(&server, &format!("{INGS}/web/status"), &stale).await;
        assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")));
        let mut fresh = st.clone();
        fresh["status"] = json!({"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}});
        fresh["spec"]["rules"] = json!([]);
        let (code, st2) = put(&server, &format!("{INGS}/web/status"), &fresh).await;
        assert_eq!(code, 200);
        assert_eq!(st2["status"]["loadBalancer"]["ingress"][0]["hostname"], "lb.example");
        assert_eq!(st2["spec"]["rules"][0]["host"], "example.org");
        let (code, got) = get(&server, &format!("{INGS}/web/status")).await;
        assert_eq!((code, &got), (200, &st2));

        // Kinds without a status subresource have no /status.
        post(&server, CMS, &configmap("c", json!({}))).await;
        assert_eq!(get(&server, &format!("{CMS}/c/status")).await.0, 404);

        // Direct access: apply sets status too, patch_status only status.
        let applied = server.apply(ingress("direct")).unwrap();
        assert_eq!(applied["status"]["loadBalancer"]["ingress"][0]["ip"], "192.0.2.1");
        let patched = server
            .patch_status("networking.k8s.io/v1", "Ingress", "default", "direct", &json!({"status": {"loadBalancer": null}}))
            .unwrap();
        assert_eq!(patched["status"], json!({}));
    })
    .await;
}

#[tokio::test]
async fn label_and_field_selectors() {
    bounded(async {
        let server = ApiServer::start(local()).await.unwrap();
        for (name, labels) in [
            ("web", json!({"app": "web", "tier": "front"})),
            ("api", json!({"app": "api", "tier": "back"})),
            ("db", json!({"app": "db"})),
        ] {
            assert_eq!(post(&server, CMS, &configmap(name, labels)).await.0, 201);
        }
        let names = |list: &Value| -> Vec<String> {
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        for (query, want) in [
            ("labelSelector=app%3Dweb", vec!["web"]),
            ("labelSelector=app%3D%3Dapi", vec!["api"]),
            ("labelSelector=app!%3Dweb", vec!["api", "db"]),
            ("labelSelector=app+in+(web,db)", vec!["db", "web"]),
            ("labelSelector=app%20notin%20%28web%2Cdb%29", vec!["api"]),
            ("labelSelector=tier", vec!["api", "web"]),
            ("labelSelector=!tier", vec!["db"]),
            ("labelSelector=tier,app%3Dapi", vec!["api"]),
            ("fieldSelector=metadata.name%3Ddb", vec!["db"]),
            ("fieldSelector=metadata.name!%3Ddb", vec!["api", "web"]),
            (
                "fieldSelector=metadata.namespace%3Ddefault&labelSelector=tier%3Dfront",
                vec!["web"],
            ),
            ("fieldSelector=metadata.namespace%3Delsewhere", vec![]),
        ] {
            let (code, list) = get(&server, &format!("{CMS}?{query}")).await;
            assert_eq!(code, 200, "{query}: {list}");
            assert_eq!(names(&list), want, "{query}");
        }
        let (code, s) = get(&server, &format!("{CMS}?labelSelector=app+in+web")).await;
        assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")));
        let (_, all) = get(&server, "/api/v1/configmaps?labelSelector=app").await;
        assert_eq!(names(&all).len(), 3);

        // Watches apply selectors too: entering the selection is ADDED, leaving it DELETED.
        let (_, list) = get(&server, CMS).await;
        let from = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let mut w = Watch::open(
            &server,
            &format!("{CMS}?watch=true&resourceVersion={from}&labelSelector=tier%3Dfront"),
        )
        .await;
        patch(
            &server,
            &format!("{CMS}/db"),
            MERGE,
            &json!({"metadata": {"labels": {"tier": "front"}}}),
        )
        .await;
        patch(
            &server,
            &format!("{CMS}/api"),
            MERGE,
            &json!({"data": {"ignored": "yes"}}),
        )
        .await;
        patch(
            &server,
            &format!("{CMS}/web"),
            MERGE,
            &json!({"metadata": {"labels": {"tier": "back"}}}),
        )
        .await;
        patch(
            &server,
            &format!("{CMS}/db"),
            MERGE,
            &json!({"data": {"k": "v2"}}),
        )
        .await;
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(summary(&w.next_change().await.unwrap()));
        }
        assert_eq!(
            seen,
            vec![
                ev("ADDED", "db"),
                ev("DELETED", "web"),
                ev("MODIFIED", "db")
            ]
        );
        let mut fw = Watch::open(
            &server,
            &format!("{CMS}?watch=1&fieldSelector=metadata.name%3Dapi"),
        )
        .await;
        assert_eq!(
            summary(&fw.next_change().await.unwrap()),
            ev("ADDED", "api")
        );
        delete(&server, &format!("{CMS}/web")).await;
        delete(&server, &format!("{CMS}/api")).await;
        assert_eq!(
            summary(&fw.next_change().await.unwrap()),
            ev("DELETED", "api")
        );
    })
    .await;
}

#[tokio::test]
async fn watch_replay_initial_state_and_expiry() {
    bounded(async {
        let server = ApiServer::start_with(
            local(),
            Options {
                history_limit: 20,
                ..Options::default()
            },
        )
        .await
        .unwrap();
        post(&server, CMS, &configmap("before", json!({}))).await;
        let (_, list) = get(&server, CMS).await;
        let from = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();

        // Changes made before the watch starts are replayed from the list's version.
        post(&server, CMS, &configmap("a", json!({}))).await;
        patch(
            &server,
            &format!("{CMS}/a"),
            MERGE,
            &json!({"data": {"k": "2"}}),
        )
        .await;
        delete(&server, &format!("{CMS}/before")).await;
        post(
            &server,
            "/api/v1/namespaces/kube-system/configmaps",
            &configmap("elsewhere", json!({})),
        )
        .await;
        let mut w = Watch::open(
            &server,
            &format!("{CMS}?watch=true&resourceVersion={from}&allowWatchBookmarks=false"),
        )
        .await;
        let mut seen = Vec::new();
        let mut last_rv = 0;
        for _ in 0..3 {
            let e = w.next().await.unwrap();
            let this = rv(&e["object"]);
            assert!(this > last_rv, "resourceVersions increase: {e}");
            last_rv = this;
            seen.push(summary(&e));
        }
        assert_eq!(
            seen,
            vec![
                ev("ADDED", "a"),
                ev("MODIFIED", "a"),
                ev("DELETED", "before")
            ]
        );
        // ...then live ones.
        post(&server, CMS, &configmap("b", json!({}))).await;
        let e = w.next().await.unwrap();
        assert_eq!(summary(&e), ev("ADDED", "b"));
        assert_eq!(e["object"]["kind"], "ConfigMap");
        assert_eq!(e["object"]["apiVersion"], "v1");

        // From 0 (or unset): the current objects as ADDED, then live changes.
        for q in ["watch=true&resourceVersion=0", "watch=true"] {
            let mut w0 = Watch::open(&server, &format!("{CMS}?{q}")).await;
            let mut initial = vec![
                summary(&w0.next().await.unwrap()),
                summary(&w0.next().await.unwrap()),
            ];
            initial.sort();
            assert_eq!(initial, vec![ev("ADDED", "a"), ev("ADDED", "b")], "{q}");
        }
        // All namespaces.
        let mut wall = Watch::open(&server, "/api/v1/configmaps?watch=true").await;
        let mut all = Vec::new();
        for _ in 0..3 {
            all.push(summary(&wall.next().await.unwrap()).1);
        }
        all.sort();
        assert_eq!(all, vec!["a", "b", "elsewhere"]);

        // Too old: an ERROR event with a 410 Expired Status, then the end of the stream.
        for i in 0..30 {
            patch(
                &server,
                &format!("{CMS}/b"),
                MERGE,
                &json!({"data": {"i": i.to_string()}}),
            )
            .await;
        }
        let mut old =
            Watch::open(&server, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
        let e = old.next().await.unwrap();
        assert_eq!(e["type"], "ERROR", "{e}");
        assert_eq!(e["object"]["kind"], "Status");
        assert_eq!(e["object"]["code"], 410);
        assert_eq!(e["object"]["reason"], "Expired");
        assert!(old.next().await.is_none());

        // Expiry on demand: every resourceVersion handed out so far is too old; a relist
        // gets a fresh one that watches fine.
        let (_, list) = get(&server, CMS).await;
        let recent = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let mut ok = Watch::open(
            &server,
            &format!("{CMS}?watch=true&resourceVersion={recent}"),
        )
        .await;
        server.faults().expire_resource_versions();
        let mut expired = Watch::open(
            &server,
            &format!("{CMS}?watch=true&resourceVersion={recent}"),
        )
        .await;
        assert_eq!(expired.next().await.unwrap()["object"]["code"], 410);
        let (_, list) = get(&server, CMS).await;
        let fresh = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(fresh, recent);
        let mut renewed = Watch::open(
            &server,
            &format!("{CMS}?watch=true&resourceVersion={fresh}"),
        )
        .await;
        post(&server, CMS, &configmap("c", json!({}))).await;
        assert_eq!(summary(&renewed.next().await.unwrap()), ev("ADDED", "c"));
        // A watch opened before the expiry is not touched.
        assert_eq!(summary(&ok.next().await.unwrap()), ev("ADDED", "c"));
        let (code, s) = get(&server, &format!("{CMS}?watch=true&resourceVersion=abc")).await;
        assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")));
    })
    .await;
}

#[tokio::test]
async fn bookmarks_timeouts_and_initial_events() {
    bounded(async {
        let server = ApiServer::start_with(
            local(),
            Options {
                bookmark_interval: Duration::from_millis(100),
                ..Options::default()
            },
        )
        .await
        .unwrap();
        post(&server, CMS, &configmap("a", json!({}))).await;
        let current = server.resource_version();

        // Bookmarks carry the kind and the latest resourceVersion; the stream ends after
        // timeoutSeconds.
        let started = Instant::now();
        let mut w = Watch::open(
            &server,
            &format!("{CMS}?watch=true&resourceVersion={current}&allowWatchBookmarks=true&timeoutSeconds=1"),
        )
        .await;
        let b = w.next().await.unwrap();
        assert_eq!(b["type"], "BOOKMARK");
        assert_eq!(b["object"]["kind"], "ConfigMap");
        assert_eq!(b["object"]["apiVersion"], "v1");
        assert_eq!(rv(&b["object"]), current);
        post(&server, CMS, &configmap("b", json!({}))).await;
        let added = w.next_change().await.unwrap();
        assert_eq!(summary(&added), ev("ADDED", "b"));
        let b = w.next().await.unwrap();
        assert_eq!((b["type"].as_str(), rv(&b["object"])), (Some("BOOKMARK"), rv(&added["object"])));
        while let Some(e) = w.next().await {
            assert_eq!(e["type"], "BOOKMARK");
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");

        // No bookmarks unless asked.
        let mut quiet = Watch::open(&server, &format!("{CMS}?watch=true&resourceVersion={current}&timeoutSeconds=1")).await;
        assert_eq!(summary(&quiet.next().await.unwrap()), ev("ADDED", "b"));
        assert!(quiet.next().await.is_none());

        // sendInitialEvents: ADDED for the current objects, then the bookmark that ends them.
        let mut streaming = Watch::open(
            &server,
            &format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"),
        )
        .await;
        assert_eq!(streaming.next().await.unwrap()["type"], "ADDED");
        assert_eq!(streaming.next().await.unwrap()["type"], "ADDED");
        let end = streaming.next().await.unwrap();
        assert_eq!(end["type"], "BOOKMARK");
        assert_eq!(end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    })
    .await;
}

#[tokio::test]
async fn fault_injection() {
    bounded(async {
        let server = ApiServer::start(local()).await.unwrap();
        let faults = server.faults();

        // Exactly the next n resource requests fail; discovery is never failed.
        faults.fail_next(2);
        assert_eq!(get(&server, "/api/v1").await.0, 200);
        for _ in 0..2 {
            let (code, s) = get(&server, CMS).await;
            assert_eq!((code, s["reason"].as_str()), (500, Some("InternalError")));
        }
        assert_eq!(get(&server, CMS).await.0, 200);

        // An error rate of 1 fails everything, 0 nothing, 0.5 about half.
        faults.set_error_rate(1.0);
        for _ in 0..5 {
            assert_eq!(get(&server, CMS).await.0, 500);
        }
        assert_eq!(get(&server, "/version").await.0, 200);
        faults.set_error_rate(0.5);
        let mut failed = 0;
        for _ in 0..60 {
            if get(&server, CMS).await.0 == 500 {
                failed += 1;
            }
        }
        assert!(
            (10..=50).contains(&failed),
            "{failed} of 60 failed at rate 0.5"
        );
        faults.reset();
        for _ in 0..5 {
            assert_eq!(get(&server, CMS).await.0, 200);
        }

        // Latency delays every request.
        faults.set_latency(Duration::from_millis(300));
        let started = Instant::now();
        assert_eq!(get(&server, "/version").await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
        faults.reset();

        // Dropping watches ends open streams cleanly.
        let mut w1 = Watch::open(
            &server,
            &format!(
                "{CMS}?watch=true&resourceVersion={}",
                server.resource_version()
            ),
        )
        .await;
        let mut w2 = Watch::open(&server, "/apis/networking.k8s.io/v1/ingresses?watch=true").await;
        assert_eq!(server.active_watches(), 2);
        faults.drop_watches();
        assert!(w1.next().await.is_none());
        assert!(w2.next().await.is_none());
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.active_watches() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.active_watches(), 0);
        // New watches work afterwards.
        let mut w3 = Watch::open(
            &server,
            &format!(
                "{CMS}?watch=true&resourceVersion={}",
                server.resource_version()
            ),
        )
        .await;
        post(&server, CMS, &configmap("after", json!({}))).await;
        assert_eq!(summary(&w3.next().await.unwrap()), ev("ADDED", "after"));
    })
    .await;
}

#[tokio::test]
async fn stops_when_dropped() {
    bounded(async {
        let server = ApiServer::start(local()).await.unwrap();
        let addr = server.addr();
        let mut w = Watch::open(&server, "/api/v1/configmaps?watch=true").await;
        drop(server);
        assert!(w.next().await.is_none());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                break;
            }
            assert!(Instant::now() < deadline, "still accepting after drop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// kube-rs.

mod kube_rs {
    use super::*;
    use futures_util::StreamExt;
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::api::networking::v1::Ingress;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube::runtime::watcher::{self, Event};
    use kube::runtime::{WatchStreamExt, reflector};
    use kube::{Client, Config, ResourceExt};

    async fn client(server: &ApiServer, dir: &Path) -> Client {
        // Through the kubeconfig file, as the controller would be configured.
        let path = dir.join("kubeconfig");
        server.write_kubeconfig(&path).unwrap();
        let kubeconfig = Kubeconfig::read_from(&path).unwrap();
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        assert_eq!(config.default_namespace, "default");
        Client::try_from(config).unwrap()
    }

    fn cm(name: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("suite".to_string(), "kube".to_string())].into()),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_string(), value.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    fn describe(e: &Event<ConfigMap>) -> String {
        match e {
            Event::Init => "Init".into(),
            Event::InitApply(o) => format!("InitApply({})", o.name_any()),
            Event::InitDone => "InitDone".into(),
            Event::Apply(o) => format!(
                "Apply({}={})",
                o.name_any(),
                o.data
                    .as_ref()
                    .and_then(|d| d.get("k"))
                    .cloned()
                    .unwrap_or_default()
            ),
            Event::Delete(o) => format!("Delete({})", o.name_any()),
        }
    }

    /// The next `n` watcher events (errors skipped), as strings.
    async fn take<S>(stream: &mut S, n: usize) -> Vec<String>
    where
        S: futures_util::Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin,
    {
        let mut out = Vec::new();
        while out.len() < n {
            let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("a watcher event within 10 s")
                .expect("the watcher stream goes on");
            if let Ok(e) = item {
                out.push(describe(&e));
            }
        }
        out
    }

    #[tokio::test]
    async fn watcher_sees_added_modified_deleted_and_recovers() {
        bounded(async {
            let server = ApiServer::start(local()).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let client = client(&server, dir.path()).await;
            let version = client.apiserver_version().await.unwrap();
            assert_eq!(version.major, "1");
            let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
            api.create(&PostParams::default(), &cm("first", "1"))
                .await
                .unwrap();

            let mut stream =
                watcher::watcher(api.clone(), watcher::Config::default().labels("suite=kube"))
                    .boxed();
            assert_eq!(
                take(&mut stream, 3).await,
                ["Init", "InitApply(first)", "InitDone"]
            );

            api.create(&PostParams::default(), &cm("second", "1"))
                .await
                .unwrap();
            api.patch(
                "second",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"k": "2"}})),
            )
            .await
            .unwrap();
            let deleted = api.delete("first", &DeleteParams::default()).await.unwrap();
            assert!(deleted.is_right(), "a ConfigMap deletion answers a Status");
            assert_eq!(
                take(&mut stream, 3).await,
                ["Apply(second=1)", "Apply(second=2)", "Delete(first)"]
            );

            // The watch asked for bookmarks and a timeout, from the list's version.
            let watch_uri = server
                .requests()
                .into_iter()
                .find(|r| r.uri.contains("watch=true"))
                .unwrap()
                .uri;
            assert!(
                watch_uri.contains("allowWatchBookmarks=true"),
                "{watch_uri}"
            );
            assert!(watch_uri.contains("timeoutSeconds="), "{watch_uri}");
            assert!(watch_uri.contains("resourceVersion="), "{watch_uri}");

            // A dropped watch resumes from its resourceVersion without a relist.
            server.faults().drop_watches();
            api.create(&PostParams::default(), &cm("third", "1"))
                .await
                .unwrap();
            assert_eq!(take(&mut stream, 1).await, ["Apply(third=1)"]);

            // An expired resourceVersion makes it relist: Init again, then live events.
            server.faults().expire_resource_versions();
            server.faults().drop_watches();
            assert_eq!(
                take(&mut stream, 4).await,
                ["Init", "InitApply(second)", "InitApply(third)", "InitDone"]
            );
            api.replace("third", &PostParams::default(), &{
                let mut c = api.get("third").await.unwrap();
                c.data = Some([("k".to_string(), "3".to_string())].into());
                c
            })
            .await
            .unwrap();
            assert_eq!(take(&mut stream, 1).await, ["Apply(third=3)"]);
        })
        .await;
    }

    #[tokio::test]
    async fn reflector_store_follows_changes() {
        bounded(async {
            let server = ApiServer::start(local()).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let client = client(&server, dir.path()).await;
            let api: Api<ConfigMap> = Api::namespaced(client, "default");
            api.create(&PostParams::default(), &cm("one", "1"))
                .await
                .unwrap();
            let (reader, writer) = reflector::store();
            let rf = reflector(
                writer,
                watcher::watcher(api.clone(), watcher::Config::default()),
            )
            .default_backoff()
            .applied_objects();
            let task = tokio::spawn(async move {
                let mut rf = std::pin::pin!(rf);
                while rf.next().await.is_some() {}
            });
            tokio::time::timeout(Duration::from_secs(10), reader.wait_until_ready())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(reader.state().len(), 1);
            api.create(&PostParams::default(), &cm("two", "2"))
                .await
                .unwrap();
            api.delete("one", &DeleteParams::default()).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let names: Vec<String> = reader.state().iter().map(|o| o.name_any()).collect();
                if names == ["two"] {
                    break;
                }
                assert!(Instant::now() < deadline, "the store has {names:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            task.abort();

            // The streaming-list mode (sendInitialEvents) ends its initial events with the
            // annotated bookmark.
            let mut streaming =
                watcher::watcher(api, watcher::Config::default().streaming_lists()).boxed();
            assert_eq!(
                take(&mut streaming, 3).await,
                ["Init", "InitApply(two)", "InitDone"]
            );
            assert!(
                server
                    .requests()
                    .iter()
                    .any(|r| r.uri.contains("sendInitialEvents=true"))
            );
        })
        .await;
    }

    #[tokio::test]
    async fn lease_optimistic_concurrency_and_client_calls() {
        bounded(async {
            let server = ApiServer::start(local()).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let client = client(&server, dir.path()).await;
            let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some("gangplank-leader".into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some("a".into()),
                    lease_duration_seconds: Some(15),
                    ..LeaseSpec::default()
                }),
            };
            let created = leases.create(&PostParams::default(), &lease).await.unwrap();
            let api_error = |e: kube::Error| match e {
                kube::Error::Api(s) => (s.code, s.reason.clone()),
                other => panic!("not an API error: {other}"),
            };
            assert_eq!(
                api_error(leases.create(&PostParams::default(), &lease).await.unwrap_err()),
                (409, "AlreadyExists".to_string())
            );
            assert_eq!(
                api_error(leases.get("nobody").await.unwrap_err()),
                (404, "NotFound".to_string())
            );
            assert!(leases.get_opt("nobody").await.unwrap().is_none());

            // Candidate b takes over from the version it read...
            let mut by_b = created.clone();
            by_b.spec.as_mut().unwrap().holder_identity = Some("b".into());
            let taken = leases.replace("gangplank-leader", &PostParams::default(), &by_b).await.unwrap();
            assert_ne!(taken.resource_version(), created.resource_version());
            // ...so candidate c, with the same stale version, gets a conflict.
            let mut by_c = created.clone();
            by_c.spec.as_mut().unwrap().holder_identity = Some("c".into());
            assert_eq!(
                api_error(leases.replace("gangplank-leader", &PostParams::default(), &by_c).await.unwrap_err()),
                (409, "Conflict".to_string())
            );
            let now = leases.get("gangplank-leader").await.unwrap();
            assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("b"));

            // Server-side apply (create, then update), strategic patch, list with selectors.
            let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
            let pp = PatchParams::apply("gangplank").force();
            let applied = cms
                .patch("applied", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied", "labels": {"suite": "kube"}}, "data": {"k": "1"}})))
                .await
                .unwrap();
            assert_eq!(applied.data.unwrap()["k"], "1");
            let applied = cms
                .patch("applied", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "2"}})))
                .await
                .unwrap();
            assert_eq!(applied.data.unwrap()["k"], "2");
            let patched = cms
                .patch("applied", &PatchParams::default(), &Patch::Strategic(json!({"data": {"j": "x"}})))
                .await
                .unwrap();
            assert_eq!(patched.data.unwrap()["j"], "x");
            let listed = cms.list(&ListParams::default().labels("suite=kube")).await.unwrap();
            assert_eq!(listed.items.len(), 1);
            assert!(listed.metadata.resource_version.is_some());
            assert!(cms.list(&ListParams::default().labels("suite!=kube")).await.unwrap().items.is_empty());

            // The status subresource through patch_status / replace_status.
            let ings: Api<Ingress> = Api::default_namespaced(client.clone());
            let ing: Ingress = serde_json::from_value(ingress("web")).unwrap();
            let ing = ings.create(&PostParams::default(), &ing).await.unwrap();
            assert!(ing.status.is_none());
            let st = ings
                .patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}}})))
                .await
                .unwrap();
            let ip = st.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0].ip.clone();
            assert_eq!(ip.as_deref(), Some("192.0.2.7"));
            // Deleting a namespace-scoped Ingress answers a Status; the object is gone.
            ings.delete("web", &DeleteParams::default()).await.unwrap();
            assert!(ings.get_opt("web").await.unwrap().is_none());
            // Injected failures reach the client as 500s.
            server.faults().fail_next(1);
            assert_eq!(api_error(cms.get("applied").await.unwrap_err()).0, 500);
            assert!(cms.get("applied").await.is_ok());
        })
        .await;
    }
    #[tokio::test]
    async fn recorder_publishes_events() {
        bounded(async {
            use k8s_openapi::api::events::v1::Event as K8sEvent;
            use kube::Resource;
            use kube::runtime::events::{Event, EventType, Recorder, Reporter};

            let server = ApiServer::start(local()).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let client = client(&server, dir.path()).await;
            let ings: Api<Ingress> = Api::default_namespaced(client.clone());
            let ing: Ingress = serde_json::from_value(ingress("web")).unwrap();
            let ing = ings.create(&PostParams::default(), &ing).await.unwrap();
            let recorder = Recorder::new(
                client.clone(),
                Reporter {
                    controller: "gangplank".into(),
                    instance: Some("gangplank-0".into()),
                },
            );
            let event = Event {
                type_: EventType::Normal,
                reason: "Sync".into(),
                note: Some("Scheduled for sync".into()),
                action: "Reconcile".into(),
                secondary: None,
            };
            // The first publication creates the Event, the second patches its series.
            recorder
                .publish(&event, &ing.object_ref(&()))
                .await
                .unwrap();
            recorder
                .publish(&event, &ing.object_ref(&()))
                .await
                .unwrap();
            let events: Api<K8sEvent> = Api::default_namespaced(client);
            let list = events.list(&ListParams::default()).await.unwrap();
            assert_eq!(list.items.len(), 1);
            let published = &list.items[0];
            assert_eq!(published.reason.as_deref(), Some("Sync"));
            assert_eq!(
                published.regarding.as_ref().unwrap().name.as_deref(),
                Some("web")
            );
            assert_eq!(published.series.as_ref().unwrap().count, 2);
            assert_eq!(
                server
                    .list("events.k8s.io/v1", "Event", Some("default"))
                    .len(),
                1
            );
            assert!(
                server.list("v1", "Event", None).is_empty(),
                "core Events are another collection"
            );
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------
// kubectl.

mod kubectl {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};

    fn installed() -> bool {
        Command::new("kubectl")
            .args(["version", "--client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    struct Kubectl {
        kubeconfig: std::path::PathBuf,
        cache: std::path::PathBuf,
    }

    impl Kubectl {
        fn command(&self, args: &[&str]) -> Command {
            let mut cmd = Command::new("kubectl");
            cmd.env("KUBECONFIG", &self.kubeconfig)
                .arg("--cache-dir")
                .arg(&self.cache)
                .arg("--request-timeout=10s")
                .args(args)
                .stdin(Stdio::null());
            cmd
        }

        /// Runs kubectl to completion (off the runtime's threads); stdout on success.
        async fn run(&self, args: &[&str]) -> String {
            let mut cmd = self.command(args);
            let what = args.join(" ");
            let out = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .unwrap()
                .unwrap();
            assert!(
                out.status.success(),
                "kubectl {what}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        /// Runs kubectl expecting it to fail; its stderr.
        async fn fail(&self, args: &[&str]) -> String {
            let mut cmd = self.command(args);
            let out = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .unwrap()
                .unwrap();
            assert!(
                !out.status.success(),
                "kubectl {} succeeded",
                args.join(" ")
            );
            String::from_utf8_lossy(&out.stderr).into_owned()
        }
    }

    const INGRESS_YAML: &str = "\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  labels:
    app: web
spec:
  ingressClassName: gangplank
  rules:
  - host: example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
";

    const SERVICE_YAML: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: https
    port: 443
";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kubectl_drives_the_stand_in() {
        if !installed() {
            println!("skipped: kubectl is not on PATH");
            return;
        }
        bounded(async {
            let server = ApiServer::start(local()).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let k = Kubectl {
                kubeconfig: dir.path().join("kubeconfig"),
                cache: dir.path().join("cache"),
            };
            server.write_kubeconfig(&k.kubeconfig).unwrap();
            let ingress_file = dir.path().join("ingress.yaml");
            std::fs::write(&ingress_file, INGRESS_YAML).unwrap();
            let ingress_path = ingress_file.to_str().unwrap();

            // A watch running alongside, as `kubectl get -w` prints it.
            let mut watcher = k
                .command(&[
                    "get",
                    "ingresses",
                    "--watch",
                    "--output-watch-events",
                    "-o",
                    "json",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let watched = Arc::new(Mutex::new(String::new()));
            let mut stdout = watcher.stdout.take().unwrap();
            let sink = watched.clone();
            let reader = std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
            let deadline = Instant::now() + Duration::from_secs(20);
            while server.active_watches() == 0 {
                assert!(Instant::now() < deadline, "kubectl get -w never watched");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }

            // There is no OpenAPI, so client-side validation is off.
            let out = k
                .run(&["create", "--validate=false", "-f", ingress_path])
                .await;
            assert!(
                out.contains("ingress.networking.k8s.io/web created"),
                "{out}"
            );
            let err = k
                .fail(&["create", "--validate=false", "-f", ingress_path])
                .await;
            assert!(
                err.contains("AlreadyExists") || err.contains("already exists"),
                "{err}"
            );

            let got: Value =
                serde_json::from_str(&k.run(&["get", "ingress", "web", "-o", "json"]).await)
                    .unwrap();
            assert_eq!(got["spec"]["rules"][0]["host"], "example.com");
            assert_eq!(got["metadata"]["namespace"], "default");
            let table = k.run(&["get", "ingresses"]).await;
            assert!(table.contains("web"), "{table}");

            let out = k.run(&["label", "ingress", "web", "tier=front"]).await;
            assert!(out.contains("labeled"), "{out}");
            let selected = k
                .run(&[
                    "get",
                    "ingresses",
                    "-l",
                    "tier in (front),app",
                    "-o",
                    "name",
                ])
                .await;
            assert_eq!(selected.trim(), "ingress.networking.k8s.io/web");
            assert!(
                k.run(&["get", "ingresses", "-l", "tier!=front", "-o", "name"])
                    .await
                    .trim()
                    .is_empty()
            );

            let out = k
                .run(&[
                    "patch",
                    "ingress",
                    "web",
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}"#,
                ])
                .await;
            assert!(out.contains("patched"), "{out}");
            let ing = server
                .get("networking.k8s.io/v1", "Ingress", "default", "web")
                .unwrap();
            assert_eq!(
                ing["status"]["loadBalancer"]["ingress"][0]["ip"],
                "192.0.2.10"
            );
            assert_eq!(ing["metadata"]["labels"]["tier"], "front");
            // The default (strategic) patch type works on the status too.
            k.run(&[
                "patch",
                "ingress",
                "web",
                "--subresource=status",
                "-p",
                r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.11"}]}}}"#,
            ])
            .await;
            let ing = server
                .get("networking.k8s.io/v1", "Ingress", "default", "web")
                .unwrap();
            assert_eq!(
                ing["status"]["loadBalancer"]["ingress"][0]["ip"],
                "192.0.2.11"
            );

            // replace: from what get printed; a second replace from the same stale
            // version conflicts.
            let mut edited = serde_json::from_str::<Value>(
                &k.run(&["get", "ingress", "web", "-o", "json"]).await,
            )
            .unwrap();
            edited["spec"]["rules"][0]["host"] = json!("example.org");
            let edited_file = dir.path().join("edited.json");
            std::fs::write(&edited_file, edited.to_string()).unwrap();
            let edited_path = edited_file.to_str().unwrap();
            k.run(&["replace", "--validate=false", "-f", edited_path])
                .await;
            let err = k
                .fail(&["replace", "--validate=false", "-f", edited_path])
                .await;
            assert!(
                err.contains("Conflict") || err.contains("the object has been modified"),
                "{err}"
            );

            // apply (client-side): create, then a three-way strategic merge.
            let svc_file = dir.path().join("service.yaml");
            std::fs::write(&svc_file, SERVICE_YAML).unwrap();
            let svc_path = svc_file.to_str().unwrap();
            let out = k.run(&["apply", "--validate=false", "-f", svc_path]).await;
            assert!(out.contains("service/web created"), "{out}");
            std::fs::write(
                &svc_file,
                SERVICE_YAML
                    .replace("targetPort: 8080", "targetPort: 9090")
                    .replace(
                        "  - name: https\n    port: 443\n",
                        "  - name: metrics\n    port: 9100\n",
                    ),
            )
            .unwrap();
            let out = k.run(&["apply", "--validate=false", "-f", svc_path]).await;
            assert!(out.contains("service/web configured"), "{out}");
            let svc = server.get("v1", "Service", "default", "web").unwrap();
            let ports: Vec<(i64, i64)> = svc["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["port"].as_i64().unwrap(),
                        p["targetPort"].as_i64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(ports, [(80, 9090), (9100, 9100)]);
            let out = k
                .run(&["apply", "--server-side", "--validate=false", "-f", svc_path])
                .await;
            assert!(out.contains("serverside-applied"), "{out}");

            let out = k.run(&["delete", "-f", ingress_path]).await;
            assert!(out.contains("deleted"), "{out}");
            assert!(
                server
                    .get("networking.k8s.io/v1", "Ingress", "default", "web")
                    .is_none()
            );
            let err = k.fail(&["get", "ingress", "web"]).await;
            assert!(
                err.contains("NotFound") || err.contains("not found"),
                "{err}"
            );
            k.run(&["delete", "service", "web"]).await;

            // The watch saw the whole life of the Ingress: created, labeled, two status
            // patches, replaced, deleted.
            let want = [
                "ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED",
            ];
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let seen = watched.lock().unwrap().clone();
                let events: Vec<(String, String)> = serde_json::Deserializer::from_str(&seen)
                    .into_iter::<Value>()
                    .map_while(Result::ok)
                    .map(|e| summary(&e))
                    .collect();
                if events.len() >= want.len() {
                    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
                    assert_eq!(kinds, want, "kubectl get -w printed:\n{seen}");
                    assert!(events.iter().all(|(_, name)| name == "web"));
                    assert!(seen.contains("example.org"), "the replace was seen");
                    break;
                }
                assert!(Instant::now() < deadline, "kubectl get -w printed:\n{seen}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = watcher.kill();
            let _ = watcher.wait();
            let _ = reader.join();
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------
// The binary.

#[test]
fn fake_apiserver_binary_prints_its_url_and_writes_a_kubeconfig() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Kill the child whatever happens below.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut child = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the URL within 20 s");
    let url = url.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(config.contains(&format!("server: {url}")), "{config}");

    // It answers HTTP.
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"gitVersion\""), "{answer}");

    // Bad arguments: usage and exit code 2.
    let out = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
    let _ = child.0.kill();
}
