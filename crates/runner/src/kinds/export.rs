//! Exports: an asset's rows written to a file. A file has no commit to carry its
//! fingerprint, so what wrote it is recorded in the metadata (`exports`). An
//! export of a view that keeps tiles is read as of the run, and its fingerprint
//! names the tile the clock was in.

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, Diagnostic, ExportDef, Project};

use super::{Job, Kind, Published, arrow_schema};
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};
use crate::pins::{Pins, pinned_fingerprint};

/// `[exports.NAME]`.
pub(crate) struct Export<'a> {
    pub asset: &'a Asset,
    pub def: &'a ExportDef,
}

#[async_trait]
impl Kind for Export<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        Ok(ws
            .metadata
            .latest_export(self.asset.name.as_str())?
            .map(|w| Published {
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
        (!self.def.path.exists()).then(|| format!("{} is missing", self.def.path.display()))
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
