//! What a Delta table can hold: Arrow types are mapped onto the types Delta Lake
//! (and the engines that read it: Spark, DuckDB, Polars) understand.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

/// The type an Arrow column is stored as. Views and large variants become their
/// plain forms, dictionaries their values, timestamps microseconds (with time
/// zone UTC, or without one), unsigned integers the next wider signed type.
pub fn delta_type(ty: &DataType) -> DataType {
    match ty {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary | DataType::FixedSizeBinary(_) => {
            DataType::Binary
        }
        DataType::Dictionary(_, value) => delta_type(value),
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
        }
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Date64 => DataType::Date32,
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Null => DataType::Utf8,
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => DataType::List(Arc::new(delta_field(f))),
        DataType::FixedSizeList(f, _) => DataType::List(Arc::new(delta_field(f))),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| delta_field(f)).collect::<Fields>())
        }
        DataType::Map(f, sorted) => DataType::Map(Arc::new(delta_field(f)), *sorted),
        other => other.clone(),
    }
}

fn delta_field(f: &Field) -> Field {
    f.clone().with_data_type(delta_type(f.data_type()))
}
