//! SQLite: a database file of the project, opened read-only. A column's Arrow
//! type comes from its declared type (`INTEGER`, `REAL`, `TEXT`, `BLOB`,
//! `BOOLEAN`, `DATE`, `DATETIME`, `DECIMAL(p,s)`); a computed column, which
//! has none, takes the type of its first non-NULL value among the first rows.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::SinkExt;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sluice_project::{DatabaseDef, Engine};

use super::{ArrowKind, BATCH_ROWS, Backend, Condition, DbColumn, Literal, Read, Sink, select_sql};
use crate::Error;

/// Rows looked at for the type of a computed column.
const SAMPLE_ROWS: usize = 1000;

/// A SQLite source whose query was described.
#[derive(Debug)]
pub(crate) struct Sqlite {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    path: PathBuf,
    query: String,
    columns: Vec<DbColumn>,
}

impl Sqlite {
    pub(crate) async fn open(name: &str, def: &DatabaseDef) -> Result<Sqlite, Error> {
        let mut inner = Inner {
            name: name.to_string(),
            path: def.path.clone().unwrap_or_default(),
            query: def.query.clone(),
            columns: vec![],
        };
        let inner = tokio::task::spawn_blocking(move || {
            inner.columns = inner.describe()?;
            Ok::<_, Error>(inner)
        })
        .await
        .map_err(|e| Error::Database {
            message: format!("internal: {e}"),
            cause: None,
        })??;
        Ok(Sqlite {
            inner: Arc::new(inner),
        })
    }
}

impl Inner {
    fn fail(&self, message: impl std::fmt::Display) -> Error {
        Error::Database {
            message: format!(
                "source `{}` ({}): {message}",
                self.name,
                self.path.display()
            ),
            cause: None,
        }
    }

    fn connect(&self) -> Result<Connection, Error> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            self.fail(format!(
                "cannot open the database: {e}\n  help: check `sqlite.path`; it is relative to the project folder"
            ))
        })?;
        // A database another process is writing: wait for its lock a while.
        let _ = c.busy_timeout(std::time::Duration::from_secs(10));
        Ok(c)
    }

    fn query_error(&self, e: rusqlite::Error) -> Error {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        Error::Database {
            message: format!(
                "source `{}` ({}): the query failed: {e}\n  help: fix the query; it runs as written in SQLite",
                self.name,
                self.path.display()
            ),
            cause: busy.then(|| std::io::Error::from(std::io::ErrorKind::ResourceBusy)),
        }
    }

    fn describe(&self) -> Result<Vec<DbColumn>, Error> {
        let conn = self.connect()?;
        let mut stmt = conn.prepare(&self.query).map_err(|e| self.query_error(e))?;
        let declared: Vec<(String, Option<String>)> = stmt
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.decl_type().map(str::to_string)))
            .collect();
        let mut kinds: Vec<Option<ArrowKind>> = vec![];
        let mut errors = vec![];
        for (name, decl) in &declared {
            match decl.as_deref().map(declared_kind) {
                Some(Ok(k)) => kinds.push(Some(k)),
                Some(Err(())) => {
                    kinds.push(None);
                    errors.push(format!(
                        "column `{name}` is declared `{}`, which sluice cannot read\n  help: cast it in the query: `SELECT CAST({name} AS TEXT) AS {name}`",
                        decl.as_deref().unwrap_or_default()
                    ));
                }
                None => kinds.push(None),
            }
        }
        if !errors.is_empty() {
            return Err(self.fail(errors.join("\n")));
        }
        // Computed columns: the type of their first values.
        let undeclared: Vec<usize> = (0..kinds.len())
            .filter(|i| declared[*i].1.is_none())
            .collect();
        if !undeclared.is_empty() {
            let mut rows = stmt.query([]).map_err(|e| self.query_error(e))?;
            let mut seen = 0;
            while let Some(row) = rows.next().map_err(|e| self.query_error(e))? {
                for &i in &undeclared {
                    if kinds[i].is_none() {
                        kinds[i] = match row.get_ref(i).map_err(|e| self.query_error(e))? {
                            ValueRef::Null => None,
                            ValueRef::Integer(_) => Some(ArrowKind::I64),
                            ValueRef::Real(_) => Some(ArrowKind::F64),
                            ValueRef::Text(_) => Some(ArrowKind::Utf8),
                            ValueRef::Blob(_) => Some(ArrowKind::Binary),
                        };
                    }
                }
                seen += 1;
                if seen >= SAMPLE_ROWS || undeclared.iter().all(|i| kinds[*i].is_some()) {
                    break;
                }
            }
        }
        Ok(declared
            .into_iter()
            .zip(kinds)
            .map(|((name, decl), kind)| {
                let kind = kind.unwrap_or(ArrowKind::Utf8);
                DbColumn {
                    pushable: matches!(
                        kind,
                        ArrowKind::I64 | ArrowKind::F64 | ArrowKind::Utf8 | ArrowKind::Bool
                    ),
                    name,
                    db_type: decl.unwrap_or_else(|| "(computed)".into()),
                    kind,
                }
            })
            .collect())
    }

    /// Reads the rows of `read` on this (blocking) thread into `tx`.
    fn read(&self, read: &Read, schema: SchemaRef, tx: &mut Tx) -> Result<(), Error> {
        let conn = self.connect()?;
        let sql = select_sql(Engine::Sqlite, &self.query, &self.columns, read, &|n, c| {
            if matches!(c.kind, ArrowKind::Utf8) {
                format!("?{n} COLLATE BINARY")
            } else {
                format!("?{n}")
            }
        });
        let mut stmt = conn.prepare(&sql).map_err(|e| self.query_error(e))?;
        let params: Vec<rusqlite::types::Value> = read
            .conditions
            .iter()
            .map(|c| match &c.value {
                Literal::Int(i) => rusqlite::types::Value::Integer(*i),
                Literal::Float(f) => rusqlite::types::Value::Real(*f),
                Literal::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
                Literal::Text(s) => rusqlite::types::Value::Text(s.clone()),
            })
            .collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| self.query_error(e))?;
        let kinds: Vec<&DbColumn> = read.columns.iter().map(|i| &self.columns[*i]).collect();
        let mut sinks: Vec<Sink> = kinds
            .iter()
            .map(|c| Sink::new(&c.kind, BATCH_ROWS))
            .collect();
        let mut n = 0usize;
        let mut done = 0usize;
        let mut flush = |sinks: &mut Vec<Sink>, n: &mut usize| -> Result<(), Error> {
            let columns = sinks.iter_mut().map(Sink::finish).collect();
            let options = RecordBatchOptions::new().with_row_count(Some(*n));
            let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)
                .map_err(|e| self.fail(format!("internal: {e}")))?;
            *n = 0;
            futures::executor::block_on(tx.send(Ok(batch))).map_err(|_| Error::Database {
                message: "the read was stopped".into(),
                cause: Some(std::io::Error::from(std::io::ErrorKind::Interrupted)),
            })
        };
        while let Some(row) = rows.next().map_err(|e| self.query_error(e))? {
            for (i, column) in kinds.iter().enumerate() {
                let v = row.get_ref(i).map_err(|e| self.query_error(e))?;
                put(&mut sinks[i], &column.kind, v).map_err(|m| {
                    self.fail(format!(
                        "column `{}` (declared `{}`), row {}: {m}\n  help: cast it in the query (`SELECT CAST({} AS TEXT) AS {}`), or fix the row",
                        column.name,
                        column.db_type,
                        done + n + 1,
                        column.name,
                        column.name
                    ))
                })?;
            }
            n += 1;
            if n >= BATCH_ROWS {
                done += n;
                flush(&mut sinks, &mut n)?;
            }
        }
        if n > 0 {
            flush(&mut sinks, &mut n)?;
        }
        Ok(())
    }
}

