//! The examples a model learns from: its spine joined point-in-time with its
//! feature views at the versions the run pinned, the labels, and the time split.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use futures::TryStreamExt;
use sluice_model::{Frame, Input, InputSource, Kind};
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
        sluice_transform::point_in_time_join(&ctx, stream, &time, &views)
            .await
            .map_err(|e| Error::engine("training set", e))?
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

/// Rows usable for training: a label and a time; split into (train, valid) by
/// the model's split, with the time validation starts at.
pub(crate) fn split_rows(
    labels: &[Option<f64>],
    times: &[Option<i64>],
    split: Split,
) -> (Vec<usize>, Vec<usize>, Option<i64>) {
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
        return (Vec::new(), Vec::new(), None);
    };
    let (valid, train): (Vec<usize>, Vec<usize>) = usable
        .into_iter()
        .partition(|&i| times[i].is_some_and(|t| t >= cut));
    (train, valid, Some(cut))
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
        let (train, valid, cut) = split_rows(&labels, &times, Split::Last(0.2));
        assert_eq!(cut, Some(80));
        assert_eq!(train, vec![0, 1]);
        assert_eq!(valid, vec![4, 5]);
        let (train, valid, _) = split_rows(&labels, &times, Split::Before(10));
        assert_eq!((train, valid), (vec![0], vec![1, 4, 5]));
    }
}
