//! Talking to the upstream: `backend-protocol`, the `proxy-*` settings, and TLS to the
//! upstream (`proxy-ssl-*`, material from a Secret).

use gangplank_model::policy::{
    BackendProtocol, CookieRewrite, NextUpstream, ProxyConfig, ProxyHttpVersion, ProxySsl,
    SecretRef, TlsProtocol, check_cipher_list,
};
use gangplank_model::validate::check_hostname;
use serde::de::DeserializeOwned;

use super::{Context, Reader, model_check};
use crate::tls::secret_text;

/// `backend-protocol` (any case).
pub(super) fn backend_protocol(reader: &mut Reader<'_>) -> BackendProtocol {
    reader.parsed("backend-protocol").unwrap_or_default()
}

/// One word of a closed set, read as its serde name (`http_502`, `TLSv1.3`, `1.1`).
pub(super) fn word<T: DeserializeOwned>(word: &str, what: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(word.to_owned()))
        .map_err(|_| format!("{word:?} is not a valid {what}"))
}

/// A space-separated list of words of a closed set.
fn words<T: DeserializeOwned>(value: &str, what: &str) -> Result<Vec<T>, String> {
    value.split_whitespace().map(|w| word(w, what)).collect()
}

/// `proxy-cookie-domain` / `proxy-cookie-path`: `off`, or `<from> <to>`.
fn cookie_rewrite(
    reader: &mut Reader<'_>,
    name: &str,
    set: fn(&mut ProxyConfig, CookieRewrite),
) -> Option<CookieRewrite> {
    reader
        .with(name, |value| {
            if value == "off" {
                return Ok(None);
            }
            let parts: Vec<&str> = value.split_whitespace().collect();
            let [from, to] = parts.as_slice() else {
                return Err(format!(
                    "{value:?} is neither \"off\" nor two values \"<from> <to>\""
                ));
            };
            let rewrite = CookieRewrite {
                from: (*from).to_owned(),
                to: (*to).to_owned(),
            };
            let mut proxy = ProxyConfig::default();
            set(&mut proxy, rewrite.clone());
            model_check(&proxy)?;
            Ok(Some(rewrite))
        })
        .flatten()
}

/// `proxy-redirect-from` / `proxy-redirect-to`: `off`, `default`, or a URL or path.
/// Only the pair is meaningful. As ingress-nginx: `default` is nginx's `proxy_redirect
/// default`, which replaces the `proxy_pass` URL (`http://upstream_balancer/`, never
/// sent by an upstream), so it rewrites nothing, like `off`; half a pair emits no
/// `proxy_redirect` at all, so it is ignored with a warning.
fn proxy_redirect(reader: &mut Reader<'_>) -> (Option<String>, Option<String>) {
    let mut read = |name: &str| {
        reader
            .with(name, |value| {
                if value == "off" || value == "default" {
                    return Ok(None);
                }
                model_check(&ProxyConfig {
                    redirect_from: Some(value.to_owned()),
                    redirect_to: Some("/".to_owned()),
                    ..ProxyConfig::default()
                })?;
                Ok(Some(value.to_owned()))
            })
            .flatten()
    };
    let from = read("proxy-redirect-from");
    let to = read("proxy-redirect-to");
    match (from, to) {
        (Some(from), Some(to)) => (Some(from), Some(to)),
        (None, None) => (None, None),
        (Some(_), None) => {
            reader.ignore(
                "proxy-redirect-from",
                "proxy-redirect-to is not set (or off); both are needed",
            );
            (None, None)
        }
        (None, Some(_)) => {
            reader.ignore(
                "proxy-redirect-to",
                "proxy-redirect-from is not set (or off, or default); both are needed",
            );
            (None, None)
        }
    }
}

/// A timeout: seconds (`"60"`) or an nginx time (`"1m"`), longer than zero.
fn timeout(reader: &mut Reader<'_>, name: &str) -> Option<gangplank_model::policy::NginxDuration> {
    reader.with(name, |value| {
        let duration: gangplank_model::policy::NginxDuration = value.parse()?;
        if duration.is_zero() {
            return Err(format!("{value:?} must be longer than 0s"));
        }
        Ok(duration)
    })
}

