//! Digest authentication (`auth-type: digest`): RFC 7616 (RFC 2617) with MD5 and
//! `qop=auth`, as nginx's `auth_digest` module answers for ingress-nginx.
//!
//! A request without valid credentials gets 401 with
//! `WWW-Authenticate: Digest algorithm="MD5", qop="auth", realm="<auth-realm>",
//! nonce="..."` (`stale=true` when only the nonce was too old). Nonces are stateless:
//! the issue time and a keyed SHA-1 of it (process key), valid for [`NONCE_TTL`] and
//! accepted by every worker. A response with a given nonce, `nc` and `cnonce` is
//! accepted once per worker ([`Replays`], bounded), so a captured `Authorization`
//! header cannot simply be sent again. Behind digest auth the `Authorization` header is
//! not forwarded upstream.
//!
//! Only `qop=auth` is accepted (not the legacy RFC 2069 form without `qop`, nor
//! `auth-int`), and the `uri` parameter must be the request target.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gangplank_store::policy::DigestAuth;
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use md5::{Digest as _, Md5};
use sha1::Sha1;

/// How long a nonce is accepted after it was issued (nginx's `auth_digest_timeout`
/// is 60 s; a little longer spares browsers a second challenge on slow pages).
pub const NONCE_TTL: Duration = Duration::from_secs(300);
/// Remembered `(nonce, nc, cnonce)` per worker; emptied of expired ones, then
/// entirely, when full.
const REPLAYS_MAX: usize = 65_536;

/// What the check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Valid credentials.
    Ok,
    /// No or wrong credentials: challenge.
    Denied,
    /// Right credentials with an expired nonce: challenge with `stale=true`.
    Stale,
}

/// Seen responses, per worker: key -> when its nonce expires (seconds).
#[derive(Debug, Default)]
pub struct Replays {
    seen: HashMap<[u8; 20], u64>,
}

impl Replays {
    /// Records `key`; false when it was already seen.
    pub fn first_use(&mut self, key: [u8; 20], expires: u64, now: u64) -> bool {
        if self.seen.len() >= REPLAYS_MAX && !self.seen.contains_key(&key) {
            self.seen.retain(|_, e| *e > now);
            if self.seen.len() >= REPLAYS_MAX {
                self.seen.clear();
            }
        }
        self.seen.insert(key, expires).is_none()
    }
}

thread_local! {
    static REPLAYS: RefCell<Replays> = RefCell::new(Replays::default());
}

fn process_key() -> &'static [u8; 16] {
    static KEY: OnceLock<[u8; 16]> = OnceLock::new();
    KEY.get_or_init(|| fastrand::u128(..).to_le_bytes())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn nonce_mac(issued: u64) -> String {
    let mut h = Sha1::new();
    h.update(process_key());
    h.update(issued.to_be_bytes());
    hex::encode(&h.finalize()[..16])
}

/// A nonce issued at `now` (seconds since the epoch).
pub fn nonce(now: u64) -> String {
    format!("{now:016x}{}", nonce_mac(now))
}

/// When `nonce` was issued, if it is one of ours.
fn nonce_issued(nonce: &str) -> Option<u64> {
    if nonce.len() != 48 {
        return None;
    }
    let issued = u64::from_str_radix(nonce.get(..16)?, 16).ok()?;
    constant_time_eq(nonce_mac(issued).as_bytes(), nonce.get(16..)?.as_bytes()).then_some(issued)
}

/// The `WWW-Authenticate` challenge.
pub fn challenge(auth: &DigestAuth, stale: bool) -> HeaderValue {
    let mut text = format!(
        "Digest algorithm=\"MD5\", qop=\"auth\", realm=\"{}\", nonce=\"{}\"",
        auth.realm,
        nonce(unix_now())
    );
    if stale {
        text.push_str(", stale=\"true\"");
    }
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("Digest qop=\"auth\""))
}

/// Checks the request's `Authorization: Digest` header.
pub fn check(auth: &DigestAuth, method: &Method, uri: &Uri, headers: &HeaderMap) -> Check {
    let now = unix_now();
    REPLAYS.with(|r| verify(auth, method, uri, headers, now, &mut r.borrow_mut()))
}

