//! Code steps end to end: a Python step reads its input as Parquet and writes
//! an output a SQL table reads, through its contract; it is up to date until
//! its script changes. A failing command, a missing output and a malformed one
//! each fail the step with the status and the stderr tail, publishing nothing;
//! a secret handed to a step never reaches a log, an error or `run --json`.

use std::path::Path;

use crate::common::*;

const SCORE_PY: &str = r#"import json, os
import pyarrow.compute as pc
import pyarrow.parquet as pq

m = json.load(open(os.environ["SLUICE_MANIFEST"]))
assert m["step"] == "scored", m
assert isinstance(m["run_id"], int), m
[events] = m["inputs"]
assert events["name"] == "events", m
assert events["path"] == os.environ["SLUICE_INPUT_EVENTS"], m
assert isinstance(events["version"], int), m
assert m["output"] == os.environ["SLUICE_OUTPUT"], m
assert os.path.isabs(m["output"]), m
t = pq.read_table(events["path"])
assert t.num_rows == events["rows"], (t.num_rows, events)
t = t.append_column("score", pc.multiply(t["amount"], 2))
pq.write_table(t, os.environ["SLUICE_OUTPUT"])
print("scored", t.num_rows, "rows")
"#;

fn python_project(python: &str) -> tempfile::TempDir {
    let toml = format!(
        r#"
[project]
name = "steps"

[sources.events]
path = "events.csv"

[steps.scored]
command = ["{python}", "steps/score.py"]
inputs = ["events"]
output = "out/scored.parquet"
files = ["steps/*.py"]

[steps.scored.contract.columns.score]
min = 0

[tables.summary]
sql = "SELECT count(*) AS n, sum(score) AS total FROM scored"
"#
    );
    let mut csv = String::from("id,amount\n");
    for i in 1..=9 {
        csv.push_str(&format!("{i},{}\n", i * 10));
    }
    // The one row the contract rejects: a negative score.
    csv.push_str("10,-5\n");
    project(&[
        ("sluice.toml", toml.as_bytes()),
        ("events.csv", csv.as_bytes()),
        ("steps/score.py", SCORE_PY.as_bytes()),
    ])
}

#[test]
fn a_python_step_feeds_a_table_through_its_contract_and_reruns_when_its_script_changes() {
    let Some(python) = python() else {
        return;
    };
    let dir = python_project(&python);
    let p = dir.path();

    let (ok_, summary) = run_json(p, &[]);
    assert!(ok_, "{summary}");
    let scored = asset(&summary, "scored");
    assert_eq!(scored["kind"], "step", "{summary}");
    assert_eq!(scored["status"], "built", "{summary}");
    assert_eq!(scored["rows_in"], 10, "{summary}");
    assert_eq!(scored["rows_out"], 9, "{summary}");
    assert_eq!(scored["rows_quarantined"], 1, "{summary}");
    assert_eq!(asset(&summary, "summary")["status"], "built");
    assert_eq!(scalar(p, "SELECT n FROM summary"), 9);
    assert_eq!(scalar(p, "SELECT total FROM summary"), 900);
    assert_eq!(
        scalar(p, "SELECT count(*) FROM scored__quarantine WHERE id = 10"),
        1
    );
    let log = std::fs::read_to_string(p.join(".sluice/logs/scored/run-1.log")).expect("the log");
    assert!(log.contains("scored 10 rows"), "{log}");

    let (_, again) = run_json(p, &[]);
    assert_eq!(
        statuses(&again),
        vec![
            ("events".to_string(), "up_to_date".to_string()),
            ("scored".to_string(), "up_to_date".to_string()),
            ("summary".to_string(), "up_to_date".to_string()),
        ]
    );
    // An up-to-date step still accounts for what its version quarantined.
    assert_eq!(asset(&again, "scored")["rows_in"], 10, "{again}");

    std::fs::write(
        p.join("steps/score.py"),
        format!("{SCORE_PY}# scores are doubled amounts\n"),
    )
    .expect("write");
    let (_, changed) = run_json(p, &[]);
    assert_eq!(asset(&changed, "scored")["status"], "built", "{changed}");
    assert_eq!(asset(&changed, "scored")["version"], 1, "{changed}");
    assert!(
        ok(p, &["status"]).contains("scored"),
        "the step is listed with the assets"
    );
}

/// One step per way a command can fail, each with a downstream table.
const FAILING: &str = r#"
[project]
name = "failing"

[steps.bad_exit]
command = ["sh", "-c", "echo working; echo 'oops: the model file is corrupt' >&2; exit 3"]
output = "out/bad_exit.csv"

