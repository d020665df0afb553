#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failed assertion.
//! Balancing as a user sees it, end to end: the real `gangplank proxy` binary, echo
//! upstreams on 127.0.0.1, configurations posted through the admin socket, requests
//! over real TCP. Each test asserts which instance answered (the echo names itself).
//!
//! Covered: canary routing by header, cookie and weight (Part B §3.4, with the Part A.2
//! `weightTotal` fix), sticky sessions in both modes with ingress-nginx's cookie format
//! (§3.9), chash and chashsubset (§3.6–3.7), ewma (§3.8) and a change of algorithm
//! under traffic (§4.2, §10 items 1, 3, 6–9).
//!
//! Where the semantics are deterministic the tests are exact; where they are random
//! (canary weights, cookie-less sticky picks, chashsubset members) the request counts
//! are fixed and the bounds several standard deviations wide. Load is a few hundred
//! requests per test, to 127.0.0.1 only.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gangplank_e2e::echo::{Echo, EchoServer};
use http::StatusCode;
use http::header::SET_COOKIE;
use serde_json::{Value, json};

mod common;
use common::*;

/// The affinity cookie name every sticky test configures (the annotation's default).
const COOKIE: &str = "INGRESSCOOKIE";

fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    use std::fmt::Write as _;
    Md5::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(32), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The sticky cookie's backend part: `md5hex(md5hex(name) + name)`, computed here
/// independently of the proxy.
fn backend_key(name: &str) -> String {
    md5_hex(&(md5_hex(name) + name))
}

/// The persistent-mode upstream key of an endpoint: `md5hex(name + "ip:port")`.
fn persistent_key(name: &str, endpoint: SocketAddr) -> String {
    md5_hex(&format!("{name}{endpoint}"))
}

/// The test's own md5 helpers reproduce the spec's vectors (Part B §4.4), so the
/// cookie values below are ingress-nginx's, not merely the proxy's.
#[test]
fn cookie_keys_follow_the_spec_vectors() {
    assert_eq!(
        backend_key("access-router-production-web-80"),
        "3ec0ac2d8dd2cda20a93dee13e737231"
    );
    assert_eq!(
        persistent_key(
            "access-router-production-web-80",
            "10.184.7.40:8080".parse().unwrap()
        ),
        "ce8f959dcbe10d546cb8a4cc705e10f0"
    );
}

fn addrs(servers: &[EchoServer]) -> Vec<SocketAddr> {
    servers.iter().map(EchoServer::addr).collect()
}

/// A server for `host` whose `/` (Prefix) goes to `backend`.
fn server(host: &str, backend: &str) -> Value {
    json!({"hostname": host, "locations": [{"path": "/", "pathType": "Prefix", "backend": backend}]})
}

/// Backend `name` on `primary`, with its canary `<name>-canary` on `canary` governed by
/// `policy` (a `trafficShapingPolicy`).
fn canary_pair(
    name: &str,
    primary: &[SocketAddr],
    canary: &[SocketAddr],
    policy: Value,
) -> [Value; 2] {
    let canary_name = format!("{name}-canary");
    let mut primary = backend(name, primary);
    primary["alternativeBackends"] = json!([canary_name]);
    let mut canary = backend(&canary_name, canary);
    canary["noServer"] = json!(true);
    canary["trafficShapingPolicy"] = policy;
    [primary, canary]
}

/// A configuration of canary pairs: each `(host, name, policy)` becomes a server for
/// `host` on the primary backend `name` (endpoint `primary`), whose canary is on `canary`.
fn canary_configuration(
    primary: SocketAddr,
    canary: SocketAddr,
    pairs: &[(&str, &str, Value)],
) -> Value {
    let mut backends = Vec::new();
    let mut servers = Vec::new();
    for (host, name, policy) in pairs {
        backends.extend(canary_pair(name, &[primary], &[canary], policy.clone()));
        servers.push(server(host, name));
    }
    json!({"backends": backends, "servers": servers})
}

