//! `xmatch export pirl`: the PIRL extract for federal reporting, with WIPS-style edit
//! checks.
//!
//! One row per participant period, one column per PIRL element, named by its element
//! number. Which elements, from which column, with which valid values and checks, is
//! `schemas/pirl.toml`, read against the participants schema so that a column's PII class
//! and valid values are stated once. Element 100 is the `person_key`, never an SSN; no
//! direct identifier can be mapped (the layout is refused).
//!
//! **Failures do not block the write** unless `strict`: a state submits to WIPS itself,
//! WIPS runs its own edits on upload, and a file with a handful of flagged rows is more
//! useful to the data team fixing them than no file. The failure report is written beside
//! the extract (same name, `-edit-checks.csv`) and summarized on stdout. With `strict`,
//! any failure writes nothing and the command fails (for a submission pipeline that must
//! not hand on a file WIPS would reject).
//!
//! The extract carries quasi-identifiers (sex, race, program dates, outcomes), so it goes
//! to the secure zone (`secure/exports/pirl/`, 0700 directories, 0600 files), is recorded
//! in lineage with its persons, and every export is written to the audit table with the
//! OS user who ran it.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type};
use serde::Deserialize;

use super::record;
use super::session::LakeSession;
use super::{ReportError, bind_program_year};
use crate::lake::{ColumnMeta, Zone};
use crate::schema::{Catalog, ColumnType, Deid, PiiClass, SchemaError};
use crate::workspace::Workspace;

