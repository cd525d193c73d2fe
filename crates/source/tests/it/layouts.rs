//! Item 5: whitespace-aligned and fixed-width text files, and the warning for a
//! file that came out as one column.

use datafusion::arrow::datatypes::DataType;
use sluice_source::FileSource;

use crate::{folder, read, rows, shown, source, testdata, texts, type_of};

fn case_data() -> std::path::PathBuf {
    testdata().join("pipelines/source_layouts/project/data")
}

#[tokio::test]
async fn whitespace_aligned_file_reads_as_columns() {
    let def = source(
        &case_data(),
        "bookings.txt",
        "delimiter = \"whitespace\"\nnull = [\"NA\"]\n",
    );
    let batch = rows(&def).await;
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["flight", "date", "carrier", "tailnum", "delay", "distance"]
    );
    assert_eq!(batch.num_rows(), 31);
    // Ids keep their zeros; the first row is UA 1714 of 2013-01-01, 4 minutes late.
    assert_eq!(type_of(&batch, "flight"), DataType::Utf8);
    assert_eq!(texts(&batch, "flight")[0].as_deref(), Some("01714"));
    assert_eq!(type_of(&batch, "delay"), DataType::Int64);
    assert_eq!(shown(&batch, "delay")[..3], ["4", "-6", "71"]);
    assert_eq!(shown(&batch, "distance")[..3], ["1416", "502", "1089"]);
    // The cancelled flight: `NA` is missing, in the text and the number column.
    assert_eq!(texts(&batch, "tailnum")[30], None);
    assert_eq!(shown(&batch, "delay")[30], "null");
}

#[tokio::test]
async fn backslash_s_plus_means_whitespace() {
    let dir = folder(&[(
        "log.txt",
        "  id    date     qty  amount\n 00042 20240112  5   77.00\n\t00043\t20240113 12  5.5\n\n",
    )]);
    let batch = rows(&source(dir.path(), "log.txt", "delimiter = '\\s+'\n")).await;
    assert_eq!(
        texts(&batch, "id"),
        [Some("00042".into()), Some("00043".into())]
    );
    assert_eq!(shown(&batch, "qty"), ["5", "12"]);
    assert_eq!(shown(&batch, "amount"), ["77.0", "5.5"]);
    assert_eq!(type_of(&batch, "date"), DataType::Int64);
}

#[tokio::test]
async fn whitespace_fields_may_be_quoted() {
    let dir = folder(&[(
        "airports.txt",
        "faa  name                 alt\nJFK  \"John F Kennedy Intl\"  13\nLGA  \"La Guardia\"           22\n",
    )]);
    let batch = rows(&source(
        dir.path(),
        "airports.txt",
        "delimiter = \"whitespace\"\n",
    ))
    .await;
    assert_eq!(
        texts(&batch, "name"),
        [
            Some("John F Kennedy Intl".into()),
            Some("La Guardia".into())
        ]
    );
    assert_eq!(shown(&batch, "alt"), ["13", "22"]);
}

#[tokio::test]
async fn fixed_width_file_reads_with_names() {
    let fixed = rows(&source(
        &case_data(),
        "bookings_fixed.txt",
        "widths = [5, 8, 2, 6, 5, 5]\nheader = false\n\
         names = [\"flight\", \"date\", \"carrier\", \"tailnum\", \"delay\", \"distance\"]\n",
    ))
    .await;
    let aligned = rows(&source(
        &case_data(),
        "bookings.txt",
        "delimiter = \"whitespace\"\nnull = [\"NA\"]\n",
    ))
    .await;
    // Both files hold the same flights: every value agrees, blanks are missing.
    assert_eq!(fixed.num_rows(), 31);
    for column in ["flight", "date", "carrier", "tailnum", "delay", "distance"] {
        assert_eq!(
            type_of(&fixed, column),
            type_of(&aligned, column),
            "{column}"
        );
        assert_eq!(shown(&fixed, column), shown(&aligned, column), "{column}");
    }
}

#[tokio::test]
async fn fixed_width_header_is_split_by_the_widths() {
    let dir = folder(&[(
        "log.txt",
        "id    date     qtyamount\n00042 20240112  5   77.00\n00043 20240113 12    5.50\n",
    )]);
    let batch = rows(&source(dir.path(), "log.txt", "widths = [6, 9, 3, 8]\n")).await;
    assert_eq!(
        texts(&batch, "id"),
        [Some("00042".into()), Some("00043".into())]
    );
    assert_eq!(shown(&batch, "qty"), ["5", "12"]);
    assert_eq!(shown(&batch, "amount"), ["77.0", "5.5"]);
}

#[tokio::test]
async fn fixed_width_text_past_the_last_column_names_its_line() {
    let dir = folder(&[("log.txt", "id    qty\n00042 5\n00043 12 spill\n")]);
    let def = source(dir.path(), "log.txt", "widths = [6, 3]\ninfer_rows = 1\n");
    let source = FileSource::open(&def).expect("the sample is fine");
    let err = read(&source).await.expect_err("line 3 is too long");
    assert!(
        err.contains("log.txt:3:3: text past the last column"),
        "{err}"
    );
    assert!(err.contains("`spill`"), "{err}");
    assert!(
        err.contains("help: add the column's width to `widths`"),
        "{err}"
    );
}

#[tokio::test]
async fn whitespace_lines_with_too_many_fields_name_their_line() {
    let dir = folder(&[("log.txt", "id qty\n1 2\n3 4 5\n")]);
    let def = source(dir.path(), "log.txt", "delimiter = \"whitespace\"\n");
    let err = FileSource::open(&def)
        .expect_err("line 3 has three fields")
        .to_string();
    assert!(
        err.contains("log.txt:3: expected 2 fields, found 3"),
        "{err}"
    );
}

#[test]
fn one_column_with_spaces_in_header_warns() {
    let def = source(&case_data(), "bookings.txt", "");
    let opened = FileSource::open(&def).expect("opens");
    assert_eq!(opened.schema().fields().len(), 1);
    let [warning] = opened.warnings() else {
        panic!("one warning, got {:?}", opened.warnings());
    };
    assert!(
        warning.contains("bookings.txt:1: the file was read as one column"),
        "{warning}"
    );
    assert!(warning.contains("delimiter = \"whitespace\""), "{warning}");
    assert!(warning.contains("widths = [...]"), "{warning}");
    // A real one-column file, and a split file, say nothing.
    let dir = folder(&[("ids.csv", "customer_id\n00001\n")]);
    let plain = FileSource::open(&source(dir.path(), "ids.csv", "")).expect("opens");
    assert!(plain.warnings().is_empty());
    let split = FileSource::open(&source(
        &case_data(),
        "bookings.txt",
        "delimiter = \"whitespace\"\n",
    ))
    .expect("opens");
    assert!(split.warnings().is_empty());
}
