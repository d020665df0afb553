//! Resolution of ExternalName endpoints, cached for their DNS TTL.
//!
//! The endpoint address of a Kubernetes `type: ExternalName` Service is a host name.
//! ingress-nginx resolves it in Lua with its own DNS client (name servers, search domains
//! and ndots from `/etc/resolv.conf`) and caches each answer for its TTL. Gangplank does the
//! same with [hickory-resolver](https://docs.rs/hickory-resolver): the system resolver
//! (`getaddrinfo`) never reports TTLs, so it could only cache for a fixed time.
//!
//! - **Configuration**: `/etc/resolv.conf` (name servers, search domains, ndots, timeout,
//!   attempts), read once per [`Resolver`], on first use. If it cannot be read, a warning is
//!   logged and names go to `127.0.0.1:53` without search domains, as glibc does.
//!   `/etc/hosts` answers before DNS (read when a runtime's client is built), and
//!   `localhost` never leaves the process.
//! - **IP literals** (`10.0.0.1`, `::1`, `[::1]`) are used as they are, without DNS.
//! - **Positive answers**: A and AAAA are asked in parallel (both families, as
//!   `getaddrinfo` gave) and the answer is used for its TTL (the smallest of its records)
//!   clamped between [`MIN_TTL`] and [`MAX_TTL`]: a TTL of 0 cannot cause a query per
//!   request, and a changed record is seen within five minutes whatever its TTL.
//! - **Negative answers** (NXDOMAIN, no address, timeouts, [`LOOKUP_TIMEOUT`]) are logged
//!   with the host and remembered for [`NEGATIVE_TTL`], so a dead name cannot cause a
//!   lookup per request.
//! - **Single flight**: requests for a name that is not cached share one lookup (a
//!   `tokio::sync::OnceCell` per name; if the request running it goes away, a waiting
//!   one takes over).
//! - Successive calls rotate over the addresses of an answer, so that they share the
//!   traffic (and a retry gets the next address).
//!
//! Runtimes: the proxy's workers are current-thread tokio runtimes sharing one
//! [`Resolver`]. hickory spawns a background task per name-server connection on the
//! runtime that opens it, so each runtime gets its own hickory client, built on its first
//! lookup (creating a [`Resolver`] costs nothing); the cache of answers is shared.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::sync::OnceCell;

/// The shortest time an answer is used, whatever its TTL.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest time an answer is used, whatever its TTL.
pub const MAX_TTL: Duration = Duration::from_secs(300);
/// How long a failed lookup is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(1);
/// The longest a lookup (every search domain, both families, retries) may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Above this many cached names, expired ones are dropped when a name is added.
const PRUNE_AT: usize = 1024;

/// The addresses of one name (none for a failed lookup) and until when to use them.
#[derive(Debug)]
struct Answer {
    addrs: Vec<IpAddr>,
    expires: Instant,
}

/// One name's answer, or the lookup every request for it awaits.
type Slot = Arc<OnceCell<Answer>>;

/// A process-wide cache of ExternalName lookups.
#[derive(Debug, Default)]
pub struct Resolver {
    /// The hickory configuration: `/etc/resolv.conf`, read on first use.
    config: OnceLock<(ResolverConfig, ResolverOpts)>,
    /// One hickory client per tokio runtime (see the module documentation).
    clients: Mutex<HashMap<tokio::runtime::Id, TokioResolver>>,
    /// Answers and lookups in flight, by host name.
    answers: Mutex<HashMap<String, Slot>>,
    rotation: AtomicUsize,
}

