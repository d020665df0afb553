//! The `nginx.ingress.kubernetes.io/*` annotations of one Ingress, parsed into typed
//! values, one parser per annotation (Part B §5.2), grouped by concern:
//! [`balancing`] (load balancing, affinity, canary), [`redirect`], [`auth`] (basic and
//! digest, external, client certificates), [`cors`], [`limits`] (rates and source
//! ranges), [`proxy`] (`proxy-*`, `backend-protocol`, upstream TLS), [`headers`],
//! [`backend`] (`default-backend`, `service-upstream`, custom errors), [`server`]
//! (host-wide settings) and [`misc`].
//!
//! Rules that apply to every annotation (Part A.3):
//! - a value containing CR, LF or NUL is rejected, whatever the annotation;
//! - a rejected value is not used: the Ingress's locations are denied (503) with the
//!   first reason, and each rejection is a Warning event naming the annotation;
//! - `*-snippet` annotations (raw nginx configuration) are ignored with a Warning;
//! - an empty value means "not set", as it does for ingress-nginx's parsers;
//! - Secrets and ConfigMaps are named `<namespace>/<name>` or `<name>` (the Ingress's
//!   namespace); another namespace is refused, as ingress-nginx does without
//!   `allow-cross-namespace-resources`. A missing object or key denies: security
//!   annotations fail closed;
//! - settings whose group is off (`auth-signin` without `auth-url`, `auth-tls-*`
//!   without `auth-tls-secret`), and values ingress-nginx replaces by its default (a
//!   redirect code out of range, an absolute `app-root`), are ignored with a Warning
//!   without denying anything.
//!
//! Values are checked with the model's own validators (directly, or by validating the
//! model type with only that field set), so whatever is accepted here also passes
//! `gangplank_model::Validate` on the resulting configuration. Where ingress-nginx
//! takes a ConfigMap default when an annotation is absent, the model field is an
//! `Option` left at `None`: the data plane reads the default from `GeneralConfig`.

// Not translated (the model has no field for them, or a flag they need does not exist
// yet); they are ignored silently:
// enable-opentelemetry, opentelemetry-trust-incoming-span, opentelemetry-operation-name,
// enable-opentracing, opentracing-trust-incoming-span, http2-push-preload,
// enable-custom-http-errors (an empty location list means "the ConfigMap's codes", so
// "disabled" has no representation),
// fastcgi-index, fastcgi-params-configmap, enable-modsecurity, enable-owasp-core-rules,
// modsecurity-transaction-id, global-rate-limit*, enable-influxdb and influxdb-*,
// and the annotations removed from ingress-nginx (secure-backends, grpc-backend,
// add-base-url, base-url-scheme, session-cookie-hash, mirror-uri).

mod auth;
mod backend;
mod balancing;
mod cors;
mod headers;
mod limits;
mod misc;
mod proxy;
mod redirect;
mod server;

use std::collections::BTreeMap;

use gangplank_model::validate::{Validate, check_text};
use gangplank_model::{
    GeneralConfig, IngressRef, LoadBalance, Location, SessionAffinityConfig, TrafficShapingPolicy,
    UpstreamHashByConfig,
};
use k8s_openapi::api::core::v1::ConfigMap;

use crate::events::{Events, reason, truncate};
use crate::state::Index;

pub(crate) use auth::cache_durations;
pub use balancing::DEFAULT_COOKIE_NAME;
pub(crate) use server::ServerAnnotations;

/// The annotation prefix (ingress-nginx's default `--annotations-prefix`).
pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// Longest `denied` reason carried in a location.
const MAX_REASON_LEN: usize = 512;

/// What the parsers may look up besides the annotations.
pub(crate) struct Context<'a> {
    /// Services and Secrets.
    pub(crate) index: &'a Index<'a>,
    /// ConfigMaps referenced by annotations (`custom-headers`, `auth-proxy-set-headers`).
    pub(crate) config_maps: &'a [std::sync::Arc<ConfigMap>],
    /// The global settings (`global-allowed-response-headers`).
    pub(crate) general: &'a GeneralConfig,
}

