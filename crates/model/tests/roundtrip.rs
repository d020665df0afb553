#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches: a panic is a failed assertion.
//! Property: any backend the model can hold survives JSON encoding unchanged.

use gangplank_model::{
    Backend, CookieSessionAffinity, Endpoint, IntOrString, LoadBalance, SessionAffinityConfig,
    TrafficShapingPolicy, UpstreamHashByConfig,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Any unicode, including quotes, backslashes and control characters: encoding
    // must round-trip them even though validation would reject some.
    any::<String>()
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    (text(), text()).prop_map(|(address, port)| Endpoint { address, port })
}

fn load_balance() -> impl Strategy<Value = Option<LoadBalance>> {
    proptest::option::of(prop_oneof![
        Just(LoadBalance::RoundRobin),
        Just(LoadBalance::Ewma),
        Just(LoadBalance::Chash),
        Just(LoadBalance::Chashsubset),
        Just(LoadBalance::StickyBalanced),
        Just(LoadBalance::StickyPersistent),
    ])
}

fn port() -> impl Strategy<Value = IntOrString> {
    prop_oneof![
        any::<i64>().prop_map(IntOrString::Int),
        text().prop_map(IntOrString::String)
    ]
}

fn backend() -> impl Strategy<Value = Backend> {
    (
        (
            text(),
            port(),
            any::<bool>(),
            proptest::collection::vec(endpoint(), 0..4),
        ),
        (text(), text(), text(), text(), any::<bool>(), any::<bool>()),
        (
            text(),
            any::<bool>(),
            any::<i64>(),
            load_balance(),
            any::<bool>(),
        ),
        (any::<i64>(), any::<i64>(), text(), text(), text(), text()),
        proptest::collection::vec(text(), 0..3),
    )
        .prop_map(
            |(
                (name, port, ssl_passthrough, endpoints),
                (aff, mode, cookie, path, secure, cof),
                (hash, subset, size, lb, no_server),
                (w, wt, h, hv, hp, c),
                alts,
            )| Backend {
                name,
                service: None,
                port,
                ssl_passthrough,
                endpoints,
                session_affinity_config: SessionAffinityConfig {
                    name: aff,
                    mode,
                    cookie_session_affinity: CookieSessionAffinity {
                        name: cookie,
                        path,
                        secure,
                        change_on_failure: cof,
                        ..Default::default()
                    },
                },
                upstream_hash_by_config: UpstreamHashByConfig {
                    upstream_hash_by: hash,
                    upstream_hash_by_subset: subset,
                    upstream_hash_by_subset_size: size,
                },
                load_balance: lb,
                no_server,
                traffic_shaping_policy: TrafficShapingPolicy {
                    weight: w,
                    weight_total: wt,
                    header: h,
                    header_value: hv,
                    header_pattern: hp,
                    cookie: c,
                },
                alternative_backends: alts,
                secure_ca_cert: None,
            },
        )
}

proptest! {
    #[test]
    fn backends_round_trip(backends in proptest::collection::vec(backend(), 0..4)) {
        let bytes = serde_json::to_vec(&backends).unwrap();
        let back: Vec<Backend> = gangplank_model::json::decode(&bytes).unwrap();
        prop_assert_eq!(back, backends);
    }

    /// Decoding arbitrary bytes never panics; it succeeds or names a path.
    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = gangplank_model::json::decode::<Vec<Backend>>(&bytes) {
            prop_assert!(e.path.starts_with('$'));
        }
    }
}
