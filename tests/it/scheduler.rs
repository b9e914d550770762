//! The scheduler end to end: real DAG files, the real scheduler and local executor, on SQLite
//! and on PostgreSQL.

use crate::support::common;

use std::time::Duration;

use common::{Db, Env, assert_success, both};
use serde_json::json;
use updraft::model::{DagRunState, TaskState};

const LIMIT: Duration = Duration::from_secs(60);

both!(
    chain_passes_xcom_and_params,
    retries_then_success,
    trigger_rules_and_branching,
    foreach_fans_out_and_joins,
    timeout_kills_the_command,
    sensors_reschedule_and_time_out,
    max_active_runs_is_enforced,
    pools_limit_concurrency,
    catchup_creates_one_run_per_interval,
    dag_files_are_watched,
    trigger_dag_and_external_sensor,
    pause_holds_runs_and_clean_removes_history,
    priority_and_sequential_order,
    shutdown_lets_running_tries_finish,
    a_waiting_task_says_what_it_waits_for,
);

async fn chain_passes_xcom_and_params(env: Env) {
    env.write_dag(
        "chain.yaml",
        r#"
dag_id: chain
params: { greeting: hello, n: 3 }
tasks:
  first:
    type: bash
    command: echo "{{ params.greeting }}-{{ params.n }}"
  second:
    type: bash
    depends_on: [first]
    command: echo "got {{ ti.xcom_pull('first') }} in {{ dag_id }}.{{ task_id }} for {{ ds }}"
  third:
    type: bash
    depends_on: second
    command: echo "{{ ti.xcom_pull(task_ids='second') }}"
"#,
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("chain").await.is_ok() })
        .await;
    let run = env.trigger("chain", json!({"n": 7})).await;
    let done = env.wait_run(run.id, LIMIT).await;
    assert_success(&done);
    let xcoms = env.store.run_xcoms(run.id).await.unwrap();
    let third = xcoms.iter().find(|x| x.task_id == "third").expect("third pushed XCom");
    let ds = run.logical_date.format("%Y-%m-%d").to_string();
    assert_eq!(third.value, json!(format!("got hello-7 in chain.second for {ds}")));
    let tis = env.tis(run.id).await;
    assert!(tis.iter().all(|t| t.try_number == 1 && t.state == TaskState::Success));
    assert!(env.log(&tis[0], 1).contains("hello-7"), "log has the command output");
    running.stop().await;
}

async fn retries_then_success(env: Env) {
    let marker = env.path("tries");
    env.write_dag(
        "flaky.yaml",
        &format!(
            r#"
dag_id: flaky
default_args: {{ retries: 2, retry_delay: 0s }}
tasks:
  flaky:
    type: bash
    command: echo x >> {m}; test $(wc -l < {m}) -ge 2
  always_fails:
    type: bash
    retries: 1
    command: exit 3
"#,
            m = marker.display()
        ),
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("flaky").await.is_ok() })
        .await;
    let run = env.trigger("flaky", json!({})).await;
    let done = env.wait_run(run.id, LIMIT).await;
    assert_eq!(done.state, DagRunState::Failed, "a leaf failed");
    let tis = env.tis(run.id).await;
    let flaky = tis.iter().find(|t| t.task_id == "flaky").unwrap();
    assert_eq!((flaky.state, flaky.try_number), (TaskState::Success, 2));
    let fails = tis.iter().find(|t| t.task_id == "always_fails").unwrap();
    assert_eq!((fails.state, fails.try_number), (TaskState::Failed, 2));
    let tries = env.store.tries(fails.id).await.unwrap();
    assert_eq!(tries.len(), 2);
    assert_eq!(tries[0].state, TaskState::UpForRetry);
    assert!(tries[1].error.as_deref().unwrap_or("").contains('3'), "error names the exit code");
    for t in &tries {
        assert!(
            t.runnable_at.is_some()
                && t.queued_at.is_some()
                && t.start_date.is_some()
                && t.end_date.is_some()
        );
        assert!(t.queued_at <= t.start_date && t.start_date <= t.end_date);
    }
    running.stop().await;
}

