//! The manifest-directory source: the Kubernetes objects of a directory of YAML or
//! JSON files, for running Gangplank without a cluster (`--manifests DIR`).
//!
//! Every file under the directory (recursively, in path order) whose name ends in
//! `.yaml`, `.yml` or `.json` is read as one or more documents separated by `---`
//! lines. A document is an object with `apiVersion` and `kind`, or a `List` of them.
//! The kinds the translation reads are kept (Ingress, IngressClass, Service,
//! EndpointSlice, Secret, ConfigMap); other kinds (Deployments, Namespaces...) are
//! skipped silently, so a directory of real application manifests works as is.
//!
//! A broken document never stops the others: it is reported as a [`Problem`] with
//! its file and line, and skipped. The global ConfigMap is the one named by
//! [`ManifestOptions::configmap`]; every ConfigMap is also available to annotations
//! that reference one (`custom-headers`).
//!
//! ```
//! use gangplank_controller::manifests::{ManifestOptions, load_str};
//!
//! let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\nkind: [oops\n";
//! let loaded = load_str(yaml, "demo.yaml", &ManifestOptions::default());
//! assert_eq!(loaded.state.services.len(), 1);
//! assert_eq!(loaded.problems.len(), 1);
//! // The broken document starts at line 5; the parser reports where it gave up.
//! let problem = loaded.problems[0].to_string();
//! assert!(problem.starts_with("demo.yaml:"), "{problem}");
//! assert!(loaded.problems[0].line >= 5, "{problem}");
//! ```
//!
//! [`Watcher`] polls the directory (modification times and sizes, every 250 ms by
//! default) and reloads it when something changed; polling needs no platform
//! notification API and behaves the same on every file system, including the
//! symlink swaps of Kubernetes ConfigMap volumes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::state::{ClusterState, name, namespace};

/// How the directory's objects are read.
#[derive(Debug, Clone, Default)]
pub struct ManifestOptions {
    /// The global ConfigMap (`--configmap NS/NAME`), if any.
    pub configmap: Option<(String, String)>,
}

/// A document that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as found under the directory.
    pub file: PathBuf,
    /// The 1-based line where the problem is (or where its document starts).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// The objects of a directory and what was wrong with it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Every usable object.
    pub state: ClusterState,
    /// Every skipped document, in file and line order.
    pub problems: Vec<Problem>,
}

/// Reads every manifest file under `dir`.
///
/// An unreadable directory is one problem (line 0), not an error: the caller keeps
/// serving what it had.
pub fn load_dir(dir: &Path, options: &ManifestOptions) -> Loaded {
    let mut loaded = Loaded::default();
    let files = match manifest_files(dir) {
        Ok(files) => files,
        Err(e) => {
            loaded.problems.push(Problem {
                file: dir.to_owned(),
                line: 0,
                message: format!("cannot read the directory: {e}"),
            });
            return loaded;
        }
    };
    for file in files {
        let shown = file.strip_prefix(dir).unwrap_or(&file).to_owned();
        match std::fs::read(&file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => load_into(&mut loaded, &text, &shown, options),
                Err(_) => loaded.problems.push(Problem {
                    file: shown,
                    line: 0,
                    message: "not UTF-8 text".to_owned(),
                }),
            },
            Err(e) => loaded.problems.push(Problem {
                file: shown,
                line: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    loaded
}

/// Reads the documents of one file's text; `file` names it in problems.
pub fn load_str(text: &str, file: impl Into<PathBuf>, options: &ManifestOptions) -> Loaded {
    let mut loaded = Loaded::default();
    load_into(&mut loaded, text, &file.into(), options);
    loaded
}

fn load_into(loaded: &mut Loaded, text: &str, file: &Path, options: &ManifestOptions) {
    for (start, document) in documents(text) {
        let problem = |line: usize, message: String| Problem {
            file: file.to_owned(),
            line,
            message,
        };
        let value: serde_json::Value = match serde_norway::from_str(document) {
            Ok(value) => value,
            Err(e) => {
                let line = e.location().map_or(start, |l| start + l.line().max(1) - 1);
                loaded.problems.push(problem(line, yaml_message(&e)));
                continue;
            }
        };
        if value.is_null() {
            continue; // An empty document (comments only).
        }
        let mut objects = Vec::new();
        if value.get("kind").and_then(|k| k.as_str()) == Some("List") {
            match value.get("items").and_then(|i| i.as_array()) {
                Some(items) => objects.extend(items.iter().cloned()),
                None => {
                    loaded
                        .problems
                        .push(problem(start, "a List without items".to_owned()));
                }
            }
        } else {
            objects.push(value);
        }
        for object in objects {
            if let Err(message) = add(&mut loaded.state, object, options) {
                loaded.problems.push(problem(start, message));
            }
        }
    }
}

/// Splits a YAML stream at `---` lines: (1-based line of the first line, text).
fn documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let mut start_line = 1;
    let mut start_byte = 0;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "..." {
            documents.push((start_line, &text[start_byte..offset]));
            start_line = index + 2;
            start_byte = offset + line.len();
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start_byte..]));
    documents
}

