//! HTML pages into rows: the links a crawl follows, and the `<table>`s a CSS
//! selector picks. Pages are parsed by `tl`, a small lenient HTML parser with
//! no dependencies (scraper's `selectors` would switch on proc-macro features
//! that rebuild the whole engine); its selectors are the common subset: tag,
//! `#id`, `.class`, `[attr]`, `[attr=value]` (and `^=`, `$=`, `*=`, `~=`),
//! descendant (` `) and child (`>`) combinators and `,`. A table's header is
//! its first row of `<th>` cells (later rows like it, repeated headers, are
//! skipped); its columns are matched by name across tables and pages. Cells
//! are text (the common entities decoded); a column whose every value is a
//! whole number (no leading zero, no `+`) is `int64`, a number `float64`,
//! otherwise text — unless `columns` declares its type.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use sluice_project::CrawlDef;
use sluice_project::raw::ExtractSection;

use crate::Error;
use crate::raw::RawPage;

/// A parsed page, or none when `tl` gives up on it (it rarely does).
fn dom(text: &str) -> Option<tl::VDom<'_>> {
    tl::parse(text, tl::ParserOptions::default()).ok()
}

/// The tags `selector` picks under `tag` (the whole page when `None`).
fn select<'a, 'p>(
    dom: &'p tl::VDom<'a>,
    tag: Option<&'p tl::HTMLTag<'a>>,
    selector: &'p str,
) -> Vec<&'p tl::HTMLTag<'a>> {
    let parser = dom.parser();
    let handles: Vec<tl::NodeHandle> = match tag {
        Some(t) => t.query_selector(parser, selector).map(Iterator::collect),
        None => dom.query_selector(selector).map(Iterator::collect),
    }
    .unwrap_or_default();
    handles
        .iter()
        .filter_map(|h| h.get(parser).and_then(tl::Node::as_tag))
        .collect()
}