pub const EXTRACT_SQL: &str = include_str!("sql/pirl_extract.sql");
const FILE: &str = "pirl.toml";
/// Offending person keys listed per element and check: enough to start fixing, short
/// enough to read.
pub const FIRST_KEYS: usize = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    element: Vec<RawElement>,
    #[serde(default)]
    order: Vec<RawOrder>,
    #[serde(default)]
    requires: Vec<RawRequires>,
    unique: RawUnique,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawElement {
    pirl: u32,
    name: String,
    column: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    valid: Option<Vec<String>>,
    #[serde(default)]
    max_len: Option<usize>,
    #[serde(default)]
    not_ssn: bool,
    #[serde(default)]
    unknown: Option<String>,
    #[serde(default)]
    pii: Option<PiiClass>,
    #[serde(default)]
    sensitive: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrder {
    first: u32,
    then: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequires {
    #[serde(rename = "if")]
    when: u32,
    #[serde(default)]
    values: Option<Vec<String>>,
    then: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnique {
    elements: Vec<u32>,
}

/// One element of the extract.
#[derive(Debug, Clone)]
pub struct Element {
    pub pirl: u32,
    pub name: String,
    /// The participants dataset column it is read from.
    pub column: String,
    pub required: bool,
    pub valid: Option<Vec<String>>,
    pub max_len: Option<usize>,
    pub not_ssn: bool,
    pub unknown: Option<String>,
    /// What lineage records of the column (`name` is the element number).
    pub meta: ColumnMeta,
}

#[derive(Debug, Clone)]
struct Requires {
    when: usize,
    values: Option<Vec<String>>,
    then: usize,
}

/// The parsed `schemas/pirl.toml`.
#[derive(Debug, Clone)]
pub struct PirlLayout {
    pub elements: Vec<Element>,
    order: Vec<(usize, usize)>,
    requires: Vec<Requires>,
    unique: Vec<usize>,
    /// The element that names the person in the failure report (the first unique one).
    person: usize,
    /// The exit date element: `unknown` applies only to periods that have exited.
    exit: Option<usize>,
}

fn invalid(problem: String) -> SchemaError {
    SchemaError::Invalid {
        file: FILE.into(),
        problem,
    }
}

impl PirlLayout {
    /// The layout compiled into the binary.
    pub fn builtin(catalog: &Catalog) -> Result<PirlLayout, SchemaError> {
        PirlLayout::parse(crate::schema::PIRL, catalog)
    }

    /// Parses and checks a layout against the participants schema.
    pub fn parse(text: &str, catalog: &Catalog) -> Result<PirlLayout, SchemaError> {
        let raw: RawLayout = toml::from_str(text).map_err(|e| SchemaError::Parse {
            file: FILE.into(),
            source: Box::new(e),
        })?;
        let participants = catalog.source("participants")?;
        let mut elements = Vec::with_capacity(raw.element.len());
        let mut seen = HashSet::new();
        for e in raw.element {
            let bad = |p: String| invalid(format!("element {}: {p}", e.pirl));
            if !seen.insert(e.pirl) {
                return Err(bad("listed twice".into()));
            }
            let (meta, valid) = match participants.column(&e.column) {
                Some(c) => {
                    if e.pii.is_some() || e.sensitive.is_some() || e.valid.is_some() {
                        return Err(bad(format!(
                            "column `{}` is in participants.toml, which alone states its pii, sensitive and valid values",
                            e.column
                        )));
                    }
                    if c.pii == PiiClass::Direct || c.deid != Deid::Keep {
                        return Err(bad(format!(
                            "column `{}` is not kept in the de-identified zone ({}), so it cannot be exported",
                            e.column,
                            if c.pii == PiiClass::Direct {
                                "a direct identifier"
                            } else {
                                "generalized"
                            }
                        )));
                    }
                    if c.pirl != Some(e.pirl) {
                        return Err(bad(format!(
                            "participants.toml gives column `{}` PIRL element {}",
                            e.column,
                            c.pirl.map_or("none".into(), |p| p.to_string())
                        )));
                    }
                    let valid = match c.ty {
                        ColumnType::Code => Some(c.allowed.clone()),
                        ColumnType::Flag => Some(vec!["0".into(), "1".into()]),
                        _ => None,
                    };
                    (ColumnMeta::from(c), valid)
                }
                None => {
                    let pii = e.pii.ok_or_else(|| {
                        bad(format!(
                            "column `{}` is derived (not in participants.toml): say its `pii` class",
                            e.column
                        ))
                    })?;
                    if pii == PiiClass::Direct {
                        return Err(bad("a direct identifier cannot be exported".into()));
                    }
                    if let Some(s) = &e.sensitive
                        && catalog.category(s).is_none()
                    {
                        return Err(bad(format!("unknown sensitive category `{s}`")));
                    }
                    (
                        ColumnMeta::new(e.column.clone(), pii, e.sensitive.as_deref()),
                        e.valid.clone(),
                    )
                }
            };
            if let (Some(u), Some(v)) = (&e.unknown, &valid)
                && !v.contains(u)
            {
                return Err(bad(format!("`unknown` value `{u}` is not a valid value")));
            }
            elements.push(Element {
                pirl: e.pirl,
                name: e.name,
                meta: ColumnMeta {
                    name: e.pirl.to_string(),
                    ..meta
                },
                column: e.column,
                required: e.required,
                valid,
                max_len: e.max_len,
                not_ssn: e.not_ssn,
                unknown: e.unknown,
            });
        }
        let index = |n: u32, what: &str| {
            elements
                .iter()
                .position(|e| e.pirl == n)
                .ok_or_else(|| invalid(format!("{what} names element {n}, which is not listed")))
        };
        let order = raw
            .order
            .iter()
            .map(|o| Ok((index(o.first, "[[order]]")?, index(o.then, "[[order]]")?)))
            .collect::<Result<Vec<_>, SchemaError>>()?;
        let requires = raw
            .requires
            .into_iter()
            .map(|r| {
                Ok(Requires {
                    when: index(r.when, "[[requires]]")?,
                    values: r.values,
                    then: index(r.then, "[[requires]]")?,
                })
            })
            .collect::<Result<Vec<_>, SchemaError>>()?;
        let unique = raw
            .unique
            .elements
            .iter()
            .map(|&n| index(n, "[unique]"))
            .collect::<Result<Vec<_>, _>>()?;
        let person = *unique
            .first()
            .ok_or_else(|| invalid("[unique] lists no element".into()))?;
        let exit = elements.iter().position(|e| e.column == "exit_date");
        Ok(PirlLayout {
            elements,
            order,
            requires,
            unique,
            person,
            exit,
        })
    }
}

/// Failures of one check on one element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditFailure {
    pub pirl: u32,
    pub name: String,
    /// `required`, `invalid_value`, `too_long`, `looks_like_ssn`, `before_<n>`,
    /// `required_with_<n>`, `duplicate`.
    pub check: String,
    pub rows: u64,
    pub first_person_keys: Vec<String>,
}

/// The extract in memory: element numbers, rows of formatted values, and what failed.
#[derive(Debug, Clone)]
pub struct PirlExtract {
    pub program_year: i32,
    pub run_id: i64,
    pub header: Vec<u32>,
    pub rows: Vec<Vec<Option<String>>>,
    pub failures: Vec<EditFailure>,
}

impl PirlExtract {
    pub fn failed_rows(&self) -> u64 {
        self.failures.iter().map(|f| f.rows).sum()
    }

    /// The extract as CSV, element numbers as the header.
    pub fn to_csv(&self) -> Result<Vec<u8>, ReportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| ReportError::Output(e.to_string());
        w.write_record(self.header.iter().map(|n| n.to_string()))
            .map_err(err)?;
        for r in &self.rows {
            w.write_record(r.iter().map(|v| v.as_deref().unwrap_or("")))
                .map_err(err)?;
        }
        w.into_inner()
            .map_err(|e| ReportError::Output(e.to_string()))
    }

    /// The failure report as CSV: element, name, check, rows, first person keys.
    pub fn failures_csv(&self) -> Result<Vec<u8>, ReportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| ReportError::Output(e.to_string());
        w.write_record(["element", "name", "check", "rows", "first_person_keys"])
            .map_err(err)?;
        for f in &self.failures {
            w.write_record([
                f.pirl.to_string(),
                f.name.clone(),
                f.check.clone(),
                f.rows.to_string(),
                f.first_person_keys.join(";"),
            ])
            .map_err(err)?;
        }
        w.into_inner()
            .map_err(|e| ReportError::Output(e.to_string()))
    }

    /// A readable summary of the edit checks, for the terminal.
    pub fn failures_table(&self) -> String {
        if self.failures.is_empty() {
            return "edit checks: all passed\n".into();
        }
        let mut out = format!(
            "edit checks: {} failure(s) in {} element/check pair(s)\n",
            self.failed_rows(),
            self.failures.len()
        );
        out.push_str(&format!(
            "  {:>7}  {:<22} {:>7}  first person keys\n",
            "element", "check", "rows"
        ));
        for f in &self.failures {
            out.push_str(&format!(
                "  {:>7}  {:<22} {:>7}  {}\n",
                f.pirl,
                f.check,
                f.rows,
                f.first_person_keys.join(" ")
            ));
        }
        out
    }
}

