//! Columns the reader reads as text and converts here, batch by batch, so that
//! a value that does not convert stops the read at its row (for the caller to
//! report with the file position) instead of changing silently:
//!
//! - date and timestamp columns written in a form of their own (`formats = {
//!   sold = "%m/%d/%y" }`), parsed with chrono. A column whose contract has a
//!   `type` rule becomes ISO 8601 text instead, a value that does not match
//!   left as written: the rule then quarantines its row, as it does for any
//!   text that does not convert, and the other rows publish;
//! - CSV columns inferred as numbers from the first records: a later value
//!   that would not survive as a number (`007`) is an error, not a `7`.

use std::sync::Arc;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, SchemaRef};
use sluice_project::TimeFormat;

use crate::infer::survives;

/// What a formatted column becomes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A date.
    Date,
    /// A timestamp; values without an offset are local times of `zone`.
    Timestamp {
        /// The source's time zone.
        zone: Tz,
        /// The column's type (microseconds, labelled with the zone).
        data_type: DataType,
    },
}

/// One column read as text and converted.
#[derive(Debug, Clone)]
pub(crate) struct Conversion {
    /// The column's index in the batch.
    pub index: usize,
    /// The column's name, for messages.
    pub column: String,
    /// What it becomes.
    pub kind: Kind,
}

/// What a column read as text becomes.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A date or timestamp written in a format of its own.
    Time(TimeConversion),
    /// A number type inferred from the first `sampled` records (int64 or float64).
    Number {
        /// The inferred type.
        data_type: DataType,
        /// Records inference read.
        sampled: usize,
    },
}

/// A date or timestamp column of `formats`.
#[derive(Debug, Clone)]
pub(crate) struct TimeConversion {
    /// The pattern values are written in.
    pub format: TimeFormat,
    /// The type it becomes.
    pub target: Target,
    /// ISO text for a contract's `type` rule to judge, instead of the type.
    pub as_text: bool,
}

/// A value that does not match its column's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// The row in the batch, 0-based.
    pub row: usize,
    /// The column's index in the batch.
    pub index: usize,
    /// The value as written.
    pub value: String,
}

/// A parsed value.
enum Value {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

impl Conversion {
    /// The type the column has once converted.
    pub fn data_type(&self) -> DataType {
        match &self.kind {
            Kind::Time(t) => t.data_type(),
            Kind::Number { data_type, .. } => data_type.clone(),
        }
    }

    /// What is wrong with `value` of this column, and what to do.
    pub fn explain(&self, value: &str) -> (String, String) {
        let shown: String = value.chars().take(80).collect();
        let column = &self.column;
        match &self.kind {
            Kind::Time(t) => (
                format!(
                    "`{shown}` does not match the format `{}` of column `{column}` ({})",
                    t.format.pattern(),
                    t.type_word()
                ),
                format!(
                    "fix the value or `formats.{column}` (chrono strftime syntax); with `type = \"{}\"` in the column's contract rules, such rows are quarantined instead",
                    t.type_word()
                ),
            ),
            Kind::Number { data_type, .. } if parses(value, data_type) => (
                format!(
                    "`{shown}` would not survive as a number (leading zeros, a sign or digits would be lost), and column `{column}` was read as {data_type} from the first records"
                ),
                format!(
                    "keep the text with `columns = {{ {column} = \"string\" }}`, or raise `infer_rows` (0 reads every record) so that inference sees this value"
                ),
            ),
            Kind::Number { data_type, sampled } => (
                format!(
                    "`{shown}` is not a valid {data_type} (column `{column}` was read as {data_type} from the first {sampled} records)"
                ),
                "fix the value, declare the column's type in `columns`, or list the marker in `null`".to_string(),
            ),
        }
    }

