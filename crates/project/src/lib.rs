//! The project model: `sluice.toml` → raw sections ([`parse`]) → [`compile`] →
//! [`Project`], the DAG of assets. Loading reports every problem it finds at once,
//! each with `file:line:column` and what to do.

pub mod compile;
pub mod contract;
mod dag;
pub mod diag;
pub mod features;
pub mod models;
pub mod parse;
mod profiles;
pub mod raw;
pub mod sql;

use std::path::Path;

pub use compile::{
    ActionDef, AlertDef, Asset, Cadence, Channel, CollectionDef, CrawlDef, DEFAULT_EMBEDDING,
    DEFAULT_TRIGGER_INTERVAL, DatabaseDef, Definition, Documents, EmailDef, Embedding, Engine,
    ExplorerDef, ExportDef, ExportFormat, ExportTarget, FileTarget, FilesDef, HttpDef, Incremental,
    InvalidFormat, JsonPath, ListFilesError, Partitioning, PathStep, PostgresTarget, Project,
    PushDef, RangeSplit, RedisTarget, RunPolicy, ScheduleDef, ScheduleTarget, SourceDef, StepDef,
    StepFilesError, StepOutput, TableDef, TimeFormat, fingerprint, list_files,
};
pub use contract::{Bounds, Contract, ExpectKind, Expectation, Reference, RowRule, RuleKind};
pub use diag::{Diagnostic, Diagnostics};
pub use features::{AsOf, FeatureBody, FeatureDef, Tiling, TimeLiteral};
pub use models::{Learner, Metric, ModelDef, PredictionsDef, Split, Task};
pub use parse::{PROJECT_FILE, RawProject};
pub use raw::{
    AlertEvent, Catchup, Delimiter, FileFormat, HttpFormat, IncrementalMode, Literal, OnWord,
    PagingStyle, PostgresMode, RedisFormat, RetryOn, Severity, WebhookFormat,
};
pub use sql::SqlOrigin;

/// Loads and compiles the project in `dir` with the given profile.
pub fn load(dir: &Path, profile: Option<&str>) -> Result<Project, Diagnostics> {
    let raw = parse::parse_project(dir, profile)?;
    compile::compile(&raw)
}
