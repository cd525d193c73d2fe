//! Contracts compiled from `[... .contract]` sections: row rules and table
//! expectations with their severities, checked for everything that can be known
//! without data (regexes, bounds, durations, one kind per expectation). Checks
//! against the asset's columns happen when its schema is known (the validate stage).

use std::time::Duration;

use sluice_core::{Location, parse_type};

use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::RawProject;
use crate::raw::{
    BoundsSection, ColumnRulesSection, ContractSection, ExpectSection, Literal, PreviousWord,
    ReferenceSection, Severity,
};

/// What an asset's rows must be.
#[derive(Debug, Clone, Default)]
pub struct Contract {
    /// Row rules, in the order written (the first broken rule labels a quarantined row).
    pub rules: Vec<RowRule>,
    /// Table expectations, in the order written.
    pub expectations: Vec<Expectation>,
}

impl Contract {
    /// Whether the contract has no rule at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.expectations.is_empty()
    }

    /// Whether any rule sends rows to the quarantine (the asset then has a
    /// `<asset>__quarantine` table).
    pub fn quarantines(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.severity == Severity::Quarantine)
    }
}

/// A rule that each row must keep.
#[derive(Debug, Clone)]
pub struct RowRule {
    /// The rule's kind word (`min`, `regex`...) or, for SQL rules, its name.
    pub rule: String,
    /// The column it is about; `None` for SQL rules.
    pub column: Option<String>,
    /// What it checks.
    pub kind: RuleKind,
    /// What breaking it does.
    pub severity: Severity,
    /// Where it is written.
    pub location: Location,
}

impl RowRule {
    /// The name in reports: `column.rule`, or the SQL rule's name.
    pub fn check_name(&self) -> String {
        match &self.column {
            Some(c) => format!("{c}.{}", self.rule),
            None => self.rule.clone(),
        }
    }
}

/// What a row rule checks.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Converts without loss to the type (the type word as written, and its type).
    Type(String, sluice_core::DataType),
    /// Not null.
    Required,
    /// At least the value.
    Min(Literal),
    /// At most the value.
    Max(Literal),
    /// Matches the regular expression.
    Regex(String),
    /// One of the values.
    OneOf(Vec<Literal>),
    /// At least this many characters.
    MinLength(u64),
    /// At most this many characters.
    MaxLength(u64),
    /// No value twice in the version.
    Unique,
    /// A SQL predicate, and where its text starts.
    Sql(String),
}

/// A judgement on the whole version.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// The name in reports.
    pub name: String,
    /// The column it is about (`None` for the row count).
    pub column: Option<String>,
    /// What it measures and the allowed range.
    pub kind: ExpectKind,
    /// `error` or `warn`.
    pub severity: Severity,
    /// Where it is written.
    pub location: Location,
}

/// Inclusive bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bounds {
    /// Lower bound.
    pub min: Option<f64>,
    /// Upper bound.
    pub max: Option<f64>,
}

impl Bounds {
    /// Whether `v` lies within the bounds.
    pub fn contains(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

impl std::fmt::Display for Bounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) => write!(f, "between {a} and {b}"),
            (Some(a), None) => write!(f, ">= {a}"),
            (None, Some(b)) => write!(f, "<= {b}"),
            (None, None) => write!(f, "any"),
        }
    }
}

/// The version a drift check compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The version published before this run.
    Previous,
    /// A pinned version.
    Version(u64),
}

/// What an expectation measures.
#[derive(Debug, Clone)]
pub enum ExpectKind {
    /// Number of rows.
    RowCount(Bounds),
    /// Share of nulls, at most.
    NullFraction(f64),
    /// Mean.
    Mean(Bounds),
    /// Sample standard deviation.
    Stddev(Bounds),
    /// A quantile `q` in [0, 1].
    Quantile(f64, Bounds),
    /// Distinct non-null values.
    DistinctCount(Bounds),
    /// Share of non-null values in the set, at least.
    InSet(Vec<Literal>, f64),
    /// Age of the newest timestamp, at most.
    Freshness(Duration),
    /// Population stability index against the reference over `bins` quantile bins, at most.
    Psi {
        /// The reference version.
        reference: Reference,
        /// Number of bins.
        bins: usize,
        /// Threshold.
        max: f64,
    },
    /// Two-sample Kolmogorov–Smirnov statistic against the reference, at most.
    Ks {
        /// The reference version.
        reference: Reference,
        /// Threshold.
        max: f64,
    },
}

impl ExpectKind {
    /// The kind's word.
    pub fn word(&self) -> &'static str {
        match self {
            ExpectKind::RowCount(_) => "row_count",
            ExpectKind::NullFraction(_) => "null_fraction",
            ExpectKind::Mean(_) => "mean",
            ExpectKind::Stddev(_) => "stddev",
            ExpectKind::Quantile(..) => "quantile",
            ExpectKind::DistinctCount(_) => "distinct_count",
            ExpectKind::InSet(..) => "in_set",
            ExpectKind::Freshness(_) => "freshness",
            ExpectKind::Psi { .. } => "psi",
            ExpectKind::Ks { .. } => "ks",
        }
    }
}

