//! Errors of orchestration: each wraps the failing layer's error.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use sluice_core::ErrorClass;
use sluice_project::Diagnostics;

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The project has errors.
    #[error("{0}")]
    Project(#[from] Diagnostics),
    /// The store failed (boxed: Delta's errors are large).
    #[error(transparent)]
    Store(Box<sluice_store::Error>),
    /// Names that are not assets of the project.
    #[error("unknown asset{} {}\n  help: the assets are: {known}", if names.len() == 1 { "" } else { "s" }, names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
    UnknownAssets {
        /// The unknown names.
        names: Vec<String>,
        /// The project's assets.
        known: String,
    },
    /// A name that is not an alert of the project.
    #[error("unknown alert `{name}`\n  help: {}", if known.is_empty() { "the project has no `[alerts.NAME]`".to_string() } else { format!("the alerts are: {}", known.join(", ")) })]
    UnknownAlert {
        /// The unknown name.
        name: String,
        /// The project's alerts.
        known: Vec<String>,
    },
    /// An online lookup gave the wrong number of key values.
    #[error("`{view}` is keyed by {} ({} value{}), but {given} {} given", entity.join(", "), entity.len(), if entity.len() == 1 { "" } else { "s" }, if *given == 1 { "was" } else { "were" })]
    EntityKey {
        /// The view (or predictions).
        view: String,
        /// Its key columns.
        entity: Vec<String>,
        /// How many values were given.
        given: usize,
    },
    /// An online prediction lacks inputs its model requires (`require_inputs`).
    #[error("model `{model}` requires every input, and {} {} missing: {}\n  help: give spine columns in `entity` or `values`; a feature is missing when its view holds no record for the entity", inputs.len(), if inputs.len() == 1 { "is" } else { "are" }, inputs.join(", "))]
    MissingInputs {
        /// The model.
        model: String,
        /// The inputs nobody gave.
        inputs: Vec<String>,
    },
    /// The engine failed while `doing` (a query, a training set...); the
    /// engine's error is kept, so its class is known.
    #[error("{doing}: {}", .source.strip_backtrace())]
    Engine {
        /// What was being done.
        doing: &'static str,
        /// DataFusion's error.
        source: Box<DataFusionError>,
    },
    /// A query is not valid SQL.
    #[error("query: {message}{}", if *line > 0 { format!(" (line {line}, column {column})") } else { String::new() })]
    QuerySyntax {
        /// What is wrong.
        message: String,
        /// Where (1-based; 0 when unknown).
        line: u64,
        /// Where (1-based).
        column: u64,
    },
    /// A training-set request cannot be served as asked.
    #[error("training set: {0}")]
    Training(String),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Output {
        /// The file.
        path: std::path::PathBuf,
        /// The reason.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A model could not be trained, loaded or run.
    #[error("model `{model}`: {message}")]
    Model {
        /// The model.
        model: String,
        /// What went wrong, and what to do.
        message: String,
    },
    /// No such model, no such version, or no version promoted yet.
    #[error("model `{model}` {message}")]
    NoModel {
        /// The model.
        model: String,
        /// What is missing, and what to do.
        message: String,
    },
    /// A stored model version could not be read.
    #[error("model `{model}`: {message}")]
    ModelFile {
        /// The model.
        model: String,
        /// What went wrong.
        message: String,
    },
    /// An online read as of a time before what the online store keeps for the
    /// entity.
    #[error("`{view}` keeps the features of entity {} online from {earliest} on; {at} is before that\n  help: ask for a time from {earliest} on, or read the offline store (a training set, or `sluice query --as-of`)", key.join(", "))]
    OnlineAsOf {
        /// The view.
        view: String,
        /// The entity's key values.
        key: Vec<String>,
        /// The time asked for (RFC 3339).
        at: String,
        /// The earliest time that can be read (RFC 3339).
        earliest: String,
    },
    /// A view's tiles in the online store cannot be read.
    #[error("`{view}`: {message}")]
    OnlineTiles {
        /// The view.
        view: String,
        /// What is wrong, and what to do.
        message: String,
    },
    /// A time asked for an online read could not be read.
    #[error(
        "`{0}` is not a time\n  help: write a time such as `2026-11-22T10:00:00Z`, `2026-11-22 10:00:00` (UTC) or `2026-11-22` (midnight UTC)"
    )]
    ReadTime(String),
    /// A `--as-of` value could not be read.
    #[error(
        "`{0}` is neither a version number nor a time\n  help: write a version such as `3`, or a time such as `2026-11-22T10:00:00Z` or `2026-11-22`"
    )]
    AsOf(String),
    /// A request about an asset's partitions cannot be served as asked.
    #[error("{0}")]
    Partitions(String),
    /// A queued run this request joined ended without a summary.
    #[error(
        "run {run_id}, which this request joined while it was queued, did not finish: {message}"
    )]
    Joined {
        /// The run joined.
        run_id: i64,
        /// Why it did not finish.
        message: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sluice_store::Error> for Error {
    fn from(e: sluice_store::Error) -> Self {
        Error::Store(Box::new(e))
    }
}

impl Error {
    /// Whether running again may succeed: a warehouse another run holds, or an
    /// I/O timeout or dropped connection underneath, is transient; what the
    /// project, the data or the request says is permanent.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Store(e) => e.class(),
            Error::Engine { source, .. } => ErrorClass::of_error(source.as_ref()),
            Error::Output { source, .. } => ErrorClass::of_error(source.as_ref()),
            Error::Project(_)
            | Error::UnknownAssets { .. }
            | Error::UnknownAlert { .. }
            | Error::EntityKey { .. }
            | Error::MissingInputs { .. }
            | Error::QuerySyntax { .. }
            | Error::Training(_)
            | Error::Model { .. }
            | Error::NoModel { .. }
            | Error::ModelFile { .. }
            | Error::AsOf(_)
            | Error::OnlineAsOf { .. }
            | Error::ReadTime(_)
            | Error::OnlineTiles { .. }
            | Error::Partitions(_)
            | Error::Joined { .. } => ErrorClass::Permanent,
        }
    }

    /// The engine failed while `doing`.
    pub(crate) fn engine(doing: &'static str, e: DataFusionError) -> Self {
        Error::Engine {
            doing,
            source: Box::new(e),
        }
    }

    /// `names` are not assets of `project`.
    pub fn unknown_assets(project: &sluice_project::Project, names: Vec<String>) -> Self {
        let known: Vec<&str> = project.order.iter().map(|n| n.as_str()).collect();
        Error::UnknownAssets {
            names,
            known: known.join(", "),
        }
    }
}

