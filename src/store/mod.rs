//! The metadata database: the only SQL in the crate.
//!
//! One API in domain terms over SQLite (standalone) and PostgreSQL (separate processes). Both
//! share their queries through sqlx's `Any` driver and differ only where the dialect must:
//! write transactions (`BEGIN IMMEDIATE` on SQLite; on PostgreSQL, queueing runs under one
//! transaction advisory lock, `queue::QUEUE_LOCK`, shared by every scheduler). A worker claims
//! a queued try by a compare-and-set (`start_try`: queued -> running), not by row locks.
//!
//! Invariants:
//! - The store persists what it is given; it never decides a state (that is `model`'s job).
//!   The one exception is the compare-and-set guard in every state write: a write names the
//!   state (and try) it expects to leave, and reports whether it happened.
//! - Times are stored as microseconds since the Unix epoch in BIGINT columns, flags as 0/1
//!   BIGINTs: the `Any` driver has no portable timestamp or boolean type, and integers sort
//!   and compare identically on both databases.

mod actions;
mod admin;
mod assets;
mod backfills;
mod browse;
mod claims;
mod clean;
mod cursors;
mod dags;
mod deadlines;
mod group;
mod ids;
mod migrations;
mod notifications;
mod packed;
mod pools;
mod processes;
mod queue;
mod runs;
mod stops;
mod tis;
mod tries;
mod users;
mod variables;
mod views;
mod workers_view;
mod xcom;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub use crate::model::{RunPk, TiId};
pub use actions::{NoteOn, TiChange};
pub use admin::{AuditEntry, AuditRow, ConnectionRow};
pub use assets::{
    ASSETS_CHANNEL, AssetEventRow, AssetQueue, AssetSummary, AssetUseRow, EventSource, EventsOf,
    NewAssetEvent, TRIGGERING_EVENTS_SHOWN,
};
pub use backfills::{BackfillGate, BackfillRow, NewBackfill};
pub use browse::{RunFilter, TiFilter};
pub use claims::{ENDED_CHANNEL, QUEUED_CHANNEL, listen};
pub use dags::{DagRecord, DagVersion, DagVersionInfo, VERSIONS_SHOWN};
pub use deadlines::DeadlineRow;
pub use notifications::{Delivery, NotificationRow, Notify};
pub use pools::PoolRow;
pub use processes::ProcessRow;
pub use xcom::XComRow;

/// One row of `import_error`.
pub type ImportErrorRow = crate::dag::LoadError;
pub use queue::QueueCaps;
pub use runs::{NewRun, RunRow};
pub use stops::PendingStop;
pub use tis::{NewTi, TiRow, TiUpdate};
pub use tries::{FinishTry, TryProcess, TryRow};
pub use users::{SessionUser, TokenRow, UserRow};
pub use views::{DagColumn, DagFilter, DagOrder, DagSummary, GridCell, RunDot};

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no database kind Updraft supports.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER:PASS@HOST/DB")]
    UnsupportedUrl(String),
    /// A stored value does not parse (a state name, a JSON column).
    #[error("corrupt value in column `{column}`: {message}")]
    Corrupt {
        /// Column holding the value.
        column: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique key is already taken (e.g. a run id).
    #[error("{0} already exists")]
    Conflict(String),
    /// The database's schema is not the one this build writes.
    #[error("{0}")]
    Schema(String),
    /// A write handed to another task never answered (that task stopped): it may or may not
    /// have been committed, as with a connection lost during a commit.
    #[error("{0} did not answer")]
    Unanswered(&'static str),
}

impl StoreError {
    /// Whether the database could not be reached or dropped the connection (a restart, a
    /// network cut, a pool out of connections), so the same statement may succeed later;
    /// false for what no retry changes (a refused statement, a corrupt value).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::Protocol(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                // SQLSTATE class 08: connection exception; 57P0x: the server is shutting down
                // or starting; 53300: too many connections.
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0") || c == "53300"),
                _ => false,
            },
            StoreError::Unanswered(_) => true,
            _ => false,
        }
    }
}

/// The file of a `sqlite:` URL; None for in-memory databases.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:" && !url.contains("mode=memory")).then(|| path.into())
}

/// Creates the SQLite database file with mode 0600 before SQLite does (it would use 0644 and
/// copy that to its `-wal` and `-shm` files), and takes group and other access away from an
/// existing one: the database holds password hashes, sessions and encrypted connections.
fn private_sqlite_files(url: &str) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let Some(db) = sqlite_path(url).filter(|_| !url.contains("mode=ro")) else { return Ok(()) };
    let io = |e: std::io::Error| StoreError::Db(sqlx::Error::Io(e));
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&db).map_err(io)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            let mode = meta.permissions().mode() & 0o700;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        }
    }
    Ok(())
}

