//! Canary routing (Part B §3.4): whether a request that reached a primary backend goes
//! to its canary (alternative) backend instead.
//!
//! The rules, in ingress-nginx's order: a user stuck on the primary stays there; a user
//! stuck on the canary stays there; then the canary's `trafficShapingPolicy` decides by
//! header, by cookie, and finally by weight. Step 2 of §3.4 ("is there a canary at
//! all?") is the caller's: it only calls [`route_to_canary`] when the primary's first
//! alternative backend exists and has a balancer.
//!
//! The policy is compiled once per snapshot into a [`CanaryPolicy`] (its header
//! pattern is a compiled regex); routing itself is a pure function of its inputs, with
//! randomness injected, so every rule is testable.
//!
//! ```
//! use gangplank_model::Backend;
//! use gangplank_proxy::balancer::canary::CanaryPolicy;
//!
//! let mut canary = Backend::default();
//! canary.traffic_shaping_policy.header = "X-Canary".into();
//! let policy = CanaryPolicy::compile(&canary);
//! let header = |name: &str| (name == "X-Canary").then_some("always");
//! assert!(policy.decide(header, |_| None, |_| 1));
//! ```

use gangplank_model::Backend;
use gangplank_model::validate::REGEX_SIZE_LIMIT;
use regex::{Regex, RegexBuilder};

use super::Balancer;

/// How a present canary header is judged.
#[derive(Debug, Clone)]
enum HeaderRule {
    /// `canary-by-header-value`: route iff the value is exactly this.
    Value(String),
    /// `canary-by-header-pattern`: route iff the (unanchored) pattern matches.
    Pattern(Regex),
    /// A pattern that does not compile: ingress-nginx logs and stays on the primary.
    BadPattern(String),
    /// Neither: `always` routes, `never` stays, anything else falls through.
    AlwaysNever,
}

/// A canary backend's `trafficShapingPolicy`, compiled for the request path.
#[derive(Debug, Clone)]
pub struct CanaryPolicy {
    header: String,
    header_rule: HeaderRule,
    cookie: String,
    weight: i64,
    weight_total: i64,
}

impl CanaryPolicy {
    /// Compiles the policy of the canary backend `canary`. A header pattern that does
    /// not compile (validation rejects those) makes every request carrying the header
    /// stay on the primary, as in ingress-nginx; see [`CanaryPolicy::problem`].
    pub fn compile(canary: &Backend) -> CanaryPolicy {
        let policy = &canary.traffic_shaping_policy;
        let header_rule = if !policy.header_value.is_empty() {
            HeaderRule::Value(policy.header_value.clone())
        } else if !policy.header_pattern.is_empty() {
            match RegexBuilder::new(&policy.header_pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(regex) => HeaderRule::Pattern(regex),
                Err(e) => HeaderRule::BadPattern(format!(
                    "canary-by-header-pattern {:?} does not compile: {e}",
                    policy.header_pattern
                )),
            }
        } else {
            HeaderRule::AlwaysNever
        };
        CanaryPolicy {
            header: policy.header.clone(),
            header_rule,
            cookie: policy.cookie.clone(),
            weight: policy.weight,
            weight_total: policy.effective_weight_total(),
        }
    }

    /// Why the policy cannot work as configured (a header pattern that does not
    /// compile), for a log line at apply time.
    pub fn problem(&self) -> Option<&str> {
        match &self.header_rule {
            HeaderRule::BadPattern(reason) => Some(reason),
            _ => None,
        }
    }

    /// §3.4 steps 5–7, for a request affinitized to neither backend.
    ///
    /// - `header(name)` returns the request header `name` (matched case-insensitively,
    ///   `-` and `_` alike, as nginx's `$http_*`), `cookie(name)` the request cookie.
    ///   They are only asked about the names the policy configures.
    /// - `random(total)` must return a uniform integer in `1..=total` ([`draw`] in
    ///   production); it is called at most once, and only when the weight decides
    ///   something (`0 < weight < total`).
    pub fn decide<'r>(
        &self,
        header: impl Fn(&str) -> Option<&'r str>,
        cookie: impl Fn(&str) -> Option<&'r str>,
        random: impl FnOnce(u64) -> u64,
    ) -> bool {
        if let Some(value) = Some(self.header.as_str())
            .filter(|h| !h.is_empty())
            .and_then(&header)
        {
            match &self.header_rule {
                HeaderRule::Value(expected) if value == expected => return true,
                HeaderRule::Pattern(regex) if regex.is_match(value) => return true,
                HeaderRule::BadPattern(_) => return false,
                HeaderRule::AlwaysNever if value == "always" => return true,
                HeaderRule::AlwaysNever if value == "never" => return false,
                // A mismatching value or pattern, or another word, falls through.
                _ => {}
            }
        }
        if let Some(value) = Some(self.cookie.as_str())
            .filter(|c| !c.is_empty())
            .and_then(&cookie)
        {
            match value {
                "always" => return true,
                "never" => return false,
                _ => {}
            }
        }
        if self.weight <= 0 {
            return false;
        }
        if self.weight >= self.weight_total {
            return true;
        }
        let total = u64::try_from(self.weight_total).unwrap_or(1);
        let weight = u64::try_from(self.weight).unwrap_or(0);
        random(total) <= weight
    }
}

