//! Collections end to end on the Python docs example: the chunk table is a
//! table SQL reads; a second run with nothing changed is up to date; editing one
//! document chunks only it again and embeds only its chunks whose text changed,
//! deleting one removes its chunks from every search mode, adding one chunks
//! only it; a collection of an asset's rows carries their metadata; an
//! OpenAI-compatible embedding service is called in batches and retried.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// Chunks a run embedded.
fn embedded(summary: &serde_json::Value, name: &str) -> u64 {
    asset(summary, name)["collection"]["embedded"]
        .as_u64()
        .unwrap_or_else(|| panic!("embedded in {summary}"))
}

fn counts(summary: &serde_json::Value, name: &str) -> (u64, u64, u64, u64, u64) {
    let c = &asset(summary, name)["collection"];
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k} in {c}"));
    (
        n("documents"),
        n("added"),
        n("changed"),
        n("deleted"),
        n("chunked"),
    )
}

fn chunks_of(project: &Path, doc: &str) -> i64 {
    scalar(
        project,
        &format!("SELECT count(*) FROM pydocs WHERE document_id = '{doc}'"),
    )
}

#[test]
fn the_python_docs_are_chunked_and_kept_in_sync() {
    if !model_installed() {
        return;
    }
    let dir = example_copy("pydocs");
    let p = dir.path();
    let first = sluice(p, &["run", "--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&first)).expect("json");
    // Without a terminal, a long embedding says how far it is.
    let all = embedded(&summary, "pydocs");
    assert!(
        stderr(&first).contains(&format!("pydocs: {all} of {all} chunks embedded")),
        "{}",
        stderr(&first)
    );
    let docs = std::fs::read_dir(p.join("docs/tutorial"))
        .expect("tutorial")
        .count()
        + std::fs::read_dir(p.join("docs/faq")).expect("faq").count()
        + 2;
    let (documents, added, changed, deleted, chunked) = counts(&summary, "pydocs");
    // docs/faq/index.rst.txt is a title and a toctree: no chunk, not "added".
    let chunked_docs = docs as i64 - 1;
    assert_eq!(
        (documents, added, changed, deleted),
        (docs as u64, chunked_docs as u64, 0, 0)
    );
    let total = scalar(p, "SELECT count(*) FROM pydocs");
    assert_eq!(total as u64, chunked);
    assert!(
        total > 3 * docs as i64,
        "{total} chunks of {docs} documents"
    );
    // Sizes in the model's tokens: none over the model's 256 with the path.
    assert!(scalar(p, "SELECT max(tokens) FROM pydocs") <= 256);
    assert!(
        scalar(
            p,
            "SELECT count(*) FROM pydocs WHERE heading_path = 'Classes > A First Look at Classes > Class Objects'"
        ) >= 1
    );
    assert_eq!(scalar(p, "SELECT count(*) FROM pydocs_sizes"), chunked_docs);
    // Every chunk has its 384-d vector; chunks of equal text are embedded once.
    let distinct = scalar(p, "SELECT count(DISTINCT content_hash) FROM pydocs");
    assert_eq!(embedded(&summary, "pydocs") as i64, distinct);
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM pydocs WHERE embedding IS NULL OR array_length(embedding) <> 384"
        ),
        0
    );

    // Nothing changed: nothing is chunked again.
    let (_, summary) = run_json(p, &[]);
    assert_eq!(
        asset(&summary, "pydocs")["status"],
        "up_to_date",
        "{summary}"
    );

    // One document edited, one deleted, one added.
    let classes = p.join("docs/tutorial/classes.rst.txt");
    let classes_before = chunks_of(p, "docs/tutorial/classes.rst.txt");
    let text = std::fs::read_to_string(&classes).expect("classes");
    std::fs::write(
        &classes,
        text.replace(
            "Classes provide a means",
            "Classes, as sluice's test says, provide a means",
        ),
    )
    .expect("edit");
    let before_errors = chunks_of(p, "docs/tutorial/errors.rst.txt");
    assert!(before_errors > 0);
    std::fs::remove_file(p.join("docs/tutorial/errors.rst.txt")).expect("delete");
    std::fs::write(
        p.join("docs/tutorial/sluice.rst.txt"),
        "Sluice\n======\n\nA new page about pipelines.\n",
    )
    .expect("add");
    let (ok, summary) = run_json(p, &[]);
    assert!(ok, "{summary}");
    let (documents, added, changed, deleted, chunked) = counts(&summary, "pydocs");
    assert_eq!((documents, added, changed, deleted), (docs as u64, 1, 1, 1));
    let classes_chunks = chunks_of(p, "docs/tutorial/classes.rst.txt");
    assert_eq!(
        chunked as i64,
        classes_chunks + 1,
        "only the edited and the new document"
    );
    // Of the edited document, only the chunks whose text changed (the edit and
    // any overlap carrying it) are embedded again, and the new document's one.
    let embedded_now = embedded(&summary, "pydocs");
    assert!(
        (2..=4).contains(&embedded_now),
        "{embedded_now} embedded of {chunked} chunked"
    );
    assert_eq!(chunks_of(p, "docs/tutorial/errors.rst.txt"), 0);
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM pydocs WHERE text LIKE '%as sluice''s test says%'"
        ),
        1
    );
    assert_eq!(chunks_of(p, "docs/tutorial/sluice.rst.txt"), 1);
    assert_eq!(
        scalar(p, "SELECT count(*) FROM pydocs"),
        total - before_errors - classes_before + classes_chunks + 1,
        "every other document keeps its chunks"
    );
    // The new version's text index started from the previous version's: its
    // first segment is the previous one's file, linked, not written again.
    let indexes = p.join(".sluice/indexes/pydocs");
    let versions: Vec<u64> = std::fs::read_dir(&indexes)
        .expect("indexes")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix('v')?
                .parse()
                .ok()
        })
        .collect();
    let newest = versions.iter().max().expect("an index");
    let newest = indexes.join(format!("v{newest}")).join("text");
    let linked = std::fs::read_dir(&newest)
        .expect("text index")
        .filter_map(Result::ok)
        .filter(|e| {
            use std::os::unix::fs::MetadataExt as _;
            e.metadata().is_ok_and(|m| m.nlink() > 1)
        })
        .count();
    assert!(
        linked > 0,
        "{versions:?}: no file of the text index is shared"
    );
}

