//! The `nginx.ingress.kubernetes.io/*` annotations of one Ingress, parsed into typed
//! values, one parser per annotation (Part B §5).
//!
//! Rules that apply to every annotation (Part A.3):
//! - a value containing CR, LF or NUL is rejected, whatever the annotation;
//! - a rejected value is not used: the Ingress's locations are denied (503) with the
//!   first reason, and each rejection is a Warning event naming the annotation;
//! - `*-snippet` annotations (raw nginx configuration) are ignored with a Warning;
//! - an empty value means "not set", as it does for ingress-nginx's parsers.
//!
//! Values are checked with the model's own validators, so whatever is accepted here
//! also passes `gangplank_model::Validate` on the resulting configuration.

// Not yet translated (later slices of the controller issue; ignored silently for now):
// app-root, ssl-redirect, force-ssl-redirect, preserve-trailing-slash,
// permanent-redirect(-code), temporal-redirect(-code), from-to-www-redirect,
// backend-protocol, proxy-body-size, proxy-connect-timeout, proxy-send-timeout,
// proxy-read-timeout, proxy-next-upstream(-timeout, -tries), proxy-request-buffering,
// proxy-buffering, proxy-buffer-size, proxy-buffers-number, proxy-busy-buffers-size,
// proxy-max-temp-file-size, proxy-http-version, proxy-cookie-domain, proxy-cookie-path,
// proxy-redirect-from, proxy-redirect-to, client-body-buffer-size,
// whitelist-source-range / allowlist-source-range, denylist-source-range, limit-rps,
// limit-rpm, limit-connections, limit-burst-multiplier, limit-rate, limit-rate-after,
// limit-allowlist, auth-type, auth-secret, auth-secret-type, auth-realm, auth-url,
// auth-signin, auth-signin-redirect-param, auth-response-headers, auth-method,
// auth-cache-key, auth-cache-duration, auth-keepalive*, auth-proxy-set-headers,
// auth-request-redirect, auth-always-set-cookie, enable-global-auth, enable-cors,
// cors-*, server-alias, custom-headers, upstream-vhost, x-forwarded-prefix,
// default-backend, custom-http-errors, disable-proxy-intercept-errors, service-upstream,
// connection-proxy-header, mirror-target, mirror-host, mirror-request-body,
// ssl-passthrough, ssl-ciphers, ssl-prefer-server-ciphers, auth-tls-*, proxy-ssl-*,
// enable-access-log, enable-rewrite-log, enable-opentelemetry, satisfy,
// use-port-in-redirects, http2-push-preload, fastcgi-*, enable-modsecurity and the other
// modsecurity-* keys.

use std::collections::BTreeMap;

use gangplank_model::expr::ComplexValue;
use gangplank_model::policy::{Rewrite, check_rewrite_target};
use gangplank_model::validate::{
    Validate, check_cookie_name, check_header_name, check_header_value, check_hostname,
    check_regex, check_text,
};
use gangplank_model::{
    CookieSessionAffinity, IngressRef, LoadBalance, SessionAffinityConfig, TrafficShapingPolicy,
    UpstreamHashByConfig,
};

use crate::events::{Events, reason, truncate};

/// The annotation prefix (ingress-nginx's default `--annotations-prefix`).
pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// The affinity cookie name when `session-cookie-name` is not set.
pub const DEFAULT_COOKIE_NAME: &str = "INGRESSCOOKIE";

/// The subset size ingress-nginx writes when `upstream-hash-by-subset-size` is not set.
pub const DEFAULT_SUBSET_SIZE: i64 = 3;

/// Longest `denied` reason carried in a location.
const MAX_REASON_LEN: usize = 512;

/// What the annotations of one Ingress say, as far as this slice translates them.
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
    /// `rewrite-target`, `use-regex`.
    pub(crate) rewrite: Rewrite,
    /// Why the Ingress's locations are denied, when an annotation was rejected.
    pub(crate) denied: Option<String>,
}

/// Reads the prefixed annotations, remembering each rejection.
struct Reader<'a> {
    /// Usable values by short name (without the prefix); rejected ones are removed.
    values: BTreeMap<&'a str, &'a str>,
    /// (short name, reason), in the order found.
    problems: Vec<(String, String)>,
}

