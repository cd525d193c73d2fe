//! Database sources end to end: a PostgreSQL table (read in ranges) and a
//! SQLite file become published assets that SQL reads; a database source is
//! read at every run; a partitioned one reads each partition's rows with its
//! bounds applied in the database; a connection error names the server and never the
//! password — not in the output, the run's log lines or the run record.

use std::path::Path;

use crate::common::*;

/// The test database's URL, or `None` (outside CI) to skip.
pub(crate) fn pg_url() -> Option<String> {
    for user in ["postgres", "root"] {
        let url = format!("postgres://{user}@127.0.0.1:5432/test");
        if pg(&url, "SELECT 1").is_ok() {
            return Some(url);
        }
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs PostgreSQL at 127.0.0.1:5432 with a database `test` (user postgres or root)"
    );
    eprintln!("skipped: no PostgreSQL at 127.0.0.1:5432");
    None
}

/// Runs `sql` (several statements) in the test database.
pub(crate) fn pg(url: &str, sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        client.batch_execute(sql).await.map_err(|e| e.to_string())
    })
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

fn run_env(p: &Path, args: &[&str], url: &str) -> std::process::Output {
    sluice_cmd(p)
        .args(args)
        .env("SLUICE_TEST_PG_URL", url)
        .output()
        .expect("sluice runs")
}

#[test]
fn a_postgres_table_read_in_ranges_is_published_and_read_again_each_run() {
    let Some(url) = pg_url() else { return };
    let schema = unique("sluice_it_pg");
    pg(
        &url,
        &format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.orders (id int8, customer text, amount numeric(12,2),
               at timestamptz, tags text[]);
             INSERT INTO {schema}.orders
               SELECT g, 'c' || (g % 7), g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
                      ARRAY['a', 'b']
               FROM generate_series(1, 5000) g;
             INSERT INTO {schema}.orders VALUES (NULL, 'Zoë', 0.01, NULL, NULL);"
        ),
    )
    .expect("setup");
    let toml = format!(
        r#"
[project]
name = "db"

[sources.orders]
postgres = {{ url = "${{SLUICE_TEST_PG_URL}}", table = "{schema}.orders", partitions = 3, partition_column = "id" }}

[tables.by_customer]
sql = "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer"
"#
    );
    let dir = project(&[("sluice.toml", toml.as_bytes())]);
    let p = dir.path();
    let o = run_env(p, &["check"], &url);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let o = run_env(p, &["run", "--json"], &url);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(scalar(p, "SELECT count(*) FROM orders"), 5001);
    assert_eq!(scalar(p, "SELECT count(DISTINCT id) FROM orders"), 5000);
    assert_eq!(
        scalar(p, "SELECT CAST(sum(amount) * 100 AS BIGINT) FROM orders"),
        (1..=5000i64).map(|g| g * 125).sum::<i64>() + 1
    );
    let out = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT customer, at FROM orders WHERE id = 60",
        ],
    );
    assert!(out.contains("c4,2024-01-01T01:00:00Z"), "{out}");
    let out = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT customer FROM orders WHERE id IS NULL",
        ],
    );
    assert!(out.contains("Zoë"), "{out}");

    // Nothing changed in the project, but a database changes without telling.
    pg(
        &url,
        &format!("INSERT INTO {schema}.orders VALUES (5001, 'c1', 1, NULL, NULL)"),
    )
    .expect("insert");
    let o = run_env(p, &["status"], &url);
    let text = stdout(&o);
    assert!(
        text.contains("a database source is read at every run"),
        "{text}"
    );
    let o = run_env(p, &["run"], &url);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(scalar(p, "SELECT count(*) FROM orders"), 5002);
    assert_eq!(scalar(p, "SELECT sum(n) FROM by_customer"), 5002);
    pg(&url, &format!("DROP SCHEMA {schema} CASCADE")).expect("drop");
}

#[test]
fn a_partitioned_postgres_source_reads_each_partition_s_rows_at_the_database() {
    let Some(url) = pg_url() else { return };
    let schema = unique("sluice_it_pgpart");
    pg(
        &url,
        &format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.events (id int8, day date);
             INSERT INTO {schema}.events
               SELECT g, DATE '2024-01-01' + (g % 3) FROM generate_series(1, 300) g;"
        ),
    )
    .expect("setup");
    // Every row of 1 January divides by zero: PostgreSQL fails as soon as it
    // computes one. So a day that builds was read with its bounds applied in
    // the database, not read whole and filtered by sluice.
    let toml = format!(
        r#"
[project]
name = "db"

[sources.events]
postgres = {{ url = "${{SLUICE_TEST_PG_URL}}", query = "SELECT id, day, 100 / (CASE WHEN day = DATE '2024-01-01' THEN 0 ELSE 1 END) AS v FROM {schema}.events" }}
partitioned = {{ by = "day", column = "day", start = "2024-01-01", end = "2024-01-03" }}
"#
    );
    let dir = project(&[("sluice.toml", toml.as_bytes())]);
    let p = dir.path();
    let o = run_env(
        p,
        &[
            "backfill",
            "events",
            "--from",
            "2024-01-02",
            "--to",
            "2024-01-03",
        ],
        &url,
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(scalar(p, "SELECT count(*) FROM events"), 200);
    assert_eq!(scalar(p, "SELECT sum(v) FROM events"), 200 * 100);
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM events WHERE day = DATE '2024-01-03'"
        ),
        100
    );

    // A run builds what is missing: 1 January, which cannot be read.
    let o = run_env(p, &["run"], &url);
    assert!(!o.status.success(), "{}", stdout(&o));
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        text.contains("division by zero") && text.contains("2024-01-01"),
        "{text}"
    );
    assert_eq!(
        scalar(p, "SELECT count(*) FROM events"),
        200,
        "the built days are kept"
    );
    pg(&url, &format!("DROP SCHEMA {schema} CASCADE")).expect("drop");
}

