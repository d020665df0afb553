//! `GeneralConfig`: the body of `GET/POST /configuration/general`, the global ConfigMap
//! settings the data plane needs, typed.
//!
//! JSON keys are the ConfigMap key names (`upstream-keepalive-connections`,
//! `proxy-body-size`...), so a ConfigMap and a general document read alike. Every
//! field is optional: an absent key means ingress-nginx's default (Part B §5.4), which
//! the accessor of the same name returns. `GeneralConfig::default()` is therefore
//! "all defaults" and encodes as `{}`, which is also what `GET` answers before any
//! `POST` (Part A.1).
//!
//! ```
//! use gangplank_model::GeneralConfig;
//!
//! let general: GeneralConfig =
//!     gangplank_model::json::decode(br#"{"upstream-keepalive-connections": 64, "proxy-read-timeout": "5m"}"#)?;
//! assert_eq!(general.upstream_keepalive_connections(), 64);
//! assert_eq!(general.proxy_read_timeout().as_secs(), 300);
//! assert_eq!(general.keep_alive_requests(), 1000); // not given: the default
//! assert_eq!(serde_json::to_string(&GeneralConfig::default())?, "{}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Old controllers (up to 0.35) post `{"controllerPodsCount": N}`; it is accepted and
//! kept. Unknown keys are rejected rather than ignored, so a typo in a key name is an
//! error instead of a silently missing setting.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::LoadBalance;
use crate::policy::{
    CacheDuration, DEFAULT_NEXT_UPSTREAM, ExternalAuth, HttpMethod, NextUpstream, NginxDuration,
    NginxSize, ProxyHttpVersion, TlsProtocol, check_cache_key, check_cidrs, check_cipher_list,
    check_header_map, check_header_names, check_next_upstream, check_param_name, check_status,
    check_tls_protocols, check_uri_path, check_url_or_path, check_url_template,
};
use crate::validate::{Path, Report, Validate, check_header_name, check_header_value, check_regex};

/// ingress-nginx's default `ssl-ciphers`.
pub const DEFAULT_SSL_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256";

/// ingress-nginx's default `ssl-protocols`.
pub const DEFAULT_SSL_PROTOCOLS: &[TlsProtocol] = &[TlsProtocol::TlsV1_2, TlsProtocol::TlsV1_3];

/// ingress-nginx's default `no-tls-redirect-locations` and `no-auth-locations`: ACME
/// HTTP-01 challenges must reach cert-manager over plain HTTP without credentials.
pub const DEFAULT_EXEMPT_LOCATIONS: &[&str] = &["/.well-known/acme-challenge"];

/// ingress-nginx's default `gzip-types`.
pub const DEFAULT_GZIP_TYPES: &[&str] = &[
    "application/atom+xml",
    "application/javascript",
    "application/x-javascript",
    "application/json",
    "application/rss+xml",
    "application/vnd.ms-fontobject",
    "application/x-font-ttf",
    "application/x-web-app-manifest+json",
    "application/xhtml+xml",
    "application/xml",
    "font/opentype",
    "image/svg+xml",
    "image/x-icon",
    "text/css",
    "text/javascript",
    "text/plain",
    "text/x-component",
];

