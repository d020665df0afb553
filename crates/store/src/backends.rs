//! The compiled backend table: endpoints parsed into socket addresses once, at apply
//! time, and the balancer choice resolved with ingress-nginx's precedence.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use gangplank_model::expr::ComplexValue;
use gangplank_model::{Backend, LoadBalance};

/// Where one endpoint lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Upstream {
    /// An IP endpoint (IPv6 included).
    Addr(SocketAddr),
    /// A DNS name (ExternalName services), resolved by the data plane.
    Name {
        /// The DNS name, without a trailing dot.
        host: String,
        /// The port.
        port: u16,
    },
}

impl std::fmt::Display for Upstream {
    /// `ip:port`, with IPv6 in brackets: the form ingress-nginx uses as endpoint key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Addr(a) => a.fmt(f),
            Upstream::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// A backend ready for the proxy.
#[derive(Debug)]
pub struct CompiledBackend {
    /// The backend as configured.
    pub source: Backend,
    /// Its endpoints, in configured order.
    pub upstreams: Vec<Upstream>,
    /// The balancer implementation, per ingress-nginx's precedence.
    pub balancer: LoadBalance,
    /// The parsed `upstream-hash-by` expression, when hashing.
    pub hash_by: Option<ComplexValue>,
}

impl CompiledBackend {
    /// Compiles a backend that passed validation. Endpoints that still fail to parse
    /// (which validation prevents) are skipped rather than trusted.
    pub fn compile(source: Backend) -> CompiledBackend {
        let external = source.is_external_name();
        let upstreams = source
            .endpoints
            .iter()
            .filter_map(|ep| {
                let port = ep.port.parse::<u16>().ok().filter(|p| *p != 0)?;
                let bare = ep
                    .address
                    .strip_prefix('[')
                    .and_then(|a| a.strip_suffix(']'))
                    .unwrap_or(&ep.address);
                match bare.parse::<IpAddr>() {
                    Ok(ip) => Some(Upstream::Addr(SocketAddr::new(ip, port))),
                    Err(_) if external => Some(Upstream::Name {
                        host: bare.trim_end_matches('.').to_ascii_lowercase(),
                        port,
                    }),
                    Err(_) => None,
                }
            })
            .collect();
        let hash_by = Some(&source.upstream_hash_by_config.upstream_hash_by)
            .filter(|h| !h.is_empty())
            .and_then(|h| ComplexValue::parse(h).ok());
        CompiledBackend {
            balancer: source.balancer(),
            upstreams,
            hash_by,
            source,
        }
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.source.name
    }
}

/// Backends by name.
#[derive(Debug, Default)]
pub struct BackendTable {
    by_name: HashMap<String, Arc<CompiledBackend>>,
}

impl BackendTable {
    /// Compiles `backends`, reusing the compiled form (the same `Arc`) of every backend
    /// that is unchanged in `previous`, so the proxy can keep balancer state for them
    /// by pointer identity.
    pub fn compile(backends: &[Backend], previous: Option<&BackendTable>) -> BackendTable {
        let by_name = backends
            .iter()
            .map(|b| {
                let reused = previous
                    .and_then(|p| p.by_name.get(&b.name))
                    .filter(|old| old.source == *b)
                    .cloned();
                let compiled =
                    reused.unwrap_or_else(|| Arc::new(CompiledBackend::compile(b.clone())));
                (b.name.clone(), compiled)
            })
            .collect();
        BackendTable { by_name }
    }

    /// The backend called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<CompiledBackend>> {
        self.by_name.get(name)
    }

    /// Number of backends.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there are no backends.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// All backends, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CompiledBackend>> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::Endpoint;

    fn backend(name: &str, eps: &[(&str, &str)]) -> Backend {
        Backend {
            name: name.into(),
            endpoints: eps
                .iter()
                .map(|(a, p)| Endpoint {
                    address: (*a).into(),
                    port: (*p).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_become_socket_addresses() {
        let b = CompiledBackend::compile(backend(
            "a",
            &[("10.0.0.1", "80"), ("::1", "8080"), ("[fe80::1]", "81")],
        ));
        let shown: Vec<String> = b.upstreams.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.1:80", "[::1]:8080", "[fe80::1]:81"]);
        assert_eq!(b.balancer, LoadBalance::RoundRobin);
    }

    #[test]
    fn unchanged_backends_keep_their_compiled_instance() {
        let v1 = vec![
            backend("a", &[("10.0.0.1", "80")]),
            backend("b", &[("10.0.0.2", "80")]),
        ];
        let t1 = BackendTable::compile(&v1, None);
        let v2 = vec![
            backend("a", &[("10.0.0.1", "80")]),
            backend("b", &[("10.0.0.3", "80")]),
        ];
        let t2 = BackendTable::compile(&v2, Some(&t1));
        assert!(Arc::ptr_eq(t1.get("a").unwrap(), t2.get("a").unwrap()));
        assert!(!Arc::ptr_eq(t1.get("b").unwrap(), t2.get("b").unwrap()));
    }
}
