//! The quarterly report files (the `quarterly-performance` job's body): the suppressed
//! performance, co-enrolment and data-quality reports as CSV and JSON under
//! `reports/PY<py>/<quarter>/`, written only once the UI wage quarter they need is loaded.
//!
//! # Which wage quarter a run on a given day needs
//!
//! A run on `today` reports on the last calendar quarter that has ended, R (`today`'s
//! quarter minus one). DOL lags the outcome cohorts so that one wage quarter completes
//! them all: in the report for the period ending with R, the Q2 employment and median
//! earnings cohort's latest exits are in R−4 (Q2 after exit = R−2), and the Q4 and
//! credential cohort's latest exits in R−6 (Q4 after exit = R−2). E.g. the report for the
//! period ending 30 June 2025 (PY2024, fourth quarter) has Q2 exits up to 2024Q2 and Q4
//! exits up to 2023Q4, both needing 2024Q4 wages. So the wage quarter needed is **R−2,
//! i.e. `today`'s quarter minus three**. Employers file a quarter's wages during the
//! following month and the UI agency shares them a quarter or so later (the "about two
//! quarters" lag), so R−2 has normally arrived by the time R is over; until its records
//! are in the published lake the job reports `NotReady` and writes nothing, and the
//! daemon tries again at its next firing.
//!
//! Loaded means the published snapshot has a `quarterly_wages/year_quarter=<W>`
//! partition with at least one file: the pipeline writes a partition for every wage
//! quarter that linked any record, and a state's wage file for a quarter never links to
//! none of its participants.
//!
//! The program year defaults to the one R falls in (R = 2025Q2 → PY2024). Cells whose
//! cohort still lacks wage data are `incomplete` in the files, never zero.

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::performance::{self, Suppression};
use super::session::LakeSession;
use super::{OutputFormat, ReportError, record};
use crate::lake::{ColumnMeta, PersonSet, WrittenFile, Zone};
use crate::link::wages::Quarter;
use crate::workspace::Workspace;