impl Resolver {
    /// A resolver that asks these name servers (UDP), without search domains.
    #[cfg(test)]
    pub(crate) fn with_name_servers(servers: &[SocketAddr]) -> Self {
        use hickory_resolver::config::ConnectionConfig;
        let name_servers = servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp])
            })
            .collect();
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(2);
        options.attempts = 1;
        Self {
            config: OnceLock::from((ResolverConfig::from_name_servers(name_servers), options)),
            ..Self::default()
        }
    }

    /// One address for `host:port`, from the cache while its answer is valid.
    pub async fn resolve(&self, host: &str, port: u16) -> Option<SocketAddr> {
        if let Some(ip) = ip_literal(host) {
            return Some(SocketAddr::new(ip, port));
        }
        let slot = self.slot(host, Instant::now());
        let answer = slot.get_or_init(|| self.lookup(host)).await;
        self.pick(&answer.addrs).map(|ip| SocketAddr::new(ip, port))
    }

    /// The slot of `host`: its valid answer, the lookup in flight, or a new empty slot.
    fn slot(&self, host: &str, now: Instant) -> Slot {
        let mut answers = lock(&self.answers);
        if let Some(slot) = answers.get(host)
            && slot.get().is_none_or(|answer| answer.expires > now)
        {
            return slot.clone();
        }
        if answers.len() >= PRUNE_AT {
            // Keep valid answers and lookups someone still awaits.
            answers.retain(|_, slot| {
                slot.get()
                    .map_or(Arc::strong_count(slot) > 1, |answer| answer.expires > now)
            });
        }
        let slot = Slot::default();
        answers.insert(host.to_owned(), slot.clone());
        slot
    }

    /// Asks DNS (or `/etc/hosts`) for `host`; failures are answers without addresses.
    async fn lookup(&self, host: &str) -> Answer {
        let found = match self.client() {
            Ok(client) => {
                match tokio::time::timeout(LOOKUP_TIMEOUT, client.lookup_ip(host)).await {
                    Ok(Ok(found)) => Ok(found),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
                }
            }
            Err(e) => Err(e),
        };
        let now = Instant::now();
        match found {
            Ok(found) => {
                let addrs: Vec<IpAddr> = found.iter().collect();
                if !addrs.is_empty() {
                    let ttl = cache_for(found.valid_until(), now);
                    tracing::debug!(host, ?addrs, ?ttl, "resolved an ExternalName endpoint");
                    return Answer {
                        addrs,
                        expires: now + ttl,
                    };
                }
                tracing::warn!(host, "an ExternalName endpoint has no address");
            }
            Err(error) => {
                tracing::warn!(host, %error, "could not resolve an ExternalName endpoint");
            }
        }
        Answer {
            addrs: Vec::new(),
            expires: now + NEGATIVE_TTL,
        }
    }

    /// The hickory client of the current tokio runtime, built on its first use.
    fn client(&self) -> Result<TokioResolver, String> {
        let runtime = tokio::runtime::Handle::current().id();
        let mut clients = lock(&self.clients);
        if let Some(client) = clients.get(&runtime) {
            return Ok(client.clone());
        }
        let (config, mut options) = self.config.get_or_init(system_config).clone();
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // hickory keeps its own cache (search-domain misses, CNAME chains): never longer
        // than ours, so that an expired answer of ours means a new query.
        options.positive_max_ttl = Some(MAX_TTL);
        options.negative_max_ttl = Some(NEGATIVE_TTL);
        let client = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| format!("could not build a DNS client: {e}"))?;
        clients.insert(runtime, client.clone());
        Ok(client)
    }

    fn pick(&self, addrs: &[IpAddr]) -> Option<IpAddr> {
        if addrs.is_empty() {
            return None;
        }
        let i = self.rotation.fetch_add(1, Ordering::Relaxed) % addrs.len();
        Some(addrs[i])
    }
}

/// How long to use an answer that DNS says is valid until `valid_until`, at `now`: its
/// remaining TTL, clamped between [`MIN_TTL`] and [`MAX_TTL`].
fn cache_for(valid_until: Instant, now: Instant) -> Duration {
    valid_until
        .saturating_duration_since(now)
        .clamp(MIN_TTL, MAX_TTL)
}

