//! Phase two of loading: raw sections into a [`Project`] — names checked, profile
//! applied, SQL references resolved into the DAG, cycles found — with every error
//! reported together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sluice_core::{AssetKind, AssetName, Location};

use crate::contract::{Contract, compile_contract};
use crate::diag::{Diagnostic, Diagnostics};
use crate::features::{FeatureBody, FeatureDef, compile_features};
use crate::models::{Learner, ModelDef, PredictionsDef, compile_model};
use crate::parse::RawProject;
use crate::raw::{ExportSection, FileFormat, SourceSection};
use crate::sql::{SqlOrigin, references};

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
    /// Every asset by name.
    pub assets: BTreeMap<AssetName, Asset>,
    /// Every asset, each after all of its inputs.
    pub order: Vec<AssetName>,
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
}

/// The format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// JSON: an object keyed by entity, or an array of rows.
    Json,
    /// CSV with a header line.
    Csv,
    /// Parquet.
    Parquet,
}

/// A compiled export.
#[derive(Debug, Clone)]
pub struct ExportDef {
    /// The query whose rows are written.
    pub query: TableDef,
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: ExportFormat,
    /// JSON: the key columns, outermost first (empty: an array of rows).
    pub key: Vec<String>,
}

/// A compiled file source.
#[derive(Debug, Clone)]
pub struct SourceDef {
    /// The settings as written.
    pub config: SourceSection,
    /// The format, from the setting or the file extension.
    pub format: FileFormat,
    /// The path or glob, resolved against the project folder.
    pub pattern: PathBuf,
}

impl SourceDef {
    /// The files the source reads now, sorted. A glob may match none, which the
    /// caller reports.
    pub fn files(&self) -> Result<Vec<PathBuf>, String> {
        let pattern = self.pattern.to_string_lossy();
        if !has_glob(&pattern) {
            return Ok(if self.pattern.exists() {
                vec![self.pattern.clone()]
            } else {
                vec![]
            });
        }
        let mut files = Vec::new();
        for entry in glob::glob(&pattern).map_err(|e| format!("invalid glob `{pattern}`: {e}"))? {
            let path = entry.map_err(|e| format!("cannot list `{pattern}`: {e}"))?;
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }
}

/// A compiled SQL table.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// The query.
    pub sql: String,
    /// Where the query is written.
    pub origin: SqlOrigin,
}

