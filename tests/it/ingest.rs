//! Reading source files: encodings, CSV dialect, rejects, Parquet/CSV equivalence, and
//! identify on what was read. Fixtures under tests/fixtures/ingest hold generated people.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use xmatch::identity::identify::{TEMP_ID_INVALID, identify};
use xmatch::identity::ids::TempId;
use xmatch::identity::{Reason, Rule, Tokenizer};
use xmatch::ingest::{
    self, Encoding, FileStats, IngestBatch, IngestError, Layout, Reject, SourceFile,
};
use xmatch::schema::{Catalog, SourceSchema};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ingest")
        .join(name)
}

pub fn schema(name: &str) -> SourceSchema {
    Catalog::builtin().unwrap().source(name).unwrap().clone()
}

pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

pub fn tokenizer() -> Tokenizer {
    Tokenizer::new(&[42; 32], "test-key")
}

/// Reads a whole file: its batches and statistics.
pub fn read_all(
    path: &Path,
    schema: &SourceSchema,
    layout: Layout,
    batch_rows: usize,
) -> (Vec<IngestBatch>, FileStats) {
    let file = SourceFile::new(path).unwrap();
    let mut r = ingest::open(&file, schema, layout, batch_rows).unwrap();
    let batches: Vec<IngestBatch> = r.by_ref().map(|b| b.unwrap()).collect();
    let stats = r.finish().unwrap();
    let accepted: usize = batches.iter().map(|b| b.batch.num_rows()).sum();
    let rejected: usize = batches.iter().map(|b| b.rejects.len()).sum();
    assert_eq!(stats.rows_accepted, accepted as u64);
    assert_eq!(stats.rows_rejected, rejected as u64);
    assert_eq!(stats.rows_read, stats.rows_accepted + stats.rows_rejected);
    (batches, stats)
}

fn concat(batches: &[IngestBatch]) -> RecordBatch {
    let schema = batches[0].batch.schema();
    arrow::compute::concat_batches(&schema, batches.iter().map(|b| &b.batch)).unwrap()
}

fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(col).unwrap().as_string::<i32>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

fn rejects(batches: &[IngestBatch]) -> Vec<Reject> {
    batches.iter().flat_map(|b| b.rejects.clone()).collect()
}

#[test]
fn missing_required_column_fails_naming_file_and_column() {
    let file = SourceFile::new(fixture("wages_missing_column.csv")).unwrap();
    let err = ingest::open(&file, &schema("ui_wages"), Layout::Raw, 1024)
        .err()
        .expect("a file without a required column is refused");
    assert!(matches!(err, IngestError::MissingColumn { .. }));
    let msg = err.to_string();
    assert!(msg.contains("wages_missing_column.csv"), "{msg}");
    assert!(msg.contains("`wages`"), "{msg}");
    // No value of the file is echoed.
    for v in ["212", "4431", "Quill", "Ada"] {
        assert!(!msg.contains(v), "{msg}");
    }
}

#[test]
fn latin1_csv_with_crlf_decodes_names() {
    let s = schema("ui_wages");
    let (b, stats) = read_all(&fixture("wages_latin1_crlf.csv"), &s, Layout::Raw, 1024);
    assert_eq!(stats.encoding, Encoding::Latin1);
    assert_eq!((stats.rows_read, stats.rows_accepted), (3, 3));
    let all = concat(&b);
    assert_eq!(
        strings(&all, "last_name"),
        vec![
            Some("Muñoz".into()),
            Some("Ibáñez".into()),
            Some("Façade".into())
        ]
    );
    assert_eq!(strings(&all, "first_name")[1].as_deref(), Some("Zoë"));
    // CRLF leaves no `\r` in the last column; year-quarters are canonical.
    assert_eq!(strings(&all, "year_quarter")[2].as_deref(), Some("2024Q2"));
    let wages = all.column_by_name("wages").unwrap();
    assert_eq!(wages.data_type(), &DataType::Decimal128(14, 2));
    let w = wages.as_primitive::<arrow::datatypes::Decimal128Type>();
    assert_eq!(
        (w.value(0), w.value(1), w.value(2)),
        (123_456, 80_000, 1_550)
    );

    // The same rows as UTF-8 with a byte-order mark read identically.
    let (u, ustats) = read_all(&fixture("wages_utf8_bom.csv"), &s, Layout::Raw, 1024);
    assert_eq!(ustats.encoding, Encoding::Utf8);
    assert_eq!(concat(&u), all);
    assert_ne!(ustats.sha256, stats.sha256);
    assert_eq!(stats.sha256.len(), 64);
}

