//! The real client address and the trusted forwarded headers (see
//! [`gangplank_store::policy::RealIp`] for the settings and ingress-nginx's semantics).
//!
//! nginx's realip with `real_ip_recursive on`: when the peer is trusted, the addresses
//! of the forwarded-for header (all its fields, last first, each read right to left)
//! are skipped while trusted; the first untrusted one is the client; if all are
//! trusted, the leftmost is. An entry that is not an IP address stops the search and
//! the peer stays the client.

use std::net::{IpAddr, SocketAddr};

use gangplank_store::policy::RealIp;
use http::{HeaderMap, HeaderValue};

use crate::headers::{ClientInfo, Forwarded};

/// Applies `real` to the request's `client`.
///
/// With `use-proxy-protocol` the listener already set the address from the PROXY
/// header (nginx's `real_ip_header proxy_protocol`): the forwarded-for header is not
/// read, and trust is decided on the TCP peer ([`ClientInfo::peer`]).
pub fn apply(real: &RealIp, headers: &HeaderMap, client: &mut ClientInfo) {
    let peer = client.peer;
    if !real.trusted.contains(peer) {
        return;
    }
    let mut forwarded = Forwarded::default();
    if !real.proxy_protocol
        && let Some(ip) = real_client(real, headers)
        && ip != peer
        && let Ok(text) = HeaderValue::from_str(&ip.to_string())
    {
        client.remote = SocketAddr::new(ip, client.remote.port());
        client.remote_ip = text;
        forwarded.peer = Some(peer);
    }
    if real.forwarded_headers {
        forwarded.proto = headers
            .get("x-forwarded-proto")
            .filter(|v| {
                v.as_bytes().eq_ignore_ascii_case(b"https")
                    || v.as_bytes().eq_ignore_ascii_case(b"http")
            })
            .map(|v| {
                HeaderValue::from_bytes(&v.as_bytes().to_ascii_lowercase()).unwrap_or(v.clone())
            });
        forwarded.port = headers
            .get("x-forwarded-port")
            .filter(|v| {
                v.to_str()
                    .is_ok_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
            })
            .cloned();
        forwarded.host = headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .and_then(|h| HeaderValue::from_str(h).ok());
        if real.full_forwarded_for {
            let mut chain = String::new();
            for value in headers.get_all("x-forwarded-for") {
                if let Ok(text) = value.to_str() {
                    if !chain.is_empty() {
                        chain.push_str(", ");
                    }
                    chain.push_str(text);
                }
            }
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            chain.push_str(&peer.to_string());
            forwarded.full_for = HeaderValue::from_str(&chain).ok();
        }
    }
    if forwarded != Forwarded::default() {
        client.forwarded = Some(Box::new(forwarded));
    }
}

/// The client address the forwarded-for header names, if any.
fn real_client(real: &RealIp, headers: &HeaderMap) -> Option<IpAddr> {
    let mut leftmost = None;
    for value in headers.get_all(&real.header).iter().rev() {
        let text = value.to_str().ok()?;
        for item in text.rsplit(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let bare = item
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(item);
            let ip: IpAddr = bare.parse().ok()?;
            if !real.trusted.contains(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
    }
    leftmost
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::GeneralConfig;

    fn policy(json: &str) -> RealIp {
        let general: GeneralConfig = serde_json::from_str(json).unwrap();
        RealIp::compile(&general).unwrap().unwrap()
    }

    fn client(peer: &str) -> ClientInfo {
        ClientInfo::new(SocketAddr::new(peer.parse().unwrap(), 4000), 80, false)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn recursive_real_ip_from_trusted_peers_only() {
        let real = policy(r#"{"enable-real-ip": true, "proxy-real-ip-cidr": ["10.0.0.0/8"]}"#);
        let h = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.5, 10.0.0.3")]);
        let mut c = client("10.0.0.2");
        apply(&real, &h, &mut c);
        assert_eq!(c.remote.ip().to_string(), "203.0.113.5");
        assert_eq!(c.remote_ip, "203.0.113.5");
        let f = c.forwarded.as_ref().unwrap();
        assert_eq!(f.peer, Some("10.0.0.2".parse().unwrap()));
        assert!(
            f.proto.is_none(),
            "enable-real-ip alone trusts no X-Forwarded-Proto"
        );

        // An untrusted peer is the client, whatever it claims.
        let mut c = client("192.0.2.9");
        apply(&real, &h, &mut c);
        assert_eq!(c.remote.ip().to_string(), "192.0.2.9");
        assert!(c.forwarded.is_none());

        // All trusted: the leftmost. Several header fields: the last one first.
        let h = headers(&[
            ("x-forwarded-for", "10.9.9.9"),
            ("x-forwarded-for", "10.1.1.1, 10.0.0.3"),
        ]);
        let mut c = client("10.0.0.2");
        apply(&real, &h, &mut c);
        assert_eq!(c.remote.ip().to_string(), "10.9.9.9");

        // Garbage stops the search: the peer stays.
        let h = headers(&[("x-forwarded-for", "203.0.113.5, nonsense")]);
        let mut c = client("10.0.0.2");
        apply(&real, &h, &mut c);
        assert_eq!(c.remote.ip().to_string(), "10.0.0.2");

        // IPv6, bracketed or not.
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]")]);
        let mut c = client("10.0.0.2");
        apply(&real, &h, &mut c);
        assert_eq!(c.remote.ip().to_string(), "2001:db8::7");
    }

    #[test]
    fn forwarded_headers_and_the_full_chain() {
        let real = policy(
            r#"{"use-forwarded-headers": true, "compute-full-forwarded-for": true, "forwarded-for-header": "X-Real-Client"}"#,
        );
        let h = headers(&[
            ("x-real-client", "203.0.113.5"),
            ("x-forwarded-for", "203.0.113.5, 198.51.100.7"),
            ("x-forwarded-proto", "HTTPS"),
            ("x-forwarded-port", "8443"),
            ("x-forwarded-host", "public.example.com, inner"),
        ]);
        let mut c = client("10.0.0.2");
        apply(&real, &h, &mut c);
        assert_eq!(c.remote.ip().to_string(), "203.0.113.5");
        assert!(c.is_https());
        let f = c.forwarded.as_ref().unwrap();
        assert_eq!(f.proto.as_ref().unwrap(), "https");
        assert_eq!(f.port.as_ref().unwrap(), "8443");
        assert_eq!(f.host.as_ref().unwrap(), "public.example.com");
        assert_eq!(
            f.full_for.as_ref().unwrap(),
            "203.0.113.5, 198.51.100.7, 10.0.0.2"
        );

        let h = headers(&[("x-forwarded-proto", "gopher"), ("x-forwarded-port", "0")]);
        let mut c = client("10.0.0.2");
        apply(&real, &h, &mut c);
        let f = c.forwarded.as_ref().unwrap();
        assert!(f.proto.is_none() && f.port.is_none());
        assert_eq!(f.full_for.as_ref().unwrap(), "10.0.0.2");

        // IPv6 peers are not in the default 0.0.0.0/0.
        let mut c = client("2001:db8::1");
        apply(&real, &headers(&[("x-forwarded-proto", "https")]), &mut c);
        assert!(c.forwarded.is_none() && !c.is_https());
    }
}
