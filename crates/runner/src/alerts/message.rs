//! What an alert says: one [`Message`] per incident event, rendered as text
//! (e-mail, chat), as a Slack-compatible body (`{"text": ...}`, which Slack,
//! Mattermost and Microsoft Teams' incoming webhooks accept) and as sluice's own
//! JSON schema (`sluice.alert/1`, documented in the README).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sluice_validate::{CheckResult, ValidationReport, Verdict};

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The asset failed after a success: an incident opens.
    Failure,
    /// The incident is still open `repeat` after the last message.
    Reminder,
    /// The incident closed: the asset succeeded again, its checks pass.
    Recovered,
    /// A quality check failed or warned: an incident opens.
    Quality,
    /// A drift check failed or warned: an incident opens.
    Drift,
    /// A freshness check failed or warned: an incident opens.
    Freshness,
    /// A schedule's missed ticks were skipped.
    ScheduleMissed,
    /// `sluice alerts test NAME`.
    Test,
}

impl Event {
    /// The word stored with each delivery and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Failure => "failure",
            Event::Reminder => "reminder",
            Event::Recovered => "recovered",
            Event::Quality => "quality",
            Event::Drift => "drift",
            Event::Freshness => "freshness",
            Event::ScheduleMissed => "schedule_missed",
            Event::Test => "test",
        }
    }
}

/// A check named in a message: what was measured against what was allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckNote {
    /// The check's name.
    pub name: String,
    /// Its kind (`max`, `mean`, `psi`, `freshness`...).
    pub rule: String,
    /// The column it is about.
    pub column: Option<String>,
    /// `error` or `warn`.
    pub severity: String,
    /// `fail`.
    pub verdict: String,
    /// The value measured.
    pub observed: Option<f64>,
    /// What was allowed, as the contract says it.
    pub threshold: String,
    /// The validator's account of it.
    pub detail: String,
}

impl CheckNote {
    fn of(c: &CheckResult) -> Self {
        CheckNote {
            name: c.name.clone(),
            rule: c.rule.clone(),
            column: c.column.clone(),
            severity: c.severity.as_str().to_string(),
            verdict: c.verdict.as_str().to_string(),
            observed: c.observed,
            threshold: c.threshold.clone(),
            detail: c.detail.clone(),
        }
    }
}

/// The failed checks of a report that an event of `kind` is about (`None`:
/// every failed check).
pub(crate) fn failed_checks(report: &ValidationReport, kind: Option<CheckKind>) -> Vec<CheckNote> {
    report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .filter(|c| {
            matches!(
                c.severity,
                sluice_project::Severity::Error | sluice_project::Severity::Warn
            )
        })
        .filter(|c| kind.is_none_or(|k| CheckKind::of(&c.rule) == k))
        .map(CheckNote::of)
        .collect()
}

/// What a check watches, as alerts group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckKind {
    /// `freshness`.
    Freshness,
    /// `psi`, `ks`.
    Drift,
    /// Every other check.
    Quality,
}

impl CheckKind {
    pub(crate) fn of(rule: &str) -> Self {
        match rule {
            "freshness" => CheckKind::Freshness,
            "psi" | "ks" => CheckKind::Drift,
            _ => CheckKind::Quality,
        }
    }
}

/// One message about one asset (or a test), to every channel of an alert.
/// Recorded with each delivery as its JSON body, and read back to resume one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Always `sluice.alert/1`: the schema of the JSON format.
    #[serde(skip_deserializing, default = "schema")]
    pub schema: &'static str,
    /// The alert (`[alerts.NAME]`).
    pub alert: String,
    /// Why it is sent.
    pub event: Event,
    /// The project's name.
    pub project: String,
    /// The asset it is about (none for a test or a schedule).
    pub asset: Option<String>,
    /// The schedule it is about (`schedule_missed`).
    pub schedule: Option<String>,
    /// The run it is about (none for a test or a schedule).
    pub run_id: Option<i64>,
    /// `{public_url}/v1/runs/{run_id}`, when `[project] public_url` is set.
    pub run_url: Option<String>,
    /// The run that opened the incident (for a reminder or a recovery).
    pub incident_run_id: Option<i64>,
    /// The asset's status in the run (`failed`, `built`, `up_to_date`).
    pub status: Option<String>,
    /// The first line of the asset's error.
    pub error: Option<String>,
    /// The checks that failed or warned.
    pub checks: Vec<CheckNote>,
    /// When it was made (RFC 3339, UTC).
    pub at: String,
    /// The message as one text for people.
    pub text: String,
}

fn schema() -> &'static str {
    SCHEMA
}

/// The schema of the JSON format.
const SCHEMA: &str = "sluice.alert/1";

/// What a message is about, before its text is written.
pub(crate) struct About<'a> {
    pub(crate) alert: &'a str,
    pub(crate) event: Event,
    pub(crate) project: &'a str,
    pub(crate) public_url: Option<&'a str>,
    pub(crate) asset: Option<&'a str>,
    pub(crate) schedule: Option<&'a str>,
    pub(crate) run_id: Option<i64>,
    pub(crate) incident_run_id: Option<i64>,
    pub(crate) status: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) checks: Vec<CheckNote>,
    pub(crate) at: DateTime<Utc>,
}