[steps.no_output]
command = ["sh", "-c", "echo 'nothing to write today' >&2"]
output = "out/no_output.csv"

[steps.junk_parquet]
command = ["sh", "-c", "echo 'not parquet' > \"$SLUICE_OUTPUT\"; echo 'wrote it' >&2"]
output = "out/junk.parquet"

[steps.ragged_csv]
command = ["sh", "-c", "printf 'a,b\\n1,2\\n3,4,5\\n' > \"$SLUICE_OUTPUT\""]
output = "out/ragged.csv"

[steps.not_found]
command = ["no-such-program-for-sluice", "--flag"]

[steps.try_later]
command = ["sh", "-c", "echo 'the API is rate limited' >&2; exit 75"]
output = "out/later.parquet"

[tables.downstream]
sql = "SELECT * FROM bad_exit"
"#;

#[test]
fn a_failing_command_a_missing_output_and_a_malformed_one_publish_nothing() {
    let dir = project(&[("sluice.toml", FAILING.as_bytes())]);
    let p = dir.path();
    // Yesterday's file must not be committed as today's output.
    std::fs::create_dir_all(p.join("out")).expect("mkdir");
    std::fs::write(p.join("out/no_output.csv"), "a\n1\n").expect("write");

    let (ok_, summary) = run_json(p, &[]);
    assert!(!ok_, "{summary}");
    let error = |name: &str| {
        let a = asset(&summary, name);
        assert_eq!(a["status"], "failed", "{a}");
        assert!(a["version"].is_null(), "nothing is published: {a}");
        a["error"].as_str().unwrap_or_default().to_string()
    };

    let e = error("bad_exit");
    assert!(
        e.starts_with("step `bad_exit`: the command exited with status 3"),
        "{e}"
    );
    assert!(e.contains("oops: the model file is corrupt"), "{e}");
    assert!(!e.contains("working"), "stdout is not stderr: {e}");
    assert_eq!(asset(&summary, "downstream")["status"], "blocked");

    let e = error("no_output");
    assert!(e.contains("step `no_output`"), "{e}");
    assert!(e.contains("exited with status 0"), "{e}");
    assert!(e.contains("wrote no file at"), "{e}");
    assert!(e.contains("out/no_output.csv"), "{e}");
    assert!(e.contains("SLUICE_OUTPUT"), "{e}");
    assert!(e.contains("nothing to write today"), "{e}");
    assert!(
        !p.join("out/no_output.csv").exists(),
        "the stale file is gone"
    );

    let e = error("junk_parquet");
    assert!(e.contains("step `junk_parquet`"), "{e}");
    assert!(e.contains("exited with status 0"), "{e}");
    assert!(e.contains("junk.parquet"), "{e}");
    assert!(e.contains("wrote it"), "{e}");

    let e = error("ragged_csv");
    assert!(e.contains("step `ragged_csv`"), "{e}");
    assert!(e.contains("ragged.csv:3"), "the file and line: {e}");

    let e = error("not_found");
    assert!(
        e.starts_with("step `not_found`: cannot start `no-such-program-for-sluice`"),
        "{e}"
    );

    let e = error("try_later");
    assert!(e.contains("exited with status 75"), "{e}");
    assert!(e.contains("EX_TEMPFAIL"), "{e}");
    assert!(e.contains("the API is rate limited"), "{e}");

    // Nothing failed left a table behind.
    for name in ["bad_exit", "no_output", "junk_parquet", "ragged_csv"] {
        assert!(
            !p.join(".sluice/tables")
                .join(name)
                .join("_delta_log")
                .exists(),
            "{name} published a table"
        );
    }
}

/// The secret; the project file only matches it by a pattern, so that the
/// value itself is written nowhere but in sluice's environment.
const SECRET: &str = "s3cr3t-Value-42";

const SECRETS: &str = r#"
[project]
name = "secrets"

[steps.seen]
command = ["sh", "-c", "echo \"token is $TOKEN\"; echo \"stderr has $TOKEN too\" >&2; case \"$TOKEN\" in s3cr3t-*-42) v=true ;; *) v=false ;; esac; printf 'seen\\n%s\\n' \"$v\" > \"$SLUICE_OUTPUT\""]
output = "out/seen.csv"
env = { TOKEN = "${SLUICE_TEST_STEP_TOKEN}" }

[steps.notify]
command = ["sh", "-c", "echo notified"]
inputs = ["seen"]

