//! `sluice check`: compiles every asset without running anything — sources are
//! opened and their schemas worked out, every table's query is planned against
//! its inputs' schemas, every contract compiled against its asset's columns —
//! and reports every problem at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::empty::EmptyTable;
use datafusion::prelude::SessionContext;
use sluice_project::{
    Asset, Definition, Diagnostic, Diagnostics, Learner, ModelDef, PredictionsDef, Project, Task,
};

use crate::training::columns;

/// Checks the project; `Ok` when every asset would plan.
pub async fn check(project: &Project) -> Result<(), Diagnostics> {
    let ctx = sluice_transform::session();
    let mut diags = Diagnostics::default();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    for name in &project.order {
        let asset = &project.assets[name];
        if let Some(bad) = asset.inputs.iter().find(|i| broken.contains(i.as_str())) {
            tracing::debug!("not planning `{name}`: its input `{bad}` has errors");
            broken.insert(name.to_string());
            continue;
        }
        let kind = crate::kinds::of(asset);
        let schema = match kind.check(&ctx, project).await {
            Ok(Some(schema)) => Ok(schema),
            // Known once built (a step's output): its downstream cannot be planned.
            Ok(None) if kind.schema_unknown_until_built() => {
                tracing::debug!("`{name}` has no schema before it is built");
                broken.insert(name.to_string());
                continue;
            }
            // Not a table (a model): nothing to register.
            Ok(None) => continue,
            Err(d) => Err(d),
        };
        // A contract changes the published schema (`type`) and must fit the columns.
        let schema = schema.and_then(|schema| {
            if asset.contract.is_empty() {
                return Ok(schema);
            }
            sluice_validate::Validator::check(&ctx, &asset.contract, &schema).map_err(|e| match e {
                sluice_validate::Error::Compile {
                    location,
                    message,
                    help,
                } => Diagnostic::new(location, format!("contract of `{name}`: {message}"))
                    .with_help(help),
                other => Diagnostic::new(
                    asset.location.clone(),
                    format!("contract of `{name}`: {other}"),
                ),
            })
        });
        match schema {
            Ok(schema) => {
                if let Err(e) = ctx.register_table(name.as_str(), Arc::new(EmptyTable::new(schema)))
                {
                    diags.push(Diagnostic::new(asset.location.clone(), e.strip_backtrace()));
                }
            }
            Err(d) => {
                diags.push(d);
                broken.insert(name.to_string());
            }
        }
    }
    diags.into_result(())
}

/// The schema of a registered (checked) asset.
async fn schema_of(ctx: &SessionContext, name: &str) -> Option<SchemaRef> {
    ctx.table_provider(name).await.ok().map(|t| t.schema())
}

/// The spine's time column: `given`, or its only timestamp or date column.
fn spine_time(
    asset: &Asset,
    spine: &str,
    schema: &Schema,
    given: Option<&str>,
) -> Result<String, Diagnostic> {
    let is_time = |t: &DataType| {
        matches!(
            t,
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
        )
    };
    let here = || asset.location.clone();
    match given {
        Some(t) => match schema.field_with_name(t) {
            Ok(f) if is_time(f.data_type()) => Ok(t.to_string()),
            Ok(f) => Err(Diagnostic::new(
                here(),
                format!(
                    "`{t}` of spine `{spine}` is {}, not a time",
                    sluice_core::type_name(f.data_type())
                ),
            )),
            Err(_) => Err(
                Diagnostic::new(here(), format!("spine `{spine}` has no column `{t}`"))
                    .with_help(format!("its columns are: {}", columns(schema))),
            ),
        },
        None => {
            let times: Vec<&str> = schema
                .fields()
                .iter()
                .filter(|f| is_time(f.data_type()))
                .map(|f| f.name().as_str())
                .collect();
            match times.as_slice() {
                [one] => Ok(one.to_string()),
                [] => Err(Diagnostic::new(
                    here(),
                    format!("spine `{spine}` has no timestamp column"),
                )
                .with_help("each row needs the time its features are taken at")),
                many => Err(Diagnostic::new(
                    here(),
                    format!(
                        "spine `{spine}` has several time columns ({})",
                        many.join(", ")
                    ),
                )
                .with_help("say which with `timestamp = \"COLUMN\"`")),
            }
        }
    }
}

