//! The report as one self-contained HTML page: inline CSS and SVG, no script and
//! nothing fetched at view time, so it can be mailed or archived as is.

use std::fmt::Write;

use crate::report::{CheckResult, Histogram, ValidationReport, Verdict};

/// Renders the report as a page.
pub fn render_html(report: &ValidationReport) -> String {
    let mut h = String::with_capacity(8192);
    let title = format!(
        "{} — run {} — sluice quality report",
        report.asset, report.run_id
    );
    let errors = report.errors().len();
    let warnings = report.warnings().len();
    let gate = if errors > 0 {
        ("fail", "failed: the asset was not published")
    } else if warnings > 0 {
        ("warn", "passed with warnings")
    } else {
        ("pass", "passed")
    };
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2430}}
h1{{font-size:1.4rem;margin-bottom:.2rem}} .sub{{color:#5a6473;margin-top:0}}
.cards{{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}}
.card{{border:1px solid #d8dde5;border-radius:6px;padding:.6rem 1rem;min-width:9rem}}
.card b{{display:block;font-size:1.3rem}}
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e6e9ef;vertical-align:top}}
th{{background:#f4f6f9;font-weight:600}}
.v{{font-weight:600;border-radius:4px;padding:.05rem .45rem}}
.pass{{background:#dff3e4;color:#17622e}} .fail{{background:#fbe1e1;color:#8c1c1c}} .warn{{background:#fff1cc;color:#7a5300}} .skipped{{background:#eceff3;color:#4a5260}}
.bar{{background:#e6e9ef;width:6rem;height:.55rem;border-radius:3px;display:inline-block;vertical-align:middle}}
.bar i{{display:block;height:100%;border-radius:3px;background:#3b7dd8}}
.samples{{color:#5a6473;font-family:ui-monospace,monospace;font-size:12px}}
svg text{{font-size:10px;fill:#4a5260}}
</style></head><body>
<h1>{asset}</h1>
<p class="sub">run {run} · {created} · <span class="v {gate_class}">{gate_text}</span></p>
<div class="cards">
<div class="card">rows in<b>{rows_in}</b></div>
<div class="card">rows published<b>{rows_out}</b></div>
<div class="card">rows quarantined<b>{rows_q}</b></div>
<div class="card">checks passed<b>{rate:.0}%</b></div>
</div>
<table><thead><tr><th>check</th><th>severity</th><th>verdict</th><th>observed</th><th>threshold</th><th>score</th></tr></thead><tbody>
"#,
        title = esc(&title),
        asset = esc(&report.asset),
        run = report.run_id,
        created = report.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        gate_class = gate.0,
        gate_text = gate.1,
        rows_in = report.rows_in,
        rows_out = report.rows_out,
        rows_q = report.rows_quarantined,
        rate = report.pass_rate() * 100.0,
    );
    for c in &report.checks {
        row(&mut h, c);
    }
    h.push_str("</tbody></table>\n");
    for c in &report.checks {
        if let Some(hist) = &c.histogram {
            histogram(&mut h, c, hist);
        }
    }
    h.push_str("</body></html>\n");
    h
}

fn verdict_class(c: &CheckResult) -> &'static str {
    match (c.verdict, c.severity) {
        (Verdict::Pass, _) => "pass",
        (Verdict::Skipped, _) => "skipped",
        (Verdict::Fail, sluice_project::Severity::Error) => "fail",
        (Verdict::Fail, _) => "warn",
    }
}

fn row(h: &mut String, c: &CheckResult) {
    let samples = if c.samples.is_empty() {
        String::new()
    } else {
        format!(
            r#"<div class="samples">e.g. {}</div>"#,
            c.samples
                .iter()
                .map(|s| esc(s))
                .collect::<Vec<_>>()
                .join(" · ")
        )
    };
    let _ = writeln!(
        h,
        r#"<tr><td>{name}</td><td>{sev}</td><td><span class="v {class}">{verdict}</span></td><td>{detail}{samples}</td><td>{threshold}</td><td><span class="bar"><i style="width:{w:.1}%"></i></span> {score}</td></tr>"#,
        name = esc(&c.name),
        sev = c.severity,
        class = verdict_class(c),
        verdict = c.verdict.as_str(),
        detail = esc(&c.detail),
        threshold = esc(&c.threshold),
        w = c.score.clamp(0.0, 1.0) * 100.0,
        score = crate::format_score(c.score),
    );
}

/// Reference and current shares per bin as paired bars.
fn histogram(h: &mut String, c: &CheckResult, hist: &Histogram) {
    let bins = hist.reference.len().max(1);
    let (width, height, pad) = (720.0, 180.0, 24.0);
    let slot = (width - 2.0 * pad) / bins as f64;
    let top = hist
        .reference
        .iter()
        .chain(&hist.current)
        .fold(0.0f64, |a, b| a.max(*b))
        .max(1e-9);
    let _ = write!(
        h,
        r#"<h2 style="font-size:1.05rem;margin-top:2rem">{} — distribution against version {}</h2>
<svg role="img" aria-label="histogram of {}" width="{width}" height="{}" viewBox="0 0 {width} {}">
"#,
        esc(&c.name),
        hist.reference_version,
        esc(&c.name),
        height + 40.0,
        height + 40.0
    );
    for i in 0..bins {
        let x = pad + i as f64 * slot;
        for (k, (share, color)) in [
            (hist.reference.get(i).copied().unwrap_or(0.0), "#9aa7b8"),
            (hist.current.get(i).copied().unwrap_or(0.0), "#3b7dd8"),
        ]
        .into_iter()
        .enumerate()
        {
            let bh = share / top * height;
            let _ = writeln!(
                h,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{:.2}%</title></rect>"#,
                x + 2.0 + k as f64 * (slot - 4.0) / 2.0,
                pad + height - bh - pad / 2.0,
                (slot - 4.0) / 2.0,
                bh,
                share * 100.0
            );
        }
        let label = match (
            i.checked_sub(1).and_then(|j| hist.edges.get(j)),
            hist.edges.get(i),
        ) {
            _ if !hist.labels.is_empty() => hist.labels.get(i).cloned().unwrap_or_default(),
            (None, Some(hi)) => format!("≤ {}", short(*hi)),
            (Some(lo), None) => format!("> {}", short(*lo)),
            (Some(lo), Some(hi)) => format!("{}–{}", short(*lo), short(*hi)),
            (None, None) => "all".to_string(),
        };
        let _ = writeln!(
            h,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x + slot / 2.0,
            height + 20.0,
            esc(&label)
        );
    }
    let _ = writeln!(
        h,
        r##"<rect x="{pad}" y="{}" width="10" height="10" fill="#9aa7b8"/><text x="{}" y="{}">reference (version {})</text><rect x="{}" y="{}" width="10" height="10" fill="#3b7dd8"/><text x="{}" y="{}">this run</text></svg>"##,
        height + 26.0,
        pad + 14.0,
        height + 35.0,
        hist.reference_version,
        pad + 170.0,
        height + 26.0,
        pad + 184.0,
        height + 35.0
    );
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn short(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}
