//! `/api/v1/dags`: list (filters, offset pagination), get (with tasks and params), pause;
//! and `/api/v1/importErrors`.
//!
//! Invariant: DAG fields come from the store's record (what the scheduler last parsed); a
//! pause goes through `actions::set_paused`, which audits it.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, JsonBody, PathArgs, Principal, QueryArgs, page_limit};
use crate::actions;
use crate::store::{DagFilter, DagRecord, DagSummary};
use crate::web::auth::Action;
use crate::web::{AppState, WebError};

/// A DAG as the API shows it.
#[derive(Debug, Serialize)]
pub struct DagJson {
    dag_id: String,
    description: Option<String>,
    owner: String,
    tags: Vec<String>,
    /// What the user wrote (`@daily`, a cron expression); null for manual-only DAGs.
    schedule: Option<String>,
    is_paused: bool,
    is_active: bool,
    fileloc: String,
    next_dagrun: Option<DateTime<Utc>>,
}

impl From<DagSummary> for DagJson {
    fn from(d: DagSummary) -> Self {
        DagJson {
            dag_id: d.dag_id,
            description: d.description,
            owner: d.owner,
            tags: d.tags,
            schedule: d.schedule,
            is_paused: d.is_paused,
            // The list holds active DAGs only.
            is_active: true,
            fileloc: d.fileloc,
            next_dagrun: d.next_dagrun,
        }
    }
}

impl From<&DagRecord> for DagJson {
    fn from(d: &DagRecord) -> Self {
        DagJson {
            dag_id: d.dag_id.clone(),
            description: d.description.clone(),
            owner: d.owner.clone(),
            tags: d.tags.clone(),
            schedule: d.schedule.clone(),
            is_paused: d.is_paused,
            is_active: d.is_active,
            fileloc: d.fileloc.clone(),
            next_dagrun: d.next_dagrun,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct DagList {
    dags: Vec<DagJson>,
    total_entries: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListArgs {
    limit: Option<i64>,
    offset: Option<i64>,
    /// One tag; DAGs carrying it.
    tags: Option<String>,
    owner: Option<String>,
    paused: Option<bool>,
    /// Part of the DAG id, case-insensitive.
    dag_id_pattern: Option<String>,
}

/// `GET /dags`.
pub(super) async fn list(
    State(state): State<AppState>,
    user: Principal,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> Result<Json<DagList>, ApiError> {
    user.require(Action::Read)?;
    let limit = page_limit(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(WebError::BadRequest("query parameter `offset`: below 0".into()).into());
    }
    let filter = DagFilter {
        search: q.dag_id_pattern,
        text: None,
        tag: q.tags,
        owner: q.owner,
        paused: q.paused,
    };
    let (dags, total_entries) =
        state.store.dag_page(&filter, Default::default(), offset, limit).await?;
    Ok(Json(DagList { dags: dags.into_iter().map(DagJson::from).collect(), total_entries }))
}

#[derive(Debug, Serialize)]
pub(super) struct TaskJson {
    task_id: String,
    /// The YAML `type:`.
    #[serde(rename = "type")]
    kind: &'static str,
    depends_on: Vec<String>,
    trigger_rule: &'static str,
    retries: u32,
    pool: String,
    queue: String,
    priority_weight: i32,
    is_mapped: bool,
    doc: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct DagDetail {
    #[serde(flatten)]
    dag: DagJson,
    max_active_runs: i64,
    max_active_tasks: i64,
    params: serde_json::Map<String, serde_json::Value>,
    /// Each param's declaration as a JSON Schema (`type`, `enum`, `minimum`...): what a
    /// trigger's `conf` is checked against.
    param_schemas: serde_json::Map<String, serde_json::Value>,
    tasks: Vec<TaskJson>,
}

async fn detail(state: &AppState, dag_id: &str) -> Result<DagDetail, WebError> {
    let (rec, dag) = state.dag(dag_id).await?;
    let tasks = dag
        .tasks
        .values()
        .map(|t| TaskJson {
            task_id: t.task_id.clone(),
            kind: t.kind.type_name(),
            depends_on: t.depends_on.clone(),
            trigger_rule: t.trigger_rule.as_str(),
            retries: t.retries,
            pool: t.pool.clone(),
            queue: t.queue.clone(),
            priority_weight: t.priority_weight,
            is_mapped: t.foreach.is_some(),
            doc: t.doc.clone(),
        })
        .collect();
    Ok(DagDetail {
        dag: DagJson::from(&rec),
        max_active_runs: rec.max_active_runs,
        max_active_tasks: rec.max_active_tasks,
        param_schemas: dag.param_specs.iter().map(|(k, s)| (k.clone(), s.schema())).collect(),
        params: dag.params.clone(),
        tasks,
    })
}

/// `GET /dags/{dag_id}`.
pub(super) async fn get(
    State(state): State<AppState>,
    user: Principal,
    PathArgs(dag_id): PathArgs<String>,
) -> Result<Json<DagDetail>, ApiError> {
    user.require(Action::Read)?;
    Ok(Json(detail(&state, &dag_id).await?))
}

/// `PATCH /dags/{dag_id}`: pause or unpause; answers the DAG as it is now.
pub(super) async fn patch(
    State(state): State<AppState>,
    user: Principal,
    PathArgs(dag_id): PathArgs<String>,
    body: JsonBody,
) -> Result<Json<DagDetail>, ApiError> {
    user.require(Action::Operate)?;
    let body: super::PauseBody = body.parse(&user)?;
    actions::set_paused(&state.store, &user.actor(), &dag_id, body.is_paused).await?;
    Ok(Json(detail(&state, &dag_id).await?))
}

#[derive(Debug, Serialize)]
pub(super) struct ImportErrorJson {
    filename: String,
    line: usize,
    column: usize,
    message: String,
}

#[derive(Debug, Serialize)]
pub(super) struct ImportErrors {
    import_errors: Vec<ImportErrorJson>,
    total_entries: usize,
}

/// `GET /importErrors`: every problem of the last DAG folder scan, by file then line.
pub(super) async fn import_errors(
    State(state): State<AppState>,
    user: Principal,
) -> Result<Json<ImportErrors>, ApiError> {
    user.require(Action::Read)?;
    let import_errors: Vec<ImportErrorJson> = state
        .store
        .import_errors()
        .await?
        .into_iter()
        .map(|e| ImportErrorJson {
            filename: e.file.display().to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
        })
        .collect();
    Ok(Json(ImportErrors { total_entries: import_errors.len(), import_errors }))
}
