//! A run killed with SIGKILL at every named stage leaves the published outputs intact and
//! the store consistent; the next run recovers and completes.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;

use sha2::Digest;

use crate::pipeline::{generated_workspace, run_nightly};
use crate::support::{parquet_files, read_parquet, row_counts, run_nightly_at_failpoint};

/// Relative path → SHA-256 of every file in the published snapshot.
fn published(ws: &xmatch::workspace::Workspace) -> (i64, BTreeMap<String, String>) {
    let (run, dir) = xmatch::lake::current_snapshot(&ws.lake_dir())
        .unwrap()
        .expect("a snapshot is published");
    let mut files = BTreeMap::new();
    for f in parquet_files(&dir) {
        // Every file must decode: a torn file would fail here.
        read_parquet(&f);
        let bytes = std::fs::read(&f).unwrap();
        files.insert(
            f.strip_prefix(&dir).unwrap().display().to_string(),
            hex::encode(sha2::Sha256::digest(&bytes)),
        );
    }
    (run, files)
}

async fn run_statuses(ws: &xmatch::workspace::Workspace) -> Vec<String> {
    let store = ws.open_store().await.unwrap();
    let xmatch::store::Store::Sqlite(pool) = &store else {
        unreachable!()
    };
    sqlx::query_scalar("SELECT status FROM runs ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_every_stage_leaves_outputs_intact_and_the_next_run_recovers() {
    let (_dir, ws) = generated_workspace(400, 9).await;
    let first = run_nightly(&ws).await;
    let persons = first.identity.persons;

    // (failpoint, whether the store has committed the run when it is hit)
    let points = [
        ("lake.mid_write", false),
        ("lake.before_publish", true),
        ("run.before_commit", false),
        ("run.mid_commit", false),
        ("run.after_commit", true),
        ("publish.mid_rename", true),
        ("publish.after_rename", true),
    ];
    for (point, committed) in points {
        let (run_before, files_before) = published(&ws);
        let out = run_nightly_at_failpoint(&ws, point, &[]);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point}: the child was not killed: {out:?}"
        );

        // Whatever the crash, readers see a complete snapshot: the old one, or (once the
        // rename happened) the new one.
        let (run_after, files_after) = published(&ws);
        if run_after == run_before {
            assert_eq!(
                files_after, files_before,
                "{point}: the published snapshot changed"
            );
        } else {
            assert!(committed, "{point}: an uncommitted run was published");
        }

        // The next run recovers what the crash left and completes.
        let next = run_nightly(&ws).await;
        assert_eq!(next.identity.persons, persons);
        assert_eq!(
            next.identity.new_persons, 0,
            "{point}: a rerun created persons"
        );
        let statuses = run_statuses(&ws).await;
        let crashed = &statuses[statuses.len() - 2];
        let expected = if committed { "succeeded" } else { "abandoned" };
        assert_eq!(
            crashed, expected,
            "{point}: the crashed run is recorded as {crashed}"
        );
        assert!(
            !statuses.iter().any(|s| s == "running" || s == "publishing"),
            "{point}: {statuses:?}"
        );
        // Lineage of the published snapshot matches the files on disk.
        let (run_now, files_now) = published(&ws);
        assert_eq!(run_now, next.run_id);
        let store = ws.open_store().await.unwrap();
        let lineage = store.lineage_by_run(run_now).await.unwrap();
        for l in lineage
            .iter()
            .filter(|l| l.zone == xmatch::lake::Zone::Deid)
        {
            let on_disk = files_now.get(&l.path.display().to_string());
            assert_eq!(
                on_disk,
                Some(&l.sha256),
                "{point}: lineage of {} disagrees",
                l.path.display()
            );
        }
    }
}

/// A first run whose writing fails (an ordinary error, not a crash) must leave nothing
/// of its registry in the store: no person, token or lineage row, and the next run makes
/// them all. Both ways the registry rows can go in: after the writes (a small batch) and
/// beside them (forced here; at scale from `REGISTRY_BESIDE_WRITES_FROM` new tokens), where
/// the failed write must roll back a transaction that already holds them.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_run_whose_writing_fails_leaves_no_persons() {
    use xmatch::pipeline::run::REGISTRY_BESIDE_WRITES_ENV;
    for beside_from in ["0", "18446744073709551615"] {
        let (_dir, ws) = generated_workspace(300, 13).await;
        let out = run_nightly_at_failpoint(
            &ws,
            "lake.mid_write=fail:1",
            &[(REGISTRY_BESIDE_WRITES_ENV, beside_from)],
        );
        assert!(!out.status.success(), "{beside_from}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("injected failure"), "{stderr}");
        assert!(
            xmatch::lake::current_snapshot(&ws.lake_dir())
                .unwrap()
                .is_none()
        );
        assert_eq!(run_statuses(&ws).await, ["failed"]);
        let tables = [
            "persons",
            "person_tokens",
            "temp_ids",
            "source_files",
            "lineage_files",
        ];
        assert_eq!(
            row_counts(&ws, &tables).await,
            [0; 5],
            "{beside_from}: the failed run left rows in {tables:?}"
        );

        let next = run_nightly(&ws).await;
        assert_eq!(next.identity.new_persons, next.identity.persons);
        assert!(next.identity.persons > 0);
        assert_eq!(run_statuses(&ws).await, ["failed", "succeeded"]);
    }
}
