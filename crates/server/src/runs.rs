//! Runs: start one in the background, list them, show one with its assets and
//! its log lines, ask one to stop.

// utoipa's expansion of `params(SomeIntoParams)` names types by full path.
#![allow(unused_qualifications)]

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::{AttemptRecord, LogRecord, RunRecord};
use tokio::sync::oneshot;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiQuery, ErrorBody, Json};

/// Which assets to refresh.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Assets to refresh with everything upstream that is stale; empty or absent: all.
    #[serde(default)]
    pub assets: Vec<String>,
}

/// A run that started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// Its number; follow it at `/v1/runs/{id}`.
    pub run_id: i64,
    /// `running`, or `queued` behind the run in progress.
    pub state: String,
}

/// A run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunBody {
    /// Its number.
    pub id: i64,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled` or `abandoned`.
    pub state: String,
    /// The profile in force.
    pub profile: Option<String>,
    /// The assets asked for (empty: all).
    pub targets: Vec<String>,
    /// Assets by outcome, as `built=3 up_to_date=2`.
    pub counts: String,
}

impl From<RunRecord> for RunBody {
    fn from(r: RunRecord) -> Self {
        Self {
            id: r.id,
            started_at: sluice_core::render::instant(r.started_at),
            finished_at: r.finished_at.map(sluice_core::render::instant),
            state: r.state.as_str().to_string(),
            profile: r.profile,
            targets: r.targets,
            counts: r.counts,
        }
    }
}

/// Recent runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    /// The runs.
    pub runs: Vec<RunBody>,
}

/// One attempt at one asset.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptBody {
    /// The asset.
    pub asset: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// `built`, `up_to_date`, `failed` or `blocked`.
    pub status: String,
    /// When it started.
    pub started_at: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
    /// Input versions read.
    #[schema(value_type = Object)]
    pub input_versions: Value,
    /// The version written or found up to date.
    pub output_version: Option<u64>,
    /// Rows that came in.
    pub rows_in: u64,
    /// Rows published.
    pub rows_out: u64,
    /// Rows set aside by contracts.
    pub rows_quarantined: u64,
    /// Why it failed or was blocked.
    pub error: Option<String>,
    /// For a failed attempt that was retried: the wait before the next one.
    pub retry_in_ms: Option<u64>,
    /// When its outcome was known, to the microsecond.
    pub ended_at: Option<String>,
}

impl From<AttemptRecord> for AttemptBody {
    fn from(a: AttemptRecord) -> Self {
        Self {
            input_versions: serde_json::from_str(&a.input_versions).unwrap_or(Value::Null),
            asset: a.asset,
            attempt: a.attempt,
            status: a.status,
            started_at: a.started_at.map(sluice_core::render::instant),
            duration_ms: a.duration_ms,
            output_version: a.output_version,
            rows_in: a.rows_in,
            rows_out: a.rows_out,
            rows_quarantined: a.rows_quarantined,
            error: a.error,
            retry_in_ms: a.retry_in_ms,
            ended_at: a.ended_at.map(sluice_core::render::instant),
        }
    }
}

/// A run and its assets.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunBody,
    /// Its attempts, in the order they were recorded.
    pub assets: Vec<AttemptBody>,
}

/// Tells the request which number its run got.
struct Started(Mutex<Option<oneshot::Sender<i64>>>);

impl sluice_runner::Observer for Started {
    fn run_started(&self, run_id: i64) {
        if let Some(tx) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(run_id);
        }
    }
}

/// Starts a run in the background (operator). A run asked for while another
/// runs in this server is queued (`state: "queued"`), and one identical to a run
/// already queued joins it (the same `run_id`); a run held by another process
/// is refused with 409.
#[utoipa::path(post, path = "/v1/runs", tag = "runs",
    request_body = RunRequest,
    responses((status = 202, description = "The run started", body = RunStarted),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "The key's role is too low", body = ErrorBody),
              (status = 404, description = "Unknown assets", body = ErrorBody),
              (status = 409, description = "Another process is running the warehouse", body = ErrorBody)))]
pub(crate) async fn start(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<RunRequest>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    let started = spawn_run(&state, req.assets).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// Starts a run of `assets` (empty: all) in the background, as `POST
/// /v1/runs` and the dashboard's buttons do; its number once it has one.
pub(crate) async fn spawn_run(
    state: &Arc<AppState>,
    assets: Vec<String>,
) -> Result<RunStarted, ApiError> {
    spawn(state, move |ws, observer| async move {
        sluice_runner::run(ws, &assets, observer).await
    })
    .await
}

/// Starts a backfill of `asset`'s partitions from the one holding `from` to
/// the one holding `to`, as `sluice backfill` does, in the background.
pub(crate) async fn spawn_backfill(
    state: &Arc<AppState>,
    asset: String,
    (from, to): (String, String),
) -> Result<RunStarted, ApiError> {
    spawn(state, move |ws, observer| async move {
        sluice_runner::backfill(ws, &asset, (&from, &to), 1, observer).await
    })
    .await
}

