//! How a try ends: the state an operator's result leads to — success, a sensor's next poke,
//! its soft-fail or timeout, a skip, a retry or a failure — with the line the try's log gets.
//!
//! Pure: the worker passes in the result, the instance's counters and `now`, logs the line and
//! persists what [`try_end`] returns; it decides nothing itself.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{FailureOutcome, TaskState, on_failure};
use crate::dag::Task;

/// What the operator answered, reduced to what the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryResult<'a> {
    /// It finished its work.
    Done,
    /// A sensor's condition is not met yet, for this reason.
    NotYet(&'a str),
    /// It asked to be skipped, for this reason.
    Skip(&'a str),
    /// It failed with this error; `retryable` is false when a retry cannot help.
    Failed { error: &'a str, retryable: bool },
    /// It was cancelled because the process running it shut down before it ended: handed
    /// back, to run again at once without using up one of its tries.
    HandedBack,
}

/// The instance facts a try's end depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryFacts {
    /// The try that ended (1-based).
    pub try_number: i64,
    /// Tries allowed in all (1 + retries, raised by each clear).
    pub max_tries: i64,
    /// A sensor's first poke of this try, kept across reschedules; None on the first poke.
    pub first_poke_at: Option<DateTime<Utc>>,
    /// When this poke (or try) started.
    pub started: DateTime<Utc>,
}

/// What to record for the try, and what its log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryEnd {
    /// The state the instance moves to.
    pub state: TaskState,
    /// For up_for_retry and up_for_reschedule: when it is due again.
    pub next_try_at: Option<DateTime<Utc>>,
    /// For up_for_reschedule: the first poke, so the sensor's timeout counts from it.
    pub first_poke_at: Option<DateTime<Utc>>,
    /// The error recorded with the try (failures and skips).
    pub error: Option<String>,
    /// The last line of the try's log.
    pub log_line: String,
    /// The try does not count against the task's tries: `max_tries` is raised by one.
    pub give_back_try: bool,
}

