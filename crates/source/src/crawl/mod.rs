//! Crawl sources: web pages walked from start pages into the raw zone
//! ([`crawl`]), then parsed from the stored pages ([`parse`]): the HTML tables
//! a CSS selector picks (`extract.rs`), or the CSV/JSON files the pages link
//! to, read by the file readers.
//!
//! The crawl walks breadth first: links whose absolute URL matches `follow`
//! are followed up to `max_depth`, files matching `download` are fetched from
//! any page walked, at most `max_pages` requests in all, and only on the
//! hosts of the start pages. It asks each host's
//! `robots.txt` first (read by `texting_robots`, the user agent's product
//! token matched against its groups): a disallowed URL is skipped, a
//! `Crawl-delay` longer than `delay` is kept, a missing robots.txt (4xx)
//! allows everything, and one that cannot be fetched (5xx, no answer)
//! disallows the host, as RFC 9309 says. It sends `User-Agent: sluice/<version>`
//! unless `user_agent` says otherwise.

mod extract;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use regex::Regex;
use sluice_project::compile::format_of;
use sluice_project::raw::FileSourceSection;
use sluice_project::{CrawlDef, FilesDef};
use tokio::time::Instant;

use crate::http::{Client, ClientOptions, Masker, Request, default_user_agent};
use crate::raw::{Payload, RawPage, RawSink};
use crate::{Error, FileSource};

/// Pages (downloads included) fetched at most unless `max_pages` says.
const DEFAULT_MAX_PAGES: usize = 100;

/// What the crawl knows of a host's robots.txt.
enum Robots {
    /// Rules to follow.
    Rules(Box<texting_robots::Robot>),
    /// None (4xx): everything is allowed.
    AllowAll,
    /// It could not be fetched: nothing is.
    DisallowAll,
}

struct Host {
    robots: Robots,
    delay: Duration,
    last: Option<Instant>,
}

/// One URL to fetch.
struct Todo {
    url: url::Url,
    depth: u32,
    referrer: Option<String>,
    download: bool,
}

