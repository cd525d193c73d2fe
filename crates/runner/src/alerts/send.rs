//! Delivery: each message to each channel in a background task, retried with
//! exponential backoff, every attempt recorded in the run log — never blocking
//! or failing the run that caused it. [`Outbox::wait`] lets a process that is
//! about to exit (`sluice run`) finish what is pending, within a bound.
//!
//! Errors name the channel's host and what went wrong, never the URL (a chat
//! webhook's URL is its password) nor a password.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sluice_project::Channel;
use sluice_store::{DeliveryState, NewDelivery, OutboxLock};
use tokio::task::JoinSet;

use super::message::Message;
use crate::Workspace;

/// Why one attempt at a delivery failed: the host, never the URL or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A `${VAR}` of the channel is not set where sluice runs.
    #[error(
        "environment variable `{variable}` is not set\n  help: set it where sluice runs; the alert's channel reads it when it sends"
    )]
    Unset {
        /// The variable.
        variable: String,
    },
    /// The webhook's URL (after `${VAR}` expansion) is not an http(s) URL.
    #[error(
        "the webhook URL is not an http(s) URL\n  help: check the variable the alert's `url` names"
    )]
    BadUrl,
    /// The receiver answered with an error status.
    #[error("{host} answered HTTP {status}")]
    Status {
        /// The receiver's host.
        host: String,
        /// The status code.
        status: u16,
    },
    /// The request could not be made or answered.
    #[error("{host}: {reason}")]
    Http {
        /// The receiver's host.
        host: String,
        /// What went wrong, without the URL.
        reason: String,
    },
    /// The SMTP server refused a step.
    #[error("SMTP server {host} refused {stage}: {reply}")]
    Smtp {
        /// The server's host.
        host: String,
        /// The step (`MAIL FROM`, `AUTH`...).
        stage: &'static str,
        /// Its reply.
        reply: String,
    },
    /// Reading from or writing to the server failed.
    #[error("{host}: {reason}")]
    Io {
        /// The server's host.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// The attempt took longer than its limit.
    #[error("{host} did not answer within {seconds}s")]
    Timeout {
        /// The receiver's host.
        host: String,
        /// The limit.
        seconds: u64,
    },
}

impl SendError {
    pub(crate) fn unset(e: sluice_core::UnsetVariable) -> Self {
        SendError::Unset { variable: e.0 }
    }

    /// Whether trying again may help: not for a missing variable, a bad URL,
    /// or a 4xx answer (but 408 and 429).
    pub fn retryable(&self) -> bool {
        match self {
            SendError::Unset { .. } | SendError::BadUrl => false,
            SendError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            // 5xx replies are transient; 4xx... are too (RFC 5321 4.2.1), 5xx not.
            SendError::Smtp { reply, .. } => !reply.starts_with('5'),
            SendError::Http { .. } | SendError::Io { .. } | SendError::Timeout { .. } => true,
        }
    }
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// The wait after the first failed attempt; doubled after each next one.
    pub first_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// The limit of one attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts over about 15 s of waits (1, 2, 4, 8 s), 10 s each at most:
    /// a delivery ends within 65 s.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    fn delay_after(&self, attempt: u32) -> Duration {
        self.first_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay)
    }

    /// The longest a delivery can take.
    pub fn bound(&self) -> Duration {
        (1..self.attempts)
            .map(|n| self.delay_after(n))
            .fold(self.timeout * self.attempts, |a, b| a + b)
    }
}

/// The deliveries of this process in flight.
#[derive(Debug, Default)]
pub struct Outbox {
    tasks: Mutex<JoinSet<()>>,
    /// How deliveries are retried.
    pub retry: RetryPolicy,
    client: OnceLock<reqwest::Client>,
    owner: OnceLock<Owner>,
}

/// This process's outbox token, named by the deliveries it records, and the
/// lock that says it is alive.
#[derive(Debug)]
struct Owner {
    token: String,
    _lock: Option<OutboxLock>,
}

impl Outbox {
    /// An outbox retrying as `retry` says.
    pub fn new(retry: RetryPolicy) -> Self {
        Outbox {
            retry,
            ..Outbox::default()
        }
    }

    /// Queues `message` for `channel` of alert `alert`, delivered in the
    /// background. Must be called within a tokio runtime.
    pub(crate) fn post(ws: &Arc<Workspace>, channel: &Channel, message: &Arc<Message>) {
        let ws2 = ws.clone();
        let channel = channel.clone();
        let message = message.clone();
        let mut tasks = ws.outbox.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Reap the finished ones, so a long-lived server holds only what runs.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let _ = deliver(&ws2, &channel, &message).await;
        });
    }

    /// Runs `delivery` in the background, waited for by [`Outbox::wait`].
    pub(super) fn spawn(&self, delivery: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(delivery);
    }

    /// This process's token, once it has one.
    pub(super) fn token(&self) -> Option<&str> {
        self.owner.get().map(|o| o.token.as_str())
    }

    /// The token this process's deliveries are recorded under; its lock file
    /// is made in the warehouse the first time (without one — a read-only
    /// warehouse — the deliveries are still sent, and would be resumed by the
    /// next process if this one stopped while sending them).
    pub(super) fn owner(&self, ws: &Workspace) -> &str {
        &self
            .owner
            .get_or_init(|| match OutboxLock::take(&ws.warehouse.outbox_dir()) {
                Ok(lock) => Owner {
                    token: lock.token().to_string(),
                    _lock: Some(lock),
                },
                Err(e) => {
                    tracing::warn!("could not mark this process's alert outbox: {e}");
                    Owner {
                        token: format!("{}-unlocked", std::process::id()),
                        _lock: None,
                    }
                }
            })
            .token
    }

    /// Waits until every delivery queued so far is delivered or given up, at
    /// most `bound`; `false` when some were still pending then.
    pub async fn wait(&self, bound: Duration) -> bool {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        tokio::time::timeout(bound, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_ok()
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            let _ = crypto_provider();
            reqwest::Client::builder()
                .timeout(self.retry.timeout)
                .build()
                .unwrap_or_default()
        })
    }
}

