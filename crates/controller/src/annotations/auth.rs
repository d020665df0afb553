//! Authentication, all fail-closed: a setting that cannot be honoured denies the
//! Ingress rather than leaving it open.
//!
//! - Basic and digest: `auth-type`, `auth-secret`, `auth-secret-type`, `auth-realm`.
//!   The credentials are copied out of the Secret (`auth` key for `auth-file`, one key
//!   per user for `auth-map`); the proxy checks the hashes.
//! - External: `auth-url` and its settings (`auth-method`, `auth-signin`,
//!   `auth-signin-redirect-param`, `auth-response-headers`, `auth-request-redirect`,
//!   `auth-cache-key`, `auth-cache-duration`, `auth-always-set-cookie`,
//!   `auth-proxy-set-headers`, `auth-keepalive*`), ignored with a Warning without
//!   `auth-url`.
//! - Client certificates: `auth-tls-secret` (CA in `ca.crt`, CRL in `ca.crl`) and its
//!   settings (`auth-tls-verify-client`, `-verify-depth`, `-error-page`,
//!   `-pass-certificate-to-upstream`, `-match-cn`), ignored with a Warning without
//!   `auth-tls-secret`.

use std::collections::BTreeMap;

use gangplank_model::policy::{
    AuthSecretType, AuthTls, AuthType, BasicDigestAuth, CacheDuration, ExternalAuth, HttpMethod,
    NginxDuration, SecretRef, VerifyClient,
};
use gangplank_model::validate::check_header_name;

use super::proxy::word;
use super::{Context, Reader, config_map_data, find_config_map, model_check};
use crate::tls::secret_text;

/// Checks one external-auth setting by validating an `ExternalAuth` with only it set.
fn check_external(set: impl FnOnce(&mut ExternalAuth)) -> Result<(), String> {
    let mut auth = ExternalAuth::default();
    set(&mut auth);
    model_check(&auth)
}

/// `auth-type` and the credentials of `auth-secret`.
pub(super) fn basic_digest(reader: &mut Reader<'_>, context: &Context<'_>) -> BasicDigestAuth {
    let type_given = reader.has("auth-type");
    let secret_given = reader.has("auth-secret");
    let auth_type = reader.choice(
        "auth-type",
        &[("basic", AuthType::Basic), ("digest", AuthType::Digest)],
    );
    let realm = reader
        .text("auth-realm", |realm| {
            model_check(&BasicDigestAuth {
                realm: realm.to_owned(),
                ..BasicDigestAuth::default()
            })
        })
        .unwrap_or_default();
    let secret_type = reader
        .choice(
            "auth-secret-type",
            &[
                ("auth-file", AuthSecretType::AuthFile),
                ("auth-map", AuthSecretType::AuthMap),
            ],
        )
        .unwrap_or_default();
    let secret = reader.reference("auth-secret", "Secret");
    let Some(auth_type) = auth_type else {
        if type_given {
            // Rejected above: the Ingress is denied already.
            return BasicDigestAuth::default();
        }
        if secret.is_some() {
            // Fail closed: credentials were given, so protection was meant.
            reader.reject(
                "auth-secret",
                "auth-type is not set; it must be \"basic\" or \"digest\"",
            );
        }
        reader.ignore_all(&["auth-realm", "auth-secret-type"], "auth-type is not set");
        return BasicDigestAuth::default();
    };
    let Some((namespace, name)) = secret else {
        if !secret_given {
            reader.reject(
                "auth-type",
                "auth-secret is not set; authentication needs the Secret with the credentials",
            );
        }
        return BasicDigestAuth::default();
    };
    let credentials = context
        .index
        .secret(&namespace, &name)
        .ok_or_else(|| format!("Secret {namespace}/{name} does not exist"))
        .and_then(|secret| credentials(secret, secret_type, auth_type))
        .map_err(|e| format!("Secret {namespace}/{name}: {e}"));
    let auth = credentials.and_then(|credentials| {
        let auth = BasicDigestAuth {
            auth_type: Some(auth_type),
            realm,
            secret: Some(SecretRef {
                namespace: namespace.clone(),
                name: name.clone(),
            }),
            secret_type,
            credentials,
        };
        model_check(&auth)
            .map(|()| auth)
            .map_err(|e| format!("Secret {namespace}/{name}: {e}"))
    });
    match auth {
        Ok(auth) => auth,
        Err(why) => {
            reader.reject("auth-secret", why);
            BasicDigestAuth::default()
        }
    }
}