/// What the annotations of one Ingress say.
#[derive(Debug, Clone, Default)]
pub(crate) struct IngressAnnotations {
    /// `load-balance`.
    pub(crate) load_balance: Option<LoadBalance>,
    /// `upstream-hash-by`, `-subset`, `-subset-size` (size 3 when unset).
    pub(crate) hash_by: UpstreamHashByConfig,
    /// `affinity`, `affinity-mode`, `session-cookie-*` (cookie locations empty).
    pub(crate) affinity: SessionAffinityConfig,
    /// `affinity-canary-behavior`: true for `sticky` (the default).
    pub(crate) canary_sticky: bool,
    /// `canary: "true"` and its policy (`canary-by-*`, `canary-weight*`).
    pub(crate) canary: Option<TrafficShapingPolicy>,
    /// Every location policy (and `denied`), as a location whose routing fields are
    /// unset: copied into each location the Ingress contributes.
    pub(crate) location: Location,
    /// Host-wide settings (`server-alias`, `ssl-ciphers`, `auth-tls-*`...).
    pub(crate) server: ServerAnnotations,
    /// `service-upstream`: the Service's ClusterIP is the backend's only endpoint.
    pub(crate) service_upstream: bool,
    /// `default-backend`: a Service of the Ingress's namespace that serves when the
    /// location's backend has no endpoints, and its custom errors.
    pub(crate) default_backend: Option<String>,
}

/// Reads the prefixed annotations, remembering each rejection.
pub(crate) struct Reader<'a> {
    /// Usable values by short name (without the prefix); rejected ones are removed.
    values: BTreeMap<&'a str, &'a str>,
    /// (short name, reason) of rejected values, in the order found.
    problems: Vec<(String, String)>,
    /// Messages about values ignored without denying, in the order found.
    ignored: Vec<String>,
    /// The Ingress's namespace, where referenced objects must be.
    namespace: &'a str,
}

