//! Incremental sources (`incremental = { column, key, mode, lookback }`): each
//! run reads only the rows past the watermark and appends or merges them.
//!
//! A load is bounded on both sides before any row is written: the greatest
//! value of the column among the rows past the old watermark is read first
//! (`W`), then the rows in `(old, W]` (from `old - lookback`, with a key) are
//! written, and `W` goes into the same Delta commit as those rows. A crash
//! before the commit leaves the old watermark with the old rows; after it, the
//! new with the new: a load is never skipped nor applied twice. Rows that
//! arrive later with a value at or below `W` are read by a later run when
//! they are within its lookback. The filters sit over the connector's table,
//! and connectors that can (databases, HTTP cursors) evaluate them at the source.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableProvider, provider_as_source};
use datafusion::functions_aggregate::expr_fn::{count, max};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, SortExpr, col, ident, lit,
};
use datafusion::prelude::{Expr, SessionContext};
use sluice_core::{AssetStatus, ErrorClass};
use sluice_project::{Asset, Diagnostic, IncrementalMode, Project, RuleKind, Severity};
use sluice_store::WriteMode;

use super::{Job, Kind, Published, delta};
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure};
use crate::pins::Pins;

/// A source kind read incrementally: everything but what is read, and how it
/// is written, is the connector's kind's.
pub(crate) struct Incremental<'a> {
    /// The connector's kind.
    pub inner: Box<dyn Kind + 'a>,
    /// The asset.
    pub asset: &'a Asset,
    /// How it reads.
    pub inc: &'a sluice_project::Incremental,
}

/// The name of the row number column of the deduplication by key.
const RANK: &str = "__sluice_rank";

#[async_trait]
impl Kind for Incremental<'_> {
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>> {
        self.inner.published(ws).await
    }

    /// The definition only: what the source holds now is found by reading
    /// past the watermark, at every run.
    async fn fingerprint(
        &self,
        _ws: &Workspace,
        asset: &Asset,
        _pins: &Pins,
    ) -> Result<String, Failure> {
        Ok(asset.fingerprint.clone())
    }

    fn outdated(&self, _published: &Published) -> Option<String> {
        Some("an incremental source reads what is past its watermark at every run".into())
    }

    fn changed(&self) -> &'static str {
        "its definition changed, so it is read whole again"
    }

    async fn build(&self, job: &Job<'_>) -> AssetOutcome {
        match self.load(job).await {
            Ok(outcome) => outcome,
            Err(e) => job.failed(e),
        }
    }

    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        self.inner.keep(job).await
    }

    async fn check(
        &self,
        ctx: &SessionContext,
        project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic> {
        let schema = self.inner.check(ctx, project).await?;
        if let Some(schema) = &schema {
            self.columns(schema)
                .map_err(|e| Diagnostic::new(self.asset.location.clone(), e.message))?;
        }
        Ok(schema)
    }

    fn schema_unknown_until_built(&self) -> bool {
        self.inner.schema_unknown_until_built()
    }

    async fn rows(&self, job: &Job<'_>) -> Result<Option<Arc<dyn TableProvider>>, Failure> {
        self.inner.rows(job).await
    }
}

