//! `incremental = { ... }` on a source, compiled into [`Incremental`] on the
//! asset. What the source is checked against (the column's type) is known
//! only when it is read: the runner checks that.

use std::time::Duration;

use super::{Builder, Definition, fingerprint};
use crate::diag::Diagnostic;
use crate::raw::IncrementalMode;

/// How a source reads only what is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incremental {
    /// The column whose greatest value read is the watermark.
    pub column: String,
    /// The columns that identify a row (empty: none).
    pub key: Vec<String>,
    /// Append or merge.
    pub mode: IncrementalMode,
    /// How far before the watermark each run reads again.
    pub lookback: Option<Duration>,
}

/// Gives every source with `incremental` its [`Incremental`], and folds the
/// section into the fingerprint: reading another way is another table.
pub(super) fn apply(b: &mut Builder<'_>) {
    let raw = b.raw;
    for (name, entry) in &raw.incremental {
        let section = &entry.value;
        let at = raw.location(entry.offset);
        let key: Vec<String> = section
            .key
            .as_ref()
            .map(|k| k.get_ref().clone())
            .unwrap_or_default();
        let mode = section
            .mode
            .as_ref()
            .map(|m| *m.get_ref())
            .unwrap_or_default();
        let lookback = section.lookback.as_ref().map(|l| l.get_ref().value);
        let mut ok = true;
        if section.column.get_ref().is_empty() {
            b.diags.push(
                Diagnostic::new(
                    raw.location(section.column.span().start),
                    "`column` is empty",
                )
                .with_help("name the column that grows with new rows, like `updated_at`"),
            );
            ok = false;
        }
        if key.is_empty() && (mode == IncrementalMode::Merge || lookback.is_some()) {
            let (why, offset) = match (&section.mode, &section.lookback) {
                (Some(m), _) if mode == IncrementalMode::Merge => (
                    "`mode = \"merge\"` replaces rows by their key",
                    m.span().start,
                ),
                (_, Some(l)) => (
                    "rows read again within `lookback` are told apart from those already loaded by their key",
                    l.span().start,
                ),
                _ => ("rows are told apart by their key", entry.offset),
            };
            b.diags.push(
                Diagnostic::new(
                    raw.location(offset),
                    format!("source `{name}`: `incremental` needs a `key`: {why}"),
                )
                .with_help(
                    "add `key = [\"id\"]` (the columns that identify a row) to `incremental`",
                ),
            );
            ok = false;
        }
        let Some(asset) = b.assets.values_mut().find(|a| a.name.as_str() == name) else {
            continue;
        };
        if !matches!(asset.definition, Definition::Source(_)) {
            continue;
        }
        if asset.partitioned.is_some() {
            b.diags.push(
                Diagnostic::new(
                    at,
                    format!("source `{name}` is both `partitioned` and `incremental`"),
                )
                .with_help("choose one: partitions rebuild time ranges, incremental loads add what is past a watermark"),
            );
            continue;
        }
        if !ok {
            continue;
        }
        let written = serde_json::to_string(section).unwrap_or_default();
        asset.fingerprint = fingerprint(&[&asset.fingerprint, "incremental", &written]);
        asset.incremental = Some(Incremental {
            column: section.column.get_ref().clone(),
            key,
            mode,
            lookback,
        });
    }
}
