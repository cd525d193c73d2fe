//! `sluice status`: each asset's latest version, rows, age and whether the next
//! `sluice run` would rebuild it — decided by the same rule a run uses
//! (`kinds::stale_reason`).

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_core::AssetKind;

use crate::kinds::{self, stale_reason};
use crate::pins::Pins;
use crate::{Result, Workspace};

/// The state of one asset.
#[derive(Debug, Clone, Serialize)]
pub struct AssetState {
    /// The asset.
    pub name: String,
    /// Its kind.
    pub kind: AssetKind,
    /// Latest version, if built.
    pub version: Option<u64>,
    /// Rows in the latest version.
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
        let reason = stale_reason(kind.as_ref(), published.as_ref(), stale_input, &fingerprint);
        if reason.is_some() {
            stale_names.push(name.to_string());
        }
        let published = published.unwrap_or_default();
        versions.insert(name.to_string(), published.version);
        let committed = published.committed_at;
        states.push(AssetState {
            name: name.to_string(),
            kind: asset.kind(),
            version: published.version,
            rows: published.rows,
            committed_at: committed.map(sluice_core::render::instant),
            age_seconds: committed.map(|t| (chrono::Utc::now() - t).num_seconds()),
            stale: reason.is_some(),
            reason,
        });
    }
    Ok(states)
}
