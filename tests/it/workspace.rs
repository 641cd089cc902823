//! `xmatch init`, finding the workspace, and the key rules.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use xmatch::workspace::{self, Workspace, WorkspaceError};

use crate::support::xmatch_bin;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn init_creates_config_private_key_store_and_zones() {
    let dir = tempfile::tempdir().unwrap();
    let report = workspace::init(dir.path()).await.unwrap();
    assert!(report.config_created && report.key_created && report.store_created);

    let ws = Workspace::open(dir.path()).unwrap();
    let key_path = ws.key_path();
    assert_eq!(fs::read(&key_path).unwrap().len(), 32);
    assert_eq!(mode(&key_path), 0o600, "the key is the owner's alone");
    assert_eq!(mode(key_path.parent().unwrap()), 0o700);
    assert_eq!(mode(&ws.secure_dir()), 0o700, "the secure zone is private");
    assert!(ws.lake_dir().is_dir() && ws.incoming_dir().is_dir());
    assert!(dir.path().join("state/xmatch.db").is_file());

    let key = ws.load_key().unwrap();
    assert!(
        key.id().starts_with("k1-") && key.id().len() == 19,
        "{}",
        key.id()
    );
    // The key id is random, not derived from the key.
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(key.bytes()));
    assert!(!digest.contains(&key.id()[3..]));
    assert!(!format!("{key:?}").contains(&hex::encode(key.bytes())));

    let store = ws.open_store().await.unwrap();
    assert_eq!(store.workspace().await.unwrap().unwrap().key_id, key.id());
}

#[tokio::test]
async fn init_twice_keeps_the_key_and_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let first = workspace::init(dir.path()).await.unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    let key_before = fs::read(ws.key_path()).unwrap();
    let store = ws.open_store().await.unwrap();
    store
        .record_audit(&xmatch::store::AuditEntry {
            actor: "t".into(),
            action: "marker".into(),
            reason: None,
            detail: serde_json::json!({}),
        })
        .await
        .unwrap();
    store.close().await;

    let second = workspace::init(dir.path()).await.unwrap();
    assert!(!second.config_created && !second.key_created && !second.store_created);
    assert_eq!(second.key_id, first.key_id);
    assert_eq!(fs::read(ws.key_path()).unwrap(), key_before);
    let store = ws.open_store().await.unwrap();
    assert_eq!(
        store.audit_entries(10).await.unwrap().len(),
        1,
        "the store was kept"
    );
}

#[tokio::test]
async fn two_workspaces_get_different_keys_and_ids() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ra = workspace::init(a.path()).await.unwrap();
    let rb = workspace::init(b.path()).await.unwrap();
    assert_ne!(ra.key_id, rb.key_id);
    let ka = Workspace::open(a.path()).unwrap().load_key().unwrap();
    let kb = Workspace::open(b.path()).unwrap().load_key().unwrap();
    assert_ne!(ka.bytes(), kb.bytes());
}

#[tokio::test]
async fn a_key_readable_by_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    workspace::init(dir.path()).await.unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    fs::set_permissions(ws.key_path(), fs::Permissions::from_mode(0o644)).unwrap();
    let err = ws.load_key().unwrap_err();
    assert!(
        matches!(err, WorkspaceError::KeyExposed { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
    // Every command that needs the key stops; `init` too.
    assert!(workspace::init(dir.path()).await.is_err());
}

#[tokio::test]
async fn a_missing_or_swapped_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    workspace::init(dir.path()).await.unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    fs::remove_file(ws.key_path()).unwrap();
    let err = ws.open_keyed().await.unwrap_err();
    assert!(matches!(err, WorkspaceError::KeyMissing { .. }), "{err}");

    // A new key (here: `init` making one because the old is gone) no longer matches the
    // store's tokens, and both init and later commands say so instead of mixing keys.
    fs::remove_file(ws.key_id_path()).unwrap();
    let err = workspace::init(dir.path()).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::KeyMismatch { .. }), "{err}");
    let err = ws.open_keyed().await.unwrap_err();
    assert!(err.to_string().contains("key mismatch"), "{err}");
}

#[tokio::test]
async fn a_damaged_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    workspace::init(dir.path()).await.unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    fs::write(ws.key_path(), b"short").unwrap();
    let err = ws.load_key().unwrap_err();
    assert!(
        matches!(err, WorkspaceError::KeyLength { len: 5, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_workspace_is_found_from_a_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    workspace::init(dir.path()).await.unwrap();
    let deep = dir.path().join("incoming/a/b");
    fs::create_dir_all(&deep).unwrap();
    let found = Workspace::find(None, &deep).unwrap();
    assert_eq!(found.root(), std::path::absolute(dir.path()).unwrap());

    let elsewhere = tempfile::tempdir().unwrap();
    let err = Workspace::find(None, elsewhere.path()).unwrap_err();
    assert!(err.to_string().contains("xmatch init"), "{err}");
    // An explicit directory wins over the search.
    let explicit = Workspace::find(Some(dir.path()), elsewhere.path()).unwrap();
    assert_eq!(explicit.root(), found.root());
}

#[test]
fn the_cli_finds_the_workspace_by_flag_then_environment_then_parents() {
    let ws = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let run = |args: &[&str], cwd: &std::path::Path, env: Option<&std::path::Path>| {
        let mut cmd = Command::new(xmatch_bin());
        cmd.args(args)
            .current_dir(cwd)
            .env_remove("XMATCH_WORKSPACE");
        if let Some(e) = env {
            cmd.env("XMATCH_WORKSPACE", e);
        }
        cmd.output().unwrap()
    };
    let out = run(&["init", ws.path().to_str().unwrap()], other.path(), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("key      created"), "{stdout}");

    let again = run(&["init"], other.path(), Some(ws.path()));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("key      kept existing"), "{stdout}");
    assert!(
        !other.path().join("xmatch.toml").exists(),
        "the environment pointed elsewhere"
    );

    // `generate` without --out needs a workspace: from a directory with none it fails with
    // a one-line error naming the fix, exit 2.
    let none = run(&["generate", "--participants", "10"], other.path(), None);
    assert_eq!(none.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--workspace"), "{stderr}");
}
