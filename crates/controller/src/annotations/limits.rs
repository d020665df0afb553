//! Who may come and how often: `allowlist-source-range` (alias
//! `whitelist-source-range`), `denylist-source-range`, and `limit-*`.
//!
//! Address lists are security settings: one bad entry rejects the whole list and
//! denies the Ingress (fail closed), rather than dropping the entry and letting more
//! clients in than intended.

use gangplank_model::policy::{RateLimit, SourceRanges, check_cidr};

use super::{Reader, model_check};

/// The largest KiB count `limit-rate` and `limit-rate-after` accept.
const MAX_KIB: i64 = 1 << 30;

fn source_ranges(reader: &mut Reader<'_>, names: &[&'static str]) -> SourceRanges {
    let name = reader.first_of(names);
    // A second spelling of the same list is ignored, as ingress-nginx reads only one.
    for other in names.iter().filter(|n| **n != name) {
        if reader.has(other) {
            reader.ignore(other, format!("{name} is set and takes precedence"));
        }
    }
    SourceRanges {
        cidrs: reader.list(name, ',', check_cidr).unwrap_or_default(),
    }
}

/// `allowlist-source-range` / `whitelist-source-range`: only these clients (403 for
/// others).
pub(super) fn allowlist(reader: &mut Reader<'_>) -> SourceRanges {
    source_ranges(
        reader,
        &["allowlist-source-range", "whitelist-source-range"],
    )
}

/// `denylist-source-range`: never these clients (403).
pub(super) fn denylist(reader: &mut Reader<'_>) -> SourceRanges {
    source_ranges(reader, &["denylist-source-range"])
}

/// `limit-rps`, `limit-rpm`, `limit-connections`, `limit-burst-multiplier`,
/// `limit-rate`, `limit-rate-after`, `limit-allowlist` (alias `limit-whitelist`).
pub(super) fn rate_limit(reader: &mut Reader<'_>) -> RateLimit {
    let defaults = RateLimit::default();
    let allowlist = source_ranges(reader, &["limit-allowlist", "limit-whitelist"]);
    let kib = |reader: &mut Reader<'_>, name: &str| {
        reader
            .integer(name, 0, MAX_KIB)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0)
    };
    let limit = RateLimit {
        rps: reader.count("limit-rps").unwrap_or(0),
        rpm: reader.count("limit-rpm").unwrap_or(0),
        connections: reader.count("limit-connections").unwrap_or(0),
        // As ingress-nginx: a multiplier below 1 means the default (5).
        burst_multiplier: match reader.count("limit-burst-multiplier") {
            None | Some(0) => defaults.burst_multiplier,
            Some(n) => n,
        },
        allowlist: allowlist.cidrs,
        limit_rate: kib(reader, "limit-rate"),
        limit_rate_after: kib(reader, "limit-rate-after"),
    };
    if let Err(why) = model_check(&limit) {
        reader.reject("limit-rps", why);
        return defaults;
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_map;
    use crate::events::reason;

    #[test]
    fn lists_and_limits() {
        let (a, events) = parse_map(&[
            (
                "whitelist-source-range",
                "10.0.0.0/8, 192.168.1.7 ,2001:db8::/32",
            ),
            ("denylist-source-range", "10.1.0.0/16"),
            ("limit-rps", "10"),
            ("limit-rpm", "300"),
            ("limit-connections", "4"),
            ("limit-burst-multiplier", "0"),
            ("limit-rate", "100"),
            ("limit-rate-after", "1024"),
            ("limit-whitelist", "127.0.0.1"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        let l = &a.location;
        assert_eq!(
            l.allowlist.cidrs,
            ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"]
        );
        assert_eq!(l.denylist.cidrs, ["10.1.0.0/16"]);
        let r = &l.rate_limit;
        assert_eq!((r.rps, r.rpm, r.connections), (10, 300, 4));
        assert_eq!(r.burst_multiplier, 5);
        assert_eq!((r.limit_rate, r.limit_rate_after), (100, 1024));
        assert_eq!(r.allowlist, ["127.0.0.1"]);
    }

    #[test]
    fn the_new_name_wins_over_the_alias() {
        let (a, events) = parse_map(&[
            ("allowlist-source-range", "10.0.0.0/8"),
            ("whitelist-source-range", "0.0.0.0/0"),
        ]);
        assert_eq!(a.location.allowlist.cidrs, ["10.0.0.0/8"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, reason::ANNOTATION_IGNORED);
    }

    #[test]
    fn one_bad_entry_fails_closed() {
        for (name, value) in [
            ("allowlist-source-range", "10.0.0.0/8,10.0.0.0/40"),
            ("allowlist-source-range", "10.0.0.1;deny all"),
            ("denylist-source-range", "localhost"),
            ("denylist-source-range", " , "),
            ("limit-allowlist", "10.0.0.0/8 10.1.0.0/16"),
            ("limit-rps", "-1"),
            ("limit-rate", "99999999999"),
        ] {
            let (a, _) = parse_map(&[(name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
            assert!(a.location.allowlist.is_empty() && a.location.denylist.is_empty());
        }
    }
}