type Tx = futures::channel::mpsc::Sender<datafusion::error::Result<RecordBatch>>;

/// The Arrow type of a declared SQLite type, by SQLite's own affinity rules
/// first (a type holding `INT` is an integer...), then by the names of dates,
/// times and booleans.
fn declared_kind(decl: &str) -> Result<ArrowKind, ()> {
    let d = decl.to_ascii_uppercase();
    let d = d.trim();
    if d.contains("INT") {
        return Ok(ArrowKind::I64);
    }
    if d.contains("CHAR")
        || d.contains("CLOB")
        || d.contains("TEXT")
        || d.contains("JSON")
        || d.contains("UUID")
    {
        return Ok(ArrowKind::Utf8);
    }
    if d.contains("BLOB") || d.is_empty() {
        return Ok(ArrowKind::Binary);
    }
    if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        return Ok(ArrowKind::F64);
    }
    if d.starts_with("BOOL") {
        return Ok(ArrowKind::Bool);
    }
    if d.starts_with("DATETIME") || d.starts_with("TIMESTAMP") {
        return Ok(ArrowKind::Timestamp(false));
    }
    if d == "DATE" {
        return Ok(ArrowKind::Date);
    }
    if d.starts_with("DECIMAL") || d.starts_with("NUMERIC") {
        let args = d
            .split_once('(')
            .and_then(|(_, r)| r.strip_suffix(')'))
            .map(|a| {
                a.split(',')
                    .map(|x| x.trim().parse::<u8>())
                    .collect::<Vec<_>>()
            });
        return match args.as_deref() {
            Some([Ok(p), Ok(s)]) if (1..=38).contains(p) && s <= p => {
                Ok(ArrowKind::Decimal(*p, *s as i8))
            }
            Some([Ok(p)]) if (1..=38).contains(p) => Ok(ArrowKind::Decimal(*p, 0)),
            None => Ok(ArrowKind::F64),
            _ => Err(()),
        };
    }
    Err(())
}

