use gangplank_model::{GeneralConfig, Server, SslConfiguration};
use gangplank_store::{BackendTable, RouteTable};
use serde_json::json;

use super::*;

const PEM: &str = concat!(
    include_str!("../../../model/tests/fixtures/example.com.crt"),
    include_str!("../../../model/tests/fixtures/example.com.key")
);

struct Setup {
    routes: RouteTable,
    certificates: CertificateTable,
}

fn setup(locations: serde_json::Value, general: serde_json::Value) -> Setup {
    setup_servers(
        json!([{"hostname": "app.example.com", "locations": locations}]),
        general,
        &[],
    )
}

fn setup_servers(
    servers: serde_json::Value,
    general: serde_json::Value,
    tls_hosts: &[&str],
) -> Setup {
    let servers: Vec<Server> = serde_json::from_value(servers).unwrap();
    let general: GeneralConfig = serde_json::from_value(general).unwrap();
    let ssl = SslConfiguration {
        certificates: [("c".to_string(), PEM.to_string())].into(),
        servers: tls_hosts
            .iter()
            .map(|h| (h.to_string(), "c".to_string()))
            .collect(),
    };
    let certificates = CertificateTable::compile(&ssl, None).unwrap();
    let routes =
        RouteTable::compile_with(&servers, &BackendTable::default(), &general, &certificates);
    Setup {
        routes,
        certificates,
    }
}

/// What a verdict amounts to, owned.
#[derive(Debug)]
enum Outcome {
    Proceed {
        upstream: Box<http::request::Parts>,
        response: HeaderMap,
        body_limited: bool,
    },
    Answer(StatusCode, HeaderMap),
    Reject(StatusCode),
}

