//! `xmatch key rotate` and `xmatch key retire OLD`: moving the workspace to a new key
//! without losing a person, a link or a temporary ID.
//!
//! `rotate` writes a new key beside the current one (`key/xmatch.key.next`) and records in
//! the store that a rotation to its id is under way. From then on (the dual-key period)
//! every run tokenizes the participants under both keys: the registry gains each person's
//! tokens under the new key (stored under their rule number + 1000), attached to the same
//! person, so person keys and temporary IDs never change. Partner files tokenized under
//! either key are accepted. Runs record, for the review items whose records they see, the
//! record's key under the new key. Outputs stay under the current key.
//!
//! `retire OLD` ends it: every secure-zone file sealed under OLD is sealed again under the
//! new key (its new hash recorded beside its lineage first), then one store transaction
//! deletes OLD's tokens, gives the new key's their rule numbers, re-keys the review items
//! and names the new key the workspace's; finally the new key file replaces the old one.
//! It refuses while a run is in progress, and, unless forced, while some person has
//! tokens under OLD only (not seen by a run since `rotate`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::KeyError;
use crate::identity::registry::NEXT_KEY_RULE_OFFSET;
use crate::secure::{Keyring, SecureError, SecureZone};
use crate::store::{AuditEntry, LineageFilter, Store};
use crate::workspace::{Key, Workspace};

/// What `rotate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateReport {
    pub current: String,
    pub next: String,
    pub next_path: PathBuf,
}

impl std::fmt::Display for RotateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "rotation from key id {} to key id {} begun; the new key is {}",
            self.current,
            self.next,
            self.next_path.display()
        )?;
        writeln!(
            f,
            "next: back it up (`xmatch key backup --to FILE` now holds both keys), run the nightly pipeline"
        )?;
        write!(
            f,
            "at least once, move partners to the new key, then `xmatch key retire {}`",
            self.current
        )
    }
}

/// Begins a rotation: a new key beside the current one, recorded in the store.
pub async fn rotate(ws: &Workspace, actor: &str) -> Result<RotateReport, KeyError> {
    let (store, key) = ws.open_keyed().await?;
    let result = rotate_with(ws, &store, &key, actor).await;
    store.close().await;
    result
}

async fn rotate_with(
    ws: &Workspace,
    store: &Store,
    key: &Key,
    actor: &str,
) -> Result<RotateReport, KeyError> {
    let row = store.workspace().await?.ok_or(KeyError::NotInitialised)?;
    if let Some(id) = row.next_key_id {
        return Err(KeyError::RotationUnderWay { next: id });
    }
    let next_path = ws.next_key_path();
    // A new key file left by a rotate that stopped before the store recorded it is used:
    // nothing can have been tokenized or sealed under it yet.
    if !next_path.exists() {
        crate::workspace::create_key(&next_path)?;
    }
    let next = crate::workspace::load_key(&next_path)?;
    if next.id() == key.id() {
        return Err(KeyError::NextIsCurrent { path: next_path });
    }
    if !store.begin_key_rotation(next.id()).await? {
        return Err(KeyError::Changed);
    }
    store
        .record_audit(&AuditEntry {
            actor: actor.to_string(),
            action: "key.rotate".into(),
            reason: None,
            detail: serde_json::json!({ "from": key.id(), "to": next.id() }),
        })
        .await?;
    Ok(RotateReport {
        current: key.id().to_string(),
        next: next.id().to_string(),
        next_path,
    })
}

/// What `retire` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetireReport {
    pub retired: String,
    pub current: String,
    /// Secure-zone files sealed again under the new key.
    pub resealed: u64,
    /// Files already under the new key.
    pub already_new: u64,
    /// Files that are not sealed (written before encryption at rest), left as they are.
    pub unsealed: u64,
    pub counts: crate::store::RetiredCounts,
    /// Persons with tokens under the retired key only (`--force`): they are now found by
    /// their person key and temporary IDs, and by their tokens once a run sees them again.
    pub uncovered_persons: u64,
    /// Only the key files were left to swap (an interrupted retire, completed).
    pub resumed: bool,
}

