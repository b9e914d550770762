//! Task instances and their tries: creation, scheduler updates, queueing under caps, and the
//! compare-and-set writes that start and finish a try.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Backend, Result, Store, opt_time, parse_col, to_us};
use crate::model::TaskState;

/// A task instance to create.
#[derive(Debug, Clone)]
pub struct NewTi {
    /// Task id.
    pub task_id: String,
    /// -1 for an unmapped task (or a mapped task not yet expanded), else the item index.
    pub map_index: i64,
    /// The item of a mapped instance.
    pub map_item: Option<serde_json::Value>,
    /// Task type (`bash`, ...), shown in the UI.
    pub operator: String,
    /// Pool the instance takes slots from.
    pub pool: String,
    /// Slots it takes.
    pub pool_slots: i64,
    /// Higher first.
    pub priority_weight: i64,
    /// Queue for distributed workers.
    pub queue: String,
    /// 1 + retries.
    pub max_tries: i64,
}

/// One row of `task_instance`.
#[derive(Debug, Clone, PartialEq)]
pub struct TiRow {
    /// Primary key.
    pub id: i64,
    /// Run primary key.
    pub run_pk: i64,
    /// DAG id.
    pub dag_id: String,
    /// Run id.
    pub run_id: String,
    /// Task id.
    pub task_id: String,
    /// -1 unless mapped.
    pub map_index: i64,
    /// The item of a mapped instance.
    pub map_item: Option<serde_json::Value>,
    /// Current state.
    pub state: TaskState,
    /// Tries started so far (the running try's number while running).
    pub try_number: i64,
    /// 1 + retries.
    pub max_tries: i64,
    /// Task type.
    pub operator: String,
    /// Pool.
    pub pool: String,
    /// Pool slots.
    pub pool_slots: i64,
    /// Priority.
    pub priority_weight: i64,
    /// Queue.
    pub queue: String,
    /// Not eligible again before this (retry delay, sensor poke interval).
    pub next_try_at: Option<DateTime<Utc>>,
    /// A sensor's first poke of the current try.
    pub first_poke_at: Option<DateTime<Utc>>,
    /// When its dependencies were last met.
    pub runnable_at: Option<DateTime<Utc>>,
    /// When it was last queued.
    pub queued_at: Option<DateTime<Utc>>,
    /// When the current (or last) try started.
    pub start_date: Option<DateTime<Utc>>,
    /// When the last try ended.
    pub end_date: Option<DateTime<Utc>>,
    /// Host of the current or last try.
    pub hostname: Option<String>,
    /// Process id of the current or last try's task process (bash) or worker.
    pub pid: Option<i64>,
    /// Process (scheduler or worker) that queued or runs it.
    pub owner_process: Option<String>,
    /// Why it is in its state.
    pub note: Option<String>,
}

/// A scheduler decision for one task instance, applied only if it is still in `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct TiUpdate {
    /// Task instance primary key.
    pub id: i64,
    /// Expected current state.
    pub from: TaskState,
    /// New state.
    pub to: TaskState,
    /// Why (shown in the UI).
    pub note: Option<String>,
}

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

/// Limits checked when queueing, besides pools (read from the `pool` table).
#[derive(Debug, Clone)]
pub struct QueueCaps<'a> {
    /// Free executor slots.
    pub free_slots: usize,
    /// `max_active_tasks` by DAG id, for the DAGs this scheduler knows.
    pub max_active_tasks: &'a HashMap<String, i64>,
}

pub(super) const TI_COLS: &str = "id, run_pk, dag_id, run_id, task_id, map_index, map_item, \
    state, try_number, max_tries, operator, pool, pool_slots, priority_weight, queue, \
    next_try_at, first_poke_at, runnable_at, queued_at, start_date, end_date, hostname, pid, \
    owner_process, note";

pub(super) fn ti_row(row: &AnyRow) -> Result<TiRow> {
    let item: Option<String> = row.try_get("map_item")?;
    Ok(TiRow {
        id: row.try_get("id")?,
        run_pk: row.try_get("run_pk")?,
        dag_id: row.try_get("dag_id")?,
        run_id: row.try_get("run_id")?,
        task_id: row.try_get("task_id")?,
        map_index: row.try_get("map_index")?,
        map_item: item.and_then(|s| serde_json::from_str(&s).ok()),
        state: parse_col(row, "state")?,
        try_number: row.try_get("try_number")?,
        max_tries: row.try_get("max_tries")?,
        operator: row.try_get("operator")?,
        pool: row.try_get("pool")?,
        pool_slots: row.try_get("pool_slots")?,
        priority_weight: row.try_get("priority_weight")?,
        queue: row.try_get("queue")?,
        next_try_at: opt_time(row, "next_try_at")?,
        first_poke_at: opt_time(row, "first_poke_at")?,
        runnable_at: opt_time(row, "runnable_at")?,
        queued_at: opt_time(row, "queued_at")?,
        start_date: opt_time(row, "start_date")?,
        end_date: opt_time(row, "end_date")?,
        hostname: row.try_get("hostname")?,
        pid: row.try_get("pid")?,
        owner_process: row.try_get("owner_process")?,
        note: row.try_get("note")?,
    })
}

