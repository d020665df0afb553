//! Access control: ConfigMap `block-cidrs`, `block-user-agents`, `block-referers`
//! (403, always, for every location), then the location's `denylist-source-range` and
//! `allowlist-source-range` (403).
//!
//! ingress-nginx renders the lists as `deny <denylist>; allow <allowlist>; deny all;`
//! and so the denylist is checked first. With `satisfy any` and basic auth, passing the
//! address check is enough and failing it is not final: the credentials may still
//! admit the request (nginx's `satisfy any`).
//!
//! Deliberate difference: the ConfigMap blocks always apply. In nginx, `block-cidrs`
//! are `deny` rules of the `http` block, which a location's own allow/deny rules
//! replace, and which `satisfy any` lets valid credentials override.

use std::net::IpAddr;

use gangplank_store::CompiledPolicies;
use gangplank_store::policy::GlobalPolicies;
use http::{HeaderMap, header};

/// True when the ConfigMap blocks this request (client address, `User-Agent`,
/// `Referer`).
pub fn blocked(global: &GlobalPolicies, ip: IpAddr, headers: &HeaderMap) -> bool {
    if global
        .block_cidrs
        .as_ref()
        .is_some_and(|set| set.contains(ip))
    {
        return true;
    }
    let value = |name| headers.get(name).map_or(&b""[..], |v| v.as_bytes());
    if let Some(block) = &global.block_user_agents
        && block.matches(value(header::USER_AGENT))
    {
        return true;
    }
    if let Some(block) = &global.block_referers
        && block.matches(value(header::REFERER))
    {
        return true;
    }
    false
}

/// True when the location's address lists let `ip` in (denylist first).
pub fn lists_admit(policies: &CompiledPolicies, ip: IpAddr) -> bool {
    if policies
        .denylist
        .as_ref()
        .is_some_and(|set| set.contains(ip))
    {
        return false;
    }
    policies
        .allowlist
        .as_ref()
        .is_none_or(|set| set.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::{GeneralConfig, Location, Server};
    use gangplank_store::CertificateTable;
    use gangplank_store::policy::PolicyContext;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn global_blocks() {
        let general: GeneralConfig = serde_json::from_str(
            r#"{"block-cidrs": ["192.0.2.0/24", "2001:db8::/32"], "block-user-agents": ["~*bot", "curl/7.0"], "block-referers": ["~^https?://spam\\."]}"#,
        )
        .unwrap();
        let global = GlobalPolicies::compile(&general);
        let none = HeaderMap::new();
        assert!(blocked(&global, ip("192.0.2.200"), &none));
        assert!(blocked(&global, ip("2001:db8::5"), &none));
        assert!(!blocked(&global, ip("198.51.100.1"), &none));
        let mut h = HeaderMap::new();
        h.insert("user-agent", HeaderValue::from_static("GoogleBot/2.1"));
        assert!(blocked(&global, ip("198.51.100.1"), &h));
        h.insert("user-agent", HeaderValue::from_static("CURL/7.0"));
        assert!(blocked(&global, ip("198.51.100.1"), &h));
        h.insert("user-agent", HeaderValue::from_static("Mozilla/5.0"));
        h.insert("referer", HeaderValue::from_static("https://spam.example/"));
        assert!(blocked(&global, ip("198.51.100.1"), &h));
        h.insert("referer", HeaderValue::from_static("https://ok.example/"));
        assert!(!blocked(&global, ip("198.51.100.1"), &h));
    }

    #[test]
    fn deny_before_allow() {
        let general = GeneralConfig::default();
        let certificates = CertificateTable::default();
        let mut ctx = PolicyContext::new(&general, &certificates);
        let mut location = Location {
            path: "/".into(),
            backend: "b".into(),
            ..Location::default()
        };
        location.allowlist.cidrs = vec!["10.0.0.0/8".into(), "::1".into()];
        location.denylist.cidrs = vec!["10.6.0.0/16".into()];
        let p = ctx.compile(&location, &Server::default());
        assert!(lists_admit(&p, ip("10.1.2.3")));
        assert!(lists_admit(&p, ip("::1")));
        assert!(lists_admit(&p, ip("::ffff:10.1.2.3")));
        assert!(!lists_admit(&p, ip("10.6.0.1")));
        assert!(!lists_admit(&p, ip("11.0.0.1")));
        location.allowlist.cidrs.clear();
        let p = ctx.compile(&location, &Server::default());
        assert!(lists_admit(&p, ip("11.0.0.1")));
        assert!(!lists_admit(&p, ip("10.6.0.1")));
    }
}
