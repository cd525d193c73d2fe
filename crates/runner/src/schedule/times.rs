//! When a schedule's ticks fall: the instant after another at which it fires.
//!
//! `every` ticks at the multiples of its duration since 1970-01-01 00:00 UTC.
//! A cron pattern matches wall-clock times in the schedule's time zone; croner
//! finds the matching wall-clock times (as `NaiveDateTime`s, so it knows nothing
//! of daylight saving) and this module turns them into instants, with
//! the rule cron users expect (Vixie cron's):
//!
//! - a pattern with specific hours (`30 2 * * *`, `0 */6 * * *`): a time in a
//!   skipped hour (clocks go forward) fires once, when the gap ends (02:30 →
//!   03:00); a time that happens twice (clocks go back) fires once, the first
//!   time;
//! - a pattern that fires every hour or more often (`*` in the hour field)
//!   follows the clock: nothing fires in a skipped hour, and a repeated hour
//!   fires again.
//!
//! croner 4 has its own daylight-saving rule, but it gives the "once" treatment
//! only to patterns with a single second, minute and hour: `30 2,14 * * *` would
//! skip its 02:30 in the gap and fire twice in a repeated hour. Hence the rule
//! lives here.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use sluice_project::{Cadence, ScheduleDef};

/// The first tick of `def` strictly after `t`; `None` if it never fires again.
pub(crate) fn next_after(def: &ScheduleDef, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &def.cadence {
        Cadence::Every { value, .. } => {
            let step = i64::try_from(value.as_micros()).ok()?.max(1);
            let n = t.timestamp_micros().div_euclid(step).checked_add(1)?;
            DateTime::from_timestamp_micros(n.checked_mul(step)?)
        }
        Cadence::Cron { pattern, .. } => {
            let follows_clock = pattern.pattern.hours.values().len() == 24;
            cron_next(pattern, def.timezone, follows_clock, t)
        }
    }
}

/// How many wall-clock matches one search looks at before giving up (a pattern
/// that matches only inside gaps would otherwise be searched forever).
const SEARCH_LIMIT: usize = 100_000;

