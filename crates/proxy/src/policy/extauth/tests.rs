use gangplank_model::Location;
use gangplank_store::policy::extauth::Signin;
use http::Uri;

use super::*;
use crate::headers::ClientInfo;

/// The compiled external auth of a location with these `externalAuth` settings.
fn compiled(settings: serde_json::Value) -> ExternalAuth {
    let location: Location = serde_json::from_value(serde_json::json!({
        "path": "/", "backend": "b", "externalAuth": settings
    }))
    .unwrap();
    let server: gangplank_model::Server = serde_json::from_value(serde_json::json!({
        "hostname": "app.example.com", "locations": [location]
    }))
    .unwrap();
    let general = gangplank_model::GeneralConfig::default();
    let certificates = gangplank_store::CertificateTable::default();
    let mut ctx = gangplank_store::policy::PolicyContext::new(&general, &certificates);
    let policies = ctx.compile(&server.locations[0], &server);
    *policies.external_auth.clone().unwrap()
}

struct Req {
    uri: Uri,
    headers: HeaderMap,
    client: ClientInfo,
}

fn req(uri: &str, headers: &[(&str, &str)]) -> Req {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    Req {
        uri: uri.parse().unwrap(),
        headers: map,
        client: ClientInfo::new("192.0.2.7:5555".parse().unwrap(), 80, false),
    }
}

fn view(r: &Req) -> View<'_> {
    View {
        method: &Method::POST,
        uri: &r.uri,
        headers: &r.headers,
        client: &r.client,
        host: "app.example.com:8080",
        path: r.uri.path(),
        server_name: "app.example.com",
    }
}