/// A backend with cookie affinity (`mode` is `balanced` or `persistent`) whose cookie
/// may be set on `host`'s `/` location only.
fn sticky_backend(
    name: &str,
    endpoints: &[SocketAddr],
    mode: &str,
    host: &str,
    change_on_failure: bool,
) -> Value {
    let mut b = backend(name, endpoints);
    b["sessionAffinityConfig"] = json!({
        "name": "cookie",
        "mode": mode,
        "cookieSessionAffinity": {
            "name": COOKIE,
            "locations": {host: ["/"]},
            "change_on_failure": change_on_failure
        }
    });
    b
}

/// Sends one request, asserts a 200 from an echo, and returns the instance that
/// answered with the response headers.
async fn answer(
    conn: &mut Conn,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, http::HeaderMap) {
    let (status, response_headers, body) = conn.send(host, path, headers).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{host}{path} {headers:?}: {}",
        String::from_utf8_lossy(&body)
    );
    let echo: Echo = serde_json::from_slice(&body).unwrap();
    (echo.instance, response_headers)
}

/// The instance that answered one request.
async fn instance(conn: &mut Conn, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    answer(conn, host, path, headers).await.0
}

/// How many of `n` identical requests each instance answered.
async fn tally(
    conn: &mut Conn,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        *counts
            .entry(instance(conn, host, path, headers).await)
            .or_default() += 1;
    }
    counts
}

/// The affinity cookie a response sets, split into its value and its attributes
/// (`Path=/; HttpOnly`); `None` when the response sets no cookie.
fn affinity_cookie(headers: &http::HeaderMap) -> Option<(String, String)> {
    let all: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(all.len() <= 1, "more than one Set-Cookie: {all:?}");
    let line = all.first()?;
    let (pair, attributes) = line.split_once("; ").unwrap_or((line, ""));
    let value = pair
        .strip_prefix("INGRESSCOOKIE=")
        .unwrap_or_else(|| panic!("not the affinity cookie: {line}"));
    Some((value.to_owned(), attributes.to_owned()))
}

/// The `Cookie` request header carrying the affinity cookie `value`.
fn with_cookie(value: &str) -> String {
    format!("{COOKIE}={value}")
}

/// Asserts that `n` requests all reach `expected`.
async fn all_reach(
    conn: &mut Conn,
    host: &str,
    headers: &[(&str, &str)],
    expected: &str,
    n: usize,
) {
    let counts = tally(conn, host, "/", headers, n).await;
    assert_eq!(
        counts,
        HashMap::from([(expected.to_owned(), n)]),
        "{host} {headers:?}"
    );
}

/// Request headers of a test case.
type Headers<'a> = &'a [(&'a str, &'a str)];

const PRIMARY: &str = "echo-0";
const CANARY: &str = "echo-1";

