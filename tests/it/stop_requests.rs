//! Marking or clearing a running task instance stops its command: the process group is gone
//! before the downstream task (or the next try) starts, the requested state is recorded once,
//! and a mark is never turned into a retry. Sequential and local executors, SQLite and
//! PostgreSQL.

use crate::support::common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Db, Env};
use serde_json::json;
use updraft::config::ExecutorKind;
use updraft::model::{self, DagRunState, RunType, StopRequest, TaskState, user_change};
use updraft::store::{FinishTry, NewRun, NewTi, QueueCaps, RunRow, TiChange, TiRow, TiUpdate};

const LIMIT: Duration = Duration::from_secs(60);

/// A user's mark of `ti` as `to`, as `model` decides it.
fn mark(ti: &TiRow, to: TaskState) -> TiChange {
    let write = user_change::mark(ti.state, to).expect("the mark is allowed");
    TiChange { id: ti.id, from: ti.state, write }
}

/// The lines a check writes for every pid of `pids` still alive (zombies count as gone), then
/// `checked`.
fn check_script(pids: &str, report: &str) -> String {
    format!(
        "for p in $(cat {pids}); do if [ -d /proc/$p ] && [ \"$(cut -d' ' -f3 /proc/$p/stat)\" != Z ]; \
         then echo \"alive $p\"; fi; done > {report}; echo checked >> {report}"
    )
}

/// A running command of two processes: bash and a background sleep, their pids in `pids`.
fn slow_script(pids: &str) -> String {
    format!("echo $$ >> {pids}; sleep 30 & echo $! >> {pids}; wait")
}

struct Case {
    env: Env,
    pids: String,
    report: String,
}

impl Case {
    fn new(env: Env, executor: ExecutorKind) -> Case {
        let mut env = env;
        env.settings.executor = executor;
        let pids = env.path("pids").display().to_string();
        let report = env.path("report").display().to_string();
        Case { env, pids, report }
    }

    /// Loads `yaml`, triggers it and waits until `slow` runs its two processes.
    async fn start(&self, dag_id: &str, yaml: &str) -> (common::Running, RunRow, TiRow) {
        self.env.write_dag(&format!("{dag_id}.yaml"), yaml);
        let running = self.env.start().await;
        self.env
            .wait_until("DAG loaded", LIMIT, || async {
                self.env.store.get_dag(dag_id).await.is_ok()
            })
            .await;
        let run = self.env.trigger(dag_id, json!({})).await;
        self.env
            .wait_until("slow runs its command", LIMIT, || async {
                common::read(self.pids.as_ref()).lines().count() >= 2
            })
            .await;
        let slow = self.ti(&run, "slow").await;
        assert_eq!(slow.state, TaskState::Running);
        (running, run, slow)
    }

    async fn ti(&self, run: &RunRow, task_id: &str) -> TiRow {
        self.env.tis(run.id).await.into_iter().find(|t| t.task_id == task_id).expect("task")
    }

