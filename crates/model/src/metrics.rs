//! Validation metrics, defined as scikit-learn defines them: `roc_auc_score`
//! (ties count half), `log_loss` (probabilities clipped to [1e-15, 1 - 1e-15]),
//! `accuracy_score`, `precision_score` and `recall_score` (0 when undefined),
//! `mean_squared_error` (root taken), `mean_absolute_error`, `r2_score`.
//!
//! They are a few lines each over plain slices; the unit tests pin them to
//! values scikit-learn 1.9 prints for the same inputs.

use std::collections::BTreeMap;

use sluice_project::{Metric, Task};

/// Every metric of `task`, for `scores` against `labels`; a binary row is
/// predicted positive when its score is at least `threshold`.
pub fn evaluate(
    task: Task,
    scores: &[f64],
    labels: &[f64],
    threshold: f64,
) -> BTreeMap<Metric, f64> {
    let mut out = BTreeMap::new();
    for &m in task.metrics() {
        let value = match m {
            Metric::Auc => auc(scores, labels),
            Metric::LogLoss => log_loss(scores, labels),
            Metric::Accuracy => confusion(scores, labels, threshold).accuracy(),
            Metric::Precision => confusion(scores, labels, threshold).precision(),
            Metric::Recall => confusion(scores, labels, threshold).recall(),
            Metric::Rmse => rmse(scores, labels),
            Metric::Mae => mae(scores, labels),
            Metric::R2 => r2(scores, labels),
        };
        if let Some(v) = value {
            out.insert(m, v);
        }
    }
    out
}

/// Whether a larger value of `metric` is better.
pub fn higher_is_better(metric: Metric) -> bool {
    !matches!(metric, Metric::LogLoss | Metric::Rmse | Metric::Mae)
}

/// Area under the ROC curve: the probability that a random positive scores
/// above a random negative, ties counting half (Mann–Whitney U over average
/// ranks). `None` when one class is absent.
pub fn auc(scores: &[f64], labels: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut positives) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1 share their average.
        let rank = (i + j + 2) as f64 / 2.0;
        for &k in &order[i..=j] {
            if labels[k] > 0.5 {
                rank_sum += rank;
                positives += 1.0;
            }
        }
        i = j + 1;
    }
    let negatives = scores.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Mean negative log-likelihood of the labels under the scores.
pub fn log_loss(scores: &[f64], labels: &[f64]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    const EPS: f64 = 1e-15;
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(p, y)| {
            let p = p.clamp(EPS, 1.0 - EPS);
            if *y > 0.5 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    Some(total / scores.len() as f64)
}

/// Counts of a binary prediction at a threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Confusion {
    /// Positives predicted positive.
    pub tp: f64,
    /// Negatives predicted positive.
    pub fp: f64,
    /// Negatives predicted negative.
    pub tn: f64,
    /// Positives predicted negative.
    pub fn_: f64,
}

impl Confusion {
    /// Share of right predictions.
    pub fn accuracy(&self) -> Option<f64> {
        let n = self.tp + self.fp + self.tn + self.fn_;
        (n > 0.0).then(|| (self.tp + self.tn) / n)
    }

    /// Share of predicted positives that are positive (0 with none predicted).
    pub fn precision(&self) -> Option<f64> {
        Some(if self.tp + self.fp > 0.0 {
            self.tp / (self.tp + self.fp)
        } else {
            0.0
        })
    }

    /// Share of positives predicted positive (0 with no positives).
    pub fn recall(&self) -> Option<f64> {
        Some(if self.tp + self.fn_ > 0.0 {
            self.tp / (self.tp + self.fn_)
        } else {
            0.0
        })
    }
}

/// The confusion counts at `threshold` (a score at the threshold is positive).
pub fn confusion(scores: &[f64], labels: &[f64], threshold: f64) -> Confusion {
    let mut c = Confusion::default();
    for (s, y) in scores.iter().zip(labels) {
        match (*s >= threshold, *y > 0.5) {
            (true, true) => c.tp += 1.0,
            (true, false) => c.fp += 1.0,
            (false, false) => c.tn += 1.0,
            (false, true) => c.fn_ += 1.0,
        }
    }
    c
}

/// Root mean squared error.
pub fn rmse(scores: &[f64], labels: &[f64]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let sse: f64 = scores
        .iter()
        .zip(labels)
        .map(|(p, y)| (p - y).powi(2))
        .sum();
    Some((sse / scores.len() as f64).sqrt())
}

/// Mean absolute error.
pub fn mae(scores: &[f64], labels: &[f64]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let sae: f64 = scores.iter().zip(labels).map(|(p, y)| (p - y).abs()).sum();
    Some(sae / scores.len() as f64)
}

/// Coefficient of determination; `None` when the labels do not vary.
pub fn r2(scores: &[f64], labels: &[f64]) -> Option<f64> {
    if labels.is_empty() {
        return None;
    }
    let mean = labels.iter().sum::<f64>() / labels.len() as f64;
    let ss_tot: f64 = labels.iter().map(|y| (y - mean).powi(2)).sum();
    let ss_res: f64 = scores
        .iter()
        .zip(labels)
        .map(|(p, y)| (y - p).powi(2))
        .sum();
    (ss_tot > 0.0).then(|| 1.0 - ss_res / ss_tot)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are scikit-learn 1.9's for the same arrays.
    const Y: [f64; 8] = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0];
    const P: [f64; 8] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.4, 0.2];

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn binary_metrics_match_scikit_learn() {
        // roc_auc_score(Y, P) = 0.8125 (0.4 is tied between classes).
        close(auc(&P, &Y).expect("auc"), 0.8125);
        // log_loss(Y, P)
        close(log_loss(&P, &Y).expect("ll"), 0.4555965297311108);
        let c = confusion(&P, &Y, 0.4);
        // accuracy_score(Y, P >= 0.4) = 0.625; precision 0.6; recall 0.75
        close(c.accuracy().expect("acc"), 0.625);
        close(c.precision().expect("p"), 0.6);
        close(c.recall().expect("r"), 0.75);
        assert_eq!(auc(&P, &[1.0; 8]), None, "one class");
        let m = evaluate(Task::Binary, &P, &Y, 0.5);
        assert_eq!(m.len(), 5);
        close(m[&Metric::Accuracy], 0.75);
    }

    #[test]
    fn regression_metrics_match_scikit_learn() {
        let y = [3.0, -0.5, 2.0, 7.0];
        let p = [2.5, 0.0, 2.0, 8.0];
        // mean_squared_error = 0.375, mean_absolute_error = 0.5, r2_score = 0.9486081370449679
        close(rmse(&p, &y).expect("rmse"), 0.375f64.sqrt());
        close(mae(&p, &y).expect("mae"), 0.5);
        close(r2(&p, &y).expect("r2"), 0.9486081370449679);
        assert_eq!(r2(&p, &[1.0; 4]), None);
        assert!(higher_is_better(Metric::Auc) && !higher_is_better(Metric::LogLoss));
    }
}
