//! The columns a model reads, taken out of Arrow batches: numbers as `f64` (NaN
//! for missing) and text as categories. This is the one place where Arrow types
//! meet the learners, so that training, batch and online prediction read values
//! the same way.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A number (integers, decimals and booleans too).
    Numeric,
    /// Text: a category.
    Categorical,
}

impl Kind {
    /// The word used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Numeric => "numeric",
            Kind::Categorical => "categorical",
        }
    }

    /// The kind of an Arrow type, or what to do about it.
    pub fn of(column: &str, data_type: &DataType) -> Result<Kind> {
        match data_type {
            t if t.is_numeric() || *t == DataType::Boolean || *t == DataType::Null => {
                Ok(Kind::Numeric)
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(Kind::Categorical),
            DataType::Dictionary(_, v) if Kind::of(column, v)? == Kind::Categorical => {
                Ok(Kind::Categorical)
            }
            t @ (DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64) => {
                Err(Error::ColumnType {
                    column: column.to_string(),
                    data_type: t.to_string(),
                    help: "a time is not a feature: derive numbers from it in the spine's SQL, e.g. `extract(hour FROM t) AS hour`".into(),
                })
            }
            t => Err(Error::ColumnType {
                column: column.to_string(),
                data_type: t.to_string(),
                help: "cast it to a number or to text in SQL".into(),
            }),
        }
    }
}

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Numbers; NaN where missing.
    Numeric(Vec<f64>),
    /// Categories; `None` where missing.
    Categorical(Vec<Option<String>>),
}

impl Values {
    /// The column's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Values::Numeric(_) => Kind::Numeric,
            Values::Categorical(_) => Kind::Categorical,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Values::Numeric(v) => v.len(),
            Values::Categorical(v) => v.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self, rows: &[usize]) -> Values {
        match self {
            Values::Numeric(v) => Values::Numeric(rows.iter().map(|&r| v[r]).collect()),
            Values::Categorical(v) => {
                Values::Categorical(rows.iter().map(|&r| v[r].clone()).collect())
            }
        }
    }
}

/// Named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Column names, in the model's input order.
    pub names: Vec<String>,
    /// The values, one entry per name.
    pub columns: Vec<Values>,
    /// Number of rows.
    pub rows: usize,
}

impl Frame {
    /// Reads `names` out of `batches`; `what` names the data in messages.
    pub fn from_batches(batches: &[RecordBatch], names: &[String], what: &str) -> Result<Frame> {
        let mut columns = Vec::with_capacity(names.len());
        for name in names {
            let array = column(batches, name, what)?;
            let kind = Kind::of(name, array.data_type())?;
            columns.push(read(name, &array, kind)?);
        }
        Ok(Frame {
            names: names.to_vec(),
            columns,
            rows: batches.iter().map(RecordBatch::num_rows).sum(),
        })
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Frame {
        Frame {
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
            rows: rows.len(),
        }
    }

    /// The kinds of the columns, in order.
    pub fn kinds(&self) -> Vec<Kind> {
        self.columns.iter().map(Values::kind).collect()
    }
}

/// One column of `batches` as a single array.
pub fn column(batches: &[RecordBatch], name: &str, what: &str) -> Result<ArrayRef> {
    let Some(first) = batches.first() else {
        return Ok(Arc::new(datafusion::arrow::array::NullArray::new(0)));
    };
    let Ok(index) = first.schema().index_of(name) else {
        return Err(Error::MissingColumn {
            column: name.to_string(),
            what: what.to_string(),
            columns: first
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(index).as_ref()).collect();
    concat(&parts).map_err(|source| Error::Arrow {
        column: name.to_string(),
        source,
    })
}

/// Reads an array as `kind`.
pub fn read(name: &str, array: &ArrayRef, kind: Kind) -> Result<Values> {
    let arrow = |source| Error::Arrow {
        column: name.to_string(),
        source,
    };
    let found = Kind::of(name, array.data_type())?;
    if found != kind && array.data_type() != &DataType::Null {
        return Err(Error::KindChanged {
            column: name.to_string(),
            trained: kind.as_str(),
            now: found.as_str(),
        });
    }
    Ok(match kind {
        Kind::Numeric => {
            let floats = cast(array, &DataType::Float64).map_err(arrow)?;
            let floats = floats.as_primitive::<Float64Type>();
            Values::Numeric(
                (0..floats.len())
                    .map(|i| {
                        if floats.is_null(i) {
                            f64::NAN
                        } else {
                            floats.value(i)
                        }
                    })
                    .collect(),
            )
        }
        Kind::Categorical => {
            let text = cast(array, &DataType::Utf8).map_err(arrow)?;
            let text = text.as_string::<i32>();
            Values::Categorical(
                (0..text.len())
                    .map(|i| (!text.is_null(i)).then(|| text.value(i).to_string()))
                    .collect(),
            )
        }
    })
}

/// A time column as microseconds since the epoch (`None` where missing).
pub fn times(batches: &[RecordBatch], name: &str, what: &str) -> Result<Vec<Option<i64>>> {
    let array = column(batches, name, what)?;
    let micros = match array.data_type() {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            cast(&array, &DataType::Timestamp(TimeUnit::Microsecond, None))
                .and_then(|a| cast(&a, &DataType::Int64))
                .map_err(|source| Error::Arrow {
                    column: name.to_string(),
                    source,
                })?
        }
        t => {
            return Err(Error::ColumnType {
                column: name.to_string(),
                data_type: t.to_string(),
                help: "the time column must be a timestamp or a date".into(),
            });
        }
    };
    let micros = micros.as_primitive::<Int64Type>();
    Ok((0..micros.len())
        .map(|i| (!micros.is_null(i)).then(|| micros.value(i)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int32Array, StringArray, TimestampSecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Second, None), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
                Arc::new(TimestampSecondArray::from(vec![Some(1), None, Some(3)])),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn numbers_booleans_and_text_are_read_with_missing_values() {
        let names: Vec<String> = ["n", "b", "s"].iter().map(|s| s.to_string()).collect();
        let f = Frame::from_batches(&[batch(), batch()], &names, "the test").expect("frame");
        assert_eq!(f.rows, 6);
        let Values::Numeric(n) = &f.columns[0] else {
            panic!("numeric")
        };
        assert_eq!(n[0], 1.0);
        assert!(n[1].is_nan());
        let Values::Numeric(b) = &f.columns[1] else {
            panic!("numeric")
        };
        assert_eq!(&b[..2], &[1.0, 0.0]);
        assert!(b[2].is_nan());
        assert_eq!(
            f.columns[2],
            Values::Categorical(vec![
                Some("a".into()),
                None,
                Some("c".into()),
                Some("a".into()),
                None,
                Some("c".into())
            ])
        );
        assert_eq!(f.take(&[2, 0]).columns[2].len(), 2);
    }

    #[test]
    fn times_are_not_features_and_unknown_columns_are_named() {
        let err =
            Frame::from_batches(&[batch()], &["t".to_string()], "the test").expect_err("time");
        assert!(err.to_string().contains("extract(hour"), "{err}");
        let err =
            Frame::from_batches(&[batch()], &["x".to_string()], "the spine").expect_err("missing");
        assert!(
            err.to_string().contains("no column `x` in the spine"),
            "{err}"
        );
        assert_eq!(
            times(&[batch()], "t", "the test").expect("times"),
            vec![Some(1_000_000), None, Some(3_000_000)]
        );
    }
}