[steps.leaky]
command = ["sh", "-c", "echo \"failing with $TOKEN\" >&2; exit 1"]
env = { TOKEN = "${SLUICE_TEST_STEP_TOKEN}" }
"#;

fn files_containing(dir: &Path, needle: &[u8], found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_containing(&path, needle, found);
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        {
            found.push(path.display().to_string());
        }
    }
}

#[test]
fn a_secret_reaches_the_command_and_nothing_else() {
    let dir = project(&[("sluice.toml", SECRETS.as_bytes())]);
    let p = dir.path();
    let run = |args: &[&str]| {
        sluice_cmd(p)
            .args(args)
            .env("SLUICE_TEST_STEP_TOKEN", SECRET)
            .output()
            .expect("runs")
    };
    let o = run(&["run", "--json"]);
    let (out, err) = (stdout(&o), stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(asset(&summary, "seen")["status"], "built", "{summary}");
    assert_eq!(asset(&summary, "notify")["status"], "built", "{summary}");
    let leaky = asset(&summary, "leaky");
    assert_eq!(leaky["status"], "failed", "{summary}");
    assert!(
        leaky["error"]
            .as_str()
            .unwrap_or_default()
            .contains("failing with ***"),
        "{leaky}"
    );
    assert!(
        !out.contains(SECRET) && !err.contains(SECRET),
        "{out}\n{err}"
    );
    let seen = run(&["query", "--format", "csv", "SELECT seen FROM seen"]);
    assert_eq!(stdout(&seen), "seen\ntrue\n", "the step saw the value");

    let log = std::fs::read_to_string(p.join(".sluice/logs/seen/run-1.log")).expect("log");
    assert!(log.contains("token is ***"), "{log}");
    assert!(log.contains("stderr has *** too"), "{log}");
    // The run log keeps the step's lines masked too.
    let shown = run(&["runs", "show", "1", "--asset", "seen"]);
    let shown = stdout(&shown);
    assert!(shown.contains("token is *** stream=stdout"), "{shown}");
    assert!(
        shown.contains("stderr has *** too stream=stderr"),
        "{shown}"
    );
    let mut found = Vec::new();
    files_containing(&p.join(".sluice"), SECRET.as_bytes(), &mut found);
    assert!(found.is_empty(), "the secret is stored in {found:?}");

    // A step without output is up to date like any asset.
    let o = run(&["run", "--json", "notify"]);
    let again: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(asset(&again, "notify")["status"], "up_to_date", "{again}");

    // Without the variable the step says which one is missing, not a value.
    let o = sluice(p, &["run", "--json", "leaky"]);
    let text = stdout(&o);
    assert!(
        text.contains("reads the environment variable `SLUICE_TEST_STEP_TOKEN`, which is not set"),
        "{text}"
    );
}

/// Steps without `output` chain by order only: each runs after the one it
/// names, gets no file of it, and runs again when that one ran again.
#[test]
fn steps_without_output_chain_by_order_only() {
    let dir = project(&[
        (
            "sluice.toml",
            br#"
[project]
name = "order"

[steps.first]
command = ["sh", "-c", "echo first >> order.txt"]
files = ["stamp.txt"]

[steps.second]
command = ["sh", "-c", "test -z \"$SLUICE_INPUT_FIRST\" && echo second >> order.txt"]
inputs = ["first"]

[steps.third]
command = ["sh", "-c", "echo third >> order.txt"]
inputs = ["second"]
"#,
        ),
        ("stamp.txt", b"1\n"),
    ]);
    let p = dir.path();
    let order = |p: &Path| std::fs::read_to_string(p.join("order.txt")).unwrap_or_default();

    let (ok_, summary) = run_json(p, &[]);
    assert!(ok_, "{summary}");
    assert_eq!(order(p), "first\nsecond\nthird\n");

    let (_, again) = run_json(p, &[]);
    assert_eq!(
        statuses(&again),
        vec![
            ("first".to_string(), "up_to_date".to_string()),
            ("second".to_string(), "up_to_date".to_string()),
            ("third".to_string(), "up_to_date".to_string()),
        ]
    );
    assert_eq!(order(p), "first\nsecond\nthird\n", "nothing ran again");

    // The first step's file changes: it runs again, and so does everything after it.
    std::fs::write(p.join("stamp.txt"), b"2\n").expect("write");
    let (ok_, changed) = run_json(p, &[]);
    assert!(ok_, "{changed}");
    assert_eq!(order(p), "first\nsecond\nthird\nfirst\nsecond\nthird\n");
}
