//! `xmatch run PIPELINE`: one run of a pipeline, end to end.
//!
//! Order of work, and why:
//! 1. Recover: a run the store committed but did not publish is rolled forward; staging
//!    of runs that never committed is removed.
//! 2. Read and identify every source (participants, evidence sources, wages streamed),
//!    checking the guard rails as soon as a source is read.
//! 3. Resolve participants to persons, link the other sources, judge evidence, compute
//!    outcomes from wages.
//! 4. Write every output into staging.
//! 5. One store transaction commits registry changes, source files, lineage and the run
//!    as `publishing`; then the staged snapshot is published atomically, and the run is
//!    marked `succeeded`. A crash before the commit leaves nothing behind but staging; a
//!    crash after it is rolled forward at the next start. A large batch of registry
//!    changes (a first run) goes into that transaction while step 4 writes, see
//!    [`REGISTRY_BESIDE_WRITES_FROM`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Date32Array, RecordBatch, StringArray};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int8Type};
use chrono::{DateTime, NaiveDate, Utc};
use tracing::info;

use super::config::{FileFormatName, Pipeline, SourceConfig};
use super::lease;
use super::linkage::{Decisions, HeldChanges, SourceLinkage, Unlinked};
use super::outputs::{self, EvidenceRows, MatchRows, Period};
use super::progress::Progress;
use super::summary::{
    EvidenceSummary, OutputSummary, RotationSummary, RunSummary, SourceSummary, peak_rss_bytes,
};
use crate::deid::{self, from_date32, program_year};
use crate::identity::blocking::BlockKeys;
use crate::identity::identify::{
    Features, IdentifiedBatch, IdentifyError, blocks_of, features_of, features_with_blocks,
    identify, identify_with, keys_of,
};
use crate::identity::registry::{
    Changes, NEXT_KEY_RULE_OFFSET, PersonId, RECORD_RULE, Registry, RowIdentity,
};
use crate::identity::ssn::Last4;
use crate::identity::token::{RULES, Rule, Token, Tokenizer};
use crate::ingest::{self, FileFormat, IngestBatch, Layout, Reject, SourceFile};
use crate::lake::{self, Snapshot, Zone};
use crate::link::evidence::{EvidenceFacts, Statuses, Window, judge};
use crate::link::prob::{PassReport, PersonSide, ProbConfig};
use crate::link::wages::{Employers, Outcomes, Quarter, WageChunks, WageIndex, WageRow};
use crate::link::{LinkOutcome, LinkStats, PersonIndex, REVIEW_ACCEPTED};
use crate::purge::Policy;
use crate::schema::{Catalog, IdentityRole, ProgramSource, SourceKind, SourceSchema};
use crate::store::{
    HeldRow, Lease, LeaseOutcome, LinkDecisionRow, NewLinkReview, NewRun, SourceFileRow, Store,
};
use crate::workspace::{Key, Workspace};

/// Rows per batch read from a source file.
pub const BATCH_ROWS: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error(transparent)]
    Identify(#[from] crate::identity::identify::IdentifyError),
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
    #[error(transparent)]
    Deid(#[from] deid::DeidError),
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    #[error("issuing an identifier: {0}")]
    Ids(#[from] crate::identity::ids::IdError),
    #[error("building {what}: {source}")]
    Arrow {
        what: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("source `{source_name}`: no file matches {pattern}")]
    NoFiles {
        source_name: String,
        pattern: String,
    },
    #[error(
        "source `{source_name}`: {now} rows against {before} at the last successful run (a drop of {share:.0}%, more than the {limit:.0}% allowed); nothing was published. Check the extract, or rerun with --accept-drop"
    )]
    RowDrop {
        source_name: String,
        now: u64,
        before: u64,
        share: f64,
        limit: f64,
    },
    #[error(
        "source `{source_name}` is empty; nothing was published. Check the extract, or rerun with --accept-drop"
    )]
    Empty { source_name: String },
    #[error("column `{column}` of source `{source_name}` is missing or of an unexpected type")]
    Column { source_name: String, column: String },
    #[error("the run's worker thread failed: {0}")]
    Join(String),
    #[error(
        "pipeline `{pipeline}` is already running ({}, on {holder}); this run was recorded as skipped",
        other_run.map(|r| format!("run {r}")).unwrap_or_else(|| "another run".into())
    )]
    LeaseHeld {
        pipeline: String,
        other_run: Option<i64>,
        holder: String,
    },
    #[error(
        "pipeline `{pipeline}`: this run lost its lease (another process declared it abandoned or took over); nothing was published"
    )]
    LeaseLost { pipeline: String },
    #[error("not ready: {0}")]
    NotReady(String),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    Purge(#[from] crate::purge::PurgeError),
    #[error("{path}: {problem}")]
    Retention { path: PathBuf, problem: String },
    #[error("failure injected at `{0}` (XMATCH_FAILPOINT)")]
    Injected(&'static str),
    #[error(
        "the workspace's keys changed while this run worked (a key rotation began or was retired); nothing was published: run it again"
    )]
    KeysChanged,
}

fn arrow_err(what: &str) -> impl FnOnce(arrow::error::ArrowError) -> RunError + '_ {
    move |source| RunError::Arrow {
        what: what.to_string(),
        source,
    }
}

/// How a run was started (kept in the run history).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `manual`, `schedule`, `catch-up`, `retry`, `demo`, …
    pub trigger: String,
    /// 1 for a first try; retries of one firing count up.
    pub attempt: u32,
    /// The schedule time the run answers, when a schedule started it.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// How long the run's lease lasts between heartbeats.
    pub lease_ttl: std::time::Duration,
    /// Receives the run's id as soon as it is recorded (the daemon reports it).
    pub run_id_slot: Option<Arc<std::sync::OnceLock<i64>>>,
    /// Publish even when a source shrank past the guard rail or is empty.
    pub accept_drop: bool,
    /// The run's date: bounds dates of birth and stamps temporary-ID assignments.
    pub today: NaiveDate,
    /// Show progress on stderr (a live line on a terminal, `step=… key=value` lines
    /// otherwise).
    pub progress: bool,
    /// New registry tokens from which the run's store transaction opens while the files
    /// are written rather than after them (see [`REGISTRY_BESIDE_WRITES_FROM`]; the
    /// default can be set with [`REGISTRY_BESIDE_WRITES_ENV`]).
    pub registry_beside_writes_from: usize,
}

/// A first run at a million persons adds about seven million registry rows, which SQLite
/// inserts on one core for about ten seconds. From this many new tokens (about a second
/// of that work) the run's store transaction opens and takes them while the files are
/// written, and commits once they are: beside the writers that time mostly disappears.
/// Below it the transaction opens after the writes, as the nightly run of a settled
/// registry always does: an open transaction holds the store's write lock, and through
/// a slow or stalled write stage it would hold it from every other writer (the daemon
/// recording runs, heartbeats) when there is nothing to gain.
pub const REGISTRY_BESIDE_WRITES_FROM: usize = 500_000;

/// Overrides [`REGISTRY_BESIDE_WRITES_FROM`] for a process: `0` always overlaps, a very
/// large number never does (for a store other jobs must be able to write to at any time).
pub const REGISTRY_BESIDE_WRITES_ENV: &str = "XMATCH_REGISTRY_BESIDE_WRITES_FROM";

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            trigger: "manual".into(),
            attempt: 1,
            scheduled_for: None,
            lease_ttl: lease::DEFAULT_TTL,
            run_id_slot: None,
            accept_drop: false,
            today: chrono::Local::now().date_naive(),
            progress: false,
            registry_beside_writes_from: std::env::var(REGISTRY_BESIDE_WRITES_ENV)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(REGISTRY_BESIDE_WRITES_FROM),
        }
    }
}

/// Runs a cross-match `pipeline` in the workspace and returns its summary. The run is
/// recorded in the store whatever happens; on failure nothing is published. A run that
/// finds the pipeline's lease held by another live run is recorded as `skipped` and
/// returns [`RunError::LeaseHeld`].
pub async fn run(
    ws: &Workspace,
    pipeline: &Pipeline,
    opts: &RunOptions,
) -> Result<RunSummary, RunError> {
    with_run(ws, pipeline, opts, |cx| {
        let mut runner = Runner::new(&cx)?;
        runner.execute()
    })
    .await
}

