//! Scheduler and worker processes: heartbeats and clean stops, the liveness crash recovery
//! reads.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, opt_time, time, to_us};

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

impl Store {
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
}
