//! `sluice init` scaffolds a project that runs as is.

use crate::common::*;

#[test]
fn the_scaffold_runs_as_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("demo");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("init")
        .arg(&p)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let (ok_run, summary) = run_json(&p, &[]);
    assert!(ok_run, "{summary}");
    assert_eq!(asset(&summary, "airlines")["rows_out"], 16);
    assert_eq!(asset(&summary, "carriers")["rows_out"], 16);
    let out = ok(
        &p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT name FROM carriers WHERE carrier = 'DL'",
        ],
    );
    assert_eq!(out, "name\nDelta Air Lines Inc.\n");
    // A second init in the same place refuses to overwrite.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("init")
        .arg(&p)
        .output()
        .expect("runs");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("a project already exists here"));
}
