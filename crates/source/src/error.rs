//! Errors of reading sources. Each names the file and, when known, line and column.

use std::path::PathBuf;

use sluice_core::ErrorClass;

/// A reader's own error, kept as the cause of a [`Error::Read`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    #[error("{source}")]
    ListFiles {
        /// Why, with the glob.
        source: sluice_project::ListFilesError,
    },
    /// A file could not be opened or read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
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
    /// `columns` or `formats` names a column the file does not have.
    #[error("{}: `{key}` names `{column}`, but the file has no such column (it has: {available})", path.display())]
    UnknownColumn {
        /// The file.
        path: PathBuf,
        /// The setting that names it.
        key: &'static str,
        /// The column.
        column: String,
        /// The columns the file has.
        available: String,
    },
    /// A `formats` entry that cannot apply to its column.
    #[error("column `{column}`: {message}\n  help: {help}")]
    Format {
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// The files of one source do not have the same columns.
    #[error("{}: {message}\n  help: every file of a source must have the same columns", path.display())]
    SchemaMismatch {
        /// The file that differs from the first.
        path: PathBuf,
        /// How it differs.
        message: String,
    },
    /// A Parquet file's columns could not be cast to the source's schema.
    #[error("{}: {source}\n  help: every file of a source must have the same columns", path.display())]
    CastColumns {
        /// The file.
        path: PathBuf,
        /// Arrow's reason.
        #[source]
        source: datafusion::arrow::error::ArrowError,
    },
    /// A database source could not be read: the message names the source, the
    /// database (host, port, name; never a password) and what to do.
    #[error("{message}")]
    Database {
        /// What happened, with the database's own message.
        message: String,
        /// The network error underneath, which decides the class (a refused
        /// or reset connection is transient); `None`: permanent.
        #[source]
        cause: Option<std::io::Error>,
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
        /// The reader's error the message was made from, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A request failed without an answer (timeout, connection refused or
    /// lost), after its retries.
    #[error("{url}: {message} (after {attempts} attempt{s})\n  help: {help}", s = if *attempts == 1 { "" } else { "s" })]
    Request {
        /// The URL, secrets masked.
        url: String,
        /// What went wrong, secrets masked.
        message: String,
        /// Requests made.
        attempts: u32,
        /// Whether trying later may succeed (a timeout, a lost connection).
        transient: bool,
        /// What to do.
        help: String,
    },
    /// A request was answered with an error status (after its retries, for
    /// 429 and 5xx).
    #[error("{url}: HTTP {status}{linked} (after {attempts} attempt{s}){answer}\n  help: {help}",
        linked = referrer.as_deref().map(|r| format!(", linked from {r}")).unwrap_or_default(),
        s = if *attempts == 1 { "" } else { "s" },
        answer = if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The URL, secrets masked.
        url: String,
        /// The status code.
        status: u16,
        /// Requests made.
        attempts: u32,
        /// The start of the answer's body, secrets masked.
        body: String,
        /// The page that linked to the URL, for a crawl.
        referrer: Option<String>,
        /// What to do.
        help: String,
    },
    /// A fetched page could not be parsed. `line` and `column` are 1-based
    /// (0 when unknown); `record` is the record's index in the page, 1-based.
    #[error("{url} (page {page}{at}): {message}\n  help: {help}",
        at = page_position(*line, *column, *record))]
    Page {
        /// The URL, secrets masked.
        url: String,
        /// The page number.
        page: u64,
        /// The line in the payload.
        line: usize,
        /// The column in the payload.
        column: usize,
        /// The record in the page.
        record: usize,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A setting refers to an environment variable that is not set.
    #[error(
        "`{key}` reads the environment variable `{variable}`, which is not set\n  help: set it in the environment sluice runs in"
    )]
    Unset {
        /// The setting.
        key: String,
        /// The variable.
        variable: String,
    },
    /// A setting cannot be used as written.
    #[error("`{key}`: {message}\n  help: {help}")]
    Setting {
        /// The setting.
        key: String,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// The raw zone could not store or give back a payload.
    #[error("the raw zone: {source}")]
    Raw {
        /// The store's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Whether reading again may succeed: an I/O error decides by its kind
    /// (a network disk timing out is transient, a missing file is not); a
    /// reader's error by the I/O error it wraps, if any. Bad data, a bad
    /// `columns` entry or files that disagree stay so until someone edits them.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Open { source, .. } => ErrorClass::of_io(source),
            Error::Database {
                cause: Some(io), ..
            } => ErrorClass::of_io(io),
            Error::Database { cause: None, .. } => ErrorClass::Permanent,
            Error::ListFiles { source } => source.class(),
            Error::CastColumns { source, .. } => ErrorClass::of_error(source),
            Error::Read {
                source: Some(source),
                ..
            } => ErrorClass::of_error(source.as_ref()),
            Error::Request { transient, .. } => {
                if *transient {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Permanent
                }
            }
            Error::Status { status, .. } => ErrorClass::of_http_status(*status),
            Error::Raw { source } => ErrorClass::of_error(source.as_ref()),
            Error::Page { .. } | Error::Unset { .. } | Error::Setting { .. } => {
                ErrorClass::Permanent
            }
            Error::Read { source: None, .. }
            | Error::NoFiles { .. }
            | Error::EmptyFile { .. }
            | Error::UnknownType { .. }
            | Error::UnknownColumn { .. }
            | Error::Format { .. }
            | Error::SchemaMismatch { .. } => ErrorClass::Permanent,
        }
    }
}

fn page_position(line: usize, column: usize, record: usize) -> String {
    let mut out = String::new();
    if line > 0 {
        out.push_str(&format!(", line {line}"));
        if column > 0 {
            out.push_str(&format!(", column {column}"));
        }
    }
    if record > 0 {
        out.push_str(&format!(", record {record}"));
    }
    out
}

fn position(line: usize, column: usize) -> String {
    match (line, column) {
        (0, _) => String::new(),
        (l, 0) => format!(":{l}"),
        (l, c) => format!(":{l}:{c}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::error::ArrowError;

    #[test]
    fn a_file_server_refusing_the_connection_is_transient() {
        let e = Error::Open {
            path: "data/flights.csv".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(e.class(), ErrorClass::Transient);
        // Arrow's CSV reader wraps the I/O error it met; the class looks inside.
        let e = Error::Read {
            path: "data/flights.csv".into(),
            line: 0,
            column: 0,
            message: "Io error: timed out".into(),
            help: None,
            source: Some(Box::new(ArrowError::IoError(
                "timed out".into(),
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ))),
        };
        assert_eq!(e.class(), ErrorClass::Transient);
    }

    #[test]
    fn a_bad_value_or_a_missing_file_is_permanent() {
        let e = Error::Read {
            path: "data/flights.csv".into(),
            line: 3,
            column: 2,
            message: "`x` is not a valid Int64".into(),
            help: Some("fix the value".into()),
            source: Some(Box::new(ArrowError::ParseError("x".into()))),
        };
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert_eq!(
            e.to_string(),
            "data/flights.csv:3:2: `x` is not a valid Int64\n  help: fix the value"
        );
        let e = Error::Open {
            path: "data/flights.csv".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(e.class(), ErrorClass::Permanent);
    }
}
