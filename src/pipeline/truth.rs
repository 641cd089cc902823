//! Scoring a run's links against the generator's `truth` file: pairwise precision and
//! recall of agency-record → person links, per source and by pass.
//!
//! Only a generated state has a truth file, so this serves `xmatch bench --linkage` and
//! the tests; a state's own data has no answer key (its run reports the model's estimate
//! instead, see `link_quality`).
//!
//! A *true pair* is an accepted agency row whose generated person is a participant; a
//! link is *correct* when the person key it names holds that generated person (through
//! the case-management crosswalk). The truth lists each source's rows in file order, so
//! evidence rows are matched to it by row number. Wage rows have no per-row trail in
//! the secure zone, so they are matched on what the de-identified zone keeps of them:
//! the employer token, the quarter and the amount, which tell apart practically every
//! worker of one employer.
//!
//! A true pair is *identifiable* when the agency row and one of the person's participant
//! rows both carry an SSN, or both a date of birth: something besides names. The rest
//! (a participant who gave no SSN and a wage row, which has no DOB) only names could
//! join, and at state scale names alone are a guess, so recall is reported over both.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Decimal128Type, Int64Type, UInt64Type};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::identity::blocking::Blocker;
use crate::identity::ssn::Ssn;
use crate::identity::token::Tokenizer;
use crate::identity::{IdentityFields, RawIdentity, normalize_record};
use crate::link::PROBABILISTIC;
use crate::schema::{Catalog, IdentityRole};
use crate::secure::SecureZone;
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{}: column `{column}` is missing or of an unexpected type", path.display())]
    Column { path: PathBuf, column: String },
    #[error("{}: no truth file; scoring needs a state made by `xmatch generate`", path.display())]
    NoTruth { path: PathBuf },
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error(transparent)]
    Secure(#[from] crate::secure::SecureError),
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error("{source_name}: the truth lists {truth} rows, the file has {file}")]
    Rows {
        source_name: String,
        truth: usize,
        file: usize,
    },
}

