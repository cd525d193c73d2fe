//! `[profiles.NAME]`: a profile holds settings of `[project]` and of sources,
//! laid over the spanned TOML values before the sections are read, so that a
//! mistake in an override is reported at the profile's own line.

use sluice_core::Location;
use toml::de::DeValue;

use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{deserialize_all, within};
use crate::raw::{ProjectSection, SourceSection};

/// One `[profiles.NAME]`: the project settings it overrides and, under
/// `[profiles.NAME.sources.SOURCE]`, the settings of each source it overrides.
pub(crate) struct Profile<'a> {
    /// Its name.
    pub(crate) name: String,
    /// The profile's whole span, to tell its mistakes from the project's own.
    span: std::ops::Range<usize>,
    /// The `[project]` settings it overrides.
    pub(crate) settings: toml::Spanned<DeValue<'a>>,
    /// The settings it overrides, by source.
    pub(crate) sources: Vec<(String, toml::Spanned<DeValue<'a>>)>,
    /// The sources it names, with where each is named.
    pub(crate) source_names: Vec<(String, usize)>,
}

impl Profile<'_> {
    /// Whether `span` is inside something the profile wrote (its sub-tables
    /// may be written anywhere in the file, under their own headers).
    fn covers(&self, span: &std::ops::Range<usize>) -> bool {
        within(span, &self.span)
            || covers(&self.settings, span)
            || self.sources.iter().any(|(_, v)| covers(v, span))
    }
}

/// Whether `span` is inside `value`, one of its keys or one of its values.
fn covers(value: &toml::Spanned<DeValue<'_>>, span: &std::ops::Range<usize>) -> bool {
    within(span, &value.span())
        || match value.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .any(|(k, v)| within(span, &k.span()) || covers(v, span)),
            DeValue::Array(items) => items.as_ref().iter().any(|v| covers(v, span)),
            _ => false,
        }
}

/// Reads `[profiles]` into its profiles; the shape of each is checked later,
/// against the sections it overrides.
pub(crate) fn profile_tables<'a>(
    value: Option<toml::Spanned<DeValue<'a>>>,
    diags: &mut Diagnostics,
    loc: &impl Fn(usize) -> Location,
) -> Vec<Profile<'a>> {
    let Some(value) = value else {
        return vec![];
    };
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        diags.push(
            Diagnostic::new(loc(span.start), "expected a table of named profiles")
                .with_help("write each profile as `[profiles.NAME]`"),
        );
        return vec![];
    };
    let mut out = vec![];
    for (name, value) in table {
        let span = value.span();
        let name_offset = name.span().start;
        let name = name.into_inner().into_owned();
        let DeValue::Table(mut settings) = value.into_inner() else {
            diags.push(
                Diagnostic::new(loc(name_offset), format!("profile `{name}` is not a table"))
                    .with_help("write it as `[profiles.NAME]` with settings under it"),
            );
            continue;
        };
        let mut sources = vec![];
        let mut source_names = vec![];
        if let Some(value) = settings.remove("sources") {
            let at = value.span().start;
            match value.into_inner() {
                DeValue::Table(t) => {
                    for (source, v) in t {
                        source_names.push((source.get_ref().to_string(), source.span().start));
                        sources.push((source.into_inner().into_owned(), v));
                    }
                }
                _ => diags.push(
                    Diagnostic::new(loc(at), "`sources` in a profile is a table of sources")
                        .with_help(
                            "write `[profiles.NAME.sources.SOURCE]` with the settings it overrides",
                        ),
                ),
            }
        }
        if let Some(value) = settings.get("default_profile") {
            diags.push(
                Diagnostic::new(
                    loc(value.span().start),
                    "a profile cannot choose the default profile",
                )
                .with_help("set `default_profile` in `[project]`"),
            );
            settings.remove("default_profile");
        }
        out.push(Profile {
            name,
            settings: toml::Spanned::new(span.clone(), DeValue::Table(settings)),
            span,
            sources,
            source_names,
        });
    }
    out
}

