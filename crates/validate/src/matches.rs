//! The `regex` rule as a function that holds its compiled pattern.
//!
//! DataFusion's `regexp_like(value, 'pattern')` compiles the pattern again for
//! every batch (arrow's `regexp_is_match_scalar`). A pattern with Unicode
//! classes (`\w`) takes about a millisecond to compile, so over ten million
//! rows in batches of 8,192 the compiling cost as much as the matching. This
//! function compiles the pattern once, when the rule is compiled, with the same
//! search semantics as the `regex` crate's `is_match` (unanchored unless the
//! pattern anchors itself); a null value gives null.
//!
//! Where the pattern's full DFA fits [`DFA_LIMIT`], values are matched by it
//! (regex-automata's dense DFA, the engine under `regex`): a few table reads
//! per byte and nothing to set up per value. `regex`'s own `is_match` picks a
//! lazy DFA for a pattern with Unicode classes and pays a search's set-up
//! (strategy, cache) on every value, which on short values such as ids and
//! e-mail addresses cost about as much as the matching. A value the DFA gives
//! up on (a Unicode word boundary next to non-ASCII text) and a pattern whose
//! DFA is too big go to `regex`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use regex_automata::Input;
use regex_automata::dfa::{Automaton, StartKind, dense};

/// The most bytes a pattern's full DFA may take, and take to build.
const DFA_LIMIT: usize = 8 << 20;

/// `value` matches `pattern` (true), does not (false), or is null.
pub(crate) fn matches(value: Expr, pattern: &str) -> std::result::Result<Expr, regex::Error> {
    let regex = regex::Regex::new(pattern)?;
    let udf = Matches {
        dfa: full_dfa(pattern).map(Arc::new),
        regex,
        signature: Signature::any(1, Volatility::Immutable),
    };
    Ok(ScalarUDF::new_from_impl(udf).call(vec![value]))
}

/// `pattern`'s full DFA for unanchored searches, if it fits [`DFA_LIMIT`].
fn full_dfa(pattern: &str) -> Option<dense::DFA<Vec<u32>>> {
    dense::Builder::new()
        .configure(
            dense::DFA::config()
                .start_kind(StartKind::Unanchored)
                .unicode_word_boundary(true)
                .dfa_size_limit(Some(DFA_LIMIT))
                .determinize_size_limit(Some(DFA_LIMIT)),
        )
        .build(pattern)
        .ok()
}

#[derive(Debug)]
struct Matches {
    regex: regex::Regex,
    dfa: Option<Arc<dense::DFA<Vec<u32>>>>,
    signature: Signature,
}

impl PartialEq for Matches {
    fn eq(&self, other: &Self) -> bool {
        self.regex.as_str() == other.regex.as_str()
    }
}

impl Eq for Matches {}

impl Hash for Matches {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.regex.as_str().hash(state);
    }
}

impl ScalarUDFImpl for Matches {
    fn name(&self) -> &str {
        "regexp_like"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return exec_err!("regexp_like takes one value");
        };
        match value {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(self.over(a)?)),
            ColumnarValue::Scalar(s) => {
                let out = self.over(&s.to_array()?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
            }
        }
    }
}

thread_local! {
    /// This thread's clone of each pattern's regex. A `Regex` keeps a pool of
    /// search caches, and only the thread that took from it first gets one
    /// without a lock: shared by every partition, each match took and gave
    /// back a cache under a mutex (4% of a validation's time). A clone has a
    /// pool of its own.
    static OWN: RefCell<HashMap<String, regex::Regex>> = RefCell::default();
}