/// What a run's body gets: the run, its lease and the store, on a blocking thread (the
/// body may `block_on` the store through `handle`).
pub struct RunContext {
    pub ws: Workspace,
    pub pipeline: Pipeline,
    pub opts: RunOptions,
    pub store: Store,
    pub key: Key,
    /// The key a rotation in progress moves to (`xmatch key rotate`): runs tokenize
    /// participants under it too, and take partner files made under it.
    pub next_key: Option<Key>,
    pub run_id: i64,
    pub lease: Lease,
    pub handle: tokio::runtime::Handle,
}

/// The frame of every run, whatever its job: recover what dead runs left, record the run,
/// take the pipeline's lease (or record `skipped`), keep it alive with a heartbeat while
/// `body` works, and record how it ended.
pub async fn with_run<T, F>(
    ws: &Workspace,
    pipeline: &Pipeline,
    opts: &RunOptions,
    body: F,
) -> Result<T, RunError>
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(RunContext) -> Result<T, RunError> + Send + 'static,
{
    let (store, key) = ws.open_keyed().await?;
    let next_key = {
        let row = store.workspace().await?;
        ws.load_next_key(row.as_ref().and_then(|r| r.next_key_id.as_deref()))?
    };
    recover(ws, &store).await?;
    let run_id = store
        .start_run_with(&NewRun {
            pipeline: &pipeline.name,
            trigger: &opts.trigger,
            attempt: opts.attempt,
            scheduled_for: opts.scheduled_for,
            holder: lease::this_holder(),
            provisional_expiry_ms: lease::now_ms() + opts.lease_ttl.as_millis() as i64,
        })
        .await?;
    if let Some(slot) = &opts.run_id_slot {
        let _ = slot.set(run_id);
    }
    let lease = match lease::acquire(&store, &pipeline.name, run_id, opts.lease_ttl).await? {
        LeaseOutcome::Acquired { lease, abandoned } => {
            if let Some(old) = abandoned {
                info!(run_id = old, "took over the lease of an abandoned run");
            }
            lease
        }
        LeaseOutcome::Held {
            run_id: other,
            holder,
            ..
        } => {
            let err = RunError::LeaseHeld {
                pipeline: pipeline.name.clone(),
                other_run: other,
                holder,
            };
            store
                .finish_run(run_id, "skipped", None, Some(&err.to_string()))
                .await?;
            return Err(err);
        }
    };
    let heartbeat = lease::Heartbeat::start(store.clone(), lease.clone(), run_id, opts.lease_ttl);
    let cx = RunContext {
        ws: ws.clone(),
        pipeline: pipeline.clone(),
        opts: opts.clone(),
        store: store.clone(),
        key,
        next_key,
        run_id,
        lease: lease.clone(),
        handle: tokio::runtime::Handle::current(),
    };
    let result = match tokio::task::spawn_blocking(move || body(cx)).await {
        Ok(r) => r,
        Err(e) => Err(RunError::Join(e.to_string())),
    };
    heartbeat.stop();
    let finished = match &result {
        Ok(summary) => {
            let json = serde_json::to_value(summary).ok();
            store
                .finish_run(run_id, "succeeded", json.as_ref(), None)
                .await
        }
        // A precondition that does not hold yet is a skip, not a failure.
        Err(RunError::NotReady(reason)) => {
            store
                .finish_run(
                    run_id,
                    "skipped",
                    None,
                    Some(&format!("not ready: {reason}")),
                )
                .await
        }
        // A run that lost its lease keeps the status its taker gave it (finish_run only
        // changes unfinished runs).
        Err(e) => {
            store
                .finish_run(run_id, "failed", None, Some(&e.to_string()))
                .await
        }
    };
    let _ = store.release_lease(&lease).await;
    match result {
        Ok(summary) => {
            finished?;
            info!(run_id, "run succeeded");
            Ok(summary)
        }
        // Best effort above: the error is what the operator needs; a store failure while
        // recording it must not hide it.
        Err(e) => Err(e),
    }
}

/// Finishes what dead runs left, and only theirs: a run whose process is gone (or whose
/// lease expired) and that the store committed is published; one that never committed is
/// marked `abandoned` and its staging removed. Live runs (of other pipelines, or on other
/// machines) are left alone. Returns the runs it marked abandoned.
pub async fn recover(ws: &Workspace, store: &Store) -> Result<Vec<i64>, RunError> {
    let now = lease::now_ms();
    let (mut live, mut committed, mut dead) = (Vec::new(), Vec::new(), Vec::new());
    for (id, status, holder, expires) in store.unfinished_runs().await? {
        if lease::is_alive(holder.as_deref(), expires, now) {
            live.push(id);
        } else if status == "publishing" {
            committed.push(id);
        } else {
            dead.push(id);
        }
    }
    let mut abandoned = Vec::new();
    for id in dead {
        if store
            .abandon_run(id, "the process running it stopped (its lease lapsed)")
            .await?
        {
            info!(run_id = id, "marked a dead run abandoned");
            abandoned.push(id);
        }
    }
    let lake_dir = ws.lake_dir();
    let secure_dir = ws.secure_dir();
    let ids = committed.clone();
    tokio::task::spawn_blocking(move || lake::recover(&lake_dir, &secure_dir, &ids, &live))
        .await
        .map_err(|e| RunError::Join(e.to_string()))??;
    for id in committed {
        store.finish_run(id, "succeeded", None, None).await?;
        info!(run_id = id, "recovered a committed run: published");
    }
    Ok(abandoned)
}

struct Runner<'a> {
    ws: &'a Workspace,
    pipeline: &'a Pipeline,
    opts: &'a RunOptions,
    store: &'a Store,
    catalog: Catalog,
    tokenizer: Tokenizer,
    /// During a key rotation, the new key's tokenizer: participants are tokenized under
    /// it too, and their new-key tokens join the registry.
    next_tokenizer: Option<Tokenizer>,
    /// During a rotation, the record keys of review items by source, and the new-key
    /// keys found for them (see `store::keys`).
    review_keys: HashMap<String, HashSet<Token>>,
    review_rekeys: Vec<(String, Token, Token)>,
    /// Seals the run's secure-zone files.
    zone: crate::secure::SecureZone,
    run_id: i64,
    handle: tokio::runtime::Handle,
    passes: Vec<Rule>,
    /// The fencing token checked inside the commit.
    lease: Lease,
    summary: RunSummary,
    /// Reject and identity-issue counts by (source, stage, reason), for data quality.
    quality: BTreeMap<(String, &'static str, String), u64>,
    source_files: Vec<SourceFileRow>,
    matches: Vec<(String, MatchRows)>,
    progress: Progress,
    /// `[match.probabilistic]`.
    prob: ProbConfig,
    /// The file being read, for review items' `file:row`.
    current_file: String,
    /// Its row count, when its format records one ([`ingest::SourceReader::rows_hint`]).
    current_rows: Option<usize>,
    /// Probable links this run sends to review.
    reviews: Vec<NewLinkReview>,
    /// This run's changes to the probabilistic pass's held decisions.
    held: HeldChanges,
    /// Each source's probabilistic-pass report, and its records linked by an accepted
    /// review decision.
    linkage: Vec<(String, PassReport, u64)>,
    /// The last four SSN digits each participant person has on file (for reviewers).
    person_last4: HashMap<PersonId, Last4>,
}

