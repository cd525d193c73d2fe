//! File-source options that change how text is split and read: whitespace and
//! fixed-width layouts, per-column date formats (issue 15, item 5).

use sluice_project::{Definition, Delimiter, load};

use crate::write;

fn source_config(section: &str) -> Result<sluice_project::FilesDef, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "sluice.toml",
                &format!("[project]\nname = \"p\"\n\n[sources.log]\npath = \"log.txt\"\n{section}"),
            ),
            ("log.txt", "id date\n00042 20240112\n"),
        ],
    );
    let project = load(dir.path(), None).map_err(|e| e.to_string())?;
    match &project
        .assets
        .values()
        .next()
        .expect("one asset")
        .definition
    {
        Definition::Source(def) => match def.as_ref() {
            sluice_project::SourceDef::Files(def) => Ok(def.clone()),
            _ => unreachable!("the only asset is a file source"),
        },
        _ => unreachable!("the only asset is a source"),
    }
}

#[test]
fn whitespace_delimiter_is_a_word_and_backslash_s_plus_means_the_same() {
    for written in ["\"whitespace\"", r#""\\s+""#, r"'\s+'"] {
        let def = source_config(&format!("delimiter = {written}\n")).expect("compiles");
        assert_eq!(
            def.config.delimiter,
            Some(Delimiter::Whitespace),
            "{written}"
        );
    }
    let def = source_config("delimiter = \";\"\n").expect("compiles");
    assert_eq!(def.config.delimiter, Some(Delimiter::Char(';')));
    let err = source_config("delimiter = \"::\"\n").expect_err("two characters");
    assert!(err.contains("`::` is not a delimiter"), "{err}");
}

#[test]
fn a_one_character_delimiter_keeps_its_fingerprint() {
    // The delimiter is serialized as the bare character it was before it could be
    // a word, so existing sources are not rebuilt for it.
    let def = source_config("delimiter = \";\"\n").expect("compiles");
    let json = serde_json::to_string(&def.config).expect("serializes");
    assert!(json.contains(r#""delimiter":";""#), "{json}");
    assert!(
        !json.contains("widths") && !json.contains("formats"),
        "{json}"
    );
}

#[test]
fn fixed_width_options_are_checked_together() {
    let def = source_config("widths = [6, 9]\nnames = [\"id\", \"date\"]\nheader = false\n")
        .expect("compiles");
    assert_eq!(def.config.widths, Some(vec![6, 9]));
    let err = source_config("widths = [6, 0]\ndelimiter = \"whitespace\"\nnames = [\"id\"]\n")
        .expect_err("three mistakes");
    assert!(
        err.contains("`widths` and `delimiter` exclude each other"),
        "{err}"
    );
    assert!(err.contains("none of them 0"), "{err}");
    assert!(
        err.contains("`names` lists 1 columns but `widths` 2"),
        "{err}"
    );
    assert!(err.contains("3 errors"), "{err}");
}

#[test]
fn date_formats_are_checked_against_chrono_and_declared_types() {
    let def = source_config("formats = { date = \"%Y%m%d\" }\n").expect("compiles");
    assert_eq!(def.config.formats["date"], "%Y%m%d");
    let err = source_config(
        "formats = { date = \"%Q\", id = \"%Y%m%d %H%M\", at = \"%Y%m%d\" }\n\
         columns = { id = \"date\", at = \"int64\" }\n",
    )
    .expect_err("three mistakes");
    assert!(
        err.contains("`formats.date`: `%Q` is not a date or time format"),
        "{err}"
    );
    assert!(
        err.contains("has a time of day, and `columns` makes `id` a date"),
        "{err}"
    );
    assert!(err.contains("`columns` makes `at` int64"), "{err}");
    assert!(err.contains("3 errors"), "{err}");
}

#[test]
fn layouts_and_formats_are_refused_where_they_cannot_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "sluice.toml",
                "[project]\nname = \"p\"\n\n[sources.p]\npath = \"p.parquet\"\nformats = { d = \"%Y\" }\n\n\
                 [sources.j]\npath = \"j.json\"\nwidths = [3]\nformats = { d = \"%d.%m.%Y\" }\n",
            ),
            ("p.parquet", "x"),
            ("j.json", "{}\n"),
        ],
    );
    let err = load(dir.path(), None).expect_err("broken").to_string();
    assert!(
        err.contains("`formats` applies only to CSV and JSON sources"),
        "{err}"
    );
    assert!(
        err.contains("`widths` applies only to CSV sources"),
        "{err}"
    );
    assert!(err.contains("2 errors"), "{err}");
}
