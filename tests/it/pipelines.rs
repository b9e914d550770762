//! The example pipelines of `dags/` end to end: the real DAG files, run by the real scheduler
//! and local executor, against the real Kafka, Cassandra and S3 servers, with their REST
//! sources pointed at a local HTTP server that serves recorded responses
//! (`tests/fixtures/recorded/`). Each run gets its own topic, keyspace and bucket through the
//! run's conf. The tests check the rows and objects with their own clients.

use crate::support::common;
use crate::support::streaming as streaming_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use axum::extract::Query;
use axum::routing::get;
use common::{Db, Env};
use serde_json::{Value, json};
use streaming_support::{Servers, count_rows, unique};

use crate::support::lineage::{self as ol, Lineage};

const LIMIT: Duration = Duration::from_secs(180);

fn recorded(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recorded").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The two public APIs, replayed: randomuser.me (`/api/?page=N`, two recorded pages, then the
/// first again as the API never ends) and a quotes API (`/api/v3/quote/<symbols>`).
async fn recorded_apis() -> String {
    let app = axum::Router::new()
        .route(
            "/api/",
            get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
                let page = q.get("page").map(String::as_str).unwrap_or("1");
                let name =
                    if page == "2" { "randomuser_page2.json" } else { "randomuser_page1.json" };
                axum::Json(recorded(name))
            }),
        )
        .route(
            "/api/v3/quote/{symbols}",
            get(|| async { axum::Json(recorded("stock_quotes.json")) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// An engine over a DAGs folder holding a copy of `dags/<file>`, its connections pointed at
/// the test servers and the recorded APIs.
async fn env_with(file: &str, s: &Servers, api: &str) -> Env {
    let mut env = Env::new(Db::Sqlite).await.expect("env");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("dags").join(file);
    env.write_dag(file, &std::fs::read_to_string(src).unwrap());
    for (var, uri) in s.conns() {
        let id = var.trim_start_matches("UPDRAFT_CONN_").to_lowercase();
        env.settings.connections.insert(id, uri);
    }
    env.settings.connections.insert("randomuser_api".into(), api.to_string());
    env.settings.connections.insert("stock_api".into(), api.to_string());
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_ingestion_lands_every_user_in_cassandra() {
    let Some(s) = Servers::get() else { return };
    let api = recorded_apis().await;
    let mut env = env_with("user_ingestion.yaml", &s, &api).await;
    let lineage = Lineage::start(&mut env, "pipelines").await;
    let (topic, ks) = (unique("users_created"), unique("spark_streams"));
    let run =
        env.run_example("user_ingestion", json!({"topic": topic, "keyspace": ks}), LIMIT).await;
    check_lineage(&env, &lineage, &run.run_id, (&s, &topic, &ks)).await;

    let session = s.cassandra().await;
    assert_eq!(count_rows(&session, &format!("{ks}.created_users")).await, 10);
    let rows = session
        .query_unpaged(
            format!("SELECT id, first_name, city, street_number, dob FROM {ks}.created_users"),
            &[],
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    type Row = (uuid::Uuid, String, String, i32, chrono::DateTime<chrono::Utc>);
    let rows: Vec<Row> = rows.rows::<Row>().unwrap().map(Result::unwrap).collect();
    let mut want = BTreeSet::new();
    for page in ["randomuser_page1.json", "randomuser_page2.json"] {
        for u in recorded(page)["results"].as_array().unwrap() {
            want.insert((
                u["login"]["uuid"].as_str().unwrap().to_string(),
                u["name"]["first"].as_str().unwrap().to_string(),
                u["location"]["street"]["number"].as_i64().unwrap() as i32,
                u["dob"]["date"].as_str().unwrap().to_string(),
            ));
        }
    }
    let got: BTreeSet<(String, String, i32, String)> = rows
        .iter()
        .map(|(id, first, city, n, dob)| {
            assert_eq!(city, "Lyon");
            let dob = dob.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            (id.to_string(), first.clone(), *n, dob)
        })
        .collect();
    assert_eq!(got, want);
}

/// The run's OpenLineage events: valid against the schemas; a START and a COMPLETE for the
/// run and for each task, the tasks' parent the run; the topic the users go through, named by
/// its broker, as the fetch's output and the load's input, the Cassandra table (with the
/// mapping's columns) as the load's output.
async fn check_lineage(
    env: &Env,
    lineage: &Lineage,
    run_id: &str,
    (s, topic, ks): (&Servers, &str, &str),
) {
    let run = ("user_ingestion", run_id);
    let limit = Duration::from_secs(30);
    let mut events = lineage.wait_for(run, "user_ingestion", "COMPLETE", limit).await;
    for task in ["create_table", "fetch_users", "to_cassandra"] {
        let job = format!("user_ingestion.{task}");
        events = lineage.wait_for(run, &job, "COMPLETE", limit).await;
    }
    ol::assert_valid(&events, env.dir.path());
    let run = ol::event(&events, "user_ingestion", "START");
    for task in ["create_table", "fetch_users", "to_cassandra"] {
        let job = format!("user_ingestion.{task}");
        let start = ol::event(&events, &job, "START");
        ol::event(&events, &job, "COMPLETE");
        assert_eq!(start["run"]["facets"]["parent"]["run"]["runId"], run["run"]["runId"]);
        assert_eq!(start["job"]["namespace"], "pipelines");
    }
    let kafka = (format!("kafka://{}", s.kafka), topic.to_string());
    let table = (format!("cassandra://{}", s.cassandra), format!("{ks}.created_users"));
    let fetch = ol::event(&events, "user_ingestion.fetch_users", "COMPLETE");
    assert_eq!(ol::named(fetch, "outputs"), std::slice::from_ref(&kafka));
    assert_eq!(ol::named(fetch, "inputs"), [], "a REST API is no dataset");
    let load = ol::event(&events, "user_ingestion.to_cassandra", "START");
    assert_eq!(ol::named(load, "inputs"), [kafka]);
    assert_eq!(ol::named(load, "outputs"), std::slice::from_ref(&table));
    let columns = ol::fields(load, "outputs", &table.1);
    assert!(
        columns.contains(&"id".to_string()) && columns.contains(&"dob".to_string()),
        "{columns:?}"
    );
    assert_eq!(columns.len(), 16, "{columns:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_lake_writes_the_days_objects_and_lists_them() {
    let Some(s) = Servers::get() else { return };
    let api = recorded_apis().await;
    let env = env_with("market_data_lake.yaml", &s, &api).await;
    let (topic, bucket) = (unique("stock_quotes"), unique("market").replace('_', "-"));
    s.create_bucket(&bucket).await;
    let run =
        env.run_example("market_data_lake", json!({"topic": topic, "bucket": bucket}), LIMIT).await;
    let tis = env.tis(run.id).await;
    let list = tis.iter().find(|t| t.task_id == "list_today").unwrap();
    let xcom = env.store.run_xcoms(run.id).await.unwrap();

    let objects = s.objects(&bucket, &topic).await;
    let today = chrono::Utc::now().format("dt=%Y-%m-%d").to_string();
    let mut symbols = Vec::new();
    for (key, body) in &objects {
        assert!(key.starts_with(&format!("{topic}/{today}/hour=")), "{key}");
        for line in body.lines() {
            let q: Value = serde_json::from_str(line).unwrap();
            symbols.push(q["symbol"].as_str().unwrap().to_string());
        }
    }
    symbols.sort();
    assert_eq!(symbols, ["AAPL", "AMZN", "GOOGL", "MSFT", "NVDA"]);
    let listed = xcom
        .iter()
        .find(|x| x.task_id == list.task_id)
        .map(|x| x.value.clone())
        .expect("list_today pushed an XCom");
    let want: Vec<Value> =
        objects.iter().map(|(k, _)| Value::String(format!("s3://{bucket}/{k}"))).collect();
    assert_eq!(listed, Value::Array(want));
}
