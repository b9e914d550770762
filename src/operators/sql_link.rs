//! The user databases of the table source and sink (`sql_to_kafka`, `kafka_to_sql`): a small
//! pool from a `postgres://`, `mysql://` or `sqlite://` connection, the dialect (the SQL
//! layer's, `operators::sql`) with its identifier quoting and placeholders, and what the
//! catalog says about a table (its columns, their types, its primary key).
//!
//! Why the sink writes through a pool of its own rather than the SQL layer's one-statement
//! `Db` session: it tells a row the database refuses (a dead letter) from a table or
//! connection problem (a failed try) by the error's SQLSTATE and kind, which `Db`'s errors do
//! not carry; and it runs the same statement text thousands of times, which a pool keeps
//! prepared (`Db` prepares each statement afresh). The source reads the catalog here, then
//! polls through `Db`, which reads its rows as the `sql` task does (one poll a batch, so a
//! prepare per poll costs nothing). Dialects, schemes and quoting are the layer's.
//!
//! Invariants: identifiers reach SQL text only through [`SqlText::quote`] (the layer's
//! `quote_identifier`), after the DAG parser accepted them by the same rule; values are always
//! bound parameters. Sessions run in UTC, so timestamps without a zone mean the same on every
//! connection.

use std::time::Duration;

use reqwest::Url;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};

use super::{Connection, OperatorError, TaskContext};

pub use super::sql::Dialect;
use super::sql::{Db, quote_identifier};

/// What the table source and sink write into SQL text, per dialect.
pub trait SqlText {
    /// `name` (or `schema.name`) quoted as an identifier by the SQL layer's one quoting
    /// rule. Every name given here passed that rule at load time (`parse/kind_sql_kafka.rs`)
    /// or at start ([`cast_type`]); were one to fail anyway, it becomes nothing, and the
    /// statement a syntax error rather than text from elsewhere.
    fn quote(self, name: &str) -> String;
    /// The `n`th (1-based) bind placeholder.
    fn placeholder(self, n: usize) -> String;
}

impl SqlText for Dialect {
    fn quote(self, name: &str) -> String {
        quote_identifier(name, self).unwrap_or_default()
    }

    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::MySql | Dialect::Sqlite => "?".to_string(),
        }
    }
}

/// The URI sqlx connects to, rebuilt from the parsed connection.
fn url_of(conn: &Connection, dialect: Dialect) -> Result<String, OperatorError> {
    let scheme = match dialect {
        Dialect::Postgres => "postgres",
        Dialect::MySql => "mysql",
        Dialect::Sqlite => "sqlite",
    };
    let bad = |what: &str| {
        OperatorError::Fatal(format!("connection `{}`: cannot use its {what}", conn.conn_id))
    };
    if dialect == Dialect::Sqlite {
        let path = conn.schema.as_deref().unwrap_or_default();
        let host = conn.host.as_deref().unwrap_or_default();
        return Ok(format!("sqlite://{host}/{path}?mode=rwc"));
    }
    let host = conn.host.as_deref().unwrap_or("127.0.0.1");
    let mut url = Url::parse(&format!("{scheme}://{host}")).map_err(|_| bad("host"))?;
    url.set_port(conn.port).map_err(|()| bad("port"))?;
    if let Some(login) = &conn.login {
        url.set_username(login).map_err(|()| bad("login"))?;
    }
    url.set_password(conn.password.as_deref()).map_err(|()| bad("password"))?;
    url.set_path(conn.schema.as_deref().unwrap_or_default());
    for (k, v) in &conn.extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    Ok(url.to_string())
}

/// A small pool to the database of connection `conn_id`, with UTC sessions.
pub async fn connect(
    ctx: &TaskContext,
    conn_id: &str,
    field: &str,
) -> Result<(AnyPool, Dialect), OperatorError> {
    let conn = ctx.connection(conn_id)?;
    let dialect = Db::dialect_of(&conn).map_err(|e| {
        OperatorError::Fatal(format!("`{field}` of task `{}`: {e}", ctx.task.task_id))
    })?;
    let url = url_of(&conn, dialect)?;
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        // One connection writes or reads at a time; the second serves the catalog lookups
        // and the row-by-row retry of a refused batch.
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                match dialect {
                    Dialect::Postgres => conn.execute("SET TIME ZONE 'UTC'").await?,
                    Dialect::MySql => conn.execute("SET time_zone = '+00:00'").await?,
                    Dialect::Sqlite => return Ok(()),
                };
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| {
            OperatorError::Retryable(format!("cannot connect to connection `{conn_id}`: {e}"))
        })?;
    Ok((pool, dialect))
}

/// One column of a table, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type, lower-case (`bigint`, `timestamp with time zone`, `datetime`, ...).
    pub data_type: String,
    /// On PostgreSQL, the type as a name a CAST accepts (`"pg_catalog"."int8"`), which also
    /// covers arrays and user-defined types; `None` elsewhere.
    pub cast_type: Option<String>,
}

/// Splits `schema.table`.
fn split_table(table: &str) -> (Option<&str>, &str) {
    match table.split_once('.') {
        Some((s, t)) => (Some(s), t),
        None => (None, table),
    }
}