/// The global settings. Every field is `None` unless the ConfigMap sets it; read the
/// effective value through the accessor of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct GeneralConfig {
    /// Number of controller pods; posted by controllers up to 0.35, unused since.
    #[serde(
        rename = "controllerPodsCount",
        skip_serializing_if = "Option::is_none"
    )]
    pub controller_pods_count: Option<u32>,

    // --- Balancing and upstream connections -------------------------------------
    /// `load-balance`: the algorithm of backends that do not choose one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balance: Option<LoadBalance>,
    /// `upstream-keepalive-connections`: idle connections kept per worker; 0 disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_keepalive_connections: Option<u32>,
    /// `upstream-keepalive-time`: longest life of a kept connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_keepalive_time: Option<NginxDuration>,
    /// `upstream-keepalive-timeout`: longest idle time of a kept connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_keepalive_timeout: Option<NginxDuration>,
    /// `upstream-keepalive-requests`: requests per kept connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_keepalive_requests: Option<u32>,

    // --- Client connections -------------------------------------------------------
    /// `keep-alive`: idle timeout of client connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<NginxDuration>,
    /// `keep-alive-requests`: requests per client connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive_requests: Option<u32>,
    /// `client-header-timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_header_timeout: Option<NginxDuration>,
    /// `client-body-timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_body_timeout: Option<NginxDuration>,
    /// `use-http2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_http2: Option<bool>,
    /// `http2-max-concurrent-streams`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_max_concurrent_streams: Option<u32>,

    // --- Proxying (global defaults of the `proxy-*` annotations) ----------------
    /// `proxy-connect-timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_connect_timeout: Option<NginxDuration>,
    /// `proxy-send-timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_send_timeout: Option<NginxDuration>,
    /// `proxy-read-timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_read_timeout: Option<NginxDuration>,
    /// `proxy-next-upstream`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_next_upstream: Option<Vec<NextUpstream>>,
    /// `proxy-next-upstream-timeout`; 0 means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_next_upstream_timeout: Option<NginxDuration>,
    /// `proxy-next-upstream-tries`; 0 means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_next_upstream_tries: Option<u32>,
    /// `proxy-body-size`; 0 means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_body_size: Option<NginxSize>,
    /// `client-body-buffer-size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_body_buffer_size: Option<NginxSize>,
    /// `proxy-buffer-size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_buffer_size: Option<NginxSize>,
    /// `proxy-buffers-number`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_buffers_number: Option<u32>,
    /// `proxy-buffering`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_buffering: Option<bool>,
    /// `proxy-request-buffering`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_request_buffering: Option<bool>,
    /// `proxy-http-version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_http_version: Option<ProxyHttpVersion>,
    /// `proxy-add-original-uri-header`: send `X-Original-URI` upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_add_original_uri_header: Option<bool>,
    /// `allow-backend-server-header`: pass the upstream's `Server` header through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_backend_server_header: Option<bool>,

    // --- TLS and redirects --------------------------------------------------------
    /// `ssl-protocols`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_protocols: Option<Vec<TlsProtocol>>,
    /// `ssl-ciphers` (TLSv1.2 suites; TLSv1.3 suites are fixed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_ciphers: Option<String>,
    /// `hsts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsts: Option<bool>,
    /// `hsts-max-age`, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsts_max_age: Option<u64>,
    /// `hsts-include-subdomains`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsts_include_subdomains: Option<bool>,
    /// `hsts-preload`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsts_preload: Option<bool>,
    /// `ssl-redirect`: redirect http to https on hosts with a certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect`: redirect http to https even without a certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_ssl_redirect: Option<bool>,
    /// `http-redirect-code`: the status of https redirects (301, 302, 307, 308).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_redirect_code: Option<u16>,
    /// `preserve-trailing-slash`: keep a trailing `/` in https redirects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_trailing_slash: Option<bool>,
    /// `use-port-in-redirects`: the proxy's own redirects name the listener port
    /// (the default of the annotation of the same name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_port_in_redirects: Option<bool>,
    /// `no-tls-redirect-locations`: path prefixes never redirected to https.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_tls_redirect_locations: Option<Vec<String>>,

    // --- Client addresses and request headers -------------------------------------
    /// `use-forwarded-headers`: trust `X-Forwarded-*` from the client side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_forwarded_headers: Option<bool>,
    /// `compute-full-forwarded-for`: append to the incoming `X-Forwarded-For`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_full_forwarded_for: Option<bool>,
    /// `forwarded-for-header`: the header that carries the client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_for_header: Option<String>,
    /// `enable-real-ip`: take the client address from `forwarded-for-header`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_real_ip: Option<bool>,
    /// `proxy-real-ip-cidr`: peers trusted to set the client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_real_ip_cidr: Option<Vec<String>>,
    /// `use-proxy-protocol`: listeners expect a PROXY protocol header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_proxy_protocol: Option<bool>,
    /// `proxy-protocol-header-timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_protocol_header_timeout: Option<NginxDuration>,
    /// `server-tokens`: send the version in the `Server` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_tokens: Option<bool>,
    /// `generate-request-id`: create `X-Request-ID` when the client sent none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_request_id: Option<bool>,
    /// `enable-underscores-in-headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_underscores_in_headers: Option<bool>,
    /// `ignore-invalid-headers`: drop (rather than reject) invalid request headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_invalid_headers: Option<bool>,
    /// `proxy-set-headers`: extra request headers sent upstream (the referenced
    /// ConfigMap's data, resolved by the controller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_set_headers: Option<BTreeMap<String, String>>,
    /// `add-headers`: extra response headers (resolved like `proxy-set-headers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_headers: Option<BTreeMap<String, String>>,
    /// `global-allowed-response-headers`: the names `custom-headers` may set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_allowed_response_headers: Option<Vec<String>>,

    // --- Errors, blocking, limits ------------------------------------------------
    /// `custom-http-errors`: statuses served by the default backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_http_errors: Option<Vec<u16>>,
    /// `block-cidrs`: client networks answered with 403.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_cidrs: Option<Vec<String>>,
    /// `whitelist-source-range`: the allowlist of every location that sets none of its
    /// own (others get 403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whitelist_source_range: Option<Vec<String>>,
    /// `denylist-source-range`: the denylist of every location that sets none of its
    /// own (403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denylist_source_range: Option<Vec<String>>,
    /// `block-user-agents`: `User-Agent` patterns answered with 403, as nginx `map`
    /// keys: exact strings, or `~regex` / `~*regex` (case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_user_agents: Option<Vec<String>>,
    /// `block-referers`: `Referer` patterns answered with 403, same syntax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_referers: Option<Vec<String>>,
    /// `limit-req-status-code`: status of requests over a rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_req_status_code: Option<u16>,
    /// `limit-conn-status-code`: status of connections over a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_conn_status_code: Option<u16>,

    // --- Compression ----------------------------------------------------------------
    /// `use-gzip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_gzip: Option<bool>,
    /// `gzip-level`, 1..9.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_level: Option<u8>,
    /// `gzip-min-length`: smallest response compressed, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_min_length: Option<u64>,
    /// `gzip-types`: MIME types compressed (`*` for all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_types: Option<Vec<String>>,

    // --- Global external authentication (`global-auth-*`) ---------------------------
    /// `global-auth-url`: external auth for every location that does not opt out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_url: Option<String>,
    /// `global-auth-method`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_method: Option<HttpMethod>,
    /// `global-auth-signin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_signin: Option<String>,
    /// `global-auth-signin-redirect-param`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_signin_redirect_param: Option<String>,
    /// `global-auth-response-headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_response_headers: Option<Vec<String>>,
    /// `global-auth-request-redirect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_request_redirect: Option<String>,
    /// `global-auth-cache-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_cache_key: Option<String>,
    /// `global-auth-cache-duration`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_cache_duration: Option<Vec<CacheDuration>>,
    /// `global-auth-always-set-cookie`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_auth_always_set_cookie: Option<bool>,
    /// `no-auth-locations`: path prefixes exempt from global auth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_auth_locations: Option<Vec<String>>,

    // --- Process and logs -----------------------------------------------------------
    /// `worker-shutdown-timeout`: grace period for in-flight requests on shutdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_shutdown_timeout: Option<NginxDuration>,
    /// `log-format-escape-json`: escape access-log variables for JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format_escape_json: Option<bool>,
}

