//! Scheduling decisions on a fixed clock: a real store (SQLite in a temp dir) and the real
//! scheduler, driven one pass at a time with a [`ManualClock`] and an executor that runs
//! nothing. The test stands in for the worker (start and end a try through the store), so
//! every other state change seen here is the scheduler's. No sleeps: time moves only when a
//! test sets the clock.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use tokio::sync::mpsc;

use super::runs::plan_run;
use super::*;
use crate::dag::{Dag, LoadError, parse_dag_str};
use crate::executor::{BoxFuture, Executor};
use crate::model::{self, DagRunState, FailureOutcome, RunType, TaskState};
use crate::store::{FinishTry, NewRun, RunRow, TiRow};

/// Records what it is given; runs nothing.
#[derive(Default)]
struct Recorder {
    submitted: Mutex<Vec<TiRow>>,
}

impl Recorder {
    fn count(&self) -> usize {
        self.submitted.lock().map(|v| v.len()).unwrap_or(0)
    }
}

impl Executor for Recorder {
    fn free_slots(&self) -> usize {
        8
    }
    fn submit(&self, ti: TiRow) {
        if let Ok(mut v) = self.submitted.lock() {
            v.push(ti);
        }
    }
    fn drain(&self, _grace: std::time::Duration) -> BoxFuture {
        Box::pin(async {})
    }
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).single().expect("valid date")
}

fn parse(yaml: &str) -> Dag {
    parse_dag_str(yaml, "t.yaml".as_ref()).expect("valid DAG")
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    executor: Arc<Recorder>,
    sched: Scheduler,
    _reports: mpsc::UnboundedSender<TryReport>,
}

impl Harness {
    async fn new(yaml: &str, now: DateTime<Utc>) -> Harness {
        Harness::with_dags(&[yaml], now).await
    }

    /// A harness whose scheduler knows every DAG of `yamls`.
    async fn with_dags(yamls: &[&str], now: DateTime<Utc>) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let settings = Settings::for_home(&home, &dir.path().join("dags"));
        let store = Store::open(&settings.database_url).await.expect("open store");
        let parsed: Vec<Dag> = yamls.iter().map(|y| parse(y)).collect();
        store.sync_dags(&parsed, std::iter::empty::<&LoadError>(), now).await.expect("sync");
        let dags = Arc::new(DagCache::new());
        dags.replace_all(parsed);
        let clock = Arc::new(ManualClock::new(now));
        let executor = Arc::new(Recorder::default());
        let process = ProcessRow {
            id: "test:1:0".into(),
            kind: "scheduler".into(),
            hostname: "test".into(),
            pid: 1,
            heartbeat_at: now,
            stopped_at: None,
            ..Default::default()
        };
        store.heartbeat(&process, now).await.expect("heartbeat");
        let (tx, reports) = mpsc::unbounded_channel();
        let mut sched = Scheduler::new(SchedulerParts {
            store: store.clone(),
            settings: Arc::new(settings),
            clock: clock.clone(),
            executor: executor.clone(),
            dags,
            folder: None,
            process,
            reports,
            opts: SchedulerOptions::default(),
            metrics: Arc::default(),
        });
        sched.refresh_caps();
        Harness { _dir: dir, store, clock, executor, sched, _reports: tx }
    }

    /// One pass of the scheduler's loop at the clock's time: the poll (schedules, queued
    /// runs, sweep of running runs), then every dirty run and the queue.
    async fn pass(&mut self) {
        self.sched.poll().await.expect("poll");
        self.sched.process_dirty().await.expect("schedule");
    }

    async fn trigger(&self, dag_id: &str) -> RunRow {
        let now = self.clock.now();
        let run = NewRun {
            dag_id: dag_id.into(),
            run_id: NewRun::default_run_id(RunType::Manual, now),
            run_type: RunType::Manual,
            logical_date: now,
            data_interval_start: now,
            data_interval_end: now,
            conf: serde_json::Map::new(),
            triggered_by: "test".into(),
            deadlines: Vec::new(),
        };
        self.store.create_run(&run, now).await.expect("create run")
    }

    /// Logical dates of a DAG's runs, oldest first.
    async fn run_days(&self, dag_id: &str) -> Vec<DateTime<Utc>> {
        let runs = self.store.list_runs(dag_id, None, 100).await.expect("runs");
        let mut days: Vec<_> = runs.iter().map(|r| r.logical_date).collect();
        days.sort();
        days
    }

    async fn ti(&self, run_pk: RunPk, task_id: &str) -> TiRow {
        let tis = self.store.run_tis(run_pk).await.expect("tis");
        tis.into_iter().find(|t| t.task_id == task_id).expect("instance exists")
    }

    /// Stands in for a worker: starts the queued try of `task_id` and ends it as `end` says.
    async fn run_try(&self, run_pk: RunPk, task_id: &str, end: impl FnOnce(&TiRow) -> FinishTry) {
        let ti = self.ti(run_pk, task_id).await;
        assert_eq!(ti.state, TaskState::Queued, "{task_id} is queued before it runs");
        let now = self.clock.now();
        let started = self.store.start_try(&ti, "test", 1, "test:1:0", |_| String::new(), now);
        let running = started.await.expect("start try").expect("it was queued");
        assert!(self.store.finish_try(&end(&running)).await.expect("finish try"));
    }
}

