//! Breach-impact queries on a small history of runs, checked against what the test reads
//! from the files the runs wrote (person keys on disk) rather than against the lineage
//! code under test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use xmatch::breach::{self, FileCheck, Impact, Options, Query};
use xmatch::identity::token::{Rule, Tokenizer};
use xmatch::identity::{IdentityFields, ssn};
use xmatch::schema::Catalog;
use xmatch::store::{LineageFilter, Store};
use xmatch::workspace::Workspace;

use crate::pipeline::{generated_workspace, run_nightly};
use crate::support::{
    files_under, read_parquet, read_secure, read_secure_parquet, strings, xmatch_bin,
};

/// The categories a participants file carries (from `schemas/participants.toml` and the
/// verified statuses / wage outcomes the pipeline adds).
const PARTICIPANT_CATEGORIES: [&str; 5] = [
    "disability",
    "public_assistance",
    "ui_receipt",
    "financial",
    "education",
];

fn snapshot_dir(ws: &Workspace, run: i64) -> PathBuf {
    ws.lake_dir().join("snapshots").join(run.to_string())
}

fn secure_dir(ws: &Workspace, run: i64) -> PathBuf {
    ws.secure_dir().join("runs").join(run.to_string())
}

/// Distinct person keys of one file (Parquet or CSV), empty without a person_key column.
fn keys_of(ws: &Workspace, path: &Path) -> BTreeSet<String> {
    let sealed = path.starts_with(ws.secure_dir());
    if path.extension().is_some_and(|e| e == "parquet") {
        let batches = if sealed {
            read_secure_parquet(ws, path)
        } else {
            read_parquet(path)
        };
        if batches.is_empty() || batches[0].column_by_name("person_key").is_none() {
            return BTreeSet::new();
        }
        strings(&batches, "person_key")
            .into_iter()
            .flatten()
            .collect()
    } else {
        let bytes = if sealed {
            read_secure(ws, path)
        } else {
            std::fs::read(path).unwrap()
        };
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        let Some(i) = r.headers().unwrap().iter().position(|h| h == "person_key") else {
            return BTreeSet::new();
        };
        r.records()
            .map(|rec| rec.unwrap()[i].to_string())
            .filter(|k| !k.is_empty())
            .collect()
    }
}

/// (run, zone-relative path) → person keys, for every file a run left on disk.
fn run_files(ws: &Workspace, run: i64) -> BTreeMap<(i64, String), BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for dir in [snapshot_dir(ws, run), secure_dir(ws, run)] {
        for (rel, abs) in files_under(&dir) {
            out.insert((run, rel), keys_of(ws, &abs));
        }
    }
    out
}

fn union<'a>(sets: impl IntoIterator<Item = &'a BTreeSet<String>>) -> BTreeSet<String> {
    sets.into_iter().flatten().cloned().collect()
}

fn notified(impact: &Impact) -> BTreeSet<String> {
    impact
        .notification
        .iter()
        .map(|n| n.person_key.clone())
        .collect()
}