fn yaml_message(e: &serde_norway::Error) -> String {
    // The location is reported separately, as the file:line prefix.
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Adds one object to the state, by kind.
fn add(
    state: &mut ClusterState,
    object: serde_json::Value,
    options: &ManifestOptions,
) -> Result<(), String> {
    let Some(kind) = object
        .get("kind")
        .and_then(|k| k.as_str())
        .map(str::to_owned)
    else {
        return Err("a document without `kind`".to_owned());
    };
    fn decode<T: serde::de::DeserializeOwned>(
        kind: &str,
        object: serde_json::Value,
    ) -> Result<T, String> {
        let label = object
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .map(|n| format!("{kind} {n:?}"))
            .unwrap_or_else(|| kind.to_owned());
        serde_path_to_error::deserialize::<_, T>(object)
            .map_err(|e| format!("{label}: {} (at {})", e.inner(), e.path()))
    }
    match kind.as_str() {
        "Ingress" => state.ingresses.push(Arc::new(decode(&kind, object)?)),
        "IngressClass" => state.ingress_classes.push(Arc::new(decode(&kind, object)?)),
        "Service" => state.services.push(Arc::new(decode(&kind, object)?)),
        "EndpointSlice" => state.endpoint_slices.push(Arc::new(decode(&kind, object)?)),
        "Secret" => {
            let mut secret: k8s_openapi::api::core::v1::Secret = decode(&kind, object)?;
            // `stringData` is a write-only convenience the API server folds into `data`.
            if let Some(strings) = secret.string_data.take() {
                let data = secret.data.get_or_insert_with(Default::default);
                for (key, value) in strings {
                    data.insert(key, k8s_openapi::ByteString(value.into_bytes()));
                }
            }
            state.secrets.push(Arc::new(secret));
        }
        "ConfigMap" => {
            let map: k8s_openapi::api::core::v1::ConfigMap = decode(&kind, object)?;
            let is_global = options
                .configmap
                .as_ref()
                .is_some_and(|(ns, n)| namespace(&map.metadata) == ns && name(&map.metadata) == n);
            let map = Arc::new(map);
            if is_global && state.config_map.is_none() {
                state.config_map = Some(map.clone());
            }
            state.config_maps.push(map);
        }
        _ => {} // Kinds the translation does not read.
    }
    Ok(())
}

/// The manifest files under `dir`, recursively, sorted; hidden entries (names
/// starting with `.`, such as the `..data` links of ConfigMap volumes) are skipped
/// so each file is read once.
fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if file_name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follow symlinks: ConfigMap volumes are made of them.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
            } else if [".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| file_name.ends_with(ext))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// What changes when a manifest file changes: each file's path, size and mtime.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let Ok(files) = manifest_files(dir) else {
        return Vec::new();
    };
    files
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

/// A directory kept loaded: the current objects, reloaded when files change.
#[derive(Debug, Clone)]
pub struct Watcher {
    dir: PathBuf,
    options: ManifestOptions,
    state: Arc<Mutex<Arc<ClusterState>>>,
    changed: Arc<Notify>,
}

impl Watcher {
    /// Loads `dir` once, logging its problems.
    pub fn new(dir: impl Into<PathBuf>, options: ManifestOptions) -> Watcher {
        let dir = dir.into();
        let loaded = load_dir(&dir, &options);
        report(&dir, &loaded);
        Watcher {
            dir,
            options,
            state: Arc::new(Mutex::new(Arc::new(loaded.state))),
            changed: Arc::new(Notify::new()),
        }
    }

