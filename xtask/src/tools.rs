//! Helpers shared by the tasks that drive external tools (`manifests`, `dist`, the kind
//! environment): finding programs, the workspace root, capturing output.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root (the parent of xtask/).
pub fn workspace_root() -> Result<PathBuf, String> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "xtask has no parent directory".to_owned())
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The first executable file called `name` in the directories of `path` (a `PATH`
/// value). A `name` containing a slash is taken as a path and only checked.
pub fn find_in_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if name.contains('/') {
        let candidate = PathBuf::from(name);
        return is_executable(&candidate).then_some(candidate);
    }
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// `name` on this process's `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    find_in_path(name, std::env::var_os("PATH").as_deref())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `helm` binary: `HELM` when set (a path, or a name looked up on `PATH`), else
/// `helm` on `PATH`. The error says how to get one.
pub fn helm() -> Result<PathBuf, String> {
    match std::env::var("HELM") {
        Ok(helm) if !helm.is_empty() => {
            find_program(&helm).ok_or_else(|| format!("HELM={helm:?} is not an executable file"))
        }
        _ => find_program("helm").ok_or_else(|| {
            "helm not found on PATH: install Helm 3.8 or newer \
             (https://helm.sh/docs/intro/install/) or set HELM=/path/to/helm"
                .to_owned()
        }),
    }
}

/// Runs `command` and returns its standard output; on failure, an error with its
/// standard error. Standard input is closed.
pub fn output(mut command: Command) -> Result<String, String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        String::from_utf8(out.stdout).map_err(|e| format!("{command:?}: output is not UTF-8: {e}"))
    } else {
        Err(format!(
            "{command:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_a_path_value() {
        let dir = std::env::temp_dir().join(format!("xtask-tools-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tool = dir.join("some-tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let not_executable = dir.join("plain-file");
        std::fs::write(&not_executable, "").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();

        let path = std::env::join_paths(["/nonexistent-dir".as_ref(), dir.as_path()]).unwrap();
        assert_eq!(find_in_path("some-tool", Some(&path)), Some(tool.clone()));
        assert_eq!(find_in_path("plain-file", Some(&path)), None);
        assert_eq!(find_in_path("missing", Some(&path)), None);
        assert_eq!(find_in_path("some-tool", None), None);
        // A path is checked, not searched.
        let as_path = tool.to_str().unwrap();
        assert_eq!(find_in_path(as_path, None), Some(tool.clone()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
