//! Phase one of loading: the raw text of `sluice.toml` into the raw structs of
//! [`crate::raw`], with the profile in force applied, collecting every syntax
//! and shape error with its position — every mistake of an entry, not only the
//! first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_core::Location;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::diag::{Diagnostic, Diagnostics};
use crate::profiles::{
    check_profile_settings, check_source_overrides, choose_profile, overlay, profile_tables,
};
use crate::raw::{
    ActionSection, AlertSection, CollectionSection, ExplorerSection, ExportSection, FeatureSection,
    INCREMENTAL_KEY, IncrementalSection, ModelSection, POLICY_KEYS, PolicySection, ProjectSection,
    ScheduleSection, SourceSection, StepSection, TableSection,
};

/// A section of the file with the byte span of its name, for messages about it.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// Byte offset of the entry's name in the file.
    pub offset: usize,
    /// The parsed section.
    pub value: T,
}

/// The project file as written, before names and references are checked.
#[derive(Debug, Clone)]
pub struct RawProject {
    /// The project folder.
    pub dir: PathBuf,
    /// The project file, as shown in messages.
    pub file: PathBuf,
    /// The file's text, to turn byte offsets into lines and columns.
    pub text: String,
    /// `[project]`.
    pub project: ProjectSection,
    /// The profile in force (`--profile`, else `default_profile`), already
    /// applied to `project` and `sources`.
    pub profile: Option<String>,
    /// `[sources.NAME]`.
    pub sources: BTreeMap<String, Entry<SourceSection>>,
    /// `[tables.NAME]`.
    pub tables: BTreeMap<String, Entry<TableSection>>,
    /// `[features.NAME]`.
    pub features: BTreeMap<String, Entry<FeatureSection>>,
    /// `[exports.NAME]`.
    pub exports: BTreeMap<String, Entry<ExportSection>>,
    /// `[models.NAME]`.
    pub models: BTreeMap<String, Entry<ModelSection>>,
    /// `[steps.NAME]`.
    pub steps: BTreeMap<String, Entry<StepSection>>,
    /// `[collections.NAME]`.
    pub collections: BTreeMap<String, Entry<CollectionSection>>,
    /// The retry, timeout and pool keys of `[project]`: every asset's defaults.
    pub defaults: PolicySection,
    /// The retry, timeout, pool and trigger keys of each asset's entry that has
    /// any, by the asset's name (read out of the entry before its own section;
    /// a model's predictions' out of `[models.NAME.predictions]`).
    pub policies: BTreeMap<String, Entry<PolicySection>>,
    /// `incremental = { ... }` of each source that has it, taken out of the
    /// entry before the connector's keys were read.
    pub incremental: BTreeMap<String, Entry<IncrementalSection>>,
    /// `[pools]`: how many assets of each pool may build at once.
    pub pools: BTreeMap<String, Entry<u32>>,
    /// `[schedules.NAME]` (not assets).
    pub schedules: BTreeMap<String, Entry<ScheduleSection>>,
    /// `[alerts.NAME]` (not assets).
    pub alerts: BTreeMap<String, Entry<AlertSection>>,
    /// `[actions.NAME]`: dashboard buttons (not assets).
    pub actions: BTreeMap<String, Entry<ActionSection>>,
    /// `[explorers.NAME]`: dashboard pages of one entity over time (not assets).
    pub explorers: BTreeMap<String, Entry<ExplorerSection>>,
    /// Entries that could not be read, by name, so that references to them are
    /// not also reported as unknown.
    pub broken: BTreeSet<String>,
    /// Problems found in this phase that do not stop the next one.
    pub diagnostics: Diagnostics,
}

impl RawProject {
    /// The location of a byte offset in the project file.
    pub fn location(&self, offset: usize) -> Location {
        Location::of_offset(&self.file, &self.text, offset)
    }
}

/// The name of the project file inside a project folder.
pub const PROJECT_FILE: &str = "sluice.toml";

