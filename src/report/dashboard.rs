//! `xmatch report html --program-year PY`: the suppressed performance report as one
//! self-contained HTML page for people who would rather look at a chart than a CSV —
//! indicators by program, by exit quarter and by breakdown as inline SVG bar charts, the
//! tables behind them, co-enrolment counts and data quality.
//!
//! Everything on the page comes from the same cells as `report performance` and `report
//! publish`, after the same small-cell suppression, so a number that may not be
//! published never reaches the page: a suppressed cell is drawn as a gap labelled
//! "suppressed", and counts of people waiting for wage data (which can be tiny) are not
//! shown at all, only that a cell is incomplete. Written to the workspace's `reports/`
//! (publishable, like the quarterly files) and recorded in lineage with no persons.

use std::fmt::Write;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::html::{self, Bar, Td};
use super::performance::{self, BREAKDOWNS, INDICATORS, PROGRAMS, PerformanceReport, Suppression};
use super::session::LakeSession;
use super::suppress::{Cell, TOTAL};
use super::{ReportError, record};
use crate::lake::{ColumnMeta, PersonSet, Zone};
use crate::workspace::Workspace;

/// The lineage dataset of the HTML report.
pub const DATASET: &str = "reports/html";

/// Indicators whose breakdowns get charts (one chart per breakdown and program).
const CHARTED_BREAKDOWNS: &[&str] = &["Employment rate Q2", "Employment rate Q4"];

/// What was written.
#[derive(Debug, Clone)]
pub struct HtmlReport {
    pub path: PathBuf,
    pub program_year: i32,
    pub run_id: i64,
    pub threshold: u64,
    pub cells: usize,
    pub suppressed: usize,
}

impl std::fmt::Display for HtmlReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "HTML performance report, program year {} (run {}): {} cells, {} suppressed (under {} people)",
            self.program_year, self.run_id, self.cells, self.suppressed, self.threshold
        )?;
        writeln!(f, "written to {}", self.path.display())
    }
}

fn pct(c: &Cell) -> String {
    format!("{:.1}%", c.numerator as f64 * 100.0 / c.denominator as f64)
}

fn dollars(x: f64) -> String {
    let cents = (x * 100.0).round() as i64;
    let whole = cents / 100;
    let mut digits = whole.to_string();
    let mut grouped = String::new();
    while digits.len() > 3 {
        let rest = digits.split_off(digits.len() - 3);
        grouped = format!(",{rest}{grouped}");
    }
    format!("${digits}{grouped}.{:02}", cents % 100)
}

/// A count cell: the class lets a reader (and the test) find every count on the page.
fn count(n: u64) -> Td {
    Td::num(n.to_string()).class("count")
}

fn bar_for(label: &str, c: Option<&Cell>) -> Bar {
    match c {
        None => Bar {
            label: label.into(),
            value: None,
            text: "no cohort".into(),
        },
        Some(c) if c.suppressed => Bar {
            label: label.into(),
            value: None,
            text: "suppressed".into(),
        },
        Some(c) if c.is_median() => Bar {
            label: label.into(),
            value: c.median,
            text: format!(
                "{} (n = {})",
                c.median.map(dollars).unwrap_or_default(),
                c.denominator
            ),
        },
        Some(c) if c.denominator == 0 => Bar {
            label: label.into(),
            value: None,
            text: "no known outcome yet".into(),
        },
        Some(c) => Bar {
            label: label.into(),
            value: Some(c.numerator as f64 / c.denominator as f64),
            text: format!(
                "{} ({} / {}){}",
                pct(c),
                c.numerator,
                c.denominator,
                if c.awaiting > 0 { ", incomplete" } else { "" }
            ),
        },
    }
}

fn find<'a>(
    cells: &'a [Cell],
    program: &str,
    indicator: &str,
    breakdown: &str,
    group: &str,
) -> Option<&'a Cell> {
    cells.iter().find(|c| {
        c.program == program
            && c.indicator == indicator
            && c.breakdown == breakdown
            && c.group == group
    })
}

