//! `sluice runs`: the recent runs, one run with its attempts and log lines,
//! asking a run to stop.

use sluice_runner::Workspace;
use sluice_store::{AttemptRecord, LogRecord, RunRecord};

use crate::output::{opt, seconds, table};

/// `sluice runs`.
pub(crate) fn print_runs(ws: &Workspace, runs: &[RunRecord], json: bool) -> anyhow::Result<()> {
    if json {
        let mut out = Vec::new();
        for r in runs {
            out.push(run_json(r, &ws.metadata.attempts(r.id)?, None));
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let mut t = table(&["run", "started", "duration", "state", "profile", "assets"]);
    for r in runs {
        t.add_row(vec![
            r.id.to_string(),
            r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            opt(r
                .finished_at
                .map(|f| seconds((f - r.started_at).num_milliseconds().max(0) as u64))),
            r.state.as_str().to_string(),
            opt(r.profile.clone()),
            r.counts.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// A run as JSON, with its attempts and, when given, its log lines.
fn run_json(
    r: &RunRecord,
    attempts: &[AttemptRecord],
    lines: Option<&[LogRecord]>,
) -> serde_json::Value {
    let attempts: Vec<_> = attempts
        .iter()
        .map(|a| {
            serde_json::json!({
                "asset": a.asset, "attempt": a.attempt, "status": a.status,
                "duration_ms": a.duration_ms,
                "input_versions": serde_json::from_str::<serde_json::Value>(&a.input_versions).unwrap_or_default(),
                "output_version": a.output_version, "rows_in": a.rows_in, "rows_out": a.rows_out,
                "rows_quarantined": a.rows_quarantined, "error": a.error,
            })
        })
        .collect();
    let mut run = serde_json::json!({
        "id": r.id, "state": r.state.as_str(), "started_at": sluice_core::render::instant(r.started_at),
        "finished_at": r.finished_at.map(sluice_core::render::instant), "profile": r.profile,
        "targets": r.targets, "assets": attempts,
    });
    if let Some(lines) = lines {
        run["logs"] = lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "seq": l.seq,
                    "at": sluice_core::render::instant(l.line.at),
                    "asset": l.asset, "attempt": l.attempt, "level": l.line.level,
                    "target": l.line.target, "message": l.line.message,
                })
            })
            .collect();
    }
    run
}

/// `sluice runs show ID [--asset A]`: the run, its attempts, then its log
/// lines (the asset's only, with `--asset`).
pub(crate) fn show(
    ws: &Workspace,
    id: &str,
    asset: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let logs = sluice_runner::run_logs(ws, id, asset, None, None)?;
    let run = &logs.run;
    let attempts: Vec<AttemptRecord> = ws
        .metadata
        .attempts(run.id)?
        .into_iter()
        .filter(|a| asset.is_none_or(|x| a.asset == x))
        .collect();
    if json {
        let out = run_json(run, &attempts, Some(&logs.lines));
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let took = run
        .finished_at
        .map(|f| {
            format!(
                " in {}",
                seconds((f - run.started_at).num_milliseconds().max(0) as u64)
            )
        })
        .unwrap_or_default();
    println!(
        "run {}: {}{took}, started {}{}",
        run.id,
        run.state.as_str(),
        run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        run.profile
            .as_deref()
            .map(|p| format!(", profile {p}"))
            .unwrap_or_default()
    );
    let mut t = table(&[
        "asset",
        "attempt",
        "status",
        "duration",
        "rows in",
        "out",
        "quarantined",
        "error",
    ]);
    for a in &attempts {
        t.add_row(vec![
            a.asset.clone(),
            a.attempt.to_string(),
            a.status.clone(),
            seconds(a.duration_ms),
            a.rows_in.to_string(),
            a.rows_out.to_string(),
            a.rows_quarantined.to_string(),
            opt(a.error.as_deref().and_then(|e| e.lines().next())),
        ]);
    }
    println!("{t}");
    if logs.lines.is_empty() {
        println!("no log lines were kept for this run");
        return Ok(());
    }
    // Lines are numbered as each attempt ends; read as a log, in time order,
    // the lines of assets built at once interleave.
    let mut lines: Vec<&LogRecord> = logs.lines.iter().collect();
    lines.sort_by_key(|l| l.line.at);
    for l in lines {
        let who = match (&l.asset, l.attempt) {
            (Some(a), Some(n)) if n > 0 => format!("{a}#{n}"),
            (Some(a), _) => a.clone(),
            (None, _) => "run".to_string(),
        };
        let at = l.line.at.format("%H:%M:%S%.3f");
        let mut message = l.line.message.lines();
        println!(
            "{at} {:<5} {who}: {}",
            l.line.level,
            message.next().unwrap_or_default()
        );
        // A message's further lines, indented under it.
        for rest in message {
            println!("    {rest}");
        }
    }
    Ok(())
}
