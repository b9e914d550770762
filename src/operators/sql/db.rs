//! One connection to a user's SQL database (PostgreSQL, MySQL/MariaDB, SQLite), for the SQL
//! task types: connect from a named [`Connection`], run statements with bound values and
//! stream their rows as JSON, transactions, and cancellation **on the server**.
//!
//! How to use it (a task type that reads or writes SQL):
//! ```ignore
//! let conn = ctx.connection(&task.connection)?;
//! let mut db = Db::connect(&conn).await?;                 // session in UTC
//! let d = db.dialect();
//! let bound = rewrite("INSERT INTO :!t (a) VALUES (:a)", d, &|n| n == "a", &idents)?;
//! db.begin().await?;
//! let n = db.execute(&bound.sql, &[json!("x")], &ctx.cancel, &mut |_row| Ok(())).await?;
//! db.commit().await?;
//! ```
//! `execute` takes SQL with the dialect's placeholders (`$1` / `?`, as `rewrite` makes them)
//! and one JSON value per placeholder; rows go to the sink one at a time, so a caller decides
//! what to keep. A fired cancellation token stops the statement on the server
//! (`pg_cancel_backend` / `KILL QUERY` from a second connection; SQLite's progress handler
//! interrupts it) and `execute` returns [`DbError::Cancelled`].
//!
//! Invariants: values are bound, never pasted; every session runs in UTC; a statement that was
//! cancelled is no longer running on the server when `execute` returns (bounded wait).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Connection as _, Either, Executor, Row as _, Statement as _};
use tokio_util::sync::CancellationToken;

use super::connect::{Stopper, mysql_options, pg_options, sqlite_options};
use super::values::{self, Cell, bind_typed};
use crate::dag::sql_text::Dialect;
use crate::operators::Connection;

/// Why a database call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DbError {
    /// The connection's scheme is not a SQL database.
    #[error(
        "connection `{conn_id}` has scheme `{scheme}`, which is not a SQL database; use one of \
         postgres://, postgresql://, mysql://, mariadb://, sqlite://"
    )]
    Scheme {
        /// The connection.
        conn_id: String,
        /// Its scheme.
        scheme: String,
    },
    /// Could not connect (down, refused, bad credentials): a retry may help.
    #[error("cannot connect to `{conn_id}`: {reason}")]
    Connect {
        /// The connection.
        conn_id: String,
        /// The driver's reason (never the URI).
        reason: String,
    },
    /// The server refused the statement (syntax, constraint, missing table).
    #[error("{0}")]
    Statement(String),
    /// The connection broke during the statement: a retry may help.
    #[error("{0}")]
    Io(String),
    /// A row could not be read as JSON, or the sink refused it.
    #[error("{0}")]
    Row(String),
    /// The cancellation token fired; the statement was stopped on the server.
    #[error("cancelled; the statement was stopped on the server")]
    Cancelled,
}

impl DbError {
    /// Whether a retry may help: connection problems and broken connections. A refused
    /// statement fails the same way again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Connect { .. } | DbError::Io(_) | DbError::Cancelled)
    }
}

fn statement_error(e: sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Database(d) => DbError::Statement(d.message().to_string()),
        sqlx::Error::Io(e) => DbError::Io(format!("connection lost: {e}")),
        sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => {
            DbError::Io(e.to_string())
        }
        other => DbError::Statement(other.to_string()),
    }
}

enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
    Lite(SqliteConnection),
}

/// One open connection. Not shared: one task try owns it.
pub struct Db {
    dialect: Dialect,
    conn: Conn,
    stopper: Stopper,
}

