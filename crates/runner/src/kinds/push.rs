//! Push sources: their rows come from `POST /v1/push/{source}` (`crate::push`),
//! not from a run. A run only makes the empty table the first time, so that
//! what reads it can be planned and built before anything is pushed.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, Diagnostic, Project, PushDef};
use sluice_store::WriteMode;

use super::{Job, Kind, Published, delta};
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};
use crate::pins::Pins;

/// `[sources.NAME] push = { ... }`.
pub(crate) struct Push<'a> {
    pub asset: &'a Asset,
    pub def: &'a PushDef,
}

#[async_trait]
impl Kind for Push<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        delta::published(ws, self.asset.name.as_str()).await
    }

    async fn fingerprint(
        &self,
        _ws: &Workspace,
        asset: &Asset,
        _pins: &Pins,
    ) -> Result<String, Failure> {
        Ok(asset.fingerprint.clone())
    }

    fn changed(&self) -> &'static str {
        "its columns or key changed"
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        let name = self.asset.name.as_str();
        if job.latest().is_some() && !job.ws.full_refresh.contains(name) {
            // Pushed rows cannot be pushed again by sluice: a table written
            // under other columns or another key stays until it is emptied.
            return job.failed(Failure::from(format!(
                "the columns or key of push source `{name}` changed since rows were pushed to it\n  \
                 help: run `sluice run --full-refresh {name}` to empty it under the new definition \
                 (the pushed rows stay readable in its earlier versions)"
            )));
        }
        let empty = MemTable::try_new(self.def.schema.clone(), vec![vec![]])
            .map_err(|e| Failure::of(&e))
            .and_then(|t| {
                LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(t)), None)
                    .and_then(|b| b.build())
                    .map_err(|e| Failure::of(&e))
            });
        match empty {
            Ok(plan) => {
                let ctx = sluice_transform::session();
                delta::write_with(job, &ctx, plan, WriteMode::Whole, None).await
            }
            Err(e) => job.failed(e),
        }
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        delta::with_quarantined(job, job.up_to_date()).await
    }

    async fn check(
        &self,
        _ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        Ok(Some(self.def.schema.clone()))
    }
}
