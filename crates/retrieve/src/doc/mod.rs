//! A document's structure: the headings and blocks a chunker must not cut
//! through, read from Markdown, reStructuredText, HTML or plain text.
//!
//! Each format's reader turns the text into a flat list of [`Node`]s in reading
//! order. A heading opens a section at its level; a block is a unit the chunker
//! keeps whole when it fits (a paragraph, a list item with its nested lists, a
//! code block, a table). Blocks keep their source text where it reads well
//! (Markdown, code), and drop markup that only gets in the way of retrieval (reST
//! roles and comments, HTML tags, navigation and scripts).

mod html;
mod markdown;
mod rst;

use std::path::Path;

/// The markup a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CommonMark with tables (`.md`, `.markdown`).
    Markdown,
    /// reStructuredText (`.rst`, `.rst.txt`, `.rest`).
    Rst,
    /// HTML (`.html`, `.htm`).
    Html,
    /// Plain text: paragraphs separated by blank lines (`.txt`, anything else).
    Text,
}

impl Format {
    /// The format of a file, by its name's ending.
    pub fn of_path(path: &Path) -> Format {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.ends_with(".md") || name.ends_with(".markdown") {
            Format::Markdown
        } else if name.ends_with(".rst") || name.ends_with(".rst.txt") || name.ends_with(".rest") {
            Format::Rst
        } else if name.ends_with(".html") || name.ends_with(".htm") {
            Format::Html
        } else {
            Format::Text
        }
    }

    /// The format named by a project file's `format` word.
    pub fn from_word(word: &str) -> Option<Format> {
        match word {
            "markdown" | "md" => Some(Format::Markdown),
            "rst" | "restructuredtext" => Some(Format::Rst),
            "html" => Some(Format::Html),
            "text" | "txt" => Some(Format::Text),
            _ => None,
        }
    }

    /// The word for the format in messages and in the chunk table.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Rst => "rst",
            Format::Html => "html",
            Format::Text => "text",
        }
    }
}

/// What a block is, which decides where it may be cut when it alone is larger
/// than a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Running text: cut at sentences, then words.
    Paragraph,
    /// One item of a list, nested lists included: cut at lines.
    ListItem,
    /// A code or literal block: cut at lines, never inside one.
    Code,
    /// A table: cut between rows.
    Table,
    /// A quotation, admonition or directive body: cut at lines.
    Quote,
}

/// A unit of a document the chunker keeps whole when it fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What it is.
    pub kind: BlockKind,
    /// Its text, without trailing blank lines.
    pub text: String,
}

/// One step of a document in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A heading: opens a section at `level` (1 is the outermost) and closes
    /// every open section at that level or deeper.
    Heading {
        /// 1 for the title, 2 for its sections, and so on.
        level: u8,
        /// The heading's text, without markup.
        title: String,
    },
    /// A block of the current section.
    Block(Block),
}

/// Reads `text` as a document in `format`.
pub fn parse(format: Format, text: &str) -> Vec<Node> {
    match format {
        Format::Markdown => markdown::parse(text),
        Format::Rst => rst::parse(text),
        Format::Html => html::parse(text),
        Format::Text => plain(text),
    }
}

/// Plain text: each run of non-blank lines is a paragraph.
fn plain(text: &str) -> Vec<Node> {
    paragraphs(text)
        .map(|p| {
            Node::Block(Block {
                kind: BlockKind::Paragraph,
                text: p,
            })
        })
        .collect()
}

/// The runs of non-blank lines of `text`, each joined by newlines.
fn paragraphs(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split("\n\n")
        .flat_map(|part| part.split("\r\n\r\n"))
        .map(|p| {
            p.lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|p| !p.is_empty())
}

/// A block of `kind` holding `text` trimmed, or nothing when it is blank.
fn block(kind: BlockKind, text: &str) -> Option<Node> {
    let text = text.trim_end();
    let text = text.trim_start_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return None;
    }
    Some(Node::Block(Block {
        kind,
        text: text.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_file_names() {
        assert_eq!(Format::of_path(Path::new("a/b.md")), Format::Markdown);
        assert_eq!(
            Format::of_path(Path::new("tutorial/classes.rst.txt")),
            Format::Rst
        );
        assert_eq!(Format::of_path(Path::new("x.HTML")), Format::Html);
        assert_eq!(Format::of_path(Path::new("notes.txt")), Format::Text);
    }

    #[test]
    fn plain_text_is_paragraphs() {
        let nodes = parse(Format::Text, "one\ntwo\n\n\n  \nthree\n");
        let texts: Vec<_> = nodes
            .iter()
            .map(|n| match n {
                Node::Block(b) => b.text.as_str(),
                Node::Heading { .. } => "",
            })
            .collect();
        assert_eq!(texts, ["one\ntwo", "three"]);
    }
}
