//! The files a run writes, in both zones. Each writer states its columns once, with what
//! lineage records of them (PII class, sensitive category), through [`Table`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Builder, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{Field, Schema};
use chrono::NaiveDate;

use super::run::RunError;
use crate::deid::{date32, program_year};
use crate::identity::registry::PersonId;
use crate::identity::ssn::Last4;
use crate::ingest::Reject;
use crate::lake::{ColumnMeta, DatasetMeta, Snapshot};
use crate::link::evidence::{EvidenceFacts, Statuses, Verdict};
use crate::link::wages::{Outcomes, Quarter, WageRow};
use crate::schema::{ColumnType, PiiClass, SourceSchema};

/// One output to write; [`run_jobs`] runs them.
pub(super) type Job<'a> = Box<dyn FnOnce() -> Result<(), RunError> + Send + 'a>;

/// Runs output jobs on all cores, taking them in the order given (put the largest first).
/// After a failure no new job starts, and the first error is returned.
pub(super) fn run_jobs(jobs: Vec<Job<'_>>) -> Result<(), RunError> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(jobs.len())
        .max(1);
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(jobs));
    let failed = std::sync::Mutex::new(None::<RunError>);
    let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    while let Some(job) = next() {
                        if let Err(e) = job() {
                            let mut first = failed.lock().unwrap_or_else(|e| e.into_inner());
                            first.get_or_insert(e);
                            queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            if w.join().is_err() {
                failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(RunError::Join("an output writer panicked".into()));
            }
        }
    });
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A participant period as the link stage and the outputs need it.
pub(super) struct Period {
    pub person: PersonId,
    pub entry: NaiveDate,
    pub exit: Option<NaiveDate>,
    pub reported: Statuses,
}

/// Evidence rows, column by column.
#[derive(Default)]
pub(super) struct EvidenceRows {
    pub person: Vec<PersonId>,
    pub period: Vec<usize>,
    pub source: Vec<Arc<str>>,
    pub facts: Vec<EvidenceFacts>,
    pub pass: Vec<&'static str>,
    /// The match weight of a probabilistic link (`None` for the exact passes).
    pub score: Vec<Option<f64>>,
    pub verdict: Vec<Verdict>,
}

/// Which agency record was linked to whom, by which pass: the secure-zone trail an auditor
/// follows from an evidence row back to the agency's own record.
#[derive(Default)]
pub(super) struct MatchRows {
    pub record_id: Vec<Option<String>>,
    pub row: Vec<u64>,
    pub person: Vec<PersonId>,
    pub pass: Vec<&'static str>,
    /// The match weight of a probabilistic link (`None` for the exact passes).
    pub score: Vec<Option<f64>>,
}

/// The name of the internal person-id column the lake turns into a file's person set and
/// drops before writing.
const PERSON_ID: &str = "person_id";

/// Columns of one output with their lineage metadata.
pub(super) struct Table {
    what: &'static str,
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
    meta: Vec<ColumnMeta>,
    person_ids: bool,
}

impl Table {
    pub fn new(what: &'static str) -> Table {
        Table {
            what,
            fields: Vec::new(),
            arrays: Vec::new(),
            meta: Vec::new(),
            person_ids: false,
        }
    }

    pub fn col(
        mut self,
        name: &str,
        array: ArrayRef,
        pii: PiiClass,
        sensitive: Option<&str>,
    ) -> Table {
        self.fields
            .push(Field::new(name, array.data_type().clone(), true));
        self.arrays.push(array);
        self.meta.push(ColumnMeta::new(name, pii, sensitive));
        self
    }

    /// A column that identifies nobody and reveals nothing sensitive.
    pub fn plain(self, name: &str, array: ArrayRef) -> Table {
        self.col(name, array, PiiClass::None, None)
    }

    /// A non-identifying column that reveals a sensitive category.
    pub fn sensitive(self, name: &str, array: ArrayRef, category: Option<&str>) -> Table {
        self.col(name, array, PiiClass::None, category)
    }

    /// The pseudonymous `person_key`: not a direct identifier, but it singles a person out.
    pub fn person_key(self, array: ArrayRef) -> Table {
        self.col("person_key", array, PiiClass::Quasi, None)
    }

