//! The distributed executor on PostgreSQL, with schedulers and workers as separate processes
//! on 127.0.0.1: scale-out with kill -9 of a worker and of a scheduler, a worker paused past
//! its lease, a worker whose connections the server cuts, a graceful stop, the claim's index,
//! and the set-ups that must be refused.

use crate::support::common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Db, Env};
use serde_json::json;
use updraft::model::{DagRunState, TaskState};

/// Heartbeat timeout of every process here: a dead worker is noticed within seconds.
const TIMEOUT: &str = "3s";

fn updraft(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_updraft"));
    cmd.args(args)
        .env("UPDRAFT_HOME", &env.settings.home)
        .env("UPDRAFT_DAGS_FOLDER", env.dags_dir())
        .env("UPDRAFT_DATABASE_URL", &env.settings.database_url)
        .env("UPDRAFT_EXECUTOR", "distributed")
        .env("UPDRAFT_HEARTBEAT_TIMEOUT", TIMEOUT)
        .env("UPDRAFT_LOG", "warn")
        .envs(vars.iter().copied())
        .stdout(Stdio::null());
    cmd
}

fn scheduler(env: &Env) -> Child {
    updraft(env, &["scheduler"], &[]).spawn().expect("start a scheduler")
}

fn worker(env: &Env, name: &str, slots: &str, queues: &[&str]) -> Child {
    let mut args = vec!["worker", "--name", name, "--slots", slots, "--grace", "20s"];
    for q in queues {
        args.extend(["--queue", q]);
    }
    updraft(env, &args, &[]).spawn().expect("start a worker")
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child this test started; no memory involved.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// SIGKILLs and reaps.
fn kill_9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM, then waits (bounded) for the exit; SIGKILL if it does not come.
fn stop(mut child: Child) -> Option<std::process::ExitStatus> {
    signal(&child, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_9(&mut child);
    None
}

/// Kills every process of the test on drop, so a failing assertion leaves none behind.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            kill_9(c);
        }
    }
}

/// `(key, try, start, end)` of every execution the tasks wrote to `path`: lines `start KEY TRY
/// NS` and `end KEY TRY NS`; an execution without its end has `end` None.
fn executions(path: &Path) -> Vec<(String, u32, u128, Option<u128>)> {
    let mut open: HashMap<(String, u32), u128> = HashMap::new();
    let mut out = Vec::new();
    for line in common::read(path).lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [kind, key, tr, ns] = f[..] else { continue };
        let (Ok(tr), Ok(ns)) = (tr.parse::<u32>(), ns.parse::<u128>()) else { continue };
        match kind {
            "start" => {
                open.insert((key.to_string(), tr), ns);
            }
            "end" => {
                if let Some(s) = open.remove(&(key.to_string(), tr)) {
                    out.push((key.to_string(), tr, s, Some(ns)));
                }
            }
            _ => {}
        }
    }
    out.extend(open.into_iter().map(|((k, t), s)| (k, t, s, None)));
    out
}

/// Asserts that no two executions of one task overlap; an execution cut by a kill (no end)
/// counts as running until `cut_at` (its process died with its worker).
fn assert_never_twice_at_once(path: &Path, cut_at: &[u128]) {
    let mut by_key: BTreeMap<String, Vec<(u128, u128, u32)>> = BTreeMap::new();
    for (key, tr, start, end) in executions(path) {
        let end = end.unwrap_or_else(|| {
            let cut = cut_at.iter().copied().find(|c| *c >= start);
            cut.unwrap_or_else(|| panic!("{key} try {tr} never ended and no kill explains it"))
        });
        by_key.entry(key).or_default().push((start, end, tr));
    }
    for (key, mut spans) in by_key {
        spans.sort();
        for pair in spans.windows(2) {
            let ((_, end_a, try_a), (start_b, _, try_b)) = (pair[0], pair[1]);
            assert!(
                end_a <= start_b,
                "{key}: try {try_a} still ran when try {try_b} started ({end_a} > {start_b})"
            );
        }
    }
}

fn now_ns() -> u128 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u128
}

