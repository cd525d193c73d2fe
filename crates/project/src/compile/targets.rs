//! Where an export writes: a file (`path`), a PostgreSQL table (`postgres`) or
//! Redis keys (`redis`) — one of them — and the key columns each needs.

use std::path::PathBuf;
use std::time::Duration;

use sluice_core::{Location, Secret};
use toml::Spanned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::RawProject;
use crate::raw::{
    ExportSection, OneOrMany, PostgresExportSection, PostgresMode, RedisExportSection, RedisFormat,
};

/// PostgreSQL's longest identifier, in bytes; a longer one is cut silently.
const PG_NAME_MAX: usize = 63;

/// The format of a file export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// JSON: an object keyed by entity, or an array of rows.
    Json,
    /// CSV with a header line.
    Csv,
    /// Parquet.
    Parquet,
}

/// Where an export's rows go.
#[derive(Debug, Clone)]
pub enum ExportTarget {
    /// A file, replaced by rename.
    File(FileTarget),
    /// A PostgreSQL table.
    Postgres(PostgresTarget),
    /// Redis keys under a versioned prefix.
    Redis(RedisTarget),
}

/// `path = "..."`: a file.
#[derive(Debug, Clone)]
pub struct FileTarget {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: ExportFormat,
}

/// `postgres = { ... }`: a table.
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    /// The connection URL, expanded only when connecting.
    pub url: Secret,
    /// The table's schema (`public` when not written).
    pub schema: String,
    /// The table's name.
    pub table: String,
    /// Replace the table or upsert into it.
    pub mode: PostgresMode,
}

/// `redis = { ... }`: one key per row, `{prefix}{version}:{id}{suffix}`.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    /// The connection URL, expanded only when connecting.
    pub url: Secret,
    /// The key's text before `{id}`: the pointer is `{prefix}current`.
    pub prefix: String,
    /// The key's text after `{id}`.
    pub suffix: String,
    /// A hash per row or a JSON string per row.
    pub format: RedisFormat,
    /// How long the keys live (whole seconds, at least one).
    pub ttl: Option<Duration>,
}