/// [`check`] at time `now`, with the given replay memory.
pub fn verify(
    auth: &DigestAuth,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    now: u64,
    replays: &mut Replays,
) -> Check {
    let Some(params) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse)
    else {
        return Check::Denied;
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (Some(user), Some(nonce), Some(digest_uri), Some(response), Some(cnonce), Some(nc)) = (
        get("username"),
        get("nonce"),
        get("uri"),
        get("response"),
        get("cnonce"),
        get("nc"),
    ) else {
        return Check::Denied;
    };
    if get("qop") != Some("auth")
        || get("realm") != Some(auth.realm.as_str())
        || get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        || nc.len() != 8
        || !nc.bytes().all(|b| b.is_ascii_hexdigit())
        || cnonce.is_empty()
    {
        return Check::Denied;
    }
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    if digest_uri != target {
        return Check::Denied;
    }
    let Some(ha1) = auth.users.get(user) else {
        return Check::Denied;
    };
    let Some(issued) = nonce_issued(nonce) else {
        return Check::Denied;
    };
    let ha2 = md5_hex(&[method.as_str(), ":", digest_uri]);
    let expected = md5_hex(&[
        &hex::encode(ha1),
        ":",
        nonce,
        ":",
        nc,
        ":",
        cnonce,
        ":auth:",
        &ha2,
    ]);
    if !constant_time_eq(
        expected.as_bytes(),
        response.to_ascii_lowercase().as_bytes(),
    ) {
        return Check::Denied;
    }
    let expires = issued.saturating_add(NONCE_TTL.as_secs());
    if issued > now.saturating_add(60) || expires <= now {
        return Check::Stale;
    }
    let mut key = Sha1::new();
    for part in [nonce, nc, cnonce] {
        key.update((part.len() as u64).to_le_bytes());
        key.update(part.as_bytes());
    }
    if !replays.first_use(key.finalize().into(), expires, now) {
        return Check::Denied;
    }
    Check::Ok
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for part in parts {
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The parameters of `Digest k=v, k="v", ...`; `None` for another scheme or garbage.
fn parse(value: &str) -> Option<Vec<(String, String)>> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("digest") || rest.len() > 4096 {
        return None;
    }
    let mut out = Vec::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let name = s[..eq].trim().to_owned();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        s = s[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = s.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => text.push(chars.next()?.1),
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => text.push(c),
                }
            }
            value = text;
            s = &quoted[end? + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_owned();
            s = &s[end..];
        }
        out.push((name, value));
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest.trim_start();
        } else if !s.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// A client's `Authorization` value for `user`/`password` answering `challenge`
/// (tests and tools).
#[allow(clippy::too_many_arguments)] // The protocol's own parameters, in its order.
pub fn authorization(
    user: &str,
    password: &str,
    realm: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let ha1 = md5_hex(&[user, ":", realm, ":", password]);
    let ha2 = md5_hex(&[method, ":", uri]);
    let nc = format!("{nc:08x}");
    let response = md5_hex(&[&ha1, ":", nonce, ":", &nc, ":", cnonce, ":auth:", &ha2]);
    let mut out = String::new();
    let _ = write!(
        out,
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
    );
    out
}

