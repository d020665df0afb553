//! Request mirroring (`mirror-target`, `mirror-host`, `mirror-request-body`): a
//! fire-and-forget copy of each request of a location goes to the target URL and its
//! answer is discarded, as nginx's `mirror`.
//!
//! The copy never slows or fails the main request: it is sent by a task of its own,
//! after the main request's body has streamed to the upstream (the body is copied
//! frame by frame as it passes, up to [`BODY_CAP`]; a larger body is not copied and
//! the copy goes without it). Each worker keeps at most [`MAX_IN_FLIGHT`] copies in
//! flight: beyond that, copies are dropped and counted ([`dropped`]). A copy that is not
//! done within [`TIMEOUT`] is abandoned. Deliberate differences with nginx, where the
//! mirror subrequest can delay the main request's completion.
//!
//! The copy carries the headers sent to the upstream (with `Host` set to `mirror-host`
//! or the target's host); a copy whose target resolves to one of the proxy's own
//! listeners is refused.

use std::cell::Cell;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gangplank_store::policy::MirrorTarget;
use http::header::{self, HeaderValue};
use http::{Request, Uri};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use crate::body::RequestBody;
use crate::handler::{Shared, WorkerContext};
use crate::policy::BodyError;
use crate::policy::template::{Escape, View, expand};
use crate::upstream::{Pool, Timeouts, Transport};

/// Request bodies up to this size are copied to the mirror; larger ones are not.
pub const BODY_CAP: usize = 1024 * 1024;
/// Mirror requests in flight per worker; more are dropped.
pub const MAX_IN_FLIGHT: usize = 64;
/// A mirror request (body wait, connect and answer) is abandoned after this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);

static DROPPED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Mirror requests in flight on this worker thread.
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Mirror requests dropped because their worker had [`MAX_IN_FLIGHT`] in flight.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// One of this worker's in-flight slots, freed on drop (on the worker's own thread:
/// the copy's task runs on the worker's current-thread runtime).
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        IN_FLIGHT.with(|n| {
            if n.get() >= MAX_IN_FLIGHT {
                return None;
            }
            n.set(n.get() + 1);
            Some(Slot)
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Starts the copy of a request whose upstream request is `parts` (headers as sent
/// upstream) and `body`; returns the body to send upstream (the same, or one that
/// copies itself for the mirror as it streams).
pub fn start(
    ctx: &WorkerContext,
    target: &Arc<MirrorTarget>,
    parts: &http::request::Parts,
    view: &View<'_>,
    body: RequestBody,
) -> RequestBody {
    let Some(slot) = Slot::take() else {
        let n = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(dropped = n, "mirror requests dropped: too many in flight");
        }
        return body;
    };
    let url = expand(&target.url, view, None, Escape::Uri);
    let Ok(uri) = Uri::try_from(url.as_str()) else {
        tracing::debug!(%url, "mirror-target expanded to an invalid URL");
        return body;
    };
    let Some(authority) = uri.authority().cloned() else {
        return body;
    };
    let host = match &target.host {
        Some(host) => host.clone(),
        None => match HeaderValue::from_str(authority.as_str()) {
            Ok(v) => v,
            Err(_) => return body,
        },
    };
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = uri
        .path_and_query()
        .and_then(|pq| Uri::try_from(pq.as_str()).ok())
        .unwrap_or_else(|| Uri::from_static("/"));
    *copy.headers_mut() = parts.headers.clone();
    copy.headers_mut().insert(header::HOST, host);

    let declared = http_body::Body::size_hint(&body).upper();
    // No copy of the body: none asked, none sent, or one declared over the cap.
    let skip_body = !target.request_body
        || body.is_end_stream()
        || declared.is_some_and(|n| n > BODY_CAP as u64);
    let (body, copied) = if skip_body {
        (body, None)
    } else {
        let (tx, rx) = oneshot::channel();
        (
            RequestBody::Mirrored(Box::new(Tee {
                inner: body,
                copy: BytesMut::new(),
                overflow: false,
                done: Some(tx),
            })),
            Some(rx),
        )
    };
    let shared = ctx.shared.clone();
    let pool = ctx.pool.clone();
    let target = target.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let sent = tokio::time::timeout(
            TIMEOUT,
            send(shared, pool, target, uri, authority, copy, copied),
        )
        .await;
        if sent.is_err() {
            tracing::debug!("mirror request timed out");
        }
    });
    body
}

