//! Consistent hashing: `chash` and `chashsubset` (Part B §3.6–3.7), on the ring of
//! lua-resty-balancer `v0.05`, so a key lands on the same endpoint as under
//! ingress-nginx.
//!
//! The [`Ring`] is also the engine of sticky `balanced` mode, which hashes random
//! tokens onto it. Build a ring once per endpoint set; lookups are a binary search
//! and never allocate.
//!
//! ```
//! use gangplank_proxy::balancer::chash::Ring;
//!
//! let ring = Ring::new(["10.184.7.1:8080", "10.184.7.2:8080", "10.184.7.3:8080"]);
//! assert_eq!(ring.find(b"/alma/armud"), Some(1));
//! ```
//!
//! Do not "improve" the point scheme (more points, another hash): every deployed
//! `upstream-hash-by` user would see their keys move on migration.

use gangplank_model::LoadBalance;
use gangplank_store::CompiledBackend;

use super::{Balancer, Pick, PickRequest};

/// Points per node on the ring (lua-resty-balancer's `CONSISTENT_POINTS`, weight 1).
pub const POINTS_PER_NODE: usize = 160;

/// One point on the ring: its hash and the node (index) it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    hash: u32,
    node: u32,
}

/// A consistent-hash ring over nodes identified by byte strings (`"ip:port"`, or
/// `"set1"` … for chashsubset), with lua-resty-balancer `v0.05`'s point scheme: for
/// node id `id`, point 0 is `crc32(id ‖ LE32(0))` and point k is
/// `crc32(id ‖ LE32(point k-1))`.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    /// Sorted by hash; ties keep node order (upstream leaves them to table order).
    points: Vec<Point>,
}

impl Ring {
    /// Builds the ring; node `i` is the `i`-th id.
    pub fn new<I>(ids: I) -> Ring
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut points = Vec::new();
        for (node, id) in ids.into_iter().enumerate() {
            // Rings beyond u32::MAX nodes cannot exist in memory anyway.
            let node = u32::try_from(node).unwrap_or(u32::MAX);
            let base = crc32fast::hash(id.as_ref());
            let mut prev: u32 = 0;
            points.reserve(POINTS_PER_NODE);
            for _ in 0..POINTS_PER_NODE {
                let mut hasher = crc32fast::Hasher::new_with_initial(base);
                hasher.update(&prev.to_le_bytes());
                let hash = hasher.finalize();
                points.push(Point { hash, node });
                prev = hash;
            }
        }
        points.sort_by_key(|p| p.hash);
        Ring { points }
    }

    /// True when the ring has no node.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The position of the first point whose hash is `>= hash`, wrapping to the first
    /// point; `None` for an empty ring.
    fn position(&self, hash: u32) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let at = self.points.partition_point(|p| p.hash < hash);
        Some(if at == self.points.len() { 0 } else { at })
    }

    fn node_at(&self, position: usize) -> Option<usize> {
        self.points.get(position).map(|p| p.node as usize)
    }

    /// The node owning `hash` (the crc32 of a key).
    pub fn find_hash(&self, hash: u32) -> Option<usize> {
        self.position(hash).and_then(|at| self.node_at(at))
    }

    /// The node owning `key`: the first point with hash `>= crc32(key)`, wrapping.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        self.find_hash(crc32fast::hash(key))
    }

    /// Like [`Ring::find`], but when the owner is in `avoid`, walks on along the ring
    /// to the first point of a node not in `avoid` (nginx's `hash … consistent` does
    /// the same on retries). Returns the owner itself when every node is avoided.
    pub fn find_avoiding(&self, key: &[u8], avoid: &[usize]) -> Option<usize> {
        let start = self.position(crc32fast::hash(key))?;
        let owner = self.node_at(start)?;
        if avoid.is_empty() || !avoid.contains(&owner) {
            return Some(owner);
        }
        let len = self.points.len();
        (1..len)
            .filter_map(|step| self.node_at((start + step) % len))
            .find(|node| !avoid.contains(node))
            .or(Some(owner))
    }
}

/// `chash`: consistent hashing of the `upstream-hash-by` value onto endpoints.
#[derive(Debug)]
pub struct Chash {
    ring: Ring,
}

