//! `[models.NAME]` compiled into a [`ModelDef`] and its [`PredictionsDef`].

use sluice_core::{AssetKind, Location, parse_duration};
use toml::Spanned;

use super::*;
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::{LearnerKind, ModelSection, ParamsSection, PromoteEntry};

/// Bumped when the rows a model trains on change for the same settings, so
/// that built models retrain. 2: declared views without `as_of` are computed at
/// each spine row's time.
const TRAINING_ROWS: &str = "training-rows-2";

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

fn compile_learner(
    raw: &RawProject,
    section: &ModelSection,
    task: Task,
    location: &Location,
    diags: &mut Diagnostics,
) -> Option<Learner> {
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
    let kind = section
        .learner
        .as_ref()
        .map_or(LearnerKind::Gbdt, |l| *l.get_ref());
    let learner_at = section
        .learner
        .as_ref()
        .map_or_else(|| location.clone(), |l| at(raw, l));
    let params = section.params.as_ref();
    match (kind, task) {
        (LearnerKind::Gbdt, _) => {
            let p: GbdtParams = typed_params(raw, kind, params, diags)?;
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
        (LearnerKind::Logistic, Task::Binary) => {
            let p: LogisticParams = typed_params(raw, kind, params, diags)?;
            if p.alpha >= 0.0 && p.max_iterations > 0 {
                Some(Learner::Logistic(p))
            } else {
                diags.push(Diagnostic::new(
                    learner_at,
                    "logistic needs alpha >= 0 and max_iterations >= 1",
                ));
                None
            }
        }
        (LearnerKind::Linear, Task::Regression) => {
            typed_params(raw, kind, params, diags).map(Learner::Linear)
        }
        (LearnerKind::Logistic, Task::Regression) | (LearnerKind::Linear, Task::Binary) => {
            diags.push(
                Diagnostic::new(
                    learner_at,
                    format!(
                        "learner `{}` does not fit a {} task",
                        kind.as_str(),
                        task.as_str()
                    ),
                )
                .with_help(
                    "use `logistic` (or `gbdt`) for binary, `linear` (or `gbdt`) for regression",
                ),
            );
            None
        }
    }
}

/// `params` read into the learner's typed struct (`deny_unknown_fields`, the
/// defaults for what is not written). Each name is read on its own first, so
/// that a misspelt name or a value of the wrong type is reported where it is
/// written, with the valid names.
fn typed_params<P: serde::de::DeserializeOwned>(
    raw: &RawProject,
    kind: LearnerKind,
    params: Option<&Spanned<ParamsSection>>,
    diags: &mut Diagnostics,
) -> Option<P> {
    let table = |entries: &mut dyn Iterator<Item = (&Spanned<String>, &Spanned<toml::Value>)>| {
        toml::Value::Table(
            entries
                .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
                .collect(),
        )
    };
    let entries = params.map(|p| &p.get_ref().0);
    let before = diags.len();
    for (key, value) in entries.into_iter().flatten() {
        if let Err(e) = table(&mut std::iter::once((key, value))).try_into::<P>() {
            let problem = e.message().trim_end();
            let named = format!("`{}`", key.get_ref());
            let problem = if problem.contains(&named) {
                problem.to_string()
            } else {
                format!("{named}: {problem}")
            };
            diags.push(
                Diagnostic::new(
                    at(raw, key),
                    format!("params of learner `{}`: {problem}", kind.as_str()),
                )
                .with_help("see the README for each learner's parameters and defaults"),
            );
        }
    }
    if diags.len() > before {
        return None;
    }
    let all = table(&mut entries.into_iter().flatten());
    match all.try_into::<P>() {
        Ok(p) => Some(p),
        Err(e) => {
            // Every name read on its own; only a bug gets here.
            let place = params.map_or_else(|| raw.location(0), |p| at(raw, p));
            diags.push(Diagnostic::new(
                place,
                format!(
                    "params of learner `{}`: {}",
                    kind.as_str(),
                    e.message().trim_end()
                ),
            ));
            None
        }
    }
}

/// `label_delay` or `label_available`: when a training row's label became known.
fn compile_label_horizon(
    raw: &RawProject,
    section: &ModelSection,
    onnx: bool,
    diags: &mut Diagnostics,
) -> Option<LabelHorizon> {
    let (delay, column) = (&section.label_delay, &section.label_available);
    let first = delay
        .as_ref()
        .map(|d| d.span().start)
        .or_else(|| column.as_ref().map(|c| c.span().start))?;
    if onnx {
        diags.push(
            Diagnostic::new(
                raw.location(first),
                "`label_delay` and `label_available` apply to trained models",
            )
            .with_help("an imported model is not trained here; remove them"),
        );
        return None;
    }
    match (delay, column) {
        (Some(d), None) => match parse_duration(d.get_ref()) {
            Ok(t) if t.is_zero() => None,
            Ok(t) => Some(LabelHorizon::Delay(
                i64::try_from(t.as_micros()).unwrap_or(i64::MAX),
            )),
            Err(e) => {
                diags.push(Diagnostic::new(at(raw, d), format!("label_delay: {e}")));
                None
            }
        },
        (None, Some(c)) => {
            let name = c.get_ref().trim();
            if name.is_empty() {
                diags.push(Diagnostic::new(
                    at(raw, c),
                    "`label_available` names no column",
                ));
                return None;
            }
            if section.columns.iter().any(|x| x.get_ref() == name) {
                diags.push(
                    Diagnostic::new(
                        at(raw, c),
                        format!("`{name}` is both `label_available` and a feature column"),
                    )
                    .with_help("remove it from `columns`: when the label became known is not known when the model predicts"),
                );
                return None;
            }
            Some(LabelHorizon::Column(name.to_string()))
        }
        _ => {
            diags.push(
                Diagnostic::new(
                    raw.location(first),
                    "write one of `label_delay` and `label_available`, not both",
                )
                .with_help("`label_delay = \"90d\"`: known 90 days after the row's time; `label_available = \"COLUMN\"`: known at that column's time"),
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

    /// Loads a project of one source (`events.csv`: x, y, t) and `models`.
    fn load_models(models: &str) -> Result<crate::Project, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "[project]\nname = \"p\"\n\n[sources.events]\npath = \"events.csv\"\n\n{models}"
        );
        std::fs::write(dir.path().join("sluice.toml"), text).expect("write");
        std::fs::write(
            dir.path().join("events.csv"),
            "x,y,t,known\n1,0,2026-01-01,2026-02-01\n",
        )
        .expect("write");
        crate::load(dir.path(), None).map_err(|d| d.to_string())
    }

    fn model(p: &crate::Project, name: &str) -> ModelDef {
        match &p.asset(name).expect("model").definition {
            crate::Definition::Model(m) => (**m).clone(),
            _ => panic!("{name} is not a model"),
        }
    }

    #[test]
    fn a_misspelt_param_is_named_where_it_is_written_with_the_valid_names() {
        let errors = load_models(
            "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\n\
             params = { iterations = 5, learnig_rate = 0.2 }\n\n\
             [models.b]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\n\
             learner = \"logistic\"\nparams = { alpha = \"high\" }\n",
        )
        .expect_err("errors");
        // Line 11 is `params = ...` of `a`; the misspelt name starts at column 28.
        assert!(
            errors.contains(
                "sluice.toml:11:28: error: params of learner `gbdt`: unknown field `learnig_rate`, expected one of `iterations`, `learning_rate`"
            ),
            "{errors}"
        );
        assert!(
            errors.contains("sluice.toml:18:12: error: params of learner `logistic`: `alpha`:"),
            "{errors}"
        );
    }

    #[test]
    fn params_are_read_by_the_learner_named_after_them() {
        let p = load_models(
            "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\n\
             [models.a.params]\nalpha = 0.25\n\n\
             [models.b]\nparams = { alpha = 0.5 }\nspine = \"events\"\nlabel = \"y\"\n\
             columns = [\"x\"]\nlearner = \"logistic\"\n",
        );
        // `a` is gbdt (the default), which has no `alpha`.
        let errors = p.expect_err("gbdt has no alpha");
        assert!(
            errors.contains("learner `gbdt`: unknown field `alpha`"),
            "{errors}"
        );
        let p = load_models(
            "[models.b]\nparams = { alpha = 0.5 }\nspine = \"events\"\nlabel = \"y\"\n\
             columns = [\"x\"]\nlearner = \"logistic\"\n",
        )
        .expect("loads");
        assert_eq!(
            model(&p, "b").learner,
            Learner::Logistic(LogisticParams {
                alpha: 0.5,
                ..LogisticParams::default()
            })
        );
    }

    #[test]
    fn task_and_learner_are_closed_words_reported_at_their_place() {
        let errors = load_models(
            "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlearner = \"forest\"\n\n\
             [models.b]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\ntask = \"classify\"\n",
        )
        .expect_err("errors");
        assert!(
            errors.contains("sluice.toml:11:11: error: unknown learner `forest`, expected one of `gbdt`, `logistic`, `linear`"),
            "{errors}"
        );
        assert!(
            errors.contains("sluice.toml:17:8: error: unknown task `classify`, expected one of `binary`, `regression`"),
            "{errors}"
        );
    }

    /// A model's fingerprint hashes its section as JSON: `params` must come
    /// out as the table that was written (order and number types included),
    /// or every model would retrain after an upgrade.
    #[test]
    fn params_serialize_as_the_table_written() {
        let text = "spine = \"s\"\nlabel = \"y\"\ntask = \"binary\"\nlearner = \"gbdt\"\n\
                    params = { iterations = 40, max_leaves = 15, learning_rate = 0.1, l2 = 1 }\n";
        let section: ModelSection = toml::from_str(text).expect("section");
        let table: toml::Table = toml::from_str(text).expect("table");
        assert_eq!(
            serde_json::to_string(&section.params).expect("text"),
            serde_json::to_string(&table["params"]).expect("text")
        );
        assert_eq!(
            serde_json::to_string(&section.params).expect("text"),
            r#"{"iterations":40,"max_leaves":15,"learning_rate":0.1,"l2":1}"#
        );
        let json = serde_json::to_value(&section).expect("json");
        assert_eq!(json["task"], "binary");
        assert_eq!(json["learner"], "gbdt");
        assert!(json.get("label_delay").is_none(), "{json}");
    }

    #[test]
    fn label_delay_or_label_available_say_when_labels_are_known() {
        let p = load_models(
            "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlabel_delay = \"90d\"\n\n\
             [models.b]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlabel_available = \"known\"\n\n\
             [models.c]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\n",
        )
        .expect("loads");
        assert_eq!(
            model(&p, "a").label_horizon,
            Some(LabelHorizon::Delay(90 * 86_400 * 1_000_000))
        );
        assert_eq!(
            model(&p, "b").label_horizon,
            Some(LabelHorizon::Column("known".into()))
        );
        assert_eq!(model(&p, "c").label_horizon, None);
        let errors = load_models(
            "[models.a]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlabel_delay = \"a season\"\n\n\
             [models.b]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\"]\nlabel_delay = \"1d\"\nlabel_available = \"known\"\n\n\
             [models.c]\nspine = \"events\"\nlabel = \"y\"\ncolumns = [\"x\", \"known\"]\nlabel_available = \"known\"\n",
        )
        .expect_err("errors");
        for expected in [
            "sluice.toml:11:15: error: label_delay: `a season` is not a duration",
            "sluice.toml:17:15: error: write one of `label_delay` and `label_available`, not both",
            "`known` is both `label_available` and a feature column",
        ] {
            assert!(
                errors.contains(expected),
                "missing {expected:?} in:\n{errors}"
            );
        }
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
