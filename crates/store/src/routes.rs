//! The route table: host lookup and per-host location matching, compiled at apply
//! time so that a request costs a hash lookup and a short scan, never a regex
//! compilation.
//!
//! Semantics (Part A.2, Part B §6):
//! - Hosts: exact name (case-insensitive, port ignored), then the one-label wildcard
//!   `*.<parent>`, then the default server `_`.
//! - Paths, plain mode: an `Exact` location matches the whole path and beats
//!   everything. `Prefix` follows the Ingress v1 spec (whole path elements; a trailing
//!   `/` in the configured path is ignored). `ImplementationSpecific` is a plain string
//!   prefix, as in ingress-nginx. Among prefix matches the longest wins.
//! - Paths, regex mode (any location of the host uses `use-regex` or
//!   `rewrite-target`): every path is a case-insensitive regex anchored at the start;
//!   they are tried in ingress-nginx's order (descending path, then descending length)
//!   and the first match wins.
//!
//! The path given to [`RouteTable::route`] must already be normalised (percent-decoded,
//! dot segments resolved, duplicate slashes merged), as nginx matches on `$uri`.

use std::collections::HashMap;
use std::sync::Arc;

use gangplank_model::validate::REGEX_SIZE_LIMIT;
use gangplank_model::{GeneralConfig, Location, PathType, Server};
use regex::{Regex, RegexBuilder};

use crate::backends::{BackendTable, CompiledBackend};
use crate::certificates::CertificateTable;
use crate::policy::{CompiledPolicies, PolicyContext};

/// The metric labels and log fields of a location, prepared once per snapshot so a
/// request only clones an `Arc`.
///
/// Hashing uses a fingerprint computed once by [`LocationLabels::new`], so the
/// per-request metrics lookup hashes one integer instead of six strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocationLabels {
    /// Hash of the fields below, computed at compile time (compared first by `Eq`).
    fingerprint: u64,
    /// The server's host name (label `host`).
    pub host: String,
    /// The location's path as written in the Ingress (label `path`).
    pub path: String,
    /// The Ingress namespace (label `namespace`).
    pub namespace: String,
    /// The Ingress name (label `ingress`).
    pub ingress: String,
    /// The Service name (label `service`).
    pub service: String,
    /// The backend (upstream) name (`$proxy_upstream_name`).
    pub backend: String,
}

impl LocationLabels {
    /// Labels from their values.
    pub fn new(
        host: String,
        path: String,
        namespace: String,
        ingress: String,
        service: String,
        backend: String,
    ) -> LocationLabels {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&host, &path, &namespace, &ingress, &service, &backend).hash(&mut hasher);
        LocationLabels {
            fingerprint: hasher.finish(),
            host,
            path,
            namespace,
            ingress,
            service,
            backend,
        }
    }
}

impl std::hash::Hash for LocationLabels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint);
    }
}

/// A location ready for requests.
#[derive(Debug)]
pub struct CompiledLocation {
    /// The location as configured.
    pub source: Location,
    /// Labels for metrics and logs.
    pub labels: Arc<LocationLabels>,
    /// Its backend, or `None` when no backend of that name exists (requests get 503).
    pub backend: Option<Arc<CompiledBackend>>,
    /// The location's regex in regex mode (used for rewrite captures).
    pub regex: Option<Regex>,
    /// Its request policies, compiled ([`crate::policy`]).
    pub policies: Arc<CompiledPolicies>,
}

/// A server ready for requests.
#[derive(Debug)]
pub struct CompiledServer {
    /// The server as configured (locations included).
    pub hostname: String,
    /// Its locations, in configured order.
    pub locations: Vec<CompiledLocation>,
    /// `auth-tls-*` of the host: TLS handshakes for this name request a client
    /// certificate verified against this CA (the server's setting, else the first
    /// location's).
    pub client_auth: Option<Arc<crate::policy::ClientAuth>>,
    /// `ssl-passthrough`: the backend that receives this host's TLS connections
    /// unterminated, as ingress-nginx's passthrough backends: the backend of the
    /// host's `/` location. `None` when the host is not passed through, or has no `/`
    /// location with an existing backend (its TLS is then terminated as usual).
    pub passthrough: Option<Arc<CompiledBackend>>,
    matcher: Matcher,
}

#[derive(Debug)]
enum Matcher {
    Plain {
        /// Whole-path matches: Exact locations, and the exact twin of each Prefix.
        exact: HashMap<String, usize>,
        /// Prefix candidates, longest first.
        prefixes: Vec<PrefixRule>,
    },
    /// Location indexes in evaluation order.
    Regex(Vec<usize>),
}

#[derive(Debug)]
struct PrefixRule {
    /// The string the request path must start with. A `Prefix` location `/foo` is
    /// stored as `/foo/` plus an exact twin `/foo`, which is element-wise matching.
    prefix: String,
    location: usize,
}

