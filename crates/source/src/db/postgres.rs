//! PostgreSQL: the query is described (prepared) for its columns' types, then
//! read with `COPY (SELECT ...) TO STDOUT (FORMAT binary)` — the fastest bulk
//! path — decoded straight into Arrow builders. Reads with pushed-down filters
//! bind the filters' values as parameters, which `COPY` cannot take, so they
//! go through a portal fetched in batches of rows in the same binary format.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{SinkExt, StreamExt};
use sluice_project::{DatabaseDef, Engine};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, Config, NoTls};

use super::pg_errors::{full_message, io_cause, password_of, scrub, target_of, transient_state};
use super::pg_types::{self, PgKind};
use super::{BATCH_ROWS, Backend, Condition, DbColumn, Read, Sink, select_sql};
use crate::Error;

/// A PostgreSQL source whose query was described.
#[derive(Debug)]
pub(crate) struct Postgres {
    inner: Arc<Inner>,
}

struct Inner {
    /// The source's name.
    name: String,
    /// `host:port, database `db` (user `u`)`, for messages.
    target: String,
    config: Config,
    /// The password, to scrub from any message (never shown).
    password: Option<String>,
    query: String,
    columns: Vec<DbColumn>,
    kinds: Vec<PgKind>,
}

/// Without the configuration, which holds the password.
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("source", &self.name)
            .field("target", &self.target)
            .field("columns", &self.columns)
            .finish()
    }
}

impl Postgres {
    pub(crate) async fn open(name: &str, def: &DatabaseDef) -> Result<Postgres, Error> {
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
                "source `{name}`: `postgres.url`: {e}\n  help: set it before running, e.g. `export {}=postgres://...`",
                e.0
            ))
        })?;
        let mut config: Config = exposed.parse().map_err(|e: tokio_postgres::Error| {
            let password = password_of(&exposed);
            fail(format!(
                "source `{name}`: `postgres.url` = `{url}` is not a PostgreSQL URL: {}\n  help: write `postgres://user:${{PASSWORD}}@host:5432/database`",
                scrub(&e.to_string(), password.as_deref())
            ))
        })?;
        config.connect_timeout(std::time::Duration::from_secs(30));
        config.application_name("sluice");
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let target = target_of(&config);
        let mut inner = Inner {
            name: name.to_string(),
            target,
            config,
            password,
            query: def.query.clone(),
            columns: vec![],
            kinds: vec![],
        };
        let client = inner.connect().await?;
        let statement = client
            .prepare(&inner.query)
            .await
            .map_err(|e| inner.query_error(&e, 0))?;
        let mut unmapped = vec![];
        for c in statement.columns() {
            match pg_types::map(c.type_(), c.type_modifier(), def.numeric) {
                Ok((kind, arrow)) => {
                    let pushable = matches!(
                        *c.type_(),
                        Type::BOOL
                            | Type::INT2
                            | Type::INT4
                            | Type::INT8
                            | Type::FLOAT4
                            | Type::FLOAT8
                            | Type::TEXT
                            | Type::VARCHAR
                            | Type::NAME
                            | Type::DATE
                            | Type::TIMESTAMP
                            | Type::TIMESTAMPTZ
                    ) || matches!(kind, PgKind::Numeric(_));
                    inner.columns.push(DbColumn {
                        name: c.name().to_string(),
                        db_type: c.type_().name().to_string(),
                        kind: arrow,
                        pushable,
                    });
                    inner.kinds.push(kind);
                }
                Err(u) => unmapped.push(format!(
                    "column `{col}` has type `{ty}`: {reason}\n  help: cast it in the query: `SELECT {col}::{cast} AS {col}`{float}",
                    col = c.name(),
                    ty = c.type_().name(),
                    reason = u.reason,
                    cast = u.cast,
                    float = if *c.type_() == Type::NUMERIC {
                        ", or read every numeric as float64 with `numeric = \"float\"`"
                    } else {
                        ""
                    },
                )),
            }
        }
        if !unmapped.is_empty() {
            return Err(fail(format!("source `{name}`: {}", unmapped.join("\n"))));
        }
        Ok(Postgres {
            inner: Arc::new(inner),
        })
    }
}