/// Reads `dir/sluice.toml` and parses it into raw sections.
pub fn parse_project(dir: &Path, profile: Option<&str>) -> Result<RawProject, Diagnostics> {
    let file = dir.join(PROJECT_FILE);
    let text = std::fs::read(&file).map_err(|e| {
        let help = if e.kind() == std::io::ErrorKind::NotFound {
            "run sluice in a project folder, pass `--project DIR`, or create one with `sluice init DIR`"
        } else {
            "check the file's permissions"
        };
        Diagnostics(vec![
            Diagnostic::new(Location::new(&file, 0, 0), format!("cannot read the project file: {e}"))
                .with_help(help),
        ])
    })?;
    let text = String::from_utf8(text).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let loc = Location::of_offset(&file, &prefix, valid);
        Diagnostics(vec![
            Diagnostic::new(loc, "the project file is not valid UTF-8")
                .with_help("save it as UTF-8"),
        ])
    })?;
    parse_text(dir, &file, text, profile)
}

/// Parses project text with `profile` (else the project's `default_profile`)
/// applied; `file` is only used in messages.
pub fn parse_text(
    dir: &Path,
    file: &Path,
    text: String,
    profile: Option<&str>,
) -> Result<RawProject, Diagnostics> {
    let mut diags = Diagnostics::default();
    let loc = |offset: usize| Location::of_offset(file, &text, offset);
    let toml_error = |e: toml::de::Error, fallback: usize| {
        let offset = e.span().map_or(fallback, |s| s.start);
        Diagnostic::new(loc(offset), e.message().trim_end().to_string())
    };

    let (root, errors) = DeTable::parse_recoverable(&text);
    for e in errors {
        diags.push(toml_error(e, 0));
    }
    if !diags.is_empty() {
        // After a syntax error the rest of the document is unreliable; stop here.
        return Err(diags);
    }

    let mut root = root.into_inner();
    let project_value = root.remove("project");
    let profiles_value = root.remove("profiles");
    let profiles = profile_tables(profiles_value, &mut diags, &loc);
    let chosen = choose_profile(profile, project_value.as_ref(), &profiles, &mut diags, &loc);
    let chosen_table = chosen
        .as_deref()
        .and_then(|name| profiles.iter().find(|p| p.name == name));

    let mut project = None;
    let mut defaults = PolicySection::default();
    if let Some(mut value) = project_value {
        let key_offset = value.span().start;
        // The profile in force is checked by reading the project with it.
        for p in profiles.iter().filter(|p| Some(&p.name) != chosen.as_ref()) {
            check_profile_settings(p, &value, &mut diags, &toml_error);
        }
        if let Some(p) = chosen_table {
            overlay(&mut value, &p.settings);
        }
        if let Some(policy) = take_policy(&mut value) {
            let (section, errors) = deserialize_all::<PolicySection>(policy);
            for e in errors {
                diags.push(toml_error(e, key_offset));
            }
            defaults = section.unwrap_or_default();
        }
        let (section, errors) = deserialize_all::<ProjectSection>(value);
        for e in errors {
            diags.push(toml_error(e, key_offset));
        }
        project = section;
    }

    let mut sources = BTreeMap::new();
    let mut tables = BTreeMap::new();
    let mut features = BTreeMap::new();
    let mut exports = BTreeMap::new();
    let mut models = BTreeMap::new();
    let mut steps = BTreeMap::new();
    let mut collections = BTreeMap::new();
    let mut policies = BTreeMap::new();
    let mut incremental = BTreeMap::new();
    let mut pools = BTreeMap::new();
    let mut schedules = BTreeMap::new();
    let mut alerts = BTreeMap::new();
    let mut actions = BTreeMap::new();
    let mut explorers = BTreeMap::new();
    let mut broken = BTreeSet::new();
    for (key, mut value) in root {
        let key_offset = key.span().start;
        if key.get_ref().as_ref() == "sources" {
            for p in profiles.iter().filter(|p| Some(&p.name) != chosen.as_ref()) {
                check_source_overrides(p, &value, &mut diags, &toml_error, &loc);
            }
            if let (Some(p), DeValue::Table(entries)) = (chosen_table, value.get_mut()) {
                for (name, overrides) in &p.sources {
                    if let Some(entry) = entries.get_mut(name.as_str()) {
                        overlay(entry, overrides);
                    }
                }
            }
        }
        if ASSET_SECTIONS.contains(&key.get_ref().as_ref()) {
            take_policies(&mut value, &mut policies, &mut diags, &toml_error);
        }
        if key.get_ref().as_ref() == "sources" {
            take_incremental(&mut value, &mut incremental, &mut diags, &toml_error);
        }
        match key.get_ref().as_ref() {
            "sources" => {
                read_entries_with(
                    SourceSection::read,
                    value,
                    key_offset,
                    &mut sources,
                    &mut broken,
                    &mut diags,
                    &toml_error,
                    &loc,
                )
            }
            "tables" => read_entries(
                value,
                key_offset,
                &mut tables,
                &mut broken,
                &mut diags,
                &toml_error,
                &loc,
            ),
            "features" => read_entries(
                value,
                key_offset,
                &mut features,
                &mut broken,
                &mut diags,
                &toml_error,
                &loc,
            ),
            "exports" => read_entries(
                value,
                key_offset,
                &mut exports,
                &mut broken,
                &mut diags,
                &toml_error,
                &loc,
            ),
            "models" => read_entries(
                value,
                key_offset,
                &mut models,
                &mut broken,
                &mut diags,
                &toml_error,
                &loc,
            ),
            "steps" => read_entries(
                value,
                key_offset,
                &mut steps,
                &mut broken,
                &mut diags,
                &toml_error,
                &loc,
            ),
            "collections" => read_entries(
                value,
                key_offset,
                &mut collections,
                &mut broken,
                &mut diags,
                &toml_error,
                &loc,
            ),
            // A broken schedule is no asset, so it goes in a set of its own.
            "schedules" => read_entries(
                value,
                key_offset,
                &mut schedules,
                &mut BTreeSet::new(),
                &mut diags,
                &toml_error,
                &loc,
            ),
            // Nor is a broken alert.
            "alerts" => read_entries(
                value,
                key_offset,
                &mut alerts,
                &mut BTreeSet::new(),
                &mut diags,
                &toml_error,
                &loc,
            ),
            // Nor is a broken action.
            "actions" => read_entries(
                value,
                key_offset,
                &mut actions,
                &mut BTreeSet::new(),
                &mut diags,
                &toml_error,
                &loc,
            ),
            // Nor is a broken explorer.
            "explorers" => read_entries(
                value,
                key_offset,
                &mut explorers,
                &mut BTreeSet::new(),
                &mut diags,
                &toml_error,
                &loc,
            ),
            "pools" => {
                let span = value.span();
                let (section, errors) = deserialize_all::<BTreeMap<String, Spanned<u32>>>(value);
                for e in errors {
                    diags.push(toml_error(e, span.start));
                }
                for (name, limit) in section.unwrap_or_default() {
                    let offset = limit.span().start;
                    let value = limit.into_inner();
                    pools.insert(name, Entry { offset, value });
                }
            }
            other => diags.push(
                Diagnostic::new(loc(key_offset), format!("unknown section `{other}`")).with_help(
                    "the sections are `project`, `profiles`, `pools`, `sources`, `tables`, `features`, `exports`, `models`, `steps`, `collections`, `schedules`, `alerts`, `actions` and `explorers`",
                ),
            ),
        }
    }
    for p in &profiles {
        for (name, at) in &p.source_names {
            if !sources.contains_key(name) && !broken.contains(name) {
                let known: Vec<&str> = sources.keys().map(String::as_str).collect();
                diags.push(
                    Diagnostic::new(
                        loc(*at),
                        format!(
                            "profile `{}` overrides source `{name}`, which is not defined",
                            p.name
                        ),
                    )
                    .with_help(if known.is_empty() {
                        "define it as `[sources.NAME]`".to_string()
                    } else {
                        format!("the sources are: {}", known.join(", "))
                    }),
                );
            }
        }
    }
    let Some(project) = project else {
        if !diags.is_empty() {
            return Err(diags);
        }
        diags.push(
            Diagnostic::new(loc(0), "the `[project]` section is missing")
                .with_help("add `[project]` with `name = \"...\"` at the top of the file"),
        );
        return Err(diags);
    };
    Ok(RawProject {
        dir: dir.to_path_buf(),
        file: file.to_path_buf(),
        text,
        project,
        profile: chosen,
        sources,
        tables,
        features,
        exports,
        models,
        steps,
        collections,
        defaults,
        policies,
        incremental,
        pools,
        schedules,
        alerts,
        actions,
        explorers,
        broken,
        diagnostics: diags,
    })
}

