//! Reporting over the de-identified zone: one DataFusion session over the published
//! snapshot, ad-hoc SQL, and the reports (WIOA performance indicators, Missouri P13
//! co-enrolment findings, data quality).
//!
//! Every report is a SQL file under `src/report/sql/`, compiled in with `include_str!`,
//! so what a number means can be read in one place instead of being assembled from
//! strings scattered through Rust. Rust only binds the program year, runs the SQL and
//! applies small-cell suppression, which is a cross-row decision SQL expresses poorly.

pub mod coenrollment;
pub mod dashboard;
pub mod evidence;
pub mod html;
pub mod output;
pub mod performance;
pub mod pirl;
pub mod publish;
pub mod quality;
pub mod record;
pub mod session;
pub mod suppress;

pub use output::OutputFormat;
pub use session::{LakeSession, TableInfo};

/// Everything that can go wrong in reporting. Each renders as one line: the CLI prints it
/// after `xmatch: error:` and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "nothing is published in {0} yet: run a pipeline first (`xmatch run nightly-crossmatch`)"
    )]
    NothingPublished(std::path::PathBuf),
    #[error("{0}")]
    Lake(#[from] crate::lake::LakeError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A planning or execution error from DataFusion, flattened to one line.
    #[error("{0}")]
    Sql(String),
    #[error("{0}")]
    Output(String),
    #[error("program year {0} has no participant data in the published snapshot")]
    NoData(i32),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Schema(#[from] crate::schema::SchemaError),
    #[error(
        "PIRL edit checks failed in {rows} row(s) ({checks} element/check pair(s)); --strict: nothing written"
    )]
    EditChecks { rows: u64, checks: usize },
    #[error("quarterly reports not written: {0}")]
    NotReady(String),
    #[error("{0}")]
    Secure(#[from] crate::secure::SecureError),
}

impl From<datafusion::error::DataFusionError> for ReportError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        ReportError::Sql(one_line(&e.strip_backtrace()))
    }
}

impl From<arrow::error::ArrowError> for ReportError {
    fn from(e: arrow::error::ArrowError) -> Self {
        ReportError::Output(one_line(&e.to_string()))
    }
}

/// Collapses a multi-line message (DataFusion's errors often carry a newline and a hint)
/// into one line, so the CLI's "errors are one line" promise holds.
pub fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    // DataFusion lists every column of the table after an unknown one; `xmatch tables`
    // shows them better than a line of hundreds of names.
    match s.find(" Valid fields are ") {
        Some(i) => format!("{} (see `xmatch tables` for the columns)", &s[..i]),
        None => s,
    }
}

/// The first and last day of program year `py` (1 July `py` – 30 June `py + 1`).
pub fn program_year_bounds(py: i32) -> (chrono::NaiveDate, chrono::NaiveDate) {
    (
        chrono::NaiveDate::from_ymd_opt(py, 7, 1).expect("valid date"),
        chrono::NaiveDate::from_ymd_opt(py + 1, 6, 30).expect("valid date"),
    )
}

pub const EXTENT_SQL: &str = include_str!("sql/program_year_extent.sql");

/// Fails with [`ReportError::NoData`] unless program year `py` overlaps the dates the
/// published participants cover (entries and exits). Every report and extract taking a
/// program year asks this first, so a mistyped or future year is one clear error rather
/// than a report of the periods that happen to be still open.
pub async fn require_program_year(session: &LakeSession, py: i32) -> Result<(), ReportError> {
    use arrow::array::{Array, AsArray};
    if !session.has_table("participants") {
        return Err(ReportError::NoData(py));
    }
    let (_, batches) = session.query(EXTENT_SQL).await?;
    let date = |name: &str| -> Option<chrono::NaiveDate> {
        // An aggregate's one row can come after empty batches.
        let b = batches.iter().find(|b| b.num_rows() > 0)?;
        let a = arrow::compute::cast(b.column_by_name(name)?, &arrow::datatypes::DataType::Date32)
            .ok()?;
        let a = a.as_primitive_opt::<arrow::datatypes::Date32Type>()?;
        (!a.is_null(0)).then(|| crate::deid::from_date32(a.value(0)))
    };
    let (start, end) = program_year_bounds(py);
    match (date("first_date"), date("last_date")) {
        (Some(first), Some(last)) if first <= end && last >= start => Ok(()),
        _ => Err(ReportError::NoData(py)),
    }
}

/// Binds a program year into a report's SQL. Report SQL names `{{py}}`, `{{py_start}}` and
/// `{{py_end}}`; the values are an `i32` and two dates formatted here, never user text, so
/// textual binding cannot inject SQL (DataFusion's `$1` placeholders cannot be typed inside
/// `DATE` literals and window frames, which is why they are not used).
pub fn bind_program_year(sql: &str, py: i32) -> String {
    let (start, end) = program_year_bounds(py);
    sql.replace("{{py}}", &py.to_string())
        .replace("{{py_start}}", &format!("DATE '{start}'"))
        .replace("{{py_end}}", &format!("DATE '{end}'"))
}

