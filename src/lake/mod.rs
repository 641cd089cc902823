//! The two output zones and how a run's files get there.
//!
//! ```text
//! lake/
//!   current -> snapshots/<run_id>     symlink: what analysts and DataFusion read
//!   snapshots/<run_id>/<dataset>/<partition>=<value>/part-00000.parquet
//!   .staging/<run_id>/…               a run's de-identified files while it is written
//! secure/                             0700
//!   runs/<run_id>/…                   0700 dirs, 0600 files: identifiable outputs, each
//!                                     sealed with AES-256-GCM (`crate::secure`)
//!   .staging/<run_id>/…
//! ```
//!
//! A run writes everything into staging (each file fsynced as it closes), the pipeline
//! commits the registry and lineage with the run marked `publishing`, then
//! [`Snapshot::publish`] moves staging into place: the snapshot directory by one rename,
//! `current` by renaming a fresh symlink over it (rename is atomic, so a reader resolves
//! either the old snapshot or the new one, never a mix), the secure run directory by one
//! rename, and finally snapshots older than the previous one are removed. A crash before
//! the store commit leaves staging that [`recover`] deletes; a crash after it leaves
//! staging or half-done renames that [`recover`] completes. `current` always names a
//! complete snapshot.
//!
//! Readers should resolve `current` once per query ([`current_snapshot`]): a listing that
//! walks `lake/current/…` path by path while a publish switches it could mix snapshots.
//! The previous snapshot is kept, so a query started just before a publish finishes.

mod fsx;
pub mod personset;
mod retire;
mod write;

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::failpoint;
use crate::schema::{Column, PiiClass};
use crate::secure::SecureZone;

pub use personset::{PersonSet, PersonSetError};
pub use retire::{Presence, PublishedFile, Zones};
pub use write::hive_escape;

/// Hive's directory value for a null (or empty) partition value. DataFusion reads it back
/// as that literal string: declare a partition column that can be null as `Utf8`.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

const STAGING: &str = ".staging";
const SNAPSHOTS: &str = "snapshots";
const CURRENT: &str = "current";
const CURRENT_TMP: &str = ".current.tmp";
const RUNS: &str = "runs";

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot write Parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: cannot write: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("dataset `{dataset}`, column `{column}`: {source}")]
    Convert {
        dataset: String,
        column: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error(
        "dataset `{dataset}`: column `{column}` has no ColumnMeta (PII class); lineage must describe every column written"
    )]
    MissingColumnMeta { dataset: String, column: String },
    #[error("dataset `{dataset}`: person id column `{column}` {problem}")]
    PersonIdColumn {
        dataset: String,
        column: String,
        problem: String,
    },
    #[error("dataset `{dataset}`: partition column `{column}` {problem}")]
    PartitionColumn {
        dataset: String,
        column: String,
        problem: String,
    },
    #[error("`{name}` is not a valid {what}: {problem}")]
    BadName {
        what: &'static str,
        name: String,
        problem: &'static str,
    },
    #[error(
        "staging of run(s) {run_ids:?} is still present: call lake::recover with the store's publishing runs before starting a new run"
    )]
    PendingStaging { run_ids: Vec<i64> },
    #[error("run {run_id} already has published output at {path}")]
    AlreadyPublished { run_id: i64, path: PathBuf },
    #[error("{path} exists but is not the symlink xmatch manages")]
    NotASymlink { path: PathBuf },
    #[error(transparent)]
    Secure(#[from] crate::secure::SecureError),
}

/// Which of the two output zones a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    /// De-identified: analysts and DataFusion read it.
    Deid,
    /// Identifiable: 0600 files in 0700 directories.
    Secure,
}

impl Zone {
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Deid => "deid",
            Zone::Secure => "secure",
        }
    }

    pub fn parse(s: &str) -> Option<Zone> {
        match s {
            "deid" => Some(Zone::Deid),
            "secure" => Some(Zone::Secure),
            _ => None,
        }
    }
}

/// What lineage keeps about a column: enough to answer "which sensitive categories did
/// this file hold?" after the file is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnMeta {
    pub name: String,
    pub pii: PiiClass,
    /// A category name from `sensitivity.toml`.
    pub sensitive: Option<String>,
}

