//! Validation, stage ② of the flow: an asset's contract runs over its Arrow
//! record batches as DataFusion expressions. Rows that break a `quarantine` rule
//! are split off; table expectations (counts, nulls, moments, quantiles,
//! distinct values, set membership, freshness, drift against a reference
//! version) accumulate over the rows that pass.
//!
//! The outcome is a [`ValidationReport`] — data, not an error. What a failed
//! check does (fail the asset, warn, quarantine) is the runner's policy.
//!
//! Architecture invariant: every row that comes in is either published or
//! quarantined; `rows_in = rows_out + rows_quarantined` in every report.

mod drift;
mod error;
mod html;
mod judge;
mod matches;
mod repeated;
mod report;
mod rules;
mod stats;
mod stream;
mod validator;

pub use drift::{PSI_FLOOR, bin_counts, ks_statistic, psi, quantile, quantile_edges};
pub use error::{Error, Result};
pub use html::render_html;
pub use report::{CheckResult, Histogram, ValidationReport, Verdict, format_score};
pub use stats::{ROW_RULE_PASSING_SCORE, ReferenceTable, passing_score};
pub use stream::{Finish, validated_table};
pub use validator::{Finished, PartitionValidator, QUARANTINE_COLUMNS, Validator};
