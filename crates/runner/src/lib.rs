//! Orchestration: runs a compiled project's DAG over the stages (sources,
//! transforms, store), in parallel where the DAG allows, and records every run.
//! Also answers the read-only questions about a project: check, status, query.
//!
//! Architecture invariant: a failed asset never changes what is published; its
//! downstream is blocked, its siblings go on.

mod check;
mod error;
mod gate;
mod query;
mod run;
mod status;

pub use check::check;
pub use error::{Error, Result};
pub use gate::report_dir;
pub use query::{parse_as_of, query};
pub use run::{AssetOutcome, Observer, RunSummary, run};
pub use status::{AssetState, status};

use sluice_project::Project;
use sluice_store::{Metadata, OfflineStore};

/// A loaded project with its warehouse opened.
#[derive(Debug)]
pub struct Workspace {
    /// The compiled project.
    pub project: Project,
    /// Its offline store.
    pub store: OfflineStore,
    /// Its run log.
    pub metadata: Metadata,
}

impl Workspace {
    /// Opens the warehouse of a compiled project.
    pub fn open(project: Project) -> Result<Self> {
        let store = OfflineStore::new(&project.warehouse);
        let metadata = Metadata::open(&project.warehouse)?;
        Ok(Self {
            project,
            store,
            metadata,
        })
    }

    /// The tables the store holds for the project: every asset, and
    /// `<asset>__quarantine` for each asset whose contract quarantines rows.
    pub fn tables(&self) -> Vec<String> {
        let mut out = Vec::new();
        for name in &self.project.order {
            out.push(name.to_string());
            if self.project.assets[name].contract.quarantines() {
                out.push(name.quarantine());
            }
        }
        out
    }
}
