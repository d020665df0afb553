//! `gangplank lint`: what changes for an Ingress when Gangplank replaces
//! ingress-nginx.
//!
//! For every Ingress it reports the annotations Gangplank ignores or rejects, with
//! the reason: raw nginx snippets, annotations ingress-nginx removed long ago (Part B
//! §7.2), ingress-nginx annotations Gangplank does not implement, unknown
//! `nginx.ingress.kubernetes.io/*` keys (typos), annotations of the NGINX Inc.
//! controller (`nginx.org/*`, `nginx.com/*`), and values the translation rejects
//! (those deny the Ingress's locations with 503). It also repeats ingress-nginx's own
//! lints that still matter (`rewrite-target` without a capture group, a boolean
//! `x-forwarded-prefix`).
//!
//! ```
//! use gangplank_controller::lint::{Severity, lint};
//! use gangplank_controller::manifests::{ManifestOptions, load_str};
//!
//! let yaml = r#"
//! apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata:
//!   name: web
//!   annotations:
//!     nginx.ingress.kubernetes.io/configuration-snippet: "more_set_headers 'X: y';"
//!     nginx.ingress.kubernetes.io/proxy-body-size: 8m
//! spec: {rules: [{host: a.example}]}
//! "#;
//! let state = load_str(yaml, "web.yaml", &ManifestOptions::default()).state;
//! let findings = lint(&state, &Default::default());
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].severity, Severity::Ignored);
//! assert!(findings[0].changes_behaviour());
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::annotations::PREFIX;
use crate::state::{ClusterState, name, namespace};
use crate::{EventKind, TranslateOptions, reason, translate};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth knowing; behaviour is the same as with ingress-nginx.
    Info,
    /// The annotation is ignored: its effect under ingress-nginx is lost.
    Ignored,
    /// The value is rejected: the Ingress's locations answer 503 until it is fixed.
    Rejected,
}

/// One annotation of one Ingress that behaves differently under Gangplank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Namespace of the Ingress.
    pub namespace: String,
    /// Name of the Ingress.
    pub ingress: String,
    /// The annotation key.
    pub annotation: String,
    /// How much it matters.
    pub severity: Severity,
    /// Why, and what to do.
    pub reason: String,
}

impl Finding {
    /// Whether switching to Gangplank changes what this Ingress does.
    pub fn changes_behaviour(&self) -> bool {
        self.severity != Severity::Info
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Info => "info",
            Severity::Ignored => "ignored",
            Severity::Rejected => "rejected",
        };
        write!(
            f,
            "{}/{}: {label}: {}: {}",
            self.namespace, self.ingress, self.annotation, self.reason
        )
    }
}

/// Annotations ingress-nginx itself removed (Part B §7.2), with the version.
const REMOVED: &[(&str, &str)] = &[
    (
        "secure-backends",
        "removed in ingress-nginx 0.21; use backend-protocol: HTTPS",
    ),
    (
        "grpc-backend",
        "removed in ingress-nginx 0.21; use backend-protocol: GRPC",
    ),
    ("add-base-url", "removed in ingress-nginx 0.22"),
    ("base-url-scheme", "removed in ingress-nginx 0.22"),
    (
        "session-cookie-hash",
        "removed in ingress-nginx 0.24; the cookie value is always an md5 of the endpoint",
    ),
    (
        "mirror-uri",
        "removed in ingress-nginx 0.28.1; use mirror-target",
    ),
];

