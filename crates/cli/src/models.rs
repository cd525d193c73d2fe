//! `sluice models`, `sluice model NAME` and `sluice backtest`: the model
//! registry and walk-forward evaluation, printed as tables or JSON.

use std::process::ExitCode;

use sluice_runner::{BacktestRequest, BacktestSummary, Period, PeriodResult, Workspace};
use sluice_store::ModelVersion;

use crate::output::{opt, table};

/// Metrics shown in tables, in order (a model has the ones of its task).
const SHOWN: [&str; 8] = [
    "auc",
    "log_loss",
    "accuracy",
    "precision",
    "recall",
    "rmse",
    "mae",
    "r2",
];

fn metrics_text(m: &std::collections::BTreeMap<String, f64>) -> String {
    SHOWN
        .iter()
        .filter_map(|k| m.get(*k).map(|v| format!("{k} {v:.4}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A sum of money to two decimals, without the sign of a rounded-away
/// negative (`-0.004` is `0.00`, not `-0.00`).
fn money(v: f64) -> String {
    let text = format!("{v:.2}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => text,
    }
}

/// `sluice models`.
pub fn list(ws: &Workspace, json: bool) -> anyhow::Result<ExitCode> {
    let rows: Vec<_> = sluice_runner::model_list(ws)?
        .into_iter()
        .map(|m| {
            (
                m.name.clone(),
                m.task,
                m.learner,
                m.serving_version().cloned(),
                m.newest().cloned(),
            )
        })
        .collect();
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|(name, task, learner, serving, newest)| {
                serde_json::json!({
                    "model": name, "task": task, "learner": learner,
                    "serving": serving, "newest": newest,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("the project has no models (add `[models.NAME]` to sluice.toml)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "model",
        "task",
        "learner",
        "serving",
        "newest",
        "metrics (serving)",
    ]);
    for (name, task, learner, serving, newest) in &rows {
        t.add_row(vec![
            name.clone(),
            task.to_string(),
            learner.to_string(),
            opt(serving.as_ref().map(|v| v.version)),
            match newest {
                Some(n) if !n.promoted => format!("{} (not promoted)", n.version),
                Some(n) => n.version.to_string(),
                None => "-".into(),
            },
            serving
                .as_ref()
                .map_or_else(|| "-".into(), |v| metrics_text(&v.metrics)),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// `sluice model NAME`.
pub fn show(ws: &Workspace, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    sluice_runner::model_def(ws, name)?;
    let versions: Vec<ModelVersion> = ws.metadata.model_versions(name)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&versions)?);
        return Ok(ExitCode::SUCCESS);
    }
    if versions.is_empty() {
        println!("model `{name}` has no version yet; `sluice run {name}` trains it");
        return Ok(ExitCode::SUCCESS);
    }
    let serving = ws.metadata.serving_model_version(name)?;
    let mut t = table(&[
        "version",
        "created",
        "learner",
        "rows (train/valid)",
        "trained on",
        "metrics",
        "state",
    ]);
    for v in &versions {
        t.add_row(vec![
            v.version.to_string(),
            v.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            format!("{} ({:.1}s)", v.learner, v.train_ms as f64 / 1000.0),
            format!("{}/{}", v.train_rows, v.valid_rows),
            v.inputs
                .iter()
                .map(|(k, n)| format!("{k}@{n}"))
                .collect::<Vec<_>>()
                .join(" "),
            metrics_text(&v.metrics),
            if Some(v.version) == serving {
                "serving".to_string()
            } else if v.promoted {
                "promoted".to_string()
            } else {
                format!("not promoted: {}", v.reason.as_deref().unwrap_or("-"))
            },
        ]);
    }
    println!("{t}");
    if let Some(newest) = versions.last()
        && !newest.importance.is_empty()
    {
        let mut imp = table(&["feature", "importance"]);
        for (f, v) in newest.importance.iter().take(15) {
            imp.add_row(vec![f.clone(), format!("{v:.4}")]);
        }
        println!("importance (version {}):\n{imp}", newest.version);
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `--from`/`--to`: a date or an RFC 3339 time.
pub fn parse_when(flag: &str, text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    sluice_project::models::parse_time(text)
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{flag} `{text}` is not a time\n  help: write a date (`2013-11-01`) or an RFC 3339 time"
            )
        })
}

/// `sluice backtest`.
pub async fn backtest(
    ws: &Workspace,
    req: &BacktestRequest,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let summary: BacktestSummary = sluice_runner::backtest(ws, req).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "period", "rows", "model", "metrics", "acted", "hits", "hit rate", "return",
    ]);
    let row = |p: &PeriodResult, label: String| {
        vec![
            label,
            p.rows.to_string(),
            match (p.model_version, p.train_rows) {
                (Some(v), _) => format!("v{v}"),
                (None, 0) => "-".to_string(),
                (None, n) => format!("retrained on {n}"),
            },
            metrics_text(&p.metrics),
            p.acted.to_string(),
            p.hits.to_string(),
            opt(p.hit_rate.map(|r| format!("{r:.3}"))),
            opt(p.r#return.map(money)),
        ]
    };
    for p in &summary.periods {
        t.add_row(row(p, format!("{} .. {}", &p.start[..10], &p.end[..10])));
    }
    t.add_row(row(&summary.total, "all".to_string()));
    println!("{t}");
    let period = match req.period {
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
    };
    println!(
        "model `{}` ({}), acting on the top {} scores of each {}, in {:.1} s",
        summary.model,
        summary.mode,
        req.top_k,
        match &req.group_by {
            Some(event) => format!("`{event}` within each {period}"),
            None => period.to_string(),
        },
        summary.duration_ms as f64 / 1000.0
    );
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rounded_away_loss_prints_as_zero() {
        assert_eq!(super::money(-0.004), "0.00");
        assert_eq!(super::money(-0.0), "0.00");
        assert_eq!(super::money(-0.005_1), "-0.01");
        assert_eq!(super::money(12.5), "12.50");
    }
}
