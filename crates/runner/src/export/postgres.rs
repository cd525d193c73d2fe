//! PostgreSQL exports. `replace`: in one transaction, a staging table is
//! created from the rows' Arrow schema, bulk-loaded with binary `COPY`, given
//! the key's unique index, and swapped in (`DROP` the old table, `RENAME` the
//! new one), so a reader sees the old rows or the new ones, never a mix, and a
//! crash leaves the old table. `upsert`: in one transaction, the rows are loaded
//! into a temporary table and merged with `INSERT ... ON CONFLICT (key) DO
//! UPDATE`; rows not in the new data stay. A missing table is created (with
//! the unique index on the key). Errors name the host, database and table, never
//! the password.

use std::str::FromStr;
use std::time::Duration;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::prelude::DataFrame;
use futures::{SinkExt, StreamExt};
use sluice_core::ErrorClass;
use sluice_project::{PostgresMode, PostgresTarget};
use tokio_postgres::config::Host;
use tokio_postgres::error::DbError;
use tokio_postgres::{Client, Config, NoTls, Transaction};

use super::pg_copy::{self, PgColumn};
use crate::outcome::Failure;

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `status` waits to learn whether the table is still there.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How much encoded `COPY` data is sent at a time.
const CHUNK: usize = 1 << 20;
/// How long the swap waits for readers holding the old table (`lock_timeout`).
const SWAP_LOCK_TIMEOUT: &str = "60s";

/// A connection's target, for messages: host, port, database, table.
struct Where {
    at: String,
    table: String,
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgreSQL table {} ({})", self.table, self.at)
    }
}

/// `"name"`, with quotes inside doubled.
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The URL parsed, and where it points (for messages), with no password.
fn config(t: &PostgresTarget) -> Result<(Config, Where), Failure> {
    let url = t.url.expose().map_err(|e| {
        Failure::from(format!(
            "cannot export to PostgreSQL: {e}\n  help: set it where sluice runs (the export's `url` is `{}`)",
            t.url
        ))
    })?;
    let table = format!("`{}`.`{}`", t.schema, t.table);
    let mut config = Config::from_str(&url).map_err(|e| {
        Failure::from(format!(
            "cannot export to PostgreSQL table {table}: the URL `{}` is not valid: {}\n  help: write it as `postgres://USER:${{PASSWORD}}@HOST:5432/DATABASE`",
            t.url,
            super::scrub(e.to_string(), &url)
        ))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            Host::Tcp(h) => format!("{h}:{p}"),
            Host::Unix(path) => format!("{}:{p}", path.display()),
        })
        .collect();
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    let at = format!(
        "{}, database `{db}`",
        if hosts.is_empty() {
            "localhost:5432".to_string()
        } else {
            hosts.join(",")
        }
    );
    Ok((config, Where { at, table }))
}

/// The failure of a PostgreSQL call: what was being done, where, the server's
/// message with its detail, hint and context, and whether retrying may help.
fn failure(doing: &str, at: &Where, e: &tokio_postgres::Error, url: &Option<String>) -> Failure {
    let mut message = format!("cannot {doing} {at}: ");
    match e.as_db_error() {
        Some(db) => {
            message.push_str(db.message());
            for (label, part) in [
                ("detail", db.detail()),
                ("hint", db.hint()),
                ("context", db.where_()),
            ] {
                if let Some(p) = part {
                    message.push_str(&format!("\n  {label}: {p}"));
                }
            }
        }
        None => message.push_str(&crate::error::root_cause(e)),
    }
    let class = class(e);
    if class.is_transient() {
        message.push_str(
            "\n  help: the server could not be reached or was busy; the run may retry it (`retry`)",
        );
    }
    Failure {
        message: match url {
            Some(u) => super::scrub(message, u),
            None => message,
        },
        class,
    }
}

/// Connection failures, a server shutting down or out of resources, a
/// serialization failure, a deadlock and a lock wait timed out are transient.
fn class(e: &tokio_postgres::Error) -> ErrorClass {
    ErrorClass::of_error_with(e, |e| {
        if let Some(db) = e.downcast_ref::<DbError>() {
            let code = db.code().code();
            let transient = code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || matches!(code, "40001" | "40P01" | "55P03");
            return Some(if transient {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            });
        }
        e.downcast_ref::<tokio_postgres::Error>()
            .filter(|e| e.is_closed())
            .map(|_| ErrorClass::Transient)
    })
}

/// Connects; the connection runs in a task until the client is dropped.
async fn connect(config: &Config, at: &Where, url: &Option<String>) -> Result<Client, Failure> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| failure("connect to", at, &e, url))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(
                "a PostgreSQL connection ended: {}",
                crate::error::root_cause(&e)
            );
        }
    });
    Ok(client)
}

