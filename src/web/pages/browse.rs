//! The lists of runs and task instances, of one DAG (its Runs tab, in `dag::views`) or across
//! every DAG (`/runs`, `/task-instances`), with the same filters (state, run type, logical
//! date range, task text), keyset pages of 50, and the runs lists' bulk actions
//! (`POST /runs/bulk`).
//!
//! Invariants: read only, but for `bulk`, which hands each run to `crate::actions` (each run
//! checked and audited on its own). A filter the user typed is parsed here once, into a
//! `store::RunFilter` / `TiFilter`, with a 400 naming the field that is wrong.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::dag::{is_live, run_href, ti_href};
use super::{
    Chrome, Flash, Form, fmt_duration, fmt_time, parse_logical_date, redirect_with, render,
    url_encode,
};
use crate::actions::{self, ActionError, BulkAction};
use crate::model::{DagRunState, RunPk, RunType, TaskState, TiId};
use crate::store::{RunFilter, RunRow, TiFilter, TiRow};
use crate::web::auth::{Action, Principal};
use crate::web::redirect::safe_next;
use crate::web::{AppState, WebError};

type Time = chrono::DateTime<chrono::Utc>;

/// Rows per page of every list here.
pub(crate) const PAGE: i64 = 50;

/// The filters of a runs or task-instances list, as typed (the form shows them back).
#[derive(Deserialize, Default, Debug)]
pub(crate) struct ListQuery {
    /// Rows older than this primary key (the next page).
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub run_type: Option<String>,
    /// Logical date from (date-time picker text or RFC 3339).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// Task instances: the DAG id (exactly) and text in the task id.
    #[serde(default)]
    pub dag: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    /// Runs: the runs of one backfill.
    #[serde(default)]
    pub backfill: Option<String>,
}

/// A field's value unless empty.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn bad(field: &str, e: impl std::fmt::Display) -> WebError {
    WebError::BadRequest(format!("filter `{field}`: {e}"))
}

impl ListQuery {
    /// The logical date range, checked to be a range.
    fn dates(&self) -> Result<(Option<Time>, Option<Time>), WebError> {
        let date = |field: &str, v: &Option<String>| {
            given(v).map(parse_logical_date).transpose().map_err(|e| bad(field, e))
        };
        let (from, to) = (date("from", &self.from)?, date("to", &self.to)?);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(bad("from", "after `to`: the range is empty"));
        }
        Ok((from, to))
    }

    /// The run filter, for one DAG's runs (`dag_id`) or every DAG's.
    pub(crate) fn runs(&self, dag_id: Option<&str>) -> Result<RunFilter, WebError> {
        let (from, to) = self.dates()?;
        let states = given(&self.state)
            .map(|s| s.parse::<DagRunState>().map_err(|e| bad("state", e)))
            .transpose()?
            .into_iter()
            .collect();
        let run_type = given(&self.run_type)
            .map(|t| t.parse::<RunType>().map_err(|e| bad("run_type", e)))
            .transpose()?;
        let dag_id = dag_id.or(given(&self.dag)).map(str::to_string);
        let backfill = given(&self.backfill)
            .map(|b| {
                b.parse::<i64>().map_err(|_| bad("backfill", format!("`{b}` is not a number")))
            })
            .transpose()?;
        Ok(RunFilter { dag_id, states, run_type, from, to, ended_from: None, backfill })
    }

    /// The task-instance filter.
    pub(crate) fn tis(&self) -> Result<TiFilter, WebError> {
        let (from, to) = self.dates()?;
        let states = given(&self.state)
            .map(|s| s.parse::<TaskState>().map_err(|e| bad("state", e)))
            .transpose()?
            .into_iter()
            .collect();
        Ok(TiFilter {
            dag_id: given(&self.dag).map(str::to_string),
            states,
            task: given(&self.task).map(str::to_string),
            from,
            to,
        })
    }

    /// The filters as a query string without `before` (`&`-joined, for the next page's link).
    fn query(&self) -> String {
        let fields = [
            ("state", &self.state),
            ("run_type", &self.run_type),
            ("from", &self.from),
            ("to", &self.to),
            ("dag", &self.dag),
            ("task", &self.task),
            ("backfill", &self.backfill),
        ];
        fields
            .iter()
            .filter_map(|(k, v)| given(v).map(|v| format!("{k}={}", url_encode(v))))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// What the filter form shows.
    pub(crate) fn view(&self, path: &str) -> FilterView {
        let text = |v: &Option<String>| given(v).unwrap_or("").to_string();
        FilterView {
            path: path.to_string(),
            state: text(&self.state),
            run_type: text(&self.run_type),
            from: text(&self.from),
            to: text(&self.to),
            dag: text(&self.dag),
            task: text(&self.task),
            backfill: text(&self.backfill),
            active: !self.query().is_empty(),
        }
    }

    /// The link to the page after one ending at `last` (a primary key).
    pub(crate) fn next_url(&self, path: &str, last: i64) -> String {
        let q = self.query();
        if q.is_empty() {
            format!("{path}?before={last}")
        } else {
            format!("{path}?{q}&before={last}")
        }
    }
}

