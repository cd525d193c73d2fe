//! Point-in-time correct training sets: Feast's semantics, streamed.
//!
//! For each spine row (entity keys, a time `T`, labels...) and each feature view,
//! the view's row with the same keys and the greatest event time `<= T` (and
//! `>= T - ttl` when the view has a ttl), ties broken by the greatest created time.
//! It is a left join: spine rows are never dropped (features are null when nothing
//! matches, when a key is null, or when `T` is null), and they keep their order.
//!
//! How: the spine is numbered, then per view both sides are sorted (DataFusion's
//! sort, which spills to disk under its memory limit) by keys and time, and merged
//! in one pass keeping, per spine key, the last feature row at or before `T`. A
//! final sort by the spine's row number restores its order. Memory is bounded by
//! the sorts' budget and one batch per side, not by the size of the inputs.
//!
//! `merge.rs` holds the sorts and the merge of one view, `stream.rs` the
//! numbering of the spine and the stream plumbing (also used by
//! `spine_windows`).

mod merge;
mod stream;
#[cfg(test)]
mod tests;

use std::time::Duration;

use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{DataFrame, SessionContext};

use merge::join_one;
pub(crate) use merge::key_rows;
pub(crate) use stream::{in_spine_order, number_rows, one_shot, tokio_stream};

/// The name of the column that numbers spine rows while the join runs.
pub(crate) const ROW: &str = "__sluice_spine_row";

/// One feature view to join.
#[derive(Debug, Clone)]
pub struct ViewInput {
    /// The view's name (for messages).
    pub view: String,
    /// The view's rows: keys, event time, created time, features.
    pub rows: DataFrame,
    /// The entity's key columns (the spine has columns of the same names).
    pub entity: Vec<String>,
    /// The event-time column.
    pub timestamp: String,
    /// The created-time column, if any.
    pub created: Option<String>,
    /// How old a row may be at `T`; `None` = unlimited.
    pub ttl: Option<Duration>,
    /// The features to take, each with its name in the output.
    pub features: Vec<(String, String)>,
}

/// Joins `views` onto `spine` (whose time column is `time`) with Feast's
/// point-in-time semantics; returns the spine's columns, in its order, followed by
/// each view's features.
pub async fn point_in_time_join(
    ctx: &SessionContext,
    spine: SendableRecordBatchStream,
    time: &str,
    views: &[ViewInput],
) -> Result<SendableRecordBatchStream> {
    let mut stream = number_rows(spine);
    for view in views {
        stream = join_one(ctx, stream, time, view).await?;
    }
    in_spine_order(ctx, stream).await
}
