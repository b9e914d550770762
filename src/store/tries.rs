//! Tries of task instances: the compare-and-set writes that start and end a try, and the
//! per-try timings (runnable, queued, started, ended) that make latency measurable per phase.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::tis::{TI_COLS, TiRow, ti_row};
use super::{Result, Store, opt_time, parse_col, to_us};
use crate::model::TaskState;

/// The end of a try, applied only if the instance is still running that try.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishTry {
    /// Task instance primary key.
    pub ti_id: i64,
    /// The try that ends.
    pub try_number: i64,
    /// Final or waiting state decided by `model`.
    pub state: TaskState,
    /// For up_for_retry / up_for_reschedule.
    pub next_try_at: Option<DateTime<Utc>>,
    /// For sensors: when the current try first poked (kept across reschedules).
    pub first_poke_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub end: DateTime<Utc>,
    /// Error message of a failed try.
    pub error: Option<String>,
    /// Rendered template fields (JSON object).
    pub rendered: Option<serde_json::Value>,
    /// Return value, stored as XCom `return_value`.
    pub xcom: Option<serde_json::Value>,
}

/// One row of `task_try`: the timing of one try, for latency per phase.
#[derive(Debug, Clone, PartialEq)]
pub struct TryRow {
    /// Try number (1-based).
    pub try_number: i64,
    /// State the try ended in (running while it runs).
    pub state: TaskState,
    /// Dependencies met.
    pub runnable_at: Option<DateTime<Utc>>,
    /// Handed to the executor.
    pub queued_at: Option<DateTime<Utc>>,
    /// Started by a worker.
    pub start_date: Option<DateTime<Utc>>,
    /// Ended.
    pub end_date: Option<DateTime<Utc>>,
    /// Host.
    pub hostname: Option<String>,
    /// Log file.
    pub log_path: Option<String>,
    /// Error of a failed try.
    pub error: Option<String>,
}

impl Store {
    /// Starts the next try of a queued instance: queued -> running with try_number + 1 (a
    /// sensor's re-poke keeps its try), stamps host, pid and owner, and records the try.
    /// Returns None when the instance was not queued any more (someone else took or changed it).
    pub async fn start_try(
        &self,
        ti_id: i64,
        hostname: &str,
        pid: i64,
        owner_process: &str,
        log_path: impl Fn(i64) -> String,
        now: DateTime<Utc>,
    ) -> Result<Option<TiRow>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE task_instance SET state = 'running', \
             try_number = CASE WHEN first_poke_at IS NULL THEN try_number + 1 ELSE try_number END, \
             start_date = $1, end_date = NULL, hostname = $2, pid = $3, owner_process = $4, \
             updated_at = $1 WHERE id = $5 AND state = 'queued' RETURNING {TI_COLS}"
        ))
        .bind(to_us(now))
        .bind(hostname)
        .bind(pid)
        .bind(owner_process)
        .bind(ti_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let ti = ti_row(&row)?;
        sqlx::query(
            "INSERT INTO task_try (ti_id, try_number, state, runnable_at, queued_at, start_date, \
             hostname, pid, owner_process, log_path) \
             VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (ti_id, try_number) DO UPDATE SET state = 'running'",
        )
        .bind(ti.id)
        .bind(ti.try_number)
        .bind(ti.runnable_at.map(to_us))
        .bind(ti.queued_at.map(to_us))
        .bind(to_us(now))
        .bind(hostname)
        .bind(pid)
        .bind(owner_process)
        .bind(log_path(ti.try_number))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(ti))
    }

    /// Records the pid of the process a try runs in (a bash command's process group leader).
    pub async fn set_ti_pid(&self, ti_id: i64, try_number: i64, pid: i64) -> Result<()> {
        sqlx::query(
            "UPDATE task_instance SET pid = $1 WHERE id = $2 AND try_number = $3 AND state = 'running'",
        )
        .bind(pid)
        .bind(ti_id)
        .bind(try_number)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Ends a try: running -> `f.state`, with its XCom and timings, in one transaction.
    /// Returns false (and writes nothing) when the instance is no longer running this try:
    /// it was cleared, marked or recovered meanwhile.
    pub async fn finish_try(&self, f: &FinishTry) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let end = to_us(f.end);
        let finished_end = (f.state != TaskState::UpForReschedule).then_some(end);
        let done = sqlx::query(
            "UPDATE task_instance SET state = $1, next_try_at = $2, first_poke_at = $3, \
             end_date = $4, rendered = COALESCE($5, rendered), note = $6, updated_at = $7 \
             WHERE id = $8 AND try_number = $9 AND state = 'running'",
        )
        .bind(f.state.as_str())
        .bind(f.next_try_at.map(to_us))
        .bind(f.first_poke_at.map(to_us))
        .bind(finished_end)
        .bind(f.rendered.as_ref().map(|v| v.to_string()))
        .bind(f.error.clone())
        .bind(end)
        .bind(f.ti_id)
        .bind(f.try_number)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE task_try SET state = $1, end_date = $2, error = $3 \
             WHERE ti_id = $4 AND try_number = $5",
        )
        .bind(f.state.as_str())
        .bind(end)
        .bind(f.error.clone())
        .bind(f.ti_id)
        .bind(f.try_number)
        .execute(&mut *tx)
        .await?;
        if let Some(value) = &f.xcom {
            sqlx::query(
                "INSERT INTO xcom (ti_id, run_pk, task_id, map_index, key, value) \
                 SELECT id, run_pk, task_id, map_index, 'return_value', $1 FROM task_instance \
                 WHERE id = $2 ON CONFLICT (ti_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(value.to_string())
            .bind(f.ti_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The tries of a task instance, first to last.
    pub async fn tries(&self, ti_id: i64) -> Result<Vec<TryRow>> {
        let rows = sqlx::query(
            "SELECT try_number, state, runnable_at, queued_at, start_date, end_date, hostname, \
             log_path, error FROM task_try WHERE ti_id = $1 ORDER BY try_number",
        )
        .bind(ti_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TryRow {
                    try_number: r.try_get("try_number")?,
                    state: parse_col(r, "state")?,
                    runnable_at: opt_time(r, "runnable_at")?,
                    queued_at: opt_time(r, "queued_at")?,
                    start_date: opt_time(r, "start_date")?,
                    end_date: opt_time(r, "end_date")?,
                    hostname: r.try_get("hostname")?,
                    log_path: r.try_get("log_path")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }
}