fn cron_next(
    pattern: &croner::Cron,
    tz: Tz,
    follows_clock: bool,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Inside the first pass of a repeated hour, the second pass (later wall
    // times come before it) is searched on its own.
    let second_pass = if follows_clock {
        second_pass_tick(pattern, tz, t)
    } else {
        None
    };
    let mut cursor = wall(tz, t);
    let mut first = None;
    for _ in 0..SEARCH_LIMIT {
        let n = wall_next(pattern, cursor, false)?;
        let found = match tz.from_local_datetime(&n) {
            LocalResult::Single(x) => Some(x),
            LocalResult::Ambiguous(a, b) => {
                if a.with_timezone(&Utc) > t || !follows_clock {
                    Some(a)
                } else {
                    Some(b)
                }
            }
            LocalResult::None if follows_clock => None,
            LocalResult::None => gap_end(tz, n),
        }
        .map(|x| x.with_timezone(&Utc))
        .filter(|x| *x > t);
        if found.is_some() {
            first = found;
            break;
        }
        cursor = n;
    }
    match (first, second_pass) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The wall-clock time of an instant in `tz`.
fn wall(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// The next wall-clock time the pattern matches after `n` (or at it).
fn wall_next(pattern: &croner::Cron, n: NaiveDateTime, inclusive: bool) -> Option<NaiveDateTime> {
    pattern.find_next_occurrence(&n, inclusive).ok()
}

fn offset_seconds(tz: Tz, t: DateTime<Utc>) -> i32 {
    t.with_timezone(&tz).offset().fix().local_minus_utc()
}

/// The instant a gap that holds the wall-clock time `n` ends (its first real
/// wall-clock time, 03:00 for a 02:00–03:00 gap).
fn gap_end(tz: Tz, n: NaiveDateTime) -> Option<DateTime<Tz>> {
    // The first whole minute after `n` that exists (gaps end on minutes).
    let mut m = n;
    let after = (0..=24 * 60).find_map(|_| {
        m += Duration::minutes(1);
        tz.from_local_datetime(&m).earliest()
    })?;
    let hi = after.with_timezone(&Utc).timestamp();
    // The change of offset lies within a day before it.
    let change = offset_change(tz, hi - 86_400, hi)?;
    Some(change.with_timezone(&tz))
}

/// The first whole second in `(lo, hi]` whose offset is the one at `hi`,
/// where the offset changes once in between (seconds since the epoch).
fn offset_change(tz: Tz, mut lo: i64, mut hi: i64) -> Option<DateTime<Utc>> {
    let at = |s: i64| DateTime::from_timestamp(s, 0);
    let target = offset_seconds(tz, at(hi)?);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_seconds(tz, at(mid)?) == target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    at(hi)
}

/// When `t` is in the first pass of a repeated hour: the first tick of the
/// second pass (the same wall-clock times, an offset later).
fn second_pass_tick(pattern: &croner::Cron, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let w = wall(tz, t);
    let LocalResult::Ambiguous(first, second) = tz.from_local_datetime(&w) else {
        return None;
    };
    // Whole seconds: `w` dropped nothing but what `first` dropped too.
    if first.with_timezone(&Utc).timestamp() != t.timestamp() {
        return None;
    }
    // The clocks go back between `t` and its second pass.
    let change = offset_change(tz, t.timestamp(), second.with_timezone(&Utc).timestamp())?;
    let start = wall(tz, change);
    let end = wall(tz, change - Duration::seconds(1)) + Duration::seconds(1);
    let n = wall_next(pattern, start, true)?;
    if n >= end {
        return None;
    }
    match tz.from_local_datetime(&n) {
        LocalResult::Ambiguous(_, b) => Some(b.with_timezone(&Utc)).filter(|x| *x > t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn schedule(cadence: &str, tz: Tz) -> ScheduleDef {
        super::super::tests::schedule(cadence, tz)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    /// The ticks after `from`, as RFC 3339 in UTC.
    fn ticks(def: &ScheduleDef, from: &str, n: usize) -> Vec<String> {
        let mut t = at(from);
        let mut out = vec![];
        for _ in 0..n {
            t = next_after(def, t).expect("a next tick");
            out.push(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        out
    }

    #[test]
    fn a_daily_time_in_the_spring_gap_fires_once_when_the_gap_ends() {
        // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let def = schedule("cron 30 2 * * *", chrono_tz::Europe::Berlin);
        assert_eq!(
            ticks(&def, "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T01:30:00Z", // 02:30 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST, the end of the gap
                "2026-03-30T00:30:00Z", // 02:30 CEST
            ]
        );
        // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let def = schedule("cron 30 2 * * *", chrono_tz::America::New_York);
        assert_eq!(
            ticks(&def, "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z",
                "2026-03-10T06:30:00Z"
            ]
        );
    }

    #[test]
    fn a_daily_time_in_the_repeated_hour_fires_once_the_first_time() {
        // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC);
        // 02:30 happens at 00:30 and at 01:30 UTC.
        let def = schedule("cron 30 2 * * *", chrono_tz::Europe::Berlin);
        assert_eq!(
            ticks(&def, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
        // Asked from inside the second pass, it is not fired again.
        assert_eq!(
            ticks(&def, "2026-10-25T01:10:00Z", 1),
            ["2026-10-26T01:30:00Z"]
        );
        // New York, 2026-11-01: 01:30 happens at 05:30 and 06:30 UTC.
        let def = schedule("cron 30 1 * * *", chrono_tz::America::New_York);
        assert_eq!(
            ticks(&def, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
    }

    #[test]
    fn several_specific_hours_get_the_same_treatment_as_one() {
        // croner alone would skip 02:30 here and fire it twice in the autumn.
        let def = schedule("cron 30 2,14 * * *", chrono_tz::Europe::Berlin);
        assert_eq!(
            ticks(&def, "2026-03-28T14:00:00Z", 2),
            ["2026-03-29T01:00:00Z", "2026-03-29T12:30:00Z"]
        );
        assert_eq!(
            ticks(&def, "2026-10-24T14:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-25T13:30:00Z"]
        );
        // Several times inside one gap fire once, merged with the gap's end.
        let def = schedule("cron */20 2,3 * * *", chrono_tz::Europe::Berlin);
        assert_eq!(
            ticks(&def, "2026-03-29T00:50:00Z", 3),
            [
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:20:00Z",
                "2026-03-29T01:40:00Z"
            ]
        );
    }

    #[test]
    fn an_hourly_pattern_follows_the_clock_through_both_changes() {
        let def = schedule("cron */30 * * * *", chrono_tz::Europe::Berlin);
        // Spring: nothing in the gap; the hour after it goes on.
        assert_eq!(
            ticks(&def, "2026-03-29T00:10:00Z", 3),
            [
                "2026-03-29T00:30:00Z", // 01:30 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST
                "2026-03-29T01:30:00Z"
            ]
        );
        // Autumn: the repeated hour fires in both passes, every 30 minutes.
        assert_eq!(
            ticks(&def, "2026-10-24T23:40:00Z", 6),
            [
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T00:30:00Z", // 02:30 CEST
                "2026-10-25T01:00:00Z", // 02:00 CET
                "2026-10-25T01:30:00Z", // 02:30 CET
                "2026-10-25T02:00:00Z", // 03:00 CET
                "2026-10-25T02:30:00Z"
            ]
        );
        // With seconds, across the change.
        let def = schedule("cron 0 0 * * * *", chrono_tz::America::New_York);
        assert_eq!(
            ticks(&def, "2026-11-01T04:30:00Z", 3),
            [
                "2026-11-01T05:00:00Z", // 01:00 EDT
                "2026-11-01T06:00:00Z", // 01:00 EST
                "2026-11-01T07:00:00Z"  // 02:00 EST
            ]
        );
    }

    #[test]
    fn every_ticks_at_multiples_of_its_duration_since_the_epoch() {
        let def = schedule("every 15m", Tz::UTC);
        assert_eq!(
            ticks(&def, "2026-03-29T01:07:30Z", 3),
            [
                "2026-03-29T01:15:00Z",
                "2026-03-29T01:30:00Z",
                "2026-03-29T01:45:00Z"
            ]
        );
        // A tick's own time is not after itself.
        assert_eq!(
            ticks(&def, "2026-03-29T01:15:00Z", 1),
            ["2026-03-29T01:30:00Z"]
        );
        let def = schedule("every 1s", Tz::UTC);
        assert_eq!(
            ticks(&def, "2026-03-29T01:15:00.250Z", 2),
            ["2026-03-29T01:15:01Z", "2026-03-29T01:15:02Z"]
        );
    }

    #[test]
    fn a_utc_pattern_with_calendar_words() {
        // The last Friday of the month at 18:00.
        let def = schedule("cron 0 18 * * 5L", Tz::UTC);
        assert_eq!(
            ticks(&def, "2026-01-01T00:00:00Z", 2),
            ["2026-01-30T18:00:00Z", "2026-02-27T18:00:00Z"]
        );
    }
}