/// A DAG of `n` mapped bash instances that write their start and end (with their try) to
/// `spans`, sleeping `secs` between.
fn spans_dag(dag_id: &str, schedule: &str, n: usize, secs: &str, spans: &Path) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        r#"dag_id: {dag_id}
{schedule}
default_args: {{ retries: 3, retry_delay: 0s }}
tasks:
  work:
    type: bash
    foreach: [{items}]
    command: 'echo "start {dag_id}-{{{{ ds }}}}-{{{{ item }}}} {{{{ ti.try_number }}}} $(date +%s%N)" >> {s}; sleep {secs}; echo "end {dag_id}-{{{{ ds }}}}-{{{{ item }}}} {{{{ ti.try_number }}}} $(date +%s%N)" >> {s}'
"#,
        items = items.join(", "),
        s = spans.display(),
    )
}

/// The instances of a run that did not succeed, with their notes and last log, for a failure.
async fn not_successful(env: &Env, run: updraft::model::RunPk) -> String {
    let mut out = String::new();
    for ti in env.tis(run).await.iter().filter(|t| t.state != TaskState::Success) {
        out += &format!(
            "\n{}[{}] {} try {}: {:?}\n{}",
            ti.task_id,
            ti.map_index,
            ti.state,
            ti.try_number,
            ti.note,
            env.log(ti, ti.try_number)
        );
    }
    out
}

