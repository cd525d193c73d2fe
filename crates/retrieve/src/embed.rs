//! Embeddings: text to L2-normalized vectors, behind [`Embedder`] so that
//! another model fits. [`OnnxEmbedder`] runs all-MiniLM-L6-v2 (or any
//! sentence-transformers BERT exported the same way) locally with ONNX Runtime;
//! the runner's `HttpEmbedder` calls an OpenAI-compatible `/v1/embeddings`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

use crate::Error;
use crate::tokens::WordPiece;

/// A model that turns texts into vectors.
pub trait Embedder: Send + Sync {
    /// What the vectors depend on (the model and its files' identity): a
    /// collection's embeddings are made again when it changes.
    fn identity(&self) -> &str;

    /// The vectors' length.
    fn dim(&self) -> usize;

    /// One L2-normalized vector per text, row-major (`texts.len() * dim()`).
    fn embed(&self, texts: &[&str]) -> Result<Vec<f32>, Error>;
}

/// The longest input all-MiniLM-L6-v2 reads (sentence-transformers'
/// `max_seq_length`); longer inputs are truncated the way it truncates them.
pub const MAX_SEQUENCE: usize = 256;

/// Inputs padded into one batch: at most this many texts…
const BATCH_TEXTS: usize = 32;
/// …and this many token slots (texts × the longest one).
const BATCH_TOKENS: usize = 8192;

/// A sentence-transformers model exported to ONNX (`scripts/minilm_onnx.py`):
/// inputs `input_ids`, `attention_mask`, `token_type_ids` (i64 `[batch, seq]`),
/// output `sentence_embedding` (f32 `[batch, dim]`, mean-pooled and
/// normalized inside the graph).
pub struct OnnxEmbedder {
    path: PathBuf,
    identity: String,
    tokenizer: WordPiece,
    dim: usize,
    /// ONNX Runtime's `run` takes the session exclusively.
    session: Mutex<Session>,
}

impl std::fmt::Debug for OnnxEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEmbedder")
            .field("path", &self.path)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl OnnxEmbedder {
    /// Loads `dir/model.onnx` and `dir/tokenizer.json` into a session of
    /// ONNX Runtime environment `env`, running on `threads` threads.
    pub fn load(env: &Environment, dir: &Path, threads: usize) -> Result<OnnxEmbedder, Error> {
        let model = crate::model::file_in(dir, "model.onnx")?;
        let tokenizer = WordPiece::open(&crate::model::file_in(dir, "tokenizer.json")?)?;
        let failed = |source: ort::Error| Error::Embedding {
            model: model.clone(),
            message: source.to_string(),
        };
        let session = Session::builder(env)
            .and_then(|b| b.with_intra_threads(threads.max(1)).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(&model))
            .map_err(failed)?;
        for input in ["input_ids", "attention_mask", "token_type_ids"] {
            if !session.inputs().iter().any(|o| o.name() == input) {
                return Err(Error::Embedding {
                    model,
                    message: format!(
                        "the graph has no input `{input}`: it is not a sentence-transformers export (build it with scripts/fetch-model.sh)"
                    ),
                });
            }
        }
        let dim = session
            .outputs()
            .iter()
            .find(|o| o.name() == "sentence_embedding")
            .and_then(|o| match o.dtype() {
                ort::value::ValueType::Tensor { shape, .. } => shape.last().copied(),
                _ => None,
            })
            .and_then(|d| usize::try_from(d).ok())
            .ok_or_else(|| Error::Embedding {
                model: model.clone(),
                message: "the graph has no output `sentence_embedding` of a fixed width".into(),
            })?;
        // The vectors depend on the graph's and the tokenizer's bytes, not on
        // where they are: hashing them (90 MB, a tenth of a second) keeps a
        // moved model cache from embedding everything again.
        let mut hasher = blake3::Hasher::new();
        for file in [&model, &dir.join("tokenizer.json")] {
            std::fs::File::open(file)
                .and_then(|f| hasher.update_reader(f).map(|_| ()))
                .map_err(|e| Error::Embedding {
                    model: file.clone(),
                    message: e.to_string(),
                })?;
        }
        let identity = format!("onnx:{}", hasher.finalize().to_hex());
        Ok(OnnxEmbedder {
            path: model,
            identity,
            tokenizer,
            dim,
            session: Mutex::new(session),
        })
    }

    /// The token ids the model reads for `text`: with its special tokens, cut
    /// to [`MAX_SEQUENCE`] keeping the closing one.
    fn ids(&self, text: &str) -> Vec<u32> {
        let mut ids = self.tokenizer.ids(text);
        if ids.len() > MAX_SEQUENCE {
            let last = ids[ids.len() - 1];
            ids.truncate(MAX_SEQUENCE - 1);
            ids.push(last);
        }
        ids
    }

    /// Runs one padded batch; returns its vectors in the batch's order.
    fn run(&self, batch: &[Vec<u32>]) -> Result<Vec<f32>, Error> {
        let failed = |message: String| Error::Embedding {
            model: self.path.clone(),
            message,
        };
        let rows = batch.len();
        let width = batch.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = vec![0_i64; rows * width];
        let mut mask = vec![0_i64; rows * width];
        for (r, seq) in batch.iter().enumerate() {
            for (c, &id) in seq.iter().enumerate() {
                ids[r * width + c] = i64::from(id);
                mask[r * width + c] = 1;
            }
        }
        let types = vec![0_i64; rows * width];
        let tensor =
            |v: Vec<i64>| Tensor::from_array(([rows, width], v)).map_err(|e| failed(e.to_string()));
        let inputs = ort::inputs![
            "input_ids" => tensor(ids)?,
            "attention_mask" => tensor(mask)?,
            "token_type_ids" => tensor(types)?,
        ];
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outputs = session.run(inputs).map_err(|e| failed(e.to_string()))?;
        let value = outputs
            .get("sentence_embedding")
            .ok_or_else(|| failed("no output `sentence_embedding`".into()))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| failed(e.to_string()))?;
        if shape.len() != 2 || shape[0] as usize != rows || shape[1] as usize != self.dim {
            return Err(failed(format!(
                "`sentence_embedding` has shape {shape}, expected [{rows}, {}]",
                self.dim
            )));
        }
        Ok(data.to_vec())
    }
}

impl Embedder for OnnxEmbedder {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<f32>, Error> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.ids(t)).collect();
        // Texts of like length share a batch, so little of it is padding
        // (padded positions are masked: the vectors do not depend on it).
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![0.0_f32; texts.len() * self.dim];
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len()
                && end - start < BATCH_TEXTS
                && (end - start + 1) * ids[order[end]].len() <= BATCH_TOKENS
            {
                end += 1;
            }
            let batch: Vec<Vec<u32>> = order[start..end].iter().map(|&i| ids[i].clone()).collect();
            let vectors = self.run(&batch)?;
            for (slot, &i) in order[start..end].iter().enumerate() {
                out[i * self.dim..(i + 1) * self.dim]
                    .copy_from_slice(&vectors[slot * self.dim..(slot + 1) * self.dim]);
            }
            start = end;
        }
        Ok(out)
    }
}

/// Cosine similarity of two vectors (their dot product when both are
/// normalized, as embeddings are).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
