//! Deliveries left pending by a process that stopped — killed while a
//! receiver hung, or gone before its retries ended — are taken over by the next
//! `sluice run`, `sluice backfill` or `sluice serve` (and by the server's
//! periodic judge): their owner's lock file is free, so the rows are claimed in
//! one guarded `UPDATE` and their remaining attempts made here. A delivery
//! whose owner is alive is left to it; one is never sent by two processes.

use std::sync::Arc;

use sluice_store::{ClaimedDelivery, DeliveryState, OutboxLock};

use super::message::Message;
use super::send::attempt_until_done;
use crate::Workspace;

/// Claims the pending deliveries of every outbox that is gone and delivers
/// them in the background ([`super::Outbox::wait`] waits for them too); how
/// many were claimed. Never fails: a problem is logged.
pub fn resume(ws: &Arc<Workspace>) -> usize {
    match claim(ws) {
        Ok(claimed) => {
            let n = claimed.len();
            for d in claimed {
                restart(ws, d);
            }
            n
        }
        Err(e) => {
            tracing::warn!("could not resume the alert deliveries left pending: {e}");
            0
        }
    }
}

fn claim(ws: &Workspace) -> crate::Result<Vec<ClaimedDelivery>> {
    // No token is "-": before this process has one, every owner is another's.
    let mine = ws.outbox.token().unwrap_or("-").to_string();
    let dir = ws.warehouse.outbox_dir();
    let mut out = Vec::new();
    for owner in ws.metadata.pending_owners(&mine)? {
        // Held while its rows are claimed; the file goes when it is dropped.
        let Some(_gone) = OutboxLock::if_gone(&dir, &owner)? else {
            continue;
        };
        let me = ws.outbox.owner(ws);
        out.extend(ws.metadata.claim_deliveries(&owner, me)?);
    }
    Ok(out)
}

/// Continues one claimed delivery where its owner left it, or gives it up when
/// it can no longer be sent (its alert or channel left the project, or the row
/// predates kept messages).
fn restart(ws: &Arc<Workspace>, d: ClaimedDelivery) {
    let channel = ws
        .project
        .alerts
        .get(&d.alert)
        .and_then(|a| a.channels.iter().find(|c| c.kind() == d.channel))
        .cloned();
    let message = d
        .message
        .as_deref()
        .and_then(|m| serde_json::from_str::<Message>(m).ok());
    let (Some(channel), Some(message)) = (channel, message) else {
        let why = format!(
            "left pending by a process that stopped, and cannot be resumed: {}",
            if d.message.is_none() {
                "its message was not kept".to_string()
            } else {
                format!(
                    "alert `{}` has no {} channel in the project now",
                    d.alert, d.channel
                )
            }
        );
        tracing::warn!(alert = %d.alert, channel = %d.channel, "{why}");
        if let Err(e) = ws.metadata.update_delivery(
            d.id,
            DeliveryState::Failed,
            d.attempts,
            Some(&why),
            ws.now(),
        ) {
            tracing::warn!(alert = %d.alert, "could not record an alert delivery: {e}");
        }
        return;
    };
    tracing::info!(
        alert = %d.alert,
        channel = %d.channel,
        "resuming an alert delivery left pending by a process that stopped (after {} attempt(s))",
        d.attempts
    );
    let ws2 = ws.clone();
    ws.outbox.spawn(async move {
        let _ = attempt_until_done(&ws2, Some(d.id), &channel, &message, d.attempts).await;
    });
}
