//! Per-run task instance counts kept between passes, so that re-examining a wide run whose
//! waits have not changed does not count its instances again.
//!
//! A run's counts are read from the store (one `GROUP BY` over its instances), then kept up to
//! date from what this scheduler sees: its own decisions, and the end of every try its
//! executor reports. What it does not see (a user's clear or mark, another scheduler,
//! recovery of a dead process) is caught by the sweep: every poll forgets every run's counts.
//!
//! Invariant: kept counts only ever decide that an instance **waits**. Whenever they would
//! move an instance (schedule it, skip it, fail it upstream) or finish the run, the pass reads
//! the counts from the store again and decides from those (`runs.rs`), so stale counts can
//! delay a decision until the next report or poll, never make a wrong one.

use std::collections::HashMap;

use crate::model::{RunPk, TaskState};

/// Task instance counts of one run, per task and state.
pub(super) type Counts = HashMap<String, HashMap<TaskState, i64>>;

/// The counts kept per run.
#[derive(Debug, Default)]
pub(super) struct KeptCounts {
    runs: HashMap<RunPk, Counts>,
}

/// The states an instance may be in while a try of it is on its way or running: the end of
/// the try takes it out of one of them.
const ACTIVE: [TaskState; 3] = [TaskState::Running, TaskState::Queued, TaskState::Scheduled];

impl KeptCounts {
    /// The kept counts of `run`, if any.
    pub(super) fn get(&self, run: RunPk) -> Option<&Counts> {
        self.runs.get(&run)
    }

    /// Keeps `counts` for `run`.
    pub(super) fn keep(&mut self, run: RunPk, counts: Counts) {
        self.runs.insert(run, counts);
    }

    /// Forgets `run`'s counts: the next pass reads them from the store.
    pub(super) fn forget(&mut self, run: RunPk) {
        self.runs.remove(&run);
    }

    /// Forgets every run's counts (the sweep).
    pub(super) fn clear(&mut self) {
        self.runs.clear();
    }

    /// A try of `task_id` in `run` ended in `state` (None: it never started). The instance
    /// leaves one of the active states; when the kept counts have none to take it from, or
    /// the try never started, they are forgotten.
    pub(super) fn try_ended(&mut self, run: RunPk, task_id: &str, state: Option<TaskState>) {
        let Some(counts) = self.runs.get_mut(&run) else { return };
        let Some(state) = state else {
            self.runs.remove(&run);
            return;
        };
        let per_task = counts.entry(task_id.to_string()).or_default();
        let from = ACTIVE.into_iter().find(|s| per_task.get(s).is_some_and(|n| *n > 0));
        match from {
            Some(from) => {
                *per_task.entry(from).or_insert(0) -= 1;
                *per_task.entry(state).or_insert(0) += 1;
            }
            None => {
                self.runs.remove(&run);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, TaskState, i64)]) -> Counts {
        let mut c = Counts::new();
        for (task, state, n) in pairs {
            c.entry(task.to_string()).or_default().insert(*state, *n);
        }
        c
    }

    #[test]
    fn an_ended_try_moves_one_instance_out_of_an_active_state() {
        let mut kept = KeptCounts::default();
        let run = RunPk(1);
        kept.keep(run, counts(&[("fan", TaskState::Queued, 2), ("fan", TaskState::Running, 1)]));
        kept.try_ended(run, "fan", Some(TaskState::Success));
        let fan = &kept.get(run).expect("kept")["fan"];
        assert_eq!(fan[&TaskState::Running], 0, "running first");
        assert_eq!(fan[&TaskState::Queued], 2);
        assert_eq!(fan[&TaskState::Success], 1);
        kept.try_ended(run, "fan", Some(TaskState::Failed));
        kept.try_ended(run, "fan", Some(TaskState::UpForRetry));
        let fan = &kept.get(run).expect("kept")["fan"];
        assert_eq!((fan[&TaskState::Queued], fan[&TaskState::Failed]), (0, 1));
        assert_eq!(fan[&TaskState::UpForRetry], 1);
    }

    #[test]
    fn counts_that_cannot_account_for_an_end_are_forgotten() {
        let mut kept = KeptCounts::default();
        let run = RunPk(1);
        kept.keep(run, counts(&[("a", TaskState::Success, 1)]));
        kept.try_ended(run, "a", Some(TaskState::Success));
        assert!(kept.get(run).is_none(), "no active instance of `a` was known");
        kept.keep(run, counts(&[("a", TaskState::Queued, 1)]));
        kept.try_ended(run, "a", None);
        assert!(kept.get(run).is_none(), "a try that never started: state unknown");
        kept.keep(run, counts(&[("a", TaskState::Queued, 1)]));
        kept.try_ended(RunPk(2), "a", Some(TaskState::Success));
        assert_eq!(kept.get(run).expect("kept")["a"][&TaskState::Queued], 1, "another run");
        kept.clear();
        assert!(kept.get(run).is_none());
    }
}
