//! `xmatch key backup` / `restore`: a passphrase-wrapped copy of the key that restores
//! byte for byte, refuses a wrong passphrase, another workspace's key, and never
//! overwrites a different key.

use std::process::{Command, Output};

use xmatch::workspace::{self, Workspace};

use crate::support::xmatch_bin;

const PASS: &str = "a long enough passphrase";

fn key_cmd(ws: &Workspace, pass: &str, args: &[&str]) -> Output {
    Command::new(xmatch_bin())
        .args(["-w", ws.root().to_str().unwrap(), "key"])
        .args(args)
        .env("XMATCH_KEY_PASSPHRASE", pass)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn fresh() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    workspace::init(dir.path()).await.unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    (dir, ws)
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_restores_the_same_key_and_refuses_a_wrong_passphrase() {
    let (dir, ws) = fresh().await;
    let key = std::fs::read(ws.key_path()).unwrap();
    let id = ws.load_key().unwrap().id().to_string();
    let backup = dir.path().join("offline").join("key-backup.json");
    std::fs::create_dir_all(backup.parent().unwrap()).unwrap();

    let out = key_cmd(&ws, "short", &["backup", "--to", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("at least 12 characters"),
        "{}",
        stderr(&out)
    );
    assert!(!backup.exists());

    let out = key_cmd(&ws, PASS, &["backup", "--to", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&backup).unwrap();
    assert!(text.contains(&id) && text.contains("argon2id") && text.contains("65536"));
    assert!(!text.contains(&hex::encode(&key)), "the key is wrapped");
    // A backup never overwrites a file.
    let again = key_cmd(&ws, PASS, &["backup", "--to", backup.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));

    // The key is lost.
    std::fs::remove_file(ws.key_path()).unwrap();
    std::fs::remove_file(ws.key_id_path()).unwrap();
    let out = key_cmd(
        &ws,
        "not the passphrase",
        &["restore", "--from", backup.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim_end().lines().count(), 1);
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.key_path().exists());

    let out = key_cmd(&ws, PASS, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("restored key id {id}")));
    assert_eq!(std::fs::read(ws.key_path()).unwrap(), key);
    assert_eq!(ws.load_key().unwrap().id(), id);
    assert_eq!(
        std::fs::metadata(ws.key_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    ws.open_keyed()
        .await
        .expect("the store accepts the restored key");

    // Restoring over the same key is a no-op.
    let out = key_cmd(&ws, PASS, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already in place"));
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_refuses_another_workspaces_key_and_never_overwrites_a_key() {
    let (dir_a, a) = fresh().await;
    let (_dir_b, b) = fresh().await;
    let backup = dir_a.path().join("a-key.json");
    let out = key_cmd(&a, PASS, &["backup", "--to", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let a_id = a.load_key().unwrap().id().to_string();
    let b_id = b.load_key().unwrap().id().to_string();

    // B's key file is still there: a different key is never overwritten...
    let out = key_cmd(&b, PASS, &["restore", "--from", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // ...and with it gone, B's store still says which key its tokens need.
    std::fs::remove_file(b.key_path()).unwrap();
    std::fs::remove_file(b.key_id_path()).unwrap();
    let out = key_cmd(&b, PASS, &["restore", "--from", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&a_id) && err.contains(&b_id), "{err}");
    assert!(!b.key_path().exists(), "nothing restored");

    // --expect-key-id checks the id when the store cannot.
    let out = key_cmd(
        &a,
        PASS,
        &[
            "restore",
            "--from",
            backup.to_str().unwrap(),
            "--expect-key-id",
            &b_id,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--expect-key-id"), "{}", stderr(&out));

    // With B's key file present again but naming another key: refused, key untouched.
    let (_dir_c, c) = fresh().await;
    let c_key = std::fs::read(c.key_path()).unwrap();
    let out = key_cmd(&c, PASS, &["restore", "--from", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("refusing to overwrite")
            || stderr(&out).contains("another workspace's key"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(c.key_path()).unwrap(), c_key);
}
