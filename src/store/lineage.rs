//! Lineage: every file a run wrote, with the persons it held.
//!
//! Written in the same transaction as the registry changes and the run's `publishing`
//! status, so the store never claims a file that staging does not hold (see `lake`).
//! Person sets are stored encoded (`PersonSet::encode`) and decoded on the way out.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Store, StoreError, StoreTx};
use crate::lake::{ColumnMeta, PersonSet, WrittenFile, Zone};
use crate::schema::PiiClass;

/// One lineage row, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageFile {
    pub id: i64,
    pub run_id: i64,
    pub zone: Zone,
    pub dataset: String,
    /// Relative to the zone's published root (see `lake::WrittenFile::path`).
    pub path: PathBuf,
    pub sha256: String,
    pub rows: u64,
    pub columns: Vec<ColumnMeta>,
    pub key_id: String,
    pub persons: PersonSet,
    pub person_count: u64,
    pub written_at: DateTime<Utc>,
    pub purged_at: Option<DateTime<Utc>>,
}

/// The JSON form of a column in `lineage_files.columns`.
#[derive(Serialize, Deserialize)]
struct ColumnJson {
    name: String,
    pii: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sensitive: Option<String>,
}

fn columns_json(columns: &[ColumnMeta]) -> String {
    let v: Vec<ColumnJson> = columns
        .iter()
        .map(|c| ColumnJson {
            name: c.name.clone(),
            pii: c.pii.as_str().to_string(),
            sensitive: c.sensitive.clone(),
        })
        .collect();
    serde_json::to_string(&v).expect("plain strings serialize")
}

pub(super) fn corrupt(id: i64, what: &str, problem: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("lineage_files row {id}: {what}: {problem}").into())
}

/// Parses the column metadata JSON of a `lineage_files` row.
pub(super) fn parse_columns(id: i64, text: &str) -> Result<Vec<ColumnMeta>, sqlx::Error> {
    let v: Vec<ColumnJson> = serde_json::from_str(text).map_err(|e| corrupt(id, "columns", e))?;
    v.into_iter()
        .map(|c| {
            let pii = match c.pii.as_str() {
                "direct" => PiiClass::Direct,
                "quasi" => PiiClass::Quasi,
                "none" => PiiClass::None,
                other => {
                    return Err(corrupt(
                        id,
                        "columns",
                        format!("unknown PII class `{other}`"),
                    ));
                }
            };
            Ok(ColumnMeta {
                name: c.name,
                pii,
                sensitive: c.sensitive,
            })
        })
        .collect()
}

const COLUMNS: &str = "id, run_id, zone, dataset, path, sha256, rows, columns, key_id, \
                       persons, person_count, written_at, purged_at";

/// Decodes a row with either backend's row type.
macro_rules! lineage_row {
    ($r:expr) => {{
        let r = $r;
        let id: i64 = r.try_get("id")?;
        let zone: String = r.try_get("zone")?;
        let columns: String = r.try_get("columns")?;
        let persons: Vec<u8> = r.try_get("persons")?;
        Ok::<_, sqlx::Error>(LineageFile {
            id,
            run_id: r.try_get("run_id")?,
            zone: Zone::parse(&zone).ok_or_else(|| corrupt(id, "zone", &zone))?,
            dataset: r.try_get("dataset")?,
            path: PathBuf::from(r.try_get::<String, _>("path")?),
            sha256: r.try_get("sha256")?,
            rows: r.try_get::<i64, _>("rows")? as u64,
            columns: parse_columns(id, &columns)?,
            key_id: r.try_get("key_id")?,
            persons: PersonSet::decode(&persons).map_err(|e| corrupt(id, "persons", e))?,
            person_count: r.try_get::<i64, _>("person_count")? as u64,
            written_at: r.try_get("written_at")?,
            purged_at: r.try_get("purged_at")?,
        })
    }};
}

impl StoreTx {
    /// Records the files a run wrote (both zones), in the caller's transaction.
    pub async fn record_lineage(
        &mut self,
        run_id: i64,
        key_id: &str,
        files: &[WrittenFile],
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO lineage_files \
            (run_id, zone, dataset, path, sha256, rows, columns, key_id, persons, person_count, written_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        // A run writes tens to hundreds of files, each with a person set of up to a few
        // MB: one prepared statement per row keeps every bind small and is fast enough.
        for f in files {
            let path = f.path.to_string_lossy().into_owned();
            let columns = columns_json(&f.columns);
            let persons = f.persons.encode();
            on_tx!(self, conn => {
                sqlx::query(SQL)
                    .bind(run_id)
                    .bind(f.zone.as_str())
                    .bind(&f.dataset)
                    .bind(&path)
                    .bind(&f.sha256)
                    .bind(f.rows as i64)
                    .bind(&columns)
                    .bind(key_id)
                    .bind(&persons)
                    .bind(f.persons.len() as i64)
                    .bind(f.written_at)
                    .execute(conn)
                    .await?;
            });
        }
        Ok(())
    }
}

impl Store {
    /// Every recorded file with these bytes (the same content may recur across runs).
    pub async fn lineage_by_sha256(&self, sha256: &str) -> Result<Vec<LineageFile>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM lineage_files WHERE sha256 = $1 ORDER BY id");
        let sha256 = sha256.to_ascii_lowercase();
        self.lineage_query(&sql, &[Param::Str(&sha256)]).await
    }

    pub async fn lineage_by_run(&self, run_id: i64) -> Result<Vec<LineageFile>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM lineage_files WHERE run_id = $1 ORDER BY id");
        self.lineage_query(&sql, &[Param::I64(run_id)]).await
    }

    /// Every file of a dataset across runs, oldest first.
    pub async fn lineage_by_dataset(&self, dataset: &str) -> Result<Vec<LineageFile>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM lineage_files WHERE dataset = $1 ORDER BY written_at, id"
        );
        self.lineage_query(&sql, &[Param::Str(dataset)]).await
    }

    /// Files written in `[from, to)`, oldest first.
    pub async fn lineage_in_window(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<LineageFile>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM lineage_files WHERE written_at >= $1 AND written_at < $2 \
             ORDER BY written_at, id"
        );
        self.lineage_query(&sql, &[Param::Time(from), Param::Time(to)])
            .await
    }

    /// Marks a run's files of one zone as gone (e.g. a pruned snapshot); lineage keeps
    /// them. Returns how many rows changed.
    pub async fn mark_lineage_purged(
        &self,
        run_id: i64,
        zone: Zone,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE lineage_files SET purged_at = $1 \
                           WHERE run_id = $2 AND zone = $3 AND purged_at IS NULL";
        let n = on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(at)
                .bind(run_id)
                .bind(zone.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    async fn lineage_query(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<LineageFile>, StoreError> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        let files = on_pool!(self, pool => {
            let mut q = sqlx::query(sql);
            for p in params {
                q = match *p {
                    Param::I64(v) => q.bind(v),
                    Param::Str(v) => q.bind(v.to_string()),
                    Param::Time(v) => q.bind(v),
                };
            }
            let rows = q.fetch_all(pool).await?;
            rows.iter()
                .map(|r| lineage_row!(r))
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(files)
    }
}

/// A bind value of the lineage queries (one query body serves both backends' types).
enum Param<'a> {
    I64(i64),
    Str(&'a str),
    Time(DateTime<Utc>),
}
