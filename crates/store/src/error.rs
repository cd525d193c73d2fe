//! Errors of the storage layer, one variant per operation.

use std::path::PathBuf;

use deltalake_core::DeltaTableError;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An asset's table could not be opened.
    #[error("cannot open the stored table of `{asset}`: {source}")]
    OpenTable {
        /// The asset.
        asset: String,
        /// Delta's reason.
        source: DeltaTableError,
    },
    /// A new version could not be written or committed.
    #[error("cannot write a new version of `{asset}`: {source}")]
    Write {
        /// The asset.
        asset: String,
        /// Delta's reason.
        source: DeltaTableError,
    },
    /// The asset has never been materialized.
    #[error("`{asset}` has no version yet\n  help: run `sluice run {asset}` first")]
    NotMaterialized {
        /// The asset.
        asset: String,
    },
    /// Rows were to be added to or merged into a table whose columns are
    /// others (the source's columns changed since the table was written).
    #[error(
        "the rows read for `{asset}` have other columns than its table\n  help: run `sluice run --full-refresh {asset}` to read it whole again with its new columns"
    )]
    ColumnsChanged {
        /// The asset.
        asset: String,
    },
    /// A version or time asked for does not exist.
    #[error("`{asset}` has no version {wanted}\n  help: {help}")]
    NoSuchVersion {
        /// The asset.
        asset: String,
        /// What was asked for.
        wanted: String,
        /// What exists.
        help: String,
    },
    /// A query plan for the store could not be built.
    #[error("cannot prepare the data of `{asset}` for storage: {source}")]
    Plan {
        /// The asset.
        asset: String,
        /// DataFusion's reason.
        source: datafusion::error::DataFusionError,
    },
    /// The metadata database failed.
    #[error("{}: metadata database error: {source}", path.display())]
    Metadata {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// Another process holds the warehouse's run lock.
    #[error("another sluice run is using {} ({holder})\n  help: wait for it to finish", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as written in the lock file.
        holder: String,
    },
    /// The online store failed.
    #[error("{}: online store error: {source}", path.display())]
    Online {
        /// The store's file.
        path: PathBuf,
        /// redb's reason.
        source: Box<redb::Error>,
    },
    /// The operating system gave no random bytes for a key.
    #[error("cannot make a random key: {0}")]
    Random(String),
    /// A file or folder of the warehouse could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

impl Error {
    /// Planning `asset`'s write failed, for `map_err`.
    pub(crate) fn plan(asset: &str) -> impl Fn(datafusion::error::DataFusionError) -> Error + '_ {
        move |source| Error::Plan {
            asset: asset.to_string(),
            source,
        }
    }

    /// Writing `asset`'s table failed, for `map_err`.
    pub(crate) fn write(asset: &str) -> impl Fn(DeltaTableError) -> Error + '_ {
        move |source| Error::Write {
            asset: asset.to_string(),
            source,
        }
    }

    /// Whether trying again may succeed: a lock another process holds, SQLite
    /// busy, or an online store another process has open is transient; otherwise
    /// the first I/O error underneath decides.
    pub fn class(&self) -> sluice_core::ErrorClass {
        use sluice_core::ErrorClass;
        match self {
            Error::Busy { .. } => ErrorClass::Transient,
            Error::Metadata {
                source: rusqlite::Error::SqliteFailure(f, _),
                ..
            } if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
            {
                ErrorClass::Transient
            }
            Error::Online { source, .. }
                if matches!(
                    source.as_ref(),
                    redb::Error::DatabaseAlreadyOpen | redb::Error::PreviousIo
                ) =>
            {
                ErrorClass::Transient
            }
            other => ErrorClass::of_error(other),
        }
    }
}
