//! Issue 14 §3: a profile overrides any setting of `[project]` and any setting
//! of a source, and its mistakes are reported in the profile, chosen or not.

use sluice_project::{Definition, SourceDef, load};

use crate::write;

const PROJECT: &str = r#"[project]
name = "shop"
concurrency = 2

[profiles.prod]
name = "shop-prod"
concurrency = 1

[profiles.prod.sources.orders]
path = "prod/orders.csv"
columns = { amount = "float64" }

[sources.orders]
path = "orders.csv"
columns = { id = "string" }
"#;

fn folder(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("prod")).expect("mkdir");
    write(
        dir.path(),
        &[
            ("sluice.toml", text),
            ("orders.csv", "id,amount\n007,3\n"),
            ("prod/orders.csv", "id,amount\n008,4\n"),
        ],
    );
    dir
}

fn orders(project: &sluice_project::Project) -> (sluice_project::FilesDef, String) {
    let asset = project.asset("orders").expect("orders");
    match &asset.definition {
        Definition::Source(def) => match def.as_ref() {
            SourceDef::Files(f) => (f.clone(), asset.fingerprint.clone()),
            _ => unreachable!("orders is a file source"),
        },
        _ => unreachable!("orders is a source"),
    }
}

#[test]
fn a_profile_overrides_project_settings_and_a_sources_settings() {
    let dir = folder(PROJECT);
    let base = load(dir.path(), None).expect("loads");
    let prod = load(dir.path(), Some("prod")).expect("loads with prod");
    assert_eq!((base.name.as_str(), base.concurrency), ("shop", 2));
    assert_eq!((prod.name.as_str(), prod.concurrency), ("shop-prod", 1));
    assert_eq!(prod.profile.as_deref(), Some("prod"));

    let (base_orders, base_fp) = orders(&base);
    let (prod_orders, prod_fp) = orders(&prod);
    assert_eq!(base_orders.pattern, dir.path().join("orders.csv"));
    assert_eq!(prod_orders.pattern, dir.path().join("prod/orders.csv"));
    // Tables merge key by key: the profile adds a column type, the file's stays.
    let columns: Vec<(&str, &str)> = prod_orders
        .config
        .columns
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(columns, vec![("id", "string"), ("amount", "float64")]);
    assert_ne!(base_fp, prod_fp, "another file is another source");
}

#[test]
fn a_mistake_in_a_profile_is_reported_in_the_profile_even_when_not_chosen() {
    let text = PROJECT
        .replace(
            "path = \"prod/orders.csv\"",
            "path = \"prod/orders.csv\"\ndelimter = \";\"",
        )
        .replace(
            "concurrency = 1",
            "concurrency = 1\ndefault_profile = \"prod\"",
        );
    let dir = folder(&text);
    let report = load(dir.path(), None).expect_err("mistakes").to_string();
    let line_of = |needle: &str| {
        text[..text.find(needle).expect("in file")]
            .matches('\n')
            .count()
            + 1
    };
    assert!(
        report.contains(&format!(
            "sluice.toml:{}:1: error: unknown field `delimter`",
            line_of("delimter")
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!("sluice.toml:{}:", line_of("default_profile")))
            && report.contains("a profile cannot choose the default profile"),
        "{report}"
    );
    // Only the profile's mistakes: the base project alone is fine.
    assert_eq!(report.matches("error:").count(), 2, "{report}");
    // Chosen, the profile's mistakes are reported once each.
    let chosen = load(dir.path(), Some("prod"))
        .expect_err("mistakes")
        .to_string();
    assert_eq!(
        chosen.matches("unknown field `delimter`").count(),
        1,
        "{chosen}"
    );
    assert_eq!(chosen.matches("error:").count(), 2, "{chosen}");
}

#[test]
fn an_environment_variable_in_an_overridden_setting_is_expanded_and_named_when_unset() {
    let text = PROJECT.replace(
        "concurrency = 1",
        "concurrency = 1\nwarehouse = \"${SLUICE_TEST_SURELY_UNSET_WH}/wh\"",
    );
    let dir = folder(&text);
    assert!(
        load(dir.path(), None).is_ok(),
        "the base profile reads no variable"
    );
    let report = load(dir.path(), Some("prod"))
        .expect_err("unset")
        .to_string();
    let line = text[..text.find("${SLUICE").expect("in file")]
        .matches('\n')
        .count()
        + 1;
    assert!(
        report.contains(&format!(
            "sluice.toml:{line}:13: error: environment variable `SLUICE_TEST_SURELY_UNSET_WH` is not set"
        )),
        "{report}"
    );
}
