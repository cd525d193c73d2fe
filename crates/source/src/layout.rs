//! Text files whose columns are not split by one character: aligned with runs of
//! spaces and tabs (`delimiter = "whitespace"`), or fixed-width (`widths`).
//!
//! Each line is rewritten into a line with the unit separator (0x1F) between the
//! fields, which Arrow's CSV reader then reads like any CSV file: type
//! inference, `null` markers and error positions work as for CSV, and line N of
//! the file is line N of what Arrow reads.

use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};

/// The delimiter Arrow's reader is given for a rewritten line.
pub(crate) const SEPARATOR: u8 = 0x1F;
/// The quote Arrow's reader is given for fixed-width lines, which have no quoting.
pub(crate) const NO_QUOTE: u8 = 0x1E;

/// How a line splits into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Runs of spaces and tabs separate fields; leading and trailing ones are
    /// ignored. A field that starts with `quote` runs to the closing quote and
    /// may hold spaces.
    Whitespace {
        /// The quote character.
        quote: u8,
    },
    /// Each field is the next `width` characters, trimmed.
    FixedWidth(Vec<usize>),
}

/// Why a line could not be split, at a 1-based line and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayoutError {
    pub line: usize,
    pub field: usize,
    pub message: String,
    pub help: &'static str,
}

/// Where a [`LayoutReader`] leaves the error that stopped it, for the caller to
/// report with its position (Arrow keeps only the text of a reader's error).
pub(crate) type FailureSlot = Arc<Mutex<Option<LayoutError>>>;

/// A reader of the rewritten lines of `inner`.
pub(crate) struct LayoutReader<R> {
    inner: R,
    layout: Layout,
    line: usize,
    raw: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    failure: FailureSlot,
}

impl<R: BufRead> LayoutReader<R> {
    pub(crate) fn new(inner: R, layout: Layout) -> Self {
        Self {
            inner,
            layout,
            line: 0,
            raw: Vec::new(),
            out: Vec::new(),
            pos: 0,
            failure: FailureSlot::default(),
        }
    }

    /// Where the error that stops this reader will be left.
    pub(crate) fn failure(&self) -> FailureSlot {
        self.failure.clone()
    }

