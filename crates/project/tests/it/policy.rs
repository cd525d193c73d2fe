//! Retries, timeouts and pools: any asset's entry and `[project]` hold them,
//! a profile may change them, and their mistakes are reported where written.

use std::time::Duration;

use sluice_project::{RetryOn, load};

use crate::write;

const DATA: (&str, &str) = ("raw.csv", "a\n1\n");

fn policy_of(p: &sluice_project::Project, name: &str) -> sluice_project::RunPolicy {
    p.assets
        .values()
        .find(|a| a.name.as_str() == name)
        .expect("asset")
        .policy
        .clone()
}

#[test]
fn an_assets_keys_lay_over_the_projects_and_a_profile_changes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[project]\nname = \"p\"\nretries = 2\ntimeout = \"1h\"\n\n\
        [profiles.ci]\nretries = 0\n\n\
        [pools]\ndb = 2\n\n\
        [sources.raw]\npath = \"raw.csv\"\nretries = 4\nretry_on = \"any\"\npool = \"db\"\n\n\
        [profiles.ci.sources.raw]\ntimeout = \"5s\"\n\n\
        [tables.clean]\nsql = \"SELECT * FROM raw\"\nretry_delay = \"1s\"\nmax_delay = \"1m\"\n";
    write(dir.path(), &[("sluice.toml", text), DATA]);
    let p = load(dir.path(), None).expect("loads");
    assert_eq!(p.pools.get("db"), Some(&2));
    let raw = policy_of(&p, "raw");
    assert_eq!(raw.retries, 4);
    assert_eq!(raw.retry_on, RetryOn::Any);
    assert_eq!(raw.timeout, Some(Duration::from_secs(3600)));
    assert_eq!(raw.pool.as_deref(), Some("db"));
    let clean = policy_of(&p, "clean");
    assert_eq!(clean.retries, 2, "from [project]");
    assert_eq!(clean.retry_delay, Duration::from_secs(1));
    assert_eq!(clean.max_delay, Duration::from_secs(60));
    assert_eq!(clean.retry_on, RetryOn::Transient);
    assert_eq!(clean.pool, None);

    let ci = load(dir.path(), Some("ci")).expect("loads with the profile");
    assert_eq!(policy_of(&ci, "clean").retries, 0);
    assert_eq!(policy_of(&ci, "raw").timeout, Some(Duration::from_secs(5)));

    // Retrying differently does not make the data stale.
    let fp = |p: &sluice_project::Project| {
        p.assets
            .values()
            .map(|a| a.fingerprint.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(fp(&p), fp(&ci));
}

#[test]
fn policy_mistakes_are_reported_where_they_are_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[project]\nname = \"p\"\npool = \"db\"\n\n\
        [pools]\ndb = 0\n\n\
        [sources.raw]\npath = \"raw.csv\"\nretries = 500\npool = \"dbb\"\n\n\
        [tables.clean]\nsql = \"SELECT * FROM raw\"\nretry_on = \"sometimes\"\ntimeout = \"soon\"\n\n\
        [tables.slow]\nsql = \"SELECT * FROM raw\"\nretry_delay = \"1h\"\nmax_delay = \"1m\"\ntimeout = \"0s\"\n";
    write(dir.path(), &[("sluice.toml", text), DATA]);
    let e = load(dir.path(), None).expect_err("mistakes").to_string();
    for (said, line) in [
        ("`pool` is set per asset", 3),
        ("pool `db` has a limit of 0", 6),
        ("500 retries", 10),
        ("pool `dbb`, which is not defined", 11),
        ("unknown variant `sometimes`", 15),
        ("soon", 16),
        ("`max_delay` (1m) is shorter than `retry_delay` (1h)", 21),
        ("a `timeout` of zero", 22),
    ] {
        let at = format!("sluice.toml:{line}:");
        assert!(
            e.lines().any(|l| l.contains(said) && l.contains(&at)),
            "`{said}` at line {line} in:\n{e}"
        );
    }
    assert!(e.contains("the pools are: db"), "{e}");
}
