//! Publishing a feature view's (or a model's predictions') version into the
//! online store: per entity, the row with the newest event (ties: the newest
//! created time), all in one transaction.

use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use sluice_core::AssetStatus;
use sluice_project::features::quote;
use sluice_project::{Asset, Definition};
use sluice_store::{AsOf, OnlineSnapshot, OnlineStore, OnlineWrite};

use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure, OnlineOutcome, failed};

/// How the rows of an asset kept online are keyed and ordered.
#[derive(Debug, Clone)]
pub(crate) struct OnlineKey {
    /// The entity's key columns.
    pub(crate) entity: Vec<String>,
    /// The event-time column.
    pub(crate) timestamp: String,
    /// The created-time column, if any.
    pub(crate) created: Option<String>,
}

impl OnlineKey {
    fn key_columns(&self) -> Vec<String> {
        let mut out = self.entity.clone();
        out.push(self.timestamp.clone());
        out.extend(self.created.clone());
        out
    }
}

/// The entity key columns of an asset kept online (a feature view or a model's
/// predictions), or an error naming those there are.
pub(crate) fn online_entity<'a>(ws: &'a Workspace, name: &str) -> crate::Result<&'a [String]> {
    match ws.project.asset(name).map(|a| &a.definition) {
        Some(Definition::Features(def)) => Ok(&def.entity),
        Some(Definition::Predictions(def)) => Ok(&def.entity),
        _ => crate::training::feature_def(ws, name).map(|d| d.entity.as_slice()),
    }
}

/// Brings the online store up to the version in `done` (built or up to date);
/// the outcome fails if the online store cannot be written.
pub(crate) async fn publish(
    ws: &Workspace,
    asset: &Asset,
    key: &OnlineKey,
    mut done: AssetOutcome,
    run_id: i64,
) -> AssetOutcome {
    let started = Instant::now();
    let Some(version) = done.version else {
        return done;
    };
    let online = ws.online.clone();
    let name = asset.name.to_string();
    let current = {
        let (online, name) = (online.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            let snapshot = online.snapshot().map_err(|e| Failure::of(&e))?;
            snapshot.meta(&name).map_err(|e| Failure::of(&e))
        })
        .await
        .map_err(Failure::task)
        .and_then(|r| r)
    };
    match current {
        Err(e) => return failed(asset, started, e, Some(version)),
        Ok(Some(meta)) if meta.version == version && done.status == AssetStatus::UpToDate => {
            done.online = Some(OnlineOutcome {
                entities: meta.entities,
                written: 0,
                kept_newer: 0,
                duration_ms: 0,
            });
            return done;
        }
        Ok(_) => {}
    }
    match write(ws, asset, key, version, run_id, online).await {
        Ok(w) => {
            done.online = Some(OnlineOutcome {
                entities: w.entities,
                written: w.written,
                kept_newer: w.kept_newer,
                duration_ms: started.elapsed().as_millis() as u64,
            });
            done.duration_ms += started.elapsed().as_millis() as u64;
            done
        }
        Err(e) => AssetOutcome {
            error: Some(format!(
                "version {version} is in the offline store, but the online store was not updated: {e}\n  help: run again; the next run writes it"
            )),
            class: Some(e.class),
            status: AssetStatus::Failed,
            ..done
        },
    }
}

