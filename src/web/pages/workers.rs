//! The workers page (`/workers`): the processes started with `updraft worker`, live first, with
//! their queues, slots, heartbeat age and state, and the tries each is running, linked to their
//! task-instance pages.
//!
//! Invariant: read only, for anyone who may read DAGs (the DAG list's `Action::Read`); what a
//! worker is doing comes from its process row and the instances it owns, never from the worker.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use super::dag::ti_href;
use super::{Chrome, fmt_time, render};
use crate::store::{ProcessRow, TiRow};
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

/// Workers listed at most: every live one (there are rarely this many), then the most
/// recently stopped, which say what happened to a worker that went away.
const SHOWN: i64 = 200;

/// A worker as a state word: `lost` (declared dead when its heartbeat stopped), `stopped`
/// (cleanly) or `live`.
fn state_word(p: &ProcessRow, lost: bool) -> &'static str {
    if lost {
        "lost"
    } else if p.stopped_at.is_some() {
        "stopped"
    } else {
        "live"
    }
}

/// How long ago `then` was, short: `3 s ago`, `4 min ago`, `2 h ago`, `5 d ago`. A time in the
/// future (a worker's clock ahead of this one) reads as now.
fn fmt_age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds().max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// One running try, as a link to its task instance.
struct TryLink {
    dag_id: String,
    run_id: String,
    task_id: String,
    /// -1 unless mapped.
    map_index: i64,
    try_number: i64,
    href: String,
}

impl TryLink {
    fn new(ti: &TiRow) -> TryLink {
        TryLink {
            href: ti_href(&ti.dag_id, &ti.run_id, &ti.task_id, ti.map_index),
            dag_id: ti.dag_id.clone(),
            run_id: ti.run_id.clone(),
            task_id: ti.task_id.clone(),
            map_index: ti.map_index,
            try_number: ti.try_number,
        }
    }
}

/// One row of the list.
struct WorkerView {
    id: String,
    host: String,
    pid: i64,
    queues: Vec<String>,
    /// `used / total` as of the last heartbeat; a dash once the worker is gone.
    slots: String,
    /// Free slots; empty when unknown.
    free: String,
    /// Heartbeat age (`3 s ago`).
    age: String,
    /// The heartbeat's time, for the tooltip.
    heartbeat_at: String,
    /// `live`, `stopped` or `lost`.
    state: &'static str,
    /// Live, but its heartbeat is older than the timeout: the next sweep declares it lost.
    late: bool,
    tries: Vec<TryLink>,
}

impl WorkerView {
    fn new(
        p: ProcessRow,
        lost: bool,
        tries: Vec<TryLink>,
        now: DateTime<Utc>,
        timeout: chrono::Duration,
    ) -> WorkerView {
        let state = state_word(&p, lost);
        let live = state == "live";
        let used = p.running.unwrap_or(0);
        let (slots, free) = match (live, p.slots) {
            (true, Some(total)) => (format!("{used} / {total}"), (total - used).max(0).to_string()),
            (true, None) => (format!("{used} / —"), String::new()),
            (false, _) => ("—".into(), String::new()),
        };
        WorkerView {
            host: p.hostname,
            pid: p.pid,
            queues: p.queues,
            slots,
            free,
            age: fmt_age(now, p.heartbeat_at),
            heartbeat_at: fmt_time(Some(p.heartbeat_at)),
            state,
            late: live && now - p.heartbeat_at > timeout,
            tries,
            id: p.id,
        }
    }
}

#[derive(Template)]
#[template(path = "workers.html")]
struct WorkersPage {
    chrome: Chrome,
    workers: Vec<WorkerView>,
    live: usize,
    lost: usize,
    /// The list stops at [`SHOWN`] workers.
    cut: bool,
}

async fn list(State(state): State<AppState>, user: Principal) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let rows = state.store.workers(SHOWN).await?;
    let ids: Vec<String> = rows.iter().map(|(p, _)| p.id.clone()).collect();
    let mut tries: HashMap<String, Vec<TryLink>> = HashMap::new();
    for ti in state.store.running_tis_of(&ids).await? {
        if let Some(owner) = &ti.owner_process {
            tries.entry(owner.clone()).or_default().push(TryLink::new(&ti));
        }
    }
    let now = Utc::now();
    // A timeout too large for chrono's range means no worker is ever late.
    let timeout = chrono::Duration::from_std(state.settings.heartbeat_timeout)
        .unwrap_or(chrono::Duration::MAX);
    let cut = rows.len() as i64 >= SHOWN;
    let workers: Vec<WorkerView> = rows
        .into_iter()
        .map(|(p, lost)| {
            let t = tries.remove(&p.id).unwrap_or_default();
            WorkerView::new(p, lost, t, now, timeout)
        })
        .collect();
    let page = WorkersPage {
        chrome: Chrome::new(&user, "workers", "Workers"),
        live: workers.iter().filter(|w| w.state == "live").count(),
        lost: workers.iter().filter(|w| w.state == "lost").count(),
        cut,
        workers,
    };
    Ok(render(&page)?.into_response())
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/workers", get(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        let now = Utc::now();
        let ago = |s| fmt_age(now, now - chrono::Duration::seconds(s));
        assert_eq!(ago(3), "3 s ago");
        assert_eq!(ago(59), "59 s ago");
        assert_eq!(ago(61), "1 min ago");
        assert_eq!(ago(7200), "2 h ago");
        assert_eq!(ago(3 * 86_400 + 5), "3 d ago");
        assert_eq!(ago(-5), "0 s ago", "a clock ahead reads as now");
    }

    #[test]
    fn states_and_slots() {
        let now = Utc::now();
        let minute = chrono::Duration::seconds(60);
        let p = ProcessRow {
            id: "w".into(),
            kind: "worker".into(),
            heartbeat_at: now - chrono::Duration::seconds(5),
            slots: Some(4),
            running: Some(3),
            ..ProcessRow::default()
        };
        let live = WorkerView::new(p.clone(), false, Vec::new(), now, minute);
        assert_eq!((live.state, live.slots.as_str(), live.free.as_str()), ("live", "3 / 4", "1"));
        assert!(!live.late);
        let late = WorkerView::new(p.clone(), false, Vec::new(), now, chrono::Duration::seconds(2));
        assert!(late.late, "heartbeat older than the timeout");
        let stopped = ProcessRow { stopped_at: Some(now), ..p };
        let gone = WorkerView::new(stopped.clone(), false, Vec::new(), now, minute);
        assert_eq!((gone.state, gone.slots.as_str(), gone.late), ("stopped", "—", false));
        assert_eq!(WorkerView::new(stopped, true, Vec::new(), now, minute).state, "lost");
    }
}