/// The end of a try, as a worker records it.
fn ended(ti: &TiRow, state: TaskState, now: DateTime<Utc>) -> FinishTry {
    FinishTry {
        ti_id: ti.id,
        try_number: ti.try_number,
        state,
        next_try_at: None,
        first_poke_at: None,
        end: now,
        error: None,
        rendered: None,
        xcom: None,
        owner_process: ti.owner_process.clone().unwrap_or_default(),
        give_back_try: false,
        outlets: Vec::new(),
        outlet_extra: serde_json::Value::Null,
        notify: None,
    }
}

const DAILY: &str =
    "schedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n  t: { type: bash, command: 'true' }\n";

#[tokio::test]
async fn catchup_creates_exactly_the_runs_whose_interval_has_ended() {
    let yaml = format!("dag_id: daily\ncatchup: true\n{DAILY}");
    let mut h = Harness::new(&yaml, day(4) - Duration::microseconds(1)).await;
    h.pass().await;
    assert_eq!(h.run_days("daily").await, [day(1), day(2)], "the 3rd interval has not ended");
    let dag = h.store.get_dag("daily").await.expect("dag");
    assert_eq!(dag.next_dagrun, Some(day(3)), "the UI's next run");
    h.clock.set(day(4));
    h.pass().await;
    h.pass().await;
    assert_eq!(h.run_days("daily").await, [day(1), day(2), day(3)], "due at its end, once");
    for run in h.store.list_runs("daily", None, 10).await.expect("runs") {
        assert_eq!(run.data_interval_end - run.data_interval_start, Duration::days(1));
        assert!(run.run_id.starts_with("scheduled__"), "{}", run.run_id);
    }
}

#[tokio::test]
async fn without_catchup_only_the_latest_ended_interval_runs() {
    let yaml = format!("dag_id: latest\ncatchup: false\n{DAILY}");
    let mut h = Harness::new(&yaml, day(4) + Duration::hours(6)).await;
    h.pass().await;
    assert_eq!(h.run_days("latest").await, [day(3)]);
    // Three days pass without a scheduler: the missed intervals are not caught up.
    h.clock.set(day(8));
    h.pass().await;
    assert_eq!(h.run_days("latest").await, [day(3), day(7)]);
}

#[tokio::test]
async fn max_active_runs_holds_due_runs_until_one_finishes() {
    let yaml = format!("dag_id: capped\ncatchup: true\nmax_active_runs: 2\n{DAILY}");
    let mut h = Harness::new(&yaml, day(5)).await;
    h.pass().await;
    h.pass().await;
    assert_eq!(h.run_days("capped").await, [day(1), day(2)], "4 due, 2 allowed");
    let dag = h.store.get_dag("capped").await.expect("dag");
    assert_eq!(dag.next_dagrun, Some(day(3)), "the held interval is the next run");
    let runs = h.store.list_runs("capped", None, 10).await.expect("runs");
    let first = runs.iter().find(|r| r.logical_date == day(1)).expect("first run");
    assert_eq!(first.state, DagRunState::Running);
    h.run_try(first.id, "t", |ti| ended(ti, TaskState::Success, day(5))).await;
    h.pass().await;
    assert_eq!(h.store.get_run(first.id).await.expect("run").state, DagRunState::Success);
    h.pass().await;
    assert_eq!(h.run_days("capped").await, [day(1), day(2), day(3)], "one slot freed, one run");
}

#[tokio::test]
async fn a_catch_up_run_starts_in_the_pass_that_ends_the_one_before_it() {
    let yaml = format!("dag_id: serial\ncatchup: true\nmax_active_runs: 1\n{DAILY}");
    let mut h = Harness::new(&yaml, day(4)).await;
    h.pass().await;
    let first = h.store.list_runs("serial", None, 10).await.expect("runs");
    let [first] = first.as_slice() else { panic!("one run at a time: {first:?}") };
    h.run_try(first.id, "t", |ti| ended(ti, TaskState::Success, day(4))).await;
    // The end of the try, as the executor reports it; no poll follows.
    let ti = h.ti(first.id, "t").await;
    let report = TryReport {
        ti_id: ti.id,
        run_pk: first.id,
        task_id: "t".into(),
        state: Some(TaskState::Success),
    };
    h.sched.on_report(&report);
    h.sched.queue_wanted = true;
    h.sched.process_dirty().await.expect("schedule");
    assert_eq!(h.store.get_run(first.id).await.expect("run").state, DagRunState::Success);
    let runs = h.store.list_runs("serial", None, 10).await.expect("runs");
    let second = runs.iter().find(|r| r.logical_date == day(2)).expect("the next run exists");
    assert_eq!(second.state, DagRunState::Running, "started in the same pass");
    assert_eq!(h.ti(second.id, "t").await.state, TaskState::Queued, "and its task queued");
}

