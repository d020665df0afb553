//! Routing: `Server` (one host name and its aliases) and `Location` (one path of it and
//! the backend and policies that apply).
//!
//! In ingress-nginx these were rendered into `nginx.conf`; in Gangplank they are part
//! of the snapshot like backends, so routing changes need no reload (Part A.2). The
//! data plane compiles them into a route table at apply time.

use serde::{Deserialize, Serialize};

use crate::int_or_string::IntOrString;
use crate::policy::{
    AccessLogs, AuthTls, BackendProtocol, BasicDigestAuth, CorsConfig, CustomHeaders, ExternalAuth,
    Mirror, NginxSize, ProxyConfig, ProxySsl, RateLimit, Redirect, Rewrite, Satisfy, SourceRanges,
};
use crate::validate::{Path, Report, Validate, check_hostname, check_text};

/// One virtual host: its name, aliases and locations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// Host name: exact (`app.example.com`), one-label wildcard (`*.example.com`) or
    /// `_` for the default server.
    pub hostname: String,
    /// Extra names served by this server (`server-alias`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// TLS is passed through to the backend (SNI-routed TCP).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ssl_passthrough: bool,
    /// The paths of this host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// Also serve `www.<host>` (or the bare host for `www.` names) as a redirect.
    #[serde(default, skip_serializing_if = "is_false")]
    pub redirect_from_to_www: bool,
    /// Client-certificate authentication for the whole host.
    #[serde(default, skip_serializing_if = "is_default")]
    pub certificate_auth: AuthTls,
    /// Per-host TLS cipher list (`ssl-ciphers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_ciphers: Option<String>,
    /// Per-host `ssl-prefer-server-ciphers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_prefer_server_ciphers: Option<bool>,
}

/// How a location's path is compared with the request path (Ingress v1 `pathType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PathType {
    /// The whole path must be equal.
    Exact,
    /// Matches whole path elements: `/foo` matches `/foo` and `/foo/bar`, not `/foobar`.
    #[default]
    Prefix,
    /// As ingress-nginx: a plain string prefix (`/foo` matches `/foobar`).
    ImplementationSpecific,
}

/// The Ingress a location came from, for logs, metrics and events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRef {
    /// Namespace of the Ingress.
    pub namespace: String,
    /// Name of the Ingress.
    pub name: String,
}

/// One path of a server: which backend serves it and which policies apply.
///
/// Policy fields carry the parsed `nginx.ingress.kubernetes.io/*` annotations as typed
/// values; user strings are data and never become configuration text (Part A.3).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Location {
    /// The path as matched (a regex when the host is in regex mode).
    pub path: String,
    /// How `path` is matched.
    #[serde(default)]
    pub path_type: PathType,
    /// The catch-all location of the default server.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_def_backend: bool,
    /// The Ingress this location comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressRef>,
    /// The path exactly as written in the Ingress.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingress_path: String,
    /// Name of the backend (upstream) that serves this location.
    pub backend: String,
    /// Name of the Service behind the backend (metrics label `service`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// The Service port as written in the Ingress.
    #[serde(default, skip_serializing_if = "is_default")]
    pub port: IntOrString,
    /// Set when an annotation of this location was invalid: requests get 503 and the
    /// reason is logged (Part A.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<String>,

    /// `upstream-vhost`: Host header sent upstream.
    #[serde(
        rename = "upstream-vhost",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub upstream_vhost: String,
    /// `auth-type`, `auth-secret`, `auth-realm`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub basic_digest_auth: BasicDigestAuth,
    /// `custom-headers`: response headers.
    #[serde(default, skip_serializing_if = "is_default")]
    pub custom_headers: CustomHeaders,
    /// `enable-cors` and `cors-*`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cors_config: CorsConfig,
    /// `auth-url` and friends.
    #[serde(default, skip_serializing_if = "is_default")]
    pub external_auth: ExternalAuth,
    /// Apply the ConfigMap's global external auth here.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_global_auth: bool,
    /// `limit-*`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub rate_limit: RateLimit,
    /// Redirect annotations.
    #[serde(default, skip_serializing_if = "is_default")]
    pub redirect: Redirect,
    /// `rewrite-target`, `use-regex`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub rewrite: Rewrite,
    /// `denylist-source-range`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub denylist: SourceRanges,
    /// `allowlist-source-range` / `whitelist-source-range`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub allowlist: SourceRanges,
    /// `proxy-*` settings.
    #[serde(default, skip_serializing_if = "is_default")]
    pub proxy: ProxyConfig,
    /// `proxy-ssl-*`: TLS to the upstream.
    #[serde(rename = "proxySSL", default, skip_serializing_if = "is_default")]
    pub proxy_ssl: ProxySsl,
    /// `use-port-in-redirects`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_port_in_redirects: bool,
    /// `connection-proxy-header`: the upstream `Connection` header override.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub connection: String,
    /// `client-body-buffer-size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_body_buffer_size: Option<NginxSize>,
    /// `default-backend`: the upstream used when this location's has no endpoints.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_backend_upstream_name: String,
    /// `x-forwarded-prefix`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x_forwarded_prefix: String,
    /// `enable-access-log`, `enable-rewrite-log`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub logs: AccessLogs,
    /// `backend-protocol`.
    #[serde(
        rename = "backend-protocol",
        default,
        skip_serializing_if = "is_default"
    )]
    pub backend_protocol: BackendProtocol,
    /// `custom-http-errors`.
    #[serde(
        rename = "custom-http-errors",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub custom_http_errors: Vec<u16>,
    /// `disable-proxy-intercept-errors`.
    #[serde(
        rename = "disable-proxy-intercept-errors",
        default,
        skip_serializing_if = "is_false"
    )]
    pub disable_proxy_intercept_errors: bool,
    /// `satisfy`: whether any or all access checks must pass.
    #[serde(default, skip_serializing_if = "is_default")]
    pub satisfy: Satisfy,
    /// `mirror-*`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub mirror: Mirror,
    /// `auth-tls-*` for this location.
    #[serde(default, skip_serializing_if = "is_default")]
    pub certificate_auth: AuthTls,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// Longest accepted path.
