//! Imported models: an ONNX file run by ONNX Runtime, loaded at run time from
//! its shared library (see [`runtime_library`]).
//!
//! The model takes one float tensor `[rows, inputs]` (the inputs in the order
//! the project lists them, NaN for a missing value) and gives the score in one
//! output: for a binary task the positive column of a `[rows, 2]` tensor of
//! probabilities (or a `[rows]`/`[rows, 1]` tensor as is), for regression the
//! `[rows]`/`[rows, 1]` prediction.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::{DynValue, Outlet, Tensor, TensorElementType, ValueType};
use sluice_project::Task;

use crate::encode::Matrix;
use crate::{Error, Result};

/// An ONNX model ready to run.
pub struct OnnxModel {
    path: PathBuf,
    task: Task,
    /// The input's name and element type (f32 or f64).
    input: String,
    double: bool,
    /// How many columns the input has.
    inputs: usize,
    /// The input's first dimension is fixed at 1 (some exporters do that):
    /// rows are run one at a time.
    one_row: bool,
    /// The output read, and whether it holds f64.
    output: String,
    output_double: bool,
    /// ONNX Runtime's `run` needs exclusive access (some allocators are not
    /// thread safe), so concurrent requests take turns on the one session.
    runner: Mutex<Runner>,
}

struct Runner {
    session: Session,
    /// Computes the score's output only (not the label one beside it).
    options: RunOptions<HasSelectedOutputs>,
}

impl fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("task", &self.task)
            .field("input", &self.input)
            .field("inputs", &self.inputs)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// Where ONNX Runtime's shared library is: `SLUICE_ONNXRUNTIME`, else
/// `ORT_DYLIB_PATH`.
pub fn runtime_library() -> Option<PathBuf> {
    std::env::var_os("SLUICE_ONNXRUNTIME")
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH"))
        .map(PathBuf::from)
}

const INSTALL: &str = "`pip install onnxruntime` and set SLUICE_ONNXRUNTIME=<site-packages>/onnxruntime/capi/libonnxruntime.so.<version>";

/// The process's ONNX Runtime, started on first use. ONNX Runtime allows one
/// environment per process, and a failure is final for the process too.
fn environment() -> Result<&'static Environment, String> {
    static RUNTIME: OnceLock<Result<Environment, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| start(runtime_library()))
        .as_ref()
        .map_err(Clone::clone)
}

fn start(library: Option<PathBuf>) -> Result<Environment, String> {
    let Some(library) = library else {
        return Err(format!(
            "ONNX Runtime is not installed: neither SLUICE_ONNXRUNTIME nor ORT_DYLIB_PATH is set\n  help: {INSTALL}"
        ));
    };
    if !library.is_file() {
        return Err(format!(
            "ONNX Runtime's library {} (from SLUICE_ONNXRUNTIME or ORT_DYLIB_PATH) does not exist\n  help: {INSTALL}",
            library.display()
        ));
    }
    let builder = ort::init_from(&library).map_err(|e| {
        format!(
            "ONNX Runtime's library {} cannot be loaded: {e}\n  help: sluice needs ONNX Runtime 1.{} or newer; {INSTALL}",
            library.display(),
            ort::MINOR_VERSION
        )
    })?;
    builder
        .with_name("sluice")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("ONNX Runtime ({}) did not start: {e}", library.display()))
}

impl OnnxModel {
    /// Loads `path`, checking that it takes one float tensor of `inputs` columns
    /// and has the output the score is read from.
    pub fn load(path: &Path, task: Task, output: Option<&str>, inputs: usize) -> Result<OnnxModel> {
        let file = path.display();
        if !path.is_file() {
            return Err(Error::Onnx(format!(
                "ONNX model {file} does not exist\n  help: check `onnx = \"...\"` in sluice.toml (relative to the project folder)"
            )));
        }
        let env = environment()
            .map_err(|e| Error::Onnx(format!("cannot run the ONNX model {file}: {e}")))?;
        let session = Session::builder(env)
            // An online request scores one row and the server runs requests in
            // parallel: a thread pool per call only adds latency.
            .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(path))
            .map_err(|e| {
                Error::Onnx(format!(
                    "ONNX Runtime cannot load {file}: {e}\n  help: check the file with `python -c 'import onnx, sys; onnx.checker.check_model(sys.argv[1])' FILE`; if an operator or opset is not supported, export with an older `target_opset` or install a newer onnxruntime and point SLUICE_ONNXRUNTIME at it"
                ))
            })?;

