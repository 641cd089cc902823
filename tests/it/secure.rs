//! Encryption at rest of the secure zone: nothing identifiable on disk in plaintext after a
//! run and the exports, tampered and foreign files refused with one line naming them,
//! `secure cat` audited, and breach by file still answering for a sealed file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use xmatch::breach::{self, FileCheck, Options, Query};
use xmatch::schema::Catalog;
use xmatch::workspace::Workspace;

use crate::pipeline::{generated_workspace, raw_pii, run_nightly};
use crate::support::{
    files_under, read_parquet, read_secure, read_secure_parquet, strings, test_zone, xmatch_bin,
};

fn xmatch(ws: &Workspace, args: &[&str]) -> std::process::Output {
    Command::new(xmatch_bin())
        .args(["-w", ws.root().to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

fn crosswalk_path(ws: &Workspace, run: i64) -> PathBuf {
    ws.secure_dir()
        .join("runs")
        .join(run.to_string())
        .join("crosswalk.parquet")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_plaintext_secure_zone_bytes_after_a_run_and_the_exports() {
    let (_dir, ws) = generated_workspace(800, 23).await;
    let run = run_nightly(&ws).await.run_id;
    // Every other writer into the secure zone, too.
    xmatch::report::pirl::export(
        &ws,
        &xmatch::report::pirl::ExportOptions {
            program_year: 2024,
            strict: false,
        },
    )
    .await
    .unwrap();
    let cw = read_secure_parquet(&ws, &crosswalk_path(&ws, run));
    let key = strings(&cw, "person_key")[0].clone().unwrap();
    xmatch::report::evidence::printout(&ws, &key, Some("monitoring visit"))
        .await
        .unwrap();
    let out = xmatch(
        &ws,
        &[
            "report",
            "performance",
            "--program-year",
            "2024",
            "--no-suppress",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What would be readable in plaintext: the masked SSNs' last four (as the crosswalk
    // and rejects spell them), the generated people's names, the identifiers the zone
    // links (case-management ids, temporary IDs, person keys).
    let mut needles: BTreeSet<Vec<u8>> = BTreeSet::new();
    let masked: Vec<String> = strings(&cw, "ssn_masked").into_iter().flatten().collect();
    assert!(masked.len() > 500, "the crosswalk holds masked SSNs");
    needles.extend(masked.iter().map(|m| m.as_bytes().to_vec()));
    for c in ["individual_id", "temp_id", "person_key"] {
        needles.extend(
            strings(&cw, c)
                .into_iter()
                .flatten()
                .map(String::into_bytes),
        );
    }
    let (_, names, _) = raw_pii(&ws.incoming_dir());
    // Six letters or more: a shorter string turns up in a megabyte of random bytes by
    // chance often enough to make the test flaky.
    needles.extend(
        names
            .iter()
            .filter(|n| n.len() >= 6)
            .map(|n| n.as_bytes().to_vec()),
    );
    assert!(needles.len() > 2_000, "{}", needles.len());

    let files = files_under(&ws.secure_dir());
    let kinds: BTreeSet<&str> = files
        .iter()
        .filter_map(|(rel, _)| rel.split('/').next())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["evidence", "exports", "reports", "runs"]),
        "every kind of secure file was written"
    );
    for (rel, path) in &files {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.starts_with(xmatch::secure::format::MAGIC),
            "{rel} is not sealed"
        );
        for n in &needles {
            assert!(
                !contains(&bytes, n),
                "{rel} holds a plaintext identifier ({} bytes)",
                n.len()
            );
        }
        // And it decrypts: readers are unaffected.
        assert!(!read_secure(&ws, path).is_empty() || rel.ends_with(".csv"));
    }
    // The scan looks for the right thing: the plaintext of the CSV files (Parquet's is
    // compressed) spells these identifiers.
    let plain: Vec<u8> = files
        .iter()
        .filter(|(rel, _)| rel.ends_with(".csv"))
        .flat_map(|(_, p)| read_secure(&ws, p))
        .collect();
    let found = needles.iter().filter(|n| contains(&plain, n)).count();
    assert!(
        found > 500,
        "{found} identifiers in the decrypted CSV files"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_truncated_and_foreign_secure_files_are_refused_naming_the_file() {
    let (_dir, ws) = generated_workspace(300, 29).await;
    let run = run_nightly(&ws).await.run_id;
    let cw = crosswalk_path(&ws, run);
    let good = std::fs::read(&cw).unwrap();
    let one_line_naming = |out: &std::process::Output, what: &str| {
        assert_eq!(out.status.code(), Some(2), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
        assert!(err.contains("crosswalk.parquet"), "{what}: {err}");
        err.into_owned()
    };

    // A flipped byte in the middle: every reader refuses it and names the file.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::write(&cw, &bad).unwrap();
    let err = one_line_naming(
        &xmatch(
            &ws,
            &["secure", "cat", cw.to_str().unwrap(), "--reason", "test"],
        ),
        "secure cat",
    );
    assert!(err.contains("fail authentication"), "{err}");
    let err = one_line_naming(
        &xmatch(
            &ws,
            &[
                "breach",
                "--run",
                &run.to_string(),
                "--identify",
                "--reason",
                "test",
            ],
        ),
        "breach --identify",
    );
    assert!(err.contains("tampered"), "{err}");
    let key = strings(
        &read_parquet(&xmatch::lake::parquet_files(&ws.lake_dir().join("current/participants"))[0]),
        "person_key",
    )[0]
    .clone()
    .unwrap();
    one_line_naming(
        &xmatch(&ws, &["evidence", &key, "--reason", "monitoring"]),
        "evidence",
    );

    // Truncated.
    std::fs::write(&cw, &good[..good.len() - 100]).unwrap();
    let err = one_line_naming(
        &xmatch(
            &ws,
            &["secure", "cat", cw.to_str().unwrap(), "--reason", "t"],
        ),
        "truncated",
    );
    assert!(
        err.contains("truncated") || err.contains("last chunk"),
        "{err}"
    );

    // Under a key this workspace does not hold.
    let foreign = test_zone(&ws.secure_dir());
    foreign
        .write_atomic(&cw, run, b"anything")
        .expect("seal under the test key");
    let err = one_line_naming(
        &xmatch(
            &ws,
            &["secure", "cat", cw.to_str().unwrap(), "--reason", "t"],
        ),
        "unknown key",
    );
    assert!(err.contains("key id k1-test"), "{err}");

    // Another run's crosswalk copied over this one's.
    std::fs::write(&cw, &good).unwrap();
    let second = run_nightly(&ws).await.run_id;
    std::fs::copy(crosswalk_path(&ws, second), &cw).unwrap();
    let err = one_line_naming(
        &xmatch(
            &ws,
            &["secure", "cat", cw.to_str().unwrap(), "--reason", "t"],
        ),
        "swapped",
    );
    assert!(
        err.contains(&format!("runs/{second}/crosswalk.parquet")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secure_cat_needs_a_reason_is_audited_and_prints_the_plaintext() {
    let (_dir, ws) = generated_workspace(300, 31).await;
    let run = run_nightly(&ws).await.run_id;
    let rel = format!("runs/{run}/temp_id_assignments.csv");
    let store = ws.open_store().await.unwrap();
    let before = store.audit_entries(1_000).await.unwrap().len();

    for args in [
        vec!["secure", "cat", &rel],
        vec!["secure", "cat", &rel, "--reason", " "],
    ] {
        let out = xmatch(&ws, &args);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty(), "nothing decrypted without a reason");
        assert!(String::from_utf8_lossy(&out.stderr).contains("reason"));
    }
    assert_eq!(store.audit_entries(1_000).await.unwrap().len(), before);

    // A path relative to the zone, or the file's own path.
    let out = xmatch(&ws, &["secure", "cat", &rel, "--reason", "import check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = read_secure(&ws, &ws.secure_dir().join(&rel));
    assert_eq!(out.stdout, want);
    assert!(String::from_utf8_lossy(&want).starts_with("individual_id,"));

    let to = ws.root().join("plain.csv");
    let abs = ws.secure_dir().join(&rel);
    let out = xmatch(
        &ws,
        &[
            "secure",
            "cat",
            abs.to_str().unwrap(),
            "--reason",
            "import check",
            "--out",
            to.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&to).unwrap(), want);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&to).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let audit = store.audit_entries(2).await.unwrap();
    assert_eq!(audit.len(), 2);
    for (_, e) in &audit {
        assert_eq!(e.action, "secure.cat");
        assert_eq!(e.reason.as_deref(), Some("import check"));
        assert_eq!(e.actor, xmatch::breach::current_user());
        assert_eq!(e.detail["recorded_as"], rel);
        assert_eq!(e.detail["run_id"], run);
        assert_eq!(
            e.detail["sha256"],
            xmatch::ingest::sha256_file(&abs).unwrap()
        );
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn breach_by_file_answers_for_a_sealed_file_and_its_copies() {
    let (dir, ws) = generated_workspace(300, 37).await;
    let run = run_nightly(&ws).await.run_id;
    let cw = crosswalk_path(&ws, run);
    let want: BTreeSet<String> = strings(&read_secure_parquet(&ws, &cw), "person_key")
        .into_iter()
        .flatten()
        .collect();
    let store = ws.open_store().await.unwrap();
    let catalog = Catalog::builtin().unwrap();
    let ask = |path: &Path| {
        let q = Query::File {
            path: path.to_path_buf(),
        };
        let (ws, store, catalog) = (&ws, &store, &catalog);
        async move {
            breach::assess(ws, store, catalog, &q, &Options::new(Utc::now()))
                .await
                .unwrap()
        }
    };
    let notified = |i: &breach::Impact| -> BTreeSet<String> {
        i.notification
            .iter()
            .map(|n| n.person_key.clone())
            .collect()
    };

    // The file itself and a byte-identical copy elsewhere: by the ciphertext's SHA-256.
    let copy = dir.path().join("usb-stick").join("crosswalk.parquet");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&cw, &copy).unwrap();
    for p in [&cw, &copy] {
        let impact = ask(p).await;
        assert_eq!(
            impact.file_check,
            Some(FileCheck::Recorded),
            "{}",
            p.display()
        );
        assert_eq!(notified(&impact), want);
    }

    // A damaged copy cannot be read: reported as a tampered copy of what lineage knows.
    let mut bytes = std::fs::read(&cw).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0xff;
    let damaged = dir.path().join(format!("runs/{run}/crosswalk.parquet"));
    std::fs::create_dir_all(damaged.parent().unwrap()).unwrap();
    std::fs::write(&damaged, &bytes).unwrap();
    let impact = ask(&damaged).await;
    assert!(
        matches!(impact.file_check, Some(FileCheck::Tampered { .. })),
        "{:?}",
        impact.file_check
    );
    assert!(impact.notes.iter().any(|n| n.contains("cannot be read")));
    store.close().await;
}
