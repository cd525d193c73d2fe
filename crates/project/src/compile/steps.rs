//! `[steps.NAME]`: a command run over its inputs' rows. Compiling checks what
//! needs no run: the command is a non-empty list, each `files` glob matches a
//! file, the output is a Parquet or CSV path inside the project, the `env`
//! names are variable names. Its inputs are resolved in `refs.rs`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use sluice_core::{AssetKind, Secret};

use super::{Builder, Definition, FilesDef, fingerprint};
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::{FileFormat, FileSourceSection, StepSection};

/// A compiled step.
#[derive(Debug, Clone)]
pub struct StepDef {
    /// The program and its arguments, as written.
    pub command: Vec<String>,
    /// The project folder, where the command runs.
    pub dir: PathBuf,
    /// The input assets, as written (resolved into the asset's inputs).
    pub inputs: Vec<String>,
    /// The `files` globs, as written; resolved against `dir`.
    pub files: Vec<String>,
    /// Variables set for the command, values as written (`${VAR}` unexpanded).
    pub env: IndexMap<String, Secret>,
    /// The file the command writes, if it declares one.
    pub output: Option<StepOutput>,
}

/// The file a step writes and sluice commits as its table.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// The file, absolute (what `SLUICE_OUTPUT` holds).
    pub path: PathBuf,
    /// Parquet or CSV.
    pub format: FileFormat,
    /// The file read as a source is (CSV types inferred, errors with line
    /// and column), so that the step's table is read by the source readers.
    pub read: FilesDef,
}

/// Why the files of a step's `files` could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum StepFilesError {
    /// A glob that is not one.
    #[error("`files`: invalid glob `{pattern}`: {message}")]
    Pattern {
        /// The glob as written.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// A glob that matches no file.
    #[error(
        "`files`: no file matches `{pattern}`\n  help: the globs are relative to the project folder; fix or remove it"
    )]
    NoMatch {
        /// The glob as written.
        pattern: String,
    },
    /// A folder could not be listed.
    #[error("`files`: cannot list `{pattern}`: {source}")]
    Read {
        /// The glob as written.
        pattern: String,
        /// The I/O error, with the path.
        source: glob::GlobError,
    },
}

impl StepFilesError {
    /// Listing failed on I/O (by its kind) or on the globs (permanent).
    pub fn class(&self) -> sluice_core::ErrorClass {
        match self {
            StepFilesError::Read { source, .. } => sluice_core::ErrorClass::of_io(source.error()),
            _ => sluice_core::ErrorClass::Permanent,
        }
    }
}

impl StepDef {
    /// The program to start: a relative path with a `/` is resolved against
    /// the project folder, a bare name is looked up on `PATH`.
    pub fn program(&self) -> PathBuf {
        let program = self.command.first().map_or("", String::as_str);
        let path = Path::new(program);
        if path.is_relative() && program.contains('/') {
            self.dir.join(path)
        } else {
            path.to_path_buf()
        }
    }

