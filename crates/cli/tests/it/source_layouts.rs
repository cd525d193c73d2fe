//! Text files as users have them, through `sluice run` (issue 15, items 4 and
//! 5): ids keep their leading zeros, a whitespace-aligned file and an `m/d/yy`
//! date load with no SQL workaround, a value that misses its format is
//! quarantined or named at its place, and a file read as one column warns.

use crate::common::*;

fn data(file: &str) -> Vec<u8> {
    std::fs::read(
        repo()
            .join("testdata/pipelines/source_layouts/project/data")
            .join(file),
    )
    .expect("the case's data")
}

/// `sluice query --format csv`, as lines.
fn query(project: &std::path::Path, sql: &str) -> Vec<String> {
    ok(project, &["query", "--format", "csv", sql])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn leading_zeros_keep_ids_as_text_through_a_run() {
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"t\"\n\n[sources.orders]\npath = \"data/orders.csv\"\n",
        ),
        (
            "data/orders.csv",
            b"customer,amount\n00001,11.77\n00042,5.00\n10230,0.5\n",
        ),
    ]);
    ok(p.path(), &["run"]);
    assert_eq!(
        query(
            p.path(),
            "SELECT customer, amount FROM orders ORDER BY customer"
        ),
        ["customer,amount", "00001,11.77", "00042,5.0", "10230,0.5"]
    );
}

#[test]
fn whitespace_and_fixed_width_files_and_formats_load_with_no_sql() {
    let toml = br#"[project]
name = "t"
concurrency = 1

[sources.bookings]
path = "data/bookings.txt"
delimiter = "\\s+"
null = ["NA"]
formats = { date = "%Y%m%d" }

[sources.fixed]
path = "data/bookings_fixed.txt"
widths = [5, 8, 2, 6, 5, 5]
header = false
names = ["flight", "date", "carrier", "tailnum", "delay", "distance"]
formats = { date = "%Y%m%d" }

[sources.departures]
path = "data/departures.csv"
formats = { day = "%m/%d/%y", departed = "%Y%m%d %H%M" }
timezone = "America/New_York"

[sources.departures.contract.columns.day]
type = "date"

[sources.departures.contract.columns.departed]
type = "timestamp"
"#;
    let p = project(&[
        ("sluice.toml", toml),
        ("data/bookings.txt", &data("bookings.txt")),
        ("data/bookings_fixed.txt", &data("bookings_fixed.txt")),
        ("data/departures.csv", &data("departures.csv")),
    ]);
    let (success, summary) = run_json(p.path(), &[]);
    assert!(success, "{summary:#}");
    assert_eq!(asset(&summary, "bookings")["rows_out"], 31);
    assert_eq!(asset(&summary, "fixed")["rows_out"], 31);
    // The planted 2/30/13 is quarantined; the 31 real rows publish.
    let departures = asset(&summary, "departures");
    assert_eq!(
        (
            &departures["rows_in"],
            &departures["rows_out"],
            &departures["rows_quarantined"]
        ),
        (&32.into(), &31.into(), &1.into())
    );
    assert_eq!(
        query(
            p.path(),
            "SELECT flight, date, carrier, delay FROM bookings ORDER BY date, flight LIMIT 2"
        ),
        [
            "flight,date,carrier,delay",
            "00443,2013-01-01,AA,71",
            "00565,2013-01-01,AA,-8"
        ]
    );
    assert_eq!(
        query(
            p.path(),
            "SELECT count(*) AS n FROM (SELECT * FROM bookings EXCEPT SELECT * FROM fixed)"
        ),
        ["n", "0"]
    );
    assert_eq!(
        query(
            p.path(),
            "SELECT flight, day, departed FROM departures ORDER BY departed LIMIT 1"
        ),
        [
            "flight,day,departed",
            "01714,2013-01-01,2013-01-01T10:33:00Z"
        ]
    );
    assert_eq!(
        query(p.path(), "SELECT flight, day FROM departures__quarantine"),
        ["flight,day", "00042,2/30/13"]
    );
}

#[test]
fn a_value_that_does_not_match_its_format_fails_the_source_at_its_place() {
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"t\"\n\n[sources.departures]\npath = \"data/departures.csv\"\n\
              formats = { day = \"%m/%d/%y\" }\n",
        ),
        ("data/departures.csv", &data("departures.csv")),
    ]);
    let o = sluice(p.path(), &["run"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(
            "departures.csv:33:2: `2/30/13` does not match the format `%m/%d/%y` of column `day` (date)"
        ),
        "{err}"
    );
}

#[test]
fn one_column_with_spaces_in_header_warns_at_check_and_run() {
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"t\"\n\n[sources.bookings]\npath = \"data/bookings.txt\"\n",
        ),
        ("data/bookings.txt", &data("bookings.txt")),
    ]);
    for command in ["check", "run"] {
        let o = sluice(p.path(), &[command]);
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("bookings.txt:1: the file was read as one column"),
            "{command}: {err}"
        );
        assert!(
            err.contains("delimiter = \"whitespace\""),
            "{command}: {err}"
        );
    }
}
