//! Redis exports: one key per row, written so that a refresh becomes visible all
//! at once. Every key of a refresh is written (pipelined) under a new version
//! prefix, `{prefix}v{run}-{millis}:`; then one `SET` points `{prefix}current`
//! at that prefix; then the previous version's keys are given a grace period
//! ([`GRACE`]) to expire in, so a reader that read the pointer just before the
//! switch still finds them. Apps read `GET {prefix}current`, then the row's
//! key under the prefix it returns. Versions a crash left half-written are
//! listed in `{prefix}versions` and deleted by the next refresh.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::prelude::DataFrame;
use futures::StreamExt;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use sluice_core::ErrorClass;
use sluice_project::{RedisFormat, RedisTarget};

use crate::outcome::Failure;

/// How long the previous version's keys live after the pointer moved on.
pub(crate) const GRACE: Duration = Duration::from_secs(60);
/// Rows per pipeline.
const PIPELINE_ROWS: usize = 1000;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one command (or pipeline) may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `status` waits to learn whether the pointer is still there.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The pointer key apps read first.
pub(crate) fn pointer(t: &RedisTarget) -> String {
    format!("{}current", t.prefix)
}

/// The set of version prefixes written and not yet cleaned up.
fn registry(t: &RedisTarget) -> String {
    format!("{}versions", t.prefix)
}

/// Where the URL points, for messages: `Redis at host:port/db`, no password.
fn describe(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.host_str() {
            Some(h) => format!(
                "Redis at {h}:{}{}",
                u.port().unwrap_or(6379),
                match u.path() {
                    "" | "/" => "/0",
                    p => p,
                }
            ),
            None => format!("Redis at {}", u.path()),
        },
        Err(_) => "Redis".to_string(),
    }
}

/// Connection failures, timeouts and a server that asks to wait (loading,
/// busy) are transient; the rest (authentication, a wrong type) permanent.
fn class(e: &redis::RedisError) -> ErrorClass {
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || matches!(e.kind(), redis::ErrorKind::Server(_))
            && matches!(e.retry_method(), redis::RetryMethod::WaitAndRetry);
    if transient {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

/// An open connection and what to say about it.
struct Conn {
    con: MultiplexedConnection,
    at: String,
    url: String,
}

impl Conn {
    async fn open(t: &RedisTarget) -> Result<Conn, Failure> {
        let url = t.url.expose().map_err(|e| {
            Failure::from(format!(
                "cannot export to Redis: {e}\n  help: set it where sluice runs (the export's `url` is `{}`)",
                t.url
            ))
        })?;
        let at = describe(&url);
        let client = redis::Client::open(url.as_str()).map_err(|e| {
            Failure::from(format!(
                "cannot export to Redis: the URL `{}` is not valid: {}\n  help: write it as `redis://:${{PASSWORD}}@HOST:6379/0`",
                t.url,
                super::scrub(e.to_string(), &url)
            ))
        })?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut conn = Conn {
            con: match client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    return Err(failure("connect to", &at, &e, &url));
                }
            },
            at,
            url,
        };
        // A connection may open lazily: the first command proves it.
        redis::cmd("PING")
            .query_async::<()>(&mut conn.con)
            .await
            .map_err(|e| conn.fail("connect to", &e))?;
        Ok(conn)
    }

    fn fail(&self, doing: &str, e: &redis::RedisError) -> Failure {
        failure(doing, &self.at, e, &self.url)
    }
}

fn failure(doing: &str, at: &str, e: &redis::RedisError, url: &str) -> Failure {
    let class = class(e);
    let mut message = format!("cannot {doing} {at}: {e}");
    if class.is_transient() {
        message.push_str(
            "\n  help: the server could not be reached or was busy; the run may retry it (`retry`)",
        );
    }
    Failure {
        message: super::scrub(message, url),
        class,
    }
}

