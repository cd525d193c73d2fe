//! Sources: files read from outside the project. Their fingerprint hashes the
//! files' contents, so a changed file is a new version.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::TableProvider;
use datafusion::prelude::SessionContext;
use sluice_project::{Asset, Diagnostic, FilesDef, Project, fingerprint};
use sluice_source::{FileSource, content_hash};

use super::{Job, Kind, Published, delta};
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};
use crate::partitions::column_type;
use crate::pins::Pins;

/// `[sources.NAME]`.
pub(crate) struct Source<'a> {
    pub asset: &'a Asset,
    pub def: &'a FilesDef,
}

#[async_trait]
impl Kind for Source<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        delta::published(ws, self.asset.name.as_str()).await
    }

    async fn fingerprint(
        &self,
        _ws: &Workspace,
        asset: &Asset,
        _pins: &Pins,
    ) -> Result<String, Failure> {
        let def = self.def.clone();
        let asset_fp = asset.fingerprint.clone();
        tokio::task::spawn_blocking(move || {
            let files = def.files().map_err(|e| Failure::of(&e))?;
            if files.is_empty() {
                return Err(Failure::of(&sluice_source::Error::NoFiles {
                    pattern: def.pattern.display().to_string(),
                }));
            }
            let content = content_hash(&files).map_err(|e| Failure::of(&e))?;
            Ok(fingerprint(&[&asset_fp, &content]))
        })
        .await
        .map_err(Failure::task)?
    }

    fn changed(&self) -> &'static str {
        "its files or definition changed"
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        let ctx = sluice_transform::session();
        let source = match open(self.def).await {
            Ok(s) => s,
            Err(e) => return job.failed(e),
        };
        // Files are parsed one thread each.
        let files = source.files().len();
        let name = self.asset.name.as_str();
        let plan = source
            .table_provider()
            .and_then(|p| delta::spread_scan(&ctx, name, p, files));
        match plan {
            // Parquet files read as they are stored can be stored as copies.
            Ok(plan) if source.parquet_as_stored() => {
                delta::write_copies(job, &ctx, plan, source.files()).await
            }
            Ok(plan) => delta::write(job, &ctx, plan).await,
            Err(e) => job.failed(Failure::of(&e)),
        }
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        delta::with_quarantined(job, job.up_to_date()).await
    }

    async fn rows(&self, _job: &Job<'_>) -> Result<Option<Arc<dyn TableProvider>>, Failure> {
        let source = open(self.def).await?;
        source
            .table_provider()
            .map(Some)
            .map_err(|e| Failure::of(&e))
    }

    async fn check(
        &self,
        _ctx: &SessionContext,
        _project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        let name = &self.asset.name;
        match open(self.def).await {
            Ok(source) => {
                let schema = source.schema();
                if let Some(p) = &self.asset.partitioned {
                    column_type(&schema, self.asset, p)?;
                }
                Ok(Some(schema))
            }
            Err(e) => Err(Diagnostic::new(
                self.asset.location.clone(),
                format!("source `{name}`: {e}"),
            )),
        }
    }
}

/// Opens a source's files for reading (schema inference included).
async fn open(def: &FilesDef) -> Result<FileSource, Failure> {
    let def = def.clone();
    // What opening warns of (a one-column header with spaces) is the asset's log.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| FileSource::open(&def).map_err(|e| Failure::of(&e)))
    })
    .await
    .map_err(Failure::task)?
}
