//! What a hostile or careless API client cannot do, on SQLite and PostgreSQL: trigger with a
//! conf that does not fit the DAG's params (400 naming the param, no run created), use a run
//! id that could leave its log folder, clear a map index that does not exist (404), or turn a
//! list filter into a wildcard. And a bad run id already stored still cannot write outside
//! the logs folder.

use crate::support::api as api_support;
use crate::support::common;

use std::time::Duration;

use api_support::ApiEnv;
use common::{Db, Env, both};
use reqwest::StatusCode;
use serde_json::{Value, json};
use updraft::model::RunType;
use updraft::store::NewRun;

const LIMIT: Duration = Duration::from_secs(30);

const TYPED: &str = r#"
dag_id: typed
tags: [x_y]
params:
  rows: 50
  env: {type: string, enum: [dev, prod], default: dev}
  n: {type: integer, minimum: 1, maximum: 1000, default: 10}
tasks:
  a:
    type: bash
    command: echo "rows={{ params.rows }}"
"#;

fn small(dag_id: &str, tag: &str) -> String {
    format!("dag_id: {dag_id}\ntags: [{tag}]\ntasks:\n  only:\n    type: empty\n")
}

fn refused(a: &api_support::Answer, status: StatusCode, words: &[&str]) {
    assert_eq!(a.status, status, "{}", a.body);
    let msg = a.body["error"].as_str().unwrap_or_default();
    for w in words {
        assert!(msg.contains(w), "error `{msg}` lacks `{w}`");
    }
}

fn dag_ids(list: &Value) -> Vec<String> {
    let dags = list["dags"].as_array().cloned().unwrap_or_default();
    dags.iter().map(|d| d["dag_id"].as_str().unwrap_or_default().to_string()).collect()
}

both!(conf_run_ids_map_indexes_and_filters);

async fn conf_run_ids_map_indexes_and_filters(env: Env) {
    let dags = [
        ("typed.yaml", TYPED.to_string()),
        ("a_b.yaml", small("a_b", "x_y")),
        ("axb.yaml", small("axb", "xzy")),
    ];
    let api = ApiEnv::start(env, &dags, &["typed", "a_b", "axb"]).await;
    let op = &api.operator;
    let post = |body: Value| {
        let api = &api;
        async move { api.post("/dags/typed/dagRuns", op, &body.to_string()).await }
    };

    let detail = api.get_ok("/dags/typed", &api.viewer).await;
    assert_eq!(detail["params"], json!({"rows": 50, "env": "dev", "n": 10}));
    let n = json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 10});
    assert_eq!(detail["param_schemas"]["n"], n);
    assert_eq!(detail["param_schemas"]["rows"], json!({"type": "integer", "default": 50}));

    // The exploit's shape: a string where the DAG declares an integer.
    let exploit = json!({"conf": {"rows": "1 1 /dev/null; id > FILE; awk -v n=1"}});
    refused(
        &post(exploit).await,
        StatusCode::BAD_REQUEST,
        &["param `rows`", "expected an integer"],
    );
    let cases = [
        (json!({"rows": "50"}), vec!["param `rows`", "got the text `50`", "JSON value"]),
        (json!({"env": "staging"}), vec!["param `env`", "one of `dev`, `prod`"]),
        (json!({"n": 0}), vec!["param `n`", "from 1 to 1000"]),
        (json!({"n": 5, "rows": true}), vec!["param `rows`", "got `true`"]),
    ];
    for (conf, words) in cases {
        refused(&post(json!({"conf": conf})).await, StatusCode::BAD_REQUEST, &words);
    }
    for bad in ["..", ".", "a/b", "a\\b", " x", "x\n", &"r".repeat(251)] {
        let a = post(json!({"dag_run_id": bad})).await;
        refused(&a, StatusCode::BAD_REQUEST, &["run id"]);
    }
    let none = api.get_ok("/dags/typed/dagRuns", &api.viewer).await;
    assert_eq!(none["total_entries"], json!(0), "nothing refused was created: {none}");

    // Accepted: typed values, and an undeclared key kept as given.
    let ok = post(json!({"dag_run_id": "ok-1", "conf": {"rows": 7, "extra": "kept"}})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["conf"], json!({"rows": 7, "extra": "kept"}));
    let run = api.wait_run("typed", "ok-1", LIMIT).await;
    assert_eq!(run["state"], json!("success"), "{run}");

    // A map index that does not exist is not "queued or running": 404.
    let clear = "/dags/typed/dagRuns/ok-1/taskInstances/a/clear";
    let a = api.post(clear, op, r#"{"map_index": 3}"#).await;
    refused(&a, StatusCode::NOT_FOUND, &["no task instance `a[3]`"]);
    let a = api.post(clear, op, "{}").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // `%` and `_` are literal in filters.
    let v = &api.viewer;
    assert_eq!(dag_ids(&api.get_ok("/dags?dag_id_pattern=a_b", v).await), ["a_b"]);
    assert_eq!(dag_ids(&api.get_ok("/dags?dag_id_pattern=_", v).await), ["a_b"]);
    assert!(dag_ids(&api.get_ok("/dags?dag_id_pattern=%25", v).await).is_empty());
    assert!(dag_ids(&api.get_ok("/dags?dag_id_pattern=a%25b", v).await).is_empty());
    assert_eq!(dag_ids(&api.get_ok("/dags?tags=x_y", v).await), ["a_b", "typed"]);
    assert!(dag_ids(&api.get_ok("/dags?tags=x%25", v).await).is_empty());

    // A run id `..` written to the store before the check existed: its task still logs inside
    // the DAG's folder, not in `logs/a/`.
    let now = chrono::Utc::now();
    let stored = NewRun {
        dag_id: "typed".into(),
        run_id: "..".into(),
        run_type: RunType::Manual,
        logical_date: now,
        data_interval_start: now,
        data_interval_end: now,
        conf: Default::default(),
        triggered_by: "test".into(),
        deadlines: Vec::new(),
    };
    let row = api.env.store.create_run(&stored, now).await.expect("stored bad run");
    common::assert_success(&api.env.wait_run(row.id, LIMIT).await);
    let logs = api.env.settings.log_dir();
    assert!(!logs.join("a").exists(), "a log escaped to {}", logs.join("a").display());
    let inside = logs.join("typed").join("%2E%2E").join("a").join("1.log");
    assert!(common::read(&inside).contains("rows=50"), "{}", inside.display());
    api.stop().await;
}
