//! `[sources.NAME]` with `http` or `crawl`: sources read over the network.
//!
//! Each compiles to a definition with two fingerprints: `fetch` (what is
//! fetched: URL, headers, paging...) and `parse` (how the stored payloads are
//! read: format, records, columns, contract). The runner compares them with the
//! ones its published version was built from, so that changing only the parse
//! options re-parses the raw zone without fetching. How requests are sent
//! (rate limit, concurrency, timeout, retries, delay) is in neither: it does
//! not change what comes back.

use sluice_core::{AssetKind, Location, Secret, parse_type};

use super::{Builder, Definition, SourceDef, fingerprint};
use crate::diag::Diagnostic;
use crate::raw::{CrawlSection, CrawlSourceSection, HttpFormat, HttpSourceSection, PagingStyle};

/// Bumped when parsing the same payloads gives other rows than before.
const PARSE_RULES: &str = "network-parse-1";

/// A compiled HTTP source.
#[derive(Debug, Clone)]
pub struct HttpDef {
    /// The settings as written.
    pub config: HttpSourceSection,
    /// The format of the payloads.
    pub format: HttpFormat,
    /// Where the records are in a JSON page (`None`: the page itself).
    pub records: Option<JsonPath>,
    /// Cursor paging: where the next cursor is.
    pub cursor: Option<JsonPath>,
    /// Where the total number of records is.
    pub total: Option<JsonPath>,
    /// The hash of what is fetched.
    pub fetch_fingerprint: String,
    /// The hash of how payloads are parsed.
    pub parse_fingerprint: String,
}

/// A compiled crawl source.
#[derive(Debug, Clone)]
pub struct CrawlDef {
    /// The settings as written.
    pub config: CrawlSourceSection,
    /// The hash of what is fetched.
    pub fetch_fingerprint: String,
    /// The hash of how payloads are parsed.
    pub parse_fingerprint: String,
}

/// A path to values in a JSON document: the small subset APIs need, written
/// `$.data.items`, `data.items[*]`, `$.results[0].rows` or `$` — object keys
/// and array indexes; `[*]` (every element) only as the last step, where it
/// means what the bare array means. No filters or recursive descent: a record
/// list is one place in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    /// As written.
    pub text: String,
    /// The steps from the root.
    pub steps: Vec<PathStep>,
}

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An object's key.
    Key(String),
    /// An array's element.
    Index(usize),
}

impl JsonPath {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let rest = t.strip_prefix('$').unwrap_or(t);
        let rest = rest.strip_suffix("[*]").unwrap_or(rest);
        let mut steps = vec![];
        let mut chars = rest.chars().peekable();
        let mut key = String::new();
        let flush = |key: &mut String, steps: &mut Vec<PathStep>| {
            if !key.is_empty() {
                steps.push(PathStep::Key(std::mem::take(key)));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '.' => flush(&mut key, &mut steps),
                '[' => {
                    flush(&mut key, &mut steps);
                    let inner: String = chars.by_ref().take_while(|c| *c != ']').collect();
                    let inner = inner.trim();
                    if let Ok(i) = inner.parse::<usize>() {
                        steps.push(PathStep::Index(i));
                    } else if let Some(k) = inner
                        .strip_prefix(['\'', '"'])
                        .and_then(|k| k.strip_suffix(['\'', '"']))
                    {
                        steps.push(PathStep::Key(k.to_string()));
                    } else {
                        return Err(format!(
                            "`{text}`: `[{inner}]` is not supported; write a key (`.items`), an \
                             index (`[0]`) or `[*]` at the end"
                        ));
                    }
                }
                c => key.push(c),
            }
        }
        flush(&mut key, &mut steps);
        Ok(JsonPath {
            text: text.to_string(),
            steps,
        })
    }
}

/// Compiles an HTTP source.
pub(super) fn compile_http(
    b: &mut Builder<'_>,
    name: &str,
    at: Location,
    config: HttpSourceSection,
) {
    let Some(asset_name) = b.claim(name, AssetKind::Source, &at) else {
        return;
    };
    let mut problems: Vec<(String, String)> = vec![];
    let mut path = |key: &str, text: Option<&String>| -> Option<JsonPath> {
        let text = text?;
        match JsonPath::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push((
                    format!("`{key}`: {e}"),
                    "write a path such as `$.data.items`".into(),
                ));
                None
            }
        }
    };
    let records = path("records", config.records.as_ref());
    let paging = config.http.paging.as_ref();
    let cursor = path("paging.cursor", paging.and_then(|p| p.cursor.as_ref()));
    let total = path("paging.total", paging.and_then(|p| p.total.as_ref()));
    let format = config.format.unwrap_or(HttpFormat::Json);
    check_http(&config, format, &mut problems);
    check_bounds(&config, &mut problems);
    for (message, help) in problems {
        b.diags
            .push(Diagnostic::new(at.clone(), message).with_help(help));
    }
    check_columns(b, &at, config.columns.iter(), config.timezone.as_deref());

    let fetch = fetch_fingerprint(
        "http",
        &config.http,
        &["rate_limit", "concurrency", "timeout", "retries", "backoff"],
    );
    let mut parse_part = serde_json::to_value(&config).unwrap_or_default();
    if let Some(o) = parse_part.as_object_mut() {
        o.remove("http");
    }
    let parse = fingerprint(&["http-parse", &parse_part.to_string(), PARSE_RULES]);
    let description = config.description.clone();
    let contract = b.contract(config.contract.as_ref());
    let partitioned = config
        .partitioned
        .as_ref()
        .and_then(|p| super::partitions::compile(b, p));
    let def = HttpDef {
        config,
        format,
        records,
        cursor,
        total,
        fetch_fingerprint: fetch.clone(),
        parse_fingerprint: parse.clone(),
    };
    let asset = b.add(
        asset_name,
        at,
        Definition::Source(Box::new(SourceDef::Http(Box::new(def)))),
        fingerprint(&["http", &fetch, &parse]),
    );
    asset.contract = contract;
    asset.description = description;
    asset.partitioned = partitioned;
}