/// The users and hashes of an auth Secret: `auth-file` is an htpasswd (basic,
/// `user:hash`) or htdigest (digest, `user:realm:HA1`) file in key `auth`;
/// `auth-map` has one key per user. The first entry of a user wins, as in nginx.
fn credentials(
    secret: &k8s_openapi::api::core::v1::Secret,
    secret_type: AuthSecretType,
    auth_type: AuthType,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let hash_of = |rest: &str| -> String {
        match auth_type {
            // htdigest: `realm:HA1`; the HA1 is what is checked.
            AuthType::Digest => rest.rsplit(':').next().unwrap_or(rest).to_owned(),
            AuthType::Basic => rest.to_owned(),
        }
    };
    match secret_type {
        AuthSecretType::AuthFile => {
            let file = secret_text(secret, "auth")?;
            for (number, line) in file.lines().enumerate() {
                let line = line.trim_end_matches('\r').trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (user, rest) = line.split_once(':').ok_or_else(|| {
                    format!("line {} of \"auth\" is not \"user:hash\"", number + 1)
                })?;
                out.entry(user.to_owned()).or_insert_with(|| hash_of(rest));
            }
        }
        AuthSecretType::AuthMap => {
            let mut users: Vec<String> = secret
                .data
                .iter()
                .flat_map(|d| d.keys())
                .chain(secret.string_data.iter().flat_map(|d| d.keys()))
                .cloned()
                .collect();
            users.sort();
            users.dedup();
            for user in users {
                let hash = secret_text(secret, &user)?;
                out.insert(user, hash_of(hash.trim_end_matches(['\r', '\n'])));
            }
        }
    }
    if out.is_empty() {
        return Err("it holds no credentials".to_owned());
    }
    Ok(out)
}

/// The external-auth annotations other than `auth-url`.
const EXTERNAL_SETTINGS: &[&str] = &[
    "auth-method",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-response-headers",
    "auth-request-redirect",
    "auth-cache-key",
    "auth-cache-duration",
    "auth-always-set-cookie",
    "auth-proxy-set-headers",
    "auth-keepalive",
    "auth-keepalive-requests",
    "auth-keepalive-timeout",
    "auth-keepalive-share-vars",
];

/// `auth-url` and its settings.
pub(super) fn external(reader: &mut Reader<'_>, context: &Context<'_>) -> ExternalAuth {
    let url_given = reader.has("auth-url");
    let Some(url) = reader.text("auth-url", |url| {
        check_external(|a| a.url = Some(url.to_owned()))
    }) else {
        if !url_given {
            reader.ignore_all(EXTERNAL_SETTINGS, "auth-url is not set");
        }
        return ExternalAuth::default();
    };
    let defaults = ExternalAuth::default();
    let proxy_set_headers = match reader.reference("auth-proxy-set-headers", "ConfigMap") {
        None => BTreeMap::new(),
        Some((namespace, name)) => {
            let headers = find_config_map(context.config_maps, &namespace, &name)
                .ok_or_else(|| format!("ConfigMap {namespace}/{name} does not exist"))
                .and_then(config_map_data)
                .and_then(|headers| {
                    check_external(|a| a.proxy_set_headers = headers.clone()).map(|()| headers)
                });
            match headers {
                Ok(headers) => headers,
                Err(why) => {
                    reader.reject("auth-proxy-set-headers", why);
                    BTreeMap::new()
                }
            }
        }
    };
    ExternalAuth {
        url: Some(url),
        method: reader.with("auth-method", |m| {
            word::<HttpMethod>(
                m,
                "method (GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS or TRACE)",
            )
        }),
        signin: reader.text("auth-signin", |url| {
            check_external(|a| a.signin = Some(url.to_owned()))
        }),
        signin_redirect_param: reader.text("auth-signin-redirect-param", |param| {
            check_external(|a| a.signin_redirect_param = Some(param.to_owned()))
        }),
        response_headers: reader
            .list("auth-response-headers", ',', check_header_name)
            .unwrap_or_default(),
        request_redirect: reader.text("auth-request-redirect", |url| {
            check_external(|a| a.request_redirect = Some(url.to_owned()))
        }),
        cache_key: reader.text("auth-cache-key", |key| {
            check_external(|a| a.cache_key = Some(key.to_owned()))
        }),
        cache_duration: reader
            .with("auth-cache-duration", cache_durations)
            .unwrap_or_default(),
        always_set_cookie: reader.boolean("auth-always-set-cookie").unwrap_or(false),
        proxy_set_headers,
        keepalive_connections: reader
            .count("auth-keepalive")
            .unwrap_or(defaults.keepalive_connections),
        keepalive_requests: reader
            .integer("auth-keepalive-requests", 1, i64::from(u32::MAX))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(defaults.keepalive_requests),
        keepalive_timeout: reader
            .with("auth-keepalive-timeout", |value| {
                let timeout: NginxDuration = value.parse()?;
                check_external(|a| a.keepalive_timeout = timeout).map(|()| timeout)
            })
            .unwrap_or(defaults.keepalive_timeout),
        keepalive_share_vars: reader.boolean("auth-keepalive-share-vars").unwrap_or(false),
    }
}