impl<'a> Reader<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.values.get(name).copied().filter(|v| !v.is_empty())
    }

    fn reject(&mut self, name: &str, reason: impl Into<String>) {
        self.values.remove(name);
        self.problems.push((name.to_owned(), reason.into()));
    }

    /// A string checked by `check`.
    fn text(&mut self, name: &str, check: fn(&str) -> Result<(), String>) -> Option<String> {
        let value = self.get(name)?;
        match check(value) {
            Ok(()) => Some(value.to_owned()),
            Err(e) => {
                self.reject(name, e);
                None
            }
        }
    }

    /// A boolean, spelled as Go's `strconv.ParseBool` accepts.
    fn boolean(&mut self, name: &str) -> Option<bool> {
        let value = self.get(name)?;
        match value {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
            _ => {
                self.reject(
                    name,
                    format!("{value:?} is not a boolean (\"true\" or \"false\")"),
                );
                None
            }
        }
    }

    /// A decimal integer in `min..=max`.
    fn integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.get(name)?;
        match value.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.reject(
                    name,
                    format!("{value:?} is not an integer in {min}..={max}"),
                );
                None
            }
        }
    }

    /// One of a fixed set of words.
    fn choice<T: Copy>(&mut self, name: &str, options: &[(&str, T)]) -> Option<T> {
        let value = self.get(name)?;
        if let Some((_, t)) = options.iter().find(|(word, _)| *word == value) {
            return Some(*t);
        }
        let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
        self.reject(
            name,
            format!("{value:?} is not one of {}", words.join(", ")),
        );
        None
    }
}

