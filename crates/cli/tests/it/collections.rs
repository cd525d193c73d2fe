//! Collections end to end on the Python docs example: the chunk table is a
//! table SQL reads; a second run with nothing changed is up to date; editing one
//! document chunks only it again, deleting one removes its chunks, adding one
//! chunks only it; a collection of an asset's rows carries their metadata.

use std::path::Path;

use crate::common::*;

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
    let (ok, summary) = run_json(p, &[]);
    assert!(ok, "{summary}");
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
    let o = sluice(p, &["search", "pydocs", "x", "--mode", "vector"]);
    assert!(
        !o.status.success() && stderr(&o).contains("embeddings"),
        "{}",
        stderr(&o)
    );
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
    let (_, metrics) = server.request("GET", "/metrics", None, None);
    assert!(
        metrics.contains("sluice_vector_search_latency_seconds_count{collection=\"pydocs\"} 1"),
        "{metrics}"
    );
    drop(server);

    // A deleted document leaves the index.
    std::fs::remove_file(p.join("docs/tutorial/errors.rst.txt")).expect("delete");
    ok(p, &["run"]);
    let hits = search(p, &["How do I handle exceptions?", "--k", "10"]);
    assert!(
        hits.iter()
            .all(|(d, _)| d != "docs/tutorial/errors.rst.txt"),
        "{hits:?}"
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
    let started = std::time::Instant::now();
    ok(p, &["run", "pydocs"]);
    let full = started.elapsed();
    let classes = p.join("docs/tutorial/classes.rst.txt");
    let original = std::fs::read_to_string(&classes).expect("classes");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(11, |d| d.as_nanos() as u64);
    eprintln!("collection crash seed: {seed}");
    let mut state = seed;
    let window = (full.as_millis() as u64).max(200);
    let trials = 20;
    for trial in 1..=trials {
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
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(std::time::Duration::from_millis((state >> 33) % window));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // Whatever version answers, its hits are its own chunks.
        let out: serde_json::Value = serde_json::from_str(&ok(
            p,
            &[
                "search",
                "pydocs",
                "class inheritance",
                "--k",
                "5",
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
    let (ok_run, summary) = run_json(p, &["pydocs"]);
    assert!(ok_run, "{summary}");
    let out: serde_json::Value = serde_json::from_str(&ok(
        p,
        &["search", "pydocs", "crash test", "--k", "1", "--json"],
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
    let mut found = 0;
    let mut total = 0;
    let mut missed = vec![];
    for line in questions.lines().skip(1) {
        let (question, answers) = line.rsplit_once(',').expect("question,answer");
        let answers: Vec<&str> = answers.split('|').collect();
        let hits = search(p, &[question, "--k", "5"]);
        total += 1;
        if hits.iter().any(|(d, _)| answers.contains(&d.as_str())) {
            found += 1;
        } else {
            missed.push(question.to_string());
        }
    }
    assert!(total >= 30, "{total} questions");
    let recall = f64::from(found) / f64::from(total);
    eprintln!("text recall@5: {found}/{total} = {recall:.3}; missed: {missed:?}");
    assert!(
        recall >= 0.9,
        "text recall@5 {recall:.3}; missed: {missed:?}"
    );
}
