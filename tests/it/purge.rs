//! Retention purges: what goes, what never goes, and that breach questions and DataFusion
//! still work afterwards. Expectations come from what the tests read on disk and from
//! the dates they chose, not from the purge's own classification.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sha2::{Digest, Sha256};
use xmatch::breach::{self, Options, Query};
use xmatch::lake::{ColumnMeta, DatasetMeta, Snapshot, Zone};
use xmatch::purge::{self, Action, PurgeOptions, PurgeReport};
use xmatch::report::LakeSession;
use xmatch::schema::{Catalog, PiiClass};
use xmatch::store::{AuditEntry, LineageFilter, Store};
use xmatch::workspace::{self, Workspace};

use crate::pipeline::{generated_workspace, run_nightly};
use crate::support::{PgStore, files_under, read_parquet, sqlite_store, strings, xmatch_bin};

// ---------------------------------------------------------------- helpers

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn opts(dry_run: bool, today: &str) -> PurgeOptions {
    PurgeOptions {
        dry_run,
        today: d(today),
        actor: "retention-test".into(),
        reason: "records schedule".into(),
    }
}

/// Rewrites `[retention]` in the workspace's xmatch.toml and reopens it.
fn set_retention(root: &Path, closeouts: &[(&str, &str)]) -> Workspace {
    let path = root.join(workspace::CONFIG_FILE);
    let mut doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let mut closeout = toml::Table::new();
    for (py, date) in closeouts {
        closeout.insert(py.to_string(), toml::Value::String(date.to_string()));
    }
    let mut retention = toml::Table::new();
    retention.insert("years_after_closeout".into(), toml::Value::Integer(3));
    retention.insert("closeout".into(), toml::Value::Table(closeout));
    doc.insert("retention".into(), toml::Value::Table(retention));
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    Workspace::open(root).unwrap()
}

/// Every file of both zones' published areas: `lake/snapshots/…` and `secure/runs/…`
/// (relative to the workspace) → SHA-256.
fn disk(ws: &Workspace) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (prefix, dir) in [
        ("lake/snapshots", ws.lake_dir().join("snapshots")),
        ("secure/runs", ws.secure_dir().join("runs")),
    ] {
        for (rel, path) in files_under(&dir) {
            let sha = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
            out.insert(format!("{prefix}/{rel}"), sha);
        }
    }
    out
}

/// Every directory under `dir` (recursively).
fn dirs_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                out.push(e.path());
                stack.push(e.path());
            }
        }
    }
    out
}

/// A report's files as workspace-relative paths, per action.
fn listed(report: &PurgeReport, action: Action) -> BTreeSet<String> {
    report
        .files
        .iter()
        .filter(|f| f.action == action)
        .map(|f| {
            let zone = match f.zone {
                Zone::Deid => "lake",
                Zone::Secure => "secure",
            };
            format!("{zone}/{}", f.zone_path())
        })
        .collect()
}

/// The registry as the store holds it, for before/after comparison.
async fn registry(store: &Store) -> (Vec<String>, usize, Vec<String>, usize, Vec<(i64, i64)>) {
    let rows = store.load_registry().await.unwrap();
    let mut persons: Vec<String> = rows
        .persons
        .iter()
        .map(|(id, key, into)| format!("{id}:{key}:{into:?}"))
        .collect();
    persons.sort();
    let mut temp: Vec<String> = rows
        .temp_ids
        .iter()
        .map(|(t, p)| format!("{t}:{p}"))
        .collect();
    temp.sort();
    let mut merges = store.merge_pointers().await.unwrap();
    merges.sort();
    (persons, rows.tokens.len(), temp, rows.reviews.len(), merges)
}

/// `SELECT <group>, count(*)` over a table of the current snapshot, as strings.
async fn counts(ws: &Workspace, table: &str, group: &str) -> BTreeMap<String, String> {
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    let (_, batches) = session
        .query(&format!(
            "SELECT CAST({group} AS VARCHAR) AS g, count(*) AS n FROM {table} GROUP BY 1"
        ))
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
    strings(&batches, "g")
        .into_iter()
        .zip(strings(&batches, "n"))
        .map(|(g, n)| (g.unwrap(), n.unwrap()))
        .collect()
}

