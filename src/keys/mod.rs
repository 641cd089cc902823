//! The workspace key's lifecycle (`xmatch key`): a passphrase-wrapped backup and its
//! restore, and rotation to a new key (see [`rotate`]).
//!
//! The key is `key/xmatch.key` with its id in `key/xmatch.key.id` (see
//! [`crate::workspace`]).

pub mod backup;
pub mod rotate;

use std::path::{Path, PathBuf};

use crate::workspace::{Key, Workspace, WorkspaceError};

/// Where the passphrase comes from when no terminal is there to ask.
pub const PASSPHRASE_ENV: &str = "XMATCH_KEY_PASSPHRASE";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "a passphrase of at least {} characters is required for a key backup",
        backup::MIN_PASSPHRASE_CHARS
    )]
    WeakPassphrase,
    #[error("no passphrase: set {PASSPHRASE_ENV} or run on a terminal, which asks for it")]
    NoPassphrase,
    #[error("the passphrases do not match")]
    PassphraseMismatch,
    #[error("{path}: wrong passphrase, or the backup was altered or damaged")]
    WrongPassphrase { path: PathBuf },
    #[error("{path}: {problem}")]
    BadBackup { path: PathBuf, problem: String },
    #[error(
        "the backup holds key id {backup}, but {whose} expects key id {expected}: it is another workspace's key; nothing restored"
    )]
    KeyIdMismatch {
        backup: String,
        expected: String,
        whose: String,
    },
    #[error(
        "{path} already holds key id {existing}, not the backup's {backup}: refusing to overwrite a key (move it away first if it is really wrong)"
    )]
    ExistingKeyDiffers {
        path: PathBuf,
        existing: String,
        backup: String,
    },
    #[error("key backup: {0}")]
    Backup(String),
    #[error(transparent)]
    Secure(#[from] crate::secure::SecureError),
    #[error("{path} holds the current key: remove it and rotate again")]
    NextIsCurrent { path: PathBuf },
    #[error("the state store has no workspace row: run `xmatch init`")]
    NotInitialised,
    #[error(
        "a rotation to key id {next} is already under way: finish it with `xmatch key retire` first"
    )]
    RotationUnderWay { next: String },
    #[error(
        "no rotation is under way (the workspace key is {current}): begin one with `xmatch key rotate`"
    )]
    NoRotation { current: String },
    #[error("key id {given} is not the workspace's current key ({current}); nothing retired")]
    NotCurrentKey { given: String, current: String },
    #[error(
        "run(s) {runs:?} still in progress: wait for them (stop the daemon and timers during a retire)"
    )]
    RunsInProgress { runs: Vec<i64> },
    #[error(
        "{persons} person(s) have tokens under key id {old} only (no run has seen them since `key rotate`): run the nightly pipeline first, or pass --force to retire anyway (they keep their person keys and temporary IDs, and are found by tokens again once a run sees them)"
    )]
    Uncovered { persons: u64, old: String },
    #[error(
        "the workspace's keys changed while this command worked (another rotate or retire?): run it again"
    )]
    Changed,
    #[error("recovering interrupted runs: {0}")]
    Run(String),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// The workspace's keys: the current one, then a rotation's new one if there is one.
pub(crate) fn workspace_keys(ws: &Workspace) -> Result<Vec<Key>, KeyError> {
    let mut keys = vec![ws.load_key()?];
    let next = ws.next_key_path();
    if next.exists() {
        keys.push(crate::workspace::load_key(&next)?);
    }
    Ok(keys)
}

/// The key id the store's tokens were made with, if the store has been initialised.
pub(crate) async fn store_key_id(ws: &Workspace) -> Result<Option<String>, KeyError> {
    let store = ws.open_store().await?;
    let row = store.workspace().await;
    store.close().await;
    Ok(row?.map(|w| w.key_id))
}

/// Writes `key` at `path` (and its id beside it), 0600 in a 0700 directory. `Ok(false)`
/// when the same key is already there; an error when a different one is.
pub(crate) fn install(path: &Path, key: &Key) -> Result<bool, KeyError> {
    let id_path = crate::workspace::key_id_path(path);
    if path.exists() {
        let existing = crate::workspace::load_key(path)?;
        if existing.id() == key.id() && existing.bytes() == key.bytes() {
            return Ok(false);
        }
        return Err(KeyError::ExistingKeyDiffers {
            path: path.to_path_buf(),
            existing: existing.id().to_string(),
            backup: key.id().to_string(),
        });
    }
    if let Some(dir) = path.parent() {
        crate::workspace::create_private_dir(dir)?;
    }
    // An id left without its key (a crash between the two writes) is rewritten only when
    // it names the same key.
    match std::fs::read_to_string(&id_path) {
        Ok(existing) if existing.trim() == key.id() => {}
        Ok(existing) => {
            return Err(KeyError::ExistingKeyDiffers {
                path: id_path,
                existing: existing.trim().to_string(),
                backup: key.id().to_string(),
            });
        }
        Err(_) => {
            crate::workspace::write_new(&id_path, format!("{}\n", key.id()).as_bytes(), 0o600)?
        }
    }
    crate::workspace::write_new(path, key.bytes(), 0o600)?;
    Ok(true)
}

/// The passphrase: from [`PASSPHRASE_ENV`], else asked on the terminal without echo
/// (twice when `confirm`, for a new backup).
pub fn passphrase(confirm: bool) -> Result<String, KeyError> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV)
        && !p.is_empty()
    {
        return Ok(p);
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(KeyError::NoPassphrase);
    }
    let first = prompt("passphrase: ")?;
    if confirm && prompt("again: ")? != first {
        return Err(KeyError::PassphraseMismatch);
    }
    Ok(first)
}

/// One line from the terminal with echo off (restored even when reading fails).
fn prompt(text: &str) -> Result<String, KeyError> {
    use std::io::{BufRead, Write};
    let io = |source| KeyError::Io {
        path: PathBuf::from("(terminal)"),
        source,
    };
    eprint!("{text}");
    std::io::stderr().flush().map_err(io)?;
    let fd = 0;
    // SAFETY: termios is plain data; tcgetattr fills it for fd 0, which is a terminal
    // (checked by the caller), and tcsetattr only reads it.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(fd, &mut t) == 0).then_some(t)
    };
    if let Some(mut t) = saved {
        t.c_lflag &= !libc::ECHO;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    eprintln!();
    read.map_err(io)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
