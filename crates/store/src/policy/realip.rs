//! The real client address: ConfigMap `use-forwarded-headers`, `enable-real-ip`,
//! `forwarded-for-header`, `compute-full-forwarded-for`, `proxy-real-ip-cidr`.
//!
//! ingress-nginx turns either of `use-forwarded-headers` or `enable-real-ip` into
//! nginx's realip module: `real_ip_header <forwarded-for-header>; real_ip_recursive on;
//! set_real_ip_from <proxy-real-ip-cidr>` (default `0.0.0.0/0`, so every IPv4 peer is
//! trusted and no IPv6 peer is). The proxy evaluates it the same way: only when the
//! connection's peer is trusted, the header's addresses are read right to left,
//! skipping trusted ones; the first untrusted address is the client (all trusted: the
//! leftmost). An unparsable entry leaves the peer as the client.
//!
//! `use-proxy-protocol` turns the realip module on as well, with nginx's
//! `real_ip_header proxy_protocol`: the client address comes from the PROXY protocol
//! header of a connection whose peer is in `proxy-real-ip-cidr` (the listener applies
//! it, once per connection), and the forwarded-for header is not read for the address.
//!
//! `use-forwarded-headers` also trusts `X-Forwarded-Proto`, `-Host` and `-Port`
//! (ingress-nginx's `pass_access_scheme`, `best_http_host`, `pass_port`).
//! **Deliberate difference:** ingress-nginx trusts those three from any peer; Gangplank
//! only from the peers trusted for the address (`proxy-real-ip-cidr`), and
//! `compute-full-forwarded-for` appends the peer to the incoming `X-Forwarded-For` only
//! for trusted peers (an untrusted peer's chain is never forwarded as if it were ours).

use gangplank_model::GeneralConfig;
use http::HeaderName;

use super::access::CidrSet;

/// How the client address and scheme are taken from forwarded headers.
#[derive(Debug, Clone)]
pub struct RealIp {
    /// `forwarded-for-header`, lowercased.
    pub header: HeaderName,
    /// `proxy-real-ip-cidr`: peers allowed to set the client address.
    pub trusted: CidrSet,
    /// `use-forwarded-headers`: also trust `X-Forwarded-Proto`, `-Host`, `-Port`.
    pub forwarded_headers: bool,
    /// `use-forwarded-headers` and `compute-full-forwarded-for`: send upstream the
    /// incoming `X-Forwarded-For` with the peer appended.
    pub full_forwarded_for: bool,
    /// `use-proxy-protocol`: the address comes from the PROXY protocol header (set by
    /// the listener), never from the forwarded-for header.
    pub proxy_protocol: bool,
}

impl RealIp {
    /// The policy of `general`; `Ok(None)` when none of `use-forwarded-headers`,
    /// `enable-real-ip` and `use-proxy-protocol` is on.
    pub fn compile(general: &GeneralConfig) -> Result<Option<RealIp>, String> {
        let forwarded_headers = general.use_forwarded_headers();
        let proxy_protocol = general.use_proxy_protocol();
        if !(forwarded_headers || general.enable_real_ip() || proxy_protocol) {
            return Ok(None);
        }
        let name = general.forwarded_for_header();
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("forwarded-for-header {name:?} is not a header name"))?;
        let trusted = CidrSet::parse(&general.proxy_real_ip_cidr())
            .map_err(|e| format!("proxy-real-ip-cidr: {e}"))?;
        Ok(Some(RealIp {
            header,
            trusted,
            forwarded_headers,
            full_forwarded_for: forwarded_headers && general.compute_full_forwarded_for(),
            proxy_protocol,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_defaults_when_on() {
        assert!(
            RealIp::compile(&GeneralConfig::default())
                .unwrap()
                .is_none()
        );
        let general: GeneralConfig =
            serde_json::from_str(r#"{"use-forwarded-headers": true}"#).unwrap();
        let real = RealIp::compile(&general).unwrap().unwrap();
        assert_eq!(real.header, "x-forwarded-for");
        assert!(real.trusted.contains("203.0.113.9".parse().unwrap()));
        assert!(!real.trusted.contains("2001:db8::1".parse().unwrap()));
        assert!(real.forwarded_headers);
        assert!(!real.full_forwarded_for);
        let general: GeneralConfig = serde_json::from_str(
            r#"{"enable-real-ip": true, "forwarded-for-header": "CF-Connecting-IP", "proxy-real-ip-cidr": ["10.0.0.0/8"], "compute-full-forwarded-for": true}"#,
        )
        .unwrap();
        let real = RealIp::compile(&general).unwrap().unwrap();
        assert_eq!(real.header, "cf-connecting-ip");
        assert!(!real.forwarded_headers);
        assert!(!real.full_forwarded_for, "needs use-forwarded-headers too");
        assert!(!real.trusted.contains("192.0.2.1".parse().unwrap()));
        assert!(!real.proxy_protocol);
        let general: GeneralConfig =
            serde_json::from_str(r#"{"use-proxy-protocol": true}"#).unwrap();
        let real = RealIp::compile(&general).unwrap().unwrap();
        assert!(real.proxy_protocol && !real.forwarded_headers);
        assert!(real.trusted.contains("203.0.113.9".parse().unwrap()));
    }
}