/// The process's rustls crypto provider: aws-lc-rs (built in the tree for
/// object_store), installed as the default once, so that reqwest and the SMTP
/// client agree.
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// Delivers one message to one channel: records it, tries it until it is
/// accepted, cannot be, or its attempts are spent, recording each attempt.
pub(crate) async fn deliver(
    ws: &Workspace,
    channel: &Channel,
    message: &Message,
) -> Result<(), SendError> {
    let stored = serde_json::to_string(message).unwrap_or_default();
    let id = ws
        .metadata
        .begin_delivery(
            NewDelivery {
                alert: &message.alert,
                asset: message.asset.as_deref(),
                run_id: message.run_id,
                event: message.event.as_str(),
                channel: channel.kind(),
                owner: ws.outbox.owner(ws),
                message: &stored,
            },
            ws.now(),
        )
        .map_err(|e| {
            tracing::warn!(alert = %message.alert, "could not record an alert delivery: {e}");
        })
        .ok();
    attempt_until_done(ws, id, channel, message, 0).await
}

/// Tries delivery `id` (when it could be recorded) after the `made` attempts
/// already made, until it is accepted, cannot be, or its attempts are spent,
/// recording each attempt.
pub(super) async fn attempt_until_done(
    ws: &Workspace,
    id: Option<i64>,
    channel: &Channel,
    message: &Message,
    made: u32,
) -> Result<(), SendError> {
    let retry = ws.outbox.retry;
    let mut attempt = made;
    loop {
        attempt += 1;
        let result =
            match tokio::time::timeout(retry.timeout, send_once(ws, channel, message)).await {
                Ok(r) => r,
                Err(_) => Err(SendError::Timeout {
                    host: host_of(channel),
                    seconds: retry.timeout.as_secs(),
                }),
            };
        let last = match &result {
            Ok(()) => true,
            Err(e) => !e.retryable() || attempt >= retry.attempts,
        };
        let state = match (&result, last) {
            (Ok(()), _) => DeliveryState::Delivered,
            (Err(_), true) => DeliveryState::Failed,
            (Err(_), false) => DeliveryState::Pending,
        };
        let error = result.as_ref().err().map(ToString::to_string);
        if let Some(id) = id
            && let Err(e) =
                ws.metadata
                    .update_delivery(id, state, attempt, error.as_deref(), ws.now())
        {
            tracing::warn!(alert = %message.alert, "could not record an alert delivery: {e}");
        }
        match (&result, last) {
            (Ok(()), _) => return Ok(()),
            (Err(e), true) => {
                tracing::warn!(
                    alert = %message.alert,
                    channel = channel.kind(),
                    "alert not delivered after {attempt} attempt(s): {e}"
                );
                return result;
            }
            (Err(e), false) => {
                tracing::info!(
                    alert = %message.alert,
                    channel = channel.kind(),
                    "alert delivery attempt {attempt} failed, retrying: {e}"
                );
                tokio::time::sleep(retry.delay_after(attempt)).await;
            }
        }
    }
}

/// Where a channel sends, for messages: a webhook's host, an SMTP server.
fn host_of(channel: &Channel) -> String {
    match channel {
        Channel::Webhook { url, .. } => url
            .expose()
            .ok()
            .and_then(|u| reqwest::Url::parse(&u).ok())
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "the webhook".into()),
        Channel::Email(e) => e.host.clone(),
    }
}

/// One attempt at one channel.
async fn send_once(ws: &Workspace, channel: &Channel, message: &Message) -> Result<(), SendError> {
    match channel {
        Channel::Webhook { url, format } => {
            let url = url.expose().map_err(SendError::unset)?;
            let url = reqwest::Url::parse(&url).map_err(|_| SendError::BadUrl)?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(SendError::BadUrl);
            }
            let host = url.host_str().unwrap_or_default().to_string();
            let body = match format {
                sluice_project::WebhookFormat::Slack => message.slack_body(),
                sluice_project::WebhookFormat::Json => message.json_body(),
            };
            let response = ws
                .outbox
                .client()
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body).unwrap_or_default())
                .send()
                .await
                .map_err(|e| SendError::Http {
                    host: host.clone(),
                    reason: without_url(e),
                })?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(SendError::Status {
                    host,
                    status: status.as_u16(),
                })
            }
        }
        Channel::Email(def) => super::smtp::send(def, &message.headline(), &message.text).await,
    }
}

/// A reqwest error and its causes, without the URL it carries.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
