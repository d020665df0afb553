//! Per-location and per-server policies: the typed form of the
//! `nginx.ingress.kubernetes.io/*` annotations (Part B §5.2) that the proxy enforces.
//!
//! The controller parses each annotation into one of these types; the proxy reads them
//! as data. Nothing here is ever rendered into configuration text (Part A.3), so
//! validation is about meaning and hygiene: every user string is free of control
//! characters, header names are RFC 9110 tokens, URLs are absolute http(s) URLs without
//! directive-breaking characters, CIDRs parse, regexes compile within size limits, and
//! `auth-method` is one of a fixed set of methods.
//!
//! Defaults are ingress-nginx's behaviour when the annotation is absent. Where a
//! ConfigMap value applies unless an annotation overrides it (timeouts, body size,
//! `ssl-redirect`...), the field is an `Option` and `None` means "use the value of
//! [`GeneralConfig`](crate::general::GeneralConfig)".
//!
//! ```
//! use gangplank_model::policy::{CorsConfig, NginxDuration, NginxSize};
//! use gangplank_model::validate::Validate;
//!
//! let cors: CorsConfig =
//!     serde_json::from_str(r#"{"enabled":true,"allowOrigin":["https://app.example.com"]}"#)?;
//! assert_eq!(cors.max_age, 1_728_000);
//! assert!(cors.validate().is_ok());
//!
//! let size: NginxSize = "8m".parse()?;
//! assert_eq!(size.bytes(), 8 << 20);
//! let timeout: NginxDuration = "1h30m".parse()?;
//! assert_eq!(timeout.as_duration().as_secs(), 5400);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Do not add fields that carry nginx directives or file paths (snippets, `auth-file`
//! paths): credentials, certificates and keys travel as data, so the proxy never opens
//! a file named by a user.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::expr::ComplexValue;
use crate::validate::{
    Path, Report, Validate, check_header_name, check_header_value, check_hostname, check_port_text,
    check_regex, check_text,
};

// ---------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Largest size accepted anywhere: 1 TiB (`"1024g"`). Far above any sane body or
/// buffer size, and small enough that arithmetic on sizes never overflows.
pub const MAX_SIZE_BYTES: u64 = 1024 * GIB;

/// A size in bytes, written the nginx way: `"8k"`, `"1m"`, `"0"` (`proxy-body-size`,
/// `proxy-buffer-size`, `client-body-buffer-size`...).
///
/// Decodes from a JSON number of bytes or from a string matching `^(?i)\d+[bkmg]?$`;
/// encodes as the shortest exact string, so `1048576` and `"1024k"` both become `"1m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NginxSize(u64);

impl NginxSize {
    /// Zero bytes; for `proxy-body-size` it means "no limit".
    pub const ZERO: NginxSize = NginxSize(0);

    /// `bytes`, if it is at most [`MAX_SIZE_BYTES`].
    pub fn from_bytes(bytes: u64) -> Result<NginxSize, String> {
        if bytes > MAX_SIZE_BYTES {
            Err(format!(
                "size {bytes} bytes is more than the maximum of 1024g ({MAX_SIZE_BYTES} bytes)"
            ))
        } else {
            Ok(NginxSize(bytes))
        }
    }

    /// `n` KiB, for defaults written in code.
    pub(crate) const fn kib(n: u64) -> NginxSize {
        NginxSize(n * KIB)
    }

    /// `n` MiB, for defaults written in code.
    pub(crate) const fn mib(n: u64) -> NginxSize {
        NginxSize(n * MIB)
    }

    /// The size in bytes.
    pub fn bytes(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for NginxSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b == 0 {
            f.write_str("0")
        } else if b.is_multiple_of(GIB) {
            write!(f, "{}g", b / GIB)
        } else if b.is_multiple_of(MIB) {
            write!(f, "{}m", b / MIB)
        } else if b.is_multiple_of(KIB) {
            write!(f, "{}k", b / KIB)
        } else {
            write!(f, "{b}")
        }
    }
}

impl FromStr for NginxSize {
    type Err = String;

    fn from_str(text: &str) -> Result<NginxSize, String> {
        let invalid = || {
            format!(
                "{text:?} is not an nginx size: expected a number of bytes with an optional unit k, m or g (\"8k\", \"1m\", \"0\")"
            )
        };
        let (digits, unit) = match text.as_bytes().last() {
            Some(b) if b.is_ascii_alphabetic() => (&text[..text.len() - 1], b.to_ascii_lowercase()),
            _ => (text, b'b'),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let multiplier = match unit {
            b'b' => 1,
            b'k' => KIB,
            b'm' => MIB,
            b'g' => GIB,
            _ => return Err(invalid()),
        };
        let too_big = || format!("size {text:?} is more than the maximum of 1024g");
        let number: u64 = digits.parse().map_err(|_| too_big())?;
        let bytes = number.checked_mul(multiplier).ok_or_else(too_big)?;
        if bytes > MAX_SIZE_BYTES {
            return Err(too_big());
        }
        Ok(NginxSize(bytes))
    }
}

impl Serialize for NginxSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NginxSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NginxSize, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = NginxSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: a whole number of bytes, or a string such as \"8k\" or \"1m\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NginxSize, E> {
                NginxSize::from_bytes(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NginxSize, E> {
                match u64::try_from(v) {
                    Ok(v) => NginxSize::from_bytes(v).map_err(E::custom),
                    Err(_) => Err(E::custom(format!("size {v} is negative"))),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<NginxSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

// ---------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------

const SECOND_MS: u64 = 1000;
const MINUTE_MS: u64 = 60 * SECOND_MS;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Longest duration accepted anywhere: 365 days. Longer timeouts are typos, and the
/// bound keeps every sum of durations far from overflow.
pub const MAX_DURATION_MS: u64 = 365 * DAY_MS;

/// nginx time units, largest first; a time string must use them in this order, each at
/// most once (`1h30m`, not `30m1h`), as nginx's own parser requires.
const TIME_UNITS: [(&str, u64); 8] = [
    ("y", 365 * DAY_MS),
    ("M", 30 * DAY_MS),
    ("w", 7 * DAY_MS),
    ("d", DAY_MS),
    ("h", HOUR_MS),
    ("m", MINUTE_MS),
    ("s", SECOND_MS),
    ("ms", 1),
];

/// A duration written the nginx way: `"60"` (seconds), `"60s"`, `"500ms"`, `"5m"`,
/// `"1h"`, `"1d"`, `"1h30m"`. Millisecond precision, at most [`MAX_DURATION_MS`].
///
/// Decodes from a JSON integer (seconds, as ConfigMap timeouts are written) or a time
/// string; encodes as the canonical string (`90` becomes `"1m30s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NginxDuration(u64);

impl NginxDuration {
    /// No time at all; for `proxy-next-upstream-timeout` it means "no limit".
    pub const ZERO: NginxDuration = NginxDuration(0);

    /// `ms` milliseconds, if within [`MAX_DURATION_MS`].
    pub fn from_millis(ms: u64) -> Result<NginxDuration, String> {
        if ms > MAX_DURATION_MS {
            Err(format!(
                "duration of {ms} ms is longer than the maximum of 365 days"
            ))
        } else {
            Ok(NginxDuration(ms))
        }
    }

    /// `secs` seconds, if within [`MAX_DURATION_MS`].
    pub fn from_secs(secs: u64) -> Result<NginxDuration, String> {
        match secs.checked_mul(SECOND_MS) {
            Some(ms) if ms <= MAX_DURATION_MS => Ok(NginxDuration(ms)),
            _ => Err(format!(
                "duration of {secs} seconds is longer than the maximum of 365 days"
            )),
        }
    }

    /// `n` seconds, for defaults written in code.
    pub(crate) const fn secs(n: u64) -> NginxDuration {
        NginxDuration(n * SECOND_MS)
    }

    /// The duration as a [`std::time::Duration`].
    pub fn as_duration(&self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// The duration in whole milliseconds.
    pub fn as_millis(&self) -> u64 {
        self.0
    }

    /// True for a zero duration.
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for NginxDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", DAY_MS),
            ("h", HOUR_MS),
            ("m", MINUTE_MS),
            ("s", SECOND_MS),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl FromStr for NginxDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<NginxDuration, String> {
        let invalid = || {
            format!(
                "{text:?} is not an nginx time: expected seconds (\"60\") or numbers with units ms, s, m, h, d, w, M, y, largest first (\"500ms\", \"5m\", \"1h30m\")"
            )
        };
        let too_long = || format!("time {text:?} is longer than the maximum of 365 days");
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid());
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut total: u64 = 0;
        let mut last_rank: Option<usize> = None;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(invalid());
            }
            let number: u64 = text[start..i].parse().map_err(|_| too_long())?;
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            // A number without a unit counts as seconds, as in nginx (`1h30` = 1h30s).
            let unit = match &text[unit_start..i] {
                "" => "s",
                unit => unit,
            };
            let rank = TIME_UNITS
                .iter()
                .position(|(name, _)| *name == unit)
                .ok_or_else(invalid)?;
            if last_rank.is_some_and(|last| rank <= last) {
                return Err(invalid());
            }
            last_rank = Some(rank);
            total = number
                .checked_mul(TIME_UNITS[rank].1)
                .and_then(|ms| total.checked_add(ms))
                .filter(|ms| *ms <= MAX_DURATION_MS)
                .ok_or_else(too_long)?;
        }
        Ok(NginxDuration(total))
    }
}

impl Serialize for NginxDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NginxDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NginxDuration, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = NginxDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a time: whole seconds, or a string such as \"60s\", \"500ms\" or \"1h30m\"",
                )
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NginxDuration, E> {
                NginxDuration::from_secs(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NginxDuration, E> {
                match u64::try_from(v) {
                    Ok(v) => NginxDuration::from_secs(v).map_err(E::custom),
                    Err(_) => Err(E::custom(format!("time {v} is negative"))),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<NginxDuration, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

// ---------------------------------------------------------------------------------
// Addresses, URLs, names: the shared value checks of this module
// ---------------------------------------------------------------------------------

/// An IPv4 or IPv6 network: `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a
/// single-host network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address[/prefix]` with std's strict address parsers (no leading zeros,
    /// no zone ids, no white space).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let invalid = |why: &str| format!("{text:?} is not an IP address or CIDR: {why}");
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/')))
        {
            return Err(invalid(&format!("it contains {c:?}")));
        }
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| invalid(&format!("{addr_text:?} is not an IP address")))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => {
                // Plain decimal, like the addresses: no sign, no leading zeros.
                let ok = p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
                match p.parse::<u8>() {
                    Ok(n) if ok && n <= max => n,
                    _ => {
                        return Err(invalid(&format!(
                            "the prefix length must be a number in 0..{max}"
                        )));
                    }
                }
            }
        };
        Ok(Cidr { addr, prefix })
    }

    /// The network address as written (host bits are kept, and ignored when matching).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True when `ip` is inside this network. IPv4-mapped IPv6 client addresses
    /// (`::ffff:10.1.2.3`) match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        Cidr::parse(text)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IP address or CIDR (`allowlist-source-range`, `block-cidrs`...).
pub fn check_cidr(text: &str) -> Result<(), String> {
    Cidr::parse(text).map(|_| ())
}

/// Characters that end, open, quote, escape or comment out an nginx directive, plus
/// the few ASCII characters that are never valid unescaped in a URL. None of them has
/// a place in a URL, path or token, and rejecting them keeps the §9 corpus out even if
/// a value is ever echoed somewhere that parses it again.
const DIRECTIVE_BREAKERS: &[char] = &['"', '\'', '\\', ';', '{', '}', '#', '<', '>', '`', '^', '|'];

/// Visible ASCII only (no spaces, no control or non-ASCII characters such as a
/// fullwidth `；`) and none of [`DIRECTIVE_BREAKERS`].
fn check_plain_ascii(value: &str, what: &str) -> Result<(), String> {
    check_text(value)?;
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{what} {value:?} contains {c:?}; only visible ASCII characters are allowed (no spaces; percent-encode anything else)"
        ));
    }
    if let Some(c) = value.chars().find(|c| DIRECTIVE_BREAKERS.contains(c)) {
        return Err(format!(
            "{what} {value:?} contains {c:?}, which is not allowed here"
        ));
    }
    Ok(())
}

