//! Request rate and connection limits: `limit-rps`, `limit-rpm`, `limit-connections`,
//! `limit-burst-multiplier`, `limit-allowlist` (alias `limit-whitelist`) and the
//! ConfigMap's `limit-req-status-code` / `limit-conn-status-code`, compiled into the
//! parameters the proxy's per-worker zones use (`gangplank_proxy::policy::limit`, which
//! documents the algorithm and how limits combine across workers).
//!
//! ingress-nginx renders, per Ingress, `limit_req zone=<ns>_<name>_<uid>_rps
//! burst=<rps × multiplier> nodelay;` (and `_rpm`, and `limit_conn <zone>_conn <n>;`)
//! with `$binary_remote_addr` as the key, mapped to the empty key (never limited) for
//! addresses of `limit-allowlist`. Zones are named per Ingress, so every location of
//! one Ingress shares them: [`RateLimits::zone`] identifies the Ingress (or, for a
//! location that comes from none, its host and path).

use std::hash::{DefaultHasher, Hash, Hasher};

use gangplank_model::{GeneralConfig, Location, Server};
use http::StatusCode;

use super::CidrSet;

/// Nanoseconds in a second: the period of `limit-rps`.
const SECOND: u64 = 1_000_000_000;
/// Nanoseconds in a minute: the period of `limit-rpm`.
const MINUTE: u64 = 60 * SECOND;

/// One `limit_req` zone's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    /// Requests per period.
    pub limit: u32,
    /// The period in nanoseconds: one second (`limit-rps`) or one minute (`limit-rpm`).
    pub period_nanos: u64,
    /// nginx's `burst`: `limit × limit-burst-multiplier`. With `nodelay`, `burst + 1`
    /// requests pass at once from an idle client.
    pub burst: u32,
}

/// A location's request rate and connection limits, ready for requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Identity of the zones (ingress-nginx names them per Ingress): a 64-bit hash of
    /// the Ingress's namespace and name, or of the location's host and path when it
    /// comes from no Ingress. Stable across configuration changes, so a client's state
    /// survives them (nginx keeps shared zones across reloads too).
    pub zone: u64,
    /// The zone's name for logs: `namespace/name`, or `host/path`.
    pub zone_name: String,
    /// `limit-rps`.
    pub rps: Option<RequestRate>,
    /// `limit-rpm`.
    pub rpm: Option<RequestRate>,
    /// `limit-connections`: requests in flight per client address.
    pub connections: Option<u32>,
    /// `limit-allowlist`: client addresses never limited.
    pub allowlist: Option<CidrSet>,
    /// `limit-req-status-code` (503 by default): the answer over a rate limit.
    pub request_status: StatusCode,
    /// `limit-conn-status-code` (503 by default): the answer over the connection limit.
    pub connection_status: StatusCode,
}

impl RateLimits {
    /// The limits of `location` of `server`; `None` when it has none.
    pub fn compile(
        location: &Location,
        server: &Server,
        general: &GeneralConfig,
    ) -> Result<Option<RateLimits>, String> {
        let limit = &location.rate_limit;
        if !limit.is_enabled() {
            return Ok(None);
        }
        let rate = |per_period: u32, period_nanos: u64| {
            (per_period > 0).then(|| RequestRate {
                limit: per_period,
                period_nanos,
                burst: per_period.saturating_mul(limit.burst_multiplier),
            })
        };
        let allowlist = if limit.allowlist.is_empty() {
            None
        } else {
            Some(CidrSet::parse(&limit.allowlist).map_err(|e| format!("limit-allowlist: {e}"))?)
        };
        let mut hasher = DefaultHasher::new();
        let zone_name = match &location.ingress {
            Some(ingress) => {
                ("ingress", &ingress.namespace, &ingress.name).hash(&mut hasher);
                format!("{}/{}", ingress.namespace, ingress.name)
            }
            None => {
                ("location", &server.hostname, &location.path).hash(&mut hasher);
                format!("{}{}", server.hostname, location.path)
            }
        };
        let status = |code: u16| {
            StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
        };
        Ok(Some(RateLimits {
            zone: hasher.finish(),
            zone_name,
            rps: rate(limit.rps, SECOND),
            rpm: rate(limit.rpm, MINUTE),
            connections: (limit.connections > 0).then_some(limit.connections),
            allowlist,
            request_status: status(general.limit_req_status_code()),
            connection_status: status(general.limit_conn_status_code()),
        }))
    }
}
