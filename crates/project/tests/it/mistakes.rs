//! Issue 15, item 1: a misspelt key, a bad value and a missing reference, in
//! every kind of section, alone and with dependents, are each reported — all
//! at once, at their own line — and nothing panics.

use sluice_project::load;

use crate::write;

/// A project in which every kind of section is read by another: a source, a
/// table over it, a feature view over the table, a model and an export over
/// the view.
const WITH_DEPENDENTS: &str = r#"[project]
name = "p"

[profiles.dev]
concurrency = 1

[sources.events]
path = "events.csv"

[tables.clean]
sql = "SELECT * FROM events"

[features.per_user]
source = "clean"
entity = "user"
timestamp = "ts"

[features.per_user.aggregates]
n_7d = { agg = "count", window = "7d" }
total = { agg = "sum", column = "amount", window = "30d" }

[models.m]
spine = "clean"
timestamp = "ts"
label = "y"
features = ["per_user"]

[exports.e]
from = "per_user"
path = "out.json"
"#;

const EVENTS: &str =
    "user,ts,amount,y\na,2024-01-01T00:00:00Z,3.5,1\nb,2024-01-02T00:00:00Z,1.25,0\n";

/// The same project with nothing downstream of `keep`'s section: the
/// sections of the kinds after it are dropped.
fn alone(keep: &str) -> String {
    let order = [
        "[sources.",
        "[tables.",
        "[features.",
        "[models.",
        "[exports.",
    ];
    order
        .iter()
        .position(|s| keep.starts_with(s))
        .and_then(|i| order.get(i + 1))
        .and_then(|next| WITH_DEPENDENTS.find(next))
        .map_or_else(
            || WITH_DEPENDENTS.to_string(),
            |i| WITH_DEPENDENTS[..i].to_string(),
        )
}

/// Loads `text` and returns the report, which must be an error.
fn report(text: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &[("sluice.toml", text), ("events.csv", EVENTS)]);
    match load(dir.path(), None) {
        Ok(_) => panic!("the mistakes were not reported:\n{text}"),
        Err(d) => d.to_string(),
    }
}

