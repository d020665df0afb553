//! `translate`: the whole `ClusterState` in, one ingress-nginx-compatible
//! `Configuration` out, as ingress-nginx's `getBackendServers` builds it.
//!
//! In order:
//! 1. Select our Ingresses ([`crate::class`]) and order them as ingress-nginx does:
//!    oldest first, ties by `namespace/name` descending. Wherever two Ingresses
//!    claim the same thing (a host's default location, a path, a backend's
//!    settings, a host's certificate) the first in this order wins.
//! 0. The global ConfigMap becomes `general` ([`crate::configmap`]); the annotation
//!    parsers see it (`global-allowed-response-headers`).
//! 2. Backends: `upstream-default-backend` (the `--default-backend-service`, or no
//!    endpoints), then one per `<namespace>-<service>-<port>` referenced, with its
//!    endpoints ([`crate::endpoints`]; the ClusterIP with `service-upstream`) and the
//!    balancing annotations of the first Ingress that references it (`load-balance`
//!    defaulting to the ConfigMap's).
//! 3. Servers: `_` with `/` -> `upstream-default-backend`, then one per rule host
//!    with a `/` default location (the Ingress's `spec.defaultBackend`, else the
//!    default backend); a catch-all Ingress (`spec.defaultBackend`, no rules) takes
//!    over `_`'s `/` with its annotations (but not its redirects and rewrites, as
//!    ingress-nginx). Host-wide annotations (`server-alias`, `ssl-ciphers`,
//!    `auth-tls-*`): the first Ingress that sets them for a host wins. Certificates
//!    ([`crate::tls`]), aliases sharing their host's when it names them, and the
//!    `--default-ssl-certificate` as the `_` entry.
//! 4. Locations: one per path, unless the same path and pathType is already taken
//!    (ImplementationSpecific and Prefix count as the same type here, because
//!    ingress-nginx turns the former into the latter before comparing), with the
//!    Ingress's location annotations. Cookie affinity settings and cookie locations
//!    (for the host and its aliases) go to the backend.
//! 5. Canary Ingresses are merged into their primaries ([`crate::canary`]).
//! 6. `default-backend`: a location whose backend has no endpoints (or that has
//!    custom errors) gets `custom-default-backend-<namespace>-<service>`, a copy of its
//!    backend with the endpoints of the annotation's Service, as ingress-nginx does.
//! 7. Paths are checked per host (a host with `use-regex` or `rewrite-target`
//!    anywhere has regex paths everywhere) and sorted as ingress-nginx sorts them.
//!
//! Canary Ingresses never create servers or locations.

use std::collections::{BTreeMap, HashMap, HashSet};

use gangplank_model::backend::MAX_BACKEND_NAME_LEN;
use gangplank_model::server::check_path;
use gangplank_model::validate::check_text;
use gangplank_model::{
    Backend, Configuration, GeneralConfig, IngressRef, IntOrString, Location, PathType, Server,
    SslConfiguration, TrafficShapingPolicy,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressTLS};
use serde::Serialize;

use crate::annotations::{self, Context, IngressAnnotations};
use crate::class::ClassFilter;
use crate::endpoints::{
    cluster_ip_endpoint, first_port_endpoints, model_service, service_endpoints,
};
use crate::events::{Event, Events, ObjectKind, reason};
use crate::state::{ClusterState, Index, name, namespace};
use crate::tls::Certificates;
use crate::{canary, configmap, paths};

/// The name of the backend that serves what no Ingress routes.
pub const DEFAULT_UPSTREAM: &str = "upstream-default-backend";

/// The name of the server that answers requests for unknown hosts.
pub const DEFAULT_SERVER: &str = "_";

