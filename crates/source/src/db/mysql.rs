//! MySQL and MariaDB: the query is prepared for its columns' types, then read
//! over the binary protocol (`mysql_async`) row by row into Arrow builders,
//! the filters' values bound as parameters. Every session runs in UTC, so a
//! `TIMESTAMP` is read as the instant it is.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{Decimal128Type, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::SinkExt;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, Value};
use sluice_project::raw::NumericMode;
use sluice_project::{DatabaseDef, Engine};

use super::pg_errors::{password_of, scrub};
use super::{ArrowKind, BATCH_ROWS, Backend, Condition, DbColumn, Literal, Read, Sink, select_sql};
use crate::Error;

/// A MySQL or MariaDB source whose query was described.
#[derive(Debug)]
pub(crate) struct Mysql {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    /// `host:port, database `db` (user `u`)`, for messages.
    target: String,
    opts: Opts,
    password: Option<String>,
    query: String,
    columns: Vec<DbColumn>,
}

/// Without the options, which hold the password.
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mysql")
            .field("source", &self.name)
            .field("target", &self.target)
            .field("columns", &self.columns)
            .finish()
    }
}

impl Mysql {
    pub(crate) async fn open(name: &str, def: &DatabaseDef) -> Result<Mysql, Error> {
        let fail = |message: String| Error::Database {
            message,
            cause: None,
        };
        let url = def
            .url
            .as_ref()
            .ok_or_else(|| fail(format!("source `{name}`: no `url`")))?;
        let exposed = url.expose().map_err(|e| {
            fail(format!(
                "source `{name}`: `mysql.url`: {e}\n  help: set it before running, e.g. `export {}=mysql://...`",
                e.0
            ))
        })?;
        let password = password_of(&exposed);
        let opts = Opts::from_url(&exposed).map_err(|e| {
            fail(format!(
                "source `{name}`: `mysql.url` = `{url}` is not a MySQL URL: {}\n  help: write `mysql://user:${{PASSWORD}}@host:3306/database`",
                scrub(&e.to_string(), password.as_deref())
            ))
        })?;
        let target = format!(
            "{}:{}, database `{}` (user `{}`)",
            opts.ip_or_hostname(),
            opts.tcp_port(),
            opts.db_name().unwrap_or("(none)"),
            opts.user().unwrap_or("(default user)")
        );
        // UTC sessions: TIMESTAMP values (and comparisons with them) are instants.
        let opts: Opts = OptsBuilder::from_opts(opts)
            .init(vec!["SET time_zone = '+00:00'"])
            .into();
        let mut inner = Inner {
            name: name.to_string(),
            target,
            opts,
            password,
            query: def.query.clone(),
            columns: vec![],
        };
        let mut conn = inner.connect().await?;
        let statement = conn
            .prep(inner.query.as_str())
            .await
            .map_err(|e| inner.query_error(&e))?;
        let mut unmapped = vec![];
        for c in statement.columns().iter() {
            let name = c.name_str().into_owned();
            match map(c, def.numeric) {
                Ok((kind, db_type)) => inner.columns.push(DbColumn {
                    pushable: matches!(
                        kind,
                        ArrowKind::I16
                            | ArrowKind::I32
                            | ArrowKind::I64
                            | ArrowKind::F64
                            | ArrowKind::Decimal(..)
                            | ArrowKind::Date
                            | ArrowKind::Timestamp(_)
                    ) && db_type != "bigint unsigned",
                    name,
                    db_type,
                    kind,
                }),
                Err((ty, cast)) => unmapped.push(format!(
                    "column `{name}` has type `{ty}`, which sluice cannot read\n  help: cast it in the query: `SELECT {} AS {name}`",
                    cast.replace("{}", &name)
                )),
            }
        }
        let _ = conn.close(statement).await;
        let _ = conn.disconnect().await;
        if !unmapped.is_empty() {
            return Err(fail(format!("source `{name}`: {}", unmapped.join("\n"))));
        }
        Ok(Mysql {
            inner: Arc::new(inner),
        })
    }
}