/// Decides the end of a try of `task` from its result.
pub fn try_end(task: &Task, facts: TryFacts, result: TryResult<'_>, now: DateTime<Utc>) -> TryEnd {
    let end = |state, log_line: String| TryEnd {
        state,
        next_try_at: None,
        first_poke_at: None,
        error: None,
        log_line,
        give_back_try: false,
    };
    match result {
        TryResult::HandedBack => {
            let why = "handed back: the process running it shut down before it ended";
            TryEnd {
                next_try_at: Some(now),
                error: Some(why.to_string()),
                give_back_try: true,
                ..end(
                    TaskState::UpForRetry,
                    format!("Task {why}; it runs again, this try not counted"),
                )
            }
        }
        TryResult::Done => end(TaskState::Success, "Task succeeded".into()),
        TryResult::NotYet(reason) => {
            let first = facts.first_poke_at.unwrap_or(facts.started);
            let waited = (now - first).to_std().unwrap_or(Duration::ZERO);
            match task.kind.sensor() {
                Some(s) if waited < s.timeout => {
                    let next =
                        now + chrono::Duration::from_std(s.poke_interval).unwrap_or_default();
                    TryEnd {
                        next_try_at: Some(next),
                        first_poke_at: Some(first),
                        ..end(
                            TaskState::UpForReschedule,
                            format!("Not yet: {reason}; poking again at {}", next.to_rfc3339()),
                        )
                    }
                }
                Some(s) if s.soft_fail => end(
                    TaskState::Skipped,
                    format!("Sensor timed out ({reason}); soft_fail: skipping"),
                ),
                _ => {
                    let msg = format!(
                        "sensor timed out after {}: {reason}",
                        humantime::format_duration(waited)
                    );
                    TryEnd { error: Some(msg.clone()), ..end(TaskState::Failed, msg) }
                }
            }
        }
        TryResult::Skip(reason) => TryEnd {
            error: Some(reason.to_string()),
            ..end(TaskState::Skipped, format!("Skipped: {reason}"))
        },
        TryResult::Failed { error, retryable } => {
            let try_number = u32::try_from(facts.try_number).unwrap_or(u32::MAX);
            let outcome = on_failure(task, try_number, facts.max_tries, retryable, now);
            let (next_try_at, log_line) = match outcome {
                FailureOutcome::Retry(at) => {
                    (Some(at), format!("Task failed: {error}; retry at {}", at.to_rfc3339()))
                }
                FailureOutcome::Fail => (None, format!("Task failed: {error}")),
            };
            TryEnd { next_try_at, error: Some(error.to_string()), ..end(outcome.state(), log_line) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::parse_dag_str;

    fn task(body: &str) -> Task {
        let src = format!("dag_id: d\ntasks:\n  t:\n{body}");
        let dag = parse_dag_str(&src, "d.yaml".as_ref()).expect("valid");
        dag.tasks["t"].clone()
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn facts(try_number: i64, max_tries: i64, first_poke: Option<i64>) -> TryFacts {
        TryFacts { try_number, max_tries, first_poke_at: first_poke.map(at), started: at(0) }
    }

    const SENSOR: &str =
        "    type: file_sensor\n    path: /x\n    poke_interval: 10s\n    timeout: 60s\n";

    #[test]
    fn each_result_leads_to_its_state() {
        let bash =
            task("    type: bash\n    command: 'true'\n    retries: 1\n    retry_delay: 5s\n");
        let sensor = task(SENSOR);
        let soft = task(&format!("{SENSOR}    soft_fail: true\n"));
        let failed = |retryable| TryResult::Failed { error: "boom", retryable };
        type Row<'a> = (&'a Task, TryFacts, TryResult<'a>, i64, TaskState, Option<i64>);
        let rows: Vec<Row> = vec![
            (&bash, facts(1, 2, None), TryResult::Done, 1, TaskState::Success, None),
            (&bash, facts(1, 2, None), failed(true), 1, TaskState::UpForRetry, Some(6)),
            (&bash, facts(1, 2, None), failed(false), 1, TaskState::Failed, None),
            (&bash, facts(2, 2, None), failed(true), 1, TaskState::Failed, None),
            (&bash, facts(1, 2, None), TryResult::Skip("no data"), 1, TaskState::Skipped, None),
            // Handed back at shutdown: again at once, even on the last try.
            (&bash, facts(2, 2, None), TryResult::HandedBack, 1, TaskState::UpForRetry, Some(1)),
            // A sensor within its timeout pokes again one interval later.
            (
                &sensor,
                facts(1, 1, None),
                TryResult::NotYet("no file"),
                1,
                TaskState::UpForReschedule,
                Some(11),
            ),
            (
                &sensor,
                facts(1, 1, Some(0)),
                TryResult::NotYet("no file"),
                59,
                TaskState::UpForReschedule,
                Some(69),
            ),
            // Past its timeout, counted from the first poke: failed, or skipped with soft_fail.
            (
                &sensor,
                facts(1, 1, Some(0)),
                TryResult::NotYet("no file"),
                60,
                TaskState::Failed,
                None,
            ),
            (
                &soft,
                facts(1, 1, Some(0)),
                TryResult::NotYet("no file"),
                60,
                TaskState::Skipped,
                None,
            ),
        ];
        for (i, (task, facts, result, now, state, next)) in rows.into_iter().enumerate() {
            let end = try_end(task, facts, result, at(now));
            assert_eq!(end.state, state, "row {i}: {end:?}");
            assert_eq!(end.next_try_at, next.map(at), "row {i}: {end:?}");
        }
    }

    #[test]
    fn only_a_handed_back_try_is_given_back() {
        let bash = task("    type: bash\n    command: 'true'\n");
        let back = try_end(&bash, facts(1, 1, None), TryResult::HandedBack, at(3));
        assert!(back.give_back_try, "{back:?}");
        let failed = TryResult::Failed { error: "boom", retryable: true };
        for result in [TryResult::Done, failed, TryResult::Skip("x")] {
            assert!(!try_end(&bash, facts(1, 1, None), result, at(3)).give_back_try, "{result:?}");
        }
    }

    #[test]
    fn a_reschedule_keeps_the_first_poke_and_failures_keep_their_error() {
        let sensor = task(SENSOR);
        let first = try_end(&sensor, facts(1, 1, None), TryResult::NotYet("no file"), at(1));
        assert_eq!(first.first_poke_at, Some(at(0)), "the first poke is this try's start");
        let later = try_end(&sensor, facts(1, 1, Some(0)), TryResult::NotYet("no file"), at(30));
        assert_eq!(later.first_poke_at, Some(at(0)), "kept across pokes");
        let out = try_end(&sensor, facts(1, 1, Some(0)), TryResult::NotYet("no file"), at(61));
        assert_eq!(out.error.as_deref(), Some("sensor timed out after 1m 1s: no file"));
        let bash = task("    type: bash\n    command: 'true'\n");
        let failed = TryResult::Failed { error: "exit 3", retryable: true };
        let end = try_end(&bash, facts(1, 1, None), failed, at(1));
        assert_eq!(
            (end.error.as_deref(), end.log_line.as_str()),
            (Some("exit 3"), "Task failed: exit 3")
        );
    }
}