/// `{start}` and `{end}` in the request: well formed, and only in a
/// partitioned source, whose partition's bounds they are.
fn check_bounds(config: &HttpSourceSection, problems: &mut Vec<(String, String)>) {
    let http = &config.http;
    let texts = std::iter::once(("http.url".to_string(), &http.url))
        .chain(
            http.params
                .iter()
                .map(|(k, v)| (format!("http.params.{k}"), v)),
        )
        .chain(http.body.iter().map(|b| ("http.body".to_string(), b)));
    for (key, text) in texts {
        match sluice_core::partition::check_placeholders(&text.redacted()) {
            Ok(true) if config.partitioned.is_none() => problems.push((
                format!("`{key}` holds `{{start}}` or `{{end}}`, the bounds of a partition, but the source is not partitioned"),
                "add `partitioned = { by = \"day\", column = \"...\", start = \"...\" }` to the source".into(),
            )),
            Ok(_) => {}
            Err(e) => problems.push((
                format!("`{key}`: {e}"),
                "write `{start}`, `{end}` or a chrono format such as `{start:%Y%m%d}`".into(),
            )),
        }
    }
}

/// The mistakes compiling can see in an HTTP source, as (message, help).
fn check_http(
    config: &HttpSourceSection,
    format: HttpFormat,
    problems: &mut Vec<(String, String)>,
) {
    let http = &config.http;
    let mut say = |m: String, h: &str| problems.push((m, h.to_string()));
    check_url(&http.url, "http.url", &mut say);
    if let Some(m) = &http.method
        && !matches!(m.to_ascii_uppercase().as_str(), "GET" | "POST")
    {
        say(
            format!("`http.method` = `{m}` is not supported"),
            "write `GET` or `POST`",
        );
    }
    if let Some(auth) = &http.auth {
        let kinds = [
            auth.bearer.is_some(),
            auth.user.is_some() || auth.password.is_some(),
            auth.header.is_some() || auth.value.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            say(
                "`http.auth` must be one of `bearer`, `user` with `password`, or `header` with `value`".into(),
                "write `auth = { bearer = \"${TOKEN}\" }`, `{ user = \"me\", password = \"${PASSWORD}\" }` or `{ header = \"X-Api-Key\", value = \"${KEY}\" }`",
            );
        }
        if (auth.user.is_some() != auth.password.is_some())
            || (auth.header.is_some() != auth.value.is_some())
        {
            say(
                "`http.auth`: `user` needs `password`, and `header` needs `value`".into(),
                "write both",
            );
        }
        for (key, secret) in [
            ("bearer", &auth.bearer),
            ("password", &auth.password),
            ("value", &auth.value),
        ] {
            if let Some(s) = secret
                && s.variables().is_empty()
            {
                say(
                    format!("`http.auth.{key}` is written in the project file"),
                    "put the secret in an environment variable and write `\"${NAME}\"`; the project file is not a place for secrets",
                );
            }
        }
    }
    if let Some(p) = &http.paging {
        match p.style {
            PagingStyle::Offset if p.limit.is_none() => say(
                "offset paging needs `limit`, the records per page".into(),
                "add `limit = 100` (and `limit_param` if the API does not call it `limit`)",
            ),
            PagingStyle::Cursor if p.cursor.is_none() => say(
                "cursor paging needs `cursor`, where the next cursor is in a response".into(),
                "add `cursor = \"$.next_cursor\"`",
            ),
            _ => {}
        }
        if p.max_pages == Some(0) || p.limit == Some(0) {
            say(
                "`paging`: `max_pages` and `limit` must be at least 1".into(),
                "raise it",
            );
        }
    }
    if let Some(r) = http.rate_limit
        && !(r > 0.0 && r.is_finite())
    {
        say(
            format!("`http.rate_limit` = {r}: requests per second must be more than 0"),
            "write e.g. `rate_limit = 5`",
        );
    }
    if http.concurrency == Some(0) {
        say(
            "`http.concurrency` must be at least 1".into(),
            "write e.g. `concurrency = 4`",
        );
    }
    if format != HttpFormat::Json {
        if config.records.is_some() {
            say(
                "`records` applies only to `format = \"json\"`".into(),
                "remove it",
            );
        }
        if http
            .paging
            .as_ref()
            .is_some_and(|p| p.cursor.is_some() || p.total.is_some())
        {
            say(
                "`paging.cursor` and `paging.total` read a JSON response".into(),
                "use page, offset or link paging for NDJSON and CSV",
            );
        }
    }
    if format != HttpFormat::Csv && (config.delimiter.is_some() || !config.null.is_empty()) {
        say(
            "`delimiter` and `null` apply only to `format = \"csv\"`".into(),
            "remove them",
        );
    }
}

