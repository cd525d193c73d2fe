//! `[schedules.NAME]` into a [`ScheduleDef`]: the cron pattern parsed and the
//! time zone and asset names checked when the project loads, so that a schedule
//! that cannot fire is an error of the file, not a silent scheduler.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono_tz::Tz;
use sluice_core::{AssetName, Location};

use super::Builder;
use super::refs::{edit_distance, suggest};
use crate::diag::Diagnostic;
use crate::parse::{Entry, RawProject};
use crate::raw::{Catchup, ScheduleSection};

/// `max_catchup` when not written.
pub const DEFAULT_MAX_CATCHUP: u32 = 10;
/// The largest `max_catchup` allowed.
pub const MAX_CATCHUP_LIMIT: u32 = 1000;

/// A compiled schedule.
#[derive(Debug, Clone)]
pub struct ScheduleDef {
    /// Its name (`[schedules.NAME]`).
    pub name: String,
    /// Where it is defined.
    pub location: Location,
    /// When it fires.
    pub cadence: Cadence,
    /// The time zone its cron pattern is read in (UTC by default).
    pub timezone: Tz,
    /// What it refreshes; empty: every asset.
    pub assets: Vec<ScheduleTarget>,
    /// What it does about missed ticks.
    pub catchup: Catchup,
    /// With `catchup = "all"`: at most this many missed ticks run.
    pub max_catchup: u32,
    /// Whether the scheduler runs it.
    pub enabled: bool,
    /// Free text for people.
    pub description: Option<String>,
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// At the wall-clock times a cron pattern matches.
    Cron {
        /// The pattern as written.
        text: String,
        /// The pattern parsed (seconds are 0 when 5 fields are written).
        pattern: Box<croner::Cron>,
    },
    /// At every multiple of a duration since 1970-01-01 00:00 UTC.
    Every {
        /// The duration as written.
        text: String,
        /// Its length (at least a second).
        value: Duration,
    },
}

impl Cadence {
    /// How it reads in listings: `cron 30 2 * * *` or `every 15m`.
    pub fn describe(&self) -> String {
        match self {
            Cadence::Cron { text, .. } => format!("cron {text}"),
            Cadence::Every { text, .. } => format!("every {text}"),
        }
    }
}

/// One entry of a schedule's `assets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTarget {
    /// The asset.
    pub asset: AssetName,
    /// `NAME+`: everything downstream of the asset is refreshed too.
    pub downstream: bool,
}

/// Compiles every `[schedules.NAME]`; asset names are checked against the
/// assets compiled so far (call after every asset is added).
pub(super) fn compile(b: &mut Builder<'_>) -> std::collections::BTreeMap<String, ScheduleDef> {
    let raw = b.raw;
    compile_each(b, &raw.schedules, compile_one)
}

