//! `sluice backtest`: a model evaluated walk-forward over a past period. For each
//! period (a day, week or month) the model is retrained on every labelled row
//! before the period whose label was known when the period starts (see
//! `label_delay`) — or a stored version is reused — and scores the period's
//! rows; the report gives the period's metrics and a decision simulation: act
//! on the `k` best scores of the period (or of each event in it, `group_by`:
//! a race, a match), and count the hits and the return (the sum of a payoff
//! column over the rows acted on, less a stake per row). Every pick is listed,
//! so that hits can be audited.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Months, Utc};
use serde::Serialize;
use sluice_model::{Frame, Values, metrics};
use sluice_project::Task;
use sluice_store::AsOf;

use crate::models::{examples, known_at, label_known, labels, load_model, model_def, model_error};
use crate::{Error, Result, Workspace};

/// The length of a backtest period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A day.
    Day,
    /// Seven days.
    Week,
    /// A calendar month.
    Month,
}

impl Period {
    fn after(self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Period::Day => t + chrono::Duration::days(1),
            Period::Week => t + chrono::Duration::days(7),
            Period::Month => t.checked_add_months(Months::new(1)).unwrap_or(t),
        }
    }
}

/// What to backtest.
#[derive(Debug, Clone)]
pub struct BacktestRequest {
    /// The model.
    pub model: String,
    /// The first period starts here.
    pub from: DateTime<Utc>,
    /// The last period ends here (exclusive).
    pub to: DateTime<Utc>,
    /// The length of each period.
    pub period: Period,
    /// Reuse this version for every period instead of retraining (`Some(None)`:
    /// the serving version).
    pub reuse: Option<Option<u64>>,
    /// How many of each period's best scores to act on.
    pub top_k: usize,
    /// A spine column: what acting on a row returns.
    pub payoff: Option<String>,
    /// What acting on one row costs.
    pub stake: f64,
    /// A spine column naming each row's event (a race): act on the top `k` of
    /// each event instead of each period.
    pub group_by: Option<String>,
    /// A spine column naming each row (a runner, a flight), shown in the picks.
    pub id: Option<String>,
}

/// One row acted on.
#[derive(Debug, Clone, Serialize)]
pub struct Pick {
    /// Its event (`group_by`), if any.
    pub event: Option<String>,
    /// Its name (`id`), if any.
    pub id: Option<String>,
    /// Its time (RFC 3339).
    pub time: String,
    /// The model's score.
    pub score: f64,
    /// Its label.
    pub label: f64,
    /// What acting on it returned (`payoff`), if asked.
    pub payoff: Option<f64>,
}

/// One period's result.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodResult {
    /// Start (RFC 3339).
    pub start: String,
    /// End, exclusive (RFC 3339).
    pub end: String,
    /// Rows scored.
    pub rows: u64,
    /// Rows the model was trained on (retraining), else 0.
    pub train_rows: u64,
    /// Labelled rows before the period held out of its retraining: their
    /// label was not yet known when the period starts (`label_delay`,
    /// `label_available`). In the total: the periods' sum.
    pub label_pending: u64,
    /// The stored version used (reuse), else none.
    pub model_version: Option<u64>,
    /// The period's metrics.
    pub metrics: BTreeMap<String, f64>,
    /// The mean label of the period's rows.
    pub mean_label: Option<f64>,
    /// Rows acted on (at most `top_k`).
    pub acted: u64,
    /// Of those, positives (binary).
    pub hits: u64,
    /// `hits / acted`.
    pub hit_rate: Option<f64>,
    /// Sum of the payoff over the rows acted on, less the stakes.
    pub r#return: Option<f64>,
    /// The rows acted on, best score first (per event with `group_by`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub picks: Vec<Pick>,
}

/// The whole backtest.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestSummary {
    /// The model.
    pub model: String,
    /// `retrain` or `version N`.
    pub mode: String,
    /// The periods, in time order.
    pub periods: Vec<PeriodResult>,
    /// Over every period: rows, metrics of all scores together, and the
    /// simulation's totals.
    pub total: PeriodResult,
    /// Wall-clock time.
    pub duration_ms: u64,
    /// What makes the numbers less than they seem (a reused version scoring
    /// periods it was trained on).
    pub warnings: Vec<String>,
}

