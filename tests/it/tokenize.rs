//! The partner-side tokenized layout: no raw identifier reaches the output, and the
//! output identifies exactly as its raw original.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use xmatch::identity::Tokenizer;
use xmatch::identity::identify::{IdentifiedBatch, IdentifyError, identify};
use xmatch::identity::{RULE_SET_VERSION, RULES};
use xmatch::ingest::layout::{self, Layout};
use xmatch::ingest::{self, SourceFile};
use xmatch::schema::SourceSchema;
use xmatch::tokenize::tokenize;

use crate::ingest::{read_all, schema, today, tokenizer};

/// Generated people: (ssn as written, first, last, dob as written, canonical dob).
const PEOPLE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "212-67-4431",
        "Zebulon",
        "Quackenbush",
        "1983-04-05",
        "1983-04-05",
    ),
    (
        "212674432",
        "Odalys",
        "Pemberton",
        "04/05/1990",
        "1990-04-05",
    ),
    (
        "41223344",
        "Ignatius",
        "Fairweather",
        "19600601",
        "1960-06-01",
    ),
    (
        "000-12-3456",
        "Perpetua",
        "Lindqvist",
        "1988-08-08",
        "1988-08-08",
    ),
    ("", "Marisol", "Quintero", "7/7/1991", "1991-07-07"),
];

fn raw_file(dir: &Path) -> std::path::PathBuf {
    let s = schema("public_assistance");
    let path = dir.join("pa.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(s.column_names()).unwrap();
    for (i, (ssn, first, last, dob, _)) in PEOPLE.iter().enumerate() {
        let rec: Vec<String> = s
            .columns
            .iter()
            .map(|c| match c.name.as_str() {
                "case_id" => format!("CASE-{i:04}"),
                "ssn" => ssn.to_string(),
                "first_name" => first.to_string(),
                "last_name" => last.to_string(),
                "dob" => dob.to_string(),
                "sex" => ["M", "F"][i % 2].to_string(),
                "zip" => format!("6510{i}"),
                "program" => "SNAP".into(),
                "benefit_type" => "FOOD".into(),
                "determination_date" => "2024-01-10".into(),
                "benefit_start" => "2024-02-01".into(),
                "benefit_end" => "2024-07-31".into(),
                // A column the test does not know yet: leave it empty unless required.
                _ if c.required => "X".into(),
                _ => String::new(),
            })
            .collect();
        w.write_record(rec).unwrap();
    }
    w.flush().unwrap();
    path
}

/// Every form of an identifier that must not appear in a tokenized file.
fn forbidden() -> Vec<String> {
    let mut out = Vec::new();
    for (ssn, first, last, _, dob) in PEOPLE {
        let digits: String = ssn.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 7 {
            let nine = format!("{digits:0>9}");
            out.push(nine.clone());
            out.push(format!("{}-{}-{}", &nine[..3], &nine[3..5], &nine[5..]));
            out.push(nine.trim_start_matches('0').to_string());
        }
        out.push(first.to_uppercase());
        out.push(last.to_uppercase());
        let (y, m, d) = (&dob[..4], &dob[5..7], &dob[8..]);
        out.push(dob.to_string());
        out.push(format!("{y}{m}{d}"));
        out.push(format!("{m}/{d}/{y}"));
        out.push(format!(
            "{}/{}/{y}",
            m.trim_start_matches('0'),
            d.trim_start_matches('0')
        ));
    }
    out
}

fn dob_days() -> Vec<i32> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    PEOPLE
        .iter()
        .map(|p| {
            let d = chrono::NaiveDate::parse_from_str(p.4, "%Y-%m-%d").unwrap();
            (d - epoch).num_days() as i32
        })
        .collect()
}

