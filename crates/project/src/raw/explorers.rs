//! `[explorers.NAME]`: a dashboard page to pick one entity of a feature view
//! or table — typing an id or a label such as a player's name — and a period,
//! and see its columns over time as charts, with its current online record.

use serde::Deserialize;
use toml::Spanned;

/// `[explorers.NAME]`. An explorer is not an asset: it claims no asset name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorerSection {
    /// The page's title. Default: the explorer's name.
    #[serde(default)]
    pub title: Option<String>,
    /// The feature view or table whose rows are charted.
    pub from: Spanned<String>,
    /// The column that names an entity. Default: a feature view's entity
    /// (one column).
    #[serde(default)]
    pub entity: Option<String>,
    /// The column of time (a date, a timestamp or a number such as a year).
    /// Default: a feature view's timestamp.
    #[serde(default)]
    pub time: Option<String>,
    /// Where an entity's readable name is, to find it by typing.
    #[serde(default)]
    pub label: Option<LabelSection>,
    /// The charts: each a title and the columns drawn in it.
    pub charts: Spanned<Vec<ChartSection>>,
    /// A feature view whose current (online) record is shown beside the
    /// charts. Default: `from` when it is a feature view.
    #[serde(default)]
    pub online: Option<Spanned<String>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `label = { from = "people", column = "name" }`: the column holding each
/// entity's name, in `from` (default: the explorer's own `from`), keyed by a
/// column of the entity's name (or `key`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSection {
    /// The table holding the names. Default: the explorer's `from`.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// Its column of names.
    pub column: String,
    /// Its column of entity ids. Default: the explorer's `entity`.
    #[serde(default)]
    pub key: Option<String>,
}

/// One chart: `{ title = "Batting average", columns = ["AVG", "OBP"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSection {
    /// Its title. Default: its columns.
    #[serde(default)]
    pub title: Option<String>,
    /// The numeric columns drawn, one line each.
    pub columns: Vec<String>,
}
