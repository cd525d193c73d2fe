//! `[features.NAME]` compiled into a [`FeatureDef`]: entity, times, ttl, and SQL
//! or declared aggregations, with every mistake reported at its key.

use sluice_core::{AssetName, Location};
use toml::Spanned;

use super::*;
use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::RawProject;
use crate::raw::{AggregateFunction, DurationWord, FeatureSection};
use crate::sql::SqlOrigin;

/// Compiles `[features.NAME]`; mistakes that need no data are reported here.
pub(crate) fn compile_features(
    raw: &RawProject,
    name: &str,
    section: &FeatureSection,
    at: &Location,
    diags: &mut Diagnostics,
) -> Option<FeatureDef> {
    let loc = |offset: usize| raw.location(offset);
    let entity = section.entity.get_ref().to_vec();
    if entity.is_empty() || entity.iter().any(|k| k.is_empty()) {
        diags.push(
            Diagnostic::new(
                loc(section.entity.span().start),
                "the entity needs a key column",
            )
            .with_help("write `entity = \"user_id\"` or `entity = [\"carrier\", \"origin\"]`"),
        );
    }
    let timestamp = section.timestamp.get_ref().clone();
    let created = section.created.as_ref().map(|c| c.get_ref().clone());
    let ttl = section
        .ttl
        .as_ref()
        .map(|t| t.get_ref().value)
        .filter(|d| !d.is_zero());
    let declarative = section.source.is_some()
        || !section.aggregates.is_empty()
        || !section.pivots.is_empty()
        || !section.derived.is_empty()
        || section.as_of.is_some();
    let body = if declarative && (section.sql.is_some() || section.file.is_some()) {
        if section.sql.is_some() && section.file.is_some() {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    "a feature view has either `sql` or `file`, not both",
                )
                .with_help("keep one of them"),
            );
        } else {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    "a feature view is either SQL (`sql`/`file`) or declared (`source`, `aggregates`, `pivots`, `derived`, `as_of`), not both",
                )
                .with_help("put the aggregations in the SQL, or drop `sql`/`file`"),
            );
        }
        None
    } else {
        match crate::compile::sql_or_file(
            raw,
            section.sql.as_ref(),
            section.file.as_ref(),
            at,
            "a feature view",
            diags,
        ) {
            Ok(Some((sql, origin))) => Some(FeatureBody::Sql { sql, origin }),
            Ok(None) => {
                compile_declared(raw, name, section, at, &entity, &timestamp, &created, diags)
                    .map(FeatureBody::Declared)
            }
            Err(()) => None,
        }
    };
    let now_view = matches!(&body, Some(FeatureBody::Declared(d)) if d.as_of == AsOf::Now);
    let refresh = match &section.refresh {
        None => None,
        Some(r) if !now_view => {
            diags.push(
                Diagnostic::new(
                    loc(r.span().start),
                    "`refresh` applies only to a view declared with `as_of = \"now\"`",
                )
                .with_help("remove it: other views change only when their inputs do"),
            );
            None
        }
        Some(r) => Some(r.get_ref().value),
    };
    let tiles = tiling(section, body.as_ref(), &loc, diags);
    // With a mistake reported above the project does not load, but the view
    // is still added (when it has a body), so that its references are checked.
    let mut written_at: Vec<(String, Location)> = entity
        .iter()
        .map(|k| (k.clone(), loc(section.entity.span().start)))
        .collect();
    written_at.push((timestamp.clone(), loc(section.timestamp.span().start)));
    if let Some(c) = &section.created {
        written_at.push((c.get_ref().clone(), loc(c.span().start)));
    }
    Some(FeatureDef {
        entity,
        timestamp,
        created,
        ttl,
        body: body?,
        refresh,
        tiles,
        written_at,
    })
}

/// The tiling of a declared view computed at every event (its online windows
/// are read as of the request time); `tile` and `online_history` elsewhere are
/// mistakes.
fn tiling(
    section: &FeatureSection,
    body: Option<&FeatureBody>,
    loc: &dyn Fn(usize) -> Location,
    diags: &mut Diagnostics,
) -> Option<Tiling> {
    let tiled = matches!(body, Some(FeatureBody::Declared(d)) if d.spine_anchored);
    let written = [
        ("tile", &section.tile),
        ("online_history", &section.online_history),
    ];
    if !tiled {
        for (key, value) in written {
            if let Some(v) = value {
                diags.push(
                    Diagnostic::new(
                        loc(v.span().start),
                        format!("`{key}` applies only to a declared view computed at every event, without `as_of`"),
                    )
                    .with_help("remove it: the online store keeps this view's newest row per entity"),
                );
            }
        }
        return None;
    }
    let mut out = Tiling::DEFAULT;
    if let Some(t) = &section.tile {
        if t.get_ref().value.is_zero() {
            diags.push(
                Diagnostic::new(loc(t.span().start), "a tile cannot be zero")
                    .with_help("write a duration such as `tile = \"1h\"` or `tile = \"1d\"`"),
            );
        } else {
            out.size = t.get_ref().value;
        }
    }
    if let Some(h) = &section.online_history {
        out.history = h.get_ref().value;
    }
    Some(out)
}