fn status(c: &Cell) -> &'static str {
    if c.suppressed {
        "suppressed"
    } else if c.awaiting > 0 {
        "incomplete (wage data not loaded yet)"
    } else {
        "final"
    }
}

/// Rows of the cells of one breakdown, published numbers only.
fn cell_rows(cells: &[&Cell]) -> Vec<Vec<Td>> {
    cells
        .iter()
        .map(|c| {
            let mut row = vec![
                Td::text(c.program.clone()),
                Td::text(c.indicator.clone()),
                Td::text(c.group.clone()),
            ];
            if c.suppressed {
                row.extend([
                    Td::text("suppressed"),
                    Td::text("suppressed"),
                    Td::text("suppressed"),
                ]);
            } else if c.is_median() {
                row.extend([
                    Td::text(c.median.map(dollars).unwrap_or_default()),
                    count(c.denominator),
                    Td::text("median earnings"),
                ]);
            } else {
                row.extend([
                    count(c.numerator),
                    count(c.denominator),
                    Td::num(if c.denominator > 0 {
                        pct(c)
                    } else {
                        String::new()
                    }),
                ]);
            }
            row.push(Td::text(status(c)));
            row
        })
        .collect()
}

const CELL_HEADERS: &[&str] = &[
    "Program",
    "Indicator",
    "Group",
    "Numerator (or median)",
    "Denominator",
    "Rate",
    "Status",
];