    /// The objects as last loaded.
    pub fn state(&self) -> Arc<ClusterState> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Notified after every reload.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// Polls the directory every `interval`, forever; run it as a task.
    pub async fn run(self, interval: Duration) {
        let dir = self.dir.clone();
        let mut last = tokio::task::spawn_blocking(move || fingerprint(&dir))
            .await
            .unwrap_or_default();
        loop {
            tokio::time::sleep(interval).await;
            let dir = self.dir.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&dir)).await else {
                continue;
            };
            if now == last {
                continue;
            }
            last = now;
            let dir = self.dir.clone();
            let options = self.options.clone();
            let Ok(loaded) = tokio::task::spawn_blocking(move || load_dir(&dir, &options)).await
            else {
                continue;
            };
            report(&self.dir, &loaded);
            *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded.state);
            self.changed.notify_one();
        }
    }
}

fn report(dir: &Path, loaded: &Loaded) {
    for problem in &loaded.problems {
        tracing::warn!(dir = %dir.display(), "skipped manifest: {problem}");
    }
    let state = &loaded.state;
    tracing::info!(
        dir = %dir.display(),
        ingresses = state.ingresses.len(),
        services = state.services.len(),
        endpoint_slices = state.endpoint_slices.len(),
        secrets = state.secrets.len(),
        problems = loaded.problems.len(),
        "manifests loaded"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_line_numbers() {
        let docs = documents("a: 1\n---\nb: 2\nc: 3\n--- \n...\nd: 4");
        assert_eq!(docs[0], (1, "a: 1\n"));
        assert_eq!(docs[1], (3, "b: 2\nc: 3\n"));
        assert_eq!(docs[3].0, 7);
    }

    #[test]
    fn a_broken_document_is_reported_with_its_line_and_skipped() {
        let yaml = "\
apiVersion: v1
kind: Service
metadata: {name: a}
---
apiVersion: v1
kind: Service
metadata:
  name: b
spec:
  ports: [{port: \"not a number\"}]
---
kind: Service
metadata: {name: c}
  bad: indentation
---
apiVersion: v1
kind: Service
metadata: {name: d}
";
        let loaded = load_str(yaml, "x.yaml", &ManifestOptions::default());
        let names: Vec<_> = loaded
            .state
            .services
            .iter()
            .map(|s| s.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["a", "d"]);
        assert_eq!(loaded.problems.len(), 2, "{:?}", loaded.problems);
        assert_eq!(loaded.problems[0].line, 5);
        assert!(loaded.problems[0].message.contains("Service \"b\""));
        assert!(loaded.problems[0].message.contains("spec.ports[0].port"));
        assert_eq!(loaded.problems[1].line, 14);
    }

    #[test]
    fn lists_secrets_with_string_data_and_the_global_configmap() {
        let yaml = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"web"},
             "stringData":{"auth":"user:hash"}},
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"global","namespace":"gp"},
             "data":{"use-gzip":"true"}},
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"headers","namespace":"web"}},
            {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"ignored"}}
        ]}"#;
        let options = ManifestOptions {
            configmap: Some(("gp".to_owned(), "global".to_owned())),
        };
        let loaded = load_str(yaml, "list.json", &options);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let secret = &loaded.state.secrets[0];
        let data = secret.data.as_ref().map(|d| d["auth"].0.clone());
        assert_eq!(data.as_deref(), Some(&b"user:hash"[..]));
        assert_eq!(
            loaded
                .state
                .config_map
                .as_ref()
                .and_then(|c| c.metadata.name.as_deref()),
            Some("global")
        );
        assert_eq!(loaded.state.config_maps.len(), 2);
    }

    #[test]
    fn a_directory_is_read_recursively_skipping_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("sub/svc.yml"),
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "kind: Service").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "kind: Service").unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "kind: [").unwrap();
        let loaded = load_dir(dir.path(), &ManifestOptions::default());
        assert_eq!(loaded.state.services.len(), 1);
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(loaded.problems[0].file, Path::new("broken.yaml"));
    }

    #[test]
    fn a_missing_directory_is_a_problem_not_a_panic() {
        let loaded = load_dir(
            Path::new("/nonexistent/gangplank"),
            &ManifestOptions::default(),
        );
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(loaded.problems[0].line, 0);
    }
}
