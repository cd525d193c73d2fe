//! Bad input of every kind gets one clear error naming the file, line and column,
//! a non-zero exit, and never a panic.

use crate::common::*;

/// Runs `args` in `project` and returns stderr, asserting failure without a panic.
fn fails(project: &std::path::Path, args: &[&str]) -> String {
    let o = sluice(project, args);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "sluice {args:?} should fail; stdout:\n{}",
        stdout(&o)
    );
    assert!(
        !err.contains("panicked"),
        "sluice {args:?} panicked:\n{err}"
    );
    format!("{}{err}", stdout(&o))
}

fn csv_project(csv: &[u8], extra: &str) -> tempfile::TempDir {
    let toml = format!(
        "[project]\nname = \"t\"\n\n[sources.data]\npath = \"data/bad.csv\"\n{extra}\n[tables.t]\nsql = \"SELECT * FROM data\"\n"
    );
    project(&[("sluice.toml", toml.as_bytes()), ("data/bad.csv", csv)])
}

#[test]
fn csv_row_with_the_wrong_number_of_fields() {
    let p = csv_project(b"a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n", "");
    let err = fails(p.path(), &["run"]);
    assert!(
        err.contains("bad.csv:4: expected 3 fields, found 2"),
        "{err}"
    );
    // The failed source blocks its downstream.
    let (_, summary) = run_json(p.path(), &[]);
    assert_eq!(asset(&summary, "data")["status"], "failed");
    assert_eq!(asset(&summary, "t")["status"], "blocked");
    assert!(
        asset(&summary, "t")["error"]
            .as_str()
            .unwrap_or("")
            .contains("upstream `data` failed")
    );
}

#[test]
fn csv_value_of_the_wrong_type() {
    let p = csv_project(
        b"id,amount\n1,10\n2,abc\n",
        "columns = { amount = \"int64\" }\n",
    );
    let err = fails(p.path(), &["run"]);
    assert!(
        err.contains("bad.csv:3:2: `abc` is not a valid Int64"),
        "{err}"
    );
}

#[test]
fn csv_with_invalid_utf8() {
    let p = csv_project(b"id,name\n1,ok\n2,caf\xe9\n", "");
    let err = fails(p.path(), &["run"]);
    assert!(err.contains("bad.csv:3:2: invalid UTF-8"), "{err}");
}

#[test]
fn empty_and_missing_files() {
    let p = csv_project(b"", "");
    let err = fails(p.path(), &["run"]);
    assert!(err.contains("bad.csv: the file is empty"), "{err}");

    let p = project(&[(
        "sluice.toml",
        b"[project]\nname = \"t\"\n\n[sources.data]\npath = \"data/missing.csv\"\n",
    )]);
    let err = fails(p.path(), &["run"]);
    assert!(
        err.contains("sluice.toml:5:8: error: no file matches `data/missing.csv`"),
        "{err}"
    );
}

#[test]
fn ndjson_with_a_broken_line() {
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"t\"\n\n[sources.events]\npath = \"events.ndjson\"\n",
        ),
        ("events.ndjson", b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3\n"),
    ]);
    let err = fails(p.path(), &["run"]);
    assert!(err.contains("events.ndjson:3:"), "{err}");
    assert!(err.contains("invalid JSON"), "{err}");
}

#[test]
fn project_file_with_a_syntax_error() {
    let p = project(&[(
        "sluice.toml",
        b"[project]\nname = \"t\"\n\n[sources.x\npath = \"a.csv\"\n",
    )]);
    let err = fails(p.path(), &["check"]);
    assert!(err.contains("sluice.toml:4:"), "{err}");
}

#[test]
fn project_file_errors_are_reported_together() {
    let toml = b"[project]
name = \"t\"

[sources.flights]
path = \"f.csv\"
delimter = \";\"

[tables.a]
sql = \"SELECT * FROM flihgts\"

[tables.b]
sql = \"SELECT * FROM c\"

[tables.c]
sql = \"\"\"
SELECT *
FROM b\"\"\"
";
    let p = project(&[("sluice.toml", toml), ("f.csv", b"x\n1\n")]);
    let err = fails(p.path(), &["check"]);
    assert!(
        err.contains("sluice.toml:6:1: error: unknown field `delimter`"),
        "{err}"
    );
    assert!(
        err.contains("sluice.toml:9:22: error: unknown asset `flihgts` in table `a`"),
        "{err}"
    );
    assert!(err.contains("did you mean `flights`?"), "{err}");
    assert!(
        err.contains("the assets form a cycle: b -> c -> b"),
        "{err}"
    );
    assert!(err.contains("3 errors in the project"), "{err}");
}

