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
use crate::model::{DagRunState, TaskState};
use crate::web::auth::{Action, Principal};
use crate::web::pages::browse::{ListQuery, RunItem, RunsList};
use crate::web::pages::{Chrome, Flash, fmt_time, redirect_with, render, url_encode};
use crate::web::svg::{self, NodeInfo};
use crate::web::{AppState, WebError};

/// Runs offered in the graph's run selector.
const GRAPH_RUNS: i64 = 25;

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
    /// Every task group with the link that folds or unfolds it.
    groups: Vec<GroupLink>,
    /// The folded groups as the query writes them (kept by the run selector).
    collapsed: String,
    /// Links folding every group and none.
    collapse_all: String,
    expand_all: String,
}

/// A task group in the graph's toolbar.
struct GroupLink {
    id: String,
    folded: bool,
    href: String,
}

/// The graph page's URL with `collapsed` folded groups and the selected run.
fn graph_href(dag_id: &str, run_id: Option<&str>, collapsed: &[&str]) -> String {
    let mut url = format!("/dags/{}/graph", url_encode(dag_id));
    let mut sep = '?';
    if let Some(r) = run_id {
        url.push_str(&format!("{sep}run_id={}", url_encode(r)));
        sep = '&';
    }
    if !collapsed.is_empty() {
        url.push_str(&format!("{sep}collapsed={}", url_encode(&collapsed.join(","))));
    }
    url
}

/// The graph with every folded group as one node: a task inside one stands for it (the
/// outermost folded group holding it), edges between the same two nodes drawn once. None when
/// nothing is folded, or when folding would close a cycle (two groups depending on each
/// other through tasks outside them): the full graph is drawn then.
fn folded_graph(dag: &crate::dag::Dag, folded: &[&str]) -> Option<crate::dag::DagGraph> {
    if folded.is_empty() {
        return None;
    }
    let rep = |task: &str| -> String {
        dag.task_groups(task)
            .into_iter()
            .find(|g| folded.contains(g))
            .map_or_else(|| task.to_string(), str::to_string)
    };
    let mut nodes: indexmap::IndexMap<String, Vec<String>> = indexmap::IndexMap::new();
    for t in dag.graph.topo_order() {
        let me = rep(t);
        let ups: Vec<String> = dag.graph.upstream(t).iter().map(|u| rep(u)).collect();
        let deps = nodes.entry(me.clone()).or_default();
        for u in ups {
            if u != me && !deps.contains(&u) {
                deps.push(u);
            }
        }
    }
    crate::dag::DagGraph::build(
        nodes.iter().map(|(id, deps)| (id.as_str(), deps.iter().map(String::as_str))),
    )
    .ok()
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
    let selected_id = selected.as_ref().map(|r| r.run_id.clone());
    let run_id = selected_id.as_deref();
    let folded: Vec<&str> = match q.collapsed.as_deref() {
        Some("all") => dag.groups.keys().map(String::as_str).collect(),
        Some(list) => dag
            .groups
            .keys()
            .map(String::as_str)
            .filter(|g| list.split(',').any(|x| x == *g))
            .collect(),
        None => Vec::new(),
    };
    let shown = folded_graph(&dag, &folded);
    let drawn = svg::layout(shown.as_ref().unwrap_or(&dag.graph), |task_id| {
        if dag.groups.contains_key(task_id) {
            let inside = dag.group_members(task_id);
            let top = inside
                .iter()
                .filter_map(|t| states.get(*t).map(|s| s.0))
                .min_by_key(|s| relevance(*s));
            let unfold: Vec<&str> = folded.iter().copied().filter(|g| *g != task_id).collect();
            return NodeInfo {
                kind: format!("group · {} task(s)", inside.len()),
                state: top.map(|s| s.to_string()),
                href: Some(graph_href(&dag_id, run_id, &unfold)),
                title: Some(format!(
                    "group {task_id}{} · {} task(s) · open to unfold",
                    top.map(|s| format!(" · {s}")).unwrap_or_default(),
                    inside.len()
                )),
                rule: None,
                group: true,
            };
        }
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
            group: false,
        }
    });
    let drawn_folded: Vec<&str> = if shown.is_some() { folded.clone() } else { Vec::new() };
    let groups = dag
        .groups
        .keys()
        .map(|g| {
            let is_folded = drawn_folded.contains(&g.as_str());
            let next: Vec<&str> = if is_folded {
                drawn_folded.iter().copied().filter(|x| x != g).collect()
            } else {
                drawn_folded.iter().copied().chain([g.as_str()]).collect()
            };
            GroupLink { id: g.clone(), folded: is_folded, href: graph_href(&dag_id, run_id, &next) }
        })
        .collect();
    let page = GraphPage {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · graph")),
        h: Header::new(&rec, &dag, "graph"),
        runs: recent.iter().map(RunItem::new).collect(),
        live: selected.as_ref().is_some_and(|r| is_live(r.state)),
        selected_href: selected.as_ref().map(|r| run_href(&dag_id, &r.run_id)),
        selected: selected.map(|r| r.run_id),
        svg: drawn.markup,
        groups,
        collapsed: drawn_folded.join(","),
        collapse_all: graph_href(&dag_id, run_id, &["all"]),
        expand_all: graph_href(&dag_id, run_id, &[]),
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "dag_code.html")]
struct CodePage {
    chrome: Chrome,
    h: Header,
    lines: Vec<String>,
    /// For authors: the file in the editor.
    edit_href: Option<String>,
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
        edit_href: user
            .can(Action::Author)
            .then(|| format!("/editor/edit?file={}", url_encode(&rec.fileloc))),
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "dag_runs.html")]
struct RunsPage {
    chrome: Chrome,
    h: Header,
    list: RunsList,
}

