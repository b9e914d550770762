//! `/health` and `/metrics` (Prometheus text format), both without login.
//!
//! `/health` tells anyone whether the database answers and which kinds of process heartbeat;
//! which hosts and pids they are is for logged-in callers only (it maps the deployment).
//!
//! Runs and task instances by state come from the store, so any web server shows them. The
//! scheduler loop and hand-off histograms and executor slots are recorded in memory by the
//! scheduler of the same process (standalone); a separate web server shows them empty.
//!
//! Invariant: a scrape only reads; the figures are recorded by `crate::metrics`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
pub use crate::metrics::Metrics;

/// `GET /health`: the database answers, and which processes heartbeat (with their id, host
/// and pid when the caller is logged in).
pub async fn health(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let known = super::auth::authenticate(&state, &headers).await.is_ok();
    match state.store.live_processes().await {
        Ok(procs) => {
            let now = chrono::Utc::now();
            let schedulers: Vec<_> = procs
                .iter()
                .filter(|p| p.stopped_at.is_none())
                .map(|p| {
                    let age = (now - p.heartbeat_at).num_milliseconds() as f64 / 1000.0;
                    let mut row = json!({ "kind": p.kind, "heartbeat_age_seconds": age });
                    if known {
                        row["id"] = json!(p.id);
                        row["hostname"] = json!(p.hostname);
                        row["pid"] = json!(p.pid);
                    }
                    row
                })
                .collect();
            Json(json!({ "status": "healthy", "metadatabase": "healthy", "processes": schedulers }))
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unhealthy", "metadatabase": "unhealthy" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn prometheus(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(4096);
    match state.store.state_totals().await {
        Ok((runs, tis)) => {
            let _ = writeln!(
                out,
                "# HELP updraft_dag_runs DAG runs by state.\n# TYPE updraft_dag_runs gauge"
            );
            for (s, n) in runs {
                let _ = writeln!(out, "updraft_dag_runs{{state=\"{s}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "# HELP updraft_task_instances Task instances by state.\n# TYPE updraft_task_instances gauge"
            );
            for (s, n) in tis {
                let _ = writeln!(out, "updraft_task_instances{{state=\"{s}\"}} {n}");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: database unreachable");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let m = &state.metrics;
    m.scheduler_loop.write(
        &mut out,
        "updraft_scheduler_loop_seconds",
        "Duration of scheduler loop passes that did work.",
    );
    m.handoff.write(
        &mut out,
        "updraft_handoff_seconds",
        "From a task instance becoming runnable to its try starting.",
    );
    let _ = writeln!(
        out,
        "# HELP updraft_executor_slots Executor slots of this process.\n# TYPE updraft_executor_slots gauge\n\
         updraft_executor_slots{{state=\"total\"}} {}\nupdraft_executor_slots{{state=\"busy\"}} {}",
        m.slots_total.load(Ordering::Relaxed),
        m.slots_busy.load(Ordering::Relaxed)
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}
