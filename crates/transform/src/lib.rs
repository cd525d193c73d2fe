//! Transforms, stage ③ of the flow: SQL tables become DataFusion logical plans,
//! feature views their SQL; training sets are point-in-time joins, or windows
//! computed as of each spine row's time (`spine_windows`). The engine's session
//! is configured here, once, for every stage that plans or runs SQL; planning
//! errors are mapped back to `file:line:column` of the query.

mod derived;
mod error;
mod exact;
mod features;
mod holding;
mod spine_windows;
mod training;

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use sluice_core::{Location, invalid_column_name};
use sluice_project::sql::syntax_error;
use sluice_project::{Asset, Diagnostic, TableDef};

pub use derived::DerivedFeatures;
pub use error::{Error, Result};
pub use features::{Known, micros, micros_array, plan_features};
pub use spine_windows::tiles::{
    TILES_COLUMN, TileError, TileLayout, TilePlan, build_tiles, read_tiles, tiles_newest,
};
pub use spine_windows::{Closed, EventWindows, WindowAgg, WindowFeature, spine_windows};
pub use training::{ViewInput, point_in_time_join};

/// A DataFusion session configured the way sluice runs SQL: spans collected for
/// error positions, identifiers normalized like standard SQL, and `sum`/`avg`
/// exact over sliding window frames of floats (`exact.rs`).
pub fn session() -> SessionContext {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
    config.options_mut().sql_parser.collect_spans = true;
    config.options_mut().sql_parser.enable_ident_normalization = true;
    // As delta-rs configures its own sessions: hash-join IN-list pushdown can fail
    // on dictionary-encoded join keys.
    config
        .options_mut()
        .optimizer
        .hash_join_inlist_pushdown_max_size = 0;
    config
        .options_mut()
        .optimizer
        .hash_join_inlist_pushdown_max_distinct_values = 0;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(Arc::new(RuntimeEnv::default()))
        .with_default_features()
        .build();
    let ctx = SessionContext::new_with_state(state);
    // Window sums and means of floats without the noise of sliding frames.
    for f in exact::exact_window_aggregates() {
        ctx.register_udaf(f);
    }
    // How many of a view's windows hold each event, for its first step.
    ctx.register_udf(holding::windows_holding());
    ctx
}

/// A session whose sorts and joins spill to disk beyond `bytes` of memory.
pub fn session_with_memory_limit(bytes: usize) -> SessionContext {
    let ctx = session();
    // A fair pool: the sorts that run at once (spine and view) share the budget and
    // spill, instead of the first one taking it all.
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(bytes),
        ))
        .build_arc()
        .unwrap_or_default();
    let state = SessionStateBuilder::new_from_existing(ctx.state())
        .with_runtime_env(runtime)
        .build();
    SessionContext::new_with_state(state)
}

/// Plans a table's query against the assets registered in `ctx`, checking that
/// its output columns can be stored.
pub async fn plan_table(
    ctx: &SessionContext,
    asset: &Asset,
    def: &TableDef,
) -> Result<LogicalPlan> {
    plan_sql(ctx, asset, &def.sql, &|line, column| {
        def.origin.locate(line, column)
    })
    .await
}

/// Plans `sql` for `asset`; `locate` turns a 1-based position in `sql` (0 when
/// unknown) into the place in the user's files to report.
pub(crate) async fn plan_sql(
    ctx: &SessionContext,
    asset: &Asset,
    sql: &str,
    locate: &(dyn Fn(u64, u64) -> Location + Sync),
) -> Result<LogicalPlan> {
    let plan = ctx
        .state()
        .create_logical_plan(sql)
        .await
        .map_err(|source| Error::PlanQuery {
            diagnostic: planning_diagnostic(asset, locate, &source),
            source,
        })?;
    let mut seen = BTreeSet::new();
    for field in plan.schema().fields() {
        let name = field.name();
        let problem = invalid_column_name(name)
            .map(|p| (p, "give the column a plain name with `AS name`"))
            .or_else(|| {
                (!seen.insert(name.clone())).then(|| {
                    (
                        format!("the query returns two columns named `{name}`"),
                        "give each column its own name with `AS name`",
                    )
                })
            });
        if let Some((message, help)) = problem {
            return Err(Error::OutputColumns {
                diagnostic: Diagnostic::new(
                    locate(1, 1),
                    format!("{} `{}`: {message}", asset.kind(), asset.name),
                )
                .with_help(help),
            });
        }
    }
    Ok(plan)
}

/// Turns a DataFusion planning error into a diagnostic at the right place.
pub fn planning_diagnostic(
    asset: &Asset,
    locate: &(dyn Fn(u64, u64) -> Location + Sync),
    error: &DataFusionError,
) -> Diagnostic {
    if let Some(d) = error.diagnostic() {
        let at = d
            .span
            .map_or(locate(0, 0), |s| locate(s.start.line, s.start.column));
        let mut out = Diagnostic::new(
            at,
            format!("{} `{}`: {}", asset.kind(), asset.name, d.message),
        );
        let helps: Vec<String> = d
            .helps
            .iter()
            .map(|h| h.message.clone())
            .chain(d.notes.iter().map(|n| n.message.clone()))
            .collect();
        if !helps.is_empty() {
            out = out.with_help(helps.join("; "));
        }
        return out;
    }
    let text = error.strip_backtrace();
    let parsed = syntax_error(&text);
    let message = parsed
        .message
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .to_string();
    Diagnostic::new(
        locate(parsed.line, parsed.column),
        format!("{} `{}`: {message}", asset.kind(), asset.name),
    )
    .with_help("`sluice query` runs SQL over the built assets, to try the query out")
}
