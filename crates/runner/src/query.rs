//! `sluice query`: read-only SQL over the assets' stored versions, latest or as of
//! a version or a time.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::context::SQLOptions;
use sluice_store::AsOf;

use crate::{Error, Result, Workspace};

/// Reads `--as-of`: a version number, or a time (RFC 3339, `YYYY-MM-DD HH:MM:SS`
/// or `YYYY-MM-DD`, in UTC when no offset is given).
pub fn parse_as_of(s: &str) -> Result<AsOf> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u64>() {
        return Ok(AsOf::Version(v));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(AsOf::Time(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(AsOf::Time(t.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(AsOf::Time(
            d.and_hms_opt(23, 59, 59).unwrap_or_default().and_utc(),
        ));
    }
    Err(Error::AsOf(s.to_string()))
}

/// Runs one read-only query. Only the assets the query names are opened.
pub async fn query(ws: &Workspace, sql: &str, as_of: AsOf) -> Result<Vec<RecordBatch>> {
    query_frame(ws, sql, as_of, sluice_transform::session())
        .await?
        .collect()
        .await
        .map_err(|e| Error::engine("query", e))
}

/// Plans one read-only query in `ctx` without running it, so that a caller can
/// stream its result and stop early. DDL, DML (`COPY` included) and other
/// statements are refused; only the assets of the project are tables, so no
/// file or URL can be read.
pub async fn query_frame(
    ws: &Workspace,
    sql: &str,
    as_of: AsOf,
    ctx: datafusion::prelude::SessionContext,
) -> Result<datafusion::prelude::DataFrame> {
    let refs = sluice_project::sql::references(sql).map_err(|e| Error::QuerySyntax {
        message: e.message,
        line: e.line,
        column: e.column,
    })?;
    let mut unknown = Vec::new();
    let tables = ws.tables();
    for r in refs {
        if !tables.contains(&r.name) {
            unknown.push(r.name);
            continue;
        }
        let provider = ws.table_provider(&r.name, as_of, &ctx.state()).await?;
        ctx.register_table(r.name.as_str(), provider)
            .map_err(|e| Error::engine("query", e))?;
    }
    if !unknown.is_empty() {
        return Err(Error::unknown_assets(&ws.project, unknown));
    }
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options)
        .await
        .map_err(|e| Error::engine("query", e))
}