    /// The files its `files` globs match now, sorted, each once; every glob
    /// must match at least one file.
    pub fn file_list(&self) -> Result<Vec<PathBuf>, StepFilesError> {
        let mut out = Vec::new();
        for pattern in &self.files {
            let full = self.dir.join(pattern);
            let full = full.to_string_lossy();
            let entries = glob::glob(&full).map_err(|e| StepFilesError::Pattern {
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
            let mut matched = false;
            for entry in entries {
                let path = entry.map_err(|source| StepFilesError::Read {
                    pattern: pattern.clone(),
                    source,
                })?;
                if path.is_file() {
                    matched = true;
                    out.push(path);
                }
            }
            if !matched {
                return Err(StepFilesError::NoMatch {
                    pattern: pattern.clone(),
                });
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// Compiles `[steps.NAME]`.
pub(super) fn compile(b: &mut Builder<'_>, name: &str, entry: &Entry<StepSection>) {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let Some(asset_name) = b.claim(name, AssetKind::Step, &at) else {
        return;
    };
    let section = &entry.value;
    let def = compile_step(raw, section, &mut b.diags);
    // Everything but the description; `env` as written, never its values.
    let hashed = StepSection {
        description: None,
        ..section.clone()
    };
    let fingerprint = fingerprint(&["step", &serde_json::to_string(&hashed).unwrap_or_default()]);
    let contract = b.contract(section.contract.as_ref());
    if !contract.is_empty() && def.output.is_none() {
        b.diags.push(
            Diagnostic::new(
                at.clone(),
                format!("step `{name}` has a contract but no `output` for it to check"),
            )
            .with_help("declare `output = \"out/NAME.parquet\"`, or remove the contract"),
        );
    }
    let asset = b.add(asset_name, at, Definition::Step(Box::new(def)), fingerprint);
    asset.contract = contract;
    asset.description = section.description.clone();
}

fn compile_step(raw: &RawProject, section: &StepSection, diags: &mut Diagnostics) -> StepDef {
    let command = section.command.get_ref().clone();
    let command_at = raw.location(section.command.span().start);
    match command.first() {
        None => diags.push(
            Diagnostic::new(command_at, "the step's `command` is empty")
                .with_help("write the program and its arguments: `command = [\"python3\", \"steps/score.py\"]`"),
        ),
        Some(p) if p.trim().is_empty() => diags.push(
            Diagnostic::new(command_at, "the step's `command` names no program")
                .with_help("the first item is the program to run"),
        ),
        Some(_) => {}
    }
    let def = StepDef {
        command,
        dir: raw.dir.clone(),
        inputs: section.inputs.iter().map(|i| i.get_ref().clone()).collect(),
        files: section.files.iter().map(|f| f.get_ref().clone()).collect(),
        env: section.env.clone(),
        output: None,
    };
    for (i, pattern) in section.files.iter().enumerate() {
        let one = StepDef {
            files: vec![def.files[i].clone()],
            ..def.clone()
        };
        if let Err(e) = one.file_list() {
            diags.push(Diagnostic::new(
                raw.location(pattern.span().start),
                e.to_string(),
            ));
        }
    }
    for key in section.env.keys() {
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let problem = if !valid {
            Some(format!("`{key}` is not an environment variable name"))
        } else if key.starts_with("SLUICE_") {
            Some(format!(
                "`{key}`: names starting with `SLUICE_` are set by sluice"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            diags.push(
                Diagnostic::new(
                    raw.location(section.command.span().start),
                    format!("`env`: {problem}"),
                )
                .with_help("use letters, digits and `_`, not starting with a digit or `SLUICE_`"),
            );
        }
    }
    let output = section
        .output
        .as_ref()
        .and_then(|o| compile_output(raw, section, o, diags));
    if section.output.is_none()
        && let Some(f) = &section.format
    {
        diags.push(
            Diagnostic::new(
                raw.location(f.span().start),
                "`format` applies to the step's `output`, which it does not declare",
            )
            .with_help("declare `output`, or remove `format`"),
        );
    }
    StepDef { output, ..def }
}

/// The output file: a relative path inside the project, Parquet or CSV.
fn compile_output(
    raw: &RawProject,
    section: &StepSection,
    output: &toml::Spanned<String>,
    diags: &mut Diagnostics,
) -> Option<StepOutput> {
    let text = output.get_ref();
    let at = raw.location(output.span().start);
    let relative = Path::new(text);
    let inside = !text.is_empty()
        && relative.is_relative()
        && relative.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
    if !inside || text.contains(['*', '?', '[']) {
        diags.push(
            Diagnostic::new(at, format!("`output = \"{text}\"` is not a file path inside the project"))
                .with_help("write a path relative to the project folder, without `..` or glob characters: `output = \"out/scores.parquet\"`"),
        );
        return None;
    }
    let format = match &section.format {
        Some(f) => match f.get_ref().as_str() {
            "parquet" => FileFormat::Parquet,
            "csv" => FileFormat::Csv,
            other => {
                diags.push(
                    Diagnostic::new(
                        raw.location(f.span().start),
                        format!("unknown step output format `{other}`"),
                    )
                    .with_help("write `format = \"parquet\"` or `format = \"csv\"`"),
                );
                return None;
            }
        },
        None => match super::format_of(relative) {
            Some(f @ (FileFormat::Parquet | FileFormat::Csv)) => f,
            _ => {
                diags.push(
                    Diagnostic::new(at, format!("cannot tell the format of `{text}`")).with_help(
                        "end the path in .parquet or .csv, or add `format = \"parquet\"`",
                    ),
                );
                return None;
            }
        },
    };
    let path = raw.dir.join(relative);
    let config = FileSourceSection {
        path: output.clone(),
        format: Some(format),
        delimiter: None,
        quote: None,
        header: None,
        names: None,
        null: Vec::new(),
        columns: IndexMap::new(),
        infer_rows: None,
        timezone: None,
        widths: None,
        formats: IndexMap::new(),
        partitioned: None,
        contract: None,
        description: None,
    };
    Some(StepOutput {
        read: FilesDef {
            config,
            format,
            pattern: path.clone(),
        },
        path,
        format,
    })
}
