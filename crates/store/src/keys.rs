//! API keys in the metadata database. A key is shown once, when created; only its
//! BLAKE3 hash is stored. Keys are 256 random bits, so a fast hash is enough (a
//! slow password hash protects low-entropy secrets, which these are not), and
//! the hash comparison runs in constant time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::metadata::{Metadata, parse_time};
use crate::{Error, Result};

/// What a key may do; each role may also do everything of the roles before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Features, predictions, search and asset metadata.
    Reader,
    /// Also pushing rows to push sources (`POST /v1/push/{source}`): the
    /// credential of a pipeline that sends data.
    Writer,
    /// Also rows, SQL queries and runs.
    Operator,
    /// Also key management.
    Admin,
}

impl Role {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}`: use reader, writer, operator or admin"
            )),
        }
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyInfo {
    /// The public part of the key, shown in lists (`sk_<id>_...`).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created: the only moment its secret is known.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// What is stored.
    pub info: KeyInfo,
    /// The whole key, to give to its user.
    pub secret: String,
}

const PREFIX: &str = "sk_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits `sk_<id>_<secret>` and returns the id, or `None` when it is not of that shape.
fn key_id(token: &str) -> Option<&str> {
    let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
    let hex_of = |s: &str, n: usize| s.len() == n * 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, ID_BYTES) && hex_of(secret, SECRET_BYTES)).then_some(id)
}

fn row_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyInfo> {
    let role: String = row.get(2)?;
    Ok(KeyInfo {
        id: row.get(0)?,
        name: row.get(1)?,
        role: role.parse().unwrap_or(Role::Reader),
        created_at: parse_time(row.get(3)?),
        revoked_at: row.get::<_, Option<String>>(4)?.map(parse_time),
    })
}

impl Metadata {
    /// Creates a key; its secret is in the result and nowhere else.
    pub fn create_key(&self, role: Role, name: &str) -> Result<NewKey> {
        let mut random = [0u8; ID_BYTES + SECRET_BYTES];
        getrandom::fill(&mut random).map_err(|e| Error::Random(e.to_string()))?;
        let id = hex(&random[..ID_BYTES]);
        let secret = format!("{PREFIX}{id}_{}", hex(&random[ID_BYTES..]));
        let hash = blake3::hash(secret.as_bytes()).to_hex().to_string();
        let created_at = Utc::now();
        self.with(|c| {
            c.execute(
                "INSERT INTO api_keys (id, name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, name, role.as_str(), hash, created_at.to_rfc3339()],
            )
        })?;
        Ok(NewKey {
            info: KeyInfo {
                id,
                name: name.to_string(),
                role,
                created_at,
                revoked_at: None,
            },
            secret,
        })
    }

    /// Every key, revoked ones included, oldest first.
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map([], row_info)?;
            rows.collect()
        })
    }

    /// Revokes the keys with this id or name; returns those revoked now.
    pub fn revoke_key(&self, id_or_name: &str) -> Result<Vec<KeyInfo>> {
        let now = Utc::now().to_rfc3339();
        self.with(|c| {
            let mut stmt = c.prepare(
                "UPDATE api_keys SET revoked_at = ?2
                 WHERE (id = ?1 OR name = ?1) AND revoked_at IS NULL
                 RETURNING id, name, role, created_at, revoked_at",
            )?;
            let rows = stmt.query_map(params![id_or_name, now], row_info)?;
            rows.collect()
        })
    }

    /// A value that changes whenever the database changes, by this connection
    /// (its count of changes) or by another process (SQLite's `data_version`):
    /// caches of keys compare it before trusting what they hold.
    pub fn generation(&self) -> Result<(i64, u64)> {
        self.with(|c| {
            let version: i64 = c
                .prepare_cached("PRAGMA data_version")?
                .query_row([], |r| r.get(0))?;
            Ok((version, c.total_changes()))
        })
    }

    /// Whether any key is in force.
    pub fn has_active_keys(&self) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)",
                [],
                |r| r.get(0),
            )
        })
    }

    /// The key a bearer token stands for, if it is a key in force. Unknown,
    /// malformed and revoked tokens all give `None`, in about the same time.
    pub fn verify_key(&self, token: &str) -> Result<Option<KeyInfo>> {
        let presented = blake3::hash(token.as_bytes());
        let Some(id) = key_id(token) else {
            return Ok(None);
        };
        let found = self.with(|c| {
            c.query_row(
                "SELECT id, name, role, created_at, revoked_at, hash FROM api_keys WHERE id = ?1",
                [id],
                |row| Ok((row_info(row)?, row.get::<_, String>(5)?)),
            )
            .optional()
        })?;
        // blake3::Hash compares in constant time; an unknown id still compares once.
        let (info, stored) = match found {
            Some((info, hash)) => (Some(info), blake3::Hash::from_hex(hash).ok()),
            None => (None, None),
        };
        let stored = stored.unwrap_or_else(|| blake3::hash(b"no such key"));
        let matches = stored == presented;
        Ok(info.filter(|i| matches && i.revoked_at.is_none()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_changes_with_every_write_from_any_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        let other = Metadata::open(&dir.path().join("sluice.db")).expect("open again");
        let g0 = db.generation().expect("generation");
        assert_eq!(db.generation().expect("again"), g0, "reads change nothing");
        db.create_key(Role::Reader, "mine").expect("create");
        let g1 = db.generation().expect("generation");
        assert_ne!(g1, g0, "a write by this connection");
        other.revoke_key("mine").expect("revoke");
        let g2 = db.generation().expect("generation");
        assert_ne!(g2, g1, "a write by another connection");
    }

    #[test]
    fn keys_verify_until_revoked_and_only_hashes_are_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        assert!(!db.has_active_keys().expect("active"));
        let reader = db.create_key(Role::Reader, "dash").expect("create");
        let admin = db.create_key(Role::Admin, "ops").expect("create");
        assert!(db.has_active_keys().expect("active"));
        assert!(reader.secret.starts_with("sk_"));
        let got = db.verify_key(&reader.secret).expect("verify");
        assert_eq!(got.map(|k| k.role), Some(Role::Reader));
        assert_eq!(
            db.verify_key(&admin.secret)
                .expect("verify")
                .map(|k| k.role),
            Some(Role::Admin)
        );
        // One changed character, a wrong id, junk: all unknown.
        let mut wrong = reader.secret.clone();
        let last = wrong.pop().expect("char");
        wrong.push(if last == '0' { '1' } else { '0' });
        assert_eq!(db.verify_key(&wrong).expect("verify"), None);
        assert_eq!(db.verify_key("sk_zz_zz").expect("verify"), None);
        assert_eq!(db.verify_key("").expect("verify"), None);
        assert_eq!(db.verify_key("' OR 1=1 --").expect("verify"), None);
        // The database holds no secret.
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&reader.secret[reader.info.id.len() + 4..]));
        }
        let revoked = db.revoke_key("dash").expect("revoke");
        assert_eq!(revoked.len(), 1);
        assert_eq!(db.verify_key(&reader.secret).expect("verify"), None);
        assert!(db.revoke_key("dash").expect("again").is_empty());
        let keys = db.keys().expect("list");
        assert_eq!(keys.len(), 2);
        assert!(keys[0].revoked_at.is_some() && keys[1].revoked_at.is_none());
    }

    #[test]
    fn roles_are_ordered_and_parsed() {
        assert!(Role::Reader < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
    }
}
