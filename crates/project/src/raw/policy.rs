//! How an asset is run rather than what it is: retries and their delays, a
//! time limit, a pool, and what starts it unattended (`on = "upstream"`,
//! `freshness = { max_age = "1h" }`). The keys sit beside an asset's own keys
//! (`[tables.daily] retries = 3`) and, as defaults, in `[project]`; they are
//! read out of the entry before the entry's own section is, so each kind's
//! struct stays about the asset — and they are not part of any fingerprint:
//! retrying differently does not change what an asset holds. The trigger keys
//! and `tags` (labels that schedules and alerts select assets by) are per
//! asset only: `[project]` refuses them.

use serde::Deserialize;
use toml::Spanned;

use super::DurationWord;

/// The keys of [`PolicySection`], taken out of an asset's entry (and out of
/// `[project]`) before the entry's own section is read.
pub const POLICY_KEYS: [&str; 9] = [
    "retries",
    "retry_delay",
    "max_delay",
    "retry_on",
    "timeout",
    "pool",
    "on",
    "freshness",
    "tags",
];

/// Retries, delays, a time limit and a pool, as written for one asset or as the
/// project's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Attempts after the first one. Default: 0.
    #[serde(default)]
    pub retries: Option<Spanned<u32>>,
    /// The base of the exponential backoff: the n-th retry waits a uniformly
    /// random time up to `retry_delay * 2^(n-1)` (full jitter). Default: 30s.
    #[serde(default)]
    pub retry_delay: Option<Spanned<DurationWord>>,
    /// The longest wait before a retry. Default: 10m.
    #[serde(default)]
    pub max_delay: Option<Spanned<DurationWord>>,
    /// Which failures are retried: `transient` (default) or `any`.
    #[serde(default)]
    pub retry_on: Option<RetryOn>,
    /// How long one attempt may take before it is stopped and counted as a
    /// failed (transient) attempt. Default: none.
    #[serde(default)]
    pub timeout: Option<Spanned<DurationWord>>,
    /// The `[pools]` entry that limits how many assets of the pool build at once.
    #[serde(default)]
    pub pool: Option<Spanned<String>>,
    /// What starts the asset in `sluice serve` besides schedules:
    /// `"upstream"`, a new version of an input (for a source, a change of its
    /// files). Per asset only.
    #[serde(default)]
    pub on: Option<Spanned<OnWord>>,
    /// How old the asset may get before `sluice serve` runs it again (not the
    /// contract's `freshness`, which checks a timestamp column). Per asset only.
    #[serde(default)]
    pub freshness: Option<Spanned<FreshnessTrigger>>,
    /// Labels of the asset (`tags = ["nightly", "finance"]`) that schedules and
    /// alerts select it by (`assets = ["tag:nightly"]`). Per asset only.
    #[serde(default)]
    pub tags: Option<Spanned<Vec<Spanned<String>>>>,
}

/// The words of `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnWord {
    /// Run when an input has a new version; a source, when its files change.
    Upstream,
}

/// `freshness = { max_age = "1h" }` beside an asset's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessTrigger {
    /// The age past which the asset is stale: the time since its newest
    /// build or up-to-date check.
    pub max_age: Spanned<DurationWord>,
}

/// Which failures are retried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryOn {
    /// Only failures that may pass (a lost connection, a held lock, a step's
    /// exit status 75, a timeout).
    #[default]
    Transient,
    /// Every failure.
    Any,
}