impl ColumnMeta {
    pub fn new(name: impl Into<String>, pii: PiiClass, sensitive: Option<&str>) -> ColumnMeta {
        ColumnMeta {
            name: name.into(),
            pii,
            sensitive: sensitive.map(str::to_string),
        }
    }

    /// A column derived from nothing personal (counts, codes, run ids).
    pub fn plain(name: impl Into<String>) -> ColumnMeta {
        ColumnMeta::new(name, PiiClass::None, None)
    }
}

impl From<&Column> for ColumnMeta {
    fn from(c: &Column) -> ColumnMeta {
        ColumnMeta {
            name: c.name.clone(),
            pii: c.pii,
            sensitive: c.sensitive.clone(),
        }
    }
}

/// How a dataset's columns are described and where its persons come from.
///
/// Person sets hold *internal* person ids (the registry's compact `persons.id`), not
/// `person_key`s. Rather than have the lake look keys up, the caller — who resolved the
/// persons and has the ids at hand — adds an `Int64` column of ids and names it in
/// `person_id_column`; the lake reads it into the file's [`PersonSet`] and drops it before
/// writing, so internal ids never reach a file. Null ids (rows of no known person) are
/// skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetMeta {
    /// Every column written (including the partition column), with its PII class.
    pub columns: Vec<ColumnMeta>,
    /// An `Int64` column of internal person ids, dropped before writing.
    pub person_id_column: Option<String>,
}

impl DatasetMeta {
    fn column(&self, name: &str) -> Option<&ColumnMeta> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// One file a run wrote, as lineage records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    pub zone: Zone,
    /// The dataset name (deid), or the secure file's relative path without its extension.
    pub dataset: String,
    /// Relative to the zone's published root: the snapshot directory (what `lake/current`
    /// points to) for the de-identified zone, `secure/runs/<run_id>` for the secure zone.
    pub path: PathBuf,
    /// Hex SHA-256 of the file's bytes: for the secure zone, of the sealed bytes on disk,
    /// so a copy of the file is found by its hash.
    pub sha256: String,
    pub rows: u64,
    /// The file's columns in order, then the partition column (whose values are in the path).
    pub columns: Vec<ColumnMeta>,
    pub persons: PersonSet,
    /// When the file was closed (microsecond precision, as both stores keep it).
    pub written_at: DateTime<Utc>,
}

/// The staging area of one run.
#[derive(Debug)]
pub struct Snapshot {
    run_id: i64,
    lake_dir: PathBuf,
    secure_dir: PathBuf,
    /// Seals every secure-zone file as it is written.
    zone: SecureZone,
    deid_staging: PathBuf,
    secure_staging: PathBuf,
    /// Behind locks so several threads can write different datasets of one run at once:
    /// encoding and compressing Parquet is most of a run's writing time.
    files: Mutex<Vec<WrittenFile>>,
    /// Next part number per directory (relative), so a dataset written in several calls
    /// never overwrites its own parts.
    next_part: Mutex<HashMap<PathBuf, u32>>,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct PublishedSnapshot {
    pub run_id: i64,
    /// `lake/snapshots/<run_id>`, which `lake/current` now points to.
    pub snapshot_dir: PathBuf,
    /// `secure/runs/<run_id>`.
    pub secure_run_dir: PathBuf,
    pub files: Vec<WrittenFile>,
    /// The run `current` pointed to before (kept for readers still on it).
    pub previous: Option<i64>,
    /// Snapshots removed as older than the previous one.
    pub removed: Vec<i64>,
}

impl Snapshot {
    /// Creates the run's staging directories (and the zones' layout on first use).
    ///
    /// Staging left by this same run id (a retry) is discarded. Staging of *other* runs is
    /// an error rather than silently deleted: whether it may be deleted depends on whether
    /// the store committed that run, which only [`recover`] is told.
    ///
    /// Secure-zone files are sealed under `zone`'s key, in `zone`'s directory.
    pub fn begin(lake_dir: &Path, zone: &SecureZone, run_id: i64) -> Result<Snapshot, LakeError> {
        let secure_dir = zone.root();
        fsx::create_dirs(&lake_dir.join(STAGING), false)?;
        fsx::create_dirs(&lake_dir.join(SNAPSHOTS), false)?;
        fsx::create_dirs(secure_dir, true)?;
        fsx::create_dirs(&secure_dir.join(STAGING), true)?;
        fsx::create_dirs(&secure_dir.join(RUNS), true)?;

        let mut pending: Vec<i64> = fsx::run_dirs(&lake_dir.join(STAGING))?;
        pending.extend(fsx::run_dirs(&secure_dir.join(STAGING))?);
        pending.sort_unstable();
        pending.dedup();
        pending.retain(|&id| id != run_id);
        if !pending.is_empty() {
            return Err(LakeError::PendingStaging { run_ids: pending });
        }
        for published in [
            lake_dir.join(SNAPSHOTS).join(run_id.to_string()),
            secure_dir.join(RUNS).join(run_id.to_string()),
        ] {
            if published.exists() {
                return Err(LakeError::AlreadyPublished {
                    run_id,
                    path: published,
                });
            }
        }

        let deid_staging = lake_dir.join(STAGING).join(run_id.to_string());
        let secure_staging = secure_dir.join(STAGING).join(run_id.to_string());
        fsx::remove_dir_all_if_exists(&deid_staging)?;
        fsx::remove_dir_all_if_exists(&secure_staging)?;
        fsx::create_dirs(&deid_staging, false)?;
        fsx::create_dirs(&secure_staging, true)?;
        for dir in [
            lake_dir.join(STAGING),
            lake_dir.to_path_buf(),
            secure_dir.join(STAGING),
            secure_dir.to_path_buf(),
        ] {
            fsx::sync_dir(&dir)?;
        }
        Ok(Snapshot {
            run_id,
            lake_dir: lake_dir.to_path_buf(),
            secure_dir: secure_dir.to_path_buf(),
            zone: zone.clone(),
            deid_staging,
            secure_staging,
            files: Mutex::new(Vec::new()),
            next_part: Mutex::new(HashMap::new()),
        })
    }

    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Files written so far (what the pipeline records as lineage before publishing).
    /// In zone and path order, however many threads wrote them.
    pub fn files(&self) -> Vec<WrittenFile> {
        let mut files = self.lock_files().clone();
        sort_files(&mut files);
        files
    }

