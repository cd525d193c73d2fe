//! The model registry in the metadata database: one row per trained (or
//! imported) version of a model, with what it was trained on, its validation
//! metrics, its feature importance and whether it was promoted. The version
//! that serves is the newest promoted one.
//!
//! A version's file ([`model_file`]: `<warehouse>/models/<model>/v<N>/model.json`) is written
//! and synced before its row is inserted; the row is the commit. A crash in
//! between leaves a file no row names, which the next training of that
//! version number overwrites.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::Result;
use crate::metadata::{Metadata, parse_time};

/// One version of a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    /// The model.
    pub model: String,
    /// Its version number (1, 2, ...).
    pub version: u64,
    /// The run that made it.
    pub run_id: i64,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The fingerprint of its definition and training inputs: a run trains a new
    /// version only when this changes.
    pub fingerprint: String,
    /// `gbdt`, `logistic`, `linear` or `onnx`.
    pub learner: String,
    /// A hash of the model's definition (learner, parameters, features, split).
    pub params_hash: String,
    /// The versions of the spine and feature views it was trained on.
    pub inputs: BTreeMap<String, u64>,
    /// Training rows.
    pub train_rows: u64,
    /// Validation rows.
    pub valid_rows: u64,
    /// Validation rows start at this time (RFC 3339), if any.
    pub valid_from: Option<String>,
    /// Validation metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Importance per input, largest first.
    pub importance: Vec<(String, f64)>,
    /// Whether the version met the promotion thresholds.
    pub promoted: bool,
    /// Why it was not promoted.
    pub reason: Option<String>,
    /// How long training took.
    pub train_ms: u64,
}

impl ModelVersion {
    /// The model file of this version.
    pub fn file(&self, warehouse: &crate::Warehouse) -> PathBuf {
        model_file(warehouse, &self.model, self.version)
    }
}

/// The file a model version is saved to (its other artifacts sit beside it).
pub fn model_file(warehouse: &crate::Warehouse, model: &str, version: u64) -> PathBuf {
    warehouse.model_dir(model, version).join("model.json")
}

const COLUMNS: &str = "model, version, run_id, created_at, fingerprint, learner, params_hash, inputs, train_rows, valid_rows, valid_from, metrics, importance, promoted, reason, train_ms";

fn row_version(row: &rusqlite::Row<'_>) -> rusqlite::Result<ModelVersion> {
    let json = |i: usize| -> rusqlite::Result<String> { row.get(i) };
    Ok(ModelVersion {
        model: row.get(0)?,
        version: row.get::<_, i64>(1)? as u64,
        run_id: row.get(2)?,
        created_at: parse_time(row.get::<_, String>(3)?),
        fingerprint: row.get(4)?,
        learner: row.get(5)?,
        params_hash: row.get(6)?,
        inputs: serde_json::from_str(&json(7)?).unwrap_or_default(),
        train_rows: row.get::<_, i64>(8)? as u64,
        valid_rows: row.get::<_, i64>(9)? as u64,
        valid_from: row.get(10)?,
        metrics: serde_json::from_str(&json(11)?).unwrap_or_default(),
        importance: serde_json::from_str(&json(12)?).unwrap_or_default(),
        promoted: row.get::<_, i64>(13)? != 0,
        reason: row.get(14)?,
        train_ms: row.get::<_, i64>(15)? as u64,
    })
}

