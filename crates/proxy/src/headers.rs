//! Headers sent upstream and returned to the client (Part B §5.3).
//!
//! Upstream requests get `Host`, `X-Request-ID` (kept from the client or generated),
//! `X-Real-IP`, `X-Forwarded-For/-Host/-Port/-Proto/-Scheme`, `X-Scheme`,
//! `X-Original-Forwarded-For/-Host` (the client's own values), no `Proxy` header
//! (httpoxy), and no hop-by-hop headers (RFC 9110 §7.6.1) except the `Upgrade`
//! handshake. Responses lose their hop-by-hop headers and carry `Server: gangplank`.
//!
//! With `use-forwarded-headers` / `enable-real-ip`, the request policies
//! (`crate::policy`) replace the client address by the real one from trusted peers
//! and record the trusted `X-Forwarded-*` values in [`ClientInfo::forwarded`]; the
//! headers sent upstream follow them (`X-Real-IP` and `X-Forwarded-For` carry the real
//! address, or the full chain with `compute-full-forwarded-for`).

use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Facts about the client connection, computed once per connection.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// The connection's TCP peer. Differs from `remote` when a trusted PROXY protocol
    /// header named the client (`use-proxy-protocol`); the trust checks of forwarded
    /// headers look at it.
    pub peer: IpAddr,
    /// The client's IP address as a header value (`X-Real-IP`, `X-Forwarded-For`).
    pub remote_ip: HeaderValue,
    /// The listener port the request arrived on.
    pub local_port: u16,
    /// The port of the proxy's HTTPS listener (`use-port-in-redirects`); 443 unless
    /// the worker says otherwise.
    pub https_port: u16,
    /// True when the connection is TLS.
    pub https: bool,
    /// What trusted forwarded headers said, when they said anything (set per request
    /// by the request policies; `None` on the fast path).
    pub forwarded: Option<Box<Forwarded>>,
    /// The client certificate of a TLS connection whose host asked for one
    /// (`auth-tls-*`), verified once per connection.
    pub client_cert: Option<std::sync::Arc<crate::client_cert::ClientCertificate>>,
    /// `local_port` as a header value, made once per connection (each request's
    /// `X-Forwarded-Port` then costs a reference count, not an allocation); used only
    /// while it still names `local_port`.
    local_port_value: (u16, HeaderValue),
}

/// Values taken from a trusted peer's forwarded headers (ingress-nginx's
/// `$realip_remote_addr`, `$pass_access_scheme`, `$best_http_host`, `$pass_port`,
/// `$full_x_forwarded_for`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// The connection's peer, when the client address came from a header.
    pub peer: Option<IpAddr>,
    /// `X-Forwarded-Proto` (`http` or `https`).
    pub proto: Option<HeaderValue>,
    /// The first `X-Forwarded-Host`.
    pub host: Option<HeaderValue>,
    /// `X-Forwarded-Port`.
    pub port: Option<HeaderValue>,
    /// The `X-Forwarded-For` to send upstream (incoming chain plus the peer).
    pub full_for: Option<HeaderValue>,
}

impl ClientInfo {
    /// True when the client's scheme is https: the trusted `X-Forwarded-Proto`, else
    /// the connection's.
    pub fn is_https(&self) -> bool {
        match self.forwarded.as_ref().and_then(|f| f.proto.as_ref()) {
            Some(proto) => proto.as_bytes().eq_ignore_ascii_case(b"https"),
            None => self.https,
        }
    }
}

impl ClientInfo {
    /// The facts of a connection whose PROXY protocol header named `client` (from a
    /// trusted `peer`).
    pub fn proxied(client: SocketAddr, peer: IpAddr, local_port: u16, https: bool) -> ClientInfo {
        ClientInfo {
            peer,
            ..ClientInfo::new(client, local_port, https)
        }
    }

