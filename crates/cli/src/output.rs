//! What the binary prints: progress while running, summary tables, query results.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use datafusion::arrow::array::RecordBatch;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sluice_core::{AssetKind, AssetName, AssetStatus};
use sluice_runner::{AssetOutcome, AssetState, Observer, PartitionState, RunSummary};
use sluice_store::{CheckHistory, ExportRecord, RunQuality, VersionInfo};
use sluice_validate::ValidationReport;

use crate::Format;

/// Units of work (chunks embedded) from which a step is long enough to print
/// its progress without a terminal.
const LONG_STEP: u64 = 500;

/// Progress of a run: spinners on a terminal, one line per event otherwise.
pub struct Progress {
    bars: Option<(MultiProgress, Mutex<BTreeMap<String, ProgressBar>>)>,
    /// Without a terminal: the tenth of each asset's long step last printed.
    printed: Mutex<BTreeMap<String, u64>>,
}

/// The observer for `sluice run`.
pub fn observer(terminal: bool) -> Arc<Progress> {
    Arc::new(Progress {
        bars: terminal.then(|| (MultiProgress::new(), Mutex::new(BTreeMap::new()))),
        printed: Mutex::default(),
    })
}

impl Progress {
    /// Removes what is left of the progress display.
    pub fn clear(&self) {
        if let Some((multi, _)) = &self.bars {
            let _ = multi.clear();
        }
    }
}

fn describe(o: &AssetOutcome) -> String {
    match o.status {
        AssetStatus::Built => {
            let mut parts = vec![format!("{} rows", o.rows_out)];
            if o.rows_quarantined > 0 {
                parts.push(format!("{} quarantined", o.rows_quarantined));
            }
            if o.warnings > 0 {
                parts.push(plural(o.warnings, "warning"));
            }
            match o.model {
                // A model's `version` is the one that serves; say which was trained.
                Some(m) => {
                    if m.label_pending > 0 {
                        parts.push(format!(
                            "{} held out: label not yet known",
                            plural(m.label_pending, "row")
                        ));
                    }
                    parts.push(seconds(o.duration_ms));
                    let serving = match (m.promoted, o.version) {
                        (true, _) => String::new(),
                        (false, Some(v)) => format!(", not promoted: v{v} serves"),
                        (false, None) => ", not promoted".to_string(),
                    };
                    format!("built v{} ({}){serving}", m.built, parts.join(", "))
                }
                None => {
                    if let Some(p) = &o.partitions {
                        parts.insert(0, format!("{} of {} partitions", p.built, p.selected));
                    }
                    if let Some(c) = &o.collection {
                        parts.push(format!(
                            "{}: {} added, {} changed, {} deleted; {} chunked, {} embedded",
                            plural(c.documents, "document"),
                            c.added,
                            c.changed,
                            c.deleted,
                            c.chunked,
                            c.embedded
                        ));
                    }
                    parts.push(seconds(o.duration_ms));
                    format!("built v{} ({})", o.version.unwrap_or(0), parts.join(", "))
                }
            }
        }
        AssetStatus::UpToDate => format!("up to date (v{})", o.version.unwrap_or(0)),
        AssetStatus::Failed => format!("FAILED: {}", o.error.as_deref().unwrap_or("")),
        AssetStatus::Blocked => format!("blocked: {}", o.error.as_deref().unwrap_or("")),
    }
}

impl Observer for Progress {
    fn partition_done(&self, asset: &str, partition: &str, ok: bool, done: usize, total: usize) {
        let word = if ok { "built" } else { "FAILED" };
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.lock().unwrap_or_else(|p| p.into_inner()).get(asset) {
                    bar.set_message(format!("partition {partition} {word} ({done}/{total})"));
                }
            }
            None => eprintln!("[sluice] {asset}: partition {partition} {word} ({done}/{total})"),
        }
    }

    fn progress(&self, asset: &str, what: &str, done: u64, total: u64) {
        let Some((_, bars)) = &self.bars else {
            // Without a terminal: a line at each tenth of a long step.
            let tenth = done * 10 / total.max(1);
            let mut printed = self.printed.lock().unwrap_or_else(|p| p.into_inner());
            let last = printed.insert(asset.to_string(), tenth);
            if total >= LONG_STEP && last != Some(tenth) {
                eprintln!("[sluice] {asset}: {done} of {total} {what}");
            }
            return;
        };
        if let Some(bar) = bars.lock().unwrap_or_else(|p| p.into_inner()).get(asset) {
            if bar.length() != Some(total) {
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:<24} {msg} [{bar:30}] {pos}/{len} {elapsed} (eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_length(total);
                bar.set_message(what.to_string());
            }
            bar.set_position(done);
        }
    }

    fn started(&self, asset: &AssetName, kind: AssetKind) {
        match &self.bars {
            Some((multi, bars)) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<24} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(asset.to_string());
                bar.set_message(format!("{kind}: working"));
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(asset.to_string(), bar);
            }
            None => eprintln!("[sluice] {asset}: started ({kind})"),
        }
    }

    fn finished(&self, outcome: &AssetOutcome) {
        match &self.bars {
            Some((multi, bars)) => {
                let bar = bars
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&outcome.name);
                let line = format!("{:<24} {}", outcome.name, describe(outcome));
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                let _ = multi.println(line);
            }
            None => eprintln!("[sluice] {}: {}", outcome.name, describe(outcome)),
        }
    }
}

