//! `updraft worker`: a process that claims queued task instances from PostgreSQL and runs
//! them (`UPDRAFT_EXECUTOR=distributed`).
//!
//! The loop claims as many instances as it has free slots (`Store::claim_queued`: `FOR UPDATE
//! SKIP LOCKED` on the partial index of unowned queued rows) and runs each through the local
//! executor, exactly as a standalone process runs its own. It claims again when a slot frees,
//! when a scheduler's notification says something was queued, and every [`CLAIM_POLL`]
//! without one. Every sixth of the heartbeat timeout it renews its process heartbeat and the
//! leases of its running tries; a try whose lease was not renewed (the sweep took it back, a
//! user changed it) is stopped at once and its outcome discarded. A worker that cannot renew
//! for a whole heartbeat timeout stops every try itself: by then a scheduler may give them to
//! another worker, and a try must never run twice at once.
//!
//! The database may go away: claims stop (retried with back-off), running tries go on, and
//! their ends are written once it answers again (`record_end` retries what failed to
//! connect). SIGTERM stops claiming, gives back what was claimed and not started, and lets the
//! running tries finish for the grace period; then (or at a second SIGTERM) they are cancelled
//! and handed back: up for retry at once, the cut try not counted (`model::try_end`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{RunningTries, TryReport, WorkerEnv};
use crate::config::Settings;
use crate::dag::DagCache;
use crate::executor::distributed::ended_payload;
use crate::executor::{Executor, LocalExecutor};
use crate::store::{ENDED_CHANNEL, ProcessRow, QUEUED_CHANNEL, Store};

/// How often a worker looks for queued work when no notification woke it.
pub const CLAIM_POLL: Duration = Duration::from_secs(1);

/// How one worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Shown in the UI and part of its process id (default: the host name).
    pub name: String,
    /// Queues it takes tries of (default: `default`).
    pub queues: Vec<String>,
    /// Tries it runs at once.
    pub slots: usize,
    /// At shutdown, how long running tries may go on before they are cancelled.
    pub grace: Duration,
}

/// Counters a worker reports with its heartbeat.
#[derive(Default)]
struct Counters {
    claims: AtomicI64,
    renewals: AtomicI64,
}

