//! Parity of imported models with their native Python originals (fixtures in
//! `testdata/onnx`), and the errors for files ONNX Runtime or sluice cannot run.

use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/onnx");

/// Whether ONNX Runtime is there; if not, a test skips it, except on CI.
fn have_runtime() -> bool {
    if runtime_library().is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "ONNX Runtime is needed on CI: {INSTALL} (.ci/run does this)"
    );
    eprintln!("skipped: no ONNX Runtime (set SLUICE_ONNXRUNTIME to run this test; {INSTALL})");
    false
}

fn fixture(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// A CSV of numbers with a header; an empty field is NaN.
fn read_csv(name: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture");
    let mut lines = text.lines();
    let header = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|line| {
            line.split(',')
                .map(|v| {
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        v.parse().expect("number")
                    }
                })
                .collect()
        })
        .collect();
    (header, rows)
}

fn rows() -> Matrix {
    let (header, rows) = read_csv("rows.csv");
    let cols = header.len();
    let data = (0..cols)
        .flat_map(|c| rows.iter().map(move |r| r[c]))
        .collect();
    Matrix {
        data,
        rows: rows.len(),
        cols,
    }
}

fn expected(column: &str) -> Vec<f64> {
    let (header, rows) = read_csv("expected.csv");
    let c = header.iter().position(|h| h == column).expect("column");
    rows.iter().map(|r| r[c]).collect()
}

/// ONNX Runtime computes in f32: compare to 1e-5, relative beyond 1.
fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    let mut compared = 0;
    for (row, (g, w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            continue; // the native model cannot score this row
        }
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "row {row}: ONNX {g}, native {w}"
        );
        compared += 1;
    }
    assert!(compared >= 190, "only {compared} rows compared");
}

#[test]
fn lightgbm_classifier_matches_native_probabilities() {
    if !have_runtime() {
        return;
    }
    let model = OnnxModel::load(&fixture("lgbm_binary.onnx"), Task::Binary, None, 6).expect("load");
    assert_eq!(model.output, "probabilities");
    let x = rows();
    assert!(
        x.data.iter().any(|v| v.is_nan()),
        "the rows include missing values"
    );
    assert_close(
        &model.predict(&x).expect("predict"),
        &expected("lgbm_binary"),
    );
}

#[test]
fn sklearn_scaler_and_logistic_regression_match_native_probabilities() {
    if !have_runtime() {
        return;
    }
    let model = OnnxModel::load(
        &fixture("logistic.onnx"),
        Task::Binary,
        Some("probabilities"),
        6,
    )
    .expect("load");
    assert_close(
        &model.predict(&rows()).expect("predict"),
        &expected("logistic"),
    );
}

#[test]
fn lightgbm_regressor_matches_native_predictions() {
    if !have_runtime() {
        return;
    }
    let model =
        OnnxModel::load(&fixture("lgbm_regression.onnx"), Task::Regression, None, 6).expect("load");
    assert_eq!(model.output, "variable");
    assert_close(
        &model.predict(&rows()).expect("predict"),
        &expected("lgbm_regression"),
    );
}

#[test]
fn one_row_and_no_rows() {
    if !have_runtime() {
        return;
    }
    let model = OnnxModel::load(&fixture("lgbm_binary.onnx"), Task::Binary, None, 6).expect("load");
    let all = rows();
    let want = expected("lgbm_binary");
    for r in [0, 7, all.rows - 1] {
        let data = (0..all.cols).map(|c| all.data[c * all.rows + r]).collect();
        let one = Matrix {
            data,
            rows: 1,
            cols: all.cols,
        };
        assert_close_one(model.predict(&one).expect("predict")[0], want[r]);
    }
    let none = Matrix {
        data: Vec::new(),
        rows: 0,
        cols: 6,
    };
    assert!(model.predict(&none).expect("predict").is_empty());
}

#[test]
fn a_model_fixed_at_one_row_is_run_row_by_row() {
    if !have_runtime() {
        return;
    }
    let model =
        OnnxModel::load(&fixture("logistic_one_row.onnx"), Task::Binary, None, 6).expect("load");
    assert!(model.one_row);
    assert_close(
        &model.predict(&rows()).expect("predict"),
        &expected("logistic"),
    );
}

