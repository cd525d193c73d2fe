//! What a network source hands the raw zone, and gets back: the runner
//! implements [`RawSink`] over the warehouse (this crate does not know where
//! payloads are kept), so every payload is stored as fetched before anything
//! parses it, and parsing reads the stored files.

use std::path::PathBuf;

use crate::error::BoxError;

/// The validators of a stored payload, for a conditional request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// Its `ETag` (sent as `If-None-Match`).
    pub etag: Option<String>,
    /// Its `Last-Modified` (sent as `If-Modified-Since`).
    pub last_modified: Option<String>,
}

/// One response, described for the raw zone.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The URL requested, secrets masked.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The response's `ETag`.
    pub etag: Option<String>,
    /// The response's `Last-Modified`.
    pub last_modified: Option<String>,
    /// The response's `Content-Type`.
    pub content_type: Option<String>,
    /// The page number of a paged API (1-based).
    pub page: Option<u64>,
    /// A crawled page's depth.
    pub depth: Option<u32>,
    /// `page`, `robots` or `download`.
    pub role: &'static str,
    /// The file extension to store it under (`json`, `csv`, `html`).
    pub extension: String,
}

/// A payload in the raw zone, ready to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPage {
    /// The URL it was fetched from, secrets masked.
    pub url: String,
    /// The page number (1-based) or crawl order.
    pub page: u64,
    /// A crawled page's depth.
    pub depth: Option<u32>,
    /// `page`, `robots` or `download`.
    pub role: String,
    /// Its file.
    pub path: PathBuf,
}

/// Where a network source's payloads go.
pub trait RawSink: Send + Sync {
    /// The validators of `url`'s payload in the newest complete fetch made with
    /// the same fetch options, if it is stored.
    fn previous(&self, url: &str) -> Option<Validators>;

    /// Stores a payload as fetched; where it is.
    fn store(&self, payload: &Payload, body: &[u8]) -> Result<PathBuf, BoxError>;

    /// Records a `304 Not Modified` for `payload.url`: the previous payload
    /// stands; its file and bytes.
    fn confirm(&self, payload: &Payload) -> Result<(PathBuf, Vec<u8>), BoxError>;
}