/// Each value of a column as PIRL text: dates YYYYMMDD, booleans 1/0, numbers and codes
/// as they are; null or empty is `None`.
fn format_column(array: &dyn Array) -> Result<Vec<Option<String>>, ReportError> {
    let n = array.len();
    Ok(match array.data_type() {
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            (0..n)
                .map(|i| {
                    (!a.is_null(i)).then(|| {
                        crate::deid::from_date32(a.value(i))
                            .format("%Y%m%d")
                            .to_string()
                    })
                })
                .collect()
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..n)
                .map(|i| (!a.is_null(i)).then(|| if a.value(i) { "1" } else { "0" }.into()))
                .collect()
        }
        _ => {
            let s = arrow::compute::cast(array, &DataType::Utf8)?;
            let s = s.as_string::<i32>();
            (0..n)
                .map(|i| {
                    (!s.is_null(i) && !s.value(i).trim().is_empty())
                        .then(|| s.value(i).trim().to_string())
                })
                .collect()
        }
    })
}

fn looks_like_ssn(v: &str) -> bool {
    let digits: String = v.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Counts failures per (element, check) in element order, keeping the first few keys.
#[derive(Default)]
struct Tally {
    by: BTreeMap<(usize, String), (u64, Vec<String>)>,
}

impl Tally {
    fn add(&mut self, element: usize, check: String, key: &str) {
        let e = self.by.entry((element, check)).or_default();
        e.0 += 1;
        if e.1.len() < FIRST_KEYS && !e.1.iter().any(|k| k == key) {
            e.1.push(key.to_string());
        }
    }

    fn finish(self, layout: &PirlLayout) -> Vec<EditFailure> {
        self.by
            .into_iter()
            .map(|((i, check), (rows, keys))| EditFailure {
                pirl: layout.elements[i].pirl,
                name: layout.elements[i].name.clone(),
                check,
                rows,
                first_person_keys: keys,
            })
            .collect()
    }
}

/// Formats the rows and runs the edit checks.
pub fn check(
    layout: &PirlLayout,
    batches: &[RecordBatch],
    program_year: i32,
    run_id: i64,
) -> Result<PirlExtract, ReportError> {
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    for b in batches {
        let mut cols = Vec::with_capacity(layout.elements.len());
        for e in &layout.elements {
            let a = b.column_by_name(&e.column).ok_or_else(|| {
                ReportError::Output(format!(
                    "schemas/pirl.toml: element {}: the participants dataset has no column `{}`",
                    e.pirl, e.column
                ))
            })?;
            cols.push(format_column(a.as_ref())?);
        }
        for r in 0..b.num_rows() {
            rows.push(cols.iter().map(|c| c[r].clone()).collect());
        }
    }
    let mut tally = Tally::default();
    let mut seen: HashSet<Vec<Option<String>>> = HashSet::new();
    for row in &mut rows {
        let exited = layout.exit.is_none_or(|x| row[x].is_some());
        for (i, e) in layout.elements.iter().enumerate() {
            if row[i].is_none() && exited {
                row[i] = e.unknown.clone();
            }
        }
        let key = row[layout.person].clone().unwrap_or_default();
        for (i, e) in layout.elements.iter().enumerate() {
            let Some(v) = &row[i] else {
                if e.required {
                    tally.add(i, "required".into(), &key);
                }
                continue;
            };
            if e.valid.as_ref().is_some_and(|valid| !valid.contains(v)) {
                tally.add(i, "invalid_value".into(), &key);
            }
            if e.max_len.is_some_and(|m| v.chars().count() > m) {
                tally.add(i, "too_long".into(), &key);
            }
            if e.not_ssn && looks_like_ssn(v) {
                tally.add(i, "looks_like_ssn".into(), &key);
            }
        }
        for &(first, then) in &layout.order {
            // Dates are YYYYMMDD, so text order is date order.
            if let (Some(a), Some(b)) = (&row[first], &row[then])
                && b < a
            {
                let check = format!("before_{}", layout.elements[first].pirl);
                tally.add(then, check, &key);
            }
        }
        for r in &layout.requires {
            let fires = row[r.when]
                .as_ref()
                .is_some_and(|v| r.values.as_ref().is_none_or(|vals| vals.contains(v)));
            if fires && row[r.then].is_none() {
                let check = format!("required_with_{}", layout.elements[r.when].pirl);
                tally.add(r.then, check, &key);
            }
        }
        let unique: Vec<Option<String>> = layout.unique.iter().map(|&i| row[i].clone()).collect();
        if !seen.insert(unique) {
            tally.add(layout.unique[0], "duplicate".into(), &key);
        }
    }
    Ok(PirlExtract {
        program_year,
        run_id,
        header: layout.elements.iter().map(|e| e.pirl).collect(),
        rows,
        failures: tally.finish(layout),
    })
}

/// Reads the periods of `program_year` from the snapshot and builds the checked extract.
pub async fn extract(
    session: &LakeSession,
    layout: &PirlLayout,
    program_year: i32,
) -> Result<PirlExtract, ReportError> {
    super::require_program_year(session, program_year).await?;
    let (_, batches) = session
        .query(&bind_program_year(EXTRACT_SQL, program_year))
        .await?;
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Err(ReportError::NoData(program_year));
    }
    check(layout, &batches, program_year, session.run_id())
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub program_year: i32,
    /// Write nothing when any edit check fails.
    pub strict: bool,
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    pub extract: PirlExtract,
    /// The extract and its failure report; `None` when `strict` refused to write.
    pub written: Option<(PathBuf, PathBuf)>,
}