impl<'a> Runner<'a> {
    fn new(cx: &'a RunContext) -> Result<Runner<'a>, RunError> {
        let passes = cx.pipeline.passes()?;
        Ok(Runner {
            ws: &cx.ws,
            pipeline: &cx.pipeline,
            opts: &cx.opts,
            store: &cx.store,
            catalog: Catalog::builtin()?,
            tokenizer: {
                let t = match &cx.next_key {
                    Some(next) => Tokenizer::new(cx.key.bytes(), cx.key.id()).accepting(next.id()),
                    None => Tokenizer::new(cx.key.bytes(), cx.key.id()),
                };
                // Blocking keys meet only each other unless a partner's tokenized file
                // brings its own (see `identity::blocking`).
                if cx.pipeline.sources.iter().any(|s| s.tokenized) {
                    t
                } else {
                    t.with_in_memory_blocking()
                }
            },
            next_tokenizer: cx
                .next_key
                .as_ref()
                .map(|k| Tokenizer::new(k.bytes(), k.id())),
            review_keys: HashMap::new(),
            review_rekeys: Vec::new(),
            zone: cx.ws.secure_zone_for(&cx.key, cx.next_key.as_ref()),
            run_id: cx.run_id,
            handle: cx.handle.clone(),
            passes,
            lease: cx.lease.clone(),
            summary: RunSummary {
                run_id: cx.run_id,
                pipeline: cx.pipeline.name.clone(),
                rotation: cx.next_key.as_ref().map(|k| RotationSummary {
                    next_key_id: k.id().to_string(),
                    ..RotationSummary::default()
                }),
                ..Default::default()
            },
            quality: BTreeMap::new(),
            source_files: Vec::new(),
            matches: Vec::new(),
            progress: Progress::new(cx.opts.progress),
            prob: cx.pipeline.matching.probabilistic,
            current_file: String::new(),
            current_rows: None,
            reviews: Vec::new(),
            held: HeldChanges::default(),
            linkage: Vec::new(),
            person_last4: HashMap::new(),
        })
    }

    fn execute(&mut self) -> Result<RunSummary, RunError> {
        if crate::failpoint::fails("run.start") {
            return Err(RunError::Injected("run.start"));
        }
        crate::failpoint::hit("run.start");
        let t = Instant::now();
        let snapshot = Snapshot::begin(&self.ws.lake_dir(), &self.zone, self.run_id)?;
        if self.next_tokenizer.is_some() {
            self.review_keys = self.handle.block_on(self.store.link_review_keys())?;
        }
        let participants_cfg = self
            .pipeline
            .sources
            .iter()
            .find(|s| {
                self.schema_of(s)
                    .is_ok_and(|sc| sc.kind == SourceKind::Participants)
            })
            .expect("validated: one participants source")
            .clone();

        // The registry loads on its own thread while the participants are read: neither
        // needs the other until resolution, and loading is mostly one core's work.
        let loader = {
            let (store, handle) = (self.store.clone(), self.handle.clone());
            std::thread::spawn(
                move || -> Result<(Registry, Vec<LinkDecisionRow>, Vec<HeldRow>), RunError> {
                    let rows = handle.block_on(store.load_registry())?;
                    let blocks = handle.block_on(store.merge_blocks())?;
                    let decisions = handle.block_on(store.link_decisions())?;
                    let held = handle.block_on(store.link_memory())?;
                    let registry = Registry::from_rows(rows.persons, rows.tokens, rows.temp_ids)?
                        .with_reviews(rows.reviews)
                        .with_merge_blocks(blocks);
                    Ok((registry, decisions, held))
                },
            )
        };

        // Participants: read, identify, resolve.
        let (batch, mut idents, rejects) = self.read_participants(&participants_cfg)?;
        self.summary.stage("read participants", t.elapsed());

        let t = Instant::now();
        let (mut registry, decision_rows, held_rows) = loader
            .join()
            .map_err(|_| RunError::Join("the registry loader panicked".into()))??;
        self.summary.stage("load registry (rest)", t.elapsed());
        let t = Instant::now();
        let mut resolution = registry.resolve(&idents.rows)?;
        // Each row's tokens were only needed to resolve it.
        idents.rows = Vec::new();
        // During a rotation every participant's tokens under the new key join the
        // registry (and its commit) for the person the row resolved to: by `retire`
        // every person is known under the new key, with the same person key.
        let next_tokens = std::mem::take(&mut idents.next_tokens);
        let mut added = 0u64;
        for (row, tokens) in next_tokens.into_iter().enumerate() {
            let person = resolution.person_of_row[row];
            for (rule, token) in tokens {
                if registry.add_next_key_token(rule, token, person)? {
                    resolution.changes.new_tokens.push((rule, token, person));
                    added += 1;
                }
            }
        }
        if let Some(r) = self.summary.rotation.as_mut() {
            r.tokens_added = added;
        }
        self.summary.identity = resolution.stats;
        let st = resolution.stats;
        self.progress.done(
            "resolve",
            &[
                ("persons", st.persons.to_string()),
                ("new", st.new_persons.to_string()),
                ("new_temp_ids", st.new_temp_ids.to_string()),
                ("ssn_linked", st.ssn_linked.to_string()),
                ("merges", st.merges.to_string()),
                ("reviews", st.reviews.to_string()),
            ],
        );
        self.summary.stage("resolve identities", t.elapsed());

        // One period per person and entry date: a second record of the same period is a
        // duplicate, rejected with its row number.
        let t = Instant::now();
        let schema = self.schema_of(&participants_cfg)?.clone();
        let entry = date_column(&batch, "entry_date", &schema.name)?;
        // Program years past retention were purged (or are about to be): publishing them
        // again from the full case-management export would undo the purge.
        let retention = Policy::from_config(&self.ws.config().retention).map_err(|problem| {
            RunError::Retention {
                path: self.ws.root().join(crate::workspace::CONFIG_FILE),
                problem,
            }
        })?;
        let today = self.opts.today;
        let mut seen = HashMap::new();
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut dup_rejects = Vec::new();
        for i in 0..batch.num_rows() {
            let withheld = entry.is_some_and(|e| {
                e.is_valid(i)
                    && retention.past_retention(program_year(from_date32(e.value(i))), today)
            });
            if withheld {
                self.summary.withheld_past_retention += 1;
                keep.push(false);
                continue;
            }
            let person = resolution.person_of_row[i];
            let first = entry
                .map(|e| seen.insert((person, e.value(i)), i).is_none())
                .unwrap_or(true);
            if !first {
                dup_rejects.push(Reject {
                    row: idents.row_numbers[i],
                    reason: "duplicate_period".into(),
                    column: Some("entry_date".into()),
                    record_id: idents.record_ids[i].clone(),
                    ssn_last4: idents.ssn_last4[i].map(|l| l.to_string()),
                });
            }
            keep.push(first);
        }
        // The kept rows replace the read batch, which goes now: a shadowed binding would
        // hold it to the end of the run (280 MB at a million participants, measured
        // with heaptrack, alive through the wage link where the run peaks).
        let batch = if keep.iter().all(|&k| k) {
            batch
        } else {
            let kept = filter_record_batch(&batch, &BooleanArray::from(keep.clone()))
                .map_err(arrow_err("participants"))?;
            drop(batch);
            kept
        };
        let persons: Vec<PersonId> = resolution
            .person_of_row
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(p, _)| *p)
            .collect();
        let record_ids: Vec<Option<String>> = idents
            .record_ids
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| r.clone())
            .collect();
        let kept_last4: Vec<Option<Last4>> = idents
            .ssn_last4
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(l, _)| *l)
            .collect();
        {
            let s = self
                .summary
                .sources
                .iter_mut()
                .find(|s| s.name == participants_cfg.name)
                .expect("participants summarized");
            s.accepted -= dup_rejects.len() as u64;
            s.rejected += dup_rejects.len() as u64;
            if !dup_rejects.is_empty() {
                *s.rejects.entry("duplicate_period".into()).or_default() +=
                    dup_rejects.len() as u64;
            }
            if let Some(f) = self
                .source_files
                .iter_mut()
                .rev()
                .find(|f| f.source == participants_cfg.name)
            {
                f.rows_accepted -= dup_rejects.len() as i64;
                f.rows_rejected += dup_rejects.len() as i64;
            }
        }
        self.count_quality(
            &participants_cfg.name,
            "identity",
            dup_rejects.iter().map(|r| r.reason.as_str()),
        );
        let mut all_rejects = rejects;
        all_rejects.extend(dup_rejects);
        let periods = self.periods(&batch, &persons, &schema.name)?;

        // The probabilistic pass's side: every participant row's encodings, indexed by
        // blocking key; rows withheld past retention too, since the exact passes link to
        // their persons as well and a purge must not change what links. The features move
        // out of the identities (a million rows hold about 270 MB of them) and the index
        // is dropped once every source is linked.
        let features = std::mem::take(&mut idents.features);
        for ((last4, k), p) in idents
            .ssn_last4
            .iter()
            .zip(&keep)
            .zip(&resolution.person_of_row)
        {
            if let (Some(l), true) = (last4, k) {
                self.person_last4.entry(registry.survivor(*p)).or_insert(*l);
            }
        }
        let side = self.prob.enabled.then(|| {
            let persons = resolution
                .person_of_row
                .iter()
                .map(|p| registry.survivor(*p))
                .collect();
            PersonSide::build(persons, features, &self.prob)
        });
        let decisions = Decisions::new(decision_rows, held_rows, &registry);

        // Link the other sources.
        let index = PersonIndex::build(&registry);
        let mut by_person: HashMap<PersonId, Vec<usize>> = HashMap::new();
        for (i, p) in periods.iter().enumerate() {
            by_person.entry(p.person).or_default().push(i);
        }
        let mut evidence = EvidenceRows::default();
        let mut wage_rows = WageChunks::default();
        let mut employers = Employers::default();
        let mut quarters = BTreeSet::new();
        let mut secure_rejects: Vec<(String, Vec<Reject>)> =
            vec![(participants_cfg.name.clone(), all_rejects)];
        self.summary.stage("prepare periods", t.elapsed());
        for cfg in self.pipeline.sources.clone() {
            let t = Instant::now();
            let schema = self.schema_of(&cfg)?.clone();
            match schema.kind {
                SourceKind::Participants => continue,
                SourceKind::Evidence => {
                    let rejects = self.link_evidence(
                        &cfg,
                        &schema,
                        &index,
                        (side.as_ref(), &decisions),
                        &periods,
                        &by_person,
                        &mut evidence,
                    )?;
                    secure_rejects.push((cfg.name.clone(), rejects));
                }
                SourceKind::Wages => {
                    let rejects = self.link_wages(
                        &cfg,
                        &schema,
                        &index,
                        (side.as_ref(), &decisions),
                        &mut wage_rows,
                        &mut employers,
                        &mut quarters,
                    )?;
                    secure_rejects.push((cfg.name.clone(), rejects));
                }
            }
            self.summary
                .stage(&format!("link {}", cfg.name), t.elapsed());
        }
        drop(side);
        self.summary.linkage = self
            .linkage
            .iter()
            .map(|(s, r, accepted)| (s.clone(), r.clone(), *accepted))
            .collect();
        for (source, l) in &self.summary.links {
            self.progress.done(
                "link",
                &[
                    ("source", source.clone()),
                    ("linked", l.linked().to_string()),
                    ("ambiguous", l.ambiguous.to_string()),
                    ("unlinked", l.unlinked.to_string()),
                ],
            );
        }

        // Evidence verdicts into statuses at entry.
        let t = Instant::now();
        let mut verified = vec![Statuses::default(); periods.len()];
        let mut ev = EvidenceSummary::default();
        for i in 0..evidence.person.len() {
            let v = evidence.verdict[i];
            ev.rows += 1;
            *ev.by_verdict.entry(v.code().to_string()).or_default() += 1;
            if v.is_sufficient() {
                ev.sufficient += 1;
                verified[evidence.period[i]].verify(&evidence.facts[i].program);
            }
        }
        self.summary.evidence = ev;
        self.summary.wage_rows_linked = wage_rows.len() as u64;
        self.summary.wage_quarters = quarters.iter().map(|q| q.to_string()).collect();
        let mut wage_rows = wage_rows.into_rows();
        let before = wage_rows.len();
        wage_rows.retain(|w| !retention.past_retention(program_year(w.quarter.first_day()), today));
        self.summary.withheld_past_retention += (before - wage_rows.len()) as u64;
        let wage_index = WageIndex::new(wage_rows, quarters);
        let outcomes: Vec<Option<Outcomes>> = periods
            .iter()
            .map(|p| p.exit.map(|exit| wage_index.outcomes(p.person, exit)))
            .collect();

        // Outputs.
        let has_ssn: Vec<bool> = persons.iter().map(|&p| index.has_ssn(p)).collect();
        let temp_of: HashMap<PersonId, String> = registry
            .temp_ids_by_person()
            .into_iter()
            .filter_map(|(p, ts)| Some((p, ts.into_iter().min()?.as_str().to_string())))
            .collect();
        let new_temp: HashSet<PersonId> = resolution
            .changes
            .new_temp_ids
            .iter()
            .map(|(_, p)| registry.survivor(*p))
            .collect();
        // The writers only need each person's key: keep that and let the token maps go
        // (half a gigabyte at a million persons) before the writers' buffers fill.
        let person_keys = registry.keys_by_person();
        drop(index);
        drop(registry);
        let key_of = |p: PersonId| {
            usize::try_from(p)
                .ok()
                .and_then(|i| person_keys.get(i)?.as_ref())
                .map_or("", |k| k.as_str())
        };
        let keys: Vec<&str> = persons.iter().map(|&p| key_of(p)).collect();
        let categories: HashMap<String, Option<String>> = self
            .pipeline
            .sources
            .iter()
            .map(|cfg| {
                let category = self.catalog.source(&cfg.schema).ok().and_then(|schema| {
                    let roles = schema.evidence.as_ref()?;
                    schema.column(&roles.determination_date)?.sensitive.clone()
                });
                (cfg.name.clone(), category)
            })
            .collect();
        let category_of = |source: &str| categories.get(source).cloned().flatten();
        let snap = &snapshot;
        let (tokenizer, today) = (&self.tokenizer, self.opts.today);
        let (quality, matches) = (&self.quality, &self.matches);
        let (linkage, run_id) = (&self.linkage, self.run_id);
        // Each dataset (and each half of the wage records, the most rows) is a job; the
        // jobs run on all cores, largest first. Encoding and compressing Parquet is
        // CPU-bound, and every job writes files of its own.
        let rows = wage_index.rows();
        let (wages_a, wages_b) = rows.split_at(rows.len() / 2);
        let employer_hex = employers.hex_tokens();
        let (key_of, category_of) = (&key_of, &category_of);
        let (periods, persons, keys) = (&periods, &persons, &keys);
        let secure_inputs = outputs::SecureInputs {
            record_ids: &record_ids,
            ssn_last4: &kept_last4,
            persons,
            keys,
            periods,
            temp_of: &temp_of,
            new_temp: &new_temp,
            matches,
            rejects: &secure_rejects,
            today,
        };
        let jobs: Vec<outputs::Job<'_>> = vec![
            Box::new(|| outputs::wages(snap, wages_a, &employer_hex, key_of)),
            Box::new(|| outputs::wages(snap, wages_b, &employer_hex, key_of)),
            Box::new(|| {
                let deid = deid::deid_batch(
                    &schema,
                    &batch,
                    Arc::new(StringArray::from_iter_values(keys)),
                    Some("entry_date"),
                    tokenizer,
                    today,
                )?;
                outputs::participants(
                    snap, &schema, deid, persons, &has_ssn, periods, &verified, &outcomes,
                )
            }),
            Box::new(|| outputs::services(snap, &schema, &batch, keys, periods)),
            Box::new(|| outputs::evidence(snap, &evidence, periods, category_of, key_of)),
            Box::new(|| outputs::secure(snap, &secure_inputs, key_of)),
            Box::new(|| outputs::quality(snap, quality)),
            Box::new(|| outputs::linkage_quality(snap, run_id, linkage)),
        ];
        // One store transaction takes the registry's changes and the source files, then
        // the lineage and the run's status, and commits. Fencing: a run that lost its
        // lease (declared abandoned, taken over) must not commit; the check holds the
        // lease row until the commit. Nothing between its start and the commit touches
        // the store otherwise.
        let registry_rows = |changes: &mut Changes| {
            self.handle.block_on(async {
                let mut tx = self.store.begin().await?;
                if !tx.hold_fence(&self.lease).await? {
                    return Err(RunError::LeaseLost {
                        pipeline: self.pipeline.name.clone(),
                    });
                }
                let next_id = self.next_tokenizer.as_ref().map(|t| t.key_id());
                if !tx.keys_unchanged(self.tokenizer.key_id(), next_id).await? {
                    return Err(RunError::KeysChanged);
                }
                tx.apply_registry_changes(self.run_id, changes).await?;
                tx.record_review_rekeys(&self.review_rekeys).await?;
                tx.record_source_files(self.run_id, &self.source_files)
                    .await?;
                Ok::<_, RunError>(tx)
            })
        };
        let changes = &mut resolution.changes;
        let opened = if changes.new_tokens.len() >= self.opts.registry_beside_writes_from {
            let (tx, written) = std::thread::scope(|scope| {
                let registry = scope.spawn(|| registry_rows(changes));
                let written = outputs::run_jobs(jobs);
                (registry.join(), written)
            });
            let tx = tx.map_err(|_| RunError::Join("the registry writer panicked".into()))?;
            // A failed write drops the open transaction, which rolls it back.
            written?;
            Some(tx?)
        } else {
            outputs::run_jobs(jobs)?;
            None
        };
        self.summary.stage("write outputs", t.elapsed());
        let files = snapshot.files();
        self.progress
            .done("write", &[("files", files.len().to_string())]);

        // Commit, then publish.
        let t = Instant::now();
        crate::failpoint::hit("run.before_commit");
        self.summary.outputs = summarize_outputs(&files);
        let summary_json = serde_json::to_value(&self.summary).ok();
        let mut tx = match opened {
            Some(tx) => tx,
            None => registry_rows(changes)?,
        };
        let ttl_ms = i64::try_from(self.opts.lease_ttl.as_millis()).unwrap_or(i64::MAX);
        self.handle.block_on(async {
            tx.record_lineage(self.run_id, self.tokenizer.key_id(), &files)
                .await?;
            tx.record_linkage(self.run_id, &self.linkage).await?;
            tx.upsert_link_reviews(self.run_id, &self.reviews).await?;
            tx.save_link_memory(self.run_id, &self.held.save, &self.held.forget)
                .await?;
            if !tx
                .renew_lease(&self.lease, self.run_id, lease::now_ms(), ttl_ms)
                .await?
            {
                return Err(RunError::LeaseLost {
                    pipeline: self.pipeline.name.clone(),
                });
            }
            tx.set_run_status(self.run_id, "publishing", summary_json.as_ref())
                .await?;
            crate::failpoint::hit("run.mid_commit");
            tx.commit().await?;
            Ok::<_, RunError>(())
        })?;
        crate::failpoint::hit("run.after_commit");
        snapshot.publish()?;
        self.summary.stage("commit and publish", t.elapsed());
        self.progress
            .done("publish", &[("run", self.run_id.to_string())]);
        self.summary.peak_rss_bytes = peak_rss_bytes();
        Ok(self.summary.clone())
    }

    fn schema_of(&self, cfg: &SourceConfig) -> Result<&SourceSchema, RunError> {
        Ok(self.catalog.source(&cfg.schema)?)
    }

    fn count_quality<'r>(
        &mut self,
        source: &str,
        stage: &'static str,
        reasons: impl Iterator<Item = &'r str>,
    ) {
        for r in reasons {
            *self
                .quality
                .entry((source.to_string(), stage, r.to_string()))
                .or_default() += 1;
        }
    }

    /// Reads every file of a source, calling `each` with each batch and its identities,
    /// then records the files and checks the guard rails.
    /// Identifies one decoded batch and hands it to the stage's closure.
    #[allow(clippy::too_many_arguments)]
    fn identify_batch(
        &mut self,
        cfg: &SourceConfig,
        schema: &SourceSchema,
        layout: Layout,
        features: bool,
        batch: Result<IngestBatch, ingest::IngestError>,
        summary: &mut SourceSummary,
        rejects: &mut Vec<Reject>,
        each: &mut impl FnMut(&mut Self, IngestBatch, IdentifiedBatch) -> Result<(), RunError>,
    ) -> Result<(), RunError> {
        let batch = batch?;
        let ids = identify_with(
            &batch,
            schema,
            layout,
            &self.tokenizer,
            self.opts.today,
            features,
        )?;
        for reasons in &ids.reasons {
            for r in reasons {
                *summary
                    .identity_issues
                    .entry(r.as_str().to_string())
                    .or_default() += 1;
            }
        }
        rejects.extend(batch.rejects.iter().cloned());
        let so_far = summary.read + batch.rows.len() as u64 + rejects.len() as u64;
        self.progress.rows(&cfg.name, so_far);
        each(self, batch, ids)
    }

    /// `features`: compute every row's probabilistic-pass features (participants).
    fn read_source(
        &mut self,
        cfg: &SourceConfig,
        features: bool,
        mut each: impl FnMut(&mut Self, IngestBatch, IdentifiedBatch) -> Result<(), RunError>,
    ) -> Result<Vec<Reject>, RunError> {
        let schema = self.schema_of(cfg)?.clone();
        let layout = layout_of(cfg);
        let files = expand_paths(self.ws.root(), cfg)?;
        let mut summary = SourceSummary {
            name: cfg.name.clone(),
            files: files.len(),
            ..Default::default()
        };
        let mut rejects = Vec::new();
        for file in &files {
            self.current_file = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let reader = ingest::open(file, &schema, layout, BATCH_ROWS)?;
            self.current_rows = reader.rows_hint();
            // Decoding the file and identifying its rows overlap: a reader thread decodes
            // the next batches while this one normalizes and hashes the current one.
            let (tx, batches) =
                std::sync::mpsc::sync_channel::<Result<IngestBatch, ingest::IngestError>>(2);
            let stats = std::thread::scope(|scope| -> Result<ingest::FileStats, RunError> {
                let decoder = scope.spawn(move || {
                    let mut reader = reader;
                    for batch in reader.by_ref() {
                        let failed = batch.is_err();
                        if tx.send(batch).is_err() || failed {
                            break;
                        }
                    }
                    drop(tx);
                    reader.finish()
                });
                let mut outcome = Ok(());
                for batch in batches.iter() {
                    if let Err(e) = self.identify_batch(
                        cfg,
                        &schema,
                        layout,
                        features,
                        batch,
                        &mut summary,
                        &mut rejects,
                        &mut each,
                    ) {
                        outcome = Err(e);
                        break;
                    }
                }
                // Unblock the decoder if we stopped early, then collect its statistics.
                drop(batches);
                let stats = decoder
                    .join()
                    .map_err(|_| RunError::Join("the file reader panicked".into()))?;
                outcome?;
                Ok(stats?)
            })?;
            summary.read += stats.rows_read;
            summary.accepted += stats.rows_accepted;
            summary.rejected += stats.rows_rejected;
            self.source_files.push(SourceFileRow {
                source: cfg.name.clone(),
                path: file.path.display().to_string(),
                sha256: stats.sha256.clone(),
                rows_read: stats.rows_read as i64,
                rows_accepted: stats.rows_accepted as i64,
                rows_rejected: stats.rows_rejected as i64,
            });
        }
        for r in &rejects {
            *summary.rejects.entry(r.reason.clone()).or_default() += 1;
        }
        self.count_quality(
            &cfg.name,
            "ingest",
            rejects.iter().map(|r| r.reason.as_str()),
        );
        let issues: Vec<(String, u64)> = summary
            .identity_issues
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (reason, n) in issues {
            *self
                .quality
                .entry((cfg.name.clone(), "identity", reason))
                .or_default() += n;
        }
        self.guard(cfg, summary.read)?;
        self.progress.done(
            "read",
            &[
                ("source", cfg.name.clone()),
                ("read", summary.read.to_string()),
                ("accepted", summary.accepted.to_string()),
                ("rejected", summary.rejected.to_string()),
            ],
        );
        info!(source = %cfg.name, read = summary.read, accepted = summary.accepted, rejected = summary.rejected, "source read");
        self.summary.sources.push(summary);
        Ok(rejects)
    }

    /// The input guard rail: an empty source, or one that shrank by more than the
    /// pipeline allows against the last successful run, stops the run before publishing.
    fn guard(&self, cfg: &SourceConfig, read: u64) -> Result<(), RunError> {
        if self.opts.accept_drop {
            return Ok(());
        }
        if read == 0 {
            return Err(RunError::Empty {
                source_name: cfg.name.clone(),
            });
        }
        let previous = self.handle.block_on(
            self.store
                .previous_source_files(&self.pipeline.name, &cfg.name),
        )?;
        let before: u64 = previous.iter().map(|f| f.rows_read as u64).sum();
        if before > 0 && read < before {
            let share = (before - read) as f64 / before as f64;
            if share > self.pipeline.guard.max_row_drop {
                return Err(RunError::RowDrop {
                    source_name: cfg.name.clone(),
                    now: read,
                    before,
                    share: share * 100.0,
                    limit: self.pipeline.guard.max_row_drop * 100.0,
                });
            }
        }
        Ok(())
    }

    fn read_participants(
        &mut self,
        cfg: &SourceConfig,
    ) -> Result<(RecordBatch, ParticipantIdents, Vec<Reject>), RunError> {
        let schema = self.schema_of(cfg)?.clone();
        let mut batches = Vec::new();
        let mut idents = ParticipantIdents::default();
        let record_col = schema
            .identity_column(IdentityRole::RecordId)
            .map(|c| c.name.clone());
        let layout = layout_of(cfg);
        let today = self.opts.today;
        let rejects = self.read_source(cfg, self.prob.enabled, |runner, batch, ids| {
            // A tokenized participants file carries one key's tokens only: its persons
            // get no new-key tokens, which `retire` then reports.
            if let (Some(next), Layout::Raw) = (runner.next_tokenizer.as_ref(), layout) {
                let under_next = identify(&batch, &schema, layout, next, today)?;
                for i in 0..batch.batch.num_rows() {
                    let mut tokens = Vec::new();
                    for rule in RULES {
                        if let Some(t) = under_next.tokens[rule.index()][i] {
                            tokens.push((rule.index() as i32 + NEXT_KEY_RULE_OFFSET, t));
                        }
                    }
                    if let Some(t) = under_next.record_token[i] {
                        tokens.push((RECORD_RULE + NEXT_KEY_RULE_OFFSET, t));
                    }
                    idents.next_tokens.push(tokens);
                }
            }
            let record_ids = record_col
                .as_deref()
                .and_then(|c| batch.batch.column_by_name(c))
                .map(string_values)
                .unwrap_or_else(|| vec![None; batch.batch.num_rows()]);
            // Sized for the whole file at its first batch: a million rows' features
            // are a third of a gigabyte.
            if let Some(n) = runner.current_rows
                && idents.rows.is_empty()
            {
                idents.rows.reserve_exact(n);
                idents.row_numbers.reserve_exact(n);
                idents.record_ids.reserve_exact(n);
                idents.ssn_last4.reserve_exact(n);
                if !ids.features.is_empty() {
                    idents.features.reserve_exact(n);
                }
            }
            for i in 0..batch.batch.num_rows() {
                let mut tokens = Vec::new();
                for rule in RULES {
                    if let Some(t) = ids.tokens[rule.index()][i] {
                        tokens.push((rule, t));
                    }
                }
                idents.rows.push(RowIdentity {
                    ssn: ids.tokens[Rule::Ssn.index()][i],
                    name_dob: ids.tokens[Rule::NameDob.index()][i],
                    tokens,
                    record: ids.record_token[i],
                    temp_id: ids.temp_id[i].clone(),
                });
                idents.row_numbers.push(batch.rows[i]);
                idents.ssn_last4.push(ids.ssn_last4[i]);
            }
            idents.features.extend_from_slice(&ids.features);
            idents.record_ids.extend(record_ids);
            batches.push(batch.batch);
            Ok(())
        })?;
        let arrow_schema = ingest::layout::arrow_schema(&schema, layout_of(cfg));
        let batch = concat_batches(&arrow_schema, &batches).map_err(arrow_err("participants"))?;
        Ok((batch, idents, rejects))
    }

    fn periods(
        &self,
        batch: &RecordBatch,
        persons: &[PersonId],
        source: &str,
    ) -> Result<Vec<Period>, RunError> {
        let entry = date_column(batch, "entry_date", source)?.ok_or_else(|| RunError::Column {
            source_name: source.into(),
            column: "entry_date".into(),
        })?;
        let exit = date_column(batch, "exit_date", source)?;
        let flag = |name: &str| -> Option<Vec<bool>> {
            let a = batch.column_by_name(name)?;
            let a = a.as_primitive_opt::<Int8Type>()?;
            Some(
                (0..a.len())
                    .map(|i| !a.is_null(i) && a.value(i) != 0)
                    .collect(),
            )
        };
        let uc: Option<Vec<bool>> = batch.column_by_name("uc_status").and_then(|a| {
            a.as_string_opt::<i32>().map(|s| {
                s.iter()
                    .map(|v| v.is_some_and(|v| !v.is_empty() && v != "0"))
                    .collect()
            })
        });
        let (snap, tanf, taa) = (flag("snap"), flag("tanf"), flag("taa"));
        Ok((0..batch.num_rows())
            .map(|i| Period {
                person: persons[i],
                entry: from_date32(entry.value(i)),
                exit: exit.and_then(|e| (!e.is_null(i)).then(|| from_date32(e.value(i)))),
                reported: Statuses {
                    snap: snap.as_ref().is_some_and(|v| v[i]),
                    tanf: tanf.as_ref().is_some_and(|v| v[i]),
                    ui_claimant: uc.as_ref().is_some_and(|v| v[i]),
                    taa: taa.as_ref().is_some_and(|v| v[i]),
                },
            })
            .collect())
    }

    /// What a key rotation asks of an agency batch: the new-key record keys of the review
    /// items among its rows (by the record id's token, or the SSN's for a source without
    /// record ids), and whether the probabilistic pass may compare its rows (not when a
    /// partner tokenized them under the other key: their encodings are under that key).
    fn rotation_batch(
        &mut self,
        source: &str,
        batch: &IngestBatch,
        schema: &SourceSchema,
        ids: &IdentifiedBatch,
        by_ssn: bool,
    ) -> Result<bool, RunError> {
        let rows = batch.batch.num_rows() as u64;
        if ids.other_key.is_some()
            && let Some(r) = self.summary.rotation.as_mut()
        {
            r.rows_under_next_key += rows;
        }
        let Some(next) = self.next_tokenizer.as_ref() else {
            return Ok(ids.other_key.is_none());
        };
        let Some(keys) = self.review_keys.get(source) else {
            return Ok(ids.other_key.is_none());
        };
        // A tokenized file has no identifiers to tokenize again; one under the new key
        // already carries the new keys.
        if ids.other_key.is_none() && !batch_is_tokenized(batch) {
            let key_of = |i: usize| {
                if by_ssn {
                    ids.tokens[Rule::Ssn.index()][i]
                } else {
                    ids.record_token[i]
                }
            };
            let wanted: Vec<usize> = (0..batch.batch.num_rows())
                .filter(|&i| key_of(i).is_some_and(|k| keys.contains(&k)))
                .collect();
            if !wanted.is_empty() {
                let new = keys_of(batch, schema, next, self.opts.today, &wanted)?;
                for (&i, (ssn, record)) in wanted.iter().zip(new) {
                    let new_key = if by_ssn { ssn } else { record };
                    if let (Some(old), Some(new_key)) = (key_of(i), new_key) {
                        self.review_rekeys.push((source.to_string(), old, new_key));
                        if let Some(r) = self.summary.rotation.as_mut() {
                            r.reviews_rekeyed += 1;
                        }
                    }
                }
            }
        }
        Ok(ids.other_key.is_none())
    }

    #[allow(clippy::too_many_arguments)]
    fn link_evidence(
        &mut self,
        cfg: &SourceConfig,
        schema: &SourceSchema,
        index: &PersonIndex<'_>,
        (side, decisions): (Option<&PersonSide>, &Decisions),
        periods: &[Period],
        by_person: &HashMap<PersonId, Vec<usize>>,
        out: &mut EvidenceRows,
    ) -> Result<Vec<Reject>, RunError> {
        let roles = schema
            .evidence
            .clone()
            .expect("evidence sources have roles");
        let passes = self.passes.clone();
        let window = self.pipeline.evidence;
        let mut stats = LinkStats::new(&passes, side.is_some());
        let pass_names: Vec<&'static str> = passes.iter().map(|r| r.name()).collect();
        let record_col = schema
            .identity_column(IdentityRole::RecordId)
            .map(|c| c.name.clone());
        let mut matches = MatchRows::default();
        let mut linkage: Option<SourceLinkage<'_, EvidenceLink>> =
            side.map(|s| SourceLinkage::new(&cfg.name, s, self.prob, decisions));
        let (layout, tokenizer, today) = (layout_of(cfg), self.tokenizer.clone(), self.opts.today);
        let names = Interner::default();
        let mut sink = EvidenceSink {
            source: Arc::from(cfg.name.as_str()),
            matches: &mut matches,
            out,
            by_person,
            periods,
            window: &window,
        };
        let rejects = self.read_source(cfg, false, |runner, batch, ids| {
            let b = &batch.batch;
            let prob_here = runner.rotation_batch(&cfg.name, &batch, schema, &ids, false)?;
            // Strings are copied out only for the rows that link (about half of them).
            let text = |name: &str| {
                b.column_by_name(name)
                    .and_then(|a| a.as_string_opt::<i32>())
            };
            let value = |a: Option<&StringArray>, i: usize| {
                a.filter(|a| a.is_valid(i)).map(|a| a.value(i).to_string())
            };
            let record_ids = record_col.as_deref().and_then(text);
            let det = date_column(b, &roles.determination_date, &schema.name)?;
            let start = date_column(b, &roles.period_start, &schema.name)?;
            let end = date_column(b, &roles.period_end, &schema.name)?;
            let kind = text(&roles.benefit_type);
            let program_col = match &roles.program {
                ProgramSource::Fixed(_) => None,
                ProgramSource::Column(c) => text(c),
            };
            let program = |i: usize| match &roles.program {
                ProgramSource::Fixed(p) => names.get(p),
                ProgramSource::Column(_) => names.get(
                    program_col
                        .filter(|a| a.is_valid(i))
                        .map_or("", |a| a.value(i)),
                ),
            };
            let date = |a: Option<&Date32Array>, i: usize| {
                a.and_then(|a| (!a.is_null(i)).then(|| from_date32(a.value(i))))
            };
            let link_of = |i: usize| EvidenceLink {
                record_id: value(record_ids, i),
                row: batch.rows[i],
                facts: EvidenceFacts {
                    program: program(i),
                    determination_date: date(det, i),
                    period_start: date(start, i),
                    period_end: date(end, i),
                    benefit_type: kind
                        .filter(|a| a.is_valid(i))
                        .map(|a| names.get(a.value(i))),
                },
            };
            let mut unlinked = Vec::new();
            let mut anchors = Vec::new();
            let want_anchors = prob_here && linkage.as_ref().is_some_and(|l| l.wants_anchor());
            for i in 0..b.num_rows() {
                let outcome = index.link(&passes, &row_tokens(&ids, i));
                match outcome {
                    LinkOutcome::Linked { person, pass } => {
                        stats.count(outcome);
                        sink.add(link_of(i), person, pass_names[pass], None);
                        if want_anchors {
                            anchors.push((i, person, pass_names[pass]));
                        }
                    }
                    _ if prob_here && linkage.is_some() => unlinked.push((i, outcome)),
                    _ => stats.count(outcome),
                }
            }
            let Some(l) = linkage.as_mut().filter(|_| prob_here) else {
                return Ok(());
            };
            add_anchors(l, &batch, schema, layout, &tokenizer, today, &anchors)?;
            let mut todo = Vec::with_capacity(unlinked.len());
            for (i, outcome) in unlinked {
                let key = ids.record_token[i];
                match l.accepted_person(key.as_ref()) {
                    Some(person) => {
                        stats.count_linked_by(REVIEW_ACCEPTED);
                        l.accepted += 1;
                        sink.add(link_of(i), person, REVIEW_ACCEPTED, None);
                    }
                    None => todo.push(Unlinked {
                        row: i,
                        exact: outcome,
                        key,
                        last4: ids.ssn_last4[i],
                    }),
                }
            }
            let rows: Vec<usize> = todo.iter().map(|t| t.row).collect();
            let blocks = blocks_of(&batch, schema, layout, &tokenizer, today, &rows)?;
            let file = &runner.current_file;
            let encode = |rows: &[usize], blocks: &[BlockKeys]| {
                features_with_blocks(&batch, schema, layout, &tokenizer, today, rows, blocks)
            };
            let make = |t: usize| {
                let i = todo[t].row;
                (format!("{file}:{}", batch.rows[i]), link_of(i))
            };
            l.offer_batch(&todo, &blocks, encode, make, &mut stats)?;
            Ok(())
        })?;
        if let Some(l) = linkage {
            let accepted = l.accepted;
            let (linked, report) = l.finish(
                &mut stats,
                &self.person_last4,
                &mut self.reviews,
                &mut self.held,
            );
            for (link, person, pass, score) in linked {
                sink.add(link, person, pass, score);
            }
            self.linkage.push((cfg.name.clone(), report, accepted));
        }
        self.summary.links.push((cfg.name.clone(), stats));
        self.matches.push((cfg.name.clone(), matches));
        Ok(rejects)
    }

    #[allow(clippy::too_many_arguments)]
    fn link_wages(
        &mut self,
        cfg: &SourceConfig,
        schema: &SourceSchema,
        index: &PersonIndex<'_>,
        (side, decisions): (Option<&PersonSide>, &Decisions),
        out: &mut WageChunks,
        employer_table: &mut Employers,
        quarters: &mut BTreeSet<Quarter>,
    ) -> Result<Vec<Reject>, RunError> {
        let passes = self.passes.clone();
        let mut stats = LinkStats::new(&passes, side.is_some());
        let employer_col = schema
            .columns
            .iter()
            .find(|c| c.deid == crate::schema::Deid::Token)
            .map(|c| c.name.clone());
        let quarter_col = schema
            .columns
            .iter()
            .find(|c| c.ty == crate::schema::ColumnType::YearQuarter)
            .map(|c| c.name.clone());
        let wage_col = schema
            .columns
            .iter()
            .find(|c| c.ty == crate::schema::ColumnType::Decimal)
            .map(|c| c.name.clone());
        let tokenizer = self.tokenizer.clone();
        let (layout, today) = (layout_of(cfg), self.opts.today);
        let mut linkage: Option<SourceLinkage<'_, WageLink>> =
            side.map(|s| SourceLinkage::new(&cfg.name, s, self.prob, decisions));
        let rejects = self.read_source(cfg, false, |runner, batch, ids| {
            let b = &batch.batch;
            let prob_here = runner.rotation_batch(&cfg.name, &batch, schema, &ids, true)?;
            let missing = |c: &Option<String>| RunError::Column {
                source_name: schema.name.clone(),
                column: c.clone().unwrap_or_else(|| "(none declared)".into()),
            };
            let employers = employer_col
                .as_deref()
                .and_then(|c| b.column_by_name(c))
                .and_then(|a| a.as_string_opt::<i32>())
                .ok_or_else(|| missing(&employer_col))?;
            let qs = quarter_col
                .as_deref()
                .and_then(|c| b.column_by_name(c))
                .and_then(|a| a.as_string_opt::<i32>())
                .ok_or_else(|| missing(&quarter_col))?;
            let wages = wage_col
                .as_deref()
                .and_then(|c| b.column_by_name(c))
                .and_then(|a| a.as_primitive_opt::<Decimal128Type>())
                .ok_or_else(|| missing(&wage_col))?;
            let scale = match wages.data_type() {
                DataType::Decimal128(_, s) => *s,
                _ => 2,
            };
            let mut last_q: Option<(&str, Quarter)> = None;
            let mut linked = Vec::with_capacity(b.num_rows());
            let mut unlinked = Vec::new();
            let mut anchors = Vec::new();
            let want_anchors = prob_here && linkage.as_ref().is_some_and(|l| l.wants_anchor());
            for i in 0..b.num_rows() {
                let q = if qs.is_null(i) {
                    None
                } else {
                    let s = qs.value(i);
                    match last_q {
                        Some((ls, lq)) if ls == s => Some(lq),
                        _ => {
                            let parsed = Quarter::parse(s);
                            if let Some(p) = parsed {
                                last_q = Some((s, p));
                                quarters.insert(p);
                            }
                            parsed
                        }
                    }
                };
                let outcome = index.link(&passes, &row_tokens(&ids, i));
                // A row without a quarter, an employer or wages counts as linked or not,
                // but has nothing to record.
                let usable = q.filter(|_| !employers.is_null(i) && !wages.is_null(i));
                let Some(quarter) = usable else {
                    stats.count(outcome);
                    continue;
                };
                match outcome {
                    LinkOutcome::Linked { person, pass } => {
                        stats.count(outcome);
                        if want_anchors && anchors.len() < WAGE_ANCHORS_PER_BATCH {
                            anchors.push((i, person, passes[pass].name()));
                        }
                        linked.push(WageRow {
                            person,
                            employer: employer_table.id(employers.value(i), &tokenizer),
                            quarter,
                            cents: rescale_to_cents(wages.value(i), scale),
                        });
                    }
                    _ if prob_here && linkage.is_some() => unlinked.push((i, outcome, quarter)),
                    _ => stats.count(outcome),
                }
            }
            let Some(l) = linkage.as_mut().filter(|_| prob_here) else {
                out.push_chunk(linked);
                return Ok(());
            };
            add_anchors(l, &batch, schema, layout, &tokenizer, today, &anchors)?;
            // Wage records have no record id: a decision is about the SSN they carry.
            let mut link_of = |i: usize, quarter: Quarter| WageLink {
                employer: employer_table.id(employers.value(i), &tokenizer),
                quarter,
                cents: rescale_to_cents(wages.value(i), scale),
            };
            let mut todo = Vec::with_capacity(unlinked.len());
            let mut todo_quarters = Vec::with_capacity(unlinked.len());
            for (i, outcome, quarter) in unlinked {
                let key = ids.tokens[Rule::Ssn.index()][i];
                match l.accepted_person(key.as_ref()) {
                    Some(person) => {
                        stats.count_linked_by(REVIEW_ACCEPTED);
                        l.accepted += 1;
                        linked.push(link_of(i, quarter).row(person));
                    }
                    None => {
                        todo.push(Unlinked {
                            row: i,
                            exact: outcome,
                            key,
                            last4: ids.ssn_last4[i],
                        });
                        todo_quarters.push(quarter);
                    }
                }
            }
            let rows: Vec<usize> = todo.iter().map(|t| t.row).collect();
            let blocks = blocks_of(&batch, schema, layout, &tokenizer, today, &rows)?;
            let file = &runner.current_file;
            let encode = |rows: &[usize], blocks: &[BlockKeys]| {
                features_with_blocks(&batch, schema, layout, &tokenizer, today, rows, blocks)
            };
            let make = |t: usize| {
                let i = todo[t].row;
                (
                    format!("{file}:{}", batch.rows[i]),
                    link_of(i, todo_quarters[t]),
                )
            };
            l.offer_batch(&todo, &blocks, encode, make, &mut stats)?;
            out.push_chunk(linked);
            Ok(())
        })?;
        if let Some(l) = linkage {
            let accepted = l.accepted;
            let (linked, report) = l.finish(
                &mut stats,
                &self.person_last4,
                &mut self.reviews,
                &mut self.held,
            );
            out.push_chunk(
                linked
                    .into_iter()
                    .map(|(link, person, _, _)| link.row(person))
                    .collect(),
            );
            self.linkage.push((cfg.name.clone(), report, accepted));
        }
        self.summary.links.push((cfg.name.clone(), stats));
        Ok(rejects)
    }
}

