//! `/api/v1/dags/{dag_id}/dagRuns`: list (newest first, keyset pagination with `before`),
//! trigger (conf, run id, logical date), get one.
//!
//! Invariant: a trigger goes through `actions::trigger` — it only writes a queued run the
//! scheduler picks up, and audits it — exactly as the trigger form does.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, JsonBody, PathArgs, Principal, QueryArgs, page_limit};
use crate::actions::{self, ConfInput, TriggerRequest};
use crate::model::{DagRunState, RunPk, RunType};
use crate::store::{RunFilter, RunRow};
use crate::web::auth::Action;
use crate::web::{AppState, WebError};

/// A DAG run as the API shows it.
#[derive(Debug, Serialize)]
pub struct RunJson {
    dag_id: String,
    dag_run_id: String,
    /// scheduled, manual, backfill...
    run_type: &'static str,
    /// queued, running, success, failed.
    state: &'static str,
    logical_date: DateTime<Utc>,
    data_interval_start: DateTime<Utc>,
    data_interval_end: DateTime<Utc>,
    conf: serde_json::Map<String, serde_json::Value>,
    /// `user:<name>`, `scheduler`, `dag:<id>`.
    triggered_by: Option<String>,
    /// When the run was created (it waits in `queued` until `max_active_runs` allows).
    queued_at: DateTime<Utc>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    /// What a person wrote on the run (`setNote`).
    note: Option<String>,
}