/// Part B §3.4 step 5 and §4.2: `always`/`never` decide only when no value or pattern
/// is configured; a value or pattern that does not match falls through to the weight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_by_header() {
    let g = Gangplank::start().await;
    let upstreams = echoes(2).await;
    let (primary, canary) = (upstreams[0].addr(), upstreams[1].addr());
    g.apply(canary_configuration(
        primary,
        canary,
        &[
            ("header.canary.test", "hdr", json!({"header": "X-Canary"})),
            (
                "header-w100.canary.test",
                "hdr-w100",
                json!({"header": "X-Canary", "weight": 100}),
            ),
            (
                "value.canary.test",
                "value",
                json!({"header": "X-Canary", "headerValue": "v2"}),
            ),
            (
                "value-w100.canary.test",
                "value-w100",
                json!({"header": "X-Canary", "headerValue": "v2", "weight": 100}),
            ),
            (
                "pattern.canary.test",
                "pattern",
                json!({"header": "X-Canary", "headerPattern": "^v[0-9]+$"}),
            ),
            (
                "unanchored.canary.test",
                "unanchored",
                json!({"header": "X-Canary", "headerPattern": "v[0-9]+"}),
            ),
        ],
    ))
    .await;

    let cases: &[(&str, Option<&str>, &str)] = &[
        // always/never, anything else falls through to weight 0.
        ("header.canary.test", Some("always"), CANARY),
        ("header.canary.test", Some("never"), PRIMARY),
        ("header.canary.test", Some("foo"), PRIMARY),
        ("header.canary.test", Some("Always"), PRIMARY),
        ("header.canary.test", None, PRIMARY),
        // With weight 100: `never` stops, anything else falls through to the weight.
        ("header-w100.canary.test", Some("never"), PRIMARY),
        ("header-w100.canary.test", Some("always"), CANARY),
        ("header-w100.canary.test", Some("foo"), CANARY),
        ("header-w100.canary.test", None, CANARY),
        // Exact, case-sensitive value; `always` is not special once a value is set.
        ("value.canary.test", Some("v2"), CANARY),
        ("value.canary.test", Some("V2"), PRIMARY),
        ("value.canary.test", Some("v3"), PRIMARY),
        ("value.canary.test", Some("always"), PRIMARY),
        ("value.canary.test", None, PRIMARY),
        // A mismatch is not "never": it falls through to weight 100.
        ("value-w100.canary.test", Some("v3"), CANARY),
        ("value-w100.canary.test", Some("never"), CANARY),
        ("value-w100.canary.test", Some("v2"), CANARY),
        // Pattern: a match routes, anything else falls through to weight 0.
        ("pattern.canary.test", Some("v12"), CANARY),
        ("pattern.canary.test", Some("v1x"), PRIMARY),
        ("pattern.canary.test", Some("always"), PRIMARY),
        ("pattern.canary.test", None, PRIMARY),
        // Patterns are unanchored (ngx.re.match without flags).
        ("unanchored.canary.test", Some("release-v7-beta"), CANARY),
        ("unanchored.canary.test", Some("release"), PRIMARY),
    ];
    let mut conn = Conn::open(g.http).await;
    for (host, value, expected) in cases {
        let headers: Vec<(&str, &str)> = value.iter().map(|v| ("X-Canary", *v)).collect();
        all_reach(&mut conn, host, &headers, expected, 10).await;
    }
    // The header name is matched case-insensitively.
    all_reach(
        &mut conn,
        "header.canary.test",
        &[("x-canary", "always")],
        CANARY,
        5,
    )
    .await;
}

/// Part B §3.4 step 6 and §4.2: the canary cookie's `always`/`never`, anything else
/// falls through to the weight; the header is judged before the cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_by_cookie() {
    let g = Gangplank::start().await;
    let upstreams = echoes(2).await;
    let (primary, canary) = (upstreams[0].addr(), upstreams[1].addr());
    g.apply(canary_configuration(
        primary,
        canary,
        &[
            ("cookie.canary.test", "ck", json!({"cookie": "canary"})),
            (
                "cookie-w100.canary.test",
                "ck-w100",
                json!({"cookie": "canary", "weight": 100}),
            ),
            (
                "both.canary.test",
                "both",
                json!({"header": "X-Canary", "cookie": "canary"}),
            ),
        ],
    ))
    .await;

    let cases: &[(&str, Headers<'_>, &str)] = &[
        ("cookie.canary.test", &[("cookie", "canary=always")], CANARY),
        ("cookie.canary.test", &[("cookie", "canary=never")], PRIMARY),
        ("cookie.canary.test", &[("cookie", "canary=foo")], PRIMARY),
        ("cookie.canary.test", &[("cookie", "foo=always")], PRIMARY),
        (
            "cookie.canary.test",
            &[("cookie", "a=1; canary=always; b=2")],
            CANARY,
        ),
        ("cookie.canary.test", &[], PRIMARY),
        (
            "cookie-w100.canary.test",
            &[("cookie", "canary=never")],
            PRIMARY,
        ),
        (
            "cookie-w100.canary.test",
            &[("cookie", "canary=foo")],
            CANARY,
        ),
        ("cookie-w100.canary.test", &[], CANARY),
        // The header decides first; a header that falls through leaves the cookie.
        (
            "both.canary.test",
            &[("x-canary", "never"), ("cookie", "canary=always")],
            PRIMARY,
        ),
        (
            "both.canary.test",
            &[("x-canary", "always"), ("cookie", "canary=never")],
            CANARY,
        ),
        (
            "both.canary.test",
            &[("x-canary", "foo"), ("cookie", "canary=always")],
            CANARY,
        ),
    ];
    let mut conn = Conn::open(g.http).await;
    for (host, headers, expected) in cases {
        all_reach(&mut conn, host, headers, expected, 10).await;
    }
}