/// Renders the page from the suppressed report and the suppressed count tables (rows as
/// `report publish` writes them: a `status` and nulls where suppressed).
pub fn render(
    perf: &PerformanceReport,
    co_rows: &[Map<String, Value>],
    dq_rows: &[Map<String, Value>],
    threshold: u64,
    generated: chrono::DateTime<chrono::Utc>,
) -> String {
    let cells = &perf.cells;
    let py = perf.program_year;
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>WIOA performance, program year {py} ({py}-07-01 to {}-06-30)</h1>",
        py + 1
    );
    b.push_str(&html::facts(&[
        ("Data", format!("published snapshot of run {}", perf.run_id)),
        (
            "Protection",
            format!(
                "cells under {threshold} people suppressed, with complementary suppression; counts of people awaiting wage data are not shown"
            ),
        ),
        (
            "Generated",
            generated.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
    ]));
    b.push_str(
        "<p class=\"note\">Cohorts (TEGL 10-16): employment Q2 and median earnings, exits 1 July \
         of the year before to 30 June; employment Q4, credential attainment and retention, \
         exits in the calendar year before; measurable skill gains, served, exited and \
         co-enrolled, participants during the program year. A bar marked suppressed hides a \
         small cell; incomplete means some of the cohort's wage quarters are not loaded \
         yet.</p>\n<ul class=\"note\">\n",
    );
    for n in performance::NOTES {
        let _ = writeln!(b, "<li>{}</li>", html::escape(n));
    }
    b.push_str("</ul>\n");

    // Indicators by program.
    b.push_str("<h2>Indicators by program</h2>\n");
    for ind in INDICATORS {
        let bars: Vec<Bar> = PROGRAMS
            .iter()
            .map(|p| bar_for(p, find(cells, p, ind, TOTAL, TOTAL)))
            .collect();
        let max = if *ind == "Median earnings Q2" {
            bars.iter()
                .filter_map(|b| b.value)
                .fold(0.0_f64, f64::max)
                .max(1.0)
        } else {
            1.0
        };
        let _ = writeln!(b, "<h3>{}</h3>", html::escape(ind));
        b.push_str(&html::bar_chart(
            &format!("{ind} by program, PY{py}"),
            &bars,
            max,
        ));
    }
    let totals: Vec<&Cell> = cells.iter().filter(|c| c.breakdown == TOTAL).collect();
    b.push_str("<h3>The totals</h3>\n");
    b.push_str(&html::table(
        CELL_HEADERS,
        &cell_rows(&totals),
        "No indicator has a cohort in this program year.",
    ));

    // By exit quarter.
    b.push_str("<h2>By exit quarter</h2>\n");
    let mut any_quarter = false;
    for p in PROGRAMS {
        for ind in INDICATORS {
            let mut qs: Vec<&Cell> = cells
                .iter()
                .filter(|c| c.program == *p && c.indicator == *ind && c.breakdown == "Exit quarter")
                .collect();
            if qs.is_empty() || ind.starts_with("Median") {
                continue;
            }
            any_quarter = true;
            qs.sort_by(|a, b| a.group.cmp(&b.group));
            let bars: Vec<Bar> = qs.iter().map(|c| bar_for(&c.group, Some(c))).collect();
            let _ = writeln!(b, "<h3>{}: {}</h3>", html::escape(p), html::escape(ind));
            b.push_str(&html::bar_chart(
                &format!("{p}, {ind} by exit quarter, PY{py}"),
                &bars,
                1.0,
            ));
        }
    }
    if !any_quarter {
        b.push_str("<p class=\"muted\">No exit cohort in this program year.</p>\n");
    }

    // Breakdowns.
    b.push_str("<h2>Breakdowns</h2>\n");
    for p in PROGRAMS {
        for ind in CHARTED_BREAKDOWNS {
            if find(cells, p, ind, TOTAL, TOTAL).is_none() {
                continue;
            }
            for bd in BREAKDOWNS
                .iter()
                .filter(|b| **b != TOTAL && **b != "Exit quarter")
            {
                let groups: Vec<&Cell> = cells
                    .iter()
                    .filter(|c| c.program == *p && c.indicator == *ind && c.breakdown == *bd)
                    .collect();
                if groups.is_empty() {
                    continue;
                }
                let bars: Vec<Bar> = groups.iter().map(|c| bar_for(&c.group, Some(c))).collect();
                let _ = writeln!(
                    b,
                    "<h3>{}: {} by {}</h3>",
                    html::escape(p),
                    html::escape(ind),
                    html::escape(&bd.to_lowercase())
                );
                b.push_str(&html::bar_chart(
                    &format!("{p}, {ind} by {}, PY{py}", bd.to_lowercase()),
                    &bars,
                    1.0,
                ));
            }
        }
    }
    let rest: Vec<&Cell> = cells.iter().filter(|c| c.breakdown != TOTAL).collect();
    b.push_str("<h3>Every breakdown cell</h3>\n");
    b.push_str(&html::table(
        CELL_HEADERS,
        &cell_rows(&rest),
        "No breakdown cells.",
    ));

    // Co-enrolment.
    b.push_str("<h2>Co-enrolment (Missouri P13)</h2>\n");
    b.push_str(&format!(
        "<p class=\"note\">Findings per rule and local area, periods entered in program year \
         {py}; rows under {threshold} findings or persons are suppressed. The person-level \
         findings are for case managers (<code>xmatch report coenrollment</code>) and are \
         not on this page.</p>\n"
    ));
    let rows: Vec<Vec<Td>> = co_rows
        .iter()
        .map(|r| {
            let n = |k: &str| match r.get(k).and_then(Value::as_u64) {
                Some(v) => count(v),
                None => Td::text("suppressed"),
            };
            vec![
                Td::text(str_of(r, "rule")),
                Td::text(str_of(r, "local_area")),
                n("findings"),
                n("persons"),
                Td::text(str_of(r, "status")),
            ]
        })
        .collect();
    let published: Vec<Bar> = co_rows
        .iter()
        .filter(|r| r.get("findings").and_then(Value::as_u64).is_some())
        .map(|r| {
            let f = r.get("findings").and_then(Value::as_u64).unwrap_or(0);
            Bar {
                label: format!("{} ({})", str_of(r, "rule"), str_of(r, "local_area")),
                value: Some(f as f64),
                text: format!("{f} findings"),
            }
        })
        .collect();
    if !published.is_empty() {
        let max = published
            .iter()
            .filter_map(|b| b.value)
            .fold(1.0_f64, f64::max);
        b.push_str(&html::bar_chart(
            &format!("Co-enrolment findings per rule and local area, PY{py}"),
            &published,
            max,
        ));
    }
    b.push_str(&html::table(
        &["Rule", "Local area", "Findings", "Persons", "Status"],
        &rows,
        "No co-enrolment findings for periods entered in this program year.",
    ));

    // Data quality.
    b.push_str("<h2>Data quality</h2>\n");
    b.push_str(&format!(
        "<p class=\"note\">Rejected rows, identity gaps, insufficient cross-match evidence, \
         self-reports contradicted by evidence and late data entry in the published \
         snapshot; rows under {threshold} are suppressed.</p>\n"
    ));
    let rows: Vec<Vec<Td>> = dq_rows
        .iter()
        .map(|r| {
            let n = |k: &str| match r.get(k).and_then(Value::as_u64) {
                Some(v) => count(v),
                None if r.get("status").and_then(Value::as_str) == Some("suppressed") => {
                    Td::text("suppressed")
                }
                None => Td::text(""),
            };
            let share = r
                .get("share")
                .and_then(Value::as_f64)
                .map(|s| format!("{:.1}%", s * 100.0))
                .unwrap_or_default();
            vec![
                Td::text(str_of(r, "section")),
                Td::text(str_of(r, "item")),
                n("count"),
                n("of_total"),
                Td::num(share),
                Td::text(str_of(r, "status")),
            ]
        })
        .collect();
    b.push_str(&html::table(
        &["Section", "Item", "Count", "Of", "Share", "Status"],
        &rows,
        "No data-quality rows.",
    ));
    html::page(
        &format!("WIOA performance, program year {py}"),
        "code{font-size:.9em}",
        &b,
    )
}

