//! The workers page and the workers' lines of `/metrics`: worker process rows written as their
//! heartbeats write them (one live with running tries, one declared lost, one stopped), read
//! over HTTP by a logged-in viewer, by a user without roles and by nobody.

use crate::support::common;

use std::collections::HashMap;

use chrono::{Duration, Utc};
use common::{Db, Env, both};
use reqwest::StatusCode;
use updraft::dag::parse_dag_str;
use updraft::model::TaskState;
use updraft::store::{NewTi, ProcessRow, QueueCaps, RunRow, TiUpdate};

use crate::support::web::{WebApp, logged_in};

both!(the_page_lists_workers_and_their_tries, metrics_have_a_line_per_live_worker);

/// A live worker whose id needs escaping in HTML and in Prometheus labels.
const ALPHA: &str = "alpha\"1:42:7";
/// A worker declared dead.
const BETA: &str = "beta:43:8";
/// A worker that stopped cleanly.
const GAMMA: &str = "gamma:44:9";

const DAG: &str = "dag_id: wk\ntasks:\n  plain: { type: bash, command: 'true' }\n  \
    fan: { type: bash, command: 'true', foreach: [a, b] }\n";

fn worker(id: &str, host: &str, queues: &[&str], slots: i64, running: i64) -> ProcessRow {
    ProcessRow {
        id: id.into(),
        kind: "worker".into(),
        hostname: host.into(),
        pid: 42,
        queues: queues.iter().map(|q| q.to_string()).collect(),
        slots: Some(slots),
        running: Some(running),
        claims: 12,
        lease_renewals: 5,
        ..ProcessRow::default()
    }
}

/// The three workers, and a run of `wk` in which ALPHA runs `plain` and `fan[1]` and has
/// claimed `fan[0]` without starting it.
async fn workers_at_work(env: &Env) -> RunRow {
    let now = Utc::now();
    let store = &env.store;
    store.heartbeat(&worker(ALPHA, "host-a", &["default", "etl"], 4, 2), now).await.expect("hb");
    let beta = worker(BETA, "<b>host-b</b>", &["gpu"], 2, 1);
    store.heartbeat(&beta, now - Duration::seconds(90)).await.expect("hb");
    store.process_lost(BETA, now).await.expect("lost");
    store.heartbeat(&worker(GAMMA, "host-c", &["default"], 1, 0), now).await.expect("hb");
    store.process_stopped(GAMMA, now).await.expect("stopped");

    let dag = parse_dag_str(DAG, "wk.yaml".as_ref()).expect("valid DAG");
    store.sync_dags([&dag], [], now).await.expect("sync");
    store.set_paused("wk", false).await.expect("unpause");
    let run = env.trigger("wk", serde_json::json!({})).await;
    let tis: Vec<NewTi> = dag.tasks.values().map(NewTi::for_task).collect();
    assert!(store.start_run(run.id, None, &tis, now).await.expect("start run"));
    let rows = store.run_tis(run.id).await.expect("tis");
    let fan = rows.iter().find(|t| t.task_id == "fan").expect("fan placeholder");
    let items = [serde_json::json!("a"), serde_json::json!("b")];
    store.expand_mapped(fan, &NewTi::for_task(&dag.tasks["fan"]), &items, now).await.expect("map");
    let updates: Vec<TiUpdate> = store
        .run_tis(run.id)
        .await
        .expect("tis")
        .iter()
        .map(|t| TiUpdate { id: t.id, from: t.state, to: TaskState::Scheduled, note: None })
        .collect();
    store.apply_ti_updates(&updates, now).await.expect("schedule");
    let no_caps = HashMap::new();
    let queued = store
        .queue_scheduled(&QueueCaps::local(8, &no_caps), Some(ALPHA), now)
        .await
        .expect("queue");
    assert_eq!(queued.len(), 3);
    for ti in queued.iter().filter(|t| t.map_index != 0) {
        let log = |n: i64| format!("try-{n}.log");
        let started = store.start_try(ti, "host-a", 4242, ALPHA, log, now).await.expect("start");
        assert!(started.is_some(), "{} starts", ti.task_id);
    }
    run
}