    /// Internal person ids, for the file's lineage person set (never written).
    pub fn person_ids(mut self, ids: impl IntoIterator<Item = PersonId>) -> Table {
        let array: ArrayRef = Arc::new(ids.into_iter().collect::<Int64Array>());
        self.fields
            .push(Field::new(PERSON_ID, array.data_type().clone(), false));
        self.arrays.push(array);
        self.person_ids = true;
        self
    }

    pub fn build(self) -> Result<(RecordBatch, DatasetMeta), RunError> {
        let batch = RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays).map_err(
            |source| RunError::Arrow {
                what: self.what.to_string(),
                source,
            },
        )?;
        let meta = DatasetMeta {
            columns: self.meta,
            person_id_column: self.person_ids.then(|| PERSON_ID.to_string()),
        };
        Ok((batch, meta))
    }
}

fn strings<'s>(values: impl IntoIterator<Item = Option<&'s str>>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<StringArray>())
}

fn bools(values: impl IntoIterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<BooleanArray>())
}

fn dates(values: impl IntoIterator<Item = Option<NaiveDate>>) -> ArrayRef {
    Arc::new(
        values
            .into_iter()
            .map(|d| d.map(date32))
            .collect::<Date32Array>(),
    )
}

fn years(values: impl IntoIterator<Item = i32>) -> ArrayRef {
    Arc::new(values.into_iter().map(Some).collect::<Int32Array>())
}

fn money(cents: impl IntoIterator<Item = Option<i64>>) -> Result<ArrayRef, RunError> {
    let mut b = Decimal128Builder::new()
        .with_precision_and_scale(14, 2)
        .map_err(|source| RunError::Arrow {
            what: "wages".into(),
            source,
        })?;
    for c in cents {
        b.append_option(c.map(i128::from));
    }
    Ok(Arc::new(b.finish()))
}

/// Splits a batch into slices the Parquet writer takes comfortably.
fn chunks(batch: &RecordBatch) -> Vec<RecordBatch> {
    const ROWS: usize = 1 << 17;
    (0..batch.num_rows())
        .step_by(ROWS)
        .map(|o| batch.slice(o, ROWS.min(batch.num_rows() - o)))
        .collect()
}

/// The lineage metadata of a de-identified column, from the schema column it comes from.
fn deid_column_meta(schema: &SourceSchema, name: &str) -> ColumnMeta {
    match name {
        "birth_year" | "age_at_entry" | "zip3" => ColumnMeta::new(name, PiiClass::Quasi, None),
        _ => match schema.column(name) {
            Some(c) => ColumnMeta::new(name, c.pii, c.sensitive.as_deref()),
            None => ColumnMeta::plain(name),
        },
    }
}

/// `participants/program_year=…`: the de-identified participant periods (columns as the
/// schema's `deid` rules say) with verified statuses, disagreement flags and outcomes.
#[allow(clippy::too_many_arguments)]
pub(super) fn participants(
    snapshot: &Snapshot,
    schema: &SourceSchema,
    deid: RecordBatch,
    persons: &[PersonId],
    has_ssn: &[bool],
    periods: &[Period],
    verified: &[Statuses],
    outcomes: &[Option<Outcomes>],
) -> Result<(), RunError> {
    let mut t = Table::new("participants");
    for (i, f) in deid.schema().fields().iter().enumerate() {
        let meta = if f.name() == "person_key" {
            ColumnMeta::new("person_key", PiiClass::Quasi, None)
        } else {
            deid_column_meta(schema, f.name())
        };
        t = t.col(
            f.name(),
            deid.column(i).clone(),
            meta.pii,
            meta.sensitive.as_deref(),
        );
    }
    t = t.plain("has_ssn", bools(has_ssn.iter().map(|&b| Some(b))));
    type Status = (&'static str, &'static str, fn(&Statuses) -> bool);
    let statuses: [Status; 4] = [
        ("snap", "public_assistance", |s| s.snap),
        ("tanf", "public_assistance", |s| s.tanf),
        ("ui_claimant", "ui_receipt", |s| s.ui_claimant),
        ("taa", "ui_receipt", |s| s.taa),
    ];
    for (name, cat, get) in statuses {
        t = t
            .sensitive(
                &format!("verified_{name}"),
                bools(verified.iter().map(|v| Some(get(v)))),
                Some(cat),
            )
            .sensitive(
                &format!("{name}_status_disagrees"),
                bools(
                    verified
                        .iter()
                        .zip(periods)
                        .map(|(v, p)| Some(get(v) != get(&p.reported))),
                ),
                Some(cat),
            );
    }
    for k in 0..4 {
        t = t
            .sensitive(
                &format!("employed_q{}", k + 1),
                bools(outcomes.iter().map(|o| o.and_then(|o| o.employed[k]))),
                Some("financial"),
            )
            .sensitive(
                &format!("wages_q{}", k + 1),
                money(outcomes.iter().map(|o| o.and_then(|o| o.wages_cents[k])))?,
                Some("financial"),
            );
    }
    let (batch, meta) = t
        .sensitive(
            "retention_same_employer",
            bools(
                outcomes
                    .iter()
                    .map(|o| o.and_then(|o| o.retention_same_employer)),
            ),
            Some("financial"),
        )
        .plain(
            "program_year",
            years(periods.iter().map(|p| program_year(p.entry))),
        )
        .person_ids(persons.iter().copied())
        .build()?;
    snapshot.write_deid("participants", Some("program_year"), chunks(&batch), &meta)?;
    Ok(())
}