fn str_of(r: &Map<String, Value>, k: &str) -> String {
    match r.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// `xmatch report html`: computes the suppressed report, co-enrolment counts and data
/// quality of `py`, renders the page and writes it to `reports/`.
pub async fn write_html_report(ws: &Workspace, py: i32) -> Result<HtmlReport, ReportError> {
    let session = LakeSession::open(&ws.lake_dir()).await?;
    let threshold = u64::from(ws.config().reporting.small_cell_threshold);
    let perf = performance::performance(&session, py, Suppression::Threshold(threshold)).await?;
    let tables = super::publish::suppressed_tables(&session, py, threshold).await?;
    let page = render(
        &perf,
        &tables.co_rows,
        &tables.dq_rows,
        threshold,
        chrono::Utc::now(),
    );

    let name = format!("performance-py{py}-run{}.html", session.run_id());
    let dir = ws.reports_dir();
    std::fs::create_dir_all(&dir).map_err(|source| ReportError::Io {
        path: dir.clone(),
        source,
    })?;
    let file = record::written_file(
        Zone::Deid,
        DATASET,
        PathBuf::from("reports").join(&name),
        page.as_bytes(),
        perf.cells.len() as u64,
        [
            "program",
            "indicator",
            "breakdown",
            "group",
            "numerator",
            "denominator",
            "rate",
            "median_earnings",
            "status",
        ]
        .into_iter()
        .map(ColumnMeta::plain)
        .collect(),
        // Counts of people, no person keys.
        PersonSet::new(),
    );
    let store = record::open_store(ws).await?;
    let recorded =
        record::record_lineage(&store, session.run_id(), std::slice::from_ref(&file)).await;
    store.close().await;
    recorded?;
    let path = dir.join(&name);
    record::write_atomic(&path, page.as_bytes(), false)?;
    Ok(HtmlReport {
        path,
        program_year: py,
        run_id: session.run_id(),
        threshold,
        cells: perf.cells.len(),
        suppressed: perf.cells.iter().filter(|c| c.suppressed).count(),
    })
}
