//! Breach-impact queries: who was exposed, which PII, by when it must be reported.
//!
//! Ohio WIOAPL 15-07.1 (and TEGL 39-11) require a suspected PII breach to be reported
//! within 24 hours, so the answer to "who and what" has to come in seconds from what
//! xmatch already records: the lineage of every file it wrote (with the set of internal
//! person ids each held, kept after the file is gone), the registry, and the current
//! de-identified snapshot for programs and local areas.
//!
//! The answer never holds an SSN, name or date of birth: persons are `person_key`s, and
//! only with `identify` (and a recorded reason) also the temporary IDs and
//! case-management IDs the secure zone's crosswalk links them to. Every question is
//! written to `audit_log`.

pub mod bitmap;
pub mod files;
mod render;
pub mod tokens;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arrow::array::{Array, AsArray};
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use crate::identity::token::Tokenizer;
use crate::lake::{ColumnMeta, PersonSet, Zone};
use crate::schema::{Catalog, PiiClass};
use crate::store::{AuditEntry, LineageFilter, LineageMeta, Store};
use crate::workspace::Workspace;
use bitmap::Bitmap;

pub use render::{csv as render_csv, json as render_json};

/// The program flags of the participants dataset, in report order.
pub const PROGRAMS: [&str; 7] = [
    "adult",
    "dislocated_worker",
    "youth",
    "wagner_peyser",
    "snap_et",
    "ndwg",
    "taa",
];

/// The bucket for persons the current participants dataset does not hold (e.g. persons
/// known only from another source, or merged away since).
pub const UNKNOWN: &str = "unknown";

/// Above this many affected persons, person keys are read by id ranges instead of by id
/// lists.
const KEYS_BY_ID_LIMIT: usize = 20_000;

/// Ids per range when many person keys are read (a multiple of 64).
const KEY_RANGE: i64 = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum BreachError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error(transparent)]
    Secure(#[from] crate::secure::SecureError),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {problem}", path.display())]
    Read { path: PathBuf, problem: String },
    #[error("lineage row {id}: person set: {source}")]
    PersonSet {
        id: i64,
        #[source]
        source: crate::lake::PersonSetError,
    },
    #[error("`{0}` is not a SHA-256 (64 hex digits)")]
    BadSha256(String),
    #[error("the window is empty: --from must be before --to")]
    EmptyWindow,
    #[error("--identify needs --reason: every use of identifying output is audited with why")]
    ReasonRequired,
    #[error(
        "the key file {} (id {file}) does not belong to this store (id {store}): tokens would never match",
        path.display()
    )]
    KeyMismatch {
        path: PathBuf,
        store: String,
        file: String,
    },
}

/// What was exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A copy of a file found somewhere (a laptop, a share).
    File { path: PathBuf },
    /// A file known only by its hash.
    Sha256(String),
    /// Every file of a dataset, across runs (`matches` also covers `matches/<source>`).
    Dataset(String),
    /// Every file a run wrote.
    Run(i64),
    /// Every file written in `[from, to)`: a system compromised during a time window.
    Window {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// A partner's file of SSNs or SSN tokens under the shared key.
    Tokens { path: PathBuf },
}

impl Query {
    fn kind(&self) -> &'static str {
        match self {
            Query::File { .. } => "file",
            Query::Sha256(_) => "sha256",
            Query::Dataset(_) => "dataset",
            Query::Run(_) => "run",
            Query::Window { .. } => "window",
            Query::Tokens { .. } => "tokens",
        }
    }

    /// A one-line description for the report and the audit log (paths and hashes only).
    pub fn describe(&self) -> String {
        match self {
            Query::File { path } => format!("file {}", path.display()),
            Query::Sha256(h) => format!("sha256 {}", h.to_ascii_lowercase()),
            Query::Dataset(d) => format!("dataset {d}"),
            Query::Run(r) => format!("run {r}"),
            Query::Window { from, to } => format!(
                "window {} to {}",
                from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Query::Tokens { path } => format!("tokens {}", path.display()),
        }
    }
}

