//! Shared test support: stores for both backends and generated-people helpers.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use xmatch::store::Store;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A PostgreSQL store in a private, throw-away schema. `None` (with the reason printed)
/// when no server is reachable, unless `XMATCH_REQUIRE_PG=1`, where that is a failure.
pub struct PgStore {
    pub store: Store,
    schema: String,
    admin: sqlx::PgPool,
}

impl PgStore {
    pub async fn connect(test: &str) -> Option<PgStore> {
        let url = std::env::var("XMATCH_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
        let required = std::env::var("XMATCH_REQUIRE_PG").is_ok_and(|v| v == "1");
        let admin = match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url),
        )
        .await
        {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return skip(test, required, &format!("cannot connect to {url}: {e}")),
            Err(_) => return skip(test, required, &format!("no answer from {url} within 5 s")),
        };
        let schema = format!("xm_test_{}", hex::encode(rand::random::<[u8; 6]>()));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .expect("create a test schema");
        let opts = PgConnectOptions::from_str(&url)
            .expect("a valid URL")
            .options([("search_path", schema.as_str())]);
        let store = Store::connect_postgres(opts)
            .await
            .expect("connect to the test schema");
        Some(PgStore {
            store,
            schema,
            admin,
        })
    }

    /// A store URL that lands in the private schema, for a workspace or a child process.
    pub fn url(&self) -> String {
        format!(
            "{}?options=-c%20search_path%3D{}",
            std::env::var("XMATCH_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into()),
            self.schema
        )
    }

    pub async fn drop(self) {
        self.store.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&self.admin)
        .await
        .expect("drop the test schema");
    }
}

fn skip<T>(test: &str, required: bool, reason: &str) -> Option<T> {
    if required {
        panic!("{test}: PostgreSQL is required (XMATCH_REQUIRE_PG=1) but {reason}");
    }
    // Written past libtest's output capture, so the skip shows in a plain `cargo test`.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test} on PostgreSQL: {reason} (set XMATCH_TEST_PG_URL, or XMATCH_REQUIRE_PG=1 to fail instead)"
    );
    None
}

/// A fresh SQLite store in a temporary directory (kept alive by the returned guard).
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect("sqlite://store.db", dir.path())
        .await
        .expect("open sqlite");
    (store, dir)
}

/// Replaces the key `init` drew with fixed bytes, before anything is keyed with it.
/// The probabilistic pass's Bloom encodings depend on the key, and a record near a band
/// threshold can land on the other side under another key: a test that compares two
/// workspaces, or a run with recorded results, fixes the key so that every run of the
/// test checks the same thing. The file keeps the owner-only mode `init` gave it.
pub fn use_fixed_key(ws: &xmatch::workspace::Workspace, bytes: &[u8; 32]) {
    std::fs::write(ws.key_path(), bytes).unwrap();
}

/// Path of the built `xmatch` binary.
pub fn xmatch_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_xmatch"))
}

pub use xmatch::lake::parquet_files;

/// The recorded JSON a golden test compares with, or `None` after recording `got` in
/// its place when `XMATCH_BLESS=1`.
pub fn recorded(path: &std::path::Path, got: &serde_json::Value) -> Option<serde_json::Value> {
    if std::env::var("XMATCH_BLESS").as_deref() == Ok("1") {
        let mut text = serde_json::to_string_pretty(got).unwrap();
        text.push('\n');
        std::fs::write(path, text).unwrap();
        return None;
    }
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with XMATCH_BLESS=1 to create", path.display()));
    Some(serde_json::from_str(&text).unwrap())
}

/// All record batches of one Parquet file.
pub fn read_parquet(path: &std::path::Path) -> Vec<arrow::array::RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// The string values of a column across batches (nulls as None).
pub fn strings(batches: &[arrow::array::RecordBatch], column: &str) -> Vec<Option<String>> {
    use arrow::array::Array;
    let mut out = Vec::new();
    for b in batches {
        let a = b
            .column_by_name(column)
            .unwrap_or_else(|| panic!("no column {column}"));
        let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).unwrap();
        let s = a
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        out.extend((0..s.len()).map(|i| (!s.is_null(i)).then(|| s.value(i).to_string())));
    }
    out
}

/// Every file under `dir`, recursively, as (path relative to `dir`, absolute path).
pub fn files_under(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, p));
            }
        }
    }
    out.sort();
    out
}

/// Rows in each of `tables` of a workspace's SQLite store, in the order given.
pub async fn row_counts(ws: &xmatch::workspace::Workspace, tables: &[&str]) -> Vec<i64> {
    let store = ws.open_store().await.unwrap();
    let Store::Sqlite(pool) = &store else {
        unreachable!("test workspaces use SQLite")
    };
    let mut counts = Vec::new();
    for table in tables {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        counts.push(sqlx::query_scalar(sql).fetch_one(pool).await.unwrap());
    }
    counts
}

/// `xmatch -w WS run nightly-crossmatch` in a child process with `XMATCH_FAILPOINT` set
/// (and `env`), so neither can reach any other test.
pub fn run_nightly_at_failpoint(
    ws: &xmatch::workspace::Workspace,
    failpoint: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    std::process::Command::new(xmatch_bin())
        .args([
            "-w",
            ws.root().to_str().unwrap(),
            "run",
            "nightly-crossmatch",
        ])
        .env("XMATCH_FAILPOINT", failpoint)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// A secure zone at `dir` under a fixed test key (id `k1-test`), for tests that write a
/// snapshot without a workspace.
pub fn test_zone(dir: &std::path::Path) -> xmatch::secure::SecureZone {
    xmatch::secure::SecureZone::new(
        dir,
        xmatch::secure::Keyring::new(("k1-test", &[0x5a; 32]), []),
    )
}

/// The plaintext of a sealed secure-zone file of a workspace (tests read secure files
/// only through this, as every reader in xmatch does).
pub fn read_secure(ws: &xmatch::workspace::Workspace, path: &std::path::Path) -> Vec<u8> {
    ws.secure_zone()
        .unwrap()
        .read(path)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A sealed secure-zone CSV file as text.
pub fn read_secure_text(ws: &xmatch::workspace::Workspace, path: &std::path::Path) -> String {
    String::from_utf8(read_secure(ws, path)).unwrap()
}

/// All record batches of a sealed secure-zone Parquet file.
pub fn read_secure_parquet(
    ws: &xmatch::workspace::Workspace,
    path: &std::path::Path,
) -> Vec<arrow::array::RecordBatch> {
    ws.secure_zone()
        .unwrap()
        .parquet(path, None)
        .unwrap_or_else(|e| panic!("{e}"))
}
