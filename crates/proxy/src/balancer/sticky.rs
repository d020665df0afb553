//! Sticky sessions (`affinity: cookie`, Part B §3.9): `sticky_balanced` and
//! `sticky_persistent`, with ingress-nginx's cookie format, so sessions pinned by
//! ingress-nginx keep their endpoint after a migration to Gangplank.
//!
//! The cookie value is `<upstream key>|<backend key>`, where the backend key is
//! `md5hex(md5hex(name) + name)`:
//! - **balanced**: the upstream key is a random token hashed onto the chash ring of
//!   `ip:port` endpoints, so sessions rebalance when the backend scales;
//! - **persistent**: the upstream key is `md5hex(name + "ip:port")` of the endpoint
//!   itself, so a session stays put as long as its endpoint lives.
//!
//! A balancer only decides the endpoint and hands back the cookie value to set; the
//! proxy decides whether this location may set it ([`cookie_may_be_set`]) and renders
//! the header ([`set_cookie_header`]).
//!
//! ```
//! use gangplank_proxy::balancer::sticky::{backend_key, parse_cookie};
//!
//! let key = backend_key("access-router-production-web-80");
//! assert_eq!(key, "3ec0ac2d8dd2cda20a93dee13e737231");
//! let value = format!("10.184.7.40:8080|{key}");
//! assert_eq!(parse_cookie(&value).backend_key, Some(key.as_str()));
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use gangplank_model::{CookieSessionAffinity, LoadBalance};
use gangplank_store::CompiledBackend;
use md5::{Digest, Md5};

use super::chash::Ring;
use super::{Balancer, Pick, PickRequest};

/// The cookie name ingress-nginx's Lua falls back to when none is configured.
pub const DEFAULT_COOKIE_NAME: &str = "route";

/// How many random tokens a balanced pick tries before giving up on avoiding the
/// endpoints already tried. ingress-nginx's `MAX_UPSTREAM_CHECKS_COUNT` is 20, then it
/// fails the request; with one untried endpoint of three that happens to one retry in
/// about 3,000. 200 tokens make it practically never happen, at no cost when the
/// first token already lands on an untried endpoint (the common case).
pub const MAX_UPSTREAM_CHECKS: u64 = 200;

/// The affinity cookie's name: the configured one, or [`DEFAULT_COOKIE_NAME`].
pub fn cookie_name(affinity: &CookieSessionAffinity) -> &str {
    if affinity.name.is_empty() {
        DEFAULT_COOKIE_NAME
    } else {
        &affinity.name
    }
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
    }
    hex::encode(md5.finalize())
}

/// The backend key of a cookie value: `md5hex(md5hex(name) + name)`.
pub fn backend_key(backend_name: &str) -> String {
    let inner = md5_hex(&[backend_name.as_bytes()]);
    md5_hex(&[inner.as_bytes(), backend_name.as_bytes()])
}

/// The persistent-mode upstream key of an endpoint: `md5hex(name + "ip:port")`.
pub fn persistent_key(backend_name: &str, endpoint: &str) -> String {
    md5_hex(&[backend_name.as_bytes(), endpoint.as_bytes()])
}

/// An affinity cookie value split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CookieValue<'a> {
    /// The token (balanced) or endpoint key (persistent).
    pub upstream_key: Option<&'a str>,
    /// The backend key; `None` for a legacy value without `|`.
    pub backend_key: Option<&'a str>,
}

/// Splits a cookie value like ingress-nginx's `split_string(value, "|")`: empty
/// pieces are skipped, the first piece is the upstream key, the second the backend
/// key, and anything after is ignored.
pub fn parse_cookie(value: &str) -> CookieValue<'_> {
    let mut pieces = value.split('|').filter(|p| !p.is_empty());
    CookieValue {
        upstream_key: pieces.next(),
        backend_key: pieces.next(),
    }
}

#[derive(Debug)]
enum Mode {
    Balanced(Ring),
    Persistent {
        /// Upstream key of each endpoint.
        keys: Vec<String>,
        by_key: HashMap<String, usize>,
    },
}

/// A sticky-session balancer, balanced or persistent.
#[derive(Debug)]
pub struct Sticky {
    mode: Mode,
    backend_key: String,
    endpoints: usize,
    change_on_failure: bool,
}

