//! `proxy-body-size` (default 1m, `0` = unlimited; ingress-nginx's
//! `client_max_body_size`): 413 Request Entity Too Large.
//!
//! A declared `Content-Length` above the limit is answered 413 before anything goes
//! upstream. A body without a declared length (chunked HTTP/1.1, HTTP/2 without
//! `content-length`) is streamed upstream through [`LimitedBody`], which counts the
//! bytes: past the limit it fails the body, so hyper aborts the upstream exchange (the
//! upstream sees a broken message and its connection closes, never a truncated body
//! that looks complete) and the client gets 413 if no response was started; if the
//! upstream had already answered, its connection is reset.
//!
//! Deliberate difference: ingress-nginx buffers request bodies by default
//! (`proxy-request-buffering: on`), so it could always answer 413 before contacting
//! the upstream; Gangplank streams, so the upstream may have received (and discarded)
//! the first part of an oversized chunked body.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::upstream::UpstreamError;

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Reading the client's body failed.
    #[error("client body: {0}")]
    Client(#[from] hyper::Error),
    /// The body grew past `proxy-body-size`.
    #[error("the request body is larger than proxy-body-size ({limit} bytes)")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

/// A client body that fails once more than `limit` bytes went through.
#[derive(Debug)]
pub struct LimitedBody {
    inner: Incoming,
    limit: u64,
    remaining: u64,
}

impl LimitedBody {
    /// Wraps `inner` with a limit of `limit` bytes.
    pub fn new(inner: Incoming, limit: u64) -> LimitedBody {
        LimitedBody {
            inner,
            limit,
            remaining: limit,
        }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.remaining = 0;
                        return Poll::Ready(Some(Err(BodyError::TooLarge { limit: this.limit })));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Client(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The declared `Content-Length`, if any (an unparsable one counts as none: hyper has
/// already rejected it).
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// True when an upstream exchange failed because the request body passed its limit.
pub fn too_large(error: &UpstreamError) -> bool {
    let UpstreamError::Exchange(e) = error else {
        return false;
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if matches!(
            s.downcast_ref::<BodyError>(),
            Some(BodyError::TooLarge { .. })
        ) {
            return true;
        }
        source = s.source();
    }
    false
}