/// The sections whose entries are assets, and so may carry [`POLICY_KEYS`].
const ASSET_SECTIONS: [&str; 7] = [
    "sources",
    "tables",
    "features",
    "exports",
    "models",
    "steps",
    "collections",
];

/// Takes the [`POLICY_KEYS`] out of a table, as a table of their own with the
/// same span (so a mistake in them is reported where it is written).
pub(crate) fn take_policy<'a>(value: &mut Spanned<DeValue<'a>>) -> Option<Spanned<DeValue<'a>>> {
    let span = value.span();
    let DeValue::Table(table) = value.get_mut() else {
        return None;
    };
    let mut taken = DeTable::new();
    for key in POLICY_KEYS {
        if let Some((k, v)) = table.remove_entry(key) {
            taken.insert(k, v);
        }
    }
    (!taken.is_empty()).then(|| Spanned::new(span, DeValue::Table(taken)))
}

/// Reads the policy keys of every entry of an asset section, leaving the
/// entries without them.
fn take_policies<'a>(
    section: &mut Spanned<DeValue<'a>>,
    out: &mut BTreeMap<String, Entry<PolicySection>>,
    diags: &mut Diagnostics,
    toml_error: &impl Fn(toml::de::Error, usize) -> Diagnostic,
) {
    let DeValue::Table(entries) = section.get_mut() else {
        return;
    };
    for (name, entry) in entries.iter_mut() {
        let offset = name.span().start;
        // A model's predictions are an asset of their own, with their own keys
        // in `[models.NAME.predictions]`.
        let predictions = match entry.get_mut() {
            DeValue::Table(t) => t.get_mut("predictions").and_then(take_policy),
            _ => None,
        };
        let own = take_policy(entry);
        let named = [
            (name.get_ref().to_string(), own),
            (crate::models::predictions_name(name.get_ref()), predictions),
        ];
        for (name, policy) in named {
            let Some(policy) = policy else {
                continue;
            };
            let (value, errors) = deserialize_all::<PolicySection>(policy);
            for e in errors {
                diags.push(toml_error(e, offset));
            }
            out.insert(
                name,
                Entry {
                    offset,
                    value: value.unwrap_or_default(),
                },
            );
        }
    }
}

