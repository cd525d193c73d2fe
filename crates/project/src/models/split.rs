//! The time split of `[models.NAME]`: where validation starts (`split`) and
//! when a training row's label became known (`label_delay`,
//! `label_available`), with [`parse_time`] for the times written.

use sluice_core::parse_duration;

use super::compile::at;
use super::*;
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::RawProject;
use crate::raw::ModelSection;

/// `label_delay` or `label_available`: when a training row's label became known.
pub(super) fn compile_label_horizon(
    raw: &RawProject,
    section: &ModelSection,
    onnx: bool,
    diags: &mut Diagnostics,
) -> Option<LabelHorizon> {
    let (delay, column) = (&section.label_delay, &section.label_available);
    let first = delay
        .as_ref()
        .map(|d| d.span().start)
        .or_else(|| column.as_ref().map(|c| c.span().start))?;
    if onnx {
        diags.push(
            Diagnostic::new(
                raw.location(first),
                "`label_delay` and `label_available` apply to trained models",
            )
            .with_help("an imported model is not trained here; remove them"),
        );
        return None;
    }
    match (delay, column) {
        (Some(d), None) => match parse_duration(d.get_ref()) {
            Ok(t) if t.is_zero() => None,
            Ok(t) => Some(LabelHorizon::Delay(
                i64::try_from(t.as_micros()).unwrap_or(i64::MAX),
            )),
            Err(e) => {
                diags.push(Diagnostic::new(at(raw, d), format!("label_delay: {e}")));
                None
            }
        },
        (None, Some(c)) => {
            let name = c.get_ref().trim();
            if name.is_empty() {
                diags.push(Diagnostic::new(
                    at(raw, c),
                    "`label_available` names no column",
                ));
                return None;
            }
            if section.columns.iter().any(|x| x.get_ref() == name) {
                diags.push(
                    Diagnostic::new(
                        at(raw, c),
                        format!("`{name}` is both `label_available` and a feature column"),
                    )
                    .with_help("remove it from `columns`: when the label became known is not known when the model predicts"),
                );
                return None;
            }
            Some(LabelHorizon::Column(name.to_string()))
        }
        _ => {
            diags.push(
                Diagnostic::new(
                    raw.location(first),
                    "write one of `label_delay` and `label_available`, not both",
                )
                .with_help("`label_delay = \"90d\"`: known 90 days after the row's time; `label_available = \"COLUMN\"`: known at that column's time"),
            );
            None
        }
    }
}

pub(super) fn compile_split(
    raw: &RawProject,
    section: &ModelSection,
    diags: &mut Diagnostics,
) -> Split {
    let default = Split::Last(0.2);
    let Some(split) = &section.split else {
        return default;
    };
    let place = at(raw, split);
    let s = split.get_ref();
    match (&s.before, &s.last) {
        (Some(t), None) => match parse_time(t) {
            Some(micros) => Split::Before(micros),
            None => {
                diags.push(
                    Diagnostic::new(place, format!("split: `{t}` is not a time")).with_help(
                        "write a date (`2013-10-01`) or an RFC 3339 time (`2013-10-01T00:00:00Z`)",
                    ),
                );
                default
            }
        },
        (None, Some(last)) => {
            let share = match last {
                toml::Value::Float(f) => Some(*f),
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::String(s) => s
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .map(|p| p / 100.0),
                _ => None,
            };
            match share {
                Some(x) if x > 0.0 && x < 1.0 => Split::Last(x),
                _ => {
                    diags.push(
                        Diagnostic::new(
                            place,
                            format!("split: `last = {last}` is not a share of the time span"),
                        )
                        .with_help(
                            "write `last = \"20%\"` or `last = 0.2` (strictly between 0 and 1)",
                        ),
                    );
                    default
                }
            }
        }
        _ => {
            diags.push(
                Diagnostic::new(place, "split needs exactly one of `before` and `last`").with_help(
                    "write `split = { before = \"2013-10-01\" }` or `split = { last = \"20%\" }`",
                ),
            );
            default
        }
    }
}

/// A date (`2013-10-01`, midnight UTC) or an RFC 3339 time, as microseconds since
/// the epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}
