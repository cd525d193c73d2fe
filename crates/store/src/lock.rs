//! The run lock: one run at a time per warehouse. The operating system releases it
//! when the process dies, even by `kill -9`, so a crash never leaves it stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::{Error, Result};

/// Held for the duration of a run; released on drop or process exit.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `warehouse`, or says who holds it.
    pub fn acquire(warehouse: &Path) -> Result<Self> {
        std::fs::create_dir_all(warehouse).map_err(|source| Error::Io {
            path: warehouse.to_path_buf(),
            source,
        })?;
        let path = warehouse.join("run.lock");
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
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = RunLock::acquire(dir.path()).expect("free");
        match RunLock::acquire(dir.path()) {
            Err(Error::Busy { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()))
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        RunLock::acquire(dir.path()).expect("free again");
    }
}
