//! `[models.NAME]` compiled into a [`ModelDef`] and its [`PredictionsDef`]: the
//! checks of spine, label, features, threshold and promotion bounds, and adding
//! the model (and its predictions asset) to the project with their fingerprints.
//! The learner is compiled in `learner.rs`, the time split in `split.rs`.

use sluice_core::{AssetKind, Location};
use toml::Spanned;

use super::learner::compile_learner;
use super::split::{compile_label_horizon, compile_split};
use super::*;
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::{ModelSection, PromoteEntry};

/// Bumped when the rows a model trains on change for the same settings, so
/// that built models retrain. 2: declared views without `as_of` are computed at
/// each spine row's time.
const TRAINING_ROWS: &str = "training-rows-2";

/// Where `s` is written in the project file.
pub(super) fn at<T>(raw: &RawProject, s: &Spanned<T>) -> Location {
    raw.location(s.span().start)
}

/// Compiles one `[models.NAME]`; `None` after reporting what is wrong.
pub fn compile_model(
    raw: &RawProject,
    name: &str,
    section: &ModelSection,
    location: &Location,
    diags: &mut Diagnostics,
) -> Option<(ModelDef, Option<PredictionsDef>)> {
    let before = diags.len();
    let task = section.task.as_ref().map_or(Task::Binary, |t| *t.get_ref());
    let learner = compile_learner(raw, section, task, location, diags);
    let onnx = matches!(learner, Some(Learner::Onnx { .. }));
    let label_horizon = compile_label_horizon(raw, section, onnx, diags);
    if section.spine.is_none() && !onnx {
        diags.push(
            Diagnostic::new(location.clone(), format!("model `{name}` needs a spine to train on"))
                .with_help("add `spine = \"ASSET\"`: an asset with the entity keys, a time per row and the label"),
        );
    }
    if section.spine.is_some() && section.label.is_none() {
        diags.push(
            Diagnostic::new(location.clone(), format!("model `{name}` needs a `label`")).with_help(
                "add `label = \"COLUMN\"`: the spine's column the model learns to predict",
            ),
        );
    }
    if section.columns.is_empty() && section.features.is_empty() && !onnx {
        diags.push(
            Diagnostic::new(location.clone(), format!("model `{name}` has no features"))
                .with_help("add `features = [\"VIEW\", \"VIEW:feature\"]` and/or `columns = [\"SPINE_COLUMN\"]`"),
        );
    }
    for f in &section.features {
        let text = f.get_ref();
        let (view, feature) = match text.split_once(':') {
            Some((v, f)) => (v.trim(), Some(f.trim())),
            None => (text.trim(), None),
        };
        if view.is_empty() || feature.is_some_and(str::is_empty) {
            diags.push(
                Diagnostic::new(at(raw, f), format!("`{text}` names no feature"))
                    .with_help("write `VIEW` for every feature of a view, or `VIEW:feature`"),
            );
        }
    }
    if let Some(label) = &section.label
        && section.spine.is_some()
        && section
            .columns
            .iter()
            .any(|c| c.get_ref() == label.get_ref())
    {
        diags.push(
            Diagnostic::new(
                at(raw, label),
                format!("the label `{}` is also a feature column", label.get_ref()),
            )
            .with_help("remove it from `columns`: a model must not read its own answer"),
        );
    }
    let split = compile_split(raw, section, diags);
    let threshold = section.threshold.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&threshold) || task == Task::Regression && section.threshold.is_some()
    {
        diags.push(
            Diagnostic::new(
                location.clone(),
                "`threshold` is a probability of a binary model",
            )
            .with_help("give a number between 0 and 1, and only for `task = \"binary\"`"),
        );
    }
    let mut promote = Vec::new();
    let mut better_than_serving = false;
    for (metric, bounds) in &section.promote {
        let b = match (metric.as_str(), *bounds.get_ref()) {
            ("better_than_serving", PromoteEntry::Flag(flag)) => {
                better_than_serving = flag;
                continue;
            }
            ("better_than_serving", PromoteEntry::Bounds(_)) => {
                diags.push(
                    Diagnostic::new(at(raw, bounds), "`better_than_serving` is true or false")
                        .with_help("write `better_than_serving = true`"),
                );
                continue;
            }
            (_, PromoteEntry::Flag(_)) => {
                diags.push(
                    Diagnostic::new(
                        at(raw, bounds),
                        format!("`{metric}` needs bounds, not a flag"),
                    )
                    .with_help(format!(
                        "write `{metric} = {{ min = ... }}`, `{{ max = ... }}` or both"
                    )),
                );
                continue;
            }
            (_, PromoteEntry::Bounds(b)) => b,
        };
        match Metric::parse(metric) {
            Some(m) if task.metrics().contains(&m) => {
                if b.min.is_none() && b.max.is_none() {
                    diags.push(
                        Diagnostic::new(at(raw, bounds), format!("`{metric}` has no bound"))
                            .with_help("write `{ min = ... }`, `{ max = ... }` or both"),
                    );
                } else if let (Some(lo), Some(hi)) = (b.min, b.max)
                    && lo > hi
                {
                    diags.push(Diagnostic::new(
                        at(raw, bounds),
                        format!("`{metric}`: min {lo} is greater than max {hi}"),
                    ));
                }
                promote.push((m, b));
            }
            _ => diags.push(
                Diagnostic::new(
                    at(raw, bounds),
                    format!("`{metric}` is not a metric of a {} model", task.as_str()),
                )
                .with_help(format!(
                    "the metrics are: {}",
                    task.metrics()
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
        }
    }
    if !promote.is_empty() && section.spine.is_none() {
        diags.push(
            Diagnostic::new(
                location.clone(),
                "`promote` needs metrics, and metrics need a spine",
            )
            .with_help("add `spine` and `label`, or remove `promote`"),
        );
    }
    let predictions = section.predictions.as_ref().map(|p| {
        let entity = p.get_ref().entity.get_ref().to_vec();
        if entity.is_empty() || entity.iter().any(String::is_empty) {
            diags.push(Diagnostic::new(
                at(raw, &p.get_ref().entity),
                "`entity` names no column",
            ));
        }
        PredictionsDef {
            model: name.to_string(),
            spine: p.get_ref().spine.get_ref().clone(),
            entity,
            timestamp: p.get_ref().timestamp.clone(),
        }
    });
    if diags.len() > before {
        return None;
    }
    let def = ModelDef {
        task,
        spine: section.spine.as_ref().map(|s| s.get_ref().clone()),
        timestamp: section.timestamp.as_ref().map(|s| s.get_ref().clone()),
        label: section.label.as_ref().map(|s| s.get_ref().clone()),
        columns: section
            .columns
            .iter()
            .map(|c| c.get_ref().clone())
            .collect(),
        features: section
            .features
            .iter()
            .map(|f| f.get_ref().trim().to_string())
            .collect(),
        learner: learner?,
        split,
        label_horizon,
        threshold,
        require_inputs: section.require_inputs.unwrap_or(false),
        better_than_serving,
        promote,
        predictions: predictions.as_ref().map(|_| predictions_name(name)),
    };
    Some((def, predictions))
}

/// Compiles `[models.NAME]` and adds it to the project, with its predictions
/// (`NAME_predictions`) when it has a `[models.NAME.predictions]` section.
pub(crate) fn add(b: &mut crate::compile::Builder<'_>, name: &str, entry: &Entry<ModelSection>) {
    use crate::compile::{Definition, fingerprint};
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let Some(asset_name) = b.claim(name, AssetKind::Model, &at) else {
        return;
    };
    let section = &entry.value;
    let Some((def, predictions)) = compile_model(raw, name, section, &at, &mut b.diags) else {
        return;
    };
    // An imported model changes when its file does.
    let file_hash = match &def.learner {
        Learner::Onnx { path, .. } => match std::fs::read(path) {
            Ok(bytes) => blake3::hash(&bytes).to_hex().to_string(),
            Err(e) => {
                b.diags.push(Diagnostic::new(
                    at.clone(),
                    format!("cannot read `{}`: {e}", path.display()),
                ));
                return;
            }
        },
        _ => String::new(),
    };
    // What training reads: neither the batch predictions (an asset of their
    // own, downstream of the model), nor how online requests are served, nor
    // the description.
    let trained = ModelSection {
        predictions: None,
        description: None,
        require_inputs: None,
        ..section.clone()
    };
    let model_fingerprint = fingerprint(&[
        "model",
        &serde_json::to_string(&trained).unwrap_or_default(),
        &file_hash,
        TRAINING_ROWS,
    ]);
    if let Some(p) = predictions {
        let p_section = section.predictions.as_ref();
        let p_at = p_section.map_or(at.clone(), |s| raw.location(s.span().start));
        if let Some(p_asset) = b.claim(&predictions_name(name), AssetKind::Predictions, &p_at) {
            let fingerprint = fingerprint(&[
                "predictions",
                name,
                &serde_json::to_string(&section.predictions).unwrap_or_default(),
            ]);
            let description = p_section
                .and_then(|s| s.get_ref().description.clone())
                .unwrap_or_else(|| {
                    format!("Scores of model `{name}` for the rows of `{}`", p.spine)
                });
            let contract = b.contract(p_section.and_then(|s| s.get_ref().contract.as_ref()));
            let asset = b.add(
                p_asset,
                p_at,
                Definition::Predictions(Box::new(p)),
                fingerprint,
            );
            asset.contract = contract;
            asset.description = Some(description);
        }
    }
    let asset = b.add(
        asset_name,
        at,
        Definition::Model(Box::new(def)),
        model_fingerprint,
    );
    asset.description = section.description.clone();
}
