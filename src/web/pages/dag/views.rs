//! The DAG page's other tabs — graph (server-side SVG), code (the stored YAML), run history
//! (keyset pages of 50) — and the page of one run (details, gantt, task list).
//!
//! Invariant: read only; each page is a fixed handful of queries, none per task or per run.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::gantt::Gantt;
use super::{DagQuery, Header, is_live, relevance, run_href, ti_href};
use crate::actions;
use crate::model::{RunPk, TaskState};
use crate::store::RunRow;
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, Flash, fmt_duration, fmt_time, redirect_with, render, url_encode};
use crate::web::svg::{self, NodeInfo};
use crate::web::{AppState, WebError};

/// Runs per page of the run history.
const RUNS_PAGE: i64 = 50;
/// Runs offered in the graph's run selector.
const GRAPH_RUNS: i64 = 25;

/// A run in a selector or a list.
struct RunItem {
    run_id: String,
    href: String,
    state: String,
    run_type: String,
    logical_date: String,
    start: String,
    end: String,
    duration: String,
    triggered_by: String,
    conf: String,
}

impl RunItem {
    fn new(r: &RunRow) -> RunItem {
        RunItem {
            run_id: r.run_id.clone(),
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
        }
    }
}

#[derive(Template)]
#[template(path = "dag_graph.html")]
struct GraphPage {
    chrome: Chrome,
    h: Header,
    runs: Vec<RunItem>,
    selected: Option<String>,
    selected_href: Option<String>,
    svg: String,
    live: bool,
}

pub(super) async fn graph(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
    Query(q): Query<DagQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    let recent = state.store.list_runs(&dag_id, None, GRAPH_RUNS).await?;
    let selected = match q.run_id.as_deref().filter(|r| !r.is_empty()) {
        Some(rid) => match recent.iter().find(|r| r.run_id == rid) {
            Some(r) => Some(r.clone()),
            None => Some(actions::find_run(&state.store, &dag_id, rid).await?),
        },
        None => recent.first().cloned(),
    };
    // The most relevant state per task (a mapped task has several instances).
    // (state, map index, instances) per task.
    let mut states: HashMap<String, (TaskState, i64, usize)> = HashMap::new();
    if let Some(run) = &selected {
        for ti in state.store.run_tis(run.id).await? {
            let e = states.entry(ti.task_id.clone()).or_insert((ti.state, ti.map_index, 0));
            e.2 += 1;
            if (relevance(ti.state), ti.map_index) < (relevance(e.0), e.1) {
                (e.0, e.1) = (ti.state, ti.map_index);
            }
        }
    }
    let drawn = svg::layout(&dag.graph, |task_id| {
        let st = states.get(task_id);
        let kind = dag.tasks.get(task_id).map(|t| t.kind.type_name()).unwrap_or("");
        NodeInfo {
            kind: match st {
                Some((_, _, n)) if *n > 1 => format!("{kind} · {n} mapped"),
                _ => kind.to_string(),
            },
            state: st.map(|(s, _, _)| s.to_string()),
            href: selected.as_ref().map(|r| {
                ti_href(&dag_id, &r.run_id, task_id, st.map(|(_, m, _)| *m).unwrap_or(-1))
            }),
            title: Some(match st {
                Some((s, _, _)) => format!("{task_id} · {s}"),
                None => task_id.to_string(),
            }),
            rule: dag
                .tasks
                .get(task_id)
                .map(|t| t.trigger_rule)
                .filter(|r| *r != crate::dag::TriggerRule::AllSuccess)
                .map(|r| r.as_str().to_string()),
        }
    });
    let page = GraphPage {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · graph")),
        h: Header::new(&rec, &dag, "graph"),
        runs: recent.iter().map(RunItem::new).collect(),
        live: selected.as_ref().is_some_and(|r| is_live(r.state)),
        selected_href: selected.as_ref().map(|r| run_href(&dag_id, &r.run_id)),
        selected: selected.map(|r| r.run_id),
        svg: drawn.markup,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "dag_code.html")]
struct CodePage {
    chrome: Chrome,
    h: Header,
    lines: Vec<String>,
}

pub(super) async fn code(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    let page = CodePage {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · code")),
        h: Header::new(&rec, &dag, "code"),
        lines: rec.source.lines().map(str::to_string).collect(),
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "dag_runs.html")]
struct RunsPage {
    chrome: Chrome,
    h: Header,
    runs: Vec<RunItem>,
    next_url: Option<String>,
    first_page: bool,
    live: bool,
}

pub(super) async fn runs(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
    Query(q): Query<DagQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    // One more than a page tells whether an older page exists.
    let mut rows = state.store.list_runs(&dag_id, q.before.map(RunPk), RUNS_PAGE + 1).await?;
    let more = rows.len() as i64 > RUNS_PAGE;
    rows.truncate(RUNS_PAGE as usize);
    let next_url = more
        .then(|| rows.last().map(|r| format!("/dags/{}/runs?before={}", url_encode(&dag_id), r.id)))
        .flatten();
    let page = RunsPage {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · runs")),
        h: Header::new(&rec, &dag, "runs"),
        live: rows.iter().any(|r| is_live(r.state)),
        runs: rows.iter().map(RunItem::new).collect(),
        next_url,
        first_page: q.before.is_none(),
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    chrome: Chrome,
    h: Header,
    run: RunItem,
    data_interval: String,
    gantt: Gantt,
    live: bool,
    /// Where the run's clear buttons post.
    clear_href: String,
}

pub(super) async fn run(
    State(state): State<AppState>,
    user: Principal,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let tis = state.store.run_tis(run.id).await?;
    let gantt = Gantt::new(&dag, &run, &tis, Utc::now());
    let page = RunPage {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · {run_id}")),
        h: Header::new(&rec, &dag, ""),
        data_interval: format!(
            "{} → {}",
            fmt_time(Some(run.data_interval_start)),
            fmt_time(Some(run.data_interval_end))
        ),
        live: is_live(run.state),
        run: RunItem::new(&run),
        gantt,
        clear_href: format!("{}/clear", run_href(&dag_id, &run_id)),
    };
    Ok(render(&page)?.into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct ClearRunForm {
    /// `on` to clear only the failed and upstream-failed instances.
    #[serde(default)]
    only_failed: Option<String>,
}

/// Clears a run (all of it, or its failed instances) and returns to its page.
pub(super) async fn clear_run(
    State(state): State<AppState>,
    Path((dag_id, run_id)): Path<(String, String)>,
    form: crate::web::pages::Form<ClearRunForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    actions::check_ids(&[&dag_id, &run_id])?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let only_failed = form.data.only_failed.as_deref() == Some("on");
    let actor = form.user.actor();
    let result = actions::clear_run(&state.store, &state.dags, &actor, &run, only_failed)
        .await
        .map(|n| format!("Cleared {n} task instance(s): they will run again"));
    redirect_with(&state, &form.user, &run_href(&dag_id, &run_id), Flash::of(result)?).await
}
