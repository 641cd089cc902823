//! `xmatch generate`: determinism, schema fidelity, truth coverage and scenario rates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{Datelike, NaiveDate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tempfile::TempDir;
use xmatch::generate::{
    Format, GenerateError, GenerateOptions, GenerateSummary, NoiseProfile, generate, rates,
    table_names,
};
use xmatch::schema::Catalog;

const SOURCES: [&str; 5] = [
    "participants",
    "public_assistance",
    "ui_claims",
    "ui_wages",
    "taa",
];

fn catalog() -> Catalog {
    Catalog::builtin().expect("builtin schemas load")
}

fn run_in(dir: &Path, n: usize, seed: u64, format: Format) -> GenerateSummary {
    run_noise(dir, n, seed, format, NoiseProfile::Default)
}

fn run_noise(
    dir: &Path,
    n: usize,
    seed: u64,
    format: Format,
    noise: NoiseProfile,
) -> GenerateSummary {
    let opts = GenerateOptions {
        participants: n,
        seed,
        out: dir.to_path_buf(),
        format,
        noise,
    };
    generate(&opts, &catalog()).expect("generate succeeds")
}

/// One shared N = 10,000 run (both formats) for the read-only checks.
fn shared() -> &'static (TempDir, GenerateSummary) {
    static RUN: OnceLock<(TempDir, GenerateSummary)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        let summary = run_in(dir.path(), 10_000, 2024, Format::Both);
        (dir, summary)
    })
}

struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn read(path: &Path) -> Csv {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let header = r.headers().unwrap().iter().map(str::to_string).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
            .collect();
        Csv { header, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn scenario(m: &serde_json::Value, key: &str) -> u64 {
    m["scenarios"][key].as_u64().unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_whatever_the_thread_count() {
    let a = TempDir::new().unwrap();
    let b = TempDir::new().unwrap();
    let c = TempDir::new().unwrap();
    run_in(a.path(), 3_000, 11, Format::Both);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| run_in(b.path(), 3_000, 11, Format::Both));
    run_in(c.path(), 3_000, 12, Format::Both);
    let (fa, fb, fc) = (
        dir_bytes(a.path()),
        dir_bytes(b.path()),
        dir_bytes(c.path()),
    );
    assert_eq!(
        fa.len(),
        13,
        "6 tables × 2 formats + manifest: {:?}",
        fa.keys()
    );
    for (name, bytes) in &fa {
        assert!(fb[name] == *bytes, "{name} differs between 2 threads and 1");
    }
    for name in ["participants.csv", "ui_wages.parquet", "truth.csv"] {
        assert!(fa[name] != fc[name], "{name} is the same for another seed");
    }
}

#[test]
fn every_schema_column_in_order_in_both_formats() {
    let (dir, _) = shared();
    let cat = catalog();
    for name in SOURCES {
        let schema = cat.source(name).unwrap().arrow_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let csv = Csv::read(&dir.path().join(format!("{name}.csv")));
        assert_eq!(csv.header, names, "{name}.csv header");
        let batches = read_parquet(&dir.path().join(format!("{name}.parquet")));
        let pq = batches[0].schema();
        let pq_fields: Vec<(&str, &arrow::datatypes::DataType)> = pq
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        let want: Vec<(&str, &arrow::datatypes::DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(pq_fields, want, "{name}.parquet schema");
    }
}

#[test]
fn csv_and_parquet_hold_the_same_rows() {
    let (dir, summary) = shared();
    let opts = FormatOptions::default();
    for name in table_names() {
        let csv = Csv::read(&dir.path().join(format!("{name}.csv")));
        let mut i = 0;
        for batch in read_parquet(&dir.path().join(format!("{name}.parquet"))) {
            let fmts: Vec<ArrayFormatter> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
                .collect();
            for r in 0..batch.num_rows() {
                let row: Vec<String> = fmts.iter().map(|f| f.value(r).to_string()).collect();
                assert!(
                    row == csv.rows[i],
                    "{name} row {} differs between formats",
                    i + 1
                );
                i += 1;
            }
        }
        assert_eq!(i, csv.rows.len(), "{name} row count");
        assert_eq!(Some(i as u64), summary.rows(name), "{name} summary rows");
    }
}

#[test]
fn truth_covers_every_record_exactly_once() {
    let (dir, _) = shared();
    let cat = catalog();
    let truth = Csv::read(&dir.path().join("truth.csv"));
    let mut by_source: HashMap<&str, Vec<&str>> = HashMap::new();
    for row in &truth.rows {
        let source = SOURCES
            .iter()
            .find(|s| **s == row[0])
            .expect("known source");
        by_source.entry(source).or_default().push(&row[1]);
        assert!(row[2].parse::<u64>().is_ok());
    }
    for name in SOURCES {
        let csv = Csv::read(&dir.path().join(format!("{name}.csv")));
        let ids: Vec<String> = match cat
            .source(name)
            .unwrap()
            .identity_column(xmatch::schema::IdentityRole::RecordId)
        {
            Some(c) => {
                let i = csv.col(&c.name);
                csv.rows.iter().map(|r| r[i].clone()).collect()
            }
            None => (1..=csv.rows.len()).map(|i| i.to_string()).collect(),
        };
        let unique: HashSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(unique.len(), ids.len(), "{name} record ids are unique");
        let in_truth = &by_source[name];
        let truth_set: HashSet<&str> = in_truth.iter().copied().collect();
        assert_eq!(
            truth_set.len(),
            in_truth.len(),
            "{name} appears once per record in truth"
        );
        assert_eq!(truth_set, unique, "{name} truth = records");
    }
}

fn parse_dob(s: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%m/%d/%Y", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

fn age(dob: NaiveDate, on: NaiveDate) -> i32 {
    let mut a = on.year() - dob.year();
    if (on.month(), on.day()) < (dob.month(), dob.day()) {
        a -= 1;
    }
    a
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn ssn_valid(d: &str) -> bool {
    let area: u32 = d[0..3].parse().unwrap();
    let group: u32 = d[3..5].parse().unwrap();
    let serial: u32 = d[5..9].parse().unwrap();
    let same = d.chars().all(|c| c == d.chars().next().unwrap());
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !same
        && !["123456789", "078051120", "219099999", "457555462"].contains(&d)
}

fn within(what: &str, observed: f64, target: f64, tolerance: f64) {
    assert!(
        (observed - target).abs() <= tolerance,
        "{what}: observed {observed:.4}, target {target} ± {tolerance}"
    );
}

#[test]
fn participant_scenarios_match_the_manifest_and_the_rates() {
    let (dir, _) = shared();
    let m = manifest(dir.path());
    let n = m["participants"].as_u64().unwrap() as f64;
    let p = Csv::read(&dir.path().join("participants.csv"));
    let truth = Csv::read(&dir.path().join("truth.csv"));
    let person: HashMap<&str, &str> = truth
        .rows
        .iter()
        .filter(|r| r[0] == "participants")
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    let rows = p.rows.len() as f64;
    let [id, ssn, dob, entry, exit, info, entered] = [
        "individual_id",
        "ssn",
        "dob",
        "entry_date",
        "exit_date",
        "info_obtained_date",
        "entered_date",
    ]
    .map(|c| p.col(c));
    assert!(p.rows.iter().all(|r| r[p.col("temp_id")].is_empty()));

    // SSNs: missing (blank or placeholder), invalid.
    let (mut missing, mut invalid) = (0u64, 0u64);
    for r in &p.rows {
        let d = digits(&r[ssn]);
        if d.is_empty() || d.chars().all(|c| c == '0') {
            missing += 1;
        } else {
            // Integer-like values lose leading zeros (an area-000 SSN keeps only 6 digits).
            assert!(d.len() <= 9, "SSN with {} digits", d.len());
            if !ssn_valid(&format!("{d:0>9}")) {
                invalid += 1;
            }
        }
    }
    let m_missing = scenario(&m, "participants.ssn_missing_blank")
        + scenario(&m, "participants.ssn_missing_placeholder");
    assert_eq!(missing, m_missing);
    assert_eq!(invalid, scenario(&m, "participants.ssn_invalid"));
    within(
        "missing SSN",
        missing as f64 / rows,
        rates::P_SSN_MISSING,
        0.01,
    );
    within(
        "invalid SSN",
        invalid as f64 / rows,
        rates::P_SSN_INVALID,
        0.003,
    );
    let typos = scenario(&m, "participants.ssn_typo") + scenario(&m, "participants.ssn_transposed");
    within(
        "SSN typos",
        typos as f64 / rows,
        rates::P_SSN_TYPO + rates::P_SSN_TRANSPOSED,
        0.004,
    );
    assert!(scenario(&m, "participants.ssn_leading_zeros_lost") > 0);
    assert!(
        p.rows
            .iter()
            .any(|r| digits(&r[ssn]).len() == 8 && !r[ssn].contains('-'))
    );

    // Periods, duplicates and re-entries, from the truth file.
    let mut periods: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut keys = HashSet::new();
    for r in &p.rows {
        let who = person[r[id].as_str()];
        periods.entry(who).or_default().insert(&r[entry]);
        keys.insert((who, r[entry].as_str()));
    }
    assert_eq!(
        periods.len() as f64,
        n,
        "every participant person has a row"
    );
    let reentrants = periods.values().filter(|s| s.len() > 1).count() as u64;
    assert_eq!(reentrants, scenario(&m, "participants.reentry_people"));
    within("re-entry", reentrants as f64 / n, rates::REENTRY, 0.006);
    let dups = p.rows.len() as u64 - keys.len() as u64;
    assert_eq!(
        dups,
        scenario(&m, "participants.duplicate_exact") + scenario(&m, "participants.duplicate_near")
    );
    within("duplicates", dups as f64 / rows, rates::DUPLICATE, 0.004);
    within(
        "twins",
        scenario(&m, "participants.twin_people") as f64 / n,
        rates::TWINS,
        0.003,
    );
    assert!(scenario(&m, "participants.twin_people") > 0);
    assert!(scenario(&m, "participants.reentry_ssn_given_later") > 0);

    // Dates.
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let as_of = date("2025-09-30");
    let (mut late, mut exited, mut bad_dob) = (0u64, 0u64, 0u64);
    for r in &p.rows {
        let e = date(&r[entry]);
        assert!(e >= date("2021-07-01") && e <= date("2025-06-30"));
        if !r[exit].is_empty() {
            exited += 1;
            let x = date(&r[exit]);
            assert!(x > e && x <= as_of && (x - e).num_days() >= 30);
        }
        let (i, en) = (date(&r[info]), date(&r[entered]));
        assert!(i <= en && en <= as_of);
        if (en - i).num_days() > 30 {
            late += 1;
        }
        match parse_dob(&r[dob]) {
            Some(d) if (14..=75).contains(&age(d, e)) => {}
            _ => bad_dob += 1,
        }
    }
    assert_eq!(late, scenario(&m, "participants.entered_late"));
    within(
        "entered late",
        late as f64 / rows,
        rates::ENTERED_LATE,
        0.012,
    );
    assert_eq!(exited, scenario(&m, "participants.exited"));
    within("exited", exited as f64 / rows, 0.75, 0.06);
    assert!(
        bad_dob <= scenario(&m, "participants.dob_day_month_swapped"),
        "{bad_dob} DOBs out of range or unreadable, more than the deliberately swapped ones"
    );
    let formats: HashSet<usize> = p
        .rows
        .iter()
        .map(|r| {
            if r[dob].contains('/') {
                0
            } else if r[dob].contains('-') {
                1
            } else {
                2
            }
        })
        .collect();
    assert_eq!(formats.len(), 3, "three DOB layouts");

    for key in [
        "self_report_snap_disagrees",
        "self_report_tanf_disagrees",
        "self_report_uc_disagrees",
    ] {
        let v = scenario(&m, &format!("participants.{key}")) as f64 / rows;
        within(key, v, rates::SELF_REPORT_DISAGREES, 0.015);
    }
}

#[test]
fn violation_cases_are_present_and_counted() {
    let (dir, _) = shared();
    let m = manifest(dir.path());
    let cat = catalog();
    let p = Csv::read(&dir.path().join("participants.csv"));
    let flag = |r: &Vec<String>, c: &str| r[p.col(c)] == "1";
    let (mut no_wp, mut taa_no_dw, mut declined, mut snap_no_adult, mut ndwg_no_dw) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for r in &p.rows {
        let services: Vec<(&str, &str, &str)> = r[p.col("services")]
            .split(';')
            .map(|e| {
                let mut parts = e.split(':');
                (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                )
            })
            .collect();
        let mut staff = false;
        let mut training = false;
        for (code, day, how) in &services {
            let s = cat
                .service(code)
                .unwrap_or_else(|| panic!("unknown service {code}"));
            assert!(NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok());
            assert!(*how == "S" || *how == "U");
            staff |= s.triggers_participation && *how == "S";
            training |= s.kind == "training";
        }
        assert!(staff, "every participant received a staff-assisted service");
        if training {
            assert_ne!(r[p.col("training_type")], "00");
        } else {
            assert_eq!(r[p.col("training_type")], "00");
            assert!(r[p.col("edu_enrollment_date")].is_empty());
            assert!(r[p.col("credential_date")].is_empty());
        }
        if staff && !flag(r, "wagner_peyser") {
            no_wp += 1;
        }
        if flag(r, "taa") && !flag(r, "dislocated_worker") {
            if flag(r, "taa_declined_dw") {
                declined += 1;
            } else {
                taa_no_dw += 1;
            }
        }
        if flag(r, "snap_et") && training && !flag(r, "adult") {
            snap_no_adult += 1;
        }
        if flag(r, "ndwg") && !flag(r, "dislocated_worker") {
            ndwg_no_dw += 1;
        }
        if flag(r, "youth") {
            let dob = parse_dob(&r[p.col("dob")]);
            let e = NaiveDate::parse_from_str(&r[p.col("entry_date")], "%Y-%m-%d").unwrap();
            if let Some(d) = dob {
                assert!(age(d, e) <= 25, "youth aged {}", age(d, e));
            }
        } else {
            assert!(r[p.col("youth_placement_q2")].is_empty());
        }
        if r[p.col("exit_reason")] == "05" {
            assert!(flag(r, "youth"), "foster care exit only for youth");
        }
    }
    for (observed, key) in [
        (no_wp, "violation_staff_assisted_without_wp"),
        (taa_no_dw, "violation_taa_without_dw"),
        (declined, "taa_declined_dw"),
        (snap_no_adult, "violation_snap_et_training_without_adult"),
        (ndwg_no_dw, "violation_ndwg_without_dw"),
    ] {
        assert!(observed > 0, "{key} is present");
        assert_eq!(
            observed,
            scenario(&m, &format!("participants.{key}")),
            "{key}"
        );
    }
}

#[test]
fn agency_files_have_the_intended_shape() {
    let (dir, _) = shared();
    let m = manifest(dir.path());
    let n = m["participants"].as_u64().unwrap();
    let truth = Csv::read(&dir.path().join("truth.csv"));
    let participants: HashSet<&str> = truth
        .rows
        .iter()
        .filter(|r| r[0] == "participants")
        .map(|r| r[2].as_str())
        .collect();
    let mut people: HashMap<&str, (HashSet<&str>, HashSet<&str>)> = HashMap::new();
    for r in &truth.rows {
        let e = people.entry(r[0].as_str()).or_default();
        if participants.contains(r[2].as_str()) {
            e.0.insert(&r[2]);
        } else {
            e.1.insert(&r[2]);
        }
    }
    let wages = &people["ui_wages"];
    assert!(
        wages.1.len() as u64 >= 3 * n,
        "{} non-participant wage workers for {n} participants",
        wages.1.len()
    );
    let wage_rows = m["tables"]["ui_wages"]["rows"].as_u64().unwrap() as f64;
    within("wage rows per participant", wage_rows / n as f64, 20.0, 3.0);

    let pa_rows = (
        scenario(&m, "public_assistance.participant_rows") as f64,
        scenario(&m, "public_assistance.non_participant_rows") as f64,
    );
    within(
        "PA non-participant / participant rows",
        pa_rows.1 / pa_rows.0,
        1.0,
        0.2,
    );
    assert!(scenario(&m, "public_assistance.determination_missing") > 0);
    assert!(scenario(&m, "public_assistance.period_missing") > 0);
    assert!(
        scenario(
            &m,
            "public_assistance.participant_rows_ended_a_year_before_entry"
        ) > 0
    );
    assert!(scenario(&m, "public_assistance.former_surname") > 0);
    assert!(
        scenario(&m, "ui_claims.non_participant_rows") > scenario(&m, "ui_claims.participant_rows")
    );
    assert!(scenario(&m, "taa.non_participant_people") > 0);

    // SNAP: about 35% of participants have SNAP periods on file.
    let pa = Csv::read(&dir.path().join("public_assistance.csv"));
    let pa_truth: HashMap<&str, &str> = truth
        .rows
        .iter()
        .filter(|r| r[0] == "public_assistance")
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    let snap_people: HashSet<&str> = pa
        .rows
        .iter()
        .filter(|r| r[pa.col("program")] == "SNAP")
        .map(|r| pa_truth[r[pa.col("case_id")].as_str()])
        .filter(|p| participants.contains(p))
        .collect();
    within(
        "SNAP participants",
        snap_people.len() as f64 / n as f64,
        rates::SNAP,
        0.03,
    );
    let [det, start, end] =
        ["determination_date", "benefit_start", "benefit_end"].map(|c| pa.col(c));
    for r in &pa.rows {
        if !r[det].is_empty() && !r[start].is_empty() {
            assert!(r[det] <= r[start]);
        }
        if !r[start].is_empty() && !r[end].is_empty() {
            assert!(r[start] <= r[end]);
        }
    }

    // Every agency DOB is readable and plausible (the deliberate swaps are participant-side).
    for name in ["public_assistance", "ui_claims", "taa"] {
        let f = Csv::read(&dir.path().join(format!("{name}.csv")));
        let c = f.col("dob");
        for r in &f.rows {
            if r[c].is_empty() {
                continue;
            }
            let d = parse_dob(&r[c]).unwrap_or_else(|| panic!("{name}: unreadable DOB"));
            assert!(
                d.year() >= 1940 && d.year() <= 2011,
                "{name}: DOB year {}",
                d.year()
            );
        }
    }

    // Wages: 12 quarters, positive cents, median in the $5k–$10k range.
    let w = Csv::read(&dir.path().join("ui_wages.csv"));
    let quarters: HashSet<&str> = w
        .rows
        .iter()
        .map(|r| r[w.col("year_quarter")].as_str())
        .collect();
    assert_eq!(quarters.len(), 12);
    assert!(quarters.contains("2022Q3") && quarters.contains("2025Q2"));
    let mut cents: Vec<f64> = w
        .rows
        .iter()
        .map(|r| r[w.col("wages")].parse().unwrap())
        .collect();
    cents.sort_by(f64::total_cmp);
    let median = cents[cents.len() / 2];
    assert!(
        (5_000.0..=10_000.0).contains(&median),
        "median quarterly wage {median}"
    );
    assert!(w.rows.iter().all(|r| r[w.col("wages")].contains('.')));
}

#[test]
fn a_schema_column_the_generator_lacks_is_an_error() {
    let texts = |edit: &dyn Fn(&str) -> String| -> Catalog {
        let files = [
            (
                "participants.toml",
                include_str!("../../schemas/participants.toml"),
            ),
            (
                "public_assistance.toml",
                include_str!("../../schemas/public_assistance.toml"),
            ),
            (
                "ui_claims.toml",
                include_str!("../../schemas/ui_claims.toml"),
            ),
            ("ui_wages.toml", include_str!("../../schemas/ui_wages.toml")),
            ("taa.toml", include_str!("../../schemas/taa.toml")),
        ]
        .map(|(n, t)| {
            let t = if n == "ui_wages.toml" {
                edit(t)
            } else {
                t.to_string()
            };
            (n.to_string(), t)
        });
        Catalog::from_texts(
            &files,
            include_str!("../../schemas/sensitivity.toml"),
            include_str!("../../schemas/services.toml"),
        )
        .unwrap()
    };
    let dir = TempDir::new().unwrap();
    let opts = GenerateOptions {
        participants: 100,
        seed: 1,
        out: dir.path().to_path_buf(),
        format: Format::Both,
        noise: NoiseProfile::Default,
    };
    let extra = texts(&|t| {
        t.replace(
            "  { name = \"wages\"",
            "  { name = \"hours\", type = \"int\", pii = \"none\" },\n  { name = \"wages\"",
        )
    });
    match generate(&opts, &extra) {
        Err(GenerateError::MissingColumn {
            source_name,
            column,
        }) => {
            assert_eq!((source_name, column.as_str()), ("ui_wages", "hours"));
        }
        other => panic!("expected MissingColumn, got {other:?}"),
    }
    let fewer = texts(&|t| {
        t.lines()
            .filter(|l| !l.contains("name = \"year_quarter\""))
            .collect::<Vec<_>>()
            .join("\n")
    });
    match generate(&opts, &fewer) {
        Err(GenerateError::UnknownColumn {
            source_name,
            column,
        }) => {
            assert_eq!((source_name, column.as_str()), ("ui_wages", "year_quarter"));
        }
        other => panic!("expected UnknownColumn, got {other:?}"),
    }
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn a_failed_run_leaves_no_partial_files() {
    let dir = TempDir::new().unwrap();
    // A directory where a file must go makes the final rename fail.
    fs::create_dir(dir.path().join("ui_wages.csv")).unwrap();
    let opts = GenerateOptions {
        participants: 200,
        seed: 3,
        out: dir.path().to_path_buf(),
        format: Format::Csv,
        noise: NoiseProfile::Default,
    };
    let err = generate(&opts, &catalog()).unwrap_err();
    assert!(matches!(err, GenerateError::Io { .. }), "{err}");
    for e in fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".partial"), "{name} left behind");
    }
}

#[test]
fn summary_prints_a_table() {
    let dir = TempDir::new().unwrap();
    let s = run_in(dir.path(), 50, 5, Format::Parquet);
    let text = s.to_string();
    for name in table_names() {
        assert!(text.contains(name), "{text}");
    }
    assert!(dir.path().join("participants.parquet").exists());
    assert!(!dir.path().join("participants.csv").exists());
}

// ----- Noise profiles -----

#[test]
fn heavy_noise_is_deterministic_and_named_in_the_manifest() {
    let a = TempDir::new().unwrap();
    let b = TempDir::new().unwrap();
    let c = TempDir::new().unwrap();
    let heavy = NoiseProfile::Heavy;
    let s = run_noise(a.path(), 1_500, 11, Format::Both, heavy);
    assert!(s.to_string().contains("heavy noise"), "{s}");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| run_noise(b.path(), 1_500, 11, Format::Both, heavy));
    run_in(c.path(), 1_500, 11, Format::Both);
    let (fa, fb, fc) = (
        dir_bytes(a.path()),
        dir_bytes(b.path()),
        dir_bytes(c.path()),
    );
    assert_eq!(fa.len(), 13, "{:?}", fa.keys());
    for (name, bytes) in &fa {
        assert!(
            fb[name] == *bytes,
            "heavy {name} differs between 2 threads and 1"
        );
    }
    for name in SOURCES.map(|s| format!("{s}.csv")) {
        assert!(
            fa[&name] != fc[&name],
            "{name} is the same with heavy noise"
        );
    }
    assert_eq!(manifest(a.path())["noise"], "heavy");
    assert_eq!(manifest(c.path())["noise"], "default");
}

/// The default profile's data and truth files are those of the generator before noise
/// profiles existed: SHA-256 of the CSV files written by commit 28edcf7 for N = 1,000,
/// seed 7. Pinned on x86_64 Linux only, where they were taken (a different libm could
/// round a wage or an age differently).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn default_noise_output_is_unchanged() {
    use sha2::{Digest, Sha256};
    let dir = TempDir::new().unwrap();
    run_in(dir.path(), 1_000, 7, Format::Csv);
    for (name, want) in [
        (
            "participants.csv",
            "4335ab50db61156e3fe8f6be1e6b614ef4d85659cabfe8c47ea1118e4544c145",
        ),
        (
            "public_assistance.csv",
            "0c598f91cdc7bc312a9e6d7b5f88da2f58683d94b857581dcbf0b2d29eba69e8",
        ),
        (
            "taa.csv",
            "9d9ef5e5f0c8c959408ee36fccb9b82590be5764db18589078a945a9873a5d51",
        ),
        (
            "truth.csv",
            "b773e8df5ab8ad03ef6ebc572e75f27cdb0b215b561a0d07135d99e7c37a17ac",
        ),
        (
            "ui_claims.csv",
            "6f07e014fbda610bafa5db018c41633bdea8c05193839265794af110a55e6df0",
        ),
        (
            "ui_wages.csv",
            "b4febe595d3ebde9cab54e3ca97579d4133ec9daeed26dffe4ee80414c92f8d6",
        ),
    ] {
        let got = hex::encode(Sha256::digest(fs::read(dir.path().join(name)).unwrap()));
        assert_eq!(got, want, "{name} changed under the default noise profile");
    }
}

/// One shared heavy run: N = 3,000, CSV.
fn heavy_run() -> &'static (TempDir, GenerateSummary) {
    static RUN: OnceLock<(TempDir, GenerateSummary)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        let summary = run_noise(dir.path(), 3_000, 2025, Format::Csv, NoiseProfile::Heavy);
        (dir, summary)
    })
}

