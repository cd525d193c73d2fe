//! How sluice writes a point in time as text, everywhere it shows one: the
//! REST API, `sluice get`, `sluice query`, exports and the run log's listings.
//!
//! An instant (a timestamp with a time zone; sluice stores those in UTC) is RFC
//! 3339 with `Z`: `2013-01-01T13:46:00Z`. A timestamp without a time zone is a
//! wall-clock reading, not an instant, and is written without a zone:
//! `2013-01-01T13:46:00`. Fractional seconds appear only when there are some,
//! in groups of three digits. Both forms are exactly what Arrow's JSON and CSV
//! writers (and its table display) print for such columns, so rows rendered by
//! Arrow and values rendered here agree; the runner's tests pin that.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// An instant: RFC 3339 in UTC with `Z`.
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A timestamp without a time zone: RFC 3339 without an offset.
pub fn wall_clock(t: NaiveDateTime) -> String {
    // Arrow prints a zone-less timestamp through chrono's `Debug`, which is this
    // form; `Display` would put a space in place of the `T`.
    format!("{t:?}")
}

/// A timestamp held as microseconds since the epoch: an instant when `zoned`
/// (its column has a time zone), a wall-clock time otherwise. `None` when it is
/// out of chrono's range.
pub fn micros(micros: i64, zoned: bool) -> Option<String> {
    let t = DateTime::from_timestamp_micros(micros)?;
    Some(if zoned {
        instant(t)
    } else {
        wall_clock(t.naive_utc())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_carry_z_and_wall_clock_times_no_zone() {
        assert_eq!(
            micros(1_357_048_000_000_000, true).as_deref(),
            Some("2013-01-01T13:46:40Z")
        );
        assert_eq!(
            micros(1_357_048_000_000_000, false).as_deref(),
            Some("2013-01-01T13:46:40")
        );
        assert_eq!(
            micros(1_357_048_000_500_000, true).as_deref(),
            Some("2013-01-01T13:46:40.500Z")
        );
        assert_eq!(
            micros(1_357_048_000_000_001, false).as_deref(),
            Some("2013-01-01T13:46:40.000001")
        );
    }
}