impl Outcome {
    fn status(&self) -> StatusCode {
        match self {
            Outcome::Proceed { .. } => StatusCode::OK,
            Outcome::Answer(s, _) | Outcome::Reject(s) => *s,
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        let map = match self {
            Outcome::Proceed { response, .. } => response,
            Outcome::Answer(_, h) => h,
            Outcome::Reject(_) => return None,
        };
        map.get(name).map(|v| v.to_str().unwrap().to_owned())
    }

    fn upstream(&self) -> &http::request::Parts {
        match self {
            Outcome::Proceed { upstream, .. } => upstream,
            other => panic!("not proxied: {other:?}"),
        }
    }
}

struct Req {
    method: Method,
    host: &'static str,
    uri: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    peer: &'static str,
    https: bool,
}

fn get(uri: &'static str) -> Req {
    Req {
        method: Method::GET,
        host: "app.example.com",
        uri,
        headers: Vec::new(),
        peer: "192.0.2.10:5000",
        https: false,
    }
}

impl Req {
    fn header(mut self, name: &'static str, value: &'static str) -> Req {
        self.headers.push((name, value));
        self
    }
    fn peer(mut self, peer: &'static str) -> Req {
        self.peer = peer;
        self
    }
    fn https(mut self) -> Req {
        self.https = true;
        self
    }
    fn host(mut self, host: &'static str) -> Req {
        self.host = host;
        self
    }
    fn method(mut self, method: Method) -> Req {
        self.method = method;
        self
    }
}

async fn run(setup: &Setup, req: Req) -> (Outcome, ClientInfo) {
    let mut builder = Request::builder()
        .method(req.method)
        .uri(req.uri)
        .header("host", req.host);
    for (k, v) in &req.headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(()).unwrap();
    let path = crate::path::normalize(request.uri().path())
        .unwrap()
        .into_owned();
    let route = setup.routes.route(req.host, &path).unwrap();
    let location = route.location.unwrap();
    let mut client = ClientInfo::new(
        req.peer.parse().unwrap(),
        if req.https { 443 } else { 80 },
        req.https,
    );
    let verdict = admit(
        location,
        &setup.certificates,
        &request,
        &mut client,
        req.host,
        &path,
    )
    .await;
    let outcome = match verdict {
        Verdict::Proceed(admitted) => {
            let (mut parts, ()) = request.into_parts();
            crate::headers::to_upstream(
                &mut parts.headers,
                &HeaderValue::from_static("app.example.com"),
                &client,
            );
            admitted.upstream_request(&mut parts);
            let mut response = HeaderMap::new();
            response.insert("x-upstream", HeaderValue::from_static("1"));
            admitted.decorate(&mut response);
            Outcome::Proceed {
                upstream: Box::new(parts),
                response,
                body_limited: admitted.policies.body_limit.is_some(),
            }
        }
        Verdict::Answer(response) => Outcome::Answer(response.status(), response.headers().clone()),
        Verdict::Reject(status) => Outcome::Reject(status),
    };
    (outcome, client)
}

#[tokio::test]
async fn plain_locations_take_the_fast_path() {
    let s = setup(json!([{"path": "/", "backend": "b"}]), json!({}));
    let (o, _) = run(&s, get("/x?y=1")).await;
    match &o {
        Outcome::Proceed {
            upstream,
            response,
            body_limited,
        } => {
            assert_eq!(upstream.uri, "/x?y=1");
            assert_eq!(response.len(), 1, "nothing added");
            assert!(body_limited, "1m by default");
        }
        other => panic!("{other:?}"),
    }
    let (o, _) = run(&s, get("/").header("content-length", "1048577")).await;
    assert_eq!(o.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (o, _) = run(&s, get("/").header("content-length", "1048576")).await;
    assert_eq!(o.status(), StatusCode::OK);
    let s = setup(
        json!([{"path": "/", "backend": "b", "proxy": {"bodySize": "0"}}]),
        json!({}),
    );
    let (o, _) = run(&s, get("/").header("content-length", "99999999999")).await;
    assert_eq!(o.status(), StatusCode::OK);
}

#[tokio::test]
async fn fail_closed_and_unsupported_protocols() {
    let s = setup(
        json!([
            {"path": "/tls", "backend": "b", "certificateAuth": {"secret": {"namespace": "d", "name": "ca"}, "caPem": "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"}},
            {"path": "/fcgi", "backend": "b", "backend-protocol": "FCGI"},
            {"path": "/grpc", "backend": "b", "backend-protocol": "GRPC"},
            {"path": "/auto", "backend": "b", "backend-protocol": "AUTO_HTTP"}
        ]),
        json!({}),
    );
    assert_eq!(
        run(&s, get("/tls")).await.0.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        run(&s, get("/fcgi")).await.0.status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        run(&s, get("/fcgi").https()).await.0.status(),
        StatusCode::BAD_GATEWAY
    );
    // The protocols the proxy speaks are admitted like plain HTTP.
    assert_eq!(run(&s, get("/grpc")).await.0.status(), StatusCode::OK);
    assert_eq!(run(&s, get("/auto")).await.0.status(), StatusCode::OK);
    assert_eq!(
        run(&s, get("/auto").https()).await.0.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn rate_and_connection_limits() {
    let s = setup(
        json!([
            {"path": "/rpm", "backend": "b", "rateLimit": {"rpm": 1, "burstMultiplier": 2, "allowlist": ["198.51.100.0/24"]}},
            {"path": "/conn", "backend": "b", "rateLimit": {"connections": 1}},
            {"path": "/deny", "backend": "b", "rateLimit": {"rpm": 1, "burstMultiplier": 1}, "denylist": {"cidrs": ["203.0.113.0/24"]}}
        ]),
        json!({"limit-req-status-code": 429}),
    );
    // burst = 1 × 2: three requests pass at once, then limit-req-status-code.
    for expected in [200, 200, 200, 429, 429] {
        assert_eq!(run(&s, get("/rpm")).await.0.status(), expected);
    }
    // Per client address; the allowlist is never limited.
    let other = || get("/rpm").peer("192.0.2.11:1");
    assert_eq!(run(&s, other()).await.0.status(), StatusCode::OK);
    for _ in 0..10 {
        let (o, _) = run(&s, get("/rpm").peer("198.51.100.7:1")).await;
        assert_eq!(o.status(), StatusCode::OK);
    }
    // A request that finished (its `Admitted` dropped) frees its connection slot.
    for _ in 0..3 {
        assert_eq!(run(&s, get("/conn")).await.0.status(), StatusCode::OK);
    }
    // Requests the address lists refuse do not count.
    for _ in 0..3 {
        let (o, _) = run(&s, get("/deny").peer("203.0.113.1:1")).await;
        assert_eq!(o.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        run(&s, get("/deny").peer("192.0.2.99:1")).await.0.status(),
        StatusCode::OK
    );
    // A connection slot is held as long as the `Admitted` (the response) lives.
    let route = s.routes.route("app.example.com", "/conn").unwrap();
    let location = route.location.unwrap();
    let request = Request::get("/conn").body(()).unwrap();
    let mut client = ClientInfo::new("192.0.2.10:5000".parse().unwrap(), 80, false);
    let first = admit(
        location,
        &s.certificates,
        &request,
        &mut client,
        "app.example.com",
        "/conn",
    )
    .await;
    assert!(matches!(first, Verdict::Proceed(_)));
    assert_eq!(
        run(&s, get("/conn")).await.0.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let Verdict::Proceed(mut admitted) = first else {
        unreachable!()
    };
    let guard = admitted.take_connection_guard();
    assert!(guard.is_some());
    drop(admitted);
    assert_eq!(
        run(&s, get("/conn")).await.0.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the guard holds the slot"
    );
    drop(guard);
    assert_eq!(run(&s, get("/conn")).await.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn access_control() {
    let s = setup(
        json!([
            {"path": "/", "backend": "b", "allowlist": {"cidrs": ["192.0.2.0/24", "2001:db8::/32"]}, "denylist": {"cidrs": ["192.0.2.66"]}},
            {"path": "/any", "backend": "b", "allowlist": {"cidrs": ["10.0.0.0/8"]}, "satisfy": "any",
             "basicDigestAuth": {"authType": "basic", "realm": "r", "credentials": {"u": "{PLAIN}p"}}}
        ]),
        json!({"block-cidrs": ["198.51.100.0/24"], "block-user-agents": ["~*bot"], "block-referers": ["https://spam.example/"]}),
    );
    assert_eq!(run(&s, get("/")).await.0.status(), StatusCode::OK);
    assert_eq!(
        run(&s, get("/").peer("[2001:db8::5]:1")).await.0.status(),
        StatusCode::OK
    );
    assert_eq!(
        run(&s, get("/").peer("192.0.2.66:1")).await.0.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        run(&s, get("/").peer("203.0.113.1:1")).await.0.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        run(&s, get("/").peer("198.51.100.1:1")).await.0.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        run(&s, get("/").header("user-agent", "EvilBot/1"))
            .await
            .0
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        run(&s, get("/").header("referer", "HTTPS://SPAM.EXAMPLE/"))
            .await
            .0
            .status(),
        StatusCode::FORBIDDEN
    );
    // satisfy any: the address or the credentials.
    assert_eq!(
        run(&s, get("/any").peer("10.1.1.1:1")).await.0.status(),
        StatusCode::OK
    );
    assert_eq!(
        run(&s, get("/any")).await.0.status(),
        StatusCode::UNAUTHORIZED
    );
    // u:p
    let (o, _) = run(&s, get("/any").header("authorization", "Basic dTpw")).await;
    assert_eq!(o.status(), StatusCode::OK);
    assert!(!o.upstream().headers.contains_key("authorization"));
    // The ConfigMap blocks are not overridden by credentials.
    assert_eq!(
        run(
            &s,
            get("/any")
                .peer("198.51.100.1:1")
                .header("authorization", "Basic dTpw")
        )
        .await
        .0
        .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn real_client_address_drives_access_and_forwarded_headers() {
    let s = setup(
        json!([{"path": "/", "backend": "b", "allowlist": {"cidrs": ["203.0.113.0/24"]}}]),
        json!({"use-forwarded-headers": true, "proxy-real-ip-cidr": ["10.0.0.0/8"]}),
    );
    // Through a trusted load balancer.
    let (o, client) = run(
        &s,
        get("/")
            .peer("10.0.0.2:1")
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "https"),
    )
    .await;
    assert_eq!(o.status(), StatusCode::OK);
    assert_eq!(client.remote.ip().to_string(), "203.0.113.9");
    let up = &o.upstream().headers;
    assert_eq!(up["x-real-ip"], "203.0.113.9");
    assert_eq!(up["x-forwarded-for"], "203.0.113.9");
    assert_eq!(up["x-forwarded-proto"], "https");
    // A client that claims an allowed address directly is not believed.
    let (o, _) = run(
        &s,
        get("/")
            .peer("192.0.2.1:1")
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_eq!(o.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn https_redirects() {
    let s = setup_servers(
        json!([
            {"hostname": "secure.example.com", "locations": [
                {"path": "/", "backend": "b"},
                {"path": "/keep", "backend": "b", "redirect": {"preserveTrailingSlash": true}},
                {"path": "/.well-known/acme-challenge", "backend": "b"},
                {"path": "/off", "backend": "b", "redirect": {"sslRedirect": false}}
            ]},
            {"hostname": "plain.example.com", "locations": [
                {"path": "/", "backend": "b"},
                {"path": "/forced", "backend": "b", "redirect": {"forceSslRedirect": true}}
            ]}
        ]),
        json!({}),
        &["secure.example.com"],
    );
    let secure = |uri| get(uri).host("secure.example.com:8080");
    let (o, _) = run(&s, secure("/a/?q=1")).await;
    assert_eq!(o.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        o.header("location").unwrap(),
        "https://secure.example.com/a/?q=1"
    );
    let (o, _) = run(&s, secure("/a/")).await;
    assert_eq!(
        o.header("location").unwrap(),
        "https://secure.example.com/a"
    );
    let (o, _) = run(&s, secure("/keep/")).await;
    assert_eq!(
        o.header("location").unwrap(),
        "https://secure.example.com/keep/"
    );
    assert_eq!(
        run(&s, secure("/.well-known/acme-challenge/t"))
            .await
            .0
            .status(),
        StatusCode::OK
    );
    assert_eq!(run(&s, secure("/off")).await.0.status(), StatusCode::OK);
    // Already https: HSTS instead.
    let (o, _) = run(&s, secure("/a").https()).await;
    assert_eq!(o.status(), StatusCode::OK);
    assert_eq!(
        o.header("strict-transport-security").unwrap(),
        "max-age=31536000; includeSubDomains"
    );
    // No certificate: no redirect, no HSTS (Part A.2), unless forced.
    let plain = |uri| get(uri).host("plain.example.com");
    assert_eq!(run(&s, plain("/")).await.0.status(), StatusCode::OK);
    assert_eq!(
        run(&s, plain("/").https())
            .await
            .0
            .header("strict-transport-security"),
        None
    );
    let (o, _) = run(&s, plain("/forced/x")).await;
    assert_eq!(o.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        o.header("location").unwrap(),
        "https://plain.example.com/forced/x"
    );

    let s = setup(
        json!([{"path": "/", "backend": "b", "redirect": {"forceSslRedirect": true}}]),
        json!({"http-redirect-code": 301, "use-forwarded-headers": true}),
    );
    let (o, _) = run(&s, get("/p")).await;
    assert_eq!(o.status(), StatusCode::MOVED_PERMANENTLY);
    // A trusted proxy says the client used https.
    let (o, _) = run(
        &s,
        get("/p")
            .peer("10.0.0.1:1")
            .header("x-forwarded-proto", "https"),
    )
    .await;
    assert_eq!(o.status(), StatusCode::OK);
}

#[tokio::test]
async fn location_redirects_and_app_root() {
    let s = setup(
        json!([
            {"path": "/", "backend": "b", "redirect": {"appRoot": "/app"}},
            {"path": "/moved", "backend": "b", "redirect": {"permanentUrl": "https://new.example.com$request_uri"}},
            {"path": "/both", "backend": "b", "redirect": {"permanentUrl": "https://p.example.com/", "temporalUrl": "https://t.example.com/", "temporalCode": 307}}
        ]),
        json!({}),
    );
    let (o, _) = run(&s, get("/")).await;
    assert_eq!(o.status(), StatusCode::FOUND);
    assert_eq!(o.header("location").unwrap(), "http://app.example.com/app");
    assert_eq!(run(&s, get("/other")).await.0.status(), StatusCode::OK);
    let (o, _) = run(&s, get("/moved/x?y=1")).await;
    assert_eq!(o.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        o.header("location").unwrap(),
        "https://new.example.com/moved/x?y=1"
    );
    let (o, _) = run(&s, get("/both")).await;
    assert_eq!(o.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(o.header("location").unwrap(), "https://t.example.com/");
}

#[tokio::test]
async fn www_twin_redirects() {
    let s = setup_servers(
        json!([{"hostname": "example.com", "redirectFromToWww": true, "locations": [{"path": "/", "backend": "b"}]}]),
        json!({}),
        &[],
    );
    let (o, _) = run(&s, get("/a/b/?c=1").host("www.example.com")).await;
    assert_eq!(o.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(o.header("location").unwrap(), "http://example.com/a/b/?c=1");
    let (o, _) = run(&s, get("/a/").host("www.example.com").https()).await;
    assert_eq!(o.header("location").unwrap(), "https://example.com/a");
    assert_eq!(
        run(&s, get("/").host("example.com")).await.0.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let s = setup(
        json!([{"path": "/", "backend": "b", "corsConfig": {"enabled": true, "allowOrigin": ["https://*.example.org"], "allowCredentials": false},
                "basicDigestAuth": {"authType": "basic", "realm": "r", "credentials": {"u": "{PLAIN}p"}}}]),
        json!({}),
    );
    let (o, _) = run(
        &s,
        get("/")
            .method(Method::OPTIONS)
            .header("origin", "https://a.example.org"),
    )
    .await;
    assert_eq!(
        o.status(),
        StatusCode::NO_CONTENT,
        "preflights skip authentication"
    );
    assert_eq!(
        o.header("access-control-allow-origin").unwrap(),
        "https://a.example.org"
    );
    assert_eq!(
        o.header("content-type").unwrap(),
        "text/plain charset=UTF-8"
    );
    assert_eq!(o.header("content-length").unwrap(), "0");
    assert_eq!(o.header("access-control-allow-credentials"), None);
    // A foreign origin is no preflight: authentication applies.
    let (o, _) = run(
        &s,
        get("/")
            .method(Method::OPTIONS)
            .header("origin", "https://evil.test"),
    )
    .await;
    assert_eq!(o.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(o.header("access-control-allow-origin"), None);
    // The 401 of an allowed origin carries the CORS headers.
    let (o, _) = run(&s, get("/").header("origin", "https://a.example.org")).await;
    assert_eq!(o.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(o.header("www-authenticate").unwrap(), "Basic realm=\"r\"");
    assert_eq!(
        o.header("access-control-allow-origin").unwrap(),
        "https://a.example.org"
    );
    let (o, _) = run(
        &s,
        get("/")
            .header("origin", "https://a.example.org")
            .header("authorization", "Basic dTpw"),
    )
    .await;
    assert_eq!(o.status(), StatusCode::OK);
    assert_eq!(
        o.header("access-control-allow-origin").unwrap(),
        "https://a.example.org"
    );
    assert_eq!(o.header("vary").unwrap(), "Origin");
}

#[tokio::test]
async fn rewrites_and_configured_headers() {
    let s = setup(
        json!([
            {"path": "/api(/|$)(.*)", "backend": "b", "rewrite": {"target": "/$2"}, "xForwardedPrefix": "/api",
             "customHeaders": {"headers": {"X-Team": "web"}}},
            {"path": "/old/(.*)", "backend": "b", "rewrite": {"target": "https://new.example.com/$1"}},
            {"path": "/same", "backend": "b", "rewrite": {"target": "/same"}, "xForwardedPrefix": "/p"}
        ]),
        json!({"proxy-set-headers": {"X-Forwarded-Proto": "https", "X-Client": "$remote_addr"}, "add-headers": {"X-Frame-Options": "DENY"}}),
    );
    let (o, _) = run(&s, get("/API/users/7?x=1")).await;
    assert_eq!(o.status(), StatusCode::OK);
    let up = o.upstream();
    assert_eq!(up.uri, "/users/7?x=1");
    assert_eq!(up.headers["x-forwarded-prefix"], "/api");
    assert_eq!(
        up.headers["x-forwarded-proto"], "https",
        "proxy-set-headers override"
    );
    assert_eq!(up.headers["x-client"], "192.0.2.10");
    assert_eq!(o.header("x-team").unwrap(), "web");
    assert_eq!(o.header("x-frame-options").unwrap(), "DENY");
    let (o, _) = run(&s, get("/old/page?a=1")).await;
    assert_eq!(o.status(), StatusCode::FOUND);
    assert_eq!(
        o.header("location").unwrap(),
        "https://new.example.com/page?a=1"
    );
    let (o, _) = run(&s, get("/same/x")).await;
    assert_eq!(o.upstream().uri, "/same/x");
    assert!(!o.upstream().headers.contains_key("x-forwarded-prefix"));
}