/// The Arrow type of a described column and its type's name, or the type's
/// name and the cast to use.
fn map(
    c: &mysql_async::Column,
    numeric: NumericMode,
) -> Result<(ArrowKind, String), (String, &'static str)> {
    use ColumnType as T;
    let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = c.character_set() == 63;
    let named = |k: ArrowKind, n: &str| {
        Ok((
            k,
            if unsigned {
                format!("{n} unsigned")
            } else {
                n.to_string()
            },
        ))
    };
    match c.column_type() {
        // BOOLEAN is TINYINT(1).
        T::MYSQL_TYPE_TINY if c.column_length() == 1 => named(ArrowKind::Bool, "tinyint(1)"),
        T::MYSQL_TYPE_TINY => named(ArrowKind::I16, "tinyint"),
        T::MYSQL_TYPE_SHORT if unsigned => named(ArrowKind::I32, "smallint"),
        T::MYSQL_TYPE_SHORT => named(ArrowKind::I16, "smallint"),
        T::MYSQL_TYPE_INT24 => named(ArrowKind::I32, "mediumint"),
        T::MYSQL_TYPE_LONG if unsigned => named(ArrowKind::I64, "int"),
        T::MYSQL_TYPE_LONG => named(ArrowKind::I32, "int"),
        T::MYSQL_TYPE_LONGLONG if unsigned => named(ArrowKind::Decimal(20, 0), "bigint"),
        T::MYSQL_TYPE_LONGLONG => named(ArrowKind::I64, "bigint"),
        T::MYSQL_TYPE_YEAR => named(ArrowKind::I16, "year"),
        T::MYSQL_TYPE_FLOAT => named(ArrowKind::F32, "float"),
        T::MYSQL_TYPE_DOUBLE => named(ArrowKind::F64, "double"),
        T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => {
            let scale = c.decimals();
            // The display length counts the sign and the point.
            let precision = c.column_length() as i64 - i64::from(scale > 0) - i64::from(!unsigned);
            let ty = format!("decimal({precision},{scale})");
            match numeric {
                NumericMode::Float => Ok((ArrowKind::F64, ty)),
                NumericMode::Decimal
                    if (1..=38).contains(&precision) && i64::from(scale) <= precision =>
                {
                    Ok((ArrowKind::Decimal(precision as u8, scale as i8), ty))
                }
                NumericMode::Decimal => Err((
                    ty,
                    "CAST({} AS DECIMAL(38, 10))`, or read every decimal as float64 with `numeric = \"float\"",
                )),
            }
        }
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => named(ArrowKind::Date, "date"),
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => {
            named(ArrowKind::Timestamp(false), "datetime")
        }
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => {
            named(ArrowKind::Timestamp(true), "timestamp")
        }
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => named(ArrowKind::Utf8, "time"),
        T::MYSQL_TYPE_BIT if c.column_length() == 1 => named(ArrowKind::Bool, "bit(1)"),
        T::MYSQL_TYPE_BIT => named(ArrowKind::I64, "bit"),
        T::MYSQL_TYPE_JSON => named(ArrowKind::Utf8, "json"),
        T::MYSQL_TYPE_NULL => named(ArrowKind::Utf8, "null"),
        T::MYSQL_TYPE_VARCHAR
        | T::MYSQL_TYPE_VAR_STRING
        | T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_ENUM
        | T::MYSQL_TYPE_SET
        | T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_BLOB => {
            if binary {
                named(ArrowKind::Binary, "binary")
            } else {
                named(ArrowKind::Utf8, "text")
            }
        }
        T::MYSQL_TYPE_GEOMETRY => Err(("geometry".into(), "ST_AsText({})")),
        other => Err((
            format!("{other:?}")
                .trim_start_matches("MYSQL_TYPE_")
                .to_ascii_lowercase(),
            "CAST({} AS CHAR)",
        )),
    }
}

#[async_trait]
impl Backend for Mysql {
    fn columns(&self) -> &[DbColumn] {
        &self.inner.columns
    }

    fn text_literals(&self) -> bool {
        true
    }