// ---------------------------------------------------------------- real pipeline runs

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_lists_exactly_what_a_real_purge_then_deletes_and_breach_still_answers() {
    let (dir, ws) = generated_workspace(1_500, 61).await;
    let runs = [
        run_nightly(&ws).await.run_id,
        run_nightly(&ws).await.run_id,
        run_nightly(&ws).await.run_id,
    ];
    // PY2021 is kept through 2027-09-30, PY2022 through 2028-09-30; later years have no
    // closeout date yet.
    let ws = set_retention(
        dir.path(),
        &[("PY2021", "2024-09-30"), ("PY2022", "2025-09-30")],
    );
    let store = ws.open_store().await.unwrap();
    store
        .record_audit(&AuditEntry {
            actor: "someone".into(),
            action: "breach".into(),
            reason: None,
            detail: serde_json::json!({"persons": 3}),
        })
        .await
        .unwrap();

    let before = disk(&ws);
    let registry_before = registry(&store).await;
    let audit_before = store.audit_entries(10_000).await.unwrap();
    let lineage_before = store.lineage_meta(&LineageFilter::All).await.unwrap();
    let participants_before = counts(&ws, "participants", "program_year").await;
    let wages_before = counts(&ws, "quarterly_wages", "year_quarter").await;
    assert!(participants_before.contains_key("2021") && participants_before.contains_key("2024"));

    // What the test expects to go on 2027-10-01: every PY2021 partition file on disk (the
    // current and the previous snapshot; run 1's snapshot was pruned), and a tombstone
    // for each PY2021 file of the pruned snapshot.
    let py2021_on_disk: BTreeSet<String> = before
        .keys()
        .filter(|p| p.contains("/program_year=2021/"))
        .cloned()
        .collect();
    let snapshots_hit: BTreeSet<&str> = py2021_on_disk
        .iter()
        .map(|p| p.split('/').nth(2).unwrap())
        .collect();
    assert_eq!(
        snapshots_hit,
        [runs[1].to_string(), runs[2].to_string()]
            .iter()
            .map(String::as_str)
            .collect(),
        "the current and previous snapshots hold PY2021"
    );
    let pruned_py2021: BTreeSet<String> = lineage_before
        .iter()
        .filter(|f| f.zone == Zone::Deid && f.run_id == runs[0])
        .filter(|f| f.path.contains("program_year=2021/"))
        .map(|f| format!("lake/snapshots/{}/{}", f.run_id, f.path))
        .collect();
    assert!(!pruned_py2021.is_empty());
    assert!(pruned_py2021.iter().all(|p| !before.contains_key(p)));

    // A purged file for the breach check: its bytes and persons, read before it goes.
    let (probe_path, probe_sha) = before
        .iter()
        .find(|(p, _)| p.contains("participants/program_year=2021/"))
        .map(|(p, s)| (p.clone(), s.clone()))
        .unwrap();
    let probe_keys: BTreeSet<String> =
        strings(&read_parquet(&dir.path().join(&probe_path)), "person_key")
            .into_iter()
            .flatten()
            .collect();
    assert!(probe_keys.len() > 10);

    // 1. The boundary day: PY2021's last kept day. Nothing goes; the purge is audited.
    let boundary = purge::purge(&ws, &opts(false, "2027-09-30")).await.unwrap();
    assert!(boundary.files.is_empty(), "{:?}", boundary.files);
    assert_eq!(disk(&ws), before);
    let py2021 = boundary
        .program_years
        .iter()
        .find(|p| p.program_year == 2021)
        .unwrap();
    assert_eq!(
        (py2021.kept_through, py2021.past_retention),
        (Some(d("2027-09-30")), false)
    );
    assert!(boundary.held_program_years().contains(&2024));
    assert!(boundary.audit_id.is_some());

    // 2. The day after, dry: lists exactly the expected files, changes nothing.
    let dry = purge::purge(&ws, &opts(true, "2027-10-01")).await.unwrap();
    assert_eq!(listed(&dry, Action::Delete), py2021_on_disk);
    assert_eq!(listed(&dry, Action::Tombstone), pruned_py2021);
    assert!(dry.files.iter().all(|f| f.program_year == 2021));
    assert_eq!(disk(&ws), before);
    assert_eq!(dry.audit_id, None);
    assert_eq!(
        store.audit_entries(10_000).await.unwrap().len(),
        audit_before.len() + 1,
        "only the boundary purge wrote an entry"
    );
    let printed = dry.to_string();
    assert!(printed.contains("would delete") && printed.contains("PY2024"));
    assert!(printed.contains("no closeout date"), "{printed}");

    // 3. The real purge on the same day does exactly what the dry run said.
    let real = purge::purge(&ws, &opts(false, "2027-10-01")).await.unwrap();
    assert_eq!(real.files, dry.files);
    assert_eq!(real.tombstoned as usize, real.files.len());
    let after = disk(&ws);
    let mut expected = before.clone();
    expected.retain(|p, _| !py2021_on_disk.contains(p));
    assert_eq!(
        after, expected,
        "only PY2021 files went, the rest is unchanged"
    );
    for snapshot in [runs[1], runs[2]] {
        let snap = ws.lake_dir().join("snapshots").join(snapshot.to_string());
        assert!(
            dirs_under(&snap)
                .iter()
                .all(|p| !p.to_string_lossy().contains("program_year=2021")),
            "whole partitions are gone, not left empty"
        );
        assert!(snap.join("participants").is_dir(), "datasets stay");
    }
    assert!(!ws.lake_dir().join(".purging").exists());

    // Lineage: exactly the listed rows are tombstones, with their person sets intact.
    let listed_ids: BTreeSet<i64> = real.files.iter().map(|f| f.lineage_id).collect();
    let lineage_after = store.lineage_meta(&LineageFilter::All).await.unwrap();
    assert_eq!(lineage_after.len(), lineage_before.len());
    for (b, a) in lineage_before.iter().zip(&lineage_after) {
        assert_eq!(
            a.purged_at.is_some(),
            listed_ids.contains(&a.id),
            "{}",
            a.path
        );
        assert_eq!((a.person_count, &a.sha256), (b.person_count, &b.sha256));
    }

    // The registry and the audit log are untouched; one entry records the purge.
    assert_eq!(registry(&store).await, registry_before);
    let audit_after = store.audit_entries(10_000).await.unwrap();
    assert_eq!(audit_after.len(), audit_before.len() + 2);
    for ((_, old), (_, kept)) in audit_before.iter().zip(&audit_after[2..]) {
        assert_eq!((&old.action, &old.detail), (&kept.action, &kept.detail));
    }
    let (_, entry) = &audit_after[0];
    assert_eq!(entry.action, "purge");
    assert_eq!(entry.reason.as_deref(), Some("records schedule"));
    assert_eq!(entry.detail["deleted"], py2021_on_disk.len());
    assert_eq!(entry.detail["already_absent"], pruned_py2021.len());
    assert_eq!(
        entry.detail["files"].as_array().unwrap().len(),
        real.files.len()
    );
    let detail = entry.detail.to_string();
    for key in &registry_before.0 {
        let person_key = key.split(':').nth(1).unwrap();
        assert!(!detail.contains(person_key), "no person keys in the audit");
    }

    // Breach by the purged file's bytes still names its persons, from the tombstone.
    let opts_b = Options::new(Utc::now());
    let impact = breach::assess(
        &ws,
        &store,
        &Catalog::builtin().unwrap(),
        &Query::Sha256(probe_sha.clone()),
        &opts_b,
    )
    .await
    .unwrap();
    assert!(!impact.files.is_empty());
    assert!(
        impact
            .files
            .iter()
            .all(|f| f.purged && f.sha256 == probe_sha)
    );
    let named: BTreeSet<String> = impact
        .notification
        .iter()
        .map(|n| n.person_key.clone())
        .collect();
    assert_eq!(named, probe_keys);

    // DataFusion over the current snapshot: PY2021 is gone, every other year unchanged.
    let mut want = participants_before.clone();
    want.remove("2021");
    assert_eq!(counts(&ws, "participants", "program_year").await, want);
    assert_eq!(
        counts(&ws, "quarterly_wages", "year_quarter").await,
        wages_before
    );

    // Again on the same day: nothing left to do.
    let again = purge::purge(&ws, &opts(false, "2027-10-01")).await.unwrap();
    assert!(again.files.is_empty());

    // 4. A year on, PY2022 goes too, including its wage quarters 2022Q3–2023Q2.
    let later = purge::purge(&ws, &opts(false, "2028-10-01")).await.unwrap();
    assert!(later.files.iter().all(|f| f.program_year == 2022));
    let quarters = counts(&ws, "quarterly_wages", "year_quarter").await;
    let mut want_q = wages_before.clone();
    want_q.retain(|q, _| !["2022Q3", "2022Q4", "2023Q1", "2023Q2"].contains(&q.as_str()));
    assert!(want_q.len() < wages_before.len());
    assert_eq!(quarters, want_q);
    let mut want = participants_before.clone();
    want.retain(|py, _| py != "2021" && py != "2022");
    assert_eq!(counts(&ws, "participants", "program_year").await, want);
    // 5. The next nightly run, judged on the same day, reads the whole export again but
    //    does not publish the purged years back.
    let catalog = xmatch::schema::Catalog::builtin().unwrap();
    let pipeline = xmatch::pipeline::Pipeline::load(
        &xmatch::pipeline::Pipeline::locate("nightly-crossmatch", ws.root()).unwrap(),
        &catalog,
    )
    .unwrap();
    let nightly = xmatch::pipeline::run(
        &ws,
        &pipeline,
        &xmatch::pipeline::RunOptions {
            today: d("2028-10-01"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(nightly.withheld_past_retention > 0, "{nightly}");
    assert_eq!(counts(&ws, "participants", "program_year").await, want);
    assert_eq!(counts(&ws, "quarterly_wages", "year_quarter").await, want_q);
    let ws_secure_before: BTreeMap<String, String> = before
        .iter()
        .filter(|(p, _)| p.starts_with("secure/"))
        .map(|(p, h)| (p.clone(), h.clone()))
        .collect();
    // The secure zone belongs to runs written now (no closeout configured): untouched
    // (the new run adds its own directory).
    assert_eq!(
        disk(&ws)
            .into_iter()
            .filter(|(p, _)| p.starts_with("secure/")
                && !p.starts_with(&format!("secure/runs/{}/", nightly.run_id)))
            .collect::<BTreeMap<_, _>>(),
        ws_secure_before
    );
    store.close().await;
}

// ---------------------------------------------------------------- a synthetic history

/// Runs written on these days: PY2020, PY2021, and now.
fn history_dates() -> [DateTime<Utc>; 3] {
    [
        Utc.with_ymd_and_hms(2021, 3, 1, 7, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2022, 3, 1, 7, 0, 0).unwrap(),
        Utc::now(),
    ]
}

fn batch(run: i64, years: &[i32], first_person: i64) -> (RecordBatch, DatasetMeta) {
    let n = years.len();
    let schema = Arc::new(Schema::new(vec![
        Field::new("person_key", DataType::Utf8, false),
        Field::new("program_year", DataType::Int32, false),
        Field::new("run", DataType::Int64, false),
        Field::new("person_id", DataType::Int64, false),
    ]));
    let ids: Vec<i64> = (0..n as i64).map(|i| first_person + i).collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(
                ids.iter().map(|i| format!("PK{i:010}")).collect::<Vec<_>>(),
            )),
            Arc::new(Int32Array::from(years.to_vec())),
            Arc::new(Int64Array::from(vec![run; n])),
            Arc::new(Int64Array::from(ids)),
        ],
    )
    .unwrap();
    let meta = DatasetMeta {
        columns: vec![
            ColumnMeta::new("person_key", PiiClass::Quasi, None),
            ColumnMeta::plain("program_year"),
            ColumnMeta::plain("run"),
        ],
        person_id_column: Some("person_id".into()),
    };
    (batch, meta)
}

