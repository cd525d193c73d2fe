//! Exports of a view whose online windows are read as of the request (a view
//! that keeps tiles): each entity's windows are written as of the run's time
//! (the workspace's clock), read from tiles exactly as the online store serves
//! them, beside the other columns of its newest row (keys, event time). Such an
//! export ages with the clock: its fingerprint names the tile it was read in, so
//! it is stale again once the clock has crossed into a new tile.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::common::JoinType;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext, ident};
use futures::StreamExt;
use sluice_project::{Asset, Definition, ExportDef, FeatureDef};

use crate::Workspace;
use crate::online::OnlineKey;
use crate::outcome::Failure;

/// What separates an export's fingerprint from the tile it was read in.
const TILE_MARK: &str = " as of the tile from ";

/// The view that keeps tiles an export writes.
pub(crate) struct TiledView<'a> {
    asset: &'a Asset,
    def: &'a FeatureDef,
    size: Duration,
}

/// The view an export writes, when it keeps tiles (its windows are then read as
/// of the run).
pub(crate) fn tiled_view<'a>(ws: &'a Workspace, export: &ExportDef) -> Option<TiledView<'a>> {
    let asset = ws.project.asset(export.view.as_deref()?)?;
    let Definition::Features(def) = &asset.definition else {
        return None;
    };
    Some(TiledView {
        asset,
        def,
        size: def.tiles?.size,
    })
}

impl TiledView<'_> {
    /// The view's name.
    pub(crate) fn name(&self) -> &str {
        self.asset.name.as_str()
    }

    /// The start of the tile `now` (microseconds since the epoch) falls in.
    fn tile(&self, now: i64) -> i64 {
        let size = self.size.as_micros().clamp(1, i64::MAX as u128) as i64;
        now.div_euclid(size) * size
    }

    /// `base` (the export's fingerprint from its definition and inputs) with the
    /// tile `now` falls in.
    pub(crate) fn fingerprint(&self, base: String, now: i64) -> String {
        let tile = sluice_core::render::micros(self.tile(now), true).unwrap_or_default();
        format!("{base}{TILE_MARK}{tile}")
    }
}

/// Why an export of a view that keeps tiles is stale when only the tile of its
/// fingerprint moved: `None` when something else changed.
pub(crate) fn tile_moved(published: &str, now: &str) -> Option<String> {
    let (old, old_tile) = published.split_once(TILE_MARK)?;
    let (new, new_tile) = now.split_once(TILE_MARK)?;
    (old == new && old_tile != new_tile).then(|| {
        format!(
            "its windows are read as of the run, and the clock has moved from the tile of {old_tile} into the tile of {new_tile} since it was written"
        )
    })
}

