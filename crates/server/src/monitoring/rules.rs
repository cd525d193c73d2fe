//! `sluice monitoring rules`: a Prometheus alert rules file for a project, one
//! rule per thing that can go wrong, each with the project's own threshold —
//! a check's (in score space, [`sluice_validate::passing_score`]), a drift
//! expectation's `psi_max` or `ks_max`, an asset's `freshness.max_age`.
//!
//! The file is YAML written as text: block structure with every scalar a
//! double-quoted JSON string (JSON's escapes are YAML's), so any name or
//! message quotes safely. It holds no time and no path: the same project
//! gives the same file.

use std::fmt::Write;

use sluice_project::{Asset, ExpectKind, Project, Severity};
use sluice_validate::{ROW_RULE_PASSING_SCORE, passing_score};

use crate::metrics::{AGE, DELIVERIES, DRIFT, FAILING, LAG, QUALITY, RUNS};

/// A schedule whose oldest due tick has waited this long is stalled...
const STALL_SECONDS: u64 = 300;
/// ...once it has been for this long.
const STALL_FOR: &str = "5m";
/// The window in which a failed run alerts even if the asset recovered since.
const FAILED_WINDOW: &str = "15m";
/// The window in which a given-up alert delivery alerts.
const DELIVERY_WINDOW: &str = "1h";
/// Vector search p99 above this many seconds alerts.
const SEARCH_P99_SECONDS: f64 = 0.5;
/// The histogram of search latency, exposed once a process answered a search.
const SEARCH_LATENCY: &str = crate::metrics::SEARCH_LATENCY;

