//! Reporting over the de-identified zone: a tiny hand-computed lake
//! (`tests/fixtures/report/`, every expected number derived in its DERIVATION.md),
//! written here as Hive-partitioned Parquet with the real datasets' columns, then the
//! session, the indicators, suppression, co-enrolment and data quality read from it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use xmatch::report::performance::{self, Suppression};
use xmatch::report::suppress::{ADDITIVE, Cell, TOTAL, suppress};
use xmatch::report::{LakeSession, OutputFormat, ReportError, output};
use xmatch::schema::Catalog;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report");

/// The participants dataset's columns as the pipeline writes them: the schema's
/// de-identified columns, then the statuses and wage outcomes `write_participants` adds
/// (program_year is the Hive partition, in the path only).
fn participants_schema() -> SchemaRef {
    let catalog = Catalog::builtin().unwrap();
    let base =
        xmatch::deid::deid_schema(catalog.source("participants").unwrap(), Some("entry_date"));
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    let b = |n: &str| Field::new(n, DataType::Boolean, true);
    fields.push(b("has_ssn"));
    for s in ["snap", "tanf", "ui_claimant", "taa"] {
        fields.push(b(&format!("verified_{s}")));
        fields.push(b(&format!("{s}_status_disagrees")));
    }
    for k in 1..=4 {
        fields.push(b(&format!("employed_q{k}")));
        fields.push(Field::new(
            format!("wages_q{k}"),
            DataType::Decimal128(14, 2),
            true,
        ));
    }
    fields.push(b("retention_same_employer"));
    Arc::new(Schema::new(fields))
}

fn services_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("person_key", DataType::Utf8, false),
        Field::new("entry_date", DataType::Date32, false),
        Field::new("service_code", DataType::Utf8, false),
        Field::new("service_date", DataType::Date32, false),
        Field::new("staff_assisted", DataType::Boolean, false),
    ]))
}

fn quality_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
    ]))
}

/// Reads a fixture CSV into rows of `column → value` (empty = null).
fn read_csv(name: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(Path::new(FIXTURE).join(name)).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .filter(|(_, v)| !v.is_empty())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Rows as a batch of `schema`: each column cast from the CSV text (absent → null).
fn to_batch(schema: &SchemaRef, rows: &[&HashMap<String, String>]) -> RecordBatch {
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            let text: StringArray = rows
                .iter()
                .map(|r| r.get(f.name()).map(String::as_str))
                .collect();
            arrow::compute::cast(&text, f.data_type())
                .unwrap_or_else(|e| panic!("column {}: {e}", f.name()))
        })
        .collect();
    RecordBatch::try_new(schema.clone(), cols).unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// Writes a dataset partitioned by the program year of each row's entry date.
fn write_by_program_year(
    snapshot: &Path,
    dataset: &str,
    schema: &SchemaRef,
    rows: &[HashMap<String, String>],
) {
    let mut by_py: BTreeMap<i32, Vec<&HashMap<String, String>>> = BTreeMap::new();
    for r in rows {
        let entry: chrono::NaiveDate = r["entry_date"].parse().unwrap();
        by_py
            .entry(xmatch::deid::program_year(entry))
            .or_default()
            .push(r);
    }
    for (py, rows) in by_py {
        let path = snapshot
            .join(dataset)
            .join(format!("program_year={py}"))
            .join("part-00000.parquet");
        write_parquet(&path, &to_batch(schema, &rows));
    }
}

/// Publishes the fixture as run 1 under `lake_dir`, laid out as `lake::Snapshot::publish`
/// leaves it: `snapshots/1/<dataset>/…` and `current -> snapshots/1`.
pub fn write_fixture_lake(lake_dir: &Path) {
    let snapshot = lake_dir.join("snapshots").join("1");
    write_by_program_year(
        &snapshot,
        "participants",
        &participants_schema(),
        &read_csv("participants.csv"),
    );
    write_by_program_year(
        &snapshot,
        "services",
        &services_schema(),
        &read_csv("services.csv"),
    );
    let q = read_csv("data_quality.csv");
    write_parquet(
        &snapshot.join("data_quality").join("part-00000.parquet"),
        &to_batch(&quality_schema(), &q.iter().collect::<Vec<_>>()),
    );
    std::os::unix::fs::symlink("snapshots/1", lake_dir.join("current")).unwrap();
}

async fn fixture_session() -> (tempfile::TempDir, LakeSession) {
    let dir = tempfile::tempdir().unwrap();
    write_fixture_lake(dir.path());
    let session = LakeSession::open(dir.path()).await.unwrap();
    (dir, session)
}

type Key = (String, String, String, String);

fn key(c: &Cell) -> Key {
    (
        c.program.clone(),
        c.indicator.clone(),
        c.breakdown.clone(),
        c.group.clone(),
    )
}

#[tokio::test]
async fn report_indicators_match_the_hand_computed_fixture() {
    let (_dir, session) = fixture_session().await;
    let cells = performance::cells(&session, 2024).await.unwrap();
    let got: HashMap<Key, &Cell> = cells.iter().map(|c| (key(c), c)).collect();
    let expected = read_csv("expected_performance_py2024.csv");
    for e in &expected {
        let k: Key = (
            e["program"].clone(),
            e["indicator"].clone(),
            e["breakdown"].clone(),
            e["group"].clone(),
        );
        let c = got.get(&k).unwrap_or_else(|| panic!("no cell {k:?}"));
        let n = |f: &str| e[f].parse::<u64>().unwrap();
        assert_eq!(
            (c.numerator, c.denominator, c.awaiting),
            (n("numerator"), n("denominator"), n("awaiting")),
            "{k:?}"
        );
        match e.get("median") {
            Some(m) => {
                let m: f64 = m.parse().unwrap();
                let got = c.median.unwrap_or_else(|| panic!("{k:?}: no median"));
                assert!((got - m).abs() < 1e-9, "{k:?}: median {got} != {m}");
            }
            None => assert_eq!(c.median, None, "{k:?}"),
        }
    }
    // Every Total cell the report produced is one the derivation accounts for: nothing
    // extra (e.g. a DW credential cell from someone outside the cohort).
    let expected_totals: Vec<Key> = expected
        .iter()
        .filter(|e| e["breakdown"] == "Total")
        .map(|e| {
            (
                e["program"].clone(),
                e["indicator"].clone(),
                e["breakdown"].clone(),
                e["group"].clone(),
            )
        })
        .collect();
    let mut got_totals: Vec<Key> = cells
        .iter()
        .filter(|c| c.breakdown == "Total")
        .map(key)
        .collect();
    let mut want = expected_totals.clone();
    got_totals.sort();
    want.sort();
    assert_eq!(got_totals, want);
}