/// How to answer.
#[derive(Debug, Clone)]
pub struct Options {
    /// When the breach was discovered: the 24-hour reporting clock starts here.
    pub discovered_at: DateTime<Utc>,
    /// Add temporary IDs and case-management IDs to the notification list.
    pub identify: bool,
    /// Why (required with `identify`; recorded in the audit log either way).
    pub reason: Option<String>,
    /// Who asks (the OS user for the CLI).
    pub actor: String,
}

impl Options {
    pub fn new(discovered_at: DateTime<Utc>) -> Options {
        Options {
            discovered_at,
            identify: false,
            reason: None,
            actor: current_user(),
        }
    }
}

/// The OS user running the command, for the audit log.
pub fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// What an exposed file turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum FileCheck {
    /// Its SHA-256 is in the lineage: the answer comes from the lineage.
    Recorded,
    /// A file xmatch wrote under this path, but the bytes differ from what was recorded:
    /// a tampered or partial copy. The answer comes from the file's own contents.
    Tampered { recorded_sha256: Vec<String> },
    /// Not in the lineage by hash or path, but it holds person keys.
    NotWrittenByXmatch,
    /// Not in the lineage and nothing in it names a person xmatch knows.
    Unknown,
}

/// One lineage file in the answer.
#[derive(Debug, Clone, Serialize)]
pub struct ExposedFile {
    pub run_id: i64,
    pub zone: Zone,
    pub dataset: String,
    pub path: String,
    pub sha256: String,
    pub rows: u64,
    pub person_count: u64,
    pub written_at: DateTime<Utc>,
    pub purged: bool,
    pub purged_at: Option<DateTime<Utc>>,
}

/// Persons exposed in one sensitive category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    pub category: String,
    /// 1 = most severe (`schemas/sensitivity.toml`).
    pub rank: usize,
    pub persons: u64,
}

/// What a tokens file held.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenStats {
    pub lines: u64,
    pub ssn_lines: u64,
    pub token_lines: u64,
    pub distinct: u64,
    pub unusable: u64,
    pub unusable_by_reason: BTreeMap<String, u64>,
    pub unusable_lines: Vec<u64>,
    /// Usable identifiers no person in the registry holds.
    pub not_found: u64,
}

/// One person to notify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub person_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temp_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub individual_ids: Option<Vec<String>>,
}

/// The answer to a breach question.
#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub query: String,
    pub discovered_at: DateTime<Utc>,
    /// `discovered_at` + 24 hours (Ohio WIOAPL 15-07.1, section E.11).
    pub report_deadline: DateTime<Utc>,
    /// For `--file`: what the file is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_check: Option<FileCheck>,
    /// For `--file` read from its contents: its format, rows and columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_format: Option<String>,
    /// Plain-language findings (what the file is, what could not be used).
    pub notes: Vec<String>,
    pub files: Vec<ExposedFile>,
    /// Distinct surviving persons (merged persons counted once).
    pub persons: u64,
    /// Person keys in an exposed file that the registry does not know.
    pub unknown_person_keys: u64,
    /// Persons per program flag of the current participants dataset (a person in two
    /// programs counts in both); `none` = no flag set, `unknown` = not in that dataset.
    pub by_program: BTreeMap<String, u64>,
    /// Persons per local area (a person with periods in two areas counts in both).
    pub by_local_area: BTreeMap<String, u64>,
    /// Persons per sensitive category, most severe first.
    pub by_category: Vec<CategoryCount>,
    /// PII class → the exposed columns of that class.
    pub pii_classes: BTreeMap<String, BTreeSet<String>>,
    pub highest_category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenStats>,
    pub identified: bool,
    /// The secure run whose crosswalk supplied the identifiers (with `identify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crosswalk_run: Option<i64>,
    pub notification: Vec<Notice>,
}

/// Parses a time for `--from`/`--to`/`--discovered-at`: RFC 3339, or a UTC date or
/// date-time without offset (`2025-06-30`, `2025-06-30T14:00:00`).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2025-06-30T14:00:00Z) or a UTC date (2025-06-30)"
    ))
}

/// Persons gathered so far: every id (as recorded, merges not yet followed), and per
/// sensitive category the ids of files that carry it.
#[derive(Default)]
struct Exposure {
    by_categories: BTreeMap<Vec<String>, Bitmap>,
    all: Bitmap,
    categories: BTreeMap<String, Bitmap>,
    classes: BTreeMap<String, BTreeSet<String>>,
}

