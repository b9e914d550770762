//! kill -9 of the scheduler process in the middle of a 100-task run, then a restart: every task
//! ends in a final state and no task ever ran twice at the same time.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Db, Env};
use serde_json::json;
use updraft::model::{DagRunState, TaskState};

fn start_scheduler(env: &Env) -> Child {
    Command::new(env!("CARGO_BIN_EXE_updraft"))
        .arg("scheduler")
        .env("UPDRAFT_HOME", &env.settings.home)
        .env("UPDRAFT_DAGS_FOLDER", env.dags_dir())
        .env("UPDRAFT_DATABASE_URL", &env.settings.database_url)
        .env("UPDRAFT_PARALLELISM", "8")
        .env("UPDRAFT_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start updraft scheduler")
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
    // Longer than a task's command: without PR_SET_PDEATHSIG an orphaned command would finish
    // (and write its end line) before the restart's recovery could kill it.
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
