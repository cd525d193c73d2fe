//! Orchestration: runs a compiled project's DAG over the stages (sources,
//! transforms, store, models), in parallel where the DAG allows, and records
//! every run. Also answers the read-only questions about a project: check,
//! status, query, and scores models (backtests, online predictions).
//!
//! Architecture invariant: a failed asset never changes what is published; its
//! downstream is blocked, its siblings go on.
//!
//! Architecture invariant: alerts are judged after a run ends and delivered in
//! the background; a delivery never fails, blocks or slows a run.

pub mod alerts;
mod anchored;
mod backtest;
mod cancel;
mod check;
mod embedders;
mod error;
mod export;
mod export_windows;
mod gate;
mod kinds;
pub mod logs;
mod models;
mod online;
mod outcome;
mod partitions;
mod pins;
mod predict;
mod predictions;
pub mod push;
mod query;
mod queue;
mod read;
mod ready;
mod recheck;
mod registry;
mod retry;
mod run;
pub mod schedule;
mod status;
mod step;
mod training;

#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod tests;

pub use backtest::{BacktestRequest, BacktestSummary, Period, PeriodResult, backtest};
pub use check::check;
pub use error::{Error, Result};
pub use export::json_rows;
pub use models::{LoadedModel, load_model, model_def};
pub use online::{FeatureRecord, TileReaders, get_features, lookup, parse_read_time};
pub use outcome::{AssetOutcome, CollectionOutcome, ModelOutcome, OnlineOutcome};
pub use partitions::{PartitionScope, PartitionsOutcome, backfill};
pub use predict::{OnlinePrediction, predict_online};
pub use predictions::{MODEL_VERSION, PREDICTED, SCORE};
pub use query::{parse_as_of, query, query_frame};
pub use queue::RunQueue;
pub use read::{
    AssetDetail, AssetInfo, AssetVersion, BatchFeatures, BatchPrediction, ColumnInfo, ExportCache,
    Monitoring, QueryPage, ReadBounds, ReadError, RunLogs, SearchHit, SearchMode, SearchResult,
    Series, Suggestion, asset_detail, asset_list, cancel_run, ensure_collection, explore_label,
    explore_series, explore_suggest, latest_reports, monitoring, query_page, read_export_entry,
    read_features, read_features_batch, read_prediction, rows_head, rows_page, run_detail,
    run_logs, search,
};
pub use registry::{ModelInfo, model_info, model_list};
pub use run::{Observer, RunSummary, run, run_scoped};
pub use status::{AssetState, PartitionState, partition_status, status};
pub use training::{TRAINING_MEMORY, TrainingRequest, TrainingSummary, training_set};

use sluice_project::Project;
use std::sync::Arc;

use sluice_store::{Metadata, OfflineStore, OnlineStore, RunLock, Warehouse};

/// A loaded project with its warehouse opened.
#[derive(Debug)]
pub struct Workspace {
    /// The compiled project.
    pub project: Project,
    /// Its offline store.
    pub store: OfflineStore,
    /// Its run log.
    pub metadata: Metadata,
    /// Its online store, shared by a run's tasks and a server's requests.
    pub online: Arc<dyn OnlineStore>,
    /// Its run lock.
    pub run_lock: Arc<dyn RunLock>,
    /// Where everything is stored, and how it is laid out.
    pub warehouse: Warehouse,
    /// The present, as online reads see it (windows are read as of it), and
    /// as the run log's attempt times and the scheduler read it.
    pub clock: sluice_core::Clock,
    /// This process's runs: the one in progress and those waiting their turn.
    pub queue: RunQueue,
    /// This process's alert deliveries in flight.
    pub outbox: alerts::Outbox,
    /// Tile plans of the online store, parsed, with their derived features
    /// compiled: once per view and materialization, not per read.
    pub tile_readers: TileReaders,
    /// Incremental sources this process's runs read whole again, ignoring
    /// their watermark (`sluice run --full-refresh NAME`).
    pub full_refresh: std::collections::BTreeSet<String>,
    /// The queues of pushes to this process's push sources.
    pub pushes: push::PushLanes,
}

impl Workspace {
    /// Opens the warehouse of a compiled project.
    pub fn open(project: Project) -> Result<Self> {
        let warehouse = Warehouse::local(&project.warehouse);
        Ok(Self {
            store: warehouse.offline(),
            metadata: warehouse.metadata()?,
            online: warehouse.online(),
            run_lock: warehouse.run_lock(),
            warehouse,
            project,
            clock: sluice_core::Clock::system(),
            queue: RunQueue::default(),
            outbox: alerts::Outbox::default(),
            tile_readers: TileReaders::default(),
            full_refresh: Default::default(),
            pushes: Default::default(),
        })
    }

    /// Now, on the workspace's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.clock.now_micros()).unwrap_or_default()
    }

    /// The tables the store holds for the project: every asset, and
    /// `<asset>__quarantine` for each asset whose contract quarantines rows.
    pub fn tables(&self) -> Vec<String> {
        let mut out = Vec::new();
        for name in &self.project.order {
            if !self.project.assets[name].is_table() {
                continue;
            }
            out.push(name.to_string());
            if self.project.assets[name].contract.quarantines() {
                out.push(name.quarantine());
            }
        }
        out
    }

    /// The kind of asset whose rows the stored table `name` holds (an asset's
    /// own table or its quarantine): the versions another kind wrote under the
    /// name are not its own.
    pub fn table_kind(&self, name: &str) -> Option<sluice_core::AssetKind> {
        let base = name
            .strip_suffix(sluice_core::QUARANTINE_SUFFIX)
            .unwrap_or(name);
        self.project.asset(base).map(|a| a.kind())
    }

    /// A DataFusion table over a version of the stored table `name`, refusing a
    /// version another kind of asset wrote under the same name.
    pub async fn table_provider(
        &self,
        name: &str,
        at: sluice_store::AsOf,
        state: &datafusion::execution::SessionState,
    ) -> std::result::Result<Arc<dyn datafusion::datasource::TableProvider>, sluice_store::Error>
    {
        match self.table_kind(name) {
            Some(kind) => self.store.provider_of(name, kind, at, state).await,
            None => self.store.provider(name, at, state).await,
        }
    }

    /// The versions of the stored table `name`, newest first, without those
    /// another kind of asset wrote under the same name.
    pub async fn table_history(
        &self,
        name: &str,
    ) -> std::result::Result<Vec<sluice_store::VersionInfo>, sluice_store::Error> {
        match self.table_kind(name) {
            Some(kind) => self.store.history_of(name, kind).await,
            None => self.store.history(name).await,
        }
    }
}
