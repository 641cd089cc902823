//! What the nightly pipeline writes into the de-identified zone, pinned: a small generated
//! state under a fixed workspace key must give the same rows in every dataset, on its
//! first run and in the steady state, build after build. Speed work (parallel stages,
//! other hash functions, prefetching) is meant to change no output; this is where it
//! shows if it does. `XMATCH_BLESS=1` records the digests again, for a change that
//! means to move outputs (say so in its commit).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use xmatch::workspace::Workspace;

use xmatch::pipeline::{RunOptions, RunSummary};

use crate::pipeline::{generated_workspace, run_nightly_with};
use crate::support::{files_under, read_parquet, recorded, use_fixed_key};

/// The workspace key the digests were recorded under: the Bloom encodings, the blocking
/// keys and the employer tokens all depend on it.
const KEY: [u8; 32] = [0x5a; 32];

/// The nightly pipeline on a fixed day: what is valid or stale depends on the date.
async fn run_nightly(ws: &Workspace) -> RunSummary {
    let opts = RunOptions {
        today: chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
        ..RunOptions::default()
    };
    run_nightly_with(ws, &opts).await
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/run_outputs.json")
}

fn h64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    u64::from_le_bytes(h.finalize()[..8].try_into().unwrap())
}

/// Every row of a dataset as (partition directory, column → displayed value), in no
/// particular order.
fn rows_of(dir: &Path) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for (rel, path) in files_under(dir) {
        if !rel.ends_with(".parquet") {
            continue;
        }
        // The partition, not the file's name: how rows are split into files may change.
        let partition = Path::new(&rel)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        for batch in read_parquet(&path) {
            out.extend(
                batch_rows(&batch)
                    .into_iter()
                    .map(|r| (partition.clone(), r)),
            );
        }
    }
    out
}

fn batch_rows(batch: &RecordBatch) -> Vec<BTreeMap<String, String>> {
    let options = FormatOptions::default().with_null("∅");
    let columns: Vec<(String, ArrayFormatter<'_>)> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| {
            (
                f.name().clone(),
                ArrayFormatter::try_new(a.as_ref(), &options).unwrap(),
            )
        })
        .collect();
    (0..batch.num_rows())
        .map(|i| {
            columns
                .iter()
                .map(|(name, f)| (name.clone(), f.value(i).to_string()))
                .collect()
        })
        .collect()
}

/// Row count and an order-independent digest of each de-identified dataset. Person keys
/// are drawn at random when a person is first registered, so each is replaced by what
/// the participants dataset says of that person (a digest of their rows there).
fn digests(ws: &Workspace) -> Value {
    let current = ws.lake_dir().join("current");
    let mut datasets: Vec<String> = std::fs::read_dir(&current)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    datasets.sort();
    let row_digest = |partition: &str, row: &BTreeMap<String, String>, person: u64| {
        let mut parts: Vec<Vec<u8>> = vec![partition.as_bytes().to_vec()];
        for (k, v) in row {
            if k == "person_key" {
                parts.push(person.to_le_bytes().to_vec());
            } else {
                parts.push(k.as_bytes().to_vec());
                parts.push(v.as_bytes().to_vec());
            }
        }
        h64(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
    };
    let mut person: HashMap<String, u64> = HashMap::new();
    for (partition, row) in rows_of(&current.join("participants")) {
        let d = row_digest(&partition, &row, 0);
        let e = person.entry(row["person_key"].clone()).or_default();
        *e = e.wrapping_add(d);
    }
    let mut out = serde_json::Map::new();
    for name in datasets {
        let rows = rows_of(&current.join(&name));
        let mut sum = 0u64;
        for (partition, row) in &rows {
            let p = row.get("person_key").map_or(0, |k| {
                *person
                    .get(k)
                    .unwrap_or_else(|| panic!("{name}: a person key no participant row has"))
            });
            sum = sum.wrapping_add(row_digest(partition, row, p));
        }
        out.insert(
            name,
            json!({ "rows": rows.len(), "digest": format!("{sum:016x}") }),
        );
    }
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn deidentified_outputs_match_their_recorded_digests() {
    let (_dir, ws) = generated_workspace(2_000, 5).await;
    use_fixed_key(&ws, &KEY);
    let first = run_nightly(&ws).await;
    assert_eq!(first.run_id, 1);
    let first = digests(&ws);
    run_nightly(&ws).await;
    let got = json!({
        "participants": 2_000,
        "seed": 5,
        "key_hex": hex::encode(KEY),
        "today": "2026-12-07",
        "first_run": first,
        "steady_state": digests(&ws),
    });
    let Some(want) = recorded(&golden_path(), &got) else {
        return;
    };
    for run in ["first_run", "steady_state"] {
        for (name, w) in want[run].as_object().unwrap() {
            assert_eq!(
                &got[run][name], w,
                "{run}: dataset {name} changed (XMATCH_BLESS=1 records it again)"
            );
        }
    }
    assert_eq!(got, want);
}
