//! The run lock: one run at a time per warehouse.
//!
//! [`RunLock`] is the seam: an OS file lock ([`FileRunLock`]) today, which the
//! operating system releases when the process dies, even by `kill -9`, so a crash
//! never leaves it stuck; a lease in a shared database (renewed while held,
//! expiring when its holder dies) implements the same trait for shared
//! deployments.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Who may run on a warehouse.
pub trait RunLock: Send + Sync + std::fmt::Debug {
    /// Takes the lock, or fails with [`Error::Busy`] naming who holds it (a
    /// transient error: it is worth trying again later).
    fn acquire(&self) -> Result<RunGuard>;
}

/// Held for the duration of a run; dropping it releases the lock.
#[derive(Debug)]
pub struct RunGuard {
    _held: Box<dyn std::fmt::Debug + Send + Sync>,
}

/// The run lock as an OS lock on the file `run.lock` in the warehouse.
#[derive(Debug, Clone)]
pub struct FileRunLock {
    path: PathBuf,
}

impl FileRunLock {
    /// The lock file `path`.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }
}

impl RunLock for FileRunLock {
    fn acquire(&self) -> Result<RunGuard> {
        let path = self.path.clone();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::Busy {
                    path,
                    holder: holder.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "pid {}", std::process::id()).map_err(io)?;
        Ok(RunGuard {
            _held: Box::new(HeldFile { _file: file }),
        })
    }
}

/// The open, locked file (the OS lock lives as long as the handle).
#[derive(Debug)]
struct HeldFile {
    _file: File,
}

/// The mark of a live process that delivers alerts: a file `<token>.lock` in
/// the outbox folder, OS-locked for as long as the process lives (a
/// `kill -9` frees it). Delivery rows name their owner's token, so a process
/// can tell the pending deliveries of a process that is gone from those of one
/// still sending.
#[derive(Debug)]
pub struct OutboxLock {
    token: String,
    path: PathBuf,
    _file: File,
}

impl OutboxLock {
    /// Makes and locks a new token's file in `dir`.
    pub fn take(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let token = format!("{}-{nanos}", std::process::id());
        let path = dir.join(format!("{token}.lock"));
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => io(e),
            TryLockError::WouldBlock => io(std::io::Error::other("locked by another process")),
        })?;
        Ok(Self {
            token,
            path,
            _file: file,
        })
    }

    /// The token delivery rows name.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether the outbox `token` in `dir` is gone — its file is missing or no
    /// process holds its lock — and if so, its lock, held until dropped (then
    /// the file is removed). An empty token (a row older than owners) is gone.
    pub fn if_gone(dir: &Path, token: &str) -> Result<Option<GoneOutbox>> {
        if token.is_empty() || token.contains(['/', '\\']) || token.starts_with('.') {
            return Ok(Some(GoneOutbox { file: None }));
        }
        let path = dir.join(format!("{token}.lock"));
        let file = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Some(GoneOutbox { file: None }));
            }
            Err(source) => return Err(Error::Io { path, source }),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(GoneOutbox {
                file: Some((file, path)),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(Error::Io { path, source }),
        }
    }
}

impl Drop for OutboxLock {
    /// Removes the file: a delivery still pending is then found gone (so is
    /// one whose process crashed, by whoever finds its file free).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The lock of an outbox whose process is gone, held while its deliveries are
/// taken over; dropping it removes the file.
#[derive(Debug)]
pub struct GoneOutbox {
    file: Option<(File, PathBuf)>,
}

impl Drop for GoneOutbox {
    fn drop(&mut self) {
        if let Some((_, path)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = FileRunLock::new(&dir.path().join("run.lock"));
        let first = lock.acquire().expect("free");
        match lock.acquire() {
            Err(Error::Busy { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()))
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        lock.acquire().expect("free again");
    }

    #[test]
    fn an_outbox_is_gone_once_its_lock_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mine = OutboxLock::take(dir.path()).expect("take");
        let token = mine.token().to_string();
        assert!(
            OutboxLock::if_gone(dir.path(), &token)
                .expect("probe")
                .is_none()
        );
        drop(mine);
        let gone = OutboxLock::if_gone(dir.path(), &token).expect("probe");
        assert!(gone.is_some());
        drop(gone);
        assert!(!dir.path().join(format!("{token}.lock")).exists());
        assert!(
            OutboxLock::if_gone(dir.path(), "")
                .expect("probe")
                .is_some()
        );
    }
}
