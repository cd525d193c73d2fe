//! `sluice run`: materializes the assets asked for and everything upstream that is
//! stale, independent assets concurrently, and records the run.
//!
//! An asset is stale when its fingerprint — a hash of its definition and of its
//! input (file contents for sources, input versions for tables) — differs from
//! the fingerprint committed with its latest version.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use datafusion::arrow::error::ArrowError;
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{LogicalPlanBuilder, Partitioning};
use futures::FutureExt;
use serde::Serialize;
use sluice_core::{AssetKind, AssetName, AssetStatus};
use sluice_project::{Asset, Definition, fingerprint};
use sluice_source::{FileSource, content_hash};
use sluice_store::{AsOf, AttemptRecord, CommitMeta, RunLock, RunState, VersionInfo};
use tokio::task::JoinSet;

use crate::{Error, Result, Workspace};

/// What happened to one asset in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetOutcome {
    /// The asset.
    pub name: String,
    /// Its kind.
    pub kind: AssetKind,
    /// Built, up to date, failed or blocked.
    pub status: AssetStatus,
    /// The version published after the run (the previous one if it failed).
    pub version: Option<u64>,
    /// Rows that came in.
    pub rows_in: u64,
    /// Rows published (for an asset whose contract failed: rows that passed its
    /// row rules, none of them published), so that `rows_in = rows_out + rows_quarantined`.
    pub rows_out: u64,
    /// Rows set aside by the contract, into `<asset>__quarantine`.
    pub rows_quarantined: u64,
    /// Checks with severity `warn` that failed.
    pub warnings: u64,
    /// Time spent on the asset.
    pub duration_ms: u64,
    /// Why it failed or was blocked.
    pub error: Option<String>,
    /// For a feature view: what was written to the online store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineOutcome>,
}

impl AssetOutcome {
    /// An asset that ended with `status` at `version`, every one of its `rows`
    /// passed (nothing quarantined, no warnings, no error).
    pub(crate) fn new(
        asset: &Asset,
        status: AssetStatus,
        version: Option<u64>,
        rows: u64,
        started: Instant,
    ) -> AssetOutcome {
        AssetOutcome {
            name: asset.name.to_string(),
            kind: asset.kind(),
            status,
            version,
            rows_in: rows,
            rows_out: rows,
            rows_quarantined: 0,
            warnings: 0,
            duration_ms: started.elapsed().as_millis() as u64,
            error: None,
            online: None,
        }
    }
}

/// What materializing a feature view into the online store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OnlineOutcome {
    /// Entities the view holds online after the run.
    pub entities: u64,
    /// Records written in this run (0 when the online store was already current).
    pub written: u64,
    /// Records kept because the stored event was newer.
    pub kept_newer: u64,
    /// Time spent writing the online store.
    pub duration_ms: u64,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run's number in the run log.
    pub run_id: i64,
    /// Whether every asset is built or up to date.
    pub ok: bool,
    /// Wall-clock time of the whole run.
    pub duration_ms: u64,
    /// One entry per asset, in dependency order.
    pub assets: Vec<AssetOutcome>,
}

/// Hears about a run's progress (progress bars, log lines).
pub trait Observer: Send + Sync {
    /// The run has its number in the run log (before any asset starts).
    fn run_started(&self, _run_id: i64) {}
    /// An asset starts being checked or built.
    fn started(&self, _asset: &AssetName, _kind: AssetKind) {}
    /// An asset is done.
    fn finished(&self, _outcome: &AssetOutcome) {}
}