    /// The facts of a new connection.
    pub fn new(remote: SocketAddr, local_port: u16, https: bool) -> ClientInfo {
        let remote_ip = HeaderValue::from_str(&remote.ip().to_string())
            .unwrap_or(HeaderValue::from_static("-"));
        ClientInfo {
            remote,
            peer: remote.ip(),
            remote_ip,
            local_port,
            https_port: 443,
            https,
            forwarded: None,
            client_cert: None,
            local_port_value: (local_port, HeaderValue::from(local_port)),
        }
    }

    /// The connection's own `X-Forwarded-Port`: 443 over TLS, else the listener's port.
    fn forwarded_port(&self) -> HeaderValue {
        if self.https {
            HeaderValue::from_static("443")
        } else if self.local_port_value.0 == self.local_port {
            self.local_port_value.1.clone()
        } else {
            HeaderValue::from(self.local_port)
        }
    }
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_SCHEME: HeaderName = HeaderName::from_static("x-forwarded-scheme");
static X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
static X_ORIGINAL_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-original-forwarded-for");
static X_ORIGINAL_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-original-forwarded-host");
static PROXY: HeaderName = HeaderName::from_static("proxy");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Request ids are cut from shared blocks of this size: one allocation per 128 ids
/// instead of two per id (the value, then its first clone for the access log).
const REQUEST_ID_BLOCK: usize = 32 * 128;

thread_local! {
    /// The current block of request ids.
    static REQUEST_IDS: std::cell::RefCell<bytes::BytesMut> =
        std::cell::RefCell::new(bytes::BytesMut::new());
}

/// A fresh request id: 32 lowercase hex digits, like nginx's `$request_id`.
pub fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = fastrand::u128(..);
    let mut id = [0u8; 32];
    for byte in id.iter_mut().rev() {
        *byte = HEX[(n & 0xf) as usize];
        n >>= 4;
    }
    let bytes = REQUEST_IDS.with(|block| {
        let mut block = block.borrow_mut();
        if block.capacity() < id.len() {
            *block = bytes::BytesMut::with_capacity(REQUEST_ID_BLOCK);
        }
        block.extend_from_slice(&id);
        block.split_to(id.len()).freeze()
    });
    HeaderValue::from_maybe_shared(bytes).unwrap_or(HeaderValue::from_static("0"))
}

/// Removes hop-by-hop headers, including those named by `Connection`. Returns the
/// `Upgrade` value when the message asks for a protocol upgrade.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    strip_hop_by_hop_seen(headers, Seen::scan(headers))
}

/// Which of the names the rewrites look at a header map holds, from one pass over its
/// names: most requests and responses carry none or one of them, and a lookup or
/// removal of an absent name costs a hash each (a dozen per request otherwise).
#[derive(Debug, Clone, Copy, Default)]
struct Seen(u32);

impl Seen {
    const CONNECTION: u32 = 1;
    const KEEP_ALIVE: u32 = 1 << 1;
    const PROXY_CONNECTION: u32 = 1 << 2;
    const TE: u32 = 1 << 3;
    const TRAILER: u32 = 1 << 4;
    const TRANSFER_ENCODING: u32 = 1 << 5;
    const UPGRADE: u32 = 1 << 6;
    const HOP_BY_HOP: u32 = (1 << 7) - 1;
    const PROXY: u32 = 1 << 7;
    const X_FORWARDED_FOR: u32 = 1 << 8;
    const X_FORWARDED_HOST: u32 = 1 << 9;
    const X_REQUEST_ID: u32 = 1 << 10;
    const X_REAL_IP: u32 = 1 << 11;
    const X_FORWARDED_PORT: u32 = 1 << 12;
    const X_FORWARDED_PROTO: u32 = 1 << 13;
    const X_FORWARDED_SCHEME: u32 = 1 << 14;
    const X_SCHEME: u32 = 1 << 15;
    const X_ORIGINAL_FORWARDED_FOR: u32 = 1 << 16;
    const X_ORIGINAL_FORWARDED_HOST: u32 = 1 << 17;
    /// Every name "present": every lookup and removal done (what the scan saves).
    #[cfg(test)]
    const ALL: Seen = Seen(u32::MAX);

