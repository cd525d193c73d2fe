//! `[sources.NAME]`: files read from outside the project (CSV, JSON, Parquet),
//! by path or glob.

use std::path::{Path, PathBuf};

use sluice_core::{AssetKind, Location};

use super::{Builder, Definition, TimeFormat, fingerprint};
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::Entry;
use crate::raw::{Delimiter, FileFormat, FileSourceSection, SourceSection};

/// Bumped when reading a file gives other rows or types than before for the
/// same settings, so that sources are read again. 2: numbers whose text would
/// not survive the round trip (leading zeros, too many digits) stay text.
const READ_RULES: &str = "source-read-2";

/// A compiled source: one variant per connector, as in [`SourceSection`].
// One per source, made once when the project compiles: boxing the files
// variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SourceDef {
    /// Files on disk.
    Files(FilesDef),
    /// Rows applications push.
    Push(super::push::PushDef),
    /// A PostgreSQL query or table.
    Postgres(super::DatabaseDef),
    /// A MySQL or MariaDB query or table.
    Mysql(super::DatabaseDef),
    /// A SQLite query or table.
    Sqlite(super::DatabaseDef),
    /// An HTTP API.
    Http(Box<super::network::HttpDef>),
    /// Web pages crawled.
    Crawl(Box<super::network::CrawlDef>),
}

/// A compiled file source.
#[derive(Debug, Clone)]
pub struct FilesDef {
    /// The settings as written.
    pub config: FileSourceSection,
    /// The format, from the setting or the file extension.
    pub format: FileFormat,
    /// The path or glob, resolved against the project folder.
    pub pattern: PathBuf,
}

impl FilesDef {
    /// The files the source reads now, sorted. A glob may match none, which the
    /// caller reports.
    pub fn files(&self) -> Result<Vec<PathBuf>, ListFilesError> {
        list_files(&self.pattern)
    }
}

