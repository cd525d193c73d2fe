//! The type words of the project file (`int64`, `timestamp`...) and Arrow types.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};

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
pub(crate) fn timestamp_in(timezone: &str) -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(timezone)))
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
}
