//! Golden pipelines: every case under `testdata/pipelines/` runs its steps with the
//! real binary and compares everything they produced — outputs, every asset's rows,
//! quarantines, reports, online records, models, exports, training sets — with the
//! case's `expected/` files. `SLUICE_UPDATE_GOLDEN=1` rewrites the expectations, so
//! that a deliberate change shows as a diff for review (the way DataFusion's `.slt`
//! files are regenerated). See `testdata/pipelines/README.md` for the case format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use datafusion::arrow::csv::WriterBuilder;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use regex::Regex;

use crate::common::*;

/// One case's description (`case.toml`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Each step: `sluice` arguments, or an `@` action (`@dump`, `@copy FROM TO`,
    /// `@append FROM TO`, `@remove PATH`, `@write PATH TEXT`).
    #[serde(default = "default_steps")]
    steps: Vec<Vec<String>>,
}

fn default_steps() -> Vec<Vec<String>> {
    vec![
        vec!["check".into()],
        vec!["run".into(), "--json".into()],
        vec!["@dump".into()],
    ]
}

fn cases_dir() -> PathBuf {
    repo().join("testdata/pipelines")
}

fn updating() -> bool {
    std::env::var_os("SLUICE_UPDATE_GOLDEN").is_some_and(|v| v != "0" && !v.is_empty())
}

#[test]
fn golden_pipelines() {
    let mut names: Vec<String> = std::fs::read_dir(cases_dir())
        .expect("testdata/pipelines exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("project").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if let Ok(only) = std::env::var("SLUICE_GOLDEN_CASE") {
        names.retain(|n| n.contains(&only));
    }
    assert!(!names.is_empty(), "no golden cases found");
    // Two at a time: the machine has two cores and each case starts many processes.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let chunks: Vec<Vec<String>> = (0..2)
            .map(|i| names.iter().skip(i).step_by(2).cloned().collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|name| run_case(name).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case thread panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ (rerun with SLUICE_UPDATE_GOLDEN=1 and review the diff):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs one case and compares (or rewrites) its expectations.
fn run_case(name: &str) -> Result<(), String> {
    let case_dir = cases_dir().join(name);
    let case: Case = match std::fs::read_to_string(case_dir.join("case.toml")) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{name}/case.toml: {e}"))?,
        Err(_) => Case {
            steps: default_steps(),
        },
    };
    let work = tempfile::tempdir().expect("tempdir");
    let project = work.path().join("project");
    copy_tree(&case_dir.join("project"), &project);
    let mut actual: BTreeMap<String, String> = BTreeMap::new();
    for (i, step) in case.steps.iter().enumerate() {
        let n = i + 1;
        let verb = step.first().map(String::as_str).unwrap_or_default();
        match verb {
            "@dump" => dump(&project, &format!("{n:02}-dump"), &mut actual),
            "@copy" | "@append" => {
                let from = std::fs::read(case_dir.join(&step[1])).expect("the step's file exists");
                let to = project.join(&step[2]);
                let mut bytes = if verb == "@append" {
                    std::fs::read(&to).unwrap_or_default()
                } else {
                    Vec::new()
                };
                bytes.extend_from_slice(&from);
                std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
                std::fs::write(&to, bytes).expect("write");
            }
            "@write" => {
                let to = project.join(&step[1]);
                std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
                std::fs::write(&to, &step[2]).expect("write");
            }
            "@remove" => {
                let path = project.join(&step[1]);
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).expect("remove");
                } else {
                    std::fs::remove_file(&path).expect("remove");
                }
            }
            _ => {
                let args: Vec<&str> = step.iter().map(String::as_str).collect();
                // In the project folder, so that a relative `--output` lands there.
                let out = sluice_cmd(&project)
                    .current_dir(&project)
                    .args(&args)
                    .output()
                    .expect("the sluice binary runs");
                let mut text = format!(
                    "$ sluice {}\nexit: {}\n",
                    args.join(" "),
                    out.status.code().map_or("signal".into(), |c| c.to_string())
                );
                let so = normalize_text(&stdout(&out), &project);
                let so = match serde_json::from_str::<serde_json::Value>(&so) {
                    Ok(v) if args.contains(&"--json") => pretty(normalize_json(v)),
                    _ => so,
                };
                text.push_str(&format!("--- stdout\n{so}"));
                let se = normalize_text(&stderr(&out), &project);
                if !se.is_empty() {
                    text.push_str(&format!("--- stderr\n{se}"));
                }
                if let Some(pos) = args.iter().position(|a| *a == "--output") {
                    let file = project.join(args[pos + 1]);
                    text.push_str(&format!("--- {}\n{}", args[pos + 1], file_text(&file)));
                }
                actual.insert(format!("{n:02}-{}.txt", verb), text);
            }
        }
    }
    compare(name, &case_dir.join("expected"), &actual)
}