/// Measurable skill gains per program, computed from a PIRL extract alone (element
/// numbers as the header, values as PIRL text) with TEGL 10-16's rule written out here,
/// apart from the report's SQL: the extract must carry every element the indicator
/// needs. Returns program → (numerator persons, denominator count).
fn msg_from_pirl(
    header: &[u32],
    rows: &[Vec<Option<String>>],
    py: i32,
) -> BTreeMap<&'static str, (BTreeSet<String>, u64)> {
    let col = |n: u32| {
        header
            .iter()
            .position(|&h| h == n)
            .unwrap_or_else(|| panic!("the PIRL extract has no element {n}: MSG needs it"))
    };
    let (start, end) = (format!("{py}0701"), format!("{}0630", py + 1));
    let in_py = |v: &Option<String>| v.as_deref().is_some_and(|d| *d >= *start && *d <= *end);
    let mut out: BTreeMap<&'static str, (BTreeSet<String>, u64)> = BTreeMap::new();
    for r in rows {
        let v = |n: u32| r[col(n)].as_deref();
        // Dates are YYYYMMDD: text order is date order.
        let active =
            v(900).is_some_and(|d| d <= end.as_str()) && v(901).is_none_or(|d| d >= start.as_str());
        let training = v(1811).is_some_and(|d| d <= end.as_str())
            && v(1813).is_none_or(|d| d >= start.as_str());
        if !active || !training {
            continue;
        }
        let gain = in_py(&r[col(1806)])
            || (v(1800) == Some("1") && in_py(&r[col(1801)]))
            || [1807, 1808, 1809, 1810].iter().any(|&n| in_py(&r[col(n)]));
        for (program, flag) in [
            ("Adult", 903),
            ("Dislocated Worker", 904),
            ("Youth", 905),
            ("Wagner-Peyser", 918),
        ] {
            if v(flag) != Some("1") {
                continue;
            }
            let excluded = match v(923) {
                Some("01" | "02" | "03" | "04") => true,
                Some("05") => program == "Youth",
                _ => false,
            };
            if excluded {
                continue;
            }
            let e = out.entry(program).or_default();
            e.1 += 1;
            if gain {
                e.0.insert(v(100).unwrap().to_string());
            }
        }
    }
    out
}

/// TEGL 10-16 MSG, five gain types (the secondary diploma, PIRL 1800 = 1 dated 1801, beside
/// 1806-1810) at the program year's edges: numerator and denominator per program equal
/// DERIVATION.md, in the report and computed from the PIRL extract of the same lake.
#[tokio::test]
async fn report_msg_per_program_equals_the_hand_derivation() {
    let (_dir, session) = fixture_session().await;
    let keys = |prefix: &str, ns: &[u32]| -> BTreeSet<String> {
        ns.iter()
            .map(|n| {
                if prefix.starts_with("FXP") {
                    format!("{prefix}{n:09}")
                } else {
                    format!("{prefix}{n:08}")
                }
            })
            .collect()
    };
    // DERIVATION.md, "Measurable skill gains": who gains, and how many are counted.
    let mut adult = keys("FXP", &[6, 15]);
    adult.extend(keys("FXMA", &[2, 3, 6, 7]));
    let want: BTreeMap<&str, (BTreeSet<String>, u64)> = [
        ("Adult", (adult, 12)),
        (
            "Dislocated Worker",
            (keys("FXMD", &[2, 3, 6, 7, 9, 11]), 10),
        ),
        ("Youth", (keys("FXMY", &[2, 3, 6, 7, 9]), 9)),
    ]
    .into_iter()
    .collect();

    let cells = performance::cells(&session, 2024).await.unwrap();
    let msg: BTreeMap<&str, (u64, u64)> = cells
        .iter()
        .filter(|c| c.indicator == "Measurable skill gains rate" && c.breakdown == "Total")
        .map(|c| {
            let p = performance::PROGRAMS
                .iter()
                .find(|p| **p == c.program)
                .unwrap();
            (*p, (c.numerator, c.denominator))
        })
        .collect();
    let want_counts: BTreeMap<&str, (u64, u64)> = want
        .iter()
        .map(|(p, (n, d))| (*p, (n.len() as u64, *d)))
        .collect();
    assert_eq!(msg, want_counts, "report MSG (numerator, denominator)");

    let layout = PirlLayout::builtin(&Catalog::builtin().unwrap()).unwrap();
    let extract = pirl::extract(&session, &layout, 2024).await.unwrap();
    let from_pirl = msg_from_pirl(&extract.header, &extract.rows, 2024);
    assert_eq!(
        from_pirl, want,
        "MSG computed from the PIRL extract (persons gaining, denominator)"
    );
}

/// Effectiveness in serving employers: retention with the same employer is the one
/// approach computed; the report says, in every format, that repeat business customers
/// and employer penetration need employer-services data and QCEW counts xmatch does not
/// have, and no cell pretends otherwise.
#[tokio::test]
async fn report_effectiveness_in_serving_employers_names_the_missing_data() {
    let (_dir, session) = fixture_session().await;
    let report = performance::performance(&session, 2024, Suppression::Threshold(11))
        .await
        .unwrap();
    assert!(
        report
            .cells
            .iter()
            .all(|c| performance::INDICATORS.contains(&c.indicator.as_str()))
    );
    assert!(
        report
            .cells
            .iter()
            .any(|c| c.indicator == "Retention with same employer")
    );
    let csv = String::from_utf8(report.render(OutputFormat::Csv).unwrap()).unwrap();
    let notes: Vec<&str> = csv.lines().filter(|l| l.starts_with("# note: ")).collect();
    assert_eq!(notes.len(), performance::NOTES.len(), "{csv}");
    for needle in [
        "Repeat business customers",
        "Employer penetration rate",
        "QCEW",
        "reporting-unit number",
        "previous three years",
        "not computed",
    ] {
        assert!(csv.contains(needle), "{needle}: {csv}");
    }
    // The data rows still read as CSV once the comment lines are skipped.
    let body: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
    let body = body.join("\n");
    let mut r = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(r.records().count(), report.cells.len());
    let json: serde_json::Value =
        serde_json::from_slice(&report.render(OutputFormat::Json).unwrap()).unwrap();
    assert_eq!(
        json["notes"].as_array().unwrap().len(),
        performance::NOTES.len()
    );
    let table = String::from_utf8(report.render(OutputFormat::Table).unwrap()).unwrap();
    assert!(table.contains("note: Employer penetration rate"), "{table}");
}