impl<'a> About<'a> {
    /// A message of alert `alert` about `event` in `project`, at `at`, about
    /// nothing else yet (fill in the rest with struct update syntax).
    pub(crate) fn of(
        alert: &'a str,
        event: Event,
        project: &'a sluice_project::Project,
        at: DateTime<Utc>,
    ) -> Self {
        About {
            alert,
            event,
            project: &project.name,
            public_url: project.public_url.as_deref(),
            asset: None,
            schedule: None,
            run_id: None,
            incident_run_id: None,
            status: None,
            error: None,
            checks: vec![],
            at,
        }
    }
}

impl Message {
    /// The message, its text written from what it is about.
    pub(crate) fn new(a: About<'_>) -> Self {
        let run_url = match (a.public_url, a.run_id) {
            (Some(base), Some(id)) => Some(format!("{base}/v1/runs/{id}")),
            _ => None,
        };
        let error = a
            .error
            .and_then(|e| e.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(str::to_string);
        let mut m = Message {
            schema: SCHEMA,
            alert: a.alert.to_string(),
            event: a.event,
            project: a.project.to_string(),
            asset: a.asset.map(str::to_string),
            schedule: a.schedule.map(str::to_string),
            run_id: a.run_id,
            run_url,
            incident_run_id: a.incident_run_id,
            status: a.status.map(str::to_string),
            error,
            checks: a.checks,
            at: a.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            text: String::new(),
        };
        m.text = m.render();
        m
    }

    /// One line for a subject or a chat's first line.
    pub fn headline(&self) -> String {
        let asset = self.asset.as_deref().unwrap_or("?");
        let run = self
            .run_id
            .map_or(String::new(), |r| format!(" in run {r}"));
        let since = self
            .incident_run_id
            .map_or(String::new(), |r| format!(" (since run {r})"));
        let what = match self.event {
            Event::Failure => format!("`{asset}` failed{run}"),
            Event::Reminder => format!("`{asset}` is still failing{run}{since}"),
            Event::Recovered => format!("`{asset}` recovered{run}{since}"),
            Event::Quality => format!("`{asset}`: a quality check failed{run}"),
            Event::Drift => format!("`{asset}`: drift{run}"),
            Event::Freshness => format!("`{asset}` is stale{run}"),
            Event::ScheduleMissed => format!(
                "schedule `{}` missed ticks",
                self.schedule.as_deref().unwrap_or("?")
            ),
            Event::Test => format!("test message of alert `{}`", self.alert),
        };
        format!("[{}] {what}", self.project)
    }

    fn render(&self) -> String {
        let mut out = self.headline();
        if let Some(e) = &self.error {
            out.push_str(&format!("\nerror: {e}"));
        }
        for c in &self.checks {
            let column = c
                .column
                .as_deref()
                .map_or(String::new(), |col| format!(" on `{col}`"));
            let observed = c.observed.map_or("n/a".to_string(), |v| format!("{v}"));
            out.push_str(&format!(
                "\ncheck `{}` ({}{column}, {}): observed {observed}, threshold {}",
                c.name, c.rule, c.severity, c.threshold
            ));
        }
        if let Some(url) = &self.run_url {
            out.push_str(&format!("\nrun: {url}"));
        }
        out
    }

    /// The body of a `format = "slack"` webhook.
    pub fn slack_body(&self) -> serde_json::Value {
        serde_json::json!({ "text": self.text })
    }

    /// The body of a `format = "json"` webhook.
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> Message {
        Message::new(About {
            alert: "oncall",
            event: Event::Failure,
            project: "flights",
            public_url: Some("https://sluice.example.com"),
            asset: Some("daily"),
            schedule: None,
            run_id: Some(12),
            incident_run_id: None,
            status: Some("failed"),
            error: Some("\nsluice.toml:4:1: cannot cast `AA` to Int32\n  help: fix the data"),
            checks: vec![CheckNote {
                name: "max_delay".into(),
                rule: "max".into(),
                column: Some("dep_delay".into()),
                severity: "error".into(),
                verdict: "fail".into(),
                observed: Some(1301.0),
                threshold: "<= 1000".into(),
                detail: String::new(),
            }],
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        })
    }

    #[test]
    fn a_message_names_the_asset_run_error_check_and_link() {
        let m = failure();
        assert_eq!(
            m.text,
            "[flights] `daily` failed in run 12\n\
             error: sluice.toml:4:1: cannot cast `AA` to Int32\n\
             check `max_delay` (max on `dep_delay`, error): observed 1301, threshold <= 1000\n\
             run: https://sluice.example.com/v1/runs/12"
        );
        assert_eq!(m.slack_body(), serde_json::json!({ "text": m.text }));
        let json = m.json_body();
        assert_eq!(json["schema"], "sluice.alert/1");
        assert_eq!(json["event"], "failure");
        assert_eq!(json["run_url"], "https://sluice.example.com/v1/runs/12");
        assert_eq!(json["checks"][0]["observed"], 1301.0);
        assert_eq!(json["at"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn checks_are_grouped_by_what_they_watch() {
        assert_eq!(CheckKind::of("psi"), CheckKind::Drift);
        assert_eq!(CheckKind::of("ks"), CheckKind::Drift);
        assert_eq!(CheckKind::of("freshness"), CheckKind::Freshness);
        assert_eq!(CheckKind::of("max"), CheckKind::Quality);
    }
}
