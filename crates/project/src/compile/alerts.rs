//! `[alerts.NAME]` into an [`AlertDef`]: events, the assets watched (the same
//! selection words as a schedule's), `repeat`, and the channels, checked when
//! the project loads — a password written in the file, an SMTP server without
//! a port, an alert with nowhere to go are errors of the file, not a silent
//! alert.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sluice_core::{Location, Secret};

use super::Builder;
use super::schedules::{ScheduleTarget, compile_each, targets};
use crate::diag::Diagnostic;
use crate::parse::Entry;
use crate::raw::{AlertEvent, AlertSection, WebhookFormat};

/// A compiled alert.
#[derive(Debug, Clone)]
pub struct AlertDef {
    /// Its name (`[alerts.NAME]`).
    pub name: String,
    /// Where it is defined.
    pub location: Location,
    /// The events it is about.
    pub events: BTreeSet<AlertEvent>,
    /// The assets it watches; empty: every asset.
    pub assets: Vec<ScheduleTarget>,
    /// A reminder this long after the last message while an incident is open.
    pub repeat: Option<Duration>,
    /// Where it is sent, in the order written (webhook, then e-mail).
    pub channels: Vec<Channel>,
    /// Whether it is sent.
    pub enabled: bool,
    /// Free text for people.
    pub description: Option<String>,
}

impl AlertDef {
    /// Whether it is about `event`.
    pub fn wants(&self, event: AlertEvent) -> bool {
        self.events.contains(&event)
    }
}

/// Where an alert goes.
#[derive(Debug, Clone)]
pub enum Channel {
    /// An HTTP POST of a JSON body.
    Webhook {
        /// The URL as written (`${SLACK_URL}`), expanded only when sent.
        url: Secret,
        /// The body's shape.
        format: WebhookFormat,
    },
    /// An e-mail over SMTP.
    Email(EmailDef),
}

impl Channel {
    /// Its kind, as recorded with each delivery: `webhook` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Webhook { .. } => "webhook",
            Channel::Email(_) => "email",
        }
    }
}

