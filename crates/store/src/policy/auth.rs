//! Basic authentication data: `auth-type: basic`, `auth-secret` (an htpasswd `auth`
//! key or an `auth-map` Secret, already split into user -> hash by the controller),
//! `auth-realm`.
//!
//! Each hash is classified once, at apply time, into the schemes nginx's `auth_basic`
//! accepts (its own `{PLAIN}`, `{SHA}`, `{SSHA}`, `$apr1$`, plus crypt(3), which on
//! ingress-nginx's images handles `$1$` and bcrypt):
//! - bcrypt `$2y$`, `$2b$`, `$2a$`, `$2x$` (verified on the request path without
//!   blocking the worker: see the proxy side);
//! - MD5-crypt `$apr1$` (Apache) and `$1$`;
//! - `{SHA}` (base64 SHA-1 of the password) and `{SSHA}` (salted);
//! - `{PLAIN}`.
//!
//! Everything else never matches, with a warning at apply time: traditional DES
//! crypt(3) (13 characters, obsolete: 8-character passwords, 12-bit salts) and
//! SHA-crypt `$5$`/`$6$` (not implemented yet). The request gets 401 as for a wrong
//! password; nothing fails open.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gangplank_model::policy::BasicDigestAuth;
use http::HeaderValue;

/// One user's stored password hash, ready for verification.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// bcrypt: the whole hash string.
    Bcrypt(Arc<str>),
    /// MD5-crypt: `$apr1$` or `$1$`, its salt (at most 8 characters) and the expected
    /// 22-character encoded digest.
    Md5Crypt {
        /// `$apr1$` or `$1$`.
        magic: &'static str,
        /// The salt.
        salt: String,
        /// The encoded digest after the salt.
        digest: String,
    },
    /// `{SHA}`: SHA-1 of the password.
    Sha1([u8; 20]),
    /// `{SSHA}`: SHA-1 of password + salt, and the salt.
    SaltedSha1 {
        /// SHA-1 of password + salt.
        digest: [u8; 20],
        /// The salt.
        salt: Vec<u8>,
    },
    /// `{PLAIN}`: the password itself.
    Plain(String),
    /// A scheme that never matches; the text says which.
    Unsupported(&'static str),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print hashes or passwords.
        f.write_str(match self {
            Credential::Bcrypt(_) => "Bcrypt",
            Credential::Md5Crypt { .. } => "Md5Crypt",
            Credential::Sha1(_) => "Sha1",
            Credential::SaltedSha1 { .. } => "SaltedSha1",
            Credential::Plain(_) => "Plain",
            Credential::Unsupported(why) => why,
        })
    }
}

impl Credential {
    /// Classifies an htpasswd hash.
    pub fn parse(hash: &str) -> Credential {
        if let Some(rest) = ["$2y$", "$2b$", "$2a$", "$2x$"]
            .iter()
            .find_map(|p| hash.strip_prefix(p))
        {
            // `NN$` cost, then 22 salt and 31 hash characters.
            let ok = rest.len() == 56
                && rest.as_bytes()[2] == b'$'
                && rest[..2].bytes().all(|b| b.is_ascii_digit());
            return if ok {
                Credential::Bcrypt(Arc::from(hash))
            } else {
                Credential::Unsupported("a malformed bcrypt hash")
            };
        }
        for magic in ["$apr1$", "$1$"] {
            if let Some(rest) = hash.strip_prefix(magic) {
                return match rest.split_once('$') {
                    Some((salt, digest))
                        if salt.len() <= 8 && !salt.is_empty() && digest.len() == 22 =>
                    {
                        Credential::Md5Crypt {
                            magic,
                            salt: salt.to_owned(),
                            digest: digest.to_owned(),
                        }
                    }
                    _ => Credential::Unsupported("a malformed MD5-crypt hash"),
                };
            }
        }
        if let Some(b64) = hash.strip_prefix("{SHA}") {
            return match STANDARD.decode(b64).ok().and_then(|d| d.try_into().ok()) {
                Some(digest) => Credential::Sha1(digest),
                None => Credential::Unsupported("a malformed {SHA} hash"),
            };
        }
        if let Some(b64) = hash.strip_prefix("{SSHA}") {
            return match STANDARD.decode(b64) {
                Ok(bytes) if bytes.len() > 20 => {
                    let mut digest = [0u8; 20];
                    digest.copy_from_slice(&bytes[..20]);
                    Credential::SaltedSha1 {
                        digest,
                        salt: bytes[20..].to_vec(),
                    }
                }
                _ => Credential::Unsupported("a malformed {SSHA} hash"),
            };
        }
        if let Some(plain) = hash.strip_prefix("{PLAIN}") {
            return Credential::Plain(plain.to_owned());
        }
        if hash.starts_with("$5$") || hash.starts_with("$6$") {
            return Credential::Unsupported("SHA-crypt ($5$/$6$), not supported yet");
        }
        if hash.len() == 13 && !hash.starts_with('$') {
            return Credential::Unsupported("traditional DES crypt(3), which is obsolete");
        }
        Credential::Unsupported("an unknown password hash scheme")
    }
}