async fn pg_env() -> Option<Env> {
    let env = Env::new(Db::Postgres).await?;
    Some(env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_and_three_workers_survive_kill_9_of_one_of_each() {
    let Some(env) = pg_env().await else { return };
    let spans = env.path("spans.log");
    // Four DAGs, two daily runs each (caught up from two days ago), 250 instances a run.
    let start = (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%d").to_string();
    let schedule = format!("schedule: '@daily'\nstart_date: {start}\ncatchup: true");
    let dags = ["alpha", "bravo", "charlie", "delta"];
    for d in dags {
        env.write_dag(&format!("{d}.yaml"), &spans_dag(d, &schedule, 250, "0.1", &spans));
    }
    let mut procs = Procs(vec![
        scheduler(&env),
        scheduler(&env),
        worker(&env, "w1", "8", &[]),
        worker(&env, "w2", "8", &[]),
        worker(&env, "w3", "8", &[]),
    ]);
    env.wait_until("DAGs loaded", Duration::from_secs(60), || async {
        env.store.list_dags().await.map(|d| d.len()).unwrap_or(0) == dags.len()
    })
    .await;
    for d in dags {
        env.store.set_paused(d, false).await.expect("unpause");
    }
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&env.settings.database_url).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM task_instance WHERE state = 'success'")
                .fetch_one(&mut c)
                .await
                .expect("count");
        if done >= 400 {
            break;
        }
        assert!(Instant::now() < deadline, "400 instances not done in time: {done}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Kill w1 while the database shows it running tries: those are the ones to retry (but for
    // one that ends in the moment between the look and the kill).
    let running_on_w1 = "SELECT id FROM task_instance WHERE state = 'running' \
                         AND owner_process LIKE 'w1:%'";
    let deadline = Instant::now() + Duration::from_secs(60);
    let cut_tis: Vec<i64> = loop {
        let ids: Vec<i64> =
            sqlx::query_scalar(running_on_w1).fetch_all(&mut c).await.expect("running");
        if !ids.is_empty() {
            break ids;
        }
        assert!(Instant::now() < deadline, "w1 never ran a try");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut w1 = procs.0.remove(2);
    kill_9(&mut w1);
    let after_kill = chrono::Utc::now();
    let worker_cut = now_ns();
    let _ = c.close().await;
    let mut s1 = procs.0.remove(0);
    kill_9(&mut s1);
    let scheduler_cut = now_ns();
    // Everything ends: 8 runs of 250.
    let deadline = Instant::now() + Duration::from_secs(600);
    let runs = loop {
        let mut runs = Vec::new();
        for d in dags {
            runs.extend(env.store.list_runs(d, None, 100).await.expect("runs"));
        }
        if runs.len() == 8 && runs.iter().all(|r| r.state.is_finished()) {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "runs not finished: {:?}",
            runs.iter().map(|r| (&r.dag_id, r.state)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // No duplicate run: one per DAG and interval.
    let mut intervals: Vec<_> = runs.iter().map(|r| (r.dag_id.clone(), r.logical_date)).collect();
    intervals.sort();
    intervals.dedup();
    assert_eq!(intervals.len(), 8, "one run per DAG and day");
    let mut total = 0;
    let mut retried = 0;
    for run in &runs {
        assert_eq!(run.state, DagRunState::Success, "{} {}", run.dag_id, run.run_id);
        let tis = env.store.run_tis(run.id).await.expect("tis");
        for ti in &tis {
            if ti.task_id != "work" || ti.map_index < 0 {
                continue;
            }
            total += 1;
            assert_eq!(ti.state, TaskState::Success, "{}[{}]", ti.task_id, ti.map_index);
            // The tries table: one try after another, never two at once.
            let tries = env.store.tries(ti.id).await.expect("tries");
            // Running on w1 just before the kill: cut and retried, or ended before the kill
            // (in the moment between the look and the kill).
            let ended_before =
                tries.len() == 1 && tries[0].end_date.is_some_and(|end| end <= after_kill);
            if cut_tis.contains(&ti.id.0) && !ended_before {
                retried += 1;
                assert!(
                    tries.len() >= 2,
                    "{}[{}] ran on w1 when it was killed",
                    ti.dag_id,
                    ti.map_index
                );
                assert!(
                    tries[0].error.as_deref().is_some_and(|e| e.contains("died")),
                    "{:?}",
                    tries[0].error
                );
            }
            for pair in tries.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                assert!(
                    a.end_date.is_some_and(|end| b.start_date.is_some_and(|start| end <= start)),
                    "{}[{}]: try {} had not ended when try {} started",
                    ti.dag_id,
                    ti.map_index,
                    a.try_number,
                    b.try_number
                );
            }
        }
    }
    assert_eq!(total, 2_000, "every instance of every run");
    assert!(retried >= 1, "the tries the killed worker ran were retried: {cut_tis:?}");
    // The files the tasks wrote: every instance ran to its end, never twice at once.
    let ended: std::collections::HashSet<String> =
        executions(&spans).into_iter().filter(|e| e.3.is_some()).map(|e| e.0).collect();
    assert_eq!(ended.len(), 2_000, "each instance's command ran to its end");
    assert_never_twice_at_once(&spans, &[worker_cut.min(scheduler_cut)]);
    drop(procs);
}

/// One task of `secs` on worker A; A is paused (SIGSTOP) past its lease, B takes the retry,
/// A is resumed: its late result is discarded and B's try is the one recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_loses_its_try_and_its_late_result_is_discarded() {
    let Some(env) = pg_env().await else { return };
    let out = env.path("out.log");
    env.write_dag(
        "slow.yaml",
        &format!(
            "dag_id: slow\ndefault_args: {{ retries: 1, retry_delay: 0s }}\ntasks:\n  t:\n    type: bash\n    command: 'sleep 4; echo \"try {{{{ ti.try_number }}}}\" >> {}'\n",
            out.display()
        ),
    );
    let mut procs = Procs(vec![scheduler(&env), worker(&env, "a", "1", &[])]);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("slow").await.is_ok()
    })
    .await;
    env.store.set_paused("slow", false).await.expect("unpause");
    let run = env.trigger("slow", json!({})).await;
    env.wait_until("try 1 running on a", Duration::from_secs(60), || async {
        env.tis(run.id).await.iter().any(|t| {
            t.state == TaskState::Running
                && t.owner_process.as_deref().is_some_and(|o| o.starts_with("a:"))
        })
    })
    .await;
    signal(&procs.0[1], libc::SIGSTOP);
    procs.0.push(worker(&env, "b", "1", &[]));
    let done = env.wait_run(run.id, Duration::from_secs(90)).await;
    signal(&procs.0[1], libc::SIGCONT);
    assert_eq!(done.state, DagRunState::Success);
    let ti = env.tis(run.id).await.remove(0);
    assert_eq!((ti.state, ti.try_number), (TaskState::Success, 2));
    assert!(
        ti.owner_process.as_deref().is_some_and(|o| o.starts_with("b:")),
        "{:?}",
        ti.owner_process
    );
    let tries = env.store.tries(ti.id).await.expect("tries");
    assert_eq!(tries.len(), 2);
    assert_ne!(tries[0].state, TaskState::Success, "try 1 was taken from the paused worker");
    assert!(tries[0].error.as_deref().is_some_and(|e| e.contains("died")), "{:?}", tries[0].error);
    // Resumed, a finds out and discards what its try did.
    env.wait_until("a discards its late result", Duration::from_secs(30), || async {
        env.log(&ti, 1).contains("outcome discarded")
    })
    .await;
    let after = env.tis(run.id).await.remove(0);
    assert_eq!((after.state, after.try_number), (TaskState::Success, 2), "nothing overwritten");
    assert_eq!(common::read(&out).trim(), "try 2", "try 1's command did not finish beside try 2");
    // a is alive and well: it heartbeats again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a_alive = env.store.live_processes().await.expect("processes");
    assert!(
        a_alive.iter().any(|p| p.id.starts_with("a:"))
            || procs.0[1].try_wait().ok().flatten().is_none(),
        "the resumed worker still runs"
    );
    drop(procs);
}

/// The server closes every connection of the workers and schedulers twice while tasks run:
/// every task ends once, none runs twice, none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_connections_are_cut_recovers_without_losing_or_doubling_work() {
    let Some(env) = pg_env().await else { return };
    let spans = env.path("spans.log");
    env.write_dag("cut.yaml", &spans_dag("cut", "", 40, "0.5", &spans));
    let procs = Procs(vec![scheduler(&env), worker(&env, "w", "8", &[])]);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("cut").await.is_ok()
    })
    .await;
    env.store.set_paused("cut", false).await.expect("unpause");
    let run = env.trigger("cut", json!({})).await;
    let db = env.settings.database_url.rsplit('/').next().expect("db name").to_string();
    let admin = std::env::var("UPDRAFT_TEST_DATABASE_URL").expect("test database");
    let mut cut = 0;
    for _ in 0..2 {
        env.wait_until("tries running", Duration::from_secs(60), || async {
            env.tis(run.id).await.iter().any(|t| t.state == TaskState::Running)
        })
        .await;
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.expect("admin connection");
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
        )
        .bind(&db)
        .fetch_one(&mut c)
        .await
        .expect("terminate");
        cut += n;
        let _ = c.close().await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(cut > 0, "connections were cut");
    let done = env.wait_run(run.id, Duration::from_secs(180)).await;
    assert_eq!(done.state, DagRunState::Success, "{}", not_successful(&env, done.id).await);
    let execs = executions(&spans);
    let mut per_item: HashMap<String, usize> = HashMap::new();
    for e in &execs {
        assert!(e.3.is_some(), "{} try {} never ended", e.0, e.1);
        *per_item.entry(e.0.clone()).or_default() += 1;
    }
    assert_eq!(per_item.len(), 40, "every instance ran");
    assert!(per_item.values().all(|n| *n == 1), "no instance ran twice: {per_item:?}");
    for ti in env.tis(run.id).await.iter().filter(|t| t.map_index >= 0) {
        assert_eq!((ti.state, ti.try_number), (TaskState::Success, 1), "[{}]", ti.map_index);
    }
    assert_never_twice_at_once(&spans, &[]);
    drop(procs);
}

