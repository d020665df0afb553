//! `Backend` and its parts: one element of the `/configuration/backends` array, in the
//! JSON shape ingress-nginx's controller sends to its Lua balancer (Part B §2.1–2.5).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::expr::ComplexValue;
use crate::int_or_string::{IntOrString, string_or_number};
use crate::json::null_as_default;
use crate::service::Service;
use crate::validate::{
    Path, Report, Validate, check_cookie_name, check_header_name, check_header_value,
    check_hostname, check_port_text, check_regex, check_text,
};

/// An upstream: a named set of endpoints plus how to balance over them.
///
/// Field names are exactly ingress-nginx's (`load-balance` is hyphenated); unknown
/// fields sent by other controller versions are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// Upstream name, `<namespace>-<service>-<port>` by convention.
    pub name: String,
    /// The Service behind the backend (only `spec` is meaningful).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// The service port, a number or a port name.
    #[serde(default)]
    pub port: IntOrString,
    /// TLS is terminated by the endpoints.
    #[serde(default)]
    pub ssl_passthrough: bool,
    /// Live endpoints; omitted when there are none.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub endpoints: Vec<Endpoint>,
    /// Cookie affinity settings (always present).
    #[serde(default)]
    pub session_affinity_config: SessionAffinityConfig,
    /// Consistent-hash settings (always present).
    #[serde(default)]
    pub upstream_hash_by_config: UpstreamHashByConfig,
    /// Balancing algorithm; absent means round robin.
    #[serde(
        rename = "load-balance",
        default,
        deserialize_with = "load_balance_or_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub load_balance: Option<LoadBalance>,
    /// True for canary (alternative) backends, which own no server or location.
    #[serde(default)]
    pub no_server: bool,
    /// Canary policy, meaningful on an alternative backend.
    #[serde(default)]
    pub traffic_shaping_policy: TrafficShapingPolicy,
    /// Names of canary backends attached to this primary; only the first is used.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub alternative_backends: Vec<String>,
    /// Upstream CA settings sent by older controllers; kept so they round-trip.
    #[serde(
        rename = "secureCACert",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secure_ca_cert: Option<SecureCaCert>,
}

/// One upstream address. `port` is a string, as ingress-nginx writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Endpoint {
    /// An IP address, or a DNS name for ExternalName services.
    pub address: String,
    /// The port number, as text (`"8080"`); a JSON number is accepted too.
    #[serde(deserialize_with = "string_or_number")]
    pub port: String,
}

/// `sessionAffinityConfig`: cookie affinity (`affinity: cookie`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAffinityConfig {
    /// `cookie` or empty.
    #[serde(default)]
    pub name: String,
    /// `balanced` (default) or `persistent`.
    #[serde(default)]
    pub mode: String,
    /// The cookie's settings.
    #[serde(default)]
    pub cookie_session_affinity: CookieSessionAffinity,
}

/// `cookieSessionAffinity`: the sticky cookie's name and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CookieSessionAffinity {
    /// Cookie name (`INGRESSCOOKIE` by the annotation's default).
    #[serde(default)]
    pub name: String,
    /// Seconds from now for the `Expires` attribute.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expires: String,
    /// `Max-Age` seconds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub maxage: String,
    /// Hosts (including aliases) and paths on which the cookie may be set.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub locations: BTreeMap<String, Vec<String>>,
    /// Force `Secure`; when false, `Secure` is set iff the request came over TLS.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secure: bool,
    /// Cookie `Path`; empty means the location's path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Cookie `Domain`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// `None`, `Lax` or `Strict`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub samesite: String,
    /// Drop `SameSite=None` for user agents that mishandle it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub conditional_samesite_none: bool,
    /// Pick a new endpoint after an upstream failure.
    #[serde(default, skip_serializing_if = "is_false")]
    pub change_on_failure: bool,
}

/// `upstreamHashByConfig`: consistent hashing (`upstream-hash-by`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpstreamHashByConfig {
    /// nginx variable expression, e.g. `$request_uri`.
    #[serde(
        rename = "upstream-hash-by",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub upstream_hash_by: String,
    /// Use chashsubset.
    #[serde(
        rename = "upstream-hash-by-subset",
        default,
        skip_serializing_if = "is_false"
    )]
    pub upstream_hash_by_subset: bool,
    /// Subset size; 0 means the default, 3.
    #[serde(
        rename = "upstream-hash-by-subset-size",
        default,
        skip_serializing_if = "is_zero"
    )]
    pub upstream_hash_by_subset_size: i64,
}

