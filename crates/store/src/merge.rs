//! Merging rows into an asset's table by key (Delta's `MERGE`): what an
//! incremental source in `merge` mode, and a keyed append, commit.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::dataframe::DataFrame;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{Expr, LogicalPlan, Operator, binary_expr};
use deltalake_core::delta_datafusion::planner::DeltaPlanner;

use crate::offline::{CommitMeta, OfflineStore, VersionInfo};
use crate::writes::{WriteMode, commit_properties, same_columns, storable, writer_properties};
use crate::{Error, Result};

/// The aliases of the two sides in the merge's expressions.
const SOURCE: &str = "source";
const TARGET: &str = "target";

impl OfflineStore {
    /// Merges `plan`'s rows into `asset`'s table by `keys`, in one commit with
    /// `meta`: a row whose key is in the table replaces it where any column
    /// differs (not at all when `insert_only`), other rows are added. The rows'
    /// keys must be unique. A table that does not exist yet is written whole.
    /// `None` when nothing changed, so no version was made.
    pub(crate) async fn merge(
        &self,
        asset: &str,
        plan: LogicalPlan,
        state: &SessionState,
        meta: &CommitMeta,
        keys: &[String],
        insert_only: bool,
    ) -> Result<Option<(VersionInfo, bool)>> {
        if self.latest(asset).await?.is_none() {
            return self
                .write_where(asset, plan, state, meta, WriteMode::Whole)
                .await
                .map(Some);
        }
        let plan_err = Error::plan(asset);
        let write_err = Error::write(asset);
        let plan = storable(plan).map_err(&plan_err)?;
        let schema = plan.schema().as_arrow().clone();
        let table = self.for_writing(asset).await?;
        if !same_columns(&table, &schema) {
            return Err(Error::ColumnsChanged {
                asset: asset.to_string(),
            });
        }
        let before = table.version();
        let state = SessionStateBuilder::new_from_existing(state.clone())
            .with_query_planner(DeltaPlanner::new())
            .build();
        let side = |alias: &str, name: &str| Expr::Column(Column::new(Some(alias), name));
        let Some(on) = keys
            .iter()
            .map(|k| side(TARGET, k).eq(side(SOURCE, k)))
            .reduce(Expr::and)
        else {
            // No key: every row is new.
            return self
                .write_where(asset, plan, &state, meta, WriteMode::Append)
                .await
                .map(Some);
        };
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let others: Vec<&String> = columns.iter().filter(|c| !keys.contains(c)).collect();
        let source = DataFrame::new(state.clone(), plan);
        let mut merge = table
            .merge(source, on)
            .with_source_alias(SOURCE)
            .with_target_alias(TARGET)
            // The rows are read once: they may stream through a contract's
            // gate, whose counts and quarantine a second read would repeat.
            .with_streaming(true)
            .with_session_state(Arc::new(state))
            .with_writer_properties(writer_properties())
            .with_commit_properties(commit_properties(meta, []).map_err(&write_err)?);
        // A matched row is rewritten only where a value differs, so reading
        // again rows already merged (a lookback) makes no new version.
        let differs = others
            .iter()
            .map(|c| binary_expr(side(TARGET, c), Operator::IsDistinctFrom, side(SOURCE, c)))
            .reduce(Expr::or);
        if let (false, Some(differs)) = (insert_only, differs) {
            merge = merge
                .when_matched_update(|u| {
                    others.iter().fold(u.predicate(differs), |u, c| {
                        u.update(Column::new_unqualified(c.as_str()), side(SOURCE, c))
                    })
                })
                .map_err(&write_err)?;
        }
        merge = merge
            .when_not_matched_insert(|i| {
                columns.iter().fold(i, |i, c| {
                    i.set(Column::new_unqualified(c.as_str()), side(SOURCE, c))
                })
            })
            .map_err(&write_err)?;
        let (table, metrics) = merge.await.map_err(&write_err)?;
        if table.version() == before {
            return Ok(None);
        }
        let written = self.commits(asset, &table, Some(1)).await?;
        let Some(info) = written.into_iter().next() else {
            return Err(Error::NotMaterialized {
                asset: asset.to_string(),
            });
        };
        self.remember(asset, &table, &info);
        let rows = (metrics.num_target_rows_inserted + metrics.num_target_rows_updated) as u64;
        Ok(Some((
            VersionInfo {
                rows: Some(rows),
                ..info
            },
            false,
        )))
    }
}