/// SIGTERM lets the running try finish (it succeeds, on its first try), gives nothing else
/// away and exits cleanly; the worker's row says it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_tries_finish_then_the_worker_exits() {
    let Some(env) = pg_env().await else { return };
    let out = env.path("out.log");
    env.write_dag(
        "finish.yaml",
        &format!(
            "dag_id: finish\ntasks:\n  t:\n    type: bash\n    command: 'sleep 2; echo finished >> {}'\n",
            out.display()
        ),
    );
    let mut procs = Procs(vec![scheduler(&env), worker(&env, "w", "2", &[])]);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("finish").await.is_ok()
    })
    .await;
    env.store.set_paused("finish", false).await.expect("unpause");
    let run = env.trigger("finish", json!({})).await;
    env.wait_until("the try runs", Duration::from_secs(60), || async {
        env.tis(run.id).await.first().is_some_and(|t| t.state == TaskState::Running)
    })
    .await;
    let status = stop(procs.0.remove(1)).expect("the worker exits within its grace");
    assert!(status.success(), "{status:?}");
    let ti = env.tis(run.id).await.remove(0);
    assert_eq!((ti.state, ti.try_number), (TaskState::Success, 1));
    assert_eq!(common::read(&out).trim(), "finished");
    let workers = env.store.workers(10).await.expect("workers");
    assert!(workers.iter().all(|(p, lost)| p.stopped_at.is_some() && !lost), "{workers:?}");
    drop(procs);
}