/// Every decoded value of a file (CSV fields; Parquet values of every column, binary as
/// lossy text), plus every date value, for the leak scan.
fn decoded_values(path: &Path) -> (Vec<String>, Vec<i32>) {
    let mut texts = Vec::new();
    let mut dates = Vec::new();
    if path.extension().unwrap() == "csv" {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .unwrap();
        for rec in r.byte_records() {
            for f in rec.unwrap().iter() {
                texts.push(String::from_utf8_lossy(f).into_owned());
            }
        }
        return (texts, dates);
    }
    let f = std::fs::File::open(path).unwrap();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    for b in r {
        let b: RecordBatch = b.unwrap();
        for (field, col) in b.schema().fields().iter().zip(b.columns()) {
            texts.push(field.name().clone());
            match col.data_type() {
                DataType::Date32 => {
                    let a = col.as_primitive::<arrow::datatypes::Date32Type>();
                    dates.extend((0..a.len()).filter(|&i| a.is_valid(i)).map(|i| a.value(i)));
                }
                DataType::FixedSizeBinary(_) => {
                    let a = col.as_fixed_size_binary();
                    for i in (0..a.len()).filter(|&i| a.is_valid(i)) {
                        texts.push(String::from_utf8_lossy(a.value(i)).into_owned());
                    }
                }
                _ => {
                    let a = arrow::compute::cast(col, &DataType::Utf8).unwrap();
                    let a = a.as_string::<i32>();
                    texts.extend(
                        (0..a.len())
                            .filter(|&i| a.is_valid(i))
                            .map(|i| a.value(i).to_string()),
                    );
                }
            }
        }
    }
    (texts, dates)
}

/// What leaked into a file, if anything.
fn leaks(path: &Path) -> Vec<String> {
    let (texts, dates) = decoded_values(path);
    let bad = forbidden();
    let mut found = Vec::new();
    for t in &texts {
        let up = t.to_uppercase();
        for f in &bad {
            if up.contains(f.as_str()) {
                found.push(format!("`{f}`"));
            }
        }
    }
    let dobs = dob_days();
    found.extend(
        dates
            .iter()
            .filter(|d| dobs.contains(d))
            .map(|d| format!("date {d}")),
    );
    found
}

fn identify_file(
    path: &Path,
    s: &SourceSchema,
    layout: Layout,
    t: &Tokenizer,
) -> Vec<IdentifiedBatch> {
    let (batches, _) = read_all(path, s, layout, 2);
    batches
        .iter()
        .map(|b| identify(b, s, layout, t, today()).unwrap())
        .collect()
}

fn flat(ids: &[IdentifiedBatch]) -> IdentifiedBatch {
    let mut out = IdentifiedBatch::default();
    for id in ids {
        for (o, t) in out.tokens.iter_mut().zip(&id.tokens) {
            o.extend(t.iter().copied());
        }
        out.record_token.extend(id.record_token.iter().copied());
        out.birth_year.extend(id.birth_year.iter().copied());
        out.zip3.extend(id.zip3.iter().cloned());
        out.sex.extend(id.sex.iter().copied());
    }
    out
}

