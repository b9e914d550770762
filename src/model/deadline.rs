//! Deadline alerts: when each of a new run's deadlines falls, and whether a run met one.
//!
//! A deadline counting from the logical date or the queueing is fixed when the run is created;
//! one counting from the run's start gets its time when the run starts (the store fills it in
//! `start_run`). The scheduler looks at a deadline only once its time has come: the run met it
//! if it had finished by then, else it missed it and its notifiers are told, once.
//!
//! Invariant: pure.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::dag::Dag;
use crate::dag::deadline::DeadlineRef;
use crate::model::RunType;

/// One deadline of a run, as the store records it when the run is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadline {
    /// Its place in the DAG's `deadline:` list (unique per run).
    pub ordinal: i64,
    /// What it counts from.
    pub reference: DeadlineRef,
    /// How long after the reference.
    pub interval: Duration,
    /// The notifier connections.
    pub notify: Vec<String>,
    /// When it falls; None until the run starts, for `run_start`.
    pub deadline_at: Option<DateTime<Utc>>,
}

/// The deadlines of a new run of `dag`, created at `now`. A backfill has none: its logical
/// dates are past by design, and it is watched on the backfill's own page.
pub fn for_new_run(
    dag: &Dag,
    run_type: RunType,
    logical_date: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<NewDeadline> {
    if run_type == RunType::Backfill {
        return Vec::new();
    }
    dag.deadlines
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let after = |t: DateTime<Utc>| {
                t + chrono::Duration::from_std(d.interval).unwrap_or(chrono::TimeDelta::MAX)
            };
            let deadline_at = match d.reference {
                DeadlineRef::LogicalDate => Some(after(logical_date)),
                DeadlineRef::Queued => Some(after(now)),
                DeadlineRef::RunStart => None,
            };
            NewDeadline {
                ordinal: i64::try_from(i).unwrap_or(i64::MAX),
                reference: d.reference,
                interval: d.interval,
                notify: d.notify.clone(),
                deadline_at,
            }
        })
        .collect()
}

/// What became of a deadline whose time came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The run had finished by then.
    Met,
    /// It had not: its notifiers are told.
    Missed,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::Missed => "missed",
        }
    }
}

/// Whether a run that ended at `run_end` (None: not yet) met a deadline at `deadline_at`.
pub fn outcome(deadline_at: DateTime<Utc>, run_end: Option<DateTime<Utc>>) -> Outcome {
    match run_end {
        Some(end) if end <= deadline_at => Outcome::Met,
        _ => Outcome::Missed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::parse_dag_str;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[test]
    fn each_reference_fixes_its_time_and_backfills_have_none() {
        let dag = parse_dag_str(
            "deadline:\n  - {reference: logical_date, interval: 2h, notify: [a]}\n  - {reference: queued, interval: 30m, notify: [a, b]}\n  - {reference: run_start, interval: 1h, notify: [c]}\ntasks:\n  t: {type: empty}\n",
            "d.yaml".as_ref(),
        )
        .expect("valid");
        let logical = at("2026-01-01T00:00:00Z");
        let now = at("2026-01-02T10:00:00Z");
        let got = for_new_run(&dag, RunType::Scheduled, logical, now);
        let times: Vec<_> = got.iter().map(|d| (d.ordinal, d.deadline_at)).collect();
        assert_eq!(
            times,
            vec![
                (0, Some(at("2026-01-01T02:00:00Z"))),
                (1, Some(at("2026-01-02T10:30:00Z"))),
                (2, None),
            ]
        );
        assert_eq!(got[1].notify, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(for_new_run(&dag, RunType::Manual, logical, now).len(), 3);
        assert_eq!(for_new_run(&dag, RunType::AssetTriggered, logical, now).len(), 3);
        assert!(for_new_run(&dag, RunType::Backfill, logical, now).is_empty());
    }

    #[test]
    fn a_run_meets_a_deadline_only_by_finishing_by_then() {
        let due = at("2026-01-01T02:00:00Z");
        let cases = [
            (None, Outcome::Missed),
            (Some("2026-01-01T01:59:59Z"), Outcome::Met),
            (Some("2026-01-01T02:00:00Z"), Outcome::Met),
            (Some("2026-01-01T02:00:01Z"), Outcome::Missed),
        ];
        for (end, want) in cases {
            assert_eq!(outcome(due, end.map(at)), want, "{end:?}");
        }
    }
}
