//! The words of the project file: types (`int64`, `timestamp`...) as Arrow types,
//! and durations (`7d`).

use std::sync::Arc;

use arrow_schema::{DataType, TimeUnit};

/// Parses a type word from `columns = { x = "int64" }`. Timestamps are parsed in
/// `timezone` and stored as UTC instants.
pub fn parse_type(word: &str, timezone: &str) -> Option<DataType> {
    let w = word.trim().to_ascii_lowercase();
    Some(match w.as_str() {
        "string" | "str" | "text" | "utf8" | "varchar" => DataType::Utf8,
        "bool" | "boolean" => DataType::Boolean,
        "int8" | "tinyint" => DataType::Int8,
        "int16" | "smallint" => DataType::Int16,
        "int32" | "int" | "integer" => DataType::Int32,
        "int64" | "bigint" | "long" => DataType::Int64,
        "float32" | "float" | "real" => DataType::Float32,
        "float64" | "double" => DataType::Float64,
        "date" => DataType::Date32,
        "timestamp" => timestamp_in(timezone),
        _ => {
            let inner = w.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            DataType::Decimal128(p.trim().parse().ok()?, s.trim().parse().ok()?)
        }
    })
}

/// The type sluice reads timestamps as: microseconds in the source's time zone,
/// which are UTC instants once read.
pub fn timestamp_in(timezone: &str) -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(timezone)))
}

/// Parses a duration word such as `90s`, `15m`, `2h`, `7d` or `1w 2d`.
pub fn parse_duration(word: &str) -> Result<std::time::Duration, InvalidDuration> {
    humantime::parse_duration(word.trim()).map_err(|source| InvalidDuration {
        word: word.to_string(),
        source,
    })
}

/// Why a word is not a duration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{word}` is not a duration ({source}); write it like `30s`, `15m`, `2h`, `7d` or `2w`")]
pub struct InvalidDuration {
    /// The word as written.
    pub word: String,
    /// humantime's reason.
    #[source]
    pub source: humantime::DurationError,
}

/// A project file's diagnostics hold text: the message, as it always read.
impl From<InvalidDuration> for String {
    fn from(e: InvalidDuration) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_words() {
        assert_eq!(parse_type("Int64", "UTC"), Some(DataType::Int64));
        assert_eq!(
            parse_type("decimal(10, 2)", "UTC"),
            Some(DataType::Decimal128(10, 2))
        );
        assert_eq!(parse_type("timestamp", "UTC"), Some(timestamp_in("UTC")));
        assert_eq!(parse_type("integr", "UTC"), None);
    }

    #[test]
    fn duration_words() {
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86_400);
        assert_eq!(parse_duration(" 90s ").unwrap().as_secs(), 90);
        let e = parse_duration("7 parsecs").unwrap_err();
        assert!(
            e.to_string().starts_with("`7 parsecs` is not a duration ("),
            "{e}"
        );
        assert!(
            e.to_string()
                .ends_with("; write it like `30s`, `15m`, `2h`, `7d` or `2w`")
        );
    }
}

/// An Arrow type as sluice shows it: the engine's view types (`Utf8View`,
/// `BinaryView`) read the same as what is stored (`Utf8`, `Binary`), so that
/// `check`, `describe`, messages and the API name a column's type one way.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8View => DataType::Utf8.to_string(),
        DataType::BinaryView => DataType::Binary.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod type_name_tests {
    use super::*;

    #[test]
    fn view_types_are_named_as_stored() {
        assert_eq!(type_name(&DataType::Utf8View), "Utf8");
        assert_eq!(type_name(&DataType::Utf8), "Utf8");
        assert_eq!(type_name(&DataType::BinaryView), "Binary");
        assert_eq!(type_name(&DataType::Int64), "Int64");
    }
}