/// Writes the rows to the table (replace or upsert); the rows written and a
/// description of the target for the export log (no password).
pub(super) async fn write(
    df: DataFrame,
    t: &PostgresTarget,
    key: &[String],
    run_id: i64,
) -> Result<(u64, String), Failure> {
    let (config, at) = config(t)?;
    let url = t.url.expose().ok();
    let schema = df.schema().as_arrow().clone();
    let columns = pg_copy::pg_columns(&schema)
        .map_err(|e| Failure::from(format!("cannot export to {at}: {e}")))?;
    let key_index: Vec<usize> = key.iter().filter_map(|k| schema.index_of(k).ok()).collect();
    let mut client = connect(&config, &at, &url).await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| failure("start a transaction on", &at, &e, &url))?;
    let (at_ref, url_ref) = (&at, &url);
    let run =
        |doing: &'static str| move |e: tokio_postgres::Error| failure(doing, at_ref, &e, url_ref);
    let target = qualified(&t.schema, &t.table);
    let col_list = columns
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let key_list = key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ");
    let rows = match t.mode {
        PostgresMode::Replace => {
            ensure_schema(&tx, &t.schema)
                .await
                .map_err(run("create the schema of"))?;
            let staging_name = format!("sluice_staging_{run_id}");
            let staging = qualified(&t.schema, &staging_name);
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {staging}; CREATE TABLE {staging} ({})",
                definition(&columns)
            ))
            .await
            .map_err(run("create the staging table of"))?;
            let rows = copy(&tx, &staging, &col_list, df, &key_index, key, &at, &url).await?;
            let index = format!("{}_sluice_key", cut(&t.table, 50));
            let mut swap = String::new();
            if !key.is_empty() {
                swap.push_str(&format!(
                    "CREATE UNIQUE INDEX {} ON {staging} ({key_list});",
                    ident(&format!("{staging_name}_key"))
                ));
            }
            swap.push_str(&format!(
                "SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'; DROP TABLE IF EXISTS {target}; ALTER TABLE {staging} RENAME TO {};",
                ident(&t.table)
            ));
            if !key.is_empty() {
                swap.push_str(&format!(
                    "ALTER INDEX {} RENAME TO {};",
                    qualified(&t.schema, &format!("{staging_name}_key")),
                    ident(&index)
                ));
            }
            tx.batch_execute(&swap).await.map_err(|e| {
                let mut f = failure("swap in the new rows of", &at, &e, &url);
                if e.as_db_error().map(|d| d.code().code()) == Some("2BP01") {
                    f.message.push_str("\n  help: a view or constraint depends on the table, and `replace` drops it; drop the dependent object, or write with `mode = \"upsert\"`");
                }
                if e.as_db_error().map(|d| d.code().code()) == Some("23505") {
                    f.message.push_str(&format!("\n  help: the rows repeat a key ({}); aggregate them, or export a feature view (its newest row per entity)", key.join(", ")));
                }
                f
            })?;
            rows
        }
        PostgresMode::Upsert => {
            let exists = table_exists(&tx, &t.schema, &t.table)
                .await
                .map_err(run("look up"))?;
            if exists {
                check_existing(&tx, t, &columns, key, &at)
                    .await
                    .map_err(|e| match e {
                        Checked::Db(e) => failure("look up", &at, &e, &url),
                        Checked::Mismatch(f) => f,
                    })?;
            } else {
                ensure_schema(&tx, &t.schema)
                    .await
                    .map_err(run("create the schema of"))?;
                let index = format!("{}_sluice_key", cut(&t.table, 50));
                tx.batch_execute(&format!(
                    "CREATE TABLE {target} ({}); CREATE UNIQUE INDEX {} ON {target} ({key_list});",
                    definition(&columns),
                    ident(&index)
                ))
                .await
                .map_err(run("create"))?;
            }
            let temp = "pg_temp.sluice_upsert";
            tx.batch_execute(&format!(
                "CREATE TEMPORARY TABLE sluice_upsert ({}) ON COMMIT DROP",
                definition(&columns)
            ))
            .await
            .map_err(run("create the temporary table of"))?;
            let rows = copy(&tx, temp, &col_list, df, &key_index, key, &at, &url).await?;
            let updates: Vec<String> = columns
                .iter()
                .filter(|c| !key.contains(&c.name))
                .map(|c| format!("{0} = EXCLUDED.{0}", ident(&c.name)))
                .collect();
            let action = if updates.is_empty() {
                "DO NOTHING".to_string()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            tx.batch_execute(&format!(
                "INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {temp} ON CONFLICT ({key_list}) {action}"
            ))
            .await
            .map_err(|e| {
                let mut f = failure("upsert into", &at, &e, &url);
                if e.as_db_error().map(|d| d.code().code()) == Some("21000") {
                    f.message.push_str(&format!("\n  help: the rows repeat a key ({}); aggregate them, or export a feature view (its newest row per entity)", key.join(", ")));
                }
                f
            })?;
            rows
        }
    };
    tx.commit().await.map_err(run("commit to"))?;
    Ok((rows, format!("{at}")))
}

/// `"a" bigint, "b" text, ...`.
fn definition(columns: &[PgColumn]) -> String {
    columns
        .iter()
        .map(|c| format!("{} {}", ident(&c.name), c.pg_type))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn table_exists(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT to_regclass($1::text) IS NOT NULL",
            &[&qualified(schema, table)],
        )
        .await?;
    row.try_get(0)
}

