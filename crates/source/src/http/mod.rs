//! HTTP sources: records from an API, fetched page by page into the raw zone
//! ([`fetch`]), then parsed from the stored payloads ([`parse`]) into a table;
//! [`HttpTable`] does both at scan time, sending a `>=`/`>` filter's bound as
//! the source's `since_param`.
//!
//! Secrets (`${ENV}` in the URL, parameters, headers, body and `auth`) are
//! expanded here, into the request only; every URL and message that leaves
//! this module is masked of their values ([`Masker`]).

mod client;
mod paging;
mod records;
mod table;

use std::time::Duration;

use sluice_core::Secret;
use sluice_core::partition::Partition;
use sluice_project::HttpDef;

pub use client::{Client, ClientOptions, Masker, Request, Response, default_user_agent};
pub use paging::fetch;
pub use records::{parse, select};
pub use table::HttpTable;

use crate::Error;

/// Default time one request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default retries after the first try.
pub const DEFAULT_RETRIES: u32 = 3;

/// A source's request with its secrets expanded, and the client to send it.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub client: Client,
    pub base: url::Url,
    pub method: reqwest::Method,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub basic: Option<(String, String)>,
}

impl Prepared {
    /// The request for `url`.
    pub fn request(&self, url: url::Url) -> Request {
        Request {
            method: self.method.clone(),
            url,
            headers: self.headers.clone(),
            body: self.body.clone(),
            basic: self.basic.clone(),
            validators: None,
        }
    }
}

/// Expands a setting's `${VAR}`s, naming the setting if one is unset.
pub(crate) fn expose(key: &str, s: &Secret) -> Result<String, Error> {
    s.expose().map_err(|e| Error::Unset {
        key: key.to_string(),
        variable: e.0,
    })
}

/// The values of the environment variables `secrets` read: what to mask.
pub(crate) fn masker<'s>(secrets: impl IntoIterator<Item = &'s Secret>) -> Masker {
    Masker::new(
        secrets
            .into_iter()
            .flat_map(|s| {
                s.variables()
                    .into_iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter_map(|v| std::env::var(v).ok()),
    )
}

/// Expands the source's request: URL with its parameters, method, headers,
/// body, authentication; and makes its client. For a partition, `{start}` and
/// `{end}` in the URL, the parameters and the body are its bounds.
pub(crate) fn prepare(def: &HttpDef, window: Option<&Partition>) -> Result<Prepared, Error> {
    let http = &def.config.http;
    let fill = |key: &str, s: &Secret| -> Result<Secret, Error> {
        match window {
            None => Ok(s.clone()),
            Some(w) => s.edited(|t| w.fill(t)).map_err(|message| Error::Setting {
                key: key.to_string(),
                message,
                help: "write `{start}`, `{end}` or a chrono format such as `{start:%Y%m%d}`".into(),
            }),
        }
    };
    let mut secrets: Vec<&Secret> = vec![&http.url];
    secrets.extend(http.headers.values());
    secrets.extend(http.params.values());
    secrets.extend(http.body.iter());
    if let Some(a) = &http.auth {
        secrets.extend(
            [&a.bearer, &a.user, &a.password, &a.value]
                .into_iter()
                .flatten(),
        );
    }
    let masker = masker(secrets);
    let written = expose("http.url", &fill("http.url", &http.url)?)?;
    let mut base = url::Url::parse(&written).map_err(|e| Error::Setting {
        key: "http.url".into(),
        message: format!("`{}` is not a URL: {e}", masker.mask(&written)),
        help: "write the full URL, e.g. `https://api.example.com/v1/users`".into(),
    })?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(Error::Setting {
            key: "http.url".into(),
            message: format!(
                "`{}` is not an http:// or https:// URL",
                masker.mask(&written)
            ),
            help: "write the full URL, e.g. `https://api.example.com/v1/users`".into(),
        });
    }
    for (k, v) in &http.params {
        let key = format!("http.params.{k}");
        let v = expose(&key, &fill(&key, v)?)?;
        base.query_pairs_mut().append_pair(k, &v);
    }
    let mut headers = vec![];
    for (k, v) in &http.headers {
        headers.push((k.clone(), expose(&format!("http.headers.{k}"), v)?));
    }
    let mut basic = None;
    if let Some(a) = &http.auth {
        if let Some(t) = &a.bearer {
            headers.push((
                "Authorization".into(),
                format!("Bearer {}", expose("http.auth.bearer", t)?),
            ));
        }
        if let (Some(u), Some(p)) = (&a.user, &a.password) {
            basic = Some((
                expose("http.auth.user", u)?,
                expose("http.auth.password", p)?,
            ));
        }
        if let (Some(h), Some(v)) = (&a.header, &a.value) {
            headers.push((h.clone(), expose("http.auth.value", v)?));
        }
    }
    let body = http
        .body
        .as_ref()
        .map(|b| expose("http.body", &fill("http.body", b)?))
        .transpose()?;
    let method = match http
        .method
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("GET") => reqwest::Method::GET,
        Some("POST") => reqwest::Method::POST,
        Some(other) => {
            return Err(Error::Setting {
                key: "http.method".into(),
                message: format!("`{other}` is not supported"),
                help: "write `GET` or `POST`".into(),
            });
        }
    };
    let client = Client::new(
        ClientOptions {
            timeout: http.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| t.value),
            retries: http.retries.unwrap_or(DEFAULT_RETRIES),
            backoff: http
                .backoff
                .as_ref()
                .map_or(Duration::from_secs(1), |b| b.value),
            rate_limit: http.rate_limit,
            user_agent: default_user_agent(),
        },
        masker,
    )?;
    Ok(Prepared {
        client,
        base,
        method,
        headers,
        body,
        basic,
    })
}

/// `url` with the query parameter `name` set to `value` (replacing it).
pub(crate) fn with_param(url: &url::Url, name: &str, value: &str) -> url::Url {
    let mut out = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair(name, value);
    }
    out
}
