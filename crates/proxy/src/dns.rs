//! Resolution of ExternalName endpoints, cached.
//!
//! ingress-nginx re-resolves ExternalName backends every second with its own DNS
//! client and caches answers for their TTL. Gangplank resolves through the system
//! resolver (`getaddrinfo`, which honours `/etc/resolv.conf` search domains and
//! ndots, as Kubernetes pods need) and caches each answer for [`TTL`]; a failed
//! lookup is cached for [`NEGATIVE_TTL`] so a dead name cannot trigger a lookup per
//! request. Answers rotate so that several addresses share the traffic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a successful answer is used.
pub const TTL: Duration = Duration::from_secs(30);
/// How long a failed lookup is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Answer {
    addrs: Vec<SocketAddr>,
    at: Instant,
}

/// A process-wide cache of name lookups.
#[derive(Debug, Default)]
pub struct Resolver {
    cache: Mutex<HashMap<(String, u16), Answer>>,
    rotation: AtomicUsize,
}

impl Resolver {
    /// One address for `host:port`, from the cache when fresh.
    pub async fn resolve(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let key = (host.to_owned(), port);
        if let Some(addr) = self.cached(&key) {
            return addr;
        }
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
            Ok(found) => found.collect(),
            Err(e) => {
                tracing::warn!(host, error = %e, "could not resolve an ExternalName endpoint");
                Vec::new()
            }
        };
        let pick = self.pick(&addrs);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
            key,
            Answer {
                addrs,
                at: Instant::now(),
            },
        );
        pick
    }

    /// `Some(answer)` when the cache has a fresh entry (the answer may be "no address").
    fn cached(&self, key: &(String, u16)) -> Option<Option<SocketAddr>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let answer = cache.get(key)?;
        let ttl = if answer.addrs.is_empty() {
            NEGATIVE_TTL
        } else {
            TTL
        };
        (answer.at.elapsed() < ttl).then(|| self.pick(&answer.addrs))
    }

    fn pick(&self, addrs: &[SocketAddr]) -> Option<SocketAddr> {
        if addrs.is_empty() {
            return None;
        }
        let i = self.rotation.fetch_add(1, Ordering::Relaxed) % addrs.len();
        Some(addrs[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_and_caches_localhost() {
        let r = Resolver::default();
        let a = r.resolve("localhost", 8080).await.unwrap();
        assert!(a.ip().is_loopback());
        assert_eq!(a.port(), 8080);
        assert!(r.cached(&("localhost".into(), 8080)).is_some());
        assert!(r.resolve("name.invalid", 80).await.is_none());
        assert_eq!(r.cached(&("name.invalid".into(), 80)), Some(None));
    }
}