/// `services/program_year=…`: one row per service a participant received, from the
/// schema's service-list column (`CODE:YYYY-MM-DD:S|U` entries).
pub(super) fn services(
    snapshot: &Snapshot,
    schema: &SourceSchema,
    batch: &RecordBatch,
    keys: &[&str],
    periods: &[Period],
) -> Result<(), RunError> {
    let Some(col) = schema
        .columns
        .iter()
        .find(|c| c.ty == ColumnType::ServiceList)
    else {
        return Ok(());
    };
    let Some(list) = batch
        .column_by_name(&col.name)
        .and_then(|a| a.as_string_opt::<i32>())
    else {
        return Ok(());
    };
    let mut rows: Vec<(usize, &str, NaiveDate, bool)> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        for item in v
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let mut parts = item.split(':');
            let (Some(code), Some(date), staff) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let Ok(date) = date.parse::<NaiveDate>() else {
                continue;
            };
            rows.push((i, code, date, staff == Some("S")));
        }
    }
    let (batch, meta) = Table::new("services")
        .person_key(strings(rows.iter().map(|r| Some(keys[r.0]))))
        .plain(
            "entry_date",
            dates(rows.iter().map(|r| Some(periods[r.0].entry))),
        )
        .plain("service_code", strings(rows.iter().map(|r| Some(r.1))))
        .plain("service_date", dates(rows.iter().map(|r| Some(r.2))))
        .plain("staff_assisted", bools(rows.iter().map(|r| Some(r.3))))
        .plain(
            "program_year",
            years(rows.iter().map(|r| program_year(periods[r.0].entry))),
        )
        .person_ids(rows.iter().map(|r| periods[r.0].person))
        .build()?;
    snapshot.write_deid("services", Some("program_year"), chunks(&batch), &meta)?;
    Ok(())
}

