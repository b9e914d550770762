//! Crash recovery: task instances left queued or running by a process that died.
//!
//! A process is dead when its heartbeat is older than the timeout, or at once when it ran on
//! this host and its pid is gone (a restart after `kill -9` recovers without waiting). Its
//! queued instances go back to scheduled (they never started); its running instances have their
//! command's process group killed if it survived, then fail their try, retried per `retries`.
//! Killing before recording the failure is what keeps a task from running twice at once.

use super::{Scheduler, SchedulerError};
use crate::model::{self, TaskState};
use crate::operators::TaskLog;
use crate::store::{FinishTry, ProcessRow, TiRow};
use crate::worker::log_path;

/// Whether `pid` names a live process on this host.
fn pid_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Kills the process group led by `pid`, if `pid` still leads one (our bash commands run in
/// their own group, so this never hits an unrelated process that merely reused the pid).
fn kill_group(pid: i64) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    if pid <= 1 {
        return;
    }
    // SAFETY: getpgid and kill take plain integers and have no memory effects.
    unsafe {
        if libc::getpgid(pid) == pid {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
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

    /// Recovers the task instances of dead processes.
    pub(super) async fn recover(&mut self) -> Result<(), SchedulerError> {
        let now = self.clock.now();
        let mut alive = Vec::new();
        for p in self.store.live_processes().await? {
            if self.is_alive(&p) {
                alive.push(p.id);
            } else {
                tracing::warn!(process = %p.id, "process is gone; recovering its task instances");
                self.store.process_stopped(&p.id, now).await?;
            }
        }
        for ti in self.store.orphaned_tis(&alive).await? {
            match ti.state {
                TaskState::Queued => {
                    self.queue_wanted |= self.store.requeue_orphan(ti.id, now).await?;
                }
                _ => self.fail_orphan(&ti).await?,
            }
            self.dirty.insert(ti.run_pk);
        }
        Ok(())
    }

    async fn fail_orphan(&mut self, ti: &TiRow) -> Result<(), SchedulerError> {
        let now = self.clock.now();
        if ti.hostname.as_deref() == Some(self.process.hostname.as_str())
            && let Some(pid) = ti.pid
        {
            kill_group(pid);
        }
        let owner = ti.owner_process.as_deref().unwrap_or("unknown");
        let reason = format!("the process running this try ({owner}) died");
        let (state, next_try_at) = match self
            .dags
            .cached(&ti.dag_id)
            .and_then(|d| d.tasks.get(&ti.task_id).cloned())
        {
            Some(task) => {
                let outcome =
                    model::on_failure(&task, ti.try_number.max(0) as u32, ti.max_tries, true, now);
                match outcome {
                    model::FailureOutcome::Retry(at) => (outcome.state(), Some(at)),
                    model::FailureOutcome::Fail => (outcome.state(), None),
                }
            }
            None => (TaskState::Failed, None),
        };
        let log = TaskLog::open(log_path(&self.settings, ti, ti.try_number))
            .unwrap_or_else(|_| TaskLog::sink());
        log.line(format!("Recovered after a crash: {reason}; marked {state}"));
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
        };
        self.store.finish_try(&finish).await?;
        Ok(())
    }
}