#[async_trait]
impl Backend for Postgres {
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
            Engine::Postgres,
            &inner.query,
            &inner.columns,
            &read,
            &param,
        );
        let col = Engine::Postgres.quote(column);
        let sql = format!(
            "SELECT min(q.{col})::int8, max(q.{col})::int8 FROM ({}) AS q",
            filtered.replacen("SELECT 1 FROM", "SELECT * FROM", 1)
        );
        let client = inner.connect().await?;
        let params = texts(conditions);
        let statement = client
            .prepare_typed(&sql, &vec![Type::TEXT; params.len()])
            .await
            .map_err(|e| inner.query_error(&e, 0))?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let row = client
            .query_one(&statement, &refs)
            .await
            .map_err(|e| inner.query_error(&e, 0))?;
        let lo: Option<i64> = row.try_get(0).map_err(|e| inner.query_error(&e, 0))?;
        let hi: Option<i64> = row.try_get(1).map_err(|e| inner.query_error(&e, 0))?;
        Ok(lo.zip(hi))
    }

    fn stream(&self, read: Read, schema: SchemaRef) -> SendableRecordBatchStream {
        let (mut tx, rx) = futures::channel::mpsc::channel(2);
        let inner = self.inner.clone();
        let stream_schema = schema.clone();
        tokio::spawn(async move {
            let mut out = Batches::new(&inner, &read, schema);
            let result = if read.conditions.is_empty() {
                inner.copy(&read, &mut out, &mut tx).await
            } else {
                inner.portal(&read, &mut out, &mut tx).await
            };
            let last = match result {
                Ok(()) => out.flush(),
                Err(e) => Some(Err(e)),
            };
            if let Some(last) = last {
                let _ = tx
                    .send(last.map_err(|e| DataFusionError::External(Box::new(e))))
                    .await;
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(stream_schema, rx))
    }
}

type Tx = futures::channel::mpsc::Sender<datafusion::error::Result<RecordBatch>>;

/// Builders for the columns of one read, and the rows in them.
struct Batches {
    schema: SchemaRef,
    sinks: Vec<Sink>,
    kinds: Vec<PgKind>,
    names: Vec<String>,
    rows: usize,
    /// Rows read before this batch, for messages.
    done: usize,
}

impl Batches {
    fn new(inner: &Inner, read: &Read, schema: SchemaRef) -> Batches {
        Batches {
            schema,
            sinks: read
                .columns
                .iter()
                .map(|i| Sink::new(&inner.columns[*i].kind, BATCH_ROWS))
                .collect(),
            kinds: read
                .columns
                .iter()
                .map(|i| inner.kinds[*i].clone())
                .collect(),
            names: read
                .columns
                .iter()
                .map(|i| inner.columns[*i].name.clone())
                .collect(),
            rows: 0,
            done: 0,
        }
    }

    /// One value of column `i` of the current row.
    fn value(&mut self, i: usize, v: Option<&[u8]>) -> Result<(), String> {
        match (self.kinds.get(i), self.sinks.get_mut(i)) {
            (Some(kind), Some(sink)) => pg_types::decode(kind, sink, v).map_err(|e| {
                format!(
                    "column `{}`, row {}: {e}",
                    self.names[i],
                    self.done + self.rows + 1
                )
            }),
            // The constant column of a read without columns.
            _ => Ok(()),
        }
    }

    /// The full batch, if the batch is full.
    fn row_done(&mut self) -> Option<Result<RecordBatch, Error>> {
        self.rows += 1;
        (self.rows >= BATCH_ROWS).then(|| self.take())
    }

    fn flush(&mut self) -> Option<Result<RecordBatch, Error>> {
        (self.rows > 0).then(|| self.take())
    }

    fn take(&mut self) -> Result<RecordBatch, Error> {
        let columns = self.sinks.iter_mut().map(Sink::finish).collect();
        let options =
            datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.done += self.rows;
        self.rows = 0;
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options).map_err(|e| {
            Error::Database {
                message: format!("internal: a batch does not match its schema: {e}"),
                cause: None,
            }
        })
    }
}