    fn lock_files(&self) -> std::sync::MutexGuard<'_, Vec<WrittenFile>> {
        // A writer that panicked left no half-recorded file behind (the push is one
        // step), so the list is still right.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a de-identified dataset as Parquet under `<dataset>/`, Hive-partitioned by
    /// `partition` when given: that column is removed from the rows and becomes the
    /// directory `<partition>=<value>` (null → `__HIVE_DEFAULT_PARTITION__`). One file per
    /// partition per call; calling again for the same dataset adds parts.
    ///
    /// Unpartitioned, a dataset with no rows still gets one (empty) file when at least one
    /// batch is given, so readers see its schema.
    pub fn write_deid(
        &self,
        dataset: &str,
        partition: Option<&str>,
        batches: impl IntoIterator<Item = RecordBatch>,
        meta: &DatasetMeta,
    ) -> Result<(), LakeError> {
        check_component(dataset, "dataset name")?;
        if let Some(p) = partition {
            check_component(p, "partition column name")?;
            if meta.column(p).is_none() {
                return Err(LakeError::MissingColumnMeta {
                    dataset: dataset.into(),
                    column: p.into(),
                });
            }
        }
        // The dataset's directory exists even when no rows come, so a listing over it
        // finds an empty dataset rather than a missing path.
        fsx::create_dirs(&self.deid_staging.join(dataset), false)?;
        let mut open: HashMap<String, write::OpenFile> = HashMap::new();
        let mut columns: Option<Vec<ColumnMeta>> = None;
        for batch in batches {
            let prepared =
                write::prepare(&batch, dataset, meta.person_id_column.as_deref(), partition)?;
            if columns.is_none() {
                let mut cols = describe(prepared.batch.schema().fields(), dataset, meta)?;
                if let Some(p) = partition {
                    cols.push(meta.column(p).expect("checked above").clone());
                }
                columns = Some(cols);
            }
            for (value, part, ids) in write::split_by_partition(prepared, dataset)? {
                let file = match open.entry(value) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let dir = match partition {
                            Some(p) => Path::new(dataset).join(format!("{p}={}", e.key())),
                            None => PathBuf::from(dataset),
                        };
                        let f = self.open_deid(&dir, &part)?;
                        e.insert(f)
                    }
                };
                file.writer.write(&part, &file.absolute)?;
                file.rows += part.num_rows() as u64;
                if let Some(ids) = ids {
                    file.persons.extend(ids.iter().flatten());
                }
                failpoint::hit("lake.mid_write");
            }
        }
        let columns = columns.unwrap_or_default();
        let mut files: Vec<write::OpenFile> = open.into_values().collect();
        files.sort_by(|a, b| a.relative.cmp(&b.relative));
        for f in files {
            self.close(f, Zone::Deid, dataset.to_string(), columns.clone())?;
        }
        Ok(())
    }

    /// Writes one secure-zone file at `relative` (under `secure/runs/<run_id>/` once
    /// published), as CSV or Parquet by its extension, 0600 in 0700 directories.
    pub fn write_secure(
        &self,
        relative: &Path,
        batches: impl IntoIterator<Item = RecordBatch>,
        meta: &DatasetMeta,
    ) -> Result<(), LakeError> {
        check_relative(relative)?;
        let parquet = match relative.extension().and_then(|e| e.to_str()) {
            Some("parquet") => true,
            Some("csv") => false,
            _ => {
                return Err(LakeError::BadName {
                    what: "secure-zone file name",
                    name: relative.display().to_string(),
                    problem: "must end in .csv or .parquet",
                });
            }
        };
        let dataset = relative
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let absolute = self.secure_staging.join(relative);
        if let Some(parent) = absolute.parent() {
            // Each level 0700, not just the leaf.
            let mut dir = self.secure_staging.clone();
            for c in relative.parent().into_iter().flat_map(|p| p.components()) {
                dir.push(c);
                fsx::create_dirs(&dir, true)?;
            }
            debug_assert!(parent.starts_with(&self.secure_staging));
        }
        let mut file: Option<write::OpenFile> = None;
        let mut columns = Vec::new();
        for batch in batches {
            let prepared =
                write::prepare(&batch, &dataset, meta.person_id_column.as_deref(), None)?;
            let f = match &mut file {
                Some(f) => f,
                None => {
                    columns = describe(prepared.batch.schema().fields(), &dataset, meta)?;
                    let sink = self.sealed_sink(&absolute)?;
                    let writer = if parquet {
                        write::FileWriter::parquet(sink, prepared.batch.schema(), &absolute)?
                    } else {
                        write::FileWriter::csv(sink)
                    };
                    file.insert(write::OpenFile {
                        relative: relative.to_path_buf(),
                        absolute: absolute.clone(),
                        writer,
                        rows: 0,
                        persons: Default::default(),
                    })
                }
            };
            if failpoint::fails("lake.mid_write") {
                return Err(LakeError::Io {
                    path: f.absolute.clone(),
                    source: std::io::Error::other("injected failure (failpoint lake.mid_write)"),
                });
            }
            f.writer.write(&prepared.batch, &f.absolute)?;
            f.rows += prepared.batch.num_rows() as u64;
            if let Some(ids) = prepared.person_ids {
                f.persons.extend(ids.iter().flatten());
            }
            failpoint::hit("lake.mid_write");
        }
        match file {
            Some(f) => self.close(f, Zone::Secure, dataset, columns),
            // No batches at all: still leave an (empty) file, since a secure output such as
            // "no new temporary IDs tonight" is an answer the importer expects to find.
            None => {
                let sha256 = match self.sealed_sink(&absolute)? {
                    write::Sink::Sealed(w) => {
                        w.finish().map_err(fsx::io(&absolute))?.finish(&absolute)?
                    }
                    write::Sink::Plain(_) => unreachable!("the secure zone is sealed"),
                };
                self.sync_entry(Zone::Secure, &absolute)?;
                self.lock_files().push(WrittenFile {
                    zone: Zone::Secure,
                    dataset,
                    path: relative.to_path_buf(),
                    sha256,
                    rows: 0,
                    columns: Vec::new(),
                    persons: PersonSet::new(),
                    written_at: now(),
                });
                Ok(())
            }
        }
    }

    /// A new 0600 file at `absolute` (in the secure staging directory), sealed.
    fn sealed_sink(&self, absolute: &Path) -> Result<write::Sink, LakeError> {
        let handle = fsx::create_file(absolute, true)?;
        let w = self
            .zone
            .writer(absolute, self.run_id, write::HashingWriter::new(handle))?;
        Ok(write::Sink::Sealed(Box::new(w)))
    }

    fn open_deid(&self, dir: &Path, first: &RecordBatch) -> Result<write::OpenFile, LakeError> {
        let relative = {
            let mut parts = self.next_part.lock().unwrap_or_else(|e| e.into_inner());
            let n = parts.entry(dir.to_path_buf()).or_insert(0);
            *n += 1;
            dir.join(format!("part-{:05}.parquet", *n - 1))
        };
        let absolute = self.deid_staging.join(&relative);
        fsx::create_dirs(absolute.parent().expect("has a parent"), false)?;
        let handle = fsx::create_file(&absolute, false)?;
        let writer = write::FileWriter::parquet(
            write::Sink::Plain(write::HashingWriter::new(handle)),
            first.schema(),
            &absolute,
        )?;
        Ok(write::OpenFile {
            relative,
            absolute,
            writer,
            rows: 0,
            persons: Default::default(),
        })
    }

    fn close(
        &self,
        f: write::OpenFile,
        zone: Zone,
        dataset: String,
        columns: Vec<ColumnMeta>,
    ) -> Result<(), LakeError> {
        let sha256 = f.writer.finish(&f.absolute)?;
        self.sync_entry(zone, &f.absolute)?;
        self.lock_files().push(WrittenFile {
            zone,
            dataset,
            path: f.relative,
            sha256,
            rows: f.rows,
            columns,
            persons: f.persons.finish(),
            written_at: now(),
        });
        Ok(())
    }

    /// Makes a closed file's directory entry durable, and those of its directories up to
    /// the zone's `.staging`: the store commits lineage *before* publish and recovery
    /// rolls committed runs forward, so staging must survive a power cut from then on, not
    /// only the file contents.
    fn sync_entry(&self, zone: Zone, file: &Path) -> Result<(), LakeError> {
        let root = match zone {
            Zone::Deid => &self.deid_staging,
            Zone::Secure => &self.secure_staging,
        };
        let stop = root.parent().expect("staging has a parent");
        let mut dir = file.parent();
        while let Some(d) = dir {
            fsx::sync_dir(d)?;
            if d == stop {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    /// Makes the staged run the published one. Files and their directory entries were
    /// made durable as they closed; a final pass covers empty directories, then: snapshot
    /// rename, `current` switch, secure rename, pruning.
    /// Call it only after the store committed the run as `publishing`: from the first
    /// rename on, a crash is completed by [`recover`], not undone.
    pub fn publish(self) -> Result<PublishedSnapshot, LakeError> {
        for dir in fsx::dirs_deepest_first(&self.deid_staging)?
            .into_iter()
            .chain(fsx::dirs_deepest_first(&self.secure_staging)?)
        {
            fsx::sync_dir(&dir)?;
        }
        failpoint::hit("lake.before_publish");
        let previous = current_snapshot(&self.lake_dir)?.map(|(id, _)| id);
        let snapshot_dir = move_deid(&self.lake_dir, self.run_id)?;
        switch_current(&self.lake_dir, self.run_id)?;
        failpoint::hit("publish.mid_rename");
        let secure_run_dir = move_secure(&self.secure_dir, self.run_id)?;
        failpoint::hit("publish.after_rename");
        let keep: Vec<i64> = std::iter::once(self.run_id).chain(previous).collect();
        let removed = prune(&self.lake_dir, &keep)?;
        Ok(PublishedSnapshot {
            run_id: self.run_id,
            snapshot_dir,
            secure_run_dir,
            files: {
                let mut files = self.files.into_inner().unwrap_or_else(|e| e.into_inner());
                sort_files(&mut files);
                files
            },
            previous,
            removed,
        })
    }
}

fn sort_files(files: &mut [WrittenFile]) {
    files.sort_by(|a, b| (a.zone.as_str(), &a.path).cmp(&(b.zone.as_str(), &b.path)));
}

/// What [`recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Committed runs now fully published (including ones that already were): the pipeline
    /// can mark them `succeeded`.
    pub published: Vec<i64>,
    /// Of those, the runs this call had to finish.
    pub rolled_forward: Vec<i64>,
    /// Uncommitted runs whose staging was deleted.
    pub discarded: Vec<i64>,
    /// Committed runs with neither staging nor a snapshot (someone removed them): the
    /// pipeline should mark them failed and say so.
    pub missing: Vec<i64>,
    /// The run `current` points to afterwards.
    pub current: Option<i64>,
}

/// Brings the zones to a consistent state after a crash.
///
/// `committed_run_ids` are the runs the store has committed but not yet marked published
/// (status `publishing`). Their staging is complete (files are fsynced before the store
/// commit), so they are rolled forward: snapshot moved, `current` switched (never
/// backwards, to an older run than it names), secure directory moved. Staging of
/// `live_run_ids` (runs still being worked on by a live process) is left alone; staging of
/// any other run never committed and is deleted. Idempotent: safe to call at every start.
pub fn recover(
    lake_dir: &Path,
    secure_dir: &Path,
    committed_run_ids: &[i64],
    live_run_ids: &[i64],
) -> Result<Recovery, LakeError> {
    let mut out = Recovery::default();
    // A crash between creating the temporary symlink and renaming it leaves it behind.
    match fs::symlink_metadata(lake_dir.join(CURRENT_TMP)) {
        Ok(_) => fs::remove_file(lake_dir.join(CURRENT_TMP)).map_err(fsx::io(lake_dir))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fsx::io(lake_dir)(e)),
    }

    let mut staged = fsx::run_dirs(&lake_dir.join(STAGING))?;
    staged.extend(fsx::run_dirs(&secure_dir.join(STAGING))?);
    staged.sort_unstable();
    staged.dedup();
    for id in staged {
        if !committed_run_ids.contains(&id) && !live_run_ids.contains(&id) {
            fsx::remove_dir_all_if_exists(&lake_dir.join(STAGING).join(id.to_string()))?;
            fsx::remove_dir_all_if_exists(&secure_dir.join(STAGING).join(id.to_string()))?;
            out.discarded.push(id);
        }
    }
    for dir in [lake_dir.join(STAGING), secure_dir.join(STAGING)] {
        if dir.exists() {
            fsx::sync_dir(&dir)?;
        }
    }

    let mut committed = committed_run_ids.to_vec();
    committed.sort_unstable();
    committed.dedup();
    for id in committed {
        let mut acted = false;
        let deid_staging = lake_dir.join(STAGING).join(id.to_string());
        let snapshot = lake_dir.join(SNAPSHOTS).join(id.to_string());
        if deid_staging.exists() {
            move_deid(lake_dir, id)?;
            acted = true;
        }
        let current = current_snapshot(lake_dir)?.map(|(c, _)| c);
        if snapshot.exists() {
            if current.is_none_or(|c| c < id) {
                switch_current(lake_dir, id)?;
                acted = true;
            }
        } else if current.is_none_or(|c| c < id) {
            out.missing.push(id);
            continue;
        }
        if secure_dir.join(STAGING).join(id.to_string()).exists() {
            move_secure(secure_dir, id)?;
            acted = true;
        }
        out.published.push(id);
        if acted {
            out.rolled_forward.push(id);
        }
    }

    out.current = current_snapshot(lake_dir)?.map(|(c, _)| c);
    if let Some(current) = out.current {
        let previous = fsx::run_dirs(&lake_dir.join(SNAPSHOTS))?
            .into_iter()
            .filter(|&id| id < current)
            .max();
        let keep: Vec<i64> = std::iter::once(current).chain(previous).collect();
        prune(lake_dir, &keep)?;
    }
    Ok(out)
}

