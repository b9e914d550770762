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

/// Decides the fate of try `try_number` (1-based) that just failed. `retryable` is false for
/// errors a retry cannot fix (a bad template, a missing connection).
pub fn on_failure(
    task: &Task,
    try_number: u32,
    retryable: bool,
    now: DateTime<Utc>,
) -> FailureOutcome {
    if !retryable || try_number > task.retries {
        return FailureOutcome::Fail;
    }
    let delay = retry_delay(task, try_number + 1);
    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
    FailureOutcome::Retry(now.checked_add_signed(delay).unwrap_or(DateTime::<Utc>::MAX_UTC))
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
            on_failure(&t, 1, true, now),
            FailureOutcome::Retry(now + chrono::Duration::seconds(30))
        );
        assert_eq!(
            on_failure(&t, 2, true, now),
            FailureOutcome::Retry(now + chrono::Duration::seconds(30))
        );
        assert_eq!(on_failure(&t, 3, true, now), FailureOutcome::Fail);
        assert_eq!(on_failure(&t, 1, false, now), FailureOutcome::Fail);
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
}
