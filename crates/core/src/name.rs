//! Asset names: the identifiers that SQL uses to refer to assets.

use serde::{Deserialize, Serialize};

/// What an asset's quarantine table is called after: `<asset>__quarantine`.
pub const QUARANTINE_SUFFIX: &str = "__quarantine";

/// The name of an asset. It is a plain lower-case SQL identifier so that it can be
/// written unquoted in SQL; names containing `__` are reserved for sluice's own
/// derived tables (such as quarantine tables).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AssetName(String);

/// Why a string is not a valid asset name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid asset name: {reason}")]
pub struct InvalidAssetName {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AssetName {
    /// Validates and wraps a name.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidAssetName> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > 128 {
            Some("it is longer than 128 characters")
        } else if !name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
            Some("it must start with a lower-case letter or `_`")
        } else if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            Some("use only lower-case letters, digits and `_`")
        } else if name.contains("__") {
            Some("`__` is reserved for tables sluice derives from assets")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidAssetName { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the table that holds the rows this asset's contract rejected.
    pub fn quarantine(&self) -> String {
        format!("{}{QUARANTINE_SUFFIX}", self.0)
    }
}

impl TryFrom<String> for AssetName {
    type Error = InvalidAssetName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<AssetName> for String {
    fn from(value: AssetName) -> Self {
        value.0
    }
}

impl std::fmt::Display for AssetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for AssetName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sql_identifiers_and_rejects_the_rest() {
        for ok in ["flights", "daily_delays", "_x1"] {
            assert_eq!(
                AssetName::new(ok).map(|n| n.to_string()),
                Ok(ok.to_string())
            );
        }
        for bad in ["", "Flights", "1x", "a-b", "a b", "x__quarantine"] {
            assert!(AssetName::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