#[allow(clippy::too_many_arguments)]
fn compile_declared(
    raw: &RawProject,
    name: &str,
    section: &FeatureSection,
    at: &Location,
    entity: &[String],
    timestamp: &str,
    created: &Option<String>,
    diags: &mut Diagnostics,
) -> Option<Declared> {
    let loc = |offset: usize| raw.location(offset);
    let Some(source) = &section.source else {
        diags.push(
            Diagnostic::new(at.clone(), format!("feature view `{name}` has no source"))
                .with_help("add `source = \"ASSET\"` (the asset whose rows are aggregated), or write the view as `sql = \"SELECT ...\"`"),
        );
        return None;
    };
    let source_name = match AssetName::new(source.get_ref()) {
        Ok(n) => n,
        Err(e) => {
            diags.push(Diagnostic::new(loc(source.span().start), e.to_string()));
            return None;
        }
    };
    let as_of = match section
        .as_of
        .as_ref()
        .map(|a| (a.get_ref().trim(), a.span().start))
    {
        None | Some(("event", _)) => AsOf::Event,
        Some(("newest", _)) => AsOf::Newest,
        Some(("now", _)) => AsOf::Now,
        Some((text, offset)) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(t) => AsOf::At(t.timestamp_micros()),
            Err(e) => {
                diags.push(
                    Diagnostic::new(loc(offset), format!("as_of: `{text}` is not a time ({e})"))
                        .with_help("write `\"event\"`, `\"newest\"`, `\"now\"` or an RFC 3339 time such as `\"2026-01-01T00:00:00Z\"`"),
                );
                AsOf::Event
            }
        },
    };
    let mut names: Vec<String> = entity.to_vec();
    names.push(timestamp.to_string());
    names.extend(created.clone());
    let mut claim = |feature: &str, offset: usize, diags: &mut Diagnostics| {
        if names.iter().any(|n| n == feature) {
            diags.push(
                Diagnostic::new(loc(offset), format!("feature view `{name}` has two columns named `{feature}`"))
                    .with_help("give every feature a name of its own, different from the entity and timestamp columns"),
            );
        } else {
            names.push(feature.to_string());
        }
    };
    let window = |w: &Option<Spanned<DurationWord>>, diags: &mut Diagnostics| match w {
        None => None,
        Some(w) if w.get_ref().value.is_zero() => {
            diags.push(
                Diagnostic::new(
                    loc(w.span().start),
                    "a window of zero length holds no event",
                )
                .with_help("leave `window` out for all time, or give a length such as `7d`"),
            );
            None
        }
        Some(w) => Some(w.get_ref().value),
    };
    let origin =
        |f: &Spanned<String>| SqlOrigin::of_toml_string(&raw.file, &raw.text, f.span().start);
    let mut aggregates = vec![];
    for (feature, spec) in &section.aggregates {
        let offset = spec.span().start;
        let spec = spec.get_ref();
        claim(feature, offset, diags);
        if spec.column.is_none() && spec.agg != AggregateFunction::Count {
            diags.push(
                Diagnostic::new(
                    loc(offset),
                    format!("`{feature}`: `{}` needs a `column`", spec.agg.as_str()),
                )
                .with_help("only `count` may go without a column (it then counts rows)"),
            );
        }
        if let Some(flag) = &spec.ignore_nulls
            && spec.agg != AggregateFunction::Last
        {
            diags.push(
                Diagnostic::new(
                    loc(flag.span().start),
                    format!("`{feature}`: `ignore_nulls` applies only to `last`"),
                )
                .with_help("remove it: the other aggregates skip nulls, as SQL's do"),
            );
        }
        let closed_left = match spec
            .closed
            .as_ref()
            .map(|c| (c.get_ref().trim(), c.span().start))
        {
            None | Some(("right", _)) => false,
            Some(("left", offset)) => {
                if section.as_of.is_some() {
                    diags.push(
                        Diagnostic::new(
                            loc(offset),
                            format!("`{feature}`: `closed = \"left\"` applies only to a view without `as_of`"),
                        )
                        .with_help("a view without `as_of` is computed at each training row's time, where `[T - w, T)` means something; remove `as_of` or `closed`"),
                    );
                }
                true
            }
            Some((text, offset)) => {
                diags.push(
                    Diagnostic::new(
                        loc(offset),
                        format!("`{feature}`: closed: `{text}` is not `left` or `right`"),
                    )
                    .with_help(
                        "write `closed = \"left\"` to leave out the event at the row's time",
                    ),
                );
                false
            }
        };
        aggregates.push(Aggregate {
            closed_left,
            name: feature.clone(),
            agg: spec.agg,
            column: spec.column.as_ref().map(|c| c.get_ref().clone()),
            window: window(&spec.window, diags),
            filter: spec.filter.as_ref().map(|f| f.get_ref().clone()),
            ignore_nulls: spec.ignore_nulls.as_ref().is_none_or(|f| *f.get_ref()),
            column_at: loc(spec.column.as_ref().map_or(offset, |c| c.span().start)),
            filter_origin: spec.filter.as_ref().map(origin),
        });
    }
    let mut pivots = vec![];
    for (pivot, spec) in &section.pivots {
        let offset = spec.span().start;
        let spec = spec.get_ref();
        let w = window(&spec.window, diags);
        let p = Pivot {
            name: pivot.clone(),
            column: spec
                .column
                .as_ref()
                .map_or_else(|| pivot.clone(), |c| c.get_ref().clone()),
            value: spec.value.as_ref().map(|v| v.get_ref().clone()),
            values: spec.values.clone(),
            window: w.zip(spec.window.as_ref().map(|w| w.get_ref().text.clone())),
            filter: spec.filter.as_ref().map(|f| f.get_ref().clone()),
            column_at: loc(spec.column.as_ref().map_or(offset, |c| c.span().start)),
            value_at: spec.value.as_ref().map(|v| loc(v.span().start)),
            filter_origin: spec.filter.as_ref().map(origin),
        };
        if let Some(values) = &p.values {
            if values.is_empty() {
                diags.push(
                    Diagnostic::new(loc(offset), format!("pivot `{pivot}` lists no category"))
                        .with_help(
                            "list the categories, or leave `values` out to find them in the data",
                        ),
                );
            }
            for v in values {
                let (sum, count) = p.columns(v);
                if let Some(sum) = sum {
                    claim(&sum, offset, diags);
                }
                claim(&count, offset, diags);
            }
        }
        pivots.push(p);
    }
    let mut derived = vec![];
    for (feature, expr) in &section.derived {
        claim(feature, expr.span().start, diags);
        derived.push((feature.clone(), expr.get_ref().clone()));
    }
    if aggregates.is_empty() && pivots.is_empty() {
        diags.push(
            Diagnostic::new(
                at.clone(),
                format!("feature view `{name}` declares no feature"),
            )
            .with_help("add `[features.NAME.aggregates]` or `[features.NAME.pivots.X]`"),
        );
    }
    Some(Declared {
        source: source_name,
        as_of,
        spine_anchored: section.as_of.is_none(),
        aggregates,
        pivots,
        derived,
    })
}

/// Compiles `[features.NAME]` and adds it to the project.
pub(crate) fn add(
    b: &mut crate::compile::Builder<'_>,
    name: &str,
    entry: &crate::parse::Entry<FeatureSection>,
) {
    let raw = b.raw;
    let at = raw.location(entry.offset);
    let Some(asset_name) = b.claim(name, sluice_core::AssetKind::Features, &at) else {
        return;
    };
    let section = &entry.value;
    let Some(def) = compile_features(raw, name, section, &at, &mut b.diags) else {
        return;
    };
    let contract = b.contract(section.contract.as_ref());
    let fingerprint = crate::compile::fingerprint(&[
        "features",
        &serde_json::to_string(section).unwrap_or_default(),
        match &def.body {
            FeatureBody::Sql { sql, .. } => sql.trim(),
            FeatureBody::Declared(_) => "",
        },
    ]);
    let asset = b.add(
        asset_name,
        at,
        crate::compile::Definition::Features(Box::new(def)),
        fingerprint,
    );
    asset.contract = contract;
    asset.description = section.description.clone();
}