#[test]
fn a_collection_of_rows_carries_their_metadata() {
    if !model_installed() {
        return;
    }
    let toml = r#"
[project]
name = "reviews"

[sources.reviews]
path = "reviews.csv"

[collections.review_chunks]
from = "reviews"
id = "review_id"
text = "body"
metadata = ["product", "stars"]
max_tokens = 32
overlap = 4
"#;
    let csv = "review_id,product,stars,body\n\
        1,kettle,5,\"Boils fast. The handle stays cool. The lid opens wide enough to clean it.\"\n\
        2,kettle,2,\"Leaks at the spout after a month of daily use, and the seal cannot be replaced.\"\n\
        3,toaster,4,\n";
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        ("reviews.csv", csv.as_bytes()),
    ]);
    let p = dir.path();
    let (ok, summary) = run_json(p, &[]);
    assert!(ok, "{summary}");
    let (documents, added, _, _, chunked) = counts(&summary, "review_chunks");
    // Review 3 has no text: a document with no chunks, not "added".
    assert_eq!((documents, added), (3, 2));
    assert!(chunked >= 2, "{summary}");
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM review_chunks WHERE product = 'kettle' AND stars = 2"
        ),
        scalar(
            p,
            "SELECT count(*) FROM review_chunks WHERE document_id = '2'"
        )
    );
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM review_chunks WHERE document_id = '3'"
        ),
        0
    );

    // A metadata change alone re-chunks nothing, and the chunks carry the new value.
    std::fs::write(
        p.join("reviews.csv"),
        csv.replace("1,kettle,5", "1,kettle,4"),
    )
    .expect("edit");
    let (ok, summary) = run_json(p, &[]);
    assert!(ok, "{summary}");
    let (_, added, changed, _, chunked) = counts(&summary, "review_chunks");
    assert_eq!((added, changed, chunked), (0, 0, 0));
    assert_eq!(
        scalar(
            p,
            "SELECT min(stars) FROM review_chunks WHERE document_id = '1'"
        ),
        4
    );
}