/// Part B §3.4 step 7 and §10 item 6, with the Part A.2 fix: `weightTotal` is honoured
/// for any value >= 1 (ingress-nginx used 100 below 100).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_by_weight() {
    let g = Gangplank::start().await;
    let upstreams = echoes(2).await;
    let (primary, canary) = (upstreams[0].addr(), upstreams[1].addr());
    g.apply(canary_configuration(
        primary,
        canary,
        &[
            ("w0.canary.test", "w0", json!({"weight": 0})),
            ("w100.canary.test", "w100", json!({"weight": 100})),
            ("w50.canary.test", "w50", json!({"weight": 50})),
            (
                "w10of10.canary.test",
                "w10of10",
                json!({"weight": 10, "weightTotal": 10}),
            ),
            (
                "w5of10.canary.test",
                "w5of10",
                json!({"weight": 5, "weightTotal": 10}),
            ),
            (
                "w1000of1000.canary.test",
                "w1000of1000",
                json!({"weight": 1000, "weightTotal": 1000}),
            ),
        ],
    ))
    .await;
    let mut conn = Conn::open(g.http).await;
    all_reach(&mut conn, "w0.canary.test", &[], PRIMARY, 200).await;
    all_reach(&mut conn, "w100.canary.test", &[], CANARY, 200).await;
    all_reach(&mut conn, "w10of10.canary.test", &[], CANARY, 200).await;
    all_reach(&mut conn, "w1000of1000.canary.test", &[], CANARY, 100).await;

    // 50 of 100 over 1000 requests: the standard deviation is ~16 requests, so 40–60 %
    // is more than 6 of them.
    let counts = tally(&mut conn, "w50.canary.test", "/", &[], 1000).await;
    let to_canary = counts.get(CANARY).copied().unwrap_or(0);
    assert_eq!(counts.values().sum::<usize>(), 1000);
    assert!((400..=600).contains(&to_canary), "{counts:?}");

    // 5 of 10 is half (upstream would have sent 5 %): over 400 requests the standard
    // deviation is 10 requests.
    let counts = tally(&mut conn, "w5of10.canary.test", "/", &[], 400).await;
    let to_canary = counts.get(CANARY).copied().unwrap_or(0);
    assert!((140..=260).contains(&to_canary), "{counts:?}");
}

/// A canary backend without endpoints never takes traffic: its primary answers, even
/// when every rule would pick the canary (ingress-nginx has no balancer for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_without_endpoints_leaves_traffic_on_the_primary() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let [primary, mut canary] = canary_pair(
        "empty",
        &[upstreams[0].addr()],
        &[],
        json!({"weight": 100, "header": "X-Canary"}),
    );
    canary.as_object_mut().unwrap().remove("endpoints");
    g.apply(json!({
        "backends": [primary, canary],
        "servers": [server("empty.canary.test", "empty")]
    }))
    .await;
    let mut conn = Conn::open(g.http).await;
    all_reach(&mut conn, "empty.canary.test", &[], PRIMARY, 50).await;
    all_reach(
        &mut conn,
        "empty.canary.test",
        &[("x-canary", "always")],
        PRIMARY,
        20,
    )
    .await;
}

