//! Who is looking at a page: a browser's session, kept in this process.
//!
//! With keys in force a person signs in with an API key. The key stays in the
//! server's memory, never in the browser: the browser holds only a random
//! session id in an `HttpOnly`, `SameSite=Strict` cookie, and every request
//! checks the key again (through the key cache, so a revoked key ends its
//! sessions at the next click). Every session, signed in or not, has a CSRF
//! token that each form carries; a POST without it is refused. With no key in
//! force (a server on loopback) the pages are open with the `operator` role, as
//! the API is, and the session exists only for its CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use sluice_store::Role;

use crate::AppState;
use crate::error::ApiError;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "sluice_session";

/// How long a session lives without a request.
const IDLE: Duration = Duration::from_secs(12 * 3600);

/// Most sessions kept: the oldest idle ones go first.
const MAX_SESSIONS: usize = 10_000;

/// A browser's session.
#[derive(Clone)]
struct Session {
    /// The API key it signed in with; `None` before signing in.
    key: Option<String>,
    /// The token every form of this session carries.
    csrf: String,
    /// Its last request.
    seen: Instant,
}

/// The sessions of this process, by the hash of their id.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<blake3::Hash, Session>>);

/// Who is asking for a page, and what the response must set.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// What they may see and do; `None`: they must sign in first.
    pub(crate) role: Option<Role>,
    /// Whether they signed in with a key (and so can sign out).
    pub(crate) signed_in: bool,
    /// The CSRF token of their session.
    pub(crate) csrf: String,
    /// A new session's cookie, to set on the response.
    pub(crate) set_cookie: Option<HeaderValue>,
    /// The session's id (to sign in or out).
    id: String,
}

impl Viewer {
    /// Whether they may do what `role` may.
    pub(crate) fn may(&self, role: Role) -> bool {
        self.role.is_some_and(|r| r >= role)
    }

    /// Whether `token` (a form's) is their session's CSRF token.
    pub(crate) fn csrf_ok(&self, token: Option<&str>) -> bool {
        token.is_some_and(|t| constant_eq(t.as_bytes(), self.csrf.as_bytes()))
    }
}

/// Compares in time independent of where the texts differ.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes as hex.
fn random_hex() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("making a session", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn cookie_value(id: &str, max_age: Option<u64>) -> Result<HeaderValue, ApiError> {
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{age}"
    ))
    .map_err(|e| ApiError::internal("making a session", e))
}

/// The session id a request's cookies carry.
fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Sessions {
    /// The viewer of a request: their session (a new one when the request has
    /// none that lives) and the role its key has now.
    pub(crate) fn viewer(&self, state: &AppState, headers: &HeaderMap) -> Result<Viewer, ApiError> {
        let now = Instant::now();
        let found = cookie_id(headers).and_then(|id| {
            let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let hash = blake3::hash(id.as_bytes());
            match all.get_mut(&hash) {
                Some(s) if now.duration_since(s.seen) < IDLE => {
                    s.seen = now;
                    Some((id, s.clone()))
                }
                Some(_) => {
                    all.remove(&hash);
                    None
                }
                None => None,
            }
        });
        let (id, session, set_cookie) = match found {
            Some((id, s)) => (id, s, None),
            None => {
                let id = random_hex()?;
                let session = Session {
                    key: None,
                    csrf: random_hex()?,
                    seen: now,
                };
                self.insert(&id, session.clone());
                let cookie = cookie_value(&id, None)?;
                (id, session, Some(cookie))
            }
        };
        let keys_in_force = state.keys.has_active_keys(state)?;
        let (role, signed_in) = match &session.key {
            Some(key) => match state.keys.verify(state, key)? {
                Some(info) => (Some(info.role), true),
                // Revoked since: the session is signed out.
                None => {
                    self.set_key(&id, None);
                    (None, false)
                }
            },
            None if !keys_in_force && state.open => (Some(Role::Operator), false),
            None => (None, false),
        };
        Ok(Viewer {
            role,
            signed_in,
            csrf: session.csrf,
            set_cookie,
            id,
        })
    }

    fn insert(&self, id: &str, session: Session) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() >= MAX_SESSIONS {
            let now = Instant::now();
            all.retain(|_, s| now.duration_since(s.seen) < IDLE);
            if all.len() >= MAX_SESSIONS
                && let Some(oldest) = all.iter().min_by_key(|(_, s)| s.seen).map(|(h, _)| *h)
            {
                all.remove(&oldest);
            }
        }
        all.insert(blake3::hash(id.as_bytes()), session);
    }

    fn set_key(&self, id: &str, key: Option<String>) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.get_mut(&blake3::hash(id.as_bytes())) {
            s.key = key;
        }
    }

    /// Signs `viewer`'s session in with `key`, if the key is valid: its role.
    /// The session gets a new id (and cookie), so an id planted before the
    /// sign-in is worth nothing after it.
    pub(crate) fn sign_in(
        &self,
        state: &AppState,
        viewer: &Viewer,
        key: &str,
    ) -> Result<Option<(Role, HeaderValue)>, ApiError> {
        let Some(info) = state.keys.verify(state, key.trim())? else {
            return Ok(None);
        };
        self.forget(&viewer.id);
        let id = random_hex()?;
        self.insert(
            &id,
            Session {
                key: Some(key.trim().to_string()),
                csrf: random_hex()?,
                seen: Instant::now(),
            },
        );
        Ok(Some((info.role, cookie_value(&id, None)?)))
    }

    /// Ends `viewer`'s session; the cookie that clears it in the browser.
    pub(crate) fn sign_out(&self, viewer: &Viewer) -> Result<HeaderValue, ApiError> {
        self.forget(&viewer.id);
        cookie_value("", Some(0))
    }

    fn forget(&self, id: &str) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.remove(&blake3::hash(id.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_session_cookie_is_read() {
        let id = "ab".repeat(32);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {COOKIE}={id}")).expect("header"),
        );
        assert_eq!(cookie_id(&h), Some(id));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("sluice_session=../../etc"),
        );
        assert_eq!(cookie_id(&h), None);
        assert!(constant_eq(b"abc", b"abc"));
        assert!(!constant_eq(b"abc", b"abd"));
        assert!(!constant_eq(b"abc", b"ab"));
    }
}