async fn write(
    ws: &Workspace,
    asset: &Asset,
    def: &OnlineKey,
    version: u64,
    run_id: i64,
    online: std::sync::Arc<dyn OnlineStore>,
) -> Result<OnlineWrite, Failure> {
    let name = asset.name.as_str();
    let ctx = sluice_transform::session();
    let provider = ws
        .store
        .provider(name, AsOf::Version(version), &ctx.state())
        .await
        .map_err(|e| Failure::of(&e))?;
    ctx.register_table("__view", provider)
        .map_err(|e| Failure::of(&e))?;
    let keys: Vec<String> = def.entity.iter().map(|k| quote(k)).collect();
    let mut order = vec![format!("{} DESC", quote(&def.timestamp))];
    order.extend(def.created.as_deref().map(|c| format!("{} DESC", quote(c))));
    let sql = format!(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {} ORDER BY {}) AS __rank FROM __view) WHERE __rank = 1",
        keys.join(", "),
        order.join(", ")
    );
    let df = ctx.sql(&sql).await.map_err(|e| Failure::of(&e))?;
    let features: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|f| f != "__rank" && !def.key_columns().contains(f))
        .collect();
    let mut stream = df.execute_stream().await.map_err(|e| Failure::of(&e))?;

    // `None` marks the end: a channel closed without it (an error upstream)
    // drops the transaction uncommitted.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<RecordBatch>>(4);
    let entity = def.entity.clone();
    let timestamp = def.timestamp.clone();
    let view = name.to_string();
    let task = tokio::task::spawn_blocking(move || {
        let mut w = online
            .begin(&view, &entity, &features)
            .map_err(|e| Failure::of(&e))?;
        while let Some(message) = rx.blocking_recv() {
            match message {
                Some(batch) => w
                    .put_batch(&batch, &timestamp)
                    .map_err(|e| Failure::of(&e))?,
                None => return w.commit(version, run_id).map_err(|e| Failure::of(&e)),
            }
        }
        Err(Failure::from(
            "the materialization stopped before its end".to_string(),
        ))
    });
    let mut failure = None;
    while let Some(batch) = stream.next().await {
        match batch {
            Ok(b) => {
                if tx.send(Some(b)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(Failure::of(&e));
                break;
            }
        }
    }
    if failure.is_none() {
        let _ = tx.send(None).await;
    }
    drop(tx);
    let written = task.await.map_err(Failure::task)?;
    match failure {
        Some(e) => Err(e),
        None => written,
    }
}

/// One entity's features as the online store holds them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeatureRecord {
    /// The view.
    pub view: String,
    /// The entity: key column to value (a number for an integer key column).
    pub entity: serde_json::Map<String, serde_json::Value>,
    /// The event time of the values (RFC 3339; with `Z` when the view's time
    /// column has a time zone, see [`sluice_core::render`]).
    pub event_timestamp: String,
    /// The features, in the view's order.
    pub features: serde_json::Map<String, serde_json::Value>,
    /// The offline version they were materialized from.
    pub version: u64,
}

/// Reads one entity's record from the online store; `None` when the view holds no
/// record for it.
pub fn get_features(
    ws: &Workspace,
    view: &str,
    key: &[String],
) -> crate::Result<Option<FeatureRecord>> {
    online_entity(ws, view)?;
    let snapshot = ws.online.snapshot()?;
    Ok(lookup(
        ws,
        snapshot.as_ref(),
        view,
        std::slice::from_ref(&key.to_vec()),
    )?
    .remove(0))
}

/// Reads many entities' records of one view from one snapshot, in the order of
/// `keys` (`None` where the view holds no record). Each key holds the key values
/// in the view's key order.
pub fn lookup(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    view: &str,
    keys: &[Vec<String>],
) -> crate::Result<Vec<Option<FeatureRecord>>> {
    let entity = online_entity(ws, view)?;
    if let Some(key) = keys.iter().find(|k| k.len() != entity.len()) {
        return Err(crate::Error::EntityKey {
            view: view.to_string(),
            entity: entity.to_vec(),
            given: key.len(),
        });
    }
    let meta = snapshot
        .meta(view)?
        .ok_or_else(|| sluice_store::Error::NotMaterialized {
            asset: view.to_string(),
        })?;
    let parts: Vec<Vec<&str>> = keys
        .iter()
        .map(|k| k.iter().map(String::as_str).collect())
        .collect();
    let records = snapshot.get_many(view, &parts)?;
    let mut out = Vec::with_capacity(keys.len());
    for (key, record) in keys.iter().zip(records) {
        let Some(record) = record else {
            out.push(None);
            continue;
        };
        let event =
            sluice_core::render::micros(record.event_micros, meta.event_zoned).unwrap_or_default();
        let values = meta.key_values(&key.iter().map(String::as_str).collect::<Vec<_>>());
        out.push(Some(FeatureRecord {
            view: view.to_string(),
            entity: entity.iter().cloned().zip(values).collect(),
            event_timestamp: event,
            features: record.values,
            version: meta.version,
        }));
    }
    Ok(out)
}
