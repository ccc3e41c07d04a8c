//! The SQL app store: apps as rows of one table in PostgreSQL or MySQL/MariaDB.
//!
//! Owns [`SqlStore`] (a small sqlx pool and the table's statements in the right dialect) and
//! [`StoreError`]. Queries are built at run time (no compile-time database): the table name is
//! a validated identifier (`config/app_store.rs`) quoted per dialect, and every value is a
//! bound parameter. Reads cast each column to text (or an integer for `enabled`), so a table
//! created by hand with `TEXT`, `JSON` or `JSONB` settings and a `BOOLEAN` or `TINYINT` flag
//! reads the same; NULLs read as an empty credential (refused by validation), an empty
//! settings object and a disabled app (fail closed).
//!
//! Failing fast matters more than waiting: the pool holds at most 4 connections, a connection
//! is waited for at most 2 s (connecting included), and every operation gives up after 5 s, so
//! a database that is down or unreachable costs a caller seconds, never a hang; the error is
//! then [`StoreError::Unavailable`]. [`SqlStore::connect_lazy`] does not connect at all, so a
//! server can start while the database is down; the pool connects on first use and again after
//! the database returns (each pooled connection is checked before it is handed out).
//!
//! Writes (`herald apps …`) validate the row with [`app_from_row`] before it is written, in
//! one transaction with the row locked for read-modify-write changes.

use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::row::{app_from_row, apply_change, AppRow};
use crate::config::app_store::{SqlDriver, SqlStoreConfig};
use crate::config::ConfigError;

/// Connections the pool opens at most: lookups are rare (cached by the caller) and short.
const MAX_CONNECTIONS: u32 = 4;
/// How long an operation waits for a connection, connecting included.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one whole operation may take before it counts as the database being unavailable.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle pooled connections are closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL was rejected by the driver (normally caught by config validation).
    #[error("app store URL: {0}")]
    Url(String),
    /// The database could not be reached, did not answer in time, or dropped the connection.
    #[error("app store unavailable: {0}")]
    Unavailable(String),
    /// The table does not exist (herald creates it at start-up and on `herald apps add`).
    #[error("app store table {0} does not exist (herald creates it at start-up and on `herald apps add`)")]
    MissingTable(String),
    /// The database answered with an error (permissions, a column missing, bad SQL…).
    #[error("app store query failed: {0}")]
    Query(#[source] sqlx::Error),
    /// A row could not be decoded into [`AppRow`].
    #[error("app store row could not be read: {0}")]
    Decode(#[source] sqlx::Error),
    /// No app has this id.
    #[error("no app with id {0:?}")]
    NotFound(String),
    /// The id or the key is already used by another app.
    #[error("the id or key is already used by another app ({0})")]
    Conflict(String),
    /// The row would not be a valid app (nothing was written).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl StoreError {
    /// Classifies a sqlx error: the database being away vs. answering with an error.
    fn from_sqlx(e: sqlx::Error, table: &str) -> StoreError {
        use sqlx::Error as E;
        match e {
            E::PoolTimedOut => StoreError::Unavailable(format!(
                "no connection within {} s (database down or unreachable?)",
                ACQUIRE_TIMEOUT.as_secs()
            )),
            E::Io(_) | E::Tls(_) | E::Protocol(_) | E::PoolClosed | E::WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            E::Configuration(_) => StoreError::Url(e.to_string()),
            E::ColumnDecode { .. } | E::Decode(_) | E::ColumnNotFound(_) | E::ColumnIndexOutOfBounds { .. } => {
                StoreError::Decode(e)
            }
            E::Database(ref db) => {
                let code = db.code().unwrap_or_default();
                if db.is_unique_violation() {
                    StoreError::Conflict(db.message().to_owned())
                } else if code == "42P01" || code == "42S02" {
                    StoreError::MissingTable(table.to_owned())
                } else if code.starts_with("08") || code.starts_with("57P0") || code == "08S01" {
                    // Connection exceptions, server shutting down or starting up.
                    StoreError::Unavailable(db.message().to_owned())
                } else {
                    StoreError::Query(e)
                }
            }
            _ => StoreError::Query(e),
        }
    }
}

/// Checks that `url` is acceptable to the driver's own option parser, without connecting.
/// The error never contains the URL.
pub(crate) fn check_url(driver: SqlDriver, url: &str) -> Result<(), String> {
    match driver {
        SqlDriver::Postgres => PgConnectOptions::from_str(url).map(drop),
        SqlDriver::Mysql => MySqlConnectOptions::from_str(url).map(drop),
    }
    .map_err(|e| e.to_string())
}

/// The pool, per database.
enum Pool {
    Postgres(PgPool),
    Mysql(MySqlPool),
}

/// Runs the same code on whichever pool is configured: the statements differ per dialect (see
/// [`Statements`]), the calls do not.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            Pool::Postgres($p) => $body,
            Pool::Mysql($p) => $body,
        }
    };
}

