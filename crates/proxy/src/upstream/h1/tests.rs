#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::upstream::{PoolSettings, Timeouts, UpstreamBody, UpstreamError};

fn get(target: &str) -> Request<RequestBody> {
    Request::builder()
        .uri(target)
        .header("host", "app.example.com")
        .body(RequestBody::Empty)
        .unwrap()
}

fn head_of(text: &str) -> Head {
    let mut buf = BytesMut::from(text);
    parse_head(&mut buf).unwrap().unwrap()
}

// ---------------------------------------------------------------------------
// The request head

#[test]
fn the_request_head_is_what_hyper_would_write() {
    let mut request = get("/api/x?y=1");
    *request.method_mut() = Method::DELETE;
    let headers = request.headers_mut();
    headers.insert("x-request-id", HeaderValue::from_static("abc"));
    headers.append("accept", HeaderValue::from_static("a"));
    headers.append("accept", HeaderValue::from_static("b"));
    // A body-less request never announces a chunked body.
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    let mut out = Vec::new();
    encode(&request, None, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "DELETE /api/x?y=1 HTTP/1.1\r\nhost: app.example.com\r\nx-request-id: abc\r\n\
         accept: a\r\naccept: b\r\n\r\n"
    );
}

#[test]
fn forwarded_headers_follow_the_fields_the_request_lacks_them_for() {
    let client = crate::headers::ClientInfo::new("192.0.2.7:5555".parse().unwrap(), 80, false);
    let mut request = get("/");
    request
        .headers_mut()
        .insert("x-forwarded-proto", HeaderValue::from_static("https"));
    let host = HeaderValue::from_static("app.example.com");
    let forwarding = crate::headers::forwarding(request.headers_mut(), &host, &client, true);
    // Set after the rewrite, as `proxy-set-headers` does: it wins.
    request
        .headers_mut()
        .insert("x-scheme", HeaderValue::from_static("policy"));
    let mut out = Vec::new();
    encode(&request, Some(&forwarding), &mut out);
    let head = String::from_utf8(out).unwrap();
    let (id_line, rest) = head
        .split_once("x-request-id: ")
        .and_then(|(before, after)| {
            Some((
                after.split_once("\r\n")?.0,
                before.to_owned() + after.split_once("\r\n")?.1,
            ))
        })
        .unwrap();
    assert_eq!(id_line.len(), 32, "{head}");
    assert!(id_line.bytes().all(|b| b.is_ascii_hexdigit()), "{head}");
    assert_eq!(
        rest,
        "GET / HTTP/1.1\r\nhost: app.example.com\r\nx-scheme: policy\r\n\
         x-real-ip: 192.0.2.7\r\nx-forwarded-for: 192.0.2.7\r\n\
         x-forwarded-host: app.example.com\r\nx-forwarded-port: 80\r\n\
         x-forwarded-proto: http\r\nx-forwarded-scheme: http\r\n\r\n"
    );
}

#[test]
fn only_body_less_http11_requests_without_upgrade_take_the_fast_path() {
    assert!(eligible(&get("/")));
    let mut with_body = get("/");
    *with_body.body_mut() = RequestBody::Buffered(Some(Bytes::from_static(b"x")));
    assert!(!eligible(&with_body));
    let mut upgrade = get("/");
    upgrade
        .headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    assert!(!eligible(&upgrade));
    let mut http10 = get("/");
    *http10.version_mut() = Version::HTTP_10;
    assert!(!eligible(&http10));
}

// ---------------------------------------------------------------------------
// The response head and its framing

#[test]
fn a_partial_head_consumes_nothing_and_a_complete_one_leaves_the_body() {
    let text = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX-Name: v a l\r\n\r\nok";
    for cut in 0..text.len() - 2 {
        let mut buf = BytesMut::from(&text[..cut]);
        assert!(parse_head(&mut buf).unwrap().is_none(), "cut at {cut}");
        assert_eq!(buf.len(), cut);
    }
    let mut buf = BytesMut::from(text);
    let head = parse_head(&mut buf).unwrap().unwrap();
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.headers["x-name"], "v a l");
    assert_eq!(head.headers[header::CONTENT_LENGTH], "2");
    assert_eq!(&buf[..], b"ok");
}