pub(crate) fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

pub(crate) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The table printed at the end of `sluice run`.
pub fn print_summary(summary: &RunSummary) {
    let mut t = table(&[
        "asset",
        "kind",
        "status",
        "version",
        "rows in",
        "rows out",
        "quarantined",
        "time",
        "error",
    ]);
    for a in &summary.assets {
        let error: String = match (&a.error, a.warnings) {
            (Some(e), _) => e.chars().take(300).collect(),
            (None, 0) => String::new(),
            (None, w) => format!("{}: see `sluice report {}`", plural(w, "warning"), a.name),
        };
        t.add_row(vec![
            a.name.clone(),
            a.kind.to_string(),
            a.status.to_string(),
            opt(a.version),
            a.rows_in.to_string(),
            a.rows_out.to_string(),
            a.rows_quarantined.to_string(),
            seconds(a.duration_ms),
            error,
        ]);
    }
    println!("{t}");
    let count = |s: AssetStatus| summary.assets.iter().filter(|a| a.status == s).count();
    println!(
        "run {}: {} built, {} up to date, {} failed, {} blocked in {}",
        summary.run_id,
        count(AssetStatus::Built),
        count(AssetStatus::UpToDate),
        count(AssetStatus::Failed),
        count(AssetStatus::Blocked),
        seconds(summary.duration_ms)
    );
    for a in summary
        .assets
        .iter()
        .filter(|a| a.status == AssetStatus::Failed)
    {
        eprintln!(
            "error: `{}` failed: {}",
            a.name,
            a.error.as_deref().unwrap_or("")
        );
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `sluice report ASSET` without `--output`: the checks as a table.
pub fn print_report(r: &ValidationReport) {
    println!(
        "{} — run {} — {}: {} rows in, {} published, {} quarantined",
        r.asset,
        r.run_id,
        r.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        r.rows_in,
        r.rows_out,
        r.rows_quarantined
    );
    let mut t = table(&[
        "check",
        "severity",
        "verdict",
        "observed",
        "threshold",
        "score",
    ]);
    for c in &r.checks {
        t.add_row(vec![
            c.name.clone(),
            c.severity.to_string(),
            c.verdict.as_str().to_string(),
            c.detail.clone(),
            c.threshold.clone(),
            sluice_validate::format_score(c.score),
        ]);
    }
    println!("{t}");
    match r.gate_message() {
        Some(m) => println!("gate: closed — {m}"),
        None => println!(
            "gate: open ({:.0}% of checks passed)",
            r.pass_rate() * 100.0
        ),
    }
}

/// `sluice quality ASSET`: pass rates per check and per run over a period.
pub fn print_quality(
    asset: &str,
    days: u32,
    runs: &[RunQuality],
    checks: &[CheckHistory],
    json: bool,
) -> anyhow::Result<()> {
    let judged: u64 = runs.iter().map(|r| r.judged).sum();
    let passed: u64 = runs.iter().map(|r| r.passed).sum();
    let rate = |p: u64, j: u64| {
        if j == 0 {
            None
        } else {
            Some(p as f64 / j as f64)
        }
    };
    if json {
        let value = serde_json::json!({
            "asset": asset,
            "days": days,
            "runs": runs.len(),
            "pass_rate": rate(passed, judged),
            "checks": checks.iter().map(|c| serde_json::json!({
                "name": c.name, "severity": c.severity, "judged": c.judged, "passed": c.passed,
                "pass_rate": rate(c.passed, c.judged), "mean_score": c.mean_score, "last_verdict": c.last_verdict,
            })).collect::<Vec<_>>(),
            "by_run": runs.iter().map(|r| serde_json::json!({
                "run_id": r.run_id, "at": sluice_core::render::instant(r.at), "judged": r.judged, "passed": r.passed, "pass_rate": rate(r.passed, r.judged),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("`{asset}` has no quality reports in the last {days} days");
        return Ok(());
    }
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0));
    println!(
        "{asset}: {} of checks passed over {} runs in the last {days} days",
        pct(rate(passed, judged)),
        runs.len()
    );
    let mut t = table(&[
        "check",
        "severity",
        "runs judged",
        "passed",
        "pass rate",
        "mean score",
        "last",
    ]);
    for c in checks {
        t.add_row(vec![
            c.name.clone(),
            c.severity.clone(),
            c.judged.to_string(),
            c.passed.to_string(),
            pct(rate(c.passed, c.judged)),
            sluice_validate::format_score(c.mean_score),
            c.last_verdict.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// An export's writes, newest first: a file has no commit log, so these
/// records of the metadata database are its versions.
pub fn print_export_history(writes: &[ExportRecord], json: bool) -> anyhow::Result<()> {
    if json {
        let rows: Vec<_> = writes
            .iter()
            .map(|w| {
                serde_json::json!({
                    "version": w.version,
                    "written_at": sluice_core::render::instant(w.written_at),
                    "rows": w.rows,
                    "run_id": w.run_id,
                    "path": w.path,
                    "fingerprint": w.fingerprint,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut t = table(&["version", "written at", "rows", "run", "fingerprint"]);
    for w in writes {
        t.add_row(vec![
            w.version.to_string(),
            w.written_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            w.rows.to_string(),
            w.run_id.to_string(),
            w.fingerprint.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// `sluice history`.
pub fn print_history(history: &[VersionInfo], json: bool) -> anyhow::Result<()> {
    if json {
        let rows: Vec<_> = history
            .iter()
            .map(|v| {
                serde_json::json!({
                    "version": v.version,
                    "committed_at": v.committed_at.map(sluice_core::render::instant),
                    "operation": v.operation,
                    "rows": v.rows,
                    "run_id": v.meta.as_ref().map(|m| m.run_id),
                    "fingerprint": v.meta.as_ref().map(|m| m.fingerprint.clone()),
                    "inputs": v.meta.as_ref().map(|m| m.inputs.clone()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut t = table(&[
        "version",
        "committed at",
        "operation",
        "rows",
        "run",
        "inputs",
    ]);
    for v in history {
        let inputs = v.meta.as_ref().map_or(String::new(), |m| {
            m.inputs
                .iter()
                .map(|(k, v)| format!("{k}@{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        });
        t.add_row(vec![
            v.version.to_string(),
            opt(v.committed_at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC"))),
            v.operation.clone(),
            opt(v.rows),
            opt(v.meta.as_ref().map(|m| m.run_id)),
            inputs,
        ]);
    }
    println!("{t}");
    Ok(())
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// `sluice status`.
pub fn print_status(states: &[AssetState], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(states)?);
        return Ok(());
    }
    let mut t = table(&["asset", "kind", "version", "rows", "age", "state"]);
    for s in states {
        t.add_row(vec![
            s.name.clone(),
            s.kind.to_string(),
            opt(s.version),
            opt(s.rows),
            opt(s.age_seconds.map(age)),
            match &s.reason {
                Some(r) => format!("stale: {r}"),
                None => "fresh".to_string(),
            },
        ]);
    }
    println!("{t}");
    Ok(())
}

/// `sluice status ASSET --partitions`.
pub fn print_partitions(states: &[PartitionState], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(states)?);
        return Ok(());
    }
    let mut t = table(&["partition", "state", "version", "rows", "run", "error"]);
    for s in states {
        t.add_row(vec![
            s.partition.clone(),
            s.state.to_string(),
            opt(s.version),
            opt(s.rows),
            opt(s.run_id),
            opt(s.error.as_deref().and_then(|e| e.lines().next())),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// Query results in the chosen format.
pub fn write_batches(
    out: &mut dyn std::io::Write,
    batches: &[RecordBatch],
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            let text = datafusion::arrow::util::pretty::pretty_format_batches(batches)?;
            writeln!(out, "{text}")?;
        }
        Format::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            for b in batches {
                writer.write(b)?;
            }
        }
        Format::Json => {
            let mut writer = datafusion::arrow::json::ArrayWriter::new(&mut *out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
            drop(writer);
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Prints one entity's online features (or says there are none).
pub fn print_record(
    view: &str,
    key: &[String],
    record: &Option<sluice_runner::FeatureRecord>,
    json: bool,
) -> anyhow::Result<()> {
    let Some(r) = record else {
        if json {
            println!("null");
        }
        eprintln!(
            "feature view `{view}` holds no record for {}",
            key.join(", ")
        );
        return Ok(());
    };
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["feature", "value"]);
    for (k, v) in &r.entity {
        table.add_row(vec![k.clone(), plain(v)]);
    }
    table.add_row(vec![
        "event_timestamp".to_string(),
        r.event_timestamp.clone(),
    ]);
    if let Some(at) = &r.as_of {
        table.add_row(vec!["as_of".to_string(), at.clone()]);
    }
    for (k, v) in &r.features {
        table.add_row(vec![k.clone(), plain(v)]);
    }
    println!("{table}");
    println!("{view} version {}", r.version);
    Ok(())
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// `sluice keys list`.
pub fn print_keys(keys: &[sluice_store::KeyInfo], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(keys)?);
        return Ok(());
    }
    if keys.is_empty() {
        println!(
            "no API keys: `sluice serve` listens on loopback only; `sluice keys create --role reader` makes one"
        );
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["id", "name", "role", "created", "revoked"]);
    for k in keys {
        table.add_row([
            k.id.clone(),
            k.name.clone(),
            k.role.to_string(),
            k.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            k.revoked_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
        ]);
    }
    println!("{table}");
    Ok(())
}