/// Apps in one SQL table. Cheap to share (`Arc` it); the pool inside is thread-safe.
pub struct SqlStore {
    pool: Pool,
    sql: Statements,
    /// The table name as configured, for messages.
    table: String,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Sets up the pool without connecting: the database may be down; the first operation
    /// connects (and fails with [`StoreError::Unavailable`] within a few seconds if it still
    /// is). Must be called inside a tokio runtime.
    pub fn connect_lazy(cfg: &SqlStoreConfig) -> Result<SqlStore, StoreError> {
        let bad_url = |e: sqlx::Error| StoreError::Url(e.to_string());
        let pool = match cfg.driver {
            SqlDriver::Postgres => {
                let opts = PgConnectOptions::from_str(&cfg.url).map_err(bad_url)?.application_name("herald");
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(MAX_CONNECTIONS)
                        .min_connections(0)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .idle_timeout(IDLE_TIMEOUT)
                        .connect_lazy_with(opts),
                )
            }
            SqlDriver::Mysql => {
                let opts = MySqlConnectOptions::from_str(&cfg.url).map_err(bad_url)?;
                Pool::Mysql(
                    MySqlPoolOptions::new()
                        .max_connections(MAX_CONNECTIONS)
                        .min_connections(0)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .idle_timeout(IDLE_TIMEOUT)
                        .connect_lazy_with(opts),
                )
            }
        };
        Ok(SqlStore { pool, sql: Statements::new(cfg.driver, &cfg.table), table: cfg.table.clone() })
    }

    /// The table name as configured.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table if it does not exist (idempotent; safe when several nodes start at
    /// once). An existing table is left as it is.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        let result = self
            .run(async {
                on_pool!(&self.pool, |p| {
                    sqlx::query(&self.sql.create).execute(p).await?;
                });
                Ok(())
            })
            .await;
        match result {
            // PostgreSQL: two concurrent `CREATE TABLE IF NOT EXISTS` can still collide on the
            // catalog (23505) or see the table appear in between (42P07): it exists either way.
            Err(StoreError::Conflict(_)) => Ok(()),
            Err(StoreError::Query(sqlx::Error::Database(db))) if db.code().as_deref() == Some("42P07") => Ok(()),
            other => other,
        }
    }

    /// Every row, ordered by id (disabled apps included: they must answer "disabled", not
    /// "unknown").
    pub async fn load_all(&self) -> Result<Vec<AppRow>, StoreError> {
        self.run(async {
            let rows = on_pool!(&self.pool, |p| {
                sqlx::query(&self.sql.select_all).fetch_all(p).await?.iter().map(decode).collect::<Result<_, _>>()
            })?;
            Ok(rows)
        })
        .await
    }

    /// The row with this key, if any. The match is exact even where the column's collation
    /// ignores case.
    pub async fn by_key(&self, key: &str) -> Result<Option<AppRow>, StoreError> {
        Ok(self.rows_where(&self.sql.by_key, key).await?.into_iter().find(|r| r.key == key))
    }

    /// The row with this id, if any (exact match, as for [`SqlStore::by_key`]).
    pub async fn by_id(&self, id: &str) -> Result<Option<AppRow>, StoreError> {
        Ok(self.rows_where(&self.sql.by_id, id).await?.into_iter().find(|r| r.id == id))
    }

    /// The rows a one-parameter lookup (`by_key` / `by_id` statement) returns, decoded.
    async fn rows_where(&self, statement: &str, value: &str) -> Result<Vec<AppRow>, StoreError> {
        self.run(async {
            Ok(on_pool!(&self.pool, |p| sqlx::query(statement)
                .bind(value)
                .fetch_all(p)
                .await?
                .iter()
                .map(decode)
                .collect::<Result<Vec<_>, _>>())?)
        })
        .await
    }

    /// Adds an app. The row is validated first ([`StoreError::Invalid`], nothing written); an
    /// id or key already in use is [`StoreError::Conflict`].
    pub async fn insert(&self, row: &AppRow) -> Result<(), StoreError> {
        app_from_row(row)?;
        self.run(async {
            on_pool!(&self.pool, |p| {
                sqlx::query(&self.sql.insert)
                    .bind(&row.id)
                    .bind(&row.key)
                    .bind(&row.secret)
                    .bind(row.enabled)
                    .bind(&row.settings)
                    .execute(p)
                    .await?;
            });
            Ok(())
        })
        .await
    }

    /// Applies `NAME=VALUE` changes to one app (see [`apply_change`]: `key`, `secret` and
    /// `enabled` set their column, anything else a settings key, `null` removes one), validates
    /// the result and writes it, all in one transaction with the row locked. Returns the row
    /// as written.
    pub async fn set(&self, id: &str, changes: &[(String, Value)]) -> Result<AppRow, StoreError> {
        self.run(async {
            on_pool!(&self.pool, |p| {
                let mut tx = p.begin().await?;
                let current = sqlx::query(&self.sql.by_id_for_update).bind(id).fetch_all(&mut *tx).await?;
                let current = current.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
                let Some(mut row) = current.into_iter().find(|r| r.id == id) else {
                    return Err(StoreError::NotFound(id.to_owned()).into());
                };
                for (name, value) in changes {
                    apply_change(&mut row, name, value.clone())?;
                }
                app_from_row(&row)?;
                sqlx::query(&self.sql.update)
                    .bind(&row.key)
                    .bind(&row.secret)
                    .bind(row.enabled)
                    .bind(&row.settings)
                    .bind(&row.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row)
            })
        })
        .await
    }

    /// Turns an app off (connections are refused, API requests too) without validating it,
    /// so a row with bad settings can always be disabled.
    pub async fn disable(&self, id: &str) -> Result<(), StoreError> {
        self.run(async {
            let done =
                on_pool!(&self.pool, |p| sqlx::query(&self.sql.disable).bind(id).execute(p).await?.rows_affected());
            if done == 0 {
                return Err(StoreError::NotFound(id.to_owned()).into());
            }
            Ok(())
        })
        .await
    }

    /// Turns an app back on; the row must be valid.
    pub async fn enable(&self, id: &str) -> Result<(), StoreError> {
        self.set(id, &[("enabled".to_owned(), Value::Bool(true))]).await.map(drop)
    }

    /// Deletes an app.
    pub async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.run(async {
            let done =
                on_pool!(&self.pool, |p| sqlx::query(&self.sql.delete).bind(id).execute(p).await?.rows_affected());
            if done == 0 {
                return Err(StoreError::NotFound(id.to_owned()).into());
            }
            Ok(())
        })
        .await
    }

    /// Runs one operation under [`OPERATION_TIMEOUT`], classifying its sqlx errors.
    async fn run<T>(&self, op: impl std::future::Future<Output = Result<T, OpError>>) -> Result<T, StoreError> {
        match tokio::time::timeout(OPERATION_TIMEOUT, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(OpError::Sqlx(e))) => Err(StoreError::from_sqlx(e, &self.table)),
            Ok(Err(OpError::Store(e))) => Err(e),
            Err(_) => Err(StoreError::Unavailable(format!("no answer within {} s", OPERATION_TIMEOUT.as_secs()))),
        }
    }
}