    async fn min_max(
        &self,
        column: &str,
        conditions: &[Condition],
    ) -> Result<Option<(i64, i64)>, Error> {
        let inner = &self.inner;
        let read = Read {
            columns: vec![],
            conditions: conditions.to_vec(),
            ..Read::default()
        };
        let filtered = select_sql(
            Engine::Mysql,
            &inner.query,
            &inner.columns,
            &read,
            &|_, _| "?".into(),
        );
        let col = Engine::Mysql.quote(column);
        let sql = format!(
            "SELECT CAST(min(q.{col}) AS SIGNED), CAST(max(q.{col}) AS SIGNED) FROM ({}) AS q",
            filtered.replacen("SELECT 1 FROM", "SELECT * FROM", 1)
        );
        let mut conn = inner.connect().await?;
        let row: Option<(Option<i64>, Option<i64>)> = conn
            .exec_first(sql.as_str(), inner.params(conditions))
            .await
            .map_err(|e| inner.query_error(&e))?;
        let _ = conn.disconnect().await;
        Ok(row.and_then(|(lo, hi)| lo.zip(hi)))
    }

    fn stream(&self, read: Read, schema: SchemaRef) -> SendableRecordBatchStream {
        let (mut tx, rx) = futures::channel::mpsc::channel(2);
        let inner = self.inner.clone();
        let stream_schema = schema.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.read(&read, schema, &mut tx).await {
                let _ = tx.send(Err(DataFusionError::External(Box::new(e)))).await;
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(stream_schema, rx))
    }
}

type Tx = futures::channel::mpsc::Sender<datafusion::error::Result<RecordBatch>>;

impl Inner {
    async fn connect(&self) -> Result<Conn, Error> {
        Conn::new(self.opts.clone()).await.map_err(|e| Error::Database {
            message: format!(
                "source `{}`: cannot connect to MySQL at {}: {}\n  help: check that the server runs and accepts this user, and `mysql.url`",
                self.name,
                self.target,
                scrub(&e.to_string(), self.password.as_deref())
            ),
            cause: cause(&e),
        })
    }

    fn query_error(&self, e: &mysql_async::Error) -> Error {
        Error::Database {
            message: format!(
                "source `{}` ({}): the query failed: {}\n  help: fix the query; it runs as written in MySQL",
                self.name,
                self.target,
                scrub(&e.to_string(), self.password.as_deref())
            ),
            cause: cause(e),
        }
    }

    /// The conditions' values as parameters, in order.
    fn params(&self, conditions: &[Condition]) -> Params {
        if conditions.is_empty() {
            return Params::Empty;
        }
        Params::Positional(
            conditions
                .iter()
                .map(|c| match &c.value {
                    Literal::Int(i) => Value::Int(*i),
                    Literal::Float(f) => Value::Double(*f),
                    Literal::Bool(b) => Value::Int(i64::from(*b)),
                    // A UTC timestamp's offset: the session is in UTC already.
                    Literal::Text(s) => {
                        Value::Bytes(s.strip_suffix("+00").unwrap_or(s).as_bytes().to_vec())
                    }
                })
                .collect(),
        )
    }

    /// Reads the rows of `read` into `tx`, a batch at a time.
    async fn read(&self, read: &Read, schema: SchemaRef, tx: &mut Tx) -> Result<(), Error> {
        let sql = select_sql(Engine::Mysql, &self.query, &self.columns, read, &|_, _| {
            "?".into()
        });
        let mut conn = self.connect().await?;
        let columns: Vec<&DbColumn> = read.columns.iter().map(|i| &self.columns[*i]).collect();
        let mut sinks: Vec<Sink> = columns
            .iter()
            .map(|c| Sink::new(&c.kind, BATCH_ROWS))
            .collect();
        let mut rows = 0usize;
        let mut done = 0usize;
        let stopped = || Error::Database {
            message: "the read was stopped".into(),
            cause: Some(std::io::Error::from(std::io::ErrorKind::Interrupted)),
        };
        {
            let mut result = conn
                .exec_iter(sql.as_str(), self.params(&read.conditions))
                .await
                .map_err(|e| self.query_error(&e))?;
            while let Some(row) = result.next().await.map_err(|e| self.query_error(&e))? {
                for (i, (value, column)) in row.unwrap().into_iter().zip(&columns).enumerate() {
                    put(&mut sinks[i], &column.kind, value).map_err(|m| Error::Database {
                        message: format!(
                            "source `{}` ({}): column `{}` ({}), row {}: {m}\n  help: cast it in the query, or fix the row",
                            self.name,
                            self.target,
                            column.name,
                            column.db_type,
                            done + rows + 1
                        ),
                        cause: None,
                    })?;
                }
                rows += 1;
                if rows >= BATCH_ROWS {
                    let batch = self.batch(&schema, &mut sinks, rows)?;
                    done += rows;
                    rows = 0;
                    tx.send(Ok(batch)).await.map_err(|_| stopped())?;
                }
            }
        }
        let _ = conn.disconnect().await;
        if rows > 0 {
            let batch = self.batch(&schema, &mut sinks, rows)?;
            tx.send(Ok(batch)).await.map_err(|_| stopped())?;
        }
        Ok(())
    }