/// `auth-cache-duration`: comma-separated entries of status codes and a time
/// (`200 202 10m, 401 5m`); an entry without codes means nginx's 200, 301 and 302.
pub(crate) fn cache_durations(value: &str) -> Result<Vec<CacheDuration>, String> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut words: Vec<&str> = entry.split_whitespace().collect();
        let Some(time) = words.pop() else {
            continue;
        };
        let duration: NginxDuration = time.parse()?;
        let codes = if words.is_empty() {
            vec![200, 301, 302]
        } else {
            words
                .iter()
                .map(|w| match w.parse::<u16>() {
                    Ok(code) if (100..=599).contains(&code) => Ok(code),
                    _ => Err(format!(
                        "{w:?} in {entry:?} is not a status code (\"any\" is not supported)"
                    )),
                })
                .collect::<Result<_, _>>()?
        };
        out.push(CacheDuration { codes, duration });
    }
    if out.is_empty() {
        return Err(format!("{value:?} gives no duration"));
    }
    model_check(&out)?;
    Ok(out)
}

/// The `auth-tls-*` annotations other than `auth-tls-secret`.
const TLS_SETTINGS: &[&str] = &[
    "auth-tls-verify-client",
    "auth-tls-verify-depth",
    "auth-tls-error-page",
    "auth-tls-pass-certificate-to-upstream",
    "auth-tls-match-cn",
];

