//! `xmatch report coenrollment`: Missouri P13 co-enrolment findings for case managers.
//!
//! The findings name `person_key`s so staff can act on them: they are for use inside the
//! agency (like the case-management system itself) and are not small-cell suppressed.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::session::LakeSession;
use super::{OutputFormat, ReportError};

pub const FINDINGS_SQL: &str = include_str!("sql/coenrollment_findings.sql");
pub const COUNTS_SQL: &str = include_str!("sql/coenrollment_counts.sql");

pub struct CoenrollmentReport {
    pub counts: (SchemaRef, Vec<RecordBatch>),
    pub findings: (SchemaRef, Vec<RecordBatch>),
}

/// Runs the findings (for one program year of entry, or all) and the counts.
pub async fn coenrollment(
    session: &LakeSession,
    program_year: Option<i32>,
) -> Result<CoenrollmentReport, ReportError> {
    for t in ["participants", "services"] {
        if !session.has_table(t) {
            return Err(ReportError::Usage(format!(
                "the published snapshot has no {t} dataset: nothing to check"
            )));
        }
    }
    if let Some(py) = program_year {
        super::require_program_year(session, py).await?;
    }
    let filter = match program_year {
        Some(py) => format!("WHERE program_year = {py}"),
        None => String::new(),
    };
    let findings_sql = format!(
        "SELECT * FROM ({FINDINGS_SQL}) f {filter} ORDER BY local_area, rule, person_key, entry_date"
    );
    let ctx = session.context();
    let view = ctx.sql(&findings_sql).await?.into_view();
    session.set_scratch_table("coenrollment_findings", view)?;
    let run = |sql: &str| {
        let local = ctx.clone();
        let sql = sql.to_string();
        async move {
            let df = local.sql(&sql).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            Ok::<_, ReportError>((schema, df.collect().await?))
        }
    };
    Ok(CoenrollmentReport {
        counts: run(COUNTS_SQL).await?,
        findings: run("SELECT * FROM coenrollment_findings").await?,
    })
}

impl CoenrollmentReport {
    /// Table: counts then findings; CSV: the findings (the actionable list); JSON: both.
    pub fn render(&self, format: OutputFormat) -> Result<Vec<u8>, ReportError> {
        let header =
            "Missouri P13 co-enrolment findings: internal, for case management (lists person keys)";
        let mut out = Vec::new();
        match format {
            OutputFormat::Json => {
                let doc = serde_json::json!({
                    "report": "coenrollment",
                    "header": header,
                    "counts": super::output::json_rows(&self.counts.1)?,
                    "findings": super::output::json_rows(&self.findings.1)?,
                });
                serde_json::to_writer_pretty(&mut out, &doc)
                    .map_err(|e| ReportError::Output(e.to_string()))?;
                out.push(b'\n');
            }
            OutputFormat::Csv => {
                super::output::render(&self.findings.0, &self.findings.1, format, &mut out)?;
            }
            _ => {
                out.extend_from_slice(
                    format!("{header}\n\nFindings per rule and local area\n").as_bytes(),
                );
                super::output::render(
                    &self.counts.0,
                    &self.counts.1,
                    OutputFormat::Table,
                    &mut out,
                )?;
                out.extend_from_slice(b"\nFindings\n");
                super::output::render(
                    &self.findings.0,
                    &self.findings.1,
                    OutputFormat::Table,
                    &mut out,
                )?;
            }
        }
        Ok(out)
    }
}
