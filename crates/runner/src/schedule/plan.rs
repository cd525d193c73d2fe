//! Which ticks are due, and which of them run: given a schedule, what is
//! recorded of it and the present, with no IO (the scheduler records and runs
//! what this decides).
//!
//! The ticks due are those after the newest recorded one and not before the
//! schedule was first enabled (older ones would be a backfill, not a catch-up).
//! The newest is on time when it could start no more than [`GRACE`] ago — it
//! was due then, or came due while the schedule's previous run ran and that
//! run ended then; on time, it runs, and the older ones are missed. When even
//! the newest is late, the scheduler was down: all are missed. Missed ticks
//! follow the schedule's `catchup`: `skip` runs none, `latest` only the newest,
//! `all` the newest `max_catchup`, oldest first. The others are skipped.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use sluice_project::{Catchup, ScheduleDef};

use super::times::next_after;

/// How late a tick may start and still be on time, not missed.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// At most this many missed ticks are listed (and recorded as skipped) at once;
/// `max_catchup` is at most this.
pub(crate) const LISTED: usize = 1000;

/// What is recorded of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// When it was first seen enabled: no earlier tick runs.
    pub enabled_since: DateTime<Utc>,
    /// The due time of its newest recorded tick.
    pub last_due: Option<DateTime<Utc>>,
    /// When the run of its newest recorded tick ended, if it ran and ended.
    pub last_run_ended: Option<DateTime<Utc>>,
}

/// The ticks due at a moment, and what becomes of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Ticks not run (recorded `skipped`), oldest first.
    pub skipped: Vec<DateTime<Utc>>,
    /// Ticks to run now, oldest first, one after another.
    pub run: Vec<DateTime<Utc>>,
    /// Whether older missed ticks than those listed may exist (not recorded).
    pub more_skipped: bool,
    /// The schedule's next tick after the present.
    pub next: Option<DateTime<Utc>>,
}

/// Decides, at `now`, which of `def`'s ticks run and which are skipped.
pub fn plan(def: &ScheduleDef, history: &History, now: DateTime<Utc>) -> Plan {
    let not_before = history.enabled_since - Duration::microseconds(1);
    let after = history.last_due.map_or(not_before, |d| d.max(not_before));
    let next = next_after(def, now.max(after));
    let (mut due, more) = due_ticks(def, after, now);
    let Some(newest) = due.back().copied() else {
        return Plan {
            next,
            ..Plan::default()
        };
    };
    let could_start = history.last_run_ended.map_or(newest, |e| e.max(newest));
    let grace = Duration::from_std(GRACE).unwrap_or_default();
    let on_time = now - could_start <= grace;
    let keep = match (def.catchup, on_time) {
        (Catchup::All, _) => def.max_catchup as usize,
        (Catchup::Skip, false) => 0,
        _ => 1,
    };
    let run = due.split_off(due.len().saturating_sub(keep));
    Plan {
        skipped: due.into(),
        run: run.into(),
        more_skipped: more,
        next,
    }
}

