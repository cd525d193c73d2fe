//! `sluice status`: each asset's latest version, rows, age and whether the next
//! `sluice run` would rebuild it — decided by the same rule a run uses
//! (`kinds::stale_reason`).

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_core::AssetKind;

use crate::kinds::{self, stale_reason};
use crate::partitions::{PartitionJob, PartitionScope};
use crate::pins::Pins;
use crate::{Error, Result, Workspace};

/// The state of one asset.
#[derive(Debug, Clone, Serialize)]
pub struct AssetState {
    /// The asset.
    pub name: String,
    /// Its kind.
    pub kind: AssetKind,
    /// Latest version, if built.
    pub version: Option<u64>,
    /// Rows in the latest version (a partitioned asset: in its built
    /// partitions, as recorded).
    pub rows: Option<u64>,
    /// When the latest version was committed (RFC 3339).
    pub committed_at: Option<String>,
    /// Seconds since then.
    pub age_seconds: Option<i64>,
    /// Whether the next run would rebuild it.
    pub stale: bool,
    /// Why it is stale.
    pub reason: Option<String>,
}

/// The state of every asset, in dependency order.
pub async fn status(ws: &Workspace) -> Result<Vec<AssetState>> {
    let mut states: Vec<AssetState> = Vec::new();
    let mut versions: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut stale_names: Vec<String> = Vec::new();
    for name in &ws.project.order {
        let asset = &ws.project.assets[name];
        let kind = kinds::of(asset);
        let published = kind.published(ws).await?;
        let stale_input = asset
            .inputs
            .iter()
            .find(|i| stale_names.contains(&i.to_string()));
        let pins: Pins = asset
            .inputs
            .iter()
            .filter_map(|i| {
                versions
                    .get(i.as_str())
                    .copied()
                    .flatten()
                    .map(|v| (i.to_string(), v))
            })
            .collect();
        // Never built, it is stale whatever its fingerprint: its files are not
        // hashed.
        let fingerprint = match &published {
            Some(_) => kind.fingerprint(ws, asset, &pins).await,
            None => Ok(String::new()),
        };
        let reason = match &asset.partitioned {
            Some(_) if published.is_some() && stale_input.is_none() => {
                partitions_behind(ws, kind.as_ref(), asset, &pins).await?
            }
            _ => stale_reason(kind.as_ref(), published.as_ref(), stale_input, &fingerprint),
        };
        if reason.is_some() {
            stale_names.push(name.to_string());
        }
        let published = published.unwrap_or_default();
        versions.insert(name.to_string(), published.version);
        let committed = published.committed_at;
        // The newest commit of a partitioned asset holds one partition's rows.
        let rows = match &asset.partitioned {
            Some(_) => ws
                .metadata
                .partitions(name.as_str())?
                .iter()
                .filter(|r| r.built.is_some())
                .map(|r| r.rows)
                .sum(),
            None => published.rows,
        };
        states.push(AssetState {
            name: name.to_string(),
            kind: asset.kind(),
            version: published.version,
            rows,
            committed_at: committed.map(sluice_core::render::instant),
            age_seconds: committed.map(|t| (chrono::Utc::now() - t).num_seconds()),
            stale: reason.is_some(),
            reason,
        });
    }
    Ok(states)
}

/// One partition of a partitioned asset, as `sluice status ASSET --partitions`
/// shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionState {
    /// Its label (`2024-01-05`).
    pub partition: String,
    /// `built` (and up to date), `stale` (built from another definition or
    /// other input), `failed` (its newest build failed) or `missing`.
    pub state: &'static str,
    /// The version its newest successful build committed.
    pub version: Option<u64>,
    /// Rows it holds, as built.
    pub rows: Option<u64>,
    /// The run of its newest build.
    pub run_id: Option<i64>,
    /// Why its newest build failed.
    pub error: Option<String>,
}

