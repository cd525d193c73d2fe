//! Strings of the project file that may hold secrets: connection URLs, headers,
//! webhook URLs. They are written with `${ENV_VAR}` references and expanded only
//! when used, so the expanded value is never printed, logged, hashed into a
//! fingerprint or stored in a run record.

use std::fmt;

/// A setting that may hold a secret, kept as written (`postgres://app:${PG_PASSWORD}@db/sales`).
///
/// [`Secret::expose`] expands `${VAR}` from the environment at the moment of
/// use. Everything else — `Debug`, `Display`, `Serialize` (fingerprints) — shows
/// the text as written, with the password of a URL written inline masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    written: String,
}

/// A `${VAR}` reference to an environment variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable `{0}` is not set")]
pub struct UnsetVariable(pub String);

impl Secret {
    /// The setting as written in the project file.
    pub fn new(written: impl Into<String>) -> Self {
        Self {
            written: written.into(),
        }
    }

    /// The value with every `${VAR}` replaced by the environment variable's
    /// value. Use it where the value is needed and drop it there.
    pub fn expose(&self) -> Result<String, UnsetVariable> {
        expand_env(&self.written)
    }

    /// The environment variables it reads, in order.
    pub fn variables(&self) -> Vec<&str> {
        let mut out = vec![];
        let mut rest = self.written.as_str();
        while let Some(start) = rest.find("${") {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            out.push(&rest[start + 2..start + end]);
            rest = &rest[start + end + 1..];
        }
        out
    }

    /// The setting with `edit` applied to its text as written (before any
    /// `${VAR}` is expanded): a partition's bounds filled in, say.
    pub fn edited<E>(&self, edit: impl FnOnce(&str) -> Result<String, E>) -> Result<Secret, E> {
        Ok(Secret::new(edit(&self.written)?))
    }

    /// The text as written, with a URL's inline password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_userinfo(&self.written)
    }

    /// Whether a URL's password is written in the text itself rather than as
    /// a `${VAR}` reference (a secret in the project file).
    pub fn has_written_password(&self) -> bool {
        self.redacted() != self.written
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Secret").field(&self.redacted()).finish()
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// Replaces `${VAR}` with the environment variable's value. A `${` without a
/// closing brace is kept as it is.
pub fn expand_env(s: &str) -> Result<String, UnsetVariable> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let var = &rest[start + 2..start + end];
        match std::env::var(var) {
            Ok(v) => out.push_str(&v),
            Err(_) => return Err(UnsetVariable(var.to_string())),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `scheme://user:password@host...` → `scheme://user:***@host...`; a password
/// that is only `${VAR}` references stays, since it names no secret.
fn redact_userinfo(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = s[authority_start..]
        .find(['/', '?', '#'])
        .map_or(s.len(), |i| authority_start + i);
    let authority = &s[authority_start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return s.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return s.to_string();
    };
    let password = &userinfo[colon + 1..];
    let only_references = Secret::new(password)
        .variables()
        .iter()
        .fold(password.to_string(), |left, var| {
            left.replace(&format!("${{{var}}}"), "")
        });
    if password.is_empty() || only_references.is_empty() {
        return s.to_string();
    }
    format!(
        "{}{}:***{}",
        &s[..authority_start],
        &userinfo[..colon],
        &s[authority_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_shows_what_was_written_never_the_value() {
        // PATH is set in every test environment; its value must not leak.
        let path = std::env::var("PATH").unwrap_or_default();
        let s = Secret::new("postgres://app:${PATH}@db:5432/sales");
        assert_eq!(s.variables(), vec!["PATH"]);
        assert_eq!(
            s.expose().as_deref(),
            Ok(format!("postgres://app:{path}@db:5432/sales").as_str())
        );
        for shown in [
            format!("{s}"),
            format!("{s:?}"),
            serde_json::to_string(&s).unwrap_or_default(),
        ] {
            assert!(shown.contains("${PATH}"), "{shown}");
            assert!(path.is_empty() || !shown.contains(&path), "{shown}");
        }
    }

    #[test]
    fn an_inline_password_is_masked() {
        let s = Secret::new("postgres://app:hunter2@db/sales?sslmode=require");
        assert_eq!(s.to_string(), "postgres://app:***@db/sales?sslmode=require");
        assert!(s.has_written_password());
        assert!(!Secret::new("postgres://app:${PW}@db/sales").has_written_password());
        assert!(!Secret::new("${PG_URL}").has_written_password());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            Secret::new("redis://127.0.0.1:6379/0").to_string(),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            Secret::new("https://hooks.example.com/x").to_string(),
            "https://hooks.example.com/x"
        );
    }

    #[test]
    fn an_unset_variable_is_named_not_guessed() {
        let s = Secret::new("${SLUICE_TEST_SURELY_UNSET_VARIABLE}/x");
        assert_eq!(
            s.expose(),
            Err(UnsetVariable("SLUICE_TEST_SURELY_UNSET_VARIABLE".into()))
        );
        assert_eq!(
            expand_env("plain ${ unclosed"),
            Ok("plain ${ unclosed".into())
        );
    }
}