/// Every `%` starts a two-digit hex escape, and none of them encodes NUL.
fn check_percent_escapes(value: &str, what: &str) -> Result<(), String> {
    let bytes = value.as_bytes();
    for (i, _) in value.match_indices('%') {
        match bytes.get(i + 1..i + 3) {
            Some(b"00") => return Err(format!("{what} {value:?} contains %00 (an encoded NUL)")),
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => {}
            _ => {
                return Err(format!(
                    "{what} {value:?} has a '%' that is not followed by two hex digits"
                ));
            }
        }
    }
    Ok(())
}

/// An absolute `http://` or `https://` URL with a host, and no nginx variables.
///
/// Strict on purpose (CVE-2023-5044, CVE-2025-24514): visible ASCII only, no user
/// info, none of `" ' \ ; { } # < > ^ | `` ` ``, valid percent escapes.
pub fn check_url(url: &str) -> Result<(), String> {
    check_url_impl(url, false)
}

/// Like [`check_url`], but nginx variables (`$host`, `$request_uri`, `$1`...) may
/// appear where ingress-nginx allowed them (`auth-url`, `auth-signin`,
/// `permanent-redirect`, `mirror-target`). Only variables the data plane can evaluate
/// are accepted ([`crate::expr`]), and only in the `$name` form: braces are rejected.
/// In the host only `$host` and `$server_name` may appear, so a client can never pick
/// the destination (`http://$http_x/` is rejected).
pub fn check_url_template(url: &str) -> Result<(), String> {
    check_url_impl(url, true)
}

fn check_url_impl(url: &str, variables: bool) -> Result<(), String> {
    check_plain_ascii(url, "URL")?;
    let masked;
    let structural = if url.contains('$') {
        if !variables {
            return Err(format!(
                "URL {url:?} contains '$'; nginx variables are not allowed here"
            ));
        }
        ComplexValue::parse(url).map_err(|e| format!("URL {url:?}: {e}"))?;
        check_host_variables(url)?;
        masked = mask_variables(url);
        masked.as_str()
    } else {
        url
    };
    let (scheme, rest) = structural.split_once("://").ok_or_else(|| {
        format!("URL {url:?} is not absolute; it must start with http:// or https://")
    })?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(format!(
            "URL {url:?} must use http or https, not {scheme:?}"
        ));
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(format!(
            "URL {url:?} contains user info ('@'), which is not allowed"
        ));
    }
    check_authority(authority).map_err(|why| format!("URL {url:?}: {why}"))?;
    check_percent_escapes(tail, "URL")
}

/// Variables that may stand in the host of a URL template: the matched server's own
/// name (`https://$host/oauth2/auth` is the oauth2-proxy idiom). Any other request
/// variable there would let a client choose where the proxy sends the request (SSRF).
const HOST_VARIABLES: &[&str] = &["host", "server_name"];

/// Variables whose value is a path, always starting with `/`: the host ends where they
/// begin (`https://mirror.example.com$request_uri`).
const PATH_VARIABLES: &[&str] = &["request_uri", "uri", "document_uri"];

/// The `$name` at the start of `text` (after the `$`), possibly empty.
fn variable_name(text: &str) -> &str {
    let len = text
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    &text[..len]
}

/// Only [`HOST_VARIABLES`] may appear before the path of a URL template.
fn check_host_variables(url: &str) -> Result<(), String> {
    let Some((_, rest)) = url.split_once("://") else {
        // Not absolute: reported by the structural check.
        return Ok(());
    };
    let mut i = 0;
    while let Some(offset) = rest[i..].find(['$', '/', '?']) {
        i += offset;
        if rest.as_bytes()[i] != b'$' {
            break;
        }
        let name = variable_name(&rest[i + 1..]);
        if PATH_VARIABLES.contains(&name) {
            break;
        }
        if !name.is_empty() && !HOST_VARIABLES.contains(&name) {
            return Err(format!(
                "URL {url:?} uses ${name} in its host; only $host and $server_name may appear there, so that a client cannot choose where the request goes"
            ));
        }
        i += 1 + name.len();
    }
    Ok(())
}

/// Replaces each variable by neutral text (`/v` for path variables, `v` for others) so
/// that the URL's structure (scheme, host, port) can be checked as if expanded.
fn mask_variables(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let name = variable_name(&rest[at + 1..]);
        if name.is_empty() {
            out.push('$');
        } else if PATH_VARIABLES.contains(&name) {
            out.push_str("/v");
        } else {
            out.push('v');
        }
        rest = &rest[at + 1 + name.len()..];
    }
    out.push_str(rest);
    out
}

/// `host[:port]` where host is a DNS name, an IPv4 address or a bracketed IPv6 address.
fn check_authority(authority: &str) -> Result<(), String> {
    if authority.is_empty() {
        return Err("it has no host".into());
    }
    let port = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("the IPv6 address has no closing ']'")?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or("unexpected text after ']'")?),
        }
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.parse::<Ipv4Addr>().is_err() {
            if host == "_" || host.starts_with("*.") {
                return Err(format!("{host:?} is not a host name"));
            }
            check_hostname(host)?;
        }
        port
    };
    if let Some(port) = port {
        check_port_text(port)?;
    }
    Ok(())
}

/// An absolute path on this host (`app-root`, `no-tls-redirect-locations`): starts
/// with a single `/`, plain ASCII, no variables.
pub fn check_uri_path(value: &str) -> Result<(), String> {
    check_plain_ascii(value, "path")?;
    if !value.starts_with('/') {
        return Err(format!("path {value:?} must start with '/'"));
    }
    if value.starts_with("//") {
        return Err(format!(
            "path {value:?} starts with '//', which names a host, not a path"
        ));
    }
    if value.contains('$') {
        return Err(format!(
            "path {value:?} contains '$'; nginx variables are not allowed here"
        ));
    }
    check_percent_escapes(value, "path")
}

/// A Kubernetes namespace: a DNS-1123 label (`what` names it in the error).
pub fn check_dns_label(value: &str, what: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {value:?} is not a valid Kubernetes name (lowercase letters, digits and '-', at most 63 characters)"
        ))
    }
}

/// A Kubernetes object name: a DNS-1123 subdomain. No `/`, so never a path
/// (CVE-2025-24513).
pub fn check_dns_subdomain(value: &str, what: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {value:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253 characters)"
        ))
    }
}

/// Headers that frame the message or the connection. The proxy manages them itself;
/// setting them from configuration would desynchronise client, proxy and upstream
/// (request smuggling), so they are refused in every configured header map.
const FRAMING_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A header name that configuration may set: an RFC 9110 token that is not one of the
/// framing headers (`Content-Length`, `Transfer-Encoding`, `Connection`...).
pub fn check_settable_header_name(name: &str) -> Result<(), String> {
    check_header_name(name)?;
    if FRAMING_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "header {name:?} frames the message and is managed by the proxy; it cannot be set from configuration"
        ));
    }
    Ok(())
}

/// A `header name -> value` map: settable names, valid values, no name twice in
/// different case (HTTP names are case-insensitive).
pub(crate) fn check_header_map(
    map: &BTreeMap<String, String>,
    path: &Path<'_>,
    report: &mut Report,
) {
    let mut seen: HashMap<String, &str> = HashMap::with_capacity(map.len());
    for (name, value) in map {
        let at = path.field(name);
        report.check(&at, check_settable_header_name(name));
        report.check(&at, check_header_value(value));
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), name) {
            report.add(&at, format!("header {name:?} is also given as {first:?}"));
        }
    }
}

/// A list of header names.
pub(crate) fn check_header_names(names: &[String], path: &Path<'_>, report: &mut Report) {
    for (i, name) in names.iter().enumerate() {
        report.check(&path.index(i), check_header_name(name));
    }
}

/// A list of CIDRs.
pub(crate) fn check_cidrs(cidrs: &[String], path: &Path<'_>, report: &mut Report) {
    for (i, cidr) in cidrs.iter().enumerate() {
        report.check(&path.index(i), check_cidr(cidr));
    }
}

/// A status code within `range`.
pub(crate) fn check_status(
    code: u16,
    range: RangeInclusive<u16>,
    what: &str,
) -> Result<(), String> {
    if range.contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "{what} {code} is not in {}..{}",
            range.start(),
            range.end()
        ))
    }
}

/// An nginx complex value used as a key (`auth-cache-key`): plain ASCII, variables in
/// the `$name` form, and only variables the data plane can evaluate.
pub(crate) fn check_cache_key(value: &str) -> Result<(), String> {
    check_plain_ascii(value, "cache key")?;
    ComplexValue::parse(value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// An OpenSSL cipher list (`ssl-ciphers`, `proxy-ssl-ciphers`): names of letters,
/// digits, `-`, `_`, `+`, `!`, `@`, `=`, `.` separated by `:` or `,`.
pub fn check_cipher_list(list: &str) -> Result<(), String> {
    check_text(list)?;
    if list.is_empty() {
        return Err("cipher list is empty".into());
    }
    match list
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_+!@=.:,".contains(*c)))
    {
        None => Ok(()),
        Some(c) => Err(format!("cipher list {list:?} contains {c:?}")),
    }
}

/// A query-string parameter name (`auth-signin-redirect-param`).
pub(crate) fn check_param_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "parameter name {name:?} must be 1 to 64 letters, digits, '_', '-' or '.'"
        ))
    }
}

/// Longest PEM text accepted: a CA bundle with several hundred certificates fits.
pub const MAX_PEM_LEN: usize = 1 << 20;

/// PEM text containing a block labelled `label` (`CERTIFICATE`, `PRIVATE KEY`...).
/// Only the envelope is checked here; the certificate code parses the contents.
fn check_pem(pem: &str, label: &str) -> Result<(), String> {
    if pem.len() > MAX_PEM_LEN {
        return Err(format!("PEM is longer than {MAX_PEM_LEN} bytes"));
    }
    if let Some(b) = pem
        .bytes()
        .find(|b| !(b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\r' | b'\n')))
    {
        return Err(format!(
            "PEM contains the byte 0x{b:02x}; PEM is plain ASCII text"
        ));
    }
    let has_block = pem
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.contains(label))
        && pem.contains("-----END ");
    if has_block {
        Ok(())
    } else {
        Err(format!("not PEM: no \"-----BEGIN ...{label}-----\" block"))
    }
}

// ---------------------------------------------------------------------------------
// Small enums shared by several policies
// ---------------------------------------------------------------------------------

/// The HTTP methods `auth-method` may name: exactly these, upper case, nothing around
/// them (CVE-2026-1580 was an unanchored match that let `XGETX` and `GET;DELETE` in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
}

impl HttpMethod {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Connect => "CONNECT",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Trace => "TRACE",
        }
    }
}

/// A reference to a Kubernetes Secret. Kept for events and logs; the proxy never
/// reads Secrets, the controller copies their contents into the policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SecretRef {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl Validate for SecretRef {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        report.check(
            &path.field("namespace"),
            check_dns_label(&self.namespace, "namespace"),
        );
        report.check(
            &path.field("name"),
            check_dns_subdomain(&self.name, "Secret name"),
        );
    }
}

