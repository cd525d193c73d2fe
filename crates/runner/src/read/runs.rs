//! Runs: one run with its attempts, its log lines, and asking a run to stop.

use sluice_store::{AttemptRecord, LogQuery, LogRecord, RunRecord, RunState};

use super::ReadError;
use crate::Workspace;

/// The number in a run id as given (text, so that a bad one is a
/// [`ReadError::NotARunId`]).
fn run_number(id: &str) -> Result<i64, ReadError> {
    id.parse().map_err(|_| ReadError::NotARunId {
        given: id.to_string(),
    })
}

/// A run and its attempts, by the id as given (text, so that a bad one is a
/// [`ReadError::NotARunId`]).
pub fn run_detail(ws: &Workspace, id: &str) -> Result<(RunRecord, Vec<AttemptRecord>), ReadError> {
    let id = run_number(id)?;
    let run = ws.metadata.run(id)?.ok_or(ReadError::NoSuchRun { id })?;
    Ok((run, ws.metadata.attempts(id)?))
}

/// Asks run `id` to stop, from any process: the process running it stops its
/// assets within a moment (what they were writing is not published, assets
/// not started are not attempted) and ends the run `cancelled`; a queued run
/// ends before it starts. Returns the run as it stands now.
pub fn cancel_run(ws: &Workspace, id: &str) -> Result<RunRecord, ReadError> {
    let id = run_number(id)?;
    match ws.metadata.request_cancel(id)? {
        None => Err(ReadError::NoSuchRun { id }),
        Some(RunState::Running | RunState::Queued) => {
            ws.metadata.run(id)?.ok_or(ReadError::NoSuchRun { id })
        }
        Some(ended) => Err(ReadError::RunEnded {
            id,
            state: ended.as_str(),
        }),
    }
}

/// A run's log lines, and the run.
#[derive(Debug, Clone)]
pub struct RunLogs {
    /// The run.
    pub run: RunRecord,
    /// Its lines asked for, in the order they were written.
    pub lines: Vec<LogRecord>,
}

/// The log lines of run `id` (all of them, or `asset`'s; after line `after`;
/// at most `limit`). An asset the run has no attempt at is
/// [`ReadError::NotInRun`], naming those it has.
pub fn run_logs(
    ws: &Workspace,
    id: &str,
    asset: Option<&str>,
    after: Option<i64>,
    limit: Option<usize>,
) -> Result<RunLogs, ReadError> {
    let id = run_number(id)?;
    let run = ws.metadata.run(id)?.ok_or(ReadError::NoSuchRun { id })?;
    if let Some(asset) = asset {
        let mut assets: Vec<String> = ws
            .metadata
            .attempts(id)?
            .into_iter()
            .map(|a| a.asset)
            .collect();
        if !assets.iter().any(|a| a == asset) {
            assets.sort();
            assets.dedup();
            return Err(ReadError::NotInRun {
                id,
                asset: asset.to_string(),
                assets,
            });
        }
    }
    let lines = ws.metadata.logs(
        id,
        &LogQuery {
            asset,
            after,
            limit,
        },
    )?;
    Ok(RunLogs { run, lines })
}
