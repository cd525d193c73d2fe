//! Database sources against the real servers of this machine (PostgreSQL at
//! 127.0.0.1:5432, database `test`) and SQLite files: every mapped type
//! round-trips, NULLs included; errors name what they must and no password;
//! filters are applied in the database; ranges read what one read does.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::Int32Type;
use datafusion::physical_plan::{ExecutionPlanProperties, displayable};
use datafusion::prelude::SessionContext;
use sluice_core::{ErrorClass, Secret};
use sluice_project::raw::NumericMode;
use sluice_project::{DatabaseDef, Engine, RangeSplit};

use super::DbSource;

/// A URL of the test database, or `None` (outside CI) to skip.
async fn pg_url() -> Option<String> {
    for user in ["postgres", "root"] {
        let url = format!("postgres://{user}@127.0.0.1:5432/test");
        if let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            if client.simple_query("SELECT 1").await.is_ok() {
                return Some(url);
            }
        }
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs PostgreSQL at 127.0.0.1:5432 with a database `test` (user postgres or root)"
    );
    eprintln!("skipped: no PostgreSQL at 127.0.0.1:5432");
    None
}

/// A schema of its own for one test, dropped when the guard goes.
struct Scratch {
    client: tokio_postgres::Client,
    schema: String,
}

impl Scratch {
    async fn new(url: &str, sql: &str) -> Scratch {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let schema = format!("sluice_db_{}_{nanos}", std::process::id());
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; SET search_path = {schema}; {sql}"
            ))
            .await
            .expect("setup");
        Scratch { client, schema }
    }

    async fn remove(self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await;
    }
}

fn pg_def(url: &str, query: String) -> DatabaseDef {
    DatabaseDef {
        engine: Engine::Postgres,
        url: Some(Secret::new(url)),
        path: None,
        query,
        partitions: None,
        numeric: NumericMode::Decimal,
    }
}

/// Every row of `sql` over the source registered as `t`.
async fn rows(source: &DbSource, sql: &str) -> RecordBatch {
    let ctx = SessionContext::new();
    ctx.register_table("t", source.table_provider())
        .expect("register");
    let df = ctx.sql(sql).await.expect("plan");
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.expect("read");
    concat_batches(&schema, &batches).expect("concat")
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| {
            panic!(
                "column {name} has type {}",
                b.column_by_name(name)
                    .map(|c| c.data_type().to_string())
                    .unwrap_or_default()
            )
        })
}

const TYPES: &str = r#"
CREATE TABLE t (
  id int8, i2 int2, i4 int4, f4 float4, f8 float8, n numeric(12,2), big numeric(38,10),
  tx text, vc varchar(10), ch char(3), b bool, d date, tm time, ts timestamp, tz timestamptz,
  iv interval, j json, jb jsonb, u uuid, by bytea, ai int4[], at text[]
);
INSERT INTO t VALUES
 (1, -32768, 2147483647, 1.5, -0.1, 1234567890.12, 1234567890123456789012345678.0123456789,
  'héllo wörld 🎉', 'ünï', 'ab', true, '2024-02-29', '13:05:09.25', '2024-03-10 02:30:00.123456',
  '2024-06-01 12:00:00+02', '1 year 2 mons 3 days 04:05:06.5', '{"a": [1, 2]}', '{"b": 1, "a": "x"}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff', '{1,NULL,3}', '{"ä",""}'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, -1, 'NaN', 1e308, -0.01, -0.0000000001, '', '', '', false, '1900-01-01', '00:00:00',
  '0001-01-01 00:00:00', '1969-12-31 23:59:59.999999+00', '-1 mons -00:00:01', '[]', '{}',
  '00000000-0000-0000-0000-000000000000', '', '{}', '{NULL}');
"#;

