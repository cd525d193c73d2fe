//! `sluice training-set`: a spine joined point-in-time with feature views, or the
//! last rows of each entity of a view, written to a Parquet file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};
use futures::StreamExt;
use serde::Serialize;
use sluice_project::features::quote;
use sluice_project::{Definition, FeatureDef};
use sluice_store::AsOf;
use sluice_transform::ViewInput;

use crate::{Error, Result, Workspace};

/// What `sluice training-set` was asked for.
#[derive(Debug, Clone)]
pub struct TrainingRequest {
    /// The spine: an asset of the project, or a Parquet or CSV file.
    pub spine: Option<String>,
    /// The spine's time column (default: its only timestamp or date column).
    pub time: Option<String>,
    /// `VIEW` (every feature) or `VIEW:feature`, in output order.
    pub features: Vec<String>,
    /// Overrides every view's ttl (`Some(None)`: unlimited).
    pub ttl: Option<Option<Duration>>,
    /// Without a spine: the last N rows of every entity of the view.
    pub last: Option<usize>,
    /// The Parquet file to write.
    pub output: PathBuf,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingSummary {
    /// The file.
    pub output: String,
    /// Rows written (the spine's row count when there is a spine).
    pub rows: u64,
    /// The columns, in order.
    pub columns: Vec<String>,
    /// The feature views used, with the version read.
    pub views: Vec<(String, u64)>,
    /// Wall-clock time.
    pub duration_ms: u64,
}

/// How much memory the sorts of a training set may use before they spill to disk,
/// unless `SLUICE_MEMORY_LIMIT` says otherwise (`4GB`, `512MB`, or bytes).
pub const TRAINING_MEMORY: usize = 2 << 30;

pub(crate) fn memory_limit() -> Result<usize> {
    let Ok(text) = std::env::var("SLUICE_MEMORY_LIMIT") else {
        return Ok(TRAINING_MEMORY);
    };
    let t = text.trim().to_ascii_uppercase();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KB" | "K" => 1 << 10,
        "MB" | "M" => 1 << 20,
        "GB" | "G" => 1 << 30,
        _ => 0,
    };
    match digits.parse::<usize>() {
        Ok(n) if scale > 0 && n > 0 => Ok(n.saturating_mul(scale)),
        _ => Err(Error::Training(format!(
            "SLUICE_MEMORY_LIMIT=`{text}` is not an amount of memory\n  help: write it like `4GB`, `512MB` or a number of bytes"
        ))),
    }
}

