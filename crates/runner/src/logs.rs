//! Run logs: the tracing events written while a run works on an asset (its
//! attempts, what its sources warned of, a step's stdout and stderr) kept in
//! the run log, by run, asset and attempt, for `sluice runs show` and
//! `GET /v1/runs/{id}/logs`.
//!
//! The runner opens a span per attempt (`asset_span`) and one for the run
//! (`run_span`); [`layer`], installed beside whatever prints logs, buffers
//! every event of sluice's own crates at `INFO` or above inside such a span,
//! and `keep` moves a span's buffer into the metadata database when its
//! work ends. Whatever `SLUICE_LOG` lets through to standard error, the run
//! log keeps `INFO` and above. A process without the layer keeps nothing.

use std::fmt::Write as _;

use sluice_store::LogLine;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Span, Subscriber, span};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::{LookupSpan, SpanData};
use tracing_subscriber::{Layer, Registry};

use sluice_core::AssetStatus;

use crate::{AssetOutcome, Workspace};

/// The target of the spans whose events are kept, and of the runner's own
/// lines about attempts and runs (which `sluice run`'s progress already shows
/// on a terminal, so that standard error leaves them out by default). Kept
/// are the events of every target starting with `sluice`: sluice's crates
/// (`sluice_runner::...`) and a step's output (`sluice::step`).
pub const TARGET: &str = "sluice::run";

/// The names of the spans whose events are kept.
const ASSET: &str = "asset";
const RUN: &str = "run";

/// How many lines one span keeps; past it, lines are counted, not kept (a
/// step's whole output stays in its own log file).
const MAX_LINES: usize = 10_000;

/// How long a kept message may be, in bytes; longer ones are cut.
const MAX_MESSAGE: usize = 8 * 1024;

/// The layer that keeps run logs, filtered to sluice's own events at `INFO`
/// and above (so that `debug!` of other crates costs it nothing).
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    Keeper.with_filter(filter::<S>())
}

fn filter<S: Subscriber>() -> impl Filter<S> {
    Targets::new().with_target("sluice", Level::INFO)
}

/// The span of one attempt at `asset` in run `run_id`: its events are the
/// asset's log lines.
pub(crate) fn asset_span(run_id: i64, asset: &str, attempt: u32) -> Span {
    tracing::info_span!(target: TARGET, ASSET, run = run_id, asset = %asset, attempt)
}

/// The span of run `run_id` itself (events of no asset).
pub(crate) fn run_span(run_id: i64) -> Span {
    tracing::info_span!(target: TARGET, RUN, run = run_id)
}

/// Moves the lines `span` kept so far into the run log, as `asset`'s attempt
/// `attempt` of run `run_id` (or the run's own lines). A line that cannot be
/// kept is logged, never fails the run.
pub(crate) fn keep(
    ws: &Workspace,
    run_id: i64,
    asset: Option<&str>,
    attempt: Option<u32>,
    span: &Span,
) {
    let lines = take(span);
    if let Err(e) = ws.metadata.append_logs(run_id, asset, attempt, &lines) {
        tracing::warn!(
            "could not keep {} log lines of run {run_id}: {e}",
            lines.len()
        );
    }
}

/// The log line that says how an attempt ended.
pub(crate) fn outcome(o: &AssetOutcome) {
    let version = o.version.map(|v| format!(" v{v}")).unwrap_or_default();
    match (o.status, &o.error) {
        (AssetStatus::Built, _) => tracing::info!(
            target: TARGET,
            "built{version} in {} ms: {} rows in, {} out, {} quarantined",
            o.duration_ms,
            o.rows_in,
            o.rows_out,
            o.rows_quarantined
        ),
        (status, None) => {
            tracing::info!(target: TARGET, "{status}{version} in {} ms", o.duration_ms)
        }
        (status, Some(error)) if status.is_ok() => {
            tracing::warn!(target: TARGET, "{status}{version} in {} ms: {error}", o.duration_ms)
        }
        (status, Some(error)) => {
            tracing::error!(target: TARGET, "{status} after {} ms: {error}", o.duration_ms)
        }
    }
}

/// The lines `span` kept so far, emptied; a last line tells how many more
/// were not kept.
pub(crate) fn take(span: &Span) -> Vec<LogLine> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span_data(id)?;
        let mut extensions = data.extensions_mut();
        let buffer = extensions.get_mut::<Buffer>()?;
        Some(buffer.take())
    })
    .flatten()
    .unwrap_or_default()
}