/// TLS protocol versions as ingress-nginx names them (`ssl-protocols`,
/// `proxy-ssl-protocols`). Old versions still decode, so old ConfigMaps load, but the
/// proxy only speaks TLSv1.2 and TLSv1.3 and ignores the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TlsProtocol {
    /// `SSLv2` (never negotiated).
    #[serde(rename = "SSLv2")]
    SslV2,
    /// `SSLv3` (never negotiated).
    #[serde(rename = "SSLv3")]
    SslV3,
    /// `TLSv1` (never negotiated).
    #[serde(rename = "TLSv1")]
    TlsV1,
    /// `TLSv1.1` (never negotiated).
    #[serde(rename = "TLSv1.1")]
    TlsV1_1,
    /// `TLSv1.2`
    #[serde(rename = "TLSv1.2")]
    TlsV1_2,
    /// `TLSv1.3`
    #[serde(rename = "TLSv1.3")]
    TlsV1_3,
}

impl TlsProtocol {
    /// True for the versions the proxy negotiates (TLSv1.2, TLSv1.3).
    pub fn is_supported(self) -> bool {
        matches!(self, TlsProtocol::TlsV1_2 | TlsProtocol::TlsV1_3)
    }
}

/// A protocol list must leave at least one version the proxy can negotiate.
pub(crate) fn check_tls_protocols(list: &[TlsProtocol]) -> Result<(), String> {
    if list.is_empty() {
        return Err("no TLS protocol given; use TLSv1.2 and/or TLSv1.3".into());
    }
    if !list.iter().any(|p| p.is_supported()) {
        return Err("none of the listed TLS protocols is supported; Gangplank negotiates TLSv1.2 and TLSv1.3 only".into());
    }
    Ok(())
}

/// When a failed request is passed to the next endpoint (`proxy-next-upstream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NextUpstream {
    /// Connection error, or an error while sending the request or reading the header.
    #[serde(rename = "error")]
    Error,
    /// Timeout while connecting, sending or reading the header.
    #[serde(rename = "timeout")]
    Timeout,
    /// Empty or invalid response header.
    #[serde(rename = "invalid_header")]
    InvalidHeader,
    /// Status 500.
    #[serde(rename = "http_500")]
    Http500,
    /// Status 502.
    #[serde(rename = "http_502")]
    Http502,
    /// Status 503.
    #[serde(rename = "http_503")]
    Http503,
    /// Status 504.
    #[serde(rename = "http_504")]
    Http504,
    /// Status 403.
    #[serde(rename = "http_403")]
    Http403,
    /// Status 404.
    #[serde(rename = "http_404")]
    Http404,
    /// Status 429.
    #[serde(rename = "http_429")]
    Http429,
    /// Also retry non-idempotent requests (POST, LOCK, PATCH).
    #[serde(rename = "non_idempotent")]
    NonIdempotent,
    /// Never retry; must be alone.
    #[serde(rename = "off")]
    Off,
}

/// ingress-nginx's default `proxy-next-upstream`: `error timeout`.
pub const DEFAULT_NEXT_UPSTREAM: &[NextUpstream] = &[NextUpstream::Error, NextUpstream::Timeout];

pub(crate) fn check_next_upstream(list: &[NextUpstream]) -> Result<(), String> {
    if list.is_empty() {
        return Err("no condition given; use [\"off\"] to disable retries".into());
    }
    if list.contains(&NextUpstream::Off) && list.len() > 1 {
        return Err("\"off\" cannot be combined with other conditions".into());
    }
    Ok(())
}

/// HTTP version spoken to the upstream (`proxy-http-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ProxyHttpVersion {
    /// `1.0`
    #[serde(rename = "1.0")]
    Http10,
    /// `1.1` (the default; needed for keepalive).
    #[default]
    #[serde(rename = "1.1")]
    Http11,
}

// ---------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------

/// `auth-type`: how credentials are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    /// HTTP Basic: `user:password` checked against htpasswd-style hashes.
    Basic,
    /// HTTP Digest: the hashes are htdigest `HA1` values (32 hex digits).
    Digest,
}

/// `auth-secret-type`: the shape of the Secret the credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthSecretType {
    /// Key `auth` holds an htpasswd file.
    #[default]
    AuthFile,
    /// Each key is a user, each value a password hash.
    AuthMap,
}

/// `auth-type`, `auth-realm`, `auth-secret`, `auth-secret-type`: basic or digest
/// authentication, with the credentials as data.
///
/// `Debug` prints user names but not their hashes.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BasicDigestAuth {
    /// `basic` or `digest`; absent means no authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<AuthType>,
    /// Realm shown by the browser (`auth-realm`).
    pub realm: String,
    /// The Secret the credentials came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
    /// Shape of that Secret.
    pub secret_type: AuthSecretType,
    /// User name -> password hash (htpasswd formats for basic: `$apr1$`, `$2y$`,
    /// `{SHA}`...; the htdigest `HA1` for digest).
    pub credentials: BTreeMap<String, String>,
}

impl fmt::Debug for BasicDigestAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicDigestAuth")
            .field("auth_type", &self.auth_type)
            .field("realm", &self.realm)
            .field("secret", &self.secret)
            .field("secret_type", &self.secret_type)
            .field("users", &self.credentials.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl BasicDigestAuth {
    /// True when requests must authenticate.
    pub fn is_enabled(&self) -> bool {
        self.auth_type.is_some()
    }
}

/// The realm goes into `WWW-Authenticate: Basic realm="..."`; ingress-nginx allows
/// letters, digits, space and `-._~/:`.
fn check_realm(realm: &str) -> Result<(), String> {
    check_text(realm)?;
    match realm
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || " -._~/:".contains(*c)))
    {
        None => Ok(()),
        Some(c) => Err(format!(
            "realm {realm:?} contains {c:?}; only letters, digits, space and -._~/: are allowed"
        )),
    }
}

impl Validate for BasicDigestAuth {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        report.check(&path.field("realm"), check_realm(&self.realm));
        self.secret.validate_at(&path.field("secret"), report);
        let credentials = path.field("credentials");
        if self.auth_type.is_some() && self.credentials.is_empty() {
            report.add(
                &credentials,
                "authentication is on but there are no credentials",
            );
        }
        for (user, hash) in &self.credentials {
            let at = credentials.field(user);
            let user_ok = check_text(user).and_then(|()| {
                if user.is_empty() || user.len() > 256 || user.contains(':') {
                    Err(format!(
                        "user name {user:?} must be 1 to 256 characters without ':'"
                    ))
                } else {
                    Ok(())
                }
            });
            report.check(&at, user_ok);
            let hash_ok = if self.auth_type == Some(AuthType::Digest) {
                if hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(())
                } else {
                    Err(format!(
                        "the digest hash of {user:?} is not 32 hex digits (htdigest HA1)"
                    ))
                }
            } else if !hash.is_empty()
                && hash.len() <= 1024
                && hash.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            {
                Ok(())
            } else {
                Err(format!(
                    "the password hash of {user:?} must be 1 to 1024 visible ASCII characters without ':'"
                ))
            };
            report.check(&at, hash_ok);
        }
    }
}

/// One `auth-cache-duration` entry: responses with these statuses are cached this long.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CacheDuration {
    /// Status codes the entry applies to.
    pub codes: Vec<u16>,
    /// How long they are cached.
    pub duration: NginxDuration,
}

impl Validate for CacheDuration {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        let codes = path.field("codes");
        if self.codes.is_empty() {
            report.add(&codes, "no status codes given");
        }
        for (i, code) in self.codes.iter().enumerate() {
            report.check(
                &codes.index(i),
                check_status(*code, 100..=599, "status code"),
            );
        }
    }
}

/// ingress-nginx's `auth-cache-duration` when a cache key is set: `200 202 401 5m`.
fn default_cache_duration() -> Vec<CacheDuration> {
    vec![CacheDuration {
        codes: vec![200, 202, 401],
        duration: NginxDuration::secs(300),
    }]
}

/// `auth-url` and friends: every request is first sent to an authentication service;
/// 2xx lets it through, 401/403 are returned to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ExternalAuth {
    /// `auth-url`: the authentication service; absent means no external auth.
    /// May contain nginx variables such as `$host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `auth-method`: the method of the auth request; absent means `GET` (nginx's
    /// auth subrequests are GET whatever the client's method).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// `auth-signin`: where a 401 redirects the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signin: Option<String>,
    /// `auth-signin-redirect-param`: the query parameter carrying the original URL;
    /// absent means `rd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signin_redirect_param: Option<String>,
    /// `auth-response-headers`: headers copied from the auth response to the upstream
    /// request.
    pub response_headers: Vec<String>,
    /// `auth-request-redirect`: value of `X-Auth-Request-Redirect` (a URL or a path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_redirect: Option<String>,
    /// `auth-cache-key`: cache auth responses under this key (an nginx complex value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// `auth-cache-duration`; empty means `200 202 401 5m`.
    pub cache_duration: Vec<CacheDuration>,
    /// `auth-always-set-cookie`: pass `Set-Cookie` from the auth response on every
    /// status, not only on 2xx.
    pub always_set_cookie: bool,
    /// `auth-proxy-set-headers`: extra headers on the auth request.
    pub proxy_set_headers: BTreeMap<String, String>,
    /// `auth-keepalive`: idle connections kept to the auth service; 0 disables.
    pub keepalive_connections: u32,
    /// `auth-keepalive-requests`: requests per kept connection.
    pub keepalive_requests: u32,
    /// `auth-keepalive-timeout`: how long a kept connection may idle.
    pub keepalive_timeout: NginxDuration,
    /// `auth-keepalive-share-vars`: share variables between the auth and main request.
    pub keepalive_share_vars: bool,
}

impl Default for ExternalAuth {
    fn default() -> Self {
        ExternalAuth {
            url: None,
            method: None,
            signin: None,
            signin_redirect_param: None,
            response_headers: Vec::new(),
            request_redirect: None,
            cache_key: None,
            cache_duration: Vec::new(),
            always_set_cookie: false,
            proxy_set_headers: BTreeMap::new(),
            keepalive_connections: 0,
            keepalive_requests: 1000,
            keepalive_timeout: NginxDuration::secs(60),
            keepalive_share_vars: false,
        }
    }
}

impl ExternalAuth {
    /// True when requests must pass the auth service.
    pub fn is_enabled(&self) -> bool {
        self.url.is_some()
    }

    /// The redirect parameter of `auth-signin`, `rd` by default.
    pub fn signin_redirect_param(&self) -> &str {
        self.signin_redirect_param.as_deref().unwrap_or("rd")
    }

    /// The cache durations in effect: the configured ones, or `200 202 401 5m`.
    pub fn effective_cache_duration(&self) -> Vec<CacheDuration> {
        if self.cache_duration.is_empty() {
            default_cache_duration()
        } else {
            self.cache_duration.clone()
        }
    }
}

/// `auth-request-redirect` is a URL or a path.
pub(crate) fn check_url_or_path(value: &str) -> Result<(), String> {
    if value.contains("://") {
        check_url_template(value)
    } else {
        check_uri_path(value)
    }
}

impl Validate for ExternalAuth {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if let Some(url) = &self.url {
            report.check(&path.field("url"), check_url_template(url));
        }
        if let Some(url) = &self.signin {
            report.check(&path.field("signin"), check_url_template(url));
        }
        if let Some(param) = &self.signin_redirect_param {
            report.check(&path.field("signinRedirectParam"), check_param_name(param));
        }
        check_header_names(
            &self.response_headers,
            &path.field("responseHeaders"),
            report,
        );
        if let Some(redirect) = &self.request_redirect {
            report.check(&path.field("requestRedirect"), check_url_or_path(redirect));
        }
        if let Some(key) = &self.cache_key {
            report.check(&path.field("cacheKey"), check_cache_key(key));
        }
        self.cache_duration
            .validate_at(&path.field("cacheDuration"), report);
        check_header_map(
            &self.proxy_set_headers,
            &path.field("proxySetHeaders"),
            report,
        );
        if self.keepalive_requests == 0 {
            report.add(&path.field("keepaliveRequests"), "must be at least 1");
        }
        if self.keepalive_timeout.is_zero() {
            report.add(&path.field("keepaliveTimeout"), "must be longer than 0s");
        }
    }
}

