//! `[actions.NAME]`: a button on the dashboard that refreshes some assets —
//! the race app's "update data", "train", "predict this week".

use serde::Deserialize;
use toml::Spanned;

/// `[actions.NAME]`: the button's label and what pressing it refreshes. An
/// action is not an asset: it claims no asset name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSection {
    /// The button's text. Default: the action's name.
    #[serde(default)]
    pub label: Option<String>,
    /// What a press refreshes, with everything stale upstream of it: `NAME`,
    /// `NAME+` (with its downstream) or `tag:TAG`, as a schedule's `assets`.
    /// Default (or empty): every asset.
    #[serde(default)]
    pub assets: Option<Vec<Spanned<String>>>,
    /// Free text for people, shown beside the button.
    #[serde(default)]
    pub description: Option<String>,
}