#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Default: the program year of the reporting quarter.
    pub program_year: Option<i32>,
    /// The day the job runs (a parameter so the daemon's clock and tests decide).
    pub today: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuarterlyOutcome {
    /// The precondition does not hold; nothing was written.
    NotReady {
        reason: String,
    },
    Published(Published),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub program_year: i32,
    pub reporting_quarter: Quarter,
    pub wage_quarter: Quarter,
    pub run_id: i64,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

fn minus(q: Quarter, n: i32) -> Quarter {
    let idx = q.year * 4 + i32::from(q.q - 1) - n;
    Quarter {
        year: idx.div_euclid(4),
        q: (idx.rem_euclid(4) + 1) as u8,
    }
}

/// The last calendar quarter that has ended on `today`.
pub fn reporting_quarter(today: NaiveDate) -> Quarter {
    minus(Quarter::of(today), 1)
}

/// The UI wage quarter a report run on `today` needs (see the module documentation).
pub fn required_wage_quarter(today: NaiveDate) -> Quarter {
    minus(Quarter::of(today), 3)
}

/// The last day of a quarter.
fn last_day(q: Quarter) -> NaiveDate {
    let next = q.plus(1);
    NaiveDate::from_ymd_opt(next.year, u32::from(next.q - 1) * 3 + 1, 1).expect("valid date")
        - chrono::Duration::days(1)
}

/// Writes the quarter's suppressed report files, or says why not yet.
pub async fn publish_quarterly(
    ws: &Workspace,
    opts: &PublishOptions,
) -> Result<QuarterlyOutcome, ReportError> {
    let reporting = reporting_quarter(opts.today);
    let wage_quarter = required_wage_quarter(opts.today);
    let session = match LakeSession::open(&ws.lake_dir()).await {
        Ok(s) => s,
        Err(ReportError::NothingPublished(_)) => {
            return Ok(QuarterlyOutcome::NotReady {
                reason: "nothing is published yet (no nightly run has succeeded)".into(),
            });
        }
        Err(e) => return Err(e),
    };
    // Checked in the snapshot the session reads, so a publish in between cannot make the
    // check and the reports disagree.
    let partition = session
        .snapshot_dir()
        .join("quarterly_wages")
        .join(format!("year_quarter={wage_quarter}"));
    if crate::lake::parquet_files(&partition).is_empty() {
        return Ok(QuarterlyOutcome::NotReady {
            reason: format!(
                "UI wage quarter {wage_quarter} is not loaded in the published snapshot (run {}); the report for the quarter ending {} needs it",
                session.run_id(),
                last_day(reporting)
            ),
        });
    }
    let py = opts
        .program_year
        .unwrap_or_else(|| crate::deid::program_year(last_day(reporting)));
    let threshold = u64::from(ws.config().reporting.small_cell_threshold);

    let perf = performance::performance(&session, py, Suppression::Threshold(threshold)).await?;
    let CountTables {
        co_schema,
        co_rows,
        dq_schema,
        dq_rows,
    } = suppressed_tables(&session, py, threshold).await?;
    let co_schema = &co_schema;

    let protection = format!("cells under {threshold} people suppressed");
    let co_header = format!(
        "Missouri P13 co-enrolment findings per rule and local area, periods entered in program year {py} (run {}): {protection}",
        session.run_id()
    );
    let dq_header = format!(
        "Data quality of the published snapshot (run {}): {protection}",
        session.run_id()
    );
    let files: Vec<ReportFile> = vec![
        ReportFile::new(
            "performance.csv",
            "reports/performance",
            perf.render(OutputFormat::Csv)?,
            columns(&perf.to_batch()?.0, false),
            perf.cells.len() as u64,
        ),
        ReportFile::new(
            "performance.json",
            "reports/performance",
            perf.render(OutputFormat::Json)?,
            columns(&perf.to_batch()?.0, false),
            perf.cells.len() as u64,
        ),
        ReportFile::new(
            "coenrollment.csv",
            "reports/coenrollment",
            rows_csv(&co_header, co_schema, &co_rows)?,
            columns(co_schema, true),
            co_rows.len() as u64,
        ),
        ReportFile::new(
            "coenrollment.json",
            "reports/coenrollment",
            rows_json("coenrollment", &co_header, threshold, &co_rows)?,
            columns(co_schema, true),
            co_rows.len() as u64,
        ),
        ReportFile::new(
            "data-quality.csv",
            "reports/data_quality",
            rows_csv(&dq_header, &dq_schema, &dq_rows)?,
            columns(&dq_schema, true),
            dq_rows.len() as u64,
        ),
        ReportFile::new(
            "data-quality.json",
            "reports/data_quality",
            rows_json("data-quality", &dq_header, threshold, &dq_rows)?,
            columns(&dq_schema, true),
            dq_rows.len() as u64,
        ),
    ];

    let reports = ws.reports_dir();
    let year_dir = reports.join(format!("PY{py}"));
    std::fs::create_dir_all(&year_dir).map_err(|source| ReportError::Io {
        path: year_dir.clone(),
        source,
    })?;
    let dir = year_dir.join(reporting.to_string());
    let relative = PathBuf::from("reports")
        .join(format!("PY{py}"))
        .join(reporting.to_string());
    let mut lineage: Vec<WrittenFile> = Vec::new();
    let mut manifest_files = Vec::new();
    for out in &files {
        let f = record::written_file(
            Zone::Deid,
            out.dataset,
            relative.join(out.name),
            &out.bytes,
            out.rows,
            out.columns.clone(),
            // Counts of people, no person keys: the files single nobody out.
            PersonSet::new(),
        );
        manifest_files.push(serde_json::json!({"name": out.name, "sha256": f.sha256}));
        lineage.push(f);
    }
    let manifest = serde_json::json!({
        "program_year": py,
        "reporting_quarter": reporting.to_string(),
        "wage_quarter": wage_quarter.to_string(),
        "run_id": session.run_id(),
        "small_cell_threshold": threshold,
        "generated_on": opts.today.to_string(),
        "files": manifest_files,
    });
    let manifest =
        serde_json::to_vec_pretty(&manifest).map_err(|e| ReportError::Output(e.to_string()))?;

    let tmp = year_dir.join(format!(".{reporting}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|source| ReportError::Io {
        path: tmp.clone(),
        source,
    })?;
    for out in &files {
        record::write_atomic(&tmp.join(out.name), &out.bytes, false)?;
    }
    record::write_atomic(&tmp.join("manifest.json"), &manifest, false)?;

    let store = record::open_store(ws).await?;
    record::record_lineage(&store, session.run_id(), &lineage).await?;
    store.close().await;
    swap_into_place(&tmp, &dir)?;

    let mut written: Vec<PathBuf> = files.iter().map(|f| dir.join(f.name)).collect();
    written.push(dir.join("manifest.json"));
    Ok(QuarterlyOutcome::Published(Published {
        program_year: py,
        reporting_quarter: reporting,
        wage_quarter,
        run_id: session.run_id(),
        dir,
        files: written,
    }))
}

/// The co-enrolment counts (periods entered in the program year) and the data-quality
/// rows with primary suppression applied (a `status`, nulls where suppressed): what the
/// quarterly files and the HTML report publish.
pub struct CountTables {
    pub co_schema: SchemaRef,
    pub co_rows: Vec<Map<String, Value>>,
    pub dq_schema: SchemaRef,
    pub dq_rows: Vec<Map<String, Value>>,
}

pub async fn suppressed_tables(
    session: &LakeSession,
    py: i32,
    threshold: u64,
) -> Result<CountTables, ReportError> {
    let coenrollment = super::coenrollment::coenrollment(session, Some(py)).await?;
    let (co_schema, co_batches) = coenrollment.counts;
    let mut co_rows = objects(super::output::json_rows(&co_batches)?);
    suppress_counts(&mut co_rows, &["findings", "persons"], None, threshold);
    let (dq_schema, dq_batch) = super::quality::data_quality(session).await?;
    let mut dq_rows = objects(super::output::json_rows(std::slice::from_ref(&dq_batch))?);
    suppress_counts(&mut dq_rows, &["count"], Some("of_total"), threshold);
    Ok(CountTables {
        co_schema,
        co_rows,
        dq_schema,
        dq_rows,
    })
}

/// One report file: its name, lineage dataset, bytes, columns and rows.
struct ReportFile {
    name: &'static str,
    dataset: &'static str,
    bytes: Vec<u8>,
    columns: Vec<ColumnMeta>,
    rows: u64,
}

impl ReportFile {
    fn new(
        name: &'static str,
        dataset: &'static str,
        bytes: Vec<u8>,
        columns: Vec<ColumnMeta>,
        rows: u64,
    ) -> ReportFile {
        ReportFile {
            name,
            dataset,
            bytes,
            columns,
            rows,
        }
    }
}

/// Moves the complete `tmp` directory to `dir`. A rerun replaces an earlier publication
/// of the quarter (a later nightly run may have loaded more wages): the old directory is
/// renamed aside first, so `dir` is always either the old set or the new one, whole.
fn swap_into_place(tmp: &Path, dir: &Path) -> Result<(), ReportError> {
    let parent = dir.parent().expect("a reports subdirectory");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    record::sync_dir(tmp)?;
    let old = parent.join(format!(
        ".{}.old-{}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let replaced = dir.exists();
    if replaced {
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(tmp, dir).map_err(io(dir))?;
    record::sync_dir(parent)?;
    if replaced {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

fn objects(rows: Vec<Value>) -> Vec<Map<String, Value>> {
    rows.into_iter()
        .filter_map(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Lineage columns of a report file: counts and labels, nothing personal.
fn columns(schema: &SchemaRef, with_status: bool) -> Vec<ColumnMeta> {
    let mut cols: Vec<ColumnMeta> = schema
        .fields()
        .iter()
        .map(|f| ColumnMeta::plain(f.name().clone()))
        .collect();
    if with_status {
        cols.push(ColumnMeta::plain("status"));
    }
    cols
}

/// Primary small-cell suppression of a count table: a row whose count (any of `counts`),
/// or whose total minus its count, is under the threshold has its counts and share
/// nulled, and says `suppressed`. These tables publish no sums of their rows (rules and
/// areas overlap; reject reasons have no total line), so no complementary cell is needed;
/// a total itself under the threshold is hidden too.
pub fn suppress_counts(
    rows: &mut [Map<String, Value>],
    counts: &[&str],
    total: Option<&str>,
    threshold: u64,
) {
    for r in rows.iter_mut() {
        let get = |r: &Map<String, Value>, k: &str| r.get(k).and_then(Value::as_u64);
        let t = total.and_then(|k| get(r, k));
        let small = counts.iter().any(|c| {
            let n = get(r, c);
            n.is_some_and(|n| n < threshold)
                || matches!((n, t), (Some(n), Some(t)) if t.saturating_sub(n) < threshold)
        });
        if small {
            for c in counts {
                r.insert((*c).to_string(), Value::Null);
            }
            if r.contains_key("share") {
                r.insert("share".into(), Value::Null);
            }
            if let Some(k) = total
                && t.is_some_and(|t| t < threshold)
            {
                r.insert(k.to_string(), Value::Null);
            }
        }
        r.insert(
            "status".into(),
            Value::String(if small { "suppressed" } else { "published" }.into()),
        );
    }
}

fn rows_csv(
    header: &str,
    schema: &SchemaRef,
    rows: &[Map<String, Value>],
) -> Result<Vec<u8>, ReportError> {
    let mut names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    names.push("status".into());
    let mut out = format!("# {header}\n").into_bytes();
    let mut w = csv::Writer::from_writer(&mut out);
    let err = |e: csv::Error| ReportError::Output(e.to_string());
    w.write_record(&names).map_err(err)?;
    for r in rows {
        w.write_record(names.iter().map(|n| match r.get(n) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }))
        .map_err(err)?;
    }
    w.flush().map_err(|e| ReportError::Output(e.to_string()))?;
    drop(w);
    Ok(out)
}

fn rows_json(
    report: &str,
    header: &str,
    threshold: u64,
    rows: &[Map<String, Value>],
) -> Result<Vec<u8>, ReportError> {
    let doc = serde_json::json!({
        "report": report,
        "header": header,
        "suppression": {"threshold": threshold},
        "rows": rows,
    });
    let mut out =
        serde_json::to_vec_pretty(&doc).map_err(|e| ReportError::Output(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn wage_quarter_is_three_behind_the_run_quarter() {
        // PY2024's fourth-quarter report (period ending 2025-06-30), run in 2025Q3, needs
        // 2024Q4 wages: Q2 after the last Q2-cohort exits (2024Q2) and Q4 after the last
        // Q4-cohort exits (2023Q4).
        let today = d("2025-08-15");
        assert_eq!(reporting_quarter(today).to_string(), "2025Q2");
        assert_eq!(required_wage_quarter(today).to_string(), "2024Q4");
        assert_eq!(
            crate::deid::program_year(last_day(reporting_quarter(today))),
            2024
        );
        // Quarter boundaries and the turn of the year.
        assert_eq!(required_wage_quarter(d("2026-01-01")).to_string(), "2025Q2");
        assert_eq!(required_wage_quarter(d("2025-12-31")).to_string(), "2025Q1");
        assert_eq!(reporting_quarter(d("2026-01-01")).to_string(), "2025Q4");
        assert_eq!(last_day(Quarter::parse("2024Q4").unwrap()), d("2024-12-31"));
        assert_eq!(last_day(Quarter::parse("2025Q1").unwrap()), d("2025-03-31"));
    }

    #[test]
    fn small_counts_and_small_complements_are_suppressed() {
        let mut rows: Vec<Map<String, Value>> = [
            serde_json::json!({"item": "a", "count": 3, "of_total": 100, "share": 0.03}),
            serde_json::json!({"item": "b", "count": 95, "of_total": 100, "share": 0.95}),
            serde_json::json!({"item": "c", "count": 40, "of_total": 100, "share": 0.4}),
            serde_json::json!({"item": "d", "count": 40, "of_total": null, "share": null}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        suppress_counts(&mut rows, &["count"], Some("of_total"), 11);
        let status: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(
            status,
            ["suppressed", "suppressed", "published", "published"]
        );
        assert!(rows[0]["count"].is_null() && rows[0]["share"].is_null());
        assert_eq!(rows[0]["of_total"], 100);
        assert_eq!(rows[2]["count"], 40);
    }
}