#[tokio::test]
async fn report_partition_filter_reads_one_program_year() {
    let (_dir, session) = fixture_session().await;
    let plan = session
        .physical_plan("SELECT person_key FROM participants WHERE program_year = 2024")
        .await
        .unwrap();
    assert!(
        plan.contains("program_year=2024/part-00000.parquet"),
        "{plan}"
    );
    for other in [2021, 2022, 2023, 2025] {
        assert!(!plan.contains(&format!("program_year={other}/")), "{plan}");
    }
    // And the unfiltered query opens all five.
    let all = session
        .physical_plan("SELECT person_key FROM participants")
        .await
        .unwrap();
    assert_eq!(all.matches("part-00000.parquet").count(), 5, "{all}");
    let (_, b) = session
        .query("SELECT count(*) AS n FROM participants WHERE program_year = 2024")
        .await
        .unwrap();
    let n = arrow::compute::cast(b[0].column(0), &DataType::Int64).unwrap();
    assert_eq!(
        n.as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0),
        8
    );
}

#[tokio::test]
async fn report_bad_queries_are_one_line_errors() {
    let (_dir, session) = fixture_session().await;
    for sql in [
        "SELECT * FROM no_such_table",
        "SELECT no_such_column FROM participants",
        "SELEC person_key FROM participants",
        "CREATE TABLE x AS SELECT 1",
    ] {
        let err = session.query(sql).await.unwrap_err().to_string();
        assert!(!err.contains('\n') && !err.is_empty(), "{sql}: {err}");
    }
    let err = session
        .query("SELECT nope FROM participants")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope") && err.contains("xmatch tables"),
        "{err}"
    );
    assert!(matches!(
        performance::cells(&session, 1990).await,
        Err(ReportError::NoData(1990))
    ));
    let empty = tempfile::tempdir().unwrap();
    let err = LakeSession::open(empty.path()).await.err().unwrap();
    assert!(matches!(err, ReportError::NothingPublished(_)), "{err}");
}

/// Recovers a suppressed cell from what is published beside it, the way a reader with
/// the table would: a group as its breakdown's total minus the other groups, a total as
/// the sum of a breakdown's groups. Returns the cells it could recover.
fn recoverable(cells: &[Cell]) -> Vec<Key> {
    let mut out = Vec::new();
    let mut tables: BTreeMap<(String, String), Vec<&Cell>> = BTreeMap::new();
    for c in cells.iter().filter(|c| !c.is_median()) {
        tables
            .entry((c.program.clone(), c.indicator.clone()))
            .or_default()
            .push(c);
    }
    for cells in tables.values() {
        let total = cells.iter().find(|c| c.breakdown == TOTAL);
        for b in ADDITIVE {
            let groups: Vec<&&Cell> = cells.iter().filter(|c| c.breakdown == *b).collect();
            let hidden: Vec<&&Cell> = groups.iter().copied().filter(|c| c.suppressed).collect();
            if let Some(t) = total {
                if t.suppressed && hidden.is_empty() && !groups.is_empty() {
                    out.push(key(t));
                }
                if !t.suppressed && hidden.len() == 1 {
                    out.push(key(hidden[0]));
                }
            }
        }
    }
    out
}

fn check_protected(cells: &[Cell], t: u64) {
    assert!(
        recoverable(cells).is_empty(),
        "recoverable: {:?}",
        recoverable(cells)
    );
    for c in cells.iter().filter(|c| !c.suppressed) {
        assert!(!c.small(t), "published small cell {c:?}");
    }
    // A median is never published beside a hidden employment cell.
    for m in cells.iter().filter(|c| c.is_median() && !c.suppressed) {
        let src = cells
            .iter()
            .find(|c| {
                c.indicator == "Employment rate Q2"
                    && (&c.program, &c.breakdown, &c.group) == (&m.program, &m.breakdown, &m.group)
            })
            .unwrap();
        assert!(!src.suppressed, "{m:?}");
    }
}

#[tokio::test]
async fn report_suppressed_cells_cannot_be_recovered() {
    let (_dir, session) = fixture_session().await;
    let raw = performance::cells(&session, 2024).await.unwrap();
    for t in 1..=4 {
        let mut cells = raw.clone();
        suppress(&mut cells, t);
        check_protected(&cells, t);
    }
    // Threshold 1 hides only empty cells: differences of zero (everyone employed).
    let mut cells = raw.clone();
    suppress(&mut cells, 1);
    let adult_q2 = cells
        .iter()
        .find(|c| {
            c.program == "Adult" && c.indicator == "Employment rate Q2" && c.breakdown == "Total"
        })
        .unwrap();
    assert!(!adult_q2.suppressed);

    // Many random tables: sex and age breakdowns that add up to the total.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    for _ in 0..500 {
        let mut cells = Vec::new();
        let mut total = (0u64, 0u64);
        let groups = |b: &str| -> Vec<String> {
            match b {
                "Sex" => vec![
                    "Male".into(),
                    "Female".into(),
                    "Did not self-identify".into(),
                ],
                _ => vec![
                    "16-18".into(),
                    "19-24".into(),
                    "25-44".into(),
                    "45-54".into(),
                ],
            }
        };
        let mut people: Vec<(usize, usize, bool)> = Vec::new();
        for _ in 0..(5 + next(60)) {
            people.push((next(3) as usize, next(4) as usize, next(3) > 0));
        }
        for (_, _, ok) in &people {
            total.1 += 1;
            total.0 += u64::from(*ok);
        }
        let cell = |b: &str, g: &str, num: u64, den: u64| Cell {
            program: "Adult".into(),
            indicator: "Employment rate Q2".into(),
            breakdown: b.into(),
            group: g.into(),
            numerator: num,
            denominator: den,
            awaiting: 0,
            median: None,
            suppressed: false,
        };
        cells.push(cell(TOTAL, TOTAL, total.0, total.1));
        for (bi, b) in ["Sex", "Age at entry"].into_iter().enumerate() {
            for (gi, g) in groups(b).iter().enumerate() {
                let members: Vec<_> = people
                    .iter()
                    .filter(|p| if bi == 0 { p.0 == gi } else { p.1 == gi })
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let num = members.iter().filter(|p| p.2).count() as u64;
                cells.push(cell(b, g, num, members.len() as u64));
            }
        }
        let t = 2 + next(10);
        suppress(&mut cells, t);
        check_protected(&cells, t);
    }
}

