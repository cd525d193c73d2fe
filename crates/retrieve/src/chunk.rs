//! Chunking that respects structure. A heading starts a new chunk and its path
//! (`Tutorial > Classes > Inheritance`) goes with every chunk under it; the
//! blocks of a section are packed whole into chunks of at most `max_tokens`
//! (the heading path, prefixed for embedding, and the model's special tokens
//! included). A block is cut only when it alone is too large: code, tables and
//! lists between lines, running text between sentences, and a line or sentence
//! still too large between words. Consecutive chunks of a section share up to
//! `overlap` tokens of whole units from the end of the one before.

use unicode_segmentation::UnicodeSegmentation;

use crate::doc::{Block, BlockKind, Node};
use crate::tokens::Tokens;

/// How large chunks are, in the model's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// The most tokens a chunk's embedding input may have (all-MiniLM-L6-v2
    /// reads 256).
    pub max_tokens: usize,
    /// Tokens of the previous chunk repeated at the start of the next, in whole
    /// units (blocks, lines or sentences).
    pub overlap: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            max_tokens: 256,
            overlap: 32,
        }
    }
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The titles of the sections it is in, outermost first.
    pub headings: Vec<String>,
    /// Its text, as the document has it.
    pub text: String,
    /// Its size in tokens, without the heading path or special tokens.
    pub tokens: usize,
}

impl Chunk {
    /// The heading path as one string: `Tutorial > Classes`.
    pub fn heading_path(&self) -> String {
        self.headings.join(" > ")
    }

    /// What the model embeds: the heading path, a blank line, the text.
    pub fn embedding_input(&self) -> String {
        embedding_input(&self.heading_path(), &self.text)
    }
}

/// The model's input for a chunk with heading path `path` and text `text`.
pub fn embedding_input(path: &str, text: &str) -> String {
    if path.is_empty() {
        text.to_string()
    } else {
        format!("{path}\n\n{text}")
    }
}

/// Cuts a document's nodes into chunks.
pub fn chunk(nodes: &[Node], tokens: &dyn Tokens, options: &ChunkOptions) -> Vec<Chunk> {
    let mut out = vec![];
    let mut path: Vec<(u8, String)> = vec![];
    let mut section: Vec<&Block> = vec![];
    for node in nodes {
        match node {
            Node::Heading { level, title } => {
                pack(&path, &section, tokens, options, &mut out);
                section.clear();
                while path.last().is_some_and(|(l, _)| l >= level) {
                    path.pop();
                }
                path.push((*level, title.clone()));
            }
            Node::Block(block) => section.push(block),
        }
    }
    pack(&path, &section, tokens, options, &mut out);
    out
}

/// A piece of a section that is never cut further: a whole block, or a line,
/// sentence or run of words of one too large.
struct Unit {
    text: String,
    tokens: usize,
    /// What joins it to the unit before it in the same chunk.
    joint: &'static str,
    /// Whether it is a whole list item (items of one list stay one per line).
    item: bool,
}

/// Packs one section's blocks into chunks.
fn pack(
    path: &[(u8, String)],
    blocks: &[&Block],
    tokens: &dyn Tokens,
    options: &ChunkOptions,
    out: &mut Vec<Chunk>,
) {
    if blocks.is_empty() {
        return;
    }
    let headings: Vec<String> = path.iter().map(|(_, t)| t.clone()).collect();
    let prefix = embedding_input(&headings.join(" > "), "");
    // The heading path costs tokens in every chunk; a path so long that it
    // leaves less than a quarter of the model's input still gets that quarter.
    let budget = options
        .max_tokens
        .saturating_sub(tokens.special() + tokens.count(&prefix))
        .max(options.max_tokens / 4)
        .max(1);
    let units: Vec<Unit> = blocks
        .iter()
        .flat_map(|b| units_of(b, tokens, budget))
        .collect();

    let mut current: Vec<&Unit> = vec![];
    let mut size = 0;
    for unit in &units {
        if !current.is_empty() && size + unit.tokens > budget {
            out.push(emit(&headings, &current, size));
            // The next chunk starts with the last units that fit in `overlap`
            // and leave room for this one.
            let mut kept = 0;
            let mut tail = 0;
            for u in current.iter().rev() {
                if tail + u.tokens > options.overlap || tail + u.tokens + unit.tokens > budget {
                    break;
                }
                tail += u.tokens;
                kept += 1;
            }
            current.drain(..current.len() - kept);
            size = tail;
        }
        current.push(unit);
        size += unit.tokens;
    }
    if !current.is_empty() {
        out.push(emit(&headings, &current, size));
    }
}

fn emit(headings: &[String], units: &[&Unit], size: usize) -> Chunk {
    let mut text = String::new();
    for (i, unit) in units.iter().enumerate() {
        if i > 0 {
            let items = unit.item && units[i - 1].item;
            text.push_str(if items { "\n" } else { unit.joint });
        }
        text.push_str(&unit.text);
    }
    Chunk {
        headings: headings.to_vec(),
        text,
        tokens: size,
    }
}

