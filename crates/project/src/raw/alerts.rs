//! `[alerts.NAME]`: which events of which assets are sent where (a webhook,
//! e-mail over SMTP). Secrets (a webhook URL, an SMTP password) are written as
//! `${ENV}` references and read as [`Secret`]s, expanded only when sent.

use serde::Deserialize;
use sluice_core::Secret;
use toml::Spanned;

use super::DurationWord;

/// `[alerts.NAME]`: events, assets and channels. An alert is not an asset: it
/// claims no asset name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSection {
    /// The events that open (or close) an incident.
    pub on: Spanned<Vec<AlertEvent>>,
    /// The assets watched: `NAME`, or `NAME+` for the asset and everything
    /// downstream of it. Default (or empty): every asset.
    #[serde(default)]
    pub assets: Option<Vec<Spanned<String>>>,
    /// While an incident stays open, send a reminder this long after the last
    /// message. Default: no reminder.
    #[serde(default)]
    pub repeat: Option<Spanned<DurationWord>>,
    /// An HTTP POST of a JSON body.
    #[serde(default)]
    pub webhook: Option<Spanned<WebhookSection>>,
    /// An e-mail over SMTP.
    #[serde(default)]
    pub email: Option<Spanned<EmailSection>>,
    /// Whether it is sent. Default: true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// The events an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// An asset failed (after its retries): the first failure after a success.
    Failure,
    /// An open incident of the alert ended: the asset succeeded again, its
    /// checks pass again.
    Recovered,
    /// A check of the asset's contract (other than freshness and drift) failed
    /// or warned.
    Quality,
    /// A drift check (`psi`, `ks`) of the asset's contract failed or warned.
    Drift,
    /// A `freshness` check of the asset's contract failed or warned: its newest
    /// row is older than its `max_age`.
    Freshness,
    /// A schedule's ticks were missed while no scheduler ran, and skipped by
    /// its catch-up policy.
    ScheduleMissed,
}

impl AlertEvent {
    /// The word written in the project file, stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Failure => "failure",
            AlertEvent::Recovered => "recovered",
            AlertEvent::Quality => "quality",
            AlertEvent::Drift => "drift",
            AlertEvent::Freshness => "freshness",
            AlertEvent::ScheduleMissed => "schedule_missed",
        }
    }
}

/// `webhook = { url = "${SLACK_URL}", format = "slack" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Where the JSON body is POSTed; usually `${ENV}`, since a chat webhook's
    /// URL is its password.
    pub url: Secret,
    /// The body's shape. Default: `slack`.
    #[serde(default)]
    pub format: Option<WebhookFormat>,
}

/// The shape of a webhook's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"text": ...}`, which Slack, Mattermost and Microsoft Teams accept.
    #[default]
    Slack,
    /// sluice's own schema (see the README's "Alerts" section).
    Json,
}

impl WebhookFormat {
    /// The word written in the project file.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Slack => "slack",
            WebhookFormat::Json => "json",
        }
    }
}

/// `email = { smtp = "host:port", from = "...", to = [...] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// The SMTP server as `host:port` (587 for STARTTLS).
    pub smtp: Spanned<String>,
    /// Upgrade the connection with STARTTLS before authenticating. Default: true.
    #[serde(default)]
    pub starttls: Option<bool>,
    /// A PEM file of CA certificates to trust for the server's certificate, in
    /// addition to the system's (a private CA). Relative to the project folder.
    #[serde(default)]
    pub tls_ca: Option<Spanned<String>>,
    /// The user to authenticate as (AUTH PLAIN), usually `${ENV}`.
    #[serde(default)]
    pub username: Option<Secret>,
    /// Its password: only as `${ENV}`.
    #[serde(default)]
    pub password: Option<Spanned<Secret>>,
    /// The sender address.
    pub from: Spanned<String>,
    /// The recipients.
    pub to: Spanned<Vec<String>>,
}
