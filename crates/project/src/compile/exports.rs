//! `[exports.NAME]`: an asset's rows written to a file on every refresh.

use std::path::PathBuf;

use sluice_core::{AssetKind, Location};

use super::{Builder, Definition, TableDef, fingerprint};
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::ExportSection;
use crate::sql::SqlOrigin;

/// The format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// JSON: an object keyed by entity, or an array of rows.
    Json,
    /// CSV with a header line.
    Csv,
    /// Parquet.
    Parquet,
}

/// A compiled export.
#[derive(Debug, Clone)]
pub struct ExportDef {
    /// The query whose rows are written.
    pub query: TableDef,
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: ExportFormat,
    /// JSON: the key columns, outermost first (empty: an array of rows).
    pub key: Vec<String>,
    /// The feature view it exports (`from` a view): its newest row per entity,
    /// whose windows a view that keeps tiles reads as of the run.
    pub view: Option<String>,
}

/// Compiles `[exports.NAME]`.
pub(super) fn compile(b: &mut Builder<'_>, name: &str, entry: &Entry<ExportSection>) {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let Some(asset_name) = b.claim(name, AssetKind::Export, &at) else {
        return;
    };
    let section = &entry.value;
    let Some(def) = compile_export(raw, section, &at, &mut b.diags) else {
        return;
    };
    let fingerprint = fingerprint(&[
        "export",
        &serde_json::to_string(section).unwrap_or_default(),
        def.query.sql.trim(),
    ]);
    let asset = b.add(
        asset_name,
        at,
        Definition::Export(Box::new(def)),
        fingerprint,
    );
    asset.description = section.description.clone();
}

/// Compiles `[exports.NAME]`: its query (`from` becomes a `SELECT`; a feature
/// view's newest row per entity), its file, format and JSON key.
fn compile_export(
    raw: &RawProject,
    section: &ExportSection,
    at: &Location,
    diags: &mut Diagnostics,
) -> Option<ExportDef> {
    let path_text = section.path.get_ref();
    let path_at = raw.location(section.path.span().start);
    if path_text.is_empty() {
        diags.push(Diagnostic::new(
            path_at.clone(),
            "the export's `path` is empty",
        ));
    }
    let path = raw.dir.join(path_text);
    let format = match &section.format {
        Some(f) => match f.get_ref().as_str() {
            "json" => Some(ExportFormat::Json),
            "csv" => Some(ExportFormat::Csv),
            "parquet" => Some(ExportFormat::Parquet),
            other => {
                diags.push(
                    Diagnostic::new(
                        raw.location(f.span().start),
                        format!("unknown export format `{other}`"),
                    )
                    .with_help("write `format = \"json\"`, `\"csv\"` or `\"parquet\"`"),
                );
                None
            }
        },
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Some(ExportFormat::Json),
            Some("csv") => Some(ExportFormat::Csv),
            Some("parquet") => Some(ExportFormat::Parquet),
            _ => {
                diags.push(
                    Diagnostic::new(
                        path_at.clone(),
                        format!("cannot tell the format of `{path_text}`"),
                    )
                    .with_help(
                        "end the path in .json, .csv or .parquet, or add `format = \"json\"`",
                    ),
                );
                None
            }
        },
    };
    // A feature view exports the newest row of each entity.
    let view = section
        .from
        .as_ref()
        .and_then(|f| raw.features.get(f.get_ref()))
        .map(|e| &e.value);
    let (sql, origin) = match (&section.from, &section.sql) {
        (Some(from), None) => {
            let table = crate::features::quote(from.get_ref());
            let sql = match view {
                Some(v) => {
                    let keys = v.entity.get_ref().to_vec();
                    let mut order = vec![format!(
                        "{} DESC",
                        crate::features::quote(v.timestamp.get_ref())
                    )];
                    if let Some(c) = &v.created {
                        order.push(format!("{} DESC", crate::features::quote(c.get_ref())));
                    }
                    format!(
                        "SELECT * EXCEPT (\"__sluice_newest\") FROM (SELECT *, row_number() OVER (PARTITION BY {} ORDER BY {}) AS \"__sluice_newest\" FROM {table}) WHERE \"__sluice_newest\" = 1",
                        keys.iter()
                            .map(|k| crate::features::quote(k))
                            .collect::<Vec<_>>()
                            .join(", "),
                        order.join(", ")
                    )
                }
                None => format!("SELECT * FROM {table}"),
            };
            (
                sql,
                SqlOrigin::of_toml_string(&raw.file, &raw.text, from.span().start),
            )
        }
        (None, Some(sql)) => (
            sql.get_ref().clone(),
            SqlOrigin::of_toml_string(&raw.file, &raw.text, sql.span().start),
        ),
        (Some(_), Some(_)) => {
            diags.push(
                Diagnostic::new(at.clone(), "an export has either `from` or `sql`, not both")
                    .with_help("keep one of them"),
            );
            return None;
        }
        (None, None) => {
            diags.push(
                Diagnostic::new(at.clone(), "an export needs what to write")
                    .with_help("add `from = \"ASSET\"` or `sql = \"SELECT ...\"`"),
            );
            return None;
        }
    };
    let key = match (&section.key, view) {
        (Some(k), _) => k.get_ref().to_vec(),
        (None, Some(v)) => v.entity.get_ref().to_vec(),
        (None, None) => Vec::new(),
    };
    if let Some(k) = &section.key {
        if format.is_some_and(|f| f != ExportFormat::Json) {
            diags.push(
                Diagnostic::new(
                    raw.location(k.span().start),
                    "`key` applies to JSON exports only",
                )
                .with_help("remove it, or write the export as JSON"),
            );
        } else if key.is_empty() || key.iter().any(String::is_empty) {
            diags.push(Diagnostic::new(
                raw.location(k.span().start),
                "`key` names no column",
            ));
        }
    }
    // With a mistake reported above the project does not load, but the export
    // is still added, so that its references are checked too.
    Some(ExportDef {
        query: TableDef { sql, origin },
        path,
        format: format.unwrap_or(ExportFormat::Json),
        key,
        view: view.and(section.from.as_ref()).map(|f| f.get_ref().clone()),
    })
}