/// Parses the annotations of one Ingress. Problems become Warning events on
/// `ingress` and a `denied` reason; values that were rejected are left at their
/// defaults, so the result is always valid.
pub(crate) fn parse(
    annotations: Option<&BTreeMap<String, String>>,
    ingress: &IngressRef,
    events: &mut Events,
) -> IngressAnnotations {
    let mut reader = Reader {
        values: BTreeMap::new(),
        problems: Vec::new(),
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
        load_balance: reader.choice(
            "load-balance",
            &[
                ("round_robin", LoadBalance::RoundRobin),
                ("ewma", LoadBalance::Ewma),
                ("chash", LoadBalance::Chash),
                ("chashsubset", LoadBalance::Chashsubset),
                ("sticky_balanced", LoadBalance::StickyBalanced),
                ("sticky_persistent", LoadBalance::StickyPersistent),
            ],
        ),
        hash_by: parse_hash_by(&mut reader),
        affinity: parse_affinity(&mut reader),
        canary_sticky: reader
            .choice(
                "affinity-canary-behavior",
                &[("sticky", true), ("legacy", false)],
            )
            .unwrap_or(true),
        canary: None,
        rewrite: Rewrite {
            target: reader.text("rewrite-target", check_rewrite_target),
            use_regex: reader.boolean("use-regex").unwrap_or(false),
        },
        denied: None,
    };
    parsed.canary = parse_canary(&mut reader, ingress, events);
    recheck(&mut parsed, &mut reader);

    for (name, why) in &reader.problems {
        events.warn(
            ingress,
            reason::INVALID_ANNOTATION,
            format!(
                "annotation \"{PREFIX}{name}\" is invalid: {why}; the locations of this Ingress answer 503 until it is fixed"
            ),
        );
    }
    parsed.denied = reader.problems.first().map(|(name, why)| {
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

fn parse_hash_by(reader: &mut Reader<'_>) -> UpstreamHashByConfig {
    UpstreamHashByConfig {
        upstream_hash_by: reader
            .text("upstream-hash-by", check_complex_value)
            .unwrap_or_default(),
        upstream_hash_by_subset: reader.boolean("upstream-hash-by-subset").unwrap_or(false),
        upstream_hash_by_subset_size: match reader.integer("upstream-hash-by-subset-size", 0, 1024)
        {
            None | Some(0) => DEFAULT_SUBSET_SIZE,
            Some(n) => n,
        },
    }
}

fn parse_affinity(reader: &mut Reader<'_>) -> SessionAffinityConfig {
    let name = reader
        .choice("affinity", &[("cookie", "cookie")])
        .unwrap_or_default();
    let mode = reader
        .choice(
            "affinity-mode",
            &[("balanced", "balanced"), ("persistent", "persistent")],
        )
        .unwrap_or_default();
    let cookie = CookieSessionAffinity {
        name: reader
            .text("session-cookie-name", check_cookie_name)
            .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned()),
        expires: reader
            .text("session-cookie-expires", check_seconds)
            .unwrap_or_default(),
        maxage: reader
            .text("session-cookie-max-age", check_seconds)
            .unwrap_or_default(),
        locations: BTreeMap::new(),
        secure: reader.boolean("session-cookie-secure").unwrap_or(false),
        path: reader
            .text("session-cookie-path", check_cookie_path)
            .unwrap_or_default(),
        domain: reader
            .text("session-cookie-domain", check_cookie_domain)
            .unwrap_or_default(),
        samesite: reader
            .text("session-cookie-samesite", check_samesite)
            .unwrap_or_default(),
        conditional_samesite_none: reader
            .boolean("session-cookie-conditional-samesite-none")
            .unwrap_or(false),
        change_on_failure: reader
            .boolean("session-cookie-change-on-failure")
            .unwrap_or(false),
    };
    SessionAffinityConfig {
        name: name.to_owned(),
        mode: mode.to_owned(),
        cookie_session_affinity: cookie,
    }
}

/// The canary policy, or `None` when the Ingress is not a canary. Canary settings on
/// an Ingress without `canary: "true"` are ignored with a Warning, and the Ingress is
/// an ordinary one (ingress-nginx's "configured but not enabled").
fn parse_canary(
    reader: &mut Reader<'_>,
    ingress: &IngressRef,
    events: &mut Events,
) -> Option<TrafficShapingPolicy> {
    let enabled = reader.boolean("canary").unwrap_or(false);
    let max = i64::from(i32::MAX);
    let policy = TrafficShapingPolicy {
        weight: reader.integer("canary-weight", 0, max).unwrap_or(0),
        weight_total: reader.integer("canary-weight-total", 0, max).unwrap_or(100),
        header: reader
            .text("canary-by-header", check_header_name)
            .unwrap_or_default(),
        header_value: reader
            .text("canary-by-header-value", check_header_value)
            .unwrap_or_default(),
        header_pattern: reader
            .text("canary-by-header-pattern", check_regex)
            .unwrap_or_default(),
        cookie: reader
            .text("canary-by-cookie", check_cookie_name)
            .unwrap_or_default(),
    };
    if enabled {
        return Some(policy);
    }
    let configured = policy.weight > 0
        || !policy.header.is_empty()
        || !policy.header_value.is_empty()
        || !policy.header_pattern.is_empty()
        || !policy.cookie.is_empty();
    if configured {
        events.warn(
            ingress,
            reason::ANNOTATION_IGNORED,
            format!(
                "canary annotations are set but \"{PREFIX}canary\" is not \"true\"; they are ignored and the Ingress is not a canary"
            ),
        );
    }
    None
}

/// Belt and braces: every group must pass the model's validation as a whole. A group
/// that does not (a combination the per-annotation checks missed) is reset to its
/// default and denies the Ingress like any rejected annotation.
fn recheck(parsed: &mut IngressAnnotations, reader: &mut Reader<'_>) {
    if let Err(p) = parsed.affinity.validate() {
        reader.reject("affinity", p.to_string());
        parsed.affinity = SessionAffinityConfig::default();
    }
    if let Err(p) = parsed.hash_by.validate() {
        reader.reject("upstream-hash-by", p.to_string());
        parsed.hash_by = UpstreamHashByConfig {
            upstream_hash_by_subset_size: DEFAULT_SUBSET_SIZE,
            ..UpstreamHashByConfig::default()
        };
    }
    if let Some(policy) = &parsed.canary
        && let Err(p) = policy.validate()
    {
        reader.reject("canary", p.to_string());
        parsed.canary = None;
    }
    if let Err(p) = parsed.rewrite.validate() {
        reader.reject("rewrite-target", p.to_string());
        parsed.rewrite = Rewrite::default();
    }
}

/// An `upstream-hash-by` expression the data plane can evaluate.
fn check_complex_value(value: &str) -> Result<(), String> {
    check_text(value)?;
    ComplexValue::parse(value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Cookie `Expires`/`Max-Age` seconds: `0` or `-?[1-9][0-9]*`, as ingress-nginx's regex.
fn check_seconds(value: &str) -> Result<(), String> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let ok = value == "0"
        || (value.len() <= 19
            && digits.starts_with(|c: char| ('1'..='9').contains(&c))
            && digits.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!("{value:?} is not a whole number of seconds"))
    }
}

/// A cookie `Path`: no control characters, `;` or `,`.
fn check_cookie_path(value: &str) -> Result<(), String> {
    check_text(value)?;
    if value.contains([';', ',']) {
        return Err(format!("{value:?} contains ';' or ','"));
    }
    Ok(())
}

/// A cookie `Domain`: a host name, optionally with a leading dot.
fn check_cookie_domain(value: &str) -> Result<(), String> {
    check_hostname(value.strip_prefix('.').unwrap_or(value))
}

/// `None`, `Lax` or `Strict`, any case.
fn check_samesite(value: &str) -> Result<(), String> {
    if ["none", "lax", "strict"].contains(&value.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(format!("{value:?} is not one of None, Lax, Strict"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_map(pairs: &[(&str, &str)]) -> (IngressAnnotations, Vec<crate::Event>) {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect();
        let ingress = IngressRef {
            namespace: "ns".into(),
            name: "ing".into(),
        };
        let mut events = Events::default();
        let parsed = parse(Some(&map), &ingress, &mut events);
        (parsed, events.into_vec())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let (a, events) = parse_map(&[]);
        assert!(events.is_empty());
        assert_eq!(a.denied, None);
        assert_eq!(a.hash_by.upstream_hash_by_subset_size, 3);
        assert_eq!(a.affinity.cookie_session_affinity.name, "INGRESSCOOKIE");
        assert!(a.canary_sticky);
        assert!(a.canary.is_none());
    }

    #[test]
    fn values_are_parsed() {
        let (a, events) = parse_map(&[
            ("load-balance", "ewma"),
            ("upstream-hash-by", "$request_uri"),
            ("upstream-hash-by-subset", "true"),
            ("upstream-hash-by-subset-size", "5"),
            ("affinity", "cookie"),
            ("affinity-mode", "persistent"),
            ("session-cookie-name", "route"),
            ("session-cookie-max-age", "3600"),
            ("session-cookie-samesite", "lax"),
            ("canary", "True"),
            ("canary-weight", "20"),
            ("canary-by-header", "X-Canary"),
            ("use-regex", "1"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(a.load_balance, Some(LoadBalance::Ewma));
        assert_eq!(a.hash_by.upstream_hash_by_subset_size, 5);
        assert_eq!(a.affinity.mode, "persistent");
        assert_eq!(a.affinity.cookie_session_affinity.maxage, "3600");
        let canary = a.canary.unwrap();
        assert_eq!((canary.weight, canary.weight_total), (20, 100));
        assert!(a.rewrite.use_regex);
    }

    #[test]
    fn invalid_values_deny_and_name_the_annotation() {
        let (a, events) = parse_map(&[
            ("affinity-mode", "forever"),
            ("session-cookie-name", "a b"),
            ("canary-by-header-pattern", "(?=x)"),
        ]);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(
            events
                .iter()
                .all(|e| e.reason == reason::INVALID_ANNOTATION)
        );
        let denied = a.denied.unwrap();
        assert!(denied.contains("affinity-mode"), "{denied}");
        assert_eq!(a.affinity.mode, "");
        assert_eq!(a.affinity.cookie_session_affinity.name, "INGRESSCOOKIE");
    }

    #[test]
    fn control_characters_are_rejected_everywhere() {
        let (a, events) = parse_map(&[("not-translated-yet", "a\r\nb"), ("rewrite-target", "/\n")]);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(a.denied.is_some());
        assert_eq!(a.rewrite.target, None);
    }

    #[test]
    fn snippets_are_ignored_with_a_warning() {
        let (a, events) = parse_map(&[("configuration-snippet", "more_set_headers \"a: b\";\n")]);
        assert_eq!(a.denied, None);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, reason::SNIPPET_IGNORED);
    }

    #[test]
    fn canary_settings_without_canary_are_ignored() {
        let (a, events) = parse_map(&[("canary-weight", "50")]);
        assert!(a.canary.is_none());
        assert_eq!(a.denied, None);
        assert_eq!(events[0].reason, reason::ANNOTATION_IGNORED);
    }

    #[test]
    fn seconds() {
        for ok in ["0", "1", "-5", "3600"] {
            assert!(check_seconds(ok).is_ok(), "{ok}");
        }
        for bad in ["01", "-0", "1.5", "", "-", "1h", "99999999999999999999"] {
            assert!(check_seconds(bad).is_err(), "{bad}");
        }
    }
}