#[tokio::test]
async fn report_coenrollment_findings_and_counts() {
    let (_dir, session) = fixture_session().await;
    let report = xmatch::report::coenrollment::coenrollment(&session, None)
        .await
        .unwrap();
    let rows = output::json_rows(&report.findings.1).unwrap();
    let mut got: Vec<(String, String, String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r["person_key"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
                r["local_area"].as_str().unwrap().to_string(),
                r["service_date"].as_str().map(str::to_string),
            )
        })
        .collect();
    got.sort();
    let s = |a: &str, b: &str, c: &str, d: Option<&str>| {
        (a.into(), b.into(), c.into(), d.map(Into::into))
    };
    assert_eq!(
        got,
        vec![
            s(
                "FXC000000001",
                "staff_assisted_without_wagner_peyser",
                "LA1",
                Some("2024-08-05")
            ),
            s("FXC000000003", "taa_without_dislocated_worker", "LA2", None),
            s(
                "FXC000000005",
                "ndwg_without_dislocated_worker",
                "LA2",
                None
            ),
            s(
                "FXC000000006",
                "snap_et_training_without_adult",
                "LA1",
                Some("2024-10-01")
            ),
            s(
                "FXC000000006",
                "staff_assisted_without_wagner_peyser",
                "LA1",
                Some("2024-10-01")
            ),
        ]
    );
    let counts = output::json_rows(&report.counts.1).unwrap();
    let counts: Vec<(String, String, i64)> = counts
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().into(),
                r["local_area"].as_str().unwrap().into(),
                r["findings"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("ndwg_without_dislocated_worker".into(), "LA2".into(), 1),
            ("snap_et_training_without_adult".into(), "LA1".into(), 1),
            (
                "staff_assisted_without_wagner_peyser".into(),
                "LA1".into(),
                2
            ),
            ("taa_without_dislocated_worker".into(), "LA2".into(), 1),
        ]
    );
    // Only periods that entered in PY2023: none of the findings above.
    let py2023 = xmatch::report::coenrollment::coenrollment(&session, Some(2023))
        .await
        .unwrap();
    assert_eq!(
        py2023
            .findings
            .1
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>(),
        0
    );
}

#[tokio::test]
async fn report_data_quality_counts() {
    let (_dir, session) = fixture_session().await;
    let (_, batch) = xmatch::report::quality::data_quality(&session)
        .await
        .unwrap();
    let rows = output::json_rows(&[batch]).unwrap();
    let find = |item: &str| {
        rows.iter()
            .find(|r| r["item"].as_str() == Some(item))
            .unwrap_or_else(|| panic!("no {item}: {rows:?}"))
    };
    assert_eq!(find("participants: missing_required")["count"], 3);
    assert_eq!(
        find("participants: missing_required")["section"],
        "rows rejected"
    );
    assert_eq!(find("participants: ssn_missing")["count"], 2);
    let no_ssn = find("periods without an SSN (temporary ID)");
    assert_eq!(
        (no_ssn["count"].as_i64(), no_ssn["of_total"].as_i64()),
        (Some(2), Some(60))
    );
    let late = find("entered more than 30 days after information obtained");
    assert_eq!(late["count"], 1);
}

/// `tests/sql/*.sql` run against the fixture; each result, as CSV, must equal the `.csv`
/// beside it (sqllogictest's idea without the crate). `XMATCH_BLESS=1` rewrites them.
#[tokio::test]
async fn report_sql_behaviour_files() {
    let (_dir, session) = fixture_session().await;
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sql"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for sql_path in files {
        let sql = std::fs::read_to_string(&sql_path).unwrap();
        let (schema, batches) = session
            .query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", sql_path.display()));
        let mut got = Vec::new();
        output::render(&schema, &batches, OutputFormat::Csv, &mut got).unwrap();
        let got = String::from_utf8(got).unwrap();
        let expected_path = sql_path.with_extension("csv");
        if std::env::var_os("XMATCH_BLESS").is_some() {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        assert_eq!(got, expected, "{}", sql_path.display());
    }
}

#[tokio::test]
async fn report_no_suppress_goes_to_the_secure_zone_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    xmatch::workspace::init(dir.path()).await.unwrap();
    let ws = xmatch::workspace::Workspace::open(dir.path()).unwrap();
    write_fixture_lake(&ws.lake_dir());
    xmatch::report::run_command(
        &ws,
        xmatch::cli::ReportCommand::Performance {
            program_year: 2024,
            format: xmatch::cli::ReportFormat::Csv,
            no_suppress: true,
        },
    )
    .await
    .unwrap();
    let reports = ws.secure_dir().join("reports");
    let files: Vec<PathBuf> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&reports).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let text = read_secure_text(&ws, &files[0]);
    assert!(
        text.starts_with("# INTERNAL USE ONLY - NOT SUPPRESSED"),
        "{text}"
    );
    // Nothing landed in the publishable reports directory.
    assert!(
        std::fs::read_dir(ws.reports_dir())
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
    let store = ws.open_store().await.unwrap();
    let audit = store.audit_entries(5).await.unwrap();
    let (_, entry) = audit.first().expect("an audit row");
    assert_eq!(entry.action, "report.no_suppress");
    assert_eq!(entry.detail["program_year"], 2024);

    // The suppressed rendering says how it is protected and hides the small cells.
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    let report = performance::performance(&session, 2024, Suppression::Threshold(11))
        .await
        .unwrap();
    let csv = String::from_utf8(report.render(OutputFormat::Csv).unwrap()).unwrap();
    assert!(
        csv.starts_with("# WIOA performance, program year 2024"),
        "{csv}"
    );
    assert!(report.cells.iter().all(|c| c.suppressed));
    assert!(!csv.contains(",6,7,"), "{csv}");
}

// ---------------------------------------------------------------------------------------
// On a generated state: the PIRL export, the quarterly report files, and the performance
// report checked against an independent computation from the generator's own records.

use std::collections::{BTreeSet, HashSet};
use std::sync::OnceLock;

use chrono::NaiveDate;
use xmatch::link::wages::Quarter;
use xmatch::report::pirl::{self, ExportOptions, PirlLayout};
use xmatch::report::publish::{self, PublishOptions, QuarterlyOutcome};
use xmatch::workspace::Workspace;

use crate::support::{parquet_files, read_parquet, read_secure_parquet, read_secure_text, strings};

/// One generated state (2,000 participants, nightly run done) shared by the tests below:
/// generating and running it is the slow part, and none of them changes the lake.
pub(crate) fn generated_state() -> &'static (tempfile::TempDir, Workspace) {
    static STATE: OnceLock<(tempfile::TempDir, Workspace)> = OnceLock::new();
    STATE.get_or_init(|| {
        // Its own runtime on its own thread: the caller is inside a test's runtime.
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let (dir, ws) = crate::pipeline::generated_workspace(2_000, 7).await;
                    crate::pipeline::run_nightly(&ws).await;
                    (dir, ws)
                })
        })
        .join()
        .unwrap()
    })
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// "1234.5" / "1234.50" / "-3.00" → cents.
fn cents(s: &str) -> i64 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<2}");
    let v = whole.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap();
    if neg { -v } else { v }
}