/// Compiles the export's target and its key columns. With a mistake (reported
/// in `diags`) the target returned is a placeholder: the project does not load,
/// but the export's references are still checked.
pub(super) fn compile(
    raw: &RawProject,
    name: &str,
    section: &ExportSection,
    entity: Option<Vec<String>>,
    at: &Location,
    diags: &mut Diagnostics,
) -> (ExportTarget, Vec<String>) {
    let placeholder = || {
        ExportTarget::File(FileTarget {
            path: raw.dir.clone(),
            format: ExportFormat::Json,
        })
    };
    let written = [
        section.path.is_some(),
        section.postgres.is_some(),
        section.redis.is_some(),
    ];
    match written.iter().filter(|w| **w).count() {
        0 => {
            diags.push(
                Diagnostic::new(at.clone(), format!("export `{name}` has nowhere to write"))
                    .with_help("add `path = \"out/NAME.json\"`, `postgres = { url = \"${PG_URL}\", table = \"public.NAME\" }` or `redis = { url = \"${REDIS_URL}\", key = \"NAME:{id}\" }`"),
            );
            return (placeholder(), Vec::new());
        }
        1 => {}
        _ => {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("export `{name}` has more than one of `path`, `postgres` and `redis`"),
                )
                .with_help("an export writes one target: write another `[exports.NAME]` for each"),
            );
            return (placeholder(), Vec::new());
        }
    }
    let key_of = |k: &Spanned<OneOrMany>| {
        let names = k.get_ref().to_vec();
        if names.is_empty() || names.iter().any(String::is_empty) {
            no_column(raw.location(k.span().start))
        } else {
            Ok(names)
        }
    };
    // A key written but naming no column.
    let mut key = match section.key.as_ref().map(key_of) {
        Some(Err(d)) => {
            diags.push(d);
            Vec::new()
        }
        Some(Ok(k)) => k,
        None => Vec::new(),
    };
    if section.path.is_none()
        && let Some(f) = &section.format
    {
        diags.push(
            Diagnostic::new(
                raw.location(f.span().start),
                "`format` is a file export's; this export writes no file",
            )
            .with_help("for Redis write it inside: `redis = { ..., format = \"json\" }`"),
        );
    }
    if let Some(pg) = &section.postgres {
        if let Some(inner) = &pg.get_ref().key {
            if section.key.is_some() {
                diags.push(
                    Diagnostic::new(
                        raw.location(inner.span().start),
                        "the key is written twice: in `postgres = { key }` and as the export's `key`",
                    )
                    .with_help("keep one of them"),
                );
            }
            match key_of(inner) {
                Ok(k) => key = k,
                Err(d) => diags.push(d),
            }
        }
        if key.is_empty() {
            key = entity.unwrap_or_default();
        }
        let target = postgres(raw, name, pg, &key, diags);
        return (target.unwrap_or_else(placeholder), key);
    }
    if let Some(redis_section) = &section.redis {
        if key.is_empty() {
            key = entity.unwrap_or_default();
        }
        if key.is_empty() {
            diags.push(
                Diagnostic::new(
                    raw.location(redis_section.span().start),
                    format!("Redis export `{name}` has no key columns to fill `{{id}}` with"),
                )
                .with_help("add `key = \"COLUMN\"` (or a list) to the export, or export a feature view (keyed by its entity)"),
            );
        }
        let target = redis(raw, name, redis_section, diags);
        return (target.unwrap_or_else(placeholder), key);
    }
    let Some(path) = &section.path else {
        return (placeholder(), key);
    };
    let target = file(raw, path, section.format.as_ref(), diags);
    if let Some(k) = &section.key {
        if target.format != ExportFormat::Json {
            diags.push(
                Diagnostic::new(
                    raw.location(k.span().start),
                    "`key` applies to JSON exports only",
                )
                .with_help("remove it, or write the export as JSON"),
            );
        }
    } else if let Some(e) = entity {
        key = e;
    }
    (ExportTarget::File(target), key)
}

/// A key written that names no column.
fn no_column(at: Location) -> Result<Vec<String>, Diagnostic> {
    Err(Diagnostic::new(at, "`key` names no column"))
}

/// `path` and `format`.
fn file(
    raw: &RawProject,
    path: &Spanned<String>,
    format: Option<&Spanned<String>>,
    diags: &mut Diagnostics,
) -> FileTarget {
    let path_text = path.get_ref();
    let path_at = raw.location(path.span().start);
    if path_text.is_empty() {
        diags.push(Diagnostic::new(
            path_at.clone(),
            "the export's `path` is empty",
        ));
    }
    let path = raw.dir.join(path_text);
    let format = match format {
        Some(f) => match f.get_ref().as_str() {
            "json" => Some(ExportFormat::Json),
            "csv" => Some(ExportFormat::Csv),
            "parquet" => Some(ExportFormat::Parquet),
            other => {
                diags.push(
                    Diagnostic::new(
                        raw.location(f.span().start),
                        format!("unknown export format `{other}`"),
                    )
                    .with_help("write `format = \"json\"`, `\"csv\"` or `\"parquet\"`"),
                );
                None
            }
        },
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Some(ExportFormat::Json),
            Some("csv") => Some(ExportFormat::Csv),
            Some("parquet") => Some(ExportFormat::Parquet),
            _ => {
                diags.push(
                    Diagnostic::new(
                        path_at.clone(),
                        format!("cannot tell the format of `{path_text}`"),
                    )
                    .with_help(
                        "end the path in .json, .csv or .parquet, or add `format = \"json\"`",
                    ),
                );
                None
            }
        },
    };
    FileTarget {
        path,
        format: format.unwrap_or(ExportFormat::Json),
    }
}

