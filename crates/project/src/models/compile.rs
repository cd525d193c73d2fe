//! `[models.NAME]` compiled into a [`ModelDef`] and its [`PredictionsDef`].

use sluice_core::{AssetKind, Location};
use toml::Spanned;

use super::*;
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::{ModelSection, PromoteEntry};

fn at<T>(raw: &RawProject, s: &Spanned<T>) -> Location {
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
    let task = match section.task.as_ref().map(|t| (t.get_ref().as_str(), t)) {
        None | Some(("binary", _)) => Task::Binary,
        Some(("regression", _)) => Task::Regression,
        Some((other, t)) => {
            diags.push(
                Diagnostic::new(at(raw, t), format!("unknown task `{other}`"))
                    .with_help("write `task = \"binary\"` or `task = \"regression\"`"),
            );
            Task::Binary
        }
    };
    let learner = compile_learner(raw, section, task, location, diags);
    let onnx = matches!(learner, Some(Learner::Onnx { .. }));
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
        threshold,
        require_inputs: section.require_inputs.unwrap_or(false),
        better_than_serving,
        promote,
        predictions: predictions.as_ref().map(|_| predictions_name(name)),
    };
    Some((def, predictions))
}

fn compile_learner(
    raw: &RawProject,
    section: &ModelSection,
    task: Task,
    location: &Location,
    diags: &mut Diagnostics,
) -> Option<Learner> {
    let params = section
        .params
        .as_ref()
        .map(|p| (toml::Value::Table(p.get_ref().clone()), at(raw, p)));
    let bad_params = |e: toml::de::Error, word: &str, diags: &mut Diagnostics| {
        let place = params
            .as_ref()
            .map_or_else(|| location.clone(), |(_, l)| l.clone());
        diags.push(
            Diagnostic::new(
                place,
                format!("params of learner `{word}`: {}", e.message().trim_end()),
            )
            .with_help("see the README for each learner's parameters"),
        );
    };
    if let Some(path) = &section.onnx {
        if section.learner.is_some() || section.params.is_some() {
            diags.push(
                Diagnostic::new(at(raw, path), "an ONNX model is not trained here")
                    .with_help("remove `learner` and `params`, or remove `onnx`"),
            );
            return None;
        }
        let file = raw.dir.join(path.get_ref());
        if !file.is_file() {
            diags.push(
                Diagnostic::new(at(raw, path), format!("no file `{}`", path.get_ref()))
                    .with_help("the path is relative to the project folder"),
            );
            return None;
        }
        let Some(inputs) = &section.inputs else {
            diags.push(
                Diagnostic::new(at(raw, path), "an ONNX model needs its input columns in order")
                    .with_help("add `inputs = [\"col1\", \"col2\", ...]`: spine columns and features, as the model was trained on them"),
            );
            return None;
        };
        if inputs.get_ref().is_empty() {
            diags.push(Diagnostic::new(at(raw, inputs), "`inputs` is empty"));
            return None;
        }
        return Some(Learner::Onnx {
            path: file,
            inputs: inputs.get_ref().clone(),
            output: section.output.clone(),
        });
    }
    if let Some(i) = &section.inputs {
        diags.push(
            Diagnostic::new(at(raw, i), "`inputs` applies to ONNX models only")
                .with_help("a trained model reads `columns` and `features`"),
        );
    }
    if section.output.is_some() {
        diags.push(Diagnostic::new(
            location.clone(),
            "`output` applies to ONNX models only",
        ));
    }
    let word = section
        .learner
        .as_ref()
        .map_or("gbdt", |l| l.get_ref().as_str());
    let learner_at = section
        .learner
        .as_ref()
        .map_or_else(|| location.clone(), |l| at(raw, l));
    let value = params.as_ref().map_or_else(
        || toml::Value::Table(toml::Table::new()),
        |(v, _)| v.clone(),
    );
    match (word, task) {
        ("gbdt", _) => match value.try_into::<GbdtParams>() {
            Ok(p) => {
                if p.iterations == 0 || p.learning_rate <= 0.0 || p.bins < 2 {
                    diags.push(Diagnostic::new(
                        learner_at,
                        "gbdt needs iterations >= 1, learning_rate > 0 and bins >= 2",
                    ));
                    return None;
                }
                if p.max_leaves == 0 && p.max_depth == 0 {
                    diags.push(Diagnostic::new(
                        learner_at,
                        "gbdt needs `max_leaves` or `max_depth` above 0",
                    ));
                    return None;
                }
                let share = |x: f64| x > 0.0 && x <= 1.0;
                if !share(f64::from(p.subsample)) || !share(p.colsample) {
                    diags.push(Diagnostic::new(
                        learner_at,
                        "gbdt: `subsample` and `colsample` are shares in (0, 1]",
                    ));
                    return None;
                }
                Some(Learner::Gbdt(p))
            }
            Err(e) => {
                bad_params(e, word, diags);
                None
            }
        },
        ("logistic", Task::Binary) => match value.try_into::<LogisticParams>() {
            Ok(p) if p.alpha >= 0.0 && p.max_iterations > 0 => Some(Learner::Logistic(p)),
            Ok(_) => {
                diags.push(Diagnostic::new(
                    learner_at,
                    "logistic needs alpha >= 0 and max_iterations >= 1",
                ));
                None
            }
            Err(e) => {
                bad_params(e, word, diags);
                None
            }
        },
        ("linear", Task::Regression) => match value.try_into::<LinearParams>() {
            Ok(p) => Some(Learner::Linear(p)),
            Err(e) => {
                bad_params(e, word, diags);
                None
            }
        },
        ("logistic", Task::Regression) | ("linear", Task::Binary) => {
            diags.push(
                Diagnostic::new(
                    learner_at,
                    format!("learner `{word}` does not fit a {} task", task.as_str()),
                )
                .with_help(
                    "use `logistic` (or `gbdt`) for binary, `linear` (or `gbdt`) for regression",
                ),
            );
            None
        }
        (other, _) => {
            diags.push(
                Diagnostic::new(learner_at, format!("unknown learner `{other}`"))
                    .with_help("write `learner = \"gbdt\"`, `\"logistic\"` or `\"linear\"`, or import a model with `onnx = \"FILE\"`"),
            );
            None
        }
    }
}

