//! Crash recovery: task instances left queued or running by a process that died.
//!
//! A process is dead when its heartbeat is older than the timeout, or at once when it ran on
//! this host and its pid is gone (a restart after `kill -9` recovers without waiting). Its
//! queued instances go back to scheduled (they never started). Its running instances on this
//! host first have every process of their try stopped — found by the try's cgroup, its process
//! group and session (scanned in `/proc`, since the leader may be gone), and the try's key in
//! the environment — and only once none is left is the try recorded: failed and retried per
//! `retries`, or, when a user marked or cleared it meanwhile, as the request decides.
//!
//! Invariant: a try is never recorded as over while a process of it may still run on this
//! host. Processes that survive the bound are logged and the try is left running; the next
//! sweep tries again. That is what keeps a task from running twice at once.

use std::path::PathBuf;
use std::time::Duration;

use super::{Scheduler, SchedulerError};
use crate::model::{self, TaskState};
use crate::operators::TaskLog;
use crate::operators::containment::{self, StopPlan, TryProcesses, cgroup, procfs};
use crate::store::{FinishTry, ProcessRow, Store, StoreError, TiRow};
use crate::worker::{log_path, record_end};

/// Recovery's stop: a grace shorter than a live worker's (the processes have been orphaned
/// since the crash), and the bound after which the try waits for the next sweep.
const RECOVERY_STOP: StopPlan =
    StopPlan { grace: Duration::from_secs(3), bound: Duration::from_secs(10) };

/// Whether `pid` names a live process on this host.
fn pid_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// What identifies the processes of `ti`'s current try, from what its worker recorded. Ids
/// recorded under another boot name other processes now and are left out; the environment
/// key and the cgroup stay meaningful.
async fn try_processes(store: &Store, ti: &TiRow) -> Result<TryProcesses, StoreError> {
    let key = containment::try_key(ti.owner_process.as_deref().unwrap_or(""), ti.id, ti.try_number);
    let recorded = store.try_process(ti.id).await?.unwrap_or_default();
    let same_boot = recorded.boot_id.as_deref().is_some_and(|b| Some(b) == procfs::boot_id());
    let id = |v: Option<i64>| v.filter(|_| same_boot).and_then(|v| i32::try_from(v).ok());
    // The cgroup as recorded; if the worker died before recording it, where it would be.
    let cgroup = recorded
        .cgroup
        .map(PathBuf::from)
        .or_else(|| cgroup::base().map(|b| b.join(&key)))
        .filter(|p| cgroup::is_ours(p));
    Ok(TryProcesses {
        key,
        pgid: id(recorded.pgid),
        sid: id(recorded.sid),
        cgroup,
        since: None,
        leader: None,
        scan: true,
    })
}

impl Scheduler {
    fn is_alive(&self, p: &ProcessRow) -> bool {
        if p.id == self.process.id {
            return true;
        }
        let fresh = (self.clock.now() - p.heartbeat_at)
            .to_std()
            .map(|age| age < self.opts.process_timeout)
            .unwrap_or(true);
        if p.hostname == self.process.hostname { fresh && pid_alive(p.pid) } else { fresh }
    }

