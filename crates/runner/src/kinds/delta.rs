//! What the kinds stored as Delta tables share (sources, tables, feature views,
//! predictions): their published state is the table's newest commit, and a build
//! writes a plan — through the contract's gate when the asset has one.

use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use sluice_core::AssetStatus;
use sluice_store::{CommitMeta, VersionInfo, WriteMode};

use super::{Job, Published};
use crate::Workspace;
use crate::error::root_cause;
use crate::outcome::{AssetOutcome, Failure};

/// The newest commit of the table `name`; none when another kind of asset
/// wrote it (the name was reused, and this asset was not built yet).
pub(crate) async fn published(ws: &Workspace, name: &str) -> crate::Result<Option<Published>> {
    let kind = ws.table_kind(name);
    let latest = ws.store.latest(name).await?.filter(|l| {
        match (l.meta.as_ref().and_then(|m| m.kind), kind) {
            (Some(wrote), Some(is)) => wrote == is,
            _ => true,
        }
    });
    Ok(latest.map(|l| Published {
        version: Some(l.version),
        rows: l.rows,
        committed_at: l.committed_at,
        fingerprint: l.meta.as_ref().map(|m| m.fingerprint.clone()),
        delta: Some(l),
    }))
}

/// A table over version `version` of the stored table `name`, read in `ctx`.
pub(crate) async fn version_provider(
    ws: &Workspace,
    ctx: &SessionContext,
    name: &str,
    version: u64,
) -> Result<std::sync::Arc<dyn datafusion::datasource::TableProvider>, Failure> {
    ws.store
        .provider(name, sluice_store::AsOf::Version(version), &ctx.state())
        .await
        .map_err(|e| Failure::of(&e))
}

/// Writes `plan` as the asset's next version, with what produced it in the
/// commit; through the quality gate when the asset has a contract. For a
/// partition, only `plan`'s rows inside it, replacing the table's rows there.
pub(crate) async fn write(job: &Job<'_>, ctx: &SessionContext, plan: LogicalPlan) -> AssetOutcome {
    // A partition publishes its own rows, replacing the rows of its range only.
    let (plan, replace) = match crate::partitions::restrict(plan, job) {
        Ok(restricted) => restricted,
        Err(e) => return job.failed(e),
    };
    let mode = replace.map_or(WriteMode::Whole, WriteMode::Where);
    write_with(job, ctx, plan, mode, None).await
}

/// Writes `plan` into the asset's table as `mode` says, through the quality
/// gate when the asset has a contract, with an incremental source's
/// `watermark` in the same commit. An append or merge that changes nothing
/// leaves the published version, up to date.
pub(crate) async fn write_with(
    job: &Job<'_>,
    ctx: &SessionContext,
    plan: LogicalPlan,
    mode: WriteMode,
    watermark: Option<String>,
) -> AssetOutcome {
    let meta = commit_meta(job, watermark);
    let asset = job.asset;
    if let Some(failed) = forget_next(job) {
        return failed;
    }
    if !asset.contract.is_empty() {
        let out =
            crate::gate::write_validated(job.ws, asset, ctx, plan, &meta, job.latest(), mode).await;
        let (rows_in, rows_out, rows_quarantined, warnings) =
            out.report.as_ref().map_or((0, 0, 0, 0), |r| {
                (
                    r.rows_in,
                    r.rows_out,
                    r.rows_quarantined,
                    r.warnings().len() as u64,
                )
            });
        let base = match out.written {
            Ok(Some(info)) => built(job, &info, rows_out),
            Ok(None) => job.up_to_date(),
            Err(e) => job.failed(e),
        };
        return AssetOutcome {
            rows_in,
            rows_out,
            rows_quarantined,
            warnings,
            ..base
        };
    }
    match crate::gate::store_write(job.ws, asset.name.as_str(), plan, &ctx.state(), &meta, mode)
        .await
    {
        Ok(Some(info)) => built(job, &info, info.rows.unwrap_or(0)),
        Ok(None) => job.up_to_date(),
        Err(e) => job.failed(Failure {
            message: root_cause(&e),
            class: e.class(),
        }),
    }
}