#[test]
fn sql_that_does_not_plan_names_its_position() {
    let p = project(&[
        ("sluice.toml", b"[project]\nname = \"t\"\n\n[sources.data]\npath = \"d.csv\"\n\n[tables.t]\nfile = \"sql/t.sql\"\n"),
        ("d.csv", b"x,y\n1,2\n"),
        ("sql/t.sql", b"SELECT x,\n       nope + 1 AS z\nFROM data\n"),
    ]);
    let err = fails(p.path(), &["check"]);
    assert!(err.contains("t.sql:2:8: error: table `t`"), "{err}");
    assert!(err.contains("nope"), "{err}");

    let p = project(&[
        ("sluice.toml", b"[project]\nname = \"t\"\n\n[sources.data]\npath = \"d.csv\"\n\n[tables.t]\nsql = \"SELECT count(*) FROM data\"\n"),
        ("d.csv", b"x,y\n1,2\n"),
    ]);
    let err = fails(p.path(), &["check"]);
    assert!(err.contains("column name `count(*)`"), "{err}");
    assert!(err.contains("AS name"), "{err}");
}

#[test]
fn unknown_assets_and_missing_projects() {
    let dir = flights_copy();
    let err = fails(dir.path(), &["run", "nope"]);
    assert!(err.contains("unknown asset `nope`"), "{err}");
    let empty = tempfile::tempdir().expect("tempdir");
    let err = fails(empty.path(), &["run"]);
    assert!(
        err.contains("sluice.toml: error: cannot read the project file"),
        "{err}"
    );
    assert!(err.contains("sluice init"), "{err}");
}

#[test]
fn csv_options_nulls_delimiters_and_time_zones() {
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"t\"\n\n[sources.obs]\npath = \"data/*.tsv\"\nnull = [\"NA\", \"-\"]\ntimezone = \"America/New_York\"\ncolumns = { at = \"timestamp\" }\n",
        ),
        ("data/1.tsv", b"station\tvalue\tat\nA\t1.5\t2013-01-01 05:00:00\nB\tNA\t2013-07-01 05:00:00\n"),
        ("data/2.tsv", b"station\tvalue\tat\nC\t-\t2013-01-01T10:00:00Z\n"),
    ]);
    ok(p.path(), &["run"]);
    let out = ok(
        p.path(),
        &[
            "query",
            "--format",
            "csv",
            "SELECT station, value, CAST(at AS VARCHAR) AS at FROM obs ORDER BY station",
        ],
    );
    // New York is UTC-5 in January and UTC-4 in July; values with an offset keep it.
    assert_eq!(
        out,
        "station,value,at\nA,1.5,2013-01-01T10:00:00Z\nB,,2013-07-01T09:00:00Z\nC,,2013-01-01T10:00:00Z\n"
    );
}

#[test]
fn csv_errors_past_the_inferred_rows_keep_their_lines() {
    // With inference limited to the first record, the bad lines are met by the
    // reader itself, not by inference: positions must be the same.
    let p = csv_project(b"a,b,c\n1,2,3\n4,5,6\n7,8\n", "infer_rows = 1\n");
    let err = fails(p.path(), &["run"]);
    assert!(
        err.contains("bad.csv:4: expected 3 fields, found 2"),
        "{err}"
    );
    let p = csv_project(b"a,b\n1,2\n3,x\n", "infer_rows = 1\n");
    let err = fails(p.path(), &["run"]);
    assert!(
        err.contains("bad.csv:3:2: `x` is not a valid Int64"),
        "{err}"
    );
    let p = csv_project(b"a,b\n1,ok\n2,caf\xe9\n", "infer_rows = 1\n");
    let err = fails(p.path(), &["run"]);
    assert!(err.contains("bad.csv:3:2: invalid UTF-8"), "{err}");
}