pub(super) async fn insert_tis(
    tx: &mut Transaction<'static, Any>,
    run_pk: i64,
    tis: &[NewTi],
    now: DateTime<Utc>,
) -> Result<()> {
    for ti in tis {
        sqlx::query(
            "INSERT INTO task_instance (run_pk, dag_id, run_id, task_id, map_index, map_item, \
             state, max_tries, operator, pool, pool_slots, priority_weight, queue, updated_at) \
             SELECT id, dag_id, run_id, $1, $2, $3, 'none', $4, $5, $6, $7, $8, $9, $10 \
             FROM dag_run WHERE id = $11 \
             ON CONFLICT (run_pk, task_id, map_index) DO NOTHING",
        )
        .bind(&ti.task_id)
        .bind(ti.map_index)
        .bind(ti.map_item.as_ref().map(|v| v.to_string()))
        .bind(ti.max_tries)
        .bind(&ti.operator)
        .bind(&ti.pool)
        .bind(ti.pool_slots)
        .bind(ti.priority_weight)
        .bind(&ti.queue)
        .bind(to_us(now))
        .bind(run_pk)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Every task instance of a run, in task then map order.
    pub async fn run_tis(&self, run_pk: i64) -> Result<Vec<TiRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TI_COLS} FROM task_instance WHERE run_pk = $1 ORDER BY id"
        ))
        .bind(run_pk)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ti_row).collect()
    }

    /// One task instance by primary key.
    pub async fn get_ti(&self, ti_id: i64) -> Result<Option<TiRow>> {
        let row = sqlx::query(&format!("SELECT {TI_COLS} FROM task_instance WHERE id = $1"))
            .bind(ti_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ti_row).transpose()
    }

    /// Applies scheduler decisions in one transaction; each only if the instance is still in
    /// its `from` state. Returns how many were applied. Moving to `scheduled` stamps
    /// `runnable_at`; a finished state stamps `end_date`.
    pub async fn apply_ti_updates(&self, updates: &[TiUpdate], now: DateTime<Utc>) -> Result<u64> {
        if updates.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let mut applied = 0;
        let now = to_us(now);
        for u in updates {
            let runnable = (u.to == TaskState::Scheduled).then_some(now);
            let end = u.to.is_finished().then_some(now);
            let done = sqlx::query(
                "UPDATE task_instance SET state = $1, note = $2, \
                 runnable_at = COALESCE($3, runnable_at), end_date = COALESCE($4, end_date), \
                 updated_at = $5 WHERE id = $6 AND state = $7",
            )
            .bind(u.to.as_str())
            .bind(u.note.clone())
            .bind(runnable)
            .bind(end)
            .bind(now)
            .bind(u.id)
            .bind(u.from.as_str())
            .execute(&mut *tx)
            .await?;
            applied += done.rows_affected();
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Replaces the placeholder of a mapped task (map_index -1, state none) by one instance
    /// per item, or marks it skipped when there are no items. One transaction.
    pub async fn expand_mapped(
        &self,
        placeholder: &TiRow,
        template: &NewTi,
        items: &[serde_json::Value],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        if items.is_empty() {
            sqlx::query(
                "UPDATE task_instance SET state = 'skipped', note = 'foreach gave no items', \
                 end_date = $1, updated_at = $1 WHERE id = $2 AND state = 'none'",
            )
            .bind(to_us(now))
            .bind(placeholder.id)
            .execute(&mut *tx)
            .await?;
        } else {
            let done = sqlx::query("DELETE FROM task_instance WHERE id = $1 AND state = 'none'")
                .bind(placeholder.id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(());
            }
            let tis: Vec<NewTi> = items
                .iter()
                .enumerate()
                .map(|(i, item)| NewTi {
                    map_index: i as i64,
                    map_item: Some(item.clone()),
                    ..template.clone()
                })
                .collect();
            insert_tis(&mut tx, placeholder.run_pk, &tis, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queues scheduled task instances, highest priority first, within the free executor slots,
    /// each DAG's `max_active_tasks` and each pool's slots, all counted and written in one
    /// transaction (on PostgreSQL under an advisory lock shared by every scheduler).
    /// Instances of paused DAGs stay scheduled. Returns the queued rows.
    pub async fn queue_scheduled(
        &self,
        caps: &QueueCaps<'_>,
        owner_process: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TiRow>> {
        if caps.free_slots == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            // One queueing section at a time over all schedulers: counting and writing in
            // the same critical section is what keeps pools and caps exact.
            sqlx::query("SELECT pg_advisory_xact_lock(727001)").execute(&mut *tx).await?;
        }
        let mut pool_free: HashMap<String, i64> = HashMap::new();
        for r in sqlx::query("SELECT name, slots FROM pool").fetch_all(&mut *tx).await? {
            pool_free.insert(r.try_get("name")?, r.try_get("slots")?);
        }
        let mut dag_active: HashMap<String, i64> = HashMap::new();
        let busy = sqlx::query(
            "SELECT dag_id, pool, COUNT(*) AS n, CAST(SUM(pool_slots) AS BIGINT) AS slots \
             FROM task_instance WHERE state IN ('queued', 'running') GROUP BY dag_id, pool",
        )
        .fetch_all(&mut *tx)
        .await?;
        for r in busy {
            let pool: String = r.try_get("pool")?;
            *pool_free.entry(pool).or_insert(0) -= r.try_get::<i64, _>("slots")?;
            *dag_active.entry(r.try_get("dag_id")?).or_insert(0) += r.try_get::<i64, _>("n")?;
        }
        // Read a few times the free slots: some candidates may be blocked by their pool or DAG.
        let candidates = sqlx::query(&format!(
            "SELECT {TI_COLS} FROM task_instance WHERE state = 'scheduled' \
             AND dag_id IN (SELECT dag_id FROM dag WHERE is_paused = 0) \
             ORDER BY priority_weight DESC, runnable_at, id LIMIT $1"
        ))
        .bind((caps.free_slots * 4 + 16) as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut chosen = Vec::new();
        for row in &candidates {
            if chosen.len() == caps.free_slots {
                break;
            }
            let ti = ti_row(row)?;
            let dag_cap = caps.max_active_tasks.get(&ti.dag_id).copied().unwrap_or(i64::MAX);
            let active = dag_active.entry(ti.dag_id.clone()).or_insert(0);
            // An unknown pool never frees up: leave the instance scheduled with a note below.
            let Some(free) = pool_free.get_mut(&ti.pool) else { continue };
            if *active >= dag_cap || *free < ti.pool_slots {
                continue;
            }
            *active += 1;
            *free -= ti.pool_slots;
            chosen.push(ti);
        }
        let now_us = to_us(now);
        for ti in &mut chosen {
            sqlx::query(
                "UPDATE task_instance SET state = 'queued', queued_at = $1, owner_process = $2, \
                 updated_at = $1 WHERE id = $3 AND state = 'scheduled'",
            )
            .bind(now_us)
            .bind(owner_process)
            .bind(ti.id)
            .execute(&mut *tx)
            .await?;
            ti.state = TaskState::Queued;
            ti.queued_at = Some(now);
            ti.owner_process = Some(owner_process.to_string());
        }
        tx.commit().await?;
        Ok(chosen)
    }

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

    /// Instances in `states` whose owner process is not in `alive`, for crash recovery.
    pub async fn orphaned_tis(&self, alive: &[String]) -> Result<Vec<TiRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TI_COLS} FROM task_instance WHERE state IN ('queued', 'running') ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let ti = ti_row(row)?;
            if !ti.owner_process.as_ref().is_some_and(|p| alive.contains(p)) {
                out.push(ti);
            }
        }
        Ok(out)
    }

    /// Puts a queued instance whose executor is gone back to scheduled (it never started).
    pub async fn requeue_orphan(&self, ti_id: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE task_instance SET state = 'scheduled', owner_process = NULL, updated_at = $1 \
             WHERE id = $2 AND state = 'queued'",
        )
        .bind(to_us(now))
        .bind(ti_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Earliest `next_try_at` among instances waiting for a retry or a re-poke.
    pub async fn next_wakeup(&self) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT MIN(next_try_at) AS t FROM task_instance \
             WHERE state IN ('up_for_retry', 'up_for_reschedule')",
        )
        .fetch_one(&self.pool)
        .await?;
        opt_time(&row, "t")
    }

    /// Runs with instances waiting for a retry or re-poke that is due at `now`.
    pub async fn runs_with_due_waits(&self, now: DateTime<Utc>) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT DISTINCT run_pk FROM task_instance \
             WHERE state IN ('up_for_retry', 'up_for_reschedule') AND next_try_at <= $1",
        )
        .bind(to_us(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("run_pk")?)).collect()
    }
    /// Instances of a run per (task, state): what trigger rules and the run state need,
    /// without decoding every row of a wide fan-out.
    pub async fn run_state_counts(&self, run_pk: i64) -> Result<Vec<(String, TaskState, i64)>> {
        let rows = sqlx::query(
            "SELECT task_id, state, COUNT(*) AS n FROM task_instance WHERE run_pk = $1 \
             GROUP BY task_id, state",
        )
        .bind(run_pk)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("task_id")?, parse_col(r, "state")?, r.try_get("n")?)))
            .collect()
    }

    /// Instances of a run the scheduler may move: not yet examined (`none`) or waiting for a
    /// retry or re-poke.
    pub async fn run_pending_tis(&self, run_pk: i64) -> Result<Vec<TiRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TI_COLS} FROM task_instance WHERE run_pk = $1 \
             AND state IN ('none', 'up_for_retry', 'up_for_reschedule') ORDER BY id"
        ))
        .bind(run_pk)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ti_row).collect()
    }
}