#[test]
fn a_broken_collection_is_an_error_at_its_line() {
    let toml = "[project]\nname = \"x\"\n\n[collections.docs]\npath = \"docs/*.md\"\nformat = \"word\"\nid = \"x\"\n";
    let dir = project(&[("sluice.toml", toml.as_bytes())]);
    let o = sluice(dir.path(), &["check"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("sluice.toml:6:10") && err.contains("unknown format `word`"),
        "{err}"
    );
    assert!(err.contains("no `id` column"), "{err}");
}

/// `sluice search --json` parsed: (document ids, heading paths) of the hits.
fn search(p: &Path, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["search", "pydocs"];
    all.extend_from_slice(args);
    all.push("--json");
    let out: serde_json::Value = serde_json::from_str(&ok(p, &all)).expect("json");
    out["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["document_id"].as_str().unwrap_or_default().to_string(),
                h["heading_path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_python_docs_answer_text_searches() {
    if !model_installed() {
        return;
    }
    let dir = example_copy("pydocs");
    let p = dir.path();
    ok(p, &["run"]);
    let hits = search(p, &["How do I handle exceptions?", "--k", "5"]);
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].0, "docs/tutorial/errors.rst.txt", "{hits:?}");
    assert!(hits[0].1.starts_with("Errors and Exceptions"), "{hits:?}");
    // A filter is a SQL predicate over the chunk table.
    let faq = search(
        p,
        &[
            "exceptions",
            "--k",
            "3",
            "--filter",
            "document_id LIKE 'docs/faq/%'",
        ],
    );
    assert!(
        !faq.is_empty() && faq.iter().all(|(d, _)| d.starts_with("docs/faq/")),
        "{faq:?}"
    );
    // Query syntax in a question is words.
    assert!(!search(p, &["class: \"inheritance AND (", "--k", "3"]).is_empty());

    let o = sluice(
        p,
        &["search", "pydocs", "x", "--filter", "no_such_column = 1"],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("filter `no_such_column = 1`") && err.contains("no_such_column"),
        "{err}"
    );
    // By meaning: no word of the question needs to be in the answer.
    for mode in ["vector", "hybrid"] {
        let hits = search(
            p,
            &["How do I handle exceptions?", "--k", "5", "--mode", mode],
        );
        assert_eq!(hits.len(), 5, "{mode}: {hits:?}");
        assert_eq!(
            hits[0].0, "docs/tutorial/errors.rst.txt",
            "{mode}: {hits:?}"
        );
        let faq = search(
            p,
            &[
                "exceptions",
                "--k",
                "3",
                "--mode",
                mode,
                "--filter",
                "document_id LIKE 'docs/faq/%'",
            ],
        );
        assert!(
            faq.len() == 3 && faq.iter().all(|(d, _)| d.starts_with("docs/faq/")),
            "{mode}: {faq:?}"
        );
    }
    let o = sluice(p, &["search", "nope", "x"]);
    assert!(
        stderr(&o).contains("no collection is called `nope`"),
        "{}",
        stderr(&o)
    );

    // Over HTTP (reader role), timed into the search histogram.
    let server = Server::start_with(p, &["--no-scheduler"]);
    let (status, body) = server.request(
        "POST",
        "/v1/search/pydocs",
        None,
        Some(r#"{"question": "How do I handle exceptions?", "k": 2}"#),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["hits"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(
        v["hits"][0]["document_id"], "docs/tutorial/errors.rst.txt",
        "{v}"
    );
    assert!(v["hits"][0]["metadata"]["title"].is_string(), "{v}");
    let (status, body) = server.request(
        "POST",
        "/v1/search/pydocs",
        None,
        Some(r#"{"question": "x", "k": 0}"#),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.request(
        "POST",
        "/v1/search/nope",
        None,
        Some(r#"{"question": "x"}"#),
    );
    assert_eq!(status, 404, "{body}");
    // The dashboard's search page answers the same search.
    let (status, page) = server.request(
        "GET",
        "/search/pydocs?q=How+do+I+handle+exceptions%3F&mode=text",
        None,
        None,
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("ranked by text") && page.contains("docs/tutorial/errors.rst.txt"),
        "{page}"
    );
    let (status, _) = server.request("GET", "/search/nope", None, None);
    assert_eq!(status, 404);
    let (status, page) = server.request("GET", "/assets/pydocs", None, None);
    assert!(status == 200 && page.contains("/search/pydocs"), "{page}");
    let (_, metrics) = server.request("GET", "/metrics", None, None);
    assert!(
        metrics.contains("sluice_vector_search_latency_seconds_count{collection=\"pydocs\"} 1"),
        "{metrics}"
    );
    drop(server);

    // A deleted document leaves every index.
    std::fs::remove_file(p.join("docs/tutorial/errors.rst.txt")).expect("delete");
    ok(p, &["run"]);
    for mode in ["text", "vector", "hybrid"] {
        let hits = search(
            p,
            &["How do I handle exceptions?", "--k", "10", "--mode", mode],
        );
        assert_eq!(hits.len(), 10, "{mode}: {hits:?}");
        assert!(
            hits.iter()
                .all(|(d, _)| d != "docs/tutorial/errors.rst.txt"),
            "{mode}: {hits:?}"
        );
    }
}

#[test]
fn a_collection_without_embeddings_is_searched_by_text() {
    if !model_installed() {
        return;
    }
    let toml = "[project]\nname = \"notes\"\n\n[collections.notes]\npath = \"notes/*.md\"\nembedding = \"none\"\n";
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        (
            "notes/kettle.md",
            b"# Kettle\n\nThe kettle boils water in two minutes.\n",
        ),
    ]);
    let p = dir.path();
    let (ok_run, summary) = run_json(p, &[]);
    assert!(ok_run, "{summary}");
    assert_eq!(embedded(&summary, "notes"), 0);
    let o = sluice(p, &["search", "notes", "water", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sluice(p, &["search", "notes", "water", "--mode", "hybrid"]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("not embedded") && err.contains("--mode text"),
        "{err}"
    );
}

/// Real `sluice run` processes killed at random moments while a collection is
/// chunked and indexed: a search afterwards answers from a whole version (its
/// chunks and its index agree), and the next run makes the newest one whole.
#[test]
fn killed_indexing_leaves_a_searchable_version() {
    if !model_installed() {
        return;
    }
    let dir = example_copy("pydocs");
    let p = dir.path();
    ok(p, &["run", "pydocs"]);
    let classes = p.join("docs/tutorial/classes.rst.txt");
    let original = std::fs::read_to_string(&classes).expect("classes");
    // A trial's run: one document changed, so it is chunked, embedded, committed
    // and indexed again. Kills fall over twice its time, so about half land
    // while it runs, anywhere from start-up to the index's rename.
    std::fs::write(&classes, format!("{original}\n\nA timed edit.\n")).expect("edit");
    let started = std::time::Instant::now();
    ok(p, &["run", "pydocs"]);
    let one = started.elapsed();
    let mut kills = RandomKills::learning(Lcg::seeded("collection crash test"), one, 2, 1);
    // At least 20 trials, more (up to 40) until 5 kills have landed mid-run.
    let mut trial = 0;
    while trial < 20 || (kills.landed < 5 && trial < 40) {
        trial += 1;
        // Each trial changes one document, so the collection is chunked and
        // indexed again.
        std::fs::write(
            &classes,
            format!("{original}\n\nTrial {trial} of the crash test.\n"),
        )
        .expect("edit");
        let mut child = sluice_cmd(p)
            .args(["run", "pydocs"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        kills.kill(&mut child);
        // Whatever version answers, its hits (from both indexes) are its
        // own chunks.
        let out: serde_json::Value = serde_json::from_str(&ok(
            p,
            &[
                "search",
                "pydocs",
                "class inheritance",
                "--k",
                "5",
                "--mode",
                "hybrid",
                "--json",
            ],
        ))
        .expect("json");
        let version = out["version"].as_u64().expect("version");
        let hits = out["hits"].as_array().expect("hits");
        assert_eq!(hits.len(), 5, "trial {trial}: {out}");
        for h in hits {
            let id = h["chunk_id"].as_str().expect("chunk id");
            let sql = format!(
                "SELECT count(*) FROM pydocs WHERE chunk_id = '{id}' AND heading_path = '{}'",
                h["heading_path"]
                    .as_str()
                    .expect("path")
                    .replace('\'', "''")
            );
            let out = ok(
                p,
                &[
                    "query",
                    "--as-of",
                    &version.to_string(),
                    "--format",
                    "csv",
                    &sql,
                ],
            );
            assert_eq!(
                out.lines().nth(1).map(str::trim),
                Some("1"),
                "trial {trial}: hit {id} is a chunk of v{version}, the version that answered"
            );
        }
    }
    eprintln!(
        "{} of {trial} kills landed while the run ran (window {} ms, {} failed first)",
        kills.landed,
        kills.window_ms(),
        kills.failed
    );
    assert!(
        kills.landed >= 5,
        "only {} of {trial} kills landed mid-run",
        kills.landed
    );
    let (ok_run, summary) = run_json(p, &["pydocs"]);
    assert!(ok_run, "{summary}");
    let out: serde_json::Value = serde_json::from_str(&ok(
        p,
        &[
            "search",
            "pydocs",
            "crash test",
            "--k",
            "1",
            "--mode",
            "text",
            "--json",
        ],
    ))
    .expect("json");
    let newest: serde_json::Value =
        serde_json::from_str(&ok(p, &["history", "pydocs", "--json"])).expect("history");
    let newest = newest
        .as_array()
        .and_then(|a| a.iter().map(|v| v["version"].as_u64().unwrap_or(0)).max())
        .expect("versions");
    assert_eq!(out["version"].as_u64(), Some(newest), "{out}");
    assert_eq!(
        out["hits"][0]["document_id"], "docs/tutorial/classes.rst.txt",
        "{out}"
    );
}

/// The example's labelled questions (`questions.csv`, written by hand: each
/// question and the documents that answer it): text search finds an answering
/// document in its top 5 for most of them. The recall is printed; the floor
/// guards against a chunker or ranking change that loses answers.
#[test]
fn labelled_questions_find_their_documents() {
    if !model_installed() {
        return;
    }
    let dir = example_copy("pydocs");
    let p = dir.path();
    ok(p, &["run"]);
    let questions = std::fs::read_to_string(p.join("questions.csv")).expect("questions");
    let mut failed = vec![];
    let mut recalls = BTreeMap::new();
    for (mode, floor) in [("text", 0.8), ("vector", 0.85), ("hybrid", 0.9)] {
        let mut found = 0;
        let mut total = 0;
        let mut missed = vec![];
        for line in questions.lines().skip(1) {
            let (question, answers) = line.rsplit_once(',').expect("question,answer");
            let answers: Vec<&str> = answers.split('|').collect();
            let hits = search(p, &[question, "--k", "5", "--mode", mode]);
            total += 1;
            if hits.iter().any(|(d, _)| answers.contains(&d.as_str())) {
                found += 1;
            } else {
                missed.push(question.to_string());
            }
        }
        assert!(total >= 30, "{total} questions");
        let recall = f64::from(found) / f64::from(total);
        eprintln!("{mode} recall@5: {found}/{total} = {recall:.3}; missed: {missed:?}");
        if recall < floor {
            failed.push(format!("{mode} recall@5 {recall:.3} < {floor}"));
        }
        recalls.insert(mode, found);
    }
    // Fusing both rankings finds at least what either finds alone.
    for alone in ["text", "vector"] {
        if recalls["hybrid"] < recalls[alone] {
            failed.push(format!(
                "hybrid found {} answers, {alone} alone {}",
                recalls["hybrid"], recalls[alone]
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
}

/// What the stub embedding service received: each request's `Authorization`
/// header and inputs.
type Requests = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<String>)>>>;

/// An OpenAI-compatible `/v1/embeddings` on loopback. It answers its first
/// request 429 (`Retry-After: 0`), then each input with a bag of its words
/// hashed into 16 dimensions: equal texts get equal vectors.
fn embedding_service() -> (Requests, u16) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got: Requests = Requests::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for (n, socket) in listener.incoming().flatten().enumerate() {
            let mut r = BufReader::new(socket);
            let (mut length, mut auth) = (0, String::new());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = line["authorization:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0; length];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let inputs: Vec<String> = request["input"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            g.lock().expect("lock").push((auth, inputs.clone()));
            let answer = if n == 0 {
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
            } else {
                let data: Vec<serde_json::Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let mut v = vec![0.0_f64; 16];
                        for word in text
                            .split(|c: char| !c.is_alphanumeric())
                            .filter(|w| !w.is_empty())
                        {
                            let h = word
                                .to_lowercase()
                                .bytes()
                                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                                });
                            v[(h % 16) as usize] += 1.0;
                        }
                        serde_json::json!({"object": "embedding", "index": i, "embedding": v})
                    })
                    .collect();
                let body =
                    serde_json::json!({"object": "list", "data": data, "model": request["model"]})
                        .to_string();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = r.get_mut().write_all(answer.as_bytes());
        }
    });
    (got, port)
}

/// The Python glossary's terms as a CSV of `term,definition` (128 real
/// documents of a paragraph or a few, each on one line).
fn glossary_csv() -> String {
    let text = std::fs::read_to_string(repo().join("examples/pydocs/docs/glossary.rst.txt"))
        .expect("glossary");
    let mut terms: Vec<(String, String)> = vec![];
    for line in text.lines() {
        if let Some(term) = line
            .strip_prefix("   ")
            .filter(|t| !t.starts_with(' ') && !t.is_empty())
        {
            terms.push((term.to_string(), String::new()));
        } else if let (Some(body), Some((_, definition))) =
            (line.strip_prefix("      "), terms.last_mut())
        {
            // One line per document: the source reads CSV by lines.
            definition.push_str(body.trim());
            definition.push(' ');
        }
    }
    let quote = |s: &str| format!("\"{}\"", s.trim().replace('"', "\"\""));
    let mut csv = String::from("term,definition\n");
    for (term, definition) in &terms {
        csv.push_str(&format!("{},{}\n", quote(term), quote(definition)));
    }
    csv
}

#[test]
fn an_embedding_service_is_called_in_batches_and_retried() {
    if !model_installed() {
        return;
    }
    const KEY: &str = "sk-stub-secret-7f3a9";
    let (requests, port) = embedding_service();
    let toml = format!(
        r#"
[project]
name = "glossary"

[sources.glossary]
path = "glossary.csv"

[collections.terms]
from = "glossary"
id = "term"
text = "definition"
embedding = {{ url = "http://127.0.0.1:{port}/v1/embeddings", model = "stub-embed", key = "${{STUB_EMBED_KEY}}", batch = 16 }}
"#
    );
    let csv = glossary_csv();
    let documents = csv.lines().count() - 1;
    assert!(documents >= 100, "{documents} terms");
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        ("glossary.csv", csv.as_bytes()),
    ]);
    let p = dir.path();
    let run = |args: &[&str]| {
        sluice_cmd(p)
            .args(args)
            .env("STUB_EMBED_KEY", KEY)
            .output()
            .expect("sluice runs")
    };
    let o = run(&["run", "--json"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let first = embedded(&summary, "terms");
    assert_eq!(
        first as i64,
        scalar(p, "SELECT count(DISTINCT content_hash) FROM terms"),
        "{summary}"
    );
    let got = requests.lock().expect("lock").clone();
    // The first request was refused (429) and sent again; then batches of 16.
    assert_eq!(got[0].1, got[1].1, "the refused batch is sent again");
    let sent: usize = got[1..].iter().map(|(_, inputs)| inputs.len()).sum();
    assert_eq!(sent as u64, first, "each distinct chunk is sent once");
    assert_eq!(got.len() - 1, (first as usize).div_ceil(16), "{got:?}");
    assert!(
        got.iter()
            .all(|(auth, inputs)| auth == &format!("Bearer {KEY}") && inputs.len() <= 16),
        "{got:?}"
    );
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(KEY), "the key leaked: {text}");
    }
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM terms WHERE array_length(embedding) <> 16 OR embedding IS NULL"
        ),
        0
    );

    // One of the documents edited: only its chunk that changed is sent.
    let edited = csv.replace(
        "A tool that tries to convert Python 2.x code to Python 3.x code",
        "A retired tool that tried to convert Python 2.x code to Python 3.x code",
    );
    assert_ne!(edited, csv);
    std::fs::write(p.join("glossary.csv"), &edited).expect("edit");
    let before = requests.lock().expect("lock").len();
    let o = run(&["run", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let (_, added, changed, deleted, _) = counts(&summary, "terms");
    assert_eq!((added, changed, deleted), (0, 1, 0), "{summary}");
    let got = requests.lock().expect("lock").clone();
    let inputs: Vec<&String> = got[before..].iter().flat_map(|(_, i)| i).collect();
    assert_eq!(
        inputs.len() as u64,
        embedded(&summary, "terms"),
        "{inputs:?}"
    );
    assert!(
        !inputs.is_empty() && inputs.iter().all(|i| i.contains("A retired tool")),
        "{inputs:?}"
    );

    // The question is embedded by the same service: a chunk's own text finds it.
    let search_json = |args: &[&str]| -> serde_json::Value {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_str(&stdout(&o)).expect("json")
    };
    let question = "The default Python prompt of the interactive shell.  Often seen for code examples which can be executed interactively in the interpreter.";
    let hits = search_json(&[
        "search", "terms", question, "--mode", "vector", "--k", "1", "--json",
    ]);
    assert_eq!(hits["hits"][0]["document_id"], "``>>>``", "{hits}");
    assert!(
        hits["hits"][0]["score"].as_f64().unwrap_or(0.0) > 0.999,
        "{hits}"
    );

    // A deleted document leaves every search mode.
    let without: String = edited
        .lines()
        .filter(|l| !l.starts_with("\"``>>>``\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(p.join("glossary.csv"), without).expect("delete");
    let o = run(&["run", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for mode in ["text", "vector", "hybrid"] {
        let hits = search_json(&[
            "search", "terms", question, "--mode", mode, "--k", "5", "--json",
        ]);
        let hits = hits["hits"].as_array().expect("hits");
        assert_eq!(hits.len(), 5, "{mode}: {hits:?}");
        assert!(
            hits.iter().all(|h| h["document_id"] != "``>>>``"),
            "{mode}: {hits:?}"
        );
    }

    // Without the key's variable the search says which one is missing.
    let o = sluice(p, &["search", "terms", "x", "--mode", "vector"]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("STUB_EMBED_KEY"),
        "{err}"
    );
}

#[test]
fn another_model_makes_the_collection_embed_again() {
    if !model_installed() {
        return;
    }
    // A copy of the model cache, so that the test can change the model's files.
    let models = tempfile::tempdir().expect("tempdir");
    let installed = std::env::var_os("SLUICE_MODELS")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/sluice/models")
        })
        .join("all-minilm-l6-v2");
    let model = models.path().join("all-minilm-l6-v2");
    std::fs::create_dir_all(&model).expect("mkdir");
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(installed.join(f), model.join(f)).expect("copy the model");
    }
    let toml = "[project]\nname = \"notes\"\n\n[collections.notes]\npath = \"notes/*.md\"\n";
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        (
            "notes/kettle.md",
            b"# Kettle\n\nThe kettle boils water in two minutes.\n",
        ),
        (
            "notes/toaster.md",
            b"# Toaster\n\nThe toaster browns both sides evenly.\n",
        ),
    ]);
    let p = dir.path();
    let run = || {
        let o = sluice_cmd(p)
            .args(["run", "--json"])
            .env("SLUICE_MODELS", models.path())
            .output()
            .expect("sluice runs");
        assert!(o.status.success(), "{}", stderr(&o));
        let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        summary
    };
    assert_eq!(embedded(&run(), "notes"), 2);
    assert_eq!(asset(&run(), "notes")["status"], "up_to_date");
    // The same bytes written again: the run looks, but nothing is embedded.
    let tokenizer = std::fs::read(model.join("tokenizer.json")).expect("read");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(model.join("tokenizer.json"), &tokenizer).expect("rewrite");
    let summary = run();
    assert_eq!(embedded(&summary, "notes"), 0, "{summary}");
    // Another tokenizer file (here: the same JSON with a trailing newline) is
    // another model: every chunk is embedded again.
    let mut other = tokenizer.clone();
    other.push(b'\n');
    std::fs::write(model.join("tokenizer.json"), other).expect("edit");
    // Until the collection is run again, a question embedded by the new model
    // is not compared with the old model's vectors; text search still answers.
    let search = |mode: &str| {
        sluice_cmd(p)
            .args(["search", "notes", "kettle", "--mode", mode, "--json"])
            .env("SLUICE_MODELS", models.path())
            .output()
            .expect("sluice runs")
    };
    let o = search("vector");
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("embedded by") && stderr(&o).contains("sluice run notes"),
        "{}",
        stderr(&o)
    );
    assert!(search("text").status.success());
    let summary = run();
    assert_eq!(embedded(&summary, "notes"), 2, "{summary}");
    let (_, _, changed, _, _) = counts(&summary, "notes");
    assert_eq!(changed, 2, "{summary}");
    let o = search("vector");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("kettle.md"), "{}", stdout(&o));
}