/// What an evidence record needs once it is linked.
struct EvidenceLink {
    record_id: Option<String>,
    row: u64,
    facts: EvidenceFacts,
}

/// A wage record before it is linked.
struct WageLink {
    employer: u32,
    quarter: Quarter,
    cents: i64,
}

impl WageLink {
    fn row(self, person: PersonId) -> WageRow {
        WageRow {
            person,
            employer: self.employer,
            quarter: self.quarter,
            cents: self.cents,
        }
    }
}

/// One shared copy of each distinct string, for the columns of evidence rows that take a
/// handful of values (program, benefit type) but are held once per row.
#[derive(Default)]
struct Interner(std::cell::RefCell<HashSet<Arc<str>>>);

impl Interner {
    fn get(&self, s: &str) -> Arc<str> {
        let mut set = self.0.borrow_mut();
        if let Some(a) = set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        set.insert(a.clone());
        a
    }
}

/// Where evidence links go: the match trail and one evidence row per period of the person.
struct EvidenceSink<'a> {
    source: Arc<str>,
    matches: &'a mut MatchRows,
    out: &'a mut EvidenceRows,
    by_person: &'a HashMap<PersonId, Vec<usize>>,
    periods: &'a [Period],
    window: &'a Window,
}

impl EvidenceSink<'_> {
    fn add(
        &mut self,
        link: EvidenceLink,
        person: PersonId,
        pass: &'static str,
        score: Option<f64>,
    ) {
        self.matches.record_id.push(link.record_id);
        self.matches.row.push(link.row);
        self.matches.person.push(person);
        self.matches.pass.push(pass);
        self.matches.score.push(score);
        for &p in self
            .by_person
            .get(&person)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            self.out.person.push(person);
            self.out.period.push(p);
            self.out.source.push(self.source.clone());
            self.out
                .verdict
                .push(judge(&link.facts, self.periods[p].entry, self.window));
            self.out.facts.push(link.facts.clone());
            self.out.pass.push(pass);
            self.out.score.push(score);
        }
    }
}

