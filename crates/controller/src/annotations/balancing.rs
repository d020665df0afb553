//! Balancing: `load-balance`, `upstream-hash-by*`, `affinity*`, `session-cookie-*`
//! (onto the backend) and `canary*` (the canary policy of a canary Ingress).

use std::collections::BTreeMap;

use gangplank_model::expr::ComplexValue;
use gangplank_model::validate::{
    Validate, check_cookie_name, check_header_name, check_header_value, check_hostname,
    check_regex, check_text,
};
use gangplank_model::{
    CookieSessionAffinity, LoadBalance, SessionAffinityConfig, TrafficShapingPolicy,
    UpstreamHashByConfig,
};

use super::{IngressAnnotations, Reader};

/// The affinity cookie name when `session-cookie-name` is not set.
pub const DEFAULT_COOKIE_NAME: &str = "INGRESSCOOKIE";

/// The subset size ingress-nginx writes when `upstream-hash-by-subset-size` is not set.
pub(crate) const DEFAULT_SUBSET_SIZE: i64 = 3;

/// `load-balance`.
pub(super) fn load_balance(reader: &mut Reader<'_>) -> Option<LoadBalance> {
    reader.choice(
        "load-balance",
        &[
            ("round_robin", LoadBalance::RoundRobin),
            ("ewma", LoadBalance::Ewma),
            ("chash", LoadBalance::Chash),
            ("chashsubset", LoadBalance::Chashsubset),
            ("sticky_balanced", LoadBalance::StickyBalanced),
            ("sticky_persistent", LoadBalance::StickyPersistent),
        ],
    )
}

/// `affinity-canary-behavior`: true for `sticky` (the default).
pub(super) fn canary_sticky(reader: &mut Reader<'_>) -> bool {
    reader
        .choice(
            "affinity-canary-behavior",
            &[("sticky", true), ("legacy", false)],
        )
        .unwrap_or(true)
}

/// `upstream-hash-by`, `upstream-hash-by-subset`, `upstream-hash-by-subset-size`.
pub(super) fn hash_by(reader: &mut Reader<'_>) -> UpstreamHashByConfig {
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

/// `affinity`, `affinity-mode`, `session-cookie-*`.
pub(super) fn affinity(reader: &mut Reader<'_>) -> SessionAffinityConfig {
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
pub(super) fn canary(reader: &mut Reader<'_>) -> Option<TrafficShapingPolicy> {
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
        reader.ignored.push(format!(
            "canary annotations are set but \"{}canary\" is not \"true\"; they are ignored and the Ingress is not a canary",
            super::PREFIX
        ));
    }
    None
}

/// The balancing groups as wholes (see [`super::recheck`]).
pub(super) fn recheck(parsed: &mut IngressAnnotations, reader: &mut Reader<'_>) {
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
    use super::super::tests::parse_map;
    use super::*;
    use crate::events::reason;

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
        assert!(a.location.rewrite.use_regex);
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
        let denied = a.location.denied.unwrap();
        assert!(denied.contains("affinity-mode"), "{denied}");
        assert_eq!(a.affinity.mode, "");
        assert_eq!(a.affinity.cookie_session_affinity.name, "INGRESSCOOKIE");
    }

    #[test]
    fn canary_settings_without_canary_are_ignored() {
        let (a, events) = parse_map(&[("canary-weight", "50")]);
        assert!(a.canary.is_none());
        assert_eq!(a.location.denied, None);
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
