//! Making one model version: fitted (trained on the split's training rows, or
//! imported from ONNX and measured on its validation rows), then saved and
//! recorded by one path — the file written and synced, then the registry row,
//! which is the commit.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use sluice_model::{Input, InputSource, Kind, Model, Split as DataSplit, metrics};
use sluice_project::{Asset, Learner, ModelDef};
use sluice_store::{AsOf, ModelVersion};

use super::examples::{Examples, examples, label_known, labels, micros_text, split_rows};
use super::{LABEL_PENDING, model_error, promotion};
use crate::{Result, Workspace};

/// A fitted model and what its registry row says about it.
struct Fitted {
    model: Model,
    /// The versions of the spine and views it learned from.
    inputs: BTreeMap<String, u64>,
    train_rows: u64,
    valid_rows: u64,
    /// Labelled rows before validation held out of training: their label was
    /// not yet known when validation starts.
    label_pending: u64,
    /// Where validation starts (RFC 3339), for a split by time.
    valid_from: Option<String>,
    metrics: BTreeMap<String, f64>,
    importance: Vec<(String, f64)>,
}

/// Trains (or imports) the next version of the model, saves and records it.
pub(super) async fn train_version(
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
    let examples = match &def.spine {
        Some(spine) => {
            let as_of = pinned
                .get(spine)
                .map_or(AsOf::Latest, |v| AsOf::Version(*v));
            let read = examples(
                ws,
                &name,
                def,
                spine,
                def.timestamp.as_deref(),
                as_of,
                Some(pinned),
            );
            Some(read.await?)
        }
        None => None,
    };
    let joined = started.elapsed();
    let fitted = match &def.learner {
        Learner::Onnx {
            path,
            inputs,
            output,
        } => {
            let artifact = ws.warehouse.model_dir(&name, version).join("model.onnx");
            let imported = Imported {
                path,
                inputs,
                output,
                artifact: &artifact,
            };
            import(&name, def, imported, examples.as_ref(), pinned).await?
        }
        _ => {
            let examples =
                examples.ok_or_else(|| model_error(&name, "a trained model needs a spine"))?;
            train(&name, def, examples).await?
        }
    };
    tracing::debug!(
        "model `{name}` v{version}: training set read in {} ms, encoded, fitted and scored in {} ms",
        joined.as_millis(),
        (started.elapsed() - joined).as_millis()
    );
    let file = sluice_store::model_file(&ws.warehouse, &name, version);
    fitted
        .model
        .save(&file)
        .map_err(|e| model_error(&name, e))?;
    let serving = ws.metadata.promoted_model_version(&name)?;
    let reason = promotion(def, &fitted.metrics, serving.as_ref());
    let mut metrics = fitted.metrics;
    if def.label_horizon.is_some() {
        // With the metrics: the registry row has no column of its own for it.
        metrics.insert(LABEL_PENDING.to_string(), fitted.label_pending as f64);
    }
    let v = ModelVersion {
        model: name,
        version,
        run_id,
        created_at: Utc::now(),
        fingerprint: fp.to_string(),
        learner: def.learner.as_str().to_string(),
        params_hash: sluice_project::fingerprint(&[&asset.fingerprint, env!("CARGO_PKG_VERSION")]),
        inputs: fitted.inputs,
        train_rows: fitted.train_rows,
        valid_rows: fitted.valid_rows,
        valid_from: fitted.valid_from,
        metrics,
        importance: fitted.importance,
        promoted: reason.is_none(),
        reason,
        train_ms: started.elapsed().as_millis() as u64,
    };
    ws.metadata.record_model_version(&v)?;
    Ok(v)
}

/// An ONNX model to import: its file, its declared inputs and output, and where
/// the version keeps its copy.
struct Imported<'a> {
    path: &'a std::path::Path,
    inputs: &'a [String],
    output: &'a Option<String>,
    artifact: &'a std::path::Path,
}

