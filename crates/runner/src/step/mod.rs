//! Building a step: its inputs at the run's pinned versions written as Parquet
//! files into a scratch folder the warehouse places, a manifest beside them,
//! the command run (`command.rs`), then the file it wrote committed as the
//! step's next version — through its contract — or, for a step without output,
//! the run recorded. A step whose command fails, or whose output is missing or
//! malformed, publishes nothing.

mod command;

use std::path::{Path, PathBuf};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::LogicalPlanBuilder;
use serde::Serialize;
use sluice_core::AssetStatus;
use sluice_project::{FileFormat, StepDef, StepOutput};
use sluice_store::AsOf;

use command::StepError;

use crate::kinds::{Job, delta};
use crate::outcome::{AssetOutcome, Failure};

impl From<StepError> for Failure {
    fn from(e: StepError) -> Self {
        Failure {
            message: e.to_string(),
            class: e.class(),
        }
    }
}

/// The manifest handed to the command (`SLUICE_MANIFEST`).
#[derive(Debug, Serialize)]
struct Manifest {
    /// The step's name.
    step: String,
    /// The run.
    run_id: i64,
    /// Each input, by name.
    inputs: Vec<InputFile>,
    /// Where the command writes its output (absolute), if it declares one.
    output: Option<PathBuf>,
}

/// One input as the command reads it.
#[derive(Debug, Serialize)]
struct InputFile {
    name: String,
    path: PathBuf,
    version: u64,
    rows: u64,
}

/// Removes the step's scratch folder when dropped (a timeout included).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // The run's folder goes with its last step.
        if let Some(run) = self.0.parent() {
            let _ = std::fs::remove_dir(run);
        }
    }
}

/// Runs the step's command and publishes what it wrote.
pub(crate) async fn build(job: &Job<'_>, def: &StepDef) -> AssetOutcome {
    let name = job.asset.name.as_str();
    let scratch = Scratch(job.ws.warehouse.step_scratch(job.run_id, name));
    let inputs = match write_inputs(job, &scratch.0).await {
        Ok(i) => i,
        Err(e) => {
            return job.failed(Failure {
                message: format!("step `{name}`: cannot hand it its inputs: {e}"),
                ..e
            });
        }
    };
    let output = match &def.output {
        Some(o) => match prepare_output(name, o) {
            Ok(path) => Some(path),
            Err(e) => return job.failed(e),
        },
        None => None,
    };
    let manifest = Manifest {
        step: name.to_string(),
        run_id: job.run_id,
        output: output.clone(),
        inputs,
    };
    let manifest_path = scratch.0.join("manifest.json");
    let written = serde_json::to_vec_pretty(&manifest)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&manifest_path, bytes));
    if let Err(source) = written {
        return job.failed(StepError::Io {
            step: name.to_string(),
            what: "write the manifest",
            path: manifest_path,
            source,
        });
    }
    let mut vars = vec![
        ("SLUICE_STEP".to_string(), name.to_string()),
        ("SLUICE_RUN_ID".to_string(), job.run_id.to_string()),
        (
            "SLUICE_MANIFEST".to_string(),
            manifest_path.display().to_string(),
        ),
    ];
    for input in &manifest.inputs {
        vars.push((
            format!("SLUICE_INPUT_{}", input.name.to_ascii_uppercase()),
            input.path.display().to_string(),
        ));
    }
    if let Some(path) = &output {
        vars.push(("SLUICE_OUTPUT".to_string(), path.display().to_string()));
    }
    let log = job.ws.warehouse.step_log(job.run_id, name);
    let header = format!(
        "--- sluice: step `{name}`, run {}, started {}: {}",
        job.run_id,
        sluice_core::render::instant(chrono::Utc::now()),
        def.command.join(" ")
    );
    let ran = command::run(command::Invocation {
        step: name,
        def,
        vars,
        log: &log,
        header,
    })
    .await;
    let ran = match ran {
        Ok(r) => r,
        Err(e) => return job.failed(e),
    };
    drop(scratch);
    match (&def.output, output) {
        (Some(o), Some(path)) => commit_output(job, o, &path, ran.stderr, log).await,
        _ => match job
            .ws
            .metadata
            .record_step(name, &job.fingerprint, job.run_id)
        {
            Ok(version) => {
                AssetOutcome::new(job.asset, AssetStatus::Built, Some(version), 0, job.started)
            }
            Err(e) => job.failed(crate::Error::from(e)),
        },
    }
}