/// `evidence/program_year=…`, one call per source so each file's lineage names that
/// source's sensitive category.
pub(super) fn evidence<'k>(
    snapshot: &Snapshot,
    ev: &EvidenceRows,
    periods: &[Period],
    category_of: &dyn Fn(&str) -> Option<String>,
    key_of: &dyn Fn(PersonId) -> &'k str,
) -> Result<(), RunError> {
    let sources: BTreeSet<&Arc<str>> = ev.source.iter().collect();
    for source in sources {
        let category = category_of(source);
        let cat = category.as_deref();
        let idx: Vec<usize> = (0..ev.person.len())
            .filter(|&i| &ev.source[i] == source)
            .collect();
        let keys = strings(idx.iter().map(|&i| Some(key_of(ev.person[i]))));
        let facts = |f: fn(&EvidenceFacts) -> Option<NaiveDate>| {
            dates(idx.iter().map(|&i| f(&ev.facts[i])))
        };
        let (batch, meta) = Table::new("evidence")
            .person_key(keys)
            .plain(
                "entry_date",
                dates(idx.iter().map(|&i| Some(periods[ev.period[i]].entry))),
            )
            .plain("source", strings(idx.iter().map(|&i| Some(&*ev.source[i]))))
            .sensitive(
                "program",
                strings(idx.iter().map(|&i| Some(&*ev.facts[i].program))),
                cat,
            )
            .sensitive("determination_date", facts(|f| f.determination_date), cat)
            .sensitive("period_start", facts(|f| f.period_start), cat)
            .sensitive("period_end", facts(|f| f.period_end), cat)
            .sensitive(
                "benefit_type",
                strings(idx.iter().map(|&i| ev.facts[i].benefit_type.as_deref())),
                cat,
            )
            .plain("match_pass", strings(idx.iter().map(|&i| Some(ev.pass[i]))))
            .plain(
                "match_score",
                Arc::new(idx.iter().map(|&i| ev.score[i]).collect::<Float64Array>()),
            )
            .plain(
                "sufficient",
                bools(idx.iter().map(|&i| Some(ev.verdict[i].is_sufficient()))),
            )
            .plain(
                "verdict",
                strings(idx.iter().map(|&i| Some(ev.verdict[i].code()))),
            )
            .plain(
                "program_year",
                years(
                    idx.iter()
                        .map(|&i| program_year(periods[ev.period[i]].entry)),
                ),
            )
            .person_ids(idx.iter().map(|&i| ev.person[i]))
            .build()?;
        snapshot.write_deid("evidence", Some("program_year"), chunks(&batch), &meta)?;
    }
    Ok(())
}

/// `quarterly_wages/year_quarter=…`: linked wage records, employer accounts as tokens.
pub(super) fn wages<'k>(
    snapshot: &Snapshot,
    rows: &[WageRow],
    employer_hex: &[String],
    key_of: &dyn Fn(PersonId) -> &'k str,
) -> Result<(), RunError> {
    // Grouped by quarter first, so every batch holds one partition and reaches its file
    // without being split (and copied) by partition; each quarter is spelled once.
    let mut by_quarter: BTreeMap<Quarter, Vec<&WageRow>> = BTreeMap::new();
    for r in rows {
        by_quarter.entry(r.quarter).or_default().push(r);
    }
    for (quarter, rows) in by_quarter {
        let spelled = quarter.to_string();
        for part in rows.chunks(1 << 20) {
            let (batch, meta) = Table::new("quarterly_wages")
                .person_key(strings(part.iter().map(|r| Some(key_of(r.person)))))
                .plain(
                    "employer_token",
                    strings(
                        part.iter()
                            .map(|r| Some(employer_hex[r.employer as usize].as_str())),
                    ),
                )
                .sensitive(
                    "wages",
                    money(part.iter().map(|r| Some(r.cents)))?,
                    Some("financial"),
                )
                .plain(
                    "year_quarter",
                    strings(part.iter().map(|_| Some(spelled.as_str()))),
                )
                .person_ids(part.iter().map(|r| r.person))
                .build()?;
            snapshot.write_deid("quarterly_wages", Some("year_quarter"), [batch], &meta)?;
        }
    }
    Ok(())
}