impl Exposure {
    fn add_columns(&mut self, columns: &[ColumnMeta]) {
        for c in columns {
            if c.pii != PiiClass::None {
                self.classes
                    .entry(c.pii.as_str().to_string())
                    .or_default()
                    .insert(c.name.clone());
            }
        }
    }

    fn categories_of(columns: &[ColumnMeta]) -> BTreeSet<String> {
        columns.iter().filter_map(|c| c.sensitive.clone()).collect()
    }

    /// Adds `ids` as exposed with `columns`; with `only`, just the ids in it. Ids go into
    /// one bitmap per set of categories (a dataset's files share one), not into one per
    /// category: one bit-set per id, the per-category unions are word-wise ORs in `finish`.
    fn add(&mut self, ids: &[i64], columns: &[ColumnMeta], only: Option<&Bitmap>) {
        self.add_columns(columns);
        let cats: Vec<String> = Self::categories_of(columns).into_iter().collect();
        let target = self.by_categories.entry(cats).or_default();
        match only {
            None => ids.iter().for_each(|&id| target.insert(id)),
            Some(o) => ids
                .iter()
                .filter(|&&id| o.contains(id))
                .for_each(|&id| target.insert(id)),
        }
    }

    /// Adds the persons of an encoded set (`PersonSet::encode`) exposed with `columns`
    /// (whose categories are `cats`), decoding straight into the bitmap.
    fn add_encoded(
        &mut self,
        blob: &[u8],
        cats: Vec<String>,
        columns: &[ColumnMeta],
    ) -> Result<(), crate::lake::PersonSetError> {
        self.add_columns(columns);
        let target = self.by_categories.entry(cats).or_default();
        PersonSet::decode_each(blob, |id| target.insert(id))
    }

    /// Builds `all` and the per-category bitmaps.
    fn finish(&mut self) {
        for (cats, b) in &self.by_categories {
            self.all.union_with(b);
            for c in cats {
                self.categories.entry(c.clone()).or_default().union_with(b);
            }
        }
    }
}

/// Follows merge pointers to the surviving person.
struct Survivors {
    into: HashMap<i64, i64>,
}

impl Survivors {
    async fn load(store: &Store) -> Result<Survivors, BreachError> {
        Ok(Survivors {
            into: store.merge_pointers().await?.into_iter().collect(),
        })
    }

    fn survivor(&self, mut id: i64) -> i64 {
        // Bounded: a pointer cycle (which the registry never writes) cannot hang a query.
        for _ in 0..64 {
            match self.into.get(&id) {
                Some(&next) if next != id => id = next,
                _ => break,
            }
        }
        id
    }

    /// Replaces every merged id in `b` by its survivor.
    fn apply(&self, b: &mut Bitmap) {
        for &from in self.into.keys() {
            if b.contains(from) {
                b.remove(from);
                b.insert(self.survivor(from));
            }
        }
    }

    /// Every id whose survivor is in `survivors` (the survivors included).
    fn with_merged(&self, survivors: &Bitmap) -> Bitmap {
        let mut out = survivors.clone();
        for &from in self.into.keys() {
            if survivors.contains(self.survivor(from)) {
                out.insert(from);
            }
        }
        out
    }
}

fn exposed(f: &LineageMeta) -> ExposedFile {
    ExposedFile {
        run_id: f.run_id,
        zone: f.zone,
        dataset: f.dataset.clone(),
        path: f.path.clone(),
        sha256: f.sha256.clone(),
        rows: f.rows,
        person_count: f.person_count,
        written_at: f.written_at,
        purged: f.purged_at.is_some(),
        purged_at: f.purged_at,
    }
}