fn categories(impact: &Impact) -> BTreeMap<String, u64> {
    impact
        .by_category
        .iter()
        .map(|c| (c.category.clone(), c.persons))
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Programs per person key, from the current participants dataset.
fn programs_of(ws: &Workspace) -> HashMap<String, BTreeSet<String>> {
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    let dir = ws.lake_dir().join("current").join("participants");
    for (_, path) in files_under(&dir) {
        let b = read_parquet(&path);
        let keys = strings(&b, "person_key");
        let entry_keys: Vec<String> = keys.into_iter().map(|k| k.unwrap()).collect();
        for k in &entry_keys {
            out.entry(k.clone()).or_default();
        }
        for p in breach::PROGRAMS {
            for (k, v) in entry_keys.iter().zip(strings(&b, p)) {
                if v.as_deref() == Some("1") {
                    out.get_mut(k).unwrap().insert(p.to_string());
                }
            }
        }
    }
    out
}

fn expected_programs(
    programs: &HashMap<String, BTreeSet<String>>,
    keys: &BTreeSet<String>,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for k in keys {
        match programs.get(k) {
            None => *out.entry("unknown".to_string()).or_default() += 1,
            Some(p) if p.is_empty() => *out.entry("none".to_string()).or_default() += 1,
            Some(p) => {
                for p in p {
                    *out.entry(p.clone()).or_default() += 1;
                }
            }
        }
    }
    out
}

async fn ask(ws: &Workspace, store: &Store, query: Query) -> Impact {
    let opts = Options::new(Utc::now());
    breach::assess(ws, store, &Catalog::builtin().unwrap(), &query, &opts)
        .await
        .unwrap_or_else(|e| panic!("{query:?}: {e}"))
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn files_runs_datasets_and_windows_name_exactly_the_persons_written() {
    let (dir, ws) = generated_workspace(1_500, 51).await;
    let first = run_nightly(&ws).await.run_id;
    let second = run_nightly(&ws).await.run_id;
    let store = ws.open_store().await.unwrap();
    let catalog = Catalog::builtin().unwrap();
    let programs = programs_of(&ws);
    let on_disk: BTreeMap<_, _> = run_files(&ws, first)
        .into_iter()
        .chain(run_files(&ws, second))
        .collect();

    // 1. A file by path: a participants partition of the current snapshot.
    let (rel, part) = files_under(&snapshot_dir(&ws, second))
        .into_iter()
        .find(|(rel, _)| rel.starts_with("participants/"))
        .expect("a participants file");
    let want = keys_of(&ws, &part);
    assert!(want.len() > 10);
    let by_path = ask(&ws, &store, Query::File { path: part.clone() }).await;
    assert_eq!(by_path.file_check, Some(FileCheck::Recorded));
    assert_eq!(notified(&by_path), want);
    assert_eq!(by_path.persons, want.len() as u64);
    assert!(
        by_path
            .files
            .iter()
            .any(|f| f.run_id == second && f.path == rel && f.dataset == "participants")
    );
    let cats = categories(&by_path);
    assert_eq!(
        cats.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        PARTICIPANT_CATEGORIES.into_iter().collect()
    );
    assert!(cats.values().all(|&n| n == want.len() as u64), "{cats:?}");
    assert_eq!(by_path.highest_category.as_deref(), Some("disability"));
    assert_eq!(by_path.by_program, expected_programs(&programs, &want));
    assert!(by_path.by_local_area.values().sum::<u64>() >= want.len() as u64);
    assert!(!by_path.by_local_area.contains_key("unknown"));
    assert_eq!(
        by_path.report_deadline - by_path.discovered_at,
        Duration::hours(24)
    );
    assert!(by_path.pii_classes["quasi"].contains("person_key"));

    // 2. The same file by its SHA-256 (runs that wrote identical bytes all show).
    let sha = sha256_hex(&part);
    let by_sha = ask(&ws, &store, Query::Sha256(sha.to_uppercase())).await;
    assert_eq!(notified(&by_sha), want);
    assert!(!by_sha.files.is_empty() && by_sha.files.iter().all(|f| f.sha256 == sha));
    let unknown_sha = ask(&ws, &store, Query::Sha256("ab".repeat(32))).await;
    assert_eq!((unknown_sha.persons, unknown_sha.files.len()), (0, 0));

    // 3. A partial copy under the same relative path: tampered, read from its contents.
    let batches = read_parquet(&part);
    let partial = batches[0].slice(0, 7);
    let copy = dir.path().join("laptop").join(&rel);
    write_parquet(&copy, &partial);
    let want_partial: BTreeSet<String> = strings(std::slice::from_ref(&partial), "person_key")
        .into_iter()
        .flatten()
        .collect();
    let tampered = ask(&ws, &store, Query::File { path: copy.clone() }).await;
    assert!(
        matches!(&tampered.file_check, Some(FileCheck::Tampered { recorded_sha256 }) if recorded_sha256.contains(&sha)),
        "{:?}",
        tampered.file_check
    );
    assert!(
        tampered
            .notes
            .iter()
            .any(|n| n.contains("no longer match the recorded SHA-256"))
    );
    assert_eq!(notified(&tampered), want_partial);
    assert_eq!(
        categories(&tampered)
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        PARTICIPANT_CATEGORIES.into_iter().collect()
    );

    // 4. A CSV xmatch never wrote, with person keys and a raw disability column.
    let stray = dir.path().join("stray.csv");
    let few: Vec<&String> = want.iter().take(5).collect();
    let mut text = String::from("person_key,disability,note\n");
    for k in &few {
        text.push_str(&format!("{k},1,x\n"));
    }
    text.push_str("NOTAPERSONKEY,0,y\n");
    std::fs::write(&stray, text).unwrap();
    let stray_impact = ask(&ws, &store, Query::File { path: stray }).await;
    assert_eq!(stray_impact.file_check, Some(FileCheck::NotWrittenByXmatch));
    assert_eq!(stray_impact.persons, 5);
    assert_eq!(stray_impact.unknown_person_keys, 1);
    assert_eq!(
        categories(&stray_impact),
        BTreeMap::from([("disability".to_string(), 5)])
    );

    // 5. An unrelated file: unknown, no persons, not an error; a missing file is one.
    let other = dir.path().join("notes.bin");
    std::fs::write(&other, [0u8, 1, 2, 3, 0, 9]).unwrap();
    let unknown = ask(&ws, &store, Query::File { path: other }).await;
    assert_eq!(unknown.file_check, Some(FileCheck::Unknown));
    assert_eq!(unknown.persons, 0);
    let missing = breach::assess(
        &ws,
        &store,
        &catalog,
        &Query::File {
            path: dir.path().join("nope.parquet"),
        },
        &Options::new(Utc::now()),
    )
    .await;
    assert!(matches!(missing, Err(breach::BreachError::Read { .. })));

    // 6. A run: the union of the persons of every file it wrote.
    let want_run: BTreeSet<String> = union(
        on_disk
            .iter()
            .filter(|((r, _), _)| *r == first)
            .map(|(_, k)| k),
    );
    let run = ask(&ws, &store, Query::Run(first)).await;
    assert_eq!(notified(&run), want_run);
    assert_eq!(
        run.files
            .iter()
            .map(|f| f.path.clone())
            .collect::<BTreeSet<_>>(),
        on_disk
            .keys()
            .filter(|(r, _)| *r == first)
            .map(|(_, p)| p.clone())
            .collect()
    );

    // 7. A window holding exactly the second run's files.
    let lineage = store
        .lineage_meta(&LineageFilter::Run(second))
        .await
        .unwrap();
    let from = lineage.iter().map(|f| f.written_at).min().unwrap();
    let to = lineage.iter().map(|f| f.written_at).max().unwrap() + Duration::microseconds(1);
    let window = ask(&ws, &store, Query::Window { from, to }).await;
    assert!(window.files.iter().all(|f| f.run_id == second));
    assert_eq!(window.files.len(), lineage.len());
    let want_window: BTreeSet<String> = union(
        on_disk
            .iter()
            .filter(|((r, _), _)| *r == second)
            .map(|(_, k)| k),
    );
    assert_eq!(notified(&window), want_window);
    let empty = ask(
        &ws,
        &store,
        Query::Window {
            from: to + Duration::days(1),
            to: to + Duration::days(2),
        },
    )
    .await;
    assert_eq!((empty.files.len(), empty.persons), (0, 0));

    // 8. A dataset across runs, and a secure dataset prefix.
    let want_ds: BTreeSet<String> = union(
        on_disk
            .iter()
            .filter(|((_, p), _)| p.starts_with("participants/"))
            .map(|(_, k)| k),
    );
    let ds = ask(&ws, &store, Query::Dataset("participants".into())).await;
    assert_eq!(notified(&ds), want_ds);
    assert!(ds.files.iter().any(|f| f.run_id == first));
    assert!(ds.files.iter().any(|f| f.run_id == second));
    let matches = ask(&ws, &store, Query::Dataset("matches".into())).await;
    assert!(!matches.files.is_empty());
    assert!(
        matches
            .files
            .iter()
            .all(|f| f.dataset.starts_with("matches/"))
    );
    let want_matches: BTreeSet<String> = union(
        on_disk
            .iter()
            .filter(|((_, p), _)| p.starts_with("matches/"))
            .map(|(_, k)| k),
    );
    assert_eq!(notified(&matches), want_matches);

    // Every question above that answered is in the audit log.
    let audit = store.audit_entries(100).await.unwrap();
    assert_eq!(
        audit.iter().filter(|(_, e)| e.action == "breach").count(),
        11
    );
    store.close().await;
}

/// Valid SSN digits of incoming participants whose SSN is on exactly one row, with that
/// row's case-management id.
fn unique_ssns(ws: &Workspace) -> Vec<(String, String)> {
    let b = read_parquet(&ws.incoming_dir().join("participants.parquet"));
    let rows: Vec<(String, String)> = strings(&b, "individual_id")
        .into_iter()
        .zip(strings(&b, "ssn"))
        .filter_map(|(id, s)| {
            let s = ssn::normalize(s.as_deref()?).ok()?;
            Some((id?, String::from_utf8(s.digits().to_vec()).unwrap()))
        })
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, s) in &rows {
        *count.entry(s).or_default() += 1;
    }
    rows.iter()
        .filter(|(_, s)| count[s.as_str()] == 1)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_list_names_its_persons_and_every_file_holding_them() {
    let (dir, ws) = generated_workspace(1_200, 52).await;
    let first = run_nightly(&ws).await.run_id;
    let second = run_nightly(&ws).await.run_id;
    let store = ws.open_store().await.unwrap();
    let catalog = Catalog::builtin().unwrap();

    // individual_id → person_key, from the latest crosswalk.
    let cw = read_secure_parquet(&ws, &secure_dir(&ws, second).join("crosswalk.parquet"));
    let key_of: HashMap<String, String> = strings(&cw, "individual_id")
        .into_iter()
        .zip(strings(&cw, "person_key"))
        .map(|(i, k)| (i.unwrap(), k.unwrap()))
        .collect();

    let chosen: Vec<(String, String)> = unique_ssns(&ws).into_iter().take(21).collect();
    assert_eq!(chosen.len(), 21);
    let key = ws.load_key().unwrap();
    let tokenizer = Tokenizer::new(key.bytes(), key.id());
    let token_hex = |digits: &str| {
        let f = IdentityFields {
            ssn: Some(ssn::normalize(digits).unwrap()),
            ..IdentityFields::default()
        };
        hex::encode(tokenizer.token(Rule::Ssn, &f).unwrap())
    };
    // 20 SSNs formatted as partners send them, 1 as a token; malformed lines; one valid SSN
    // nobody has.
    let mut lines = vec!["ssn".to_string()];
    for (i, (_, digits)) in chosen.iter().enumerate().take(20) {
        lines.push(if i % 2 == 0 {
            format!("{}-{}-{}", &digits[..3], &digits[3..5], &digits[5..])
        } else {
            digits.clone()
        });
    }
    lines.push(token_hex(&chosen[20].1));
    lines.push(chosen[0].1.clone()); // a repeat: counted once
    lines.extend(["12345".into(), "ABC-DE-FGHI".into(), "000-12-3456".into()]);
    lines.push("ab".repeat(31) + "a"); // 63 hex digits: a damaged token
    let taken: BTreeSet<String> = {
        let b = read_parquet(&ws.incoming_dir().join("participants.parquet"));
        strings(&b, "ssn")
            .into_iter()
            .flatten()
            .filter_map(|s| ssn::normalize(&s).ok())
            .map(|s| String::from_utf8(s.digits().to_vec()).unwrap())
            .collect()
    };
    let nobody = (0..)
        .map(|i| format!("{:03}{:02}{:04}", 201 + i, 37, 4100 + i))
        .find(|s| !taken.contains(s) && ssn::normalize(s).is_ok())
        .unwrap();
    lines.push(nobody);
    lines.push(String::new());
    let tokens_path = dir.path().join("partner.csv");
    std::fs::write(&tokens_path, lines.join("\n")).unwrap();

    let want: BTreeSet<String> = chosen.iter().map(|(id, _)| key_of[id].clone()).collect();
    let impact = ask(
        &ws,
        &store,
        Query::Tokens {
            path: tokens_path.clone(),
        },
    )
    .await;
    let t = impact.tokens.clone().unwrap();
    assert_eq!(t.ssn_lines, 22);
    assert_eq!(t.token_lines, 1);
    assert_eq!(t.unusable, 4, "{:?}", t.unusable_by_reason);
    assert_eq!(t.unusable_by_reason.get("bad_token"), Some(&1));
    // Lines: header is 1, the malformed ones are 24–27.
    assert_eq!(t.unusable_lines, vec![24, 25, 26, 27]);
    assert_eq!(t.not_found, 1);
    assert_eq!(notified(&impact), want);
    assert_eq!(impact.persons, want.len() as u64);
    assert_eq!(impact.highest_category.as_deref(), Some("ssn"));
    // The 21st came as a token: its SSN was not exposed by the partner's file.
    let cats = categories(&impact);
    assert_eq!(cats["ssn"], want.len() as u64 - 1);
    assert_eq!(cats["disability"], want.len() as u64);
    // Every file on disk that holds one of them, and no other.
    let on_disk: BTreeMap<_, _> = run_files(&ws, first)
        .into_iter()
        .chain(run_files(&ws, second))
        .collect();
    let want_files: BTreeSet<(i64, String)> = on_disk
        .iter()
        .filter(|(_, keys)| !keys.is_disjoint(&want))
        .map(|(k, _)| k.clone())
        .collect();
    let got_files: BTreeSet<(i64, String)> = impact
        .files
        .iter()
        .map(|f| (f.run_id, f.path.clone()))
        .collect();
    assert_eq!(got_files, want_files);
    // No SSN in any output form.
    let outputs = [
        impact.to_string(),
        breach::render_json(&impact),
        breach::render_csv(&impact),
    ];
    for (_, digits) in &chosen {
        for o in &outputs {
            assert!(!o.contains(digits.as_str()), "an SSN reached the output");
        }
    }

    // --identify needs a reason; with one, IDs come from the crosswalk and it is audited.
    let mut opts = Options::new(Utc::now());
    opts.identify = true;
    let query = Query::Tokens { path: tokens_path };
    let refused = breach::assess(&ws, &store, &catalog, &query, &opts).await;
    assert!(matches!(refused, Err(breach::BreachError::ReasonRequired)));
    opts.reason = Some("ticket 7: partner mailing list".into());
    opts.actor = "analyst-7".into();
    let identified = breach::assess(&ws, &store, &catalog, &query, &opts)
        .await
        .unwrap();
    assert!(identified.identified);
    assert_eq!(identified.crosswalk_run, Some(second));
    let ids: BTreeSet<String> = identified
        .notification
        .iter()
        .flat_map(|n| n.individual_ids.clone().unwrap())
        .collect();
    for (id, _) in &chosen {
        assert!(ids.contains(id));
    }
    let audit = store.audit_entries(10).await.unwrap();
    let (_, last) = &audit[0];
    assert_eq!(last.action, "breach_identify");
    assert_eq!(last.actor, "analyst-7");
    assert_eq!(
        last.reason.as_deref(),
        Some("ticket 7: partner mailing list")
    );
    assert_eq!(last.detail["persons"], want.len() as u64);
    assert_eq!(
        audit
            .iter()
            .filter(|(_, e)| e.action.starts_with("breach"))
            .count(),
        2,
        "the refused query is not an answer and is not audited"
    );
    store.close().await;

    // The CLI: CSV list on stdout, summary on stderr, no SSN anywhere; usage errors exit 2.
    let out = std::process::Command::new(xmatch_bin())
        .args(["-w"])
        .arg(ws.root())
        .args(["breach", "--tokens"])
        .arg(dir.path().join("partner.csv"))
        .args(["--format", "csv", "--discovered-at", "2025-06-30T09:00:00Z"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stdout.lines().count(), want.len() + 1);
    assert!(
        stderr.contains("report by 2025-07-01T09:00:00Z"),
        "{stderr}"
    );
    for (_, digits) in &chosen {
        assert!(!stdout.contains(digits.as_str()) && !stderr.contains(digits.as_str()));
    }
    let no_reason = std::process::Command::new(xmatch_bin())
        .args(["-w"])
        .arg(ws.root())
        .args(["breach", "--run", "1", "--identify"])
        .output()
        .unwrap();
    assert_eq!(no_reason.status.code(), Some(2));
    let unreadable = std::process::Command::new(xmatch_bin())
        .args(["-w"])
        .arg(ws.root())
        .args(["breach", "--file"])
        .arg(dir.path().join("missing.parquet"))
        .output()
        .unwrap();
    assert_eq!(unreadable.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&unreadable.stderr).lines().count(),
        1
    );
}

/// Benchmark (not a timed test): a state of `XMATCH_BREACH_BENCH_N` participants (default
/// 1,000,000) and a year of nightly lineage, synthesized by re-recording one real run's
/// files 365 times with dates shifted a day each (and distinct hashes, so one file is one
/// record). Prints the median of 3 timings of a single-file question and a 30-day window.
///
/// `XMATCH_BREACH_BENCH_N=1000000 cargo test --release --test it breach_benchmark -- --ignored --nocapture`
///
/// With `XMATCH_BREACH_BENCH_WORKSPACE=DIR` it uses an existing workspace (e.g. the one
/// `xmatch bench --dir DIR` leaves) and its latest successful `nightly-crossmatch` run
/// instead of generating one, and leaves the synthesized history there, so `xmatch -w DIR
/// breach …` can be timed from the command line; a history already recorded there is
/// reused, not recorded twice. The copies are recorded through `StoreTx::record_lineage`
/// as run ids 100,001 … 100,365 (day 1 … 365 before the real run), which no `runs` row
/// holds, far above the ids real runs get.
///
/// Each copy keeps the real file's person set by default: in a real year most files (closed
/// program years, old wage quarters, the crosswalk) hold the same persons night after night.
/// `XMATCH_BREACH_BENCH_VARY=1` instead drops a different ~0.1% of each set per day, so no two
/// copies have the same set (the case where no two nights' files agree).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: minutes of setup; run explicitly with --ignored --nocapture"]
async fn breach_benchmark() {
    use std::time::Instant;
    use xmatch::lake::{PersonSet, WrittenFile};

    let n: usize = std::env::var("XMATCH_BREACH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let vary = std::env::var("XMATCH_BREACH_BENCH_VARY").is_ok_and(|v| v == "1");
    let t = Instant::now();
    let (_dir, ws, run) = match std::env::var_os("XMATCH_BREACH_BENCH_WORKSPACE") {
        Some(dir) => {
            let ws = Workspace::open(Path::new(&dir)).unwrap();
            let store = ws.open_store().await.unwrap();
            let run = store
                .runs(Some("nightly-crossmatch"), 1_000)
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.status == "succeeded")
                .expect("the workspace has a successful nightly-crossmatch run")
                .id;
            store.close().await;
            eprintln!("bench: workspace {}, run {run}", ws.root().display());
            (None, ws, run)
        }
        None => {
            let (dir, ws) = generated_workspace(n, 7).await;
            let run = run_nightly(&ws).await.run_id;
            eprintln!(
                "bench: state of {n} participants and one run in {:.1?}",
                t.elapsed()
            );
            (Some(dir), ws, run)
        }
    };
    let store = ws.open_store().await.unwrap();
    let key_id = store.workspace().await.unwrap().unwrap().key_id;
    let files = store.lineage_by_run(run).await.unwrap();
    let t = Instant::now();
    let recorded = !store
        .lineage_meta(&LineageFilter::Run(100_001))
        .await
        .unwrap()
        .is_empty();
    if recorded {
        eprintln!("bench: a synthesized history is already recorded; reused");
    }
    for day in (1..=365i64).filter(|_| !recorded) {
        let copies: Vec<WrittenFile> = files
            .iter()
            .map(|f| WrittenFile {
                zone: f.zone,
                dataset: f.dataset.clone(),
                path: f.path.clone(),
                sha256: hex::encode(Sha256::digest(format!("{}/{day}", f.sha256))),
                rows: f.rows,
                columns: f.columns.clone(),
                persons: if vary {
                    // A different ~0.1% of the ids left out each day (a cheap hash of
                    // id and day), so every copy's set differs from every other's.
                    let day = day as u64;
                    PersonSet::from_ids(f.persons.iter().filter(|&id| {
                        (id as u64 ^ day.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                            .wrapping_mul(0xff51_afd7_ed55_8ccd)
                            >> 54
                            != 0
                    }))
                } else {
                    f.persons.clone()
                },
                written_at: f.written_at - Duration::days(day),
            })
            .collect();
        let mut tx = store.begin().await.unwrap();
        tx.record_lineage(100_000 + day, &key_id, &copies)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let biggest = files.iter().map(|f| f.person_count).max().unwrap();
    let ids: u64 = files.iter().map(|f| f.person_count).sum();
    eprintln!(
        "bench: {} files per run ({} persons in the largest, {ids} ids in all), 365 copies{} in {:.1?}",
        files.len(),
        biggest,
        if vary { " (varied)" } else { "" },
        t.elapsed()
    );

    let part = files
        .iter()
        .filter(|f| f.dataset == "participants")
        .max_by_key(|f| f.person_count)
        .unwrap();
    let part_path = ws.lake_dir().join("current").join(&part.path);
    let newest = files.iter().map(|f| f.written_at).max().unwrap();
    let from = newest - Duration::days(30) - Duration::hours(1);
    let to = newest - Duration::hours(1);
    let queries = [
        ("single file (--file)", Query::File { path: part_path }),
        ("30-day window", Query::Window { from, to }),
    ];
    for (label, q) in queries {
        let mut times = Vec::new();
        let mut impact = None;
        for _ in 0..3 {
            let t = Instant::now();
            impact = Some(ask(&ws, &store, q.clone()).await);
            times.push(t.elapsed());
        }
        times.sort();
        let impact = impact.unwrap();
        eprintln!(
            "bench: {label}: {} files, {} persons; median {:.2?} (runs {:?})",
            impact.files.len(),
            impact.persons,
            times[1],
            times
        );
    }
    store.close().await;
}
