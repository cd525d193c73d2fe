//! Whether a failure is worth retrying.

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Worth retrying.
    Transient,
    /// Retrying cannot help.
    Permanent,
}
