//! Building tiles: one pass over the events sorted by entity and time, each
//! event's partials merged into its tile; tiles that fall out of the history
//! are folded away as the pass moves on, so memory holds one entity's kept
//! tiles.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryBuilder, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::writer::LineDelimited;
use datafusion::arrow::json::{LineDelimitedWriter, WriterBuilder};
use datafusion::arrow::row::OwnedRow;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use super::partial::{Class, Partial};
use super::{EntityTiles, Tile, TileLayout, TilePlan, TiledFeature};
use crate::spine_windows::compile::Kind;
use crate::spine_windows::merge::EventReader;
use crate::spine_windows::{EventWindows, sorted_events};
use crate::training::tokio_stream;

/// The column of encoded tiles in [`build_tiles`]' output.
pub const TILES_COLUMN: &str = "__sluice_tiles";

/// How many entities go in one output batch.
const BATCH: usize = 1024;

/// Tiles `input`'s events: the plan that reads them, and a stream of one row per
/// entity with its key columns and its encoded tiles ([`TILES_COLUMN`], binary).
pub async fn build_tiles(
    input: &EventWindows,
    layout: TileLayout,
) -> Result<(TilePlan, SendableRecordBatchStream)> {
    let micros = |d: std::time::Duration| d.as_micros().min(i64::MAX as u128) as i64;
    let size_micros = micros(layout.size);
    if size_micros <= 0 {
        return Err(DataFusionError::Plan(format!(
            "the tiles of `{}` need a size above zero",
            input.name
        )));
    }
    let (reader, fields, events) = sorted_events(input).await?;
    // Features reading the same column with the same filter the same way share
    // an input; `reads[i]` is the spec whose items input `i` takes.
    let mut inputs: Vec<(Class, bool, Option<usize>, Option<usize>)> = vec![];
    let mut reads = vec![];
    let mut features = vec![];
    for (((spec, f), field), at) in reader
        .specs
        .iter()
        .zip(&input.features)
        .zip(&fields)
        .zip(0..)
    {
        let id = (
            Class::of(spec.kind),
            spec.kind == (Kind::Last { nulls: true }),
            spec.column,
            spec.filter,
        );
        let index = match inputs.iter().position(|x| *x == id) {
            Some(i) => i,
            None => {
                inputs.push(id);
                reads.push(at);
                inputs.len() - 1
            }
        };
        features.push(TiledFeature {
            name: f.name.clone(),
            kind: spec.kind,
            input: index,
            window: spec.window,
            left: spec.left,
            data_type: field.data_type().to_string(),
        });
    }
    let plan = TilePlan {
        size_micros,
        history_micros: micros(layout.history),
        layout: super::layout::LAYOUT,
        inputs: inputs.iter().map(|i| i.0).collect(),
        features,
        derived: vec![],
    };
    let mut fields: Vec<Field> = vec![];
    let probe = reader.converter.convert_rows(std::iter::empty())?;
    for (k, column) in input.entity.iter().zip(probe) {
        fields.push(Field::new(k, column.data_type().clone(), true));
    }
    fields.push(Field::new(TILES_COLUMN, DataType::Binary, false));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let builder = Builder {
        plan: plan.clone(),
        reads,
        all_time: plan.all_time_inputs(),
        longest: plan.longest(),
        reader,
        schema: schema.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
    tokio::spawn(async move {
        if let Err(e) = builder.run(events, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Ok((
        plan,
        Box::pin(RecordBatchStreamAdapter::new(schema, tokio_stream(rx))),
    ))
}

struct Builder {
    plan: TilePlan,
    /// Per input, the feature whose items it takes.
    reads: Vec<usize>,
    /// Per input, whether an all-time feature reads it.
    all_time: Vec<bool>,
    longest: i64,
    reader: EventReader,
    schema: SchemaRef,
}

/// The entity being tiled.
struct Current {
    key: OwnedRow,
    tiles: EntityTiles,
}

impl Builder {
    fn empty(&self) -> Vec<Option<Partial>> {
        vec![None; self.plan.inputs.len()]
    }

    /// Where the kept tiles start for an entity whose newest event is `t`.
    fn keep_from(&self, t: i64) -> i64 {
        let back = self.longest.saturating_add(self.plan.history_micros);
        self.plan.floor(t.saturating_sub(back))
    }

    /// Folds the tiles before `from` into the base partials.
    fn fold(&self, entity: &mut EntityTiles, from: i64) {
        let gone = entity.tiles.partition_point(|t| t.start < from);
        if gone == 0 {
            return;
        }
        for tile in entity.tiles.drain(..gone) {
            for part in [tile.edge, tile.rest] {
                for (i, p) in part.into_iter().enumerate() {
                    if let (true, Some(p)) = (self.all_time[i], p) {
                        merge_into(&mut entity.base[i], self.plan.inputs[i], &p);
                    }
                }
            }
        }
        entity.kept_from = Some(from);
    }

    async fn run(
        self,
        mut events: SendableRecordBatchStream,
        tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
    ) -> Result<()> {
        let mut current: Option<Current> = None;
        let mut keys: Vec<OwnedRow> = vec![];
        let mut blobs = BinaryBuilder::new();
        while let Some(batch) = events.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let prepared = self.reader.event_batch(&batch)?;
            // The JSON of each kept value, for inputs that keep values.
            let mut texts: Vec<Option<Vec<String>>> = vec![];
            for (i, class) in self.plan.inputs.iter().enumerate() {
                let spec = &self.reader.specs[self.reads[i]];
                texts.push(match (class, spec.column) {
                    (Class::Min | Class::Max | Class::Last, Some(c)) => {
                        Some(json_texts(batch.column(c))?)
                    }
                    _ => None,
                });
            }
            for r in 0..batch.num_rows() {
                let key = prepared.keys.row(r);
                if current.as_ref().is_none_or(|c| c.key.row() != key) {
                    if let Some(done) = current.take() {
                        self.finish(done, &mut keys, &mut blobs)?;
                        if keys.len() >= BATCH && !self.emit(&mut keys, &mut blobs, tx).await? {
                            return Ok(());
                        }
                    }
                    current = Some(Current {
                        key: key.owned(),
                        tiles: EntityTiles {
                            newest: i64::MIN,
                            kept_from: None,
                            base: self.empty(),
                            tiles: vec![],
                        },
                    });
                }
                let Some(c) = current.as_mut() else {
                    continue;
                };
                let t = prepared.times.value(r);
                let start = self.plan.floor(t);
                if c.tiles.tiles.last().is_none_or(|x| x.start != start) {
                    c.tiles.tiles.push(Tile {
                        start,
                        edge: self.empty(),
                        rest: self.empty(),
                    });
                }
                let tile = c.tiles.tiles.last_mut().expect("pushed above");
                let part = if t == start {
                    &mut tile.edge
                } else {
                    &mut tile.rest
                };
                for (i, class) in self.plan.inputs.iter().enumerate() {
                    let Some(item) = prepared.inputs[self.reads[i]].item(r) else {
                        continue;
                    };
                    let json = || {
                        texts[i]
                            .as_ref()
                            .and_then(|v| v.get(r).cloned())
                            .unwrap_or_else(|| "null".into())
                    };
                    if let Some(p) = Partial::one(*class, item, json) {
                        merge_into(&mut part[i], *class, &p);
                    }
                }
                c.tiles.newest = t;
                let from = self.keep_from(t);
                self.fold(&mut c.tiles, from);
            }
        }
        if let Some(done) = current.take() {
            self.finish(done, &mut keys, &mut blobs)?;
        }
        if !keys.is_empty() {
            self.emit(&mut keys, &mut blobs, tx).await?;
        }
        Ok(())
    }

    fn finish(
        &self,
        mut c: Current,
        keys: &mut Vec<OwnedRow>,
        blobs: &mut BinaryBuilder,
    ) -> Result<()> {
        let from = self.keep_from(c.tiles.newest);
        self.fold(&mut c.tiles, from);
        let blob = super::layout::encode(&self.plan.inputs, &c.tiles);
        keys.push(c.key);
        blobs.append_value(blob);
        Ok(())
    }

    /// Sends a batch of finished entities; `false` when nobody reads any more.
    async fn emit(
        &self,
        keys: &mut Vec<OwnedRow>,
        blobs: &mut BinaryBuilder,
        tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
    ) -> Result<bool> {
        let mut columns: Vec<ArrayRef> = self
            .reader
            .converter
            .convert_rows(keys.iter().map(|k| k.row()))?;
        columns.push(Arc::new(blobs.finish()));
        keys.clear();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        Ok(tx.send(Ok(batch)).await.is_ok())
    }
}

fn merge_into(slot: &mut Option<Partial>, class: Class, p: &Partial) {
    match slot {
        Some(a) => a.merge(class, p),
        None => *slot = Some(p.clone()),
    }
}

/// Each value of `array` as JSON text, as the online store writes a feature's
/// value (Arrow's JSON writer).
fn json_texts(array: &ArrayRef) -> Result<Vec<String>> {
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "v",
            array.data_type().clone(),
            true,
        )])),
        vec![array.clone()],
    )?;
    let mut out = Vec::with_capacity(array.len() * 8);
    {
        let mut writer: LineDelimitedWriter<&mut Vec<u8>> = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(&mut out);
        writer.write(&batch)?;
        writer.finish()?;
    }
    let text = String::from_utf8(out)
        .map_err(|e| DataFusionError::Execution(format!("JSON of a kept value: {e}")))?;
    Ok(text
        .lines()
        .map(|l| {
            l.strip_prefix("{\"v\":")
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or("null")
                .to_string()
        })
        .collect())
}
