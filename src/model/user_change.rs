//! What a user's clear or mark of task instances writes: which instances a clear touches, what
//! each one becomes, and what becomes of their run.
//!
//! Pure: the use case (`actions::runs`) asks these functions and hands the answers to the
//! store, which writes them by compare-and-set on the state the user saw and decides nothing.

use super::stop::{StopRequest, needs_stop};
use super::transition::{can_clear, can_mark, cleared_max_tries};
use super::{DagRunState, TaskState};

/// What a clear or mark writes on one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserWrite {
    /// Its try is running: only the request is recorded; the try is stopped first and the
    /// request applied once its processes are gone (`stop::after_stop`).
    Stop(StopRequest),
    /// Run it again: state `none`, `max_tries` tries in all, and its retry and sensor timers,
    /// queue times and end cleared, so that the scheduler takes it up as new.
    Clear {
        /// From `cleared_max_tries`.
        max_tries: i64,
    },
    /// Set `state` by hand: ended now, no retry pending.
    Mark(TaskState),
}

/// What clearing an instance in `state` after `try_number` tries writes (its task allows
/// `retries` retries), or None when it may not be cleared now (queued: a worker is about to
/// take it).
pub fn clear(state: TaskState, try_number: i64, retries: u32) -> Option<UserWrite> {
    if !can_clear(state) {
        return None;
    }
    let max_tries = cleared_max_tries(try_number, retries);
    Some(if needs_stop(state) {
        UserWrite::Stop(StopRequest::Clear { max_tries })
    } else {
        UserWrite::Clear { max_tries }
    })
}

/// Whether a clear of a whole run picks an instance in `state`: every one, or with
/// `only_failed` those that failed or could not run because of a failure (Airflow's
/// `only_failed`: failed and upstream_failed).
pub fn run_clear_picks(state: TaskState, only_failed: bool) -> bool {
    !only_failed || matches!(state, TaskState::Failed | TaskState::UpstreamFailed)
}

/// What marking an instance in `state` as `to` writes, or None when that mark is not allowed
/// (only success or failed, and not the state it has).
pub fn mark(state: TaskState, to: TaskState) -> Option<UserWrite> {
    if !can_mark(state, to) {
        return None;
    }
    Some(if needs_stop(state) {
        UserWrite::Stop(StopRequest::Mark(to))
    } else {
        UserWrite::Mark(to)
    })
}

/// Whether a run in `from` may be marked `to` by hand: success or failed, not the state it has
/// (a queued run too: marking it decides it without running it, as Airflow does).
pub fn can_mark_run(from: DagRunState, to: DagRunState) -> bool {
    matches!(to, DagRunState::Success | DagRunState::Failed) && from != to
}

/// What marking a whole run `to` writes on one of its instances, in `state` (Airflow's
/// "mark run as success / failed"). Success: every instance that is not a success or skipped
/// becomes a success (a running try is stopped first). Failed: a running try is stopped and
/// recorded failed, an instance that has not run yet is skipped, a finished one keeps its
/// state. The run itself takes `to` at once (`Store::mark_run`).
pub fn run_mark(state: TaskState, to: DagRunState) -> Option<UserWrite> {
    match to {
        DagRunState::Success if !matches!(state, TaskState::Success | TaskState::Skipped) => {
            mark(state, TaskState::Success)
        }
        DagRunState::Failed if needs_stop(state) => mark(state, TaskState::Failed),
        DagRunState::Failed if !state.is_finished() => Some(UserWrite::Mark(TaskState::Skipped)),
        _ => None,
    }
}

/// The instances a clear of `task_id` touches: that task's instances (one map index, or all
/// when `map_index` is None) and, when asked, every instance of the tasks downstream of it.
#[derive(Debug, Clone, Copy)]
pub struct ClearScope<'a> {
    /// The task the user cleared.
    pub task_id: &'a str,
    /// Its one map index, or None for every one.
    pub map_index: Option<i64>,
    /// The tasks downstream of it to clear too (empty unless asked).
    pub downstream: &'a [String],
}

impl ClearScope<'_> {
    /// Whether the instance (`task_id`, `map_index`) is one the user picked.
    pub fn targets(&self, task_id: &str, map_index: i64) -> bool {
        task_id == self.task_id && self.map_index.is_none_or(|m| m == map_index)
    }

    /// Whether the clear touches the instance: a target, or any instance downstream.
    pub fn touches(&self, task_id: &str, map_index: i64) -> bool {
        self.targets(task_id, map_index) || self.downstream.iter().any(|d| d == task_id)
    }
}

