//! Task instances and their tries: creation, scheduler updates, queueing under caps, and the
//! compare-and-set writes that start and finish a try.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{IN_LIST_MAX, Result, Store, opt_time, parse_col, placeholders, to_us};
use crate::model::{RunPk, TaskState, TiId};

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

impl NewTi {
    /// The row a task starts as (a mapped task starts as one placeholder, map index -1).
    pub fn for_task(task: &crate::dag::Task) -> NewTi {
        NewTi {
            task_id: task.task_id.clone(),
            map_index: -1,
            map_item: None,
            operator: task.kind.type_name().to_string(),
            pool: task.pool.clone(),
            pool_slots: i64::from(task.pool_slots),
            priority_weight: i64::from(task.priority_weight),
            queue: task.queue.clone(),
            max_tries: i64::from(task.retries) + 1,
        }
    }
}

/// One row of `task_instance`.
#[derive(Debug, Clone, PartialEq)]
pub struct TiRow {
    /// Primary key.
    pub id: TiId,
    /// Run primary key.
    pub run_pk: RunPk,
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
    pub id: TiId,
    /// Expected current state.
    pub from: TaskState,
    /// New state.
    pub to: TaskState,
    /// Why (shown in the UI).
    pub note: Option<String>,
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
    run_pk: RunPk,
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
    pub async fn run_tis(&self, run_pk: RunPk) -> Result<Vec<TiRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TI_COLS} FROM task_instance WHERE run_pk = $1 ORDER BY id"
        ))
        .bind(run_pk)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ti_row).collect()
    }

    /// One task instance by primary key.
    pub async fn get_ti(&self, ti_id: TiId) -> Result<Option<TiRow>> {
        let row = sqlx::query(&format!("SELECT {TI_COLS} FROM task_instance WHERE id = $1"))
            .bind(ti_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ti_row).transpose()
    }

    /// Applies scheduler decisions in one transaction; each only if the instance is still in
    /// its `from` state. Returns how many were applied. Moving to `scheduled` stamps
    /// `runnable_at`; a finished state stamps `end_date`, and `success` (an instance with
    /// nothing to run) `start_date` as well. Decisions alike (same move, same note) are
    /// written by one statement per `IN_LIST_MAX` instances: a 10,000-wide task is
    /// scheduled, or marked done, in a few statements.
    pub async fn apply_ti_updates(&self, updates: &[TiUpdate], now: DateTime<Utc>) -> Result<u64> {
        if updates.is_empty() {
            return Ok(0);
        }
        let mut alike: Vec<(&TiUpdate, Vec<TiId>)> = Vec::new();
        let mut index: HashMap<(TaskState, TaskState, Option<&str>), usize> = HashMap::new();
        for u in updates {
            let key = (u.from, u.to, u.note.as_deref());
            let at = *index.entry(key).or_insert_with(|| {
                alike.push((u, Vec::new()));
                alike.len() - 1
            });
            alike[at].1.push(u.id);
        }
        let mut tx = self.write_tx().await?;
        let mut applied = 0;
        let now = to_us(now);
        for (u, ids) in &alike {
            let runnable = (u.to == TaskState::Scheduled).then_some(now);
            let end = u.to.is_finished().then_some(now);
            let start = (u.to == TaskState::Success).then_some(now);
            for batch in ids.chunks(IN_LIST_MAX) {
                let sql = format!(
                    "UPDATE task_instance SET state = $1, note = $2, \
                     runnable_at = COALESCE($3, runnable_at), end_date = COALESCE($4, end_date), \
                     start_date = COALESCE(start_date, $5), updated_at = $6 \
                     WHERE state = $7 AND id IN ({})",
                    placeholders(8, batch.len())
                );
                let mut update = sqlx::query(&sql)
                    .bind(u.to.as_str())
                    .bind(u.note.clone())
                    .bind(runnable)
                    .bind(end)
                    .bind(start)
                    .bind(now)
                    .bind(u.from.as_str());
                for id in batch {
                    update = update.bind(*id);
                }
                applied += update.execute(&mut *tx).await?.rows_affected();
            }
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Replaces the placeholder of a mapped task (map_index -1, state none) by one instance
    /// per item, in one transaction; nothing when the placeholder changed meanwhile. `items`
    /// is what `model::expansion` mapped (never empty: no items is its `skipped` decision,
    /// written like any other state).
    pub async fn expand_mapped(
        &self,
        placeholder: &TiRow,
        template: &NewTi,
        items: &[serde_json::Value],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
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
        tx.commit().await?;
        Ok(())
    }

    /// Queued and running instances that lost their process, for crash recovery: owned by a
    /// process not in `alive`, or holding a worker's lease that expired before `now`. A queued
    /// instance no worker claimed yet has no owner and is not an orphan (the queued timeout
    /// sweep looks after it).
    pub async fn orphaned_tis(&self, alive: &[String], now: DateTime<Utc>) -> Result<Vec<TiRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TI_COLS}, lease_expires_at FROM task_instance \
             WHERE state IN ('queued', 'running') AND owner_process IS NOT NULL ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let now = to_us(now);
        let mut out = Vec::new();
        for row in &rows {
            let ti = ti_row(row)?;
            let lease: Option<i64> = row.try_get("lease_expires_at")?;
            let owner_alive = ti.owner_process.as_ref().is_some_and(|p| alive.contains(p));
            if !owner_alive || lease.is_some_and(|l| l < now) {
                out.push(ti);
            }
        }
        Ok(out)
    }

    /// Puts a queued instance whose process is gone (or whose claim's lease expired) back to
    /// scheduled: it never started. Only while `owner` still holds it.
    pub async fn requeue_orphan(&self, ti: &TiRow, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE task_instance SET state = 'scheduled', owner_process = NULL, \
             lease_expires_at = NULL, updated_at = $1 \
             WHERE id = $2 AND state = 'queued' AND try_number = $3 AND owner_process = $4",
        )
        .bind(to_us(now))
        .bind(ti.id)
        .bind(ti.try_number)
        .bind(ti.owner_process.as_deref().unwrap_or(""))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts queued instances that no worker claimed since `queued_before` back to scheduled,
    /// with `note` saying why, so they are queued again (or wait, visibly) instead of staying
    /// queued for ever. Returns their runs.
    pub async fn requeue_unclaimed(
        &self,
        queued_before: DateTime<Utc>,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<RunPk>> {
        let rows = sqlx::query(
            "UPDATE task_instance SET state = 'scheduled', note = $1, updated_at = $2 \
             WHERE state = 'queued' AND owner_process IS NULL AND queued_at < $3 \
             RETURNING run_pk",
        )
        .bind(note)
        .bind(to_us(now))
        .bind(to_us(queued_before))
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("run_pk")?)).collect()
    }

    /// Instances of a run per (task, state): what trigger rules and the run state need,
    /// without decoding every row of a wide fan-out.
    pub async fn run_state_counts(&self, run_pk: RunPk) -> Result<Vec<(String, TaskState, i64)>> {
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
    pub async fn run_pending_tis(&self, run_pk: RunPk) -> Result<Vec<TiRow>> {
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
