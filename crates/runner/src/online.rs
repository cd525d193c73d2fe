//! Publishing a feature view's (or a model's predictions') version into the
//! online store: per entity, the row with the newest event (ties: the newest
//! created time), all in one transaction.

use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use sluice_core::AssetStatus;
use sluice_project::features::quote;
use sluice_project::{AsOf, Asset, Definition, FeatureBody};
use sluice_store::{OnlineSnapshot, OnlineStore, OnlineWrite};

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
    /// How a feature view's rows are keyed.
    pub(crate) fn of(def: &sluice_project::FeatureDef) -> Self {
        OnlineKey {
            entity: def.entity.clone(),
            timestamp: def.timestamp.clone(),
            created: def.created.clone(),
        }
    }

    /// The columns that are not features: the keys and the times.
    pub(crate) fn key_columns(&self) -> Vec<String> {
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
        Ok(Some(meta))
            if meta.version == version
                && done.status == AssetStatus::UpToDate
                && tiled_as_declared(asset, meta.tiles.as_ref()) =>
        {
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

/// Whether the tiles the online store keeps for `asset` (their plan) are tiled
/// as the project now declares, in the layout this version reads: a changed
/// tile or history, or tiles of an older sluice, are written again.
fn tiled_as_declared(asset: &Asset, kept: Option<&serde_json::Value>) -> bool {
    let declared = match &asset.definition {
        Definition::Features(view) => view.tiles,
        _ => None,
    };
    let micros = |d: std::time::Duration| d.as_micros().min(i64::MAX as u128) as i64;
    match (declared, kept) {
        (None, None) => true,
        (Some(t), Some(plan)) => serde_json::from_value::<sluice_transform::TilePlan>(plan.clone())
            .is_ok_and(|p| {
                p.is_current()
                    && p.size_micros == micros(t.size)
                    && p.history_micros == micros(t.history)
            }),
        _ => false,
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
    let provider = crate::kinds::delta::version_provider(ws, &ctx, name, version).await?;
    ctx.register_table("__view", provider)
        .map_err(|e| Failure::of(&e))?;
    let sql = if one_row_per_entity(asset) {
        "SELECT * FROM __view".to_string()
    } else {
        let keys: Vec<String> = def.entity.iter().map(|k| quote(k)).collect();
        let mut order = vec![format!("{} DESC", quote(&def.timestamp))];
        order.extend(def.created.as_deref().map(|c| format!("{} DESC", quote(c))));
        format!(
            "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {} ORDER BY {}) AS __rank FROM __view) WHERE __rank = 1",
            keys.join(", "),
            order.join(", ")
        )
    };
    let df = ctx.sql(&sql).await.map_err(|e| Failure::of(&e))?;
    let features: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|f| f != "__rank" && !def.key_columns().contains(f))
        .collect();
    let rows = ctx.table("__view").await.map_err(|e| Failure::of(&e))?;
    let tiles = match view_tiles(ws, &ctx, asset, def, rows, &features, version).await? {
        Some((plan, stream)) => Some((
            serde_json::to_value(&plan).map_err(|e| Failure::from(e.to_string()))?,
            stream,
        )),
        None => None,
    };
    let mut stream = df.execute_stream().await.map_err(|e| Failure::of(&e))?;

    // `End` marks the end: a channel closed without it (an error upstream)
    // drops the transaction uncommitted.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(4);
    let entity = def.entity.clone();
    let timestamp = def.timestamp.clone();
    let view = name.to_string();
    let task = tokio::task::spawn_blocking(move || {
        let mut w = online
            .begin(&view, &entity, &features)
            .map_err(|e| Failure::of(&e))?;
        while let Some(message) = rx.blocking_recv() {
            let done = match message {
                Message::Rows(batch) => w.put_batch(&batch, &timestamp),
                Message::Tiled(plan) => w.keep_tiles(plan),
                Message::Tiles(batch) => w.put_tiles(&batch, sluice_transform::TILES_COLUMN),
                Message::End => return w.commit(version, run_id).map_err(|e| Failure::of(&e)),
            };
            done.map_err(|e| Failure::of(&e))?;
        }
        Err(Failure::from(
            "the materialization stopped before its end".to_string(),
        ))
    });
    let mut failure = send_all(&mut stream, &tx, Message::Rows).await;
    if let (None, Some((plan, mut stream))) = (&failure, tiles) {
        failure = match tx.send(Message::Tiled(plan)).await {
            Ok(()) => send_all(&mut stream, &tx, Message::Tiles).await,
            Err(_) => None,
        };
    }
    if failure.is_none() {
        let _ = tx.send(Message::End).await;
    }
    drop(tx);
    let written = task.await.map_err(Failure::task)?;
    match failure {
        Some(e) => Err(e),
        None => written,
    }
}

/// Whether `asset`'s table holds one row per entity already, so that its
/// newest rows are all its rows: a declared feature view as of one time
/// (grouped by its entity), written whole, not by partition or increment.
/// Ranking its rows would run a window partitioned by the entity, whose cost
/// grows with the number of entities.
fn one_row_per_entity(asset: &Asset) -> bool {
    let Definition::Features(def) = &asset.definition else {
        return false;
    };
    asset.partitioned.is_none()
        && asset.incremental.is_none()
        && matches!(&def.body, FeatureBody::Declared(d) if d.as_of != AsOf::Event)
}

/// What the materialization's writer is sent.
enum Message {
    /// Newest rows.
    Rows(RecordBatch),
    /// The view keeps tiles, read by this plan.
    Tiled(serde_json::Value),
    /// Entities' tiles.
    Tiles(RecordBatch),
    /// Commit.
    End,
}

/// Sends every batch of `stream` to the writer; the failure that stopped it.
async fn send_all(
    stream: &mut datafusion::execution::SendableRecordBatchStream,
    tx: &tokio::sync::mpsc::Sender<Message>,
    wrap: fn(RecordBatch) -> Message,
) -> Option<Failure> {
    while let Some(batch) = stream.next().await {
        match batch {
            Ok(b) => {
                if tx.send(wrap(b)).await.is_err() {
                    // The writer stopped: its own error is the one to report.
                    return None;
                }
            }
            Err(e) => return Some(Failure::of(&e)),
        }
    }
    None
}

/// The tiles of a declared view computed at every event (`asset`, with a
/// `tile`) over `rows`, its table at `version`: the plan that reads them and one
/// row per entity. `None` for other views, and for a view whose columns its
/// declaration no longer explains (it keeps its newest rows).
pub(crate) async fn view_tiles(
    ws: &Workspace,
    ctx: &datafusion::prelude::SessionContext,
    asset: &Asset,
    def: &OnlineKey,
    rows: datafusion::prelude::DataFrame,
    features: &[String],
    version: u64,
) -> Result<
    Option<(
        sluice_transform::TilePlan,
        datafusion::execution::SendableRecordBatchStream,
    )>,
    Failure,
> {
    let Definition::Features(view) = &asset.definition else {
        return Ok(None);
    };
    let Some(tiling) = view.tiles else {
        return Ok(None);
    };
    let input = sluice_transform::ViewInput {
        view: asset.name.to_string(),
        rows,
        entity: def.entity.clone(),
        timestamp: def.timestamp.clone(),
        created: def.created.clone(),
        ttl: view.ttl,
        features: features.iter().map(|f| (f.clone(), f.clone())).collect(),
    };
    let windows = crate::anchored::event_windows(ws, ctx, &input, Some(version))
        .await
        .map_err(Failure::from)?;
    let Some((windows, derive)) = windows else {
        return Ok(None);
    };
    let layout = sluice_transform::TileLayout {
        size: tiling.size,
        history: tiling.history,
    };
    let (plan, stream) = sluice_transform::build_tiles(&windows, layout)
        .await
        .map_err(|e| Failure::of(&e))?;
    let plan = match derive {
        Some(d) => plan.with_derived(d.derived),
        None => plan,
    };
    Ok(Some((plan, stream)))
}

/// A view's tile plan, parsed, and its derived features compiled.
#[derive(Debug)]
pub struct TileReader {
    /// How the view's tiles are read.
    pub(crate) plan: sluice_transform::TilePlan,
    /// Its derived features, computed over the features read.
    derived: Option<sluice_transform::DerivedFeatures>,
}

impl TileReader {
    /// Adds the derived features to one entity's `values` (read from tiles).
    pub(crate) fn derive(
        &self,
        view: &str,
        values: &mut serde_json::Map<String, serde_json::Value>,
    ) -> crate::Result<()> {
        match &self.derived {
            Some(d) => d
                .evaluate_json(values)
                .map_err(|e| crate::Error::OnlineTiles {
                    view: view.to_string(),
                    message: e.to_string(),
                }),
            None => Ok(()),
        }
    }
}

/// The tile readers of the online store's views, each made once per view and
/// materialization (its version, run and write time).
#[derive(Debug, Clone, Default)]
pub struct TileReaders(std::sync::Arc<std::sync::Mutex<ReaderMap>>);

/// Per view: what its reader was made from, and the reader.
type ReaderMap = std::collections::HashMap<String, (String, std::sync::Arc<TileReader>)>;

impl TileReaders {
    /// The reader of `view`'s tiles as `meta` describes them; `None` for a view
    /// that keeps its newest row.
    pub(crate) fn get(
        &self,
        view: &str,
        meta: &sluice_store::ViewMeta,
    ) -> crate::Result<Option<std::sync::Arc<TileReader>>> {
        let Some(plan) = &meta.tiles else {
            return Ok(None);
        };
        let made = format!("{}/{}/{}", meta.version, meta.run_id, meta.written_at);
        let cached = |readers: &Self| {
            let map = readers.0.lock().ok()?;
            let (at, reader) = map.get(view)?;
            (*at == made).then(|| reader.clone())
        };
        if let Some(reader) = cached(self) {
            return Ok(Some(reader));
        }
        let fail = |message: String| crate::Error::OnlineTiles {
            view: view.to_string(),
            message: format!("{message}\n  help: run `sluice run {view}` to materialize it again"),
        };
        let plan: sluice_transform::TilePlan = serde_json::from_value(plan.clone())
            .map_err(|e| fail(format!("the online store's tile plan cannot be read ({e})")))?;
        let derived = plan
            .derived(view)
            .transpose()
            .map_err(|e| fail(e.to_string()))?;
        let reader = std::sync::Arc::new(TileReader { plan, derived });
        if let Ok(mut map) = self.0.lock() {
            map.insert(view.to_string(), (made, reader.clone()));
        }
        Ok(Some(reader))
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
    /// For a view whose windows are read as of the request: the time they were
    /// read as of (RFC 3339); `None` for a view that keeps its newest row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

/// Reads one entity's record from the online store, as of `at` (microseconds
/// since the epoch; `None`: now); `None` when the view holds no record for it.
pub fn get_features(
    ws: &Workspace,
    view: &str,
    key: &[String],
    at: Option<i64>,
) -> crate::Result<Option<FeatureRecord>> {
    online_entity(ws, view)?;
    let snapshot = ws.online.snapshot()?;
    Ok(lookup(
        ws,
        snapshot.as_ref(),
        view,
        std::slice::from_ref(&key.to_vec()),
        at,
    )?
    .remove(0))
}

/// Reads many entities' records of one view from one snapshot, in the order of
/// `keys` (`None` where the view holds no record). Each key holds the key values
/// in the view's key order.
///
/// A view that keeps tiles answers its windows as of `at` (microseconds since
/// the epoch; `None`: the workspace's clock), so a window with no event left in
/// it reads 0 or null. A view that keeps its newest row answers that row; asked
/// for a time before it, the read fails ([`crate::Error::OnlineAsOf`]).
pub fn lookup(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    view: &str,
    keys: &[Vec<String>],
    at: Option<i64>,
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
    let tiles_error = |message: String| crate::Error::OnlineTiles {
        view: view.to_string(),
        message,
    };
    let reader = ws.tile_readers.get(view, &meta)?;
    let now = at.unwrap_or_else(|| ws.clock.now_micros());
    let render = |t: i64| sluice_core::render::micros(t, meta.event_zoned).unwrap_or_default();
    let mut out = Vec::with_capacity(keys.len());
    for (key, record) in keys.iter().zip(records) {
        let Some(mut record) = record else {
            out.push(None);
            continue;
        };
        let mut as_of = None;
        match (&reader, &record.tiles) {
            (Some(reader), Some(blob)) => {
                match sluice_transform::read_tiles(&reader.plan, blob, now) {
                    Ok(values) => {
                        for (name, v) in reader.plan.features().zip(values) {
                            record.values.insert(name.to_string(), v);
                        }
                        reader.derive(view, &mut record.values)?;
                    }
                    Err(sluice_transform::TileError::BeforeHistory { at, earliest }) => {
                        return Err(crate::Error::OnlineAsOf {
                            view: view.to_string(),
                            key: key.clone(),
                            at: render(at),
                            earliest: render(earliest),
                        });
                    }
                    Err(e) => {
                        return Err(tiles_error(format!(
                            "{e}\n  help: run `sluice run {view}` to materialize it again"
                        )));
                    }
                }
                as_of = Some(render(now));
            }
            // The newest row is the answer at any time from its event on.
            (_, _) if at.is_some_and(|t| t < record.event_micros) => {
                return Err(crate::Error::OnlineAsOf {
                    view: view.to_string(),
                    key: key.clone(),
                    at: render(now),
                    earliest: render(record.event_micros),
                });
            }
            _ => {}
        }
        let event = render(record.event_micros);
        let values = meta.key_values(&key.iter().map(String::as_str).collect::<Vec<_>>());
        out.push(Some(FeatureRecord {
            view: view.to_string(),
            entity: entity.iter().cloned().zip(values).collect(),
            event_timestamp: event,
            features: record.values,
            version: meta.version,
            as_of,
        }));
    }
    Ok(out)
}

/// Reads a time asked for an online read (`?as_of=`, `--as-of`): RFC 3339,
/// `YYYY-MM-DD HH:MM:SS` (UTC) or a date (its midnight, UTC); microseconds since
/// the epoch.
pub fn parse_read_time(text: &str) -> crate::Result<i64> {
    let s = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    if let Some(t) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc().timestamp_micros());
    }
    Err(crate::Error::ReadTime(s.to_string()))
}
