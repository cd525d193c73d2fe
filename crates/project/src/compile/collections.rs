//! `[collections.NAME]`: documents from files or from an asset's rows, chunked.
//! Compiling checks that the documents come from exactly one place, that the
//! keys of the other are absent, the format word and the sizes; `from` is
//! resolved in `refs.rs`.

use std::path::{Path, PathBuf};

use sluice_core::{AssetKind, Secret};

use super::{Builder, Definition, ListFilesError, fingerprint, list_files};
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::{Entry, RawProject};
use crate::raw::{CollectionSection, EmbeddingSection};

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
    /// How chunks are embedded.
    pub embedding: Embedding,
}

/// The model a collection's chunks are embedded with.
#[derive(Debug, Clone, PartialEq)]
pub enum Embedding {
    /// None: the collection is searched by text only.
    None,
    /// A local model: a folder of `$SLUICE_MODELS` holding `model.onnx` and
    /// `tokenizer.json`.
    Local {
        /// The folder's name (`all-minilm-l6-v2`).
        model: String,
    },
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Service {
        /// The endpoint; may hold `${ENV}`.
        url: Secret,
        /// The service's model name.
        model: String,
        /// The API key, `${ENV}`.
        key: Option<Secret>,
        /// Texts per request.
        batch: usize,
        /// Requests per second at most.
        rate: Option<f64>,
    },
}

/// The local model collections use unless they name another.
pub const DEFAULT_EMBEDDING: &str = "all-minilm-l6-v2";

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
    let embedding = embedding(s, name, &here, diags);
    Some(CollectionDef {
        documents,
        format,
        max_tokens,
        overlap,
        embedding,
    })
}

fn embedding(
    s: &CollectionSection,
    name: &str,
    here: &dyn Fn(Option<std::ops::Range<usize>>) -> sluice_core::Location,
    diags: &mut Diagnostics,
) -> Embedding {
    let Some(setting) = &s.embedding else {
        return Embedding::Local {
            model: DEFAULT_EMBEDDING.to_string(),
        };
    };
    let at = here(Some(setting.span()));
    match setting.get_ref() {
        EmbeddingSection::Name(word) if word == "none" => Embedding::None,
        EmbeddingSection::Name(model) => {
            let plain = !model.is_empty()
                && model
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !model.starts_with('.');
            if !plain {
                diags.push(
                    Diagnostic::new(at, format!("collection `{name}`: `embedding = {model:?}` is not a model's folder name"))
                        .with_help(format!("write `\"{DEFAULT_EMBEDDING}\"` (the default), `\"none\"`, or `{{ url = \"...\", model = \"...\", key = \"${{API_KEY}}\" }}`")),
                );
            }
            Embedding::Local {
                model: model.clone(),
            }
        }
        EmbeddingSection::Service(service) => {
            let shown = service.url.redacted();
            let lower = shown.to_ascii_lowercase();
            if !(shown.starts_with("${")
                || lower.starts_with("http://")
                || lower.starts_with("https://"))
            {
                diags.push(
                    Diagnostic::new(at.clone(), format!("collection `{name}`: `embedding.url` = `{shown}` is not an http:// or https:// URL"))
                        .with_help("write the endpoint's full URL, e.g. `https://api.openai.com/v1/embeddings`"),
                );
            }
            if let Some(key) = &service.key
                && key.variables().is_empty()
            {
                diags.push(
                    Diagnostic::new(at.clone(), format!("collection `{name}`: `embedding.key` is written in the project file"))
                        .with_help("put the key in an environment variable and write `key = \"${NAME}\"`; the project file is not a place for secrets"),
                );
            }
            let batch = service.batch.map_or(64, |b| b as usize);
            if !(1..=2048).contains(&batch) {
                diags.push(
                    Diagnostic::new(
                        at.clone(),
                        format!(
                            "collection `{name}`: `embedding.batch = {batch}` is outside 1..=2048"
                        ),
                    )
                    .with_help("64 texts per request suits most services"),
                );
            }
            if let Some(rate) = service.rate
                && !(rate.is_finite() && rate > 0.0)
            {
                diags.push(
                    Diagnostic::new(at, format!("collection `{name}`: `embedding.rate = {rate}` is not a positive number of requests per second"))
                        .with_help("remove `rate` for no limit"),
                );
            }
            Embedding::Service {
                url: service.url.clone(),
                model: service.model.clone(),
                key: service.key.clone(),
                batch,
                rate: service.rate,
            }
        }
    }
}
