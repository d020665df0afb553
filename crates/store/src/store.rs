//! [`Store`]: the current snapshot behind an atomic pointer, and the one write path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use gangplank_model::validate::{Path as JsonPath, Problem, Problems, Report};
use gangplank_model::{Backend, Configuration, GeneralConfig, SslConfiguration, Validate};

use crate::compile::compile;
use crate::persist::{self, PersistError, RestoreOutcome};
use crate::snapshot::{Snapshot, SourceConfig};

/// A change to the configuration.
#[derive(Debug, Clone)]
pub enum Update {
    /// Replace the backends (`POST /configuration/backends`).
    Backends(Vec<Backend>),
    /// Replace the general settings (`POST /configuration/general`).
    General(GeneralConfig),
    /// Merge certificates and host mappings (`POST /configuration/servers`).
    Certificates(SslConfiguration),
    /// Replace everything (`POST /configuration`), optionally only if the current
    /// version is `if_match`.
    Configuration {
        /// The new configuration.
        config: Configuration,
        /// Apply only when the current version equals this one.
        if_match: Option<u64>,
    },
}

/// Why an update was not applied. The running configuration is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The update has invalid values.
    #[error("invalid configuration: {0}")]
    Invalid(Problems),
    /// `If-Match` named another version.
    #[error("the configuration is at version {current}, not {expected}")]
    VersionMismatch {
        /// The version the client expected.
        expected: u64,
        /// The current version.
        current: u64,
    },
}

/// The configuration store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    current: ArcSwap<Snapshot>,
    /// Serialises writers; readers never take it.
    writer: Mutex<()>,
    state_dir: Option<PathBuf>,
}

impl Store {
    /// A store without persistence, starting empty at version 0.
    pub fn in_memory() -> Store {
        Store {
            current: ArcSwap::from_pointee(Snapshot::default()),
            writer: Mutex::new(()),
            state_dir: None,
        }
    }

    /// A store that persists every applied snapshot to `state_dir` and starts from the
    /// snapshot found there, if it is usable. Fails only if the directory cannot be
    /// created.
    pub fn open(state_dir: &Path) -> Result<(Store, RestoreOutcome), PersistError> {
        std::fs::create_dir_all(state_dir).map_err(|source| PersistError::Io {
            op: "create directory",
            path: state_dir.to_owned(),
            source,
        })?;
        let mut store = Store::in_memory();
        store.state_dir = Some(state_dir.to_owned());
        let outcome = match persist::read(state_dir) {
            Ok(None) => RestoreOutcome::Empty,
            Ok(Some(state)) => {
                let version = state.version;
                match store.restore(state) {
                    Ok(()) => RestoreOutcome::Restored { version },
                    Err(reason) => RestoreOutcome::Corrupt {
                        reason,
                        moved_to: persist::quarantine(state_dir),
                    },
                }
            }
            Err(reason) => RestoreOutcome::Corrupt {
                reason,
                moved_to: persist::quarantine(state_dir),
            },
        };
        Ok((store, outcome))
    }

    fn restore(&self, state: persist::State) -> Result<(), String> {
        let c = state.configuration;
        let source = SourceConfig {
            backends: Arc::new(c.backends),
            servers: Arc::new(c.servers),
            ssl: Arc::new(c.ssl_configuration),
            general: Arc::new(c.general),
        };
        let empty = Snapshot::default();
        let snapshot = compile(source, &empty, state.version, state.dynamic_lb_initialized)
            .map_err(|(uid, e)| format!("certificate {uid:?}: {e}"))?;
        self.current.store(Arc::new(snapshot));
        Ok(())
    }

    /// The current snapshot: one atomic load, for the request path.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc`, for holding across awaits.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Validates `update`, merges it with the current configuration, compiles and
    /// swaps. On error nothing changes. A failure to persist is logged, not returned:
    /// serving the new configuration matters more than the copy on disk.
    pub fn apply(&self, update: Update) -> Result<Arc<Snapshot>, ApplyError> {
        // A poisoned lock only means another writer panicked; the snapshot it guards
        // is immutable, so carrying on is safe.
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current.load_full();
        let mut report = Report::new();
        let mut source = current.source.clone();
        let mut initialized = current.dynamic_lb_initialized;
        match update {
            Update::Backends(backends) => {
                gangplank_model::validate_backends(&backends, &JsonPath::Root, &mut report);
                source.backends = Arc::new(backends);
                initialized = true;
            }
            Update::General(general) => {
                general.validate_at(&JsonPath::Root, &mut report);
                source.general = Arc::new(general);
            }
            Update::Certificates(update) => {
                update.validate_update_at(Some(&current.source.ssl), &JsonPath::Root, &mut report);
                let mut merged = current.source.ssl.as_ref().clone();
                merged.merge(update);
                source.ssl = Arc::new(merged);
            }
            Update::Configuration { config, if_match } => {
                if let Some(expected) = if_match.filter(|v| *v != current.version) {
                    return Err(ApplyError::VersionMismatch {
                        expected,
                        current: current.version,
                    });
                }
                config.validate_at(&JsonPath::Root, &mut report);
                source = SourceConfig {
                    backends: Arc::new(config.backends),
                    servers: Arc::new(config.servers),
                    ssl: Arc::new(config.ssl_configuration),
                    general: Arc::new(config.general),
                };
                initialized = true;
            }
        }
        report.finish().map_err(ApplyError::Invalid)?;
        let snapshot =
            compile(source, &current, current.version + 1, initialized).map_err(|(uid, e)| {
                ApplyError::Invalid(Problems(vec![Problem {
                    path: format!("$.certificates[{}]", serde_json::Value::String(uid)),
                    message: e.to_string(),
                }]))
            })?;
        let snapshot = Arc::new(snapshot);
        self.current.store(snapshot.clone());
        if let Some(dir) = &self.state_dir
            && let Err(e) = persist::write(dir, &snapshot)
        {
            tracing::error!(error = %e, version = snapshot.version, "could not persist the configuration snapshot");
        }
        tracing::info!(
            version = snapshot.version,
            backends = snapshot.backends.len(),
            servers = snapshot.routes.len(),
            "configuration applied"
        );
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests;
