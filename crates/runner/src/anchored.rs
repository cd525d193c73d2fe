//! Joining feature views into a spine: a declared view without `as_of` is
//! computed at each spine row's own time from its source (`spine_windows`), so a
//! row at `T` sees the windows `[T - w, T]` (or `[T - w, T)`) and not those that
//! ended at the entity's previous event; every other view is joined
//! point-in-time (its newest row at or before `T`).

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionContext, ident};
use futures::StreamExt;
use sluice_project::features::{AsOf as ViewAsOf, Declared, FeatureBody};
use sluice_project::raw::AggregateFunction;
use sluice_store::AsOf;
use sluice_transform::{Closed, EventWindows, ViewInput, WindowAgg, WindowFeature};

use crate::training::feature_def;
use crate::{Error, Result, Workspace};

/// `spine` (time column `time`) joined with `views` (read at the versions in
/// `used`): the spine's columns, then each view's output columns in order.
pub(crate) async fn join_views(
    ws: &Workspace,
    ctx: &SessionContext,
    spine: SendableRecordBatchStream,
    time: &str,
    views: &[ViewInput],
    used: &[(String, u64)],
) -> Result<SendableRecordBatchStream> {
    let engine = |e| Error::engine("training set", e);
    let order: Vec<String> = spine
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .chain(
            views
                .iter()
                .flat_map(|v| v.features.iter().map(|(_, o)| o.clone())),
        )
        .collect();
    let mut per_event = vec![];
    let mut anchored = vec![];
    let mut derives = vec![];
    for v in views {
        let version = used.iter().find(|(n, _)| *n == v.view).map(|(_, n)| *n);
        match event_windows(ws, ctx, v, version).await? {
            Some((w, derive)) => {
                anchored.push(w);
                derives.extend(derive);
            }
            None => per_event.push(v.clone()),
        }
    }
    let mut stream = spine;
    if !per_event.is_empty() {
        stream = sluice_transform::point_in_time_join(ctx, stream, time, &per_event)
            .await
            .map_err(engine)?;
    }
    if !anchored.is_empty() {
        stream = sluice_transform::spine_windows(ctx, stream, time, &anchored)
            .await
            .map_err(engine)?;
        for derive in &derives {
            stream = with_derived(stream, derive)?;
        }
    }
    // Views of both kinds: put the columns back in the order they were asked for.
    let schema = stream.schema();
    let indices: Vec<usize> = order
        .iter()
        .map(|n| schema.index_of(n))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| engine(e.into()))?;
    if indices.iter().enumerate().all(|(i, j)| i == *j) && indices.len() == schema.fields().len() {
        return Ok(stream);
    }
    let projected = Arc::new(schema.project(&indices).map_err(|e| engine(e.into()))?);
    let mapped = stream.map(move |b| b.and_then(|b| Ok(b.project(&indices)?)));
    Ok(Box::pin(RecordBatchStreamAdapter::new(projected, mapped)))
}

/// A view's derived features asked for, computed over its windows' output.
#[derive(Debug, Clone)]
pub(crate) struct Derive {
    /// The view.
    pub(crate) view: String,
    /// Every aggregate and pivot feature of the view (its name in the view) and
    /// the output column that holds it (asked for, or hidden).
    pub(crate) inputs: Vec<(String, String)>,
    /// The view's derived features, in declaration order: name and SQL.
    pub(crate) derived: Vec<(String, String)>,
    /// Those asked for: name and output column.
    pub(crate) wanted: Vec<(String, String)>,
}

