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
use std::sync::{Arc, Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::{DynValue, Outlet, Tensor, TensorElementType, ValueType};
use sluice_project::Task;

use crate::Result;
use crate::encode::Matrix;

mod error;

pub use error::OnnxError;

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
pub fn environment() -> Result<&'static Environment, Arc<OnnxError>> {
    static RUNTIME: OnceLock<Result<Environment, Arc<OnnxError>>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| start(runtime_library()).map_err(Arc::new))
        .as_ref()
        .map_err(Arc::clone)
}

fn start(library: Option<PathBuf>) -> Result<Environment, OnnxError> {
    let Some(library) = library else {
        return Err(OnnxError::RuntimeNotInstalled);
    };
    if !library.is_file() {
        return Err(OnnxError::RuntimeMissing { library });
    }
    let builder = match ort::init_from(&library) {
        Ok(b) => b,
        Err(source) => return Err(OnnxError::LoadRuntime { library, source }),
    };
    builder
        .with_name("sluice")
        .with_telemetry(false)
        .build()
        .map_err(|source| OnnxError::StartRuntime { library, source })
}

impl OnnxModel {
    /// Loads `path`, checking that it takes one float tensor of `inputs` columns
    /// and has the output the score is read from.
    pub fn load(path: &Path, task: Task, output: Option<&str>, inputs: usize) -> Result<OnnxModel> {
        if !path.is_file() {
            return Err(OnnxError::FileMissing {
                path: path.to_path_buf(),
            }
            .into());
        }
        let env = environment().map_err(|source| OnnxError::Runtime {
            path: path.to_path_buf(),
            source,
        })?;
        let session = Session::builder(env)
            // An online request scores one row and the server runs requests in
            // parallel: a thread pool per call only adds latency.
            .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(path))
            .map_err(|source| OnnxError::LoadModel {
                path: path.to_path_buf(),
                source,
            })?;

        let (input, double, one_row) = check_input(path, session.inputs(), inputs)?;
        let (output, output_double) = pick_output(path, session.outputs(), task, output)?;
        let options = RunOptions::new()
            .map_err(|source| OnnxError::RunOptions {
                path: path.to_path_buf(),
                source,
            })?
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
        if x.cols != self.inputs {
            return Err(OnnxError::InputWidth {
                path: self.path.clone(),
                inputs: self.inputs,
                given: x.cols,
            }
            .into());
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
        let failed = |source: ort::Error| OnnxError::Run {
            path: self.path.clone(),
            source,
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
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| OnnxError::NoOutputValue {
                path: self.path.clone(),
                output: self.output.clone(),
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
            _ => Err(OnnxError::OutputShape {
                path: self.path.clone(),
                output: self.output.clone(),
                dims: dims.to_vec(),
                rows,
                task: self.task,
            }
            .into()),
        }
    }
}

/// The input's name, whether it is f64 and whether it takes one row at a time,
/// after checking it is the only input and a `[rows, inputs]` float tensor.
fn check_input(
    path: &Path,
    outlets: &[Outlet],
    inputs: usize,
) -> Result<(String, bool, bool), OnnxError> {
    let [outlet] = outlets else {
        let names: Vec<&str> = outlets.iter().map(Outlet::name).collect();
        return Err(OnnxError::Inputs {
            path: path.to_path_buf(),
            count: outlets.len(),
            names: names.join(", "),
            inputs,
        });
    };
    let bad = |found: String| OnnxError::InputType {
        path: path.to_path_buf(),
        input: outlet.name().to_string(),
        found,
        inputs,
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
            return Err(OnnxError::InputColumns {
                path: path.to_path_buf(),
                columns: n,
                inputs,
            });
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
) -> Result<(String, bool), OnnxError> {
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
    let outlet =
        match (output, task) {
            (Some(name), _) => outlets.iter().find(|o| o.name() == name).ok_or_else(|| {
                OnnxError::NoSuchOutput {
                    path: path.to_path_buf(),
                    output: name.to_string(),
                    outputs: names(),
                }
            })?,
            (None, Task::Binary) => outlets
                .iter()
                .find(|o| o.name() == "probabilities" && is_float(o))
                .or_else(|| outlets.iter().rev().find(is_float))
                .ok_or_else(|| no_float_output(path, outlets, &names()))?,
            (None, Task::Regression) => outlets.first().ok_or_else(|| OnnxError::NoOutputs {
                path: path.to_path_buf(),
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
        other => Err(OnnxError::OutputType {
            path: path.to_path_buf(),
            output: outlet.name().to_string(),
            found: other.to_string(),
            outputs: names(),
        }),
    }
}

fn no_float_output(path: &Path, outlets: &[Outlet], names: &str) -> OnnxError {
    let zipped = outlets
        .iter()
        .find(|o| matches!(o.dtype(), ValueType::Sequence(item) if matches!(**item, ValueType::Map { .. })));
    match zipped {
        Some(o) => zipmap(path, o.name()),
        None => OnnxError::NoFloatOutput {
            path: path.to_path_buf(),
            outputs: names.to_string(),
        },
    }
}

fn zipmap(path: &Path, output: &str) -> OnnxError {
    OnnxError::ZipMap {
        path: path.to_path_buf(),
        output: output.to_string(),
    }
}

#[cfg(test)]
mod tests;
