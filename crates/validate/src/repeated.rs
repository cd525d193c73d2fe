//! The values that break `unique`: those that occur more than once.
//!
//! A generic `GROUP BY value HAVING count(*) > 1` keeps every distinct value of
//! the column in a hash table, which at ten million distinct strings costs more
//! than the rest of the validation together. Here the first pass keeps only a
//! 64-bit hash per value, in 256 buckets by the hash's top byte; the buckets are
//! sorted on every core, and a hash met twice marks a candidate. The rows whose
//! hash is a candidate are then picked, and only those values are counted
//! exactly (a hash collision between two different values is then told apart).
//! The first pass keeps the columns it hashed, with their hashes, while they
//! fit in [`KEEP_BUDGET`], and the candidates are picked from them; past it,
//! a second pass reads the input again. Both passes read each partition of the
//! input on its own task, so a file split into byte ranges is read on every
//! core, and only the value's column is read: the projection reaches the file
//! reader.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::{concat, filter};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::runtime::SpawnedTask;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, LogicalPlan, col, lit};
use datafusion::physical_plan::{
    ExecutionPlan, SendableRecordBatchStream, execute_stream_partitioned,
};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

/// Buckets of the first pass, by a hash's top byte.
const BUCKETS: usize = 256;

/// Per hashed column, [`BUCKETS`] buckets of 64-bit value hashes.
type Buckets = Vec<Vec<Vec<u64>>>;

/// How many bytes of hashed columns (and their hashes) the first pass keeps
/// to pick the candidates from, instead of reading the input a second time.
const KEEP_BUDGET: usize = 512 << 20;

/// A batch's hashed columns, each with the hash of every row.
type KeptBatch = Vec<(ArrayRef, Vec<u64>)>;

/// Per partition, the batches the first pass kept; `None` once they passed
/// [`KEEP_BUDGET`].
type Kept = Option<Vec<Vec<KeptBatch>>>;

/// The non-null values of each of `values` (over `input`) that occur more than
/// once, in the order of `values`.
pub(crate) async fn repeated_values(
    ctx: &SessionContext,
    input: &LogicalPlan,
    values: &[Expr],
) -> Result<Vec<ArrayRef>> {
    repeated_within(ctx, input, values, KEEP_BUDGET).await
}

/// [`repeated_values`], keeping at most `budget` bytes from the first pass.
async fn repeated_within(
    ctx: &SessionContext,
    input: &LogicalPlan,
    values: &[Expr],
    budget: usize,
) -> Result<Vec<ArrayRef>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let selected = DataFrame::new(ctx.state(), input.clone()).select(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| v.clone().alias(format!("v{i}")))
            .collect::<Vec<_>>(),
    )?;
    let types: Vec<DataType> = selected
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let hashable: Vec<bool> = types.iter().map(hashable).collect();
    let hashed: Vec<usize> = (0..values.len()).filter(|i| hashable[*i]).collect();
    let mut out: Vec<Option<ArrayRef>> = vec![None; values.len()];
    if !hashed.is_empty() {
        let plan = selected.clone().create_physical_plan().await?;
        let (hashes, kept) = first_pass(plan, ctx, &hashed, budget).await?;
        let candidates: Vec<Candidates> =
            SpawnedTask::spawn_blocking(move || repeated_hashes(hashes))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .into_iter()
                .map(Candidates::new)
                .collect();
        let candidates = Arc::new(candidates);
        let picked = match kept {
            Some(kept) => {
                let candidates = candidates.clone();
                SpawnedTask::spawn_blocking(move || pick_kept(kept, &candidates))
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))??
            }
            None => {
                let plan = selected.clone().create_physical_plan().await?;
                second_pass(plan, ctx, &hashed, candidates).await?
            }
        };
        for (k, arrays) in picked.into_iter().enumerate() {
            let i = hashed[k];
            out[i] = Some(exact_repeats(ctx, &types[i], arrays).await?);
        }
    }
    // What cannot be hashed here (lists, structs, ...) is grouped by the engine.
    for i in (0..values.len()).filter(|i| !hashable[*i]) {
        out[i] = Some(grouped_repeats(ctx, input, &values[i]).await?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Whether `create_hashes` hashes values of type `t` by their value.
fn hashable(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, v) => hashable(v),
        t => {
            t.is_primitive()
                || matches!(
                    t,
                    DataType::Boolean
                        | DataType::Utf8
                        | DataType::LargeUtf8
                        | DataType::Utf8View
                        | DataType::Binary
                        | DataType::LargeBinary
                        | DataType::BinaryView
                        | DataType::FixedSizeBinary(_)
                )
        }
    }
}