impl UpstreamHashByConfig {
    /// The subset size chashsubset uses: the configured one, or 3.
    pub fn subset_size(&self) -> usize {
        match usize::try_from(self.upstream_hash_by_subset_size) {
            Ok(n) if n > 0 => n,
            _ => 3,
        }
    }
}

/// `trafficShapingPolicy`: how much and which traffic goes to a canary backend.
/// Every field is always emitted, as ingress-nginx does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficShapingPolicy {
    /// `canary-weight`.
    #[serde(default)]
    pub weight: i64,
    /// `canary-weight-total`; Gangplank honours any value >= 1 (Part A.2 fix).
    #[serde(default)]
    pub weight_total: i64,
    /// `canary-by-header`.
    #[serde(default)]
    pub header: String,
    /// `canary-by-header-value`.
    #[serde(default)]
    pub header_value: String,
    /// `canary-by-header-pattern` (unanchored regex).
    #[serde(default)]
    pub header_pattern: String,
    /// `canary-by-cookie`.
    #[serde(default)]
    pub cookie: String,
}

impl TrafficShapingPolicy {
    /// The weight denominator: `weightTotal` when set, else 100.
    pub fn effective_weight_total(&self) -> i64 {
        if self.weight_total >= 1 {
            self.weight_total
        } else {
            100
        }
    }
}

/// `secureCACert` as older controllers send it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecureCaCert {
    /// `<namespace>/<name>` of the CA Secret.
    #[serde(default)]
    pub secret: String,
    /// File name the controller wrote the CA to.
    #[serde(default)]
    pub ca_filename: String,
    /// SHA of the PEM.
    #[serde(default)]
    pub pem_sha: String,
}

/// The balancing algorithms of ingress-nginx (`load-balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalance {
    /// Interleaved round robin (the default).
    RoundRobin,
    /// Peak EWMA of response times, power of two choices.
    Ewma,
    /// Consistent hashing on `upstream-hash-by`.
    Chash,
    /// Consistent hashing onto subsets, uniform inside the subset.
    Chashsubset,
    /// Sticky cookie; sessions rebalance on scale.
    StickyBalanced,
    /// Sticky cookie; sessions never move while their endpoint lives.
    StickyPersistent,
}

impl LoadBalance {
    /// The name ingress-nginx uses.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalance::RoundRobin => "round_robin",
            LoadBalance::Ewma => "ewma",
            LoadBalance::Chash => "chash",
            LoadBalance::Chashsubset => "chashsubset",
            LoadBalance::StickyBalanced => "sticky_balanced",
            LoadBalance::StickyPersistent => "sticky_persistent",
        }
    }
}

