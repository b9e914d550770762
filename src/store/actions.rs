//! What users do to runs from the UI, the API and the CLI: clear task instances (run them
//! again) and mark them success or failed.
//!
//! Invariants: every write is a compare-and-set on the state the caller saw, so an action
//! racing the scheduler changes nothing rather than something unexpected; the new values
//! (state, max tries) are decided by `model`, not here. An instance whose try is running
//! (`model::needs_stop`) does not change state here: the action is recorded as a stop request,
//! and the try's worker (or crash recovery) applies it once the try's processes are gone. A
//! finished run touched by an action is set back to running so that the scheduler re-examines
//! it and decides its state again.

use chrono::{DateTime, Utc};

use super::stops::request_stop;
use super::{Result, Store, to_us};
use crate::model::{self, StopRequest, TaskState};

/// One task instance to clear.
#[derive(Debug, Clone, PartialEq)]
pub struct ClearTi {
    /// Task instance primary key.
    pub id: i64,
    /// The state the caller saw; the clear applies only if it is still so.
    pub from: TaskState,
    /// New `max_tries` (from `model::transition::cleared_max_tries`).
    pub max_tries: i64,
}

impl Store {
    /// Clears instances of one run (back to `none`, retry and sensor timers reset) and reopens
    /// the run; a running one gets a stop request instead (it is cleared once its try is
    /// stopped). Returns how many were cleared or asked to stop. One transaction.
    pub async fn clear_tis(
        &self,
        run_pk: i64,
        tis: &[ClearTi],
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let mut cleared = 0;
        for ti in tis {
            if model::needs_stop(ti.from) {
                let request = StopRequest::Clear { max_tries: ti.max_tries };
                let asked =
                    request_stop(&mut tx, run_pk, ti.id, &request, note, to_us(now)).await?;
                cleared += u64::from(asked);
                continue;
            }
            let done = sqlx::query(
                "UPDATE task_instance SET state = 'none', max_tries = $1, next_try_at = NULL, \
                 first_poke_at = NULL, runnable_at = NULL, queued_at = NULL, end_date = NULL, \
                 note = $2, updated_at = $3 WHERE id = $4 AND run_pk = $5 AND state = $6",
            )
            .bind(ti.max_tries)
            .bind(note)
            .bind(to_us(now))
            .bind(ti.id)
            .bind(run_pk)
            .bind(ti.from.as_str())
            .execute(&mut *tx)
            .await?;
            cleared += done.rows_affected();
        }
        if cleared > 0 {
            reopen_run(&mut tx, run_pk).await?;
        }
        tx.commit().await?;
        Ok(cleared)
    }

    /// Sets one instance's state by hand (mark success / failed), if it is still in `from`,
    /// and reopens its run; a running instance gets a stop request instead, and takes `to`
    /// once its try is stopped. Returns whether it applied (or was requested).
    pub async fn mark_ti(
        &self,
        run_pk: i64,
        ti_id: i64,
        from: TaskState,
        to: TaskState,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        if model::needs_stop(from) {
            let request = StopRequest::Mark(to);
            let asked = request_stop(&mut tx, run_pk, ti_id, &request, note, to_us(now)).await?;
            tx.commit().await?;
            return Ok(asked);
        }
        let done = sqlx::query(
            "UPDATE task_instance SET state = $1, note = $2, next_try_at = NULL, \
             end_date = $3, updated_at = $3 WHERE id = $4 AND run_pk = $5 AND state = $6",
        )
        .bind(to.as_str())
        .bind(note)
        .bind(to_us(now))
        .bind(ti_id)
        .bind(run_pk)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        let applied = done.rows_affected() == 1;
        if applied {
            reopen_run(&mut tx, run_pk).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }
}

/// A finished run goes back to running; the scheduler then decides its state again.
async fn reopen_run(tx: &mut sqlx::Transaction<'static, sqlx::Any>, run_pk: i64) -> Result<()> {
    sqlx::query(
        "UPDATE dag_run SET state = 'running', end_date = NULL \
         WHERE id = $1 AND state IN ('success', 'failed')",
    )
    .bind(run_pk)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
