//! Filters DataFusion pushes into a database source: a column compared with a
//! literal (`>`, `>=`, `<`, `<=`, `=`), and ANDs of them. They are applied in
//! the database as `SELECT ... FROM (query) AS q WHERE col >= $1`, the values
//! bound as parameters, never written into the SQL text.

use datafusion::arrow::datatypes::{Decimal128Type, DecimalType};
use datafusion::logical_expr::{Expr, Operator};
use datafusion::scalar::ScalarValue;

use super::sink::ArrowKind;

/// A comparison the database evaluates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    /// The column's index in the source's schema.
    pub(crate) column: usize,
    /// `>`, `>=`, `<`, `<=` or `=`.
    pub(crate) op: &'static str,
    /// The value, bound as a parameter.
    pub(crate) value: Literal,
}

/// A literal as a database parameter: a number, a bool or text (dates,
/// timestamps and decimals as text the database casts to the column's type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Literal {
    /// The value as text, as PostgreSQL's input functions read it.
    pub(crate) fn text(&self) -> String {
        match self {
            Literal::Int(i) => i.to_string(),
            // Rust prints the shortest text that reads back as the same float.
            Literal::Float(f) => format!("{f:?}"),
            Literal::Bool(b) => b.to_string(),
            Literal::Text(s) => s.clone(),
        }
    }
}

/// The conditions of `expr`, when all of it is conditions; `None` otherwise.
/// `columns` are the source's columns (name, kind); `text_ok` says whether a
/// literal written as text (a date, a timestamp, a decimal) can be compared
/// exactly in this database.
pub(crate) fn conditions(
    expr: &Expr,
    columns: &[(String, Option<ArrowKind>)],
    text_ok: bool,
) -> Option<Vec<Condition>> {
    let mut out = vec![];
    for part in datafusion::logical_expr::utils::split_conjunction(expr) {
        out.push(condition(part, columns, text_ok)?);
    }
    Some(out)
}

fn condition(
    expr: &Expr,
    columns: &[(String, Option<ArrowKind>)],
    text_ok: bool,
) -> Option<Condition> {
    let Expr::BinaryExpr(b) = expr else {
        return None;
    };
    let (column, value, op) = match (b.left.as_ref(), b.right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c, v, b.op),
        (Expr::Literal(v, _), Expr::Column(c)) => (c, v, b.op.swap()?),
        _ => return None,
    };
    let op = match op {
        Operator::Gt => ">",
        Operator::GtEq => ">=",
        Operator::Lt => "<",
        Operator::LtEq => "<=",
        Operator::Eq => "=",
        _ => return None,
    };
    let index = columns.iter().position(|(name, _)| name == &column.name)?;
    let value = literal(value, columns[index].1.as_ref()?, text_ok)?;
    Some(Condition {
        column: index,
        op,
        value,
    })
}

/// `value` as a parameter for a column of `kind`, when the comparison means
/// the same in the database as in DataFusion.
fn literal(value: &ScalarValue, kind: &ArrowKind, text_ok: bool) -> Option<Literal> {
    use ScalarValue as S;
    let int = |v: Option<i64>| v.map(Literal::Int);
    match (kind, value) {
        (ArrowKind::I16 | ArrowKind::I32 | ArrowKind::I64, S::Int8(v)) => int(v.map(i64::from)),
        (ArrowKind::I16 | ArrowKind::I32 | ArrowKind::I64, S::Int16(v)) => int(v.map(i64::from)),
        (ArrowKind::I16 | ArrowKind::I32 | ArrowKind::I64, S::Int32(v)) => int(v.map(i64::from)),
        (ArrowKind::I16 | ArrowKind::I32 | ArrowKind::I64, S::Int64(v)) => int(*v),
        (ArrowKind::F32 | ArrowKind::F64, S::Float64(Some(f))) => Some(Literal::Float(*f)),
        (ArrowKind::F32, S::Float32(Some(f))) => Some(Literal::Float(f64::from(*f))),
        (ArrowKind::Bool, S::Boolean(Some(b))) => Some(Literal::Bool(*b)),
        (ArrowKind::Utf8, S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s))) => {
            Some(Literal::Text(s.clone()))
        }
        (ArrowKind::Date, S::Date32(Some(d))) if text_ok => {
            let date = chrono::DateTime::from_timestamp(i64::from(*d) * 86_400, 0)?;
            Some(Literal::Text(date.format("%Y-%m-%d").to_string()))
        }
        (ArrowKind::Timestamp(utc), ts) if text_ok => {
            let (micros, tz) = match ts {
                S::TimestampSecond(Some(v), tz) => (v.checked_mul(1_000_000)?, tz),
                S::TimestampMillisecond(Some(v), tz) => (v.checked_mul(1_000)?, tz),
                S::TimestampMicrosecond(Some(v), tz) => (*v, tz),
                S::TimestampNanosecond(Some(v), tz) if v % 1000 == 0 => (v / 1000, tz),
                _ => return None,
            };
            if tz.is_some() != *utc {
                return None;
            }
            let t = chrono::DateTime::from_timestamp_micros(micros)?;
            let text = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            Some(Literal::Text(if *utc { text + "+00" } else { text }))
        }
        (ArrowKind::Decimal(..), S::Decimal128(Some(v), p, s)) if text_ok => {
            Some(Literal::Text(Decimal128Type::format_decimal(*v, *p, *s)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn columns() -> Vec<(String, Option<ArrowKind>)> {
        vec![
            ("id".into(), Some(ArrowKind::I64)),
            ("name".into(), Some(ArrowKind::Utf8)),
            ("at".into(), Some(ArrowKind::Timestamp(true))),
            ("doc".into(), None),
        ]
    }

    #[test]
    fn comparisons_with_literals_and_their_conjunctions_push_down() {
        let e = col("id").gt_eq(lit(5i64)).and(lit(10i64).gt(col("id")));
        let c = conditions(&e, &columns(), true).expect("pushed");
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].op, &c[0].value), (">=", &Literal::Int(5)));
        // `10 > id` is `id < 10`.
        assert_eq!((c[1].op, &c[1].value), ("<", &Literal::Int(10)));
        let at = ScalarValue::TimestampMicrosecond(Some(1_700_000_000_000_000), Some("UTC".into()));
        let c = conditions(&col("at").gt_eq(lit(at)), &columns(), true).expect("pushed");
        assert_eq!(
            c[0].value,
            Literal::Text("2023-11-14 22:13:20.000000+00".into())
        );
    }

    #[test]
    fn anything_else_stays_in_datafusion() {
        let cols = columns();
        assert!(conditions(&col("id").not_eq(lit(5i64)), &cols, true).is_none());
        assert!(conditions(&col("id").gt(col("id")), &cols, true).is_none());
        assert!(
            conditions(
                &col("id").gt(lit(5i64)).or(col("id").lt(lit(1i64))),
                &cols,
                true
            )
            .is_none()
        );
        assert!(conditions(&col("missing").gt(lit(5i64)), &cols, true).is_none());
        assert!(
            conditions(&col("doc").eq(lit("{}")), &cols, true).is_none(),
            "jsonb"
        );
        // A timestamp is text in the database; where that cannot compare exactly, not pushed.
        let at = ScalarValue::TimestampMicrosecond(Some(0), Some("UTC".into()));
        assert!(conditions(&col("at").gt(lit(at)), &cols, false).is_none());
        assert!(conditions(&col("id").gt(lit(ScalarValue::Int64(None))), &cols, true).is_none());
    }
}