/// Blank values of a column.
fn blanks(f: &Csv, column: &str) -> u64 {
    let c = f.col(column);
    f.rows.iter().filter(|r| r[c].is_empty()).count() as u64
}

#[test]
fn heavy_noise_rates_on_3000_participants() {
    let (dir, _) = heavy_run();
    let m = manifest(dir.path());
    assert_eq!(m["noise"], "heavy");
    let h = NoiseProfile::Heavy.rates();
    let count = |source: &str, keys: &[&str]| -> u64 {
        keys.iter()
            .map(|k| scenario(&m, &format!("{source}.{k}")))
            .sum()
    };
    let kinds = |total: f64| h.misspell_kinds.map(|k| total * k);

    // Participants: per-record rates.
    let p = Csv::read(&dir.path().join("participants.csv"));
    let rows = p.rows.len() as f64;
    let rate = |keys: &[&str]| count("participants", keys) as f64 / rows;
    let ssn = p.col("ssn");
    let missing = p
        .rows
        .iter()
        .filter(|r| digits(&r[ssn]).trim_start_matches('0').is_empty())
        .count() as u64;
    assert_eq!(
        missing,
        count(
            "participants",
            &["ssn_missing_blank", "ssn_missing_placeholder"]
        )
    );
    within("missing SSN", missing as f64 / rows, h.p_ssn_missing, 0.017);
    within(
        "SSN digit errors",
        rate(&["ssn_typo", "ssn_transposed"]),
        h.p_ssn_typo + h.p_ssn_transposed,
        0.007,
    );
    for (which, total) in [
        ("first", h.p_first_misspelled),
        ("last", h.p_last_misspelled),
    ] {
        let keys = ["misspelled", "ocr", "keyboard"].map(|k| format!("{which}_name_{k}"));
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        within(&format!("{which} name misspelt"), rate(&keys), total, 0.013);
        let [slip, ocr, keyboard] = kinds(total);
        within(keys[0], rate(&keys[..1]), slip, 0.01);
        within(keys[1], rate(&keys[1..2]), ocr, 0.007);
        within(keys[2], rate(&keys[2..]), keyboard, 0.007);
    }
    within(
        "names swapped",
        rate(&["names_swapped"]),
        h.p_names_swapped,
        0.008,
    );
    let dob_missing = blanks(&p, "dob");
    assert_eq!(dob_missing, count("participants", &["dob_missing"]));
    within(
        "DOB missing",
        dob_missing as f64 / rows,
        h.p_dob_missing,
        0.008,
    );
    within("DOB typo", rate(&["dob_typo"]), h.p_dob_typo, 0.006);
    let zip_missing = blanks(&p, "zip");
    assert_eq!(zip_missing, count("participants", &["zip_missing"]));
    within(
        "ZIP missing",
        zip_missing as f64 / rows,
        h.zip_missing,
        0.013,
    );
    // A mistyped DOB is still a date: only the day/month swaps are unreadable.
    let dob = p.col("dob");
    let unreadable = p
        .rows
        .iter()
        .filter(|r| !r[dob].is_empty() && parse_dob(&r[dob]).is_none())
        .count() as u64;
    assert!(unreadable <= count("participants", &["dob_day_month_swapped"]));

    // Agency files: one identity per person and agency, counted on each of its rows, so
    // the tolerances allow for people with several rows.
    for (source, ssn_missing) in [
        ("public_assistance", h.x_ssn_missing[0]),
        ("ui_claims", h.x_ssn_missing[2]),
    ] {
        let f = Csv::read(&dir.path().join(format!("{source}.csv")));
        let rows = f.rows.len() as f64;
        for (column, key, target, tolerance) in [
            ("ssn", "ssn_missing", ssn_missing, 0.02),
            ("first_name", "first_name_missing", h.x_first_missing, 0.012),
            ("last_name", "last_name_missing", h.x_last_missing, 0.008),
            ("dob", "dob_missing", h.x_dob_missing, 0.02),
            ("zip", "zip_missing", h.zip_missing, 0.02),
        ] {
            let n = blanks(&f, column);
            assert_eq!(n, count(source, &[key]), "{source}.{key}");
            within(
                &format!("{source}.{key}"),
                n as f64 / rows,
                target,
                tolerance,
            );
        }
        let dob = f.col("dob");
        assert!(
            f.rows
                .iter()
                .all(|r| r[dob].is_empty() || parse_dob(&r[dob]).is_some()),
            "{source}: every DOB, mistyped or not, is a date"
        );
    }
    let people_rows = (m["tables"]["public_assistance"]["rows"].as_u64().unwrap()
        + m["tables"]["ui_claims"]["rows"].as_u64().unwrap()) as f64;
    let both = |keys: &[&str]| {
        (count("public_assistance", keys) + count("ui_claims", keys)) as f64 / people_rows
    };
    within(
        "agency DOB typo",
        both(&["dob_typo"]),
        h.x_dob_typo * (1.0 - h.x_dob_missing),
        0.006,
    );
    within(
        "agency names swapped",
        both(&["names_swapped"]),
        h.x_names_swapped * (1.0 - h.x_first_missing) * (1.0 - h.x_last_missing),
        0.008,
    );
    // The wage file: many rows per worker, SSN and surname errors at the agency rates.
    let wage_rows = m["tables"]["ui_wages"]["rows"].as_u64().unwrap() as f64;
    let wages = |keys: &[&str]| count("ui_wages", keys) as f64 / wage_rows;
    within(
        "wage SSN missing",
        wages(&["ssn_missing"]),
        h.x_ssn_missing[3],
        0.004,
    );
    within(
        "wage SSN digit errors",
        wages(&["ssn_typo", "ssn_transposed"]),
        h.x_ssn_typo,
        0.01,
    );
    within(
        "wage surname misspelt",
        wages(&[
            "last_name_misspelled",
            "last_name_ocr",
            "last_name_keyboard",
        ]),
        h.x_last_misspelled,
        0.012,
    );
    assert_eq!(count("ui_wages", &["last_name_missing", "dob_typo"]), 0);
    for key in [
        "first_name_ocr",
        "first_name_keyboard",
        "last_name_ocr",
        "last_name_keyboard",
        "names_swapped",
    ] {
        for source in ["participants", "public_assistance", "ui_claims", "ui_wages"] {
            assert!(count(source, &[key]) > 0, "{source}.{key} present");
        }
    }
}

fn peak_rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The scale target: N = 1,000,000 (about 20 M wage rows), both formats, in under two
/// minutes on two cores. Run in release: `cargo test --release --test it generate_million
/// -- --ignored --nocapture`.
#[test]
#[ignore]
fn generate_million() {
    let dir = TempDir::new().unwrap();
    let s = run_in(dir.path(), 1_000_000, 20250930, Format::Both);
    println!("{s}");
    let bytes: u64 = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "elapsed {:.1} s, peak RSS {} MiB, output {} MiB",
        s.elapsed.as_secs_f64(),
        peak_rss_kib() / 1024,
        bytes >> 20
    );
}
