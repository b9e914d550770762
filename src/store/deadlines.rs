//! Deadlines of runs (migration 0013): written with the run (`insert_in`, from
//! `NewRun::deadlines`), timed when the run starts for `run_start` ones (`start_in`), and
//! decided by the scheduler once their time came (`decide_deadline`), which writes a missed
//! deadline's notifications in the same transaction.
//!
//! Invariant: a deadline is decided once (compare-and-set on `pending`), so its notifications
//! are written once; what is met or missed is `model::deadline`'s decision.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, RunPk, Store, json_col, opt_time, to_us};
use crate::dag::deadline::{Deadline, DeadlineRef};
use crate::model::deadline::{NewDeadline, Outcome};

/// One deadline of a run, with what the scheduler and the pages need of its run.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineRow {
    /// Its id.
    pub id: i64,
    /// The run.
    pub run_pk: RunPk,
    /// The run's DAG.
    pub dag_id: String,
    /// The run's id.
    pub run_id: String,
    /// Its place in the DAG's `deadline:` list.
    pub ordinal: i64,
    /// The declaration it was made from.
    pub deadline: Deadline,
    /// When it falls (None: a `run_start` deadline of a run not started yet).
    pub deadline_at: Option<DateTime<Utc>>,
    /// `pending`, `met` or `missed`.
    pub status: String,
    /// When the scheduler decided it.
    pub decided_at: Option<DateTime<Utc>>,
    /// The run's state now.
    pub run_state: String,
    /// When the run ended, if it did.
    pub run_end: Option<DateTime<Utc>>,
}

const COLS: &str = "d.id, d.run_pk, d.dag_id, r.run_id, d.ordinal, d.reference, d.interval_us, \
    d.notify, d.deadline_at, d.status, d.decided_at, r.state AS run_state, r.end_date AS run_end";

fn row(r: &sqlx::any::AnyRow) -> Result<DeadlineRow> {
    let reference: String = r.try_get("reference")?;
    let reference = DeadlineRef::parse(&reference).ok_or_else(|| super::StoreError::Corrupt {
        column: "reference",
        message: format!("unknown deadline reference `{reference}`"),
    })?;
    let interval_us: i64 = r.try_get("interval_us")?;
    Ok(DeadlineRow {
        id: r.try_get("id")?,
        run_pk: r.try_get("run_pk")?,
        dag_id: r.try_get("dag_id")?,
        run_id: r.try_get("run_id")?,
        ordinal: r.try_get("ordinal")?,
        deadline: Deadline {
            reference,
            interval: Duration::from_micros(u64::try_from(interval_us).unwrap_or(0)),
            notify: json_col(r, "notify")?,
        },
        deadline_at: opt_time(r, "deadline_at")?,
        status: r.try_get("status")?,
        decided_at: opt_time(r, "decided_at")?,
        run_state: r.try_get("run_state")?,
        run_end: opt_time(r, "run_end")?,
    })
}