/// Compiles `[exports.NAME]`: its query (`from` becomes a `SELECT`; a feature
/// view's newest row per entity), its file, format and JSON key.
fn compile_export(
    raw: &RawProject,
    section: &ExportSection,
    at: &Location,
    diags: &mut Diagnostics,
) -> Option<ExportDef> {
    let before = diags.len();
    let path_text = section.path.get_ref();
    let path_at = raw.location(section.path.span().start);
    if path_text.is_empty() {
        diags.push(Diagnostic::new(
            path_at.clone(),
            "the export's `path` is empty",
        ));
    }
    let path = raw.dir.join(path_text);
    let format = match &section.format {
        Some(f) => match f.get_ref().as_str() {
            "json" => Some(ExportFormat::Json),
            "csv" => Some(ExportFormat::Csv),
            "parquet" => Some(ExportFormat::Parquet),
            other => {
                diags.push(
                    Diagnostic::new(
                        raw.location(f.span().start),
                        format!("unknown export format `{other}`"),
                    )
                    .with_help("write `format = \"json\"`, `\"csv\"` or `\"parquet\"`"),
                );
                None
            }
        },
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Some(ExportFormat::Json),
            Some("csv") => Some(ExportFormat::Csv),
            Some("parquet") => Some(ExportFormat::Parquet),
            _ => {
                diags.push(
                    Diagnostic::new(
                        path_at.clone(),
                        format!("cannot tell the format of `{path_text}`"),
                    )
                    .with_help(
                        "end the path in .json, .csv or .parquet, or add `format = \"json\"`",
                    ),
                );
                None
            }
        },
    };
    // A feature view exports the newest row of each entity.
    let view = section
        .from
        .as_ref()
        .and_then(|f| raw.features.get(f.get_ref()))
        .map(|e| &e.value);
    let (sql, origin) = match (&section.from, &section.sql) {
        (Some(from), None) => {
            let table = crate::features::quote(from.get_ref());
            let sql = match view {
                Some(v) => {
                    let keys = v.entity.get_ref().to_vec();
                    let mut order = vec![format!(
                        "{} DESC",
                        crate::features::quote(v.timestamp.get_ref())
                    )];
                    if let Some(c) = &v.created {
                        order.push(format!("{} DESC", crate::features::quote(c.get_ref())));
                    }
                    format!(
                        "SELECT * EXCEPT (\"__sluice_newest\") FROM (SELECT *, row_number() OVER (PARTITION BY {} ORDER BY {}) AS \"__sluice_newest\" FROM {table}) WHERE \"__sluice_newest\" = 1",
                        keys.iter()
                            .map(|k| crate::features::quote(k))
                            .collect::<Vec<_>>()
                            .join(", "),
                        order.join(", ")
                    )
                }
                None => format!("SELECT * FROM {table}"),
            };
            (
                sql,
                SqlOrigin::of_toml_string(&raw.file, &raw.text, from.span().start),
            )
        }
        (None, Some(sql)) => (
            sql.get_ref().clone(),
            SqlOrigin::of_toml_string(&raw.file, &raw.text, sql.span().start),
        ),
        (Some(_), Some(_)) => {
            diags.push(
                Diagnostic::new(at.clone(), "an export has either `from` or `sql`, not both")
                    .with_help("keep one of them"),
            );
            return None;
        }
        (None, None) => {
            diags.push(
                Diagnostic::new(at.clone(), "an export needs what to write")
                    .with_help("add `from = \"ASSET\"` or `sql = \"SELECT ...\"`"),
            );
            return None;
        }
    };
    let key = match (&section.key, view) {
        (Some(k), _) => k.get_ref().to_vec(),
        (None, Some(v)) => v.entity.get_ref().to_vec(),
        (None, None) => Vec::new(),
    };
    if let Some(k) = &section.key {
        if format.is_some_and(|f| f != ExportFormat::Json) {
            diags.push(
                Diagnostic::new(
                    raw.location(k.span().start),
                    "`key` applies to JSON exports only",
                )
                .with_help("remove it, or write the export as JSON"),
            );
        } else if key.is_empty() || key.iter().any(String::is_empty) {
            diags.push(Diagnostic::new(
                raw.location(k.span().start),
                "`key` names no column",
            ));
        }
    }
    if diags.len() > before {
        return None;
    }
    Some(ExportDef {
        query: TableDef { sql, origin },
        path,
        format: format?,
        key,
    })
}