async fn trigger_rules_and_branching(env: Env) {
    env.write_dag(
        "branch.yaml",
        r#"
dag_id: branch
tasks:
  start: { type: empty }
  skip_me: { type: bash, depends_on: [start], command: "exit 99" }
  fail_me: { type: bash, depends_on: [start], command: "exit 1" }
  after_skip: { type: bash, depends_on: [skip_me], command: "echo never" }
  after_fail: { type: empty, depends_on: [fail_me] }
  join_none_failed: { type: empty, depends_on: [skip_me, start], trigger_rule: none_failed }
  on_failure: { type: empty, depends_on: [fail_me], trigger_rule: one_failed }
  cleanup: { type: empty, depends_on: [after_fail, after_skip, on_failure], trigger_rule: all_done }
"#,
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("branch").await.is_ok() })
        .await;
    let run = env.trigger("branch", json!({})).await;
    let done = env.wait_run(run.id, LIMIT).await;
    let expect = [
        ("start", TaskState::Success),
        ("skip_me", TaskState::Skipped),
        ("fail_me", TaskState::Failed),
        ("after_skip", TaskState::Skipped),
        ("after_fail", TaskState::UpstreamFailed),
        ("join_none_failed", TaskState::Success),
        ("on_failure", TaskState::Success),
        ("cleanup", TaskState::Success),
    ];
    for (task, state) in expect {
        assert_eq!(env.state(run.id, task).await, state, "task {task}");
    }
    // Leaves: join_none_failed and cleanup succeeded, so the run succeeds like Airflow's.
    assert_success(&done);
    running.stop().await;
}

async fn foreach_fans_out_and_joins(env: Env) {
    env.write_dag(
        "fan.yaml",
        r#"
dag_id: fan
tasks:
  list:
    type: bash
    command: echo '["a", "b", "c", "d"]'
  static_map:
    type: bash
    foreach: [1, 2, 3]
    command: echo "static {{ item }}"
  dynamic_map:
    type: bash
    depends_on: [list]
    foreach: "{{ ti.xcom_pull('list') }}"
    command: echo "{{ item }}{{ map_index }}"
  join:
    type: bash
    depends_on: [dynamic_map, static_map]
    command: echo "{{ ti.xcom_pull('dynamic_map') | join(',') }}"
"#,
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("fan").await.is_ok() }).await;
    let run = env.trigger("fan", json!({})).await;
    assert_success(&env.wait_run(run.id, LIMIT).await);
    let tis = env.tis(run.id).await;
    let mapped: Vec<i64> =
        tis.iter().filter(|t| t.task_id == "dynamic_map").map(|t| t.map_index).collect();
    assert_eq!(mapped, vec![0, 1, 2, 3]);
    assert_eq!(tis.iter().filter(|t| t.task_id == "static_map").count(), 3);
    let xcoms = env.store.run_xcoms(run.id).await.unwrap();
    let join = xcoms.iter().find(|x| x.task_id == "join").unwrap();
    assert_eq!(join.value, json!("a0,b1,c2,d3"));
    running.stop().await;
}

async fn timeout_kills_the_command(env: Env) {
    let pidfile = env.path("sleeper.pid");
    env.write_dag(
        "slow.yaml",
        &format!(
            r#"
dag_id: slow
tasks:
  slow:
    type: bash
    execution_timeout: 1s
    command: "sleep 30 & echo $! > {}; wait"
"#,
            pidfile.display()
        ),
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("slow").await.is_ok() }).await;
    let started = std::time::Instant::now();
    let run = env.trigger("slow", json!({})).await;
    let done = env.wait_run(run.id, LIMIT).await;
    assert_eq!(done.state, DagRunState::Failed);
    assert!(started.elapsed() < Duration::from_secs(20), "the timeout cut the 30 s command short");
    let ti = &env.tis(run.id).await[0];
    assert!(ti.note.as_deref().unwrap_or("").contains("execution_timeout"), "note: {:?}", ti.note);
    let pid: i32 = common::read(&pidfile).trim().parse().expect("pid written");
    // SAFETY: signal 0 only checks existence.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the background child of the timed-out command was killed too");
    running.stop().await;
}