async fn send(
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    target: Arc<MirrorTarget>,
    uri: Uri,
    authority: http::uri::Authority,
    copy: Request<()>,
    copied: Option<oneshot::Receiver<Option<Bytes>>>,
) {
    let (mut parts, ()) = copy.into_parts();
    let body = match copied {
        // The main body ended: its copy, or nothing when it was too large.
        Some(rx) => match rx.await {
            Ok(Some(bytes)) => Some(bytes),
            Ok(None) => None,
            // The client's body broke off: no copy of a request that never was.
            Err(_) => return,
        },
        None => None,
    };
    let body = match body {
        Some(bytes) if !bytes.is_empty() => {
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            RequestBody::Buffered(Some(bytes))
        }
        _ => {
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
            RequestBody::Empty
        }
    };
    let https = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let name = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let Some(addr) = shared.resolver.resolve(name, port).await else {
        tracing::debug!(host = name, "mirror target does not resolve");
        return;
    };
    if shared
        .self_addresses
        .iter()
        .any(|own| crate::handler::is_self(addr, *own))
    {
        tracing::error!(endpoint = %addr, "mirror target is the proxy itself; not sent");
        return;
    }
    let request = Request::from_parts(parts, body);
    let timeouts = Timeouts {
        connect: TIMEOUT,
        read: TIMEOUT,
    };
    let sent = match (&target.tls, https) {
        (Some(tls), true) => {
            pool.send_with(
                addr,
                Some(name),
                Transport::Http1Tls(tls),
                request,
                timeouts,
            )
            .await
        }
        _ => pool.send(addr, request, timeouts).await,
    };
    match sent {
        Ok((response, checkin)) => {
            // Read and discard the answer, so the connection can be reused.
            let mut body = response.into_body();
            while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
                if frame.is_err() {
                    return;
                }
            }
            if let Some(checkin) = checkin {
                checkin.checkin();
            }
        }
        Err(failed) => {
            tracing::debug!(endpoint = %addr, error = %failed.error, "mirror request failed")
        }
    }
}

/// The client's body on its way upstream, copied for the mirror up to [`BODY_CAP`].
#[derive(Debug)]
pub struct Tee {
    inner: RequestBody,
    copy: BytesMut,
    overflow: bool,
    done: Option<oneshot::Sender<Option<Bytes>>>,
}

impl Tee {
    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            let copy = (!self.overflow).then(|| std::mem::take(&mut self.copy).freeze());
            let _ = done.send(copy);
        }
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && !this.overflow
                {
                    if this.copy.len() + data.len() > BODY_CAP {
                        this.overflow = true;
                        this.copy = BytesMut::new();
                    } else {
                        this.copy.extend_from_slice(data);
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(None) => this.finish(),
            // A broken body is not mirrored: the sender is dropped.
            Poll::Ready(Some(Err(_))) => this.done = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn tee(len: usize) -> (usize, Option<Bytes>) {
        let (tx, rx) = oneshot::channel();
        let body = RequestBody::Mirrored(Box::new(Tee {
            inner: RequestBody::Buffered(Some(Bytes::from(vec![b'a'; len]))),
            copy: BytesMut::new(),
            overflow: false,
            done: Some(tx),
        }));
        let sent = body.collect().await.ok().map_or(0, |b| b.to_bytes().len());
        (sent, rx.await.ok().flatten())
    }

    #[tokio::test]
    async fn bodies_are_copied_up_to_the_cap() {
        let (sent, copy) = tee(1000).await;
        assert_eq!(sent, 1000);
        assert_eq!(copy.map(|c| c.len()), Some(1000));
        let (sent, copy) = tee(BODY_CAP + 1).await;
        assert_eq!(
            sent,
            BODY_CAP + 1,
            "the upstream always gets the whole body"
        );
        assert_eq!(copy, None, "too large to copy");
    }

    #[test]
    fn slots_are_bounded_per_worker() {
        let slots: Vec<Slot> = std::iter::from_fn(Slot::take)
            .take(MAX_IN_FLIGHT + 5)
            .collect();
        assert_eq!(slots.len(), MAX_IN_FLIGHT);
        assert!(Slot::take().is_none());
        drop(slots);
        assert!(Slot::take().is_some());
    }
}