/// Who runs a command, for the audit table: the login name from the environment.
pub fn actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Writes internal-use (unsuppressed) output into the secure zone — `secure/reports/`,
/// 0700 directory, 0600 file, sealed — and records who did it in the audit table. This is the
/// only way `--no-suppress` output leaves the process: never stdout, never `reports/`.
pub async fn write_internal(
    ws: &crate::workspace::Workspace,
    run_id: i64,
    file_name: &str,
    bytes: &[u8],
    detail: serde_json::Value,
) -> Result<std::path::PathBuf, ReportError> {
    let zone = ws
        .secure_zone()
        .map_err(|e| ReportError::Output(one_line(&e.to_string())))?;
    let secure = zone.root().to_path_buf();
    let dir = secure.join("reports");
    for d in [&secure, &dir] {
        crate::workspace::create_private_dir(d)
            .map_err(|e| ReportError::Output(one_line(&e.to_string())))?;
    }
    let path = dir.join(file_name);
    zone.write_atomic(&path, run_id, bytes)?;
    let store = ws
        .open_store()
        .await
        .map_err(|e| ReportError::Output(one_line(&e.to_string())))?;
    let mut detail = detail;
    if let serde_json::Value::Object(m) = &mut detail {
        m.insert(
            "path".into(),
            serde_json::Value::String(path.display().to_string()),
        );
    }
    store
        .record_audit(&crate::store::AuditEntry {
            actor: actor(),
            action: "report.no_suppress".into(),
            reason: Some(
                "internal-use output without small-cell suppression, written to the secure zone"
                    .into(),
            ),
            detail,
        })
        .await?;
    store.close().await;
    Ok(path)
}

/// `xmatch report …`: runs one report and prints it (or, for `--no-suppress`, writes it
/// to the secure zone and prints where).
pub async fn run_command(
    ws: &crate::workspace::Workspace,
    command: crate::cli::ReportCommand,
) -> Result<(), ReportError> {
    use crate::cli::ReportCommand;
    use std::io::Write;
    let session = LakeSession::open(&ws.lake_dir()).await?;
    let bytes = match command {
        ReportCommand::Performance {
            program_year,
            format,
            no_suppress,
        } => {
            let format: OutputFormat = format.into();
            let suppression = if no_suppress {
                performance::Suppression::None
            } else {
                performance::Suppression::Threshold(u64::from(
                    ws.config().reporting.small_cell_threshold,
                ))
            };
            let report = performance::performance(&session, program_year, suppression).await?;
            let bytes = report.render(format)?;
            if no_suppress {
                let ext = match format {
                    OutputFormat::Csv => "csv",
                    OutputFormat::Json => "json",
                    _ => "txt",
                };
                let name = format!(
                    "performance-py{program_year}-run{}-{}.{ext}",
                    session.run_id(),
                    chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
                );
                let path = write_internal(
                    ws,
                    session.run_id(),
                    &name,
                    &bytes,
                    serde_json::json!({
                        "report": "performance",
                        "program_year": program_year,
                        "run_id": session.run_id(),
                        "cells": report.cells.len(),
                    }),
                )
                .await?;
                format!(
                    "INTERNAL USE ONLY: unsuppressed report written to the secure zone: {}\n",
                    path.display()
                )
                .into_bytes()
            } else {
                bytes
            }
        }
        ReportCommand::Coenrollment {
            program_year,
            format,
        } => coenrollment::coenrollment(&session, program_year)
            .await?
            .render(format.into())?,
        ReportCommand::DataQuality { format } => {
            let (schema, batch) = quality::data_quality(&session).await?;
            quality::render(&schema, &batch, format.into())?
        }
        ReportCommand::Html { program_year } => dashboard::write_html_report(ws, program_year)
            .await?
            .to_string()
            .into_bytes(),
        ReportCommand::Publish { program_year } => {
            let opts = publish::PublishOptions {
                program_year,
                today: chrono::Local::now().date_naive(),
            };
            match publish::publish_quarterly(ws, &opts).await? {
                publish::QuarterlyOutcome::NotReady { reason } => {
                    return Err(ReportError::NotReady(reason));
                }
                publish::QuarterlyOutcome::Published(p) => {
                    let mut text = format!(
                        "program year {}, quarter ending {} (wage quarter {} loaded, run {}): written to {}\n",
                        p.program_year,
                        p.reporting_quarter,
                        p.wage_quarter,
                        p.run_id,
                        p.dir.display()
                    );
                    for f in &p.files {
                        text.push_str(&format!("  {}\n", f.display()));
                    }
                    text.into_bytes()
                }
            }
        }
    };
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| ReportError::Output(e.to_string()))
}
