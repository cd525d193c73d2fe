//! Phase two of loading: raw sections into a [`Project`] — names checked, profile
//! applied, SQL references resolved into the DAG, cycles found — with every error
//! reported together. Each kind of asset compiles in its own function
//! (`sources.rs`, `tables.rs`, `exports.rs`, `steps.rs`, `crate::features`, `crate::models`)
//! and adds itself through one `Builder`; `refs.rs` turns references into inputs.

mod actions;
mod alerts;
mod collections;
mod db_sources;
mod explorers;
mod exports;
mod incremental;
mod network;
mod partitions;
mod policy;
mod push;
mod refs;
mod schedules;
mod sources;
mod steps;
mod tables;
mod targets;
mod time_format;

use std::collections::BTreeMap;
use std::path::PathBuf;

use sluice_core::{AssetKind, AssetName, Location};

use crate::contract::{Contract, compile_contract};
use crate::diag::{Diagnostic, Diagnostics};
use crate::features::FeatureDef;
use crate::models::{ModelDef, PredictionsDef};
use crate::parse::RawProject;
use crate::raw::ContractSection;

pub use actions::ActionDef;
pub use alerts::{AlertDef, Channel, EmailDef};
pub use collections::{CollectionDef, DEFAULT_EMBEDDING, Documents, Embedding, FORMATS};
pub use db_sources::{DatabaseDef, Engine, RangeSplit};
pub use explorers::ExplorerDef;
pub use exports::ExportDef;
pub use incremental::Incremental;
pub use network::{CrawlDef, HttpDef, JsonPath, PathStep};
pub use partitions::Partitioning;
pub use policy::RunPolicy;
pub use push::PushDef;
pub use schedules::{Cadence, DEFAULT_MAX_CATCHUP, ScheduleDef, ScheduleTarget};
pub use sources::{FilesDef, ListFilesError, SourceDef, format_of, list_files};
pub use steps::{StepDef, StepFilesError, StepOutput};
pub use tables::TableDef;
pub(crate) use tables::sql_or_file;
pub use targets::{ExportFormat, ExportTarget, FileTarget, PostgresTarget, RedisTarget};
pub use time_format::{InvalidFormat, TimeFormat};

/// Bumped when the way sluice materializes assets changes, so that every asset's
/// fingerprint changes and the next run rebuilds it.
const MATERIALIZATION_FORMAT: &str = "sluice-materialization-1";

/// A compiled project: the assets, their dependencies and the run settings.
#[derive(Debug, Clone)]
pub struct Project {
    /// `[project] name`.
    pub name: String,
    /// The project folder.
    pub dir: PathBuf,
    /// The project file, as shown in messages.
    pub file: PathBuf,
    /// The profile in force, if any.
    pub profile: Option<String>,
    /// Where versioned tables and metadata live.
    pub warehouse: PathBuf,
    /// How many assets may materialize at once.
    pub concurrency: usize,
    /// `[pools]`: how many assets of each pool may build at once.
    pub pools: BTreeMap<String, usize>,
    /// Every asset by name.
    pub assets: BTreeMap<AssetName, Asset>,
    /// Every asset, each after all of its inputs.
    pub order: Vec<AssetName>,
    /// `[schedules.NAME]` by name (not assets).
    pub schedules: BTreeMap<String, ScheduleDef>,
    /// How often `sluice serve` looks for assets started by their triggers.
    pub trigger_interval: std::time::Duration,
    /// `[alerts.NAME]` by name (not assets).
    pub alerts: BTreeMap<String, AlertDef>,
    /// `[actions.NAME]` by name: the dashboard's buttons (not assets).
    pub actions: BTreeMap<String, ActionDef>,
    /// `[explorers.NAME]` by name: the dashboard's entity pages (not assets).
    pub explorers: BTreeMap<String, ExplorerDef>,
    /// `[project] public_url` without a trailing `/`: where alerts link runs to.
    pub public_url: Option<String>,
}