impl<'a> Reader<'a> {
    /// The value of `name`, unless unset, empty or rejected.
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        self.values.get(name).copied().filter(|v| !v.is_empty())
    }

    /// True when `name` has a usable value.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The first of `names` that has a value (an annotation and its aliases), else
    /// the first name.
    pub(crate) fn first_of(&self, names: &[&'static str]) -> &'static str {
        names
            .iter()
            .copied()
            .find(|n| self.has(n))
            .unwrap_or(names[0])
    }

    /// Rejects `name`: its value is dropped and the Ingress denied.
    pub(crate) fn reject(&mut self, name: &str, reason: impl Into<String>) {
        self.values.remove(name);
        self.problems.push((name.to_owned(), reason.into()));
    }

    /// Ignores `name` with a Warning, without denying anything.
    pub(crate) fn ignore(&mut self, name: &str, reason: impl Into<String>) {
        self.values.remove(name);
        self.ignored.push(format!(
            "annotation \"{PREFIX}{name}\" is ignored: {}",
            reason.into()
        ));
    }

    /// Ignores every one of `names` that is set, saying why.
    pub(crate) fn ignore_all(&mut self, names: &[&str], why: &str) {
        for name in names {
            if self.has(name) {
                self.ignore(name, why);
            }
        }
    }

    /// The value of `name` converted by `parse`; an error rejects it.
    pub(crate) fn with<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.get(name)?;
        match parse(value) {
            Ok(t) => Some(t),
            Err(e) => {
                self.reject(name, e);
                None
            }
        }
    }

    /// A string checked by `check`.
    pub(crate) fn text(
        &mut self,
        name: &str,
        check: impl FnOnce(&str) -> Result<(), String>,
    ) -> Option<String> {
        self.with(name, |value| check(value).map(|()| value.to_owned()))
    }

    /// A value of a type that parses itself (sizes, durations, protocols...).
    pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(&mut self, name: &str) -> Option<T> {
        self.with(name, str::parse)
    }

    /// A boolean, spelled as Go's `strconv.ParseBool` accepts.
    pub(crate) fn boolean(&mut self, name: &str) -> Option<bool> {
        self.with(name, parse_bool)
    }

    /// `on` or `off` (nginx's flags, as ingress-nginx writes `proxy-buffering`), or a
    /// boolean.
    pub(crate) fn on_off(&mut self, name: &str) -> Option<bool> {
        self.with(name, |value| match value.to_ascii_lowercase().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => parse_bool(value).map_err(|_| format!("{value:?} is not \"on\" or \"off\"")),
        })
    }

    /// A decimal integer in `min..=max`.
    pub(crate) fn integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        self.with(name, |value| match value.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!("{value:?} is not an integer in {min}..={max}")),
        })
    }

    /// A decimal integer that fits a `u32`.
    pub(crate) fn count(&mut self, name: &str) -> Option<u32> {
        self.integer(name, 0, i64::from(u32::MAX))
            .and_then(|n| u32::try_from(n).ok())
    }

    /// One of a fixed set of words.
    pub(crate) fn choice<T: Copy>(&mut self, name: &str, options: &[(&str, T)]) -> Option<T> {
        self.with(name, |value| {
            if let Some((_, t)) = options.iter().find(|(word, _)| *word == value) {
                return Ok(*t);
            }
            let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
            Err(format!("{value:?} is not one of {}", words.join(", ")))
        })
    }

    /// A list separated by `separator` (blank entries dropped, entries trimmed), each
    /// entry checked by `check`; one bad entry rejects the whole list.
    pub(crate) fn list(
        &mut self,
        name: &str,
        separator: char,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<Vec<String>> {
        self.with(name, |value| {
            let entries = split_list(value, separator);
            for entry in &entries {
                check(entry)?;
            }
            if entries.is_empty() {
                return Err(format!("{value:?} lists nothing"));
            }
            Ok(entries)
        })
    }

    /// `<namespace>/<name>` or `<name>` of an object of the Ingress's namespace.
    pub(crate) fn reference(&mut self, name: &str, kind: &str) -> Option<(String, String)> {
        let own = self.namespace;
        self.with(name, |value| {
            let (namespace, object) = match value.split_once('/') {
                Some((ns, object)) => (ns, object),
                None => (own, value),
            };
            check_dns_label(namespace, "namespace")?;
            check_dns_subdomain(object, &format!("{kind} name"))?;
            if namespace != own {
                return Err(format!(
                    "{kind} {namespace}/{object} is in another namespace; only objects of the Ingress's namespace {own:?} may be used"
                ));
            }
            Ok((namespace.to_owned(), object.to_owned()))
        })
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "{value:?} is not a boolean (\"true\" or \"false\")"
        )),
    }
}

/// Entries of a `separator`-separated list, trimmed, blanks dropped.
pub(crate) fn split_list(value: &str, separator: char) -> Vec<String> {
    value
        .split(separator)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The first problem the model's validation finds in `value`, as a message.
pub(crate) fn model_check<T: Validate + ?Sized>(value: &T) -> Result<(), String> {
    value.validate().map_err(|problems| {
        problems
            .first()
            .map_or_else(|| problems.to_string(), |p| p.message.clone())
    })
}

/// Checks a location policy by validating a location that has only it set.
pub(crate) fn location_check(set: impl FnOnce(&mut Location)) -> Result<(), String> {
    let mut location = Location {
        path: "/".to_owned(),
        backend: "check".to_owned(),
        ..Location::default()
    };
    set(&mut location);
    model_check(&location)
}

/// A Kubernetes namespace: a DNS-1123 label (the model's own check).
pub(crate) use gangplank_model::policy::check_dns_label;

/// A Kubernetes object name: a DNS-1123 subdomain (never a path).
pub(crate) use gangplank_model::policy::check_dns_subdomain;

/// The ConfigMap `namespace/name`, first one wins.
pub(crate) fn find_config_map<'c>(
    config_maps: &'c [std::sync::Arc<ConfigMap>],
    namespace: &str,
    name: &str,
) -> Option<&'c ConfigMap> {
    config_maps
        .iter()
        .find(|cm| {
            crate::state::namespace(&cm.metadata) == namespace
                && crate::state::name(&cm.metadata) == name
        })
        .map(|cm| &**cm)
}

