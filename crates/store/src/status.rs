//! Live counters behind `/nginx_status`, shared by every listener (admin server now,
//! proxy listeners later), plus the draining flag behind `/healthz`.
//!
//! Counters are relaxed atomics: a scrape may see a request counted in `requests` but
//! not yet in `writing`, as with nginx's own stub_status. Guards keep the gauges
//! balanced on every exit path, panics and cancelled futures included.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use gangplank_model::StubStatus;

/// Connection and request counters, and the draining flag.
#[derive(Debug, Default)]
pub struct Status {
    accepts: AtomicU64,
    handled: AtomicU64,
    requests: AtomicU64,
    active: AtomicU64,
    reading: AtomicU64,
    writing: AtomicU64,
    draining: AtomicBool,
}

/// Held while a connection is open.
#[derive(Debug)]
#[must_use = "the connection counts as active only while the guard lives"]
pub struct ConnectionGuard(Arc<Status>);

/// Held while a request is being processed (nginx's "writing" state).
#[derive(Debug)]
#[must_use = "the request counts as in flight only while the guard lives"]
pub struct RequestGuard(Arc<Status>);

/// Held while a request header is being read (nginx's "reading" state).
#[derive(Debug)]
#[must_use = "the connection counts as reading only while the guard lives"]
pub struct ReadingGuard(Arc<Status>);

impl Status {
    /// A new set of zeroed counters.
    pub fn new() -> Arc<Status> {
        Arc::new(Status::default())
    }

    /// Counts an accepted (and handled) connection; active until the guard drops.
    pub fn connection_accepted(self: &Arc<Self>) -> ConnectionGuard {
        self.accepts.fetch_add(1, Relaxed);
        self.handled.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
        ConnectionGuard(self.clone())
    }

    /// Counts a request; in flight ("writing") until the guard drops.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Relaxed);
        self.writing.fetch_add(1, Relaxed);
        RequestGuard(self.clone())
    }

    /// Marks a connection as reading a request header until the guard drops.
    pub fn reading_started(self: &Arc<Self>) -> ReadingGuard {
        self.reading.fetch_add(1, Relaxed);
        ReadingGuard(self.clone())
    }

    /// The counters in stub_status form; `waiting` is what is neither reading nor
    /// writing.
    pub fn stub_status(&self) -> StubStatus {
        let active = self.active.load(Relaxed);
        let reading = self.reading.load(Relaxed);
        let writing = self.writing.load(Relaxed);
        StubStatus {
            active,
            accepts: self.accepts.load(Relaxed),
            handled: self.handled.load(Relaxed),
            requests: self.requests.load(Relaxed),
            reading,
            writing,
            waiting: active.saturating_sub(reading + writing),
        }
    }

    /// Enters or leaves the draining state (shutdown): `/healthz` then reports 503.
    pub fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Relaxed);
    }

    /// True while shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.writing.fetch_sub(1, Relaxed);
    }
}

impl Drop for ReadingGuard {
    fn drop(&mut self) {
        self.0.reading.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_keep_gauges_balanced() {
        let status = Status::new();
        let c1 = status.connection_accepted();
        let c2 = status.connection_accepted();
        let r = status.request_started();
        let s = status.stub_status();
        assert_eq!((s.active, s.accepts, s.handled, s.requests), (2, 2, 2, 1));
        assert_eq!((s.reading, s.writing, s.waiting), (0, 1, 1));
        drop(r);
        drop(c1);
        let s = status.stub_status();
        assert_eq!((s.active, s.writing, s.waiting, s.requests), (1, 0, 1, 1));
        drop(c2);
        assert_eq!(status.stub_status().active, 0);
    }
}
