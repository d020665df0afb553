//! The PROXY protocol (HAProxy's `proxy-protocol.txt`, versions 1 and 2): the header a
//! load balancer puts in front of a TCP stream to tell who the client was.
//!
//! ConfigMap `use-proxy-protocol: "true"` makes every HTTP and HTTPS connection start
//! with such a header (nginx's `listen ... proxy_protocol`): the listener reads it
//! with [`read_header`] before anything else (before the TLS handshake), within
//! `proxy-protocol-header-timeout` (default 5 s); a connection without a valid header
//! is closed. The bytes that followed the header in the same reads are kept in a
//! [`PrefixedStream`], so HTTP or TLS starts exactly where the header ended.
//!
//! The parser ([`parse`]) is strict and incremental: it answers
//! [`Parse::Incomplete`] until it has the whole header, never reads past it, and
//! refuses anything the specification does not allow (a v1 line longer than 107
//! bytes, extra spaces, ports with signs or leading zeros, an address of the wrong
//! family, a v2 version other than 2, an unknown command or family, an address block
//! shorter than its family needs). It never panics, whatever the bytes (property
//! tested).
//!
//! What the header says is only a claim: whether it replaces the client address is
//! the caller's decision (ingress-nginx trusts it from peers in `proxy-real-ip-cidr`).
//!
//! ```
//! use gangplank_proxy::proxy_protocol::{parse, Header, Parse};
//! let bytes = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\nGET / HTTP/1.1\r\n";
//! let Parse::Complete { header, consumed } = parse(bytes).unwrap() else { panic!() };
//! assert_eq!(consumed, 44);
//! assert_eq!(header.source(), Some("203.0.113.7:51000".parse().unwrap()));
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Longest v1 header, CRLF included (the specification's limit).
pub const V1_MAX_LEN: usize = 107;

/// Longest v2 header accepted (16 fixed bytes and the address block with its TLVs).
/// The protocol allows up to 65,551 bytes; load balancers send a few hundred at most,
/// and a connection should not hold 64 KiB before it said anything useful.
pub const V2_MAX_LEN: usize = 4096;

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A proxied TCP connection from `source` to `destination`.
    Proxied {
        /// The client.
        source: SocketAddr,
        /// The address the client connected to.
        destination: SocketAddr,
    },
    /// The sender did not say (v1 `UNKNOWN`, v2 `UNSPEC` or a non-TCP family): the
    /// connection's own peer is the client.
    Unknown,
    /// v2 `LOCAL`: a connection of the load balancer itself (health checks); the
    /// peer is the client.
    Local,
}

impl Header {
    /// The client address the header names, if it names one.
    pub fn source(&self) -> Option<SocketAddr> {
        match self {
            Header::Proxied { source, .. } => Some(*source),
            Header::Unknown | Header::Local => None,
        }
    }
}

/// The result of parsing the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A whole header, `consumed` bytes long; what follows belongs to the stream.
    Complete {
        /// The header.
        header: Header,
        /// Its length in bytes.
        consumed: usize,
    },
    /// Valid so far; more bytes are needed.
    Incomplete,
}

/// Why a connection's header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// Neither `PROXY ` nor the v2 signature.
    #[error("the connection does not start with a PROXY protocol header")]
    NotProxyProtocol,
    /// A v1 line without CRLF within 107 bytes.
    #[error("PROXY v1 header longer than 107 bytes")]
    V1TooLong,
    /// A malformed v1 line.
    #[error("malformed PROXY v1 header: {0}")]
    V1(&'static str),
    /// A malformed v2 header.
    #[error("malformed PROXY v2 header: {0}")]
    V2(&'static str),
    /// A v2 header longer than [`V2_MAX_LEN`].
    #[error("PROXY v2 header longer than {V2_MAX_LEN} bytes")]
    V2TooLong,
}

/// Parses a header at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Parse, HeaderError> {
    const V1_PREFIX: &[u8] = b"PROXY ";
    let n = bytes.len().min(V1_PREFIX.len());
    if bytes[..n] == V1_PREFIX[..n] {
        return if n < V1_PREFIX.len() {
            Ok(Parse::Incomplete)
        } else {
            parse_v1(bytes)
        };
    }
    let n = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Ok(Parse::Incomplete)
        } else {
            parse_v2(bytes)
        };
    }
    Err(HeaderError::NotProxyProtocol)
}

