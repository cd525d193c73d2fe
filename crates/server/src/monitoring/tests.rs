//! The alert rules of `testdata/monitoring` against their golden file, checked
//! and unit-tested by promtool (`alerts_test.yml` fires each rule from
//! synthetic series).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/monitoring")
}

fn update_golden() -> bool {
    std::env::var_os("SLUICE_UPDATE_GOLDEN").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Runs Debian's `promtool` (package `prometheus`) with `args`, feeding it
/// `stdin`. Without it: `None` (the check is skipped, and says so), except
/// under `CI`, where it is required.
pub(crate) fn promtool(args: &[&str], stdin: Option<&str>) -> Option<Output> {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipping `promtool {}`: cannot run promtool ({e}); install Debian's `prometheus`",
                args.join(" ")
            );
            return None;
        }
        Err(e) => panic!("promtool is required under CI (apt-get install prometheus): {e}"),
    };
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write to promtool");
    }
    drop(input);
    Some(child.wait_with_output().expect("promtool"))
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_rules_file_is_golden_and_promtool_checks_it_and_fires_each_rule() {
    let project = sluice_project::load(&testdata(), None).expect("testdata/monitoring compiles");
    let rules = super::alert_rules(&project);
    let golden = testdata().join("alerts.yml");
    if update_golden() {
        std::fs::write(&golden, &rules).expect("write the golden file");
    }
    let expected = std::fs::read_to_string(&golden).expect("testdata/monitoring/alerts.yml");
    assert!(
        rules == expected,
        "the rules differ from testdata/monitoring/alerts.yml (rerun with \
         SLUICE_UPDATE_GOLDEN=1 and review the diff):\n{rules}"
    );
    // Each threshold is the project's own.
    for expr in [
        // null_fraction <= 0.01: the score is 1 - nulls.
        r#"sluice_data_quality_score{pipeline=\"weather\",check=\"temp.null_fraction\"} < 0.99"#,
        // A row rule passes only when no row breaks it.
        r#"sluice_data_quality_score{pipeline=\"weather\",check=\"origin.one_of\"} < 1"#,
        r#"sluice_feature_drift_score{pipeline=\"weather\",feature=\"humid\",statistic=\"psi\"} > 0.2"#,
        r#"sluice_feature_drift_score{pipeline=\"weather\",feature=\"humid\",statistic=\"ks\"} > 0.1"#,
        r#"sluice_feature_drift_score{pipeline=\"origin_weather\",feature=\"temp\",statistic=\"psi\"} > 0.1"#,
        // freshness = { max_age = "1d" }.
        r#"sluice_asset_age_seconds{asset=\"weather\"} > 86400"#,
    ] {
        assert!(rules.contains(expr), "no {expr} in\n{rules}");
    }
    // Drift checks alert as drift, not twice as quality.
    assert!(!rules.contains("humid.psi"), "{rules}");

    let golden = golden.to_string_lossy().into_owned();
    let Some(out) = promtool(&["check", "rules", &golden], None) else {
        return;
    };
    assert_ok(&out, "promtool check rules rejects alerts.yml");
    let tests = testdata().join("alerts_test.yml");
    let out = promtool(&["test", "rules", &tests.to_string_lossy()], None)
        .expect("promtool ran just before");
    assert_ok(&out, "promtool test rules alerts_test.yml fails");
}

#[test]
fn names_and_messages_with_quotes_stay_one_yaml_string() {
    assert_eq!(
        super::rules::q("a \"b\" \\ {{ $value }}\n"),
        r#""a \"b\" \\ {{ $value }}\n""#
    );
    assert_eq!(
        super::rules::promql(r#"it's "x" \ y"#),
        r#""it's \"x\" \\ y""#
    );
}
