//! Phase one of loading: the raw text of `sluice.toml` into the raw structs of
//! [`crate::raw`], collecting every syntax and shape error with its position.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_core::Location;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::diag::{Diagnostic, Diagnostics};
use crate::raw::{
    ExportSection, FeatureSection, ModelSection, ProfileSection, ProjectSection, SourceSection,
    TableSection,
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
    /// `[profiles.NAME]`.
    pub profiles: BTreeMap<String, Entry<ProfileSection>>,
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
pub fn parse_project(dir: &Path) -> Result<RawProject, Diagnostics> {
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
    parse_text(dir, &file, text)
}

/// Parses project text; `file` is only used in messages.
pub fn parse_text(dir: &Path, file: &Path, text: String) -> Result<RawProject, Diagnostics> {
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

    let mut project = None;
    let mut profiles = BTreeMap::new();
    let mut sources = BTreeMap::new();
    let mut tables = BTreeMap::new();
    let mut features = BTreeMap::new();
    let mut exports = BTreeMap::new();
    let mut models = BTreeMap::new();
    let mut broken = BTreeSet::new();
    for (key, value) in root.into_inner() {
        let key_offset = key.span().start;
        match key.get_ref().as_ref() {
            "project" => match deserialize::<ProjectSection>(value) {
                Ok(p) => project = Some(p),
                Err(e) => diags.push(toml_error(e, key_offset)),
            },
            "profiles" => {
                let mut ignored = BTreeSet::new();
                read_entries(
                    value,
                    key_offset,
                    &mut profiles,
                    &mut ignored,
                    &mut diags,
                    &toml_error,
                    &loc,
                )
            }
            "sources" => read_entries(
                value,
                key_offset,
                &mut sources,
                &mut broken,
                &mut diags,
                &toml_error,
                &loc,
            ),
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
            other => diags.push(
                Diagnostic::new(loc(key_offset), format!("unknown section `{other}`")).with_help(
                    "the sections are `project`, `profiles`, `sources`, `tables`, `features`, `exports` and `models`",
                ),
            ),
        }
    }
    let Some(project) = project else {
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
        profiles,
        sources,
        tables,
        features,
        exports,
        models,
        broken,
        diagnostics: diags,
    })
}

fn deserialize<'a, T: Deserialize<'a>>(
    value: toml::Spanned<DeValue<'a>>,
) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value))
}

fn read_entries<'a, T: Deserialize<'a>>(
    value: toml::Spanned<DeValue<'a>>,
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
        match deserialize::<T>(entry) {
            Ok(value) => {
                out.insert(name.into_inner().into_owned(), Entry { offset, value });
            }
            Err(e) => {
                diags.push(toml_error(e, key_offset.max(offset)));
                broken.insert(name.into_inner().into_owned());
            }
        }
    }
}
