//! reStructuredText, read line by line the way docutils reads its blocks:
//! section titles by their adornment (levels in order of first use), literal
//! blocks after `::`, doctest blocks, bullet, enumerated and field lists, grid and
//! simple tables, and directives. No Rust crate parses reST; this reader covers
//! what decides where a chunk may end, not the whole of docutils.
//!
//! Directives: code ones (`code-block`, `doctest`, ...) are code; table ones are
//! tables; those that only steer Sphinx (`toctree`, `index`, `module`, ...) and
//! comments are dropped; any other (`note`, `function`, `class`, ...) gives its
//! argument as a paragraph and its body read again as reST, so a class's
//! methods and their examples keep their own blocks. Roles and hyperlink
//! markup are reduced to their text outside code.

use std::sync::LazyLock;

use regex::Regex;

use super::{BlockKind, Node, block};

/// Directives whose body is code.
const CODE: &[&str] = &[
    "code-block",
    "code",
    "sourcecode",
    "doctest",
    "testcode",
    "testoutput",
    "productionlist",
    "parsed-literal",
];

/// Directives whose body is a table.
const TABLES: &[&str] = &["csv-table", "list-table", "table"];

/// Directives that steer the build and hold nothing to search.
const DROPPED: &[&str] = &[
    "toctree",
    "index",
    "highlight",
    "module",
    "currentmodule",
    "sectionauthor",
    "moduleauthor",
    "codeauthor",
    "testsetup",
    "testcleanup",
    "include",
    "literalinclude",
    "image",
    "raw",
    "tabularcolumns",
    "contents",
    "only",
    "ifconfig",
    "default-role",
    "role",
    "c:namespace",
];

/// Reads a reST document.
pub(super) fn parse(text: &str) -> Vec<Node> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut reader = Reader {
        lines: &lines,
        at: 0,
        styles: vec![],
        nodes: vec![],
    };
    reader.read();
    reader.nodes
}

/// A title's adornment: its character and whether it has an overline.
type Style = (char, bool);

struct Reader<'a> {
    lines: &'a [&'a str],
    at: usize,
    /// Title styles in the order first seen: the index is the level - 1.
    styles: Vec<Style>,
    nodes: Vec<Node>,
}

