//! `[collections.NAME]`: documents from files or from an asset's rows, chunked.
//! Compiling checks that the documents come from exactly one place, that the
//! keys of the other are absent, the format word and the sizes; `from` is
//! resolved in `refs.rs`.

use std::path::{Path, PathBuf};

use sluice_core::AssetKind;

use super::{Builder, Definition, ListFilesError, fingerprint, list_files};
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::CollectionSection;

/// Bumped when the same documents and settings give other chunks (the
/// chunker's rules changed), so that collections are chunked again.
const CHUNKER: &str = "chunker-1";

/// The format words `format` takes.
pub const FORMATS: [&str; 4] = ["markdown", "rst", "html", "text"];

/// A compiled collection.
#[derive(Debug, Clone)]
pub struct CollectionDef {
    /// Where the documents come from.
    pub documents: Documents,
    /// The documents' markup word (one of [`FORMATS`]); `None`: by file name
    /// (files) or plain text (rows).
    pub format: Option<String>,
    /// The most tokens a chunk's model input may have.
    pub max_tokens: usize,
    /// Tokens repeated between consecutive chunks of a section.
    pub overlap: usize,
}

/// Where a collection's documents come from.
#[derive(Debug, Clone)]
pub enum Documents {
    /// Files: each one a document, named by its path relative to `root`.
    Files {
        /// The path or glob as written.
        path: String,
        /// The path or glob resolved against the project folder.
        pattern: PathBuf,
        /// The project folder: document ids are paths relative to it.
        root: PathBuf,
    },
    /// An asset's rows: each one a document.
    Rows {
        /// The asset.
        from: String,
        /// Its column naming each document.
        id: String,
        /// Its column holding the text.
        text: String,
        /// Its columns copied onto the chunks.
        metadata: Vec<String>,
    },
}

impl CollectionDef {
    /// The document files now, sorted (none for a collection of rows).
    pub fn files(&self) -> Result<Vec<PathBuf>, ListFilesError> {
        match &self.documents {
            Documents::Files { pattern, .. } => list_files(pattern),
            Documents::Rows { .. } => Ok(vec![]),
        }
    }

    /// A file's document id: its path relative to the project folder, with `/`.
    pub fn document_id(&self, file: &Path) -> String {
        let root = match &self.documents {
            Documents::Files { root, .. } => root.as_path(),
            Documents::Rows { .. } => Path::new(""),
        };
        let relative = file.strip_prefix(root).unwrap_or(file);
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Compiles `[collections.NAME]`.
pub(super) fn compile(b: &mut Builder<'_>, name: &str, entry: &Entry<CollectionSection>) {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let Some(asset_name) = b.claim(name, AssetKind::Collection, &at) else {
        return;
    };
    let section = &entry.value;
    let Some(def) = compile_collection(raw, name, section, &at, &mut b.diags) else {
        return;
    };
    let hashed = CollectionSection {
        description: None,
        ..section.clone()
    };
    let fingerprint = fingerprint(&[
        "collection",
        CHUNKER,
        &serde_json::to_string(&hashed).unwrap_or_default(),
    ]);
    let asset = b.add(
        asset_name,
        at,
        Definition::Collection(Box::new(def)),
        fingerprint,
    );
    asset.description = section.description.clone();
}

fn compile_collection(
    raw: &RawProject,
    name: &str,
    s: &CollectionSection,
    at: &sluice_core::Location,
    diags: &mut Diagnostics,
) -> Option<CollectionDef> {
    let here =
        |span: Option<std::ops::Range<usize>>| span.map_or(at.clone(), |r| raw.location(r.start));
    let documents = match (&s.path, &s.from) {
        (Some(path), None) => {
            for (key, given) in [("id", s.id.is_some()), ("text", s.text.is_some())] {
                if given {
                    diags.push(
                        Diagnostic::new(
                            here(Some(path.span())),
                            format!("collection `{name}` reads files (`path`), which have no `{key}` column"),
                        )
                        .with_help(format!("remove `{key}`, or read an asset's rows with `from`")),
                    );
                }
            }
            if let Some(m) = s.metadata.first() {
                diags.push(
                    Diagnostic::new(
                        here(Some(m.span())),
                        format!(
                            "collection `{name}` reads files, which have no `metadata` columns"
                        ),
                    )
                    .with_help(
                        "a file's chunks carry its path, format and title; remove `metadata`",
                    ),
                );
            }
            Documents::Files {
                path: path.get_ref().clone(),
                pattern: raw.dir.join(path.get_ref()),
                root: raw.dir.clone(),
            }
        }
        (None, Some(from)) => {
            let mut missing = vec![];
            if s.id.is_none() {
                missing.push("`id` (the column naming each document)");
            }
            if s.text.is_none() {
                missing.push("`text` (the column holding its text)");
            }
            if !missing.is_empty() {
                diags.push(
                    Diagnostic::new(
                        here(Some(from.span())),
                        format!(
                            "collection `{name}` reads `{}`'s rows but does not say {}",
                            from.get_ref(),
                            missing.join(" or ")
                        ),
                    )
                    .with_help("add `id = \"COLUMN\"` and `text = \"COLUMN\"`"),
                );
                return None;
            }
            Documents::Rows {
                from: from.get_ref().clone(),
                id: s
                    .id
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default(),
                text: s
                    .text
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default(),
                metadata: s.metadata.iter().map(|c| c.get_ref().clone()).collect(),
            }
        }
        (Some(_), Some(from)) => {
            diags.push(
                Diagnostic::new(
                    here(Some(from.span())),
                    format!("collection `{name}` has both `path` and `from`"),
                )
                .with_help("its documents come from files (`path`) or from an asset's rows (`from`), not both"),
            );
            return None;
        }
        (None, None) => {
            diags.push(
                Diagnostic::new(at.clone(), format!("collection `{name}` has no documents"))
                    .with_help(
                        "add `path = \"docs/**/*.md\"`, or `from = \"ASSET\"` with `id` and `text`",
                    ),
            );
            return None;
        }
    };
    let format = match &s.format {
        Some(f) if !FORMATS.contains(&f.get_ref().as_str()) => {
            diags.push(
                Diagnostic::new(
                    here(Some(f.span())),
                    format!("unknown format `{}`", f.get_ref()),
                )
                .with_help(format!("use one of {}", FORMATS.join(", "))),
            );
            None
        }
        f => f.as_ref().map(|f| f.get_ref().clone()),
    };
    let max_tokens = s.max_tokens.as_ref().map_or(256, |m| *m.get_ref() as usize);
    if !(16..=8192).contains(&max_tokens) {
        diags.push(
            Diagnostic::new(
                here(s.max_tokens.as_ref().map(|m| m.span())),
                format!("`max_tokens = {max_tokens}` is outside 16..=8192"),
            )
            .with_help("all-MiniLM-L6-v2 reads 256 tokens; most models read 512 or fewer"),
        );
    }
    let overlap = s.overlap.as_ref().map_or(32, |o| *o.get_ref() as usize);
    if overlap * 2 > max_tokens {
        diags.push(
            Diagnostic::new(
                here(s.overlap.as_ref().map(|o| o.span())),
                format!("`overlap = {overlap}` is more than half of `max_tokens` ({max_tokens})"),
            )
            .with_help(
                "chunks would repeat more than they add; an eighth of `max_tokens` is usual",
            ),
        );
    }
    Some(CollectionDef {
        documents,
        format,
        max_tokens,
        overlap,
    })
}