/// Writes every pinned input as one Parquet file in `dir`.
async fn write_inputs(job: &Job<'_>, dir: &Path) -> Result<Vec<InputFile>, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure {
        message: format!("cannot create {}: {e}", dir.display()),
        class: sluice_core::ErrorClass::of_io(&e),
    })?;
    // A DataFusion session only when there is a table to hand over.
    let mut ctx = None;
    let mut out = Vec::new();
    for (input, version) in job.pins {
        let table = job
            .ws
            .project
            .assets
            .values()
            .any(|a| a.name.as_str() == input && a.is_table());
        if !table {
            // A step without `output`: an input for order only.
            continue;
        }
        let ctx = ctx.get_or_insert_with(sluice_transform::session);
        let provider = job
            .ws
            .store
            .provider(input, AsOf::Version(*version), &ctx.state())
            .await
            .map_err(|e| Failure::runner(&crate::Error::from(e)))?;
        let path =
            std::path::absolute(dir.join(format!("{input}.parquet"))).map_err(|e| Failure {
                message: format!("cannot resolve {}: {e}", dir.display()),
                class: sluice_core::ErrorClass::of_io(&e),
            })?;
        let counts = ctx
            .read_table(provider)
            .map_err(|e| Failure::of(&e))?
            .write_parquet(
                &path.to_string_lossy(),
                DataFrameWriteOptions::new().with_single_file_output(true),
                None,
            )
            .await
            .map_err(|e| Failure::of(&e))?;
        let rows = counts
            .first()
            .filter(|b| b.num_columns() > 0)
            .and_then(|b| b.column(0).as_primitive_opt::<UInt64Type>().cloned())
            .map_or(0, |c| c.iter().flatten().sum());
        out.push(InputFile {
            name: input.clone(),
            path,
            version: *version,
            rows,
        });
    }
    Ok(out)
}

/// The output's absolute path, with yesterday's file removed so that a
/// command that writes nothing is caught, and its folder made.
fn prepare_output(step: &str, output: &StepOutput) -> Result<PathBuf, StepError> {
    let io = |what, path: &Path| {
        let step = step.to_string();
        let path = path.to_path_buf();
        move |source| StepError::Io {
            step,
            what,
            path,
            source,
        }
    };
    let path = std::path::absolute(&output.path).map_err(io("resolve", &output.path))?;
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove the previous output", &path)(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    Ok(path)
}

/// Commits the output file as the step's next version, read by the source
/// readers (errors name the file, line and column) through the contract.
async fn commit_output(
    job: &Job<'_>,
    output: &StepOutput,
    path: &Path,
    stderr: Vec<String>,
    log: PathBuf,
) -> AssetOutcome {
    let step = job.asset.name.to_string();
    let format = match output.format {
        FileFormat::Csv => "CSV with a header line",
        _ => "Parquet",
    };
    if !path.is_file() {
        return job.failed(StepError::MissingOutput {
            step,
            path: path.to_path_buf(),
            stderr,
            log,
        });
    }
    let malformed = |message: String, stderr: Vec<String>, log: PathBuf| StepError::Malformed {
        step: step.clone(),
        message,
        format,
        stderr,
        log,
    };
    let read = output.read.clone();
    let span = tracing::Span::current();
    let opened = tokio::task::spawn_blocking(move || {
        span.in_scope(|| sluice_source::FileSource::open(&read))
    })
    .await;
    let source = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let class = e.class();
            return job.failed(Failure {
                class,
                ..Failure::from(malformed(e.to_string(), stderr, log))
            });
        }
        Err(e) => return job.failed(Failure::task(e)),
    };
    let ctx = sluice_transform::session();
    let plan = source.table_provider().and_then(|p| {
        LogicalPlanBuilder::scan(step.as_str(), provider_as_source(p), None)?.build()
    });
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return job.failed(malformed(crate::error::root_cause(&e), stderr, log)),
    };
    let done = delta::write(job, &ctx, plan).await;
    match done.error.clone() {
        // A bad record met while streaming: the reader's message names it.
        Some(message) if done.status == AssetStatus::Failed => {
            let class = done.class;
            let failure = Failure::from(malformed(message, stderr, log));
            AssetOutcome {
                error: Some(failure.message),
                class: class.or(Some(failure.class)),
                ..done
            }
        }
        _ => done,
    }
}

#[cfg(test)]
mod tests;