impl std::fmt::Display for RetireReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.resumed {
            return write!(
                f,
                "key id {} retired (an interrupted retire completed); the workspace key is {}",
                self.retired, self.current
            );
        }
        writeln!(
            f,
            "key id {} retired; the workspace key is now {}",
            self.retired, self.current
        )?;
        writeln!(
            f,
            "  secure-zone files sealed again: {} ({} already under the new key, {} not encrypted)",
            self.resealed, self.already_new, self.unsealed
        )?;
        writeln!(
            f,
            "  registry tokens: {} under the old key deleted, {} under the new key kept",
            self.counts.old_tokens, self.counts.new_tokens
        )?;
        writeln!(
            f,
            "  review items re-keyed: {} ({} whose records were not seen since `rotate` keep the old key)",
            self.counts.reviews_rekeyed, self.counts.reviews_not_rekeyed
        )?;
        writeln!(
            f,
            "  held probabilistic decisions re-keyed: {} ({} whose records were not seen since `rotate` dropped)",
            self.counts.held_rekeyed, self.counts.held_dropped
        )?;
        if self.uncovered_persons > 0 {
            writeln!(
                f,
                "  persons known under the old key only (--force): {}",
                self.uncovered_persons
            )?;
        }
        write!(
            f,
            "take a new backup (`xmatch key backup --to FILE`) and destroy the old key's backups"
        )
    }
}

/// Ends the rotation from `old`.
pub async fn retire(
    ws: &Workspace,
    old: &str,
    force: bool,
    actor: &str,
) -> Result<RetireReport, KeyError> {
    let store = ws.open_store().await?;
    let result = retire_with(ws, &store, old, force, actor).await;
    store.close().await;
    result
}

async fn retire_with(
    ws: &Workspace,
    store: &Store,
    old: &str,
    force: bool,
    actor: &str,
) -> Result<RetireReport, KeyError> {
    let row = store.workspace().await?.ok_or(KeyError::NotInitialised)?;
    let new = match row.next_key_id.clone() {
        Some(new) if row.key_id == old => new,
        // The store already moved on: only the key files may be left to swap.
        None if row.key_id != old && swap_pending(ws, old, &row.key_id) => {
            swap_key_files(ws)?;
            return Ok(RetireReport {
                retired: old.to_string(),
                current: row.key_id,
                resumed: true,
                ..RetireReport::default()
            });
        }
        None if row.key_id == old => {
            return Err(KeyError::NoRotation {
                current: row.key_id,
            });
        }
        _ => {
            return Err(KeyError::NotCurrentKey {
                given: old.to_string(),
                current: row.key_id,
            });
        }
    };
    let old_key = ws.load_key()?;
    if old_key.id() != old {
        return Err(KeyError::NotCurrentKey {
            given: old.to_string(),
            current: old_key.id().to_string(),
        });
    }
    let new_key = ws
        .load_next_key(Some(&new))?
        .expect("a rotation's key is loaded");

    // No run may be writing under the old key while its tokens go.
    crate::pipeline::run::recover(ws, store)
        .await
        .map_err(|e| KeyError::Run(e.to_string()))?;
    let running: Vec<i64> = store
        .unfinished_runs()
        .await?
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    if !running.is_empty() {
        return Err(KeyError::RunsInProgress { runs: running });
    }

    let uncovered = uncovered_persons(store).await?;
    if uncovered > 0 && !force {
        return Err(KeyError::Uncovered {
            persons: uncovered,
            old: old.to_string(),
        });
    }

    let mut report = RetireReport {
        retired: old.to_string(),
        current: new.clone(),
        uncovered_persons: uncovered,
        ..RetireReport::default()
    };
    let zone = SecureZone::new(
        ws.secure_dir(),
        Keyring::new(
            (new_key.id(), new_key.bytes()),
            [(old_key.id(), old_key.bytes())],
        ),
    );
    reseal_zone(store, &zone, old, &new, &mut report).await?;

    let mut tx = store.begin().await?;
    let counts = tx.retire_key(old, &new).await?.ok_or(KeyError::Changed)?;
    tx.commit().await?;
    report.counts = counts;
    swap_key_files(ws)?;
    store
        .record_audit(&AuditEntry {
            actor: actor.to_string(),
            action: "key.retire".into(),
            reason: None,
            detail: serde_json::json!({
                "retired": old,
                "current": new,
                "resealed_files": report.resealed,
                "old_tokens_deleted": counts.old_tokens,
                "new_tokens": counts.new_tokens,
                "reviews_rekeyed": counts.reviews_rekeyed,
                "reviews_not_rekeyed": counts.reviews_not_rekeyed,
                "held_rekeyed": counts.held_rekeyed,
                "held_dropped": counts.held_dropped,
                "uncovered_persons": uncovered,
                "forced": force,
            }),
        })
        .await?;
    Ok(report)
}