/// Walks the crawl into `sink`; the payloads to parse, in the order fetched
/// (robots.txt files are stored too, and left out of the list).
pub async fn crawl(def: &CrawlDef, sink: &dyn RawSink) -> Result<Vec<RawPage>, Error> {
    let c = &def.config.crawl;
    let regex = |key: &str, re: &Option<String>| -> Result<Option<Regex>, Error> {
        re.as_deref()
            .map(|r| {
                Regex::new(r).map_err(|e| Error::Setting {
                    key: format!("crawl.{key}"),
                    message: e.to_string(),
                    help: "fix the pattern".into(),
                })
            })
            .transpose()
    };
    let follow = regex("follow", &c.follow)?;
    let download = regex("download", &c.download)?;
    let agent = c.user_agent.clone().unwrap_or_else(default_user_agent);
    let client = Client::new(
        ClientOptions {
            timeout: c
                .timeout
                .as_ref()
                .map_or(crate::http::DEFAULT_TIMEOUT, |t| t.value),
            retries: c.retries.unwrap_or(crate::http::DEFAULT_RETRIES),
            backoff: Duration::from_secs(1),
            rate_limit: None,
            user_agent: agent.clone(),
        },
        Masker::default(),
    )?;
    let max_depth = c.max_depth.unwrap_or(1);
    let max_pages = c.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
    let delay = c.delay.as_ref().map_or(Duration::ZERO, |d| d.value);
    let mut queue = VecDeque::new();
    let mut seen = HashSet::new();
    for s in &c.start {
        let url = url::Url::parse(s).map_err(|e| Error::Setting {
            key: "crawl.start".into(),
            message: format!("`{s}` is not a URL: {e}"),
            help: "write full URLs, e.g. `https://example.com/stats/`".into(),
        })?;
        if seen.insert(url.to_string()) {
            queue.push_back(Todo {
                url,
                depth: 0,
                referrer: None,
                download: false,
            });
        }
    }
    // Links are followed (and files downloaded) on the start pages' hosts only.
    let origins: HashSet<String> = queue
        .iter()
        .map(|t: &Todo| t.url.origin().ascii_serialization())
        .collect();
    let mut hosts: HashMap<String, Host> = HashMap::new();
    let mut pages = vec![];
    let mut fetched = 0;
    let mut refused = 0;
    while let Some(todo) = queue.pop_front() {
        if fetched >= max_pages {
            tracing::warn!("stopped the crawl after `max_pages` = {max_pages} pages");
            break;
        }
        let origin = todo.url.origin().ascii_serialization();
        if !hosts.contains_key(&origin) {
            let host = robots(&client, &todo.url, &agent, delay, sink).await?;
            hosts.insert(origin.clone(), host);
        }
        let Some(host) = hosts.get_mut(&origin) else {
            continue;
        };
        let allowed = match &host.robots {
            Robots::Rules(r) => r.allowed(todo.url.as_str()),
            Robots::AllowAll => true,
            Robots::DisallowAll => false,
        };
        if !allowed {
            tracing::info!("robots.txt of {origin} disallows {}: skipped", todo.url);
            refused += 1;
            continue;
        }
        if let Some(last) = host.last {
            tokio::time::sleep_until(last + host.delay).await;
        }
        let request = Request {
            method: reqwest::Method::GET,
            url: todo.url.clone(),
            headers: vec![],
            body: None,
            basic: None,
            validators: sink.previous(todo.url.as_str()),
        };
        let answer = client.send(&request).await;
        host.last = Some(Instant::now());
        fetched += 1;
        let r = answer.map_err(|e| with_referrer(e, todo.referrer.as_deref()))?;
        let extension = if todo.download {
            Path::new(todo.url.path())
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("bin")
                .to_ascii_lowercase()
        } else {
            "html".to_string()
        };
        let role = if todo.download { "download" } else { "page" };
        let payload = Payload {
            url: todo.url.to_string(),
            status: r.status,
            etag: r.etag.clone(),
            last_modified: r.last_modified.clone(),
            content_type: r.content_type.clone(),
            page: Some(pages.len() as u64 + 1),
            depth: Some(todo.depth),
            role,
            extension,
        };
        let (path, body) = if r.status == 304 {
            sink.confirm(&payload)
                .map_err(|source| Error::Raw { source })?
        } else {
            let path = sink
                .store(&payload, &r.body)
                .map_err(|source| Error::Raw { source })?;
            (path, r.body)
        };
        pages.push(RawPage {
            url: todo.url.to_string(),
            page: pages.len() as u64 + 1,
            depth: Some(todo.depth),
            role: role.into(),
            path,
        });
        if todo.download {
            continue;
        }
        for link in extract::links(&body, &todo.url) {
            if !origins.contains(&link.origin().ascii_serialization()) {
                continue;
            }
            let is_download = download.as_ref().is_some_and(|d| d.is_match(link.as_str()));
            let is_followed = !is_download
                && todo.depth < max_depth
                && follow.as_ref().is_some_and(|f| f.is_match(link.as_str()));
            if (is_download || is_followed) && seen.insert(link.to_string()) {
                queue.push_back(Todo {
                    url: link,
                    depth: todo.depth + 1,
                    referrer: Some(todo.url.to_string()),
                    download: is_download,
                });
            }
        }
    }
    tracing::info!(
        "crawled {} pages{}",
        pages.len(),
        if refused > 0 {
            format!(", {refused} skipped by robots.txt")
        } else {
            String::new()
        }
    );
    Ok(pages)
}

/// Names the page that linked to a URL that failed.
fn with_referrer(e: Error, referrer: Option<&str>) -> Error {
    match e {
        Error::Status {
            url,
            status,
            attempts,
            body,
            help,
            ..
        } => Error::Status {
            url,
            status,
            attempts,
            body,
            referrer: referrer.map(str::to_string),
            help: if referrer.is_some() && (400..500).contains(&status) {
                "the page links to a URL that does not answer: narrow `follow`/`download`, or fix the site".into()
            } else {
                help
            },
        },
        other => other,
    }
}