/// A URL whose password is written in the file is refused: secrets come from
/// the environment only.
fn check_url(
    raw: &RawProject,
    name: &str,
    what: &str,
    url: &Spanned<Secret>,
    diags: &mut Diagnostics,
) {
    if url.get_ref().has_written_password() {
        diags.push(
            Diagnostic::new(
                raw.location(url.span().start),
                format!("the {what} URL of export `{name}` has its password written in the file"),
            )
            .with_help(format!(
                "write the password as a variable (`{}`) or the whole URL as one (`url = \"${{{}_URL}}\"`) and set it where sluice runs",
                url.get_ref(),
                what.to_uppercase()
            )
            .replace("***", "${PASSWORD}")),
        );
    }
}

/// `postgres = { url, table, mode, key }`.
fn postgres(
    raw: &RawProject,
    name: &str,
    section: &Spanned<PostgresExportSection>,
    key: &[String],
    diags: &mut Diagnostics,
) -> Option<ExportTarget> {
    let s = section.get_ref();
    check_url(raw, name, "PostgreSQL", &s.url, diags);
    let table_at = raw.location(s.table.span().start);
    let parts: Vec<&str> = s.table.get_ref().split('.').collect();
    let (schema, table) = match parts.as_slice() {
        [t] if !t.is_empty() => ("public", *t),
        [s, t] if !s.is_empty() && !t.is_empty() => (*s, *t),
        _ => {
            diags.push(
                Diagnostic::new(
                    table_at,
                    format!("`{}` is not a table name", s.table.get_ref()),
                )
                .with_help("write `table = \"schema.name\"` or `table = \"name\"` (in `public`)"),
            );
            return None;
        }
    };
    if let Some(long) = [schema, table].into_iter().find(|p| p.len() > PG_NAME_MAX) {
        diags.push(
            Diagnostic::new(
                table_at,
                format!("`{long}` is longer than PostgreSQL's {PG_NAME_MAX} bytes for a name"),
            )
            .with_help("choose a shorter name"),
        );
        return None;
    }
    if s.mode == PostgresMode::Upsert && key.is_empty() {
        diags.push(
            Diagnostic::new(
                raw.location(section.span().start),
                format!("export `{name}` upserts without a key"),
            )
            .with_help("add `key = [\"COLUMN\", ...]` inside `postgres = { ... }`: the columns a row is matched by"),
        );
    }
    Some(ExportTarget::Postgres(PostgresTarget {
        url: s.url.get_ref().clone(),
        schema: schema.to_string(),
        table: table.to_string(),
        mode: s.mode,
    }))
}

/// `redis = { url, key, format, ttl }`.
fn redis(
    raw: &RawProject,
    name: &str,
    section: &Spanned<RedisExportSection>,
    diags: &mut Diagnostics,
) -> Option<ExportTarget> {
    let s = section.get_ref();
    check_url(raw, name, "Redis", &s.url, diags);
    let template = s.key.get_ref();
    let key_at = raw.location(s.key.span().start);
    let (prefix, suffix) = match template.split_once("{id}") {
        Some((p, rest)) if !p.is_empty() && !rest.contains("{id}") => (p, rest),
        _ => {
            diags.push(
                Diagnostic::new(
                    key_at,
                    format!("the Redis key `{template}` needs a prefix and one `{{id}}`"),
                )
                .with_help(format!("write `key = \"{name}:{{id}}\"`: `{{id}}` is filled from the key columns, and the prefix holds the versions and the `current` pointer")),
            );
            return None;
        }
    };
    let ttl = match &s.ttl {
        Some(t) => {
            let d = t.get_ref().value;
            if d < Duration::from_secs(1) {
                diags.push(
                    Diagnostic::new(
                        raw.location(t.span().start),
                        format!("`ttl = \"{}\"` is shorter than a second", t.get_ref().text),
                    )
                    .with_help("Redis expires keys by the second: write `ttl = \"1h\"` or longer, or leave it out"),
                );
                None
            } else {
                // Whole seconds, rounded up.
                Some(Duration::from_secs(
                    d.as_secs() + u64::from(d.subsec_nanos() > 0),
                ))
            }
        }
        None => None,
    };
    Some(ExportTarget::Redis(RedisTarget {
        url: s.url.get_ref().clone(),
        prefix: prefix.to_string(),
        suffix: suffix.to_string(),
        format: s.format,
        ttl,
    }))
}