/// Parses the annotations of one Ingress. Problems become Warning events on
/// `ingress` and a `denied` reason; values that were rejected are left at their
/// defaults, so the result is always valid.
pub(crate) fn parse(
    annotations: Option<&BTreeMap<String, String>>,
    ingress: &IngressRef,
    context: &Context<'_>,
    events: &mut Events,
) -> IngressAnnotations {
    let mut reader = Reader {
        values: BTreeMap::new(),
        problems: Vec::new(),
        ignored: Vec::new(),
        namespace: &ingress.namespace,
    };
    for (key, value) in annotations.into_iter().flatten() {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        if name.ends_with("-snippet") {
            events.warn(
                ingress,
                reason::SNIPPET_IGNORED,
                format!(
                    "annotation {key:?} is ignored: Gangplank never accepts raw nginx configuration"
                ),
            );
            continue;
        }
        reader.values.insert(name, value.as_str());
        if value.contains(['\r', '\n', '\0']) {
            reader.reject(name, "the value contains CR, LF or NUL");
        }
    }

    let mut parsed = IngressAnnotations {
        load_balance: balancing::load_balance(&mut reader),
        hash_by: balancing::hash_by(&mut reader),
        affinity: balancing::affinity(&mut reader),
        canary_sticky: balancing::canary_sticky(&mut reader),
        canary: None,
        location: Location::default(),
        server: ServerAnnotations::default(),
        service_upstream: false,
        default_backend: None,
    };
    parsed.canary = balancing::canary(&mut reader);
    parse_location(&mut reader, context, &mut parsed);
    parsed.server = server::parse(&mut reader, &parsed.location);
    backend::parse(&mut reader, context, &mut parsed);
    recheck(&mut parsed, &mut reader);

    for message in &reader.ignored {
        events.warn(ingress, reason::ANNOTATION_IGNORED, message);
    }
    for (name, why) in &reader.problems {
        events.warn(
            ingress,
            reason::INVALID_ANNOTATION,
            format!(
                "annotation \"{PREFIX}{name}\" is invalid: {why}; the locations of this Ingress answer 503 until it is fixed"
            ),
        );
    }
    parsed.location.denied = reader.problems.first().map(|(name, why)| {
        let more = match reader.problems.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        truncate(
            &format!("annotation \"{PREFIX}{name}\": {why}{more}"),
            MAX_REASON_LEN,
        )
    });
    parsed
}

/// Every location policy, into `parsed.location`.
fn parse_location(reader: &mut Reader<'_>, context: &Context<'_>, parsed: &mut IngressAnnotations) {
    let location = &mut parsed.location;
    location.rewrite = redirect::rewrite(reader);
    location.redirect = redirect::redirect(reader);
    location.backend_protocol = proxy::backend_protocol(reader);
    location.proxy = proxy::proxy(reader);
    location.client_body_buffer_size = reader.parsed("client-body-buffer-size");
    location.proxy_ssl = proxy::proxy_ssl(reader, context);
    location.allowlist = limits::allowlist(reader);
    location.denylist = limits::denylist(reader);
    location.rate_limit = limits::rate_limit(reader);
    location.basic_digest_auth = auth::basic_digest(reader, context);
    location.external_auth = auth::external(reader, context);
    location.enable_global_auth = reader.boolean("enable-global-auth").unwrap_or(true);
    location.certificate_auth = auth::certificate(reader, context);
    location.cors_config = cors::cors(reader);
    location.upstream_vhost = headers::upstream_vhost(reader);
    location.custom_headers = headers::custom_headers(reader, context);
    location.x_forwarded_prefix = headers::x_forwarded_prefix(reader);
    location.connection = headers::connection(reader);
    location.custom_http_errors = backend::custom_http_errors(reader);
    location.disable_proxy_intercept_errors = reader
        .boolean("disable-proxy-intercept-errors")
        .unwrap_or(false);
    location.logs = misc::logs(reader);
    location.satisfy = misc::satisfy(reader);
    // The ConfigMap's `use-port-in-redirects` is the default, as in ingress-nginx.
    location.use_port_in_redirects = reader
        .boolean("use-port-in-redirects")
        .unwrap_or_else(|| context.general.use_port_in_redirects());
    location.mirror = misc::mirror(reader);
}

