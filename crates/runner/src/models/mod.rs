//! Models in a run: the training set (the spine joined point-in-time with the
//! model's feature views, at the versions the run pinned), the time split, the
//! training on a blocking thread, the promotion thresholds, and the version's
//! file and registry row.
//!
//! A model is up to date when its newest version was trained from the same
//! definition and input versions (its fingerprint). The version downstream
//! assets read — the one that serves — is the newest promoted one; a version
//! that misses its thresholds is recorded but leaves the serving one in place.

mod examples;
mod fit;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use sluice_core::AssetStatus;
use sluice_model::Model;
use sluice_project::{Asset, ModelDef};
use sluice_store::ModelVersion;

pub(crate) use self::examples::{examples, known_at, label_known, labels};
use self::fit::train_version;
use crate::kinds::Job;
use crate::outcome::{AssetOutcome, ModelOutcome};
use crate::{Error, Result, Workspace};

/// The registry metric holding how many labelled rows before validation were
/// held out of training, their label not yet known when validation starts.
pub(crate) const LABEL_PENDING: &str = "label_pending";

pub(crate) fn model_error(model: &str, e: impl std::fmt::Display) -> Error {
    Error::Model {
        model: model.to_string(),
        message: e.to_string(),
    }
}

/// Why a version with `metrics` is not promoted, or `None` when it is: a bound
/// it misses, or (`better_than_serving`) a metric on which it is worse than the
/// serving version.
pub(crate) fn promotion(
    def: &ModelDef,
    metrics: &BTreeMap<String, f64>,
    serving: Option<&ModelVersion>,
) -> Option<String> {
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
    if def.better_than_serving
        && let Some(serving) = serving
    {
        let compared: Vec<sluice_project::models::Metric> = if def.promote.is_empty() {
            def.task.metrics().iter().take(1).copied().collect()
        } else {
            def.promote.iter().map(|(m, _)| *m).collect()
        };
        for m in compared {
            let (Some(new), Some(old)) = (metrics.get(m.as_str()), serving.metrics.get(m.as_str()))
            else {
                continue;
            };
            let worse = if m.higher_is_better() {
                new < old
            } else {
                new > old
            };
            if worse {
                misses.push(format!(
                    "{m} {new:.4} is worse than {old:.4} of serving version {}",
                    serving.version
                ));
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
    let trained = built.as_ref().map(|v| ModelOutcome {
        built: v.version,
        promoted: v.promoted,
        train_rows: v.train_rows,
        valid_rows: v.valid_rows,
        label_pending: v.metrics.get(LABEL_PENDING).map_or(0, |n| *n as u64),
    });
    let newest = match built {
        Some(v) => Ok(Some(v)),
        None => job.ws.metadata.newest_model_version(name),
    };
    let serving = job.ws.metadata.promoted_model_version(name);
    match (newest, serving) {
        (Ok(Some(newest)), Ok(serving)) => AssetOutcome {
            model: trained,
            ..outcome(job.asset, job.started, status, &newest, serving.as_ref())
        },
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
