//! What admins manage besides users: connections (stored encrypted) and the audit log.
//! Variables and pools have files of their own.
//!
//! Invariant: a connection's URI reaches this module already encrypted (see `crate::secrets`);
//! the store never holds it in clear text.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, StoreError, time, to_us};

/// One stored connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRow {
    /// Id tasks refer to (`kafka_default`).
    pub conn_id: String,
    /// Scheme of the URI (`postgres`, `kafka`, `s3`...), for display.
    pub conn_type: String,
    /// Free text.
    pub description: String,
    /// The URI, encrypted by `crate::secrets::SecretBox`.
    pub uri_encrypted: String,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Primary key (newest first when listing).
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it (`cli` for the command line).
    pub username: String,
    /// What was done (`trigger`, `clear`, `dag_file_saved`, ...).
    pub event: String,
    /// The DAG concerned.
    pub dag_id: Option<String>,
    /// The run concerned.
    pub run_id: Option<String>,
    /// The task concerned.
    pub task_id: Option<String>,
    /// Details (a file name, a new state, a user name).
    pub extra: Option<String>,
}

/// An audit entry to write.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry<'a> {
    /// Who did it.
    pub username: &'a str,
    /// What was done.
    pub event: &'a str,
    /// The DAG concerned.
    pub dag_id: Option<&'a str>,
    /// The run concerned.
    pub run_id: Option<&'a str>,
    /// The task concerned.
    pub task_id: Option<&'a str>,
    /// Its map index.
    pub map_index: Option<i64>,
    /// Details.
    pub extra: Option<String>,
}

impl Store {
    /// Creates or replaces a connection.
    pub async fn set_connection(&self, c: &ConnectionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO connection (conn_id, conn_type, description, uri_encrypted, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (conn_id) DO UPDATE SET \
             conn_type = excluded.conn_type, description = excluded.description, \
             uri_encrypted = excluded.uri_encrypted, updated_at = excluded.updated_at",
        )
        .bind(&c.conn_id)
        .bind(&c.conn_type)
        .bind(&c.description)
        .bind(&c.uri_encrypted)
        .bind(to_us(c.updated_at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every stored connection, by id.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionRow>> {
        let rows = sqlx::query(
            "SELECT conn_id, conn_type, description, uri_encrypted, updated_at FROM connection \
             ORDER BY conn_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConnectionRow {
                    conn_id: r.try_get("conn_id")?,
                    conn_type: r.try_get("conn_type")?,
                    description: r.try_get("description")?,
                    uri_encrypted: r.try_get("uri_encrypted")?,
                    updated_at: time(r, "updated_at")?,
                })
            })
            .collect()
    }

    /// One stored connection's encrypted URI.
    pub async fn connection_uri(&self, conn_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT uri_encrypted FROM connection WHERE conn_id = $1")
            .bind(conn_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("uri_encrypted")).transpose()?)
    }

    /// Deletes a connection; `NotFound` if there was none.
    pub async fn delete_connection(&self, conn_id: &str) -> Result<()> {
        self.delete_one("DELETE FROM connection WHERE conn_id = $1", conn_id, "connection").await
    }

    pub(super) async fn delete_one(&self, sql: &str, key: &str, what: &str) -> Result<()> {
        let done = sqlx::query(sql).bind(key).execute(&self.writer).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("{what} `{key}`")));
        }
        Ok(())
    }

    /// Appends an entry to the audit log.
    pub async fn record_audit(&self, e: &AuditEntry<'_>, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, username, event, dag_id, run_id, task_id, map_index, extra) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(to_us(now))
        .bind(e.username)
        .bind(e.event)
        .bind(e.dag_id)
        .bind(e.run_id)
        .bind(e.task_id)
        .bind(e.map_index)
        .bind(e.extra.as_deref())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Audit entries, newest first, older than `before_id` when paging; optionally of one DAG.
    pub async fn list_audit(
        &self,
        dag_id: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT id, at, username, event, dag_id, run_id, task_id, extra FROM audit_log \
             WHERE ($1 IS NULL OR dag_id = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(dag_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: time(r, "at")?,
                    username: r.try_get("username")?,
                    event: r.try_get("event")?,
                    dag_id: r.try_get("dag_id")?,
                    run_id: r.try_get("run_id")?,
                    task_id: r.try_get("task_id")?,
                    extra: r.try_get("extra")?,
                })
            })
            .collect()
    }
}