/// What the translation needs besides the objects: the controller's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateOptions {
    /// `--ingress-class`: the value of the legacy `kubernetes.io/ingress.class`
    /// annotation that selects our Ingresses (default `gangplank`).
    pub ingress_class: String,
    /// `--controller-class`: the `spec.controller` of our IngressClasses (default
    /// `gangplank.io/ingress-controller`; `k8s.io/ingress-nginx` takes over an
    /// ingress-nginx installation's classes).
    pub controller_class: String,
    /// `--watch-ingress-without-class`: also serve Ingresses that name no class.
    pub watch_ingress_without_class: bool,
    /// `--ingress-class-by-name`: also serve Ingresses whose `spec.ingressClassName` is
    /// `ingress_class`, whether or not that IngressClass exists or names our
    /// controller (ingress-nginx's flag of the same name). It keeps Ingresses served
    /// while a migration deletes and re-creates the class object.
    pub ingress_class_by_name: bool,
    /// `--default-backend-service` as (namespace, name): the Service whose first port
    /// serves `upstream-default-backend`. Without it that backend has no endpoints.
    pub default_backend_service: Option<(String, String)>,
    /// `--default-ssl-certificate` as (namespace, name): the TLS Secret served to
    /// clients whose SNI names no host with a certificate of its own (the `_` entry
    /// of the certificate mapping). Without it, or when the Secret is unusable, the
    /// proxy serves its generated certificate.
    pub default_ssl_certificate: Option<(String, String)>,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        TranslateOptions {
            ingress_class: "gangplank".to_owned(),
            controller_class: "gangplank.io/ingress-controller".to_owned(),
            watch_ingress_without_class: false,
            ingress_class_by_name: false,
            default_backend_service: None,
            default_ssl_certificate: None,
        }
    }
}

/// The result of one translation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Translation {
    /// The snapshot to push; it always passes `gangplank_model::Validate`.
    pub configuration: Configuration,
    /// What the owners of the Ingresses should know, in the order found.
    pub events: Vec<Event>,
}

/// A Service port an Ingress routes to, and the backend it becomes.
#[derive(Debug, Clone)]
pub(crate) struct BackendRef {
    /// The Service name.
    pub(crate) service: String,
    /// The Service port, as written in the Ingress.
    pub(crate) port: IntOrString,
    /// `<namespace>-<service>-<port>`, or `<namespace>-INVALID` without a port.
    pub(crate) upstream: String,
}

/// One path of a rule, with its backend.
#[derive(Debug, Clone)]
pub(crate) struct PathRule {
    /// The path as written (`/` when empty).
    pub(crate) path: String,
    /// The declared pathType.
    pub(crate) path_type: PathType,
    pub(crate) backend: BackendRef,
}

/// One rule: a host (`_` when none) and its paths (`None` without `http`).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) host: String,
    pub(crate) paths: Option<Vec<PathRule>>,
}

/// An Ingress after the checks that do not depend on other objects.
pub(crate) struct IngressInput<'a> {
    pub(crate) reference: IngressRef,
    pub(crate) annotations: IngressAnnotations,
    pub(crate) default_backend: Option<BackendRef>,
    /// How many rules the spec has, usable or not (a catch-all has none).
    pub(crate) rule_count: usize,
    pub(crate) rules: Vec<Rule>,
    pub(crate) tls: &'a [IngressTLS],
}

impl IngressInput<'_> {
    pub(crate) fn is_canary(&self) -> bool {
        self.annotations.canary.is_some()
    }
}

/// The pathType used when comparing paths: ingress-nginx reads ImplementationSpecific
/// as Prefix.
pub(crate) fn comparable(path_type: PathType) -> PathType {
    match path_type {
        PathType::ImplementationSpecific => PathType::Prefix,
        other => other,
    }
}

/// Whose certificate a host has.
enum HostCertificate {
    /// Nobody decided yet.
    Unset,
    /// Decided: the default certificate (no mapping).
    Default,
    /// Decided: the certificate of this Secret (namespace, name).
    Mapped(String, String),
}

