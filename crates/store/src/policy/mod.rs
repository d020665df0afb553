//! Request policies, compiled at apply time into the form the proxy evaluates per
//! request (`gangplank_proxy::policy`): CIDR sets, parsed htpasswd tables, CORS origin
//! matchers, rewrite and redirect templates, precomputed header values, rate limit
//! parameters.
//!
//! Every [`CompiledLocation`](crate::CompiledLocation) carries an
//! `Arc<CompiledPolicies>` built from its `Location`, its `Server`, the
//! [`GeneralConfig`] and the certificate table; the ConfigMap-wide parts
//! ([`GlobalPolicies`]) are compiled once per route table and shared.
//!
//! Compilation never fails an apply. Whatever cannot be compiled makes the location
//! answer **503** with a reason ([`CompiledPolicies::unavailable`]), so nothing is ever
//! served unprotected (fail closed, Part A.3).
//!
//! External authentication (`auth-url`, ConfigMap `global-auth-*`) compiles into
//! [`ExternalAuth`] ([`extauth`]), digest authentication into [`DigestAuth`],
//! client-certificate authentication (`auth-tls-*`) into [`ClientAuth`].
//!
//! `custom-http-errors`, `default-backend` and `disable-proxy-intercept-errors`
//! compile into [`CustomErrors`]; `mirror-*` into a [`MirrorTarget`].
//!
//! Request rate and connection limits (`limit-rps`, `limit-rpm`, `limit-connections`)
//! compile into [`RateLimits`]; the proxy keeps their state per worker.
//!
//! How the upstream is reached (`backend-protocol` HTTP, HTTPS, AUTO_HTTP, GRPC,
//! GRPCS; `proxy-ssl-*` as a rustls client configuration; `proxy-http-version`;
//! `proxy-next-upstream-timeout`) compiles into [`UpstreamSettings`] ([`upstream`]);
//! TLS material that does not parse makes the location answer 503. `FCGI` is not
//! spoken: such a location answers **502** rather than sending HTTP to a FastCGI
//! upstream. Settings that cannot work (credentials that can never match, for
//! example) are reported in one log line per compiled configuration.
//!
//! What happens to responses (`use-gzip`, `limit-rate`, `proxy-cookie-*`,
//! `proxy-redirect-*`), the `Connection` header sent upstream
//! (`connection-proxy-header`) and `use-port-in-redirects` compile into
//! [`ResponsePolicies`] ([`response`]).

mod access;
mod auth;
mod client_auth;
mod cors;
mod digest;
mod errors;
pub mod extauth;
mod headers;
mod limit;
mod mirror;
mod realip;
mod redirect;
pub mod response;
mod rewrite;
mod template;
pub mod upstream;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use gangplank_model::policy::{AuthType, BackendProtocol, Satisfy};
use gangplank_model::{GeneralConfig, Location, Server};
use http::{HeaderName, HeaderValue};

pub use access::{CidrSet, HeaderBlock};
pub use auth::{BasicAuth, Credential};
pub use client_auth::ClientAuth;
pub use cors::{Cors, OriginMatcher};
pub use digest::DigestAuth;
pub use errors::{CustomErrors, DEFAULT_BACKEND};
pub use extauth::ExternalAuth;
pub use headers::{HeaderTemplate, RequestHeader};
pub use limit::{RateLimits, RequestRate};
pub use mirror::MirrorTarget;
pub use realip::RealIp;
pub use redirect::{LocationRedirect, SslRedirect, WwwRedirect, www_twin};
pub use response::{CookieRewrites, Gzip, GzipTypes, LimitRate, RedirectRewrite, ResponsePolicies};
pub use rewrite::RewriteRule;
pub use template::Template;
pub use upstream::{UpstreamProtocol, UpstreamSettings, UpstreamTls};

use crate::certificates::CertificateTable;

