//! A model's batch predictions: the prediction spine scored by the serving
//! version, stored as a table and kept online per entity like a feature view.

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_core::AssetStatus;
use sluice_project::{Asset, Diagnostic, PredictionsDef, Project};
use sluice_store::AsOf;

use super::{Job, Kind, Published, delta};
use crate::Workspace;
use crate::outcome::AssetOutcome;

/// `[models.NAME.predictions]`.
pub(crate) struct Predictions<'a> {
    pub asset: &'a Asset,
    pub def: &'a PredictionsDef,
}

#[async_trait]
impl Kind for Predictions<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        delta::published(ws, self.asset.name.as_str()).await
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        // Predictions read their inputs themselves (a model is not a table).
        let ctx = sluice_transform::session();
        let (plan, key) = match crate::predictions::plan(job.ws, &ctx, self.def, job.pins).await {
            Ok(planned) => planned,
            Err(e) => return job.failed(e.to_string()),
        };
        let built = delta::write(job, &ctx, plan).await;
        if built.status != AssetStatus::Built {
            return built;
        }
        crate::online::publish(job.ws, self.asset, &key, built, job.run_id).await
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        // The online store may lag its offline version after a crash.
        let done = delta::with_quarantined(job, job.up_to_date()).await;
        let ctx = sluice_transform::session();
        let at = AsOf::Version(done.version.unwrap_or(0));
        let key = match job
            .ws
            .store
            .provider(self.asset.name.as_str(), at, &ctx.state())
            .await
        {
            Ok(p) => crate::predictions::stored_key(self.def, &p.schema()),
            Err(_) => None,
        };
        match key {
            Some(key) => crate::online::publish(job.ws, self.asset, &key, done, job.run_id).await,
            None => done,
        }
    }

    async fn check(
        &self,
        ctx: &SessionContext,
        project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        crate::check::check_predictions(ctx, project, self.asset, self.def)
            .await
            .map(Some)
    }
}
