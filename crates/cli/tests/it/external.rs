//! A published version is readable outside sluice: Python's pyarrow replays the
//! Delta log itself (no Delta library), reads the Parquet files and gets the same
//! row count and the same top carrier.

use crate::common::*;

const SCRIPT: &str = r#"
import json, os, sys
import pyarrow.parquet as pq
table = sys.argv[1]
log = os.path.join(table, "_delta_log")
files = set()
for name in sorted(n for n in os.listdir(log) if n.endswith(".json")):
    with open(os.path.join(log, name)) as f:
        for line in f:
            action = json.loads(line)
            if "add" in action:
                files.add(action["add"]["path"])
            if "remove" in action:
                files.discard(action["remove"]["path"])
t = pq.read_table([os.path.join(table, p) for p in sorted(files)])
counts = t.group_by("carrier").aggregate([("carrier", "count")]).sort_by([("carrier_count", "descending")])
print(t.num_rows, counts.column("carrier")[0].as_py(), counts.column("carrier_count")[0].as_py())
"#;

#[test]
fn pyarrow_reads_a_published_version() {
    let Some(python) = python() else {
        return;
    };
    let dir = flights_copy();
    let p = dir.path();
    ok(p, &["run", "flights"]);
    // Rebuild once so that the log holds an overwrite with removes to replay.
    std::fs::write(
        p.join("sluice.toml"),
        std::fs::read_to_string(p.join("sluice.toml"))
            .expect("toml")
            .replace(
                "[sources.flights]\npath = \"data/flights.parquet\"",
                "[sources.flights]\npath = \"data/flights.parquet\"\ninfer_rows = 5000",
            ),
    )
    .expect("write");
    let (_, summary) = run_json(p, &["flights"]);
    assert_eq!(asset(&summary, "flights")["version"], 1, "{summary}");
    let o = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .arg(p.join(".sluice/tables/flights"))
        .output()
        .expect("python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "335597 UA 58468");
}
