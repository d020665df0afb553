//! Access control data: client networks (`denylist-source-range`,
//! `allowlist-source-range`/`whitelist-source-range`, ConfigMap `block-cidrs`,
//! `proxy-real-ip-cidr`) and header blocklists (ConfigMap `block-user-agents`,
//! `block-referers`).
//!
//! - Networks compile into sorted, merged address ranges, one list per family, so a
//!   lookup is a binary search whatever the number of entries. IPv4-mapped IPv6
//!   clients (`::ffff:10.1.2.3`) match IPv4 networks, as
//!   [`Cidr::contains`](gangplank_model::policy::Cidr::contains) does.
//! - Header blocklists follow nginx `map` semantics, as ingress-nginx renders them:
//!   plain entries match the whole value, compared case-insensitively (nginx lowercases
//!   map keys and the looked-up value); `~regex` and `~*regex` (case-insensitive) are
//!   unanchored searches. A missing header is matched as the empty value. The regexes
//!   compile into one size-limited `RegexSet`.

use std::collections::HashSet;
use std::net::IpAddr;

use gangplank_model::general::BlockPattern;
use gangplank_model::policy::Cidr;
use gangplank_model::validate::REGEX_SIZE_LIMIT;
use regex::bytes::{RegexSet, RegexSetBuilder};

/// A set of IPv4 and IPv6 networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrSet {
    /// Inclusive IPv4 ranges, sorted, disjoint and not adjacent.
    v4: Vec<(u32, u32)>,
    /// Inclusive IPv6 ranges, likewise.
    v6: Vec<(u128, u128)>,
}

impl CidrSet {
    /// Parses a list of CIDRs or bare addresses; the first invalid entry is an error.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<CidrSet, String> {
        let cidrs = list
            .iter()
            .map(|c| Cidr::parse(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CidrSet::from_cidrs(cidrs))
    }

    /// The set of `cidrs`.
    pub fn from_cidrs(cidrs: impl IntoIterator<Item = Cidr>) -> CidrSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for cidr in cidrs {
            match cidr.addr() {
                IpAddr::V4(addr) => {
                    let host_bits = 32 - u32::from(cidr.prefix());
                    let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
                    let start = u32::from(addr) & mask;
                    v4.push((start, start | !mask));
                }
                IpAddr::V6(addr) => {
                    let host_bits = 128 - u32::from(cidr.prefix());
                    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
                    let start = u128::from(addr) & mask;
                    v6.push((start, start | !mask));
                }
            }
        }
        CidrSet {
            v4: merge(v4, |x| x.checked_add(1)),
            v6: merge(v6, |x| x.checked_add(1)),
        }
    }

    /// True when `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => find(&self.v4, u32::from(ip)),
            IpAddr::V6(ip) => find(&self.v6, u128::from(ip)),
        }
    }

    /// True when no network is listed.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

/// Sorts and merges overlapping or adjacent inclusive ranges.
fn merge<T: Ord + Copy>(mut ranges: Vec<(T, T)>, next: fn(T) -> Option<T>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        if let Some(last) = out.last_mut() {
            // `None`: the last range already reaches the top of the address space.
            if next(last.1).is_none_or(|after| start <= after) {
                last.1 = last.1.max(end);
                continue;
            }
        }
        out.push((start, end));
    }
    out
}

fn find<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    let i = ranges.partition_point(|r| r.0 <= x);
    i > 0 && ranges[i - 1].1 >= x
}

/// A `block-user-agents` / `block-referers` list.
#[derive(Debug, Clone)]
pub struct HeaderBlock {
    /// Plain entries, ASCII-lowercased.
    exact: HashSet<Vec<u8>>,
    /// `~` / `~*` entries.
    regexes: Option<RegexSet>,
}

