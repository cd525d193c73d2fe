//! `incremental = { column = "updated_at", key = ["id"], mode = "merge",
//! lookback = "1h" }` beside a source's keys: each run reads only the rows
//! past the watermark. Read out of the entry before the connector's own keys,
//! like the policy keys, so that every connector takes it.

use serde::Deserialize;
use toml::Spanned;

use super::DurationWord;

/// The key of [`IncrementalSection`] in a source's entry.
pub const INCREMENTAL_KEY: &str = "incremental";

/// How an incremental source adds what it reads to its table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncrementalMode {
    /// The rows read are added (with a `key`, rows whose key is already in
    /// the table are left out).
    #[default]
    Append,
    /// The rows read replace the rows with the same `key` and the others are added.
    Merge,
}

/// `incremental = { ... }` on a source.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSection {
    /// The column that grows with new and changed rows (a time, a date or a
    /// number: `updated_at`, `id`); the watermark is its greatest value read.
    pub column: Spanned<String>,
    /// The columns that identify a row; required by `merge` and by `lookback`.
    #[serde(default)]
    pub key: Option<Spanned<Vec<String>>>,
    /// `append` (default) or `merge`.
    #[serde(default)]
    pub mode: Option<Spanned<IncrementalMode>>,
    /// How far before the watermark each run reads again, for rows that
    /// arrive late (a time column only). Default: none.
    #[serde(default)]
    pub lookback: Option<Spanned<DurationWord>>,
}
