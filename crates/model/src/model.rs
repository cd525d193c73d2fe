//! A model: its inputs, the encoders fitted on its training split and the fitted
//! learner (or an ONNX file), saved as one JSON document. Training, batch and
//! online prediction all go through [`Model::predict`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use forust_ml::GradientBooster;
use serde::{Deserialize, Serialize};
use sluice_project::{Learner, Metric, Task};

use crate::encode::{Encoder, Matrix, Style};
use crate::frame::{Frame, Kind};
use crate::linear::Coefficients;
use crate::onnx::{OnnxError, OnnxModel};
use crate::{Error, Result, gbdt, linear, logistic, metrics};

/// The format of saved models; bumped when it changes.
pub const MODEL_FORMAT: &str = "sluice-model-1";

/// Where an input column comes from, so that an online request can find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputSource {
    /// A column of the spine (given by the caller online).
    Spine {
        /// The column.
        column: String,
    },
    /// A feature of a feature view (read from the online store).
    View {
        /// The view.
        view: String,
        /// The feature.
        feature: String,
    },
}

/// One input column of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Its name in the training set.
    pub name: String,
    /// How it is read.
    pub kind: Kind,
    /// Where it comes from.
    pub source: InputSource,
}

/// The fitted learner.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Fitted {
    Gbdt(Box<GradientBooster>),
    Linear(Coefficients),
    Onnx {
        /// The ONNX file, beside the model's JSON.
        file: String,
        /// The output holding the score.
        output: Option<String>,
    },
}

/// A trained or imported model.
#[derive(Serialize, Deserialize)]
pub struct Model {
    format: String,
    /// What it predicts.
    pub task: Task,
    /// `binary`: the score from which a row is predicted positive.
    pub threshold: f64,
    /// Its input columns, in order.
    pub inputs: Vec<Input>,
    encoder: Option<Encoder>,
    learner: Fitted,
    #[serde(skip)]
    onnx: Option<Arc<OnnxModel>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("task", &self.task)
            .field("inputs", &self.inputs)
            .field(
                "learner",
                &match &self.learner {
                    Fitted::Gbdt(b) => format!("gbdt ({} trees)", b.trees.len()),
                    Fitted::Linear(c) => format!("linear ({} weights)", c.weights.len()),
                    Fitted::Onnx { file, .. } => format!("onnx ({file})"),
                },
            )
            .finish()
    }
}

/// A training run's result.
#[derive(Debug)]
pub struct Trained {
    /// The model.
    pub model: Model,
    /// Validation metrics.
    pub metrics: BTreeMap<Metric, f64>,
    /// Importance per input column (one-hot columns summed), largest first.
    pub importance: Vec<(String, f64)>,
    /// How long the learner's fit took, encoding and scoring left out.
    pub fit_time: std::time::Duration,
}

/// The labels and rows of one split.
#[derive(Debug)]
pub struct Split<'a> {
    /// The input columns.
    pub frame: &'a Frame,
    /// The labels (0/1 for binary).
    pub labels: &'a [f64],
}

/// Trains `learner` on `train`, measures it on `valid`.
pub fn train(
    task: Task,
    learner: &Learner,
    threshold: f64,
    inputs: Vec<Input>,
    train: Split<'_>,
    valid: Split<'_>,
) -> Result<Trained> {
    if train.frame.rows == 0 {
        return Err(Error::EmptyTrainingSplit);
    }
    if task == Task::Binary {
        let positives = train.labels.iter().filter(|y| **y > 0.5).count();
        if positives == 0 || positives == train.labels.len() {
            return Err(Error::OneClass {
                rows: train.labels.len(),
                class: u8::from(positives > 0),
            });
        }
    }
    let style = match learner {
        Learner::Gbdt(_) => Style::Trees,
        Learner::Logistic(p) => Style::Linear {
            max_categories: p.max_categories,
        },
        Learner::Linear(p) => Style::Linear {
            max_categories: p.max_categories,
        },
        Learner::Onnx { .. } => {
            return Err(Error::TrainImported);
        }
    };
    let encoder = Encoder::fit(train.frame, train.labels, style);
    let x = encoder.transform(train.frame)?;
    let fit_started = std::time::Instant::now();
    let (fitted, raw_importance) = match learner {
        Learner::Gbdt(p) => {
            let booster = gbdt::fit(p, task, &x, train.labels)?;
            let imp = gbdt::importance(&booster, x.cols);
            (Fitted::Gbdt(Box::new(booster)), imp)
        }
        Learner::Logistic(p) => {
            let c = logistic::fit_logistic(p, &x, train.labels)?;
            let imp = c.importance();
            (Fitted::Linear(c), imp)
        }
        Learner::Linear(_) => {
            let c = linear::fit_linear(&x, train.labels)?;
            let imp = c.importance();
            (Fitted::Linear(c), imp)
        }
        Learner::Onnx { .. } => unreachable!("refused above"),
    };
    let fit_time = fit_started.elapsed();
    let mut per_input = vec![0.0; encoder.inputs.len()];
    for ((_, input), v) in encoder.outputs().into_iter().zip(raw_importance) {
        per_input[input] += v;
    }
    let mut importance: Vec<(String, f64)> =
        encoder.inputs.iter().cloned().zip(per_input).collect();
    importance.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let model = Model {
        format: MODEL_FORMAT.to_string(),
        task,
        threshold,
        inputs,
        encoder: Some(encoder),
        learner: fitted,
        onnx: None,
    };
    let scores = model.predict(valid.frame)?;
    let metrics = metrics::evaluate(task, &scores, valid.labels, threshold);
    Ok(Trained {
        model,
        metrics,
        importance,
        fit_time,
    })
}

