//! Table tests of every scheduler-side decision: each pending state x task present, mapped or
//! gone x upstream mix x time relative to `next_try_at`. Trigger-rule semantics themselves are
//! tabled in `trigger.rs`; here they are exercised only through the scheduler's decision.

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::dag::parse_dag_str;
use TaskState::*;

fn tasks() -> crate::dag::Dag {
    let src = "dag_id: d\ntasks:\n  up: { type: empty }\n  plain: { type: bash, command: 'true', depends_on: [up] }\n  mapped:\n    type: bash\n    command: 'true'\n    depends_on: [up]\n    foreach: [1, 2]\n  join: { type: empty, depends_on: [up], retries: 2, pool: p }\n  joins:\n    type: empty\n    depends_on: [up]\n    foreach: [1, 2]\n  announce: { type: empty, depends_on: [up], outlets: [s3://lake/day/] }\n";
    parse_dag_str(src, "d.yaml".as_ref()).expect("valid")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid time")
}

/// The decision as a user reads it: the new state with its note (or the reason's name when
/// no note is stored), or what the instance waits for.
fn describe(next: &Next) -> String {
    match next {
        Next::Move(d) => match d.why.note() {
            Some(note) => format!("{}: {note}", d.to),
            Option::None => format!("{} ({:?})", d.to, d.why),
        },
        Next::Hold(WaitReason::Upstream(w)) => format!("wait: {w}"),
        Next::Hold(WaitReason::RetryAt(t)) => format!("retry at +{}s", (*t - now()).num_seconds()),
        Next::Hold(WaitReason::PokeAt(t)) => format!("poke at +{}s", (*t - now()).num_seconds()),
        Next::Expand => "expand".into(),
        Next::Untouched => "untouched".into(),
    }
}

const EMPTY_DONE: &str = "success: marked success by the scheduler: an empty task runs nothing";

