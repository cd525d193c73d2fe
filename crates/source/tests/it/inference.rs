//! Item 4: inference must not lose data. A column whose text would not survive
//! the trip through a number stays text, unless `columns` says otherwise.

use datafusion::arrow::datatypes::DataType;

use sluice_source::FileSource;

use crate::{folder, read, rows, shown, source, texts, type_of};

#[tokio::test]
async fn leading_zeros_keep_ids_as_text() {
    let dir = folder(&[(
        "orders.csv",
        "customer,order,amount\n00001,1,11.77\n00042,2,5.00\n10230,3,0.5\n",
    )]);
    let batch = rows(&source(dir.path(), "orders.csv", "")).await;
    assert_eq!(type_of(&batch, "customer"), DataType::Utf8);
    assert_eq!(
        texts(&batch, "customer"),
        [Some("00001"), Some("00042"), Some("10230")].map(|s| s.map(String::from))
    );
    // Numbers written plainly stay numbers.
    assert_eq!(type_of(&batch, "order"), DataType::Int64);
    assert_eq!(type_of(&batch, "amount"), DataType::Float64);
    assert_eq!(shown(&batch, "amount"), ["11.77", "5.0", "0.5"]);
}

#[tokio::test]
async fn zero_and_fractions_below_one_stay_numbers() {
    let dir = folder(&[(
        "m.csv",
        "count,share,delta\n0,0.5,-0.25\n10,0.05,0\n0,.5,-3\n",
    )]);
    let batch = rows(&source(dir.path(), "m.csv", "")).await;
    assert_eq!(type_of(&batch, "count"), DataType::Int64);
    assert_eq!(shown(&batch, "count"), ["0", "10", "0"]);
    assert_eq!(type_of(&batch, "share"), DataType::Float64);
    assert_eq!(shown(&batch, "share"), ["0.5", "0.05", "0.5"]);
    assert_eq!(type_of(&batch, "delta"), DataType::Float64);
}

#[tokio::test]
async fn leading_zeros_in_a_decimal_keep_the_column_as_text() {
    let dir = folder(&[("r.csv", "rate\n1.5\n007.25\n")]);
    let batch = rows(&source(dir.path(), "r.csv", "")).await;
    assert_eq!(type_of(&batch, "rate"), DataType::Utf8);
    assert_eq!(
        texts(&batch, "rate"),
        [Some("1.5"), Some("007.25")].map(|s| s.map(String::from))
    );
}

#[tokio::test]
async fn plus_signs_and_long_digit_strings_stay_text() {
    // A card-like number of 19 digits fits no int64; mixed with a fraction the
    // column would be float and keep only 17 of its digits.
    let dir = folder(&[(
        "p.csv",
        "phone,account,reading\n+4915112345678,9223372036854775808,1.5\n+12025550100,1234567890123456789,12345678901234567890\n",
    )]);
    let batch = rows(&source(dir.path(), "p.csv", "")).await;
    for column in ["phone", "account", "reading"] {
        assert_eq!(type_of(&batch, column), DataType::Utf8, "{column}");
    }
    assert_eq!(
        texts(&batch, "reading"),
        [Some("1.5"), Some("12345678901234567890")].map(|s| s.map(String::from))
    );
    assert_eq!(
        texts(&batch, "account")[1].as_deref(),
        Some("1234567890123456789")
    );
}

#[tokio::test]
async fn declared_columns_override_the_text_rule() {
    let dir = folder(&[("orders.csv", "customer,amount\n00001,11.77\n00042,5.00\n")]);
    let batch = rows(&source(
        dir.path(),
        "orders.csv",
        "columns = { customer = \"int64\" }\n",
    ))
    .await;
    assert_eq!(type_of(&batch, "customer"), DataType::Int64);
    assert_eq!(shown(&batch, "customer"), ["1", "42"]);
}

#[tokio::test]
async fn leading_zeros_past_the_inference_sample_stop_the_read_instead_of_vanishing() {
    // Inference sees two records and reads a number; the third would become 7.
    let dir = folder(&[("o.csv", "id,qty\n5,1\n6,2\n007,3\n")]);
    let source = FileSource::open(&source(dir.path(), "o.csv", "infer_rows = 2\n")).expect("opens");
    assert_eq!(source.schema().field(0).data_type(), &DataType::Int64);
    let err = read(&source).await.expect_err("007 would lose its zeros");
    assert!(
        err.contains("o.csv:4:1: `007` would not survive as a number"),
        "{err}"
    );
    assert!(err.contains("raise `infer_rows`"), "{err}");
    // A value past the sample that is no number at all is named the same way.
    let dir = folder(&[("o.csv", "id,qty\n5,1\n6,2\n7,x\n")]);
    let source =
        FileSource::open(&crate::source(dir.path(), "o.csv", "infer_rows = 2\n")).expect("opens");
    let err = read(&source).await.expect_err("x is no number");
    assert!(err.contains("o.csv:4:2: `x` is not a valid Int64"), "{err}");
    // Reading every record for inference keeps the text.
    let all = rows(&crate::source(dir.path(), "o.csv", "infer_rows = 0\n")).await;
    assert_eq!(type_of(&all, "qty"), DataType::Utf8);
}

#[tokio::test]
async fn numbers_past_the_sample_that_survive_read_as_numbers() {
    let dir = folder(&[("o.csv", "id,share\n5,0.5\n6,0.25\n70,1e3\n-8,-0.125\n")]);
    let batch = rows(&source(dir.path(), "o.csv", "infer_rows = 2\n")).await;
    assert_eq!(shown(&batch, "id"), ["5", "6", "70", "-8"]);
    assert_eq!(shown(&batch, "share"), ["0.5", "0.25", "1000.0", "-0.125"]);
}
