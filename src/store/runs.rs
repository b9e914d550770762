//! DAG runs: creation (every trigger is a `queued` row the scheduler picks up), start, finish.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::tis::{NewTi, insert_tis};
use super::{Result, Store, StoreError, conflict, json_col, opt_time, parse_col, time, to_us};
use crate::dag::Dag;
use crate::model::{DagRunState, RunPk, RunType};

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// DAG of the run.
    pub dag_id: String,
    /// Unique within the DAG; Airflow's form is `<run_type>__<logical date>`.
    pub run_id: String,
    /// Why the run exists.
    pub run_type: RunType,
    /// The run's logical date.
    pub logical_date: DateTime<Utc>,
    /// Start of the data interval.
    pub data_interval_start: DateTime<Utc>,
    /// End of the data interval.
    pub data_interval_end: DateTime<Utc>,
    /// Params overriding the DAG's defaults.
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// Who asked for it (user, `scheduler`, `dag:<id>` for trigger_dag).
    pub triggered_by: String,
    /// Its deadlines (`model::deadline::for_new_run`), written with it.
    pub deadlines: Vec<crate::model::deadline::NewDeadline>,
}

impl NewRun {
    /// The run with `dag`'s deadlines armed for it as of `now`, from its own type and logical
    /// date (`model::deadline::for_new_run`: none for a backfill).
    pub fn with_deadlines(mut self, dag: &Dag, now: DateTime<Utc>) -> NewRun {
        self.deadlines =
            crate::model::deadline::for_new_run(dag, self.run_type, self.logical_date, now);
        self
    }

    /// Airflow's run id: `manual__2026-01-01T00:00:00+00:00`.
    pub fn default_run_id(run_type: RunType, logical_date: DateTime<Utc>) -> String {
        format!("{}__{}", run_type.as_str(), logical_date.to_rfc3339())
    }
}

/// One row of `dag_run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Primary key.
    pub id: RunPk,
    /// DAG of the run.
    pub dag_id: String,
    /// Run id, unique within the DAG.
    pub run_id: String,
    /// Why the run exists.
    pub run_type: RunType,
    /// Current state.
    pub state: DagRunState,
    /// Logical date.
    pub logical_date: DateTime<Utc>,
    /// Start of the data interval.
    pub data_interval_start: DateTime<Utc>,
    /// End of the data interval.
    pub data_interval_end: DateTime<Utc>,
    /// Params given at trigger time.
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// Who asked for it.
    pub triggered_by: Option<String>,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
    /// When it started running.
    pub start_date: Option<DateTime<Utc>>,
    /// When it finished.
    pub end_date: Option<DateTime<Utc>>,
    /// The DAG version (source hash) the run was started from, which it keeps to the end;
    /// None for runs started before versions were recorded (they follow the current source).
    pub dag_version: Option<String>,
    /// What a person wrote on the run, if anything.
    pub note: Option<String>,
    /// The backfill that created it or ran it again, if any.
    pub backfill_id: Option<i64>,
}

pub(super) const RUN_COLS: &str = "id, dag_id, run_id, run_type, state, logical_date, \
    data_interval_start, data_interval_end, conf, triggered_by, created_at, start_date, end_date, \
    dag_version, user_note, backfill_id";

pub(super) fn run_row(row: &AnyRow) -> Result<RunRow> {
    Ok(RunRow {
        id: row.try_get("id")?,
        dag_id: row.try_get("dag_id")?,
        run_id: row.try_get("run_id")?,
        run_type: parse_col(row, "run_type")?,
        state: parse_col(row, "state")?,
        logical_date: time(row, "logical_date")?,
        data_interval_start: time(row, "data_interval_start")?,
        data_interval_end: time(row, "data_interval_end")?,
        conf: json_col(row, "conf")?,
        triggered_by: row.try_get("triggered_by")?,
        created_at: time(row, "created_at")?,
        start_date: opt_time(row, "start_date")?,
        end_date: opt_time(row, "end_date")?,
        dag_version: row.try_get("dag_version")?,
        note: row.try_get("user_note")?,
        backfill_id: row.try_get("backfill_id")?,
    })
}

/// The statement of [`Store::set_run_state`], in `tx`.
pub(super) async fn set_run_state_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_pk: RunPk,
    from: DagRunState,
    to: DagRunState,
    now: DateTime<Utc>,
) -> Result<bool> {
    let end = to.is_finished().then(|| to_us(now));
    let done = sqlx::query(
        "UPDATE dag_run SET state = $1, end_date = CASE WHEN $2 IS NULL THEN NULL ELSE \
         COALESCE((SELECT MAX(end_date) FROM task_instance WHERE run_pk = $3), $2) END \
         WHERE id = $3 AND state = $4",
    )
    .bind(to.as_str())
    .bind(end)
    .bind(run_pk)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The insert of a queued run: the values of [`bind_run`].
pub(super) const INSERT_RUN: &str = "INSERT INTO dag_run (dag_id, run_id, run_type, state, \
    logical_date, data_interval_start, data_interval_end, conf, triggered_by, created_at, \
    queued_at, backfill_id) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $9, $10)";

/// Binds `run` (created at `now`, in `backfill` if any) to an [`INSERT_RUN`] statement.
pub(super) fn bind_run<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    run: &'q NewRun,
    backfill: Option<i64>,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let conf = serde_json::Value::Object(run.conf.clone()).to_string();
    q.bind(&run.dag_id)
        .bind(&run.run_id)
        .bind(run.run_type.as_str())
        .bind(to_us(run.logical_date))
        .bind(to_us(run.data_interval_start))
        .bind(to_us(run.data_interval_end))
        .bind(conf)
        .bind(&run.triggered_by)
        .bind(to_us(now))
        .bind(backfill)
}

