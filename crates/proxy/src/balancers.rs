//! The balancer of every backend of the current snapshot, shared by all workers.
//!
//! Rebuilt once per snapshot version, like ingress-nginx's `sync_backends`: a backend
//! whose compiled instance did not change keeps its balancer (same `Arc`); a backend
//! whose endpoints and algorithm did not change keeps its balancer too (policy changes
//! only); anything else gets a new balancer built with the previous one in hand (EWMA
//! seeds new endpoints from it). Backends that disappeared lose their balancer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use gangplank_store::{CompiledBackend, Snapshot};

use crate::balancer::{self, Balancer, canary::CanaryPolicy};

/// A backend with its balancer and compiled canary policy.
#[derive(Debug)]
pub struct Entry {
    /// The compiled backend.
    pub backend: Arc<CompiledBackend>,
    /// Its balancer.
    pub balancer: Arc<dyn Balancer>,
    /// Its canary policy (meaningful when it is an alternative backend).
    pub canary: CanaryPolicy,
}

/// Balancers of one snapshot version.
#[derive(Debug, Default)]
pub struct BalancerTable {
    version: u64,
    by_name: HashMap<String, Arc<Entry>, foldhash::fast::RandomState>,
}

impl BalancerTable {
    /// The snapshot version this table was built for.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The entry of backend `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Entry>> {
        self.by_name.get(name)
    }
}

/// The current [`BalancerTable`], rebuilt when the snapshot version moves.
#[derive(Debug, Default)]
pub struct Balancers {
    current: ArcSwap<BalancerTable>,
    rebuild: Mutex<()>,
}

impl Balancers {
    /// The table for `snapshot`, rebuilt first if it is older than the snapshot. Only
    /// the first request after a change pays for the rebuild; the others wait on the
    /// lock for that long, then share the result. The table may be *newer* than the
    /// snapshot (another worker already saw the next change): callers then load the
    /// snapshot again (see [`BalancerTable::version`]).
    pub fn for_snapshot(&self, snapshot: &Snapshot) -> Arc<BalancerTable> {
        // Version 0 is the empty configuration, which the empty default table serves.
        let table = self.current.load_full();
        if table.version >= snapshot.version {
            return table;
        }
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let table = self.current.load_full();
        if table.version >= snapshot.version {
            return table;
        }
        let rebuilt = Arc::new(rebuild(&table, snapshot));
        self.current.store(rebuilt.clone());
        rebuilt
    }
}

fn rebuild(previous: &BalancerTable, snapshot: &Snapshot) -> BalancerTable {
    let by_name = snapshot
        .backends
        .iter()
        .map(|backend| {
            let name = backend.name().to_owned();
            let entry = match previous.by_name.get(&name) {
                Some(old) if Arc::ptr_eq(&old.backend, backend) => old.clone(),
                Some(old)
                    if old.backend.upstreams == backend.upstreams
                        && old.balancer.algorithm() == backend.balancer
                        && old.backend.source.session_affinity_config
                            == backend.source.session_affinity_config
                        && old.backend.source.upstream_hash_by_config
                            == backend.source.upstream_hash_by_config =>
                {
                    Arc::new(Entry {
                        backend: backend.clone(),
                        balancer: old.balancer.clone(),
                        canary: CanaryPolicy::compile(&backend.source),
                    })
                }
                old => {
                    if let Some(old) = old.filter(|o| o.balancer.algorithm() != backend.balancer) {
                        tracing::info!(
                            backend = %name,
                            "LB algorithm changed from {} to {}, resetting the instance",
                            old.balancer.algorithm().as_str(),
                            backend.balancer.as_str()
                        );
                    }
                    Arc::new(Entry {
                        backend: backend.clone(),
                        balancer: balancer::build(backend, old.map(|o| &o.balancer)),
                        canary: CanaryPolicy::compile(&backend.source),
                    })
                }
            };
            (name, entry)
        })
        .collect();
    BalancerTable {
        version: snapshot.version,
        by_name,
    }
}
