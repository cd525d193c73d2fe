//! Errors of planning a table or a feature view. Each carries the diagnostic
//! the user reads (`file:line:column`, what is wrong, what to do) and, when the
//! engine failed, the engine's error as a value.

use datafusion::error::DataFusionError;
use sluice_core::ErrorClass;
use sluice_project::Diagnostic;

/// Why a table or a feature view could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query does not plan (syntax, unknown table or column, types).
    #[error("{diagnostic}")]
    PlanQuery {
        /// Where in the query, and what is wrong.
        diagnostic: Diagnostic,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// The query's columns cannot be stored (a name a Delta table cannot hold,
    /// two columns of one name).
    #[error("{diagnostic}")]
    OutputColumns {
        /// The query, and what is wrong with its columns.
        diagnostic: Diagnostic,
    },
    /// A declared feature view's source is not registered or cannot be read.
    #[error("{diagnostic}")]
    ReadViewSource {
        /// The view, and what to do.
        diagnostic: Diagnostic,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// A feature view's event or created time column is missing or not a time.
    #[error("{diagnostic}")]
    TimeColumn {
        /// The view, the column, and what to do.
        diagnostic: Diagnostic,
    },
    /// Finding the newest event time (`as_of = "newest"`) failed.
    #[error("{diagnostic}")]
    FindNewest {
        /// The view, and what to do.
        diagnostic: Diagnostic,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// Finding a pivot's categories in the data failed.
    #[error("{diagnostic}")]
    FindCategories {
        /// The view, the pivot, and what to do.
        diagnostic: Diagnostic,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// A feature view's rows lack a column the view declares.
    #[error("{diagnostic}")]
    KeyColumn {
        /// The view, the column, and what to do.
        diagnostic: Diagnostic,
    },
}

impl Error {
    /// What the user reads: where to look, what is wrong and what to do.
    pub fn diagnostic(&self) -> &Diagnostic {
        match self {
            Error::PlanQuery { diagnostic, .. }
            | Error::OutputColumns { diagnostic }
            | Error::ReadViewSource { diagnostic, .. }
            | Error::TimeColumn { diagnostic }
            | Error::FindNewest { diagnostic, .. }
            | Error::FindCategories { diagnostic, .. }
            | Error::KeyColumn { diagnostic } => diagnostic,
        }
    }

    /// The diagnostic, for a list of a project's problems (`sluice check`).
    pub fn into_diagnostic(self) -> Diagnostic {
        match self {
            Error::PlanQuery { diagnostic, .. }
            | Error::OutputColumns { diagnostic }
            | Error::ReadViewSource { diagnostic, .. }
            | Error::TimeColumn { diagnostic }
            | Error::FindNewest { diagnostic, .. }
            | Error::FindCategories { diagnostic, .. }
            | Error::KeyColumn { diagnostic } => diagnostic,
        }
    }

    /// Whether planning again may succeed. SQL that does not plan and columns
    /// that do not fit never will; the queries a feature view runs on its data
    /// to plan (newest time, pivot categories) fail by what they wrap, and a
    /// read that timed out is transient.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::ReadViewSource { source, .. }
            | Error::FindNewest { source, .. }
            | Error::FindCategories { source, .. } => ErrorClass::of_error(source),
            Error::PlanQuery { .. }
            | Error::OutputColumns { .. }
            | Error::TimeColumn { .. }
            | Error::KeyColumn { .. } => ErrorClass::Permanent,
        }
    }
}

/// The result type of this crate's planning functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Location;

    fn at() -> Diagnostic {
        Diagnostic::new(
            Location::new("sluice.toml", 7, 3),
            "feature view `trips`: Connection refused",
        )
        .with_help("check the source")
    }

    #[test]
    fn a_refused_connection_while_finding_the_newest_time_is_transient() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = Error::FindNewest {
            diagnostic: at(),
            source: DataFusionError::External(Box::new(io)),
        };
        assert_eq!(e.class(), ErrorClass::Transient);
        assert_eq!(
            e.to_string(),
            "sluice.toml:7:3: error: feature view `trips`: Connection refused\n  help: check the source"
        );
    }

    #[test]
    fn sql_that_does_not_plan_is_permanent() {
        let e = Error::PlanQuery {
            diagnostic: at(),
            source: DataFusionError::Plan("table 'x' not found".into()),
        };
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert_eq!(e.into_diagnostic(), at());
    }
}