#[derive(Default)]
struct ParticipantIdents {
    rows: Vec<RowIdentity>,
    /// During a key rotation, each row's tokens under the new key (stored rule numbers).
    next_tokens: Vec<Vec<(i32, Token)>>,
    row_numbers: Vec<u64>,
    record_ids: Vec<Option<String>>,
    ssn_last4: Vec<Option<Last4>>,
    /// Every row's probabilistic-pass features (empty when the pass is off).
    features: Vec<Features>,
}

/// Whether a batch is in the tokenized layout (it has the `key_id` column partner files
/// carry).
fn batch_is_tokenized(batch: &IngestBatch) -> bool {
    batch
        .batch
        .column_by_name(crate::ingest::layout::KEY_ID)
        .is_some()
}

fn layout_of(cfg: &SourceConfig) -> Layout {
    if cfg.tokenized {
        Layout::Tokenized
    } else {
        Layout::Raw
    }
}

fn row_tokens(ids: &IdentifiedBatch, i: usize) -> [Option<Token>; RULES.len()] {
    RULES.map(|r| ids.tokens[r.index()][i])
}

fn string_values(a: &ArrayRef) -> Vec<Option<String>> {
    match a.as_string_opt::<i32>() {
        Some(s) => s.iter().map(|v| v.map(str::to_string)).collect(),
        None => vec![None; a.len()],
    }
}

