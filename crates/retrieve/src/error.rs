//! Errors of reading documents and of the embedding model's files.

use std::path::PathBuf;

/// Why a collection could not be read, chunked or embedded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model's `tokenizer.json` could not be read.
    #[error("{}: cannot read the tokenizer: {message}\n  help: fetch the model again (see the README's collections section)", path.display())]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// The tokenizers crate's reason.
        message: String,
    },
}
