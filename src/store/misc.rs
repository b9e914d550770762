//! XCom, variables, pools, processes (liveness for crash recovery), audit log and history
//! clean-up.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, opt_time, time, to_us};

/// One XCom value of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct XComRow {
    /// Task that pushed it.
    pub task_id: String,
    /// Its map index (-1 unless mapped).
    pub map_index: i64,
    /// Key (`return_value` for a task's result).
    pub key: String,
    /// The JSON value.
    pub value: serde_json::Value,
}

/// One row of `import_error`.
pub type ImportErrorRow = crate::dag::LoadError;

/// One pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    /// Name tasks refer to with `pool:`.
    pub name: String,
    /// Slots in total.
    pub slots: i64,
    /// Free text.
    pub description: String,
}

/// A scheduler or worker process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow {
    /// Unique id (`host:pid:start`).
    pub id: String,
    /// `scheduler`, `worker` or `standalone`.
    pub kind: String,
    /// Host it runs on.
    pub hostname: String,
    /// Its pid on that host.
    pub pid: i64,
    /// Last sign of life.
    pub heartbeat_at: DateTime<Utc>,
    /// Set on a clean shutdown.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// Rows deleted per statement by [`Store::clean_before`]: small enough that the scheduler's
/// writes interleave with the clean-up instead of waiting for one huge delete.
const CLEAN_BATCH: i64 = 500;

impl Store {
    /// Every XCom of a run.
    pub async fn run_xcoms(&self, run_pk: i64) -> Result<Vec<XComRow>> {
        let rows = sqlx::query(
            "SELECT task_id, map_index, key, value FROM xcom WHERE run_pk = $1 \
             ORDER BY task_id, map_index",
        )
        .bind(run_pk)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(XComRow {
                    task_id: r.try_get("task_id")?,
                    map_index: r.try_get("map_index")?,
                    key: r.try_get("key")?,
                    value: super::json_col(r, "value")?,
                })
            })
            .collect()
    }

    /// A variable's value.
    pub async fn get_variable(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM variable WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Creates or replaces a variable.
    pub async fn set_variable(&self, key: &str, value: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO variable (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(to_us(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every pool.
    pub async fn list_pools(&self) -> Result<Vec<PoolRow>> {
        let rows = sqlx::query("SELECT name, slots, description FROM pool ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PoolRow {
                    name: r.try_get("name")?,
                    slots: r.try_get("slots")?,
                    description: r.try_get("description")?,
                })
            })
            .collect()
    }

    /// Creates or resizes a pool.
    pub async fn set_pool(&self, name: &str, slots: i64, description: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO pool (name, slots, description) VALUES ($1, $2, $3) ON CONFLICT (name) \
             DO UPDATE SET slots = excluded.slots, description = excluded.description",
        )
        .bind(name)
        .bind(slots)
        .bind(description)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Registers a process (or renews its heartbeat).
    pub async fn heartbeat(&self, p: &ProcessRow, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO process (id, kind, hostname, pid, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO UPDATE SET heartbeat_at = $5",
        )
        .bind(&p.id)
        .bind(&p.kind)
        .bind(&p.hostname)
        .bind(p.pid)
        .bind(to_us(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Marks a process as cleanly stopped.
    pub async fn process_stopped(&self, id: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE process SET stopped_at = $1 WHERE id = $2")
            .bind(to_us(now))
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Processes not marked stopped.
    pub async fn live_processes(&self) -> Result<Vec<ProcessRow>> {
        let rows = sqlx::query(
            "SELECT id, kind, hostname, pid, heartbeat_at, stopped_at FROM process \
             WHERE stopped_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProcessRow {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    hostname: r.try_get("hostname")?,
                    pid: r.try_get("pid")?,
                    heartbeat_at: time(r, "heartbeat_at")?,
                    stopped_at: opt_time(r, "stopped_at")?,
                })
            })
            .collect()
    }

    /// Deletes finished runs that ended before `cutoff` (their task instances, tries and XCom
    /// go with them), in batches of [`CLEAN_BATCH`] runs, each its own short transaction.
    /// Returns the (dag_id, run_id) of the deleted runs so their log folders can go too.
    pub async fn clean_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<(String, String)>> {
        let mut deleted = Vec::new();
        // Bounded: each pass deletes up to a batch, and the number of passes is capped by the
        // row count seen at the start.
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM dag_run WHERE state IN ('success', 'failed') AND end_date < $1",
        )
        .bind(to_us(cutoff))
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        for _ in 0..=(total / CLEAN_BATCH) {
            let mut tx = self.write_tx().await?;
            let rows = sqlx::query(
                "SELECT id, dag_id, run_id FROM dag_run WHERE state IN ('success', 'failed') \
                 AND end_date < $1 ORDER BY id LIMIT $2",
            )
            .bind(to_us(cutoff))
            .bind(CLEAN_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                // Children first: SQLite enforces foreign keys only when asked, so do not rely
                // on ON DELETE CASCADE alone.
                for sql in [
                    "DELETE FROM xcom WHERE run_pk = $1",
                    "DELETE FROM task_try WHERE ti_id IN (SELECT id FROM task_instance WHERE run_pk = $1)",
                    "DELETE FROM task_instance WHERE run_pk = $1",
                    "DELETE FROM dag_run WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
                deleted.push((r.try_get("dag_id")?, r.try_get("run_id")?));
            }
            tx.commit().await?;
        }
        Ok(deleted)
    }

    /// Every variable, by key (small: read once per try for templates).
    pub async fn list_variables(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM variable").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("key")?, r.try_get("value")?))).collect()
    }
}
