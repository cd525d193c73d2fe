//! One entry of a JSON export keyed by entity, as an app reads its per-user
//! report from Firebase: the export's file is read once per version (its size and
//! modification time, which every rewrite changes by renaming a new file in) and
//! kept parsed, so an entry is a lookup.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::Value;
use sluice_project::Definition;

use super::ReadError;
use crate::Workspace;

/// The parsed files of JSON exports, by path.
#[derive(Debug, Default)]
pub struct ExportCache {
    files: Mutex<HashMap<PathBuf, Parsed>>,
}

/// A file's size and modification time when it was read, and its JSON.
#[derive(Debug)]
struct Parsed {
    len: u64,
    modified: SystemTime,
    value: Arc<Value>,
}

/// The entry of export `name` at `key` (one value per key column, outermost
/// first): the object the export holds there.
pub fn read_export_entry(
    ws: &Workspace,
    cache: &ExportCache,
    name: &str,
    key: Vec<String>,
) -> Result<Value, ReadError> {
    let exports = || {
        ws.project
            .assets
            .values()
            .filter(|a| matches!(&a.definition, Definition::Export(e) if e.is_keyed_json()))
            .map(|a| a.name.to_string())
            .collect::<Vec<_>>()
    };
    let (def, file) = match ws.project.asset(name).map(|a| &a.definition) {
        Some(Definition::Export(def)) if def.is_keyed_json() => match def.file() {
            Some(file) => (def, file),
            None => {
                return Err(ReadError::NotAKeyedExport {
                    name: name.to_string(),
                    exports: exports(),
                });
            }
        },
        _ => {
            return Err(ReadError::NotAKeyedExport {
                name: name.to_string(),
                exports: exports(),
            });
        }
    };
    let what = format!("export `{name}`");
    if key.len() != def.key.len() {
        return Err(ReadError::WrongKeyCount {
            what,
            keys: def.key.clone(),
            given: key.len(),
        });
    }
    let root = cache.file(&file.path, name)?;
    let mut at = root.as_ref();
    for k in &key {
        match at.get(k) {
            Some(next) => at = next,
            None => {
                return Err(ReadError::NoRecord {
                    what,
                    keys: def.key.clone(),
                    values: key,
                });
            }
        }
    }
    Ok(at.clone())
}

impl ExportCache {
    /// The parsed file at `path`, read again when its size or time changed.
    fn file(&self, path: &PathBuf, name: &str) -> Result<Arc<Value>, ReadError> {
        let unreadable = |e: String| ReadError::ExportUnreadable {
            name: name.to_string(),
            path: path.clone(),
            reason: e,
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReadError::ExportNotWritten {
                    name: name.to_string(),
                });
            }
            Err(e) => return Err(unreadable(e.to_string())),
        };
        let (len, modified) = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = files.get(path)
            && (p.len, p.modified) == (len, modified)
        {
            return Ok(p.value.clone());
        }
        let text = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
        let value: Value = serde_json::from_slice(&text).map_err(|e| unreadable(e.to_string()))?;
        let value = Arc::new(value);
        files.insert(
            path.clone(),
            Parsed {
                len,
                modified,
                value: value.clone(),
            },
        );
        Ok(value)
    }
}
