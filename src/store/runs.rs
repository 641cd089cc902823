//! SQL for the run history, the per-pipeline leases that keep runs of one pipeline apart
//! (also across machines sharing a PostgreSQL store), and schedule marks for catch-up.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, StoreTx};

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub pipeline: &'a str,
    /// `schedule`, `manual`, `catch-up`, `retry`, `demo`, …
    pub trigger: &'a str,
    /// 1 for a first try; retries count up.
    pub attempt: u32,
    /// The schedule time this run answers, when the schedule started it.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The process that runs it (see `pipeline::lease`), and until when it counts as
    /// alive before it has taken the lease.
    pub holder: &'a str,
    pub provisional_expiry_ms: i64,
}

/// One row of the run history.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub pipeline: String,
    pub trigger: String,
    pub attempt: i64,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    /// The run summary as JSON text (counts, stage timings).
    pub summary: Option<String>,
    pub error: Option<String>,
    pub holder: Option<String>,
}

/// A held lease: the pipeline and the fencing token the holder must present to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub pipeline: String,
    pub holder: String,
    pub fence: i64,
}

/// What an attempt to take a pipeline's lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired {
        lease: Lease,
        /// A run that held the lease before and was still marked running: its lease had
        /// expired (or its process is gone), so it is now `abandoned`.
        abandoned: Option<i64>,
    },
    Held {
        run_id: Option<i64>,
        holder: String,
        expires_ms: i64,
    },
}

/// Per-pipeline figures for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct RunMetrics {
    /// (pipeline, status, count)
    pub by_status: Vec<(String, String, i64)>,
    /// (pipeline, finished_at of the last succeeded run)
    pub last_success: Vec<(String, DateTime<Utc>)>,
    /// (pipeline, rows read from source files by succeeded runs)
    pub rows_read: Vec<(String, i64)>,
}

const RUN_COLUMNS: &str = "id, pipeline, trigger, attempt, scheduled_for, started_at, \
                           finished_at, status, summary, error, holder";

fn run_row<R: Row>(r: &R) -> Result<RunRow, sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'q> i64: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> String: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> DateTime<Utc>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RunRow {
        id: r.try_get("id")?,
        pipeline: r.try_get("pipeline")?,
        trigger: r.try_get("trigger")?,
        attempt: r.try_get("attempt")?,
        scheduled_for: r.try_get("scheduled_for")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        status: r.try_get("status")?,
        summary: r.try_get("summary")?,
        error: r.try_get("error")?,
        holder: r.try_get("holder")?,
    })
}

impl Store {
    /// Starts a run by hand (attempt 1, no schedule time) and returns its id.
    pub async fn start_run(&self, pipeline: &str, trigger: &str) -> Result<i64, StoreError> {
        self.start_run_with(&NewRun {
            pipeline,
            trigger,
            attempt: 1,
            scheduled_for: None,
            holder: "",
            provisional_expiry_ms: 0,
        })
        .await
    }

    /// Starts a run (status `running`) and returns its id.
    pub async fn start_run_with(&self, run: &NewRun<'_>) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO runs (pipeline, trigger, attempt, scheduled_for, \
                           started_at, status, holder, lease_expires_ms) \
                           VALUES ($1, $2, $3, $4, $5, 'running', $6, $7) RETURNING id";
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar(SQL)
                .bind(run.pipeline)
                .bind(run.trigger)
                .bind(i64::from(run.attempt))
                .bind(run.scheduled_for)
                .bind(Utc::now())
                .bind((!run.holder.is_empty()).then_some(run.holder))
                .bind(run.provisional_expiry_ms)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Ends a run outside a transaction. Only a run still `running` or `publishing` is
    /// changed: one already declared abandoned by another process keeps that status.
    pub async fn finish_run(
        &self,
        run_id: i64,
        status: &str,
        summary: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE runs SET finished_at = $1, status = $2, \
                           summary = COALESCE($3, summary), error = $4 \
                           WHERE id = $5 AND status IN ('running', 'publishing')";
        let summary = summary.map(|s| s.to_string());
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(Utc::now())
                .bind(status)
                .bind(summary)
                .bind(error)
                .bind(run_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Runs in a status, oldest first (recovery asks for `publishing`).
    pub async fn runs_with_status(&self, status: &str) -> Result<Vec<i64>, StoreError> {
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT id FROM runs WHERE status = $1 ORDER BY id")
                .bind(status)
                .fetch_all(pool)
                .await?)
        })
    }

