//! Basic authentication (`auth-type: basic`): checks `Authorization: Basic` against the
//! location's compiled htpasswd table ([`gangplank_store::policy::BasicAuth`]).
//!
//! A missing or malformed header, an unknown user or a wrong password all answer 401
//! with `WWW-Authenticate: Basic realm="<auth-realm>"`; on success the `Authorization`
//! header is not forwarded upstream (ingress-nginx clears it).
//!
//! bcrypt is slow on purpose (tens of milliseconds at the usual costs), which would
//! stall a thread-per-core worker and every connection on it, so it runs on tokio's
//! blocking pool; a successful check is remembered for a minute per worker thread
//! (keyed by a keyed SHA-1 of user, password and stored hash; a changed password or a
//! removed user never hits a stale entry), so a browser session costs one bcrypt per
//! minute. The other schemes are cheap and run inline. Every comparison of digests is
//! constant-time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use gangplank_store::policy::{BasicAuth, Credential};
use http::{HeaderMap, header};
use md5::{Digest as _, Md5};
use sha1::Sha1;

/// How long a successful bcrypt check is remembered.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Entries per worker thread; the cache is emptied when full.
const CACHE_MAX: usize = 4096;

thread_local! {
    static VERIFIED: RefCell<HashMap<[u8; 20], Instant>> = RefCell::new(HashMap::new());
}

/// True when the request carries credentials that `auth` accepts.
pub async fn check(auth: &BasicAuth, headers: &HeaderMap) -> bool {
    let Some((user, password)) = credentials(headers) else {
        return false;
    };
    let Some(credential) = auth.users.get(&user) else {
        return false;
    };
    match credential {
        Credential::Bcrypt(hash) => {
            let key = cache_key(&user, &password, hash);
            let now = Instant::now();
            let cached = VERIFIED.with(|c| {
                c.borrow()
                    .get(&key)
                    .is_some_and(|at| now.duration_since(*at) < CACHE_TTL)
            });
            if cached {
                return true;
            }
            let hash = hash.clone();
            let ok = tokio::task::spawn_blocking(move || {
                bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if ok {
                VERIFIED.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() >= CACHE_MAX {
                        c.clear();
                    }
                    c.insert(key, now);
                });
            }
            ok
        }
        other => verify_cheap(other, password.as_bytes()),
    }
}