/// Reads the `incremental` key of every source entry, leaving the entries
/// without it.
fn take_incremental<'a>(
    section: &mut Spanned<DeValue<'a>>,
    out: &mut BTreeMap<String, Entry<IncrementalSection>>,
    diags: &mut Diagnostics,
    toml_error: &impl Fn(toml::de::Error, usize) -> Diagnostic,
) {
    let DeValue::Table(entries) = section.get_mut() else {
        return;
    };
    for (name, entry) in entries.iter_mut() {
        let offset = name.span().start;
        let DeValue::Table(t) = entry.get_mut() else {
            continue;
        };
        let Some(value) = t.remove(INCREMENTAL_KEY) else {
            continue;
        };
        let (section, errors) = deserialize_all::<IncrementalSection>(value);
        for e in errors {
            diags.push(toml_error(e, offset));
        }
        if let Some(value) = section {
            out.insert(name.get_ref().to_string(), Entry { offset, value });
        }
    }
}

pub(crate) fn within(inner: &std::ops::Range<usize>, outer: &std::ops::Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn deserialize<'a, T: Deserialize<'a>>(value: Spanned<DeValue<'a>>) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value))
}

fn read_entries<'a, T: Deserialize<'a>>(
    value: Spanned<DeValue<'a>>,
    key_offset: usize,
    out: &mut BTreeMap<String, Entry<T>>,
    broken: &mut BTreeSet<String>,
    diags: &mut Diagnostics,
    toml_error: &impl Fn(toml::de::Error, usize) -> Diagnostic,
    loc: &impl Fn(usize) -> Location,
) {
    read_entries_with(
        deserialize_all::<T>,
        value,
        key_offset,
        out,
        broken,
        diags,
        toml_error,
        loc,
    )
}

/// [`read_entries`] with the function that reads one entry (a source's
/// chooses its connector by key first).
#[allow(clippy::too_many_arguments)]
fn read_entries_with<'a, T>(
    read: impl Fn(Spanned<DeValue<'a>>) -> (Option<T>, Vec<toml::de::Error>),
    value: Spanned<DeValue<'a>>,
    key_offset: usize,
    out: &mut BTreeMap<String, Entry<T>>,
    broken: &mut BTreeSet<String>,
    diags: &mut Diagnostics,
    toml_error: &impl Fn(toml::de::Error, usize) -> Diagnostic,
    loc: &impl Fn(usize) -> Location,
) {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        diags.push(
            Diagnostic::new(loc(span.start), "expected a table of named entries")
                .with_help("write each entry as `[section.NAME]`"),
        );
        return;
    };
    for (name, entry) in table {
        let offset = name.span().start;
        let name = name.into_inner().into_owned();
        let (value, errors) = read(entry);
        for e in errors {
            diags.push(toml_error(e, key_offset.max(offset)));
        }
        match value {
            // Read with its mistakes left out, so that compiling it reports
            // the mistakes that only compiling finds.
            Some(value) => {
                out.insert(name, Entry { offset, value });
            }
            None => {
                broken.insert(name);
            }
        }
    }
}

