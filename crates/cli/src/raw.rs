//! `sluice raw ls SOURCE`: the payloads a network source (`http`, `crawl`)
//! fetched into the raw zone, newest run first (and the partition, for a
//! partitioned source) — URL (secrets masked when fetched), status, fetch
//! time, `ETag`, size, content hash and file.

use std::process::ExitCode;

use sluice_core::render::instant;
use sluice_project::{Definition, SourceDef};
use sluice_runner::Workspace;
use sluice_store::RawZone;

use crate::output::{opt, table};

/// `sluice raw ls SOURCE [--run N] [--json]`.
pub fn ls(ws: &Workspace, source: &str, run: Option<i64>, json: bool) -> anyhow::Result<ExitCode> {
    let network = ws.project.asset(source).map(|a| match &a.definition {
        Definition::Source(d) => !matches!(d.as_ref(), SourceDef::Files(_)),
        _ => false,
    });
    match network {
        None => anyhow::bail!(
            "no asset `{source}`\n  help: `sluice raw ls` takes a source with `http` or `crawl`"
        ),
        Some(false) => anyhow::bail!(
            "`{source}` is not read over the network, so it has no raw zone\n  help: `sluice raw ls` takes a source with `http` or `crawl`"
        ),
        Some(true) => {}
    }
    let zone = RawZone::new(&ws.warehouse, source);
    let manifests: Vec<_> = zone
        .manifests()?
        .into_iter()
        .filter(|m| run.is_none_or(|r| m.run_id == r))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&manifests)?);
        return Ok(ExitCode::SUCCESS);
    }
    if manifests.is_empty() {
        println!("`{source}` has fetched nothing yet: `sluice run {source}` fetches it");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "run",
        "fetched at",
        "status",
        "bytes",
        "etag",
        "content hash",
        "url",
        "file",
    ]);
    for m in &manifests {
        for r in &m.records {
            t.add_row(vec![
                format!(
                    "{}{}{}",
                    m.run_id,
                    m.partition
                        .as_ref()
                        .map(|p| format!(" · {p}"))
                        .unwrap_or_default(),
                    if m.complete { "" } else { " (failed)" }
                ),
                instant(r.fetched_at),
                r.status.to_string(),
                r.bytes.to_string(),
                opt(r.etag.as_deref()),
                r.content_hash.clone(),
                r.url.clone(),
                r.file.clone(),
            ]);
        }
    }
    println!("{t}");
    println!("files are under {}", zone.dir().display());
    Ok(ExitCode::SUCCESS)
}
