//! Scheduler and worker processes: heartbeats and clean stops, the liveness crash recovery
//! reads.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, opt_time, time, to_us};

/// A scheduler or worker process.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// A worker's queues (empty for other kinds).
    pub queues: Vec<String>,
    /// A worker's slots.
    pub slots: Option<i64>,
    /// A worker's running tries, as of its last heartbeat.
    pub running: Option<i64>,
    /// Instances a worker claimed since it started.
    pub claims: i64,
    /// Lease renewals a worker made since it started.
    pub lease_renewals: i64,
}

impl ProcessRow {
    /// Whether this process takes tries of `queue`: a worker that serves it, or any process
    /// that runs tries itself (a local executor's serves every queue).
    pub fn serves(&self, queue: &str) -> bool {
        self.kind != "worker" || self.queues.iter().any(|q| q == queue)
    }
}

impl Store {
    /// Registers a process (or renews its heartbeat).
    pub async fn heartbeat(&self, p: &ProcessRow, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO process (id, kind, hostname, pid, started_at, heartbeat_at, queues, \
             slots, running, claims, lease_renewals) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = $5, running = $8, claims = $9, \
             lease_renewals = $10",
        )
        .bind(&p.id)
        .bind(&p.kind)
        .bind(&p.hostname)
        .bind(p.pid)
        .bind(to_us(now))
        .bind((!p.queues.is_empty()).then(|| p.queues.join(",")))
        .bind(p.slots)
        .bind(p.running)
        .bind(p.claims)
        .bind(p.lease_renewals)
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

    /// Marks a process as dead: its heartbeat stopped (recovery takes its task instances).
    pub async fn process_lost(&self, id: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE process SET stopped_at = $1, lost = 1 WHERE id = $2 AND stopped_at IS NULL",
        )
        .bind(to_us(now))
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Workers, live first then the most recently stopped, at most `limit`: the workers page
    /// and `/metrics`. Each with whether it was declared dead.
    pub async fn workers(&self, limit: i64) -> Result<Vec<(ProcessRow, bool)>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROCESS_COLS}, lost FROM process WHERE kind = 'worker' \
             ORDER BY stopped_at IS NOT NULL, COALESCE(stopped_at, heartbeat_at) DESC, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((process_row(r)?, r.try_get::<i64, _>("lost")? != 0))).collect()
    }

    /// Processes not marked stopped.
    pub async fn live_processes(&self) -> Result<Vec<ProcessRow>> {
        let rows =
            sqlx::query(&format!("SELECT {PROCESS_COLS} FROM process WHERE stopped_at IS NULL"))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(process_row).collect()
    }
}

const PROCESS_COLS: &str = "id, kind, hostname, pid, heartbeat_at, stopped_at, queues, slots, \
    running, claims, lease_renewals";

fn process_row(r: &sqlx::any::AnyRow) -> Result<ProcessRow> {
    Ok(ProcessRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        hostname: r.try_get("hostname")?,
        pid: r.try_get("pid")?,
        heartbeat_at: time(r, "heartbeat_at")?,
        stopped_at: opt_time(r, "stopped_at")?,
        queues: r
            .try_get::<Option<String>, _>("queues")?
            .map(|q| q.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        slots: r.try_get("slots")?,
        running: r.try_get("running")?,
        claims: r.try_get("claims")?,
        lease_renewals: r.try_get("lease_renewals")?,
    })
}
