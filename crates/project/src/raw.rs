//! The project file as written: serde structs that map one-to-one onto `sluice.toml`.
//!
//! Every struct denies unknown fields so that a typo is an error, not a silently
//! ignored setting. Defaults sit next to their field.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// `[project]`: what the project is called and where it keeps its data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// Name of the project, shown in summaries and metrics.
    pub name: String,
    /// Where versioned tables and the metadata database live, relative to the
    /// project folder. Default: `.sluice`.
    #[serde(default)]
    pub warehouse: Option<Spanned<String>>,
    /// How many assets may materialize at once. Default: the number of CPUs.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// The profile used when `--profile` is not given. Default: none.
    #[serde(default)]
    pub default_profile: Option<Spanned<String>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `[profiles.NAME]`: settings for one environment (dev, prod...). Values may use
/// `${ENV_VAR}` so that secrets stay out of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    /// Overrides `[project] warehouse`.
    #[serde(default)]
    pub warehouse: Option<Spanned<String>>,
    /// Overrides `[project] concurrency`.
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// The format of a file source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Comma (or other delimiter) separated values.
    Csv,
    /// Newline-delimited JSON objects, or one JSON array of objects.
    Json,
    /// Apache Parquet.
    Parquet,
}

/// `[sources.NAME]`: files read from outside the project.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// A path or glob (`data/*.csv`), relative to the project folder.
    pub path: Spanned<String>,
    /// `csv`, `json` or `parquet`. Default: from the file extension
    /// (`.csv`/`.tsv`, `.json`/`.ndjson`/`.jsonl`, `.parquet`).
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// CSV: the field delimiter, one ASCII character. Default: `,` (`\t` for `.tsv`).
    #[serde(default)]
    pub delimiter: Option<char>,
    /// CSV: the quote character. Default: `"`.
    #[serde(default)]
    pub quote: Option<char>,
    /// CSV: whether the first line holds column names. Default: true.
    #[serde(default)]
    pub header: Option<bool>,
    /// CSV: column names when there is no header. Default: `column_1`, `column_2`...
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// CSV: values that mean "missing" (for example `["NA"]`). The empty field is
    /// always missing. Default: none besides the empty field.
    #[serde(default)]
    pub null: Vec<String>,
    /// Column types that override inference, by column name, in the project file's
    /// type words: `string`, `bool`, `int32`, `int64`, `float64`, `date`,
    /// `timestamp`, `decimal(10,2)`...
    #[serde(default)]
    pub columns: IndexMap<String, String>,
    /// How many records to read to infer types (0 = the whole file). Default: 10000.
    #[serde(default)]
    pub infer_rows: Option<usize>,
    /// The time zone of timestamps written without an offset. Timestamps are
    /// stored as UTC instants. Default: `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `[tables.NAME]`: a SQL transform over other assets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSection {
    /// The query, inline.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// The query in a file, relative to the project folder.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}
