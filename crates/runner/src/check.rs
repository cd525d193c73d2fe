//! `sluice check`: compiles every asset without running anything — sources are
//! opened and their schemas worked out, every table's query is planned against
//! its inputs' schemas, every contract compiled against its asset's columns —
//! and reports every problem at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::datasource::empty::EmptyTable;
use sluice_project::{Definition, Diagnostic, Diagnostics, Project};
use sluice_source::FileSource;

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
        let schema = match &asset.definition {
            Definition::Source(def) => {
                let def = def.clone();
                match tokio::task::spawn_blocking(move || FileSource::open(&def)).await {
                    Ok(Ok(source)) => Ok(source.schema()),
                    Ok(Err(e)) => Err(Diagnostic::new(
                        asset.location.clone(),
                        format!("source `{name}`: {e}"),
                    )),
                    Err(e) => Err(Diagnostic::new(
                        asset.location.clone(),
                        format!("internal error: {e}"),
                    )),
                }
            }
            Definition::Table(def) => sluice_transform::plan_table(&ctx, asset, def)
                .await
                .map(|plan| Arc::new(plan.schema().as_arrow().clone())),
            Definition::Export(def) => sluice_transform::plan_table(&ctx, asset, &def.query)
                .await
                .map(|plan| Arc::new(plan.schema().as_arrow().clone()))
                .and_then(|schema| {
                    match def.key.iter().find(|k| schema.field_with_name(k).is_err()) {
                        Some(k) => Err(Diagnostic::new(
                            asset.location.clone(),
                            format!(
                                "export `{name}` is keyed by `{k}`, which its rows do not have"
                            ),
                        )
                        .with_help(format!(
                            "the columns are: {}",
                            schema
                                .fields()
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))),
                        None => Ok(schema),
                    }
                }),
            Definition::Features(def) => {
                let now = chrono::Utc::now().timestamp_micros();
                sluice_transform::plan_features(&ctx, asset, def, now)
                    .await
                    .map(|plan| Arc::new(plan.schema().as_arrow().clone()))
            }
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
