//! `partitioned = { ... }` on a source or a table, compiled into the
//! [`Partitioning`] the runner builds one partition at a time by.

use chrono::NaiveDateTime;
use sluice_core::partition::{Grain, Partition, parse_time};

use super::Builder;
use crate::diag::Diagnostic;
use crate::raw::PartitionedSection;

/// How an asset is split into time partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioning {
    /// How long a partition is.
    pub grain: Grain,
    /// The date or timestamp column that says which partition a row is in.
    pub column: String,
    /// The first partition.
    pub start: Partition,
    /// The last partition (included); `None`: the one holding the present.
    pub end: Option<Partition>,
}

impl Partitioning {
    /// What the partitioning adds to each partition's fingerprint.
    pub fn describe(&self) -> String {
        format!(
            "{} of {} from {}{}",
            self.grain,
            self.column,
            self.start,
            self.end.map(|e| format!(" to {e}")).unwrap_or_default()
        )
    }

    /// Every partition from the first to the one holding `now` (or the last).
    pub fn all(&self, now: NaiveDateTime) -> Vec<Partition> {
        let last = self.end.map_or(now, |e| e.start);
        self.grain.range(self.start.start, last)
    }

    /// Reads a partition as written on the command line or in a request:
    /// its label, or a date or time inside it.
    pub fn parse(&self, text: &str) -> Option<Partition> {
        self.grain.parse_label(text)
    }
}

/// Compiles a `partitioned` section; `None` (with diagnostics) when it has a mistake.
pub(super) fn compile(b: &mut Builder<'_>, section: &PartitionedSection) -> Option<Partitioning> {
    let raw = b.raw;
    let grain = Grain::parse(section.by.get_ref());
    if grain.is_none() {
        b.diags.push(
            Diagnostic::new(
                raw.location(section.by.span().start),
                format!(
                    "`by = \"{}\"` is not a partition size",
                    section.by.get_ref()
                ),
            )
            .with_help(format!(
                "use one of {}",
                Grain::WORDS.map(|w| format!("`{w}`")).join(", ")
            )),
        );
    }
    let time = |b: &mut Builder<'_>, text: &toml::Spanned<String>, key: &str| {
        let t = parse_time(text.get_ref());
        if t.is_none() {
            b.diags.push(
                Diagnostic::new(
                    raw.location(text.span().start),
                    format!("`{key} = \"{}\"` is not a date or a time", text.get_ref()),
                )
                .with_help("write a date, `2024-01-01`, or a date and time, `2024-01-01T06:00`"),
            );
        }
        t
    };
    let start = time(b, &section.start, "start");
    let end = match &section.end {
        Some(e) => Some(time(b, e, "end")?),
        None => None,
    };
    if section.column.get_ref().trim().is_empty() {
        b.diags.push(
            Diagnostic::new(
                raw.location(section.column.span().start),
                "`column` is empty",
            )
            .with_help("name the date or timestamp column that says which partition a row is in"),
        );
        return None;
    }
    let (grain, start) = (grain?, start?);
    let start = grain.partition(start);
    let end = end.map(|e| grain.partition(e));
    if let (Some(e), Some(at)) = (end, &section.end)
        && e < start
    {
        b.diags.push(
            Diagnostic::new(
                raw.location(at.span().start),
                format!("the last partition, {e}, comes before the first, {start}"),
            )
            .with_help("`end` names the last partition, which must not come before `start`"),
        );
        return None;
    }
    Some(Partitioning {
        grain,
        column: section.column.get_ref().clone(),
        start,
        end,
    })
}
