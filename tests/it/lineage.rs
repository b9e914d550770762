//! OpenLineage end to end, on SQLite without other servers: the file transport, every event of
//! a run checked against the OpenLineage schemas (`tests/data/openlineage`, Python's
//! `jsonschema`): a task that succeeds (START, COMPLETE), one that fails and is retried (a FAIL
//! per try, with the error), the run's FAIL naming the failed task, a run a user marks failed
//! while it runs (ABORT for the run and its try); and an endpoint that never answers: the run
//! goes on as without lineage and the queue's overflow is counted in `/metrics`. The datasets
//! of the task types, against the real servers, are checked by the pipeline tests
//! (`pipelines.rs`, `pipelines_sql.rs`).

use crate::support::common;

use std::time::Duration;

use common::{Db, Env};
use serde_json::Value;
use updraft::config::{LineageSettings, LineageTarget};
use updraft::model::{DagRunState, TaskState};

use crate::support::lineage::{self as ol};
use crate::support::receivers::Receiver;
use crate::support::web::{WebApp, logged_in};

const STATES: &str = "dag_id: ol_states
tasks:
  ok: {type: bash, command: 'true'}
  boom: {type: bash, command: 'echo disk full >&2; exit 3', retries: 1, retry_delay: 0s}
";

const LONG: &str = "dag_id: ol_long
tasks:
  sleeper: {type: bash, command: 'sleep 60'}
";