#[test]
fn tokenized_output_has_no_identifier_and_identifies_as_the_raw_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = schema("public_assistance");
    let raw = raw_file(dir.path());
    let t = tokenizer();
    // The scan catches a planted leak: the raw file is full of them.
    assert!(leaks(&raw).len() >= PEOPLE.len() * 3);

    let from_raw = flat(&identify_file(&raw, &s, Layout::Raw, &t));
    assert!(from_raw.tokens.iter().all(|t| t.len() == PEOPLE.len()));
    assert!(from_raw.tokens[0][0].is_some() && from_raw.tokens[0][3].is_none());

    for ext in ["csv", "parquet"] {
        let out = dir.path().join(format!("pa.tok.{ext}"));
        let summary = tokenize(&SourceFile::new(&raw).unwrap(), &out, &s, &t, today()).unwrap();
        assert_eq!(summary.rows_written, PEOPLE.len() as u64);
        assert_eq!(
            summary
                .reasons
                .get(xmatch::identity::Reason::SsnInvalidArea),
            1
        );
        let shown = summary.to_string();
        let l = leaks(&out);
        assert!(l.is_empty(), "{ext}: leaked {l:?}");
        for f in forbidden() {
            assert!(!shown.to_uppercase().contains(&f), "summary shows {f}");
        }
        // Every rule the schema can feed has a column, plus the record token.
        let cols: Vec<String> = layout::columns(&s, Layout::Tokenized)
            .into_iter()
            .map(|c| c.name)
            .collect();
        for rule in RULES {
            assert!(cols.contains(&layout::token_column(rule)), "{rule}");
        }
        for c in [
            "tok_record",
            "birth_year",
            "zip3",
            "sex",
            "key_id",
            "rule_set_version",
            "program",
        ] {
            assert!(cols.iter().any(|x| x == c), "{c}");
        }
        for gone in ["ssn", "first_name", "last_name", "dob", "zip", "case_id"] {
            assert!(!cols.iter().any(|x| x == gone), "{gone}");
        }

        let from_tok = flat(&identify_file(&out, &s, Layout::Tokenized, &t));
        assert_eq!(from_tok.tokens, from_raw.tokens, "{ext}");
        assert_eq!(from_tok.record_token, from_raw.record_token, "{ext}");
        assert_eq!(from_tok.birth_year, from_raw.birth_year, "{ext}");
        assert_eq!(from_tok.zip3, from_raw.zip3, "{ext}");
        assert_eq!(from_tok.sex, from_raw.sex, "{ext}");

        // Tokens under another key are refused, not silently unmatched.
        let other = Tokenizer::new(&[42; 32], "another-key");
        let (batches, _) = read_all(&out, &s, Layout::Tokenized, 1024);
        let err = identify(&batches[0], &s, Layout::Tokenized, &other, today()).unwrap_err();
        assert!(
            matches!(err, IdentifyError::KeyMismatch { row: 1, .. }),
            "{err}"
        );
        // During a key rotation the other key's files are taken, and say so.
        let rotating = Tokenizer::new(&[42; 32], "another-key").accepting(t.key_id());
        let ids = identify(&batches[0], &s, Layout::Tokenized, &rotating, today()).unwrap();
        assert_eq!(ids.other_key.as_deref(), Some(t.key_id()), "{ext}");
        let own = identify(&batches[0], &s, Layout::Tokenized, &t, today()).unwrap();
        assert_eq!(own.other_key, None);
    }
}

#[test]
fn tokenize_refuses_a_raw_file_missing_a_column_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = schema("ui_wages");
    let out = dir.path().join("w.tok.csv");
    let input = SourceFile::new(crate::ingest::fixture("wages_missing_column.csv")).unwrap();
    let err = tokenize(&input, &out, &s, &tokenizer(), today()).unwrap_err();
    assert!(err.to_string().contains("`wages`"), "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Reading a raw file as tokenized fails up front, naming the missing column.
    let raw = SourceFile::new(crate::ingest::fixture("wages_utf8_bom.csv")).unwrap();
    let err = ingest::open(&raw, &s, Layout::Tokenized, 16).err().unwrap();
    assert!(err.to_string().contains("`key_id`"), "{err}");
}

