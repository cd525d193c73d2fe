//! Tags: `tags = [...]` beside any asset's keys (a model's predictions' in
//! their own section), out of every fingerprint, refused in `[project]`; and
//! `tag:NAME` (`tag:NAME+`) in a schedule's or an alert's `assets` selecting
//! the tagged assets, an unknown tag reported where it is written with the
//! known ones.

use sluice_project::load;

use crate::triggers::{FILES, KINDS, every_kind};
use crate::write;

fn selected(targets: &[sluice_project::ScheduleTarget]) -> Vec<(String, bool)> {
    targets
        .iter()
        .map(|t| (t.asset.to_string(), t.downstream))
        .collect()
}

#[test]
fn every_kind_of_asset_takes_tags_and_no_fingerprint_holds_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = every_kind("tags = [\"nightly\", \"finance\", \"nightly\"]");
    write(dir.path(), &[("sluice.toml", &text), FILES[0], FILES[1]]);
    let with = load(dir.path(), None).expect("loads");
    write(dir.path(), &[("sluice.toml", &every_kind(""))]);
    let without = load(dir.path(), None).expect("loads");
    for name in KINDS {
        let a = with.asset(name).expect("asset");
        assert_eq!(a.tags, ["finance", "nightly"], "{name}: sorted, once each");
        let b = without.asset(name).expect("asset");
        assert!(b.tags.is_empty(), "{name}");
        assert_eq!(
            a.fingerprint, b.fingerprint,
            "a tag does not change what `{name}` holds"
        );
    }
}

#[test]
fn schedules_and_alerts_select_assets_by_tag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = r#"[project]
name = "p"

[sources.events]
path = "events.csv"
tags = ["raw"]

[tables.daily]
sql = "SELECT * FROM events"
tags = ["nightly"]

[tables.weekly]
sql = "SELECT * FROM events"
tags = ["nightly", "finance"]

[tables.report]
sql = "SELECT * FROM daily"

[schedules.night]
cron = "0 2 * * *"
assets = ["tag:nightly", "events"]

[alerts.finance]
on = ["failure"]
assets = ["tag:finance+", "tag:raw"]
webhook = { url = "${HOOK_URL}" }
"#;
    write(dir.path(), &[("sluice.toml", text), FILES[0]]);
    let p = load(dir.path(), None).expect("loads");
    assert_eq!(
        selected(&p.schedules["night"].assets),
        [
            ("daily".to_string(), false),
            ("weekly".to_string(), false),
            ("events".to_string(), false)
        ]
    );
    assert_eq!(
        selected(&p.alerts["finance"].assets),
        [("weekly".to_string(), true), ("events".to_string(), false)]
    );
}

#[test]
fn tag_mistakes_are_reported_where_they_are_written_with_the_known_tags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = r#"[project]
name = "p"
tags = ["all"]

[sources.events]
path = "events.csv"
tags = ["raw", "has space"]

[tables.daily]
sql = "SELECT * FROM events"
tags = ["nightly"]

[schedules.night]
cron = "0 2 * * *"
assets = ["tag:nighlty"]

[alerts.oncall]
on = ["failure"]
assets = ["daily", "tag:"]
webhook = { url = "${HOOK_URL}" }
"#;
    write(dir.path(), &[("sluice.toml", text), FILES[0]]);
    let e = load(dir.path(), None).expect_err("mistakes").to_string();
    for (said, line) in [
        ("`tags` is set per asset, not in `[project]`", 3),
        ("`has space` is not a tag", 7),
        ("unknown tag `nighlty` in schedule `night`", 15),
        ("`tag:` names no tag in alert `oncall`", 19),
    ] {
        let at = format!("sluice.toml:{line}:");
        assert!(
            e.lines().any(|l| l.contains(said) && l.contains(&at)),
            "`{said}` at line {line} in:\n{e}"
        );
    }
    assert!(e.contains("help: the tags are: nightly, raw"), "{e}");
}