impl<'a> Reader<'a> {
    fn line(&self, i: usize) -> Option<&'a str> {
        self.lines.get(i).copied()
    }

    fn read(&mut self) {
        // Whether the previous paragraph announced a literal block (`::`).
        let mut literal_next = false;
        while let Some(line) = self.line(self.at) {
            if line.trim().is_empty() {
                self.at += 1;
                continue;
            }
            let indent = indent_of(line);
            if literal_next {
                literal_next = false;
                if indent > 0 {
                    let body = self.indented(0);
                    self.push(BlockKind::Code, &body.join("\n"));
                    continue;
                }
            }
            if indent > 0 {
                // A block quote: its content, read again at its own indent.
                let body = self.indented(0);
                self.nested(&body);
                continue;
            }
            if self.title() || self.transition() {
                continue;
            }
            if let Some(caps) = DIRECTIVE.captures(line) {
                let name = caps[1].to_string();
                let argument = caps.get(2).map_or("", |m| m.as_str()).trim().to_string();
                self.at += 1;
                let body = self.indented(0);
                self.directive(&name, &argument, &body);
                continue;
            }
            if line.starts_with("..") {
                // A comment, a hyperlink target, a substitution: nothing to search.
                // A footnote or citation keeps its text.
                let footnote = FOOTNOTE.is_match(line);
                self.at += 1;
                let body = self.indented(0);
                if footnote {
                    let first = FOOTNOTE.replace(line, "").to_string();
                    let text = std::iter::once(first.as_str())
                        .chain(body.iter().map(|l| l.trim()))
                        .collect::<Vec<_>>()
                        .join("\n");
                    self.push(BlockKind::Paragraph, &inline(&text));
                }
                continue;
            }
            if line.starts_with("+-") || line.starts_with("+=") {
                let lines = self.until_blank();
                self.push(BlockKind::Table, &inline(&grid_rows(&lines)));
                continue;
            }
            if is_simple_table_border(line) {
                let lines = self.simple_table();
                self.push(BlockKind::Table, &inline(&simple_rows(&lines)));
                continue;
            }
            if let Some(marker) = list_marker(line) {
                let item = self.indented_after(marker);
                self.push(BlockKind::ListItem, &inline(&item.join("\n")));
                continue;
            }
            let paragraph = self.until_blank();
            let first = paragraph[0].trim_start();
            if first.starts_with(">>>") {
                self.push(BlockKind::Code, &paragraph.join("\n"));
                continue;
            }
            let mut text = paragraph.join("\n");
            if text.ends_with("::") {
                literal_next = true;
                text.truncate(text.len() - 2);
                let kept = text.trim_end().len();
                if kept < text.len() {
                    // `Text ::` shows as `Text`; `Text::` as `Text:`.
                    text.truncate(kept);
                } else {
                    text.push(':');
                }
            }
            let kind = if paragraph.iter().skip(1).any(|l| indent_of(l) > 0) {
                // A definition list item: its term and the indented definition.
                BlockKind::ListItem
            } else {
                BlockKind::Paragraph
            };
            self.push(kind, &inline(&text));
        }
    }

    fn push(&mut self, kind: BlockKind, text: &str) {
        self.nodes.extend(block(kind, text));
    }

    /// Reads `body` (already dedented) as reST of its own, under the current
    /// sections and with the same title levels.
    fn nested(&mut self, body: &[String]) {
        let text = dedent(body);
        let lines: Vec<&str> = text.lines().collect();
        let mut inner = Reader {
            lines: &lines,
            at: 0,
            styles: std::mem::take(&mut self.styles),
            nodes: vec![],
        };
        inner.read();
        self.styles = inner.styles;
        self.nodes.append(&mut inner.nodes);
    }

    fn directive(&mut self, name: &str, argument: &str, body: &[String]) {
        let bare = name.rsplit(':').next().unwrap_or(name);
        if DROPPED.contains(&name) || DROPPED.contains(&bare) {
            return;
        }
        // Options (`:linenos:`, `:header-rows: 1`) come first in the body.
        let content: Vec<String> = {
            let dedented = dedent(body);
            let lines: Vec<String> = dedented.lines().map(str::to_string).collect();
            let skip = lines
                .iter()
                .take_while(|l| OPTION.is_match(l.trim_start()))
                .count();
            lines[skip..].to_vec()
        };
        let content_text = content.join("\n");
        if CODE.contains(&bare) {
            self.push(BlockKind::Code, &content_text);
        } else if TABLES.contains(&bare) {
            let mut text = argument.to_string();
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(content_text.trim_matches('\n'));
            self.push(BlockKind::Table, &text);
        } else {
            if !argument.is_empty() {
                self.push(BlockKind::Paragraph, &inline(argument));
            }
            self.nested(&content);
        }
    }

    /// A section title at the current line (with or without an overline):
    /// pushes the heading and moves past it.
    fn title(&mut self) -> bool {
        let (Some(first), next) = (self.line(self.at), self.line(self.at + 1)) else {
            return false;
        };
        let after = self.line(self.at + 2);
        // Overline, title, underline.
        if let (Some(c), Some(title), Some(under)) = (adornment(first), next, after)
            && adornment(under) == Some(c)
            && !title.trim().is_empty()
            && adornment(title).is_none()
        {
            self.heading((c, true), title.trim());
            self.at += 3;
            return true;
        }
        // Title, underline: an underline about as long as the title (three
        // characters at least, so `--` under a word stays text).
        if let Some(under) = next
            && let Some(c) = adornment(under)
            && adornment(first).is_none()
            && under.chars().count() + 2 >= first.trim().chars().count()
        {
            self.heading((c, false), first.trim());
            self.at += 2;
            return true;
        }
        false
    }

    /// A transition (a lone adornment line) at the current line.
    fn transition(&mut self) -> bool {
        match self.line(self.at) {
            Some(line) if adornment(line).is_some() => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn heading(&mut self, style: Style, title: &str) {
        let level = match self.styles.iter().position(|s| *s == style) {
            Some(i) => i + 1,
            None => {
                self.styles.push(style);
                self.styles.len()
            }
        };
        self.nodes.push(Node::Heading {
            level: u8::try_from(level).unwrap_or(u8::MAX),
            title: inline(title),
        });
    }

    /// The non-blank lines from the current one.
    fn until_blank(&mut self) -> Vec<String> {
        let mut out = vec![];
        while let Some(line) = self.line(self.at) {
            if line.trim().is_empty() {
                break;
            }
            out.push(line.to_string());
            self.at += 1;
        }
        out
    }

    /// The lines from the current one that are blank or indented deeper than
    /// `column`, without trailing blank lines.
    fn indented(&mut self, column: usize) -> Vec<String> {
        let mut out = vec![];
        while let Some(line) = self.line(self.at) {
            if !line.trim().is_empty() && indent_of(line) <= column {
                break;
            }
            out.push(line.to_string());
            self.at += 1;
        }
        while out.last().is_some_and(|l| l.trim().is_empty()) {
            out.pop();
            self.at -= 1;
        }
        out
    }

    /// A list item: its first line, then every line indented to its content
    /// column (`marker` characters in) or blank.
    fn indented_after(&mut self, marker: usize) -> Vec<String> {
        let first = self.lines[self.at].to_string();
        self.at += 1;
        let mut out = vec![first];
        out.extend(self.indented(marker.saturating_sub(1)));
        out
    }

    /// A simple table: from its top border to the border that ends it (one
    /// followed by a blank line or the end of the text).
    fn simple_table(&mut self) -> Vec<String> {
        let mut out = vec![];
        let mut borders = 0;
        while let Some(line) = self.line(self.at) {
            out.push(line.to_string());
            self.at += 1;
            if is_simple_table_border(line) {
                borders += 1;
                let next_blank = self.line(self.at).is_none_or(|l| l.trim().is_empty());
                if borders >= 2 && next_blank {
                    break;
                }
            }
        }
        while out.last().is_some_and(|l| l.trim().is_empty()) {
            out.pop();
        }
        out
    }
}

/// A grid table's rows, one line each with cells separated by ` | `: its
/// borders cost the model many tokens and say nothing.
fn grid_rows(lines: &[String]) -> String {
    lines
        .iter()
        .filter(|l| !l.starts_with('+'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A simple table's rows, cut at the columns its first border marks, one line
/// each with cells separated by ` | `.
fn simple_rows(lines: &[String]) -> String {
    let Some(border) = lines.first() else {
        return String::new();
    };
    // Where each column starts: the start of each run of `=`.
    let starts: Vec<usize> = border
        .char_indices()
        .filter(|(i, c)| *c == '=' && (*i == 0 || border.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| i)
        .collect();
    lines
        .iter()
        .filter(|l| !is_simple_table_border(l) && !l.trim().is_empty())
        .map(|l| {
            starts
                .iter()
                .enumerate()
                .map(|(k, &start)| {
                    let end = starts.get(k + 1).copied().unwrap_or(usize::MAX);
                    let from = start.min(l.len());
                    let to = end.min(l.len());
                    l.get(from..to).unwrap_or("").trim()
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `.. name:: argument`.
static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\.\.\s+([A-Za-z][\w:+.-]*)::(?:\s+(.*))?$").unwrap_or_else(|e| panic!("{e}"))
});

/// `.. [1] text` or `.. [#note] text`.
static FOOTNOTE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\.\.\s+\[[^\]]+\]\s*").unwrap_or_else(|e| panic!("{e}")));

/// A directive option line: `:name:` or `:name: value`.
static OPTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^:[\w-]+:(\s|$)").unwrap_or_else(|e| panic!("{e}")));

/// A list item's marker and the space after it: `* `, `- `, `#. `, `12. `,
/// `(a) `, `:field: `.
static LIST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[*+\-•]|#\.|\d+[.)]|\(?[a-zA-Z0-9]\)|:[^:\s][^:]*:)(?:\s+|$)")
        .unwrap_or_else(|e| panic!("{e}"))
});

/// Interpreted text with a role: ``:func:`len` ``, ``:ref:`label <target>` ``.
static ROLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r":[A-Za-z][\w:.+-]*:`([^`]+)`").unwrap_or_else(|e| panic!("{e}")));

/// A hyperlink reference: `` `text <url>`_ `` or `` `text`_ ``.
static LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"`([^`<]+?)\s*(?:<[^>]*>)?`__?").unwrap_or_else(|e| panic!("{e}"))
});

