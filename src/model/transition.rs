//! Transition rules: retries and back-off, sensor reschedules, run-state aggregation.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::dag::Task;

use super::{DagRunState, TaskState};

/// Cap of an exponential back-off when the task sets no `max_retry_delay` (Airflow's: 24 h).
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// What happens to a try that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// `up_for_retry`, eligible again at this time.
    Retry(DateTime<Utc>),
    /// `failed`: no tries left, or the error is not worth retrying.
    Fail,
}

impl FailureOutcome {
    /// The state this outcome is stored as.
    pub fn state(self) -> TaskState {
        match self {
            FailureOutcome::Retry(_) => TaskState::UpForRetry,
            FailureOutcome::Fail => TaskState::Failed,
        }
    }
}

/// Delay before try `next_try` (2 = the first retry), by the task's back-off settings.
pub fn retry_delay(task: &Task, next_try: u32) -> Duration {
    if !task.retry_exponential_backoff {
        return task.retry_delay;
    }
    let cap = task.max_retry_delay.unwrap_or(MAX_BACKOFF);
    let exponent = next_try.saturating_sub(2).min(32);
    let factor = 2u32.saturating_pow(exponent);
    task.retry_delay.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// Decides the fate of try `try_number` (1-based) that just failed, for an instance allowed
/// `max_tries` tries in all (1 + retries, raised by each clear). `retryable` is false for
/// errors a retry cannot fix (a bad template, a missing connection).
pub fn on_failure(
    task: &Task,
    try_number: u32,
    max_tries: i64,
    retryable: bool,
    now: DateTime<Utc>,
) -> FailureOutcome {
    if !retryable || i64::from(try_number) >= max_tries {
        return FailureOutcome::Fail;
    }
    // The back-off restarts after a clear: count tries since the first of this series.
    let first = (max_tries - i64::from(task.retries)).max(1);
    let nth = (i64::from(try_number) - first + 1).clamp(1, i64::from(u32::MAX - 1)) as u32;
    let delay = retry_delay(task, nth + 1);
    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
    FailureOutcome::Retry(now.checked_add_signed(delay).unwrap_or(DateTime::<Utc>::MAX_UTC))
}

/// `max_tries` of an instance being cleared after `try_number` tries: it gets a fresh try plus
/// its task's retries (Airflow's rule).
pub fn cleared_max_tries(try_number: i64, retries: u32) -> i64 {
    try_number + 1 + i64::from(retries)
}

/// Whether a user may mark an instance in `from` as `to` by hand: only to success or failed,
/// and not to the state it is already in.
pub fn can_mark(from: TaskState, to: TaskState) -> bool {
    matches!(to, TaskState::Success | TaskState::Failed) && from != to
}

/// Whether an instance in `state` can be cleared: not while queued (a worker is about to take
/// it). A running one can: its try is stopped first (`stop::needs_stop`), so the new try never
/// races it.
pub fn can_clear(state: TaskState) -> bool {
    state != TaskState::Queued
}

/// Whether try `n` of an instance can write no more to its log: an older try, or the current
/// one once it is neither running nor a sensor between pokes (a rescheduled sensor keeps its
/// try, and its log, across pokes). `current_try` and `state` are the instance's; `poking` says
/// a sensor's try has begun poking.
pub fn try_is_over(state: TaskState, current_try: i64, poking: bool, n: i64) -> bool {
    if n < current_try {
        return true;
    }
    let between_pokes = poking
        && matches!(state, TaskState::UpForReschedule | TaskState::Scheduled | TaskState::Queued);
    !(state == TaskState::Running || between_pokes)
}

/// A run's state from its task instances' states: `leaves` are the instances of tasks with no
/// downstream task. Airflow's rule: unfinished while any instance is unfinished; then failed if a
/// leaf failed or was upstream_failed, else success.
pub fn run_state(all: &[TaskState], leaves: &[TaskState]) -> DagRunState {
    if all.iter().any(|s| !s.is_finished()) {
        return DagRunState::Running;
    }
    let leaf_failed =
        leaves.iter().any(|s| matches!(s, TaskState::Failed | TaskState::UpstreamFailed));
    if leaf_failed { DagRunState::Failed } else { DagRunState::Success }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::parse_dag_str;

    fn task(extra: &str) -> Task {
        let src = format!("dag_id: d\ntasks:\n  t:\n    type: empty\n{extra}");
        let dag = parse_dag_str(&src, "d.yaml".as_ref()).expect("valid");
        dag.tasks["t"].clone()
    }

    #[test]
    fn fixed_delay_retries_until_tries_run_out() {
        let t = task("    retries: 2\n    retry_delay: 30s\n");
        let now = Utc::now();
        assert_eq!(
            on_failure(&t, 1, 3, true, now),
            FailureOutcome::Retry(now + chrono::Duration::seconds(30))
        );
        assert_eq!(
            on_failure(&t, 2, 3, true, now),
            FailureOutcome::Retry(now + chrono::Duration::seconds(30))
        );
        assert_eq!(on_failure(&t, 3, 3, true, now), FailureOutcome::Fail);
        assert_eq!(on_failure(&t, 1, 3, false, now), FailureOutcome::Fail);
    }

    #[test]
    fn exponential_backoff_doubles_and_is_capped() {
        let t = task(
            "    retries: 10\n    retry_delay: 10s\n    retry_exponential_backoff: true\n    max_retry_delay: 1m\n",
        );
        let secs: Vec<u64> = (2..7).map(|n| retry_delay(&t, n).as_secs()).collect();
        assert_eq!(secs, vec![10, 20, 40, 60, 60]);
    }

    #[test]
    fn run_state_follows_leaves() {
        use TaskState::*;
        assert_eq!(run_state(&[Success, Running], &[Running]), DagRunState::Running);
        assert_eq!(run_state(&[Failed, Success], &[Success]), DagRunState::Success);
        assert_eq!(run_state(&[Success, UpstreamFailed], &[UpstreamFailed]), DagRunState::Failed);
        assert_eq!(run_state(&[Success, Skipped], &[Skipped]), DagRunState::Success);
        assert_eq!(run_state(&[UpForRetry], &[UpForRetry]), DagRunState::Running);
    }

    #[test]
    fn a_cleared_instance_gets_a_fresh_try_and_its_retries_again() {
        let t = task("    retries: 1\n    retry_delay: 10s\n    retry_exponential_backoff: true\n");
        let now = Utc::now();
        // Two tries used up (1 + 1 retry), then cleared.
        let max = cleared_max_tries(2, t.retries);
        assert_eq!(max, 4);
        // Try 3 is the first of the new series: it may retry, after the first back-off step.
        assert_eq!(
            on_failure(&t, 3, max, true, now),
            FailureOutcome::Retry(now + chrono::Duration::seconds(10))
        );
        assert_eq!(on_failure(&t, 4, max, true, now), FailureOutcome::Fail);
    }

    #[test]
    fn marking_and_clearing_rules() {
        use TaskState::*;
        let cases = [
            (Failed, Success, true),
            (Running, Failed, true),
            (Success, Success, false),
            (Success, Skipped, false),
            (None, UpForRetry, false),
        ];
        for (from, to, ok) in cases {
            assert_eq!(can_mark(from, to), ok, "{from} -> {to}");
        }
        assert!(can_clear(Failed) && can_clear(Success) && can_clear(UpstreamFailed));
        assert!(can_clear(Running), "stopped first, then cleared");
        assert!(!can_clear(Queued));
    }

    #[test]
    fn a_try_is_over_once_it_stops_running_unless_a_sensor_waits_to_poke_again() {
        use TaskState::*;
        assert!(try_is_over(Running, 2, false, 1), "an older try");
        assert!(!try_is_over(Running, 2, false, 2));
        assert!(try_is_over(Success, 2, false, 2));
        assert!(!try_is_over(UpForReschedule, 1, true, 1));
        assert!(try_is_over(UpForRetry, 1, false, 1));
    }
}