/// A JSON value as a Redis string: text as it is, the rest as JSON.
fn text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Writes every row under a new version, switches the pointer to it and lets
/// the previous version expire; the rows written and the version written.
pub(super) async fn write(
    df: DataFrame,
    t: &RedisTarget,
    key: &[String],
    run_id: i64,
) -> Result<(u64, String), Failure> {
    let mut conn = Conn::open(t).await?;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let version = format!("{}v{run_id}-{millis}:", t.prefix);
    let ttl = t.ttl.map(|d| d.as_secs().max(1));
    let previous: Option<String> = redis::cmd("GET")
        .arg(pointer(t))
        .query_async(&mut conn.con)
        .await
        .map_err(|e| conn.fail("read the pointer of", &e))?;
    redis::cmd("SADD")
        .arg(registry(t))
        .arg(&version)
        .query_async::<()>(&mut conn.con)
        .await
        .map_err(|e| conn.fail("write to", &e))?;

    let rows = match write_rows(&mut conn, df, t, key, &version).await {
        Ok(rows) => rows,
        Err(f) => {
            // Nothing points at the half-written version: delete it now (or,
            // failing that, the next refresh does, from the registry).
            let _ = delete_version(&mut conn.con, t, &version).await;
            return Err(f);
        }
    };
    // The switch: readers see the new version from here on.
    let mut switch = redis::pipe();
    let set = switch.cmd("SET").arg(pointer(t)).arg(&version);
    if let Some(ttl) = ttl {
        set.arg("EX").arg(ttl);
    }
    set.ignore();
    if let Some(ttl) = ttl {
        switch.cmd("EXPIRE").arg(registry(t)).arg(ttl).ignore();
    }
    switch
        .query_async::<()>(&mut conn.con)
        .await
        .map_err(|e| conn.fail("switch the pointer of", &e))?;
    // The rows are published; what is left is housekeeping.
    if let Err(e) = clean_up(&mut conn.con, t, &version, previous.as_deref(), ttl).await {
        tracing::warn!(
            "{}: the keys of earlier versions of `{}` were not all cleaned up: {}",
            conn.at,
            pointer(t),
            super::scrub(e.to_string(), &conn.url)
        );
    }
    Ok((rows, format!("{} keys {version}*", conn.at)))
}

/// Writes every row under `version`, pipelined; the rows read.
async fn write_rows(
    conn: &mut Conn,
    df: DataFrame,
    t: &RedisTarget,
    key: &[String],
    version: &str,
) -> Result<u64, Failure> {
    let ttl = t.ttl.map(|d| d.as_secs().max(1));
    let mut stream = df.execute_stream().await.map_err(|e| Failure::of(&e))?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut rows = 0u64;
    let mut pipe = redis::pipe();
    let mut queued = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| Failure::of(&e))?;
        for mut row in
            super::json_rows(std::slice::from_ref(&batch)).map_err(|e| Failure::of(&e))?
        {
            rows += 1;
            let mut id = Vec::with_capacity(key.len());
            for k in key {
                match row.remove(k) {
                    Some(Value::Null) | None => {
                        return Err(Failure::from(format!(
                            "cannot export to {}: row {rows} has no value in the key column `{k}`\n  help: filter out rows without a key (`WHERE \"{k}\" IS NOT NULL`)",
                            conn.at
                        )));
                    }
                    Some(v) => id.push(text(v)),
                }
            }
            let id = id.join(":");
            let name = format!("{version}{id}{}", t.suffix);
            if !seen.insert(id) {
                return Err(Failure::from(format!(
                    "cannot export to {}: row {rows} repeats the key `{}`\n  help: a Redis export needs one row per key; aggregate the rows, or export a feature view (its newest row per entity)",
                    conn.at,
                    key.join(", ")
                )));
            }
            match t.format {
                RedisFormat::Json => {
                    let json = Value::Object(row).to_string();
                    let cmd = pipe.cmd("SET").arg(&name).arg(json);
                    if let Some(ttl) = ttl {
                        cmd.arg("EX").arg(ttl);
                    }
                    cmd.ignore();
                }
                RedisFormat::Hash => {
                    let fields: Vec<(String, String)> = row
                        .into_iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| (k, text(v)))
                        .collect();
                    // Redis has no empty hash: a row whose values are all null has no key.
                    if fields.is_empty() {
                        continue;
                    }
                    pipe.cmd("HSET").arg(&name).arg(fields).ignore();
                    if let Some(ttl) = ttl {
                        pipe.cmd("EXPIRE").arg(&name).arg(ttl).ignore();
                    }
                }
            }
            queued += 1;
            if queued >= PIPELINE_ROWS {
                pipe.query_async::<()>(&mut conn.con)
                    .await
                    .map_err(|e| conn.fail("write to", &e))?;
                pipe = redis::pipe();
                queued = 0;
            }
        }
    }
    if queued > 0 {
        pipe.query_async::<()>(&mut conn.con)
            .await
            .map_err(|e| conn.fail("write to", &e))?;
    }
    Ok(rows)
}

