//! The task-instance page (state, tries with their logs, XCom, rendered template fields) and
//! its operator actions: clear (optionally with downstream) and mark success / failed. The
//! log files themselves are served by [`logs`].
//!
//! Invariants: the actions go through `crate::actions` (which asks `model`), never write
//! states here; every id from the URL passes [`logs::check_ids`] before anything is read, and
//! log files are only opened through [`logs::open_log`].

mod logs;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::dag::{Header, NotificationView, ti_href};
use super::{Chrome, Flash, Form, fmt_duration, fmt_time, redirect_with, render, url_encode};
use crate::actions;
use crate::model::TaskState;
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

/// The page shows at most this much of each try's log (its end, in whole lines); "Load
/// earlier" and the download link have the rest.
const LOG_TAIL: u64 = 512 * 1024;

/// Path of every route here: dag, run, task.
type TiPath = Path<(String, String, String)>;

#[derive(Deserialize, Default)]
struct TiQuery {
    #[serde(default)]
    map_index: Option<i64>,
}

/// One try, with its log.
struct TryView {
    n: i64,
    state: String,
    host: String,
    queued: String,
    start: String,
    end: String,
    duration: String,
    /// While the try runs: when it started (ms since the epoch), for the ticking duration.
    since: Option<i64>,
    error: Option<String>,
    /// The end of the log (its last [`LOG_TAIL`] bytes of whole lines), None when the try
    /// wrote none (yet).
    log: Option<logs::LogPart>,
    /// While the try runs: the SSE URL that follows its log from where `log` ends.
    stream: Option<String>,
    raw: String,
    download: String,
}

/// A sibling instance of a mapped task.
struct Sibling {
    map_index: i64,
    state: String,
    href: String,
}

#[derive(Template)]
#[template(path = "ti.html")]
struct TiPage {
    chrome: Chrome,
    h: Header,
    run_id: String,
    run_href: String,
    task_id: String,
    map_index: i64,
    map_item: Option<String>,
    state: String,
    try_number: i64,
    max_tries: i64,
    operator: String,
    host: String,
    pid: String,
    pool: String,
    queue: String,
    start: String,
    end: String,
    duration: String,
    /// While the instance runs: when its try started (ms since the epoch), for the ticking
    /// duration.
    since: Option<i64>,
    note: String,
    doc: Option<String>,
    tries: Vec<TryView>,
    xcoms: Vec<(String, String)>,
    rendered: Vec<(String, String)>,
    siblings: Vec<Sibling>,
    action_base: String,
    /// What a person wrote on the instance.
    user_note: String,
    /// The notifications its tries caused, with their delivery state.
    notifications: Vec<NotificationView>,
    live: bool,
}

/// How a JSON value reads on the page: text as itself, anything else as indented JSON.
fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string()),
    }
}