/// ingress-nginx annotations Gangplank knows but does not implement, and why.
const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    (
        "enable-modsecurity",
        "ModSecurity (WAF) is not part of Gangplank; put a WAF in front or in the application",
    ),
    (
        "enable-owasp-core-rules",
        "ModSecurity (WAF) is not part of Gangplank",
    ),
    (
        "modsecurity-transaction-id",
        "ModSecurity (WAF) is not part of Gangplank",
    ),
    ("fastcgi-index", "FastCGI upstreams are not supported"),
    (
        "fastcgi-params-configmap",
        "FastCGI upstreams are not supported",
    ),
    (
        "http2-push-preload",
        "HTTP/2 server push is obsolete (browsers removed it)",
    ),
    (
        "enable-opentelemetry",
        "OpenTelemetry tracing is not implemented yet",
    ),
    (
        "opentelemetry-trust-incoming-span",
        "OpenTelemetry tracing is not implemented yet",
    ),
    (
        "opentelemetry-operation-name",
        "OpenTelemetry tracing is not implemented yet",
    ),
    (
        "enable-rewrite-log",
        "nginx's rewrite log has no equivalent; rewrites are visible in the access log",
    ),
    (
        "ssl-ciphers",
        "one cipher policy serves every host: ingress-nginx's default suites that rustls implements",
    ),
    (
        "ssl-prefer-server-ciphers",
        "one cipher policy serves every host (the server's order is preferred)",
    ),
    (
        "proxy-buffer-size",
        "buffer tuning of nginx has no equivalent: Gangplank streams",
    ),
    (
        "proxy-buffers-number",
        "buffer tuning of nginx has no equivalent: Gangplank streams",
    ),
    (
        "proxy-busy-buffers-size",
        "buffer tuning of nginx has no equivalent: Gangplank streams",
    ),
    (
        "proxy-max-temp-file-size",
        "Gangplank never buffers bodies to disk",
    ),
    (
        "auth-keepalive",
        "external-auth connection tuning is automatic",
    ),
    (
        "auth-keepalive-requests",
        "external-auth connection tuning is automatic",
    ),
    (
        "auth-keepalive-timeout",
        "external-auth connection tuning is automatic",
    ),
    (
        "auth-keepalive-share-vars",
        "external-auth connection tuning is automatic",
    ),
    (
        "stream-snippet",
        "raw nginx configuration is never supported",
    ),
];

/// Every other ingress-nginx annotation (Part B §5.2): known, implemented or
/// carried for the proxy.
const KNOWN: &[&str] = &[
    "rewrite-target",
    "use-regex",
    "app-root",
    "ssl-redirect",
    "force-ssl-redirect",
    "preserve-trailing-slash",
    "permanent-redirect",
    "permanent-redirect-code",
    "temporal-redirect",
    "temporal-redirect-code",
    "from-to-www-redirect",
    "backend-protocol",
    "proxy-body-size",
    "proxy-connect-timeout",
    "proxy-send-timeout",
    "proxy-read-timeout",
    "proxy-next-upstream",
    "proxy-next-upstream-timeout",
    "proxy-next-upstream-tries",
    "proxy-request-buffering",
    "proxy-buffering",
    "proxy-http-version",
    "proxy-cookie-domain",
    "proxy-cookie-path",
    "proxy-redirect-from",
    "proxy-redirect-to",
    "client-body-buffer-size",
    "affinity",
    "affinity-mode",
    "affinity-canary-behavior",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-domain",
    "session-cookie-expires",
    "session-cookie-max-age",
    "session-cookie-secure",
    "session-cookie-samesite",
    "session-cookie-conditional-samesite-none",
    "session-cookie-change-on-failure",
    "upstream-hash-by",
    "upstream-hash-by-subset",
    "upstream-hash-by-subset-size",
    "load-balance",
    "canary",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "canary-weight",
    "canary-weight-total",
    "whitelist-source-range",
    "allowlist-source-range",
    "denylist-source-range",
    "limit-rps",
    "limit-rpm",
    "limit-connections",
    "limit-burst-multiplier",
    "limit-allowlist",
    "limit-whitelist",
    "limit-rate",
    "limit-rate-after",
    "auth-type",
    "auth-secret",
    "auth-secret-type",
    "auth-realm",
    "auth-url",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-response-headers",
    "auth-method",
    "auth-cache-key",
    "auth-cache-duration",
    "auth-proxy-set-headers",
    "auth-request-redirect",
    "auth-always-set-cookie",
    "enable-global-auth",
    "enable-cors",
    "cors-allow-origin",
    "cors-allow-methods",
    "cors-allow-headers",
    "cors-allow-credentials",
    "cors-expose-headers",
    "cors-max-age",
    "server-alias",
    "ssl-passthrough",
    "custom-headers",
    "upstream-vhost",
    "x-forwarded-prefix",
    "default-backend",
    "custom-http-errors",
    "service-upstream",
    "connection-proxy-header",
    "mirror-target",
    "mirror-host",
    "mirror-request-body",
    "auth-tls-secret",
    "auth-tls-verify-client",
    "auth-tls-verify-depth",
    "auth-tls-error-page",
    "auth-tls-pass-certificate-to-upstream",
    "auth-tls-match-cn",
    "proxy-ssl-secret",
    "proxy-ssl-ciphers",
    "proxy-ssl-protocols",
    "proxy-ssl-name",
    "proxy-ssl-verify",
    "proxy-ssl-verify-depth",
    "proxy-ssl-server-name",
    "enable-access-log",
    "satisfy",
    "use-port-in-redirects",
    "disable-proxy-intercept-errors",
];

