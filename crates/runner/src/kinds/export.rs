//! Exports: an asset's rows written to a file. A file has no commit to carry its
//! fingerprint, so what wrote it is recorded in the metadata (`exports`).

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, Diagnostic, ExportDef, Project};

use super::{Job, Kind, Published, arrow_schema};
use crate::Workspace;
use crate::outcome::AssetOutcome;

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