/// Surviving persons who hold a token under the old key but none under the new one.
async fn uncovered_persons(store: &Store) -> Result<u64, KeyError> {
    let rows = store.load_registry().await?;
    let mut merged_into = std::collections::HashMap::new();
    for (id, _, into) in &rows.persons {
        if let Some(into) = into {
            merged_into.insert(*id, *into);
        }
    }
    let survivor = |mut p: i64| {
        // Merge chains are short; the bound only guards against a corrupt cycle.
        for _ in 0..64 {
            match merged_into.get(&p) {
                Some(&next) => p = next,
                None => break,
            }
        }
        p
    };
    let (mut under_old, mut under_new) = (HashSet::new(), HashSet::new());
    for (rule, _, person) in &rows.tokens {
        if *rule >= NEXT_KEY_RULE_OFFSET {
            under_new.insert(survivor(*person));
        } else {
            under_old.insert(survivor(*person));
        }
    }
    Ok(under_old.difference(&under_new).count() as u64)
}

/// Seals every secure-zone file under `old` again under the zone's sealing key (`new`):
/// each to a temporary file beside it, its new hash recorded beside its lineage rows,
/// then renamed over it. A file already under `new` is skipped, so an interrupted retire
/// resumes where it stopped.
async fn reseal_zone(
    store: &Store,
    zone: &SecureZone,
    old: &str,
    new: &str,
    report: &mut RetireReport,
) -> Result<(), KeyError> {
    for path in files_under(zone.root())? {
        let file = match zone.open(&path) {
            Ok(f) => f,
            Err(SecureError::NotSealed { .. }) => {
                report.unsealed += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if file.header().key_id == new {
            report.already_new += 1;
            continue;
        }
        debug_assert_eq!(
            file.header().key_id,
            old,
            "the ring holds only the two keys"
        );
        let old_sha = crate::ingest::sha256_file(&path).map_err(|e| KeyError::Io {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.reseal"));
        let _ = std::fs::remove_file(&tmp);
        let new_sha = zone.reseal(&file, &tmp)?;
        for f in store.lineage_meta(&LineageFilter::Sha256(&old_sha)).await? {
            store.record_reseal(f.id, &new_sha, new).await?;
        }
        std::fs::rename(&tmp, &path).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        sync_parent(&path)?;
        report.resealed += 1;
    }
    Ok(())
}

/// Every regular file under `dir`, skipping temporary files (names starting with `.`
/// that are not directories: a write or reseal that stopped half-way).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(KeyError::Io { path: d, source }),
        };
        for e in entries {
            let e = e.map_err(|source| KeyError::Io {
                path: d.clone(),
                source,
            })?;
            let p = e.path();
            let ty = e.file_type().map_err(|source| KeyError::Io {
                path: p.clone(),
                source,
            })?;
            if ty.is_dir() {
                stack.push(p);
            } else if ty.is_file() && !e.file_name().to_string_lossy().starts_with('.') {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn sync_parent(path: &Path) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| KeyError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Whether the key files still name `old` as current and the store's `current` as the
/// next key: a retire that committed in the store but stopped before swapping files.
fn swap_pending(ws: &Workspace, old: &str, current: &str) -> bool {
    let next_id = crate::workspace::key_id_path(&ws.next_key_path());
    let id_of = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let primary = id_of(&ws.key_id_path());
    id_of(&next_id).as_deref() == Some(current) && primary.as_deref() == Some(old)
}

/// The new key replaces the old: its bytes, then its id, each by a rename (the old key's
/// directory entry goes with it), then the directory is made durable. Safe to repeat.
fn swap_key_files(ws: &Workspace) -> Result<(), KeyError> {
    let (next, key) = (ws.next_key_path(), ws.key_path());
    let (next_id, key_id) = (
        crate::workspace::key_id_path(&next),
        crate::workspace::key_id_path(&key),
    );
    let mv = |from: &Path, to: &Path| -> Result<(), KeyError> {
        if from.exists() {
            std::fs::rename(from, to).map_err(|source| KeyError::Io {
                path: to.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    };
    mv(&next, &key)?;
    mv(&next_id, &key_id)?;
    sync_parent(&key)
}