/// `enable-cors` and `cors-*`: CORS response headers and the 204 preflight answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CorsConfig {
    /// `enable-cors`.
    pub enabled: bool,
    /// `cors-allow-origin`: `*`, `null`, `scheme://host[:port]` or
    /// `scheme://*.host[:port]`; a matching request `Origin` is echoed.
    pub allow_origin: Vec<String>,
    /// `cors-allow-methods`.
    pub allow_methods: Vec<String>,
    /// `cors-allow-headers`.
    pub allow_headers: Vec<String>,
    /// `cors-allow-credentials`.
    pub allow_credentials: bool,
    /// `cors-expose-headers`.
    pub expose_headers: Vec<String>,
    /// `cors-max-age`, in seconds.
    pub max_age: u32,
}

impl Default for CorsConfig {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        CorsConfig {
            enabled: false,
            allow_origin: strings(&["*"]),
            allow_methods: strings(&["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]),
            allow_headers: strings(&[
                "DNT",
                "Keep-Alive",
                "User-Agent",
                "X-Requested-With",
                "If-Modified-Since",
                "Cache-Control",
                "Content-Type",
                "Range",
                "Authorization",
            ]),
            allow_credentials: true,
            expose_headers: Vec::new(),
            max_age: 1_728_000,
        }
    }
}

/// A CORS origin pattern: `*`, `null`, `scheme://host[:port]`, `scheme://*.host[:port]`.
pub fn check_cors_origin(origin: &str) -> Result<(), String> {
    if origin == "*" || origin == "null" {
        return Ok(());
    }
    check_plain_ascii(origin, "origin")?;
    let (scheme, authority) = origin
        .split_once("://")
        .ok_or_else(|| format!("origin {origin:?} must be *, null, or scheme://host[:port]"))?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase())
        && scheme.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'-')
        });
    if !scheme_ok {
        return Err(format!(
            "origin {origin:?} has an invalid scheme {scheme:?}"
        ));
    }
    if authority.contains(['/', '?', '@', '%']) {
        return Err(format!(
            "origin {origin:?} must not have a path, query or user info"
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("origin {origin:?} has no closing ']'"))?;
            v6.parse::<Ipv6Addr>()
                .map_err(|_| format!("origin {origin:?}: {v6:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| format!("origin {origin:?} has text after ']'"))?,
                ),
            };
            (None, port)
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(authority), None),
        },
    };
    if let Some(host) = host {
        if host == "_" {
            return Err(format!("origin {origin:?} has no host"));
        }
        if host.parse::<Ipv4Addr>().is_err() {
            check_hostname(host).map_err(|e| format!("origin {origin:?}: {e}"))?;
        }
    }
    if let Some(port) = port {
        check_port_text(port).map_err(|e| format!("origin {origin:?}: {e}"))?;
    }
    Ok(())
}

/// A method name in `cors-allow-methods`: letters only, as ingress-nginx requires.
/// Any method name is allowed (WebDAV's `PROPFIND` too): the list is only echoed in
/// `Access-Control-Allow-Methods`.
fn check_cors_method(method: &str) -> Result<(), String> {
    if !method.is_empty() && method.len() <= 32 && method.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(())
    } else {
        Err(format!("method {method:?} must be 1 to 32 ASCII letters"))
    }
}

impl Validate for CorsConfig {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        let origins = path.field("allowOrigin");
        if self.enabled && self.allow_origin.is_empty() {
            report.add(&origins, "CORS is enabled but no origin is allowed");
        }
        for (i, origin) in self.allow_origin.iter().enumerate() {
            report.check(&origins.index(i), check_cors_origin(origin));
        }
        let methods = path.field("allowMethods");
        for (i, method) in self.allow_methods.iter().enumerate() {
            report.check(&methods.index(i), check_cors_method(method));
        }
        check_header_names(&self.allow_headers, &path.field("allowHeaders"), report);
        check_header_names(&self.expose_headers, &path.field("exposeHeaders"), report);
    }
}

/// `limit-rps`, `limit-rpm`, `limit-connections`, `limit-burst-multiplier`,
/// `limit-allowlist`, `limit-rate`, `limit-rate-after`. Zero means "no limit".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RateLimit {
    /// Requests per second per client address.
    pub rps: u32,
    /// Requests per minute per client address.
    pub rpm: u32,
    /// Concurrent connections per client address.
    pub connections: u32,
    /// Burst allowed above the rate, as a multiple of it.
    pub burst_multiplier: u32,
    /// Client addresses (CIDRs) exempt from every limit.
    pub allowlist: Vec<String>,
    /// Response bandwidth per connection, in KiB/s.
    pub limit_rate: u64,
    /// KiB sent at full speed before `limit_rate` applies.
    pub limit_rate_after: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            rps: 0,
            rpm: 0,
            connections: 0,
            burst_multiplier: 5,
            allowlist: Vec::new(),
            limit_rate: 0,
            limit_rate_after: 0,
        }
    }
}

impl RateLimit {
    /// Burst for the per-second limit (`rps × burst multiplier`).
    pub fn rps_burst(&self) -> u32 {
        self.rps.saturating_mul(self.burst_multiplier)
    }

    /// Burst for the per-minute limit (`rpm × burst multiplier`).
    pub fn rpm_burst(&self) -> u32 {
        self.rpm.saturating_mul(self.burst_multiplier)
    }

    /// `limit_rate` in bytes per second; 0 means unlimited.
    pub fn limit_rate_bytes(&self) -> u64 {
        self.limit_rate.saturating_mul(KIB)
    }

    /// `limit_rate_after` in bytes.
    pub fn limit_rate_after_bytes(&self) -> u64 {
        self.limit_rate_after.saturating_mul(KIB)
    }

    /// True when any request or connection limit is set.
    pub fn is_enabled(&self) -> bool {
        self.rps > 0 || self.rpm > 0 || self.connections > 0
    }
}

impl Validate for RateLimit {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if self.burst_multiplier == 0 {
            report.add(&path.field("burstMultiplier"), "must be at least 1");
        }
        check_cidrs(&self.allowlist, &path.field("allowlist"), report);
        let max_kib = MAX_SIZE_BYTES / KIB;
        if self.limit_rate > max_kib {
            report.add(
                &path.field("limitRate"),
                format!("must be at most {max_kib} KiB/s"),
            );
        }
        if self.limit_rate_after > max_kib {
            report.add(
                &path.field("limitRateAfter"),
                format!("must be at most {max_kib} KiB"),
            );
        }
    }
}

/// Redirects: `permanent-redirect[-code]`, `temporal-redirect[-code]`, `app-root`,
/// `from-to-www-redirect`, `ssl-redirect`, `force-ssl-redirect`,
/// `preserve-trailing-slash`. (ingress-nginx keeps the last four in its rewrite
/// annotation; here every redirect lives in one place.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Redirect {
    /// `permanent-redirect`: answer every request with a redirect to this URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permanent_url: Option<String>,
    /// `permanent-redirect-code`, 300..308 (default 301).
    pub permanent_code: u16,
    /// `temporal-redirect`: as above; takes precedence over the permanent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporal_url: Option<String>,
    /// `temporal-redirect-code`, 300..307 (default 302).
    pub temporal_code: u16,
    /// `app-root`: `/` redirects (302) to this path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_root: Option<String>,
    /// `ssl-redirect`; absent means the ConfigMap's (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect`; absent means the ConfigMap's (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_ssl_redirect: Option<bool>,
    /// `preserve-trailing-slash`; absent means the ConfigMap's (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_trailing_slash: Option<bool>,
}

impl Default for Redirect {
    fn default() -> Self {
        Redirect {
            permanent_url: None,
            permanent_code: 301,
            temporal_url: None,
            temporal_code: 302,
            app_root: None,
            ssl_redirect: None,
            force_ssl_redirect: None,
            preserve_trailing_slash: None,
        }
    }
}

impl Redirect {
    /// The redirect that answers every request of the location, if any: the temporal
    /// one wins over the permanent one, as in ingress-nginx.
    pub fn location_redirect(&self) -> Option<(u16, &str)> {
        match (&self.temporal_url, &self.permanent_url) {
            (Some(url), _) => Some((self.temporal_code, url)),
            (None, Some(url)) => Some((self.permanent_code, url)),
            (None, None) => None,
        }
    }
}

impl Validate for Redirect {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if let Some(url) = &self.permanent_url {
            report.check(&path.field("permanentUrl"), check_url_template(url));
        }
        report.check(
            &path.field("permanentCode"),
            check_status(self.permanent_code, 300..=308, "permanent redirect code"),
        );
        if let Some(url) = &self.temporal_url {
            report.check(&path.field("temporalUrl"), check_url_template(url));
        }
        report.check(
            &path.field("temporalCode"),
            check_status(self.temporal_code, 300..=307, "temporal redirect code"),
        );
        if let Some(root) = &self.app_root {
            report.check(&path.field("appRoot"), check_uri_path(root));
        }
    }
}

/// `rewrite-target` and `use-regex`. Either one turns every path of the host into a
/// case-insensitive, start-anchored regex (Part B §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Rewrite {
    /// `rewrite-target`: the URI sent upstream; `$1`..`$9` are captures of the path
    /// regex, and other supported nginx variables may appear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `use-regex`.
    pub use_regex: bool,
}

impl Rewrite {
    /// True when this location puts its host in regex mode.
    pub fn uses_regex(&self) -> bool {
        self.use_regex || self.target.is_some()
    }
}

/// A rewrite target: a path (`/`, `/api/$2`), a capture (`$1`), or an absolute URL.
pub fn check_rewrite_target(target: &str) -> Result<(), String> {
    if target.contains("://") {
        return check_url_template(target);
    }
    check_plain_ascii(target, "rewrite target")?;
    if !(target.starts_with('/') || target.starts_with('$')) {
        return Err(format!(
            "rewrite target {target:?} must start with '/' or a capture such as $1"
        ));
    }
    check_percent_escapes(target, "rewrite target")?;
    ComplexValue::parse(target)
        .map(|_| ())
        .map_err(|e| format!("rewrite target {target:?}: {e}"))
}

impl Validate for Rewrite {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if let Some(target) = &self.target {
            report.check(&path.field("target"), check_rewrite_target(target));
        }
    }
}

/// A list of client networks (`allowlist-source-range`, `denylist-source-range`):
/// CIDRs or bare addresses. Requests from outside an allowlist (or inside a denylist)
/// get 403.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SourceRanges {
    /// The networks, as written.
    pub cidrs: Vec<String>,
}

impl SourceRanges {
    /// True when no network is listed (the policy does not apply).
    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty()
    }

    /// The parsed networks, for compiling once at apply time; the first invalid entry
    /// is an error (validation reports all of them).
    pub fn networks(&self) -> Result<Vec<Cidr>, String> {
        self.cidrs.iter().map(|c| Cidr::parse(c)).collect()
    }
}

impl Validate for SourceRanges {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        check_cidrs(&self.cidrs, &path.field("cidrs"), report);
    }
}

/// One `proxy-cookie-domain` / `proxy-cookie-path` rewrite: `from` is replaced by `to`
/// in the matching `Set-Cookie` attribute of upstream responses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CookieRewrite {
    /// The attribute value to replace.
    pub from: String,
    /// Its replacement.
    pub to: String,
}

impl Validate for CookieRewrite {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        report.check(
            &path.field("from"),
            check_plain_ascii(&self.from, "cookie attribute"),
        );
        report.check(
            &path.field("to"),
            check_plain_ascii(&self.to, "cookie attribute"),
        );
    }
}

/// A cookie `Domain` value: a host name, optionally with a leading dot.
fn check_cookie_domain(domain: &str) -> Result<(), String> {
    let name = domain.strip_prefix('.').unwrap_or(domain);
    if name.starts_with("*.") || name == "_" {
        return Err(format!("{domain:?} is not a cookie domain"));
    }
    check_hostname(name)
}