/// Answers a breach question and records it in the audit log.
pub async fn assess(
    ws: &Workspace,
    store: &Store,
    catalog: &Catalog,
    query: &Query,
    opts: &Options,
) -> Result<Impact, BreachError> {
    let reason = opts
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if opts.identify && reason.is_none() {
        return Err(BreachError::ReasonRequired);
    }
    let mut impact = Impact {
        query: query.describe(),
        discovered_at: opts.discovered_at,
        report_deadline: opts.discovered_at + Duration::hours(24),
        file_check: None,
        file_format: None,
        notes: Vec::new(),
        files: Vec::new(),
        persons: 0,
        unknown_person_keys: 0,
        by_program: BTreeMap::new(),
        by_local_area: BTreeMap::new(),
        by_category: Vec::new(),
        pii_classes: BTreeMap::new(),
        highest_category: None,
        tokens: None,
        identified: false,
        crosswalk_run: None,
        notification: Vec::new(),
    };
    let clock = std::time::Instant::now();
    let lap = |phase: &str| {
        tracing::debug!(
            phase,
            elapsed_ms = clock.elapsed().as_millis() as u64,
            "breach"
        )
    };
    let survivors = Survivors::load(store).await?;
    let mut exposure = Exposure::default();

    match query {
        Query::Sha256(hex) => {
            let hex = hex.trim().to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BreachError::BadSha256(hex));
            }
            let files = store.lineage_meta(&LineageFilter::Sha256(&hex)).await?;
            if files.is_empty() {
                impact
                    .notes
                    .push("no file with this SHA-256 was ever written by xmatch".into());
            }
            from_lineage(store, &files, &mut exposure, None, &mut impact).await?;
        }
        Query::File { path } => {
            // Without a usable key a sealed copy is simply unreadable content, not an error.
            let zone = ws.secure_zone().ok();
            assess_file(
                store,
                catalog,
                zone.as_ref(),
                path,
                &mut exposure,
                &mut impact,
            )
            .await?;
        }
        Query::Dataset(name) => {
            let files = store.lineage_meta(&LineageFilter::Dataset(name)).await?;
            if files.is_empty() {
                impact
                    .notes
                    .push(format!("no lineage records for dataset `{name}`"));
            }
            from_lineage(store, &files, &mut exposure, None, &mut impact).await?;
        }
        Query::Run(run) => {
            let files = store.lineage_meta(&LineageFilter::Run(*run)).await?;
            if files.is_empty() {
                impact
                    .notes
                    .push(format!("no lineage records for run {run}"));
            }
            from_lineage(store, &files, &mut exposure, None, &mut impact).await?;
        }
        Query::Window { from, to } => {
            if from >= to {
                return Err(BreachError::EmptyWindow);
            }
            let files = store
                .lineage_meta(&LineageFilter::Window(*from, *to))
                .await?;
            if files.is_empty() {
                impact
                    .notes
                    .push("no file was written in this window".into());
            }
            from_lineage(store, &files, &mut exposure, None, &mut impact).await?;
        }
        Query::Tokens { path } => {
            assess_tokens(ws, store, path, &survivors, &mut exposure, &mut impact).await?;
        }
    }

    lap("persons gathered");
    // Merged persons count once, under their survivor.
    exposure.finish();
    survivors.apply(&mut exposure.all);
    for b in exposure.categories.values_mut() {
        survivors.apply(b);
    }
    impact.persons = exposure.all.len() as u64;
    impact.pii_classes = std::mem::take(&mut exposure.classes);
    let mut cats: Vec<CategoryCount> = exposure
        .categories
        .iter()
        .filter(|(_, b)| !b.is_empty() || impact.persons == 0)
        .map(|(name, b)| CategoryCount {
            category: name.clone(),
            rank: catalog.category(name).map_or(usize::MAX, |c| c.rank),
            persons: b.len() as u64,
        })
        .collect();
    cats.sort_by(|a, b| (a.rank, &a.category).cmp(&(b.rank, &b.category)));
    impact.highest_category = catalog
        .most_severe(cats.iter().map(|c| c.category.as_str()))
        .map(|c| c.name.clone());
    impact.by_category = cats;

    lap("merges followed");
    // Person keys, in key order.
    let ids: Vec<i64> = exposure.all.iter().collect();
    let mut keys: Vec<(i64, String)> = if ids.len() > KEYS_BY_ID_LIMIT {
        // By id ranges (skipping ranges with nobody affected), one aggregated row each.
        let mut keys = Vec::with_capacity(ids.len());
        let mut lo = 0;
        while lo < exposure.all.end() {
            let hi = lo + KEY_RANGE;
            if exposure.all.any_between(lo, hi) {
                keys.extend(
                    store
                        .person_keys_between(lo, hi)
                        .await?
                        .into_iter()
                        .filter(|(id, _)| exposure.all.contains(*id)),
                );
            }
            lo = hi;
        }
        keys
    } else {
        store.person_keys_of(&ids).await?
    };
    keys.sort_by(|a, b| a.1.cmp(&b.1));
    let index: HashMap<String, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, (_, k))| (k.clone(), i))
        .collect();
    lap("person keys");
    breakdown(ws, &index, &mut impact)?;
    impact.notification = keys
        .into_iter()
        .map(|(_, person_key)| Notice {
            person_key,
            temp_ids: None,
            individual_ids: None,
        })
        .collect();

    lap("programs and areas");
    if opts.identify {
        let (run, ids) = files::crosswalk(&ws.secure_zone()?, &index)?;
        impact.identified = true;
        impact.crosswalk_run = run;
        if run.is_none() {
            impact.notes.push(
                "the secure zone holds no crosswalk: no temporary or case-management IDs".into(),
            );
        }
        for (i, n) in impact.notification.iter_mut().enumerate() {
            let found = ids.get(&i).cloned().unwrap_or_default();
            n.temp_ids = Some(found.temp_ids.into_iter().collect());
            n.individual_ids = Some(found.individual_ids.into_iter().collect());
        }
    }

    let detail = serde_json::json!({
        "query": query.kind(),
        "target": impact.query,
        "discovered_at": impact.discovered_at,
        "files": impact.files.len(),
        "persons": impact.persons,
        "highest_category": impact.highest_category,
        "identify": opts.identify,
        "crosswalk_run": impact.crosswalk_run,
    });
    store
        .record_audit(&AuditEntry {
            actor: opts.actor.clone(),
            action: if opts.identify {
                "breach_identify".into()
            } else {
                "breach".into()
            },
            reason: reason.map(str::to_string),
            detail,
        })
        .await?;
    Ok(impact)
}

