//! The examples a model learns from: its spine joined point-in-time with its
//! feature views at the versions the run pinned, the labels, and the time split.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use futures::TryStreamExt;
use sluice_model::{Frame, Input, InputSource, Kind};
use sluice_project::models::LabelHorizon;
use sluice_project::{Learner, ModelDef, Split, Task};
use sluice_store::AsOf;

use super::model_error;
use crate::training::{memory_limit, name_outputs, open_spine, view_inputs};
use crate::{Error, Result, Workspace};

/// A spine joined with a model's features, collected.
pub(crate) struct Examples {
    /// The joined rows: the spine's columns, then the features.
    pub(crate) batches: Vec<RecordBatch>,
    /// The spine's time column.
    pub(crate) time: String,
    /// The model's inputs, in order (kinds from the data).
    pub(crate) inputs: Vec<Input>,
    /// The versions read.
    pub(crate) versions: BTreeMap<String, u64>,
}

impl Examples {
    /// The inputs' values.
    pub(crate) fn frame(&self, what: &str) -> sluice_model::Result<Frame> {
        let names: Vec<String> = self.inputs.iter().map(|i| i.name.clone()).collect();
        Frame::from_batches(&self.batches, &names, what)
    }
}

/// Joins `spine` (an asset read at `spine_as_of`) with the model's feature
/// views (at `versions`, or their latest) and collects the rows.
pub(crate) async fn examples(
    ws: &Workspace,
    name: &str,
    def: &ModelDef,
    spine: &str,
    time: Option<&str>,
    spine_as_of: AsOf,
    versions: Option<&BTreeMap<String, u64>>,
) -> Result<Examples> {
    let ctx = sluice_transform::session_with_memory_limit(memory_limit()?);
    let (mut views, used) = view_inputs(ws, &ctx, &def.features, versions, None).await?;
    let (stream, time) = open_spine(ws, spine, time, spine_as_of).await?;
    let spine_columns: Vec<String> = stream
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    name_outputs(&spine_columns, &mut views);
    let mut sources: Vec<(String, InputSource)> = Vec::new();
    for c in &spine_columns {
        sources.push((c.clone(), InputSource::Spine { column: c.clone() }));
    }
    for v in &views {
        for (feature, out) in &v.features {
            sources.push((
                out.clone(),
                InputSource::View {
                    view: v.view.clone(),
                    feature: feature.clone(),
                },
            ));
        }
    }
    let wanted: Vec<String> = match &def.learner {
        Learner::Onnx { inputs, .. } => inputs.clone(),
        _ => def
            .columns
            .iter()
            .cloned()
            .chain(
                views
                    .iter()
                    .flat_map(|v| v.features.iter().map(|(_, o)| o.clone())),
            )
            .collect(),
    };
    let mut chosen = Vec::new();
    for w in &wanted {
        match sources.iter().find(|(n, _)| n == w) {
            Some((n, s)) => chosen.push((n.clone(), s.clone())),
            None => {
                return Err(model_error(
                    name,
                    format!(
                        "no column `{w}` in the spine `{spine}` or the model's features\n  help: the spine has: {}",
                        spine_columns.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(label) = &def.label
        && wanted.contains(label)
    {
        return Err(model_error(
            name,
            format!(
                "the label `{label}` is one of the model's inputs\n  help: a model must not read its own answer; remove it from `columns`"
            ),
        ));
    }
    let joined = if views.is_empty() {
        stream
    } else {
        crate::anchored::join_views(ws, &ctx, stream, &time, &views, &used).await?
    };
    let schema = joined.schema();
    let batches: Vec<RecordBatch> = joined
        .try_collect()
        .await
        .map_err(|e| Error::engine("training set", e))?;
    let mut inputs = Vec::new();
    for (n, source) in chosen {
        let field = schema
            .field_with_name(&n)
            .map_err(|e| model_error(name, e))?;
        let kind = Kind::of(&n, field.data_type()).map_err(|e| model_error(name, e))?;
        inputs.push(Input {
            name: n,
            kind,
            source,
        });
    }
    let mut versions: BTreeMap<String, u64> = used.into_iter().collect();
    if let AsOf::Version(v) = spine_as_of {
        versions.insert(spine.to_string(), v);
    }
    Ok(Examples {
        batches,
        time,
        inputs,
        versions,
    })
}

/// The label of every row: `None` where it is missing; 0/1 for `binary`.
pub(crate) fn labels(
    name: &str,
    batches: &[RecordBatch],
    label: &str,
    task: Task,
) -> Result<Vec<Option<f64>>> {
    let array = sluice_model::frame::column(batches, label, "the spine")
        .map_err(|e| model_error(name, e))?;
    let numeric = match array.data_type() {
        t if t.is_numeric() || *t == DataType::Boolean => cast(&array, &DataType::Float64)
            .map_err(|e| model_error(name, format!("label `{label}`: {e}")))?,
        t => {
            return Err(model_error(
                name,
                format!(
                    "the label `{label}` is {t}\n  help: a binary label is 0/1 or a boolean, a regression label a number"
                ),
            ));
        }
    };
    let values = numeric.as_primitive::<Float64Type>();
    let mut out = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        if values.is_null(i) || values.value(i).is_nan() {
            out.push(None);
            continue;
        }
        let v = values.value(i);
        if task == Task::Binary && v != 0.0 && v != 1.0 {
            return Err(model_error(
                name,
                sluice_model::Error::Label {
                    column: label.to_string(),
                    row: i + 1,
                    problem: format!("{v} is neither 0 nor 1"),
                    help: "a binary label is 0/1 or a boolean; for numbers use `task = \"regression\"`".into(),
                },
            ));
        }
        out.push(Some(v));
    }
    Ok(out)
}

/// When each row's label became known (microseconds), or `None` when labels
/// are known at their row's time: the row's time plus `label_delay`, or the
/// spine's `label_available` column.
pub(crate) fn label_known(
    name: &str,
    def: &ModelDef,
    batches: &[RecordBatch],
    times: &[Option<i64>],
) -> Result<Option<Vec<Option<i64>>>> {
    match &def.label_horizon {
        None => Ok(None),
        Some(LabelHorizon::Delay(d)) => Ok(Some(
            times
                .iter()
                .map(|t| t.map(|t| t.saturating_add(*d)))
                .collect(),
        )),
        Some(LabelHorizon::Column(c)) => sluice_model::frame::times(batches, c, "the spine")
            .map(Some)
            .map_err(|e| model_error(name, format!("label_available: {e}"))),
    }
}

/// Whether row `i`'s label was known at `at`.
pub(crate) fn known_at(known: Option<&[Option<i64>]>, i: usize, at: i64) -> bool {
    known.is_none_or(|k| k[i].is_some_and(|k| k <= at))
}

/// The rows of a model's time split.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SplitRows {
    /// Rows before the cut whose label was known at the cut.
    pub(crate) train: Vec<usize>,
    /// Rows at or after the cut.
    pub(crate) valid: Vec<usize>,
    /// Where validation starts.
    pub(crate) cut: Option<i64>,
    /// Labelled rows before the cut held out of training: their label was not
    /// yet known at the cut.
    pub(crate) label_pending: usize,
}

/// Rows usable for training: a label and a time; split into training and
/// validation rows by the model's split. A row before the cut trains only if
/// its label was known at the cut (`known`): a model trained then could not
/// have learnt from it. Validation rows are all kept, pending or not: they are
/// judged after the fact, as the model's scores would be.
pub(crate) fn split_rows(
    labels: &[Option<f64>],
    times: &[Option<i64>],
    known: Option<&[Option<i64>]>,
    split: Split,
) -> SplitRows {
    let usable: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i].is_some() && times[i].is_some())
        .collect();
    let cut = match split {
        Split::Before(t) => Some(t),
        Split::Last(share) => {
            let ts = usable.iter().filter_map(|&i| times[i]);
            match (ts.clone().min(), ts.max()) {
                (Some(lo), Some(hi)) => Some(hi - ((hi - lo) as f64 * share).round() as i64),
                _ => None,
            }
        }
    };
    let Some(cut) = cut else {
        return SplitRows::default();
    };
    let (valid, before): (Vec<usize>, Vec<usize>) = usable
        .into_iter()
        .partition(|&i| times[i].is_some_and(|t| t >= cut));
    let (train, pending): (Vec<usize>, Vec<usize>) =
        before.into_iter().partition(|&i| known_at(known, i, cut));
    SplitRows {
        train,
        valid,
        cut: Some(cut),
        label_pending: pending.len(),
    }
}

pub(crate) fn micros_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(sluice_core::render::instant)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_keep_time_order_and_skip_rows_without_label_or_time() {
        let labels = [Some(0.0), Some(1.0), None, Some(1.0), Some(0.0), Some(1.0)];
        let times = [Some(0), Some(10), Some(20), None, Some(80), Some(100)];
        let s = split_rows(&labels, &times, None, Split::Last(0.2));
        assert_eq!(s.cut, Some(80));
        assert_eq!(s.train, vec![0, 1]);
        assert_eq!(s.valid, vec![4, 5]);
        assert_eq!(s.label_pending, 0);
        let s = split_rows(&labels, &times, None, Split::Before(10));
        assert_eq!((s.train, s.valid), (vec![0], vec![1, 4, 5]));
    }

    #[test]
    fn label_delay_keeps_unknown_labels_out_of_training_not_out_of_validation() {
        let labels = [Some(0.0), Some(1.0), Some(0.0), Some(1.0), Some(1.0)];
        let times = [Some(0), Some(10), Some(45), Some(50), Some(90)];
        // Known 10 after the row: at the cut (50) rows 0 and 1 are known, row 2
        // (known at 55) is not; rows 3 and 4 validate although their labels
        // came later still.
        let known: Vec<Option<i64>> = times.iter().map(|t| t.map(|t| t + 10)).collect();
        let s = split_rows(&labels, &times, Some(&known), Split::Before(50));
        assert_eq!(s.train, vec![0, 1]);
        assert_eq!(s.valid, vec![3, 4]);
        assert_eq!(s.label_pending, 1);
        // Known exactly at the cut counts as known (row 2); row 3 (known at
        // 60) is not.
        let s = split_rows(&labels, &times, Some(&known), Split::Before(55));
        assert_eq!((s.train, s.label_pending), (vec![0, 1, 2], 1));
        // A row with no availability time is not known.
        let known = [Some(0), None, Some(0), Some(0), Some(0)];
        let s = split_rows(&labels, &times, Some(&known), Split::Before(50));
        assert_eq!((s.train, s.label_pending), (vec![0, 2], 1));
    }
}
