//! Watches: newline-delimited JSON events over a chunked response.
//!
//! A watch first sends its backlog, computed under the store lock together with its
//! subscription to live changes (so nothing falls between them):
//! - from `resourceVersion=N` (N > 0): the recorded changes after N, or a single `ERROR`
//!   event with a 410 Expired `Status` when they are no longer all kept;
//! - from `resourceVersion` unset or `0`, or with `sendInitialEvents=true`: a synthetic
//!   `ADDED` per current object (then, with `sendInitialEvents` and bookmarks, the
//!   `BOOKMARK` annotated `k8s.io/initial-events-end`).
//!
//! Then live changes. Selectors apply to both, as the real server applies them: an object
//! that stops matching is sent as `DELETED` (its previous state), one that starts
//! matching as `ADDED`. With `allowWatchBookmarks=true` a `BOOKMARK` carrying the latest
//! resourceVersion the watch has seen is sent every bookmark interval. The stream ends
//! after `timeoutSeconds`, on [`Faults::drop_watches`](super::Faults::drop_watches), when
//! the server stops, or when the watcher falls too far behind.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::Shared;
use super::error::ApiError;
use super::resources::ResourceType;
use super::selectors::Selectors;
use super::store::{Change, ChangeKind};

/// What one watch request asks for.
#[derive(Debug)]
pub(crate) struct WatchParams {
    pub rt: &'static ResourceType,
    pub namespace: Option<String>,
    pub selectors: Selectors,
    /// `None` for unset or `0`.
    pub resource_version: Option<u64>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub send_initial_events: bool,
}

/// A response body fed by a channel: each message is one chunk.
#[derive(Debug)]
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata}),
    )
}

/// The `ERROR` event of a failed watch.
pub(crate) fn error_line(error: &ApiError) -> Bytes {
    line("ERROR", &error.to_status())
}

/// The event this watch sees for a change, if any.
fn convert(change: &Change, p: &WatchParams) -> Option<Bytes> {
    if change.resource != p.rt {
        return None;
    }
    if p.namespace
        .as_ref()
        .is_some_and(|ns| *ns != change.namespace)
    {
        return None;
    }
    let now = p.selectors.matches(&change.object);
    match change.kind {
        ChangeKind::Added => now.then(|| line("ADDED", &change.object)),
        ChangeKind::Deleted => now.then(|| line("DELETED", &change.object)),
        ChangeKind::Modified => {
            let before = change
                .prev
                .as_ref()
                .filter(|prev| p.selectors.matches(prev));
            match (before, now) {
                (Some(_), true) => Some(line("MODIFIED", &change.object)),
                (None, true) => Some(line("ADDED", &change.object)),
                (Some(prev), false) => {
                    let mut gone = prev.clone();
                    gone["metadata"]["resourceVersion"] = json!(change.rv.to_string());
                    Some(line("DELETED", &gone))
                }
                (None, false) => None,
            }
        }
    }
}

/// Counts open watches while alive.
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.active_watches.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts a watch: computes the backlog, subscribes, and spawns the task that streams
/// into the returned body.
pub(crate) fn start(shared: &Arc<Shared>, p: WatchParams) -> ChannelBody {
    let mut backlog = Vec::new();
    let mut failed = false;
    let (mut changes, start_rv) = {
        let store = shared.store();
        let start_rv = store.resource_version();
        match p.resource_version {
            Some(rv) if !p.send_initial_events => match store.changes_since(rv) {
                Ok(list) => backlog.extend(list.iter().filter_map(|c| convert(c, &p))),
                Err(e) => {
                    backlog.push(error_line(&e));
                    failed = true;
                }
            },
            _ => {
                for obj in store.list(p.rt, p.namespace.as_deref(), &p.selectors) {
                    backlog.push(line("ADDED", &obj));
                }
                if p.send_initial_events && p.bookmarks {
                    backlog.push(bookmark(p.rt, start_rv, true));
                }
            }
        }
        (store.subscribe(), start_rv)
    };
    let mut dropped = shared.faults.drop_watches.subscribe();
    let mut shutdown = shared.shutdown.clone();
    let interval = shared.bookmark_interval;
    shared.active_watches.fetch_add(1, Ordering::Relaxed);
    let open = Open(shared.clone());
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let _open = open;
        for chunk in backlog {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        if failed {
            return;
        }
        let timeout = p.timeout.unwrap_or(Duration::from_secs(24 * 3600));
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut last_rv = start_rv;
        loop {
            let chunk = tokio::select! {
                change = changes.recv() => match change {
                    Ok(c) if c.rv <= last_rv => continue,
                    Ok(c) => {
                        last_rv = c.rv;
                        match convert(&c, &p) {
                            Some(chunk) => chunk,
                            None => continue,
                        }
                    }
                    // Too slow a watcher is dropped, as the real server drops it; it
                    // re-watches from its last resourceVersion.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if p.bookmarks => bookmark(p.rt, last_rv, false),
                () = &mut deadline => return,
                _ = dropped.changed() => return,
                _ = shutdown.changed() => return,
                () = tx.closed() => return,
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    ChannelBody { rx }
}