/// The events in the file so far.
fn read_events(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Waits until the file holds `n` events (at most 30 s); returns them.
async fn wait_events(path: &std::path::Path, n: usize) -> Vec<Value> {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = read_events(path);
        if events.len() >= n {
            return events;
        }
        assert!(std::time::Instant::now() < until, "{n} events? {:?}", ol::summary(&events));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_run_is_valid_and_says_how_each_try_ended() {
    let mut env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let file = env.path("lineage/events.jsonl");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
    env.settings.lineage = LineageSettings {
        target: Some(LineageTarget::File(file.clone())),
        namespace: "ol-test".into(),
        queue: 1_000,
    };
    env.write_dag("states.yaml", STATES);
    env.write_dag("long.yaml", LONG);
    let engine = env.start().await;
    env.wait_until("DAGs loaded", Duration::from_secs(30), || async {
        env.store.get_dag("ol_states").await.is_ok() && env.store.get_dag("ol_long").await.is_ok()
    })
    .await;

    // A run with a success and a failure after a retry: 8 events.
    let run = env.trigger("ol_states", serde_json::json!({})).await;
    assert_eq!(env.wait_run(run.id, Duration::from_secs(60)).await.state, DagRunState::Failed);
    let events = wait_events(&file, 8).await;
    let run_start = ol::event(&events, "ol_states", "START");
    let run_fail = ol::event(&events, "ol_states", "FAIL");
    assert_eq!(run_start["run"]["runId"], run_fail["run"]["runId"], "one run id per run");
    assert_eq!(run_fail["job"]["namespace"], "ol-test");
    let why = run_fail["run"]["facets"]["errorMessage"]["message"].as_str().unwrap_or("");
    assert!(why.contains("task(s) boom failed"), "{run_fail}");
    let nominal = &run_start["run"]["facets"]["nominalTime"]["nominalStartTime"];
    assert!(nominal.as_str().is_some_and(|t| t.ends_with('Z')), "{run_start}");
    ol::event(&events, "ol_states.ok", "START");
    let ok = ol::event(&events, "ol_states.ok", "COMPLETE");
    assert!(ok["run"]["facets"].get("errorMessage").is_none(), "{ok}");
    let fails: Vec<&Value> = events
        .iter()
        .filter(|e| e["job"]["name"] == "ol_states.boom" && e["eventType"] == "FAIL")
        .collect();
    assert_eq!(fails.len(), 2, "a FAIL per try: {:?}", ol::summary(&events));
    assert_ne!(fails[0]["run"]["runId"], fails[1]["run"]["runId"], "each try is a run");
    for f in &fails {
        let e = &f["run"]["facets"]["errorMessage"];
        assert!(e["message"].as_str().unwrap_or("").contains("code 3"), "{f}");
        assert_eq!(e["programmingLanguage"], "shell");
        assert_eq!(f["run"]["facets"]["parent"]["run"]["runId"], run_start["run"]["runId"]);
        assert_eq!(f["run"]["facets"]["parent"]["job"]["name"], "ol_states");
    }

    // A user marks a running run failed (REST API, on a web server sharing the engine's
    // emitter as a standalone process does): ABORT for the run and for its try.
    let state = crate::support::web::app_state(&env.store, &env.settings);
    let state = updraft::web::AppState::new(state.store, state.settings, engine.metrics.clone())
        .with_lineage(engine.lineage.clone());
    let web = WebApp::serve_state(state).await;
    let op = logged_in(&env.store, "op", &["operator"]).await;
    let long = env.trigger("ol_long", serde_json::json!({})).await;
    env.wait_until("the sleeper runs", Duration::from_secs(30), || async {
        env.tis(long.id).await.iter().any(|t| t.state == TaskState::Running)
    })
    .await;
    wait_events(&file, 10).await;
    let path = format!("{}/api/v1/dags/ol_long/dagRuns/{}", web.base, long.run_id);
    let answer = web
        .http
        .patch(path)
        .bearer_auth(&op.token)
        .json(&serde_json::json!({"state": "failed"}))
        .send()
        .await
        .expect("mark");
    assert!(answer.status().is_success(), "{}", answer.status());
    let events = wait_events(&file, 12).await;
    let abort = ol::event(&events, "ol_long", "ABORT");
    let why = abort["run"]["facets"]["errorMessage"]["message"].as_str().unwrap_or("");
    assert!(why.contains("marked failed by a user"), "{abort}");
    ol::event(&events, "ol_long.sleeper", "ABORT");
    assert_eq!(events.len(), 12, "nothing twice: {:?}", ol::summary(&events));
    ol::assert_valid(&events, env.dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_delays_no_task_and_overflow_is_counted() {
    let mut env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let receiver = Receiver::default();
    let base = receiver.start().await;
    // 4 requests hang at once (the transport's bound), 3 more wait in the queue, the rest of
    // the run's 62 events are dropped.
    env.settings.lineage = LineageSettings {
        target: Some(LineageTarget::Http { url: format!("{base}/hang/ol"), api_key: None }),
        namespace: "ol-test".into(),
        queue: 3,
    };
    let items: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    let dag = format!(
        "dag_id: ol_many\ntasks:\n  t: {{type: bash, command: 'true', foreach: [{}]}}\n",
        items.join(", ")
    );
    env.write_dag("many.yaml", &dag);
    let engine = env.start().await;
    env.wait_until("DAG loaded", Duration::from_secs(30), || async {
        env.store.get_dag("ol_many").await.is_ok()
    })
    .await;
    let run = env.trigger("ol_many", serde_json::json!({})).await;
    // Bounded by far less than one hanging request would take (5 s) times the events.
    let done = env.wait_run(run.id, Duration::from_secs(60)).await;
    assert_eq!(done.state, DagRunState::Success);
    let m = &engine.metrics;
    let dropped = m.lineage_dropped.load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped >= 50, "the overflow is dropped and counted: {dropped}");
    // /metrics says so, on a web server sharing the engine's figures.
    let state = crate::support::web::app_state(&env.store, &env.settings);
    let state = updraft::web::AppState::new(state.store, state.settings, engine.metrics.clone());
    let web = WebApp::serve_state(state).await;
    let text = web.http.get(format!("{}/metrics", web.base)).send().await.expect("metrics");
    let text = text.text().await.expect("metrics body");
    let line = format!("updraft_lineage_events_total{{result=\"dropped\"}} {dropped}");
    assert!(text.contains(&line), "{text}");
    // The hung requests are cut at the transport's timeout and counted as failed.
    env.wait_until("the hung requests time out", Duration::from_secs(20), || async {
        m.lineage_failed.load(std::sync::atomic::Ordering::Relaxed) >= 4
    })
    .await;
    assert_eq!(m.lineage_sent.load(std::sync::atomic::Ordering::Relaxed), 0);
}
