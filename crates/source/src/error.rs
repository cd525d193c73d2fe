//! Errors of reading sources. Each names the file and, when known, line and column.

use std::path::PathBuf;

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path or glob matched no file.
    #[error(
        "no file matches `{pattern}`\n  help: check the source's `path`; it is relative to the project folder"
    )]
    NoFiles {
        /// The path or glob.
        pattern: String,
    },
    /// The files of a glob could not be listed.
    #[error("cannot list files for `{pattern}`: {message}")]
    ListFiles {
        /// The glob.
        pattern: String,
        /// Why.
        message: String,
    },
    /// A file could not be opened or read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file holds no data at all.
    #[error("{}: the file is empty\n  help: remove it, or write at least a header line", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A column's type in `columns` is not a type word sluice knows.
    #[error(
        "column `{column}`: unknown type `{word}`\n  help: use one of string, bool, int8, int16, int32, int64, float32, float64, date, timestamp, decimal(P,S)"
    )]
    UnknownType {
        /// The column.
        column: String,
        /// The word as written.
        word: String,
    },
    /// `columns` names a column the file does not have.
    #[error("{}: `columns` names `{column}`, but the file has no such column (it has: {available})", path.display())]
    UnknownColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The columns the file has.
        available: String,
    },
    /// The files of one source do not have the same columns.
    #[error("{}: {message}\n  help: every file of a source must have the same columns", path.display())]
    SchemaMismatch {
        /// The file that differs from the first.
        path: PathBuf,
        /// How it differs.
        message: String,
    },
    /// A record could not be read. `line` and `column` are 1-based; 0 when unknown.
    #[error("{}{}: {message}{}", path.display(), position(*line, *column), help.as_deref().map(|h| format!("\n  help: {h}")).unwrap_or_default())]
    Read {
        /// The file.
        path: PathBuf,
        /// The line (record) in the file.
        line: usize,
        /// The column (field), 1-based.
        column: usize,
        /// What is wrong.
        message: String,
        /// What to do.
        help: Option<String>,
    },
}

fn position(line: usize, column: usize) -> String {
    match (line, column) {
        (0, _) => String::new(),
        (l, 0) => format!(":{l}"),
        (l, c) => format!(":{l}:{c}"),
    }
}
