//! `[sources.NAME]` with `postgres`, `mysql` or `sqlite`: rows read from a
//! database by a query, or a table read whole.

use std::path::PathBuf;

use sluice_core::{Location, Secret};

use super::{Builder, Definition, fingerprint};
use crate::diag::Diagnostic;
use crate::raw::{DatabaseOptions, NumericMode, SourceSection, SqliteOptions};

/// Bumped when reading a database gives other rows or types than before for
/// the same settings.
const DB_READ_RULES: &str = "db-read-1";

/// Which database a [`DatabaseDef`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// SQLite.
    Sqlite,
}

impl Engine {
    /// The connector's key in the project file (`postgres`), used in messages.
    pub fn key(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Sqlite => "sqlite",
        }
    }

    /// A table name quoted as this database quotes identifiers, each part of
    /// `schema.table` on its own (a quote inside a name doubled).
    pub fn quote_table(self, table: &str) -> String {
        table
            .split('.')
            .map(|part| self.quote(part))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// One identifier quoted.
    pub fn quote(self, ident: &str) -> String {
        match self {
            Engine::Mysql => format!("`{}`", ident.replace('`', "``")),
            Engine::Postgres | Engine::Sqlite => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }
}

/// A compiled database source.
#[derive(Debug, Clone)]
pub struct DatabaseDef {
    /// Which database.
    pub engine: Engine,
    /// PostgreSQL and MySQL: the connection URL (`${ENV}` expanded only when used).
    pub url: Option<Secret>,
    /// SQLite: the database file, resolved against the project folder.
    pub path: Option<PathBuf>,
    /// The query whose rows are read (a `table` becomes `SELECT * FROM table`).
    pub query: String,
    /// Parallel reads split by a column's range.
    pub partitions: Option<RangeSplit>,
    /// How `numeric` columns are read.
    pub numeric: NumericMode,
}

/// `partitions = N, partition_column = "id"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSplit {
    /// How many ranges.
    pub count: usize,
    /// The integer column split.
    pub column: String,
}

/// Compiles a database source: exactly one of `query` and `table`, the
/// partitioning keys together, the SQLite file present.
pub(super) fn compile(b: &mut Builder<'_>, name: &str, at: Location, section: &SourceSection) {
    let raw = b.raw;
    // Claimed first, so that a mistake in the options is not also reported
    // as an unknown name where the source is read.
    let Some(asset_name) = b.claim(name, sluice_core::AssetKind::Source, &at) else {
        return;
    };
    let def = match section {
        SourceSection::Postgres(s) => {
            let options_at = raw.location(s.postgres.span().start);
            database(b, Engine::Postgres, s.postgres.get_ref(), &options_at)
        }
        SourceSection::Mysql(s) => {
            let options_at = raw.location(s.postgres.span().start);
            database(b, Engine::Mysql, s.postgres.get_ref(), &options_at)
        }
        SourceSection::Sqlite(s) => {
            let options_at = raw.location(s.sqlite.span().start);
            sqlite(b, s.sqlite.get_ref(), &options_at)
        }
        _ => None,
    };
    let Some(def) = def else { return };
    let written = serde_json::to_string(section).unwrap_or_default();
    let fingerprint = fingerprint(&["source", def.engine.key(), &written, DB_READ_RULES]);
    let contract = b.contract(section.contract());
    let description = section.description().cloned();
    // Its partition's bounds reach the database as the filters it is read
    // with (`WHERE column >= $1 AND column < $2`, bound as parameters).
    let partitioned = section
        .partitioned()
        .and_then(|p| super::partitions::compile(b, p));
    let source = match def.engine {
        Engine::Postgres => super::SourceDef::Postgres(def),
        Engine::Mysql => super::SourceDef::Mysql(def),
        Engine::Sqlite => super::SourceDef::Sqlite(def),
    };
    let asset = b.add(
        asset_name,
        at,
        Definition::Source(Box::new(source)),
        fingerprint,
    );
    asset.contract = contract;
    asset.description = description;
    asset.partitioned = partitioned;
}

