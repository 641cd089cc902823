//! Retention: deleting de-identified and secure-zone files once their program year is
//! past the configured retention (see [`policy`] for the rule), leaving a tombstone of
//! each in lineage and one audit entry per purge.
//!
//! What is never purged: the registry (persons, tokens, temporary IDs, merges — a
//! returning person keeps their ID), the lineage rows themselves (a purged file keeps its
//! person set, so `xmatch breach --sha256` still answers for a copy found years later),
//! the run history and the audit log.
//!
//! Order of work: lineage rows not yet marked purged are classified; those past retention
//! are removed from disk ([`crate::lake::Zones::retire`]), then one store transaction
//! marks them purged and writes the audit entry. A crash in between leaves files gone but
//! unmarked; the next purge finds them absent and marks them then, so a tombstone is
//! never lost and lineage never calls a file purged that is still on disk. Files already
//! absent (a snapshot pruned by a later publish) are marked too, counted apart.
//!
//! Readers: a de-identified partition goes whole, in one rename, so DataFusion over
//! `lake/current` sees each program year complete or not at all; a query that listed a
//! partition just before it went fails on reading it and succeeds when run again.
//! Files of a run whose staging is still present (a run publishing right now) are left
//! for the next purge.

pub mod policy;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::Serialize;
use serde_json::json;

use crate::lake::{LakeError, Presence, PublishedFile, Zone, Zones};
use crate::store::{AuditEntry, Store, StoreError};
use crate::workspace::{CONFIG_FILE, Workspace, WorkspaceError};

pub use policy::{Basis, Limit, Policy};

/// The audit action of a purge.
pub const AUDIT_ACTION: &str = "purge";

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("{path}: {problem}")]
    Config { path: PathBuf, problem: String },
    #[error("a purge needs a reason for the audit log")]
    NoReason,
    #[error("a purge needs an actor (who runs it) for the audit log")]
    NoActor,
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// How to purge.
#[derive(Debug, Clone)]
pub struct PurgeOptions {
    /// Only report what would go; nothing is deleted or written.
    pub dry_run: bool,
    /// The day retention is judged on. The caller's clock: pass the real local date for
    /// a real purge (a later date would purge files still inside their retention).
    pub today: NaiveDate,
    /// Who runs it (the OS user, or the daemon's identity), for the audit log.
    pub actor: String,
    /// Why, for the audit log.
    pub reason: String,
}

/// What happens (or would happen) to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// On disk: deleted.
    Delete,
    /// Already gone from disk (e.g. a pruned snapshot): only its tombstone is written.
    Tombstone,
}

/// One file past retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeFile {
    pub lineage_id: i64,
    pub run_id: i64,
    pub zone: Zone,
    pub dataset: String,
    /// Relative to the run's directory in its zone (`lake/snapshots/<run>/`,
    /// `secure/runs/<run>/`).
    pub path: String,
    pub program_year: i32,
    pub basis: Basis,
    pub action: Action,
}

impl PurgeFile {
    /// Relative to the zone root: `snapshots/<run>/…` or `runs/<run>/…`.
    pub fn zone_path(&self) -> String {
        let dir = match self.zone {
            Zone::Deid => "snapshots",
            Zone::Secure => "runs",
        };
        format!("{dir}/{}/{}", self.run_id, self.path)
    }
}

/// One program year that lineage still holds files of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramYearStatus {
    pub program_year: i32,
    pub closeout: Option<NaiveDate>,
    /// Kept through this day.
    pub kept_through: Option<NaiveDate>,
    pub past_retention: bool,
    /// Files of this year not yet purged, before this purge.
    pub files: u64,
}

/// What a purge did, or in a dry run would do.
#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    pub dry_run: bool,
    pub today: NaiveDate,
    pub years_after_closeout: u32,
    pub program_years: Vec<ProgramYearStatus>,
    /// Files past retention, in lineage order.
    pub files: Vec<PurgeFile>,
    /// Runs whose files were left because their staging is still present.
    pub pending_runs: Vec<i64>,
    /// Tombstones newly written (0 in a dry run).
    pub tombstoned: u64,
    pub audit_id: Option<i64>,
    pub purged_at: Option<DateTime<Utc>>,
}

impl PurgeReport {
    pub fn deleted(&self) -> impl Iterator<Item = &PurgeFile> {
        self.files.iter().filter(|f| f.action == Action::Delete)
    }

