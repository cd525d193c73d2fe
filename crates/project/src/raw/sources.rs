//! `[sources.NAME]`: the connectors a source reads from, with their options.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::*;

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

/// `[sources.NAME]`: where a source's rows come from. A closed set of
/// connectors, each with its own keys (`deny_unknown_fields` per connector),
/// told apart by the key that names it (`postgres = { ... }`, `http = { ... }`;
/// none: files): see `SourceSection::read`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
// One per source, read once: boxing the files variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SourceSection {
    /// Files on disk, by path or glob: `path = "data/*.csv"`.
    Files(FileSourceSection),
    /// Rows applications send: `push = { key = ["id"] }`.
    Push(PushSourceSection),
    /// A PostgreSQL query or table: `postgres = { url = "${PG_URL}", table = "orders" }`.
    Postgres(DatabaseSourceSection),
    /// A MySQL or MariaDB query or table: `mysql = { url = "${MYSQL_URL}", query = "..." }`.
    Mysql(DatabaseSourceSection),
    /// A SQLite database file of the project: `sqlite = { path = "app.db", table = "runs" }`.
    Sqlite(SqliteSourceSection),
    /// An HTTP API: `http = { url = "..." }`.
    Http(Box<HttpSourceSection>),
    /// Web pages crawled from start pages: `crawl = { start = [...] }`.
    Crawl(Box<CrawlSourceSection>),
}

impl SourceSection {
    /// What the rows must be.
    pub fn contract(&self) -> Option<&ContractSection> {
        match self {
            SourceSection::Files(f) => f.contract.as_ref(),
            SourceSection::Push(p) => p.contract.as_ref(),
            SourceSection::Postgres(d) | SourceSection::Mysql(d) => d.contract.as_ref(),
            SourceSection::Sqlite(d) => d.contract.as_ref(),
            SourceSection::Http(h) => h.contract.as_ref(),
            SourceSection::Crawl(c) => c.contract.as_ref(),
        }
    }

    /// Read one time partition at a time (file, database and HTTP sources).
    pub fn partitioned(&self) -> Option<&PartitionedSection> {
        match self {
            SourceSection::Files(f) => f.partitioned.as_ref(),
            SourceSection::Postgres(d) | SourceSection::Mysql(d) => d.partitioned.as_ref(),
            SourceSection::Sqlite(d) => d.partitioned.as_ref(),
            SourceSection::Http(h) => h.partitioned.as_ref(),
            SourceSection::Push(_) | SourceSection::Crawl(_) => None,
        }
    }

    /// Free text for people.
    pub fn description(&self) -> Option<&String> {
        match self {
            SourceSection::Files(f) => f.description.as_ref(),
            SourceSection::Push(p) => p.description.as_ref(),
            SourceSection::Postgres(d) | SourceSection::Mysql(d) => d.description.as_ref(),
            SourceSection::Sqlite(d) => d.description.as_ref(),
            SourceSection::Http(h) => h.description.as_ref(),
            SourceSection::Crawl(c) => c.description.as_ref(),
        }
    }

    /// Reads an entry, choosing the connector by the key that names it
    /// (`push`, `postgres`, `mysql`, `sqlite`, `http`, `crawl`; none of them:
    /// files), so that each connector's mistakes are reported with that connector's keys — a
    /// file source with a typo is told the keys files take. Every mistake of
    /// the entry is reported, as [`crate::parse::deserialize_all`] does.
    pub(crate) fn read(
        value: Spanned<toml::de::DeValue<'_>>,
    ) -> (Option<Self>, Vec<toml::de::Error>) {
        use crate::parse::deserialize_all;
        let has = |key: &str| match value.get_ref() {
            toml::de::DeValue::Table(t) => t.get(key).is_some(),
            _ => false,
        };
        fn map<T>(
            (v, e): (Option<T>, Vec<toml::de::Error>),
            f: impl FnOnce(T) -> SourceSection,
        ) -> (Option<SourceSection>, Vec<toml::de::Error>) {
            (v.map(f), e)
        }
        if has("push") {
            map(deserialize_all(value), SourceSection::Push)
        } else if has("postgres") {
            map(deserialize_all(value), SourceSection::Postgres)
        } else if has("mysql") {
            map(deserialize_all(value), SourceSection::Mysql)
        } else if has("sqlite") {
            map(deserialize_all(value), SourceSection::Sqlite)
        } else if has("http") {
            map(deserialize_all(value), |v| SourceSection::Http(Box::new(v)))
        } else if has("crawl") {
            map(deserialize_all(value), |v| {
                SourceSection::Crawl(Box::new(v))
            })
        } else {
            map(deserialize_all(value), SourceSection::Files)
        }
    }
}