#[test]
fn tokenize_command_writes_tokens_with_a_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_file(dir.path());
    let key = dir.path().join("shared.key");
    std::fs::write(&key, [42u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.path().join("shared.key.id"), "test-key\n").unwrap();
    let out = dir.path().join("pa.tok.parquet");
    let run = std::process::Command::new(crate::support::xmatch_bin())
        .args(["tokenize", "--schema", "public_assistance", "--key"])
        .arg(&key)
        .arg(&raw)
        .arg(&out)
        .env_remove("XMATCH_WORKSPACE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("written 5"), "{stdout}");
    for f in forbidden() {
        assert!(!stdout.to_uppercase().contains(&f) && !stderr.to_uppercase().contains(&f));
    }
    assert!(leaks(&out).is_empty());
    let s = schema("public_assistance");
    let from_tok = flat(&identify_file(&out, &s, Layout::Tokenized, &tokenizer()));
    let from_raw = flat(&identify_file(&raw, &s, Layout::Raw, &tokenizer()));
    assert_eq!(from_tok.tokens, from_raw.tokens);
}

/// A copy of the current tokenized file `current` as rule set `version` wrote it: the
/// header through `rename`, every row's `rule_set_version` cell set to `version`.
fn as_older_version(current: &Path, out: &Path, version: u32, rename: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(current).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let col = header
        .split(',')
        .position(|c| c == "rule_set_version")
        .unwrap();
    let mut older = rename(header);
    older.push('\n');
    let (now, then) = (RULE_SET_VERSION.to_string(), version.to_string());
    for line in lines {
        let mut cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[col], now);
        cells[col] = &then;
        older.push_str(&cells.join(","));
        older.push('\n');
    }
    std::fs::write(out, older).unwrap();
}

/// The probabilistic features of every row of a tokenized public-assistance file.
fn tokenized_features(path: &Path) -> Vec<xmatch::identity::identify::Features> {
    let s = schema("public_assistance");
    let (batches, _) = read_all(path, &s, Layout::Tokenized, 1024);
    let rows: Vec<usize> = (0..batches[0].batch.num_rows()).collect();
    xmatch::identity::identify::features_of(
        &batches[0],
        &s,
        Layout::Tokenized,
        &tokenizer(),
        today(),
        &rows,
    )
    .unwrap()
}

/// The current tokenized file of [`raw_file`]'s people and a copy of it as rule set
/// `version` wrote it ([`as_older_version`]): the features of both, once their tokens
/// are seen to agree.
fn current_and_older(
    version: u32,
    rename: impl Fn(&str) -> String,
) -> (
    Vec<xmatch::identity::identify::Features>,
    Vec<xmatch::identity::identify::Features>,
) {
    let dir = tempfile::tempdir().unwrap();
    let s = schema("public_assistance");
    let raw = raw_file(dir.path());
    let t = tokenizer();
    let current = dir.path().join("pa.tok.csv");
    tokenize(&SourceFile::new(&raw).unwrap(), &current, &s, &t, today()).unwrap();
    let old = dir.path().join(format!("pa.v{version}.csv"));
    as_older_version(&current, &old, version, rename);
    assert_eq!(
        flat(&identify_file(&old, &s, Layout::Tokenized, &t)).tokens,
        flat(&identify_file(&current, &s, Layout::Tokenized, &t)).tokens
    );
    let both = (tokenized_features(&current), tokenized_features(&old));
    assert_eq!(both.0.len(), both.1.len());
    both
}

/// A partner file tokenized at rule set version 2 (before the `ssn_skip` and
/// `soundex_last_dob` blocking keys) is still taken: the same tokens and encodings, its
/// old blocking columns ignored, the keys both versions have kept.
#[test]
fn a_version_2_tokenized_file_is_accepted_without_its_changed_blocking_keys() {
    use xmatch::identity::blocking::BlockKind;
    // Version 2's file: the changed blocking columns under their old names, version 2.
    let (new, old_f) = current_and_older(2, |h| {
        h.replacen("blk_ssn_skip_1_3", "blk_ssn_head", 1)
            .replacen("blk_ssn_skip_3_5", "blk_ssn_tail", 1)
            .replace("blk_ssn_skip", "blk_ssn_unused")
            .replacen("blk_soundex_last_dob", "blk_soundex_last_month", 1)
    });
    let mut ssn_keys = 0;
    for (n, o) in new.iter().zip(&old_f) {
        assert_eq!(n.encoding, o.encoding);
        assert_eq!(o.blocks.get(BlockKind::SsnSkip13), None);
        assert_eq!(o.blocks.get(BlockKind::SsnSkip13Last), None);
        assert_eq!(o.blocks.get(BlockKind::SoundexLastDob), None);
        ssn_keys += n.blocks.get(BlockKind::SsnSkip13).is_some() as usize;
        assert_eq!(
            n.blocks.get(BlockKind::DobInitials),
            o.blocks.get(BlockKind::DobInitials)
        );
        assert_eq!(
            n.blocks.get(BlockKind::SsnGap),
            o.blocks.get(BlockKind::SsnGap)
        );
    }
    assert!(ssn_keys >= 2, "the current file has SSN keys: {ssn_keys}");
}