/// Belt and braces: every group must pass the model's validation as a whole. A group
/// that does not (a combination the per-annotation checks missed) is reset to its
/// default and denies the Ingress like any rejected annotation, under the name of the
/// group's main annotation.
fn recheck(parsed: &mut IngressAnnotations, reader: &mut Reader<'_>) {
    balancing::recheck(parsed, reader);
    let location = &mut parsed.location;
    macro_rules! group {
        ($field:ident, $annotation:expr) => {
            if let Err(why) = model_check(&location.$field) {
                reader.reject($annotation, why);
                location.$field = Default::default();
            }
        };
    }
    group!(rewrite, "rewrite-target");
    group!(redirect, "permanent-redirect");
    group!(proxy, "proxy-body-size");
    group!(proxy_ssl, "proxy-ssl-secret");
    group!(allowlist, "allowlist-source-range");
    group!(denylist, "denylist-source-range");
    group!(rate_limit, "limit-rps");
    group!(basic_digest_auth, "auth-type");
    group!(external_auth, "auth-url");
    group!(certificate_auth, "auth-tls-secret");
    group!(cors_config, "enable-cors");
    group!(custom_headers, "custom-headers");
    group!(mirror, "mirror-target");
    if let Err(why) = model_check(&parsed.server.certificate_auth) {
        reader.reject("auth-tls-secret", why);
        parsed.server.certificate_auth = Default::default();
    }
    // The whole location last: anything still wrong resets every policy.
    let whole = |l: &mut Location| {
        *l = Location {
            path: std::mem::take(&mut l.path),
            backend: std::mem::take(&mut l.backend),
            ..parsed.location.clone()
        };
    };
    if let Err(why) = location_check(whole) {
        reader.reject("(location policies)", why);
        parsed.location = Location::default();
    }
    if let Some(ciphers) = &parsed.server.ssl_ciphers
        && let Err(why) = gangplank_model::policy::check_cipher_list(ciphers)
    {
        reader.reject("ssl-ciphers", why);
        parsed.server.ssl_ciphers = None;
    }
    let bad_alias = parsed
        .server
        .aliases
        .iter()
        .find_map(|a| server::check_alias(a).err());
    if let Some(why) = bad_alias {
        reader.reject("server-alias", why);
        parsed.server.aliases.clear();
    }
}