#[test]
fn files_of_one_source_must_agree_and_json_fields_are_never_dropped() {
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"t\"\n\n[sources.parts]\npath = \"data/*.csv\"\n",
        ),
        ("data/a.csv", b"id,amount\n1,10\n"),
        ("data/b.csv", b"amount,id\n20,2\n"),
    ]);
    let err = fails(p.path(), &["run"]);
    assert!(
        err.contains("b.csv: its header `amount,id` differs from the first file's `id,amount`"),
        "{err}"
    );

    // A field first seen after the records used for inference is an error naming
    // its line, not a column silently left out.
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"t\"\n\n[sources.events]\npath = \"e.ndjson\"\ninfer_rows = 2\n",
        ),
        (
            "e.ndjson",
            b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3, \"b\": \"late\"}\n",
        ),
    ]);
    let err = fails(p.path(), &["run"]);
    assert!(err.contains("e.ndjson:3: "), "{err}");
    assert!(err.contains("infer_rows"), "{err}");

    // A JSON array of objects is read as rows.
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"t\"\n\n[sources.users]\npath = \"users.json\"\n",
        ),
        (
            "users.json",
            b"[{\"id\": \"A-san\", \"score\": 1.5}, {\"id\": \"B-san\", \"score\": null}]",
        ),
    ]);
    ok(p.path(), &["run"]);
    let out = ok(
        p.path(),
        &[
            "query",
            "--format",
            "csv",
            "SELECT id, score FROM users ORDER BY id",
        ],
    );
    assert_eq!(out, "id,score\nA-san,1.5\nB-san,\n");
}

#[test]
fn a_failure_keeps_the_previous_version_and_spares_siblings() {
    let toml = b"[project]\nname = \"t\"\n\n[sources.good]\npath = \"good.csv\"\n\n[sources.bad]\npath = \"bad.csv\"\n\n\
[tables.from_good]\nsql = \"SELECT sum(x) AS total FROM good\"\n\n[tables.from_bad]\nsql = \"SELECT sum(y) AS total FROM bad\"\n";
    let p = project(&[
        ("sluice.toml", toml),
        ("good.csv", b"x\n1\n2\n"),
        ("bad.csv", b"y\n10\n20\n"),
    ]);
    let (ok_run, first) = run_json(p.path(), &[]);
    assert!(ok_run, "{first}");

    // Both sources change; one of them is now broken.
    std::fs::write(p.path().join("good.csv"), b"x\n1\n2\n3\n").expect("write");
    std::fs::write(p.path().join("bad.csv"), b"y\n10\n20,30\n").expect("write");
    let (ok_run, second) = run_json(p.path(), &[]);
    assert!(!ok_run);
    assert_eq!(asset(&second, "good")["status"], "built");
    assert_eq!(asset(&second, "from_good")["status"], "built");
    assert_eq!(asset(&second, "bad")["status"], "failed");
    assert_eq!(
        asset(&second, "bad")["version"],
        0,
        "the published version is still v0"
    );
    assert_eq!(asset(&second, "from_bad")["status"], "blocked");
    assert_eq!(asset(&second, "from_bad")["version"], 0);
    assert_eq!(scalar(p.path(), "SELECT total FROM from_good"), 6);
    assert_eq!(
        scalar(p.path(), "SELECT total FROM from_bad"),
        30,
        "still the old result"
    );
    assert_eq!(
        scalar(p.path(), "SELECT count(*) FROM bad"),
        2,
        "still the old rows"
    );

    // The run log records the failure and the block with their reasons.
    let runs: serde_json::Value =
        serde_json::from_str(&ok(p.path(), &["runs", "--json"])).expect("json");
    assert_eq!(runs[0]["state"], "failed");
    let attempts = runs[0]["assets"].as_array().expect("assets");
    let bad = attempts.iter().find(|a| a["asset"] == "bad").expect("bad");
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or("")
            .contains("bad.csv:3: expected 1 fields, found 2"),
        "{bad}"
    );
    let blocked = attempts
        .iter()
        .find(|a| a["asset"] == "from_bad")
        .expect("from_bad");
    assert_eq!(blocked["status"], "blocked");

    // Fixing the file lets the next run succeed.
    std::fs::write(p.path().join("bad.csv"), b"y\n10\n20\n30\n").expect("write");
    let (ok_run, third) = run_json(p.path(), &[]);
    assert!(ok_run, "{third}");
    assert_eq!(scalar(p.path(), "SELECT total FROM from_bad"), 60);
}

#[test]
fn output_cut_short_by_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let dir = project(&[("sluice.toml", b"[project]\nname = \"pipe\"\n")]);
    // As `sluice query ... | head -c 1024`: the reader goes away early.
    for format in ["table", "csv", "json"] {
        let mut child = sluice_cmd(dir.path())
            .args([
                "query",
                "--format",
                format,
                "SELECT unnest(range(1, 2000000)) AS value",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sluice runs");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 1024];
        stdout.read_exact(&mut first).expect("the first bytes");
        drop(stdout);
        let out = child.wait_with_output().expect("ends");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "{format}: {err}");
        assert_eq!(out.status.code(), Some(141), "{format}: {err}");
    }
}
