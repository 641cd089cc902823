//! The lake: Hive-partitioned Parquet, atomic publish, crash recovery, secure-zone modes,
//! person sets, and lineage on both stores.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use xmatch::lake::{
    self, ColumnMeta, DatasetMeta, HIVE_DEFAULT_PARTITION, LakeError, PersonSet, Snapshot, Zone,
};
use xmatch::schema::PiiClass;
use xmatch::store::Store;

use crate::support::{PgStore, sqlite_store, test_zone};

// ---------------------------------------------------------------- fixtures

/// Rows per run: 3 batches × 4 rows over program years 2023, 2024 and null.
const ROWS_PER_RUN: usize = 12;

fn participants_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("person_key", DataType::Utf8, false),
        Field::new("program_year", DataType::Int32, true),
        Field::new("entry_date", DataType::Date32, true),
        Field::new("run", DataType::Int64, false),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("person_id", DataType::Int64, true),
    ]))
}

/// Three batches; batch `b` row `r` is person `100 + 4b + r` (the last row of each batch has
/// no person id, like a row of no known person).
fn participants(run: i64) -> Vec<RecordBatch> {
    (0..3)
        .map(|b| {
            let ids: Vec<Option<i64>> = (0..4)
                .map(|r| (r != 3).then_some(100 + 4 * b + r))
                .collect();
            RecordBatch::try_new(
                participants_schema(),
                vec![
                    Arc::new(StringArray::from(
                        (0..4)
                            .map(|r| format!("PK{b}{r}AAAAAAA"))
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(Int32Array::from(vec![
                        Some(2023),
                        Some(2024),
                        None,
                        Some(2024),
                    ])),
                    Arc::new(Date32Array::from(vec![
                        Some(19_000),
                        None,
                        Some(19_500),
                        Some(19_700),
                    ])),
                    Arc::new(Int64Array::from(vec![run; 4])),
                    Arc::new(
                        TimestampNanosecondArray::from(vec![1_700_000_000_123_456_789; 4])
                            .with_timezone("UTC"),
                    ),
                    Arc::new(Int64Array::from(ids)),
                ],
            )
            .unwrap()
        })
        .collect()
}

fn participants_meta() -> DatasetMeta {
    DatasetMeta {
        columns: vec![
            ColumnMeta::plain("person_key"),
            ColumnMeta::new("program_year", PiiClass::None, None),
            ColumnMeta::new("entry_date", PiiClass::Quasi, Some("program_participation")),
            ColumnMeta::plain("run"),
            ColumnMeta::plain("updated_at"),
        ],
        person_id_column: Some("person_id".into()),
    }
}

fn temp_ids_batch(run: i64) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("temp_id", DataType::Utf8, false),
            Field::new("run", DataType::Int64, false),
            Field::new("person_id", DataType::Int64, false),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["T0000000AX", "T0000001BY"])),
            Arc::new(Int64Array::from(vec![run, run])),
            Arc::new(Int64Array::from(vec![7, 9])),
        ],
    )
    .unwrap()
}

