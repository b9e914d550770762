//! What operators do, shared by the pages and the API so both behave identically: trigger a
//! run, pause, clear task instances (with downstream), mark a task instance. Each writes an
//! audit entry.
//!
//! Invariant: callers have already checked `Action::Operate`; these functions decide nothing
//! about states themselves but ask `model` (`can_clear`, `can_mark`, `cleared_max_tries`).

use chrono::{DateTime, Utc};

use super::auth::Principal;
use super::{AppState, WebError};
use crate::model::{self, RunType, TaskState};
use crate::store::{AuditEntry, ClearTi, NewRun, RunRow, TiRow};

/// Creates a manual run in state queued; the scheduler starts it. Unknown params are kept
/// (they reach templates as `params.x`), like Airflow's `dag_run.conf`.
pub async fn trigger(
    state: &AppState,
    user: &Principal,
    dag_id: &str,
    conf: serde_json::Map<String, serde_json::Value>,
    run_id: Option<String>,
    logical_date: Option<DateTime<Utc>>,
) -> Result<RunRow, WebError> {
    let (rec, _) = state.dag(dag_id).await?;
    if !rec.is_active {
        return Err(WebError::Conflict(format!(
            "DAG `{dag_id}` is not active (its file is gone or broken)"
        )));
    }
    let now = Utc::now();
    let logical = logical_date.unwrap_or(now);
    let run_id = run_id.filter(|r| !r.trim().is_empty()).map(|r| r.trim().to_string());
    if let Some(r) = &run_id
        && (r.len() > 250 || r.chars().any(|c| c.is_control() || c == '/'))
    {
        return Err(WebError::BadRequest(format!(
            "run id `{r}`: at most 250 characters, no `/` or control characters"
        )));
    }
    let run = NewRun {
        dag_id: dag_id.to_string(),
        run_id: run_id.unwrap_or_else(|| NewRun::default_run_id(RunType::Manual, now)),
        run_type: RunType::Manual,
        logical_date: logical,
        data_interval_start: logical,
        data_interval_end: logical,
        conf,
        triggered_by: format!("user:{}", user.username),
    };
    let row = state.store.create_run(&run, now).await.map_err(|e| match e {
        crate::store::StoreError::Conflict(_) => {
            WebError::Conflict(format!("a run `{}` of `{dag_id}` already exists", run.run_id))
        }
        other => other.into(),
    })?;
    audit(state, user, "trigger", Some(dag_id), Some(&row.run_id), None, None).await?;
    Ok(row)
}

/// Pauses or unpauses a DAG.
pub async fn set_paused(
    state: &AppState,
    user: &Principal,
    dag_id: &str,
    paused: bool,
) -> Result<(), WebError> {
    state.store.get_dag(dag_id).await?;
    state.store.set_paused(dag_id, paused).await?;
    let event = if paused { "pause" } else { "unpause" };
    audit(state, user, event, Some(dag_id), None, None, None).await
}

