//! Collections: documents (Markdown, reStructuredText, HTML, plain text, or a
//! table's text column) parsed into their structure ([`doc`]), cut into chunks
//! that keep headings, paragraphs, list items, code blocks and tables whole and
//! are sized in the embedding model's tokens ([`mod@chunk`], [`tokens`]).
//!
//! Nothing here reads the warehouse: the runner hands documents in and writes
//! the chunks it gets back as a Delta table.

pub mod chunk;
pub mod doc;
pub mod embed;
mod error;
pub mod hnsw;
pub mod model;
pub mod text;
pub mod tokens;
pub mod vector;

pub use chunk::{Chunk, ChunkOptions, chunk};
pub use doc::{Block, BlockKind, Format, Node, parse};
pub use embed::{Embedder, OnnxEmbedder};
pub use error::Error;
pub use text::{TextBuild, TextChunk, TextIndex, build_text_index};
pub use tokens::{Tokens, WordPiece};

/// A document's or chunk's content hash: BLAKE3 of its text, in hex. A
/// document whose hash is unchanged is not chunked or embedded again.
pub fn content_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}