/// Translates `state` into a configuration, as ingress-nginx would for the same
/// objects. Never fails and never panics: what cannot be used is left out (or denied)
/// and reported in [`Translation::events`].
pub fn translate(state: &ClusterState, options: &TranslateOptions) -> Translation {
    let index = Index::new(state);
    let mut events = Events::default();
    let general = configmap::general(state, &mut events);
    let context = Context {
        index: &index,
        config_maps: &state.config_maps,
        general: &general,
    };
    let inputs = select(state, options, &context, &mut events);

    let mut upstreams = create_upstreams(&index, options, &inputs, &general, &mut events);
    let mut certificates = Certificates::default();
    let default_service = options
        .default_backend_service
        .as_ref()
        .filter(|(ns, svc)| index.service(ns, svc).is_some() && check_text(svc).is_ok())
        .map(|(_, svc)| svc.as_str());
    let (mut servers, mut ssl_configuration) = create_servers(
        &index,
        &inputs,
        default_service,
        &mut certificates,
        &mut events,
    );
    default_certificate(
        &index,
        options,
        &mut certificates,
        &mut ssl_configuration,
        &mut events,
    );
    create_locations(&inputs, &mut upstreams, &mut servers, &mut events);
    canary::merge(&inputs, &mut upstreams, &servers, &mut events);
    default_backends(&index, &inputs, &mut upstreams, &mut servers, &mut events);

    for server in servers.values_mut() {
        paths::finish(server, &mut events);
    }

    let configuration = Configuration {
        backends: upstreams.into_values().collect(),
        servers: servers.into_values().collect(),
        ssl_configuration,
        general,
    };
    debug_assert!(
        gangplank_model::Validate::validate(&configuration).is_ok(),
        "translation produced an invalid configuration: {:?}",
        gangplank_model::Validate::validate(&configuration)
    );
    Translation {
        configuration,
        events: events.into_vec(),
    }
}

/// Our Ingresses, checked, in ingress-nginx's order.
fn select<'a>(
    state: &'a ClusterState,
    options: &'a TranslateOptions,
    context: &Context<'_>,
    events: &mut Events,
) -> Vec<IngressInput<'a>> {
    let filter = ClassFilter::new(&state.ingress_classes, options);
    let mut seen = HashSet::new();
    let mut ours: Vec<(&Ingress, String)> = state
        .ingresses
        .iter()
        .filter(|ing| filter.accepts(ing))
        .filter(|ing| seen.insert((namespace(&ing.metadata), name(&ing.metadata))))
        .map(|ing| {
            let key = format!("{}/{}", namespace(&ing.metadata), name(&ing.metadata));
            (&**ing, key)
        })
        .collect();
    ours.sort_by(|(a, ka), (b, kb)| {
        let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
        ta.cmp(&tb).then_with(|| kb.cmp(ka))
    });
    ours.into_iter()
        .filter_map(|(ing, _)| prepare(ing, context, events))
        .collect()
}

/// Checks what can be checked on one Ingress alone.
fn prepare<'a>(
    ingress: &'a Ingress,
    context: &Context<'_>,
    events: &mut Events,
) -> Option<IngressInput<'a>> {
    let ns = namespace(&ingress.metadata);
    let ing_name = name(&ingress.metadata);
    if ing_name.is_empty() || check_text(ns).is_err() || check_text(ing_name).is_err() {
        return None;
    }
    let reference = IngressRef {
        namespace: ns.to_owned(),
        name: ing_name.to_owned(),
    };
    let annotations = annotations::parse(
        ingress.metadata.annotations.as_ref(),
        &reference,
        context,
        events,
    );
    let spec = ingress.spec.as_ref();
    let default_backend = spec
        .and_then(|s| s.default_backend.as_ref())
        .and_then(|b| backend_ref(ns, b, &reference, "spec.defaultBackend", events));

    let raw_rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or_default();
    let mut rules = Vec::with_capacity(raw_rules.len());
    for rule in raw_rules {
        let host = match rule.host.as_deref() {
            None | Some("") => DEFAULT_SERVER.to_owned(),
            Some(host) => {
                let lower = host.to_ascii_lowercase();
                if let Err(e) = gangplank_model::validate::check_hostname(&lower) {
                    events.warn(
                        &reference,
                        reason::INVALID_HOST,
                        format!("rule host {host:?} is ignored: {e}"),
                    );
                    continue;
                }
                lower
            }
        };
        let paths = rule.http.as_ref().map(|http| {
            http.paths
                .iter()
                .filter_map(|p| {
                    let path = match p.path.as_deref() {
                        None | Some("") => "/".to_owned(),
                        Some(path) => path.to_owned(),
                    };
                    let path_type = match p.path_type.as_str() {
                        "Exact" => PathType::Exact,
                        "Prefix" | "" => PathType::Prefix,
                        "ImplementationSpecific" => PathType::ImplementationSpecific,
                        other => {
                            events.warn(
                                &reference,
                                reason::INVALID_PATH,
                                format!(
                                    "path {path:?} of host {host:?} is ignored: pathType {other:?} is not Exact, Prefix or ImplementationSpecific"
                                ),
                            );
                            return None;
                        }
                    };
                    let what = format!("the backend of path {path:?} of host {host:?}");
                    let backend = backend_ref(ns, &p.backend, &reference, &what, events)?;
                    Some(PathRule {
                        path,
                        path_type,
                        backend,
                    })
                })
                .collect()
        });
        rules.push(Rule { host, paths });
    }
    Some(IngressInput {
        reference,
        annotations,
        default_backend,
        rule_count: raw_rules.len(),
        rules,
        tls: spec.and_then(|s| s.tls.as_deref()).unwrap_or_default(),
    })
}

