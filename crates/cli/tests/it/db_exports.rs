//! Exports to PostgreSQL, against the real server on 127.0.0.1:5432 (database
//! `test`): after each run the table equals the asset, type by type; `replace`
//! swaps the table atomically (a reader polling during the refresh sees run 1's
//! rows or run 2's, never a mix, never no table); `upsert` keeps rows not in
//! the new data; a table dropped by hand is written again; and a password in
//! the URL appears in no error, log line or run record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::*;

/// The server the tests use; the exports reach it through `${SLUICE_IT_PG_URL}`.
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A connection of the test's own, to read and prepare tables.
pub struct Pg {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Pg {
    /// Connects; without the server the test fails under `CI=true` and is
    /// skipped (with the reason printed) otherwise.
    pub fn connect() -> Option<Pg> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let connected = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        match connected {
            Ok(client) => Some(Pg { rt, client }),
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipped: no PostgreSQL at {PG_URL}: {e}");
                None
            }
            Err(e) => panic!("PostgreSQL at {PG_URL} is needed under CI=true: {e}"),
        }
    }

    /// Runs statements.
    pub fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// The rows of a query, every value as PostgreSQL prints it (UTC times).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_rows(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    fn try_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
        let messages = self.rt.block_on(
            self.client
                .simple_query(&format!("SET TIME ZONE 'UTC'; {sql}")),
        )?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect())
    }
}

/// A name no other test (or run of this test) uses.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("sluice_it_{tag}_{}_{nanos}", std::process::id())
}

/// Drops the schema when the test ends, passed or not.
struct DropSchema<'a>(&'a Pg, String);

impl Drop for DropSchema<'_> {
    fn drop(&mut self) {
        self.0
            .exec(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.1));
    }
}

fn run_with_pg(p: &std::path::Path, args: &[&str]) -> std::process::Output {
    sluice_cmd(p)
        .args(args)
        .env("SLUICE_IT_PG_URL", PG_URL)
        .output()
        .expect("sluice runs")
}

