//! The state store: the one module that speaks SQL to it.
//!
//! SQLite is the embedded default (one file in the workspace, nothing to install);
//! PostgreSQL is the production store that several machines can share. sqlx's checked
//! macros bind to one database, so statements here are plain strings written once in the
//! dialect both accept (`$1` placeholders work in both), and each call dispatches on the
//! backend. The two migration folders are kept in lockstep; a test compares the tables
//! and columns they produce.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL `{0}` is neither sqlite:// nor postgres://")]
    UnsupportedUrl(String),
    #[error("cannot open the state store ({backend}): {source}")]
    Open {
        backend: Backend,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot bring the state store schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("state store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// From the statements that bypass sqlx for bulk reads (see `load_registry`).
    #[error("state store read failed: {0}")]
    Direct(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// A connection pool to one of the two supported stores.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store holds. The body is compiled once
/// per backend, so sqlx binds and decodes with each database's own types.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// An open transaction on either backend. Submodules add `impl StoreTx` blocks for the
/// writes that must commit together (registry changes, lineage, the run's status).
pub enum StoreTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Like `on_pool!`, for a transaction: `$conn` is the `&mut` connection to execute on.
/// Submodules declared below this point see both macros.
#[allow(unused_macros)]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            StoreTx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            StoreTx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

impl StoreTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            StoreTx::Sqlite(tx) => tx.commit().await?,
            StoreTx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// The row that ties a store to the key its tokens were made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRow {
    pub key_id: String,
    pub rule_set_version: u32,
    pub created_at: DateTime<Utc>,
    /// The key a rotation in progress moves to (`xmatch key rotate`).
    pub next_key_id: Option<String>,
}

/// One entry of the audit table.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub reason: Option<String>,
    /// Free-form JSON with what was done; never identifiers.
    pub detail: serde_json::Value,
}

impl Store {
    /// Opens the store at `url`, creating a SQLite file if needed, and applies pending
    /// migrations. A relative SQLite path is taken relative to `base`.
    pub async fn open(url: &str, base: &Path) -> Result<Store, StoreError> {
        let store = Store::connect(url, base).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating (tests use it to compare migrations).
    pub async fn connect(url: &str, base: &Path) -> Result<Store, StoreError> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = base.join(rest);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                    backend: Backend::Sqlite,
                    source: sqlx::Error::Io(e),
                })?;
            }
            let opts = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                // A new store only (an existing one keeps its page size until VACUUM):
                // 16 KiB pages make the registry's token B-tree a level shallower and
                // split a quarter as often as 4 KiB ones during a first run's bulk insert.
                .page_size(16384)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                // Registry tokens are random 32-byte keys: with SQLite's default 2 MB page
                // cache every insert into their index is a random read. 256 MB keeps a
                // million-person registry's index in memory.
                .pragma("cache_size", "-262144")
                .pragma("temp_store", "memory");
            // One connection: SQLite has one writer at a time, and a single connection
            // turns would-be SQLITE_BUSY errors into an orderly queue.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
                .map_err(|source| StoreError::Open {
                    backend: Backend::Sqlite,
                    source,
                })?;
            restrict_file_mode(&path);
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(|source| StoreError::Open {
                backend: Backend::Postgres,
                source,
            })?;
            Store::connect_postgres(opts).await
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    /// Connects to PostgreSQL with explicit options (tests use a private schema).
    pub async fn connect_postgres(opts: PgConnectOptions) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                backend: Backend::Postgres,
                source,
            })?;
        Ok(Store::Postgres(pool))
    }

    pub async fn begin(&self) -> Result<StoreTx, StoreError> {
        Ok(match self {
            Store::Sqlite(pool) => StoreTx::Sqlite(pool.begin().await?),
            Store::Postgres(pool) => StoreTx::Postgres(pool.begin().await?),
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pool) => migrations::migrator(migrations::SQLITE).run(pool).await?,
            Store::Postgres(pool) => migrations::migrator(migrations::POSTGRES).run(pool).await?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// The workspace row, if `init` has recorded one.
    pub async fn workspace(&self) -> Result<Option<WorkspaceRow>, StoreError> {
        const SQL: &str =
            "SELECT key_id, rule_set_version, created_at, next_key_id FROM workspace WHERE id = 1";
        let row = on_pool!(self, pool => {
            sqlx::query(SQL).fetch_optional(pool).await?.map(|r| {
                Ok::<_, sqlx::Error>(WorkspaceRow {
                    key_id: r.try_get("key_id")?,
                    rule_set_version: r.try_get::<i32, _>("rule_set_version")? as u32,
                    created_at: r.try_get("created_at")?,
                    next_key_id: r.try_get("next_key_id")?,
                })
            })
        });
        Ok(row.transpose()?)
    }

    /// Records the key id once; an existing row is left as it is and returned.
    pub async fn init_workspace(
        &self,
        key_id: &str,
        rule_set_version: u32,
    ) -> Result<WorkspaceRow, StoreError> {
        const SQL: &str = "INSERT INTO workspace (id, key_id, rule_set_version, created_at) \
                           VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING";
        let now = Utc::now();
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(key_id)
                .bind(rule_set_version as i32)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(self
            .workspace()
            .await?
            .expect("the workspace row exists after an insert-or-keep"))
    }

    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO audit_log (at, actor, action, reason, detail) \
                           VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let detail = entry.detail.to_string();
        let id: i64 = on_pool!(self, pool => {
            sqlx::query_scalar(SQL)
                .bind(Utc::now())
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(entry.reason.as_deref())
                .bind(&detail)
                .fetch_one(pool)
                .await?
        });
        Ok(id)
    }

    /// Audit entries, newest first.
    pub async fn audit_entries(
        &self,
        limit: i64,
    ) -> Result<Vec<(DateTime<Utc>, AuditEntry)>, StoreError> {
        const SQL: &str = "SELECT at, actor, action, reason, detail FROM audit_log \
                           ORDER BY id DESC LIMIT $1";
        let rows = on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(limit).fetch_all(pool).await?;
            rows.into_iter()
                .map(|r| {
                    let detail: String = r.try_get("detail")?;
                    Ok::<_, sqlx::Error>((
                        r.try_get("at")?,
                        AuditEntry {
                            actor: r.try_get("actor")?,
                            action: r.try_get("action")?,
                            reason: r.try_get("reason")?,
                            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                        },
                    ))
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Every user table and its columns, as the database reports them; lets a test prove
    /// the SQLite and PostgreSQL migrations build the same schema.
    pub async fn tables_and_columns(&self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        match self {
            Store::Sqlite(pool) => {
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
                )
                .fetch_all(pool)
                .await?;
                for t in tables {
                    let cols: Vec<String> =
                        sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                            .bind(&t)
                            .fetch_all(pool)
                            .await?;
                    out.insert(t, cols);
                }
            }
            Store::Postgres(pool) => {
                let rows = sqlx::query(
                    "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%' \
                     ORDER BY table_name, ordinal_position",
                )
                .fetch_all(pool)
                .await?;
                for r in rows {
                    out.entry(r.try_get("t")?)
                        .or_default()
                        .push(r.try_get("c")?);
                }
            }
        }
        Ok(out)
    }
}

/// The store file holds registry data: nobody but the owner reads it.
fn restrict_file_mode(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

/// A URL for messages: the password, if any, is replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

mod migrations;

mod registry;
pub use registry::{RegistryRows, SourceFileRow};
mod keys;
pub use keys::RetiredCounts;
mod runs;
pub use runs::{Lease, LeaseOutcome, NewRun, RunMetrics, RunRow};
mod lineage;
pub use lineage::LineageFile;
mod breach;
pub use breach::{LineageFilter, LineageMeta};
mod purge;
pub use purge::{PurgeRecorded, UnpurgedFile};
mod evidence;
pub use evidence::{PersonIdentity, PersonSubject};
mod linkage;
pub use linkage::{
    DecisionOutcome, HeldRow, LinkDecisionRow, LinkQualityRow, NewLinkReview, ReviewFilter,
    ReviewId, ReviewItem,
};
