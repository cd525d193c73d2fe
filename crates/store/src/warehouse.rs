//! The warehouse: where a project keeps everything it makes, and the layout
//! inside it. Nothing outside this module joins a path under the warehouse.
//!
//! ```text
//! <warehouse>/
//!   tables/<asset>/            Delta tables (offline store), quarantine included
//!   reports/<asset>/run-N.*    quality reports (JSON and HTML)
//!   models/<model>/vN/         model artifacts
//!   indexes/<collection>/vN/   a collection's search indexes for its version N
//!                              (`text/`: tantivy); made in `.building-*` beside
//!                              it and renamed into place whole
//!   logs/<step>/run-N.log      a step's stdout and stderr, one run per file
//!   scratch/run-N/<step>/      a step's inputs as Parquet, while it runs
//!   raw/<source>/run-N/        payloads an HTTP or crawl source fetched, as
//!                              fetched (named by content hash), and
//!                              `manifest.json`: URL, status, time, ETag per payload
//!   sluice.db                  metadata (run log, registry, keys)
//!   online.redb                online store
//!   run.lock                   run lock
//! ```
//!
//! It is a local folder today. Object storage (`s3://`, `gs://`) comes behind
//! the same methods: the tables through Delta's object-store URLs (see
//! [`Warehouse::url`]), files through [`Warehouse::put`], and artifacts a
//! library must open by path (ONNX models) through a local cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use url::Url;

use crate::lock::{FileRunLock, RunLock};
use crate::online::{OnlineStore, RedbOnlineStore};
use crate::{Error, Metadata, OfflineStore, Result};

/// A project's warehouse.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
}

