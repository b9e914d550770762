//! Connection settings from a [`Connection`] for each dialect, and the [`Stopper`] that stops a
//! session's running statement from outside it.
//!
//! Invariant: every session is in UTC; a stop reaches the server (a second connection for
//! PostgreSQL and MySQL), not only the client; connection settings never log statements
//! (they may hold values).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection as _, Executor};

use crate::operators::Connection;

/// How to stop this connection's running statement from elsewhere.
#[derive(Clone)]
pub(super) enum Stopper {
    /// A second connection runs `pg_cancel_backend(pid)`.
    Pg(PgConnectOptions, i32),
    /// A second connection runs `KILL QUERY id`.
    My(MySqlConnectOptions, u64),
    /// The progress handler returns "stop" while this is set.
    Lite(Arc<AtomicBool>),
}

impl Stopper {
    /// After a stopped statement returned: SQLite's flag would interrupt the next one too
    /// (the rollback); the servers' stops apply to one statement only.
    pub(super) fn reset(&self) {
        if let Stopper::Lite(flag) = self {
            flag.store(false, Ordering::Relaxed);
        }
    }

    /// Tells the server to stop the running statement. Best effort: a failure to reach the
    /// server is logged by the caller's outcome (the statement's own error).
    pub(super) async fn stop(&self) {
        match self {
            Stopper::Pg(opts, pid) => {
                if let Ok(mut c) = opts.connect().await {
                    let _ =
                        sqlx::query("SELECT pg_cancel_backend($1)").bind(pid).execute(&mut c).await;
                    let _ = c.close().await;
                }
            }
            Stopper::My(opts, id) => {
                if let Ok(mut c) = opts.connect().await {
                    let _ = c.execute(sqlx::raw_sql(&format!("KILL QUERY {id}"))).await;
                    let _ = c.close().await;
                }
            }
            Stopper::Lite(flag) => flag.store(true, Ordering::Relaxed),
        }
    }
}

pub(super) fn pg_options(conn: &Connection) -> PgConnectOptions {
    let mut o = PgConnectOptions::new_without_pgpass()
        .host(conn.host.as_deref().unwrap_or("localhost"))
        .port(conn.port.unwrap_or(5432))
        .application_name("updraft")
        .options([("TimeZone", "UTC")]);
    if let Some(u) = &conn.login {
        o = o.username(u);
    }
    if let Some(p) = &conn.password {
        o = o.password(p);
    }
    if let Some(db) = &conn.schema {
        o = o.database(db);
    }
    o.disable_statement_logging()
}

pub(super) fn mysql_options(conn: &Connection) -> MySqlConnectOptions {
    // sqlx would otherwise add PIPES_AS_CONCAT to the session's sql_mode: `||` must keep the
    // server's meaning. The time zone is UTC (sqlx's default, kept explicitly).
    let mut o = MySqlConnectOptions::new()
        .host(conn.host.as_deref().unwrap_or("localhost"))
        .port(conn.port.unwrap_or(3306))
        .pipes_as_concat(false)
        .timezone(Some("+00:00".to_string()));
    if let Some(u) = &conn.login {
        o = o.username(u);
    }
    if let Some(p) = &conn.password {
        o = o.password(p);
    }
    if let Some(db) = &conn.schema {
        o = o.database(db);
    }
    o.disable_statement_logging()
}

/// `sqlite:///abs/file.db`, `sqlite://rel/file.db` (relative to the working directory) or
/// `sqlite::memory:`; the file is created when missing.
pub(super) fn sqlite_options(conn: &Connection) -> SqliteConnectOptions {
    let path = match (&conn.host, &conn.schema) {
        (None, Some(s)) if s == ":memory:" => ":memory:".to_string(),
        (Some(h), Some(s)) => format!("{h}/{s}"),
        (Some(h), None) => h.clone(),
        (None, Some(s)) => format!("/{s}"),
        (None, None) => ":memory:".to_string(),
    };
    SqliteConnectOptions::new().filename(path).create_if_missing(true).disable_statement_logging()
}