/// Part B §3.9, balanced mode: the first answer sets `INGRESSCOOKIE=<token>|<backend
/// key>` where the location is listed in `locations`; the cookie then pins every
/// request (on every location of the backend) to one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_balanced_cookie_pins_the_instance() {
    let g = Gangplank::start().await;
    let upstreams = echoes(3).await;
    let name = "default-sticky-80";
    let host = "balanced.sticky.test";
    g.apply(json!({
        "backends": [sticky_backend(name, &addrs(&upstreams), "balanced", host, false)],
        "servers": [{"hostname": host, "locations": [
            {"path": "/", "pathType": "Prefix", "backend": name},
            {"path": "/api", "pathType": "Prefix", "backend": name}
        ]}]
    }))
    .await;
    let mut conn = Conn::open(g.http).await;

    let (first, headers) = answer(&mut conn, host, "/", &[]).await;
    let (value, attributes) = affinity_cookie(&headers).expect("the first answer sets a cookie");
    assert_eq!(attributes, "Path=/; HttpOnly");
    let (token, key) = value.split_once('|').unwrap();
    assert!(
        !token.is_empty() && !token.contains(['|', ';', ' ']),
        "{value}"
    );
    assert_eq!(key, backend_key(name));

    let cookie = with_cookie(&value);
    for path in ["/", "/api/x"] {
        for _ in 0..50 {
            let (served, headers) = answer(&mut conn, host, path, &[("cookie", &cookie)]).await;
            assert_eq!(served, first, "{path}");
            assert_eq!(
                affinity_cookie(&headers),
                None,
                "{path}: the cookie is kept"
            );
        }
    }

    // Without a cookie every request gets a fresh token, which may land anywhere.
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        let (served, headers) = answer(&mut conn, host, "/", &[]).await;
        assert!(affinity_cookie(&headers).is_some());
        seen.insert(served);
    }
    assert!(seen.len() > 1, "60 fresh sessions all on {seen:?}");

    // `/api` is not in `locations`: it is balanced, but no cookie is set there.
    for _ in 0..10 {
        let (_, headers) = answer(&mut conn, host, "/api/x", &[]).await;
        assert_eq!(affinity_cookie(&headers), None);
    }
}

/// Part B §3.9, persistent mode and §10 item 8: the cookie names the endpoint itself
/// (`md5hex(name + "ip:port")`, so cookies written by ingress-nginx keep working); it
/// survives scale-up, and only moves, with a new cookie, when its endpoint goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_persistent_survives_scale_up_and_moves_when_the_endpoint_goes() {
    let g = Gangplank::start().await;
    let upstreams = echoes(5).await;
    let all = addrs(&upstreams);
    let name = "default-persistent-80";
    let host = "persistent.sticky.test";
    let config = |endpoints: &[SocketAddr]| {
        json!({
            "backends": [sticky_backend(name, endpoints, "persistent", host, false)],
            "servers": [server(host, name)]
        })
    };
    let index_of = |instance: &str| -> usize {
        instance
            .strip_prefix("echo-")
            .and_then(|i| i.parse().ok())
            .unwrap()
    };
    g.apply(config(&all[..3])).await;
    let mut conn = Conn::open(g.http).await;

    let (first, headers) = answer(&mut conn, host, "/", &[]).await;
    let (value, attributes) = affinity_cookie(&headers).expect("the first answer sets a cookie");
    assert_eq!(attributes, "Path=/; HttpOnly");
    let pinned = index_of(&first);
    assert_eq!(
        value,
        format!(
            "{}|{}",
            persistent_key(name, all[pinned]),
            backend_key(name)
        )
    );
    let cookie = with_cookie(&value);
    all_reach(&mut conn, host, &[("cookie", &cookie)], &first, 20).await;

    // A cookie built as ingress-nginx builds it reaches that endpoint.
    for (i, addr) in all[..3].iter().enumerate() {
        let built = with_cookie(&format!(
            "{}|{}",
            persistent_key(name, *addr),
            backend_key(name)
        ));
        all_reach(
            &mut conn,
            host,
            &[("cookie", &built)],
            &format!("echo-{i}"),
            5,
        )
        .await;
    }

    // Scale up: sessions never rebalance.
    g.apply(config(&all)).await;
    for _ in 0..50 {
        let (served, headers) = answer(&mut conn, host, "/", &[("cookie", &cookie)]).await;
        assert_eq!(served, first);
        assert_eq!(affinity_cookie(&headers), None);
    }

    // The pinned endpoint goes away: the session moves, with a new cookie for its new
    // endpoint, which then sticks.
    let remaining: Vec<SocketAddr> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != pinned)
        .map(|(_, a)| *a)
        .collect();
    g.apply(config(&remaining)).await;
    let (moved, headers) = answer(&mut conn, host, "/", &[("cookie", &cookie)]).await;
    assert_ne!(moved, first);
    let (value, _) = affinity_cookie(&headers).expect("a moved session gets a new cookie");
    assert_eq!(
        value,
        format!(
            "{}|{}",
            persistent_key(name, all[index_of(&moved)]),
            backend_key(name)
        )
    );
    all_reach(
        &mut conn,
        host,
        &[("cookie", &with_cookie(&value))],
        &moved,
        20,
    )
    .await;
}

