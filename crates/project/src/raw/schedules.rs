//! `[schedules.NAME]`: when `sluice serve` refreshes which assets, and what it
//! does about the times it missed while it was down.

use serde::Deserialize;
use toml::Spanned;

use super::DurationWord;

/// `[schedules.NAME]`: a cron pattern (or a fixed interval) and the assets it
/// refreshes. A schedule is not an asset: it claims no asset name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// A cron pattern of 5 fields (minute hour day-of-month month day-of-week)
    /// or 6 (seconds first), read as wall-clock times in `timezone`.
    #[serde(default)]
    pub cron: Option<Spanned<String>>,
    /// Or a fixed interval (`"15m"`), counted from 1970-01-01 00:00 UTC.
    #[serde(default)]
    pub every: Option<Spanned<DurationWord>>,
    /// The IANA time zone the cron pattern is read in (`Europe/Berlin`).
    /// Default: UTC.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// The assets refreshed: `NAME` (or `+NAME`) is that asset, with its stale
    /// upstream built first as in `sluice run NAME`; `NAME+` is that asset and
    /// everything downstream of it. Default (or empty): every asset.
    #[serde(default)]
    pub assets: Option<Vec<Spanned<String>>>,
    /// What to do about the ticks missed while no scheduler ran. Default: `latest`.
    #[serde(default)]
    pub catchup: Option<Catchup>,
    /// With `catchup = "all"`: at most this many missed ticks run (the newest).
    /// Default: 10.
    #[serde(default)]
    pub max_catchup: Option<Spanned<i64>>,
    /// Whether the scheduler runs it. Default: true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// What a schedule does about the ticks it missed (the scheduler was down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Catchup {
    /// Run none of them.
    Skip,
    /// Run only the newest (as Airflow's `catchup = False` does).
    #[default]
    Latest,
    /// Run them all, oldest first, at most `max_catchup` (the newest ones).
    All,
}

impl Catchup {
    /// The word written in the project file.
    pub fn as_str(self) -> &'static str {
        match self {
            Catchup::Skip => "skip",
            Catchup::Latest => "latest",
            Catchup::All => "all",
        }
    }
}