#[tokio::test]
async fn postgres_types_round_trip_exactly() {
    let Some(url) = pg_url().await else { return };
    let db = Scratch::new(&url, TYPES).await;
    let def = pg_def(&url, format!("SELECT * FROM {}.t", db.schema));
    let source = DbSource::open("typed", &def).await.expect("opens");
    let b = rows(&source, "SELECT * FROM t ORDER BY id").await;
    db.remove().await;

    assert_eq!(col::<Int64Array>(&b, "id").values().to_vec(), vec![1, 2, 3]);
    assert_eq!(
        col::<Int16Array>(&b, "i2"),
        &Int16Array::from(vec![Some(-32768), None, Some(0)])
    );
    assert_eq!(
        col::<Int32Array>(&b, "i4"),
        &Int32Array::from(vec![Some(i32::MAX), None, Some(-1)])
    );
    let f4 = col::<Float32Array>(&b, "f4");
    assert_eq!(f4.value(0), 1.5);
    assert!(f4.is_null(1) && f4.value(2).is_nan());
    assert_eq!(
        col::<Float64Array>(&b, "f8"),
        &Float64Array::from(vec![Some(-0.1), None, Some(1e308)])
    );
    let n = col::<Decimal128Array>(&b, "n");
    assert_eq!(n.data_type().to_string(), "Decimal128(12, 2)");
    assert_eq!(
        (n.value_as_string(0), n.is_null(1), n.value_as_string(2)),
        ("1234567890.12".to_string(), true, "-0.01".to_string())
    );
    let big = col::<Decimal128Array>(&b, "big");
    assert_eq!(
        big.value_as_string(0),
        "1234567890123456789012345678.0123456789"
    );
    assert_eq!(big.value_as_string(2), "-0.0000000001");
    assert_eq!(
        col::<StringArray>(&b, "tx"),
        &StringArray::from(vec![Some("héllo wörld 🎉"), None, Some("")])
    );
    assert_eq!(
        col::<StringArray>(&b, "vc"),
        &StringArray::from(vec![Some("ünï"), None, Some("")])
    );
    // char(n) keeps its padding, as PostgreSQL returns it.
    assert_eq!(
        col::<StringArray>(&b, "ch"),
        &StringArray::from(vec![Some("ab "), None, Some("   ")])
    );
    assert_eq!(
        col::<BooleanArray>(&b, "b"),
        &BooleanArray::from(vec![Some(true), None, Some(false)])
    );
    let days = |y, m, d| {
        (chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date") - chrono::NaiveDate::default())
            .num_days() as i32
    };
    assert_eq!(
        col::<Date32Array>(&b, "d"),
        &Date32Array::from(vec![Some(days(2024, 2, 29)), None, Some(days(1900, 1, 1))])
    );
    assert_eq!(
        col::<StringArray>(&b, "tm"),
        &StringArray::from(vec![Some("13:05:09.25"), None, Some("00:00:00")])
    );
    let micros = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .expect("time")
            .and_utc()
            .timestamp_micros()
    };
    let ts = col::<TimestampMicrosecondArray>(&b, "ts");
    assert_eq!(ts.timezone(), None);
    assert_eq!(
        ts,
        &TimestampMicrosecondArray::from(vec![
            Some(micros("2024-03-10 02:30:00.123456")),
            None,
            Some(micros("0001-01-01 00:00:00"))
        ])
    );
    let tz = col::<TimestampMicrosecondArray>(&b, "tz");
    assert_eq!(tz.timezone(), Some("UTC"));
    // 12:00 at +02 is 10:00 UTC; the instant before 1970 is negative.
    assert_eq!(tz.value(0), micros("2024-06-01 10:00:00"));
    assert!(tz.is_null(1));
    assert_eq!(tz.value(2), -1);
    assert_eq!(
        col::<StringArray>(&b, "iv"),
        &StringArray::from(vec![Some("P1Y2M3DT4H5M6.5S"), None, Some("P-1MT-1S")])
    );
    assert_eq!(
        col::<StringArray>(&b, "j"),
        &StringArray::from(vec![Some(r#"{"a": [1, 2]}"#), None, Some("[]")])
    );
    assert_eq!(
        col::<StringArray>(&b, "jb"),
        &StringArray::from(vec![Some(r#"{"a": "x", "b": 1}"#), None, Some("{}")])
    );
    assert_eq!(
        col::<StringArray>(&b, "u"),
        &StringArray::from(vec![
            Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            None,
            Some("00000000-0000-0000-0000-000000000000")
        ])
    );
    assert_eq!(
        col::<BinaryArray>(&b, "by"),
        &BinaryArray::from(vec![Some(&[0u8, 255][..]), None, Some(&[][..])])
    );
    let ai = col::<ListArray>(&b, "ai");
    let expected = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), None, Some(3)]),
        None,
        Some(vec![]),
    ]);
    assert_eq!(ai, &expected);
    let at = col::<ListArray>(&b, "at");
    assert!(at.is_null(1));
    let first = at.value(0);
    let first = first
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("text items");
    assert_eq!(first, &StringArray::from(vec!["ä", ""]));
    let last: ArrayRef = at.value(2);
    assert_eq!((last.len(), last.null_count()), (1, 1));
}

#[tokio::test]
async fn postgres_types_without_a_mapping_say_which_cast_to_write() {
    let Some(url) = pg_url().await else { return };
    let e = DbSource::open(
        "odd",
        &pg_def(&url, "SELECT 1::money AS cash, point(1,2) AS p".into()),
    )
    .await
    .expect_err("money has no mapping");
    let m = e.to_string();
    assert!(m.contains("column `cash` has type `money`"), "{m}");
    assert!(m.contains("SELECT cash::text AS cash"), "{m}");
    assert!(
        m.contains("column `p` has type `point`"),
        "every such column is named: {m}"
    );

    let sql = "SELECT 1.5::numeric AS x, 2::numeric(50,3) AS y";
    let e = DbSource::open("loose", &pg_def(&url, sql.into()))
        .await
        .expect_err("numeric without precision");
    let m = e.to_string();
    assert!(m.contains("column `x` has type `numeric`"), "{m}");
    assert!(m.contains("numeric = \"float\""), "{m}");
    assert!(m.contains("`numeric(50,3)` has more than 38 digits"), "{m}");
    let mut float = pg_def(&url, sql.into());
    float.numeric = NumericMode::Float;
    let source = DbSource::open("loose", &float).await.expect("as floats");
    let b = rows(&source, "SELECT * FROM t").await;
    assert_eq!(col::<Float64Array>(&b, "x").value(0), 1.5);
    assert_eq!(col::<Float64Array>(&b, "y").value(0), 2.0);
}

#[tokio::test]
async fn a_query_error_names_the_source_and_the_position() {
    let Some(url) = pg_url().await else { return };
    let e = DbSource::open(
        "orders",
        &pg_def(&url, "SELECT oid, nope FROM pg_class".into()),
    )
    .await
    .expect_err("no such column");
    let m = e.to_string();
    assert!(
        m.starts_with("source `orders` (127.0.0.1:5432, database `test`"),
        "{m}"
    );
    assert!(m.contains("column \"nope\" does not exist"), "{m}");
    assert!(m.contains("at character 13 of the query"), "{m}");
    assert_eq!(e.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn connection_errors_name_the_server_never_the_password() {
    // Port 1 refuses: nothing listens there.
    let def = pg_def(
        "postgres://app:hunter2secret@127.0.0.1:1/sales",
        "SELECT 1".into(),
    );
    let e = DbSource::open("orders", &def).await.expect_err("refused");
    let m = e.to_string();
    assert!(
        m.contains("127.0.0.1:1, database `sales` (user `app`)"),
        "{m}"
    );
    assert!(!m.contains("hunter2secret"), "{m}");
    assert_eq!(e.class(), ErrorClass::Transient, "{m}");
    assert!(!format!("{e:?}").contains("hunter2secret"));

    let Some(url) = pg_url().await else { return };
    let missing = url
        .replace("/test", "/sluice_no_such_db")
        .replace("@", ":pw_never_shown@");
    let e = DbSource::open("orders", &pg_def(&missing, "SELECT 1".into()))
        .await
        .expect_err("no database");
    let m = e.to_string();
    assert!(
        m.contains("database `sluice_no_such_db`") && m.contains("does not exist"),
        "{m}"
    );
    assert!(!m.contains("pw_never_shown"), "{m}");
}

#[tokio::test]
async fn filters_run_in_the_database_with_bound_values() {
    let Some(url) = pg_url().await else { return };
    let db = Scratch::new(
        &url,
        "CREATE TABLE e (id int8, name text, updated_at timestamptz, amount numeric(10,2));
         INSERT INTO e SELECT g, 'n' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', g / 4.0
         FROM generate_series(1, 100) g;
         INSERT INTO e VALUES (101, 'it''s; DROP TABLE e; --', NULL, NULL);",
    )
    .await;
    let def = pg_def(&url, format!("SELECT * FROM {}.e", db.schema));
    let source = DbSource::open("events", &def).await.expect("opens");
    let ctx = SessionContext::new();
    ctx.register_table("t", source.table_provider())
        .expect("register");
    let sql = "SELECT id FROM t WHERE updated_at >= '2024-01-03T00:00:00Z' AND id < 60 ORDER BY id";
    let df = ctx.sql(sql).await.expect("plan");
    let plan = df.clone().create_physical_plan().await.expect("physical");
    let shown = displayable(plan.as_ref()).indent(true).to_string();
    assert!(
        !shown.contains("FilterExec"),
        "the filter is exact in the database:\n{shown}"
    );
    let b = concat_batches(
        &Arc::new(df.schema().as_arrow().clone()),
        &df.collect().await.expect("read"),
    )
    .expect("concat");
    let ids = col::<Int64Array>(&b, "id").values().to_vec();
    assert_eq!(ids, (48..60).collect::<Vec<i64>>());
    // Text is bound, never pasted: a quote in the value is only a value.
    let b = rows(
        &source,
        "SELECT id FROM t WHERE name = 'it''s; DROP TABLE e; --'",
    )
    .await;
    assert_eq!(col::<Int64Array>(&b, "id").values().to_vec(), vec![101]);
    let b = rows(&source, "SELECT count(*) AS n FROM t WHERE amount > 24.5").await;
    assert_eq!(col::<Int64Array>(&b, "n").value(0), 2, "24.75 and 25.00");
    // Anything else is DataFusion's: `<>` and OR are not pushed.
    let b = rows(
        &source,
        "SELECT count(*) AS n FROM t WHERE id <> 5 OR name = 'x'",
    )
    .await;
    assert_eq!(col::<Int64Array>(&b, "n").value(0), 100);
    db.remove().await;
}

#[tokio::test]
async fn ranges_read_what_one_read_does() {
    let Some(url) = pg_url().await else { return };
    let db = Scratch::new(
        &url,
        "CREATE TABLE r (id int4, v text);
         INSERT INTO r SELECT g, md5(g::text) FROM generate_series(-50, 20000) g;
         INSERT INTO r VALUES (NULL, 'null id'), (NULL, 'another');",
    )
    .await;
    let query = format!("SELECT * FROM {}.r", db.schema);
    let whole = DbSource::open("r", &pg_def(&url, query.clone()))
        .await
        .expect("opens");
    let mut def = pg_def(&url, query);
    def.partitions = Some(RangeSplit {
        count: 4,
        column: "id".into(),
    });
    let split = DbSource::open("r", &def).await.expect("opens");
    let ctx = SessionContext::new();
    ctx.register_table("t", split.table_provider())
        .expect("register");
    let plan = ctx
        .sql("SELECT * FROM t")
        .await
        .expect("plan")
        .create_physical_plan()
        .await
        .expect("plan");
    assert_eq!(plan.output_partitioning().partition_count(), 4);
    let sql =
        "SELECT count(*) AS n, count(id) AS ids, sum(id) AS s, count(DISTINCT v) AS vs FROM t";
    let a = rows(&whole, sql).await;
    let b = rows(&split, sql).await;
    assert_eq!(a, b);
    assert_eq!(col::<Int64Array>(&a, "n").value(0), 20_053);
    // With a filter, the ranges are of the filtered rows.
    let filtered = "SELECT count(*) AS n FROM t WHERE id >= 19000";
    assert_eq!(
        col::<Int64Array>(&rows(&split, filtered).await, "n").value(0),
        1001
    );
    db.remove().await;
}

#[tokio::test]
async fn sqlite_types_round_trip_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.db");
    let conn = rusqlite::Connection::open(&path).expect("create");
    conn.execute_batch(
        "CREATE TABLE runs (id INTEGER, score REAL, name TEXT, ok BOOLEAN, day DATE,
           at DATETIME, price DECIMAL(10,2), raw BLOB, note VARCHAR(5) COLLATE NOCASE);
         INSERT INTO runs VALUES (1, 0.1, 'Zoë 🐎', 1, '2024-02-29', '2024-03-10 02:30:00.5', '12.30', x'00ff', 'B');
         INSERT INTO runs VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
         INSERT INTO runs VALUES (3, -1e308, '', 0, '1900-01-01', '1969-12-31T23:00:00-01:00', -0.01, x'', 'a');",
    )
    .expect("setup");
    drop(conn);
    let def = DatabaseDef {
        engine: Engine::Sqlite,
        url: None,
        path: Some(path.clone()),
        query: "SELECT *, id * 2 AS twice, name || '!' AS shout FROM runs".into(),
        partitions: None,
        numeric: NumericMode::Decimal,
    };
    let source = DbSource::open("runs", &def).await.expect("opens");
    let b = rows(&source, "SELECT * FROM t ORDER BY id").await;
    assert_eq!(col::<Int64Array>(&b, "id").values().to_vec(), vec![1, 2, 3]);
    assert_eq!(
        col::<Float64Array>(&b, "score"),
        &Float64Array::from(vec![Some(0.1), None, Some(-1e308)])
    );
    assert_eq!(
        col::<StringArray>(&b, "name"),
        &StringArray::from(vec![Some("Zoë 🐎"), None, Some("")])
    );
    assert_eq!(
        col::<BooleanArray>(&b, "ok"),
        &BooleanArray::from(vec![Some(true), None, Some(false)])
    );
    assert_eq!(col::<Date32Array>(&b, "day").value(0), 19782);
    assert_eq!(col::<Date32Array>(&b, "day").value(2), -25567);
    let at = col::<TimestampMicrosecondArray>(&b, "at");
    assert_eq!(at.value(0), 1_710_037_800_500_000);
    assert!(at.is_null(1));
    assert_eq!(at.value(2), 0, "an offset is converted to UTC");
    let price = col::<Decimal128Array>(&b, "price");
    assert_eq!(
        (price.value_as_string(0), price.value_as_string(2)),
        ("12.30".into(), "-0.01".into())
    );
    assert_eq!(
        col::<BinaryArray>(&b, "raw"),
        &BinaryArray::from(vec![Some(&[0u8, 255][..]), None, Some(&[][..])])
    );
    assert_eq!(
        col::<Int64Array>(&b, "twice"),
        &Int64Array::from(vec![Some(2), Some(4), Some(6)])
    );
    assert_eq!(col::<StringArray>(&b, "shout").value(0), "Zoë 🐎!");
    // Pushed down, text compares byte by byte even in a NOCASE column.
    let b = rows(&source, "SELECT id FROM t WHERE note = 'b' OR id > 100").await;
    assert_eq!(b.num_rows(), 0);
    let b = rows(
        &source,
        "SELECT id FROM t WHERE note >= 'B' AND score < 1.0 ORDER BY id",
    )
    .await;
    assert_eq!(col::<Int64Array>(&b, "id").values().to_vec(), vec![1, 3]);

    let bad = DatabaseDef {
        query: "SELECT id, nope FROM runs".into(),
        ..def.clone()
    };
    let m = DbSource::open("runs", &bad)
        .await
        .expect_err("no column")
        .to_string();
    assert!(
        m.contains("source `runs`") && m.contains("no such column: nope"),
        "{m}"
    );
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch("INSERT INTO runs (id, score) VALUES (4, 'many')")
        .expect("insert");
    drop(conn);
    let ctx = SessionContext::new();
    ctx.register_table("t", source.table_provider())
        .expect("register");
    let e = ctx
        .sql("SELECT * FROM t")
        .await
        .expect("plan")
        .collect()
        .await
        .expect_err("text in a REAL column");
    let m = e.to_string();
    assert!(
        m.contains("column `score` (declared `REAL`), row 4: a text value"),
        "{m}"
    );
}