fn assert_close_one(got: f64, want: f64) {
    assert!((got - want).abs() <= 1e-5, "ONNX {got}, native {want}");
}

#[test]
fn shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<OnnxModel>();
    if !have_runtime() {
        return;
    }
    let model = Arc::new(
        OnnxModel::load(&fixture("lgbm_regression.onnx"), Task::Regression, None, 6).expect("load"),
    );
    let want = expected("lgbm_regression");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let model = model.clone();
            std::thread::spawn(move || model.predict(&rows()).expect("predict"))
        })
        .collect();
    for h in handles {
        assert_close(&h.join().expect("thread"), &want);
    }
}

fn load_error(name: &str, task: Task, output: Option<&str>, inputs: usize) -> String {
    OnnxModel::load(&fixture(name), task, output, inputs)
        .expect_err("an error")
        .to_string()
}

#[test]
fn missing_file_is_named() {
    let e = load_error("nope.onnx", Task::Binary, None, 6);
    assert!(
        e.contains("nope.onnx") && e.contains("does not exist"),
        "{e}"
    );
    assert!(e.contains("help: check `onnx"), "{e}");
}

#[test]
fn wrong_input_count_says_what_to_list() {
    if !have_runtime() {
        return;
    }
    let e = load_error("lgbm_binary.onnx", Task::Binary, None, 5);
    assert!(
        e.contains("lgbm_binary.onnx") && e.contains("takes 6 input columns"),
        "{e}"
    );
    assert!(e.contains("lists 5 `inputs`") && e.contains("help:"), "{e}");
}

#[test]
fn zipmap_output_says_to_export_without_it() {
    if !have_runtime() {
        return;
    }
    for output in [None, Some("output_probability")] {
        let e = load_error("logistic_zipmap.onnx", Task::Binary, output, 6);
        assert!(
            e.contains("logistic_zipmap.onnx") && e.contains("`output_probability`"),
            "{e}"
        );
        assert!(e.contains("ZipMap") && e.contains("zipmap=False"), "{e}");
    }
}

#[test]
fn unknown_or_label_output_lists_the_outputs() {
    if !have_runtime() {
        return;
    }
    let e = load_error("logistic.onnx", Task::Binary, Some("score"), 6);
    assert!(
        e.contains("no output `score`") && e.contains("`probabilities`"),
        "{e}"
    );
    let e = load_error("logistic.onnx", Task::Binary, Some("label"), 6);
    assert!(e.contains("`label` is a Tensor<i64>"), "{e}");
    // A regression reads [rows] or [rows, 1], not two columns of probabilities.
    let model = OnnxModel::load(
        &fixture("logistic.onnx"),
        Task::Regression,
        Some("probabilities"),
        6,
    )
    .expect("load");
    let e = model.predict(&rows()).expect_err("an error").to_string();
    assert!(
        e.contains("shape [200, 2]") && e.contains("help: set `output"),
        "{e}"
    );
}

#[test]
fn not_an_onnx_file_gives_onnx_runtimes_message() {
    if !have_runtime() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.onnx");
    std::fs::write(&path, b"not a protobuf").expect("write");
    let e = OnnxModel::load(&path, Task::Binary, None, 6)
        .expect_err("an error")
        .to_string();
    assert!(
        e.starts_with(&format!("ONNX Runtime cannot load {}: ", path.display())),
        "{e}"
    );
    assert!(e.contains("help:"), "{e}");
}

#[test]
fn missing_runtime_says_how_to_install_it() {
    let e = start(None).expect_err("an error").to_string();
    assert!(
        e.contains("SLUICE_ONNXRUNTIME") && e.contains("ORT_DYLIB_PATH"),
        "{e}"
    );
    assert!(e.contains("pip install onnxruntime"), "{e}");
    let e = start(Some(PathBuf::from("/nowhere/libonnxruntime.so.1.99.0")))
        .expect_err("an error")
        .to_string();
    assert!(
        e.contains("/nowhere/libonnxruntime.so.1.99.0") && e.contains("does not exist"),
        "{e}"
    );
    assert!(e.contains("pip install onnxruntime"), "{e}");
}
