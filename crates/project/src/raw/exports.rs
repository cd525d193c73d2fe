//! `[exports.NAME]`: where an asset's rows are copied on every refresh — a file,
//! a PostgreSQL table or Redis keys. Connection URLs are [`Secret`]s: written as
//! `${ENV}` references, expanded only when connecting.

use serde::Deserialize;
use sluice_core::Secret;
use toml::Spanned;

use super::{DurationWord, OneOrMany};

/// `[exports.NAME]`: rows written on every refresh to one target: a file (`path`:
/// JSON keyed by entity — `{"A-san": {...}}`, the shape of a Firebase export —, a
/// JSON array, CSV or Parquet), a PostgreSQL table (`postgres`) or Redis keys
/// (`redis`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    /// The asset exported, every column. A feature view is exported as the
    /// newest row of each entity (what the online store holds).
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// Or a query over assets.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// The file to write, relative to the project folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Spanned<String>>,
    /// Or a PostgreSQL table; see [`PostgresExportSection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Spanned<PostgresExportSection>>,
    /// Or Redis keys; see [`RedisExportSection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Spanned<RedisExportSection>>,
    /// A file's format: `json`, `csv` or `parquet`. Default: from the path's extension.
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    /// The column (or columns) that identify a row: a JSON file's keys (nested
    /// in that order), a Redis key's `{id}`, a PostgreSQL upsert's conflict
    /// key. Default: a feature view's entity; otherwise none (a JSON file holds
    /// an array of rows).
    #[serde(default)]
    pub key: Option<Spanned<OneOrMany>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `postgres = { url, table, mode, key }`: the rows written into a table.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresExportSection {
    /// `postgres://user:${PG_PASSWORD}@host:5432/db`, or `${PG_URL}`.
    pub url: Spanned<Secret>,
    /// `schema.name`, or `name` (in `public`), taken as written (quoted).
    pub table: Spanned<String>,
    /// `replace` (default): the table is swapped for one holding exactly the
    /// rows; `upsert`: rows are inserted or updated by `key`, others kept.
    #[serde(default)]
    pub mode: PostgresMode,
    /// The key columns (instead of the export's `key`): a unique index on them
    /// is what an upsert conflicts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Spanned<OneOrMany>>,
}

/// How a PostgreSQL export writes its table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PostgresMode {
    /// A staging table loaded, then swapped in by one transaction.
    #[default]
    Replace,
    /// `INSERT ... ON CONFLICT (key) DO UPDATE` from a loaded temporary table.
    Upsert,
}

/// `redis = { url, key, format, ttl }`: one key per row.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisExportSection {
    /// `redis://:${REDIS_PASSWORD}@host:6379/0`, or `${REDIS_URL}`.
    pub url: Spanned<Secret>,
    /// The key of a row, with `{id}` where its key columns' values go
    /// (joined by `:`): `user:{id}`. The text before `{id}` is the prefix
    /// that the version and the `current` pointer live under.
    pub key: Spanned<String>,
    /// `hash` (default): one hash per row, a field per column; `json`: one
    /// JSON string per row.
    #[serde(default)]
    pub format: RedisFormat,
    /// How long the keys live after a refresh (`"1d"`). Default: forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Spanned<DurationWord>>,
}

/// How a Redis export writes a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisFormat {
    /// `HSET key column value ...`; a null column is no field.
    #[default]
    Hash,
    /// `SET key {"column": value, ...}`.
    Json,
}
