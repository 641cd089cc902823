//! The state store on both backends.

use serde_json::json;
use xmatch::store::{AuditEntry, Store};

use crate::support::{PgStore, sqlite_store};

#[tokio::test]
async fn sqlite_and_postgres_migrations_build_the_same_tables_and_columns() {
    let (sqlite, _dir) = sqlite_store().await;
    sqlite.migrate().await.unwrap();
    let lite = sqlite.tables_and_columns().await.unwrap();
    assert!(
        lite.contains_key("workspace") && lite.contains_key("audit_log"),
        "{lite:?}"
    );

    let Some(pg) = PgStore::connect("migrations_lockstep").await else {
        return;
    };
    pg.store.migrate().await.unwrap();
    let postgres = pg.store.tables_and_columns().await.unwrap();
    pg.drop().await;
    assert_eq!(
        lite, postgres,
        "migrations/sqlite and migrations/postgres drifted apart"
    );
}

async fn workspace_row_is_written_once(store: &Store) {
    store.migrate().await.unwrap();
    assert!(store.workspace().await.unwrap().is_none());
    let first = store.init_workspace("k1-first", 1).await.unwrap();
    assert_eq!(first.key_id, "k1-first");
    // A second init (e.g. `xmatch init` run twice, or with a new key) keeps the first row.
    let second = store.init_workspace("k1-second", 1).await.unwrap();
    assert_eq!(second, first);
}

async fn audit_entries_round_trip(store: &Store) {
    store.migrate().await.unwrap();
    for (i, action) in ["export", "breach"].iter().enumerate() {
        store
            .record_audit(&AuditEntry {
                actor: "analyst".into(),
                action: action.to_string(),
                reason: (i == 1).then(|| "ticket 42".to_string()),
                detail: json!({ "n": i }),
            })
            .await
            .unwrap();
    }
    let entries = store.audit_entries(10).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].1.action, "breach");
    assert_eq!(entries[0].1.reason.as_deref(), Some("ticket 42"));
    assert_eq!(entries[1].1.detail, json!({ "n": 0 }));
    assert!(entries[0].0 >= entries[1].0);
}

/// Runs one store test against SQLite, then PostgreSQL when reachable.
macro_rules! on_both_stores {
    ($($name:ident => $body:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let (store, _dir) = sqlite_store().await;
                $body(&store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(pg) = PgStore::connect(stringify!($name)).await else { return };
                $body(&pg.store).await;
                pg.drop().await;
            }
        }
    )*};
}

on_both_stores! {
    workspace_row => workspace_row_is_written_once,
    audit_log => audit_entries_round_trip,
}

