//! Request rate and connection limits per client address: ingress-nginx's `limit-rps`,
//! `limit-rpm` (`limit_req ... nodelay`), `limit-connections` (`limit_conn`) and
//! `limit-allowlist`, with the parameters compiled by
//! [`gangplank_store::policy::RateLimits`].
//!
//! # Semantics
//!
//! The key is the real client address (nginx's `$binary_remote_addr` after the real-IP
//! module: [`super::realip`] runs first); addresses in `limit-allowlist` are never
//! limited (ingress-nginx maps them to the empty key, which nginx does not account).
//!
//! **Request rates** follow nginx's `limit_req` with `nodelay`, as a leaky bucket per
//! key. Each key has an `excess` (how far ahead of the rate it is) and the time of its
//! last admitted request. A request at `now` computes
//! `excess' = max(0, excess + 1 − rate × (now − last))` (in requests); it passes when
//! `excess' ≤ burst` and then stores `excess'` and `now`; otherwise it is rejected and
//! the state does not change (rejections cost nothing, as in nginx). A new key passes
//! with `excess' = 0`, exactly like a key idle for long enough. So from an idle client
//! **`burst + 1` requests pass at once**, then one more per `1 / rate`; over any span of
//! time `t`, at most `burst + 1 + rate × t` requests pass (property-tested).
//! `burst = limit × limit-burst-multiplier` (default 5): `limit-rps: 1` with a
//! multiplier of 2 lets 3 quick requests through. Arithmetic is exact integer
//! nanoseconds (one request is `period` units, the rate drains `limit` units per
//! nanosecond), where nginx rounds to milli-requests and milliseconds: nginx can only be
//! stricter by rounding, never more lenient.
//!
//! With both `limit-rps` and `limit-rpm` (ingress-nginx emits two `limit_req` lines) a
//! request must pass both, and is accounted in both only when it does (nginx accounts
//! the earlier zones only once the last one admits).
//!
//! **Connections** follow `limit_conn`: the requests in flight per key (each HTTP/2
//! stream counts, as in nginx), checked after the rates (nginx's `limit_req` handler
//! runs before `limit_conn`'s in the same phase). A [`ConnectionGuard`] holds the slot
//! until the response body ends or is dropped (the client went away), or, for an
//! upgraded connection (WebSocket), until the tunnel closes.
//!
//! Rejections answer `limit-req-status-code` / `limit-conn-status-code` (503 by
//! default) and log one warning per second and zone on each worker, with how many
//! rejections were not logged since the last line (nginx logs each one at `error`).
//!
//! # State: per worker
//!
//! Each worker thread keeps its own zones in a thread-local table ([`Zones`]): no lock
//! and no atomic shared between workers on the request path (the connection counter is
//! an atomic only so a guard may be dropped anywhere; only its worker increments it).
//! nginx keeps one shared-memory zone for all its workers and is exact. Here **each
//! worker enforces the configured limit on its own**, so with N workers a client whose
//! connections spread over several workers gets up to N times the limit in the worst
//! case (`SO_REUSEPORT` spreads connections by their address and port). The limit is
//! deliberately not divided by N: an HTTP/1 keep-alive connection or an HTTP/2
//! connection stays on one worker, so a client using one connection (most browsers for
//! HTTP/2, most API clients) would then see a fraction of the configured limit, which is
//! worse than being lenient with clients that open many connections. A single
//! connection is limited exactly as by nginx.
//!
//! Zones are identified per Ingress (ingress-nginx's zone names; see
//! [`RateLimits::zone`]), so state survives configuration changes, as nginx's shared
//! zones survive reloads.
//!
//! # Memory
//!
//! Per worker and zone, each table (`limit-rps`, `limit-rpm`, `limit-connections`) holds
//! at most [`MAX_KEYS`] client addresses (nginx's default 5 MB zone of ingress-nginx
//! holds about 80,000): about 4.3 MB for a full rate table, 7.5 MB for a full connection
//! table. A rate table that is full first drops the keys that are indistinguishable
//! from new ones (fully drained), then, when that frees less than a quarter, the
//! least recently admitted keys down to three quarters (nginx drops its oldest key when
//! the zone is full; those clients get a fresh burst). A full connection table rejects
//! new addresses with `limit-conn-status-code`, as nginx does when its zone is full.
//! Every 10 s (on the next limited request) drained keys are dropped and zones left
//! empty go away, so the zones of locations removed from the configuration disappear
//! once their clients have drained (at most `(multiplier + 1) × period` after their
//! last request): nothing grows across reconfigurations.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use gangplank_store::policy::{RateLimits, RequestRate};
use http::StatusCode;