/// One alerting rule. Rules of one alert name differ in their labels as
/// well as their expressions (promtool's lint refuses duplicates), so each
/// carries the names its expression selects.
struct Rule {
    alert: &'static str,
    expr: String,
    for_: Option<&'static str>,
    severity: &'static str,
    labels: Vec<(&'static str, String)>,
    summary: String,
    description: String,
}

/// One group of rules, with a comment above it.
struct Group {
    name: &'static str,
    comment: Vec<String>,
    rules: Vec<Rule>,
}

/// The rules file of `project`.
pub fn alert_rules(project: &Project) -> String {
    let groups = [
        runs(project),
        quality(project),
        drift(project),
        freshness(project),
        schedules(project),
        deliveries(project),
        retrieval(),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Prometheus alert rules for the sluice project {}, written by\n\
         # `sluice monitoring rules` from its project file: write them again when\n\
         # contracts, freshness policies or schedules change.\n\
         #\n\
         # In prometheus.yml: rule_files: [\"alerts.yml\"], and a scrape job for\n\
         # `sluice serve`'s /metrics (see the README's monitoring section).\n\
         # Every alert carries project={}; severity is critical or warning.",
        q(&project.name),
        q(&project.name)
    );
    out.push_str("groups:\n");
    for g in groups.iter().filter(|g| !g.rules.is_empty()) {
        for line in &g.comment {
            let _ = writeln!(out, "  # {line}");
        }
        let _ = writeln!(out, "  - name: {}", q(g.name));
        out.push_str("    rules:\n");
        for r in &g.rules {
            let _ = writeln!(out, "      - alert: {}", q(r.alert));
            let _ = writeln!(out, "        expr: {}", q(&r.expr));
            if let Some(f) = r.for_ {
                let _ = writeln!(out, "        for: {}", q(f));
            }
            out.push_str("        labels:\n");
            let _ = writeln!(out, "          severity: {}", q(r.severity));
            let _ = writeln!(out, "          project: {}", q(&project.name));
            for (k, v) in &r.labels {
                let _ = writeln!(out, "          {k}: {}", q(v));
            }
            out.push_str("        annotations:\n");
            let _ = writeln!(out, "          summary: {}", q(&r.summary));
            let _ = writeln!(out, "          description: {}", q(&r.description));
        }
    }
    out
}

/// A YAML double-quoted scalar: a JSON string is one.
pub(super) fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A PromQL string literal (inside a label matcher).
pub(super) fn promql(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where a definition is, as `sluice.toml line N` (no folder, so the file is
/// the same in every checkout).
fn at(loc: &sluice_core::Location) -> String {
    let file = loc
        .file
        .file_name()
        .map_or_else(|| "sluice.toml".into(), |f| f.to_string_lossy());
    format!("{file} line {}", loc.line)
}

/// A duration as a project file writes it: `1d`, `6h`, `90s`.
fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "critical",
        Severity::Warn | Severity::Quarantine => "warning",
    }
}

fn runs(project: &Project) -> Group {
    if project.assets.is_empty() {
        return Group {
            name: "sluice_runs",
            comment: Vec::new(),
            rules: Vec::new(),
        };
    }
    Group {
        name: "sluice_runs",
        comment: vec![
            "A run failed: the asset's newest run ended failed (until a run builds it),".into(),
            format!("or one of its runs failed in the last {FAILED_WINDOW}. A failure that a retry"),
            "fixed is not a failed run (sluice_attempt_retries_total counts it).".into(),
        ],
        rules: vec![Rule {
            alert: "SluiceRunFailed",
            expr: format!(
                "max by (pipeline) ({FAILING}) > 0 or max by (pipeline) (increase({RUNS}{{status=\"failed\"}}[{FAILED_WINDOW}])) > 0"
            ),
            for_: None,
            severity: "critical",
            labels: Vec::new(),
            summary: "sluice asset {{ $labels.pipeline }} failed".into(),
            description: "A run of {{ $labels.pipeline }} failed; its previous version stays published and its downstream is blocked. `sluice runs` lists the runs and `sluice runs show ID` the error.".into(),
        }],
    }
}

fn quality(project: &Project) -> Group {
    let mut rules = Vec::new();
    for name in &project.order {
        let asset = &project.assets[name];
        let c = &asset.contract;
        let rows = c.rules.iter().map(|r| {
            (
                r.check_name(),
                ROW_RULE_PASSING_SCORE,
                r.severity,
                &r.location,
                "no row breaks it".to_string(),
            )
        });
        let expectations = c
            .expectations
            .iter()
            .filter(|e| !matches!(e.kind, ExpectKind::Psi { .. } | ExpectKind::Ks { .. }))
            .map(|e| {
                (
                    e.name.clone(),
                    passing_score(&e.kind),
                    e.severity,
                    &e.location,
                    format!("{} holds", e.kind.word()),
                )
            });
        for (check, threshold, sev, loc, meaning) in rows.chain(expectations) {
            rules.push(Rule {
                alert: "SluiceDataQualityBelowThreshold",
                expr: format!(
                    "{QUALITY}{{pipeline={},check={}}} < {threshold}",
                    promql(name.as_str()),
                    promql(&check)
                ),
                for_: None,
                severity: severity(sev),
                labels: vec![
                    ("pipeline", name.to_string()),
                    ("check", check.clone()),
                    ("check_severity", sev.as_str().to_string()),
                ],
                summary: format!(
                    "check {check} of {name} scores {{{{ $value }}}}, below {threshold}"
                ),
                description: format!(
                    "The newest validation of {name} failed its {} check {check} (it scores {threshold} or more when {meaning}; defined at {}). `sluice report {name}` shows the report.",
                    sev.as_str(),
                    at(loc)
                ),
            });
        }
    }
    Group {
        name: "sluice_quality",
        comment: vec![
            "Data quality below a check's own threshold, as a score in [0, 1]: a row rule".into(),
            "passes at 1, bounds and freshness at 1, null_fraction at 1 - max, in_set at".into(),
            "its min_fraction. Drift checks alert in sluice_drift instead.".into(),
        ],
        rules,
    }
}

fn drift(project: &Project) -> Group {
    let mut rules = Vec::new();
    for name in &project.order {
        let asset: &Asset = &project.assets[name];
        for e in &asset.contract.expectations {
            let (statistic, max, key) = match e.kind {
                ExpectKind::Psi { max, .. } => ("psi", max, "psi_max"),
                ExpectKind::Ks { max, .. } => ("ks", max, "ks_max"),
                _ => continue,
            };
            let feature = e.column.clone().unwrap_or_default();
            rules.push(Rule {
                alert: "SluiceFeatureDrift",
                expr: format!(
                    "{DRIFT}{{pipeline={},feature={},statistic=\"{statistic}\"}} > {max}",
                    promql(name.as_str()),
                    promql(&feature)
                ),
                for_: None,
                severity: severity(e.severity),
                labels: vec![
                    ("pipeline", name.to_string()),
                    ("feature", feature.clone()),
                    ("statistic", statistic.to_string()),
                ],
                summary: format!(
                    "{feature} of {name} drifted: {} {{{{ $value }}}} above {max}",
                    statistic.to_uppercase()
                ),
                description: format!(
                    "The distribution of {feature} in the newest version of {name} moved from its reference ({key} = {max}, defined at {}). `sluice report {name}` shows both histograms.",
                    at(&e.location)
                ),
            });
        }
    }
    Group {
        name: "sluice_drift",
        comment: vec![
            "Feature drift above the contract's own psi_max or ks_max, per column.".into(),
        ],
        rules,
    }
}

fn freshness(project: &Project) -> Group {
    let mut rules = Vec::new();
    for name in &project.order {
        let asset = &project.assets[name];
        let Some(max_age) = asset.policy.max_age else {
            continue;
        };
        let secs = max_age.as_secs_f64();
        rules.push(Rule {
            alert: "SluiceAssetStale",
            expr: format!("{AGE}{{asset={}}} > {secs}", promql(name.as_str())),
            for_: None,
            severity: "warning",
            labels: vec![("asset", name.to_string())],
            summary: format!("{name} is {{{{ $value | humanizeDuration }}}} old, older than its max_age"),
            description: format!(
                "{name} was last built or found up to date more than {} ago (freshness = {{ max_age }} at {}). Is `sluice serve` running, and do its runs succeed?",
                human(max_age),
                at(&asset.location)
            ),
        });
    }
    Group {
        name: "sluice_freshness",
        comment: vec![
            "An asset older than its freshness policy's max_age (time since it was last".into(),
            "built or found up to date).".into(),
        ],
        rules,
    }
}

fn schedules(project: &Project) -> Group {
    let mut rules = Vec::new();
    if project.schedules.values().any(|s| s.enabled) {
        rules.push(Rule {
            alert: "SluiceSchedulerStalled",
            expr: format!("max by (schedule) ({LAG}) > {STALL_SECONDS}"),
            for_: Some(STALL_FOR),
            severity: "critical",
            labels: Vec::new(),
            summary: "schedule {{ $labels.schedule }} is {{ $value | humanizeDuration }} behind".into(),
            description: format!(
                "A tick of {{{{ $labels.schedule }}}} has been due for more than {STALL_SECONDS} s without starting: the scheduler in `sluice serve` is stuck, or the previous tick's run still runs. `sluice schedules` shows the last and next ticks."
            ),
        });
    }
    Group {
        name: "sluice_schedules",
        comment: vec![
            "The scheduler stalled: a schedule's oldest due tick has not started.".into(),
        ],
        rules,
    }
}

fn deliveries(project: &Project) -> Group {
    let mut rules = Vec::new();
    if project.alerts.values().any(|a| a.enabled) {
        rules.push(Rule {
            alert: "SluiceAlertDeliveryFailed",
            expr: format!(
                "sum by (alert, channel) (increase({DELIVERIES}{{outcome=\"failed\"}}[{DELIVERY_WINDOW}])) > 0"
            ),
            for_: None,
            severity: "warning",
            labels: Vec::new(),
            summary: "sluice alert {{ $labels.alert }} could not reach its {{ $labels.channel }} channel".into(),
            description: format!(
                "A message of alert {{{{ $labels.alert }}}} to its {{{{ $labels.channel }}}} channel was given up after its attempts in the last {DELIVERY_WINDOW}: sluice's own alerts are not reaching people. `sluice alerts` shows each delivery and its last error; `sluice alerts test {{{{ $labels.alert }}}}` tries the channel now."
            ),
        });
    }
    Group {
        name: "sluice_alerts",
        comment: vec![
            "sluice's own alert messages are not getting through: a delivery was given up.".into(),
        ],
        rules,
    }
}

fn retrieval() -> Group {
    Group {
        name: "sluice_retrieval",
        comment: vec![
            format!("{SEARCH_LATENCY} times every search of a collection"),
            "(POST /v1/search); a server that answered none has no series.".into(),
        ],
        rules: vec![Rule {
            alert: "SluiceVectorSearchSlow",
            expr: format!(
                "histogram_quantile(0.99, sum by (collection, le) (rate({SEARCH_LATENCY}_bucket[5m]))) > {SEARCH_P99_SECONDS}"
            ),
            for_: Some("5m"),
            severity: "warning",
            labels: Vec::new(),
            summary:
                "vector search p99 in {{ $labels.collection }} is {{ $value | humanizeDuration }}"
                    .into(),
            description: format!(
                "The 99th percentile of search latency in collection {{{{ $labels.collection }}}} has been above {SEARCH_P99_SECONDS} s for 5 minutes."
            ),
        }],
    }
}
