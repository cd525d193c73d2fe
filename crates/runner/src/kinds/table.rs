//! Tables: a SQL query over other assets at the versions the run pinned.

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, Diagnostic, Project, TableDef};

use super::{Job, Kind, Published, arrow_schema, delta};
use crate::Workspace;
use crate::outcome::AssetOutcome;
use crate::pins::register_inputs;

/// `[tables.NAME]`.
pub(crate) struct Table<'a> {
    pub asset: &'a Asset,
    pub def: &'a TableDef,
}

#[async_trait]
impl Kind for Table<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        delta::published(ws, self.asset.name.as_str()).await
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        let ctx = sluice_transform::session();
        if let Err(e) = register_inputs(job.ws, &ctx, job.pins).await {
            return job.failed(e.to_string());
        }
        match sluice_transform::plan_table(&ctx, self.asset, self.def).await {
            Ok(plan) => delta::write(job, &ctx, plan).await,
            Err(e) => job.failed(e.to_string()),
        }
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        delta::with_quarantined(job, job.up_to_date()).await
    }

    async fn check(
        &self,
        ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        sluice_transform::plan_table(ctx, self.asset, self.def)
            .await
            .map_err(sluice_transform::Error::into_diagnostic)
            .map(|plan| Some(arrow_schema(&plan)))
    }
}