fn compile_split(raw: &RawProject, section: &ModelSection, diags: &mut Diagnostics) -> Split {
    let default = Split::Last(0.2);
    let Some(split) = &section.split else {
        return default;
    };
    let place = at(raw, split);
    let s = split.get_ref();
    match (&s.before, &s.last) {
        (Some(t), None) => match parse_time(t) {
            Some(micros) => Split::Before(micros),
            None => {
                diags.push(
                    Diagnostic::new(place, format!("split: `{t}` is not a time")).with_help(
                        "write a date (`2013-10-01`) or an RFC 3339 time (`2013-10-01T00:00:00Z`)",
                    ),
                );
                default
            }
        },
        (None, Some(last)) => {
            let share = match last {
                toml::Value::Float(f) => Some(*f),
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::String(s) => s
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .map(|p| p / 100.0),
                _ => None,
            };
            match share {
                Some(x) if x > 0.0 && x < 1.0 => Split::Last(x),
                _ => {
                    diags.push(
                        Diagnostic::new(
                            place,
                            format!("split: `last = {last}` is not a share of the time span"),
                        )
                        .with_help(
                            "write `last = \"20%\"` or `last = 0.2` (strictly between 0 and 1)",
                        ),
                    );
                    default
                }
            }
        }
        _ => {
            diags.push(
                Diagnostic::new(place, "split needs exactly one of `before` and `last`").with_help(
                    "write `split = { before = \"2013-10-01\" }` or `split = { last = \"20%\" }`",
                ),
            );
            default
        }
    }
}

/// A date (`2013-10-01`, midnight UTC) or an RFC 3339 time, as microseconds since
/// the epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_dates_or_rfc3339() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn default_gbdt_params_follow_lightgbm() {
        let p: GbdtParams = toml::Value::Table(toml::Table::new())
            .try_into()
            .expect("empty table");
        assert_eq!(p, GbdtParams::default());
        assert_eq!((p.iterations, p.max_leaves), (100, 31));
        let bad = toml::Value::Table(toml::from_str("iteratons = 3").expect("toml"))
            .try_into::<GbdtParams>()
            .expect_err("typo");
        assert!(bad.to_string().contains("iteratons"), "{bad}");
    }
}
