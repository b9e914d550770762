//! What users do to runs from the UI, the API and the CLI: clear task instances (run them
//! again) and mark them success or failed.
//!
//! Invariants: every write is a compare-and-set on the state the caller saw, so an action
//! racing the scheduler changes nothing rather than something unexpected; what is written
//! (a stop request, a clear with its max tries, a mark) and what becomes of the run are decided
//! by `model::user_change`, not here. A stop request leaves the instance's state alone: the
//! try's worker (or crash recovery) applies it once the try's processes are gone.

use chrono::{DateTime, Utc};

use super::stops::request_stop;
use super::{Result, Store, parse_col, to_us};
use crate::model::{self, DagRunState, RunPk, TaskState, TiId, UserWrite};

/// One task instance a user changes, with what `model::user_change` decided for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TiChange {
    /// Task instance primary key.
    pub id: TiId,
    /// The state the caller saw; the change applies only if it is still so.
    pub from: TaskState,
    /// What to write (`model::user_change::clear` or `mark`).
    pub write: UserWrite,
}

impl Store {
    /// Applies a user's clear or mark to instances of one run, in one transaction, each by a
    /// compare-and-set on its `from` state; a run that any of them changed takes the state
    /// `model::user_change::reopened` gives it. Returns how many applied (a stop request
    /// counts: it applies once the try is stopped).
    pub async fn change_tis(
        &self,
        run_pk: RunPk,
        changes: &[TiChange],
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let now = to_us(now);
        let mut applied = 0;
        for c in changes {
            let done = match &c.write {
                UserWrite::Stop(request) => {
                    u64::from(request_stop(&mut tx, run_pk, c.id, request, note, now).await?)
                }
                UserWrite::Clear { max_tries } => sqlx::query(
                    "UPDATE task_instance SET state = $1, max_tries = $2, next_try_at = NULL, \
                     first_poke_at = NULL, runnable_at = NULL, queued_at = NULL, \
                     end_date = NULL, note = $3, updated_at = $4 \
                     WHERE id = $5 AND run_pk = $6 AND state = $7",
                )
                .bind(TaskState::None.as_str())
                .bind(*max_tries)
                .bind(note)
                .bind(now)
                .bind(c.id)
                .bind(run_pk)
                .bind(c.from.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                // A mark is a decision, not a try: the instance keeps its real start and end
                // (none if it never ran), so durations, gantt and grid stay true; who marked
                // it and when is its note and its audit entry.
                UserWrite::Mark(to) => sqlx::query(
                    "UPDATE task_instance SET state = $1, note = $2, next_try_at = NULL, \
                     updated_at = $3 WHERE id = $4 AND run_pk = $5 AND state = $6",
                )
                .bind(to.as_str())
                .bind(note)
                .bind(now)
                .bind(c.id)
                .bind(run_pk)
                .bind(c.from.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            };
            applied += done;
        }
        if applied > 0 {
            reopen_run(&mut tx, run_pk).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }
}

/// Gives a run the state `model` decides for a run whose instances a user changed.
async fn reopen_run(tx: &mut sqlx::Transaction<'static, sqlx::Any>, run_pk: RunPk) -> Result<()> {
    let row = sqlx::query("SELECT state FROM dag_run WHERE id = $1")
        .bind(run_pk)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(()) };
    let from: DagRunState = parse_col(&row, "state")?;
    let Some(to) = model::user_change::reopened(from) else { return Ok(()) };
    // A reopened run has no end yet.
    sqlx::query("UPDATE dag_run SET state = $1, end_date = NULL WHERE id = $2 AND state = $3")
        .bind(to.as_str())
        .bind(run_pk)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