/// Part B §3.9 and §4.4: the cookie's endpoint is down. With `change_on_failure` the
/// retry picks another endpoint and re-pins the session there; without it every retry
/// goes back to the cookie's endpoint and the request fails with 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_change_on_failure() {
    let g = Gangplank::start().await;
    let upstreams = echoes(1).await;
    let live = upstreams[0].addr();
    let dead = free_port();
    let (change, keep) = ("default-change-80", "default-keep-80");
    let (change_host, keep_host) = ("change.sticky.test", "keep.sticky.test");
    g.apply(json!({
        "backends": [
            sticky_backend(change, &[dead, live], "persistent", change_host, true),
            sticky_backend(keep, &[dead, live], "persistent", keep_host, false),
        ],
        "servers": [server(change_host, change), server(keep_host, keep)]
    }))
    .await;
    let cookie_for =
        |name: &str, endpoint| format!("{}|{}", persistent_key(name, endpoint), backend_key(name));
    let mut conn = Conn::open(g.http).await;

    for _ in 0..5 {
        let to_dead = with_cookie(&cookie_for(change, dead));
        let (served, headers) = answer(&mut conn, change_host, "/", &[("cookie", &to_dead)]).await;
        assert_eq!(served, "echo-0");
        let (value, _) = affinity_cookie(&headers).expect("the session is re-pinned");
        assert_eq!(value, cookie_for(change, live));
    }

    for _ in 0..5 {
        let to_dead = with_cookie(&cookie_for(keep, dead));
        let (status, headers, _) = conn.send(keep_host, "/", &[("cookie", &to_dead)]).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(affinity_cookie(&headers), None);
    }
    // The same backend serves a session pinned to its live endpoint.
    let to_live = with_cookie(&cookie_for(keep, live));
    all_reach(&mut conn, keep_host, &[("cookie", &to_live)], "echo-0", 10).await;
}

/// Part B §3.6 and §10 item 9: `upstream-hash-by: $request_uri` sends one URI to one
/// instance, and different URIs to different instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chash_by_request_uri() {
    let g = Gangplank::start().await;
    let upstreams = echoes(3).await;
    let mut b = backend("default-chash-80", &addrs(&upstreams));
    b["upstreamHashByConfig"] = json!({"upstream-hash-by": "$request_uri"});
    g.apply(json!({"backends": [b], "servers": [server("chash.test", "default-chash-80")]}))
        .await;
    let mut conn = Conn::open(g.http).await;

    let counts = tally(&mut conn, "chash.test", "/same?user=42", &[], 100).await;
    assert_eq!(counts.len(), 1, "{counts:?}");

    let mut seen = BTreeSet::new();
    for i in 0..40 {
        let path = format!("/item/{i}");
        let first = instance(&mut conn, "chash.test", &path, &[]).await;
        assert_eq!(instance(&mut conn, "chash.test", &path, &[]).await, first);
        seen.insert(first);
    }
    assert!(seen.len() > 1, "40 URIs all on {seen:?}");
}

