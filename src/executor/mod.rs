//! Executors: how queued task instances get a worker slot.
//!
//! The scheduler queues task instances in the store (within the caps) and hands them to an
//! [`Executor`]; the executor runs each through `worker::run_ti` and reports the end of every
//! try on a channel the scheduler listens to, so the next task starts without a polling delay.
//! `sequential` is the local executor with one slot. The distributed executor
//! ([`distributed`]) only queues: `updraft worker` processes claim from PostgreSQL and run each
//! try through the same local executor (`worker::remote`).
//!
//! The process that runs tries becomes a child subreaper when its executor is built, so the
//! orphans of a try stay its own (see `operators::containment`), and runs the worker's watch
//! loop: stop requests on its running tries, and the reaping of orphans that exited.
//!
//! Invariant: an executor never changes a state itself; the worker does, through the store's
//! compare-and-set writes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::TiRow;
use crate::worker::{self, TryReport, WorkerEnv};

pub mod distributed;

pub use distributed::DistributedExecutor;

/// How long `drain` waits for cancelled tries to record their end: the worker's own grace
/// for an operator to stop (15 s) plus a margin.
const KILL_WAIT: Duration = Duration::from_secs(20);

/// A boxed future, so the trait stays object safe.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs queued task instances somewhere.
pub trait Executor: Send + Sync {
    /// How many more task instances it can take now.
    fn free_slots(&self) -> usize;
    /// Starts a queued task instance. The caller has checked `free_slots`.
    fn submit(&self, ti: TiRow);
    /// Stops taking work, lets running tries finish for at most `grace`, then cancels them.
    fn drain(&self, grace: Duration) -> BoxFuture;
    /// Whether workers elsewhere claim what is queued (the distributed executor): then an
    /// instance is queued without an owner, only for queues a live worker serves, and within
    /// the parallelism of every worker together.
    fn claims_remotely(&self) -> bool {
        false
    }
}

/// Runs task instances as tokio tasks in this process, at most `slots` at once.
pub struct LocalExecutor {
    slots: usize,
    busy: Arc<AtomicUsize>,
    env: Arc<WorkerEnv>,
    reports: mpsc::UnboundedSender<TryReport>,
    tracker: TaskTracker,
    /// Cancels the running tries (it is `env.shutdown`): fired by `drain` once the grace ends.
    kill: CancellationToken,
    /// Stops the worker's watch loop: after `drain`, or when the executor is dropped.
    watcher: CancellationToken,
}

impl LocalExecutor {
    /// An executor with `slots` slots (1 = sequential) reporting each try's end on `reports`.
    pub fn new(
        slots: usize,
        env: Arc<WorkerEnv>,
        reports: mpsc::UnboundedSender<TryReport>,
    ) -> LocalExecutor {
        crate::operators::containment::reaper::become_subreaper();
        let watcher = CancellationToken::new();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(worker::watch(env.clone(), watcher.clone()));
            }
            Err(_) => tracing::warn!("no runtime: stop requests will not reach running tries"),
        }
        LocalExecutor {
            slots: slots.max(1),
            busy: Arc::new(AtomicUsize::new(0)),
            kill: env.shutdown.clone(),
            env,
            reports,
            tracker: TaskTracker::new(),
            watcher,
        }
    }
}

impl Drop for LocalExecutor {
    fn drop(&mut self) {
        self.watcher.cancel();
    }
}

impl Executor for LocalExecutor {
    fn free_slots(&self) -> usize {
        self.slots.saturating_sub(self.busy.load(Ordering::SeqCst))
    }

    fn submit(&self, ti: TiRow) {
        self.busy.fetch_add(1, Ordering::SeqCst);
        let (env, busy, reports) = (self.env.clone(), self.busy.clone(), self.reports.clone());
        self.tracker.spawn(async move {
            let report = match worker::run_ti(&env, &ti).await {
                Ok(report) => report,
                Err(e) => {
                    // The store failed mid-try: the instance stays queued/running and crash
                    // recovery takes it back; the scheduler still hears about the slot.
                    tracing::error!(ti_id = ti.id.0, error = %e, "task try could not be recorded");
                    TryReport::never_started(&ti)
                }
            };
            busy.fetch_sub(1, Ordering::SeqCst);
            let _ = reports.send(report);
        });
    }

    fn drain(&self, grace: Duration) -> BoxFuture {
        let (tracker, kill) = (self.tracker.clone(), self.kill.clone());
        let watcher = self.watcher.clone();
        Box::pin(async move {
            tracker.close();
            if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
                // Grace is over: cancel what still runs (its tries are handed back, to run
                // again without using up a try), and wait for those records to be written.
                kill.cancel();
                let _ = tokio::time::timeout(KILL_WAIT, tracker.wait()).await;
            }
            // Stop requests still reach tries during the grace; afterwards none runs.
            watcher.cancel();
        })
    }
}