impl Warehouse {
    /// The warehouse in the local folder `root` (created on first write).
    pub fn local(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Its location as a URL (`file:///...`), the form object storage will take.
    pub fn url(&self) -> Result<Url> {
        let absolute =
            std::path::absolute(&self.root).map_err(|source| self.io(&self.root, source))?;
        Url::from_directory_path(&absolute).map_err(|()| {
            self.io(
                &absolute,
                std::io::Error::other("the warehouse is not an absolute path"),
            )
        })
    }

    fn io(&self, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The folder of the Delta tables.
    pub fn tables_dir(&self) -> PathBuf {
        self.root.join("tables")
    }

    /// The folder of an asset's report files.
    pub fn report_dir(&self, asset: &str) -> PathBuf {
        self.root.join("reports").join(asset)
    }

    /// The report files of one run of an asset: (JSON, HTML).
    pub fn report_files(&self, asset: &str, run_id: i64) -> (PathBuf, PathBuf) {
        let dir = self.report_dir(asset);
        (
            dir.join(format!("run-{run_id}.json")),
            dir.join(format!("run-{run_id}.html")),
        )
    }

    /// The folder of a model version's artifacts.
    pub fn model_dir(&self, model: &str, version: u64) -> PathBuf {
        self.root
            .join("models")
            .join(model)
            .join(format!("v{version}"))
    }

    /// The folder of a collection's search indexes, one folder per version.
    pub fn indexes_dir(&self, collection: &str) -> PathBuf {
        self.root.join("indexes").join(collection)
    }

    /// The search indexes of a collection's version `version`.
    pub fn index_dir(&self, collection: &str, version: u64) -> PathBuf {
        self.indexes_dir(collection).join(format!("v{version}"))
    }

    /// A fresh folder to make a version's indexes in, beside where they go;
    /// [`Warehouse::publish_index`] moves it into place.
    pub fn index_building_dir(&self, collection: &str, version: u64) -> Result<PathBuf> {
        let dir = self
            .indexes_dir(collection)
            .join(format!(".building-v{version}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| self.io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| self.io(&dir, e))?;
        Ok(dir)
    }

    /// Moves a version's indexes made in `building` into place, whole (a
    /// rename), and removes the indexes of versions older than `keep_from`
    /// and folders left by builds that died.
    pub fn publish_index(
        &self,
        collection: &str,
        version: u64,
        building: &Path,
        keep_from: u64,
    ) -> Result<()> {
        let target = self.index_dir(collection, version);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(|e| self.io(&target, e))?;
        }
        std::fs::rename(building, &target).map_err(|e| self.io(&target, e))?;
        let dir = self.indexes_dir(collection);
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| self.io(&dir, e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = name
                .strip_prefix('v')
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v < keep_from);
            let dead = name.starts_with(".building-")
                && !name.ends_with(&format!("-{}", std::process::id()));
            if old || dead {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }

    /// The versions of a collection whose indexes are in place, newest first.
    pub fn index_versions(&self, collection: &str) -> Vec<u64> {
        let mut versions: Vec<u64> = std::fs::read_dir(self.indexes_dir(collection))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_prefix('v')
                    .and_then(|v| v.parse().ok())
            })
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions
    }

    /// The log of a step's command in one run: its stdout and stderr, each
    /// attempt appended after a header line.
    pub fn step_log(&self, run_id: i64, asset: &str) -> PathBuf {
        self.root
            .join("logs")
            .join(asset)
            .join(format!("run-{run_id}.log"))
    }

    /// The folder a step's inputs are written to for its command, removed
    /// when the step ends.
    pub fn step_scratch(&self, run_id: i64, asset: &str) -> PathBuf {
        self.root
            .join("scratch")
            .join(format!("run-{run_id}"))
            .join(asset)
    }

    /// The raw zone of a source fetched over the network: one folder per run
    /// that fetched ([`crate::RawZone`]).
    pub fn raw_dir(&self, source: &str) -> PathBuf {
        self.root.join("raw").join(source)
    }

    /// The folder of one run's payloads of a source, and its manifest.
    pub fn raw_run_dir(&self, source: &str, run_id: i64) -> PathBuf {
        self.raw_dir(source).join(format!("run-{run_id}"))
    }

    /// The metadata database file.
    pub fn metadata_path(&self) -> PathBuf {
        self.root.join("sluice.db")
    }

    /// The online store file.
    pub fn online_path(&self) -> PathBuf {
        self.root.join("online.redb")
    }

    /// The offline store.
    pub fn offline(&self) -> OfflineStore {
        OfflineStore::new(&self.tables_dir())
    }

    /// The online store.
    pub fn online(&self) -> Arc<dyn OnlineStore> {
        Arc::new(RedbOnlineStore::new(&self.online_path()))
    }

    /// Opens (creating if needed) the metadata database.
    pub fn metadata(&self) -> Result<Metadata> {
        Metadata::open(&self.metadata_path())
    }

    /// The folder of the outbox locks: one file per live process that
    /// delivers alerts ([`crate::OutboxLock`]).
    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("outbox")
    }

    /// The run lock.
    pub fn run_lock(&self) -> Arc<dyn RunLock> {
        Arc::new(FileRunLock::new(&self.root.join("run.lock")))
    }

    /// Writes `bytes` to `path` (a path this warehouse gave) so that readers see
    /// the old file or the new one, never a part: a temporary file beside it,
    /// synced, then renamed over it.
    pub fn put(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|e| self.io(dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.sluice-{}.tmp", std::process::id()));
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.io(path, e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_published_whole_and_old_ones_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Warehouse::local(dir.path());
        assert!(w.index_versions("docs").is_empty());
        for version in 1..=3 {
            let building = w.index_building_dir("docs", version).expect("building");
            std::fs::write(building.join("marker"), version.to_string()).expect("write");
            w.publish_index("docs", version, &building, version.saturating_sub(1))
                .expect("publish");
        }
        // A build that died: its folder goes at the next publish.
        let dead = w.indexes_dir("docs").join(".building-v9-1");
        std::fs::create_dir_all(&dead).expect("dead");
        let building = w.index_building_dir("docs", 4).expect("building");
        w.publish_index("docs", 4, &building, 3).expect("publish");
        assert_eq!(w.index_versions("docs"), [4, 3]);
        assert!(!dead.exists());
        assert_eq!(
            std::fs::read_to_string(w.index_dir("docs", 3).join("marker")).expect("kept"),
            "3"
        );
    }

    #[test]
    fn a_put_file_is_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Warehouse::local(&dir.path().join("wh"));
        let (json, _) = w.report_files("flights", 7);
        w.put(&json, b"{\"a\": 1}").expect("written");
        w.put(&json, b"{\"a\": 2}").expect("replaced");
        assert_eq!(std::fs::read(&json).expect("read"), b"{\"a\": 2}");
        let names: Vec<_> = std::fs::read_dir(json.parent().expect("dir"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("run-7.json")]);
        assert!(w.url().expect("url").as_str().starts_with("file:///"));
    }
}
