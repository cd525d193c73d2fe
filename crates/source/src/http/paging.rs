//! Walking an API's pages into the raw zone: one request, page numbers,
//! offsets, a cursor from the response, or the `Link` header's next URL —
//! until a page is empty, shorter than `limit`, the `total` is reached, the
//! cursor or next link is missing, or `max_pages`.
//!
//! Page and offset paging request up to `concurrency` pages at once, then
//! look at them in order: pages past the one that ended the walk are dropped
//! unseen (an API may answer a page past the end with its last page again).

use futures::future::join_all;
use serde_json::Value;
use sluice_core::partition::Partition;
use sluice_project::raw::PagingSection;
use sluice_project::{HttpDef, HttpFormat, PagingStyle};

use super::{Prepared, Response, prepare, with_param};
use crate::Error;
use crate::raw::{Payload, RawPage, RawSink};

/// Pages walked at most, unless `max_pages` says otherwise.
const DEFAULT_MAX_PAGES: u64 = 10_000;

/// Fetches the source's pages into `sink`, in order; `since` goes into the
/// `since_param` of every request, and a partition's bounds (`window`) into
/// its `{start}` and `{end}`. Each payload is stored before it is
/// looked at, so a malformed page is in the raw zone to inspect.
pub async fn fetch(
    def: &HttpDef,
    since: Option<&str>,
    window: Option<&Partition>,
    sink: &dyn RawSink,
) -> Result<Vec<RawPage>, Error> {
    let mut p = prepare(def, window)?;
    if let (Some(param), Some(since)) = (&def.config.http.since_param, since) {
        p.base = with_param(&p.base, param, since);
    }
    let walk = Walk { def, p: &p, sink };
    match def.config.http.paging.as_ref() {
        None => Ok(vec![walk.get(p.base.clone(), 1).await?.0]),
        Some(pg) => match pg.style {
            PagingStyle::Page | PagingStyle::Offset => walk.numbered(pg).await,
            PagingStyle::Cursor => walk.cursor(pg).await,
            PagingStyle::Link => walk.link(pg).await,
        },
    }
}

/// What a page says about paging.
#[derive(Debug, Default)]
struct PageInfo {
    records: usize,
    cursor: Option<String>,
    total: Option<u64>,
}

struct Walk<'a> {
    def: &'a HttpDef,
    p: &'a Prepared,
    sink: &'a dyn RawSink,
}