    /// Recovers the task instances of dead processes and of expired leases, and (with the
    /// distributed executor) what stayed queued with no worker claiming it.
    pub(super) async fn recover(&mut self) -> Result<(), SchedulerError> {
        let now = self.clock.now();
        let mut alive = Vec::new();
        let mut served = std::collections::HashSet::new();
        let mut slots = 0;
        for p in self.store.live_processes().await? {
            if self.is_alive(&p) {
                if p.kind == "worker" {
                    served.extend(p.queues.iter().cloned());
                    slots += usize::try_from(p.slots.unwrap_or(0)).unwrap_or(0);
                }
                alive.push(p.id);
            } else {
                tracing::warn!(process = %p.id, kind = %p.kind, "process is gone (no heartbeat); recovering its task instances");
                self.store.process_lost(&p.id, now).await?;
            }
        }
        if served != self.served_queues || slots != self.worker_slots {
            // A worker came or went: what waited for its queue may be queued now.
            self.served_queues = served;
            self.worker_slots = slots;
            self.queue_wanted = true;
        }
        if self.executor.claims_remotely() {
            let before =
                now - chrono::Duration::from_std(self.settings.queued_timeout).unwrap_or_default();
            let note = format!(
                "queued for {} and no worker claimed it: scheduled again",
                humantime::format_duration(self.settings.queued_timeout)
            );
            let runs = self.store.requeue_unclaimed(before, &note, now).await?;
            if !runs.is_empty() {
                tracing::warn!(
                    instances = runs.len(),
                    "queued instances no worker claimed went back to scheduled"
                );
                self.queue_wanted = true;
                self.dirty.extend(runs);
            }
        }
        let mut running = Vec::new();
        for ti in self.store.orphaned_tis(&alive, now).await? {
            match ti.state {
                TaskState::Queued => {
                    // Claimed but never started: any worker may take it again.
                    self.queue_wanted |= self.store.requeue_orphan(&ti, now).await?;
                    self.dirty.insert(ti.run_pk);
                }
                _ => running.push(ti),
            }
        }
        // Every orphan's processes are stopped at once, so stubborn ones cost one bound, not
        // one per try.
        let here = self.process.hostname.clone();
        let stops = running.iter().map(|ti| {
            let store = self.store.clone();
            let local = ti.hostname.as_deref() == Some(here.as_str());
            async move {
                if !local {
                    return Ok(true);
                }
                let procs = try_processes(&store, ti).await?;
                match containment::stop(&procs, RECOVERY_STOP, &TaskLog::sink()).await {
                    Ok(_) => Ok::<bool, StoreError>(true),
                    Err(survivors) => {
                        tracing::warn!(ti_id = ti.id.0, dag_id = %ti.dag_id, task_id = %ti.task_id, error = %survivors, "processes of a dead worker's try survive; it stays running until the next sweep");
                        Ok(false)
                    }
                }
            }
        });
        let stopped = futures::future::join_all(stops).await;
        for (ti, gone) in running.iter().zip(stopped) {
            if gone? {
                self.fail_orphan(ti).await?;
                self.dirty.insert(ti.run_pk);
            }
        }
        Ok(())
    }

    /// Records the end of a dead process's try whose processes are gone: failed (retried per
    /// the task's retries), or what a user's stop request asked for.
    async fn fail_orphan(&mut self, ti: &TiRow) -> Result<(), SchedulerError> {
        let now = self.clock.now();
        let owner = ti.owner_process.as_deref().unwrap_or("unknown");
        let reason = format!("the process running this try ({owner}) died");
        // The task as its run's pinned version declares it (its retries), else the folder's.
        let dag = match self.run_dag(ti.run_pk).await? {
            Some(dag) => Some(dag),
            None => self.dags.cached(&ti.dag_id),
        };
        let task = dag.and_then(|d| d.tasks.get(&ti.task_id).cloned());
        let (state, next_try_at) = match &task {
            Some(task) => {
                let outcome =
                    model::on_failure(task, ti.try_number.max(0) as u32, ti.max_tries, true, now);
                match outcome {
                    model::FailureOutcome::Retry(at) => (outcome.state(), Some(at)),
                    model::FailureOutcome::Fail => (outcome.state(), None),
                }
            }
            None => (TaskState::Failed, None),
        };
        // A try lost with its process notifies like any failure of the task.
        let notify = task.as_ref().and_then(|t| crate::worker::notify_of(t, state));
        let log = TaskLog::open(log_path(&self.settings, ti, ti.try_number))
            .unwrap_or_else(|_| TaskLog::sink());
        log.line(format!("Recovered after a crash: {reason}; no process of the try is left"));
        let finish = FinishTry {
            ti_id: ti.id,
            try_number: ti.try_number,
            state,
            next_try_at,
            first_poke_at: None,
            end: now,
            error: Some(reason),
            rendered: None,
            xcom: None,
            owner_process: owner.to_string(),
            give_back_try: false,
            outlets: Vec::new(),
            outlet_extra: serde_json::Value::Null,
            notify,
        };
        // `None`: the crash, not the try, ended it.
        if let Some(recorded) = record_end(&self.store, &finish, None, &log).await? {
            log.line(format!("marked {recorded}"));
        }
        Ok(())
    }
}