/// Resolves the assets a model or predictions asset reads; `views` must be
/// feature views, and nothing read may be an export or a model (but `model`).
fn model_inputs(
    raw: &RawProject,
    asset: &Asset,
    wanted: &[String],
    views: &[String],
    model: Option<&str>,
    names: &BTreeSet<String>,
    diags: &mut Diagnostics,
) -> Vec<AssetName> {
    let mut inputs = Vec::new();
    for w in wanted {
        if raw.models.contains_key(w) && Some(w.as_str()) != model {
            diags.push(
                Diagnostic::new(
                    asset.location.clone(),
                    format!("`{w}` is a model, not a table"),
                )
                .with_help(format!(
                    "read its batch predictions, `{}`",
                    crate::models::predictions_name(w)
                )),
            );
        } else if raw.exports.contains_key(w) {
            diags.push(
                Diagnostic::new(
                    asset.location.clone(),
                    format!("`{w}` is an export (a file), not a table"),
                )
                .with_help("read the asset the export writes instead"),
            );
        } else if !names.contains(w) {
            diags.push(
                Diagnostic::new(
                    asset.location.clone(),
                    format!("unknown asset `{w}` in {} `{}`", asset.kind(), asset.name),
                )
                .with_help(suggest(w, names)),
            );
        } else if views.contains(w) && !raw.features.contains_key(w) && !raw.broken.contains(w) {
            diags.push(
                Diagnostic::new(
                    asset.location.clone(),
                    format!("`{w}` is not a feature view"),
                )
                .with_help("`features` names feature views (`[features.NAME]`); use `columns` for the spine's own columns"),
            );
        } else if let Ok(n) = AssetName::new(w)
            && !inputs.contains(&n)
        {
            inputs.push(n);
        }
    }
    inputs
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Compiles raw sections into a project, with `profile` (or the project's default
/// profile) applied.
pub fn compile(raw: &RawProject, profile: Option<&str>) -> Result<Project, Diagnostics> {
    let mut diags = raw.diagnostics.clone();
    let header = raw.location(0);

    // Profile.
    let profile_name = match profile {
        Some(p) => Some((p.to_string(), None)),
        None => raw
            .project
            .default_profile
            .as_ref()
            .map(|p| (p.get_ref().clone(), Some(p.span().start))),
    };
    let profile_section = match &profile_name {
        Some((name, offset)) => match raw.profiles.get(name) {
            Some(p) => Some(&p.value),
            None => {
                let known: Vec<_> = raw.profiles.keys().map(String::as_str).collect();
                let at = offset.map_or(header.clone(), |o| raw.location(o));
                diags.push(
                    Diagnostic::new(at, format!("unknown profile `{name}`")).with_help(
                        if known.is_empty() {
                            "define it as `[profiles.NAME]` in the project file".to_string()
                        } else {
                            format!("the profiles are: {}", known.join(", "))
                        },
                    ),
                );
                None
            }
        },
        None => None,
    };

    let warehouse = profile_section
        .and_then(|p| p.warehouse.as_ref())
        .or(raw.project.warehouse.as_ref());
    let warehouse = match warehouse {
        Some(w) => match expand_env(w.get_ref()) {
            Ok(s) => raw.dir.join(s),
            Err(var) => {
                diags.push(
                    Diagnostic::new(
                        raw.location(w.span().start),
                        format!("environment variable `{var}` is not set"),
                    )
                    .with_help(format!("set `{var}` before running sluice")),
                );
                raw.dir.join(".sluice")
            }
        },
        None => raw.dir.join(".sluice"),
    };
    let concurrency = profile_section
        .and_then(|p| p.concurrency)
        .or(raw.project.concurrency)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);

    // Names: one namespace for every kind of asset.
    let mut assets: BTreeMap<AssetName, Asset> = BTreeMap::new();
    let mut seen: BTreeMap<String, AssetKind> = BTreeMap::new();
    let mut check_name = |name: &str, kind: AssetKind, at: &Location, diags: &mut Diagnostics| {
        if let Some(other) = seen.get(name) {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!("`{name}` is defined both as a {other} and as a {kind}"),
                )
                .with_help("asset names are shared by all kinds; rename one of them"),
            );
            return None;
        }
        seen.insert(name.to_string(), kind);
        match AssetName::new(name) {
            Ok(n) => Some(n),
            Err(e) => {
                diags.push(Diagnostic::new(at.clone(), e.to_string()));
                None
            }
        }
    };

    for (name, entry) in &raw.sources {
        let at = raw.location(entry.offset);
        let Some(asset_name) = check_name(name, AssetKind::Source, &at, &mut diags) else {
            continue;
        };
        let config = entry.value.clone();
        let path_at = raw.location(config.path.span().start);
        let pattern = raw.dir.join(config.path.get_ref());
        let format = match config
            .format
            .or_else(|| format_of(Path::new(config.path.get_ref())))
        {
            Some(f) => f,
            None => {
                diags.push(
                    Diagnostic::new(
                        path_at.clone(),
                        format!("cannot tell the format of `{}`", config.path.get_ref()),
                    )
                    .with_help("add `format = \"csv\"`, `\"json\"` or `\"parquet\"`"),
                );
                continue;
            }
        };
        check_source_options(&config, format, &at, &mut diags);
        let def = SourceDef {
            config,
            format,
            pattern,
        };
        match def.files() {
            Ok(files) if files.is_empty() => diags.push(
                Diagnostic::new(
                    path_at,
                    format!("no file matches `{}`", def.config.path.get_ref()),
                )
                .with_help("check the path; it is relative to the project folder"),
            ),
            Ok(_) => {}
            Err(e) => diags.push(Diagnostic::new(path_at, e)),
        }
        let fingerprint = fingerprint(&[
            "source",
            &serde_json::to_string(&def.config).unwrap_or_default(),
            &format!("{:?}", def.format),
        ]);
        let description = def.config.description.clone();
        let contract = def
            .config
            .contract
            .as_ref()
            .map(|c| compile_contract(raw, c, &mut diags))
            .unwrap_or_default();
        assets.insert(
            asset_name.clone(),
            Asset {
                name: asset_name,
                location: at,
                definition: Definition::Source(Box::new(def)),
                inputs: vec![],
                fingerprint,
                contract,
                description,
            },
        );
    }

    for (name, entry) in &raw.tables {
        let at = raw.location(entry.offset);
        let Some(asset_name) = check_name(name, AssetKind::Table, &at, &mut diags) else {
            continue;
        };
        let table = &entry.value;
        let (sql, origin) = match (&table.sql, &table.file) {
            (Some(sql), None) => (
                sql.get_ref().clone(),
                SqlOrigin::of_toml_string(&raw.file, &raw.text, sql.span().start),
            ),
            (None, Some(file)) => {
                let path = raw.dir.join(file.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(sql) => (
                        sql,
                        SqlOrigin {
                            file: path,
                            line: 1,
                            column: 1,
                        },
                    ),
                    Err(e) => {
                        diags.push(
                            Diagnostic::new(
                                raw.location(file.span().start),
                                format!("cannot read `{}`: {e}", file.get_ref()),
                            )
                            .with_help("the path is relative to the project folder"),
                        );
                        continue;
                    }
                }
            }
            (Some(_), Some(_)) => {
                diags.push(
                    Diagnostic::new(at, "a table has either `sql` or `file`, not both")
                        .with_help("keep one of them"),
                );
                continue;
            }
            (None, None) => {
                diags.push(
                    Diagnostic::new(at, "a table needs its query")
                        .with_help("add `sql = \"SELECT ...\"` or `file = \"sql/NAME.sql\"`"),
                );
                continue;
            }
        };
        let contract_text = serde_json::to_string(&table.contract).unwrap_or_default();
        let fingerprint = fingerprint(&["table", sql.trim(), &contract_text]);
        let contract = table
            .contract
            .as_ref()
            .map(|c| compile_contract(raw, c, &mut diags))
            .unwrap_or_default();
        assets.insert(
            asset_name.clone(),
            Asset {
                name: asset_name,
                location: at,
                definition: Definition::Table(TableDef { sql, origin }),
                inputs: vec![],
                fingerprint,
                contract,
                description: table.description.clone(),
            },
        );
    }

    for (name, entry) in &raw.features {
        let at = raw.location(entry.offset);
        let Some(asset_name) = check_name(name, AssetKind::Features, &at, &mut diags) else {
            continue;
        };
        let section = &entry.value;
        let Some(def) = compile_features(raw, name, section, &at, &mut diags) else {
            continue;
        };
        let fingerprint = fingerprint(&[
            "features",
            &serde_json::to_string(section).unwrap_or_default(),
            match &def.body {
                FeatureBody::Sql { sql, .. } => sql.trim(),
                FeatureBody::Declared(_) => "",
            },
        ]);
        assets.insert(
            asset_name.clone(),
            Asset {
                name: asset_name,
                location: at,
                definition: Definition::Features(Box::new(def)),
                inputs: vec![],
                fingerprint,
                contract: Contract::default(),
                description: section.description.clone(),
            },
        );
    }

    for (name, entry) in &raw.exports {
        let at = raw.location(entry.offset);
        let Some(asset_name) = check_name(name, AssetKind::Export, &at, &mut diags) else {
            continue;
        };
        let section = &entry.value;
        let Some(def) = compile_export(raw, section, &at, &mut diags) else {
            continue;
        };
        let fingerprint = fingerprint(&[
            "export",
            &serde_json::to_string(section).unwrap_or_default(),
            def.query.sql.trim(),
        ]);
        assets.insert(
            asset_name.clone(),
            Asset {
                name: asset_name,
                location: at,
                definition: Definition::Export(Box::new(def)),
                inputs: vec![],
                fingerprint,
                contract: Contract::default(),
                description: section.description.clone(),
            },
        );
    }

    for (name, entry) in &raw.models {
        let at = raw.location(entry.offset);
        let Some(asset_name) = check_name(name, AssetKind::Model, &at, &mut diags) else {
            continue;
        };
        let section = &entry.value;
        let Some((def, predictions)) = compile_model(raw, name, section, &at, &mut diags) else {
            continue;
        };
        // An imported model changes when its file does.
        let file_hash = match &def.learner {
            Learner::Onnx { path, .. } => match std::fs::read(path) {
                Ok(bytes) => blake3::hash(&bytes).to_hex().to_string(),
                Err(e) => {
                    diags.push(Diagnostic::new(
                        at.clone(),
                        format!("cannot read `{}`: {e}", path.display()),
                    ));
                    continue;
                }
            },
            _ => String::new(),
        };
        let model_fingerprint = fingerprint(&[
            "model",
            &serde_json::to_string(section).unwrap_or_default(),
            &file_hash,
        ]);
        if let Some(p) = predictions {
            let p_at = section
                .predictions
                .as_ref()
                .map_or(at.clone(), |s| raw.location(s.span().start));
            let p_name = crate::models::predictions_name(name);
            if let Some(p_asset) = check_name(&p_name, AssetKind::Predictions, &p_at, &mut diags) {
                let fingerprint = fingerprint(&[
                    "predictions",
                    name,
                    &serde_json::to_string(&section.predictions).unwrap_or_default(),
                ]);
                let description = section
                    .predictions
                    .as_ref()
                    .and_then(|s| s.get_ref().description.clone())
                    .or_else(|| {
                        Some(format!(
                            "Scores of model `{name}` for the rows of `{}`",
                            p.spine
                        ))
                    });
                assets.insert(
                    p_asset.clone(),
                    Asset {
                        name: p_asset,
                        location: p_at,
                        definition: Definition::Predictions(Box::new(p)),
                        inputs: vec![],
                        fingerprint,
                        contract: Contract::default(),
                        description,
                    },
                );
            }
        }
        assets.insert(
            asset_name.clone(),
            Asset {
                name: asset_name,
                location: at,
                definition: Definition::Model(Box::new(def)),
                inputs: vec![],
                fingerprint: model_fingerprint,
                contract: Contract::default(),
                description: section.description.clone(),
            },
        );
    }

    // References are the DAG. Entries that could not be read are already
    // reported; referring to them is not a second error.
    let names: BTreeSet<String> = seen.keys().chain(raw.broken.iter()).cloned().collect();
    let mut resolved = BTreeMap::new();
    for asset in assets.values() {
        let (sql, origin) = match &asset.definition {
            Definition::Source(_) => continue,
            Definition::Table(def) => (&def.sql, &def.origin),
            Definition::Export(def) => (&def.query.sql, &def.query.origin),
            Definition::Model(def) => {
                let inputs = model_inputs(
                    raw,
                    asset,
                    &def.inputs(),
                    &def.views(),
                    None,
                    &names,
                    &mut diags,
                );
                resolved.insert(asset.name.clone(), inputs);
                continue;
            }
            Definition::Predictions(def) => {
                let mut wanted = vec![def.model.clone(), def.spine.clone()];
                let views: Vec<String> = match assets
                    .iter()
                    .find(|(n, _)| n.as_str() == def.model)
                    .map(|(_, a)| &a.definition)
                {
                    Some(Definition::Model(m)) => m.views(),
                    _ => Vec::new(),
                };
                wanted.extend(views.iter().cloned());
                let inputs = model_inputs(
                    raw,
                    asset,
                    &wanted,
                    &views,
                    Some(&def.model),
                    &names,
                    &mut diags,
                );
                resolved.insert(asset.name.clone(), inputs);
                continue;
            }
            Definition::Features(def) => match &def.body {
                FeatureBody::Sql { sql, origin } => (sql, origin),
                FeatureBody::Declared(d) => {
                    let source = d.source.as_str();
                    if !names.contains(source) {
                        diags.push(
                            Diagnostic::new(
                                asset.location.clone(),
                                format!(
                                    "unknown asset `{source}` in feature view `{}`",
                                    asset.name
                                ),
                            )
                            .with_help(suggest(source, &names)),
                        );
                    } else if assets.contains_key(&d.source) {
                        resolved.insert(asset.name.clone(), vec![d.source.clone()]);
                    }
                    continue;
                }
            },
        };
        match references(sql) {
            Ok(refs) => {
                let mut inputs: Vec<AssetName> = Vec::new();
                for r in refs {
                    let at = origin.locate(r.line, r.column);
                    if r.qualified {
                        diags.push(
                            Diagnostic::new(at, format!("`{}` is qualified with a schema", r.name))
                                .with_help("refer to assets by their bare name"),
                        );
                    } else if raw.exports.contains_key(&r.name) {
                        diags.push(
                            Diagnostic::new(
                                at,
                                format!("`{}` is an export (a file), not a table", r.name),
                            )
                            .with_help("read the asset the export writes instead"),
                        );
                    } else if raw.models.contains_key(&r.name) {
                        diags.push(
                            Diagnostic::new(at, format!("`{}` is a model, not a table", r.name))
                                .with_help(format!(
                                    "read its batch predictions, `{}`",
                                    crate::models::predictions_name(&r.name)
                                )),
                        );
                    } else if !names.contains(&r.name) {
                        diags.push(
                            Diagnostic::new(
                                at,
                                format!(
                                    "unknown asset `{}` in {} `{}`",
                                    r.name,
                                    asset.kind(),
                                    asset.name
                                ),
                            )
                            .with_help(suggest(&r.name, &names)),
                        );
                    } else if let Ok(n) = AssetName::new(&r.name)
                        && assets.contains_key(&n)
                        && !inputs.contains(&n)
                    {
                        inputs.push(n);
                    }
                }
                resolved.insert(asset.name.clone(), inputs);
            }
            Err(e) => diags.push(
                Diagnostic::new(
                    origin.locate(e.line, e.column),
                    format!("SQL of {} `{}`: {}", asset.kind(), asset.name, e.message),
                )
                .with_help("fix the query; `sluice check` plans every table without running it"),
            ),
        }
    }
    for (name, inputs) in resolved {
        if let Some(asset) = assets.get_mut(&name) {
            asset.inputs = inputs;
        }
    }

    let order = match crate::dag::topological_order(&assets) {
        Ok(order) => order,
        Err(cycle) => {
            let path: Vec<_> = cycle.iter().map(AssetName::as_str).collect();
            let at = assets[&cycle[0]].location.clone();
            diags.push(
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

    diags.into_result(Project {
        name: raw.project.name.clone(),
        dir: raw.dir.clone(),
        file: raw.file.clone(),
        profile: profile_name.map(|(n, _)| n),
        warehouse,
        concurrency,
        assets,
        order,
    })
}

fn check_source_options(
    config: &SourceSection,
    format: FileFormat,
    at: &Location,
    diags: &mut Diagnostics,
) {
    let csv_only = [
        ("delimiter", config.delimiter.is_some()),
        ("quote", config.quote.is_some()),
        ("header", config.header.is_some()),
        ("names", config.names.is_some()),
        ("null", !config.null.is_empty()),
    ];
    if format != FileFormat::Csv {
        for (key, set) in csv_only {
            if set {
                diags.push(
                    Diagnostic::new(at.clone(), format!("`{key}` applies only to CSV sources"))
                        .with_help("remove it, or set `format = \"csv\"`"),
                );
            }
        }
    }
    for (key, c) in [("delimiter", config.delimiter), ("quote", config.quote)] {
        if let Some(c) = c
            && !c.is_ascii()
        {
            diags.push(Diagnostic::new(
                at.clone(),
                format!("`{key}` must be one ASCII character, not `{c}`"),
            ));
        }
    }
}

/// The format implied by a file extension.
pub fn format_of(path: &Path) -> Option<FileFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "csv" | "tsv" | "txt" => FileFormat::Csv,
        "json" | "ndjson" | "jsonl" => FileFormat::Json,
        "parquet" | "pq" => FileFormat::Parquet,
        _ => return None,
    })
}

/// Replaces `${VAR}` with the environment variable's value; returns the name of
/// the first variable that is not set.
pub fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let var = &rest[start + 2..start + end];
        match std::env::var(var) {
            Ok(v) => out.push_str(&v),
            Err(_) => return Err(var.to_string()),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
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

fn suggest(name: &str, names: &BTreeSet<String>) -> String {
    let close = names
        .iter()
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .min();
    match close {
        Some((_, n)) => format!("did you mean `{n}`?"),
        None if names.is_empty() => "the project defines no assets yet".to_string(),
        None => format!(
            "the assets are: {}",
            names
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