/// Fetches and reads a host's robots.txt (stored in the raw zone as fetched).
async fn robots(
    client: &Client,
    url: &url::Url,
    agent: &str,
    delay: Duration,
    sink: &dyn RawSink,
) -> Result<Host, Error> {
    let mut robots_url = url.clone();
    robots_url.set_path("/robots.txt");
    robots_url.set_query(None);
    robots_url.set_fragment(None);
    let request = Request {
        method: reqwest::Method::GET,
        url: robots_url.clone(),
        headers: vec![],
        body: None,
        basic: None,
        validators: None,
    };
    let host = |robots, d: Duration| Host {
        robots,
        delay: d,
        last: None,
    };
    match client.send(&request).await {
        Ok(r) => {
            let payload = Payload {
                url: robots_url.to_string(),
                status: r.status,
                etag: r.etag.clone(),
                last_modified: r.last_modified.clone(),
                content_type: r.content_type.clone(),
                page: None,
                depth: None,
                role: "robots",
                extension: "txt".into(),
            };
            sink.store(&payload, &r.body)
                .map_err(|source| Error::Raw { source })?;
            // Groups are matched by the product token (`sluice` of `sluice/0.1`).
            let token = agent.split(['/', ' ']).next().unwrap_or(agent);
            match texting_robots::Robot::new(token, &r.body) {
                Ok(robot) => {
                    let crawl_delay = robot
                        .delay
                        .map(|d| Duration::from_secs_f32(d.clamp(0.0, 60.0)))
                        .unwrap_or_default();
                    Ok(host(Robots::Rules(Box::new(robot)), delay.max(crawl_delay)))
                }
                Err(e) => {
                    tracing::warn!(
                        "{robots_url} cannot be read ({e}); the crawl follows no rule of it"
                    );
                    Ok(host(Robots::AllowAll, delay))
                }
            }
        }
        Err(Error::Status { status, .. }) if (400..500).contains(&status) && status != 429 => {
            Ok(host(Robots::AllowAll, delay))
        }
        Err(e) => {
            tracing::warn!(
                "{robots_url} could not be fetched, so nothing of {} is crawled (RFC 9309): {e}",
                url.origin().ascii_serialization()
            );
            Ok(host(Robots::DisallowAll, delay))
        }
    }
}

/// Reads the crawled payloads into a table: the tables `extract` selects, or
/// the downloaded files.
pub fn parse(
    def: &CrawlDef,
    pages: &[RawPage],
) -> Result<(SchemaRef, Arc<dyn TableProvider>), Error> {
    if let Some(ex) = &def.config.crawl.extract {
        return extract::tables(def, ex, pages);
    }
    let files: Vec<&RawPage> = pages.iter().filter(|p| p.role == "download").collect();
    let Some(first) = files.first() else {
        return Err(Error::Setting {
            key: "crawl.download".into(),
            message: "the crawl found no file to download".into(),
            help: "check `start`, `follow` and `download`: no link matched".into(),
        });
    };
    let format = format_of(&first.path).ok_or_else(|| Error::Setting {
        key: "crawl.download".into(),
        message: format!("cannot tell the format of {}", first.url),
        help: "download only .csv, .json or .parquet files".into(),
    })?;
    if let Some(other) = files.iter().find(|p| format_of(&p.path) != Some(format)) {
        return Err(Error::Setting {
            key: "crawl.download".into(),
            message: format!("{} is not in the format of {}", other.url, first.url),
            help: "make `download` match files of one format".into(),
        });
    }
    let config = FileSourceSection {
        path: toml::Spanned::new(0..0, first.path.display().to_string()),
        format: Some(format),
        delimiter: None,
        quote: None,
        header: None,
        names: None,
        null: vec![],
        columns: def.config.columns.clone(),
        infer_rows: None,
        timezone: None,
        widths: None,
        formats: Default::default(),
        partitioned: None,
        contract: None,
        description: None,
    };
    let files_def = FilesDef {
        config,
        format,
        pattern: first.path.clone(),
    };
    let source =
        FileSource::open_files(&files_def, files.iter().map(|p| p.path.clone()).collect())?;
    let provider = source.table_provider().map_err(|e| Error::Setting {
        key: "crawl.download".into(),
        message: e.to_string(),
        help: "check the downloaded files".into(),
    })?;
    Ok((source.schema(), provider))
}