fn load_balance_or_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<LoadBalance>, D::Error> {
    use serde::de::{Error, IntoDeserializer};
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    LoadBalance::deserialize(text.as_str().into_deserializer()).map(Some).map_err(
        |_: serde::de::value::Error| {
            D::Error::custom(format!(
                "unknown load-balance {text:?}; expected one of round_robin, ewma, chash, chashsubset, sticky_balanced, sticky_persistent"
            ))
        },
    )
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Backend {
    /// The balancer implementation this backend gets, with ingress-nginx's precedence
    /// (Part B §3.2): cookie affinity > upstream-hash-by > load-balance > round robin.
    pub fn balancer(&self) -> LoadBalance {
        let affinity = &self.session_affinity_config;
        if affinity.name == "cookie" {
            return if affinity.mode == "persistent" {
                LoadBalance::StickyPersistent
            } else {
                LoadBalance::StickyBalanced
            };
        }
        let hash = &self.upstream_hash_by_config;
        if !hash.upstream_hash_by.is_empty() {
            return if hash.upstream_hash_by_subset {
                LoadBalance::Chashsubset
            } else {
                LoadBalance::Chash
            };
        }
        self.load_balance.unwrap_or(LoadBalance::RoundRobin)
    }

    /// True when the Service is of type ExternalName (endpoints are DNS names).
    pub fn is_external_name(&self) -> bool {
        self.service
            .as_ref()
            .and_then(|s| s.spec.type_.as_deref())
            .is_some_and(|t| t == "ExternalName")
    }
}

/// Longest accepted backend name (`<ns>-<service>-<port>` fits easily).
pub const MAX_BACKEND_NAME_LEN: usize = 512;

/// Validates a whole `/configuration/backends` array: every backend, unique names, and
/// canary references that point at a backend of the same array.
pub fn validate_backends(backends: &[Backend], path: &Path<'_>, report: &mut Report) {
    let mut seen: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(backends.len());
    for (i, backend) in backends.iter().enumerate() {
        let at = path.index(i);
        backend.validate_at(&at, report);
        if let Some(first) = seen.insert(backend.name.as_str(), i) {
            report.add(
                &at.field("name"),
                format!(
                    "duplicate backend name {:?} (also at index {first})",
                    backend.name
                ),
            );
        }
    }
    for (i, backend) in backends.iter().enumerate() {
        for (j, alt) in backend.alternative_backends.iter().enumerate() {
            if !alt.is_empty() && !seen.contains_key(alt.as_str()) {
                let at = path.index(i);
                let alts = at.field("alternativeBackends");
                report.add(
                    &alts.index(j),
                    format!("alternative backend {alt:?} is not in the backends list"),
                );
            }
        }
    }
}

impl Validate for Backend {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        let name_at = path.field("name");
        if self.name.is_empty() {
            report.add(&name_at, "backend name is empty");
        } else if self.name.len() > MAX_BACKEND_NAME_LEN {
            report.add(
                &name_at,
                format!("backend name is longer than {MAX_BACKEND_NAME_LEN} bytes"),
            );
        } else {
            report.check(&name_at, check_text(&self.name));
        }
        report.check(&path.field("port"), check_service_port(&self.port));
        self.service.validate_at(&path.field("service"), report);

        let external = self.is_external_name();
        let eps = path.field("endpoints");
        for (i, ep) in self.endpoints.iter().enumerate() {
            let at = eps.index(i);
            report.check(&at.field("address"), check_address(&ep.address, external));
            report.check(&at.field("port"), check_port_text(&ep.port).map(|_| ()));
        }

        self.session_affinity_config
            .validate_at(&path.field("sessionAffinityConfig"), report);
        self.upstream_hash_by_config
            .validate_at(&path.field("upstreamHashByConfig"), report);
        self.traffic_shaping_policy
            .validate_at(&path.field("trafficShapingPolicy"), report);

        let alts = path.field("alternativeBackends");
        for (i, alt) in self.alternative_backends.iter().enumerate() {
            if alt == &self.name {
                report.add(&alts.index(i), "a backend cannot be its own alternative");
            } else {
                report.check(&alts.index(i), check_text(alt));
            }
        }
    }
}

/// A service port: a number in 0..=65535 (0 appears in ingress-nginx dumps) or an
/// IANA service name.
pub fn check_service_port(port: &IntOrString) -> Result<(), String> {
    match port {
        IntOrString::Int(n) if (0..=65535).contains(n) => Ok(()),
        IntOrString::Int(n) => Err(format!("port {n} is not in 0..65535")),
        IntOrString::String(s) => {
            if let Ok(n) = s.parse::<i64>() {
                return check_service_port(&IntOrString::Int(n));
            }
            let ok = !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "port {s:?} is neither a number nor a port name (lowercase letters, digits and '-')"
                ))
            }
        }
    }
}

/// An endpoint address: an IP address, or for ExternalName backends a DNS name.
fn check_address(address: &str, external_name: bool) -> Result<(), String> {
    // ingress-nginx writes IPv6 endpoints bare; accept the bracketed form as well.
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    if bare.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if external_name {
        let name = bare.strip_suffix('.').unwrap_or(bare);
        if !name.starts_with("*.") && check_hostname(name).is_ok() && name != "_" {
            return Ok(());
        }
        return Err(format!(
            "address {address:?} is neither an IP address nor a DNS name"
        ));
    }
    Err(format!(
        "address {address:?} is not an IP address (DNS names are only allowed for ExternalName services)"
    ))
}

impl Validate for SessionAffinityConfig {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if !matches!(self.name.as_str(), "" | "cookie") {
            report.add(
                &path.field("name"),
                format!(
                    "affinity {:?} is not supported; use \"cookie\" or \"\"",
                    self.name
                ),
            );
        }
        if !matches!(self.mode.as_str(), "" | "balanced" | "persistent") {
            report.add(
                &path.field("mode"),
                format!(
                    "affinity mode {:?} is not supported; use \"balanced\" or \"persistent\"",
                    self.mode
                ),
            );
        }
        self.cookie_session_affinity
            .validate_at(&path.field("cookieSessionAffinity"), report);
    }
}