/// What a kept span has buffered, in its extensions (so it goes when the
/// span closes).
#[derive(Default)]
struct Buffer {
    lines: Vec<LogLine>,
    dropped: u64,
}

impl Buffer {
    fn take(&mut self) -> Vec<LogLine> {
        let mut lines = std::mem::take(&mut self.lines);
        if self.dropped > 0 {
            lines.push(LogLine {
                at: chrono::Utc::now(),
                level: "WARN".into(),
                target: TARGET.into(),
                message: format!(
                    "{} more lines were not kept (at most {MAX_LINES} per attempt are); a step's whole output is in its log file",
                    self.dropped
                ),
            });
            self.dropped = 0;
        }
        lines
    }
}

struct Keeper;

impl<S> Layer<S> for Keeper
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if meta.target() != TARGET || !matches!(meta.name(), ASSET | RUN) {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Buffer::default());
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(kept) = scope
            .into_iter()
            .find(|s| s.extensions().get::<Buffer>().is_some())
        else {
            return;
        };
        let mut extensions = kept.extensions_mut();
        let Some(buffer) = extensions.get_mut::<Buffer>() else {
            return;
        };
        if buffer.lines.len() >= MAX_LINES {
            buffer.dropped += 1;
            return;
        }
        let meta = event.metadata();
        let mut text = Text::default();
        event.record(&mut text);
        buffer.lines.push(LogLine {
            at: chrono::Utc::now(),
            level: meta.level().to_string(),
            target: meta.target().to_string(),
            message: text.finish(),
        });
    }
}

/// An event's message, then its other fields as `key=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        let mut out = self.message;
        if !self.fields.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&self.fields);
        }
        if out.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str(" [cut]");
        }
        out
    }

    fn field(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if field.name() == "message" {
            let _ = self.message.write_fmt(value);
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value}", field.name());
        }
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn events_in_a_kept_span_are_kept_with_their_fields_and_others_are_not() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            let run = run_span(7);
            let asset = asset_span(7, "flights", 2);
            tracing::info!("outside any kept span");
            asset.in_scope(|| {
                tracing::info!(rows = 3, file = "a.csv", "read");
                tracing::debug!("below INFO: not kept");
                tracing::warn!(target: "sluice::step", stream = "stderr", "a step's line");
                tracing::info!(target: "datafusion::x", "another crate: not kept");
                // A span inside a kept one: its events go to the kept one.
                tracing::info_span!("inner").in_scope(|| tracing::error!("failed\nline two"));
            });
            run.in_scope(|| tracing::info!("run started"));
            let kept: Vec<_> = take(&asset)
                .into_iter()
                .map(|l| (l.level, l.target, l.message))
                .collect();
            assert_eq!(
                kept,
                [
                    (
                        "INFO".to_string(),
                        module_path!().to_string(),
                        "read rows=3 file=a.csv".to_string()
                    ),
                    (
                        "WARN".into(),
                        "sluice::step".into(),
                        "a step's line stream=stderr".into()
                    ),
                    (
                        "ERROR".into(),
                        module_path!().into(),
                        "failed\nline two".into()
                    ),
                ]
            );
            assert!(take(&asset).is_empty(), "taking empties the buffer");
            let run_lines: Vec<_> = take(&run).into_iter().map(|l| l.message).collect();
            assert_eq!(run_lines, ["run started"]);
        });
    }

    #[test]
    fn a_span_keeps_at_most_its_limit_and_says_how_many_it_left_out() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            let span = asset_span(1, "noisy", 1);
            span.in_scope(|| {
                for i in 0..MAX_LINES + 5 {
                    tracing::info!("line {i}");
                }
                tracing::info!("{}", "x".repeat(MAX_MESSAGE + 10));
            });
            let lines = take(&span);
            assert_eq!(lines.len(), MAX_LINES + 1);
            assert_eq!(
                lines[MAX_LINES - 1].message,
                format!("line {}", MAX_LINES - 1)
            );
            assert!(
                lines[MAX_LINES]
                    .message
                    .starts_with("6 more lines were not kept")
            );
        });
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            let span = asset_span(1, "long", 1);
            span.in_scope(|| tracing::info!("é{}", "x".repeat(MAX_MESSAGE)));
            let lines = take(&span);
            assert!(lines[0].message.ends_with(" [cut]"));
            assert!(lines[0].message.len() <= MAX_MESSAGE + " [cut]".len());
        });
    }

    #[test]
    fn without_the_layer_nothing_is_kept() {
        let span = asset_span(1, "quiet", 1);
        span.in_scope(|| tracing::info!("nobody listens"));
        assert!(take(&span).is_empty());
    }
}