pub(super) async fn runs(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    let path = format!("/dags/{}/runs", url_encode(&dag_id));
    let page = RunsPage {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · runs")),
        h: Header::new(&rec, &dag, "runs"),
        list: RunsList::load(&state, &q, &path, Some(&dag_id)).await?,
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
    /// The run's URL; its actions post to `{href}/clear`, `/mark`, `/delete`, `/note`.
    href: String,
    /// The DAG version the run is pinned to ("v3 · 1a2b3c4d5e6f · first seen …"), empty for a
    /// run from before versions were recorded.
    version: String,
    /// The DAG's current version when the run is pinned to another one, else empty: the run
    /// page then offers to clear it on that version.
    latest: String,
    /// The notifications the run and its tasks caused, with their delivery state.
    notifications: Vec<NotificationView>,
    /// The run's deadlines and what became of them.
    deadlines: Vec<DeadlineView>,
}

/// A run's deadline, as its page shows it.
pub(crate) struct DeadlineView {
    /// "2h after the logical date".
    pub(crate) deadline: String,
    /// When it falls ("when the run starts" until then, for `run_start`).
    pub(crate) at: String,
    /// `pending`, `met` or `missed`.
    pub(crate) status: String,
    /// The state colour class of `status`.
    pub(crate) status_class: &'static str,
}

impl DeadlineView {
    fn of(d: &crate::store::DeadlineRow) -> DeadlineView {
        DeadlineView {
            deadline: d.deadline.to_string(),
            at: match d.deadline_at {
                Some(at) => fmt_time(Some(at)),
                None => "when the run starts".into(),
            },
            status_class: match d.status.as_str() {
                "met" => "success",
                "missed" => "failed",
                _ => "queued",
            },
            status: d.status.clone(),
        }
    }
}

/// A notification as the run page lists it.
pub(crate) struct NotificationView {
    pub(crate) event: String,
    pub(crate) task: String,
    pub(crate) conn_id: String,
    pub(crate) status: String,
    /// The state colour class of `status`.
    pub(crate) status_class: &'static str,
    pub(crate) attempts: i64,
    pub(crate) when: String,
    /// The last error and the receiver's answer.
    pub(crate) detail: String,
}

impl NotificationView {
    pub(crate) fn of(n: &crate::store::NotificationRow) -> NotificationView {
        let task = match (&n.task_id, n.try_number) {
            (Some(t), Some(try_number)) => format!("{t} (try {try_number})"),
            (Some(t), None) => t.clone(),
            _ => "—".into(),
        };
        let detail = [n.last_error.as_deref(), n.last_answer.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        NotificationView {
            event: n.event.replace('_', " "),
            task,
            conn_id: n.conn_id.clone(),
            status_class: match n.status.as_str() {
                "sent" => "success",
                "failed" => "failed",
                "sending" => "running",
                _ => "queued",
            },
            status: n.status.clone(),
            attempts: n.attempts,
            when: fmt_time(n.sent_at.or(Some(n.created_at))),
            detail,
        }
    }
}

/// How a version is named on pages: `v3 · 1a2b3c4d5e6f · first seen 2026-12-01 10:00:00 UTC`.
fn version_label(v: &crate::store::DagVersion) -> String {
    let short: String = v.version.chars().take(12).collect();
    format!("v{} · {short} · first seen {}", v.number, fmt_time(Some(v.created_at)))
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
    let label = |v: Result<crate::store::DagVersion, crate::store::StoreError>| match v {
        Ok(v) => Ok(version_label(&v)),
        Err(crate::store::StoreError::NotFound(_)) => Ok(String::new()),
        Err(e) => Err(e),
    };
    let version = match run.dag_version.as_deref() {
        Some(v) => label(state.store.dag_version(&dag_id, v).await)?,
        None => String::new(),
    };
    let latest = match run.dag_version.as_deref() {
        Some(v) if v != dag.version => label(state.store.dag_version(&dag_id, &dag.version).await)?,
        _ => String::new(),
    };
    let notifications =
        state.store.run_notifications(run.id).await?.iter().map(NotificationView::of).collect();
    let deadlines = state.store.run_deadlines(run.id).await?.iter().map(DeadlineView::of).collect();
    let page = RunPage {
        version,
        latest,
        notifications,
        deadlines,
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
        href: run_href(&dag_id, &run_id),
    };
    Ok(render(&page)?.into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct ClearRunForm {
    /// `on` to clear only the failed and upstream-failed instances.
    #[serde(default)]
    only_failed: Option<String>,
    /// `on` to run the DAG as it is now instead of the run's pinned version.
    #[serde(default)]
    latest: Option<String>,
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
    let version = match form.data.latest.as_deref() {
        Some("on") => actions::RunVersion::Latest,
        _ => actions::RunVersion::Pinned,
    };
    let actor = form.user.actor();
    let result = actions::clear_run(&state.store, &state.dags, &actor, &run, only_failed, version)
        .await
        .map(|n| format!("Cleared {n} task instance(s): they will run again"));
    redirect_with(&state, &form.user, &run_href(&dag_id, &run_id), Flash::of(result)?).await
}

#[derive(serde::Deserialize)]
pub(super) struct MarkRunForm {
    /// `success` or `failed`.
    state: String,
}

/// Marks a run success or failed and returns to its page.
pub(super) async fn mark_run(
    State(state): State<AppState>,
    Path((dag_id, run_id)): Path<(String, String)>,
    form: crate::web::pages::Form<MarkRunForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    actions::check_ids(&[&dag_id, &run_id])?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let result = async {
        let to = form.data.state.parse::<DagRunState>().map_err(actions::ActionError::Invalid)?;
        let n =
            actions::mark_run(&state.store, &state.lineage, &form.user.actor(), &run, to).await?;
        Ok::<_, actions::ActionError>(format!("Marked the run {to} ({n} task instance(s) changed)"))
    }
    .await;
    redirect_with(&state, &form.user, &run_href(&dag_id, &run_id), Flash::of(result)?).await
}

/// Deletes a run and returns to the DAG's runs (or to the run's page when refused).
pub(super) async fn delete_run(
    State(state): State<AppState>,
    Path((dag_id, run_id)): Path<(String, String)>,
    form: crate::web::pages::Form<serde::de::IgnoredAny>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    actions::check_ids(&[&dag_id, &run_id])?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let log_dir = state.settings.log_dir();
    match actions::delete_run(&state.store, &log_dir, &form.user.actor(), &run).await {
        Ok(()) => {
            let done = Flash::Done(format!("Deleted run {run_id}"));
            let to = format!("/dags/{}/runs", url_encode(&dag_id));
            redirect_with(&state, &form.user, &to, done).await
        }
        Err(e) => {
            let to = run_href(&dag_id, &run_id);
            redirect_with(&state, &form.user, &to, Flash::of(Err::<String, _>(e))?).await
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct NoteForm {
    #[serde(default)]
    note: String,
}

/// Sets the run's note and returns to its page.
pub(super) async fn run_note(
    State(state): State<AppState>,
    Path((dag_id, run_id)): Path<(String, String)>,
    form: crate::web::pages::Form<NoteForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    actions::check_ids(&[&dag_id, &run_id])?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let result = actions::set_note(&state.store, &form.user.actor(), &run, None, &form.data.note)
        .await
        .map(|()| "Note saved".to_string());
    redirect_with(&state, &form.user, &run_href(&dag_id, &run_id), Flash::of(result)?).await
}