impl From<RunRow> for RunJson {
    fn from(r: RunRow) -> Self {
        RunJson {
            dag_id: r.dag_id,
            dag_run_id: r.run_id,
            run_type: r.run_type.as_str(),
            state: r.state.as_str(),
            logical_date: r.logical_date,
            data_interval_start: r.data_interval_start,
            data_interval_end: r.data_interval_end,
            conf: r.conf,
            triggered_by: r.triggered_by,
            queued_at: r.created_at,
            start_date: r.start_date,
            end_date: r.end_date,
            note: r.note,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct RunList {
    dag_runs: Vec<RunJson>,
    total_entries: i64,
    /// Pass as `before` to get the next (older) page; null on the last page.
    next_before: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListArgs {
    limit: Option<i64>,
    /// A cursor from `next_before`: only runs older than it.
    before: Option<i64>,
    /// Only runs in this state.
    state: Option<DagRunState>,
    /// Only runs of this type.
    run_type: Option<RunType>,
    /// Logical date at or after (RFC 3339).
    logical_date_gte: Option<DateTime<Utc>>,
    /// Logical date at or before (RFC 3339).
    logical_date_lte: Option<DateTime<Utc>>,
}

/// `GET /dags/{dag_id}/dagRuns`; `~` as the DAG id lists every DAG's runs (as Airflow's API).
pub(super) async fn list(
    State(state): State<AppState>,
    user: Principal,
    PathArgs(dag_id): PathArgs<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> Result<Json<RunList>, ApiError> {
    user.require(Action::Read)?;
    let limit = page_limit(q.limit)?;
    let every = dag_id == "~";
    if !every {
        // 404 for an unknown DAG rather than an empty list, so typos show.
        state.store.get_dag(&dag_id).await?;
    }
    let f = RunFilter {
        dag_id: (!every).then_some(dag_id),
        states: q.state.into_iter().collect(),
        run_type: q.run_type,
        from: q.logical_date_gte,
        to: q.logical_date_lte,
        ended_from: None,
        backfill: None,
    };
    // One more than asked tells whether an older page exists without a second query.
    let mut runs = state.store.browse_runs(&f, q.before.map(RunPk), limit + 1).await?;
    let more = runs.len() as i64 > limit;
    runs.truncate(limit as usize);
    let next_before = if more { runs.last().map(|r| r.id.0) } else { None };
    let total_entries = state.store.count_runs(&f).await?;
    Ok(Json(RunList {
        dag_runs: runs.into_iter().map(RunJson::from).collect(),
        total_entries,
        next_before,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerBody {
    /// Params for this run, overriding the DAG's defaults key by key.
    #[serde(default)]
    conf: serde_json::Map<String, serde_json::Value>,
    /// Defaults to `manual__<now>`.
    dag_run_id: Option<String>,
    /// Defaults to now.
    logical_date: Option<DateTime<Utc>>,
}

/// `POST /dags/{dag_id}/dagRuns`: a queued manual run (200 with the run, as Airflow answers);
/// 400 naming the param when the conf does not fit the DAG's params (JSON values are never
/// converted: `"50"` is not an integer), or naming the rule a run id breaks; 409 when the run
/// id is taken.
pub(super) async fn trigger(
    State(state): State<AppState>,
    user: Principal,
    PathArgs(dag_id): PathArgs<String>,
    body: JsonBody,
) -> Result<Json<RunJson>, ApiError> {
    user.require(Action::Operate)?;
    let body: TriggerBody = body.parse(&user)?;
    if body.dag_run_id.as_deref().is_some_and(|r| r.trim().is_empty()) {
        return Err(WebError::BadRequest(
            "request body, field `dag_run_id`: must not be empty (leave it out for a default)"
                .into(),
        )
        .into());
    }
    let dag = actions::active_dag(&state.store, &state.dags, &dag_id).await?;
    let req = TriggerRequest {
        conf: ConfInput::Json(body.conf),
        run_id: body.dag_run_id,
        logical_date: body.logical_date,
    };
    let run = actions::trigger(&state.store, &user.actor(), &dag, req).await?;
    Ok(Json(run.into()))
}

/// `GET /dags/{dag_id}/dagRuns/{dag_run_id}`.
pub(super) async fn get(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id)): PathArgs<(String, String)>,
) -> Result<Json<RunJson>, ApiError> {
    user.require(Action::Read)?;
    Ok(Json(actions::find_run(&state.store, &dag_id, &run_id).await?.into()))
}

/// The body of a run's clear.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClearRunBody {
    /// Only the failed and upstream-failed instances.
    #[serde(default)]
    only_failed: bool,
    /// Run the DAG as it is now instead of the version the run is pinned to.
    #[serde(default)]
    run_on_latest_version: bool,
}

/// `POST /dags/{dag_id}/dagRuns/{dag_run_id}/clear`: clears the run (or its failed instances).
pub(super) async fn clear(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id)): PathArgs<(String, String)>,
    body: JsonBody,
) -> Result<Json<super::tis::Cleared>, ApiError> {
    user.require(Action::Operate)?;
    let body: ClearRunBody = body.parse(&user)?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let actor = user.actor();
    let version = if body.run_on_latest_version {
        actions::RunVersion::Latest
    } else {
        actions::RunVersion::Pinned
    };
    let cleared =
        actions::clear_run(&state.store, &state.dags, &actor, &run, body.only_failed, version)
            .await?;
    Ok(Json(super::tis::Cleared::new(cleared)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchRunBody {
    /// `success` or `failed`.
    state: DagRunState,
}

/// `PATCH /dags/{dag_id}/dagRuns/{dag_run_id}`: mark the run success or failed (its unfinished
/// instances decided as the run page's buttons do); answers the run as it is now.
pub(super) async fn patch(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id)): PathArgs<(String, String)>,
    body: JsonBody,
) -> Result<Json<RunJson>, ApiError> {
    user.require(Action::Operate)?;
    let body: PatchRunBody = body.parse(&user)?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    actions::mark_run(&state.store, &state.lineage, &user.actor(), &run, body.state).await?;
    Ok(Json(actions::find_run(&state.store, &dag_id, &run_id).await?.into()))
}

/// `DELETE /dags/{dag_id}/dagRuns/{dag_run_id}`: 204; 409 while an instance is queued or
/// running.
pub(super) async fn delete(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id)): PathArgs<(String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    user.require(Action::Operate)?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    actions::delete_run(&state.store, &state.settings.log_dir(), &user.actor(), &run).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoteBody {
    /// The note; empty removes it.
    note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TiNoteBody {
    /// The note; empty removes it.
    note: String,
    /// One mapped instance (-1, the default, for an unmapped task).
    #[serde(default = "super::tis::unmapped")]
    map_index: i64,
}

/// `PATCH /dags/{dag_id}/dagRuns/{dag_run_id}/setNote`: answers the run.
pub(super) async fn set_note(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id)): PathArgs<(String, String)>,
    body: JsonBody,
) -> Result<Json<RunJson>, ApiError> {
    user.require(Action::Operate)?;
    let body: NoteBody = body.parse(&user)?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    actions::set_note(&state.store, &user.actor(), &run, None, &body.note).await?;
    Ok(Json(actions::find_run(&state.store, &dag_id, &run_id).await?.into()))
}

#[derive(Debug, Serialize)]
pub(super) struct TiNote {
    dag_id: String,
    dag_run_id: String,
    task_id: String,
    map_index: i64,
    note: Option<String>,
}

/// `PATCH .../taskInstances/{task_id}/setNote`: answers the instance's key and note.
pub(super) async fn set_ti_note(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id, task_id)): PathArgs<(String, String, String)>,
    body: JsonBody,
) -> Result<Json<TiNote>, ApiError> {
    user.require(Action::Operate)?;
    let body: TiNoteBody = body.parse(&user)?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let map_index = body.map_index;
    let ti = actions::find_ti(&state.store, &run, &task_id, map_index).await?;
    actions::set_note(&state.store, &user.actor(), &run, Some(&ti), &body.note).await?;
    let note = state.store.ti_note(ti.id).await?;
    Ok(Json(TiNote { dag_id, dag_run_id: run_id, task_id, map_index, note }))
}