impl CookieRewrite {
    /// Checks both sides with `check`, which knows what kind of attribute they are.
    fn validate_with(
        &self,
        path: &Path<'_>,
        report: &mut Report,
        check: fn(&str) -> Result<(), String>,
    ) {
        report.check(&path.field("from"), check(&self.from));
        report.check(&path.field("to"), check(&self.to));
    }
}

/// `proxy-*` annotations. Every field is a per-location override: absent means the
/// ConfigMap value ([`GeneralConfig`](crate::general::GeneralConfig)) applies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// `proxy-body-size`: largest request body; 0 means no limit (413 when exceeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_size: Option<NginxSize>,
    /// `proxy-connect-timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<NginxDuration>,
    /// `proxy-send-timeout`: between two writes to the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_timeout: Option<NginxDuration>,
    /// `proxy-read-timeout`: between two reads from the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<NginxDuration>,
    /// `proxy-buffer-size`: buffer for the response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_size: Option<NginxSize>,
    /// `proxy-buffers-number`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffers_number: Option<u32>,
    /// `proxy-busy-buffers-size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_buffers_size: Option<NginxSize>,
    /// `proxy-max-temp-file-size`: how much of a response may be spooled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_temp_file_size: Option<NginxSize>,
    /// `proxy-request-buffering`: read the whole request body before proxying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_buffering: Option<bool>,
    /// `proxy-buffering`: buffer upstream responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffering: Option<bool>,
    /// `proxy-next-upstream`: when to retry on another endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_upstream: Option<Vec<NextUpstream>>,
    /// `proxy-next-upstream-timeout`: total time for retries; 0 means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_upstream_timeout: Option<NginxDuration>,
    /// `proxy-next-upstream-tries`: total tries; 0 means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_upstream_tries: Option<u32>,
    /// `proxy-http-version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_version: Option<ProxyHttpVersion>,
    /// `proxy-cookie-domain`; absent means off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<CookieRewrite>,
    /// `proxy-cookie-path`; absent means off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_path: Option<CookieRewrite>,
    /// `proxy-redirect-from`: prefix of upstream `Location`/`Refresh` headers to
    /// rewrite; absent means off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_from: Option<String>,
    /// `proxy-redirect-to`: its replacement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<String>,
}

impl Validate for ProxyConfig {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        for (key, timeout) in [
            ("connectTimeout", self.connect_timeout),
            ("sendTimeout", self.send_timeout),
            ("readTimeout", self.read_timeout),
        ] {
            if timeout.is_some_and(|t| t.is_zero()) {
                report.add(&path.field(key), "must be longer than 0s");
            }
        }
        if self
            .buffers_number
            .is_some_and(|n| !(1..=1024).contains(&n))
        {
            report.add(&path.field("buffersNumber"), "must be in 1..1024");
        }
        if let Some(list) = &self.next_upstream {
            report.check(&path.field("nextUpstream"), check_next_upstream(list));
        }
        if let Some(rewrite) = &self.cookie_domain {
            rewrite.validate_with(&path.field("cookieDomain"), report, check_cookie_domain);
        }
        if let Some(rewrite) = &self.cookie_path {
            rewrite.validate_with(&path.field("cookiePath"), report, check_uri_path);
        }
        match (&self.redirect_from, &self.redirect_to) {
            (Some(from), Some(to)) => {
                report.check(&path.field("redirectFrom"), check_url_or_path(from));
                report.check(&path.field("redirectTo"), check_url_or_path(to));
            }
            (Some(_), None) => report.add(
                &path.field("redirectTo"),
                "redirectFrom is set without redirectTo",
            ),
            (None, Some(_)) => report.add(
                &path.field("redirectFrom"),
                "redirectTo is set without redirectFrom",
            ),
            (None, None) => {}
        }
    }
}

/// `proxy-ssl-*`: TLS from the proxy to the upstream, with the material as data.
///
/// `Debug` does not print the private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProxySsl {
    /// `proxy-ssl-secret`: where the material came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
    /// CA certificates (PEM) that verify the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Client certificate chain (PEM) presented to the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_pem: Option<String>,
    /// Private key (PEM) of `cert_pem`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
    /// `proxy-ssl-ciphers`; absent means `DEFAULT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphers: Option<String>,
    /// `proxy-ssl-protocols`.
    pub protocols: Vec<TlsProtocol>,
    /// `proxy-ssl-name`: name used for verification and SNI; absent means the
    /// upstream host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `proxy-ssl-verify`.
    pub verify: bool,
    /// `proxy-ssl-verify-depth`.
    pub verify_depth: u32,
    /// `proxy-ssl-server-name`: send SNI.
    pub server_name: bool,
}

impl Default for ProxySsl {
    fn default() -> Self {
        ProxySsl {
            secret: None,
            ca_pem: None,
            cert_pem: None,
            key_pem: None,
            ciphers: None,
            protocols: vec![TlsProtocol::TlsV1_2],
            name: None,
            verify: false,
            verify_depth: 1,
            server_name: false,
        }
    }
}

impl fmt::Debug for ProxySsl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySsl")
            .field("secret", &self.secret)
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|p| format!("<{} bytes>", p.len())),
            )
            .field(
                "cert_pem",
                &self
                    .cert_pem
                    .as_ref()
                    .map(|p| format!("<{} bytes>", p.len())),
            )
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .field("ciphers", &self.ciphers)
            .field("protocols", &self.protocols)
            .field("name", &self.name)
            .field("verify", &self.verify)
            .field("verify_depth", &self.verify_depth)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ProxySsl {
    /// The cipher list in effect (`DEFAULT` unless set).
    pub fn ciphers(&self) -> &str {
        self.ciphers.as_deref().unwrap_or("DEFAULT")
    }
}

impl Validate for ProxySsl {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        self.secret.validate_at(&path.field("secret"), report);
        if let Some(pem) = &self.ca_pem {
            report.check(&path.field("caPem"), check_pem(pem, "CERTIFICATE"));
        }
        if let Some(pem) = &self.cert_pem {
            report.check(&path.field("certPem"), check_pem(pem, "CERTIFICATE"));
        }
        if let Some(pem) = &self.key_pem {
            report.check(&path.field("keyPem"), check_pem(pem, "PRIVATE KEY"));
        }
        match (&self.cert_pem, &self.key_pem) {
            (Some(_), None) => report.add(
                &path.field("keyPem"),
                "a client certificate needs its private key",
            ),
            (None, Some(_)) => report.add(
                &path.field("certPem"),
                "a private key needs its certificate",
            ),
            _ => {}
        }
        if self.verify && self.ca_pem.is_none() {
            report.add(
                &path.field("caPem"),
                "verify is on but there is no CA to verify with",
            );
        }
        if let Some(ciphers) = &self.ciphers {
            report.check(&path.field("ciphers"), check_cipher_list(ciphers));
        }
        report.check(
            &path.field("protocols"),
            check_tls_protocols(&self.protocols),
        );
        if let Some(name) = &self.name {
            report.check(&path.field("name"), check_hostname(name));
        }
        if self.verify_depth > 100 {
            report.add(&path.field("verifyDepth"), "must be at most 100");
        }
    }
}

/// `auth-tls-verify-client`: whether a client certificate is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyClient {
    /// Required and verified (the default).
    #[default]
    On,
    /// Not requested.
    Off,
    /// Requested, verified if sent.
    Optional,
    /// Requested, not verified; the result is passed upstream.
    OptionalNoCa,
}

/// `auth-tls-*`: client-certificate authentication, with the CA as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthTls {
    /// `auth-tls-secret`: where the CA came from; set means client auth is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
    /// CA certificates (PEM) that client certificates must chain to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Certificate revocation list (PEM, the Secret's `ca.crl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_pem: Option<String>,
    /// `auth-tls-verify-client`.
    pub verify_client: VerifyClient,
    /// `auth-tls-verify-depth`.
    pub verify_depth: u32,
    /// `auth-tls-error-page`: redirect target when verification fails (else 400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_page: Option<String>,
    /// `auth-tls-pass-certificate-to-upstream`: send the PEM in `ssl-client-cert`.
    pub pass_certificate_to_upstream: bool,
    /// `auth-tls-match-cn`: a regex the client subject DN must match (it contains
    /// `CN=`). A regex the proxy compiles, never configuration text (CVE-2025-1097).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_cn: Option<String>,
}

impl Default for AuthTls {
    fn default() -> Self {
        AuthTls {
            secret: None,
            ca_pem: None,
            crl_pem: None,
            verify_client: VerifyClient::On,
            verify_depth: 1,
            error_page: None,
            pass_certificate_to_upstream: false,
            match_cn: None,
        }
    }
}

impl AuthTls {
    /// True when client certificates are requested.
    pub fn is_enabled(&self) -> bool {
        (self.secret.is_some() || self.ca_pem.is_some()) && self.verify_client != VerifyClient::Off
    }
}

impl Validate for AuthTls {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        self.secret.validate_at(&path.field("secret"), report);
        if let Some(pem) = &self.ca_pem {
            report.check(&path.field("caPem"), check_pem(pem, "CERTIFICATE"));
        }
        if let Some(pem) = &self.crl_pem {
            report.check(&path.field("crlPem"), check_pem(pem, "CRL"));
        }
        let needs_ca = matches!(
            self.verify_client,
            VerifyClient::On | VerifyClient::Optional
        );
        if self.secret.is_some() && needs_ca && self.ca_pem.is_none() {
            report.add(
                &path.field("caPem"),
                "client certificates are verified but there is no CA (fails closed)",
            );
        }
        if self.verify_depth > 100 {
            report.add(&path.field("verifyDepth"), "must be at most 100");
        }
        if let Some(url) = &self.error_page {
            report.check(&path.field("errorPage"), check_url(url));
        }
        if let Some(cn) = &self.match_cn {
            let checked = check_regex(cn).and_then(|()| {
                if cn.contains("CN=") {
                    Ok(())
                } else {
                    Err(format!(
                        "{cn:?} does not contain \"CN=\"; it is matched against the subject DN"
                    ))
                }
            });
            report.check(&path.field("matchCn"), checked);
        }
    }
}

/// `mirror-target`, `mirror-host`, `mirror-request-body`: a copy of each request is
/// sent to another URL and its response discarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Mirror {
    /// The mirror URL (may contain nginx variables such as `$request_uri`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Host header of the copy; absent means the target's host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Whether the copy carries the request body.
    pub request_body: bool,
}

impl Default for Mirror {
    fn default() -> Self {
        Mirror {
            target: None,
            host: None,
            request_body: true,
        }
    }
}

impl Validate for Mirror {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if let Some(target) = &self.target {
            report.check(&path.field("target"), check_url_template(target));
        }
        if let Some(host) = &self.host {
            let checked = if host.starts_with("*.") || host == "_" {
                Err(format!("{host:?} is not a host name"))
            } else {
                check_hostname(host)
            };
            report.check(&path.field("host"), checked);
        }
    }
}

/// `enable-access-log`, `enable-rewrite-log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AccessLogs {
    /// Write access log lines for this location.
    pub access: bool,
    /// Log rewrite decisions (debugging).
    pub rewrite: bool,
}

impl Default for AccessLogs {
    fn default() -> Self {
        AccessLogs {
            access: true,
            rewrite: false,
        }
    }
}