async fn ensure_schema(tx: &Transaction<'_>, schema: &str) -> Result<(), tokio_postgres::Error> {
    let found = tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await?;
    if found.is_none() {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)))
            .await?;
    }
    Ok(())
}

/// Why an existing table cannot take an upsert.
enum Checked {
    Db(tokio_postgres::Error),
    Mismatch(Failure),
}

/// An existing table takes an upsert when it has every column and a unique
/// index on exactly the key columns; otherwise the error says what to create.
async fn check_existing(
    tx: &Transaction<'_>,
    t: &PostgresTarget,
    columns: &[PgColumn],
    key: &[String],
    at: &Where,
) -> Result<(), Checked> {
    let name = qualified(&t.schema, &t.table);
    let have: Vec<String> = tx
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped",
            &[&name],
        )
        .await
        .map_err(Checked::Db)?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(Checked::Db)?;
    let missing: Vec<&PgColumn> = columns.iter().filter(|c| !have.contains(&c.name)).collect();
    if !missing.is_empty() {
        return Err(Checked::Mismatch(Failure::from(format!(
            "cannot upsert into {at}: it has no column {}\n  help: add {}: {}",
            missing
                .iter()
                .map(|c| format!("`{}`", c.name))
                .collect::<Vec<_>>()
                .join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            missing
                .iter()
                .map(|c| format!(
                    "ALTER TABLE {name} ADD COLUMN {} {};",
                    ident(&c.name),
                    c.pg_type
                ))
                .collect::<Vec<_>>()
                .join(" ")
        ))));
    }
    let indexes: Vec<Vec<String>> = tx
        .query(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1::text::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL \
             GROUP BY i.indexrelid",
            &[&name],
        )
        .await
        .map_err(Checked::Db)?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(Checked::Db)?;
    let mut wanted: Vec<String> = key.to_vec();
    wanted.sort();
    if !indexes.contains(&wanted) {
        return Err(Checked::Mismatch(Failure::from(format!(
            "cannot upsert into {at}: no unique index is on exactly its key ({})\n  help: create one: CREATE UNIQUE INDEX ON {name} ({});",
            key.join(", "),
            key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ")
        ))));
    }
    Ok(())
}

/// Streams the rows into `table` with binary `COPY`; the rows copied. A row
/// without a value in a key column is refused (it could never be matched).
#[allow(clippy::too_many_arguments)]
async fn copy(
    tx: &Transaction<'_>,
    table: &str,
    col_list: &str,
    df: DataFrame,
    key_index: &[usize],
    key: &[String],
    at: &Where,
    url: &Option<String>,
) -> Result<u64, Failure> {
    let sink = tx
        .copy_in::<_, std::io::Cursor<Vec<u8>>>(&format!(
            "COPY {table} ({col_list}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .map_err(|e| failure("start copying into", at, &e, url))?;
    futures::pin_mut!(sink);
    let mut stream = df.execute_stream().await.map_err(|e| Failure::of(&e))?;
    let mut buf = pg_copy::HEADER.to_vec();
    let mut seen = 0u64;
    while let Some(batch) = stream.next().await {
        let batch: RecordBatch = batch.map_err(|e| Failure::of(&e))?;
        for (i, k) in key_index.iter().zip(key) {
            let column = batch.column(*i);
            if column.null_count() > 0 {
                let row = (0..column.len()).find(|r| column.is_null(*r)).unwrap_or(0) as u64;
                return Err(Failure::from(format!(
                    "cannot export to {at}: row {} has no value in the key column `{k}`\n  help: filter out rows without a key (`WHERE \"{k}\" IS NOT NULL`)",
                    seen + row + 1
                )));
            }
        }
        seen += batch.num_rows() as u64;
        pg_copy::encode(&batch, &mut buf)
            .map_err(|e| Failure::from(format!("cannot export to {at}: {e}")))?;
        if buf.len() >= CHUNK {
            let chunk = std::mem::take(&mut buf);
            sink.send(std::io::Cursor::new(chunk))
                .await
                .map_err(|e| failure("copy into", at, &e, url))?;
        }
    }
    buf.extend_from_slice(pg_copy::TRAILER);
    sink.send(std::io::Cursor::new(buf))
        .await
        .map_err(|e| failure("copy into", at, &e, url))?;
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| failure("copy into", at, &e, url))
}

/// Why the table is gone (dropped by hand), asked of the server; `None` when it
/// is there or the server cannot be asked (the run's write would say why).
pub(super) async fn gone(t: &PostgresTarget) -> Option<String> {
    let (config, at) = config(t).ok()?;
    let url = t.url.expose().ok();
    let probe = async {
        let client = connect(&config, &at, &url).await.ok()?;
        let row = client
            .query_one(
                "SELECT to_regclass($1::text) IS NOT NULL",
                &[&qualified(&t.schema, &t.table)],
            )
            .await
            .ok()?;
        row.try_get::<_, bool>(0).ok()
    };
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Some(false)) => Some(format!("{at} is missing")),
        Ok(Some(true)) => None,
        _ => {
            tracing::debug!("could not learn whether {at} is there");
            None
        }
    }
}