/// The windows of view `v` computed at each spine row, when it is a declared
/// view without `as_of`; with the derived features asked for, which are then
/// computed over the windows (their inputs computed as hidden columns when not
/// asked for).
pub(crate) async fn event_windows(
    ws: &Workspace,
    ctx: &SessionContext,
    v: &ViewInput,
    version: Option<u64>,
) -> Result<Option<(EventWindows, Option<Derive>)>> {
    let def = feature_def(ws, &v.view)?;
    let FeatureBody::Declared(d) = &def.body else {
        return Ok(None);
    };
    if !d.spine_anchored || d.as_of != ViewAsOf::Event {
        return Ok(None);
    }
    let engine = |e| Error::engine("training set", e);
    let source = d.source.as_str();
    // The source at the version the view's version was built from.
    let mut source_version = None;
    if let Some(version) = version {
        for info in ws.store.history(&v.view).await? {
            if info.version == version {
                source_version = info.meta.and_then(|m| m.inputs.get(source).copied());
            }
        }
    }
    let as_of = match source_version {
        Some(n) => AsOf::Version(n),
        None => AsOf::Latest,
    };
    let provider = ws.store.provider(source, as_of, &ctx.state()).await?;
    let mut events = ctx.read_table(provider).map_err(engine)?;
    let categories = pivot_categories(&events, d).await?;
    let mut filters = 0;
    let mut features = vec![];
    let mut wanted_derived = vec![];
    for (wanted, out) in &v.features {
        if d.derived.iter().any(|(name, _)| name == wanted) {
            wanted_derived.push((wanted.clone(), out.clone()));
            continue;
        }
        match window_feature(d, &categories, &mut events, &mut filters, wanted, out)? {
            Some(f) => features.push(f),
            // A column of the view's table the declaration does not explain
            // (a category found at build time but not now): join per event.
            None => return Ok(None),
        }
    }
    let derive = if wanted_derived.is_empty() {
        None
    } else {
        // Every aggregate and pivot feature, for the expressions to read.
        let mut names: Vec<String> = d.aggregates.iter().map(|a| a.name.clone()).collect();
        for (p, cats) in d.pivots.iter().zip(&categories) {
            for cat in cats {
                let (sum, count) = p.columns(cat);
                names.extend(sum);
                names.push(count);
            }
        }
        let mut inputs = vec![];
        for name in names {
            let column = match v.features.iter().find(|(w, _)| *w == name) {
                Some((_, out)) => out.clone(),
                None => {
                    let hidden = format!("__sluice_{}_{name}", v.view);
                    let f =
                        window_feature(d, &categories, &mut events, &mut filters, &name, &hidden)?;
                    features.extend(f);
                    hidden
                }
            };
            inputs.push((name, column));
        }
        Some(Derive {
            view: v.view.clone(),
            inputs,
            derived: d.derived.clone(),
            wanted: wanted_derived,
        })
    };
    let windows = EventWindows {
        name: v.view.clone(),
        events,
        entity: v.entity.clone(),
        timestamp: v.timestamp.clone(),
        created: v.created.clone(),
        ttl: v.ttl,
        features,
    };
    Ok(Some((windows, derive)))
}