/// Links of one source (or all) against the truth.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Accepted rows whose generated person is a participant.
    pub true_pairs: u64,
    /// Of those, the identifiable ones (see the module documentation).
    pub identifiable: u64,
    /// Rows linked to a person.
    pub linked: u64,
    /// Of those, linked to the right person.
    pub correct: u64,
    /// Correct links of identifiable pairs.
    pub correct_identifiable: u64,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.linked)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.correct, self.true_pairs)
    }

    pub fn recall_identifiable(&self) -> f64 {
        ratio(self.correct_identifiable, self.identifiable)
    }

    fn add(&mut self, o: &Counts) {
        self.true_pairs += o.true_pairs;
        self.identifiable += o.identifiable;
        self.linked += o.linked;
        self.correct += o.correct;
        self.correct_identifiable += o.correct_identifiable;
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceScore {
    pub source: String,
    pub counts: Counts,
    /// `(linked, correct)` by pass; evidence sources only (wage rows keep no pass).
    pub by_pass: BTreeMap<String, (u64, u64)>,
    /// Rows ingest rejected (they are in no denominator).
    pub rejected: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    pub sources: Vec<SourceScore>,
    /// Participant person keys that hold more than one generated person (false merges).
    pub merged_keys: u64,
    /// Identifiable true pairs left unlinked (or linked to someone else), by what the
    /// agency row shares with its person's closest participant row, then by source.
    pub misses: BTreeMap<MissPattern, BTreeMap<String, u64>>,
}

impl Score {
    pub fn overall(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.sources {
            c.add(&s.counts);
        }
        c
    }

    pub fn source(&self, name: &str) -> Option<&SourceScore> {
        self.sources.iter().find(|s| s.source == name)
    }

    /// Links the probabilistic pass made, and how many were right.
    pub fn probabilistic(&self) -> (u64, u64) {
        self.sources
            .iter()
            .filter_map(|s| s.by_pass.get(PROBABILISTIC))
            .fold((0, 0), |(a, b), (l, c)| (a + l, b + c))
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<18} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
            "source",
            "true pairs",
            "identif.",
            "linked",
            "correct",
            "precision",
            "recall",
            "rec ident"
        )?;
        let line = |f: &mut fmt::Formatter<'_>, name: &str, c: &Counts| {
            writeln!(
                f,
                "{:<18} {:>10} {:>10} {:>10} {:>10} {:>8.3}% {:>8.3}% {:>8.3}%",
                name,
                c.true_pairs,
                c.identifiable,
                c.linked,
                c.correct,
                100.0 * c.precision(),
                100.0 * c.recall(),
                100.0 * c.recall_identifiable()
            )
        };
        for s in &self.sources {
            line(f, &s.source, &s.counts)?;
        }
        line(f, "all", &self.overall())?;
        let (l, c) = self.probabilistic();
        write!(
            f,
            "probabilistic links (evidence sources): {l} ({c} correct); person keys merging two generated people: {}",
            self.merged_keys
        )?;
        if self.misses.is_empty() {
            return Ok(());
        }
        // The largest patterns first; the rest summed on one line.
        let mut patterns: Vec<(&MissPattern, u64)> = self
            .misses
            .iter()
            .map(|(p, by)| (p, by.values().sum()))
            .collect();
        patterns.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let total: u64 = patterns.iter().map(|p| p.1).sum();
        write!(
            f,
            "\nmissed identifiable pairs: {total}, by what the agency row shares with its person's \
             closest participant row (ssn first last dob; = same, ~ near, x differs, - blank):"
        )?;
        const SHOWN: usize = 12;
        for (p, n) in patterns.iter().take(SHOWN) {
            let by: Vec<String> = self.misses[*p]
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect();
            write!(f, "\n  {:<36} {n:>7}   {}", p.to_string(), by.join(", "))?;
        }
        if patterns.len() > SHOWN {
            let rest: u64 = patterns[SHOWN..].iter().map(|p| p.1).sum();
            write!(f, "\n  {} other patterns: {rest}", patterns.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Which identifiers a raw row carries, once normalized: a valid SSN, a usable DOB.
#[derive(Clone, Copy, Debug, Default)]
struct Carries {
    ssn: bool,
    dob: bool,
}

/// One source's truth: the generated person of every file row, what the row carries, and
/// its normalized identifiers (to explain misses; never printed).
struct SourceTruth {
    persons: Vec<i64>,
    carries: Vec<Carries>,
    idents: Vec<IdentityFields>,
}

/// How one field of a missed pair's agency row compares with the participant's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Agree {
    Same,
    /// One SSN digit wrong or two neighbours swapped; a name within two edits, an
    /// initial of the other, or in the other name's column; a DOB with one of day, month
    /// or year wrong, or day and month swapped.
    Near,
    Differs,
    /// Blank on either side.
    Missing,
}

impl Agree {
    fn symbol(self) -> char {
        match self {
            Agree::Same => '=',
            Agree::Near => '~',
            Agree::Differs => 'x',
            Agree::Missing => '-',
        }
    }

    fn weight(self) -> u32 {
        match self {
            Agree::Same => 3,
            Agree::Near => 1,
            _ => 0,
        }
    }
}

/// What a missed pair's agency row shares with its person: SSN, first name, last name and
/// DOB; whether it shares a blocking key with one of the person's participant rows (else
/// the probabilistic pass never compared them); and whether it was linked to someone
/// else instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MissPattern {
    pub fields: [Agree; 4],
    pub no_key: bool,
    pub linked_elsewhere: bool,
}

impl fmt::Display for MissPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in self.fields {
            write!(f, "{}", a.symbol())?;
        }
        if self.no_key {
            f.write_str(" no key")?;
        }
        if self.linked_elsewhere {
            f.write_str(" linked to another person")?;
        }
        Ok(())
    }
}

