//! The project file as written: serde structs that map one-to-one onto `sluice.toml`.
//!
//! Every struct denies unknown fields so that a typo is an error, not a silently
//! ignored setting. Defaults sit next to their field.

use serde::Deserialize;
use toml::Spanned;

mod actions;
mod alerts;
mod collections;
mod contract;
mod explorers;
mod exports;
mod features;
mod incremental;
mod models;
mod network;
mod partitions;
mod policy;
mod push;
mod schedules;
mod sources;
mod steps;

pub use actions::*;
pub use alerts::*;
pub use collections::*;
pub use contract::*;
pub use explorers::*;
pub use exports::*;
pub use features::*;
pub use incremental::*;
pub use models::*;
pub use network::*;
pub use partitions::*;
pub use policy::*;
pub use push::*;
pub use schedules::*;
pub use sources::*;
pub use steps::*;

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
    /// How often `sluice serve` looks for assets its triggers start (a new
    /// input version, changed files). Default: 30s.
    #[serde(default)]
    pub trigger_interval: Option<Spanned<DurationWord>>,
    /// Where people reach `sluice serve` (`https://sluice.example.com`): alerts
    /// link to a run as `{public_url}/v1/runs/{id}`. Default: no link.
    #[serde(default)]
    pub public_url: Option<Spanned<String>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

// `[profiles.NAME]` is not a struct: a profile holds any key of `[project]`
// (but `default_profile`) and, under `[profiles.NAME.sources.SOURCE]`, any key
// of that source, and is applied to the file's text before the sections are
// read (`crate::parse`), so every section is checked with its overrides in place.

/// `[tables.NAME]`: a SQL transform over other assets.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableSection {
    /// The query, inline.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// The query in a file, relative to the project folder.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Built one time partition at a time; see [`PartitionedSection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<PartitionedSection>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// A duration as written (`"7d"`, `"12h"`, `"90 days"` is not one), checked
/// when the file is read so that it is reported with the section's other
/// mistakes. Serialized as written, so fingerprints hold the text.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationWord {
    /// The text as written.
    pub text: String,
    /// Its length.
    pub value: std::time::Duration,
}

impl<'de> Deserialize<'de> for DurationWord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match sluice_core::parse_duration(&text) {
            Ok(value) => Ok(DurationWord { text, value }),
            Err(e) => Err(serde::de::Error::custom(e)),
        }
    }
}

impl serde::Serialize for DurationWord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A name or a list of names.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged, expecting = "a column name or a list of column names")]
pub enum OneOrMany {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}
