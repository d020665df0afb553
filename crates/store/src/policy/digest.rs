//! Digest authentication data (`auth-type: digest`): the htdigest `HA1` of each user
//! (`MD5(user:realm:password)`, the controller keeps the third field of
//! `user:realm:HA1` lines) and the realm of the challenge. The proxy side
//! (`gangplank_proxy::policy::digest`) implements RFC 7616 with MD5 and `qop=auth`,
//! as nginx's `auth_digest` module does for ingress-nginx.

use std::collections::HashMap;

use gangplank_model::policy::BasicDigestAuth;

/// `auth-type: digest`: users and realm.
#[derive(Clone)]
pub struct DigestAuth {
    /// `auth-realm`, quoted into the challenge.
    pub realm: String,
    /// User name -> HA1 (16 bytes).
    pub users: HashMap<String, [u8; 16]>,
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print hashes.
        f.debug_struct("DigestAuth")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish()
    }
}

impl DigestAuth {
    /// Decodes the hex `HA1` values; a malformed one is an error (the model's
    /// validation already refuses them, so this is belt and braces).
    pub fn compile(auth: &BasicDigestAuth) -> Result<DigestAuth, String> {
        let mut users = HashMap::with_capacity(auth.credentials.len());
        for (user, ha1) in &auth.credentials {
            let bytes = decode_hex(ha1)
                .ok_or_else(|| format!("the digest hash of user {user:?} is not 32 hex digits"))?;
            users.insert(user.clone(), bytes);
        }
        if auth.realm.contains(['"', '\\']) {
            return Err(format!("auth-realm {:?} cannot be quoted", auth.realm));
        }
        Ok(DigestAuth {
            realm: auth.realm.clone(),
            users,
        })
    }
}

/// 32 hex digits as 16 bytes.
fn decode_hex(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let value = digit(pair[0])? * 16 + digit(pair[1])?;
        out[i] = u8::try_from(value).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_values_decode() {
        let auth = BasicDigestAuth {
            auth_type: Some(gangplank_model::policy::AuthType::Digest),
            realm: "staff".into(),
            credentials: [(
                "alice".to_string(),
                "0123456789abcdef0123456789ABCDEF".to_string(),
            )]
            .into(),
            ..BasicDigestAuth::default()
        };
        let d = DigestAuth::compile(&auth).unwrap();
        assert_eq!(d.users["alice"][0], 0x01);
        assert_eq!(d.users["alice"][15], 0xef);
        assert!(!format!("{d:?}").contains("0123"));
        let bad = BasicDigestAuth {
            credentials: [("bob".to_string(), "xyz".to_string())].into(),
            ..auth
        };
        assert!(DigestAuth::compile(&bad).is_err());
    }
}
