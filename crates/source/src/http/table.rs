//! An HTTP source as a DataFusion table that fetches when scanned. With a
//! `since_param`, a filter `col >= value` (or `>`) over it is answered
//! `Inexact`: its bound goes to the API as that parameter (RFC 3339 for
//! times), and DataFusion still filters the rows the API sends back. This is
//! how an incremental read asks an API for what changed past its watermark.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use sluice_project::HttpDef;

use crate::raw::RawSink;

/// An HTTP source read at scan time, its payloads stored through a sink.
pub struct HttpTable {
    def: Arc<HttpDef>,
    sink: Arc<dyn RawSink>,
    schema: SchemaRef,
}

impl fmt::Debug for HttpTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTable")
            .field("url", &self.def.config.http.url)
            .field("schema", &self.schema)
            .finish()
    }
}

impl HttpTable {
    /// A table of `schema` (the asset's columns: declared, or those of its
    /// published version) over the source `def`.
    pub fn new(def: Arc<HttpDef>, sink: Arc<dyn RawSink>, schema: SchemaRef) -> Self {
        Self { def, sink, schema }
    }

    /// The bound an API can be asked for: the greatest of the filters'
    /// `col >= value` / `col > value` literals (all of them hold).
    pub fn since_of(&self, filters: &[Expr]) -> Option<String> {
        self.def.config.http.since_param.as_ref()?;
        filters
            .iter()
            .filter_map(lower_bound)
            .max_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal))
            .map(|v| bound_text(&v))
    }
}

/// The literal of `col >= lit` / `col > lit` (or `lit <= col`, `lit < col`).
fn lower_bound(e: &Expr) -> Option<ScalarValue> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    match (left.as_ref(), op, right.as_ref()) {
        (c, Operator::GtEq | Operator::Gt, Expr::Literal(v, _))
        | (Expr::Literal(v, _), Operator::LtEq | Operator::Lt, c)
            if is_column(c) =>
        {
            (!v.is_null()).then(|| v.clone())
        }
        _ => None,
    }
}

/// A column, or a column cast to the literal's type.
fn is_column(e: &Expr) -> bool {
    match e {
        Expr::Column(_) => true,
        Expr::Cast(c) => is_column(&c.expr),
        Expr::TryCast(c) => is_column(&c.expr),
        _ => false,
    }
}

/// A bound as the API reads it: an instant as RFC 3339 in UTC, a date as
/// `YYYY-MM-DD`, other values as their text.
fn bound_text(v: &ScalarValue) -> String {
    use chrono::{DateTime, SecondsFormat, Utc};
    let instant = |nanos: Option<i64>| {
        nanos
            .map(DateTime::<Utc>::from_timestamp_nanos)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    };
    let text = match v {
        ScalarValue::TimestampSecond(x, _) => instant(x.map(|x| x.saturating_mul(1_000_000_000))),
        ScalarValue::TimestampMillisecond(x, _) => instant(x.map(|x| x.saturating_mul(1_000_000))),
        ScalarValue::TimestampMicrosecond(x, _) => instant(x.map(|x| x.saturating_mul(1_000))),
        ScalarValue::TimestampNanosecond(x, _) => instant(*x),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        _ => None,
    };
    text.unwrap_or_else(|| v.to_string())
}

#[async_trait]
impl TableProvider for HttpTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let pushed = self.def.config.http.since_param.is_some();
        Ok(filters
            .iter()
            .map(|f| {
                if pushed && lower_bound(f).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let since = self.since_of(filters);
        let external = |e: crate::Error| DataFusionError::External(Box::new(e));
        let pages = super::fetch(&self.def, since.as_deref(), None, self.sink.as_ref())
            .await
            .map_err(external)?;
        let (_, table) =
            super::parse(&self.def, &pages, Some(self.schema.clone())).map_err(external)?;
        table.scan(state, projection, &[], limit).await
    }
}