#[test]
fn bad_rows_become_rejects_with_row_and_reason() {
    let s = schema("ui_claims");
    for batch_rows in [1, 3, 1024] {
        let (b, stats) = read_all(
            &fixture("claims_bom_quoted.csv"),
            &s,
            Layout::Raw,
            batch_rows,
        );
        assert_eq!(stats.encoding, Encoding::Utf8);
        assert_eq!(
            (stats.rows_read, stats.rows_accepted, stats.rows_rejected),
            (12, 5, 7)
        );
        let got: Vec<(u64, &str, Option<&str>)> = rejects(&b)
            .iter()
            .map(|r| {
                (
                    r.row,
                    r.reason.clone().leak() as &str,
                    r.column.clone().map(|c| &*c.leak()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "bad_date", Some("claim_filed_date")),
                (4, "bad_code", Some("claim_type")),
                (5, "bad_int", Some("weeks_paid")),
                (6, "missing_required", Some("claim_id")),
                (7, "duplicate_row", None),
                (10, "wrong_field_count", None),
                // No SSN and no surname: nothing could link it.
                (11, "no_identifier", None),
            ],
            "batch_rows {batch_rows}"
        );
        let accepted_rows: Vec<u64> = b.iter().flat_map(|x| x.rows.clone()).collect();
        // Row 12 has no SSN and no first name, but its surname and DOB can link.
        assert_eq!(accepted_rows, vec![1, 2, 8, 9, 12]);
        let all = concat(&b);
        // The BOM is not part of the first column's name, the quoted line break stays
        // inside its field, and the row after it is row 2, not 3.
        assert_eq!(strings(&all, "claim_id")[0].as_deref(), Some("C-1"));
        assert_eq!(
            strings(&all, "last_name")[0].as_deref(),
            Some("Quackenbush,\r\nJr")
        );
        // Rejects carry the record id and the SSN's last four only.
        let r3 = &rejects(&b)[0];
        assert_eq!(r3.record_id.as_deref(), Some("C-3"));
        assert_eq!(r3.ssn_last4.as_deref(), Some("4433"));
        // A duplicate is judged when its batch is taken, and names its record the same way.
        let dup = &rejects(&b)[4];
        assert_eq!(
            (dup.record_id.as_deref(), dup.ssn_last4.as_deref()),
            (Some("C-2"), Some("4432"))
        );
        for r in rejects(&b) {
            let text = format!("{r:?}");
            assert!(
                !text.contains("212-67") && !text.contains("Vreeland"),
                "{text}"
            );
        }
    }
}

/// Writes `batches` (all columns as they are) to a Parquet file.
fn write_parquet(path: &Path, batch: &RecordBatch) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// The claims fixture as a Parquet file of text columns (every CSV record, bad ones too).
fn claims_as_text_parquet(path: &Path) {
    let text = std::fs::read_to_string(fixture("claims_bom_quoted.csv")).unwrap();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = rdr
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r.len() == header.len())
        .collect();
    let fields: Vec<Field> = header
        .iter()
        .map(|h| Field::new(h, DataType::Utf8, true))
        .collect();
    let cols: Vec<ArrayRef> = (0..header.len())
        .map(|j| {
            Arc::new(StringArray::from_iter(
                records
                    .iter()
                    .map(|r| Some(r[j].to_string()).filter(|s| !s.is_empty())),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    write_parquet(path, &batch);
}

#[test]
fn parquet_and_csv_of_the_same_data_give_identical_batches() {
    let s = schema("ui_claims");
    let dir = tempfile::tempdir().unwrap();
    let (csv_batches, _) = read_all(&fixture("claims_bom_quoted.csv"), &s, Layout::Raw, 1024);
    let csv_all = concat(&csv_batches);

    // Typed Parquet (what an export that kept the types would hold).
    let typed = dir.path().join("typed.parquet");
    write_parquet(&typed, &csv_all);
    let (pq, stats) = read_all(&typed, &s, Layout::Raw, 1024);
    assert_eq!(concat(&pq), csv_all);
    assert_eq!(stats.rows_rejected, 0);

    // All-text Parquet with the same records, bad ones included (the wrong-field-count
    // row cannot exist in Parquet, so it is left out): same accepted rows and rejects.
    let text = dir.path().join("text.parquet");
    claims_as_text_parquet(&text);
    let (pq, stats) = read_all(&text, &s, Layout::Raw, 2);
    assert_eq!(concat(&pq), csv_all);
    assert_eq!((stats.rows_read, stats.rows_rejected), (11, 6));
    let reasons: Vec<String> = rejects(&pq).into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            "bad_date",
            "bad_code",
            "bad_int",
            "missing_required",
            "duplicate_row",
            "no_identifier"
        ]
    );
}

#[test]
fn parquet_column_of_the_wrong_type_names_file_and_column() {
    let s = schema("ui_wages");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.parquet");
    let (b, _) = read_all(&fixture("wages_utf8_bom.csv"), &s, Layout::Raw, 1024);
    let all = concat(&b);
    // year_quarter as a float: nothing the schema can take.
    let mut cols: Vec<ArrayRef> = all.columns().to_vec();
    let mut fields: Vec<Field> = all
        .schema()
        .fields()
        .iter()
        .map(|f| (**f).clone())
        .collect();
    let i = all.schema().index_of("year_quarter").unwrap();
    cols[i] = Arc::new(arrow::array::Float64Array::from(vec![1.0, 2.0, 3.0]));
    fields[i] = Field::new("year_quarter", DataType::Float64, true);
    write_parquet(
        &path,
        &RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap(),
    );
    let err = ingest::open(&SourceFile::new(&path).unwrap(), &s, Layout::Raw, 16)
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("w.parquet") && msg.contains("`year_quarter`"),
        "{msg}"
    );
}

#[test]
fn identify_gives_null_tokens_for_bad_ssns_and_counts_reasons() {
    let s = schema("ui_claims");
    let (b, _) = read_all(&fixture("claims_bom_quoted.csv"), &s, Layout::Raw, 1024);
    let t = tokenizer();
    let id = identify(&b[0], &s, Layout::Raw, &t, today()).unwrap();
    assert_eq!(id.len(), 5); // rows 1, 2, 8, 9, 12
    let ssn = &id.tokens[Rule::Ssn.index()];
    let ssn_dob = &id.tokens[Rule::SsnDob.index()];
    let name_dob = &id.tokens[Rule::NameDob.index()];
    assert!(ssn[0].is_some() && ssn[1].is_some());
    assert!(
        ssn[2].is_none() && ssn_dob[2].is_none(),
        "area 000 gives no SSN token"
    );
    assert!(
        ssn[3].is_none() && ssn_dob[3].is_none(),
        "10 digits give no SSN token"
    );
    assert!(
        name_dob[..4].iter().all(Option::is_some),
        "names still usable"
    );
    // Row 12: no SSN and no first name, kept for its surname and DOB.
    assert!(ssn[4].is_none() && name_dob[4].is_none());
    assert_eq!(
        id.reasons[4],
        vec![Reason::SsnMissing, Reason::NameMissing, Reason::ZipMissing]
    );
    // ui_claims has no sex column: that rule is never filled, and no reason is invented.
    assert!(
        id.tokens[Rule::NameInitSexDob.index()]
            .iter()
            .all(Option::is_none)
    );
    assert_eq!(id.reasons[2], vec![Reason::SsnInvalidArea]);
    assert_eq!(
        id.reasons[3],
        vec![Reason::SsnBadLength, Reason::ZipMissing]
    );
    let counts = id.reason_counts();
    assert_eq!(counts.get(Reason::SsnInvalidArea), 1);
    assert_eq!(counts.get(Reason::SsnBadLength), 1);
    assert_eq!(counts.get(Reason::ZipMissing), 2);
    assert_eq!(
        id.birth_year,
        vec![Some(1983), Some(1990), Some(1988), Some(1979), Some(1967)]
    );
    assert_eq!(id.zip3[1], Some(*b"651"));
    assert_eq!(id.ssn_last4[2].as_deref(), Some("3456"));
    assert_eq!(id.ssn_last4[3].as_deref(), Some("4399"));
    assert_eq!(id.record_token[0], Some(t.record_token("ui_claims", "C-1")));
    // Same answer on one core and on many.
    let mut big = b[0].clone();
    let idx: Vec<u32> = (0..5000).map(|i| i % 4).collect();
    let take = arrow::array::UInt32Array::from(idx);
    let cols = big
        .batch
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c, &take, None).unwrap())
        .collect();
    big.batch = RecordBatch::try_new(big.batch.schema(), cols).unwrap();
    big.rows = (1..=5000).collect();
    let many = identify(&big, &s, Layout::Raw, &t, today()).unwrap();
    for i in 0..5000 {
        assert_eq!(many.tokens[0][i], id.tokens[0][i % 4]);
        assert_eq!(many.reasons[i], id.reasons[i % 4]);
    }
}

