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
use sqlx::Row;

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

/// What a note is written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteOn {
    Run(RunPk),
    Ti(TiId),
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
        let applied = apply_changes(&mut tx, run_pk, changes, note, to_us(now)).await?;
        if applied > 0 {
            reopen_run(&mut tx, run_pk).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// A user's clear that also moves the run to another version of its DAG (`dag`, recorded
    /// as a version if it is not one yet): the run is pinned to it and gets an instance of
    /// each task in `add` (the version's tasks the run had none of), then the changes apply
    /// as [`Store::change_tis`] applies them. One transaction. Instances of tasks the version
    /// lacks stay as they are: the scheduler removes the pending ones.
    pub async fn change_tis_on_version(
        &self,
        run_pk: RunPk,
        changes: &[TiChange],
        note: &str,
        dag: &crate::dag::Dag,
        add: &[super::NewTi],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        super::dags::record_version(&mut tx, dag, now).await?;
        sqlx::query("UPDATE dag_run SET dag_version = $1 WHERE id = $2")
            .bind(&dag.version)
            .bind(run_pk.0)
            .execute(&mut *tx)
            .await?;
        super::tis::insert_tis(&mut tx, run_pk, add, now).await?;
        let applied = apply_changes(&mut tx, run_pk, changes, note, to_us(now)).await?;
        if applied > 0 || !add.is_empty() {
            reopen_run(&mut tx, run_pk).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Marks a whole run `to` (success or failed) by hand: its instances take `changes`
    /// (`model::user_change::run_mark`), each by compare-and-set, and the run takes `to` if it
    /// is still in `from`, ending at its last instance's end (now if none ran), in one
    /// transaction. False, with nothing written, when the run left `from` meanwhile.
    pub async fn mark_run(
        &self,
        run_pk: RunPk,
        from: DagRunState,
        to: DagRunState,
        changes: &[TiChange],
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = to_us(now);
        let mut tx = self.write_tx().await?;
        let moved = sqlx::query(
            "UPDATE dag_run SET state = $1, start_date = COALESCE(start_date, $2), \
             end_date = COALESCE((SELECT MAX(end_date) FROM task_instance WHERE run_pk = $3), $2) \
             WHERE id = $3 AND state = $4",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(run_pk)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(false);
        }
        apply_changes(&mut tx, run_pk, changes, note, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a run with its task instances, tries and XComs, unless one of its instances is
    /// queued or running (a try that would outlive its row), or when the run is gone: false
    /// then, nothing deleted.
    pub async fn delete_run(&self, run_pk: RunPk) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        // Children first, explicitly, rather than trusting each database's cascade settings.
        let busy = sqlx::query(
            "SELECT COUNT(*) AS n FROM task_instance WHERE run_pk = $1 \
             AND state IN ('queued', 'running')",
        )
        .bind(run_pk)
        .fetch_one(&mut *tx)
        .await?;
        if busy.try_get::<i64, _>("n")? > 0 {
            return Ok(false);
        }
        let gone = delete_run_rows(&mut tx, run_pk).await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// Sets (or with None removes) the note people keep on a run or a task instance.
    pub async fn set_note(&self, on: NoteOn, note: Option<&str>) -> Result<()> {
        let (sql, id) = match on {
            NoteOn::Run(pk) => ("UPDATE dag_run SET user_note = $1 WHERE id = $2", pk.0),
            NoteOn::Ti(id) => ("UPDATE task_instance SET user_note = $1 WHERE id = $2", id.0),
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(sql).bind(note).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The note people keep on a task instance.
    pub async fn ti_note(&self, ti: TiId) -> Result<Option<String>> {
        let row = sqlx::query("SELECT user_note FROM task_instance WHERE id = $1")
            .bind(ti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get("user_note")?,
            None => None,
        })
    }
}

/// Applies each change by compare-and-set on its `from` state; how many applied.
async fn apply_changes(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_pk: RunPk,
    changes: &[TiChange],
    note: &str,
    now: i64,
) -> Result<u64> {
    let mut applied = 0;
    for c in changes {
        let done = match &c.write {
            UserWrite::Stop(request) => {
                u64::from(request_stop(tx, run_pk, c.id, request, note, now).await?)
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
            .execute(&mut **tx)
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
            .execute(&mut **tx)
            .await?
            .rows_affected(),
        };
        applied += done;
    }
    Ok(applied)
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

/// Deletes run `run_pk` with every row that belongs to it, children first (SQLite enforces
/// foreign keys only when asked, so no `ON DELETE CASCADE` is relied on): its XComs, tries,
/// task instances, asset-event links, deadlines and settled notifications. A notification
/// still to be delivered stays: its outbox row holds all it says, and the sender delivers it.
/// Whether the run row was there. Shared by a user's delete and `db clean`.
pub(super) async fn delete_run_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run_pk: RunPk,
) -> Result<bool> {
    for sql in [
        "DELETE FROM xcom WHERE run_pk = $1",
        "DELETE FROM task_try WHERE ti_id IN (SELECT id FROM task_instance WHERE run_pk = $1)",
        "DELETE FROM task_instance WHERE run_pk = $1",
        "DELETE FROM dag_run_asset_event WHERE run_pk = $1",
        "DELETE FROM deadline WHERE run_pk = $1",
        "DELETE FROM notification WHERE run_pk = $1 AND status IN ('sent', 'failed')",
    ] {
        sqlx::query(sql).bind(run_pk).execute(&mut **tx).await?;
    }
    let gone = sqlx::query("DELETE FROM dag_run WHERE id = $1").bind(run_pk).execute(&mut **tx);
    Ok(gone.await?.rows_affected() > 0)
}