/// The person set last read for a zone and path: its bytes, its categories, and whether it
/// named anyone wanted.
type LastSet = (Vec<u8>, Vec<String>, bool);

/// Adds lineage files and their persons (those in `only`, if given).
///
/// A file's person set is often the same night after night (a closed program year, an old
/// wage quarter): a set whose bytes equal the last one read for the same zone and path,
/// going to the same categories, adds nobody new and names the same persons of `only`, so
/// it is not decoded again.
async fn from_lineage(
    store: &Store,
    files: &[LineageMeta],
    exposure: &mut Exposure,
    only: Option<&Bitmap>,
    impact: &mut Impact,
) -> Result<(), BreachError> {
    // Per zone and path: the last set read, its categories, and whether it named anyone
    // in `only` (always, without `only`).
    let mut last: HashMap<(Zone, &str), LastSet> = HashMap::new();
    for f in files {
        let blob = store.lineage_persons(f.id).await?;
        let cats: Vec<String> = Exposure::categories_of(&f.columns).into_iter().collect();
        let key = (f.zone, f.path.as_str());
        let named = match last.get(&key) {
            Some((b, c, named)) if *b == blob && *c == cats => {
                if *named {
                    exposure.add_columns(&f.columns);
                }
                *named
            }
            _ => {
                let bad = |source| BreachError::PersonSet { id: f.id, source };
                let named = match only {
                    None => {
                        exposure
                            .add_encoded(&blob, cats.clone(), &f.columns)
                            .map_err(bad)?;
                        true
                    }
                    Some(only) => {
                        let mut ids = Vec::new();
                        PersonSet::decode_each(&blob, |id| {
                            if only.contains(id) {
                                ids.push(id);
                            }
                        })
                        .map_err(bad)?;
                        if !ids.is_empty() {
                            exposure.add(&ids, &f.columns, None);
                        }
                        !ids.is_empty()
                    }
                };
                last.insert(key, (blob, cats, named));
                named
            }
        };
        if named {
            impact.files.push(exposed(f));
        }
    }
    let purged = impact.files.iter().filter(|f| f.purged).count();
    if purged > 0 {
        impact.notes.push(format!(
            "{purged} of the files are purged from disk; their persons come from the lineage"
        ));
    }
    Ok(())
}