/// Lets the previous version expire after [`GRACE`] and deletes the versions
/// a crash left behind.
async fn clean_up(
    con: &mut MultiplexedConnection,
    t: &RedisTarget,
    version: &str,
    previous: Option<&str>,
    ttl: Option<u64>,
) -> redis::RedisResult<()> {
    let versions: Vec<String> = redis::cmd("SMEMBERS")
        .arg(registry(t))
        .query_async(con)
        .await?;
    for old in versions.iter().filter(|v| v.as_str() != version) {
        let keep_for = (Some(old.as_str()) == previous).then_some(GRACE.as_secs());
        // Keys that expire before the grace period ends are left to expire.
        match keep_for {
            // Keys that expire before the grace period ends are left to expire.
            Some(_) if ttl.is_some_and(|ttl| ttl <= GRACE.as_secs()) => {}
            Some(secs) => {
                for_each_key(con, old, |pipe, k| {
                    pipe.cmd("EXPIRE").arg(k).arg(secs).ignore();
                })
                .await?
            }
            None => {
                for_each_key(con, old, |pipe, k| {
                    pipe.cmd("UNLINK").arg(k).ignore();
                })
                .await?
            }
        }
        redis::cmd("SREM")
            .arg(registry(t))
            .arg(old)
            .query_async::<()>(con)
            .await?;
    }
    Ok(())
}

/// Deletes a version's keys and forgets it.
async fn delete_version(
    con: &mut MultiplexedConnection,
    t: &RedisTarget,
    version: &str,
) -> redis::RedisResult<()> {
    for_each_key(con, version, |pipe, k| {
        pipe.cmd("UNLINK").arg(k).ignore();
    })
    .await?;
    redis::cmd("SREM")
        .arg(registry(t))
        .arg(version)
        .query_async::<()>(con)
        .await
}

/// Sends `command` for every key under `version` (found by `SCAN`), a page of
/// keys per pipeline.
async fn for_each_key(
    con: &mut MultiplexedConnection,
    version: &str,
    command: impl Fn(&mut redis::Pipeline, &str),
) -> redis::RedisResult<()> {
    let pattern = format!("{}*", glob_escape(version));
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .cursor_arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await?;
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for k in &keys {
                command(&mut pipe, k);
            }
            pipe.query_async::<()>(con).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// `s` with the characters `SCAN MATCH` reads as a pattern escaped.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Why the export's keys are gone (the pointer deleted, or expired with its
/// `ttl`), asked of the server; `None` when the pointer is there or the server
/// cannot be asked (the run's write would say why).
pub(super) async fn gone(t: &RedisTarget) -> Option<String> {
    let probe = async {
        let mut conn = Conn::open(t).await.ok()?;
        let exists: bool = redis::cmd("EXISTS")
            .arg(pointer(t))
            .query_async(&mut conn.con)
            .await
            .ok()?;
        Some((exists, conn.at))
    };
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Some((false, at))) => Some(format!(
            "the pointer `{}` is missing at {at} (deleted, or expired with the keys' `ttl`)",
            pointer(t)
        )),
        Ok(Some((true, _))) => None,
        _ => {
            tracing::debug!("could not learn whether `{}` is there", pointer(t));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_places_are_written_safely() {
        assert_eq!(glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:");
        assert_eq!(
            describe("redis://:pw@10.1.2.3:6380/2"),
            "Redis at 10.1.2.3:6380/2"
        );
        assert_eq!(describe("redis://127.0.0.1"), "Redis at 127.0.0.1:6379/0");
        assert_eq!(text(Value::String("a".into())), "a");
        assert_eq!(text(serde_json::json!(1.5)), "1.5");
        assert_eq!(text(serde_json::json!([1, 2])), "[1,2]");
    }
}