    fn batch(
        &self,
        schema: &SchemaRef,
        sinks: &mut [Sink],
        rows: usize,
    ) -> Result<RecordBatch, Error> {
        let columns = sinks.iter_mut().map(Sink::finish).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(|e| {
            Error::Database {
                message: format!("internal: a batch does not match its schema: {e}"),
                cause: None,
            }
        })
    }
}

/// The network error under `e` (a refused or lost connection), or a server
/// error worth a retry (too many connections, a deadlock, a lock wait
/// timeout, a server shutting down), as the class of the failure.
fn cause(e: &mysql_async::Error) -> Option<std::io::Error> {
    match e {
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => {
            Some(std::io::Error::from(io.kind()))
        }
        mysql_async::Error::Server(s)
            if matches!(s.code, 1040 | 1053 | 1205 | 1213 | 2006 | 2013) =>
        {
            Some(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
        }
        _ => None,
    }
}

/// One value of the binary protocol into a column of `kind`.
fn put(sink: &mut Sink, kind: &ArrowKind, v: Value) -> Result<(), String> {
    let text =
        |b: Vec<u8>| String::from_utf8(b).map_err(|e| format!("text that is not UTF-8 ({e})"));
    let wide = |i: i128| -> Result<i64, String> {
        i64::try_from(i).map_err(|_| format!("{i} is out of range for {}", kind.data_type()))
    };
    match (sink, v) {
        (sink, Value::NULL) => sink.null(),
        (Sink::Bool(b), Value::Int(i @ (0 | 1))) => b.append_value(i == 1),
        (Sink::Bool(b), Value::UInt(u @ (0 | 1))) => b.append_value(u == 1),
        (Sink::Bool(b), Value::Bytes(x)) if x.len() == 1 && x[0] <= 1 => b.append_value(x[0] == 1),
        (Sink::I16(b), Value::Int(i)) => {
            b.append_value(i16::try_from(i).map_err(|_| format!("{i} is out of range for Int16"))?)
        }
        (Sink::I16(b), Value::UInt(u)) => {
            b.append_value(i16::try_from(u).map_err(|_| format!("{u} is out of range for Int16"))?)
        }
        (Sink::I32(b), Value::Int(i)) => {
            b.append_value(i32::try_from(i).map_err(|_| format!("{i} is out of range for Int32"))?)
        }
        (Sink::I32(b), Value::UInt(u)) => {
            b.append_value(i32::try_from(u).map_err(|_| format!("{u} is out of range for Int32"))?)
        }
        (Sink::I64(b), Value::Int(i)) => b.append_value(i),
        (Sink::I64(b), Value::UInt(u)) => b.append_value(wide(i128::from(u))?),
        // BIT(n): big-endian bytes.
        (Sink::I64(b), Value::Bytes(x)) if x.len() <= 8 => b.append_value(wide(
            x.iter()
                .fold(0i128, |acc, byte| (acc << 8) | i128::from(*byte)),
        )?),
        (Sink::F32(b), Value::Float(f)) => b.append_value(f),
        (Sink::F32(b), Value::Double(f)) => b.append_value(f as f32),
        (Sink::F64(b), Value::Double(f)) => b.append_value(f),
        (Sink::F64(b), Value::Float(f)) => b.append_value(f64::from(f)),
        (Sink::F64(b), Value::Bytes(x)) => {
            let s = text(x)?;
            b.append_value(
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("`{s}` is not a number"))?,
            )
        }
        (Sink::Decimal(b, p, s), v) => {
            let written = match v {
                Value::Bytes(x) => text(x)?,
                Value::Int(i) => i.to_string(),
                Value::UInt(u) => u.to_string(),
                _ => return Err("not a decimal".into()),
            };
            let value = datafusion::arrow::compute::kernels::cast_utils::parse_decimal::<
                Decimal128Type,
            >(written.trim(), *p, *s)
            .map_err(|e| format!("`{written}` is not a decimal({p},{s}): {e}"))?;
            b.append_value(value)
        }
        (Sink::Utf8(b), Value::Bytes(x)) => b.append_value(text(x)?),
        (Sink::Utf8(b), Value::Time(negative, days, h, m, s, us)) => {
            let hours = u64::from(days) * 24 + u64::from(h);
            let sign = if negative { "-" } else { "" };
            let frac = if us > 0 {
                format!(".{us:06}")
            } else {
                String::new()
            };
            b.append_value(format!("{sign}{hours:02}:{m:02}:{s:02}{frac}"))
        }
        (Sink::Utf8(b), Value::Int(i)) => b.append_value(i.to_string()),
        (Sink::Utf8(b), Value::UInt(u)) => b.append_value(u.to_string()),
        (Sink::Utf8(b), Value::Double(f)) => b.append_value(f.to_string()),
        (Sink::Binary(b), Value::Bytes(x)) => b.append_value(x),
        (Sink::Date(b), Value::Date(y, mo, d, ..)) => {
            let date = chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))
                .ok_or_else(|| zero_date(y, mo, d))?;
            b.append_value((date - chrono::NaiveDate::default()).num_days() as i32)
        }
        (Sink::Timestamp(b, _), Value::Date(y, mo, d, h, mi, s, us)) => {
            let t = chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))
                .and_then(|date| {
                    date.and_hms_micro_opt(u32::from(h), u32::from(mi), u32::from(s), us)
                })
                .ok_or_else(|| zero_date(y, mo, d))?;
            b.append_value(t.and_utc().timestamp_micros())
        }
        (_, v) => {
            return Err(format!(
                "a {} value in a {} column",
                match v {
                    Value::Bytes(_) => "text or bytes",
                    Value::Int(_) | Value::UInt(_) => "integer",
                    Value::Float(_) | Value::Double(_) => "floating-point",
                    Value::Date(..) => "date",
                    Value::Time(..) => "time",
                    Value::NULL => "null",
                },
                kind.data_type()
            ));
        }
    }
    Ok(())
}