/// The most client addresses one table of a zone holds on one worker.
pub const MAX_KEYS: usize = 100_000;

/// Nanoseconds per second.
const SECOND: u64 = 1_000_000_000;
/// How often drained keys and empty zones are dropped.
const SWEEP_INTERVAL: u64 = 10 * SECOND;
/// At most one warning per zone, kind and worker in this time.
const WARN_INTERVAL: u64 = SECOND;
/// A full connection table looks for free entries at most this often.
const FULL_SWEEP_INTERVAL: u64 = SECOND;

thread_local! {
    /// This worker's zones.
    static ZONES: RefCell<Zones> = RefCell::new(Zones::new(MAX_KEYS));
}

/// Applies `limits` to a request from `ip` on the current worker's zones. `Ok` holds
/// the connection slot to keep until the response ends (with `limit-connections`);
/// `Err` is the status to answer. `location` names the location in logs.
pub fn check(
    limits: &RateLimits,
    ip: IpAddr,
    location: &str,
) -> Result<Option<ConnectionGuard>, StatusCode> {
    if limits
        .allowlist
        .as_ref()
        .is_some_and(|set| set.contains(ip))
    {
        return Ok(None);
    }
    ZONES
        .try_with(|zones| match zones.try_borrow_mut() {
            Ok(mut zones) => {
                let now = zones.now();
                zones.check(limits, ip, now, location)
            }
            // Unreachable (no re-entry); fail closed rather than panic.
            Err(_) => Err(limits.request_status),
        })
        // The thread is exiting.
        .unwrap_or(Err(limits.request_status))
}

/// A `limit_req` rate in the bucket's units: a request weighs `period`, the bucket
/// drains `limit` per nanosecond, and holds at most `ceiling` (`burst × period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    limit: u64,
    period: u64,
    ceiling: u64,
}

impl Rate {
    /// The rate of a compiled `limit-rps` / `limit-rpm`.
    pub fn new(rate: RequestRate) -> Rate {
        let period = rate.period_nanos.max(1);
        Rate {
            limit: u64::from(rate.limit),
            period,
            ceiling: u64::from(rate.burst).saturating_mul(period),
        }
    }

    /// What the bucket drained in `elapsed` nanoseconds.
    fn drained(self, elapsed: u64) -> u64 {
        self.limit.saturating_mul(elapsed)
    }
}

/// One client's state in a `limit_req` zone: nginx's `excess` and `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// How far ahead of the rate the client is, in [`Rate`] units.
    excess: u64,
    /// When its last request passed (nanoseconds on the zone's clock).
    last: u64,
}

impl Bucket {
    /// The state of a client seen for the first time, admitted at `now`.
    pub fn new(now: u64) -> Bucket {
        Bucket {
            excess: 0,
            last: now,
        }
    }

    /// The bucket after admitting one more request at `now`, or `None` when that
    /// request is over the burst (and must be rejected, the bucket unchanged).
    pub fn admit(self, rate: Rate, now: u64) -> Option<Bucket> {
        let excess = self
            .excess
            .saturating_add(rate.period)
            .saturating_sub(rate.drained(now.saturating_sub(self.last)));
        (excess <= rate.ceiling).then_some(Bucket { excess, last: now })
    }

    /// True when the bucket behaves exactly as a new one at `now` (it can be dropped).
    pub fn is_idle(self, rate: Rate, now: u64) -> bool {
        self.excess.saturating_add(rate.period) <= rate.drained(now.saturating_sub(self.last))
    }
}

/// Holds one `limit-connections` slot of a client; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<AtomicU32>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// One worker's zones, by [`RateLimits::zone`].
#[derive(Debug)]
pub struct Zones {
    epoch: Instant,
    max_keys: usize,
    zones: HashMap<u64, Zone>,
    next_sweep: u64,
}

/// One zone's tables on one worker.
#[derive(Debug, Default)]
struct Zone {
    rps: Buckets,
    rpm: Buckets,
    connections: Connections,
    request_warning: Warning,
    connection_warning: Warning,
}