impl Inner {
    async fn connect(&self) -> Result<Client, Error> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| {
            let message = format!(
                "source `{}`: cannot connect to PostgreSQL at {}: {}\n  help: check that the server runs and accepts this user, and `postgres.url`",
                self.name,
                self.target,
                self.scrub(&full_message(&e))
            );
            Error::Database {
                message,
                cause: io_cause(&e),
            }
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("a PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// A failure of the query; `offset` is the number of characters sent
    /// before the source's query, so a position points into the query.
    fn query_error(&self, e: &tokio_postgres::Error, offset: usize) -> Error {
        let (message, help) = match e.as_db_error() {
            Some(db) => {
                let at = match db.position() {
                    Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
                        let p = (*p as usize).saturating_sub(offset);
                        if p > 0 && p <= self.query.chars().count() {
                            format!(" (at character {p} of the query)")
                        } else {
                            String::new()
                        }
                    }
                    _ => String::new(),
                };
                let hint = db
                    .hint()
                    .map(|h| format!("\n  hint: {h}"))
                    .unwrap_or_default();
                (
                    format!("{}: {}{at}{hint}", db.severity(), db.message()),
                    "fix the query; it runs as written in PostgreSQL",
                )
            }
            None => (
                full_message(e),
                "check that the server runs; the run can be retried",
            ),
        };
        Error::Database {
            message: format!(
                "source `{}` ({}): the query failed: {}\n  help: {help}",
                self.name,
                self.target,
                self.scrub(&message)
            ),
            cause: io_cause(e).or_else(|| transient_state(e)),
        }
    }

    fn scrub(&self, message: &str) -> String {
        scrub(message, self.password.as_deref())
    }

    /// Reads without bound parameters: binary `COPY`.
    async fn copy(&self, read: &Read, out: &mut Batches, tx: &mut Tx) -> Result<(), Error> {
        let client = self.connect().await?;
        let select = select_sql(Engine::Postgres, &self.query, &self.columns, read, &param);
        let prefix = "COPY (";
        let sql = format!("{prefix}{select}) TO STDOUT (FORMAT binary)");
        let offset = chars_before(&sql, &self.query);
        let stream = client
            .copy_out(&sql)
            .await
            .map_err(|e| self.query_error(&e, offset))?;
        futures::pin_mut!(stream);
        let mut parser = CopyParser::default();
        let mut pending: Vec<u8> = vec![];
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.query_error(&e, offset))?;
            let used = if pending.is_empty() {
                let used = parser
                    .parse(&chunk, out, tx)
                    .await
                    .map_err(|m| self.bad_value(m))?;
                pending.extend_from_slice(&chunk[used..]);
                continue;
            } else {
                pending.extend_from_slice(&chunk);
                parser
                    .parse(&pending, out, tx)
                    .await
                    .map_err(|m| self.bad_value(m))?
            };
            pending.drain(..used);
        }
        if !parser.ended {
            return Err(self.bad_value("the COPY stream ended early".into()));
        }
        Ok(())
    }

    /// Reads with the conditions' values bound as parameters, batch by batch.
    async fn portal(&self, read: &Read, out: &mut Batches, tx: &mut Tx) -> Result<(), Error> {
        let mut client = self.connect().await?;
        let sql = select_sql(Engine::Postgres, &self.query, &self.columns, read, &param);
        let offset = chars_before(&sql, &self.query);
        let params = texts(&read.conditions);
        let t = client
            .transaction()
            .await
            .map_err(|e| self.query_error(&e, offset))?;
        let statement = t
            .prepare_typed(&sql, &vec![Type::TEXT; params.len()])
            .await
            .map_err(|e| self.query_error(&e, offset))?;
        let portal = t
            .bind_raw(&statement, params.iter())
            .await
            .map_err(|e| self.query_error(&e, offset))?;
        loop {
            let rows = t
                .query_portal(&portal, BATCH_ROWS as i32)
                .await
                .map_err(|e| self.query_error(&e, offset))?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                for i in 0..row.len() {
                    let raw: RawValue<'_> =
                        row.try_get(i).map_err(|e| self.query_error(&e, offset))?;
                    out.value(i, raw.0).map_err(|m| self.bad_value(m))?;
                }
                if let Some(batch) = out.row_done() {
                    send(tx, batch).await?;
                }
            }
        }
        Ok(())
    }

    fn bad_value(&self, message: String) -> Error {
        Error::Database {
            message: format!(
                "source `{}`: {message}\n  help: cast the column in the query (`SELECT col::text AS col`), or filter such rows out",
                self.name
            ),
            cause: None,
        }
    }
}