impl Harness {
    /// Stands in for the executor's report of the end of `task_id`'s try.
    async fn report(&mut self, run_pk: RunPk, task_id: &str) {
        let ti = self.ti(run_pk, task_id).await;
        let task_id = task_id.to_string();
        self.sched.on_report(&TryReport { ti_id: ti.id, run_pk, task_id, state: Some(ti.state) });
        self.sched.queue_wanted = true;
    }
}

#[tokio::test]
async fn counts_kept_between_passes_never_schedule_on_a_change_made_behind_the_schedulers_back() {
    let yaml = "dag_id: join\ntasks:\n  a: {type: bash, command: 'true'}\n  b: {type: bash, command: 'true'}\n  c: {type: bash, command: 'true', depends_on: [a, b]}\n";
    let t0 = day(3);
    let mut h = Harness::new(yaml, t0).await;
    let run = h.trigger("join").await;
    h.pass().await;
    h.run_try(run.id, "a", |ti| ended(ti, TaskState::Success, t0)).await;
    h.report(run.id, "a").await;
    h.sched.process_dirty().await.expect("schedule");
    assert_eq!(h.ti(run.id, "c").await.state, TaskState::None, "c waits for b");
    // A user marks `a` failed from another process: the scheduler hears nothing of it.
    let a = h.ti(run.id, "a").await;
    let mark = crate::store::TiChange {
        id: a.id,
        from: TaskState::Success,
        write: model::UserWrite::Mark(TaskState::Failed),
    };
    assert_eq!(h.store.change_tis(run.id, &[mark], "marked", t0).await.expect("mark"), 1);
    // `b` ends: by the counts kept since, both upstreams succeeded and `c` would be ready.
    h.run_try(run.id, "b", |ti| ended(ti, TaskState::Success, t0)).await;
    h.report(run.id, "b").await;
    h.sched.process_dirty().await.expect("schedule");
    let c = h.ti(run.id, "c").await;
    assert_eq!(c.state, TaskState::UpstreamFailed, "decided on the store's counts: {c:?}");
}

#[tokio::test]
async fn a_retry_is_scheduled_exactly_at_next_try_at() {
    let t0 = day(10);
    let yaml = "dag_id: flaky\ntasks:\n  t: { type: bash, command: 'true', retries: 2, retry_delay: 30s }\n";
    let mut h = Harness::new(yaml, t0).await;
    let run = h.trigger("flaky").await;
    h.pass().await;
    assert_eq!(h.executor.count(), 1, "queued and handed over");
    let failed_at = t0 + Duration::seconds(1);
    h.clock.set(failed_at);
    let task = parse(yaml).tasks["t"].clone();
    let FailureOutcome::Retry(at) = model::on_failure(&task, 1, 3, true, failed_at) else {
        panic!("try 1 of 3 retries")
    };
    assert_eq!(at, failed_at + Duration::seconds(30));
    h.run_try(run.id, "t", |ti| FinishTry {
        next_try_at: Some(at),
        error: Some("exit status 1".into()),
        ..ended(ti, TaskState::UpForRetry, failed_at)
    })
    .await;
    h.clock.set(at - Duration::microseconds(1));
    h.pass().await;
    let ti = h.ti(run.id, "t").await;
    assert_eq!(ti.state, TaskState::UpForRetry, "not a microsecond early");
    assert_eq!(ti.note.as_deref(), Some("exit status 1"), "the failed try's error stays shown");
    assert_eq!(h.executor.count(), 1);
    h.clock.set(at);
    h.pass().await;
    let ti = h.ti(run.id, "t").await;
    assert_eq!((ti.state, ti.runnable_at), (TaskState::Queued, Some(at)), "scheduled at `at`");
    assert_eq!(h.executor.count(), 2, "the retry was handed over");
}

