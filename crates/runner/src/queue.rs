//! The runs of one process take turns: a run asked for while another runs (a
//! schedule's tick, `POST /v1/runs`) is recorded as `queued` and waits, instead
//! of being refused; a request identical to one already waiting joins it and
//! gets its result. Across processes the run lock still refuses (`Busy`).

use std::sync::Mutex;

use tokio::sync::watch;

use crate::run::RunSummary;

/// What a queued run ended with, as the requests that joined it see it.
pub(crate) type Ended = Option<Result<RunSummary, String>>;

/// The turn of the process's runs, and the runs waiting for it.
#[derive(Debug, Default)]
pub struct RunQueue {
    /// Held by the run in progress.
    pub(crate) turn: tokio::sync::Mutex<()>,
    /// Runs waiting for the turn, oldest first.
    waiting: Mutex<Vec<Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    /// The assets asked for, sorted (empty: all).
    targets: Vec<String>,
    run_id: i64,
    ended: watch::Receiver<Ended>,
}

impl RunQueue {
    /// The waiting run asked for the same assets, if there is one.
    pub(crate) fn join(&self, targets: &[String]) -> Option<(i64, watch::Receiver<Ended>)> {
        let key = sorted(targets);
        self.lock()
            .iter()
            .find(|w| w.targets == key)
            .map(|w| (w.run_id, w.ended.clone()))
    }

    /// Puts a run in the queue.
    pub(crate) fn push(&self, targets: &[String], run_id: i64, ended: watch::Receiver<Ended>) {
        self.lock().push(Waiting {
            targets: sorted(targets),
            run_id,
            ended,
        });
    }

    /// The run has its turn: no request joins it any more.
    pub(crate) fn remove(&self, run_id: i64) {
        self.lock().retain(|w| w.run_id != run_id);
    }

    /// How many runs wait.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn sorted(targets: &[String]) -> Vec<String> {
    let mut v = targets.to_vec();
    v.sort();
    v.dedup();
    v
}
