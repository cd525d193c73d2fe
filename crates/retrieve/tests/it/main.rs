//! The chunker on golden documents (`testdata/chunks/`) with the model's real
//! tokenizer: each case's chunks are pinned in `<case>.chunks.txt`
//! (`SLUICE_UPDATE_GOLDEN=1` rewrites them; review the diff), and every case is
//! held to the invariants a chunker must keep whatever its input.

mod embed;

use std::path::{Path, PathBuf};

use sluice_retrieve::{
    Block, BlockKind, ChunkOptions, Format, Node, Tokens, WordPiece, chunk, parse,
};

/// The golden cases' sizes: small, so that every case packs, cuts and overlaps.
const OPTIONS: ChunkOptions = ChunkOptions {
    max_tokens: 64,
    overlap: 16,
};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/chunks")
}

fn tokenizer() -> WordPiece {
    WordPiece::open(&testdata().join("tokenizer.json")).expect("tokenizer.json")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("testdata/chunks")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "md" || e == "rst" || e == "html")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "golden cases: {cases:?}");
    cases
}

fn update() -> bool {
    std::env::var_os("SLUICE_UPDATE_GOLDEN").is_some_and(|v| v != "0" && !v.is_empty())
}

#[test]
fn golden_chunks() {
    let tokens = tokenizer();
    let mut failures = vec![];
    for case in cases() {
        let text = std::fs::read_to_string(&case).expect("case");
        let chunks = chunk(&parse(Format::of_path(&case), &text), &tokens, &OPTIONS);
        let mut rendered = String::new();
        for (i, c) in chunks.iter().enumerate() {
            rendered.push_str(&format!(
                "=== chunk {} · {} · {} tokens\n{}\n",
                i + 1,
                c.heading_path(),
                c.tokens,
                c.text
            ));
        }
        let golden = case.with_extension(format!(
            "{}.chunks.txt",
            case.extension().and_then(|e| e.to_str()).unwrap_or("")
        ));
        if update() {
            std::fs::write(&golden, &rendered).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want != rendered {
            failures.push(format!(
                "{}: chunks differ from {} (set SLUICE_UPDATE_GOLDEN=1 and review the diff)\n{rendered}",
                case.display(),
                golden.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The blocks of a document.
fn blocks(nodes: &[Node]) -> Vec<&Block> {
    nodes
        .iter()
        .filter_map(|n| match n {
            Node::Block(b) => Some(b),
            Node::Heading { .. } => None,
        })
        .collect()
}

/// What every chunking must keep: no chunk over the model's input (unless its
/// heading path alone takes more than three quarters of it: the text then
/// keeps a quarter); no block cut that fits in a chunk; every word of every
/// block in the chunks, in order.
fn check_invariants(
    name: &str,
    format: Format,
    text: &str,
    tokens: &WordPiece,
    options: &ChunkOptions,
) {
    let nodes = parse(format, text);
    let chunks = chunk(&nodes, tokens, options);
    for c in &chunks {
        let input = tokens.count(&c.embedding_input()) + tokens.special();
        let path = tokens.count(&c.heading_path()) + tokens.special();
        if path * 4 > options.max_tokens * 3 {
            assert!(c.tokens <= options.max_tokens / 4, "{name}: {c:?}");
            continue;
        }
        assert!(
            input <= options.max_tokens,
            "{name}: a chunk of {input} tokens, over {}: {c:?}",
            options.max_tokens
        );
    }
    for b in blocks(&nodes) {
        let fits = tokens.count(&b.text) + tokens.special() + 40 <= options.max_tokens;
        if fits && matches!(b.kind, BlockKind::Code | BlockKind::Table) {
            assert!(
                chunks.iter().any(|c| c.text.contains(&b.text)),
                "{name}: a {:?} block that fits was cut: {:?}",
                b.kind,
                b.text
            );
        }
    }
    // Words, and words cut at their punctuation (a URL too long for a chunk is
    // cut there).
    let pieces = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .flat_map(|w| w.split_inclusive(|c: char| c.is_ascii_punctuation()))
            .map(str::to_string)
            .collect()
    };
    let words_in: Vec<String> = blocks(&nodes)
        .iter()
        .flat_map(|b| pieces(&b.text))
        .collect();
    let words_out: Vec<String> = chunks.iter().flat_map(|c| pieces(&c.text)).collect();
    let mut at = 0;
    for w in &words_in {
        match words_out[at..].iter().position(|o| o == w) {
            Some(i) => at += i + 1,
            None => panic!("{name}: the word {w:?} is missing from the chunks (or out of order)"),
        }
    }
}

#[test]
fn chunks_keep_their_invariants() {
    let tokens = tokenizer();
    for case in cases() {
        let text = std::fs::read_to_string(&case).expect("case");
        let name = case.display().to_string();
        for options in [
            OPTIONS,
            ChunkOptions {
                max_tokens: 128,
                overlap: 0,
            },
            ChunkOptions::default(),
        ] {
            check_invariants(&name, Format::of_path(&case), &text, &tokens, &options);
        }
    }
}

/// The example's Python documentation (reST), every file, at the default sizes
/// and at small ones.
#[test]
fn the_python_docs_keep_the_invariants() {
    let tokens = tokenizer();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pydocs/docs");
    let pattern = format!("{}/**/*.rst.txt", docs.display());
    let files: Vec<PathBuf> = glob::glob(&pattern)
        .expect("glob")
        .map(|p| p.expect("path"))
        .collect();
    assert!(files.len() >= 20, "{files:?}");
    let mut chunks = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("doc");
        let name = file.display().to_string();
        for options in [ChunkOptions::default(), OPTIONS] {
            check_invariants(&name, Format::Rst, &text, &tokens, &options);
        }
        chunks += chunk(
            &parse(Format::Rst, &text),
            &tokens,
            &ChunkOptions::default(),
        )
        .len();
    }
    assert!(
        chunks > files.len(),
        "{chunks} chunks of {} files",
        files.len()
    );
}