/// The profile in force: the one asked for, else the project's default.
pub(crate) fn choose_profile(
    asked: Option<&str>,
    project: Option<&toml::Spanned<DeValue<'_>>>,
    profiles: &[Profile<'_>],
    diags: &mut Diagnostics,
    loc: &impl Fn(usize) -> Location,
) -> Option<String> {
    let default = project.and_then(|p| match p.get_ref() {
        DeValue::Table(t) => t.get("default_profile").and_then(|v| match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span().start)),
            _ => None,
        }),
        _ => None,
    });
    let (name, offset) = match (asked, default) {
        (Some(name), _) => (name.to_string(), 0),
        (None, Some((name, offset))) => (name, offset),
        (None, None) => return None,
    };
    if profiles.iter().any(|p| p.name == name) {
        return Some(name);
    }
    let known: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    diags.push(
        Diagnostic::new(loc(offset), format!("unknown profile `{name}`")).with_help(
            if known.is_empty() {
                "define it as `[profiles.NAME]` in the project file".to_string()
            } else {
                format!("the profiles are: {}", known.join(", "))
            },
        ),
    );
    None
}

/// Reports the mistakes in a profile's project settings — whether or not it
/// is the profile in force — by reading `[project]` with them applied.
pub(crate) fn check_profile_settings(
    profile: &Profile<'_>,
    project: &toml::Spanned<DeValue<'_>>,
    diags: &mut Diagnostics,
    toml_error: &impl Fn(toml::de::Error, usize) -> Diagnostic,
) {
    let mut merged = project.clone();
    overlay(&mut merged, &profile.settings);
    for e in deserialize_with_policy::<ProjectSection>(merged) {
        if e.span().is_some_and(|s| profile.covers(&s)) {
            diags.push(toml_error(e, profile.span.start));
        }
    }
}

/// Reports the mistakes in a profile's source overrides, by reading each
/// overridden source with them applied.
pub(crate) fn check_source_overrides(
    profile: &Profile<'_>,
    sources: &toml::Spanned<DeValue<'_>>,
    diags: &mut Diagnostics,
    toml_error: &impl Fn(toml::de::Error, usize) -> Diagnostic,
    loc: &impl Fn(usize) -> Location,
) {
    let DeValue::Table(entries) = sources.get_ref() else {
        return;
    };
    for (name, overrides) in &profile.sources {
        let Some(entry) = entries.get(name.as_str()) else {
            continue;
        };
        if !matches!(overrides.get_ref(), DeValue::Table(_)) {
            diags.push(
                Diagnostic::new(
                    loc(overrides.span().start),
                    format!(
                        "profile `{}`: the overrides of `{name}` are not a table",
                        profile.name
                    ),
                )
                .with_help("write `[profiles.NAME.sources.SOURCE]` with the settings it overrides"),
            );
            continue;
        }
        let mut merged = entry.clone();
        overlay(&mut merged, overrides);
        let policy = crate::parse::take_policy(&mut merged);
        let mut errors = SourceSection::read(merged).1;
        if let Some(policy) = policy {
            errors.extend(deserialize_all::<crate::raw::PolicySection>(policy).1);
        }
        for e in errors {
            if e.span().is_some_and(|s| profile.covers(&s)) {
                diags.push(toml_error(e, profile.span.start));
            }
        }
    }
}

/// Writes `over`'s keys into `base`: tables merge key by key, anything else
/// replaces. Values keep their own spans, so a mistake in an override is
/// reported in the profile.
pub(crate) fn overlay<'a>(
    base: &mut toml::Spanned<DeValue<'a>>,
    over: &toml::Spanned<DeValue<'a>>,
) {
    let (DeValue::Table(base), DeValue::Table(over)) = (base.get_mut(), over.get_ref()) else {
        *base = over.clone();
        return;
    };
    for (key, value) in over {
        match base.get_mut(key.get_ref().as_ref()) {
            Some(existing)
                if matches!(
                    (existing.get_ref(), value.get_ref()),
                    (DeValue::Table(_), DeValue::Table(_))
                ) =>
            {
                overlay(existing, value)
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The mistakes of a section read with its policy keys (retries, timeout...)
/// read apart, as the file's reading does.
fn deserialize_with_policy<'a, T: serde::Deserialize<'a>>(
    mut value: toml::Spanned<DeValue<'a>>,
) -> Vec<toml::de::Error> {
    let policy = crate::parse::take_policy(&mut value);
    let mut errors = deserialize_all::<T>(value).1;
    if let Some(policy) = policy {
        errors.extend(deserialize_all::<crate::raw::PolicySection>(policy).1);
    }
    errors
}