#[tokio::test]
async fn a_sensor_pokes_again_exactly_after_its_interval_with_the_same_try() {
    let t0 = day(10);
    let yaml = "dag_id: wait\ntasks:\n  s: { type: file_sensor, path: /nonexistent, poke_interval: 10s, timeout: 1h }\n";
    let mut h = Harness::new(yaml, t0).await;
    let run = h.trigger("wait").await;
    h.pass().await;
    let again = t0 + Duration::seconds(10);
    h.run_try(run.id, "s", |ti| FinishTry {
        next_try_at: Some(again),
        first_poke_at: Some(t0),
        ..ended(ti, TaskState::UpForReschedule, t0)
    })
    .await;
    h.clock.set(again - Duration::microseconds(1));
    h.pass().await;
    assert_eq!(h.ti(run.id, "s").await.state, TaskState::UpForReschedule);
    assert_eq!(h.executor.count(), 1, "no slot taken between pokes");
    h.clock.set(again);
    h.pass().await;
    assert_eq!(h.executor.count(), 2, "poked again at its time");
    h.run_try(run.id, "s", |ti| {
        assert_eq!(ti.try_number, 1, "a re-poke keeps its try");
        ended(ti, TaskState::Success, again)
    })
    .await;
    h.pass().await;
    assert_eq!(h.store.get_run(run.id).await.expect("run").state, DagRunState::Success);
}

#[tokio::test]
async fn a_run_keeps_the_dag_version_it_started_with_when_the_file_changes() {
    let t0 = day(10);
    let v1 = "dag_id: shrink\ntasks:\n  a: { type: bash, command: 'true' }\n  b: { type: bash, command: 'true', depends_on: [a] }\n  c: { type: bash, command: 'true', retries: 1 }\n";
    let mut h = Harness::new(v1, t0).await;
    let run = h.trigger("shrink").await;
    h.pass().await;
    let first = parse(v1);
    assert_eq!(h.store.get_run(run.id).await.expect("run").dag_version, Some(first.version));
    let later = t0 + Duration::hours(1);
    h.run_try(run.id, "c", |ti| FinishTry {
        next_try_at: Some(later),
        ..ended(ti, TaskState::UpForRetry, t0)
    })
    .await;
    // The file loses `b` and `c` while the run runs; the scan records the new version.
    let v2 = parse("dag_id: shrink\ntasks:\n  a: { type: bash, command: 'true' }\n");
    h.store.sync_dags([&v2], std::iter::empty::<&LoadError>(), t0).await.expect("sync");
    h.sched.dags.replace_all([v2.clone()]);
    let numbers = |v: crate::store::DagVersion| (v.number, v.source);
    let stored = h.store.dag_version("shrink", &v2.version).await.expect("v2 stored");
    assert_eq!(numbers(stored), (2, v2.source.clone()));
    h.pass().await;
    for kept in ["b", "c"] {
        let ti = h.ti(run.id, kept).await;
        assert_ne!(ti.state, TaskState::Removed, "{kept} is in the run's version");
    }
    h.run_try(run.id, "a", |ti| ended(ti, TaskState::Success, t0)).await;
    h.pass().await;
    h.pass().await;
    assert_eq!(h.ti(run.id, "b").await.state, TaskState::Queued, "b runs, as version 1 says");
    // A run started now follows the new file.
    h.clock.set(later);
    let next = h.trigger("shrink").await;
    h.pass().await;
    assert_eq!(h.store.get_run(next.id).await.expect("run").dag_version, Some(v2.version));
    let tis = h.store.run_tis(next.id).await.expect("tis");
    assert_eq!(tis.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>(), ["a"]);
}

/// A clear runs the version the run is pinned to; a clear "on the latest version" moves the
/// run to the DAG as it is now: its new task gets an instance, the one it lost is removed,
/// and later clears stay on that version.
#[tokio::test]
async fn a_clear_runs_the_pinned_version_unless_asked_for_the_latest() {
    let t0 = day(10);
    let v1 = "dag_id: moving\ntasks:\n  a: { type: bash, command: 'true' }\n  b: { type: bash, command: 'true', depends_on: [a] }\n";
    let mut h = Harness::new(v1, t0).await;
    let run = h.trigger("moving").await;
    h.pass().await;
    for task in ["a", "b"] {
        h.run_try(run.id, task, |ti| ended(ti, TaskState::Success, t0)).await;
        h.pass().await;
    }
    assert_eq!(h.store.get_run(run.id).await.expect("run").state, DagRunState::Success);
    // The file changes: `b` goes, `c` comes.
    let v2 = parse(
        "dag_id: moving\ntasks:\n  a: { type: bash, command: 'true' }\n  c: { type: bash, command: 'true' }\n",
    );
    h.store.sync_dags([&v2], std::iter::empty::<&LoadError>(), t0).await.expect("sync");
    h.sched.dags.replace_all([v2.clone()]);
    let actor = crate::actions::Actor::cli("test");
    let (store, dags) = (h.store.clone(), h.sched.dags.clone());
    let clear = |version| {
        let (store, dags, actor) = (store.clone(), dags.clone(), actor.clone());
        async move {
            let run = store.get_run(run.id).await.expect("run");
            crate::actions::clear_run(&store, &dags, &actor, &run, false, version).await
        }
    };
    assert_eq!(clear(crate::actions::RunVersion::Pinned).await.expect("clear"), 2);
    h.pass().await;
    let pinned = h.store.get_run(run.id).await.expect("run");
    assert_eq!(pinned.dag_version, Some(parse(v1).version), "still version 1");
    assert_eq!(h.ti(run.id, "a").await.state, TaskState::Queued);
    assert_eq!(h.ti(run.id, "b").await.state, TaskState::None, "b waits for a, as v1 says");
    let names = |tis: Vec<TiRow>| tis.into_iter().map(|t| t.task_id).collect::<Vec<_>>();
    assert_eq!(names(h.store.run_tis(run.id).await.expect("tis")), ["a", "b"], "no c in v1");
    for task in ["a", "b"] {
        h.run_try(run.id, task, |ti| ended(ti, TaskState::Success, t0)).await;
        h.pass().await;
    }
    // On the latest version.
    assert_eq!(clear(crate::actions::RunVersion::Latest).await.expect("clear"), 2);
    h.pass().await;
    let moved = h.store.get_run(run.id).await.expect("run");
    assert_eq!(moved.dag_version, Some(v2.version.clone()), "pinned to version 2 now");
    assert_eq!(h.ti(run.id, "a").await.state, TaskState::Queued);
    assert_eq!(h.ti(run.id, "c").await.state, TaskState::Queued, "the new task runs");
    assert_eq!(h.ti(run.id, "b").await.state, TaskState::Removed, "the lost one is removed");
    for task in ["a", "c"] {
        h.run_try(run.id, task, |ti| ended(ti, TaskState::Success, t0)).await;
        h.pass().await;
    }
    assert_eq!(h.store.get_run(run.id).await.expect("run").state, DagRunState::Success);
    let audit = h.store.list_audit(Some("moving"), None, 10).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|a| a.extra.as_deref().is_some_and(|e| e.contains("on the latest version"))),
        "{audit:?}"
    );
}

