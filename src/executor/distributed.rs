//! The scheduler's side of `UPDRAFT_EXECUTOR=distributed`: tries run in `updraft worker`
//! processes, which claim queued instances from PostgreSQL (`worker::remote`).
//!
//! The scheduler only queues (up to `UPDRAFT_PARALLELISM` queued or running over every
//! worker, counted in the queueing transaction). After each queueing it sends one
//! notification that wakes the workers, and it listens for the workers' notifications of
//! ended tries, which it turns into the same reports a local executor sends, so a downstream
//! task is scheduled at once. Notifications only shorten waits: a lost one is made up by the
//! workers' claim poll and the scheduler's sweep.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{BoxFuture, Executor};
use crate::model::{RunPk, TaskState, TiId};
use crate::store::{ENDED_CHANNEL, QUEUED_CHANNEL, Store, TiRow};
use crate::worker::TryReport;

/// Queues for workers on PostgreSQL; runs nothing itself.
pub struct DistributedExecutor {
    parallelism: usize,
    queued: Arc<Notify>,
    stop: CancellationToken,
}

impl DistributedExecutor {
    /// An executor that lets `parallelism` tries be queued or running at once, wakes workers
    /// through `store`, and turns the workers' notifications (read from `database_url`) into
    /// `reports`.
    pub fn new(
        store: Store,
        database_url: String,
        parallelism: usize,
        reports: mpsc::UnboundedSender<TryReport>,
    ) -> DistributedExecutor {
        let (queued, stop) = (Arc::new(Notify::new()), CancellationToken::new());
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(wake_workers(store, queued.clone(), stop.clone()));
                rt.spawn(listen_for_ends(database_url, reports, stop.clone()));
            }
            Err(_) => tracing::warn!("no runtime: workers are not woken, they poll"),
        }
        DistributedExecutor { parallelism: parallelism.max(1), queued, stop }
    }
}

impl Drop for DistributedExecutor {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Executor for DistributedExecutor {
    /// The queueing transaction counts what is queued or running everywhere against
    /// `parallelism`; this is only the most one pass may queue.
    fn free_slots(&self) -> usize {
        self.parallelism
    }

    fn submit(&self, _ti: TiRow) {
        // Queued and committed: wake the workers (once for every instance of a pass).
        self.queued.notify_one();
    }

    fn drain(&self, _grace: Duration) -> BoxFuture {
        // Workers own their tries and stop on their own signals.
        let stop = self.stop.clone();
        Box::pin(async move { stop.cancel() })
    }

    fn claims_remotely(&self) -> bool {
        true
    }
}

/// Sends one notification on the queued channel per wake-up.
async fn wake_workers(store: Store, queued: Arc<Notify>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = queued.notified() => {}
        }
        if let Err(e) = store.notify(QUEUED_CHANNEL, "").await {
            tracing::debug!(error = %e, "cannot notify workers; they find the work by polling");
        }
    }
}

/// Turns the workers' notifications of ended tries into reports, until `stop`.
async fn listen_for_ends(
    url: String,
    reports: mpsc::UnboundedSender<TryReport>,
    stop: CancellationToken,
) {
    crate::store::listen(&url, ENDED_CHANNEL, stop, |payload| {
        if let Some(report) = parse_ended(payload) {
            let _ = reports.send(report);
        }
    })
    .await;
}

/// The payload a worker sends when a try ends: `run_pk ti_id state task_id` (`-` for a try
/// that never started).
pub fn ended_payload(r: &TryReport) -> String {
    let state = r.state.map(|s| s.as_str()).unwrap_or("-");
    format!("{} {} {state} {}", r.run_pk.0, r.ti_id.0, r.task_id)
}

/// Reads [`ended_payload`]; None for anything else (a notification is a hint, never trusted
/// for more than a run to look at again).
pub fn parse_ended(payload: &str) -> Option<TryReport> {
    let mut parts = payload.splitn(4, ' ');
    let run_pk = RunPk(parts.next()?.parse().ok()?);
    let ti_id = TiId(parts.next()?.parse().ok()?);
    let state = match parts.next()? {
        "-" => None,
        s => Some(s.parse::<TaskState>().ok()?),
    };
    let task_id = parts.next()?.to_string();
    Some(TryReport { ti_id, run_pk, task_id, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_notification_reads_back_as_its_report() {
        let r = TryReport {
            ti_id: TiId(7),
            run_pk: RunPk(3),
            task_id: "load part 2".into(),
            state: Some(TaskState::UpForRetry),
        };
        assert_eq!(parse_ended(&ended_payload(&r)), Some(r.clone()));
        let never = TryReport { state: None, ..r };
        assert_eq!(parse_ended(&ended_payload(&never)), Some(never));
        for junk in ["", "3", "x 1 success t", "3 1 exploded t", "3 1 success"] {
            assert_eq!(parse_ended(junk), None, "{junk:?}");
        }
    }
}
