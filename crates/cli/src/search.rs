//! `sluice search`: the chunks of a collection that best answer a question.

use std::process::ExitCode;

use sluice_runner::{SearchMode, SearchResult, Workspace};

/// `sluice search COLLECTION QUESTION`: exit 1 when nothing matches.
pub(crate) async fn run(
    ws: &Workspace,
    collection: &str,
    question: &str,
    k: usize,
    mode: Option<&str>,
    filter: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mode = match mode {
        Some(word) => match SearchMode::from_word(word) {
            Some(mode) => Some(mode),
            None => anyhow::bail!("`--mode {word}`: use text, vector or hybrid"),
        },
        None => None,
    };
    let result = sluice_runner::search(ws, collection, question, k, mode, filter).await?;
    print(&result, json)?;
    Ok(if result.hits.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `sluice search`: each hit's rank, score, document and heading path, then
/// its text (or JSON).
fn print(result: &SearchResult, json: bool) -> anyhow::Result<()> {
    if json {
        let hits: Vec<serde_json::Value> = result
            .hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "chunk_id": h.chunk_id,
                    "document_id": h.document_id,
                    "heading_path": h.heading_path,
                    "score": h.score,
                    "text": h.text,
                    "metadata": h.metadata,
                })
            })
            .collect();
        let body = serde_json::json!({
            "version": result.version,
            "mode": result.mode.as_str(),
            "hits": hits,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    if result.hits.is_empty() {
        eprintln!("no chunk matches");
        return Ok(());
    }
    for (i, h) in result.hits.iter().enumerate() {
        println!(
            "{}. {} · {} · score {:.3}",
            i + 1,
            h.document_id,
            if h.heading_path.is_empty() {
                "(no heading)"
            } else {
                &h.heading_path
            },
            h.score
        );
        for line in h.text.lines().take(6) {
            println!("   {line}");
        }
        if h.text.lines().count() > 6 {
            println!("   …");
        }
    }
    Ok(())
}