/// Deserializes one entry and reports every mistake in it, not only the first:
/// after each error the key it is about is left out and the entry is read
/// again. Returns the entry read without its mistakes, when that is possible
/// (a required key is missing: it is not), and the mistakes.
pub(crate) fn deserialize_all<'a, T: Deserialize<'a>>(
    value: Spanned<DeValue<'a>>,
) -> (Option<T>, Vec<toml::de::Error>) {
    let mut value = value;
    let mut errors = vec![];
    let mut left_out: Vec<String> = vec![];
    // Each round leaves a key out, so the rounds are bounded by the keys.
    for _ in 0..256 {
        let e = match deserialize::<T>(value.clone()) {
            Ok(t) => return (Some(t), errors),
            Err(e) => e,
        };
        // "missing field `x`" after `x` was left out for its own mistake
        // repeats that mistake.
        let repeated = missing_field(e.message()).is_some_and(|f| left_out.iter().any(|k| k == f));
        let span = e.span();
        if !repeated {
            errors.push(e);
        }
        let Some(span) = span else {
            return (None, errors);
        };
        match leave_out(&mut value, &span) {
            Some(key) => left_out.push(key),
            None => return (None, errors),
        }
    }
    (None, errors)
}

/// The field named by serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// Removes the innermost key whose name or value holds `span`; returns its name.
/// Every level is searched, whatever its own span: a table written under its
/// own header (`[features.x.aggregates]`) has no span around its keys.
fn leave_out(value: &mut Spanned<DeValue<'_>>, span: &std::ops::Range<usize>) -> Option<String> {
    match value.get_mut() {
        DeValue::Table(table) => {
            let mut hit = None;
            for (key, v) in table.iter_mut() {
                if let Some(inner) = leave_out(v, span) {
                    return Some(inner);
                }
                if hit.is_none() && (within(span, &key.span()) || within(span, &v.span())) {
                    hit = Some(key.get_ref().to_string());
                }
            }
            let hit = hit?;
            table.remove(hit.as_str());
            Some(hit)
        }
        DeValue::Array(items) => items
            .as_mut()
            .iter_mut()
            .find_map(|item| leave_out(item, span)),
        _ => None,
    }
}