/// Every partition of a partitioned asset from its first to the present (or
/// its `end`), with its state.
pub async fn partition_status(ws: &Workspace, name: &str) -> Result<Vec<PartitionState>> {
    let Some(asset) = ws.project.assets.values().find(|a| a.name.as_str() == name) else {
        return Err(Error::unknown_assets(&ws.project, vec![name.to_string()]));
    };
    if asset.partitioned.is_none() {
        return Err(not_partitioned(ws, name));
    }
    let kind = kinds::of(asset);
    let mut pins = Pins::new();
    for input in &asset.inputs {
        if let Some(v) = kinds::of(&ws.project.assets[input])
            .published(ws)
            .await?
            .and_then(|p| p.version)
        {
            pins.insert(input.to_string(), v);
        }
    }
    partitions_of(ws, kind.as_ref(), asset, &pins).await
}

/// Why a partitioned asset that was built is stale: its partitions up to the
/// present that are missing, failed or stale, counted; `None` when there are
/// none. (For a partitioned asset, `kinds::stale_reason`'s one fingerprint is
/// that of its newest partition.)
pub(crate) async fn partitions_behind(
    ws: &Workspace,
    kind: &dyn kinds::Kind,
    asset: &sluice_project::Asset,
    pins: &Pins,
) -> Result<Option<String>> {
    let parts = partitions_of(ws, kind, asset, pins).await?;
    let behind = parts.iter().filter(|p| p.state != "built").count();
    Ok((behind > 0).then(|| {
        format!(
            "{behind} of {} partitions missing, failed or stale (`sluice status {} --partitions`)",
            parts.len(),
            asset.name
        )
    }))
}

/// `name` is not partitioned: the message names those that are.
pub(crate) fn not_partitioned(ws: &Workspace, name: &str) -> Error {
    let partitioned: Vec<String> = ws
        .project
        .order
        .iter()
        .filter(|n| ws.project.assets[*n].partitioned.is_some())
        .map(|n| format!("`{n}`"))
        .collect();
    Error::Partitions(format!(
        "`{name}` is not partitioned\n  help: {}",
        if partitioned.is_empty() {
            "give a source or table `partitioned = { by = \"day\", column = \"...\", start = \"...\" }`".to_string()
        } else {
            format!("the partitioned assets are {}", partitioned.join(", "))
        }
    ))
}

async fn partitions_of(
    ws: &Workspace,
    kind: &dyn kinds::Kind,
    asset: &sluice_project::Asset,
    pins: &Pins,
) -> Result<Vec<PartitionState>> {
    let Some(partitioning) = &asset.partitioned else {
        return Ok(Vec::new());
    };
    let now = chrono::DateTime::from_timestamp_micros(ws.clock.now_micros()).unwrap_or_default();
    let all = PartitionScope::All.select(partitioning, now);
    let job = PartitionJob {
        ws,
        kind,
        asset,
        partitioning,
        run_id: 0,
        pins,
    };
    let fingerprints = job
        .fingerprints(&all)
        .await
        .map_err(|f| Error::Partitions(f.message))?;
    let records: BTreeMap<String, sluice_store::PartitionRecord> = ws
        .metadata
        .partitions(asset.name.as_str())?
        .into_iter()
        .map(|r| (r.partition.clone(), r))
        .collect();
    Ok(all
        .iter()
        .zip(fingerprints)
        .map(|(x, fp)| {
            let label = x.label();
            let record = records.get(&label);
            let built = record.and_then(|r| r.built.as_ref());
            let state = match (record, built) {
                (None, _) => "missing",
                (Some(r), _) if r.error.is_some() => "failed",
                (Some(_), Some((_, f))) if *f == fp => "built",
                (Some(_), Some(_)) => "stale",
                (Some(_), None) => "missing",
            };
            PartitionState {
                partition: label,
                state,
                version: built.map(|(v, _)| *v),
                rows: record.and_then(|r| r.rows),
                run_id: record.map(|r| r.run_id),
                error: record.and_then(|r| r.error.clone()),
            }
        })
        .collect())
}