/// Every `proxy-*` override.
pub(super) fn proxy(reader: &mut Reader<'_>) -> ProxyConfig {
    let (redirect_from, redirect_to) = proxy_redirect(reader);
    ProxyConfig {
        body_size: reader.parsed("proxy-body-size"),
        connect_timeout: timeout(reader, "proxy-connect-timeout"),
        send_timeout: timeout(reader, "proxy-send-timeout"),
        read_timeout: timeout(reader, "proxy-read-timeout"),
        buffer_size: reader.parsed("proxy-buffer-size"),
        buffers_number: reader
            .integer("proxy-buffers-number", 1, 1024)
            .and_then(|n| u32::try_from(n).ok()),
        busy_buffers_size: reader.parsed("proxy-busy-buffers-size"),
        max_temp_file_size: reader.parsed("proxy-max-temp-file-size"),
        request_buffering: reader.on_off("proxy-request-buffering"),
        buffering: reader.on_off("proxy-buffering"),
        next_upstream: reader.with("proxy-next-upstream", |value| {
            let list: Vec<NextUpstream> = words(value, "proxy-next-upstream condition")?;
            model_check(&ProxyConfig {
                next_upstream: Some(list.clone()),
                ..ProxyConfig::default()
            })?;
            Ok(list)
        }),
        next_upstream_timeout: reader.parsed("proxy-next-upstream-timeout"),
        next_upstream_tries: reader.count("proxy-next-upstream-tries"),
        http_version: reader.with("proxy-http-version", |v| {
            word::<ProxyHttpVersion>(v, "HTTP version (1.0 or 1.1)")
        }),
        cookie_domain: cookie_rewrite(reader, "proxy-cookie-domain", |p, r| {
            p.cookie_domain = Some(r);
        }),
        cookie_path: cookie_rewrite(reader, "proxy-cookie-path", |p, r| {
            p.cookie_path = Some(r);
        }),
        redirect_from,
        redirect_to,
    }
}

/// Every `proxy-ssl-*` annotation, with the CA, certificate and key of
/// `proxy-ssl-secret` (`ca.crt`, `tls.crt`, `tls.key`).
pub(super) fn proxy_ssl(reader: &mut Reader<'_>, context: &Context<'_>) -> ProxySsl {
    let defaults = ProxySsl::default();
    let mut ssl = ProxySsl {
        ciphers: reader.text("proxy-ssl-ciphers", check_cipher_list),
        protocols: reader
            .with("proxy-ssl-protocols", |value| {
                let list: Vec<TlsProtocol> = words(value, "TLS protocol")?;
                model_check(&ProxySsl {
                    protocols: list.clone(),
                    ..ProxySsl::default()
                })?;
                Ok(list)
            })
            .unwrap_or(defaults.protocols),
        name: reader.text("proxy-ssl-name", |name| {
            check_hostname(name)?;
            model_check(&ProxySsl {
                name: Some(name.to_owned()),
                ..ProxySsl::default()
            })
        }),
        verify: reader.on_off("proxy-ssl-verify").unwrap_or(false),
        verify_depth: reader
            .integer("proxy-ssl-verify-depth", 0, 100)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(defaults.verify_depth),
        server_name: reader.on_off("proxy-ssl-server-name").unwrap_or(false),
        ..defaults
    };
    if let Some((namespace, name)) = reader.reference("proxy-ssl-secret", "Secret") {
        match load_proxy_ssl_secret(context, &namespace, &name, &mut ssl) {
            Ok(()) => {
                ssl.secret = Some(SecretRef { namespace, name });
            }
            Err(why) => reader.reject("proxy-ssl-secret", why),
        }
    }
    if ssl.verify && ssl.ca_pem.is_none() {
        reader.reject(
            "proxy-ssl-verify",
            "verification is on but no proxy-ssl-secret with a \"ca.crt\" gives the CA to verify with",
        );
        ssl.verify = false;
    }
    ssl
}