/// Compiles each entry of a section that names assets (`[schedules]`,
/// `[alerts]`) with `one`, which checks them against the names taken so far
/// (an asset that failed to compile counts as taken).
pub(super) fn compile_each<S, D>(
    b: &mut Builder<'_>,
    entries: &std::collections::BTreeMap<String, Entry<S>>,
    one: impl Fn(&mut Builder<'_>, &BTreeSet<String>, &str, &Entry<S>) -> Option<D>,
) -> std::collections::BTreeMap<String, D> {
    let names: BTreeSet<String> = b.seen.keys().chain(b.raw.broken.iter()).cloned().collect();
    entries
        .iter()
        .filter_map(|(name, entry)| Some((name.clone(), one(b, &names, name, entry)?)))
        .collect()
}

fn compile_one(
    b: &mut Builder<'_>,
    names: &BTreeSet<String>,
    name: &str,
    entry: &Entry<ScheduleSection>,
) -> Option<ScheduleDef> {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let section = &entry.value;
    let before = b.diags.len();
    let cadence = match (&section.cron, &section.every) {
        (Some(cron), None) => parse_cron(raw, cron, &mut b.diags),
        (None, Some(every)) => {
            let value = every.get_ref().value;
            if value < Duration::from_secs(1) {
                b.diags.push(
                    Diagnostic::new(
                        raw.location(every.span().start),
                        format!(
                            "`every = \"{}\"` is shorter than a second",
                            every.get_ref().text
                        ),
                    )
                    .with_help("write a duration of a second or more, like `every = \"15m\"`"),
                );
                None
            } else {
                Some(Cadence::Every {
                    text: every.get_ref().text.clone(),
                    value,
                })
            }
        }
        (Some(_), Some(_)) => {
            b.diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("schedule `{name}` has both `cron` and `every`"),
                )
                .with_help("keep one of them"),
            );
            None
        }
        (None, None) => {
            b.diags.push(
                Diagnostic::new(at.clone(), format!("schedule `{name}` says not when to run"))
                    .with_help("add `cron = \"30 2 * * *\"` (minute hour day month weekday) or `every = \"15m\"`"),
            );
            None
        }
    };
    let timezone = match &section.timezone {
        None => Tz::UTC,
        Some(tz) => {
            if section.every.is_some() {
                b.diags.push(
                    Diagnostic::new(
                        raw.location(tz.span().start),
                        "`timezone` applies to `cron` only",
                    )
                    .with_help("`every` counts from 1970-01-01 00:00 UTC; for wall-clock times write `cron = \"...\"` with the time zone"),
                );
            }
            match tz.get_ref().parse::<Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    b.diags.push(
                        Diagnostic::new(
                            raw.location(tz.span().start),
                            format!("unknown time zone `{}`", tz.get_ref()),
                        )
                        .with_help(suggest_zone(tz.get_ref())),
                    );
                    Tz::UTC
                }
            }
        }
    };
    let assets = targets(
        b,
        names,
        section.assets.iter().flatten(),
        &format!("schedule `{name}`"),
    );
    let max_catchup = match &section.max_catchup {
        None => DEFAULT_MAX_CATCHUP,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if (1..=MAX_CATCHUP_LIMIT).contains(&v) => v,
            _ => {
                b.diags.push(
                    Diagnostic::new(
                        raw.location(n.span().start),
                        format!("`max_catchup = {}` is out of range", n.get_ref()),
                    )
                    .with_help(format!(
                        "write a number from 1 to {MAX_CATCHUP_LIMIT}; `catchup = \"skip\"` runs none"
                    )),
                );
                DEFAULT_MAX_CATCHUP
            }
        },
    };
    if b.diags.len() > before {
        return None;
    }
    Some(ScheduleDef {
        name: name.to_string(),
        location: at,
        cadence: cadence?,
        timezone,
        assets,
        catchup: section.catchup.unwrap_or_default(),
        max_catchup,
        enabled: section.enabled.unwrap_or(true),
        description: section.description.clone(),
    })
}

/// Reads an asset selection (`assets = ["NAME", "NAME+", "tag:TAG"]` of a
/// schedule or an alert): each word an asset, `NAME+` with everything
/// downstream of it, `tag:TAG` every asset tagged `TAG` (`tag:TAG+` with their
/// downstream) — the selectors of dbt and Dagster; an unknown name is reported
/// with a suggestion, an unknown tag with the known ones, `owner` naming whose
/// it is. Call once every asset has its tags.
pub(super) fn targets<'a>(
    b: &mut Builder<'_>,
    names: &BTreeSet<String>,
    words: impl Iterator<Item = &'a toml::Spanned<String>>,
    owner: &str,
) -> Vec<ScheduleTarget> {
    let raw = b.raw;
    let mut assets: Vec<ScheduleTarget> = Vec::new();
    for word in words {
        let text = word.get_ref().trim();
        let downstream = text.ends_with('+');
        let bare = text.trim_start_matches('+').trim_end_matches('+');
        let word_at = raw.location(word.span().start);
        if bare.is_empty() {
            b.diags.push(
                Diagnostic::new(word_at, format!("`{text}` names no asset")).with_help(
                    "write `NAME`, or `NAME+` for the asset and everything downstream of it",
                ),
            );
            continue;
        }
        if let Some(tag) = bare.strip_prefix("tag:") {
            for asset in tagged(b, tag.trim(), word_at, owner) {
                add_target(&mut assets, asset, downstream);
            }
            continue;
        }
        if !names.contains(bare) {
            b.diags.push(
                Diagnostic::new(word_at, format!("unknown asset `{bare}` in {owner}"))
                    .with_help(suggest(bare, names)),
            );
            continue;
        }
        // A broken asset is reported where it is defined.
        let Ok(asset) = AssetName::new(bare) else {
            continue;
        };
        add_target(&mut assets, asset, downstream);
    }
    assets
}

