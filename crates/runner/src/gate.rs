//! The quality gate: materializing an asset that has a contract.
//!
//! The asset's rows stream through the validator into the Delta writer. When the
//! last partition ends — before the writer commits — the policy runs:
//! a failed `error` check ends the stream with an error, so nothing is committed
//! and the previous version stays published; otherwise the quarantined rows are
//! committed to `<asset>__quarantine` first, then the writer commits the asset.
//! A crash between the two commits leaves a quarantine version from a run whose
//! asset version was never published (its `run_id` says so); the next run
//! rebuilds both.

use std::sync::{Arc, Mutex};

use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use sluice_project::{Asset, ExpectKind, Reference};
use sluice_store::{AsOf, CheckRecord, CommitMeta, VersionInfo, WriteMode};
use sluice_validate::{
    Finish, Finished, ReferenceTable, ValidationReport, Validator, validated_table,
};

use crate::Workspace;
use crate::outcome::Failure;

/// Why the writer's input ended in an error: the gate closed.
#[derive(Debug, thiserror::Error)]
#[error("the contract's error checks failed")]
struct GateClosed;

/// What a validated write produced.
pub(crate) struct Validated {
    /// The new version (`None`: an append or merge that changed nothing),
    /// or why there is none.
    pub written: Result<Option<VersionInfo>, Failure>,
    /// The report, when validation got to the end.
    pub report: Option<ValidationReport>,
}

/// Validates `plan`'s rows against the asset's contract while writing them.
pub(crate) async fn write_validated(
    ws: &Workspace,
    asset: &Asset,
    ctx: &SessionContext,
    plan: LogicalPlan,
    meta: &CommitMeta,
    latest: Option<&VersionInfo>,
    mode: WriteMode,
) -> Validated {
    let name = asset.name.as_str();
    let fail = |e: Failure| Validated {
        written: Err(e),
        report: None,
    };
    let references = references(ws, asset, ctx, latest).await;
    let validator = match Validator::prepare(
        ctx,
        name,
        meta.run_id,
        &asset.contract,
        &plan,
        references,
    )
    .await
    {
        Ok(v) => Arc::new(v),
        // A source error met while looking for repeated values names its file and line.
        Err(e) if e.engine().is_some() => return fail(Failure::of(&e)),
        Err(e) => return fail(e.to_string().into()),
    };
    // A source read from one file is validated and written on every core.
    let cores = ctx.state().config().target_partitions();
    let physical = match ctx.state().create_physical_plan(&plan).await.and_then(|p| {
        sluice_store::spread_as_asked(&plan, sluice_store::keep_order(&plan, p), cores)
    }) {
        Ok(p) => p,
        Err(e) => return fail(Failure::of(&e)),
    };
    let slot: Arc<Mutex<Option<ValidationReport>>> = Arc::default();
    let finish: Finish = {
        let slot = slot.clone();
        let store = ws.store.clone();
        let state = ctx.state();
        let quarantine = validator.quarantines().then(|| {
            (
                asset.name.quarantine(),
                validator.quarantine_schema(),
                meta.clone(),
            )
        });
        Arc::new(
            move |finished: Finished| -> BoxFuture<'static, datafusion::error::Result<()>> {
                let slot = slot.clone();
                let store = store.clone();
                let state = state.clone();
                let quarantine = quarantine.clone();
                Box::pin(async move {
                    let closed = !finished.report.errors().is_empty();
                    *slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(finished.report);
                    if closed {
                        return Err(DataFusionError::External(Box::new(GateClosed)));
                    }
                    if let Some((table, schema, meta)) = quarantine {
                        let rows = MemTable::try_new(schema, vec![finished.quarantine])?;
                        let plan = LogicalPlanBuilder::scan(
                            table.as_str(),
                            provider_as_source(Arc::new(rows)),
                            None,
                        )?
                        .build()?;
                        store
                            .write(&table, plan, &state, &meta)
                            .await
                            .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    }
                    Ok(())
                })
            },
        )
    };
    let table = match validated_table(validator, physical, ctx.task_ctx(), finish) {
        Ok(t) => t,
        Err(e) => return fail(Failure::of(&e)),
    };
    // Bookkeeping columns (a pushed row's request and position) are judged and
    // quarantined with the row, never published.
    let schema = table.schema();
    let hidden =
        |f: &&Arc<datafusion::arrow::datatypes::Field>| f.name().starts_with(crate::push::HIDDEN);
    let published: Option<Vec<datafusion::prelude::Expr>> =
        schema.fields().iter().any(|f| hidden(&f)).then(|| {
            schema
                .fields()
                .iter()
                .filter(|f| !hidden(f))
                .map(|f| datafusion::prelude::ident(f.name()))
                .collect()
        });
    let plan = match LogicalPlanBuilder::scan(name, provider_as_source(table), None)
        .and_then(|b| match published {
            Some(columns) => b.project(columns),
            None => Ok(b),
        })
        .and_then(LogicalPlanBuilder::build)
    {
        Ok(p) => p,
        Err(e) => return fail(Failure::of(&e)),
    };
    // The validated rows are already the partitions of a physical plan, in its
    // order (a query ending in `ORDER BY` is one sorted stream): planned again
    // for the writer, they must not be dealt out round-robin.
    let state = {
        let mut config = ctx.copied_config();
        config
            .options_mut()
            .optimizer
            .enable_round_robin_repartition = false;
        datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
            .with_config(config)
            .build()
    };
    let written = store_write(ws, name, plan, &state, meta, mode).await;
    let report = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    // A closed gate explains itself; any other failure is told by its root cause.
    let written =
        written.map_err(
            |e| match report.as_ref().and_then(ValidationReport::gate_message) {
                Some(gate) => Failure::from(gate),
                None => Failure {
                    message: crate::error::root_cause(&e),
                    class: e.class(),
                },
            },
        );
    if let Some(report) = &report {
        keep_report(ws, report);
    }
    Validated { written, report }
}