fn load_proxy_ssl_secret(
    context: &Context<'_>,
    namespace: &str,
    name: &str,
    ssl: &mut ProxySsl,
) -> Result<(), String> {
    let secret = context
        .index
        .secret(namespace, name)
        .ok_or_else(|| format!("Secret {namespace}/{name} does not exist"))?;
    let optional = |key: &str| secret_text(secret, key).ok();
    let ca = optional("ca.crt");
    let cert = optional("tls.crt");
    let key = optional("tls.key");
    if ca.is_none() && cert.is_none() {
        return Err(format!(
            "Secret {namespace}/{name} has neither \"ca.crt\" nor \"tls.crt\" and \"tls.key\""
        ));
    }
    let candidate = ProxySsl {
        ca_pem: ca,
        cert_pem: cert,
        key_pem: key,
        ..ssl.clone()
    };
    model_check(&candidate).map_err(|e| format!("Secret {namespace}/{name}: {e}"))?;
    *ssl = candidate;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse_in, parse_map};
    use super::*;
    use crate::state::ClusterState;
    use gangplank_model::policy::NginxSize;

    #[test]
    fn proxy_settings() {
        let (a, events) = parse_map(&[
            ("backend-protocol", "grpcs"),
            ("proxy-body-size", "8m"),
            ("proxy-connect-timeout", "10"),
            ("proxy-send-timeout", "2m"),
            ("proxy-read-timeout", "3600"),
            ("proxy-buffer-size", "16k"),
            ("proxy-buffers-number", "8"),
            ("proxy-busy-buffers-size", "32k"),
            ("proxy-max-temp-file-size", "0"),
            ("proxy-request-buffering", "off"),
            ("proxy-buffering", "on"),
            ("proxy-next-upstream", "error timeout http_503"),
            ("proxy-next-upstream-timeout", "30"),
            ("proxy-next-upstream-tries", "5"),
            ("proxy-http-version", "1.0"),
            ("proxy-cookie-domain", "internal.local example.com"),
            ("proxy-cookie-path", "/old /new"),
            ("proxy-redirect-from", "http://internal.local/"),
            ("proxy-redirect-to", "/"),
            ("client-body-buffer-size", "1m"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        let l = &a.location;
        assert_eq!(l.backend_protocol, BackendProtocol::Grpcs);
        assert_eq!(
            l.client_body_buffer_size,
            Some(NginxSize::from_bytes(1 << 20).unwrap())
        );
        let p = &l.proxy;
        assert_eq!(p.body_size.unwrap().bytes(), 8 << 20);
        assert_eq!(p.connect_timeout.unwrap().as_millis(), 10_000);
        assert_eq!(p.send_timeout.unwrap().as_millis(), 120_000);
        assert_eq!(p.buffers_number, Some(8));
        assert_eq!(p.request_buffering, Some(false));
        assert_eq!(p.buffering, Some(true));
        assert_eq!(
            p.next_upstream.as_deref(),
            Some(
                &[
                    NextUpstream::Error,
                    NextUpstream::Timeout,
                    NextUpstream::Http503
                ][..]
            )
        );
        assert_eq!(p.next_upstream_tries, Some(5));
        assert_eq!(p.http_version, Some(ProxyHttpVersion::Http10));
        assert_eq!(p.cookie_domain.as_ref().unwrap().to, "example.com");
        assert_eq!(p.redirect_to.as_deref(), Some("/"));
    }

    #[test]
    fn off_means_unset() {
        let (a, events) = parse_map(&[
            ("proxy-cookie-domain", "off"),
            ("proxy-redirect-from", "off"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(a.location.proxy, ProxyConfig::default());
    }

    #[test]
    fn proxy_redirect_default_and_half_pairs_rewrite_nothing() {
        let (a, events) = parse_map(&[
            ("proxy-redirect-from", "default"),
            ("proxy-redirect-to", "/"),
        ]);
        assert!(a.location.denied.is_none());
        assert_eq!(a.location.proxy, ProxyConfig::default());
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(
            events[0].message.contains("proxy-redirect-to"),
            "{events:?}"
        );
        for pairs in [
            &[("proxy-redirect-from", "http://internal/")][..],
            &[("proxy-redirect-to", "/")],
            &[("proxy-redirect-from", "/x"), ("proxy-redirect-to", "off")],
        ] {
            let (a, events) = parse_map(pairs);
            assert!(a.location.denied.is_none(), "{pairs:?}");
            assert_eq!(a.location.proxy, ProxyConfig::default(), "{pairs:?}");
            assert_eq!(events.len(), 1, "{pairs:?}: {events:?}");
        }
        let (_, events) = parse_map(&[
            ("proxy-redirect-from", "default"),
            ("proxy-redirect-to", "default"),
        ]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn invalid_proxy_values_deny() {
        for (name, value) in [
            ("backend-protocol", "SPDY"),
            ("proxy-body-size", "1t"),
            ("proxy-connect-timeout", "0"),
            ("proxy-read-timeout", "-5"),
            ("proxy-buffers-number", "0"),
            ("proxy-next-upstream", "error http_418"),
            ("proxy-next-upstream", "off error"),
            ("proxy-http-version", "2"),
            ("proxy-cookie-domain", "a"),
            ("proxy-cookie-path", "/a b;"),
            ("proxy-redirect-from", "http://a b/"),
            ("proxy-redirect-to", "/x\ny"),
            ("proxy-buffering", "maybe"),
            ("client-body-buffer-size", "1.5m"),
            ("proxy-ssl-ciphers", "A B"),
            ("proxy-ssl-protocols", "SSLv3"),
            ("proxy-ssl-name", "a/b"),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-verify-depth", "1000"),
            ("proxy-ssl-secret", "missing"),
        ] {
            let (a, _) = parse_map(&[(name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
        }
    }

    #[test]
    fn proxy_ssl_from_a_secret() {
        let mut state = ClusterState::default();
        state.secrets.push(super::super::tests::secret(
            "ns",
            "upstream-tls",
            &[
                ("ca.crt", super::super::tests::CERT),
                ("tls.crt", super::super::tests::CERT),
                ("tls.key", super::super::tests::KEY),
            ],
        ));
        let (a, events) = parse_in(
            &state,
            &[
                ("proxy-ssl-secret", "upstream-tls"),
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-verify-depth", "2"),
                ("proxy-ssl-protocols", "TLSv1.2 TLSv1.3"),
                ("proxy-ssl-name", "internal.example.com"),
                ("proxy-ssl-server-name", "on"),
            ],
        );
        assert!(events.is_empty(), "{events:?}");
        let ssl = &a.location.proxy_ssl;
        assert_eq!(ssl.secret.as_ref().unwrap().to_string(), "ns/upstream-tls");
        assert!(ssl.verify && ssl.server_name);
        assert!(ssl.ca_pem.is_some() && ssl.cert_pem.is_some() && ssl.key_pem.is_some());
        assert_eq!(ssl.protocols, [TlsProtocol::TlsV1_2, TlsProtocol::TlsV1_3]);
    }
}