async fn page(
    State(state): State<AppState>,
    user: Principal,
    Path((dag_id, run_id, task_id)): TiPath,
    Query(q): Query<TiQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    logs::check_ids(&[&dag_id, &run_id, &task_id])?;
    let map_index = q.map_index.unwrap_or(-1);
    // A live refresh (every 2 s while the try runs) swaps only the `data-live-id` parts: the
    // logs are not among them (the running one streams), so they are not read for it.
    let live_refresh = headers.contains_key("x-live");
    let (rec, dag) = state.dag(&dag_id).await?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let ti = match actions::find_ti(&state.store, &run, &task_id, map_index).await {
        // A mapped task opened without a map index: its first instance, which lists them all.
        Err(actions::ActionError::NotFound(_)) if q.map_index.is_none() => {
            let tis = state.store.run_tis(run.id).await?;
            let first = tis.iter().filter(|t| t.task_id == task_id).map(|t| t.map_index).min();
            if let Some(first) = first.filter(|i| *i >= 0) {
                let to = ti_href(&dag_id, &run_id, &task_id, first);
                return Ok(axum::response::Redirect::to(&to).into_response());
            }
            actions::find_ti(&state.store, &run, &task_id, map_index).await?
        }
        found => found?,
    };
    let tries = state.store.tries(ti.id).await?;
    let base = format!("{}/tasks/{}", super::dag::run_href(&dag_id, &run_id), url_encode(&task_id));
    let mi = if map_index >= 0 { format!("?map_index={map_index}") } else { String::new() };
    let mut views = Vec::with_capacity(tries.len());
    for t in &tries {
        let running = ti.state == TaskState::Running && t.try_number == ti.try_number;
        let log = match logs::open_log(&state.settings, &ti, t.try_number).await? {
            Some(path) if !live_refresh => {
                Some(logs::read_lines_before(&path, None, LOG_TAIL).await?)
            }
            _ => None,
        };
        let raw = format!("{base}/logs/{}{mi}", t.try_number);
        let and = if mi.is_empty() { '?' } else { '&' };
        views.push(TryView {
            n: t.try_number,
            state: t.state.to_string(),
            host: t.hostname.clone().unwrap_or_default(),
            queued: fmt_time(t.queued_at),
            start: fmt_time(t.start_date),
            end: fmt_time(t.end_date),
            duration: fmt_duration(t.start_date, t.end_date),
            since: t.start_date.filter(|_| running).map(|s| s.timestamp_millis()),
            error: t.error.clone(),
            stream: running.then(|| {
                let from = log.as_ref().map_or(0, |l| l.end);
                format!("{base}/logs/{}/stream{mi}{and}offset={from}", t.try_number)
            }),
            log,
            download: format!("{raw}{and}download=1"),
            raw,
        });
    }
    views.reverse(); // newest first
    let xcoms = state
        .store
        .run_xcoms(run.id)
        .await?
        .into_iter()
        .filter(|x| x.task_id == task_id && x.map_index == map_index)
        .map(|x| (x.key, shown(&x.value)))
        .collect();
    let rendered =
        state.store.ti_rendered(ti.id).await?.iter().map(|(k, v)| (k.clone(), shown(v))).collect();
    let siblings = if map_index >= 0 {
        let mut s: Vec<Sibling> = state
            .store
            .run_tis(run.id)
            .await?
            .into_iter()
            .filter(|t| t.task_id == task_id)
            .map(|t| Sibling {
                map_index: t.map_index,
                state: t.state.to_string(),
                href: ti_href(&dag_id, &run_id, &task_id, t.map_index),
            })
            .collect();
        s.sort_by_key(|s| s.map_index);
        s
    } else {
        Vec::new()
    };
    let page = TiPage {
        chrome: Chrome::new(&user, "dags", format!("{task_id} · {run_id}")),
        h: Header::new(&rec, &dag, ""),
        run_href: super::dag::run_href(&dag_id, &run_id),
        run_id: run_id.clone(),
        map_item: ti.map_item.as_ref().map(shown),
        state: ti.state.to_string(),
        try_number: ti.try_number,
        max_tries: ti.max_tries,
        operator: ti.operator.clone(),
        host: ti.hostname.clone().unwrap_or_else(|| "—".into()),
        pid: ti.pid.map(|p| p.to_string()).unwrap_or_else(|| "—".into()),
        pool: ti.pool.clone(),
        queue: ti.queue.clone(),
        start: fmt_time(ti.start_date),
        end: fmt_time(ti.end_date),
        duration: fmt_duration(ti.start_date, ti.end_date),
        since: ti
            .start_date
            .filter(|_| ti.state == TaskState::Running)
            .map(|s| s.timestamp_millis()),
        note: ti.note.clone().unwrap_or_default(),
        doc: dag.tasks.get(&task_id).and_then(|t| t.doc.clone()),
        live: !ti.state.is_finished(),
        tries: views,
        xcoms,
        rendered,
        siblings,
        action_base: base,
        user_note: state.store.ti_note(ti.id).await?.unwrap_or_default(),
        notifications: state
            .store
            .ti_notifications(run.id, &task_id, map_index)
            .await?
            .iter()
            .map(NotificationView::of)
            .collect(),
        task_id,
        map_index,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
struct ClearForm {
    #[serde(default)]
    map_index: Option<String>,
    /// `on` when the checkbox is ticked; absent otherwise.
    #[serde(default)]
    downstream: Option<String>,
}

#[derive(Deserialize)]
struct MarkForm {
    #[serde(default)]
    map_index: Option<String>,
    state: String,
}

/// The map index a form names: empty or absent means the unmapped instance (-1).
fn form_map_index(raw: Option<&str>) -> Result<i64, WebError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(-1),
        Some(s) => s.parse::<i64>().ok().filter(|m| *m >= -1).ok_or_else(|| {
            WebError::BadRequest(format!("field `map_index`: `{s}` is not a map index"))
        }),
    }
}