async fn the_page_lists_workers_and_their_tries(env: Env) {
    let run = workers_at_work(&env).await;
    let app = WebApp::serve(&env).await;
    let viewer = logged_in(&env.store, "vera", &["viewer"]).await;
    let get = |cookie: Option<String>| {
        let mut req = app.http.get(app.url("/workers"));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        async move { req.send().await.expect("GET /workers") }
    };

    let resp = get(Some(viewer.cookie())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.expect("body");
    assert!(page.contains("href=\"/workers\" class=\"active\""), "in the navigation");
    let alpha = page.find("data-worker=\"alpha&#34;1:42:7\"").expect("alpha, escaped");
    let beta = page.find("data-worker=\"beta:43:8\"").expect("beta");
    let gamma = page.find("data-worker=\"gamma:44:9\"").expect("gamma");
    assert!(alpha < beta && alpha < gamma, "live first");
    assert!(page.contains("data-state=\"lost\""), "beta is lost");
    assert!(page.contains("<span class=\"state s-failed\"><strong>lost</strong></span>"));
    assert!(page.contains("data-worker=\"gamma:44:9\" data-state=\"stopped\""));
    assert!(page.contains("1 live") && page.contains("1 lost"), "the summary");
    for queue in ["default", "etl", "gpu"] {
        assert!(page.contains(&format!("<span class=\"tag\">{queue}</span>")), "queue {queue}");
    }
    assert!(page.contains("2 / 4 <span class=\"muted\">(2&nbsp;free)</span>"), "alpha's slots");
    assert!(page.contains("&#60;b&#62;host-b&#60;/b&#62;"), "the host, escaped");
    assert!(!page.contains("<b>host-b"), "never as markup");
    assert!(page.contains(" s ago"), "heartbeat age");
    assert!(page.contains("<body data-live=\"1\">"), "a live worker: the page refreshes");

    // ALPHA's running tries, linked to their task instances; the claim not started is not one.
    let run_url = format!("/dags/wk/runs/{}", updraft::web::pages::url_encode(&run.run_id));
    let row = &page[alpha..beta];
    assert!(row.contains(&format!("href=\"{run_url}/tasks/plain\"")), "{row}");
    assert!(row.contains(&format!("href=\"{run_url}/tasks/fan?map_index=1\"")), "{row}");
    assert!(row.contains(&format!("wk / {} / fan[1]</a>", run.run_id)), "{row}");
    assert!(!row.contains("fan[0]"), "claimed, not running: {row}");
    assert_eq!(row.matches("try 1").count(), 2, "{row}");

    // Nobody is sent to the login page; a user without a role is refused.
    let resp = get(None).await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let to = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(to.starts_with("/login"), "{to}");
    let nobody = logged_in(&env.store, "nora", &[]).await;
    assert_eq!(get(Some(nobody.cookie())).await.status(), StatusCode::FORBIDDEN);
}

async fn metrics_have_a_line_per_live_worker(env: Env) {
    workers_at_work(&env).await;
    let app = WebApp::serve(&env).await;
    let scrape = |cookie: Option<String>| {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        async move {
            let resp = req.send().await.expect("GET /metrics");
            assert_eq!(resp.status(), StatusCode::OK);
            resp.text().await.expect("body")
        }
    };
    // Anonymous scrapes (Prometheus without credentials) get the workers' totals: which
    // hosts and processes run is for logged-in callers, as on /health.
    let text = scrape(None).await;
    let lines: Vec<&str> = text.lines().collect();
    for line in [
        "# TYPE updraft_worker_slots gauge",
        "updraft_worker_slots{state=\"total\"} 4",
        "updraft_worker_slots{state=\"busy\"} 2",
        "updraft_worker_claims_total 12",
        "updraft_worker_lease_renewals_total 5",
        "updraft_workers_lost_total 1",
    ] {
        assert!(lines.contains(&line), "{line} in\n{text}");
    }
    for private in ["alpha", "host-a", ":42:"] {
        assert!(!text.contains(private), "anonymous scrape names `{private}`:\n{text}");
    }
    // Logged in (a scraper with a token, an operator): a series per live worker.
    let viewer = logged_in(&env.store, "vera", &["viewer"]).await;
    let text = scrape(Some(viewer.cookie())).await;
    let lines: Vec<&str> = text.lines().collect();
    for line in [
        "# TYPE updraft_worker_slots gauge",
        "updraft_worker_slots{worker=\"alpha\\\"1:42:7\",state=\"total\"} 4",
        "updraft_worker_slots{worker=\"alpha\\\"1:42:7\",state=\"busy\"} 2",
        "# TYPE updraft_worker_claims_total counter",
        "updraft_worker_claims_total{worker=\"alpha\\\"1:42:7\"} 12",
        "# TYPE updraft_worker_lease_renewals_total counter",
        "updraft_worker_lease_renewals_total{worker=\"alpha\\\"1:42:7\"} 5",
        "# TYPE updraft_workers_lost_total counter",
        "updraft_workers_lost_total 1",
    ] {
        assert!(lines.contains(&line), "{line} in\n{text}");
    }
    assert!(!text.contains("beta") && !text.contains("gamma"), "only live workers: {text}");
}
