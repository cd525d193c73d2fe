//! Storage, stage ④ of the flow. The offline store keeps every asset as a Delta
//! Lake table, one atomic commit per materialization; the metadata database
//! (SQLite) keeps the run log; the online store (redb) keeps the latest features per entity and the quality history; a lock file keeps two runs of one warehouse apart.
//!
//! What produced a version (its fingerprint, its inputs' versions, the run) is
//! written into the Delta commit itself, so data and provenance become visible in
//! one atomic step and can never disagree after a crash.

mod error;
mod keys;
mod lock;
mod metadata;
mod models;
mod offline;
mod online;
mod quality;
mod types;

pub use error::Error;
pub use keys::{KeyInfo, NewKey, Role};
pub use lock::RunLock;
pub use metadata::{AssetTotals, AttemptRecord, ExportRecord, Metadata, RunRecord, RunState};
pub use models::ModelVersion;
pub use offline::{AsOf, CommitMeta, OfflineStore, VersionInfo};
pub use online::{
    KEY_SEPARATOR, OnlineReader, OnlineRecord, OnlineStore, OnlineWrite, OnlineWriter, Snapshot,
    ViewMeta, ViewWrite,
};
pub use quality::{CheckHistory, CheckRecord, RunQuality};
pub use types::delta_type;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