fn parse_v1(bytes: &[u8]) -> Result<Parse, HeaderError> {
    let window = &bytes[..bytes.len().min(V1_MAX_LEN)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if window.len() >= V1_MAX_LEN {
            return Err(HeaderError::V1TooLong);
        }
        // A lone CR or LF other than the final CRLF can never become valid.
        if window[..window.len().saturating_sub(1)]
            .iter()
            .any(|b| *b == b'\r' || *b == b'\n')
            || window.last() == Some(&b'\n')
        {
            return Err(HeaderError::V1("stray CR or LF"));
        }
        return Ok(Parse::Incomplete);
    };
    let line = std::str::from_utf8(&window[..end]).map_err(|_| HeaderError::V1("not ASCII"))?;
    let consumed = end + 2;
    let mut fields = line.split(' ');
    // "PROXY", checked by the caller.
    fields.next();
    let header = match fields.next() {
        // Anything may follow UNKNOWN; the receiver ignores it.
        Some("UNKNOWN") => Header::Unknown,
        Some(family @ ("TCP4" | "TCP6")) => {
            let v6 = family == "TCP6";
            let source = v1_ip(fields.next(), v6)?;
            let destination = v1_ip(fields.next(), v6)?;
            let source_port = v1_port(fields.next())?;
            let destination_port = v1_port(fields.next())?;
            if fields.next().is_some() {
                return Err(HeaderError::V1("trailing fields"));
            }
            Header::Proxied {
                source: SocketAddr::new(source, source_port),
                destination: SocketAddr::new(destination, destination_port),
            }
        }
        _ => return Err(HeaderError::V1("unknown protocol family")),
    };
    Ok(Parse::Complete { header, consumed })
}

fn v1_ip(field: Option<&str>, v6: bool) -> Result<IpAddr, HeaderError> {
    let field = field.ok_or(HeaderError::V1("missing address"))?;
    let ip = if v6 {
        field.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        field.parse::<Ipv4Addr>().map(IpAddr::V4)
    };
    ip.map_err(|_| HeaderError::V1("bad address"))
}

fn v1_port(field: Option<&str>) -> Result<u16, HeaderError> {
    let field = field.ok_or(HeaderError::V1("missing port"))?;
    let digits_only = !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (field.len() > 1 && field.starts_with('0')) {
        return Err(HeaderError::V1("bad port"));
    }
    field.parse().map_err(|_| HeaderError::V1("bad port"))
}

fn parse_v2(bytes: &[u8]) -> Result<Parse, HeaderError> {
    let Some(fixed) = bytes.get(..16) else {
        return Ok(Parse::Incomplete);
    };
    let version_command = fixed[12];
    if version_command >> 4 != 2 {
        return Err(HeaderError::V2("version is not 2"));
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(HeaderError::V2("unknown command")),
    };
    let family = fixed[13];
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let consumed = 16 + len;
    if consumed > V2_MAX_LEN {
        return Err(HeaderError::V2TooLong);
    }
    // The family byte is checked before waiting for the address block.
    let needed = match family {
        // UNSPEC.
        0x00 => 0,
        // TCP4, UDP4.
        0x11 | 0x12 => 12,
        // TCP6, UDP6.
        0x21 | 0x22 => 36,
        // UNIX stream and datagram.
        0x31 | 0x32 => 216,
        _ => return Err(HeaderError::V2("unknown address family")),
    };
    if !local && len < needed {
        return Err(HeaderError::V2("address block too short for its family"));
    }
    let Some(block) = bytes.get(16..consumed) else {
        return Ok(Parse::Incomplete);
    };
    let header = if local {
        Header::Local
    } else {
        match family {
            0x11 => {
                let ip = |at: usize| {
                    IpAddr::from([block[at], block[at + 1], block[at + 2], block[at + 3]])
                };
                let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
                Header::Proxied {
                    source: SocketAddr::new(ip(0), port(8)),
                    destination: SocketAddr::new(ip(4), port(10)),
                }
            }
            0x21 => {
                let ip = |at: usize| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&block[at..at + 16]);
                    IpAddr::from(octets)
                };
                let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
                Header::Proxied {
                    source: SocketAddr::new(ip(0), port(32)),
                    destination: SocketAddr::new(ip(16), port(34)),
                }
            }
            // UNSPEC, UDP and UNIX sockets say nothing about a TCP client.
            _ => Header::Unknown,
        }
    };
    Ok(Parse::Complete { header, consumed })
}