fn agree_ssn(a: &Option<Ssn>, b: &Option<Ssn>) -> Agree {
    let (Some(a), Some(b)) = (a, b) else {
        return Agree::Missing;
    };
    let (a, b) = (a.digits(), b.digits());
    let diff: Vec<usize> = (0..9).filter(|&i| a[i] != b[i]).collect();
    match diff[..] {
        [] => Agree::Same,
        [_] => Agree::Near,
        [i, j] if j == i + 1 && a[i] == b[j] && a[j] == b[i] => Agree::Near,
        _ => Agree::Differs,
    }
}

fn agree_name(a: &Option<String>, b: &Option<String>, crosswise: &Option<String>) -> Agree {
    let (Some(a), Some(b)) = (a, b) else {
        return Agree::Missing;
    };
    if a == b {
        Agree::Same
    } else if crosswise.as_ref() == Some(a)
        || (a.len() == 1 && b.starts_with(a.as_str()))
        || (b.len() == 1 && a.starts_with(b.as_str()))
        || strsim::damerau_levenshtein(a, b) <= 2
    {
        Agree::Near
    } else {
        Agree::Differs
    }
}

fn agree_dob(a: &Option<NaiveDate>, b: &Option<NaiveDate>) -> Agree {
    use chrono::Datelike;
    let (Some(a), Some(b)) = (a, b) else {
        return Agree::Missing;
    };
    let same = [
        a.year() == b.year(),
        a.month() == b.month(),
        a.day() == b.day(),
    ];
    if a == b {
        Agree::Same
    } else if same.iter().filter(|s| **s).count() == 2
        || (a.year() == b.year() && a.month() == b.day() && a.day() == b.month())
    {
        Agree::Near
    } else {
        Agree::Differs
    }
}

/// The pattern of agency row `row` against the closest of `candidates` (participant rows).
fn miss_pattern(
    row: &IdentityFields,
    candidates: &[&IdentityFields],
    blocker: &Blocker,
    linked_elsewhere: bool,
) -> MissPattern {
    let probes = blocker.probe_keys(row);
    let no_key = !candidates.iter().any(|p| {
        let keys = blocker.keys(p);
        probes.probes().any(|(k, v)| keys.get(k) == Some(v))
    });
    let fields = candidates
        .iter()
        .map(|p| {
            [
                agree_ssn(&row.ssn, &p.ssn),
                agree_name(&row.first, &p.first, &p.last),
                agree_name(&row.last, &p.last, &p.first),
                agree_dob(&row.dob, &p.dob),
            ]
        })
        .max_by_key(|f| f.iter().map(|a| a.weight()).sum::<u32>())
        .unwrap_or([Agree::Missing; 4]);
    MissPattern {
        fields,
        no_key,
        linked_elsewhere,
    }
}