        let (input, double, one_row) = check_input(path, session.inputs(), inputs)?;
        let (output, output_double) = pick_output(path, session.outputs(), task, output)?;
        let options = RunOptions::new()
            .map_err(|e| Error::Onnx(format!("{file}: ONNX Runtime: {e}")))?
            .with_outputs(OutputSelector::no_default().with(output.clone()));
        Ok(OnnxModel {
            path: path.to_path_buf(),
            task,
            input,
            double,
            inputs,
            one_row,
            output,
            output_double,
            runner: Mutex::new(Runner { session, options }),
        })
    }

    /// Scores of the rows of `x`.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f64>> {
        let file = self.path.display();
        if x.cols != self.inputs {
            return Err(Error::Onnx(format!(
                "the ONNX model {file} takes {} inputs but was given {} columns",
                self.inputs, x.cols
            )));
        }
        if x.rows == 0 {
            return Ok(Vec::new());
        }
        // ONNX tensors are row-major; the matrix is column-major.
        let row_major: Vec<f64> = (0..x.rows)
            .flat_map(|r| (0..x.cols).map(move |c| x.data[c * x.rows + r]))
            .collect();
        if self.one_row {
            let mut scores = Vec::with_capacity(x.rows);
            for row in row_major.chunks_exact(x.cols) {
                scores.extend(self.run(row, 1)?);
            }
            Ok(scores)
        } else {
            self.run(&row_major, x.rows)
        }
    }

    /// Runs the model on `rows` rows of `values`, row-major.
    fn run(&self, values: &[f64], rows: usize) -> Result<Vec<f64>> {
        let file = self.path.display();
        let failed = |e: ort::Error| {
            Error::Onnx(format!(
                "ONNX Runtime failed to run {file}: {e}\n  help: run the model in Python's onnxruntime on the same rows to see whether the model or sluice is at fault"
            ))
        };
        let shape = [rows, self.inputs];
        let tensor: DynValue = if self.double {
            Tensor::from_array((shape, values.to_vec())).map(Tensor::into_dyn)
        } else {
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            Tensor::from_array((shape, values)).map(Tensor::into_dyn)
        }
        .map_err(failed)?;

        let mut runner = self
            .runner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Runner { session, options } = &mut *runner;
        let outputs = session
            .run_with_options(ort::inputs![self.input.as_str() => tensor], options)
            .map_err(failed)?;
        let value = outputs.get(&self.output).ok_or_else(|| {
            Error::Onnx(format!(
                "ONNX Runtime gave no output `{}` for {file}",
                self.output
            ))
        })?;
        let (dims, values): (Vec<i64>, Vec<f64>) = if self.output_double {
            let (shape, data) = value.try_extract_tensor::<f64>().map_err(failed)?;
            (shape.to_vec(), data.to_vec())
        } else {
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(failed)?;
            (shape.to_vec(), data.iter().map(|&v| f64::from(v)).collect())
        };
        self.scores(&dims, values, rows)
    }

    /// The score column of an output of shape `dims`.
    fn scores(&self, dims: &[i64], values: Vec<f64>, rows: usize) -> Result<Vec<f64>> {
        let width = match dims {
            [n] if *n as usize == rows => 1,
            [n, k] if *n as usize == rows => *k as usize,
            _ => 0,
        };
        match (self.task, width) {
            (_, 1) => Ok(values),
            (Task::Binary, 2) => Ok(values.chunks_exact(2).map(|p| p[1]).collect()),
            _ => Err(Error::Onnx(format!(
                "the ONNX model {}: output `{}` has shape {dims:?} for {rows} rows; a {} model's score is {}\n  help: set `output = \"...\"` in sluice.toml to the output holding the score",
                self.path.display(),
                self.output,
                self.task.as_str(),
                expected_shape(self.task),
            ))),
        }
    }
}

fn expected_shape(task: Task) -> &'static str {
    match task {
        Task::Binary => "[rows, 2] probabilities (column 1 is read), or [rows] / [rows, 1]",
        Task::Regression => "[rows] or [rows, 1]",
    }
}