/// The state a run in `state` takes when a clear or mark changed one of its instances: a
/// finished run goes back to running, so that the scheduler decides its state again; None
/// leaves it as it is.
pub fn reopened(state: DagRunState) -> Option<DagRunState> {
    state.is_finished().then_some(DagRunState::Running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    #[test]
    fn a_run_clear_of_failed_only_picks_failed_and_upstream_failed() {
        for state in [Failed, UpstreamFailed] {
            assert!(run_clear_picks(state, true), "{state}");
        }
        for state in [Success, Skipped, None, Running, Removed, UpForRetry] {
            assert!(!run_clear_picks(state, true), "{state}");
            assert!(run_clear_picks(state, false), "{state}: a full clear picks everything");
        }
    }

    #[test]
    fn a_clear_runs_again_stops_a_running_try_first_and_leaves_a_queued_one() {
        // (state, tries so far, retries, what it writes)
        let cases = [
            (Failed, 1, 0, Some(UserWrite::Clear { max_tries: 2 })),
            (Success, 2, 1, Some(UserWrite::Clear { max_tries: 4 })),
            (UpstreamFailed, 0, 2, Some(UserWrite::Clear { max_tries: 3 })),
            (None, 0, 0, Some(UserWrite::Clear { max_tries: 1 })),
            (UpForRetry, 1, 3, Some(UserWrite::Clear { max_tries: 5 })),
            (Running, 1, 0, Some(UserWrite::Stop(StopRequest::Clear { max_tries: 2 }))),
            (Queued, 1, 0, Option::None),
        ];
        for (state, tries, retries, want) in cases {
            assert_eq!(clear(state, tries, retries), want, "{state} after {tries} tries");
        }
    }

    #[test]
    fn a_mark_sets_success_or_failed_and_stops_a_running_try_first() {
        let cases = [
            (Failed, Success, Some(UserWrite::Mark(Success))),
            (Success, Failed, Some(UserWrite::Mark(Failed))),
            (None, Success, Some(UserWrite::Mark(Success))),
            (Running, Failed, Some(UserWrite::Stop(StopRequest::Mark(Failed)))),
            (Running, Success, Some(UserWrite::Stop(StopRequest::Mark(Success)))),
            (Success, Success, Option::None),
            (Failed, Skipped, Option::None),
            (None, UpForRetry, Option::None),
        ];
        for (from, to, want) in cases {
            assert_eq!(mark(from, to), want, "{from} -> {to}");
        }
    }

    #[test]
    fn a_clear_touches_its_targets_and_what_lies_downstream() {
        let downstream = ["b".to_string(), "c".to_string()];
        let all = ClearScope { task_id: "a", map_index: Option::None, downstream: &[] };
        let one = ClearScope { task_id: "a", map_index: Some(2), downstream: &[] };
        let down = ClearScope { task_id: "a", map_index: Some(2), downstream: &downstream };
        // (scope, task, map index, touched)
        let cases = [
            (all, "a", -1, true),
            (all, "a", 5, true),
            (all, "b", -1, false),
            (one, "a", 2, true),
            (one, "a", 3, false),
            (down, "a", 3, false),
            (down, "b", 7, true),
            (down, "c", -1, true),
            (down, "d", -1, false),
        ];
        for (scope, task, map_index, want) in cases {
            assert_eq!(scope.touches(task, map_index), want, "{task}[{map_index}] in {scope:?}");
        }
    }

    #[test]
    fn marking_a_run_decides_every_unfinished_instance() {
        use DagRunState as R;
        let stop = |to| Some(UserWrite::Stop(StopRequest::Mark(to)));
        // (instance state, the run's mark, what the instance gets)
        let cases = [
            (Failed, R::Success, Some(UserWrite::Mark(Success))),
            (UpstreamFailed, R::Success, Some(UserWrite::Mark(Success))),
            (None, R::Success, Some(UserWrite::Mark(Success))),
            (Queued, R::Success, Some(UserWrite::Mark(Success))),
            (Running, R::Success, stop(Success)),
            (Success, R::Success, Option::None),
            (Skipped, R::Success, Option::None),
            (Running, R::Failed, stop(Failed)),
            (None, R::Failed, Some(UserWrite::Mark(Skipped))),
            (Scheduled, R::Failed, Some(UserWrite::Mark(Skipped))),
            (UpForRetry, R::Failed, Some(UserWrite::Mark(Skipped))),
            (Success, R::Failed, Option::None),
            (Failed, R::Failed, Option::None),
            (Skipped, R::Failed, Option::None),
            (Failed, R::Running, Option::None),
        ];
        for (state, to, want) in cases {
            assert_eq!(run_mark(state, to), want, "{state} in a run marked {to}");
        }
        assert!(can_mark_run(R::Running, R::Failed) && can_mark_run(R::Failed, R::Success));
        assert!(can_mark_run(R::Queued, R::Success));
        assert!(!can_mark_run(R::Success, R::Success) && !can_mark_run(R::Failed, R::Running));
    }

    #[test]
    fn only_a_finished_run_is_reopened() {
        use DagRunState as R;
        let cases = [
            (R::Success, Some(R::Running)),
            (R::Failed, Some(R::Running)),
            (R::Running, Option::None),
            (R::Queued, Option::None),
        ];
        for (state, want) in cases {
            assert_eq!(reopened(state), want, "{state}");
        }
    }
}
