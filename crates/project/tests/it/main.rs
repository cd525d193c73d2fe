//! The project model: loading, compiling, the DAG and its errors.

use std::path::Path;

use sluice_project::{Definition, load};

mod mistakes;
mod network;
mod policy;
mod profiles;
mod source_options;
mod steps;
mod tags;
mod triggers;

pub(crate) fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

#[test]
fn references_make_the_dag_and_closure_follows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "sluice.toml",
                "[project]\nname = \"p\"\nconcurrency = 3\n\n[sources.raw]\npath = \"raw.csv\"\n\n\
                 [tables.clean]\nsql = \"SELECT * FROM raw\"\n\n[tables.report]\nfile = \"sql/report.sql\"\n\n\
                 [tables.other]\nsql = \"WITH raw AS (SELECT 1 AS x) SELECT * FROM raw\"\n",
            ),
            ("raw.csv", "a\n1\n"),
            (
                "sql/report.sql",
                "SELECT c.* FROM clean c JOIN raw r ON true",
            ),
        ],
    );
    let p = load(dir.path(), None).expect("loads");
    assert_eq!(p.concurrency, 3);
    assert_eq!(p.warehouse, dir.path().join(".sluice"));
    let order: Vec<_> = p.order.iter().map(|n| n.as_str()).collect();
    let pos = |n: &str| order.iter().position(|x| *x == n).expect("present");
    assert!(pos("raw") < pos("clean") && pos("clean") < pos("report"));
    let inputs = |n: &str| -> Vec<String> {
        p.assets
            .values()
            .find(|a| a.name.as_str() == n)
            .expect("asset")
            .inputs
            .iter()
            .map(|i| i.to_string())
            .collect()
    };
    assert_eq!(inputs("report"), ["clean", "raw"]);
    assert!(
        inputs("other").is_empty(),
        "a CTE named like an asset is not a reference"
    );
    let closure: Vec<_> = p
        .closure(&["clean".into()])
        .expect("known")
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(closure, ["raw", "clean"]);
    assert_eq!(p.closure(&["nope".into()]).expect_err("unknown"), ["nope"]);
    let report = p
        .assets
        .values()
        .find(|a| a.name.as_str() == "report")
        .expect("report");
    let Definition::Table(def) = &report.definition else {
        panic!("a table")
    };
    assert_eq!(def.origin.file, dir.path().join("sql/report.sql"));
}

#[test]
fn fingerprints_change_with_definitions_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = |sql: &str| {
        format!(
            "[project]\nname = \"p\"\n\n[sources.raw]\npath = \"raw.csv\"\n\n[tables.t]\nsql = \"{sql}\"\n"
        )
    };
    write(
        dir.path(),
        &[
            ("sluice.toml", &toml("SELECT a FROM raw")),
            ("raw.csv", "a\n1\n"),
        ],
    );
    let fp = |p: &sluice_project::Project, n: &str| {
        p.assets
            .values()
            .find(|a| a.name.as_str() == n)
            .expect("asset")
            .fingerprint
            .clone()
    };
    let before = load(dir.path(), None).expect("loads");
    write(
        dir.path(),
        &[("sluice.toml", &toml("SELECT a + 1 AS a FROM raw"))],
    );
    let after = load(dir.path(), None).expect("loads");
    assert_ne!(fp(&before, "t"), fp(&after, "t"));
    assert_eq!(fp(&before, "raw"), fp(&after, "raw"));
}

#[test]
fn profiles_choose_settings_and_expand_environment_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "sluice.toml",
            "[project]\nname = \"p\"\ndefault_profile = \"dev\"\n\n[profiles.dev]\nwarehouse = \"wh-dev\"\n\n\
                 [profiles.prod]\nwarehouse = \"${SLUICE_TEST_PROJECT_WH}/prod\"\nconcurrency = 1\n",
        )],
    );
    let dev = load(dir.path(), None).expect("loads");
    assert_eq!(dev.profile.as_deref(), Some("dev"));
    assert_eq!(dev.warehouse, dir.path().join("wh-dev"));
    let err = load(dir.path(), Some("prod")).expect_err("variable unset");
    assert!(
        err.to_string().contains(
            "sluice.toml:9:13: error: environment variable `SLUICE_TEST_PROJECT_WH` is not set"
        ),
        "{err}"
    );
    // SAFETY-free: tests in this binary do not read this variable concurrently.
    // (std::env::set_var is unsafe in edition 2024, so the expansion is tested via expand_env.)
    assert_eq!(
        sluice_core::expand_env("${PATH}/x").expect("PATH is set"),
        format!("{}/x", std::env::var("PATH").expect("PATH"))
    );
    assert_eq!(sluice_core::expand_env("plain").expect("plain"), "plain");
}