/// Lints every Ingress of `state` (whatever its class: a migrating user lints the
/// Ingresses ingress-nginx serves today).
pub fn lint(state: &ClusterState, options: &TranslateOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    for ingress in &state.ingresses {
        let ns = namespace(&ingress.metadata);
        let ing = name(&ingress.metadata);
        let finding = |annotation: &str, severity: Severity, reason: String| Finding {
            namespace: ns.to_owned(),
            ingress: ing.to_owned(),
            annotation: annotation.to_owned(),
            severity,
            reason,
        };
        let annotations = ingress.metadata.annotations.clone().unwrap_or_default();
        for (key, value) in &annotations {
            if key.starts_with("nginx.org/") || key.starts_with("nginx.com/") {
                findings.push(finding(
                    key,
                    Severity::Ignored,
                    "an annotation of the NGINX Inc. controller, not of ingress-nginx".to_owned(),
                ));
                continue;
            }
            let Some(short) = key.strip_prefix(PREFIX) else {
                continue;
            };
            if let Some((_, why)) = REMOVED.iter().find(|(k, _)| *k == short) {
                findings.push(finding(key, Severity::Ignored, (*why).to_owned()));
            } else if short.ends_with("-snippet") {
                findings.push(finding(
                    key,
                    Severity::Ignored,
                    "raw nginx configuration is never supported (it was the root of ingress-nginx's worst CVEs); \
                     express it with annotations or in the application"
                        .to_owned(),
                ));
            } else if let Some((_, why)) = NOT_IMPLEMENTED.iter().find(|(k, _)| *k == short) {
                findings.push(finding(key, Severity::Ignored, (*why).to_owned()));
            } else if !KNOWN.contains(&short) {
                findings.push(finding(
                    key,
                    Severity::Ignored,
                    "not an ingress-nginx annotation (a typo?); ingress-nginx ignored it too"
                        .to_owned(),
                ));
            } else if short == "rewrite-target" && !has_capture_reference(value) {
                findings.push(finding(
                    key,
                    Severity::Info,
                    "no $1..$9 capture reference: every path of the host is rewritten to the same URI".to_owned(),
                ));
            } else if short == "x-forwarded-prefix"
                && !annotations.contains_key(&format!("{PREFIX}rewrite-target"))
            {
                findings.push(finding(
                    key,
                    Severity::Info,
                    "sent only with rewrite-target (as ingress-nginx does): without it, nothing is sent"
                        .to_owned(),
                ));
            } else if short == "backend-protocol" && value.trim().eq_ignore_ascii_case("FCGI") {
                findings.push(finding(
                    key,
                    Severity::Ignored,
                    "FastCGI upstreams are not supported: requests to these paths get 502"
                        .to_owned(),
                ));
            } else if short == "proxy-ssl-protocols"
                && value
                    .split_whitespace()
                    .any(|p| !matches!(p, "TLSv1.2" | "TLSv1.3"))
            {
                findings.push(finding(
                    key,
                    Severity::Info,
                    "only TLSv1.2 and TLSv1.3 are negotiated with the upstream; older versions are left out"
                        .to_owned(),
                ));
            } else if matches!(short, "proxy-ssl-name" | "proxy-ssl-server-name")
                && !annotations.contains_key(&format!("{PREFIX}proxy-ssl-secret"))
            {
                findings.push(finding(
                    key,
                    Severity::Info,
                    "ingress-nginx ignores every proxy-ssl-* annotation without proxy-ssl-secret; Gangplank applies this one"
                        .to_owned(),
                ));
            } else if short == "x-forwarded-prefix" && matches!(value.as_str(), "true" | "false") {
                findings.push(finding(
                    key,
                    Severity::Info,
                    format!("the value is the prefix itself since ingress-nginx 0.22; {value:?} is sent literally"),
                ));
            }
        }
    }

    // Values the translation rejects, with its exact reasons.
    let mut lint_options = options.clone();
    lint_options.watch_ingress_without_class = true;
    let mut all_classes = state.clone();
    for ingress in &mut all_classes.ingresses {
        let ingress = std::sync::Arc::make_mut(ingress);
        ingress
            .spec
            .get_or_insert_with(Default::default)
            .ingress_class_name = None;
        if let Some(annotations) = ingress.metadata.annotations.as_mut() {
            annotations.remove(crate::CLASS_ANNOTATION);
        }
    }
    let translation = translate(&all_classes, &lint_options);
    let annotation_of = |message: &str| -> Option<String> {
        message
            .split(|c: char| c.is_whitespace() || c == '"' || c == '`' || c == ':')
            .find(|word| word.starts_with(PREFIX))
            .map(str::to_owned)
    };
    for event in translation.events {
        let severity = match event.reason.as_str() {
            reason::INVALID_ANNOTATION => Severity::Rejected,
            reason::ANNOTATION_IGNORED => Severity::Ignored,
            _ => continue,
        };
        if event.kind != EventKind::Warning {
            continue;
        }
        findings.push(Finding {
            annotation: annotation_of(&event.message).unwrap_or_default(),
            namespace: event.namespace,
            ingress: event.name,
            severity,
            reason: event.message,
        });
    }

    // One line per (Ingress, annotation, severity), in a stable order.
    let unique: BTreeMap<(String, String, String, Severity), Finding> = findings
        .into_iter()
        .map(|f| {
            (
                (
                    f.namespace.clone(),
                    f.ingress.clone(),
                    f.annotation.clone(),
                    f.severity,
                ),
                f,
            )
        })
        .collect();
    unique.into_values().collect()
}

