//! SQL for breach-impact queries (`crate::breach`).
//!
//! `lineage.rs` decodes every row's person set as it reads it. A breach question over a
//! month of nightly runs touches thousands of files holding tens of millions of person
//! ids, so here the file *metadata* is read first (no blobs) and each person set is then
//! fetched on its own: the caller folds it into a bitmap and drops it, and memory stays at
//! one set at a time.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Backend, Store, StoreError};
use crate::identity::token::{Rule, Token};
use crate::lake::{ColumnMeta, Zone};

/// Ids per `IN (…)` list: far below both backends' bind-parameter limits.
const CHUNK: usize = 500;

/// `person_tokens.rule` of an SSN token (`Rule::Ssn`'s position in `RULES`).
const SSN_RULE: i32 = Rule::Ssn.index() as i32;

/// A lineage row without its person set (fetch that with [`Store::lineage_persons`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageMeta {
    pub id: i64,
    pub run_id: i64,
    pub zone: Zone,
    pub dataset: String,
    pub path: String,
    pub sha256: String,
    pub rows: u64,
    pub columns: Vec<ColumnMeta>,
    pub person_count: u64,
    pub written_at: DateTime<Utc>,
    pub purged_at: Option<DateTime<Utc>>,
}

/// Which lineage rows a breach question is about.
#[derive(Debug, Clone)]
pub enum LineageFilter<'a> {
    Sha256(&'a str),
    Run(i64),
    /// A dataset name, or a prefix of secure-zone datasets (`matches` → `matches/*`).
    Dataset(&'a str),
    /// Written in `[from, to)`.
    Window(DateTime<Utc>, DateTime<Utc>),
    /// Rows whose path is this file name or ends in `/` + it (the caller then checks the
    /// full path suffix).
    FileName(&'a str),
    All,
}

use super::lineage::{corrupt, parse_columns};

const META_COLUMNS: &str = "id, run_id, zone, dataset, path, sha256, rows, columns, \
                            person_count, written_at, purged_at";

macro_rules! meta_row {
    ($r:expr) => {{
        let r = $r;
        let id: i64 = r.try_get("id")?;
        let zone: String = r.try_get("zone")?;
        let columns: String = r.try_get("columns")?;
        Ok::<_, sqlx::Error>(LineageMeta {
            id,
            run_id: r.try_get("run_id")?,
            zone: Zone::parse(&zone).ok_or_else(|| corrupt(id, "zone", &zone))?,
            dataset: r.try_get("dataset")?,
            path: r.try_get("path")?,
            sha256: r.try_get("sha256")?,
            rows: r.try_get::<i64, _>("rows")? as u64,
            columns: parse_columns(id, &columns)?,
            person_count: r.try_get::<i64, _>("person_count")? as u64,
            written_at: r.try_get("written_at")?,
            purged_at: r.try_get("purged_at")?,
        })
    }};
}

/// `$1, $2, …, $n` (both backends accept numbered placeholders).
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Lineage rows matching `filter`, oldest first, without their person sets.
    pub async fn lineage_meta(
        &self,
        filter: &LineageFilter<'_>,
    ) -> Result<Vec<LineageMeta>, StoreError> {
        let base = format!("SELECT {META_COLUMNS} FROM lineage_files");
        let order = "ORDER BY written_at, id";
        let rows = match *filter {
            LineageFilter::Sha256(sha) => {
                // A secure-zone file sealed again at a key's retirement keeps its row;
                // its new bytes' hash is in `lineage_reseals`.
                let sql = format!(
                    "{base} WHERE sha256 = $1 OR id IN \
                     (SELECT lineage_id FROM lineage_reseals WHERE sha256 = $1) {order}"
                );
                let sha = sha.to_ascii_lowercase();
                on_pool!(self, pool => {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(sha).fetch_all(pool).await?
                        .iter().map(|r| meta_row!(r)).collect::<Result<Vec<_>, _>>()?
                })
            }
            LineageFilter::Run(run) => {
                let sql = format!("{base} WHERE run_id = $1 {order}");
                on_pool!(self, pool => {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(run).fetch_all(pool).await?
                        .iter().map(|r| meta_row!(r)).collect::<Result<Vec<_>, _>>()?
                })
            }
            LineageFilter::Dataset(name) => {
                // `dataset >= 'x/' AND dataset < 'x0'` is the prefix `x/` ('0' follows
                // '/' in ASCII) and, unlike LIKE, uses the dataset index on both backends.
                let sql = format!(
                    "{base} WHERE dataset = $1 OR (dataset >= $2 AND dataset < $3) {order}"
                );
                let (lo, hi) = (format!("{name}/"), format!("{name}0"));
                on_pool!(self, pool => {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).bind(lo).bind(hi)
                        .fetch_all(pool).await?
                        .iter().map(|r| meta_row!(r)).collect::<Result<Vec<_>, _>>()?
                })
            }
            LineageFilter::Window(from, to) => {
                let sql = format!("{base} WHERE written_at >= $1 AND written_at < $2 {order}");
                on_pool!(self, pool => {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from).bind(to).fetch_all(pool).await?
                        .iter().map(|r| meta_row!(r)).collect::<Result<Vec<_>, _>>()?
                })
            }
            LineageFilter::FileName(name) => {
                // LIKE's `_` matches any character: a superset, which the caller narrows.
                let sql = format!("{base} WHERE path = $1 OR path LIKE $2 {order}");
                let like = format!("%/{}", name.replace('%', "_"));
                on_pool!(self, pool => {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).bind(like).fetch_all(pool).await?
                        .iter().map(|r| meta_row!(r)).collect::<Result<Vec<_>, _>>()?
                })
            }
            LineageFilter::All => {
                let sql = format!("{base} {order}");
                on_pool!(self, pool => {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
                        .iter().map(|r| meta_row!(r)).collect::<Result<Vec<_>, _>>()?
                })
            }
        };
        Ok(rows)
    }

    /// The encoded person set (`lake::PersonSet::encode`) of one lineage row.
    pub async fn lineage_persons(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        const SQL: &str = "SELECT persons FROM lineage_files WHERE id = $1";
        let blob: Vec<u8> = on_pool!(self, pool => {
            sqlx::query_scalar(SQL).bind(id).fetch_one(pool).await?
        });
        Ok(blob)
    }

    /// `(from, into)` of every merged person: the pointers to follow to a survivor.
    pub async fn merge_pointers(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        const SQL: &str = "SELECT id, merged_into FROM persons WHERE merged_into IS NOT NULL";
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).fetch_all(pool).await?.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("merged_into")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// `(id, person_key)` of the given persons (any order; unknown ids are absent).
    pub async fn person_keys_of(&self, ids: &[i64]) -> Result<Vec<(i64, String)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT id, person_key FROM persons WHERE id IN ({})",
                placeholders(chunk.len())
            );
            on_pool!(self, pool => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(pool).await? {
                    out.push((r.try_get("id")?, r.try_get("person_key")?));
                }
            });
        }
        Ok(out)
    }

    /// `(id, person_key)` of every person: cheaper than id lists once most persons are
    /// affected.
    pub async fn all_person_keys(&self) -> Result<Vec<(i64, String)>, StoreError> {
        const SQL: &str = "SELECT id, person_key FROM persons";
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).fetch_all(pool).await?.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("person_key")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// `(id, person_key)` of every person with `lo <= id < hi`, in any order. One row per
    /// call comes back (the pairs aggregated into one text by the database), so reading a
    /// million keys costs a few calls rather than a million rows through the driver.
    pub async fn person_keys_between(
        &self,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        // `id:key` pairs joined by `,`; person keys are Crockford base 32, so neither
        // separator can occur in one (a key that has one fails to parse, below).
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT group_concat(id || ':' || person_key, ',') \
                 FROM persons WHERE id >= $1 AND id < $2"
            }
            Backend::Postgres => {
                "SELECT string_agg(id::text || ':' || person_key, ',') \
                 FROM persons WHERE id >= $1 AND id < $2"
            }
        };
        let text: Option<String> = on_pool!(self, pool => {
            sqlx::query_scalar(sql).bind(lo).bind(hi).fetch_one(pool).await?
        });
        let Some(text) = text else {
            return Ok(Vec::new());
        };
        text.split(',')
            .map(|pair| {
                pair.split_once(':')
                    .and_then(|(id, key)| Some((id.parse::<i64>().ok()?, key.to_string())))
                    .ok_or_else(|| {
                        StoreError::Query(sqlx::Error::Decode(
                            "a person key holds `,` or `:`, or an id is not a number".into(),
                        ))
                    })
            })
            .collect()
    }

    /// `(person_key, id)` of the given keys (unknown keys are absent).
    pub async fn persons_by_key(&self, keys: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            let sql = format!(
                "SELECT person_key, id FROM persons WHERE person_key IN ({})",
                placeholders(chunk.len())
            );
            on_pool!(self, pool => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for k in chunk {
                    q = q.bind(k.as_str());
                }
                for r in q.fetch_all(pool).await? {
                    out.push((r.try_get("person_key")?, r.try_get("id")?));
                }
            });
        }
        Ok(out)
    }

    /// `(token, person id)` for SSN tokens the registry knows (unknown tokens are absent).
    pub async fn persons_by_ssn_token(
        &self,
        tokens: &[Token],
    ) -> Result<Vec<(Token, i64)>, StoreError> {
        let mut out = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(CHUNK) {
            let sql = format!(
                "SELECT token, person_id FROM person_tokens WHERE rule = {SSN_RULE} AND token IN ({})",
                placeholders(chunk.len())
            );
            on_pool!(self, pool => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for t in chunk {
                    q = q.bind(t.to_vec());
                }
                for r in q.fetch_all(pool).await? {
                    let token: Vec<u8> = r.try_get("token")?;
                    let token: Token = token.try_into().map_err(|_| {
                        sqlx::Error::Decode("a stored token is not 32 bytes".into())
                    })?;
                    out.push((token, r.try_get("person_id")?));
                }
            });
        }
        Ok(out)
    }
}
