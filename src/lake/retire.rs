//! Removing published files for good (retention), without breaking readers of the lake.
//!
//! Files are only ever removed whole, and a de-identified partition directory whose every
//! file goes is first renamed out of its snapshot in one step (into `.purging/`, then
//! deleted): a listing of the snapshot sees the partition complete or not at all, never
//! some of its parts. A dataset directory itself is never removed, so a table whose rows
//! all went is "empty", as after a run with no rows, rather than a broken path. In the
//! secure zone nobody lists, so files are removed one by one, then directories left empty
//! up to and including `secure/runs/<run>`.
//!
//! Only paths the caller names are touched: a stray file a person put in the zone stays,
//! and so does the directory holding it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::{LakeError, RUNS, SNAPSHOTS, STAGING, Zone, fsx};

/// Where removed directories wait for deletion; a crash leaves them for the next call.
const TRASH: &str = ".purging";

/// Where a published file is, or is about to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Present,
    /// Not on disk (already removed, e.g. with a pruned snapshot).
    Absent,
    /// Its run has staging that is not yet published: the file may yet appear.
    Pending,
}

/// A published file: its zone, run and path relative to the run's directory in that zone
/// (as lineage records it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublishedFile {
    pub zone: Zone,
    pub run_id: i64,
    pub path: PathBuf,
}

/// The two zone roots.
#[derive(Debug, Clone)]
pub struct Zones {
    pub lake_dir: PathBuf,
    pub secure_dir: PathBuf,
}

impl Zones {
    pub fn new(lake_dir: &Path, secure_dir: &Path) -> Zones {
        Zones {
            lake_dir: lake_dir.to_path_buf(),
            secure_dir: secure_dir.to_path_buf(),
        }
    }

    /// `lake/snapshots/<run>` or `secure/runs/<run>`.
    pub fn run_dir(&self, zone: Zone, run_id: i64) -> PathBuf {
        match zone {
            Zone::Deid => self.lake_dir.join(SNAPSHOTS).join(run_id.to_string()),
            Zone::Secure => self.secure_dir.join(RUNS).join(run_id.to_string()),
        }
    }

    fn staging_dir(&self, zone: Zone, run_id: i64) -> PathBuf {
        match zone {
            Zone::Deid => self.lake_dir.join(STAGING).join(run_id.to_string()),
            Zone::Secure => self.secure_dir.join(STAGING).join(run_id.to_string()),
        }
    }

    fn root(&self, zone: Zone) -> &Path {
        match zone {
            Zone::Deid => &self.lake_dir,
            Zone::Secure => &self.secure_dir,
        }
    }

    /// The file's published location. `None` for a path that is not plainly relative
    /// (`..`, absolute, empty): such a lineage row must never steer a deletion.
    pub fn locate(&self, f: &PublishedFile) -> Option<PathBuf> {
        plain_relative(&f.path).then(|| self.run_dir(f.zone, f.run_id).join(&f.path))
    }

    /// Whether the file is on disk. Staging is looked at first: a publish moves staging
    /// to the published place, so "no staging, then no file" can never miss a file that
    /// was being moved between the two checks.
    pub fn presence(&self, f: &PublishedFile) -> Result<Presence, LakeError> {
        let Some(path) = self.locate(f) else {
            return Ok(Presence::Absent);
        };
        if exists(&self.staging_dir(f.zone, f.run_id))? {
            return Ok(Presence::Pending);
        }
        Ok(if exists(&path)? {
            Presence::Present
        } else {
            Presence::Absent
        })
    }