async fn sensors_reschedule_and_time_out(env: Env) {
    let flag = env.path("ready.flag");
    env.write_dag(
        "sense.yaml",
        &format!(
            r#"
dag_id: sense
tasks:
  wait_file:
    type: file_sensor
    path: {}
    poke_interval: 200ms
    timeout: 30s
  never:
    type: file_sensor
    path: /nonexistent/updraft/never
    poke_interval: 100ms
    timeout: 500ms
  never_soft:
    type: file_sensor
    path: /nonexistent/updraft/never
    poke_interval: 100ms
    timeout: 500ms
    soft_fail: true
"#,
            flag.display()
        ),
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("sense").await.is_ok() })
        .await;
    let run = env.trigger("sense", json!({})).await;
    env.wait_until("a reschedule", LIMIT, || async {
        env.tis(run.id)
            .await
            .iter()
            .any(|t| t.task_id == "wait_file" && t.state == TaskState::UpForReschedule)
    })
    .await;
    std::fs::write(&flag, "ok").unwrap();
    env.wait_run(run.id, LIMIT).await;
    assert_eq!(env.state(run.id, "wait_file").await, TaskState::Success);
    assert_eq!(env.state(run.id, "never").await, TaskState::Failed);
    assert_eq!(env.state(run.id, "never_soft").await, TaskState::Skipped);
    let tis = env.tis(run.id).await;
    let wait = tis.iter().find(|t| t.task_id == "wait_file").unwrap();
    assert_eq!(wait.try_number, 1, "re-pokes do not use up tries");
    running.stop().await;
}

async fn max_active_runs_is_enforced(env: Env) {
    env.write_dag(
        "one.yaml",
        "dag_id: one\nmax_active_runs: 1\ntasks:\n  t: { type: bash, command: sleep 0.3 }\n",
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("one").await.is_ok() }).await;
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(env.trigger("one", json!({})).await);
    }
    let mut done = Vec::new();
    for r in &runs {
        done.push(env.wait_run(r.id, LIMIT).await);
    }
    let mut spans: Vec<_> =
        done.iter().map(|r| (r.start_date.unwrap(), r.end_date.unwrap())).collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "runs overlapped: {w:?}");
    }
    running.stop().await;
}

async fn pools_limit_concurrency(env: Env) {
    env.store.set_pool("single", 1, "one at a time").await.unwrap();
    let out = env.path("spans");
    env.write_dag(
        "pooled.yaml",
        &format!(
            r#"
dag_id: pooled
tasks:
  work:
    type: bash
    pool: single
    foreach: [1, 2, 3, 4]
    command: "echo start $(date +%s%N) >> {o}; sleep 0.2; echo end $(date +%s%N) >> {o}"
"#,
            o = out.display()
        ),
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("pooled").await.is_ok() })
        .await;
    let run = env.trigger("pooled", json!({})).await;
    assert_success(&env.wait_run(run.id, LIMIT).await);
    let lines = common::read(&out);
    let kinds: Vec<&str> = lines.lines().map(|l| l.split(' ').next().unwrap_or("")).collect();
    assert_eq!(kinds.len(), 8);
    assert!(
        kinds.chunks(2).all(|c| c == ["start", "end"]),
        "never two in the pool at once: {kinds:?}"
    );
    running.stop().await;
}

async fn catchup_creates_one_run_per_interval(env: Env) {
    let start = (chrono::Utc::now() - chrono::Duration::days(3)).format("%Y-%m-%d");
    env.write_dag(
        "daily.yaml",
        &format!("dag_id: daily\nschedule: '@daily'\nstart_date: {start}\ncatchup: true\nmax_active_runs: 2\ntasks:\n  t: {{ type: empty }}\n"),
    );
    env.write_dag(
        "latest.yaml",
        &format!("dag_id: latest\nschedule: '@daily'\nstart_date: {start}\ncatchup: false\ntasks:\n  t: {{ type: empty }}\n"),
    );
    let running = env.start().await;
    env.wait_until("3 daily runs done", LIMIT, || async {
        let runs = env.store.list_runs("daily", None, 100).await.unwrap();
        runs.len() == 3 && runs.iter().all(|r| r.state == DagRunState::Success)
    })
    .await;
    let runs = env.store.list_runs("daily", None, 100).await.unwrap();
    for r in &runs {
        assert_eq!(r.data_interval_end - r.data_interval_start, chrono::Duration::days(1));
        assert_eq!(r.logical_date, r.data_interval_start);
        assert!(r.run_id.starts_with("scheduled__"));
    }
    env.wait_until("latest ran once", LIMIT, || async {
        let runs = env.store.list_runs("latest", None, 100).await.unwrap();
        runs.len() == 1 && runs[0].state == DagRunState::Success
    })
    .await;
    let dag = env.store.get_dag("daily").await.unwrap();
    assert!(
        dag.next_dagrun.unwrap() > chrono::Utc::now() - chrono::Duration::days(1),
        "next run is the coming interval"
    );
    running.stop().await;
}

