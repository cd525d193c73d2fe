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
    /// A text index could not be written, opened or searched.
    #[error("text index {}: {message}\n  help: the index is made again from the chunk table at the next run; remove the folder if it is damaged", path.display())]
    TextIndex {
        /// Its folder.
        path: PathBuf,
        /// tantivy's reason.
        message: String,
    },
    /// A vector index could not be written or read.
    #[error("vector index {}: {message}\n  help: the index is made again from the chunk table at the next run; remove the folder if it is damaged", path.display())]
    VectorIndex {
        /// Its folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The embedding model could not be loaded or run, or the embedding
    /// service answered with an error.
    #[error("embedding model {}: {message}\n  help: fetch the model again with `{}`, or check the collection's `embedding` settings", model.display(), crate::model::FETCH_COMMAND)]
    Embedding {
        /// The model's file or the service's URL.
        model: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The model's files are not where sluice looks for them.
    #[error("the embedding model `{model}` is not installed: {} is missing\n  help: run `{}` from the sluice repository (it downloads the model into $SLUICE_MODELS, by default ~/.cache/sluice/models)", path.display(), crate::model::FETCH_COMMAND)]
    ModelMissing {
        /// The model.
        model: String,
        /// The file looked for.
        path: PathBuf,
    },
}
