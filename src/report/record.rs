//! Recording what reporting writes: files made durable by a write-then-rename, lineage
//! rows for them, person sets from `person_key`s.
//!
//! Reporting writes after a run, from its published snapshot, so its files are attributed
//! to that run in lineage: `breach --run N` then also names every extract and report made
//! from run N's data, which is what a breach responder needs to know.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{SubsecRound, Utc};
use sha2::{Digest, Sha256};

use super::{ReportError, one_line};
use crate::lake::{ColumnMeta, PersonSet, WrittenFile, Zone};
use crate::store::Store;
use crate::workspace::Workspace;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole new one: a
/// temporary file beside it (0600 when `private`), fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), ReportError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> Result<(), ReportError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// The lineage record of bytes about to be (or just) written.
pub fn written_file(
    zone: Zone,
    dataset: &str,
    path: PathBuf,
    bytes: &[u8],
    rows: u64,
    columns: Vec<ColumnMeta>,
    persons: PersonSet,
) -> WrittenFile {
    WrittenFile {
        zone,
        dataset: dataset.to_string(),
        path,
        sha256: hex::encode(Sha256::digest(bytes)),
        rows,
        columns,
        persons,
        written_at: Utc::now().trunc_subsecs(6),
    }
}

pub async fn open_store(ws: &Workspace) -> Result<Store, ReportError> {
    ws.open_store()
        .await
        .map_err(|e| ReportError::Output(one_line(&e.to_string())))
}

/// The internal ids of the persons behind `keys` (lineage holds ids, never keys). A key
/// the registry does not know is an error: a file naming persons lineage cannot account
/// for would make breach answers silently short.
pub async fn person_set(store: &Store, keys: &[&str]) -> Result<PersonSet, ReportError> {
    let wanted: HashSet<&str> = keys.iter().copied().collect();
    // Past a few thousand keys one scan of the persons table beats chunked IN lists.
    let found: Vec<(String, i64)> = if wanted.len() > 5_000 {
        store
            .all_person_keys()
            .await?
            .into_iter()
            .filter(|(_, k)| wanted.contains(k.as_str()))
            .map(|(id, k)| (k, id))
            .collect()
    } else {
        let list: Vec<String> = wanted.iter().map(|k| k.to_string()).collect();
        store.persons_by_key(&list).await?
    };
    if found.len() != wanted.len() {
        let known: HashSet<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        let missing = wanted.iter().find(|k| !known.contains(**k)).copied();
        return Err(ReportError::Output(format!(
            "{} person key(s) in the snapshot are not in the registry (first: {}): is the store the one that published this lake?",
            wanted.len() - found.len(),
            missing.unwrap_or("")
        )));
    }
    Ok(PersonSet::from_ids(found.into_iter().map(|(_, id)| id)))
}

/// Records `files` in lineage under `run_id`, in one transaction.
///
/// A file written again from the same run at the same path (a report republished) is
/// not recorded twice when its bytes are the same; when they differ (say the small-cell
/// threshold changed), the new version's path gets `#<first 12 hex of its SHA-256>`,
/// because lineage keeps one row per run and path and the old version's row must stay:
/// copies of it may be out there.
pub async fn record_lineage(
    store: &Store,
    run_id: i64,
    files: &[WrittenFile],
) -> Result<(), ReportError> {
    let known = store
        .lineage_meta(&crate::store::LineageFilter::Run(run_id))
        .await?;
    let mut files = files.to_vec();
    files.retain(|f| {
        !known.iter().any(|k| {
            k.zone == f.zone && k.sha256 == f.sha256 && Path::new(&k.path) == f.path.as_path()
        })
    });
    for f in &mut files {
        if known
            .iter()
            .any(|k| k.zone == f.zone && Path::new(&k.path) == f.path.as_path())
        {
            let mut p = f.path.clone().into_os_string();
            p.push(format!("#{}", &f.sha256[..12]));
            f.path = PathBuf::from(p);
        }
    }
    if files.is_empty() {
        return Ok(());
    }
    let files = &files[..];
    let key_id = store.workspace().await?.map(|w| w.key_id).ok_or_else(|| {
        ReportError::Output("the state store has no workspace row: run `xmatch init`".into())
    })?;
    let mut tx = store.begin().await?;
    tx.record_lineage(run_id, &key_id, files).await?;
    tx.commit().await?;
    Ok(())
}
