//! `/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`: list a run's task instances,
//! get one (with its tries), mark it success or failed, clear it (with downstream).
//!
//! Invariant: marks and clears go through `crate::actions` (which asks `model` whether the
//! change is allowed and audits it), exactly as the task-instance page's buttons do.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, JsonBody, PathArgs, Principal, QueryArgs, seconds};
use crate::actions;
use crate::model::{TaskState, TiId};
use crate::store::{TiFilter, TiRow, TryRow};
use crate::web::auth::Action;
use crate::web::{AppState, WebError};

/// A task instance as the API shows it.
#[derive(Debug, Serialize)]
pub struct TiJson {
    dag_id: String,
    dag_run_id: String,
    task_id: String,
    /// -1 unless the task is mapped.
    map_index: i64,
    state: &'static str,
    /// Tries started so far.
    try_number: i64,
    max_tries: i64,
    /// The task type.
    operator: String,
    pool: String,
    queue: String,
    priority_weight: i64,
    queued_when: Option<DateTime<Utc>>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    /// Seconds, once the try has ended.
    duration: Option<f64>,
    hostname: Option<String>,
    note: Option<String>,
}

impl From<TiRow> for TiJson {
    fn from(t: TiRow) -> Self {
        TiJson {
            duration: seconds(t.start_date, t.end_date),
            dag_id: t.dag_id,
            dag_run_id: t.run_id,
            task_id: t.task_id,
            map_index: t.map_index,
            state: t.state.as_str(),
            try_number: t.try_number,
            max_tries: t.max_tries,
            operator: t.operator,
            pool: t.pool,
            queue: t.queue,
            priority_weight: t.priority_weight,
            queued_when: t.queued_at,
            start_date: t.start_date,
            end_date: t.end_date,
            hostname: t.hostname,
            note: t.note,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct TiList {
    task_instances: Vec<TiJson>,
    total_entries: usize,
    /// Across runs (`~`): pass as `before` for the next (older) page; null on the last page
    /// and for one run's list (always whole).
    next_before: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct TiListArgs {
    /// Only instances in this state.
    state: Option<TaskState>,
    /// Across runs: page size and the cursor from `next_before`.
    limit: Option<i64>,
    before: Option<i64>,
    /// Across runs: their run's logical date range (RFC 3339).
    logical_date_gte: Option<DateTime<Utc>>,
    logical_date_lte: Option<DateTime<Utc>>,
}

type RunPath = (String, String);
type TiPath = (String, String, String);

/// `GET .../taskInstances`: every instance of the run, by task id then map index. With `~` as
/// the run id (and the DAG id), instances across runs (and DAGs), newest first, in pages.
pub(super) async fn list(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id)): PathArgs<RunPath>,
    QueryArgs(q): QueryArgs<TiListArgs>,
) -> Result<Json<TiList>, ApiError> {
    user.require(Action::Read)?;
    let limit = super::page_limit(q.limit)?;
    if run_id == "~" {
        let f = TiFilter {
            dag_id: (dag_id != "~").then_some(dag_id),
            states: q.state.into_iter().collect(),
            task: None,
            from: q.logical_date_gte,
            to: q.logical_date_lte,
        };
        let mut tis = state.store.browse_tis(&f, q.before.map(TiId), limit + 1).await?;
        let more = tis.len() as i64 > limit;
        tis.truncate(limit as usize);
        let next_before = if more { tis.last().map(|t| t.id.0) } else { None };
        let task_instances: Vec<TiJson> = tis.into_iter().map(TiJson::from).collect();
        return Ok(Json(TiList {
            total_entries: task_instances.len(),
            task_instances,
            next_before,
        }));
    }
    if dag_id == "~" {
        return Err(WebError::BadRequest(
            "DAG id `~` needs run id `~` too: a run id names a run of one DAG".into(),
        )
        .into());
    }
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let mut tis = state.store.run_tis(run.id).await?;
    tis.retain(|t| q.state.is_none_or(|s| s == t.state));
    tis.sort_by(|a, b| (a.task_id.as_str(), a.map_index).cmp(&(b.task_id.as_str(), b.map_index)));
    let task_instances: Vec<TiJson> = tis.into_iter().map(TiJson::from).collect();
    Ok(Json(TiList { total_entries: task_instances.len(), task_instances, next_before: None }))
}

#[derive(Debug, Serialize)]
pub(super) struct TryJson {
    try_number: i64,
    state: &'static str,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    duration: Option<f64>,
    hostname: Option<String>,
    /// Why a failed try failed.
    error: Option<String>,
}

impl From<TryRow> for TryJson {
    fn from(t: TryRow) -> Self {
        TryJson {
            duration: seconds(t.start_date, t.end_date),
            try_number: t.try_number,
            state: t.state.as_str(),
            start_date: t.start_date,
            end_date: t.end_date,
            hostname: t.hostname,
            error: t.error,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct TiDetail {
    #[serde(flatten)]
    ti: TiJson,
    tries: Vec<TryJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MapIndexArg {
    map_index: Option<i64>,
}

async fn detail(state: &AppState, ti: TiRow) -> Result<TiDetail, WebError> {
    let tries = state.store.tries(ti.id).await?.into_iter().map(TryJson::from).collect();
    Ok(TiDetail { ti: ti.into(), tries })
}

/// `GET .../taskInstances/{task_id}?map_index=`: one instance and its tries.
pub(super) async fn get(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id, task_id)): PathArgs<TiPath>,
    QueryArgs(q): QueryArgs<MapIndexArg>,
) -> Result<Json<TiDetail>, ApiError> {
    user.require(Action::Read)?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let ti = actions::find_ti(&state.store, &run, &task_id, q.map_index.unwrap_or(-1)).await?;
    Ok(Json(detail(&state, ti).await?))
}

/// The states a user may set.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MarkState {
    Success,
    Failed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchBody {
    state: MarkState,
    #[serde(default = "unmapped")]
    map_index: i64,
}

pub(super) fn unmapped() -> i64 {
    -1
}

/// `PATCH .../taskInstances/{task_id}`: mark success or failed; answers the instance as it
/// is now.
pub(super) async fn patch(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id, task_id)): PathArgs<TiPath>,
    body: JsonBody,
) -> Result<Json<TiDetail>, ApiError> {
    user.require(Action::Operate)?;
    let body: PatchBody = body.parse(&user)?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let ti = actions::find_ti(&state.store, &run, &task_id, body.map_index).await?;
    let to = match body.state {
        MarkState::Success => TaskState::Success,
        MarkState::Failed => TaskState::Failed,
    };
    actions::mark(&state.store, &user.actor(), &run, &ti, to).await?;
    let now = actions::find_ti(&state.store, &run, &task_id, body.map_index).await?;
    Ok(Json(detail(&state, now).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClearBody {
    /// One mapped instance; all of the task's instances when left out.
    map_index: Option<i64>,
    #[serde(default)]
    include_downstream: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct Cleared {
    cleared: u64,
}

impl Cleared {
    /// How many instances a clear changed.
    pub(super) fn new(cleared: u64) -> Cleared {
        Cleared { cleared }
    }
}

/// `POST .../taskInstances/{task_id}/clear`: re-run it (and with `include_downstream`, every
/// task downstream); 409 when everything picked is queued (a running one is stopped first).
pub(super) async fn clear(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id, task_id)): PathArgs<TiPath>,
    body: JsonBody,
) -> Result<Json<Cleared>, ApiError> {
    user.require(Action::Operate)?;
    let body: ClearBody = body.parse(&user)?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let cleared = actions::clear(
        &state.store,
        &state.dags,
        &user.actor(),
        &run,
        &task_id,
        body.map_index,
        body.include_downstream,
    )
    .await?;
    Ok(Json(Cleared { cleared }))
}