fn check_cookie_seconds(value: &str) -> Result<(), String> {
    let ok = value == "0"
        || value
            .strip_prefix('-')
            .unwrap_or(value)
            .split_at_checked(1)
            .is_some_and(|(first, rest)| {
                matches!(first.as_bytes()[0], b'1'..=b'9')
                    && rest.bytes().all(|b| b.is_ascii_digit())
                    && value.len() <= 19
            });
    if ok {
        Ok(())
    } else {
        Err(format!("{value:?} is not a whole number of seconds"))
    }
}

/// A cookie attribute value (`Path`, `Domain`): no `;`, `,` or control characters, so
/// it cannot start another attribute or cookie.
fn check_cookie_attribute(value: &str) -> Result<(), String> {
    check_text(value)?;
    if value.contains([';', ',']) {
        return Err(format!("{value:?} contains ';' or ','"));
    }
    Ok(())
}

impl Validate for CookieSessionAffinity {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if !self.name.is_empty() {
            report.check(&path.field("name"), check_cookie_name(&self.name));
        }
        if !self.expires.is_empty() {
            report.check(&path.field("expires"), check_cookie_seconds(&self.expires));
        }
        if !self.maxage.is_empty() {
            report.check(&path.field("maxage"), check_cookie_seconds(&self.maxage));
        }
        report.check(&path.field("path"), check_cookie_attribute(&self.path));
        if !self.domain.is_empty() {
            let domain = self.domain.strip_prefix('.').unwrap_or(&self.domain);
            report.check(&path.field("domain"), check_hostname(domain));
        }
        if !self.samesite.is_empty()
            && !["none", "lax", "strict"].contains(&self.samesite.to_ascii_lowercase().as_str())
        {
            report.add(
                &path.field("samesite"),
                format!(
                    "samesite {:?} is not one of None, Lax, Strict",
                    self.samesite
                ),
            );
        }
        let locations = path.field("locations");
        for (host, paths) in &self.locations {
            let at = locations.field(host);
            report.check(&at, check_hostname(host));
            for (i, p) in paths.iter().enumerate() {
                report.check(&at.index(i), check_text(p));
            }
        }
    }
}

impl Validate for UpstreamHashByConfig {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if !self.upstream_hash_by.is_empty()
            && let Err(e) = ComplexValue::parse(&self.upstream_hash_by)
        {
            report.add(&path.field("upstream-hash-by"), e.to_string());
        }
        if !(0..=1024).contains(&self.upstream_hash_by_subset_size) {
            report.add(
                &path.field("upstream-hash-by-subset-size"),
                format!(
                    "subset size {} is not in 1..1024 (0 means the default, 3)",
                    self.upstream_hash_by_subset_size
                ),
            );
        }
    }
}

