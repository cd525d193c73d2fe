//! A version read on every core however few row groups its files have.
//!
//! DataFusion reads a Parquet file in parallel by handing each partition a
//! byte range of it, and a partition reads the row groups whose middle falls
//! in its range: a file of one row group is read by one core, whatever its
//! size. pyarrow writes up to 1Mi rows in a row group, and a source stored as
//! a copy keeps its file's row groups, so a source of a million rows was read
//! on one core, and everything above the scan waited for it.
//!
//! [`SplitScan`] wraps a version's table and hands each partition an equal
//! share of the version's *rows* instead: contiguous row ranges of its files,
//! each read with a Parquet row selection (DataFusion's `ParquetRowSelection`),
//! so two partitions can share a row group and each decodes only its pages.
//! It splits only where it knows every file's exact row count (from the Delta
//! log's statistics) and each share would be worth a partition, and only in a
//! session that lets DataFusion split files (`repartition_file_scans`);
//! otherwise the plan stays DataFusion's.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Constraints, Statistics, stats::Precision};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use deltalake_core::parquet::arrow::arrow_reader::{RowSelection, RowSelector};

/// The fewest rows a partition is given: below this, reading a share takes
/// about as long as opening the file for it (a million rows split in two, ten
/// million in two; a table of a few thousand rows stays whole).
const MIN_ROWS_PER_SHARE: usize = 256 * 1024;

/// A version's table whose scans are split by rows (the module's doc).
#[derive(Debug)]
pub(crate) struct SplitScan {
    inner: Arc<dyn TableProvider>,
}

impl SplitScan {
    pub(crate) fn new(inner: Arc<dyn TableProvider>) -> Self {
        SplitScan { inner }
    }
}

#[async_trait]
impl TableProvider for SplitScan {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.inner.get_column_default(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        // A session that keeps files whole keeps their rows in stored order.
        let options = state.config_options();
        let shares = options.execution.target_partitions;
        if shares < 2 || !options.optimizer.repartition_file_scans {
            return Ok(plan);
        }
        Ok(plan
            .transform_down(|node| {
                Ok(
                    match split_node(node.as_ref(), shares, MIN_ROWS_PER_SHARE) {
                        Some(split) => Transformed::yes(split),
                        None => Transformed::no(node),
                    },
                )
            })?
            .data)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }
}

/// `node` split into `shares` partitions of rows, when it is a scan of Parquet
/// files whose row counts are all known, in no declared order or
/// partitioning, of at least `min_rows` rows a share.
fn split_node(
    node: &dyn ExecutionPlan,
    shares: usize,
    min_rows: usize,
) -> Option<Arc<dyn ExecutionPlan>> {
    let config = node
        .downcast_ref::<DataSourceExec>()?
        .data_source()
        .downcast_ref::<FileScanConfig>()?;
    let parquet = config.file_source.downcast_ref::<ParquetSource>();
    if parquet.is_none()
        || !config.output_ordering.is_empty()
        || config.output_partitioning.is_some()
        || config.preserve_order
    {
        return None;
    }
    let files: Vec<(&PartitionedFile, usize)> = config
        .file_groups
        .iter()
        .flat_map(FileGroup::iter)
        .map(|f| {
            let whole = f.range.is_none() && f.extensions.is_empty();
            match f.statistics.as_ref().map(|s| s.num_rows) {
                Some(Precision::Exact(rows)) if whole => Some((f, rows)),
                _ => None,
            }
        })
        .collect::<Option<_>>()?;
    let groups = share_rows(&files, shares, min_rows)?;
    let split = FileScanConfigBuilder::from(config.clone())
        .with_file_groups(groups)
        .with_output_partitioning(Some(Partitioning::UnknownPartitioning(shares)))
        .build();
    Some(DataSourceExec::from_data_source(split))
}

