//! Sources read over the network (`http`, `crawl`): fetched into the raw zone
//! at every run they are part of, then parsed from the stored payloads and
//! written like a file source.
//!
//! The fingerprint committed with a version is three hashes — of the fetch
//! options, of the parse options, and of the payloads' contents —
//! (`net:<fetch>:<parse>:<content>`). A run compares it with the definition:
//! - only the parse options changed, and the newest complete fetch with the
//!   same fetch options holds the payloads the version was built from: those
//!   payloads are parsed again, nothing is fetched;
//! - otherwise the source is fetched (conditionally: a stored payload's
//!   `ETag`/`Last-Modified` go along, and a 304 reuses it), and when the
//!   payloads' contents and the definition are those of the published
//!   version, nothing is written: the asset is up to date.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::SessionContext;
use sluice_core::partition::Partition;
use sluice_project::{Asset, CrawlDef, Diagnostic, HttpDef, Project};
use sluice_source::{RawPage, RawSink};
use sluice_store::{RawManifest, RawZone, Warehouse};

use super::raw_sink::ZoneSink;
use super::{Job, Kind, Published, delta};
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};

/// Which network source.
#[derive(Clone, Copy)]
pub(crate) enum NetDef<'a> {
    /// `http = { ... }`.
    Http(&'a HttpDef),
    /// `crawl = { ... }`.
    Crawl(&'a CrawlDef),
}

impl NetDef<'_> {
    fn fetch_fingerprint(&self) -> &str {
        match self {
            NetDef::Http(d) => &d.fetch_fingerprint,
            NetDef::Crawl(d) => &d.fetch_fingerprint,
        }
    }

    fn parse_fingerprint(&self) -> &str {
        match self {
            NetDef::Http(d) => &d.parse_fingerprint,
            NetDef::Crawl(d) => &d.parse_fingerprint,
        }
    }

    async fn fetch(
        &self,
        sink: &dyn RawSink,
        since: Option<&str>,
        window: Option<&Partition>,
    ) -> Result<Vec<RawPage>, sluice_source::Error> {
        match self {
            NetDef::Http(d) => sluice_source::http::fetch(d, since, window, sink).await,
            NetDef::Crawl(d) => sluice_source::crawl::crawl(d, sink).await,
        }
    }

    /// Parses stored pages on a blocking thread (JSON and HTML parsing is
    /// CPU work).
    async fn parse(
        &self,
        pages: Vec<RawPage>,
    ) -> Result<(SchemaRef, Arc<dyn TableProvider>), Failure> {
        let span = tracing::Span::current();
        let parsed = match self {
            NetDef::Http(d) => {
                let d = (*d).clone();
                tokio::task::spawn_blocking(move || {
                    span.in_scope(|| sluice_source::http::parse(&d, &pages, None))
                })
                .await
            }
            NetDef::Crawl(d) => {
                let d = (*d).clone();
                tokio::task::spawn_blocking(move || {
                    span.in_scope(|| sluice_source::crawl::parse(&d, &pages))
                })
                .await
            }
        };
        parsed
            .map_err(Failure::task)?
            .map_err(|e| source_failure(&e))
    }
}

/// A source error as a failure: its message (URL first) and its own class.
fn source_failure(e: &sluice_source::Error) -> Failure {
    Failure {
        message: e.to_string(),
        class: e.class(),
    }
}

/// The fingerprint committed with a network source's version.
#[derive(Debug, PartialEq, Eq)]
struct Parts {
    fetch: String,
    parse: String,
    content: String,
}

impl Parts {
    fn read(text: &str) -> Option<Parts> {
        let mut it = text.strip_prefix("net:")?.split(':');
        let (fetch, parse, content) = (it.next()?, it.next()?, it.next()?);
        Some(Parts {
            fetch: fetch.into(),
            parse: parse.into(),
            content: content.into(),
        })
    }

    fn text(&self) -> String {
        format!("net:{}:{}:{}", self.fetch, self.parse, self.content)
    }
}

/// `[sources.NAME]` with `http` or `crawl`.
pub(crate) struct Network<'a> {
    pub asset: &'a Asset,
    pub def: NetDef<'a>,
}