fn quality_batch(run: i64) -> (RecordBatch, DatasetMeta) {
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("reason", DataType::Utf8, false),
            Field::new("run", DataType::Int64, false),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["ssn_missing"])),
            Arc::new(Int64Array::from(vec![run])),
        ],
    )
    .unwrap();
    let meta = DatasetMeta {
        columns: vec![ColumnMeta::plain("reason"), ColumnMeta::plain("run")],
        person_id_column: None,
    };
    (batch, meta)
}

/// A workspace in `root` with three published runs (ids from `store`) written on
/// [`history_dates`], each with `enrolments` (a stand-in for participants, without its reporting views) in PY2020 and PY2021 (persons 1–6),
/// `data_quality`, and a secure crosswalk and matches file; and a small registry.
async fn synthetic_history(store: &Store, root: &Path) -> (Workspace, [i64; 3]) {
    use xmatch::identity::ids::{PersonKey, TempId};
    use xmatch::identity::registry::{Changes, Merge};
    store.migrate().await.unwrap();
    workspace::init(root).await.unwrap();
    let ws = set_retention(root, &[("PY2020", "2021-09-30"), ("PY2021", "2022-09-30")]);
    let mut runs = [0i64; 3];
    for (i, at) in history_dates().into_iter().enumerate() {
        let run = store
            .start_run("nightly-crossmatch", "manual")
            .await
            .unwrap();
        runs[i] = run;
        let snap = Snapshot::begin(&ws.lake_dir(), &ws.secure_zone().unwrap(), run).unwrap();
        let (b, m) = batch(run, &[2020, 2020, 2020, 2021, 2021, 2021], 1);
        snap.write_deid("enrolments", Some("program_year"), [b.clone()], &m)
            .unwrap();
        let (q, qm) = quality_batch(run);
        snap.write_deid("data_quality", None, [q], &qm).unwrap();
        snap.write_secure(Path::new("crosswalk.parquet"), [b.clone()], &m)
            .unwrap();
        snap.write_secure(Path::new("matches/ui_claims.parquet"), [b], &m)
            .unwrap();
        let mut files = snap.files();
        for f in &mut files {
            f.written_at = at;
        }
        let mut tx = store.begin().await.unwrap();
        if i == 0 {
            let keys: Vec<_> = (1..=6)
                .map(|id| (id, PersonKey::generate().unwrap()))
                .collect();
            tx.apply_registry_changes(
                run,
                &mut Changes {
                    new_persons: keys,
                    new_tokens: vec![(0, [7u8; 32], 1), (1, [8u8; 32], 2)],
                    new_temp_ids: vec![(TempId::generate().unwrap(), 6)],
                    merges: vec![Merge {
                        from: 5,
                        into: 4,
                        reason: "ssn_of_known_person",
                    }],
                    reviews: Vec::new(),
                },
            )
            .await
            .unwrap();
        }
        tx.record_lineage(run, "k1-test", &files).await.unwrap();
        tx.commit().await.unwrap();
        snap.publish().unwrap();
    }
    (ws, runs)
}

