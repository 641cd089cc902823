//! `xmatch evidence PERSON_KEY|TEMP_ID --reason TEXT`: the monitor's printout of one
//! participant (Ohio WIOAPL 15-07.1 VII: the state's program monitors review participant
//! files on site).
//!
//! One self-contained HTML page: who the person is in the registry (person key,
//! temporary IDs, merged keys, case-management record IDs, the SSN masked to its last
//! four digits), every participant period with its programs and dates, the statuses at
//! entry as the case file self-reports them beside what cross-match evidence verified,
//! every service, and every cross-match with its source, determination date, benefit
//! period, benefit type, how it was matched (pass and match weight) and the verdict —
//! the detail VI.C.4 asks of a cross-match, since "an indicator or presence of a social
//! security number in a database alone is not sufficient evidence".
//!
//! It names a person, so it goes to the secure zone (`secure/evidence/`, 0700 directories,
//! a 0600 file), never to stdout or the de-identified lake; it is recorded in lineage
//! (dataset `exports/evidence`, under the run whose snapshot it was made from, with its
//! one person and the PII classes of what it shows), and every printout writes an
//! `audit_log` row with the OS user and the reason. Without a reason nothing is read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;

use super::html::{self, Td};
use super::session::LakeSession;
use super::{ReportError, one_line, record};
use crate::identity::ids::{PersonKey, TempId};
use crate::lake::{ColumnMeta, PersonSet, Zone};
use crate::secure::SecureZone;
use crate::store::{PersonIdentity, PersonSubject, Store};
use crate::workspace::Workspace;

pub const PERIODS_SQL: &str = include_str!("sql/evidence_periods.sql");
pub const SERVICES_SQL: &str = include_str!("sql/evidence_services.sql");
pub const MATCHES_SQL: &str = include_str!("sql/evidence_matches.sql");

/// The lineage dataset of printouts.
pub const DATASET: &str = "exports/evidence";

/// What a printout wrote.
#[derive(Debug, Clone)]
pub struct Printout {
    pub path: PathBuf,
    /// The key the person is published under (the survivor of any merge).
    pub person_key: String,
    pub run_id: i64,
    pub periods: usize,
    pub services: usize,
    pub cross_matches: usize,
}

impl std::fmt::Display for Printout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "evidence printout for person {} (snapshot of run {}): {} period(s), {} service(s), {} cross-match(es)",
            self.person_key, self.run_id, self.periods, self.services, self.cross_matches
        )?;
        writeln!(f, "written to the secure zone: {}", self.path.display())
    }
}

/// The refusal, as one line: nothing has been read when it is returned.
pub const REASON_REQUIRED: &str = "evidence printout refused: say why with --reason TEXT (it is written to the audit log with your user name)";

/// Reads a person key (12 characters) or a temporary ID (`T` and 9 characters, in any
/// case, with spaces or dashes), checking its check character.
pub fn parse_subject(s: &str) -> Result<PersonSubject, ReportError> {
    let compact: String = s
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .collect();
    let looks_temp = compact.len() == 10
        && compact
            .chars()
            .next()
            .is_some_and(|c| c.eq_ignore_ascii_case(&crate::identity::ids::TEMP_ID_PREFIX));
    if looks_temp {
        return TempId::parse(s)
            .map(|t| PersonSubject::TempId(t.as_str().to_string()))
            .map_err(|e| {
                ReportError::Usage(format!("`{}` is not a valid temporary ID: {e}", s.trim()))
            });
    }
    PersonKey::parse(&compact.to_ascii_uppercase())
        .map(|k| PersonSubject::PersonKey(k.as_str().to_string()))
        .map_err(|e| {
            ReportError::Usage(format!(
                "`{}` is neither a person key (12 characters) nor a temporary ID (T and 9 characters): {e}",
                s.trim()
            ))
        })
}

/// One query result as rows of column → display text (`None` = null).
type Rows = Vec<BTreeMap<String, Option<String>>>;

