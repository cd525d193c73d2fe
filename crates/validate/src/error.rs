//! Errors of validation: a contract that does not fit the asset's columns, or the
//! engine failing while rules run. Broken rules are not errors; they are reported.

use sluice_core::Location;

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
    /// The engine failed while reading the input or the reference.
    #[error("{context}: {source}")]
    Engine {
        /// What was being done.
        context: String,
        /// The engine's error.
        source: datafusion::error::DataFusionError,
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

    pub(crate) fn engine(
        context: impl Into<String>,
    ) -> impl FnOnce(datafusion::error::DataFusionError) -> Self {
        let context = context.into();
        move |source| Error::Engine { context, source }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