impl Sticky {
    /// `sticky_balanced`: cookies carry random tokens hashed onto the endpoints' ring.
    pub fn balanced(backend: &CompiledBackend) -> Sticky {
        let ring = Ring::new(backend.upstreams.iter().map(ToString::to_string));
        Sticky::with_mode(backend, Mode::Balanced(ring))
    }

    /// `sticky_persistent`: cookies carry the endpoint's own salted key.
    pub fn persistent(backend: &CompiledBackend) -> Sticky {
        let keys: Vec<String> = backend
            .upstreams
            .iter()
            .map(|u| persistent_key(backend.name(), &u.to_string()))
            .collect();
        let by_key = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        Sticky::with_mode(backend, Mode::Persistent { keys, by_key })
    }

    fn with_mode(backend: &CompiledBackend, mode: Mode) -> Sticky {
        let affinity = &backend
            .source
            .session_affinity_config
            .cookie_session_affinity;
        Sticky {
            mode,
            backend_key: backend_key(backend.name()),
            endpoints: backend.upstreams.len(),
            change_on_failure: affinity.change_on_failure,
        }
    }

    /// This backend's key, the part of the cookie value after `|`.
    pub fn backend_key(&self) -> &str {
        &self.backend_key
    }

    /// The endpoint an upstream key designates, if it is alive.
    fn find(&self, upstream_key: &str) -> Option<usize> {
        match &self.mode {
            Mode::Balanced(ring) => ring.find(upstream_key.as_bytes()),
            Mode::Persistent { by_key, .. } => by_key.get(upstream_key).copied(),
        }
    }

    fn cookie_value(&self, upstream_key: &[u8]) -> String {
        let mut value = String::with_capacity(upstream_key.len() + 1 + self.backend_key.len());
        value.push_str(&String::from_utf8_lossy(upstream_key));
        value.push('|');
        value.push_str(&self.backend_key);
        value
    }

    /// A new endpoint avoiding `tried` when possible, with its cookie value.
    fn pick_new(&self, tried: &[usize]) -> Option<(usize, String)> {
        match &self.mode {
            Mode::Balanced(ring) => {
                let since_epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let pid = std::process::id();
                let mut last = None;
                for i in 1..=MAX_UPSTREAM_CHECKS {
                    // `<ngx.now() + i>.<worker pid>.<random 1..999999>`, formatted on
                    // the stack: only the chosen token becomes a string.
                    let mut token = Token::default();
                    let _ = write!(
                        token,
                        "{}.{:03}.{}.{}",
                        since_epoch.as_secs().saturating_add(i),
                        since_epoch.subsec_millis(),
                        pid,
                        fastrand::u32(1..=999_999)
                    );
                    let endpoint = ring.find(token.as_bytes())?;
                    if !tried.contains(&endpoint) {
                        return Some((endpoint, self.cookie_value(token.as_bytes())));
                    }
                    last = Some((endpoint, token));
                }
                // ingress-nginx gives up here and fails the request; retrying an
                // endpoint that failed once is the better outcome.
                last.map(|(endpoint, token)| (endpoint, self.cookie_value(token.as_bytes())))
            }
            Mode::Persistent { keys, .. } => {
                let n = keys.len();
                let untried = (0..n).filter(|e| !tried.contains(e)).count();
                // `random_except(failed)`; with everything excluded ingress-nginx fails
                // the request, we take any endpoint.
                let endpoint = if untried == 0 {
                    fastrand::usize(..n.max(1))
                } else {
                    let nth = fastrand::usize(..untried);
                    (0..n).filter(|e| !tried.contains(e)).nth(nth)?
                };
                let key = keys.get(endpoint)?;
                Some((endpoint, self.cookie_value(key.as_bytes())))
            }
        }
    }
}

impl Balancer for Sticky {
    /// Keeps the endpoint of the request's cookie while it lives (and, with
    /// `change_on_failure`, while nothing failed: a non-empty `tried` means an upstream
    /// attempt failed); otherwise picks a new endpoint, avoiding those tried, and
    /// returns the cookie value to set.
    fn pick(&self, request: &PickRequest<'_>) -> Option<Pick> {
        if self.endpoints == 0 {
            return None;
        }
        let from_cookie = request
            .affinity_cookie
            .and_then(|v| parse_cookie(v).upstream_key)
            .and_then(|key| self.find(key));
        let failed = !request.tried.is_empty();
        if let Some(endpoint) = from_cookie
            && !(failed && self.change_on_failure)
        {
            return Some(Pick {
                endpoint,
                set_cookie: None,
            });
        }
        let (endpoint, value) = self.pick_new(request.tried)?;
        Some(Pick {
            endpoint,
            set_cookie: Some(value),
        })
    }