/// The files a path or glob matches now, sorted; a plain path that does not
/// exist, or a glob that matches nothing, gives none.
pub fn list_files(pattern: &Path) -> Result<Vec<PathBuf>, ListFilesError> {
    let text = pattern.to_string_lossy();
    if !has_glob(&text) {
        return Ok(if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            vec![]
        });
    }
    let mut files = Vec::new();
    let entries = glob::glob(&text).map_err(|source| ListFilesError::Pattern {
        pattern: text.to_string(),
        source,
    })?;
    for entry in entries {
        let path = entry.map_err(|source| ListFilesError::Read {
            pattern: text.to_string(),
            source,
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Why a source's files could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListFilesError {
    /// The glob is not one.
    #[error("invalid glob `{pattern}`: {source}")]
    Pattern {
        /// The glob as resolved.
        pattern: String,
        /// Why it is invalid.
        source: glob::PatternError,
    },
    /// A directory on the way could not be read.
    #[error("cannot list `{pattern}`: {source}")]
    Read {
        /// The glob as resolved.
        pattern: String,
        /// The I/O error, with the path.
        source: glob::GlobError,
    },
}

impl ListFilesError {
    /// Listing failed on I/O (transient by its kind) or on the pattern (permanent).
    pub fn class(&self) -> sluice_core::ErrorClass {
        match self {
            ListFilesError::Pattern { .. } => sluice_core::ErrorClass::Permanent,
            ListFilesError::Read { source, .. } => sluice_core::ErrorClass::of_io(source.error()),
        }
    }
}

/// Compiles `[sources.NAME]`: its format (set, or by the file extension), its
/// options, whether any file matches, its contract.
pub(super) fn compile(b: &mut Builder<'_>, name: &str, entry: &Entry<SourceSection>) {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let config = match entry.value.clone() {
        SourceSection::Files(config) => config,
        SourceSection::Push(section) => {
            return super::push::compile(b, name, entry.offset, section);
        }
        SourceSection::Http(config) => return super::network::compile_http(b, name, at, *config),
        SourceSection::Crawl(config) => {
            return super::network::compile_crawl(b, name, at, *config);
        }
        section @ (SourceSection::Postgres(_)
        | SourceSection::Mysql(_)
        | SourceSection::Sqlite(_)) => {
            return super::db_sources::compile(b, name, at, &section);
        }
    };
    let Some(asset_name) = b.claim(name, AssetKind::Source, &at) else {
        return;
    };
    let path_at = raw.location(config.path.span().start);
    let pattern = raw.dir.join(config.path.get_ref());
    let format = match config
        .format
        .or_else(|| format_of(Path::new(config.path.get_ref())))
    {
        Some(f) => f,
        None => {
            b.diags.push(
                Diagnostic::new(
                    path_at.clone(),
                    format!("cannot tell the format of `{}`", config.path.get_ref()),
                )
                .with_help("add `format = \"csv\"`, `\"json\"` or `\"parquet\"`"),
            );
            return;
        }
    };
    check_source_options(&config, format, &at, &mut b.diags);
    let def = FilesDef {
        config,
        format,
        pattern,
    };
    match def.files() {
        Ok(files) if files.is_empty() => b.diags.push(
            Diagnostic::new(
                path_at,
                format!("no file matches `{}`", def.config.path.get_ref()),
            )
            .with_help("check the path; it is relative to the project folder"),
        ),
        Ok(_) => {}
        Err(e) => b.diags.push(Diagnostic::new(path_at, e.to_string())),
    }
    let fingerprint = fingerprint(&[
        "source",
        &serde_json::to_string(&def.config).unwrap_or_default(),
        &format!("{:?}", def.format),
        READ_RULES,
    ]);
    let description = def.config.description.clone();
    let contract = b.contract(def.config.contract.as_ref());
    let partitioned = def
        .config
        .partitioned
        .as_ref()
        .and_then(|p| super::partitions::compile(b, p));
    let asset = b.add(
        asset_name,
        at,
        Definition::Source(Box::new(SourceDef::Files(def))),
        fingerprint,
    );
    asset.contract = contract;
    asset.description = description;
    asset.partitioned = partitioned;
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn check_source_options(
    config: &FileSourceSection,
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
        ("widths", config.widths.is_some()),
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
    let delimiter = match config.delimiter {
        Some(Delimiter::Char(c)) => Some(c),
        _ => None,
    };
    for (key, c) in [("delimiter", delimiter), ("quote", config.quote)] {
        if let Some(c) = c
            && !c.is_ascii()
        {
            diags.push(Diagnostic::new(
                at.clone(),
                format!("`{key}` must be one ASCII character, not `{c}`"),
            ));
        }
    }
    if let Some(widths) = &config.widths {
        check_widths(config, widths, at, diags);
    }
    check_formats(config, format, at, diags);
}

/// `widths`: fixed-width columns, so no delimiter; every width at least one
/// character; as many `names` as widths.
fn check_widths(
    config: &FileSourceSection,
    widths: &[usize],
    at: &Location,
    diags: &mut Diagnostics,
) {
    if config.delimiter.is_some() {
        diags.push(
            Diagnostic::new(at.clone(), "`widths` and `delimiter` exclude each other")
                .with_help("fixed-width columns have no delimiter: remove one of them"),
        );
    }
    if widths.is_empty() || widths.contains(&0) {
        diags.push(
            Diagnostic::new(
                at.clone(),
                "`widths` must list at least one width, none of them 0",
            )
            .with_help("write each column's width in characters: `widths = [6, 9, 3, 8]`"),
        );
    }
    if let Some(names) = &config.names
        && names.len() != widths.len()
    {
        diags.push(
            Diagnostic::new(
                at.clone(),
                format!(
                    "`names` lists {} columns but `widths` {}",
                    names.len(),
                    widths.len()
                ),
            )
            .with_help("give one name per width"),
        );
    }
}

/// `formats`: CSV and JSON only (Parquet stores typed dates), each a chrono
/// pattern with a full date, on a column that `columns` leaves a date or a
/// timestamp.
fn check_formats(
    config: &FileSourceSection,
    format: FileFormat,
    at: &Location,
    diags: &mut Diagnostics,
) {
    if config.formats.is_empty() {
        return;
    }
    if format == FileFormat::Parquet {
        diags.push(
            Diagnostic::new(at.clone(), "`formats` applies only to CSV and JSON sources")
                .with_help("Parquet files store dates and timestamps typed: remove it"),
        );
        return;
    }
    for (column, pattern) in &config.formats {
        let format = match TimeFormat::parse(pattern) {
            Ok(f) => f,
            Err(e) => {
                diags.push(
                    Diagnostic::new(at.clone(), format!("`formats.{column}`: {e}")).with_help(
                        "write it in chrono's strftime syntax, e.g. `%m/%d/%y` or `%Y%m%d %H%M`",
                    ),
                );
                continue;
            }
        };
        let declared = config
            .columns
            .get(column)
            .map(|w| w.trim().to_ascii_lowercase());
        match declared.as_deref() {
            None | Some("timestamp") => {}
            Some("date") if format.has_time() => diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!(
                        "`formats.{column}` = `{pattern}` has a time of day, and `columns` makes `{column}` a date"
                    ),
                )
                .with_help("declare it `timestamp`, or take the time out of the format"),
            ),
            Some("date") => {}
            Some(word) => diags.push(
                Diagnostic::new(
                    at.clone(),
                    format!(
                        "`formats` applies to date and timestamp columns, and `columns` makes `{column}` {word}"
                    ),
                )
                .with_help("remove its format, or declare it `date` or `timestamp`"),
            ),
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