/// MySQL's zero dates (`0000-00-00`) and partial dates are no dates.
fn zero_date(y: u16, m: u8, d: u8) -> String {
    format!(
        "`{y:04}-{m:02}-{d:02}` is not a date (MySQL's zero date?); read it as NULL with `NULLIF(col, '0000-00-00')` in the query"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_their_columns_or_are_named() {
        let mut s = Sink::new(&ArrowKind::Timestamp(true), 4);
        put(
            &mut s,
            &ArrowKind::Timestamp(true),
            Value::Date(1970, 1, 1, 0, 0, 1, 500_000),
        )
        .expect("a timestamp");
        let err = put(
            &mut s,
            &ArrowKind::Timestamp(true),
            Value::Date(0, 0, 0, 0, 0, 0, 0),
        )
        .expect_err("a zero date");
        assert!(err.contains("NULLIF"), "{err}");
        let a = s.finish();
        assert_eq!(a.len(), 1);
        let mut t = Sink::new(&ArrowKind::Utf8, 2);
        put(&mut t, &ArrowKind::Utf8, Value::Time(true, 1, 2, 3, 4, 5)).expect("a time");
        let mut i = Sink::new(&ArrowKind::I16, 2);
        assert!(put(&mut i, &ArrowKind::I16, Value::Int(40_000)).is_err());
        let mut d = Sink::new(&ArrowKind::Decimal(20, 0), 2);
        put(&mut d, &ArrowKind::Decimal(20, 0), Value::UInt(u64::MAX)).expect("unsigned bigint");
        let mut bits = Sink::new(&ArrowKind::I64, 2);
        put(&mut bits, &ArrowKind::I64, Value::Bytes(vec![1, 0])).expect("bit(16)");
    }
}
