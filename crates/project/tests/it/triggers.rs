//! Triggers: `on = "upstream"` and `freshness = { max_age = ... }` beside any
//! asset's keys (a model's predictions' in their own section), refused in
//! `[project]`, out of every fingerprint, and their mistakes reported where
//! they are written.

use std::time::Duration;

use sluice_project::{OnWord, Project, RunPolicy, load};

use crate::write;

/// Every kind of asset, each with `triggers` among its keys.
pub(crate) fn every_kind(triggers: &str) -> String {
    format!(
        r#"[project]
name = "p"
trigger_interval = "5s"

[sources.events]
path = "events.csv"
{triggers}

[tables.spine]
sql = "SELECT * FROM events"
{triggers}

[features.user]
source = "events"
entity = "user_id"
timestamp = "t"
{triggers}

[features.user.aggregates]
n_7d = {{ agg = "count", window = "7d" }}

[exports.out]
from = "spine"
path = "out/spine.json"
{triggers}

[models.churn]
spine = "spine"
label = "churned"
columns = ["plan"]
features = ["user"]
{triggers}

[models.churn.predictions]
spine = "spine"
entity = "user_id"
{triggers}

[steps.script]
command = ["python3", "s.py"]
inputs = ["events"]
{triggers}
"#
    )
}

pub(crate) const FILES: [(&str, &str); 2] = [
    (
        "events.csv",
        "user_id,t,plan,churned\nu1,2026-01-01T00:00:00Z,a,0\n",
    ),
    ("s.py", "print(1)\n"),
];

fn policy_of(p: &Project, name: &str) -> RunPolicy {
    p.asset(name).expect("asset").policy.clone()
}

pub(crate) const KINDS: [&str; 7] = [
    "events",
    "spine",
    "user",
    "out",
    "churn",
    "churn_predictions",
    "script",
];

#[test]
fn every_kind_of_asset_takes_the_trigger_keys_and_no_fingerprint_holds_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = every_kind("on = \"upstream\"\nfreshness = { max_age = \"90m\" }");
    write(dir.path(), &[("sluice.toml", &text), FILES[0], FILES[1]]);
    let with = load(dir.path(), None).expect("loads");
    assert_eq!(with.trigger_interval, Duration::from_secs(5));
    for name in KINDS {
        let p = policy_of(&with, name);
        assert_eq!(p.on, Some(OnWord::Upstream), "{name}");
        assert_eq!(p.max_age, Some(Duration::from_secs(90 * 60)), "{name}");
        assert!(p.has_trigger());
    }

    let plain = every_kind("").replace("trigger_interval = \"5s\"\n", "");
    write(dir.path(), &[("sluice.toml", &plain)]);
    let without = load(dir.path(), None).expect("loads");
    assert_eq!(
        without.trigger_interval,
        sluice_project::DEFAULT_TRIGGER_INTERVAL
    );
    for name in KINDS {
        assert!(!policy_of(&without, name).has_trigger(), "{name}");
        assert_eq!(
            with.asset(name).expect("asset").fingerprint,
            without.asset(name).expect("asset").fingerprint,
            "a trigger does not change what `{name}` holds"
        );
    }
}

#[test]
fn the_contracts_freshness_and_the_triggers_are_distinct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[project]\nname = \"p\"\n\n\
        [sources.events]\npath = \"events.csv\"\nfreshness = { max_age = \"1h\" }\n\n\
        [[sources.events.contract.expect]]\ncolumn = \"t\"\nfreshness = { max_age = \"2d\" }\n";
    write(dir.path(), &[("sluice.toml", text), FILES[0]]);
    let p = load(dir.path(), None).expect("loads");
    let events = p.asset("events").expect("asset");
    assert_eq!(events.policy.max_age, Some(Duration::from_secs(3600)));
    assert_eq!(events.contract.expectations.len(), 1);
}

#[test]
fn trigger_mistakes_are_reported_where_they_are_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[project]\nname = \"p\"\non = \"upstream\"\nfreshness = { max_age = \"1h\" }\n\
        trigger_interval = \"0s\"\n\n\
        [sources.events]\npath = \"events.csv\"\non = \"downstream\"\n\n\
        [tables.a]\nsql = \"SELECT * FROM events\"\nfreshness = { max_age = \"soon\" }\n\n\
        [tables.b]\nsql = \"SELECT * FROM events\"\nfreshness = { max_age = \"1h\", min_age = \"1m\" }\n\n\
        [tables.c]\nsql = \"SELECT * FROM events\"\nfreshness = { max_age = \"0s\" }\n";
    write(dir.path(), &[("sluice.toml", text), FILES[0]]);
    let e = load(dir.path(), None).expect_err("mistakes").to_string();
    for (said, line) in [
        ("`on` is set per asset, not in `[project]`", 3),
        ("`freshness` is set per asset, not in `[project]`", 4),
        ("a `trigger_interval` of zero", 5),
        ("unknown variant `downstream`, expected `upstream`", 9),
        ("soon", 13),
        ("unknown field `min_age`", 17),
        ("a freshness `max_age` of zero", 21),
    ] {
        let at = format!("sluice.toml:{line}:");
        assert!(
            e.lines().any(|l| l.contains(said) && l.contains(&at)),
            "`{said}` at line {line} in:\n{e}"
        );
    }
    assert!(
        e.contains("write `on = \"upstream\"` in the entries"),
        "{e}"
    );
}