/// Owned strings from a configured list, or the default.
fn strings_or<'a>(list: &'a Option<Vec<String>>, default: &[&'static str]) -> Vec<&'a str> {
    match list {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => default.to_vec(),
    }
}

impl GeneralConfig {
    /// `load-balance` (default round robin).
    pub fn load_balance(&self) -> LoadBalance {
        self.load_balance.unwrap_or(LoadBalance::RoundRobin)
    }

    /// `upstream-keepalive-connections` (default 320; 0 disables the pool).
    pub fn upstream_keepalive_connections(&self) -> u32 {
        self.upstream_keepalive_connections.unwrap_or(320)
    }

    /// `upstream-keepalive-time` (default 1h).
    pub fn upstream_keepalive_time(&self) -> Duration {
        self.upstream_keepalive_time
            .unwrap_or(NginxDuration::secs(3600))
            .as_duration()
    }

    /// `upstream-keepalive-timeout` (default 60s).
    pub fn upstream_keepalive_timeout(&self) -> Duration {
        self.upstream_keepalive_timeout
            .unwrap_or(NginxDuration::secs(60))
            .as_duration()
    }

    /// `upstream-keepalive-requests` (default 10000).
    pub fn upstream_keepalive_requests(&self) -> u32 {
        self.upstream_keepalive_requests.unwrap_or(10_000)
    }

    /// `keep-alive` (default 75s).
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
            .unwrap_or(NginxDuration::secs(75))
            .as_duration()
    }

    /// `keep-alive-requests` (default 1000).
    pub fn keep_alive_requests(&self) -> u32 {
        self.keep_alive_requests.unwrap_or(1000)
    }

    /// `client-header-timeout` (default 60s).
    pub fn client_header_timeout(&self) -> Duration {
        self.client_header_timeout
            .unwrap_or(NginxDuration::secs(60))
            .as_duration()
    }

    /// `client-body-timeout` (default 60s).
    pub fn client_body_timeout(&self) -> Duration {
        self.client_body_timeout
            .unwrap_or(NginxDuration::secs(60))
            .as_duration()
    }

    /// `use-http2` (default true).
    pub fn use_http2(&self) -> bool {
        self.use_http2.unwrap_or(true)
    }

    /// `http2-max-concurrent-streams` (default 128).
    pub fn http2_max_concurrent_streams(&self) -> u32 {
        self.http2_max_concurrent_streams.unwrap_or(128)
    }

    /// `proxy-connect-timeout` (default 5s).
    pub fn proxy_connect_timeout(&self) -> Duration {
        self.proxy_connect_timeout
            .unwrap_or(NginxDuration::secs(5))
            .as_duration()
    }

    /// `proxy-send-timeout` (default 60s).
    pub fn proxy_send_timeout(&self) -> Duration {
        self.proxy_send_timeout
            .unwrap_or(NginxDuration::secs(60))
            .as_duration()
    }

    /// `proxy-read-timeout` (default 60s).
    pub fn proxy_read_timeout(&self) -> Duration {
        self.proxy_read_timeout
            .unwrap_or(NginxDuration::secs(60))
            .as_duration()
    }

    /// `proxy-next-upstream` (default `error timeout`).
    pub fn proxy_next_upstream(&self) -> &[NextUpstream] {
        self.proxy_next_upstream
            .as_deref()
            .unwrap_or(DEFAULT_NEXT_UPSTREAM)
    }

    /// `proxy-next-upstream-timeout` (default 0: no limit).
    pub fn proxy_next_upstream_timeout(&self) -> Duration {
        self.proxy_next_upstream_timeout
            .unwrap_or(NginxDuration::ZERO)
            .as_duration()
    }

    /// `proxy-next-upstream-tries` (default 3; 0 means no limit).
    pub fn proxy_next_upstream_tries(&self) -> u32 {
        self.proxy_next_upstream_tries.unwrap_or(3)
    }

    /// `proxy-body-size` (default 1m; 0 means no limit).
    pub fn proxy_body_size(&self) -> NginxSize {
        self.proxy_body_size.unwrap_or(NginxSize::mib(1))
    }

    /// `client-body-buffer-size` (default 8k).
    pub fn client_body_buffer_size(&self) -> NginxSize {
        self.client_body_buffer_size.unwrap_or(NginxSize::kib(8))
    }

    /// `proxy-buffer-size` (default 4k).
    pub fn proxy_buffer_size(&self) -> NginxSize {
        self.proxy_buffer_size.unwrap_or(NginxSize::kib(4))
    }

    /// `proxy-buffers-number` (default 4).
    pub fn proxy_buffers_number(&self) -> u32 {
        self.proxy_buffers_number.unwrap_or(4)
    }

    /// `proxy-buffering` (default off).
    pub fn proxy_buffering(&self) -> bool {
        self.proxy_buffering.unwrap_or(false)
    }

    /// `proxy-request-buffering` (default on).
    pub fn proxy_request_buffering(&self) -> bool {
        self.proxy_request_buffering.unwrap_or(true)
    }

    /// `proxy-http-version` (default 1.1).
    pub fn proxy_http_version(&self) -> ProxyHttpVersion {
        self.proxy_http_version.unwrap_or_default()
    }

    /// `proxy-add-original-uri-header` (default false).
    pub fn proxy_add_original_uri_header(&self) -> bool {
        self.proxy_add_original_uri_header.unwrap_or(false)
    }

    /// `allow-backend-server-header` (default false).
    pub fn allow_backend_server_header(&self) -> bool {
        self.allow_backend_server_header.unwrap_or(false)
    }

    /// `ssl-protocols` (default TLSv1.2 TLSv1.3).
    pub fn ssl_protocols(&self) -> &[TlsProtocol] {
        self.ssl_protocols
            .as_deref()
            .unwrap_or(DEFAULT_SSL_PROTOCOLS)
    }

    /// `ssl-ciphers` (default [`DEFAULT_SSL_CIPHERS`]).
    pub fn ssl_ciphers(&self) -> &str {
        self.ssl_ciphers.as_deref().unwrap_or(DEFAULT_SSL_CIPHERS)
    }

    /// `hsts` (default true).
    pub fn hsts(&self) -> bool {
        self.hsts.unwrap_or(true)
    }

    /// `hsts-max-age` (default one year).
    pub fn hsts_max_age(&self) -> Duration {
        Duration::from_secs(self.hsts_max_age.unwrap_or(31_536_000))
    }

    /// `hsts-include-subdomains` (default true).
    pub fn hsts_include_subdomains(&self) -> bool {
        self.hsts_include_subdomains.unwrap_or(true)
    }

    /// `hsts-preload` (default false).
    pub fn hsts_preload(&self) -> bool {
        self.hsts_preload.unwrap_or(false)
    }

    /// `ssl-redirect` (default true).
    pub fn ssl_redirect(&self) -> bool {
        self.ssl_redirect.unwrap_or(true)
    }

    /// `force-ssl-redirect` (default false).
    pub fn force_ssl_redirect(&self) -> bool {
        self.force_ssl_redirect.unwrap_or(false)
    }

    /// `http-redirect-code` (default 308).
    pub fn http_redirect_code(&self) -> u16 {
        self.http_redirect_code.unwrap_or(308)
    }

    /// `preserve-trailing-slash` (default false).
    pub fn preserve_trailing_slash(&self) -> bool {
        self.preserve_trailing_slash.unwrap_or(false)
    }

    /// `use-port-in-redirects` (default false).
    pub fn use_port_in_redirects(&self) -> bool {
        self.use_port_in_redirects.unwrap_or(false)
    }

    /// `no-tls-redirect-locations` (default `/.well-known/acme-challenge`).
    pub fn no_tls_redirect_locations(&self) -> Vec<&str> {
        strings_or(&self.no_tls_redirect_locations, DEFAULT_EXEMPT_LOCATIONS)
    }

    /// `use-forwarded-headers` (default false).
    pub fn use_forwarded_headers(&self) -> bool {
        self.use_forwarded_headers.unwrap_or(false)
    }

    /// `compute-full-forwarded-for` (default false).
    pub fn compute_full_forwarded_for(&self) -> bool {
        self.compute_full_forwarded_for.unwrap_or(false)
    }

    /// `forwarded-for-header` (default `X-Forwarded-For`).
    pub fn forwarded_for_header(&self) -> &str {
        self.forwarded_for_header
            .as_deref()
            .unwrap_or("X-Forwarded-For")
    }

    /// `enable-real-ip` (default false).
    pub fn enable_real_ip(&self) -> bool {
        self.enable_real_ip.unwrap_or(false)
    }

    /// `proxy-real-ip-cidr` (default `0.0.0.0/0`).
    pub fn proxy_real_ip_cidr(&self) -> Vec<&str> {
        strings_or(&self.proxy_real_ip_cidr, &["0.0.0.0/0"])
    }

    /// `use-proxy-protocol` (default false).
    pub fn use_proxy_protocol(&self) -> bool {
        self.use_proxy_protocol.unwrap_or(false)
    }

    /// `proxy-protocol-header-timeout` (default 5s).
    pub fn proxy_protocol_header_timeout(&self) -> Duration {
        self.proxy_protocol_header_timeout
            .unwrap_or(NginxDuration::secs(5))
            .as_duration()
    }

    /// `server-tokens` (default false).
    pub fn server_tokens(&self) -> bool {
        self.server_tokens.unwrap_or(false)
    }

    /// `generate-request-id` (default true).
    pub fn generate_request_id(&self) -> bool {
        self.generate_request_id.unwrap_or(true)
    }

    /// `enable-underscores-in-headers` (default false).
    pub fn enable_underscores_in_headers(&self) -> bool {
        self.enable_underscores_in_headers.unwrap_or(false)
    }

    /// `ignore-invalid-headers` (default true).
    pub fn ignore_invalid_headers(&self) -> bool {
        self.ignore_invalid_headers.unwrap_or(true)
    }

    /// `proxy-set-headers` (default none).
    pub fn proxy_set_headers(&self) -> Option<&BTreeMap<String, String>> {
        self.proxy_set_headers.as_ref()
    }

    /// `add-headers` (default none).
    pub fn add_headers(&self) -> Option<&BTreeMap<String, String>> {
        self.add_headers.as_ref()
    }

    /// `global-allowed-response-headers` (default none).
    pub fn global_allowed_response_headers(&self) -> &[String] {
        self.global_allowed_response_headers
            .as_deref()
            .unwrap_or(&[])
    }

    /// `custom-http-errors` (default none).
    pub fn custom_http_errors(&self) -> &[u16] {
        self.custom_http_errors.as_deref().unwrap_or(&[])
    }

    /// `block-cidrs` (default none).
    pub fn block_cidrs(&self) -> &[String] {
        self.block_cidrs.as_deref().unwrap_or(&[])
    }

    /// `whitelist-source-range` (default none: every client allowed).
    pub fn whitelist_source_range(&self) -> &[String] {
        self.whitelist_source_range.as_deref().unwrap_or(&[])
    }

    /// `denylist-source-range` (default none).
    pub fn denylist_source_range(&self) -> &[String] {
        self.denylist_source_range.as_deref().unwrap_or(&[])
    }

    /// `block-user-agents` (default none); see [`BlockPattern::parse`].
    pub fn block_user_agents(&self) -> &[String] {
        self.block_user_agents.as_deref().unwrap_or(&[])
    }

    /// `block-referers` (default none); see [`BlockPattern::parse`].
    pub fn block_referers(&self) -> &[String] {
        self.block_referers.as_deref().unwrap_or(&[])
    }

    /// `limit-req-status-code` (default 503).
    pub fn limit_req_status_code(&self) -> u16 {
        self.limit_req_status_code.unwrap_or(503)
    }

    /// `limit-conn-status-code` (default 503).
    pub fn limit_conn_status_code(&self) -> u16 {
        self.limit_conn_status_code.unwrap_or(503)
    }

    /// `use-gzip` (default false).
    pub fn use_gzip(&self) -> bool {
        self.use_gzip.unwrap_or(false)
    }

    /// `gzip-level` (default 1).
    pub fn gzip_level(&self) -> u8 {
        self.gzip_level.unwrap_or(1)
    }

    /// `gzip-min-length` (default 256 bytes).
    pub fn gzip_min_length(&self) -> u64 {
        self.gzip_min_length.unwrap_or(256)
    }

    /// `gzip-types` (default [`DEFAULT_GZIP_TYPES`]).
    pub fn gzip_types(&self) -> Vec<&str> {
        strings_or(&self.gzip_types, DEFAULT_GZIP_TYPES)
    }

    /// The global external auth (`global-auth-*`), if `global-auth-url` is set.
    pub fn global_auth(&self) -> Option<ExternalAuth> {
        let url = self.global_auth_url.clone()?;
        Some(ExternalAuth {
            url: Some(url),
            method: self.global_auth_method,
            signin: self.global_auth_signin.clone(),
            signin_redirect_param: self.global_auth_signin_redirect_param.clone(),
            response_headers: self
                .global_auth_response_headers
                .clone()
                .unwrap_or_default(),
            request_redirect: self.global_auth_request_redirect.clone(),
            cache_key: self.global_auth_cache_key.clone(),
            cache_duration: self.global_auth_cache_duration.clone().unwrap_or_default(),
            always_set_cookie: self.global_auth_always_set_cookie.unwrap_or(false),
            ..ExternalAuth::default()
        })
    }

    /// `no-auth-locations` (default `/.well-known/acme-challenge`).
    pub fn no_auth_locations(&self) -> Vec<&str> {
        strings_or(&self.no_auth_locations, DEFAULT_EXEMPT_LOCATIONS)
    }

    /// `worker-shutdown-timeout` (default 240s).
    pub fn worker_shutdown_timeout(&self) -> Duration {
        self.worker_shutdown_timeout
            .unwrap_or(NginxDuration::secs(240))
            .as_duration()
    }

    /// `log-format-escape-json` (default false).
    pub fn log_format_escape_json(&self) -> bool {
        self.log_format_escape_json.unwrap_or(false)
    }
}