#[test]
fn the_auth_request_carries_ingress_nginx_headers() {
    let auth = compiled(serde_json::json!({
        "url": "http://auth.example.com/verify",
        "proxySetHeaders": {"X-Team": "edge", "X-Client": "$remote_addr"}
    }));
    let r = req(
        "/a/b?c=d",
        &[
            ("cookie", "s=1"),
            ("content-length", "12"),
            ("x-forwarded-proto", "https"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("authorization", "Bearer t"),
        ],
    );
    let url = AuthUrl::parse("http://auth.example.com:9000/verify").unwrap();
    let id = HeaderValue::from_static("abc");
    let request = auth_request(&auth, &url, &view(&r), &id).unwrap();
    assert_eq!(request.method(), Method::GET, "subrequests are GET");
    assert_eq!(request.uri(), "/verify");
    let h = request.headers();
    assert_eq!(h["host"], "auth.example.com");
    assert_eq!(h["cookie"], "s=1");
    assert_eq!(h["authorization"], "Bearer t");
    assert_eq!(h["x-original-url"], "http://app.example.com:8080/a/b?c=d");
    assert_eq!(h["x-original-method"], "POST");
    assert_eq!(h["x-sent-from"], "nginx-ingress-controller");
    assert_eq!(h["x-real-ip"], "192.0.2.7");
    assert_eq!(h["x-forwarded-for"], "192.0.2.7");
    assert_eq!(h["x-auth-request-redirect"], "/a/b?c=d");
    assert_eq!(h["x-request-id"], "abc");
    assert_eq!(h["x-team"], "edge");
    assert_eq!(h["x-client"], "192.0.2.7");
    for gone in [
        "content-length",
        "x-forwarded-proto",
        "connection",
        "x-hop",
        "x-original-uri",
    ] {
        assert!(!h.contains_key(gone), "{gone}");
    }

    // With auth-method: that method, plus X-Original-URI and X-Scheme.
    let auth = compiled(serde_json::json!({
        "url": "http://auth.example.com/", "method": "HEAD", "requestRedirect": "https://$host/back"
    }));
    let request = auth_request(&auth, &url, &view(&r), &id).unwrap();
    assert_eq!(request.method(), Method::HEAD);
    assert_eq!(request.headers()["x-original-uri"], "/a/b?c=d");
    assert_eq!(request.headers()["x-scheme"], "http");
    assert_eq!(
        request.headers()["x-auth-request-redirect"],
        "https://app.example.com/back"
    );
}

fn answer(status: u16, headers: &[(&str, &str)]) -> Answer {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    Answer {
        status,
        headers: map,
    }
}

#[test]
fn answers_become_decisions() {
    let auth = compiled(serde_json::json!({
        "url": "http://auth.example.com/", "responseHeaders": ["X-User", "X-Groups"]
    }));
    let r = req("/p?q=1", &[]);
    let v = view(&r);
    let allow = decide(
        &auth,
        &v,
        &answer(
            202,
            &[
                ("x-user", "alice"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
            ],
        ),
    );
    let Decision::Allow { headers, cookies } = allow else {
        panic!("{allow:?}")
    };
    assert_eq!(
        headers,
        vec![
            (
                HeaderName::from_static("x-user"),
                Some(HeaderValue::from_static("alice"))
            ),
            (HeaderName::from_static("x-groups"), None),
        ]
    );
    assert_eq!(cookies.len(), 2);
    // Granted headers replace (or remove) the client's.
    let granted = Granted {
        headers,
        cookies,
        always_set_cookie: false,
        request_id: HeaderValue::from_static("id"),
    };
    let mut upstream = HeaderMap::new();
    upstream.insert("x-user", HeaderValue::from_static("forged"));
    upstream.append("x-groups", HeaderValue::from_static("admin"));
    granted.upstream_request(&mut upstream);
    assert_eq!(upstream["x-user"], "alice");
    assert!(!upstream.contains_key("x-groups"));
    let mut response = HeaderMap::new();
    granted.response(StatusCode::OK, &mut response);
    assert_eq!(response.get_all("set-cookie").iter().count(), 2);
    let mut response = HeaderMap::new();
    granted.response(StatusCode::BAD_GATEWAY, &mut response);
    assert!(response.is_empty());

    assert_eq!(
        decide(&auth, &v, &answer(401, &[("www-authenticate", "Bearer")])),
        Decision::Unauthorized {
            challenge: vec![HeaderValue::from_static("Bearer")],
            cookies: Vec::new()
        }
    );
    assert_eq!(
        decide(&auth, &v, &answer(403, &[])),
        Decision::Forbidden {
            cookies: Vec::new()
        }
    );
    for status in [302, 404, 500, 100] {
        assert!(matches!(
            decide(&auth, &v, &answer(status, &[])),
            Decision::Failed { .. }
        ));
    }

    // With auth-signin a 401 redirects, with rd appended.
    let auth = compiled(serde_json::json!({
        "url": "http://auth.example.com/", "signin": "https://login.example.com/start?app=$host"
    }));
    let decision = decide(&auth, &v, &answer(401, &[("set-cookie", "x=1")]));
    let Decision::SignIn { location, cookies } = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(
        location,
        "https://login.example.com/start?app=app.example.com&rd=http://app.example.com:8080%2Fp%3Fq%3D1"
    );
    assert_eq!(cookies.len(), 1);
}

#[test]
fn signin_keeps_its_own_redirect_parameter() {
    let signin = Signin {
        url: Template::parse("https://login.example.com/?rd=$request_uri").unwrap(),
        append: None,
    };
    let r = req("/x", &[]);
    assert_eq!(
        signin_target(&signin, &view(&r)),
        "https://login.example.com/?rd=/x"
    );
}

#[test]
fn cookie_statuses_follow_nginx_add_header() {
    for ok in [200, 201, 204, 206, 301, 302, 303, 304, 307, 308] {
        assert!(cookies_apply(StatusCode::from_u16(ok).unwrap(), false));
    }
    for no in [401, 403, 404, 500, 502] {
        let status = StatusCode::from_u16(no).unwrap();
        assert!(!cookies_apply(status, false));
        assert!(cookies_apply(status, true));
    }
}

#[test]
fn the_answer_cache_expires_and_stays_bounded() {
    let mut cache = AnswerCache::default();
    let t0 = Instant::now();
    let a = Arc::new(answer(200, &[]));
    cache.put([1; 20], a.clone(), t0 + Duration::from_secs(300), t0);
    assert_eq!(cache.get(&[1; 20], t0 + Duration::from_secs(299)), Some(a));
    assert_eq!(cache.get(&[1; 20], t0 + Duration::from_secs(300)), None);
    assert!(cache.is_empty(), "expired entries are dropped when seen");
    for i in 0..(CACHE_MAX as u32 + 5) {
        let mut key = [0u8; 20];
        key[..4].copy_from_slice(&i.to_le_bytes());
        cache.put(
            key,
            Arc::new(answer(200, &[])),
            t0 + Duration::from_secs(60),
            t0,
        );
    }
    assert!(cache.len() <= CACHE_MAX);
}

#[test]
fn what_is_cacheable() {
    assert!(cacheable(&answer(200, &[("x-user", "a")]).headers));
    assert!(!cacheable(&answer(200, &[("set-cookie", "a=1")]).headers));
    assert!(!cacheable(
        &answer(200, &[("cache-control", "private, max-age=9")]).headers
    ));
    assert!(!cacheable(
        &answer(200, &[("cache-control", "no-store")]).headers
    ));
}
