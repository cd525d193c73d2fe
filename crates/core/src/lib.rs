//! Shared vocabulary of sluice: asset names and kinds, versions, run statuses and
//! source locations, the project file's type words, and whether an error is
//! worth retrying ([`ErrorClass`]). No IO lives here; every other crate depends on this one.

mod class;
mod clock;
mod location;
mod name;
pub mod partition;
pub mod render;
mod secret;
mod types;

pub use arrow_schema::DataType;
pub use class::ErrorClass;
pub use clock::Clock;
pub use location::Location;
pub use name::{AssetName, InvalidAssetName, QUARANTINE_SUFFIX};
pub use secret::{Secret, UnsetVariable, expand_env};
pub use types::{InvalidDuration, parse_duration, parse_type, timestamp_in, type_name};

use serde::{Deserialize, Serialize};

/// A version of an asset in the offline store (a Delta Lake table version).
pub type Version = u64;

/// What kind of thing an asset is. New kinds (feature views, models, exports,
/// collections) are added here as their issues land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// Data read from outside the project (files).
    Source,
    /// A SQL transform over other assets.
    Table,
    /// Features of an entity at event times, also kept in the online store.
    Features,
    /// An asset's rows written to a file (JSON keyed by entity, CSV, Parquet).
    Export,
    /// A learner trained on a training set (or an imported ONNX model), versioned
    /// in the model registry with its metrics.
    Model,
    /// A model's scores for the rows of a spine, also kept in the online store.
    Predictions,
    /// A command (a script, a notebook) run over its inputs' rows, whose
    /// output file, if it declares one, becomes a table.
    Step,
    /// Documents (files, or an asset's rows) cut into chunks for search.
    Collection,
}

impl AssetKind {
    /// The word used in the project file and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Source => "source",
            AssetKind::Table => "table",
            AssetKind::Features => "feature view",
            AssetKind::Export => "export",
            AssetKind::Model => "model",
            AssetKind::Predictions => "predictions",
            AssetKind::Step => "step",
            AssetKind::Collection => "collection",
        }
    }
}

impl std::fmt::Display for AssetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one asset in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetStatus {
    /// A new version was committed.
    Built,
    /// Nothing changed since the published version; no work was done.
    UpToDate,
    /// Materializing the asset failed; its previous version stays published.
    Failed,
    /// An upstream asset failed, so this one was not attempted.
    Blocked,
}

impl AssetStatus {
    /// The word used in summaries, JSON and the run log.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetStatus::Built => "built",
            AssetStatus::UpToDate => "up_to_date",
            AssetStatus::Failed => "failed",
            AssetStatus::Blocked => "blocked",
        }
    }

    /// Whether the asset is usable by its downstream after this status.
    pub fn is_ok(self) -> bool {
        matches!(self, AssetStatus::Built | AssetStatus::UpToDate)
    }
}

impl std::fmt::Display for AssetStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a column name cannot be stored in a Delta table without column mapping
/// (which distributed readers do not all support), if it cannot.
pub fn invalid_column_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a column needs a name".into());
    }
    let bad: String = name
        .chars()
        .filter(|c| " ,;{}()\n\t=".contains(*c))
        .collect();
    if bad.is_empty() {
        None
    } else {
        Some(format!(
            "column name `{name}` has characters stored tables cannot hold ({bad:?})"
        ))
    }
}