async fn dag_files_are_watched(env: Env) {
    env.write_dag("a.yaml", "dag_id: a\ntasks:\n  t: { type: empty }\n");
    let running = env.start().await;
    env.wait_until("a loaded", LIMIT, || async { env.store.get_dag("a").await.is_ok() }).await;
    let added = std::time::Instant::now();
    env.write_dag("b.yaml", "dag_id: b\ntasks:\n  t: { type: empty }\n");
    env.write_dag("broken.yaml", "dag_id: broken\ntasks:\n  t: { type: nope }\n");
    env.wait_until("b loaded", LIMIT, || async { env.store.get_dag("b").await.is_ok() }).await;
    assert!(added.elapsed() < Duration::from_secs(2), "picked up by the watcher, not a slow poll");
    env.wait_until("import error recorded", LIMIT, || async {
        env.store
            .import_errors()
            .await
            .unwrap()
            .iter()
            .any(|e| e.file.ends_with("broken.yaml") && e.line == 3 && e.message.contains("nope"))
    })
    .await;
    std::fs::remove_file(env.dags_dir().join("a.yaml")).unwrap();
    env.wait_until("a deactivated", LIMIT, || async {
        !env.store.get_dag("a").await.unwrap().is_active
    })
    .await;
    assert!(env.store.get_dag("b").await.unwrap().is_active);
    running.stop().await;
}

async fn trigger_dag_and_external_sensor(env: Env) {
    env.write_dag(
        "child.yaml",
        "dag_id: child\ntasks:\n  work:\n    type: bash\n    command: echo '{{ params.who }}'\n",
    );
    env.write_dag(
        "parent.yaml",
        r#"
dag_id: parent
tasks:
  kick:
    type: trigger_dag
    trigger_dag_id: child
    conf: { who: "{{ dag_id }}" }
    wait_for_completion: true
    poke_interval: 100ms
"#,
    );
    let running = env.start().await;
    env.wait_until("DAGs loaded", LIMIT, || async {
        env.store.get_dag("parent").await.is_ok() && env.store.get_dag("child").await.is_ok()
    })
    .await;
    let run = env.trigger("parent", json!({})).await;
    assert_success(&env.wait_run(run.id, LIMIT).await);
    let child_runs = env.store.list_runs("child", None, 10).await.unwrap();
    assert_eq!(child_runs.len(), 1);
    assert_eq!(child_runs[0].state, DagRunState::Success);
    assert_eq!(child_runs[0].conf["who"], json!("parent"));
    // An external sensor on the child's run (same logical date).
    env.write_dag(
        "watcher.yaml",
        &format!(
            "dag_id: watcher\ntasks:\n  wait:\n    type: external_task_sensor\n    external_dag_id: child\n    external_task_id: work\n    logical_date: '{}'\n    poke_interval: 100ms\n    timeout: 10s\n",
            child_runs[0].logical_date.to_rfc3339()
        ),
    );
    env.wait_until("watcher loaded", LIMIT, || async {
        env.store.get_dag("watcher").await.is_ok()
    })
    .await;
    let w = env.trigger("watcher", json!({})).await;
    assert_success(&env.wait_run(w.id, LIMIT).await);
    running.stop().await;
}

