//! Cancelling a run from any process: the run log holds the request, and the
//! process running the run polls it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::Workspace;

/// Whether someone asked the run to stop (`sluice runs cancel`, `POST
/// /v1/runs/{id}/cancel`, from any process): the run log is polled, since the
/// request may come from another process.
pub(crate) struct CancelWatch {
    rx: watch::Receiver<bool>,
    poller: tokio::task::JoinHandle<()>,
}

/// How often a run looks for a request to cancel it.
const CANCEL_POLL: Duration = Duration::from_millis(200);

impl CancelWatch {
    pub(crate) fn start(ws: &Arc<Workspace>, run_id: i64) -> Self {
        // A run cancelled while it was queued launches nothing.
        let asked = ws.metadata.cancel_requested(run_id).unwrap_or(false);
        let (tx, rx) = watch::channel(asked);
        let ws = ws.clone();
        let poller = tokio::spawn(async move {
            if !asked {
                loop {
                    tokio::time::sleep(CANCEL_POLL).await;
                    if ws.metadata.cancel_requested(run_id).unwrap_or(false) {
                        tracing::info!(run = run_id, "the run was asked to stop");
                        let _ = tx.send(true);
                        break;
                    }
                }
            }
            // The sender lives as long as the run, so that waiting for a
            // cancellation never ends by the channel closing.
            std::future::pending::<()>().await;
        });
        CancelWatch { rx, poller }
    }

    pub(crate) fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        self.poller.abort();
    }
}