    fn is_affinitized(&self, affinity_cookie: Option<&str>) -> bool {
        affinity_cookie.and_then(|v| parse_cookie(v).backend_key) == Some(self.backend_key.as_str())
    }

    fn algorithm(&self) -> LoadBalance {
        match self.mode {
            Mode::Balanced(_) => LoadBalance::StickyBalanced,
            Mode::Persistent { .. } => LoadBalance::StickyPersistent,
        }
    }
}

/// A token buffer on the stack (`<secs>.<ms>.<pid>.<random>` is at most ~45 bytes).
struct Token {
    bytes: [u8; 64],
    len: usize,
}

impl Default for Token {
    fn default() -> Token {
        Token {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl Token {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for Token {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// True when a user agent handles `SameSite=None` (ingress-nginx's
/// `util/same_site.lua`): Chrome 40–69, iOS 12 and Safari on macOS 10.14 do not.
/// A request without a user agent counts as compatible.
pub fn same_site_none_compatible(user_agent: Option<&str>) -> bool {
    let Some(ua) = user_agent else {
        return true;
    };
    let incompatible = [
        "Chrome/4",
        "Chrome/5",
        "Chrome/6",
        "CPU iPhone OS 12",
        "iPad; CPU OS 12",
    ]
    .iter()
    .any(|needle| ua.contains(needle))
        || (ua.contains("Macintosh")
            && ua.contains("Intel Mac OS X 10_14")
            && ua.contains("Safari")
            && !ua.contains("Chrome"));
    !incompatible
}

/// Whether a location may set the affinity cookie (§3.9 step 3): `locations[host]`
/// lists `location_path`, where the host is `_` when the server is the catch-all
/// (`server_name == "_"`), and a host without an entry falls back to
/// `*.<host minus its first label>`. `host` is the request's host, lowercase, without
/// port.
pub fn cookie_may_be_set(
    affinity: &CookieSessionAffinity,
    host: &str,
    server_name: &str,
    location_path: &str,
) -> bool {
    let host = if server_name == "_" { "_" } else { host };
    let paths = affinity.locations.get(host).or_else(|| {
        let (first, rest) = host.split_once('.')?;
        if first.is_empty() {
            return None;
        }
        // Looked up without building "*.rest": this runs on the request path.
        affinity
            .locations
            .iter()
            .find(|(pattern, _)| pattern.strip_prefix("*.") == Some(rest))
            .map(|(_, paths)| paths)
    });
    paths.is_some_and(|paths| paths.iter().any(|p| p == location_path))
}

/// Renders the `Set-Cookie` header value for an affinity cookie, as ingress-nginx
/// (lua-resty-cookie) does: `name=value`, then `Expires` (`now + expires`, in nginx's
/// `cookie_time` format), `Max-Age`, `Domain`, `Path` (configured, else the location's
/// path), `Secure` (configured, or the request came over TLS), `HttpOnly` (always) and
/// `SameSite` (configured; `None` is left out for user agents that mishandle it when
/// `conditional_samesite_none` is set).
///
/// `value` is [`Pick::set_cookie`]; `now_unix` is the current Unix time in seconds.
pub fn set_cookie_header(
    affinity: &CookieSessionAffinity,
    value: &str,
    location_path: &str,
    https: bool,
    user_agent: Option<&str>,
    now_unix: u64,
) -> String {
    let mut header = String::with_capacity(128 + value.len());
    header.push_str(cookie_name(affinity));
    header.push('=');
    header.push_str(value);
    if let Ok(expires) = affinity.expires.parse::<i64>() {
        let at = i64::try_from(now_unix)
            .unwrap_or(i64::MAX)
            .saturating_add(expires);
        header.push_str("; Expires=");
        write_cookie_time(&mut header, at.max(0));
    }
    if let Ok(max_age) = affinity.maxage.parse::<i64>() {
        let _ = write!(header, "; Max-Age={max_age}");
    }
    if !affinity.domain.is_empty() {
        header.push_str("; Domain=");
        header.push_str(&affinity.domain);
    }
    header.push_str("; Path=");
    header.push_str(if affinity.path.is_empty() {
        location_path
    } else {
        &affinity.path
    });
    if affinity.secure || https {
        header.push_str("; Secure");
    }
    header.push_str("; HttpOnly");
    // lua-resty-cookie drops any spelling but `Strict`, `Lax` and `None`; the model
    // accepts them case-insensitively, so they are written in canonical case.
    let same_site = match affinity.samesite.to_ascii_lowercase().as_str() {
        "strict" => Some("Strict"),
        "lax" => Some("Lax"),
        "none" => Some("None"),
        _ => None,
    };
    let same_site = same_site.filter(|s| {
        !(*s == "None"
            && affinity.conditional_samesite_none
            && !same_site_none_compatible(user_agent))
    });
    if let Some(same_site) = same_site {
        header.push_str("; SameSite=");
        header.push_str(same_site);
    }
    header
}

/// nginx's `ngx_http_cookie_time`: `Thu, 18-Nov-10 11:27:35 GMT`, with a two-digit
/// year up to 2037 and four digits after.
fn write_cookie_time(out: &mut String, unix: i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = crate::calendar::civil_from_days(days);

    let weekday = crate::calendar::weekday_name(days);
    let month = crate::calendar::month_name(month);
    let year = if year > 2037 { year } else { year % 100 };
    let _ = write!(
        out,
        "{weekday}, {day:02}-{month}-{year:02} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::{Backend, Endpoint};
    use proptest::prelude::*;

    const NAME: &str = "access-router-production-web-80";
    const BACKEND_KEY: &str = "3ec0ac2d8dd2cda20a93dee13e737231";
    const EP40_KEY: &str = "ce8f959dcbe10d546cb8a4cc705e10f0";

    fn backend(last_octets: &[u8], change_on_failure: bool) -> CompiledBackend {
        let mut source = Backend {
            name: NAME.into(),
            endpoints: last_octets
                .iter()
                .map(|o| Endpoint {
                    address: format!("10.184.7.{o}"),
                    port: "8080".into(),
                })
                .collect(),
            ..Default::default()
        };
        source.session_affinity_config.name = "cookie".into();
        let affinity = &mut source.session_affinity_config.cookie_session_affinity;
        affinity.name = "test_name".into();
        affinity.change_on_failure = change_on_failure;
        CompiledBackend::compile(source)
    }

    fn both(last_octets: &[u8], change_on_failure: bool) -> [Sticky; 2] {
        let b = backend(last_octets, change_on_failure);
        [Sticky::balanced(&b), Sticky::persistent(&b)]
    }

    fn pick(s: &Sticky, cookie: Option<&str>, tried: &[usize]) -> Pick {
        s.pick(&PickRequest {
            hash_key: None,
            affinity_cookie: cookie,
            tried,
        })
        .unwrap()
    }

    fn affinity(locations: &[(&str, &str)]) -> CookieSessionAffinity {
        CookieSessionAffinity {
            name: "test_name".into(),
            locations: locations
                .iter()
                .map(|(h, p)| ((*h).to_string(), vec![(*p).to_string()]))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn keys_match_ingress_nginx() {
        assert_eq!(backend_key(NAME), BACKEND_KEY);
        assert_eq!(persistent_key(NAME, "10.184.7.40:8080"), EP40_KEY);
        for s in both(&[40], false) {
            assert_eq!(s.backend_key(), BACKEND_KEY);
        }
    }

    #[test]
    fn cookie_name_falls_back_to_route() {
        assert_eq!(cookie_name(&affinity(&[])), "test_name");
        assert_eq!(cookie_name(&CookieSessionAffinity::default()), "route");
    }

    #[test]
    fn cookie_values_parse_like_split_string() {
        let v = format!("10.184.7.40:8080|{BACKEND_KEY}");
        assert_eq!(
            parse_cookie(&v),
            CookieValue {
                upstream_key: Some("10.184.7.40:8080"),
                backend_key: Some(BACKEND_KEY)
            }
        );
        assert_eq!(parse_cookie("10.184.7.40:8080").backend_key, None);
        assert_eq!(parse_cookie("").upstream_key, None);
        assert_eq!(parse_cookie("|a").upstream_key, Some("a"));
        assert_eq!(parse_cookie("a||b|c").backend_key, Some("b"));
    }

    #[test]
    fn a_request_without_cookie_gets_an_endpoint_and_a_cookie() {
        for s in both(&[40], false) {
            let p = pick(&s, None, &[]);
            assert_eq!(p.endpoint, 0);
            let value = p.set_cookie.unwrap();
            let parsed = parse_cookie(&value);
            assert_eq!(parsed.backend_key, Some(BACKEND_KEY));
            // The cookie routes back to the same endpoint and is affinitized.
            let again = pick(&s, Some(&value), &[]);
            assert_eq!(
                again,
                Pick {
                    endpoint: 0,
                    set_cookie: None
                }
            );
            assert!(s.is_affinitized(Some(&value)));
        }
        let [balanced, persistent] = both(&[40], false);
        let value = pick(&persistent, None, &[]).set_cookie.unwrap();
        assert_eq!(value, format!("{EP40_KEY}|{BACKEND_KEY}"));
        let token = parse_cookie(pick(&balanced, None, &[]).set_cookie.as_deref().unwrap())
            .upstream_key
            .unwrap()
            .to_string();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 4, "{token}");
        assert_eq!(parts[2], std::process::id().to_string());
        let random: u32 = parts[3].parse().unwrap();
        assert!((1..=999_999).contains(&random));
    }

    #[test]
    fn an_ingress_nginx_persistent_cookie_keeps_its_endpoint() {
        let [_, persistent] = both(&[41, 40, 42], false);
        let cookie = format!("{EP40_KEY}|{BACKEND_KEY}");
        for _ in 0..20 {
            assert_eq!(
                pick(&persistent, Some(&cookie), &[]),
                Pick {
                    endpoint: 1,
                    set_cookie: None
                }
            );
        }
    }

    #[test]
    fn a_dead_endpoint_gets_a_new_pick_and_cookie() {
        let [_, persistent] = both(&[41, 42], false);
        let cookie = format!("{EP40_KEY}|{BACKEND_KEY}");
        let p = pick(&persistent, Some(&cookie), &[]);
        assert!(p.endpoint < 2);
        assert!(p.set_cookie.is_some());
    }

    #[test]
    fn legacy_cookie_routes_without_affinity() {
        let [balanced, persistent] = both(&[40], false);
        let p = pick(&balanced, Some("10.184.7.40:8080"), &[]);
        assert_eq!(
            p,
            Pick {
                endpoint: 0,
                set_cookie: None
            }
        );
        assert!(!balanced.is_affinitized(Some("10.184.7.40:8080")));
        // Persistent keys are md5s, so the legacy value misses and a new pick follows.
        assert_eq!(pick(&persistent, Some("10.184.7.40:8080"), &[]).endpoint, 0);
        assert!(!persistent.is_affinitized(Some("10.184.7.40:8080")));
        assert!(!persistent.is_affinitized(None));
        assert!(!persistent.is_affinitized(Some("x|another-backend")));
    }

    #[test]
    fn change_on_failure_moves_the_session() {
        for s in both(&[40, 41], true) {
            let cookie = pick(&s, None, &[]).set_cookie.unwrap();
            let old = pick(&s, Some(&cookie), &[]).endpoint;
            for _ in 0..100 {
                assert_eq!(pick(&s, Some(&cookie), &[]).endpoint, old);
            }
            for _ in 0..100 {
                let p = pick(&s, Some(&cookie), &[old]);
                assert_ne!(p.endpoint, old, "{:?}", s.algorithm());
                assert!(p.set_cookie.is_some());
            }
        }
    }

    #[test]
    fn without_change_on_failure_the_session_stays() {
        for s in both(&[40, 41], false) {
            let cookie = pick(&s, None, &[]).set_cookie.unwrap();
            let old = pick(&s, Some(&cookie), &[]).endpoint;
            for _ in 0..100 {
                assert_eq!(
                    pick(&s, Some(&cookie), &[old]),
                    Pick {
                        endpoint: old,
                        set_cookie: None
                    }
                );
            }
        }
    }

    #[test]
    fn new_picks_avoid_tried_endpoints() {
        for s in both(&[40, 41, 42], false) {
            for _ in 0..100 {
                assert_eq!(pick(&s, None, &[0, 2]).endpoint, 1);
            }
            assert!(pick(&s, None, &[0, 1, 2]).endpoint < 3);
        }
    }

    #[test]
    fn cookie_is_set_only_on_listed_locations() {
        let a = affinity(&[("test.com", "/")]);
        assert!(cookie_may_be_set(&a, "test.com", "test.com", "/"));
        assert!(!cookie_may_be_set(&a, "test.com", "test.com", "/other"));
        assert!(!cookie_may_be_set(&a, "other.com", "other.com", "/"));
        // No locations at all.
        assert!(!cookie_may_be_set(
            &affinity(&[]),
            "test.com",
            "test.com",
            "/"
        ));
        // Wildcard: one label replaced.
        let w = affinity(&[("*.test.com", "/")]);
        assert!(cookie_may_be_set(&w, "dev.test.com", "dev.test.com", "/"));
        assert!(!cookie_may_be_set(
            &w,
            "a.dev.test.com",
            "a.dev.test.com",
            "/"
        ));
        assert!(!cookie_may_be_set(&w, "test.com", "test.com", "/"));
        // An exact entry without the path does not fall back to the wildcard.
        let both_entries = CookieSessionAffinity {
            locations: [
                ("dev.test.com".to_string(), vec!["/api".to_string()]),
                ("*.test.com".to_string(), vec!["/".to_string()]),
            ]
            .into(),
            ..Default::default()
        };
        assert!(!cookie_may_be_set(
            &both_entries,
            "dev.test.com",
            "dev.test.com",
            "/"
        ));
        // The catch-all server.
        let d = affinity(&[("_", "/")]);
        assert!(cookie_may_be_set(&d, "not-default-server", "_", "/"));
        assert!(!cookie_may_be_set(
            &d,
            "not-default-server",
            "not-default-server",
            "/"
        ));
    }

    #[test]
    fn header_defaults() {
        let a = affinity(&[("test.com", "/")]);
        let v = format!("k|{BACKEND_KEY}");
        assert_eq!(
            set_cookie_header(&a, &v, "/", false, None, 0),
            format!("test_name=k|{BACKEND_KEY}; Path=/; HttpOnly")
        );
        assert_eq!(
            set_cookie_header(&a, &v, "/", true, None, 0),
            format!("test_name=k|{BACKEND_KEY}; Path=/; Secure; HttpOnly")
        );
        let unnamed = CookieSessionAffinity::default();
        assert_eq!(
            set_cookie_header(&unnamed, "k|b", "/app", false, None, 0),
            "route=k|b; Path=/app; HttpOnly"
        );
    }

    #[test]
    fn header_with_every_attribute() {
        let a = CookieSessionAffinity {
            name: "INGRESSCOOKIE".into(),
            expires: "172800".into(),
            maxage: "3600".into(),
            domain: "example.com".into(),
            path: "/shop".into(),
            secure: true,
            samesite: "Strict".into(),
            ..Default::default()
        };
        assert_eq!(
            set_cookie_header(&a, "k|b", "/ignored", false, None, 1290079655 - 172800),
            "INGRESSCOOKIE=k|b; Expires=Thu, 18-Nov-10 11:27:35 GMT; Max-Age=3600; \
             Domain=example.com; Path=/shop; Secure; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn cookie_time_is_nginx_format() {
        let t = |unix| {
            let mut s = String::new();
            write_cookie_time(&mut s, unix);
            s
        };
        assert_eq!(t(1290079655), "Thu, 18-Nov-10 11:27:35 GMT");
        assert_eq!(t(0), "Thu, 01-Jan-70 00:00:00 GMT");
        assert_eq!(t(951_782_400), "Tue, 29-Feb-00 00:00:00 GMT");
        assert_eq!(t(1_700_000_000), "Tue, 14-Nov-23 22:13:20 GMT");
        assert_eq!(t(2_524_608_000), "Sat, 01-Jan-2050 00:00:00 GMT");
    }

    #[test]
    fn negative_expires_lies_in_the_past() {
        let a = CookieSessionAffinity {
            expires: "-1".into(),
            maxage: "0".into(),
            ..Default::default()
        };
        assert_eq!(
            set_cookie_header(&a, "v", "/", false, None, 1),
            "route=v; Expires=Thu, 01-Jan-70 00:00:00 GMT; Max-Age=0; Path=/; HttpOnly"
        );
    }

    /// §4.4 SameSite matrix (the header does not depend on the mode).
    #[test]
    fn same_site_matrix() {
        let chrome71 = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/71.0.3578.98 Safari/537.36";
        let chrome51 = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36";
        // samesite, conditional, secure, user agent -> expected SameSite, Secure.
        let cases = [
            ("Lax", false, true, None, Some("Lax"), true),
            ("Strict", true, false, None, Some("Strict"), false),
            ("Lax", false, false, None, Some("Lax"), false),
            ("Lax", true, false, None, Some("Lax"), false),
            ("None", false, false, None, Some("None"), false),
            ("None", true, false, Some(chrome71), Some("None"), false),
            ("None", true, false, Some(chrome51), None, false),
        ];
        for (samesite, conditional, secure, ua, expected, expected_secure) in cases {
            let a = CookieSessionAffinity {
                name: "test_name".into(),
                samesite: samesite.into(),
                conditional_samesite_none: conditional,
                secure,
                ..Default::default()
            };
            let header = set_cookie_header(&a, "v", "/", false, ua, 0);
            let got_same_site = header
                .split("; ")
                .find_map(|attr| attr.strip_prefix("SameSite="));
            assert_eq!(got_same_site, expected, "{header}");
            assert_eq!(header.contains("; Secure"), expected_secure, "{header}");
            assert!(header.starts_with("test_name=v; Path=/"), "{header}");
        }
    }

    #[test]
    fn same_site_spelling_is_canonicalised() {
        let a = CookieSessionAffinity {
            samesite: "lax".into(),
            ..Default::default()
        };
        assert!(set_cookie_header(&a, "v", "/", false, None, 0).ends_with("; SameSite=Lax"));
    }

    /// §4.7 user-agent table.
    #[test]
    fn same_site_none_user_agents() {
        let incompatible = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/66.0.3359.181 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (iPad; CPU OS 12_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Safari/605.1.15",
        ];
        for ua in incompatible {
            assert!(!same_site_none_compatible(Some(ua)), "{ua}");
        }
        let compatible = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/71.0.3578.98 Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.87 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 13_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.97 Safari/537.36",
        ];
        for ua in compatible {
            assert!(same_site_none_compatible(Some(ua)), "{ua}");
        }
        assert!(same_site_none_compatible(None));
    }

    #[test]
    fn empty_backend_picks_nothing() {
        for s in both(&[], true) {
            assert_eq!(s.pick(&PickRequest::default()), None);
        }
    }

    proptest! {
        #[test]
        fn picks_are_in_range(n in 0u8..8, cookie in proptest::option::of(".{0,40}"),
                              tried in proptest::collection::vec(0usize..10, 0..4),
                              change in any::<bool>()) {
            let octets: Vec<u8> = (1..=n).collect();
            for s in both(&octets, change) {
                let got = s.pick(&PickRequest { hash_key: None, affinity_cookie: cookie.as_deref(), tried: &tried });
                match got {
                    Some(p) => prop_assert!(p.endpoint < usize::from(n)),
                    None => prop_assert_eq!(n, 0),
                }
            }
        }

        #[test]
        fn persistent_is_deterministic_for_a_cookie(n in 1u8..8, which in 0usize..8) {
            let octets: Vec<u8> = (1..=n).collect();
            let b = backend(&octets, false);
            let (a, c) = (Sticky::persistent(&b), Sticky::persistent(&b));
            let which = which % usize::from(n);
            let cookie = format!("{}|{BACKEND_KEY}", persistent_key(NAME, &b.upstreams[which].to_string()));
            prop_assert_eq!(pick(&a, Some(&cookie), &[]), Pick { endpoint: which, set_cookie: None });
            prop_assert_eq!(pick(&c, Some(&cookie), &[]), pick(&a, Some(&cookie), &[]));
        }

        #[test]
        fn balanced_is_deterministic_for_a_cookie(n in 1u8..8, token in "[0-9.]{1,30}") {
            let octets: Vec<u8> = (1..=n).collect();
            let b = backend(&octets, false);
            let (a, c) = (Sticky::balanced(&b), Sticky::balanced(&b));
            let cookie = format!("{token}|{BACKEND_KEY}");
            let first = pick(&a, Some(&cookie), &[]);
            prop_assert_eq!(first.set_cookie.clone(), None);
            prop_assert_eq!(pick(&c, Some(&cookie), &[]), first);
        }
    }
}
