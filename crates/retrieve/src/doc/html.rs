//! HTML by `tl` (already the crawl source's parser): headings, paragraphs, list
//! items, `pre` blocks and tables become nodes; navigation, headers, footers,
//! sidebars, scripts, styles and forms are left out, as are elements marked as
//! navigation or hidden by their `role` or `aria-hidden`.

use tl::{HTMLTag, NodeHandle, Parser};

use super::{BlockKind, Node, block};

/// Elements that are a page's furniture, not its content.
const SKIPPED: &[&str] = &[
    "head", "nav", "header", "footer", "aside", "script", "style", "noscript", "form", "template",
    "svg", "button", "iframe", "select", "object", "canvas",
];

/// Roles of furniture (`<div role="navigation">`, as Sphinx writes its bars).
const SKIPPED_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "search",
    "complementary",
];

/// Elements whose content starts on a line of its own inside another block.
const BLOCK_LEVEL: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "pre",
    "table",
    "tr",
    "blockquote",
    "section",
    "article",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
];

/// Reads an HTML document (or fragment).
pub(super) fn parse(text: &str) -> Vec<Node> {
    let Ok(dom) = tl::parse(text, tl::ParserOptions::default()) else {
        return super::plain(text);
    };
    let parser = dom.parser();
    let mut walker = Walker {
        parser,
        nodes: vec![],
        loose: String::new(),
    };
    for handle in dom.children() {
        walker.visit(*handle);
    }
    walker.flush();
    walker.nodes
}

struct Walker<'p, 'a> {
    parser: &'p Parser<'a>,
    nodes: Vec<Node>,
    /// Text met directly in a container, not in a block of its own.
    loose: String,
}

impl Walker<'_, '_> {
    fn visit(&mut self, handle: NodeHandle) {
        let Some(node) = handle.get(self.parser) else {
            return;
        };
        match node {
            tl::Node::Raw(raw) => self.loose.push_str(&raw.as_utf8_str()),
            tl::Node::Comment(_) => {}
            tl::Node::Tag(tag) => self.tag(tag),
        }
    }

    fn tag(&mut self, tag: &HTMLTag<'_>) {
        let name = tag.name().as_utf8_str().to_ascii_lowercase();
        if skipped(tag, &name) {
            return;
        }
        let kind = match name.as_str() {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.flush();
                let level = name[1..].parse().unwrap_or(1);
                let title = collapse(&text(tag, self.parser)).replace('¶', "");
                if !title.trim().is_empty() {
                    self.nodes.push(Node::Heading {
                        level,
                        title: title.trim().to_string(),
                    });
                }
                return;
            }
            "p" | "dt" | "dd" | "figcaption" | "address" | "summary" => BlockKind::Paragraph,
            "li" => BlockKind::ListItem,
            "blockquote" => BlockKind::Quote,
            "pre" => {
                self.flush();
                let code = decode(&raw_text(tag, self.parser));
                self.nodes.extend(block(BlockKind::Code, &code));
                return;
            }
            "table" => {
                self.flush();
                let rows = table(tag, self.parser);
                self.nodes.extend(block(BlockKind::Table, &rows));
                return;
            }
            _ => {
                // A container (or inline markup met outside a block): its
                // children, in order.
                let block_level = BLOCK_LEVEL.contains(&name.as_str());
                if block_level {
                    self.flush();
                }
                let children: Vec<NodeHandle> = tag.children().top().iter().copied().collect();
                for child in children {
                    self.visit(child);
                }
                if block_level {
                    self.flush();
                }
                return;
            }
        };
        self.flush();
        let content = lines(&text(tag, self.parser));
        self.nodes.extend(block(kind, &content));
    }

    /// Loose text met so far, as a paragraph.
    fn flush(&mut self) {
        let loose = std::mem::take(&mut self.loose);
        let content = lines(&decode(&loose));
        self.nodes.extend(block(BlockKind::Paragraph, &content));
    }
}

fn skipped(tag: &HTMLTag<'_>, name: &str) -> bool {
    if SKIPPED.contains(&name) {
        return true;
    }
    let attrs = tag.attributes();
    let attr = |key: &str| {
        attrs
            .get(key)
            .flatten()
            .map(|v| v.as_utf8_str().to_ascii_lowercase())
    };
    attr("role").is_some_and(|r| SKIPPED_ROLES.contains(&r.as_str()))
        || attr("aria-hidden").as_deref() == Some("true")
        || attr("hidden").is_some()
}

