//! Database sources (PostgreSQL, SQLite): a query's rows read into a Delta
//! version. A database cannot be content-hashed cheaply, so such a source is
//! read at every run it is part of.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::TableProvider;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, DatabaseDef, Diagnostic, Project};
use sluice_source::DbSource;

use super::{Job, Kind, Published, delta};
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};

/// `[sources.NAME]` with `postgres`, `mysql` or `sqlite`.
pub(crate) struct DbSourceKind<'a> {
    pub asset: &'a Asset,
    pub def: &'a DatabaseDef,
}

#[async_trait]
impl Kind for DbSourceKind<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        delta::published(ws, self.asset.name.as_str()).await
    }

    fn outdated(&self, _published: &Published) -> Option<String> {
        Some("a database source is read at every run".to_string())
    }

    fn changed(&self) -> &'static str {
        "its definition changed"
    }

    fn reads_elsewhere(&self) -> bool {
        true
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        let ctx = sluice_transform::session();
        let name = self.asset.name.as_str();
        let source = match DbSource::open(name, self.def).await {
            Ok(s) => s,
            Err(e) => return job.failed(Failure::of(&e)),
        };
        // One reading stream per range.
        let ranges = self.def.partitions.as_ref().map_or(1, |p| p.count);
        let plan = delta::spread_scan(&ctx, name, source.table_provider(), ranges);
        match plan {
            Ok(plan) => delta::write(job, &ctx, plan).await,
            Err(e) => job.failed(Failure::of(&e)),
        }
    }

    async fn rows(&self, _job: &Job<'_>) -> Result<Option<Arc<dyn TableProvider>>, Failure> {
        // The table answers the watermark's bounds at the database, as
        // bound parameters (`filter.rs`), so only new rows cross the wire.
        let source = DbSource::open(self.asset.name.as_str(), self.def)
            .await
            .map_err(|e| Failure::of(&e))?;
        Ok(Some(source.table_provider()))
    }

    async fn check(
        &self,
        _ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        match DbSource::open(self.asset.name.as_str(), self.def).await {
            Ok(source) => Ok(Some(source.schema())),
            Err(e) => Err(Diagnostic::new(self.asset.location.clone(), e.to_string())),
        }
    }
}
