//! `[sources.NAME] push = { ... }`: a source whose rows applications push to
//! `sluice serve`. Its columns are declared, since nothing is read to infer
//! them; pushed rows are checked against them and the contract.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use sluice_core::{AssetKind, parse_type};

use super::{Builder, Definition, SourceDef, fingerprint};
use crate::diag::Diagnostic;
use crate::raw::PushSourceSection;

/// A compiled push source.
#[derive(Debug, Clone)]
pub struct PushDef {
    /// The rows' columns and types, as declared.
    pub schema: SchemaRef,
    /// The columns that identify a row (empty: every row pushed is added).
    pub key: Vec<String>,
    /// How long the first push of a batch waits for others.
    pub window: Duration,
}

/// Compiles a push source: its columns, key and contract.
pub(super) fn compile(b: &mut Builder<'_>, name: &str, offset: usize, section: PushSourceSection) {
    let raw = b.raw;
    let at = raw.location(offset);
    let Some(asset_name) = b.claim(name, AssetKind::Source, &at) else {
        return;
    };
    let push_at = raw.location(section.push.span().start);
    let timezone = section.timezone.clone().unwrap_or_else(|| "UTC".into());
    if section.columns.is_empty() {
        b.diags.push(
            Diagnostic::new(at.clone(), format!("push source `{name}` declares no `columns`"))
                .with_help("declare the columns pushed rows have: `columns = { id = \"int64\", name = \"string\" }`"),
        );
        return;
    }
    let mut fields = Vec::new();
    for (column, word) in &section.columns {
        match parse_type(word, &timezone) {
            Some(ty) => fields.push(Field::new(column, ty, true)),
            None => b.diags.push(
                Diagnostic::new(at.clone(), format!("column `{column}`: unknown type `{word}`"))
                    .with_help(
                        "use one of string, bool, int8, int16, int32, int64, float32, float64, date, timestamp, decimal(P,S)",
                    ),
            ),
        }
    }
    let options = section.push.get_ref();
    let key = options.key.clone().unwrap_or_default();
    for k in &key {
        if !section.columns.contains_key(k) {
            let known: Vec<&str> = section.columns.keys().map(String::as_str).collect();
            b.diags.push(
                Diagnostic::new(
                    push_at.clone(),
                    format!("key column `{k}` is not among `columns`"),
                )
                .with_help(format!("the columns are: {}", known.join(", "))),
            );
        }
    }
    let def = PushDef {
        schema: Arc::new(Schema::new(fields)),
        key,
        window: options.window.as_ref().map_or(Duration::ZERO, |w| w.value),
    };
    // Pushed rows cannot be read again: only the columns and the key make
    // another table. The contract judges each push as it comes.
    let fingerprint = fingerprint(&[
        "push",
        &serde_json::to_string(&section.columns).unwrap_or_default(),
        &serde_json::to_string(&def.key).unwrap_or_default(),
        &timezone,
    ]);
    let contract = b.contract(section.contract.as_ref());
    let asset = b.add(
        asset_name,
        at,
        Definition::Source(Box::new(SourceDef::Push(def))),
        fingerprint,
    );
    asset.contract = contract;
    asset.description = section.description;
}
