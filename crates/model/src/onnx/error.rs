//! What can go wrong with an imported model: ONNX Runtime missing or refusing
//! to start, a file it cannot load or run, or a model whose inputs and outputs
//! are not the one float tensor in and the score out that sluice feeds and reads.

use std::path::PathBuf;
use std::sync::Arc;

use sluice_core::ErrorClass;
use sluice_project::Task;

use super::INSTALL;

/// Why an ONNX model cannot be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// Neither variable names ONNX Runtime's library.
    #[error(
        "ONNX Runtime is not installed: neither SLUICE_ONNXRUNTIME nor ORT_DYLIB_PATH is set\n  help: {INSTALL}"
    )]
    RuntimeNotInstalled,
    /// The library the variables name is not a file.
    #[error(
        "ONNX Runtime's library {} (from SLUICE_ONNXRUNTIME or ORT_DYLIB_PATH) does not exist\n  help: {INSTALL}",
        library.display()
    )]
    RuntimeMissing {
        /// The library's path.
        library: PathBuf,
    },
    /// The library could not be loaded (not a library, too old).
    #[error(
        "ONNX Runtime's library {} cannot be loaded: {source}\n  help: sluice needs ONNX Runtime 1.{} or newer; {INSTALL}",
        library.display(),
        ort::MINOR_VERSION
    )]
    LoadRuntime {
        /// The library's path.
        library: PathBuf,
        /// ort's reason.
        #[source]
        source: ort::LoadDynamicError,
    },
    /// The library loaded but its environment did not start.
    #[error("ONNX Runtime ({}) did not start: {source}", library.display())]
    StartRuntime {
        /// The library's path.
        library: PathBuf,
        /// ONNX Runtime's reason.
        #[source]
        source: ort::Error,
    },
    /// A model needs the runtime, which failed to start (once for the process).
    #[error("cannot run the ONNX model {}: {source}", path.display())]
    Runtime {
        /// The model file.
        path: PathBuf,
        /// Why the runtime is not there; shared by every model of the process.
        #[source]
        source: Arc<OnnxError>,
    },
    /// The model file is not there.
    #[error(
        "ONNX model {} does not exist\n  help: check `onnx = \"...\"` in sluice.toml (relative to the project folder)",
        path.display()
    )]
    FileMissing {
        /// The model file.
        path: PathBuf,
    },
    /// ONNX Runtime refused the file.
    #[error(
        "ONNX Runtime cannot load {}: {source}\n  help: check the file with `python -c 'import onnx, sys; onnx.checker.check_model(sys.argv[1])' FILE`; if an operator or opset is not supported, export with an older `target_opset` or install a newer onnxruntime and point SLUICE_ONNXRUNTIME at it",
        path.display()
    )]
    LoadModel {
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's reason.
        #[source]
        source: ort::Error,
    },
    /// The run options (which output to compute) could not be made.
    #[error("{}: ONNX Runtime: {source}", path.display())]
    RunOptions {
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's reason.
        #[source]
        source: ort::Error,
    },
    /// A saved model names an ONNX file that was not loaded with it.
    #[error("the ONNX model {file} was not loaded")]
    NotLoaded {
        /// The file's name, as the saved model has it.
        file: String,
    },
    /// An imported model's input is text.
    #[error(
        "ONNX input `{input}` is text; an imported model reads numbers only\n  help: encode it as a number in the spine's SQL"
    )]
    TextInput {
        /// The input.
        input: String,
    },
    /// Scoring was given another number of columns than the model takes.
    #[error(
        "the ONNX model {} takes {inputs} inputs but was given {given} columns",
        path.display()
    )]
    InputWidth {
        /// The model file.
        path: PathBuf,
        /// Columns the model takes.
        inputs: usize,
        /// Columns given.
        given: usize,
    },
    /// ONNX Runtime failed while running the model.
    #[error(
        "ONNX Runtime failed to run {}: {source}\n  help: run the model in Python's onnxruntime on the same rows to see whether the model or sluice is at fault",
        path.display()
    )]
    Run {
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's reason.
        #[source]
        source: ort::Error,
    },
    /// The run gave no value for the output read.
    #[error("ONNX Runtime gave no output `{output}` for {}", path.display())]
    NoOutputValue {
        /// The model file.
        path: PathBuf,
        /// The output.
        output: String,
    },
    /// The score's output has a shape sluice cannot read scores from.
    #[error(
        "the ONNX model {}: output `{output}` has shape {dims:?} for {rows} rows; a {} model's score is {}\n  help: set `output = \"...\"` in sluice.toml to the output holding the score",
        path.display(),
        task.as_str(),
        expected_shape(*task)
    )]
    OutputShape {
        /// The model file.
        path: PathBuf,
        /// The output.
        output: String,
        /// Its shape.
        dims: Vec<i64>,
        /// Rows scored.
        rows: usize,
        /// The model's task.
        task: Task,
    },
    /// The model takes several inputs.
    #[error(
        "the ONNX model {} takes {count} inputs ({names}); sluice feeds one float tensor [rows, {inputs}]\n  help: export the model with a single input, e.g. skl2onnx/onnxmltools `initial_types=[(\"input\", FloatTensorType([None, {inputs}]))]`",
        path.display()
    )]
    Inputs {
        /// The model file.
        path: PathBuf,
        /// How many inputs it takes.
        count: usize,
        /// Their names, comma-separated.
        names: String,
        /// The columns sluice feeds.
        inputs: usize,
    },
    /// The one input is not a `[rows, inputs]` float tensor.
    #[error(
        "the ONNX model {}: input `{input}` is {found}; sluice feeds one float tensor [rows, {inputs}] (the {inputs} `inputs` of sluice.toml, in order)\n  help: export the model with `initial_types=[(\"input\", FloatTensorType([None, {inputs}]))]`",
        path.display()
    )]
    InputType {
        /// The model file.
        path: PathBuf,
        /// The input's name.
        input: String,
        /// What it is instead (`a tensor of int64`...).
        found: String,
        /// The columns sluice feeds.
        inputs: usize,
    },
    /// The input tensor's width differs from the `inputs` listed.
    #[error(
        "the ONNX model {} takes {columns} input columns, but sluice.toml lists {inputs} `inputs`\n  help: list the model's inputs in the order it was trained on them",
        path.display()
    )]
    InputColumns {
        /// The model file.
        path: PathBuf,
        /// The columns the model takes.
        columns: i64,
        /// The inputs sluice.toml lists.
        inputs: usize,
    },
    /// `output` names no output of the model.
    #[error(
        "the ONNX model {} has no output `{output}`; its outputs are {outputs}\n  help: set `output = \"...\"` in sluice.toml to one of them",
        path.display()
    )]
    NoSuchOutput {
        /// The model file.
        path: PathBuf,
        /// The output asked for.
        output: String,
        /// The outputs there are, described.
        outputs: String,
    },
    /// A regression model has no output at all.
    #[error("the ONNX model {} has no outputs\n  help: export it again", path.display())]
    NoOutputs {
        /// The model file.
        path: PathBuf,
    },
    /// The output read is not a float tensor.
    #[error(
        "the ONNX model {}: output `{output}` is a {found}, not a float tensor of scores; its outputs are {outputs}\n  help: set `output = \"...\"` in sluice.toml to the float output holding the score",
        path.display()
    )]
    OutputType {
        /// The model file.
        path: PathBuf,
        /// The output.
        output: String,
        /// What it is instead.
        found: String,
        /// The outputs there are, described.
        outputs: String,
    },
    /// A classifier has no float tensor to read a probability from.
    #[error(
        "the ONNX model {} has no float tensor output to read a probability from; its outputs are {outputs}\n  help: export the classifier's probabilities as a float tensor [rows, 2]",
        path.display()
    )]
    NoFloatOutput {
        /// The model file.
        path: PathBuf,
        /// The outputs there are, described.
        outputs: String,
    },
    /// The probabilities are a ZipMap (a sequence of maps).
    #[error(
        "the ONNX model {}: output `{output}` is a sequence of maps (a ZipMap), which sluice does not read\n  help: export the classifier without ZipMap: skl2onnx `options={{id(model): {{\"zipmap\": False}}}}`, onnxmltools `zipmap=False`; then the probabilities are a float tensor named `probabilities`",
        path.display()
    )]
    ZipMap {
        /// The model file.
        path: PathBuf,
        /// The output.
        output: String,
    },
}