/// A participants CSV built from the schema's own column list, with every required value
/// filled and the given overrides.
pub fn participants_csv(path: &Path, people: &[&[(&str, &str)]]) {
    let s = schema("participants");
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(s.column_names()).unwrap();
    for (n, person) in people.iter().enumerate() {
        let rec: Vec<String> = s
            .columns
            .iter()
            .map(|c| {
                if let Some((_, v)) = person.iter().find(|(k, _)| *k == c.name) {
                    return v.to_string();
                }
                if !c.required {
                    return String::new();
                }
                match c.ty {
                    xmatch::schema::ColumnType::Date => "2024-03-01".into(),
                    xmatch::schema::ColumnType::Code => c.allowed[0].clone(),
                    _ if c.name == "individual_id" => format!("P{n}"),
                    _ => "X".into(),
                }
            })
            .collect();
        w.write_record(rec).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn carried_temp_id_with_wrong_check_character_is_flagged_not_trusted() {
    let good = TempId::generate().unwrap();
    let mut bad = good.as_str().as_bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).unwrap();
    let typed = good.as_str().to_lowercase();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("participants.csv");
    let base = [
        ("first_name", "Wilhelmina"),
        ("last_name", "Cartwright"),
        ("dob", "1990-02-03"),
    ];
    let p = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        base.iter().chain(extra).copied().collect()
    };
    let (a, b2, c) = (
        // Sex `M` in a column coded 1/2/9: identity values are identify's to judge.
        p(&[("temp_id", typed.clone().leak()), ("sex", "M")]),
        p(&[("temp_id", bad.clone().leak()), ("individual_id", "P9")]),
        p(&[("individual_id", "P10")]),
    );
    participants_csv(&path, &[&a, &b2, &c]);
    let s = schema("participants");
    let (batches, stats) = read_all(&path, &s, Layout::Raw, 1024);
    assert_eq!(stats.rows_accepted, 3, "{:?}", rejects(&batches));
    let id = identify(&batches[0], &s, Layout::Raw, &tokenizer(), today()).unwrap();
    assert_eq!(id.temp_id, vec![Some(good.clone()), None, None]);
    assert_eq!(id.temp_id_invalid, vec![false, true, false]);
    assert_eq!(id.sex[0], Some(xmatch::identity::Sex::M));
    let counts = id.reason_counts();
    assert_eq!(counts.temp_id_invalid, 1);
    assert!(counts.nonzero().contains(&(TEMP_ID_INVALID, 1)));
}