/// One `block-user-agents` / `block-referers` entry, read as an nginx `map` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockPattern {
    /// The whole header value must be equal.
    Exact(String),
    /// `~regex` (case-sensitive) or `~*regex` (case-insensitive), unanchored.
    Regex {
        /// The pattern, without the leading `~` / `~*`.
        pattern: String,
        /// True for `~*`.
        case_insensitive: bool,
    },
}

impl BlockPattern {
    /// Parses an entry: `~*` and `~` introduce regexes (checked like every regex the
    /// data plane compiles); anything else is an exact header value.
    pub fn parse(entry: &str) -> Result<BlockPattern, String> {
        let (pattern, case_insensitive) = if let Some(p) = entry.strip_prefix("~*") {
            (p, true)
        } else if let Some(p) = entry.strip_prefix('~') {
            (p, false)
        } else {
            if entry.is_empty() {
                return Err("entry is empty".into());
            }
            check_header_value(entry)?;
            return Ok(BlockPattern::Exact(entry.to_owned()));
        };
        if pattern.is_empty() {
            return Err(format!("{entry:?} has an empty regex"));
        }
        check_regex(pattern)?;
        Ok(BlockPattern::Regex {
            pattern: pattern.to_owned(),
            case_insensitive,
        })
    }
}

/// A MIME type for `gzip-types`: `type/subtype` tokens, or `*`.
fn check_mime_type(value: &str) -> Result<(), String> {
    let is_token = |s: &str| !s.is_empty() && s.bytes().all(crate::validate::is_tchar);
    match value.split_once('/') {
        _ if value == "*" => Ok(()),
        Some((kind, sub)) if is_token(kind) && is_token(sub) => Ok(()),
        _ => Err(format!("{value:?} is not a MIME type such as text/html")),
    }
}