fn to_rows(batches: &[RecordBatch]) -> Result<Rows, ReportError> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        let mut cols: Vec<(String, Vec<Option<String>>)> = Vec::new();
        for (f, a) in schema.fields().iter().zip(b.columns()) {
            let text = arrow::compute::cast(a, &DataType::Utf8)?;
            let text = text.as_string::<i32>();
            cols.push((
                f.name().clone(),
                (0..text.len())
                    .map(|i| (!text.is_null(i)).then(|| text.value(i).trim().to_string()))
                    .map(|v| v.filter(|s| !s.is_empty()))
                    .collect(),
            ));
        }
        for i in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|(n, v)| (n.clone(), v[i].clone()))
                    .collect(),
            );
        }
    }
    Ok(out)
}

async fn query(
    session: &LakeSession,
    table: &str,
    sql: &str,
    key: &str,
) -> Result<Rows, ReportError> {
    if !session.has_table(table) {
        return Ok(Vec::new());
    }
    let has_score = session
        .tables()
        .iter()
        .find(|t| t.name == table)
        .is_some_and(|t| t.schema.field_with_name("match_score").is_ok());
    let sql = sql.replace("{{person_key}}", key).replace(
        "{{match_score}}",
        if has_score {
            "match_score"
        } else {
            "CAST(NULL AS DOUBLE)"
        },
    );
    let (_, batches) = session.query(&sql).await?;
    to_rows(&batches)
}

/// What the secure zone's crosswalk of the snapshot's run says about the person.
#[derive(Debug, Default)]
struct Crosswalk {
    /// `None`: the run's secure zone holds no crosswalk (purged, or another machine's).
    found: Option<PathBuf>,
    individual_ids: BTreeSet<String>,
    temp_ids: BTreeSet<String>,
    /// `***-**-1234` per case record; `None` when the crosswalk predates the column.
    ssn_masked: Option<BTreeSet<String>>,
}

fn read_crosswalk(zone: &SecureZone, run_id: i64, key: &str) -> Result<Crosswalk, ReportError> {
    let path = zone
        .root()
        .join("runs")
        .join(run_id.to_string())
        .join("crosswalk.parquet");
    if !path.is_file() {
        return Ok(Crosswalk::default());
    }
    let reader = zone.parquet(&path, None)?;
    let mut out = Crosswalk {
        found: Some(path.clone()),
        ..Crosswalk::default()
    };
    for batch in reader {
        let rows = to_rows(std::slice::from_ref(&batch))?;
        if batch.column_by_name("ssn_masked").is_some() && out.ssn_masked.is_none() {
            out.ssn_masked = Some(BTreeSet::new());
        }
        for r in rows
            .iter()
            .filter(|r| r.get("person_key").cloned().flatten().as_deref() == Some(key))
        {
            let get = |c: &str| r.get(c).cloned().flatten();
            out.individual_ids.extend(get("individual_id"));
            out.temp_ids.extend(get("temp_id"));
            if let (Some(set), Some(m)) = (out.ssn_masked.as_mut(), get("ssn_masked")) {
                set.insert(m);
            }
        }
    }
    Ok(out)
}

/// The PII classes of what the printout shows, as lineage recorded them for the run's
/// files it is drawn from (every category a column carried in any of them: an evidence
/// column holds SNAP in one file and UI receipt in another), so a breach question about
/// a leaked printout reports what it really exposed.
async fn shown_columns(
    store: &Store,
    run_id: i64,
    periods: &Rows,
    services: &Rows,
    matches: &Rows,
) -> Result<Vec<ColumnMeta>, ReportError> {
    let mut wanted: BTreeSet<String> = ["person_key", "individual_id", "temp_id", "ssn_masked"]
        .into_iter()
        .map(String::from)
        .collect();
    for rows in [periods, services, matches] {
        if let Some(r) = rows.first() {
            wanted.extend(r.keys().cloned());
        }
    }
    let files = store
        .lineage_meta(&crate::store::LineageFilter::Run(run_id))
        .await?;
    let mut seen: BTreeSet<(String, String, Option<String>)> = BTreeSet::new();
    let mut out = Vec::new();
    for f in files.iter().filter(|f| {
        matches!(
            f.dataset.as_str(),
            "participants" | "services" | "evidence" | "crosswalk"
        )
    }) {
        for c in f.columns.iter().filter(|c| wanted.contains(&c.name)) {
            if seen.insert((c.name.clone(), format!("{:?}", c.pii), c.sensitive.clone())) {
                out.push(c.clone());
            }
        }
    }
    // The masked SSN is quasi-identifying (crosswalks written before it was recorded
    // there have no lineage entry for it).
    if !out.iter().any(|c| c.name == "ssn_masked") {
        out.push(ColumnMeta::new(
            "ssn_masked",
            crate::schema::PiiClass::Quasi,
            None,
        ));
    }
    Ok(out)
}