/// Each `(needle, message)`: the report holds `message` at the line of the
/// project file where `needle` is written.
fn assert_reported(text: &str, report: &str, expected: &[(&str, &str)]) {
    for (needle, message) in expected {
        let offset = text
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` is in the file"));
        let line = text[..offset].matches('\n').count() + 1;
        let at = format!("sluice.toml:{line}:");
        assert!(
            report
                .lines()
                .any(|l| l.contains(&at) && l.contains(message)),
            "expected `{message}` at line {line} in:\n{report}\n--- file:\n{text}"
        );
    }
}

/// One kind of section: how to make each mistake in it, and what is reported.
struct Case {
    section: &'static str,
    /// (text to replace, replacement, needle to locate the report, message).
    mistakes: [(&'static str, &'static str, &'static str, &'static str); 3],
}

const CASES: &[Case] = &[
    Case {
        section: "[sources.events]",
        mistakes: [
            (
                "path = \"events.csv\"",
                "path = \"events.csv\"\ndelimter = \";\"",
                "delimter",
                "unknown field `delimter`",
            ),
            (
                "[sources.events]\n",
                "[sources.events]\nheader = \"yes\"\n",
                "\"yes\"",
                "invalid type: string \"yes\", expected a boolean",
            ),
            (
                "\"events.csv\"",
                "\"missing.csv\"",
                "missing.csv",
                "no file matches `missing.csv`",
            ),
        ],
    },
    Case {
        section: "[tables.clean]",
        mistakes: [
            (
                "sql = \"SELECT * FROM events\"",
                "sql = \"SELECT * FROM events\"\ndescripton = \"x\"",
                "descripton",
                "unknown field `descripton`",
            ),
            (
                "[tables.clean]\n",
                "[tables.clean]\ndescription = 5\n",
                "description = 5",
                "invalid type: integer `5`, expected a string",
            ),
            (
                "FROM events\"",
                "FROM evnts\"",
                "evnts",
                "unknown asset `evnts`",
            ),
        ],
    },
    Case {
        section: "[features.per_user]",
        mistakes: [
            (
                "entity = \"user\"",
                "entitiy = \"user\"",
                "entitiy",
                "unknown field `entitiy`",
            ),
            (
                "agg = \"sum\"",
                "agg = \"total\"",
                "\"total\"",
                "unknown variant `total`",
            ),
            (
                "window = \"30d\"",
                "window = \"ninety days\"",
                "\"ninety days\"",
                "`ninety days` is not a duration",
            ),
        ],
    },
    Case {
        section: "[models.m]",
        mistakes: [
            (
                "label = \"y\"",
                "label = \"y\"\nlable = \"z\"",
                "lable",
                "unknown field `lable`",
            ),
            (
                "label = \"y\"",
                "label = \"y\"\nthreshold = \"high\"",
                "\"high\"",
                "invalid type: string \"high\"",
            ),
            (
                "features = [\"per_user\"]",
                "features = [\"per_usr\"]",
                "per_usr",
                "per_usr",
            ),
        ],
    },
    Case {
        section: "[exports.e]",
        mistakes: [
            (
                "path = \"out.json\"",
                "path = \"out.json\"\nfromm = \"clean\"",
                "fromm",
                "unknown field `fromm`",
            ),
            (
                "path = \"out.json\"",
                "path = \"out.json\"\nformat = \"xlsx\"",
                "\"xlsx\"",
                "unknown export format `xlsx`",
            ),
            ("from = \"per_user\"", "from = \"nope\"", "\"nope\"", "nope"),
        ],
    },
    Case {
        section: "[project]",
        mistakes: [
            (
                "name = \"p\"",
                "name = \"p\"\nconcurency = 2",
                "concurency",
                "unknown field `concurency`",
            ),
            (
                "name = \"p\"",
                "name = \"p\"\nconcurrency = \"two\"",
                "\"two\"",
                "invalid type: string \"two\"",
            ),
            (
                "name = \"p\"",
                "name = \"p\"\ndefault_profile = \"staging\"",
                "\"staging\"",
                "unknown profile `staging`",
            ),
        ],
    },
    Case {
        section: "[profiles.dev]",
        mistakes: [
            (
                "concurrency = 1",
                "concurency = 1",
                "concurency",
                "unknown field `concurency`",
            ),
            (
                "[profiles.dev]\n",
                "[profiles.dev]\nwarehouse = 3\n",
                "warehouse = 3",
                "invalid type: integer `3`, expected a string",
            ),
            (
                "[sources.events]",
                "[profiles.dev.sources.evnts]\npath = \"x.csv\"\n\n[sources.events]",
                "evnts]",
                "overrides source `evnts`, which is not defined",
            ),
        ],
    },
];

fn apply(text: &str, mistakes: &[(&str, &str, &str, &str)]) -> String {
    let mut text = text.to_string();
    for (from, to, _, _) in mistakes {
        assert!(text.contains(from), "`{from}` is in:\n{text}");
        text = text.replacen(from, to, 1);
    }
    text
}

#[test]
fn every_mistake_in_every_kind_of_section_is_reported_at_its_line() {
    for case in CASES {
        for base in [WITH_DEPENDENTS.to_string(), alone(case.section)] {
            // Each mistake alone...
            for m in &case.mistakes {
                let text = apply(&base, std::slice::from_ref(m));
                let found = report(&text);
                assert_reported(&text, &found, &[(m.2, m.3)]);
            }
            // ...and all three together, in one report.
            let text = apply(&base, &case.mistakes);
            let found = report(&text);
            let expected: Vec<(&str, &str)> = case.mistakes.iter().map(|m| (m.2, m.3)).collect();
            assert_reported(&text, &found, &expected);
        }
    }
}

/// The issue's own case: a misspelt `entity` and `windows`, and a bad `agg`,
/// in a view a model and an export read — every one reported, no panic.
#[test]
fn a_view_with_several_mistakes_and_dependents_reports_them_all() {
    let text = WITH_DEPENDENTS
        .replace("entity = \"user\"", "entitiy = \"user\"")
        .replace(
            "n_7d = { agg = \"count\", window = \"7d\" }",
            "n_7d = { agg = \"count\", windows = \"7d\" }",
        )
        .replace("agg = \"sum\"", "agg = \"total\"");
    let found = report(&text);
    assert_reported(
        &text,
        &found,
        &[
            ("entitiy", "unknown field `entitiy`"),
            ("windows", "unknown field `windows`"),
            ("\"total\"", "unknown variant `total`"),
        ],
    );
    assert!(found.contains("missing field `entity`"), "{found}");
}

/// Issue 16, online tiles: `tile` and `online_history` belong to a declared view
/// computed at every event; elsewhere they are mistakes at their own line, as is
/// a zero tile. Written where they belong, the project loads with them.
#[test]
fn tiles_are_set_only_where_windows_are_read_online() {
    let tiled = WITH_DEPENDENTS.replace(
        "timestamp = \"ts\"\n\n[features.per_user.aggregates]",
        "timestamp = \"ts\"\ntile = \"1d\"\nonline_history = \"30d\"\n\n[features.per_user.aggregates]",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[("sluice.toml", &tiled), ("events.csv", EVENTS)],
    );
    let project = load(dir.path(), None).expect("a tiled view loads");
    let Some(sluice_project::Definition::Features(view)) =
        project.asset("per_user").map(|a| &a.definition)
    else {
        panic!("per_user is a feature view");
    };
    let tiling = view.tiles.expect("tiled");
    assert_eq!(tiling.size.as_secs(), 86_400);
    assert_eq!(tiling.history.as_secs(), 30 * 86_400);

    let zero = tiled.replace("tile = \"1d\"", "tile = \"0s\"");
    assert_reported(
        &zero,
        &report(&zero),
        &[("tile = \"0s\"", "a tile cannot be zero")],
    );

    let with_as_of = tiled.replace("tile = \"1d\"", "tile = \"1d\"\nas_of = \"newest\"");
    assert_reported(
        &with_as_of,
        &report(&with_as_of),
        &[
            (
                "tile = ",
                "`tile` applies only to a declared view computed at every event",
            ),
            (
                "online_history",
                "`online_history` applies only to a declared view",
            ),
        ],
    );
}