fn snapshot_dir(ws: &Workspace) -> PathBuf {
    let (_, dir) = xmatch::lake::current_snapshot(&ws.lake_dir())
        .unwrap()
        .unwrap();
    dir
}

/// A participant period as the published participants dataset holds it.
#[derive(Debug, Clone)]
struct LakePeriod {
    key: String,
    entry: NaiveDate,
    exit: Option<NaiveDate>,
    programs: Vec<&'static str>,
    exit_reason: Option<String>,
    placement_q2: Option<String>,
    placement_q4: Option<String>,
}

/// Every period of the published participants dataset, read from its Parquet files.
fn lake_periods(ws: &Workspace) -> Vec<LakePeriod> {
    let mut out = Vec::new();
    for f in parquet_files(&snapshot_dir(ws).join("participants")) {
        let b = read_parquet(&f);
        let col = |c: &str| strings(&b, c);
        let (keys, entry, exit) = (col("person_key"), col("entry_date"), col("exit_date"));
        let flags: Vec<(&'static str, Vec<Option<String>>)> = [
            ("Adult", "adult"),
            ("Dislocated Worker", "dislocated_worker"),
            ("Youth", "youth"),
            ("Wagner-Peyser", "wagner_peyser"),
        ]
        .into_iter()
        .map(|(p, c)| (p, col(c)))
        .collect();
        let (reason, p2, p4) = (
            col("exit_reason"),
            col("youth_placement_q2"),
            col("youth_placement_q4"),
        );
        for i in 0..keys.len() {
            out.push(LakePeriod {
                key: keys[i].clone().unwrap(),
                entry: date(entry[i].as_deref().unwrap()),
                exit: exit[i].as_deref().map(date),
                programs: flags
                    .iter()
                    .filter(|(_, v)| v[i].as_deref() == Some("1"))
                    .map(|(p, _)| *p)
                    .collect(),
                exit_reason: reason[i].clone(),
                placement_q2: p2[i].clone(),
                placement_q4: p4[i].clone(),
            });
        }
    }
    out
}

/// Total wages per (person, quarter), and which quarters are loaded.
type Wages<K> = (HashMap<(K, Quarter), i64>, BTreeSet<Quarter>);

/// Linked wages as the lake publishes them: `quarterly_wages/year_quarter=…` files.
fn lake_wages(ws: &Workspace) -> HashMap<(String, Quarter), i64> {
    let mut out: HashMap<(String, Quarter), i64> = HashMap::new();
    for f in parquet_files(&snapshot_dir(ws).join("quarterly_wages")) {
        let q = f
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("year_quarter="))
            .and_then(Quarter::parse)
            .unwrap();
        let b = read_parquet(&f);
        for (k, w) in strings(&b, "person_key")
            .into_iter()
            .zip(strings(&b, "wages"))
        {
            *out.entry((k.unwrap(), q)).or_default() += cents(&w.unwrap());
        }
    }
    out
}

/// The generator's own wage records, by generated person (truth.parquet names the person
/// of each wage row by its 1-based row number), and the quarters its wage file covers.
fn truth_wages(ws: &Workspace) -> Wages<i64> {
    let truth = read_parquet(&ws.incoming_dir().join("truth.parquet"));
    let mut row_person: HashMap<String, i64> = HashMap::new();
    for ((s, r), p) in strings(&truth, "source")
        .into_iter()
        .zip(strings(&truth, "record_id"))
        .zip(strings(&truth, "person_id"))
    {
        if s.as_deref() == Some("ui_wages") {
            row_person.insert(r.unwrap(), p.unwrap().parse().unwrap());
        }
    }
    let raw = read_parquet(&ws.incoming_dir().join("ui_wages.parquet"));
    let mut out: HashMap<(i64, Quarter), i64> = HashMap::new();
    let mut loaded = BTreeSet::new();
    for (i, (q, w)) in strings(&raw, "year_quarter")
        .into_iter()
        .zip(strings(&raw, "wages"))
        .enumerate()
    {
        let (Some(q), Some(w)) = (q.as_deref().and_then(Quarter::parse), w) else {
            continue;
        };
        loaded.insert(q);
        let person = row_person[&(i + 1).to_string()];
        *out.entry((person, q)).or_default() += cents(&w);
    }
    (out, loaded)
}

/// person_key → the generated person behind it, through the secure crosswalk and truth.
fn key_to_truth(ws: &Workspace) -> HashMap<String, i64> {
    let truth = read_parquet(&ws.incoming_dir().join("truth.parquet"));
    let mut record_person: HashMap<String, i64> = HashMap::new();
    for ((s, r), p) in strings(&truth, "source")
        .into_iter()
        .zip(strings(&truth, "record_id"))
        .zip(strings(&truth, "person_id"))
    {
        if s.as_deref() == Some("participants") {
            record_person.insert(r.unwrap(), p.unwrap().parse().unwrap());
        }
    }
    let (run, _) = xmatch::lake::current_snapshot(&ws.lake_dir())
        .unwrap()
        .unwrap();
    let cw = read_secure_parquet(
        ws,
        &ws.secure_dir()
            .join("runs")
            .join(run.to_string())
            .join("crosswalk.parquet"),
    );
    let mut out: HashMap<String, i64> = HashMap::new();
    for (id, key) in strings(&cw, "individual_id")
        .into_iter()
        .zip(strings(&cw, "person_key"))
    {
        let person = record_person[&id.unwrap()];
        let prev = out.insert(key.clone().unwrap(), person);
        assert!(
            prev.is_none_or(|p| p == person),
            "person key {key:?} holds two generated people"
        );
    }
    out
}

/// One indicator's count for one program, computed here.
#[derive(Debug, Default, Clone, PartialEq)]
struct Count {
    numerator: u64,
    denominator: u64,
    awaiting: u64,
    /// Q2 wages (cents) of those employed in Q2, for the median.
    wages: Vec<i64>,
}

fn excluded(p: &LakePeriod, program: &str) -> bool {
    match p.exit_reason.as_deref() {
        Some("01" | "02" | "03" | "04") => true,
        Some("05") => program == "Youth",
        _ => false,
    }
}

fn median(mut v: Vec<i64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64 / 100.0
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 200.0
    })
}