impl Chash {
    /// Builds the ring over the backend's endpoints (`ip:port`, IPv6 bracketed).
    pub fn new(backend: &CompiledBackend) -> Chash {
        Chash {
            ring: Ring::new(backend.upstreams.iter().map(ToString::to_string)),
        }
    }
}

impl Balancer for Chash {
    /// The key's owner on the ring; a request without a key hashes the empty string.
    ///
    /// On a retry the ring is walked on past endpoints already tried (ingress-nginx
    /// would return the failed endpoint again); the first pick is always the owner.
    fn pick(&self, request: &PickRequest<'_>) -> Option<Pick> {
        let key = request.hash_key.unwrap_or_default();
        let endpoint = self.ring.find_avoiding(key, request.tried)?;
        Some(Pick {
            endpoint,
            set_cookie: None,
        })
    }

    fn algorithm(&self) -> LoadBalance {
        LoadBalance::Chash
    }
}

/// `chashsubset`: the key picks a subset of endpoints on a ring of subset names
/// (`set1` … `setN`); a member of the subset is then chosen uniformly at random.
#[derive(Debug)]
pub struct ChashSubset {
    ring: Ring,
    /// Subset `s` is `members[s * size .. (s + 1) * size]` (endpoint indexes).
    members: Vec<usize>,
    size: usize,
    endpoints: usize,
}

impl ChashSubset {
    /// Splits the endpoints, in configured order, into subsets of
    /// `upstream-hash-by-subset-size` (default 3); the last subset is padded with
    /// endpoints from the start of the list, so every subset has exactly `size`
    /// members.
    pub fn new(backend: &CompiledBackend) -> ChashSubset {
        let size = backend.source.upstream_hash_by_config.subset_size();
        let endpoints = backend.upstreams.len();
        let sets = endpoints.div_ceil(size);
        let members: Vec<usize> = (0..sets * size).map(|i| i % endpoints.max(1)).collect();
        let ring = Ring::new((1..=sets).map(|s| format!("set{s}")));
        ChashSubset {
            ring,
            members,
            size,
            endpoints,
        }
    }

    /// The members (endpoint indexes, padding included) of the subset `key` maps to.
    pub fn subset(&self, key: &[u8]) -> Option<&[usize]> {
        let set = self.ring.find(key)?;
        self.members.get(set * self.size..(set + 1) * self.size)
    }
}

impl Balancer for ChashSubset {
    /// A uniformly random member of the key's subset. On a retry, untried members of
    /// the subset are preferred, then any untried endpoint of the backend.
    fn pick(&self, request: &PickRequest<'_>) -> Option<Pick> {
        let key = request.hash_key.unwrap_or_default();
        let subset = self.subset(key)?;
        let tried = request.tried;
        let endpoint = if tried.is_empty() {
            *subset.get(fastrand::usize(..subset.len()))?
        } else {
            let untried_in_set = subset.iter().filter(|e| !tried.contains(e)).count();
            if untried_in_set > 0 {
                let nth = fastrand::usize(..untried_in_set);
                *subset.iter().filter(|e| !tried.contains(e)).nth(nth)?
            } else {
                let untried = (0..self.endpoints).filter(|e| !tried.contains(e)).count();
                if untried > 0 {
                    let nth = fastrand::usize(..untried);
                    (0..self.endpoints)
                        .filter(|e| !tried.contains(e))
                        .nth(nth)?
                } else {
                    *subset.get(fastrand::usize(..subset.len()))?
                }
            }
        };
        Some(Pick {
            endpoint,
            set_cookie: None,
        })
    }

