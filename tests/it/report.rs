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
        (Some(2), Some(29))
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
    let text = std::fs::read_to_string(&files[0]).unwrap();
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