/// Snapshots everything the project holds: each asset's rows (sorted CSV), its
/// quarantine, its newest quality report, its online records, a model's versions
/// and an export's file.
fn dump(project: &Path, prefix: &str, actual: &mut BTreeMap<String, String>) {
    let raw: toml::Table =
        toml::from_str(&std::fs::read_to_string(project.join("sluice.toml")).expect("sluice.toml"))
            .expect("sluice.toml parses as TOML");
    let out = sluice(project, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}", stderr(&out)));
    let assets = status.as_array().expect("status is an array");
    for asset in assets {
        let name = asset["name"].as_str().expect("name");
        let kind = asset["kind"].as_str().unwrap_or_default();
        let file = |what: &str| format!("{prefix}/{name}{what}");
        match kind {
            "model" => {
                let out = sluice(project, &["model", name, "--json"]);
                actual.insert(file(".model.json"), json_or_text(&out, project));
                continue;
            }
            "export" => {
                let path = raw["exports"][name]["path"].as_str().expect("export path");
                actual.insert(file(".export.txt"), file_text(&project.join(path)));
                continue;
            }
            _ => {}
        }
        for table in [name.to_string(), format!("{name}__quarantine")] {
            let sql = format!("SELECT * FROM {table}");
            let out = sluice(project, &["query", "--format", "csv", &sql]);
            if out.status.success() {
                actual.insert(
                    format!("{prefix}/{table}.csv"),
                    sorted_csv(&stdout(&out), project),
                );
            } else if table == name {
                actual.insert(
                    format!("{prefix}/{table}.csv"),
                    format!("error\n{}", normalize_text(&stderr(&out), project)),
                );
            }
        }
        let report = project.join(".golden-report.json");
        let out = sluice(
            project,
            &["report", name, "--output", report.to_str().expect("utf-8")],
        );
        if out.status.success() {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
                    .expect("report is JSON");
            actual.insert(file(".report.json"), pretty(normalize_json(v)));
            std::fs::remove_file(&report).expect("remove");
        }
        if let Some(keys) = online_keys(&raw, name, kind) {
            let at = newest_event(project, &raw, name, kind);
            actual.insert(
                file(".online.txt"),
                online(project, name, &keys, at.as_deref()),
            );
        }
    }
}

/// The entity key columns of a feature view or a model's predictions.
fn online_keys(raw: &toml::Table, name: &str, kind: &str) -> Option<Vec<String>> {
    let entity = match kind {
        "features" => raw.get("features")?.get(name)?.get("entity")?,
        "predictions" => {
            let model = name.strip_suffix("_predictions")?;
            raw.get("models")?
                .get(model)?
                .get("predictions")?
                .get("entity")?
        }
        _ => return None,
    };
    Some(match entity {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().expect("entity names").to_string())
            .collect(),
        _ => return None,
    })
}

