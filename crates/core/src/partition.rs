//! Time partitions: an asset `partitioned = { by = "day", column = "ts", start = ... }`
//! is built one partition at a time, each the rows whose `column` falls in
//! `[start, end)` of one hour, day or month. Bounds are wall-clock times
//! (`NaiveDateTime`), read in UTC for columns with a time zone.

use std::fmt;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// How long one partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    /// One hour: `2024-01-05T13`.
    Hour,
    /// One day: `2024-01-05`.
    Day,
    /// One calendar month: `2024-01`.
    Month,
}

impl Grain {
    /// The words accepted in `by`.
    pub const WORDS: [&str; 3] = ["hour", "day", "month"];

    /// The grain a word names.
    pub fn parse(word: &str) -> Option<Grain> {
        match word {
            "hour" => Some(Grain::Hour),
            "day" => Some(Grain::Day),
            "month" => Some(Grain::Month),
            _ => None,
        }
    }

    /// Its word.
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
            Grain::Month => "month",
        }
    }

    /// The start of the partition that holds `t`.
    pub fn floor(self, t: NaiveDateTime) -> NaiveDateTime {
        let day = t.date();
        match self {
            Grain::Hour => {
                day.and_time(NaiveTime::from_hms_opt(t.hour(), 0, 0).unwrap_or_default())
            }
            Grain::Day => day.and_time(NaiveTime::MIN),
            Grain::Month => day.with_day(1).unwrap_or(day).and_time(NaiveTime::MIN),
        }
    }

    /// The start of the partition after the one starting at `start`.
    pub fn next(self, start: NaiveDateTime) -> NaiveDateTime {
        match self {
            Grain::Hour => start + Duration::hours(1),
            Grain::Day => start + Duration::days(1),
            Grain::Month => {
                let d = start.date();
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1)
                    .unwrap_or(d)
                    .and_time(NaiveTime::MIN)
            }
        }
    }

    /// The partition that holds `t`.
    pub fn partition(self, t: NaiveDateTime) -> Partition {
        let start = self.floor(t);
        Partition {
            grain: self,
            start,
            end: self.next(start),
        }
    }

    /// Reads a partition's label (`2024-01-05`, `2024-01-05T13`, `2024-01`),
    /// or a date or time inside it (`2024-01-05 13:30:00` for an hour).
    pub fn parse_label(self, text: &str) -> Option<Partition> {
        let text = text.trim();
        // chrono needs the minutes to make a time.
        let t = NaiveDateTime::parse_from_str(&format!("{text}:00"), "%Y-%m-%dT%H:%M")
            .ok()
            .or_else(|| parse_time(text))
            .or_else(|| {
                NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
                    .ok()
                    .filter(|_| self == Grain::Month)
                    .map(|d| d.and_time(NaiveTime::MIN))
            })?;
        Some(self.partition(t))
    }

    /// The partitions from the one holding `from` to the one holding `to`,
    /// both included.
    pub fn range(self, from: NaiveDateTime, to: NaiveDateTime) -> Vec<Partition> {
        let mut out = Vec::new();
        let mut p = self.partition(from);
        while p.start <= to {
            out.push(p);
            p = self.partition(p.end);
        }
        out
    }
}

impl fmt::Display for Grain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A date (`2024-01-05`) or a date and time (`2024-01-05T13:30:00`, with a
/// space or `T`, seconds optional) as a wall-clock time.
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN))
}

/// One partition: the rows whose partition column is in `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Its grain.
    pub grain: Grain,
    /// The first time it holds.
    pub start: NaiveDateTime,
    /// The first time after it.
    pub end: NaiveDateTime,
}

impl Partition {
    /// Its label: `2024-01-05T13`, `2024-01-05` or `2024-01`.
    pub fn label(&self) -> String {
        match self.grain {
            Grain::Hour => self.start.format("%Y-%m-%dT%H").to_string(),
            Grain::Day => self.start.format("%Y-%m-%d").to_string(),
            Grain::Month => self.start.format("%Y-%m").to_string(),
        }
    }
}

/// A partition's bound written into a text: `{start}` or `{end}`, bare (in
/// the grain's default form) or with a chrono strftime format after a colon
/// (`{start:%Y%m%d}`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placeholder<'a> {
    /// Where it is in the text, braces included.
    at: std::ops::Range<usize>,
    /// `{end}` rather than `{start}`.
    end: bool,
    /// The format written after the colon.
    format: Option<&'a str>,
}

/// The placeholders of `text`, in order.
fn placeholders(text: &str) -> Vec<Placeholder<'_>> {
    let mut out = vec![];
    let mut from = 0;
    while let Some(i) = text[from..].find('{').map(|i| i + from) {
        from = i + 1;
        // `${start}` is an environment variable.
        if text[..i].ends_with('$') {
            continue;
        }
        let rest = &text[i + 1..];
        let (end, after) = if let Some(r) = rest.strip_prefix("start") {
            (false, r)
        } else if let Some(r) = rest.strip_prefix("end") {
            (true, r)
        } else {
            continue;
        };
        let taken = rest.len() - after.len();
        let (format, len) = if after.starts_with('}') {
            (None, taken + 2)
        } else if let Some(f) = after.strip_prefix(':')
            && let Some(close) = f.find('}')
        {
            (Some(&f[..close]), taken + 1 + close + 2)
        } else {
            continue;
        };
        out.push(Placeholder {
            at: i..i + len,
            end,
            format,
        });
        from = i + len;
    }
    out
}

