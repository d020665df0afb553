//! Binding the admin listeners safely.
//!
//! Unix socket: a stale socket file (nobody answers on it) is replaced; a live one
//! (another server answers) makes binding fail, so two proxies never fight over one
//! path; a path that is not a socket is never deleted. The new socket is bound under
//! a temporary name, given mode 0660, and renamed into place, so clients never see a
//! socket with the wrong permissions.
//!
//! TCP: loopback addresses only (Part A.1): the admin API has no authentication.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

/// A bound admin listener.
#[derive(Debug)]
pub enum Listener {
    /// A unix socket; the file is removed when the server stops.
    Unix(UnixSocket),
    /// A loopback TCP port.
    Tcp(TcpListener),
}

/// A bound unix socket and the file it owns.
#[derive(Debug)]
pub struct UnixSocket {
    /// The listener.
    pub listener: UnixListener,
    /// The socket's path.
    pub path: PathBuf,
    /// Inode of the socket file, to recognise it at removal.
    ino: u64,
}

impl UnixSocket {
    /// Removes the socket file, unless another server has replaced it since.
    pub fn remove_file_if_ours(&self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl From<UnixSocket> for Listener {
    fn from(s: UnixSocket) -> Self {
        Listener::Unix(s)
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

/// Binds the unix socket at `path` (see the module docs for the rules).
pub fn bind_unix(path: &Path) -> io::Result<UnixSocket> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another server is listening on {}", path.display()),
                ));
            }
            // Stale: left behind by a process that died. The rename below replaces it.
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let mut tmp_name = file_name.to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    let finish = || -> io::Result<()> {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = finish() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let ino = std::fs::symlink_metadata(path)?.ino();
    Ok(UnixSocket {
        listener,
        path: path.to_owned(),
        ino,
    })
}

/// Binds a TCP listener; refuses anything but a loopback address.
pub async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to expose the admin API on {addr}: only loopback addresses (127.0.0.0/8, ::1) are allowed"
            ),
        ));
    }
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replaces_stale_sockets_and_refuses_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        // A stale socket: bound, then its listener dropped without removing the file.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        // A second bind while the first listens is refused.
        let err = bind_unix(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        live.remove_file_if_ours();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn never_deletes_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("important.txt");
        std::fs::write(&path, "keep me").unwrap();
        assert!(bind_unix(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[tokio::test]
    async fn tcp_is_loopback_only() {
        assert!(bind_tcp("0.0.0.0:0".parse().unwrap()).await.is_err());
        assert!(bind_tcp("127.0.0.1:0".parse().unwrap()).await.is_ok());
    }
}