    /// Removes the files (see the module documentation); returns, in input order,
    /// whether each one was removed by this call (`false`: it was already gone). A
    /// path [`Zones::locate`] refuses is an error, not skipped.
    pub fn retire(&self, files: &[PublishedFile]) -> Result<Vec<bool>, LakeError> {
        for zone in [Zone::Deid, Zone::Secure] {
            fsx::remove_dir_all_if_exists(&self.root(zone).join(TRASH))?;
        }
        // Parent directory → indices of the files in it.
        let mut by_dir: BTreeMap<(Zone, i64, PathBuf), Vec<usize>> = BTreeMap::new();
        for (i, f) in files.iter().enumerate() {
            if self.locate(f).is_none() {
                return Err(LakeError::BadName {
                    what: "published file path",
                    name: f.path.display().to_string(),
                    problem: "must be relative, without `..`, `.` or an absolute root",
                });
            }
            let parent = f.path.parent().unwrap_or(Path::new("")).to_path_buf();
            by_dir
                .entry((f.zone, f.run_id, parent))
                .or_default()
                .push(i);
        }
        let mut removed = vec![false; files.len()];
        let mut trash_seq = 0u32;
        for ((zone, run_id, parent), idx) in by_dir {
            let run_dir = self.run_dir(zone, run_id);
            let dir = run_dir.join(&parent);
            let names: Vec<&std::ffi::OsStr> = idx
                .iter()
                .map(|&i| files[i].path.file_name().expect("checked relative"))
                .collect();
            let present: Vec<bool> = names
                .iter()
                .map(|n| exists(&dir.join(n)))
                .collect::<Result<_, _>>()?;
            // A partition directory (`<dataset>/<column>=<value>`) holding exactly these
            // files goes in one rename.
            let present_names: Vec<&std::ffi::OsStr> = names
                .iter()
                .zip(&present)
                .filter_map(|(n, &p)| p.then_some(*n))
                .collect();
            let whole_partition = zone == Zone::Deid
                && parent.components().count() == 2
                && !present_names.is_empty()
                && dir_holds_only(&dir, &present_names)?;
            if whole_partition {
                let trash = self.root(zone).join(TRASH);
                fsx::create_dirs(&trash, false)?;
                let to = trash.join(trash_seq.to_string());
                trash_seq += 1;
                fs::rename(&dir, &to).map_err(fsx::io(&dir))?;
                fsx::sync_dir(dir.parent().expect("a partition has a dataset"))?;
                fsx::remove_dir_all_if_exists(&to)?;
            } else {
                for (k, name) in names.iter().enumerate() {
                    if present[k] {
                        let p = dir.join(name);
                        match fs::remove_file(&p) {
                            Ok(()) => {}
                            // Someone else (a concurrent purge) got there first.
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(fsx::io(&p)(e)),
                        }
                    }
                }
                if present.iter().any(|&p| p) {
                    fsx::sync_dir(&dir)?;
                }
            }
            for (k, &i) in idx.iter().enumerate() {
                removed[i] = present[k];
            }
            self.remove_empty_parents(zone, &run_dir, &parent)?;
        }
        for zone in [Zone::Deid, Zone::Secure] {
            fsx::remove_dir_all_if_exists(&self.root(zone).join(TRASH))?;
        }
        Ok(removed)
    }

    /// Removes `run_dir/parent` and its ancestors while empty: in the de-identified zone
    /// up to, not including, the dataset directory; in the secure zone up to and
    /// including the run directory.
    fn remove_empty_parents(
        &self,
        zone: Zone,
        run_dir: &Path,
        parent: &Path,
    ) -> Result<(), LakeError> {
        // Partition directories and below may go in the de-identified zone; the dataset
        // and snapshot directories stay for readers.
        let min_depth = match zone {
            Zone::Deid => 2,
            Zone::Secure => 0,
        };
        let mut rel = parent.to_path_buf();
        loop {
            let depth = rel.components().count();
            if depth < min_depth {
                return Ok(());
            }
            let dir = if depth == 0 {
                run_dir.to_path_buf()
            } else {
                run_dir.join(&rel)
            };
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // A stray file: it stays, and so do the directories holding it.
                Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => return Ok(()),
                Err(e) => return Err(fsx::io(&dir)(e)),
            }
            let holder = dir.parent().expect("inside the zone");
            if exists(holder)? {
                fsx::sync_dir(holder)?;
            }
            if depth == 0 {
                return Ok(());
            }
            rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        }
    }
}

fn plain_relative(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn exists(path: &Path) -> Result<bool, LakeError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(fsx::io(path)(e)),
    }
}

/// Whether `dir` holds exactly `names` (as files) and nothing else.
fn dir_holds_only(dir: &Path, names: &[&std::ffi::OsStr]) -> Result<bool, LakeError> {
    let mut count = 0usize;
    for entry in fs::read_dir(dir).map_err(fsx::io(dir))? {
        let entry = entry.map_err(fsx::io(dir))?;
        if !names.contains(&entry.file_name().as_os_str())
            || !entry.file_type().map_err(fsx::io(dir))?.is_file()
        {
            return Ok(false);
        }
        count += 1;
    }
    Ok(count == names.len())
}
