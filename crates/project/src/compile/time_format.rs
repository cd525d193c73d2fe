//! A source column's date or time format (`formats = { col = "%m/%d/%y" }`):
//! chrono's strftime syntax, checked once, with what the pattern holds — a
//! time of day, an offset — deciding the column's type and how a value is read.

use chrono::format::{Fixed, Item, Numeric, StrftimeItems};

/// A checked date or time pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    pattern: String,
    has_time: bool,
    has_offset: bool,
    epoch: bool,
}

/// Why a pattern is not a usable date or time format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFormat {
    /// chrono cannot read the pattern.
    #[error("`{pattern}` is not a date or time format: chrono does not know one of its `%` codes")]
    Syntax {
        /// The pattern as written.
        pattern: String,
    },
    /// The pattern lacks a year or a day, so no value makes a date.
    #[error("`{pattern}` holds no full date: it needs a year (`%Y`, `%y`) and a day (`%d`, `%j`)")]
    NoDate {
        /// The pattern as written.
        pattern: String,
    },
}

impl TimeFormat {
    /// Checks `pattern`: every `%` code known, and a date in it.
    pub fn parse(pattern: &str) -> Result<Self, InvalidFormat> {
        let mut has_time = false;
        let mut has_offset = false;
        let mut has_year = false;
        let mut has_day = false;
        let mut epoch = false;
        for item in StrftimeItems::new(pattern) {
            match item {
                Item::Error => {
                    return Err(InvalidFormat::Syntax {
                        pattern: pattern.to_string(),
                    });
                }
                Item::Numeric(n, _) => match n {
                    Numeric::Hour
                    | Numeric::Hour12
                    | Numeric::Minute
                    | Numeric::Second
                    | Numeric::Nanosecond => has_time = true,
                    Numeric::Timestamp => {
                        epoch = true;
                        (has_year, has_day, has_time) = (true, true, true);
                    }
                    Numeric::Year
                    | Numeric::YearMod100
                    | Numeric::IsoYear
                    | Numeric::IsoYearMod100 => has_year = true,
                    Numeric::Ordinal | Numeric::Day | Numeric::IsoWeek => has_day = true,
                    _ => {}
                },
                Item::Fixed(f) => match f {
                    Fixed::TimezoneOffset
                    | Fixed::TimezoneOffsetColon
                    | Fixed::TimezoneOffsetDoubleColon
                    | Fixed::TimezoneOffsetTripleColon
                    | Fixed::TimezoneOffsetColonZ
                    | Fixed::TimezoneOffsetZ => has_offset = true,
                    Fixed::RFC2822 | Fixed::RFC3339 => {
                        (has_year, has_day, has_time, has_offset) = (true, true, true, true);
                    }
                    Fixed::Nanosecond
                    | Fixed::Nanosecond3
                    | Fixed::Nanosecond6
                    | Fixed::Nanosecond9
                    | Fixed::LowerAmPm
                    | Fixed::UpperAmPm => has_time = true,
                    _ => {}
                },
                _ => {}
            }
        }
        if !(has_year && has_day) {
            return Err(InvalidFormat::NoDate {
                pattern: pattern.to_string(),
            });
        }
        Ok(Self {
            pattern: pattern.to_string(),
            has_time,
            has_offset,
            epoch,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern holds a time of day: the column is then a timestamp.
    pub fn has_time(&self) -> bool {
        self.has_time
    }

    /// Whether the pattern holds a UTC offset (`%z`, `%:z`, `%+`): values are
    /// then instants, whatever the source's `timezone`.
    pub fn has_offset(&self) -> bool {
        self.has_offset
    }

    /// Whether the pattern holds seconds since the Unix epoch (`%s`), which are
    /// UTC instants.
    pub fn is_epoch(&self) -> bool {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_say_whether_they_hold_a_time_and_an_offset() {
        let d = TimeFormat::parse("%m/%d/%y").expect("valid");
        assert!(!d.has_time() && !d.has_offset());
        let t = TimeFormat::parse("%Y%m%d %H%M").expect("valid");
        assert!(t.has_time() && !t.has_offset());
        let z = TimeFormat::parse("%d.%m.%Y %H:%M %z").expect("valid");
        assert!(z.has_time() && z.has_offset());
        assert!(TimeFormat::parse("%s").expect("valid").is_epoch());
    }

    #[test]
    fn a_format_with_an_unknown_code_or_no_date_is_refused() {
        assert_eq!(
            TimeFormat::parse("%Q-%m"),
            Err(InvalidFormat::Syntax {
                pattern: "%Q-%m".into()
            })
        );
        assert_eq!(
            TimeFormat::parse("%m/%d %H:%M"),
            Err(InvalidFormat::NoDate {
                pattern: "%m/%d %H:%M".into()
            })
        );
    }
}