/// The run `run_id` of `dag_id`, or NotFound naming both.
pub async fn find_run(state: &AppState, dag_id: &str, run_id: &str) -> Result<RunRow, WebError> {
    state
        .store
        .find_run(dag_id, run_id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no run `{run_id}` of DAG `{dag_id}`")))
}

/// The task instance (`task_id`, `map_index`) of a run, or NotFound naming it.
pub async fn find_ti(
    state: &AppState,
    run: &RunRow,
    task_id: &str,
    map_index: i64,
) -> Result<TiRow, WebError> {
    state.store.find_ti(run.id, task_id, map_index).await?.ok_or_else(|| {
        let mi = if map_index >= 0 { format!("[{map_index}]") } else { String::new() };
        WebError::NotFound(format!("no task instance `{task_id}{mi}` in run `{}`", run.run_id))
    })
}

/// Clears a task instance (every map index of its task when `map_index` is None) and, with
/// `downstream`, every instance of every task downstream of it. Instances still queued or
/// running are left alone. Returns the number cleared.
pub async fn clear(
    state: &AppState,
    user: &Principal,
    run: &RunRow,
    task_id: &str,
    map_index: Option<i64>,
    downstream: bool,
) -> Result<u64, WebError> {
    let (_, dag) = state.dag(&run.dag_id).await?;
    if !dag.tasks.contains_key(task_id) {
        return Err(WebError::NotFound(format!("no task `{task_id}` in DAG `{}`", run.dag_id)));
    }
    let mut tasks = vec![task_id.to_string()];
    if downstream {
        tasks.extend(dag.graph.all_downstream(task_id));
    }
    let tis = state.store.run_tis(run.id).await?;
    let picked: Vec<ClearTi> = tis
        .iter()
        .filter(|ti| tasks.contains(&ti.task_id))
        .filter(|ti| ti.task_id != task_id || map_index.is_none_or(|m| m == ti.map_index))
        .filter(|ti| model::can_clear(ti.state))
        .map(|ti| ClearTi {
            id: ti.id,
            from: ti.state,
            max_tries: model::cleared_max_tries(
                ti.try_number,
                dag.tasks.get(&ti.task_id).map(|t| t.retries).unwrap_or(0),
            ),
        })
        .collect();
    if picked.is_empty() {
        return Err(WebError::Conflict(
            "nothing to clear: the task instances are queued (about to run)".into(),
        ));
    }
    let note = format!("cleared by {}", user.username);
    let n = state.store.clear_tis(run.id, &picked, &note, Utc::now()).await?;
    let extra = format!("{n} task instance(s){}", if downstream { " with downstream" } else { "" });
    audit(state, user, "clear", Some(&run.dag_id), Some(&run.run_id), Some(task_id), Some(extra))
        .await?;
    Ok(n)
}

/// Marks a task instance success or failed.
pub async fn mark(
    state: &AppState,
    user: &Principal,
    run: &RunRow,
    ti: &TiRow,
    to: TaskState,
) -> Result<(), WebError> {
    if !model::can_mark(ti.state, to) {
        return Err(WebError::BadRequest(format!(
            "cannot mark a task instance in state {} as {to}: only success or failed, and not the state it has",
            ti.state
        )));
    }
    let note = format!("marked {to} by {}", user.username);
    let applied = state.store.mark_ti(run.id, ti.id, ti.state, to, &note, Utc::now()).await?;
    if !applied {
        return Err(WebError::Conflict(
            "the task instance changed state meanwhile: reload and try again".into(),
        ));
    }
    let extra = format!("{} -> {to}", ti.state);
    audit(state, user, "mark", Some(&run.dag_id), Some(&run.run_id), Some(&ti.task_id), Some(extra))
        .await
}

/// Writes an audit entry for `user`.
pub async fn audit(
    state: &AppState,
    user: &Principal,
    event: &str,
    dag_id: Option<&str>,
    run_id: Option<&str>,
    task_id: Option<&str>,
    extra: Option<String>,
) -> Result<(), WebError> {
    let entry = AuditEntry {
        username: &user.username,
        event,
        dag_id,
        run_id,
        task_id,
        map_index: None,
        extra,
    };
    state.store.record_audit(&entry, Utc::now()).await?;
    Ok(())
}

/// Refuses ids that could climb out of a directory once joined to a path (log files), before
/// any file is touched. Pages and API both call it.
pub fn check_ids(ids: &[&str]) -> Result<(), WebError> {
    for id in ids {
        if id.is_empty()
            || id.contains('/')
            || id.contains('\\')
            || id.contains("..")
            || id.contains('\0')
        {
            return Err(WebError::BadRequest(format!(
                "invalid id `{}`: ids contain no `/`, `\\`, `..` or NUL",
                id.replace('\0', "\\0")
            )));
        }
    }
    Ok(())
}
