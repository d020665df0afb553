//! Body types of the proxy: what it answers with (its own pages or an upstream's
//! streamed body) and what it sends upstream (the client's streamed body or nothing).
//! Plain enums rather than boxed trait objects: no allocation per request.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::upstream::{UpstreamBody, UpstreamBodyError};

use crate::drive::InFlight;
use crate::policy::limit::ConnectionGuard;
use crate::telemetry::{RequestRecord, Telemetry};
use crate::upstream::Checkin;

/// Completes a request's record when its response body ends (or is dropped) and hands
/// it to telemetry: `$body_bytes_sent` and `$request_time` are known only then. It
/// also holds the request's place on its client connection ([`InFlight`]), so a
/// response still streaming keeps the connection from its keep-alive timeout.
#[derive(Debug)]
pub struct Recorder {
    record: Option<Box<RequestRecord>>,
    started: std::time::Instant,
    telemetry: std::sync::Arc<Telemetry>,
    _in_flight: InFlight,
}

impl Recorder {
    /// A recorder for `record`, timed from `started`.
    pub fn new(
        record: Box<RequestRecord>,
        started: std::time::Instant,
        telemetry: std::sync::Arc<Telemetry>,
        in_flight: InFlight,
    ) -> Recorder {
        Recorder {
            record: Some(record),
            started,
            telemetry,
            _in_flight: in_flight,
        }
    }

    pub(crate) fn add_bytes(&mut self, n: usize) {
        if let Some(r) = self.record.as_mut() {
            r.body_bytes_sent += n as u64;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration = self.started.elapsed();
            self.telemetry.record(*record);
        }
    }
}

/// A response body.
#[derive(Debug)]
pub enum ProxyBody {
    /// A body the proxy produced.
    Full(Option<Bytes>),
    /// An upstream's body, streamed; the upstream connection returns to its pool when
    /// the body ends.
    Upstream {
        /// The upstream body.
        body: UpstreamBody,
        /// Returns the connection to the pool at the end of the body.
        checkin: Option<Checkin>,
        /// Finishes the access log record and metrics at the end of the body.
        recorder: Option<Recorder>,
        /// The request's `limit-connections` slot, freed at the end of the body.
        connection: Option<ConnectionGuard>,
    },
    /// An upstream's body, compressed and/or throttled (`crate::policy::response`).
    Shaped(Box<crate::policy::response::ShapedBody>),
}

/// The body is complete: the connection goes back to its pool, the record to
/// telemetry, and the `limit-connections` slot is freed.
fn settle(
    checkin: &mut Option<Checkin>,
    recorder: &mut Option<Recorder>,
    connection: &mut Option<ConnectionGuard>,
) {
    if let Some(c) = checkin.take() {
        c.checkin();
    }
    recorder.take();
    connection.take();
}

impl ProxyBody {
    /// Settles an upstream body that is already complete before any poll (empty
    /// bodies: hyper never polls them).
    pub fn settle_if_complete(&mut self) {
        if let ProxyBody::Upstream {
            body,
            checkin,
            recorder,
            connection,
        } = self
            && body.is_end_stream()
        {
            settle(checkin, recorder, connection);
        }
    }

    /// A complete body.
    pub fn full(bytes: Bytes) -> ProxyBody {
        ProxyBody::Full(Some(bytes).filter(|b| !b.is_empty()))
    }

    /// No body.
    pub fn empty() -> ProxyBody {
        ProxyBody::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        match self.get_mut() {
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream {
                body,
                checkin,
                recorder,
                connection,
            } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let (Some(r), Some(data)) = (recorder.as_mut(), frame.data_ref()) {
                            r.add_bytes(data.len());
                        }
                        // hyper stops polling once the body says it is complete (a
                        // Content-Length body after its last bytes), so "complete" must
                        // be acted on here, not only on the final `None`.
                        if body.is_end_stream() {
                            settle(checkin, recorder, connection);
                        }
                    }
                    Poll::Ready(None) => settle(checkin, recorder, connection),
                    Poll::Ready(Some(Err(_))) => {
                        // A broken body means a broken connection: never reuse it.
                        checkin.take();
                    }
                    Poll::Pending => {}
                }
                polled
            }
            ProxyBody::Shaped(body) => Pin::new(body.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Upstream { body, .. } => body.is_end_stream(),
            ProxyBody::Shaped(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Upstream { body, .. } => body.size_hint(),
            ProxyBody::Shaped(body) => body.size_hint(),
        }
    }
}

/// A request body sent upstream.
#[derive(Debug)]
pub enum RequestBody {
    /// The client's body, streamed.
    Client(Incoming),
    /// The client's body, streamed and counted against `proxy-body-size` (its length
    /// was not declared up front).
    Limited(crate::policy::LimitedBody),
    /// No body (requests without one can be retried freely).
    Empty,
    /// The client's body, copied for a mirror as it streams (`crate::mirror`).
    Mirrored(Box<crate::mirror::Tee>),
    /// A complete body (a mirror's copy).
    Buffered(Option<Bytes>),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = crate::policy::BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::policy::BodyError>>> {
        match self.get_mut() {
            RequestBody::Client(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(crate::policy::BodyError::Client),
            RequestBody::Limited(body) => Pin::new(body).poll_frame(cx),
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Mirrored(body) => Pin::new(body.as_mut()).poll_frame(cx),
            RequestBody::Buffered(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Client(body) => body.is_end_stream(),
            RequestBody::Limited(body) => body.is_end_stream(),
            RequestBody::Empty => true,
            RequestBody::Mirrored(body) => body.is_end_stream(),
            RequestBody::Buffered(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Client(body) => body.size_hint(),
            RequestBody::Limited(body) => body.size_hint(),
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Mirrored(body) => body.size_hint(),
            RequestBody::Buffered(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