async fn send(tx: &mut Tx, batch: Result<RecordBatch, Error>) -> Result<(), Error> {
    let batch = batch?;
    // The reader dropped the stream (a limit was reached, or the run was
    // cancelled): stop reading.
    tx.send(Ok(batch)).await.map_err(|_| Error::Database {
        message: "the read was stopped".into(),
        cause: Some(std::io::Error::from(std::io::ErrorKind::Interrupted)),
    })
}

/// The binary COPY format: an 11-byte signature, flags, a header extension,
/// then per row a 16-bit field count (-1 ends the data) and per field a
/// 32-bit length (-1 is NULL) and the bytes.
#[derive(Default)]
struct CopyParser {
    header_done: bool,
    ended: bool,
}

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl CopyParser {
    /// Decodes the complete rows at the start of `data`; returns how many
    /// bytes they took.
    async fn parse(
        &mut self,
        data: &[u8],
        out: &mut Batches,
        tx: &mut Tx,
    ) -> Result<usize, String> {
        let mut at = 0;
        if !self.header_done {
            if data.len() < 19 {
                return Ok(0);
            }
            if &data[..11] != SIGNATURE {
                return Err("the COPY stream does not start with its signature".into());
            }
            let ext = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
            if data.len() < 19 + ext {
                return Ok(0);
            }
            at = 19 + ext;
            self.header_done = true;
        }
        loop {
            let Some(count) = data.get(at..at + 2) else {
                return Ok(at);
            };
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count < 0 {
                self.ended = true;
                return Ok(data.len());
            }
            // The row is decoded only once all of it is here.
            let mut end = at + 2;
            for _ in 0..count {
                let Some(len) = data.get(end..end + 4) else {
                    return Ok(at);
                };
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                end += 4 + len.max(0) as usize;
            }
            if end > data.len() {
                return Ok(at);
            }
            let mut p = at + 2;
            for i in 0..count as usize {
                let len = i32::from_be_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]]);
                p += 4;
                if len < 0 {
                    out.value(i, None)?;
                } else {
                    let n = len as usize;
                    out.value(i, Some(&data[p..p + n]))?;
                    p += n;
                }
            }
            at = end;
            if let Some(batch) = out.row_done() {
                send(tx, batch).await.map_err(|e| e.to_string())?;
            }
        }
    }
}

/// How many characters of `sql` come before `query` in it (a position in
/// `sql` minus this is a position in `query`).
fn chars_before(sql: &str, query: &str) -> usize {
    sql.find(query).map_or(0, |at| sql[..at].chars().count())
}

/// A column's bytes as they came, in the binary format.
struct RawValue<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawValue<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A condition's placeholder: the parameter sent as text and cast to the
/// column's type; text compared byte by byte (collation "C"), as Arrow does.
fn param(n: usize, column: &DbColumn) -> String {
    match column.db_type.as_str() {
        "text" | "varchar" | "name" => format!("CAST(${n} AS text) COLLATE \"C\""),
        ty => format!("CAST(${n} AS {ty})"),
    }
}

fn texts(conditions: &[Condition]) -> Vec<String> {
    conditions.iter().map(|c| c.value.text()).collect()
}
