//! Deadline alerts end to end, with a real HTTP receiver on 127.0.0.1: a run still going when
//! its deadline falls notifies once (`deadline_missed`, naming the deadline), and the run page
//! and the DAG page mark the miss; a run that finished in time meets its deadline and notifies
//! nobody.

use crate::support::common;

use std::time::Duration;

use common::{Db, Env, both};
use updraft::model::DagRunState;

use crate::support::receivers::Receiver;
use crate::support::web::{Creds, WebApp};

const LATE: &str = "dag_id: late
deadline: {reference: queued, interval: 2s, notify: [pager]}
tasks:
  slow: {type: bash, command: 'sleep 4'}
";

const QUICK: &str = "dag_id: quick
deadline:
  - {reference: run_start, interval: 3s, notify: [pager]}
tasks:
  fast: {type: bash, command: 'true'}
";

both!(a_late_run_is_alerted_once_and_marked_and_a_quick_one_meets_its_deadline);

async fn a_late_run_is_alerted_once_and_marked_and_a_quick_one_meets_its_deadline(mut env: Env) {
    let receiver = Receiver::default();
    let base = receiver.start().await;
    env.settings.connections.insert("pager".into(), format!("{base}/ok/pager"));
    env.write_dag("late.yaml", LATE);
    env.write_dag("quick.yaml", QUICK);
    let _engine = env.start().await;
    env.wait_until("DAGs loaded", Duration::from_secs(30), || async {
        env.store.get_dag("late").await.is_ok() && env.store.get_dag("quick").await.is_ok()
    })
    .await;
    // Triggered as a user triggers (the REST API), which arms the DAG's deadlines.
    let web = WebApp::serve(&env).await;
    let operator = crate::support::web::logged_in(&env.store, "op", &["operator"]).await;
    let viewer = crate::support::web::logged_in(&env.store, "vi", &["viewer"]).await;
    let late = trigger(&env, &web, &operator, "late").await;
    let quick = trigger(&env, &web, &operator, "quick").await;
    assert_eq!(env.wait_run(quick.id, Duration::from_secs(60)).await.state, DagRunState::Success);
    let late_done = env.wait_run(late.id, Duration::from_secs(60)).await;
    assert_eq!(late_done.state, DagRunState::Success, "a late run still succeeds");

    // The late run's miss: one request, with the deadline it missed.
    env.wait_until("the miss is notified", Duration::from_secs(30), || async {
        !receiver.at("/ok/pager").is_empty()
    })
    .await;
    let decided = || async {
        let late = env.store.run_deadlines(late.id).await.expect("deadlines");
        let quick = env.store.run_deadlines(quick.id).await.expect("deadlines");
        (late, quick)
    };
    env.wait_until("both deadlines decided", Duration::from_secs(30), || async {
        let (late, quick) = decided().await;
        late.iter().chain(&quick).all(|d| d.status != "pending")
    })
    .await;
    let (late_rows, quick_rows) = decided().await;
    assert_eq!(late_rows.len(), 1, "{late_rows:?}");
    assert_eq!(late_rows[0].status, "missed", "{late_rows:?}");
    assert_eq!(quick_rows.len(), 1, "{quick_rows:?}");
    assert_eq!(quick_rows[0].status, "met", "{quick_rows:?}");
    // Nothing more comes: the miss is notified once, the met deadline never.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.at("/ok/pager");
    assert_eq!(got.len(), 1, "{got:?}");
    let b = &got[0].body;
    assert_eq!(b["event"], "deadline_missed", "{b}");
    assert_eq!(
        (b["dag_id"].as_str(), b["run_id"].as_str()),
        (Some("late"), Some(late.run_id.as_str()))
    );
    let error = b["error"].as_str().unwrap_or("");
    assert!(error.contains("2s after the run was queued"), "{b}");

    // The pages say so: the run's deadline is missed, the DAG lists its deadline and the miss.
    let page = |path: String| {
        let (client, token) = (web.http.clone(), viewer.token.clone());
        async move {
            let answer = client.get(path).bearer_auth(token).send().await.expect("page");
            assert!(answer.status().is_success(), "{}", answer.status());
            answer.text().await.expect("body")
        }
    };
    let enc = crate::support::api::enc;
    let run_page = page(format!("{}/dags/late/runs/{}", web.base, enc(&late.run_id))).await;
    let deadlines = run_page.split("id=\"run-deadlines\"").nth(1).expect("run deadlines shown");
    let deadlines = deadlines.split("</dd>").next().unwrap_or("");
    assert!(deadlines.contains("2s after the run was queued") && deadlines.contains(">missed<"));
    let quick_page = page(format!("{}/dags/quick/runs/{}", web.base, enc(&quick.run_id))).await;
    let deadlines = quick_page.split("id=\"run-deadlines\"").nth(1).expect("run deadlines shown");
    assert!(deadlines.split("</dd>").next().unwrap_or("").contains(">met<"), "{quick_page}");
    let dag_page = page(format!("{}/dags/late", web.base)).await;
    assert!(dag_page.contains("2s after the run was queued"), "the DAG's deadline is shown");
    let misses = dag_page.split("id=\"deadline-misses\"").nth(1).expect("misses panel");
    assert!(misses.contains(&late.run_id) && misses.contains("1 in all"), "{misses}");
    let quick_dag = page(format!("{}/dags/quick", web.base)).await;
    assert!(!quick_dag.contains("id=\"deadline-misses\""), "no miss, no panel");
}

