#![allow(clippy::unwrap_used, clippy::expect_used)] // Benches: a panic is a failed assertion.
#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! Header rewriting, the per-request work of `proxy::headers`: a client request's
//! headers into the upstream request's (hop-by-hop removed, forwarded headers set), and
//! an upstream response's into the client's (nanoseconds per request).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gangplank_proxy::headers::{ClientInfo, to_client, to_upstream_with};
use http::{HeaderMap, HeaderValue, header};

/// What a load generator or browser-less client sends: Host, User-Agent, Accept.
fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::with_capacity(3);
    h.insert(header::HOST, HeaderValue::from_static("app42.example.com"));
    h.insert(header::USER_AGENT, HeaderValue::from_static("curl/7.88.1"));
    h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    h
}

/// What nginx answers on a keep-alive connection.
fn response_headers() -> HeaderMap {
    let mut h = HeaderMap::with_capacity(6);
    h.insert(header::SERVER, HeaderValue::from_static("nginx/1.22.1"));
    h.insert(
        header::DATE,
        HeaderValue::from_static("Fri, 27 Nov 2026 05:00:00 GMT"),
    );
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h
}

fn headers(c: &mut Criterion) {
    let client = ClientInfo::new("10.1.2.3:50000".parse().unwrap(), 80, false);
    let host = HeaderValue::from_static("app42.example.com");
    let mut group = c.benchmark_group("headers");
    group.bench_function("to_upstream", |b| {
        b.iter_batched(
            request_headers,
            |mut h| {
                to_upstream_with(&mut h, &host, &client, false);
                h
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("to_client", |b| {
        b.iter_batched(
            response_headers,
            |mut h| {
                to_client(&mut h, false);
                h
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, headers);
criterion_main!(benches);