/// Where an action returns: the instance's page, with what was done or why it was refused
/// (the rest are error pages), left in the session for that page to show.
async fn back(
    state: &AppState,
    user: &Principal,
    (dag_id, run_id, task_id): (&str, &str, &str),
    map_index: i64,
    result: Result<String, impl Into<WebError>>,
) -> Result<Response, WebError> {
    let url = ti_href(dag_id, run_id, task_id, map_index);
    redirect_with(state, user, &url, Flash::of(result)?).await
}

async fn clear(
    State(state): State<AppState>,
    Path((dag_id, run_id, task_id)): TiPath,
    form: Form<ClearForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    logs::check_ids(&[&dag_id, &run_id, &task_id])?;
    let map_index = form_map_index(form.data.map_index.as_deref())?;
    let downstream = form.data.downstream.as_deref() == Some("on");
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let result = actions::clear(
        &state.store,
        &state.dags,
        &form.user.actor(),
        &run,
        &task_id,
        Some(map_index),
        downstream,
    )
    .await
    .map(|n| {
        let with = if downstream { " (with downstream)" } else { "" };
        format!("Cleared {n} task instance(s){with}: they will run again")
    });
    back(&state, &form.user, (&dag_id, &run_id, &task_id), map_index, result).await
}

async fn mark(
    State(state): State<AppState>,
    Path((dag_id, run_id, task_id)): TiPath,
    form: Form<MarkForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    logs::check_ids(&[&dag_id, &run_id, &task_id])?;
    let map_index = form_map_index(form.data.map_index.as_deref())?;
    let to = match form.data.state.as_str() {
        "success" => TaskState::Success,
        "failed" => TaskState::Failed,
        other => {
            let e = WebError::BadRequest(format!(
                "field `state`: expected success or failed, got `{other}`"
            ));
            return back(&state, &form.user, (&dag_id, &run_id, &task_id), map_index, Err(e)).await;
        }
    };
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let ti = actions::find_ti(&state.store, &run, &task_id, map_index).await?;
    let result = actions::mark(&state.store, &form.user.actor(), &run, &ti, to)
        .await
        .map(|()| format!("Marked {to}"));
    back(&state, &form.user, (&dag_id, &run_id, &task_id), map_index, result).await
}

#[derive(Deserialize)]
struct NoteForm {
    #[serde(default)]
    map_index: Option<String>,
    #[serde(default)]
    note: String,
}

async fn note(
    State(state): State<AppState>,
    Path((dag_id, run_id, task_id)): TiPath,
    form: Form<NoteForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    logs::check_ids(&[&dag_id, &run_id, &task_id])?;
    let map_index = form_map_index(form.data.map_index.as_deref())?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let ti = actions::find_ti(&state.store, &run, &task_id, map_index).await?;
    let actor = form.user.actor();
    let result = actions::set_note(&state.store, &actor, &run, Some(&ti), &form.data.note)
        .await
        .map(|()| "Note saved".to_string());
    back(&state, &form.user, (&dag_id, &run_id, &task_id), map_index, result).await
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", get(page))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/note", post(note))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/clear", post(clear))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/mark", post(mark))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/logs/{try_number}", get(logs::raw))
        .route(
            "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/logs/{try_number}/stream",
            get(logs::stream),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_index_field() {
        assert_eq!(form_map_index(None).ok(), Some(-1));
        assert_eq!(form_map_index(Some("")).ok(), Some(-1));
        assert_eq!(form_map_index(Some("3")).ok(), Some(3));
        assert!(form_map_index(Some("x")).is_err());
        assert!(form_map_index(Some("-5")).is_err());
    }
}
