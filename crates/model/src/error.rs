//! What can go wrong while training, loading or running a model.

use std::path::PathBuf;

use sluice_core::ErrorClass;

use crate::onnx::OnnxError;

/// An error of the model stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A column the model needs is not in the data.
    #[error("no column `{column}` in {what}\n  help: its columns are: {columns}")]
    MissingColumn {
        /// The column.
        column: String,
        /// What was searched (`the training set`, `the spine`...).
        what: String,
        /// The columns there are.
        columns: String,
    },
    /// A column has a type no learner reads.
    #[error(
        "column `{column}` is {data_type}; models read numbers, booleans and text\n  help: {help}"
    )]
    ColumnType {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: String,
        /// What to do.
        help: String,
    },
    /// A column changed kind between training and prediction.
    #[error(
        "column `{column}` was {trained} when the model was trained, but is {now} now\n  help: retrain the model (`sluice run`), or cast the column back"
    )]
    KindChanged {
        /// The column.
        column: String,
        /// Its kind at training.
        trained: &'static str,
        /// Its kind now.
        now: &'static str,
    },
    /// A label is not usable for the task.
    #[error("label `{column}`, row {row}: {problem}\n  help: {help}")]
    Label {
        /// The label column.
        column: String,
        /// The row (1-based, in the training set's order).
        row: usize,
        /// What is wrong.
        problem: String,
        /// What to do.
        help: String,
    },
    /// Encoding or scoring was given other columns than the model's inputs.
    #[error(
        "the model reads the columns {} but was given {}",
        expected.join(", "),
        given.join(", ")
    )]
    InputColumns {
        /// The model's inputs, in order.
        expected: Vec<String>,
        /// The columns given, in order.
        given: Vec<String>,
    },
    /// Training found no row before the split.
    #[error(
        "the training split has no rows\n  help: move the split (`split = {{ before = ... }}`) or add rows to the spine"
    )]
    EmptyTrainingSplit,
    /// A binary model's training split has one class only.
    #[error(
        "the training split has only one class ({rows} rows, all {class})\n  help: a binary label needs both 0 and 1 before the split"
    )]
    OneClass {
        /// Rows in the training split.
        rows: usize,
        /// The one class there is (0 or 1).
        class: u8,
    },
    /// `train` was asked to fit an imported (ONNX) model.
    #[error("an ONNX model is imported, not trained")]
    TrainImported,
    /// The learner failed.
    #[error("training `{learner}` failed: {source}")]
    Fit {
        /// The learner.
        learner: &'static str,
        /// The learner's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// An ONNX model could not be loaded or run.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// The model could not be serialized to JSON.
    #[error("model file {}: {source}", path.display())]
    EncodeModel {
        /// The file.
        path: PathBuf,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The model file could not be written.
    #[error("model file {}: {source}", path.display())]
    WriteModel {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The model file could not be read.
    #[error("model file {}: {source}", path.display())]
    ReadModel {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The model file is not a model's JSON.
    #[error("model file {}: {source}", path.display())]
    DecodeModel {
        /// The file.
        path: PathBuf,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The model file was written by a sluice with another format.
    #[error(
        "model file {}: format `{format}`, this sluice reads `{}`; retrain the model",
        path.display(),
        crate::MODEL_FORMAT
    )]
    ModelFormat {
        /// The file.
        path: PathBuf,
        /// The format the file says it has.
        format: String,
    },
    /// Arrow could not convert a column.
    #[error("column `{column}`: {source}")]
    Arrow {
        /// The column.
        column: String,
        /// Arrow's error.
        #[source]
        source: datafusion::arrow::error::ArrowError,
    },
}

impl Error {
    /// Whether training or scoring again may succeed: only reading or writing
    /// the model file can fail for a passing reason (a network disk timing
    /// out); data, learners and ONNX files fail the same way every time.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::WriteModel { source, .. } | Error::ReadModel { source, .. } => {
                ErrorClass::of_io(source)
            }
            Error::Arrow { source, .. } => ErrorClass::of_error(source),
            Error::Onnx(e) => e.class(),
            Error::MissingColumn { .. }
            | Error::ColumnType { .. }
            | Error::KindChanged { .. }
            | Error::Label { .. }
            | Error::InputColumns { .. }
            | Error::EmptyTrainingSplit
            | Error::OneClass { .. }
            | Error::TrainImported
            | Error::Fit { .. }
            | Error::EncodeModel { .. }
            | Error::DecodeModel { .. }
            | Error::ModelFormat { .. } => ErrorClass::Permanent,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_file_on_a_disk_that_times_out_is_transient() {
        let e = Error::WriteModel {
            path: "models/churn/v3/model.json".into(),
            source: std::io::Error::from(std::io::ErrorKind::TimedOut),
        };
        assert_eq!(e.class(), ErrorClass::Transient);
        let e = Error::ReadModel {
            path: "models/churn/v3/model.json".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(e.class(), ErrorClass::Permanent);
    }

    #[test]
    fn data_that_cannot_train_is_permanent() {
        assert_eq!(Error::EmptyTrainingSplit.class(), ErrorClass::Permanent);
        assert_eq!(
            Error::OneClass { rows: 3, class: 1 }.class(),
            ErrorClass::Permanent
        );
        let missing = OnnxError::FileMissing {
            path: "model.onnx".into(),
        };
        assert_eq!(Error::from(missing).class(), ErrorClass::Permanent);
    }

    #[test]
    fn messages_are_unchanged() {
        assert_eq!(
            Error::EmptyTrainingSplit.to_string(),
            "the training split has no rows\n  help: move the split (`split = { before = ... }`) or add rows to the spine"
        );
        assert_eq!(
            Error::OneClass { rows: 4, class: 0 }.to_string(),
            "the training split has only one class (4 rows, all 0)\n  help: a binary label needs both 0 and 1 before the split"
        );
        assert_eq!(
            Error::InputColumns {
                expected: vec!["a".into(), "b".into()],
                given: vec!["b".into()],
            }
            .to_string(),
            "the model reads the columns a, b but was given b"
        );
        assert_eq!(
            Error::ModelFormat {
                path: "m/model.json".into(),
                format: "x".into(),
            }
            .to_string(),
            "model file m/model.json: format `x`, this sluice reads `sluice-model-1`; retrain the model"
        );
    }
}