/// The user and password of an `Authorization: Basic` header.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = encoded.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Verifies the schemes that are cheap enough for the worker thread.
pub fn verify_cheap(credential: &Credential, password: &[u8]) -> bool {
    match credential {
        Credential::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        Credential::Md5Crypt {
            magic,
            salt,
            digest,
        } => {
            let computed = md5_crypt(password, salt.as_bytes(), magic.as_bytes());
            constant_time_eq(computed.as_bytes(), digest.as_bytes())
        }
        Credential::Sha1(expected) => constant_time_eq(Sha1::digest(password).as_slice(), expected),
        Credential::SaltedSha1 { digest, salt } => {
            let mut h = Sha1::new();
            h.update(password);
            h.update(salt);
            constant_time_eq(h.finalize().as_slice(), digest)
        }
        Credential::Plain(expected) => constant_time_eq(password, expected.as_bytes()),
        Credential::Unsupported(_) => false,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A per-process key, so cache keys cannot be precomputed.
fn process_key() -> &'static [u8; 16] {
    static KEY: OnceLock<[u8; 16]> = OnceLock::new();
    KEY.get_or_init(|| fastrand::u128(..).to_le_bytes())
}

fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(process_key());
    for part in [user, password, hash] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// MD5-crypt (`$1$`) and its Apache variant (`$apr1$`): the encoded 22-character
/// digest for `password` and `salt` (at most 8 bytes).
pub fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let mut alternate = Md5::new();
    alternate.update(password);
    alternate.update(salt);
    alternate.update(password);
    let alternate = alternate.finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(magic);
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize();
    }

    const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let d = digest;
    let mut out = String::with_capacity(22);
    let mut encode = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    let triple = |a: u8, b: u8, c: u8| (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c);
    encode(triple(d[0], d[6], d[12]), 4);
    encode(triple(d[1], d[7], d[13]), 4);
    encode(triple(d[2], d[8], d[14]), 4);
    encode(triple(d[3], d[9], d[15]), 4);
    encode(triple(d[4], d[10], d[5]), 4);
    encode(u32::from(d[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// Vectors from Apache's password-format documentation (user myName, password
    /// myPassword) and from OpenSSL/libxcrypt (`openssl passwd`, `crypt(3)`).
    const VECTORS: &[(&str, &str)] = &[
        ("$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "myPassword"),
        ("$apr1$xxxxxxxx$AL/DOdqyMUurcg0cPNW/P1", ""),
        (
            "$apr1$ab$wi.AzzgxllLenL8DCSVLi.",
            "a very long password exceeding sixteen bytes",
        ),
        ("$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/", "password"),
        ("{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=", "myPassword"),
        ("{SSHA}4dsbxltmupk5IwHNmm4I+q7mM8IBAgME", "myPassword"),
        ("{PLAIN}myPassword", "myPassword"),
        (
            "$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC",
            "myPassword",
        ),
        (
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "U*U",
        ),
    ];

    #[test]
    fn htpasswd_vectors() {
        for (hash, password) in VECTORS {
            let credential = Credential::parse(hash);
            assert!(verify_cheap(&credential, password.as_bytes()), "{hash}");
            assert!(!verify_cheap(&credential, b"wrong"), "{hash}");
            let mut longer = password.as_bytes().to_vec();
            longer.push(b'x');
            assert!(!verify_cheap(&credential, &longer), "{hash}");
        }
        // Obsolete DES crypt never matches, even with the right password.
        assert!(!verify_cheap(
            &Credential::parse("aboDgbkTt9i3."),
            b"myPassword"
        ));
    }

    fn basic(pairs: &[(&str, &str)], header: Option<&'static str>) -> (BasicAuth, HeaderMap) {
        let auth = gangplank_model::policy::BasicDigestAuth {
            auth_type: Some(gangplank_model::policy::AuthType::Basic),
            realm: "r".into(),
            credentials: pairs
                .iter()
                .map(|(u, h)| (u.to_string(), h.to_string()))
                .collect(),
            ..Default::default()
        };
        let compiled = BasicAuth::compile(&auth, &mut Vec::new()).unwrap();
        let mut headers = HeaderMap::new();
        if let Some(h) = header {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(h));
        }
        (compiled, headers)
    }

    #[tokio::test]
    async fn authorization_headers() {
        // myName:myPassword
        let good = "Basic bXlOYW1lOm15UGFzc3dvcmQ=";
        let users = [
            (
                "myName",
                "$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC",
            ),
            ("other", "{PLAIN}x"),
        ];
        for (header, expected) in [
            (Some(good), true),
            (Some("basic   bXlOYW1lOm15UGFzc3dvcmQ"), true),
            (Some("Basic bXlOYW1lOndyb25n"), false),
            (Some("Bearer bXlOYW1lOm15UGFzc3dvcmQ="), false),
            (Some("Basic !!!"), false),
            (Some("Basic bm9jb2xvbg=="), false),
            (None, false),
        ] {
            let (auth, headers) = basic(&users, header);
            assert_eq!(check(&auth, &headers).await, expected, "{header:?}");
        }
        // Cached after the first success: still true, and only for the same password.
        let (auth, headers) = basic(&users, Some(good));
        assert!(check(&auth, &headers).await);
        let (auth, headers) = basic(&users, Some("Basic bXlOYW1lOm15UGFzc3dvcmQx"));
        assert!(!check(&auth, &headers).await);
        // Unknown user.
        let (auth, headers) = basic(&[("x", "{PLAIN}myPassword")], Some(good));
        assert!(!check(&auth, &headers).await);
    }
}