/// The ConfigMap-wide policies, shared by every location of a route table.
#[derive(Debug, Default)]
pub struct GlobalPolicies {
    /// Real client address from forwarded headers.
    pub real_ip: Option<RealIp>,
    /// `block-cidrs`: 403.
    pub block_cidrs: Option<CidrSet>,
    /// `block-user-agents`: 403.
    pub block_user_agents: Option<HeaderBlock>,
    /// `block-referers`: 403.
    pub block_referers: Option<HeaderBlock>,
    /// `Strict-Transport-Security` for HTTPS responses of hosts with a certificate.
    pub hsts: Option<HeaderValue>,
    /// `proxy-set-headers`.
    pub proxy_set_headers: Vec<RequestHeader>,
    /// `use-gzip`: response compression.
    pub gzip: Option<Gzip>,
    /// Set when a global policy could not be compiled: every location answers 503.
    pub broken: Option<String>,
    /// Compile-time warnings (unusable `proxy-set-headers` values...).
    pub warnings: Vec<String>,
}

impl GlobalPolicies {
    /// Compiles the global parts of `general`.
    pub fn compile(general: &GeneralConfig) -> GlobalPolicies {
        let mut global = GlobalPolicies {
            hsts: redirect::hsts_value(general),
            gzip: Gzip::compile(general),
            ..GlobalPolicies::default()
        };
        let mut problems = Vec::new();
        match RealIp::compile(general) {
            Ok(real_ip) => global.real_ip = real_ip,
            Err(e) => problems.push(e),
        }
        if !general.block_cidrs().is_empty() {
            match CidrSet::parse(general.block_cidrs()) {
                Ok(set) => global.block_cidrs = Some(set),
                Err(e) => problems.push(format!("block-cidrs: {e}")),
            }
        }
        match HeaderBlock::compile(general.block_user_agents()) {
            Ok(block) => global.block_user_agents = block,
            Err(e) => problems.push(format!("block-user-agents: {e}")),
        }
        match HeaderBlock::compile(general.block_referers()) {
            Ok(block) => global.block_referers = block,
            Err(e) => problems.push(format!("block-referers: {e}")),
        }
        match headers::proxy_set_headers(general.proxy_set_headers(), &mut global.warnings) {
            Ok(list) => global.proxy_set_headers = list,
            Err(e) => problems.push(e),
        }
        if let Err(e) = headers::response_headers(general.add_headers(), &BTreeMap::new()) {
            problems.push(e);
        }
        if !problems.is_empty() {
            global.broken = Some(format!(
                "the global configuration cannot be enforced: {}",
                problems.join("; ")
            ));
        }
        global
    }

    /// True when no global policy applies to requests (HSTS aside, which only
    /// decorates HTTPS responses of hosts with a certificate).
    fn is_empty(&self) -> bool {
        self.real_ip.is_none()
            && self.block_cidrs.is_none()
            && self.block_user_agents.is_none()
            && self.block_referers.is_none()
            && self.proxy_set_headers.is_empty()
            && self.broken.is_none()
    }
}

/// What a route table's compilation needs besides the servers, and what it reports.
#[derive(Debug)]
pub struct PolicyContext<'a> {
    general: &'a GeneralConfig,
    certificates: &'a CertificateTable,
    any_certificate: bool,
    global: Arc<GlobalPolicies>,
    /// Setting -> locations where it is not enforced (or cannot work), for the summary.
    notes: BTreeMap<String, Vec<String>>,
}