/// The hash of every non-null value of the columns `hashed`, per column, in
/// [`BUCKETS`] buckets, each partition of `plan` read on its own task; and the
/// columns with their hashes, kept while they take less than `budget` bytes.
async fn first_pass(
    plan: Arc<dyn ExecutionPlan>,
    ctx: &SessionContext,
    hashed: &[usize],
    budget: usize,
) -> Result<(Buckets, Kept)> {
    let used = Arc::new(AtomicUsize::new(0));
    let over = Arc::new(AtomicBool::new(false));
    let parts = per_partition(plan, ctx, |mut stream| {
        let hashed = hashed.to_vec();
        let (used, over) = (used.clone(), over.clone());
        async move {
            let mut buckets = vec![vec![Vec::<u64>::new(); BUCKETS]; hashed.len()];
            let mut kept: Option<Vec<KeptBatch>> = Some(Vec::new());
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let mut columns = Vec::with_capacity(hashed.len());
                for (k, i) in hashed.iter().enumerate() {
                    let array = batch.column(*i);
                    let mut hashes = Vec::new();
                    hash(array, &mut hashes)?;
                    for (row, h) in hashes.iter().enumerate() {
                        if array.is_valid(row) {
                            buckets[k][(h >> 56) as usize].push(*h);
                        }
                    }
                    columns.push((array.clone(), hashes));
                }
                if let Some(batches) = &mut kept {
                    let size: usize = columns
                        .iter()
                        .map(|(a, h)| a.get_array_memory_size() + h.len() * 8)
                        .sum();
                    if used.fetch_add(size, Ordering::Relaxed) + size > budget {
                        over.store(true, Ordering::Relaxed);
                    }
                    if over.load(Ordering::Relaxed) {
                        kept = None;
                    } else {
                        batches.push(columns);
                    }
                }
            }
            Ok((buckets, kept))
        }
    })
    .await?;
    let mut merged = vec![vec![Vec::<u64>::new(); BUCKETS]; hashed.len()];
    let mut kept = Some(Vec::with_capacity(parts.len()));
    for (part, part_kept) in parts {
        for (m, p) in merged.iter_mut().zip(part) {
            for (a, b) in m.iter_mut().zip(p) {
                if a.is_empty() {
                    *a = b;
                } else {
                    a.extend_from_slice(&b);
                }
            }
        }
        kept = kept.zip(part_kept).map(|(mut all, part)| {
            all.push(part);
            all
        });
    }
    if over.load(Ordering::Relaxed) {
        kept = None;
    }
    Ok((merged, kept))
}

/// `work` over each partition of `plan`, each on its own task; the results in
/// partition order.
async fn per_partition<T, F, Fut>(
    plan: Arc<dyn ExecutionPlan>,
    ctx: &SessionContext,
    work: F,
) -> Result<Vec<T>>
where
    F: Fn(SendableRecordBatchStream) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<SpawnedTask<Result<T>>> = execute_stream_partitioned(plan, ctx.task_ctx())?
        .into_iter()
        .map(|stream| SpawnedTask::spawn(work(stream)))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(
            task.join()
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??,
        );
    }
    Ok(out)
}

fn hash<'a>(array: &ArrayRef, buffer: &'a mut Vec<u64>) -> Result<&'a [u64]> {
    buffer.clear();
    buffer.resize(array.len(), 0);
    let hashes = create_hashes([array], &RandomState::with_seed(0), buffer)?;
    Ok(&*hashes)
}

