//! Notifications: which state changes notify whom, and when a failed delivery is tried again.
//!
//! Invariant: pure. The store writes a notification in the transaction of the state change that
//! causes it (the outbox); the scheduler's sender delivers it and records what this file
//! decides after each attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::dag::{Dag, Task};
use crate::model::{DagRunState, TaskState};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    /// A try failed and will not be retried (`on_failure`).
    TaskFailure,
    /// A try failed and will be retried (`on_retry`).
    TaskRetry,
    /// A try succeeded (`on_success`).
    TaskSuccess,
    /// A run failed (`on_run_failure`).
    RunFailure,
    /// A run succeeded (`on_run_success`).
    RunSuccess,
    /// A run had not finished by one of its deadlines (`deadline: {notify: ...}`).
    DeadlineMissed,
}

impl NotifyEvent {
    /// Every event with its stored spelling.
    pub const ALL: [(&'static str, NotifyEvent); 6] = [
        ("task_failure", NotifyEvent::TaskFailure),
        ("task_retry", NotifyEvent::TaskRetry),
        ("task_success", NotifyEvent::TaskSuccess),
        ("run_failure", NotifyEvent::RunFailure),
        ("run_success", NotifyEvent::RunSuccess),
        ("deadline_missed", NotifyEvent::DeadlineMissed),
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, e)| *e == self).map_or("task_failure", |(s, _)| s)
    }
}

/// The event a try's end causes, and the connections it notifies (none when the task has no
/// notifier for it). Sensors between pokes and handed-back tries notify nobody.
pub fn for_try_end(task: &Task, state: TaskState) -> Option<(NotifyEvent, &[String])> {
    let (event, to) = match state {
        TaskState::Failed => (NotifyEvent::TaskFailure, &task.notify.on_failure),
        TaskState::UpForRetry => (NotifyEvent::TaskRetry, &task.notify.on_retry),
        TaskState::Success => (NotifyEvent::TaskSuccess, &task.notify.on_success),
        _ => return None,
    };
    (!to.is_empty()).then_some((event, to.as_slice()))
}

/// The event a run's end causes, and the connections it notifies.
pub fn for_run_end(dag: &Dag, state: DagRunState) -> Option<(NotifyEvent, &[String])> {
    let (event, to) = match state {
        DagRunState::Failed => (NotifyEvent::RunFailure, &dag.on_run_failure),
        DagRunState::Success => (NotifyEvent::RunSuccess, &dag.on_run_success),
        _ => return None,
    };
    (!to.is_empty()).then_some((event, to.as_slice()))
}

/// After a delivery failed: when to try again (`base` doubled per attempt, at most an hour),
/// or None when `attempts` reached `max_attempts` and the notification is failed for good.
pub fn retry_at(
    attempts: i64,
    max_attempts: i64,
    base: Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if attempts >= max_attempts {
        return None;
    }
    let factor =
        2u32.saturating_pow(u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20));
    let wait = base.saturating_mul(factor).min(Duration::from_secs(3600));
    Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::parse_dag_str;

    #[test]
    fn each_end_notifies_its_own_list() {
        let dag = parse_dag_str(
            "dag_id: d\non_run_failure: [pager]\ndefault_args: {on_failure: [ops], on_retry: [ops]}\n\
             tasks:\n  t: {type: empty, on_success: [chat]}\n  quiet: {type: empty, on_failure: []}\n",
            "d.yaml".as_ref(),
        )
        .expect("valid");
        let t = &dag.tasks["t"];
        let names =
            |x: Option<(NotifyEvent, &[String])>| x.map(|(e, to)| (e.as_str(), to.to_vec()));
        assert_eq!(
            names(for_try_end(t, TaskState::Failed)),
            Some(("task_failure", vec!["ops".into()]))
        );
        assert_eq!(
            names(for_try_end(t, TaskState::UpForRetry)),
            Some(("task_retry", vec!["ops".into()]))
        );
        assert_eq!(
            names(for_try_end(t, TaskState::Success)),
            Some(("task_success", vec!["chat".into()]))
        );
        assert_eq!(names(for_try_end(t, TaskState::UpForReschedule)), None);
        assert_eq!(
            names(for_try_end(&dag.tasks["quiet"], TaskState::Failed)),
            None,
            "an empty list overrides"
        );
        assert_eq!(
            names(for_run_end(&dag, DagRunState::Failed)),
            Some(("run_failure", vec!["pager".into()]))
        );
        assert_eq!(names(for_run_end(&dag, DagRunState::Success)), None);
    }

    #[test]
    fn deliveries_back_off_then_give_up() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let base = Duration::from_secs(10);
        let secs = |a| retry_at(a, 5, base, now).map(|t| (t - now).num_seconds());
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [Some(10), Some(20), Some(40), Some(80)]);
        assert_eq!(secs(5), None);
        assert_eq!(retry_at(30, 99, base, now).map(|t| (t - now).num_seconds()), Some(3600));
    }
}