/// Result of the store layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A single file; one process (standalone).
    Sqlite,
    /// A server; any number of processes.
    Postgres,
}

/// Handle on the metadata database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Reads, and on PostgreSQL writes too.
    pool: AnyPool,
    /// On SQLite, a one-connection pool that serialises writers inside this process, so
    /// writers queue in Rust instead of failing with SQLITE_BUSY. On PostgreSQL the same pool.
    writer: AnyPool,
    backend: Backend,
    /// The start and end of tries, written in batches (`group.rs`).
    group: std::sync::Arc<group::Group>,
    /// Woken when this process committed asset events (`assets.rs`).
    assets_changed: std::sync::Arc<tokio::sync::Notify>,
    /// Woken when this process committed notifications (`notifications.rs`).
    notifications_changed: std::sync::Arc<tokio::sync::Notify>,
    /// Woken when this process wrote deadlines (`deadlines.rs`).
    deadlines_changed: std::sync::Arc<tokio::sync::Notify>,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        match backend {
            Backend::Sqlite => {
                private_sqlite_files(url)?;
                let url =
                    if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
                // A connection to a local file cannot go stale: no ping before each use (a
                // round trip to the connection's thread per statement of the hot path).
                let options = || {
                    AnyPoolOptions::new().test_before_acquire(false).after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; NORMAL sync is durable
                            // across process crashes (only an OS crash may lose the last
                            // commits); the busy timeout covers other processes (the CLI).
                            conn.execute(
                                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                                 PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                };
                let writer = options().max_connections(1).connect(&url).await?;
                let pool = options().max_connections(4).connect(&url).await?;
                Ok(Store {
                    pool,
                    writer,
                    backend,
                    group: Default::default(),
                    assets_changed: Default::default(),
                    notifications_changed: Default::default(),
                    deadlines_changed: Default::default(),
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?;
                Ok(Store {
                    writer: pool.clone(),
                    pool,
                    backend,
                    group: Default::default(),
                    assets_changed: Default::default(),
                    notifications_changed: Default::default(),
                    deadlines_changed: Default::default(),
                })
            }
        }
    }

    /// Applies the migrations of this backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        migrations::run(self.backend, &self.writer).await?;
        Ok(())
    }

    /// Checks, without migrating, that the database's schema is the one this build writes: a
    /// worker runs beside a scheduler that migrates, and must not write to a schema it does
    /// not know (nor run before the scheduler migrated).
    pub async fn check_schema(&self) -> Result<()> {
        let (ours, applied) = migrations::versions(self.backend, &self.pool).await?;
        match applied {
            Some(v) if v == ours => Ok(()),
            Some(v) if v > ours => Err(StoreError::Schema(format!(
                "the database schema is at version {v}, newer than this build's {ours}: run the \
                 same Updraft version as the scheduler"
            ))),
            v => Err(StoreError::Schema(format!(
                "the database schema is at version {}, this build needs {ours}: run `updraft db \
                 migrate` (or start the scheduler of this version) first",
                v.unwrap_or(0)
            ))),
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (waits for in-flight queries).
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that upgrades later can fail with SQLITE_BUSY.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }
}

/// Microseconds since the epoch, the stored form of a time.
pub fn to_us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The time a stored value stands for.
pub fn from_us(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Ids one `IN (...)` list binds at most: well inside every backend's bound on parameters.
const IN_LIST_MAX: usize = 500;

/// `$first, $first + 1, …`: `n` numbered placeholders for an `IN (...)` list.
fn placeholders(first: usize, n: usize) -> String {
    let numbered: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    numbered.join(", ")
}

fn opt_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(from_us))
}

fn time(row: &AnyRow, col: &str) -> Result<DateTime<Utc>> {
    Ok(from_us(row.try_get::<i64, _>(col)?))
}

fn parse_col<T: FromStr<Err = String>>(row: &AnyRow, col: &'static str) -> Result<T> {
    let text: String = row.try_get(col)?;
    text.parse().map_err(|message| StoreError::Corrupt { column: col, message })
}

fn json_col<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &'static str) -> Result<T> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt { column: col, message: e.to_string() })
}

/// Maps a unique-key violation to [`StoreError::Conflict`] naming `what`.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Db(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite:///a/b.db?mode=rwc"), Some("/a/b.db".into()));
        assert_eq!(sqlite_path("sqlite://./x.db"), Some("./x.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite://file?mode=memory"), None);
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }

    #[tokio::test]
    async fn the_database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("updraft.db");
        let store = Store::open(&format!("sqlite://{}", db.display())).await.expect("open");
        store.paused_dags().await.expect("a query, so the WAL exists");
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", db.display());
            let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
        // An existing database open to others is tightened on the next open.
        drop(store);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        Store::open(&format!("sqlite://{}", db.display())).await.expect("reopen");
        let mode = std::fs::metadata(&db).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
