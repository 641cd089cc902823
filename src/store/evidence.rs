//! SQL for the monitor's evidence printout (`crate::report::evidence`): which person a
//! person key or temporary ID names, the person it survives as after merges, the persons
//! merged into it and every temporary ID issued to any of them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError};
use crate::identity::registry::PersonId;

/// What the printout was asked for (already parsed and normalized by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonSubject {
    PersonKey(String),
    TempId(String),
}

/// A person as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonIdentity {
    /// The person the subject names directly: `(id, person_key)`.
    pub named: (PersonId, String),
    /// The person it survives as (itself unless merged): the de-identified zone publishes
    /// its periods under this key.
    pub survivor: (PersonId, String),
    /// Persons merged into the survivor, directly or through another merged person.
    pub merged: Vec<(PersonId, String)>,
    /// Temporary IDs issued to the survivor or a merged person, oldest first.
    pub temp_ids: Vec<(String, DateTime<Utc>)>,
}

/// Merge chains longer than this are a corrupt store, not a real history.
const MAX_CHAIN: usize = 64;

impl Store {
    /// The person `subject` names, or `None` when the registry has no such key or ID.
    pub async fn person_identity(
        &self,
        subject: &PersonSubject,
    ) -> Result<Option<PersonIdentity>, StoreError> {
        let start: Option<PersonId> = match subject {
            PersonSubject::PersonKey(k) => on_pool!(self, pool => {
                sqlx::query_scalar("SELECT id FROM persons WHERE person_key = $1")
                    .bind(k.as_str())
                    .fetch_optional(pool)
                    .await?
            }),
            PersonSubject::TempId(t) => on_pool!(self, pool => {
                sqlx::query_scalar("SELECT person_id FROM temp_ids WHERE temp_id = $1")
                    .bind(t.as_str())
                    .fetch_optional(pool)
                    .await?
            }),
        };
        let Some(start) = start else {
            return Ok(None);
        };
        let person = |id: PersonId| async move {
            let r: (String, Option<PersonId>) = on_pool!(self, pool => {
                let r = sqlx::query("SELECT person_key, merged_into FROM persons WHERE id = $1")
                    .bind(id)
                    .fetch_one(pool)
                    .await?;
                (r.try_get("person_key")?, r.try_get("merged_into")?)
            });
            Ok::<_, StoreError>(r)
        };
        let (named_key, mut next) = person(start).await?;
        let named = (start, named_key.clone());
        let mut survivor = named.clone();
        let mut steps = 0;
        while let Some(into) = next {
            steps += 1;
            if steps > MAX_CHAIN {
                return Err(StoreError::Direct(format!(
                    "person {start}: merge pointers do not end within {MAX_CHAIN} steps"
                )));
            }
            let (key, after) = person(into).await?;
            survivor = (into, key);
            next = after;
        }
        // Everyone merged into the survivor, breadth first.
        let mut merged: Vec<(PersonId, String)> = Vec::new();
        let mut frontier = vec![survivor.0];
        while let Some(id) = frontier.pop() {
            let rows: Vec<(PersonId, String)> = on_pool!(self, pool => {
                sqlx::query("SELECT id, person_key FROM persons WHERE merged_into = $1 ORDER BY id")
                    .bind(id)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("id")?, r.try_get("person_key")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            for r in rows {
                if r.0 != survivor.0 && !merged.iter().any(|m| m.0 == r.0) {
                    if merged.len() > MAX_CHAIN * MAX_CHAIN {
                        return Err(StoreError::Direct(format!(
                            "person {}: too many merged persons",
                            survivor.0
                        )));
                    }
                    frontier.push(r.0);
                    merged.push(r);
                }
            }
        }
        merged.sort();
        let mut temp_ids: Vec<(String, DateTime<Utc>)> = Vec::new();
        for id in std::iter::once(survivor.0).chain(merged.iter().map(|m| m.0)) {
            let rows: Vec<(String, DateTime<Utc>)> = on_pool!(self, pool => {
                sqlx::query("SELECT temp_id, issued_at FROM temp_ids WHERE person_id = $1")
                    .bind(id)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("temp_id")?, r.try_get("issued_at")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            temp_ids.extend(rows);
        }
        temp_ids.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(Some(PersonIdentity {
            named,
            survivor,
            merged,
            temp_ids,
        }))
    }
}