/// TEGL 10-16 employment rates Q2 and Q4 for program year `py` per program, from periods
/// and a wage lookup (`None` = the quarter is not loaded).
fn employment(
    periods: &[LakePeriod],
    py: i32,
    wage: &dyn Fn(&LakePeriod, Quarter) -> Option<i64>,
) -> BTreeMap<(&'static str, &'static str), Count> {
    let q2_cohort = (
        date(&format!("{}-07-01", py - 1)),
        date(&format!("{py}-06-30")),
    );
    let q4_cohort = (
        date(&format!("{}-01-01", py - 1)),
        date(&format!("{}-12-31", py - 1)),
    );
    let mut out: BTreeMap<(&str, &str), Count> = BTreeMap::new();
    for p in periods {
        let Some(exit) = p.exit else { continue };
        for &program in &p.programs {
            if excluded(p, program) {
                continue;
            }
            for (indicator, (from, to), k, placement) in [
                ("Employment rate Q2", q2_cohort, 2, &p.placement_q2),
                ("Employment rate Q4", q4_cohort, 4, &p.placement_q4),
            ] {
                if exit < from || exit > to {
                    continue;
                }
                let c = out.entry((program, indicator)).or_default();
                let w = wage(p, Quarter::of(exit).plus(k));
                let placed =
                    program == "Youth" && matches!(placement.as_deref(), Some("1" | "2" | "3"));
                match w {
                    Some(w) if w > 0 => {
                        c.numerator += 1;
                        c.denominator += 1;
                        if k == 2 {
                            c.wages.push(w);
                        }
                    }
                    _ if placed => {
                        c.numerator += 1;
                        c.denominator += 1;
                    }
                    Some(_) => c.denominator += 1,
                    None => c.awaiting += 1,
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn report_performance_matches_an_independent_computation_on_a_generated_state() {
    let (_, ws) = generated_state();
    let py = 2024;
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    let cells = performance::cells(&session, py).await.unwrap();
    let cell = |program: &str, indicator: &str| {
        cells
            .iter()
            .find(|c| c.program == program && c.indicator == indicator && c.breakdown == "Total")
            .unwrap_or_else(|| panic!("no {program} {indicator} total"))
    };
    let periods = lake_periods(ws);
    let (truth, loaded) = truth_wages(ws);
    let linked = lake_wages(ws);

    // 1. Exactly, on the linked data: the same periods and the same linked wage records,
    //    with the indicator logic written out here instead of in the report's SQL.
    let by_link = employment(&periods, py, &|p, q| {
        loaded
            .contains(&q)
            .then(|| linked.get(&(p.key.clone(), q)).copied().unwrap_or(0))
    });
    assert!(
        by_link.len() >= 6,
        "cohorts too small to mean anything: {by_link:?}"
    );
    for ((program, indicator), want) in &by_link {
        let got = cell(program, indicator);
        assert_eq!(
            (got.numerator, got.denominator, got.awaiting),
            (want.numerator, want.denominator, want.awaiting),
            "{program} {indicator}"
        );
        if *indicator == "Employment rate Q2" {
            let m = cells
                .iter()
                .find(|c| {
                    c.program == *program
                        && c.indicator == "Median earnings Q2"
                        && c.breakdown == "Total"
                })
                .and_then(|c| c.median);
            // Half a cent: SQL halves before dividing by 100, which may round differently.
            match (m, median(want.wages.clone())) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 0.005, "{program}: {a} != {b}"),
                (a, b) => assert_eq!(a, b, "{program} median"),
            }
        }
    }
    // Served and exited during the year (no exclusions, no wages).
    let (start, end) = xmatch::report::program_year_bounds(py);
    for program in performance::PROGRAMS {
        let served: Vec<&LakePeriod> = periods
            .iter()
            .filter(|p| p.programs.contains(program))
            .filter(|p| p.entry <= end && p.exit.is_none_or(|x| x >= start))
            .collect();
        if served.is_empty() {
            continue;
        }
        let exited = served
            .iter()
            .filter(|p| p.exit.is_some_and(|x| x >= start && x <= end))
            .count() as u64;
        let got = cell(program, "Exited during program year");
        assert_eq!(
            (got.numerator, got.denominator),
            (exited, served.len() as u64),
            "{program}"
        );
    }

    // 2. Against the generator's truth: every wage record of the generated person,
    //    linked or not. Linking can only lose wages (records whose SSN is missing,
    //    invalid or mistyped on one side never link; nothing links to the wrong person),
    //    so per period the linked outcome never exceeds the true one, and the rates can
    //    differ only by the employed share of the periods whose case record carried no
    //    usable SSN: about 4% missing + 0.5% invalid + 1% mistyped or transposed
    //    (src/generate/rates.rs): ~5.5% of periods, of whom about two thirds are
    //    employed, so ~3.5 points expected (seed 7 gives 0 to 4.2). The tolerance is 8
    //    points: the no-SSN share of a cohort of 25 (Youth here) can reach twice its mean.
    let person = key_to_truth(ws);
    let true_wage = |p: &LakePeriod, q: Quarter| {
        loaded
            .contains(&q)
            .then(|| truth.get(&(person[&p.key], q)).copied().unwrap_or(0))
    };
    for p in &periods {
        let Some(exit) = p.exit else { continue };
        for k in 1..=4 {
            let q = Quarter::of(exit).plus(k);
            if let (Some(l), Some(t)) = (
                loaded
                    .contains(&q)
                    .then(|| linked.get(&(p.key.clone(), q)).copied().unwrap_or(0)),
                true_wage(p, q),
            ) {
                assert!(
                    l <= t,
                    "{}: linked wages {l} exceed the true {t} in {q}",
                    p.key
                );
            }
        }
    }
    let by_truth = employment(&periods, py, &true_wage);
    let rate = |c: &Count| c.numerator as f64 / c.denominator.max(1) as f64;
    for ((program, indicator), t) in &by_truth {
        let l = &by_link[&(*program, *indicator)];
        assert_eq!(t.denominator + t.awaiting, l.denominator + l.awaiting);
        let gap = rate(t) - rate(l);
        assert!(
            (0.0..=0.08).contains(&gap),
            "{program} {indicator}: truth {:.3} vs report {:.3}",
            rate(t),
            rate(l)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn report_session_min_and_max_of_an_expression_are_right() {
    // A MIN on a column beside a MAX of an expression: DataFusion 55's aggregate dynamic
    // filter pruned rows the MAX needed (apache/datafusion#24816); the session turns it off.
    let (_, ws) = generated_state();
    let periods = lake_periods(ws);
    let first = periods.iter().map(|p| p.entry).min().unwrap();
    let last = periods
        .iter()
        .map(|p| p.exit.map_or(p.entry, |x| x.max(p.entry)))
        .max()
        .unwrap();
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    for sql in [
        "SELECT min(entry_date) AS f, max(coalesce(exit_date, entry_date)) AS l FROM participants",
        "SELECT min(entry_date) AS f, max(CASE WHEN exit_date > entry_date THEN exit_date ELSE entry_date END) AS l FROM participants",
    ] {
        let (schema, batches) = session.query(sql).await.unwrap();
        let mut out = Vec::new();
        output::render(&schema, &batches, OutputFormat::Csv, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("f,l\n{first},{last}\n"),
            "{sql}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn report_pirl_export_is_checked_secure_recorded_and_audited() {
    let (_, ws) = generated_state();
    let out = pirl::export(
        ws,
        &ExportOptions {
            program_year: 2024,
            strict: false,
        },
    )
    .await
    .unwrap();
    let (data, report) = out.written.clone().expect("written without --strict");
    let dir = ws.secure_dir().join("exports").join("pirl");
    assert!(data.starts_with(&dir) && report.starts_with(&dir));
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [(&data, 0o600), (&report, 0o600), (&dir, 0o700)] {
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            mode,
            "{}",
            p.display()
        );
    }
    let text = read_secure_text(ws, &data);
    let layout = PirlLayout::builtin(&Catalog::builtin().unwrap()).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = layout.elements.iter().map(|e| e.pirl.to_string()).collect();
    assert_eq!(lines.next().unwrap(), header.join(","));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();

    // The rows are the year's periods: active in PY2024 or exiting into its cohorts.
    let want = lake_periods(ws)
        .into_iter()
        .filter(|p| p.entry <= date("2025-06-30") && p.exit.is_none_or(|x| x >= date("2023-01-01")))
        .count();
    assert!(want > 100, "{want}");
    assert_eq!(rows.len(), want);
    assert_eq!(out.extract.rows.len(), want);

    // 100 is a person key the crosswalk knows; no field anywhere is an SSN of the state.
    let keys = key_to_truth(ws);
    // Exact fields, in every form an SSN or name takes in the raw files (dates are left
    // out: a PIRL date is YYYYMMDD like a DOB, but DOBs of the generated people precede
    // every program date).
    let (ssns, names, _) = crate::pipeline::raw_pii(&ws.incoming_dir());
    assert!(ssns.len() > 1000 && names.len() > 100);
    for r in &rows {
        assert_eq!(r.len(), header.len());
        assert!(keys.contains_key(r[0]), "unknown person key {}", r[0]);
        for f in r {
            assert!(!ssns.contains(*f), "an SSN in the export");
            assert!(!names.contains(&f.to_uppercase()), "a name in the export");
        }
    }
    // The file alone yields the year's measurable skill gains per program, equal to the
    // report's (TEGL 10-16's five gain types, the secondary diploma among them).
    let file_rows: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|f| (!f.is_empty()).then(|| f.to_string()))
                .collect()
        })
        .collect();
    let from_file = msg_from_pirl(&out.extract.header, &file_rows, 2024);
    assert!(
        from_file.values().any(|(g, _)| !g.is_empty()),
        "{from_file:?}"
    );
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    let cells = performance::cells(&session, 2024).await.unwrap();
    for (program, (gainers, den)) in &from_file {
        let c = cells
            .iter()
            .find(|c| {
                c.program == *program
                    && c.indicator == "Measurable skill gains rate"
                    && c.breakdown == "Total"
            })
            .unwrap_or_else(|| panic!("no {program} MSG cell"));
        assert_eq!(
            (c.numerator, c.denominator),
            (gainers.len() as u64, *den),
            "{program} MSG: report vs the PIRL file"
        );
    }
    let report_text = read_secure_text(ws, &report);
    assert_eq!(report_text.lines().count(), out.extract.failures.len() + 1);
    assert!(report_text.starts_with("element,name,check,rows,first_person_keys\n"));

    // Lineage: the file's bytes, its persons and its columns' PII classes.
    let store = ws.open_store().await.unwrap();
    let name = data.file_name().unwrap().to_str().unwrap();
    let lineage = store.lineage_by_dataset("exports/pirl").await.unwrap();
    let rec = lineage
        .iter()
        .find(|f| f.path.ends_with(name))
        .expect("the export is in lineage");
    assert_eq!(rec.zone, xmatch::lake::Zone::Secure);
    assert_eq!(rec.sha256, xmatch::ingest::sha256_file(&data).unwrap());
    assert_eq!(rec.rows, want as u64);
    let distinct: HashSet<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(rec.person_count, distinct.len() as u64);
    let col = |n: &str| rec.columns.iter().find(|c| c.name == n).unwrap();
    assert_eq!(col("100").pii, xmatch::schema::PiiClass::Quasi);
    assert_eq!(col("201").pii, xmatch::schema::PiiClass::Quasi);
    assert_eq!(col("1704").sensitive.as_deref(), Some("financial"));
    assert_eq!(col("603").sensitive.as_deref(), Some("public_assistance"));
    assert!(
        store
            .lineage_by_dataset("exports/pirl_edit_checks")
            .await
            .unwrap()
            .iter()
            .any(|f| f
                .path
                .ends_with(report.file_name().unwrap().to_str().unwrap()))
    );
    // The audit table says who exported what (counts, never identifiers).
    let audit = store.audit_entries(50).await.unwrap();
    let entry = audit
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.action == "export.pirl" && e.detail["written"] == data.display().to_string())
        .expect("an audit row for the export");
    assert_eq!(entry.actor, xmatch::report::actor());
    assert_eq!(entry.detail["rows"], want);
    assert_eq!(entry.detail["program_year"], 2024);
    store.close().await;
}

#[tokio::test]
async fn report_pirl_strict_unknown_keys_and_bad_years_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    xmatch::workspace::init(dir.path()).await.unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    write_fixture_lake(&ws.lake_dir());
    // The fixture has no employment status at entry (400, required) on any row.
    let out = pirl::export(
        &ws,
        &ExportOptions {
            program_year: 2024,
            strict: true,
        },
    )
    .await
    .unwrap();
    assert!(out.written.is_none());
    let f400 = out
        .extract
        .failures
        .iter()
        .find(|f| f.pirl == 400 && f.check == "required")
        .unwrap();
    assert_eq!(f400.rows, out.extract.rows.len() as u64);
    assert_eq!(f400.first_person_keys.len(), pirl::FIRST_KEYS);
    assert!(!ws.secure_dir().join("exports").exists());
    let store = ws.open_store().await.unwrap();
    let audit = store.audit_entries(5).await.unwrap();
    assert_eq!(audit[0].1.action, "export.pirl");
    assert!(audit[0].1.detail["written"].is_null());
    store.close().await;
    // Without --strict it would write, but the fixture's persons are in no registry:
    // lineage could not account for them, so nothing is written.
    let err = pirl::export(
        &ws,
        &ExportOptions {
            program_year: 2024,
            strict: false,
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("not in the registry"), "{err}");
    assert!(!ws.secure_dir().join("exports").exists());

    // Bad input through the binary: one line on stderr, exit code 2.
    for args in [
        vec!["export", "pirl", "--program-year", "1990"],
        vec!["export", "pirl", "--program-year", "2024", "--strict"],
        vec!["report", "performance", "--program-year", "1990"],
        // The fixture's last date is 2025-07-01: PY2026 has not begun in the data, even
        // though periods without an exit would count as served in it.
        vec!["report", "performance", "--program-year", "2026"],
        vec!["report", "coenrollment", "--program-year", "2026"],
        vec!["export", "pirl", "--program-year", "2026"],
    ] {
        let o = std::process::Command::new(crate::support::xmatch_bin())
            .arg("-w")
            .arg(dir.path())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("xmatch: error: "), "{stderr}");
        if args.contains(&"2026") {
            assert!(
                stderr.contains("program year 2026 has no participant data"),
                "{stderr}"
            );
        }
    }
    // PY2025 began in the data (exits and an entry in July 2025): not an error.
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    xmatch::report::require_program_year(&session, 2025)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn report_publish_writes_the_quarter_once_its_wage_quarter_is_loaded() {
    let (_, ws) = generated_state();
    let opts = PublishOptions {
        program_year: None,
        today: date("2025-08-15"),
    };
    let QuarterlyOutcome::Published(p) = publish::publish_quarterly(ws, &opts).await.unwrap()
    else {
        panic!("2024Q4 wages are loaded: the report should be written")
    };
    assert_eq!(p.program_year, 2024);
    assert_eq!(p.reporting_quarter.to_string(), "2025Q2");
    assert_eq!(p.wage_quarter.to_string(), "2024Q4");
    assert_eq!(p.dir, ws.reports_dir().join("PY2024").join("2025Q2"));
    let mut names: Vec<String> = std::fs::read_dir(&p.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "coenrollment.csv",
            "coenrollment.json",
            "data-quality.csv",
            "data-quality.json",
            "manifest.json",
            "performance.csv",
            "performance.json"
        ]
    );
    // The performance files are exactly the suppressed report.
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    let t = u64::from(ws.config().reporting.small_cell_threshold);
    let perf = performance::performance(&session, 2024, Suppression::Threshold(t))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(p.dir.join("performance.csv")).unwrap(),
        perf.render(OutputFormat::Csv).unwrap()
    );
    // Nothing in reports/ names a person; small counts are hidden.
    let keys = key_to_truth(ws);
    for name in &names {
        let text = std::fs::read_to_string(p.dir.join(name)).unwrap();
        assert!(
            !keys.keys().any(|k| text.contains(k.as_str())),
            "{name} names a person"
        );
    }
    let co: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.dir.join("coenrollment.json")).unwrap()).unwrap();
    let rows = co["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        match r["status"].as_str().unwrap() {
            "suppressed" => assert!(r["persons"].is_null() && r["findings"].is_null(), "{r}"),
            _ => assert!(r["persons"].as_u64().unwrap() >= t, "{r}"),
        }
    }
    let dq: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.dir.join("data-quality.json")).unwrap()).unwrap();
    for r in dq["rows"].as_array().unwrap() {
        if let Some(n) = r["count"].as_u64() {
            assert!(n >= t, "{r}");
        }
    }
    // The manifest's hashes are the files', and lineage has them.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["wage_quarter"], "2024Q4");
    let store = ws.open_store().await.unwrap();
    // As `breach --dataset reports` finds them.
    let lineage = store
        .lineage_meta(&xmatch::store::LineageFilter::Dataset("reports"))
        .await
        .unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let sha = xmatch::ingest::sha256_file(&p.dir.join(name)).unwrap();
        assert_eq!(f["sha256"], sha, "{name}");
        assert!(
            lineage.iter().any(|l| l.sha256 == sha
                && Path::new(&l.path).ends_with(Path::new("PY2024/2025Q2").join(name))),
            "{name} not in lineage"
        );
    }
    store.close().await;
    // A rerun replaces the quarter whole and leaves no temporary directories behind.
    let again = publish::publish_quarterly(ws, &opts).await.unwrap();
    assert!(matches!(again, QuarterlyOutcome::Published(_)));
    let entries: Vec<String> = std::fs::read_dir(ws.reports_dir().join("PY2024"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["2025Q2"]);
    // Same run, same bytes: lineage does not record the files twice.
    let store = ws.open_store().await.unwrap();
    let rows = store
        .lineage_meta(&xmatch::store::LineageFilter::Dataset(
            "reports/performance",
        ))
        .await
        .unwrap();
    let csv_rows = rows
        .iter()
        .filter(|l| l.path.contains("PY2024/2025Q2/performance.csv"))
        .count();
    assert_eq!(csv_rows, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn report_publish_is_not_ready_until_the_wage_quarter_is_loaded() {
    let (_, ws) = generated_state();
    // Run on 2026-04-01: the quarter ending 2026-03-31 needs 2025Q3 wages; the generated
    // wage file ends at 2025Q2.
    let opts = PublishOptions {
        program_year: None,
        today: date("2026-04-01"),
    };
    match publish::publish_quarterly(ws, &opts).await.unwrap() {
        QuarterlyOutcome::NotReady { reason } => {
            assert!(
                reason.contains("2025Q3") && reason.contains("2026-03-31"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(!ws.reports_dir().join("PY2025").exists());
    // The day before, the needed quarter is 2025Q2: loaded.
    let ready = publish::publish_quarterly(
        ws,
        &PublishOptions {
            // PY2023, so as not to touch the PY2024 files the test above checks.
            program_year: Some(2023),
            today: date("2026-03-31"),
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(ready, QuarterlyOutcome::Published(ref p)
            if p.wage_quarter.to_string() == "2025Q2" && p.program_year == 2023
                && p.dir.ends_with("PY2023/2025Q4")),
        "{ready:?}"
    );

    // Nothing published at all: not ready either, and no error.
    let empty = tempfile::tempdir().unwrap();
    xmatch::workspace::init(empty.path()).await.unwrap();
    let ews = Workspace::open(empty.path()).unwrap();
    assert!(matches!(
        publish::publish_quarterly(&ews, &opts).await.unwrap(),
        QuarterlyOutcome::NotReady { .. }
    ));
    // An explicit program year with no data is bad input, not "not ready".
    let err = publish::publish_quarterly(
        ws,
        &PublishOptions {
            program_year: Some(1990),
            today: date("2025-08-15"),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ReportError::NoData(1990)), "{err}");
}