/// Why [`read_header`] gave up on a connection.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The header was invalid.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The peer closed the connection before the header was complete.
    #[error("connection closed before the PROXY protocol header was complete")]
    Closed,
    /// The header did not arrive within the timeout.
    #[error("no PROXY protocol header within {0:?}")]
    Timeout(Duration),
    /// Reading failed.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

/// Reads the header at the start of `stream`, within `timeout`. Returns it with the
/// stream, whose first bytes are what followed the header.
pub async fn read_header<S>(
    mut stream: S,
    timeout: Duration,
) -> Result<(Header, PrefixedStream<S>), ReadError>
where
    S: AsyncRead + Unpin,
{
    let read = async {
        let mut buf = BytesMut::with_capacity(512);
        loop {
            if let Parse::Complete { header, consumed } = parse(&buf)? {
                buf.advance(consumed);
                return Ok::<_, ReadError>((header, buf));
            }
            // Room for the largest header; reads never go further than needed to
            // hold it (what arrives beyond the header is kept, not dropped).
            if buf.capacity() == buf.len() {
                buf.reserve(512);
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(ReadError::Closed);
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok((header, rest))) => Ok((
            header,
            PrefixedStream {
                prefix: rest,
                inner: stream,
            },
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ReadError::Timeout(timeout)),
    }
}

/// A stream that first yields bytes already read from it (what followed the PROXY
/// header), then reads from the stream itself. Writes go straight through.
#[derive(Debug)]
pub struct PrefixedStream<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S> PrefixedStream<S> {
    /// A stream without prefix (the listener's type when PROXY protocol is off).
    pub fn plain(inner: S) -> PrefixedStream<S> {
        PrefixedStream {
            prefix: BytesMut::new(),
            inner,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The bytes not read yet from the prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Puts `bytes` back in front of the stream: the next reads yield them first,
    /// then what was still unread. Used to peek at a TLS ClientHello
    /// ([`crate::passthrough::read_sni`]).
    pub fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut prefix = BytesMut::with_capacity(bytes.len() + self.prefix.len());
        prefix.extend_from_slice(bytes);
        prefix.extend_from_slice(&self.prefix);
        self.prefix = prefix;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PrefixedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PrefixedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::AsyncWriteExt;

    fn complete(bytes: &[u8]) -> (Header, usize) {
        match parse(bytes) {
            Ok(Parse::Complete { header, consumed }) => (header, consumed),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(bytes)),
        }
    }

    fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
        out.extend_from_slice(block);
        out
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let (h, n) = complete(b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\nGET");
        assert_eq!(n, 44);
        assert_eq!(
            h,
            Header::Proxied {
                source: "203.0.113.7:51000".parse().unwrap(),
                destination: "192.0.2.1:443".parse().unwrap(),
            }
        );
        let (h, _) = complete(b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n");
        assert_eq!(h.source(), Some("[2001:db8::7]:65535".parse().unwrap()));
        let (h, n) = complete(b"PROXY UNKNOWN whatever follows\r\nxyz");
        assert_eq!((h, n), (Header::Unknown, 32));
        let (h, _) = complete(b"PROXY UNKNOWN\r\n");
        assert_eq!(h, Header::Unknown);
    }

    #[test]
    fn v1_is_strict() {
        for bad in [
            &b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443 extra\r\n"[..],
            b"PROXY TCP4  203.0.113.7 192.0.2.1 51000 443\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 051000 443\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 +5 443\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",
            b"PROXY TCP4 2001:db8::7 192.0.2.1 1 443\r\n",
            b"PROXY TCP6 203.0.113.7 2001:db8::1 1 443\r\n",
            b"PROXY TCP4 203.0.113.007 192.0.2.1 1 443\r\n",
            b"PROXY UDP4 203.0.113.7 192.0.2.1 1 443\r\n",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n",
            b"PROXY TCP4 203.0.113.7\n192.0.2.1 1 443\r\n",
            b"proxy TCP4 203.0.113.7 192.0.2.1 1 443\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert!(
                parse(bad).is_err(),
                "{:?} was accepted",
                String::from_utf8_lossy(bad)
            );
        }
        // 107 bytes with CRLF is the longest; one more is refused without CRLF.
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(105, b'x');
        long.extend_from_slice(b"\r\n");
        assert_eq!(complete(&long), (Header::Unknown, 107));
        let mut longer = b"PROXY UNKNOWN ".to_vec();
        longer.resize(107, b'x');
        assert_eq!(parse(&longer), Err(HeaderError::V1TooLong));
        // Short prefixes are incomplete, not errors.
        assert_eq!(parse(b""), Ok(Parse::Incomplete));
        assert_eq!(parse(b"PRO"), Ok(Parse::Incomplete));
        assert_eq!(parse(b"PROXY TCP4 1.2."), Ok(Parse::Incomplete));
    }

    #[test]
    fn v2_families_and_commands() {
        let mut block = vec![203, 0, 113, 7, 192, 0, 2, 1];
        block.extend_from_slice(&51000u16.to_be_bytes());
        block.extend_from_slice(&443u16.to_be_bytes());
        let bytes = v2(1, 0x11, &block);
        let (h, n) = complete(&bytes);
        assert_eq!(n, 28);
        assert_eq!(h.source(), Some("203.0.113.7:51000".parse().unwrap()));

        // TCP6 with a TLV after the addresses.
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut block = src.octets().to_vec();
        block.extend_from_slice(&dst.octets());
        block.extend_from_slice(&[0xc3, 0x50, 0x01, 0xbb]);
        block.extend_from_slice(&[0x04, 0x00, 0x02, b'h', b'i']);
        let bytes = v2(1, 0x21, &block);
        let (h, n) = complete(&bytes);
        assert_eq!(n, bytes.len());
        assert_eq!(h.source(), Some("[2001:db8::7]:50000".parse().unwrap()));

        // LOCAL ignores the address block; UNSPEC and UDP say nothing usable.
        assert_eq!(complete(&v2(0, 0x11, &[0; 12])).0, Header::Local);
        assert_eq!(complete(&v2(0, 0x00, &[])).0, Header::Local);
        assert_eq!(complete(&v2(1, 0x00, &[])).0, Header::Unknown);
        assert_eq!(complete(&v2(1, 0x12, &[0; 12])).0, Header::Unknown);

        // Refused: version 1, command 2, family 0x41, short block, too long.
        let mut wrong_version = v2(1, 0x11, &[0; 12]);
        wrong_version[12] = 0x11;
        assert!(parse(&wrong_version).is_err());
        assert!(parse(&v2(2, 0x11, &[0; 12])).is_err());
        assert!(parse(&v2(1, 0x41, &[0; 12])).is_err());
        assert!(parse(&v2(1, 0x11, &[0; 11])).is_err());
        assert_eq!(
            parse(&v2(1, 0x11, &vec![0; V2_MAX_LEN])),
            Err(HeaderError::V2TooLong)
        );
        // The signature alone, or the fixed part alone, is incomplete.
        assert_eq!(parse(&V2_SIGNATURE[..5]), Ok(Parse::Incomplete));
        assert_eq!(parse(&v2(1, 0x11, &[0; 12])[..20]), Ok(Parse::Incomplete));
    }

    #[tokio::test]
    async fn bytes_after_the_header_are_kept() {
        let (mut client, server) = tokio::io::duplex(1024);
        client
            .write_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\nhello")
            .await
            .unwrap();
        drop(client);
        let (header, mut stream) = read_header(server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(header.source(), Some("203.0.113.7:51000".parse().unwrap()));
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "hello");
    }

    #[tokio::test]
    async fn a_header_sent_byte_by_byte_is_read() {
        let (mut client, server) = tokio::io::duplex(1024);
        let bytes = v2(1, 0x11, &[10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0, 81]);
        tokio::spawn(async move {
            for b in bytes.iter().chain(b"x") {
                client.write_all(&[*b]).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let (header, mut stream) = read_header(server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(header.source(), Some("10.0.0.1:80".parse().unwrap()));
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"x");
    }

    #[tokio::test]
    async fn silence_times_out_and_garbage_is_refused() {
        let (_client, server) = tokio::io::duplex(64);
        let err = read_header(server, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Timeout(_)), "{err}");
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let err = read_header(server, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Header(_)), "{err}");
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"PROXY TCP4").await.unwrap();
        drop(client);
        let err = read_header(server, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Closed), "{err}");
    }

    fn v1_line() -> impl Strategy<Value = (Vec<u8>, Header)> {
        prop_oneof![
            (
                any::<[u8; 4]>(),
                any::<[u8; 4]>(),
                any::<u16>(),
                any::<u16>()
            )
                .prop_map(|(s, d, sp, dp)| {
                    let source = SocketAddr::new(IpAddr::from(s), sp);
                    let destination = SocketAddr::new(IpAddr::from(d), dp);
                    let line = format!(
                        "PROXY TCP4 {} {} {sp} {dp}\r\n",
                        source.ip(),
                        destination.ip()
                    );
                    (
                        line.into_bytes(),
                        Header::Proxied {
                            source,
                            destination,
                        },
                    )
                }),
            (
                any::<[u8; 16]>(),
                any::<[u8; 16]>(),
                any::<u16>(),
                any::<u16>()
            )
                .prop_map(|(s, d, sp, dp)| {
                    let source = SocketAddr::new(IpAddr::from(s), sp);
                    let destination = SocketAddr::new(IpAddr::from(d), dp);
                    let line = format!(
                        "PROXY TCP6 {} {} {sp} {dp}\r\n",
                        source.ip(),
                        destination.ip()
                    );
                    (
                        line.into_bytes(),
                        Header::Proxied {
                            source,
                            destination,
                        },
                    )
                }),
        ]
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_after_a_signature(
            v1 in any::<bool>(),
            rest in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut bytes = if v1 { b"PROXY ".to_vec() } else { V2_SIGNATURE.to_vec() };
            bytes.extend_from_slice(&rest);
            if let Ok(Parse::Complete { consumed, .. }) = parse(&bytes) {
                prop_assert!(consumed <= bytes.len());
            }
        }

        #[test]
        fn v1_round_trips_and_prefixes_are_incomplete(
            (line, header) in v1_line(),
            cut in any::<prop::sample::Index>(),
        ) {
            prop_assert!(line.len() <= V1_MAX_LEN);
            let mut with_tail = line.clone();
            with_tail.extend_from_slice(b"GET / HTTP/1.1\r\n");
            prop_assert_eq!(parse(&with_tail), Ok(Parse::Complete { header, consumed: line.len() }));
            let cut = cut.index(line.len());
            prop_assert_eq!(parse(&line[..cut]), Ok(Parse::Incomplete));
        }

        #[test]
        fn v2_round_trips_and_prefixes_are_incomplete(
            s in any::<[u8; 4]>(), d in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>(),
            tlvs in proptest::collection::vec(any::<u8>(), 0..64),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut block = s.to_vec();
            block.extend_from_slice(&d);
            block.extend_from_slice(&sp.to_be_bytes());
            block.extend_from_slice(&dp.to_be_bytes());
            block.extend_from_slice(&tlvs);
            let bytes = v2(1, 0x11, &block);
            let header = Header::Proxied {
                source: SocketAddr::new(IpAddr::from(s), sp),
                destination: SocketAddr::new(IpAddr::from(d), dp),
            };
            prop_assert_eq!(parse(&bytes), Ok(Parse::Complete { header, consumed: bytes.len() }));
            let cut = cut.index(bytes.len());
            prop_assert_eq!(parse(&bytes[..cut]), Ok(Parse::Incomplete));
        }
    }
}