/// Per column, the hashes that occur more than once: each bucket sorted, on
/// every core.
fn repeated_hashes(hashes: Buckets) -> Vec<HashSet<u64>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    hashes
        .into_iter()
        .map(|mut buckets| {
            let chunk = buckets.len().div_ceil(threads);
            std::thread::scope(|s| {
                let found: Vec<_> = buckets
                    .chunks_mut(chunk)
                    .map(|part| {
                        s.spawn(move || {
                            let mut found = Vec::new();
                            for bucket in part {
                                bucket.sort_unstable();
                                for pair in bucket.windows(2) {
                                    if pair[0] == pair[1] && found.last() != Some(&pair[0]) {
                                        found.push(pair[0]);
                                    }
                                }
                                *bucket = Vec::new();
                            }
                            found
                        })
                    })
                    .collect();
                found
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        })
        .collect()
}

/// A column's candidate hashes, with a bitmap of their low bits that turns
/// away almost every other hash without a lookup in the set.
struct Candidates {
    set: HashSet<u64>,
    bits: Vec<u64>,
}

/// Bits in a [`Candidates`] bitmap (128 KiB: it stays in a core's cache).
const CANDIDATE_BITS: usize = 1 << 20;

impl Candidates {
    fn new(set: HashSet<u64>) -> Self {
        let mut bits = vec![
            0u64;
            if set.is_empty() {
                0
            } else {
                CANDIDATE_BITS / 64
            }
        ];
        for h in &set {
            let b = *h as usize & (CANDIDATE_BITS - 1);
            bits[b / 64] |= 1 << (b % 64);
        }
        Candidates { set, bits }
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn contains(&self, h: u64) -> bool {
        let b = h as usize & (CANDIDATE_BITS - 1);
        !self.set.is_empty() && self.bits[b / 64] & (1 << (b % 64)) != 0 && self.set.contains(&h)
    }
}

/// The non-null values of `array` whose hash (in `hashes`) is a candidate.
fn pick(array: &ArrayRef, hashes: &[u64], candidates: &Candidates) -> Result<Option<ArrayRef>> {
    let keep = BooleanBuffer::collect_bool(array.len(), |row| {
        candidates.contains(hashes[row]) && array.is_valid(row)
    });
    if keep.count_set_bits() == 0 {
        return Ok(None);
    }
    Ok(Some(filter(array, &BooleanArray::new(keep, None))?))
}

/// Per hashed column, the values of `kept` whose hash is one of its
/// candidates, a partition per core at a time.
fn pick_kept(kept: Vec<Vec<KeptBatch>>, candidates: &[Candidates]) -> Result<Vec<Vec<ArrayRef>>> {
    let mut picked: Vec<Vec<ArrayRef>> = vec![Vec::new(); candidates.len()];
    if candidates.iter().all(Candidates::is_empty) {
        return Ok(picked);
    }
    let parts: Vec<Result<Vec<Vec<ArrayRef>>>> = std::thread::scope(|s| {
        let tasks: Vec<_> = kept
            .iter()
            .map(|batches| {
                s.spawn(move || {
                    let mut picked = vec![Vec::new(); candidates.len()];
                    for batch in batches {
                        for (k, (array, hashes)) in batch.iter().enumerate() {
                            if let Some(values) = pick(array, hashes, &candidates[k])? {
                                picked[k].push(values);
                            }
                        }
                    }
                    Ok(picked)
                })
            })
            .collect();
        tasks
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for part in parts {
        for (p, arrays) in picked.iter_mut().zip(part?) {
            p.extend(arrays);
        }
    }
    Ok(picked)
}

/// Per column of `hashed`, the non-null values whose hash is one of its
/// candidates, read again from `plan`.
async fn second_pass(
    plan: Arc<dyn ExecutionPlan>,
    ctx: &SessionContext,
    hashed: &[usize],
    candidates: Arc<Vec<Candidates>>,
) -> Result<Vec<Vec<ArrayRef>>> {
    let mut picked: Vec<Vec<ArrayRef>> = vec![Vec::new(); hashed.len()];
    if candidates.iter().all(Candidates::is_empty) {
        return Ok(picked);
    }
    let parts = per_partition(plan, ctx, |mut stream| {
        let hashed = hashed.to_vec();
        let candidates = candidates.clone();
        async move {
            let mut picked = vec![Vec::new(); hashed.len()];
            let mut buffer = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch: RecordBatch = batch?;
                for (k, i) in hashed.iter().enumerate() {
                    if candidates[k].is_empty() {
                        continue;
                    }
                    let array = batch.column(*i);
                    let hashes = hash(array, &mut buffer)?;
                    if let Some(values) = pick(array, hashes, &candidates[k])? {
                        picked[k].push(values);
                    }
                }
            }
            Ok(picked)
        }
    })
    .await?;
    for part in parts {
        for (p, arrays) in picked.iter_mut().zip(part) {
            p.extend(arrays);
        }
    }
    Ok(picked)
}

/// The values among `arrays` (few: those whose hash repeats) that occur more
/// than once, compared exactly by the engine.
async fn exact_repeats(
    ctx: &SessionContext,
    data_type: &DataType,
    arrays: Vec<ArrayRef>,
) -> Result<ArrayRef> {
    if arrays.is_empty() {
        return Ok(datafusion::arrow::array::new_empty_array(data_type));
    }
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new("v", data_type.clone(), true),
    ]));
    let batches = arrays
        .into_iter()
        .map(|a| RecordBatch::try_new(schema.clone(), vec![a]))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let table = MemTable::try_new(schema, vec![batches])?;
    let df = ctx.read_table(Arc::new(table))?;
    collect_repeats(df, col("v")).await
}