/// Scores run `run_id` of a workspace whose `incoming/` holds a generated state and whose
/// `lake/current` is that run's snapshot (the run just published).
pub fn score(ws: &Workspace, run_id: i64) -> Result<Score, TruthError> {
    let truth_path = ws.incoming_dir().join("truth.parquet");
    if !truth_path.exists() {
        return Err(TruthError::NoTruth { path: truth_path });
    }
    let truth = read(&truth_path)?;
    let sources = strings(&truth, "source", &truth_path)?;
    let persons = primitives::<Int64Type>(&truth, "person_id", &truth_path, -1)?;
    // The truth's record id of a participant row is its `individual_id`.
    let records = strings(&truth, "record_id", &truth_path)?;
    let mut participant_ids = Vec::new();
    let mut by_source: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for ((s, p), r) in sources.into_iter().zip(persons).zip(records) {
        if s == "participants" {
            participant_ids.push(r);
        }
        by_source.entry(s).or_default().push(p);
    }
    let catalog = Catalog::builtin()?;
    let mut truths = BTreeMap::new();
    for (source, persons) in by_source {
        let (carries, idents) = carried(ws, &catalog, &source)?;
        if carries.len() != persons.len() {
            return Err(TruthError::Rows {
                source_name: source,
                truth: persons.len(),
                file: carries.len(),
            });
        }
        truths.insert(
            source,
            SourceTruth {
                persons,
                carries,
                idents,
            },
        );
    }
    let Some(participants) = truths.remove("participants") else {
        return Err(TruthError::NoTruth { path: truth_path });
    };
    // What each generated participant's own records carry, together.
    let mut person_carries: HashMap<i64, Carries> = HashMap::new();
    for (p, c) in participants.persons.iter().zip(&participants.carries) {
        let e = person_carries.entry(*p).or_default();
        e.ssn |= c.ssn;
        e.dob |= c.dob;
    }
    let mut person_rows: HashMap<i64, Vec<&IdentityFields>> = HashMap::new();
    for (p, id) in participants.persons.iter().zip(&participants.idents) {
        person_rows.entry(*p).or_default().push(id);
    }
    let identifiable = |p: i64, c: Carries| {
        person_carries
            .get(&p)
            .is_some_and(|q| (q.ssn && c.ssn) || (q.dob && c.dob))
    };

    let blocker = Blocker::new(ws.load_key()?.bytes());
    let zone = ws.secure_zone()?;
    let secure = zone.root().join("runs").join(run_id.to_string());
    let cw_path = secure.join("crosswalk.parquet");
    let cw = zone.parquet(&cw_path, None)?;
    let participant_of: HashMap<String, i64> = participant_ids
        .into_iter()
        .zip(participants.persons.iter().copied())
        .collect();
    let mut key_people: HashMap<String, HashSet<i64>> = HashMap::new();
    for (id, key) in strings(&cw, "individual_id", &cw_path)?
        .into_iter()
        .zip(strings(&cw, "person_key", &cw_path)?)
    {
        if let Some(p) = participant_of.get(&id) {
            key_people.entry(key).or_default().insert(*p);
        }
    }
    let merged_keys = key_people.values().filter(|s| s.len() > 1).count() as u64;

    let mut out = Score {
        merged_keys,
        ..Score::default()
    };
    for (source, t) in &truths {
        let rejected = rejected_rows(&zone, &secure.join(format!("rejects/{source}.csv")))?;
        let mut s = SourceScore {
            source: source.clone(),
            rejected: rejected.len() as u64,
            ..SourceScore::default()
        };
        // Per file row: an identifiable true pair, whose miss is explained below.
        let mut wanted = vec![false; t.persons.len()];
        for (i, (&p, &c)) in t.persons.iter().zip(&t.carries).enumerate() {
            if person_carries.contains_key(&p) && !rejected.contains(&(i as u64 + 1)) {
                s.counts.true_pairs += 1;
                wanted[i] = identifiable(p, c);
                s.counts.identifiable += wanted[i] as u64;
            }
        }
        // Rows not linked to their person, and whether linked to someone else; the
        // identifiable true pairs among them are explained.
        let missed: Vec<(usize, bool)> = if source == "ui_wages" {
            wage_links(ws, t, &key_people, &identifiable, &mut s)?
        } else {
            let matches = secure.join(format!("matches/{source}.parquet"));
            if !matches.exists() {
                continue;
            }
            let m = zone.parquet(&matches, None)?;
            let rows = primitives::<UInt64Type>(&m, "row", &matches, 0)?;
            let keys = strings(&m, "person_key", &matches)?;
            let passes = strings(&m, "match_pass", &matches)?;
            // Per file row: None unlinked, Some(right person).
            let mut outcome: Vec<Option<bool>> = vec![None; t.persons.len()];
            for ((row, key), pass) in rows.iter().zip(&keys).zip(&passes) {
                let i = (*row as usize).wrapping_sub(1);
                let (ok, ident) = match (t.persons.get(i), t.carries.get(i)) {
                    (Some(&p), Some(&c)) => (
                        key_people.get(key).is_some_and(|s| s.contains(&p)),
                        identifiable(p, c),
                    ),
                    _ => (false, false),
                };
                s.counts.linked += 1;
                s.counts.correct += ok as u64;
                s.counts.correct_identifiable += (ok && ident) as u64;
                let e = s.by_pass.entry(pass.clone()).or_default();
                e.0 += 1;
                e.1 += ok as u64;
                if let Some(o) = outcome.get_mut(i) {
                    *o = Some(o.unwrap_or(false) || ok);
                }
            }
            (0..t.persons.len())
                .filter(|&i| outcome[i] != Some(true))
                .map(|i| (i, outcome[i].is_some()))
                .collect()
        };
        for (i, elsewhere) in missed {
            if !wanted[i] {
                continue;
            }
            let rows = person_rows
                .get(&t.persons[i])
                .map(Vec::as_slice)
                .unwrap_or_default();
            let pattern = miss_pattern(&t.idents[i], rows, &blocker, elsewhere);
            *out.misses
                .entry(pattern)
                .or_default()
                .entry(source.clone())
                .or_default() += 1;
        }
        out.sources.push(s);
    }
    Ok(out)
}

