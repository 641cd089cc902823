//! `xmatch report performance`: the WIOA primary indicators for Adult, Dislocated Worker,
//! Youth and Wagner-Peyser, with breakdowns, participation counts, and small-cell
//! suppression. The numbers come from `sql/performance.sql`; this module orders the
//! cells, suppresses small ones and renders them.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::session::LakeSession;
use super::suppress::{Cell, MEDIAN_SOURCE, suppress};
use super::{ReportError, bind_program_year};

pub const COHORT_SQL: &str = include_str!("sql/performance_cohort.sql");
pub const PERFORMANCE_SQL: &str = include_str!("sql/performance.sql");

pub const PROGRAMS: &[&str] = &["Adult", "Dislocated Worker", "Youth", "Wagner-Peyser"];
pub const INDICATORS: &[&str] = &[
    "Employment rate Q2",
    "Median earnings Q2",
    "Employment rate Q4",
    "Credential attainment rate",
    "Measurable skill gains rate",
    "Retention with same employer",
    "Exited during program year",
    "Co-enrolled in another program",
];
pub const BREAKDOWNS: &[&str] = &[
    "Total",
    "Sex",
    "Age at entry",
    "Race/ethnicity",
    "Exit quarter",
    "Barrier",
];

/// What the report leaves out, and why: printed with every rendering (a `# note:` line
/// in CSV, `notes` in JSON) so a reader of the numbers sees it beside them.
///
/// TEGL 10-16 offers three approaches to the shared indicator "effectiveness in serving
/// employers"; a state reports two of them. xmatch computes retention with the same
/// employer from the UI wage records. The other two count *establishments that received
/// a service* from the core programs, and xmatch is given no record of services to
/// employers: the lake's `quarterly_wages` holds the (tokenized) employers of
/// participants' linked wage records, which says who employed participants, not who was
/// served. Nothing is inferred from it.
pub const NOTES: &[&str] = &[
    "Effectiveness in serving employers: only the retention-with-the-same-employer approach is computed (Q4-cohort exiters employed in Q2 whose Q2 employer also paid them in Q4, from UI wage records).",
    "Repeat business customers (TEGL 10-16) is not computed: it needs a record of services to employers, which xmatch does not receive. Needed: one row per service delivered to an establishment by a core program (the establishment as BLS QCEW identifies it, UI account number and reporting-unit number, tokenized like the wage records' accounts; the service type, per the employer-services categories of the ETA-9169; the service date, or start and end of an ongoing service; the program), for the program year and the three program years before it. Numerator: establishments served in the year that were also served within the previous three years; denominator: establishments served in the year.",
    "Employer penetration rate (TEGL 10-16) is not computed: it needs the same employer-services record for the program year, and the number of establishments in the state in the last quarter of the year as BLS QCEW counts them. Numerator: establishments served in the year; denominator: the QCEW count. The lake's quarterly_wages holds only the employers of participants' linked wage records and cannot stand in for either.",
];

/// How the cells are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// Primary and complementary suppression below this many people.
    Threshold(u64),
    /// Internal use: nothing suppressed (secure zone only).
    None,
}

/// The computed report.
#[derive(Debug, Clone)]
pub struct PerformanceReport {
    pub program_year: i32,
    pub run_id: i64,
    pub suppression: Suppression,
    pub cells: Vec<Cell>,
}