/// The test MariaDB/MySQL server's URL, or `None` (outside CI) to skip.
fn mysql_url() -> Option<String> {
    let url = "mysql://root@127.0.0.1:3306/test".to_string();
    if mysql(&url, "SELECT 1").is_ok() {
        return Some(url);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs MariaDB or MySQL at 127.0.0.1:3306 with a database `test` (user root, no password)"
    );
    eprintln!("skipped: no MySQL at 127.0.0.1:3306");
    None
}

/// Runs `sql` (statements separated by `;` at line ends) in the test database.
fn mysql(url: &str, sql: &str) -> Result<(), String> {
    use mysql_async::prelude::Queryable;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let opts = mysql_async::Opts::from_url(url).map_err(|e| e.to_string())?;
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .map_err(|e| e.to_string())?;
        for statement in sql.split(";\n").filter(|s| !s.trim().is_empty()) {
            conn.query_drop(statement)
                .await
                .map_err(|e| e.to_string())?;
        }
        conn.disconnect().await.map_err(|e| e.to_string())
    })
}

#[test]
fn a_mysql_table_of_every_common_type_is_read_in_ranges_and_incrementally() {
    let Some(url) = mysql_url() else { return };
    let table = unique("sluice_it_my");
    mysql(
        &url,
        &format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, small SMALLINT, big_u BIGINT UNSIGNED,
               amount DECIMAL(12,2), ratio DOUBLE, name VARCHAR(40), note TEXT, flag BOOLEAN,
               born DATE, seen DATETIME(6), at TIMESTAMP(3) NULL, took TIME, doc JSON, raw BLOB);
             INSERT INTO {table} VALUES
               (1, -3, 18446744073709551615, 12.34, 0.5, 'Zoë', 'first', TRUE, '1990-02-03',
                '2024-01-01 10:00:00.250000', '2024-01-01 10:00:00.125', '-01:02:03', '{{\"a\": 1}}', x'00ff'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-02 00:00:00', NULL, NULL, NULL, NULL);
             INSERT INTO {table} (id, name, amount, seen)
               SELECT seq, CONCAT('n', seq), seq * 1.25, TIMESTAMP '2024-02-01 00:00:00' + INTERVAL seq MINUTE
               FROM seq_3_to_3000;
"
        ),
    )
    .expect("setup");
    let toml = format!(
        r#"
[project]
name = "my"

[sources.orders]
mysql = {{ url = "${{SLUICE_TEST_MY_URL}}", table = "{table}", partitions = 3, partition_column = "id" }}

[sources.recent]
mysql = {{ url = "${{SLUICE_TEST_MY_URL}}", table = "{table}" }}
incremental = {{ column = "seen", key = ["id"], mode = "merge", lookback = "1h" }}
"#
    );
    let dir = project(&[("sluice.toml", toml.as_bytes())]);
    let p = dir.path();
    let env_run = |args: &[&str]| {
        sluice_cmd(p)
            .args(args)
            .env("SLUICE_TEST_MY_URL", &url)
            .output()
            .expect("sluice runs")
    };
    let o = env_run(&["check"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let o = env_run(&["run"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(scalar(p, "SELECT count(*) FROM orders"), 3000);
    assert_eq!(scalar(p, "SELECT count(DISTINCT id) FROM orders"), 3000);
    assert_eq!(
        scalar(p, "SELECT CAST(sum(amount) * 100 AS BIGINT) FROM orders"),
        (3..=3000i64).map(|g| g * 125).sum::<i64>() + 1234
    );
    let out = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT small, big_u, amount, ratio, name, flag, born, seen, at, took, doc, raw FROM orders WHERE id = 1",
        ],
    );
    assert!(
        out.contains(
            "-3,18446744073709551615,12.34,0.5,Zoë,true,1990-02-03,2024-01-01T10:00:00.250,2024-01-01T10:00:00.125Z,-01:02:03,"
        ),
        "{out}"
    );
    assert!(out.contains("00ff"), "{out}");
    let out = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT arrow_typeof(small), arrow_typeof(big_u), arrow_typeof(at) FROM orders LIMIT 1",
        ],
    );
    assert!(
        out.contains("Int16,\"Decimal128(20, 0)\",\"Timestamp(µs, \"\"UTC\"\")\""),
        "{out}"
    );
    assert_eq!(scalar(p, "SELECT count(*) FROM recent"), 3000);

    // A late update inside the lookback, and new rows: merged by key.
    mysql(
        &url,
        &format!(
            "UPDATE {table} SET name = 'late', seen = TIMESTAMP '2024-02-03 01:30:00' WHERE id = 3000;
             INSERT INTO {table} (id, name, seen) VALUES (3001, 'new', TIMESTAMP '2024-02-03 02:00:00');
"
        ),
    )
    .expect("update");
    let o = env_run(&["run", "recent"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(scalar(p, "SELECT count(*) FROM recent"), 3001);
    assert_eq!(
        scalar(p, "SELECT count(*) FROM recent WHERE name = 'late'"),
        1
    );
    mysql(&url, &format!("DROP TABLE {table}")).expect("drop");
}

#[test]
fn a_connection_error_names_the_server_and_never_the_password() {
    for (engine, scheme, names) in [
        (
            "postgres",
            "postgres",
            "PostgreSQL at 127.0.0.1:1, database `sales` (user `app`)",
        ),
        (
            "mysql",
            "mysql",
            "MySQL at 127.0.0.1:1, database `sales` (user `app`)",
        ),
    ] {
        connection_error_hides_the_password(engine, scheme, names);
    }
}

fn connection_error_hides_the_password(engine: &str, scheme: &str, names: &str) {
    let secret = "hunter2-never-shown";
    let toml = format!(
        r#"
[project]
name = "db"

[sources.orders]
{engine} = {{ url = "{scheme}://app:{secret}@127.0.0.1:1/sales", table = "orders" }}
"#
    );
    let dir = project(&[("sluice.toml", toml.as_bytes())]);
    let p = dir.path();
    let o = sluice(p, &["run"]);
    assert!(!o.status.success());
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains(&format!("cannot connect to {names}")), "{all}");
    assert!(!all.contains(secret), "{all}");
    let o = sluice(p, &["runs", "show", "1"]);
    let shown = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        shown.contains("127.0.0.1:1"),
        "the log holds the error: {shown}"
    );
    assert!(!shown.contains(secret), "{shown}");
    let o = sluice(p, &["runs", "show", "1", "--json"]);
    assert!(!stdout(&o).contains(secret));
    // Nothing the run stored holds it, in any file of the warehouse.
    for entry in walk(&p.join(".sluice")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret),
            "{} holds the password",
            entry.display()
        );
    }
    let o = sluice(p, &["check"]);
    assert!(!format!("{}{}", stdout(&o), stderr(&o)).contains(secret));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_sqlite_file_of_the_project_is_a_source() {
    let dir = project(&[(
        "sluice.toml",
        br#"
[project]
name = "races"

[sources.results]
sqlite = { path = "data/races.db", query = "SELECT race, horse, position, finished_at FROM results WHERE position IS NOT NULL" }

[tables.winners]
sql = "SELECT race, horse FROM results WHERE position = 1"
"#,
    )]);
    let p = dir.path();
    std::fs::create_dir_all(p.join("data")).expect("data folder");
    let conn = rusqlite::Connection::open(p.join("data/races.db")).expect("create");
    conn.execute_batch(
        "CREATE TABLE results (race INTEGER, horse TEXT, position INTEGER, finished_at DATETIME);
         INSERT INTO results VALUES (1, 'Śnieżka', 1, '2024-05-01 14:03:22.5'), (1, 'Blue', 2, '2024-05-01 14:03:23'),
           (2, 'Blue', 1, '2024-05-02 15:00:00'), (2, 'Nope', NULL, NULL);",
    )
    .expect("setup");
    drop(conn);
    ok(p, &["run"]);
    assert_eq!(scalar(p, "SELECT count(*) FROM results"), 3);
    let out = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT horse, finished_at FROM winners JOIN results USING (race, horse) ORDER BY race",
        ],
    );
    assert!(out.contains("Śnieżka,2024-05-01T14:03:22.500"), "{out}");
}

#[test]
fn database_source_mistakes_are_reported_with_their_keys() {
    let dir = project(&[(
        "sluice.toml",
        br#"
[project]
name = "bad"

[sources.both]
postgres = { url = "${PG_URL}", table = "a", query = "SELECT 1" }

[sources.typo]
postgres = { url = "${PG_URL}", tabel = "a" }

[sources.ranges]
postgres = { url = "mysql://x@h/db", table = "a", partitions = 4 }

[sources.file_typo]
pth = "x.csv"

[sources.lite]
sqlite = { path = "missing.db", table = "t" }
"#,
    )]);
    let o = sluice(dir.path(), &["check"]);
    assert!(!o.status.success());
    let text = format!("{}{}", stdout(&o), stderr(&o));
    for expected in [
        "`postgres` has both `query` and `table`",
        "unknown field `tabel`",
        "`postgres.partitions` needs `partition_column`",
        "is not a postgres URL",
        "unknown field `pth`, expected one of `path`",
        "no SQLite file `missing.db`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
