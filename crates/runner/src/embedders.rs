//! The embedder a collection names: a local model run by ONNX Runtime (loaded
//! once per process and shared by runs and searches), or an OpenAI-compatible
//! `/v1/embeddings` service reached with the network sources' client (paced,
//! retried after 429 and 5xx, secrets masked).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sluice_project::Embedding;
use sluice_retrieve::{Embedder, Error, OnnxEmbedder};

/// The embedder of `setting`, or `None` for `embedding = "none"`. Call it from
/// inside the runtime; use the embedder from a blocking thread.
pub(crate) fn embedder(setting: &Embedding) -> Result<Option<Arc<dyn Embedder>>, Error> {
    match setting {
        Embedding::None => Ok(None),
        Embedding::Local { model } => local(model).map(Some),
        Embedding::Service {
            url,
            model,
            key,
            batch,
            rate,
        } => {
            let service = |message: String| Error::Embedding {
                model: url.redacted().into(),
                message,
            };
            let expanded_url = url.expose().map_err(|e| service(e.to_string()))?;
            let expanded_key = match key {
                Some(k) => Some(k.expose().map_err(|e| service(format!("`key`: {e}")))?),
                None => None,
            };
            let parsed = url::Url::parse(&expanded_url).map_err(|e| service(e.to_string()))?;
            let mut secrets = vec![];
            if !url.variables().is_empty() {
                secrets.push(expanded_url.clone());
            }
            secrets.extend(expanded_key.clone());
            let masker = sluice_source::http::Masker::new(secrets);
            let client = sluice_source::http::Client::new(
                sluice_source::http::ClientOptions {
                    timeout: Duration::from_secs(120),
                    retries: 6,
                    backoff: Duration::from_millis(500),
                    rate_limit: *rate,
                    user_agent: sluice_source::http::default_user_agent(),
                },
                masker,
            )
            .map_err(|e| service(e.to_string()))?;
            let runtime = tokio::runtime::Handle::try_current()
                .map_err(|e| service(format!("no async runtime: {e}")))?;
            Ok(Some(Arc::new(HttpEmbedder {
                identity: format!("openai:{}:{model}", url.redacted()),
                url: parsed,
                shown: url.redacted(),
                model: model.clone(),
                key: expanded_key,
                batch: *batch,
                client,
                runtime,
                dim: OnceLock::new(),
            })))
        }
    }
}

/// The local model `name`, loaded on first use with as many threads as the
/// machine has cores (a run embeds thousands of chunks; a search, one question),
/// and loaded again when its files change (another model fetched while
/// `sluice serve` runs).
fn local(name: &str) -> Result<Arc<dyn Embedder>, Error> {
    type Loaded = HashMap<String, (String, Arc<OnnxEmbedder>)>;
    static LOADED: OnceLock<Mutex<Loaded>> = OnceLock::new();
    let stamp = local_stamp(name);
    let mut loaded = LOADED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, e)) = loaded.get(name)
        && *at == stamp
    {
        return Ok(e.clone());
    }
    let dir = sluice_retrieve::model::model_dir(name);
    // The files first: a missing model says how to fetch it, whether or not
    // ONNX Runtime is installed.
    sluice_retrieve::model::file_in(&dir, "model.onnx")?;
    sluice_retrieve::model::file_in(&dir, "tokenizer.json")?;
    let env = sluice_model::onnx::environment().map_err(|e| Error::Embedding {
        model: dir.join("model.onnx"),
        message: e.to_string(),
    })?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let embedder = Arc::new(OnnxEmbedder::load(env, &dir, threads)?);
    loaded.insert(name.to_string(), (stamp, embedder.clone()));
    Ok(embedder)
}

/// The local model `name`'s files' sizes and modification times: cheap to
/// read at every run and search, and changed by fetching another model. A
/// collection's fingerprint holds it (the content identity then decides what
/// is embedded again), and a loaded model is loaded again when it changes.
pub(crate) fn local_stamp(name: &str) -> String {
    let dir = sluice_retrieve::model::model_dir(name);
    ["model.onnx", "tokenizer.json"]
        .iter()
        .map(|f| match std::fs::metadata(dir.join(f)) {
            Ok(m) => {
                let modified = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{f}:{}:{modified}", m.len())
            }
            Err(_) => format!("{f}:missing"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// An OpenAI-compatible embeddings endpoint: `POST {"model", "input": [...]}`,
/// answered with `{"data": [{"index", "embedding"}]}`.
struct HttpEmbedder {
    identity: String,
    url: url::Url,
    /// The URL as written, secrets unexpanded.
    shown: String,
    model: String,
    key: Option<String>,
    batch: usize,
    client: sluice_source::http::Client,
    runtime: tokio::runtime::Handle,
    /// Learned from the first answer.
    dim: OnceLock<usize>,
}

impl HttpEmbedder {
    fn failed(&self, message: impl Into<String>) -> Error {
        Error::Embedding {
            model: self.shown.clone().into(),
            message: self.client.masker().mask(&message.into()),
        }
    }

    /// One request's vectors, in the order of `texts`.
    fn request(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let body = serde_json::json!({ "model": self.model, "input": texts }).to_string();
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(key) = &self.key {
            headers.push(("authorization".to_string(), format!("Bearer {key}")));
        }
        let request = sluice_source::http::Request {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers,
            body: Some(body),
            basic: None,
            validators: None,
        };
        let response = self
            .runtime
            .block_on(self.client.send(&request))
            .map_err(|e| self.failed(e.to_string()))?;
        let answer: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| self.failed(format!("the answer is not JSON: {e}")))?;
        let data = answer["data"]
            .as_array()
            .ok_or_else(|| self.failed("the answer has no `data` array"))?;
        if data.len() != texts.len() {
            return Err(self.failed(format!(
                "{} texts sent, {} embeddings answered",
                texts.len(),
                data.len()
            )));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for (at, item) in data.iter().enumerate() {
            let index = item["index"].as_u64().map_or(at, |i| i as usize);
            let vector: Option<Vec<f32>> = item["embedding"].as_array().and_then(|v| {
                v.iter()
                    .map(|x| x.as_f64().map(|x| x as f32).filter(|x| x.is_finite()))
                    .collect()
            });
            let Some(mut vector) = vector.filter(|v| !v.is_empty()) else {
                return Err(
                    self.failed(format!("`data[{at}].embedding` is not an array of numbers"))
                );
            };
            let dim = *self.dim.get_or_init(|| vector.len());
            if vector.len() != dim {
                return Err(self.failed(format!(
                    "`data[{at}].embedding` has {} numbers, earlier ones {dim}",
                    vector.len()
                )));
            }
            normalize(&mut vector);
            match out.get_mut(index) {
                Some(slot @ None) => *slot = Some(vector),
                _ => {
                    return Err(self.failed(format!(
                        "`data[{at}].index` = {index} is out of range or repeated"
                    )));
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

impl Embedder for HttpEmbedder {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn dim(&self) -> usize {
        self.dim.get().copied().unwrap_or(0)
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<f32>, Error> {
        let mut out = Vec::new();
        for batch in texts.chunks(self.batch.max(1)) {
            for vector in self.request(batch)? {
                out.extend(vector);
            }
        }
        Ok(out)
    }
}

/// Scales `v` to length 1 (a zero vector stays zero).
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x /= norm;
        }
    }
}
