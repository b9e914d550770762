//! Backfills: their rows, the runs they create (in the backfill's own transaction), what the
//! scheduler reads to start their queued runs, pausing and cancelling.
//!
//! Invariant: which dates get a run and which existing runs run again is decided by
//! `model::backfill`; this file writes what was decided.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::runs::{INSERT_RUN, NewRun, bind_run};
use super::{Result, Store, StoreError, json_col, opt_time, parse_col, time, to_us};
use crate::model::{Reprocess, RunPk};

/// A backfill to create.
#[derive(Debug, Clone)]
pub struct NewBackfill {
    /// The DAG.
    pub dag_id: String,
    /// The range of logical dates, both ends included.
    pub from: DateTime<Utc>,
    /// The range's end.
    pub to: DateTime<Utc>,
    /// Which existing runs it runs again.
    pub reprocess: Reprocess,
    /// Its runs running at once, at most.
    pub max_active_runs: i64,
    /// The conf of the runs it creates.
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// Who asked for it.
    pub created_by: Option<String>,
}

/// A backfill as stored, with its runs counted by state.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillRow {
    /// Its id.
    pub id: i64,
    /// The DAG.
    pub dag_id: String,
    /// First logical date of the range.
    pub from: DateTime<Utc>,
    /// Last logical date of the range.
    pub to: DateTime<Utc>,
    /// Which existing runs it ran again.
    pub reprocess: Reprocess,
    /// Its runs running at once, at most.
    pub max_active_runs: i64,
    /// The conf of the runs it created.
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// Paused: none of its queued runs starts.
    pub is_paused: bool,
    /// Who asked for it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was cancelled (its queued runs failed then), if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Its runs queued, running, succeeded and failed.
    pub queued: i64,
    /// See `queued`.
    pub running: i64,
    /// See `queued`.
    pub success: i64,
    /// See `queued`.
    pub failed: i64,
}

/// What the scheduler needs to know of a backfill with queued runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillGate {
    /// Paused by a user.
    pub is_paused: bool,
    /// Cancelled.
    pub cancelled: bool,
    /// Its runs running at once, at most.
    pub max_active_runs: i64,
    /// Its runs running now.
    pub running: i64,
}

const BACKFILL_COLS: &str = "b.id, b.dag_id, b.from_date, b.to_date, b.reprocess, \
    b.max_active_runs, b.conf, b.is_paused, b.created_by, b.created_at, b.cancelled_at, \
    (SELECT COUNT(*) FROM dag_run r WHERE r.backfill_id = b.id AND r.state = 'queued') AS queued, \
    (SELECT COUNT(*) FROM dag_run r WHERE r.backfill_id = b.id AND r.state = 'running') AS running, \
    (SELECT COUNT(*) FROM dag_run r WHERE r.backfill_id = b.id AND r.state = 'success') AS success, \
    (SELECT COUNT(*) FROM dag_run r WHERE r.backfill_id = b.id AND r.state = 'failed') AS failed";

fn backfill_row(r: &sqlx::any::AnyRow) -> Result<BackfillRow> {
    Ok(BackfillRow {
        id: r.try_get("id")?,
        dag_id: r.try_get("dag_id")?,
        from: time(r, "from_date")?,
        to: time(r, "to_date")?,
        reprocess: parse_col(r, "reprocess")?,
        max_active_runs: r.try_get("max_active_runs")?,
        conf: json_col(r, "conf")?,
        is_paused: r.try_get::<i64, _>("is_paused")? != 0,
        created_by: r.try_get("created_by")?,
        created_at: time(r, "created_at")?,
        cancelled_at: opt_time(r, "cancelled_at")?,
        queued: r.try_get("queued")?,
        running: r.try_get("running")?,
        success: r.try_get("success")?,
        failed: r.try_get("failed")?,
    })
}

