//! The validation report of one asset in one run: every check with what was
//! observed, the threshold, a score in [0, 1] and a verdict. It is data, not an
//! error: what a failed check does is the runner's policy, by severity.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_project::Severity;

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The data keeps the rule.
    Pass,
    /// The data breaks it; the severity says what that does.
    Fail,
    /// The check could not be made (no reference version yet, no values).
    Skipped,
}

impl Verdict {
    /// The word shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skipped => "skipped",
        }
    }
}

/// A histogram of a drift check: the reference's and the current proportions per bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The reference version.
    pub reference_version: u64,
    /// Inner bin edges of a numeric column; bin `i` is `(edges[i-1], edges[i]]`.
    pub edges: Vec<f64>,
    /// The categories of a text column, one bin each (empty for numbers).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Share of the reference's values per bin.
    pub reference: Vec<f64>,
    /// Share of the current values per bin.
    pub current: Vec<f64>,
}

/// A score as shown to people: three decimals, or as many more (up to nine) as
/// it takes to tell a score below 1 from a perfect one and a score above 0 from
/// nothing — one bad row in 10,000 scores `0.9999`, not `1.000`.
pub fn format_score(score: f64) -> String {
    if !score.is_finite() {
        return score.to_string();
    }
    for digits in 3..=9 {
        let shown = format!("{score:.digits$}");
        let rounded: f64 = shown.parse().unwrap_or(score);
        let hides_a_flaw = (score < 1.0 && rounded >= 1.0) || (score > 0.0 && rounded <= 0.0);
        if !hides_a_flaw {
            return shown;
        }
    }
    // Closer than 1e-9 to 1 or 0: round towards the middle, so it still differs.
    let scaled = score * 1e9;
    let towards_middle = if score > 0.5 {
        scaled.floor()
    } else {
        scaled.ceil()
    };
    format!("{:.9}", towards_middle / 1e9)
}

/// One check of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Its name: `column.rule`, a SQL rule's name or an expectation's name.
    pub name: String,
    /// The kind of rule (`min`, `regex`, `mean`, `psi`...) or the SQL rule's name.
    pub rule: String,
    /// The column it is about.
    pub column: Option<String>,
    /// What failing it does.
    pub severity: Severity,
    /// The measured value (rows breaking a row rule; the statistic of an expectation).
    pub observed: Option<f64>,
    /// The observation in words.
    pub detail: String,
    /// What was allowed, in words.
    pub threshold: String,
    /// 1 is perfect, 0 as bad as it gets: the share of rows that keep a row rule;
    /// for expectations see the check kinds in ARCHITECTURE.md.
    pub score: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Rows that break a row rule.
    pub failing_rows: Option<u64>,
    /// A few values (or rows) that break it.
    #[serde(default)]
    pub samples: Vec<String>,
    /// Drift checks: the two distributions.
    #[serde(default)]
    pub histogram: Option<Histogram>,
}

impl CheckResult {
    /// Whether the check failed with this severity.
    pub fn failed_as(&self, severity: Severity) -> bool {
        self.verdict == Verdict::Fail && self.severity == severity
    }
}

/// Every check of one asset in one run, and the row accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The asset.
    pub asset: String,
    /// The run.
    pub run_id: i64,
    /// When the report was made.
    pub created_at: DateTime<Utc>,
    /// Rows that came in.
    pub rows_in: u64,
    /// Rows that passed (published, unless an `error` check failed).
    pub rows_out: u64,
    /// Rows sent to the quarantine. `rows_in = rows_out + rows_quarantined`.
    pub rows_quarantined: u64,
    /// The checks, row rules first, in the contract's order.
    pub checks: Vec<CheckResult>,
}

impl ValidationReport {
    /// The checks that failed with severity `error`: any of them fails the asset.
    pub fn errors(&self) -> Vec<&CheckResult> {
        self.checks
            .iter()
            .filter(|c| c.failed_as(Severity::Error))
            .collect()
    }

    /// The checks that failed with severity `warn`.
    pub fn warnings(&self) -> Vec<&CheckResult> {
        self.checks
            .iter()
            .filter(|c| c.failed_as(Severity::Warn))
            .collect()
    }

    /// The share of checks that passed (skipped checks left out); 1 with no checks.
    pub fn pass_rate(&self) -> f64 {
        let judged: Vec<_> = self
            .checks
            .iter()
            .filter(|c| c.verdict != Verdict::Skipped)
            .collect();
        if judged.is_empty() {
            return 1.0;
        }
        judged.iter().filter(|c| c.verdict == Verdict::Pass).count() as f64 / judged.len() as f64
    }

    /// One line saying why the gate closed, naming each failed `error` check.
    pub fn gate_message(&self) -> Option<String> {
        let errors = self.errors();
        if errors.is_empty() {
            return None;
        }
        let each: Vec<String> = errors
            .iter()
            .map(|c| format!("{}: {} (allowed: {})", c.name, c.detail, c.threshold))
            .collect();
        Some(format!(
            "contract: {} error check{} failed — {}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            each.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::format_score;

    #[test]
    fn a_failed_check_never_shows_the_score_of_a_pass() {
        // One row broken in 336,776 (the flights of 2013): not 1.000.
        assert_eq!(format_score(1.0 - 1.0 / 336_776.0), "0.999997");
        assert_eq!(format_score(0.9996), "0.9996");
        assert_eq!(format_score(0.99999), "0.99999");
        assert_eq!(format_score(1.0 - 1e-12), "0.999999999");
        assert_eq!(format_score(0.0004), "0.0004");
        assert_eq!(format_score(1e-12), "0.000000001");
        // Everything else keeps three decimals, and a pass and a zero stay as they are.
        assert_eq!(format_score(1.0), "1.000");
        assert_eq!(format_score(0.0), "0.000");
        assert_eq!(format_score(0.98364), "0.984");
        assert_eq!(format_score(0.5), "0.500");
    }
}