fn temp_ids_meta() -> DatasetMeta {
    DatasetMeta {
        columns: vec![
            ColumnMeta::new("temp_id", PiiClass::Direct, None),
            ColumnMeta::plain("run"),
        ],
        person_id_column: Some("person_id".into()),
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    lake: PathBuf,
    secure: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    Dirs {
        lake: tmp.path().join("lake"),
        secure: tmp.path().join("secure"),
        _tmp: tmp,
    }
}

/// Begins a run and writes its datasets (both zones), without publishing.
fn stage_run(lake: &Path, secure: &Path, run: i64) -> Snapshot {
    let snap = Snapshot::begin(lake, &test_zone(secure), run).unwrap();
    snap.write_deid(
        "participants",
        Some("program_year"),
        participants(run),
        &participants_meta(),
    )
    .unwrap();
    snap.write_secure(
        Path::new("temp_ids/assignments.csv"),
        [temp_ids_batch(run)],
        &temp_ids_meta(),
    )
    .unwrap();
    snap
}

fn publish_run(lake: &Path, secure: &Path, run: i64) -> lake::PublishedSnapshot {
    stage_run(lake, secure, run).publish().unwrap()
}

/// What a reader sees through `lake/current`: the run ids in the `run` column and the row
/// count. A complete snapshot has exactly one run id and ROWS_PER_RUN rows.
fn read_current(lake: &Path) -> (BTreeSet<i64>, usize) {
    let (_, snapshot) = lake::current_snapshot(lake)
        .unwrap()
        .expect("something is published");
    let mut runs = BTreeSet::new();
    let mut rows = 0;
    for path in lake::parquet_files(&snapshot.join("participants")) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            rows += batch.num_rows();
            let run = batch
                .column_by_name("run")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            runs.extend(run.iter().flatten());
        }
    }
    (runs, rows)
}

fn assert_current_complete(lake: &Path, run: i64) {
    assert_eq!(
        read_current(lake),
        (BTreeSet::from([run]), ROWS_PER_RUN),
        "lake/current must name run {run}'s complete snapshot"
    );
}

// ---------------------------------------------------------------- person sets

proptest! {
    #[test]
    fn person_set_round_trips(ids in proptest::collection::vec(any::<i64>(), 0..300)) {
        let set = PersonSet::from_ids(ids.iter().copied());
        let decoded = PersonSet::decode(&set.encode()).unwrap();
        prop_assert_eq!(&decoded, &set);
        let mut expected = ids.clone();
        expected.sort_unstable();
        expected.dedup();
        prop_assert_eq!(decoded.as_slice(), &expected[..]);
        for id in &ids {
            prop_assert!(decoded.contains(*id));
        }
        let mut visited = Vec::new();
        PersonSet::decode_each(&set.encode(), |id| visited.push(id)).unwrap();
        prop_assert_eq!(&visited[..], &expected[..]);
    }

    #[test]
    fn person_set_union_is_the_set_union(
        a in proptest::collection::vec(-1000i64..1000, 0..100),
        b in proptest::collection::vec(-1000i64..1000, 0..100),
    ) {
        let u = PersonSet::from_ids(a.iter().copied()).union(&PersonSet::from_ids(b.iter().copied()));
        prop_assert_eq!(u, PersonSet::from_ids(a.iter().chain(&b).copied()));
    }

    #[test]
    fn person_set_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        // Decoding in place (breach queries) accepts and refuses exactly what decode does.
        let mut visited = Vec::new();
        let each = PersonSet::decode_each(&bytes, |id| visited.push(id));
        match PersonSet::decode(&bytes) {
            Ok(set) => {
                prop_assert!(each.is_ok());
                prop_assert_eq!(set.as_slice(), &visited[..]);
            }
            Err(e) => prop_assert_eq!(each, Err(e)),
        }
    }
}

#[test]
fn a_million_persons_take_under_two_megabytes() {
    // Dense ids with gaps (merged or absent persons), as the registry issues them.
    let set = PersonSet::from_ids((0..1_300_000i64).filter(|i| i % 4 != 0).map(|i| i + 5_000));
    assert!(set.len() > 950_000);
    let encoded = set.encode();
    assert!(encoded.len() < 2_000_000, "{} bytes", encoded.len());
    assert_eq!(PersonSet::decode(&encoded).unwrap(), set);
    // Extremes of the id range survive too.
    let edge = PersonSet::from_ids([i64::MIN, -1, 0, 1, i64::MAX]);
    assert_eq!(PersonSet::decode(&edge.encode()).unwrap(), edge);
}

