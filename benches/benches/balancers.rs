#![allow(clippy::unwrap_used, clippy::expect_used)] // Benches: a panic is a failed assertion.
#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! Balancer picks: the per-request cost of choosing an endpoint (nanoseconds per pick)
//! for each algorithm, over a backend of 3 endpoints and one of 100.
//!
//! - `round_robin`: one shared atomic counter;
//! - `ewma`: two random candidates compared by decayed score (every endpoint has
//!   statistics, as after some traffic);
//! - `chash`: the ring lookup of the key `/api/users/42`;
//! - `chashsubset`: the subset of that key, then a random member;
//! - `sticky_balanced`: a request carrying a valid affinity cookie (the common case:
//!   parse the cookie, find its token on the ring); `sticky_balanced_new` is the first
//!   request of a session (random token, ring lookup, the cookie value allocated).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gangplank_model::{
    Backend, CookieSessionAffinity, Endpoint, LoadBalance, SessionAffinityConfig,
    UpstreamHashByConfig,
};
use gangplank_proxy::balancer::{self, Balancer, PickRequest};
use gangplank_store::CompiledBackend;

/// The `upstream-hash-by` value of the chash benchmarks.
const HASH_KEY: &[u8] = b"/api/users/42";

/// A backend named `default-app-80` with `endpoints` endpoints (10.0.x.y:8080).
fn backend(endpoints: usize) -> Backend {
    Backend {
        name: "default-app-80".into(),
        endpoints: (0..endpoints)
            .map(|i| Endpoint {
                address: format!("10.0.{}.{}", i / 250, i % 250 + 1),
                port: "8080".into(),
            })
            .collect(),
        ..Default::default()
    }
}

/// The balancer for `backend` as the proxy builds it.
fn build(backend: Backend) -> Arc<dyn Balancer> {
    let compiled = CompiledBackend::compile(backend);
    balancer::build(&compiled, None)
}

/// One balancer of each benchmarked algorithm over `endpoints` endpoints.
struct Balancers {
    round_robin: Arc<dyn Balancer>,
    ewma: Arc<dyn Balancer>,
    chash: Arc<dyn Balancer>,
    chashsubset: Arc<dyn Balancer>,
    sticky_balanced: Arc<dyn Balancer>,
    /// A cookie value `sticky_balanced` issued (so it designates a live endpoint).
    cookie: String,
}

impl Balancers {
    fn new(endpoints: usize) -> Balancers {
        let round_robin = build(Backend {
            load_balance: Some(LoadBalance::RoundRobin),
            ..backend(endpoints)
        });
        let ewma = build(Backend {
            load_balance: Some(LoadBalance::Ewma),
            ..backend(endpoints)
        });
        // Statistics on every endpoint, spread between 1 and 20 ms, so picks compare
        // real decayed scores rather than zeros.
        for endpoint in 0..endpoints {
            let ms = 1 + (endpoint as u64 * 7) % 20;
            ewma.observe(endpoint, Duration::from_millis(ms));
        }
        let hash_by = |subset: bool| UpstreamHashByConfig {
            upstream_hash_by: "$request_uri".into(),
            upstream_hash_by_subset: subset,
            upstream_hash_by_subset_size: 0,
        };
        let chash = build(Backend {
            upstream_hash_by_config: hash_by(false),
            ..backend(endpoints)
        });
        let chashsubset = build(Backend {
            upstream_hash_by_config: hash_by(true),
            ..backend(endpoints)
        });
        let sticky_balanced = build(Backend {
            session_affinity_config: SessionAffinityConfig {
                name: "cookie".into(),
                mode: "balanced".into(),
                cookie_session_affinity: CookieSessionAffinity {
                    name: "INGRESSCOOKIE".into(),
                    ..Default::default()
                },
            },
            ..backend(endpoints)
        });
        assert_eq!(round_robin.algorithm(), LoadBalance::RoundRobin);
        assert_eq!(ewma.algorithm(), LoadBalance::Ewma);
        assert_eq!(chash.algorithm(), LoadBalance::Chash);
        assert_eq!(chashsubset.algorithm(), LoadBalance::Chashsubset);
        assert_eq!(sticky_balanced.algorithm(), LoadBalance::StickyBalanced);

        let first = sticky_balanced.pick(&PickRequest::default()).unwrap();
        let cookie = first.set_cookie.expect("a new session gets a cookie");
        // The cookie keeps the session on its endpoint, without a new cookie.
        let again = sticky_balanced
            .pick(&PickRequest {
                affinity_cookie: Some(&cookie),
                ..PickRequest::default()
            })
            .unwrap();
        assert_eq!((again.endpoint, again.set_cookie), (first.endpoint, None));

        Balancers {
            round_robin,
            ewma,
            chash,
            chashsubset,
            sticky_balanced,
            cookie,
        }
    }
}

fn picks(c: &mut Criterion) {
    for endpoints in [3, 100] {
        let b = Balancers::new(endpoints);
        let plain = PickRequest {
            hash_key: None,
            affinity_cookie: None,
            tried: &[],
        };
        let hashed = PickRequest {
            hash_key: Some(HASH_KEY),
            affinity_cookie: None,
            tried: &[],
        };
        let with_cookie = PickRequest {
            hash_key: None,
            affinity_cookie: Some(&b.cookie),
            tried: &[],
        };
        let mut group = c.benchmark_group(format!("balancer_pick_{endpoints}_endpoints"));
        let cases: [(&str, &Arc<dyn Balancer>, &PickRequest<'_>); 6] = [
            ("round_robin", &b.round_robin, &plain),
            ("ewma", &b.ewma, &plain),
            ("chash", &b.chash, &hashed),
            ("chashsubset", &b.chashsubset, &hashed),
            ("sticky_balanced", &b.sticky_balanced, &with_cookie),
            ("sticky_balanced_new", &b.sticky_balanced, &plain),
        ];
        for (name, balancer, request) in cases {
            group.bench_function(name, |bench| {
                bench.iter(|| black_box(balancer.pick(black_box(request))))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, picks);
criterion_main!(benches);