/// A partner file of rule set version 3 (before the `ssn_skip_*_last` and
/// `soundex_first_dob` keys) is the current file without those columns: everything else
/// it carries is taken as it is.
#[test]
fn a_version_3_tokenized_file_is_accepted_without_version_4s_keys() {
    use xmatch::identity::blocking::{BLOCK_KINDS, BlockKind};
    let added_in_4 = |k: BlockKind| k.is_last_only() || k == BlockKind::SoundexFirstDob;
    let (new, old_f) = current_and_older(3, |h| {
        BLOCK_KINDS
            .iter()
            .filter(|k| added_in_4(**k))
            .fold(h.to_string(), |h, k| {
                let col = layout::block_column(*k);
                h.replacen(&col, &format!("{col}_unused"), 1)
            })
    });
    let mut last_keys = 0;
    for (n, o) in new.iter().zip(&old_f) {
        assert_eq!(n.encoding, o.encoding);
        for kind in BLOCK_KINDS {
            let added = added_in_4(kind);
            last_keys += (added && n.blocks.get(kind).is_some()) as usize;
            let expected = if added { None } else { n.blocks.get(kind) };
            assert_eq!(o.blocks.get(kind), expected, "{}", kind.name());
        }
    }
    assert!(last_keys >= 5, "the current file has version 4's keys");
    assert!(
        new.iter()
            .any(|f| f.blocks.get(BlockKind::SsnSkip79).is_some())
    );
}

/// Rows of one identity are keyed and encoded once per batch (`blocks_of` and
/// `features_of` share the work among a person's rows): each row still gets exactly
/// what it would get alone, in the order asked, repeats and all.
#[test]
fn blocking_keys_and_encodings_of_repeated_identities_are_each_rows_own() {
    use xmatch::identity::identify::{blocks_of, features_of};
    let dir = tempfile::tempdir().unwrap();
    let s = schema("public_assistance");
    let raw = raw_file(dir.path());
    let t = tokenizer();
    let (batches, _) = read_all(&raw, &s, Layout::Raw, 1024);
    let b = &batches[0];
    let n = b.batch.num_rows();
    assert!(n > 3);
    // Forward, backward and forward again: every identity three times, apart.
    let rows: Vec<usize> = (0..n).chain((0..n).rev()).chain(0..n).collect();
    let blocks = blocks_of(b, &s, Layout::Raw, &t, today(), &rows).unwrap();
    let features = features_of(b, &s, Layout::Raw, &t, today(), &rows).unwrap();
    assert_eq!((blocks.len(), features.len()), (rows.len(), rows.len()));
    assert!(blocks.values.len() <= n, "each identity keyed once");
    for (i, &r) in rows.iter().enumerate() {
        let alone = blocks_of(b, &s, Layout::Raw, &t, today(), &[r]).unwrap();
        assert_eq!(blocks.get(i), alone.get(0), "row {r}");
        let alone = features_of(b, &s, Layout::Raw, &t, today(), &[r]).unwrap();
        assert_eq!(features[i].encoding, alone[0].encoding, "row {r}");
        assert_eq!(features[i].blocks, alone[0].blocks, "row {r}");
    }
    let distinct: std::collections::HashSet<_> =
        blocks.values.iter().filter(|b| !b.is_empty()).collect();
    assert!(distinct.len() > 1, "rows of different people differ");
}
