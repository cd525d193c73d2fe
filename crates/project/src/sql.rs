//! SQL in the project: where it sits in its file, and which assets it refers to.

use std::path::PathBuf;

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::{Spanned, Statement, visit_relations};
use sluice_core::Location;

/// Where a piece of SQL starts in a user's file, so that positions inside the
/// SQL can be reported as positions in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlOrigin {
    /// The file that holds the SQL (`sluice.toml` or `sql/NAME.sql`).
    pub file: PathBuf,
    /// 1-based line of the SQL's first character.
    pub line: usize,
    /// 1-based column of the SQL's first character.
    pub column: usize,
}

impl SqlOrigin {
    /// The file location of 1-based `line`/`column` inside the SQL.
    pub fn locate(&self, line: u64, column: u64) -> Location {
        let (line, column) = (line as usize, column as usize);
        if line == 0 {
            return Location::new(&self.file, self.line, self.column);
        }
        if line <= 1 {
            Location::new(
                &self.file,
                self.line,
                self.column + column.saturating_sub(1),
            )
        } else {
            Location::new(&self.file, self.line + line - 1, column)
        }
    }

    /// The origin of the SQL inside a TOML string whose token (quotes included)
    /// starts at byte `token_start` of `text`.
    pub fn of_toml_string(file: impl Into<PathBuf>, text: &str, token_start: usize) -> Self {
        let rest = &text[token_start.min(text.len())..];
        let mut skip = if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
            3
        } else {
            1
        };
        // TOML trims a newline right after an opening triple quote.
        if skip == 3 {
            if rest[skip..].starts_with("\r\n") {
                skip += 2;
            } else if rest[skip..].starts_with('\n') {
                skip += 1;
            }
        }
        let loc = Location::of_offset(file, text, token_start + skip);
        Self {
            file: loc.file,
            line: loc.line,
            column: loc.column,
        }
    }
}

/// A table name used in a query, with its position in the SQL (1-based, 0 if unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The name as written, normalized to lower case like unquoted SQL identifiers.
    pub name: String,
    /// Whether it was qualified (`schema.table`): assets are never qualified.
    pub qualified: bool,
    /// Line in the SQL.
    pub line: u64,
    /// Column in the SQL.
    pub column: u64,
}

/// Why a query could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlSyntaxError {
    /// What is wrong, without the position.
    pub message: String,
    /// Line in the SQL (0 if unknown).
    pub line: u64,
    /// Column in the SQL (0 if unknown).
    pub column: u64,
}

/// Parses one query and lists the tables it reads (common table expressions excluded).
pub fn references(sql: &str) -> Result<Vec<Reference>, SqlSyntaxError> {
    let statement = parse_query(sql)?;
    let (tables, _ctes) =
        resolve_table_references(&statement, true).map_err(|e| SqlSyntaxError {
            message: e.to_string(),
            line: 0,
            column: 0,
        })?;
    let DFStatement::Statement(inner) = &statement else {
        unreachable!("parse_query returns only SQL statements")
    };
    let mut positions = Vec::new();
    let _ = visit_relations(inner.as_ref(), |name| {
        let span = name.span();
        let last = name.0.last().and_then(|p| p.as_ident()).map(|i| {
            if i.quote_style.is_some() {
                i.value.clone()
            } else {
                i.value.to_lowercase()
            }
        });
        positions.push((last, name.0.len() > 1, span.start.line, span.start.column));
        std::ops::ControlFlow::<()>::Continue(())
    });
    let mut out = Vec::new();
    for table in tables {
        let name = table.table().to_string();
        let qualified = table.schema().is_some();
        let (line, column) = positions
            .iter()
            .find(|(n, q, _, _)| n.as_deref() == Some(name.as_str()) && *q == qualified)
            .map_or((0, 0), |(_, _, l, c)| (*l, *c));
        out.push(Reference {
            name,
            qualified,
            line,
            column,
        });
    }
    out.sort_by_key(|r| (r.line, r.column));
    Ok(out)
}

/// Parses `sql` as exactly one query (SELECT, WITH ..., VALUES).
pub fn parse_query(sql: &str) -> Result<DFStatement, SqlSyntaxError> {
    let mut statements = DFParser::parse_sql(sql).map_err(|e| {
        let mut error = syntax_error(&e.to_string());
        if error.line == 0 && error.message.ends_with("found: EOF") {
            // The parser gives no position for a query that ends too early: point
            // just past its last character.
            let trimmed = sql.trim_end();
            error.line = trimmed.lines().count().max(1) as u64;
            error.column = trimmed.lines().last().map_or(0, |l| l.chars().count()) as u64 + 1;
        }
        error
    })?;
    let first = statements.pop_front();
    if !statements.is_empty() {
        return Err(SqlSyntaxError {
            message: "a table is defined by one query; found more than one statement".into(),
            line: 0,
            column: 0,
        });
    }
    match first {
        Some(DFStatement::Statement(s)) if matches!(*s, Statement::Query(_)) => {
            Ok(DFStatement::Statement(s))
        }
        Some(other) => {
            let word = other
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_uppercase();
            Err(SqlSyntaxError {
                message: format!(
                    "a table is defined by a query (SELECT, WITH or VALUES), not a `{word}` statement"
                ),
                line: 1,
                column: 1,
            })
        }
        None => Err(SqlSyntaxError {
            message: "the query is empty".into(),
            line: 0,
            column: 0,
        }),
    }
}

/// Turns a parser message such as `... found: x at Line: 2, Column: 7` into its parts.
pub fn syntax_error(message: &str) -> SqlSyntaxError {
    let message = message
        .trim_start_matches("SQL error: ")
        .trim_start_matches("ParserError(\"")
        .trim_start_matches("TokenizerError(\"")
        .trim_end_matches("\")")
        .trim_start_matches("sql parser error: ")
        .to_string();
    let number_after = |key: &str| -> Option<u64> {
        let at = message.rfind(key)? + key.len();
        let digits: String = message[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let line = number_after("Line: ").unwrap_or(0);
    let column = number_after("Column: ").unwrap_or(0);
    let message = match message.rfind(" at Line: ") {
        Some(at) => message[..at].to_string(),
        None => message,
    };
    SqlSyntaxError {
        message,
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_exclude_ctes_and_carry_positions() {
        let sql = "WITH x AS (SELECT * FROM flights)\nSELECT * FROM x JOIN Weather w ON true";
        let refs = references(sql).expect("parses");
        let names: Vec<_> = refs
            .iter()
            .map(|r| (r.name.as_str(), r.line, r.column))
            .collect();
        assert_eq!(names, vec![("flights", 1, 26), ("weather", 2, 22)]);
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let e = references("SELECT *\nFROM flights WHERE").expect_err("incomplete");
        assert_eq!((e.line, e.column), (2, 19), "{e:?}");
        let e = references("DROP TABLE flights").expect_err("not a query");
        assert!(e.message.contains("DROP"), "{e:?}");
    }

    #[test]
    fn origins_map_sql_positions_into_the_file() {
        let text = "[tables.t]\nsql = \"\"\"\nSELECT 1\n  FROM x\"\"\"\n";
        let start = text.find("\"\"\"").expect("has a string");
        let origin = SqlOrigin::of_toml_string("sluice.toml", text, start);
        assert_eq!((origin.line, origin.column), (3, 1));
        assert_eq!(origin.locate(2, 8).to_string(), "sluice.toml:4:8");
        let text = "sql = \"SELECT 1\"";
        let origin = SqlOrigin::of_toml_string("f", text, 6);
        assert_eq!(origin.locate(1, 8).to_string(), "f:1:15");
    }
}