fn date_column<'b>(
    batch: &'b RecordBatch,
    name: &str,
    source: &str,
) -> Result<Option<&'b Date32Array>, RunError> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(a) => a
            .as_primitive_opt::<Date32Type>()
            .map(Some)
            .ok_or_else(|| RunError::Column {
                source_name: source.to_string(),
                column: name.to_string(),
            }),
    }
}

fn rescale_to_cents(value: i128, scale: i8) -> i64 {
    let v = match scale.cmp(&2) {
        std::cmp::Ordering::Equal => value,
        std::cmp::Ordering::Greater => value / 10i128.pow((scale - 2) as u32),
        std::cmp::Ordering::Less => value * 10i128.pow((2 - scale) as u32),
    };
    v as i64
}

fn summarize_outputs(files: &[lake::WrittenFile]) -> Vec<OutputSummary> {
    let mut map: BTreeMap<(String, String), (usize, u64)> = BTreeMap::new();
    for f in files {
        let zone = match f.zone {
            Zone::Deid => "deid",
            Zone::Secure => "secure",
        };
        let e = map
            .entry((zone.to_string(), f.dataset.clone()))
            .or_default();
        e.0 += 1;
        e.1 += f.rows;
    }
    map.into_iter()
        .map(|((zone, dataset), (files, rows))| OutputSummary {
            dataset,
            zone,
            files,
            rows,
        })
        .collect()
}