/// Whether `text` holds `{start}` or `{end}` placeholders; an error names a
/// format chrono cannot write.
pub fn check_placeholders(text: &str) -> Result<bool, String> {
    let found = placeholders(text);
    for p in &found {
        if let Some(f) = p.format
            && chrono::format::StrftimeItems::new(f)
                .any(|i| matches!(i, chrono::format::Item::Error))
        {
            return Err(format!(
                "`{}`: `{f}` is not a strftime format",
                &text[p.at.clone()]
            ));
        }
    }
    Ok(!found.is_empty())
}

impl Partition {
    /// `text` with its `{start}` and `{end}` written as this partition's
    /// bounds: bare, a date for day and month partitions (`2024-01-05`) and a
    /// UTC time for hours (`2024-01-05T13:00:00Z`); `{end}` is the first time
    /// after the partition.
    pub fn fill(&self, text: &str) -> Result<String, String> {
        use std::fmt::Write as _;
        let default = match self.grain {
            Grain::Hour => "%Y-%m-%dT%H:%M:%SZ",
            Grain::Day | Grain::Month => "%Y-%m-%d",
        };
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for p in placeholders(text) {
            out.push_str(&text[last..p.at.start]);
            let t = if p.end { self.end } else { self.start };
            let format = p.format.unwrap_or(default);
            let items = chrono::format::StrftimeItems::new(format);
            if items
                .clone()
                .any(|i| matches!(i, chrono::format::Item::Error))
            {
                return Err(format!("`{format}` is not a strftime format"));
            }
            write!(out, "{}", t.format_with_items(items))
                .map_err(|_| format!("`{format}` cannot write {t}"))?;
            last = p.at.end;
        }
        out.push_str(&text[last..]);
        Ok(out)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        parse_time(s).expect("a time")
    }

    #[test]
    fn partitions_floor_step_and_label_at_each_grain() {
        let p = Grain::Hour.partition(t("2024-03-31 23:59:59"));
        assert_eq!(
            (p.label(), p.end),
            ("2024-03-31T23".into(), t("2024-04-01"))
        );
        let p = Grain::Day.partition(t("2024-02-29T12:00"));
        assert_eq!((p.label(), p.end), ("2024-02-29".into(), t("2024-03-01")));
        let p = Grain::Month.partition(t("2023-12-15"));
        assert_eq!((p.label(), p.end), ("2023-12".into(), t("2024-01-01")));
        for grain in [Grain::Hour, Grain::Day, Grain::Month] {
            let p = grain.partition(t("2024-07-04 05:06:07"));
            assert_eq!(grain.parse_label(&p.label()), Some(p), "{grain}");
        }
        assert_eq!(Grain::Day.parse_label("2024-13-01"), None);
    }

    #[test]
    fn a_range_holds_both_ends() {
        let days = Grain::Day.range(t("2024-01-30 10:00"), t("2024-02-02"));
        let labels: Vec<String> = days.iter().map(Partition::label).collect();
        assert_eq!(
            labels,
            ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]
        );
        assert!(
            Grain::Day
                .range(t("2024-02-02"), t("2024-02-01"))
                .is_empty()
        );
        assert_eq!(
            Grain::Month.range(t("2024-01-31"), t("2024-03-01")).len(),
            3
        );
    }

    #[test]
    fn placeholders_are_filled_with_the_bounds_in_the_grain_s_form_or_as_written() {
        let day = Grain::Day.partition(t("2024-02-29 10:00"));
        assert_eq!(
            day.fill("/games?from={start}&to={end}").as_deref(),
            Ok("/games?from=2024-02-29&to=2024-03-01")
        );
        assert_eq!(
            day.fill("/d/{start:%Y%m%d}.json").as_deref(),
            Ok("/d/20240229.json")
        );
        let hour = Grain::Hour.partition(t("2024-03-31 23:10"));
        assert_eq!(
            hour.fill("{start}..{end}").as_deref(),
            Ok("2024-03-31T23:00:00Z..2024-04-01T00:00:00Z")
        );
        // JSON braces and other words in braces are left alone.
        let body = r#"{"start": 1, "x": "{starts}", "y": "{start:%Y}"}"#;
        assert_eq!(
            day.fill(body).as_deref(),
            Ok(r#"{"start": 1, "x": "{starts}", "y": "2024"}"#)
        );
        assert_eq!(check_placeholders(body), Ok(true));
        assert_eq!(check_placeholders("https://x/{id}"), Ok(false));
        assert_eq!(check_placeholders("https://x/${start}"), Ok(false));
        assert!(check_placeholders("/{end:%Q}").is_err());
    }
}
