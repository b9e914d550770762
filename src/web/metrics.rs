//! `/health` and `/metrics` (Prometheus text format), both without login.
//!
//! `/health` tells anyone whether the database answers and which kinds of process heartbeat;
//! which hosts and pids they are is for logged-in callers only (it maps the deployment).
//!
//! Runs and task instances by state, and the workers' slots, claims and lease renewals (as of
//! their last heartbeats), come from the store, so any web server shows them: per worker to a
//! logged-in caller (a scraper with an API token), summed over the live workers to anyone else,
//! by the same rule as `/health` (which hosts and processes run maps the deployment). The
//! scheduler loop and hand-off histograms, executor slots and OpenLineage counters are recorded
//! in memory by the scheduler and workers of the same process (standalone); a separate web server
//! shows them empty (its lineage counters count only the events its own actions sent).
//!
//! Invariants: a scrape only reads; the figures are recorded by `crate::metrics` or by the
//! processes' heartbeats. Every label value that is not a fixed word (a worker id) goes through
//! [`label`].

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
pub use crate::metrics::Metrics;
use crate::store::ProcessRow;

/// Worker rows a scrape reads at most: every live worker, and enough of the stopped ones to
/// count the lost among them.
const WORKER_ROWS: i64 = 1000;

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

/// `GET /metrics`: Prometheus text format (per-worker series for logged-in callers only).
pub async fn prometheus(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let known = super::auth::authenticate(&state, &headers).await.is_ok();
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
    match state.store.workers(WORKER_ROWS).await {
        Ok(workers) => write_workers(&mut out, &workers, known),
        Err(e) => {
            tracing::error!(error = %e, "metrics: database unreachable");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    match state.store.notification_counts().await {
        Ok(counts) => {
            let _ = writeln!(
                out,
                "# HELP updraft_notifications Notifications by delivery state (failed: given up after their attempts).\n# TYPE updraft_notifications gauge"
            );
            for status in ["pending", "sending", "sent", "failed"] {
                let n = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
                let _ = writeln!(out, "updraft_notifications{{status=\"{status}\"}} {n}");
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
    m.write_lineage(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

/// The live workers' slots, claims and lease renewals — one series per worker when `per_worker`
/// (the caller is logged in), their sums otherwise — and how many workers were lost.
fn write_workers(out: &mut String, workers: &[(ProcessRow, bool)], per_worker: bool) {
    let live: Vec<&ProcessRow> =
        workers.iter().map(|(p, _)| p).filter(|p| p.stopped_at.is_none()).collect();
    // The series of one figure: `{worker="…",extra}` per live worker, or one `{extra}` sum.
    let series = |out: &mut String, name: &str, extra: &str, value: fn(&ProcessRow) -> i64| {
        if per_worker {
            let sep = if extra.is_empty() { "" } else { "," };
            for p in &live {
                let _ =
                    writeln!(out, "{name}{{worker=\"{}\"{sep}{extra}}} {}", label(&p.id), value(p));
            }
        } else {
            let total: i64 = live.iter().map(|p| value(p)).sum();
            let labels = if extra.is_empty() { String::new() } else { format!("{{{extra}}}") };
            let _ = writeln!(out, "{name}{labels} {total}");
        }
    };
    let _ = writeln!(
        out,
        "# HELP updraft_worker_slots Task slots of the live workers, as of their last heartbeat.\n\
         # TYPE updraft_worker_slots gauge"
    );
    series(out, "updraft_worker_slots", "state=\"total\"", |p| p.slots.unwrap_or(0));
    series(out, "updraft_worker_slots", "state=\"busy\"", |p| p.running.unwrap_or(0));
    /// A per-worker counter: its name, its help and where the value is.
    type Counter = (&'static str, &'static str, fn(&ProcessRow) -> i64);
    let counters: [Counter; 2] = [
        ("claims", "Task instances the live workers claimed since they started.", |p| p.claims),
        ("lease_renewals", "Lease renewals the live workers made since they started.", |p| {
            p.lease_renewals
        }),
    ];
    for (name, help, value) in counters {
        let name = format!("updraft_worker_{name}_total");
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        series(out, &name, "", value);
    }
    let lost = workers.iter().filter(|(_, lost)| *lost).count();
    let _ = writeln!(
        out,
        "# HELP updraft_workers_lost_total Workers declared dead because their heartbeat \
         stopped.\n# TYPE updraft_workers_lost_total counter\nupdraft_workers_lost_total {lost}"
    );
}

/// A label value as the text format writes it between double quotes: backslash, double quote
/// and line feed escaped, everything else as is.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("plain:1:2"), "plain:1:2");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn live_workers_get_lines_and_the_lost_are_counted() {
        let live = ProcessRow {
            id: "w\"1".into(),
            kind: "worker".into(),
            slots: Some(4),
            running: Some(1),
            claims: 7,
            lease_renewals: 3,
            ..ProcessRow::default()
        };
        let gone = ProcessRow {
            id: "w2".into(),
            kind: "worker".into(),
            stopped_at: Some(chrono::Utc::now()),
            ..ProcessRow::default()
        };
        let mut out = String::new();
        let rows = [(live, false), (gone, true)];
        write_workers(&mut out, &rows, true);
        for line in [
            "updraft_worker_slots{worker=\"w\\\"1\",state=\"total\"} 4",
            "updraft_worker_slots{worker=\"w\\\"1\",state=\"busy\"} 1",
            "updraft_worker_claims_total{worker=\"w\\\"1\"} 7",
            "updraft_worker_lease_renewals_total{worker=\"w\\\"1\"} 3",
            "updraft_workers_lost_total 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        assert!(!out.contains("w2"), "a stopped worker has no lines: {out}");
        let mut sums = String::new();
        write_workers(&mut sums, &rows, false);
        for line in [
            "updraft_worker_slots{state=\"total\"} 4",
            "updraft_worker_slots{state=\"busy\"} 1",
            "updraft_worker_claims_total 7",
            "updraft_worker_lease_renewals_total 3",
            "updraft_workers_lost_total 1",
        ] {
            assert!(sums.lines().any(|l| l == line), "{line} in\n{sums}");
        }
        assert!(!sums.contains("worker="), "no worker named without a login: {sums}");
    }
}
