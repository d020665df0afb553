//! Balancers: which endpoint of a backend serves a request, with ingress-nginx's
//! algorithms and their exact semantics (Part B §3.2–3.9), plus canary routing (§3.4).
//!
//! Balancers are shared by every worker thread (state in atomics or short locks), so
//! round robin is exact across workers, and they live across snapshots: the proxy
//! rebuilds a backend's balancer only when its endpoints changed ([`build`] receives the
//! previous instance, e.g. so EWMA can seed new endpoints with the average score).
//!
//! Balancers never do I/O and never allocate per pick except for a cookie value they
//! hand back. Endpoints are referred to by index into `CompiledBackend::upstreams`.

use std::sync::Arc;
use std::time::Duration;

use gangplank_model::LoadBalance;
use gangplank_store::CompiledBackend;

pub mod canary;
pub mod chash;
pub mod ewma;
pub mod round_robin;
pub mod sticky;

/// What a balancer may look at for one pick.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickRequest<'a> {
    /// The evaluated `upstream-hash-by` value (chash, chashsubset).
    pub hash_key: Option<&'a [u8]>,
    /// The value of the backend's affinity cookie, if the request carries one
    /// (sticky balancers).
    pub affinity_cookie: Option<&'a str>,
    /// Indexes of endpoints already tried (and failed) for this request.
    pub tried: &'a [usize],
}

/// The outcome of a pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// Index into `CompiledBackend::upstreams`.
    pub endpoint: usize,
    /// For sticky balancers: the affinity cookie value to set (`<key>|<backend key>`),
    /// when a new endpoint was chosen. The proxy decides whether the location may set
    /// it and builds the `Set-Cookie` header with [`sticky::set_cookie_header`].
    pub set_cookie: Option<String>,
}

/// One backend's balancer.
pub trait Balancer: Send + Sync + std::fmt::Debug {
    /// Picks an endpoint, or `None` when the backend has no endpoint.
    fn pick(&self, request: &PickRequest<'_>) -> Option<Pick>;

    /// Reports a finished upstream exchange (EWMA's `after_balance`): connect time plus
    /// response time of the endpoint that served it.
    fn observe(&self, _endpoint: usize, _rtt: Duration) {}

    /// True when `affinity_cookie` belongs to this backend (its backend key matches):
    /// canary routing keeps affinitized users where they are.
    fn is_affinitized(&self, _affinity_cookie: Option<&str>) -> bool {
        false
    }

    /// The algorithm, for logs and for detecting algorithm changes.
    fn algorithm(&self) -> LoadBalance;

    /// Per-endpoint scores for EWMA (for tests and debugging); empty otherwise.
    fn scores(&self) -> Vec<f64> {
        Vec::new()
    }

    /// EWMA's per-endpoint statistics, one entry per endpoint keyed by its address
    /// (`ip:port`), so the instance built for the next snapshot keeps them and seeds
    /// new endpoints (see [`build`]); `None` for every other algorithm.
    fn ewma_state(&self) -> Option<Vec<ewma::EndpointEwma>> {
        None
    }
}

/// Builds the balancer for `backend`, with the implementation chosen by ingress-nginx's
/// precedence (`CompiledBackend::balancer`). `previous` is the balancer this backend had
/// in the previous snapshot (same name), if any.
pub fn build(backend: &CompiledBackend, previous: Option<&Arc<dyn Balancer>>) -> Arc<dyn Balancer> {
    match backend.balancer {
        LoadBalance::RoundRobin => Arc::new(round_robin::RoundRobin::new(backend)),
        LoadBalance::Ewma => Arc::new(ewma::Ewma::new(backend, previous.map(|p| p.as_ref()))),
        LoadBalance::Chash => Arc::new(chash::Chash::new(backend)),
        LoadBalance::Chashsubset => Arc::new(chash::ChashSubset::new(backend)),
        LoadBalance::StickyBalanced => Arc::new(sticky::Sticky::balanced(backend)),
        LoadBalance::StickyPersistent => Arc::new(sticky::Sticky::persistent(backend)),
    }
}