/// The input's name, whether it is f64 and whether it takes one row at a time,
/// after checking it is the only input and a `[rows, inputs]` float tensor.
fn check_input(path: &Path, outlets: &[Outlet], inputs: usize) -> Result<(String, bool, bool)> {
    let file = path.display();
    let [outlet] = outlets else {
        let names: Vec<&str> = outlets.iter().map(Outlet::name).collect();
        return Err(Error::Onnx(format!(
            "the ONNX model {file} takes {} inputs ({}); sluice feeds one float tensor [rows, {inputs}]\n  help: export the model with a single input, e.g. skl2onnx/onnxmltools `initial_types=[(\"input\", FloatTensorType([None, {inputs}]))]`",
            outlets.len(),
            names.join(", ")
        )));
    };
    let bad = |what: String| {
        Error::Onnx(format!(
            "the ONNX model {file}: input `{}` is {what}; sluice feeds one float tensor [rows, {inputs}] (the {inputs} `inputs` of sluice.toml, in order)\n  help: export the model with `initial_types=[(\"input\", FloatTensorType([None, {inputs}]))]`",
            outlet.name()
        ))
    };
    let ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
        return Err(bad(format!("a {}", outlet.dtype())));
    };
    let double = match ty {
        TensorElementType::Float32 => false,
        TensorElementType::Float64 => true,
        other => return Err(bad(format!("a tensor of {other}"))),
    };
    match **shape {
        [_, n] if n == inputs as i64 || n < 0 => {}
        [_, n] => {
            return Err(Error::Onnx(format!(
                "the ONNX model {file} takes {n} input columns, but sluice.toml lists {inputs} `inputs`\n  help: list the model's inputs in the order it was trained on them"
            )));
        }
        _ => return Err(bad(format!("a tensor of shape {shape}"))),
    }
    if shape[0] > 1 {
        return Err(bad(format!(
            "a tensor of shape {shape}: a fixed number of rows"
        )));
    }
    Ok((outlet.name().to_string(), double, shape[0] == 1))
}

/// The output the score is read from, and whether it is f64: `output` if
/// given, else `probabilities` or the last float tensor (binary), or the first
/// output (regression).
fn pick_output(
    path: &Path,
    outlets: &[Outlet],
    task: Task,
    output: Option<&str>,
) -> Result<(String, bool)> {
    let file = path.display();
    let names = || {
        outlets
            .iter()
            .map(|o| format!("`{}` ({})", o.name(), o.dtype()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let is_float = |o: &&Outlet| {
        matches!(
            o.dtype(),
            ValueType::Tensor {
                ty: TensorElementType::Float32 | TensorElementType::Float64,
                ..
            }
        )
    };
    let outlet = match (output, task) {
        (Some(name), _) => outlets.iter().find(|o| o.name() == name).ok_or_else(|| {
            Error::Onnx(format!(
                "the ONNX model {file} has no output `{name}`; its outputs are {}\n  help: set `output = \"...\"` in sluice.toml to one of them",
                names()
            ))
        })?,
        (None, Task::Binary) => outlets
            .iter()
            .find(|o| o.name() == "probabilities" && is_float(o))
            .or_else(|| outlets.iter().rev().find(is_float))
            .ok_or_else(|| no_float_output(path, outlets, &names()))?,
        (None, Task::Regression) => outlets.first().ok_or_else(|| {
            Error::Onnx(format!("the ONNX model {file} has no outputs\n  help: export it again"))
        })?,
    };
    match outlet.dtype() {
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            ..
        } => Ok((outlet.name().to_string(), false)),
        ValueType::Tensor {
            ty: TensorElementType::Float64,
            ..
        } => Ok((outlet.name().to_string(), true)),
        ValueType::Sequence(item) if matches!(**item, ValueType::Map { .. }) => {
            Err(zipmap(path, outlet.name()))
        }
        other => Err(Error::Onnx(format!(
            "the ONNX model {file}: output `{}` is a {other}, not a float tensor of scores; its outputs are {}\n  help: set `output = \"...\"` in sluice.toml to the float output holding the score",
            outlet.name(),
            names()
        ))),
    }
}

fn no_float_output(path: &Path, outlets: &[Outlet], names: &str) -> Error {
    let zipped = outlets
        .iter()
        .find(|o| matches!(o.dtype(), ValueType::Sequence(item) if matches!(**item, ValueType::Map { .. })));
    match zipped {
        Some(o) => zipmap(path, o.name()),
        None => Error::Onnx(format!(
            "the ONNX model {} has no float tensor output to read a probability from; its outputs are {names}\n  help: export the classifier's probabilities as a float tensor [rows, 2]",
            path.display()
        )),
    }
}

fn zipmap(path: &Path, output: &str) -> Error {
    Error::Onnx(format!(
        "the ONNX model {}: output `{output}` is a sequence of maps (a ZipMap), which sluice does not read\n  help: export the classifier without ZipMap: skl2onnx `options={{id(model): {{\"zipmap\": False}}}}`, onnxmltools `zipmap=False`; then the probabilities are a float tensor named `probabilities`",
        path.display()
    ))
}

#[cfg(test)]
mod tests;