impl Metadata {
    /// The number the next version of `model` gets.
    pub fn next_model_version(&self, model: &str) -> Result<u64> {
        self.with(|c| {
            c.query_row(
                "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?1",
                [model],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|v| v as u64)
    }

    /// Records a version; its file must already be written.
    pub fn record_model_version(&self, v: &ModelVersion) -> Result<()> {
        self.with(|c| {
            c.execute(
                &format!("INSERT INTO model_versions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
                params![
                    v.model,
                    v.version as i64,
                    v.run_id,
                    v.created_at.to_rfc3339(),
                    v.fingerprint,
                    v.learner,
                    v.params_hash,
                    json(&v.inputs),
                    v.train_rows as i64,
                    v.valid_rows as i64,
                    v.valid_from,
                    json(&v.metrics),
                    json(&v.importance),
                    i64::from(v.promoted),
                    v.reason,
                    v.train_ms as i64,
                ],
            )
            .map(drop)
        })
    }

    /// Every version of `model`, oldest first.
    pub fn model_versions(&self, model: &str) -> Result<Vec<ModelVersion>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM model_versions WHERE model = ?1 ORDER BY version"
            ))?;
            let rows = stmt.query_map([model], row_version)?;
            rows.collect()
        })
    }

    /// The newest version of `model`, promoted or not.
    pub fn newest_model_version(&self, model: &str) -> Result<Option<ModelVersion>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM model_versions WHERE model = ?1 ORDER BY version DESC LIMIT 1"),
                [model],
                row_version,
            )
            .optional()
        })
    }

    /// The version of `model` that serves: the newest promoted one.
    pub fn promoted_model_version(&self, model: &str) -> Result<Option<ModelVersion>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM model_versions WHERE model = ?1 AND promoted = 1 ORDER BY version DESC LIMIT 1"),
                [model],
                row_version,
            )
            .optional()
        })
    }

    /// The number of the version of `model` that serves, if one is promoted
    /// (a cheap check for caches of loaded models).
    pub fn serving_model_version(&self, model: &str) -> Result<Option<u64>> {
        self.with(|c| {
            c.query_row(
                "SELECT max(version) FROM model_versions WHERE model = ?1 AND promoted = 1",
                [model],
                |r| r.get::<_, Option<i64>>(0),
            )
        })
        .map(|v| v.map(|v| v as u64))
    }

    /// One version of `model`.
    pub fn model_version(&self, model: &str, version: u64) -> Result<Option<ModelVersion>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM model_versions WHERE model = ?1 AND version = ?2"),
                params![model, version as i64],
                row_version,
            )
            .optional()
        })
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: u64, promoted: bool) -> ModelVersion {
        ModelVersion {
            model: "late".into(),
            version: n,
            run_id: 1,
            created_at: Utc::now(),
            fingerprint: format!("fp{n}"),
            learner: "gbdt".into(),
            params_hash: "p".into(),
            inputs: BTreeMap::from([("spine".to_string(), 3)]),
            train_rows: 10,
            valid_rows: 5,
            valid_from: Some("2013-10-01T00:00:00Z".into()),
            metrics: BTreeMap::from([("auc".to_string(), 0.7)]),
            importance: vec![("x".into(), 1.0)],
            promoted,
            reason: (!promoted).then(|| "auc 0.7 < 0.9".to_string()),
            train_ms: 12,
        }
    }

    #[test]
    fn the_newest_promoted_version_serves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        assert_eq!(db.next_model_version("late").expect("next"), 1);
        assert_eq!(db.promoted_model_version("late").expect("none"), None);
        db.record_model_version(&version(1, true)).expect("v1");
        db.record_model_version(&version(2, false)).expect("v2");
        assert_eq!(db.next_model_version("late").expect("next"), 3);
        let serving = db
            .promoted_model_version("late")
            .expect("serving")
            .expect("v1");
        assert_eq!(serving.version, 1);
        assert_eq!(db.serving_model_version("late").expect("serving"), Some(1));
        assert_eq!(db.serving_model_version("other").expect("none"), None);
        let newest = db
            .newest_model_version("late")
            .expect("newest")
            .expect("v2");
        assert_eq!(newest.version, 2);
        assert_eq!(newest.reason.as_deref(), Some("auc 0.7 < 0.9"));
        assert_eq!(newest.inputs["spine"], 3);
        assert_eq!(db.model_versions("late").expect("all").len(), 2);
        assert!(
            db.record_model_version(&version(2, true)).is_err(),
            "a version is written once"
        );
        assert_eq!(
            serving.file(&crate::Warehouse::local(dir.path())),
            dir.path().join("models/late/v1/model.json")
        );
    }
}
