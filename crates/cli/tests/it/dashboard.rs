//! The dashboard in Debian's headless Chromium, driven by playwright-core
//! (`tests/browser/dashboard.mjs`), against `sluice serve` on the flights
//! example with an operator's and a reader's key: every page loads with no
//! console error and no failed request; "Update data" starts a run whose page
//! shows it finish; a 375-px phone has no horizontal scroll; a reader sees no
//! button and is refused the runs; a POST without the session's CSRF token is
//! refused. On the baseball example (`tests/browser/explorer.mjs`), typing part
//! of a name in an explorer suggests the player, and his chart's points equal
//! what `sluice query` reads, on a desktop and on a phone. The screenshots go to
//! `dashboard-screenshots/` at the repository's root. Under `CI=true` a missing
//! Node.js, browser or `npm ci` fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// What the browser test needs, or `None` (outside CI) to skip.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let script = repo().join("tests/browser/dashboard.mjs");
    let chromium = PathBuf::from(
        std::env::var("SLUICE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = repo()
        .join("tests/browser/node_modules/playwright-core")
        .is_dir();
    let missing = [
        (!node_ok).then_some("node (Node.js)"),
        (!chromium.is_file()).then_some("chromium (apt-get install chromium)"),
        (!installed).then_some("playwright-core (cd tests/browser && npm ci)"),
    ];
    let missing: Vec<&str> = missing.into_iter().flatten().collect();
    if missing.is_empty() {
        return Some((script, chromium));
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs for the browser test: {} (.ci/run installs them)",
        missing.join(", ")
    );
    eprintln!("skipped: the browser test needs {}", missing.join(", "));
    None
}

/// Runs the browser script `script` against `server` with `env` (and the
/// server's URL, the browser and the screenshots' folder); fails with what it
/// printed and the server's log.
fn drive(script: &Path, chromium: &Path, server: &Server, env: &[(&str, &str)]) {
    let out = Command::new("node")
        .arg(script)
        .env("SLUICE_URL", format!("http://{}", server.addr))
        .env("SCREENSHOTS", repo().join("dashboard-screenshots"))
        .env("CHROMIUM", chromium)
        .envs(env.iter().copied())
        .current_dir(repo().join("tests/browser"))
        .output()
        .expect("node runs");
    let log = server.log.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(
        out.status.success(),
        "the browser checks failed:\n{}\n{}\nserver log:\n{log}",
        stdout(&out),
        stderr(&out)
    );
    eprintln!("{}", stdout(&out));
}

#[test]
fn the_dashboard_works_in_a_real_browser_for_an_operator_and_a_reader() {
    let Some((script, chromium)) = browser() else {
        return;
    };
    let dir = flights_copy();
    let p = dir.path();
    let (ok_, summary) = run_json(p, &[]);
    assert!(ok_, "{summary}");
    let key = |role: &str| {
        ok(p, &["keys", "create", "--role", role, "--name", role])
            .trim()
            .to_string()
    };
    let (operator, reader) = (key("operator"), key("reader"));
    let assets: Vec<String> = statuses(&summary)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let server = Server::start_with(p, &["--no-scheduler"]);
    let shots = repo().join("dashboard-screenshots");
    drive(
        &script,
        &chromium,
        &server,
        &[
            ("OPERATOR_KEY", &operator),
            ("READER_KEY", &reader),
            ("ASSETS", &assets.join(",")),
        ],
    );
    for shot in ["overview", "run", "asset", "phone"] {
        assert!(shots.join(format!("{shot}.png")).is_file(), "{shot}.png");
    }
}

#[test]
fn an_explorer_finds_a_player_by_name_and_draws_what_sluice_query_reads() {
    let Some((script, chromium)) = browser() else {
        return;
    };
    let script = script.with_file_name("explorer.mjs");
    let dir = example_copy("baseball");
    let p = dir.path();
    let (ok_, summary) = run_json(p, &[]);
    assert!(ok_, "{summary}");
    let expected = ok(
        p,
        &[
            "query",
            "--format",
            "json",
            "SELECT season, hr FROM batting_seasons WHERE player_id = 'bondsba01' \
             AND season BETWEEN 1998 AND 2004 ORDER BY season",
        ],
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&expected).expect("json");
    let pairs: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["season"].as_f64().expect("season"),
                r["hr"].as_f64().expect("hr"),
            )
        })
        .collect();
    assert_eq!(pairs.len(), 7, "{expected}");
    assert!(pairs.contains(&(2001.0, 73.0)), "{expected}");
    let server = Server::start_with(p, &["--no-scheduler"]);
    let expected = serde_json::to_string(&pairs).expect("json");
    drive(
        &script,
        &chromium,
        &server,
        &[
            ("TYPED", "barry bon"),
            ("ENTITY", "bondsba01"),
            ("FROM", "1998"),
            ("TO", "2004"),
            ("EXPECTED", &expected),
        ],
    );
}
