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
}