/// How long a cancelled statement may take to return after the server was told to stop it.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Connection attempts give up after this; the task's retries take it from there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Db {
    /// The dialect of a connection, or the error naming it and its scheme.
    pub fn dialect_of(conn: &Connection) -> Result<Dialect, DbError> {
        Dialect::from_scheme(&conn.conn_type).ok_or_else(|| DbError::Scheme {
            conn_id: conn.conn_id.clone(),
            scheme: conn.conn_type.clone(),
        })
    }

    /// Opens a session on `conn`, in UTC.
    pub async fn connect(conn: &Connection) -> Result<Db, DbError> {
        let dialect = Db::dialect_of(conn)?;
        let fail = |e: sqlx::Error| DbError::Connect {
            conn_id: conn.conn_id.clone(),
            reason: match e {
                sqlx::Error::Database(d) => d.message().to_string(),
                other => other.to_string(),
            },
        };
        let timeout = |_| DbError::Connect {
            conn_id: conn.conn_id.clone(),
            reason: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
        };
        let connect = async {
            Ok::<_, sqlx::Error>(match dialect {
                Dialect::Postgres => {
                    let opts = pg_options(conn);
                    let mut c = opts.connect().await?;
                    let pid: i32 =
                        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut c).await?;
                    let stopper = Stopper::Pg(opts, pid);
                    Db { dialect, conn: Conn::Pg(c), stopper }
                }
                Dialect::MySql => {
                    let opts = mysql_options(conn);
                    let mut c = opts.connect().await?;
                    let id: u64 =
                        sqlx::query_scalar("SELECT CONNECTION_ID()").fetch_one(&mut c).await?;
                    let stopper = Stopper::My(opts, id);
                    Db { dialect, conn: Conn::My(c), stopper }
                }
                Dialect::Sqlite => {
                    let mut c = sqlite_options(conn).connect().await?;
                    let flag = Arc::new(AtomicBool::new(false));
                    let seen = flag.clone();
                    // Checked every 1000 virtual-machine steps: cheap, and a long statement
                    // stops within microseconds of the flag being set.
                    c.lock_handle().await?.set_progress_handler(1000, move || {
                        !seen.load(std::sync::atomic::Ordering::Relaxed)
                    });
                    Db { dialect, conn: Conn::Lite(c), stopper: Stopper::Lite(flag) }
                }
            })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect).await.map_err(timeout)?.map_err(fail)
    }

    /// The dialect this connection speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Starts a transaction.
    pub async fn begin(&mut self) -> Result<(), DbError> {
        let sql = if self.dialect == Dialect::MySql { "START TRANSACTION" } else { "BEGIN" };
        self.simple(sql).await
    }

    /// Commits the transaction.
    pub async fn commit(&mut self) -> Result<(), DbError> {
        self.simple("COMMIT").await
    }

    /// Rolls the transaction back.
    pub async fn rollback(&mut self) -> Result<(), DbError> {
        self.simple("ROLLBACK").await
    }

    async fn simple(&mut self, sql: &str) -> Result<(), DbError> {
        let r = match &mut self.conn {
            Conn::Pg(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
            Conn::My(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
            Conn::Lite(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
        };
        r.map_err(statement_error)
    }

    /// Runs one statement (the dialect's placeholders, one value each in `values`), giving each
    /// row to `sink` as a [`DbRow`] (read by column, or whole as a JSON object); returns the
    /// rows affected (for a query, the rows returned). When `cancel` fires, the statement is
    /// stopped on the server and the result is [`DbError::Cancelled`].
    pub async fn execute(
        &mut self,
        sql: &str,
        values: &[Value],
        cancel: &CancellationToken,
        sink: &mut (dyn FnMut(DbRow<'_>) -> Result<(), String> + Send),
    ) -> Result<u64, DbError> {
        let stopper = self.stopper.clone();
        let run = self.run(sql, values, sink);
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => r,
            () = cancel.cancelled() => {
                stopper.stop().await;
                // The statement now fails on the server; wait for that, bounded, so nothing
                // of it runs on once this returns.
                let _ = tokio::time::timeout(STOP_WAIT, &mut run).await;
                stopper.reset();
                Err(DbError::Cancelled)
            }
        }
    }

    async fn run(
        &mut self,
        sql: &str,
        values: &[Value],
        sink: &mut (dyn FnMut(DbRow<'_>) -> Result<(), String> + Send),
    ) -> Result<u64, DbError> {
        /// Streams one query's results: rows to the sink, affected counts summed.
        macro_rules! stream {
            ($conn:expr, $query:expr, $row:path) => {{
                let mut affected = 0u64;
                let mut rows = 0u64;
                let mut results = $conn.fetch_many($query);
                while let Some(item) = results.try_next().await.map_err(statement_error)? {
                    match item {
                        Either::Left(done) => affected += done.rows_affected(),
                        Either::Right(row) => {
                            rows += 1;
                            sink($row(&row)).map_err(DbError::Row)?;
                        }
                    }
                }
                Ok(if rows > 0 { rows } else { affected })
            }};
        }
        match &mut self.conn {
            Conn::Pg(c) => {
                let sql = pg_typed(c, sql, values.len()).await?;
                let mut q = sqlx::query(&sql).persistent(false);
                for v in values {
                    q = q.bind(values::pg_text(v));
                }
                stream!(c, q, DbRow::Pg)
            }
            // Without values, MySQL gets the text protocol: some statements (CREATE TRIGGER
            // on older servers, LOCK TABLES...) cannot be prepared.
            Conn::My(c) if values.is_empty() => stream!(c, sqlx::raw_sql(sql), DbRow::My),
            Conn::My(c) => {
                let mut q = sqlx::query(sql).persistent(false);
                for v in values {
                    q = bind_typed!(q, v);
                }
                stream!(c, q, DbRow::My)
            }
            Conn::Lite(c) => {
                let mut q = sqlx::query(sql).persistent(false);
                for v in values {
                    q = bind_typed!(q, v);
                }
                stream!(c, q, DbRow::Lite)
            }
        }
    }

    /// Closes the session politely (an open transaction is rolled back by the server).
    pub async fn close(self) {
        let _ = match self.conn {
            Conn::Pg(c) => c.close().await,
            Conn::My(c) => c.close().await,
            Conn::Lite(c) => c.close().await,
        };
    }
}

/// One result row, read by the SQL layer's one mapping of column types to JSON (`values`).
pub enum DbRow<'r> {
    Pg(&'r PgRow),
    My(&'r MySqlRow),
    Lite(&'r SqliteRow),
}

impl<'r> DbRow<'r> {
    /// How many columns the row has.
    pub fn len(&self) -> usize {
        match self {
            DbRow::Pg(r) => r.len(),
            DbRow::My(r) => r.len(),
            DbRow::Lite(r) => r.len(),
        }
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column `i` (0-based, below [`len`](Self::len)), its text borrowed from the row; an
    /// error names the column and its type when that type has no JSON form.
    pub fn cell(&self, i: usize) -> Result<Cell<'r>, String> {
        match self {
            DbRow::Pg(r) => values::pg_cell(r, i),
            DbRow::My(r) => values::mysql_cell(r, i),
            DbRow::Lite(r) => values::sqlite_cell(r, i),
        }
    }

    /// Column `i` as JSON.
    pub fn value(&self, i: usize) -> Result<Value, String> {
        self.cell(i).map(Cell::into_value)
    }

    /// The whole row as a JSON object keyed by column name.
    pub fn to_map(&self) -> Result<Map<String, Value>, String> {
        match self {
            DbRow::Pg(r) => values::row_map(*r, values::pg_cell),
            DbRow::My(r) => values::row_map(*r, values::mysql_cell),
            DbRow::Lite(r) => values::row_map(*r, values::sqlite_cell),
        }
    }
}

/// PostgreSQL receives every value as text; where the server infers another type for a
/// placeholder (an integer column, a date), it becomes `CAST($n AS type)`, the cast every
/// type has from text. One extra round trip (a prepare without types) for statements with
/// values; none without.
async fn pg_typed(c: &mut PgConnection, sql: &str, n: usize) -> Result<String, DbError> {
    if n == 0 {
        return Ok(sql.to_string());
    }
    let stmt = c.prepare_with(sql, &[]).await.map_err(statement_error)?;
    let Some(Either::Left(types)) = stmt.parameters() else { return Ok(sql.to_string()) };
    let casts: Vec<Option<String>> = types
        .iter()
        .map(|t| {
            let name = sqlx::TypeInfo::name(t);
            let plain = name.trim_end_matches("[]");
            let ok = !plain.is_empty()
                && plain.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !plain.starts_with(|c: char| c.is_ascii_digit());
            match name {
                "TEXT" | "UNKNOWN" => Ok(None),
                _ if ok => Ok(Some(name.to_string())),
                _ => Err(DbError::Statement(format!(
                    "a parameter has type `{name}`, which cannot be named in a cast; cast the \
                     parameter yourself, e.g. `CAST(:name AS TEXT)`"
                ))),
            }
        })
        .collect::<Result<_, _>>()?;
    if casts.iter().all(Option::is_none) {
        return Ok(sql.to_string());
    }
    // Placeholders are `$n` tokens in code (rewrite made them); replace them right to left so
    // offsets stay valid.
    let mut out = sql.to_string();
    let lexed: Vec<_> = crate::dag::sql_text::Lexer::new(sql, Dialect::Postgres).collect();
    for (i, t) in lexed.iter().enumerate().rev() {
        if &sql[t.start..t.end] != "$" {
            continue;
        }
        let Some(num) = lexed.get(i + 1).filter(|n| n.start == t.end) else { continue };
        let Ok(k) = sql[num.start..num.end].parse::<usize>() else { continue };
        if let Some(Some(ty)) = casts.get(k.wrapping_sub(1)) {
            out.replace_range(t.start..num.end, &format!("CAST(${k} AS {ty})"));
        }
    }
    Ok(out)
}
