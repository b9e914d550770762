//! `type: trigger_dag`: creates a run of another DAG, and optionally waits for it.
//!
//! This file owns how the triggered run is named and created. A trigger is only a `queued`
//! run row: the scheduler starts it like any manual run. It must be idempotent: with
//! `wait_for_completion` the task pokes again and again (and a retried try runs again), and
//! each poke must find the run it created instead of creating another one.

use std::path::Path;

use chrono::Utc;
use serde_json::{Value, json};

use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::TriggerDagTask;
use crate::model::{DagRunState, RunType};
use crate::store::{NewRun, StoreError};

/// Creates the run (or finds the one an earlier poke created); with `wait_for_completion`,
/// done when it succeeded, fatal when it failed, not yet otherwise.
pub async fn run(ctx: &TaskContext, task: &TriggerDagTask) -> Result<Outcome, OperatorError> {
    let dag_id = &task.trigger_dag_id;
    let target = match ctx.store.get_dag(dag_id).await {
        Ok(dag) if dag.is_active => dag,
        Ok(_) => {
            return Err(OperatorError::Fatal(format!(
                "DAG `{dag_id}` to trigger is not active: its file is gone or does not load"
            )));
        }
        Err(StoreError::NotFound(_)) => {
            return Err(OperatorError::Fatal(format!("DAG `{dag_id}` to trigger does not exist")));
        }
        Err(e) => return Err(OperatorError::Retryable(format!("reading DAG `{dag_id}`: {e}"))),
    };
    let run_id = match &task.trigger_run_id {
        Some(text) => ctx.render("trigger_run_id", text)?,
        None => default_run_id(ctx),
    };
    if let Some(why) = crate::model::run_id::run_id_problem(&run_id) {
        let rule = crate::model::run_id::RUN_ID_RULE;
        let shown = run_id.escape_default();
        return Err(OperatorError::Fatal(format!("trigger_run_id `{shown}` {why}: {rule}")));
    }
    let conf = match &task.conf {
        None => serde_json::Map::new(),
        Some(conf) => match ctx.renderer().render_json(conf)? {
            Value::Object(map) => map,
            other => {
                return Err(OperatorError::Fatal(format!("conf must be a mapping, not {other}")));
            }
        },
    };
    ctx.record("conf", Value::Object(conf.clone()));
    // A re-poke or a retry finds the run an earlier one created; only the first reads the
    // target's deadlines (from its stored source, as a trigger from the UI arms them) and
    // creates it.
    let state = match existing(ctx, dag_id, &run_id).await? {
        Some(state) => state,
        None => {
            let now = Utc::now();
            let new = NewRun {
                dag_id: dag_id.clone(),
                run_id: run_id.clone(),
                run_type: RunType::Manual,
                logical_date: now,
                data_interval_start: now,
                data_interval_end: now,
                conf,
                triggered_by: format!("dag:{}", ctx.run.dag_id),
                deadlines: Vec::new(),
            };
            // An active DAG's source parses; were it not to, the run has no deadline.
            let new = match crate::dag::parse_dag_str(&target.source, Path::new(&target.fileloc)) {
                Ok(dag) => new.with_deadlines(&dag, now),
                Err(_) => new,
            };
            match ctx.store.create_run(&new, now).await {
                Ok(row) => {
                    ctx.log.line(format!("triggered run `{run_id}` of DAG `{dag_id}`"));
                    row.state
                }
                // Another try created it meanwhile: that is the run to report on.
                Err(StoreError::Conflict(_)) => {
                    existing(ctx, dag_id, &run_id).await?.ok_or_else(|| {
                        OperatorError::Retryable(format!(
                            "run `{run_id}` of DAG `{dag_id}` exists but cannot be read"
                        ))
                    })?
                }
                Err(e) => {
                    return Err(OperatorError::Retryable(format!(
                        "creating run `{run_id}` of DAG `{dag_id}`: {e}"
                    )));
                }
            }
        }
    };
    let xcom = json!({"dag_id": dag_id, "run_id": run_id});
    if !task.wait_for_completion {
        return Ok(Outcome::Done(Some(xcom)));
    }
    match state {
        DagRunState::Success => Ok(Outcome::Done(Some(xcom))),
        DagRunState::Failed => {
            Err(OperatorError::Fatal(format!("triggered run `{run_id}` of DAG `{dag_id}` failed")))
        }
        other => {
            Ok(Outcome::NotYet(format!("triggered run `{run_id}` of DAG `{dag_id}` is {other}")))
        }
    }
}

/// The state of run `run_id` of `dag_id`, if it exists.
async fn existing(
    ctx: &TaskContext,
    dag_id: &str,
    run_id: &str,
) -> Result<Option<DagRunState>, OperatorError> {
    match ctx.store.find_run(dag_id, run_id).await {
        Ok(run) => Ok(run.map(|r| r.state)),
        Err(e) => Err(OperatorError::Retryable(format!("reading run `{run_id}`: {e}"))),
    }
}

/// `triggered__<this dag>__<this run>__<this task>[__<map index>]`.
///
/// Deterministic on purpose: Airflow's `manual__<now>` would name a new run on every poke of a
/// waiting trigger and on every retry, triggering the DAG again each time. Keyed on this task
/// instance, every poke and retry finds the same run. (Clearing this task therefore reports on
/// the run it triggered before; set `trigger_run_id` to trigger afresh.)
fn default_run_id(ctx: &TaskContext) -> String {
    let mut id = format!("triggered__{}__{}__{}", ctx.run.dag_id, ctx.run.run_id, ctx.ti.task_id);
    if ctx.ti.map_index >= 0 {
        id.push_str(&format!("__{}", ctx.ti.map_index));
    }
    id
}
