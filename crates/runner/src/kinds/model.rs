//! Models: versions live in the registry (SQLite) with their metrics; the one
//! that serves — the newest promoted — is what the downstream reads.

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_core::AssetStatus;
use sluice_project::{Asset, Diagnostic, ModelDef, Project};

use super::{Job, Kind, Published};
use crate::Workspace;
use crate::outcome::AssetOutcome;

/// `[models.NAME]`.
pub(crate) struct Model<'a> {
    pub asset: &'a Asset,
    pub def: &'a ModelDef,
}

#[async_trait]
impl Kind for Model<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        let name = self.asset.name.as_str();
        let Some(newest) = ws.metadata.newest_model_version(name)? else {
            return Ok(None);
        };
        let serving = ws.metadata.promoted_model_version(name)?;
        Ok(Some(Published {
            version: serving.map(|s| s.version),
            rows: Some(newest.train_rows + newest.valid_rows),
            committed_at: Some(newest.created_at),
            fingerprint: Some(newest.fingerprint),
            delta: None,
        }))
    }

    fn changed(&self) -> &'static str {
        "its definition or an input's version changed"
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        crate::models::build(job, self.def).await
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        crate::models::settle(job, AssetStatus::UpToDate, None)
    }

    async fn check(
        &self,
        ctx: &SessionContext,
        project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        // A model is not a table: check its columns, register nothing.
        crate::check::check_model(ctx, project, self.asset, self.def).await?;
        Ok(None)
    }
}