/// The deadlines of a run just inserted, in its transaction.
pub(super) async fn insert_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_pk: RunPk,
    dag_id: &str,
    deadlines: &[NewDeadline],
) -> Result<()> {
    for d in deadlines {
        let interval_us = i64::try_from(d.interval.as_micros()).unwrap_or(i64::MAX);
        let notify = serde_json::to_string(&d.notify).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO deadline (run_pk, dag_id, ordinal, reference, interval_us, notify, \
             deadline_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run_pk)
        .bind(dag_id)
        .bind(d.ordinal)
        .bind(d.reference.as_str())
        .bind(interval_us)
        .bind(notify)
        .bind(d.deadline_at.map(to_us))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Times the `run_start` deadlines of a run starting at `now`, in the start's transaction;
/// whether there was one.
pub(super) async fn start_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_pk: RunPk,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE deadline SET deadline_at = $1 + interval_us \
         WHERE run_pk = $2 AND reference = 'run_start' AND deadline_at IS NULL",
    )
    .bind(to_us(now))
    .bind(run_pk)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

impl Store {
    /// Woken when this process wrote a deadline that may fall sooner than the checker's sleep.
    pub fn deadlines_announced(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.deadlines_changed.clone()
    }

    /// Pending deadlines whose time came by `now`, earliest first, at most `limit`.
    pub async fn due_deadlines(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<DeadlineRow>> {
        let sql = format!(
            "SELECT {COLS} FROM deadline d JOIN dag_run r ON r.id = d.run_pk \
             WHERE d.status = 'pending' AND d.deadline_at <= $1 \
             ORDER BY d.deadline_at, d.id LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(to_us(now)).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// When the next pending deadline falls, if one is timed.
    pub async fn next_deadline_at(&self) -> Result<Option<DateTime<Utc>>> {
        let r = sqlx::query("SELECT MIN(deadline_at) AS at FROM deadline WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        opt_time(&r, "at")
    }

    /// Records what became of a due deadline at `now`; a missed one writes a notification
    /// per notifier (`detail` is its text), in the same transaction. False (nothing written)
    /// when another scheduler decided it first.
    pub async fn decide_deadline(
        &self,
        d: &DeadlineRow,
        outcome: Outcome,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE deadline SET status = $1, decided_at = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(outcome.as_str())
        .bind(to_us(now))
        .bind(d.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let missed = outcome == Outcome::Missed;
        if missed {
            for conn in &d.deadline.notify {
                let key = format!("deadline_missed:deadline{}:{conn}", d.id);
                sqlx::query(
                    "INSERT INTO notification (idempotency_key, event, conn_id, dag_id, run_id, \
                     run_pk, state, error, next_attempt_at, created_at) \
                     SELECT $1, 'deadline_missed', $2, dag_id, run_id, id, state, $3, $4, $4 \
                     FROM dag_run WHERE id = $5 ON CONFLICT (idempotency_key) DO NOTHING",
                )
                .bind(key)
                .bind(conn)
                .bind(detail)
                .bind(to_us(now))
                .bind(d.run_pk)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        if missed {
            self.notifications_changed.notify_one();
        }
        Ok(true)
    }

    /// A run's deadlines, in the DAG's order.
    pub async fn run_deadlines(&self, run_pk: RunPk) -> Result<Vec<DeadlineRow>> {
        let sql = format!(
            "SELECT {COLS} FROM deadline d JOIN dag_run r ON r.id = d.run_pk \
             WHERE d.run_pk = $1 ORDER BY d.ordinal"
        );
        let rows = sqlx::query(&sql).bind(run_pk).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// A DAG's missed deadlines, newest first, at most `limit`, and how many it has in all.
    pub async fn dag_deadline_misses(
        &self,
        dag_id: &str,
        limit: i64,
    ) -> Result<(i64, Vec<DeadlineRow>)> {
        let n = sqlx::query(
            "SELECT COUNT(*) AS n FROM deadline WHERE dag_id = $1 AND status = 'missed'",
        )
        .bind(dag_id)
        .fetch_one(&self.pool)
        .await?
        .try_get::<i64, _>("n")?;
        if n == 0 {
            return Ok((0, Vec::new()));
        }
        let sql = format!(
            "SELECT {COLS} FROM deadline d JOIN dag_run r ON r.id = d.run_pk \
             WHERE d.dag_id = $1 AND d.status = 'missed' ORDER BY d.deadline_at DESC, d.id DESC \
             LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(dag_id).bind(limit).fetch_all(&self.pool).await?;
        Ok((n, rows.iter().map(row).collect::<Result<Vec<_>>>()?))
    }

    /// The runs among `runs` that missed a deadline (for the runs lists).
    pub async fn runs_missing_deadlines(&self, runs: &[RunPk]) -> Result<Vec<RunPk>> {
        let mut out = Vec::new();
        for chunk in runs.chunks(super::IN_LIST_MAX) {
            let sql = format!(
                "SELECT DISTINCT run_pk FROM deadline WHERE status = 'missed' AND run_pk IN ({})",
                super::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for pk in chunk {
                q = q.bind(*pk);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(r.try_get("run_pk")?);
            }
        }
        Ok(out)
    }
}
