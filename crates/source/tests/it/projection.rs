//! A query that names some columns reads only those (a `unique` rule's extra
//! pass reads one column): the rows, types and error positions are the same
//! as when every column is read.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;
use sluice_source::FileSource;

use crate::{folder, shown, source, testdata};

/// The rows `sql` returns over the source registered as `t`.
async fn query(source: &FileSource, sql: &str) -> Result<RecordBatch, String> {
    let ctx = SessionContext::new();
    ctx.register_table("t", source.table_provider().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    concat_batches(&schema, &batches).map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_projected_csv_column_converts_and_errors_at_its_own_column() {
    let case = testdata().join("pipelines/source_layouts/project/data");
    let good = source(&case, "departures.csv", "");
    let source_ = FileSource::open(&good).expect("opens");
    let all = query(&source_, "SELECT * FROM t").await.expect("reads");
    // Out of the file's order.
    let some = query(&source_, "SELECT dest, departed, flight FROM t")
        .await
        .expect("reads");
    assert_eq!(some.num_rows(), all.num_rows());
    for c in ["dest", "departed", "flight"] {
        assert_eq!(shown(&some, c), shown(&all, c), "{c}");
    }
    // A converted column read alone errors at its place in the file.
    let converted = source(
        &case,
        "departures.csv",
        "formats = { departed = \"%Y%m%d %H%M\" }\n",
    );
    let converted = FileSource::open(&converted).expect("opens");
    let err = query(&converted, "SELECT dest, departed FROM t")
        .await
        .expect_err("20130230 is no date");
    assert!(
        err.contains("departures.csv:33:3: `20130230 0600` does not match"),
        "{err}"
    );
    // The bad date is in column 2 of the file, whatever the query reads.
    let bad = source(
        &case,
        "departures.csv",
        "formats = { day = \"%m/%d/%y\" }\n",
    );
    let bad = FileSource::open(&bad).expect("opens");
    for sql in ["SELECT day FROM t", "SELECT origin, day FROM t"] {
        let err = query(&bad, sql).await.expect_err("2/30/13 is no date");
        assert!(
            err.contains("departures.csv:33:2: `2/30/13` does not match"),
            "{sql}: {err}"
        );
    }
    // A query that does not read the bad column does not see it.
    let rows = query(&bad, "SELECT origin FROM t").await.expect("reads");
    assert_eq!(rows.num_rows(), all.num_rows());
    // No column at all: the rows are still counted.
    let counted = query(&source_, "SELECT count(*) AS n FROM t")
        .await
        .expect("reads");
    assert_eq!(shown(&counted, "n"), [all.num_rows().to_string()]);
}

#[tokio::test]
async fn a_projected_parquet_file_decodes_the_columns_asked_for_in_that_order() {
    let dir = folder(&[]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(1_700_000_000_000_000_000),
                None,
                Some(1_700_000_000_123_456_000),
            ])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("rows.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let source_ = FileSource::open(&source(dir.path(), "rows.parquet", "")).expect("opens");
    let all = query(&source_, "SELECT * FROM t").await.expect("reads");
    let some = query(&source_, "SELECT at, id FROM t")
        .await
        .expect("reads");
    assert_eq!(
        some.schema().field(0).data_type(),
        all.schema().field_with_name("at").unwrap().data_type(),
        "zone-less nanoseconds become UTC instants either way"
    );
    assert_eq!(shown(&some, "at"), shown(&all, "at"));
    assert_eq!(shown(&some, "id"), ["1", "2", "3"]);
    let names = query(&source_, "SELECT name FROM t WHERE name IS NOT NULL")
        .await
        .expect("reads");
    assert_eq!(shown(&names, "name"), ["a", "c"]);
    let counted = query(&source_, "SELECT count(*) AS n FROM t")
        .await
        .expect("reads");
    assert_eq!(shown(&counted, "n"), ["3"]);
}

/// A file of several row groups: the rows come in the file's order, a query
/// that stops early gets the first rows, and the conversions hold in every
/// row group.
#[tokio::test]
async fn a_parquet_file_of_many_row_groups_reads_in_order() {
    let dir = folder(&[]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
    ]));
    let rows = 7_300_i64;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| (i % 7 != 0).then(|| format!("n{i}"))),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                (0..rows).map(|i| 1_700_000_000_000_000_000 + i * 1_000_000_000),
            )),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("rows.parquet")).unwrap();
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let source_ = FileSource::open(&source(dir.path(), "rows.parquet", "")).expect("opens");
    let ids: Vec<String> = (0..rows).map(|i| i.to_string()).collect();

    let all = query(&source_, "SELECT * FROM t").await.expect("reads");
    assert_eq!(shown(&all, "id"), ids, "every row, in the file's order");
    let names = shown(&all, "name");
    assert_eq!(names[7], "null");
    assert_eq!(names[7_299], "n7299");
    let at = shown(&all, "at");
    assert_eq!(at[0], "2023-11-14T22:13:20Z");
    assert_eq!(at[7_299], "2023-11-15T00:14:59Z");

    let some = query(&source_, "SELECT at, id FROM t LIMIT 2500")
        .await
        .expect("reads");
    assert_eq!(shown(&some, "id"), ids[..2500]);
    assert_eq!(shown(&some, "at"), at[..2500]);
    let counted = query(&source_, "SELECT count(*) AS n FROM t")
        .await
        .expect("reads");
    assert_eq!(shown(&counted, "n"), ["7300"]);
}

#[tokio::test]
async fn a_projected_json_file_keeps_its_error_positions() {
    let dir = folder(&[(
        "events.json",
        "{\"id\": \"007\", \"day\": \"20240101\"}\n\n{\"id\": \"008\", \"day\": \"20240230\"}\n",
    )]);
    let def = source(
        dir.path(),
        "events.json",
        "formats = { day = \"%Y%m%d\" }\n",
    );
    let source_ = FileSource::open(&def).expect("opens");
    let err = query(&source_, "SELECT day FROM t")
        .await
        .expect_err("February has no 30th");
    assert!(
        err.contains("events.json:3:2: `20240230` does not match"),
        "{err}"
    );
    let ids = query(&source_, "SELECT id FROM t").await.expect("reads");
    assert_eq!(shown(&ids, "id"), ["007", "008"]);
}