impl Walk<'_> {
    fn max_pages(pg: &PagingSection) -> u64 {
        pg.max_pages.unwrap_or(DEFAULT_MAX_PAGES)
    }

    /// Sends one request (conditional on the stored payload of its URL).
    async fn send(&self, url: url::Url) -> Result<Response, Error> {
        let shown = self.p.client.shown(&url);
        let mut request = self.p.request(url);
        request.validators = self.sink.previous(&shown);
        self.p.client.send(&request).await
    }

    /// Stores an answer, and reads what it says about paging.
    fn keep(
        &self,
        url: &url::Url,
        page: u64,
        r: Response,
    ) -> Result<(RawPage, PageInfo, Option<String>), Error> {
        let shown = self.p.client.shown(url);
        let payload = Payload {
            url: shown.clone(),
            status: r.status,
            etag: r.etag.clone(),
            last_modified: r.last_modified.clone(),
            content_type: r.content_type.clone(),
            page: Some(page),
            depth: None,
            role: "page",
            extension: extension(self.def.format).to_string(),
        };
        let (path, body) = if r.status == 304 {
            self.sink
                .confirm(&payload)
                .map_err(|source| Error::Raw { source })?
        } else {
            let path = self
                .sink
                .store(&payload, &r.body)
                .map_err(|source| Error::Raw { source })?;
            (path, r.body)
        };
        let info = page_info(self.def, &shown, page, &body)?;
        let raw = RawPage {
            url: shown,
            page,
            depth: None,
            role: "page".into(),
            path,
        };
        Ok((raw, info, r.link))
    }

    async fn get(
        &self,
        url: url::Url,
        page: u64,
    ) -> Result<(RawPage, PageInfo, Option<String>), Error> {
        let r = self.send(url.clone()).await?;
        self.keep(&url, page, r)
    }

    async fn numbered(&self, pg: &PagingSection) -> Result<Vec<RawPage>, Error> {
        let offset = pg.style == PagingStyle::Offset;
        let param = pg
            .param
            .clone()
            .unwrap_or_else(|| if offset { "offset" } else { "page" }.to_string());
        let limit_param = pg
            .limit_param
            .clone()
            .or_else(|| offset.then(|| "limit".to_string()));
        let mut base = self.p.base.clone();
        if let (Some(lp), Some(limit)) = (&limit_param, pg.limit) {
            base = with_param(&base, lp, &limit.to_string());
        }
        let url_of = |i: u64| {
            let value = if offset {
                i * pg.limit.unwrap_or(1)
            } else {
                pg.start.unwrap_or(1) + i
            };
            with_param(&base, &param, &value.to_string())
        };
        let at_once = self.def.config.http.concurrency.unwrap_or(1).max(1) as u64;
        let max = Self::max_pages(pg);
        let mut pages = vec![];
        let mut read: u64 = 0;
        let mut total = None;
        let mut next = 0;
        while next < max {
            let window: Vec<u64> = (next..(next + at_once).min(max)).collect();
            let answers = join_all(window.iter().map(|i| self.send(url_of(*i)))).await;
            for (i, answer) in window.iter().zip(answers) {
                let (raw, info, _) = self.keep(&url_of(*i), i + 1, answer?)?;
                pages.push(raw);
                read += info.records as u64;
                total = total.or(info.total);
                let short = pg.limit.is_some_and(|l| (info.records as u64) < l);
                if info.records == 0 || short || total.is_some_and(|t| read >= t) {
                    return Ok(pages);
                }
            }
            next += window.len() as u64;
        }
        tracing::warn!("stopped paging after `max_pages` = {max} pages");
        Ok(pages)
    }

    async fn cursor(&self, pg: &PagingSection) -> Result<Vec<RawPage>, Error> {
        let param = pg.param.clone().unwrap_or_else(|| "cursor".to_string());
        let mut base = self.p.base.clone();
        if let (Some(lp), Some(limit)) = (&pg.limit_param, pg.limit) {
            base = with_param(&base, lp, &limit.to_string());
        }
        let mut url = base.clone();
        let mut pages = vec![];
        let mut last: Option<String> = None;
        for page in 1..=Self::max_pages(pg) {
            let (raw, info, _) = self.get(url, page).await?;
            pages.push(raw);
            match info.cursor {
                Some(c) if info.records > 0 && !c.is_empty() && last.as_ref() != Some(&c) => {
                    url = with_param(&base, &param, &c);
                    last = Some(c);
                }
                _ => return Ok(pages),
            }
        }
        tracing::warn!("stopped paging after `max_pages` pages");
        Ok(pages)
    }

    async fn link(&self, pg: &PagingSection) -> Result<Vec<RawPage>, Error> {
        let mut url = self.p.base.clone();
        let mut pages = vec![];
        for page in 1..=Self::max_pages(pg) {
            let (raw, info, link) = self.get(url.clone(), page).await?;
            pages.push(raw);
            let next = link
                .as_deref()
                .and_then(next_link)
                .and_then(|n| url.join(&n).ok());
            match next {
                Some(n) if info.records > 0 && n != url => url = n,
                _ => return Ok(pages),
            }
        }
        tracing::warn!("stopped paging after `max_pages` pages");
        Ok(pages)
    }
}

/// The file extension a format's payloads are stored under.
pub(crate) fn extension(format: HttpFormat) -> &'static str {
    match format {
        HttpFormat::Json => "json",
        HttpFormat::Ndjson => "ndjson",
        HttpFormat::Csv => "csv",
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next" || (p.starts_with("rel=") && p.contains("next"))
        });
        let target = target.strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// How many records a page holds, and its cursor and total when the source
/// reads them. A JSON page that does not parse is an error with its position.
fn page_info(def: &HttpDef, url: &str, page: u64, body: &[u8]) -> Result<PageInfo, Error> {
    match def.format {
        HttpFormat::Json => {
            let doc = super::records::parse_json(url, page, body)?;
            let records = super::records::records_of(def, url, page, &doc)?.len();
            let scalar = |v: Option<&Value>| -> Option<String> {
                match v? {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                }
            };
            let cursor = def
                .cursor
                .as_ref()
                .and_then(|p| scalar(super::select(&doc, p)));
            let total = def
                .total
                .as_ref()
                .and_then(|p| scalar(super::select(&doc, p)))
                .and_then(|t| t.parse::<u64>().ok());
            Ok(PageInfo {
                records,
                cursor,
                total,
            })
        }
        HttpFormat::Ndjson => Ok(PageInfo {
            records: body
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count(),
            ..PageInfo::default()
        }),
        HttpFormat::Csv => Ok(PageInfo {
            records: body
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count()
                .saturating_sub(1),
            ..PageInfo::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let h =
            r#"<https://api.test/x?page=1>; rel="first", <https://api.test/x?page=3>; rel="next""#;
        assert_eq!(next_link(h).as_deref(), Some("https://api.test/x?page=3"));
        assert_eq!(
            next_link(r#"<https://api.test/x?page=1>; rel="prev""#),
            None
        );
    }
}
