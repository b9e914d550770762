//! Stop requests reaching the tries of this process, and the one way a try's end is recorded.
//!
//! A user's mark or clear of a running instance is a request in the store (the instance stays
//! running). The worker's [`watch`] loop looks for requests on its own running tries every
//! [`POLL`] and cancels those tries; the operator stops its command (SIGTERM, grace, SIGKILL,
//! until every process is gone) and returns; [`record_end`] then records the outcome the
//! request decides (`model::after_stop`) through a compare-and-set.
//!
//! Invariant: correctness never depends on the watcher's timing. [`record_end`] is the only
//! writer of a try's end (the worker's and crash recovery's): a try that ends on its own while a
//! request is pending gets the request applied, and a dead worker's request is applied by
//! recovery after it killed the try's processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::WorkerEnv;
use crate::model::{self, TaskState, TiId};
use crate::operators::TaskLog;
use crate::operators::containment::reaper;
use crate::store::{FinishTry, Store, StoreError};

/// How often the store is asked for stop requests (and orphans reaped): a user waits at most
/// this long before the stop begins.
pub const POLL: Duration = Duration::from_secs(1);

/// The tries this worker runs, so a stop request can reach them.
#[derive(Default)]
pub struct RunningTries {
    inner: Mutex<HashMap<TiId, Entry>>,
}

struct Entry {
    try_number: i64,
    cancel: CancellationToken,
    log: TaskLog,
    /// Why it was cancelled, once it was.
    stopping: Option<Stopped>,
    /// When it was registered.
    since: std::time::Instant,
}

/// Why a running try was cancelled from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A user's mark or clear: the request decides what is recorded.
    ByRequest,
    /// This worker's lease on it is gone: someone else records it, this worker nothing.
    LeaseLost,
}

impl RunningTries {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TiId, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a try that has started.
    pub(super) fn insert(
        &self,
        ti_id: TiId,
        try_number: i64,
        cancel: CancellationToken,
        log: TaskLog,
    ) {
        let since = std::time::Instant::now();
        let entry = Entry { try_number, cancel, log, stopping: None, since };
        self.lock().insert(ti_id, entry);
    }

    /// Forgets a try that returned, and says why it was cancelled, if it was.
    pub(super) fn remove(&self, ti_id: TiId) -> Option<Stopped> {
        self.lock().remove(&ti_id).and_then(|e| e.stopping)
    }

    /// Whether no try runs.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Cancels try `try_number` of `ti_id` if this worker runs it (once).
    fn stop(&self, ti_id: TiId, try_number: i64) {
        if let Some(e) = self.lock().get_mut(&ti_id)
            && e.try_number == try_number
        {
            e.stop(
                Stopped::ByRequest,
                "A user asked to stop this try (mark or clear): stopping it",
            );
        }
    }

    /// How many tries run now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Stops every try registered before `asked` that is not in `held` (the tries this
    /// worker's lease covered when it asked at `asked`; None: it holds none it can prove):
    /// the sweep took them back, or a user changed them, so their end would not be recorded
    /// and their processes must not run beside a retry. Returns how many it stopped.
    pub fn stop_unheld(
        &self,
        held: Option<&std::collections::HashSet<(TiId, i64)>>,
        asked: std::time::Instant,
        why: &str,
    ) -> usize {
        let mut stopped = 0;
        for (ti_id, e) in self.lock().iter_mut() {
            let kept = held.is_some_and(|h| h.contains(&(*ti_id, e.try_number)));
            if e.since < asked && !kept && e.stop(Stopped::LeaseLost, why) {
                stopped += 1;
            }
        }
        stopped
    }
}

impl Entry {
    /// Cancels the try once, logging `why`; false if it was already stopping.
    fn stop(&mut self, kind: Stopped, why: &str) -> bool {
        if self.stopping.is_some() {
            return false;
        }
        self.stopping = Some(kind);
        self.log.line(why);
        self.cancel.cancel();
        true
    }
}

/// Cancels the tries a user asked to stop, and reaps the orphans this process inherited, every
/// [`POLL`] until `stop` fires.
pub async fn watch(env: Arc<WorkerEnv>, stop: CancellationToken) {
    use futures::FutureExt;
    use tokio::signal::unix::{SignalKind, signal};
    // An orphan that exits sends SIGCHLD: without one since the last look there is nothing to
    // reap, and an idle worker skips the pass over /proc.
    let mut children = signal(SignalKind::child()).ok();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let exited = children.as_mut().is_none_or(|c| c.recv().now_or_never().is_some());
        if exited {
            reaper::reap_strays();
        }
        if env.tries.is_empty() {
            continue;
        }
        match env.store.stop_requests(&env.process_id).await {
            Ok(requests) => {
                for (ti_id, try_number) in requests {
                    env.tries.stop(ti_id, try_number);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read stop requests; asking again"),
        }
    }
}

/// How long the end of a try is retried while the database cannot be reached (a restart, a
/// network cut): the try's outcome is kept in memory meanwhile.
pub(super) const RECONNECT_FOR: Duration = Duration::from_secs(300);

/// Runs `op` again, with back-off, while it fails because the database cannot be reached,
/// for at most [`RECONNECT_FOR`]; each retry is a line of the try's log.
pub(super) async fn retrying<T, F: Future<Output = Result<T, StoreError>>>(
    log: &TaskLog,
    mut op: impl FnMut() -> F,
) -> Result<T, StoreError> {
    let deadline = tokio::time::Instant::now() + RECONNECT_FOR;
    let mut pause = Duration::from_millis(250);
    loop {
        match op().await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() + pause < deadline => {
                log.line(format!("The database cannot be reached ({e}); retrying"));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            done => return done,
        }
    }
}

/// Records the end of a try: `f` as the worker (or recovery) decided it, unless a user asked
/// to stop the try; then the request's outcome, given `own` — the state the try reached by
/// itself, None when it was stopped before it ended. Returns the state recorded, None when the
/// instance had left this try meanwhile. Retries while the database cannot be reached.
pub async fn record_end(
    store: &Store,
    f: &FinishTry,
    own: Option<TaskState>,
    log: &TaskLog,
) -> Result<Option<TaskState>, StoreError> {
    // Bounded: each round loses only to a newer request written in between.
    for _ in 0..5 {
        if retrying(log, || store.finish_try(f)).await? {
            return Ok(Some(f.state));
        }
        let pending = retrying(log, || store.pending_stop(f.ti_id, f.try_number));
        let Some(stop) = pending.await? else {
            return Ok(None);
        };
        let outcome = model::after_stop(&stop.request, own);
        if retrying(log, || store.finish_stopped(f, &stop, &outcome)).await? {
            log.line(format!("Stopped on request ({}): recorded {}", stop.note, outcome.state));
            return Ok(Some(outcome.state));
        }
    }
    Ok(None)
}