impl Validate for TrafficShapingPolicy {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if self.weight < 0 {
            report.add(&path.field("weight"), "weight is negative");
        }
        if self.weight_total < 0 {
            report.add(&path.field("weightTotal"), "weightTotal is negative");
        }
        if !self.header.is_empty() {
            report.check(&path.field("header"), check_header_name(&self.header));
        }
        report.check(
            &path.field("headerValue"),
            check_header_value(&self.header_value),
        );
        if !self.header_pattern.is_empty() {
            report.check(
                &path.field("headerPattern"),
                check_regex(&self.header_pattern),
            );
        }
        if !self.cookie.is_empty() {
            report.check(&path.field("cookie"), check_cookie_name(&self.cookie));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(json: serde_json::Value) -> Backend {
        serde_json::from_value(json).unwrap()
    }

    /// Part B §4.1: implementation selection.
    #[test]
    fn balancer_precedence_vectors() {
        let cases = [
            (
                serde_json::json!({"name":"a","sessionAffinityConfig":{"name":""}}),
                LoadBalance::RoundRobin,
            ),
            (
                serde_json::json!({"name":"a","load-balance":"round_robin"}),
                LoadBalance::RoundRobin,
            ),
            (
                serde_json::json!({"name":"a","load-balance":"round_robin","upstreamHashByConfig":{"upstream-hash-by":"$request_uri"}}),
                LoadBalance::Chash,
            ),
            (
                serde_json::json!({"name":"a","load-balance":"ewma","sessionAffinityConfig":{"name":"cookie","mode":"persistent"}}),
                LoadBalance::StickyPersistent,
            ),
            (
                serde_json::json!({"name":"a","load-balance":"ewma"}),
                LoadBalance::Ewma,
            ),
            (
                serde_json::json!({"name":"a","load-balance":"ewma","upstreamHashByConfig":{"upstream-hash-by":"$request_uri"},"sessionAffinityConfig":{"name":"cookie"}}),
                LoadBalance::StickyBalanced,
            ),
            (
                serde_json::json!({"name":"a","load-balance":"ewma","upstreamHashByConfig":{"upstream-hash-by":"$request_uri","upstream-hash-by-subset":true}}),
                LoadBalance::Chashsubset,
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(backend(json.clone()).balancer(), expected, "{json}");
        }
    }

    #[test]
    fn unknown_load_balance_is_a_decode_error_with_its_path() {
        let err =
            crate::json::decode::<Vec<Backend>>(br#"[{"name":"a","load-balance":"fastest"}]"#)
                .unwrap_err();
        assert_eq!(err.path, "$[0].load-balance");
        assert!(err.message.contains("fastest"), "{}", err.message);
        let ok =
            crate::json::decode::<Vec<Backend>>(br#"[{"name":"a","load-balance":""}]"#).unwrap();
        assert_eq!(ok[0].load_balance, None);
    }

    #[test]
    fn weight_total_is_honoured_from_one() {
        let mut p = TrafficShapingPolicy::default();
        assert_eq!(p.effective_weight_total(), 100);
        p.weight_total = 10;
        assert_eq!(p.effective_weight_total(), 10);
        p.weight_total = 1000;
        assert_eq!(p.effective_weight_total(), 1000);
    }

    #[test]
    fn validation_reports_every_problem_with_paths() {
        let backends: Vec<Backend> = serde_json::from_value(serde_json::json!([
            {"name":"ok","endpoints":[{"address":"10.0.0.1","port":"80"},{"address":"::1","port":"8080"}]},
            {"name":"bad","port":70000,
             "endpoints":[{"address":"not-an-ip","port":"80"},{"address":"10.0.0.2","port":"0"}],
             "sessionAffinityConfig":{"name":"ip","mode":"forever","cookieSessionAffinity":{"name":"a b","expires":"01","samesite":"sometimes","path":"/;Secure"}},
             "upstreamHashByConfig":{"upstream-hash-by":"$nope","upstream-hash-by-subset-size":-1},
             "trafficShapingPolicy":{"weight":-5,"header":"X Bad","headerValue":"a\r\nb","headerPattern":"(?=x)","cookie":"c;d"},
             "alternativeBackends":["missing"]},
            {"name":"ok"}
        ]))
        .unwrap();
        let mut report = Report::new();
        validate_backends(&backends, &Path::Root, &mut report);
        let problems = report.finish().unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$[1].port",
                "$[1].endpoints[0].address",
                "$[1].endpoints[1].port",
                "$[1].sessionAffinityConfig.name",
                "$[1].sessionAffinityConfig.mode",
                "$[1].sessionAffinityConfig.cookieSessionAffinity.name",
                "$[1].sessionAffinityConfig.cookieSessionAffinity.expires",
                "$[1].sessionAffinityConfig.cookieSessionAffinity.path",
                "$[1].sessionAffinityConfig.cookieSessionAffinity.samesite",
                "$[1].upstreamHashByConfig.upstream-hash-by",
                "$[1].upstreamHashByConfig.upstream-hash-by-subset-size",
                "$[1].trafficShapingPolicy.weight",
                "$[1].trafficShapingPolicy.header",
                "$[1].trafficShapingPolicy.headerValue",
                "$[1].trafficShapingPolicy.headerPattern",
                "$[1].trafficShapingPolicy.cookie",
                "$[2].name",
                "$[1].alternativeBackends[0]",
            ]
        );
    }

    #[test]
    fn external_name_endpoints_may_be_dns_names() {
        let b = backend(serde_json::json!({
            "name":"ext","service":{"spec":{"type":"ExternalName","externalName":"example.com"}},
            "endpoints":[{"address":"example.com.","port":"80"}]
        }));
        assert!(b.is_external_name());
        assert!(b.validate().is_ok(), "{:?}", b.validate());
    }

    #[test]
    fn endpoint_port_accepts_numbers_and_writes_strings() {
        let e: Endpoint = serde_json::from_str(r#"{"address":"1.2.3.4","port":8080}"#).unwrap();
        assert_eq!(e.port, "8080");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"address":"1.2.3.4","port":"8080"}"#
        );
    }
}