/// The result of routing a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    /// The server that answered for the host (`None`: no server, not even `_`).
    pub server: &'a CompiledServer,
    /// The matching location (`None`: no location of the server matches).
    pub location: Option<&'a CompiledLocation>,
}

/// Servers by host name, with wildcard and default lookups.
#[derive(Debug, Default)]
pub struct RouteTable {
    servers: Vec<CompiledServer>,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
    default_server: Option<usize>,
    /// The ConfigMap-wide policies every location shares (the listeners read the
    /// PROXY protocol trust from it).
    global: Arc<crate::policy::GlobalPolicies>,
}

impl RouteTable {
    /// Compiles `servers` against `backends`, with the default general settings and
    /// no certificates. Servers must have passed validation; a regex that still fails
    /// to compile makes its location unmatchable.
    pub fn compile(servers: &[Server], backends: &BackendTable) -> RouteTable {
        RouteTable::compile_with(
            servers,
            backends,
            &GeneralConfig::default(),
            &CertificateTable::default(),
        )
    }

    /// Compiles `servers` against `backends`, with the request policies that
    /// `general` and `certificates` shape (HTTPS redirects, HSTS, ConfigMap blocks...).
    pub fn compile_with(
        servers: &[Server],
        backends: &BackendTable,
        general: &GeneralConfig,
        certificates: &CertificateTable,
    ) -> RouteTable {
        let mut policies = PolicyContext::new(general, certificates);
        let mut table = RouteTable {
            global: policies.global(),
            ..RouteTable::default()
        };
        for server in servers {
            let index = table.servers.len();
            table
                .servers
                .push(CompiledServer::compile(server, backends, &mut policies));
            for name in std::iter::once(&server.hostname).chain(&server.aliases) {
                let name = name.to_ascii_lowercase();
                if name == "_" {
                    table.default_server.get_or_insert(index);
                } else if let Some(parent) = name.strip_prefix("*.") {
                    table.wildcard.entry(parent.to_owned()).or_insert(index);
                } else {
                    table.exact.entry(name).or_insert(index);
                }
            }
        }
        // `from-to-www-redirect`: the twin name, unless a server has it, redirects.
        for server in servers {
            if let Some(twin) = crate::policy::www_twin(server)
                && !table.exact.contains_key(&twin)
            {
                let redirect = policies.www_redirect(&server.hostname.to_ascii_lowercase());
                table.exact.insert(twin.clone(), table.servers.len());
                table
                    .servers
                    .push(CompiledServer::redirect_only(twin, redirect));
            }
        }
        policies.log_summary();
        table
    }