/// One SQLite value into a column of `kind`.
fn put(sink: &mut Sink, kind: &ArrowKind, v: ValueRef<'_>) -> Result<(), String> {
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|e| format!("text that is not UTF-8 ({e})"))
    };
    match (sink, v) {
        (sink, ValueRef::Null) => sink.null(),
        (Sink::I64(b), ValueRef::Integer(i)) => b.append_value(i),
        (Sink::F64(b), ValueRef::Real(f)) => b.append_value(f),
        (Sink::F64(b), ValueRef::Integer(i)) => b.append_value(i as f64),
        (Sink::Utf8(b), ValueRef::Text(t)) => b.append_value(text(t)?),
        (Sink::Utf8(b), ValueRef::Integer(i)) => b.append_value(i.to_string()),
        (Sink::Utf8(b), ValueRef::Real(f)) => b.append_value(f.to_string()),
        (Sink::Binary(b), ValueRef::Blob(x) | ValueRef::Text(x)) => b.append_value(x),
        (Sink::Bool(b), ValueRef::Integer(i @ (0 | 1))) => b.append_value(i == 1),
        (Sink::Date(b), ValueRef::Text(t)) => {
            let s = text(t)?;
            let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)"))?;
            b.append_value((d - chrono::NaiveDate::default()).num_days() as i32)
        }
        (Sink::Timestamp(b, _), ValueRef::Text(t)) => {
            let s = text(t)?;
            b.append_value(timestamp_micros(s.trim()).ok_or_else(|| {
                format!("`{s}` is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])")
            })?)
        }
        (Sink::Timestamp(b, _), ValueRef::Integer(secs)) => b.append_value(
            secs.checked_mul(1_000_000)
                .ok_or("a Unix time out of range")?,
        ),
        (Sink::Decimal(b, p, s), v) => {
            let written = match v {
                ValueRef::Integer(i) => i.to_string(),
                ValueRef::Real(f) => format!("{f}"),
                ValueRef::Text(t) => text(t)?,
                _ => return Err("a blob in a decimal column".into()),
            };
            let value = datafusion::arrow::compute::kernels::cast_utils::parse_decimal::<
                datafusion::arrow::datatypes::Decimal128Type,
            >(written.trim(), *p, *s)
            .map_err(|e| format!("`{written}` is not a decimal({p},{s}): {e}"))?;
            b.append_value(value)
        }
        (_, v) => {
            return Err(format!(
                "a {} value in a {} column",
                match v {
                    ValueRef::Integer(_) => "integer",
                    ValueRef::Real(_) => "real",
                    ValueRef::Text(_) => "text",
                    ValueRef::Blob(_) => "blob",
                    ValueRef::Null => "null",
                },
                kind.data_type()
            ));
        }
    }
    Ok(())
}

/// A SQLite timestamp's text as microseconds since 1970: `YYYY-MM-DD
/// HH:MM[:SS[.f]]` (or with `T`), a trailing offset or `Z` converted to UTC.
fn timestamp_micros(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)) {
        return Some(t.timestamp_micros());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

#[async_trait]
impl Backend for Sqlite {
    fn columns(&self) -> &[DbColumn] {
        &self.inner.columns
    }

    fn text_literals(&self) -> bool {
        // Dates and timestamps are text in SQLite, in whatever form the
        // application wrote them: comparing them as text is not exact.
        false
    }

    async fn min_max(
        &self,
        column: &str,
        _conditions: &[Condition],
    ) -> Result<Option<(i64, i64)>, Error> {
        Err(self.inner.fail(format!(
            "`partitions` (on `{column}`) is for PostgreSQL and MySQL sources; a SQLite file is read in one piece"
        )))
    }

    fn stream(&self, read: Read, schema: SchemaRef) -> SendableRecordBatchStream {
        let (mut tx, rx) = futures::channel::mpsc::channel(2);
        let inner = self.inner.clone();
        let stream_schema = schema.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = inner.read(&read, schema, &mut tx) {
                let _ = futures::executor::block_on(
                    tx.send(Err(DataFusionError::External(Box::new(e)))),
                );
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(stream_schema, rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_by_affinity() {
        assert_eq!(declared_kind("INTEGER"), Ok(ArrowKind::I64));
        assert_eq!(declared_kind("bigint"), Ok(ArrowKind::I64));
        assert_eq!(declared_kind("VARCHAR(20)"), Ok(ArrowKind::Utf8));
        assert_eq!(declared_kind("double precision"), Ok(ArrowKind::F64));
        assert_eq!(declared_kind("BOOLEAN"), Ok(ArrowKind::Bool));
        assert_eq!(declared_kind("DATETIME"), Ok(ArrowKind::Timestamp(false)));
        assert_eq!(declared_kind("DATE"), Ok(ArrowKind::Date));
        assert_eq!(
            declared_kind("DECIMAL(12,2)"),
            Ok(ArrowKind::Decimal(12, 2))
        );
        assert_eq!(declared_kind("NUMERIC(50,2)"), Err(()));
        assert_eq!(declared_kind("GEOMETRY"), Err(()));
        assert_eq!(timestamp_micros("1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(timestamp_micros("1970-01-01T01:00:00+01:00"), Some(0));
    }
}