/// The values of `value` over `input` that occur more than once, by a
/// `GROUP BY` (for types [`hashable`] does not take).
async fn grouped_repeats(
    ctx: &SessionContext,
    input: &LogicalPlan,
    value: &Expr,
) -> Result<ArrayRef> {
    collect_repeats(DataFrame::new(ctx.state(), input.clone()), value.clone()).await
}

async fn collect_repeats(df: DataFrame, value: Expr) -> Result<ArrayRef> {
    let df = df
        .select(vec![value.alias("v")])?
        .filter(col("v").is_not_null())?
        .aggregate(vec![col("v")], vec![count(lit(1)).alias("n")])?
        .filter(col("n").gt(lit(1)))?
        .select(vec![col("v")])?;
    let data_type = df.schema().field(0).data_type().clone();
    let batches = df.collect().await?;
    let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(0).as_ref()).collect();
    if arrays.is_empty() {
        return Ok(datafusion::arrow::array::new_empty_array(&data_type));
    }
    Ok(concat(&arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn sorted(a: &ArrayRef) -> Vec<String> {
        let mut v: Vec<String> = (0..a.len())
            .map(|i| {
                datafusion::arrow::util::display::array_value_to_string(a, i).unwrap_or_default()
            })
            .collect();
        v.sort();
        v
    }

    /// Several partitions, nulls, values repeated across partitions and within
    /// one, a type that is grouped by the engine instead, and an expression.
    #[tokio::test]
    async fn finds_exactly_the_values_that_repeat() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true))),
                true,
            ),
        ]));
        let batch = |ids: Vec<Option<&str>>, ns: Vec<Option<i64>>| {
            let lists = datafusion::arrow::array::ListArray::from_iter_primitive::<
                datafusion::arrow::datatypes::Int64Type,
                _,
                _,
            >(ns.iter().map(|n| n.map(|n| vec![Some(n % 3)])));
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(Int64Array::from(ns)),
                    Arc::new(lists),
                ],
            )
            .unwrap()
        };
        let partitions = vec![
            vec![batch(
                vec![Some("a"), Some("b"), None, Some("c"), Some("b")],
                vec![Some(1), Some(2), None, None, Some(3)],
            )],
            vec![
                batch(
                    vec![Some("a"), None, Some("d")],
                    vec![Some(4), Some(5), Some(1)],
                ),
                batch(vec![Some("e")], vec![None]),
            ],
        ];
        let table = MemTable::try_new(schema, partitions).unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let plan = ctx.table("t").await.unwrap().into_unoptimized_plan();
        // Picked from what the first pass kept; from a second pass as soon as
        // the first batch is over budget; and with one over it midway.
        for budget in [KEEP_BUDGET, 0, 1200] {
            let found = repeated_within(
                &ctx,
                &plan,
                &[col("id"), col("n"), col("l"), col("n") + lit(1_i64)],
                budget,
            )
            .await
            .unwrap();
            assert_eq!(found.len(), 4);
            assert_eq!(sorted(&found[0]), vec!["a", "b"], "budget {budget}");
            assert_eq!(sorted(&found[1]), vec!["1"]);
            // [1], [2], [0], [1], [2], [1] over non-null n: 1, 2, 3, 4, 5, 1 mod 3.
            assert_eq!(sorted(&found[2]), vec!["[1]", "[2]"]);
            assert_eq!(sorted(&found[3]), vec!["2"]);
            assert_eq!(found[0].data_type(), &DataType::Utf8);
            assert_eq!(found[1].data_type(), &DataType::Int64);
        }
    }

    /// The first pass keeps its batches only while they fit the budget.
    #[tokio::test]
    async fn the_first_pass_keeps_what_fits_its_budget() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        let table = MemTable::try_new(schema, vec![vec![batch.clone()], vec![batch]]).unwrap();
        let ctx = SessionContext::new();
        let plan = ctx
            .read_table(Arc::new(table))
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let (buckets, kept) = first_pass(plan.clone(), &ctx, &[0], usize::MAX)
            .await
            .unwrap();
        assert_eq!(buckets[0].iter().map(Vec::len).sum::<usize>(), 2000);
        let kept = kept.expect("kept");
        assert_eq!(kept.len(), 2, "a partition each");
        assert_eq!(kept[0][0][0].1.len(), 1000, "a hash per row");
        // One batch (8,000 bytes of values, 8,000 of hashes) fits, two do not.
        let (_, kept) = first_pass(plan, &ctx, &[0], 20_000).await.unwrap();
        assert!(kept.is_none());
    }

    #[test]
    fn candidates_answer_as_their_set() {
        let set: HashSet<u64> = [5_u64, 5 + CANDIDATE_BITS as u64 * 3, u64::MAX].into();
        let c = Candidates::new(set.clone());
        for h in [
            0_u64,
            5,
            6,
            5 + CANDIDATE_BITS as u64,
            5 + CANDIDATE_BITS as u64 * 3,
            u64::MAX,
            u64::MAX - 1,
        ] {
            assert_eq!(c.contains(h), set.contains(&h), "{h}");
        }
        assert!(!Candidates::new(HashSet::new()).contains(5));
    }

    /// Values whose hashes collide but that differ are not repeated.
    #[tokio::test]
    async fn candidates_are_counted_exactly() {
        let ctx = SessionContext::new();
        let a: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["z", "x"]));
        let found = exact_repeats(&ctx, &DataType::Utf8, vec![a.clone()])
            .await
            .unwrap();
        assert_eq!(found.len(), 0);
        let found = exact_repeats(&ctx, &DataType::Utf8, vec![a, b])
            .await
            .unwrap();
        assert_eq!(sorted(&found), vec!["x"]);
        let none = exact_repeats(&ctx, &DataType::Utf8, vec![]).await.unwrap();
        assert_eq!(none.data_type(), &DataType::Utf8);
    }

    #[test]
    fn sorting_buckets_finds_each_repeated_hash_once() {
        let mut buckets = vec![Vec::new(); BUCKETS];
        for h in [7_u64, 9, 7, 7, u64::MAX, 3, u64::MAX, 1 << 60] {
            buckets[(h >> 56) as usize].push(h);
        }
        let found = repeated_hashes(vec![buckets]);
        let mut expected = HashSet::new();
        expected.extend([7_u64, u64::MAX]);
        assert_eq!(found, vec![expected]);
    }
}
