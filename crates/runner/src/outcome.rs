//! What happened to one asset in a run: the outcome every kind returns, and the
//! constructors the kinds share.

use std::time::Instant;

use serde::Serialize;
use sluice_core::{AssetKind, AssetStatus, ErrorClass};
use sluice_project::Asset;

/// What happened to one asset in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetOutcome {
    /// The asset.
    pub name: String,
    /// Its kind.
    pub kind: AssetKind,
    /// Built, up to date, failed or blocked.
    pub status: AssetStatus,
    /// The version published after the run (the previous one if it failed).
    pub version: Option<u64>,
    /// Rows that came in.
    pub rows_in: u64,
    /// Rows published (for an asset whose contract failed: rows that passed its
    /// row rules, none of them published), so that `rows_in = rows_out + rows_quarantined`.
    pub rows_out: u64,
    /// Rows set aside by the contract, into `<asset>__quarantine`.
    pub rows_quarantined: u64,
    /// Checks with severity `warn` that failed.
    pub warnings: u64,
    /// Time spent on the asset; a feature view's includes its online write
    /// ([`OnlineOutcome::duration_ms`]).
    pub duration_ms: u64,
    /// Why it failed or was blocked.
    pub error: Option<String>,
    /// For a failed asset: whether running it again may succeed.
    #[serde(skip)]
    pub class: Option<ErrorClass>,
    /// For a feature view: what was written to the online store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineOutcome>,
    /// For a model trained in this run: the version trained, which `version`
    /// (the one that serves) is only when it was promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelOutcome>,
    /// For a partitioned asset: the partitions the run looked at, built and failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<crate::partitions::PartitionsOutcome>,
    /// For a collection built in this run: what happened to its documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionOutcome>,
}

impl AssetOutcome {
    /// An asset that ended with `status` at `version`, every one of its `rows`
    /// passed (nothing quarantined, no warnings, no error).
    pub(crate) fn new(
        asset: &Asset,
        status: AssetStatus,
        version: Option<u64>,
        rows: u64,
        started: Instant,
    ) -> AssetOutcome {
        AssetOutcome {
            name: asset.name.to_string(),
            kind: asset.kind(),
            status,
            version,
            rows_in: rows,
            rows_out: rows,
            rows_quarantined: 0,
            warnings: 0,
            duration_ms: started.elapsed().as_millis() as u64,
            error: None,
            class: None,
            online: None,
            model: None,
            partitions: None,
            collection: None,
        }
    }
}

/// What building a collection did to its documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CollectionOutcome {
    /// Documents there are now.
    pub documents: u64,
    /// Documents not in the previous version.
    pub added: u64,
    /// Documents whose content changed: their chunks were replaced.
    pub changed: u64,
    /// Documents of the previous version that are gone: their chunks left.
    pub deleted: u64,
    /// Documents whose content did not change: their chunks were kept.
    pub unchanged: u64,
    /// Chunks made in this run (of added and changed documents).
    pub chunked: u64,
    /// Chunks embedded in this run: those made whose text no chunk of the
    /// previous version had (the others' vectors are reused).
    pub embedded: u64,
}

/// What materializing a feature view into the online store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OnlineOutcome {
    /// Entities the view holds online after the run.
    pub entities: u64,
    /// Records written in this run (0 when the online store was already current).
    pub written: u64,
    /// Records kept because the stored event was newer.
    pub kept_newer: u64,
    /// Time spent writing the online store, also counted in the view's
    /// [`AssetOutcome::duration_ms`].
    pub duration_ms: u64,
}

/// What training a model version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelOutcome {
    /// The version trained, as the registry numbers it.
    pub built: u64,
    /// Whether it met its thresholds, and so serves.
    pub promoted: bool,
    /// Rows it was trained on.
    pub train_rows: u64,
    /// Rows it was validated on.
    pub valid_rows: u64,
    /// Labelled rows before validation held out of training because their
    /// label was not yet known when validation starts (`label_delay`,
    /// `label_available`).
    pub label_pending: u64,
}

/// Why an asset failed: the message a user reads (a source error's file, line
/// and column first) and whether running again may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// What went wrong, and what to do.
    pub(crate) message: String,
    /// Transient or permanent.
    pub(crate) class: ErrorClass,
}

impl Failure {
    /// The failure an error value describes: its root cause, and the class its
    /// chain decides.
    pub(crate) fn of(e: &(dyn std::error::Error + 'static)) -> Self {
        Failure {
            message: crate::error::root_cause(e),
            class: ErrorClass::of_error(e),
        }
    }

    /// A runner error, classed by the runner.
    pub(crate) fn runner(e: &crate::Error) -> Self {
        Failure {
            message: crate::error::root_cause(e),
            class: e.class(),
        }
    }

    /// A task of the runner died (a panic in a blocking task): a bug, permanent.
    pub(crate) fn task(e: tokio::task::JoinError) -> Self {
        Failure::from(format!("internal error: {e}"))
    }
}

/// A message the runner wrote itself: what the project or the data says,
/// permanent.
impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            class: ErrorClass::Permanent,
        }
    }
}

impl From<sluice_store::Error> for Failure {
    fn from(e: sluice_store::Error) -> Self {
        Failure {
            message: e.to_string(),
            class: e.class(),
        }
    }
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        Failure::runner(&e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An asset that failed with `error`; `previous` stays published.
pub(crate) fn failed(
    asset: &Asset,
    started: Instant,
    error: impl Into<Failure>,
    previous: Option<u64>,
) -> AssetOutcome {
    let Failure { message, class } = error.into();
    AssetOutcome {
        error: Some(message),
        class: Some(class),
        ..AssetOutcome::new(asset, AssetStatus::Failed, previous, 0, started)
    }
}