    fn scan(headers: &HeaderMap) -> Seen {
        let mut seen = 0;
        for name in headers.keys() {
            seen |= Seen::bit(name);
        }
        Seen(seen)
    }

    fn bit(name: &HeaderName) -> u32 {
        // The forwarded names all start with `x-`: one match on the rest.
        if let Some(rest) = name.as_str().strip_prefix("x-") {
            return match rest {
                "forwarded-for" => Seen::X_FORWARDED_FOR,
                "forwarded-host" => Seen::X_FORWARDED_HOST,
                "request-id" => Seen::X_REQUEST_ID,
                "real-ip" => Seen::X_REAL_IP,
                "forwarded-port" => Seen::X_FORWARDED_PORT,
                "forwarded-proto" => Seen::X_FORWARDED_PROTO,
                "forwarded-scheme" => Seen::X_FORWARDED_SCHEME,
                "scheme" => Seen::X_SCHEME,
                "original-forwarded-for" => Seen::X_ORIGINAL_FORWARDED_FOR,
                "original-forwarded-host" => Seen::X_ORIGINAL_FORWARDED_HOST,
                _ => 0,
            };
        }
        // Standard names compare by their tag; the others by their bytes.
        if name == header::CONNECTION {
            Seen::CONNECTION
        } else if name == header::TE {
            Seen::TE
        } else if name == header::TRAILER {
            Seen::TRAILER
        } else if name == header::TRANSFER_ENCODING {
            Seen::TRANSFER_ENCODING
        } else if name == header::UPGRADE {
            Seen::UPGRADE
        } else if name == KEEP_ALIVE {
            Seen::KEEP_ALIVE
        } else if name == PROXY_CONNECTION {
            Seen::PROXY_CONNECTION
        } else if name == PROXY {
            Seen::PROXY
        } else {
            0
        }
    }

    fn has(self, bits: u32) -> bool {
        self.0 & bits != 0
    }
}