/// The ticks in `(after, now]`, oldest first: the newest [`LISTED`] of them,
/// and whether older ones may exist. A long downtime of a schedule that fires
/// every second is searched from the present backwards in growing windows, so
/// the work stays bounded.
fn due_ticks(
    def: &ScheduleDef,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (VecDeque<DateTime<Utc>>, bool) {
    let mut window = Duration::hours(1);
    loop {
        let from = now
            .checked_sub_signed(window)
            .filter(|f| *f > after)
            .unwrap_or(after);
        let mut ticks = VecDeque::new();
        let mut dropped = false;
        let mut t = from;
        while let Some(n) = next_after(def, t).filter(|n| *n <= now) {
            ticks.push_back(n);
            if ticks.len() > LISTED {
                ticks.pop_front();
                dropped = true;
            }
            t = n;
        }
        if from == after {
            return (ticks, dropped);
        }
        if ticks.len() >= LISTED {
            return (ticks, true);
        }
        window = window * 8;
    }
}

#[cfg(test)]
mod tests {
    use chrono_tz::Tz;

    use super::*;
    use crate::schedule::tests::schedule;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn hms(ts: &[DateTime<Utc>]) -> Vec<String> {
        ts.iter()
            .map(|t| t.format("%d %H:%M:%S").to_string())
            .collect()
    }

    fn with(catchup: Catchup, max: u32) -> ScheduleDef {
        let mut def = schedule("cron 0 * * * *", Tz::UTC);
        def.catchup = catchup;
        def.max_catchup = max;
        def
    }

    /// Enabled long ago; the newest tick recorded at 10:00, run and ended at
    /// 10:02; the scheduler comes back at 15:20.
    fn after_downtime(def: &ScheduleDef) -> Plan {
        let h = History {
            enabled_since: at("2026-01-01T00:00:00Z"),
            last_due: Some(at("2026-05-04T10:00:00Z")),
            last_run_ended: Some(at("2026-05-04T10:02:00Z")),
        };
        plan(def, &h, at("2026-05-04T15:20:00Z"))
    }

    #[test]
    fn skip_runs_none_of_the_missed_ticks_and_records_them() {
        let p = after_downtime(&with(Catchup::Skip, 10));
        assert_eq!(
            hms(&p.skipped),
            [
                "04 11:00:00",
                "04 12:00:00",
                "04 13:00:00",
                "04 14:00:00",
                "04 15:00:00"
            ]
        );
        assert!(p.run.is_empty());
        assert_eq!(p.next, Some(at("2026-05-04T16:00:00Z")));
        assert!(!p.more_skipped);
    }

    #[test]
    fn latest_runs_only_the_newest_missed_tick() {
        let p = after_downtime(&with(Catchup::Latest, 10));
        assert_eq!(
            hms(&p.skipped),
            ["04 11:00:00", "04 12:00:00", "04 13:00:00", "04 14:00:00"]
        );
        assert_eq!(hms(&p.run), ["04 15:00:00"]);
    }

    #[test]
    fn all_runs_the_missed_ticks_oldest_first_up_to_the_cap() {
        let p = after_downtime(&with(Catchup::All, 10));
        assert!(p.skipped.is_empty());
        assert_eq!(p.run.len(), 5);
        assert_eq!(hms(&p.run[..1]), ["04 11:00:00"]);
        let p = after_downtime(&with(Catchup::All, 2));
        assert_eq!(
            hms(&p.skipped),
            ["04 11:00:00", "04 12:00:00", "04 13:00:00"]
        );
        assert_eq!(hms(&p.run), ["04 14:00:00", "04 15:00:00"]);
    }

    #[test]
    fn a_tick_a_few_seconds_late_is_on_time_even_with_skip() {
        let def = with(Catchup::Skip, 10);
        let h = History {
            enabled_since: at("2026-01-01T00:00:00Z"),
            last_due: Some(at("2026-05-04T14:00:00Z")),
            last_run_ended: Some(at("2026-05-04T14:01:00Z")),
        };
        let p = plan(&def, &h, at("2026-05-04T15:00:03Z"));
        assert_eq!(
            (hms(&p.run), p.skipped.len()),
            (vec!["04 15:00:00".to_string()], 0)
        );
        // Not yet due: nothing, and when to look again.
        let p = plan(&def, &h, at("2026-05-04T14:59:59Z"));
        assert_eq!((p.run.len(), p.skipped.len()), (0, 0));
        assert_eq!(p.next, Some(at("2026-05-04T15:00:00Z")));
        // Late by more than the grace: missed, so skipped.
        let p = plan(&def, &h, at("2026-05-04T15:00:06Z"));
        assert_eq!(
            (p.run.len(), hms(&p.skipped)),
            (0, vec!["04 15:00:00".to_string()])
        );
    }

    #[test]
    fn a_tick_due_while_the_previous_run_ran_waits_for_it_and_runs() {
        let def = with(Catchup::Skip, 10);
        // The 14:00 run took until 15:40; the 15:00 tick waited, so it is on time.
        let h = History {
            enabled_since: at("2026-01-01T00:00:00Z"),
            last_due: Some(at("2026-05-04T14:00:00Z")),
            last_run_ended: Some(at("2026-05-04T15:40:00Z")),
        };
        let p = plan(&def, &h, at("2026-05-04T15:40:01Z"));
        assert_eq!(
            (hms(&p.run), p.skipped.len()),
            (vec!["04 15:00:00".to_string()], 0)
        );
    }

    #[test]
    fn no_tick_from_before_the_schedule_was_first_enabled() {
        let def = with(Catchup::All, 10);
        let h = History {
            enabled_since: at("2026-05-04T13:30:00Z"),
            last_due: None,
            last_run_ended: None,
        };
        let p = plan(&def, &h, at("2026-05-04T15:20:00Z"));
        assert!(p.skipped.is_empty());
        assert_eq!(hms(&p.run), ["04 14:00:00", "04 15:00:00"]);
        // A tick due exactly when it was enabled counts.
        let h = History {
            enabled_since: at("2026-05-04T14:00:00Z"),
            ..h
        };
        let p = plan(&def, &h, at("2026-05-04T14:00:01Z"));
        assert_eq!(hms(&p.run), ["04 14:00:00"]);
    }

    #[test]
    fn a_recorded_tick_is_never_due_again() {
        let def = with(Catchup::All, 10);
        let h = History {
            enabled_since: at("2026-01-01T00:00:00Z"),
            last_due: Some(at("2026-05-04T15:00:00Z")),
            last_run_ended: None,
        };
        let p = plan(&def, &h, at("2026-05-04T15:59:59Z"));
        assert_eq!(
            p,
            Plan {
                next: Some(at("2026-05-04T16:00:00Z")),
                ..Plan::default()
            }
        );
    }

    #[test]
    fn a_long_downtime_of_a_fast_schedule_lists_only_the_newest_missed_ticks() {
        let mut def = schedule("cron * * * * * *", Tz::UTC);
        def.catchup = Catchup::Latest;
        let h = History {
            enabled_since: at("2026-01-01T00:00:00Z"),
            last_due: Some(at("2026-01-01T00:00:00Z")),
            last_run_ended: None,
        };
        let p = plan(&def, &h, at("2026-05-04T15:20:00Z"));
        assert_eq!(hms(&p.run), ["04 15:20:00"]);
        assert_eq!(p.skipped.len(), LISTED - 1);
        assert_eq!(hms(&p.skipped[LISTED - 2..]), ["04 15:19:59"]);
        assert!(p.more_skipped);
        let mut def = schedule("every 1s", Tz::UTC);
        def.catchup = Catchup::Skip;
        // The tick due at the present is on time, so even `skip` runs it.
        let p = plan(&def, &h, at("2026-05-04T15:20:00Z"));
        assert_eq!(
            (hms(&p.run), p.skipped.len(), p.more_skipped),
            (vec!["04 15:20:00".to_string()], LISTED - 1, true)
        );
    }
}
