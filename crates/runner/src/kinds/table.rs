//! Tables: a SQL query over other assets at the versions the run pinned.

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, Diagnostic, Project, TableDef};

use super::{Job, Kind, Published, arrow_schema, delta};
use crate::Workspace;
use crate::outcome::AssetOutcome;
use crate::partitions::{bind, column_type};
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
        let plan = match sluice_transform::plan_table(&ctx, self.asset, self.def).await {
            Ok(plan) => plan,
            Err(e) => return job.failed(e.to_string()),
        };
        let plan = match bind(plan, self.asset, job.partition.as_ref()) {
            Ok(plan) => plan,
            Err(d) => return job.failed(d.to_string()),
        };
        delta::write(job, &ctx, plan).await
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        delta::with_quarantined(job, job.up_to_date()).await
    }

    async fn check(
        &self,
        ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        let plan = sluice_transform::plan_table(ctx, self.asset, self.def)
            .await
            .map_err(sluice_transform::Error::into_diagnostic)?;
        let first = self.asset.partitioned.as_ref().map(|p| p.start);
        let plan = bind(plan, self.asset, first.as_ref())?;
        if let Some(p) = &self.asset.partitioned {
            column_type(plan.schema().as_arrow(), self.asset, p)?;
        }
        Ok(Some(arrow_schema(&plan)))
    }
}