/// Runs a worker until `shutdown` fires (then drains, see the module doc) or until `kill`
/// fires (then cancels its tries at once).
pub async fn serve(
    settings: Arc<Settings>,
    store: Store,
    opts: WorkerOptions,
    shutdown: CancellationToken,
    kill: CancellationToken,
) -> Result<(), crate::store::StoreError> {
    let hostname = gethostname::gethostname().to_string_lossy().into_owned();
    let pid = i64::from(std::process::id());
    let started = Utc::now();
    let process = ProcessRow {
        id: format!("{}:{pid}:{}", opts.name, started.timestamp_micros()),
        kind: "worker".into(),
        hostname: hostname.clone(),
        pid,
        heartbeat_at: started,
        queues: opts.queues.clone(),
        slots: Some(opts.slots as i64),
        running: Some(0),
        ..Default::default()
    };
    store.heartbeat(&process, started).await?;
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let lineage = crate::lineage::Lineage::start(&settings, metrics.clone());
    let env = Arc::new(WorkerEnv {
        metrics,
        lineage,
        store: store.clone(),
        settings: settings.clone(),
        dags: Arc::new(DagCache::new()),
        process_id: process.id.clone(),
        hostname,
        shutdown: kill.clone(),
        tries: RunningTries::default(),
    });
    let (tx, mut reports) = mpsc::unbounded_channel();
    let executor = LocalExecutor::new(opts.slots, env.clone(), tx);
    let wake = Arc::new(Notify::new());
    let stop_helpers = CancellationToken::new();
    tokio::spawn(listen_for_queued(
        settings.database_url.clone(),
        wake.clone(),
        stop_helpers.clone(),
    ));
    let counters = Arc::new(Counters::default());
    let leases = tokio::spawn(keep_leases(
        env.clone(),
        process.clone(),
        counters.clone(),
        settings.heartbeat_timeout,
        stop_helpers.clone(),
    ));
    tracing::info!(
        worker = %process.id,
        queues = %opts.queues.join(","),
        slots = opts.slots,
        "worker started"
    );
    let lease = chrono::Duration::from_std(settings.heartbeat_timeout).unwrap_or_default();
    let mut failing_since: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        let free = executor.free_slots();
        let mut backoff = Duration::ZERO;
        if free > 0 {
            let now = Utc::now();
            match store.claim_queued(&process.id, &opts.queues, free, now + lease, now).await {
                Ok(tis) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(after = ?since.elapsed(), "the database answers again; claiming");
                    }
                    // With every slot taken, the next claim comes when a try's end frees one.
                    counters.claims.fetch_add(tis.len() as i64, Ordering::Relaxed);
                    for ti in tis {
                        executor.submit(ti);
                    }
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    backoff = claim_backoff(since.elapsed());
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot claim; running tries go on");
                }
            }
        }
        let wait = if backoff.is_zero() { CLAIM_POLL } else { backoff };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified(), if backoff.is_zero() => {}
            report = reports.recv() => {
                if let Some(r) = report {
                    report_end(&store, &r).await;
                }
                while let Ok(r) = reports.try_recv() {
                    report_end(&store, &r).await;
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!(worker = %process.id, running = env.tries.len(), "stopping: no more claims; running tries may finish");
    if let Err(e) = store.release_claims(&process.id, Utc::now()).await {
        tracing::warn!(error = %e, "cannot give back unstarted claims; the sweep will");
    }
    let drain = executor.drain(opts.grace);
    tokio::pin!(drain);
    // A second signal fires `kill`, the tries' own token: they are cancelled, and the drain
    // waits, bounded, for their ends to be recorded. Meanwhile ends are reported as they come.
    loop {
        tokio::select! {
            _ = &mut drain => break,
            Some(r) = reports.recv() => report_end(&store, &r).await,
        }
    }
    while let Ok(r) = reports.try_recv() {
        report_end(&store, &r).await;
    }
    stop_helpers.cancel();
    let _ = leases.await;
    store.process_stopped(&process.id, Utc::now()).await?;
    tracing::info!(worker = %process.id, "worker stopped");
    Ok(())
}

/// Back-off between failed claims: from 0.5 s, doubling, at most 10 s.
fn claim_backoff(failing_for: Duration) -> Duration {
    let steps = (failing_for.as_secs_f64() / 0.5).log2().max(0.0) as u32;
    Duration::from_millis(500)
        .saturating_mul(2u32.saturating_pow(steps.min(5)))
        .min(Duration::from_secs(10))
}

/// Tells the schedulers a try ended, so its run is looked at now (a lost notification only
/// delays that to the scheduler's next sweep).
async fn report_end(store: &Store, r: &TryReport) {
    if let Err(e) = store.notify(ENDED_CHANNEL, &ended_payload(r)).await {
        tracing::debug!(error = %e, "cannot notify the schedulers; their sweep finds the end");
    }
}

/// Wakes the claim loop on every notification of queued work, until `stop`.
async fn listen_for_queued(url: String, wake: Arc<Notify>, stop: CancellationToken) {
    crate::store::listen(&url, QUEUED_CHANNEL, stop, |_| wake.notify_one()).await;
}

/// Renews this worker's heartbeat and the leases of its running tries every sixth of
/// `timeout`; stops the tries whose lease is gone, and every try once no renewal succeeded for
/// a whole `timeout`.
async fn keep_leases(
    env: Arc<WorkerEnv>,
    mut process: ProcessRow,
    counters: Arc<Counters>,
    timeout: Duration,
    stop: CancellationToken,
) {
    let every = timeout / 6;
    let lease = chrono::Duration::from_std(timeout).unwrap_or_default();
    let mut renewed_at = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let asked = Instant::now();
        let now = Utc::now();
        match env.store.renew_leases(&process.id, now + lease, now).await {
            Ok(held) => {
                renewed_at = asked;
                counters.renewals.fetch_add(held.len() as i64, Ordering::Relaxed);
                let held: HashSet<_> = held.into_iter().collect();
                let lost = env.tries.stop_unheld(
                    Some(&held),
                    asked,
                    "This worker's lease on the try is gone (taken back after a missed heartbeat, or changed meanwhile): stopping it",
                );
                if lost > 0 {
                    tracing::warn!(tries = lost, "leases lost; those tries were stopped");
                }
            }
            Err(e) if asked.duration_since(renewed_at) >= timeout => {
                let n = env.tries.stop_unheld(
                    None,
                    asked,
                    "This worker could not renew its lease for a whole heartbeat timeout: stopping the try, which a scheduler may give to another worker",
                );
                tracing::error!(error = %e, tries = n, "cannot renew leases; stopped every try");
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew leases; trying again"),
        }
        process.running = Some(env.tries.len() as i64);
        process.claims = counters.claims.load(Ordering::Relaxed);
        process.lease_renewals = counters.renewals.load(Ordering::Relaxed);
        if let Err(e) = env.store.heartbeat(&process, now).await {
            tracing::warn!(error = %e, "cannot write the heartbeat");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_back_off_from_half_a_second_to_ten() {
        assert_eq!(claim_backoff(Duration::ZERO), Duration::from_millis(500));
        assert_eq!(claim_backoff(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(claim_backoff(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(claim_backoff(Duration::from_secs(600)), Duration::from_secs(10));
    }
}