impl Validate for AccessLogs {
    fn validate_at(&self, _path: &Path<'_>, _report: &mut Report) {}
}

/// `backend-protocol`: how the proxy talks to the upstream.
///
/// JSON uses ingress-nginx's upper-case names; decoding ignores case, as the annotation
/// parser does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum BackendProtocol {
    /// Plain HTTP/1.x (the default).
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    /// HTTP over TLS.
    #[serde(rename = "HTTPS")]
    Https,
    /// The client's scheme: HTTPS upstream for HTTPS clients.
    #[serde(rename = "AUTO_HTTP")]
    AutoHttp,
    /// gRPC over cleartext HTTP/2.
    #[serde(rename = "GRPC")]
    Grpc,
    /// gRPC over TLS.
    #[serde(rename = "GRPCS")]
    Grpcs,
    /// FastCGI.
    #[serde(rename = "FCGI")]
    Fcgi,
}

impl BackendProtocol {
    /// Every protocol, in documentation order.
    pub const ALL: [BackendProtocol; 6] = [
        BackendProtocol::Http,
        BackendProtocol::Https,
        BackendProtocol::AutoHttp,
        BackendProtocol::Grpc,
        BackendProtocol::Grpcs,
        BackendProtocol::Fcgi,
    ];

    /// The ingress-nginx name.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendProtocol::Http => "HTTP",
            BackendProtocol::Https => "HTTPS",
            BackendProtocol::AutoHttp => "AUTO_HTTP",
            BackendProtocol::Grpc => "GRPC",
            BackendProtocol::Grpcs => "GRPCS",
            BackendProtocol::Fcgi => "FCGI",
        }
    }
}

impl fmt::Display for BackendProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendProtocol {
    type Err = String;

    fn from_str(text: &str) -> Result<BackendProtocol, String> {
        BackendProtocol::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!(
                    "unknown backend protocol {text:?}; expected one of HTTP, HTTPS, AUTO_HTTP, GRPC, GRPCS, FCGI"
                )
            })
    }
}

impl<'de> Deserialize<'de> for BackendProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BackendProtocol, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// `satisfy`: whether a request must pass all access checks (address lists and
/// authentication) or any one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Satisfy {
    /// Every check must pass (nginx's default).
    #[default]
    All,
    /// One passing check is enough.
    Any,
}

/// `custom-headers`: response headers added to every response of the location.
///
/// ingress-nginx only allows names listed in the ConfigMap's
/// `global-allowed-response-headers`; [`CustomHeaders::not_allowed`] finds the others.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CustomHeaders {
    /// Header name -> value.
    pub headers: BTreeMap<String, String>,
}

impl CustomHeaders {
    /// Names not in `allowed` (compared case-insensitively); a location with any of
    /// them is denied.
    pub fn not_allowed(&self, allowed: &[String]) -> Vec<&str> {
        self.headers
            .keys()
            .filter(|name| !allowed.iter().any(|a| a.eq_ignore_ascii_case(name)))
            .map(String::as_str)
            .collect()
    }
}

impl Validate for CustomHeaders {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        check_header_map(&self.headers, &path.field("headers"), report);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    /// The seeds of Part B §9 that the brief requires every URL, method, header and
    /// CIDR field to reject.
    pub(crate) const CORPUS: &[&str] = &[
        ";",
        "}",
        "\"",
        "\n",
        "\r",
        "\n}\nserver {",
        "ssl_engine /proc/self/fd/3;",
        "http://a/;}location /x{return 200;}#",
        "CN=a$ ) { } location /p { alias /var/run/secrets/; } if ( $x !~ a",
        "GET;DELETE",
        "XGETX",
        "GET\r",
        "../../etc/nginx/nginx.conf",
        "\u{0}",
        "\u{FF1B}",
    ];

    /// Further §9 seeds, tried in URL and CIDR fields (some, such as `'` and `#`, are
    /// legal token characters and so valid header names).
    pub(crate) const MORE_SEEDS: &[&str] = &[
        "{",
        "'",
        "\\",
        "#",
        "\r\n",
        "\";\n",
        "\\\"",
        "load_module /tmp/x.so;",
        "content_by_lua_block {os.execute('id')}",
        "alias /var/run/secrets/kubernetes.io/serviceaccount/;",
        "root /;",
        "include /etc/passwd;",
        "log_format x '$http_x';",
        "http://x/ #;\nssl_engine /proc/self/fd/3;",
        "%00",
        "https://a.example.com/x;}",
        "https://a.example.com/%00",
        "http://a.example.com/\u{FF1B}",
    ];

    /// True when `json` fails to decode as `T` or decodes but does not validate.
    pub(crate) fn rejected<T: DeserializeOwned + Validate>(json: serde_json::Value) -> bool {
        match serde_json::from_value::<T>(json) {
            Err(_) => true,
            Ok(value) => value.validate().is_err(),
        }
    }

    /// Asserts that every seed of `seeds` except `accepted` is rejected in `field`,
    /// and that the accepted ones really are accepted (so the list stays honest).
    pub(crate) fn assert_corpus<T: DeserializeOwned + Validate>(
        field: &str,
        seeds: &[&str],
        accepted: &[&str],
        make: impl Fn(&str) -> serde_json::Value,
    ) {
        for seed in seeds {
            let is_rejected = rejected::<T>(make(seed));
            if accepted.contains(seed) {
                assert!(!is_rejected, "{field}: {seed:?} is expected to be accepted");
            } else {
                assert!(is_rejected, "{field} accepted the hostile value {seed:?}");
            }
        }
    }

    fn decode<T: DeserializeOwned>(json: serde_json::Value) -> T {
        serde_json::from_value(json).unwrap()
    }

