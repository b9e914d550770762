//! The DAG page: its header (id, owner, tags, schedule, pause toggle, trigger) over the tabs
//! Grid | Graph | Code | Runs, and the grid view itself (recent runs x tasks, coloured by
//! state). The other tabs and the run page live in [`views`].
//!
//! Invariant: the grid costs two queries whatever its size (`list_runs` + `grid_cells`); the
//! matrix is built in memory, never with a query per cell.

mod assets;
mod backfills;
mod gantt;
mod versions;
mod views;

pub(crate) use views::NotificationView;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{Chrome, NextRun, fmt_duration, fmt_time, render, url_encode};
use crate::dag::Dag;
use crate::model::{DagRunState, RunPk, TaskState};
use crate::store::{DagRecord, GridCell, RunRow};
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

/// Runs the grid shows unless `?runs=` says otherwise.
const GRID_RUNS: i64 = 25;
/// Most runs the grid shows (100 runs x 50 tasks must stay fast).
const GRID_MAX_RUNS: i64 = 100;
/// Tallest run bar in px; bars scale with the run's duration like Airflow's.
const BAR_MAX: i64 = 30;

/// Query parameters shared by the DAG page's tabs.
#[derive(Deserialize, Default)]
pub(crate) struct DagQuery {
    /// Runs shown in the grid.
    #[serde(default)]
    runs: Option<i64>,
    /// Run whose states colour the graph.
    #[serde(default)]
    run_id: Option<String>,
    /// Task groups the graph draws folded into one box: their ids, comma-separated, or `all`.
    #[serde(default)]
    collapsed: Option<String>,
}

/// What every tab of the DAG page shows above itself.
pub(crate) struct Header {
    pub(crate) dag_id: String,
    pub(crate) dag_id_url: String,
    pub(crate) description: Option<String>,
    pub(crate) owner: String,
    pub(crate) tags: Vec<String>,
    pub(crate) schedule: String,
    pub(crate) paused: bool,
    pub(crate) is_active: bool,
    pub(crate) next_run: NextRun,
    pub(crate) fileloc: String,
    /// Active tab: grid, graph, code, runs (or "" on a run page).
    pub(crate) tab: &'static str,
    /// The DAG names assets (a schedule, outlets or inlets): it has an Assets tab.
    pub(crate) has_assets: bool,
    /// Its deadlines, as sentences ("2h after the logical date, notifies pager").
    pub(crate) deadlines: Vec<String>,
}

impl Header {
    pub(crate) fn new(rec: &DagRecord, dag: &Dag, tab: &'static str) -> Header {
        Header {
            dag_id: rec.dag_id.clone(),
            dag_id_url: url_encode(&rec.dag_id),
            description: rec.description.clone(),
            owner: rec.owner.clone(),
            tags: rec.tags.clone(),
            schedule: match (dag.schedule_text(), dag.timezone) {
                (None, _) => "manual".into(),
                (Some(text), chrono_tz::Tz::UTC) => text,
                (Some(text), _) if !dag.schedule.is_scheduled() => text,
                (Some(text), zone) => format!("{text} ({zone})"),
            },
            paused: rec.is_paused,
            is_active: rec.is_active,
            next_run: NextRun::new(
                rec.is_paused,
                rec.next_dagrun,
                rec.next_interval.map(|i| i.end),
            ),
            fileloc: rec.fileloc.clone(),
            tab,
            has_assets: !dag.asset_uses().is_empty(),
            deadlines: dag
                .deadlines
                .iter()
                .map(|d| format!("{d}, notifies {}", d.notify.join(", ")))
                .collect(),
        }
    }
}

/// Whether a run in state `s` is still going (queued or running): its pages refresh live.
pub(crate) fn is_live(s: DagRunState) -> bool {
    !s.is_finished()
}

/// The relevance order of states when one grid cell stands for several mapped instances:
/// the state a user most needs to see first.
pub(crate) fn relevance(s: TaskState) -> u8 {
    match s {
        TaskState::Failed => 0,
        TaskState::UpstreamFailed => 1,
        TaskState::UpForRetry => 2,
        TaskState::Running => 3,
        TaskState::UpForReschedule => 4,
        TaskState::Queued => 5,
        TaskState::Scheduled => 6,
        TaskState::None => 7,
        TaskState::Removed => 8,
        TaskState::Skipped => 9,
        TaskState::Success => 10,
    }
}

