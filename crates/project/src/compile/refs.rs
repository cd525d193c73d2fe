//! References are the DAG: the assets each asset's SQL (or a model's spine and
//! views, a view's source, a step's `inputs`) names become its inputs; a reference to a model,
//! an export or an unknown name is an error at the reference, with a suggestion.

use std::collections::{BTreeMap, BTreeSet};

use sluice_core::{AssetName, Location};

use super::{Asset, Builder, Definition};
use crate::diag::{Diagnostic, Diagnostics};
use crate::features::FeatureBody;
use crate::parse::RawProject;
use crate::sql::references;

/// Resolves every asset's inputs. Entries that could not be read are already
/// reported; referring to them is not a second error.
pub(super) fn resolve(b: &mut Builder<'_>) {
    let raw = b.raw;
    let names: BTreeSet<String> = b.seen.keys().chain(raw.broken.iter()).cloned().collect();
    let assets = &b.assets;
    let diags = &mut b.diags;
    let mut resolved = BTreeMap::new();
    for asset in assets.values() {
        let (sql, origin) = match &asset.definition {
            Definition::Source(_) => continue,
            Definition::Step(def) => {
                let inputs = step_inputs(raw, asset, &def.inputs, &names, diags);
                resolved.insert(asset.name.clone(), inputs);
                continue;
            }
            Definition::Collection(def) => {
                if let super::Documents::Rows { from, .. } = &def.documents {
                    let inputs = collection_input(raw, asset, from, &names, diags);
                    resolved.insert(asset.name.clone(), inputs);
                }
                continue;
            }
            Definition::Table(def) => (&def.sql, &def.origin),
            Definition::Export(def) => (&def.query.sql, &def.query.origin),
            Definition::Model(def) => {
                let inputs =
                    model_inputs(raw, asset, &def.inputs(), &def.views(), None, &names, diags);
                resolved.insert(asset.name.clone(), inputs);
                continue;
            }
            Definition::Predictions(def) => {
                let mut wanted = vec![def.model.clone(), def.spine.clone()];
                let views: Vec<String> = match assets
                    .iter()
                    .find(|(n, _)| n.as_str() == def.model)
                    .map(|(_, a)| &a.definition)
                {
                    Some(Definition::Model(m)) => m.views(),
                    _ => Vec::new(),
                };
                wanted.extend(views.iter().cloned());
                let inputs =
                    model_inputs(raw, asset, &wanted, &views, Some(&def.model), &names, diags);
                resolved.insert(asset.name.clone(), inputs);
                continue;
            }
            Definition::Features(def) => match &def.body {
                FeatureBody::Sql { sql, origin } => (sql, origin),
                FeatureBody::Declared(d) => {
                    let source = d.source.as_str();
                    if !names.contains(source) {
                        let at = raw
                            .features
                            .get(asset.name.as_str())
                            .and_then(|e| e.value.source.as_ref())
                            .map_or(asset.location.clone(), |s| raw.location(s.span().start));
                        diags.push(
                            Diagnostic::new(
                                at,
                                format!(
                                    "unknown asset `{source}` in feature view `{}`",
                                    asset.name
                                ),
                            )
                            .with_help(suggest(source, &names)),
                        );
                    } else if assets.contains_key(&d.source) {
                        resolved.insert(asset.name.clone(), vec![d.source.clone()]);
                    }
                    continue;
                }
            },
        };
        match references(sql) {
            Ok(refs) => {
                let mut inputs: Vec<AssetName> = Vec::new();
                for r in refs {
                    let at = origin.locate(r.line, r.column);
                    if r.qualified {
                        diags.push(
                            Diagnostic::new(at, format!("`{}` is qualified with a schema", r.name))
                                .with_help("refer to assets by their bare name"),
                        );
                    } else if let Some(d) = not_a_table(raw, &r.name, None, true, &at) {
                        diags.push(d);
                    } else if !names.contains(&r.name) {
                        diags.push(
                            Diagnostic::new(
                                at,
                                format!(
                                    "unknown asset `{}` in {} `{}`",
                                    r.name,
                                    asset.kind(),
                                    asset.name
                                ),
                            )
                            .with_help(suggest(&r.name, &names)),
                        );
                    } else if let Ok(n) = AssetName::new(&r.name)
                        && assets.contains_key(&n)
                        && !inputs.contains(&n)
                    {
                        inputs.push(n);
                    }
                }
                resolved.insert(asset.name.clone(), inputs);
            }
            Err(e) => diags.push(
                Diagnostic::new(
                    origin.locate(e.line, e.column),
                    format!("SQL of {} `{}`: {}", asset.kind(), asset.name, e.message),
                )
                .with_help("fix the query; `sluice check` plans every table without running it"),
            ),
        }
    }
    for (name, inputs) in resolved {
        if let Some(asset) = b.assets.get_mut(&name) {
            asset.inputs = inputs;
        }
    }
}

/// Resolves the assets a model or predictions asset reads; `views` must be
/// feature views, and nothing read may be an export or a model (but `model`).
fn model_inputs(
    raw: &RawProject,
    asset: &Asset,
    wanted: &[String],
    views: &[String],
    model: Option<&str>,
    names: &BTreeSet<String>,
    diags: &mut Diagnostics,
) -> Vec<AssetName> {
    let mut inputs = Vec::new();
    for w in wanted {
        let at = reference_at(raw, asset, model, w);
        if let Some(d) = not_a_table(raw, w, model, true, &at) {
            diags.push(d);
        } else if !names.contains(w) {
            diags.push(
                Diagnostic::new(
                    at,
                    format!("unknown asset `{w}` in {} `{}`", asset.kind(), asset.name),
                )
                .with_help(suggest(w, names)),
            );
        } else if views.contains(w) && !raw.features.contains_key(w) && !raw.broken.contains(w) {
            diags.push(
                Diagnostic::new(
                    at,
                    format!("`{w}` is not a feature view"),
                )
                .with_help("`features` names feature views (`[features.NAME]`); use `columns` for the spine's own columns"),
            );
        } else if let Ok(n) = AssetName::new(w)
            && !raw.broken.contains(w)
            && !inputs.contains(&n)
        {
            inputs.push(n);
        }
    }
    inputs
}