impl Zone {
    fn is_empty(&self) -> bool {
        self.rps.map.is_empty() && self.rpm.map.is_empty() && self.connections.map.is_empty()
    }
}

/// The leaky buckets of one `limit_req` zone.
#[derive(Debug, Default)]
struct Buckets {
    /// The rate last applied, for the sweep's idle test.
    rate: Option<Rate>,
    map: HashMap<u128, Bucket>,
}

/// What one `limit_req` zone says about a request: `Ok(None)` when the zone does not
/// apply, `Ok(Some(..))` the state to store if every zone admits, `Err` over the limit.
type Candidate = Result<Option<(Rate, Bucket)>, ()>;

impl Buckets {
    fn candidate(&self, rate: Option<RequestRate>, key: u128, now: u64) -> Candidate {
        let Some(rate) = rate.map(Rate::new) else {
            return Ok(None);
        };
        let next = match self.map.get(&key) {
            Some(bucket) => bucket.admit(rate, now),
            None => Some(Bucket::new(now)),
        };
        next.map(|bucket| Some((rate, bucket))).ok_or(())
    }

    fn commit(&mut self, candidate: Option<(Rate, Bucket)>, key: u128, now: u64, max: usize) {
        let Some((rate, bucket)) = candidate else {
            return;
        };
        self.rate = Some(rate);
        if let Some(slot) = self.map.get_mut(&key) {
            *slot = bucket;
            return;
        }
        if self.map.len() >= max {
            self.make_room(rate, now, max);
        }
        self.map.insert(key, bucket);
    }

    /// Drops the drained keys, then, if the table is still over three quarters
    /// full, the least recently admitted ones down to three quarters (so each full
    /// pass frees at least a quarter: amortised constant time per insert). `max` is at
    /// least 1.
    fn make_room(&mut self, rate: Rate, now: u64, max: usize) {
        self.map.retain(|_, b| !b.is_idle(rate, now));
        let target = (max - max / 4).min(max - 1);
        if self.map.len() <= target {
            return;
        }
        let mut lasts: Vec<u64> = self.map.values().map(|b| b.last).collect();
        let remove = lasts.len() - target;
        // The `remove`-th oldest time: everything at or before it goes.
        let (_, threshold, _) = lasts.select_nth_unstable(remove - 1);
        let threshold = *threshold;
        self.map.retain(|_, b| b.last > threshold);
    }

    fn sweep(&mut self, now: u64) {
        if let Some(rate) = self.rate {
            self.map.retain(|_, b| !b.is_idle(rate, now));
        }
        shrink(&mut self.map);
    }
}

/// The requests in flight per key of one `limit_conn` zone.
#[derive(Debug, Default)]
struct Connections {
    map: HashMap<u128, Arc<AtomicU32>>,
    next_full_sweep: u64,
}

impl Connections {
    fn acquire(&mut self, limit: u32, key: u128, now: u64, max: usize) -> Option<ConnectionGuard> {
        if let Some(count) = self.map.get(&key) {
            // Only this worker increments: no increment can slip in between.
            if count.load(Ordering::Acquire) >= limit {
                return None;
            }
            count.fetch_add(1, Ordering::AcqRel);
            return Some(ConnectionGuard(count.clone()));
        }
        if self.map.len() >= max {
            if now >= self.next_full_sweep {
                self.map
                    .retain(|_, count| count.load(Ordering::Acquire) > 0);
                self.next_full_sweep = now.saturating_add(FULL_SWEEP_INTERVAL);
            }
            if self.map.len() >= max {
                return None;
            }
        }
        let count = Arc::new(AtomicU32::new(1));
        self.map.insert(key, count.clone());
        Some(ConnectionGuard(count))
    }

    fn sweep(&mut self) {
        self.map
            .retain(|_, count| count.load(Ordering::Acquire) > 0);
        shrink(&mut self.map);
    }
}

/// Gives memory back once a table has shrunk well below its capacity.
fn shrink<V>(map: &mut HashMap<u128, V>) {
    if map.capacity() > 4 * map.len().max(64) {
        map.shrink_to_fit();
    }
}

/// Rate-limits the rejection warnings of one zone.
#[derive(Debug, Default)]
struct Warning {
    next: u64,
    suppressed: u64,
}