impl Network<'_> {
    /// What is fetched for `job`: the source's fetch fingerprint, and for a
    /// partition its label too — each partition asks for its own bounds, and
    /// its payloads must be found again as its own, never another's.
    fn fetch_fingerprint(&self, job: &Job<'_>) -> String {
        let fp = self.def.fetch_fingerprint();
        match &job.partition {
            Some(p) => format!("{fp}@{}", p.label()),
            None => fp.to_string(),
        }
    }

    /// Fetches into this run's folder of the raw zone; the manifest says what.
    async fn fetch(
        &self,
        job: &Job<'_>,
        zone: RawZone,
        since: Option<&str>,
    ) -> Result<RawManifest, Failure> {
        let sink = ZoneSink::new(
            zone,
            job.run_id,
            &self.fetch_fingerprint(job),
            job.partition.map(|p| p.label()),
        )?;
        match self.def.fetch(&sink, since, job.partition.as_ref()).await {
            Ok(_) => sink.finish(true),
            Err(e) => {
                if let Err(w) = sink.finish(false) {
                    tracing::warn!("could not write the raw zone's manifest: {}", w.message);
                }
                Err(source_failure(&e))
            }
        }
    }
}

impl Network<'_> {
    /// What an incremental load asks an API with a `since_param` for: the
    /// watermark its published version was loaded up to, moved back by the
    /// lookback, a time in RFC 3339. `None`: everything (the first load, a
    /// full refresh, or no `since_param`).
    fn since(&self, job: &Job<'_>) -> Option<String> {
        let NetDef::Http(d) = &self.def else {
            return None;
        };
        d.config.http.since_param.as_ref()?;
        let inc = self.asset.incremental.as_ref()?;
        if job.ws.full_refresh.contains(self.asset.name.as_str()) {
            return None;
        }
        let meta = job.latest()?.meta.as_ref()?;
        if meta.fingerprint != job.fingerprint {
            return None;
        }
        let w = meta.watermark.as_deref()?;
        let back = inc
            .lookback
            .and_then(|b| chrono::Duration::from_std(b).ok())
            .unwrap_or_default();
        let instant = chrono::DateTime::parse_from_rfc3339(w)
            .map(|t| t.to_utc())
            .ok()
            .or_else(|| {
                ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                    .iter()
                    .find_map(|f| chrono::NaiveDateTime::parse_from_str(w, f).ok())
                    .map(|t| t.and_utc())
            });
        Some(match instant {
            Some(t) => (t - back).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            // Not a time (a number, a date): as stored.
            None => w.to_string(),
        })
    }
}

/// The payloads of a fetch to parse, in order (robots.txt files left out).
fn pages_of(zone: &RawZone, m: &RawManifest) -> Result<Vec<RawPage>, Failure> {
    m.records
        .iter()
        .filter(|r| r.role.as_deref() != Some("robots"))
        .enumerate()
        .map(|(i, r)| {
            Ok(RawPage {
                url: r.url.clone(),
                page: r.page.unwrap_or(i as u64 + 1),
                depth: r.depth,
                role: r.role.clone().unwrap_or_else(|| "page".into()),
                path: zone.path_of(&r.file)?,
            })
        })
        .collect()
}