/// What every row of a raw source file carries, and its normalized identifiers, in file
/// order.
fn carried(
    ws: &Workspace,
    catalog: &Catalog,
    source: &str,
) -> Result<(Vec<Carries>, Vec<IdentityFields>), TruthError> {
    let schema = catalog.source(source)?;
    let path = ws.incoming_dir().join(format!("{source}.parquet"));
    let batches = read(&path)?;
    let column = |role| -> Result<Option<Vec<String>>, TruthError> {
        schema
            .identity_column(role)
            .map(|c| strings(&batches, &c.name, &path))
            .transpose()
    };
    let (ssns, dobs) = (column(IdentityRole::Ssn)?, column(IdentityRole::Dob)?);
    let (firsts, lasts) = (
        column(IdentityRole::FirstName)?,
        column(IdentityRole::LastName)?,
    );
    let zips = column(IdentityRole::Zip)?;
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    let today = chrono::Utc::now().date_naive();
    fn value(c: &Option<Vec<String>>, i: usize) -> Option<&str> {
        c.as_ref().map(|v| v[i].as_str()).filter(|s| !s.is_empty())
    }
    Ok((0..n)
        .map(|i| {
            let raw = RawIdentity {
                ssn: value(&ssns, i),
                dob: value(&dobs, i),
                first: value(&firsts, i),
                last: value(&lasts, i),
                zip: value(&zips, i),
                ..RawIdentity::default()
            };
            let (f, _) = normalize_record(raw, today);
            let carries = Carries {
                ssn: f.ssn.is_some(),
                dob: f.dob.is_some(),
            };
            (carries, f)
        })
        .unzip())
}

/// Row numbers (1-based) of the rows ingest rejected.
fn rejected_rows(zone: &SecureZone, path: &Path) -> Result<HashSet<u64>, TruthError> {
    if !path.exists() {
        return Ok(HashSet::new());
    }
    let io = |e: csv::Error| TruthError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    };
    let text = zone.read(path)?;
    let mut r = csv::Reader::from_reader(text.as_slice());
    let col = r
        .headers()
        .map_err(io)?
        .iter()
        .position(|c| c == "row")
        .ok_or_else(|| missing(path, "row"))?;
    let mut out = HashSet::new();
    for rec in r.records() {
        let rec = rec.map_err(io)?;
        if let Some(n) = rec.get(col).and_then(|v| v.parse().ok()) {
            out.insert(n);
        }
    }
    Ok(out)
}