/// An instance of a queue no live worker serves stays scheduled, and says so; a worker of that
/// queue runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_no_worker_serves_is_shown_not_silent() {
    let Some(env) = pg_env().await else { return };
    env.write_dag(
        "gpu.yaml",
        "dag_id: gpu\ntasks:\n  train: { type: bash, command: 'true', queue: gpu }\n",
    );
    let mut procs = Procs(vec![scheduler(&env), worker(&env, "cpu", "2", &["default"])]);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("gpu").await.is_ok()
    })
    .await;
    env.store.set_paused("gpu", false).await.expect("unpause");
    let run = env.trigger("gpu", json!({})).await;
    env.wait_until("the instance says why it waits", Duration::from_secs(60), || async {
        env.tis(run.id).await.first().is_some_and(|ti| {
            ti.state == TaskState::Scheduled
                && ti.note.as_deref()
                    == Some("waiting for a worker: no live worker serves queue `gpu`")
        })
    })
    .await;
    procs.0.push(worker(&env, "gpu", "1", &["gpu"]));
    let done = env.wait_run(run.id, Duration::from_secs(60)).await;
    assert_eq!(done.state, DagRunState::Success);
    let ti = env.tis(run.id).await.remove(0);
    assert!(ti.owner_process.as_deref().is_some_and(|o| o.starts_with("gpu:")));
    assert_eq!(ti.note, None, "the note went once it was queued");
}

/// The claim reads the partial index of unowned queued rows, not the table, however many
/// finished instances it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_stays_an_index_scan() {
    let Some(env) = pg_env().await else { return };
    env.write_dag("wide.yaml", "dag_id: wide\ntasks:\n  t: { type: empty }\n");
    let running = env.start().await;
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("wide").await.is_ok()
    })
    .await;
    env.store.set_paused("wide", false).await.expect("unpause");
    let run = env.trigger("wide", json!({})).await;
    env.wait_run(run.id, Duration::from_secs(60)).await;
    running.stop().await;
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&env.settings.database_url).await.expect("connect");
    // 50,000 finished instances beside the one the run has (copies of it, other map indexes).
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'task_instance' \
         AND column_name NOT IN ('id', 'map_index', 'state') ORDER BY ordinal_position",
    )
    .fetch_all(&mut c)
    .await
    .expect("columns");
    let cols = cols.join(", ");
    sqlx::query(&format!(
        "INSERT INTO task_instance (map_index, state, {cols}) SELECT g, 'success', {cols} \
         FROM task_instance, generate_series(1, 50000) AS g WHERE run_pk = $1"
    ))
    .bind(run.id.0)
    .execute(&mut c)
    .await
    .expect("insert");
    sqlx::query("UPDATE task_instance SET state = 'queued', owner_process = NULL WHERE map_index BETWEEN 1 AND 20")
        .execute(&mut c)
        .await
        .expect("queue some");
    sqlx::query("ANALYZE task_instance").execute(&mut c).await.expect("analyze");
    let _ = c.close().await;
    let plan = env.store.explain_claim("default").await.expect("explain");
    assert!(plan.contains("ti_claimable"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

/// Set-ups that cannot work are refused with a sentence naming the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_set_ups_are_refused_clearly() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    let out = updraft(&env, &["scheduler"], &[]).stderr(Stdio::piped()).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("distributed needs PostgreSQL"), "{err}");
    let out = updraft(&env, &["worker"], &[("UPDRAFT_EXECUTOR", "local")])
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("updraft worker needs PostgreSQL"), "{err}");
    // Names that would break the worker's process id (`name:pid:start`) or its stored queue
    // list (comma-separated) are refused before anything is written.
    for (args, says) in [
        (&["worker", "--name", "a:b"][..], "a worker name is not empty and has no `:`"),
        (&["worker", "--queue", "etl,gpu"][..], "a queue name is not empty and has no comma"),
        (&["worker", "--slots", "0"][..], "--slots must be at least 1"),
    ] {
        // A PostgreSQL URL nothing listens on: the arguments are checked before connecting.
        let nowhere = [("UPDRAFT_DATABASE_URL", "postgres://u:p@127.0.0.1:1/none")];
        let out = updraft(&env, args, &nowhere).stderr(Stdio::piped()).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A database the scheduler has not migrated yet: the worker says what to run first.
    let Some(url) = common::fresh_postgres_url().await else { return };
    let out = updraft(&env, &["worker"], &[("UPDRAFT_DATABASE_URL", &url)])
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("run `updraft db migrate`"), "{err}");
}

