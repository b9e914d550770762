//! Backfills through the API against a prepared history of runs: the dry run creates
//! nothing; each `reprocess` policy creates the missing dates and runs again exactly the runs
//! it names; pausing and cancelling; a viewer is refused. No engine runs: what the backfill
//! wrote is read from the store (the scheduler's side is `scheduler::tests`).

use crate::support::common;
use crate::support::web::{self, WebApp};

use chrono::{DateTime, Utc};
use common::{Db, Env, both};
use reqwest::StatusCode;
use serde_json::{Value, json};
use updraft::model::{DagRunState, RunType, TaskState};
use updraft::store::{NewRun, NewTi, TiUpdate};

both!(backfills_follow_their_reprocess_policy);

const DAILY: &str = "dag_id: daily\nschedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n  a: {type: empty}\n  b: {type: empty, depends_on: [a]}\n";

fn day(d: u32) -> DateTime<Utc> {
    format!("2026-01-{d:02}T00:00:00Z").parse().expect("date")
}

/// A finished (or running) run at day `d` whose instances end in `states` (a, b).
async fn prepare(env: &Env, dag: &updraft::dag::Dag, d: u32, end: Option<(TaskState, TaskState)>) {
    let when = day(d);
    let run = NewRun {
        dag_id: "daily".into(),
        run_id: NewRun::default_run_id(RunType::Scheduled, when),
        run_type: RunType::Scheduled,
        logical_date: when,
        data_interval_start: when,
        data_interval_end: day(d + 1),
        conf: Default::default(),
        triggered_by: "test".into(),
        deadlines: Vec::new(),
    };
    let row = env.store.create_run(&run, when).await.expect("run");
    let tis: Vec<NewTi> = dag.tasks.values().map(NewTi::for_task).collect();
    assert!(env.store.start_run(row.id, Some(dag), &tis, when).await.expect("start"));
    let Some((a, b)) = end else { return };
    let updates: Vec<TiUpdate> = env
        .store
        .run_tis(row.id)
        .await
        .expect("tis")
        .into_iter()
        .map(|t| TiUpdate {
            id: t.id,
            from: TaskState::None,
            to: if t.task_id == "a" { a } else { b },
            note: None,
        })
        .collect();
    env.store.apply_ti_updates(&updates, when).await.expect("end tis");
    let state = if a == TaskState::Success && b == TaskState::Success {
        DagRunState::Success
    } else {
        DagRunState::Failed
    };
    let done = env.store.set_run_state(row.id, DagRunState::Running, state, when).await;
    assert!(done.expect("end run"));
}