/// The filter form's values and where it submits.
pub(crate) struct FilterView {
    pub path: String,
    pub state: String,
    pub run_type: String,
    pub from: String,
    pub to: String,
    pub dag: String,
    pub task: String,
    /// The backfill whose runs are listed, if any (kept by the form).
    pub backfill: String,
    /// Some filter is set (a Reset link is shown).
    pub active: bool,
}

impl FilterView {
    /// The run states offered.
    pub fn run_states(&self) -> Vec<&'static str> {
        DagRunState::ALL.iter().map(|s| s.as_str()).collect()
    }
    /// The task states offered.
    pub fn ti_states(&self) -> Vec<&'static str> {
        TaskState::ALL.iter().map(|s| s.as_str()).collect()
    }
    /// The run types offered.
    pub fn run_types(&self) -> Vec<&'static str> {
        RunType::ALL.iter().map(|s| s.as_str()).collect()
    }
}

/// A run in a selector or a list.
pub(crate) struct RunItem {
    pub dag_id: String,
    pub dag_href: String,
    pub run_id: String,
    /// `dag_id/run_id`, what a bulk action's check box posts (neither id holds a `/`).
    pub key: String,
    pub href: String,
    pub state: String,
    pub run_type: String,
    pub logical_date: String,
    pub start: String,
    pub end: String,
    pub duration: String,
    pub triggered_by: String,
    pub conf: String,
    pub note: String,
}

impl RunItem {
    pub(crate) fn new(r: &RunRow) -> RunItem {
        RunItem {
            dag_id: r.dag_id.clone(),
            dag_href: format!("/dags/{}", url_encode(&r.dag_id)),
            run_id: r.run_id.clone(),
            key: format!("{}/{}", r.dag_id, r.run_id),
            href: run_href(&r.dag_id, &r.run_id),
            state: r.state.to_string(),
            run_type: r.run_type.to_string(),
            logical_date: fmt_time(Some(r.logical_date)),
            start: fmt_time(r.start_date),
            end: fmt_time(r.end_date),
            duration: fmt_duration(r.start_date, r.end_date),
            triggered_by: r.triggered_by.clone().unwrap_or_default(),
            conf: if r.conf.is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(r.conf.clone()).to_string()
            },
            note: r.note.clone().unwrap_or_default(),
        }
    }
}

/// A page of a runs list (one DAG's Runs tab or `/runs`), as `runs_table.html` shows it.
pub(crate) struct RunsList {
    pub runs: Vec<RunItem>,
    pub filter: FilterView,
    /// Every DAG's runs: a DAG column.
    pub show_dag: bool,
    /// Where a bulk action returns: this list with its filters (never text from the URL
    /// that is not a filter).
    pub back: String,
    pub next_url: Option<String>,
    pub first_page: bool,
    /// A run on the page is queued or running.
    pub live: bool,
}

