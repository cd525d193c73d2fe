//! The input versions a run pins for an asset: what its fingerprint hashes and
//! what its query reads, never "whatever is latest" mid-run.

use std::collections::BTreeMap;

use sluice_project::{Asset, fingerprint};
use sluice_store::AsOf;

use crate::Workspace;

/// Input asset → the version this build reads.
pub(crate) type Pins = BTreeMap<String, u64>;

/// The fingerprint an asset has given its inputs' versions: its definition's
/// fingerprint and every pinned input — by the hash of its rows where the
/// version's content is recorded, so that an input rebuilt to the same rows
/// leaves the asset up to date (early cut-off); else by its version number.
pub(crate) fn pinned_fingerprint(ws: &Workspace, asset: &Asset, pins: &Pins) -> String {
    let mut parts = vec![asset.fingerprint.clone()];
    for (name, version) in pins {
        match ws.metadata.content(name, *version) {
            Ok(Some(content)) => parts.push(format!("{name}#{content}")),
            Ok(None) => parts.push(format!("{name}@{version}")),
            Err(e) => {
                tracing::warn!("reading the content of `{name}` v{version}: {e}");
                parts.push(format!("{name}@{version}"));
            }
        }
    }
    fingerprint(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Registers each input in `ctx` as a table at the version the run pinned.
pub(crate) async fn register_inputs(
    ws: &Workspace,
    ctx: &datafusion::prelude::SessionContext,
    pins: &Pins,
) -> crate::Result<()> {
    for (input, version) in pins {
        let provider = ws
            .store
            .provider(input, AsOf::Version(*version), &ctx.state())
            .await?;
        ctx.register_table(input.as_str(), provider)
            .map_err(|e| crate::Error::engine("query", e))?;
    }
    Ok(())
}