#[cfg(test)]
mod tests {
    use crate::{Definition, ExportTarget, PostgresMode, RedisFormat};

    fn load(exports: &str) -> Result<crate::Project, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), "id,v\n1,2\n").expect("write");
        std::fs::write(
            dir.path().join("sluice.toml"),
            format!("[project]\nname = \"p\"\n\n[sources.a]\npath = \"a.csv\"\n\n{exports}"),
        )
        .expect("write");
        crate::load(dir.path(), None).map_err(|d| d.to_string())
    }

    fn target(p: &crate::Project, name: &str) -> (ExportTarget, Vec<String>) {
        match p.asset(name).map(|a| &a.definition) {
            Some(Definition::Export(d)) => (d.target.clone(), d.key.clone()),
            _ => panic!("no export {name}"),
        }
    }

    #[test]
    fn postgres_and_redis_targets_compile() {
        let p = load(
            "[exports.pg]\nfrom = \"a\"\npostgres = { url = \"${PG_URL}\", table = \"sales.a\", mode = \"upsert\", key = [\"id\"] }\n\n\
             [exports.pg2]\nfrom = \"a\"\npostgres = { url = \"postgres://u:${PW}@h/db\", table = \"a\" }\n\n\
             [exports.r]\nfrom = \"a\"\nkey = \"id\"\nredis = { url = \"${REDIS_URL}\", key = \"a:{id}:v\", format = \"json\", ttl = \"1500ms\" }\n",
        )
        .expect("loads");
        let (t, key) = target(&p, "pg");
        match t {
            ExportTarget::Postgres(t) => {
                assert_eq!((t.schema.as_str(), t.table.as_str()), ("sales", "a"));
                assert_eq!(t.mode, PostgresMode::Upsert);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(key, vec!["id"]);
        match target(&p, "pg2").0 {
            ExportTarget::Postgres(t) => {
                assert_eq!(
                    (t.schema.as_str(), t.mode),
                    ("public", PostgresMode::Replace)
                );
            }
            other => panic!("{other:?}"),
        }
        match target(&p, "r").0 {
            ExportTarget::Redis(t) => {
                assert_eq!((t.prefix.as_str(), t.suffix.as_str()), ("a:", ":v"));
                assert_eq!(t.format, RedisFormat::Json);
                assert_eq!(t.ttl, Some(std::time::Duration::from_secs(2)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn target_mistakes_are_reported_with_what_to_do() {
        let e = load(
            "[exports.none]\nfrom = \"a\"\n\n\
             [exports.two]\nfrom = \"a\"\npath = \"x.json\"\nredis = { url = \"${R}\", key = \"x:{id}\" }\n\n\
             [exports.pw]\nfrom = \"a\"\npostgres = { url = \"postgres://u:hunter2@h/db\", table = \"a.b.c\", mode = \"upsert\" }\n\n\
             [exports.nokey]\nfrom = \"a\"\nredis = { url = \"${R}\", key = \"{id}\", format = \"xml\" }\n",
        )
        .expect_err("mistakes");
        for want in [
            "export `none` has nowhere to write",
            "export `two` has more than one of `path`, `postgres` and `redis`",
            "the PostgreSQL URL of export `pw` has its password written in the file",
            "`a.b.c` is not a table name",
            "Redis export `nokey` has no key columns",
            "the Redis key `{id}` needs a prefix and one `{id}`",
            "unknown variant `xml`",
        ] {
            assert!(e.contains(want), "missing `{want}` in:\n{e}");
        }
        assert!(!e.contains("hunter2"), "{e}");
        let e = load(
            "[exports.up]\nfrom = \"a\"\npostgres = { url = \"${PG_URL}\", table = \"a\", mode = \"upsert\" }\n",
        )
        .expect_err("no key");
        assert!(e.contains("export `up` upserts without a key"), "{e}");
    }
}