/// Computes the raw cells (no suppression) for `py`, in report order.
pub async fn cells(session: &LakeSession, py: i32) -> Result<Vec<Cell>, ReportError> {
    super::require_program_year(session, py).await?;
    // DataFusion does not share a CTE or view between the branches of a UNION ALL: each
    // would scan the Parquet files again. The year's rows are few, so hold them in memory.
    let (schema, rows) = session.query(&bind_program_year(COHORT_SQL, py)).await?;
    let local = datafusion::prelude::SessionContext::new_with_state(session.context().state());
    local.register_table(
        "cohort",
        Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![rows],
        )?),
    )?;
    let batches = local
        .sql(&bind_program_year(PERFORMANCE_SQL, py))
        .await?
        .collect()
        .await?;
    let mut cells = Vec::new();
    for b in &batches {
        let s = |name: &str| -> Result<StringArray, ReportError> {
            let a = b
                .column_by_name(name)
                .ok_or_else(|| ReportError::Output(format!("performance.sql: no column {name}")))?;
            Ok(arrow::compute::cast(a, &DataType::Utf8)?
                .as_string::<i32>()
                .clone())
        };
        let n = |name: &str| -> Result<UInt64Array, ReportError> {
            let a = b
                .column_by_name(name)
                .ok_or_else(|| ReportError::Output(format!("performance.sql: no column {name}")))?;
            Ok(arrow::compute::cast(a, &DataType::UInt64)?
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .clone())
        };
        let (program, indicator, breakdown, grp) =
            (s("program")?, s("indicator")?, s("breakdown")?, s("grp")?);
        let (num, den, awaiting) = (n("numerator")?, n("denominator")?, n("awaiting")?);
        let median = arrow::compute::cast(
            b.column_by_name("median")
                .ok_or_else(|| ReportError::Output("performance.sql: no column median".into()))?,
            &DataType::Float64,
        )?;
        let median = median.as_primitive::<arrow::datatypes::Float64Type>();
        for i in 0..b.num_rows() {
            cells.push(Cell {
                program: program.value(i).to_string(),
                indicator: indicator.value(i).to_string(),
                breakdown: breakdown.value(i).to_string(),
                group: grp.value(i).to_string(),
                numerator: num.value(i),
                denominator: den.value(i),
                awaiting: awaiting.value(i),
                median: (!median.is_null(i)).then(|| median.value(i)),
                suppressed: false,
            });
        }
    }
    if cells.is_empty() {
        return Err(ReportError::NoData(py));
    }
    // A median is incomplete exactly when its employment cell is.
    let awaiting: std::collections::HashMap<(String, String, String), u64> = cells
        .iter()
        .filter(|c| c.indicator == MEDIAN_SOURCE)
        .map(|c| {
            (
                (c.program.clone(), c.breakdown.clone(), c.group.clone()),
                c.awaiting,
            )
        })
        .collect();
    for c in cells.iter_mut().filter(|c| c.is_median()) {
        c.awaiting = awaiting
            .get(&(c.program.clone(), c.breakdown.clone(), c.group.clone()))
            .copied()
            .unwrap_or(0);
    }
    let pos = |list: &[&str], v: &str| list.iter().position(|x| *x == v).unwrap_or(list.len());
    cells.sort_by(|a, b| {
        (
            pos(PROGRAMS, &a.program),
            pos(INDICATORS, &a.indicator),
            pos(BREAKDOWNS, &a.breakdown),
            &a.group,
        )
            .cmp(&(
                pos(PROGRAMS, &b.program),
                pos(INDICATORS, &b.indicator),
                pos(BREAKDOWNS, &b.breakdown),
                &b.group,
            ))
    });
    Ok(cells)
}

/// Computes the report for `py` with the given protection.
pub async fn performance(
    session: &LakeSession,
    py: i32,
    suppression: Suppression,
) -> Result<PerformanceReport, ReportError> {
    let mut cells = cells(session, py).await?;
    if let Suppression::Threshold(t) = suppression {
        suppress(&mut cells, t);
    }
    Ok(PerformanceReport {
        program_year: py,
        run_id: session.run_id(),
        suppression,
        cells,
    })
}

impl PerformanceReport {
    /// The header line every rendering starts with: what this is and how it is protected.
    pub fn header(&self) -> String {
        match self.suppression {
            Suppression::Threshold(t) => format!(
                "WIOA performance, program year {} (run {}): cells under {t} people suppressed, with complementary suppression",
                self.program_year, self.run_id
            ),
            Suppression::None => format!(
                "INTERNAL USE ONLY - NOT SUPPRESSED - secure zone only, do not publish: WIOA performance, program year {} (run {})",
                self.program_year, self.run_id
            ),
        }
    }