/// Copies an ONNX file beside the version, loads it, and measures it on the
/// validation rows when there is a spine with a label.
async fn import(
    name: &str,
    def: &ModelDef,
    onnx: Imported<'_>,
    examples: Option<&Examples>,
    pinned: &BTreeMap<String, u64>,
) -> Result<Fitted> {
    let input_specs = match examples {
        Some(e) => e.inputs.clone(),
        None => onnx
            .inputs
            .iter()
            .map(|n| Input {
                name: n.clone(),
                kind: Kind::Numeric,
                source: InputSource::Spine { column: n.clone() },
            })
            .collect(),
    };
    let bytes = std::fs::read(onnx.path)
        .map_err(|e| model_error(name, format!("{}: {e}", onnx.path.display())))?;
    sluice_model::write_atomically(onnx.artifact, &bytes)
        .map_err(|e| model_error(name, format!("{}: {e}", onnx.artifact.display())))?;
    let (task, threshold, output) = (def.task, def.threshold, onnx.output.clone());
    let artifact = onnx.artifact.to_path_buf();
    let model = tokio::task::spawn_blocking(move || {
        Model::import_onnx(task, threshold, input_specs, &artifact, output)
    })
    .await
    .map_err(|e| model_error(name, e))?
    .map_err(|e| model_error(name, e))?;
    let (valid_rows, valid_from, metrics) = match examples {
        Some(e) => measure(name, def, e, &model)?,
        None => (0, None, BTreeMap::new()),
    };
    Ok(Fitted {
        model,
        inputs: pinned.clone(),
        train_rows: 0,
        valid_rows,
        label_pending: 0,
        valid_from,
        metrics,
        importance: Vec::new(),
    })
}

/// Trains on the split's training rows on a blocking thread; measures on the rest.
async fn train(name: &str, def: &ModelDef, examples: Examples) -> Result<Fitted> {
    let label = def
        .label
        .clone()
        .ok_or_else(|| model_error(name, "a trained model needs a label"))?;
    let labels = labels(name, &examples.batches, &label, def.task)?;
    let times = sluice_model::frame::times(&examples.batches, &examples.time, "the spine")
        .map_err(|e| model_error(name, e))?;
    let known = label_known(name, def, &examples.batches, &times)?;
    let split = split_rows(&labels, &times, known.as_deref(), def.split);
    let (train_rows, valid_rows, cut) = (split.train, split.valid, split.cut);
    if valid_rows.is_empty() || train_rows.is_empty() {
        let pending = if split.label_pending > 0 {
            format!(
                "; {} rows before validation are held out, their label not yet known when it starts",
                split.label_pending
            )
        } else {
            String::new()
        };
        return Err(model_error(
            name,
            format!(
                "the split leaves {} training and {} validation rows (of {} labelled rows with a time){pending}\n  help: move `split` so that both sides have rows",
                train_rows.len(),
                valid_rows.len(),
                labels.iter().filter(|l| l.is_some()).count()
            ),
        ));
    }
    let frame = examples
        .frame("the training set")
        .map_err(|e| model_error(name, e))?;
    let (task, learner, threshold, inputs) = (
        def.task,
        def.learner.clone(),
        def.threshold,
        examples.inputs.clone(),
    );
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
    .map_err(|e| model_error(name, e))?
    .map_err(|e| model_error(name, e))?;
    let (trained, n_train, n_valid) = trained;
    tracing::debug!(
        "model `{name}`: the learner's fit took {} ms of the training",
        trained.fit_time.as_millis()
    );
    Ok(Fitted {
        model: trained.model,
        inputs: examples.versions,
        train_rows: n_train as u64,
        valid_rows: n_valid as u64,
        label_pending: split.label_pending as u64,
        valid_from: cut.map(micros_text),
        metrics: trained
            .metrics
            .iter()
            .map(|(m, v)| (m.as_str().to_string(), *v))
            .collect(),
        importance: trained.importance,
    })
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
    // Validation rows do not depend on when labels became known.
    let split = split_rows(&labels, &times, None, def.split);
    let (valid, cut) = (split.valid, split.cut);
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