    pub fn count(&self, action: Action, zone: Option<Zone>) -> usize {
        self.files
            .iter()
            .filter(|f| f.action == action && zone.is_none_or(|z| f.zone == z))
            .count()
    }

    /// Program years with files but no closeout date: what an operator must configure
    /// before anything of them can go.
    pub fn held_program_years(&self) -> Vec<i32> {
        self.program_years
            .iter()
            .filter(|p| p.closeout.is_none())
            .map(|p| p.program_year)
            .collect()
    }

    /// The audit entry's detail: counts and paths, never identifiers.
    fn audit_detail(&self) -> serde_json::Value {
        let mut by_py: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
        for f in &self.files {
            let e = by_py.entry(format!("PY{}", f.program_year)).or_default();
            *e.entry(match f.action {
                Action::Delete => "deleted",
                Action::Tombstone => "already_absent",
            })
            .or_default() += 1;
        }
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|f| {
                json!({
                    "lineage_id": f.lineage_id,
                    "run_id": f.run_id,
                    "zone": f.zone,
                    "dataset": f.dataset,
                    "path": f.path,
                    "program_year": f.program_year,
                    "action": match f.action {
                        Action::Delete => "deleted",
                        Action::Tombstone => "already_absent",
                    },
                })
            })
            .collect();
        json!({
            "today": self.today.to_string(),
            "years_after_closeout": self.years_after_closeout,
            "program_years": self.program_years,
            "deleted": self.count(Action::Delete, None),
            "deleted_deid": self.count(Action::Delete, Some(Zone::Deid)),
            "deleted_secure": self.count(Action::Delete, Some(Zone::Secure)),
            "already_absent": self.count(Action::Tombstone, None),
            "by_program_year": by_py,
            "held_program_years": self.held_program_years(),
            "pending_runs": self.pending_runs,
            "files": files,
        })
    }
}

/// Purges `ws` (opening its store) as `opts` says.
pub async fn purge(ws: &Workspace, opts: &PurgeOptions) -> Result<PurgeReport, PurgeError> {
    let store = ws.open_store().await?;
    let out = purge_with_store(ws, &store, opts).await;
    store.close().await;
    out
}

/// [`purge`] with a store the caller opened (a daemon keeps one; tests use their own).
pub async fn purge_with_store(
    ws: &Workspace,
    store: &Store,
    opts: &PurgeOptions,
) -> Result<PurgeReport, PurgeError> {
    if opts.reason.trim().is_empty() {
        return Err(PurgeError::NoReason);
    }
    if opts.actor.trim().is_empty() {
        return Err(PurgeError::NoActor);
    }
    let policy =
        Policy::from_config(&ws.config().retention).map_err(|problem| PurgeError::Config {
            path: ws.root().join(CONFIG_FILE),
            problem,
        })?;
    let zones = Zones::new(&ws.lake_dir(), &ws.secure_dir());

    let mut per_year: BTreeMap<i32, u64> = BTreeMap::new();
    let mut files = Vec::new();
    let mut pending = BTreeSet::new();
    for row in store.unpurged_lineage().await? {
        let (program_year, basis) =
            policy::classify(row.zone, &row.path, row.written_at.date_naive());
        *per_year.entry(program_year).or_default() += 1;
        if !policy.past_retention(program_year, opts.today) {
            continue;
        }
        let published = PublishedFile {
            zone: row.zone,
            run_id: row.run_id,
            path: PathBuf::from(&row.path),
        };
        if zones.locate(&published).is_none() {
            return Err(LakeError::BadName {
                what: "lineage path",
                name: row.path,
                problem: "is not a plain relative path; refusing to purge by it",
            }
            .into());
        }
        let action = match zones.presence(&published)? {
            Presence::Pending => {
                pending.insert(row.run_id);
                continue;
            }
            Presence::Present => Action::Delete,
            Presence::Absent => Action::Tombstone,
        };
        files.push(PurgeFile {
            lineage_id: row.id,
            run_id: row.run_id,
            zone: row.zone,
            dataset: row.dataset,
            path: row.path,
            program_year,
            basis,
            action,
        });
    }
    let program_years = per_year
        .into_iter()
        .map(|(py, n)| {
            let kept_through = match policy.limit(py) {
                Limit::Through(d) => Some(d),
                Limit::NoCloseout => None,
            };
            ProgramYearStatus {
                program_year: py,
                closeout: policy.closeout.get(&py).copied(),
                kept_through,
                past_retention: policy.past_retention(py, opts.today),
                files: n,
            }
        })
        .collect();
    let mut report = PurgeReport {
        dry_run: opts.dry_run,
        today: opts.today,
        years_after_closeout: policy.years_after_closeout,
        program_years,
        files,
        pending_runs: pending.into_iter().collect(),
        tombstoned: 0,
        audit_id: None,
        purged_at: None,
    };
    if opts.dry_run {
        return Ok(report);
    }

    let targets: Vec<PublishedFile> = report
        .files
        .iter()
        .map(|f| PublishedFile {
            zone: f.zone,
            run_id: f.run_id,
            path: PathBuf::from(&f.path),
        })
        .collect();
    let removed = zones.retire(&targets)?;
    // What actually happened wins over the plan: a file that vanished between planning
    // and removal (a concurrent purge, a prune) is recorded as already absent.
    for (f, removed) in report.files.iter_mut().zip(removed) {
        f.action = if removed {
            Action::Delete
        } else {
            Action::Tombstone
        };
    }
    let at = Utc::now().trunc_subsecs(6);
    let ids: Vec<i64> = report.files.iter().map(|f| f.lineage_id).collect();
    let audit = AuditEntry {
        actor: opts.actor.clone(),
        action: AUDIT_ACTION.into(),
        reason: Some(opts.reason.clone()),
        detail: report.audit_detail(),
    };
    let recorded = store.record_purge(&ids, at, &audit).await?;
    report.tombstoned = recorded.tombstoned;
    report.audit_id = Some(recorded.audit_id);
    report.purged_at = Some(at);
    tracing::info!(
        deleted = report.count(Action::Delete, None),
        already_absent = report.count(Action::Tombstone, None),
        audit_id = recorded.audit_id,
        "purge done"
    );
    Ok(report)
}