    /// Reads and rewrites the next line; false at the end of the input.
    fn next_line(&mut self) -> io::Result<bool> {
        self.raw.clear();
        self.out.clear();
        self.pos = 0;
        if self.inner.read_until(b'\n', &mut self.raw)? == 0 {
            return Ok(false);
        }
        self.line += 1;
        let mut end = self.raw.len();
        while end > 0 && matches!(self.raw[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let line = &self.raw[..end];
        let split = match &self.layout {
            Layout::Whitespace { quote } => split_whitespace(line, *quote, &mut self.out),
            Layout::FixedWidth(widths) => split_fixed(line, widths, &mut self.out),
        };
        if let Err((field, message, help)) = split {
            let error = LayoutError {
                line: self.line,
                field,
                message,
                help,
            };
            let text = format!("line {}: {}", error.line, error.message);
            if let Ok(mut slot) = self.failure.lock() {
                *slot = Some(error);
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, text));
        }
        self.out.push(b'\n');
        Ok(true)
    }
}

impl<R: BufRead> Read for LayoutReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.out.len() && !self.next_line()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

type SplitError = (usize, String, &'static str);

const CONTROL_HELP: &str = "the file holds the control characters 0x1E or 0x1F; remove them";

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits at runs of spaces and tabs into `out`, fields joined by [`SEPARATOR`];
/// a quoted field keeps its quotes for Arrow's reader to take off. A blank line
/// gives an empty line, which Arrow's reader skips as it does in CSV.
fn split_whitespace(line: &[u8], quote: u8, out: &mut Vec<u8>) -> Result<(), SplitError> {
    let mut i = 0;
    let mut field = 0;
    loop {
        while i < line.len() && is_blank(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok(());
        }
        field += 1;
        if field > 1 {
            out.push(SEPARATOR);
        }
        let start = i;
        if line[i] == quote {
            i += 1;
            loop {
                match line[i..].iter().position(|&b| b == quote) {
                    None => {
                        return Err((
                            field,
                            "a quoted field is not closed on its line".into(),
                            "close the quote; a field of a whitespace-separated file cannot span lines",
                        ));
                    }
                    Some(p) => i += p + 1,
                }
                // A doubled quote is a quote inside the field.
                if i < line.len() && line[i] == quote {
                    i += 1;
                } else {
                    break;
                }
            }
        }
        while i < line.len() && !is_blank(line[i]) {
            i += 1;
        }
        let value = &line[start..i];
        if value.contains(&SEPARATOR) || value.contains(&NO_QUOTE) {
            return Err((
                field,
                "a control character in the field".into(),
                CONTROL_HELP,
            ));
        }
        out.extend_from_slice(value);
    }
}

/// Cuts `widths` characters per field, trimmed, into `out`. A short line leaves
/// its last fields empty; text past the last column is an error, not dropped.
fn split_fixed(line: &[u8], widths: &[usize], out: &mut Vec<u8>) -> Result<(), SplitError> {
    let text = std::str::from_utf8(line).map_err(|e| {
        let at = String::from_utf8_lossy(&line[..e.valid_up_to()])
            .chars()
            .count();
        (
            field_at(widths, at),
            "invalid UTF-8".to_string(),
            "convert the file to UTF-8",
        )
    })?;
    if text.trim().is_empty() {
        return Ok(());
    }
    let mut rest = text;
    for (n, &width) in widths.iter().enumerate() {
        let cut = rest
            .char_indices()
            .nth(width)
            .map_or(rest.len(), |(i, _)| i);
        let (value, after) = rest.split_at(cut);
        rest = after;
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if value.contains(['\u{1e}', '\u{1f}']) {
            return Err((
                n + 1,
                "a control character in the field".into(),
                CONTROL_HELP,
            ));
        }
        if n > 0 {
            out.push(SEPARATOR);
        }
        out.extend_from_slice(value.as_bytes());
    }
    let extra = rest.trim_end_matches([' ', '\t']);
    if !extra.is_empty() {
        let total: usize = widths.iter().sum();
        let shown: String = extra.chars().take(40).collect();
        return Err((
            widths.len() + 1,
            format!("text past the last column (after character {total}): `{shown}`"),
            "add the column's width to `widths`, or check the widths against the file",
        ));
    }
    Ok(())
}

/// The 1-based field that character `at` (0-based) of a fixed-width line is in.
fn field_at(widths: &[usize], at: usize) -> usize {
    let mut end = 0;
    for (n, w) in widths.iter().enumerate() {
        end += w;
        if at < end {
            return n + 1;
        }
    }
    widths.len() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(text: &str, layout: Layout) -> Result<String, LayoutError> {
        let mut reader = LayoutReader::new(text.as_bytes(), layout);
        let failure = reader.failure();
        let mut out = String::new();
        match reader.read_to_string(&mut out) {
            Ok(_) => Ok(out.replace(SEPARATOR as char, "|")),
            Err(_) => Err(failure
                .lock()
                .expect("not poisoned")
                .clone()
                .expect("the error is left in the slot")),
        }
    }

    #[test]
    fn whitespace_runs_split_fields_and_edges_are_ignored() {
        let text = "  id    date     qty  amount\r\n 00042 20240112  5   77.00 \n\n\t00043\t20240113 1 \"New  York\"\n";
        assert_eq!(
            rewrite(text, Layout::Whitespace { quote: b'"' }).expect("splits"),
            "id|date|qty|amount\n00042|20240112|5|77.00\n\n00043|20240113|1|\"New  York\"\n"
        );
    }

    #[test]
    fn a_quote_inside_a_field_is_a_character() {
        let text = "6'1\" 190\n";
        assert_eq!(
            rewrite(text, Layout::Whitespace { quote: b'"' }).expect("splits"),
            "6'1\"|190\n"
        );
        let e =
            rewrite("a \"open field\n", Layout::Whitespace { quote: b'"' }).expect_err("unclosed");
        assert_eq!((e.line, e.field), (1, 2));
    }

    #[test]
    fn fixed_width_cuts_characters_and_trims() {
        let widths = Layout::FixedWidth(vec![6, 9, 3, 8]);
        let text = "id    date     qtyamount\n 00042 20240112  5   77.00\nZürich20240113\n";
        assert_eq!(
            rewrite(text, widths).expect("splits"),
            "id|date|qty|amount\n00042|20240112|5|77.00\nZürich|20240113||\n"
        );
    }

    #[test]
    fn fixed_width_text_past_the_last_column_is_an_error() {
        let e =
            rewrite("ab  cd\nab  cd  ef\n", Layout::FixedWidth(vec![4, 4])).expect_err("too long");
        assert_eq!((e.line, e.field), (2, 3));
        assert!(e.message.contains("`ef`"), "{}", e.message);
    }
}
