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
    /// Time spent on the asset.
    pub duration_ms: u64,
    /// Why it failed or was blocked.
    pub error: Option<String>,
    /// For a failed asset: whether running it again may succeed.
    #[serde(skip)]
    pub class: Option<ErrorClass>,
    /// For a feature view: what was written to the online store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineOutcome>,
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
        }
    }
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
    /// Time spent writing the online store.
    pub duration_ms: u64,
}

/// An asset that failed with `error`; `previous` stays published.
pub(crate) fn failed(
    asset: &Asset,
    started: Instant,
    error: String,
    previous: Option<u64>,
) -> AssetOutcome {
    AssetOutcome {
        error: Some(error),
        class: Some(ErrorClass::Permanent),
        ..AssetOutcome::new(asset, AssetStatus::Failed, previous, 0, started)
    }
}
