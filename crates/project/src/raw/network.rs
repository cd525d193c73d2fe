//! `[sources.NAME]` read over the network: `http = { ... }` (an API) and
//! `crawl = { ... }` (web pages). The keys inside `http`/`crawl` say what is
//! fetched; the keys beside them say how the stored payloads are parsed, so
//! that changing only the latter re-parses the raw zone without fetching.

use indexmap::IndexMap;
use serde::Deserialize;

use super::{ContractSection, Delimiter, DurationWord, PartitionedSection};
use sluice_core::Secret;

/// How an HTTP source's payloads are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpFormat {
    /// One JSON document per page; the records are found by `records`.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Comma (or `delimiter`) separated values with a header line.
    Csv,
}

/// `[sources.NAME]` with `http = { ... }`: records from an HTTP API.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceSection {
    /// What is fetched: see [`HttpSection`].
    pub http: HttpSection,
    /// `json`, `ndjson` or `csv`. Default: `json`.
    #[serde(default)]
    pub format: Option<HttpFormat>,
    /// JSON: where the records are in each page, a path such as
    /// `$.data.items` or `data.items[*]`. Default: the page itself (an array
    /// of records, or one record).
    #[serde(default)]
    pub records: Option<String>,
    /// Column types that override inference, in the project's type words
    /// (`{ id = "int64", at = "timestamp" }`).
    #[serde(default)]
    pub columns: IndexMap<String, String>,
    /// Records read to infer types (0 = all). Default: all records fetched.
    #[serde(default)]
    pub infer_rows: Option<usize>,
    /// CSV: the field delimiter. Default: `,`.
    #[serde(default)]
    pub delimiter: Option<Delimiter>,
    /// CSV: values that mean "missing". Default: only the empty field.
    #[serde(default)]
    pub null: Vec<String>,
    /// The time zone of timestamps written without an offset. Default: `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Read one time partition at a time, `{start}` and `{end}` in the URL,
    /// its parameters or its body written as the partition's bounds; see
    /// [`PartitionedSection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<PartitionedSection>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `http = { ... }`: the request, its paging and how it is sent.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// The URL; may hold `${ENV}` references.
    pub url: Secret,
    /// `GET` or `POST`. Default: `GET`.
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers; values may hold `${ENV}` references.
    #[serde(default)]
    pub headers: IndexMap<String, Secret>,
    /// Query parameters added to the URL; values may hold `${ENV}` references.
    #[serde(default)]
    pub params: IndexMap<String, Secret>,
    /// The request body (`POST`), sent as written after `${ENV}` expansion.
    #[serde(default)]
    pub body: Option<Secret>,
    /// Authentication; see [`AuthSection`].
    #[serde(default)]
    pub auth: Option<AuthSection>,
    /// Paging; see [`PagingSection`]. Default: one request.
    #[serde(default)]
    pub paging: Option<PagingSection>,
    /// The query parameter that asks for records changed since a time (an
    /// incremental read sends its watermark there, RFC 3339 for times).
    #[serde(default)]
    pub since_param: Option<String>,
    /// Requests per second at most. Default: no limit.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Pages requested at once (page and offset paging). Default: 1.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// How long one request may take. Default: 30s.
    #[serde(default)]
    pub timeout: Option<DurationWord>,
    /// How many times a request that failed with 429, 5xx, a timeout or a lost
    /// connection is tried again. Default: 3.
    #[serde(default)]
    pub retries: Option<u32>,
    /// The first wait before a retry, doubled each time, unless the answer
    /// says `Retry-After`. Default: 1s.
    #[serde(default)]
    pub backoff: Option<DurationWord>,
}

/// `auth = { ... }`: one of `bearer = "${TOKEN}"`, `user` and `password`
/// (basic), or `header` and `value` (an API key in a header).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// A bearer token: `Authorization: Bearer ...`.
    #[serde(default)]
    pub bearer: Option<Secret>,
    /// Basic authentication's user.
    #[serde(default)]
    pub user: Option<Secret>,
    /// Basic authentication's password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The header an API key is sent in (`X-Api-Key`).
    #[serde(default)]
    pub header: Option<String>,
    /// The API key.
    #[serde(default)]
    pub value: Option<Secret>,
}

/// How pages are walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PagingStyle {
    /// `?page=1`, `?page=2`, ...
    Page,
    /// `?offset=0&limit=100`, `?offset=100&limit=100`, ...
    Offset,
    /// The next request carries a value the response gave (`$.next_cursor`).
    Cursor,
    /// The next URL is the `Link` header's `rel="next"`.
    Link,
}

/// `paging = { style = "page" | "offset" | "cursor" | "link", ... }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagingSection {
    /// How pages are walked.
    pub style: PagingStyle,
    /// The query parameter of the page number, offset or cursor. Default:
    /// `page`, `offset` or `cursor`.
    #[serde(default)]
    pub param: Option<String>,
    /// Page style: the first page's number. Default: 1.
    #[serde(default)]
    pub start: Option<u64>,
    /// The query parameter of the page size. Default: `limit` for offset
    /// paging; not sent for page paging unless set.
    #[serde(default)]
    pub limit_param: Option<String>,
    /// Records per page, sent as `limit_param`; a shorter page is the last.
    /// Required for offset paging.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Cursor style: where the next cursor is in the response (`$.next`); a
    /// missing, null or empty cursor ends the paging.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Where the total number of records is in the response (`$.total`):
    /// paging stops once that many were read.
    #[serde(default)]
    pub total: Option<String>,
    /// At most this many pages. Default: 10000.
    #[serde(default)]
    pub max_pages: Option<u64>,
}

/// `[sources.NAME]` with `crawl = { ... }`: tables or files from web pages.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlSourceSection {
    /// What is crawled: see [`CrawlSection`].
    pub crawl: CrawlSection,
    /// Column types that override inference, in the project's type words.
    #[serde(default)]
    pub columns: IndexMap<String, String>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `crawl = { start = [...], ... }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlSection {
    /// The pages the crawl starts from (depth 0).
    pub start: Vec<String>,
    /// Links whose absolute URL matches this regex are followed. Default:
    /// none (only the start pages are read).
    #[serde(default)]
    pub follow: Option<String>,
    /// How many links deep from a start page. Default: 1.
    #[serde(default)]
    pub max_depth: Option<u32>,
    /// At most this many pages (downloads included). Default: 100.
    #[serde(default)]
    pub max_pages: Option<usize>,
    /// The pause between two requests to a host (or robots.txt's
    /// `Crawl-delay`, if longer). Default: 0s.
    #[serde(default)]
    pub delay: Option<DurationWord>,
    /// The `User-Agent` sent, and matched against robots.txt. Default:
    /// `sluice/<version>`.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Extract HTML tables into rows: `{ table = "css selector" }`.
    #[serde(default)]
    pub extract: Option<ExtractSection>,
    /// Download the linked files whose URL matches this regex (`\\.csv$`) and
    /// read them as CSV or JSON (by extension). Not with `extract`.
    #[serde(default)]
    pub download: Option<String>,
    /// How long one request may take. Default: 30s.
    #[serde(default)]
    pub timeout: Option<DurationWord>,
    /// Tries again after 429, 5xx, a timeout or a lost connection. Default: 3.
    #[serde(default)]
    pub retries: Option<u32>,
}

/// `extract = { table = "css selector" }`: which `<table>`s become rows.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractSection {
    /// A CSS selector of the tables (`table.stats`, `#roster`).
    pub table: String,
    /// A column that holds each row's page URL. Default: none.
    #[serde(default)]
    pub url_column: Option<String>,
}