/// Counts the published wage links of `s`'s source (see the module documentation).
fn wage_links(
    ws: &Workspace,
    t: &SourceTruth,
    key_people: &HashMap<String, HashSet<i64>>,
    identifiable: &dyn Fn(i64, Carries) -> bool,
    s: &mut SourceScore,
) -> Result<Vec<(usize, bool)>, TruthError> {
    let path = ws.incoming_dir().join("ui_wages.parquet");
    let batches = read(&path)?;
    let employers = strings(&batches, "employer_id", &path)?;
    let quarters = strings(&batches, "year_quarter", &path)?;
    let cents = decimal_cents(&batches, "wages", &path)?;
    let key = Tokenizer::new(ws.load_key()?.bytes(), "truth");
    let mut token_of: HashMap<&str, String> = HashMap::new();
    // (employer token, quarter, cents) → the generated people with such a row, and
    // each such row's number and whether it is identifiable.
    type Group = (String, String, i128);
    let mut truth: HashMap<Group, HashMap<i64, Vec<(usize, bool)>>> = HashMap::new();
    for (i, (&p, &c)) in t.persons.iter().zip(&t.carries).enumerate() {
        let (e, q, Some(amount)) = (&employers[i], &quarters[i], cents[i]) else {
            continue;
        };
        let tok = token_of
            .entry(e.as_str())
            .or_insert_with(|| hex::encode(key.employer_token(e)))
            .clone();
        truth
            .entry((tok, q.clone(), amount))
            .or_default()
            .entry(p)
            .or_default()
            .push((i, identifiable(p, c)));
    }
    let lake = ws.lake_dir().join("current").join("quarterly_wages");
    for file in parquet_files(&lake)? {
        let quarter = file
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("year_quarter="))
            .unwrap_or_default()
            .to_string();
        let b = read(&file)?;
        let keys = strings(&b, "person_key", &file)?;
        let tokens = strings(&b, "employer_token", &file)?;
        let amounts = decimal_cents(&b, "wages", &file)?;
        for ((k, tok), amount) in keys.into_iter().zip(tokens).zip(amounts) {
            s.counts.linked += 1;
            let Some(amount) = amount else { continue };
            // Each generated person of a group is matched by one link at most.
            let Some(people) = truth.get_mut(&(tok, quarter.clone(), amount)) else {
                continue;
            };
            let hit = people
                .keys()
                .copied()
                .find(|p| key_people.get(&k).is_some_and(|set| set.contains(p)));
            if let Some(p) = hit {
                // The identifiable row first, as before rows were kept one by one.
                let rows = people.get_mut(&p).expect("found above");
                let at = rows.iter().position(|r| r.1).unwrap_or(0);
                let (_, ident) = rows.swap_remove(at);
                if rows.is_empty() {
                    people.remove(&p);
                }
                s.counts.correct += 1;
                s.counts.correct_identifiable += ident as u64;
            }
        }
    }
    // What is left of identifiable pairs was missed. Whether a wage row went to someone
    // else is not known here (wage links keep no row number), so it counts as unlinked.
    let mut missed: Vec<(usize, bool)> = truth
        .into_values()
        .flat_map(|people| people.into_values().flatten())
        .filter(|r| r.1)
        .map(|(i, _)| (i, false))
        .collect();
    missed.sort_unstable();
    Ok(missed)
}

fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, TruthError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| TruthError::Io {
            path: d.clone(),
            source,
        })?;
        for e in entries {
            let p = e
                .map_err(|source| TruthError::Io {
                    path: d.clone(),
                    source,
                })?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<RecordBatch>, TruthError> {
    let file = File::open(path).map_err(|source| TruthError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let pq = |source| TruthError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .build()
        .map_err(pq)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pq(e.into()))
}

fn missing(path: &Path, column: &str) -> TruthError {
    TruthError::Column {
        path: path.to_path_buf(),
        column: column.to_string(),
    }
}

/// A string column, nulls as empty strings.
fn strings(batches: &[RecordBatch], column: &str, path: &Path) -> Result<Vec<String>, TruthError> {
    let mut out = Vec::new();
    for b in batches {
        let a = b
            .column_by_name(column)
            .ok_or_else(|| missing(path, column))?;
        let a = arrow::compute::cast(a, &DataType::Utf8).map_err(|_| missing(path, column))?;
        let a = a.as_string::<i32>();
        out.extend((0..a.len()).map(|i| {
            if a.is_null(i) {
                String::new()
            } else {
                a.value(i).to_string()
            }
        }));
    }
    Ok(out)
}

/// A primitive column, nulls as `null`.
fn primitives<T: ArrowPrimitiveType>(
    batches: &[RecordBatch],
    column: &str,
    path: &Path,
    null: T::Native,
) -> Result<Vec<T::Native>, TruthError> {
    let mut out = Vec::new();
    for b in batches {
        let a = b
            .column_by_name(column)
            .and_then(|a| a.as_primitive_opt::<T>())
            .ok_or_else(|| missing(path, column))?;
        out.extend(a.iter().map(|v| v.unwrap_or(null)));
    }
    Ok(out)
}

/// A money column in cents, whatever its decimal scale.
fn decimal_cents(
    batches: &[RecordBatch],
    column: &str,
    path: &Path,
) -> Result<Vec<Option<i128>>, TruthError> {
    let mut out = Vec::new();
    for b in batches {
        let a = b
            .column_by_name(column)
            .ok_or_else(|| missing(path, column))?;
        match a.data_type() {
            DataType::Decimal128(_, scale) => {
                let shift = 2 - *scale as i32;
                let a = a.as_primitive::<Decimal128Type>();
                out.extend(a.iter().map(|v| {
                    v.map(|v| {
                        if shift >= 0 {
                            v * 10i128.pow(shift as u32)
                        } else {
                            v / 10i128.pow((-shift) as u32)
                        }
                    })
                }));
            }
            _ => return Err(missing(path, column)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ssn;

    fn ident(s: &str, first: &str, last: &str, dob: (i32, u32, u32)) -> IdentityFields {
        let name = |n: &str| (!n.is_empty()).then(|| n.to_string());
        IdentityFields {
            ssn: ssn::normalize(s).ok(),
            first: name(first),
            last: name(last),
            dob: NaiveDate::from_ymd_opt(dob.0, dob.1, dob.2),
            ..IdentityFields::default()
        }
    }

    #[test]
    fn miss_patterns_name_what_differs_and_whether_a_key_is_shared() {
        let blocker = Blocker::new(&[3; 32]);
        let person = ident("212-67-4431", "MARGARET", "WILLIAMSON", (1979, 3, 14));
        let pattern = |row: &IdentityFields| {
            let p = miss_pattern(row, &[&person], &blocker, false);
            (p.to_string(), p.no_key)
        };
        // Adjacent digits swapped, an initial, a one-letter typo, a wrong day.
        // The SSN window without digits 3-5 and the initials are still shared.
        let near = ident("212-76-4431", "M", "WILLIAMSEN", (1979, 3, 15));
        assert_eq!(pattern(&near), ("~~~~".to_string(), false));
        // Names crosswise are near; a blank first name is `-`; the SSN windows with the
        // initials are shared, so the pass had the pair.
        let crossed = ident("212-67-4481", "WILLIAMSON", "MARGARET", (1979, 3, 14));
        assert_eq!(pattern(&crossed), ("~~~=".to_string(), false));
        let blank = ident("212-67-4431", "", "WILLIAMSON", (1979, 3, 14));
        assert_eq!(pattern(&blank).0, "=-==");
        let other = ident("530-18-9902", "DWAYNE", "OKAFOR", (1961, 11, 29));
        assert_eq!(pattern(&other), ("xxxx no key".to_string(), true));
        // The closest of several participant rows is the one compared.
        let older = ident("530-18-9902", "DWAYNE", "OKAFOR", (1961, 11, 29));
        let p = miss_pattern(&other, &[&person, &older], &blocker, true);
        assert_eq!(p.to_string(), "==== linked to another person");
    }
}
