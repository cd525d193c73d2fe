//! `[sources.NAME] push = { ... }`: a source whose rows applications send to
//! `sluice serve` (`POST /v1/push/NAME`) instead of sluice reading them.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::{ContractSection, DurationWord};

/// `[sources.NAME]` with `push`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PushSourceSection {
    /// How pushed rows are added.
    pub push: Spanned<PushOptions>,
    /// The columns a pushed row has, with their types (the project's type
    /// words). Required: nothing is read to infer them from.
    #[serde(default)]
    pub columns: IndexMap<String, String>,
    /// The time zone of timestamps pushed without an offset. Default: `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `push = { key = ["id"], window = "200ms" }`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PushOptions {
    /// The columns that identify a row: a pushed row replaces the row with
    /// its key. Default: none (every row pushed is added).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// How long the first push of a batch waits for others to join it in one
    /// version. Default: 0 (the pushes that arrive while a version is being
    /// written make the next one together).
    #[serde(default)]
    pub window: Option<DurationWord>,
}