/// A worker runs at most `--slots` tries at once, however much is queued: the claim takes no
/// more rows than it asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_never_runs_more_than_its_slots() {
    let Some(env) = pg_env().await else { return };
    let spans = env.path("spans.log");
    env.write_dag("many.yaml", &spans_dag("many", "", 60, "0.2", &spans));
    let procs = Procs(vec![scheduler(&env), worker(&env, "w", "3", &[])]);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("many").await.is_ok()
    })
    .await;
    env.store.set_paused("many", false).await.expect("unpause");
    // The scheduler has seen the worker (and its slots) before the run starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let run = env.trigger("many", json!({})).await;
    // Nothing is queued beyond what the live workers can take: queued and running together
    // stay within the worker's slots.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut most_in_flight = 0;
    let done = loop {
        let r = env.store.get_run(run.id).await.expect("run");
        if r.state.is_finished() {
            break r;
        }
        let tis = env.tis(run.id).await;
        let in_flight = tis
            .iter()
            .filter(|t| matches!(t.state, TaskState::Queued | TaskState::Running))
            .count();
        most_in_flight = most_in_flight.max(in_flight);
        assert!(Instant::now() < deadline, "run not finished");
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    assert!(most_in_flight <= 3, "{most_in_flight} queued or running for 3 slots");
    assert_eq!(done.state, DagRunState::Success);
    // The most executions open at one moment, from the files the tasks wrote.
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for (_, _, start, end) in executions(&spans) {
        edges.push((start, 1));
        edges.push((end.expect("ended"), -1));
    }
    edges.sort();
    let (mut open, mut most) = (0, 0);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    assert!(most <= 3, "{most} tries ran at once on a worker of 3 slots");
    assert_eq!(most, 3, "the slots were used");
    drop(procs);
}

/// SIGTERM with a try that outlasts the grace: the try is cancelled and handed back (it runs
/// again on another worker without using up a try, though the task has no retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_past_the_shutdown_grace_is_handed_back_to_another_worker() {
    let Some(env) = pg_env().await else { return };
    env.write_dag(
        "long.yaml",
        "dag_id: long\ntasks:\n  t:\n    type: bash\n    command: 'if [ {{ ti.try_number }} = 1 ]; then sleep 60; fi; echo ran'\n",
    );
    let first = updraft(&env, &["worker", "--name", "first", "--grace", "1s"], &[])
        .spawn()
        .expect("start a worker");
    let mut procs = Procs(vec![scheduler(&env), first]);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("long").await.is_ok()
    })
    .await;
    env.store.set_paused("long", false).await.expect("unpause");
    let run = env.trigger("long", json!({})).await;
    env.wait_until("try 1 runs", Duration::from_secs(60), || async {
        env.tis(run.id).await.first().is_some_and(|t| t.state == TaskState::Running)
    })
    .await;
    let status = stop(procs.0.remove(1)).expect("the worker exits after its grace");
    assert!(status.success(), "{status:?}");
    procs.0.push(worker(&env, "second", "1", &[]));
    let done = env.wait_run(run.id, Duration::from_secs(60)).await;
    assert_eq!(done.state, DagRunState::Success, "{}", not_successful(&env, done.id).await);
    let ti = env.tis(run.id).await.remove(0);
    assert_eq!((ti.try_number, ti.max_tries), (2, 2), "try 1 was not counted");
    assert!(ti.owner_process.as_deref().is_some_and(|o| o.starts_with("second:")));
    let tries = env.store.tries(ti.id).await.expect("tries");
    assert_eq!(tries[0].state, TaskState::UpForRetry);
    assert!(tries[0].error.as_deref().is_some_and(|e| e.contains("handed back")), "{tries:?}");
}
