//! Sources, stage ① of the flow: data from outside the project as Arrow record
//! batch streams behind DataFusion table providers.
//!
//! Files are read by Arrow's own readers, one stream per file, so that every
//! error names the file and, where the format has them, the line and column.
//! Network sources (`http`, `crawl`) fetch into the raw zone through a
//! [`RawSink`] and parse what it stored, so every error names the URL.

mod convert;
pub mod crawl;
mod db;
mod error;
mod file;
pub mod http;
mod infer;
mod layout;
mod parquet;
mod raw;
mod readers;
mod table;

pub use db::{DbSource, DbTable};
pub use error::Error;
pub use file::{FileSource, content_hash};
pub use raw::{Payload, RawPage, RawSink, Validators};
pub use sluice_core::parse_type;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
