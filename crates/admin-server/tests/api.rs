#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches: a panic is a failed assertion.
//! The admin API contract (Part A.1), driven through the router in-process.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use gangplank_admin_server::server::{AdminState, router};
use gangplank_store::{Status, Store};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const PEM: &str = concat!(
    include_str!("../../model/tests/fixtures/example.com.crt"),
    include_str!("../../model/tests/fixtures/example.com.key")
);
const MISMATCHED: &str = concat!(
    include_str!("../../model/tests/fixtures/example.com.crt"),
    include_str!("../../model/tests/fixtures/other.key")
);

struct Api {
    app: Router,
    store: Arc<Store>,
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Api {
    fn new() -> Api {
        Api::with_limit(gangplank_admin_server::DEFAULT_BODY_LIMIT)
    }

    fn with_limit(limit: usize) -> Api {
        let store = Arc::new(Store::in_memory());
        let mut state = AdminState::new(store.clone(), Status::new());
        state.body_limit = limit;
        Api {
            app: router(state),
            store,
        }
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        body: impl Into<Body>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self
            .app
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send("GET", uri, Body::empty(), &[]).await
    }

    async fn post(&self, uri: &str, body: impl Into<Body>) -> Answer {
        self.send("POST", uri, body, &[]).await
    }

    fn version(&self) -> u64 {
        self.store.load().version
    }
}

fn seed() -> Value {
    json!([{"endpoints":[{"address":"10.12.4.133","port":"8080"}],"name":"test-paastest-v2-webshell-80","noServer":false,"port":80,
     "secureCACert":{"caFilename":"","pemSha":"","secret":""},
     "service":{"metadata":{"creationTimestamp":null},"spec":{"clusterIP":"10.11.60.178","ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}],"selector":{"servicename":"v2-webshell"},"sessionAffinity":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}},
     "sessionAffinityConfig":{"cookieSessionAffinity":{"name":""},"name":""},"sslPassthrough":false,
     "trafficShapingPolicy":{"cookie":"","header":"","headerValue":"","weight":0},
     "upstreamHashByConfig":{"upstream-hash-by-subset-size":3}}])
}

#[tokio::test]
async fn before_any_post() {
    let api = Api::new();
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(
        api.get("/is-dynamic-lb-initialized").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let b = api.get("/configuration/backends").await;
    assert_eq!((b.status, b.text().as_str()), (StatusCode::OK, "[]"));
    let g = api.get("/configuration/general").await;
    assert_eq!((g.status, g.text().as_str()), (StatusCode::OK, "{}"));
}

#[tokio::test]
async fn seed_interaction() {
    let api = Api::new();
    let post = api
        .post("/configuration/backends", seed().to_string())
        .await;
    assert_eq!(post.status, StatusCode::CREATED, "{}", post.text());
    assert!(post.body.is_empty());
    let get = api.get("/configuration/backends").await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.headers[header::CONTENT_TYPE], "application/json");
    let got = get.json();
    assert_eq!(got[0]["name"], "test-paastest-v2-webshell-80");
    assert_eq!(got[0]["endpoints"], seed()[0]["endpoints"]);
    assert_eq!(got[0]["secureCACert"], seed()[0]["secureCACert"]);
    assert_eq!(got[0]["service"], seed()[0]["service"]);
    let init = api.get("/is-dynamic-lb-initialized").await;
    assert_eq!(
        (init.status, init.text().as_str()),
        (StatusCode::OK, "OK\n")
    );
}

#[tokio::test]
async fn query_strings_are_ignored() {
    let api = Api::new();
    let post = api
        .post("/configuration/backends?x=1", seed().to_string())
        .await;
    assert_eq!(post.status, StatusCode::CREATED);
    assert_eq!(
        api.get("/configuration/general?foo=bar").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let api = Api::new();
    for path in [
        "/",
        "/configuration/",
        "/configurationX",
        "/configuration/backends/x",
        "/nope",
    ] {
        assert_eq!(api.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let put = api
        .send("PUT", "/configuration/backends", Body::empty(), &[])
        .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    let allow = put.headers[header::ALLOW].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let get_servers = api.get("/configuration/servers").await;
    assert_eq!(get_servers.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_servers.headers[header::ALLOW], "POST");
    let post_certs = api.post("/configuration/certs?hostname=a", "").await;
    assert_eq!(post_certs.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn bad_bodies_get_400_with_a_path_and_change_nothing() {
    let api = Api::new();
    assert_eq!(
        api.post("/configuration/backends", seed().to_string())
            .await
            .status,
        StatusCode::CREATED
    );
    let version = api.version();
    let cases: &[(&str, &str, &str)] = &[
        ("/configuration/backends", "", "$"),
        ("/configuration/backends", "{not json", "$"),
        ("/configuration/backends", r#"{"name":"x"}"#, "$"),
        (
            "/configuration/backends",
            r#"[{"name":"a","endpoints":[{"address":"10.0.0.1","port":"99999"}]}]"#,
            "$[0].endpoints[0].port",
        ),
        (
            "/configuration/backends",
            r#"[{"name":"a","endpoints":[{"address":"10.0.0.1;rm","port":"80"}]}]"#,
            "$[0].endpoints[0].address",
        ),
        (
            "/configuration/backends",
            r#"[{"name":"a","port":true}]"#,
            "$[0].port",
        ),
        (
            "/configuration/backends",
            r#"[{"name":"a","load-balance":"magic"}]"#,
            "$[0].load-balance",
        ),
        ("/configuration/general", r#"{"no-such-setting":1}"#, "$"),
        (
            "/configuration/servers",
            r#"{"certificates":{"u1":"not a pem"},"servers":{}}"#,
            "$.certificates.u1",
        ),
        (
            "/configuration/servers",
            r#"{"certificates":{},"servers":{"a.example.com":"missing"}}"#,
            "$.servers[\"a.example.com\"]",
        ),
        (
            "/configuration",
            r#"{"backends":[{"name":""}]}"#,
            "$.backends[0].name",
        ),
    ];
    for (path, body, json_path) in cases {
        let answer = api.post(path, body.to_string()).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            answer.text()
        );
        let error = answer.json();
        assert!(
            error["path"].as_str().unwrap().starts_with(json_path),
            "{path} {body}: {error}"
        );
        assert!(!error["error"].as_str().unwrap().is_empty());
        assert_eq!(
            api.version(),
            version,
            "{path} {body} changed the configuration"
        );
    }
    let mismatched = json!({"certificates": {"u": MISMATCHED}, "servers": {}});
    let answer = api
        .post("/configuration/servers", mismatched.to_string())
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json()["error"],
        "the private key does not match the certificate"
    );
    assert_eq!(api.version(), version);
}

#[tokio::test]
async fn every_problem_is_listed() {
    let api = Api::new();
    let body = json!([{"name":"a","endpoints":[{"address":"x","port":"0"}]},{"name":"a"}]);
    let answer = api.post("/configuration/backends", body.to_string()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    insta::assert_json_snapshot!("invalid_backends_error", answer.json());
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let api = Api::with_limit(1024);
    let big = format!("[{}]", vec![r#"{"name":"x"}"#; 200].join(","));
    assert!(big.len() > 1024);
    let answer = api.post("/configuration/backends", big.clone()).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.version(), 0);
    // Without Content-Length (streamed body) the limit still holds.
    let answer = api
        .send(
            "POST",
            "/configuration/backends",
            chunked_body(big.into_bytes()),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body with no declared length, sent in chunks of 100 bytes.
fn chunked_body(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<http_body::Frame<bytes::Bytes>, std::io::Error>> = bytes
        .chunks(100)
        .map(|c| Ok(http_body::Frame::data(bytes::Bytes::copy_from_slice(c))))
        .collect();
    Body::new(http_body_util::StreamBody::new(IterStream(
        chunks.into_iter(),
    )))
}

/// An iterator as a `Stream` (the test needs no stream utility crate for this).
struct IterStream<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for IterStream<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[tokio::test]
async fn certificates_both_shapes_and_exact_lookup() {
    let api = Api::new();
    let body = json!({"certificates": {"uid-1": PEM}, "servers": {"example.com": "uid-1", "www.example.com": "uid-1"}});
    assert_eq!(
        api.post("/configuration/servers", body.to_string())
            .await
            .status,
        StatusCode::CREATED
    );
    let cert = api.get("/configuration/certs?hostname=example.com").await;
    assert_eq!(
        (cert.status, cert.text()),
        (StatusCode::OK, PEM.to_string())
    );
    assert_eq!(
        api.get("/configuration/certs?hostname=EXAMPLE.com")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/configuration/certs?hostname=other").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/configuration/certs").await.status,
        StatusCode::BAD_REQUEST
    );
    // "-1" removes the mapping, the certificate stays for other hosts.
    let remove = json!({"certificates": {}, "servers": {"example.com": "-1"}});
    assert_eq!(
        api.post("/configuration/servers", remove.to_string())
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.get("/configuration/certs?hostname=example.com")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/configuration/certs?hostname=www.example.com")
            .await
            .status,
        StatusCode::OK
    );
    // The 0.25 array shape.
    let legacy = json!([{"hostname": "legacy.example.com", "sslCert": {"pemCertKey": PEM}}]);
    assert_eq!(
        api.post("/configuration/servers", legacy.to_string())
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.get("/configuration/certs?hostname=legacy.example.com")
            .await
            .text(),
        PEM
    );
    // The SNI table sees them.
    let snapshot = api.store.load();
    assert!(
        snapshot
            .certificates
            .for_server_name(Some("www.example.com"))
            .is_some()
    );
}

#[tokio::test]
async fn whole_configuration_with_versions() {
    let api = Api::new();
    let get = api.get("/configuration").await;
    assert_eq!(get.headers[header::ETAG], "\"0\"");
    let config = json!({
        "backends": seed(),
        "servers": [{"hostname": "example.com", "locations": [{"path": "/", "pathType": "Prefix", "backend": "test-paastest-v2-webshell-80"}]}],
        "sslConfiguration": {"certificates": {"c": PEM}, "servers": {"example.com": "c"}},
        "general": {}
    });
    let post = api
        .send(
            "POST",
            "/configuration",
            config.to_string(),
            &[("if-match", "\"0\"")],
        )
        .await;
    assert_eq!(post.status, StatusCode::CREATED, "{}", post.text());
    assert_eq!(post.headers[header::ETAG], "\"1\"");
    let stale = api
        .send(
            "POST",
            "/configuration",
            config.to_string(),
            &[("if-match", "\"0\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let bad = api
        .send(
            "POST",
            "/configuration",
            config.to_string(),
            &[("if-match", "yesterday")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let get = api.get("/configuration").await;
    assert_eq!(get.headers[header::ETAG], "\"1\"");
    let got = get.json();
    assert_eq!(got["servers"][0]["hostname"], "example.com");
    assert_eq!(got["sslConfiguration"]["servers"]["example.com"], "c");
    assert_eq!(
        api.get("/is-dynamic-lb-initialized").await.status,
        StatusCode::OK
    );
    let route = api.store.load();
    let m = route.routes.route("example.com", "/x").unwrap();
    assert!(m.location.unwrap().backend.is_some());
}

#[tokio::test]
async fn stub_status_text() {
    let api = Api::new();
    let answer = api.get("/nginx_status").await;
    assert_eq!(answer.status, StatusCode::OK);
    let re = regex_lite(&answer.text());
    assert!(re, "{:?}", answer.text());
}

/// The four stub_status lines with their trailing spaces.
fn regex_lite(text: &str) -> bool {
    let lines: Vec<&str> = text.split('\n').collect();
    lines.len() == 5
        && lines[0].starts_with("Active connections: ")
        && lines[0].ends_with(' ')
        && lines[1] == "server accepts handled requests"
        && lines[2].starts_with(' ')
        && lines[2].ends_with(' ')
        && lines[2].split_whitespace().count() == 3
        && lines[3].starts_with("Reading: ")
        && lines[3].contains(" Writing: ")
        && lines[3].contains(" Waiting: ")
        && lines[3].ends_with(' ')
        && lines[4].is_empty()
}

#[tokio::test]
async fn healthz_reports_draining() {
    let store = Arc::new(Store::in_memory());
    let status = Status::new();
    let app = router(AdminState::new(store, status.clone()));
    status.set_draining(true);
    let response = app
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            // Near-valid JSON: mutate a valid document.
            (0usize..400, any::<u8>()).prop_map(|(at, byte)| {
                let mut v = seed().to_string().into_bytes();
                let i = at % v.len();
                v[i] = byte;
                v
            }),
            // Valid JSON of the wrong shape or with hostile values.
            Just(
                br#"[{"name":"x\r\ny","endpoints":[{"address":"1.2.3.4","port":"80"}]}]"#.to_vec()
            ),
            Just(br#"{"certificates":{"../../etc":"x"},"servers":{"a;b":"-1"}}"#.to_vec()),
            Just(br#"[null]"#.to_vec()),
            Just(b"{}".to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Arbitrary bytes POSTed to every endpoint never panic the server, never get a
        /// 5xx, and change the configuration only when the answer is 201.
        #[test]
        fn arbitrary_bodies_never_break_the_server(bodies in proptest::collection::vec(body(), 1..4)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let api = Api::new();
                for bytes in bodies {
                    for path in ["/configuration/backends", "/configuration/general", "/configuration/servers", "/configuration"] {
                        let before = api.version();
                        let answer = api.post(path, bytes.clone()).await;
                        prop_assert!(answer.status.as_u16() < 500, "{} -> {}: {}", path, answer.status, answer.text());
                        if answer.status == StatusCode::CREATED {
                            prop_assert_eq!(api.version(), before + 1);
                        } else {
                            prop_assert_eq!(answer.status, StatusCode::BAD_REQUEST);
                            prop_assert_eq!(api.version(), before);
                        }
                    }
                }
                Ok(())
            })?;
        }
    }
}