/// The files a source's path (possibly a glob in its last component) names, sorted.
fn expand_paths(root: &Path, cfg: &SourceConfig) -> Result<Vec<SourceFile>, RunError> {
    let full = root.join(&cfg.path);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let paths: Vec<PathBuf> = if name.contains(['*', '?']) {
        let dir = full.parent().unwrap_or(root);
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file()
                            && p.file_name()
                                .is_some_and(|n| wildcard(&name, &n.to_string_lossy()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    } else if full.is_file() {
        vec![full.clone()]
    } else {
        Vec::new()
    };
    if paths.is_empty() {
        return Err(RunError::NoFiles {
            source_name: cfg.name.clone(),
            pattern: full.display().to_string(),
        });
    }
    paths
        .into_iter()
        .map(|path| match cfg.format {
            Some(FileFormatName::Csv) => Ok(SourceFile {
                path,
                format: FileFormat::Csv,
            }),
            Some(FileFormatName::Parquet) => Ok(SourceFile {
                path,
                format: FileFormat::Parquet,
            }),
            None => Ok(SourceFile::new(path)?),
        })
        .collect()
}

/// `*` and `?` wildcards over a file name.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Wage rows per batch taken as anchors: spread over the file's batches rather than all
/// from its first quarter.
const WAGE_ANCHORS_PER_BATCH: usize = 500;

/// Gives the probabilistic pass the exactly linked rows `anchors` (row, person, pass) of
/// one batch as EM anchors, while it still wants them.
fn add_anchors<T>(
    l: &mut SourceLinkage<'_, T>,
    batch: &IngestBatch,
    schema: &SourceSchema,
    layout: Layout,
    tokenizer: &Tokenizer,
    today: NaiveDate,
    anchors: &[(usize, PersonId, &'static str)],
) -> Result<(), IdentifyError> {
    if anchors.is_empty() || !l.wants_anchor() {
        return Ok(());
    }
    let rows: Vec<usize> = anchors.iter().map(|a| a.0).collect();
    let features = features_of(batch, schema, layout, tokenizer, today, &rows)?;
    for (&(_, person, pass), f) in anchors.iter().zip(&features) {
        if !l.wants_anchor() {
            break;
        }
        l.anchor(f, person, pass);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_file_names() {
        assert!(wildcard("ui_wages_*.csv", "ui_wages_2024Q3.csv"));
        assert!(wildcard("*.parquet", "a.parquet"));
        assert!(!wildcard("*.parquet", "a.csv"));
        assert!(wildcard("w?.csv", "w1.csv"));
        assert_eq!(rescale_to_cents(12345, 2), 12345);
        assert_eq!(rescale_to_cents(123450, 3), 12345);
    }
}
