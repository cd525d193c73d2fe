//! Turning a [`Frame`] into the numeric matrix a learner reads. Encoders are
//! fitted on the training split only (the leakage guard of SPEC §5) and stored
//! with the model, so that validation, batch and online prediction encode alike.
//!
//! Trees read numbers as they are (NaN is missing, and trees learn where it
//! goes) and a text column as the rank of each category's mean label in the
//! training split, smoothed towards the overall mean — the order in which
//! LightGBM sorts categories for its own categorical splits — with unseen and
//! missing categories as missing. Linear models read numbers standardized (a
//! missing value becomes the training mean, so 0) and the most frequent
//! categories one-hot.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::frame::{Frame, Kind, Values};
use crate::{Error, Result};

/// How much weight a category's own mean label gets against the overall mean:
/// a category seen `n` times counts as `n / (n + SMOOTHING)` of its own.
const SMOOTHING: f64 = 20.0;

/// How one input column is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnEncoder {
    /// A number as it is (trees).
    Identity,
    /// `(x - mean) / scale`, missing as 0 (linear models).
    Standardize {
        /// The training split's mean.
        mean: f64,
        /// The training split's standard deviation (1 when it is 0).
        scale: f64,
    },
    /// A category as its position in `categories` (trees).
    Ordinal {
        /// Categories in the order of their smoothed mean label.
        categories: Vec<String>,
    },
    /// One 0/1 column per category (linear models).
    OneHot {
        /// The categories with a column, most frequent first.
        categories: Vec<String>,
    },
}

impl ColumnEncoder {
    fn width(&self) -> usize {
        match self {
            ColumnEncoder::OneHot { categories } => categories.len(),
            _ => 1,
        }
    }
}

/// Which encoding a learner wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Trees: numbers as they are, categories ranked by mean label.
    Trees,
    /// Linear models: standardized numbers, one-hot categories (at most this many per column).
    Linear {
        /// Most one-hot columns per text column.
        max_categories: usize,
    },
}

/// The fitted encoders of every input column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoder {
    /// Input columns, in order.
    pub inputs: Vec<String>,
    /// Their kinds at training.
    pub kinds: Vec<Kind>,
    /// One encoder per input.
    pub columns: Vec<ColumnEncoder>,
}

/// A column-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Values, column after column.
    pub data: Vec<f64>,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
}

impl Encoder {
    /// Fits the encoders on the training split; `labels` are its labels.
    pub fn fit(frame: &Frame, labels: &[f64], style: Style) -> Encoder {
        let columns = frame
            .columns
            .iter()
            .map(|values| match (values, style) {
                (Values::Numeric(_), Style::Trees) => ColumnEncoder::Identity,
                (Values::Numeric(v), Style::Linear { .. }) => {
                    let (mean, scale) = moments(v);
                    ColumnEncoder::Standardize { mean, scale }
                }
                (Values::Categorical(v), Style::Trees) => ColumnEncoder::Ordinal {
                    categories: ranked_by_label(v, labels),
                },
                (Values::Categorical(v), Style::Linear { max_categories }) => {
                    ColumnEncoder::OneHot {
                        categories: most_frequent(v, max_categories),
                    }
                }
            })
            .collect();
        Encoder {
            inputs: frame.names.clone(),
            kinds: frame.kinds(),
            columns,
        }
    }

    /// The encoded column names and, for each, the input it comes from.
    pub fn outputs(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for (i, (name, enc)) in self.inputs.iter().zip(&self.columns).enumerate() {
            match enc {
                ColumnEncoder::OneHot { categories } => {
                    out.extend(categories.iter().map(|c| (format!("{name}={c}"), i)))
                }
                _ => out.push((name.clone(), i)),
            }
        }
        out
    }

    /// Encodes `frame`, whose columns must be the inputs, in order.
    pub fn transform(&self, frame: &Frame) -> Result<Matrix> {
        if frame.names != self.inputs {
            return Err(Error::InputColumns {
                expected: self.inputs.clone(),
                given: frame.names.clone(),
            });
        }
        let rows = frame.rows;
        let cols: usize = self.columns.iter().map(ColumnEncoder::width).sum();
        let mut data = Vec::with_capacity(rows * cols);
        for ((name, enc), values) in self.inputs.iter().zip(&self.columns).zip(&frame.columns) {
            match (enc, values) {
                (ColumnEncoder::Identity, Values::Numeric(v)) => data.extend_from_slice(v),
                (ColumnEncoder::Standardize { mean, scale }, Values::Numeric(v)) => data.extend(
                    v.iter()
                        .map(|x| if x.is_nan() { 0.0 } else { (x - mean) / scale }),
                ),
                (ColumnEncoder::Ordinal { categories }, Values::Categorical(v)) => {
                    let codes: HashMap<&str, f64> = categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.as_str(), i as f64))
                        .collect();
                    data.extend(v.iter().map(|x| {
                        x.as_deref()
                            .and_then(|x| codes.get(x).copied())
                            .unwrap_or(f64::NAN)
                    }));
                }
                (ColumnEncoder::OneHot { categories }, Values::Categorical(v)) => {
                    for c in categories {
                        data.extend(
                            v.iter()
                                .map(|x| f64::from(u8::from(x.as_deref() == Some(c.as_str())))),
                        );
                    }
                }
                (_, values) => {
                    let trained = match enc {
                        ColumnEncoder::Identity | ColumnEncoder::Standardize { .. } => {
                            Kind::Numeric
                        }
                        _ => Kind::Categorical,
                    };
                    return Err(Error::KindChanged {
                        column: name.clone(),
                        trained: trained.as_str(),
                        now: values.kind().as_str(),
                    });
                }
            }
        }
        Ok(Matrix { data, rows, cols })
    }
}

