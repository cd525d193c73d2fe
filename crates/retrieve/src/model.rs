//! Where the embedding model's files are: `$SLUICE_MODELS/<model>/`, by default
//! `~/.cache/sluice/models/<model>/`, filled by `scripts/fetch-model.sh`. The
//! weights are never in the repository; a missing model is an error that
//! prints the command that fetches it.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::tokens::WordPiece;

/// The model collections use unless they name another.
pub const DEFAULT_MODEL: &str = "all-minilm-l6-v2";

/// The command that fetches the default model, for error messages.
pub const FETCH_COMMAND: &str = "scripts/fetch-model.sh";

/// The folder holding every model: `SLUICE_MODELS`, else
/// `~/.cache/sluice/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/sluice/models")
}

/// The folder of model `name`.
pub fn model_dir(name: &str) -> PathBuf {
    models_dir().join(name)
}

/// File `file` of model `name`, which must be there.
pub fn model_file(name: &str, file: &str) -> Result<PathBuf, Error> {
    file_in(&model_dir(name), file)
}

/// File `file` of the model in `dir`, which must be there.
pub fn file_in(dir: &Path, file: &str) -> Result<PathBuf, Error> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        let model = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Err(Error::ModelMissing { model, path })
    }
}

/// The default model's tokenizer.
pub fn default_tokenizer() -> Result<WordPiece, Error> {
    WordPiece::open(&model_file(DEFAULT_MODEL, "tokenizer.json")?)
}
