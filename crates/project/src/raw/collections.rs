//! `[collections.NAME]`: documents made searchable — files of a folder, or the
//! rows of an asset — chunked by their structure.

use serde::Deserialize;
use toml::Spanned;

/// `[collections.NAME]`: documents from files (`path`) or from an asset's rows
/// (`from`, `id`, `text`), cut into chunks published as a table.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSection {
    /// A file or glob of documents, relative to the project folder
    /// (`docs/**/*.md`). Either this or `from`.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// `markdown`, `rst`, `html` or `text`: how the files are written.
    /// Default: from each file's name (`.md`, `.rst`/`.rst.txt`, `.html`;
    /// anything else is plain text).
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    /// An asset whose rows are the documents, one per row. Either this or `path`.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// With `from`: the column naming each document (unique).
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    /// With `from`: the column holding each document's text (Markdown is read
    /// as `format` says; default plain text).
    #[serde(default)]
    pub text: Option<Spanned<String>>,
    /// With `from`: columns copied onto each of a document's chunks, to filter
    /// searches by. Default: none.
    #[serde(default)]
    pub metadata: Vec<Spanned<String>>,
    /// The most tokens of the embedding model a chunk's input may have, its
    /// heading path included. Default: 256 (all-MiniLM-L6-v2's input).
    #[serde(default)]
    pub max_tokens: Option<Spanned<u32>>,
    /// Tokens repeated from the end of a chunk at the start of the next one of
    /// the same section, in whole blocks, lines or sentences. Default: 32.
    #[serde(default)]
    pub overlap: Option<Spanned<u32>>,
    /// How chunks are embedded: a local model's name (default
    /// `"all-minilm-l6-v2"`, from `$SLUICE_MODELS`), `"none"` (text search
    /// only), or an OpenAI-compatible service (`{ url, model, key }`).
    #[serde(default)]
    pub embedding: Option<Spanned<EmbeddingSection>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `embedding = "MODEL" | "none" | { url, model, key, batch }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum EmbeddingSection {
    /// A local model's folder name, or `none`.
    Name(String),
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Service(EmbeddingService),
}

/// An OpenAI-compatible embeddings endpoint.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingService {
    /// The endpoint (`https://api.openai.com/v1/embeddings`).
    pub url: sluice_core::Secret,
    /// The model the service runs (`text-embedding-3-small`).
    pub model: String,
    /// The API key, as `${ENV_VAR}`: sent as `Authorization: Bearer`.
    #[serde(default)]
    pub key: Option<sluice_core::Secret>,
    /// Texts per request. Default: 64.
    #[serde(default)]
    pub batch: Option<u32>,
    /// Requests per second at most. Default: no limit.
    #[serde(default)]
    pub rate: Option<f64>,
}
