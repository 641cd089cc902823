//! SQL for the identity registry and the source files each run read.

use chrono::Utc;
use futures_util::TryStreamExt;
use sqlx::{QueryBuilder, Row};

use super::{Store, StoreError, StoreTx};
use crate::identity::registry::{Changes, PersonId};
use crate::identity::token::Token;

/// Rows per multi-row INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 bind
/// parameters for the widest table written here.
const CHUNK: usize = 4_000;

/// The registry's rows, as `Registry::from_rows` takes them.
pub struct RegistryRows {
    pub persons: Vec<(PersonId, String, Option<PersonId>)>,
    pub tokens: Vec<(i32, Token, PersonId)>,
    pub temp_ids: Vec<(String, PersonId)>,
    pub reviews: Vec<(String, PersonId, PersonId)>,
}

/// A source file a run read, for the input guard rails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFileRow {
    pub source: String,
    pub path: String,
    pub sha256: String,
    pub rows_read: i64,
    pub rows_accepted: i64,
    pub rows_rejected: i64,
}

fn token_from(bytes: Vec<u8>) -> Result<Token, sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("a stored token is not 32 bytes".into()))
}

/// An error of the direct (rusqlite) connection, as the store reports it.
fn direct(e: rusqlite::Error) -> StoreError {
    StoreError::Direct(e.to_string())
}

