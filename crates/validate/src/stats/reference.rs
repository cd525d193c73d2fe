//! Reference versions for drift checks: the columns a contract's `psi` and
//! `ks` expectations compare with, read once per build.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use sluice_project::{Contract, ExpectKind, Reference};

use crate::rules::{column, is_text};
use crate::{Error, Result};

/// A reference version of the asset, for drift checks.
#[derive(Debug, Clone)]
pub struct ReferenceTable {
    /// Which reference the contract asked for.
    pub reference: Reference,
    /// The version it resolved to.
    pub version: u64,
    /// The table at that version.
    pub provider: Arc<dyn TableProvider>,
}

/// Sorted non-null values of reference columns, by reference and column.
#[derive(Debug, Default)]
pub(crate) struct References {
    values: BTreeMap<(ReferenceKey, String), (u64, Sample)>,
}

/// A column of a reference version: sorted numbers, or counts per category.
#[derive(Debug)]
pub(super) enum Sample {
    Numbers(Vec<f64>),
    Categories(BTreeMap<String, u64>),
}

type ReferenceKey = Option<u64>;

fn key(r: Reference) -> ReferenceKey {
    match r {
        Reference::Previous => None,
        Reference::Version(v) => Some(v),
    }
}

impl References {
    /// Reads the columns that drift checks need from the references available.
    pub(crate) async fn read(
        ctx: &SessionContext,
        contract: &Contract,
        tables: Vec<ReferenceTable>,
    ) -> Result<Self> {
        let mut out = Self::default();
        for e in &contract.expectations {
            let reference = match e.kind {
                ExpectKind::Psi { reference, .. } | ExpectKind::Ks { reference, .. } => reference,
                _ => continue,
            };
            let Some(column_name) = &e.column else {
                continue;
            };
            let Some(table) = tables.iter().find(|t| t.reference == reference) else {
                continue;
            };
            let k = (key(reference), column_name.clone());
            if out.values.contains_key(&k)
                || table
                    .provider
                    .schema()
                    .field_with_name(column_name)
                    .is_err()
            {
                continue;
            }
            let text = table
                .provider
                .schema()
                .field_with_name(column_name)
                .is_ok_and(|f| is_text(f.data_type()));
            let target = if text {
                DataType::Utf8
            } else {
                DataType::Float64
            };
            let df = ctx
                .read_table(table.provider.clone())
                .and_then(|df| {
                    df.select(vec![
                        datafusion::logical_expr::cast(column(column_name), target).alias("v"),
                    ])
                })
                .map_err(|source| Error::ReadReference {
                    column: column_name.to_string(),
                    source,
                })?;
            let batches = df.collect().await.map_err(|source| Error::ReadReference {
                column: column_name.to_string(),
                source,
            })?;
            let sample = if text {
                let mut counts = BTreeMap::new();
                for b in &batches {
                    count_categories(b.column(0), &mut counts);
                }
                Sample::Categories(counts)
            } else {
                let mut values = Vec::new();
                for b in &batches {
                    values.extend(b.column(0).as_primitive::<Float64Type>().iter().flatten());
                }
                values.retain(|v| !v.is_nan());
                values.sort_by(f64::total_cmp);
                Sample::Numbers(values)
            };
            out.values.insert(k, (table.version, sample));
        }
        Ok(out)
    }

    pub(super) fn get(&self, reference: Reference, column: &str) -> Option<&(u64, Sample)> {
        self.values.get(&(key(reference), column.to_string()))
    }
}

/// Adds the non-null values of a text array to counts per value.
pub(super) fn count_categories(values: &ArrayRef, counts: &mut BTreeMap<String, u64>) {
    for v in values.as_string::<i32>().iter().flatten() {
        match counts.get_mut(v) {
            Some(n) => *n += 1,
            None => {
                counts.insert(v.to_string(), 1);
            }
        }
    }
}

pub(super) fn no_reference(r: Reference) -> String {
    match r {
        Reference::Previous => "no previous version to compare with yet".to_string(),
        Reference::Version(v) => {
            format!("version {v} (the pinned reference) cannot be read or lacks the column")
        }
    }
}