impl<'a> PolicyContext<'a> {
    /// A context for compiling the locations of one route table.
    pub fn new(
        general: &'a GeneralConfig,
        certificates: &'a CertificateTable,
    ) -> PolicyContext<'a> {
        let global = Arc::new(GlobalPolicies::compile(general));
        let mut context = PolicyContext {
            general,
            certificates,
            any_certificate: certificates.iter().next().is_some(),
            global: global.clone(),
            notes: BTreeMap::new(),
        };
        for warning in &global.warnings {
            context.note(warning, "(ConfigMap)");
        }
        context
    }

    /// The ConfigMap-wide policies shared by the locations compiled here.
    pub fn global(&self) -> Arc<GlobalPolicies> {
        self.global.clone()
    }

    fn note(&mut self, what: &str, location: &str) {
        self.notes
            .entry(what.to_owned())
            .or_default()
            .push(location.to_owned());
    }

    /// Compiles the policies of `location` of `server`.
    pub fn compile(&mut self, location: &Location, server: &Server) -> Arc<CompiledPolicies> {
        let name = format!("{}{}", server.hostname, location.path);
        let mut warnings = Vec::new();
        let policies = CompiledPolicies::compile(location, server, self, &name, &mut warnings);
        for warning in warnings {
            self.note(&warning, &name);
        }
        if let Some(reason) = &policies.unavailable {
            self.note(&format!("answers 503: {reason}"), &name);
        }
        Arc::new(policies)
    }

    /// The policies of the `www.` twin of a server with `from-to-www-redirect`: every
    /// request is redirected to `target_host` (global access checks still apply).
    pub fn www_redirect(&self, target_host: &str) -> Arc<CompiledPolicies> {
        let mut policies = CompiledPolicies::base(self.global.clone(), target_host.to_owned());
        policies.www_redirect = Some(WwwRedirect {
            host: target_host.to_owned(),
            code: redirect::redirect_code(self.general.http_redirect_code()),
        });
        policies.unavailable = self.global.broken.clone();
        policies.empty = false;
        Arc::new(policies)
    }

    /// Logs, in one line, the settings that are not enforced or cannot work, with up
    /// to three locations each.
    pub fn log_summary(&self) {
        if self.notes.is_empty() {
            return;
        }
        let mut text = String::new();
        for (what, locations) in &self.notes {
            let shown: Vec<&str> = locations.iter().take(3).map(String::as_str).collect();
            let more = locations.len().saturating_sub(shown.len());
            let _ = write!(text, "[{what}: {}", shown.join(", "));
            if more > 0 {
                let _ = write!(text, " and {more} more");
            }
            text.push_str("] ");
        }
        tracing::warn!(summary = %text.trim_end(), "request policies: settings not enforced or unusable in this configuration");
    }
}

/// A `backend-protocol` the proxy does not speak (`FCGI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedProtocol {
    /// The protocol.
    pub protocol: BackendProtocol,
    /// Only HTTPS clients are affected (no protocol is in that case today).
    pub https_clients_only: bool,
}

/// A location's policies, ready for requests.
#[derive(Debug)]
pub struct CompiledPolicies {
    empty: bool,
    /// `host` + `path`, for logs.
    pub name: String,
    /// The ConfigMap-wide policies.
    pub global: Arc<GlobalPolicies>,
    /// Set when the location must answer 503 (fail closed): the reason.
    pub unavailable: Option<String>,
    /// Set when the upstream protocol cannot be spoken: 502.
    pub unsupported_protocol: Option<UnsupportedProtocol>,
    /// How the upstream is reached (protocol, TLS client configuration, HTTP
    /// version, retry time limit). Read by the proxy for every request, whatever
    /// [`CompiledPolicies::is_empty`] says.
    pub upstream: UpstreamSettings,
    /// `custom-http-errors` (the location's or the ConfigMap's), `default-backend`,
    /// `disable-proxy-intercept-errors`. Read by the proxy for every request, whatever
    /// [`CompiledPolicies::is_empty`] says.
    pub errors: Option<Arc<CustomErrors>>,
    /// `mirror-target`, `mirror-host`, `mirror-request-body`. Read by the proxy for
    /// every request, whatever [`CompiledPolicies::is_empty`] says.
    pub mirror: Option<Arc<MirrorTarget>>,
    /// `denylist-source-range`.
    pub denylist: Option<CidrSet>,
    /// `allowlist-source-range` / `whitelist-source-range`.
    pub allowlist: Option<CidrSet>,
    /// `satisfy: any` with both an address list and authentication (basic, digest,
    /// external): either one suffices.
    pub satisfy_any: bool,
    /// HTTPS redirect.
    pub ssl_redirect: Option<SslRedirect>,
    /// The server's name (lowercase), for the certificate check.
    pub hostname: String,
    /// The server's name has a certificate of its own.
    pub hostname_has_certificate: bool,
    /// `permanent-redirect` / `temporal-redirect`.
    pub redirect: Option<LocationRedirect>,
    /// `app-root`.
    pub app_root: Option<String>,
    /// `from-to-www-redirect` twin host.
    pub www_redirect: Option<WwwRedirect>,
    /// `auth-type: basic`.
    pub basic_auth: Option<BasicAuth>,
    /// `auth-type: digest`.
    pub digest_auth: Option<DigestAuth>,
    /// `auth-url` or the ConfigMap's `global-auth-url`.
    pub external_auth: Option<Box<ExternalAuth>>,
    /// `auth-tls-*`: the client certificate this location requires.
    pub client_auth: Option<Arc<ClientAuth>>,
    /// `enable-cors`.
    pub cors: Option<Cors>,
    /// `rewrite-target`.
    pub rewrite: Option<RewriteRule>,
    /// `proxy-body-size` in bytes; `None` is unlimited.
    pub body_limit: Option<u64>,
    /// `limit-rps`, `limit-rpm`, `limit-connections`.
    pub rate_limits: Option<RateLimits>,
    /// `add-headers` and `custom-headers`.
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// What happens to the upstream's response (`limit-rate`, `proxy-cookie-*`,
    /// `proxy-redirect-*`), the `Connection` header sent upstream and
    /// `use-port-in-redirects`. Read by the proxy for every proxied request, whatever
    /// [`CompiledPolicies::is_empty`] says.
    pub response: ResponsePolicies,
    /// HSTS may apply (HSTS on and some certificate configured).
    pub hsts_possible: bool,
}

