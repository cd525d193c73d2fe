//! The raw zone: every payload an HTTP or crawl source fetched, kept as it was
//! fetched before anything parsed it, under `raw/<source>/run-N/`.
//!
//! A payload's file is named by the hash of its bytes and never rewritten (the
//! same name means the same bytes), so a payload is immutable once written. Each
//! run that fetched writes `manifest.json` beside its payloads: per payload the
//! URL (secrets masked by the caller), status, fetch time, `ETag` and
//! `Last-Modified`, content hash and file. A `304 Not Modified` records the
//! file of the payload it confirmed, in the run that fetched it. The manifest
//! is written when the fetch ends, marked `complete` only when it succeeded, so
//! a source parses (and asks `If-None-Match` against) complete fetches only.

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, Warehouse};

const MANIFEST: &str = "manifest.json";

/// One payload of a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// The URL requested, with secrets masked.
    pub url: String,
    /// The HTTP status (200; 304 when the stored payload was confirmed).
    pub status: u16,
    /// When the response arrived.
    pub fetched_at: DateTime<Utc>,
    /// The response's `ETag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The response's `Last-Modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The response's `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The BLAKE3 hash of the payload (hex, 32 characters).
    pub content_hash: String,
    /// The payload's size in bytes.
    pub bytes: u64,
    /// The payload's file, relative to the source's raw folder (`run-3/ab12….json`).
    pub file: String,
    /// The page number of a paged API (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// A crawled page's link depth from the start pages (0 for a start page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// What the payload is to the source: `page`, `robots`, `download`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// What one run fetched for a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawManifest {
    /// The run.
    pub run_id: i64,
    /// The hash of the options that decide what is fetched (URL, headers,
    /// paging...): payloads fetched with other options are not reused.
    pub fetch_fingerprint: String,
    /// When the fetch started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Whether the fetch succeeded: only complete fetches are parsed.
    pub complete: bool,
    /// The partition fetched (its label), for a partitioned source: a run
    /// building several keeps a manifest for each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The payloads, in the order they are parsed.
    pub records: Vec<RawRecord>,
}

impl RawManifest {
    /// A hash of the payloads' contents in order (robots.txt files left
    /// out): equal hashes, equal input.
    pub fn content_hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        for r in self
            .records
            .iter()
            .filter(|r| r.role.as_deref() != Some("robots"))
        {
            h.update(r.url.as_bytes());
            h.update(&[0]);
            h.update(r.content_hash.as_bytes());
            h.update(&[0]);
        }
        h.finalize().to_hex()[..32].to_string()
    }
}

/// The raw zone of one source.
#[derive(Debug, Clone)]
pub struct RawZone {
    warehouse: Warehouse,
    source: String,
}

impl RawZone {
    /// The raw zone of `source` in `warehouse`.
    pub fn new(warehouse: &Warehouse, source: &str) -> Self {
        Self {
            warehouse: warehouse.clone(),
            source: source.to_string(),
        }
    }

    /// The source's folder.
    pub fn dir(&self) -> PathBuf {
        self.warehouse.raw_dir(&self.source)
    }

    /// Stores a payload fetched in `run_id` (unless that run already holds
    /// the same bytes): its file relative to the source's folder, and its hash.
    pub fn put_payload(
        &self,
        run_id: i64,
        bytes: &[u8],
        extension: &str,
    ) -> Result<(String, String)> {
        let hash = blake3::hash(bytes).to_hex()[..32].to_string();
        let ext: String = extension
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let ext = if ext.is_empty() {
            "bin".to_string()
        } else {
            ext
        };
        let name = format!("{hash}.{ext}");
        let path = self.warehouse.raw_run_dir(&self.source, run_id).join(&name);
        if !path.exists() {
            self.warehouse.put(&path, bytes)?;
        }
        Ok((format!("run-{run_id}/{name}"), hash))
    }