/// Runs `work` in the background; the run's number once it has one, or why it
/// could not start.
async fn spawn<F, Fut>(state: &Arc<AppState>, work: F) -> Result<RunStarted, ApiError>
where
    F: FnOnce(Arc<sluice_runner::Workspace>, Arc<dyn sluice_runner::Observer>) -> Fut,
    Fut: Future<Output = sluice_runner::Result<sluice_runner::RunSummary>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let observer = Arc::new(Started(Mutex::new(Some(tx))));
    let future = work(state.ws.clone(), observer);
    let task = tokio::spawn(async move {
        let result = future.await;
        match &result {
            Ok(s) => tracing::info!(run = s.run_id, ok = s.ok, "run finished"),
            Err(e) => tracing::warn!("run did not start: {e}"),
        }
        result
    });
    match rx.await {
        Ok(run_id) => {
            let state = state
                .ws
                .metadata
                .run(run_id)?
                .map_or("running", |r| r.state.as_str());
            Ok(RunStarted {
                run_id,
                state: state.into(),
            })
        }
        // The run ended before it had a number: it could not start.
        Err(_) => match task.await {
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(_)) => Err(ApiError::internal(
                "starting the run",
                "it gave no run number",
            )),
            Err(e) => Err(ApiError::internal("starting the run", e)),
        },
    }
}

/// How many runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsParams {
    /// How many (default 20, at most 1000).
    pub limit: Option<usize>,
}

/// Recent runs, newest first (operator).
#[utoipa::path(get, path = "/v1/runs", tag = "runs", params(RunsParams),
    responses((status = 200, description = "The runs", body = RunList),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "The key's role is too low", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    ApiQuery(params): ApiQuery<RunsParams>,
) -> Result<Json<RunList>, ApiError> {
    let limit = params.limit.unwrap_or(20).min(1000);
    let runs = state.ws.metadata.runs(limit)?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(RunBody::from).collect(),
    }))
}

/// One run with its assets (operator).
#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs",
    params(("id" = i64, Path, description = "The run's number")),
    responses((status = 200, description = "The run", body = RunDetail),
              (status = 400, description = "Not a run number", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "The key's role is too low", body = ErrorBody),
              (status = 404, description = "No such run", body = ErrorBody)))]
pub(crate) async fn detail(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let (run, attempts) = sluice_runner::run_detail(&state.ws, &id)?;
    Ok(Json(RunDetail {
        run: run.into(),
        assets: attempts.into_iter().map(AttemptBody::from).collect(),
    }))
}

/// Asks a queued or running run to stop (operator): its assets in progress are
/// stopped without publishing, those not started are not attempted, and the
/// run ends `cancelled`. Works on a run of any process sharing the warehouse.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = i64, Path, description = "The run's number")),
    responses((status = 202, description = "The run was asked to stop; follow it at /v1/runs/{id}", body = RunBody),
              (status = 400, description = "Not a run number", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "The key's role is too low", body = ErrorBody),
              (status = 404, description = "No such run", body = ErrorBody),
              (status = 409, description = "The run already ended", body = ErrorBody)))]
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RunBody>), ApiError> {
    let run = sluice_runner::cancel_run(&state.ws, &id)?;
    tracing::info!(run = run.id, "asked to cancel the run");
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// Which log lines of a run.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// Only this asset's lines.
    pub asset: Option<String>,
    /// Only lines numbered above this: pass the last `seq` you have to follow a run.
    pub after: Option<i64>,
    /// How many (default 1000, at most 10000).
    pub limit: Option<usize>,
}

/// A log line of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineBody {
    /// Its number within the run, from 1.
    pub seq: i64,
    /// When it was written (RFC 3339, to the microsecond).
    pub at: String,
    /// The asset whose work wrote it; null for the run's own lines.
    pub asset: Option<String>,
    /// The attempt at the asset (0: it was not attempted).
    pub attempt: Option<u32>,
    /// `ERROR`, `WARN` or `INFO`.
    pub level: String,
    /// What wrote it: a module of sluice, or `sluice::step` for a step's
    /// stdout and stderr.
    pub target: String,
    /// The message, then its fields as `key=value`.
    pub message: String,
}

impl From<LogRecord> for LogLineBody {
    fn from(r: LogRecord) -> Self {
        Self {
            seq: r.seq,
            at: sluice_core::render::instant(r.line.at),
            asset: r.asset,
            attempt: r.attempt,
            level: r.line.level,
            target: r.line.target,
            message: r.line.message,
        }
    }
}

/// A run's log lines.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunLogsBody {
    /// The run.
    pub run: RunBody,
    /// The lines, in the order they were written.
    pub lines: Vec<LogLineBody>,
    /// The `after` that asks for the lines past these (the last `seq`, or the
    /// `after` given when there are none).
    pub next_after: i64,
}

/// The most lines one request returns.
const MAX_LOG_LINES: usize = 10_000;

/// A run's log lines (operator): what each asset's attempts logged (at INFO
/// and above), a step's stdout and stderr, and the run's own lines; kept when
/// each attempt ends.
#[utoipa::path(get, path = "/v1/runs/{id}/logs", tag = "runs",
    params(("id" = i64, Path, description = "The run's number"), LogsParams),
    responses((status = 200, description = "The lines", body = RunLogsBody),
              (status = 400, description = "Not a run number, or a limit too high", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "The key's role is too low", body = ErrorBody),
              (status = 404, description = "No such run, or no such asset in it", body = ErrorBody)))]
pub(crate) async fn logs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<LogsParams>,
) -> Result<Json<RunLogsBody>, ApiError> {
    let limit = params.limit.unwrap_or(1000);
    if limit > MAX_LOG_LINES {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is too high: at most {MAX_LOG_LINES} lines are returned at once; follow with `after`"
        )));
    }
    let logs = sluice_runner::run_logs(
        &state.ws,
        &id,
        params.asset.as_deref(),
        params.after,
        Some(limit),
    )?;
    let next_after = logs
        .lines
        .last()
        .map_or(params.after.unwrap_or(0), |l| l.seq);
    Ok(Json(RunLogsBody {
        run: logs.run.into(),
        lines: logs.lines.into_iter().map(LogLineBody::from).collect(),
        next_after,
    }))
}