#[tokio::test]
async fn an_unknown_store_url_is_refused_with_the_password_redacted() {
    let err = Store::connect("mysql://app:hunter2@db/x", std::path::Path::new("."))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("neither sqlite:// nor postgres://"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

async fn registry_round_trips(store: &Store) {
    use xmatch::identity::ids::{PersonKey, TempId};
    use xmatch::identity::registry::{Changes, Merge, Review};
    store.migrate().await.unwrap();
    let run = store.start_run("nightly", "manual").await.unwrap();
    let (k1, k2, k3) = (
        PersonKey::generate().unwrap(),
        PersonKey::generate().unwrap(),
        PersonKey::generate().unwrap(),
    );
    let temp = TempId::generate().unwrap();
    // Enough tokens to cross the multi-row INSERT chunk boundary.
    let tokens: Vec<(i32, [u8; 32], i64)> = (0..9_000u32)
        .map(|i| {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_be_bytes());
            ((i % 5) as i32, t, 1 + i64::from(i % 3))
        })
        .collect();
    let changes = Changes {
        new_persons: vec![(1, k1.clone()), (2, k2.clone()), (3, k3.clone())],
        new_tokens: tokens.clone(),
        new_temp_ids: vec![(temp.clone(), 3)],
        merges: vec![Merge {
            from: 3,
            into: 1,
            reason: "ssn_of_known_person",
        }],
        reviews: vec![Review {
            kind: "name_dob_shared_by_ssns",
            person_a: 1,
            person_b: 2,
        }],
    };
    let mut tx = store.begin().await.unwrap();
    tx.apply_registry_changes(run, &changes).await.unwrap();
    tx.record_source_files(
        run,
        &[xmatch::store::SourceFileRow {
            source: "participants".into(),
            path: "incoming/p.csv".into(),
            sha256: "ab".repeat(32),
            rows_read: 10,
            rows_accepted: 9,
            rows_rejected: 1,
        }],
    )
    .await
    .unwrap();
    tx.set_run_status(run, "publishing", None).await.unwrap();
    tx.commit().await.unwrap();
    store
        .finish_run(run, "succeeded", None, None)
        .await
        .unwrap();

    let rows = store.load_registry().await.unwrap();
    assert_eq!(rows.persons.len(), 3);
    assert!(
        rows.persons
            .contains(&(3, k3.as_str().to_string(), Some(1))),
        "merged by pointer"
    );
    let mut got = rows.tokens.clone();
    got.sort();
    let mut want = tokens;
    want.sort();
    assert_eq!(got, want);
    assert_eq!(rows.temp_ids, vec![(temp.as_str().to_string(), 3)]);
    assert_eq!(
        rows.reviews,
        vec![("name_dob_shared_by_ssns".to_string(), 1, 2)]
    );
    let reg =
        xmatch::identity::registry::Registry::from_rows(rows.persons, rows.tokens, rows.temp_ids)
            .unwrap();
    assert_eq!(reg.survivor(3), 1);

    let prev = store
        .previous_source_files("nightly", "participants")
        .await
        .unwrap();
    assert_eq!(prev.len(), 1);
    assert_eq!(prev[0].rows_read, 10);
    assert!(
        store
            .previous_source_files("other", "participants")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.open_reviews().await.unwrap().len(), 1);
}

on_both_stores! {
    registry => registry_round_trips,
}

/// Leases: one holder at a time, expiry hands over, a taken-over run cannot publish, and
/// the history records attempts, skips and abandonments.
async fn leases_fence_and_history(store: &Store) {
    use xmatch::store::{LeaseOutcome, NewRun};
    store.migrate().await.unwrap();
    let new_run = |holder: &'static str| NewRun {
        pipeline: "nightly",
        trigger: "schedule",
        attempt: 1,
        scheduled_for: Some("2025-03-09T08:00:00Z".parse().unwrap()),
        holder,
        provisional_expiry_ms: 0,
    };
    let now = 1_000_000_000_000i64;
    let a = store.start_run_with(&new_run("host-a/1/1")).await.unwrap();
    let LeaseOutcome::Acquired {
        lease: la,
        abandoned,
    } = store
        .acquire_lease("nightly", a, "host-a/1/1", now, 60_000, None)
        .await
        .unwrap()
    else {
        panic!("a free lease is taken")
    };
    assert_eq!(abandoned, None);

    // A second holder, while the first is valid: held, naming the run.
    let b = store.start_run_with(&new_run("host-b/2/2")).await.unwrap();
    assert_eq!(
        store
            .acquire_lease("nightly", b, "host-b/2/2", now + 1_000, 60_000, None)
            .await
            .unwrap(),
        LeaseOutcome::Held {
            run_id: Some(a),
            holder: "host-a/1/1".into(),
            expires_ms: now + 60_000
        }
    );
    // Other pipelines are independent.
    assert!(matches!(
        store
            .acquire_lease("quarterly", b, "host-b/2/2", now, 60_000, None)
            .await
            .unwrap(),
        LeaseOutcome::Acquired { .. }
    ));
    // Heartbeats extend it.
    assert!(
        store
            .renew_lease(&la, a, now + 50_000, 60_000)
            .await
            .unwrap()
    );

    // A lapsed lease is taken over, and the old run is declared abandoned.
    let c = store.start_run_with(&new_run("host-c/3/3")).await.unwrap();
    let LeaseOutcome::Acquired {
        lease: lc,
        abandoned,
    } = store
        .acquire_lease("nightly", c, "host-c/3/3", now + 111_000, 60_000, None)
        .await
        .unwrap()
    else {
        panic!("an expired lease is taken over")
    };
    assert_eq!(abandoned, Some(a));
    assert!(lc.fence > la.fence);
    assert_eq!(store.run(a).await.unwrap().unwrap().status, "abandoned");
    // The old holder wakes up: it cannot renew, and its publish step is fenced off.
    assert!(
        !store
            .renew_lease(&la, a, now + 112_000, 60_000)
            .await
            .unwrap()
    );
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.hold_fence(&la).await.unwrap());
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.hold_fence(&lc).await.unwrap());
    tx.commit().await.unwrap();
    // finish_run does not overwrite the abandonment.
    store
        .finish_run(a, "failed", None, Some("late"))
        .await
        .unwrap();
    assert_eq!(store.run(a).await.unwrap().unwrap().status, "abandoned");

    // A dead holder's lease is taken at once with `steal_from`.
    let d = store.start_run_with(&new_run("host-c/4/4")).await.unwrap();
    assert!(matches!(
        store
            .acquire_lease("nightly", d, "host-c/4/4", now + 112_000, 60_000, None)
            .await
            .unwrap(),
        LeaseOutcome::Held { .. }
    ));
    let LeaseOutcome::Acquired {
        lease: ld,
        abandoned,
    } = store
        .acquire_lease(
            "nightly",
            d,
            "host-c/4/4",
            now + 112_000,
            60_000,
            Some("host-c/3/3"),
        )
        .await
        .unwrap()
    else {
        panic!("a dead holder's lease is taken")
    };
    assert_eq!(abandoned, Some(c));

    // abandon_run revokes the lease: the fence moves on.
    assert!(store.abandon_run(d, "test").await.unwrap());
    assert!(!store.abandon_run(d, "again").await.unwrap());
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.hold_fence(&ld).await.unwrap());
    drop(tx);
    store.release_lease(&ld).await.unwrap();

    // History: newest first, filtered by pipeline, with attempts and schedule times.
    store
        .finish_run(b, "skipped", None, Some("held"))
        .await
        .unwrap();
    let rows = store.runs(Some("nightly"), 10).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.id, r.status.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (d, "abandoned"),
            (c, "abandoned"),
            (b, "skipped"),
            (a, "abandoned")
        ]
    );
    assert_eq!(
        rows[3].scheduled_for,
        Some("2025-03-09T08:00:00Z".parse().unwrap())
    );
    assert_eq!(store.runs(Some("other"), 10).await.unwrap().len(), 0);
    assert_eq!(store.runs(None, 2).await.unwrap().len(), 2);
    let unfinished = store.unfinished_runs().await.unwrap();
    assert!(unfinished.is_empty(), "{unfinished:?}");

    // Schedule marks only move forward.
    let t1: chrono::DateTime<chrono::Utc> = "2025-11-02T07:30:00Z".parse().unwrap();
    let t0: chrono::DateTime<chrono::Utc> = "2025-11-01T07:30:00Z".parse().unwrap();
    assert_eq!(store.schedule_mark("nightly").await.unwrap(), None);
    store.set_schedule_mark("nightly", t1).await.unwrap();
    store.set_schedule_mark("nightly", t0).await.unwrap();
    assert_eq!(store.schedule_mark("nightly").await.unwrap(), Some(t1));

    let m = store.run_metrics().await.unwrap();
    assert!(
        m.by_status
            .contains(&("nightly".into(), "abandoned".into(), 3))
    );
}

on_both_stores! {
    leases => leases_fence_and_history,
}

/// The production store is remote: connections must be able to use TLS
/// (`?sslmode=require`, or `verify-full` with the agency CA in the system trust store or
/// `sslrootcert=`).
#[tokio::test]
async fn postgres_connections_can_require_tls() {
    let Some(pg) = PgStore::connect("tls").await else {
        return;
    };
    let url = std::env::var("XMATCH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let plain = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let server_ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&plain)
        .await
        .unwrap();
    if server_ssl != "on" {
        eprintln!("SKIPPED tls on PostgreSQL: the server at {url} has ssl = {server_ssl}");
        pg.drop().await;
        return;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{url}{sep}sslmode=require"))
        .await
        .expect("a TLS connection (sqlx built with rustls)");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl, "the connection is encrypted");
    pg.drop().await;
}
