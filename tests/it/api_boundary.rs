//! The REST API's edges as a hostile or sloppy client meets them: bodies with trailing
//! garbage, the bearer scheme in any case, the headers HTTP requires on 401 and 405, and run
//! ids that could climb out of a folder.

use crate::support::api as api_support;
use crate::support::common;

use api_support::{ApiEnv, small_dag};
use common::{Db, Env};
use reqwest::StatusCode;

async fn api() -> ApiEnv {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    ApiEnv::start(env, &[("d.yaml", small_dag("d", "o", "t", true))], &["d"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_end_where_the_object_ends() {
    let api = api().await;
    let op = api.operator.clone();
    for body in [r#"{"is_paused": false} x"#, r#"{"is_paused": false}{"is_paused": true}"#] {
        let a = api.patch("/dags/d", &op, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
        let msg = a.body["error"].as_str().unwrap_or_default();
        assert!(msg.contains("text after the JSON object"), "{msg}");
    }
    assert!(api.env.store.get_dag("d").await.expect("d").is_paused, "nothing was applied");
    let a = api.patch("/dags/d", &op, "{\"is_paused\": false}\n  ").await;
    assert_eq!(a.status, StatusCode::OK, "trailing white space is fine: {}", a.body);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_answers_follow_http() {
    let api = api().await;
    let url = format!("{}/api/v1/dags", api.base);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = api
            .client
            .get(&url)
            .header("authorization", format!("{scheme} {}", api.viewer))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK, "scheme {scheme}");
    }
    // A 401 names the scheme to use.
    for auth in [None, Some("Bearer not-a-token")] {
        let mut req = api.client.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.expect("get");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
        assert_eq!(challenge, Some("Bearer realm=\"updraft\""), "{auth:?}");
    }
    // A 405 says which methods the path has.
    let r = api.client.delete(format!("{}/api/v1/dags/d", api.base)).send().await.expect("del");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET, PATCH"));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ids_keep_to_the_documented_rule() {
    let api = api().await;
    let op = api.operator.clone();
    for bad in [".", "..", "a\\b", "a/b", " lead", "trail ", "tab\there", &"x".repeat(251)] {
        let body = serde_json::json!({ "dag_run_id": bad }).to_string();
        let a = api.post("/dags/d/dagRuns", &op, &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", a.body);
        assert!(a.body["error"].as_str().unwrap_or_default().contains("run id"), "{}", a.body);
    }
    assert_eq!(
        api.env.store.count_runs(&updraft::store::RunFilter::dag("d")).await.expect("count"),
        0,
        "none was created"
    );
    for good in ["...", ".hidden", "ünïcode run", &"é".repeat(250)] {
        let body = serde_json::json!({ "dag_run_id": good }).to_string();
        let a = api.post("/dags/d/dagRuns", &op, &body).await;
        assert_eq!(a.status, StatusCode::OK, "{good:?}: {}", a.body);
        assert_eq!(a.body["dag_run_id"].as_str(), Some(good));
    }
    api.stop().await;
}