/// The backend of an Ingress backend reference; `None` for resource backends
/// (ignored, as ingress-nginx does) and unusable references (with a Warning).
fn backend_ref(
    namespace: &str,
    backend: &IngressBackend,
    ingress: &IngressRef,
    what: &str,
    events: &mut Events,
) -> Option<BackendRef> {
    let service = backend.service.as_ref()?;
    let mut invalid = |why: String| {
        events.warn(
            ingress,
            reason::INVALID_BACKEND,
            format!("{what} is ignored: {why}"),
        );
        None
    };
    if service.name.is_empty() {
        return invalid("the Service name is empty".to_owned());
    }
    if let Err(e) = check_text(&service.name) {
        return invalid(format!("Service name: {e}"));
    }
    let port = service.port.as_ref();
    let number = port.and_then(|p| p.number).unwrap_or(0);
    let port_name = port.and_then(|p| p.name.as_deref()).unwrap_or_default();
    let port = if number != 0 {
        if !(1..=65535).contains(&number) {
            return invalid(format!("port {number} is not in 1..65535"));
        }
        Some(IntOrString::Int(i64::from(number)))
    } else if !port_name.is_empty() {
        let port = IntOrString::String(port_name.to_owned());
        if let Err(e) = gangplank_model::backend::check_service_port(&port) {
            return invalid(e);
        }
        Some(port)
    } else {
        None
    };
    let upstream = match &port {
        Some(port) => format!("{namespace}-{}-{port}", service.name),
        None => format!("{namespace}-INVALID"),
    };
    if upstream.len() > MAX_BACKEND_NAME_LEN {
        return invalid(format!(
            "the backend name would be longer than {MAX_BACKEND_NAME_LEN} bytes"
        ));
    }
    Some(BackendRef {
        service: service.name.clone(),
        port: port.unwrap_or_default(),
        upstream,
    })
}