/// Resolves the assets a step reads (`inputs`): tables of any kind, not an
/// export or a model. A step without `output` is an input for order only: the
/// step runs after it (and again when it ran again) but gets no file of it.
fn step_inputs(
    raw: &RawProject,
    asset: &Asset,
    wanted: &[String],
    names: &BTreeSet<String>,
    diags: &mut Diagnostics,
) -> Vec<AssetName> {
    let spans = raw
        .steps
        .get(asset.name.as_str())
        .map(|e| e.value.inputs.as_slice())
        .unwrap_or_default();
    let mut inputs = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        let at = spans
            .get(i)
            .map_or(asset.location.clone(), |s| raw.location(s.span().start));
        // A step without `output` is an input for order only.
        if let Some(d) = not_a_table(raw, w, None, false, &at) {
            diags.push(d);
        } else if !names.contains(w) {
            diags.push(
                Diagnostic::new(at, format!("unknown asset `{w}` in step `{}`", asset.name))
                    .with_help(suggest(w, names)),
            );
        } else if let Ok(n) = AssetName::new(w)
            && !raw.broken.contains(w)
            && !inputs.contains(&n)
        {
            inputs.push(n);
        }
    }
    inputs
}

/// Resolves the asset whose rows a collection reads (`from`).
fn collection_input(
    raw: &RawProject,
    asset: &Asset,
    from: &str,
    names: &BTreeSet<String>,
    diags: &mut Diagnostics,
) -> Vec<AssetName> {
    let at = raw
        .collections
        .get(asset.name.as_str())
        .and_then(|e| e.value.from.as_ref())
        .map_or(asset.location.clone(), |s| raw.location(s.span().start));
    if let Some(d) = not_a_table(raw, from, None, true, &at) {
        diags.push(d);
    } else if !names.contains(from) {
        diags.push(
            Diagnostic::new(
                at,
                format!("unknown asset `{from}` in collection `{}`", asset.name),
            )
            .with_help(suggest(from, names)),
        );
    } else if let Ok(n) = AssetName::new(from)
        && !raw.broken.contains(from)
    {
        return vec![n];
    }
    vec![]
}

/// Why `name` cannot be read as a table, if it cannot: a model (but `own`, a
/// model's own), an export, or — where its rows are read (`rows`) — a step
/// without `output`.
fn not_a_table(
    raw: &RawProject,
    name: &str,
    own: Option<&str>,
    rows: bool,
    at: &Location,
) -> Option<Diagnostic> {
    if raw.models.contains_key(name) && Some(name) != own {
        Some(
            Diagnostic::new(at.clone(), format!("`{name}` is a model, not a table")).with_help(
                format!(
                    "read its batch predictions, `{}`",
                    crate::models::predictions_name(name)
                ),
            ),
        )
    } else if raw.exports.contains_key(name) {
        Some(
            Diagnostic::new(
                at.clone(),
                format!("`{name}` is an export (a file), not a table"),
            )
            .with_help("read the asset the export writes instead"),
        )
    } else if rows {
        step_without_output(raw, name).map(|step| step.at(at.clone()))
    } else {
        None
    }
}

/// A reference to a step that declares no `output`: it has no rows to read.
struct NoOutput(String);

impl NoOutput {
    fn at(&self, at: Location) -> Diagnostic {
        Diagnostic::new(
            at,
            format!("`{}` is a step without `output`, not a table", self.0),
        )
        .with_help("declare the step's `output` (a .parquet or .csv file) to read its rows")
    }
}

fn step_without_output(raw: &RawProject, name: &str) -> Option<NoOutput> {
    raw.steps
        .get(name)
        .filter(|e| e.value.output.is_none())
        .map(|_| NoOutput(name.to_string()))
}

/// Where a model (or its predictions, `model` named) writes the reference to
/// `wanted`: its `spine`, an entry of `features` or the predictions' `spine`;
/// else the asset's own place.
fn reference_at(raw: &RawProject, asset: &Asset, model: Option<&str>, wanted: &str) -> Location {
    let Some(section) = raw.models.get(model.unwrap_or(asset.name.as_str())) else {
        return asset.location.clone();
    };
    let m = &section.value;
    let predictions = m.predictions.as_ref().map(|p| &p.get_ref().spine);
    let spans = match model {
        Some(_) => predictions.into_iter().collect::<Vec<_>>(),
        None => m.spine.iter().collect(),
    };
    spans
        .into_iter()
        .chain(m.features.iter())
        .find(|s| s.get_ref().split(':').next() == Some(wanted))
        .map_or(asset.location.clone(), |s| raw.location(s.span().start))
}

pub(super) fn suggest(name: &str, names: &BTreeSet<String>) -> String {
    let close = names
        .iter()
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .min();
    match close {
        Some((_, n)) => format!("did you mean `{n}`?"),
        None if names.is_empty() => "the project defines no assets yet".to_string(),
        None => format!(
            "the assets are: {}",
            names
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