#[test]
fn rows_read_always_equals_accepted_plus_rejected() {
    use proptest::prelude::*;
    let s = schema("ui_wages");
    let dir = tempfile::tempdir().unwrap();
    let cell = prop_oneof![
        Just(String::new()),
        Just("212-67-4431".to_string()),
        Just("2024Q1".to_string()),
        Just("12.50".to_string()),
        Just("\"a,b\"".to_string()),
        Just("\"line\nbreak\"".to_string()),
        "[a-zA-Z0-9 .-]{0,6}",
    ];
    let row = proptest::collection::vec(cell, 5..8);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&proptest::collection::vec(row, 0..40), |rows| {
            let path = dir.path().join("w.csv");
            let mut text =
                String::from("ssn,first_name,last_name,employer_id,year_quarter,wages\n");
            for r in &rows {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            std::fs::write(&path, text).unwrap();
            let (_, stats) = read_all(&path, &s, Layout::Raw, 7);
            prop_assert_eq!(stats.rows_read, rows.len() as u64);
            Ok(())
        })
        .unwrap();
}

/// Not a test of correctness: reads a synthetic wage CSV and prints rows/s. Run with
/// `cargo test --release --test it -- --ignored --nocapture ingest_speed`.
#[test]
#[ignore]
fn ingest_speed() {
    use std::io::Write;
    let rows: usize = std::env::var("XMATCH_SPEED_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ui_wages.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(w, "ssn,first_name,last_name,employer_id,year_quarter,wages").unwrap();
    for i in 0..rows {
        let p = i / 12;
        writeln!(
            w,
            "{:03}-{:02}-{:04},FIRST{},LASTNAME{},EMP{:06},{}Q{},{}.{:02}",
            100 + p % 500,
            10 + p % 89,
            1000 + p % 8999,
            p % 977,
            p % 4099,
            p % 20011,
            2022 + (i % 12) / 4,
            1 + i % 4,
            1000 + (i * 7919) % 50000,
            i % 100
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let bytes = std::fs::metadata(&path).unwrap().len();
    let s = schema("ui_wages");
    let t = tokenizer();
    let start = std::time::Instant::now();
    let mut r = ingest::open(&SourceFile::new(&path).unwrap(), &s, Layout::Raw, 65_536).unwrap();
    let mut n = 0;
    let mut idt = std::time::Duration::ZERO;
    for b in r.by_ref() {
        let b = b.unwrap();
        n += b.batch.num_rows();
        let t0 = std::time::Instant::now();
        let id = identify(&b, &s, Layout::Raw, &t, today()).unwrap();
        idt += t0.elapsed();
        assert_eq!(id.len(), b.batch.num_rows());
    }
    let stats = r.finish().unwrap();
    let total = start.elapsed();
    let read = total - idt;
    eprintln!(
        "ingest_speed: {rows} rows, {:.0} MB; read {:.2}s = {:.2} M rows/s; identify {:.2}s = {:.2} M rows/s; accepted {n}, rejected {}",
        bytes as f64 / 1e6,
        read.as_secs_f64(),
        rows as f64 / read.as_secs_f64() / 1e6,
        idt.as_secs_f64(),
        rows as f64 / idt.as_secs_f64() / 1e6,
        stats.rows_rejected
    );
}
