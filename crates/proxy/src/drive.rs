//! What runs around each client connection: the worker's graceful shutdown and the
//! keep-alive timeout (ConfigMap `keep-alive`, nginx's `keepalive_timeout`).
//!
//! [`Drain`] is the worker's shutdown signal: every connection holds a [`Watch`], and
//! [`Drain::shutdown`] signals them all, then waits until the last one is gone.
//!
//! [`Drive`] polls a hyper connection. It starts the connection's graceful shutdown
//! when the worker drains (HTTP/1 closes after its current response, HTTP/2 sends
//! GOAWAY), and closes connections that stay idle: no request in flight and none
//! started for the keep-alive period. The same timeout covers a client that opens a
//! connection and sends nothing, or only part of a request header, as nginx's
//! `client_header_timeout`.
//!
//! Both are cheap on the request path, which is why they are not hyper's own
//! (`header_read_timeout`, hyper-util's `GracefulShutdown`): those create or re-poll
//! a timer or a notification per request. Here a connection's timer fires every fifth
//! of the period and looks at its [`Activity`], two counters each request updates
//! with one atomic addition; the shutdown signal is an atomic load per poll. A
//! connection idle for the period is therefore closed between one and 1.2 periods
//! after its last response ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// Ticks of the idle timer per keep-alive period.
const TICKS: u32 = 5;

/// The worker's shutdown signal, and the count of connections still open.
#[derive(Debug)]
pub struct Drain {
    tx: watch::Sender<()>,
}

/// One connection's view of the [`Drain`]; the drain waits for it to be dropped.
#[derive(Debug)]
pub struct Watch {
    rx: watch::Receiver<()>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain::new()
    }
}

impl Drain {
    /// A drain with no connection yet.
    pub fn new() -> Drain {
        let (tx, _) = watch::channel(());
        Drain { tx }
    }

    /// A watch for a new connection.
    pub fn watcher(&self) -> Watch {
        Watch {
            rx: self.tx.subscribe(),
        }
    }

    /// Signals every watch, then waits until all of them are dropped.
    pub async fn shutdown(self) {
        // No receiver left is fine: nothing to wait for.
        let _ = self.tx.send(());
        self.tx.closed().await;
    }
}

impl Watch {
    /// True once the drain signalled (or was dropped).
    fn draining(&self) -> bool {
        !matches!(self.rx.has_changed(), Ok(false))
    }

    /// A future that completes when the drain signals; polled once, it stays
    /// registered and wakes the task.
    fn signal(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut rx = self.rx.clone();
        Box::pin(async move {
            let _ = rx.changed().await;
        })
    }
}

/// What a client connection is doing: requests started (high 32 bits, wrapping) and
/// requests in flight (low 32 bits), in one word so a request costs one addition.
#[derive(Debug, Default)]
pub struct Activity {
    state: AtomicU64,
}

/// One started request of a connection; in flight until dropped. The proxy drops it
/// when the response body ends (or is dropped), so a response still streaming keeps
/// its connection busy.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Activity {
    /// A new, idle connection's activity.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity::default())
    }

    /// A request starts.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.state.fetch_add((1 << 32) | 1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// (requests started, requests in flight).
    fn counts(&self) -> (u32, u32) {
        let state = self.state.load(Ordering::Relaxed);
        ((state >> 32) as u32, state as u32)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.state.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drives one hyper connection: see the [module docs](self).
pub struct Drive<C> {
    conn: Pin<Box<C>>,
    watch: Watch,
    /// Registered on the first poll; the drain's signal wakes the task through it.
    signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    draining: bool,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
    /// The timer was polled since its last reset (so it will wake the task).
    armed: bool,
    tick: Duration,
    /// Requests started as of the last tick.
    seen: u32,
    /// Ticks in a row without activity.
    idle_ticks: u32,
    /// The connection was idle for the period and was asked to close; it is dropped
    /// at the next tick if still open.
    expired: bool,
}

impl<C> Drive<C>
where
    C: GracefulConnection,
{
    /// Drives `conn`: it closes when idle for `keep_alive` (`activity` says what it
    /// does) and drains when `watch` signals.
    pub fn new(conn: C, watch: Watch, activity: Arc<Activity>, keep_alive: Duration) -> Self {
        let tick = (keep_alive / TICKS).max(Duration::from_millis(10));
        Drive {
            conn: Box::pin(conn),
            watch,
            signal: None,
            draining: false,
            activity,
            timer: Box::pin(tokio::time::sleep(tick)),
            armed: false,
            tick,
            seen: 0,
            idle_ticks: 0,
            expired: false,
        }
    }

    /// The timer fired: true when the connection is to be dropped now.
    fn on_tick(&mut self) -> bool {
        let (started, in_flight) = self.activity.counts();
        if in_flight > 0 || started != self.seen {
            self.seen = started;
            self.idle_ticks = 0;
            self.expired = false;
            return false;
        }
        if self.expired {
            // Asked to close a tick ago and still open (a request header never
            // completed): drop it.
            return true;
        }
        self.idle_ticks += 1;
        if self.idle_ticks >= TICKS {
            tracing::debug!("client connection idle for its keep-alive period: closing");
            self.expired = true;
            self.conn.as_mut().graceful_shutdown();
        }
        false
    }
}

impl<C> Future for Drive<C>
where
    C: GracefulConnection,
{
    type Output = Result<(), C::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if !this.draining {
            let draining = match &mut this.signal {
                Some(_) => this.watch.draining(),
                None => {
                    let mut signal = this.watch.signal();
                    let ready = signal.as_mut().poll(cx).is_ready();
                    this.signal = Some(signal);
                    ready
                }
            };
            if draining {
                this.draining = true;
                this.conn.as_mut().graceful_shutdown();
            }
        }
        if !this.armed || this.timer.is_elapsed() {
            while this.timer.as_mut().poll(cx).is_ready() {
                if this.on_tick() {
                    return Poll::Ready(Ok(()));
                }
                let next = Instant::now() + this.tick;
                this.timer.as_mut().reset(next);
            }
            this.armed = true;
        }
        this.conn.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_counts_started_and_in_flight_requests() {
        let activity = Activity::new();
        assert_eq!(activity.counts(), (0, 0));
        let first = activity.start();
        let second = activity.start();
        assert_eq!(activity.counts(), (2, 2));
        drop(first);
        assert_eq!(activity.counts(), (2, 1));
        drop(second);
        assert_eq!(activity.counts(), (2, 0));
    }

    #[test]
    fn the_started_count_wraps_without_touching_in_flight() {
        let activity = Activity::new();
        activity
            .state
            .store(u64::from(u32::MAX) << 32, Ordering::Relaxed);
        let request = activity.start();
        assert_eq!(activity.counts(), (0, 1));
        drop(request);
        assert_eq!(activity.counts(), (0, 0));
    }
}