/// An element's text, decoded, with a line break where a block-level child
/// starts and furniture left out.
fn text(tag: &HTMLTag<'_>, parser: &Parser<'_>) -> String {
    let mut out = String::new();
    collect(tag, parser, &mut out);
    out
}

fn collect(tag: &HTMLTag<'_>, parser: &Parser<'_>, out: &mut String) {
    for handle in tag.children().top().iter() {
        match handle.get(parser) {
            Some(tl::Node::Raw(raw)) => out.push_str(&decode(&raw.as_utf8_str())),
            Some(tl::Node::Tag(child)) => {
                let name = child.name().as_utf8_str().to_ascii_lowercase();
                if skipped(child, &name) {
                    continue;
                }
                let block_level = BLOCK_LEVEL.contains(&name.as_str());
                if block_level {
                    out.push('\n');
                }
                if name == "li" {
                    out.push_str("- ");
                }
                collect(child, parser, out);
                if block_level {
                    out.push('\n');
                }
            }
            _ => {}
        }
    }
}

/// A `pre` element's text as written (tags inside, such as highlighting
/// spans, left out).
fn raw_text(tag: &HTMLTag<'_>, parser: &Parser<'_>) -> String {
    tag.inner_text(parser).into_owned()
}

/// A table's rows, one per line, cells separated by ` | `.
fn table(tag: &HTMLTag<'_>, parser: &Parser<'_>) -> String {
    let mut rows = vec![];
    rows_of(tag, parser, &mut rows);
    rows.join("\n")
}

fn rows_of(tag: &HTMLTag<'_>, parser: &Parser<'_>, rows: &mut Vec<String>) {
    for handle in tag.children().top().iter() {
        let Some(tl::Node::Tag(child)) = handle.get(parser) else {
            continue;
        };
        let name = child.name().as_utf8_str().to_ascii_lowercase();
        if name == "tr" {
            let cells: Vec<String> = child
                .children()
                .top()
                .iter()
                .filter_map(|h| match h.get(parser) {
                    Some(tl::Node::Tag(cell)) => {
                        let n = cell.name().as_utf8_str().to_ascii_lowercase();
                        (n == "td" || n == "th").then(|| collapse(&text(cell, parser)))
                    }
                    _ => None,
                })
                .collect();
            if !cells.is_empty() {
                rows.push(cells.join(" | "));
            }
        } else if matches!(name.as_str(), "thead" | "tbody" | "tfoot") {
            rows_of(child, parser, rows);
        }
    }
}

fn decode(s: &str) -> String {
    html_escape::decode_html_entities(s).replace('\u{a0}', " ")
}

/// Runs of whitespace as one space.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each line's whitespace collapsed; blank lines dropped.
fn lines(s: &str) -> String {
    s.lines()
        .map(collapse)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Block;

    #[test]
    fn content_without_furniture() {
        let html = r##"<!doctype html><html><head><title>T</title><script>var x = "<p>no</p>";</script></head>
<body><div class="related" role="navigation"><ul><li>Index</li></ul></div>
<nav><a href="/">Home</a></nav>
<div class="body"><section><h1>Classes<a class="headerlink" href="#c">¶</a></h1>
<p>Classes   bundle <em>data</em> &amp; functions.</p>
<ul><li>one<ul><li>nested</li></ul></li><li>two</li></ul>
<pre><span class="k">def</span> f():
    return 1</pre>
<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>
Loose text.
</section></div><footer>© 2024</footer></body></html>"##;
        let nodes = parse(html);
        let texts: Vec<String> = nodes
            .iter()
            .map(|n| match n {
                Node::Heading { level, title } => format!("h{level} {title}"),
                Node::Block(Block { kind, text }) => format!("{kind:?}: {text}"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "h1 Classes",
                "Paragraph: Classes bundle data & functions.",
                "ListItem: one\n- nested",
                "ListItem: two",
                "Code: def f():\n    return 1",
                "Table: a | b\n1 | 2",
                "Paragraph: Loose text.",
            ]
        );
    }
}