    /// Waits for the run to finish, collecting every state `slow` was seen in meanwhile.
    async fn finish(&self, run: &RunRow, slow: &TiRow) -> (RunRow, BTreeSet<String>) {
        let start = Instant::now();
        let mut seen = BTreeSet::new();
        loop {
            if let Ok(Some(ti)) = self.env.store.get_ti(slow.id).await {
                seen.insert(format!("{}#{}", ti.state, ti.try_number));
            }
            let r = self.env.store.get_run(run.id).await.expect("run");
            if r.state.is_finished() {
                return (r, seen);
            }
            assert!(start.elapsed() < LIMIT, "run not finished; slow was {seen:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn report(&self) -> String {
        common::read(self.report.as_ref())
    }
}

async fn mark_success_stops_the_command_before_downstream_starts(env: Env, executor: ExecutorKind) {
    let c = Case::new(env, executor);
    let yaml = format!(
        "dag_id: marked\ndefault_args: {{ retries: 2, retry_delay: 0s }}\ntasks:\n  slow:\n    type: bash\n    command: '{}'\n  after:\n    type: bash\n    depends_on: [slow]\n    command: '{}'\n",
        slow_script(&c.pids).replace('\'', "''"),
        check_script(&c.pids, &c.report).replace('\'', "''"),
    );
    let (running, run, slow) = c.start("marked", &yaml).await;
    let asked = Instant::now();
    let note = "marked success by tester";
    let applied = c
        .env
        .store
        .change_tis(run.id, &[mark(&slow, TaskState::Success)], note, Utc::now())
        .await
        .expect("mark");
    assert_eq!(applied, 1, "a running instance accepts the mark");
    let (done, seen) = c.finish(&run, &slow).await;
    running.stop().await;
    assert_eq!(done.state, DagRunState::Success, "report: {}", c.report());
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "stopped within the grace: {:?}",
        asked.elapsed()
    );
    let report = c.report();
    assert!(report.contains("checked"), "after ran: {report}");
    assert!(!report.contains("alive"), "after started beside slow's command: {report}");
    let slow = c.ti(&run, "slow").await;
    assert_eq!((slow.state, slow.try_number), (TaskState::Success, 1));
    assert_eq!(slow.note.as_deref(), Some(note));
    let want: BTreeSet<String> = ["running#1", "success#1"].map(String::from).into();
    assert_eq!(seen, want, "slow went from running to success once, nothing between");
    let tries = c.env.store.tries(slow.id).await.expect("tries");
    assert_eq!(tries.len(), 1, "{tries:?}");
    assert_eq!(tries[0].state, TaskState::Success);
}

async fn mark_failed_is_not_retried(env: Env, executor: ExecutorKind) {
    let c = Case::new(env, executor);
    let yaml = format!(
        "dag_id: failing\ndefault_args: {{ retries: 3, retry_delay: 0s }}\ntasks:\n  slow:\n    type: bash\n    command: '{}'\n  after:\n    type: bash\n    depends_on: [slow]\n    command: 'true'\n",
        slow_script(&c.pids).replace('\'', "''"),
    );
    let (running, run, slow) = c.start("failing", &yaml).await;
    let applied = c
        .env
        .store
        .change_tis(run.id, &[mark(&slow, TaskState::Failed)], "by tester", Utc::now())
        .await
        .expect("mark");
    assert_eq!(applied, 1);
    let (done, seen) = c.finish(&run, &slow).await;
    // Before the engine stops (which would kill what is left anyway): the run is over, so
    // nothing of slow may be running.
    let pids = common::read(c.pids.as_ref());
    let alive: Vec<&str> = pids
        .lines()
        .filter(|p| std::path::Path::new(&format!("/proc/{}", p.trim())).exists())
        .collect();
    running.stop().await;
    assert!(alive.is_empty(), "slow's processes outlived the mark: {alive:?}");
    assert_eq!(done.state, DagRunState::Failed);
    let slow_now = c.ti(&run, "slow").await;
    assert_eq!((slow_now.state, slow_now.try_number), (TaskState::Failed, 1), "{seen:?}");
    assert_eq!(c.ti(&run, "after").await.state, TaskState::UpstreamFailed);
}

async fn clear_stops_the_command_and_runs_a_new_try(env: Env, executor: ExecutorKind) {
    let c = Case::new(env, executor);
    let command = format!(
        "if [ \"$UPDRAFT_CTX_TRY_NUMBER\" = 1 ]; then {}; else {}; fi",
        slow_script(&c.pids),
        check_script(&c.pids, &c.report)
    );
    let yaml = format!(
        "dag_id: cleared\ntasks:\n  slow:\n    type: bash\n    command: '{}'\n",
        command.replace('\'', "''")
    );
    let (running, run, slow) = c.start("cleared", &yaml).await;
    let write = user_change::clear(slow.state, slow.try_number, 0);
    let write = write.expect("a running instance may be cleared");
    let clear = TiChange { id: slow.id, from: slow.state, write };
    let n = c.env.store.change_tis(run.id, &[clear], "cleared by tester", Utc::now()).await;
    assert_eq!(n.expect("clear"), 1);
    let (done, seen) = c.finish(&run, &slow).await;
    running.stop().await;
    let report = c.report();
    assert_eq!(done.state, DagRunState::Success, "report: {report}; seen {seen:?}");
    assert!(report.contains("checked"), "try 2 ran: {report}");
    assert!(!report.contains("alive"), "try 2 started beside try 1's command: {report}");
    let slow = c.ti(&run, "slow").await;
    assert_eq!((slow.state, slow.try_number), (TaskState::Success, 2));
    let tries = c.env.store.tries(slow.id).await.expect("tries");
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[1].state, TaskState::Success);
    assert!(
        tries[0].error.as_deref().unwrap_or("").contains("cleared by tester"),
        "try 1 says why it stopped: {:?}",
        tries[0].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_success_sequential() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    mark_success_stops_the_command_before_downstream_starts(env, ExecutorKind::Sequential).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_success_local() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    mark_success_stops_the_command_before_downstream_starts(env, ExecutorKind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_success_local_postgres() {
    if let Some(env) = Env::new(Db::Postgres).await {
        mark_success_stops_the_command_before_downstream_starts(env, ExecutorKind::Local).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_failed_local() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    mark_failed_is_not_retried(env, ExecutorKind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_running_sequential() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    clear_stops_the_command_and_runs_a_new_try(env, ExecutorKind::Sequential).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_running_local() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    clear_stops_the_command_and_runs_a_new_try(env, ExecutorKind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_running_local_postgres() {
    if let Some(env) = Env::new(Db::Postgres).await {
        clear_stops_the_command_and_runs_a_new_try(env, ExecutorKind::Local).await;
    }
}

/// The store alone: while a request is pending the try's own end is refused; a request
/// replaced by a newer one is not applied; the newest is applied once and emptied.
async fn the_newest_request_is_applied_once(env: Env) {
    let store = &env.store;
    let dag = updraft::dag::parse_dag_str(
        "dag_id: s\ntasks:\n  t: { type: bash, command: 'true' }\n",
        "s.yaml".as_ref(),
    )
    .expect("dag");
    let now = Utc::now();
    store.sync_dags([&dag], [], now).await.expect("sync");
    store.set_paused("s", false).await.expect("unpause");
    let new_run = NewRun {
        dag_id: "s".into(),
        run_id: "r".into(),
        run_type: RunType::Manual,
        logical_date: now,
        data_interval_start: now,
        data_interval_end: now,
        conf: Default::default(),
        triggered_by: "test".into(),
        deadlines: Vec::new(),
    };
    let run = store.create_run(&new_run, now).await.expect("run");
    let ti = NewTi {
        task_id: "t".into(),
        map_index: -1,
        map_item: None,
        operator: "bash".into(),
        pool: "default_pool".into(),
        pool_slots: 1,
        priority_weight: 1,
        queue: "default".into(),
        max_tries: 3,
    };
    assert!(store.start_run(run.id, None, &[ti], now).await.expect("start run"));
    let ti = store.run_tis(run.id).await.expect("tis").remove(0);
    let up = TiUpdate { id: ti.id, from: TaskState::None, to: TaskState::Scheduled, note: None };
    store.apply_ti_updates(&[up], now).await.expect("schedule");
    let no_caps = HashMap::new();
    let caps = QueueCaps::local(1, &no_caps);
    let queued = store.queue_scheduled(&caps, Some("w"), now).await.expect("queue");
    let ti = store.start_try(&queued[0], "h", 1, "w", |n| format!("{n}.log"), now).await;
    let ti = ti.expect("start").expect("started");
    let mark_as =
        async |to| store.change_tis(run.id, &[mark(&ti, to)], "by tester", Utc::now()).await;
    assert_eq!(mark_as(TaskState::Success).await.expect("mark"), 1);
    let finish = FinishTry {
        ti_id: ti.id,
        try_number: ti.try_number,
        state: TaskState::UpForRetry,
        next_try_at: Some(now),
        first_poke_at: None,
        end: Utc::now(),
        error: Some("killed".into()),
        rendered: None,
        xcom: None,
        owner_process: "w".into(),
        give_back_try: false,
        outlets: Vec::new(),
        outlet_extra: serde_json::Value::Null,
        notify: None,
    };
    assert!(!store.finish_try(&finish).await.expect("finish"), "refused while a request waits");
    let first = store.pending_stop(ti.id, ti.try_number).await.expect("read").expect("pending");
    assert_eq!(first.request, StopRequest::Mark(TaskState::Success));
    assert_eq!(mark_as(TaskState::Failed).await.expect("second mark"), 1);
    let outcome = model::after_stop(&first.request, None);
    assert!(!store.finish_stopped(&finish, &first, &outcome).await.expect("stale"), "replaced");
    let newest = store.pending_stop(ti.id, ti.try_number).await.expect("read").expect("pending");
    assert_eq!(newest.request, StopRequest::Mark(TaskState::Failed));
    let outcome = model::after_stop(&newest.request, None);
    assert!(store.finish_stopped(&finish, &newest, &outcome).await.expect("apply"));
    assert!(!store.finish_stopped(&finish, &newest, &outcome).await.expect("again"), "once");
    let ti = store.get_ti(ti.id).await.expect("get").expect("ti");
    assert_eq!((ti.state, ti.note.as_deref()), (TaskState::Failed, Some("by tester")));
    assert!(store.pending_stop(ti.id, ti.try_number).await.expect("read").is_none());
    let tries = store.tries(ti.id).await.expect("tries");
    assert_eq!(tries[0].state, TaskState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_request_is_applied_once_sqlite() {
    the_newest_request_is_applied_once(Env::new(Db::Sqlite).await.expect("env")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_request_is_applied_once_postgres() {
    if let Some(env) = Env::new(Db::Postgres).await {
        the_newest_request_is_applied_once(env).await;
    }
}