    /// Converts the column's text; the first value that does not convert stops it.
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, Mismatch> {
        let strings = column
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("a converted column is read as text");
        let mismatch = |row: usize, value: &str| Mismatch {
            row,
            index: self.index,
            value: value.to_string(),
        };
        match &self.kind {
            Kind::Time(t) => t.apply(strings).map_err(|(row, v)| mismatch(row, v)),
            Kind::Number { data_type, .. } => {
                fn numbers<T: std::str::FromStr>(
                    strings: &StringArray,
                    data_type: &DataType,
                ) -> Result<Vec<Option<T>>, usize> {
                    let mut out = Vec::with_capacity(strings.len());
                    for (row, v) in strings.iter().enumerate() {
                        out.push(match v {
                            None => None,
                            Some(text) if survives(text, data_type) => {
                                Some(text.parse::<T>().map_err(|_| row)?)
                            }
                            Some(_) => return Err(row),
                        });
                    }
                    Ok(out)
                }
                let at = |row: usize| mismatch(row, strings.value(row));
                Ok(match data_type {
                    DataType::Int64 => Arc::new(Int64Array::from(
                        numbers::<i64>(strings, data_type).map_err(at)?,
                    )),
                    _ => Arc::new(Float64Array::from(
                        numbers::<f64>(strings, data_type).map_err(at)?,
                    )),
                })
            }
        }
    }
}

/// Whether `text` reads as a number of type `ty`.
fn parses(text: &str, ty: &DataType) -> bool {
    match ty {
        DataType::Int64 => text.parse::<i64>().is_ok(),
        _ => text.parse::<f64>().is_ok(),
    }
}

impl TimeConversion {
    /// The type the column has once converted.
    fn data_type(&self) -> DataType {
        match (&self.target, self.as_text) {
            (_, true) => DataType::Utf8,
            (Target::Date, false) => DataType::Date32,
            (Target::Timestamp { data_type, .. }, false) => data_type.clone(),
        }
    }

    /// What the column's type is called in messages.
    fn type_word(&self) -> &'static str {
        match self.target {
            Target::Date => "date",
            Target::Timestamp { .. } => "timestamp",
        }
    }

    fn parse(&self, text: &str) -> Option<Value> {
        let text = text.trim();
        let pattern = self.format.pattern();
        match &self.target {
            Target::Date => NaiveDate::parse_from_str(text, pattern)
                .ok()
                .map(Value::Date),
            Target::Timestamp { zone, .. } => {
                let instant = if self.format.has_offset() {
                    DateTime::parse_from_str(text, pattern)
                        .ok()?
                        .with_timezone(&Utc)
                } else if self.format.is_epoch() {
                    NaiveDateTime::parse_from_str(text, pattern).ok()?.and_utc()
                } else {
                    let local = if self.format.has_time() {
                        NaiveDateTime::parse_from_str(text, pattern).ok()?
                    } else {
                        NaiveDate::parse_from_str(text, pattern)
                            .ok()?
                            .and_hms_opt(0, 0, 0)?
                    };
                    // A local time that a clock change skips or repeats is
                    // refused, as Arrow's own timestamp parsing does.
                    match zone.from_local_datetime(&local) {
                        LocalResult::Single(t) => t.with_timezone(&Utc),
                        _ => return None,
                    }
                };
                Some(Value::Instant(instant))
            }
        }
    }

    /// Converts the text; the first value that does not match stops it.
    fn apply<'a>(&self, strings: &'a StringArray) -> Result<ArrayRef, (usize, &'a str)> {
        if self.as_text {
            let out: StringArray = strings
                .iter()
                .map(|v| {
                    v.map(|text| match self.parse(text) {
                        Some(Value::Date(d)) => d.format("%Y-%m-%d").to_string(),
                        Some(Value::Instant(t)) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                        None => text.to_string(),
                    })
                })
                .collect();
            return Ok(Arc::new(out));
        }
        match &self.target {
            Target::Date => {
                let mut out = Vec::with_capacity(strings.len());
                for (row, v) in strings.iter().enumerate() {
                    out.push(match v {
                        None => None,
                        Some(text) => match self.parse(text) {
                            Some(Value::Date(d)) => Some(Date32Type::from_naive_date(d)),
                            _ => return Err((row, text)),
                        },
                    });
                }
                Ok(Arc::new(Date32Array::from(out)))
            }
            Target::Timestamp { data_type, .. } => {
                let mut out = Vec::with_capacity(strings.len());
                for (row, v) in strings.iter().enumerate() {
                    out.push(match v {
                        None => None,
                        Some(text) => match self.parse(text) {
                            Some(Value::Instant(t)) => Some(t.timestamp_micros()),
                            _ => return Err((row, text)),
                        },
                    });
                }
                let DataType::Timestamp(_, zone) = data_type else {
                    unreachable!("a timestamp target has a timestamp type")
                };
                Ok(Arc::new(
                    TimestampMicrosecondArray::from(out).with_timezone_opt(zone.clone()),
                ))
            }
        }
    }
}

