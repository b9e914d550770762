//! `/api/v1/backfills`: create one (or, `dry_run`, only say what it would do), list them, get
//! one, pause or unpause it (`PATCH`), cancel it.
//!
//! Invariant: every change goes through `crate::actions::backfills`, as the DAG's runs page
//! does, with the operator role checked first.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, JsonBody, PathArgs, Principal, QueryArgs, page_limit};
use crate::actions;
use crate::actions::backfills::{self, BackfillRequest, PlannedDate};
use crate::model::{BackfillStep, Reprocess};
use crate::store::BackfillRow;
use crate::web::AppState;
use crate::web::auth::Action;

/// A backfill's runs by state.
#[derive(Debug, Serialize)]
pub struct BackfillRuns {
    queued: i64,
    running: i64,
    success: i64,
    failed: i64,
}

/// A backfill as the API shows it.
#[derive(Debug, Serialize)]
pub struct BackfillJson {
    id: i64,
    dag_id: String,
    from_date: DateTime<Utc>,
    to_date: DateTime<Utc>,
    /// none, failed or all.
    reprocess: &'static str,
    max_active_runs: i64,
    dag_run_conf: serde_json::Map<String, serde_json::Value>,
    is_paused: bool,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    runs: BackfillRuns,
}

impl From<BackfillRow> for BackfillJson {
    fn from(b: BackfillRow) -> Self {
        BackfillJson {
            id: b.id,
            dag_id: b.dag_id,
            from_date: b.from,
            to_date: b.to,
            reprocess: b.reprocess.as_str(),
            max_active_runs: b.max_active_runs,
            dag_run_conf: b.conf,
            is_paused: b.is_paused,
            created_by: b.created_by,
            created_at: b.created_at,
            cancelled_at: b.cancelled_at,
            runs: BackfillRuns {
                queued: b.queued,
                running: b.running,
                success: b.success,
                failed: b.failed,
            },
        }
    }
}

/// One date of a backfill's plan.
#[derive(Debug, Serialize)]
pub struct PlannedJson {
    logical_date: DateTime<Utc>,
    /// create, reprocess (whole run), reprocess_failed (its failed instances) or skip.
    action: &'static str,
    /// Why a date is skipped.
    reason: Option<&'static str>,
    dag_run_id: String,
}

impl From<PlannedDate> for PlannedJson {
    fn from(d: PlannedDate) -> Self {
        let (action, reason) = match d.step {
            BackfillStep::Create => ("create", None),
            BackfillStep::Reprocess { only_failed: false } => ("reprocess", None),
            BackfillStep::Reprocess { only_failed: true } => ("reprocess_failed", None),
            BackfillStep::Skip(why) => ("skip", Some(why)),
        };
        PlannedJson { logical_date: d.logical_date, action, reason, dag_run_id: d.run_id }
    }
}

/// The answer to a create: the plan, and the backfill unless it was a dry run.
#[derive(Debug, Serialize)]
pub(super) struct Created {
    dry_run: bool,
    backfill: Option<BackfillJson>,
    dates: Vec<PlannedJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    dag_id: String,
    from_date: DateTime<Utc>,
    to_date: DateTime<Utc>,
    #[serde(default)]
    reprocess: Reprocess,
    max_active_runs: Option<i64>,
    #[serde(default)]
    dag_run_conf: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /backfills`.
pub(super) async fn create(
    State(state): State<AppState>,
    user: Principal,
    body: JsonBody,
) -> Result<Json<Created>, ApiError> {
    user.require(Action::Operate)?;
    let body: CreateBody = body.parse(&user)?;
    let dag = actions::active_dag(&state.store, &state.dags, &body.dag_id).await?;
    let req = BackfillRequest {
        from: body.from_date,
        to: body.to_date,
        reprocess: body.reprocess,
        max_active_runs: body.max_active_runs,
        conf: body.dag_run_conf,
        dry_run: body.dry_run,
    };
    let done =
        backfills::create_backfill(&state.store, &state.dags, &user.actor(), &dag, req).await?;
    Ok(Json(Created {
        dry_run: body.dry_run,
        backfill: done.backfill.map(BackfillJson::from),
        dates: done.dates.into_iter().map(PlannedJson::from).collect(),
    }))
}

#[derive(Debug, Serialize)]
pub(super) struct BackfillList {
    backfills: Vec<BackfillJson>,
    total_entries: usize,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ListArgs {
    dag_id: Option<String>,
    limit: Option<i64>,
}

/// `GET /backfills?dag_id=`: newest first.
pub(super) async fn list(
    State(state): State<AppState>,
    user: Principal,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> Result<Json<BackfillList>, ApiError> {
    user.require(Action::Read)?;
    let limit = page_limit(q.limit)?;
    let rows = state.store.list_backfills(q.dag_id.as_deref(), limit).await?;
    let backfills: Vec<BackfillJson> = rows.into_iter().map(BackfillJson::from).collect();
    Ok(Json(BackfillList { total_entries: backfills.len(), backfills }))
}

/// `GET /backfills/{backfill_id}`.
pub(super) async fn get(
    State(state): State<AppState>,
    user: Principal,
    PathArgs(id): PathArgs<i64>,
) -> Result<Json<BackfillJson>, ApiError> {
    user.require(Action::Read)?;
    Ok(Json(backfills::find_backfill(&state.store, id).await?.into()))
}

/// `PATCH /backfills/{backfill_id}`: pause or unpause.
pub(super) async fn patch(
    State(state): State<AppState>,
    user: Principal,
    PathArgs(id): PathArgs<i64>,
    body: JsonBody,
) -> Result<Json<BackfillJson>, ApiError> {
    user.require(Action::Operate)?;
    let body: super::PauseBody = body.parse(&user)?;
    let b = backfills::pause_backfill(&state.store, &user.actor(), id, body.is_paused).await?;
    Ok(Json(b.into()))
}

/// `POST /backfills/{backfill_id}/cancel`.
pub(super) async fn cancel(
    State(state): State<AppState>,
    user: Principal,
    PathArgs(id): PathArgs<i64>,
) -> Result<Json<BackfillJson>, ApiError> {
    user.require(Action::Operate)?;
    Ok(Json(backfills::cancel_backfill(&state.store, &user.actor(), id).await?.into()))
}
