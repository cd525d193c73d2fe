//! What can go wrong while training, loading or running a model.

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
    /// The data cannot train a model (empty split, one class...).
    #[error("{0}")]
    Data(String),
    /// The learner failed.
    #[error("training `{learner}` failed: {message}")]
    Fit {
        /// The learner.
        learner: &'static str,
        /// Its message.
        message: String,
    },
    /// ONNX Runtime could not be loaded, or the model could not be run.
    #[error("{0}")]
    Onnx(String),
    /// The saved model could not be read or written.
    #[error("model file {path}: {message}")]
    Artifact {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
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

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