pub const MAX_PATH_LEN: usize = 2048;

impl Server {
    /// True when the host's paths are case-insensitive, start-anchored regexes: any
    /// location of the host uses `use-regex` or `rewrite-target` (Part B §6.1).
    pub fn regex_mode(&self) -> bool {
        self.locations.iter().any(|l| l.rewrite.uses_regex())
    }
}

impl Validate for Server {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        report.check(&path.field("hostname"), check_hostname(&self.hostname));
        let aliases = path.field("aliases");
        for (i, alias) in self.aliases.iter().enumerate() {
            let at = aliases.index(i);
            if alias == "_" {
                report.add(&at, "the default server name \"_\" cannot be an alias");
            } else {
                report.check(&at, check_hostname(alias));
            }
        }
        self.certificate_auth
            .validate_at(&path.field("certificateAuth"), report);
        if let Some(c) = &self.ssl_ciphers {
            report.check(
                &path.field("sslCiphers"),
                crate::policy::check_cipher_list(c),
            );
        }

        let regex_mode = self.regex_mode();
        let locations = path.field("locations");
        let mut seen = std::collections::HashMap::new();
        for (i, location) in self.locations.iter().enumerate() {
            let at = locations.index(i);
            location.validate_at(&at, report);
            report.check(
                &at.field("path"),
                check_path(&location.path, location.path_type, regex_mode),
            );
            if let Some(first) = seen.insert((location.path.as_str(), location.path_type), i) {
                report.add(
                    &at.field("path"),
                    format!(
                        "duplicate location {:?} ({:?}) (also at index {first})",
                        location.path, location.path_type
                    ),
                );
            }
        }
    }
}

/// Checks a location path the way it will be matched.
pub fn check_path(path: &str, path_type: PathType, regex_mode: bool) -> Result<(), String> {
    if path.len() > MAX_PATH_LEN {
        return Err(format!("path is longer than {MAX_PATH_LEN} bytes"));
    }
    check_text(path)?;
    if !path.starts_with('/') {
        return Err(format!("path {path:?} does not start with '/'"));
    }
    if regex_mode {
        return crate::validate::check_regex(&format!("(?i)^{path}"));
    }
    match path_type {
        // strict-validate-path-type (default true since v1.12): `^/[[:alnum:]._\-/]*$`.
        PathType::Exact | PathType::Prefix => match path
            .bytes()
            .find(|b| !(b.is_ascii_alphanumeric() || b"._-/".contains(b)))
        {
            None => Ok(()),
            Some(b) => Err(format!(
                "{path_type:?} path {path:?} contains {:?}; only letters, digits, '.', '_', '-' and '/' are allowed (use ImplementationSpecific or use-regex for other paths)",
                b as char
            )),
        },
        PathType::ImplementationSpecific => match path.chars().find(|c| c.is_whitespace()) {
            None => Ok(()),
            Some(c) => Err(format!("path {path:?} contains the white space {c:?}")),
        },
    }
}