/// The query of `query` or `table`, exactly one of them.
fn query_of(
    b: &mut Builder<'_>,
    engine: Engine,
    query: Option<&String>,
    table: Option<&String>,
    at: &Location,
) -> Option<String> {
    let key = engine.key();
    match (query, table) {
        (Some(q), None) if !q.trim().is_empty() => {
            Some(q.trim().trim_end_matches(';').trim().to_string())
        }
        (None, Some(t)) if !t.trim().is_empty() => {
            Some(format!("SELECT * FROM {}", engine.quote_table(t.trim())))
        }
        (Some(_), Some(_)) => {
            b.diags.push(
                Diagnostic::new(at.clone(), format!("`{key}` has both `query` and `table`"))
                    .with_help(
                        "keep one: `table` reads a whole table, `query` the rows of a query",
                    ),
            );
            None
        }
        _ => {
            b.diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("`{key}` needs `query` or `table` (not empty)"),
                )
                .with_help(format!(
                    "write `{key} = {{ ..., table = \"orders\" }}` or `query = \"SELECT ...\"`"
                )),
            );
            None
        }
    }
}

fn database(
    b: &mut Builder<'_>,
    engine: Engine,
    o: &DatabaseOptions,
    at: &Location,
) -> Option<DatabaseDef> {
    let key = engine.key();
    let query = query_of(b, engine, o.query.as_ref(), o.table.as_ref(), at);
    let schemes: &[&str] = match engine {
        Engine::Postgres => &["postgres://", "postgresql://"],
        _ => &["mysql://", "mariadb://"],
    };
    let written = o.url.redacted();
    if !written.starts_with("${") && !schemes.iter().any(|s| written.starts_with(s)) {
        b.diags.push(
            Diagnostic::new(
                at.clone(),
                format!("`{key}.url` = `{written}` is not a {key} URL"),
            )
            .with_help(format!(
                "write `{}user:${{PASSWORD}}@host:port/database`",
                schemes[0]
            )),
        );
    }
    let partitions = match (o.partitions, &o.partition_column) {
        (None | Some(1), None) => None,
        (Some(0), _) => {
            b.diags.push(
                Diagnostic::new(at.clone(), format!("`{key}.partitions` must be at least 1"))
                    .with_help("remove it to read in one piece"),
            );
            None
        }
        (Some(n), Some(column)) => Some(RangeSplit {
            count: n,
            column: column.clone(),
        }),
        (Some(_), None) => {
            b.diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("`{key}.partitions` needs `partition_column`"),
                )
                .with_help(
                    "name the integer column whose range is split: `partition_column = \"id\"`",
                ),
            );
            None
        }
        (None, Some(_)) => {
            b.diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("`{key}.partition_column` is set without `partitions`"),
                )
                .with_help("add `partitions = N`, the number of parallel reads"),
            );
            None
        }
    };
    Some(DatabaseDef {
        engine,
        url: Some(o.url.clone()),
        path: None,
        query: query?,
        partitions,
        numeric: o.numeric.unwrap_or_default(),
    })
}

fn sqlite(b: &mut Builder<'_>, o: &SqliteOptions, at: &Location) -> Option<DatabaseDef> {
    let query = query_of(b, Engine::Sqlite, o.query.as_ref(), o.table.as_ref(), at);
    let path = b.raw.dir.join(&o.path);
    if !path.is_file() {
        b.diags.push(
            Diagnostic::new(at.clone(), format!("no SQLite file `{}`", o.path))
                .with_help("check `sqlite.path`; it is relative to the project folder"),
        );
    }
    Some(DatabaseDef {
        engine: Engine::Sqlite,
        url: None,
        path: Some(path),
        query: query?,
        partitions: None,
        numeric: NumericMode::Decimal,
    })
}