/// The absolute http(s) URLs of a page's `<a href>`s, without fragments.
pub(super) fn links(body: &[u8], base: &url::Url) -> Vec<url::Url> {
    let text = String::from_utf8_lossy(body);
    let Some(dom) = dom(&text) else {
        return vec![];
    };
    select(&dom, None, "a[href]")
        .into_iter()
        .filter_map(|a| {
            a.attributes()
                .get("href")
                .flatten()
                .map(|h| decode(&h.as_utf8_str()))
        })
        .filter_map(|h| base.join(h.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|mut u| {
            u.set_fragment(None);
            u
        })
        .collect()
}

/// The common character references of HTML text.
fn decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&nbsp;", " ")
        .replace("&#160;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Where a row came from, for errors.
struct Origin {
    page: usize,
    row: usize,
}

/// The rows of every selected table of the crawled pages, as one table.
pub(super) fn tables(
    def: &CrawlDef,
    ex: &ExtractSection,
    pages: &[RawPage],
) -> Result<(SchemaRef, Arc<dyn TableProvider>), Error> {
    if tl::parse_query_selector(&ex.table).is_none() {
        return Err(Error::Setting {
            key: "crawl.extract.table".into(),
            message: format!("`{}` is not a CSS selector sluice reads", ex.table),
            help:
                "write a selector of tags, `#id`, `.class` and `[attr=value]`, e.g. `table.stats`"
                    .into(),
        });
    }
    let mut names: Vec<String> = vec![];
    let mut columns: Vec<Vec<Option<String>>> = vec![];
    let mut origins: Vec<Origin> = vec![];
    let mut rows = 0;
    for (page_index, p) in pages.iter().enumerate().filter(|(_, p)| p.role == "page") {
        let body = std::fs::read(&p.path).map_err(|source| Error::Open {
            path: p.path.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&body);
        let Some(dom) = dom(&text) else {
            continue;
        };
        let parser = dom.parser();
        for table in select(&dom, None, &ex.table) {
            let mut header: Option<Vec<usize>> = None;
            for (row_index, row) in select(&dom, Some(table), "tr").into_iter().enumerate() {
                let cs = select(&dom, Some(row), "th, td");
                if cs.is_empty() {
                    continue;
                }
                let all_th = cs
                    .iter()
                    .all(|c| c.name().as_utf8_str().eq_ignore_ascii_case("th"));
                let texts: Vec<String> =
                    cs.iter().map(|c| text_of(&c.inner_text(parser))).collect();
                if all_th {
                    if header.is_none() {
                        header = Some(column_indexes(&texts, &mut names, &mut columns, rows));
                    }
                    continue;
                }
                let index = match &header {
                    Some(h) => h.clone(),
                    None => {
                        let generated: Vec<String> =
                            (1..=texts.len()).map(|i| format!("column_{i}")).collect();
                        let h = column_indexes(&generated, &mut names, &mut columns, rows);
                        header = Some(h.clone());
                        h
                    }
                };
                if texts.len() > index.len() {
                    return Err(Error::Page {
                        url: p.url.clone(),
                        page: p.page,
                        line: 0,
                        column: 0,
                        record: row_index + 1,
                        message: format!(
                            "a row of `{}` has {} cells, its header {}",
                            ex.table,
                            texts.len(),
                            index.len()
                        ),
                        help: "select tables whose rows match their header".into(),
                    });
                }
                if texts.iter().all(String::is_empty) {
                    continue;
                }
                for c in columns.iter_mut() {
                    c.push(None);
                }
                for (t, i) in texts.into_iter().zip(&index) {
                    if !t.is_empty() {
                        columns[*i][rows] = Some(t);
                    }
                }
                origins.push(Origin {
                    page: page_index,
                    row: row_index + 1,
                });
                rows += 1;
            }
        }
    }
    if let Some(c) = &ex.url_column {
        names.push(c.clone());
        columns.push(
            origins
                .iter()
                .map(|o| Some(pages[o.page].url.clone()))
                .collect(),
        );
    }
    if names.is_empty() {
        return Err(Error::Setting {
            key: "crawl.extract.table".into(),
            message: format!("no page crawled has a table matching `{}`", ex.table),
            help: "check the selector against the pages (they are in the raw zone: `sluice raw ls SOURCE`)".into(),
        });
    }
    let mut fields = vec![];
    let mut arrays: Vec<ArrayRef> = vec![];
    for (name, values) in names.iter().zip(columns) {
        let text: ArrayRef = Arc::new(StringArray::from(values));
        let wanted = match def.config.columns.get(name) {
            Some(word) => crate::parse_type(word, "UTC").ok_or_else(|| Error::UnknownType {
                column: name.clone(),
                word: word.clone(),
            })?,
            None => inferred(&text),
        };
        let array = typed(&text, &wanted).map_err(|message| {
            let row = first_failing(&text, &wanted).unwrap_or(0);
            let o = &origins[row.min(origins.len().saturating_sub(1))];
            Error::Page {
                url: pages[o.page].url.clone(),
                page: pages[o.page].page,
                line: 0,
                column: 0,
                record: o.row,
                message: format!("column `{name}`: {message}"),
                help: "fix the type in `columns`".into(),
            }
        })?;
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| Error::Setting {
        key: "crawl.extract".into(),
        message: e.to_string(),
        help: "check `columns`".into(),
    })?;
    let table =
        MemTable::try_new(schema.clone(), vec![vec![batch]]).map_err(|e| Error::Setting {
            key: "crawl.extract".into(),
            message: e.to_string(),
            help: "check `columns`".into(),
        })?;
    Ok((schema, Arc::new(table)))
}

/// A cell's text with runs of whitespace as one space.
fn text_of(inner: &str) -> String {
    decode(inner)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The column of each header cell, adding columns not seen yet (filled with
/// nulls for the `rows` read before). Repeated names get `_2`, `_3`.
fn column_indexes(
    header: &[String],
    names: &mut Vec<String>,
    columns: &mut Vec<Vec<Option<String>>>,
    rows: usize,
) -> Vec<usize> {
    let mut used: Vec<usize> = vec![];
    header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let base = if h.is_empty() {
                format!("column_{}", i + 1)
            } else {
                h.clone()
            };
            let mut name = base.clone();
            let mut n = 1;
            loop {
                match names.iter().position(|x| *x == name) {
                    Some(at) if used.contains(&at) => {
                        n += 1;
                        name = format!("{base}_{n}");
                    }
                    Some(at) => {
                        used.push(at);
                        return at;
                    }
                    None => {
                        names.push(name);
                        columns.push(vec![None; rows]);
                        used.push(names.len() - 1);
                        return names.len() - 1;
                    }
                }
            }
        })
        .collect()
}

/// `int64` when every value is a whole number written plainly, `float64` when
/// a number, else text.
fn inferred(values: &ArrayRef) -> DataType {
    let Some(s) = values.as_any().downcast_ref::<StringArray>() else {
        return DataType::Utf8;
    };
    let present: Vec<&str> = s.iter().flatten().collect();
    if present.is_empty() {
        return DataType::Utf8;
    }
    let plain_int = |v: &str| {
        let digits = v.strip_prefix('-').unwrap_or(v);
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && v.parse::<i64>().is_ok()
    };
    let number = |v: &str| {
        let unsigned = v.strip_prefix('-').unwrap_or(v);
        // `007` would lose its zeros as a number, as it would as an integer.
        let padded = unsigned.len() > 1 && unsigned.starts_with('0') && !unsigned.starts_with("0.");
        !padded
            && v.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'e' | b'E'))
            && v.parse::<f64>().is_ok()
    };
    if present.iter().all(|v| plain_int(v)) {
        DataType::Int64
    } else if present.iter().all(|v| number(v)) {
        DataType::Float64
    } else {
        DataType::Utf8
    }
}

fn typed(text: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    if to == &DataType::Utf8 {
        return Ok(text.clone());
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(text, to, &options).map_err(|e| e.to_string())
}

/// The first row whose value does not cast.
fn first_failing(text: &ArrayRef, to: &DataType) -> Option<usize> {
    (0..text.len()).find(|i| typed(&text.slice(*i, 1), to).is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_absolute_without_fragments() {
        let base = url::Url::parse("http://127.0.0.1:1/teams/index.html").expect("url");
        let body = br#"<a href="nyy.html#top">NYY</a> <a href="/about">about</a> <a href="mailto:x@y">m</a>"#;
        let got: Vec<String> = links(body, &base).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            got,
            [
                "http://127.0.0.1:1/teams/nyy.html",
                "http://127.0.0.1:1/about"
            ]
        );
    }

    #[test]
    fn numbers_are_inferred_only_when_written_plainly() {
        let a = |v: &[&str]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
        assert_eq!(inferred(&a(&["1", "-20", "0"])), DataType::Int64);
        assert_eq!(inferred(&a(&["1", "2.5"])), DataType::Float64);
        assert_eq!(inferred(&a(&["007", "1"])), DataType::Utf8);
        assert_eq!(inferred(&a(&["1,234"])), DataType::Utf8);
    }
}
