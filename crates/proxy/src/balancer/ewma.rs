//! `ewma`: peak-EWMA of response times with the power of two choices (Part B §3.8).
//!
//! Each endpoint carries an exponentially weighted moving average of its round-trip
//! time (connect + response), decayed with a 10-second time constant. A pick draws two
//! distinct endpoints at random (skipping those already tried) and takes the one with
//! the lower decayed score; endpoints without statistics score 0 and so get traffic
//! first.
//!
//! Statistics outlive snapshots: [`build`](super::build) hands the previous instance to
//! [`Ewma::new`], which keeps the statistics of surviving endpoints (by `ip:port`),
//! drops removed ones, and seeds added ones with the average EWMA of the others (slow
//! start), exactly as ingress-nginx's `sync()` does with its shared dicts.
//!
//! Time is seconds on a process-wide monotonic clock ([`now`]); every operation has an
//! `_at` form that takes the time explicitly, which the tests use to replay
//! ingress-nginx's vectors.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use gangplank_model::LoadBalance;
use gangplank_store::CompiledBackend;

use super::{Balancer, Pick, PickRequest};

/// Decay time constant, in seconds (ingress-nginx's `DECAY_TIME`).
pub const DECAY_TIME: f64 = 10.0;

/// How many random candidates a pick compares (ingress-nginx's `PICK_SET_SIZE`).
pub const PICK_SET_SIZE: usize = 2;

/// One endpoint's statistics: its moving average (seconds) and when it was last
/// updated (seconds on the [`now`] clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EwmaStat {
    /// The moving average of round-trip times, in seconds.
    pub ewma: f64,
    /// When `ewma` was last written, in seconds on the [`now`] clock.
    pub touched_at: f64,
}

/// An endpoint's address (`ip:port`) and its statistics, if it has any: what one EWMA
/// instance hands to its successor through [`Balancer::ewma_state`].
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointEwma {
    /// The endpoint as `ip:port` (IPv6 bracketed).
    pub address: String,
    /// Its statistics; `None` until a response was observed or it was seeded.
    pub stat: Option<EwmaStat>,
}

/// The balancer clock: seconds since the first call in this process, monotonic.
/// Statistics handed between instances are only meaningful on this clock.
pub fn now() -> f64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Decays `ewma` (last written at `touched_at`) to `now` and folds in `rtt`:
/// `w = exp(-max(now - touched_at, 0) / 10)`, result `ewma * w + rtt * (1 - w)`.
/// With `rtt = 0` this is the endpoint's score.
pub fn decay(ewma: f64, touched_at: f64, rtt: f64, now: f64) -> f64 {
    let elapsed = (now - touched_at).max(0.0);
    let weight = (-elapsed / DECAY_TIME).exp();
    ewma * weight + rtt * (1.0 - weight)
}

#[derive(Debug)]
struct Slot {
    address: String,
    stat: Mutex<Option<EwmaStat>>,
}

impl Slot {
    fn get(&self) -> Option<EwmaStat> {
        *self.stat.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The decayed value at `now`; 0 without statistics. Scoring never writes.
    fn score(&self, now: f64) -> f64 {
        self.get()
            .map_or(0.0, |s| decay(s.ewma, s.touched_at, 0.0, now))
    }
}

/// The EWMA balancer of one backend.
#[derive(Debug)]
pub struct Ewma {
    slots: Vec<Slot>,
}

impl Ewma {
    /// Builds the balancer, carrying statistics over from `previous` when it is an
    /// EWMA instance (see the module docs).
    pub fn new(backend: &CompiledBackend, previous: Option<&dyn Balancer>) -> Ewma {
        Ewma::new_at(backend, previous, now())
    }

    /// [`Ewma::new`] at an explicit time (`now` stamps seeded endpoints).
    pub fn new_at(backend: &CompiledBackend, previous: Option<&dyn Balancer>, now: f64) -> Ewma {
        let addresses: Vec<String> = backend.upstreams.iter().map(ToString::to_string).collect();
        let stats = match previous.and_then(|p| p.ewma_state()) {
            None => vec![None; addresses.len()],
            Some(previous) => carry_over(&addresses, &previous, now),
        };
        Ewma {
            slots: addresses
                .into_iter()
                .zip(stats)
                .map(|(address, stat)| Slot {
                    address,
                    stat: Mutex::new(stat),
                })
                .collect(),
        }
    }