/// An e-mail channel.
#[derive(Debug, Clone)]
pub struct EmailDef {
    /// The SMTP server's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Upgrade the connection with STARTTLS before anything else is sent.
    pub starttls: bool,
    /// CA certificates (a PEM file) trusted for the server besides the system's.
    pub tls_ca: Option<std::path::PathBuf>,
    /// The user to authenticate as, with the password (AUTH PLAIN).
    pub credentials: Option<(Secret, Secret)>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// Compiles every `[alerts.NAME]`; asset names are checked against the assets
/// compiled so far (call after every asset is added).
pub(super) fn compile(b: &mut Builder<'_>) -> BTreeMap<String, AlertDef> {
    let raw = b.raw;
    compile_each(b, &raw.alerts, compile_one)
}

fn compile_one(
    b: &mut Builder<'_>,
    names: &BTreeSet<String>,
    name: &str,
    entry: &Entry<AlertSection>,
) -> Option<AlertDef> {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let section = &entry.value;
    let before = b.diags.len();
    let events: BTreeSet<AlertEvent> = section.on.get_ref().iter().copied().collect();
    if events.is_empty() {
        b.diags.push(
            Diagnostic::new(
                raw.location(section.on.span().start),
                format!("alert `{name}` is about no event"),
            )
            .with_help(
                "write `on = [\"failure\", \"recovered\"]` (also `quality`, `drift`, `freshness`, `schedule_missed`)",
            ),
        );
    }
    let assets = targets(
        b,
        names,
        section.assets.iter().flatten(),
        &format!("alert `{name}`"),
    );
    let repeat = match &section.repeat {
        Some(r) if r.get_ref().value < Duration::from_secs(1) => {
            b.diags.push(
                Diagnostic::new(
                    raw.location(r.span().start),
                    format!(
                        "`repeat = \"{}\"` is shorter than a second",
                        r.get_ref().text
                    ),
                )
                .with_help("write how long to wait before a reminder, like `repeat = \"4h\"`"),
            );
            None
        }
        Some(r) => Some(r.get_ref().value),
        None => None,
    };
    let mut channels = Vec::new();
    if let Some(hook) = &section.webhook {
        let url = &hook.get_ref().url;
        let written = url.to_string();
        // A reference may hold the whole URL; a written one is checked now.
        let checkable = !written.starts_with("${");
        if checkable && !(written.starts_with("https://") || written.starts_with("http://")) {
            b.diags.push(
                Diagnostic::new(
                    raw.location(hook.span().start),
                    format!("the webhook of alert `{name}` is not an http(s) URL"),
                )
                .with_help("write `url = \"${SLACK_WEBHOOK_URL}\"` and set the variable to the https URL the chat gave you"),
            );
        }
        channels.push(Channel::Webhook {
            url: url.clone(),
            format: hook.get_ref().format.unwrap_or_default(),
        });
    }
    if let Some(email) = &section.email {
        let e = email.get_ref();
        let smtp = e.smtp.get_ref().trim();
        let parsed = smtp
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .filter(|(host, port)| !host.is_empty() && *port > 0);
        if parsed.is_none() {
            b.diags.push(
                Diagnostic::new(
                    raw.location(e.smtp.span().start),
                    format!("`smtp = \"{smtp}\"` is not `host:port`"),
                )
                .with_help("write the server and its port, like `smtp = \"smtp.example.com:587\"`"),
            );
        }
        let password = match &e.password {
            Some(p) if p.get_ref().variables().is_empty() => {
                b.diags.push(
                    Diagnostic::new(
                        raw.location(p.span().start),
                        format!("the SMTP password of alert `{name}` is written in the file"),
                    )
                    .with_help("write `password = \"${SMTP_PASSWORD}\"` and set the variable where sluice runs"),
                );
                None
            }
            Some(p) => Some(p.get_ref().clone()),
            None => None,
        };
        let credentials = match (&e.username, password) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (None, None) => None,
            _ if e
                .password
                .as_ref()
                .is_some_and(|p| p.get_ref().variables().is_empty()) =>
            {
                None
            }
            _ => {
                b.diags.push(
                    Diagnostic::new(
                        raw.location(email.span().start),
                        format!("the e-mail of alert `{name}` has a username without a password, or a password without a username"),
                    )
                    .with_help("write both `username` and `password`, or neither"),
                );
                None
            }
        };
        let to: Vec<String> =
            e.to.get_ref()
                .iter()
                .map(|s| s.trim().to_string())
                .collect();
        if to.is_empty() {
            b.diags.push(
                Diagnostic::new(
                    raw.location(e.to.span().start),
                    format!("the e-mail of alert `{name}` has no recipient"),
                )
                .with_help("write `to = [\"oncall@example.com\"]`"),
            );
        }
        for address in to.iter().chain([e.from.get_ref()]) {
            if !address.contains('@') || address.contains(['\r', '\n', '<', '>']) {
                b.diags.push(
                    Diagnostic::new(
                        raw.location(e.from.span().start.min(e.to.span().start)),
                        format!("`{address}` is not an e-mail address"),
                    )
                    .with_help("write a bare address, like `oncall@example.com`"),
                );
            }
        }
        let starttls = e.starttls.unwrap_or(true);
        let tls_ca = e.tls_ca.as_ref().and_then(|ca| {
            let path = raw.dir.join(ca.get_ref().trim());
            let problem = if !starttls {
                Some((
                    format!("alert `{name}` trusts `tls_ca` but does not use TLS"),
                    "remove `tls_ca`, or set `starttls = true`".to_string(),
                ))
            } else if !path.is_file() {
                Some((
                    format!("`tls_ca = \"{}\"`: no such file", ca.get_ref()),
                    format!(
                        "write the path of a PEM file of CA certificates, relative to {}",
                        raw.dir.display()
                    ),
                ))
            } else {
                None
            };
            match problem {
                Some((message, help)) => {
                    b.diags.push(
                        Diagnostic::new(raw.location(ca.span().start), message).with_help(help),
                    );
                    None
                }
                None => Some(path),
            }
        });
        if let Some((host, port)) = parsed {
            channels.push(Channel::Email(EmailDef {
                host: host.trim_matches(['[', ']']).to_string(),
                port,
                starttls,
                tls_ca,
                credentials,
                from: e.from.get_ref().trim().to_string(),
                to,
            }));
        }
    }
    if section.webhook.is_none() && section.email.is_none() {
        b.diags.push(
            Diagnostic::new(at.clone(), format!("alert `{name}` is sent nowhere"))
                .with_help("add `webhook = { url = \"${SLACK_WEBHOOK_URL}\" }` or `email = { smtp = \"host:587\", from = \"...\", to = [\"...\"] }`"),
        );
    }
    if b.diags.len() > before {
        return None;
    }
    Some(AlertDef {
        name: name.to_string(),
        location: at,
        events,
        assets,
        repeat,
        channels,
        enabled: section.enabled.unwrap_or(true),
        description: section.description.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::parse::parse_text;
    use crate::raw::AlertEvent;

    fn load(alerts: &str) -> Result<crate::Project, crate::Diagnostics> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), "x\n1\n").expect("write");
        let text = format!(
            "[project]\nname = \"t\"\n\n[sources.events]\npath = \"a.csv\"\n\n[tables.daily]\nsql = \"SELECT * FROM events\"\n\n{alerts}"
        );
        let raw = parse_text(dir.path(), Path::new("sluice.toml"), text, None)?;
        crate::compile::compile(&raw)
    }

    fn errors(alerts: &str) -> String {
        match load(alerts) {
            Ok(_) => String::new(),
            Err(d) => d.to_string(),
        }
    }

    #[test]
    fn an_alert_compiles_with_its_channels_and_claims_no_asset_name() {
        let p = load(
            "[alerts.oncall]\non = [\"failure\", \"recovered\", \"quality\"]\nassets = [\"events+\"]\nrepeat = \"4h\"\n\
             webhook = { url = \"${SLACK_URL}\" }\n\
             email = { smtp = \"smtp.example.com:587\", username = \"${SMTP_USER}\", password = \"${SMTP_PASSWORD}\", from = \"sluice@example.com\", to = [\"oncall@example.com\"] }\n",
        )
        .expect("compiles");
        let a = &p.alerts["oncall"];
        assert!(a.wants(AlertEvent::Failure) && a.wants(AlertEvent::Quality));
        assert!(!a.wants(AlertEvent::Drift));
        assert_eq!(a.repeat, Some(std::time::Duration::from_secs(4 * 3600)));
        assert_eq!(
            a.assets
                .iter()
                .map(|t| (t.asset.as_str(), t.downstream))
                .collect::<Vec<_>>(),
            [("events", true)]
        );
        let kinds: Vec<_> = a.channels.iter().map(super::Channel::kind).collect();
        assert_eq!(kinds, ["webhook", "email"]);
        let super::Channel::Email(e) = &a.channels[1] else {
            panic!("{:?}", a.channels)
        };
        assert_eq!(
            (e.host.as_str(), e.port, e.starttls),
            ("smtp.example.com", 587, true)
        );
        // Kept as written: the values are read only when a message is sent.
        let shown = format!("{a:?}");
        assert!(
            shown.contains("${SMTP_PASSWORD}") && shown.contains("${SLACK_URL}"),
            "{shown}"
        );
        assert!(p.asset("oncall").is_none());
    }

    #[test]
    fn each_mistake_is_reported_where_it_is_written_with_what_to_write() {
        let e = errors(
            "[alerts.a]\non = [\"failure\", \"explosion\"]\nwebhook = { url = \"${X}\" }\n\n\
             [alerts.b]\non = [\"failure\"]\n\n\
             [alerts.c]\non = [\"failure\"]\nassets = [\"dialy\"]\nemail = { smtp = \"mail.example.com\", password = \"hunter2\", username = \"u\", from = \"me@example.com\", to = [] }\n\n\
             [alerts.d]\non = []\nrepeat = \"0s\"\nwebhook = { url = \"hooks.example.com/x\", format = \"xml\" }\n",
        );
        assert!(
            e.contains("sluice.toml:11:18: error: unknown variant `explosion`"),
            "{e}"
        );
        assert!(
            e.contains("sluice.toml:14:9: error: alert `b` is sent nowhere"),
            "{e}"
        );
        assert!(e.contains("sluice.toml:19:11: error: unknown asset `dialy` in alert `c`\n  help: did you mean `daily`?"), "{e}");
        assert!(
            e.contains("`smtp = \"mail.example.com\"` is not `host:port`"),
            "{e}"
        );
        assert!(
            e.contains("the SMTP password of alert `c` is written in the file"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        assert!(
            e.contains("the e-mail of alert `c` has no recipient"),
            "{e}"
        );
        assert!(e.contains("unknown variant `xml`"), "{e}");
        assert!(
            e.contains("sluice.toml:23:6: error: alert `d` is about no event"),
            "{e}"
        );
        assert!(
            e.contains("`repeat = \"0s\"` is shorter than a second"),
            "{e}"
        );
    }

    #[test]
    fn tls_ca_is_a_file_of_the_project_and_needs_starttls() {
        let mail = |extra: &str| {
            format!(
                "[alerts.m]\non = [\"failure\"]\nemail = {{ smtp = \"smtp.example.com:587\", from = \"a@example.com\", to = [\"b@example.com\"]{extra} }}\n"
            )
        };
        let p = load(&mail(", tls_ca = \"a.csv\"")).expect("a file of the project");
        let super::Channel::Email(e) = &p.alerts["m"].channels[0] else {
            panic!("{:?}", p.alerts["m"].channels)
        };
        assert!(
            e.tls_ca.as_ref().is_some_and(|ca| ca.ends_with("a.csv")),
            "{e:?}"
        );
        let e = errors(&mail(", tls_ca = \"certs/ca.pem\""));
        assert!(
            e.contains("sluice.toml:12:")
                && e.contains("`tls_ca = \"certs/ca.pem\"`: no such file"),
            "{e}"
        );
        let e = errors(&mail(", starttls = false, tls_ca = \"a.csv\""));
        assert!(
            e.contains("alert `m` trusts `tls_ca` but does not use TLS"),
            "{e}"
        );
    }
}
