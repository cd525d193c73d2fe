//! How each asset is run: its retry, timeout and pool keys laid over the
//! project's defaults, the `[pools]` they name, and its triggers (`on`,
//! `freshness`) and `tags`, which are per asset only.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use super::Builder;
use crate::diag::Diagnostic;
use crate::raw::{DurationWord, OnWord, PolicySection, RetryOn};

/// The most retries an asset may ask for: past this, a failure is not
/// transient and retrying hides it.
const MAX_RETRIES: u32 = 100;

/// How an asset is run: its attempts, the waits between them, a time limit
/// and a pool. Not part of the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPolicy {
    /// Attempts after the first one.
    pub retries: u32,
    /// The base of the exponential backoff.
    pub retry_delay: Duration,
    /// The longest wait before a retry.
    pub max_delay: Duration,
    /// Which failures are retried.
    pub retry_on: RetryOn,
    /// How long one attempt may take.
    pub timeout: Option<Duration>,
    /// The pool whose limit it counts against.
    pub pool: Option<String>,
    /// `on = "upstream"`: `sluice serve` runs it when an input has a new
    /// version (a source: when its files change).
    pub on: Option<OnWord>,
    /// `freshness.max_age`: `sluice serve` runs it before it gets this old.
    pub max_age: Option<Duration>,
}

impl RunPolicy {
    /// Whether `sluice serve` starts it by a trigger (not only by a schedule).
    pub fn has_trigger(&self) -> bool {
        self.on.is_some() || self.max_age.is_some()
    }
}

impl Default for RunPolicy {
    fn default() -> Self {
        RunPolicy {
            retries: 0,
            retry_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(600),
            retry_on: RetryOn::Transient,
            timeout: None,
            pool: None,
            on: None,
            max_age: None,
        }
    }
}

/// Gives every asset its policy (its own keys over `[project]`'s) and checks
/// the pools they name; returns the pools' limits.
pub(super) fn apply(b: &mut Builder<'_>) -> BTreeMap<String, usize> {
    let raw = b.raw;
    let mut pools = BTreeMap::new();
    for (name, entry) in &raw.pools {
        if entry.value == 0 {
            b.diags.push(
                Diagnostic::new(
                    raw.location(entry.offset),
                    format!("pool `{name}` has a limit of 0, so nothing in it could ever run"),
                )
                .with_help("give it a limit of 1 or more"),
            );
        }
        pools.insert(name.clone(), entry.value.max(1) as usize);
    }
    if let Some(pool) = &raw.defaults.pool {
        b.diags.push(
            Diagnostic::new(
                raw.location(pool.span().start),
                "`pool` is set per asset, not in `[project]`",
            )
            .with_help("write `pool = \"...\"` in the entries of the assets that share it"),
        );
    }
    let per_asset = [
        (
            raw.defaults.on.as_ref().map(|o| o.span().start),
            "on",
            "write `on = \"upstream\"` in the entries of the assets it should start",
        ),
        (
            raw.defaults.freshness.as_ref().map(|f| f.span().start),
            "freshness",
            "write `freshness = { max_age = \"...\" }` in the entries of the assets to keep fresh",
        ),
        (
            raw.defaults.tags.as_ref().map(|t| t.span().start),
            "tags",
            "write `tags = [\"...\"]` in the entries of the assets they label",
        ),
    ];
    for (at, key, help) in per_asset {
        if let Some(at) = at {
            b.diags.push(
                Diagnostic::new(
                    raw.location(at),
                    format!("`{key}` is set per asset, not in `[project]`"),
                )
                .with_help(help),
            );
        }
    }
    let defaults = over(RunPolicy::default(), &raw.defaults);
    check(b, &raw.defaults, &defaults);
    for asset in b.assets.values_mut() {
        asset.policy = defaults.clone();
    }
    for (name, entry) in &raw.policies {
        let policy = over(defaults.clone(), &entry.value);
        check(b, &entry.value, &policy);
        if let Some(pool) = &entry.value.pool
            && !pools.contains_key(pool.get_ref())
        {
            let known: Vec<&str> = pools.keys().map(String::as_str).collect();
            b.diags.push(
                Diagnostic::new(
                    raw.location(pool.span().start),
                    format!(
                        "`{name}` is in pool `{}`, which is not defined",
                        pool.get_ref()
                    ),
                )
                .with_help(if known.is_empty() {
                    format!("define it with a limit: `[pools]` `{} = 2`", pool.get_ref())
                } else {
                    format!("the pools are: {}", known.join(", "))
                }),
            );
        }
        let tags = tags(b, &entry.value);
        if let Some(asset) = b.assets.values_mut().find(|a| a.name.as_str() == name) {
            asset.policy = policy;
            asset.tags = tags;
        }
    }
    pools
}

