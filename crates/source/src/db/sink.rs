//! Arrow builders for database columns: one [`Sink`] per column, filled value
//! by value by a connector's decoder and finished into an array per batch.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListArray, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

/// The Arrow types database columns are read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArrowKind {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    /// Decimal128 with precision and scale.
    Decimal(u8, i8),
    Utf8,
    Binary,
    Date,
    /// Timestamp, microseconds; in UTC when `true`.
    Timestamp(bool),
    List(Box<ArrowKind>),
}

impl ArrowKind {
    /// The Arrow type.
    pub(crate) fn data_type(&self) -> DataType {
        match self {
            ArrowKind::Bool => DataType::Boolean,
            ArrowKind::I16 => DataType::Int16,
            ArrowKind::I32 => DataType::Int32,
            ArrowKind::I64 => DataType::Int64,
            ArrowKind::F32 => DataType::Float32,
            ArrowKind::F64 => DataType::Float64,
            ArrowKind::Decimal(p, s) => DataType::Decimal128(*p, *s),
            ArrowKind::Utf8 => DataType::Utf8,
            ArrowKind::Binary => DataType::Binary,
            ArrowKind::Date => DataType::Date32,
            ArrowKind::Timestamp(utc) => {
                DataType::Timestamp(TimeUnit::Microsecond, utc.then(|| "UTC".into()))
            }
            ArrowKind::List(inner) => {
                DataType::List(Arc::new(Field::new("item", inner.data_type(), true)))
            }
        }
    }
}

/// One column's builder.
#[derive(Debug)]
pub(crate) enum Sink {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    List(Box<ListSink>),
}

/// A list column: offsets and validity here, the elements in `items`.
#[derive(Debug)]
pub(crate) struct ListSink {
    pub(crate) offsets: Vec<i32>,
    pub(crate) valid: Vec<bool>,
    pub(crate) items: Sink,
    item_kind: ArrowKind,
}

impl Sink {
    /// An empty builder for `kind`.
    pub(crate) fn new(kind: &ArrowKind, capacity: usize) -> Sink {
        match kind {
            ArrowKind::Bool => Sink::Bool(BooleanBuilder::with_capacity(capacity)),
            ArrowKind::I16 => Sink::I16(Int16Builder::with_capacity(capacity)),
            ArrowKind::I32 => Sink::I32(Int32Builder::with_capacity(capacity)),
            ArrowKind::I64 => Sink::I64(Int64Builder::with_capacity(capacity)),
            ArrowKind::F32 => Sink::F32(Float32Builder::with_capacity(capacity)),
            ArrowKind::F64 => Sink::F64(Float64Builder::with_capacity(capacity)),
            ArrowKind::Decimal(p, s) => {
                Sink::Decimal(Decimal128Builder::with_capacity(capacity), *p, *s)
            }
            ArrowKind::Utf8 => Sink::Utf8(StringBuilder::with_capacity(capacity, capacity * 16)),
            ArrowKind::Binary => {
                Sink::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16))
            }
            ArrowKind::Date => Sink::Date(Date32Builder::with_capacity(capacity)),
            ArrowKind::Timestamp(utc) => {
                Sink::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity), *utc)
            }
            ArrowKind::List(inner) => Sink::List(Box::new(ListSink {
                offsets: vec![0],
                valid: Vec::with_capacity(capacity),
                items: Sink::new(inner, capacity),
                item_kind: (**inner).clone(),
            })),
        }
    }

    /// Appends a NULL.
    pub(crate) fn null(&mut self) {
        match self {
            Sink::Bool(b) => b.append_null(),
            Sink::I16(b) => b.append_null(),
            Sink::I32(b) => b.append_null(),
            Sink::I64(b) => b.append_null(),
            Sink::F32(b) => b.append_null(),
            Sink::F64(b) => b.append_null(),
            Sink::Decimal(b, ..) => b.append_null(),
            Sink::Utf8(b) => b.append_null(),
            Sink::Binary(b) => b.append_null(),
            Sink::Date(b) => b.append_null(),
            Sink::Timestamp(b, _) => b.append_null(),
            Sink::List(l) => {
                let last = l.offsets.last().copied().unwrap_or(0);
                l.offsets.push(last);
                l.valid.push(false);
            }
        }
    }

    /// Finishes the values appended since the last call into an array.
    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            Sink::Bool(b) => Arc::new(b.finish()),
            Sink::I16(b) => Arc::new(b.finish()),
            Sink::I32(b) => Arc::new(b.finish()),
            Sink::I64(b) => Arc::new(b.finish()),
            Sink::F32(b) => Arc::new(b.finish()),
            Sink::F64(b) => Arc::new(b.finish()),
            Sink::Decimal(b, p, s) => {
                let a = b.finish();
                // The precision and scale were checked when the column was described.
                Arc::new(a.clone().with_precision_and_scale(*p, *s).unwrap_or(a))
            }
            Sink::Utf8(b) => Arc::new(b.finish()),
            Sink::Binary(b) => Arc::new(b.finish()),
            Sink::Date(b) => Arc::new(b.finish()),
            Sink::Timestamp(b, utc) => {
                let a = b.finish();
                if *utc {
                    Arc::new(a.with_timezone("UTC"))
                } else {
                    Arc::new(a)
                }
            }
            Sink::List(l) => {
                let items = l.items.finish();
                let offsets = std::mem::replace(&mut l.offsets, vec![0]);
                let valid = std::mem::take(&mut l.valid);
                let field = Arc::new(Field::new("item", l.item_kind.data_type(), true));
                let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
                Arc::new(ListArray::new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    items,
                    nulls,
                ))
            }
        }
    }
}

impl ListSink {
    /// Closes a list of `n` items appended to `items`.
    pub(crate) fn close(&mut self, n: usize) -> Result<(), String> {
        let last = self.offsets.last().copied().unwrap_or(0);
        let n = i32::try_from(n).map_err(|_| "an array too long for one batch")?;
        let next = last
            .checked_add(n)
            .ok_or("an array column too large for one batch")?;
        self.offsets.push(next);
        self.valid.push(true);
        Ok(())
    }
}
