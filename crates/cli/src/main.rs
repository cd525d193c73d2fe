//! The `sluice` binary: parses arguments, loads the project and calls the library.
//! Everything it does is also reachable as a library call; nothing here knows
//! about Delta, SQLite or DataFusion internals beyond printing results.

mod alerts;
mod args;
mod describe;
mod init;
mod models;
mod output;
mod pipe;
mod raw;
mod runs;
mod schedules;
mod search;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use sluice_runner::Workspace;

use crate::args::{By, Cli, Command, Format, KeysCommand, MonitoringCommand};

fn main() -> ExitCode {
    pipe::quiet_on_closed_pipe();
    let cli = Cli::parse();
    if let Err(e) = init_logging() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) if pipe::broken_pipe(&e) => ExitCode::from(pipe::EXIT),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn workspace(cli: &Cli) -> anyhow::Result<Result<Workspace, ExitCode>> {
    match sluice_project::load(&cli.project, cli.profile.as_deref()) {
        Ok(project) => {
            let mut ws = Workspace::open(project)?;
            // A clock that stands at a given time: reads and exports as of then.
            if let Some(now) = std::env::var("SLUICE_NOW").ok().filter(|t| !t.is_empty()) {
                let at = sluice_runner::parse_read_time(&now)
                    .map_err(|e| anyhow::anyhow!("SLUICE_NOW: {e}"))?;
                ws.clock = sluice_core::Clock::at(at);
            }
            Ok(Ok(ws))
        }
        Err(diags) => {
            eprintln!("{diags}");
            Ok(Err(ExitCode::from(2)))
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Init { dir } = &cli.command {
        init::init(dir)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Monitoring { command } = &cli.command {
        // Written from the project file alone: no warehouse is opened.
        let project = match sluice_project::load(&cli.project, cli.profile.as_deref()) {
            Ok(project) => project,
            Err(diags) => {
                eprintln!("{diags}");
                return Ok(ExitCode::from(2));
            }
        };
        let (text, output) = match command {
            MonitoringCommand::Rules { output } => (sluice_server::alert_rules(&project), output),
            MonitoringCommand::Grafana { output } => (
                serde_json::to_string_pretty(&sluice_server::grafana_dashboard(&project))? + "\n",
                output,
            ),
        };
        match output {
            Some(path) => {
                std::fs::write(path, text).with_context(|| {
                    format!(
                        "cannot write {}\n  help: give --output a path in a folder you can write to",
                        path.display()
                    )
                })?;
                println!("wrote {}", path.display());
            }
            None => print!("{text}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ws = match workspace(&cli)? {
        Ok(ws) => ws,
        Err(code) => return Ok(code),
    };
    match cli.command {
        Command::Init { .. } | Command::Monitoring { .. } => unreachable!("handled above"),
        Command::Check => match sluice_runner::check(&ws.project).await {
            Ok(()) => {
                let count = |kind| {
                    ws.project
                        .assets
                        .values()
                        .filter(|a| a.kind() == kind)
                        .count()
                };
                let views = count(sluice_core::AssetKind::Features);
                let exports = count(sluice_core::AssetKind::Export);
                let models = count(sluice_core::AssetKind::Model);
                let predictions = count(sluice_core::AssetKind::Predictions);
                let steps = count(sluice_core::AssetKind::Step);
                let collections = count(sluice_core::AssetKind::Collection);
                let more = |n: usize, one: &str, many: &str| match n {
                    0 => String::new(),
                    1 => format!(", 1 {one}"),
                    n => format!(", {n} {many}"),
                };
                println!(
                    "ok: {} assets ({} sources, {} tables{}{}{}{}{}{}) plan without errors",
                    ws.project.assets.len(),
                    count(sluice_core::AssetKind::Source),
                    count(sluice_core::AssetKind::Table),
                    more(views, "feature view", "feature views"),
                    more(models, "model", "models"),
                    more(predictions, "predictions table", "predictions tables"),
                    more(exports, "export", "exports"),
                    more(steps, "step", "steps"),
                    more(collections, "collection", "collections")
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(diags) => {
                eprintln!("{diags}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Run {
            mut assets,
            json,
            full_refresh,
        } => {
            let mut ws = ws;
            for name in full_refresh {
                let refreshable = |a: &sluice_project::Asset| {
                    a.incremental.is_some()
                        || matches!(&a.definition, sluice_project::Definition::Source(d)
                            if matches!(d.as_ref(), sluice_project::SourceDef::Push(_)))
                };
                let incremental = ws
                    .project
                    .assets
                    .values()
                    .any(|a| a.name.as_str() == name && refreshable(a));
                if !incremental {
                    let known: Vec<&str> = ws
                        .project
                        .assets
                        .values()
                        .filter(|a| refreshable(a))
                        .map(|a| a.name.as_str())
                        .collect();
                    eprintln!(
                        "error: `--full-refresh {name}`: `{name}` is not an incremental or push source\n  help: {}",
                        if known.is_empty() {
                            "no source of this project has `incremental = { ... }` or `push = { ... }`".to_string()
                        } else {
                            format!("the incremental and push sources are: {}", known.join(", "))
                        }
                    );
                    return Ok(ExitCode::from(2));
                }
                if !assets.is_empty() && !assets.contains(&name) {
                    assets.push(name.clone());
                }
                ws.full_refresh.insert(name);
            }
            let ws = Arc::new(ws);
            sluice_runner::alerts::resume(&ws);
            let observer = output::observer(std::io::stderr().is_terminal());
            let summary = match sluice_runner::run(ws.clone(), &assets, observer.clone()).await {
                Ok(s) => s,
                Err(sluice_runner::Error::Project(d)) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            };
            alerts::settle(&ws).await;
            ran(&observer, &summary, json)
        }
        Command::Query {
            sql,
            as_of,
            format,
            output,
        } => {
            let as_of = match as_of {
                Some(s) => sluice_runner::parse_as_of(&s)?,
                None => sluice_store::AsOf::Latest,
            };
            let batches = sluice_runner::query(&ws, &sql, as_of).await?;
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            output::write_batches(&mut out, &batches, format)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Describe { asset, json } => describe::describe(&ws, &asset, json).await,
        Command::History { asset, json } => {
            if sluice_runner::model_def(&ws, &asset).is_ok() {
                // A model's versions are in the registry.
                return models::show(&ws, &asset, json);
            }
            if ws.project.asset(&asset).map(|a| a.kind()) == Some(sluice_core::AssetKind::Export) {
                // A file, not a table: its writes are recorded in the metadata database.
                let writes = ws.metadata.exports(&asset)?;
                if writes.is_empty() {
                    return Err(sluice_store::Error::NotMaterialized { asset }.into());
                }
                output::print_export_history(&writes, json)?;
                return Ok(ExitCode::SUCCESS);
            }
            if !ws.tables().contains(&asset) {
                return Err(sluice_runner::Error::unknown_assets(&ws.project, vec![asset]).into());
            }
            let history = ws.table_history(&asset).await?;
            if history.is_empty() {
                // Every version under the name was written by an asset of another kind.
                return Err(sluice_store::Error::NotMaterialized { asset }.into());
            }
            output::print_history(&history, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { asset, run, output } => {
            if ws.project.asset(&asset).is_none() {
                return Err(sluice_runner::Error::unknown_assets(&ws.project, vec![asset]).into());
            }
            let Some((run_id, json)) = ws.metadata.report(&asset, run)? else {
                let when = run.map_or(String::new(), |r| format!(" in run {r}"));
                anyhow::bail!(
                    "`{asset}` has no quality report{when}\n  help: reports are made when an asset with a contract is built; see `sluice runs`"
                );
            };
            let report: sluice_validate::ValidationReport = serde_json::from_str(&json)
                .with_context(|| {
                    format!("the report of `{asset}` in run {run_id} is unreadable")
                })?;
            match output {
                Some(path) => {
                    let text = if path.extension().is_some_and(|e| e == "json") {
                        json
                    } else {
                        sluice_validate::render_html(&report)
                    };
                    std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => output::print_report(&report),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Quality { asset, days, json } => {
            if ws.project.asset(&asset).is_none() {
                return Err(sluice_runner::Error::unknown_assets(&ws.project, vec![asset]).into());
            }
            let since = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
            let runs = ws.metadata.quality_runs(&asset, since)?;
            let checks = ws.metadata.check_history(&asset, since)?;
            output::print_quality(&asset, days, &runs, &checks, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            asset: Some(asset),
            partitions: true,
            json,
        } => {
            let states = sluice_runner::partition_status(&ws, &asset).await?;
            output::print_partitions(&states, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { asset, json, .. } => {
            if let Some(asset) = asset {
                anyhow::bail!(
                    "`sluice status {asset}` shows one asset's partitions with `--partitions`\n  help: run `sluice status {asset} --partitions`, or `sluice status` for every asset"
                );
            }
            let states = sluice_runner::status(&ws).await?;
            output::print_status(&states, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill {
            asset,
            from,
            to,
            parallel,
            json,
        } => {
            let ws = Arc::new(ws);
            sluice_runner::alerts::resume(&ws);
            let observer = output::observer(std::io::stderr().is_terminal());
            let summary = sluice_runner::backfill(
                ws.clone(),
                &asset,
                (&from, &to),
                parallel,
                observer.clone(),
            )
            .await?;
            alerts::settle(&ws).await;
            ran(&observer, &summary, json)
        }
        Command::Get {
            view,
            key,
            as_of,
            json,
        } => {
            let at = as_of
                .as_deref()
                .map(sluice_runner::parse_read_time)
                .transpose()?;
            let record = sluice_runner::get_features(&ws, &view, &key, at)?;
            output::print_record(&view, &key, &record, json)?;
            Ok(if record.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Search {
            collection,
            question,
            k,
            mode,
            filter,
            json,
        } => {
            search::run(
                &ws,
                &collection,
                &question,
                k,
                mode.as_deref(),
                filter.as_deref(),
                json,
            )
            .await
        }
        Command::TrainingSet {
            spine,
            timestamp,
            features,
            ttl,
            last,
            output,
            json,
        } => {
            let ttl = match ttl {
                Some(t) => {
                    let d = sluice_core::parse_duration(&t)
                        .map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
                    Some((!d.is_zero()).then_some(d))
                }
                None => None,
            };
            let req = sluice_runner::TrainingRequest {
                spine,
                time: timestamp,
                features,
                ttl,
                last,
                output,
            };
            let summary = sluice_runner::training_set(&ws, &req).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "wrote {} rows x {} columns to {} in {:.2} s (views: {})",
                    summary.rows,
                    summary.columns.len(),
                    summary.output,
                    summary.duration_ms as f64 / 1000.0,
                    summary
                        .views
                        .iter()
                        .map(|(v, n)| format!("{v}@{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            no_scheduler,
        } => {
            let ws = Arc::new(ws);
            sluice_runner::alerts::resume(&ws);
            let bound = sluice_server::bind(ws.clone(), listen).await?;
            let local = bound.local;
            if bound.open {
                eprintln!(
                    "sluice serve: listening on http://{local} (loopback only: no API key exists, so requests need none and act as `operator`; `sluice keys create` turns keys on)"
                );
            } else {
                eprintln!("sluice serve: listening on http://{local} (API keys required)");
            }
            let scheduler = schedules::start(ws.clone(), no_scheduler)?;
            bound.serve(shutdown_signal()).await?;
            // A second Ctrl-C stops without waiting for the scheduled runs or
            // their alerts.
            tokio::select! {
                () = async {
                    if let Some(scheduler) = scheduler {
                        scheduler.stop().await;
                    }
                    alerts::settle(&ws).await;
                } => {}
                () = shutdown_signal() => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { command } => {
            match command {
                KeysCommand::Create { role, name } => {
                    let name = name.unwrap_or_else(|| role.to_string());
                    let key = ws.metadata.create_key(role, &name)?;
                    eprintln!(
                        "created {} key `{}` (id {}); it is shown this once, keep it secret:",
                        role, key.info.name, key.info.id
                    );
                    println!("{}", key.secret);
                }
                KeysCommand::List { json } => output::print_keys(&ws.metadata.keys()?, json)?,
                KeysCommand::Revoke { key } => {
                    let revoked = ws.metadata.revoke_key(&key)?;
                    if revoked.is_empty() {
                        anyhow::bail!(
                            "no key in force has the id or name `{key}`\n  help: `sluice keys list` shows them"
                        );
                    }
                    for k in revoked {
                        println!("revoked {} key `{}` (id {})", k.role, k.name, k.id);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { json } => models::list(&ws, json),
        Command::Model { name, json } => models::show(&ws, &name, json),
        Command::Backtest {
            model,
            from,
            to,
            by,
            reuse,
            model_version,
            top_k,
            payoff,
            stake,
            group_by,
            id,
            json,
        } => {
            let req = sluice_runner::BacktestRequest {
                model,
                from: models::parse_when("--from", &from)?,
                to: models::parse_when("--to", &to)?,
                period: match by {
                    By::Day => sluice_runner::Period::Day,
                    By::Week => sluice_runner::Period::Week,
                    By::Month => sluice_runner::Period::Month,
                },
                reuse: match (reuse, model_version) {
                    (_, Some(v)) => Some(Some(v)),
                    (true, None) => Some(None),
                    (false, None) => None,
                },
                top_k,
                payoff,
                stake,
                group_by,
                id,
            };
            models::backtest(&ws, &req, json).await
        }
        Command::Schedules { json } => schedules::list(&ws, json),
        Command::Raw {
            command: args::RawCommand::Ls { source, run, json },
        } => raw::ls(&ws, &source, run, json),
        Command::Alerts {
            action: Some(args::AlertsCommand::Test { name }),
            ..
        } => alerts::test(&ws, &name).await,
        Command::Alerts {
            action: None,
            limit,
            json,
        } => alerts::list(&ws, limit, json),
        Command::Runs {
            action: Some(args::RunsCommand::Cancel { id }),
            ..
        } => {
            let run = sluice_runner::cancel_run(&ws, &id)?;
            println!(
                "asked run {} ({}) to stop; `sluice runs` shows when it has",
                run.id,
                run.state.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs {
            action: Some(args::RunsCommand::Show { id, asset, json }),
            ..
        } => {
            runs::show(&ws, &id, asset.as_deref(), json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs {
            action: None,
            limit,
            json,
        } => {
            let runs = ws.metadata.runs(limit)?;
            runs::print_runs(&ws, &runs, json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Logs to standard error (`SLUICE_LOG` filters, `SLUICE_LOG_FORMAT` is
/// `text` or `json`), and keeps each run's lines in its run log, whatever
/// `SLUICE_LOG` says.
fn init_logging() -> anyhow::Result<()> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // By default warnings, but not the run log's own lines about attempts and
    // runs: `run` prints those as progress already.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            // Delta's merge warns of its own metrics; sluice reports what matters.
            "warn,deltalake_core::operations::merge=error,{}=off",
            sluice_runner::logs::TARGET
        ))
    });
    let format = std::env::var("SLUICE_LOG_FORMAT").unwrap_or_default();
    let stderr = match format.as_str() {
        "" | "text" => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .boxed(),
        // One JSON object per line, with the run and asset of the span it is
        // in: what log shippers (Vector, Fluent Bit, Loki's promtail) read.
        "json" => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        other => anyhow::bail!(
            "SLUICE_LOG_FORMAT is `{}`; it is `text` (the default) or `json`",
            other.escape_debug()
        ),
    };
    tracing_subscriber::registry()
        .with(stderr.with_filter(filter))
        .with(sluice_runner::logs::layer())
        .try_init()?;
    Ok(())
}

use std::io::Write as _;

/// Resolves on Ctrl-C or SIGTERM, so that `serve` finishes its requests and exits.
/// A run (or backfill) ended: its summary printed, its exit code (1 when an
/// asset failed).
fn ran(
    observer: &output::Progress,
    summary: &sluice_runner::RunSummary,
    json: bool,
) -> anyhow::Result<ExitCode> {
    observer.clear();
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        output::print_summary(summary);
    }
    Ok(if summary.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