    /// The cells as one batch; suppressed counts, rates and medians are null with status
    /// `suppressed`.
    pub fn to_batch(&self) -> Result<(SchemaRef, RecordBatch), ReportError> {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("program", DataType::Utf8, false),
            Field::new("indicator", DataType::Utf8, false),
            Field::new("breakdown", DataType::Utf8, false),
            Field::new("group", DataType::Utf8, false),
            Field::new("numerator", DataType::UInt64, true),
            Field::new("denominator", DataType::UInt64, true),
            Field::new("rate", DataType::Float64, true),
            Field::new("median_earnings", DataType::Float64, true),
            Field::new("awaiting_wage_data", DataType::UInt64, true),
            Field::new("status", DataType::Utf8, false),
        ]));
        let shown = |c: &Cell| !c.suppressed;
        let cells = &self.cells;
        let str_col = |f: &dyn Fn(&Cell) -> &str| -> Arc<dyn Array> {
            Arc::new(StringArray::from_iter_values(cells.iter().map(f)))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                str_col(&|c| c.program.as_str()),
                str_col(&|c| c.indicator.as_str()),
                str_col(&|c| c.breakdown.as_str()),
                str_col(&|c| c.group.as_str()),
                Arc::new(
                    cells
                        .iter()
                        .map(|c| (shown(c) && !c.is_median()).then_some(c.numerator))
                        .collect::<UInt64Array>(),
                ),
                Arc::new(
                    cells
                        .iter()
                        .map(|c| shown(c).then_some(c.denominator))
                        .collect::<UInt64Array>(),
                ),
                Arc::new(
                    cells
                        .iter()
                        .map(|c| {
                            (shown(c) && !c.is_median() && c.denominator > 0)
                                .then(|| round4(c.numerator as f64 / c.denominator as f64))
                        })
                        .collect::<Float64Array>(),
                ),
                Arc::new(
                    cells
                        .iter()
                        .map(|c| if shown(c) { c.median } else { None })
                        .collect::<Float64Array>(),
                ),
                Arc::new(
                    cells
                        .iter()
                        .map(|c| shown(c).then_some(c.awaiting))
                        .collect::<UInt64Array>(),
                ),
                str_col(&|c| {
                    if c.suppressed {
                        "suppressed"
                    } else if c.awaiting > 0 {
                        "incomplete"
                    } else {
                        "final"
                    }
                }),
            ],
        )?;
        Ok((schema, batch))
    }

    /// Renders the report: a header line (as a `#` comment in CSV), then the cells. JSON
    /// is one object with the header, the protection applied and the rows.
    pub fn render(&self, format: super::OutputFormat) -> Result<Vec<u8>, ReportError> {
        let (schema, batch) = self.to_batch()?;
        let mut out = Vec::new();
        match format {
            super::OutputFormat::Json => {
                let doc = serde_json::json!({
                    "report": "performance",
                    "header": self.header(),
                    "program_year": self.program_year,
                    "run_id": self.run_id,
                    "suppression": match self.suppression {
                        Suppression::Threshold(t) => serde_json::json!({"threshold": t, "complementary": true}),
                        Suppression::None => serde_json::json!("none: internal use only, secure zone"),
                    },
                    "notes": NOTES,
                    "rows": super::output::json_rows(&[batch])?,
                });
                serde_json::to_writer_pretty(&mut out, &doc)
                    .map_err(|e| ReportError::Output(e.to_string()))?;
                out.push(b'\n');
            }
            super::OutputFormat::Csv => {
                out.extend_from_slice(format!("# {}\n", self.header()).as_bytes());
                for n in NOTES {
                    out.extend_from_slice(format!("# note: {n}\n").as_bytes());
                }
                super::output::render(&schema, &[batch], format, &mut out)?;
            }
            _ => {
                out.extend_from_slice(format!("{}\n", self.header()).as_bytes());
                super::output::render(&schema, &[batch], super::OutputFormat::Table, &mut out)?;
                for n in NOTES {
                    out.extend_from_slice(format!("note: {n}\n").as_bytes());
                }
            }
        }
        Ok(out)
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
