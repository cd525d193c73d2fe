//! The command line: every command, argument and environment variable, as
//! clap reads them (and `--help` prints them).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// sluice: from raw data to versioned tables, features, models and an API.
///
/// A project is a folder with a `sluice.toml` that names its sources (CSV,
/// JSON, Parquet files), SQL tables, feature views, models and exports. `sluice
/// run` builds what is stale as versioned Delta Lake tables, checked by their
/// contracts; `sluice serve` answers features and predictions over HTTP. Start
/// with `sluice init DIR`, then `sluice check` and `sluice run` in it.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    propagate_version = true,
    after_long_help = ENVIRONMENT
)]
pub(crate) struct Cli {
    /// The project folder (holding sluice.toml).
    #[arg(long, global = true, env = "SLUICE_PROJECT", default_value = ".")]
    pub(crate) project: PathBuf,
    /// The profile to use (`[profiles.NAME]`).
    #[arg(long, global = true, env = "SLUICE_PROFILE")]
    pub(crate) profile: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The environment variables, for `sluice --help`.
const ENVIRONMENT: &str = "\
Environment:
  SLUICE_PROJECT       the project folder (as --project)
  SLUICE_PROFILE       the profile (as --profile)
  SLUICE_LISTEN        the address of `sluice serve` (as --listen)
  SLUICE_MEMORY_LIMIT  memory the sorts of training sets and model training may
                       use before they spill to disk: `4GB`, `512MB` or bytes
                       (default 2GB)
  SLUICE_LOG           what is logged to standard error, as a tracing filter:
                       `info`, `debug`, `sluice_server=debug` (default `warn`,
                       but not the attempts' lines `run` shows as progress);
                       each run's log keeps INFO and above whatever it says
  SLUICE_LOG_FORMAT    `text` (default) or `json`: one object per line, with
                       the run and asset it is about, for log shippers
  SLUICE_ONNXRUNTIME   the ONNX Runtime shared library, for imported models
  SLUICE_MODELS        where embedding models are (default
                       ~/.cache/sluice/models; scripts/fetch-model.sh fills it)
  SLUICE_NOW           the time sluice takes for now, standing still (RFC 3339
                       or a date): online windows, and exports of views that
                       keep tiles, are read as of it; for tests and for
                       reproducing a past read (default: the system clock)";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a small project that runs as is.
    Init {
        /// Where to create it.
        dir: PathBuf,
    },
    /// Compile the project and plan every query, without running anything.
    Check,
    /// Materialize assets (all by default) and everything upstream that is stale.
    Run {
        /// Assets to refresh.
        assets: Vec<String>,
        /// Print a machine-readable summary on standard output.
        #[arg(long)]
        json: bool,
        /// Read this incremental source whole again, ignoring its watermark,
        /// or empty this push source (it is refreshed, with what is downstream
        /// of it in the request). May be given more than once.
        #[arg(long, value_name = "SOURCE")]
        full_refresh: Vec<String>,
    },
    /// Run read-only SQL over the assets.
    Query {
        /// The query.
        sql: String,
        /// Read every asset as of a version number or a time.
        #[arg(long)]
        as_of: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Show what an asset is: kind, description, inputs, freshness, and the
    /// columns (name, type, nullable) of its newest version as stored.
    Describe {
        /// The asset.
        asset: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the versions of an asset.
    History {
        /// The asset.
        asset: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an asset's quality report (the newest, or a run's): a summary, or the
    /// full report as HTML or JSON with --output.
    Report {
        /// The asset.
        asset: String,
        /// The run (default: the newest run that validated the asset).
        #[arg(long)]
        run: Option<i64>,
        /// Write the report to this file: HTML, or JSON when it ends in `.json`.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Show an asset's check pass rates over a period.
    Quality {
        /// The asset.
        asset: String,
        /// How many days back.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show each asset's latest version, rows, age and whether it is stale.
    Status {
        /// With `--partitions`: the partitioned asset whose partitions to show.
        asset: Option<String>,
        /// Show each partition of ASSET: built, stale, failed or missing.
        #[arg(long, requires = "asset")]
        partitions: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build a range of a partitioned asset's partitions (and what is stale
    /// upstream); partitions already built by the same definition are skipped.
    Backfill {
        /// The partitioned source or table.
        asset: String,
        /// The first partition: its label (`2024-01-05`) or a time inside it.
        #[arg(long)]
        from: String,
        /// The last partition, included.
        #[arg(long)]
        to: String,
        /// How many partitions build at once.
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        /// Print a machine-readable summary on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Read one entity's latest features (or a model's batch prediction) from
    /// the online store.
    Get {
        /// The feature view, or a model's predictions (`MODEL_predictions`).
        view: String,
        /// The entity's key values, in the view's key order.
        #[arg(required = true)]
        key: Vec<String>,
        /// Read the windows as of this time (RFC 3339, or a date: its midnight UTC)
        /// instead of now; a view computed at every event answers within the
        /// history its tiles keep.
        #[arg(long)]
        as_of: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Search a collection: the chunks that best answer a question, with their
    /// document, heading path and score.
    Search {
        /// The collection.
        collection: String,
        /// The question, in words.
        question: String,
        /// How many chunks to return.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// How chunks are ranked: `text` (BM25 over the text and heading
        /// path), `vector` (nearest embeddings) or `hybrid` (both, fused by
        /// relative score). Default: hybrid, or text for a collection
        /// without embeddings.
        #[arg(long)]
        mode: Option<String>,
        /// A SQL predicate over the chunk table's columns that a chunk must
        /// meet: `document_id LIKE 'docs/faq/%'`, `stars >= 4`.
        #[arg(long)]
        filter: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a point-in-time correct training set: the spine's rows with each
    /// view's features as of each row's time (or, with --last, the newest rows of
    /// every entity of a view).
    TrainingSet {
        /// The spine: an asset of the project, or a Parquet or CSV file with the
        /// entity keys, a time per row and the labels.
        #[arg(long)]
        spine: Option<String>,
        /// The spine's time column (default: its only timestamp or date column).
        #[arg(long)]
        timestamp: Option<String>,
        /// Feature views (`VIEW`) or single features (`VIEW:feature`), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        features: Vec<String>,
        /// Overrides the views' ttl (`0s`: unlimited).
        #[arg(long)]
        ttl: Option<String>,
        /// Without a spine: the newest N rows of every entity.
        #[arg(long)]
        last: Option<usize>,
        /// The Parquet file to write. Sorts spill to disk beyond
        /// SLUICE_MEMORY_LIMIT (default 2GB).
        #[arg(long)]
        output: PathBuf,
        /// Print a machine-readable summary.
        #[arg(long)]
        json: bool,
    },
    /// Serve the REST API: features, predictions (batch and online), assets,
    /// read-only SQL, runs, metrics; and run the schedules (`[schedules.NAME]`)
    /// and the assets' triggers (`on = "upstream"`, `freshness`).
    Serve {
        /// The address to listen on. Without API keys only loopback is allowed.
        #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Do not run the schedules and triggers.
        #[arg(long)]
        no_scheduler: bool,
    },
    /// List the schedules (when each fires, its last tick and its next one)
    /// and the assets with triggers (`on`, `freshness`: age and next due).
    Schedules {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the alerts, their open incidents and recent deliveries, or send
    /// a test message (`sluice alerts test NAME`).
    #[command(args_conflicts_with_subcommands = true)]
    Alerts {
        /// What to do with an alert; without one, list them.
        #[command(subcommand)]
        action: Option<AlertsCommand>,
        /// How many recent deliveries.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The raw zone: what a source read over the network (`http`, `crawl`)
    /// fetched, as fetched.
    Raw {
        #[command(subcommand)]
        command: RawCommand,
    },
    /// Write what watches the project from outside, over `sluice serve`'s
    /// /metrics: Prometheus alert rules and a Grafana dashboard.
    Monitoring {
        #[command(subcommand)]
        command: MonitoringCommand,
    },
    /// Manage the API keys of `sluice serve`.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// List the models: the version that serves, the newest, their metrics.
    Models {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a model's versions: metrics, training data, promotion, importance.
    Model {
        /// The model.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a model walk-forward over a past period, per day, week or month,
    /// with a decision simulation: act on each period's top-k scores.
    Backtest {
        /// The model.
        model: String,
        /// Start of the first period: a date or an RFC 3339 time.
        #[arg(long)]
        from: String,
        /// End of the last period (exclusive).
        #[arg(long)]
        to: String,
        /// Length of a period.
        #[arg(long, value_enum, default_value_t = By::Week)]
        by: By,
        /// Score every period with the serving version instead of retraining
        /// on the rows before each period.
        #[arg(long, conflicts_with = "model_version")]
        reuse: bool,
        /// Score every period with this version of the model.
        #[arg(long)]
        model_version: Option<u64>,
        /// How many of each period's best scores to act on.
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        /// A spine column: what acting on a row returns.
        #[arg(long)]
        payoff: Option<String>,
        /// What acting on one row costs.
        #[arg(long, default_value_t = 0.0)]
        stake: f64,
        /// A spine column naming each row's event (a race, a match): act on the
        /// top k of each event instead of each period.
        #[arg(long)]
        group_by: Option<String>,
        /// A spine column naming each row, shown in the picks (`--json`).
        #[arg(long)]
        id: Option<String>,
        /// Print JSON (every period's picks included).
        #[arg(long)]
        json: bool,
    },
    /// List recent runs, show one with its log (`sluice runs show ID`), or
    /// cancel one (`sluice runs cancel ID`).
    #[command(args_conflicts_with_subcommands = true)]
    Runs {
        /// What to do with a run; without one, list them.
        #[command(subcommand)]
        action: Option<RunsCommand>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON (with each run's assets).
        #[arg(long)]
        json: bool,
    },
}

/// `sluice alerts ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AlertsCommand {
    /// Send a test message on every channel of the alert and say how each went.
    Test {
        /// The alert (`[alerts.NAME]`).
        name: String,
    },
}

/// `sluice raw ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RawCommand {
    /// List a source's stored payloads, newest run first: URL, status, fetch
    /// time, ETag, size, content hash and file.
    Ls {
        /// The source.
        source: String,
        /// Only this run's fetch.
        #[arg(long)]
        run: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sluice runs ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RunsCommand {
    /// One run: its assets' attempts, then the log lines it kept (each
    /// attempt's INFO and above, a step's stdout and stderr).
    Show {
        /// The run's number, as `sluice runs` lists it.
        id: String,
        /// Only this asset's attempts and lines.
        #[arg(long)]
        asset: Option<String>,
        /// Print JSON (attempts and lines).
        #[arg(long)]
        json: bool,
    },
    /// Ask a queued or running run to stop, whichever process runs it: what its
    /// assets were writing is not published, and the run ends `cancelled`.
    Cancel {
        /// The run's number, as `sluice runs` lists it.
        id: String,
    },
}

/// `sluice keys ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Make a key and print it once (only its hash is stored).
    Create {
        /// reader (features, predictions, assets, metrics), operator (also rows,
        /// SQL, runs) or admin (also keys).
        #[arg(long)]
        role: sluice_store::Role,
        /// A name for people (default: the role).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the keys, without their secrets.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke the keys with this id or name.
    Revoke {
        /// The key's id (as listed) or name.
        key: String,
    },
}

/// `sluice monitoring` commands.
#[derive(Debug, Subcommand)]
pub(crate) enum MonitoringCommand {
    /// Prometheus alert rules for the project, with its own thresholds: a run
    /// failed, a check scores below its threshold, a column drifted past its
    /// `psi_max`/`ks_max`, an asset is older than its `freshness.max_age`, the
    /// scheduler stalled, vector search is slow.
    Rules {
        /// Write to this file (`alerts.yml`) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// A Grafana dashboard (JSON, for Grafana's import): runs and failures,
    /// durations, rows by stage, quality, drift, asset ages, schedules, HTTP
    /// latency by route.
    Grafana {
        /// Write to this file (`dashboard.json`) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Backtest periods.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum By {
    /// One day.
    Day,
    /// Seven days.
    Week,
    /// A calendar month.
    Month,
}

/// Output formats of `sluice query`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
}