/// The tags an entry writes, sorted and once each; a tag that is not a word
/// of letters, digits, `_`, `-` or `.` is reported where it is written.
fn tags(b: &mut Builder<'_>, section: &PolicySection) -> Vec<String> {
    let raw = b.raw;
    let mut out = Vec::new();
    for tag in section.tags.iter().flat_map(|t| t.get_ref()) {
        let text = tag.get_ref();
        if !is_tag(text) {
            b.diags.push(
                Diagnostic::new(
                    raw.location(tag.span().start),
                    format!("`{text}` is not a tag"),
                )
                .with_help(
                    "a tag is a word of letters, digits, `_`, `-` and `.`, like `nightly` or `team-finance`",
                ),
            );
            continue;
        }
        out.push(text.clone());
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `text` can be a tag (and so be written after `tag:` in a selection).
pub(crate) fn is_tag(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `base` with the keys `section` sets.
fn over(base: RunPolicy, section: &PolicySection) -> RunPolicy {
    let duration = |d: &Option<Spanned<DurationWord>>| d.as_ref().map(|d| d.get_ref().value);
    RunPolicy {
        retries: section
            .retries
            .as_ref()
            .map_or(base.retries, |r| *r.get_ref()),
        retry_delay: duration(&section.retry_delay).unwrap_or(base.retry_delay),
        max_delay: duration(&section.max_delay).unwrap_or(base.max_delay),
        retry_on: section.retry_on.unwrap_or(base.retry_on),
        timeout: duration(&section.timeout).or(base.timeout),
        pool: section
            .pool
            .as_ref()
            .map(|p| p.get_ref().clone())
            .or(base.pool),
        on: section.on.as_ref().map(|o| *o.get_ref()).or(base.on),
        max_age: section
            .freshness
            .as_ref()
            .map(|f| f.get_ref().max_age.get_ref().value)
            .or(base.max_age),
    }
}

/// The mistakes a policy can hold whatever the asset.
fn check(b: &mut Builder<'_>, section: &PolicySection, policy: &RunPolicy) {
    let raw = b.raw;
    if let Some(r) = &section.retries
        && *r.get_ref() > MAX_RETRIES
    {
        b.diags.push(
            Diagnostic::new(
                raw.location(r.span().start),
                format!(
                    "{} retries is more than the {MAX_RETRIES} allowed",
                    r.get_ref()
                ),
            )
            .with_help("a failure that needs more tries is not transient; find its cause"),
        );
    }
    if let Some(t) = &section.timeout
        && t.get_ref().value.is_zero()
    {
        b.diags.push(
            Diagnostic::new(
                raw.location(t.span().start),
                "a `timeout` of zero stops every attempt at once",
            )
            .with_help("give a duration such as `timeout = \"10m\"`, or leave `timeout` out"),
        );
    }
    if let Some(f) = &section.freshness
        && f.get_ref().max_age.get_ref().value.is_zero()
    {
        b.diags.push(
            Diagnostic::new(
                raw.location(f.get_ref().max_age.span().start),
                "a freshness `max_age` of zero would run the asset without end",
            )
            .with_help("give a duration such as `max_age = \"1h\"`"),
        );
    }
    if policy.max_delay < policy.retry_delay
        && let Some(at) = section
            .max_delay
            .as_ref()
            .map(|d| d.span().start)
            .or(section.retry_delay.as_ref().map(|d| d.span().start))
    {
        b.diags.push(
            Diagnostic::new(
                raw.location(at),
                format!(
                    "`max_delay` ({}) is shorter than `retry_delay` ({})",
                    humantime::format_duration(policy.max_delay),
                    humantime::format_duration(policy.retry_delay)
                ),
            )
            .with_help(
                "`max_delay` caps the growing wait between retries; make it at least `retry_delay`",
            ),
        );
    }
}