    /// The server for a request's host (`Host` header or `:authority`, port allowed).
    pub fn server(&self, host: &str) -> Option<&CompiledServer> {
        let host = strip_port(host);
        let host = host.strip_suffix('.').unwrap_or(host);
        let index = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.lookup(&host.to_ascii_lowercase())
        } else {
            self.lookup(host)
        };
        index.or(self.default_server).map(|i| &self.servers[i])
    }

    fn lookup(&self, host: &str) -> Option<usize> {
        if let Some(i) = self.exact.get(host) {
            return Some(*i);
        }
        let (_, parent) = host.split_once('.')?;
        self.wildcard.get(parent).copied()
    }

    /// The backend that receives TLS connections for `sni` unterminated: the
    /// `ssl-passthrough` backend of the server named `sni` (exact name or one-label
    /// wildcard, never the default server), as ingress-nginx's SNI-routed TCP proxy.
    pub fn passthrough(&self, sni: &str) -> Option<&Arc<CompiledBackend>> {
        let sni = sni.strip_suffix('.').unwrap_or(sni).to_ascii_lowercase();
        let index = self.lookup(&sni)?;
        self.servers[index].passthrough.as_ref()
    }

    /// Routes a request: the server for `host`, then the location for `path`.
    pub fn route(&self, host: &str, path: &str) -> Option<RouteMatch<'_>> {
        let server = self.server(host)?;
        Some(RouteMatch {
            server,
            location: server.location(path),
        })
    }

    /// The ConfigMap-wide policies of this table.
    pub fn global(&self) -> &crate::policy::GlobalPolicies {
        &self.global
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// True when there are no servers.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

/// The backend of a passthrough host's `/` location (ingress-nginx's
/// `SSLPassthroughBackend`), with a warning when there is none.
fn passthrough_backend(
    server: &Server,
    locations: &[CompiledLocation],
) -> Option<Arc<CompiledBackend>> {
    let root = locations.iter().find(|l| l.source.path == "/");
    let backend = root.and_then(|l| l.backend.clone());
    if backend.is_none() {
        tracing::warn!(
            host = %server.hostname,
            "ssl-passthrough is ignored: the host has no \"/\" location with a backend"
        );
    }
    backend
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split_once(']').map_or(host, |(addr, _)| addr);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

impl CompiledServer {
    fn compile(
        server: &Server,
        backends: &BackendTable,
        policies: &mut PolicyContext<'_>,
    ) -> CompiledServer {
        let regex_mode = server.regex_mode();
        let locations: Vec<CompiledLocation> = server
            .locations
            .iter()
            .map(|l| CompiledLocation {
                labels: Arc::new(LocationLabels::new(
                    server.hostname.clone(),
                    if l.ingress_path.is_empty() {
                        l.path.clone()
                    } else {
                        l.ingress_path.clone()
                    },
                    l.ingress
                        .as_ref()
                        .map(|i| i.namespace.clone())
                        .unwrap_or_default(),
                    l.ingress
                        .as_ref()
                        .map(|i| i.name.clone())
                        .unwrap_or_default(),
                    l.service.clone(),
                    l.backend.clone(),
                )),
                backend: backends.get(&l.backend).cloned(),
                regex: regex_mode.then(|| compile_regex(&l.path)).flatten(),
                policies: policies.compile(l, server),
                source: l.clone(),
            })
            .collect();
        let matcher = if regex_mode {
            let mut order: Vec<usize> = (0..locations.len())
                .filter(|i| locations[*i].regex.is_some())
                .collect();
            // ingress-nginx: sort by descending path, then stably by descending length.
            order.sort_by(|a, b| locations[*b].source.path.cmp(&locations[*a].source.path));
            order.sort_by_key(|i| std::cmp::Reverse(locations[*i].source.path.len()));
            Matcher::Regex(order)
        } else {
            compile_plain(&locations)
        };
        let client_auth = locations
            .iter()
            .find_map(|l| l.policies.client_auth.clone());
        let passthrough = if server.ssl_passthrough {
            passthrough_backend(server, &locations)
        } else {
            None
        };
        CompiledServer {
            hostname: server.hostname.clone(),
            locations,
            client_auth,
            passthrough,
            matcher,
        }
    }

    /// A server whose one location (`/`, every path) is answered by its policies
    /// alone: the `www.` twin of `from-to-www-redirect`.
    fn redirect_only(hostname: String, policies: Arc<CompiledPolicies>) -> CompiledServer {
        let source = Location {
            path: "/".into(),
            path_type: PathType::ImplementationSpecific,
            ..Location::default()
        };
        let labels = LocationLabels::new(
            hostname.clone(),
            "/".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        );
        CompiledServer {
            hostname,
            client_auth: None,
            passthrough: None,
            locations: vec![CompiledLocation {
                source,
                labels: Arc::new(labels),
                backend: None,
                regex: None,
                policies,
            }],
            matcher: Matcher::Plain {
                exact: HashMap::new(),
                prefixes: vec![PrefixRule {
                    prefix: "/".into(),
                    location: 0,
                }],
            },
        }
    }

    /// The location matching `path` (already normalised, without the query string).
    pub fn location(&self, path: &str) -> Option<&CompiledLocation> {
        let index = match &self.matcher {
            Matcher::Plain { exact, prefixes } => exact.get(path).copied().or_else(|| {
                prefixes
                    .iter()
                    .find(|rule| path.starts_with(rule.prefix.as_str()))
                    .map(|rule| rule.location)
            }),
            Matcher::Regex(order) => order.iter().copied().find(|i| {
                self.locations[*i]
                    .regex
                    .as_ref()
                    .is_some_and(|r| r.is_match(path))
            }),
        };
        index.map(|i| &self.locations[i])
    }
}

fn compile_regex(path: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^{path}"))
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .ok()
}

fn compile_plain(locations: &[CompiledLocation]) -> Matcher {
    let mut exact = HashMap::new();
    let mut prefixes = Vec::new();
    // Exact locations first, so they win over the exact twin of a Prefix.
    for (i, l) in locations.iter().enumerate() {
        if l.source.path_type == PathType::Exact {
            exact.entry(l.source.path.clone()).or_insert(i);
        }
    }
    for (i, l) in locations.iter().enumerate() {
        let path = &l.source.path;
        match l.source.path_type {
            PathType::Exact => {}
            PathType::Prefix => {
                let trimmed = path.trim_end_matches('/');
                if trimmed.is_empty() {
                    // `/` matches every path.
                    prefixes.push(PrefixRule {
                        prefix: "/".into(),
                        location: i,
                    });
                } else {
                    exact.entry(trimmed.to_owned()).or_insert(i);
                    prefixes.push(PrefixRule {
                        prefix: format!("{trimmed}/"),
                        location: i,
                    });
                }
            }
            PathType::ImplementationSpecific => {
                prefixes.push(PrefixRule {
                    prefix: path.clone(),
                    location: i,
                });
            }
        }
    }
    // Longest prefix first; equal lengths keep configured order (stable sort).
    prefixes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    Matcher::Plain { exact, prefixes }
}

#[cfg(test)]
mod tests;