/// A feature view's newest event time: its online records are read as of it,
/// so that windows read as of the request do not depend on the day the test
/// runs.
fn newest_event(project: &Path, raw: &toml::Table, name: &str, kind: &str) -> Option<String> {
    if kind != "features" {
        return None;
    }
    let ts = raw.get("features")?.get(name)?.get("timestamp")?.as_str()?;
    let sql = format!("SELECT CAST(max({ts}) AS VARCHAR) AS t FROM {name}");
    let out = sluice(project, &["query", "--format", "json", &sql]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).ok()?;
    rows.first()?.get("t")?.as_str().map(str::to_string)
}

/// Every entity's online record, one `sluice get --json` per entity, as of
/// `at` when given.
fn online(project: &Path, name: &str, keys: &[String], at: Option<&str>) -> String {
    let cols = keys.join(", ");
    let sql = format!(
        "SELECT DISTINCT {} FROM {name} ORDER BY {cols}",
        keys.iter()
            .map(|k| format!("CAST({k} AS VARCHAR) AS {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = sluice(project, &["query", "--format", "json", &sql]);
    if !out.status.success() {
        return format!("error\n{}", normalize_text(&stderr(&out), project));
    }
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&stdout(&out)).expect("query --format json");
    let mut text = String::new();
    for row in rows {
        let values: Vec<String> = keys
            .iter()
            .map(|k| match &row[k] {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect();
        if values.iter().any(|v| v == "null") {
            continue;
        }
        let mut args = vec!["get", name];
        args.extend(values.iter().map(String::as_str));
        args.push("--json");
        if let Some(at) = at {
            args.extend(["--as-of", at]);
        }
        let out = sluice(project, &args);
        text.push_str(&format!(
            "{}: {}",
            values.join(" "),
            json_or_text(&out, project)
        ));
    }
    text
}

fn json_or_text(out: &std::process::Output, project: &Path) -> String {
    let so = normalize_text(&stdout(out), project);
    match serde_json::from_str::<serde_json::Value>(&so) {
        Ok(v) => pretty(normalize_json(v)),
        Err(_) => format!(
            "exit {}\n{so}{}",
            out.status.code().unwrap_or(-1),
            normalize_text(&stderr(out), project)
        ),
    }
}

/// A file's contents as text: Parquet as CSV in stored order, JSON pretty with
/// rounded numbers, anything else as is (with rounded numbers in CSV).
fn file_text(path: &Path) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return "(no file)\n".into();
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("open"))
                    .expect("parquet")
                    .build()
                    .expect("reader");
            let mut buf = Vec::new();
            {
                let mut w = WriterBuilder::new().with_header(true).build(&mut buf);
                for b in reader {
                    w.write(&b.expect("batch")).expect("csv");
                }
            }
            let text = String::from_utf8(buf).expect("utf-8");
            text.lines()
                .map(round_csv_line)
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        }
        Some("json") => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => pretty(normalize_json(v)),
            Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
        },
        Some("csv") => {
            let text = String::from_utf8_lossy(&bytes);
            text.lines()
                .map(round_csv_line)
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        }
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// CSV with its header first and the rows sorted, numbers rounded.
fn sorted_csv(text: &str, project: &Path) -> String {
    let text = normalize_text(text, project);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let mut rows: Vec<String> = lines.map(round_csv_line).collect();
    rows.sort();
    let mut out = header;
    out.push('\n');
    for r in rows {
        out.push_str(&r);
        out.push('\n');
    }
    out
}

/// Rounds every unquoted field that is a decimal number (not an integer).
fn round_csv_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_quotes = false;
    let mut field = String::new();
    let flush = |field: &mut String, out: &mut String| {
        out.push_str(&round_field(field));
        field.clear();
    };
    for c in line.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                field.push(c);
            }
            ',' if !in_quotes => {
                flush(&mut field, &mut out);
                out.push(',');
            }
            _ => field.push(c),
        }
    }
    flush(&mut field, &mut out);
    out
}

