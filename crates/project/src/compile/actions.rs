//! `[actions.NAME]` into an [`ActionDef`]: a label and an asset selection
//! (the words of a schedule's `assets`), checked when the project loads.

use sluice_core::Location;

use super::Builder;
use super::schedules::{ScheduleTarget, compile_each, targets};
use crate::parse::Entry;
use crate::raw::ActionSection;

/// A compiled action: a dashboard button that starts a run.
#[derive(Debug, Clone)]
pub struct ActionDef {
    /// Its name (`[actions.NAME]`), the last part of its URL.
    pub name: String,
    /// Where it is defined.
    pub location: Location,
    /// The button's text.
    pub label: String,
    /// What a press refreshes; empty: every asset.
    pub assets: Vec<ScheduleTarget>,
    /// Free text for people.
    pub description: Option<String>,
}

/// Compiles every `[actions.NAME]`; call once every asset has its tags.
pub(super) fn compile(b: &mut Builder<'_>) -> std::collections::BTreeMap<String, ActionDef> {
    let raw = b.raw;
    compile_each(
        b,
        &raw.actions,
        |b, names, name, entry: &Entry<ActionSection>| {
            let section = &entry.value;
            let before = b.diags.len();
            let owner = format!("action `{name}`");
            let assets = targets(b, names, section.assets.iter().flatten(), &owner);
            if b.diags.len() > before {
                return None;
            }
            Some(ActionDef {
                name: name.to_string(),
                location: b.raw.location(entry.offset),
                label: section
                    .label
                    .clone()
                    .filter(|l| !l.trim().is_empty())
                    .unwrap_or_else(|| name.to_string()),
                assets,
                description: section.description.clone(),
            })
        },
    )
}