impl Matches {
    fn over(&self, values: &ArrayRef) -> Result<ArrayRef> {
        if let DataType::Dictionary(_, _) = values.data_type() {
            return self.over(&cast(values, &DataType::Utf8)?);
        }
        OWN.with_borrow_mut(|own| {
            let pattern = self.regex.as_str();
            if !own.contains_key(pattern) {
                own.insert(pattern.to_string(), self.regex.clone());
            }
            let regex = &own[pattern];
            let is_match = |v: &str| match &self.dfa {
                Some(dfa) => dfa
                    .try_search_fwd(&Input::new(v).earliest(true))
                    .map_or_else(|_| regex.is_match(v), |m| m.is_some()),
                None => regex.is_match(v),
            };
            let nulls = values.logical_nulls();
            let out = match values.data_type() {
                DataType::Utf8 => {
                    let a = values.as_string::<i32>();
                    each(a.len(), nulls, |i| is_match(a.value(i)))
                }
                DataType::LargeUtf8 => {
                    let a = values.as_string::<i64>();
                    each(a.len(), nulls, |i| is_match(a.value(i)))
                }
                DataType::Utf8View => {
                    let a = values.as_string_view();
                    each(a.len(), nulls, |i| is_match(a.value(i)))
                }
                other => return exec_err!("regexp_like applies to text, not {other}"),
            };
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

/// `test` of each of `len` values, null where the value is null.
fn each(len: usize, nulls: Option<NullBuffer>, test: impl Fn(usize) -> bool) -> BooleanArray {
    let bits = BooleanBuffer::collect_bool(len, |i| {
        nulls.as_ref().is_none_or(|n| n.is_valid(i)) && test(i)
    });
    BooleanArray::new(bits, nulls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{LargeStringArray, StringArray, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::functions::expr_fn::regexp_like;
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::SessionContext;

    /// The same answers as DataFusion's `regexp_like` for every text type,
    /// nulls, Unicode classes and an unanchored pattern.
    #[tokio::test]
    async fn answers_as_regexp_like_does() {
        let values = vec![
            Some("evt_0123456789abcdef"),
            Some("evt_0123456789abcdeg!"),
            None,
            Some("ana@example.org"),
            Some("ünïcödé@exämple.de"),
            Some("not-an-email"),
            Some(""),
        ];
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(values.clone())),
            Arc::new(LargeStringArray::from(values.clone())),
            Arc::new(StringViewArray::from(values.clone())),
            cast(
                &(Arc::new(StringArray::from(values.clone())) as ArrayRef),
                &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            )
            .unwrap(),
        ];
        let patterns = [
            r"^evt_[a-zA-Z0-9]{16}$",
            r"^[\w\.-]+@[\w\.-]+\.\w+$",
            "ex",
            "^$",
            // A Unicode word boundary: the DFA gives up on non-ASCII text.
            r"\bexample\b",
            r"(?i)EXÄMPLE",
            // Too big for a full DFA: only `regex` runs it.
            r"a[ab]{20}",
        ];
        let ctx = SessionContext::new();
        for array in arrays {
            let schema = Arc::new(Schema::new(vec![Field::new(
                "v",
                array.data_type().clone(),
                true,
            )]));
            let batch = RecordBatch::try_new(schema, vec![array]).unwrap();
            let df = ctx.read_batch(batch).unwrap();
            for p in patterns {
                let plain = col("v");
                let text = match df.schema().field(0).data_type() {
                    DataType::Dictionary(_, _) => {
                        datafusion::logical_expr::cast(plain.clone(), DataType::Utf8)
                    }
                    _ => plain.clone(),
                };
                let got = df
                    .clone()
                    .select(vec![
                        matches(plain, p).unwrap().alias("ours"),
                        regexp_like(text, lit(p), None).alias("theirs"),
                    ])
                    .unwrap()
                    .collect()
                    .await
                    .unwrap();
                for b in got {
                    assert_eq!(b.column(0).as_ref(), b.column(1).as_ref(), "pattern {p}");
                }
            }
        }
        assert!(matches(col("v"), "(").is_err());
    }

    #[test]
    fn a_full_dfa_is_built_only_within_its_limit() {
        assert!(full_dfa(r"^[\w\.-]+@[\w\.-]+\.\w+$").is_some());
        assert!(full_dfa(r"\bword\b").is_some());
        assert!(full_dfa(r"a[ab]{20}").is_none());
    }
}