/// Compiles a contract section; problems are added to `diags`.
pub(crate) fn compile_contract(
    raw: &RawProject,
    section: &ContractSection,
    diags: &mut Diagnostics,
) -> Contract {
    let mut contract = Contract::default();
    for (column, entry) in &section.columns {
        let at = raw.location(entry.span().start);
        column_rules(column, entry.get_ref(), &at, &mut contract, diags);
    }
    for entry in &section.rules {
        let at = raw.location(entry.span().start);
        let rule = entry.get_ref();
        if rule.name.trim().is_empty() {
            diags.push(Diagnostic::new(at.clone(), "a SQL rule needs a `name`"));
        }
        if contract
            .rules
            .iter()
            .any(|r| r.column.is_none() && r.rule == rule.name)
        {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("two SQL rules are named `{}`", rule.name),
                )
                .with_help("give each rule its own name"),
            );
        }
        contract.rules.push(RowRule {
            rule: rule.name.clone(),
            column: None,
            kind: RuleKind::Sql(rule.check.get_ref().clone()),
            severity: rule.severity.unwrap_or(Severity::Quarantine),
            location: raw.location(rule.check.span().start),
        });
    }
    for entry in &section.expect {
        let at = raw.location(entry.span().start);
        expectation(entry.get_ref(), &at, &mut contract, diags);
    }
    contract
}

fn column_rules(
    column: &str,
    c: &ColumnRulesSection,
    at: &Location,
    contract: &mut Contract,
    diags: &mut Diagnostics,
) {
    let severity = c.severity.unwrap_or(Severity::Quarantine);
    let mut push = |rule: &str, kind: RuleKind| {
        contract.rules.push(RowRule {
            rule: rule.to_string(),
            column: Some(column.to_string()),
            kind,
            severity,
            location: at.clone(),
        });
    };
    if let Some(word) = &c.type_ {
        match parse_type(word, "UTC") {
            Some(t) => push("type", RuleKind::Type(word.clone(), t)),
            None => diags.push(
                Diagnostic::new(at.clone(), format!("column `{column}`: unknown type `{word}`"))
                    .with_help(
                        "use one of string, bool, int8, int16, int32, int64, float32, float64, date, timestamp, decimal(P,S)",
                    ),
            ),
        }
    }
    if c.required == Some(true) {
        push("required", RuleKind::Required);
    }
    if let (Some(a), Some(b)) = (number(&c.min), number(&c.max))
        && a > b
    {
        diags.push(Diagnostic::new(
            at.clone(),
            format!("column `{column}`: `min` {a} is larger than `max` {b}"),
        ));
    }
    if let Some(v) = &c.min {
        push("min", RuleKind::Min(v.clone()));
    }
    if let Some(v) = &c.max {
        push("max", RuleKind::Max(v.clone()));
    }
    if let (Some(a), Some(b)) = (c.min_length, c.max_length)
        && a > b
    {
        diags.push(Diagnostic::new(
            at.clone(),
            format!("column `{column}`: `min_length` {a} is larger than `max_length` {b}"),
        ));
    }
    if let Some(n) = c.min_length {
        push("min_length", RuleKind::MinLength(n));
    }
    if let Some(n) = c.max_length {
        push("max_length", RuleKind::MaxLength(n));
    }
    if let Some(re) = &c.regex {
        match regex::Regex::new(re) {
            Ok(_) => push("regex", RuleKind::Regex(re.clone())),
            Err(e) => diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("column `{column}`: invalid regex `{re}`: {e}"),
                )
                .with_help("the syntax is Rust's regex crate (like RE2); in TOML prefer '...' strings so that backslashes stay as written"),
            ),
        }
    }
    if let Some(values) = &c.one_of {
        if values.is_empty() {
            diags.push(Diagnostic::new(
                at.clone(),
                format!("column `{column}`: `one_of` is empty, so every row would break it"),
            ));
        }
        push("one_of", RuleKind::OneOf(values.clone()));
    }
    if c.unique == Some(true) {
        push("unique", RuleKind::Unique);
    }
}

fn number(l: &Option<Literal>) -> Option<f64> {
    match l {
        Some(Literal::Int(i)) => Some(*i as f64),
        Some(Literal::Float(f)) => Some(*f),
        _ => None,
    }
}