/// The window feature of `d` named `wanted`, output as `out`: an aggregate, or a
/// pivot's column (its condition added to `events` as a filter column). `None`
/// when the declaration has no such feature.
fn window_feature(
    d: &Declared,
    categories: &[Vec<String>],
    events: &mut datafusion::prelude::DataFrame,
    filters: &mut usize,
    wanted: &str,
    out: &str,
) -> Result<Option<WindowFeature>> {
    let engine = |e| Error::engine("training set", e);
    let mut add_filter = |events: &mut datafusion::prelude::DataFrame, sql: &str| {
        let name = format!("__sluice_filter_{filters}");
        *filters += 1;
        let expr = events.parse_sql_expr(sql).map_err(engine)?;
        *events = events.clone().with_column(&name, expr).map_err(engine)?;
        Ok::<String, Error>(name)
    };
    if let Some(a) = d.aggregates.iter().find(|a| a.name == wanted) {
        let agg = match a.agg {
            AggregateFunction::Sum => WindowAgg::Sum,
            AggregateFunction::Mean => WindowAgg::Mean,
            AggregateFunction::Min => WindowAgg::Min,
            AggregateFunction::Max => WindowAgg::Max,
            AggregateFunction::Count => WindowAgg::Count,
            AggregateFunction::CountDistinct => WindowAgg::CountDistinct,
            AggregateFunction::Stddev => WindowAgg::Stddev,
            AggregateFunction::Last if a.ignore_nulls => WindowAgg::Last,
            AggregateFunction::Last => WindowAgg::LastWithNulls,
        };
        let mut f = WindowFeature::new(out, agg, a.column.as_deref());
        if let Some(w) = a.window {
            f = f.over(w);
        }
        if a.closed_left {
            f = f.closed(Closed::Left);
        }
        if let Some(filter) = &a.filter {
            f = f.filtered(&add_filter(events, filter)?);
        }
        return Ok(Some(f));
    }
    for (p, cats) in d.pivots.iter().zip(categories) {
        for cat in cats {
            let (sum, count) = p.columns(cat);
            let is_sum = sum.as_deref() == Some(wanted);
            if !is_sum && count != wanted {
                continue;
            }
            let mut cond = format!(
                "{} = '{}'",
                sluice_project::features::quote(&p.column),
                cat.replace('\'', "''")
            );
            if let Some(f) = &p.filter {
                cond = format!("{cond} AND ({f})");
            }
            let filter = add_filter(events, &cond)?;
            let mut f = if is_sum {
                WindowFeature::new(out, WindowAgg::ZeroFilledSum, p.value.as_deref())
            } else {
                WindowFeature::new(out, WindowAgg::Count, None)
            }
            .filtered(&filter);
            if let Some((w, _)) = &p.window {
                f = f.over(*w);
            }
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// `stream` with `derive`'s derived features appended, computed batch by batch
/// over the columns holding their inputs.
pub(crate) fn with_derived(
    stream: SendableRecordBatchStream,
    derive: &Derive,
) -> Result<SendableRecordBatchStream> {
    let engine = |e| Error::engine("training set", e);
    let schema = stream.schema();
    let mut indices = vec![];
    let mut fields = vec![];
    for (name, column) in &derive.inputs {
        let i = schema.index_of(column).map_err(|e| engine(e.into()))?;
        indices.push(i);
        fields.push(schema.field(i).clone().with_name(name));
    }
    let compiled = sluice_transform::DerivedFeatures::compile(
        &derive.view,
        Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        &derive.derived,
    )
    .map_err(engine)?;
    // Which derived columns are kept, under which names.
    let mut picks = vec![];
    let mut out_fields: Vec<_> = schema.fields().iter().cloned().collect();
    for (name, out) in &derive.wanted {
        let (j, field) = compiled
            .fields()
            .enumerate()
            .find(|(_, f)| f.name() == name)
            .ok_or_else(|| {
                Error::engine(
                    "training set",
                    datafusion::error::DataFusionError::Plan(format!(
                        "view `{}` has no derived feature `{name}`",
                        derive.view
                    )),
                )
            })?;
        picks.push(j);
        out_fields.push(Arc::new(field.clone().with_name(out)));
    }
    let out_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(out_fields));
    let batch_schema = out_schema.clone();
    let mapped = stream.map(move |b| {
        let b = b?;
        let inputs = indices.iter().map(|i| b.column(*i).clone()).collect();
        let derived = compiled.evaluate(inputs)?;
        let mut columns = b.columns().to_vec();
        columns.extend(picks.iter().map(|j| derived[*j].clone()));
        Ok(datafusion::arrow::array::RecordBatch::try_new(
            batch_schema.clone(),
            columns,
        )?)
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(out_schema, mapped)))
}

/// Each pivot's categories: the listed ones, or the distinct values of its
/// column in the source, as text.
async fn pivot_categories(
    events: &datafusion::prelude::DataFrame,
    d: &Declared,
) -> Result<Vec<Vec<String>>> {
    let engine = |e| Error::engine("training set", e);
    let mut out = vec![];
    for p in &d.pivots {
        if let Some(values) = &p.values {
            out.push(values.clone());
            continue;
        }
        let batches = events
            .clone()
            .select(vec![ident(&p.column)])
            .and_then(|df| df.distinct())
            .map_err(engine)?
            .collect()
            .await
            .map_err(engine)?;
        let mut cats = vec![];
        for b in batches {
            let text = cast(b.column(0), &DataType::Utf8).map_err(|e| engine(e.into()))?;
            cats.extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
        }
        cats.sort();
        out.push(cats);
    }
    Ok(out)
}
