//! An HTTP source as a table (`HttpTable`) against a server on 127.0.0.1:0:
//! a `>=` filter over it is pushed down as the source's `since_param`, a
//! cursor walks the API's pages, and DataFusion still filters the rows — the
//! cursor-based incremental read an incremental load asks for.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::SessionContext;
use sluice_project::{Definition, SourceDef};
use sluice_source::http::HttpTable;
use sluice_source::{Payload, RawSink, Validators};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Keeps payloads in a folder, as the raw zone would.
struct Folder {
    dir: PathBuf,
    stored: Mutex<Vec<String>>,
}

impl RawSink for Folder {
    fn previous(&self, _url: &str) -> Option<Validators> {
        None
    }
    fn store(&self, p: &Payload, body: &[u8]) -> Result<PathBuf, BoxError> {
        let mut stored = self.stored.lock().map_err(|e| e.to_string())?;
        let path = self.dir.join(format!("{}.{}", stored.len(), p.extension));
        std::fs::write(&path, body)?;
        stored.push(p.url.clone());
        Ok(path)
    }
    fn confirm(&self, _p: &Payload) -> Result<(PathBuf, Vec<u8>), BoxError> {
        Err("nothing is stored to confirm".into())
    }
}

/// An API of six records changed one a day, answering `updated_since`
/// (records changed at or after it) in pages of two by `after` cursor.
fn api() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            let mut r = BufReader::new(socket);
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let target = first
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            s.lock().expect("lock").push(target.clone());
            let param = |name: &str| {
                target.split_once('?').and_then(|(_, q)| {
                    q.split('&').find_map(|kv| {
                        kv.strip_prefix(&format!("{name}="))
                            .map(|v| v.replace("%3A", ":"))
                    })
                })
            };
            let since = param("updated_since").unwrap_or_default();
            let after: usize = param("after").and_then(|a| a.parse().ok()).unwrap_or(0);
            let changed: Vec<serde_json::Value> = (1..=6)
                .map(|i| serde_json::json!({"id": i, "updated_at": format!("2024-01-0{i}T00:00:00Z")}))
                .filter(|r| r["updated_at"].as_str().unwrap_or_default() >= since.as_str())
                .collect();
            let page: Vec<_> = changed.iter().skip(after).take(2).cloned().collect();
            let next = (after + 2 < changed.len()).then(|| (after + 2).to_string());
            let body = serde_json::json!({"data": page, "next": next}).to_string();
            let _ = write!(
                r.get_mut(),
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_watermark_filter_is_sent_as_the_since_parameter() {
    let (port, seen) = api();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!(
            "[project]\nname = \"p\"\n\n[sources.changes]\nrecords = \"data\"\n\
             columns = {{ id = \"int64\", updated_at = \"timestamp\" }}\n\
             [sources.changes.http]\nurl = \"http://127.0.0.1:{port}/changes\"\nsince_param = \"updated_since\"\n\
             paging = {{ style = \"cursor\", param = \"after\", cursor = \"$.next\" }}\n"
        ),
    )
    .expect("write");
    let project = sluice_project::load(dir.path(), None).expect("compiles");
    let asset = project
        .assets
        .values()
        .find(|a| a.name.as_str() == "changes")
        .expect("asset");
    let Definition::Source(def) = &asset.definition else {
        panic!("a source");
    };
    let SourceDef::Http(def) = def.as_ref() else {
        panic!("an HTTP source");
    };
    let payloads = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(Folder {
        dir: payloads.path().to_path_buf(),
        stored: Mutex::default(),
    });
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let table = HttpTable::new(Arc::new((**def).clone()), sink.clone(), schema);
    let ctx = SessionContext::new();
    ctx.register_table("changes", Arc::new(table))
        .expect("register");
    let batches = ctx
        .sql("SELECT id FROM changes WHERE updated_at >= TIMESTAMP '2024-01-04T00:00:00Z' ORDER BY id")
        .await
        .expect("plans")
        .collect()
        .await
        .expect("runs");
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64")
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, [4, 5, 6]);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen.len(),
        2,
        "two pages of the three changed records: {seen:?}"
    );
    assert!(
        seen.iter().all(|t| t
            .replace("%3A", ":")
            .contains("updated_since=2024-01-04T00:00:00Z")),
        "{seen:?}"
    );
    assert!(seen[1].contains("after=2"), "{seen:?}");
    assert_eq!(
        sink.stored.lock().expect("lock").len(),
        2,
        "every page stored"
    );
}