    fn round_trip<T>(value: &T)
    where
        T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
    {
        let text = serde_json::to_string(value).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, value, "{text}");
    }

    fn paths(problems: crate::validate::Problems) -> Vec<String> {
        problems.iter().map(|p| p.path.clone()).collect()
    }

    #[test]
    fn sizes_parse_the_nginx_way() {
        for (text, bytes) in [
            ("0", 0),
            ("1m", MIB),
            ("1M", MIB),
            ("8k", 8 * KIB),
            ("8K", 8 * KIB),
            ("10b", 10),
            ("1234", 1234),
            ("2g", 2 * GIB),
            ("1024g", MAX_SIZE_BYTES),
        ] {
            assert_eq!(text.parse::<NginxSize>().unwrap().bytes(), bytes, "{text}");
        }
        for bad in [
            "",
            "m",
            "1.5m",
            "-1",
            "1t",
            "1 m",
            " 1m",
            "1mb",
            "1025g",
            "99999999999999999999999",
        ] {
            let err = bad.parse::<NginxSize>().unwrap_err();
            assert!(err.contains("size"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn sizes_decode_numbers_and_strings_and_encode_canonically() {
        let s: NginxSize = serde_json::from_str("1048576").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""1m""#);
        let s: NginxSize = serde_json::from_str(r#""1024k""#).unwrap();
        assert_eq!(s.to_string(), "1m");
        assert_eq!(NginxSize::from_bytes(1000).unwrap().to_string(), "1000");
        assert_eq!(NginxSize::ZERO.to_string(), "0");
        for bad in ["-1", "1.5", "true", "null", r#""1x""#] {
            assert!(serde_json::from_str::<NginxSize>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse_the_nginx_way() {
        for (text, ms) in [
            ("0", 0),
            ("60", 60_000),
            ("60s", 60_000),
            ("500ms", 500),
            ("5m", 300_000),
            ("1h", HOUR_MS),
            ("1d", DAY_MS),
            ("1w", 7 * DAY_MS),
            ("1M", 30 * DAY_MS),
            ("1y", 365 * DAY_MS),
            ("1h30m", 90 * MINUTE_MS),
            ("1h30", HOUR_MS + 30_000),
            ("1m1s1ms", MINUTE_MS + 1001),
        ] {
            assert_eq!(
                text.parse::<NginxDuration>().unwrap().as_millis(),
                ms,
                "{text}"
            );
        }
        for bad in [
            "",
            "s",
            "1.5s",
            "-5",
            "5x",
            "1m1h",
            "1s1s",
            " 5s",
            "5 s",
            "2y",
            "366d",
            "1h30m ",
            "9999999999999999999999d",
        ] {
            let err = bad.parse::<NginxDuration>().unwrap_err();
            assert!(err.contains("time"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn durations_decode_seconds_and_strings_and_encode_canonically() {
        let d: NginxDuration = serde_json::from_str("75").unwrap();
        assert_eq!(d.as_duration(), Duration::from_secs(75));
        assert_eq!(serde_json::to_string(&d).unwrap(), r#""1m15s""#);
        let d: NginxDuration = serde_json::from_str(r#""5400s""#).unwrap();
        assert_eq!(d.to_string(), "1h30m");
        assert_eq!(NginxDuration::ZERO.to_string(), "0s");
        assert_eq!(
            NginxDuration::from_millis(1500).unwrap().to_string(),
            "1s500ms"
        );
        for bad in ["-1", "1.5", "false", r#""1 h""#, "31536001"] {
            assert!(serde_json::from_str::<NginxDuration>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn size_round_trips(bytes in 0..=MAX_SIZE_BYTES) {
            let size = NginxSize::from_bytes(bytes).unwrap();
            prop_assert_eq!(size.to_string().parse::<NginxSize>().unwrap(), size);
            let json = serde_json::to_string(&size).unwrap();
            prop_assert_eq!(serde_json::from_str::<NginxSize>(&json).unwrap(), size);
        }

        #[test]
        fn size_units_round_trip(n in 0u64..=1024, unit in prop::sample::select(vec!["", "b", "k", "K", "m", "M", "g", "G"])) {
            let text = format!("{n}{unit}");
            let size: NginxSize = text.parse().unwrap();
            prop_assert_eq!(size.to_string().parse::<NginxSize>().unwrap(), size);
        }

        #[test]
        fn duration_round_trips(ms in 0..=MAX_DURATION_MS) {
            let duration = NginxDuration::from_millis(ms).unwrap();
            prop_assert_eq!(duration.to_string().parse::<NginxDuration>().unwrap(), duration);
            let json = serde_json::to_string(&duration).unwrap();
            prop_assert_eq!(serde_json::from_str::<NginxDuration>(&json).unwrap(), duration);
            prop_assert_eq!(duration.as_duration().as_millis(), u128::from(ms));
        }

        #[test]
        fn duration_seconds_decode(secs in 0u64..=MAX_DURATION_MS / 1000) {
            let duration: NginxDuration = serde_json::from_str(&secs.to_string()).unwrap();
            prop_assert_eq!(duration.as_duration(), Duration::from_secs(secs));
        }

        #[test]
        fn parsers_never_panic(text in "\\PC{0,24}") {
            let _ = text.parse::<NginxSize>();
            let _ = text.parse::<NginxDuration>();
            let _ = Cidr::parse(&text);
            let _ = check_url_template(&text);
            let _ = check_cors_origin(&text);
            let _ = check_rewrite_target(&text);
        }
    }

    #[test]
    fn defaults_follow_ingress_nginx() {
        let cors = CorsConfig::default();
        assert!(!cors.enabled);
        assert_eq!(cors.allow_origin, ["*"]);
        assert_eq!(
            cors.allow_methods,
            ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]
        );
        assert_eq!(cors.allow_headers.len(), 9);
        assert!(cors.allow_credentials);
        assert!(cors.expose_headers.is_empty());
        assert_eq!(cors.max_age, 1_728_000);

        let limit = RateLimit::default();
        assert_eq!(limit.burst_multiplier, 5);
        assert!(!limit.is_enabled());

        let auth = ExternalAuth::default();
        assert!(!auth.is_enabled());
        assert_eq!(auth.signin_redirect_param(), "rd");
        assert_eq!(auth.keepalive_requests, 1000);
        assert_eq!(
            auth.keepalive_timeout.as_duration(),
            Duration::from_secs(60)
        );
        assert_eq!(
            auth.effective_cache_duration(),
            [CacheDuration {
                codes: vec![200, 202, 401],
                duration: "5m".parse().unwrap()
            }]
        );

        let redirect = Redirect::default();
        assert_eq!(
            (redirect.permanent_code, redirect.temporal_code),
            (301, 302)
        );
        assert_eq!(redirect.location_redirect(), None);

        let ssl = ProxySsl::default();
        assert_eq!(ssl.ciphers(), "DEFAULT");
        assert_eq!(ssl.protocols, [TlsProtocol::TlsV1_2]);
        assert_eq!(ssl.verify_depth, 1);
        assert!(!ssl.verify && !ssl.server_name);

        let tls = AuthTls::default();
        assert_eq!(tls.verify_client, VerifyClient::On);
        assert_eq!(tls.verify_depth, 1);
        assert!(!tls.is_enabled());

        assert!(Mirror::default().request_body);
        assert!(AccessLogs::default().access && !AccessLogs::default().rewrite);
        assert_eq!(BackendProtocol::default(), BackendProtocol::Http);
        assert_eq!(Satisfy::default(), Satisfy::All);
        assert_eq!(ProxyConfig::default().body_size, None);
        assert!(!Rewrite::default().uses_regex());
        assert!(!BasicDigestAuth::default().is_enabled());
    }

    /// `{}` decodes to the default of every policy, and every default is valid (a
    /// location without annotations must never be denied).
    #[test]
    fn empty_objects_decode_to_valid_defaults() {
        fn check<T: DeserializeOwned + Default + PartialEq + fmt::Debug + Validate>() {
            let value: T = decode(json!({}));
            assert_eq!(value, T::default());
            assert!(
                value.validate().is_ok(),
                "{value:?}: {:?}",
                value.validate()
            );
        }
        check::<BasicDigestAuth>();
        check::<ExternalAuth>();
        check::<CorsConfig>();
        check::<RateLimit>();
        check::<Redirect>();
        check::<Rewrite>();
        check::<SourceRanges>();
        check::<ProxyConfig>();
        check::<ProxySsl>();
        check::<AuthTls>();
        check::<Mirror>();
        check::<AccessLogs>();
        check::<CustomHeaders>();
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        let err = crate::json::decode::<CorsConfig>(br#"{"enabled":true,"allowOrigins":["*"]}"#)
            .unwrap_err();
        assert_eq!(err.path, "$.allowOrigins");
        let err = crate::json::decode::<ProxyConfig>(br#"{"cookieDomain":{"from":"a","too":"b"}}"#)
            .unwrap_err();
        assert_eq!(err.path, "$.cookieDomain.too");
    }

    const PEM_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const PEM_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    #[test]
    fn full_policies_round_trip_and_validate() {
        fn check<T>(json: serde_json::Value)
        where
            T: Serialize + DeserializeOwned + PartialEq + fmt::Debug + Validate,
        {
            let value: T = decode(json.clone());
            assert!(value.validate().is_ok(), "{json}: {:?}", value.validate());
            round_trip(&value);
            // Every key given is written back (nothing silently dropped).
            let written = serde_json::to_value(&value).unwrap();
            for key in json.as_object().unwrap().keys() {
                assert!(written.get(key).is_some(), "{key} was not written back");
            }
        }
        check::<BasicDigestAuth>(json!({
            "authType": "basic", "realm": "Authentication Required - foo",
            "secret": {"namespace": "default", "name": "basic-auth"}, "secretType": "auth-map",
            "credentials": {"foo": "$apr1$4dO5v5eT$1N2g3h4j5k6l7m8n9o0p1.", "bar": "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}
        }));
        check::<BasicDigestAuth>(json!({
            "authType": "digest", "credentials": {"foo": "0123456789abcdef0123456789abcdef"}
        }));
        check::<ExternalAuth>(json!({
            "url": "https://$host/oauth2/auth", "method": "POST",
            "signin": "https://auth.example.com/oauth2/start?rd=$request_uri",
            "signinRedirectParam": "redirect_to",
            "responseHeaders": ["X-Auth-Request-User", "X-Auth-Request-Email"],
            "requestRedirect": "/after-login", "cacheKey": "$remote_addr$http_authorization",
            "cacheDuration": [{"codes": [200, 202], "duration": "10m"}, {"codes": [401], "duration": "30s"}],
            "alwaysSetCookie": true, "proxySetHeaders": {"X-Forwarded-Uri": "/x", "X-Team": "a; b"},
            "keepaliveConnections": 10, "keepaliveRequests": 100, "keepaliveTimeout": "30s",
            "keepaliveShareVars": true
        }));
        check::<CorsConfig>(json!({
            "enabled": true,
            "allowOrigin": ["https://app.example.com", "https://*.example.org:8443", "http://[::1]:3000", "null", "capacitor://localhost"],
            "allowMethods": ["GET", "POST", "PROPFIND"], "allowHeaders": ["X-Custom", "Content-Type"],
            "allowCredentials": false, "exposeHeaders": ["X-Total-Count"], "maxAge": 600
        }));
        check::<RateLimit>(json!({
            "rps": 10, "rpm": 300, "connections": 5, "burstMultiplier": 3,
            "allowlist": ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32"], "limitRate": 100, "limitRateAfter": 1024
        }));
        check::<Redirect>(json!({
            "permanentUrl": "https://www.example.com$request_uri", "permanentCode": 308,
            "temporalUrl": "http://maintenance.example.com/", "temporalCode": 307,
            "appRoot": "/app1", "sslRedirect": false, "forceSslRedirect": true,
            "preserveTrailingSlash": true
        }));
        check::<Rewrite>(json!({"target": "/api/$2", "useRegex": true}));
        check::<SourceRanges>(json!({"cidrs": ["10.0.0.0/8", "::1", "0.0.0.0/0", "fe80::/10"]}));
        check::<ProxyConfig>(json!({
            "bodySize": "8m", "connectTimeout": 10, "sendTimeout": "2m", "readTimeout": "3600",
            "bufferSize": "8k", "buffersNumber": 8, "busyBuffersSize": "16k", "maxTempFileSize": "0",
            "requestBuffering": false, "buffering": true,
            "nextUpstream": ["error", "timeout", "http_502", "non_idempotent"],
            "nextUpstreamTimeout": "5s", "nextUpstreamTries": 2, "httpVersion": "1.0",
            "cookieDomain": {"from": "localhost", "to": "example.org"},
            "cookiePath": {"from": "/one/", "to": "/"},
            "redirectFrom": "http://internal:8080/", "redirectTo": "https://example.com/"
        }));
        check::<ProxySsl>(json!({
            "secret": {"namespace": "default", "name": "upstream-tls"},
            "caPem": PEM_CERT, "certPem": PEM_CERT, "keyPem": PEM_KEY,
            "ciphers": "ECDHE-RSA-AES128-GCM-SHA256:!aNULL", "protocols": ["TLSv1.2", "TLSv1.3"],
            "name": "backend.internal", "verify": true, "verifyDepth": 2, "serverName": true
        }));
        check::<AuthTls>(json!({
            "secret": {"namespace": "default", "name": "ca-secret"}, "caPem": PEM_CERT,
            "crlPem": "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n",
            "verifyClient": "optional_no_ca", "verifyDepth": 3,
            "errorPage": "https://www.example.com/error-cert.html",
            "passCertificateToUpstream": true, "matchCn": "CN=(alice|bob)$"
        }));
        check::<Mirror>(
            json!({"target": "https://mirror.example.com$request_uri", "host": "mirror.example.com", "requestBody": false}),
        );
        check::<AccessLogs>(json!({"access": false, "rewrite": true}));
        check::<CustomHeaders>(
            json!({"headers": {"X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'self'; img-src *"}}),
        );
    }

    #[test]
    fn backend_protocol_is_case_insensitive_and_written_upper_case() {
        for (text, expected) in [
            ("grpcs", BackendProtocol::Grpcs),
            ("Auto_Http", BackendProtocol::AutoHttp),
            ("HTTPS", BackendProtocol::Https),
            ("fcgi", BackendProtocol::Fcgi),
        ] {
            let p: BackendProtocol = serde_json::from_value(json!(text)).unwrap();
            assert_eq!(p, expected);
            assert_eq!(serde_json::to_value(p).unwrap(), json!(expected.as_str()));
        }
        let err = serde_json::from_value::<BackendProtocol>(json!("SOAP")).unwrap_err();
        assert!(err.to_string().contains("AUTO_HTTP"), "{err}");
        for p in BackendProtocol::ALL {
            round_trip(&p);
        }
    }

    #[test]
    fn auth_method_is_one_of_a_fixed_set() {
        let auth: ExternalAuth =
            decode(json!({"url": "http://auth.example.com/", "method": "GET"}));
        assert_eq!(auth.method, Some(HttpMethod::Get));
        for bad in ["get", "GET ", " GET", "GETX", "PROPFIND", ""] {
            assert!(rejected::<ExternalAuth>(json!({"method": bad})), "{bad:?}");
        }
    }

    #[test]
    fn temporal_redirect_wins() {
        let r: Redirect = decode(
            json!({"permanentUrl": "https://a.example.com/", "temporalUrl": "https://b.example.com/"}),
        );
        assert_eq!(r.location_redirect(), Some((302, "https://b.example.com/")));
        let r: Redirect =
            decode(json!({"permanentUrl": "https://a.example.com/", "permanentCode": 308}));
        assert_eq!(r.location_redirect(), Some((308, "https://a.example.com/")));
    }

    #[test]
    fn urls_are_absolute_http_and_plain() {
        for good in [
            "http://auth.example.com/verify",
            "https://10.0.0.1:8443/x?y=1&z=%2F",
            "https://[::1]/",
            "HTTP://EXAMPLE.COM",
            "http://auth-svc.auth.svc.cluster.local:4180/oauth2/auth",
        ] {
            assert!(check_url(good).is_ok(), "{good}: {:?}", check_url(good));
        }
        for good in [
            "https://$host/oauth2/auth",
            "https://auth.example.com/start?rd=$scheme://$host$request_uri",
            "http://$host:8080/",
            "https://mirror.example.com$request_uri",
            "https://$server_name$uri?x=$http_x",
        ] {
            assert!(
                check_url_template(good).is_ok(),
                "{good}: {:?}",
                check_url_template(good)
            );
            assert!(check_url(good).is_err(), "{good}");
        }
        for bad in [
            "",
            "auth.example.com/verify",
            "//auth.example.com/",
            "ftp://example.com/",
            "javascript://example.com/",
            "http://",
            "http:///path",
            "http://a b/",
            "http://user:pass@example.com/",
            "http://example.com:0/",
            "http://example.com:99999/",
            "http://*.example.com/",
            "http://_/",
            "http://[::1/",
            "http://[::1]x/",
            "http://$http_x_target/",
            "http://evil.example.com$arg_next/",
            "https://$cookie_backend.example.com/",
            "http://$1/",
            "http://[zz::1]/",
            "http://example.com/%zz",
            "http://example.com/%0",
            "http://example.com/#frag",
            "https://${host}/",
            "https://$nope/",
            "http://exa$mple.com/",
        ] {
            assert!(check_url_template(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            !Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        let host = Cidr::parse("192.168.1.7").unwrap();
        assert_eq!(host.prefix(), 32);
        assert!(host.contains("192.168.1.7".parse().unwrap()));
        assert!(!host.contains("192.168.1.8".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert_eq!(v6.to_string(), "2001:db8::/32");
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "010.0.0.1",
            "10.0.0.1/+8",
            "10.0.0.1/008",
            "fe80::1%eth0",
            " 10.0.0.1",
            "10.0.0.0/8,10.1.0.0/16",
            "localhost",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
        let ranges = SourceRanges {
            cidrs: vec!["10.0.0.0/8".into(), "::1".into()],
        };
        assert_eq!(ranges.networks().unwrap().len(), 2);
    }

    #[test]
    fn invalid_values_are_reported_at_their_paths() {
        let limit: RateLimit =
            decode(json!({"burstMultiplier": 0, "allowlist": ["10.0.0.0/8", "10.0.0.0/40"]}));
        assert_eq!(
            paths(limit.validate().unwrap_err()),
            ["$.burstMultiplier", "$.allowlist[1]"]
        );

        let redirect: Redirect = decode(
            json!({"permanentUrl": "/relative", "permanentCode": 309, "temporalCode": 308, "appRoot": "https://x.example.com/"}),
        );
        assert_eq!(
            paths(redirect.validate().unwrap_err()),
            [
                "$.permanentUrl",
                "$.permanentCode",
                "$.temporalCode",
                "$.appRoot"
            ]
        );

        let proxy: ProxyConfig = decode(json!({
            "connectTimeout": 0, "buffersNumber": 0, "nextUpstream": ["off", "error"],
            "cookieDomain": {"from": "", "to": "a b"}, "redirectFrom": "/x"
        }));
        assert_eq!(
            paths(proxy.validate().unwrap_err()),
            [
                "$.connectTimeout",
                "$.buffersNumber",
                "$.nextUpstream",
                "$.cookieDomain.from",
                "$.cookieDomain.to",
                "$.redirectTo"
            ]
        );

        let auth: BasicDigestAuth = decode(json!({
            "authType": "digest", "realm": "a\"b", "secret": {"namespace": "Default", "name": "../x"},
            "credentials": {"a:b": "0123456789abcdef0123456789abcdef", "c": "$apr1$x"}
        }));
        assert_eq!(
            paths(auth.validate().unwrap_err()),
            [
                "$.realm",
                "$.secret.namespace",
                "$.secret.name",
                r#"$.credentials["a:b"]"#,
                "$.credentials.c"
            ]
        );
        let auth: BasicDigestAuth = decode(json!({"authType": "basic"}));
        assert_eq!(paths(auth.validate().unwrap_err()), ["$.credentials"]);

        let ext: ExternalAuth = decode(json!({
            "url": "http://auth.example.com/", "signinRedirectParam": "r d", "cacheKey": "$nope",
            "cacheDuration": [{"codes": [], "duration": "1m"}, {"codes": [99], "duration": "1m"}],
            "proxySetHeaders": {"Content-Length": "1", "X-A": "1", "x-a": "2"},
            "keepaliveRequests": 0, "keepaliveTimeout": 0
        }));
        assert_eq!(
            paths(ext.validate().unwrap_err()),
            [
                "$.signinRedirectParam",
                "$.cacheKey",
                "$.cacheDuration[0].codes",
                "$.cacheDuration[1].codes[0]",
                "$.proxySetHeaders.Content-Length",
                "$.proxySetHeaders.x-a",
                "$.keepaliveRequests",
                "$.keepaliveTimeout"
            ]
        );

        let ssl: ProxySsl = decode(json!({
            "certPem": "not pem", "verify": true, "ciphers": "A B", "protocols": ["TLSv1", "SSLv3"],
            "name": "a/b", "verifyDepth": 1000
        }));
        assert_eq!(
            paths(ssl.validate().unwrap_err()),
            [
                "$.certPem",
                "$.keyPem",
                "$.caPem",
                "$.ciphers",
                "$.protocols",
                "$.name",
                "$.verifyDepth"
            ]
        );

        let tls: AuthTls = decode(json!({
            "secret": {"namespace": "default", "name": "ca"}, "crlPem": PEM_CERT,
            "errorPage": "https://$host/err", "matchCn": "alice"
        }));
        assert_eq!(
            paths(tls.validate().unwrap_err()),
            ["$.crlPem", "$.caPem", "$.errorPage", "$.matchCn"]
        );
        let tls: AuthTls = decode(
            json!({"secret": {"namespace": "default", "name": "ca"}, "verifyClient": "off"}),
        );
        assert!(tls.validate().is_ok());
        assert!(!tls.is_enabled());

        let cors: CorsConfig = decode(
            json!({"enabled": true, "allowOrigin": [], "allowMethods": ["GE T"], "exposeHeaders": ["X Y"]}),
        );
        assert_eq!(
            paths(cors.validate().unwrap_err()),
            ["$.allowOrigin", "$.allowMethods[0]", "$.exposeHeaders[0]"]
        );

        let mirror: Mirror =
            decode(json!({"target": "mirror.example.com", "host": "*.example.com"}));
        assert_eq!(
            paths(mirror.validate().unwrap_err()),
            ["$.target", "$.host"]
        );

        let rewrite: Rewrite = decode(json!({"target": "api/$1"}));
        assert_eq!(paths(rewrite.validate().unwrap_err()), ["$.target"]);
    }

    #[test]
    fn rewrite_targets() {
        for good in [
            "/",
            "/$1",
            "$1",
            "/api/$2?x=$arg_x",
            "/new/path%20x",
            "https://other.example.com/$1",
        ] {
            assert!(
                check_rewrite_target(good).is_ok(),
                "{good}: {:?}",
                check_rewrite_target(good)
            );
        }
        for bad in [
            "",
            "api",
            "/$0x",
            "/$unknown_var",
            "/a b",
            "/a;b",
            "/${1}",
            "/%00",
        ] {
            assert!(check_rewrite_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn custom_headers_outside_the_allowed_list() {
        let headers: CustomHeaders = decode(json!({"headers": {"X-A": "1", "x-b": "2"}}));
        assert_eq!(headers.not_allowed(&["x-a".to_owned()]), ["x-b"]);
        assert!(
            headers
                .not_allowed(&["X-A".to_owned(), "X-B".to_owned()])
                .is_empty()
        );
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let auth: BasicDigestAuth =
            decode(json!({"authType": "basic", "credentials": {"alice": "$apr1$secret-hash"}}));
        let text = format!("{auth:?}");
        assert!(
            text.contains("alice") && !text.contains("secret-hash"),
            "{text}"
        );
        let ssl: ProxySsl = decode(json!({"certPem": PEM_CERT, "keyPem": PEM_KEY}));
        let text = format!("{ssl:?}");
        assert!(
            !text.contains("MIIE") && text.contains("<redacted>"),
            "{text}"
        );
    }

    /// Part B §9: every seed is rejected by every URL-, method-, header- and
    /// CIDR-typed field. Exceptions are listed per field with the reason.
    #[test]
    fn hostile_corpus_is_rejected() {
        let all: Vec<&str> = CORPUS.iter().chain(MORE_SEEDS).copied().collect();

        // URL-typed fields (URLs, origins, paths): everything is rejected.
        assert_corpus::<ExternalAuth>("auth-url", &all, &[], |s| json!({"url": s}));
        assert_corpus::<ExternalAuth>("auth-signin", &all, &[], |s| json!({"signin": s}));
        assert_corpus::<ExternalAuth>(
            "auth-request-redirect",
            &all,
            &[],
            |s| json!({"requestRedirect": s}),
        );
        assert_corpus::<Redirect>(
            "permanent-redirect",
            &all,
            &[],
            |s| json!({"permanentUrl": s}),
        );
        assert_corpus::<Redirect>(
            "temporal-redirect",
            &all,
            &[],
            |s| json!({"temporalUrl": s}),
        );
        assert_corpus::<Redirect>("app-root", &all, &[], |s| json!({"appRoot": s}));
        assert_corpus::<Rewrite>("rewrite-target", &all, &[], |s| json!({"target": s}));
        assert_corpus::<Mirror>("mirror-target", &all, &[], |s| json!({"target": s}));
        assert_corpus::<AuthTls>(
            "auth-tls-error-page",
            &all,
            &[],
            |s| json!({"errorPage": s}),
        );
        assert_corpus::<CorsConfig>(
            "cors-allow-origin",
            &all,
            &[],
            |s| json!({"allowOrigin": [s]}),
        );

        // Method-typed fields. auth-method is a closed set; cors-allow-methods accepts
        // any method name (it is only echoed in a response header), so `XGETX`, a
        // well-formed name, passes there.
        assert_corpus::<ExternalAuth>("auth-method", &all, &[], |s| json!({"method": s}));
        assert_corpus::<CorsConfig>(
            "cors-allow-methods",
            CORPUS,
            &["XGETX"],
            |s| json!({"allowMethods": [s]}),
        );

        // Header-name fields: `XGETX` is a valid (harmless) header name.
        let token = &["XGETX"];
        assert_corpus::<ExternalAuth>(
            "auth-response-headers",
            CORPUS,
            token,
            |s| json!({"responseHeaders": [s]}),
        );
        assert_corpus::<ExternalAuth>(
            "auth-proxy-set-headers name",
            CORPUS,
            token,
            |s| json!({"proxySetHeaders": {s: "v"}}),
        );
        assert_corpus::<CorsConfig>(
            "cors-allow-headers",
            CORPUS,
            token,
            |s| json!({"allowHeaders": [s]}),
        );
        assert_corpus::<CorsConfig>(
            "cors-expose-headers",
            CORPUS,
            token,
            |s| json!({"exposeHeaders": [s]}),
        );
        assert_corpus::<CustomHeaders>(
            "custom-headers name",
            CORPUS,
            token,
            |s| json!({"headers": {s: "v"}}),
        );
        // Header values are data (`;` and quotes are legal in them); control
        // characters are what could split a header, and those are rejected.
        let printable: Vec<&str> = CORPUS
            .iter()
            .copied()
            .filter(|s| !s.chars().any(char::is_control))
            .collect();
        assert_corpus::<CustomHeaders>(
            "custom-headers value",
            CORPUS,
            &printable,
            |s| json!({"headers": {"X-A": s}}),
        );
        assert_corpus::<ExternalAuth>(
            "auth-proxy-set-headers value",
            CORPUS,
            &printable,
            |s| json!({"proxySetHeaders": {"X-A": s}}),
        );

        // CIDR-typed fields: everything is rejected.
        assert_corpus::<SourceRanges>(
            "allowlist-source-range",
            &all,
            &[],
            |s| json!({"cidrs": [s]}),
        );
        assert_corpus::<RateLimit>("limit-allowlist", &all, &[], |s| json!({"allowlist": [s]}));

        // Other strings that reach names, regexes and keys.
        assert_corpus::<AuthTls>("auth-tls-match-cn", &all, &[], |s| json!({"matchCn": s}));
        assert_corpus::<AuthTls>(
            "auth-tls-secret name",
            &all,
            &[],
            |s| json!({"secret": {"namespace": "default", "name": s}}),
        );
        assert_corpus::<ProxySsl>(
            "proxy-ssl-secret namespace",
            &all,
            &[],
            |s| json!({"secret": {"namespace": s, "name": "x"}}),
        );
        // Names (a host name or cipher name may well be `XGETX`) and literal text where
        // a relative-looking string is just data (a realm, a cache key).
        assert_corpus::<ProxySsl>(
            "proxy-ssl-ciphers",
            CORPUS,
            token,
            |s| json!({"ciphers": s}),
        );
        assert_corpus::<ProxySsl>("proxy-ssl-name", &all, token, |s| json!({"name": s}));
        assert_corpus::<Mirror>("mirror-host", &all, token, |s| json!({"host": s}));
        assert_corpus::<ProxyConfig>(
            "proxy-cookie-domain",
            &all,
            token,
            |s| json!({"cookieDomain": {"from": s, "to": "example.com"}}),
        );
        let literal = &["XGETX", "../../etc/nginx/nginx.conf"];
        assert_corpus::<ExternalAuth>(
            "auth-cache-key",
            CORPUS,
            literal,
            |s| json!({"cacheKey": s}),
        );
        assert_corpus::<BasicDigestAuth>("auth-realm", CORPUS, literal, |s| json!({"realm": s}));
        assert_corpus::<ProxyConfig>(
            "proxy-redirect-from",
            &all,
            &[],
            |s| json!({"redirectFrom": s, "redirectTo": "/"}),
        );
        assert_corpus::<ProxyConfig>(
            "proxy-cookie-path",
            &all,
            &[],
            |s| json!({"cookiePath": {"from": s, "to": "/"}}),
        );
    }
}