/// A backfill's runs start no more than its `max_active_runs` at once (under the DAG's own
/// limit), none while it is paused, and its queued ones fail when it is cancelled.
#[tokio::test]
async fn a_backfill_starts_its_runs_within_its_own_limit_and_not_while_paused() {
    let t0 = day(20);
    let yaml = "dag_id: filled\nschedule: '@daily'\nstart_date: 2026-01-01\nmax_active_runs: 16\ntasks:\n  a: { type: bash, command: 'true' }\n";
    let mut h = Harness::new(yaml, t0).await;
    let dag = parse(yaml);
    let actor = crate::actions::Actor::cli("test");
    let req = crate::actions::backfills::BackfillRequest {
        from: day(1),
        to: day(4),
        max_active_runs: Some(2),
        ..Default::default()
    };
    let dags = h.sched.dags.clone();
    let done = crate::actions::backfills::create_backfill(&h.store, &dags, &actor, &dag, req)
        .await
        .expect("backfill");
    let id = done.backfill.expect("created").id;
    let running = |h: &Harness| {
        let store = h.store.clone();
        async move { store.get_backfill(id).await.expect("backfill") }
    };
    h.pass().await;
    let b = running(&h).await;
    assert_eq!((b.running, b.queued), (2, 2), "two at once, as it says");
    // Paused: a finished run frees a slot, nothing new starts.
    crate::actions::backfills::pause_backfill(&h.store, &actor, id, true).await.expect("pause");
    let first =
        h.store.find_run_by_logical_date("filled", day(1)).await.expect("find").expect("run");
    h.run_try(first.id, "a", |ti| ended(ti, TaskState::Success, t0)).await;
    h.pass().await;
    h.pass().await;
    let b = running(&h).await;
    assert_eq!((b.running, b.queued, b.success), (1, 2, 1), "paused: none starts");
    crate::actions::backfills::pause_backfill(&h.store, &actor, id, false).await.expect("unpause");
    h.pass().await;
    assert_eq!(running(&h).await.running, 2, "unpaused: the free slot is taken");
    let b = crate::actions::backfills::cancel_backfill(&h.store, &actor, id).await.expect("cancel");
    assert_eq!(
        (b.queued, b.failed, b.running),
        (0, 1, 2),
        "the queued run failed, running ones run on"
    );
    h.pass().await;
    assert_eq!(running(&h).await.running, 2, "nothing starts after a cancel");
}

#[tokio::test]
async fn a_run_started_from_a_source_no_scan_recorded_records_the_version_it_pins() {
    let t0 = day(10);
    let mut h =
        Harness::new("dag_id: late\ntasks:\n  a: { type: bash, command: 'true' }\n", t0).await;
    // The scheduler holds a source the store has not recorded (its scan's write was lost).
    let unrecorded = parse(
        "dag_id: late\ntasks:\n  a: { type: bash, command: 'true' }\n  b: { type: bash, command: 'true' }\n",
    );
    h.sched.dags.replace_all([unrecorded.clone()]);
    let run = h.trigger("late").await;
    h.pass().await;
    let pinned = h.store.get_run(run.id).await.expect("run").dag_version;
    assert_eq!(pinned.as_deref(), Some(unrecorded.version.as_str()));
    let stored = h.store.dag_version("late", &unrecorded.version).await.expect("pinned version");
    assert_eq!((stored.number, stored.source), (2, unrecorded.source));
}