/// `host` as an IP address when it is one (IPv6 with or without brackets).
fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// `/etc/resolv.conf`, or glibc's default (`nameserver 127.0.0.1`) with a warning.
fn system_config() -> (ResolverConfig, ResolverOpts) {
    match hickory_resolver::system_conf::read_system_conf() {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(
                %error,
                "could not read /etc/resolv.conf: asking 127.0.0.1:53, without search domains"
            );
            let localhost = NameServerConfig::udp_and_tcp(Ipv4Addr::LOCALHOST.into());
            (
                ResolverConfig::from_name_servers(vec![localhost]),
                ResolverOpts::default(),
            )
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::op::{Message, ResponseCode};
    use hickory_resolver::proto::rr::rdata::A;
    use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
    use std::net::Ipv6Addr;
    use std::str::FromStr;
    use tokio::net::UdpSocket;

    /// A DNS server on 127.0.0.1 for one name: the n-th A query for it is answered with
    /// `answers[n]` (the last one once they run out) with a TTL of 1 s, AAAA with no record,
    /// other names with NXDOMAIN. Every answer waits `delay`; queries are counted as they arrive.
    struct TestDns {
        addr: SocketAddr,
        queries: Arc<AtomicUsize>,
        a_queries: Arc<AtomicUsize>,
    }

    impl TestDns {
        async fn start(name: &str, answers: Vec<Vec<Ipv4Addr>>, delay: Duration) -> Self {
            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let addr = socket.local_addr().unwrap();
            let name = Name::from_str(name).unwrap();
            let queries = Arc::new(AtomicUsize::new(0));
            let a_queries = Arc::new(AtomicUsize::new(0));
            let (all, a) = (queries.clone(), a_queries.clone());
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                loop {
                    let (len, peer) = socket.recv_from(&mut buf).await.unwrap();
                    let request = Message::from_vec(&buf[..len]).unwrap();
                    let query = request.queries[0].clone();
                    all.fetch_add(1, Ordering::SeqCst);
                    let mut response =
                        Message::response(request.metadata.id, request.metadata.op_code);
                    response.metadata.recursion_desired = request.metadata.recursion_desired;
                    response.metadata.recursion_available = true;
                    response.add_query(query.clone());
                    if *query.name() != name {
                        response.metadata.response_code = ResponseCode::NXDomain;
                    } else if query.query_type() == RecordType::A {
                        let n = a.fetch_add(1, Ordering::SeqCst);
                        let ips = &answers[n.min(answers.len() - 1)];
                        response.add_answers(
                            ips.iter()
                                .map(|ip| Record::from_rdata(name.clone(), 1, RData::A(A(*ip)))),
                        );
                    }
                    // Each answer on its own task: delays do not add up.
                    let socket = socket.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let bytes = response.to_vec().unwrap();
                        socket.send_to(&bytes, peer).await.unwrap();
                    });
                }
            });
            TestDns {
                addr,
                queries,
                a_queries,
            }
        }

        fn queries(&self) -> usize {
            self.queries.load(Ordering::SeqCst)
        }

        fn a_queries(&self) -> usize {
            self.a_queries.load(Ordering::SeqCst)
        }
    }

    /// Runs a test body with a deadline, so that a lost DNS answer cannot hang the suite.
    async fn within<F: Future<Output = ()>>(body: F) {
        tokio::time::timeout(Duration::from_secs(8), body)
            .await
            .expect("the test took too long");
    }

    #[test]
    fn ttl_is_honoured_and_clamped() {
        let now = Instant::now();
        let secs = Duration::from_secs;
        assert_eq!(cache_for(now + secs(30), now), secs(30));
        assert_eq!(
            cache_for(now + Duration::from_millis(1500), now),
            Duration::from_millis(1500)
        );
        assert_eq!(cache_for(now + MAX_TTL, now), MAX_TTL);
        // TTL 0 or already past: still one second, never a query per request.
        assert_eq!(cache_for(now, now), MIN_TTL);
        assert_eq!(cache_for(now, now + secs(5)), MIN_TTL);
        // Long TTLs (a day, hickory's maximum for /etc/hosts): five minutes.
        assert_eq!(cache_for(now + secs(86_400), now), MAX_TTL);
    }

    #[test]
    fn ip_literals_are_recognised() {
        assert_eq!(ip_literal("10.1.2.3"), Some(IpAddr::from([10, 1, 2, 3])));
        assert_eq!(ip_literal("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(ip_literal("[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(ip_literal("svc.example.com"), None);
        assert_eq!(ip_literal("[svc]"), None);
        assert_eq!(ip_literal("10.1.2"), None);
    }

    #[tokio::test]
    async fn ip_literals_bypass_dns() {
        within(async {
            let dns = TestDns::start(
                "svc.test.",
                vec![vec![[10, 0, 0, 1].into()]],
                Duration::ZERO,
            )
            .await;
            let r = Resolver::with_name_servers(&[dns.addr]);
            let v4 = r.resolve("10.1.2.3", 80).await;
            assert_eq!(v4, Some("10.1.2.3:80".parse().unwrap()));
            let v6 = r.resolve("2001:db8::1", 443).await;
            assert_eq!(v6, Some("[2001:db8::1]:443".parse().unwrap()));
            let bracketed = r.resolve("[::1]", 8080).await;
            assert_eq!(bracketed, Some("[::1]:8080".parse().unwrap()));
            assert_eq!(dns.queries(), 0);
            assert!(lock(&r.answers).is_empty());
            assert!(lock(&r.clients).is_empty(), "no DNS client was even built");
        })
        .await;
    }

    #[tokio::test]
    async fn localhost_resolves_without_dns() {
        within(async {
            // The system configuration (/etc/resolv.conf, /etc/hosts).
            let r = Resolver::default();
            let a = r.resolve("localhost", 8080).await.unwrap();
            assert!(a.ip().is_loopback(), "{a}");
            assert_eq!(a.port(), 8080);
            // A name server that would count a query: none is sent.
            let dns = TestDns::start(
                "svc.test.",
                vec![vec![[10, 0, 0, 1].into()]],
                Duration::ZERO,
            )
            .await;
            let r = Resolver::with_name_servers(&[dns.addr]);
            for _ in 0..3 {
                assert!(r.resolve("localhost", 80).await.unwrap().ip().is_loopback());
            }
            assert_eq!(dns.queries(), 0);
        })
        .await;
    }

    #[tokio::test]
    async fn answers_are_cached_for_their_ttl() {
        within(async {
            let first: Ipv4Addr = [10, 0, 0, 1].into();
            let second: Ipv4Addr = [10, 0, 0, 2].into();
            let dns =
                TestDns::start("svc.test.", vec![vec![first], vec![second]], Duration::ZERO).await;
            let r = Resolver::with_name_servers(&[dns.addr]);
            assert_eq!(r.resolve("svc.test.", 80).await, Some((first, 80).into()));
            assert_eq!(dns.a_queries(), 1);
            // Within the TTL (1 s): the cached answer, no query.
            for _ in 0..5 {
                assert_eq!(r.resolve("svc.test.", 80).await, Some((first, 80).into()));
            }
            assert_eq!(dns.a_queries(), 1);
            // The port is the caller's, the answer is per name.
            assert_eq!(r.resolve("svc.test.", 81).await, Some((first, 81).into()));
            assert_eq!(dns.a_queries(), 1);
            // After the TTL: asked again, the new address.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            assert_eq!(r.resolve("svc.test.", 80).await, Some((second, 80).into()));
            assert_eq!(dns.a_queries(), 2);
            assert_eq!(r.resolve("svc.test.", 80).await, Some((second, 80).into()));
            assert_eq!(dns.a_queries(), 2);
        })
        .await;
    }

    #[tokio::test]
    async fn failures_are_cached_briefly() {
        within(async {
            let dns = TestDns::start(
                "svc.test.",
                vec![vec![[10, 0, 0, 1].into()]],
                Duration::ZERO,
            )
            .await;
            let r = Resolver::with_name_servers(&[dns.addr]);
            assert_eq!(r.resolve("gone.test.", 80).await, None);
            let asked = dns.queries();
            assert!(asked > 0);
            {
                let answers = lock(&r.answers);
                let answer = answers["gone.test."].get().unwrap();
                assert!(answer.addrs.is_empty());
                assert!(answer.expires <= Instant::now() + NEGATIVE_TTL);
            }
            // Within NEGATIVE_TTL: no query.
            for _ in 0..5 {
                assert_eq!(r.resolve("gone.test.", 80).await, None);
            }
            assert_eq!(dns.queries(), asked);
            // Then asked again.
            tokio::time::sleep(NEGATIVE_TTL + Duration::from_millis(200)).await;
            assert_eq!(r.resolve("gone.test.", 80).await, None);
            assert!(dns.queries() > asked);
        })
        .await;
    }

    /// The proxy's set-up: one resolver, several current-thread runtimes (one per worker),
    /// each with its own hickory client. hickory merges identical queries in flight only
    /// within one client; the resolver's single flight makes it one query for all workers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_share_one_query_across_runtimes() {
        within(async {
            const WORKERS: usize = 3;
            let ip: Ipv4Addr = [10, 0, 0, 1].into();
            let dns = TestDns::start("svc.test.", vec![vec![ip]], Duration::from_millis(100)).await;
            let r = Arc::new(Resolver::with_name_servers(&[dns.addr]));
            let start = Arc::new(std::sync::Barrier::new(WORKERS));
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let (r, start) = (r.clone(), start.clone());
                    std::thread::spawn(move || {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap();
                        start.wait();
                        runtime.block_on(async {
                            let (a, b) = tokio::join!(
                                r.resolve("svc.test.", 80),
                                r.resolve("svc.test.", 80)
                            );
                            [a, b]
                        })
                    })
                })
                .collect();
            let found = tokio::task::spawn_blocking(move || {
                workers
                    .into_iter()
                    .flat_map(|w| w.join().unwrap())
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap();
            assert_eq!(found, vec![Some((ip, 80).into()); 2 * WORKERS]);
            assert_eq!(dns.a_queries(), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn answers_rotate_over_their_addresses() {
        within(async {
            let ips: Vec<Ipv4Addr> = vec![[10, 0, 0, 1].into(), [10, 0, 0, 2].into()];
            let dns = TestDns::start("svc.test.", vec![ips.clone()], Duration::ZERO).await;
            let r = Resolver::with_name_servers(&[dns.addr]);
            let mut seen = Vec::new();
            for _ in 0..4 {
                seen.push(r.resolve("svc.test.", 80).await.unwrap().ip());
            }
            assert_eq!(seen[0], seen[2]);
            assert_eq!(seen[1], seen[3]);
            assert_ne!(seen[0], seen[1]);
            assert!(
                seen.iter()
                    .all(|ip| ips.iter().any(|a| IpAddr::V4(*a) == *ip))
            );
            assert_eq!(dns.a_queries(), 1);
        })
        .await;
    }
}
