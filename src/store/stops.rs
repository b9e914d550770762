//! Stop requests: a mark or clear of a task instance whose try is running. The request is kept
//! beside the instance (which stays `running`) until the try's processes are gone; then the
//! outcome `model::after_stop` decides is recorded once, by the worker or by crash recovery.
//!
//! Invariants: a request is written only on a running instance, and applied only by a
//! compare-and-set on the very request that was read (a newer request makes the write miss, and
//! the caller reads again); the final write empties the request in the same statement.

use sqlx::Row;

use super::tries::{FinishTry, end_try_row, put_return_value};
use super::{Result, Store, parse_col, to_us};
use crate::model::{AfterStop, RunPk, StopRequest, TaskState, TiId};

/// A request waiting for a running try to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStop {
    /// What was asked.
    pub request: StopRequest,
    /// Who asked, as the instance's note will say (`marked success by alice`).
    pub note: String,
}

/// Records a stop request on a running instance of `run_pk`, in the caller's transaction.
/// Returns whether the instance was running (and so took the request).
pub(super) async fn request_stop(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_pk: RunPk,
    ti_id: TiId,
    request: &StopRequest,
    note: &str,
    now: i64,
) -> Result<bool> {
    let (state, max_tries) = request.parts();
    let done = sqlx::query(
        "UPDATE task_instance SET requested_state = $1, requested_max_tries = $2, \
         requested_note = $3, updated_at = $4 WHERE id = $5 AND run_pk = $6 AND state = 'running'",
    )
    .bind(state.as_str())
    .bind(max_tries)
    .bind(note)
    .bind(now)
    .bind(ti_id)
    .bind(run_pk)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// Running tries of `owner_process` that a user asked to stop: `(ti_id, try_number)`.
    /// Cheap enough to ask every second: it reads only running instances (an index range).
    pub async fn stop_requests(&self, owner_process: &str) -> Result<Vec<(TiId, i64)>> {
        let rows = sqlx::query(
            "SELECT id, try_number FROM task_instance WHERE state = 'running' \
             AND owner_process = $1 AND requested_state IS NOT NULL",
        )
        .bind(owner_process)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("try_number")?))).collect()
    }

    /// The stop request on try `try_number` of an instance, if it is still running with one.
    pub async fn pending_stop(&self, ti_id: TiId, try_number: i64) -> Result<Option<PendingStop>> {
        let row = sqlx::query(
            "SELECT requested_state, requested_max_tries, requested_note FROM task_instance \
             WHERE id = $1 AND try_number = $2 AND state = 'running' \
             AND requested_state IS NOT NULL",
        )
        .bind(ti_id)
        .bind(try_number)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let state: TaskState = parse_col(&row, "requested_state")?;
        let max_tries: Option<i64> = row.try_get("requested_max_tries")?;
        let note: Option<String> = row.try_get("requested_note")?;
        Ok(Some(PendingStop {
            request: StopRequest::from_parts(state, max_tries),
            note: note.unwrap_or_default(),
        }))
    }

    /// Ends a try that a user asked to stop: the instance takes `outcome.state` (a clear also
    /// resets its timers and takes the new max tries), the try's history row `try_state`, and
    /// the request is emptied — only if `stop` is still the request on this running try.
    /// Returns whether it applied. One transaction.
    pub async fn finish_stopped(
        &self,
        f: &FinishTry,
        stop: &PendingStop,
        outcome: &AfterStop,
    ) -> Result<bool> {
        let (asked, asked_max) = stop.request.parts();
        let cleared = outcome.state == TaskState::None;
        let set = if cleared {
            "max_tries = COALESCE($2, max_tries), runnable_at = NULL, queued_at = NULL, \
             end_date = NULL"
        } else {
            "max_tries = COALESCE($2, max_tries), end_date = $4"
        };
        let mut tx = self.write_tx().await?;
        let end = to_us(f.end);
        let done = sqlx::query(&format!(
            "UPDATE task_instance SET state = $1, {set}, note = $3, next_try_at = NULL, \
             first_poke_at = NULL, rendered = COALESCE($5, rendered), requested_state = NULL, \
             requested_max_tries = NULL, requested_note = NULL, updated_at = $4 \
             WHERE id = $6 AND try_number = $7 AND state = 'running' AND requested_state = $8 \
             AND COALESCE(requested_max_tries, -1) = $9 AND COALESCE(requested_note, '') = $10 \
             AND owner_process = $11"
        ))
        .bind(outcome.state.as_str())
        .bind(outcome.max_tries)
        .bind(&stop.note)
        .bind(end)
        .bind(f.rendered.as_ref().map(|v| v.to_string()))
        .bind(f.ti_id)
        .bind(f.try_number)
        .bind(asked.as_str())
        .bind(asked_max.unwrap_or(-1))
        .bind(&stop.note)
        .bind(f.owner_process.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let why = format!("stopped on request: {}", stop.note);
        end_try_row(&mut tx, f, outcome.try_state, Some(why)).await?;
        if outcome.keep_xcom
            && let Some(value) = &f.xcom
        {
            put_return_value(&mut tx, f.ti_id, value).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
