//! kill -9 of the scheduler process, then a restart: in the middle of a 100-task run every task
//! ends in a final state and no task ever ran twice at the same time; a try whose command left
//! background processes (plain, `setsid`, double-forked) has none of them alive when its next
//! try starts, with and without a cgroup per try; a task marked success while its worker was
//! dead is stopped before its downstream task starts.

use crate::support::common;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Db, Env};
use serde_json::json;
use updraft::model::{DagRunState, TaskState, user_change};
use updraft::store::TiChange;

fn start_scheduler(env: &Env) -> Child {
    start_scheduler_with(env, &[])
}

fn start_scheduler_with(env: &Env, vars: &[(&str, &str)]) -> Child {
    env.scheduler_process(vars.iter().copied())
}

async fn kill_and_restart(env: Env) {
    let spans = env.path("spans.log");
    let mut yaml =
        String::from("dag_id: hundred\ndefault_args: { retries: 3, retry_delay: 0s }\ntasks:\n");
    for i in 0..100 {
        yaml.push_str(&format!(
            "  t{i}:\n    type: bash\n    command: 'echo start {i} $(date +%s%N) >> {s}; sleep 0.2; echo end {i} $(date +%s%N) >> {s}'\n",
            s = spans.display()
        ));
        if i >= 10 {
            yaml.push_str(&format!("    depends_on: [t{}]\n", i - 10));
        }
    }
    env.write_dag("hundred.yaml", &yaml);
    let mut first = start_scheduler(&env);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("hundred").await.is_ok()
    })
    .await;
    let run = env.trigger("hundred", json!({})).await;
    env.wait_until("30 tasks done", Duration::from_secs(120), || async {
        env.tis(run.id).await.iter().filter(|t| t.state == TaskState::Success).count() >= 30
    })
    .await;
    first.kill().expect("kill -9");
    let _ = first.wait();
    let killed_at = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u128;
    let running_at_kill =
        env.tis(run.id).await.iter().filter(|t| t.state == TaskState::Running).count();
    // Kept sleep, longer than a task's command: without PR_SET_PDEATHSIG an orphaned command
    // would finish (and write its end line) before the restart's recovery could kill it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut second = start_scheduler(&env);
    let done = env.wait_run(run.id, Duration::from_secs(180)).await;
    // SAFETY: SIGTERM asks the scheduler to stop gracefully.
    unsafe { libc::kill(second.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while second.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = second.kill();

    assert_eq!(done.state, DagRunState::Success);
    let tis = env.tis(run.id).await;
    assert_eq!(tis.len(), 100);
    assert!(tis.iter().all(|t| t.state == TaskState::Success), "every task ended in success");
    assert!(running_at_kill > 0, "the kill hit tasks while they ran");
    assert!(tis.iter().any(|t| t.try_number == 2), "interrupted tasks were retried");

    // Per task, its executions must not overlap: an execution cut by the kill ends at the kill.
    let mut events: HashMap<u32, Vec<(u128, bool)>> = HashMap::new();
    for line in common::read(&spans).lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let (Some(kind), Some(task), Some(ts)) = (parts.first(), parts.get(1), parts.get(2)) else {
            continue;
        };
        let (Ok(task), Ok(ts)) = (task.parse::<u32>(), ts.parse::<u128>()) else { continue };
        events.entry(task).or_default().push((ts, *kind == "start"));
    }
    assert_eq!(events.len(), 100, "every task ran");
    for (task, mut evs) in events {
        evs.sort();
        let mut open: Option<u128> = None;
        for (ts, is_start) in evs {
            if !is_start && let Some(started) = open {
                // A command running at the kill died with Updraft (PR_SET_PDEATHSIG): it never
                // finished afterwards.
                assert!(
                    !(started < killed_at && ts > killed_at + 100_000_000),
                    "task t{task}'s command outlived the killed scheduler"
                );
            }
            if is_start {
                if let Some(prev) = open {
                    assert!(
                        prev < killed_at && ts > killed_at,
                        "task t{task} started twice at once"
                    );
                }
                open = Some(ts);
            } else {
                open = None;
            }
        }
        assert!(open.is_none(), "task t{task}'s last execution finished");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_restart_sqlite() {
    kill_and_restart(Env::new(Db::Sqlite).await.expect("env")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_restart_postgres() {
    if let Some(env) = Env::new(Db::Postgres).await {
        kill_and_restart(env).await;
    }
}

/// Kills the scheduler with SIGKILL and reaps it.
fn kill_9(mut child: Child) {
    child.kill().expect("kill -9");
    let _ = child.wait();
}

/// Stops the scheduler with SIGTERM (bounded), then SIGKILL.
fn stop(mut child: Child) {
    // SAFETY: SIGTERM asks the scheduler to stop gracefully.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether `pid` is a live process (a zombie counts as gone: it runs no code).
fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some(s) if s != 'Z' && s != 'X')
}

/// Waits (at most 5 s) until `pid` has left the process table: the try's bash, killed with
/// the scheduler, was reaped by init, as it is at once on an ordinary system. (Until then the
/// zombie still names its process group, which would hide what recovery must do without it.)
async fn wait_reaped(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pids_in(path: &std::path::Path) -> Vec<i32> {
    common::read(path).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// SIGKILLs every listed process still alive, so a failing test leaves nothing behind.
fn cleanup(pids: &[i32]) {
    for &pid in pids {
        if alive(pid) {
            // SAFETY: kill(2) on a pid this test's task wrote; no memory involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// One task whose first try runs `inner` (which appends the pids it starts to `PIDS`) under a
/// nested bash, and whose second try, as its very first action, lists every process of the
/// first try that is still alive. kill -9 of the scheduler during try 1, then a restart.
async fn no_process_of_try_1_is_alive_when_try_2_starts(
    env: Env,
    inner: &str,
    vars: &[(&str, &str)],
) {
    let pids = env.path("pids");
    let report = env.path("report");
    let inner = inner.replace("PIDS", &pids.display().to_string());
    let yaml = format!(
        r#"dag_id: contain
default_args: {{ retries: 1, retry_delay: 0s }}
tasks:
  t:
    type: bash
    command: |
      if [ "$UPDRAFT_CTX_TRY_NUMBER" = 1 ]; then
        echo $$ >> {pids}
        bash -c '{inner}'
      else
        for p in $(cat {pids}); do
          if [ -d /proc/$p ] && [ "$(cut -d' ' -f3 /proc/$p/stat)" != Z ]; then
            echo "alive $p $(tr '\0' ' ' < /proc/$p/cmdline)"
          fi
        done > {report}
        echo checked >> {report}
      fi
"#,
        pids = pids.display(),
        report = report.display(),
    );
    env.write_dag("contain.yaml", &yaml);
    let expected = inner.matches("echo $").count() + 1;
    let first = start_scheduler_with(&env, vars);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("contain").await.is_ok()
    })
    .await;
    let run = env.trigger("contain", json!({})).await;
    env.wait_until("try 1 started all its processes", Duration::from_secs(60), || async {
        pids_in(&pids).len() >= expected
    })
    .await;
    kill_9(first);
    let started = pids_in(&pids);
    // The scenario is real: the kill left processes of try 1 running, orphaned.
    assert!(
        started.iter().any(|&p| alive(p)),
        "some process of try 1 outlived the kill: {started:?}"
    );
    wait_reaped(started[0]).await;
    let second = start_scheduler_with(&env, vars);
    let done = env.wait_run(run.id, Duration::from_secs(60)).await;
    stop(second);
    let survivors: Vec<i32> = started.iter().copied().filter(|&p| alive(p)).collect();
    cleanup(&started);
    let report = common::read(&report);
    assert_eq!(done.state, DagRunState::Success, "report: {report}");
    let ti = &env.tis(run.id).await[0];
    assert_eq!((ti.state, ti.try_number), (TaskState::Success, 2));
    assert!(report.contains("checked"), "try 2 ran its check: {report}");
    assert!(!report.contains("alive"), "processes of try 1 ran beside try 2: {report}");
    assert!(survivors.is_empty(), "processes of try 1 still alive at the end: {survivors:?}");
}

/// Background children of a nested bash: one process group, one session.
const PLAIN: &str = "sleep 30 & echo $! >> PIDS; sleep 30 & echo $! >> PIDS; echo $$ >> PIDS; wait";

/// A child that left the session (`setsid`), a grandchild that left it and was orphaned at once
/// (a double fork), and a plain child.
const ESCAPING: &str = "setsid sleep 30 & echo $! >> PIDS; (setsid sleep 30 & echo $! >> PIDS); \
     sleep 30 & echo $! >> PIDS; echo $$ >> PIDS; wait";

/// Forces the fallback without a cgroup per try: process group, session and the try's
/// environment marker.
const NO_CGROUPS: &[(&str, &str)] = &[("UPDRAFT_TRY_CGROUPS", "off")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_background_children_then_restart() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    no_process_of_try_1_is_alive_when_try_2_starts(env, PLAIN, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_setsid_grandchildren_then_restart() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    no_process_of_try_1_is_alive_when_try_2_starts(env, ESCAPING, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_background_children_then_restart_without_cgroups() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    no_process_of_try_1_is_alive_when_try_2_starts(env, PLAIN, NO_CGROUPS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_setsid_grandchildren_then_restart_without_cgroups() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    no_process_of_try_1_is_alive_when_try_2_starts(env, ESCAPING, NO_CGROUPS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_setsid_grandchildren_then_restart_postgres() {
    if let Some(env) = Env::new(Db::Postgres).await {
        no_process_of_try_1_is_alive_when_try_2_starts(env, ESCAPING, &[]).await;
    }
}

/// A task marked success while the process running it is dead: the restarted scheduler kills
/// what is left of its command, records success (no retry), and only then does the downstream
/// task start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_success_while_the_worker_is_dead_is_applied_after_the_kill() {
    let env = Env::new(Db::Sqlite).await.expect("env");
    let pids = env.path("pids");
    let report = env.path("report");
    env.write_dag(
        "marked.yaml",
        &format!(
            r#"dag_id: marked
default_args: {{ retries: 2, retry_delay: 0s }}
tasks:
  slow:
    type: bash
    command: echo $$ >> {pids}; sleep 30 & echo $! >> {pids}; wait
  after:
    type: bash
    depends_on: [slow]
    command: |
      for p in $(cat {pids}); do
        if [ -d /proc/$p ] && [ "$(cut -d' ' -f3 /proc/$p/stat)" != Z ]; then echo "alive $p"; fi
      done > {report}
      echo checked >> {report}
"#,
            pids = pids.display(),
            report = report.display()
        ),
    );
    let first = start_scheduler(&env);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("marked").await.is_ok()
    })
    .await;
    let run = env.trigger("marked", json!({})).await;
    env.wait_until("slow started", Duration::from_secs(60), || async { pids_in(&pids).len() >= 2 })
        .await;
    kill_9(first);
    let started = pids_in(&pids);
    assert!(started.iter().any(|&p| alive(p)), "the kill left the sleep running");
    let slow = env.tis(run.id).await.into_iter().find(|t| t.task_id == "slow").expect("slow");
    assert_eq!(slow.state, TaskState::Running);
    wait_reaped(started[0]).await;
    let write = user_change::mark(slow.state, TaskState::Success).expect("may be marked");
    let mark = TiChange { id: slow.id, from: slow.state, write };
    let marked =
        env.store.change_tis(run.id, &[mark], "marked", chrono::Utc::now()).await.expect("mark");
    assert_eq!(marked, 1, "the mark of a running instance is accepted");
    let second = start_scheduler(&env);
    let done = env.wait_run(run.id, Duration::from_secs(60)).await;
    stop(second);
    cleanup(&started);
    let report = common::read(&report);
    assert_eq!(done.state, DagRunState::Success, "report: {report}");
    let slow = env.tis(run.id).await.into_iter().find(|t| t.task_id == "slow").expect("slow");
    assert_eq!((slow.state, slow.try_number), (TaskState::Success, 1), "marked, not retried");
    assert!(report.contains("checked"), "the downstream task ran: {report}");
    assert!(
        !report.contains("alive"),
        "the downstream task started beside slow's command: {report}"
    );
}