/// Triggers a run of `dag_id` through the REST API as `user`; the run as stored.
async fn trigger(env: &Env, web: &WebApp, user: &Creds, dag_id: &str) -> updraft::store::RunRow {
    let answer = web
        .http
        .post(format!("{}/api/v1/dags/{dag_id}/dagRuns", web.base))
        .bearer_auth(&user.token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("trigger");
    assert!(answer.status().is_success(), "{}", answer.status());
    let body: serde_json::Value = answer.json().await.expect("run");
    let run_id = body["dag_run_id"].as_str().expect("dag_run_id");
    env.store.find_run(dag_id, run_id).await.expect("find").expect("the run")
}

/// A run another DAG triggers (`trigger_dag`) is armed with its DAG's deadlines, as a run
/// triggered from the UI is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_triggered_by_another_dag_has_its_deadlines() {
    let mut env = Env::new(Db::Sqlite).await.expect("sqlite env");
    env.settings.connections.insert("pager".into(), "http://127.0.0.1:9/never".into());
    env.write_dag(
        "target.yaml",
        "dag_id: target\ndeadline: {reference: queued, interval: 1h, notify: [pager]}\ntasks:\n  \
         t: {type: bash, command: 'true'}\n",
    );
    env.write_dag(
        "kick.yaml",
        "dag_id: kick\ntasks:\n  go: {type: trigger_dag, trigger_dag_id: target, \
         trigger_run_id: 'from_kick'}\n",
    );
    let _engine = env.start().await;
    env.wait_until("DAGs loaded", Duration::from_secs(30), || async {
        env.store.get_dag("target").await.is_ok() && env.store.get_dag("kick").await.is_ok()
    })
    .await;
    let kick = env.trigger("kick", serde_json::json!({})).await;
    assert_eq!(env.wait_run(kick.id, Duration::from_secs(60)).await.state, DagRunState::Success);
    let run = env.store.find_run("target", "from_kick").await.expect("find").expect("the run");
    let deadlines = env.store.run_deadlines(run.id).await.expect("deadlines");
    assert_eq!(deadlines.len(), 1, "{deadlines:?}");
    let d = &deadlines[0];
    assert_eq!(d.deadline.to_string(), "1h after the run was queued");
    let at = d.deadline_at.expect("a queued deadline falls at a known time");
    let lag = (at - run.created_at).num_seconds();
    assert!((3599..=3601).contains(&lag), "an hour after queued: {lag} s");
}