/// A catalog query bound to the table's schema (none on SQLite, which has one) and name.
fn catalog_query<'q>(
    sql: &'q str,
    dialect: Dialect,
    schema: Option<&str>,
    name: &str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let q = sqlx::query(sql);
    let q = match dialect {
        Dialect::Sqlite => q,
        Dialect::Postgres | Dialect::MySql => q.bind(schema.map(str::to_string)),
    };
    q.bind(name.to_string())
}

/// The columns of `table` in their order; empty when there is no such table.
pub async fn columns(
    pool: &AnyPool,
    dialect: Dialect,
    table: &str,
) -> Result<Vec<Column>, OperatorError> {
    let (schema, name) = split_table(table);
    let sql = match dialect {
        Dialect::Postgres => {
            "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT), CAST(udt_schema AS TEXT), \
             CAST(udt_name AS TEXT) FROM information_schema.columns \
             WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 \
             ORDER BY ordinal_position"
        }
        Dialect::MySql => {
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), '', '' \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION"
        }
        Dialect::Sqlite => {
            "SELECT name, lower(type), '', '' FROM pragma_table_info(?) ORDER BY cid"
        }
    };
    let rows = catalog_query(sql, dialect, schema, name).fetch_all(pool).await.map_err(|e| {
        OperatorError::Retryable(format!("cannot read the columns of `{table}`: {e}"))
    })?;
    rows.iter()
        .map(|r| {
            let get = |i: usize| r.try_get::<String, _>(i);
            let (name, data_type, udt_schema, udt) = (get(0)?, get(1)?, get(2)?, get(3)?);
            let cast_type = (dialect == Dialect::Postgres).then(|| {
                format!(
                    "{}.{}",
                    Dialect::Postgres.quote(&udt_schema),
                    Dialect::Postgres.quote(&udt)
                )
            });
            Ok(Column { name, data_type: data_type.to_lowercase(), cast_type })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e: sqlx::Error| OperatorError::Fatal(format!("the catalog of `{table}`: {e}")))
}

/// The primary-key columns of `table`, in key order (empty without one).
pub async fn primary_key(
    pool: &AnyPool,
    dialect: Dialect,
    table: &str,
) -> Result<Vec<String>, OperatorError> {
    let (schema, name) = split_table(table);
    let sql = match dialect {
        Dialect::Postgres => {
            "SELECT CAST(k.column_name AS TEXT) FROM information_schema.table_constraints c \
             JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name \
             AND k.table_schema = c.table_schema AND k.table_name = c.table_name \
             WHERE c.constraint_type = 'PRIMARY KEY' \
             AND c.table_schema = COALESCE($1, current_schema()) AND c.table_name = $2 \
             ORDER BY k.ordinal_position"
        }
        Dialect::MySql => {
            "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.KEY_COLUMN_USAGE \
             WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA = COALESCE(?, DATABASE()) \
             AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
        }
        Dialect::Sqlite => "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk",
    };
    let rows = catalog_query(sql, dialect, schema, name)
        .fetch_all(pool)
        .await
        .map_err(|e| OperatorError::Retryable(format!("cannot read the key of `{table}`: {e}")))?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(|e| OperatorError::Fatal(format!("the catalog of `{table}`: {e}")))
}

/// The column named `name`, or a fatal error naming the task, the field and the column.
pub fn find<'a>(
    cols: &'a [Column],
    name: &str,
    task_id: &str,
    field: &str,
    table: &str,
) -> Result<&'a Column, OperatorError> {
    cols.iter().find(|c| c.name == name).ok_or_else(|| {
        let known: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        OperatorError::Fatal(format!(
            "`{field}` of task `{task_id}` names column `{name}`, which table `{table}` does \
             not have (it has: {})",
            known.join(", ")
        ))
    })
}

/// The table's columns, or a fatal error when the table does not exist.
pub async fn existing_columns(
    pool: &AnyPool,
    dialect: Dialect,
    table: &str,
    task_id: &str,
) -> Result<Vec<Column>, OperatorError> {
    let cols = columns(pool, dialect, table).await?;
    if cols.is_empty() {
        return Err(OperatorError::Fatal(format!(
            "`table` of task `{task_id}`: table `{table}` does not exist (or this login cannot \
             see it)"
        )));
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_placeholders() {
        assert_eq!(Dialect::Postgres.quote("s.t"), "\"s\".\"t\"");
        assert_eq!(Dialect::MySql.quote("t"), "`t`");
        assert_eq!(Dialect::Postgres.placeholder(3), "$3");
        assert_eq!(Dialect::MySql.placeholder(3), "?");
    }

    #[test]
    fn urls_from_connections() {
        let conn = Connection::parse("db", "mysql://u:p%40ss@127.0.0.1:3306/mart").unwrap();
        assert_eq!(url_of(&conn, Dialect::MySql).unwrap(), "mysql://u:p%40ss@127.0.0.1:3306/mart");
        let conn = Connection::parse("db", "sqlite:///tmp/x.db").unwrap();
        assert_eq!(url_of(&conn, Dialect::Sqlite).unwrap(), "sqlite:///tmp/x.db?mode=rwc");
    }
}
