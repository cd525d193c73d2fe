//! Models in a run: the training set (the spine joined point-in-time with the
//! model's feature views, at the versions the run pinned), the time split, the
//! training on a blocking thread, the promotion thresholds, and the version's
//! file and registry row.
//!
//! A model is up to date when its newest version was trained from the same
//! definition and input versions (its fingerprint). The version downstream
//! assets read — the one that serves — is the newest promoted one; a version
//! that misses its thresholds is recorded but leaves the serving one in place.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use futures::TryStreamExt;
use sluice_core::AssetStatus;
use sluice_model::{Frame, Input, InputSource, Kind, Model, Split as DataSplit, metrics};
use sluice_project::{Asset, Learner, ModelDef, Split, Task};
use sluice_store::{AsOf, ModelVersion};

use crate::kinds::Job;
use crate::outcome::AssetOutcome;
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

pub(crate) fn model_error(model: &str, e: impl std::fmt::Display) -> Error {
    Error::Model {
        model: model.to_string(),
        message: e.to_string(),
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

fn micros_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// Why a version's metrics miss the model's thresholds (`None`: promoted).
pub(crate) fn promotion(def: &ModelDef, metrics: &BTreeMap<String, f64>) -> Option<String> {
    let mut misses = Vec::new();
    for (metric, bounds) in &def.promote {
        match metrics.get(metric.as_str()) {
            None => misses.push(format!("{metric} could not be measured")),
            Some(v) => {
                if let Some(min) = bounds.min
                    && *v < min
                {
                    misses.push(format!("{metric} {v:.4} < {min}"));
                }
                if let Some(max) = bounds.max
                    && *v > max
                {
                    misses.push(format!("{metric} {v:.4} > {max}"));
                }
            }
        }
    }
    (!misses.is_empty()).then(|| misses.join(", "))
}

/// Trains (or imports) a new version of the model.
pub(crate) async fn build(job: &Job<'_>, def: &ModelDef) -> AssetOutcome {
    match train_version(
        job.ws,
        job.asset,
        def,
        job.run_id,
        job.pins,
        &job.fingerprint,
    )
    .await
    {
        Ok(v) => settle(job, AssetStatus::Built, Some(v)),
        Err(e) => job.failed(e.to_string()),
    }
}

/// The outcome of a model after a build of `built` (or none, when it was up
/// to date): it serves its newest promoted version.
pub(crate) fn settle(
    job: &Job<'_>,
    status: AssetStatus,
    built: Option<ModelVersion>,
) -> AssetOutcome {
    let name = job.asset.name.as_str();
    let newest = match built {
        Some(v) => Ok(Some(v)),
        None => job.ws.metadata.newest_model_version(name),
    };
    let serving = job.ws.metadata.promoted_model_version(name);
    match (newest, serving) {
        (Ok(Some(newest)), Ok(serving)) => {
            outcome(job.asset, job.started, status, &newest, serving.as_ref())
        }
        (Ok(None), _) => job.failed(format!("model `{name}` has no version")),
        (Err(e), _) | (_, Err(e)) => job.failed(e.to_string()),
    }
}

/// The outcome of a model whose newest version is `newest`: it serves
/// `serving`; with none promoted the model fails (nothing downstream can use it).
fn outcome(
    asset: &Asset,
    started: Instant,
    status: AssetStatus,
    newest: &ModelVersion,
    serving: Option<&ModelVersion>,
) -> AssetOutcome {
    let rows = newest.train_rows + newest.valid_rows;
    let base = AssetOutcome::new(asset, status, serving.map(|s| s.version), rows, started);
    match (newest.promoted, serving) {
        (true, _) => base,
        (false, Some(s)) => AssetOutcome {
            warnings: 1,
            error: Some(format!(
                "version {} was not promoted ({}); version {} keeps serving",
                newest.version,
                newest.reason.as_deref().unwrap_or("thresholds missed"),
                s.version
            )),
            ..base
        },
        (false, None) => AssetOutcome {
            status: AssetStatus::Failed,
            error: Some(format!(
                "version {} was not promoted ({}), and no version of `{}` is promoted\n  help: improve the model or relax `promote` in the project file",
                newest.version,
                newest.reason.as_deref().unwrap_or("thresholds missed"),
                asset.name
            )),
            ..base
        },
    }
}

async fn train_version(
    ws: &Workspace,
    asset: &Asset,
    def: &ModelDef,
    run_id: i64,
    pinned: &BTreeMap<String, u64>,
    fp: &str,
) -> Result<ModelVersion> {
    let name = asset.name.to_string();
    let started = Instant::now();
    let version = ws.metadata.next_model_version(&name)?;
    let file = sluice_store::model_file(&ws.warehouse, &name, version);
    let dir = ws.warehouse.model_dir(&name, version);
    let examples = match &def.spine {
        Some(spine) => {
            let as_of = pinned
                .get(spine)
                .map_or(AsOf::Latest, |v| AsOf::Version(*v));
            Some(
                examples(
                    ws,
                    &name,
                    def,
                    spine,
                    def.timestamp.as_deref(),
                    as_of,
                    Some(pinned),
                )
                .await?,
            )
        }
        None => None,
    };

    // An imported model: copy the file beside the version, load it, measure it
    // on the validation rows when there is a spine.
    if let Learner::Onnx {
        path,
        inputs,
        output,
    } = &def.learner
    {
        let input_specs = match &examples {
            Some(e) => e.inputs.clone(),
            None => inputs
                .iter()
                .map(|n| Input {
                    name: n.clone(),
                    kind: Kind::Numeric,
                    source: InputSource::Spine { column: n.clone() },
                })
                .collect(),
        };
        let bytes = std::fs::read(path)
            .map_err(|e| model_error(&name, format!("{}: {e}", path.display())))?;
        let onnx_file = dir.join("model.onnx");
        sluice_model::write_atomically(&onnx_file, &bytes)
            .map_err(|e| model_error(&name, format!("{}: {e}", onnx_file.display())))?;
        let (task, threshold, output) = (def.task, def.threshold, output.clone());
        let model = tokio::task::spawn_blocking(move || {
            Model::import_onnx(task, threshold, input_specs, &onnx_file, output)
        })
        .await
        .map_err(|e| model_error(&name, e))?
        .map_err(|e| model_error(&name, e))?;
        let (train_rows, valid_rows, valid_from, metrics) = match &examples {
            Some(e) => {
                let measured = measure(&name, def, e, &model)?;
                (0, measured.0, measured.1, measured.2)
            }
            None => (0, 0, None, BTreeMap::new()),
        };
        model.save(&file).map_err(|e| model_error(&name, e))?;
        return record(
            ws,
            asset,
            def,
            run_id,
            version,
            fp,
            pinned,
            (train_rows, valid_rows, valid_from),
            metrics,
            Vec::new(),
            started,
        );
    }

    let examples = examples.ok_or_else(|| model_error(&name, "a trained model needs a spine"))?;
    let label = def
        .label
        .clone()
        .ok_or_else(|| model_error(&name, "a trained model needs a label"))?;
    let labels = labels(&name, &examples.batches, &label, def.task)?;
    let times = sluice_model::frame::times(&examples.batches, &examples.time, "the spine")
        .map_err(|e| model_error(&name, e))?;
    let (train_rows, valid_rows, cut) = split_rows(&labels, &times, def.split);
    if valid_rows.is_empty() || train_rows.is_empty() {
        return Err(model_error(
            &name,
            format!(
                "the split leaves {} training and {} validation rows (of {} labelled rows with a time)\n  help: move `split` so that both sides have rows",
                train_rows.len(),
                valid_rows.len(),
                labels.iter().filter(|l| l.is_some()).count()
            ),
        ));
    }
    let frame = examples
        .frame("the training set")
        .map_err(|e| model_error(&name, e))?;
    let (task, learner, threshold, inputs) = (
        def.task,
        def.learner.clone(),
        def.threshold,
        examples.inputs.clone(),
    );
    let model_name = name.clone();
    let trained = tokio::task::spawn_blocking(move || {
        let train_frame = frame.take(&train_rows);
        let valid_frame = frame.take(&valid_rows);
        let y_train: Vec<f64> = train_rows.iter().filter_map(|&i| labels[i]).collect();
        let y_valid: Vec<f64> = valid_rows.iter().filter_map(|&i| labels[i]).collect();
        sluice_model::train(
            task,
            &learner,
            threshold,
            inputs,
            DataSplit {
                frame: &train_frame,
                labels: &y_train,
            },
            DataSplit {
                frame: &valid_frame,
                labels: &y_valid,
            },
        )
        .map(|t| (t, train_frame.rows, valid_frame.rows))
    })
    .await
    .map_err(|e| model_error(&model_name, e))?
    .map_err(|e| model_error(&model_name, e))?;
    let (trained, n_train, n_valid) = trained;
    trained
        .model
        .save(&file)
        .map_err(|e| model_error(&name, e))?;
    record(
        ws,
        asset,
        def,
        run_id,
        version,
        fp,
        &examples.versions,
        (n_train as u64, n_valid as u64, cut.map(micros_text)),
        trained
            .metrics
            .iter()
            .map(|(m, v)| (m.as_str().to_string(), *v))
            .collect(),
        trained.importance,
        started,
    )
}

/// Validation rows, their start and the metrics of an imported model.
fn measure(
    name: &str,
    def: &ModelDef,
    examples: &Examples,
    model: &Model,
) -> Result<(u64, Option<String>, BTreeMap<String, f64>)> {
    let Some(label) = &def.label else {
        return Ok((0, None, BTreeMap::new()));
    };
    let labels = labels(name, &examples.batches, label, def.task)?;
    let times = sluice_model::frame::times(&examples.batches, &examples.time, "the spine")
        .map_err(|e| model_error(name, e))?;
    let (_, valid, cut) = split_rows(&labels, &times, def.split);
    let frame = examples
        .frame("the spine")
        .map_err(|e| model_error(name, e))?
        .take(&valid);
    let scores = model.predict(&frame).map_err(|e| model_error(name, e))?;
    let y: Vec<f64> = valid.iter().filter_map(|&i| labels[i]).collect();
    let m = metrics::evaluate(def.task, &scores, &y, def.threshold);
    Ok((
        valid.len() as u64,
        cut.map(micros_text),
        m.into_iter()
            .map(|(k, v)| (k.as_str().to_string(), v))
            .collect(),
    ))
}

#[allow(clippy::too_many_arguments)]
fn record(
    ws: &Workspace,
    asset: &Asset,
    def: &ModelDef,
    run_id: i64,
    version: u64,
    fp: &str,
    inputs: &BTreeMap<String, u64>,
    (train_rows, valid_rows, valid_from): (u64, u64, Option<String>),
    metrics: BTreeMap<String, f64>,
    importance: Vec<(String, f64)>,
    started: Instant,
) -> Result<ModelVersion> {
    let reason = promotion(def, &metrics);
    let v = ModelVersion {
        model: asset.name.to_string(),
        version,
        run_id,
        created_at: Utc::now(),
        fingerprint: fp.to_string(),
        learner: def.learner.as_str().to_string(),
        params_hash: sluice_project::fingerprint(&[&asset.fingerprint, env!("CARGO_PKG_VERSION")]),
        inputs: inputs.clone(),
        train_rows,
        valid_rows,
        valid_from,
        metrics,
        importance,
        promoted: reason.is_none(),
        reason,
        train_ms: started.elapsed().as_millis() as u64,
    };
    ws.metadata.record_model_version(&v)?;
    Ok(v)
}

/// A loaded model version, shared by the requests and tasks that score with it.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// Its registry row.
    pub version: ModelVersion,
    /// The model.
    pub model: Arc<Model>,
}

/// Loads the serving version of `model` (or `version`).
pub fn load_model(ws: &Workspace, model: &str, version: Option<u64>) -> Result<LoadedModel> {
    model_def(ws, model)?;
    let found = match version {
        Some(v) => ws.metadata.model_version(model, v)?,
        None => ws.metadata.promoted_model_version(model)?,
    };
    let Some(found) = found else {
        return Err(Error::NoModel {
            model: model.to_string(),
            message: match version {
                Some(v) => format!("has no version {v}\n  help: `sluice model {model}` lists its versions"),
                None => "has no promoted version yet\n  help: `sluice run` trains it; `sluice model NAME` shows why a version was not promoted".to_string(),
            },
        });
    };
    let file = found.file(&ws.warehouse);
    let loaded = Model::load(&file).map_err(|e| Error::ModelFile {
        model: model.to_string(),
        message: e.to_string(),
    })?;
    Ok(LoadedModel {
        version: found,
        model: Arc::new(loaded),
    })
}

/// The definition of model `name`, or an error naming the project's models.
pub fn model_def<'a>(ws: &'a Workspace, name: &str) -> Result<&'a ModelDef> {
    let found = ws.project.asset(name).map(|a| &a.definition);
    match found {
        Some(sluice_project::Definition::Model(def)) => Ok(def),
        _ => {
            let models: Vec<&str> = ws
                .project
                .assets
                .values()
                .filter(|a| matches!(a.definition, sluice_project::Definition::Model(_)))
                .map(|a| a.name.as_str())
                .collect();
            Err(Error::NoModel {
                model: name.to_string(),
                message: format!(
                    "is not a model of the project\n  help: the models are: {}",
                    if models.is_empty() {
                        "none (add `[models.NAME]`)".to_string()
                    } else {
                        models.join(", ")
                    }
                ),
            })
        }
    }
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
