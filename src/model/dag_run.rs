//! When DAG runs are created and started: the scheduler-side run decisions.
//!
//! [`due_runs`] says which scheduled runs a DAG needs at `now` (one per interval that has
//! ended, oldest first, within `max_active_runs`) and which interval comes next;
//! [`may_start_run`] whether a queued run may start. Invariant: pure (`now` is an argument),
//! so a test clock drives every decision; the interval maths itself is `dag::schedule`'s.

use chrono::{DateTime, Utc};

use crate::dag::Dag;
use crate::dag::schedule::DataInterval;

/// The scheduled runs a DAG needs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRuns {
    /// Intervals to create a run for, oldest first.
    pub create: Vec<DataInterval>,
    /// The next interval after those (due or not; None when the schedule has ended): what the
    /// UI shows as the next run.
    pub next: Option<DataInterval>,
}

/// The runs `dag` needs at `now`, given the interval of its newest scheduled run (`last`) and
/// how many of its runs are active (queued or running). A run is due once its interval has
/// ended; catch-up and `end_date` follow `Schedule::next_interval`. Never more than
/// `max_active_runs - active` runs, so the loop is bounded by the DAG's own cap.
pub fn due_runs(dag: &Dag, last: Option<DataInterval>, active: i64, now: DateTime<Utc>) -> DueRuns {
    let room = (i64::from(dag.max_active_runs) - active).max(0);
    let mut create = Vec::new();
    let mut last = last;
    loop {
        let next = dag.schedule.next_interval(last, dag.start_date, dag.end_date, dag.catchup, now);
        match next {
            Some(interval) if interval.end <= now && (create.len() as i64) < room => {
                create.push(interval);
                last = Some(interval);
            }
            _ => return DueRuns { create, next },
        }
    }
}

/// Whether a queued run may start while `running` runs of its DAG are running.
pub fn may_start_run(dag: &Dag, running: i64) -> bool {
    running < i64::from(dag.max_active_runs)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::dag::parse_dag_str;

    fn dag(fields: &str) -> Dag {
        let src = format!("dag_id: d\n{fields}\ntasks:\n  t: {{ type: empty }}\n");
        parse_dag_str(&src, "d.yaml".as_ref()).expect("valid")
    }

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).single().expect("valid date")
    }

    fn days(d: &DueRuns) -> Vec<u32> {
        use chrono::Datelike;
        d.create.iter().map(|i| i.start.day()).collect()
    }

    #[test]
    fn due_runs_by_catchup_cap_and_clock() {
        let catchup =
            "schedule: '@daily'\nstart_date: 2026-01-01\ncatchup: true\nmax_active_runs: 16";
        let latest = "schedule: '@daily'\nstart_date: 2026-01-01\ncatchup: false";
        let capped =
            "schedule: '@daily'\nstart_date: 2026-01-01\ncatchup: true\nmax_active_runs: 2";
        let ended =
            "schedule: '@daily'\nstart_date: 2026-01-01\nend_date: 2026-01-02\ncatchup: true";
        let just_before = day(4) - Duration::microseconds(1);
        let last_jan1 = Some(DataInterval { start: day(1), end: day(2) });
        // (fields, last run, active runs, now, days created, next interval's start day)
        type Case<'a> = (&'a str, Option<DataInterval>, i64, DateTime<Utc>, &'a [u32], Option<u32>);
        let cases: &[Case] = &[
            (catchup, None, 0, day(4), &[1, 2, 3], Some(4)),
            (catchup, None, 0, just_before, &[1, 2], Some(3)),
            (catchup, last_jan1, 0, day(4), &[2, 3], Some(4)),
            (catchup, None, 0, day(1), &[], Some(1)),
            (latest, None, 0, day(4), &[3], Some(4)),
            (latest, last_jan1, 0, day(4), &[3], Some(4)),
            (capped, None, 0, day(4), &[1, 2], Some(3)),
            (capped, None, 1, day(4), &[1], Some(2)),
            (capped, None, 2, day(4), &[], Some(1)),
            (capped, None, 5, day(4), &[], Some(1)),
            (ended, None, 0, day(9), &[1, 2], None),
            ("schedule: null", None, 0, day(4), &[], None),
        ];
        for (fields, last, active, now, want, next) in cases {
            let got = due_runs(&dag(fields), *last, *active, *now);
            let next_day = got.next.map(|i| {
                use chrono::Datelike;
                i.start.day()
            });
            assert_eq!((days(&got).as_slice(), next_day), (*want, *next), "{fields} at {now}");
        }
    }

    #[test]
    fn a_queued_run_starts_only_below_max_active_runs() {
        let d = dag("max_active_runs: 2");
        assert!(may_start_run(&d, 0) && may_start_run(&d, 1));
        assert!(!may_start_run(&d, 2) && !may_start_run(&d, 3));
    }
}