/// Converts every formatted column of `batch` into `schema`'s types.
pub(crate) fn convert(
    conversions: &[Conversion],
    batch: RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, Mismatch> {
    if conversions.is_empty() {
        return Ok(batch);
    }
    let mut columns = batch.columns().to_vec();
    for c in conversions {
        columns[c.index] = c.apply(&columns[c.index])?;
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)
        .expect("converted columns have the converted schema's types"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversion(pattern: &str, target: Target, as_text: bool) -> Conversion {
        Conversion {
            index: 0,
            column: "sold".into(),
            kind: Kind::Time(TimeConversion {
                format: TimeFormat::parse(pattern).expect("valid"),
                target,
                as_text,
            }),
        }
    }

    fn texts(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    #[test]
    fn month_day_year_dates_parse() {
        let c = conversion("%m/%d/%y", Target::Date, false);
        let out = c
            .apply(&texts(&[Some("6/5/22"), None, Some("12/31/99")]))
            .expect("parses");
        let dates = out.as_any().downcast_ref::<Date32Array>().expect("dates");
        assert_eq!(dates.value_as_date(0), NaiveDate::from_ymd_opt(2022, 6, 5));
        assert!(dates.is_null(1));
        assert_eq!(
            dates.value_as_date(2),
            NaiveDate::from_ymd_opt(1999, 12, 31)
        );
    }

    #[test]
    fn local_times_are_read_in_the_source_zone() {
        let zone: Tz = "America/New_York".parse().expect("a zone");
        let data_type = sluice_core::timestamp_in("America/New_York");
        let c = conversion("%Y%m%d %H%M", Target::Timestamp { zone, data_type }, false);
        let out = c.apply(&texts(&[Some("20130101 0517")])).expect("parses");
        let t = out
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("timestamps");
        // 05:17 in New York in January is 10:17 UTC.
        assert_eq!(
            t.value(0),
            Utc.with_ymd_and_hms(2013, 1, 1, 10, 17, 0)
                .single()
                .expect("valid")
                .timestamp_micros()
        );
    }

    #[test]
    fn a_value_that_does_not_match_names_its_row() {
        let c = conversion("%m/%d/%y", Target::Date, false);
        let e = c
            .apply(&texts(&[Some("6/5/22"), Some("2022-06-05")]))
            .expect_err("does not match");
        assert_eq!(
            e,
            Mismatch {
                row: 1,
                index: 0,
                value: "2022-06-05".into()
            }
        );
    }

    #[test]
    fn for_a_type_rule_values_become_iso_text_and_bad_ones_stay() {
        let c = conversion("%m/%d/%y", Target::Date, true);
        let out = c
            .apply(&texts(&[Some("6/5/22"), Some("13/45/22")]))
            .expect("never fails");
        let s = out.as_any().downcast_ref::<StringArray>().expect("text");
        assert_eq!((s.value(0), s.value(1)), ("2022-06-05", "13/45/22"));
    }

    #[test]
    fn a_number_column_stops_at_a_value_that_would_lose_its_zeros() {
        let c = Conversion {
            index: 0,
            column: "id".into(),
            kind: Kind::Number {
                data_type: DataType::Int64,
                sampled: 2,
            },
        };
        let out = c
            .apply(&texts(&[Some("5"), None, Some("-12")]))
            .expect("numbers");
        assert_eq!(
            out.as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64")
                .iter()
                .collect::<Vec<_>>(),
            [Some(5), None, Some(-12)]
        );
        let e = c
            .apply(&texts(&[Some("5"), Some("007")]))
            .expect_err("007 is no number");
        assert_eq!((e.row, e.value.as_str()), (1, "007"));
        assert!(c.explain("007").0.contains("would not survive as a number"));
        assert!(c.explain("abc").0.contains("`abc` is not a valid Int64"));
    }
}
