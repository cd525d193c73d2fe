//! Sending one request the way every network source does: paced to a rate
//! limit, conditional on a stored payload's validators, tried again after 429,
//! 5xx, a timeout or a lost connection with a doubling backoff that a
//! `Retry-After` overrides, and every URL and message masked of the secrets
//! the source expanded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::Error;
use crate::raw::Validators;

/// The longest `Retry-After` honoured; a server asking for more is an error.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// The user agent sent unless the source sets one.
pub fn default_user_agent() -> String {
    format!("sluice/{}", env!("CARGO_PKG_VERSION"))
}

/// Replaces every secret the source expanded with `***` in text that may be
/// shown: URLs, error messages, bodies.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Vec<String>,
}

impl Masker {
    /// Masks `values` (expanded secrets). Values shorter than 3 characters are
    /// not secrets worth the name, and masking them would garble every text.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values.into_iter().filter(|v| v.len() >= 3).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret, and a URL's inline password, masked.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
            // A secret in a URL's query is percent-encoded there.
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            if encoded != *s && out.contains(encoded.as_str()) {
                out = out.replace(encoded.as_str(), "***");
            }
        }
        sluice_core::Secret::new(out).redacted()
    }
}

/// At most `rate` requests per second across the source's requests.
#[derive(Debug)]
struct Pace {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// How requests are sent.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long one request may take.
    pub timeout: Duration,
    /// Tries after the first.
    pub retries: u32,
    /// The first wait before a retry.
    pub backoff: Duration,
    /// Requests per second at most.
    pub rate_limit: Option<f64>,
    /// The `User-Agent`.
    pub user_agent: String,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: reqwest::Method,
    /// The URL, secrets expanded.
    pub url: url::Url,
    /// Headers, secrets expanded.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Option<String>,
    /// Basic authentication.
    pub basic: Option<(String, String)>,
    /// Make it conditional on a stored payload.
    pub validators: Option<Validators>,
}

