//! Exports: an asset's rows copied on every refresh to where apps read them —
//! a file (`file.rs`), a PostgreSQL table (`postgres.rs`, rows encoded for
//! binary `COPY` in `pg_copy.rs`) or Redis keys (`redis.rs`). Each target
//! becomes visible all at once (a rename, one transaction, one pointer key).
//! None has a commit to carry the fingerprint, so each write is recorded in the
//! metadata (`exports`), which is what staleness reads; whether the target is
//! still there (`gone`) is asked of the target itself.

mod file;
mod pg_copy;
mod postgres;
mod redis;

use datafusion::prelude::DataFrame;
use sluice_core::AssetStatus;
use sluice_project::{ExportDef, ExportTarget};

pub use file::json_rows;
pub(crate) use pg_copy::pg_columns;

use crate::kinds::Job;
use crate::outcome::{AssetOutcome, Failure};
use crate::pins::register_inputs;

/// Writes the export's rows to its target and records the write.
pub(crate) async fn build(job: &Job<'_>, def: &ExportDef) -> AssetOutcome {
    let asset = job.asset;
    let ctx = sluice_transform::session();
    if let Err(e) = register_inputs(job.ws, &ctx, job.pins).await {
        return job.failed(e);
    }
    let plan = match sluice_transform::plan_table(&ctx, asset, &def.query).await {
        Ok(p) => p,
        Err(d) => return job.failed(d.to_string()),
    };
    let mut df = DataFrame::new(ctx.state(), plan);
    if let Some(view) = crate::export_windows::tiled_view(job.ws, def)
        && let Some(version) = job.pins.get(view.name()).copied()
    {
        let now = job.ws.clock.now_micros();
        df = match crate::export_windows::as_of(job.ws, &ctx, df, &view, version, now).await {
            Ok(df) => df,
            Err(e) => return job.failed(e),
        };
    }
    let written = match &def.target {
        ExportTarget::File(f) => file::write(df, f, &def.key)
            .await
            .map(|rows| (rows, f.path.display().to_string()))
            .map_err(|e| Failure {
                message: format!("cannot write {}: {e}", f.path.display()),
                ..e
            }),
        ExportTarget::Postgres(t) => postgres::write(df, t, &def.key, job.run_id).await,
        ExportTarget::Redis(t) => redis::write(df, t, &def.key, job.run_id).await,
    };
    let (rows, target) = match written {
        Ok(w) => w,
        Err(e) => return job.failed(e),
    };
    tracing::info!("`{}`: {rows} rows written to {target}", asset.name);
    match job.ws.metadata.record_export(
        asset.name.as_str(),
        &job.fingerprint,
        job.run_id,
        rows,
        &target,
    ) {
        Ok(version) => {
            AssetOutcome::new(asset, AssetStatus::Built, Some(version), rows, job.started)
        }
        Err(e) => job.failed(crate::Error::from(e)),
    }
}

/// Why the target the export last wrote is gone (a file deleted, a table
/// dropped by hand, a Redis pointer deleted or expired), so that the next run
/// writes it again. A target that cannot be reached is not called gone: the
/// run's write would fail the same way.
pub(crate) async fn gone(def: &ExportDef) -> Option<String> {
    match &def.target {
        ExportTarget::File(f) => {
            (!f.path.exists()).then(|| format!("{} is missing", f.path.display()))
        }
        ExportTarget::Postgres(t) => postgres::gone(t).await,
        ExportTarget::Redis(t) => redis::gone(t).await,
    }
}

/// `message` with every appearance of the URL's password (as written and
/// percent-decoded) replaced by `***`: a driver's error never shows it.
fn scrub(message: String, url: &str) -> String {
    let Some(password) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    else {
        return message;
    };
    let decoded = percent_encoding::percent_decode_str(&password)
        .decode_utf8_lossy()
        .into_owned();
    let mut out = message;
    for p in [password, decoded] {
        if !p.is_empty() {
            out = out.replace(&p, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_survives_scrubbing() {
        let url = "postgres://app:s%40cret@db:5432/sales";
        assert_eq!(
            scrub("auth failed for s@cret and s%40cret".into(), url),
            "auth failed for *** and ***"
        );
        assert_eq!(
            scrub("no password".into(), "redis://db:6379"),
            "no password"
        );
        assert_eq!(scrub("x".into(), "not a url"), "x");
    }
}