/// An operation's error before classification (sqlx errors need the table name for that).
enum OpError {
    Sqlx(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for OpError {
    fn from(e: sqlx::Error) -> Self {
        OpError::Sqlx(e)
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}

impl From<ConfigError> for OpError {
    fn from(e: ConfigError) -> Self {
        OpError::Store(StoreError::Invalid(e))
    }
}

/// One row of a `SELECT` built by [`Statements`] (columns aliased `id`, `key`, `secret`,
/// `enabled` as an integer, `settings` as text).
fn decode<R>(row: &R) -> Result<AppRow, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(AppRow {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        secret: row.try_get("secret")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        settings: row.try_get("settings")?,
    })
}

/// The SQL text of every operation, in one dialect.
struct Statements {
    create: String,
    select_all: String,
    by_id: String,
    by_key: String,
    by_id_for_update: String,
    insert: String,
    update: String,
    disable: String,
    delete: String,
}

impl Statements {
    fn new(driver: SqlDriver, table: &str) -> Statements {
        let pg = driver == SqlDriver::Postgres;
        // Identifiers quoted per dialect (`key` is a reserved word in MySQL). `table` was
        // checked to be `name` or `schema.name` of [A-Za-z0-9_], so no quote can occur in it.
        let q = |ident: &str| if pg { format!("\"{ident}\"") } else { format!("`{ident}`") };
        let t = table.split('.').map(q).collect::<Vec<_>>().join(".");
        let (id, key, secret, enabled, settings) = (q("id"), q("key"), q("secret"), q("enabled"), q("settings"));
        let (created_at, updated_at) = (q("created_at"), q("updated_at"));
        let ph = |n: usize| if pg { format!("${n}") } else { "?".to_owned() };
        let select = if pg {
            format!(
                "SELECT {id}::text AS {id}, COALESCE({key}::text, '') AS {key}, \
                 COALESCE({secret}::text, '') AS {secret}, COALESCE({enabled}::int, 0)::bigint AS {enabled}, \
                 COALESCE({settings}::text, '{{}}') AS {settings} FROM {t}"
            )
        } else {
            format!(
                "SELECT CAST({id} AS CHAR) AS {id}, COALESCE(CAST({key} AS CHAR), '') AS {key}, \
                 COALESCE(CAST({secret} AS CHAR), '') AS {secret}, \
                 COALESCE(CAST({enabled} AS SIGNED), 0) AS {enabled}, \
                 COALESCE(CAST({settings} AS CHAR), '{{}}') AS {settings} FROM {t}"
            )
        };
        // PostgreSQL needs the text parameter cast to the column's type (JSONB in the schema;
        // a TEXT or JSON column takes the JSONB value by assignment too).
        let settings_value = |n: usize| if pg { format!("CAST({} AS jsonb)", ph(n)) } else { ph(n) };
        let create = if pg {
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n  \
                 {id} VARCHAR(191) PRIMARY KEY,\n  \
                 {key} VARCHAR(191) NOT NULL UNIQUE,\n  \
                 {secret} VARCHAR(255) NOT NULL,\n  \
                 {enabled} BOOLEAN NOT NULL DEFAULT TRUE,\n  \
                 {settings} JSONB NOT NULL DEFAULT '{{}}',\n  \
                 {created_at} TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,\n  \
                 {updated_at} TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP\n)"
            )
        } else {
            // utf8mb4_bin: ids and keys compare case-sensitively, as everywhere else in herald.
            // 191 characters × 4 bytes fits any InnoDB index limit.
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n  \
                 {id} VARCHAR(191) NOT NULL,\n  \
                 {key} VARCHAR(191) NOT NULL,\n  \
                 {secret} VARCHAR(255) NOT NULL,\n  \
                 {enabled} BOOLEAN NOT NULL DEFAULT TRUE,\n  \
                 {settings} JSON NOT NULL DEFAULT ('{{}}'),\n  \
                 {created_at} DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,\n  \
                 {updated_at} DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,\n  \
                 PRIMARY KEY ({id}),\n  \
                 UNIQUE KEY ({key})\n\
                 ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            )
        };
        Statements {
            create,
            select_all: format!("{select} ORDER BY {id}"),
            by_id: format!("{select} WHERE {id} = {}", ph(1)),
            by_key: format!("{select} WHERE {key} = {}", ph(1)),
            by_id_for_update: format!("{select} WHERE {id} = {} FOR UPDATE", ph(1)),
            insert: format!(
                "INSERT INTO {t} ({id}, {key}, {secret}, {enabled}, {settings}) VALUES ({}, {}, {}, {}, {})",
                ph(1),
                ph(2),
                ph(3),
                ph(4),
                settings_value(5)
            ),
            update: format!(
                "UPDATE {t} SET {key} = {}, {secret} = {}, {enabled} = {}, {settings} = {}, \
                 {updated_at} = CURRENT_TIMESTAMP WHERE {id} = {}",
                ph(1),
                ph(2),
                ph(3),
                settings_value(4),
                ph(5)
            ),
            disable: format!(
                "UPDATE {t} SET {enabled} = FALSE, {updated_at} = CURRENT_TIMESTAMP WHERE {id} = {}",
                ph(1)
            ),
            delete: format!("DELETE FROM {t} WHERE {id} = {}", ph(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_per_dialect() {
        let pg = Statements::new(SqlDriver::Postgres, "herald.apps");
        assert!(pg.select_all.contains("FROM \"herald\".\"apps\""), "{}", pg.select_all);
        assert!(pg.by_key.ends_with("WHERE \"key\" = $1"), "{}", pg.by_key);
        let my = Statements::new(SqlDriver::Mysql, "apps");
        assert!(my.select_all.contains("FROM `apps`"), "{}", my.select_all);
        assert!(my.by_key.ends_with("WHERE `key` = ?"), "{}", my.by_key);
        assert!(my.update.contains("`updated_at` = CURRENT_TIMESTAMP"), "{}", my.update);
    }

    #[test]
    fn url_problems_do_not_echo_the_url() {
        let err = check_url(SqlDriver::Postgres, "postgres://u:hunter2@h/d?sslmode=maybe").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