async fn backfills_follow_their_reprocess_policy(env: Env) {
    let dag = updraft::dag::parse_dag_str(DAILY, "daily.yaml".as_ref()).expect("valid");
    env.store.sync_dags([&dag], [], Utc::now()).await.expect("sync");
    // Day 1 succeeded, day 2 failed (b failed), day 3 has no run, day 4 is running.
    prepare(&env, &dag, 1, Some((TaskState::Success, TaskState::Success))).await;
    prepare(&env, &dag, 2, Some((TaskState::Success, TaskState::Failed))).await;
    prepare(&env, &dag, 4, None).await;
    let app = WebApp::serve(&env).await;
    let operator = web::logged_in(&env.store, "op", &["operator"]).await.token;
    let viewer = web::logged_in(&env.store, "vi", &["viewer"]).await.token;
    let client = updraft::tls::http_client().build().expect("client");
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut req =
            client.request(method, format!("{}/api/v1{path}", app.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.expect("request");
            let status = resp.status();
            (status, resp.json::<Value>().await.expect("json"))
        }
    };
    let range = |reprocess: &str, dry_run: bool| {
        json!({"dag_id": "daily", "from_date": day(1), "to_date": day(4),
               "reprocess": reprocess, "dry_run": dry_run, "max_active_runs": 2})
    };
    let actions = |answer: &Value| -> Vec<String> {
        answer["dates"]
            .as_array()
            .expect("dates")
            .iter()
            .map(|d| d["action"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let runs_before = env.store.list_runs("daily", None, 100).await.expect("runs").len();

    // The dry run says what each policy would do, and creates nothing.
    for (policy, want) in [
        ("none", ["skip", "skip", "create", "skip"]),
        ("failed", ["skip", "reprocess_failed", "create", "skip"]),
        ("all", ["reprocess", "reprocess", "create", "skip"]),
    ] {
        let (status, answer) =
            call(reqwest::Method::POST, "/backfills", &operator, Some(range(policy, true))).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(actions(&answer), want, "{policy}: {answer}");
        assert_eq!(answer["backfill"], Value::Null, "a dry run creates no backfill");
        assert_eq!(answer["dates"][3]["reason"], json!("the run is still going"));
    }
    assert_eq!(env.store.list_runs("daily", None, 100).await.expect("runs").len(), runs_before);
    assert!(env.store.list_backfills(None, 10).await.expect("list").is_empty());

    // A viewer may not backfill.
    let (status, _) =
        call(reqwest::Method::POST, "/backfills", &viewer, Some(range("none", false))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // reprocess: failed — day 3 created (queued, in the backfill), day 2's failed instance
    // cleared (its success left), day 1 and day 4 untouched.
    let (status, answer) =
        call(reqwest::Method::POST, "/backfills", &operator, Some(range("failed", false))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["backfill"]["id"].as_i64().expect("an id");
    assert_eq!(answer["backfill"]["reprocess"], json!("failed"));
    assert_eq!(answer["backfill"]["max_active_runs"], json!(2));
    let run_at = |d: u32| {
        let store = env.store.clone();
        async move {
            store.find_run_by_logical_date("daily", day(d)).await.expect("find").expect("a run")
        }
    };
    let d3 = run_at(3).await;
    assert_eq!(
        (d3.state, d3.run_type, d3.backfill_id),
        (DagRunState::Queued, RunType::Backfill, Some(id))
    );
    let d2 = run_at(2).await;
    assert_eq!(
        (d2.state, d2.backfill_id),
        (DagRunState::Running, Some(id)),
        "run again, in the backfill"
    );
    let tis = env.store.run_tis(d2.id).await.expect("tis");
    let state = |t: &str| tis.iter().find(|x| x.task_id == t).map(|x| x.state);
    assert_eq!(state("a"), Some(TaskState::Success), "only the failed instance runs again");
    assert_eq!(state("b"), Some(TaskState::None));
    let d1 = run_at(1).await;
    assert_eq!((d1.state, d1.backfill_id), (DagRunState::Success, None));
    assert_eq!(run_at(4).await.backfill_id, None, "a running run is never touched");

    // Pause, list, cancel: the queued run fails and a cancelled backfill cannot be resumed.
    let path = format!("/backfills/{id}");
    let (status, b) =
        call(reqwest::Method::PATCH, &path, &operator, Some(json!({"is_paused": true}))).await;
    assert_eq!((status, &b["is_paused"]), (StatusCode::OK, &json!(true)), "{b}");
    let (_, list) = call(reqwest::Method::GET, "/backfills?dag_id=daily", &viewer, None).await;
    assert_eq!(list["total_entries"], json!(1), "{list}");
    assert_eq!(list["backfills"][0]["runs"]["queued"], json!(1), "{list}");
    let (status, b) = call(reqwest::Method::POST, &format!("{path}/cancel"), &operator, None).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert!(b["cancelled_at"].is_string(), "{b}");
    assert_eq!(run_at(3).await.state, DagRunState::Failed, "its queued run failed");
    let (status, _) =
        call(reqwest::Method::PATCH, &path, &operator, Some(json!({"is_paused": false}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a cancelled backfill stays cancelled");
    let (status, _) = call(reqwest::Method::GET, "/backfills/999", &viewer, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // reprocess: all — every finished run of the range runs again whole.
    let (status, answer) =
        call(reqwest::Method::POST, "/backfills", &operator, Some(range("all", false))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(actions(&answer), ["reprocess", "skip", "reprocess", "skip"], "{answer}");
    let second = answer["backfill"]["id"].as_i64().expect("an id");
    let d1 = run_at(1).await;
    assert_eq!((d1.state, d1.backfill_id), (DagRunState::Running, Some(second)));
    let all_none =
        env.store.run_tis(d1.id).await.expect("tis").iter().all(|t| t.state == TaskState::None);
    assert!(all_none, "the whole run runs again");

    // Bad input is named.
    let (status, e) = call(
        reqwest::Method::POST,
        "/backfills",
        &operator,
        Some(json!({"dag_id": "daily", "from_date": day(4), "to_date": day(1)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!((&e["dates"], &e["backfill"]), (&json!([]), &Value::Null), "nothing in the range");
    let (status, e) = call(reqwest::Method::POST, "/backfills", &operator,
        Some(json!({"dag_id": "daily", "from_date": day(1), "to_date": day(2), "max_active_runs": 0}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().unwrap_or("").contains("max_active_runs 0"), "{e}");
    let (status, e) = call(
        reqwest::Method::POST,
        "/backfills",
        &operator,
        Some(
            json!({"dag_id": "daily", "from_date": day(1), "to_date": day(2), "reprocess": "some"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    // The CLI's `dags backfill` is the same backfill (reprocess none).
    let dags = updraft::dag::DagCache::default();
    let actor = updraft::actions::Actor::cli("test");
    let cli = updraft::actions::backfill(
        &env.store,
        &dags,
        &actor,
        &dag,
        day(3),
        day(6),
        Default::default(),
    );
    assert_eq!(cli.await.expect("cli backfill"), (2, 2), "days 5 and 6 new; 3 and 4 exist");
    let audit = env.store.list_audit(Some("daily"), None, 20).await.expect("audit");
    let events: Vec<&str> = audit.iter().map(|a| a.event.as_str()).collect();
    for e in ["backfill", "backfill_paused", "backfill_cancelled"] {
        assert!(events.contains(&e), "{e} audited: {events:?}");
    }
}