/// `xmatch export pirl`: builds, checks, writes to the secure zone, records lineage and
/// the audit entry.
pub async fn export(ws: &Workspace, opts: &ExportOptions) -> Result<ExportOutcome, ReportError> {
    let catalog = Catalog::builtin()?;
    let layout = PirlLayout::builtin(&catalog)?;
    let session = LakeSession::open(&ws.lake_dir()).await?;
    let extract = extract(&session, &layout, opts.program_year).await?;
    let store = record::open_store(ws).await?;
    let audit = |written: Option<&PathBuf>| crate::store::AuditEntry {
        actor: super::actor(),
        action: "export.pirl".into(),
        reason: Some("PIRL extract for federal reporting (quasi-identifiers), secure zone".into()),
        detail: serde_json::json!({
            "program_year": opts.program_year,
            "run_id": extract.run_id,
            "rows": extract.rows.len(),
            "edit_check_failures": extract.failed_rows(),
            "strict": opts.strict,
            "written": written.map(|p| p.display().to_string()),
        }),
    };
    if opts.strict && !extract.failures.is_empty() {
        // A refused export is still a use of the data worth a line in the audit table.
        store.record_audit(&audit(None)).await?;
        store.close().await;
        return Ok(ExportOutcome {
            extract,
            written: None,
        });
    }

    let stem = format!(
        "pirl-py{}-run{}-{}",
        opts.program_year,
        extract.run_id,
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let data = extract.to_csv()?;
    let report = extract.failures_csv()?;
    let keys: Vec<&str> = extract
        .rows
        .iter()
        .filter_map(|r| r[layout.person].as_deref())
        .collect();
    let persons = record::person_set(&store, &keys).await?;
    let listed: Vec<&str> = extract
        .failures
        .iter()
        .flat_map(|f| f.first_person_keys.iter().map(String::as_str))
        .filter(|k| !k.is_empty())
        .collect();
    let listed = record::person_set(&store, &listed).await?;
    let zone = ws
        .secure_zone()
        .map_err(|e| ReportError::Output(super::one_line(&e.to_string())))?;
    let secure = zone.root().to_path_buf();
    let relative_dir = PathBuf::from("exports").join("pirl");
    let dir = secure.join(&relative_dir);
    // Each level 0700, not only the leaf.
    for d in [secure.clone(), secure.join("exports"), dir.clone()] {
        crate::workspace::create_private_dir(&d)
            .map_err(|e| ReportError::Output(super::one_line(&e.to_string())))?;
    }
    let data_name = format!("{stem}.csv");
    let report_name = format!("{stem}-edit-checks.csv");
    let person_meta = ColumnMeta {
        name: "first_person_keys".into(),
        ..layout.elements[layout.person].meta.clone()
    };
    let (data_path, report_path) = (dir.join(&data_name), dir.join(&report_name));
    // Sealed before lineage is recorded: lineage keeps the hash of the bytes on disk.
    let data = zone.seal_bytes(&data_path, extract.run_id, &data)?;
    let report = zone.seal_bytes(&report_path, extract.run_id, &report)?;
    let files = vec![
        record::written_file(
            Zone::Secure,
            "exports/pirl",
            relative_dir.join(&data_name),
            &data,
            extract.rows.len() as u64,
            layout.elements.iter().map(|e| e.meta.clone()).collect(),
            persons,
        ),
        record::written_file(
            Zone::Secure,
            "exports/pirl_edit_checks",
            relative_dir.join(&report_name),
            &report,
            extract.failures.len() as u64,
            ["element", "name", "check", "rows"]
                .into_iter()
                .map(ColumnMeta::plain)
                .chain([person_meta])
                .collect(),
            listed,
        ),
    ];
    // Lineage first: a crash in between leaves lineage naming a file that is not there
    // (a breach answer errs on the safe side), never a file of persons lineage misses.
    record::record_lineage(&store, extract.run_id, &files).await?;
    crate::secure::write_file_atomic(&data_path, &data)?;
    crate::secure::write_file_atomic(&report_path, &report)?;
    store.record_audit(&audit(Some(&data_path))).await?;
    store.close().await;
    Ok(ExportOutcome {
        extract,
        written: Some((data_path, report_path)),
    })
}

/// `xmatch export pirl` as the CLI runs it: the summary on stdout; with `--strict` and a
/// failure, the failure table on stdout and an error.
pub async fn run_command(ws: &Workspace, opts: &ExportOptions) -> Result<(), ReportError> {
    let out = export(ws, opts).await?;
    let e = &out.extract;
    let mut text = format!(
        "PIRL extract, program year {} (run {}): {} rows, {} elements\n",
        e.program_year,
        e.run_id,
        e.rows.len(),
        e.header.len()
    );
    text.push_str(&e.failures_table());
    match &out.written {
        Some((data, report)) => {
            text.push_str(&format!(
                "written to the secure zone: {}\nedit-check report: {}\n",
                data.display(),
                report.display()
            ));
            print!("{text}");
            Ok(())
        }
        None => {
            print!("{text}");
            Err(ReportError::EditChecks {
                rows: e.failed_rows(),
                checks: e.failures.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Date32Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    const SMALL: &str = r#"
[[element]]
pirl = 100
name = "Unique Individual Identifier"
column = "person_key"
required = true
max_len = 12
not_ssn = true
pii = "quasi"

[[element]]
pirl = 201
name = "Sex"
column = "sex"
required = true

[[element]]
pirl = 900
name = "Date of Program Entry"
column = "entry_date"
required = true

[[element]]
pirl = 901
name = "Date of Program Exit"
column = "exit_date"

[[element]]
pirl = 1602
name = "Employed in 2nd Quarter After Exit Quarter"
column = "employed_q2"
valid = ["0", "1", "9"]
unknown = "9"
pii = "none"
sensitive = "financial"

[[element]]
pirl = 1800
name = "Type of Recognized Credential"
column = "credential_type"

[[element]]
pirl = 1801
name = "Date Attained Recognized Credential"
column = "credential_date"

[[order]]
first = 900
then = 901

[[requires]]
if = 1800
values = ["1", "2", "3", "4", "5", "6", "7"]
then = 1801

[unique]
elements = [100, 900]
"#;

    fn catalog() -> Catalog {
        Catalog::builtin().unwrap()
    }

    fn date(s: &str) -> Option<i32> {
        Some(crate::deid::date32(s.parse().unwrap()))
    }

    #[test]
    fn builtin_layout_maps_100_to_the_person_key_and_no_direct_identifier() {
        let layout = PirlLayout::builtin(&catalog()).unwrap();
        assert_eq!(layout.elements[0].pirl, 100);
        assert_eq!(layout.elements[0].column, "person_key");
        assert!(
            layout
                .elements
                .iter()
                .all(|e| e.meta.pii != PiiClass::Direct)
        );
        assert!(
            !layout
                .elements
                .iter()
                .any(|e| e.pirl == 2700 || e.pirl == 200)
        );
        // Valid values come from the participants schema, not from pirl.toml.
        let sex = layout.elements.iter().find(|e| e.pirl == 201).unwrap();
        assert_eq!(
            sex.valid.as_deref(),
            Some(&["1".to_string(), "2".into(), "9".into()][..])
        );
        assert_eq!(sex.meta.pii, PiiClass::Quasi);
        let adult = layout.elements.iter().find(|e| e.pirl == 903).unwrap();
        assert_eq!(
            adult.valid.as_deref(),
            Some(&["0".to_string(), "1".into()][..])
        );
    }

    #[test]
    fn layouts_that_would_leak_or_disagree_with_the_schema_are_refused() {
        let c = catalog();
        let cases = [
            (
                "[[element]]\npirl = 2700\nname = \"SSN\"\ncolumn = \"ssn\"\n[unique]\nelements = [2700]\n",
                "direct identifier",
            ),
            (
                "[[element]]\npirl = 202\nname = \"Sex\"\ncolumn = \"sex\"\n[unique]\nelements = [202]\n",
                "PIRL element 201",
            ),
            (
                "[[element]]\npirl = 201\nname = \"Sex\"\ncolumn = \"sex\"\nvalid = [\"1\"]\n[unique]\nelements = [201]\n",
                "alone states",
            ),
            (
                "[[element]]\npirl = 1602\nname = \"E\"\ncolumn = \"employed_q2\"\n[unique]\nelements = [1602]\n",
                "say its `pii`",
            ),
            (
                "[[element]]\npirl = 201\nname = \"Sex\"\ncolumn = \"sex\"\n[unique]\nelements = [900]\n",
                "element 900, which is not listed",
            ),
        ];
        for (text, want) in cases {
            let err = PirlLayout::parse(text, &c).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.starts_with("schemas/pirl.toml"),
                "{err}"
            );
        }
    }

    #[test]
    fn edit_checks_count_failures_by_element_and_check() {
        let layout = PirlLayout::parse(SMALL, &catalog()).unwrap();
        let s = |v: &[Option<&str>]| -> ArrayRef {
            Arc::new(v.iter().copied().collect::<StringArray>())
        };
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("person_key", DataType::Utf8, true),
                Field::new("sex", DataType::Utf8, true),
                Field::new("entry_date", DataType::Date32, true),
                Field::new("exit_date", DataType::Date32, true),
                Field::new("employed_q2", DataType::Boolean, true),
                Field::new("credential_type", DataType::Utf8, true),
                Field::new("credential_date", DataType::Date32, true),
            ])),
            vec![
                s(&[
                    Some("KEYA"),
                    Some("KEYB"),
                    Some("KEYC"),
                    Some("KEYA"),
                    Some("123-45-6789"),
                ]),
                s(&[Some("1"), None, Some("7"), Some("1"), Some("2")]),
                Arc::new(Date32Array::from(vec![
                    date("2024-01-10"),
                    date("2024-02-01"),
                    date("2024-03-01"),
                    date("2024-01-10"),
                    date("2024-04-01"),
                ])),
                Arc::new(Date32Array::from(vec![
                    date("2024-06-30"),
                    None,
                    date("2024-02-01"),
                    None,
                    None,
                ])),
                Arc::new(BooleanArray::from(vec![Some(true), None, None, None, None])),
                s(&[None, None, Some("3"), None, None]),
                Arc::new(Date32Array::from(vec![None::<i32>; 5])),
            ],
        )
        .unwrap();
        let x = check(&layout, &[batch], 2023, 1).unwrap();
        assert_eq!(x.header, [100, 201, 900, 901, 1602, 1800, 1801]);
        let row = |i: usize| -> Vec<&str> {
            x.rows[i]
                .iter()
                .map(|v| v.as_deref().unwrap_or(""))
                .collect()
        };
        assert_eq!(row(0), ["KEYA", "1", "20240110", "20240630", "1", "", ""]);
        // Not exited: an unknown outcome stays blank; exited: PIRL's "not yet available".
        assert_eq!(row(1)[4], "");
        assert_eq!(row(2)[4], "9");
        let got: Vec<(u32, &str, u64, Vec<&str>)> = x
            .failures
            .iter()
            .map(|f| {
                (
                    f.pirl,
                    f.check.as_str(),
                    f.rows,
                    f.first_person_keys.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (100, "duplicate", 1, vec!["KEYA"]),
                (100, "looks_like_ssn", 1, vec!["123-45-6789"]),
                (201, "invalid_value", 1, vec!["KEYC"]),
                (201, "required", 1, vec!["KEYB"]),
                (901, "before_900", 1, vec!["KEYC"]),
                (1801, "required_with_1800", 1, vec!["KEYC"]),
            ]
        );
        assert_eq!(x.failed_rows(), 6);
        let csv = String::from_utf8(x.to_csv().unwrap()).unwrap();
        assert!(
            csv.starts_with("100,201,900,901,1602,1800,1801\nKEYA,1,20240110,20240630,1,,\n"),
            "{csv}"
        );
        let report = String::from_utf8(x.failures_csv().unwrap()).unwrap();
        assert!(report.contains("\n201,Sex,required,1,KEYB\n"), "{report}");
    }
}