fn check_range<T: PartialOrd + Copy + fmt::Display>(
    value: T,
    min: T,
    max: T,
) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("{value} is not in {min}..{max}"))
    }
}

impl Validate for GeneralConfig {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        // Zero idle or life time would close every kept connection at once; use
        // `upstream-keepalive-connections: 0` to disable the pool instead.
        for (key, value) in [
            ("upstream-keepalive-time", self.upstream_keepalive_time),
            (
                "upstream-keepalive-timeout",
                self.upstream_keepalive_timeout,
            ),
            ("proxy-connect-timeout", self.proxy_connect_timeout),
            ("proxy-send-timeout", self.proxy_send_timeout),
            ("proxy-read-timeout", self.proxy_read_timeout),
            ("client-header-timeout", self.client_header_timeout),
            ("client-body-timeout", self.client_body_timeout),
            (
                "proxy-protocol-header-timeout",
                self.proxy_protocol_header_timeout,
            ),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                report.add(&path.field(key), "must be longer than 0s");
            }
        }
        for (key, value) in [
            (
                "upstream-keepalive-requests",
                self.upstream_keepalive_requests,
            ),
            ("keep-alive-requests", self.keep_alive_requests),
            (
                "http2-max-concurrent-streams",
                self.http2_max_concurrent_streams,
            ),
        ] {
            if value == Some(0) {
                report.add(&path.field(key), "must be at least 1");
            }
        }
        if let Some(n) = self.proxy_buffers_number {
            report.check(&path.field("proxy-buffers-number"), check_range(n, 1, 1024));
        }
        if let Some(list) = &self.proxy_next_upstream {
            report.check(
                &path.field("proxy-next-upstream"),
                check_next_upstream(list),
            );
        }

        if let Some(list) = &self.ssl_protocols {
            report.check(&path.field("ssl-protocols"), check_tls_protocols(list));
        }
        if let Some(ciphers) = &self.ssl_ciphers {
            report.check(&path.field("ssl-ciphers"), check_cipher_list(ciphers));
        }
        if let Some(age) = self.hsts_max_age {
            // Browsers cap max-age at about two years; ten is already absurd.
            report.check(
                &path.field("hsts-max-age"),
                check_range(age, 0, 10 * 31_536_000),
            );
        }
        if let Some(code) = self.http_redirect_code
            && ![301, 302, 307, 308].contains(&code)
        {
            report.add(
                &path.field("http-redirect-code"),
                format!("redirect code {code} is not one of 301, 302, 307, 308"),
            );
        }
        for (key, list) in [
            ("no-tls-redirect-locations", &self.no_tls_redirect_locations),
            ("no-auth-locations", &self.no_auth_locations),
        ] {
            let at = path.field(key);
            for (i, location) in list.iter().flatten().enumerate() {
                report.check(&at.index(i), check_uri_path(location));
            }
        }

        if let Some(header) = &self.forwarded_for_header {
            report.check(
                &path.field("forwarded-for-header"),
                check_header_name(header),
            );
        }
        if let Some(list) = &self.proxy_real_ip_cidr {
            check_cidrs(list, &path.field("proxy-real-ip-cidr"), report);
        }
        if let Some(map) = &self.proxy_set_headers {
            check_header_map(map, &path.field("proxy-set-headers"), report);
        }
        if let Some(map) = &self.add_headers {
            check_header_map(map, &path.field("add-headers"), report);
        }
        if let Some(names) = &self.global_allowed_response_headers {
            check_header_names(
                names,
                &path.field("global-allowed-response-headers"),
                report,
            );
        }

        if let Some(codes) = &self.custom_http_errors {
            let at = path.field("custom-http-errors");
            for (i, code) in codes.iter().enumerate() {
                // error_page only intercepts 300..599; 2xx and 1xx are never errors.
                report.check(&at.index(i), check_status(*code, 300..=599, "status code"));
            }
        }
        for (key, list) in [
            ("block-cidrs", &self.block_cidrs),
            ("whitelist-source-range", &self.whitelist_source_range),
            ("denylist-source-range", &self.denylist_source_range),
        ] {
            if let Some(list) = list {
                check_cidrs(list, &path.field(key), report);
            }
        }
        for (key, list) in [
            ("block-user-agents", &self.block_user_agents),
            ("block-referers", &self.block_referers),
        ] {
            let at = path.field(key);
            for (i, entry) in list.iter().flatten().enumerate() {
                report.check(&at.index(i), BlockPattern::parse(entry).map(|_| ()));
            }
        }
        for (key, code) in [
            ("limit-req-status-code", self.limit_req_status_code),
            ("limit-conn-status-code", self.limit_conn_status_code),
        ] {
            if let Some(code) = code {
                // A rejection must look like one: nginx accepts 400..599 here too.
                report.check(
                    &path.field(key),
                    check_status(code, 400..=599, "status code"),
                );
            }
        }

        if let Some(level) = self.gzip_level {
            report.check(&path.field("gzip-level"), check_range(level, 1, 9));
        }
        if let Some(types) = &self.gzip_types {
            let at = path.field("gzip-types");
            for (i, mime) in types.iter().enumerate() {
                report.check(&at.index(i), check_mime_type(mime));
            }
        }

        if let Some(url) = &self.global_auth_url {
            report.check(&path.field("global-auth-url"), check_url_template(url));
        }
        if let Some(url) = &self.global_auth_signin {
            report.check(&path.field("global-auth-signin"), check_url_template(url));
        }
        if let Some(param) = &self.global_auth_signin_redirect_param {
            report.check(
                &path.field("global-auth-signin-redirect-param"),
                check_param_name(param),
            );
        }
        if let Some(names) = &self.global_auth_response_headers {
            check_header_names(names, &path.field("global-auth-response-headers"), report);
        }
        if let Some(redirect) = &self.global_auth_request_redirect {
            report.check(
                &path.field("global-auth-request-redirect"),
                check_url_or_path(redirect),
            );
        }
        if let Some(key) = &self.global_auth_cache_key {
            report.check(&path.field("global-auth-cache-key"), check_cache_key(key));
        }
        if let Some(list) = &self.global_auth_cache_duration {
            list.validate_at(&path.field("global-auth-cache-duration"), report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::{CORPUS, MORE_SEEDS, assert_corpus};
    use serde_json::json;

    #[test]
    fn default_is_the_empty_object() {
        assert_eq!(
            serde_json::to_string(&GeneralConfig::default()).unwrap(),
            "{}"
        );
        let decoded: GeneralConfig = crate::json::decode(b"{}").unwrap();
        assert_eq!(decoded, GeneralConfig::default());
        assert!(decoded.validate().is_ok());
    }

    #[test]
    fn accessors_return_ingress_nginx_defaults() {
        let g = GeneralConfig::default();
        assert_eq!(g.load_balance(), LoadBalance::RoundRobin);
        assert_eq!(g.upstream_keepalive_connections(), 320);
        assert_eq!(g.upstream_keepalive_time(), Duration::from_secs(3600));
        assert_eq!(g.upstream_keepalive_timeout(), Duration::from_secs(60));
        assert_eq!(g.upstream_keepalive_requests(), 10_000);
        assert_eq!(g.keep_alive(), Duration::from_secs(75));
        assert_eq!(g.keep_alive_requests(), 1000);
        assert_eq!(g.client_header_timeout(), Duration::from_secs(60));
        assert_eq!(g.client_body_timeout(), Duration::from_secs(60));
        assert!(g.use_http2());
        assert_eq!(g.http2_max_concurrent_streams(), 128);
        assert_eq!(g.proxy_connect_timeout(), Duration::from_secs(5));
        assert_eq!(g.proxy_send_timeout(), Duration::from_secs(60));
        assert_eq!(g.proxy_read_timeout(), Duration::from_secs(60));
        assert_eq!(
            g.proxy_next_upstream(),
            [NextUpstream::Error, NextUpstream::Timeout]
        );
        assert_eq!(g.proxy_next_upstream_timeout(), Duration::ZERO);
        assert_eq!(g.proxy_next_upstream_tries(), 3);
        assert_eq!(g.proxy_body_size().bytes(), 1 << 20);
        assert_eq!(g.client_body_buffer_size().bytes(), 8 << 10);
        assert_eq!(g.proxy_buffer_size().bytes(), 4 << 10);
        assert_eq!(g.proxy_buffers_number(), 4);
        assert!(!g.proxy_buffering());
        assert!(g.proxy_request_buffering());
        assert_eq!(g.proxy_http_version(), ProxyHttpVersion::Http11);
        assert!(!g.proxy_add_original_uri_header());
        assert!(!g.allow_backend_server_header());
        assert_eq!(
            g.ssl_protocols(),
            [TlsProtocol::TlsV1_2, TlsProtocol::TlsV1_3]
        );
        assert!(
            g.ssl_ciphers()
                .starts_with("ECDHE-ECDSA-AES128-GCM-SHA256:")
        );
        assert!(g.hsts());
        assert_eq!(g.hsts_max_age(), Duration::from_secs(31_536_000));
        assert!(g.hsts_include_subdomains());
        assert!(!g.hsts_preload());
        assert!(g.ssl_redirect());
        assert!(!g.force_ssl_redirect());
        assert_eq!(g.http_redirect_code(), 308);
        assert!(!g.preserve_trailing_slash());
        assert_eq!(
            g.no_tls_redirect_locations(),
            ["/.well-known/acme-challenge"]
        );
        assert!(!g.use_forwarded_headers());
        assert!(!g.compute_full_forwarded_for());
        assert_eq!(g.forwarded_for_header(), "X-Forwarded-For");
        assert!(!g.enable_real_ip());
        assert_eq!(g.proxy_real_ip_cidr(), ["0.0.0.0/0"]);
        assert!(!g.use_proxy_protocol());
        assert_eq!(g.proxy_protocol_header_timeout(), Duration::from_secs(5));
        assert!(!g.server_tokens());
        assert!(g.generate_request_id());
        assert!(!g.enable_underscores_in_headers());
        assert!(g.ignore_invalid_headers());
        assert_eq!(g.proxy_set_headers(), None);
        assert_eq!(g.add_headers(), None);
        assert!(g.global_allowed_response_headers().is_empty());
        assert!(g.custom_http_errors().is_empty());
        assert!(g.block_cidrs().is_empty());
        assert!(g.block_user_agents().is_empty());
        assert!(g.block_referers().is_empty());
        assert_eq!(g.limit_req_status_code(), 503);
        assert_eq!(g.limit_conn_status_code(), 503);
        assert!(!g.use_gzip());
        assert_eq!(g.gzip_level(), 1);
        assert_eq!(g.gzip_min_length(), 256);
        assert_eq!(g.gzip_types().len(), DEFAULT_GZIP_TYPES.len());
        assert_eq!(g.global_auth(), None);
        assert_eq!(g.no_auth_locations(), ["/.well-known/acme-challenge"]);
        assert_eq!(g.worker_shutdown_timeout(), Duration::from_secs(240));
        assert!(!g.log_format_escape_json());
    }

    /// Every key set to a non-default value. (A string, not `json!`: the macro would
    /// need a higher recursion limit for this many keys.)
    fn full_example() -> serde_json::Value {
        serde_json::from_str(
            r#"{
            "controllerPodsCount": 2,
            "load-balance": "ewma",
            "upstream-keepalive-connections": 64,
            "upstream-keepalive-time": "30m",
            "upstream-keepalive-timeout": 30,
            "upstream-keepalive-requests": 500,
            "keep-alive": "90s",
            "keep-alive-requests": 200,
            "client-header-timeout": "10s",
            "client-body-timeout": "20s",
            "use-http2": false,
            "http2-max-concurrent-streams": 64,
            "proxy-connect-timeout": "3s",
            "proxy-send-timeout": 120,
            "proxy-read-timeout": "2m",
            "proxy-next-upstream": ["error", "timeout", "http_503"],
            "proxy-next-upstream-timeout": "10s",
            "proxy-next-upstream-tries": 2,
            "proxy-body-size": "20m",
            "client-body-buffer-size": "16k",
            "proxy-buffer-size": "8k",
            "proxy-buffers-number": 8,
            "proxy-buffering": true,
            "proxy-request-buffering": false,
            "proxy-http-version": "1.0",
            "proxy-add-original-uri-header": true,
            "allow-backend-server-header": true,
            "ssl-protocols": ["TLSv1.3"],
            "ssl-ciphers": "ECDHE-RSA-AES128-GCM-SHA256",
            "hsts": false,
            "hsts-max-age": 63072000,
            "hsts-include-subdomains": false,
            "hsts-preload": true,
            "ssl-redirect": false,
            "force-ssl-redirect": true,
            "http-redirect-code": 301,
            "preserve-trailing-slash": true,
            "no-tls-redirect-locations": ["/.well-known/acme-challenge", "/healthz"],
            "use-forwarded-headers": true,
            "compute-full-forwarded-for": true,
            "forwarded-for-header": "X-Real-Client",
            "enable-real-ip": true,
            "proxy-real-ip-cidr": ["10.0.0.0/8", "2001:db8::/32"],
            "use-proxy-protocol": true,
            "proxy-protocol-header-timeout": "2s",
            "server-tokens": true,
            "generate-request-id": false,
            "enable-underscores-in-headers": true,
            "ignore-invalid-headers": false,
            "proxy-set-headers": {"X-Team": "edge", "X-Request-Start": "t=${msec}"},
            "add-headers": {"X-Frame-Options": "DENY"},
            "global-allowed-response-headers": ["X-Frame-Options", "X-Custom"],
            "custom-http-errors": [404, 503],
            "block-cidrs": ["192.0.2.0/24", "198.51.100.7"],
            "block-user-agents": ["~*(curl|wget)", "BadBot/1.0", "~^Scanner"],
            "block-referers": ["~*casino"],
            "limit-req-status-code": 429,
            "limit-conn-status-code": 429,
            "use-gzip": true,
            "gzip-level": 6,
            "gzip-min-length": 1024,
            "gzip-types": ["text/html", "application/json", "*"],
            "global-auth-url": "https://auth.example.com/verify?host=$host",
            "global-auth-method": "GET",
            "global-auth-signin": "https://auth.example.com/start?rd=$request_uri",
            "global-auth-signin-redirect-param": "return_to",
            "global-auth-response-headers": ["X-User", "X-Email"],
            "global-auth-request-redirect": "https://app.example.com/",
            "global-auth-cache-key": "$remote_addr$http_authorization",
            "global-auth-cache-duration": [{"codes": [200], "duration": "1m"}],
            "global-auth-always-set-cookie": true,
            "no-auth-locations": ["/.well-known/acme-challenge", "/public"],
            "worker-shutdown-timeout": "300s",
            "log-format-escape-json": true
        }"#,
        )
        .unwrap()
    }

    #[test]
    fn full_example_round_trips_and_validates() {
        let json = full_example();
        let g: GeneralConfig = crate::json::decode(json.to_string().as_bytes()).unwrap();
        assert!(g.validate().is_ok(), "{:?}", g.validate());
        let written = serde_json::to_value(&g).unwrap();
        // Every key is written back; durations and sizes in canonical form.
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&written), keys(&json));
        assert_eq!(written["proxy-send-timeout"], json!("2m"));
        assert_eq!(written["worker-shutdown-timeout"], json!("5m"));
        assert_eq!(written["proxy-body-size"], json!("20m"));
        let back: GeneralConfig = serde_json::from_value(written).unwrap();
        assert_eq!(back, g);

        assert_eq!(g.load_balance(), LoadBalance::Ewma);
        assert_eq!(g.proxy_send_timeout(), Duration::from_secs(120));
        assert_eq!(g.upstream_keepalive_timeout(), Duration::from_secs(30));
        assert_eq!(
            g.no_auth_locations(),
            ["/.well-known/acme-challenge", "/public"]
        );
        let auth = g.global_auth().unwrap();
        assert_eq!(
            auth.url.as_deref(),
            Some("https://auth.example.com/verify?host=$host")
        );
        assert_eq!(auth.method, Some(HttpMethod::Get));
        assert_eq!(auth.signin_redirect_param(), "return_to");
        assert_eq!(auth.response_headers, ["X-User", "X-Email"]);
        assert!(auth.always_set_cookie);
        assert!(auth.validate().is_ok());
    }

    #[test]
    fn old_controllers_post_the_pod_count() {
        let g: GeneralConfig = crate::json::decode(br#"{"controllerPodsCount":3}"#).unwrap();
        assert_eq!(g.controller_pods_count, Some(3));
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"controllerPodsCount":3}"#
        );
        assert!(g.validate().is_ok());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = crate::json::decode::<GeneralConfig>(br#"{"use-gzip":true,"use-gzipp":true}"#)
            .unwrap_err();
        assert!(err.path == "$" || err.path == "$.use-gzipp", "{err}");
        assert!(err.message.contains("use-gzipp"), "{err}");
        // The Go field name is not an alias of the ConfigMap key.
        let err = crate::json::decode::<GeneralConfig>(br#"{"useGzip":true}"#).unwrap_err();
        assert!(err.message.contains("useGzip"), "{err}");
    }

    #[test]
    fn wrong_types_are_decode_errors_with_their_path() {
        for (body, path) in [
            (
                r#"{"upstream-keepalive-connections":"320"}"#,
                "$.upstream-keepalive-connections",
            ),
            (
                r#"{"proxy-read-timeout":"1 minute"}"#,
                "$.proxy-read-timeout",
            ),
            (r#"{"proxy-body-size":"1t"}"#, "$.proxy-body-size"),
            (r#"{"load-balance":"fastest"}"#, "$.load-balance"),
            (
                r#"{"proxy-next-upstream":["error","http_418"]}"#,
                "$.proxy-next-upstream[1]",
            ),
            (
                r#"{"global-auth-method":"GET;DELETE"}"#,
                "$.global-auth-method",
            ),
            (r#"{"controllerPodsCount":-1}"#, "$.controllerPodsCount"),
        ] {
            let err = crate::json::decode::<GeneralConfig>(body.as_bytes()).unwrap_err();
            assert_eq!(err.path, path, "{body}: {err}");
        }
    }

    #[test]
    fn invalid_values_are_reported_at_their_paths() {
        let g: GeneralConfig = serde_json::from_value(json!({
            "upstream-keepalive-timeout": 0,
            "keep-alive-requests": 0,
            "proxy-buffers-number": 5000,
            "proxy-next-upstream": ["off", "error"],
            "ssl-protocols": ["TLSv1", "TLSv1.1"],
            "ssl-ciphers": "AES128;rm",
            "http-redirect-code": 303,
            "no-tls-redirect-locations": ["/ok", "relative"],
            "forwarded-for-header": "X Forwarded",
            "proxy-real-ip-cidr": ["10.0.0.0/8", "10.0.0.0/99"],
            "proxy-set-headers": {"Transfer-Encoding": "chunked", "X-Ok": "a\r\nb"},
            "add-headers": {"X Bad": "1"},
            "global-allowed-response-headers": ["ok", "no good"],
            "custom-http-errors": [404, 200],
            "block-cidrs": ["300.0.0.1"],
            "block-user-agents": ["~*(unclosed", "fine"],
            "block-referers": ["~"],
            "limit-req-status-code": 200,
            "limit-conn-status-code": 600,
            "gzip-level": 10,
            "gzip-types": ["text/html", "html"],
            "global-auth-url": "http://a/;}location /x{return 200;}#",
            "global-auth-signin": "javascript:alert(1)",
            "global-auth-signin-redirect-param": "r&d",
            "global-auth-response-headers": ["X-User\n"],
            "global-auth-request-redirect": "../../etc/nginx/nginx.conf",
            "global-auth-cache-key": "$nope",
            "global-auth-cache-duration": [{"codes": [], "duration": "1m"}],
            "no-auth-locations": ["//evil.example.com"]
        }))
        .unwrap();
        let problems = g.validate().unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.upstream-keepalive-timeout",
                "$.keep-alive-requests",
                "$.proxy-buffers-number",
                "$.proxy-next-upstream",
                "$.ssl-protocols",
                "$.ssl-ciphers",
                "$.http-redirect-code",
                "$.no-tls-redirect-locations[1]",
                "$.no-auth-locations[0]",
                "$.forwarded-for-header",
                "$.proxy-real-ip-cidr[1]",
                "$.proxy-set-headers.Transfer-Encoding",
                "$.proxy-set-headers.X-Ok",
                r#"$.add-headers["X Bad"]"#,
                "$.global-allowed-response-headers[1]",
                "$.custom-http-errors[1]",
                "$.block-cidrs[0]",
                "$.block-user-agents[0]",
                "$.block-referers[0]",
                "$.limit-req-status-code",
                "$.limit-conn-status-code",
                "$.gzip-level",
                "$.gzip-types[1]",
                "$.global-auth-url",
                "$.global-auth-signin",
                "$.global-auth-signin-redirect-param",
                "$.global-auth-response-headers[0]",
                "$.global-auth-request-redirect",
                "$.global-auth-cache-key",
                "$.global-auth-cache-duration[0].codes",
            ],
            "{problems}"
        );
    }

    #[test]
    fn block_patterns() {
        assert_eq!(
            BlockPattern::parse("~*(curl|wget)").unwrap(),
            BlockPattern::Regex {
                pattern: "(curl|wget)".into(),
                case_insensitive: true
            }
        );
        assert_eq!(
            BlockPattern::parse("~^Bot").unwrap(),
            BlockPattern::Regex {
                pattern: "^Bot".into(),
                case_insensitive: false
            }
        );
        assert_eq!(
            BlockPattern::parse("Mozilla/4.0 (compatible)").unwrap(),
            BlockPattern::Exact("Mozilla/4.0 (compatible)".into())
        );
        for bad in ["", "~", "~*", "~(?=x)", "a\r\nb"] {
            assert!(BlockPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Part B §9 through the URL-, method-, header- and CIDR-typed keys.
    #[test]
    fn hostile_corpus_is_rejected() {
        let all: Vec<&str> = CORPUS.iter().chain(MORE_SEEDS).copied().collect();
        for key in [
            "global-auth-url",
            "global-auth-signin",
            "global-auth-request-redirect",
        ] {
            assert_corpus::<GeneralConfig>(key, &all, &[], |s| json!({key: s}));
        }
        for key in [
            "no-tls-redirect-locations",
            "no-auth-locations",
            "proxy-real-ip-cidr",
            "block-cidrs",
            "whitelist-source-range",
            "denylist-source-range",
        ] {
            assert_corpus::<GeneralConfig>(key, &all, &[], |s| json!({key: [s]}));
        }
        assert_corpus::<GeneralConfig>(
            "global-auth-method",
            &all,
            &[],
            |s| json!({"global-auth-method": s}),
        );
        // Header names: `XGETX` is a valid token.
        let token = &["XGETX"];
        assert_corpus::<GeneralConfig>(
            "forwarded-for-header",
            CORPUS,
            token,
            |s| json!({"forwarded-for-header": s}),
        );
        for key in [
            "global-allowed-response-headers",
            "global-auth-response-headers",
        ] {
            assert_corpus::<GeneralConfig>(key, CORPUS, token, |s| json!({key: [s]}));
        }
        for key in ["proxy-set-headers", "add-headers"] {
            assert_corpus::<GeneralConfig>(key, CORPUS, token, |s| json!({key: {s: "v"}}));
        }
        assert_corpus::<GeneralConfig>("ssl-ciphers", CORPUS, token, |s| json!({"ssl-ciphers": s}));
    }
}