    /// [`Balancer::pick`] at an explicit time.
    pub fn pick_at(&self, request: &PickRequest<'_>, now: f64) -> Option<Pick> {
        let n = self.slots.len();
        let endpoint = match n {
            0 => return None,
            1 => 0,
            _ => {
                let tried = request.tried;
                let untried = if tried.is_empty() {
                    n
                } else {
                    (0..n).filter(|e| !tried.contains(e)).count()
                };
                // Every endpoint tried: ingress-nginx warns and uses them all again.
                let (avoid, candidates) = if untried == 0 {
                    (&[][..], n)
                } else {
                    (tried, untried)
                };
                let nth = |rank: usize| {
                    if avoid.is_empty() {
                        Some(rank)
                    } else {
                        (0..n).filter(|e| !avoid.contains(e)).nth(rank)
                    }
                };
                if candidates == 1 {
                    nth(0)?
                } else {
                    // A uniformly random ordered pair of distinct candidates: the first
                    // PICK_SET_SIZE entries of a partial Fisher–Yates shuffle.
                    let first_rank = fastrand::usize(..candidates);
                    let mut second_rank = fastrand::usize(..candidates - 1);
                    if second_rank >= first_rank {
                        second_rank += 1;
                    }
                    let first = nth(first_rank)?;
                    let second = nth(second_rank)?;
                    if self.slots[second].score(now) < self.slots[first].score(now) {
                        second
                    } else {
                        first
                    }
                }
            }
        };
        Some(Pick {
            endpoint,
            set_cookie: None,
        })
    }

    /// [`Balancer::observe`] at an explicit time, with the round trip in seconds.
    pub fn observe_at(&self, endpoint: usize, rtt: f64, now: f64) {
        let Some(slot) = self.slots.get(endpoint) else {
            return;
        };
        let mut stat = slot.stat.lock().unwrap_or_else(PoisonError::into_inner);
        // Without statistics ingress-nginx decays from (0, epoch 0), which weighs the
        // old value at exp(-1.5e8): the first observation is simply the rtt.
        let ewma = match *stat {
            Some(s) => decay(s.ewma, s.touched_at, rtt, now),
            None => rtt,
        };
        *stat = Some(EwmaStat {
            ewma,
            touched_at: now,
        });
    }

    /// The decayed score of every endpoint at `now` (0 without statistics).
    pub fn scores_at(&self, now: f64) -> Vec<f64> {
        self.slots.iter().map(|s| s.score(now)).collect()
    }

    /// The raw statistics of `endpoint`.
    pub fn stat(&self, endpoint: usize) -> Option<EwmaStat> {
        self.slots.get(endpoint).and_then(Slot::get)
    }

    #[cfg(test)]
    fn set_stat(&self, endpoint: usize, stat: Option<EwmaStat>) {
        *self.slots[endpoint].stat.lock().unwrap() = stat;
    }
}

/// ingress-nginx's `sync()` on a changed endpoint set: surviving endpoints keep their
/// statistics, removed ones are forgotten, and added ones are seeded with the average
/// EWMA of the endpoints that have statistics (stamped `now`), if any has.
fn carry_over(addresses: &[String], previous: &[EndpointEwma], now: f64) -> Vec<Option<EwmaStat>> {
    let before: HashMap<&str, Option<EwmaStat>> = previous
        .iter()
        .map(|e| (e.address.as_str(), e.stat))
        .collect();
    let mut stats: Vec<Option<EwmaStat>> = addresses
        .iter()
        .map(|a| before.get(a.as_str()).copied().flatten())
        .collect();
    let added: Vec<bool> = addresses
        .iter()
        .map(|a| !before.contains_key(a.as_str()))
        .collect();
    let current: HashSet<&str> = addresses.iter().map(String::as_str).collect();
    let removed = previous
        .iter()
        .any(|e| !current.contains(e.address.as_str()));
    if !removed && !added.contains(&true) {
        return stats;
    }
    let (sum, count) = stats
        .iter()
        .flatten()
        .fold((0.0, 0usize), |(sum, count), s| (sum + s.ewma, count + 1));
    if count > 0 {
        let seed = EwmaStat {
            ewma: sum / count as f64,
            touched_at: now,
        };
        for (stat, _) in stats.iter_mut().zip(&added).filter(|(_, added)| **added) {
            *stat = Some(seed);
        }
    }
    stats
}

impl Balancer for Ewma {
    fn pick(&self, request: &PickRequest<'_>) -> Option<Pick> {
        self.pick_at(request, now())
    }