/// A block as units of at most `budget` tokens: itself when it fits, else cut
/// where its kind allows.
fn units_of(block: &Block, tokens: &dyn Tokens, budget: usize) -> Vec<Unit> {
    let whole = tokens.count(&block.text);
    if whole <= budget {
        return vec![Unit {
            text: block.text.clone(),
            tokens: whole,
            joint: "\n\n",
            item: block.kind == BlockKind::ListItem,
        }];
    }
    let mut units = vec![];
    match block.kind {
        BlockKind::Paragraph => {
            // Sentences, each with the whitespace after it trimmed; joined by a space.
            for sentence in block.text.split_sentence_bounds() {
                let sentence = sentence.trim();
                if !sentence.is_empty() {
                    cut(sentence, " ", tokens, budget, &mut units);
                }
            }
        }
        BlockKind::Code | BlockKind::Table | BlockKind::ListItem | BlockKind::Quote => {
            for line in block.text.lines() {
                cut(line, "\n", tokens, budget, &mut units);
            }
        }
    }
    // Lines and sentences that fit are regrouped into runs of at most
    // `budget`, so a long code block is a few chunks, not one per line.
    let mut grouped: Vec<Unit> = vec![];
    for unit in units {
        match grouped.last_mut() {
            Some(last) if last.tokens + unit.tokens <= budget && unit.joint != "\n\n" => {
                last.text.push_str(unit.joint);
                last.text.push_str(&unit.text);
                last.tokens += unit.tokens;
            }
            _ => grouped.push(unit),
        }
    }
    if let Some(first) = grouped.first_mut() {
        first.joint = "\n\n";
    }
    grouped
}

/// `piece` as one unit when it fits, else as runs of words that do.
fn cut(piece: &str, joint: &'static str, tokens: &dyn Tokens, budget: usize, out: &mut Vec<Unit>) {
    let n = tokens.count(piece);
    if n <= budget {
        out.push(Unit {
            text: piece.to_string(),
            tokens: n,
            joint,
            item: false,
        });
        return;
    }
    // Runs of words; a word too large alone (a URL, a path) between its
    // punctuation: the model splits there too, and a run of letters longer than
    // 100 characters is one unknown token to WordPiece.
    let mut run = String::new();
    let mut run_tokens = 0;
    let mut first = true;
    let words = piece.split_whitespace().flat_map(|word| {
        let parts: Vec<&str> = if tokens.count(word) > budget {
            word.split_inclusive(|c: char| c.is_ascii_punctuation())
                .collect()
        } else {
            vec![word]
        };
        let glued = parts.len() > 1;
        parts
            .into_iter()
            .enumerate()
            .map(move |(i, p)| (p, glued && i > 0))
    });
    for (word, glued) in words {
        let w = tokens.count(word);
        if !run.is_empty() && run_tokens + w > budget {
            out.push(Unit {
                text: std::mem::take(&mut run),
                tokens: run_tokens,
                joint: if first { joint } else { " " },
                item: false,
            });
            first = false;
            run_tokens = 0;
        }
        if !run.is_empty() && !glued {
            run.push(' ');
        }
        run.push_str(word);
        run_tokens += w;
    }
    if !run.is_empty() {
        out.push(Unit {
            text: run,
            tokens: run_tokens,
            joint: if first { joint } else { " " },
            item: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{Format, parse};
    use crate::tokens::Words;

    fn options(max_tokens: usize, overlap: usize) -> ChunkOptions {
        ChunkOptions {
            max_tokens,
            overlap,
        }
    }

    #[test]
    fn headings_start_chunks_and_make_the_path() {
        let md = "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### Linux\n\nApt.\n\n## Use\n\nCall it.\n";
        let chunks = chunk(&parse(Format::Markdown, md), &Words, &options(50, 0));
        let got: Vec<(String, &str)> = chunks
            .iter()
            .map(|c| (c.heading_path(), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Guide".to_string(), "Intro."),
                ("Guide > Install".to_string(), "Run it."),
                ("Guide > Install > Linux".to_string(), "Apt."),
                ("Guide > Use".to_string(), "Call it."),
            ]
        );
        assert_eq!(
            chunks[2].embedding_input(),
            "Guide > Install > Linux\n\nApt."
        );
    }

    #[test]
    fn blocks_pack_whole_and_overlap_by_whole_blocks() {
        // Five blocks of four words; 10 words a chunk; overlap of 4 words.
        let text = (1..=5)
            .map(|i| format!("block {i} has words"))
            .collect::<Vec<_>>()
            .join("\n\n");
        let chunks = chunk(&parse(Format::Text, &text), &Words, &options(10, 4));
        let got: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            got,
            [
                "block 1 has words\n\nblock 2 has words",
                "block 2 has words\n\nblock 3 has words",
                "block 3 has words\n\nblock 4 has words",
                "block 4 has words\n\nblock 5 has words",
            ]
        );
        assert!(chunks.iter().all(|c| c.tokens <= 10));
    }

    #[test]
    fn a_block_too_large_is_cut_where_its_kind_allows() {
        let code = format!(
            "```\n{}\n```",
            (1..=12)
                .map(|i| format!("line {i}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let chunks = chunk(&parse(Format::Markdown, &code), &Words, &options(10, 0));
        for c in &chunks {
            assert!(c.tokens <= 10, "{c:?}");
            assert!(!c.text.contains("line 1\nline") || c.text.lines().all(|l| !l.is_empty()));
        }
        let rejoined: Vec<&str> = chunks.iter().flat_map(|c| c.text.lines()).collect();
        assert_eq!(
            rejoined.len(),
            14,
            "every line of the fence, once: {rejoined:?}"
        );

        let paragraph = "One two three four. Five six seven eight. Nine ten eleven twelve.";
        let chunks = chunk(&parse(Format::Text, paragraph), &Words, &options(8, 0));
        let got: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            got,
            [
                "One two three four. Five six seven eight.",
                "Nine ten eleven twelve."
            ]
        );

        let sentence = "a b c d e f g h i j";
        let chunks = chunk(&parse(Format::Text, sentence), &Words, &options(4, 0));
        let got: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(got, ["a b c d", "e f g h", "i j"]);
    }
}
