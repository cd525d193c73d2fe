//! Tests of `[models.NAME]` compiled: times, learners and their params, the
//! section's fingerprint text, and when labels become known.

use super::*;
use crate::raw::ModelSection;

#[test]
fn times_are_dates_or_rfc3339() {
    assert_eq!(parse_time("1970-01-02"), Some(86_400_000_000));
    assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000_000));
    assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
    assert_eq!(parse_time("yesterday"), None);
}

/// Loads a project of one source (`events.csv`: x, y, t) and `models`.
fn load_models(models: &str) -> Result<crate::Project, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let text =
        format!("[project]\nname = \"p\"\n\n[sources.events]\npath = \"events.csv\"\n\n{models}");
    std::fs::write(dir.path().join("sluice.toml"), text).expect("write");
    std::fs::write(
        dir.path().join("events.csv"),
        "x,y,t,known\n1,0,2026-01-01,2026-02-01\n",
    )
    .expect("write");
    crate::load(dir.path(), None).map_err(|d| d.to_string())
}

fn model(p: &crate::Project, name: &str) -> ModelDef {
    match &p.asset(name).expect("model").definition {
        crate::Definition::Model(m) => (**m).clone(),
        _ => panic!("{name} is not a model"),
    }
}

#[test]
fn a_misspelt_param_is_named_where_it_is_written_with_the_valid_names() {
    let errors = load_models(
        "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\n\
         params = { iterations = 5, learnig_rate = 0.2 }\n\n\
         [models.b]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\n\
         learner = \"logistic\"\nparams = { alpha = \"high\" }\n",
    )
    .expect_err("errors");
    // Line 11 is `params = ...` of `a`; the misspelt name starts at column 28.
    assert!(
        errors.contains(
            "sluice.toml:11:28: error: params of learner `gbdt`: unknown field `learnig_rate`, expected one of `iterations`, `learning_rate`"
        ),
        "{errors}"
    );
    assert!(
        errors.contains("sluice.toml:18:12: error: params of learner `logistic`: `alpha`:"),
        "{errors}"
    );
}

#[test]
fn params_are_read_by_the_learner_named_after_them() {
    let p = load_models(
        "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\n\
         [models.a.params]\nalpha = 0.25\n\n\
         [models.b]\nparams = { alpha = 0.5 }\nspine = \"events\"\nlabel = \"y\"\n\
         columns = [\"x\"]\nlearner = \"logistic\"\n",
    );
    // `a` is gbdt (the default), which has no `alpha`.
    let errors = p.expect_err("gbdt has no alpha");
    assert!(
        errors.contains("learner `gbdt`: unknown field `alpha`"),
        "{errors}"
    );
    let p = load_models(
        "[models.b]\nparams = { alpha = 0.5 }\nspine = \"events\"\nlabel = \"y\"\n\
         columns = [\"x\"]\nlearner = \"logistic\"\n",
    )
    .expect("loads");
    assert_eq!(
        model(&p, "b").learner,
        Learner::Logistic(LogisticParams {
            alpha: 0.5,
            ..LogisticParams::default()
        })
    );
}

#[test]
fn task_and_learner_are_closed_words_reported_at_their_place() {
    let errors = load_models(
        "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlearner = \"forest\"\n\n\
         [models.b]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\ntask = \"classify\"\n",
    )
    .expect_err("errors");
    assert!(
        errors.contains("sluice.toml:11:11: error: unknown learner `forest`, expected one of `gbdt`, `logistic`, `linear`"),
        "{errors}"
    );
    assert!(
        errors.contains("sluice.toml:17:8: error: unknown task `classify`, expected one of `binary`, `regression`"),
        "{errors}"
    );
}

/// A model's fingerprint hashes its section as JSON: `params` must come
/// out as the table that was written (order and number types included),
/// or every model would retrain after an upgrade.
#[test]
fn params_serialize_as_the_table_written() {
    let text = "spine = \"s\"\nlabel = \"y\"\ntask = \"binary\"\nlearner = \"gbdt\"\n\
                params = { iterations = 40, max_leaves = 15, learning_rate = 0.1, l2 = 1 }\n";
    let section: ModelSection = toml::from_str(text).expect("section");
    let table: toml::Table = toml::from_str(text).expect("table");
    assert_eq!(
        serde_json::to_string(&section.params).expect("text"),
        serde_json::to_string(&table["params"]).expect("text")
    );
    assert_eq!(
        serde_json::to_string(&section.params).expect("text"),
        r#"{"iterations":40,"max_leaves":15,"learning_rate":0.1,"l2":1}"#
    );
    let json = serde_json::to_value(&section).expect("json");
    assert_eq!(json["task"], "binary");
    assert_eq!(json["learner"], "gbdt");
    assert!(json.get("label_delay").is_none(), "{json}");
}

#[test]
fn label_delay_or_label_available_say_when_labels_are_known() {
    let p = load_models(
        "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlabel_delay = \"90d\"\n\n\
         [models.b]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlabel_available = \"known\"\n\n\
         [models.c]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\n",
    )
    .expect("loads");
    assert_eq!(
        model(&p, "a").label_horizon,
        Some(LabelHorizon::Delay(90 * 86_400 * 1_000_000))
    );
    assert_eq!(
        model(&p, "b").label_horizon,
        Some(LabelHorizon::Column("known".into()))
    );
    assert_eq!(model(&p, "c").label_horizon, None);
    let errors = load_models(
        "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlabel_delay = \"a season\"\n\n\
         [models.b]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlabel_delay = \"1d\"\nlabel_available = \"known\"\n\n\
         [models.c]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\", \"known\"]\nlabel_available = \"known\"\n",
    )
    .expect_err("errors");
    for expected in [
        "sluice.toml:11:15: error: label_delay: `a season` is not a duration",
        "sluice.toml:17:15: error: write one of `label_delay` and `label_available`, not both",
        "`known` is both `label_available` and a feature column",
    ] {
        assert!(
            errors.contains(expected),
            "missing {expected:?} in:\n{errors}"
        );
    }
}

#[test]
fn default_gbdt_params_follow_lightgbm() {
    let p: GbdtParams = toml::Value::Table(toml::Table::new())
        .try_into()
        .expect("empty table");
    assert_eq!(p, GbdtParams::default());
    assert_eq!((p.iterations, p.max_leaves), (100, 31));
    let bad = toml::Value::Table(toml::from_str("iteratons = 3").expect("toml"))
        .try_into::<GbdtParams>()
        .expect_err("typo");
    assert!(bad.to_string().contains("iteratons"), "{bad}");
}
