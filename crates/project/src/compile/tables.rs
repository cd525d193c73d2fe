//! `[tables.NAME]`: a SQL query over other assets, inline or in a file.

use sluice_core::{AssetKind, Location};

use super::{Builder, Definition, fingerprint};
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::TableSection;
use crate::sql::SqlOrigin;
use toml::Spanned;

/// A compiled SQL table.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// The query.
    pub sql: String,
    /// Where the query is written.
    pub origin: SqlOrigin,
}

/// A query written inline (`sql`) or in a file (`file`), with where it is
/// written; `Ok(None)` when neither is given. `what` names the section in
/// messages ("a table", "a feature view").
pub(crate) fn sql_or_file(
    raw: &RawProject,
    sql: Option<&Spanned<String>>,
    file: Option<&Spanned<String>>,
    at: &Location,
    what: &str,
    diags: &mut Diagnostics,
) -> Result<Option<(String, SqlOrigin)>, ()> {
    match (sql, file) {
        (Some(_), Some(_)) => {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("{what} has either `sql` or `file`, not both"),
                )
                .with_help("keep one of them"),
            );
            Err(())
        }
        (Some(sql), None) => Ok(Some((
            sql.get_ref().clone(),
            SqlOrigin::of_toml_string(&raw.file, &raw.text, sql.span().start),
        ))),
        (None, Some(file)) => {
            let path = raw.dir.join(file.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(sql) => Ok(Some((
                    sql,
                    SqlOrigin {
                        file: path,
                        line: 1,
                        column: 1,
                    },
                ))),
                Err(e) => {
                    diags.push(
                        Diagnostic::new(
                            raw.location(file.span().start),
                            format!("cannot read `{}`: {e}", file.get_ref()),
                        )
                        .with_help("the path is relative to the project folder"),
                    );
                    Err(())
                }
            }
        }
        (None, None) => Ok(None),
    }
}

/// Compiles `[tables.NAME]`: its query and its contract.
pub(super) fn compile(b: &mut Builder<'_>, name: &str, entry: &Entry<TableSection>) {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let Some(asset_name) = b.claim(name, AssetKind::Table, &at) else {
        return;
    };
    let table = &entry.value;
    let query = sql_or_file(
        raw,
        table.sql.as_ref(),
        table.file.as_ref(),
        &at,
        "a table",
        &mut b.diags,
    );
    let (sql, origin) = match query {
        Ok(Some(q)) => q,
        Ok(None) => {
            b.diags.push(
                Diagnostic::new(at, "a table needs its query")
                    .with_help("add `sql = \"SELECT ...\"` or `file = \"sql/NAME.sql\"`"),
            );
            return;
        }
        Err(()) => return,
    };
    let contract_text = serde_json::to_string(&table.contract).unwrap_or_default();
    let fingerprint = fingerprint(&["table", sql.trim(), &contract_text]);
    let contract = b.contract(table.contract.as_ref());
    let partitioned = table
        .partitioned
        .as_ref()
        .and_then(|p| super::partitions::compile(b, p));
    let asset = b.add(
        asset_name,
        at,
        Definition::Table(TableDef { sql, origin }),
        fingerprint,
    );
    asset.contract = contract;
    asset.description = table.description.clone();
    asset.partitioned = partitioned;
}
