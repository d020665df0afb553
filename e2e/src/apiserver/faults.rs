//! Fault injection: what a test can do to the stand-in to exercise a client's error
//! handling (watch restarts, relists after 410, retries, slow servers).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::Shared;

/// The fault switches, shared by every request.
#[derive(Debug)]
pub(crate) struct FaultState {
    latency_micros: AtomicU64,
    error_rate_bits: AtomicU64,
    fail_next: AtomicU32,
    /// Bumped to end every open watch.
    pub(crate) drop_watches: watch::Sender<u64>,
}

impl FaultState {
    pub(crate) fn new() -> FaultState {
        FaultState {
            latency_micros: AtomicU64::new(0),
            error_rate_bits: AtomicU64::new(0f64.to_bits()),
            fail_next: AtomicU32::new(0),
            drop_watches: watch::channel(0).0,
        }
    }

    /// The delay before answering any request.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::Relaxed))
    }

    /// Whether this resource request fails with an injected 500.
    pub(crate) fn should_fail(&self) -> bool {
        let took_one = self
            .fail_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if took_one {
            return true;
        }
        let rate = f64::from_bits(self.error_rate_bits.load(Ordering::Relaxed));
        rate > 0.0 && fastrand::f64() < rate
    }
}

/// The handle on a running [`ApiServer`](super::ApiServer)'s faults. Faults apply to
/// requests on resources (`/api/v1/...`, `/apis/...` below a version); discovery and
/// `/version` are never failed, only delayed.
#[derive(Debug, Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl Faults {
    /// Ends every open watch stream now (a clean end of the chunked response, as when
    /// the real server restarts or times a watch out). Clients re-watch from their
    /// last resourceVersion.
    pub fn drop_watches(&self) {
        self.shared.faults.drop_watches.send_modify(|n| *n += 1);
    }

    /// Forgets the watch history, as an etcd compaction does: the next watch from any
    /// resourceVersion handed out so far gets a 410 Expired `ERROR` event (and a client
    /// must relist). Open watches are not touched; combine with
    /// [`drop_watches`](Faults::drop_watches) to force the relist.
    pub fn expire_resource_versions(&self) {
        self.shared.store().expire();
    }

    /// Delays every request (watches: before the stream starts) by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared
            .faults
            .latency_micros
            .store(micros, Ordering::Relaxed);
    }

    /// Fails this fraction (0.0 to 1.0) of resource requests with 500 InternalError.
    pub fn set_error_rate(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.shared
            .faults
            .error_rate_bits
            .store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Fails exactly the next `n` resource requests with 500 InternalError (on top of
    /// the error rate): deterministic, for retry tests.
    pub fn fail_next(&self, n: u32) {
        self.shared.faults.fail_next.store(n, Ordering::Relaxed);
    }

    /// Clears latency, error rate and pending failures.
    pub fn reset(&self) {
        self.set_latency(Duration::ZERO);
        self.set_error_rate(0.0);
        self.fail_next(0);
    }
}