async fn pause_holds_runs_and_clean_removes_history(env: Env) {
    env.write_dag("p.yaml", "dag_id: p\ntasks:\n  t: { type: bash, command: echo hi }\n");
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("p").await.is_ok() }).await;
    env.store.set_paused("p", true).await.unwrap();
    // Kept sleeps: what is tested is that nothing happens. The first lets a pass that began
    // before the pause end; the second gives the scheduler four polls (200 ms) to wrongly
    // start the run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = env.trigger("p", json!({})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        env.store.get_run(run.id).await.unwrap().state,
        DagRunState::Queued,
        "paused: not started"
    );
    env.store.set_paused("p", false).await.unwrap();
    assert_success(&env.wait_run(run.id, LIMIT).await);
    let ti = env.tis(run.id).await.remove(0);
    assert!(!env.log(&ti, 1).is_empty());
    running.stop().await;
    // A worker that stopped, and one still running.
    let now = chrono::Utc::now();
    for id in ["gone:1:1", "here:2:2"] {
        let p = updraft::store::ProcessRow {
            id: id.into(),
            kind: "worker".into(),
            ..Default::default()
        };
        env.store.heartbeat(&p, now).await.unwrap();
    }
    env.store.process_stopped("gone:1:1", now).await.unwrap();
    // Nothing is older than a day ago; everything is older than an hour from now.
    let cutoff = chrono::Utc::now() - chrono::Duration::days(1);
    assert!(env.store.clean_before(cutoff).await.unwrap().is_empty());
    let deleted =
        env.store.clean_before(chrono::Utc::now() + chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(deleted, vec![("p".to_string(), run.run_id.clone())]);
    assert!(env.store.list_runs("p", None, 10).await.unwrap().is_empty());
    assert!(env.store.run_tis(run.id).await.unwrap().is_empty());
    assert!(env.store.tries(ti.id).await.unwrap().is_empty());
    assert!(env.store.run_xcoms(run.id).await.unwrap().is_empty());
    let workers: Vec<String> =
        env.store.workers(10).await.unwrap().into_iter().map(|(p, _)| p.id).collect();
    assert_eq!(workers, ["here:2:2"], "the stopped worker's row went, the live one stayed");
}

async fn priority_and_sequential_order(env: Env) {
    let mut env = env;
    env.settings.executor = updraft::config::ExecutorKind::Sequential;
    let out = env.path("order");
    env.write_dag(
        "prio.yaml",
        &format!(
            "dag_id: prio\ntasks:\n  low: {{ type: bash, priority_weight: 1, command: 'echo low >> {o}' }}\n  high: {{ type: bash, priority_weight: 10, command: 'echo high >> {o}' }}\n  mid: {{ type: bash, priority_weight: 5, command: 'echo mid >> {o}' }}\n",
            o = out.display()
        ),
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("prio").await.is_ok() }).await;
    let run = env.trigger("prio", json!({})).await;
    assert_success(&env.wait_run(run.id, LIMIT).await);
    assert_eq!(common::read(&out), "high\nmid\nlow\n", "one slot, highest priority first");
    let tis = env.tis(run.id).await;
    let mut spans: Vec<_> =
        tis.iter().map(|t| (t.start_date.unwrap(), t.end_date.unwrap())).collect();
    spans.sort();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "sequential: never two at once");
    running.stop().await;
}

async fn shutdown_lets_running_tries_finish(env: Env) {
    env.write_dag(
        "slowish.yaml",
        "dag_id: slowish\ntasks:\n  t: { type: bash, command: 'sleep 1; echo finished' }\n",
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("slowish").await.is_ok() })
        .await;
    let run = env.trigger("slowish", json!({})).await;
    env.wait_until("task running", LIMIT, || async {
        env.tis(run.id).await.iter().any(|t| t.state == TaskState::Running)
    })
    .await;
    running.stop().await;
    let ti = env.tis(run.id).await.remove(0);
    assert_eq!(ti.state, TaskState::Success, "the try finished within the shutdown grace");
    assert!(env.log(&ti, 1).contains("finished"));
}

async fn a_waiting_task_says_what_it_waits_for(env: Env) {
    let flag = env.path("go");
    env.write_dag(
        "gate.yaml",
        &format!(
            r#"
dag_id: gate
tasks:
  gate:
    type: bash
    execution_timeout: 60s
    command: until [ -e {f} ]; do sleep 0.02; done
  after: {{ type: bash, command: 'true', depends_on: [gate] }}
  last: {{ type: empty, depends_on: [after] }}
"#,
            f = flag.display()
        ),
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("gate").await.is_ok() }).await;
    let run = env.trigger("gate", json!({})).await;
    let note_of = |task_id: &'static str| {
        let env = &env;
        async move {
            let tis = env.tis(run.id).await;
            tis.into_iter().find(|t| t.task_id == task_id).and_then(|t| t.note)
        }
    };
    // The next poll after the gate starts records what the API and the UI show.
    env.wait_until("the wait is noted", LIMIT, || async {
        note_of("after").await.as_deref() == Some("waiting for upstream gate (running)")
    })
    .await;
    assert_eq!(note_of("last").await.as_deref(), Some("waiting for upstream after (none)"));
    std::fs::write(&flag, "").unwrap();
    assert_success(&env.wait_run(run.id, LIMIT).await);
    assert_eq!(note_of("after").await, None, "no stale reason once it ran");
    running.stop().await;
}
