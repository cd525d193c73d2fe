//! Pages of an asset's rows and bounded read-only SQL.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{SessionContext, col};
use futures::StreamExt;
use sluice_store::AsOf;

use super::{ColumnInfo, ReadBounds, ReadError, columns, unknown_asset};
use crate::{Error, Workspace};

/// Whether rows can be ordered by a column of this type: nested types are
/// left out of a page's order (they cannot be compared).
fn orderable(t: &DataType) -> bool {
    !t.is_nested()
}

/// Rows `offset..offset + limit` of a table (an asset or `ASSET__quarantine`),
/// latest or as of a version or time (`as_of`, as `--as-of` reads it).
///
/// Pages are stable: the rows are ordered by every (comparable) column, so the
/// same request gives the same rows, and consecutive pages hold every row once.
pub async fn rows_page(
    ws: &Workspace,
    name: &str,
    as_of: Option<&str>,
    offset: usize,
    limit: usize,
    bounds: ReadBounds,
) -> Result<Vec<RecordBatch>, ReadError> {
    read_rows(ws, name, as_of, offset, limit, bounds, Order::EveryColumn).await
}

/// The first `limit` rows of a table's newest version as stored: what a
/// glance at a table shows (the dashboard's), without reading the whole table
/// to order it. The same version gives the same rows: its files are read one
/// after another, in the order its log lists them, and reading stops at
/// `limit` rows.
pub async fn rows_head(
    ws: &Workspace,
    name: &str,
    limit: usize,
    bounds: ReadBounds,
) -> Result<Vec<RecordBatch>, ReadError> {
    read_rows(ws, name, None, 0, limit, bounds, Order::Stored).await
}

/// How a read of rows orders them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// By every comparable column: stable pages, at the cost of a sort.
    EveryColumn,
    /// As stored, read in one stream.
    Stored,
}

async fn read_rows(
    ws: &Workspace,
    name: &str,
    as_of: Option<&str>,
    offset: usize,
    limit: usize,
    bounds: ReadBounds,
    order: Order,
) -> Result<Vec<RecordBatch>, ReadError> {
    if !ws.tables().iter().any(|t| t == name) {
        return Err(unknown_asset(ws, name));
    }
    if limit > bounds.rows {
        return Err(ReadError::LimitTooHigh {
            limit,
            max: bounds.rows,
        });
    }
    let as_of = as_of.map_or(Ok(AsOf::Latest), crate::parse_as_of)?;
    let ctx = sluice_transform::session_with_memory_limit(bounds.memory);
    if order == Order::Stored {
        // One partition: the files in order, stopping at the limit.
        ctx.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .execution
            .target_partitions = 1;
    }
    let provider = ws.table_provider(name, as_of, &ctx.state()).await?;
    let sort: Vec<_> = match order {
        Order::Stored => Vec::new(),
        Order::EveryColumn => provider
            .schema()
            .fields()
            .iter()
            .filter(|f| orderable(f.data_type()))
            .map(|f| col(datafusion::common::Column::from_name(f.name())).sort(true, true))
            .collect(),
    };
    let work = async {
        let df = ctx.read_table(provider)?;
        let df = if sort.is_empty() { df } else { df.sort(sort)? };
        df.limit(offset, Some(limit))?.collect().await
    };
    tokio::time::timeout(bounds.time, work)
        .await
        .map_err(|_| ReadError::Timeout { limit: bounds.time })?
        .map_err(|e| ReadError::ReadRows {
            table: name.to_string(),
            message: e.strip_backtrace(),
        })
}

/// The result of a bounded query.
#[derive(Debug, Clone)]
pub struct QueryPage {
    /// The result's columns.
    pub columns: Vec<ColumnInfo>,
    /// At most the limit's rows.
    pub batches: Vec<RecordBatch>,
    /// Rows in `batches`.
    pub rows: usize,
    /// Whether the result had more rows than returned.
    pub truncated: bool,
}

/// Runs one read-only query (see [`crate::query_frame`]) and returns at most
/// `limit` rows (at most `bounds.rows`); the rest is never computed.
pub async fn query_page(
    ws: &Workspace,
    sql: &str,
    as_of: Option<&str>,
    limit: Option<usize>,
    bounds: ReadBounds,
) -> Result<QueryPage, ReadError> {
    let limit = limit.unwrap_or(bounds.rows).min(bounds.rows);
    let as_of = as_of.map_or(Ok(AsOf::Latest), crate::parse_as_of)?;
    let work = async {
        let ctx: SessionContext = sluice_transform::session_with_memory_limit(bounds.memory);
        let df = crate::query_frame(ws, sql, as_of, ctx).await?;
        let columns = columns(df.schema().as_arrow());
        let query = |e: datafusion::error::DataFusionError| Error::engine("query", e);
        let mut stream = df.execute_stream().await.map_err(query)?;
        let mut page = QueryPage {
            columns,
            batches: Vec::new(),
            rows: 0,
            truncated: false,
        };
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(query)?;
            let take = batch.num_rows().min(limit - page.rows);
            page.truncated = take < batch.num_rows();
            if take > 0 {
                page.batches.push(batch.slice(0, take));
                page.rows += take;
            }
            if page.truncated {
                break;
            }
        }
        Ok::<_, Error>(page)
    };
    Ok(tokio::time::timeout(bounds.time, work)
        .await
        .map_err(|_| ReadError::Timeout { limit: bounds.time })??)
}
