//! Host-wide settings an Ingress gives the servers of its rules: `server-alias`,
//! `from-to-www-redirect`, `ssl-ciphers`, `ssl-prefer-server-ciphers`,
//! `ssl-passthrough`, and the
//! client-certificate settings (`auth-tls-*`, parsed in [`super::auth`]).
//!
//! As in ingress-nginx, the first Ingress (in translation order) that sets one of them
//! for a host wins; `from-to-www-redirect` is on when any path of the host asks for
//! it; `ssl-passthrough` is decided by the Ingress that creates the host (the first
//! with a rule for it), as ingress-nginx sets it when it creates the server.

use gangplank_model::Location;
use gangplank_model::policy::{AuthTls, check_cipher_list};
use gangplank_model::validate::check_hostname;

use super::Reader;

/// What one Ingress says about the hosts of its rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServerAnnotations {
    /// `server-alias`: extra host names, lowercase.
    pub(crate) aliases: Vec<String>,
    /// `from-to-www-redirect`.
    pub(crate) redirect_from_to_www: bool,
    /// `ssl-ciphers`.
    pub(crate) ssl_ciphers: Option<String>,
    /// `ssl-prefer-server-ciphers`.
    pub(crate) ssl_prefer_server_ciphers: Option<bool>,
    /// `auth-tls-*` (the location's, when a CA was loaded).
    pub(crate) certificate_auth: AuthTls,
    /// `ssl-passthrough`: the host's TLS goes unterminated to the backend of its `/`
    /// path (when the proxy runs with `--enable-ssl-passthrough`).
    pub(crate) ssl_passthrough: bool,
}

/// A `server-alias` entry: a host name (one-label wildcards allowed), never `_`.
pub(super) fn check_alias(alias: &str) -> Result<(), String> {
    if alias == "_" {
        return Err("the default server name \"_\" cannot be an alias".to_owned());
    }
    check_hostname(alias)
}

/// The host-wide annotations; `location` has the parsed `auth-tls-*`.
pub(super) fn parse(reader: &mut Reader<'_>, location: &Location) -> ServerAnnotations {
    let mut aliases: Vec<String> = reader
        .list("server-alias", ',', |alias| {
            check_alias(&alias.to_ascii_lowercase())
        })
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    let mut seen = std::collections::HashSet::new();
    aliases.retain(|a| seen.insert(a.clone()));
    ServerAnnotations {
        aliases,
        redirect_from_to_www: reader.boolean("from-to-www-redirect").unwrap_or(false),
        ssl_ciphers: reader.text("ssl-ciphers", check_cipher_list),
        ssl_prefer_server_ciphers: reader.boolean("ssl-prefer-server-ciphers"),
        ssl_passthrough: reader.boolean("ssl-passthrough").unwrap_or(false),
        certificate_auth: if location.certificate_auth.secret.is_some() {
            location.certificate_auth.clone()
        } else {
            AuthTls::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_map;

    #[test]
    fn host_settings() {
        let (a, events) = parse_map(&[
            (
                "server-alias",
                "WWW.Example.com, *.example.net,www.example.com",
            ),
            ("from-to-www-redirect", "true"),
            ("ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256:!aNULL"),
            ("ssl-prefer-server-ciphers", "true"),
            ("ssl-passthrough", "true"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        let s = &a.server;
        assert!(s.ssl_passthrough);
        assert_eq!(s.aliases, ["www.example.com", "*.example.net"]);
        assert!(s.redirect_from_to_www);
        assert_eq!(s.ssl_prefer_server_ciphers, Some(true));
        for (name, value) in [
            ("server-alias", "_"),
            ("server-alias", "a b.example.com"),
            ("server-alias", "ok.example.com,bad;host"),
            ("ssl-ciphers", "AES128;rm -rf"),
            ("from-to-www-redirect", "sure"),
            ("ssl-passthrough", "yes please"),
        ] {
            let (a, _) = parse_map(&[(name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
            assert!(a.server.aliases.is_empty());
        }
    }
}