#[test]
fn a_damaged_person_set_is_an_error_not_a_wrong_answer() {
    let enc = PersonSet::from_ids([1, 2, 300]).encode();
    assert!(PersonSet::decode(&enc[..enc.len() - 1]).is_err());
    let mut longer = enc.clone();
    longer.push(0);
    assert!(PersonSet::decode(&longer).is_err());
    assert!(PersonSet::decode(&[9, 0]).is_err());
    assert!(PersonSet::decode(&[]).is_err());
}

// ---------------------------------------------------------------- writing

#[test]
fn deid_files_are_hive_partitioned_hashed_and_carry_their_persons() {
    let d = dirs();
    let published = publish_run(&d.lake, &d.secure, 1);
    let snap = d.lake.join("current");
    let deid: Vec<_> = published
        .files
        .iter()
        .filter(|f| f.zone == Zone::Deid)
        .collect();
    let paths: Vec<String> = deid.iter().map(|f| f.path.display().to_string()).collect();
    assert_eq!(
        paths,
        vec![
            "participants/program_year=2023/part-00000.parquet".to_string(),
            "participants/program_year=2024/part-00000.parquet".to_string(),
            format!("participants/program_year={HIVE_DEFAULT_PARTITION}/part-00000.parquet"),
        ]
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    let mut total = 0;
    for f in &deid {
        let bytes = fs::read(snap.join(&f.path)).unwrap();
        assert_eq!(
            f.sha256,
            hex::encode(Sha256::digest(&bytes)),
            "{}",
            f.path.display()
        );
        total += f.rows;
        assert_eq!(
            f.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            [
                "person_key",
                "entry_date",
                "run",
                "updated_at",
                "program_year"
            ]
        );
    }
    assert_eq!(total, ROWS_PER_RUN as u64);
    // Row r of batch b is person 100 + 4b + r, program year [2023, 2024, null, 2024][r];
    // row 3 has no person id.
    let by_year = |y: &str| {
        deid.iter()
            .find(|f| f.path.to_string_lossy().contains(&format!("={y}/")))
            .unwrap()
            .persons
            .clone()
    };
    assert_eq!(by_year("2023"), PersonSet::from_ids([100, 104, 108]));
    assert_eq!(by_year("2024"), PersonSet::from_ids([101, 105, 109]));
    assert_eq!(
        by_year(HIVE_DEFAULT_PARTITION),
        PersonSet::from_ids([102, 106, 110])
    );

    // Inside the files: no partition column, no person ids, Date32, microsecond
    // timestamps, zstd, chunk statistics, and no page index (arrow-rs issue 10316).
    for f in &deid {
        let file = fs::File::open(snap.join(&f.path)).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let schema = builder.schema().clone();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["person_key", "entry_date", "run", "updated_at"]);
        assert_eq!(
            schema.field_with_name("entry_date").unwrap().data_type(),
            &DataType::Date32
        );
        assert_eq!(
            schema.field_with_name("updated_at").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let meta = builder.metadata();
        for rg in meta.row_groups() {
            for col in rg.columns() {
                assert!(matches!(
                    col.compression(),
                    parquet::basic::Compression::ZSTD(_)
                ));
                assert!(col.statistics().is_some(), "chunk statistics are written");
                assert_eq!(col.column_index_offset(), None, "no column index");
                assert_eq!(col.offset_index_offset(), None, "no offset index");
            }
        }
    }
}

#[tokio::test]
async fn datafusion_reads_the_hive_layout_and_filters_on_the_partition_column() {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::ListingOptions;
    use datafusion::prelude::{ParquetReadOptions, SessionContext, col, lit};

    let d = dirs();
    let snap = Snapshot::begin(&d.lake, &test_zone(&d.secure), 1).unwrap();
    snap.write_deid(
        "participants",
        Some("program_year"),
        participants(1),
        &participants_meta(),
    )
    .unwrap();
    // A dataset without nulls in its partition column can be read with an integer type.
    let no_null: Vec<RecordBatch> = participants(1)
        .into_iter()
        .map(|b| {
            let years = Int32Array::from(vec![2022, 2023, 2024, 2024]);
            let mut cols = b.columns().to_vec();
            cols[1] = Arc::new(years);
            RecordBatch::try_new(b.schema(), cols).unwrap()
        })
        .collect();
    snap.write_deid(
        "by_year",
        Some("program_year"),
        no_null,
        &participants_meta(),
    )
    .unwrap();
    snap.publish().unwrap();
    let (_, root) = lake::current_snapshot(&d.lake).unwrap().unwrap();

    let ctx = SessionContext::new();
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![("program_year".into(), DataType::Utf8)]);
    ctx.register_listing_table(
        "participants",
        format!("{}/participants/", root.display()),
        options,
        None,
        None,
    )
    .await
    .unwrap();
    let count = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        }
    };
    assert_eq!(count("SELECT count(*) FROM participants").await, 12);
    assert_eq!(
        count("SELECT count(*) FROM participants WHERE program_year = '2024'").await,
        6
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM participants WHERE program_year = '__HIVE_DEFAULT_PARTITION__'"
        )
        .await,
        3
    );
    assert_eq!(
        count("SELECT count(*) FROM participants WHERE entry_date >= DATE '2023-01-01'").await,
        6
    );

    let df = ctx
        .read_parquet(
            format!("{}/by_year/", root.display()),
            ParquetReadOptions::default()
                .table_partition_cols(vec![("program_year".into(), DataType::Int32)]),
        )
        .await
        .unwrap()
        .filter(col("program_year").gt_eq(lit(2023)))
        .unwrap();
    assert_eq!(df.count().await.unwrap(), 9);
}

