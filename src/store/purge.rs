//! SQL for retention purges (`crate::purge`): which lineage files are still on record as
//! present, and the tombstones and audit entry a purge leaves.
//!
//! Only `lineage_files.purged_at` is ever updated and only `audit_log` is inserted into:
//! persons, tokens, temporary IDs, merges and the audit log itself are never purged.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{AuditEntry, Store, StoreError, StoreTx};
use crate::lake::Zone;

/// Ids per `IN (…)` list: far below both backends' bind-parameter limits.
const CHUNK: usize = 500;

/// A lineage row not yet marked purged, without columns or person set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpurgedFile {
    pub id: i64,
    pub run_id: i64,
    pub zone: Zone,
    pub dataset: String,
    pub path: String,
    pub written_at: DateTime<Utc>,
}

/// What [`Store::record_purge`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeRecorded {
    /// Lineage rows newly marked (a concurrent purge may have marked some first).
    pub tombstoned: u64,
    pub audit_id: i64,
}

impl Store {
    /// Every lineage file with no `purged_at`, in id order.
    pub async fn unpurged_lineage(&self) -> Result<Vec<UnpurgedFile>, StoreError> {
        const SQL: &str = "SELECT id, run_id, zone, dataset, path, written_at FROM lineage_files \
                           WHERE purged_at IS NULL ORDER BY id";
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).fetch_all(pool).await?.iter()
                .map(|r| {
                    let id: i64 = r.try_get("id")?;
                    let zone: String = r.try_get("zone")?;
                    Ok(UnpurgedFile {
                        id,
                        run_id: r.try_get("run_id")?,
                        zone: Zone::parse(&zone)
                            .ok_or_else(|| super::lineage::corrupt(id, "zone", &zone))?,
                        dataset: r.try_get("dataset")?,
                        path: r.try_get("path")?,
                        written_at: r.try_get("written_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// In one transaction: marks the lineage rows `ids` purged at `at` (their person sets
    /// stay: the tombstone answers breach questions about copies) and writes the purge's
    /// audit entry. Rows already marked keep their first date.
    pub async fn record_purge(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<PurgeRecorded, StoreError> {
        let mut tx = self.begin().await?;
        let mut tombstoned = 0u64;
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "UPDATE lineage_files SET purged_at = $1 WHERE purged_at IS NULL AND id IN ({})",
                (2..chunk.len() + 2)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            tombstoned += on_tx!(&mut tx, conn => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(conn).await?.rows_affected()
            });
        }
        const AUDIT: &str = "INSERT INTO audit_log (at, actor, action, reason, detail) \
                             VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let detail = audit.detail.to_string();
        let audit_id: i64 = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(AUDIT)
                .bind(at)
                .bind(&audit.actor)
                .bind(&audit.action)
                .bind(audit.reason.as_deref())
                .bind(&detail)
                .fetch_one(conn)
                .await?
        });
        tx.commit().await?;
        Ok(PurgeRecorded {
            tombstoned,
            audit_id,
        })
    }
}