/// Writes `plan`, whose rows are exactly those of the Parquet `files` (a
/// source stored unchanged), as the asset's next version: the store copies
/// the files' encoded columns where it can. A contract's gate or a
/// partition's range needs the rows themselves: those are written by [`write`].
pub(crate) async fn write_copies(
    job: &Job<'_>,
    ctx: &SessionContext,
    plan: LogicalPlan,
    files: &[std::path::PathBuf],
) -> AssetOutcome {
    let asset = job.asset;
    if !asset.contract.is_empty() || asset.partitioned.is_some() || job.partition.is_some() {
        return write(job, ctx, plan).await;
    }
    let meta = commit_meta(job, None);
    if let Some(failed) = forget_next(job) {
        return failed;
    }
    let name = asset.name.as_str();
    match job
        .ws
        .store
        .write_copies(name, plan, files, &ctx.state(), &meta)
        .await
    {
        Ok(info) => built(job, &info, info.rows.unwrap_or(0)),
        Err(e) => job.failed(Failure {
            message: root_cause(&e),
            class: e.class(),
        }),
    }
}

/// What produced the version `job` writes, for its commit.
fn commit_meta(job: &Job<'_>, watermark: Option<String>) -> CommitMeta {
    CommitMeta {
        fingerprint: job.fingerprint.clone(),
        run_id: job.run_id,
        inputs: job.pins.clone(),
        kind: Some(job.asset.kind()),
        partition: job.partition.map(|p| p.label()),
        watermark,
    }
}

/// Forgets a record left for the version `job` will make (by a table that
/// was removed and made again, its numbers starting over): it must not stand
/// for that version if the process dies between the commit and the new record.
/// The asset's failure when that fails.
fn forget_next(job: &Job<'_>) -> Option<AssetOutcome> {
    let next = job.latest().map_or(0, |l| l.version + 1);
    let forgot = job
        .ws
        .metadata
        .forget_contents_from(job.asset.name.as_str(), next);
    forgot.err().map(|e| {
        job.failed(Failure {
            message: e.to_string(),
            class: e.class(),
        })
    })
}

/// The asset built `info`'s version of `rows` rows. What the version holds is
/// recorded for its downstream's fingerprints; not recorded (a failed write
/// here, a crash before it), the downstream compares the version number
/// instead and rebuilds.
fn built(job: &Job<'_>, info: &VersionInfo, rows: u64) -> AssetOutcome {
    let name = job.asset.name.as_str();
    if let Some(x) = &job.partition {
        // The partition's record: after its commit, so a crash in between
        // can only cause a rebuild. A partition's rows are not the table's.
        let built = (
            info.version,
            job.fingerprint.as_str(),
            info.content.as_deref(),
        );
        if let Err(e) = job
            .ws
            .metadata
            .partition_built(name, &x.label(), built, rows, job.run_id)
        {
            tracing::warn!("could not record partition {x} of `{name}`: {e}");
        }
    } else if let Some(content) = &info.content
        && let Err(e) = job.ws.metadata.record_content(name, info.version, content)
    {
        tracing::warn!(
            "could not record the content of `{name}` v{}: {e}",
            info.version
        );
    }
    AssetOutcome::new(
        job.asset,
        AssetStatus::Built,
        Some(info.version),
        rows,
        job.started,
    )
}

/// An up-to-date asset still accounts for the rows its version's run quarantined.
pub(crate) async fn with_quarantined(job: &Job<'_>, mut done: AssetOutcome) -> AssetOutcome {
    let asset = job.asset;
    if !asset.contract.quarantines() {
        return done;
    }
    let run = job.latest().and_then(|l| l.meta.as_ref()).map(|m| m.run_id);
    if let Ok(Some(q)) = job.ws.store.latest(&asset.name.quarantine()).await
        && q.meta.as_ref().map(|m| m.run_id) == run
    {
        let rows = q.rows.unwrap_or(0);
        done.rows_quarantined = rows;
        done.rows_in += rows;
    }
    done
}

/// A scan of `provider` as `name` that reads `streams` partitions; when there
/// are fewer than cores, its batches are spread so that Parquet encoding
/// uses every core.
pub(crate) fn spread_scan(
    ctx: &SessionContext,
    name: &str,
    provider: std::sync::Arc<dyn datafusion::datasource::TableProvider>,
    streams: usize,
) -> datafusion::error::Result<LogicalPlan> {
    let cores = ctx.state().config().target_partitions();
    let scan = datafusion::logical_expr::LogicalPlanBuilder::scan(
        name,
        datafusion::datasource::provider_as_source(provider),
        None,
    )?;
    if streams < cores {
        scan.repartition(datafusion::logical_expr::Partitioning::RoundRobinBatch(
            cores,
        ))?
        .build()
    } else {
        scan.build()
    }
}
