//! SQL for key rotation: the rotation's state in the `workspace` row, the review
//! re-keying runs collect during it, resealed files' hashes, and `retire`'s swap.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::Row;

use super::{Store, StoreError, StoreTx};
use crate::identity::registry::NEXT_KEY_RULE_OFFSET;
use crate::identity::token::Token;

fn token_from(bytes: Vec<u8>) -> Result<Token, sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("a stored token is not 32 bytes".into()))
}

/// What `retire`'s transaction changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetiredCounts {
    /// Tokens under the retired key, deleted.
    pub old_tokens: u64,
    /// Tokens under the new key, now the registry's.
    pub new_tokens: u64,
    /// Review items re-keyed to the new key.
    pub reviews_rekeyed: u64,
    /// Review items with no record seen during the rotation: their key is the old one,
    /// and they will be asked again if the record comes back.
    pub reviews_not_rekeyed: u64,
    /// Held probabilistic decisions re-keyed to the new key.
    pub held_rekeyed: u64,
    /// Held decisions of records not seen during the rotation, dropped: the record is
    /// decided afresh if it comes back.
    pub held_dropped: u64,
}

impl Store {
    /// Marks a rotation to `next_key_id` as begun. `false` when one is already under way
    /// (or the workspace row is missing).
    pub async fn begin_key_rotation(&self, next_key_id: &str) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE workspace SET next_key_id = $1 WHERE id = 1 AND next_key_id IS NULL";
        let n = on_pool!(self, pool => {
            sqlx::query(SQL).bind(next_key_id).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// The record keys of every review item and held decision, by source: a run during a
    /// rotation records the new key of those it sees.
    pub async fn link_review_keys(&self) -> Result<HashMap<String, HashSet<Token>>, StoreError> {
        const SQL: &str = "SELECT source, record_key FROM link_reviews \
                           UNION SELECT source, record_key FROM link_memory";
        let rows: Vec<(String, Token)> = on_pool!(self, pool => {
            sqlx::query(SQL)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("source")?, token_from(r.try_get("record_key")?)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut out: HashMap<String, HashSet<Token>> = HashMap::new();
        for (source, key) in rows {
            out.entry(source).or_default().insert(key);
        }
        Ok(out)
    }

    /// Records that the lineage row `lineage_id`'s file now has the bytes `sha256`
    /// (sealed again under `key_id`). Done before the new bytes replace the old, so a
    /// copy of either is always found.
    pub async fn record_reseal(
        &self,
        lineage_id: i64,
        sha256: &str,
        key_id: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO lineage_reseals (lineage_id, sha256, key_id, resealed_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(lineage_id)
                .bind(sha256)
                .bind(key_id)
                .bind(Utc::now())
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

impl StoreTx {
    /// Whether the workspace row still names these keys. A run checks it inside its
    /// commit, after its first write, so a `retire` that committed meanwhile fails the
    /// run instead of it writing tokens under the wrong rule numbers. On PostgreSQL the
    /// row stays locked until this transaction ends.
    pub async fn keys_unchanged(
        &mut self,
        key_id: &str,
        next_key_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        // PostgreSQL locks the row against a concurrent `retire`; SQLite's transaction
        // already holds the database's one write lock.
        let sql = match self {
            StoreTx::Sqlite(_) => "SELECT key_id, next_key_id FROM workspace WHERE id = 1",
            StoreTx::Postgres(_) => {
                "SELECT key_id, next_key_id FROM workspace WHERE id = 1 FOR UPDATE"
            }
        };
        // An unreadable value counts as a change, as a missing one does.
        let row: Option<(Option<String>, Option<String>)> = on_tx!(self, conn => {
            sqlx::query(sql).fetch_optional(&mut *conn).await?.map(|r| {
                (
                    r.try_get("key_id").ok(),
                    r.try_get::<Option<String>, _>("next_key_id").ok().flatten(),
                )
            })
        });
        // A store that `init` never recorded (its URL switched to after init) has no row,
        // as `Workspace::open_keyed` allows; nor then a rotation.
        Ok(match row {
            Some((key, next)) => key.as_deref() == Some(key_id) && next.as_deref() == next_key_id,
            None => next_key_id.is_none(),
        })
    }

    /// New-key record keys of review items seen in a run of the rotation.
    pub async fn record_review_rekeys(
        &mut self,
        rekeys: &[(String, Token, Token)],
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO link_review_rekeys (source, old_key, new_key) \
                           VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        on_tx!(self, conn => {
            for (source, old, new) in rekeys {
                sqlx::query(SQL)
                    .bind(source)
                    .bind(&old[..])
                    .bind(&new[..])
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }

    /// Ends a rotation: the registry's tokens under `old` are deleted and the new key's
    /// take their rule numbers, review items are re-keyed, and the workspace row names
    /// `new` alone. `None` (nothing changed) when the row does not say a rotation from
    /// `old` to `new` is under way.
    pub async fn retire_key(
        &mut self,
        old: &str,
        new: &str,
    ) -> Result<Option<RetiredCounts>, StoreError> {
        // First, so on PostgreSQL the row is locked against a run's commit from here on.
        const SWITCH: &str = "UPDATE workspace SET key_id = $2, next_key_id = NULL \
                              WHERE id = 1 AND key_id = $1 AND next_key_id = $2";
        const DROP_OLD: &str = "DELETE FROM person_tokens WHERE rule < $1";
        const SHIFT_NEW: &str = "UPDATE person_tokens SET rule = rule - $1 WHERE rule >= $1";
        const REVIEWS: &str = "SELECT id, source, record_key, person_id FROM link_reviews";
        const REKEYS: &str = "SELECT source, old_key, new_key FROM link_review_rekeys";
        const REKEY: &str = "UPDATE link_reviews SET record_key = $1 WHERE id = $2";
        const DROP_DUPLICATE: &str = "DELETE FROM link_reviews WHERE id = $1";
        const CLEAR_REKEYS: &str = "DELETE FROM link_review_rekeys";
        const HELD: &str = "SELECT source, record_key FROM link_memory";
        const REKEY_HELD: &str =
            "UPDATE link_memory SET record_key = $1 WHERE source = $2 AND record_key = $3";
        const DROP_HELD: &str = "DELETE FROM link_memory WHERE source = $1 AND record_key = $2";
        on_tx!(self, conn => {
            let switched = sqlx::query(SWITCH)
                .bind(old)
                .bind(new)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if switched != 1 {
                return Ok(None);
            }
            let mut counts = RetiredCounts {
                old_tokens: sqlx::query(DROP_OLD)
                    .bind(NEXT_KEY_RULE_OFFSET)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected(),
                ..RetiredCounts::default()
            };
            counts.new_tokens = sqlx::query(SHIFT_NEW)
                .bind(NEXT_KEY_RULE_OFFSET)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            let rekeys: HashMap<(String, Token), Token> = sqlx::query(REKEYS)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|r| {
                    Ok((
                        (r.try_get("source")?, token_from(r.try_get("old_key")?)?),
                        token_from(r.try_get("new_key")?)?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
            let reviews: Vec<(i64, String, Token, i64)> = sqlx::query(REVIEWS)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("source")?,
                        token_from(r.try_get("record_key")?)?,
                        r.try_get("person_id")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
            let new_keys: HashSet<Token> = rekeys.values().copied().collect();
            let ids: HashMap<(String, Token, i64), i64> = reviews
                .iter()
                .map(|(id, s, k, p)| ((s.clone(), *k, *p), *id))
                .collect();
            for (id, source, key, person) in &reviews {
                match rekeys.get(&(source.clone(), *key)) {
                    Some(new_key) => {
                        // A partner file under the new key may have made the same item
                        // already; the older one, with its decision, is the one kept.
                        if let Some(dup) = ids.get(&(source.clone(), *new_key, *person)) {
                            sqlx::query(DROP_DUPLICATE)
                                .bind(*dup)
                                .execute(&mut *conn)
                                .await?;
                        }
                        sqlx::query(REKEY)
                            .bind(&new_key[..])
                            .bind(*id)
                            .execute(&mut *conn)
                            .await?;
                        counts.reviews_rekeyed += 1;
                    }
                    None if new_keys.contains(key) => {}
                    None => counts.reviews_not_rekeyed += 1,
                }
            }
            // Held decisions: re-keyed where a run saw the record, dropped where none did
            // (an old-key token matches nothing after this). A new key already held (no
            // run writes one: files under the new key skip the pass) would fail the
            // primary key and so the whole retire, not overwrite a decision.
            let held: Vec<(String, Token)> = sqlx::query(HELD)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("source")?, token_from(r.try_get("record_key")?)?)))
                .collect::<Result<_, sqlx::Error>>()?;
            for (source, key) in held {
                match rekeys.get(&(source.clone(), key)) {
                    Some(new_key) => {
                        counts.held_rekeyed += sqlx::query(REKEY_HELD)
                            .bind(&new_key[..])
                            .bind(&source)
                            .bind(&key[..])
                            .execute(&mut *conn)
                            .await?
                            .rows_affected();
                    }
                    None if new_keys.contains(&key) => {}
                    None => {
                        counts.held_dropped += sqlx::query(DROP_HELD)
                            .bind(&source)
                            .bind(&key[..])
                            .execute(&mut *conn)
                            .await?
                            .rows_affected();
                    }
                }
            }
            sqlx::query(CLEAR_REKEYS).execute(&mut *conn).await?;
            Ok(Some(counts))
        })
    }
}
