//! Markdown (CommonMark with tables) by `pulldown-cmark`: each top-level element
//! is a block holding its source text, so code fences, table pipes and list
//! markers stay as written; a list is one block per top-level item, its nested
//! lists included.

use pulldown_cmark::{Event, Options, Parser, Tag};

use super::{BlockKind, Node, block};

/// Reads a Markdown document.
pub(super) fn parse(text: &str) -> Vec<Node> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut nodes = vec![];
    // Open elements; 0 is the document's top level.
    let mut depth = 0usize;
    let mut heading: Option<(u8, String)> = None;
    let mut in_list = false;
    let take = |nodes: &mut Vec<Node>, kind, range: std::ops::Range<usize>| {
        let start = line_start(text, range.start);
        nodes.extend(block(kind, &text[start..range.end]));
    };
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    match tag {
                        Tag::Heading { level, .. } => heading = Some((level as u8, String::new())),
                        Tag::List(_) => in_list = true,
                        Tag::CodeBlock(_) => take(&mut nodes, BlockKind::Code, range),
                        Tag::Table(_) => take(&mut nodes, BlockKind::Table, range),
                        Tag::BlockQuote(_) => take(&mut nodes, BlockKind::Quote, range),
                        Tag::HtmlBlock => nodes.extend(super::html::parse(&text[range])),
                        // Front matter is about the file, not its content.
                        Tag::MetadataBlock(_) => {}
                        _ => take(&mut nodes, BlockKind::Paragraph, range),
                    }
                } else if depth == 1 && in_list && matches!(tag, Tag::Item) {
                    take(&mut nodes, BlockKind::ListItem, range);
                }
                depth += 1;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_list = false;
                    if let Some((level, title)) = heading.take() {
                        nodes.push(Node::Heading {
                            level,
                            title: title.trim().to_string(),
                        });
                    }
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, title)) = heading.as_mut() {
                    title.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, title)) = heading.as_mut() {
                    title.push(' ');
                }
            }
            _ => {}
        }
    }
    nodes
}

/// Where the line holding byte `at` starts, when only spaces come before `at`
/// on it (an indented code block's first line keeps its indent).
fn line_start(text: &str, at: usize) -> usize {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    if text[start..at].chars().all(|c| c == ' ' || c == '\t') {
        start
    } else {
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Block;

    fn blocks(nodes: &[Node]) -> Vec<(BlockKind, &str)> {
        nodes
            .iter()
            .filter_map(|n| match n {
                Node::Block(Block { kind, text }) => Some((*kind, text.as_str())),
                Node::Heading { .. } => None,
            })
            .collect()
    }

    #[test]
    fn top_level_elements_keep_their_source() {
        let md = "---\ntitle: x\n---\n# Guide\n\nIntro *text*.\n\n## Install\n\n```sh\npip install x\n\nx --help\n```\n\n    indented\n    code\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n  - nested\n- two\n";
        let nodes = parse(md);
        assert_eq!(
            nodes[0],
            Node::Heading {
                level: 1,
                title: "Guide".into()
            }
        );
        assert_eq!(
            blocks(&nodes),
            [
                (BlockKind::Paragraph, "Intro *text*."),
                (BlockKind::Code, "```sh\npip install x\n\nx --help\n```"),
                (BlockKind::Code, "    indented\n    code"),
                (BlockKind::Table, "| a | b |\n|---|---|\n| 1 | 2 |"),
                (BlockKind::ListItem, "- one\n  - nested"),
                (BlockKind::ListItem, "- two"),
            ]
        );
        assert!(nodes.contains(&Node::Heading {
            level: 2,
            title: "Install".into()
        }));
    }
}