    fn algorithm(&self) -> LoadBalance {
        LoadBalance::Chashsubset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::{Backend, Endpoint};
    use proptest::prelude::*;

    fn backend(addresses: &[&str], subset_size: i64) -> CompiledBackend {
        let mut source = Backend {
            name: "default-echo-80".into(),
            endpoints: addresses
                .iter()
                .map(|a| Endpoint {
                    address: (*a).into(),
                    port: "8080".into(),
                })
                .collect(),
            ..Default::default()
        };
        source.upstream_hash_by_config.upstream_hash_by = "$request_uri".into();
        source.upstream_hash_by_config.upstream_hash_by_subset = subset_size > 0;
        source.upstream_hash_by_config.upstream_hash_by_subset_size = subset_size;
        CompiledBackend::compile(source)
    }

    fn pick(b: &dyn Balancer, key: &str, tried: &[usize]) -> usize {
        b.pick(&PickRequest {
            hash_key: Some(key.as_bytes()),
            affinity_cookie: None,
            tried,
        })
        .unwrap()
        .endpoint
    }

    const THREE: [&str; 3] = ["10.184.7.1", "10.184.7.2", "10.184.7.3"];

    #[test]
    fn crc32_is_the_ieee_crc_of_the_key() {
        // §3.6 [derived] table, column crc32(key).
        assert_eq!(crc32fast::hash(b"/alma/armud"), 1471730864);
        assert_eq!(crc32fast::hash(b"/"), 2043925204);
        assert_eq!(crc32fast::hash(b"/foo"), 2854739015);
        assert_eq!(crc32fast::hash(b"/bar?x=1"), 3497723028);
        assert_eq!(crc32fast::hash(b"set1"), 207578477);
        assert_eq!(crc32fast::hash(b"set2"), 2505454807);
        assert_eq!(crc32fast::hash(b"set3"), 3796960321);
    }

    #[test]
    fn points_chain_crc32_over_id_and_previous_point() {
        let ring = Ring::new(["10.184.7.1:8080"]);
        assert_eq!(ring.points.len(), POINTS_PER_NODE);
        // Recompute the chain by hand over the concatenated bytes.
        let mut expected = Vec::new();
        let mut prev = 0u32;
        for _ in 0..POINTS_PER_NODE {
            let mut bytes = b"10.184.7.1:8080".to_vec();
            bytes.extend_from_slice(&prev.to_le_bytes());
            prev = crc32fast::hash(&bytes);
            expected.push(prev);
        }
        expected.sort_unstable();
        let got: Vec<u32> = ring.points.iter().map(|p| p.hash).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn chash_vectors_of_section_3_6() {
        let b = Chash::new(&backend(&THREE, 0));
        assert_eq!(pick(&b, "/alma/armud", &[]), 1);
        assert_eq!(pick(&b, "/", &[]), 1);
        assert_eq!(pick(&b, "/foo", &[]), 1);
        assert_eq!(pick(&b, "/bar?x=1", &[]), 2);
    }

    #[test]
    fn subset_ring_vectors_of_section_3_6() {
        // The set names hashed as keys onto the three-node ring of §3.6.
        let ring = Ring::new(THREE.map(|a| format!("{a}:8080")));
        assert_eq!(ring.find(b"set1"), Some(0));
        assert_eq!(ring.find(b"set2"), Some(2));
        assert_eq!(ring.find(b"set3"), Some(0));
    }

    #[test]
    fn lookup_wraps_past_the_last_point() {
        let ring = Ring::new(["a", "b"]);
        let last = ring.points.last().unwrap();
        let first = ring.points[0];
        if last.hash < u32::MAX {
            assert_eq!(ring.find_hash(last.hash + 1), Some(first.node as usize));
        }
        assert_eq!(ring.find_hash(0), Some(first.node as usize));
        assert_eq!(ring.find_hash(last.hash), Some(last.node as usize));
    }

    #[test]
    fn missing_key_hashes_the_empty_string() {
        let b = Chash::new(&backend(&THREE, 0));
        let none = b.pick(&PickRequest::default()).unwrap().endpoint;
        assert_eq!(none, pick(&b, "", &[]));
    }

    #[test]
    fn chash_retry_walks_the_ring_past_tried_endpoints() {
        let b = Chash::new(&backend(&THREE, 0));
        let first = pick(&b, "/foo", &[]);
        let second = pick(&b, "/foo", &[first]);
        assert_ne!(first, second);
        let third = pick(&b, "/foo", &[first, second]);
        assert!(third != first && third != second);
        assert_eq!(pick(&b, "/foo", &[0, 1, 2]), first);
    }

    #[test]
    fn empty_backend_picks_nothing() {
        let b = Chash::new(&backend(&[], 0));
        assert_eq!(b.pick(&PickRequest::default()), None);
        let s = ChashSubset::new(&backend(&[], 3));
        assert_eq!(s.pick(&PickRequest::default()), None);
    }

    /// §4.5: 9 endpoints, size 3: further picks stay within the first pick's subset.
    #[test]
    fn subset_is_sticky_for_a_key() {
        let addrs: Vec<String> = (1..=9).map(|i| format!("10.184.7.{i}")).collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let b = ChashSubset::new(&backend(&refs, 3));
        let subset = b.subset(b"/alma/armud").unwrap().to_vec();
        assert_eq!(subset.len(), 3);
        for _ in 0..11 {
            assert!(subset.contains(&pick(&b, "/alma/armud", &[])));
        }
        // The subsets are consecutive runs of the endpoint list.
        assert!(subset.windows(2).all(|w| w[1] == w[0] + 1), "{subset:?}");
    }

    /// §4.5: with 7 endpoints every subset still has 3 members (padding from the start).
    #[test]
    fn last_subset_is_padded_from_the_start() {
        let addrs: Vec<String> = (1..=7).map(|i| format!("10.184.7.{i}")).collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let b = ChashSubset::new(&backend(&refs, 3));
        assert_eq!(b.members, [0, 1, 2, 3, 4, 5, 6, 0, 1]);
        // Fewer endpoints than the subset size: cycle through them.
        let b = ChashSubset::new(&backend(&THREE[..1], 3));
        assert_eq!(b.members, [0, 0, 0]);
        let b = ChashSubset::new(&backend(&THREE[..2], 5));
        assert_eq!(b.members, [0, 1, 0, 1, 0]);
    }

    #[test]
    fn subset_size_defaults_to_three() {
        let addrs: Vec<String> = (1..=6).map(|i| format!("10.184.7.{i}")).collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let mut compiled = backend(&refs, 0);
        compiled
            .source
            .upstream_hash_by_config
            .upstream_hash_by_subset = true;
        let b = ChashSubset::new(&compiled);
        assert_eq!(b.size, 3);
        assert_eq!(b.ring.points.len(), 2 * POINTS_PER_NODE);
    }

    #[test]
    fn subset_retry_prefers_untried_members() {
        let addrs: Vec<String> = (1..=9).map(|i| format!("10.184.7.{i}")).collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let b = ChashSubset::new(&backend(&refs, 3));
        let subset = b.subset(b"k").unwrap().to_vec();
        for _ in 0..50 {
            let e = pick(&b, "k", &subset[..2]);
            assert_eq!(e, subset[2]);
            let e = pick(&b, "k", &subset);
            assert!(!subset.contains(&e));
        }
        assert!(subset.contains(&pick(&b, "k", &(0..9).collect::<Vec<_>>())));
    }

    proptest! {
        #[test]
        fn picks_are_in_range(n in 0usize..12, size in 1i64..5, key in any::<Vec<u8>>(),
                              tried in proptest::collection::vec(0usize..14, 0..4)) {
            let addrs: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}")).collect();
            let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
            let c = Chash::new(&backend(&refs, 0));
            let s = ChashSubset::new(&backend(&refs, size));
            for b in [&c as &dyn Balancer, &s] {
                let got = b.pick(&PickRequest { hash_key: Some(&key), affinity_cookie: None, tried: &tried });
                match got {
                    Some(p) => prop_assert!(p.endpoint < n),
                    None => prop_assert_eq!(n, 0),
                }
            }
        }

        #[test]
        fn chash_is_deterministic(n in 1usize..12, key in any::<Vec<u8>>()) {
            let addrs: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}")).collect();
            let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
            let a = Chash::new(&backend(&refs, 0));
            let b = Chash::new(&backend(&refs, 0));
            let req = PickRequest { hash_key: Some(&key), affinity_cookie: None, tried: &[] };
            prop_assert_eq!(a.pick(&req), b.pick(&req));
            prop_assert_eq!(a.pick(&req), a.pick(&req));
        }
    }
}
