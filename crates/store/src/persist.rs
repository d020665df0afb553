//! The last good snapshot on disk: written atomically after every applied change
//! (temporary file, fsync, rename, fsync of the directory) and read back at start.
//!
//! A state file that cannot be read, decoded or validated is reported, moved aside
//! (`snapshot.json.corrupt`) for inspection, and ignored: it never stops the start.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use gangplank_model::{Backend, Configuration, GeneralConfig, Server, SslConfiguration, Validate};
use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// File name of the state file inside the state directory.
pub const STATE_FILE: &str = "snapshot.json";

/// What happened to the state file at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// No state file: starting empty.
    Empty,
    /// The configuration of this version was restored.
    Restored {
        /// Version of the restored snapshot.
        version: u64,
    },
    /// The state file was unusable; it was moved aside and the store starts empty.
    Corrupt {
        /// Why it was unusable.
        reason: String,
        /// Where it was moved.
        moved_to: PathBuf,
    },
}

/// Writing the state file failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Encoding failed (not expected for validated data).
    #[error("encoding the snapshot: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StateRef<'a> {
    version: u64,
    dynamic_lb_initialized: bool,
    configuration: ConfigurationRef<'a>,
}

/// Borrowed twin of [`Configuration`], so writing needs no copy of the snapshot.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigurationRef<'a> {
    backends: &'a [Backend],
    servers: &'a [Server],
    ssl_configuration: &'a SslConfiguration,
    general: &'a GeneralConfig,
}

/// The decoded state file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Version of the snapshot.
    pub version: u64,
    /// Whether backends had been posted.
    pub dynamic_lb_initialized: bool,
    /// The configuration.
    pub configuration: Configuration,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PersistError + 'a {
    move |source| PersistError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Writes `snapshot` to `<dir>/snapshot.json` atomically.
pub fn write(dir: &Path, snapshot: &Snapshot) -> Result<(), PersistError> {
    let state = StateRef {
        version: snapshot.version,
        dynamic_lb_initialized: snapshot.dynamic_lb_initialized,
        configuration: ConfigurationRef {
            backends: &snapshot.source.backends,
            servers: &snapshot.source.servers,
            ssl_configuration: &snapshot.source.ssl,
            general: &snapshot.source.general,
        },
    };
    let bytes = serde_json::to_vec(&state)?;
    let final_path = dir.join(STATE_FILE);
    let tmp_path = dir.join(format!("{STATE_FILE}.tmp"));
    {
        let mut file = File::create(&tmp_path).map_err(io("create", &tmp_path))?;
        file.write_all(&bytes).map_err(io("write", &tmp_path))?;
        file.sync_all().map_err(io("fsync", &tmp_path))?;
    }
    fs::rename(&tmp_path, &final_path).map_err(io("rename", &final_path))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", dir))?;
    Ok(())
}

/// Reads `<dir>/snapshot.json`. `Ok(None)`: no file. `Err(reason)`: unusable.
pub fn read(dir: &Path) -> Result<Option<State>, String> {
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let state: State = gangplank_model::json::decode(&bytes)
        .map_err(|e| format!("cannot decode {}: {e}", path.display()))?;
    state
        .configuration
        .validate()
        .map_err(|e| format!("{} does not validate: {e}", path.display()))?;
    Ok(Some(state))
}

/// Moves an unusable state file aside, returning where it went.
pub fn quarantine(dir: &Path) -> PathBuf {
    let from = dir.join(STATE_FILE);
    let to = dir.join(format!("{STATE_FILE}.corrupt"));
    if let Err(e) = fs::rename(&from, &to) {
        tracing::warn!(error = %e, path = %from.display(), "could not move the unusable state file aside");
    }
    to
}
