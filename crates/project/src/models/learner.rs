//! The learner of `[models.NAME]`: an ONNX file with its inputs, or a learner
//! (`gbdt`, `logistic`, `linear`) fitting the task, with its `params` read into
//! the learner's typed struct and checked.

use sluice_core::Location;
use toml::Spanned;

use super::compile::at;
use super::*;
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::RawProject;
use crate::raw::{LearnerKind, ModelSection, ParamsSection};

pub(super) fn compile_learner(
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