/// Every `*.parquet` file under `dir`, recursively (a dataset's Hive partitions), sorted.
/// Unreadable directories are skipped: a reader asks what is there, not whether all of it
/// could be listed.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The run `lake/current` points to and its snapshot directory, if anything is published.
/// Readers should resolve this once per query and read from the returned directory.
pub fn current_snapshot(lake_dir: &Path) -> Result<Option<(i64, PathBuf)>, LakeError> {
    let link = lake_dir.join(CURRENT);
    let target = match fs::read_link(&link) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(LakeError::NotASymlink { path: link });
        }
        Err(e) => return Err(fsx::io(&link)(e)),
    };
    let id = target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or(LakeError::NotASymlink { path: link })?;
    Ok(Some((id, lake_dir.join(SNAPSHOTS).join(id.to_string()))))
}

/// `.staging/<id>` → `snapshots/<id>`, one rename, made durable.
fn move_deid(lake_dir: &Path, id: i64) -> Result<PathBuf, LakeError> {
    let from = lake_dir.join(STAGING).join(id.to_string());
    let to = lake_dir.join(SNAPSHOTS).join(id.to_string());
    if to.exists() {
        return Err(LakeError::AlreadyPublished {
            run_id: id,
            path: to,
        });
    }
    fs::rename(&from, &to).map_err(fsx::io(&from))?;
    fsx::sync_dir(&lake_dir.join(SNAPSHOTS))?;
    fsx::sync_dir(&lake_dir.join(STAGING))?;
    Ok(to)
}

