//! `[explorers.NAME]` into an [`ExplorerDef`]: its tables must be assets that
//! are tables, its online view a feature view, and a table's entity and time
//! columns written out (a feature view's default to its own). Column names are
//! checked against the tables' schemas when the page reads them.

use std::collections::BTreeSet;

use sluice_core::{AssetKind, Location};

use super::{Builder, Definition};
use crate::diag::Diagnostic;
use crate::parse::Entry;
use crate::raw::ExplorerSection;

/// A compiled explorer.
#[derive(Debug, Clone)]
pub struct ExplorerDef {
    /// Its name (`[explorers.NAME]`), the last part of its URL.
    pub name: String,
    /// Where it is defined.
    pub location: Location,
    /// The page's title.
    pub title: String,
    /// The table whose rows are charted.
    pub from: String,
    /// The column naming an entity.
    pub entity: String,
    /// The column of time.
    pub time: String,
    /// Where names are: (table, id column, name column).
    pub label: Option<(String, String, String)>,
    /// The charts: (title, columns).
    pub charts: Vec<(String, Vec<String>)>,
    /// The feature view whose online record is shown.
    pub online: Option<String>,
    /// Free text for people.
    pub description: Option<String>,
}

/// Compiles every `[explorers.NAME]`; call once every asset is compiled.
pub(super) fn compile(b: &mut Builder<'_>) -> std::collections::BTreeMap<String, ExplorerDef> {
    let raw = b.raw;
    let mut out = std::collections::BTreeMap::new();
    for (name, entry) in &raw.explorers {
        if let Some(def) = compile_one(b, name, entry) {
            out.insert(name.clone(), def);
        }
    }
    out
}

/// The kind of the asset `name`, with an error at `at` when there is none or
/// it is not a table (`views_only`: not a feature view).
fn table_kind(
    b: &mut Builder<'_>,
    name: &str,
    at: Location,
    owner: &str,
    views_only: bool,
) -> Option<AssetKind> {
    let found = b.assets.values().find(|a| a.name.as_str() == name);
    let ok = found.filter(|a| {
        if views_only {
            a.kind() == AssetKind::Features
        } else {
            a.is_table()
        }
    });
    if let Some(a) = ok {
        return Some(a.kind());
    }
    let wanted = if views_only { "feature view" } else { "table" };
    let candidates: BTreeSet<String> = b
        .assets
        .values()
        .filter(|a| {
            if views_only {
                a.kind() == AssetKind::Features
            } else {
                a.is_table()
            }
        })
        .map(|a| a.name.to_string())
        .collect();
    let message = match found {
        Some(a) => format!("{owner}: `{name}` is a {}, not a {wanted}", a.kind()),
        None if b.raw.broken.contains(name) => return None,
        None => format!("{owner}: there is no {wanted} `{name}`"),
    };
    b.diags.push(
        Diagnostic::new(at, message).with_help(if candidates.is_empty() {
            format!("the project has no {wanted}")
        } else {
            format!(
                "the {wanted}s are: {}",
                candidates.into_iter().collect::<Vec<_>>().join(", ")
            )
        }),
    );
    None
}

fn compile_one(
    b: &mut Builder<'_>,
    name: &str,
    entry: &Entry<ExplorerSection>,
) -> Option<ExplorerDef> {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let s = &entry.value;
    let owner = format!("explorer `{name}`");
    let before = b.diags.len();
    let from = s.from.get_ref().clone();
    let from_at = raw.location(s.from.span().start);
    let kind = table_kind(b, &from, from_at.clone(), &owner, false);
    let view = b
        .assets
        .values()
        .find(|a| a.name.as_str() == from)
        .and_then(|a| match &a.definition {
            Definition::Features(f) => Some(f.as_ref().clone()),
            _ => None,
        });
    let entity = match (&s.entity, &view) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(v)) if v.entity.len() == 1 => Some(v.entity[0].clone()),
        (None, Some(v)) => {
            b.diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!(
                        "{owner}: `{from}` has {} entity columns ({}): say which one names an entity",
                        v.entity.len(),
                        v.entity.join(", ")
                    ),
                )
                .with_help("add `entity = \"COLUMN\"`"),
            );
            None
        }
        (None, None) => {
            if kind.is_some() {
                b.diags.push(
                    Diagnostic::new(
                        at.clone(),
                        format!("{owner}: `{from}` is a table: say which column names an entity"),
                    )
                    .with_help("add `entity = \"COLUMN\"`"),
                );
            }
            None
        }
    };
    let time = match (&s.time, &view) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(v)) => Some(v.timestamp.clone()),
        (None, None) => {
            if kind.is_some() {
                b.diags.push(
                    Diagnostic::new(
                        at.clone(),
                        format!("{owner}: `{from}` is a table: say which column is its time"),
                    )
                    .with_help(
                        "add `time = \"COLUMN\"` (a date, a timestamp or a number such as a year)",
                    ),
                );
            }
            None
        }
    };
    let label = match &s.label {
        None => None,
        Some(l) => {
            let table = match &l.from {
                Some(t) => {
                    let t_at = raw.location(t.span().start);
                    table_kind(b, t.get_ref(), t_at, &owner, false);
                    t.get_ref().clone()
                }
                None => from.clone(),
            };
            let key = l.key.clone().or_else(|| entity.clone()).unwrap_or_default();
            Some((table, key, l.column.clone()))
        }
    };
    let online = match &s.online {
        Some(o) => {
            let o_at = raw.location(o.span().start);
            table_kind(b, o.get_ref(), o_at, &owner, true).map(|_| o.get_ref().clone())
        }
        None => view.as_ref().map(|_| from.clone()),
    };
    if s.charts.get_ref().is_empty() || s.charts.get_ref().iter().any(|c| c.columns.is_empty()) {
        b.diags.push(
            Diagnostic::new(
                raw.location(s.charts.span().start),
                format!("{owner}: every chart needs at least one column"),
            )
            .with_help("write `charts = [{ title = \"Home runs\", columns = [\"HR\"] }]`"),
        );
    }
    if b.diags.len() > before {
        return None;
    }
    Some(ExplorerDef {
        name: name.to_string(),
        location: at,
        title: s
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| name.to_string()),
        from,
        entity: entity?,
        time: time?,
        label,
        charts: s
            .charts
            .get_ref()
            .iter()
            .map(|c| {
                (
                    c.title.clone().unwrap_or_else(|| c.columns.join(", ")),
                    c.columns.clone(),
                )
            })
            .collect(),
        online,
        description: s.description.clone(),
    })
}