/// One asset of the project.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Its name.
    pub name: AssetName,
    /// Where it is defined.
    pub location: Location,
    /// What it is.
    pub definition: Definition,
    /// The assets it reads, in the order they first appear.
    pub inputs: Vec<AssetName>,
    /// A hash of the definition: a change means the asset must be rebuilt.
    pub fingerprint: String,
    /// What its rows must be (empty when it has no contract).
    pub contract: Contract,
    /// Free text for people.
    pub description: Option<String>,
    /// How it is run: retries, their delays, a time limit, a pool.
    pub policy: RunPolicy,
    /// Its tags (`tags = [...]`), sorted: what `tag:NAME` in a schedule's or
    /// an alert's `assets` selects it by. Not part of the fingerprint.
    pub tags: Vec<String>,
    /// Built one time partition at a time (sources and tables that say so).
    pub partitioned: Option<Partitioning>,
    /// A source that reads only the rows past its watermark at each run.
    pub incremental: Option<Incremental>,
}

impl Asset {
    /// The kind of the asset.
    pub fn kind(&self) -> AssetKind {
        match self.definition {
            Definition::Source(_) => AssetKind::Source,
            Definition::Table(_) => AssetKind::Table,
            Definition::Features(_) => AssetKind::Features,
            Definition::Export(_) => AssetKind::Export,
            Definition::Model(_) => AssetKind::Model,
            Definition::Predictions(_) => AssetKind::Predictions,
            Definition::Step(_) => AssetKind::Step,
            Definition::Collection(_) => AssetKind::Collection,
        }
    }

    /// Whether the asset is stored as a table (its rows can be read): every
    /// kind but exports, models and steps without an `output`.
    pub fn is_table(&self) -> bool {
        match &self.definition {
            Definition::Export(_) | Definition::Model(_) => false,
            Definition::Step(def) => def.output.is_some(),
            _ => true,
        }
    }
}

/// What an asset is made from.
#[derive(Debug, Clone)]
pub enum Definition {
    /// Files read from outside.
    Source(Box<SourceDef>),
    /// A SQL query over other assets.
    Table(TableDef),
    /// A feature view.
    Features(Box<FeatureDef>),
    /// Rows written to a file.
    Export(Box<ExportDef>),
    /// A model, trained or imported.
    Model(Box<ModelDef>),
    /// A model's batch predictions.
    Predictions(Box<PredictionsDef>),
    /// A command run over its inputs' rows.
    Step(Box<StepDef>),
    /// Documents chunked for search.
    Collection(Box<CollectionDef>),
}

/// The assets compiled so far and the problems found, shared by the per-kind
/// compile functions.
pub(crate) struct Builder<'r> {
    /// The file being compiled.
    pub raw: &'r RawProject,
    /// Every problem found so far.
    pub diags: Diagnostics,
    /// Every asset compiled so far.
    pub assets: BTreeMap<AssetName, Asset>,
    /// Names taken, with the kind that took them.
    pub(super) seen: BTreeMap<String, AssetKind>,
}

impl<'r> Builder<'r> {
    fn new(raw: &'r RawProject) -> Self {
        Self {
            raw,
            diags: raw.diagnostics.clone(),
            assets: BTreeMap::new(),
            seen: BTreeMap::new(),
        }
    }

    /// Claims `name` for an asset of `kind`: one namespace for every kind.
    pub fn claim(&mut self, name: &str, kind: AssetKind, at: &Location) -> Option<AssetName> {
        if let Some(other) = self.seen.get(name) {
            self.diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("`{name}` is defined both as a {other} and as a {kind}"),
                )
                .with_help("asset names are shared by all kinds; rename one of them"),
            );
            return None;
        }
        self.seen.insert(name.to_string(), kind);
        match AssetName::new(name) {
            Ok(n) => Some(n),
            Err(e) => {
                self.diags.push(Diagnostic::new(at.clone(), e.to_string()));
                None
            }
        }
    }

    /// Compiles a `contract` section (none: the empty contract).
    pub fn contract(&mut self, section: Option<&ContractSection>) -> Contract {
        section
            .map(|c| compile_contract(self.raw, c, &mut self.diags))
            .unwrap_or_default()
    }

    /// Adds an asset; its inputs are resolved once every asset is known.
    pub fn add(
        &mut self,
        name: AssetName,
        location: Location,
        definition: Definition,
        fingerprint: String,
    ) -> &mut Asset {
        self.assets.entry(name.clone()).or_insert(Asset {
            name,
            location,
            definition,
            inputs: vec![],
            fingerprint,
            contract: Contract::default(),
            description: None,
            policy: RunPolicy::default(),
            tags: Vec::new(),
            partitioned: None,
            incremental: None,
        })
    }
}

/// The run settings, from `[project]` with the profile in force applied.
struct Settings {
    warehouse: PathBuf,
    concurrency: usize,
    trigger_interval: std::time::Duration,
    public_url: Option<String>,
}

