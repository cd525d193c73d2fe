//! The raw zone as a network source's [`RawSink`]: payloads go to
//! `raw/<source>/run-N/` as fetched, conditional requests use the validators
//! of the newest complete fetch made with the same fetch options, and a 304
//! points at the payload it confirmed. The run's manifest is written when the
//! fetch ends, complete or not.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sluice_source::{Payload, RawSink, Validators};
use sluice_store::{RawManifest, RawRecord, RawZone};

use crate::outcome::Failure;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One run's fetch into a source's raw zone.
pub(crate) struct ZoneSink {
    zone: RawZone,
    run_id: i64,
    fetch_fingerprint: String,
    /// The partition fetched (its label), for a partitioned source.
    partition: Option<String>,
    started_at: DateTime<Utc>,
    /// The newest complete fetch's payloads, by URL.
    previous: HashMap<String, RawRecord>,
    records: Mutex<Vec<RawRecord>>,
}

impl ZoneSink {
    /// A fetch of run `run_id` (of one `partition`) with the fetch options
    /// `fetch_fingerprint`.
    pub(crate) fn new(
        zone: RawZone,
        run_id: i64,
        fetch_fingerprint: &str,
        partition: Option<String>,
    ) -> Result<Self, Failure> {
        let previous = zone
            .newest(fetch_fingerprint)?
            .map(|m| m.records.into_iter().map(|r| (r.url.clone(), r)).collect())
            .unwrap_or_default();
        Ok(Self {
            zone,
            run_id,
            fetch_fingerprint: fetch_fingerprint.to_string(),
            partition,
            started_at: Utc::now(),
            previous,
            records: Mutex::new(vec![]),
        })
    }

    /// Writes the run's manifest: what was fetched, and whether the fetch
    /// completed.
    pub(crate) fn finish(&self, complete: bool) -> Result<RawManifest, Failure> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let manifest = RawManifest {
            run_id: self.run_id,
            fetch_fingerprint: self.fetch_fingerprint.clone(),
            started_at: self.started_at,
            finished_at: Utc::now(),
            complete,
            partition: self.partition.clone(),
            records,
        };
        self.zone.put_manifest(&manifest)?;
        Ok(manifest)
    }

    fn push(&self, r: RawRecord) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r);
    }
}

impl RawSink for ZoneSink {
    fn previous(&self, url: &str) -> Option<Validators> {
        let r = self.previous.get(url)?;
        (r.etag.is_some() || r.last_modified.is_some()).then(|| Validators {
            etag: r.etag.clone(),
            last_modified: r.last_modified.clone(),
        })
    }

    fn store(&self, p: &Payload, body: &[u8]) -> Result<PathBuf, BoxError> {
        let (file, hash) = self.zone.put_payload(self.run_id, body, &p.extension)?;
        let path = self.zone.path_of(&file)?;
        self.push(RawRecord {
            url: p.url.clone(),
            status: p.status,
            fetched_at: Utc::now(),
            etag: p.etag.clone(),
            last_modified: p.last_modified.clone(),
            content_type: p.content_type.clone(),
            content_hash: hash,
            bytes: body.len() as u64,
            file,
            page: p.page,
            depth: p.depth,
            role: Some(p.role.to_string()),
        });
        Ok(path)
    }

    fn confirm(&self, p: &Payload) -> Result<(PathBuf, Vec<u8>), BoxError> {
        let Some(prev) = self.previous.get(&p.url) else {
            return Err(format!(
                "{} answered 304 Not Modified, but no payload of it is stored",
                p.url
            )
            .into());
        };
        let bytes = self.zone.read(&prev.file)?;
        let path = self.zone.path_of(&prev.file)?;
        self.push(RawRecord {
            url: p.url.clone(),
            status: p.status,
            fetched_at: Utc::now(),
            etag: p.etag.clone().or_else(|| prev.etag.clone()),
            last_modified: p
                .last_modified
                .clone()
                .or_else(|| prev.last_modified.clone()),
            content_type: prev.content_type.clone(),
            content_hash: prev.content_hash.clone(),
            bytes: prev.bytes,
            file: prev.file.clone(),
            page: p.page,
            depth: p.depth,
            role: Some(p.role.to_string()),
        });
        Ok((path, bytes))
    }
}