/// An answer: 2xx with its body, or 304.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: u16,
    /// `ETag`.
    pub etag: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Link`.
    pub link: Option<String>,
    /// The body (empty for 304).
    pub body: Vec<u8>,
}

/// A source's HTTP client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    options: ClientOptions,
    pace: Option<Arc<Pace>>,
    masker: Masker,
}

impl Client {
    /// A client for one source's requests.
    pub fn new(options: ClientOptions, masker: Masker) -> Result<Self, Error> {
        crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(options.user_agent.clone())
            .build()
            .map_err(|e| Error::Setting {
                key: "http".into(),
                message: format!("cannot make an HTTP client: {}", chain(&e)),
                help: "check the TLS setup of this machine".into(),
            })?;
        let pace = options.rate_limit.map(|r| {
            Arc::new(Pace {
                interval: Duration::from_secs_f64(1.0 / r),
                next: Mutex::new(Instant::now()),
            })
        });
        Ok(Self {
            http,
            options,
            pace,
            masker,
        })
    }

    /// The masker of this source's secrets.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// `url` as it may be shown.
    pub fn shown(&self, url: &url::Url) -> String {
        self.masker.mask(url.as_str())
    }

    /// Sends `request` until it is answered with 2xx or 304, or fails for good.
    pub async fn send(&self, request: &Request) -> Result<Response, Error> {
        let shown = self.shown(&request.url);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let last = attempt > self.options.retries;
            if let Some(p) = &self.pace {
                p.wait().await;
            }
            let wait = match self.once(request).await {
                Ok(Outcome::Done(r)) => return Ok(r),
                Ok(Outcome::Refused { status, body }) => {
                    return Err(Error::Status {
                        url: shown,
                        status,
                        attempts: attempt,
                        body: self.masker.mask(&body),
                        referrer: None,
                        help: status_help(status),
                    });
                }
                Ok(Outcome::Again {
                    status,
                    body,
                    retry_after,
                }) => {
                    let too_long = retry_after.is_some_and(|d| d > MAX_RETRY_AFTER);
                    if last || too_long {
                        return Err(Error::Status {
                            url: shown,
                            status,
                            attempts: attempt,
                            body: self.masker.mask(&body),
                            referrer: None,
                            help: if too_long {
                                "the server asks to wait longer than 10 minutes (`Retry-After`): run again later".into()
                            } else {
                                "the server is failing or limiting requests: run again later, or raise `retries`, `backoff` or lower `rate_limit`".into()
                            },
                        });
                    }
                    tracing::info!(
                        "{shown}: HTTP {status}, trying again in {:?} (attempt {attempt})",
                        retry_after.unwrap_or_else(|| self.backoff(attempt))
                    );
                    retry_after.unwrap_or_else(|| self.backoff(attempt))
                }
                Err(e) => {
                    let timeout = e.is_timeout();
                    let transient = timeout || e.is_connect() || e.is_request() || e.is_body();
                    let message = self.masker.mask(&chain(&e.without_url()));
                    if last || !transient {
                        return Err(Error::Request {
                            url: shown,
                            message,
                            attempts: attempt,
                            transient,
                            help: if timeout {
                                "the server did not answer in time: raise `timeout`, or run again later".into()
                            } else {
                                "check the URL and that the server is reachable from here".into()
                            },
                        });
                    }
                    tracing::info!("{shown}: {message}, trying again (attempt {attempt})");
                    self.backoff(attempt)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The wait before retry `attempt` (1-based): the backoff doubled each time.
    fn backoff(&self, attempt: u32) -> Duration {
        self.options
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(10))
            .min(Duration::from_secs(300))
    }

    async fn once(&self, r: &Request) -> Result<Outcome, reqwest::Error> {
        let mut b = self.http.request(r.method.clone(), r.url.clone());
        for (k, v) in &r.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some((user, password)) = &r.basic {
            b = b.basic_auth(user, Some(password));
        }
        if let Some(v) = &r.validators {
            if let Some(e) = &v.etag {
                b = b.header(reqwest::header::IF_NONE_MATCH, e.as_str());
            }
            if let Some(m) = &v.last_modified {
                b = b.header(reqwest::header::IF_MODIFIED_SINCE, m.as_str());
            }
        }
        if let Some(body) = &r.body {
            b = b.body(body.clone());
        }
        let resp = b.send().await?;
        let status = resp.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(reqwest::header::ETAG);
        let last_modified = header(reqwest::header::LAST_MODIFIED);
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let link = header(reqwest::header::LINK);
        let retry_after = header(reqwest::header::RETRY_AFTER).and_then(|v| retry_after(&v));
        if status == 304 {
            return Ok(Outcome::Done(Response {
                status,
                etag,
                last_modified,
                content_type,
                link,
                body: vec![],
            }));
        }
        let body = resp.bytes().await?.to_vec();
        if (200..300).contains(&status) {
            return Ok(Outcome::Done(Response {
                status,
                etag,
                last_modified,
                content_type,
                link,
                body,
            }));
        }
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        let text = text.trim().to_string();
        if sluice_core::ErrorClass::of_http_status(status).is_transient() {
            Ok(Outcome::Again {
                status,
                body: text,
                retry_after,
            })
        } else {
            Ok(Outcome::Refused { status, body: text })
        }
    }
}

enum Outcome {
    Done(Response),
    Again {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    Refused {
        status: u16,
        body: String,
    },
}

/// What to do about a refusal.
fn status_help(status: u16) -> String {
    match status {
        401 | 403 => {
            "check the credentials in `auth` (and the environment variables they read)".into()
        }
        404 | 410 => "check the URL and its parameters".into(),
        _ => "check the request: URL, parameters, headers and body".into(),
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or_default())
}

/// An error and its causes, in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The process's rustls crypto provider (aws-lc-rs, which the tree builds for
/// object_store), installed once, as the alerts' client does.
fn crypto_provider() {
    static ONCE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_plain_and_percent_encoded() {
        let m = Masker::new(["s3cr3t/tok".to_string(), "ab".to_string()]);
        assert_eq!(
            m.mask("https://u:pw@api.test/x?key=s3cr3t%2Ftok&n=ab"),
            "https://u:***@api.test/x?key=***&n=ab"
        );
        assert_eq!(m.mask("token s3cr3t/tok refused"), "token *** refused");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
