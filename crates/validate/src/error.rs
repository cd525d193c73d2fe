//! Errors of validation: a contract that does not fit the asset's columns, or the
//! engine failing while rules run. Broken rules are not errors; they are reported.

use datafusion::error::DataFusionError;
use sluice_core::{ErrorClass, Location};

/// Why a contract could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule does not fit the asset's columns or types.
    #[error("{location}: {message}\n  help: {help}")]
    Compile {
        /// Where the rule is written.
        location: Location,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// The asset's schema could not be turned into the engine's.
    #[error("schema: {source}")]
    Schema {
        /// The engine's error.
        #[source]
        source: DataFusionError,
    },
    /// The column a rule reads could not be typed against the schema.
    #[error("rule `{rule}`: typing its column: {source}")]
    TypeRule {
        /// The rule (`column.rule`).
        rule: String,
        /// The engine's error.
        #[source]
        source: DataFusionError,
    },
    /// A column could not be converted to the type its `type` rule gives.
    #[error("converting column `{column}`: {source}")]
    ConvertColumns {
        /// The column.
        column: String,
        /// The engine's error.
        #[source]
        source: DataFusionError,
    },
    /// Reading a column of a drift check's reference version failed.
    #[error("reading the reference of `{column}`: {source}")]
    ReadReference {
        /// The column.
        column: String,
        /// The engine's error.
        #[source]
        source: DataFusionError,
    },
    /// The extra pass of a `unique` rule failed.
    #[error("finding repeated values of `{column}`: {source}")]
    FindRepeated {
        /// The column.
        column: String,
        /// The engine's error (a source's read error inside it names file and line).
        #[source]
        source: DataFusionError,
    },
    /// DataFusion's distinct counter failed.
    #[error("expectation `{expectation}`: distinct count: {source}")]
    DistinctCount {
        /// The expectation's name.
        expectation: String,
        /// The engine's error.
        #[source]
        source: DataFusionError,
    },
}

impl Error {
    pub(crate) fn compile(
        location: &Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Error::Compile {
            location: location.clone(),
            message: message.into(),
            help: help.into(),
        }
    }

    /// The engine's error, when the engine failed (not the contract).
    pub fn engine(&self) -> Option<&DataFusionError> {
        match self {
            Error::Compile { .. } => None,
            Error::Schema { source }
            | Error::TypeRule { source, .. }
            | Error::ConvertColumns { source, .. }
            | Error::ReadReference { source, .. }
            | Error::FindRepeated { source, .. }
            | Error::DistinctCount { source, .. } => Some(source),
        }
    }

    /// Whether validating again may succeed: a contract that does not fit
    /// never will; the engine's errors by what they wrap (reading the input or
    /// a reference version can time out).
    pub fn class(&self) -> ErrorClass {
        match self.engine() {
            Some(source) => ErrorClass::of_error(source),
            None => ErrorClass::Permanent,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_read_that_times_out_is_transient() {
        let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let e = Error::ReadReference {
            column: "fare".into(),
            source: DataFusionError::External(Box::new(io)),
        };
        assert_eq!(e.class(), ErrorClass::Transient);
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = Error::FindRepeated {
            column: "id".into(),
            source: DataFusionError::Context("scan".into(), Box::new(DataFusionError::IoError(io))),
        };
        assert_eq!(e.class(), ErrorClass::Transient);
    }

    #[test]
    fn a_contract_that_does_not_fit_is_permanent() {
        let e = Error::compile(
            &Location::new("sluice.toml", 12, 5),
            "no column `fare`",
            "check the rule's `column`",
        );
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert_eq!(
            e.to_string(),
            "sluice.toml:12:5: no column `fare`\n  help: check the rule's `column`"
        );
        let e = Error::DistinctCount {
            expectation: "carrier.distinct_count".into(),
            source: DataFusionError::Plan("bad".into()),
        };
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert_eq!(
            e.to_string(),
            "expectation `carrier.distinct_count`: distinct count: Error during planning: bad"
        );
    }
}
