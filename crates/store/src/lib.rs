//! Storage, stage ④ of the flow. The [`Warehouse`] owns the layout of
//! everything stored. The offline store keeps every asset as a Delta Lake table,
//! one atomic commit per materialization; the metadata database (SQLite) keeps
//! the run log, the model registry and the quality history; the online store
//! (the [`OnlineStore`] trait, redb today) keeps the latest features per entity;
//! the run lock (the [`RunLock`] trait, a file lock today) keeps two runs of one
//! warehouse apart.
//!
//! What produced a version (its fingerprint, its inputs' versions, the run) is
//! written into the Delta commit itself, so data and provenance become visible in
//! one atomic step and can never disagree after a crash.

mod alerts;
mod content;
mod contents;
mod copy;
mod deliveries;
mod error;
mod facts;
mod fresh;
mod keys;
mod lock;
mod logs;
mod merge;
mod metadata;
mod models;
mod offline;
mod online;
mod partitions;
mod pipelines;
mod quality;
mod raw;
mod schedules;
mod split;
mod spread;
mod types;
mod warehouse;
mod writes;

pub use alerts::Incident;
pub use content::ContentHash;
pub use deliveries::{ClaimedDelivery, DeliveryRecord, DeliveryState, DeliveryTotals, NewDelivery};
pub use error::Error;
pub use fresh::Fresh;
pub use keys::{KeyInfo, NewKey, Role};
pub use lock::{FileRunLock, GoneOutbox, OutboxLock, RunGuard, RunLock};
pub use logs::{LogLine, LogQuery, LogRecord};
pub use metadata::{AttemptRecord, ExportRecord, Metadata, RunRecord, RunState, StepRecord};
pub use models::{ModelVersion, model_file};
pub use offline::{
    AsOf, CommitMeta, OfflineStore, VersionInfo, WriteMode, keep_order, spread_as_asked,
};
pub use online::{
    KEY_SEPARATOR, OnlineRecord, OnlineSnapshot, OnlineStore, OnlineWrite, RedbOnlineStore,
    ViewMeta, ViewWrite, entity_key,
};
pub use partitions::PartitionRecord;
pub use pipelines::{DURATION_BUCKETS_MS, DurationCounts, PipelineTotals, StageRows};
pub use quality::{CheckHistory, CheckPoint, CheckRecord, RunQuality};
pub use raw::{RawManifest, RawRecord, RawZone};
pub use schedules::{TickRecord, TickState};
pub use types::delta_type;
pub use warehouse::Warehouse;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
