//! `[steps.NAME]`: a command over its inputs. What loading checks — the
//! command, `files` globs, the output path and format, the inputs — is
//! reported at its place, every mistake at once.

use sluice_project::{Definition, FileFormat, load};

use crate::write;

#[test]
fn a_step_compiles_with_its_inputs_output_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "sluice.toml",
                r#"[project]
name = "p"

[sources.events]
path = "events.csv"

[steps.scored]
command = ["python3", "steps/score.py"]
inputs = ["events"]
output = "out/scored.csv"
files = ["steps/*.py"]
env = { TOKEN = "${SOME_TOKEN}" }

[tables.top]
sql = "SELECT * FROM scored"
"#,
            ),
            ("events.csv", "x\n1\n"),
            ("steps/score.py", "print(1)\n"),
        ],
    );
    let project = load(dir.path(), None).expect("loads");
    let scored = project.asset("scored").expect("the step");
    assert_eq!(scored.kind().as_str(), "step");
    assert!(scored.is_table());
    assert_eq!(
        scored.inputs.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        ["events"]
    );
    let Definition::Step(def) = &scored.definition else {
        panic!("not a step");
    };
    let output = def.output.as_ref().expect("an output");
    assert_eq!(output.format, FileFormat::Csv);
    assert_eq!(output.path, dir.path().join("out/scored.csv"));
    assert_eq!(
        def.file_list().expect("files"),
        vec![dir.path().join("steps/score.py")]
    );
    // The secret is kept as written, and hashed as written.
    assert_eq!(def.env["TOKEN"].to_string(), "${SOME_TOKEN}");
    let top = project.asset("top").expect("the table");
    assert_eq!(top.inputs[0].as_str(), "scored");
}

#[test]
fn step_mistakes_are_reported_at_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "sluice.toml",
                r#"[project]
name = "p"

[sources.events]
path = "events.csv"

[steps.a]
command = []
inputs = ["evnets"]

[steps.b]
command = ["sh", "b.sh"]
files = ["steps/*.R"]
output = "../elsewhere.parquet"

[steps.c]
command = ["sh", "c.sh"]
output = "out/c.json"

[steps.d]
command = ["sh", "d.sh"]

[steps.d.contract.columns.x]
min = 0

[steps.e]
command = ["sh", "e.sh"]
comand = "typo"

[tables.t]
sql = "SELECT * FROM d"
"#,
            ),
            ("events.csv", "x\n1\n"),
        ],
    );
    let diags = load(dir.path(), None).expect_err("errors").to_string();
    for expected in [
        "sluice.toml:8:11: error: the step's `command` is empty",
        "sluice.toml:9:11: error: unknown asset `evnets` in step `a`",
        "did you mean `events`?",
        "sluice.toml:13:10: error: `files`: no file matches `steps/*.R`",
        "`output = \"../elsewhere.parquet\"` is not a file path inside the project",
        "cannot tell the format of `out/c.json`",
        "step `d` has a contract but no `output` for it to check",
        "unknown field `comand`",
        "`d` is a step without `output`, not a table",
    ] {
        assert!(
            diags.contains(expected),
            "missing {expected:?} in:\n{diags}"
        );
    }
}
