//! `partitioned = { by = "day", column = "ts", start = "2024-01-01" }` on a
//! source or a table: the asset is built one time partition at a time.

use serde::Deserialize;
use toml::Spanned;

/// How a source or table is split into time partitions, as written.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionedSection {
    /// `hour`, `day` or `month`.
    pub by: Spanned<String>,
    /// The date or timestamp column whose value says which partition a row is in.
    pub column: Spanned<String>,
    /// The first partition: a date, or a date and time (`2024-01-01T06:00`).
    pub start: Spanned<String>,
    /// The last partition, included. Default: the one holding the present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Spanned<String>>,
}