impl RunsList {
    /// The page `q` asks for of the runs at `path` (of `dag_id`, or of every DAG).
    pub(crate) async fn load(
        state: &AppState,
        q: &ListQuery,
        path: &str,
        dag_id: Option<&str>,
    ) -> Result<RunsList, WebError> {
        let filter = q.runs(dag_id)?;
        // One more than a page tells whether an older page exists.
        let mut rows = state.store.browse_runs(&filter, q.before.map(RunPk), PAGE + 1).await?;
        let more = rows.len() as i64 > PAGE;
        rows.truncate(PAGE as usize);
        let last = more.then(|| rows.last().map(|r| r.id.0)).flatten();
        let query = q.query();
        Ok(RunsList {
            live: rows.iter().any(|r| is_live(r.state)),
            runs: rows.iter().map(RunItem::new).collect(),
            filter: q.view(path),
            show_dag: dag_id.is_none(),
            back: if query.is_empty() { path.to_string() } else { format!("{path}?{query}") },
            next_url: last.map(|l| q.next_url(path, l)),
            first_page: q.before.is_none(),
        })
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    chrome: Chrome,
    list: RunsList,
}

/// `GET /runs`: every DAG's runs.
async fn runs(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let list = RunsList::load(&state, &q, "/runs", None).await?;
    let page = RunsPage { chrome: Chrome::new(&user, "runs", "Runs"), list };
    Ok(render(&page)?.into_response())
}

/// A task instance in the cross-DAG list.
struct TiItem {
    dag_id: String,
    dag_href: String,
    run_id: String,
    run_href: String,
    task_id: String,
    map_index: i64,
    href: String,
    state: String,
    try_number: i64,
    start: String,
    end: String,
    duration: String,
    host: String,
    /// `dag_id/run_id/task_id/map_index`, what a bulk action's check box posts.
    key: String,
}

impl TiItem {
    fn new(t: &TiRow) -> TiItem {
        TiItem {
            dag_id: t.dag_id.clone(),
            dag_href: format!("/dags/{}", url_encode(&t.dag_id)),
            run_id: t.run_id.clone(),
            run_href: run_href(&t.dag_id, &t.run_id),
            task_id: t.task_id.clone(),
            map_index: t.map_index,
            href: ti_href(&t.dag_id, &t.run_id, &t.task_id, t.map_index),
            state: t.state.to_string(),
            try_number: t.try_number,
            start: fmt_time(t.start_date),
            end: fmt_time(t.end_date),
            duration: fmt_duration(t.start_date, t.end_date),
            host: t.hostname.clone().unwrap_or_default(),
            key: format!("{}/{}/{}/{}", t.dag_id, t.run_id, t.task_id, t.map_index),
        }
    }
}

#[derive(Template)]
#[template(path = "task_instances.html")]
struct TisPage {
    chrome: Chrome,
    tis: Vec<TiItem>,
    /// Where a bulk action returns: this list with its filters.
    back: String,
    filter: FilterView,
    next_url: Option<String>,
    first_page: bool,
    live: bool,
}

/// `GET /task-instances`: every DAG's task instances.
async fn task_instances(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let filter = q.tis()?;
    let mut rows = state.store.browse_tis(&filter, q.before.map(TiId), PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let last = more.then(|| rows.last().map(|r| r.id.0)).flatten();
    let page = TisPage {
        chrome: Chrome::new(&user, "task-instances", "Task instances"),
        live: rows.iter().any(|t| matches!(t.state, TaskState::Running | TaskState::Queued)),
        tis: rows.iter().map(TiItem::new).collect(),
        back: match q.query() {
            query if query.is_empty() => "/task-instances".to_string(),
            query => format!("/task-instances?{query}"),
        },
        filter: q.view("/task-instances"),
        next_url: last.map(|l| q.next_url("/task-instances", l)),
        first_page: q.before.is_none(),
    };
    Ok(render(&page)?.into_response())
}

/// `POST /runs/bulk`: `action` on every ticked `run` (`dag_id/run_id`), then back to the list
/// it came from (`back`, a same-site path).
async fn bulk(
    State(state): State<AppState>,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    let field = |name: &str| form.data.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let back = safe_next(field("back").unwrap_or("/runs")).to_string();
    let result = async {
        let action = BulkAction::parse(field("action").unwrap_or(""))?;
        let runs: Vec<(String, String)> = form
            .data
            .iter()
            .filter(|(k, _)| k == "run")
            .map(|(_, v)| {
                v.split_once('/')
                    .map(|(d, r)| (d.to_string(), r.to_string()))
                    .ok_or_else(|| ActionError::Invalid(format!("run `{v}`: not dag_id/run_id")))
            })
            .collect::<Result<_, _>>()?;
        let actor = form.user.actor();
        let log_dir = state.settings.log_dir();
        actions::bulk(&state.store, &state.dags, &state.lineage, &log_dir, &actor, &runs, action)
            .await
    }
    .await;
    redirect_with(&state, &form.user, &back, Flash::of(result)?).await
}

/// `POST /task-instances/bulk`: `action` on every ticked `ti` (`dag_id/run_id/task_id/map_index`;
/// no id holds a `/`), then back to the list it came from.
async fn bulk_tis(
    State(state): State<AppState>,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    let field = |name: &str| form.data.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let back = safe_next(field("back").unwrap_or("/task-instances")).to_string();
    let result = async {
        let action = actions::TiBulkAction::parse(field("action").unwrap_or(""))?;
        let tis: Vec<actions::TiKey> = form
            .data
            .iter()
            .filter(|(k, _)| k == "ti")
            .map(|(_, v)| {
                let parts: Vec<&str> = v.split('/').collect();
                match parts.as_slice() {
                    [d, r, t, m] => m
                        .parse::<i64>()
                        .ok()
                        .map(|m| (d.to_string(), r.to_string(), t.to_string(), m)),
                    _ => None,
                }
                .ok_or_else(|| {
                    ActionError::Invalid(format!(
                        "task instance `{v}`: not dag_id/run_id/task_id/map_index"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        actions::bulk_tis(&state.store, &state.dags, &form.user.actor(), &tis, action).await
    }
    .await;
    redirect_with(&state, &form.user, &back, Flash::of(result)?).await
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs", get(runs))
        .route("/runs/bulk", post(bulk))
        .route("/task-instances/bulk", post(bulk_tis))
        .route("/task-instances", get(task_instances))
}
