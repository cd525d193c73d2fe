//! Models on the flights example: train → promote → batch-predict → serve the
//! batch predictions → score online; a version that misses its thresholds is not
//! promoted and the serving one stays; backtests per week.

use std::path::Path;

use crate::common::{Server, asset, flights_copy, ok, run_json, scalar, sluice, stderr};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Rows of a Parquet file as JSON objects (through `sluice query` on a copy
/// would need an asset; read it directly).
fn parquet_objects(path: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    use datafusion::arrow::json::WriterBuilder;
    use datafusion::arrow::json::writer::JsonArray;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).expect("open");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    for b in reader {
        writer.write(&b.expect("batch")).expect("json");
    }
    writer.finish().expect("finish");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&writer.into_inner()).expect("rows");
    rows.into_iter()
        .map(|r| r.as_object().expect("object").clone())
        .collect()
}

#[test]
fn trains_promotes_predicts_and_serves_on_the_flights_example() {
    let dir = flights_copy();
    let p = dir.path();
    let (done, summary) = run_json(p, &[]);
    assert!(done, "{summary}");
    let model = asset(&summary, "late");
    assert_eq!(model["kind"], "model");
    assert_eq!(model["status"], "built");
    assert_eq!(model["version"], 1);
    let labelled = scalar(p, "SELECT count(*) FROM flight_spine");
    assert_eq!(
        model["rows_in"], labelled,
        "every labelled flight trains or validates"
    );

    // The registry: one promoted version with its metrics and what it read.
    let versions = json(&ok(p, &["model", "late", "--json"]));
    let v1 = &versions[0];
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["promoted"], true);
    assert_eq!(v1["learner"], "gbdt");
    let auc = v1["metrics"]["auc"].as_f64().expect("auc");
    assert!(auc > 0.65 && auc < 1.0, "auc {auc}");
    for m in ["log_loss", "accuracy", "precision", "recall"] {
        assert!(v1["metrics"][m].is_number(), "{m} in {v1}");
    }
    let december = scalar(
        p,
        "SELECT count(*) FROM flight_spine WHERE scheduled_at >= TIMESTAMP '2013-12-01T00:00:00Z'",
    );
    assert_eq!(v1["valid_rows"], december, "December validates");
    assert_eq!(
        v1["train_rows"].as_i64().expect("rows") + december,
        labelled
    );
    for input in [
        "flight_spine",
        "plane_delays",
        "carrier_delays",
        "origin_weather",
    ] {
        assert!(
            v1["inputs"][input].is_number(),
            "{input} in {}",
            v1["inputs"]
        );
    }
    let importance = v1["importance"].as_array().expect("importance");
    assert_eq!(importance.len(), 5 + 9 + 8 + 3 + 8, "{importance:?}");
    let listed = ok(p, &["models"]);
    assert!(
        listed.contains("late") && listed.contains("auc"),
        "{listed}"
    );

    // Batch predictions for this week's flights.
    let upcoming = scalar(p, "SELECT count(*) FROM upcoming_flights");
    let predictions = asset(&summary, "late_predictions");
    assert_eq!(predictions["status"], "built");
    assert_eq!(predictions["rows_out"], upcoming);
    assert_eq!(predictions["online"]["entities"], upcoming);
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM late_predictions WHERE score BETWEEN 0 AND 1 AND model_version = 1 AND predicted = (score >= 0.5)"
        ),
        upcoming
    );

    // The same flights' features, point-in-time, as the batch scored them.
    let features = p.join("upcoming.parquet");
    ok(
        p,
        &[
            "training-set",
            "--spine",
            "upcoming_flights",
            "--features",
            "plane_delays,carrier_delays,carrier_origins,origin_weather",
            "--output",
            features.to_str().expect("path"),
        ],
    );
    let rows = parquet_objects(&features);
    assert_eq!(rows.len() as i64, upcoming);

    let server = Server::start(p);
    let mut compared = 0;
    for row in rows.iter().step_by(rows.len() / 7) {
        let id = row["flight_id"].as_str().expect("flight id");
        let (status, body) =
            server.request("GET", &format!("/v1/predictions/late/{id}"), None, None);
        assert_eq!(status, 200, "{body}");
        let batch = json(&body);
        assert_eq!(batch["model_version"], 1);
        assert_eq!(batch["entity"]["flight_id"], id);
        let batch_score = batch["score"].as_f64().expect("score");

        // Online, from the same feature values: the same score.
        let mut values = row.clone();
        for not_an_input in ["scheduled_at", "flight_id", "tailnum"] {
            values.remove(not_an_input);
        }
        let request = serde_json::json!({ "values": values }).to_string();
        let (status, body) = server.request("POST", "/v1/predict/late", None, Some(&request));
        assert_eq!(status, 200, "{body}");
        let online = json(&body);
        assert_eq!(online["version"], 1);
        let online_score = online["score"].as_f64().expect("score");
        assert!(
            (online_score - batch_score).abs() < 1e-9,
            "{id}: online {online_score} vs batch {batch_score}"
        );
        assert_eq!(online["predicted"], batch["predicted"]);
        compared += 1;
    }
    assert!(compared >= 7);

    // Online from the entity alone: features come from the online store.
    let entity = serde_json::json!({"entity": {"tailnum": "N14228", "carrier": "UA", "origin": "EWR",
        "dest": "IAH", "dep_hour": 5, "distance": 1400}});
    let (status, body) =
        server.request("POST", "/v1/predict/late", None, Some(&entity.to_string()));
    assert_eq!(status, 200, "{body}");
    let scored = json(&body);
    let score = scored["score"].as_f64().expect("score");
    assert!((0.0..=1.0).contains(&score), "{scored}");
    let plane = json(&ok(p, &["get", "plane_delays", "N14228", "--json"]));
    assert_eq!(
        scored["inputs"]["plane_arr_delay_30d"], plane["features"]["plane_arr_delay_30d"],
        "the plane's online features were read"
    );
    assert_eq!(scored["missing_views"], serde_json::json!([]));
    assert_eq!(scored["missing_inputs"], serde_json::json!([]));
    online_predictions_name_missing_inputs_and_score_rows(&server, &entity, score);
    // An unknown plane: its view is missing, the model still scores.
    let unknown =
        serde_json::json!({"entity": {"tailnum": "NOPE", "carrier": "UA", "origin": "EWR"}});
    let (status, body) =
        server.request("POST", "/v1/predict/late", None, Some(&unknown.to_string()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["missing_views"],
        serde_json::json!(["plane_delays"])
    );
    // Bad requests are named.
    for (request, named) in [
        (r#"{"entity": {"tailnum": "N14228"}}"#, "carrier"),
        (r#"{"values": {"dep_hour": "five"}}"#, "dep_hour"),
        (r#"{"values": {"dep_hours": 5}}"#, "no input `dep_hours`"),
    ] {
        let (status, body) = server.request("POST", "/v1/predict/late", None, Some(request));
        assert_eq!(status, 400, "{request}: {body}");
        assert!(body.contains(named), "{request}: {body}");
    }
    let (status, _) = server.request("POST", "/v1/predict/nope", None, Some("{}"));
    assert_eq!(status, 404);
    let (status, _) = server.request("GET", "/v1/predictions/late/UA0-20130101-EWR", None, None);
    assert_eq!(status, 404);
    model_metrics_over_http(p, &server);
    drop(server);

    // Raise the bar beyond reach: the next version is recorded, not promoted,
    // and version 1 keeps serving; the predictions are untouched.
    let toml = p.join("sluice.toml");
    let text = std::fs::read_to_string(&toml).expect("read");
    std::fs::write(
        &toml,
        text.replace(
            "promote = { auc = { min = 0.65 } }",
            "promote = { auc = { min = 0.99 } }",
        ),
    )
    .expect("write");
    let (done, summary) = run_json(p, &[]);
    assert!(
        done,
        "a model that is not promoted does not fail the run: {summary}"
    );
    let model = asset(&summary, "late");
    assert_eq!(model["status"], "built");
    assert_eq!(model["version"], 1, "version 1 keeps serving");
    assert_eq!(model["warnings"], 1);
    let why = model["error"].as_str().expect("why");
    assert!(
        why.contains("version 2 was not promoted") && why.contains("auc"),
        "{why}"
    );
    assert_eq!(asset(&summary, "late_predictions")["status"], "up_to_date");
    let versions = json(&ok(p, &["model", "late", "--json"]));
    assert_eq!(versions[1]["promoted"], false);
    assert!(
        versions[1]["reason"]
            .as_str()
            .expect("reason")
            .contains("< 0.99"),
        "{}",
        versions[1]
    );
    let server = Server::start(p);
    let (status, body) =
        server.request("POST", "/v1/predict/late", None, Some(&entity.to_string()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["version"], 1);
    assert_eq!(json(&body)["score"].as_f64(), Some(score));
    drop(server);

    // A model that requires its inputs refuses a request that leaves one out,
    // and the setting retrains nothing.
    let text = std::fs::read_to_string(&toml).expect("toml");
    std::fs::write(
        &toml,
        text.replace(
            "label = \"late\"\n",
            "label = \"late\"\nrequire_inputs = true\n",
        ),
    )
    .expect("write");
    let (_, required) = run_json(p, &["late"]);
    assert_eq!(
        asset(&required, "late")["status"],
        "up_to_date",
        "{required}"
    );
    let server = Server::start(p);
    let (status, body) =
        server.request("POST", "/v1/predict/late", None, Some(&entity.to_string()));
    assert_eq!(status, 200, "{body}");
    let without_distance = without(&entity, "distance");
    let (status, body) = server.request(
        "POST",
        "/v1/predict/late",
        None,
        Some(&without_distance.to_string()),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("missing_inputs") && body.contains("distance"),
        "{body}"
    );
    drop(server);
    // Nothing changed: nothing is retrained.
    let (_, again) = run_json(p, &["late"]);
    assert_eq!(asset(&again, "late")["status"], "up_to_date");
    assert_eq!(
        json(&ok(p, &["model", "late", "--json"]))
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Walk-forward over November, by week: retrained before each week, and
    // with the serving version.
    let bt = json(&ok(
        p,
        &[
            "backtest",
            "late",
            "--from",
            "2013-11-01",
            "--to",
            "2013-12-01",
            "--by",
            "week",
            "--top-k",
            "25",
            "--payoff",
            "distance",
            "--stake",
            "100",
            "--json",
        ],
    ));
    let periods = bt["periods"].as_array().expect("periods");
    assert_eq!(periods.len(), 5, "4 weeks and 2 days");
    assert_eq!(bt["mode"], "retrain");
    let mut rows_total = 0;
    for period in periods {
        let rows = period["rows"].as_i64().expect("rows");
        assert!(rows > 0, "{period}");
        rows_total += rows;
        assert!(period["train_rows"].as_i64().expect("trained") > 200_000);
        assert_eq!(period["acted"], 25);
        let rate = period["hit_rate"].as_f64().expect("hit rate");
        assert!((0.0..=1.0).contains(&rate));
        assert!(period["metrics"]["auc"].as_f64().expect("auc") > 0.5);
        assert!(period["return"].is_number());
    }
    let november = scalar(
        p,
        "SELECT count(*) FROM flight_spine WHERE scheduled_at >= TIMESTAMP '2013-11-01T00:00:00Z' AND scheduled_at < TIMESTAMP '2013-12-01T00:00:00Z'",
    );
    assert_eq!(rows_total, november);
    assert_eq!(bt["total"]["acted"], 125);
    let reused = json(&ok(
        p,
        &[
            "backtest",
            "late",
            "--from",
            "2013-11-01",
            "--to",
            "2013-11-15",
            "--reuse",
            "--json",
        ],
    ));
    assert_eq!(reused["mode"], "version 1");
    assert_eq!(reused["periods"][0]["model_version"], 1);
    // Version 1 trained on everything before December: November is in-sample.
    let warning = reused["warnings"][0]
        .as_str()
        .expect("an in-sample warning");
    assert!(warning.contains("in-sample"), "{warning}");
    // Retrained before each week: the overall AUC pools five models.
    let pooled = bt["warnings"][0].as_str().expect("a pooling note");
    assert!(pooled.contains("pool the scores of 5 models"), "{pooled}");
    let picks = periods[0]["picks"].as_array().expect("picks");
    assert_eq!(picks.len(), 25);
    assert!(
        picks
            .windows(2)
            .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64())
    );
    backtests_act_per_event_and_stop_at_the_data(p);
    let out = sluice(
        p,
        &[
            "backtest",
            "late",
            "--from",
            "2013-12-01",
            "--to",
            "2013-11-01",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--to"), "{}", stderr(&out));
}

#[test]
fn a_model_with_no_promoted_version_fails_and_blocks_its_predictions() {
    let dir = flights_copy();
    let p = dir.path();
    let toml = p.join("sluice.toml");
    let text = std::fs::read_to_string(&toml).expect("read");
    std::fs::write(
        &toml,
        text.replace(
            "promote = { auc = { min = 0.65 } }",
            "promote = { auc = { min = 0.999 }, log_loss = { max = 0.01 } }",
        ),
    )
    .expect("write");
    let (done, summary) = run_json(p, &["late_predictions"]);
    assert!(!done);
    let model = asset(&summary, "late");
    assert_eq!(model["status"], "failed");
    let why = model["error"].as_str().expect("why");
    assert!(why.contains("no version of `late` is promoted"), "{why}");
    assert!(why.contains("log_loss"), "{why}");
    let predictions = asset(&summary, "late_predictions");
    assert_eq!(predictions["status"], "blocked");
    let server = Server::start(p);
    let (status, body) = server.request("POST", "/v1/predict/late", None, Some("{}"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no promoted version"), "{body}");
}

/// The ONNX fixtures of `testdata/onnx` (LightGBM exported by onnxmltools).
fn onnx_fixtures() -> std::path::PathBuf {
    crate::common::repo().join("testdata/onnx")
}

#[test]
fn an_imported_onnx_model_is_measured_predicts_in_batch_and_online() {
    if std::env::var_os("SLUICE_ONNXRUNTIME").is_none()
        && std::env::var_os("ORT_DYLIB_PATH").is_none()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must provide ONNX Runtime: pip install onnxruntime and set SLUICE_ONNXRUNTIME to its libonnxruntime.so (.ci/run does)"
        );
        eprintln!("skipped: set SLUICE_ONNXRUNTIME to ONNX Runtime's libonnxruntime.so");
        return;
    }
    // The fixture's 200 rows with an id, a time and a label; the label is the
    // native model's own call, so a correctly run import scores AUC 1.
    let rows = std::fs::read_to_string(onnx_fixtures().join("rows.csv")).expect("rows");
    let expected = std::fs::read_to_string(onnx_fixtures().join("expected.csv")).expect("expected");
    let mut csv = String::from("id,month,day,hour,minute,distance,dep_delay,late\n");
    let mut native = Vec::new();
    for (i, (row, exp)) in rows
        .lines()
        .skip(1)
        .zip(expected.lines().skip(1))
        .enumerate()
    {
        let score: f64 = exp
            .split(',')
            .next()
            .expect("lgbm_binary")
            .parse()
            .expect("score");
        native.push(score);
        csv.push_str(&format!("r{i},{row},{}\n", u8::from(score >= 0.5)));
    }
    let model = std::fs::read(onnx_fixtures().join("lgbm_binary.onnx")).expect("model");
    let dir = crate::common::project(&[
        (
            "sluice.toml",
            br#"[project]
name = "imported"

[sources.rows]
path = "rows.csv"

[tables.spine]
sql = "SELECT *, make_date(2013, month, day) AS day_of FROM rows"

[models.lgbm]
onnx = "lgbm_binary.onnx"
inputs = ["month", "day", "hour", "minute", "distance", "dep_delay"]
spine = "spine"
label = "late"
split = { last = "50%" }
promote = { auc = { min = 0.999 } }

[models.lgbm.predictions]
spine = "spine"
entity = "id"
"#,
        ),
        ("rows.csv", csv.as_bytes()),
        ("lgbm_binary.onnx", &model),
    ]);
    let p = dir.path();
    let (done, summary) = run_json(p, &[]);
    assert!(done, "{summary}");
    assert_eq!(asset(&summary, "lgbm")["version"], 1);
    let versions = json(&ok(p, &["model", "lgbm", "--json"]));
    assert_eq!(versions[0]["learner"], "onnx");
    assert_eq!(versions[0]["promoted"], true, "{}", versions[0]);
    assert_eq!(versions[0]["metrics"]["auc"].as_f64(), Some(1.0));
    assert!(p.join(".sluice/models/lgbm/v1/model.onnx").is_file());

    // Batch scores equal the native model's, row by row.
    let out = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT id, score FROM lgbm_predictions",
        ],
    );
    let mut seen = 0;
    for line in out.lines().skip(1) {
        let (id, score) = line.split_once(',').expect("two columns");
        let i: usize = id.trim_start_matches('r').parse().expect("id");
        let score: f64 = score.parse().expect("score");
        assert!(
            (score - native[i]).abs() < 1e-5,
            "{id}: {score} vs {}",
            native[i]
        );
        seen += 1;
    }
    assert_eq!(seen, 200);

    // Online, from raw values, the same score.
    let server = Server::start(p);
    let first = rows.lines().nth(1).expect("a row");
    let names = ["month", "day", "hour", "minute", "distance", "dep_delay"];
    let values: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(first.split(','))
        .map(|(n, v)| {
            (
                n.to_string(),
                v.parse::<f64>()
                    .map_or(serde_json::Value::Null, |x| x.into()),
            )
        })
        .collect();
    let body = serde_json::json!({ "values": values }).to_string();
    let (status, text) = server.request("POST", "/v1/predict/lgbm", None, Some(&body));
    assert_eq!(status, 200, "{text}");
    let online = json(&text)["score"].as_f64().expect("score");
    assert!(
        (online - native[0]).abs() < 1e-5,
        "{online} vs {}",
        native[0]
    );
    let (status, text) = server.request("GET", "/v1/predictions/lgbm/r0", None, None);
    assert_eq!(status, 200, "{text}");
    assert!((json(&text)["score"].as_f64().expect("score") - native[0]).abs() < 1e-5);
}

/// `GET /v1/models` and `/v1/models/{name}` say what `sluice model` says.
fn model_metrics_over_http(p: &Path, server: &Server) {
    let cli: serde_json::Value =
        serde_json::from_str(&ok(p, &["model", "late", "--json"])).expect("model --json");
    let (status, body) = server.request("GET", "/v1/models", None, None);
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("json");
    let late = &list["models"][0];
    assert_eq!(late["name"], "late", "{list}");
    assert_eq!(late["task"], "binary");
    assert_eq!(late["learner"], "gbdt");
    assert_eq!(late["serving_version"], 1);
    assert_eq!(late["newest_version"], 1);
    assert_eq!(late["predictions"], "late_predictions");
    assert_eq!(late["metrics"], cli[0]["metrics"]);
    assert!(
        late["metrics"]["auc"].as_f64().is_some_and(|a| a > 0.5),
        "{late}"
    );

    let (status, body) = server.request("GET", "/v1/models/late", None, None);
    assert_eq!(status, 200, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body).expect("json");
    let v1 = &detail["versions"][0];
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["serving"], true);
    assert_eq!(v1["promoted"], true);
    assert_eq!(v1["metrics"], cli[0]["metrics"]);
    assert_eq!(v1["train_rows"], cli[0]["train_rows"]);
    assert_eq!(v1["inputs"], cli[0]["inputs"]);
    let importance = v1["importance"].as_array().expect("importance");
    assert_eq!(
        importance.len(),
        cli[0]["importance"].as_array().expect("cli").len()
    );
    assert_eq!(importance[0]["input"], cli[0]["importance"][0][0]);

    let (status, body) = server.request("GET", "/v1/models/nope", None, None);
    assert_eq!(status, 404, "{body}");
}

/// An input nobody gave is listed (and changes the score); many rows score in
/// one request exactly as one by one.
fn online_predictions_name_missing_inputs_and_score_rows(
    server: &Server,
    entity: &serde_json::Value,
    score: f64,
) {
    let json = |body: &str| -> serde_json::Value { serde_json::from_str(body).expect("json") };
    let without_distance = without(entity, "distance");
    let (status, body) = server.request(
        "POST",
        "/v1/predict/late",
        None,
        Some(&without_distance.to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let missing = json(&body);
    assert_eq!(missing["missing_inputs"], serde_json::json!(["distance"]));
    assert_eq!(missing["inputs"]["distance"], serde_json::Value::Null);
    let missing_score = missing["score"].as_f64().expect("score");

    let rows = serde_json::json!({"rows": [entity.clone(), without_distance]});
    let (status, body) = server.request("POST", "/v1/predict/late", None, Some(&rows.to_string()));
    assert_eq!(status, 200, "{body}");
    let batch = json(&body);
    assert_eq!(batch["version"], 1);
    let predictions = batch["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), 2);
    assert_eq!(predictions[0]["score"].as_f64(), Some(score));
    assert_eq!(predictions[1]["score"].as_f64(), Some(missing_score));
    assert_eq!(
        predictions[1]["missing_inputs"],
        serde_json::json!(["distance"])
    );

    // A bad row is named by its place.
    let bad = serde_json::json!({"rows": [entity.clone(), {"values": {"dep_hour": "five"}}]});
    let (status, body) = server.request("POST", "/v1/predict/late", None, Some(&bad.to_string()));
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("rows[1]") && body.contains("dep_hour"),
        "{body}"
    );
    let both = serde_json::json!({"rows": [], "entity": {"carrier": "UA"}});
    let (status, body) = server.request("POST", "/v1/predict/late", None, Some(&both.to_string()));
    assert_eq!(status, 400, "{body}");
}

/// `--group-by` acts on the top k of each event; the picks are listed; periods
/// past the last labelled row are not.
fn backtests_act_per_event_and_stop_at_the_data(p: &Path) {
    let bt: serde_json::Value = serde_json::from_str(&ok(
        p,
        &[
            "backtest",
            "late",
            "--from",
            "2013-11-01",
            "--to",
            "2014-03-01",
            "--by",
            "month",
            "--reuse",
            "--top-k",
            "2",
            "--group-by",
            "origin",
            "--id",
            "flight_id",
            "--json",
        ],
    ))
    .expect("json");
    let periods = bt["periods"].as_array().expect("periods");
    // The flights end in the first hours of 2014 (UTC): February is not listed.
    let starts: Vec<&str> = periods
        .iter()
        .map(|x| x["start"].as_str().expect("start"))
        .collect();
    assert_eq!(
        starts,
        vec![
            "2013-11-01T00:00:00Z",
            "2013-12-01T00:00:00Z",
            "2014-01-01T00:00:00Z"
        ],
        "{bt}"
    );
    assert_eq!(bt["total"]["end"], "2014-02-01T00:00:00Z");
    for period in periods {
        // Three airports, two picks each.
        assert_eq!(period["acted"], 6, "{period}");
        let picks = period["picks"].as_array().expect("picks");
        let mut events: Vec<&str> = picks
            .iter()
            .map(|x| x["event"].as_str().expect("event"))
            .collect();
        events.sort_unstable();
        assert_eq!(events, vec!["EWR", "EWR", "JFK", "JFK", "LGA", "LGA"]);
        for pick in picks {
            let id = pick["id"].as_str().expect("id");
            let label = pick["label"].as_f64().expect("label");
            let listed = scalar(
                p,
                &format!(
                    "SELECT count(*) FROM flight_spine WHERE flight_id = '{id}' AND late = {label}"
                ),
            );
            assert!(listed >= 1, "{pick}");
        }
        let hits = picks.iter().filter(|x| x["label"] == 1.0).count();
        assert_eq!(period["hits"], hits as u64);
    }
}

/// A predict request with one column taken out of its entity.
fn without(request: &serde_json::Value, column: &str) -> serde_json::Value {
    let mut out = request.clone();
    out["entity"]
        .as_object_mut()
        .expect("entity")
        .remove(column);
    out
}