#[test]
fn broken_heads_are_refused_with_a_reason() {
    for (text, reason) in [
        ("HTTP/1.1 2000 OK\r\n\r\n", "malformed response header"),
        ("NOTHTTP 200 OK\r\n\r\n", "malformed response header"),
        (
            "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
            "malformed response header",
        ),
        ("HTTP/1.1 099 Low\r\n\r\n", "bad status code"),
    ] {
        let mut buf = BytesMut::from(text);
        match parse_head(&mut buf) {
            Err(Http1Error::Invalid(r)) => assert_eq!(r, reason, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    let mut buf = BytesMut::from(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_str());
    assert!(matches!(
        parse_head(&mut buf),
        Err(Http1Error::Invalid("too many header fields"))
    ));
}

#[test]
fn framing_follows_rfc_9112() {
    type Case = (bool, &'static str, Result<(Framing, bool), &'static str>);
    let cases: &[Case] = &[
        (
            false,
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            Ok((Framing::Length(5), true)),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\ncontent-length: 5\r\n\r\n",
            Ok((Framing::Length(5), true)),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            Ok((Framing::Empty, true)),
        ),
        (
            true,
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            Ok((Framing::Empty, true)),
        ),
        (
            false,
            "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
            Ok((Framing::Empty, true)),
        ),
        (
            false,
            "HTTP/1.1 304 Not Modified\r\n\r\n",
            Ok((Framing::Empty, true)),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            Ok((Framing::Chunked, true)),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n",
            Ok((Framing::Chunked, true)),
        ),
        // Both: chunked wins, the connection is not trusted afterwards.
        (
            false,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
            Ok((Framing::Chunked, false)),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            Ok((Framing::Close, false)),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\n\r\n",
            Ok((Framing::Close, false)),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 1\r\n\r\n",
            Ok((Framing::Length(1), false)),
        ),
        (
            false,
            "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
            Ok((Framing::Length(1), false)),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            Err("conflicting Content-Length values"),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
            Err("bad Content-Length"),
        ),
        (
            false,
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
            Err("bad Content-Length"),
        ),
    ];
    for (head_request, text, expected) in cases {
        let got = framing(*head_request, &head_of(text));
        match (got, expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, *expected, "{text:?}"),
            (Err(Http1Error::Invalid(got)), Err(expected)) => {
                assert_eq!(got, *expected, "{text:?}")
            }
            (got, _) => panic!("{text:?}: {got:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Chunked bodies

/// Data, trailers and what follows the body.
type Decoding = (Vec<u8>, Option<HeaderMap>, Vec<u8>);

/// Runs the decoder over `wire` fed in pieces of `step` bytes: the data, the
/// trailers, and what is left in the buffer after the end.
fn decode_all(wire: &[u8], step: usize) -> Result<Decoding, Http1Error> {
    let mut chunk = Chunk::Size;
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    loop {
        match chunk.decode(&mut buf)? {
            Some(Decoded::Data(bytes)) => data.extend_from_slice(&bytes),
            Some(Decoded::End(trailers)) => {
                let mut rest = buf.to_vec();
                rest.extend_from_slice(&wire[fed..]);
                return Ok((data, trailers, rest));
            }
            None if fed >= wire.len() => return Err(Http1Error::Truncated),
            None => {
                let end = (fed + step).min(wire.len());
                buf.extend_from_slice(&wire[fed..end]);
                fed = end;
            }
        }
    }
}

fn chunked(pieces: &[Vec<u8>], trailers: &[(String, String)]) -> Vec<u8> {
    let mut wire = Vec::new();
    for piece in pieces.iter().filter(|p| !p.is_empty()) {
        wire.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    wire
}

proptest! {
    /// However the bytes arrive, the decoder yields the chunks' data, the trailers, and
    /// leaves what follows the body untouched.
    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes(
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
        trailers in proptest::collection::vec(("x-[a-z]{1,8}", "[a-zA-Z0-9]([a-zA-Z0-9 ]{0,10}[a-zA-Z0-9])?"), 0..3),
        step in 1usize..64,
    ) {
        let mut wire = chunked(&pieces, &trailers);
        wire.extend_from_slice(b"HTTP/1.1 200");
        let (data, got_trailers, rest) = decode_all(&wire, step).unwrap();
        prop_assert_eq!(data, pieces.concat());
        prop_assert_eq!(rest, b"HTTP/1.1 200".to_vec());
        match got_trailers {
            None => prop_assert!(trailers.is_empty()),
            Some(map) => {
                let got: Vec<(String, String)> = map
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                    .collect();
                prop_assert_eq!(got, trailers);
            }
        }
    }
}

#[test]
fn broken_chunked_bodies_are_refused() {
    for (wire, reason) in [
        (&b"zz\r\n"[..], "bad chunk size"),
        (b"2\r\nokX\r\n0\r\n\r\n", "chunk data not followed by CRLF"),
        (b"0\r\nbad trailer\r\n\r\n", "malformed trailer section"),
    ] {
        match decode_all(wire, 3) {
            Err(Http1Error::Invalid(r)) => assert_eq!(r, reason),
            other => panic!("{wire:?}: {other:?}"),
        }
    }
    let mut long = b"1;ext=".to_vec();
    long.resize(MAX_CHUNK_LINE + 10, b'x');
    assert!(matches!(
        decode_all(&long, 512),
        Err(Http1Error::Invalid("chunk size line too long"))
    ));
}

// ---------------------------------------------------------------------------
// Exchanges with a scripted upstream on 127.0.0.1

/// What the scripted upstream does with one request on a connection.
#[derive(Clone)]
enum Step {
    /// Answers with these bytes, written in pieces 20 ms apart.
    Answer(Vec<&'static [u8]>),
    /// Closes the connection without answering.
    Close,
    /// Never answers.
    Hold,
}

/// An upstream that plays `script[i]` on its i-th connection (the last script for any
/// later one), then closes it. Returns its address and its accepted connections.
async fn upstream(script: Vec<Vec<Step>>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let steps = script[n.min(script.len() - 1)].clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for step in steps {
                    // One request head per step.
                    loop {
                        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            break;
                        }
                        let mut buf = [0u8; 1024];
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    match step {
                        Step::Answer(pieces) => {
                            for (i, piece) in pieces.iter().enumerate() {
                                if i > 0 {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                                if socket.write_all(piece).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Step::Close => return,
                        Step::Hold => std::future::pending::<()>().await,
                    }
                }
                // Let the proxy read the last answer before the connection ends.
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    (addr, accepted)
}

const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    read: Duration::from_secs(2),
};

fn pool() -> Arc<Pool> {
    Pool::new(PoolSettings::default())
}

/// Sends `request` and reads the whole answer: status, body and trailers.
async fn send(
    pool: &Arc<Pool>,
    addr: SocketAddr,
    request: Request<RequestBody>,
) -> Result<(StatusCode, Vec<u8>, Option<HeaderMap>), UpstreamError> {
    let (response, checkin) = pool
        .send(addr, request, TIMEOUTS)
        .await
        .map_err(|failed| failed.error)?;
    assert!(
        checkin.is_none(),
        "the fast path's body returns its connection"
    );
    assert!(matches!(response.body(), UpstreamBody::Http1(_)));
    let status = response.status();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    Ok((status, collected.to_bytes().to_vec(), trailers))
}

#[tokio::test]
async fn keep_alive_connections_carry_every_framing_and_come_back() {
    let (addr, accepted) = upstream(vec![vec![
        Step::Answer(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]),
        // A 103 first, then the head, then the body in two late pieces.
        Step::Answer(vec![
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 10\r\n\r\n",
            b"hello",
            b"world",
        ]),
        Step::Answer(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"6\r\n world\r\n0\r\nx-sum: 42\r\n\r\n",
        ]),
        Step::Answer(vec![b"HTTP/1.1 204 No Content\r\n\r\n"]),
        Step::Answer(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"]),
    ]])
    .await;
    let pool = pool();
    let (status, body, _) = send(&pool, addr, get("/a")).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    assert_eq!(
        pool.idle_count(),
        1,
        "a body read with its head frees the connection"
    );

    let (status, body, _) = send(&pool, addr, get("/b")).await.unwrap();
    assert_eq!(
        (status, &body[..]),
        (StatusCode::CREATED, &b"helloworld"[..])
    );

    let (status, body, trailers) = send(&pool, addr, get("/c")).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello world"[..]));
    assert_eq!(trailers.unwrap()["x-sum"], "42");

    let (status, body, _) = send(&pool, addr, get("/d")).await.unwrap();
    assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0));

    let mut head = get("/e");
    *head.method_mut() = Method::HEAD;
    let (status, body, _) = send(&pool, addr, head).await.unwrap();
    assert_eq!((status, body.len()), (StatusCode::OK, 0));

    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection for five requests"
    );
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn heads_and_bodies_larger_than_the_first_reads_arrive_whole() {
    // A 10 KiB head and a 300 KiB body: several reads each, growing as they fill up.
    let fields: String = (0..90)
        .map(|i| format!("x-field-{i:03}: {}\r\n", "v".repeat(100)))
        .collect();
    let head = format!("HTTP/1.1 200 OK\r\n{fields}content-length: 307200\r\n\r\n");
    let body: Vec<u8> = (0..307_200u32).map(|i| (i % 251) as u8).collect();
    let mut answer = head.into_bytes();
    answer.extend_from_slice(&body);
    let answer: &'static [u8] = answer.leak();
    let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let (addr, accepted) = upstream(vec![vec![
        Step::Answer(vec![answer]),
        Step::Answer(vec![ok]),
    ]])
    .await;
    let pool = pool();
    let (response, _) = pool.send(addr, get("/"), TIMEOUTS).await.unwrap();
    assert_eq!(response.headers().len(), 91);
    assert_eq!(response.headers()["x-field-089"], "v".repeat(100));
    let got = response.into_body().collect().await.unwrap().to_bytes();
    assert!(got == body, "the body differs");
    // The connection is back, and serves the next answer.
    let (_, small, _) = send(&pool, addr, get("/")).await.unwrap();
    assert_eq!(&small[..], b"ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_pool_keeps_no_more_idle_connections_than_its_limit() {
    let (addr, accepted) = upstream(vec![vec![Step::Answer(vec![
        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n",
        b"done",
    ])]])
    .await;
    let pool = Pool::new(PoolSettings {
        max_idle: 1,
        ..PoolSettings::default()
    });
    // Two exchanges at once need two connections; only one may stay idle after.
    let (a, _) = pool.send(addr, get("/"), TIMEOUTS).await.unwrap();
    let (b, _) = pool.send(addr, get("/"), TIMEOUTS).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    a.into_body().collect().await.unwrap();
    b.into_body().collect().await.unwrap();
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn a_body_that_runs_to_the_close_is_read_and_its_connection_not_kept() {
    let (addr, _) = upstream(vec![vec![Step::Answer(vec![
        b"HTTP/1.1 200 OK\r\n\r\nuntil",
        b" the end",
    ])]])
    .await;
    let pool = pool();
    // The scripted upstream closes 200 ms after its last piece.
    let (status, body, _) = send(&pool, addr, get("/")).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"until the end"[..]));
    assert_eq!(pool.idle_count(), 0);
}

#[tokio::test]
async fn bytes_past_the_end_of_a_response_keep_its_connection_out_of_the_pool() {
    let (addr, accepted) = upstream(vec![vec![
        Step::Answer(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokJUNK"]),
        Step::Answer(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]),
    ]])
    .await;
    let pool = pool();
    let (_, body, _) = send(&pool, addr, get("/")).await.unwrap();
    assert_eq!(&body[..], b"ok");
    assert_eq!(pool.idle_count(), 0);
    let (_, body, _) = send(&pool, addr, get("/")).await.unwrap();
    assert_eq!(&body[..], b"ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_reused_connection_closed_before_answering_sends_an_idempotent_request_again() {
    // First connection: one answer, then it closes on the next request.
    let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let (addr, accepted) = upstream(vec![
        vec![Step::Answer(vec![ok]), Step::Close],
        vec![Step::Answer(vec![ok]), Step::Close],
        vec![Step::Answer(vec![ok])],
    ])
    .await;
    let pool = pool();
    send(&pool, addr, get("/")).await.unwrap();
    // The GET goes again, on a new connection.
    let (status, _, _) = send(&pool, addr, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // A POST is not sent twice: the failure is the caller's to judge.
    let mut post = get("/");
    *post.method_mut() = Method::POST;
    let error = send(&pool, addr, post).await.unwrap_err();
    assert!(
        matches!(error, UpstreamError::Http1(Http1Error::Closed)),
        "{error}"
    );
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn broken_answers_are_errors_that_name_the_problem() {
    let (addr, _) = upstream(vec![
        vec![Step::Answer(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nok",
        ])],
        vec![Step::Answer(vec![
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ])],
        vec![Step::Answer(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        ])],
    ])
    .await;
    let pool = pool();
    let error = send(&pool, addr, get("/")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "upstream exchange failed: upstream sent an invalid response: conflicting Content-Length values"
    );
    let error = send(&pool, addr, get("/")).await.unwrap_err();
    assert!(
        error.to_string().contains("101 Switching Protocols"),
        "{error}"
    );
    // A body cut short is an error of the body, not a short success.
    let (response, _) = pool.send(addr, get("/"), TIMEOUTS).await.unwrap();
    let error = response.into_body().collect().await.unwrap_err();
    assert!(
        matches!(
            &error,
            crate::upstream::UpstreamBodyError::Http1(Http1Error::Truncated)
        ),
        "{error}"
    );
    assert_eq!(pool.idle_count(), 0);
}

#[tokio::test]
async fn no_answer_within_the_read_timeout_is_a_timeout() {
    let (addr, _) = upstream(vec![vec![Step::Hold]]).await;
    let pool = pool();
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        read: Duration::from_millis(100),
    };
    let failed = pool.send(addr, get("/"), timeouts).await.unwrap_err();
    assert!(matches!(failed.error, UpstreamError::ReadTimeout(_)));
    assert_eq!(failed.error.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        failed.request.is_none(),
        "the request left: it is not handed back"
    );
}

#[tokio::test]
async fn idle_connections_closed_by_the_upstream_are_not_used() {
    let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    // Every connection answers once and closes 200 ms later.
    let (addr, accepted) = upstream(vec![vec![Step::Answer(vec![ok])]]).await;
    let pool = pool();
    send(&pool, addr, get("/")).await.unwrap();
    assert_eq!(pool.idle_count(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A POST would not be sent twice: it must not meet the dead connection.
    let mut post = get("/");
    *post.method_mut() = Method::POST;
    let (status, _, _) = send(&pool, addr, post).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// Every exchange's result is moved through each layer that returns it: a failure
/// carrying the request unboxed made it 584 bytes, twice a success's size.
#[test]
fn the_result_of_an_exchange_is_no_bigger_than_a_success() {
    use crate::upstream::{Checkin, Failed};
    type Success = (http::Response<UpstreamBody>, Option<Checkin>);
    let result = std::mem::size_of::<Result<Success, Failed>>();
    let success = std::mem::size_of::<Success>();
    assert!(
        result <= success,
        "{result} bytes for a {success}-byte success"
    );
}