#[test]
fn every_pending_state_task_and_upstream_mix() {
    let dag = tasks();
    // (state, task: plain | mapped | gone, map_index, next_try_at in seconds from now,
    //  states of the `up` instances, expected decision)
    type Row = (TaskState, &'static str, i64, Option<i64>, &'static [TaskState], &'static str);
    let cases: &[Row] = &[
        (None, "plain", -1, Option::None, &[Success], "scheduled (DependenciesMet)"),
        (None, "plain", -1, Option::None, &[Running], "wait: waiting for upstream up (running)"),
        (None, "plain", -1, Option::None, &[], "scheduled (DependenciesMet)"),
        (None, "plain", -1, Option::None, &[Failed], "upstream_failed: 1 upstream tasks failed"),
        (None, "plain", -1, Option::None, &[Skipped], "skipped: 1 upstream tasks were skipped"),
        (None, "plain", -1, Option::None, &[Removed], "scheduled (DependenciesMet)"),
        // A mapped task's placeholder is expanded once its rule is met; its instances are
        // scheduled like any task.
        (None, "mapped", -1, Option::None, &[Success], "expand"),
        (None, "mapped", -1, Option::None, &[Queued], "wait: waiting for upstream up (queued)"),
        (None, "mapped", -1, Option::None, &[Failed], "upstream_failed: 1 upstream tasks failed"),
        (None, "mapped", 1, Option::None, &[Success], "scheduled (DependenciesMet)"),
        // An `empty` task runs nothing: once its rule is met the scheduler marks it success
        // itself (whatever its retries or pool), mapped instances too; it waits like any task.
        (None, "join", -1, Option::None, &[Success], EMPTY_DONE),
        (None, "join", -1, Option::None, &[Running], "wait: waiting for upstream up (running)"),
        (None, "join", -1, Option::None, &[Failed], "upstream_failed: 1 upstream tasks failed"),
        (None, "joins", -1, Option::None, &[Success], "expand"),
        (None, "joins", 0, Option::None, &[Success], EMPTY_DONE),
        // ...unless it has outlets: a try records their events.
        (None, "announce", -1, Option::None, &[Success], "scheduled (DependenciesMet)"),
        // A task gone from the DAG file: every pending instance is removed.
        (None, "gone", -1, Option::None, &[Success], "removed: the task is no longer in the DAG"),
        (UpForRetry, "gone", -1, Some(60), &[], "removed: the task is no longer in the DAG"),
        (UpForReschedule, "gone", 0, Some(60), &[], "removed: the task is no longer in the DAG"),
        // Retries: due exactly at next_try_at, not a microsecond before; upstream not consulted.
        (UpForRetry, "plain", -1, Some(30), &[Success], "retry at +30s"),
        (UpForRetry, "plain", -1, Some(0), &[Success], "scheduled (RetryDue)"),
        (UpForRetry, "plain", -1, Some(-5), &[Failed], "scheduled (RetryDue)"),
        (UpForRetry, "plain", -1, Option::None, &[], "scheduled (RetryDue)"),
        (UpForRetry, "mapped", 0, Some(10), &[], "retry at +10s"),
        // Sensors between pokes.
        (UpForReschedule, "plain", -1, Some(5), &[Success], "poke at +5s"),
        (UpForReschedule, "plain", -1, Some(0), &[Success], "scheduled (PokeDue)"),
        (UpForReschedule, "mapped", 1, Option::None, &[], "scheduled (PokeDue)"),
        // Everything else belongs to the queue, a worker, or nobody.
        (Scheduled, "plain", -1, Option::None, &[Failed], "untouched"),
        (Queued, "gone", -1, Option::None, &[], "untouched"),
        (Running, "plain", -1, Option::None, &[], "untouched"),
        (Success, "gone", -1, Option::None, &[], "untouched"),
        (Failed, "plain", -1, Some(0), &[], "untouched"),
        (UpstreamFailed, "plain", -1, Option::None, &[Success], "untouched"),
        (Skipped, "mapped", -1, Option::None, &[Success], "untouched"),
        (Removed, "gone", -1, Option::None, &[], "untouched"),
    ];
    for (state, which, map_index, next_in, up, want) in cases {
        let task = dag.tasks.get(*which);
        let ti = TiFacts {
            state: *state,
            map_index: *map_index,
            next_try_at: next_in.map(|s| now() + Duration::seconds(s)),
        };
        let mut counts = UpstreamCounts::default();
        if !up.is_empty() {
            counts.add_task("up", up.iter().map(|s| (*s, 1)));
        }
        let got = describe(&schedule_ti(&ti, task, &counts, now()));
        assert_eq!(got, *want, "{state} {which}[{map_index}] next {next_in:?} up {up:?}");
    }
}

#[test]
fn a_retry_becomes_due_at_its_exact_microsecond() {
    let dag = tasks();
    let at = now() + Duration::seconds(30);
    let ti = TiFacts { state: UpForRetry, map_index: -1, next_try_at: Some(at) };
    let up = UpstreamCounts::default();
    let before = schedule_ti(&ti, dag.tasks.get("plain"), &up, at - Duration::microseconds(1));
    assert_eq!(before, Next::Hold(WaitReason::RetryAt(at)));
    let due = schedule_ti(&ti, dag.tasks.get("plain"), &up, at);
    assert_eq!(due, Next::Move(Decision { to: Scheduled, why: Why::RetryDue }));
}

#[test]
fn foreach_results() {
    let cases: &[(Result<Vec<u8>, &str>, &str)] = &[
        (Ok(vec![1, 2, 3]), "map 3"),
        (Ok(vec![7]), "map 1"),
        (Ok(vec![]), "skipped: foreach gave no items"),
        (Err("`a` is not a list"), "failed: foreach could not be expanded: `a` is not a list"),
    ];
    for (items, want) in cases {
        let got = match expansion(items.clone().map_err(str::to_string)) {
            Expansion::Map(items) => format!("map {}", items.len()),
            Expansion::Move(d) => format!("{}: {}", d.to, d.why.note().unwrap_or_default()),
        };
        assert_eq!(got, *want, "{items:?}");
    }
}

#[test]
fn only_waits_for_upstream_tasks_store_a_note() {
    let t = now();
    let upstream = WaitReason::Upstream(UpstreamWait {
        rule: crate::dag::TriggerRule::AllSuccess,
        task: Some(("t3".into(), Running)),
        more: 0,
    });
    assert_eq!(upstream.note().as_deref(), Some("waiting for upstream t3 (running)"));
    // The error a failed try stored stays visible while the retry waits.
    assert_eq!(WaitReason::RetryAt(t).note(), Option::None);
    assert_eq!(WaitReason::PokeAt(t).note(), Option::None);
    assert!(WaitReason::RetryAt(t).to_string().contains("2026-03-01T12:00:00"));
    // A task on its way to run carries no stale reason.
    for why in [Why::DependenciesMet, Why::RetryDue, Why::PokeDue] {
        assert_eq!(why.note(), Option::None, "{why:?}");
    }
}