/// The text of a ConfigMap's `data`, checked for control characters in names (values
/// are checked by whoever uses them).
pub(crate) fn config_map_data(config_map: &ConfigMap) -> Result<BTreeMap<String, String>, String> {
    let data = config_map.data.clone().unwrap_or_default();
    for key in data.keys() {
        check_text(key).map_err(|e| format!("key {key:?}: {e}"))?;
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ClusterState;

    /// A certificate and its key (PEM), valid for example.com.
    pub(crate) const CERT: &str = include_str!("../../../model/tests/fixtures/example.com.crt");
    pub(crate) const KEY: &str = include_str!("../../../model/tests/fixtures/example.com.key");

    /// A Secret with `stringData`.
    pub(crate) fn secret(
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
    ) -> std::sync::Arc<k8s_openapi::api::core::v1::Secret> {
        std::sync::Arc::new(k8s_openapi::api::core::v1::Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..Default::default()
            },
            string_data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        })
    }

    /// A ConfigMap.
    pub(crate) fn config_map(
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
    ) -> std::sync::Arc<ConfigMap> {
        std::sync::Arc::new(ConfigMap {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        })
    }

    pub(crate) fn parse_map(pairs: &[(&str, &str)]) -> (IngressAnnotations, Vec<crate::Event>) {
        parse_in(&ClusterState::default(), pairs)
    }

    pub(crate) fn parse_in(
        state: &ClusterState,
        pairs: &[(&str, &str)],
    ) -> (IngressAnnotations, Vec<crate::Event>) {
        let general = GeneralConfig {
            global_allowed_response_headers: Some(vec!["X-Allowed".to_owned()]),
            ..GeneralConfig::default()
        };
        parse_with(state, &general, pairs)
    }

    /// Parses `pairs` with the ConfigMap settings `general`.
    pub(crate) fn parse_with(
        state: &ClusterState,
        general: &GeneralConfig,
        pairs: &[(&str, &str)],
    ) -> (IngressAnnotations, Vec<crate::Event>) {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect();
        let ingress = IngressRef {
            namespace: "ns".into(),
            name: "ing".into(),
        };
        let index = Index::new(state);
        let context = Context {
            index: &index,
            config_maps: &state.config_maps,
            general,
        };
        let mut events = Events::default();
        let parsed = parse(Some(&map), &ingress, &context, &mut events);
        (parsed, events.into_vec())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let (a, events) = parse_map(&[]);
        assert!(events.is_empty());
        assert_eq!(a.location.denied, None);
        assert_eq!(a.hash_by.upstream_hash_by_subset_size, 3);
        assert_eq!(a.affinity.cookie_session_affinity.name, "INGRESSCOOKIE");
        assert!(a.canary_sticky);
        assert!(a.canary.is_none());
        // Global auth applies unless an Ingress opts out.
        let expected = Location {
            enable_global_auth: true,
            ..Location::default()
        };
        assert_eq!(a.location, expected);
        assert!(!a.service_upstream);
    }

    #[test]
    fn control_characters_are_rejected_everywhere() {
        let (a, events) = parse_map(&[("not-translated", "a\r\nb"), ("rewrite-target", "/\n")]);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(a.location.denied.is_some());
        assert_eq!(a.location.rewrite.target, None);
    }

    #[test]
    fn snippets_are_ignored_with_a_warning() {
        let (a, events) = parse_map(&[("configuration-snippet", "more_set_headers \"a: b\";\n")]);
        assert_eq!(a.location.denied, None);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, reason::SNIPPET_IGNORED);
    }

    #[test]
    fn references_stay_in_the_namespace() {
        let (a, events) =
            parse_map(&[("auth-type", "basic"), ("auth-secret", "kube-system/admin")]);
        let denied = a.location.denied.unwrap();
        assert!(denied.contains("auth-secret"), "{denied}");
        assert!(denied.contains("another namespace"), "{denied}");
        assert!(!a.location.basic_digest_auth.is_enabled());
        assert_eq!(events.len(), 1, "{events:?}");
        for bad in ["../x", "ns/a/b", "NS/x", "x/", "/x"] {
            let (a, _) = parse_map(&[("auth-type", "basic"), ("auth-secret", bad)]);
            assert!(a.location.denied.is_some(), "{bad}");
        }
    }

    #[test]
    fn lists_and_words() {
        assert_eq!(split_list(" a, b ,,c ", ','), ["a", "b", "c"]);
        assert!(check_dns_subdomain("a.b-c", "x").is_ok());
        assert!(check_dns_subdomain("a..b", "x").is_err());
        assert!(check_dns_label("kube-system", "x").is_ok());
        assert!(check_dns_label("a.b", "x").is_err());
    }
}