impl Store {
    /// Creates a run in state `queued`; the scheduler starts it when `max_active_runs` allows.
    /// Fails with [`StoreError::Conflict`] when the run id is taken.
    pub async fn create_run(&self, run: &NewRun, now: DateTime<Utc>) -> Result<RunRow> {
        let sql = format!("{INSERT_RUN} RETURNING {RUN_COLS}");
        let mut tx = self.write_tx().await?;
        let row = bind_run(sqlx::query(&sql), run, None, now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("run `{}` of DAG `{}`", run.run_id, run.dag_id)))?;
        let created = run_row(&row)?;
        super::deadlines::insert_in(&mut tx, created.id, &run.dag_id, &run.deadlines).await?;
        tx.commit().await?;
        if !run.deadlines.is_empty() {
            self.deadlines_changed.notify_one();
        }
        Ok(created)
    }

    /// Moves a queued run to running and creates its task instances, in one transaction.
    /// `pin` is the DAG the instances come from: the run is pinned to its version, which is
    /// recorded in the same transaction if no scan did, so a pinned version always exists.
    /// Returns false when the run was no longer queued (another scheduler took it).
    pub async fn start_run(
        &self,
        run_pk: RunPk,
        pin: Option<&Dag>,
        tis: &[NewTi],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let version = pin.map(|dag| dag.version.as_str());
        let done = sqlx::query(
            "UPDATE dag_run SET state = 'running', start_date = $1, dag_version = $2 \
             WHERE id = $3 AND state = 'queued'",
        )
        .bind(to_us(now))
        .bind(version)
        .bind(run_pk)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(dag) = pin {
            super::dags::record_version(&mut tx, dag, now).await?;
        }
        insert_tis(&mut tx, run_pk, tis, now).await?;
        let timed = super::deadlines::start_in(&mut tx, run_pk, now).await?;
        tx.commit().await?;
        if timed {
            self.deadlines_changed.notify_one();
        }
        Ok(true)
    }

    /// Sets a run's state; finishing states stamp `end_date` with the last end of its task
    /// instances (`now` when none has one), so a run finished again after a mark keeps the
    /// time its work really ended; `running` clears it (a cleared run runs again). `from`
    /// guards against a concurrent change.
    pub async fn set_run_state(
        &self,
        run_pk: RunPk,
        from: DagRunState,
        to: DagRunState,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let done = set_run_state_in(&mut tx, run_pk, from, to, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Runs in `state`, oldest logical date first, at most `limit`.
    pub async fn runs_in_state(&self, state: DagRunState, limit: i64) -> Result<Vec<RunRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM dag_run WHERE state = $1 ORDER BY logical_date, id LIMIT $2"
        ))
        .bind(state.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_row).collect()
    }

    /// One run by primary key.
    pub async fn get_run(&self, run_pk: RunPk) -> Result<RunRow> {
        let row = sqlx::query(&format!("SELECT {RUN_COLS} FROM dag_run WHERE id = $1"))
            .bind(run_pk)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(run_row)
            .unwrap_or_else(|| Err(StoreError::NotFound(format!("run #{run_pk}"))))
    }

    /// One run by DAG and run id.
    pub async fn find_run(&self, dag_id: &str, run_id: &str) -> Result<Option<RunRow>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM dag_run WHERE dag_id = $1 AND run_id = $2"
        ))
        .bind(dag_id)
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// The newest run of a DAG with this logical date.
    pub async fn find_run_by_logical_date(
        &self,
        dag_id: &str,
        logical_date: DateTime<Utc>,
    ) -> Result<Option<RunRow>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM dag_run WHERE dag_id = $1 AND logical_date = $2 \
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(dag_id)
        .bind(to_us(logical_date))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// Runs of a DAG, newest first; `before` (a run primary key) pages backwards.
    pub async fn list_runs(
        &self,
        dag_id: &str,
        before: Option<RunPk>,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        self.browse_runs(&super::RunFilter::dag(dag_id), before, limit).await
    }

    /// Whether a run with this logical date and type exists (the scheduler never creates a
    /// scheduled run twice for one interval).
    pub async fn run_exists_for(&self, dag_id: &str, logical_date: DateTime<Utc>) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM dag_run WHERE dag_id = $1 AND logical_date = $2 \
             AND run_type IN ('scheduled', 'backfill')",
        )
        .bind(dag_id)
        .bind(to_us(logical_date))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
    /// Running (and with `include_queued`, queued) runs per DAG id, for `max_active_runs`.
    pub async fn run_counts_by_dag(
        &self,
        include_queued: bool,
    ) -> Result<std::collections::HashMap<String, i64>> {
        let states = if include_queued { "('running', 'queued')" } else { "('running')" };
        let rows = sqlx::query(&format!(
            "SELECT dag_id, COUNT(*) AS n FROM dag_run WHERE state IN {states} GROUP BY dag_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("dag_id")?, r.try_get("n")?))).collect()
    }
}