    fn observe(&self, endpoint: usize, rtt: Duration) {
        self.observe_at(endpoint, rtt.as_secs_f64(), now());
    }

    fn algorithm(&self) -> LoadBalance {
        LoadBalance::Ewma
    }

    fn scores(&self) -> Vec<f64> {
        self.scores_at(now())
    }

    fn ewma_state(&self) -> Option<Vec<EndpointEwma>> {
        Some(
            self.slots
                .iter()
                .map(|s| EndpointEwma {
                    address: s.address.clone(),
                    stat: s.get(),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::{Backend, Endpoint};
    use proptest::prelude::*;

    const NOW: f64 = 1543238266.0;

    fn backend(hosts: &[u8]) -> CompiledBackend {
        CompiledBackend::compile(Backend {
            name: "namespace-echo-8080".into(),
            load_balance: Some(LoadBalance::Ewma),
            endpoints: hosts
                .iter()
                .map(|h| Endpoint {
                    address: format!("10.10.10.{h}"),
                    port: "8080".into(),
                })
                .collect(),
            ..Default::default()
        })
    }

    fn stat(ewma: f64, touched_at: f64) -> Option<EwmaStat> {
        Some(EwmaStat { ewma, touched_at })
    }

    /// §4.3 fixture: `.1` = (0.2, now-1), `.2` = (0.3, now-5), `.3` = (1.2, now-20).
    fn fixture(hosts: &[u8]) -> Ewma {
        let b = Ewma::new_at(&backend(hosts), None, NOW);
        for (i, h) in hosts.iter().enumerate() {
            let s = match h {
                1 => stat(0.2, NOW - 1.0),
                2 => stat(0.3, NOW - 5.0),
                3 => stat(1.2, NOW - 20.0),
                _ => None,
            };
            b.set_stat(i, s);
        }
        b
    }

    fn pick(b: &Ewma, tried: &[usize]) -> usize {
        b.pick_at(
            &PickRequest {
                tried,
                ..Default::default()
            },
            NOW,
        )
        .unwrap()
        .endpoint
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn after_balance_decays_and_folds_in_the_rtt() {
        let b = fixture(&[1, 2, 3]);
        b.observe_at(1, 0.02 + 0.1, NOW);
        let s = b.stat(1).unwrap();
        let w = (-0.5f64).exp();
        assert!(close(s.ewma, 0.3 * w + 0.12 * (1.0 - w)));
        assert!((s.ewma - 0.2291755187).abs() < 1e-10, "{}", s.ewma);
        assert_eq!(s.touched_at, NOW);
        // Only the observed endpoint changes.
        assert_eq!(b.stat(0), stat(0.2, NOW - 1.0));
        assert_eq!(b.stat(2), stat(1.2, NOW - 20.0));
    }

    #[test]
    fn observe_takes_a_duration() {
        let b = fixture(&[1, 2, 3]);
        let before = b.stat(1).unwrap();
        b.observe(1, Duration::from_millis(120));
        let after = b.stat(1).unwrap();
        assert_ne!(before, after);
        // First observation of an endpoint without statistics is the rtt itself.
        let fresh = fixture(&[4, 5]);
        fresh.observe_at(0, 0.25, 3.0);
        assert_eq!(fresh.stat(0), stat(0.25, 3.0));
    }

    #[test]
    fn single_endpoint_is_returned() {
        let b = fixture(&[1]);
        assert_eq!(pick(&b, &[]), 0);
        assert_eq!(pick(&b, &[0]), 0);
    }

    #[test]
    fn lower_decayed_score_wins() {
        let b = fixture(&[1, 3]);
        let scores = b.scores_at(NOW);
        // The spec's figure, 0.16240233988393523723, to f64 precision.
        assert!(close(scores[1], 0.162_402_339_883_935_24), "{}", scores[1]);
        assert!(close(scores[0], 0.2 * (-0.1f64).exp()));
        assert!((scores[0] - 0.18097).abs() < 1e-5);
        for _ in 0..50 {
            assert_eq!(pick(&b, &[]), 1);
        }
    }

    #[test]
    fn tried_endpoints_are_skipped_until_all_were_tried() {
        let b = fixture(&[1, 3]);
        assert_eq!(pick(&b, &[1]), 0);
        assert_eq!(pick(&b, &[0, 1]), 1);
    }

    #[test]
    fn two_candidates_are_compared_out_of_many() {
        // .3 scores best of five; with pick-2 it wins exactly when drawn (2/5 of
        // picks), and a pick is never the worst of its pair.
        let b = fixture(&[1, 2, 3, 4, 5]);
        b.set_stat(3, stat(5.0, NOW));
        b.set_stat(4, stat(6.0, NOW));
        let mut counts = [0usize; 5];
        for _ in 0..5000 {
            counts[pick(&b, &[])] += 1;
        }
        assert_eq!(counts[4], 0, "the worst endpoint never wins a pair");
        assert!((1800..2200).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn unchanged_endpoints_keep_their_statistics() {
        let old = fixture(&[1, 2, 3]);
        let new = Ewma::new_at(&backend(&[1, 2, 3]), Some(&old), NOW + 100.0);
        assert_eq!(new.ewma_state(), old.ewma_state());
    }

    #[test]
    fn sync_drops_removed_and_seeds_added_endpoints() {
        // .2 -> .4, plus .5 added: .2 forgotten; .4 and .5 = ((0.2 + 1.2) / 2, now).
        let old = fixture(&[1, 2, 3]);
        let new = Ewma::new_at(&backend(&[1, 4, 3, 5]), Some(&old), NOW);
        assert_eq!(new.stat(0), stat(0.2, NOW - 1.0));
        assert_eq!(new.stat(2), stat(1.2, NOW - 20.0));
        for i in [1, 3] {
            let s = new.stat(i).unwrap();
            assert!(close(s.ewma, 0.7), "{}", s.ewma);
            assert_eq!(s.touched_at, NOW);
        }
        let state = new.ewma_state().unwrap();
        assert!(state.iter().all(|e| e.address != "10.10.10.2:8080"));
    }

    #[test]
    fn nothing_is_seeded_without_statistics() {
        let old = fixture(&[1, 2, 3]);
        for i in 0..3 {
            old.set_stat(i, None);
        }
        let new = Ewma::new_at(&backend(&[1, 2, 3, 4]), Some(&old), NOW);
        assert!(new.ewma_state().unwrap().iter().all(|e| e.stat.is_none()));
    }

    #[test]
    fn other_algorithms_hand_over_nothing() {
        let rr = super::super::round_robin::RoundRobin::new(&backend(&[1, 2]));
        assert_eq!(rr.ewma_state(), None);
        let new = Ewma::new_at(&backend(&[1, 2]), Some(&rr), NOW);
        assert!(new.ewma_state().unwrap().iter().all(|e| e.stat.is_none()));
    }

    #[test]
    fn endpoints_without_statistics_score_zero() {
        let b = fixture(&[1, 4]);
        assert_eq!(b.scores_at(NOW)[1], 0.0);
        assert_eq!(pick(&b, &[]), 1);
    }

    #[test]
    fn empty_backend_picks_nothing() {
        let b = Ewma::new(&backend(&[]), None);
        assert_eq!(b.pick(&PickRequest::default()), None);
        b.observe(0, Duration::from_millis(5));
        assert!(b.scores().is_empty());
    }

    proptest! {
        #[test]
        fn picks_are_in_range(n in 0u8..10, tried in proptest::collection::vec(0usize..12, 0..5)) {
            let hosts: Vec<u8> = (1..=n).collect();
            let b = fixture(&hosts);
            match b.pick(&PickRequest { tried: &tried, ..Default::default() }) {
                Some(p) => prop_assert!(p.endpoint < usize::from(n)),
                None => prop_assert_eq!(n, 0),
            }
        }
    }
}
