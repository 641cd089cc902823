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
    let mut changes = Changes {
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
    tx.apply_registry_changes(run, &mut changes).await.unwrap();
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

/// A commit large enough for the bulk path (SQLite checks the tokens' persons once
/// instead of per row): tokens of new and of stored persons go in, a token naming no
/// stored person fails the commit in bulk as in a small batch, and the constraint is in
/// force again afterwards.
async fn bulk_registry_commit_checks_persons(store: &Store) {
    use xmatch::identity::ids::PersonKey;
    use xmatch::identity::registry::Changes;
    store.migrate().await.unwrap();
    let token = |i: u32, salt: u8| {
        let mut t = [salt; 32];
        t[..4].copy_from_slice(&i.to_be_bytes());
        t
    };
    let persons = |ids: std::ops::RangeInclusive<i64>| -> Vec<(i64, PersonKey)> {
        ids.map(|id| (id, PersonKey::generate().unwrap())).collect()
    };
    // `n` tokens over the five rules, spread over persons 1..=`over`.
    let tokens = |n: u32, salt: u8, over: u32| -> Vec<(i32, [u8; 32], i64)> {
        (0..n)
            .map(|i| ((i % 5) as i32, token(i, salt), 1 + i64::from(i % over)))
            .collect()
    };
    let commit = |run: i64, mut changes: Changes| async move {
        let mut tx = store.begin().await.unwrap();
        tx.apply_registry_changes(run, &mut changes).await?;
        tx.commit().await
    };
    let run1 = store.start_run("nightly", "manual").await.unwrap();
    let first = tokens(120_000, 1, 2_000);
    commit(
        run1,
        Changes {
            new_persons: persons(1..=2_000),
            new_tokens: first.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Mostly tokens of persons stored by the first commit, a few of new ones.
    let run2 = store.start_run("nightly", "manual").await.unwrap();
    let second = tokens(110_000, 2, 2_010);
    commit(
        run2,
        Changes {
            new_persons: persons(2_001..=2_010),
            new_tokens: second.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rows = store.load_registry().await.unwrap();
    assert_eq!(rows.persons.len(), 2_010);
    assert_eq!(rows.tokens.len(), first.len() + second.len());

    // One token of a person nobody stored, in a bulk batch and in a small one.
    for n in [110_000u32, 10] {
        let mut bad = tokens(n, 3, 2_010);
        bad[n as usize / 2].2 = 99_999;
        let run = store.start_run("nightly", "manual").await.unwrap();
        let failed = commit(
            run,
            Changes {
                new_tokens: bad,
                ..Default::default()
            },
        )
        .await;
        assert!(
            failed.is_err(),
            "{n} tokens naming an unknown person were committed"
        );
    }
    let rows = store.load_registry().await.unwrap();
    assert_eq!(
        rows.tokens.len(),
        first.len() + second.len(),
        "nothing of the failed commits stayed"
    );
}

on_both_stores! {
    bulk_registry_commit => bulk_registry_commit_checks_persons,
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

/// The breach module's store queries (`src/store/breach.rs`) on both backends: lineage
/// metadata by every filter, person sets, merge pointers, person keys and SSN tokens.
async fn breach_queries(store: &Store) {
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    use xmatch::identity::ids::PersonKey;
    use xmatch::identity::registry::{Changes, Merge};
    use xmatch::lake::{ColumnMeta, PersonSet, WrittenFile, Zone};
    use xmatch::schema::PiiClass;
    use xmatch::store::{LineageFilter, LineageMeta};

    store.migrate().await.unwrap();
    let run1 = store.start_run("nightly", "manual").await.unwrap();
    let run2 = store.start_run("nightly", "manual").await.unwrap();

    // 1,203 persons: enough for the id and key lists to cross the 500-per-IN chunks.
    let n: i64 = 1_203;
    let keys: Vec<PersonKey> = (0..n).map(|_| PersonKey::generate().unwrap()).collect();
    let token = |i: i64| -> [u8; 32] {
        let mut t = [0u8; 32];
        t[..8].copy_from_slice(&i.to_be_bytes());
        t[31] = 0xa5;
        t
    };
    let ssn_rule = xmatch::identity::token::Rule::Ssn.index() as i32;
    let name_rule = xmatch::identity::token::Rule::NameDob.index() as i32;
    let mut tokens: Vec<(i32, [u8; 32], i64)> =
        (1..=n).map(|id| (ssn_rule, token(id), id)).collect();
    // A name token equal to person 7's SSN token bytes: the SSN lookup must not find it.
    tokens.push((name_rule, token(n + 7), 7));
    let mut changes = Changes {
        new_persons: (1..=n).zip(keys.iter().cloned()).collect(),
        new_tokens: tokens,
        new_temp_ids: vec![],
        merges: vec![
            Merge {
                from: 5,
                into: 2,
                reason: "ssn_of_known_person",
            },
            Merge {
                from: 9,
                into: 5,
                reason: "ssn_of_known_person",
            },
        ],
        reviews: vec![],
    };
    let mut tx = store.begin().await.unwrap();
    tx.apply_registry_changes(run1, &mut changes).await.unwrap();
    tx.commit().await.unwrap();

    let at = |s: i64| -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 2, 0, 0).unwrap()
            + Duration::seconds(s)
            + Duration::microseconds(123_456)
    };
    let cols = vec![
        ColumnMeta::new("person_key", PiiClass::Quasi, None),
        ColumnMeta::new("snap_verified", PiiClass::Quasi, Some("public_assistance")),
        ColumnMeta::plain("program_year"),
    ];
    let file = |zone, dataset: &str, path: &str, sha: &str, ids: Vec<i64>, t| WrittenFile {
        zone,
        dataset: dataset.to_string(),
        path: PathBuf::from(path),
        sha256: sha.to_string(),
        rows: ids.len() as u64 * 2,
        columns: cols.clone(),
        persons: PersonSet::from_ids(ids),
        written_at: t,
    };
    let sha = |c: char| c.to_string().repeat(64);
    let run1_files = vec![
        file(
            Zone::Deid,
            "participants",
            "participants/program_year=2024/part-0.parquet",
            &sha('a'),
            (1..=n).collect(),
            at(0),
        ),
        file(
            Zone::Secure,
            "matches/ui_claims",
            "matches/ui_claims.parquet",
            &sha('b'),
            vec![2, 3, 5, 9],
            at(1),
        ),
        // Shares the `matches` prefix but is not under `matches/`.
        file(
            Zone::Deid,
            "matches_summary",
            "matches_summary/part_0.parquet",
            &sha('c'),
            vec![4],
            at(2),
        ),
    ];
    let run2_files = vec![
        // The same bytes as run 1's participants file: both records answer its hash.
        file(
            Zone::Deid,
            "participants",
            "participants/program_year=2024/part-0.parquet",
            &sha('a'),
            (1..=n).collect(),
            at(86_400),
        ),
        file(
            Zone::Secure,
            "matches/taa",
            "matches/taa.parquet",
            &sha('d'),
            vec![],
            at(86_401),
        ),
    ];
    let mut tx = store.begin().await.unwrap();
    tx.record_lineage(run1, "k1-test", &run1_files)
        .await
        .unwrap();
    tx.record_lineage(run2, "k1-test", &run2_files)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let paths = |rows: &[LineageMeta]| -> Vec<(i64, String)> {
        rows.iter().map(|r| (r.run_id, r.path.clone())).collect()
    };
    let all = store.lineage_meta(&LineageFilter::All).await.unwrap();
    assert_eq!(all.len(), 5);
    // Oldest first, every field as written.
    assert_eq!(
        all.iter().map(|r| r.written_at).collect::<Vec<_>>(),
        vec![at(0), at(1), at(2), at(86_400), at(86_401)]
    );
    let first = &all[0];
    assert_eq!(
        (
            first.run_id,
            first.zone,
            first.dataset.as_str(),
            first.sha256.as_str(),
            first.rows,
            first.person_count,
            first.purged_at
        ),
        (
            run1,
            Zone::Deid,
            "participants",
            sha('a').as_str(),
            2 * n as u64,
            n as u64,
            None
        )
    );
    assert_eq!(first.columns, cols);

    // By hash (case-insensitive input), by run, by dataset and prefix, by window, by name.
    let by_sha = store
        .lineage_meta(&LineageFilter::Sha256(&sha('A')))
        .await
        .unwrap();
    assert_eq!(
        paths(&by_sha),
        vec![
            (run1, "participants/program_year=2024/part-0.parquet".into()),
            (run2, "participants/program_year=2024/part-0.parquet".into())
        ]
    );
    assert!(
        store
            .lineage_meta(&LineageFilter::Sha256(&sha('e')))
            .await
            .unwrap()
            .is_empty()
    );
    let by_run = store.lineage_meta(&LineageFilter::Run(run2)).await.unwrap();
    assert_eq!(by_run.len(), 2);
    assert!(by_run.iter().all(|r| r.run_id == run2));
    let matches = store
        .lineage_meta(&LineageFilter::Dataset("matches"))
        .await
        .unwrap();
    assert_eq!(
        matches
            .iter()
            .map(|r| r.dataset.as_str())
            .collect::<Vec<_>>(),
        vec!["matches/ui_claims", "matches/taa"]
    );
    let exact = store
        .lineage_meta(&LineageFilter::Dataset("matches/taa"))
        .await
        .unwrap();
    assert_eq!(exact.len(), 1);
    // [from, to): the start is in, the end is out, to the microsecond.
    let window = store
        .lineage_meta(&LineageFilter::Window(at(1), at(86_400)))
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|r| r.written_at).collect::<Vec<_>>(),
        vec![at(1), at(2)]
    );
    let window = store
        .lineage_meta(&LineageFilter::Window(
            at(1) + Duration::microseconds(1),
            at(86_400) + Duration::microseconds(1),
        ))
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|r| r.written_at).collect::<Vec<_>>(),
        vec![at(2), at(86_400)]
    );
    let by_name = store
        .lineage_meta(&LineageFilter::FileName("part-0.parquet"))
        .await
        .unwrap();
    assert_eq!(by_name.len(), 2);
    // `_` in LIKE matches any one character: a superset the caller narrows.
    let by_name = store
        .lineage_meta(&LineageFilter::FileName("part_0.parquet"))
        .await
        .unwrap();
    assert_eq!(
        by_name
            .iter()
            .map(|r| r.path.as_str())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "participants/program_year=2024/part-0.parquet",
            "matches_summary/part_0.parquet"
        ])
    );
    let by_name = store
        .lineage_meta(&LineageFilter::FileName("ui_claims.parquet"))
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);

    // Person sets come back as written, empty ones included.
    for (meta, written) in all.iter().zip(run1_files.iter().chain(&run2_files)) {
        let blob = store.lineage_persons(meta.id).await.unwrap();
        assert_eq!(PersonSet::decode(&blob).unwrap(), written.persons);
    }

    // Purge marks only the run's rows of that zone, once.
    let gone = at(200_000);
    assert_eq!(
        store
            .mark_lineage_purged(run1, Zone::Secure, gone)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .mark_lineage_purged(run1, Zone::Secure, gone)
            .await
            .unwrap(),
        0
    );
    let after = store.lineage_meta(&LineageFilter::Run(run1)).await.unwrap();
    assert_eq!(
        after.iter().map(|r| r.purged_at).collect::<Vec<_>>(),
        vec![None, Some(gone), None]
    );

    // The registry side.
    let mut merges = store.merge_pointers().await.unwrap();
    merges.sort();
    assert_eq!(merges, vec![(5, 2), (9, 5)]);
    let wanted: Vec<i64> = (1..=n).step_by(2).chain([n + 50, -1]).collect();
    let mut got = store.person_keys_of(&wanted).await.unwrap();
    got.sort();
    let expect: Vec<(i64, String)> = (1..=n)
        .step_by(2)
        .map(|id| (id, keys[(id - 1) as usize].as_str().to_string()))
        .collect();
    assert_eq!(got, expect);
    let mut every = store.all_person_keys().await.unwrap();
    every.sort();
    assert_eq!(every.len(), n as usize);
    assert_eq!(every[0], (1, keys[0].as_str().to_string()));
    let mut between = store.person_keys_between(0, 1 << 16).await.unwrap();
    between.sort();
    assert_eq!(between, every);
    let mut between = store.person_keys_between(100, 200).await.unwrap();
    between.sort();
    assert_eq!(between, every[99..199].to_vec());
    assert!(
        store
            .person_keys_between(n + 1, n + 1_000)
            .await
            .unwrap()
            .is_empty()
    );
    let mut asked: Vec<String> = keys.iter().map(|k| k.as_str().to_string()).collect();
    asked.push("NOTAKEY00000".into());
    let mut by_key = store.persons_by_key(&asked).await.unwrap();
    by_key.sort_by_key(|(_, id)| *id);
    assert_eq!(by_key.len(), n as usize);
    assert_eq!(by_key[6], (keys[6].as_str().to_string(), 7));
    let mut found = store
        .persons_by_ssn_token(&[token(7), token(n), token(n + 7), token(n + 1)])
        .await
        .unwrap();
    found.sort_by_key(|(_, id)| *id);
    assert_eq!(found, vec![(token(7), 7), (token(n), n)]);
    let many: Vec<[u8; 32]> = (1..=n).map(token).collect();
    assert_eq!(
        store.persons_by_ssn_token(&many).await.unwrap().len(),
        n as usize
    );
}

on_both_stores! {
    breach => breach_queries,
}