struct Scored {
    scores: Vec<f64>,
    labels: Vec<f64>,
    payoff: Vec<f64>,
    /// The spine rows scored (indices into `Rows`).
    rows: Vec<usize>,
}

/// What is known of every spine row besides its inputs.
struct Rows {
    times: Vec<Option<i64>>,
    events: Option<Vec<Option<String>>>,
    ids: Option<Vec<Option<String>>>,
}

/// A spine column as text, one value per row.
fn text_column(
    name: &str,
    batches: &[datafusion::arrow::array::RecordBatch],
    column: &str,
) -> Result<Vec<Option<String>>> {
    use datafusion::arrow::array::{Array, AsArray};
    let array = sluice_model::frame::column(batches, column, "the spine")
        .map_err(|e| model_error(name, e))?;
    let text =
        datafusion::arrow::compute::cast(&array, &datafusion::arrow::datatypes::DataType::Utf8)
            .map_err(|e| model_error(name, format!("`{column}`: {e}")))?;
    let text = text.as_string::<i32>();
    Ok((0..text.len())
        .map(|i| (!text.is_null(i)).then(|| text.value(i).to_string()))
        .collect())
}

/// Runs the backtest.
pub async fn backtest(ws: &Workspace, req: &BacktestRequest) -> Result<BacktestSummary> {
    let started = Instant::now();
    let name = req.model.as_str();
    let def = model_def(ws, name)?;
    if req.to <= req.from {
        return Err(model_error(name, "`--to` must come after `--from`"));
    }
    let (Some(spine), Some(label)) = (&def.spine, &def.label) else {
        return Err(model_error(
            name,
            "a backtest needs the model's spine and label\n  help: an imported model without a spine cannot be measured",
        ));
    };
    let reused = match req.reuse {
        Some(v) => Some(load_model(ws, name, v)?),
        None => None,
    };
    if reused.is_none() && matches!(def.learner, sluice_project::Learner::Onnx { .. }) {
        return Err(model_error(
            name,
            "an imported model cannot be retrained\n  help: pass `--reuse` to score each period with it",
        ));
    }
    let ex = examples(
        ws,
        name,
        def,
        spine,
        def.timestamp.as_deref(),
        AsOf::Latest,
        None,
    )
    .await?;
    let y = labels(name, &ex.batches, label, def.task)?;
    let times = sluice_model::frame::times(&ex.batches, &ex.time, "the spine")
        .map_err(|e| model_error(name, e))?;
    let payoff: Option<Vec<f64>> = match &req.payoff {
        None => None,
        Some(col) => {
            let array = sluice_model::frame::column(&ex.batches, col, "the spine")
                .map_err(|e| model_error(name, e))?;
            match sluice_model::frame::read(col, &array, sluice_model::Kind::Numeric)
                .map_err(|e| model_error(name, e))?
            {
                Values::Numeric(v) => Some(v),
                Values::Categorical(_) => None,
            }
        }
    };
    let names: Vec<String> = match &reused {
        Some(m) => m.model.input_names(),
        None => ex.inputs.iter().map(|i| i.name.clone()).collect(),
    };
    let frame = Frame::from_batches(&ex.batches, &names, "the training set")
        .map_err(|e| model_error(name, e))?;
    let rows = Rows {
        events: match &req.group_by {
            Some(c) => Some(text_column(name, &ex.batches, c)?),
            None => None,
        },
        ids: match &req.id {
            Some(c) => Some(text_column(name, &ex.batches, c)?),
            None => None,
        },
        times,
    };
    let times = &rows.times;
    let known = label_known(name, def, &ex.batches, times)?;
    let known = known.as_deref();
    // Periods that start after the last labelled row have nothing to score:
    // not listed.
    let last = (0..y.len())
        .filter(|&i| y[i].is_some())
        .filter_map(|i| times[i])
        .max()
        .and_then(DateTime::from_timestamp_micros);
    let to = req.to;

    let mut periods = Vec::new();
    let mut all = Scored {
        scores: Vec::new(),
        labels: Vec::new(),
        payoff: Vec::new(),
        rows: Vec::new(),
    };
    let (mut acted, mut hits, mut total_return) = (0u64, 0u64, 0.0);
    let mut start = req.from;
    while start < to && last.is_some_and(|l| start <= l) {
        let end = req.period.after(start).min(to);
        let (a, b) = (start.timestamp_micros(), end.timestamp_micros());
        let in_period: Vec<usize> = (0..y.len())
            .filter(|&i| y[i].is_some() && times[i].is_some_and(|t| t >= a && t < b))
            .collect();
        // A model retrained at the period's start learns from the rows whose
        // label was known by then.
        let (before, pending): (Vec<usize>, Vec<usize>) = (0..y.len())
            .filter(|&i| y[i].is_some() && times[i].is_some_and(|t| t < a))
            .partition(|&i| known_at(known, i, a));
        let period_labels: Vec<f64> = in_period.iter().filter_map(|&i| y[i]).collect();
        let label_pending = if reused.is_none() && !in_period.is_empty() {
            pending.len() as u64
        } else {
            0
        };
        let (scores, train_rows, version) = if in_period.is_empty() {
            (Vec::new(), 0, None)
        } else {
            match &reused {
                Some(m) => {
                    let model = m.model.clone();
                    let part = frame.take(&in_period);
                    let scores = tokio::task::spawn_blocking(move || model.predict(&part))
                        .await
                        .map_err(|e| model_error(name, e))?
                        .map_err(|e| model_error(name, e))?;
                    (scores, 0, Some(m.version.version))
                }
                None => {
                    let scores =
                        retrain(name, def, &ex.inputs, &frame, &y, &before, &in_period).await?;
                    (scores, before.len() as u64, None)
                }
            }
        };
        let pay: Vec<f64> = match &payoff {
            Some(p) => in_period.iter().map(|&i| p[i]).collect(),
            None => Vec::new(),
        };
        let result = period_result(
            def.task,
            def.threshold,
            start,
            end,
            &Scored {
                scores: scores.clone(),
                labels: period_labels.clone(),
                payoff: pay.clone(),
                rows: in_period.clone(),
            },
            (req, &rows),
            (train_rows, label_pending),
            version,
        );
        acted += result.acted;
        hits += result.hits;
        total_return += result.r#return.unwrap_or(0.0);
        all.scores.extend(scores);
        all.labels.extend(period_labels);
        all.payoff.extend(pay);
        all.rows.extend(in_period);
        periods.push(result);
        start = end;
    }
    let mut total = period_result(
        def.task,
        def.threshold,
        req.from,
        start.min(to),
        &all,
        (req, &rows),
        (0, 0),
        reused.as_ref().map(|m| m.version.version),
    );
    total.label_pending = periods.iter().map(|p| p.label_pending).sum();
    // The simulation acts per period; its totals are the periods' sums, and
    // its picks are the periods' picks.
    total.picks = Vec::new();
    total.acted = acted;
    total.hits = hits;
    total.hit_rate = (acted > 0 && def.task == Task::Binary).then(|| hits as f64 / acted as f64);
    total.r#return = req.payoff.as_ref().map(|_| total_return);
    Ok(BacktestSummary {
        model: name.to_string(),
        mode: match &reused {
            Some(m) => format!("version {}", m.version.version),
            None => "retrain".to_string(),
        },
        warnings: reused
            .as_ref()
            .and_then(|m| in_sample(&m.version, req.from))
            .into_iter()
            .chain(pooled(reused.is_none(), &periods))
            .collect(),
        periods,
        total,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// A warning when a reused version was trained on rows the backtest scores:
/// its training rows are those before its validation start.
fn in_sample(version: &sluice_store::ModelVersion, from: DateTime<Utc>) -> Option<String> {
    let valid_from = version.valid_from.as_deref()?;
    let trained_until = sluice_project::models::parse_time(valid_from)?;
    (trained_until > from.timestamp_micros() && version.train_rows > 0).then(|| {
        format!(
            "version {} was trained on the rows before {valid_from}: the periods before that are scored in-sample, so their metrics flatter the model\n  help: backtest from {valid_from} on, or leave out `--reuse` to retrain before each period",
            version.version
        )
    })
}

/// A note when the overall metrics pool the scores of several retrained models.
fn pooled(retrained: bool, periods: &[PeriodResult]) -> Option<String> {
    let models = periods.iter().filter(|p| p.rows > 0).count();
    (retrained && models > 1).then(|| {
        format!(
            "the overall metrics pool the scores of {models} models, one retrained before each period; their scales differ, so compare the periods' metrics"
        )
    })
}

/// Trains on the rows `before` and scores the rows `period`.
async fn retrain(
    name: &str,
    def: &sluice_project::ModelDef,
    inputs: &[sluice_model::Input],
    frame: &Frame,
    y: &[Option<f64>],
    before: &[usize],
    period: &[usize],
) -> Result<Vec<f64>> {
    if before.is_empty() {
        return Err(model_error(
            name,
            "no labelled rows before the first period\n  help: start the backtest later (`--from`)",
        ));
    }
    let train_frame = frame.take(before);
    let valid_frame = frame.take(period);
    let y_train: Vec<f64> = before.iter().filter_map(|&i| y[i]).collect();
    let y_valid: Vec<f64> = period.iter().filter_map(|&i| y[i]).collect();
    let (task, learner, threshold, inputs) = (
        def.task,
        def.learner.clone(),
        def.threshold,
        inputs.to_vec(),
    );
    let trained = tokio::task::spawn_blocking(move || {
        let t = sluice_model::train(
            task,
            &learner,
            threshold,
            inputs,
            sluice_model::Split {
                frame: &train_frame,
                labels: &y_train,
            },
            sluice_model::Split {
                frame: &valid_frame,
                labels: &y_valid,
            },
        )?;
        t.model.predict(&valid_frame)
    })
    .await
    .map_err(|e| Error::Model {
        model: name.to_string(),
        message: e.to_string(),
    })?;
    trained.map_err(|e| model_error(name, e))
}

#[allow(clippy::too_many_arguments)]
fn period_result(
    task: Task,
    threshold: f64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    s: &Scored,
    (req, rows): (&BacktestRequest, &Rows),
    (train_rows, label_pending): (u64, u64),
    version: Option<u64>,
) -> PeriodResult {
    let metrics = if s.scores.is_empty() {
        BTreeMap::new()
    } else {
        metrics::evaluate(task, &s.scores, &s.labels, threshold)
            .into_iter()
            .map(|(m, v)| (m.as_str().to_string(), v))
            .collect()
    };
    let mut order: Vec<usize> = (0..s.scores.len()).collect();
    order.sort_by(|&a, &b| s.scores[b].total_cmp(&s.scores[a]).then(a.cmp(&b)));
    let event =
        |i: usize| -> Option<&String> { rows.events.as_ref().and_then(|e| e[s.rows[i]].as_ref()) };
    // The best `top_k` of the period, or of each event in it.
    let mut taken: BTreeMap<Option<&String>, usize> = BTreeMap::new();
    let chosen: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| {
            let n = taken.entry(event(i)).or_insert(0);
            *n += 1;
            *n <= req.top_k
        })
        .collect();
    let chosen = chosen.as_slice();
    let picks = chosen
        .iter()
        .map(|&i| Pick {
            event: event(i).cloned(),
            id: rows.ids.as_ref().and_then(|ids| ids[s.rows[i]].clone()),
            time: rows.times[s.rows[i]]
                .and_then(DateTime::from_timestamp_micros)
                .map(sluice_core::render::instant)
                .unwrap_or_default(),
            score: s.scores[i],
            label: s.labels[i],
            payoff: req
                .payoff
                .as_ref()
                .map(|_| s.payoff.get(i).copied().unwrap_or(f64::NAN)),
        })
        .collect();
    let hits = chosen.iter().filter(|&&i| s.labels[i] > 0.5).count() as u64;
    let acted = chosen.len() as u64;
    PeriodResult {
        start: sluice_core::render::instant(start),
        end: sluice_core::render::instant(end),
        rows: s.scores.len() as u64,
        train_rows,
        label_pending,
        model_version: version,
        metrics,
        mean_label: (!s.labels.is_empty())
            .then(|| s.labels.iter().sum::<f64>() / s.labels.len() as f64),
        acted,
        hits: if task == Task::Binary { hits } else { 0 },
        hit_rate: (acted > 0 && task == Task::Binary).then(|| hits as f64 / acted as f64),
        r#return: req.payoff.as_ref().map(|_| {
            chosen
                .iter()
                .map(|&i| {
                    s.payoff
                        .get(i)
                        .copied()
                        .filter(|p| !p.is_nan())
                        .unwrap_or(0.0)
                })
                .sum::<f64>()
                - req.stake * acted as f64
        }),
        picks,
    }
}