/// Adds `asset` to a selection, once (with its downstream if any word said so).
fn add_target(assets: &mut Vec<ScheduleTarget>, asset: AssetName, downstream: bool) {
    match assets.iter_mut().find(|t| t.asset == asset) {
        Some(t) => t.downstream |= downstream,
        None => assets.push(ScheduleTarget { asset, downstream }),
    }
}

/// The assets tagged `tag`, in name order; none (and an error at `at` naming
/// the known tags) when no asset has it.
fn tagged(b: &mut Builder<'_>, tag: &str, at: Location, owner: &str) -> Vec<AssetName> {
    let found: Vec<AssetName> = b
        .assets
        .values()
        .filter(|a| a.tags.iter().any(|t| t == tag))
        .map(|a| a.name.clone())
        .collect();
    if !found.is_empty() {
        return found;
    }
    let known: BTreeSet<&str> = b
        .assets
        .values()
        .flat_map(|a| a.tags.iter().map(String::as_str))
        .collect();
    let help = if known.is_empty() {
        "no asset has tags: label assets with `tags = [\"...\"]` in their entries".to_string()
    } else {
        let known: Vec<&str> = known.into_iter().collect();
        format!("the tags are: {}", known.join(", "))
    };
    let message = if tag.is_empty() {
        format!("`tag:` names no tag in {owner}")
    } else {
        format!("unknown tag `{tag}` in {owner}")
    };
    b.diags.push(Diagnostic::new(at, message).with_help(help));
    Vec::new()
}

/// Parses a cron pattern of 5 or 6 fields and checks that it ever fires.
fn parse_cron(
    raw: &RawProject,
    cron: &toml::Spanned<String>,
    diags: &mut crate::diag::Diagnostics,
) -> Option<Cadence> {
    let text = cron.get_ref().trim();
    let at = raw.location(cron.span().start);
    let help = "write 5 fields, minute hour day-of-month month day-of-week (`30 2 * * *`: 02:30 every day), or 6 with seconds first; or `every = \"15m\"`";
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build();
    let pattern = match parser.parse(text) {
        Ok(p) => p,
        Err(e) => {
            diags.push(
                Diagnostic::new(at, format!("`{text}` is not a cron pattern: {e}")).with_help(help),
            );
            return None;
        }
    };
    // A pattern that names no real date (`0 0 30 2 *`) would never fire.
    let start = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    if pattern.find_next_occurrence(&start, true).is_err() {
        diags.push(
            Diagnostic::new(at, format!("cron pattern `{text}` never fires"))
                .with_help("check the day of month against the month (February has no 30th)"),
        );
        return None;
    }
    Some(Cadence::Cron {
        text: text.to_string(),
        pattern: Box::new(pattern),
    })
}

