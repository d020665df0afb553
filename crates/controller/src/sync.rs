//! The sync loop: source changes in, whole snapshots out through the admin client.
//!
//! Every change of the source (a watch event, an edited manifest) marks the state
//! dirty by notifying a [`Notify`]. The loop waits for a quiet spell of
//! [`SyncOptions::debounce`] (about 100 ms) but never longer than
//! [`SyncOptions::max_delay`] (1 s) under constant churn, translates the whole
//! state, and pushes it with `POST /configuration` unless it is byte-for-byte what
//! the proxy already accepted. Failed pushes are retried with exponential backoff
//! (each retry translates the newest state). Between changes the loop asks the proxy
//! `/is-dynamic-lb-initialized` every [`SyncOptions::probe_interval`]; a proxy that
//! restarted without a state directory answers "no" and gets the snapshot again.
//!
//! Events found by the translation reach the [`EventSink`] once per distinct
//! message: an unchanged invalid annotation is not reported again on every sync.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gangplank_admin_server::AdminClient;
use sha1::{Digest, Sha1};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::ControllerMetrics;
use crate::state::ClusterState;
use crate::{Event, EventKind, TranslateOptions, translate};

/// Where the loop reads the objects from.
pub trait StateSource: Send + Sync + 'static {
    /// The current objects.
    fn state(&self) -> Arc<ClusterState>;
}

impl StateSource for crate::manifests::Watcher {
    fn state(&self) -> Arc<ClusterState> {
        crate::manifests::Watcher::state(self)
    }
}

/// Where the translation's events go (Kubernetes Events, or the log).
pub trait EventSink: Send + Sync + 'static {
    /// Publishes events not published before.
    fn publish(&self, events: Vec<Event>);
}

/// An [`EventSink`] that writes events to the log (the manifest-directory mode).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogEvents;

impl EventSink for LogEvents {
    fn publish(&self, events: Vec<Event>) {
        for event in events {
            let object = format!("{:?} {}/{}", event.object_kind, event.namespace, event.name);
            match event.kind {
                EventKind::Warning => {
                    tracing::warn!(%object, reason = %event.reason, "{}", event.message)
                }
                EventKind::Normal => {
                    tracing::info!(%object, reason = %event.reason, "{}", event.message)
                }
            }
        }
    }
}

/// The loop's timing.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The translation's options (classes, defaults).
    pub translate: TranslateOptions,
    /// The quiet spell that ends a burst of changes.
    pub debounce: Duration,
    /// The longest a change waits under constant churn.
    pub max_delay: Duration,
    /// How often the proxy is asked whether it still holds a configuration.
    pub probe_interval: Duration,
    /// The longest wait between retries of a failed push.
    pub max_backoff: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            translate: TranslateOptions::default(),
            debounce: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            probe_interval: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Readiness of the controller: true once the first snapshot was accepted.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    /// Whether a snapshot was accepted by the proxy.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The sync loop and what it talks to.
pub struct SyncLoop {
    /// The proxy's admin API.
    pub client: AdminClient,
    /// Timing and translation options.
    pub options: SyncOptions,
    /// Where the objects come from.
    pub source: Arc<dyn StateSource>,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Metrics updated on each push.
    pub metrics: Arc<ControllerMetrics>,
    /// Set once the first snapshot is accepted.
    pub ready: Arc<Readiness>,
}

impl SyncLoop {
    /// Runs forever: syncs once at start, then after every change of `dirty`.
    pub async fn run(self, dirty: Arc<Notify>) {
        let mut accepted: Option<[u8; 20]> = None;
        let mut published: HashSet<Event> = HashSet::new();
        let mut backoff = Duration::from_millis(100);
        let mut pending = true;
        loop {
            if !pending {
                tokio::select! {
                    () = dirty.notified() => {
                        debounce(&dirty, self.options.debounce, self.options.max_delay).await;
                    }
                    () = tokio::time::sleep(self.options.probe_interval) => {
                        match self.client.is_dynamic_lb_initialized().await {
                            Ok(true) => continue,
                            Ok(false) => {
                                tracing::info!("the proxy holds no configuration (restarted?); pushing again");
                                accepted = None;
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "proxy probe failed");
                                continue;
                            }
                        }
                    }
                }
            }
            pending = false;

            let state = self.source.state();
            let for_translation = state.clone();
            let options = self.options.translate.clone();
            let started = Instant::now();
            let Ok(translation) =
                tokio::task::spawn_blocking(move || translate(&for_translation, &options)).await
            else {
                tracing::error!("the translation panicked; keeping the last snapshot");
                pending = true;
                tokio::time::sleep(backoff).await;
                continue;
            };
            let translate_time = started.elapsed();

            let fresh: Vec<Event> = translation
                .events
                .iter()
                .filter(|e| !published.contains(*e))
                .cloned()
                .collect();
            published = translation.events.iter().cloned().collect();
            if !fresh.is_empty() {
                self.events.publish(fresh);
            }

            let configuration = translation.configuration;
            let digest: [u8; 20] = match serde_json::to_vec(&configuration) {
                Ok(bytes) => Sha1::digest(&bytes).into(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialise the snapshot");
                    continue;
                }
            };
            if accepted == Some(digest) {
                tracing::debug!("snapshot unchanged; nothing to push");
                continue;
            }
            self.metrics.observe_configuration(&configuration, &state);
            match self.client.post_configuration(&configuration, None).await {
                Ok(version) => {
                    accepted = Some(digest);
                    backoff = Duration::from_millis(100);
                    let hash = u64::from_be_bytes([
                        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5],
                        digest[6], digest[7],
                    ]);
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    self.metrics.push_succeeded(hash, now);
                    self.ready.set();
                    tracing::info!(
                        version,
                        backends = configuration.backends.len(),
                        servers = configuration.servers.len(),
                        translate_ms = translate_time.as_millis() as u64,
                        "snapshot pushed"
                    );
                }
                Err(e) => {
                    self.metrics.push_failed();
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "push failed");
                    pending = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
            }
        }
    }
}

/// Waits until `dirty` stays quiet for `quiet`, or `max` has passed.
async fn debounce(dirty: &Notify, quiet: Duration, max: Duration) {
    let deadline = Instant::now() + max;
    loop {
        let until = (Instant::now() + quiet).min(deadline);
        tokio::select! {
            () = dirty.notified() => {
                if Instant::now() >= deadline {
                    return;
                }
            }
            () = tokio::time::sleep_until(until) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn debounce_ends_after_a_quiet_spell() {
        let dirty = Arc::new(Notify::new());
        let start = Instant::now();
        debounce(&dirty, Duration::from_millis(100), Duration::from_secs(1)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_never_waits_longer_than_max_under_churn() {
        let dirty = Arc::new(Notify::new());
        let churn = dirty.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(30)).await;
                churn.notify_one();
            }
        });
        let start = Instant::now();
        debounce(&dirty, Duration::from_millis(100), Duration::from_secs(1)).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
        assert!(waited < Duration::from_millis(1100), "{waited:?}");
    }
}