fn yes_no(v: Option<&str>) -> &'static str {
    match v {
        Some("true" | "1") => "yes",
        Some("false" | "0") => "no",
        _ => "not recorded",
    }
}

const PROGRAMS: &[(&str, &str)] = &[
    ("adult", "Adult"),
    ("dislocated_worker", "Dislocated Worker"),
    ("youth", "Youth"),
    ("wagner_peyser", "Wagner-Peyser"),
    ("snap_et", "SNAP E&T"),
    ("ndwg", "NDWG"),
    ("taa", "TAA"),
];

fn exit_reason(code: Option<&str>) -> String {
    let name = match code {
        None => return String::new(),
        Some("00") => "none",
        Some("01") => "institutionalized",
        Some("02") => "health/medical",
        Some("03") => "deceased",
        Some("04") => "reserve or National Guard called to active duty",
        Some("05") => "foster care (youth)",
        Some("06") => "ineligible",
        Some("07") => "criminal offender",
        Some(_) => "unknown code",
    };
    format!("{} {name}", code.unwrap_or_default())
}

fn verdict_text(code: &str) -> &'static str {
    match code {
        "sufficient" => {
            "determination date, benefit period and benefit type present; current at entry"
        }
        "identifier_only" => {
            "not evidence: an identifier matched, with no determination date, period or benefit type"
        }
        "no_determination_date" => "insufficient: no date of the eligibility determination",
        "no_period" => "insufficient: no benefit period (dates of participation)",
        "no_benefit_type" => "insufficient: no benefit or service rendered",
        "stale_period" => "insufficient: the benefit period ended before the window around entry",
        "period_after_entry" => "insufficient: the benefit period began after entry",
        _ => "unknown verdict",
    }
}

fn dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "—".into())
}

struct Page<'a> {
    who: &'a PersonIdentity,
    subject: &'a PersonSubject,
    run_id: i64,
    cw: &'a Crosswalk,
    periods: &'a Rows,
    services: &'a Rows,
    matches: &'a Rows,
    actor: &'a str,
    reason: &'a str,
    at: chrono::DateTime<chrono::Utc>,
}

