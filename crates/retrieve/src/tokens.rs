//! Counting text in the embedding model's tokens, so that a chunk's size is
//! what the model sees. The count excludes the model's special tokens (`[CLS]`,
//! `[SEP]`); [`Tokens::special`] says how many it adds to each input.

use std::path::Path;

use tokenizers::PostProcessor as _;

use crate::Error;

/// A tokenizer, as far as chunking needs one.
pub trait Tokens: Send + Sync {
    /// How many tokens `text` is, special tokens excluded.
    fn count(&self, text: &str) -> usize;

    /// How many special tokens the model adds to every input.
    fn special(&self) -> usize {
        0
    }
}

/// A Hugging Face `tokenizer.json` (all-MiniLM-L6-v2's is a BERT WordPiece), read
/// by the `tokenizers` crate so that counts equal the Python tokenizer's.
pub struct WordPiece {
    inner: tokenizers::Tokenizer,
}

impl WordPiece {
    /// Reads `tokenizer.json`, with the truncation and padding it may carry
    /// turned off (a count must see the whole text).
    pub fn open(path: &Path) -> Result<WordPiece, Error> {
        let mut inner = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
            .with_padding(None);
        Ok(WordPiece { inner })
    }

    /// The token ids of `text` with the model's special tokens, for embedding.
    pub fn ids(&self, text: &str) -> Vec<u32> {
        self.inner
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }
}

impl Tokens for WordPiece {
    fn count(&self, text: &str) -> usize {
        // Encoding cannot fail for a WordPiece model with an unknown token;
        // were it to, a count by words keeps chunking going.
        self.inner
            .encode(text, false)
            .map(|e| e.len())
            .unwrap_or_else(|_| text.split_whitespace().count())
    }

    fn special(&self) -> usize {
        self.inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false))
    }
}

/// Words separated by whitespace: a count for tests and for text that no
/// model will embed.
pub struct Words;

impl Tokens for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}