/// Writes `plan` into the asset's table as `mode` says. A partition written
/// over a table whose columns changed replaces the table whole, so the records
/// of its other partitions are dropped (they are rebuilt). `None`: an append or
/// merge that changed nothing.
pub(crate) async fn store_write(
    ws: &Workspace,
    name: &str,
    plan: LogicalPlan,
    state: &datafusion::execution::SessionState,
    meta: &CommitMeta,
    mode: WriteMode,
) -> sluice_store::Result<Option<VersionInfo>> {
    let partition = matches!(mode, WriteMode::Where(_));
    let Some((info, whole)) = ws.store.write_with(name, plan, state, meta, mode).await? else {
        return Ok(None);
    };
    if partition && whole {
        ws.metadata.forget_partitions(name)?;
    }
    Ok(Some(info))
}

/// The reference versions the contract's drift checks compare with, where they exist.
async fn references(
    ws: &Workspace,
    asset: &Asset,
    ctx: &SessionContext,
    latest: Option<&VersionInfo>,
) -> Vec<ReferenceTable> {
    let mut out: Vec<ReferenceTable> = Vec::new();
    for e in &asset.contract.expectations {
        let reference = match e.kind {
            ExpectKind::Psi { reference, .. } | ExpectKind::Ks { reference, .. } => reference,
            _ => continue,
        };
        if out.iter().any(|r| r.reference == reference) {
            continue;
        }
        let version = match reference {
            Reference::Previous => latest.map(|l| l.version),
            Reference::Version(v) => Some(v),
        };
        let Some(version) = version else { continue };
        match ws
            .store
            .provider(asset.name.as_str(), AsOf::Version(version), &ctx.state())
            .await
        {
            Ok(provider) => out.push(ReferenceTable {
                reference,
                version,
                provider,
            }),
            Err(e) => tracing::warn!("drift reference of `{}`: {e}", asset.name),
        }
    }
    out
}

/// Records the report in the metadata database and writes it as JSON and HTML
/// under `<warehouse>/reports/<asset>/`.
pub(crate) fn keep_report(ws: &Workspace, report: &ValidationReport) {
    let json = match serde_json::to_string_pretty(report) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!("could not encode the report of `{}`: {e}", report.asset);
            return;
        }
    };
    let checks: Vec<CheckRecord> = report
        .checks
        .iter()
        .map(|c| CheckRecord {
            name: c.name.clone(),
            severity: c.severity.as_str().to_string(),
            verdict: c.verdict.as_str().to_string(),
            score: c.score,
            observed: c.observed,
        })
        .collect();
    if let Err(e) = ws.metadata.record_report(
        report.run_id,
        &report.asset,
        report.created_at,
        &json,
        &checks,
    ) {
        tracing::warn!("could not record the report of `{}`: {e}", report.asset);
    }
    let (json_file, html_file) = ws.warehouse.report_files(&report.asset, report.run_id);
    let html = sluice_validate::render_html(report);
    for (file, bytes) in [(json_file, json.as_bytes()), (html_file, html.as_bytes())] {
        if let Err(e) = ws.warehouse.put(&file, bytes) {
            tracing::warn!("could not write a report file: {e}");
        }
    }
}