/// Mean and standard deviation (population) of the present values; (0, 1) when
/// there are none, scale 1 when they do not vary.
fn moments(v: &[f64]) -> (f64, f64) {
    let present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if present.is_empty() {
        return (0.0, 1.0);
    }
    let n = present.len() as f64;
    let mean = present.iter().sum::<f64>() / n;
    let var = present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    (mean, if sd > 0.0 && sd.is_finite() { sd } else { 1.0 })
}

/// Categories ordered by their mean label, smoothed towards the overall mean
/// (ties by name, so the order is deterministic).
fn ranked_by_label(values: &[Option<String>], labels: &[f64]) -> Vec<String> {
    let overall = labels.iter().sum::<f64>() / labels.len().max(1) as f64;
    let mut stats: HashMap<&str, (f64, f64)> = HashMap::new();
    for (v, y) in values.iter().zip(labels) {
        if let Some(v) = v {
            let s = stats.entry(v.as_str()).or_insert((0.0, 0.0));
            s.0 += y;
            s.1 += 1.0;
        }
    }
    let mut ranked: Vec<(f64, &str)> = stats
        .into_iter()
        .map(|(c, (sum, n))| ((sum + SMOOTHING * overall) / (n + SMOOTHING), c))
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    ranked.into_iter().map(|(_, c)| c.to_string()).collect()
}

/// The `max` most frequent categories, most frequent first (ties by name).
fn most_frequent(values: &[Option<String>], max: usize) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values.iter().flatten() {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let mut sorted: Vec<(usize, &str)> = counts.into_iter().map(|(c, n)| (n, c)).collect();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    sorted
        .into_iter()
        .take(max)
        .map(|(_, c)| c.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame {
            names: vec!["x".into(), "c".into()],
            columns: vec![
                Values::Numeric(vec![1.0, 3.0, f64::NAN, 5.0]),
                Values::Categorical(vec![
                    Some("a".into()),
                    Some("b".into()),
                    Some("b".into()),
                    None,
                ]),
            ],
            rows: 4,
        }
    }

    #[test]
    fn trees_rank_categories_by_label_and_keep_missing() {
        let e = Encoder::fit(&frame(), &[0.0, 1.0, 1.0, 0.0], Style::Trees);
        assert_eq!(
            e.columns[1],
            ColumnEncoder::Ordinal {
                categories: vec!["a".into(), "b".into()]
            }
        );
        let mut unseen = frame();
        unseen.columns[1] = Values::Categorical(vec![
            Some("b".into()),
            Some("z".into()),
            None,
            Some("a".into()),
        ]);
        let m = e.transform(&unseen).expect("encode");
        assert_eq!((m.rows, m.cols), (4, 2));
        assert_eq!(&m.data[..2], &[1.0, 3.0]);
        assert!(m.data[2].is_nan());
        assert_eq!(m.data[4], 1.0);
        assert!(m.data[5].is_nan() && m.data[6].is_nan());
        assert_eq!(m.data[7], 0.0);
    }

    #[test]
    fn linear_models_standardize_and_one_hot() {
        let e = Encoder::fit(&frame(), &[0.0; 4], Style::Linear { max_categories: 1 });
        // mean 3, population sd sqrt(8/3) over the three present values.
        let sd = (8.0f64 / 3.0).sqrt();
        assert_eq!(
            e.columns[0],
            ColumnEncoder::Standardize {
                mean: 3.0,
                scale: sd
            }
        );
        assert_eq!(
            e.outputs(),
            vec![("x".to_string(), 0), ("c=b".to_string(), 1)]
        );
        let m = e.transform(&frame()).expect("encode");
        assert_eq!(m.cols, 2);
        assert!((m.data[0] + 2.0 / sd).abs() < 1e-12);
        assert_eq!(m.data[2], 0.0, "missing is the mean");
        assert_eq!(&m.data[4..], &[0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn a_column_that_changed_kind_is_named() {
        let e = Encoder::fit(&frame(), &[0.0; 4], Style::Trees);
        let mut changed = frame();
        changed.columns[0] = Values::Categorical(vec![None; 4]);
        let err = e.transform(&changed).expect_err("kind");
        assert!(err.to_string().contains("`x` was numeric"), "{err}");
    }
}
