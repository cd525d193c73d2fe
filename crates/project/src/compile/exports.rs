//! `[exports.NAME]`: an asset's rows written on every refresh — its query and
//! key here, where they go (a file, a PostgreSQL table, Redis keys) in `targets.rs`.

use sluice_core::{AssetKind, Location};

use super::targets::{self, ExportFormat, ExportTarget, FileTarget};
use super::{Builder, Definition, TableDef, fingerprint};
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::ExportSection;
use crate::sql::SqlOrigin;

/// A compiled export.
#[derive(Debug, Clone)]
pub struct ExportDef {
    /// The query whose rows are written.
    pub query: TableDef,
    /// Where they are written.
    pub target: ExportTarget,
    /// The key columns: a JSON file's keys, outermost first (empty: an array
    /// of rows); the columns whose values fill a Redis key's `{id}`; a
    /// PostgreSQL table's unique key (upsert's conflict target).
    pub key: Vec<String>,
    /// The feature view it exports (`from` a view): its newest row per entity,
    /// whose windows a view that keeps tiles reads as of the run.
    pub view: Option<String>,
}

impl ExportDef {
    /// The file it writes, when it writes one.
    pub fn file(&self) -> Option<&FileTarget> {
        match &self.target {
            ExportTarget::File(f) => Some(f),
            _ => None,
        }
    }

    /// Whether it is a JSON file keyed by entity (what `sluice get` reads).
    pub fn is_keyed_json(&self) -> bool {
        self.file().is_some_and(|f| f.format == ExportFormat::Json) && !self.key.is_empty()
    }
}

/// Compiles `[exports.NAME]`.
pub(super) fn compile(b: &mut Builder<'_>, name: &str, entry: &Entry<ExportSection>) {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let Some(asset_name) = b.claim(name, AssetKind::Export, &at) else {
        return;
    };
    let section = &entry.value;
    let Some(def) = compile_export(raw, name, section, &at, &mut b.diags) else {
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
/// view's newest row per entity), its target and key.
fn compile_export(
    raw: &RawProject,
    name: &str,
    section: &ExportSection,
    at: &Location,
    diags: &mut Diagnostics,
) -> Option<ExportDef> {
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
    let entity = view.map(|v| v.entity.get_ref().to_vec());
    let (target, key) = targets::compile(raw, name, section, entity, at, diags);
    // With a mistake reported above the project does not load, but the export
    // is still added, so that its references are checked too.
    Some(ExportDef {
        query: TableDef { sql, origin },
        target,
        key,
        view: view.and(section.from.as_ref()).map(|f| f.get_ref().clone()),
    })
}
