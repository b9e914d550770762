//! Queueing: scheduled -> queued for as many task instances as the free executor slots, each
//! DAG's `max_active_tasks` and each pool allow, counted and written in one transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::tis::{TI_COLS, TiRow, ti_row};
use super::{Backend, IN_LIST_MAX, Result, Store, placeholders, to_us};
use crate::model::TaskState;

/// Limits checked when queueing, besides pools (read from the `pool` table).
#[derive(Debug, Clone)]
pub struct QueueCaps<'a> {
    /// Free executor slots.
    pub free_slots: usize,
    /// `max_active_tasks` by DAG id, for the DAGs this scheduler knows.
    pub max_active_tasks: &'a HashMap<String, i64>,
    /// Queued and running instances at most, over every process (the distributed executor's
    /// parallelism); None: no such cap.
    pub max_in_flight: Option<usize>,
    /// The queues some live worker serves; None: every queue is served (a local executor).
    /// An instance of another queue stays scheduled, with a note saying so.
    pub served_queues: Option<&'a HashSet<String>>,
}

impl<'a> QueueCaps<'a> {
    /// Caps of a local executor: its free slots and each DAG's `max_active_tasks`.
    pub fn local(free_slots: usize, max_active_tasks: &'a HashMap<String, i64>) -> Self {
        QueueCaps { free_slots, max_active_tasks, max_in_flight: None, served_queues: None }
    }
}

/// Key of the PostgreSQL transaction advisory lock that serialises queueing across schedulers.
/// Any constant works as long as every scheduler uses the same one and nothing else in the
/// database takes it; it is the only advisory lock Updraft takes.
pub const QUEUE_LOCK: i64 = 727_001;

/// How the note of an instance whose queue no worker serves begins (cleared once queued).
const UNSERVED: &str = "waiting for a worker:";

impl Store {
    /// Queues scheduled task instances, highest priority first, within the free executor slots,
    /// each DAG's `max_active_tasks` and each pool's slots, all counted and written in one
    /// transaction (on PostgreSQL under an advisory lock shared by every scheduler).
    /// Instances of paused DAGs stay scheduled. `owner_process` is the process that runs them
    /// (a local executor's), or None: a worker claims them. Returns the queued rows.
    pub async fn queue_scheduled(
        &self,
        caps: &QueueCaps<'_>,
        owner_process: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TiRow>> {
        if caps.free_slots == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            // One queueing section at a time over all schedulers: counting and writing in
            // the same critical section is what keeps pools and caps exact.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(QUEUE_LOCK)
                .execute(&mut *tx)
                .await?;
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
        let mut in_flight = 0;
        for r in busy {
            let pool: String = r.try_get("pool")?;
            let n = r.try_get::<i64, _>("n")?;
            *pool_free.entry(pool).or_insert(0) -= r.try_get::<i64, _>("slots")?;
            *dag_active.entry(r.try_get("dag_id")?).or_insert(0) += n;
            in_flight += n.max(0) as usize;
        }
        let free_slots = match caps.max_in_flight {
            Some(cap) => caps.free_slots.min(cap.saturating_sub(in_flight)),
            None => caps.free_slots,
        };
        if free_slots == 0 {
            return Ok(Vec::new());
        }
        // Read a few times the free slots: some candidates may be blocked by their pool or DAG.
        let candidates = sqlx::query(&format!(
            "SELECT {TI_COLS} FROM task_instance WHERE state = 'scheduled' \
             AND dag_id IN (SELECT dag_id FROM dag WHERE is_paused = 0) \
             ORDER BY priority_weight DESC, runnable_at, id LIMIT $1"
        ))
        .bind((free_slots * 4 + 16) as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut chosen = Vec::new();
        let mut unserved = Vec::new();
        for row in &candidates {
            if chosen.len() == free_slots {
                break;
            }
            let ti = ti_row(row)?;
            if caps.served_queues.is_some_and(|served| !served.contains(&ti.queue)) {
                unserved.push(ti);
                continue;
            }
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
        // One statement per batch of instances rather than one each: the writer is the hot
        // path's narrow point.
        for batch in chosen.chunks(IN_LIST_MAX) {
            let sql = format!(
                "UPDATE task_instance SET state = 'queued', queued_at = $1, owner_process = $2, \
                 updated_at = $1, note = CASE WHEN note LIKE '{UNSERVED}%' THEN NULL ELSE note END \
                 WHERE state = 'scheduled' AND id IN ({})",
                placeholders(3, batch.len())
            );
            let mut update = sqlx::query(&sql).bind(now_us).bind(owner_process);
            for ti in batch {
                update = update.bind(ti.id);
            }
            update.execute(&mut *tx).await?;
        }
        for ti in &unserved {
            let note = format!("{UNSERVED} no live worker serves queue `{}`", ti.queue);
            if ti.note.as_deref() != Some(note.as_str()) {
                sqlx::query(
                    "UPDATE task_instance SET note = $1 WHERE id = $2 AND state = 'scheduled'",
                )
                .bind(note)
                .bind(ti.id)
                .execute(&mut *tx)
                .await?;
            }
        }
        for ti in &mut chosen {
            ti.state = TaskState::Queued;
            ti.queued_at = Some(now);
            ti.owner_process = owner_process.map(str::to_string);
        }
        tx.commit().await?;
        Ok(chosen)
    }
}