#[test]
fn names_must_be_sql_identifiers_and_unique_across_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "sluice.toml",
                "[project]\nname = \"p\"\n\n[sources.Raw]\npath = \"raw.csv\"\n\n[sources.x]\npath = \"raw.csv\"\n\n\
                 [tables.x]\nsql = \"SELECT 1 AS one\"\n\n[tables.t]\nsql = \"SELECT 1; SELECT 2\"\n\n[tables.u]\n",
            ),
            ("raw.csv", "a\n1\n"),
        ],
    );
    let err = load(dir.path(), None).expect_err("broken").to_string();
    assert!(
        err.contains("sluice.toml:4:10: error: `Raw` is not a valid asset name"),
        "{err}"
    );
    assert!(
        err.contains("`x` is defined both as a source and as a table"),
        "{err}"
    );
    assert!(err.contains("found more than one statement"), "{err}");
    assert!(err.contains("a table needs its query"), "{err}");
    assert!(err.contains("4 errors"), "{err}");
}

#[test]
fn models_compile_into_the_dag_with_their_predictions() {
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

[tables.spine]
sql = "SELECT * FROM events"

[features.user]
source = "events"
entity = "user_id"
timestamp = "t"

[features.user.aggregates]
n_7d = { agg = "count", window = "7d" }

[models.churn]
spine = "spine"
label = "churned"
columns = ["plan"]
features = ["user", "user:n_7d"]
params = { iterations = 20, learning_rate = 0.2 }
split = { last = "25%" }
promote = { auc = { min = 0.6 }, log_loss = { max = 0.7 } }

[models.churn.predictions]
spine = "spine"
entity = "user_id"
"#,
            ),
            (
                "events.csv",
                "user_id,t,plan,churned\nu1,2026-01-01T00:00:00Z,a,0\n",
            ),
        ],
    );
    let p = load(dir.path(), None).expect("loads");
    let asset = |n: &str| {
        p.assets
            .values()
            .find(|a| a.name.as_str() == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let inputs =
        |n: &str| -> Vec<String> { asset(n).inputs.iter().map(|i| i.to_string()).collect() };
    assert_eq!(inputs("churn"), ["spine", "user"]);
    assert_eq!(inputs("churn_predictions"), ["churn", "spine", "user"]);
    let Definition::Model(m) = &asset("churn").definition else {
        panic!("a model")
    };
    assert_eq!(m.views(), ["user"]);
    assert_eq!(m.split, sluice_project::Split::Last(0.25));
    assert_eq!(m.promote.len(), 2);
    let sluice_project::Learner::Gbdt(g) = &m.learner else {
        panic!("gbdt by default")
    };
    assert_eq!((g.iterations, g.max_leaves), (20, 31));
    assert_eq!(m.predictions.as_deref(), Some("churn_predictions"));
    let order: Vec<_> = p.order.iter().map(|n| n.as_str()).collect();
    let pos = |n: &str| order.iter().position(|x| *x == n).expect("present");
    assert!(pos("user") < pos("churn") && pos("churn") < pos("churn_predictions"));
}

#[test]
fn model_mistakes_are_reported_at_their_place() {
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

[models.a]
spine = "events"
label = "y"
columns = ["x"]
learner = "forest"

[models.b]
spine = "events"
label = "y"
columns = ["x"]
params = { iteratons = 5 }

[models.c]
spine = "events"
label = "y"
columns = ["x"]
split = { before = "soon" }
promote = { rmse = { max = 1 } }

[models.d]
label = "y"
features = ["nope"]

[models.e]
spine = "events"
task = "regression"
label = "y"
columns = ["y"]
learner = "logistic"

[models.f]
onnx = "missing.onnx"
"#,
            ),
            ("events.csv", "x,y\n1,0\n"),
        ],
    );
    let diags = load(dir.path(), None).expect_err("errors").to_string();
    for expected in [
        "sluice.toml:11:11: error: unknown learner `forest`",
        "params of learner `gbdt`: unknown field `iteratons`",
        "split: `soon` is not a time",
        "`rmse` is not a metric of a binary model",
        "model `d` needs a spine to train on",
        "learner `logistic` does not fit a regression task",
        "the label `y` is also a feature column",
        "no file `missing.onnx`",
    ] {
        assert!(
            diags.contains(expected),
            "missing {expected:?} in:\n{diags}"
        );
    }
}

/// A misspelt key in a feature view that a model and an export read was a panic
/// (`no entry found for key` in dag.rs): the view is reported, nothing panics.
#[test]
fn typo_in_a_view_with_dependents_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "sluice.toml",
                "[project]\nname = \"p\"\n\n[sources.events]\npath = \"events.csv\"\n\n\
                 [features.per_user]\nsource = \"events\"\nentitiy = \"user\"\ntimestamp = \"ts\"\n\n\
                 [features.per_user.aggregates]\nn = { agg = \"count\", window = \"7d\" }\n\n\
                 [models.m]\nspine = \"events\"\ntimestamp = \"ts\"\nlabel = \"y\"\nfeatures = [\"per_user\"]\n\n\
                 [exports.e]\nfrom = \"per_user\"\npath = \"out.json\"\n",
            ),
            ("events.csv", "user,ts,y\na,2024-01-01T00:00:00Z,1\n"),
        ],
    );
    let diags = load(dir.path(), None).expect_err("the typo is an error");
    let text = diags.to_string();
    assert!(text.contains("entitiy"), "{text}");
}
