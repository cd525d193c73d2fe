//! Crawl sources through the real binary, against a fixture site on
//! 127.0.0.1:0 (team pages with batting tables, as the seed's baseball
//! crawler reads): tables extracted, links followed to their depth,
//! robots.txt honoured, the user agent sent, linked files downloaded, and a
//! broken page reported with its URL and the page that links to it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{asset, ok, run_json};
use crate::web::{Req, Resp, Web, serve};

fn batting(rows: &[(&str, i64, &str)]) -> String {
    let body: String = rows
        .iter()
        .map(|(p, hr, avg)| format!("<tr><td>{p}</td><td> {hr} </td><td>{avg}</td></tr>\n"))
        .collect();
    format!(
        "<table class=\"stats\"><thead><tr><th>Player</th><th>HR</th><th>AVG</th></tr></thead>\n\
         <tbody>{body}</tbody></table><table class=\"ads\"><tr><td>buy</td></tr></table>"
    )
}

/// The fixture site: an index of teams, two team pages (one linking a page
/// deeper), a private page robots.txt disallows, two CSV files.
fn site(broken_link: bool) -> Web {
    let mut pages: BTreeMap<&'static str, String> = BTreeMap::new();
    pages.insert(
        "/robots.txt",
        "User-agent: *\nDisallow: /private/\n".to_string(),
    );
    let extra = if broken_link {
        "<a href=\"/teams/gone.html\">gone</a>"
    } else {
        ""
    };
    pages.insert(
        "/index.html",
        format!(
            "<html><body><h1>Teams</h1>\
             <a href=\"teams/nyy.html\">Yankees</a> <a href=\"/teams/bos.html#roster\">Red Sox</a>\
             <a href=\"/private/payroll.html\">payroll</a> <a href=\"/files/1998.csv\">1998</a>\
             <a href=\"https://elsewhere.invalid/teams/x.html\">x</a>{extra}</body></html>"
        ),
    );
    pages.insert(
        "/teams/nyy.html",
        format!(
            "<html><body>{}<a href=\"/teams/nyy-1927.html\">1927</a></body></html>",
            batting(&[("Jeter", 19, ".324"), ("Williams", 26, ".339")])
        ),
    );
    pages.insert(
        "/teams/bos.html",
        batting(&[("Garciaparra", 35, ".323"), ("Vaughn", 40, ".337")]),
    );
    pages.insert("/teams/nyy-1927.html", batting(&[("Ruth", 60, ".356")]));
    pages.insert("/private/payroll.html", batting(&[("Secret", 0, ".000")]));
    pages.insert(
        "/files/1998.csv",
        "team,wins\nNYY,114\nBOS,92\n".to_string(),
    );
    serve(move |r: &Req| match pages.get(r.path()) {
        Some(body) if r.path().ends_with(".csv") => Resp::new(200, body.clone()),
        Some(body) => Resp::html(body.clone()),
        None => Resp::new(404, "not here"),
    })
}

fn project(crawl: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!("[project]\nname = \"baseball\"\n\n[sources.batting]\n{crawl}"),
    )
    .expect("write");
    dir
}

fn players(dir: &std::path::Path) -> Vec<Value> {
    let out = ok(
        dir,
        &[
            "query",
            "SELECT \"Player\", \"HR\" FROM batting ORDER BY \"Player\"",
            "--format",
            "json",
        ],
    );
    serde_json::from_str(&out).expect("json")
}

#[test]
fn tables_are_extracted_from_followed_pages_within_robots_txt() {
    let web = site(false);
    let dir = project(&format!(
        "[sources.batting.crawl]\nstart = [\"{}\"]\nfollow = \"\\\\.html$\"\nmax_depth = 1\n\
         extract = {{ table = \"table.stats\", url_column = \"page\" }}\n",
        web.url("/index.html")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    assert_eq!(
        players(dir.path()),
        vec![
            json!({"Player": "Garciaparra", "HR": 35}),
            json!({"Player": "Jeter", "HR": 19}),
            json!({"Player": "Vaughn", "HR": 40}),
            json!({"Player": "Williams", "HR": 26}),
        ]
    );
    // robots.txt was asked first, its disallowed page never; depth 2 not reached.
    let seen = web.seen();
    assert_eq!(seen[0].path(), "/robots.txt");
    assert_eq!(web.count("/private/payroll.html"), 0);
    assert_eq!(web.count("/teams/nyy-1927.html"), 0);
    assert!(
        seen.iter().all(|r| r
            .header("user-agent")
            .is_some_and(|a| a.starts_with("sluice/"))),
        "{seen:?}"
    );
    let pages = ok(
        dir.path(),
        &[
            "query",
            "SELECT DISTINCT page FROM batting ORDER BY page",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        pages,
        format!(
            "page\n{}\n{}\n",
            web.url("/teams/bos.html"),
            web.url("/teams/nyy.html")
        )
    );
    // Every page fetched, robots.txt included, is in the raw zone.
    let raw: Vec<Value> =
        serde_json::from_str(&ok(dir.path(), &["raw", "ls", "batting", "--json"])).expect("json");
    let urls: Vec<&str> = raw[0]["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["url"].as_str())
        .collect();
    assert_eq!(urls.len(), 4, "{urls:?}");
    assert!(urls.contains(&web.url("/robots.txt").as_str()));
}

#[test]
fn links_are_followed_to_the_depth_asked() {
    let web = site(false);
    let dir = project(&format!(
        "[sources.batting.crawl]\nstart = [\"{}\"]\nfollow = \"/teams/\"\nmax_depth = 2\n\
         extract = {{ table = \"table.stats\" }}\n",
        web.url("/index.html")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    let names: Vec<String> = players(dir.path())
        .iter()
        .map(|p| p["Player"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        names,
        ["Garciaparra", "Jeter", "Ruth", "Vaughn", "Williams"]
    );
    assert_eq!(web.count("/teams/nyy-1927.html"), 1);
}

#[test]
fn linked_files_are_downloaded_and_read() {
    let web = site(false);
    let dir = project(&format!(
        "columns = {{ wins = \"int32\" }}\n[sources.batting.crawl]\nstart = [\"{}\"]\ndownload = \"\\\\.csv$\"\n",
        web.url("/index.html")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    let out = ok(
        dir.path(),
        &[
            "query",
            "SELECT team, wins FROM batting ORDER BY team",
            "--format",
            "csv",
        ],
    );
    assert_eq!(out, "team,wins\nBOS,92\nNYY,114\n");
    assert_eq!(
        web.count("/teams/nyy.html"),
        0,
        "no `follow`: only the start page"
    );
}

#[test]
fn a_broken_page_is_reported_with_its_url_and_where_it_is_linked() {
    let web = site(true);
    let dir = project(&format!(
        "[sources.batting.crawl]\nstart = [\"{}\"]\nfollow = \"/teams/\"\nretries = 0\n\
         extract = {{ table = \"table.stats\" }}\n",
        web.url("/index.html")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(!ok_);
    let err = asset(&summary, "batting")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(err.contains(&web.url("/teams/gone.html")), "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(
        err.contains(&format!("linked from {}", web.url("/index.html"))),
        "{err}"
    );
}