/// The most useful message in an error chain: a source error (which names file,
/// line and column) when there is one, else the whole chain.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut chain = Vec::new();
    while let Some(e) = current {
        if let Some(source_error) = e.downcast_ref::<sluice_source::Error>() {
            return source_error.to_string();
        }
        if let Some(df) = e.downcast_ref::<DataFusionError>()
            && let Some(inner) = find_source_error(df)
        {
            return inner;
        }
        chain.push(e.to_string());
        current = e.source();
    }
    let message = chain.into_iter().next().unwrap_or_default();
    // Delta flattens DataFusion errors into text; a source error inside it still
    // starts after the last "External error: ".
    const MARK: &str = "External error: ";
    match message.rfind(MARK) {
        Some(at) => message[at + MARK.len()..].to_string(),
        None => message,
    }
}

fn find_source_error(e: &DataFusionError) -> Option<String> {
    match e {
        DataFusionError::External(inner) => from_boxed(inner.as_ref()),
        DataFusionError::Context(_, inner) => find_source_error(inner),
        DataFusionError::Shared(inner) => find_source_error(inner),
        DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
            ArrowError::ExternalError(x) => from_boxed(x.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

fn from_boxed(x: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<String> {
    x.downcast_ref::<sluice_source::Error>()
        .map(ToString::to_string)
        .or_else(|| {
            x.downcast_ref::<DataFusionError>()
                .and_then(find_source_error)
        })
}
