//! A step's command leaves nothing running — when it ends and when the future
//! building it is dropped (a timeout) — and its failures carry their class.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::ErrorClass;

use super::command::{self, StepError};
use crate::Workspace;

/// Whether `pid` is gone: no such process, or a zombie nobody reaped yet (it
/// runs nothing; in a container the reaper may be slow or absent).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Waits (bounded) until every pid is gone; a SIGKILL is delivered at once,
/// but the kernel tears the processes down asynchronously.
async fn all_gone(pids: &[u32]) -> bool {
    for _ in 0..500 {
        if pids.iter().all(|p| gone(*p)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// The pids a script wrote to `file` (written whole, by rename), once it is there.
async fn pids_in(file: &Path) -> Vec<u32> {
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            return text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A project with one step running `script` with `sh`.
fn workspace(dir: &Path, script: &str) -> Arc<Workspace> {
    std::fs::write(dir.join("tree.sh"), script).expect("write");
    std::fs::write(
        dir.join("sluice.toml"),
        "[project]\nname = \"t\"\n\n[steps.tree]\ncommand = [\"sh\", \"tree.sh\"]\nfiles = [\"tree.sh\"]\n",
    )
    .expect("write");
    let project = sluice_project::load(dir, None).expect("the project compiles");
    Arc::new(Workspace::open(project).expect("the warehouse opens"))
}

/// Starts two background sleeps and the shell waits on them; the pids of all
/// three are written to `pids` at once.
const TREE: &str =
    "sleep 100 & a=$!\nsleep 100 & b=$!\necho \"$a $b $$\" > pids.tmp\nmv pids.tmp pids\nwait\n";

#[tokio::test]
async fn dropping_a_running_step_kills_its_whole_process_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = workspace(dir.path(), TREE);
    let asset = ws.project.asset("tree").expect("the step").clone();
    let pins = crate::pins::Pins::new();
    let build = crate::kinds::materialize(&ws, &asset, 7, &pins, Default::default(), None);
    // What a runner's timeout does: the build future is dropped mid-run.
    let pids_file = dir.path().join("pids");
    let pids = tokio::select! {
        outcome = build => panic!("the step ended on its own: {outcome:?}"),
        pids = pids_in(&pids_file) => pids,
    };
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(
        all_gone(&pids).await,
        "processes of the step are still running: {:?}",
        pids.iter().filter(|p| !gone(**p)).collect::<Vec<_>>()
    );
    assert!(
        !ws.warehouse.step_scratch(7, "tree").exists(),
        "the scratch folder is removed with the step"
    );
}

#[tokio::test]
async fn a_step_that_leaves_children_behind_ends_and_takes_them_along() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The shell exits at once; its child would hold the pipes for 100 s.
    let ws = workspace(
        dir.path(),
        "sleep 100 & echo $! > pids.tmp\nmv pids.tmp pids\necho done\n",
    );
    let asset = ws.project.asset("tree").expect("the step").clone();
    let pins = crate::pins::Pins::new();
    let outcome = crate::kinds::materialize(&ws, &asset, 1, &pins, Default::default(), None).await;
    assert_eq!(
        outcome.status,
        sluice_core::AssetStatus::Built,
        "{:?}",
        outcome.error
    );
    let pids = pids_in(&dir.path().join("pids")).await;
    assert!(
        all_gone(&pids).await,
        "the background sleep outlived the step"
    );
    let log = std::fs::read_to_string(ws.warehouse.step_log(1, "tree")).expect("the log");
    assert!(log.starts_with("--- sluice: step `tree`, run 1"), "{log}");
    assert!(log.contains("\ndone\n"), "{log}");
}

fn exit(code: i32) -> StepError {
    StepError::Exit {
        step: "score".into(),
        status: ExitStatus::from_raw(code << 8),
        stderr: vec!["Traceback (most recent call last):".into(), "boom".into()],
        log: PathBuf::from("/w/logs/score/run-3.log"),
    }
}

#[test]
fn exit_75_is_transient_and_every_other_failure_is_permanent() {
    assert_eq!(command::EX_TEMPFAIL, 75);
    assert_eq!(exit(75).class(), ErrorClass::Transient);
    assert_eq!(exit(1).class(), ErrorClass::Permanent);
    assert_eq!(exit(2).class(), ErrorClass::Permanent);
    let killed = StepError::Exit {
        step: "score".into(),
        status: ExitStatus::from_raw(9),
        stderr: vec![],
        log: PathBuf::from("/w/logs/score/run-3.log"),
    };
    assert_eq!(killed.class(), ErrorClass::Permanent);
    assert!(
        killed
            .to_string()
            .contains("was killed by signal 9 (SIGKILL)"),
        "{killed}"
    );
    let missing = StepError::Start {
        step: "score".into(),
        program: "pyhton3".into(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    assert_eq!(missing.class(), ErrorClass::Permanent);
    assert!(
        missing
            .to_string()
            .starts_with("step `score`: cannot start `pyhton3`"),
        "{missing}"
    );
}

#[test]
fn a_failed_exit_names_the_step_the_status_and_the_stderr_tail() {
    let text = exit(1).to_string();
    assert!(
        text.starts_with("step `score`: the command exited with status 1; the last 2 lines of its stderr:\n    Traceback (most recent call last):\n    boom\n  help:"),
        "{text}"
    );
    assert!(text.contains("/w/logs/score/run-3.log"), "{text}");
    assert!(exit(75).to_string().contains("EX_TEMPFAIL"));
}