/// A model's spine columns, label, time and features exist with usable types.
pub(crate) async fn check_model(
    ctx: &SessionContext,
    project: &Project,
    asset: &Asset,
    def: &ModelDef,
) -> Result<(), Diagnostic> {
    let here = || asset.location.clone();
    let Some(spine) = &def.spine else {
        return Ok(());
    };
    let Some(schema) = schema_of(ctx, spine).await else {
        return Err(Diagnostic::new(
            here(),
            format!(
                "the spine `{spine}` of model `{}` is not a table",
                asset.name
            ),
        )
        .with_help("name a source, a table or a feature view"));
    };
    spine_time(asset, spine, &schema, def.timestamp.as_deref())?;
    if let Some(label) = &def.label {
        match schema.field_with_name(label) {
            Err(_) => {
                return Err(Diagnostic::new(
                    here(),
                    format!("spine `{spine}` has no label column `{label}`"),
                )
                .with_help(format!("its columns are: {}", columns(&schema))));
            }
            Ok(f) if !(f.data_type().is_numeric() || *f.data_type() == DataType::Boolean) => {
                return Err(Diagnostic::new(
                    here(),
                    format!(
                        "the label `{label}` is {}, not a number or a boolean",
                        sluice_core::type_name(f.data_type())
                    ),
                )
                .with_help(match def.task {
                    Task::Binary => {
                        "a binary label is 0/1 or a boolean, e.g. `CAST(x > 15 AS INT)`"
                    }
                    Task::Regression => "a regression label is a number",
                }));
            }
            Ok(_) => {}
        }
    }
    if let Some(sluice_project::models::LabelHorizon::Column(c)) = &def.label_horizon {
        match schema.field_with_name(c) {
            Err(_) => {
                return Err(Diagnostic::new(
                    here(),
                    format!("spine `{spine}` has no column `{c}` (`label_available`)"),
                )
                .with_help(format!("its columns are: {}", columns(&schema))));
            }
            Ok(f)
                if !matches!(
                    f.data_type(),
                    DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
                ) =>
            {
                return Err(Diagnostic::new(
                    here(),
                    format!(
                        "`label_available` column `{c}` is {}, not a time",
                        sluice_core::type_name(f.data_type())
                    ),
                )
                .with_help("give when each row's label became known, a timestamp or a date"));
            }
            Ok(_) => {}
        }
    }
    let mut available: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    for c in &def.columns {
        match schema.field_with_name(c) {
            Err(_) => {
                return Err(Diagnostic::new(
                    here(),
                    format!("spine `{spine}` has no column `{c}`"),
                )
                .with_help(format!("its columns are: {}", columns(&schema))));
            }
            Ok(f) => {
                sluice_model::Kind::of(c, f.data_type())
                    .map_err(|e| Diagnostic::new(here(), format!("model `{}`: {e}", asset.name)))?;
            }
        }
    }
    for item in &def.features {
        let (view, feature) = match item.split_once(':') {
            Some((v, f)) => (v.trim(), Some(f.trim())),
            None => (item.trim(), None),
        };
        let Some(view_schema) = schema_of(ctx, view).await else {
            continue;
        };
        let (entity, keys) = match project.assets.iter().find(|(n, _)| n.as_str() == view) {
            Some((_, a)) => match &a.definition {
                Definition::Features(f) => (f.entity.clone(), f.key_columns()),
                _ => (Vec::new(), Vec::new()),
            },
            None => (Vec::new(), Vec::new()),
        };
        if let Some(k) = entity.iter().find(|k| schema.field_with_name(k).is_err()) {
            return Err(Diagnostic::new(
                here(),
                format!(
                    "feature view `{view}` is keyed by `{k}`, which spine `{spine}` does not have"
                ),
            )
            .with_help("the spine needs every key column of every view it joins"));
        }
        match feature {
            Some(f) if view_schema.field_with_name(f).is_err() || keys.iter().any(|k| k == f) => {
                return Err(Diagnostic::new(
                    here(),
                    format!("feature view `{view}` has no feature `{f}`"),
                )
                .with_help(format!("its columns are: {}", columns(&view_schema))));
            }
            _ => {}
        }
        for field in view_schema.fields() {
            if !keys.contains(field.name()) {
                available.push(field.name().clone());
            }
        }
    }
    if let Learner::Onnx { inputs, .. } = &def.learner
        && let Some(missing) = inputs.iter().find(|i| !available.contains(i))
    {
        return Err(Diagnostic::new(
            here(),
            format!("ONNX input `{missing}` is neither a column of spine `{spine}` nor a feature"),
        ));
    }
    Ok(())
}

/// The predictions table's schema: the entity, the spine's time, the score,
/// the predicted class and the model version.
pub(crate) async fn check_predictions(
    ctx: &SessionContext,
    project: &Project,
    asset: &Asset,
    def: &PredictionsDef,
) -> Result<SchemaRef, Diagnostic> {
    let here = || asset.location.clone();
    let Some(schema) = schema_of(ctx, &def.spine).await else {
        return Err(Diagnostic::new(
            here(),
            format!(
                "the spine `{}` of `{}` is not a table",
                def.spine, asset.name
            ),
        ));
    };
    let time = spine_time(asset, &def.spine, &schema, def.timestamp.as_deref())?;
    let model = project
        .assets
        .iter()
        .find(|(n, _)| n.as_str() == def.model)
        .and_then(|(_, a)| match &a.definition {
            Definition::Model(m) => Some(m),
            _ => None,
        });
    if let Some(m) = model
        && let Some(c) = m
            .columns
            .iter()
            .find(|c| schema.field_with_name(c).is_err())
    {
        return Err(Diagnostic::new(
            here(),
            format!(
                "model `{}` reads the spine column `{c}`, which `{}` does not have",
                def.model, def.spine
            ),
        )
        .with_help(
            "a prediction spine needs the model's `columns` and the keys of its feature views",
        ));
    }
    let mut fields = Vec::new();
    for k in def.entity.iter().chain(std::iter::once(&time)) {
        match schema.field_with_name(k) {
            Ok(f) => fields.push(f.clone().with_nullable(true)),
            Err(_) => {
                return Err(Diagnostic::new(
                    here(),
                    format!("spine `{}` has no column `{k}`", def.spine),
                )
                .with_help(format!("its columns are: {}", columns(&schema))));
            }
        }
    }
    fields.push(Field::new(crate::SCORE, DataType::Float64, false));
    if model.is_some_and(|m| m.task == Task::Binary) {
        fields.push(Field::new(crate::PREDICTED, DataType::Boolean, false));
    }
    fields.push(Field::new(crate::MODEL_VERSION, DataType::Int64, false));
    Ok(Arc::new(Schema::new(fields)))
}