/// `upstream-default-backend` plus one backend per referenced Service port.
fn create_upstreams(
    index: &Index<'_>,
    options: &TranslateOptions,
    inputs: &[IngressInput<'_>],
    general: &GeneralConfig,
    events: &mut Events,
) -> BTreeMap<String, Backend> {
    let mut upstreams = BTreeMap::new();
    let mut default = Backend {
        name: DEFAULT_UPSTREAM.to_owned(),
        ..Backend::default()
    };
    if let Some((ns, svc_name)) = &options.default_backend_service
        && let Some(svc) = index.service(ns, svc_name)
    {
        default.endpoints = first_port_endpoints(index, svc);
        default.service = Some(model_service(svc));
    }
    upstreams.insert(DEFAULT_UPSTREAM.to_owned(), default);

    for input in inputs {
        let namespace = input.reference.namespace.as_str();
        let paths = input
            .rules
            .iter()
            .filter_map(|r| r.paths.as_deref())
            .flatten()
            .map(|p| &p.backend);
        for backend in input.default_backend.iter().chain(paths) {
            if upstreams.contains_key(&backend.upstream) {
                continue;
            }
            let anns = &input.annotations;
            let mut upstream = Backend {
                name: backend.upstream.clone(),
                port: backend.port.clone(),
                upstream_hash_by_config: anns.hash_by.clone(),
                load_balance: anns.load_balance.or(general.load_balance),
                ssl_passthrough: anns.server.ssl_passthrough,
                ..Backend::default()
            };
            if let Some(policy) = &anns.canary {
                upstream.no_server = true;
                upstream.traffic_shaping_policy = policy.clone();
            }
            if let Some(svc) = index.service(namespace, &backend.service) {
                upstream.endpoints = service_endpoints(index, svc, &backend.port);
                upstream.service = Some(model_service(svc));
                if anns.service_upstream {
                    match cluster_ip_endpoint(svc, &backend.port) {
                        Ok(endpoint) => upstream.endpoints = vec![endpoint],
                        Err(why) => events.warn(
                            &input.reference,
                            reason::ANNOTATION_IGNORED,
                            format!(
                                "annotation \"{}service-upstream\" is ignored for Service {namespace}/{}: {why}; its endpoints are used",
                                annotations::PREFIX,
                                backend.service
                            ),
                        ),
                    }
                }
            }
            upstreams.insert(backend.upstream.clone(), upstream);
        }
    }
    upstreams
}

/// A `/` location that sends whatever no path matched to `backend`.
fn default_location(backend: &str) -> Location {
    Location {
        path: "/".to_owned(),
        path_type: PathType::Prefix,
        is_def_backend: true,
        ingress_path: "/".to_owned(),
        backend: backend.to_owned(),
        ..Location::default()
    }
}

/// Gives a location the policies of the Ingress's annotations (and its `denied`),
/// keeping its routing fields.
fn apply_annotations(location: &mut Location, anns: &IngressAnnotations) {
    let routing = std::mem::take(location);
    *location = Location {
        path: routing.path,
        path_type: routing.path_type,
        is_def_backend: routing.is_def_backend,
        ingress: routing.ingress,
        ingress_path: routing.ingress_path,
        backend: routing.backend,
        service: routing.service,
        port: routing.port,
        ..anns.location.clone()
    };
}

/// The servers with their `/` default locations, and the hosts' certificates.
fn create_servers(
    index: &Index<'_>,
    inputs: &[IngressInput<'_>],
    default_service: Option<&str>,
    certificates: &mut Certificates,
    events: &mut Events,
) -> (BTreeMap<String, Server>, SslConfiguration) {
    let mut servers = BTreeMap::new();
    let mut root = default_location(DEFAULT_UPSTREAM);
    root.service = default_service.unwrap_or_default().to_owned();
    servers.insert(
        DEFAULT_SERVER.to_owned(),
        Server {
            hostname: DEFAULT_SERVER.to_owned(),
            locations: vec![root],
            ..Server::default()
        },
    );

    for input in inputs.iter().filter(|i| !i.is_canary()) {
        let mut fallback = DEFAULT_UPSTREAM.to_owned();
        if let Some(backend) = &input.default_backend {
            fallback = backend.upstream.clone();
            // As ingress-nginx: every spec.defaultBackend points `_`'s `/` at itself
            // (the last one wins) but only a catch-all (no rules) takes the location
            // over, with its annotations, and keeps later paths from replacing it.
            if let Some(location) = servers
                .get_mut(DEFAULT_SERVER)
                .and_then(|s| s.locations.first_mut())
            {
                location.backend = backend.upstream.clone();
                location.service = backend.service.clone();
                location.port = backend.port.clone();
                location.ingress = Some(input.reference.clone());
                if location.is_def_backend && input.rule_count == 0 {
                    location.is_def_backend = false;
                    // As ingress-nginx: redirects and rewrites of a catch-all are not
                    // applied to the default server.
                    let redirect = std::mem::take(&mut location.redirect);
                    let rewrite = std::mem::take(&mut location.rewrite);
                    apply_annotations(location, &input.annotations);
                    location.redirect = redirect;
                    location.rewrite = rewrite;
                }
            }
        }
        for rule in &input.rules {
            if servers.contains_key(&rule.host) {
                continue;
            }
            let mut location = default_location(&fallback);
            location.ingress = Some(input.reference.clone());
            apply_annotations(&mut location, &input.annotations);
            servers.insert(
                rule.host.clone(),
                Server {
                    hostname: rule.host.clone(),
                    locations: vec![location],
                    ..Server::default()
                },
            );
        }
    }

    host_settings(inputs, &mut servers, events);

    let mut ssl = SslConfiguration::default();
    let mut host_certs: BTreeMap<String, HostCertificate> = servers
        .keys()
        .map(|h| (h.clone(), HostCertificate::Unset))
        .collect();
    for input in inputs.iter().filter(|i| !i.is_canary()) {
        let namespace = input.reference.namespace.as_str();
        for entry in input.tls {
            let Some(secret) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            if let Err(why) = certificates.load(index, namespace, secret) {
                events.warn(
                    &input.reference,
                    reason::INVALID_SECRET,
                    format!(
                        "TLS Secret {namespace}/{secret} cannot be used: {why}; its hosts get the default certificate"
                    ),
                );
            }
        }
        for rule in &input.rules {
            if rule.host == DEFAULT_SERVER {
                continue;
            }
            let Some(state) = host_certs.get_mut(&rule.host) else {
                continue;
            };
            if !matches!(state, HostCertificate::Unset) || input.tls.is_empty() {
                continue;
            }
            let Some(secret) =
                certificates.secret_for_host(index, namespace, input.tls, &rule.host)
            else {
                *state = HostCertificate::Default;
                continue;
            };
            *state = match certificates.load(index, namespace, secret) {
                Err(_) => HostCertificate::Default,
                Ok(cert) if !cert.info.is_valid_for(&rule.host) => {
                    events.warn(
                        &input.reference,
                        reason::CERTIFICATE_MISMATCH,
                        format!(
                            "the certificate of TLS Secret {namespace}/{secret} does not name host {:?}; the host gets the default certificate",
                            rule.host
                        ),
                    );
                    HostCertificate::Default
                }
                Ok(cert) => {
                    ssl.certificates.insert(cert.uid.clone(), cert.pem.clone());
                    ssl.servers.insert(rule.host.clone(), cert.uid.clone());
                    HostCertificate::Mapped(namespace.to_owned(), secret.to_owned())
                }
            };
        }
    }
    // Aliases share their host's certificate when it names them (ingress-nginx's
    // certificate mapping does the same check).
    for server in servers.values() {
        let Some(HostCertificate::Mapped(namespace, secret)) = host_certs.get(&server.hostname)
        else {
            continue;
        };
        let Ok(cert) = certificates.load(index, namespace, secret) else {
            continue;
        };
        for alias in &server.aliases {
            if cert.info.is_valid_for(alias) && !ssl.servers.contains_key(alias) {
                ssl.servers.insert(alias.clone(), cert.uid.clone());
            }
        }
    }
    (servers, ssl)
}

/// `--default-ssl-certificate`: the Secret's certificate becomes the `_` entry of the
/// mapping, served when no host's certificate matches the SNI. An unusable Secret is
/// a Warning on it, and the proxy keeps its generated certificate.
fn default_certificate(
    index: &Index<'_>,
    options: &TranslateOptions,
    certificates: &mut Certificates,
    ssl: &mut SslConfiguration,
    events: &mut Events,
) {
    let Some((namespace, name)) = &options.default_ssl_certificate else {
        return;
    };
    match certificates.load(index, namespace, name) {
        Ok(cert) => {
            ssl.certificates.insert(cert.uid.clone(), cert.pem.clone());
            ssl.servers.insert(DEFAULT_SERVER.to_owned(), cert.uid.clone());
        }
        Err(why) => events.warn_on(
            ObjectKind::Secret,
            namespace,
            name,
            reason::INVALID_SECRET,
            format!(
                "--default-ssl-certificate {namespace}/{name} cannot be used: {why}; the generated certificate is served instead"
            ),
        ),
    }
}

/// Host-wide annotations onto the servers: for each host, the first Ingress (in
/// order) that sets a setting wins. An alias that is a server's name or another
/// server's alias is left out (with a Warning unless it is the host itself).
fn host_settings(
    inputs: &[IngressInput<'_>],
    servers: &mut BTreeMap<String, Server>,
    events: &mut Events,
) {
    let mut claimed: HashSet<String> = servers.keys().cloned().collect();
    let mut created: HashSet<String> = HashSet::new();
    for input in inputs.iter().filter(|i| !i.is_canary()) {
        let anns = &input.annotations.server;
        for rule in &input.rules {
            let Some(server) = servers.get_mut(&rule.host) else {
                continue;
            };
            if created.insert(rule.host.clone()) {
                server.ssl_passthrough = anns.ssl_passthrough;
            }
            if server.aliases.is_empty() {
                for alias in anns.aliases.iter().filter(|a| **a != rule.host) {
                    if claimed.insert(alias.clone()) {
                        server.aliases.push(alias.clone());
                    } else {
                        events.warn(
                            &input.reference,
                            reason::ANNOTATION_IGNORED,
                            format!(
                                "alias {alias:?} of host {:?} is ignored: a server or another alias already has that name",
                                rule.host
                            ),
                        );
                    }
                }
            }
            if server.ssl_ciphers.is_none() {
                server.ssl_ciphers.clone_from(&anns.ssl_ciphers);
            }
            if server.ssl_prefer_server_ciphers.is_none() {
                server.ssl_prefer_server_ciphers = anns.ssl_prefer_server_ciphers;
            }
            if server.certificate_auth.secret.is_none() && anns.certificate_auth.secret.is_some() {
                server.certificate_auth = anns.certificate_auth.clone();
            }
        }
    }
}

/// The hosts whose paths are regexes: those to which an Ingress with `use-regex` or
/// `rewrite-target` contributes (its default location or paths).
fn regex_hosts(inputs: &[IngressInput<'_>], servers: &BTreeMap<String, Server>) -> HashSet<String> {
    let mut hosts = HashSet::new();
    for input in inputs.iter().filter(|i| !i.is_canary()) {
        if !input.annotations.location.rewrite.uses_regex() {
            continue;
        }
        for rule in &input.rules {
            let created = servers
                .get(&rule.host)
                .and_then(|s| s.locations.first())
                .is_some_and(|l| l.ingress.as_ref() == Some(&input.reference));
            let has_paths = rule.paths.as_ref().is_some_and(|p| !p.is_empty());
            if created || has_paths {
                hosts.insert(rule.host.clone());
            }
        }
    }
    hosts
}

/// One location per path (first wins), and cookie affinity onto the backends. A path
/// that is invalid for its host is left out with a Warning before it can take the
/// place of a valid one.
fn create_locations(
    inputs: &[IngressInput<'_>],
    upstreams: &mut BTreeMap<String, Backend>,
    servers: &mut BTreeMap<String, Server>,
    events: &mut Events,
) {
    let regex_mode = regex_hosts(inputs, servers);
    for input in inputs {
        let anns = &input.annotations;
        for rule in &input.rules {
            let Some(paths) = &rule.paths else {
                continue;
            };
            let host = if servers.contains_key(&rule.host) {
                rule.host.as_str()
            } else {
                DEFAULT_SERVER
            };
            for path in paths {
                let Some(upstream) = upstreams.get_mut(&path.backend.upstream) else {
                    continue;
                };
                // Canary backends own no location.
                if upstream.no_server {
                    continue;
                }
                let regex = regex_mode.contains(host);
                if let Err(why) = check_path(&path.path, path.path_type, regex) {
                    events.warn(
                        &input.reference,
                        reason::INVALID_PATH,
                        format!("path {:?} of host {host:?} is ignored: {why}", path.path),
                    );
                    continue;
                }
                let mut cookie_hosts = vec![host.to_owned()];
                if let Some(server) = servers.get_mut(host) {
                    if add_location(server, input, path) && anns.server.redirect_from_to_www {
                        server.redirect_from_to_www = true;
                    }
                    cookie_hosts.extend(server.aliases.iter().cloned());
                }
                apply_affinity(upstream, anns, &cookie_hosts, &path.path);
            }
        }
    }
}

/// Adds (or takes over the default location for) one path; false when an earlier
/// Ingress has it.
fn add_location(server: &mut Server, input: &IngressInput<'_>, path: &PathRule) -> bool {
    let existing = server
        .locations
        .iter_mut()
        .find(|l| l.path == path.path && comparable(l.path_type) == comparable(path.path_type));
    let location = match existing {
        // Taken by an earlier path: first wins.
        Some(location) if !location.is_def_backend => return false,
        // The host's default location: this path replaces it.
        Some(location) => location,
        None => {
            server.locations.push(Location::default());
            let Some(location) = server.locations.last_mut() else {
                return false;
            };
            location.path = path.path.clone();
            location.ingress_path = path.path.clone();
            location
        }
    };
    location.path_type = path.path_type;
    location.is_def_backend = false;
    location.backend = path.backend.upstream.clone();
    location.service = path.backend.service.clone();
    location.port = path.backend.port.clone();
    location.ingress = Some(input.reference.clone());
    apply_annotations(location, &input.annotations);
    true
}

/// ingress-nginx's affinity bookkeeping: the first Ingress to set an affinity type or
/// mode on a backend wins; every path with cookie affinity rewrites the cookie
/// settings (the last one wins) and adds itself to the cookie's locations, under its
/// host and the host's aliases.
fn apply_affinity(upstream: &mut Backend, anns: &IngressAnnotations, hosts: &[String], path: &str) {
    let config = &mut upstream.session_affinity_config;
    if config.name.is_empty() {
        config.name.clone_from(&anns.affinity.name);
    }
    if config.mode.is_empty() {
        config.mode.clone_from(&anns.affinity.mode);
    }
    if anns.affinity.name != "cookie" {
        return;
    }
    let locations = std::mem::take(&mut config.cookie_session_affinity.locations);
    config.cookie_session_affinity = anns.affinity.cookie_session_affinity.clone();
    config.cookie_session_affinity.locations = locations;
    for host in hosts {
        let paths = config
            .cookie_session_affinity
            .locations
            .entry(host.clone())
            .or_default();
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_owned());
        }
    }
}

/// `default-backend`: a location whose backend has no endpoints, or that has custom
/// errors, gets `custom-default-backend-<namespace>-<service>`, a copy of its backend
/// with the endpoints of the annotation's Service (first port), as its
/// `defaultBackendUpstreamName`; without endpoints of its own, the location is served
/// by it. A Service without endpoints changes nothing (ingress-nginx's rule).
fn default_backends(
    index: &Index<'_>,
    inputs: &[IngressInput<'_>],
    upstreams: &mut BTreeMap<String, Backend>,
    servers: &mut BTreeMap<String, Server>,
    events: &mut Events,
) {
    let by_ref: HashMap<(&str, &str), &IngressInput<'_>> = inputs
        .iter()
        .map(|i| {
            (
                (i.reference.namespace.as_str(), i.reference.name.as_str()),
                i,
            )
        })
        .collect();
    for server in servers.values_mut() {
        let default_server = server.hostname == DEFAULT_SERVER;
        for location in &mut server.locations {
            // `_`'s own `/` carries no Ingress's annotations (unless a catch-all).
            if default_server && location.is_def_backend {
                continue;
            }
            let Some(input) = location
                .ingress
                .as_ref()
                .and_then(|r| by_ref.get(&(r.namespace.as_str(), r.name.as_str())))
            else {
                continue;
            };
            let Some(service_name) = &input.annotations.default_backend else {
                continue;
            };
            if location.backend == DEFAULT_UPSTREAM {
                continue;
            }
            let Some(primary) = upstreams.get(&location.backend) else {
                continue;
            };
            let primary_empty = primary.endpoints.is_empty();
            if !primary_empty && location.custom_http_errors.is_empty() {
                continue;
            }
            let namespace = input.reference.namespace.as_str();
            let Some(svc) = index.service(namespace, service_name) else {
                continue;
            };
            // The Service's first port names the copy; one the API server would not
            // have admitted (outside 1..=65535) makes the annotation unusable.
            let Some(port) = svc
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .and_then(|p| p.first())
                .map(|p| p.port)
                .filter(|p| (1..=65535).contains(p))
            else {
                continue;
            };
            let endpoints = first_port_endpoints(index, svc);
            if endpoints.is_empty() {
                continue;
            }
            let name = format!("custom-default-backend-{namespace}-{service_name}");
            if name.len() > MAX_BACKEND_NAME_LEN || check_text(&name).is_err() {
                events.warn(
                    &input.reference,
                    reason::ANNOTATION_IGNORED,
                    format!(
                        "annotation \"{}default-backend\" is ignored: the backend name would be longer than {MAX_BACKEND_NAME_LEN} bytes",
                        annotations::PREFIX
                    ),
                );
                continue;
            }
            if !upstreams.contains_key(&name) {
                let copy = Backend {
                    name: name.clone(),
                    port: IntOrString::Int(i64::from(port)),
                    service: Some(model_service(svc)),
                    endpoints,
                    no_server: false,
                    traffic_shaping_policy: TrafficShapingPolicy::default(),
                    alternative_backends: Vec::new(),
                    ..primary.clone()
                };
                upstreams.insert(name.clone(), copy);
            }
            location.default_backend_upstream_name.clone_from(&name);
            if primary_empty {
                location.backend = name;
            }
        }
    }
}