fn strip_hop_by_hop_seen(headers: &mut HeaderMap, seen: Seen) -> Option<HeaderValue> {
    if !seen.has(Seen::HOP_BY_HOP) {
        return None;
    }
    let upgrade = if seen.has(Seen::UPGRADE) {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    let mut named: Vec<HeaderName> = Vec::new();
    let mut asks_upgrade = false;
    if seen.has(Seen::CONNECTION) {
        for value in headers.get_all(header::CONNECTION) {
            let Ok(text) = value.to_str() else {
                continue;
            };
            for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if token.eq_ignore_ascii_case("upgrade") {
                    asks_upgrade = true;
                } else if token.eq_ignore_ascii_case("close")
                    || token.eq_ignore_ascii_case("keep-alive")
                {
                    // The usual values: `close` names no field, `Keep-Alive` goes
                    // below with the other hop-by-hop fields (no name to build).
                } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
    for (bit, name) in [
        (Seen::CONNECTION, &header::CONNECTION),
        (Seen::KEEP_ALIVE, &KEEP_ALIVE),
        (Seen::PROXY_CONNECTION, &PROXY_CONNECTION),
        (Seen::TE, &header::TE),
        (Seen::TRAILER, &header::TRAILER),
        (Seen::TRANSFER_ENCODING, &header::TRANSFER_ENCODING),
        (Seen::UPGRADE, &header::UPGRADE),
    ] {
        if seen.has(bit) {
            headers.remove(name);
        }
    }
    upgrade.filter(|_| asks_upgrade)
}

/// Rewrites a client request's headers into the upstream request's.
///
/// `host` is the value to send as `Host` (`$best_http_host`, or `upstream-vhost`).
pub fn to_upstream(headers: &mut HeaderMap, host: &HeaderValue, client: &ClientInfo) {
    to_upstream_with(headers, host, client, true);
}

/// [`to_upstream`], generating an `X-Request-ID` for requests without one only when
/// `generate_request_id` (ConfigMap `generate-request-id`) is on.
pub fn to_upstream_with(
    headers: &mut HeaderMap,
    host: &HeaderValue,
    client: &ClientInfo,
    generate_request_id: bool,
) {
    forwarding(headers, host, client, generate_request_id).apply(headers);
}

/// Rewrites a client request's headers for upstream except for the forwarded headers,
/// which it returns: hop-by-hop headers, `Proxy` and the client's own copies of the
/// forwarded headers are removed, `Host` is set. [`Forwarding::apply`] completes the
/// rewrite ([`to_upstream_with`] does both).
pub fn forwarding(
    headers: &mut HeaderMap,
    host: &HeaderValue,
    client: &ClientInfo,
    generate_request_id: bool,
) -> Forwarding {
    let seen = Seen::scan(headers);
    forwarding_seen(headers, host, client, generate_request_id, seen)
}

fn forwarding_seen(
    headers: &mut HeaderMap,
    host: &HeaderValue,
    client: &ClientInfo,
    generate_request_id: bool,
    seen: Seen,
) -> Forwarding {
    let upgrade = strip_hop_by_hop_seen(headers, seen);
    if seen.has(Seen::PROXY) {
        headers.remove(&PROXY);
    }

    let forwarded = client.forwarded.as_deref();
    let scheme = match forwarded.and_then(|f| f.proto.clone()) {
        Some(proto) => proto,
        None if client.https => HeaderValue::from_static("https"),
        None => HeaderValue::from_static("http"),
    };
    let original_host = if seen.has(Seen::X_FORWARDED_HOST) {
        headers.remove(&X_FORWARDED_HOST)
    } else {
        None
    };
    let original_for = if seen.has(Seen::X_FORWARDED_FOR) {
        headers.remove(&X_FORWARDED_FOR)
    } else {
        None
    };
    // The client's own values of the names set below give way to the proxy's.
    for (bit, name, replaced) in [
        (Seen::X_REAL_IP, &X_REAL_IP, true),
        (Seen::X_FORWARDED_PORT, &X_FORWARDED_PORT, true),
        (Seen::X_FORWARDED_PROTO, &X_FORWARDED_PROTO, true),
        (Seen::X_FORWARDED_SCHEME, &X_FORWARDED_SCHEME, true),
        (Seen::X_SCHEME, &X_SCHEME, true),
        (
            Seen::X_ORIGINAL_FORWARDED_FOR,
            &X_ORIGINAL_FORWARDED_FOR,
            original_for.is_some(),
        ),
        (
            Seen::X_ORIGINAL_FORWARDED_HOST,
            &X_ORIGINAL_FORWARDED_HOST,
            original_host.is_some(),
        ),
    ] {
        if replaced && seen.has(bit) {
            headers.remove(name);
        }
    }
    let remote = client.remote_ip.clone();
    let port = match forwarded.and_then(|f| f.port.clone()) {
        Some(port) => port,
        None => client.forwarded_port(),
    };

    headers.insert(header::HOST, host.clone());
    if let Some(protocol) = upgrade {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    Forwarding {
        request_id: (generate_request_id && !seen.has(Seen::X_REQUEST_ID)).then(new_request_id),
        forwarded_for: forwarded
            .and_then(|f| f.full_for.clone())
            .unwrap_or_else(|| remote.clone()),
        real_ip: remote,
        forwarded_host: forwarded
            .and_then(|f| f.host.clone())
            .unwrap_or_else(|| host.clone()),
        forwarded_port: port,
        scheme,
        original_for,
        original_host,
    }
}

/// The forwarded headers of an upstream request (Part B §5.3 of the contract):
/// `X-Request-ID` (when generated), `X-Real-IP`, `X-Forwarded-For`, `-Host`, `-Port`,
/// `-Proto`, `-Scheme`, `X-Scheme`, and `X-Original-Forwarded-For` / `-Host` when the
/// client sent forwarded values. Computed once by [`forwarding`]; then either set into
/// the request's map ([`Forwarding::apply`]) or written straight into the request head
/// by the fast path ([`Forwarding::write_missing`]), which saves a hash and a map
/// insertion per field. Either way a field already in the map (set by a request
/// policy, such as `proxy-set-headers`) wins.
#[derive(Debug, Clone)]
pub struct Forwarding {
    request_id: Option<HeaderValue>,
    real_ip: HeaderValue,
    forwarded_for: HeaderValue,
    forwarded_host: HeaderValue,
    forwarded_port: HeaderValue,
    scheme: HeaderValue,
    original_for: Option<HeaderValue>,
    original_host: Option<HeaderValue>,
}

impl Forwarding {
    /// The generated `X-Request-ID`; `None` when the client sent one (it stays in the
    /// request's map) or generation is off.
    pub fn generated_request_id(&self) -> Option<&HeaderValue> {
        self.request_id.as_ref()
    }

    /// The fields in the order they are sent, each with its [`Seen`] bit.
    fn fields(&self) -> [(u32, &'static HeaderName, Option<&HeaderValue>); 10] {
        [
            (Seen::X_REQUEST_ID, &X_REQUEST_ID, self.request_id.as_ref()),
            (Seen::X_REAL_IP, &X_REAL_IP, Some(&self.real_ip)),
            (
                Seen::X_FORWARDED_FOR,
                &X_FORWARDED_FOR,
                Some(&self.forwarded_for),
            ),
            (
                Seen::X_FORWARDED_HOST,
                &X_FORWARDED_HOST,
                Some(&self.forwarded_host),
            ),
            (
                Seen::X_FORWARDED_PORT,
                &X_FORWARDED_PORT,
                Some(&self.forwarded_port),
            ),
            (
                Seen::X_FORWARDED_PROTO,
                &X_FORWARDED_PROTO,
                Some(&self.scheme),
            ),
            (
                Seen::X_FORWARDED_SCHEME,
                &X_FORWARDED_SCHEME,
                Some(&self.scheme),
            ),
            (Seen::X_SCHEME, &X_SCHEME, Some(&self.scheme)),
            (
                Seen::X_ORIGINAL_FORWARDED_FOR,
                &X_ORIGINAL_FORWARDED_FOR,
                self.original_for.as_ref(),
            ),
            (
                Seen::X_ORIGINAL_FORWARDED_HOST,
                &X_ORIGINAL_FORWARDED_HOST,
                self.original_host.as_ref(),
            ),
        ]
    }

    /// Sets the fields into `headers`, except those it already holds.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (_, name, value) in self.fields() {
            if let Some(value) = value {
                headers.entry(name).or_insert_with(|| value.clone());
            }
        }
    }

    /// Appends the fields as header lines (`name: value\r\n`) to `out`, except those
    /// whose names [`Presence`] saw in the request's map.
    pub fn write_missing(&self, present: Presence, out: &mut Vec<u8>) {
        for (bit, name, value) in self.fields() {
            if let Some(value) = value
                && !present.0.has(bit)
            {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Which forwarded names a request's map holds, noted name by name while the fast path
/// writes the map's fields ([`Forwarding::write_missing`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Presence(Seen);

impl Presence {
    /// Notes `name`.
    pub fn note(&mut self, name: &HeaderName) {
        self.0.0 |= Seen::bit(name);
    }
}

/// Rewrites an upstream response's headers for the client. Keeps the upgrade
/// handshake headers of a `101 Switching Protocols`.
pub fn to_client(headers: &mut HeaderMap, switching_protocols: bool) {
    let upgrade = strip_hop_by_hop(headers);
    if switching_protocols
        && let Some(protocol) = upgrade.or_else(|| Some(HeaderValue::from_static("websocket")))
    {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    headers.insert(header::SERVER, crate::pages::SERVER);
}

/// ConfigMap `enable-underscores-in-headers` off (the default) with
/// `ignore-invalid-headers` on (the default): request headers whose name contains `_`
/// are dropped before anything reads them, as nginx ignores them.
pub fn drop_underscored(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| name.as_str().contains('_')) {
        return;
    }
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_'))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// `Server` with the version, for ConfigMap `server-tokens: "true"`.
pub const SERVER_WITH_VERSION: HeaderValue =
    HeaderValue::from_static(concat!("gangplank/", env!("CARGO_PKG_VERSION")));

/// The value of cookie `name` in the request's `Cookie` headers (the first one).
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// `host` without a `:port` suffix (IPv6 literals keep their brackets).
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientInfo {
        ClientInfo::new("192.0.2.7:5555".parse().unwrap(), 8080, false)
    }

    #[test]
    fn forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.1"));
        h.insert("proxy", HeaderValue::from_static("http://evil"));
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("hop"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        to_upstream(
            &mut h,
            &HeaderValue::from_static("app.example.com"),
            &client(),
        );
        assert_eq!(h["host"], "app.example.com");
        assert_eq!(h["x-real-ip"], "192.0.2.7");
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-original-forwarded-for"], "203.0.113.1");
        assert_eq!(h["x-forwarded-host"], "app.example.com");
        assert_eq!(h["x-forwarded-port"], "8080");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-scheme"], "http");
        assert_eq!(h["x-request-id"].len(), 32);
        for gone in ["proxy", "connection", "x-secret", "keep-alive", "te"] {
            assert!(!h.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn request_id_is_kept_and_upgrade_survives() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        to_upstream(
            &mut h,
            &HeaderValue::from_static("h"),
            &ClientInfo {
                https: true,
                ..client()
            },
        );
        assert_eq!(h["x-request-id"], "abc");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["x-forwarded-port"], "443");
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    #[test]
    fn trusted_forwarded_values_are_sent_upstream() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.1"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("public.example.com"),
        );
        let client = ClientInfo {
            remote_ip: HeaderValue::from_static("203.0.113.1"),
            forwarded: Some(Box::new(Forwarded {
                peer: Some("10.0.0.2".parse().unwrap()),
                proto: Some(HeaderValue::from_static("https")),
                host: Some(HeaderValue::from_static("public.example.com")),
                port: Some(HeaderValue::from_static("443")),
                full_for: Some(HeaderValue::from_static("203.0.113.1, 10.0.0.2")),
            })),
            ..client()
        };
        assert!(client.is_https());
        to_upstream(&mut h, &HeaderValue::from_static("internal"), &client);
        assert_eq!(h["host"], "internal");
        assert_eq!(h["x-real-ip"], "203.0.113.1");
        assert_eq!(h["x-forwarded-for"], "203.0.113.1, 10.0.0.2");
        assert_eq!(h["x-forwarded-host"], "public.example.com");
        assert_eq!(h["x-forwarded-port"], "443");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-scheme"], "https");
        assert_eq!(h["x-original-forwarded-for"], "203.0.113.1");
        assert!(
            !ClientInfo {
                forwarded: None,
                ..client
            }
            .is_https()
        );
    }

    #[test]
    fn request_ids_cut_from_blocks_stay_distinct_across_refills() {
        // Three blocks' worth: the refill path runs twice.
        let ids: Vec<HeaderValue> = (0..3 * REQUEST_ID_BLOCK / 32 + 1)
            .map(|_| new_request_id())
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit), "{id:?}");
        }
        let distinct: std::collections::HashSet<&[u8]> = ids.iter().map(|v| v.as_bytes()).collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn request_ids_are_generated_only_when_asked() {
        let mut h = HeaderMap::new();
        to_upstream_with(&mut h, &HeaderValue::from_static("h"), &client(), false);
        assert!(!h.contains_key("x-request-id"));
        h.insert("x-request-id", HeaderValue::from_static("mine"));
        to_upstream_with(&mut h, &HeaderValue::from_static("h"), &client(), false);
        assert_eq!(h["x-request-id"], "mine");
    }

    #[test]
    fn underscored_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("x_user", HeaderValue::from_static("admin"));
        h.append("x_user", HeaderValue::from_static("root"));
        h.insert("x-user", HeaderValue::from_static("me"));
        drop_underscored(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-user"], "me");
        assert!(
            SERVER_WITH_VERSION
                .to_str()
                .unwrap()
                .starts_with("gangplank/")
        );
    }

    #[test]
    fn responses_lose_hop_by_hop_and_get_our_server() {
        let mut h = HeaderMap::new();
        h.insert("server", HeaderValue::from_static("Apache/2.4.1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("content-length", HeaderValue::from_static("5"));
        to_client(&mut h, false);
        assert_eq!(h["server"], "gangplank");
        assert!(!h.contains_key("keep-alive"));
        assert_eq!(h["content-length"], "5");
    }

    fn header_maps() -> impl proptest::strategy::Strategy<Value = HeaderMap> {
        use proptest::prelude::*;
        let names = prop::sample::select(vec![
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-real-ip",
            "x-original-forwarded-for",
            "x-request-id",
            "x-custom",
            "accept",
            "user-agent",
        ]);
        let values = prop::sample::select(vec![
            "upgrade",
            "keep-alive",
            "close, x-custom",
            "Upgrade, accept",
            "websocket",
            "1.2.3.4",
        ]);
        prop::collection::vec((names, values), 0..10).prop_map(|pairs| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                h.append(name, HeaderValue::from_static(value));
            }
            h
        })
    }

    proptest::proptest! {
        /// Skipping the names the scan did not see changes nothing: the result is
        /// the one of looking up and removing every name unconditionally.
        #[test]
        fn scanning_names_once_changes_nothing(headers in header_maps()) {
            let mut fast = headers.clone();
            let mut slow = headers.clone();
            proptest::prop_assert_eq!(
                strip_hop_by_hop(&mut fast),
                strip_hop_by_hop_seen(&mut slow, Seen::ALL)
            );
            proptest::prop_assert_eq!(&fast, &slow);

            let host = HeaderValue::from_static("app.example.com");
            let mut fast = headers.clone();
            let mut slow = headers;
            to_upstream_with(&mut fast, &host, &client(), false);
            forwarding_seen(&mut slow, &host, &client(), false, Seen::ALL).apply(&mut slow);
            proptest::prop_assert_eq!(fast, slow);
        }

        /// The fast path's head lines carry exactly the fields of the map the other
        /// paths send: the map's own, plus the forwarded ones it lacks, a value a
        /// request policy set after the rewrite winning over the proxy's.
        #[test]
        fn written_forwarded_headers_are_the_applied_ones(
            headers in header_maps(),
            policy_set in proptest::sample::subsequence(
                vec!["x-forwarded-for", "x-real-ip", "x-request-id", "x-scheme", "x-other"],
                0..3,
            ),
            generate in proptest::bool::ANY,
        ) {
            let host = HeaderValue::from_static("app.example.com");
            let mut map = headers;
            let forwarding = forwarding(&mut map, &host, &client(), generate);
            for name in policy_set {
                map.insert(name, HeaderValue::from_static("policy"));
            }
            let mut applied = map.clone();
            forwarding.apply(&mut applied);
            let mut expected: Vec<String> = applied
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
                .collect();

            let mut present = Presence::default();
            let mut written: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    present.note(k);
                    format!("{k}: {}", v.to_str().unwrap())
                })
                .collect();
            let mut lines = Vec::new();
            forwarding.write_missing(present, &mut lines);
            let lines = String::from_utf8(lines).unwrap();
            proptest::prop_assert!(lines.is_empty() || lines.ends_with("\r\n"));
            written.extend(lines.split_terminator("\r\n").map(str::to_owned));
            expected.sort();
            written.sort();
            proptest::prop_assert_eq!(written, expected);
        }
    }
}