impl Store {
    /// Creates a backfill and its new runs (queued, carrying its id; a date that got a run
    /// meanwhile is left to that run) in one transaction. Returns its id and how many runs
    /// it created.
    pub async fn create_backfill(
        &self,
        b: &NewBackfill,
        runs: &[NewRun],
        now: DateTime<Utc>,
    ) -> Result<(i64, u64)> {
        let conf = serde_json::to_string(&b.conf).unwrap_or_else(|_| "{}".into());
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO backfill (dag_id, from_date, to_date, reprocess, max_active_runs, conf, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&b.dag_id)
        .bind(to_us(b.from))
        .bind(to_us(b.to))
        .bind(b.reprocess.as_str())
        .bind(b.max_active_runs)
        .bind(&conf)
        .bind(&b.created_by)
        .bind(to_us(now))
        .fetch_one(&mut *tx)
        .await?;
        let mut created = 0;
        let sql = format!("{INSERT_RUN} ON CONFLICT DO NOTHING");
        for run in runs {
            let done = bind_run(sqlx::query(&sql), run, Some(id), now).execute(&mut *tx).await?;
            created += done.rows_affected();
        }
        tx.commit().await?;
        Ok((id, created))
    }

    /// Marks an existing run as run again by backfill `id`.
    pub async fn attach_to_backfill(&self, run_pk: RunPk, id: i64) -> Result<()> {
        sqlx::query("UPDATE dag_run SET backfill_id = $1 WHERE id = $2")
            .bind(id)
            .bind(run_pk.0)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// One backfill; [`StoreError::NotFound`] when there is none.
    pub async fn get_backfill(&self, id: i64) -> Result<BackfillRow> {
        let row = sqlx::query(&format!("SELECT {BACKFILL_COLS} FROM backfill b WHERE b.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => backfill_row(&r),
            None => Err(StoreError::NotFound(format!("backfill {id}"))),
        }
    }

    /// Backfills, newest first (of one DAG when `dag_id` is given), at most `limit`.
    pub async fn list_backfills(
        &self,
        dag_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BackfillRow>> {
        let cond = if dag_id.is_some() { "WHERE b.dag_id = $1" } else { "" };
        let sql = format!(
            "SELECT {BACKFILL_COLS} FROM backfill b {cond} ORDER BY b.id DESC LIMIT {limit}"
        );
        let mut q = sqlx::query(&sql);
        if let Some(d) = dag_id {
            q = q.bind(d);
        }
        q.fetch_all(&self.pool).await?.iter().map(backfill_row).collect()
    }

    /// Pauses or unpauses a backfill that is not cancelled; false when it is (or is gone).
    pub async fn set_backfill_paused(&self, id: i64, paused: bool) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE backfill SET is_paused = $1 WHERE id = $2 AND cancelled_at IS NULL",
        )
        .bind(i64::from(paused))
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels a backfill: none of its queued runs will start (they are failed, as Airflow
    /// does; running ones run on). Returns how many queued runs it failed; None when it was
    /// cancelled already or is gone.
    pub async fn cancel_backfill(&self, id: i64, now: DateTime<Utc>) -> Result<Option<u64>> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE backfill SET cancelled_at = $1, is_paused = 1 \
             WHERE id = $2 AND cancelled_at IS NULL",
        )
        .bind(to_us(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let failed = sqlx::query(
            "UPDATE dag_run SET state = 'failed', end_date = $1 \
             WHERE backfill_id = $2 AND state = 'queued'",
        )
        .bind(to_us(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(failed.rows_affected()))
    }

    /// The backfills that have queued runs, with what decides whether one more may start.
    pub async fn backfill_gates(&self) -> Result<HashMap<i64, BackfillGate>> {
        let rows = sqlx::query(
            "SELECT b.id, b.is_paused, b.cancelled_at, b.max_active_runs, \
             (SELECT COUNT(*) FROM dag_run r WHERE r.backfill_id = b.id AND r.state = 'running') \
             AS running FROM backfill b WHERE b.id IN \
             (SELECT backfill_id FROM dag_run WHERE state = 'queued' AND backfill_id IS NOT NULL)",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::new();
        for r in &rows {
            out.insert(
                r.try_get("id")?,
                BackfillGate {
                    is_paused: r.try_get::<i64, _>("is_paused")? != 0,
                    cancelled: r.try_get::<Option<i64>, _>("cancelled_at")?.is_some(),
                    max_active_runs: r.try_get("max_active_runs")?,
                    running: r.try_get("running")?,
                },
            );
        }
        Ok(out)
    }
}