/// What to write instead of an unknown time zone.
fn suggest_zone(wanted: &str) -> String {
    let lower = wanted.to_lowercase();
    if let Some(tz) = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().to_lowercase() == lower)
    {
        return format!("time zone names are case-sensitive: write `{}`", tz.name());
    }
    let close = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| (edit_distance(&lower, &tz.name().to_lowercase()), tz.name()))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min();
    match close {
        Some((_, n)) => format!("did you mean `{n}`?"),
        None => "write an IANA time zone name, like `Europe/Berlin`, `America/New_York` or `UTC`"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::parse::parse_text;

    fn load(schedules: &str) -> Result<crate::Project, crate::Diagnostics> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), "x\n1\n").expect("write");
        let text = format!(
            "[project]\nname = \"t\"\n\n[sources.events]\npath = \"a.csv\"\n\n[tables.daily]\nsql = \"SELECT * FROM events\"\n\n{schedules}"
        );
        let raw = parse_text(dir.path(), Path::new("sluice.toml"), text, None)?;
        crate::compile::compile(&raw)
    }

    fn errors(schedules: &str) -> Vec<String> {
        match load(schedules) {
            Ok(_) => vec![],
            Err(d) => d.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_schedule_compiles_with_its_defaults_and_claims_no_asset_name() {
        let p = load(
            "[schedules.daily]\ncron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\nassets = [\"events+\", \"+daily\"]\n\n[schedules.often]\nevery = \"15m\"\n",
        )
        .expect("compiles");
        let s = &p.schedules["daily"];
        assert_eq!(s.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(s.catchup, crate::raw::Catchup::Latest);
        assert_eq!((s.max_catchup, s.enabled), (10, true));
        assert_eq!(s.cadence.describe(), "cron 30 2 * * *");
        let targets: Vec<_> = s
            .assets
            .iter()
            .map(|t| (t.asset.as_str(), t.downstream))
            .collect();
        assert_eq!(targets, [("events", true), ("daily", false)]);
        let often = &p.schedules["often"];
        assert_eq!(often.cadence.describe(), "every 15m");
        assert_eq!(often.timezone, chrono_tz::Tz::UTC);
        assert!(often.assets.is_empty());
        assert!(p.asset("often").is_none());
    }

    #[test]
    fn six_fields_are_seconds_and_seven_are_refused() {
        assert!(errors("[schedules.s]\ncron = \"*/5 * * * * *\"\n").is_empty());
        let e = errors("[schedules.s]\ncron = \"0 0 0 * * * 2030\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("is not a cron pattern"), "{e:?}");
        assert!(e[0].starts_with("sluice.toml:11:8:"), "{e:?}");
    }

    #[test]
    fn each_mistake_is_reported_where_it_is_written_with_what_to_write() {
        let e = errors(
            "[schedules.a]\ncron = \"61 * * * *\"\n\n[schedules.b]\ncron = \"* * * * *\"\ntimezone = \"europe/berlin\"\n\n[schedules.c]\ncron = \"* * * * *\"\ntimezone = \"Europe/Berln\"\nassets = [\"dialy+\"]\n\n[schedules.d]\ncron = \"* * * * *\"\nevery = \"1h\"\n\n[schedules.e]\ndescription = \"nothing\"\n\n[schedules.f]\ncron = \"0 0 30 2 *\"\n\n[schedules.g]\nevery = \"1h\"\ncatchup = \"some\"\nmax_catchup = 0\n",
        );
        let joined = e.join("\n");
        assert!(
            joined.contains("sluice.toml:11:8: error: `61 * * * *` is not a cron pattern"),
            "{joined}"
        );
        assert!(joined.contains("sluice.toml:15:12: error: unknown time zone `europe/berlin`\n  help: time zone names are case-sensitive: write `Europe/Berlin`"), "{joined}");
        assert!(joined.contains("sluice.toml:19:12: error: unknown time zone `Europe/Berln`\n  help: did you mean `Europe/Berlin`?"), "{joined}");
        assert!(joined.contains("sluice.toml:20:11: error: unknown asset `dialy` in schedule `c`\n  help: did you mean `daily`?"), "{joined}");
        assert!(
            joined.contains("sluice.toml:22:12: error: schedule `d` has both `cron` and `every`"),
            "{joined}"
        );
        assert!(
            joined.contains("error: schedule `e` says not when to run"),
            "{joined}"
        );
        assert!(
            joined.contains("error: cron pattern `0 0 30 2 *` never fires"),
            "{joined}"
        );
        assert!(joined.contains("unknown variant `some`"), "{joined}");
        assert!(
            joined.contains("`max_catchup = 0` is out of range"),
            "{joined}"
        );
        assert_eq!(e.len(), 9, "{joined}");
    }

    #[test]
    fn an_unknown_key_and_a_bad_duration_are_errors_of_the_file() {
        let e = errors("[schedules.a]\nevery = \"soon\"\nwhen = \"now\"\n");
        let joined = e.join("\n");
        assert!(joined.contains("`soon` is not a duration"), "{joined}");
        assert!(joined.contains("unknown field `when`"), "{joined}");
        let e = errors("[schedules.a]\nevery = \"1h\"\ntimezone = \"Europe/Berlin\"\n");
        assert!(
            e.join("\n").contains("`timezone` applies to `cron` only"),
            "{e:?}"
        );
    }
}
