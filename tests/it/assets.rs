//! Assets end to end: the engine running real DAG files, the web server on 127.0.0.1. An event
//! posted through the API and a producer DAG's outlet each trigger the DAG scheduled on the
//! asset once, whose task reads the event in `triggering_asset_events`; the API's errors (a
//! viewer, an unknown asset, a malformed URI, a big extra) and its listings.

use crate::support::api as api_support;
use crate::support::common;

use std::time::Duration;

use api_support::ApiEnv;
use common::{Db, Env, both};
use reqwest::StatusCode;
use serde_json::{Value, json};
use updraft::store::EventsOf;

const LIMIT: Duration = Duration::from_secs(30);

const PRODUCER: &str = "dag_id: producer\ntasks:\n  write:\n    type: bash\n    \
    command: echo wrote-3-rows\n    outlets: [s3://lake/in/]\n";

const CONSUMER: &str = "dag_id: consumer\nschedule:\n  any: [s3://lake/in/, report]\ntasks:\n  \
    read:\n    type: bash\n    command: >-\n      \
    {% for uri, events in triggering_asset_events | items %}{% for e in events %}echo \
    {{ uri }}:{{ e.source }}:{{ e.extra.key | default(e.source_dag_id) }};{% endfor %}{% endfor %}\n";

both!(events_from_the_api_and_outlets_trigger_the_consumer_once_each);

/// The consumer's runs, oldest first, each with its task's XCom (the last line it printed).
async fn consumer_runs(api: &ApiEnv) -> Vec<(String, String, Value)> {
    let mut runs = api.env.store.list_runs("consumer", None, 100).await.expect("runs");
    runs.sort_by_key(|r| r.id);
    let mut out = Vec::new();
    for r in runs {
        let xcom = api.env.store.run_xcoms(r.id).await.expect("xcoms");
        let value = xcom.first().map(|x| x.value.clone()).unwrap_or(Value::Null);
        out.push((r.run_type.as_str().to_string(), r.state.as_str().to_string(), value));
    }
    out
}

async fn wait_for_runs(api: &ApiEnv, n: usize) -> Vec<(String, String, Value)> {
    let start = std::time::Instant::now();
    loop {
        let runs = consumer_runs(api).await;
        if runs.len() >= n && runs.iter().all(|r| r.1 == "success" || r.1 == "failed") {
            return runs;
        }
        assert!(start.elapsed() < LIMIT, "{n} finished consumer runs expected: {runs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events_from_the_api_and_outlets_trigger_the_consumer_once_each(env: Env) {
    let dags = [("producer.yaml", PRODUCER.to_string()), ("consumer.yaml", CONSUMER.to_string())];
    let api = ApiEnv::start(env, &dags, &["producer", "consumer"]).await;
    let post = |token: &str, body: Value| {
        let body = body.to_string();
        let token = token.to_string();
        let api = &api;
        async move { api.post("/assets/events", &token, &body).await }
    };

    // The boundary: role, unknown asset, malformed URI, an extra too big, unknown fields.
    let a = post(&api.viewer, json!({"asset_uri": "report"})).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let a = post(&api.operator, json!({"asset_uri": "s3://lake/typo/"})).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert!(
        a.body["error"].as_str().unwrap_or("").contains("no active DAG names it"),
        "{}",
        a.body
    );
    let a = post(&api.operator, json!({"asset_uri": "re port"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body["error"].as_str().unwrap_or("").contains("asset_uri"), "{}", a.body);
    let big = "x".repeat(70 * 1024);
    let a = post(&api.operator, json!({"asset_uri": "report", "extra": {"big": big}})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let a = post(&api.operator, json!({"asset_uri": "report", "extras": {}})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(consumer_runs(&api).await.is_empty(), "no refused request made a run");

    // An event from the API: one run, which sees it.
    let a = post(&api.operator, json!({"asset_uri": "report", "extra": {"key": "k1"}})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["source"], "api");
    assert_eq!(a.body["created_by"], "operator");
    let runs = wait_for_runs(&api, 1).await;
    assert_eq!(runs, vec![("asset_triggered".into(), "success".into(), json!("report:api:k1"))]);

    // A producer's outlet: its successful try's event triggers one more run.
    let a = api.post("/dags/producer/dagRuns", &api.operator, "{}").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let runs = wait_for_runs(&api, 2).await;
    assert_eq!(runs.len(), 2, "exactly one run per event: {runs:?}");
    assert_eq!(runs[1].2, json!("s3://lake/in/:task:producer"));
    let events = api.env.store.asset_events(EventsOf::Asset("s3://lake/in/"), None, 10).await;
    let events = events.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source_task_id.as_deref(), Some("write"));
    assert_eq!(events[0].extra, json!({"return_value": "wrote-3-rows"}));

    // Nothing more happens: every event was consumed once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(consumer_runs(&api).await.len(), 2);

    // The listings.
    let assets = api.get_ok("/assets", &api.viewer).await;
    let lake = assets["assets"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["uri"] == "s3://lake/in/"))
        .cloned()
        .unwrap_or_else(|| panic!("s3://lake/in/ listed: {assets}"));
    assert_eq!(lake["producing_dags"], json!(["producer"]));
    assert_eq!(lake["consuming_dags"], json!(["consumer"]));
    assert_eq!(lake["events"], json!(1));
    let listed = api.get_ok("/assets/events?asset_uri=report", &api.viewer).await;
    assert_eq!(listed["total_entries"], json!(1));
    assert_eq!(listed["asset_events"][0]["extra"], json!({"key": "k1"}));
    let of_dag = api.get_ok("/assets/events?dag_id=consumer&limit=1", &api.viewer).await;
    assert_eq!(of_dag["total_entries"], json!(1), "newest first, one page: {of_dag}");
    assert_eq!(of_dag["asset_events"][0]["uri"], "s3://lake/in/");

    // `db clean` takes the consumed events with their runs, and keeps one still waiting.
    let a = api.patch("/dags/consumer", &api.operator, r#"{"is_paused": true}"#).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = post(&api.operator, json!({"asset_uri": "report", "extra": {"key": "k2"}})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let removed = api.env.store.clean_before(later).await.expect("clean");
    assert!(removed.iter().filter(|(d, _)| d == "consumer").count() == 2, "{removed:?}");
    let left = api.env.store.asset_events(EventsOf::All, None, 10).await.expect("events");
    let left: Vec<Value> = left.iter().map(|e| e.extra.clone()).collect();
    assert_eq!(left, vec![json!({"key": "k2"})], "only the event the paused DAG waits for");
    api.stop().await;
}