    /// The last `last` runs, newest first, optionally of one pipeline.
    pub async fn runs(&self, pipeline: Option<&str>, last: u32) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE ($1 IS NULL OR pipeline = $1) \
             ORDER BY id DESC LIMIT $2"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(pipeline)
                .bind(i64::from(last))
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(run_row).collect::<Result<Vec<_>, _>>()?)
        })
    }

    pub async fn run(&self, id: i64) -> Result<Option<RunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(run_row).transpose()?)
        })
    }

    /// Takes `pipeline`'s lease for `run_id` until `now_ms + ttl_ms`, unless another
    /// holder's lease is still valid. `steal_from` names a holder known to be dead (its
    /// process is gone on this host): its lease is taken even before it expires.
    ///
    /// One transaction: the conditional UPDATE is atomic on both backends (PostgreSQL
    /// row lock, SQLite's single writer), so two daemons cannot both win.
    pub async fn acquire_lease(
        &self,
        pipeline: &str,
        run_id: i64,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
        steal_from: Option<&str>,
    ) -> Result<LeaseOutcome, StoreError> {
        const ENSURE: &str = "INSERT INTO pipeline_leases (pipeline, holder, run_id, fence, expires_ms) \
                              VALUES ($1, NULL, NULL, 0, 0) ON CONFLICT (pipeline) DO NOTHING";
        const PREVIOUS: &str = "SELECT run_id FROM pipeline_leases WHERE pipeline = $1";
        const TAKE: &str = "UPDATE pipeline_leases SET holder = $2, run_id = $3, fence = fence + 1, \
                            expires_ms = $4 WHERE pipeline = $1 \
                            AND (holder IS NULL OR expires_ms < $5 OR holder = $6) RETURNING fence";
        const HELD: &str =
            "SELECT run_id, holder, expires_ms FROM pipeline_leases WHERE pipeline = $1";
        const ABANDON: &str = "UPDATE runs SET status = 'abandoned', finished_at = $2, \
                               error = 'its lease expired: the process running it stopped renewing it' \
                               WHERE id = $1 AND status = 'running'";
        const MINE: &str = "UPDATE runs SET holder = $2, lease_expires_ms = $3 WHERE id = $1";
        let mut tx = self.begin().await?;
        let outcome = on_tx!(&mut tx, conn => {
            sqlx::query(ENSURE).bind(pipeline).execute(&mut *conn).await?;
            let previous: Option<i64> = sqlx::query_scalar(PREVIOUS)
                .bind(pipeline)
                .fetch_one(&mut *conn)
                .await?;
            let fence: Option<i64> = sqlx::query_scalar(TAKE)
                .bind(pipeline)
                .bind(holder)
                .bind(run_id)
                .bind(now_ms + ttl_ms)
                .bind(now_ms)
                .bind(steal_from.unwrap_or(""))
                .fetch_optional(&mut *conn)
                .await?;
            match fence {
                Some(fence) => {
                    let mut abandoned = None;
                    if let Some(prev) = previous.filter(|&p| p != run_id) {
                        let n = sqlx::query(ABANDON)
                            .bind(prev)
                            .bind(Utc::now())
                            .execute(&mut *conn)
                            .await?
                            .rows_affected();
                        abandoned = (n > 0).then_some(prev);
                    }
                    sqlx::query(MINE)
                        .bind(run_id)
                        .bind(holder)
                        .bind(now_ms + ttl_ms)
                        .execute(&mut *conn)
                        .await?;
                    LeaseOutcome::Acquired {
                        lease: Lease {
                            pipeline: pipeline.to_string(),
                            holder: holder.to_string(),
                            fence,
                        },
                        abandoned,
                    }
                }
                None => {
                    let row = sqlx::query(HELD).bind(pipeline).fetch_one(&mut *conn).await?;
                    LeaseOutcome::Held {
                        run_id: row.try_get("run_id")?,
                        holder: row.try_get::<Option<String>, _>("holder")?.unwrap_or_default(),
                        expires_ms: row.try_get("expires_ms")?,
                    }
                }
            }
        });
        tx.commit().await?;
        Ok(outcome)
    }

    /// Extends a held lease (the heartbeat). `false` when the lease is no longer this
    /// holder's: another process took it, or the run was declared abandoned.
    pub async fn renew_lease(
        &self,
        lease: &Lease,
        run_id: i64,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let held = tx.renew_lease(lease, run_id, now_ms, ttl_ms).await?;
        tx.commit().await?;
        Ok(held)
    }

    /// Gives a lease back (a no-op if it was already taken over).
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE pipeline_leases SET holder = NULL, run_id = NULL, expires_ms = 0 \
                           WHERE pipeline = $1 AND fence = $2";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(&lease.pipeline).bind(lease.fence).execute(pool).await?;
        });
        Ok(())
    }

    /// Runs marked `running` or `publishing` with their holder and lease expiry, for the
    /// abandoned-run sweep and for recovery (which must not touch a live run's staging).
    pub async fn unfinished_runs(
        &self,
    ) -> Result<Vec<(i64, String, Option<String>, Option<i64>)>, StoreError> {
        const SQL: &str = "SELECT id, status, holder, lease_expires_ms FROM runs \
                           WHERE status IN ('running', 'publishing') ORDER BY id";
        on_pool!(self, pool => {
            let rows = sqlx::query(SQL).fetch_all(pool).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("status")?,
                        r.try_get("holder")?,
                        r.try_get("lease_expires_ms")?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    /// Marks a run whose process is gone `abandoned` and revokes its lease (the fence
    /// moves on, so the run cannot publish if it wakes up). `false` if the run was no
    /// longer running (it finished, or another process got there first).
    pub async fn abandon_run(&self, run_id: i64, reason: &str) -> Result<bool, StoreError> {
        const RUN: &str = "UPDATE runs SET status = 'abandoned', finished_at = $2, error = $3 \
                           WHERE id = $1 AND status = 'running'";
        const LEASE: &str = "UPDATE pipeline_leases SET holder = NULL, run_id = NULL, \
                             fence = fence + 1, expires_ms = 0 WHERE run_id = $1";
        let mut tx = self.begin().await?;
        let n = on_tx!(&mut tx, conn => {
            let n = sqlx::query(RUN)
                .bind(run_id)
                .bind(Utc::now())
                .bind(reason)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n > 0 {
                sqlx::query(LEASE).bind(run_id).execute(&mut *conn).await?;
            }
            n
        });
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Where a pipeline's schedule stands: the last schedule time it answered.
    pub async fn schedule_mark(&self, pipeline: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT last_fire FROM schedule_marks WHERE pipeline = $1")
                .bind(pipeline)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Moves a pipeline's schedule mark forward (never back: two daemons may both answer).
    pub async fn set_schedule_mark(
        &self,
        pipeline: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO schedule_marks (pipeline, last_fire) VALUES ($1, $2) \
                           ON CONFLICT (pipeline) DO UPDATE SET last_fire = excluded.last_fire \
                           WHERE schedule_marks.last_fire < excluded.last_fire";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(pipeline).bind(at).execute(pool).await?;
        });
        Ok(())
    }

    /// Figures for `/metrics`.
    pub async fn run_metrics(&self) -> Result<RunMetrics, StoreError> {
        const BY_STATUS: &str = "SELECT pipeline, status, COUNT(*) AS n FROM runs \
                                 GROUP BY pipeline, status ORDER BY pipeline, status";
        const LAST: &str = "SELECT pipeline, MAX(finished_at) AS t FROM runs \
                            WHERE status = 'succeeded' AND finished_at IS NOT NULL \
                            GROUP BY pipeline ORDER BY pipeline";
        const ROWS: &str = "SELECT r.pipeline AS pipeline, CAST(SUM(f.rows_read) AS BIGINT) AS n \
                            FROM source_files f JOIN runs r ON r.id = f.run_id \
                            WHERE r.status = 'succeeded' GROUP BY r.pipeline ORDER BY r.pipeline";
        on_pool!(self, pool => {
            let mut m = RunMetrics::default();
            for r in sqlx::query(BY_STATUS).fetch_all(pool).await? {
                m.by_status.push((r.try_get("pipeline")?, r.try_get("status")?, r.try_get("n")?));
            }
            for r in sqlx::query(LAST).fetch_all(pool).await? {
                let t: Option<DateTime<Utc>> = r.try_get("t")?;
                if let Some(t) = t {
                    m.last_success.push((r.try_get("pipeline")?, t));
                }
            }
            for r in sqlx::query(ROWS).fetch_all(pool).await? {
                m.rows_read.push((r.try_get("pipeline")?, r.try_get::<Option<i64>, _>("n")?.unwrap_or(0)));
            }
            Ok(m)
        })
    }
}

impl StoreTx {
    /// Sets a run's status inside the transaction (e.g. `publishing` together with the
    /// registry and lineage it commits).
    pub async fn set_run_status(
        &mut self,
        run_id: i64,
        status: &str,
        summary: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let summary = summary.map(|s| s.to_string());
        on_tx!(self, conn => {
            sqlx::query("UPDATE runs SET status = $1, summary = COALESCE($2, summary) WHERE id = $3")
                .bind(status)
                .bind(summary)
                .bind(run_id)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Extends a held lease, and the run's copy of its expiry, in this transaction;
    /// `false` when the lease is no longer this holder's. The heartbeat runs it alone.
    /// The publish transaction runs it too: while that transaction is open the heartbeat
    /// cannot renew (SQLite's one connection is taken; on PostgreSQL the fence holds the
    /// lease row), and a first run keeps it open through its write stage, so renewed
    /// there the lease is current again the moment the commit makes it visible.
    pub async fn renew_lease(
        &mut self,
        lease: &Lease,
        run_id: i64,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        const LEASE: &str = "UPDATE pipeline_leases SET expires_ms = $3 \
                             WHERE pipeline = $1 AND fence = $2";
        const RUN: &str = "UPDATE runs SET lease_expires_ms = $2 WHERE id = $1";
        on_tx!(self, conn => {
            let n = sqlx::query(LEASE)
                .bind(&lease.pipeline)
                .bind(lease.fence)
                .bind(now_ms + ttl_ms)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n == 1 {
                sqlx::query(RUN).bind(run_id).bind(now_ms + ttl_ms).execute(&mut *conn).await?;
            }
            Ok(n == 1)
        })
    }

    /// The fencing check of the publish step: `true` only if `lease` is still the current
    /// holder of its pipeline. On PostgreSQL the UPDATE keeps the lease row locked until
    /// this transaction ends, so no other process can take the lease between the check
    /// and the commit; SQLite's single writer gives the same.
    pub async fn hold_fence(&mut self, lease: &Lease) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE pipeline_leases SET fence = fence \
                           WHERE pipeline = $1 AND fence = $2 AND holder = $3";
        on_tx!(self, conn => {
            let n = sqlx::query(SQL)
                .bind(&lease.pipeline)
                .bind(lease.fence)
                .bind(&lease.holder)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }
}