fn has_capture_reference(value: &str) -> bool {
    value
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'$' && w[1].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{ManifestOptions, load_str};

    fn lint_yaml(annotations: &str) -> Vec<Finding> {
        let yaml = format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n{annotations}\nspec:\n  ingressClassName: nginx\n  rules: [{{host: a.example, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: s, port: {{number: 80}}}}}}}}]}}}}]\n"
        );
        let loaded = load_str(&yaml, "x.yaml", &ManifestOptions::default());
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        lint(&loaded.state, &TranslateOptions::default())
    }

    #[test]
    fn each_kind_of_difference_is_reported_once() {
        let findings = lint_yaml(
            "    nginx.ingress.kubernetes.io/server-snippet: \"location /x {}\"\n\
             \x20   nginx.ingress.kubernetes.io/secure-backends: \"true\"\n\
             \x20   nginx.ingress.kubernetes.io/enable-modsecurity: \"true\"\n\
             \x20   nginx.ingress.kubernetes.io/proxy-bodysize: 8m\n\
             \x20   nginx.org/websocket-services: web\n\
             \x20   nginx.ingress.kubernetes.io/rewrite-target: /\n\
             \x20   nginx.ingress.kubernetes.io/affinity: \"round-robin\"\n\
             \x20   nginx.ingress.kubernetes.io/load-balance: ewma",
        );
        let got: Vec<(String, Severity)> = findings
            .iter()
            .map(|f| {
                (
                    f.annotation.trim_start_matches(PREFIX).to_owned(),
                    f.severity,
                )
            })
            .collect();
        assert!(
            got.contains(&("server-snippet".into(), Severity::Ignored)),
            "{got:?}"
        );
        assert!(got.contains(&("secure-backends".into(), Severity::Ignored)));
        assert!(got.contains(&("enable-modsecurity".into(), Severity::Ignored)));
        assert!(got.contains(&("proxy-bodysize".into(), Severity::Ignored)));
        assert!(got.contains(&("nginx.org/websocket-services".into(), Severity::Ignored)));
        assert!(got.contains(&("rewrite-target".into(), Severity::Info)));
        assert!(
            got.contains(&("affinity".into(), Severity::Rejected)),
            "{got:?}"
        );
        assert!(!got.iter().any(|(a, _)| a == "load-balance"));
        assert!(
            findings
                .iter()
                .all(|f| f.namespace == "shop" && f.ingress == "web")
        );
        let rejected = findings
            .iter()
            .find(|f| f.severity == Severity::Rejected)
            .unwrap();
        assert!(
            rejected
                .to_string()
                .starts_with("shop/web: rejected: nginx.ingress.kubernetes.io/affinity: ")
        );
    }

    #[test]
    fn upstream_protocol_differences() {
        let findings = lint_yaml(
            "    nginx.ingress.kubernetes.io/backend-protocol: fcgi\n\
             \x20   nginx.ingress.kubernetes.io/proxy-ssl-protocols: TLSv1.1 TLSv1.2\n\
             \x20   nginx.ingress.kubernetes.io/proxy-ssl-name: upstream.internal",
        );
        let got: Vec<(String, Severity)> = findings
            .iter()
            .map(|f| {
                (
                    f.annotation.trim_start_matches(PREFIX).to_owned(),
                    f.severity,
                )
            })
            .collect();
        assert!(
            got.contains(&("backend-protocol".into(), Severity::Ignored)),
            "{got:?}"
        );
        assert!(got.contains(&("proxy-ssl-protocols".into(), Severity::Info)));
        assert!(got.contains(&("proxy-ssl-name".into(), Severity::Info)));
        for clean in [
            "    nginx.ingress.kubernetes.io/backend-protocol: GRPCS",
            "    nginx.ingress.kubernetes.io/backend-protocol: HTTPS\n\
             \x20   nginx.ingress.kubernetes.io/proxy-ssl-protocols: TLSv1.2 TLSv1.3",
        ] {
            let findings = lint_yaml(clean);
            assert!(findings.is_empty(), "{clean}: {findings:?}");
        }
    }

    #[test]
    fn response_annotations_are_implemented() {
        let findings = lint_yaml(
            "    nginx.ingress.kubernetes.io/proxy-cookie-domain: internal.local a.example\n\
             \x20   nginx.ingress.kubernetes.io/proxy-cookie-path: /app /\n\
             \x20   nginx.ingress.kubernetes.io/proxy-redirect-from: http://internal.local/\n\
             \x20   nginx.ingress.kubernetes.io/proxy-redirect-to: https://a.example/\n\
             \x20   nginx.ingress.kubernetes.io/limit-rate: \"100\"\n\
             \x20   nginx.ingress.kubernetes.io/limit-rate-after: \"1024\"\n\
             \x20   nginx.ingress.kubernetes.io/connection-proxy-header: keep-alive\n\
             \x20   nginx.ingress.kubernetes.io/use-port-in-redirects: \"true\"",
        );
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn a_clean_ingress_has_no_findings() {
        let findings = lint_yaml("    nginx.ingress.kubernetes.io/proxy-body-size: 8m");
        assert!(findings.is_empty(), "{findings:?}");
    }

    /// The status of each annotation in `docs/annotations.md`, by name.
    fn documented_statuses() -> BTreeMap<&'static str, &'static str> {
        let doc = include_str!("../../../docs/annotations.md");
        let mut rows = BTreeMap::new();
        for line in doc.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 4 {
                continue;
            }
            let Some(name) = cells[1]
                .strip_prefix('`')
                .and_then(|cell| cell.strip_suffix('`'))
            else {
                continue;
            };
            assert!(
                rows.insert(name, cells[2]).is_none(),
                "{name} is listed twice in docs/annotations.md"
            );
        }
        rows
    }

    #[test]
    fn the_annotation_table_in_the_docs_agrees_with_lint() {
        let rows = documented_statuses();
        for (name, status) in &rows {
            let allowed: &[&str] = if REMOVED.iter().any(|(k, _)| k == name) {
                &["removed upstream"]
            } else if name.ends_with("-snippet") {
                &["ignored"]
            } else if NOT_IMPLEMENTED.iter().any(|(k, _)| k == name) {
                &["not supported", "no effect"]
            } else if KNOWN.contains(name) {
                &["enforced", "no effect"]
            } else {
                panic!("docs/annotations.md lists {name}, which lint calls unknown");
            };
            assert!(
                allowed.contains(status),
                "docs/annotations.md says {name} is {status:?}; lint's lists allow {allowed:?}"
            );
        }
        let listed = KNOWN
            .iter()
            .copied()
            .chain(NOT_IMPLEMENTED.iter().map(|(k, _)| *k))
            .chain(REMOVED.iter().map(|(k, _)| *k));
        for name in listed {
            assert!(
                rows.contains_key(name),
                "{name} is missing from docs/annotations.md"
            );
        }
    }
}