/// The `nonce` of a challenge (tests and tools).
pub fn challenge_nonce(challenge: &str) -> Option<String> {
    parse(challenge)?
        .into_iter()
        .find(|(k, _)| k == "nonce")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> DigestAuth {
        let ha1 = md5_hex(&["alice", ":", "staff", ":", "secret"]);
        let model = gangplank_model::policy::BasicDigestAuth {
            auth_type: Some(gangplank_model::policy::AuthType::Digest),
            realm: "staff".into(),
            credentials: [("alice".to_string(), ha1)].into(),
            ..Default::default()
        };
        DigestAuth::compile(&model).unwrap()
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn rfc_2617_example_response() {
        // RFC 2617 §3.5: Mufasa / "Circle Of Life", realm testrealm@host.com.
        let value = authorization(
            "Mufasa",
            "Circle Of Life",
            "testrealm@host.com",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert!(value.contains("response=\"6629fae49393a05397450978507c4ef1\""));
    }

    #[test]
    fn good_wrong_stale_and_replayed() {
        let a = auth();
        let now = 1_800_000_000;
        let n = nonce(now);
        let uri: Uri = "/x?y=1".parse().unwrap();
        let mut replays = Replays::default();
        let good = authorization("alice", "secret", "staff", &n, "GET", "/x?y=1", 1, "c1");
        let v = |value: &str, method: &Method, at: u64, r: &mut Replays| {
            verify(&a, method, &uri, &headers(value), at, r)
        };
        assert_eq!(v(&good, &Method::GET, now + 1, &mut replays), Check::Ok);
        // The same nonce, nc and cnonce again: refused.
        assert_eq!(v(&good, &Method::GET, now + 2, &mut replays), Check::Denied);
        let next = authorization("alice", "secret", "staff", &n, "GET", "/x?y=1", 2, "c1");
        assert_eq!(v(&next, &Method::GET, now + 2, &mut replays), Check::Ok);
        // Wrong password, wrong method, wrong URI, unknown user, forged nonce.
        let wrong = authorization("alice", "nope", "staff", &n, "GET", "/x?y=1", 3, "c1");
        assert_eq!(v(&wrong, &Method::GET, now, &mut replays), Check::Denied);
        let fresh = authorization("alice", "secret", "staff", &n, "GET", "/x?y=1", 4, "c1");
        assert_eq!(v(&fresh, &Method::POST, now, &mut replays), Check::Denied);
        let other = authorization("alice", "secret", "staff", &n, "GET", "/other", 5, "c1");
        assert_eq!(v(&other, &Method::GET, now, &mut replays), Check::Denied);
        let bob = authorization("bob", "secret", "staff", &n, "GET", "/x?y=1", 6, "c1");
        assert_eq!(v(&bob, &Method::GET, now, &mut replays), Check::Denied);
        let forged = format!("{now:016x}{}", "0".repeat(32));
        let f = authorization(
            "alice", "secret", "staff", &forged, "GET", "/x?y=1", 7, "c1",
        );
        assert_eq!(v(&f, &Method::GET, now, &mut replays), Check::Denied);
        // Right credentials, old nonce: stale.
        let late = authorization("alice", "secret", "staff", &n, "GET", "/x?y=1", 8, "c1");
        let at = now + NONCE_TTL.as_secs() + 1;
        assert_eq!(v(&late, &Method::GET, at, &mut replays), Check::Stale);
        // Not digest, garbage.
        for bad in [
            "Basic YTpi",
            "Digest",
            "Digest username",
            "Digest a=\"b",
            "Digest \u{1}=x",
        ] {
            if let Ok(h) = HeaderValue::from_str(bad) {
                let mut m = HeaderMap::new();
                m.insert(header::AUTHORIZATION, h);
                assert_eq!(
                    verify(&a, &Method::GET, &uri, &m, now, &mut replays),
                    Check::Denied
                );
            }
        }
        assert_eq!(
            verify(&a, &Method::GET, &uri, &HeaderMap::new(), now, &mut replays),
            Check::Denied
        );
    }

    #[test]
    fn challenge_format() {
        let c = challenge(&auth(), true);
        let text = c.to_str().unwrap();
        assert!(
            text.starts_with("Digest algorithm=\"MD5\", qop=\"auth\", realm=\"staff\", nonce=\"")
        );
        assert!(text.ends_with("stale=\"true\""));
        let n = challenge_nonce(text).unwrap();
        assert!(nonce_issued(&n).is_some());
    }

    #[test]
    fn replay_memory_is_bounded() {
        let mut r = Replays::default();
        for i in 0..(REPLAYS_MAX as u64 + 10) {
            let mut key = [0u8; 20];
            key[..8].copy_from_slice(&i.to_le_bytes());
            assert!(r.first_use(key, 10, 5));
        }
        assert!(r.seen.len() <= REPLAYS_MAX);
    }
}