#[test]
fn secure_files_are_0600_in_0700_directories() {
    use std::os::unix::fs::PermissionsExt;
    let d = dirs();
    let published = publish_run(&d.lake, &d.secure, 3);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.secure), 0o700);
    assert_eq!(mode(&d.secure.join("runs")), 0o700);
    let run_dir = d.secure.join("runs/3");
    assert_eq!(published.secure_run_dir, run_dir);
    assert_eq!(mode(&run_dir), 0o700);
    assert_eq!(mode(&run_dir.join("temp_ids")), 0o700);
    let file = run_dir.join("temp_ids/assignments.csv");
    assert_eq!(mode(&file), 0o600);
    let text = String::from_utf8(test_zone(&d.secure).read(&file).unwrap()).unwrap();
    assert_eq!(
        text, "temp_id,run\nT0000000AX,3\nT0000001BY,3\n",
        "person ids are dropped"
    );
    let sealed = fs::read(&file).unwrap();
    assert!(
        !sealed.windows(10).any(|w| w == b"T0000000AX"),
        "the file on disk is sealed"
    );
    let secure: Vec<_> = published
        .files
        .iter()
        .filter(|f| f.zone == Zone::Secure)
        .collect();
    assert_eq!(secure.len(), 1);
    assert_eq!(secure[0].path, Path::new("temp_ids/assignments.csv"));
    assert_eq!(secure[0].dataset, "temp_ids/assignments");
    assert_eq!(secure[0].persons, PersonSet::from_ids([7, 9]));
    assert_eq!(
        secure[0].sha256,
        hex::encode(Sha256::digest(&sealed)),
        "lineage records the ciphertext's hash"
    );

    // Parquet works too, and a bad name is refused.
    let snap = Snapshot::begin(&d.lake, &test_zone(&d.secure), 4).unwrap();
    snap.write_secure(
        Path::new("rejects.parquet"),
        [temp_ids_batch(4)],
        &temp_ids_meta(),
    )
    .unwrap();
    for bad in ["../escape.csv", "/abs.csv", "x.txt", ".hidden/a.csv"] {
        assert!(matches!(
            snap.write_secure(Path::new(bad), [temp_ids_batch(4)], &temp_ids_meta()),
            Err(LakeError::BadName { .. })
        ));
    }
    snap.publish().unwrap();
    assert_eq!(mode(&d.secure.join("runs/4/rejects.parquet")), 0o600);
}

