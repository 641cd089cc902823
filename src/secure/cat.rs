//! `xmatch secure cat FILE --reason TEXT`: decrypts one secure-zone file for a person,
//! after writing who, why and which file to the audit log.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::SecureError;
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum CatError {
    #[error(
        "a reason is required: say why with --reason (it goes to the audit log with your OS user)"
    )]
    ReasonRequired,
    #[error("{0}: no such file, neither as given nor inside the secure zone")]
    NotFound(PathBuf),
    #[error(transparent)]
    Secure(#[from] SecureError),
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `cat` decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catted {
    pub path: PathBuf,
    /// Where the header says the file was written (zone-relative).
    pub recorded_as: String,
    pub run_id: i64,
    pub key_id: String,
    pub bytes: u64,
}

/// Decrypts `file` (a path as given, else relative to the secure zone) to `out`. Refused
/// without a reason, before anything is read; the audit row (action `secure.cat`) is
/// written once the file has authenticated and before any plaintext is written.
pub async fn cat(
    ws: &Workspace,
    file: &Path,
    reason: Option<&str>,
    actor: &str,
    out: &mut dyn Write,
) -> Result<Catted, CatError> {
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or(CatError::ReasonRequired)?;
    let zone = ws.secure_zone()?;
    let path = if file.exists() {
        file.to_path_buf()
    } else if file.is_relative() && zone.root().join(file).exists() {
        zone.root().join(file)
    } else {
        return Err(CatError::NotFound(file.to_path_buf()));
    };
    let sealed = zone.open(&path)?;
    // Every chunk authenticates before a byte is shown: no partial output of a file
    // that turns out to be tampered with in the middle.
    sealed.verify()?;
    let ciphertext_sha = crate::ingest::sha256_file(&path).map_err(|e| CatError::Io {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let header = sealed.header().clone();
    let store = ws.open_store().await?;
    let audited = store
        .record_audit(&crate::store::AuditEntry {
            actor: actor.to_string(),
            action: "secure.cat".into(),
            reason: Some(reason.to_string()),
            detail: serde_json::json!({
                "path": path.display().to_string(),
                "recorded_as": header.path,
                "run_id": header.run_id,
                "key_id": header.key_id,
                "sha256": ciphertext_sha,
                "bytes": sealed.len(),
            }),
        })
        .await;
    store.close().await;
    audited?;
    let mut reader = sealed.reader(0);
    std::io::copy(&mut reader, out).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => CatError::Secure(sealed.explain(&e)),
        _ => CatError::Io {
            path: PathBuf::from("(output)"),
            source: e,
        },
    })?;
    out.flush().map_err(|source| CatError::Io {
        path: PathBuf::from("(output)"),
        source,
    })?;
    Ok(Catted {
        path,
        recorded_as: header.path,
        run_id: header.run_id,
        key_id: header.key_id,
        bytes: sealed.len(),
    })
}