impl Validate for Location {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        let backend = path.field("backend");
        if self.backend.is_empty() {
            report.add(&backend, "backend is empty");
        } else {
            report.check(&backend, check_text(&self.backend));
        }
        if let Some(ing) = &self.ingress {
            let at = path.field("ingress");
            report.check(&at.field("namespace"), check_text(&ing.namespace));
            report.check(&at.field("name"), check_text(&ing.name));
        }
        report.check(&path.field("ingressPath"), check_text(&self.ingress_path));
        report.check(&path.field("service"), check_text(&self.service));
        report.check(
            &path.field("port"),
            crate::backend::check_service_port(&self.port),
        );
        if let Some(reason) = &self.denied {
            report.check(&path.field("denied"), check_text(reason));
        }
        if !self.upstream_vhost.is_empty() {
            let host = self.upstream_vhost.rsplit_once(':').map_or(
                self.upstream_vhost.as_str(),
                |(h, p)| {
                    if p.parse::<u16>().is_ok() {
                        h
                    } else {
                        self.upstream_vhost.as_str()
                    }
                },
            );
            report.check(&path.field("upstream-vhost"), check_hostname(host));
        }
        report.check(
            &path.field("connection"),
            crate::validate::check_header_value(&self.connection),
        );
        report.check(
            &path.field("defaultBackendUpstreamName"),
            check_text(&self.default_backend_upstream_name),
        );
        report.check(
            &path.field("xForwardedPrefix"),
            crate::validate::check_header_value(&self.x_forwarded_prefix),
        );
        let errors = path.field("custom-http-errors");
        for (i, code) in self.custom_http_errors.iter().enumerate() {
            // nginx's error_page accepts 300..599.
            if !(300..=599).contains(code) {
                report.add(
                    &errors.index(i),
                    format!("status code {code} is not in 300..599"),
                );
            }
        }
        self.basic_digest_auth
            .validate_at(&path.field("basicDigestAuth"), report);
        self.custom_headers
            .validate_at(&path.field("customHeaders"), report);
        self.cors_config
            .validate_at(&path.field("corsConfig"), report);
        self.external_auth
            .validate_at(&path.field("externalAuth"), report);
        self.rate_limit
            .validate_at(&path.field("rateLimit"), report);
        self.redirect.validate_at(&path.field("redirect"), report);
        self.rewrite.validate_at(&path.field("rewrite"), report);
        self.denylist.validate_at(&path.field("denylist"), report);
        self.allowlist.validate_at(&path.field("allowlist"), report);
        self.proxy.validate_at(&path.field("proxy"), report);
        self.proxy_ssl.validate_at(&path.field("proxySSL"), report);
        self.mirror.validate_at(&path.field("mirror"), report);
        self.certificate_auth
            .validate_at(&path.field("certificateAuth"), report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_paths_for_exact_and_prefix() {
        assert!(check_path("/api/v1", PathType::Prefix, false).is_ok());
        assert!(check_path("/", PathType::Exact, false).is_ok());
        assert!(check_path("/a b", PathType::Prefix, false).is_err());
        assert!(check_path("/a;}", PathType::Exact, false).is_err());
        assert!(check_path("relative", PathType::Prefix, false).is_err());
        assert!(check_path("/a\n}", PathType::ImplementationSpecific, false).is_err());
        assert!(check_path("/foo*", PathType::ImplementationSpecific, false).is_ok());
        // Regex mode: paths are regexes, checked for what the regex engine accepts.
        assert!(check_path("/id/[0-9]+$", PathType::Prefix, true).is_ok());
        assert!(check_path("/id/(?=x)", PathType::Prefix, true).is_err());
        assert!(check_path("/id/[0-9", PathType::Prefix, true).is_err());
    }

    #[test]
    fn duplicate_locations_are_reported() {
        let server: Server = serde_json::from_value(serde_json::json!({
            "hostname": "a.example.com",
            "locations": [
                {"path": "/", "pathType": "Prefix", "backend": "b"},
                {"path": "/", "pathType": "Exact", "backend": "b"},
                {"path": "/", "pathType": "Prefix", "backend": "c"}
            ]
        }))
        .unwrap();
        let problems = server.validate().unwrap_err();
        assert_eq!(problems.0.len(), 1, "{problems}");
        assert_eq!(problems.0[0].path, "$.locations[2].path");
    }

    #[test]
    fn unknown_location_fields_are_rejected() {
        let err = crate::json::decode::<Server>(
            br#"{"hostname":"a","locations":[{"path":"/","backend":"b","configurationSnippet":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "$.locations[0].configurationSnippet");
    }
}