/// `--file`: by hash if lineage knows the bytes, else from the file's own contents.
async fn assess_file(
    store: &Store,
    catalog: &Catalog,
    zone: Option<&crate::secure::SecureZone>,
    path: &Path,
    exposure: &mut Exposure,
    impact: &mut Impact,
) -> Result<(), BreachError> {
    let sha = crate::ingest::sha256_file(path).map_err(|e| BreachError::Read {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    let by_hash = store.lineage_meta(&LineageFilter::Sha256(&sha)).await?;
    if !by_hash.is_empty() {
        impact.file_check = Some(FileCheck::Recorded);
        impact.notes.push(format!(
            "the file's SHA-256 {sha} is in the lineage ({} record(s))",
            by_hash.len()
        ));
        return from_lineage(store, &by_hash, exposure, None, impact).await;
    }

    // Same path (suffix) as a file xmatch wrote, different bytes?
    let recorded: Vec<LineageMeta> = match path.file_name().and_then(|n| n.to_str()) {
        Some(name) => store
            .lineage_meta(&LineageFilter::FileName(name))
            .await?
            .into_iter()
            .filter(|f| path_ends_with(path, Path::new(&f.path)))
            .collect(),
        None => Vec::new(),
    };
    // The longest matching recorded path is the best guess of what the copy was.
    let best = recorded
        .iter()
        .map(|f| Path::new(&f.path).components().count())
        .max()
        .unwrap_or(0);
    let recorded: Vec<LineageMeta> = recorded
        .into_iter()
        .filter(|f| Path::new(&f.path).components().count() == best)
        .collect();

    let table = files::read_table(path, zone)?;
    let Some(table) = table else {
        impact.file_check = Some(if recorded.is_empty() {
            FileCheck::Unknown
        } else {
            tampered(&recorded)
        });
        impact.notes.push(if recorded.is_empty() {
            "unknown file: xmatch never wrote it (no lineage record of its SHA-256 or path) \
             and it is neither Parquet nor CSV"
                .into()
        } else {
            tampered_note(&recorded)
                + "; its contents cannot be read as Parquet or CSV (an encrypted secure-zone \
                   file that fails authentication or is under a key this workspace lacks \
                   cannot be read either)"
        });
        return Ok(());
    };
    impact.file_format = Some(format!(
        "{}, {} rows, {} columns",
        table.format,
        table.rows,
        table.columns.len()
    ));

    // Columns: as lineage described them for that path, else as the schemas name them.
    let columns: Vec<ColumnMeta> = table
        .columns
        .iter()
        .map(|name| {
            recorded
                .iter()
                .flat_map(|f| f.columns.iter())
                .find(|c| &c.name == name)
                .cloned()
                .or_else(|| classify_column(catalog, name))
                .unwrap_or_else(|| ColumnMeta::plain(name.clone()))
        })
        .collect();

    // Persons: the file's own person keys, resolved in the registry.
    let distinct: Vec<String> = table
        .person_keys
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known = store.persons_by_key(&distinct).await?;
    impact.unknown_person_keys = (distinct.len() - known.len()) as u64;
    let ids: Vec<i64> = known.iter().map(|(_, id)| *id).collect();
    // Without person keys the columns still say what was exposed, of nobody we can name.
    exposure.add(&ids, &columns, None);

    if !recorded.is_empty() {
        impact.file_check = Some(tampered(&recorded));
        impact.notes.push(
            tampered_note(&recorded) + "; persons and columns below are read from the file itself",
        );
        impact.files = recorded.iter().map(exposed).collect();
    } else if !table.person_keys.is_empty() {
        impact.file_check = Some(FileCheck::NotWrittenByXmatch);
        impact.notes.push(
            "xmatch never wrote this file (no lineage record of its SHA-256 or path), \
             but it holds person keys: persons and columns below are read from the file"
                .into(),
        );
    } else {
        impact.file_check = Some(FileCheck::Unknown);
        impact.notes.push(
            "unknown file: xmatch never wrote it (no lineage record of its SHA-256 or path) \
             and it holds no person keys"
                .into(),
        );
    }
    if impact.unknown_person_keys > 0 {
        impact.notes.push(format!(
            "{} person key(s) in the file are not in the registry",
            impact.unknown_person_keys
        ));
    }
    Ok(())
}

fn tampered(recorded: &[LineageMeta]) -> FileCheck {
    FileCheck::Tampered {
        recorded_sha256: recorded
            .iter()
            .map(|f| f.sha256.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    }
}

fn tampered_note(recorded: &[LineageMeta]) -> String {
    let runs: BTreeSet<i64> = recorded.iter().map(|f| f.run_id).collect();
    format!(
        "contents no longer match the recorded SHA-256 (tampered or partial copy) of `{}` \
         written by run(s) {}",
        recorded[0].path,
        runs.iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Whether `path` ends with the components of `suffix` (relative lineage paths).
fn path_ends_with(path: &Path, suffix: &Path) -> bool {
    let norm = |p: &Path| -> Vec<String> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    let (p, s) = (norm(path), norm(suffix));
    !s.is_empty() && p.len() >= s.len() && p[p.len() - s.len()..] == s[..]
}

/// A column name as the source schemas describe it (the first source that has it), so a
/// stray raw file with an `ssn` or `dob` column is reported as carrying those.
fn classify_column(catalog: &Catalog, name: &str) -> Option<ColumnMeta> {
    catalog
        .sources()
        .find_map(|s| s.column(name))
        .map(ColumnMeta::from)
}

/// `--tokens`: the persons the identifiers name, and every file that holds them.
async fn assess_tokens(
    ws: &Workspace,
    store: &Store,
    path: &Path,
    survivors: &Survivors,
    exposure: &mut Exposure,
    impact: &mut Impact,
) -> Result<(), BreachError> {
    let key = ws.load_key()?;
    if let Some(row) = store.workspace().await?
        && row.key_id != key.id()
    {
        return Err(BreachError::KeyMismatch {
            path: ws.key_path(),
            store: row.key_id,
            file: key.id().to_string(),
        });
    }
    let tokenizer = Tokenizer::new(key.bytes(), key.id());
    drop(key);
    let list = tokens::read(path, &tokenizer)?;
    drop(tokenizer);

    let all: Vec<_> = list.tokens.keys().copied().collect();
    let found = store.persons_by_ssn_token(&all).await?;
    let found_tokens: BTreeSet<_> = found.iter().map(|(t, _)| *t).collect();
    let mut targets = Bitmap::new();
    let mut from_ssn = Bitmap::new();
    let raw = list.from_ssns();
    for (t, id) in &found {
        let s = survivors.survivor(*id);
        targets.insert(s);
        if raw.contains(t) {
            from_ssn.insert(s);
        }
    }
    impact.tokens = Some(TokenStats {
        lines: list.lines,
        ssn_lines: list.ssn_lines,
        token_lines: list.token_lines,
        distinct: list.tokens.len() as u64,
        unusable: list.unusable,
        unusable_by_reason: list.unusable_by_reason.clone(),
        unusable_lines: list.unusable_lines.clone(),
        not_found: (list.tokens.len() - found_tokens.len()) as u64,
    });
    if list.unusable > 0 {
        impact.notes.push(format!(
            "{} line(s) of the tokens file could not be used ({})",
            list.unusable,
            list.unusable_by_reason
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // The partner's file itself exposed these persons' SSNs.
    if !from_ssn.is_empty() {
        exposure.add(
            &from_ssn.iter().collect::<Vec<_>>(),
            &[ColumnMeta::new("ssn", PiiClass::Direct, Some("ssn"))],
            None,
        );
        impact
            .notes
            .push("the tokens file holds raw SSNs: those persons' SSNs are exposed".into());
    }
    // Every person named counts, also one no file holds.
    exposure.add(&targets.iter().collect::<Vec<_>>(), &[], None);
    let raw_ids = survivors.with_merged(&targets);
    let files = store.lineage_meta(&LineageFilter::All).await?;
    from_lineage(store, &files, exposure, Some(&raw_ids), impact).await
}

/// Programs and local areas of the affected persons, from the current participants
/// dataset (`index`: person_key → position in the notification list).
fn breakdown(
    ws: &Workspace,
    index: &HashMap<String, usize>,
    impact: &mut Impact,
) -> Result<(), BreachError> {
    if index.is_empty() {
        return Ok(());
    }
    let mut programs: Vec<u8> = vec![0; index.len()];
    let mut seen: Vec<bool> = vec![false; index.len()];
    // Local areas are few: each name gets a number; a person's first area is kept inline,
    // any further ones (periods in two areas) aside.
    const NO_AREA: u32 = u32::MAX;
    let mut area_names: Vec<String> = Vec::new();
    let mut area_ids: HashMap<String, u32> = HashMap::new();
    let mut first_area: Vec<u32> = vec![NO_AREA; index.len()];
    let mut more_areas: HashMap<usize, BTreeSet<u32>> = HashMap::new();
    if let Some((_, dir)) = crate::lake::current_snapshot(&ws.lake_dir())? {
        let dir = dir.join("participants");
        let mut wanted = vec![files::PERSON_KEY, "local_area"];
        wanted.extend(PROGRAMS);
        files::scan_dataset(&dir, &wanted, |batch| {
            let Some(keys) = files::column_utf8(batch, files::PERSON_KEY, &dir)? else {
                return Ok(());
            };
            let keys = keys.as_string::<i32>();
            let area = files::column_utf8(batch, "local_area", &dir)?;
            let area = area.as_ref().map(|a| a.as_string::<i32>());
            let flags: Vec<Option<Vec<bool>>> = PROGRAMS
                .iter()
                .map(|p| files::column_flags(batch, p, &dir))
                .collect::<Result<_, _>>()?;
            for row in 0..keys.len() {
                if keys.is_null(row) {
                    continue;
                }
                let Some(&i) = index.get(keys.value(row)) else {
                    continue;
                };
                seen[i] = true;
                if let Some(a) = area
                    && !a.is_null(row)
                {
                    let name = a.value(row);
                    let id = match area_ids.get(name) {
                        Some(&id) => id,
                        None => {
                            let id = area_names.len() as u32;
                            area_names.push(name.to_string());
                            area_ids.insert(name.to_string(), id);
                            id
                        }
                    };
                    if first_area[i] == NO_AREA {
                        first_area[i] = id;
                    } else if first_area[i] != id {
                        more_areas.entry(i).or_default().insert(id);
                    }
                }
                for (bit, f) in flags.iter().enumerate() {
                    if let Some(f) = f
                        && f[row]
                    {
                        programs[i] |= 1 << bit;
                    }
                }
            }
            Ok(())
        })?;
    }
    for i in 0..index.len() {
        if !seen[i] {
            *impact.by_program.entry(UNKNOWN.into()).or_default() += 1;
            *impact.by_local_area.entry(UNKNOWN.into()).or_default() += 1;
            continue;
        }
        if programs[i] == 0 {
            *impact.by_program.entry("none".into()).or_default() += 1;
        }
        for (bit, p) in PROGRAMS.iter().enumerate() {
            if programs[i] & (1 << bit) != 0 {
                *impact.by_program.entry(p.to_string()).or_default() += 1;
            }
        }
        if first_area[i] == NO_AREA {
            *impact.by_local_area.entry(UNKNOWN.into()).or_default() += 1;
            continue;
        }
        let mut areas = BTreeSet::from([first_area[i]]);
        if let Some(more) = more_areas.get(&i) {
            areas.extend(more);
        }
        for a in areas {
            *impact
                .by_local_area
                .entry(area_names[a as usize].clone())
                .or_default() += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_the_documented_forms() {
        let t = parse_time("2025-06-30T14:00:00Z").unwrap();
        assert_eq!(parse_time("2025-06-30T14:00:00").unwrap(), t);
        assert_eq!(parse_time("2025-06-30T16:00:00+02:00").unwrap(), t);
        assert_eq!(
            parse_time("2025-06-30").unwrap(),
            parse_time("2025-06-30T00:00:00Z").unwrap()
        );
        assert!(parse_time("30/06/2025").is_err());
    }

    #[test]
    fn path_suffixes_match_by_component() {
        let p = Path::new("/mnt/share/copy/participants/program_year=2024/part-0.parquet");
        assert!(path_ends_with(
            p,
            Path::new("participants/program_year=2024/part-0.parquet")
        ));
        assert!(!path_ends_with(
            p,
            Path::new("services/program_year=2024/part-0.parquet")
        ));
        assert!(!path_ends_with(
            Path::new("/x/art-0.parquet"),
            Path::new("part-0.parquet")
        ));
    }
}