/// The URL starts with `http://` or `https://` (after `${VAR}`s, which
/// compiling does not expand: a variable may hold the whole URL).
fn check_url(url: &Secret, key: &str, say: &mut impl FnMut(String, &str)) {
    let shown = url.redacted();
    if shown.starts_with("${") {
        return;
    }
    let lower = shown.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        say(
            format!("`{key}` = `{shown}` is not an http:// or https:// URL"),
            "write the full URL, e.g. `https://api.example.com/v1/users`",
        );
    }
}

/// Every `columns` entry is a type word.
fn check_columns<'c>(
    b: &mut Builder<'_>,
    at: &Location,
    columns: impl Iterator<Item = (&'c String, &'c String)>,
    timezone: Option<&str>,
) {
    for (column, word) in columns {
        if parse_type(word, timezone.unwrap_or("UTC")).is_none() {
            b.diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("column `{column}`: unknown type `{word}`"),
                )
                .with_help(
                    "use one of string, bool, int32, int64, float64, date, timestamp, decimal(P,S)",
                ),
            );
        }
    }
}

/// The hash of a section's fetch options: everything but the keys that say
/// how requests are sent (`how`).
fn fetch_fingerprint<T: serde::Serialize>(kind: &str, section: &T, how: &[&str]) -> String {
    let mut v = serde_json::to_value(section).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        for k in how {
            o.remove(*k);
        }
    }
    fingerprint(&[kind, &v.to_string()])
}

/// Compiles a crawl source.
pub(super) fn compile_crawl(
    b: &mut Builder<'_>,
    name: &str,
    at: Location,
    config: CrawlSourceSection,
) {
    let Some(asset_name) = b.claim(name, AssetKind::Source, &at) else {
        return;
    };
    let mut problems: Vec<(String, String)> = vec![];
    check_crawl(&config.crawl, &mut problems);
    for (message, help) in problems {
        b.diags
            .push(Diagnostic::new(at.clone(), message).with_help(help));
    }
    check_columns(b, &at, config.columns.iter(), None);
    let fetch = fetch_fingerprint(
        "crawl",
        &config.crawl,
        &["extract", "delay", "timeout", "retries"],
    );
    let parse = fingerprint(&[
        "crawl-parse",
        &serde_json::to_string(&(&config.crawl.extract, &config.columns, &config.contract))
            .unwrap_or_default(),
        PARSE_RULES,
    ]);
    let description = config.description.clone();
    let contract = b.contract(config.contract.as_ref());
    let def = CrawlDef {
        config,
        fetch_fingerprint: fetch.clone(),
        parse_fingerprint: parse.clone(),
    };
    let asset = b.add(
        asset_name,
        at,
        Definition::Source(Box::new(SourceDef::Crawl(Box::new(def)))),
        fingerprint(&["crawl", &fetch, &parse]),
    );
    asset.contract = contract;
    asset.description = description;
}

fn check_crawl(crawl: &CrawlSection, problems: &mut Vec<(String, String)>) {
    let mut say = |m: String, h: &str| problems.push((m, h.to_string()));
    if crawl.start.is_empty() {
        say(
            "`crawl.start` lists no page".into(),
            "write `start = [\"https://example.com/stats/\"]`",
        );
    }
    for url in &crawl.start {
        check_url(&Secret::new(url.clone()), "crawl.start", &mut say);
    }
    for (key, re) in [("follow", &crawl.follow), ("download", &crawl.download)] {
        if let Some(re) = re
            && let Err(e) = regex::Regex::new(re)
        {
            say(
                format!("`crawl.{key}` is not a valid regex: {e}"),
                "fix the pattern",
            );
        }
    }
    match (&crawl.extract, &crawl.download) {
        (Some(_), Some(_)) => say(
            "`crawl.extract` and `crawl.download` exclude each other".into(),
            "a crawl either extracts HTML tables or downloads files: keep one",
        ),
        (None, None) => say(
            "a crawl needs `extract = { table = \"css selector\" }` or `download = \"regex\"`"
                .into(),
            "say what the crawl reads: the tables of its pages, or the files they link",
        ),
        _ => {}
    }
    if crawl.max_pages == Some(0) {
        say("`crawl.max_pages` must be at least 1".into(), "raise it");
    }
}
