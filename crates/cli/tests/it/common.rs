//! Helpers: run the real binary, copy the example into a scratch folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A command for the `sluice` binary built by cargo for these tests.
pub fn sluice_cmd(project: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("--project")
        .arg(project)
        .env_remove("SLUICE_PROFILE")
        .env_remove("SLUICE_PROJECT");
    cmd
}

/// Runs `sluice --project DIR ARGS...` to completion.
pub fn sluice(project: &Path, args: &[&str]) -> Output {
    sluice_cmd(project)
        .args(args)
        .output()
        .expect("the sluice binary runs")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and asserts success, returning stdout.
pub fn ok(project: &Path, args: &[&str]) -> String {
    let o = sluice(project, args);
    assert!(
        o.status.success(),
        "sluice {args:?} failed ({}):\n{}\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `sluice run --json`, parsed, with the status of each asset by name.
pub fn run_json(project: &Path, args: &[&str]) -> (bool, serde_json::Value) {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let o = sluice(project, &all);
    let text = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("run --json printed no JSON ({e}):\n{text}\n{}", stderr(&o)));
    (o.status.success(), v)
}

/// The status word of every asset in a `run --json` summary.
pub fn statuses(summary: &serde_json::Value) -> Vec<(String, String)> {
    summary["assets"]
        .as_array()
        .expect("assets is an array")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default().to_string(),
                a["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// One asset's entry of a `run --json` summary.
pub fn asset<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["assets"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .unwrap_or_else(|| panic!("no asset {name} in {summary}"))
}

/// A copy of `examples/flights` (without any warehouse) in a fresh temp folder.
pub fn flights_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo().join("examples/flights"), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == ".sluice" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A project folder with these files (path, contents).
pub fn project(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// One number from `sluice query --format csv` with a one-value result.
pub fn scalar(project: &Path, sql: &str) -> i64 {
    let out = ok(project, &["query", "--format", "csv", sql]);
    let value = out
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no value in {out:?}"));
    value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {out:?}"))
}
