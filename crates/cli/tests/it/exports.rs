//! Exports as files: a Parquet export is zstd-compressed and reads back with
//! every row; an export's writes are its versions in `sluice history`.

use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Compression;

use crate::common::{ok, project, sluice, stderr, stdout};

const PROJECT: &str = r#"
[project]
name = "exports"

[sources.trips]
path = "trips.csv"

[tables.by_city]
sql = "SELECT city, count(*) AS trips, sum(km) AS km FROM trips GROUP BY city"

[exports.trips_parquet]
from = "trips"
path = "out/trips.parquet"

[exports.by_city_parquet]
sql = "SELECT * FROM by_city ORDER BY city"
path = "out/by_city.parquet"
"#;

fn trips(n: usize) -> String {
    let cities = ["Lyon", "Oslo", "Zürich"];
    let mut csv = String::from("id,city,km\n");
    for i in 0..n {
        csv.push_str(&format!("{i},{},{}\n", cities[i % 3], i % 17));
    }
    csv
}

/// Regression: Parquet exports were written uncompressed and untested.
#[test]
fn parquet_exports_are_written_with_zstd_and_read_back_whole() {
    let dir = project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("trips.csv", trips(5000).as_bytes()),
    ]);
    let p = dir.path();
    ok(p, &["run"]);

    let file = std::fs::File::open(p.join("out/trips.parquet")).expect("the export exists");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet file");
    let meta = builder.metadata().clone();
    assert!(meta.num_row_groups() > 0);
    for rg in meta.row_groups() {
        for column in rg.columns() {
            assert!(
                matches!(column.compression(), Compression::ZSTD(_)),
                "column {} is {:?}, not zstd",
                column.column_path(),
                column.compression()
            );
        }
    }
    let batches: Vec<_> = builder
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("rows");
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 5000);
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            let ids = b
                .column_by_name("id")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .expect("id is int64");
            ids.values().to_vec()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..5000).collect::<Vec<i64>>());

    let file = std::fs::File::open(p.join("out/by_city.parquet")).expect("the export exists");
    let batch = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader")
        .next()
        .expect("a batch")
        .expect("rows");
    let city = batch
        .column_by_name("city")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        .or_else(|| {
            // Text may be read back as a view type.
            let c = batch.column_by_name("city")?;
            let c =
                datafusion::arrow::compute::cast(c, &datafusion::arrow::datatypes::DataType::Utf8)
                    .ok()?;
            c.as_any().downcast_ref::<StringArray>().cloned()
        })
        .expect("city is text");
    assert_eq!(city.len(), 3);
    assert_eq!(
        (0..city.len()).map(|i| city.value(i)).collect::<Vec<_>>(),
        ["Lyon", "Oslo", "Zürich"]
    );
}

/// Regression: `sluice history` on an export said "unknown asset" and then
/// listed that very name among the known assets.
#[test]
fn history_of_an_export_shows_its_writes() {
    let dir = project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("trips.csv", trips(30).as_bytes()),
    ]);
    let p = dir.path();
    let o = sluice(p, &["history", "trips_parquet"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("`trips_parquet` has no version yet"),
        "{}",
        stderr(&o)
    );

    ok(p, &["run"]);
    std::fs::write(p.join("trips.csv"), trips(40)).expect("change the input");
    ok(p, &["run"]);

    let text = ok(p, &["history", "trips_parquet"]);
    assert!(!text.contains("unknown asset"), "{text}");
    for word in ["version", "written at", "rows", "fingerprint"] {
        assert!(text.contains(word), "{word} missing in\n{text}");
    }
    let o = sluice(p, &["history", "trips_parquet", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let writes: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let writes = writes.as_array().expect("an array");
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[0]["version"], 2);
    assert_eq!(writes[0]["rows"], 40);
    assert_eq!(writes[1]["version"], 1);
    assert_eq!(writes[1]["rows"], 30);
    for w in writes {
        assert!(
            w["written_at"].as_str().is_some_and(|t| t.contains('T')),
            "{w}"
        );
        assert!(
            w["fingerprint"].as_str().is_some_and(|f| !f.is_empty()),
            "{w}"
        );
    }
    assert_ne!(writes[0]["fingerprint"], writes[1]["fingerprint"]);
}
