//! The home page: what needs a look now — runs that failed in the last 24 hours, runs going
//! on, pool usage (running, queued and open slots), import errors, and whether the scheduler
//! and the workers are alive (their heartbeats).
//!
//! Invariant: read only, a fixed handful of queries whatever the size of the installation.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;

use super::browse::RunItem;
use super::{Chrome, render};
use crate::model::DagRunState;
use crate::store::RunFilter;
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

/// Runs listed per box (the full lists are a click away).
const SHOWN: i64 = 10;

struct PoolUse {
    name: String,
    slots: i64,
    running: i64,
    queued: i64,
    open: i64,
    /// Share of the slots taken, 0-100, for the bar.
    used_pct: i64,
}

struct ProcessUse {
    kind: String,
    host: String,
    beat: String,
    /// Its heartbeat is older than the timeout.
    late: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    failed: Vec<RunItem>,
    failed_more: bool,
    running: Vec<RunItem>,
    running_more: bool,
    pools: Vec<PoolUse>,
    import_errors: Vec<super::ImportErrorView>,
    processes: Vec<ProcessUse>,
    scheduler_ok: bool,
    live: bool,
}

async fn home(State(state): State<AppState>, user: Principal) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let now = Utc::now();
    let failed_filter = RunFilter {
        states: vec![DagRunState::Failed],
        ended_from: Some(now - chrono::Duration::hours(24)),
        ..RunFilter::default()
    };
    let mut failed = state.store.browse_runs(&failed_filter, None, SHOWN + 1).await?;
    let failed_more = failed.len() as i64 > SHOWN;
    failed.truncate(SHOWN as usize);
    let running_filter = RunFilter { states: vec![DagRunState::Running], ..RunFilter::default() };
    let mut running = state.store.browse_runs(&running_filter, None, SHOWN + 1).await?;
    let running_more = running.len() as i64 > SHOWN;
    running.truncate(SHOWN as usize);

    let usage = state.store.pool_usage().await?;
    let pools = state
        .store
        .list_pools()
        .await?
        .into_iter()
        .map(|p| {
            let (running, queued) = usage
                .iter()
                .find(|(name, _, _)| *name == p.name)
                .map_or((0, 0), |(_, r, q)| (*r, *q));
            let used_pct =
                if p.slots > 0 { ((running + queued) * 100 / p.slots).min(100) } else { 100 };
            PoolUse {
                open: (p.slots - running - queued).max(0),
                name: p.name,
                slots: p.slots,
                running,
                queued,
                used_pct,
            }
        })
        .collect();

    let import_errors = super::import_errors(&state, &user).await?;

    let timeout = chrono::Duration::from_std(state.settings.heartbeat_timeout)
        .unwrap_or(chrono::Duration::MAX);
    let processes: Vec<ProcessUse> = state
        .store
        .live_processes()
        .await?
        .into_iter()
        .map(|p| ProcessUse {
            late: now - p.heartbeat_at > timeout,
            beat: format!("{} s ago", (now - p.heartbeat_at).num_seconds().max(0)),
            kind: p.kind,
            host: p.hostname,
        })
        .collect();
    let scheduler_ok =
        processes.iter().any(|p| matches!(p.kind.as_str(), "scheduler" | "standalone") && !p.late);
    let page = HomePage {
        chrome: Chrome::new(&user, "home", "Home"),
        live: !running.is_empty(),
        failed: failed.iter().map(RunItem::new).collect(),
        failed_more,
        running: running.iter().map(RunItem::new).collect(),
        running_more,
        pools,
        import_errors,
        processes,
        scheduler_ok,
    };
    Ok(render(&page)?.into_response())
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/home", get(home))
}