/// Compiles raw sections into a project; the profile was applied when the
/// file was read.
pub fn compile(raw: &RawProject) -> Result<Project, Diagnostics> {
    let mut b = Builder::new(raw);
    let settings = settings(raw, &mut b.diags);
    for (name, entry) in &raw.sources {
        sources::compile(&mut b, name, entry);
    }
    for (name, entry) in &raw.tables {
        tables::compile(&mut b, name, entry);
    }
    for (name, entry) in &raw.features {
        crate::features::add(&mut b, name, entry);
    }
    for (name, entry) in &raw.exports {
        exports::compile(&mut b, name, entry);
    }
    for (name, entry) in &raw.models {
        crate::models::add(&mut b, name, entry);
    }
    for (name, entry) in &raw.steps {
        steps::compile(&mut b, name, entry);
    }
    for (name, entry) in &raw.collections {
        collections::compile(&mut b, name, entry);
    }
    incremental::apply(&mut b);
    let pools = policy::apply(&mut b);
    refs::resolve(&mut b);
    let schedules = schedules::compile(&mut b);
    let alerts = alerts::compile(&mut b);
    let actions = actions::compile(&mut b);
    let explorers = explorers::compile(&mut b);

    let order = match crate::dag::topological_order(&b.assets) {
        Ok(order) => order,
        Err(cycle) => {
            let path: Vec<_> = cycle.iter().map(AssetName::as_str).collect();
            let at = b.assets[&cycle[0]].location.clone();
            b.diags.push(
                Diagnostic::new(
                    at,
                    format!("the assets form a cycle: {}", path.join(" -> ")),
                )
                .with_help(
                    "an asset cannot read itself, directly or through others; break the cycle",
                ),
            );
            vec![]
        }
    };

    let Builder { diags, assets, .. } = b;
    diags.into_result(Project {
        name: raw.project.name.clone(),
        dir: raw.dir.clone(),
        file: raw.file.clone(),
        profile: raw.profile.clone(),
        warehouse: settings.warehouse,
        concurrency: settings.concurrency,
        pools,
        assets,
        order,
        schedules,
        trigger_interval: settings.trigger_interval,
        alerts,
        actions,
        explorers,
        public_url: settings.public_url,
    })
}

/// How often `sluice serve` looks for assets started by their triggers, unless
/// `[project] trigger_interval` says otherwise.
pub const DEFAULT_TRIGGER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the warehouse is, how many assets may build at once, how often
/// triggers are looked at.
fn settings(raw: &RawProject, diags: &mut Diagnostics) -> Settings {
    let warehouse = match &raw.project.warehouse {
        Some(w) => match sluice_core::expand_env(w.get_ref()) {
            Ok(s) => raw.dir.join(s),
            Err(e) => {
                diags.push(
                    Diagnostic::new(raw.location(w.span().start), e.to_string())
                        .with_help(format!("set `{}` before running sluice", e.0)),
                );
                raw.dir.join(".sluice")
            }
        },
        None => raw.dir.join(".sluice"),
    };
    let concurrency = raw
        .project
        .concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let trigger_interval = match &raw.project.trigger_interval {
        Some(d) if d.get_ref().value.is_zero() => {
            diags.push(
                Diagnostic::new(
                    raw.location(d.span().start),
                    "a `trigger_interval` of zero would look for changes without pause",
                )
                .with_help("give a duration such as `trigger_interval = \"30s\"`"),
            );
            DEFAULT_TRIGGER_INTERVAL
        }
        Some(d) => d.get_ref().value,
        None => DEFAULT_TRIGGER_INTERVAL,
    };
    let public_url = raw.project.public_url.as_ref().and_then(|u| {
        let text = u.get_ref().trim().trim_end_matches('/');
        if text.starts_with("https://") || text.starts_with("http://") {
            Some(text.to_string())
        } else {
            diags.push(
                Diagnostic::new(
                    raw.location(u.span().start),
                    format!("`public_url = \"{text}\"` is not an http(s) URL"),
                )
                .with_help("write where people reach `sluice serve`, like `public_url = \"https://sluice.example.com\"`"),
            );
            None
        }
    });
    Settings {
        warehouse,
        concurrency,
        trigger_interval,
        public_url,
    }
}

/// A stable hash of the parts, as hex.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(MATERIALIZATION_FORMAT.as_bytes());
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().to_hex()[..32].to_string()
}