/// One run column of the grid.
struct GridRun {
    run_id: String,
    href: String,
    state: String,
    title: String,
    bar_px: i64,
    /// The run's duration in ms (to now while it runs), for the details panel's chart.
    ms: i64,
    /// The run's logical date, whole, with its zone.
    date: String,
    /// `v3` when the run is on another DAG version than the run left of it, else empty.
    version_change: String,
    /// The run's logical date, short (`12-01 10:00`), on every few columns; else empty.
    label: String,
    /// The run missed one of its deadlines.
    missed: bool,
}

/// One coloured cell, as small as it can be: its state and numbers only. The page's script
/// builds the tooltip, the link and the details panel from them, the row's task id and the
/// column's run id (5,000 cells stay under 300 KB).
struct CellView {
    state: &'static str,
    /// How long the instance shown ran, in ms (to now while it runs); none before it starts.
    ms: Option<i64>,
    /// Its try number, shown when above 1.
    try_number: i64,
    /// The map index of the instance shown (-1 when unmapped).
    map_index: i64,
    /// Instances behind the cell: more than 1 for a mapped task (written in the cell).
    count: usize,
    /// Instances per state (`3 failed, 12 success`) for a mapped or group cell, else empty.
    counts: String,
    /// A group cell: the task of the instance shown (the row is the group). Else empty.
    task: String,
    /// A mapped cell in several states: its split bar (a `style` value), else empty.
    split: String,
}

/// One row: a task, or a task group standing for every task inside it.
struct GridRow {
    /// The task across runs (the task-instance browser), for a task row.
    across: String,
    /// Task id, or the group's full id.
    task_id: String,
    /// What is shown: the task's key within its group, or the group's name.
    label: String,
    /// Task type, or "group".
    kind: String,
    /// Whether the row is a group (a toggle folding the rows inside it).
    is_group: bool,
    /// The groups holding the row, outermost first, space-separated (rows are hidden while one
    /// of them is folded).
    groups: String,
    /// Nesting depth, for the indent.
    depth: usize,
    cells: Vec<Option<CellView>>,
}