/// `data_quality`: counts of rejects and unusable identity fields by source, stage and
/// reason — the data-quality report's input, with no row-level detail.
pub(super) fn quality(
    snapshot: &Snapshot,
    counts: &BTreeMap<(String, &'static str, String), u64>,
) -> Result<(), RunError> {
    let (batch, meta) = Table::new("data_quality")
        .plain("source", strings(counts.keys().map(|k| Some(k.0.as_str()))))
        .plain("stage", strings(counts.keys().map(|k| Some(k.1))))
        .plain("reason", strings(counts.keys().map(|k| Some(k.2.as_str()))))
        .plain(
            "rows",
            Arc::new(counts.values().copied().collect::<UInt64Array>()),
        )
        .build()?;
    snapshot.write_deid("data_quality", None, [batch], &meta)?;
    Ok(())
}

/// `linkage_quality`: the probabilistic pass's self-report, one row per source: band
/// sizes and, from the run's Fellegi–Sunter model, the expected precision and recall of
/// what it linked. Counts and model figures only, nothing about a person.
pub(super) fn linkage_quality(
    snapshot: &Snapshot,
    run_id: i64,
    reports: &[(String, crate::link::prob::PassReport, u64)],
) -> Result<(), RunError> {
    let n = |f: &dyn Fn(&crate::link::prob::PassReport) -> u64| -> ArrayRef {
        Arc::new(
            reports
                .iter()
                .map(|(_, r, _)| f(r))
                .collect::<UInt64Array>(),
        )
    };
    let x = |f: &dyn Fn(&crate::link::prob::PassReport) -> f64| -> ArrayRef {
        Arc::new(
            reports
                .iter()
                .map(|(_, r, _)| f(r))
                .collect::<Float64Array>(),
        )
    };
    let (batch, meta) = Table::new("linkage_quality")
        .plain(
            "run_id",
            Arc::new(reports.iter().map(|_| run_id).collect::<Int64Array>()),
        )
        .plain(
            "source",
            strings(reports.iter().map(|(s, _, _)| Some(s.as_str()))),
        )
        .plain("records", n(&|r| r.records))
        .plain("records_with_candidates", n(&|r| r.records_with_candidates))
        .plain("candidate_pairs", n(&|r| r.candidate_pairs))
        .plain("linked", n(&|r| r.linked))
        .plain("review", n(&|r| r.review))
        .plain("non_link", n(&|r| r.non_link))
        .plain("ambiguous", n(&|r| r.ambiguous))
        .plain("held", n(&|r| r.held))
        .plain(
            "review_accepted",
            Arc::new(reports.iter().map(|(_, _, a)| *a).collect::<UInt64Array>()),
        )
        .plain("estimated_precision", x(&|r| r.estimated_precision))
        .plain("estimated_recall", x(&|r| r.estimated_recall))
        .plain("lambda", x(&|r| r.model.as_ref().map_or(0.0, |m| m.lambda)))
        .build()?;
    snapshot.write_deid("linkage_quality", None, [batch], &meta)?;
    Ok(())
}

/// What the secure zone receives from a run.
pub(super) struct SecureInputs<'a> {
    pub record_ids: &'a [Option<String>],
    /// The last four digits of each case record's SSN as read (`None`: none given).
    pub ssn_last4: &'a [Option<Last4>],
    pub persons: &'a [PersonId],
    pub keys: &'a [&'a str],
    pub periods: &'a [Period],
    /// The temporary ID of each surviving person that has one.
    pub temp_of: &'a HashMap<PersonId, String>,
    /// Persons issued a temporary ID in this run.
    pub new_temp: &'a HashSet<PersonId>,
    pub matches: &'a [(String, MatchRows)],
    pub rejects: &'a [(String, Vec<Reject>)],
    pub today: NaiveDate,
}

