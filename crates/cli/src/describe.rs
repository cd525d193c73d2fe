//! `sluice describe ASSET`: what an asset is — its kind, description, tags, inputs,
//! freshness and the columns of its newest version, as stored.

use std::process::ExitCode;

use sluice_runner::Workspace;

use crate::output::{opt, table};

/// `sluice describe`.
pub async fn describe(ws: &Workspace, asset: &str, json: bool) -> anyhow::Result<ExitCode> {
    let d = sluice_runner::asset_detail(ws, asset).await?;
    let state = &d.info.state;
    if json {
        let columns: Vec<_> = d
            .columns
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "type": c.data_type, "nullable": c.nullable}))
            .collect();
        let out = serde_json::json!({
            "name": state.name,
            "kind": state.kind,
            "description": d.info.description,
            "tags": d.info.tags,
            "inputs": d.inputs,
            "version": state.version,
            "rows": state.rows,
            "stale": state.stale,
            "reason": state.reason,
            "columns": columns,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} ({})", state.name, state.kind.as_str());
    if let Some(text) = &d.info.description {
        println!("  {text}");
    }
    if !d.info.tags.is_empty() {
        println!("tags: {}", d.info.tags.join(", "));
    }
    if !d.inputs.is_empty() {
        println!("reads: {}", d.inputs.join(", "));
    }
    println!(
        "version {}, {} rows, {}",
        opt(state.version),
        opt(state.rows),
        match &state.reason {
            Some(why) => format!("stale: {why}"),
            None => "up to date".to_string(),
        }
    );
    if d.columns.is_empty() {
        if state.version.is_none() {
            println!("no columns yet: `sluice run {}` builds it", state.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&["column", "type", "nullable"]);
    for c in &d.columns {
        t.add_row(vec![
            c.name.clone(),
            c.data_type.clone(),
            if c.nullable { "yes" } else { "no" }.to_string(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