/// `newest` (the export's rows: the view's newest row per entity) with each
/// tiled feature read as of `now`, and each derived feature computed over them,
/// in place of their values at the newest event.
/// `version` is the view's version the run pinned.
pub(crate) async fn as_of(
    ws: &Workspace,
    ctx: &SessionContext,
    newest: DataFrame,
    view: &TiledView<'_>,
    version: u64,
    now: i64,
) -> Result<DataFrame, Failure> {
    let name = view.asset.name.as_str();
    let key = OnlineKey::of(view.def);
    let not_features = key.key_columns();
    let schema = newest.schema().as_arrow().clone();
    let features: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|f| !not_features.contains(f))
        .collect();
    let rows = ctx.table(name).await.map_err(|e| Failure::of(&e))?;
    let tiles = crate::online::view_tiles(ws, ctx, view.asset, &key, rows, &features, version);
    let Some((plan, mut stream)) = tiles.await? else {
        // Columns the declaration no longer explains: the newest rows, as online.
        return Ok(newest);
    };
    let derived = plan
        .derived(name)
        .transpose()
        .map_err(|e| Failure::of(&e))?;
    let mut tiled: Vec<String> = plan.features().map(str::to_string).collect();
    if let Some(d) = &derived {
        tiled.extend(d.fields().map(|f| f.name().clone()));
    }
    let column = |i: usize| format!("__sluice_tiled_{i}");
    let key_column = |i: usize| format!("__sluice_key_{i}");
    let mut value_fields = vec![];
    for (i, f) in tiled.iter().enumerate() {
        let field = schema.field_with_name(f).map_err(|e| Failure::of(&e))?;
        value_fields.push(Field::new(column(i), field.data_type().clone(), true));
    }
    let value_schema = Arc::new(Schema::new(value_fields));
    let mut batches = vec![];
    let mut out_schema = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| Failure::of(&e))?;
        let keys = key.entity.len();
        let blobs = batch.column(keys).as_binary::<i32>();
        let mut records = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            let values = sluice_transform::read_tiles(&plan, blobs.value(r), now).map_err(|e| {
                Failure::from(format!(
                    "`{name}`: the windows of row {r} of its tiles cannot be read as of the run: {e}\n  help: run `sluice run {name}` to materialize it again"
                ))
            })?;
            let mut record: serde_json::Map<String, serde_json::Value> =
                plan.features().map(str::to_string).zip(values).collect();
            if let Some(d) = &derived {
                d.evaluate_json(&mut record).map_err(|e| Failure::of(&e))?;
            }
            let record: serde_json::Map<String, serde_json::Value> = tiled
                .iter()
                .enumerate()
                .map(|(i, f)| (column(i), record.remove(f).unwrap_or_default()))
                .collect();
            records.push(record);
        }
        let mut decoder = ReaderBuilder::new(value_schema.clone())
            .build_decoder()
            .map_err(|e| Failure::of(&e))?;
        decoder.serialize(&records).map_err(|e| Failure::of(&e))?;
        let Some(values) = decoder.flush().map_err(|e| Failure::of(&e))? else {
            continue;
        };
        let mut fields: Vec<Field> = vec![];
        let mut columns: Vec<ArrayRef> = vec![];
        for i in 0..keys {
            let f = batch.schema_ref().field(i).clone();
            fields.push(f.with_name(key_column(i)));
            columns.push(batch.column(i).clone());
        }
        fields.extend(value_schema.fields().iter().map(|f| f.as_ref().clone()));
        columns.extend(values.columns().iter().cloned());
        let schema = out_schema
            .get_or_insert_with(|| Arc::new(Schema::new(fields)))
            .clone();
        batches.push(RecordBatch::try_new(schema, columns).map_err(|e| Failure::of(&e))?);
    }
    let Some(tiles_schema) = out_schema else {
        // No entity has events: no row to change.
        return Ok(newest);
    };
    let table = MemTable::try_new(tiles_schema, vec![batches]).map_err(|e| Failure::of(&e))?;
    let read = ctx
        .read_table(Arc::new(table))
        .map_err(|e| Failure::of(&e))?;
    let left: Vec<&str> = key.entity.iter().map(String::as_str).collect();
    let right: Vec<String> = (0..key.entity.len()).map(key_column).collect();
    let right: Vec<&str> = right.iter().map(String::as_str).collect();
    let select = schema
        .fields()
        .iter()
        .map(|f| match tiled.iter().position(|t| t == f.name()) {
            Some(i) => ident(column(i)).alias(f.name()),
            None => ident(f.name()),
        })
        .collect::<Vec<_>>();
    newest
        .join(read, JoinType::Left, &left, &right, None)
        .and_then(|df| df.select(select))
        .map_err(|e| Failure::of(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_moved_tile_is_given_as_the_reason() {
        let old = format!("abc{TILE_MARK}2026-04-01T00:00:00Z");
        let new = format!("abc{TILE_MARK}2026-04-02T00:00:00Z");
        let why = tile_moved(&old, &new).expect("the tile moved");
        assert!(
            why.contains(
                "from the tile of 2026-04-01T00:00:00Z into the tile of 2026-04-02T00:00:00Z"
            ),
            "{why}"
        );
        // The definition or an input changed too: the kind's own reason.
        assert_eq!(
            tile_moved(&old, &format!("xyz{TILE_MARK}2026-04-02T00:00:00Z")),
            None
        );
        assert_eq!(tile_moved(&old, &old), None);
        assert_eq!(tile_moved("abc", &new), None);
    }
}