/// Builds the training set (or the last rows per entity) and writes it.
pub async fn training_set(ws: &Workspace, req: &TrainingRequest) -> Result<TrainingSummary> {
    let started = Instant::now();
    let ctx = sluice_transform::session_with_memory_limit(memory_limit()?);
    let (mut views, used) = view_inputs(ws, &ctx, &req.features, None, req.ttl).await?;
    if views.is_empty() {
        return Err(Error::Training(
            "no feature view given\n  help: pass `--features VIEW[,VIEW:feature...]`".into(),
        ));
    }
    let stream = match &req.spine {
        None => {
            let Some(n) = req.last else {
                return Err(Error::Training(
                    "give a spine (`--spine FILE_OR_ASSET`) or `--last N`".into(),
                ));
            };
            if views.len() != 1 {
                return Err(Error::Training(
                    "`--last` reads one feature view at a time".into(),
                ));
            }
            last_rows(&ctx, &views[0], n).await?
        }
        Some(spine) => {
            let (stream, time) = open_spine(ws, spine, req.time.as_deref(), AsOf::Latest).await?;
            let names: Vec<String> = stream
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            name_outputs(&names, &mut views);
            crate::anchored::join_views(ws, &ctx, stream, &time, &views, &used).await?
        }
    };
    let schema = stream.schema();
    let rows = write_parquet(stream, &req.output).await?;
    Ok(TrainingSummary {
        output: req.output.display().to_string(),
        rows,
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        views: used,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// The feature views `features` names (`VIEW` or `VIEW:feature`), read at the
/// versions in `versions` (their latest when absent), with the version read.
pub(crate) async fn view_inputs(
    ws: &Workspace,
    ctx: &SessionContext,
    features: &[String],
    versions: Option<&BTreeMap<String, u64>>,
    ttl: Option<Option<Duration>>,
) -> Result<(Vec<ViewInput>, Vec<(String, u64)>)> {
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    for item in features {
        let (view, feature) = match item.split_once(':') {
            Some((v, f)) => (v.trim().to_string(), Some(f.trim().to_string())),
            None => (item.trim().to_string(), None),
        };
        if view.is_empty() {
            continue;
        }
        match wanted.iter_mut().find(|(v, _)| *v == view) {
            Some((_, fs)) => fs.extend(feature),
            None => wanted.push((view, feature.into_iter().collect())),
        }
    }
    let mut views = Vec::new();
    let mut used = Vec::new();
    for (view, picked) in &wanted {
        let def = feature_def(ws, view)?;
        let version = match versions.and_then(|v| v.get(view)) {
            Some(v) => *v,
            None => {
                ws.store
                    .latest(view)
                    .await?
                    .ok_or_else(|| sluice_store::Error::NotMaterialized {
                        asset: view.clone(),
                    })?
                    .version
            }
        };
        let provider = ws
            .store
            .provider(view, AsOf::Version(version), &ctx.state())
            .await?;
        let rows = ctx
            .read_table(provider)
            .map_err(|e| Error::engine("training set", e))?;
        let all: Vec<String> = rows
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|f| !def.key_columns().contains(f))
            .collect();
        let features = if picked.is_empty() {
            all
        } else {
            for f in picked {
                if !all.contains(f) {
                    return Err(Error::Training(format!(
                        "feature view `{view}` has no feature `{f}`\n  help: its features are: {}",
                        all.join(", ")
                    )));
                }
            }
            picked.clone()
        };
        used.push((view.clone(), version));
        views.push(ViewInput {
            view: view.clone(),
            rows,
            entity: def.entity.clone(),
            timestamp: def.timestamp.clone(),
            created: def.created.clone(),
            ttl: ttl.unwrap_or(def.ttl),
            features: features.into_iter().map(|f| (f.clone(), f)).collect(),
        });
    }
    Ok((views, used))
}

/// The definition of feature view `view`, or an error naming the project's views.
pub(crate) fn feature_def<'a>(ws: &'a Workspace, view: &str) -> Result<&'a FeatureDef> {
    match ws.project.asset(view).map(|a| &a.definition) {
        Some(Definition::Features(def)) => Ok(def),
        Some(_) => Err(Error::Training(format!(
            "`{view}` is not a feature view\n  help: the feature views are: {}",
            feature_views(ws).join(", ")
        ))),
        None => Err(Error::Training(format!(
            "unknown feature view `{view}`\n  help: the feature views are: {}",
            feature_views(ws).join(", ")
        ))),
    }
}

fn feature_views(ws: &Workspace) -> Vec<String> {
    ws.project
        .assets
        .values()
        .filter(|a| matches!(a.definition, Definition::Features(_)))
        .map(|a| a.name.to_string())
        .collect()
}

/// Output names: a feature keeps its name unless the spine or an earlier view has
/// a column of that name; then it is `VIEW__feature`.
pub(crate) fn name_outputs(spine: &[String], views: &mut [ViewInput]) {
    let mut taken: Vec<String> = spine.to_vec();
    for v in views.iter_mut() {
        for (f, out) in v.features.iter_mut() {
            *out = if taken.contains(f) {
                format!("{}__{f}", v.view)
            } else {
                f.clone()
            };
            taken.push(out.clone());
        }
    }
}