impl CompiledPolicies {
    /// No policy at all (tests, synthetic locations).
    pub fn none() -> CompiledPolicies {
        CompiledPolicies::base(Arc::new(GlobalPolicies::default()), String::new())
    }

    fn base(global: Arc<GlobalPolicies>, name: String) -> CompiledPolicies {
        CompiledPolicies {
            empty: true,
            name,
            global,
            unavailable: None,
            unsupported_protocol: None,
            upstream: UpstreamSettings::default(),
            errors: None,
            mirror: None,
            denylist: None,
            allowlist: None,
            satisfy_any: false,
            ssl_redirect: None,
            hostname: String::new(),
            hostname_has_certificate: false,
            redirect: None,
            app_root: None,
            www_redirect: None,
            basic_auth: None,
            digest_auth: None,
            external_auth: None,
            client_auth: None,
            cors: None,
            rewrite: None,
            body_limit: None,
            rate_limits: None,
            response_headers: Vec::new(),
            response: ResponsePolicies::default(),
            hsts_possible: false,
        }
    }

    /// True when nothing but the body size limit applies: the proxy skips every other
    /// check.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    fn compile(
        location: &Location,
        server: &Server,
        ctx: &mut PolicyContext<'_>,
        name: &str,
        warnings: &mut Vec<String>,
    ) -> CompiledPolicies {
        let general = ctx.general;
        let mut p = CompiledPolicies::base(ctx.global.clone(), name.to_owned());
        let mut problems: Vec<String> = Vec::new();

        // Client certificates (`auth-tls-*`, the location's or else the server's).
        let certificate_auth = if location.certificate_auth.is_enabled() {
            &location.certificate_auth
        } else {
            &server.certificate_auth
        };
        match ClientAuth::compile(certificate_auth) {
            Ok(auth) => p.client_auth = auth,
            Err(e) => problems.push(e),
        }

        match upstream::compile(location, general, warnings) {
            Ok(settings) => p.upstream = settings,
            Err(e) => problems.push(e),
        }
        p.errors = CustomErrors::compile(location, general).map(Arc::new);
        match mirror::compile(location, warnings) {
            Ok(m) => p.mirror = m.map(Arc::new),
            Err(e) => problems.push(e),
        }
        if location.backend_protocol == BackendProtocol::Fcgi {
            warnings.push("backend-protocol FCGI: FastCGI is not supported, answers 502".into());
            p.unsupported_protocol = Some(UnsupportedProtocol {
                protocol: BackendProtocol::Fcgi,
                https_clients_only: false,
            });
        }

        // A location without its own list gets the ConfigMap's (ingress-nginx's
        // `whitelist-source-range` / `denylist-source-range` keys).
        match location.denylist.networks() {
            Ok(list) if !list.is_empty() => p.denylist = Some(CidrSet::from_cidrs(list)),
            Ok(_) if !general.denylist_source_range().is_empty() => {
                match CidrSet::parse(general.denylist_source_range()) {
                    Ok(set) => p.denylist = Some(set),
                    Err(e) => problems.push(format!("ConfigMap denylist-source-range: {e}")),
                }
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("denylist-source-range: {e}")),
        }
        match location.allowlist.networks() {
            Ok(list) if !list.is_empty() => p.allowlist = Some(CidrSet::from_cidrs(list)),
            Ok(_) if !general.whitelist_source_range().is_empty() => {
                match CidrSet::parse(general.whitelist_source_range()) {
                    Ok(set) => p.allowlist = Some(set),
                    Err(e) => problems.push(format!("ConfigMap whitelist-source-range: {e}")),
                }
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("allowlist-source-range: {e}")),
        }

        p.hostname = server.hostname.to_ascii_lowercase();
        p.hostname_has_certificate =
            p.hostname != "_" && ctx.certificates.has_own_certificate(&p.hostname);
        p.ssl_redirect = SslRedirect::compile(location, general)
            // Without any certificate only a forced redirect can happen.
            .filter(|r| r.force || ctx.any_certificate);
        p.hsts_possible = ctx.global.hsts.is_some() && ctx.any_certificate;

        match LocationRedirect::compile(location) {
            Ok(r) => p.redirect = r,
            Err(e) => problems.push(e),
        }
        p.app_root = location.redirect.app_root.clone();

        if location.basic_digest_auth.auth_type == Some(AuthType::Basic) {
            match BasicAuth::compile(&location.basic_digest_auth, warnings) {
                Ok(auth) => p.basic_auth = Some(auth),
                Err(e) => problems.push(e),
            }
        }
        if location.basic_digest_auth.auth_type == Some(AuthType::Digest) {
            match DigestAuth::compile(&location.basic_digest_auth) {
                Ok(auth) => p.digest_auth = Some(auth),
                Err(e) => problems.push(e),
            }
        }
        match extauth::compile(location, general, warnings) {
            Ok(auth) => p.external_auth = auth.map(Box::new),
            Err(e) => problems.push(e),
        }
        p.satisfy_any = location.satisfy == Satisfy::Any
            && (p.basic_auth.is_some() || p.digest_auth.is_some() || p.external_auth.is_some())
            && (p.denylist.is_some() || p.allowlist.is_some());

        match Cors::compile(&location.cors_config) {
            Ok(cors) => p.cors = cors,
            Err(e) => problems.push(e),
        }
        match RewriteRule::compile(location) {
            Ok(rule) => p.rewrite = rule,
            Err(e) => problems.push(e),
        }
        let body_limit = location
            .proxy
            .body_size
            .unwrap_or_else(|| general.proxy_body_size())
            .bytes();
        p.body_limit = (body_limit > 0).then_some(body_limit);
        match RateLimits::compile(location, server, general) {
            Ok(limits) => p.rate_limits = limits,
            Err(e) => problems.push(e),
        }
        match headers::response_headers(general.add_headers(), &location.custom_headers.headers) {
            Ok(list) => p.response_headers = list,
            Err(e) => problems.push(e),
        }
        match ResponsePolicies::compile(location) {
            Ok(response) => p.response = response,
            Err(e) => problems.push(e),
        }

        if let Some(broken) = &ctx.global.broken {
            problems.push(broken.clone());
        }
        if !problems.is_empty() {
            p.unavailable = Some(format!(
                "its policies cannot be compiled: {}",
                problems.join("; ")
            ));
        }

        p.empty = p.unavailable.is_none()
            && p.unsupported_protocol.is_none()
            && p.global.is_empty()
            && p.denylist.is_none()
            && p.allowlist.is_none()
            && p.ssl_redirect.is_none()
            && p.redirect.is_none()
            && p.app_root.is_none()
            && p.basic_auth.is_none()
            && p.digest_auth.is_none()
            && p.external_auth.is_none()
            && p.client_auth.is_none()
            && p.cors.is_none()
            && p.rewrite.is_none()
            && p.rate_limits.is_none()
            && p.response_headers.is_empty()
            && !p.hsts_possible;
        p
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