/// The grid's rows in order: tasks upstream first, each group right where its first task
/// would be, holding its tasks and groups in the same order.
fn grid_order(dag: &Dag) -> Vec<(String, Vec<String>, bool)> {
    #[derive(Default)]
    struct Node {
        /// Task ids and group ids in first-seen order; groups have children.
        children: indexmap::IndexMap<String, Node>,
        is_group: bool,
    }
    let mut root = Node::default();
    for task_id in dag.graph.topo_order() {
        let mut at = &mut root;
        for g in dag.task_groups(task_id) {
            at = at.children.entry(g.to_string()).or_default();
            at.is_group = true;
        }
        at.children.entry(task_id.clone()).or_default();
    }
    fn walk(n: &Node, path: &mut Vec<String>, out: &mut Vec<(String, Vec<String>, bool)>) {
        for (id, child) in &n.children {
            out.push((id.clone(), path.clone(), child.is_group));
            if child.is_group {
                path.push(id.clone());
                walk(child, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::with_capacity(dag.tasks.len() + dag.groups.len());
    walk(&root, &mut Vec::new(), &mut out);
    out
}

#[derive(Template)]
#[template(path = "dag_grid.html")]
struct GridPage {
    chrome: Chrome,
    h: Header,
    runs: Vec<GridRun>,
    rows: Vec<GridRow>,
    task_count: usize,
    group_count: usize,
    /// The longest run's duration: the top of the run bars' axis.
    longest: String,
    shown: i64,
    live: bool,
    /// How many runs of the DAG missed a deadline, and the latest misses.
    miss_count: i64,
    misses: Vec<MissView>,
}

/// A missed deadline, as the DAG page lists it.
pub(crate) struct MissView {
    pub(crate) run_id: String,
    pub(crate) href: String,
    /// "2h after the logical date".
    pub(crate) deadline: String,
    /// When it fell.
    pub(crate) at: String,
    /// The run's state now.
    pub(crate) run_state: String,
}

impl MissView {
    pub(crate) fn of(d: &crate::store::DeadlineRow) -> MissView {
        MissView {
            run_id: d.run_id.clone(),
            href: run_href(&d.dag_id, &d.run_id),
            deadline: d.deadline.to_string(),
            at: fmt_time(d.deadline_at),
            run_state: d.run_state.clone(),
        }
    }
}

/// Missed deadlines the DAG page lists.
const MISSES_SHOWN: i64 = 5;

/// The run page's URL.
pub(crate) fn run_href(dag_id: &str, run_id: &str) -> String {
    format!("/dags/{}/runs/{}", url_encode(dag_id), url_encode(run_id))
}

/// The task-instance page's URL.
pub(crate) fn ti_href(dag_id: &str, run_id: &str, task_id: &str, map_index: i64) -> String {
    let mut url = format!("{}/tasks/{}", run_href(dag_id, run_id), url_encode(task_id));
    if map_index >= 0 {
        url.push_str(&format!("?map_index={map_index}"));
    }
    url
}

/// Folds the instances of one task (or of a group's tasks) in one run into a cell: the most
/// relevant state, the instance in that state it links to, and the count of instances.
fn cell(tis: &[&GridCell], is_group: bool) -> Option<CellView> {
    let top = tis.iter().min_by_key(|c| (relevance(c.state), c.map_index))?;
    let ms = top.start_date.map(|start| {
        (top.end_date.unwrap_or_else(chrono::Utc::now) - start).num_milliseconds().max(0)
    });
    let many = is_group || tis.len() > 1;
    Some(CellView {
        state: top.state.as_str(),
        ms,
        try_number: top.try_number,
        map_index: top.map_index,
        count: if is_group { 0 } else { tis.len() },
        counts: if many { state_counts(tis) } else { String::new() },
        task: if is_group { top.task_id.clone() } else { String::new() },
        split: if is_group { String::new() } else { split_bar(tis) },
    })
}

async fn grid(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
    Query(q): Query<DagQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    let shown = q.runs.unwrap_or(GRID_RUNS).clamp(1, GRID_MAX_RUNS);
    let mut runs = state.store.list_runs(&dag_id, None, shown).await?;
    runs.reverse(); // oldest left, newest right
    let pks: Vec<RunPk> = runs.iter().map(|r| r.id).collect();
    let cells = state.store.grid_cells(&pks).await?;
    let (miss_count, misses) = state.store.dag_deadline_misses(&dag_id, MISSES_SHOWN).await?;
    // Which shown runs missed one: asked only of a DAG that ever missed a deadline.
    let missed =
        if miss_count > 0 { state.store.runs_missing_deadlines(&pks).await? } else { Vec::new() };
    let mut by_key: HashMap<(RunPk, &str), Vec<&GridCell>> = HashMap::with_capacity(cells.len());
    for c in &cells {
        by_key.entry((c.run_pk, c.task_id.as_str())).or_default().push(c);
    }
    let longest = runs.iter().map(run_ms).max().unwrap_or(0).max(1);
    let dag_id_url = url_encode(&dag_id);
    let live = runs.iter().any(|r| is_live(r.state));
    // About ten labels whatever the width; the newest (rightmost) always has one.
    let every = runs.len().div_ceil(10).max(1);
    let last = runs.len().saturating_sub(1);
    // Where the DAG version changes between neighbouring runs (numbers read only then).
    let changes: Vec<bool> = (0..runs.len())
        .map(|i| {
            i > 0
                && runs[i].dag_version.is_some()
                && runs[i - 1].dag_version.is_some()
                && runs[i].dag_version != runs[i - 1].dag_version
        })
        .collect();
    let numbers: HashMap<String, i64> = if changes.contains(&true) {
        let list = state.store.dag_versions(&dag_id).await?;
        list.into_iter().map(|v| (v.version, v.number)).collect()
    } else {
        HashMap::new()
    };
    let grid_runs = runs
        .iter()
        .enumerate()
        .map(|(i, r)| GridRun {
            version_change: match (changes[i], r.dag_version.as_ref()) {
                (true, Some(v)) => match numbers.get(v) {
                    Some(n) => format!("v{n}"),
                    None => "a new version".into(),
                },
                _ => String::new(),
            },
            label: if (last - i) % every == 0 {
                r.logical_date.format("%m-%d %H:%M").to_string()
            } else {
                String::new()
            },
            run_id: r.run_id.clone(),
            href: run_href(&dag_id, &r.run_id),
            state: r.state.to_string(),
            title: format!(
                "{} · {} · {} · {}",
                r.run_id,
                r.state,
                fmt_time(Some(r.logical_date)),
                fmt_duration(r.start_date, r.end_date)
            ),
            date: fmt_time(Some(r.logical_date)),
            bar_px: (4 + run_ms(r) * (BAR_MAX - 4) / longest).min(BAR_MAX),
            ms: run_ms(r),
            missed: missed.contains(&r.id),
        })
        .collect();
    let rows = grid_order(&dag)
        .into_iter()
        .map(|(id, groups, is_group)| {
            let members: Vec<&str> =
                if is_group { dag.group_members(&id) } else { vec![id.as_str()] };
            let cells = runs
                .iter()
                .map(|r| {
                    let tis: Vec<&GridCell> = members
                        .iter()
                        .filter_map(|t| by_key.get(&(r.id, *t)))
                        .flatten()
                        .copied()
                        .collect();
                    cell(&tis, is_group)
                })
                .collect();
            let label = match groups.last() {
                Some(g) => id.strip_prefix(g.as_str()).map(|l| l.trim_start_matches('.')),
                None => None,
            }
            .unwrap_or(&id)
            .to_string();
            GridRow {
                across: format!("/task-instances?dag={dag_id_url}&task={}", url_encode(&id)),
                kind: if is_group {
                    "group".to_string()
                } else {
                    dag.tasks.get(&id).map(|t| t.kind.type_name()).unwrap_or("").to_string()
                },
                label,
                is_group,
                depth: groups.len(),
                groups: groups.join(" "),
                task_id: id,
                cells,
            }
        })
        .collect();
    let page = GridPage {
        chrome: Chrome::new(&user, "dags", dag_id.clone()),
        h: Header::new(&rec, &dag, "grid"),
        runs: grid_runs,
        rows,
        task_count: dag.tasks.len(),
        longest: fmt_duration(
            Some(chrono::DateTime::UNIX_EPOCH),
            chrono::DateTime::from_timestamp_millis(longest),
        ),
        group_count: dag.groups.len(),
        shown,
        live,
        miss_count,
        misses: misses.iter().map(MissView::of).collect(),
    };
    Ok(render(&page)?.into_response())
}

/// "3 failed, 12 success": instances per state, the most relevant first.
fn state_counts(tis: &[&GridCell]) -> String {
    let parts: Vec<String> = counts(tis).iter().map(|(s, n)| format!("{n} {s}")).collect();
    parts.join(", ")
}

/// Instances per state, the most relevant first.
fn counts(tis: &[&GridCell]) -> Vec<(TaskState, usize)> {
    let mut counts: Vec<(TaskState, usize)> = Vec::new();
    for c in tis {
        match counts.iter_mut().find(|(s, _)| *s == c.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((c.state, 1)),
        }
    }
    counts.sort_by_key(|(s, _)| relevance(*s));
    counts
}

/// A mapped cell whose instances are in several states: a bar split by state, the most
/// relevant on top, as a CSS background (empty when they all share one state).
fn split_bar(tis: &[&GridCell]) -> String {
    let counts = counts(tis);
    if counts.len() < 2 {
        return String::new();
    }
    let total = tis.len() as f64;
    let mut at = 0.0;
    let stops: Vec<String> = counts
        .iter()
        .map(|(s, n)| {
            let from = at;
            at += *n as f64 / total * 100.0;
            format!("var(--s-{s}) {from:.0}% {at:.0}%")
        })
        .collect();
    format!("background:linear-gradient(to bottom, {})", stops.join(", "))
}

/// A run's duration in ms (to now while it runs; 0 before it starts).
fn run_ms(r: &RunRow) -> i64 {
    let Some(start) = r.start_date else { return 0 };
    let end = r.end_date.unwrap_or_else(chrono::Utc::now);
    (end - start).num_milliseconds().max(0)
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dags/{dag_id}", get(grid))
        .route("/dags/{dag_id}/graph", get(views::graph))
        .route("/dags/{dag_id}/code", get(views::code))
        .route("/dags/{dag_id}/versions", get(versions::versions))
        .route("/dags/{dag_id}/assets", get(assets::page))
        .route("/dags/{dag_id}/backfills", get(backfills::page).post(backfills::create))
        .route("/dags/{dag_id}/backfills/{id}/{action}", axum::routing::post(backfills::change))
        .route("/dags/{dag_id}/runs", get(views::runs))
        .route("/dags/{dag_id}/runs/{run_id}", get(views::run))
        .route("/dags/{dag_id}/runs/{run_id}/clear", axum::routing::post(views::clear_run))
        .route("/dags/{dag_id}/runs/{run_id}/mark", axum::routing::post(views::mark_run))
        .route("/dags/{dag_id}/runs/{run_id}/delete", axum::routing::post(views::delete_run))
        .route("/dags/{dag_id}/runs/{run_id}/note", axum::routing::post(views::run_note))
}