fn expectation(e: &ExpectSection, at: &Location, contract: &mut Contract, diags: &mut Diagnostics) {
    let severity = match e.severity.unwrap_or(Severity::Error) {
        Severity::Quarantine => {
            diags.push(
                Diagnostic::new(at.clone(), "an expectation cannot quarantine rows")
                    .with_help("use `severity = \"error\"` or `\"warn\"`; row rules quarantine"),
            );
            Severity::Error
        }
        s => s,
    };
    let column = e.column.as_ref().map(|c| c.get_ref().clone());
    let bounds = |b: &BoundsSection, what: &str, diags: &mut Diagnostics| {
        if let (Some(a), Some(z)) = (b.min, b.max)
            && a > z
        {
            diags.push(Diagnostic::new(
                at.clone(),
                format!("{what}: `min` {a} is larger than `max` {z}"),
            ));
        }
        if b.min.is_none() && b.max.is_none() {
            diags.push(
                Diagnostic::new(at.clone(), format!("{what} has no bound"))
                    .with_help("give `min`, `max` or both"),
            );
        }
        Bounds {
            min: b.min,
            max: b.max,
        }
    };
    let fraction = |v: f64, what: &str, diags: &mut Diagnostics| {
        if !(0.0..=1.0).contains(&v) {
            diags.push(Diagnostic::new(
                at.clone(),
                format!("{what} must be between 0 and 1, not {v}"),
            ));
        }
        v
    };
    let mut kinds: Vec<ExpectKind> = Vec::new();
    if let Some(b) = &e.row_count {
        kinds.push(ExpectKind::RowCount(bounds(b, "row_count", diags)));
    }
    if let Some(m) = &e.null_fraction {
        kinds.push(ExpectKind::NullFraction(fraction(
            m.max,
            "null_fraction max",
            diags,
        )));
    }
    if let Some(b) = &e.mean {
        kinds.push(ExpectKind::Mean(bounds(b, "mean", diags)));
    }
    if let Some(b) = &e.stddev {
        kinds.push(ExpectKind::Stddev(bounds(b, "stddev", diags)));
    }
    if let Some(q) = &e.quantile {
        let b = BoundsSection {
            min: q.min,
            max: q.max,
        };
        kinds.push(ExpectKind::Quantile(
            fraction(q.q, "quantile q", diags),
            bounds(&b, "quantile", diags),
        ));
    }
    if let Some(b) = &e.distinct_count {
        kinds.push(ExpectKind::DistinctCount(bounds(
            b,
            "distinct_count",
            diags,
        )));
    }
    if let Some(s) = &e.in_set {
        let f = fraction(s.min_fraction.unwrap_or(1.0), "in_set min_fraction", diags);
        kinds.push(ExpectKind::InSet(s.values.clone(), f));
    }
    if let Some(f) = &e.freshness {
        kinds.push(ExpectKind::Freshness(f.max_age.get_ref().value));
    }
    let mut drift_kinds = 0;
    if let Some(d) = &e.drift {
        let reference = match d.reference {
            None | Some(ReferenceSection::Named(PreviousWord::Previous)) => Reference::Previous,
            Some(ReferenceSection::Version(v)) => Reference::Version(v),
        };
        let bins = d.bins.unwrap_or(10);
        if bins < 2 {
            diags.push(Diagnostic::new(
                at.clone(),
                format!("drift needs at least 2 bins, not {bins}"),
            ));
        }
        if d.psi_max.is_none() && d.ks_max.is_none() {
            diags.push(
                Diagnostic::new(at.clone(), "drift has no threshold")
                    .with_help("give `psi_max`, `ks_max` or both (0.2 and 0.1 are common)"),
            );
        }
        if let Some(max) = d.psi_max {
            kinds.push(ExpectKind::Psi {
                reference,
                bins,
                max,
            });
            drift_kinds += 1;
        }
        if let Some(max) = d.ks_max {
            kinds.push(ExpectKind::Ks {
                reference,
                max: fraction(max, "ks_max", diags),
            });
            drift_kinds += 1;
        }
    }
    let written = kinds.len() - drift_kinds + usize::from(drift_kinds > 0);
    if written == 0 {
        diags.push(
            Diagnostic::new(at.clone(), "an expectation needs one kind").with_help(
                "add one of row_count, null_fraction, mean, stddev, quantile, distinct_count, in_set, freshness, drift",
            ),
        );
        return;
    }
    if written > 1 {
        diags.push(
            Diagnostic::new(
                at.clone(),
                "an expectation has one kind, this one has several",
            )
            .with_help("split it into several `[[...contract.expect]]` entries"),
        );
        return;
    }
    let needs_column = !matches!(kinds[0], ExpectKind::RowCount(_));
    match (&column, needs_column) {
        (None, true) => {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("`{}` needs a `column`", kinds[0].word()),
                )
                .with_help("add `column = \"NAME\"`"),
            );
            return;
        }
        (Some(_), false) => diags.push(
            Diagnostic::new(
                at.clone(),
                "`row_count` is about the whole table, not a column",
            )
            .with_help("remove `column`"),
        ),
        _ => {}
    }
    for kind in kinds {
        let name = match (&e.name, &column) {
            (Some(n), _) if drift_kinds > 1 => format!("{n}.{}", kind.word()),
            (Some(n), _) => n.clone(),
            (None, Some(c)) if needs_column => format!("{c}.{}", kind.word()),
            _ => kind.word().to_string(),
        };
        contract.expectations.push(Expectation {
            name,
            column: column.clone().filter(|_| needs_column),
            kind,
            severity,
            location: at.clone(),
        });
    }
}