/// The secure zone: the case-management crosswalk, new temporary-ID assignments, the match
/// trail and the rejected rows (SSNs masked to the last four digits).
pub(super) fn secure<'k>(
    snapshot: &Snapshot,
    s: &SecureInputs<'_>,
    key_of: &dyn Fn(PersonId) -> &'k str,
) -> Result<(), RunError> {
    let record = |t: Table, ids: &mut dyn Iterator<Item = Option<&str>>| {
        t.col("individual_id", strings(ids), PiiClass::Direct, None)
    };
    let temp = |i: usize| s.temp_of.get(&s.persons[i]).map(String::as_str);

    let all: Vec<usize> = (0..s.persons.len()).collect();
    let masked: Vec<Option<String>> = s
        .ssn_last4
        .iter()
        .map(|l| l.as_ref().map(|l| format!("***-**-{}", &**l)))
        .collect();
    let (batch, meta) = record(
        Table::new("crosswalk"),
        &mut all.iter().map(|&i| s.record_ids[i].as_deref()),
    )
    .person_key(strings(all.iter().map(|&i| Some(s.keys[i]))))
    .col(
        "temp_id",
        strings(all.iter().map(|&i| temp(i))),
        PiiClass::Direct,
        None,
    )
    .plain("entry_date", dates(s.periods.iter().map(|p| Some(p.entry))))
    // Masked to the last four digits (Ohio WIOAPL 15-07.1 E.2): what the monitor's
    // evidence printout shows, so nobody needs the case-management export for it.
    .col(
        "ssn_masked",
        strings(masked.iter().map(|m| m.as_deref())),
        PiiClass::Quasi,
        None,
    )
    .person_ids(s.persons.iter().copied())
    .build()?;
    snapshot.write_secure(Path::new("crosswalk.parquet"), [batch], &meta)?;

    // New temporary IDs, one row per case record, for the case-management system to import.
    let mut seen = BTreeSet::new();
    let new: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| {
            s.new_temp.contains(&s.persons[i])
                && seen.insert((s.persons[i], s.record_ids[i].clone()))
        })
        .collect();
    let (batch, meta) = record(
        Table::new("temporary IDs"),
        &mut new.iter().map(|&i| s.record_ids[i].as_deref()),
    )
    .person_key(strings(new.iter().map(|&i| Some(s.keys[i]))))
    .col(
        "temp_id",
        strings(new.iter().map(|&i| temp(i))),
        PiiClass::Direct,
        None,
    )
    .plain("issued_on", dates(new.iter().map(|_| Some(s.today))))
    .person_ids(new.iter().map(|&i| s.persons[i]))
    .build()?;
    snapshot.write_secure(Path::new("temp_id_assignments.csv"), [batch], &meta)?;

    for (source, m) in s.matches {
        let keys: Vec<&str> = m.person.iter().map(|&p| key_of(p)).collect();
        let (batch, meta) = Table::new("matches")
            .col(
                "record_id",
                strings(m.record_id.iter().map(|r| r.as_deref())),
                PiiClass::Direct,
                None,
            )
            .plain("row", Arc::new(UInt64Array::from(m.row.clone())))
            .person_key(strings(keys.iter().map(|k| Some(*k))))
            .plain("match_pass", strings(m.pass.iter().map(|p| Some(*p))))
            .plain(
                "match_score",
                Arc::new(m.score.iter().copied().collect::<Float64Array>()),
            )
            .person_ids(m.person.iter().copied())
            .build()?;
        snapshot.write_secure(
            &PathBuf::from(format!("matches/{source}.parquet")),
            [batch],
            &meta,
        )?;
    }

    for (source, list) in s.rejects {
        let masked: Vec<Option<String>> = list
            .iter()
            .map(|r| r.ssn_last4.as_ref().map(|l| format!("***-**-{l}")))
            .collect();
        let (batch, meta) = Table::new("rejects")
            .plain(
                "row",
                Arc::new(list.iter().map(|r| r.row).collect::<UInt64Array>()),
            )
            .plain(
                "reason",
                strings(list.iter().map(|r| Some(r.reason.as_str()))),
            )
            .plain("column", strings(list.iter().map(|r| r.column.as_deref())))
            .col(
                "record_id",
                strings(list.iter().map(|r| r.record_id.as_deref())),
                PiiClass::Direct,
                None,
            )
            .col(
                "ssn_masked",
                strings(masked.iter().map(|m| m.as_deref())),
                PiiClass::Quasi,
                None,
            )
            .build()?;
        snapshot.write_secure(
            &PathBuf::from(format!("rejects/{source}.csv")),
            [batch],
            &meta,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn jobs_all_run_and_the_first_failure_stops_the_rest() {
        let ran = AtomicUsize::new(0);
        let jobs: Vec<Job<'_>> = (0..10)
            .map(|_| -> Job<'_> {
                Box::new(|| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            })
            .collect();
        run_jobs(jobs).unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 10);

        let ran = AtomicUsize::new(0);
        let mut jobs: Vec<Job<'_>> = vec![Box::new(|| Err(RunError::Join("first".into())))];
        for _ in 0..100 {
            jobs.push(Box::new(|| {
                ran.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(1));
                Ok(())
            }));
        }
        let err = run_jobs(jobs).unwrap_err();
        assert!(err.to_string().contains("first"), "{err}");
        // The other worker may finish the job it holds, but the queue is dropped.
        assert!(ran.load(Ordering::SeqCst) < 100);
    }
}