/// `auth-tls-*`: client certificates checked against the CA of `auth-tls-secret`.
pub(super) fn certificate(reader: &mut Reader<'_>, context: &Context<'_>) -> AuthTls {
    let secret_given = reader.has("auth-tls-secret");
    let Some((namespace, name)) = reader.reference("auth-tls-secret", "Secret") else {
        if !secret_given {
            reader.ignore_all(TLS_SETTINGS, "auth-tls-secret is not set");
        }
        return AuthTls::default();
    };
    let defaults = AuthTls::default();
    let check_tls = |set: &dyn Fn(&mut AuthTls)| {
        let mut tls = AuthTls::default();
        set(&mut tls);
        model_check(&tls)
    };
    let mut tls = AuthTls {
        verify_client: reader
            .choice(
                "auth-tls-verify-client",
                &[
                    ("on", VerifyClient::On),
                    ("off", VerifyClient::Off),
                    ("optional", VerifyClient::Optional),
                    ("optional_no_ca", VerifyClient::OptionalNoCa),
                ],
            )
            .unwrap_or(defaults.verify_client),
        verify_depth: reader
            .integer("auth-tls-verify-depth", 0, 100)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(defaults.verify_depth),
        error_page: reader.text("auth-tls-error-page", |url| {
            check_tls(&|t| t.error_page = Some(url.to_owned()))
        }),
        pass_certificate_to_upstream: reader
            .boolean("auth-tls-pass-certificate-to-upstream")
            .unwrap_or(false),
        match_cn: reader.text("auth-tls-match-cn", |cn| {
            check_tls(&|t| t.match_cn = Some(cn.to_owned()))
        }),
        ..defaults
    };
    let loaded = context
        .index
        .secret(&namespace, &name)
        .ok_or_else(|| format!("Secret {namespace}/{name} does not exist"))
        .and_then(|secret| {
            let ca = secret_text(secret, "ca.crt").ok();
            let crl = secret_text(secret, "ca.crl").ok();
            let candidate = AuthTls {
                secret: Some(SecretRef {
                    namespace: namespace.clone(),
                    name: name.clone(),
                }),
                ca_pem: ca,
                crl_pem: crl,
                ..tls.clone()
            };
            model_check(&candidate)
                .map(|()| candidate)
                .map_err(|e| format!("Secret {namespace}/{name}: {e}"))
        });
    match loaded {
        Ok(loaded) => tls = loaded,
        Err(why) => {
            // Fail closed: client certificates were required.
            reader.reject("auth-tls-secret", why);
            tls = AuthTls::default();
        }
    }
    tls
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CERT, config_map, parse_in, parse_map, secret};
    use super::*;
    use crate::events::reason;
    use crate::state::ClusterState;

    fn state() -> ClusterState {
        let mut state = ClusterState::default();
        state.secrets.push(secret(
            "ns",
            "htpasswd",
            &[(
                "auth",
                "# users\nalice:$apr1$salt$hash\r\nbob:{SHA}abc=\nalice:$apr1$second\n",
            )],
        ));
        state.secrets.push(secret(
            "ns",
            "users",
            &[("carol", "$2y$05$hash\n"), ("dave", "{SHA}x=")],
        ));
        state.secrets.push(secret(
            "ns",
            "digest",
            &[("auth", "erin:Private:0123456789abcdef0123456789abcdef\n")],
        ));
        state
            .secrets
            .push(secret("ns", "empty", &[("auth", "# nobody\n")]));
        state.secrets.push(secret("ns", "ca", &[("ca.crt", CERT)]));
        state
            .secrets
            .push(secret("ns", "no-ca", &[("tls.crt", CERT)]));
        state.config_maps.push(config_map(
            "ns",
            "auth-headers",
            &[("X-Forwarded-Uri", "$request_uri"), ("X-Team", "edge")],
        ));
        state
    }

    #[test]
    fn basic_and_digest_credentials_come_from_the_secret() {
        let state = state();
        let (a, events) = parse_in(
            &state,
            &[
                ("auth-type", "basic"),
                ("auth-secret", "ns/htpasswd"),
                ("auth-realm", "Authentication Required - foo"),
            ],
        );
        assert!(events.is_empty(), "{events:?}");
        let auth = &a.location.basic_digest_auth;
        assert_eq!(auth.auth_type, Some(AuthType::Basic));
        assert_eq!(auth.credentials["alice"], "$apr1$salt$hash");
        assert_eq!(auth.credentials["bob"], "{SHA}abc=");
        assert_eq!(auth.realm, "Authentication Required - foo");

        let (a, events) = parse_in(
            &state,
            &[
                ("auth-type", "basic"),
                ("auth-secret", "users"),
                ("auth-secret-type", "auth-map"),
            ],
        );
        assert!(events.is_empty(), "{events:?}");
        let users: Vec<_> = a.location.basic_digest_auth.credentials.keys().collect();
        assert_eq!(users, ["carol", "dave"]);
        assert_eq!(
            a.location.basic_digest_auth.credentials["carol"],
            "$2y$05$hash"
        );

        let (a, events) = parse_in(
            &state,
            &[("auth-type", "digest"), ("auth-secret", "digest")],
        );
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(
            a.location.basic_digest_auth.credentials["erin"],
            "0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn authentication_fails_closed() {
        let state = state();
        for pairs in [
            &[("auth-type", "basic")][..],
            &[("auth-secret", "htpasswd")],
            &[("auth-type", "basic"), ("auth-secret", "missing")],
            &[("auth-type", "basic"), ("auth-secret", "empty")],
            &[("auth-type", "digest"), ("auth-secret", "htpasswd")],
            &[("auth-type", "ntlm"), ("auth-secret", "htpasswd")],
            &[
                ("auth-type", "basic"),
                ("auth-secret", "htpasswd"),
                ("auth-realm", "a\"b"),
            ],
            &[("auth-tls-secret", "missing")],
            &[("auth-tls-secret", "no-ca")],
            &[
                ("auth-url", "http://auth.example.com/"),
                ("auth-proxy-set-headers", "missing"),
            ],
        ] {
            let (a, events) = parse_in(&state, pairs);
            assert!(a.location.denied.is_some(), "{pairs:?}");
            assert!(!a.location.certificate_auth.is_enabled(), "{pairs:?}");
            assert!(
                events
                    .iter()
                    .any(|e| e.reason == reason::INVALID_ANNOTATION),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn external_auth() {
        let state = state();
        let (a, events) = parse_in(
            &state,
            &[
                (
                    "auth-url",
                    "https://auth.example.com/oauth2/auth?host=$host",
                ),
                ("auth-method", "POST"),
                (
                    "auth-signin",
                    "https://auth.example.com/oauth2/start?rd=$request_uri",
                ),
                ("auth-signin-redirect-param", "return_to"),
                ("auth-response-headers", "X-User, X-Email"),
                ("auth-request-redirect", "/after"),
                ("auth-cache-key", "$remote_addr$http_authorization"),
                ("auth-cache-duration", "200 202 10m, 5m"),
                ("auth-always-set-cookie", "true"),
                ("auth-proxy-set-headers", "auth-headers"),
                ("auth-keepalive", "10"),
                ("auth-keepalive-requests", "100"),
                ("auth-keepalive-timeout", "30"),
                ("auth-keepalive-share-vars", "true"),
            ],
        );
        assert!(events.is_empty(), "{events:?}");
        let e = &a.location.external_auth;
        assert_eq!(e.method, Some(HttpMethod::Post));
        assert_eq!(e.response_headers, ["X-User", "X-Email"]);
        assert_eq!(e.cache_duration.len(), 2);
        assert_eq!(e.cache_duration[1].codes, [200, 301, 302]);
        assert_eq!(e.proxy_set_headers["X-Team"], "edge");
        assert_eq!(e.keepalive_timeout.as_millis(), 30_000);
        assert!(e.always_set_cookie && e.keepalive_share_vars);
    }

    #[test]
    fn settings_of_a_group_that_is_off_are_ignored() {
        let (a, events) = parse_map(&[
            ("auth-signin", "https://auth.example.com/start"),
            ("auth-tls-verify-client", "optional"),
            ("auth-realm", "x"),
        ]);
        assert_eq!(a.location.denied, None);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(
            events
                .iter()
                .all(|e| e.reason == reason::ANNOTATION_IGNORED)
        );
    }

    #[test]
    fn hostile_external_auth_values_deny() {
        for (name, value) in [
            ("auth-url", "http://a/;}location /x{return 200;}#"),
            ("auth-url", "http://$http_x_target/verify"),
            ("auth-url", "auth.example.com/verify"),
            ("auth-method", "GET;DELETE"),
            ("auth-method", "XGETX"),
            ("auth-signin", "javascript:alert(1)"),
            ("auth-signin-redirect-param", "r&d"),
            ("auth-response-headers", "X-User\u{ff1b}"),
            ("auth-request-redirect", "../../etc/nginx/nginx.conf"),
            ("auth-cache-key", "$nope"),
            ("auth-cache-duration", "any 5m"),
            ("auth-cache-duration", "200 forever"),
            ("auth-keepalive-requests", "0"),
            ("auth-keepalive-timeout", "0"),
        ] {
            let pairs = [("auth-url", "http://auth.example.com/"), (name, value)];
            let pairs = if name == "auth-url" {
                &pairs[1..]
            } else {
                &pairs[..]
            };
            let (a, _) = parse_map(pairs);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
        }
    }

    #[test]
    fn client_certificates() {
        let state = state();
        let (a, events) = parse_in(
            &state,
            &[
                ("auth-tls-secret", "ns/ca"),
                ("auth-tls-verify-client", "optional"),
                ("auth-tls-verify-depth", "2"),
                ("auth-tls-error-page", "https://example.com/cert-error"),
                ("auth-tls-pass-certificate-to-upstream", "true"),
                ("auth-tls-match-cn", "CN=(alice|bob)"),
            ],
        );
        assert!(events.is_empty(), "{events:?}");
        let tls = &a.location.certificate_auth;
        assert!(tls.is_enabled());
        assert_eq!(tls.verify_client, VerifyClient::Optional);
        assert_eq!(tls.verify_depth, 2);
        assert!(tls.ca_pem.is_some() && tls.pass_certificate_to_upstream);
        assert_eq!(a.server.certificate_auth, *tls);

        for (name, value) in [
            ("auth-tls-match-cn", "alice"),
            (
                "auth-tls-match-cn",
                "CN=a$ ) { } location /p { alias /var/run/secrets/; } if ( $x !~ a",
            ),
            ("auth-tls-error-page", "https://$host/err"),
            ("auth-tls-verify-client", "required"),
            ("auth-tls-verify-depth", "101"),
        ] {
            let (a, _) = parse_in(&state, &[("auth-tls-secret", "ca"), (name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
        }
    }
}