/// The spine as one stream in its stored order (an asset at `as_of`), and its
/// time column.
pub(crate) async fn open_spine(
    ws: &Workspace,
    spine: &str,
    time: Option<&str>,
    as_of: AsOf,
) -> Result<(SendableRecordBatchStream, String)> {
    // One partition and no split files: the rows come in the order they are stored.
    let ctx = SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new()
            .with_target_partitions(1)
            .with_repartition_file_scans(false),
    );
    let err = |e: datafusion::error::DataFusionError| Error::engine("training set", e);
    let df = if ws.tables().iter().any(|t| t == spine) {
        let provider = ws.store.provider(spine, as_of, &ctx.state()).await?;
        ctx.read_table(provider).map_err(err)?
    } else {
        let path = Path::new(spine);
        if !path.is_file() {
            return Err(Error::Training(format!(
                "the spine `{spine}` is neither an asset of the project nor a file\n  help: give an asset name or the path of a Parquet or CSV file"
            )));
        }
        let text = path.to_string_lossy().to_string();
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => ctx
                .read_csv(&text, CsvReadOptions::new())
                .await
                .map_err(err)?,
            Some("parquet") => ctx
                .read_parquet(&text, ParquetReadOptions::default())
                .await
                .map_err(err)?,
            _ => {
                return Err(Error::Training(format!(
                    "{spine}: a spine file is `.parquet` or `.csv`"
                )));
            }
        }
    };
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let is_time = |t: &DataType| {
        matches!(
            t,
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
        )
    };
    let time = match time {
        Some(t) => match schema.field_with_name(t) {
            Ok(f) if is_time(f.data_type()) => t.to_string(),
            Ok(f) => {
                return Err(Error::Training(format!(
                    "{spine}: the time column `{t}` is {}, not a timestamp or a date",
                    f.data_type()
                )));
            }
            Err(_) => {
                return Err(Error::Training(format!(
                    "{spine}: no column `{t}`\n  help: its columns are: {}",
                    columns(&schema)
                )));
            }
        },
        None => {
            let times: Vec<&String> = schema
                .fields()
                .iter()
                .filter(|f| is_time(f.data_type()))
                .map(|f| f.name())
                .collect();
            match times.as_slice() {
                [one] => one.to_string(),
                [] => {
                    return Err(Error::Training(format!(
                        "{spine}: no timestamp column\n  help: the spine needs a time per row; its columns are: {}",
                        columns(&schema)
                    )));
                }
                many => {
                    return Err(Error::Training(format!(
                        "{spine}: several time columns ({})\n  help: say which with `--timestamp COLUMN`",
                        many.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    };
    Ok((df.execute_stream().await.map_err(err)?, time))
}

/// A schema's column names, for messages.
pub(crate) fn columns(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last `n` rows of every entity of a view, newest first within an entity.
async fn last_rows(
    ctx: &SessionContext,
    view: &ViewInput,
    n: usize,
) -> Result<SendableRecordBatchStream> {
    let err = |e: datafusion::error::DataFusionError| Error::engine("training set", e);
    ctx.register_table("__view", view.rows.clone().into_view())
        .map_err(err)?;
    let keys: Vec<String> = view.entity.iter().map(|k| quote(k)).collect();
    let mut order = vec![format!("{} DESC", quote(&view.timestamp))];
    order.extend(
        view.created
            .as_deref()
            .map(|c| format!("{} DESC", quote(c))),
    );
    let mut cols = keys.clone();
    cols.push(quote(&view.timestamp));
    cols.extend(view.created.as_deref().map(quote));
    cols.extend(view.features.iter().map(|(f, _)| quote(f)));
    let sql = format!(
        "SELECT {cols} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS __rank FROM __view) WHERE __rank <= {n} ORDER BY {keys}, __rank",
        cols = cols.join(", "),
        keys = keys.join(", "),
        order = order.join(", "),
    );
    ctx.sql(&sql)
        .await
        .map_err(err)?
        .execute_stream()
        .await
        .map_err(err)
}

/// Streams batches into a zstd Parquet file, written beside the target and renamed
/// into place at the end, so a failed or killed run leaves no partial file.
async fn write_parquet(mut stream: SendableRecordBatchStream, output: &Path) -> Result<u64> {
    let io = |e: std::io::Error| Error::Output {
        path: output.to_path_buf(),
        source: Box::new(e),
    };
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = output.with_extension("parquet.partial");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let pq = |e: datafusion::parquet::errors::ParquetError| Error::Output {
        path: output.to_path_buf(),
        source: Box::new(e),
    };
    let mut writer = ArrowWriter::try_new(file, stream.schema(), Some(props)).map_err(pq)?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                drop(writer);
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::engine("training set", e));
            }
        };
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(pq)?;
    }
    writer.close().map_err(pq)?;
    std::fs::rename(&tmp, output).map_err(io)?;
    Ok(rows)
}