fn ok_with_pg(p: &std::path::Path, args: &[&str]) -> String {
    let o = run_with_pg(p, args);
    assert!(
        o.status.success(),
        "sluice {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

const TYPES_CSV_1: &str = "id,name,score,passed,day,at\n\
1,Zoë,9.5,true,2024-01-31,2024-01-31T10:00:00\n\
2,Ünïcödé ☃,7.25,false,2024-02-29,2024-02-29T23:59:59.123456\n\
3,,,,,\n";

const TYPES_CSV_2: &str = "id,name,score,passed,day,at\n\
1,Zoë,10.125,true,2024-01-31,2024-01-31T10:00:00\n\
4,Ørsted,-0.001,false,1999-12-31,1969-07-20T20:17:40\n";

fn types_project(schema: &str) -> String {
    format!(
        r#"
[project]
name = "pg_exports"

[sources.scores]
path = "scores.csv"

[exports.scores_pg]
sql = """
SELECT id, name, score,
  CAST(score AS DECIMAL(12, 3)) AS exact,
  passed,
  CAST(day AS DATE) AS day,
  CAST(at AS TIMESTAMP) AS at,
  arrow_cast(CAST(at AS TIMESTAMP), 'Timestamp(Microsecond, Some("UTC"))') AS at_utc,
  CAST(id AS SMALLINT) AS small,
  make_array(id, id * 2) AS pair,
  CASE WHEN id = 2 THEN '' ELSE name END AS maybe_empty
FROM scores
"""
postgres = {{ url = "${{SLUICE_IT_PG_URL}}", table = "{schema}.scores", key = ["id"] }}
"#
    )
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn a_replaced_table_equals_the_asset_type_by_type_after_each_run() {
    let Some(pg) = Pg::connect() else { return };
    let schema = unique("types");
    let _drop = DropSchema(&pg, schema.clone());
    let dir = project(&[
        ("sluice.toml", types_project(&schema).as_bytes()),
        ("scores.csv", TYPES_CSV_1.as_bytes()),
    ]);
    let p = dir.path();
    ok_with_pg(p, &["run"]);
    let table = format!("\"{schema}\".scores");
    let types = pg.rows(&format!(
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_schema = '{schema}' AND table_name = 'scores' ORDER BY ordinal_position"
    ));
    let types: Vec<(String, String)> = types
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("id", "bigint"),
        ("name", "text"),
        ("score", "double precision"),
        ("exact", "numeric"),
        ("passed", "boolean"),
        ("day", "date"),
        ("at", "timestamp without time zone"),
        ("at_utc", "timestamp with time zone"),
        ("small", "smallint"),
        ("pair", "jsonb"),
        ("maybe_empty", "text"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(types, want);
    let select = format!("SELECT * FROM {table} ORDER BY id");
    assert_eq!(
        pg.rows(&select),
        vec![
            vec![
                s("1"),
                s("Zoë"),
                s("9.5"),
                s("9.500"),
                s("t"),
                s("2024-01-31"),
                s("2024-01-31 10:00:00"),
                s("2024-01-31 10:00:00+00"),
                s("1"),
                s("[1, 2]"),
                s("Zoë"),
            ],
            vec![
                s("2"),
                s("Ünïcödé ☃"),
                s("7.25"),
                s("7.250"),
                s("f"),
                s("2024-02-29"),
                s("2024-02-29 23:59:59.123456"),
                s("2024-02-29 23:59:59.123456+00"),
                s("2"),
                s("[2, 4]"),
                s(""),
            ],
            vec![
                s("3"),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                s("3"),
                s("[3, 6]"),
                None,
            ],
        ]
    );
    // The key's unique index came with the table.
    let index = pg.rows(&format!(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'scores'"
    ));
    assert_eq!(index.len(), 1, "{index:?}");
    assert!(
        index[0][0]
            .as_deref()
            .unwrap_or_default()
            .contains("UNIQUE INDEX scores_sluice_key"),
        "{index:?}"
    );

    // Run 2: a row gone, a row changed, a row new; the table is exactly the new rows.
    std::fs::write(p.join("scores.csv"), TYPES_CSV_2).expect("write");
    ok_with_pg(p, &["run"]);
    assert_eq!(
        pg.rows(&format!(
            "SELECT id, name, score, exact, day, at FROM {table} ORDER BY id"
        )),
        vec![
            vec![
                s("1"),
                s("Zoë"),
                s("10.125"),
                s("10.125"),
                s("2024-01-31"),
                s("2024-01-31 10:00:00")
            ],
            vec![
                s("4"),
                s("Ørsted"),
                s("-0.001"),
                s("-0.001"),
                s("1999-12-31"),
                s("1969-07-20 20:17:40")
            ],
        ]
    );
    // Nothing changed: up to date, the table untouched.
    let status = ok_with_pg(p, &["status", "--json"]);
    assert!(!status.contains("missing"), "{status}");
    let (_, summary) = run_json_pg(p);
    assert_eq!(
        asset(&summary, "scores_pg")["status"],
        "up_to_date",
        "{summary}"
    );

    // Dropped by hand: stale, and the next run writes it again.
    pg.exec(&format!("DROP TABLE {table}"));
    let status = ok_with_pg(p, &["status", "--json"]);
    assert!(status.contains("is missing"), "{status}");
    let (ok, summary) = run_json_pg(p);
    assert!(ok, "{summary}");
    assert_eq!(asset(&summary, "scores_pg")["status"], "built", "{summary}");
    assert_eq!(
        pg.rows(&format!("SELECT count(*) FROM {table}")),
        vec![vec![s("2")]]
    );
}

fn run_json_pg(p: &std::path::Path) -> (bool, serde_json::Value) {
    let o = run_with_pg(p, &["run", "--json"]);
    let v = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", stdout(&o), stderr(&o)));
    (o.status.success(), v)
}

fn upsert_project(schema: &str) -> String {
    format!(
        r#"
[project]
name = "pg_upsert"

[sources.users]
path = "users.csv"

[exports.users_pg]
from = "users"
postgres = {{ url = "${{SLUICE_IT_PG_URL}}", table = "{schema}.users", mode = "upsert", key = ["tenant", "id"] }}
"#
    )
}

#[test]
fn an_upsert_updates_matching_rows_and_keeps_the_others() {
    let Some(pg) = Pg::connect() else { return };
    let schema = unique("upsert");
    let _drop = DropSchema(&pg, schema.clone());
    let dir = project(&[
        ("sluice.toml", upsert_project(&schema).as_bytes()),
        (
            "users.csv",
            b"tenant,id,name,visits\na,1,Ann,3\na,2,Bo,5\nb,1,Cy,7\n",
        ),
    ]);
    let p = dir.path();
    ok_with_pg(p, &["run"]);
    std::fs::write(
        p.join("users.csv"),
        "tenant,id,name,visits\na,2,Bob,6\nb,2,Di,1\n",
    )
    .expect("write");
    ok_with_pg(p, &["run"]);
    let select = format!("SELECT * FROM \"{schema}\".users ORDER BY tenant, id");
    assert_eq!(
        pg.rows(&select),
        vec![
            vec![s("a"), s("1"), s("Ann"), s("3")],
            vec![s("a"), s("2"), s("Bob"), s("6")],
            vec![s("b"), s("1"), s("Cy"), s("7")],
            vec![s("b"), s("2"), s("Di"), s("1")],
        ]
    );

    // A table made by someone else, without a unique index on the key: the
    // error says which index to create, and nothing is written.
    let other = unique("noindex");
    let _drop_other = DropSchema(&pg, other.clone());
    pg.exec(&format!(
        "CREATE SCHEMA \"{other}\"; CREATE TABLE \"{other}\".users (tenant text, id bigint, name text, visits bigint)"
    ));
    std::fs::write(p.join("sluice.toml"), upsert_project(&other)).expect("write");
    let o = run_with_pg(p, &["run"]);
    assert!(!o.status.success());
    let err = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        err.contains(&format!(
            "CREATE UNIQUE INDEX ON \"{other}\".\"users\" (\"tenant\", \"id\")"
        )),
        "{err}"
    );
    assert!(err.contains("127.0.0.1:5432, database `test`"), "{err}");
    pg.exec(&format!(
        "CREATE UNIQUE INDEX ON \"{other}\".users (id, tenant)"
    ));
    ok_with_pg(p, &["run"]);
    assert_eq!(
        pg.rows(&format!("SELECT count(*) FROM \"{other}\".users")),
        vec![vec![s("2")]]
    );
}

fn rows_csv(n: usize, generation: u32) -> String {
    let mut csv = String::from("id,generation,payload\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{i},{generation},row {i} of generation {generation}\n"
        ));
    }
    csv
}

#[test]
fn a_reader_polling_during_a_replace_sees_one_run_or_the_next_never_a_mix() {
    let Some(pg) = Pg::connect() else { return };
    let schema = unique("swap");
    let _drop = DropSchema(&pg, schema.clone());
    let toml = format!(
        r#"
[project]
name = "pg_swap"

[sources.big]
path = "big.csv"

[exports.big_pg]
from = "big"
postgres = {{ url = "${{SLUICE_IT_PG_URL}}", table = "{schema}.big" }}
"#
    );
    let (n1, n2) = (150_000usize, 200_000usize);
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        ("big.csv", rows_csv(n1, 1).as_bytes()),
    ]);
    let p = dir.path();
    ok_with_pg(p, &["run"]);
    std::fs::write(p.join("big.csv"), rows_csv(n2, 2)).expect("write");

    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let sql =
            format!("SELECT count(*), min(generation), max(generation) FROM \"{schema}\".big");
        std::thread::spawn(move || {
            let pg = Pg::connect().expect("the poller connects");
            let mut seen = vec![];
            loop {
                let done = stop.load(Ordering::SeqCst);
                let rows = pg.try_rows(&sql).map_err(|e| format!("{e:?}"));
                seen.push(rows);
                if done {
                    return seen;
                }
            }
        })
    };
    ok_with_pg(p, &["run"]);
    stop.store(true, Ordering::SeqCst);
    let seen = poller.join().expect("poller");
    let one = vec![vec![s(&n1.to_string()), s("1"), s("1")]];
    let two = vec![vec![s(&n2.to_string()), s("2"), s("2")]];
    let mut counts = (0, 0);
    for (i, polled) in seen.iter().enumerate() {
        match polled {
            Ok(r) if *r == one => counts.0 += 1,
            Ok(r) if *r == two => counts.1 += 1,
            other => panic!("poll {i} saw {other:?}, neither run 1's rows nor run 2's"),
        }
    }
    assert!(counts.0 > 0 && counts.1 > 0, "{counts:?}");
    println!(
        "polls during the refresh: {} of run 1, {} of run 2",
        counts.0, counts.1
    );
}