    /// The path of a payload's file (`RawRecord::file`), refused when it would
    /// leave the source's folder.
    pub fn path_of(&self, file: &str) -> Result<PathBuf> {
        let relative = Path::new(file);
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(Error::Io {
                path: relative.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a raw payload's file must be inside the source's raw folder",
                ),
            });
        }
        Ok(self.dir().join(relative))
    }

    /// A payload's bytes.
    pub fn read(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.path_of(file)?;
        std::fs::read(&path).map_err(|source| Error::Io { path, source })
    }

    /// Writes a run's manifest (replacing the one an earlier attempt of the
    /// same run, and partition, wrote).
    pub fn put_manifest(&self, manifest: &RawManifest) -> Result<()> {
        let name = match &manifest.partition {
            Some(label) => format!("manifest-{label}.json"),
            None => MANIFEST.to_string(),
        };
        let path = self
            .warehouse
            .raw_run_dir(&self.source, manifest.run_id)
            .join(name);
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.warehouse.put(&path, &json)
    }

    /// Every run's manifests (one per partition a run fetched), newest
    /// first. A folder without a readable manifest (a fetch killed before its
    /// end) is left out.
    pub fn manifests(&self) -> Result<Vec<RawManifest>> {
        let dir = self.dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(source) => return Err(Error::Io { path: dir, source }),
        };
        let mut out = vec![];
        for run in entries.flatten() {
            let Ok(files) = std::fs::read_dir(run.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                if !(name.starts_with("manifest") && name.ends_with(".json")) {
                    continue;
                }
                let Ok(text) = std::fs::read(file.path()) else {
                    continue;
                };
                // A manifest that does not parse was not written by this
                // version of sluice (or was edited): it is not a fetch to reuse.
                if let Ok(m) = serde_json::from_slice::<RawManifest>(&text) {
                    out.push(m);
                }
            }
        }
        out.sort_by_key(|m| std::cmp::Reverse((m.run_id, m.finished_at)));
        Ok(out)
    }

    /// The newest complete fetch made with the fetch options `fetch_fingerprint`.
    pub fn newest(&self, fetch_fingerprint: &str) -> Result<Option<RawManifest>> {
        Ok(self
            .manifests()?
            .into_iter()
            .find(|m| m.complete && m.fetch_fingerprint == fetch_fingerprint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(file: &str, hash: &str) -> RawRecord {
        RawRecord {
            url: "http://127.0.0.1/x?page=1".into(),
            status: 200,
            fetched_at: Utc::now(),
            etag: Some("\"v1\"".into()),
            last_modified: None,
            content_type: Some("application/json".into()),
            content_hash: hash.into(),
            bytes: 2,
            file: file.into(),
            page: Some(1),
            depth: None,
            role: None,
        }
    }

    #[test]
    fn payloads_are_named_by_content_and_manifests_listed_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Warehouse::local(dir.path());
        let zone = RawZone::new(&w, "users");
        let (file, hash) = zone.put_payload(1, b"[]", "json").expect("stored");
        assert_eq!(file, format!("run-1/{hash}.json"));
        let (again, _) = zone.put_payload(1, b"[]", "json").expect("stored again");
        assert_eq!(again, file, "the same bytes are the same file");
        assert_eq!(zone.read(&file).expect("read"), b"[]");
        for (run, complete) in [(1, true), (2, false)] {
            zone.put_manifest(&RawManifest {
                run_id: run,
                fetch_fingerprint: "f".into(),
                started_at: Utc::now(),
                finished_at: Utc::now(),
                complete,
                partition: None,
                records: vec![record(&file, &hash)],
            })
            .expect("manifest");
        }
        let all = zone.manifests().expect("list");
        assert_eq!(all.iter().map(|m| m.run_id).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(zone.newest("f").expect("newest").map(|m| m.run_id), Some(1));
        // Two partitions fetched in one run keep a manifest each.
        for label in ["2024-01-01", "2024-01-02"] {
            zone.put_manifest(&RawManifest {
                run_id: 3,
                fetch_fingerprint: format!("f@{label}"),
                started_at: Utc::now(),
                finished_at: Utc::now(),
                complete: true,
                partition: Some(label.into()),
                records: vec![record(&file, &hash)],
            })
            .expect("manifest");
        }
        assert_eq!(zone.manifests().expect("list").len(), 4);
        for label in ["2024-01-01", "2024-01-02"] {
            let m = zone.newest(&format!("f@{label}")).expect("newest");
            assert_eq!(m.and_then(|m| m.partition).as_deref(), Some(label));
        }
        assert_eq!(zone.newest("other").expect("newest"), None);
        assert!(zone.path_of("../../sluice.db").is_err());
    }
}
