//! `http` and `crawl` sources in the project file: the connector is chosen by
//! its key, every mistake of the section is reported at once with what to do,
//! and the fetch and parse options are fingerprinted apart.

use sluice_project::{Definition, SourceDef, load};

use crate::write;

fn compile(source: &str) -> Result<sluice_project::Project, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "sluice.toml",
            &format!("[project]\nname = \"p\"\n\n[sources.api]\n{source}"),
        )],
    );
    load(dir.path(), None).map_err(|d| d.to_string())
}

fn fingerprints(source: &str) -> (String, String) {
    let p = compile(source).expect("compiles");
    match &p.asset("api").expect("api").definition {
        Definition::Source(d) => match d.as_ref() {
            SourceDef::Http(h) => (h.fetch_fingerprint.clone(), h.parse_fingerprint.clone()),
            _ => unreachable!("an http source"),
        },
        _ => unreachable!("a source"),
    }
}

#[test]
fn an_http_section_compiles_with_its_paging_auth_and_records() {
    let p = compile(
        "records = \"$.data.items\"\ncolumns = { id = \"int64\" }\n\
         http = { url = \"https://api.test/v1/users\", auth = { bearer = \"${TOKEN}\" }, \
         paging = { style = \"cursor\", cursor = \"$.meta.next\" } }\n",
    )
    .expect("compiles");
    let Definition::Source(d) = &p.asset("api").expect("api").definition else {
        panic!("a source");
    };
    let SourceDef::Http(h) = d.as_ref() else {
        panic!("an http source");
    };
    assert_eq!(h.records.as_ref().map(|r| r.steps.len()), Some(2));
    assert!(h.cursor.is_some());
}

#[test]
fn every_mistake_of_an_http_section_is_reported_with_what_to_do() {
    let err = compile(
        "format = \"csv\"\nrecords = \"items\"\n\
         http = { url = \"ftp://api.test/x\", methd = \"GET\", auth = { bearer = \"plain-token\" }, \
         paging = { style = \"offset\" }, rate_limit = 0 }\n",
    )
    .expect_err("mistakes");
    for wanted in [
        "unknown field `methd`",
        "is not an http:// or https:// URL",
        "`http.auth.bearer` is written in the project file",
        "offset paging needs `limit`",
        "`records` applies only to `format = \"json\"`",
        "requests per second must be more than 0",
    ] {
        assert!(err.contains(wanted), "missing {wanted:?} in:\n{err}");
    }
}

#[test]
fn a_crawl_must_extract_or_download_and_its_regexes_compile() {
    let err = compile("crawl = { start = [\"https://x.test/\"], follow = \"([\" }\n")
        .expect_err("mistakes");
    assert!(err.contains("`crawl.follow` is not a valid regex"), "{err}");
    assert!(err.contains("needs `extract"), "{err}");
    assert!(
        compile("crawl = { start = [\"https://x.test/\"], extract = { table = \"table\" } }\n")
            .is_ok()
    );
}

#[test]
fn fetch_and_parse_options_are_fingerprinted_apart() {
    let base = "http = { url = \"https://api.test/u\", retries = 1 }\n";
    let (fetch, parse) = fingerprints(base);
    // How requests are sent is in neither.
    let (f2, p2) =
        fingerprints("http = { url = \"https://api.test/u\", retries = 5, rate_limit = 2 }\n");
    assert_eq!((&f2, &p2), (&fetch, &parse));
    // A parse option moves only the parse fingerprint.
    let (f3, p3) = fingerprints(&format!("columns = {{ id = \"int64\" }}\n{base}"));
    assert_eq!(f3, fetch);
    assert_ne!(p3, parse);
    // A fetch option moves only the fetch fingerprint.
    let (f4, p4) =
        fingerprints("http = { url = \"https://api.test/u\", params = { q = \"a\" } }\n");
    assert_ne!(f4, fetch);
    assert_eq!(p4, parse);
}