fn list_marker(line: &str) -> Option<usize> {
    LIST.find(line).map(|m| m.end())
}

/// The character of an adornment line (four or more of one punctuation
/// character; three when it is all the line holds under a short title).
fn adornment(line: &str) -> Option<char> {
    let mut chars = line.chars();
    let c = chars.next()?;
    if !c.is_ascii_punctuation() || line.len() < 3 || !chars.all(|x| x == c) {
        return None;
    }
    Some(c)
}

/// `=====  =====`: two or more runs of `=` separated by spaces.
fn is_simple_table_border(line: &str) -> bool {
    line.starts_with('=')
        && line.chars().all(|c| c == '=' || c == ' ')
        && line.split_whitespace().count() >= 2
}

fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 8 } else { 1 })
        .sum()
}

/// `lines` with their common indent removed.
fn dedent(lines: &[String]) -> String {
    let common = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(common..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text with its roles and hyperlink markup reduced to what a reader sees.
fn inline(text: &str) -> String {
    let text = ROLE.replace_all(text, |caps: &regex::Captures<'_>| {
        let inner = &caps[1];
        let shown = match inner.find(" <") {
            Some(i) if inner.ends_with('>') => &inner[..i],
            _ => inner,
        };
        format!("`{}`", shown.trim_start_matches(['~', '!']))
    });
    let text = LINK.replace_all(&text, "$1");
    text.replace("``", "`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Block;

    fn texts(nodes: &[Node]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| match n {
                Node::Heading { level, title } => format!("h{level} {title}"),
                Node::Block(Block { kind, text }) => format!("{kind:?}: {text}"),
            })
            .collect()
    }

    #[test]
    fn titles_take_levels_in_order_of_first_use() {
        let rst = "*******\nClasses\n*******\n\nIntro.\n\nScopes\n======\n\nText.\n\nInner\n-----\n\nMore.\n\nNext\n====\n";
        assert_eq!(
            texts(&parse(rst)),
            [
                "h1 Classes",
                "Paragraph: Intro.",
                "h2 Scopes",
                "Paragraph: Text.",
                "h3 Inner",
                "Paragraph: More.",
                "h2 Next",
            ]
        );
    }

    #[test]
    fn literal_blocks_directives_and_roles() {
        let rst = "\
.. _tut-x:

Use :func:`len` and :ref:`the tutorial <tut-x>` for ``x``::

   def f():

       return 1

.. note::

   Be careful with `links <https://example.org>`_.

.. index:: pair: a; b

.. function:: split(sep=None)

   Return a list.

   >>> 'a b'.split()
   ['a', 'b']

.. code-block:: python
   :linenos:

   x = 1
";
        assert_eq!(
            texts(&parse(rst)),
            [
                "Paragraph: Use `len` and `the tutorial` for `x`:",
                "Code:    def f():\n\n       return 1",
                "Paragraph: Be careful with links.",
                "Paragraph: split(sep=None)",
                "Paragraph: Return a list.",
                "Code: >>> 'a b'.split()\n['a', 'b']",
                "Code: x = 1",
            ]
        );
    }

    #[test]
    fn lists_and_tables_are_whole_blocks() {
        let rst = "\
* one
  continued

  * nested
* two

+---+---+
| a | b |
+===+===+
| 1 | 2 |
+---+---+

=====  =====
col    col2
=====  =====
x      y

z      w
=====  =====

term
   its definition
";
        assert_eq!(
            texts(&parse(rst)),
            [
                "ListItem: * one\n  continued\n\n  * nested",
                "ListItem: * two",
                "Table: a | b\n1 | 2",
                "Table: col | col2\nx | y\nz | w",
                "ListItem: term\n   its definition",
            ]
        );
    }
}