impl OnnxError {
    /// Whether loading or running again may succeed. A missing or refused
    /// runtime or file, and a model of the wrong shape, stay so until someone
    /// changes them; ONNX Runtime's own failures are not told apart by kind.
    pub fn class(&self) -> ErrorClass {
        match self {
            OnnxError::Runtime { source, .. } => source.class(),
            OnnxError::RuntimeNotInstalled
            | OnnxError::RuntimeMissing { .. }
            | OnnxError::LoadRuntime { .. }
            | OnnxError::StartRuntime { .. }
            | OnnxError::FileMissing { .. }
            | OnnxError::LoadModel { .. }
            | OnnxError::RunOptions { .. }
            | OnnxError::NotLoaded { .. }
            | OnnxError::TextInput { .. }
            | OnnxError::InputWidth { .. }
            | OnnxError::Run { .. }
            | OnnxError::NoOutputValue { .. }
            | OnnxError::OutputShape { .. }
            | OnnxError::Inputs { .. }
            | OnnxError::InputType { .. }
            | OnnxError::InputColumns { .. }
            | OnnxError::NoSuchOutput { .. }
            | OnnxError::NoOutputs { .. }
            | OnnxError::OutputType { .. }
            | OnnxError::NoFloatOutput { .. }
            | OnnxError::ZipMap { .. } => ErrorClass::Permanent,
        }
    }
}

fn expected_shape(task: Task) -> &'static str {
    match task {
        Task::Binary => "[rows, 2] probabilities (column 1 is read), or [rows] / [rows, 1]",
        Task::Regression => "[rows] or [rows, 1]",
    }
}