impl<'de> Deserialize<'de> for SourceSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The project file is read through `SourceSection::read`, which looks
        // at the keys first (a serde deserializer cannot be peeked without
        // losing the spans of the values). Read directly, a section is files.
        FileSourceSection::deserialize(d).map(SourceSection::Files)
    }
}

/// `postgres = { ... }` or `mysql = { ... }`: a database source.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSourceSection {
    /// The connection and what to read, under the connector's key.
    #[serde(alias = "mysql")]
    pub postgres: Spanned<DatabaseOptions>,
    /// Read one time partition at a time; see [`PartitionedSection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<PartitionedSection>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// The keys of `postgres = { ... }` and `mysql = { ... }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseOptions {
    /// The connection URL, with the password from the environment:
    /// `postgres://app:${PG_PASSWORD}@db:5432/sales`.
    pub url: sluice_core::Secret,
    /// A query whose rows the source reads. Not with `table`.
    #[serde(default)]
    pub query: Option<String>,
    /// A table (or view) read whole, optionally `schema.table`. Not with `query`.
    #[serde(default)]
    pub table: Option<String>,
    /// Read in this many parallel ranges of `partition_column`. Default: 1.
    #[serde(default)]
    pub partitions: Option<usize>,
    /// The integer column whose min..max range `partitions` splits.
    #[serde(default)]
    pub partition_column: Option<String>,
    /// PostgreSQL `numeric`: `"decimal"` (exact, needs a declared precision
    /// up to 38) or `"float"` (float64). Default: `"decimal"`.
    #[serde(default)]
    pub numeric: Option<NumericMode>,
}

/// How a database's arbitrary-precision numbers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NumericMode {
    /// Decimal128 with the column's declared precision and scale.
    #[default]
    Decimal,
    /// Float64: approximate, for numbers without a declared precision.
    Float,
}

/// `sqlite = { ... }`: a SQLite database file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSourceSection {
    /// The database file and what to read.
    pub sqlite: Spanned<SqliteOptions>,
    /// Read one time partition at a time; see [`PartitionedSection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<PartitionedSection>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// The keys of `sqlite = { ... }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteOptions {
    /// The database file, relative to the project folder.
    pub path: String,
    /// A query whose rows the source reads. Not with `table`.
    #[serde(default)]
    pub query: Option<String>,
    /// A table (or view) read whole. Not with `query`.
    #[serde(default)]
    pub table: Option<String>,
}

/// `[sources.NAME]` with `path`: files read from outside the project.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceSection {
    /// A path or glob (`data/*.csv`), relative to the project folder.
    pub path: Spanned<String>,
    /// `csv`, `json` or `parquet`. Default: from the file extension
    /// (`.csv`/`.tsv`, `.json`/`.ndjson`/`.jsonl`, `.parquet`).
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// CSV: the field delimiter, one ASCII character, or `"whitespace"` (also
    /// written `"\\s+"`) for columns aligned with runs of spaces and tabs.
    /// Default: `,` (`\t` for `.tsv`).
    #[serde(default)]
    pub delimiter: Option<Delimiter>,
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
    /// CSV: fixed-width columns, each one's width in characters, in order
    /// (`[6, 9, 3, 8]`); values are trimmed, and a header line is split the same
    /// way. Not with `delimiter`. Default: none (delimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// CSV and JSON: how date and timestamp columns are written, by column, in
    /// chrono's strftime syntax: `{ sold = "%m/%d/%y", at = "%Y%m%d %H%M" }`. A
    /// column is a timestamp when its format has a time of day (or `columns`
    /// says so), else a date. Default: ISO 8601 only.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub formats: IndexMap<String, String>,
    /// Read one time partition at a time; see [`PartitionedSection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<PartitionedSection>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// A CSV source's field delimiter: one character, or runs of whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// One character (`,`, `;`, `\t`, `|`...).
    Char(char),
    /// Runs of spaces and tabs; leading and trailing ones are ignored.
    Whitespace,
}

impl Delimiter {
    const WHITESPACE: &'static str = "whitespace";
}

impl<'de> Deserialize<'de> for Delimiter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // `\s+` is the regex users bring from pandas and R; it means the same.
        if s == Self::WHITESPACE || s == r"\s+" {
            return Ok(Delimiter::Whitespace);
        }
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Delimiter::Char(c)),
            _ => Err(serde::de::Error::custom(format!(
                "`{s}` is not a delimiter: write one character, or \"whitespace\" for \
                 columns separated by runs of spaces and tabs"
            ))),
        }
    }
}

impl serde::Serialize for Delimiter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // As a bare `char` was written before, so fingerprints stay the same.
            Delimiter::Char(c) => s.serialize_char(*c),
            Delimiter::Whitespace => s.serialize_str(Self::WHITESPACE),
        }
    }
}