#[test]
fn a_column_without_metadata_is_refused() {
    let d = dirs();
    let snap = Snapshot::begin(&d.lake, &test_zone(&d.secure), 1).unwrap();
    let mut meta = participants_meta();
    meta.columns.retain(|c| c.name != "entry_date");
    let err = snap
        .write_deid("participants", Some("program_year"), participants(1), &meta)
        .unwrap_err();
    assert!(err.to_string().contains("entry_date"), "{err}");
    let mut meta = participants_meta();
    meta.person_id_column = Some("run_id_typo".into());
    assert!(matches!(
        snap.write_deid("participants", None, participants(1), &meta),
        Err(LakeError::PersonIdColumn { .. })
    ));
}

// ---------------------------------------------------------------- publishing

#[test]
fn publishing_switches_current_and_keeps_only_the_previous_snapshot() {
    let d = dirs();
    let p1 = publish_run(&d.lake, &d.secure, 1);
    assert_eq!(p1.previous, None);
    assert_current_complete(&d.lake, 1);
    let p2 = publish_run(&d.lake, &d.secure, 2);
    assert_eq!((p2.previous, p2.removed.clone()), (Some(1), vec![]));
    assert_current_complete(&d.lake, 2);
    assert!(
        d.lake.join("snapshots/1").is_dir(),
        "previous kept for in-flight readers"
    );
    let p3 = publish_run(&d.lake, &d.secure, 3);
    assert_eq!((p3.previous, p3.removed), (Some(2), vec![1]));
    assert!(!d.lake.join("snapshots/1").exists());
    assert_eq!(
        fs::read_link(d.lake.join("current")).unwrap(),
        Path::new("snapshots/3")
    );
    // Secure outputs are per run and all kept.
    for run in 1..=3 {
        assert!(
            d.secure
                .join(format!("runs/{run}/temp_ids/assignments.csv"))
                .is_file()
        );
    }
    assert!(
        fs::read_dir(d.lake.join(".staging"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(
        fs::read_dir(d.secure.join(".staging"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn readers_see_the_old_snapshot_or_the_new_never_a_mix() {
    let d = dirs();
    publish_run(&d.lake, &d.secure, 1);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (lake, stop) = (d.lake.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                // A snapshot pruned between resolving and reading is the one failure a
                // reader may see (it is two publishes old); everything it does read is whole.
                let result = std::panic::catch_unwind(|| read_current(&lake));
                if let Ok((runs, rows)) = result {
                    assert_eq!(runs.len(), 1, "a mix of runs {runs:?}");
                    assert_eq!(rows, ROWS_PER_RUN, "a partial snapshot of run {runs:?}");
                    reads += 1;
                }
            }
            reads
        })
    };
    for run in 2..=15 {
        publish_run(&d.lake, &d.secure, run);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw only whole snapshots");
    assert!(reads > 0);
    assert_current_complete(&d.lake, 15);
}

#[test]
fn begin_refuses_while_another_runs_staging_awaits_recovery() {
    let d = dirs();
    publish_run(&d.lake, &d.secure, 1);
    drop(stage_run(&d.lake, &d.secure, 2)); // crashed before the store commit
    match Snapshot::begin(&d.lake, &test_zone(&d.secure), 3) {
        Err(LakeError::PendingStaging { run_ids }) => assert_eq!(run_ids, vec![2]),
        other => panic!("expected PendingStaging, got {other:?}"),
    }
    let rec = lake::recover(&d.lake, &d.secure, &[], &[]).unwrap();
    assert_eq!(rec.discarded, vec![2]);
    assert_eq!(rec.current, Some(1));
    assert_current_complete(&d.lake, 1);
    // A retry of the same run id starts over cleanly.
    drop(stage_run(&d.lake, &d.secure, 3));
    publish_run(&d.lake, &d.secure, 3);
    assert_current_complete(&d.lake, 3);
}

// ---------------------------------------------------------------- crashes

const CHILD_ENV: &str = "XMATCH_LAKE_CRASH_CHILD";

/// Not a test of its own: the body of the child process the crash tests kill. Without
/// `XMATCH_LAKE_CRASH_CHILD` it returns at once.
#[test]
fn crash_child_writer() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    publish_run(&root.join("lake"), &root.join("secure"), 12);
}

/// Publishes runs 10 and 11, then runs a child that stages and publishes run 12 with
/// `failpoint` armed; asserts the child died of SIGKILL (or, with no failpoint, finished).
fn crash_at(failpoint: Option<&str>) -> Dirs {
    use std::os::unix::process::ExitStatusExt;
    let d = dirs();
    publish_run(&d.lake, &d.secure, 10);
    publish_run(&d.lake, &d.secure, 11);
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "lake::crash_child_writer",
        "--exact",
        "--test-threads=1",
        "--nocapture",
    ])
    .env(CHILD_ENV, d.lake.parent().unwrap())
    .env_remove(xmatch::failpoint::ENV)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    if let Some(fp) = failpoint {
        cmd.env(xmatch::failpoint::ENV, fp);
    }
    let status = cmd.status().unwrap();
    match failpoint {
        Some(fp) => assert_eq!(status.signal(), Some(9), "child at {fp}: {status:?}"),
        None => assert!(status.success(), "{status:?}"),
    }
    d
}

fn secure_published(d: &Dirs, run: i64) -> bool {
    d.secure
        .join(format!("runs/{run}/temp_ids/assignments.csv"))
        .is_file()
}

#[test]
fn the_child_without_a_failpoint_publishes() {
    let d = crash_at(None);
    assert_current_complete(&d.lake, 12);
    assert!(secure_published(&d, 12));
}

#[test]
fn killed_mid_write_leaves_the_old_snapshot_and_recovery_discards_the_run() {
    let d = crash_at(Some("lake.mid_write"));
    assert_current_complete(&d.lake, 11);
    assert!(
        d.lake.join(".staging/12").exists(),
        "the kill left partial staging"
    );
    let rec = lake::recover(&d.lake, &d.secure, &[], &[]).unwrap();
    assert_eq!((rec.discarded, rec.current), (vec![12], Some(11)));
    assert!(!d.lake.join(".staging/12").exists() && !d.secure.join(".staging/12").exists());
    assert_current_complete(&d.lake, 11);
    assert!(!secure_published(&d, 12));
}

#[test]
fn killed_before_publish_rolls_forward_when_committed() {
    let d = crash_at(Some("lake.before_publish"));
    assert_current_complete(&d.lake, 11);
    let rec = lake::recover(&d.lake, &d.secure, &[12], &[]).unwrap();
    assert_eq!(rec.rolled_forward, vec![12]);
    assert_eq!(rec.published, vec![12]);
    assert_eq!(rec.current, Some(12));
    assert_current_complete(&d.lake, 12);
    assert!(secure_published(&d, 12));
    assert!(
        !d.lake.join("snapshots/10").exists(),
        "pruned to current + previous"
    );
    assert!(d.lake.join("snapshots/11").exists());
    // Idempotent.
    let again = lake::recover(&d.lake, &d.secure, &[12], &[]).unwrap();
    assert_eq!((again.rolled_forward, again.published), (vec![], vec![12]));
}

#[test]
fn killed_before_publish_is_discarded_when_the_store_never_committed() {
    // E.g. killed during the store commit: the run stays `running`, not `publishing`.
    let d = crash_at(Some("lake.before_publish"));
    let rec = lake::recover(&d.lake, &d.secure, &[], &[]).unwrap();
    assert_eq!((rec.discarded, rec.current), (vec![12], Some(11)));
    assert_current_complete(&d.lake, 11);
    assert!(!secure_published(&d, 12));
}

#[test]
fn killed_mid_rename_serves_the_new_snapshot_and_recovery_moves_the_secure_zone() {
    let d = crash_at(Some("publish.mid_rename"));
    assert_current_complete(&d.lake, 12);
    assert!(!secure_published(&d, 12));
    let rec = lake::recover(&d.lake, &d.secure, &[12], &[]).unwrap();
    assert_eq!(rec.rolled_forward, vec![12]);
    assert!(secure_published(&d, 12));
    assert_current_complete(&d.lake, 12);
}

#[test]
fn killed_after_rename_needs_only_pruning() {
    let d = crash_at(Some("publish.after_rename"));
    assert_current_complete(&d.lake, 12);
    assert!(secure_published(&d, 12));
    assert!(
        d.lake.join("snapshots/10").exists(),
        "killed before pruning"
    );
    let rec = lake::recover(&d.lake, &d.secure, &[12], &[]).unwrap();
    assert_eq!((rec.published, rec.rolled_forward), (vec![12], vec![]));
    assert!(!d.lake.join("snapshots/10").exists());
    assert_current_complete(&d.lake, 12);
}

#[test]
fn recovery_never_moves_current_backwards_and_reports_missing_runs() {
    let d = dirs();
    publish_run(&d.lake, &d.secure, 5);
    // Run 4 is still `publishing` in the store yet 5 was published after it; run 6 is
    // `publishing` but its files are gone.
    let rec = lake::recover(&d.lake, &d.secure, &[4, 5, 6], &[]).unwrap();
    assert_eq!(rec.current, Some(5));
    assert_eq!(rec.published, vec![4, 5]);
    assert_eq!(rec.missing, vec![6]);
    assert_current_complete(&d.lake, 5);
}

// ---------------------------------------------------------------- lineage

async fn lineage_round_trip(store: &Store) {
    store.migrate().await.unwrap();
    let d = dirs();
    let p1 = publish_run(&d.lake, &d.secure, 1);
    let p2 = publish_run(&d.lake, &d.secure, 2);
    for p in [&p1, &p2] {
        let mut tx = store.begin().await.unwrap();
        tx.record_lineage(p.run_id, "k1-test", &p.files)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    // Uncommitted lineage leaves nothing behind.
    let mut tx = store.begin().await.unwrap();
    tx.record_lineage(3, "k1-test", &p2.files).await.unwrap();
    drop(tx);
    assert!(store.lineage_by_run(3).await.unwrap().is_empty());

    let run1 = store.lineage_by_run(1).await.unwrap();
    assert_eq!(run1.len(), p1.files.len());
    for (row, file) in run1.iter().zip(&p1.files) {
        assert_eq!(row.run_id, 1);
        assert_eq!(row.zone, file.zone);
        assert_eq!(row.dataset, file.dataset);
        assert_eq!(row.path, file.path);
        assert_eq!(row.sha256, file.sha256);
        assert_eq!(row.rows, file.rows);
        assert_eq!(row.columns, file.columns);
        assert_eq!(row.key_id, "k1-test");
        assert_eq!(row.persons, file.persons);
        assert_eq!(row.person_count, file.persons.len() as u64);
        assert_eq!(row.written_at, file.written_at);
        assert_eq!(row.purged_at, None);
    }
    let secure = run1.iter().find(|r| r.zone == Zone::Secure).unwrap();
    assert_eq!(secure.columns[0].pii, PiiClass::Direct);
    assert!(secure.persons.contains(7) && secure.persons.contains(9));

    let target = &p2.files[0];
    let by_sha = store
        .lineage_by_sha256(&target.sha256.to_uppercase())
        .await
        .unwrap();
    assert!(
        by_sha
            .iter()
            .any(|r| r.run_id == 2 && r.path == target.path)
    );
    assert!(by_sha.iter().all(|r| r.sha256 == target.sha256));
    assert!(store.lineage_by_sha256("00").await.unwrap().is_empty());

    let by_dataset = store.lineage_by_dataset("participants").await.unwrap();
    assert_eq!(by_dataset.len(), 6);
    assert!(
        by_dataset
            .windows(2)
            .all(|w| w[0].written_at <= w[1].written_at)
    );
    let everyone = by_dataset
        .iter()
        .fold(PersonSet::new(), |acc, r| acc.union(&r.persons));
    assert_eq!(everyone.len(), 9);

    let first = p1.files.iter().map(|f| f.written_at).min().unwrap();
    let last = p2.files.iter().map(|f| f.written_at).max().unwrap();
    let all = store
        .lineage_in_window(first, last + chrono::Duration::microseconds(1))
        .await
        .unwrap();
    assert_eq!(all.len(), p1.files.len() + p2.files.len());
    let only_run2 = store
        .lineage_in_window(
            p2.files.iter().map(|f| f.written_at).min().unwrap(),
            last + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    assert!(only_run2.iter().all(|r| r.run_id == 2), "{only_run2:?}");
    assert_eq!(only_run2.len(), p2.files.len());

    let purged = store
        .mark_lineage_purged(1, Zone::Deid, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(purged, 3);
    let run1 = store.lineage_by_run(1).await.unwrap();
    assert!(
        run1.iter()
            .all(|r| r.purged_at.is_some() == (r.zone == Zone::Deid))
    );
}

#[tokio::test]
async fn lineage_round_trip_sqlite() {
    let (store, _dir) = sqlite_store().await;
    lineage_round_trip(&store).await;
}

#[tokio::test]
async fn lineage_round_trip_postgres() {
    let Some(pg) = PgStore::connect("lineage_round_trip").await else {
        return;
    };
    lineage_round_trip(&pg.store).await;
    pg.drop().await;
}

#[test]
fn partition_values_are_hive_escaped_and_read_back_decoded() {
    assert_eq!(lake::hive_escape("2024Q1"), "2024Q1");
    assert_eq!(lake::hive_escape("a/b=c d%"), "a%2Fb%3Dc d%25");
    let d = dirs();
    let schema = Arc::new(Schema::new(vec![
        Field::new("program", DataType::Utf8, true),
        Field::new("n", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                Some("WIOA/A"),
                Some(""),
                None,
                Some("WIOA/A"),
            ])),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
        ],
    )
    .unwrap();
    let meta = DatasetMeta {
        columns: vec![ColumnMeta::plain("program"), ColumnMeta::plain("n")],
        person_id_column: None,
    };
    let snap = Snapshot::begin(&d.lake, &test_zone(&d.secure), 1).unwrap();
    snap.write_deid("programs", Some("program"), [batch], &meta)
        .unwrap();
    snap.write_deid("empty", Some("program"), Vec::<RecordBatch>::new(), &meta)
        .unwrap();
    let mut paths: Vec<_> = snap
        .files()
        .iter()
        .map(|f| (f.path.clone(), f.rows))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            (
                PathBuf::from("programs/program=WIOA%2FA/part-00000.parquet"),
                2
            ),
            (
                PathBuf::from(format!(
                    "programs/program={HIVE_DEFAULT_PARTITION}/part-00000.parquet"
                )),
                2
            ),
        ]
    );
    let published = snap.publish().unwrap();
    assert!(published.snapshot_dir.join("empty").is_dir());

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use datafusion::prelude::{ParquetReadOptions, SessionContext};
        let ctx = SessionContext::new();
        let df = ctx
            .read_parquet(
                format!("{}/programs/", published.snapshot_dir.display()),
                ParquetReadOptions::default()
                    .table_partition_cols(vec![("program".into(), DataType::Utf8)]),
            )
            .await
            .unwrap();
        ctx.register_table("programs", df.into_view()).unwrap();
        let batches = ctx
            .sql("SELECT sum(n) FROM programs WHERE program = 'WIOA/A'")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let sum = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(sum.value(0), 5);
    });
}