/// `files` (each with its row count) dealt into `shares` groups of
/// contiguous rows, equal to a row: a file wholly in one share goes whole, a
/// file across shares goes to each as a row selection of its part. `None`
/// when a share would have fewer than `min_rows` rows.
fn share_rows(
    files: &[(&PartitionedFile, usize)],
    shares: usize,
    min_rows: usize,
) -> Option<Vec<FileGroup>> {
    let total: usize = files.iter().map(|(_, rows)| rows).sum();
    if shares < 2 || total == 0 || total < shares.saturating_mul(min_rows) {
        return None;
    }
    let per_share = total.div_ceil(shares);
    let mut groups: Vec<Vec<PartitionedFile>> = vec![vec![]; shares];
    let mut first_row = 0;
    for (file, rows) in files {
        let (start, end) = (first_row, first_row + rows);
        first_row = end;
        if *rows == 0 {
            groups[(start / per_share).min(shares - 1)].push((*file).clone());
            continue;
        }
        for (share, group) in groups.iter_mut().enumerate() {
            let (from, to) = (
                (share * per_share).max(start),
                ((share + 1) * per_share).min(end),
            );
            if from >= to {
                continue;
            }
            if from == start && to == end {
                group.push((*file).clone());
                continue;
            }
            let mut part = (*file).clone();
            // The file's statistics are of its whole: a part must not count
            // them again.
            part.statistics = None;
            let selection = RowSelection::from(vec![
                RowSelector::skip(from - start),
                RowSelector::select(to - from),
                RowSelector::skip(end - to),
            ]);
            part.extensions.insert(ParquetRowSelection::new(selection));
            group.push(part);
        }
    }
    Some(groups.into_iter().map(FileGroup::new).collect())
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::common::ScalarValue;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::ExecutionPlanProperties;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use deltalake_core::parquet::arrow::ArrowWriter;
    use deltalake_core::parquet::file::properties::WriterProperties;
    use futures::TryStreamExt;

    use super::*;
    use crate::offline::{AsOf, CommitMeta, OfflineStore};

    fn file(name: &str) -> PartitionedFile {
        PartitionedFile::new(name, 1000)
    }

    /// A file a share reads: its name, and (first row, rows) of a part of it.
    type Part = (String, Option<(usize, usize)>);

    /// What each share reads, `None` rows for a whole file.
    fn shares(groups: &[FileGroup]) -> Vec<Vec<Part>> {
        groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|f| {
                        let part = f.extensions.get::<ParquetRowSelection>().map(|s| {
                            let selectors: Vec<RowSelector> = s.selection().clone().into();
                            let skipped = selectors
                                .iter()
                                .take_while(|s| s.skip)
                                .map(|s| s.row_count)
                                .sum();
                            (skipped, s.selection().row_count())
                        });
                        (f.object_meta.location.to_string(), part)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn one_file_of_one_row_group_is_read_in_equal_parts() {
        let a = file("a.parquet");
        let groups = share_rows(&[(&a, 1_000_001)], 2, 10).expect("split");
        assert_eq!(
            shares(&groups),
            vec![
                vec![("a.parquet".to_string(), Some((0, 500_001)))],
                vec![("a.parquet".to_string(), Some((500_001, 500_000)))],
            ]
        );
        // A part does not carry the whole file's statistics.
        assert!(
            groups
                .iter()
                .flat_map(FileGroup::iter)
                .all(|f| f.statistics.is_none())
        );
    }

    #[test]
    fn files_go_whole_where_they_fit_a_share() {
        let (a, b, c, empty) = (file("a"), file("b"), file("c"), file("e"));
        let files = [(&a, 30), (&b, 50), (&empty, 0), (&c, 20)];
        let groups = share_rows(&files, 2, 10).expect("split");
        assert_eq!(
            shares(&groups),
            vec![
                vec![("a".to_string(), None), ("b".to_string(), Some((0, 20)))],
                vec![
                    ("b".to_string(), Some((20, 30))),
                    ("e".to_string(), None),
                    ("c".to_string(), None)
                ],
            ]
        );
        let rows = |g: &FileGroup| -> usize {
            g.iter()
                .map(|f| match f.extensions.get::<ParquetRowSelection>() {
                    Some(s) => s.selection().row_count(),
                    None => files
                        .iter()
                        .find(|(x, _)| x.object_meta.location == f.object_meta.location)
                        .map_or(0, |(_, rows)| *rows),
                })
                .sum()
        };
        assert_eq!(groups.iter().map(rows).collect::<Vec<_>>(), vec![50, 50]);
    }

    /// A version of `rows` rows copied from one file of one row group (pages of
    /// 10,000 rows), as a million-row file from pyarrow is stored.
    async fn one_row_group(dir: &std::path::Path, rows: i64) -> OfflineStore {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids: Vec<i64> = (0..rows).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(StringArray::from_iter(
                    ids.iter()
                        .map(|i| (i % 7 != 0).then(|| format!("n{}", i % 1000))),
                )),
            ],
        )
        .expect("batch");
        let file = dir.join("one.parquet");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(usize::MAX))
            .set_data_page_row_count_limit(10_000)
            .set_write_batch_size(10_000)
            .build();
        let mut w = ArrowWriter::try_new(
            File::create(&file).expect("create"),
            schema.clone(),
            Some(props),
        )
        .expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let store = OfflineStore::new(&dir.join("tables"));
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let rows = ctx
            .read_table(Arc::new(
                MemTable::try_new(schema, vec![vec![batch]]).expect("table"),
            ))
            .expect("read")
            .logical_plan()
            .clone();
        store
            .write_copies(
                "events",
                rows,
                &[file],
                &ctx.state(),
                &CommitMeta::default(),
            )
            .await
            .expect("copies");
        store
    }

    /// The scans of `plan`.
    fn scans(plan: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn ExecutionPlan>> {
        let mut found = vec![];
        if plan.downcast_ref::<DataSourceExec>().is_some() {
            found.push(plan.clone());
        }
        for child in plan.children() {
            found.extend(scans(child));
        }
        found
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_of_one_row_group_is_read_by_every_core_each_row_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n: i64 = 600_001;
        let store = one_row_group(dir.path(), n).await;
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let provider = store
            .provider("events", AsOf::Latest, &ctx.state())
            .await
            .expect("open");
        ctx.register_table("t", provider).expect("register");

        // Each core reads its half of the one row group, and between them every row once.
        let plan = ctx
            .sql("SELECT id FROM t")
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical");
        let scan = scans(&plan).pop().expect("a scan");
        assert_eq!(scan.output_partitioning().partition_count(), 2);
        let mut seen = vec![false; n as usize];
        let mut per_core = vec![];
        for partition in 0..2 {
            let batches: Vec<RecordBatch> = scan
                .execute(partition, ctx.task_ctx())
                .expect("execute")
                .try_collect()
                .await
                .expect("read");
            let mut rows = 0;
            for b in &batches {
                let i = b
                    .column_by_name("id")
                    .expect("id")
                    .as_primitive::<Int64Type>();
                for id in i.values() {
                    assert!(
                        !std::mem::replace(&mut seen[*id as usize], true),
                        "row {id} twice"
                    );
                }
                rows += b.num_rows();
            }
            per_core.push(rows);
        }
        assert_eq!(per_core, vec![300_001, 300_000]);
        assert!(seen.iter().all(|s| *s));

        // Whole queries, including one the statistics could answer and a pushed-down filter.
        let one = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx
                    .sql(sql)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run");
                (0..batches[0].num_columns())
                    .map(|c| ScalarValue::try_from_array(batches[0].column(c), 0).expect("value"))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            one("SELECT count(*), sum(id), count(name), count(DISTINCT name) FROM t").await,
            vec![
                ScalarValue::Int64(Some(n)),
                ScalarValue::Int64(Some(n * (n - 1) / 2)),
                ScalarValue::Int64(Some(n - (n + 6) / 7)),
                ScalarValue::Int64(Some(1000)),
            ]
        );
        assert_eq!(
            one("SELECT count(*), min(id) FROM t WHERE id >= 450000").await,
            vec![
                ScalarValue::Int64(Some(n - 450_000)),
                ScalarValue::Int64(Some(450_000)),
            ]
        );
        assert_eq!(
            one("SELECT count(*) FROM (SELECT id FROM t LIMIT 7)").await,
            vec![ScalarValue::Int64(Some(7))]
        );
    }

    #[test]
    fn a_table_too_small_to_share_stays_whole() {
        let a = file("a");
        assert!(share_rows(&[(&a, 19)], 2, 10).is_none());
        assert!(share_rows(&[(&a, 20)], 2, 10).is_some());
        assert!(share_rows(&[(&a, 0)], 2, 0).is_none());
        assert!(share_rows(&[(&a, 20)], 1, 10).is_none());
    }
}
