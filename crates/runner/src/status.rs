//! `sluice status`: each asset's latest version, rows, age and whether the next
//! `sluice run` would rebuild it — computed exactly as a run decides it.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_core::AssetKind;
use sluice_project::Definition;

use crate::run::{source_fingerprint, table_fingerprint};
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
        if let Definition::Export(def) = &asset.definition {
            // Exports are files; what wrote them is in the metadata database.
            let written = ws.metadata.latest_export(name.as_str())?;
            let reason = match &written {
                None => Some("never built".to_string()),
                Some(_) if !def.path.exists() => Some(format!("{} is missing", def.path.display())),
                Some(w) => match stale_input(asset, &stale_names) {
                    Some(up) => Some(format!("upstream `{up}` is stale")),
                    None if w.fingerprint
                        != table_fingerprint(asset, &input_versions(asset, &versions)) =>
                    {
                        Some("its query or an input's version changed".to_string())
                    }
                    None => None,
                },
            };
            if reason.is_some() {
                stale_names.push(name.to_string());
            }
            states.push(AssetState {
                name: name.to_string(),
                kind: asset.kind(),
                version: written.as_ref().map(|w| w.version),
                rows: written.as_ref().map(|w| w.rows),
                committed_at: written.as_ref().map(|w| w.written_at.to_rfc3339()),
                age_seconds: written
                    .as_ref()
                    .map(|w| (chrono::Utc::now() - w.written_at).num_seconds()),
                stale: reason.is_some(),
                reason,
            });
            continue;
        }
        if let Definition::Model(_) = &asset.definition {
            // A model's versions are in the registry; the one that serves is
            // what its downstream reads.
            let newest = ws.metadata.newest_model_version(name.as_str())?;
            let serving = ws.metadata.promoted_model_version(name.as_str())?;
            let reason = match &newest {
                None => Some("never built".to_string()),
                Some(n) => match stale_input(asset, &stale_names) {
                    Some(up) => Some(format!("upstream `{up}` is stale")),
                    None if n.fingerprint
                        != table_fingerprint(asset, &input_versions(asset, &versions)) =>
                    {
                        Some("its definition or an input's version changed".to_string())
                    }
                    None => None,
                },
            };
            if reason.is_some() {
                stale_names.push(name.to_string());
            }
            versions.insert(name.to_string(), serving.as_ref().map(|s| s.version));
            states.push(AssetState {
                name: name.to_string(),
                kind: asset.kind(),
                version: serving.as_ref().map(|s| s.version),
                rows: newest.as_ref().map(|n| n.train_rows + n.valid_rows),
                committed_at: newest.as_ref().map(|n| n.created_at.to_rfc3339()),
                age_seconds: newest
                    .as_ref()
                    .map(|n| (chrono::Utc::now() - n.created_at).num_seconds()),
                stale: reason.is_some(),
                reason,
            });
            continue;
        }
        let latest = ws.store.latest(name.as_str()).await?;
        let recorded = latest
            .as_ref()
            .and_then(|l| l.meta.as_ref())
            .map(|m| m.fingerprint.clone());
        let reason = match (&latest, &asset.definition) {
            (None, _) => Some("never built".to_string()),
            (Some(_), Definition::Source(_)) => match source_fingerprint(asset).await {
                Ok(fp) if Some(&fp) == recorded.as_ref() => None,
                Ok(_) => Some("its files or definition changed".to_string()),
                Err(e) => Some(format!("cannot read its files: {e}")),
            },
            (
                Some(_),
                Definition::Table(_)
                | Definition::Features(_)
                | Definition::Export(_)
                | Definition::Model(_)
                | Definition::Predictions(_),
            ) => {
                if let Some(up) = stale_input(asset, &stale_names) {
                    Some(format!("upstream `{up}` is stale"))
                } else {
                    let inputs = input_versions(asset, &versions);
                    if Some(table_fingerprint(asset, &inputs)) == recorded {
                        None
                    } else {
                        Some("its query or an input's version changed".to_string())
                    }
                }
            }
        };
        if reason.is_some() {
            stale_names.push(name.to_string());
        }
        versions.insert(name.to_string(), latest.as_ref().map(|l| l.version));
        let committed = latest.as_ref().and_then(|l| l.committed_at);
        states.push(AssetState {
            name: name.to_string(),
            kind: asset.kind(),
            version: latest.as_ref().map(|l| l.version),
            rows: latest.as_ref().and_then(|l| l.rows),
            committed_at: committed.map(|t| t.to_rfc3339()),
            age_seconds: committed.map(|t| (chrono::Utc::now() - t).num_seconds()),
            stale: reason.is_some(),
            reason,
        });
    }
    Ok(states)
}

fn stale_input<'a>(
    asset: &'a sluice_project::Asset,
    stale: &[String],
) -> Option<&'a sluice_core::AssetName> {
    asset.inputs.iter().find(|i| stale.contains(&i.to_string()))
}

fn input_versions(
    asset: &sluice_project::Asset,
    versions: &BTreeMap<String, Option<u64>>,
) -> BTreeMap<String, u64> {
    asset
        .inputs
        .iter()
        .filter_map(|i| {
            versions
                .get(i.as_str())
                .copied()
                .flatten()
                .map(|v| (i.to_string(), v))
        })
        .collect()
}