#[tokio::test]
async fn a_scan_the_store_refused_is_recorded_by_the_next_one_without_another_edit() {
    let t0 = day(10);
    let mut h =
        Harness::new("dag_id: old\ntasks:\n  a: { type: bash, command: 'true' }\n", t0).await;
    let folder = h._dir.path().join("dags");
    std::fs::create_dir_all(&folder).expect("dags dir");
    let v2 = "dag_id: old\ntasks:\n  a: { type: bash, command: 'true' }\n  b: { type: bash, command: 'true' }\n";
    std::fs::write(folder.join("old.yaml"), v2).expect("write DAG");
    h.sched.folder = Some(DagFolder::new(&folder));
    // The database refuses the scan's write once.
    let db = sqlx::AnyPool::connect(&h.sched.settings.database_url).await.expect("connect");
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE UPDATE ON dag BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(&db)
    .await
    .expect("trigger");
    assert!(h.sched.reload_dags().await.is_err(), "the write fails");
    sqlx::query("DROP TRIGGER refuse").execute(&db).await.expect("drop trigger");
    db.close().await;
    h.sched.reload_dags().await.expect("the next scan");
    let version = crate::dag::version_of(v2);
    let stored = h.store.dag_version("old", &version).await.expect("recorded without an edit");
    assert_eq!(stored.number, 2);
    let run = h.trigger("old").await;
    h.pass().await;
    let tis = h.store.run_tis(run.id).await.expect("tis");
    assert_eq!(tis.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
}

#[tokio::test]
async fn empty_tasks_are_done_by_the_scheduler_in_the_pass_their_rule_is_met_without_a_try() {
    let t0 = day(10);
    let yaml = "dag_id: joins\ntasks:\n  first: { type: bash, command: 'true' }\n  \
        fan: { type: empty, depends_on: [first], foreach: [1, 2, 3], pool: tiny }\n  \
        join: { type: empty, depends_on: [fan] }\n  \
        last: { type: bash, command: 'true', depends_on: [join] }\n  \
        never: { type: empty, depends_on: [first], trigger_rule: all_failed }\n";
    let mut h = Harness::new(yaml, t0).await;
    let run = h.trigger("joins").await;
    h.pass().await;
    assert_eq!(h.ti(run.id, "fan").await.state, TaskState::None, "waits for `first`");
    let t1 = t0 + Duration::seconds(5);
    h.clock.set(t1);
    h.run_try(run.id, "first", |ti| ended(ti, TaskState::Success, t1)).await;
    h.pass().await;
    h.pass().await;
    let tis = h.store.run_tis(run.id).await.expect("tis");
    let fan: Vec<&TiRow> = tis.iter().filter(|t| t.task_id == "fan").collect();
    assert_eq!(fan.len(), 3, "expanded: {fan:?}");
    for ti in fan.iter().copied().chain(tis.iter().filter(|t| t.task_id == "join")) {
        assert_eq!(ti.state, TaskState::Success, "{}[{}]", ti.task_id, ti.map_index);
        assert_eq!((ti.start_date, ti.end_date), (Some(t1), Some(t1)), "done at once");
        assert_eq!(ti.try_number, 0, "no try");
        assert!(h.store.tries(ti.id).await.expect("tries").is_empty());
        let note = ti.note.as_deref().unwrap_or_default();
        assert!(note.contains("empty task runs nothing"), "{note}");
    }
    assert_eq!(h.ti(run.id, "never").await.state, TaskState::Skipped, "its rule still decides");
    assert_eq!(h.ti(run.id, "last").await.state, TaskState::Queued, "the next real task runs");
    let handed: Vec<String> =
        h.executor.submitted.lock().expect("recorder").iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(handed, ["first", "last"], "only tasks with something to run take a slot");
}

#[tokio::test]
async fn a_mark_keeps_the_real_times_of_the_instance_and_of_the_run() {
    let t0 = day(10);
    let mut h =
        Harness::new("dag_id: m\ntasks:\n  t: { type: bash, command: 'false' }\n", t0).await;
    let run = h.trigger("m").await;
    h.pass().await;
    let failed_at = t0 + Duration::milliseconds(5);
    h.run_try(run.id, "t", |ti| ended(ti, TaskState::Failed, failed_at)).await;
    h.pass().await;
    let failed = h.store.get_run(run.id).await.expect("run");
    assert_eq!((failed.state, failed.end_date), (DagRunState::Failed, Some(failed_at)));
    // Four minutes later an operator marks it success; the run finishes again.
    let marked_at = t0 + Duration::minutes(4);
    h.clock.set(marked_at);
    let ti = h.ti(run.id, "t").await;
    let mark = crate::store::TiChange {
        id: ti.id,
        from: TaskState::Failed,
        write: model::UserWrite::Mark(TaskState::Success),
    };
    assert_eq!(h.store.change_tis(run.id, &[mark], "marked", marked_at).await.expect("mark"), 1);
    h.pass().await;
    let ti = h.ti(run.id, "t").await;
    assert_eq!(ti.state, TaskState::Success);
    assert_eq!(ti.end_date, Some(failed_at), "the try's real end, not the mark's time");
    let tries = h.store.tries(ti.id).await.expect("tries");
    assert_eq!(tries[0].end_date, Some(failed_at));
    let done = h.store.get_run(run.id).await.expect("run");
    assert_eq!((done.state, done.end_date), (DagRunState::Success, Some(failed_at)));
}

#[tokio::test]
async fn a_wait_is_noted_when_it_changes_and_cleared_when_the_task_is_scheduled() {
    let t0 = day(10);
    let yaml = "dag_id: pair\ntasks:\n  a: { type: bash, command: 'true' }\n  b: { type: bash, command: 'true', depends_on: [a] }\n";
    let mut h = Harness::new(yaml, t0).await;
    let run = h.trigger("pair").await;
    h.pass().await;
    let note = |ti: TiRow| ti.note.unwrap_or_default();
    // Examined while `a` had just been scheduled, before the queue took it.
    assert_eq!(note(h.ti(run.id, "b").await), "waiting for upstream a (scheduled)");
    h.pass().await;
    assert_eq!(note(h.ti(run.id, "b").await), "waiting for upstream a (queued)");
    // Nothing changed: re-examining the run plans no write at all.
    let dag = h.sched.dags.cached("pair").expect("dag");
    let mut counts = h.sched.read_counts(run.id).await.expect("counts");
    let pending = h.store.run_pending_tis(run.id).await.expect("pending");
    let plan = plan_run(&dag, &pending, &mut counts, t0);
    assert!(plan.updates.is_empty() && plan.expand.is_empty(), "{:?}", plan.updates);
    h.run_try(run.id, "a", |ti| ended(ti, TaskState::Success, t0)).await;
    h.pass().await;
    let b = h.ti(run.id, "b").await;
    assert_eq!((b.state, b.note), (TaskState::Queued, None), "no stale reason once it runs");
}

#[tokio::test]
async fn a_foreach_that_cannot_expand_fails_its_task_and_an_empty_one_skips_it() {
    let t0 = day(10);
    let yaml = r#"
dag_id: fan
tasks:
  list: { type: bash, command: 'true' }
  bad: { type: bash, command: 'true', depends_on: [list], foreach: "{{ ti.xcom_pull('list') }}" }
  after_bad: { type: bash, command: 'true', depends_on: [bad] }
  nothing: { type: bash, command: 'true', depends_on: [list], foreach: [] }
  after_nothing: { type: bash, command: 'true', depends_on: [nothing] }
"#;
    let mut h = Harness::new(yaml, t0).await;
    let run = h.trigger("fan").await;
    h.pass().await;
    h.run_try(run.id, "list", |ti| FinishTry {
        xcom: Some(serde_json::json!({"not": "a list"})),
        ..ended(ti, TaskState::Success, t0)
    })
    .await;
    h.pass().await;
    let bad = h.ti(run.id, "bad").await;
    assert_eq!(bad.state, TaskState::Failed);
    let why = bad.note.unwrap_or_default();
    assert!(why.starts_with("foreach could not be expanded: "), "{why}");
    assert_eq!(h.ti(run.id, "after_bad").await.state, TaskState::UpstreamFailed);
    let nothing = h.ti(run.id, "nothing").await;
    assert_eq!(
        (nothing.state, nothing.note.as_deref()),
        (TaskState::Skipped, Some("foreach gave no items"))
    );
    assert_eq!(h.ti(run.id, "after_nothing").await.state, TaskState::Skipped);
    assert_eq!(h.store.get_run(run.id).await.expect("run").state, DagRunState::Failed);
}

/// Runs the one task `t` of `n` new manual runs of `producer` to success, as a worker would:
/// with the task's outlets, so each try gives each outlet an event.
async fn produce_n(h: &mut Harness, producer: &str, n: usize, at: DateTime<Utc>) {
    h.clock.set(at);
    let mut runs = Vec::new();
    for i in 0..n {
        h.clock.set(at + Duration::microseconds(i as i64));
        runs.push(h.trigger(producer).await);
    }
    h.clock.set(at);
    h.pass().await;
    let outlets = h.sched.dags.cached(producer).expect("known").tasks["t"].outlets.clone();
    for run in runs {
        h.run_try(run.id, "t", |ti| FinishTry {
            outlets: outlets.clone(),
            outlet_extra: serde_json::json!({"rows": 3}),
            ..ended(ti, TaskState::Success, at)
        })
        .await;
    }
}

async fn produce(h: &mut Harness, producer: &str, at: DateTime<Utc>) {
    produce_n(h, producer, 1, at).await;
}

/// Each asset-triggered run of `dag_id`, oldest first, with the URIs of its events.
async fn asset_runs(h: &Harness, dag_id: &str) -> Vec<Vec<String>> {
    let mut runs = h.store.list_runs(dag_id, None, 100).await.expect("runs");
    runs.sort_by_key(|r| r.id);
    let mut out = Vec::new();
    for r in runs {
        assert_eq!(r.run_type, RunType::AssetTriggered, "{dag_id}: only asset runs");
        let (events, total) = h.store.triggering_asset_events(r.id).await.expect("events");
        assert_eq!(total, events.len() as i64);
        out.push(events.into_iter().map(|e| e.uri).collect());
    }
    out
}

#[tokio::test]
async fn outlets_trigger_asset_scheduled_dags_once_per_event_with_all_and_any() {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid");
    let producer = |id: &str, uri: &str| {
        format!("dag_id: {id}\ntasks:\n  t: {{ type: empty, outlets: [{uri}] }}\n")
    };
    let (pa, pb) = (producer("pa", "kafka://a"), producer("pb", "s3://b/"));
    let all =
        "dag_id: all\nschedule: {assets: [kafka://a, s3://b/]}\ntasks:\n  t: { type: empty }\n";
    let any = "dag_id: any\nschedule: {any: [kafka://a, s3://b/]}\ntasks:\n  t: { type: empty }\n";
    let each = "dag_id: each\nschedule: {any: [kafka://a], each_event: true}\ntasks:\n  t: { type: empty }\n";
    let mut h = Harness::with_dags(&[&pa, &pb, all, any, each], t0).await;
    h.pass().await;
    assert!(asset_runs(&h, "all").await.is_empty() && asset_runs(&h, "any").await.is_empty());

    produce(&mut h, "pa", t0 + Duration::seconds(1)).await;
    h.pass().await;
    assert_eq!(asset_runs(&h, "any").await, vec![vec!["kafka://a"]], "any: one run for a");
    assert!(asset_runs(&h, "all").await.is_empty(), "all: b has no event yet");

    produce(&mut h, "pb", t0 + Duration::seconds(2)).await;
    h.pass().await;
    assert_eq!(asset_runs(&h, "all").await, vec![vec!["kafka://a", "s3://b/"]]);
    assert_eq!(asset_runs(&h, "any").await, vec![vec!["kafka://a"], vec!["s3://b/"]]);

    // Two events of a before the next pass: one run consumes both (Airflow's queue); nothing
    // is consumed twice, and `all` waits for b again.
    produce_n(&mut h, "pa", 2, t0 + Duration::seconds(3)).await;
    h.pass().await;
    h.pass().await;
    let any_runs = asset_runs(&h, "any").await;
    assert_eq!(any_runs.len(), 3, "{any_runs:?}");
    assert_eq!(any_runs[2], vec!["kafka://a", "kafka://a"]);
    // `each_event`: one run per event, the same two events one each.
    let each_runs = asset_runs(&h, "each").await;
    assert_eq!(each_runs, vec![vec!["kafka://a"]; 3], "one run per event of a");
    assert_eq!(asset_runs(&h, "all").await.len(), 1);

    // The event names its producer; the run's interval spans its events.
    let runs = h.store.list_runs("any", None, 10).await.expect("runs");
    let newest = runs.iter().max_by_key(|r| r.id).expect("a run");
    let (events, _) = h.store.triggering_asset_events(newest.id).await.expect("events");
    assert_eq!(events[0].source_dag_id.as_deref(), Some("pa"));
    assert_eq!(events[0].source_task_id.as_deref(), Some("t"));
    assert_eq!(events[0].extra, serde_json::json!({"rows": 3}));
    assert_eq!(newest.data_interval_start, t0 + Duration::seconds(3));
    assert_eq!(newest.data_interval_end, t0 + Duration::seconds(3));
    assert_eq!(newest.state, DagRunState::Success, "started (and done) in the same pass");

    // A paused consumer queues its events; unpaused, one run takes them all.
    h.store.set_paused("all", true).await.expect("pause");
    produce(&mut h, "pb", t0 + Duration::seconds(5)).await;
    h.pass().await;
    assert_eq!(asset_runs(&h, "all").await.len(), 1, "paused");
    h.store.set_paused("all", false).await.expect("unpause");
    h.pass().await;
    let all_runs = asset_runs(&h, "all").await;
    assert_eq!(all_runs.len(), 2);
    assert_eq!(all_runs[1], vec!["kafka://a", "kafka://a", "s3://b/"]);
}
