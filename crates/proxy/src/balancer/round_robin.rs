//! `round_robin`, ingress-nginx's default balancer (Part B §3.5).
//!
//! All endpoints weigh 1, so lua-resty-balancer's weighted interleaved round robin
//! reduces to cycling through the endpoints from a random start. One atomic cursor is
//! shared by every worker thread, which makes the spread exact across workers: 600
//! picks over 3 endpoints give exactly 200 each (ingress-nginx's e2e expectation).

use std::sync::atomic::{AtomicUsize, Ordering};

use gangplank_model::LoadBalance;
use gangplank_store::CompiledBackend;

use super::{Balancer, Pick, PickRequest};

/// Round robin over a backend's endpoints.
#[derive(Debug)]
pub struct RoundRobin {
    endpoints: usize,
    /// The next pick is `cursor % endpoints`; starts at a random endpoint, as
    /// `resty.roundrobin` does at `new()`.
    cursor: AtomicUsize,
}

impl RoundRobin {
    /// A round robin over `backend`'s endpoints, starting at a random one.
    pub fn new(backend: &CompiledBackend) -> RoundRobin {
        let endpoints = backend.upstreams.len();
        RoundRobin {
            endpoints,
            cursor: AtomicUsize::new(fastrand::usize(..endpoints.max(1))),
        }
    }
}

impl Balancer for RoundRobin {
    /// The next endpoint in turn. On a retry, an endpoint already tried is skipped in
    /// favour of the next untried one (the cursor still advances by one, so the spread
    /// of first picks stays exact); when all were tried, the turn's endpoint is used.
    fn pick(&self, request: &PickRequest<'_>) -> Option<Pick> {
        let n = self.endpoints;
        let endpoint = match n {
            0 => return None,
            1 => 0,
            _ => {
                let turn = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
                let tried = request.tried;
                if tried.is_empty() || !tried.contains(&turn) {
                    turn
                } else {
                    (1..n)
                        .map(|step| (turn + step) % n)
                        .find(|e| !tried.contains(e))
                        .unwrap_or(turn)
                }
            }
        };
        Some(Pick {
            endpoint,
            set_cookie: None,
        })
    }

    fn algorithm(&self) -> LoadBalance {
        LoadBalance::RoundRobin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::{Backend, Endpoint};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn backend(n: usize) -> CompiledBackend {
        CompiledBackend::compile(Backend {
            name: "default-echo-80".into(),
            endpoints: (0..n)
                .map(|i| Endpoint {
                    address: format!("10.0.0.{}", i + 1),
                    port: "8080".into(),
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pick(b: &RoundRobin, tried: &[usize]) -> usize {
        b.pick(&PickRequest {
            tried,
            ..Default::default()
        })
        .unwrap()
        .endpoint
    }

    #[test]
    fn six_hundred_picks_over_three_endpoints_are_exactly_even() {
        let b = RoundRobin::new(&backend(3));
        let mut counts = [0; 3];
        for _ in 0..600 {
            counts[pick(&b, &[])] += 1;
        }
        assert_eq!(counts, [200, 200, 200]);
    }

    #[test]
    fn the_spread_is_exact_across_threads() {
        let b = Arc::new(RoundRobin::new(&backend(3)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    let mut counts = [0; 3];
                    for _ in 0..150 {
                        counts[pick(&b, &[])] += 1;
                    }
                    counts
                })
            })
            .collect();
        let mut total = [0; 3];
        for t in threads {
            let counts = t.join().unwrap();
            for (sum, c) in total.iter_mut().zip(counts) {
                *sum += c;
            }
        }
        assert_eq!(total, [200, 200, 200]);
    }

    #[test]
    fn cycles_in_order_from_a_random_start() {
        let b = RoundRobin::new(&backend(4));
        let first = pick(&b, &[]);
        for i in 1..10 {
            assert_eq!(pick(&b, &[]), (first + i) % 4);
        }
        let starts: std::collections::HashSet<usize> = (0..200)
            .map(|_| pick(&RoundRobin::new(&backend(4)), &[]))
            .collect();
        assert!(starts.len() > 1, "the start point is random");
    }

    #[test]
    fn tried_endpoints_are_skipped_when_possible() {
        let b = RoundRobin::new(&backend(3));
        for _ in 0..30 {
            assert_eq!(pick(&b, &[0, 1]), 2);
            assert_ne!(pick(&b, &[1]), 1);
        }
        // Everything tried: still an endpoint.
        assert!(pick(&b, &[0, 1, 2]) < 3);
    }

    #[test]
    fn single_and_empty_backends() {
        let one = RoundRobin::new(&backend(1));
        assert_eq!(pick(&one, &[]), 0);
        assert_eq!(pick(&one, &[0]), 0);
        assert_eq!(
            RoundRobin::new(&backend(0)).pick(&PickRequest::default()),
            None
        );
    }

    proptest! {
        #[test]
        fn picks_are_in_range(n in 0usize..10, tried in proptest::collection::vec(0usize..12, 0..5), picks in 1usize..20) {
            let b = RoundRobin::new(&backend(n));
            for _ in 0..picks {
                match b.pick(&PickRequest { tried: &tried, ..Default::default() }) {
                    Some(p) => prop_assert!(p.endpoint < n),
                    None => prop_assert_eq!(n, 0),
                }
            }
        }
    }
}