impl HeaderBlock {
    /// Compiles `entries`; `Ok(None)` for an empty list.
    pub fn compile(entries: &[String]) -> Result<Option<HeaderBlock>, String> {
        if entries.is_empty() {
            return Ok(None);
        }
        let mut exact = HashSet::new();
        let mut patterns = Vec::new();
        for entry in entries {
            match BlockPattern::parse(entry)? {
                BlockPattern::Exact(text) => {
                    exact.insert(text.to_ascii_lowercase().into_bytes());
                }
                BlockPattern::Regex {
                    pattern,
                    case_insensitive,
                } => patterns.push(if case_insensitive {
                    format!("(?i:{pattern})")
                } else {
                    format!("(?:{pattern})")
                }),
            }
        }
        let regexes = if patterns.is_empty() {
            None
        } else {
            let limit = REGEX_SIZE_LIMIT
                .saturating_mul(patterns.len())
                .min(16 << 20);
            Some(
                RegexSetBuilder::new(&patterns)
                    .size_limit(limit)
                    .dfa_size_limit(limit)
                    .build()
                    .map_err(|e| {
                        format!(
                            "the blocklist regexes do not compile together: {}",
                            e.to_string()
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    })?,
            )
        };
        Ok(Some(HeaderBlock { exact, regexes }))
    }

    /// True when `value` (the header's bytes; empty when absent) is blocked.
    pub fn matches(&self, value: &[u8]) -> bool {
        if !self.exact.is_empty() {
            let hit = if value.iter().any(u8::is_ascii_uppercase) {
                self.exact.contains(&value.to_ascii_lowercase())
            } else {
                self.exact.contains(value)
            };
            if hit {
                return true;
            }
        }
        self.regexes.as_ref().is_some_and(|set| set.is_match(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_and_ipv6_networks() {
        let set = CidrSet::parse(&[
            "10.0.0.0/8",
            "192.168.1.7",
            "2001:db8::/32",
            "::1",
            "172.16.5.9/12",
        ])
        .unwrap();
        for inside in [
            "10.0.0.0",
            "10.255.255.255",
            "192.168.1.7",
            "2001:db8::1",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "::1",
            "::ffff:10.1.2.3",
            "172.31.255.255",
            "172.16.0.0",
        ] {
            assert!(set.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "11.0.0.0",
            "9.255.255.255",
            "192.168.1.8",
            "2001:db9::",
            "::2",
            "172.32.0.0",
            "::ffff:11.0.0.1",
        ] {
            assert!(!set.contains(ip(outside)), "{outside}");
        }
        assert!(CidrSet::parse(&["10.0.0.0/33"]).is_err());
        assert!(CidrSet::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn whole_address_spaces_and_adjacent_ranges_merge() {
        let all = CidrSet::parse(&["0.0.0.0/0", "10.0.0.0/8", "::/0"]).unwrap();
        assert_eq!(all.v4, vec![(0, u32::MAX)]);
        assert_eq!(all.v6, vec![(0, u128::MAX)]);
        assert!(all.contains(ip("255.255.255.255")));
        let adjacent = CidrSet::parse(&["10.0.0.0/25", "10.0.0.128/25"]).unwrap();
        assert_eq!(adjacent.v4.len(), 1);
        // Host bits are ignored, as nginx does.
        assert!(
            CidrSet::parse(&["10.1.2.3/8"])
                .unwrap()
                .contains(ip("10.200.0.1"))
        );
    }

    fn any_cidr() -> impl Strategy<Value = Cidr> {
        prop_oneof![
            (any::<u32>(), 0u8..=32).prop_map(|(a, p)| Cidr::parse(&format!(
                "{}/{p}",
                std::net::Ipv4Addr::from(a)
            ))
            .unwrap()),
            // Few distinct high bits, so that v6 networks and addresses overlap often.
            (0u128..4, any::<u64>(), 0u8..=128).prop_map(|(hi, lo, p)| Cidr::parse(&format!(
                "{}/{p}",
                std::net::Ipv6Addr::from((hi << 126) | u128::from(lo))
            ))
            .unwrap()),
        ]
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::from(std::net::Ipv4Addr::from(a))),
            (0u128..4, any::<u64>()).prop_map(|(hi, lo)| IpAddr::from(std::net::Ipv6Addr::from(
                (hi << 126) | u128::from(lo)
            ))),
            any::<u32>().prop_map(|a| IpAddr::from(std::net::Ipv4Addr::from(a).to_ipv6_mapped())),
        ]
    }

    proptest! {
        /// The compiled set agrees with the model's one-network check.
        #[test]
        fn cidr_set_matches_the_reference(
            cidrs in proptest::collection::vec(any_cidr(), 0..12),
            probes in proptest::collection::vec(any_ip(), 1..32),
        ) {
            let set = CidrSet::from_cidrs(cidrs.iter().copied());
            for probe in probes {
                let expected = cidrs.iter().any(|c| c.contains(probe));
                prop_assert_eq!(set.contains(probe), expected, "{} in {:?}", probe, cidrs);
            }
            // Probing the edges of every network too.
            for c in &cidrs {
                let probe = c.addr();
                let expected = cidrs.iter().any(|c| c.contains(probe));
                prop_assert_eq!(set.contains(probe), expected);
            }
        }
    }

    #[test]
    fn header_blocklists_follow_nginx_map_rules() {
        let block =
            HeaderBlock::compile(&["BadBot/1.0".into(), "~*crawler".into(), "~^curl/".into()])
                .unwrap()
                .unwrap();
        assert!(block.matches(b"badbot/1.0"));
        assert!(block.matches(b"BADBOT/1.0"));
        assert!(!block.matches(b"BadBot/1.0 extra"));
        assert!(block.matches(b"Mozilla (compatible; SuperCrawler)"));
        assert!(block.matches(b"curl/8.0"));
        assert!(!block.matches(b"CURL/8.0"));
        assert!(!block.matches(b"Mozilla/5.0"));
        assert!(!block.matches(b""));
        let empty = HeaderBlock::compile(&["~^$".into()]).unwrap().unwrap();
        assert!(empty.matches(b""), "a missing header is the empty value");
        assert!(HeaderBlock::compile(&[]).unwrap().is_none());
        assert!(HeaderBlock::compile(&["~(?=x)".into()]).is_err());
        assert!(HeaderBlock::compile(&["~".into()]).is_err());
    }
}
