//! `sluice describe`: an asset's schema from the command line.

use crate::common::{ok, project, repo, sluice, stderr};

#[test]
fn describe_shows_an_assets_columns_as_stored() {
    let flights = std::fs::read(
        repo().join("testdata/pipelines/model_predictions/project/data/flights.parquet"),
    )
    .expect("golden flights data");
    let dir = project(&[
        (
            "sluice.toml",
            br#"
[project]
name = "describe"

[sources.flights]
path = "flights.parquet"
description = "Every 8th flight of January 2013"

[tables.carriers]
sql = "SELECT carrier, count(*) AS flights FROM flights GROUP BY carrier"
"#,
        ),
        ("flights.parquet", &flights),
    ]);
    let p = dir.path();
    let before = ok(p, &["describe", "carriers"]);
    assert!(before.contains("sluice run carriers"), "{before}");
    ok(p, &["run"]);

    let text = ok(p, &["describe", "carriers"]);
    assert!(text.starts_with("carriers (table)"), "{text}");
    assert!(text.contains("reads: flights"), "{text}");
    assert!(text.contains("up to date"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(p, &["describe", "carriers", "--json"])).expect("json");
    assert_eq!(json["kind"], "table");
    assert_eq!(json["inputs"], serde_json::json!(["flights"]));
    assert_eq!(json["rows"], 15, "{json}");
    let columns: Vec<(String, String)> = json["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["type"].as_str().expect("type").to_string(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        vec![
            ("carrier".to_string(), "Utf8".to_string()),
            ("flights".to_string(), "Int64".to_string())
        ]
    );
    let source: serde_json::Value =
        serde_json::from_str(&ok(p, &["describe", "flights", "--json"])).expect("json");
    assert_eq!(source["description"], "Every 8th flight of January 2013");

    let unknown = sluice(p, &["describe", "carrier"]);
    assert!(!unknown.status.success());
    let message = stderr(&unknown);
    assert!(
        message.contains("carrier") && message.contains("carriers"),
        "{message}"
    );
}