#[test]
fn a_password_in_the_url_is_in_no_error_log_or_run_record() {
    let Some(pg) = Pg::connect() else { return };
    let secret = "Sup3rS3cretPw-4711";
    let schema = unique("secret");
    let _drop = DropSchema(&pg, schema.clone());
    let toml = format!(
        r#"
[project]
name = "pg_secret"

[sources.users]
path = "users.csv"

[exports.unreachable]
from = "users"
postgres = {{ url = "${{SLUICE_IT_BAD_PG_URL}}", table = "{schema}.users" }}

[exports.no_database]
from = "users"
postgres = {{ url = "postgres://postgres:${{SLUICE_IT_PG_PASSWORD}}@127.0.0.1:5432/sluice_it_no_such_db", table = "{schema}.users" }}
"#
    );
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        ("users.csv", b"id,name\n1,Ann\n"),
    ]);
    let p = dir.path();
    let env = [
        (
            "SLUICE_IT_BAD_PG_URL",
            format!("postgres://postgres:{secret}@127.0.0.1:1/test"),
        ),
        ("SLUICE_IT_PG_PASSWORD", secret.to_string()),
    ];
    let o = sluice_cmd(p)
        .args(["run", "--json"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let out = format!("{}{}", stdout(&o), stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let unreachable = asset(&summary, "unreachable");
    let message = unreachable["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("127.0.0.1:1, database `test`") && message.contains("`users`"),
        "{message}"
    );
    // Transient (a connection failure): the message says a retry may help.
    assert!(message.contains("the run may retry it"), "{message}");
    let missing = asset(&summary, "no_database")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        missing.contains("sluice_it_no_such_db") && missing.contains("does not exist"),
        "{missing}"
    );
    let shown = stdout(&sluice(p, &["runs", "show", "1"]));
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
    let mut records = String::new();
    for name in ["sluice.db", "sluice.db-wal"] {
        if let Ok(bytes) = std::fs::read(p.join(".sluice").join(name)) {
            records.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert!(!records.is_empty(), "the run log is in .sluice/sluice.db");
    for (what, text) in [
        ("output", &out),
        ("runs show", &shown),
        ("run log", &records),
    ] {
        assert!(
            !text.contains(secret),
            "the password is in the {what}:\n{text}"
        );
    }
}