/// Runs `targets` (all assets when empty) and everything upstream of them.
pub async fn run(
    ws: Arc<Workspace>,
    targets: &[String],
    observer: Arc<dyn Observer>,
) -> Result<RunSummary> {
    let project = &ws.project;
    let order = project
        .closure(targets)
        .map_err(|names| Error::unknown_assets(project, names))?;
    let _lock = RunLock::acquire(&project.warehouse)?;
    let run_id = ws.metadata.begin_run(project.profile.as_deref(), targets)?;
    observer.run_started(run_id);
    let started = Instant::now();

    let wanted: BTreeSet<AssetName> = order.iter().cloned().collect();
    let mut outcomes: BTreeMap<AssetName, AssetOutcome> = BTreeMap::new();
    let mut launched: BTreeSet<AssetName> = BTreeSet::new();
    let mut running = JoinSet::new();
    loop {
        // Launch what is ready; block what has a failed input.
        let mut progress = true;
        while progress {
            progress = false;
            for name in &order {
                if launched.contains(name) || running.len() >= project.concurrency {
                    continue;
                }
                let asset = &project.assets[name];
                let inputs: Vec<&AssetName> = asset
                    .inputs
                    .iter()
                    .filter(|i| wanted.contains(*i))
                    .collect();
                if !inputs.iter().all(|i| outcomes.contains_key(*i)) {
                    continue;
                }
                launched.insert(name.clone());
                progress = true;
                if let Some(bad) = inputs.iter().find(|i| !outcomes[**i].status.is_ok()) {
                    let latest = ws.store.latest(name.as_str()).await.ok().flatten();
                    let version = latest.map(|l| l.version);
                    let outcome = AssetOutcome {
                        error: Some(blocked_reason(bad, &outcomes[*bad])),
                        duration_ms: 0,
                        ..AssetOutcome::new(asset, AssetStatus::Blocked, version, 0, Instant::now())
                    };
                    record(&ws, run_id, &outcome, &BTreeMap::new());
                    observer.finished(&outcome);
                    outcomes.insert(name.clone(), outcome);
                    continue;
                }
                let input_versions: BTreeMap<String, u64> = asset
                    .inputs
                    .iter()
                    .filter_map(|i| {
                        outcomes
                            .get(i)
                            .and_then(|o| o.version)
                            .map(|v| (i.to_string(), v))
                    })
                    .collect();
                observer.started(name, asset.kind());
                let ws = ws.clone();
                let name = name.clone();
                running.spawn(async move {
                    let asset = &ws.project.assets[&name];
                    let started = Instant::now();
                    // A panic inside one asset fails that asset, not the run.
                    let outcome =
                        AssertUnwindSafe(materialize(&ws, asset, run_id, &input_versions))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|panic| {
                                let message = panic
                                    .downcast_ref::<String>()
                                    .cloned()
                                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                    .unwrap_or_default();
                                failed(
                                    asset,
                                    started,
                                    format!("internal error (a bug in sluice): {message}"),
                                    None,
                                )
                            });
                    record(&ws, run_id, &outcome, &input_versions);
                    (name, outcome)
                });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        // Tasks catch their own panics and are never aborted.
        let (name, outcome) = joined.expect("asset tasks neither panic nor get cancelled");
        observer.finished(&outcome);
        outcomes.insert(name, outcome);
    }

    let assets: Vec<AssetOutcome> = order.iter().filter_map(|n| outcomes.remove(n)).collect();
    let ok = assets.iter().all(|a| a.status.is_ok());
    ws.metadata.finish_run(
        run_id,
        if ok {
            RunState::Succeeded
        } else {
            RunState::Failed
        },
    )?;
    Ok(RunSummary {
        run_id,
        ok,
        duration_ms: started.elapsed().as_millis() as u64,
        assets,
    })
}

fn record(ws: &Workspace, run_id: i64, o: &AssetOutcome, inputs: &BTreeMap<String, u64>) {
    let attempt = AttemptRecord {
        run_id,
        asset: o.name.clone(),
        attempt: 1,
        status: o.status.as_str().to_string(),
        started_at: Some(Utc::now() - chrono::Duration::milliseconds(o.duration_ms as i64)),
        duration_ms: o.duration_ms,
        input_versions: serde_json::to_string(inputs).unwrap_or_default(),
        output_version: o.version,
        rows_in: o.rows_in,
        rows_out: o.rows_out,
        rows_quarantined: o.rows_quarantined,
        error: o.error.clone(),
    };
    if let Err(e) = ws.metadata.record_attempt(&attempt) {
        tracing::warn!(
            "could not record the attempt of `{}` in the run log: {e}",
            o.name
        );
    }
}

/// Why an asset is blocked: its failed or blocked input, and that input's reason.
fn blocked_reason(input: &AssetName, outcome: &AssetOutcome) -> String {
    let why = outcome
        .error
        .as_deref()
        .and_then(|e| e.lines().next())
        .unwrap_or_default();
    if why.is_empty() {
        format!("upstream `{input}` {}", outcome.status)
    } else {
        format!("upstream `{input}` {}: {why}", outcome.status)
    }
}

pub(crate) fn failed(
    asset: &Asset,
    started: Instant,
    error: String,
    previous: Option<u64>,
) -> AssetOutcome {
    AssetOutcome {
        error: Some(error),
        ..AssetOutcome::new(asset, AssetStatus::Failed, previous, 0, started)
    }
}

/// The fingerprint a source would have now: definition plus file contents.
pub(crate) async fn source_fingerprint(asset: &Asset) -> std::result::Result<String, String> {
    let Definition::Source(def) = &asset.definition else {
        return Err(format!("`{}` is not a source", asset.name));
    };
    let def = def.clone();
    let asset_fp = asset.fingerprint.clone();
    tokio::task::spawn_blocking(move || {
        let files = def.files()?;
        if files.is_empty() {
            return Err(sluice_source::Error::NoFiles {
                pattern: def.pattern.display().to_string(),
            }
            .to_string());
        }
        let content = content_hash(&files).map_err(|e| e.to_string())?;
        Ok(fingerprint(&[&asset_fp, &content]))
    })
    .await
    .map_err(|e| format!("internal error: {e}"))?
}

/// Opens a source's files for reading (schema inference included).
async fn open_source(asset: &Asset) -> std::result::Result<FileSource, String> {
    let Definition::Source(def) = &asset.definition else {
        return Err(format!("`{}` is not a source", asset.name));
    };
    let def = def.clone();
    tokio::task::spawn_blocking(move || FileSource::open(&def).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("internal error: {e}"))?
}

/// Registers each input in `ctx` as a table at the version the run pinned.
pub(crate) async fn register_inputs(
    ws: &Workspace,
    ctx: &datafusion::prelude::SessionContext,
    inputs: &BTreeMap<String, u64>,
) -> std::result::Result<(), String> {
    for (input, version) in inputs {
        let provider = ws
            .store
            .provider(input, AsOf::Version(*version), &ctx.state())
            .await
            .map_err(|e| e.to_string())?;
        ctx.register_table(input.as_str(), provider)
            .map_err(|e| e.strip_backtrace())?;
    }
    Ok(())
}

/// The fingerprint a table has given its inputs' versions.
pub(crate) fn table_fingerprint(asset: &Asset, inputs: &BTreeMap<String, u64>) -> String {
    let mut parts = vec![asset.fingerprint.clone()];
    for (name, version) in inputs {
        parts.push(format!("{name}@{version}"));
    }
    fingerprint(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

fn up_to_date(
    asset: &Asset,
    latest: &Option<VersionInfo>,
    fp: &str,
    started: Instant,
) -> Option<AssetOutcome> {
    let latest = latest.as_ref()?;
    if latest.meta.as_ref()?.fingerprint != fp {
        return None;
    }
    let rows = latest.rows.unwrap_or(0);
    Some(AssetOutcome::new(
        asset,
        AssetStatus::UpToDate,
        Some(latest.version),
        rows,
        started,
    ))
}

/// An up-to-date asset still accounts for the rows its version's run quarantined.
async fn with_quarantined(
    ws: &Workspace,
    asset: &Asset,
    mut done: AssetOutcome,
    latest: &Option<VersionInfo>,
) -> AssetOutcome {
    if !asset.contract.quarantines() {
        return done;
    }
    let run = latest
        .as_ref()
        .and_then(|l| l.meta.as_ref())
        .map(|m| m.run_id);
    if let Ok(Some(q)) = ws.store.latest(&asset.name.quarantine()).await
        && q.meta.as_ref().map(|m| m.run_id) == run
    {
        let rows = q.rows.unwrap_or(0);
        done.rows_quarantined = rows;
        done.rows_in += rows;
    }
    done
}

async fn materialize(
    ws: &Workspace,
    asset: &Asset,
    run_id: i64,
    inputs: &BTreeMap<String, u64>,
) -> AssetOutcome {
    if let Definition::Export(def) = &asset.definition {
        return crate::export::materialize(ws, asset, def, run_id, inputs).await;
    }
    if let Definition::Model(def) = &asset.definition {
        return crate::models::materialize(ws, asset, def, run_id, inputs).await;
    }
    let started = Instant::now();
    let name = asset.name.as_str();
    let latest = match ws.store.latest(name).await {
        Ok(l) => l,
        Err(e) => return failed(asset, started, e.to_string(), None),
    };
    let previous = latest.as_ref().map(|l| l.version);
    let ctx = sluice_transform::session();
    let mut online_key = None;
    let (fp, plan) = match &asset.definition {
        Definition::Source(_) => {
            let fp = match source_fingerprint(asset).await {
                Ok(fp) => fp,
                Err(e) => return failed(asset, started, e, previous),
            };
            if let Some(done) = up_to_date(asset, &latest, &fp, started) {
                return with_quarantined(ws, asset, done, &latest).await;
            }
            let source = match open_source(asset).await {
                Ok(s) => s,
                Err(e) => return failed(asset, started, e, previous),
            };
            // Files are parsed one thread each; when there are fewer files than
            // cores, spread the batches so that Parquet encoding uses every core.
            let cores = ctx.state().config().target_partitions();
            let files = source.files().len();
            let plan = source.table_provider().and_then(|p| {
                let scan = LogicalPlanBuilder::scan(name, provider_as_source(p), None)?;
                if files < cores {
                    scan.repartition(Partitioning::RoundRobinBatch(cores))?
                        .build()
                } else {
                    scan.build()
                }
            });
            (fp, plan.map_err(|e| e.strip_backtrace()))
        }
        Definition::Export(_) | Definition::Model(_) => {
            unreachable!("exports and models are written above")
        }
        Definition::Table(_) | Definition::Features(_) | Definition::Predictions(_) => {
            let fp = table_fingerprint(asset, inputs);
            if let Some(done) = up_to_date(asset, &latest, &fp, started) {
                // The online store may lag its offline version after a crash.
                match &asset.definition {
                    Definition::Features(def) => {
                        return crate::online::publish(ws, asset, &feature_key(def), done, run_id)
                            .await;
                    }
                    Definition::Predictions(def) => {
                        let at = AsOf::Version(done.version.unwrap_or(0));
                        let key = match ws.store.provider(name, at, &ctx.state()).await {
                            Ok(p) => crate::predictions::stored_key(def, &p.schema()),
                            Err(_) => None,
                        };
                        return match key {
                            Some(key) => {
                                crate::online::publish(ws, asset, &key, done, run_id).await
                            }
                            None => done,
                        };
                    }
                    _ => {}
                }
                return with_quarantined(ws, asset, done, &latest).await;
            }
            // Predictions read their inputs themselves (a model is not a table).
            if !matches!(asset.definition, Definition::Predictions(_))
                && let Err(e) = register_inputs(ws, &ctx, inputs).await
            {
                return failed(asset, started, e, previous);
            }
            let plan = match &asset.definition {
                Definition::Features(def) => {
                    sluice_transform::plan_features(&ctx, asset, def, Utc::now().timestamp_micros())
                        .await
                        .map_err(|d| d.to_string())
                }
                Definition::Table(def) => sluice_transform::plan_table(&ctx, asset, def)
                    .await
                    .map_err(|d| d.to_string()),
                Definition::Predictions(def) => {
                    match crate::predictions::plan(ws, &ctx, def, inputs).await {
                        Ok((plan, key)) => {
                            online_key = Some(key);
                            Ok(plan)
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
                Definition::Source(_) | Definition::Export(_) | Definition::Model(_) => {
                    unreachable!("sources are planned above, exports and models elsewhere")
                }
            };
            (fp, plan)
        }
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return failed(asset, started, e, previous),
    };
    let meta = CommitMeta {
        fingerprint: fp,
        run_id,
        inputs: inputs.clone(),
    };
    if !asset.contract.is_empty() {
        return validated(ws, asset, &ctx, plan, &meta, latest.as_ref(), started).await;
    }
    match ws.store.write(name, plan, &ctx.state(), &meta).await {
        Ok(info) => {
            let rows = info.rows.unwrap_or(0);
            let built =
                AssetOutcome::new(asset, AssetStatus::Built, Some(info.version), rows, started);
            match (&asset.definition, online_key) {
                (Definition::Features(def), _) => {
                    crate::online::publish(ws, asset, &feature_key(def), built, run_id).await
                }
                (Definition::Predictions(_), Some(key)) => {
                    crate::online::publish(ws, asset, &key, built, run_id).await
                }
                _ => built,
            }
        }
        Err(e) => failed(asset, started, root_cause(&e), previous),
    }
}

fn feature_key(def: &sluice_project::FeatureDef) -> crate::online::OnlineKey {
    crate::online::OnlineKey {
        entity: def.entity.clone(),
        timestamp: def.timestamp.clone(),
        created: def.created.clone(),
    }
}

/// Materializes an asset through its contract; the row counts come from the report.
async fn validated(
    ws: &Workspace,
    asset: &Asset,
    ctx: &datafusion::prelude::SessionContext,
    plan: datafusion::logical_expr::LogicalPlan,
    meta: &CommitMeta,
    latest: Option<&VersionInfo>,
    started: Instant,
) -> AssetOutcome {
    let previous = latest.map(|l| l.version);
    let out = crate::gate::write_validated(ws, asset, ctx, plan, meta, latest).await;
    let (rows_in, rows_out, rows_quarantined, warnings) =
        out.report.as_ref().map_or((0, 0, 0, 0), |r| {
            (
                r.rows_in,
                r.rows_out,
                r.rows_quarantined,
                r.warnings().len() as u64,
            )
        });
    match out.written {
        Ok(info) => AssetOutcome {
            rows_in,
            rows_out,
            rows_quarantined,
            warnings,
            ..AssetOutcome::new(asset, AssetStatus::Built, Some(info.version), 0, started)
        },
        Err(e) => AssetOutcome {
            rows_in,
            rows_out,
            rows_quarantined,
            warnings,
            ..failed(asset, started, e, previous)
        },
    }
}

/// The most useful message in an error chain: a source error (which names file,
/// line and column) when there is one, else the whole chain.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut chain = Vec::new();
    while let Some(e) = current {
        if let Some(source_error) = e.downcast_ref::<sluice_source::Error>() {
            return source_error.to_string();
        }
        if let Some(df) = e.downcast_ref::<DataFusionError>()
            && let Some(inner) = find_source_error(df)
        {
            return inner;
        }
        chain.push(e.to_string());
        current = e.source();
    }
    let message = chain.into_iter().next().unwrap_or_default();
    // Delta flattens DataFusion errors into text; a source error inside it still
    // starts after the last "External error: ".
    const MARK: &str = "External error: ";
    match message.rfind(MARK) {
        Some(at) => message[at + MARK.len()..].to_string(),
        None => message,
    }
}

fn find_source_error(e: &DataFusionError) -> Option<String> {
    match e {
        DataFusionError::External(inner) => from_boxed(inner.as_ref()),
        DataFusionError::Context(_, inner) => find_source_error(inner),
        DataFusionError::Shared(inner) => find_source_error(inner),
        DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
            ArrowError::ExternalError(x) => from_boxed(x.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

fn from_boxed(x: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<String> {
    x.downcast_ref::<sluice_source::Error>()
        .map(ToString::to_string)
        .or_else(|| {
            x.downcast_ref::<DataFusionError>()
                .and_then(find_source_error)
        })
}
