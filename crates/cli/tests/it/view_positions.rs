//! Issue 15, item 3: a declared feature view's mistakes that only the data
//! shows (a column its source lacks, a filter that does not plan) are
//! reported at the key that is wrong — not at a line computed from sluice's
//! generated SQL. And item 10: `last` skips nulls unless told not to.

use crate::common::{ok, project, sluice, stderr};

const EVENTS: &[u8] = b"user,ts,amount,note\n\
a,2024-01-01T00:00:00Z,3.5,x\n\
a,2024-01-03T00:00:00Z,,\n\
b,2024-01-02T00:00:00Z,1.25,y\n";

const VIEW: &str = r#"[project]
name = "positions"

[sources.events]
path = "events.csv"

[features.per_user]
source = "events"
entity = "user"
timestamp = "ts"

[features.per_user.aggregates]
n_7d = { agg = "count", window = "7d" }
total_30d = { agg = "sum", column = "amount", window = "30d", filter = "amount > 0" }
last_amount = { agg = "last", column = "amount" }
newest_amount = { agg = "last", column = "amount", ignore_nulls = false }
"#;

/// The first error line of `sluice check` on `text`, and the line and column
/// where `needle` is written in it.
fn first_error(text: &str, needle: &str) -> (String, String) {
    let dir = project(&[("sluice.toml", text.as_bytes()), ("events.csv", EVENTS)]);
    let out = sluice(dir.path(), &["check"]);
    assert!(!out.status.success(), "check passed:\n{text}");
    let err = stderr(&out);
    let offset = text.find(needle).expect("needle in file");
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    let first = err
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_default()
        .to_string();
    (first, format!("sluice.toml:{line}:{column}:"))
}

#[test]
fn a_missing_entity_column_is_reported_at_the_entity_key() {
    let text = VIEW.replace("entity = \"user\"", "entity = \"customer\"");
    let (err, at) = first_error(&text, "\"customer\"");
    assert!(err.contains(&at), "expected {at} in {err}");
    assert!(err.contains("`entity` names `customer`"), "{err}");
}

#[test]
fn a_missing_timestamp_column_is_reported_at_the_timestamp_key() {
    let text = VIEW.replace("timestamp = \"ts\"", "timestamp = \"event_time\"");
    let (err, at) = first_error(&text, "\"event_time\"");
    assert!(err.contains(&at), "expected {at} in {err}");
}

#[test]
fn a_missing_aggregate_column_is_reported_at_its_column_key() {
    let text = VIEW.replace(
        "column = \"amount\", window = \"30d\"",
        "column = \"amout\", window = \"30d\"",
    );
    let (err, at) = first_error(&text, "\"amout\"");
    assert!(err.contains(&at), "expected {at} in {err}");
    assert!(err.contains("`column` names `amout`"), "{err}");
}

#[test]
fn a_filter_error_is_reported_inside_the_filter() {
    let text = VIEW.replace(
        "filter = \"amount > 0\"",
        "filter = \"amount > 0 AND colour = 'red'\"",
    );
    let (err, at) = first_error(&text, "colour = 'red'");
    assert!(err.contains(&at), "expected {at} in {err}");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn last_skips_nulls_unless_ignore_nulls_is_false() {
    let dir = project(&[("sluice.toml", VIEW.as_bytes()), ("events.csv", EVENTS)]);
    let p = dir.path();
    ok(p, &["run"]);
    let rows = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT user, ts, last_amount, newest_amount FROM per_user ORDER BY user, ts",
        ],
    );
    let lines: Vec<&str> = rows.lines().collect();
    // user a's second event has no amount: `last` keeps 3.5, the newest value is null.
    assert_eq!(lines.len(), 4, "{rows}");
    assert!(lines[2].starts_with("a,2024-01-03"), "{rows}");
    assert!(lines[2].ends_with(",3.5,"), "{rows}");
    assert!(lines[1].ends_with(",3.5,3.5"), "{rows}");
    assert!(lines[3].ends_with(",1.25,1.25"), "{rows}");
}