async fn secure_and_run_files_go_by_the_day_their_run_wrote_them(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let (ws, [r1, r2, r3]) = synthetic_history(store, dir.path()).await;
    store
        .record_audit(&AuditEntry {
            actor: "someone".into(),
            action: "breach_identify".into(),
            reason: Some("test".into()),
            detail: serde_json::json!({"persons": 1}),
        })
        .await
        .unwrap();
    let before = disk(&ws);
    let registry_before = registry(store).await;
    assert!(
        !before
            .keys()
            .any(|p| p.starts_with(&format!("lake/snapshots/{r1}/")))
    );

    // PY2020 is kept through 2024-09-30.
    let keep = purge::purge_with_store(&ws, store, &opts(false, "2024-09-30"))
        .await
        .unwrap();
    assert!(keep.files.is_empty());
    assert_eq!(disk(&ws), before);

    let dry = purge::purge_with_store(&ws, store, &opts(true, "2024-10-01"))
        .await
        .unwrap();
    let real = purge::purge_with_store(&ws, store, &opts(false, "2024-10-01"))
        .await
        .unwrap();
    assert_eq!(real.files, dry.files);
    let p = |s: &str| s.to_string();
    // On disk: the PY2020 partitions of the two kept snapshots, and run 1's secure files
    // (run 1 wrote them in PY2020).
    assert_eq!(
        listed(&real, Action::Delete),
        BTreeSet::from([
            p(&format!(
                "lake/snapshots/{r2}/enrolments/program_year=2020/part-00000.parquet"
            )),
            p(&format!(
                "lake/snapshots/{r3}/enrolments/program_year=2020/part-00000.parquet"
            )),
            p(&format!("secure/runs/{r1}/crosswalk.parquet")),
            p(&format!("secure/runs/{r1}/matches/ui_claims.parquet")),
        ])
    );
    // Gone already with run 1's pruned snapshot: its PY2020 partition and its
    // data_quality (run 1's date). Its PY2021 partition is not yet past retention.
    assert_eq!(
        listed(&real, Action::Tombstone),
        BTreeSet::from([
            p(&format!(
                "lake/snapshots/{r1}/enrolments/program_year=2020/part-00000.parquet"
            )),
            p(&format!(
                "lake/snapshots/{r1}/data_quality/part-00000.parquet"
            )),
        ])
    );
    assert!(!ws.secure_dir().join("runs").join(r1.to_string()).exists());
    let after = disk(&ws);
    let mut want = before.clone();
    want.retain(|k, _| !listed(&real, Action::Delete).contains(k));
    assert_eq!(after, want);
    let marked: BTreeSet<i64> = store
        .lineage_meta(&LineageFilter::All)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.purged_at.is_some())
        .map(|f| f.id)
        .collect();
    assert_eq!(
        marked,
        real.files
            .iter()
            .map(|f| f.lineage_id)
            .collect::<BTreeSet<_>>()
    );

    // The secure crosswalk of run 1 is gone; breach by its bytes still names persons 1–6
    // (5 merged into 4, counted once).
    let crosswalk = store
        .lineage_meta(&LineageFilter::Run(r1))
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.path == "crosswalk.parquet")
        .unwrap();
    let impact = breach::assess(
        &ws,
        store,
        &Catalog::builtin().unwrap(),
        &Query::Sha256(crosswalk.sha256.clone()),
        &Options::new(Utc::now()),
    )
    .await
    .unwrap();
    assert_eq!(impact.persons, 5);
    assert!(
        impact
            .files
            .iter()
            .any(|f| f.run_id == r1 && f.purged && f.zone == Zone::Secure)
    );

    // DataFusion reads the current snapshot without PY2020.
    assert_eq!(
        counts(&ws, "enrolments", "program_year").await,
        BTreeMap::from([(p("2021"), p("3"))])
    );

    // A year later PY2021 goes: the current snapshot keeps an empty enrolments dataset
    // (readers see no table, not a broken one) and its own data_quality and secure files.
    let later = purge::purge_with_store(&ws, store, &opts(false, "2025-10-01"))
        .await
        .unwrap();
    assert!(later.files.iter().all(|f| f.program_year == 2021));
    let current = ws.lake_dir().join("snapshots").join(r3.to_string());
    assert!(current.join("enrolments").is_dir());
    assert!(xmatch::lake::parquet_files(&current.join("enrolments")).is_empty());
    assert_eq!(
        counts(&ws, "data_quality", "run").await,
        BTreeMap::from([(r3.to_string(), p("1"))])
    );
    assert!(!ws.secure_dir().join("runs").join(r2.to_string()).exists());
    assert!(
        ws.secure_dir()
            .join("runs")
            .join(r3.to_string())
            .join("crosswalk.parquet")
            .is_file()
    );

    assert_eq!(registry(store).await, registry_before);
    let audit = store.audit_entries(100).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|(_, e)| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["purge", "breach", "purge", "purge", "breach_identify"],
        "newest first: three real purges (the dry run writes nothing), the breach query, \
         and the entry written before; none removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secure_and_run_files_go_by_their_run_date_sqlite() {
    let (store, _dir) = sqlite_store().await;
    secure_and_run_files_go_by_the_day_their_run_wrote_them(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secure_and_run_files_go_by_their_run_date_postgres() {
    let Some(pg) = PgStore::connect("purge_secure_and_run_files").await else {
        return;
    };
    secure_and_run_files_go_by_the_day_their_run_wrote_them(&pg.store).await;
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stray_file_and_a_run_still_publishing_are_left_alone() {
    let (store, _dir) = sqlite_store().await;
    let dir = tempfile::tempdir().unwrap();
    let (ws, [r1, _, _]) = synthetic_history(&store, dir.path()).await;
    // Someone left a note in run 1's secure directory: it has no lineage, so it stays,
    // and so does the directory holding it.
    let secure_r1 = ws.secure_dir().join("runs").join(r1.to_string());
    std::fs::write(secure_r1.join("matches/NOTE.txt"), "kept").unwrap();
    // A run with staging still present (publishing right now) is left for next time,
    // even though its lineage rows are past retention.
    let pending = store
        .start_run("nightly-crossmatch", "manual")
        .await
        .unwrap();
    let snap = Snapshot::begin(&ws.lake_dir(), &ws.secure_zone().unwrap(), pending).unwrap();
    let (b, m) = batch(pending, &[2020], 1);
    snap.write_deid("enrolments", Some("program_year"), [b], &m)
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.record_lineage(pending, "k1-test", &snap.files())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let report = purge::purge_with_store(&ws, &store, &opts(false, "2024-10-01"))
        .await
        .unwrap();
    assert_eq!(report.pending_runs, vec![pending]);
    assert!(report.files.iter().all(|f| f.run_id != pending));
    assert!(secure_r1.join("matches/NOTE.txt").is_file());
    assert!(!secure_r1.join("crosswalk.parquet").exists());
    assert!(
        store
            .lineage_by_run(pending)
            .await
            .unwrap()
            .iter()
            .all(|f| f.purged_at.is_none())
    );
    drop(snap);
}

// ---------------------------------------------------------------- the command

#[tokio::test(flavor = "multi_thread")]
async fn the_purge_command_previews_refuses_a_future_date_and_reports_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    workspace::init(dir.path()).await.unwrap();
    // The workspace's own SQLite store, so the command sees the same history.
    let store = Workspace::open(dir.path())
        .unwrap()
        .open_store()
        .await
        .unwrap();
    let (ws, [r1, _, _]) = synthetic_history(&store, dir.path()).await;
    store.close().await;
    let xmatch = |args: &[&str]| {
        Command::new(xmatch_bin())
            .arg("-w")
            .arg(ws.root())
            .args(args)
            .output()
            .unwrap()
    };

    let dry = xmatch(&[
        "purge",
        "--dry-run",
        "--today",
        "2024-10-01",
        "--reason",
        "check",
    ]);
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        out.contains("dry run") && out.contains("would delete 4 files"),
        "{out}"
    );
    assert!(
        out.contains(&format!("secure/runs/{r1}/crosswalk.parquet")),
        "{out}"
    );
    assert!(ws.secure_dir().join("runs").join(r1.to_string()).exists());

    let ahead = xmatch(&["purge", "--today", "2999-01-01", "--reason", "x"]);
    assert_eq!(ahead.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ahead.stderr).contains("later than today"));
    let no_reason = xmatch(&["purge", "--dry-run"]);
    assert_eq!(no_reason.status.code(), Some(2));

    // Today (2025 or later) is past PY2020's retention: the real purge runs.
    let real = xmatch(&["purge", "--reason", "records schedule"]);
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert!(String::from_utf8_lossy(&real.stdout).contains("audit log entry"));
    assert!(!ws.secure_dir().join("runs").join(r1.to_string()).exists());

    let config = ws.root().join(workspace::CONFIG_FILE);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("years_after_closeout = 3", "years_after_closeout = 2"),
    )
    .unwrap();
    let bad = xmatch(&["purge", "--dry-run", "--reason", "x"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("xmatch.toml") && err.contains("retention.years_after_closeout = 2"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test]
async fn a_workspace_from_before_retention_loads_and_purges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    workspace::init(dir.path()).await.unwrap();
    let config = dir.path().join(workspace::CONFIG_FILE);
    let text = std::fs::read_to_string(&config).unwrap();
    let old = &text[..text.find("[retention]").unwrap()];
    std::fs::write(&config, old).unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    assert_eq!(ws.config().retention, workspace::Retention::default());
    let report = purge::purge(&ws, &opts(false, "2099-01-01")).await.unwrap();
    assert!(report.files.is_empty() && report.audit_id.is_some());

    // An unknown key inside [retention] is refused, naming it.
    std::fs::write(
        &config,
        format!("{old}[retention]\nyears_after_closout = 3\n"),
    )
    .unwrap();
    let err = Workspace::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("years_after_closout"), "{err}");
}
