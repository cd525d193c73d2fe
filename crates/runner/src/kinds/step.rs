//! Steps: a command run over its inputs' rows. With an `output` the step is a
//! Delta table like any other (its commit carries the fingerprint); without
//! one, what it ran from is recorded in the metadata (`steps`), as an export's
//! writes are. Its fingerprint covers the command, `env` as written, the
//! content of its `files` and its inputs' versions.

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, Diagnostic, Project, StepDef, fingerprint};

use super::{Job, Kind, Published, delta};
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};
use crate::pins::{Pins, pinned_fingerprint};

/// `[steps.NAME]`.
pub(crate) struct Step<'a> {
    pub asset: &'a Asset,
    pub def: &'a StepDef,
}

#[async_trait]
impl Kind for Step<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        let name = self.asset.name.as_str();
        if self.def.output.is_some() {
            return delta::published(ws, name).await;
        }
        Ok(ws
            .metadata
            .steps(name)?
            .into_iter()
            .next()
            .map(|s| Published {
                version: Some(s.version),
                rows: Some(0),
                committed_at: Some(s.ran_at),
                fingerprint: Some(s.fingerprint),
                delta: None,
            }))
    }

    async fn fingerprint(
        &self,
        ws: &Workspace,
        asset: &Asset,
        pins: &Pins,
    ) -> Result<String, Failure> {
        let pinned = pinned_fingerprint(ws, asset, pins);
        let def = self.def.clone();
        let step = asset.name.to_string();
        let hash = move || {
            let files = def.file_list().map_err(|e| Failure {
                message: format!("step `{step}`: {e}"),
                class: e.class(),
            })?;
            let content = sluice_source::content_hash(&files).map_err(|e| Failure::of(&e))?;
            Ok(fingerprint(&[&pinned, &content]))
        };
        if self.def.files.is_empty() {
            // Nothing to read: no trip to the blocking pool.
            return hash();
        }
        tokio::task::spawn_blocking(hash)
            .await
            .map_err(Failure::task)?
    }

    fn changed(&self) -> &'static str {
        "its command, files, env or an input's version changed"
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        crate::step::build(job, self.def).await
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        delta::with_quarantined(job, job.up_to_date()).await
    }

    fn schema_unknown_until_built(&self) -> bool {
        self.def.output.is_some()
    }

    /// The schema of the file the command wrote last, if it is there: what
    /// the step publishes is only known once it has run.
    async fn check(
        &self,
        _ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        let Some(output) = &self.def.output else {
            return Ok(None);
        };
        if !output.path.is_file() {
            return Ok(None);
        }
        let read = output.read.clone();
        match tokio::task::spawn_blocking(move || sluice_source::FileSource::open(&read)).await {
            Ok(Ok(source)) => Ok(Some(source.schema())),
            // A file the next run replaces says nothing about the step.
            _ => Ok(None),
        }
    }
}