/// `auth-type: basic`: the users and the challenge.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    /// User name -> credential.
    pub users: HashMap<String, Credential>,
    /// `WWW-Authenticate` of the 401 answer: `Basic realm="<auth-realm>"`.
    pub challenge: HeaderValue,
}

impl BasicAuth {
    /// Compiles the credentials; unusable ones are kept as never-matching entries and
    /// reported in `warnings` (user name and why, never the hash).
    pub fn compile(
        auth: &BasicDigestAuth,
        warnings: &mut Vec<String>,
    ) -> Result<BasicAuth, String> {
        let users = auth
            .credentials
            .iter()
            .map(|(user, hash)| {
                let credential = Credential::parse(hash);
                if let Credential::Unsupported(why) = &credential {
                    warnings.push(format!(
                        "the password of user {user:?} is {why}; that user cannot log in"
                    ));
                }
                (user.clone(), credential)
            })
            .collect();
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\"", auth.realm))
            .map_err(|_| format!("auth-realm {:?} is not a header value", auth.realm))?;
        Ok(BasicAuth { users, challenge })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_classified() {
        // Apache's documented vectors for user myName, password myPassword.
        assert!(matches!(
            Credential::parse("$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC"),
            Credential::Bcrypt(_)
        ));
        assert_eq!(
            Credential::parse("$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"),
            Credential::Md5Crypt {
                magic: "$apr1$",
                salt: "r31.....".into(),
                digest: "HqJZimcKQFAMYayBlzkrA/".into()
            }
        );
        assert!(matches!(
            Credential::parse("$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"),
            Credential::Md5Crypt { magic: "$1$", .. }
        ));
        match Credential::parse("{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=") {
            Credential::Sha1(d) => assert_eq!(d[0], 0x54),
            other => panic!("{other:?}"),
        }
        match Credential::parse("{SSHA}4dsbxltmupk5IwHNmm4I+q7mM8IBAgME") {
            Credential::SaltedSha1 { salt, .. } => assert_eq!(salt, vec![1, 2, 3, 4]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Credential::parse("{PLAIN}secret"),
            Credential::Plain("secret".into())
        );
        for unsupported in [
            "aboDgbkTt9i3.",
            "$6$saltsalt$REpTllT9/S/gg33eAxbXKSVehttBRbY4OJ0jTp669YREedbYCJp8tD90LctevwvdnnuZN0qTJQVuUqDzHImPf1",
            "$2y$05$short",
            "$apr1$toolongsalt$HqJZimcKQFAMYayBlzkrA/",
            "{SHA}not-base64!",
            "plaintext",
        ] {
            assert!(
                matches!(Credential::parse(unsupported), Credential::Unsupported(_)),
                "{unsupported}"
            );
        }
        assert_eq!(format!("{:?}", Credential::Plain("secret".into())), "Plain");
    }

    #[test]
    fn challenge_and_warnings() {
        let auth = BasicDigestAuth {
            auth_type: Some(gangplank_model::policy::AuthType::Basic),
            realm: "Staff only".into(),
            credentials: [
                ("alice".to_string(), "{PLAIN}x".to_string()),
                ("bob".to_string(), "aboDgbkTt9i3.".to_string()),
            ]
            .into(),
            ..BasicDigestAuth::default()
        };
        let mut warnings = Vec::new();
        let compiled = BasicAuth::compile(&auth, &mut warnings).unwrap();
        assert_eq!(compiled.challenge, "Basic realm=\"Staff only\"");
        assert_eq!(compiled.users.len(), 2);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("\"bob\"") && warnings[0].contains("DES"));
        assert!(!warnings[0].contains("aboDgbkTt9i3."));
    }
}