impl Warning {
    /// `Some(rejections not logged since the last line)` when a line is due now.
    fn due(&mut self, now: u64) -> Option<u64> {
        if now < self.next {
            self.suppressed += 1;
            return None;
        }
        self.next = now.saturating_add(WARN_INTERVAL);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The zone key of a client address: IPv4 and IPv4-mapped IPv6 are the same client.
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Zones {
    /// Empty zones whose tables hold at most `max_keys` addresses each.
    pub fn new(max_keys: usize) -> Zones {
        Zones {
            epoch: Instant::now(),
            max_keys: max_keys.max(1),
            zones: HashMap::new(),
            next_sweep: SWEEP_INTERVAL,
        }
    }

    /// Nanoseconds since these zones were created (their clock).
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// [`check`] at `now` on these zones.
    pub fn check(
        &mut self,
        limits: &RateLimits,
        ip: IpAddr,
        now: u64,
        location: &str,
    ) -> Result<Option<ConnectionGuard>, StatusCode> {
        if now >= self.next_sweep {
            self.sweep(now);
        }
        let max = self.max_keys;
        let zone = self.zones.entry(limits.zone).or_default();
        let key = key(ip);

        let rps = zone.rps.candidate(limits.rps, key, now);
        let rpm = zone.rpm.candidate(limits.rpm, key, now);
        match (rps, rpm) {
            (Ok(rps), Ok(rpm)) => {
                zone.rps.commit(rps, key, now, max);
                zone.rpm.commit(rpm, key, now, max);
            }
            _ => {
                if let Some(suppressed) = zone.request_warning.due(now) {
                    tracing::warn!(%location, zone = %limits.zone_name, client = %ip, status = limits.request_status.as_u16(), suppressed, "limiting requests (limit-rps/limit-rpm)");
                }
                return Err(limits.request_status);
            }
        }

        let Some(limit) = limits.connections else {
            return Ok(None);
        };
        match zone.connections.acquire(limit, key, now, max) {
            Some(guard) => Ok(Some(guard)),
            None => {
                if let Some(suppressed) = zone.connection_warning.due(now) {
                    tracing::warn!(%location, zone = %limits.zone_name, client = %ip, status = limits.connection_status.as_u16(), suppressed, "limiting connections (limit-connections)");
                }
                Err(limits.connection_status)
            }
        }
    }

    /// Drops drained keys, freed connection slots and empty zones.
    fn sweep(&mut self, now: u64) {
        for zone in self.zones.values_mut() {
            zone.rps.sweep(now);
            zone.rpm.sweep(now);
            zone.connections.sweep();
        }
        self.zones.retain(|_, zone| !zone.is_empty());
        self.next_sweep = now.saturating_add(SWEEP_INTERVAL);
    }

    /// Keys held by the zone `zone` (all tables), for tests.
    #[cfg(test)]
    fn keys(&self, zone: u64) -> usize {
        self.zones.get(&zone).map_or(0, |z| {
            z.rps.map.len() + z.rpm.map.len() + z.connections.map.len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_store::policy::CidrSet;
    use proptest::prelude::*;

    const MINUTE: u64 = 60 * SECOND;
    const MS: u64 = 1_000_000;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn rate(limit: u32, period_nanos: u64, burst: u32) -> RequestRate {
        RequestRate {
            limit,
            period_nanos,
            burst,
        }
    }

    fn limits(rps: Option<RequestRate>, rpm: Option<RequestRate>, conn: Option<u32>) -> RateLimits {
        RateLimits {
            zone: 7,
            zone_name: "ns/web".into(),
            rps,
            rpm,
            connections: conn,
            allowlist: None,
            request_status: StatusCode::TOO_MANY_REQUESTS,
            connection_status: StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Admissions of requests from one client at `times` (nanoseconds).
    fn pattern(zones: &mut Zones, l: &RateLimits, client: &str, times: &[u64]) -> String {
        times
            .iter()
            .map(|&t| match zones.check(l, ip(client), t, "t") {
                Ok(_) => 'Y',
                Err(status) => {
                    assert_eq!(status, l.request_status);
                    'n'
                }
            })
            .collect()
    }

    #[test]
    fn nodelay_bursts_pass_burst_plus_one_then_the_rate() {
        // limit-rps 1, multiplier 2: burst 2, so 3 requests pass at once.
        let l = limits(Some(rate(1, SECOND, 2)), None, None);
        let mut z = Zones::new(MAX_KEYS);
        assert_eq!(pattern(&mut z, &l, "192.0.2.1", &[0; 10]), "YYYnnnnnnn");
        // Rejections cost nothing; half a second drains half a request: still full.
        assert_eq!(pattern(&mut z, &l, "192.0.2.1", &[500 * MS]), "n");
        // One second after the last admitted request: exactly one more.
        assert_eq!(
            pattern(&mut z, &l, "192.0.2.1", &[SECOND, SECOND, 2 * SECOND - 1]),
            "Ynn"
        );
        // 1.5 s later: 1.5 requests drained, one passes (excess 1.5 after it), then
        // the next needs the remaining half second.
        let t = SECOND + 1500 * MS;
        assert_eq!(
            pattern(&mut z, &l, "192.0.2.1", &[t, t, t + 499 * MS, t + 500 * MS]),
            "YnnY"
        );
        // Idle for (burst + 1) / rate: a full burst again.
        let t = t + 500 * MS + 3 * SECOND;
        assert_eq!(pattern(&mut z, &l, "192.0.2.1", &[t; 4]), "YYYn");
        // Other clients have their own buckets; IPv4-mapped IPv6 is the same client.
        assert_eq!(pattern(&mut z, &l, "192.0.2.2", &[t; 4]), "YYYn");
        assert_eq!(pattern(&mut z, &l, "::ffff:192.0.2.2", &[t]), "n");
        assert_eq!(pattern(&mut z, &l, "2001:db8::2", &[t; 2]), "YY");

        // burst 0 (not reachable through annotations, the multiplier is at least 1):
        // one request, then one per period.
        let l = limits(None, Some(rate(2, MINUTE, 0)), None);
        let mut z = Zones::new(MAX_KEYS);
        assert_eq!(
            pattern(
                &mut z,
                &l,
                "192.0.2.1",
                &[0, 0, 29 * SECOND, 30 * SECOND, 30 * SECOND, 60 * SECOND]
            ),
            "YnnYnY"
        );
    }

    #[test]
    fn rps_and_rpm_both_apply_and_account_together() {
        // rps 1 burst 1 (2 at once), rpm 1 burst 0 (1 a minute).
        let l = limits(Some(rate(1, SECOND, 1)), Some(rate(1, MINUTE, 0)), None);
        let mut z = Zones::new(MAX_KEYS);
        assert_eq!(pattern(&mut z, &l, "192.0.2.1", &[0, 0, 0]), "Ynn");
        // The requests the rpm zone refused were not accounted in the rps zone.
        let key = key(ip("192.0.2.1"));
        assert_eq!(z.zones[&7].rps.map[&key].excess, 0);
        assert_eq!(
            pattern(&mut z, &l, "192.0.2.1", &[59 * SECOND, 60 * SECOND]),
            "nY"
        );
    }

    #[test]
    fn connections_count_requests_in_flight() {
        let l = limits(None, None, Some(2));
        let mut z = Zones::new(MAX_KEYS);
        let a = ip("192.0.2.1");
        let first = z.check(&l, a, 0, "t").unwrap().unwrap();
        let second = z.check(&l, a, 1, "t").unwrap().unwrap();
        assert_eq!(
            z.check(&l, a, 2, "t").unwrap_err(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // Another client has its own count.
        assert!(z.check(&l, ip("192.0.2.9"), 3, "t").unwrap().is_some());
        // A finished request frees its slot, on whatever thread it is dropped.
        drop(first);
        let third = z.check(&l, a, 4, "t").unwrap().unwrap();
        std::thread::spawn(move || drop(second)).join().unwrap();
        let fourth = z.check(&l, a, 5, "t").unwrap().unwrap();
        assert!(z.check(&l, a, 6, "t").is_err());
        drop((third, fourth));

        // A request over the rate takes no slot; one over the connections still
        // counts against the rate (nginx runs limit_req before limit_conn).
        let l = limits(Some(rate(1, MINUTE, 1)), None, Some(1));
        let mut z = Zones::new(MAX_KEYS);
        let held = z.check(&l, a, 0, "t").unwrap();
        assert_eq!(
            z.check(&l, a, 0, "t").unwrap_err(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        drop(held);
        assert_eq!(
            z.check(&l, a, 0, "t").unwrap_err(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn allowlisted_addresses_are_never_limited() {
        let mut l = limits(None, Some(rate(1, MINUTE, 0)), Some(1));
        l.zone = 0xa11;
        l.allowlist = Some(CidrSet::parse(&["127.0.0.0/8", "2001:db8::/32"]).unwrap());
        let mut held = Vec::new();
        for _ in 0..50 {
            for client in ["127.0.0.1", "::ffff:127.0.0.2", "2001:db8::1"] {
                assert!(check(&l, ip(client), "t").unwrap().is_none());
            }
        }
        held.push(check(&l, ip("192.0.2.1"), "t").unwrap());
        assert_eq!(
            check(&l, ip("192.0.2.1"), "t").unwrap_err(),
            StatusCode::TOO_MANY_REQUESTS
        );
        // Nothing was stored for the allowlisted clients.
        ZONES.with_borrow(|z| assert_eq!(z.keys(0xa11), 2, "rpm and connection of one client"));
    }

    #[test]
    fn rate_tables_are_bounded_and_evict_drained_then_oldest_keys() {
        let l = limits(Some(rate(1, SECOND, 0)), None, None);
        let mut z = Zones::new(4);
        for (i, client) in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
            .iter()
            .enumerate()
        {
            assert_eq!(pattern(&mut z, &l, client, &[i as u64 + 1]), "Y");
        }
        assert_eq!(z.keys(7), 4);
        // Full, nothing drained: the oldest key goes (down to three quarters), and the
        // newcomer is tracked.
        assert_eq!(pattern(&mut z, &l, "10.0.0.5", &[5, 6]), "Yn");
        assert_eq!(z.keys(7), 4);
        assert_eq!(pattern(&mut z, &l, "10.0.0.2", &[7]), "n", "still tracked");
        assert_eq!(pattern(&mut z, &l, "10.0.0.1", &[8]), "Y", "forgotten");
        // Two seconds later everything drained: a newcomer clears them all.
        assert_eq!(pattern(&mut z, &l, "10.0.0.9", &[2 * SECOND + 8]), "Y");
        assert_eq!(z.keys(7), 1);

        // Many distinct clients at once never exceed the bound.
        let l = limits(Some(rate(1, MINUTE, 5)), Some(rate(1, MINUTE, 5)), None);
        let mut z = Zones::new(100);
        for i in 0..5000u32 {
            let client = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(z.check(&l, client, u64::from(i), "t").is_ok());
            assert!(z.keys(7) <= 200, "{}", z.keys(7));
            // The newest client is always tracked: its second request is accounted.
            let b = z.zones[&7].rps.map[&key(client)];
            assert_eq!(b.last, u64::from(i));
        }
    }

    #[test]
    fn connection_tables_are_bounded() {
        let l = limits(None, None, Some(1));
        let mut z = Zones::new(4);
        let guards: Vec<_> = (1..=4)
            .map(|i| {
                z.check(&l, ip(&format!("10.0.0.{i}")), 0, "t")
                    .unwrap()
                    .unwrap()
            })
            .collect();
        // Full of requests in flight: a new address is refused, as nginx does when
        // its zone is full.
        assert!(z.check(&l, ip("10.0.0.5"), 0, "t").is_err());
        drop(guards);
        // Freed slots are found again (at most once a second while full).
        assert!(z.check(&l, ip("10.0.0.5"), 1, "t").is_err());
        assert!(z.check(&l, ip("10.0.0.5"), SECOND, "t").is_ok());
        assert_eq!(z.keys(7), 1);
    }

    #[test]
    fn sweeps_drop_drained_keys_and_empty_zones() {
        let rps = limits(Some(rate(1, SECOND, 5)), None, None);
        let mut conn = limits(None, None, Some(1));
        conn.zone = 8;
        let mut z = Zones::new(MAX_KEYS);
        assert!(z.check(&rps, ip("10.0.0.1"), 0, "t").is_ok());
        let held = z.check(&conn, ip("10.0.0.1"), 0, "t").unwrap();
        let mut other = limits(None, Some(rate(1, MINUTE, 0)), None);
        other.zone = 9;
        // The first sweep comes 10 s in: the rps key drained long ago (6 s), the
        // connection is still in flight.
        assert!(z.check(&other, ip("10.0.0.1"), SWEEP_INTERVAL, "t").is_ok());
        assert!(!z.zones.contains_key(&7));
        assert_eq!(z.keys(8), 1);
        assert_eq!(z.keys(9), 1);
        drop(held);
        // The rpm key needs 60 s to drain.
        assert!(
            z.check(&other, ip("10.0.0.2"), 2 * SWEEP_INTERVAL, "t")
                .is_ok()
        );
        assert!(!z.zones.contains_key(&8));
        assert_eq!(z.keys(9), 2);
        assert!(z.check(&rps, ip("10.0.0.3"), 80 * SECOND, "t").is_ok());
        assert_eq!(z.keys(9), 0);
        assert_eq!(z.zones.len(), 1);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let mut w = Warning::default();
        assert_eq!(w.due(0), Some(0));
        assert_eq!(w.due(1), None);
        assert_eq!(w.due(SECOND - 1), None);
        assert_eq!(w.due(SECOND), Some(2));
        assert_eq!(w.due(SECOND + 1), None);
    }

    /// nginx's `ngx_http_limit_req_lookup` for `r/s` rates, in its own units
    /// (milli-requests, milliseconds): the admissions of requests at `times_ms`.
    fn nginx_rps(limit: i64, burst: i64, times_ms: &[i64]) -> Vec<bool> {
        let rate = limit * 1000;
        let mut node: Option<(i64, i64)> = None; // (excess, last)
        times_ms
            .iter()
            .map(|&now| match node {
                None => {
                    node = Some((0, now));
                    true
                }
                Some((excess, last)) => {
                    let ms = now - last;
                    let excess = (excess - rate * ms / 1000 + 1000).max(0);
                    if excess > burst * 1000 {
                        return false;
                    }
                    node = Some((excess, if ms != 0 { now } else { last }));
                    true
                }
            })
            .collect()
    }

    proptest! {
        /// Over any span between two admitted requests, at most
        /// `burst + 1 + rate × span` requests pass.
        #[test]
        fn never_more_than_burst_plus_rate_times_elapsed(
            limit in 1u32..50,
            burst in 0u32..20,
            per_minute in any::<bool>(),
            gaps in proptest::collection::vec(0u64..400_000_000, 1..200),
        ) {
            let period = if per_minute { MINUTE } else { SECOND };
            let r = Rate::new(rate(limit, period, burst));
            let mut bucket: Option<Bucket> = None;
            let mut now = 0u64;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += gap;
                let next = match bucket {
                    None => Some(Bucket::new(now)),
                    Some(b) => b.admit(r, now),
                };
                if let Some(next) = next {
                    bucket = Some(next);
                    admitted.push(now);
                }
            }
            for i in 0..admitted.len() {
                for j in i..admitted.len() {
                    let n = (j - i + 1) as u128;
                    let span = u128::from(admitted[j] - admitted[i]);
                    // n ≤ burst + 1 + limit × span / period, in integers.
                    prop_assert!(
                        n.saturating_sub(1 + u128::from(burst)) * u128::from(period)
                            <= u128::from(limit) * span,
                        "{n} requests in {span} ns"
                    );
                }
            }
        }

        /// A bucket the sweep calls idle behaves exactly as a new one.
        #[test]
        fn idle_buckets_are_new_buckets(
            limit in 1u32..50,
            burst in 0u32..20,
            excess_requests in 0u64..20,
            elapsed in 0u64..30_000_000_000,
        ) {
            let r = Rate::new(rate(limit, SECOND, burst));
            let b = Bucket { excess: excess_requests.min(u64::from(burst)) * SECOND, last: 0 };
            if b.is_idle(r, elapsed) {
                prop_assert_eq!(b.admit(r, elapsed), Some(Bucket::new(elapsed)));
            } else {
                prop_assert_ne!(b.admit(r, elapsed), Some(Bucket::new(elapsed)));
            }
        }

        /// For `r/s` rates at whole milliseconds, the same decisions as nginx.
        #[test]
        fn same_decisions_as_nginx_for_rps(
            limit in 1u32..20,
            burst in 0u32..10,
            gaps in proptest::collection::vec(0i64..700, 1..100),
        ) {
            let mut t = 0;
            let times: Vec<i64> = gaps.iter().map(|g| { t += g; t }).collect();
            let expected = nginx_rps(i64::from(limit), i64::from(burst), &times);
            let l = limits(Some(rate(limit, SECOND, burst)), None, None);
            let mut z = Zones::new(MAX_KEYS);
            let ours: Vec<bool> = times
                .iter()
                .map(|&ms| z.check(&l, ip("192.0.2.1"), ms as u64 * MS, "t").is_ok())
                .collect();
            prop_assert_eq!(ours, expected);
        }
    }
}