/// Part B §3.7, §4.5 and §10 item 9: with 9 endpoints in subsets of 3, one key stays
/// within one subset (endpoints in configured order: 0–2, 3–5, 6–8) and spreads over
/// all of its members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chashsubset_keeps_a_key_within_one_subset() {
    let g = Gangplank::start().await;
    let upstreams = echoes(9).await;
    let mut b = backend("default-subset-80", &addrs(&upstreams));
    b["upstreamHashByConfig"] = json!({
        "upstream-hash-by": "$request_uri",
        "upstream-hash-by-subset": true,
        "upstream-hash-by-subset-size": 3
    });
    g.apply(json!({"backends": [b], "servers": [server("subset.test", "default-subset-80")]}))
        .await;
    let subsets: Vec<BTreeSet<String>> = (0..3)
        .map(|s| (0..3).map(|m| format!("echo-{}", s * 3 + m)).collect())
        .collect();
    let mut conn = Conn::open(g.http).await;

    // Uniform inside the subset: 100 draws miss one of 3 members with probability
    // 3·(2/3)^100, about 1e-17.
    for (path, n) in [("/user/1", 100), ("/user/2", 60), ("/user/3", 60)] {
        let counts = tally(&mut conn, "subset.test", path, &[], n).await;
        let seen: BTreeSet<String> = counts.keys().cloned().collect();
        assert!(seen.len() > 1 && seen.len() <= 3, "{path}: {counts:?}");
        assert!(subsets.contains(&seen), "{path}: {counts:?}");
    }
}

/// Part B §3.8 and §10 item 4: requests never fail with ewma, also when one endpoint
/// refuses connections (it has no statistics, so it keeps being chosen; retries carry
/// those requests to the others).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ewma_never_fails() {
    let g = Gangplank::start().await;
    let upstreams = echoes(3).await;
    let live = addrs(&upstreams);
    let config = |endpoints: &[SocketAddr]| {
        let mut b = backend("default-ewma-80", endpoints);
        b["load-balance"] = json!("ewma");
        json!({"backends": [b], "servers": [server("ewma.test", "default-ewma-80")]})
    };
    g.apply(config(&live)).await;
    let mut conn = Conn::open(g.http).await;
    let counts = tally(&mut conn, "ewma.test", "/", &[], 300).await;
    assert_eq!(counts.values().sum::<usize>(), 300);

    let dead = free_port();
    g.apply(config(&[dead, live[0], live[1]])).await;
    let counts = tally(&mut conn, "ewma.test", "/", &[], 300).await;
    assert_eq!(counts.values().sum::<usize>(), 300);
    assert!(!counts.contains_key("echo-2"), "{counts:?}");
}

/// Part B §4.2 and §10 item 1: changing `load-balance` (round_robin -> ewma -> back)
/// through a new configuration while requests flow loses none of them, and round robin
/// is exact again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balance_change_under_traffic() {
    let g = Gangplank::start().await;
    let upstreams = echoes(3).await;
    let endpoints = addrs(&upstreams);
    let config = |algorithm: &str| {
        let mut b = backend("default-switch-80", &endpoints);
        b["load-balance"] = json!(algorithm);
        json!({"backends": [b], "servers": [server("switch.test", "default-switch-80")]})
    };
    g.apply(config("round_robin")).await;

    let http = g.http;
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..2 {
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let mut conn = Conn::open(http).await;
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let (status, _, _) = conn.send("switch.test", "/", &[]).await;
                if status == StatusCode::OK {
                    ok += 1;
                } else {
                    failed.push(status);
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    g.apply(config("ewma")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (current, _) = g.admin().configuration().await.unwrap();
    assert_eq!(
        current.backends[0]
            .load_balance
            .map(gangplank_model::LoadBalance::as_str),
        Some("ewma")
    );
    g.apply(config("round_robin")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for task in load {
        let (o, f) = task.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(ok > 100, "only {ok} requests");
    assert!(failed.is_empty(), "failed: {failed:?}");

    // Round robin again: exact shares on one connection.
    let mut conn = Conn::open(g.http).await;
    let counts = tally(&mut conn, "switch.test", "/", &[], 300).await;
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|c| *c == 100), "{counts:?}");
}