/// §3.4 steps 1 and 3–7: true when the request goes to the canary.
///
/// `primary_cookie` and `canary_cookie` are the request's values of each backend's
/// affinity cookie (their names may differ). The primary's affinity wins, and then the
/// canary's balancer is not consulted; then the canary's; then `policy` (the canary
/// backend's, compiled once) decides: see [`CanaryPolicy::decide`] for `header`,
/// `cookie` and `random`.
// The eight inputs are exactly what the rules read; a wrapper struct would only move
// them around at the single call site.
#[allow(clippy::too_many_arguments)]
pub fn route_to_canary<'r>(
    primary: &dyn Balancer,
    primary_cookie: Option<&str>,
    policy: &CanaryPolicy,
    canary: &dyn Balancer,
    canary_cookie: Option<&str>,
    header: impl Fn(&str) -> Option<&'r str>,
    cookie: impl Fn(&str) -> Option<&'r str>,
    random: impl FnOnce(u64) -> u64,
) -> bool {
    if primary.is_affinitized(primary_cookie) {
        return false;
    }
    if canary.is_affinitized(canary_cookie) {
        return true;
    }
    policy.decide(header, cookie, random)
}

/// Lua's `math.random(total)`: a uniform integer in `1..=total` (`total` 0 counts as 1).
pub fn draw(total: u64) -> u64 {
    fastrand::u64(1..=total.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::{Pick, PickRequest};
    use gangplank_model::{LoadBalance, TrafficShapingPolicy};
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Debug, Default)]
    struct Fake {
        affinitized: bool,
        consulted: AtomicBool,
    }

    impl Balancer for Fake {
        fn pick(&self, _: &PickRequest<'_>) -> Option<Pick> {
            None
        }
        fn is_affinitized(&self, _: Option<&str>) -> bool {
            self.consulted.store(true, Ordering::SeqCst);
            self.affinitized
        }
        fn algorithm(&self) -> LoadBalance {
            LoadBalance::RoundRobin
        }
    }

    fn policy(p: TrafficShapingPolicy) -> CanaryPolicy {
        CanaryPolicy::compile(&Backend {
            name: "canary".into(),
            no_server: true,
            traffic_shaping_policy: p,
            ..Default::default()
        })
    }

    fn weight(weight: i64, weight_total: i64) -> TrafficShapingPolicy {
        TrafficShapingPolicy {
            weight,
            weight_total,
            ..Default::default()
        }
    }

    fn by_cookie() -> TrafficShapingPolicy {
        TrafficShapingPolicy {
            cookie: "canaryCookie".into(),
            ..Default::default()
        }
    }

    fn by_header(value: &str) -> TrafficShapingPolicy {
        TrafficShapingPolicy {
            header: "canaryHeader".into(),
            header_value: value.into(),
            ..Default::default()
        }
    }

    /// Routes a request affinitized to neither backend, with one header and one cookie.
    fn route(
        p: &TrafficShapingPolicy,
        header: Option<(&str, &str)>,
        cookie: Option<(&str, &str)>,
    ) -> bool {
        let (primary, canary) = (Fake::default(), Fake::default());
        route_to_canary(
            &primary,
            None,
            &policy(p.clone()),
            &canary,
            None,
            |name| header.filter(|(h, _)| *h == name).map(|(_, v)| v),
            |name| cookie.filter(|(c, _)| *c == name).map(|(_, v)| v),
            draw,
        )
    }

    /// §4.2, the rows that are `route_to_canary`'s (the "no alternative backend" rows
    /// are the caller's step 2).
    #[test]
    fn section_4_2_vectors() {
        let none = TrafficShapingPolicy::default();
        assert!(!route(&none, None, None), "weight 0, no header or cookie");
        for _ in 0..100 {
            assert!(route(&weight(100, 0), None, None), "weight 100");
            assert!(!route(&weight(0, 0), None, None), "weight 0");
            assert!(
                route(&weight(1000, 1000), None, None),
                "weight 1000 of 1000"
            );
        }

        let c = by_cookie();
        assert!(route(&c, None, Some(("canaryCookie", "always"))));
        assert!(!route(&c, None, Some(("canaryCookie", "never"))));
        assert!(!route(&c, None, Some(("canaryCookie", "foo"))));
        assert!(!route(&c, None, Some(("foo", "always"))));

        let h = by_header("");
        assert!(route(&h, Some(("canaryHeader", "always")), None));
        assert!(!route(&h, Some(("canaryHeader", "never")), None));
        assert!(!route(&h, Some(("canaryHeader", "foo")), None));
        assert!(!route(&h, Some(("foo", "always")), None));

        let v = by_header("foo");
        assert!(!route(&v, Some(("canaryHeader", "always")), None));
        assert!(route(&v, Some(("canaryHeader", "foo")), None));
        assert!(!route(&v, Some(("bar", "foo")), None));
    }

    #[test]
    fn primary_affinity_wins_without_consulting_the_canary() {
        let primary = Fake {
            affinitized: true,
            ..Default::default()
        };
        let canary = Fake {
            affinitized: true,
            ..Default::default()
        };
        let routed = route_to_canary(
            &primary,
            Some("k|b"),
            &policy(weight(100, 0)),
            &canary,
            Some("k|b"),
            |_| None,
            |_| None,
            draw,
        );
        assert!(!routed);
        assert!(primary.consulted.load(Ordering::SeqCst));
        assert!(!canary.consulted.load(Ordering::SeqCst));
    }

    #[test]
    fn canary_affinity_routes_to_the_canary() {
        let primary = Fake::default();
        let canary = Fake {
            affinitized: true,
            ..Default::default()
        };
        assert!(route_to_canary(
            &primary,
            None,
            &policy(weight(0, 0)),
            &canary,
            Some("k|b"),
            |_| Some("never"),
            |_| Some("never"),
            |_| 100,
        ));
    }

    #[test]
    fn header_never_stops_but_a_mismatching_value_falls_through() {
        let mut p = by_header("");
        p.cookie = "canaryCookie".into();
        assert!(!route(
            &p,
            Some(("canaryHeader", "never")),
            Some(("canaryCookie", "always"))
        ));
        let mut v = by_header("foo");
        v.cookie = "canaryCookie".into();
        assert!(route(
            &v,
            Some(("canaryHeader", "bar")),
            Some(("canaryCookie", "always"))
        ));
        // "never" is just another mismatching value when a value is configured.
        assert!(route(
            &v,
            Some(("canaryHeader", "never")),
            Some(("canaryCookie", "always"))
        ));
    }

    #[test]
    fn header_patterns_are_unanchored_and_fall_through_on_mismatch() {
        let p = TrafficShapingPolicy {
            header: "canaryHeader".into(),
            header_pattern: "fo+".into(),
            weight: 100,
            ..Default::default()
        };
        assert!(route(&p, Some(("canaryHeader", "xfooo")), None));
        // A mismatch falls through to the weight (100 here).
        assert!(route(&p, Some(("canaryHeader", "bar")), None));
        let p = TrafficShapingPolicy { weight: 0, ..p };
        assert!(!route(&p, Some(("canaryHeader", "bar")), None));
        assert!(route(&p, Some(("canaryHeader", "foo")), None));
        // headerValue wins over headerPattern.
        let both = TrafficShapingPolicy {
            header_value: "exact".into(),
            ..p
        };
        assert!(!route(&both, Some(("canaryHeader", "foo")), None));
        assert!(route(&both, Some(("canaryHeader", "exact")), None));
    }

    #[test]
    fn a_bad_pattern_keeps_requests_with_the_header_on_the_primary() {
        let p = TrafficShapingPolicy {
            header: "canaryHeader".into(),
            header_pattern: "(".into(),
            weight: 100,
            ..Default::default()
        };
        assert!(policy(p.clone()).problem().is_some());
        assert!(!route(&p, Some(("canaryHeader", "(")), None));
        // Without the header the weight still applies.
        assert!(route(&p, None, None));
        assert!(policy(by_header("")).problem().is_none());
    }

    #[test]
    fn weight_is_random_of_total_at_most_weight() {
        let p = policy(weight(30, 0));
        // total 100: draws 1..=30 route, 31..=100 do not.
        assert!(p.decide(
            |_| None,
            |_| None,
            |t| {
                assert_eq!(t, 100);
                30
            }
        ));
        assert!(!p.decide(|_| None, |_| None, |_| 31));
        let p = policy(weight(5, 10));
        assert!(p.decide(
            |_| None,
            |_| None,
            |t| {
                assert_eq!(t, 10);
                5
            }
        ));
        assert!(!p.decide(|_| None, |_| None, |_| 6));
        // Weight total below 100 is honoured (Part A.2): 50 of 50 always routes.
        assert!(policy(weight(50, 50)).decide(|_| None, |_| None, |_| unreachable!()));
    }

    #[test]
    fn weight_50_is_about_half() {
        let p = policy(weight(50, 0));
        let routed = (0..10_000)
            .filter(|_| p.decide(|_| None, |_| None, draw))
            .count();
        assert!((4_500..=5_500).contains(&routed), "{routed}");
    }

    #[test]
    fn weight_total_10_weight_5_is_about_half() {
        let p = policy(weight(5, 10));
        let routed = (0..10_000)
            .filter(|_| p.decide(|_| None, |_| None, draw))
            .count();
        assert!((4_500..=5_500).contains(&routed), "{routed}");
    }

    #[test]
    fn draw_is_within_one_to_total() {
        for _ in 0..1000 {
            let d = draw(7);
            assert!((1..=7).contains(&d));
        }
        assert_eq!(draw(1), 1);
        assert_eq!(draw(0), 1);
    }
}