#[async_trait]
impl Kind for Network<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        delta::published(ws, self.asset.name.as_str()).await
    }

    fn outdated(&self, _published: &Published) -> Option<String> {
        Some("it is read over the network at every run (an unchanged page costs a conditional request)".into())
    }

    fn changed(&self) -> &'static str {
        "its definition changed"
    }

    fn reads_elsewhere(&self) -> bool {
        true
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        let name = self.asset.name.as_str();
        let zone = RawZone::new(&job.ws.warehouse, name);
        let fetch_fp = self.fetch_fingerprint(job);
        let parse_fp = self.def.parse_fingerprint().to_string();
        // A partition is kept by its own record (its definition and label),
        // not by the table's newest commit, which may be another partition's:
        // it is fetched and written whenever it is built.
        let partition = job.partition.is_some();
        let published_fp = job
            .published
            .as_ref()
            .filter(|_| !partition)
            .and_then(|p| p.fingerprint.clone());
        let was = published_fp.as_deref().and_then(Parts::read);
        let reparse = match &was {
            Some(p) if p.fetch == fetch_fp && p.parse != parse_fp => zone
                .newest(&fetch_fp)
                .ok()
                .flatten()
                .filter(|m| m.content_hash() == p.content),
            _ => None,
        };
        let manifest = match reparse {
            Some(m) => {
                tracing::info!(
                    "`{name}`: only its parse options changed: parsing again the {} payloads of run {}, fetching nothing",
                    m.records.len(),
                    m.run_id
                );
                m
            }
            None => match self.fetch(job, zone.clone(), None).await {
                Ok(m) => m,
                Err(f) => return job.failed(f),
            },
        };
        let now = Parts {
            fetch: fetch_fp,
            parse: parse_fp,
            content: manifest.content_hash(),
        }
        .text();
        if published_fp.as_deref() == Some(now.as_str()) {
            let unchanged = manifest.records.iter().filter(|r| r.status == 304).count();
            tracing::info!(
                "`{name}`: {} payloads fetched, {unchanged} not modified, the same as its published version: nothing to write",
                manifest.records.len()
            );
            return delta::with_quarantined(job, job.up_to_date()).await;
        }
        let pages = match pages_of(&zone, &manifest) {
            Ok(p) => p,
            Err(f) => return job.failed(f),
        };
        let (_, provider) = match self.def.parse(pages).await {
            Ok(p) => p,
            Err(f) => return job.failed(f),
        };
        let plan = LogicalPlanBuilder::scan(name, provider_as_source(provider), None)
            .and_then(|b| b.build());
        let plan = match plan {
            Ok(p) => p,
            Err(e) => return job.failed(Failure::of(&e)),
        };
        let ctx = sluice_transform::session();
        let job = Job {
            ws: job.ws,
            asset: job.asset,
            run_id: job.run_id,
            pins: job.pins,
            fingerprint: if partition {
                job.fingerprint.clone()
            } else {
                now
            },
            published: job.published.clone(),
            started: job.started,
            partition: job.partition,
            progress: job.progress,
        };
        delta::write(&job, &ctx, plan).await
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        delta::with_quarantined(job, job.up_to_date()).await
    }

    async fn rows(&self, job: &Job<'_>) -> Result<Option<Arc<dyn TableProvider>>, Failure> {
        // One fetch, into the raw zone with its manifest as any run's, asking
        // the API for what changed since the watermark where it can be asked
        // (`since_param`); the incremental load keeps the rows past it.
        let name = self.asset.name.as_str();
        let zone = RawZone::new(&job.ws.warehouse, name);
        let since = self.since(job);
        let manifest = self.fetch(job, zone.clone(), since.as_deref()).await?;
        let pages = pages_of(&zone, &manifest)?;
        Ok(Some(self.def.parse(pages).await?.1))
    }

    async fn check(
        &self,
        _ctx: &SessionContext,
        project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        let name = self.asset.name.as_str();
        // The newest fetch's payloads, parsed as the source now says.
        let zone = RawZone::new(&Warehouse::local(&project.warehouse), name);
        if let Ok(Some(m)) = zone
            .manifests()
            .map(|all| all.into_iter().find(|m| m.complete))
            && let Ok(pages) = pages_of(&zone, &m)
        {
            return match self.def.parse(pages).await {
                Ok((schema, _)) => Ok(Some(schema)),
                Err(f) => Err(Diagnostic::new(
                    self.asset.location.clone(),
                    format!("source `{name}`: {}", f.message),
                )),
            };
        }
        // Never fetched: its columns are known once it is (`columns` only
        // sets the types of some), so what reads it is planned after a run.
        tracing::debug!("source `{name}` has not been fetched: its columns are not known yet");
        Ok(None)
    }

    fn schema_unknown_until_built(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_fingerprint_reads_back_into_its_parts() {
        let p = Parts {
            fetch: "f".into(),
            parse: "p".into(),
            content: "c".into(),
        };
        assert_eq!(Parts::read(&p.text()), Some(p));
        assert_eq!(Parts::read("0123abcd"), None);
    }
}