impl Incremental<'_> {
    /// One incremental load (or a full one: the first, after the definition
    /// changed, or asked for with `--full-refresh`).
    async fn load(&self, job: &Job<'_>) -> Result<AssetOutcome, Failure> {
        let name = self.asset.name.as_str();
        let column = self.inc.column.as_str();
        let Some(provider) = self.inner.rows(job).await? else {
            return Err(format!("source `{name}` cannot be read incrementally").into());
        };
        let ty = self.columns(&provider.schema())?;
        let ctx = sluice_transform::session();
        let previous = match job.latest() {
            Some(l) if !job.ws.full_refresh.contains(name) => l
                .meta
                .as_ref()
                .filter(|m| m.fingerprint == job.fingerprint)
                .and_then(|m| m.watermark.as_deref())
                .map(|w| parse_watermark(w, &ty))
                .transpose()?,
            _ => None,
        };
        let scan = LogicalPlanBuilder::scan(name, provider_as_source(provider), None)
            .map_err(|e| Failure::of(&e))?;
        let past = match &previous {
            Some(w) => scan
                .filter(self.lower_bound(w.clone())?)
                .map_err(|e| Failure::of(&e))?,
            None => scan,
        };
        // The upper bound, the rows without a key and those without a value
        // of the column, in one pass.
        let (upper, keyless, unstamped) = self
            .bounds(&ctx, past.clone().build().map_err(|e| Failure::of(&e))?)
            .await?;
        if unstamped > 0 {
            // Only a whole read sees them (a bound leaves NULLs out): the
            // first load refuses rather than leave them out of every load.
            return Err(Failure {
                message: format!(
                    "{unstamped} rows of source `{name}` have no value in `{column}`, the column \
                     its incremental loads read by: no load would ever read them\n  help: give \
                     them a value in the source's query (`COALESCE({column}, ...)`), or leave \
                     them out (`WHERE {column} IS NOT NULL`)"
                ),
                class: ErrorClass::Permanent,
            });
        }
        if keyless > 0 && !self.asset_drops_keyless() {
            return Err(Failure {
                message: format!(
                    "{keyless} rows of source `{name}` past its watermark have no value in key column(s) {}: \
                     rows are merged by their key\n  help: leave them out in the source's query, \
                     or add `required = true` to the key's `[sources.{name}.contract.columns.*]` \
                     with `severity = \"quarantine\"`",
                    self.key_list()
                ),
                class: ErrorClass::Permanent,
            });
        }
        let Some(upper) = upper else {
            if previous.is_some() {
                // Nothing past the watermark: the published version stands.
                tracing::info!("source `{name}`: nothing past its watermark");
                return Ok(job.up_to_date());
            }
            // Read whole and empty: publish the empty table.
            let plan = past.build().map_err(|e| Failure::of(&e))?;
            return Ok(delta::write_with(job, &ctx, plan, WriteMode::Whole, None).await);
        };
        let watermark = match &previous {
            Some(w) if w > &upper => w.clone(),
            _ => upper.clone(),
        };
        let plan = past
            .filter(ident(column).lt_eq(lit(upper)))
            .and_then(|b| b.build())
            .and_then(|p| self.one_row_per_key(p))
            .map_err(|e| Failure::of(&e))?;
        let mode = match (&previous, self.inc.mode, self.inc.key.is_empty()) {
            (None, ..) => WriteMode::Whole,
            (Some(_), IncrementalMode::Append, true) => WriteMode::Append,
            (Some(_), mode, false) => WriteMode::Merge {
                keys: self.inc.key.clone(),
                insert_only: mode == IncrementalMode::Append,
            },
            (Some(_), IncrementalMode::Merge, true) => WriteMode::Append,
        };
        let text = render_watermark(&watermark)?;
        tracing::info!(
            "source `{name}`: {} up to {column} = {text}",
            match &previous {
                Some(w) => format!("reading past {}", render_watermark(w)?),
                None => "reading whole".to_string(),
            }
        );
        let mut outcome = delta::write_with(job, &ctx, plan, mode, Some(text)).await;
        if outcome.status == AssetStatus::Built && outcome.version == job.previous() {
            outcome.status = AssetStatus::UpToDate;
        }
        Ok(outcome)
    }

    /// The type of the incremental column, checked with the key's columns
    /// against the source's schema.
    fn columns(&self, schema: &SchemaRef) -> Result<DataType, Failure> {
        let name = &self.asset.name;
        let known = || {
            schema
                .fields()
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let column = &self.inc.column;
        let Ok(field) = schema.field_with_name(column) else {
            return Err(format!(
                "source `{name}` has no column `{column}` for `incremental`\n  help: its columns are {}",
                known()
            )
            .into());
        };
        for k in &self.inc.key {
            if schema.field_with_name(k).is_err() {
                return Err(format!(
                    "source `{name}` has no key column `{k}` for `incremental`\n  help: its columns are {}",
                    known()
                )
                .into());
            }
        }
        let ty = field.data_type().clone();
        let orderable = ty.is_integer()
            || ty.is_floating()
            || matches!(
                ty,
                DataType::Timestamp(..)
                    | DataType::Date32
                    | DataType::Date64
                    | DataType::Decimal128(..)
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
            );
        if !orderable {
            return Err(format!(
                "source `{name}`: the incremental column `{column}` is {ty}, which has no order\n  \
                 help: use a column that grows with new rows: a time, a date or a number"
            )
            .into());
        }
        let times = matches!(
            ty,
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
        );
        if self.inc.lookback.is_some() && !times {
            return Err(format!(
                "source `{name}`: `lookback` needs a time or date column, and `{column}` is {ty}\n  \
                 help: remove `lookback`, or make `{column}` a time"
            )
            .into());
        }
        Ok(ty)
    }

    /// The rows a load reads from the old watermark `w`: past it; with a key,
    /// from it (rows at `w` that came after the last read are merged, not
    /// repeated) or from `w - lookback`.
    fn lower_bound(&self, w: ScalarValue) -> Result<Expr, Failure> {
        let c = ident(&self.inc.column);
        if self.inc.key.is_empty() {
            return Ok(c.gt(lit(w)));
        }
        let from = match self.inc.lookback {
            Some(back) => minus(w, back)?,
            None => w,
        };
        Ok(c.gt_eq(lit(from)))
    }

    /// The greatest value of the column among `plan`'s rows (`None`: no
    /// row), how many rows have a null key column, and how many a null
    /// incremental column.
    async fn bounds(
        &self,
        ctx: &SessionContext,
        plan: LogicalPlan,
    ) -> Result<(Option<ScalarValue>, u64, u64), Failure> {
        let keyless = self
            .inc
            .key
            .iter()
            .map(|k| ident(k).is_null())
            .reduce(Expr::or);
        let mut aggregates = vec![
            max(ident(&self.inc.column)).alias("upper"),
            count(lit(1))
                .filter(ident(&self.inc.column).is_null())
                .build()
                .map_err(|e| Failure::of(&e))?
                .alias("unstamped"),
        ];
        if let Some(keyless) = keyless {
            aggregates.push(
                count(lit(1))
                    .filter(keyless)
                    .build()
                    .map_err(|e| Failure::of(&e))?
                    .alias("keyless"),
            );
        }
        let plan = LogicalPlanBuilder::from(plan)
            .aggregate(Vec::<Expr>::new(), aggregates)
            .and_then(|b| b.build())
            .map_err(|e| Failure::of(&e))?;
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| Failure::of(&e))?
            .collect()
            .await
            .map_err(|e| Failure::of(&e))?;
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok((None, 0, 0));
        };
        let upper = ScalarValue::try_from_array(batch.column(0), 0).map_err(|e| Failure::of(&e))?;
        let count_at = |i: usize| {
            if i >= batch.num_columns() {
                return 0;
            }
            match ScalarValue::try_from_array(batch.column(i), 0) {
                Ok(ScalarValue::Int64(Some(n))) => n.max(0) as u64,
                _ => 0,
            }
        };
        Ok((
            (!upper.is_null()).then_some(upper),
            count_at(2),
            count_at(1),
        ))
    }

    /// With a key, one row per key: the one with the greatest incremental
    /// value (a row changed twice since the last load is merged once). Rows
    /// without a key pass, for the contract to quarantine.
    fn one_row_per_key(&self, plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
        if self.inc.key.is_empty() {
            return Ok(plan);
        }
        let columns: Vec<Expr> = plan
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        let rank = row_number()
            .partition_by(self.inc.key.iter().map(ident).collect())
            .order_by(vec![SortExpr::new(ident(&self.inc.column), false, false)])
            .build()?
            .alias(RANK);
        let keyless = self
            .inc
            .key
            .iter()
            .map(|k| ident(k).is_null())
            .reduce(Expr::or)
            .unwrap_or(lit(false));
        LogicalPlanBuilder::from(plan)
            .window(vec![rank])?
            .filter(col(RANK).eq(lit(1u64)).or(keyless))?
            .project(columns)?
            .build()
    }

    /// Whether the contract takes rows without a key out (quarantine or fail)
    /// before they reach the table.
    fn asset_drops_keyless(&self) -> bool {
        self.inc.key.iter().all(|k| {
            self.asset.contract.rules.iter().any(|r| {
                r.column.as_deref() == Some(k.as_str())
                    && matches!(r.kind, RuleKind::Required)
                    && r.severity != Severity::Warn
            })
        })
    }

    fn key_list(&self) -> String {
        self.inc
            .key
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `w` moved back by `back` (a time or date watermark).
fn minus(w: ScalarValue, back: std::time::Duration) -> Result<ScalarValue, Failure> {
    let micros = i64::try_from(back.as_micros()).unwrap_or(i64::MAX);
    let days = i32::try_from(back.as_secs().div_ceil(86_400)).unwrap_or(i32::MAX);
    let moved = match w {
        ScalarValue::TimestampSecond(Some(v), tz) => {
            ScalarValue::TimestampSecond(Some(v.saturating_sub(micros / 1_000_000)), tz)
        }
        ScalarValue::TimestampMillisecond(Some(v), tz) => {
            ScalarValue::TimestampMillisecond(Some(v.saturating_sub(micros / 1_000)), tz)
        }
        ScalarValue::TimestampMicrosecond(Some(v), tz) => {
            ScalarValue::TimestampMicrosecond(Some(v.saturating_sub(micros)), tz)
        }
        ScalarValue::TimestampNanosecond(Some(v), tz) => ScalarValue::TimestampNanosecond(
            Some(v.saturating_sub(micros.saturating_mul(1_000))),
            tz,
        ),
        ScalarValue::Date32(Some(d)) => ScalarValue::Date32(Some(d.saturating_sub(days))),
        ScalarValue::Date64(Some(ms)) => {
            ScalarValue::Date64(Some(ms.saturating_sub(i64::from(days) * 86_400_000)))
        }
        other => {
            return Err(format!(
                "`lookback` cannot move a watermark of type {}",
                other.data_type()
            )
            .into());
        }
    };
    Ok(moved)
}

/// The watermark as stored in the commit: the value as text (Arrow's, which
/// keeps a time's full precision, so reading it back gives the same value).
fn render_watermark(w: &ScalarValue) -> Result<String, Failure> {
    w.cast_to(&DataType::Utf8)
        .map(|t| match t {
            ScalarValue::Utf8(Some(s)) => s,
            other => other.to_string(),
        })
        .map_err(|e| Failure::of(&e))
}

/// A stored watermark as a value of the column's type `ty`.
fn parse_watermark(text: &str, ty: &DataType) -> Result<ScalarValue, Failure> {
    ScalarValue::Utf8(Some(text.to_string()))
        .cast_to(ty)
        .map_err(|e| Failure {
            message: format!(
                "the stored watermark `{text}` is not a {ty}: {e}\n  help: the column's type changed; \
                 run `sluice run --full-refresh` on the source"
            ),
            class: ErrorClass::Permanent,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_survive_the_trip_through_text() {
        let cases = [
            ScalarValue::TimestampMicrosecond(Some(1_700_000_000_123_456), Some("UTC".into())),
            ScalarValue::TimestampMicrosecond(Some(1_700_000_000_000_001), None),
            ScalarValue::TimestampNanosecond(Some(1_700_000_000_123_456_789), Some("UTC".into())),
            ScalarValue::Date32(Some(19_000)),
            ScalarValue::Int64(Some(-42)),
            ScalarValue::Float64(Some(0.1)),
            ScalarValue::Utf8(Some("2024-01-01 00:00:00".into())),
        ];
        for w in cases {
            let text = render_watermark(&w).expect("render");
            let back = parse_watermark(&text, &w.data_type()).expect("parse");
            assert_eq!(back, w, "through {text}");
        }
    }

    #[test]
    fn lookback_moves_times_and_dates_back() {
        let hour = std::time::Duration::from_secs(3600);
        let w = ScalarValue::TimestampMicrosecond(Some(10_000_000_000), Some("UTC".into()));
        assert_eq!(
            minus(w, hour).expect("moved"),
            ScalarValue::TimestampMicrosecond(
                Some(10_000_000_000 - 3_600_000_000),
                Some("UTC".into())
            )
        );
        assert_eq!(
            minus(ScalarValue::Date32(Some(100)), hour).expect("moved"),
            ScalarValue::Date32(Some(99))
        );
        assert!(minus(ScalarValue::Int64(Some(1)), hour).is_err());
    }
}