fn render(p: &Page<'_>) -> String {
    let key = &p.who.survivor.1;
    let mut body = String::new();
    body.push_str(
        "<div class=\"banner\">CONFIDENTIAL: personally identifiable information about one \
         participant, for program monitoring only (Ohio WIOAPL 15-07.1 D and VII). Keep it in \
         the secure zone; do not e-mail, copy to removable media or leave it open and \
         unattended. The SSN is shown masked to its last four digits.</div>\n",
    );
    body.push_str("<h1>Participant evidence printout</h1>\n");
    let temp_ids: BTreeSet<String> = p
        .who
        .temp_ids
        .iter()
        .map(|(t, _)| t.clone())
        .chain(p.cw.temp_ids.iter().cloned())
        .collect();
    let has_ssn = p
        .periods
        .iter()
        .any(|r| r.get("has_ssn").cloned().flatten().as_deref() == Some("true"));
    let ssn = match &p.cw.ssn_masked {
        _ if p.cw.found.is_none() => {
            "not available: the secure zone holds no crosswalk for this run".to_string()
        }
        None => "not recorded in this run's crosswalk".to_string(),
        Some(set) if set.is_empty() && !has_ssn => {
            "none on file: the person is known by a temporary ID".to_string()
        }
        Some(set) if set.is_empty() => "not on the case records of this run".to_string(),
        // Digits were entered but no valid SSN: the last four as entered, said so.
        Some(set) if !has_ssn => format!(
            "{} as entered on the case record; not a valid SSN, so the person is tracked by temporary ID",
            set.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        Some(set) => set.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    let named = match p.subject {
        PersonSubject::PersonKey(k) => format!("person key {k}"),
        PersonSubject::TempId(t) => format!("temporary ID {t}"),
    };
    let mut items: Vec<(&str, String)> = vec![
        ("Requested as", named),
        ("Person key (PIRL 100)", key.clone()),
    ];
    if p.who.named.0 != p.who.survivor.0 {
        items.push((
            "Merged",
            format!(
                "{} was merged into {key}; the de-identified zone publishes under {key}",
                p.who.named.1
            ),
        ));
    }
    if !p.who.merged.is_empty() {
        items.push((
            "Person keys merged into this person",
            p.who
                .merged
                .iter()
                .map(|m| m.1.clone())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    items.extend([
        (
            "Temporary ID(s)",
            if temp_ids.is_empty() {
                "none".to_string()
            } else {
                temp_ids.into_iter().collect::<Vec<_>>().join(", ")
            },
        ),
        ("SSN (masked)", ssn),
        (
            "Case-management record ID(s)",
            if p.cw.individual_ids.is_empty() {
                "none in this run's crosswalk".to_string()
            } else {
                p.cw.individual_ids
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("Data", format!("published snapshot of run {}", p.run_id)),
        (
            "Prepared",
            format!("{} by {}", p.at.format("%Y-%m-%d %H:%M:%S UTC"), p.actor),
        ),
        ("Reason", p.reason.to_string()),
    ]);
    body.push_str(&html::facts(&items));

    // Periods.
    body.push_str(&format!(
        "<h2>Participation periods ({})</h2>\n",
        p.periods.len()
    ));
    let get = |r: &BTreeMap<String, Option<String>>, c: &str| r.get(c).cloned().flatten();
    let rows: Vec<Vec<Td>> = p
        .periods
        .iter()
        .map(|r| {
            let programs: Vec<&str> = PROGRAMS
                .iter()
                .filter(|(c, _)| matches!(get(r, c).as_deref(), Some("1" | "true")))
                .map(|(_, n)| *n)
                .collect();
            let training = match (get(r, "edu_enrollment_date"), get(r, "edu_completion_date")) {
                (None, None) => String::new(),
                (a, b) => format!("{} – {}", dash(a), b.unwrap_or_else(|| "ongoing".into())),
            };
            let credential = match (get(r, "credential_type"), get(r, "credential_date")) {
                (Some(t), d) if t != "0" => format!("type {t}, {}", dash(d)),
                _ => String::new(),
            };
            vec![
                Td::text(dash(get(r, "entry_date"))),
                Td::text(get(r, "exit_date").unwrap_or_else(|| "enrolled".into())),
                Td::text(dash(get(r, "local_area"))),
                Td::text(programs.join(", ")),
                Td::text(exit_reason(get(r, "exit_reason").as_deref())),
                Td::text(dash(get(r, "training_type"))),
                Td::text(training),
                Td::text(credential),
                Td::text(dash(get(r, "info_obtained_date"))),
                Td::text(dash(get(r, "entered_date"))),
            ]
        })
        .collect();
    body.push_str(&html::table(
        &[
            "Entry (900)",
            "Exit (901)",
            "Local area",
            "Programs",
            "Exit reason (923)",
            "Training type (1303)",
            "Education/training (1811–1813)",
            "Credential (1800, 1801)",
            "Information obtained",
            "Entered in the system of record",
        ],
        &rows,
        "No participant period of this person is in the published snapshot.",
    ));

    body.push_str("<h3>Statuses at entry: self-reported and verified by cross-match</h3>\n");
    let mut rows: Vec<Vec<Td>> = Vec::new();
    for r in p.periods {
        let entry = dash(get(r, "entry_date"));
        let uc = match get(r, "uc_status").as_deref() {
            None => "not recorded".to_string(),
            Some("0") => "no (0: neither claimant nor exhaustee)".to_string(),
            Some(c) => format!("yes (401 = {c})"),
        };
        for (status, self_reported, verified, disagrees) in [
            (
                "SNAP (603)",
                yes_no(get(r, "snap").as_deref()).to_string(),
                "verified_snap",
                "snap_status_disagrees",
            ),
            (
                "TANF (600)",
                yes_no(get(r, "tanf").as_deref()).to_string(),
                "verified_tanf",
                "tanf_status_disagrees",
            ),
            (
                "UI claimant (401)",
                uc,
                "verified_ui_claimant",
                "ui_claimant_status_disagrees",
            ),
            (
                "TAA",
                yes_no(get(r, "taa").as_deref()).to_string(),
                "verified_taa",
                "taa_status_disagrees",
            ),
        ] {
            let differs = yes_no(get(r, disagrees).as_deref());
            rows.push(vec![
                Td::text(entry.clone()),
                Td::text(status),
                Td::text(self_reported),
                Td::text(yes_no(get(r, verified).as_deref())),
                Td::text(differs).class(if differs == "yes" { "bad" } else { "ok" }),
            ]);
        }
    }
    body.push_str(&html::table(
        &[
            "Period entry",
            "Status",
            "Self-reported (case file)",
            "Verified by sufficient cross-match",
            "Disagree",
        ],
        &rows,
        "No periods, so no statuses.",
    ));

    // Services.
    body.push_str(&format!("<h2>Services ({})</h2>\n", p.services.len()));
    let rows: Vec<Vec<Td>> = p
        .services
        .iter()
        .map(|r| {
            vec![
                Td::text(dash(get(r, "entry_date"))),
                Td::text(dash(get(r, "service_date"))),
                Td::text(dash(get(r, "service_code"))),
                Td::text(get(r, "service_name").unwrap_or_else(|| "not in the catalogue".into())),
                Td::text(dash(get(r, "kind"))),
                Td::text(match get(r, "staff_assisted").as_deref() {
                    Some("true") => "staff-assisted",
                    Some("false") => "self-service",
                    _ => "not recorded",
                }),
                Td::text(yes_no(get(r, "triggers_participation").as_deref())),
            ]
        })
        .collect();
    body.push_str(&html::table(
        &[
            "Period entry",
            "Date",
            "Code",
            "Service",
            "Kind",
            "Delivery",
            "Triggers participation",
        ],
        &rows,
        "No services recorded for this person.",
    ));

    // Cross-matches.
    body.push_str(&format!("<h2>Cross-matches ({})</h2>\n", p.matches.len()));
    body.push_str(
        "<p class=\"note\">Ohio WIOAPL 15-07.1 VI.C.4: a cross-match documents eligibility \
         only with detail from the other agency's record: the date of the eligibility \
         determination, the dates of participation (benefit period) and the benefit or \
         service rendered; the presence of an SSN or a flag alone is not evidence. A match \
         is sufficient when all three are present and the benefit period is current at \
         entry.</p>\n",
    );
    let rows: Vec<Vec<Td>> =
        p.matches
            .iter()
            .map(|r| {
                let verdict = get(r, "verdict").unwrap_or_default();
                let sufficient = get(r, "sufficient").as_deref() == Some("true");
                let period = match (get(r, "period_start"), get(r, "period_end")) {
                    (None, None) => "—".to_string(),
                    (a, b) => format!("{} – {}", dash(a), dash(b)),
                };
                let score = get(r, "match_score")
                    .and_then(|s| s.parse::<f64>().ok())
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_else(|| "— (exact token match)".into());
                vec![
                    Td::text(dash(get(r, "entry_date"))),
                    Td::text(dash(get(r, "source"))),
                    Td::text(dash(get(r, "program"))),
                    Td::text(dash(get(r, "determination_date"))),
                    Td::text(period),
                    Td::text(dash(get(r, "benefit_type"))),
                    Td::text(dash(get(r, "match_pass"))),
                    Td::num(score),
                    Td::text(format!("{verdict} ({})", verdict_text(&verdict)))
                        .class(if sufficient { "ok" } else { "bad" }),
                ]
            })
            .collect();
    body.push_str(&html::table(
        &[
            "Period entry",
            "Source",
            "Benefit program",
            "Determination date",
            "Benefit period",
            "Benefit type",
            "Match pass",
            "Match weight",
            "Verdict",
        ],
        &rows,
        "No agency record was linked to this person.",
    ));
    body.push_str(&format!(
        "<p class=\"note\">Match pass: the keyed token that linked the record (ssn, name_dob, \
         …), or probabilistic with its match weight in bits, or review_accepted after \
         clerical review. Made by xmatch from the published snapshot of run {}; the system of \
         record is the case-management system.</p>\n",
        p.run_id
    ));
    html::page(&format!("Participant evidence printout: {key}"), "", &body)
}

/// `xmatch evidence`: refuses without a reason; otherwise finds the person, builds the
/// printout from the published snapshot and the secure zone, records its lineage, writes
/// it to `secure/evidence/` and the audit row.
pub async fn printout(
    ws: &Workspace,
    subject: &str,
    reason: Option<&str>,
) -> Result<Printout, ReportError> {
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ReportError::Usage(REASON_REQUIRED.into()))?;
    let subject = parse_subject(subject)?;
    let session = LakeSession::open(&ws.lake_dir()).await?;
    let store = record::open_store(ws).await?;
    let result = printout_with(ws, &store, &session, &subject, reason).await;
    store.close().await;
    result
}

async fn printout_with(
    ws: &Workspace,
    store: &Store,
    session: &LakeSession,
    subject: &PersonSubject,
    reason: &str,
) -> Result<Printout, ReportError> {
    let who = store.person_identity(subject).await?.ok_or_else(|| {
        ReportError::Usage(match subject {
            PersonSubject::PersonKey(k) => format!("no person with person key {k} in the registry"),
            PersonSubject::TempId(t) => format!("no person with temporary ID {t} in the registry"),
        })
    })?;
    let key = who.survivor.1.clone();
    let run_id = session.run_id();
    let periods = query(session, "participants", PERIODS_SQL, &key).await?;
    let services = query(session, "services", SERVICES_SQL, &key).await?;
    let matches = query(session, "evidence", MATCHES_SQL, &key).await?;
    let zone = ws
        .secure_zone()
        .map_err(|e| ReportError::Output(one_line(&e.to_string())))?;
    let secure = zone.root().to_path_buf();
    let cw = read_crosswalk(&zone, run_id, &key)?;
    let actor = crate::breach::current_user();
    let at = chrono::Utc::now();
    let page = render(&Page {
        who: &who,
        subject,
        run_id,
        cw: &cw,
        periods: &periods,
        services: &services,
        matches: &matches,
        actor: &actor,
        reason,
        at,
    });

    let relative_dir = PathBuf::from("evidence");
    let dir = secure.join(&relative_dir);
    for d in [&secure, &dir] {
        crate::workspace::create_private_dir(d)
            .map_err(|e| ReportError::Output(one_line(&e.to_string())))?;
    }
    // No person key in the name: the audit row and lineage say whose it is.
    let name = format!(
        "evidence-run{run_id}-{}-{}.html",
        at.format("%Y%m%dT%H%M%S%.3fZ"),
        &hex::encode(rand::random::<[u8; 3]>())
    );
    let columns = shown_columns(store, run_id, &periods, &services, &matches).await?;
    let rows = (periods.len() + services.len() + matches.len()) as u64;
    let path = dir.join(&name);
    // Lineage records the sealed bytes' hash: what a copied file would hash to.
    let sealed = zone.seal_bytes(&path, run_id, page.as_bytes())?;
    let file = record::written_file(
        Zone::Secure,
        DATASET,
        relative_dir.join(&name),
        &sealed,
        rows,
        columns,
        PersonSet::from_ids([who.survivor.0]),
    );
    // Lineage first, as for the PIRL export: a crash in between leaves lineage naming a
    // file that is not there, never a file of a person lineage misses.
    record::record_lineage(store, run_id, std::slice::from_ref(&file)).await?;
    crate::secure::write_file_atomic(&path, &sealed)?;
    store
        .record_audit(&crate::store::AuditEntry {
            actor,
            action: "evidence.printout".into(),
            reason: Some(reason.to_string()),
            detail: serde_json::json!({
                "person": who.survivor.0,
                "requested_as": match subject {
                    PersonSubject::PersonKey(_) => "person_key",
                    PersonSubject::TempId(_) => "temp_id",
                },
                "run_id": run_id,
                "periods": periods.len(),
                "services": services.len(),
                "cross_matches": matches.len(),
                "sha256": file.sha256,
                "path": path.display().to_string(),
            }),
        })
        .await?;
    Ok(Printout {
        path,
        person_key: key,
        run_id,
        periods: periods.len(),
        services: services.len(),
        cross_matches: matches.len(),
    })
}