/// Reads the whole registry from a SQLite file on a connection of its own.
///
/// sqlx's SQLite driver hands every row from its worker thread to the caller through a
/// channel; at a million persons (six million token rows) that alone took 37 s on the
/// 2-core benchmark machine. Stepping the statements directly takes a few seconds. All
/// four tables are read in one read transaction, so they are one consistent snapshot
/// (WAL mode lets it run beside the pool's connection).
fn load_registry_sqlite(path: &std::path::Path) -> Result<RegistryRows, StoreError> {
    use rusqlite::{Connection, OpenFlags};
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(direct)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(direct)?;
    let tx = conn.transaction().map_err(direct)?;
    fn all<T>(
        tx: &rusqlite::Transaction<'_>,
        sql: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        tx.prepare(sql)?.query_map([], row)?.collect()
    }
    let persons = all(
        &tx,
        "SELECT id, person_key, merged_into FROM persons",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(direct)?;
    // Counted first so the vector is allocated once: grown by doubling, six million rows
    // would briefly hold the old and the new buffer (about 0.8 GB together).
    let count: i64 = tx
        .query_row("SELECT COUNT(*) FROM person_tokens", [], |r| r.get(0))
        .map_err(direct)?;
    let mut tokens = Vec::with_capacity(usize::try_from(count).unwrap_or_default());
    {
        let mut st = tx
            .prepare("SELECT rule, token, person_id FROM person_tokens")
            .map_err(direct)?;
        let mut rows = st.query([]).map_err(direct)?;
        while let Some(r) = rows.next().map_err(direct)? {
            let token: Token = r
                .get_ref(1)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(direct)?
                .try_into()
                .map_err(|_| StoreError::Direct("a stored token is not 32 bytes".into()))?;
            tokens.push((r.get(0).map_err(direct)?, token, r.get(2).map_err(direct)?));
        }
    }
    let temp_ids = all(&tx, "SELECT temp_id, person_id FROM temp_ids", |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .map_err(direct)?;
    let reviews = all(
        &tx,
        "SELECT kind, person_a, person_b FROM review_queue",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(direct)?;
    tx.finish().map_err(direct)?;
    Ok(RegistryRows {
        persons,
        tokens,
        temp_ids,
        reviews,
    })
}

/// New tokens at or above which the SQLite bulk insert checks their persons once, in
/// bulk, instead of per row (see [`insert_sqlite_direct`]).
const BULK_FK_ROWS: usize = 100_000;

/// Inserts new persons and tokens on a SQLite connection that is inside the caller's
/// open transaction, with one prepared statement per table.
///
/// A first run inserts about six tokens per person. With foreign keys enforced, SQLite
/// looks each token's person up in `persons`; the tokens go in token order, so every
/// lookup lands on a random page, and those lookups were a third of a first run's
/// commit at a million persons. For a large batch the per-row check is switched off for
/// these inserts only and replaced by one check of the same rule: every person a token
/// names is a person inserted here or one already in `persons`. The check failing
/// fails the commit, as the constraint would have.
///
/// # Safety
/// `db` must be a valid connection that nothing else uses until this returns.
unsafe fn insert_sqlite_direct(
    db: *mut rusqlite::ffi::sqlite3,
    run_id: i64,
    persons: &[(PersonId, crate::identity::ids::PersonKey)],
    tokens: &[(i32, Token, PersonId)],
) -> Result<(), StoreError> {
    use rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY;
    // SAFETY: per the caller; `from_handle` borrows the connection and does not close it.
    let conn = unsafe { rusqlite::Connection::from_handle(db) }.map_err(direct)?;
    let bulk = tokens.len() >= BULK_FK_ROWS
        && conn
            .db_config(SQLITE_DBCONFIG_ENABLE_FKEY)
            .map_err(direct)?;
    if bulk {
        // `sqlite3_db_config` takes effect inside a transaction (the PRAGMA would not).
        conn.set_db_config(SQLITE_DBCONFIG_ENABLE_FKEY, false)
            .map_err(direct)?;
    }
    let inserted = (|| -> Result<(), StoreError> {
        let mut st = conn
            .prepare("INSERT INTO persons (id, person_key, created_run) VALUES (?1, ?2, ?3)")
            .map_err(direct)?;
        for (id, key) in persons {
            st.execute(rusqlite::params![id, key.as_str(), run_id])
                .map_err(direct)?;
        }
        let mut st = conn
            .prepare(
                "INSERT INTO person_tokens (rule, token, person_id, first_run) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )
            .map_err(direct)?;
        for (rule, token, person) in tokens {
            st.execute(rusqlite::params![rule, &token[..], person, run_id])
                .map_err(direct)?;
        }
        if bulk {
            tokens_have_persons(&conn, persons, tokens)?;
        }
        Ok(())
    })();
    // Back on before anything else runs on this connection, whatever happened above.
    if bulk {
        conn.set_db_config(SQLITE_DBCONFIG_ENABLE_FKEY, true)
            .map_err(direct)?;
    }
    inserted
}

/// The foreign-key rule of `person_tokens.person_id`, checked once for a batch: every
/// person named is among `persons` (inserted in this transaction) or already stored.
fn tokens_have_persons(
    conn: &rusqlite::Connection,
    persons: &[(PersonId, crate::identity::ids::PersonKey)],
    tokens: &[(i32, Token, PersonId)],
) -> Result<(), StoreError> {
    let new = IdSet::new(persons.iter().map(|(id, _)| *id));
    let mut others: Vec<PersonId> = tokens
        .iter()
        .map(|(_, _, p)| *p)
        .filter(|p| !new.contains(*p))
        .collect();
    others.sort_unstable();
    others.dedup();
    let mut st = conn
        .prepare("SELECT 1 FROM persons WHERE id = ?1")
        .map_err(direct)?;
    for p in others {
        if !st.exists([p]).map_err(direct)? {
            return Err(StoreError::Direct(format!(
                "a new registry token names person {p}, which is not in the store"
            )));
        }
    }
    Ok(())
}

/// A set of person ids, asked once per new token (six million on a first run at a
/// million persons). New persons' ids come from one counter, so a bitmap over their range
/// is small (125 KB at a million) and stays in cache, where a hash set of them took
/// a random memory read per token; ids spread over a far wider range fall back to a
/// sorted list.
enum IdSet {
    Bits { lo: PersonId, bits: Vec<u64> },
    Sorted(Vec<PersonId>),
}

impl IdSet {
    fn new(ids: impl Iterator<Item = PersonId>) -> IdSet {
        let mut ids: Vec<PersonId> = ids.collect();
        let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else {
            return IdSet::Sorted(Vec::new());
        };
        let span = u64::try_from(i128::from(hi) - i128::from(lo) + 1).unwrap_or(u64::MAX);
        if span / 64 > ids.len() as u64 {
            ids.sort_unstable();
            return IdSet::Sorted(ids);
        }
        let mut bits = vec![0u64; (span as usize).div_ceil(64)];
        for id in ids {
            let at = (id - lo) as usize;
            bits[at / 64] |= 1 << (at % 64);
        }
        IdSet::Bits { lo, bits }
    }

    fn contains(&self, id: PersonId) -> bool {
        match self {
            IdSet::Bits { lo, bits } => id
                .checked_sub(*lo)
                .and_then(|at| usize::try_from(at).ok())
                .and_then(|at| bits.get(at / 64).map(|w| w & (1 << (at % 64)) != 0))
                .unwrap_or(false),
            IdSet::Sorted(ids) => ids.binary_search(&id).is_ok(),
        }
    }
}

impl Store {
    /// Loads the whole registry. At a million persons this is a few million small rows,
    /// read once per run; every lookup after that is in memory.
    pub async fn load_registry(&self) -> Result<RegistryRows, StoreError> {
        if let Store::Sqlite(pool) = self {
            let path = pool.connect_options().get_filename().to_path_buf();
            if path.is_file() {
                return tokio::task::spawn_blocking(move || load_registry_sqlite(&path))
                    .await
                    .map_err(|e| StoreError::Direct(e.to_string()))?;
            }
        }
        on_pool!(self, pool => {
            let persons = sqlx::query("SELECT id, person_key, merged_into FROM persons")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("person_key")?, r.try_get("merged_into")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            // Streamed, not `fetch_all`: at a million persons the five million rows would
            // otherwise sit in memory twice (as rows, then as tuples), about 2 GiB more.
            let mut tokens = Vec::new();
            let mut rows = sqlx::query("SELECT rule, token, person_id FROM person_tokens").fetch(pool);
            while let Some(r) = rows.try_next().await? {
                tokens.push((r.try_get("rule")?, token_from(r.try_get("token")?)?, r.try_get("person_id")?));
            }
            drop(rows);
            let temp_ids = sqlx::query("SELECT temp_id, person_id FROM temp_ids")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("temp_id")?, r.try_get("person_id")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let reviews = sqlx::query("SELECT kind, person_a, person_b FROM review_queue")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("kind")?, r.try_get("person_a")?, r.try_get("person_b")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok(RegistryRows { persons, tokens, temp_ids, reviews })
        })
    }

    /// Open review items (kind, person keys of both candidates).
    pub async fn open_reviews(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        const SQL: &str = "SELECT r.kind, a.person_key AS a, b.person_key AS b FROM review_queue r \
                           JOIN persons a ON a.id = r.person_a JOIN persons b ON b.id = r.person_b \
                           WHERE r.status = 'open' ORDER BY r.id";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("kind")?, r.try_get("a")?, r.try_get("b")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    /// The source files of the last successful run of `pipeline` that read `source`.
    pub async fn previous_source_files(
        &self,
        pipeline: &str,
        source: &str,
    ) -> Result<Vec<SourceFileRow>, StoreError> {
        const SQL: &str = "SELECT f.source, f.path, f.sha256, f.rows_read, f.rows_accepted, f.rows_rejected \
             FROM source_files f WHERE f.source = $2 AND f.run_id = ( \
               SELECT MAX(r.id) FROM runs r JOIN source_files g ON g.run_id = r.id \
               WHERE r.pipeline = $1 AND r.status = 'succeeded' AND g.source = $2)";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL)
                .bind(pipeline)
                .bind(source)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| Ok(SourceFileRow {
                    source: r.try_get("source")?,
                    path: r.try_get("path")?,
                    sha256: r.try_get("sha256")?,
                    rows_read: r.try_get("rows_read")?,
                    rows_accepted: r.try_get("rows_accepted")?,
                    rows_rejected: r.try_get("rows_rejected")?,
                }))
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }
}

impl StoreTx {
    /// Writes a resolution's changes: new persons, tokens, temporary IDs, merges (as
    /// pointers plus an audit row each) and review items. The new tokens are sorted in
    /// place (a copy would be 300 MB on a first run at a million persons).
    pub async fn apply_registry_changes(
        &mut self,
        run_id: i64,
        changes: &mut Changes,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        // In key order, B-tree inserts append to the same few pages instead of touching a
        // random page each.
        rayon::slice::ParallelSliceMut::par_sort_unstable(&mut changes.new_tokens[..]);
        let tokens = &changes.new_tokens;
        // Persons first (every other table refers to them), then tokens: the bulk of a
        // first run, about six per participant. The resolver only reports tokens the
        // registry does not hold yet, so COPY needs no conflict handling.
        match self {
            StoreTx::Postgres(tx) => {
                for chunk in changes.new_persons.chunks(CHUNK) {
                    let mut q =
                        QueryBuilder::new("INSERT INTO persons (id, person_key, created_run) ");
                    q.push_values(chunk, |mut b, (id, key)| {
                        b.push_bind(*id)
                            .push_bind(key.as_str().to_string())
                            .push_bind(run_id);
                    });
                    q.build().execute(&mut **tx).await?;
                }
                let mut copy = tx
                    .copy_in_raw("COPY person_tokens (rule, token, person_id, first_run) FROM STDIN (FORMAT csv)")
                    .await?;
                let mut buf = String::with_capacity(CHUNK * 100);
                for chunk in tokens.chunks(CHUNK) {
                    buf.clear();
                    for (rule, token, person) in chunk {
                        buf.push_str(&format!(
                            "{rule},\\x{},{person},{run_id}\n",
                            hex::encode(token)
                        ));
                    }
                    copy.send(buf.as_bytes()).await?;
                }
                copy.finish().await?;
            }
            StoreTx::Sqlite(tx) => {
                // Stepped directly on the transaction's own connection, one prepared
                // statement per table, instead of sqlx building, binding and shipping
                // multi-row INSERTs to its worker thread: with the bulk foreign-key check
                // below, a first run's commit at a million persons went from about 24 s
                // to 11-14 s.
                let mut handle = tx.lock_handle().await?;
                let raw = handle.as_raw_handle();
                // SAFETY: the locked handle keeps sqlx's worker off this connection until
                // it is dropped, after `insert_sqlite_direct` (which does not close the
                // connection it borrows) has returned.
                unsafe {
                    insert_sqlite_direct(raw.as_ptr(), run_id, &changes.new_persons, tokens)
                }?;
            }
        }
        on_tx!(self, conn => {
            for chunk in changes.new_temp_ids.chunks(CHUNK) {
                let mut q = QueryBuilder::new("INSERT INTO temp_ids (temp_id, person_id, issued_run, issued_at) ");
                q.push_values(chunk, |mut b, (t, person)| {
                    b.push_bind(t.as_str().to_string()).push_bind(*person).push_bind(run_id).push_bind(now);
                });
                q.build().execute(&mut *conn).await?;
            }
            for m in &changes.merges {
                sqlx::query("UPDATE persons SET merged_into = $1 WHERE id = $2")
                    .bind(m.into)
                    .bind(m.from)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("INSERT INTO merges (from_person, into_person, run_id, reason, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(m.from)
                    .bind(m.into)
                    .bind(run_id)
                    .bind(m.reason)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
            for chunk in changes.reviews.chunks(CHUNK) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO review_queue (run_id, kind, person_a, person_b, detail, status, created_at) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(run_id)
                        .push_bind(r.kind)
                        .push_bind(r.person_a)
                        .push_bind(r.person_b)
                        .push_bind("identifiers point at two different persons")
                        .push_bind("open")
                        .push_bind(now);
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut *conn).await?;
            }
        });
        Ok(())
    }

    pub async fn record_source_files(
        &mut self,
        run_id: i64,
        files: &[SourceFileRow],
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            for f in files {
                sqlx::query(
                    "INSERT INTO source_files (run_id, source, path, sha256, rows_read, rows_accepted, rows_rejected) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(run_id)
                .bind(&f.source)
                .bind(&f.path)
                .bind(&f.sha256)
                .bind(f.rows_read)
                .bind(f.rows_accepted)
                .bind(f.rows_rejected)
                .execute(&mut *conn)
                .await?;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::IdSet;

    #[test]
    fn id_sets_answer_alike_dense_or_spread() {
        let dense = IdSet::new([7, 8, 9, 12, 70].into_iter());
        assert!(matches!(dense, IdSet::Bits { .. }));
        let spread = IdSet::new([7, 1_000_000_000, -5].into_iter());
        assert!(matches!(spread, IdSet::Sorted(_)));
        for id in [7, 8, 9, 12, 70] {
            assert!(dense.contains(id), "{id}");
        }
        for id in [i64::MIN, -1, 6, 10, 11, 69, 71, 128, i64::MAX] {
            assert!(!dense.contains(id), "{id}");
        }
        for id in [7, 1_000_000_000, -5] {
            assert!(spread.contains(id), "{id}");
        }
        assert!(!spread.contains(8));
        assert!(!IdSet::new(std::iter::empty()).contains(0));
    }
}