/// Points `current` at `snapshots/<id>` by renaming a new symlink over it. The target is
/// relative, so the lake directory can be moved or mounted elsewhere.
fn switch_current(lake_dir: &Path, id: i64) -> Result<(), LakeError> {
    let tmp = lake_dir.join(CURRENT_TMP);
    let _ = fs::remove_file(&tmp);
    let target = Path::new(SNAPSHOTS).join(id.to_string());
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &tmp).map_err(fsx::io(&tmp))?;
    #[cfg(not(unix))]
    compile_error!("the lake's atomic publish needs symlinks (Unix)");
    let current = lake_dir.join(CURRENT);
    if let Ok(m) = fs::symlink_metadata(&current)
        && !m.file_type().is_symlink()
    {
        let _ = fs::remove_file(&tmp);
        return Err(LakeError::NotASymlink { path: current });
    }
    fs::rename(&tmp, &current).map_err(fsx::io(&current))?;
    fsx::sync_dir(lake_dir)
}

/// `secure/.staging/<id>` → `secure/runs/<id>`, one rename, made durable.
fn move_secure(secure_dir: &Path, id: i64) -> Result<PathBuf, LakeError> {
    let from = secure_dir.join(STAGING).join(id.to_string());
    let to = secure_dir.join(RUNS).join(id.to_string());
    if to.exists() {
        return Err(LakeError::AlreadyPublished {
            run_id: id,
            path: to,
        });
    }
    fs::rename(&from, &to).map_err(fsx::io(&from))?;
    fsx::sync_dir(&secure_dir.join(RUNS))?;
    fsx::sync_dir(&secure_dir.join(STAGING))?;
    Ok(to)
}

