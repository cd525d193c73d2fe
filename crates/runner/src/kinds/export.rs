//! Exports: an asset's rows written to a file, a PostgreSQL table or Redis keys.
//! A target has no commit to carry the fingerprint, so what wrote it is recorded
//! in the metadata (`exports`); a target gone since (a file deleted, a table
//! dropped, a Redis pointer expired) makes the export stale. An export of a view
//! that keeps tiles is read as of the run, and its fingerprint names the tile the
//! clock was in.

use std::sync::OnceLock;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, Diagnostic, ExportDef, ExportTarget, Project};

use super::{Job, Kind, Published, arrow_schema};
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};
use crate::pins::{Pins, pinned_fingerprint};

/// `[exports.NAME]`.
pub(crate) struct Export<'a> {
    pub asset: &'a Asset,
    pub def: &'a ExportDef,
    /// Why the target is gone, asked of it (a server, for a table or keys) when
    /// `published` reads the export log, and read by `outdated`, which
    /// staleness always asks after `published`.
    pub gone: OnceLock<Option<String>>,
}

#[async_trait]
impl Kind for Export<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        let latest = ws.metadata.latest_export(self.asset.name.as_str())?;
        if latest.is_some() && self.gone.get().is_none() {
            let _ = self.gone.set(crate::export::gone(self.def).await);
        }
        Ok(latest.map(|w| Published {
            version: Some(w.version),
            rows: Some(w.rows),
            committed_at: Some(w.written_at),
            fingerprint: Some(w.fingerprint),
            delta: None,
        }))
    }

    /// An export of a view that keeps tiles is read as of the run: its
    /// fingerprint names the tile the clock is in.
    async fn fingerprint(
        &self,
        ws: &Workspace,
        asset: &Asset,
        pins: &Pins,
    ) -> Result<String, Failure> {
        let base = pinned_fingerprint(ws, asset, pins);
        Ok(match crate::export_windows::tiled_view(ws, self.def) {
            Some(view) => view.fingerprint(base, ws.clock.now_micros()),
            None => base,
        })
    }

    fn moved(&self, published: &str, now: &str) -> Option<String> {
        crate::export_windows::tile_moved(published, now)
    }

    fn outdated(&self, _published: &Published) -> Option<String> {
        self.gone.get().cloned().flatten()
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        crate::export::build(job, self.def).await
    }

    async fn check(
        &self,
        ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        let (asset, def) = (self.asset, self.def);
        let plan = sluice_transform::plan_table(ctx, asset, &def.query)
            .await
            .map_err(sluice_transform::Error::into_diagnostic)?;
        let schema = arrow_schema(&plan);
        if let ExportTarget::Postgres(t) = &def.target
            && let Err(e) = crate::export::pg_columns(&schema)
        {
            return Err(Diagnostic::new(
                asset.location.clone(),
                format!(
                    "export `{}` cannot be written to PostgreSQL table `{}`.`{}`: {e}",
                    asset.name, t.schema, t.table
                ),
            ));
        }
        match def.key.iter().find(|k| schema.field_with_name(k).is_err()) {
            Some(k) => Err(Diagnostic::new(
                asset.location.clone(),
                format!(
                    "export `{}` is keyed by `{k}`, which its rows do not have",
                    asset.name
                ),
            )
            .with_help(format!(
                "the columns are: {}",
                crate::training::columns(&schema)
            ))),
            None => Ok(Some(schema)),
        }
    }
}
