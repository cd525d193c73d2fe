//! `[steps.NAME]`: a command (a script, a notebook run by `jupyter nbconvert`)
//! run over its inputs' rows, whose output file becomes a table.

use indexmap::IndexMap;
use serde::Deserialize;
use sluice_core::Secret;
use toml::Spanned;

use super::*;

/// `[steps.NAME]`: a command sluice runs in the project folder with its
/// inputs' pinned versions as Parquet files.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepSection {
    /// The program and its arguments, as a list (`["python3", "steps/score.py"]`);
    /// never a shell string. A relative program path with a `/` is resolved
    /// against the project folder; a bare name is looked up on `PATH`.
    pub command: Spanned<Vec<String>>,
    /// The assets the command reads, handed to it as Parquet files at the
    /// versions the run pinned. Default: none.
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    /// The file the command writes, relative to the project folder, ending in
    /// `.parquet` or `.csv` (or with `format`); committed as the step's table.
    /// Default: none — the step publishes no table, only that it ran.
    #[serde(default)]
    pub output: Option<Spanned<String>>,
    /// `parquet` or `csv`: the output's format. Default: from its extension.
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    /// Globs of files the command depends on (`["steps/*.py"]`), relative to
    /// the project folder: a change in their content rebuilds the step. Each
    /// must match a file. Default: none.
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    /// Environment variables set for the command, `${VAR}` expanded from
    /// sluice's environment only when the command starts (secrets): the text
    /// as written is what the fingerprint hashes and what is shown. Default: none.
    #[serde(default)]
    pub env: IndexMap<String, Secret>,
    /// What the output's rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}