/// Removes every snapshot not in `keep`; returns the run ids removed.
fn prune(lake_dir: &Path, keep: &[i64]) -> Result<Vec<i64>, LakeError> {
    let mut removed = Vec::new();
    for id in fsx::run_dirs(&lake_dir.join(SNAPSHOTS))? {
        if !keep.contains(&id) {
            fsx::remove_dir_all_if_exists(&lake_dir.join(SNAPSHOTS).join(id.to_string()))?;
            removed.push(id);
        }
    }
    if !removed.is_empty() {
        fsx::sync_dir(&lake_dir.join(SNAPSHOTS))?;
    }
    Ok(removed)
}

/// The column metadata of each field, in order; every written column must be described.
fn describe(
    fields: &arrow::datatypes::Fields,
    dataset: &str,
    meta: &DatasetMeta,
) -> Result<Vec<ColumnMeta>, LakeError> {
    fields
        .iter()
        .map(|f| {
            meta.column(f.name())
                .cloned()
                .ok_or_else(|| LakeError::MissingColumnMeta {
                    dataset: dataset.to_string(),
                    column: f.name().clone(),
                })
        })
        .collect()
}

/// A single, visible path component: readers (Hive, Spark, DataFusion) skip names that
/// start with `.` or `_`, and `/` or `=` would change the layout's meaning.
fn check_component(name: &str, what: &'static str) -> Result<(), LakeError> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.starts_with('.') || name.starts_with('_') {
        Some("starts with `.` or `_` (readers treat such names as hidden)")
    } else if name.contains(['/', '\\', '=', '\0']) {
        Some("contains `/`, `\\`, `=` or NUL")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(LakeError::BadName {
            what,
            name: name.to_string(),
            problem,
        }),
        None => Ok(()),
    }
}

fn check_relative(path: &Path) -> Result<(), LakeError> {
    let ok = !path.as_os_str().is_empty()
        && path.components().all(|c| match c {
            Component::Normal(s) => s.to_str().is_some_and(|s| !s.starts_with('.')),
            _ => false,
        });
    if ok {
        Ok(())
    } else {
        Err(LakeError::BadName {
            what: "secure-zone relative path",
            name: path.display().to_string(),
            problem: "must be relative, without `..`, `.` or hidden components",
        })
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