impl Model {
    /// Wraps an ONNX file (already copied to where the model is kept) as a model.
    /// Its inputs must all be numeric.
    pub fn import_onnx(
        task: Task,
        threshold: f64,
        inputs: Vec<Input>,
        file: &Path,
        output: Option<String>,
    ) -> Result<Model> {
        if let Some(text) = inputs.iter().find(|i| i.kind != Kind::Numeric) {
            return Err(OnnxError::TextInput {
                input: text.name.clone(),
            }
            .into());
        }
        let session = OnnxModel::load(file, task, output.as_deref(), inputs.len())?;
        Ok(Model {
            format: MODEL_FORMAT.to_string(),
            task,
            threshold,
            inputs,
            encoder: None,
            learner: Fitted::Onnx {
                file: file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                output,
            },
            onnx: Some(Arc::new(session)),
        })
    }

    /// The learner's word (`gbdt`, `linear`, `onnx`).
    pub fn learner(&self) -> &'static str {
        match &self.learner {
            Fitted::Gbdt(_) => "gbdt",
            Fitted::Linear(c) if c.logistic => "logistic",
            Fitted::Linear(_) => "linear",
            Fitted::Onnx { .. } => "onnx",
        }
    }

    /// The input names, in order.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|i| i.name.clone()).collect()
    }

    /// Scores the rows of `frame`, whose columns are the inputs in order:
    /// probabilities of the positive class (binary) or values (regression).
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        match &self.learner {
            Fitted::Gbdt(b) => Ok(gbdt::predict(b, self.task, &self.encode(frame)?)),
            Fitted::Linear(c) => Ok(c.predict(&self.encode(frame)?)),
            Fitted::Onnx { file, .. } => {
                let session = self
                    .onnx
                    .as_ref()
                    .ok_or_else(|| OnnxError::NotLoaded { file: file.clone() })?;
                let x = self.encode(frame)?;
                session.predict(&x)
            }
        }
    }

    fn encode(&self, frame: &Frame) -> Result<Matrix> {
        match &self.encoder {
            Some(e) => e.transform(frame),
            None => {
                // ONNX: numbers as they are, in input order.
                let names = self.input_names();
                if frame.names != names {
                    return Err(Error::InputColumns {
                        expected: names,
                        given: frame.names.clone(),
                    });
                }
                let mut data = Vec::with_capacity(frame.rows * names.len());
                for (name, values) in names.iter().zip(&frame.columns) {
                    match values {
                        crate::frame::Values::Numeric(v) => data.extend_from_slice(v),
                        crate::frame::Values::Categorical(_) => {
                            return Err(Error::KindChanged {
                                column: name.clone(),
                                trained: "numeric",
                                now: "categorical",
                            });
                        }
                    }
                }
                Ok(Matrix {
                    data,
                    rows: frame.rows,
                    cols: names.len(),
                })
            }
        }
    }

    /// Writes the model to `path` (JSON) through a temporary file, synced and
    /// renamed, so a crash leaves the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).map_err(|source| Error::EncodeModel {
            path: path.to_path_buf(),
            source,
        })?;
        write_atomically(path, &json).map_err(|source| Error::WriteModel {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a model saved by [`Model::save`]; an ONNX model's file is loaded
    /// from the same folder.
    pub fn load(path: &Path) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadModel {
            path: path.to_path_buf(),
            source,
        })?;
        let mut model: Model =
            serde_json::from_slice(&bytes).map_err(|source| Error::DecodeModel {
                path: path.to_path_buf(),
                source,
            })?;
        if model.format != MODEL_FORMAT {
            return Err(Error::ModelFormat {
                path: path.to_path_buf(),
                format: model.format,
            });
        }
        if let Fitted::Onnx { file, output } = &model.learner {
            let onnx_path: PathBuf = path.with_file_name(file);
            model.onnx = Some(Arc::new(OnnxModel::load(
                &onnx_path,
                model.task,
                output.as_deref(),
                model.inputs.len(),
            )?));
        }
        Ok(model)
    }
}

/// Writes `bytes` to `path` through `path.partial`, synced, then renamed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("partial");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
