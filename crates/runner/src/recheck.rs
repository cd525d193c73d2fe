//! Clock-dependent expectations on an up-to-date asset. A `freshness` check
//! judges the data against the time of the run, so it must run on every run —
//! above all when nothing changed, because a feed that stopped is exactly an
//! input that does not change. The published version is scanned (only the
//! columns those checks read), the newest report is renewed with the new
//! observations, and a failed `error` check fails the asset (its downstream is
//! blocked) without touching what is published.

use std::sync::{Arc, Mutex};

use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlanBuilder, col};
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use futures::future::BoxFuture;
use sluice_core::AssetStatus;
use sluice_project::{Asset, Contract, ExpectKind};
use sluice_validate::{Finish, Finished, ValidationReport, Validator, validated_table};

use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};

/// The contract's expectations whose verdict depends on the clock.
fn clock_dependent(contract: &Contract) -> Contract {
    Contract {
        rules: Vec::new(),
        expectations: contract
            .expectations
            .iter()
            .filter(|e| matches!(e.kind, ExpectKind::Freshness(_)))
            .cloned()
            .collect(),
    }
}

/// Re-evaluates the clock-dependent expectations of an up-to-date asset on its
/// published version and folds the verdicts into `done`.
pub(crate) async fn recheck(
    ws: &Workspace,
    asset: &Asset,
    run_id: i64,
    mut done: AssetOutcome,
) -> AssetOutcome {
    let contract = clock_dependent(&asset.contract);
    let Some(version) = done.version else {
        return done;
    };
    if contract.expectations.is_empty() || done.status != AssetStatus::UpToDate {
        return done;
    }
    let fresh = match observe(ws, asset, version, run_id, &contract).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("could not re-check the freshness of `{}`: {e}", asset.name);
            return done;
        }
    };
    let report = renewed(ws, asset, fresh);
    crate::gate::keep_report(ws, &report);
    done.warnings = report.warnings().len() as u64;
    if let Some(message) = report.gate_message() {
        done.status = AssetStatus::Failed;
        done.error = Some(format!(
            "{message}\n  help: version {version} stays published; its data did not change"
        ));
    }
    done
}

/// Runs `contract` over the columns it reads of `version`.
async fn observe(
    ws: &Workspace,
    asset: &Asset,
    version: u64,
    run_id: i64,
    contract: &Contract,
) -> Result<ValidationReport, Failure> {
    let name = asset.name.as_str();
    let ctx = sluice_transform::session();
    let provider = crate::kinds::delta::version_provider(ws, &ctx, name, version).await?;
    let mut columns: Vec<&str> = contract
        .expectations
        .iter()
        .filter_map(|e| e.column.as_deref())
        .collect();
    columns.sort_unstable();
    columns.dedup();
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(provider), None)
        .and_then(|b| b.project(columns.iter().map(|c| col(format!("\"{c}\"")))))
        .and_then(LogicalPlanBuilder::build)
        .map_err(|e| Failure::of(&e))?;
    let validator = Validator::prepare(&ctx, name, run_id, contract, &plan, Vec::new())
        .await
        .map_err(|e| Failure::of(&e))?;
    let physical = ctx
        .state()
        .create_physical_plan(&plan)
        .await
        .map_err(|e| Failure::of(&e))?;
    let slot: Arc<Mutex<Option<ValidationReport>>> = Arc::default();
    let finish: Finish = {
        let slot = slot.clone();
        Arc::new(
            move |finished: Finished| -> BoxFuture<'static, datafusion::error::Result<()>> {
                *slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(finished.report);
                Box::pin(async { Ok(()) })
            },
        )
    };
    let table = validated_table(Arc::new(validator), physical, ctx.task_ctx(), finish)
        .map_err(|e| Failure::of(&e))?;
    let df: DataFrame = ctx.read_table(table).map_err(|e| Failure::of(&e))?;
    let mut stream = df.execute_stream().await.map_err(|e| Failure::of(&e))?;
    while let Some(batch) = stream.next().await {
        batch.map_err(|e| Failure::of(&e))?;
    }
    let report = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    report.ok_or_else(|| Failure::from("the validator made no report".to_string()))
}

/// The newest report of the asset with the re-evaluated checks replaced, as
/// this run's report (or the new checks alone, when there was none).
fn renewed(ws: &Workspace, asset: &Asset, fresh: ValidationReport) -> ValidationReport {
    let previous = ws
        .metadata
        .report(asset.name.as_str(), None)
        .ok()
        .flatten()
        .and_then(|(_, json)| serde_json::from_str::<ValidationReport>(&json).ok());
    let Some(mut report) = previous else {
        return fresh;
    };
    for check in &mut report.checks {
        if let Some(new) = fresh.checks.iter().find(|c| c.name == check.name) {
            *check = new.clone();
        }
    }
    report.run_id = fresh.run_id;
    report.created_at = fresh.created_at;
    report
}