fn round_field(field: &str) -> String {
    static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^-?(\d+\.\d+([eE][-+]?\d+)?|\d+[eE][-+]?\d+)$").expect("regex")
    });
    if NUMBER.is_match(field)
        && let Ok(x) = field.parse::<f64>()
    {
        let rounded = round(x);
        // Keep a decimal point so that 2.0 and 2 stay distinguishable.
        let s = rounded.to_string();
        return if s.contains('.') || s.contains('e') || !rounded.is_finite() {
            s
        } else {
            format!("{s}.0")
        };
    }
    field.to_string()
}

/// Ten significant digits: what a golden file pins of a float.
fn round(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.9e}").parse().unwrap_or(x)
}

/// Drops what differs between runs: durations and clock times (the keys say so),
/// and rounds floats.
fn normalize_json(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let volatile = k.ends_with("_ms")
                        || k.ends_with("_at")
                        || k == "age"
                        || k == "age_seconds";
                    if volatile && !v.is_null() {
                        (k, Value::String("<volatile>".into()))
                    } else {
                        (k, normalize_json(v))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize_json).collect()),
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or_default();
            serde_json::Number::from_f64(round(x)).map_or(Value::Null, Value::Number)
        }
        Value::String(s) => Value::String(normalize_now(&s)),
        v => v,
    }
}

fn pretty(v: serde_json::Value) -> String {
    serde_json::to_string_pretty(&v).expect("json") + "\n"
}

/// Replaces the scratch folder's path, durations and today's clock times.
fn normalize_text(text: &str, project: &Path) -> String {
    static DURATION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b\d+(\.\d+)? ?(ms|s)\b").expect("regex"));
    let mut t = text.replace(project.to_str().expect("utf-8"), "$PROJECT");
    if let Ok(real) = project.canonicalize() {
        t = t.replace(real.to_str().expect("utf-8"), "$PROJECT");
    }
    let t = DURATION.replace_all(&t, "<dur>");
    normalize_now(&t)
}

/// Times of today or yesterday (UTC) were made by the run, not read from data.
fn normalize_now(text: &str) -> String {
    static TIME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}| UTC)?")
            .expect("regex")
    });
    let now = chrono::Utc::now().date_naive();
    let recent = [now, now.pred_opt().unwrap_or(now)].map(|d| d.to_string());
    TIME.replace_all(text, |c: &regex::Captures<'_>| {
        if recent.iter().any(|d| d == &c[1]) {
            "<now>".to_string()
        } else {
            c[0].to_string()
        }
    })
    .into_owned()
}

/// Compares the produced files with `expected/`, or rewrites it.
fn compare(name: &str, expected: &Path, actual: &BTreeMap<String, String>) -> Result<(), String> {
    if updating() {
        if expected.exists() {
            std::fs::remove_dir_all(expected).expect("remove expected");
        }
        for (file, text) in actual {
            let path = expected.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        return Ok(());
    }
    let mut problems = Vec::new();
    let mut on_disk = Vec::new();
    list_files(expected, expected, &mut on_disk);
    for file in &on_disk {
        if !actual.contains_key(file) {
            problems.push(format!(
                "  {file}: expected, but the case no longer produces it"
            ));
        }
    }
    for (file, text) in actual {
        match std::fs::read_to_string(expected.join(file)) {
            Err(_) => problems.push(format!("  {file}: produced, but not expected")),
            Ok(want) if &want != text => problems.push(format!("  {file}:\n{}", diff(&want, text))),
            Ok(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("case {name}:\n{}", problems.join("\n")))
    }
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let path = e.path();
        if path.is_dir() {
            list_files(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The differing lines, at most 20 of them.
fn diff(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out = Vec::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i), g.get(i));
        if a != b {
            if let Some(a) = a {
                out.push(format!("    {:>4} - {a}", i + 1));
            }
            if let Some(b) = b {
                out.push(format!("    {:>4} + {b}", i + 1));
            }
        }
        if out.len() >= 20 {
            out.push("    ...".into());
            break;
        }
    }
    out.join("\n")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