impl fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        writeln!(
            f,
            "purge{} as of {}: files are kept {} years after their program year's closeout",
            if self.dry_run {
                " (dry run: nothing deleted)"
            } else {
                ""
            },
            self.today,
            self.years_after_closeout
        )?;
        if self.program_years.is_empty() {
            writeln!(f, "  lineage holds no files that are still on record")?;
        } else {
            writeln!(
                f,
                "  {:<8} {:<10}  {:<10}  {:>6}  status",
                "program", "closeout", "kept until", "files"
            )?;
        }
        for p in &self.program_years {
            let show = |d: Option<NaiveDate>| d.map_or_else(|| "-".to_string(), |d| d.to_string());
            let status = match (p.closeout, p.past_retention) {
                (None, _) => format!(
                    "kept: no closeout date ([retention.closeout] PY{} = \"YYYY-MM-DD\")",
                    p.program_year
                ),
                (Some(_), true) => "past retention".to_string(),
                (Some(_), false) => "kept".to_string(),
            };
            writeln!(
                f,
                "  PY{:<6} {:<10}  {:<10}  {:>6}  {status}",
                p.program_year,
                show(p.closeout),
                show(p.kept_through),
                p.files
            )?;
        }
        writeln!(
            f,
            "  {verb} {} files ({} de-identified, {} secure); {} more already gone from disk, {}",
            self.count(Action::Delete, None),
            self.count(Action::Delete, Some(Zone::Deid)),
            self.count(Action::Delete, Some(Zone::Secure)),
            self.count(Action::Tombstone, None),
            if self.dry_run {
                "to be marked purged"
            } else {
                "marked purged"
            }
        )?;
        for file in self.deleted() {
            let zone = match file.zone {
                Zone::Deid => "lake",
                Zone::Secure => "secure",
            };
            writeln!(
                f,
                "    {zone}/{}  (PY{})",
                file.zone_path(),
                file.program_year
            )?;
        }
        if !self.pending_runs.is_empty() {
            writeln!(
                f,
                "  left for the next purge: run(s) {:?} are still publishing",
                self.pending_runs
            )?;
        }
        if !self.dry_run {
            write!(
                f,
                "  lineage keeps every purged file's persons (breach questions still answer); "
            )?;
            match self.audit_id {
                Some(id) => writeln!(f, "audit log entry {id}")?,
                None => writeln!(f, "no audit entry")?,
            }
        }
        Ok(())
    }
}
