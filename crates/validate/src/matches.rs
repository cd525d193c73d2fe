//! The `regex` rule as a function that holds its compiled pattern.
//!
//! DataFusion's `regexp_like(value, 'pattern')` compiles the pattern again for
//! every batch (arrow's `regexp_is_match_scalar`). A pattern with Unicode
//! classes (`\w`) takes about a millisecond to compile, so over ten million
//! rows in batches of 8,192 the compiling cost as much as the matching. This
//! function compiles the pattern once, when the rule is compiled, with the same
//! `regex` crate and the same search semantics (`is_match`, unanchored unless
//! the pattern anchors itself); a null value gives null.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `value` matches `pattern` (true), does not (false), or is null.
pub(crate) fn matches(value: Expr, pattern: &str) -> std::result::Result<Expr, regex::Error> {
    let udf = Matches {
        regex: regex::Regex::new(pattern)?,
        signature: Signature::any(1, Volatility::Immutable),
    };
    Ok(ScalarUDF::new_from_impl(udf).call(vec![value]))
}

#[derive(Debug)]
struct Matches {
    regex: regex::Regex,
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
            let is_match = |v: Option<&str>| v.map(|v| regex.is_match(v));
            let out: BooleanArray = match values.data_type() {
                DataType::Utf8 => values.as_string::<i32>().iter().map(is_match).collect(),
                DataType::LargeUtf8 => values.as_string::<i64>().iter().map(is_match).collect(),
                DataType::Utf8View => values.as_string_view().iter().map(is_match).collect(),
                other => return exec_err!("regexp_like applies to text, not {other}"),
            };
            Ok(Arc::new(out) as ArrayRef)
        })
    }
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
}
