//! The REST API end to end: a real store, the engine running real DAG files, the web server on
//! 127.0.0.1 and bearer tokens per role. Covers DAG listing and pausing, triggering and
//! watching a run, logs with offset tailing, clear and mark, the errors (401, 403, 404, 409,
//! 400 naming the field, path traversal) and the OpenAPI document against the served routes.

use crate::support::api as api_support;
use crate::support::common;

use std::time::Duration;

use api_support::{ApiEnv, HELLO, small_dag};
use common::{Db, Env};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Bound on waiting for a run (the machine running the tests may be busy).
const LIMIT: Duration = Duration::from_secs(30);

fn ids(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` in {list}"))
        .iter()
        .map(|d| d[field].as_str().unwrap_or_default().to_string())
        .collect()
}

fn assert_error(a: &api_support::Answer, status: StatusCode, mentions: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["status"], json!(status.as_u16()));
    let msg = a.body["error"].as_str().unwrap_or_default();
    assert!(msg.contains(mentions), "error `{msg}` does not mention `{mentions}`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dags_are_listed_filtered_paged_and_paused() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let dags = [
        ("hello.yaml", HELLO.to_string()),
        ("a1.yaml", small_dag("a1", "bob", "batch", false)),
        ("a2.yaml", small_dag("a2", "bob", "batch", true)),
        ("a3.yaml", small_dag("a3", "carol", "batch", false)),
        ("broken.yaml", "dag_id: broken\ntasks:\n  x:\n    type: bash\n    comand: ls\n".into()),
    ];
    let api = ApiEnv::start(env, &dags, &["hello", "a1", "a2", "a3"]).await;
    let v = &api.viewer;

    let all = api.get_ok("/dags", v).await;
    assert_eq!(ids(&all, "dags", "dag_id"), ["a1", "a2", "a3", "hello"]);
    assert_eq!(all["total_entries"], json!(4));
    let hello = &all["dags"][3];
    assert_eq!(hello["owner"], json!("alice"));
    assert_eq!(hello["tags"], json!(["demo", "api"]));
    assert_eq!(hello["description"], json!("says hello"));
    assert_eq!(hello["fileloc"], json!("hello.yaml"));
    assert_eq!(
        (hello["is_paused"].clone(), hello["is_active"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(hello["schedule"], Value::Null);

    let cases = [
        ("/dags?limit=2", vec!["a1", "a2"], 4),
        ("/dags?limit=2&offset=2", vec!["a3", "hello"], 4),
        ("/dags?limit=5000", vec!["a1", "a2", "a3", "hello"], 4),
        ("/dags?owner=bob", vec!["a1", "a2"], 2),
        ("/dags?tags=batch&paused=true", vec!["a2"], 1),
        ("/dags?paused=false&limit=1", vec!["a1"], 3),
        ("/dags?dag_id_pattern=HEL", vec!["hello"], 1),
        ("/dags?tags=nope", vec![], 0),
    ];
    for (path, want, total) in cases {
        let page = api.get_ok(path, v).await;
        assert_eq!(ids(&page, "dags", "dag_id"), want, "{path}");
        assert_eq!(page["total_entries"], json!(total), "{path}");
    }
    assert_error(&api.get("/dags?limit=abc", v).await, StatusCode::BAD_REQUEST, "`limit`");
    assert_error(&api.get("/dags?limit=0", v).await, StatusCode::BAD_REQUEST, "`limit`");
    assert_error(&api.get("/dags?offset=-1", v).await, StatusCode::BAD_REQUEST, "`offset`");
    assert_error(&api.get("/dags?paused=maybe", v).await, StatusCode::BAD_REQUEST, "`paused`");
    assert_error(&api.get("/dags?colour=red", v).await, StatusCode::BAD_REQUEST, "colour");

    let detail = api.get_ok("/dags/hello", v).await;
    assert_eq!(detail["params"], json!({"greeting": "hi"}));
    assert_eq!(ids(&detail, "tasks", "task_id"), ["first", "second", "third"]);
    let second = &detail["tasks"][1];
    assert_eq!(second["type"], json!("bash"));
    assert_eq!(second["depends_on"], json!(["first"]));
    assert_eq!(second["trigger_rule"], json!("all_success"));
    assert_eq!(second["retries"], json!(1));
    assert_error(&api.get("/dags/nope", v).await, StatusCode::NOT_FOUND, "nope");

    // Pausing: who may.
    let pause = r#"{"is_paused": true}"#;
    let no_token = api.call(Method::PATCH, "/dags/hello", None, Some(pause)).await;
    assert_error(&no_token, StatusCode::UNAUTHORIZED, "log in");
    let bad = api.patch("/dags/hello", "not-a-token", pause).await;
    assert_error(&bad, StatusCode::UNAUTHORIZED, "log in");
    assert_error(&api.patch("/dags/hello", v, pause).await, StatusCode::FORBIDDEN, "operator");
    assert_error(&api.patch("/dags/hello", &api.nobody, pause).await, StatusCode::FORBIDDEN, "");
    assert_error(&api.get("/dags", &api.nobody).await, StatusCode::FORBIDDEN, "viewer");
    let done = api.patch("/dags/hello", &api.operator, pause).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["is_paused"], json!(true));
    assert_eq!(done.body["tasks"].as_array().map(Vec::len), Some(3));
    assert_eq!(api.get_ok("/dags/hello", v).await["is_paused"], json!(true));
    assert!(api.env.store.get_dag("hello").await.expect("dag").is_paused);
    let paused = api.get_ok("/dags?paused=true", v).await;
    assert_eq!(ids(&paused, "dags", "dag_id"), ["a2", "hello"]);
    let unpause = api.patch("/dags/hello", &api.admin, r#"{"is_paused": false}"#).await;
    assert_eq!(unpause.body["is_paused"], json!(false));
    let audit = api.env.store.list_audit(None, None, 50).await.expect("audit");
    assert!(audit.iter().any(|a| a.event == "pause" && a.username == "operator"), "{audit:?}");

    // Malformed bodies: 400 naming the problem.
    let op = &api.operator;
    let cases = [
        (r#"{"is_paused": tru"#, "request body"),
        (r#"{"is_paused": "yes"}"#, "`is_paused`"),
        (r#"{"is_paused": true, "extra": 1}"#, "unknown field `extra`"),
        ("{}", "missing field `is_paused`"),
        ("[true]", "request body"),
    ];
    for (body, mention) in cases {
        assert_error(&api.patch("/dags/hello", op, body).await, StatusCode::BAD_REQUEST, mention);
    }
    let plain = api
        .client
        .patch(format!("{}/api/v1/dags/hello", api.base))
        .bearer_auth(op)
        .header("content-type", "text/plain")
        .body(pause)
        .send()
        .await
        .expect("send");
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    let msg: Value = plain.json().await.expect("json");
    assert!(msg["error"].as_str().unwrap_or_default().contains("Content-Type"), "{msg}");
    assert_error(&api.patch("/dags/nope", op, pause).await, StatusCode::NOT_FOUND, "nope");

    // A browser session may call the API too, but its writes need the CSRF token.
    let user = api.env.store.find_user("operator").await.expect("store").expect("user");
    let (cookie, now) = ("cookie-secret", chrono::Utc::now());
    let hash = updraft::secrets::token_hash(cookie);
    let later = now + chrono::Duration::hours(1);
    api.env.store.create_session(&hash, user.id, "csrf-1", now, later).await.expect("session");
    let with_cookie = |csrf: Option<&str>| {
        let mut req = api
            .client
            .patch(format!("{}/api/v1/dags/hello", api.base))
            .header("cookie", format!("updraft_session={cookie}"))
            .header("content-type", "application/json")
            .body(pause);
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        req.send()
    };
    assert_eq!(with_cookie(None).await.expect("send").status(), StatusCode::FORBIDDEN);
    assert_eq!(with_cookie(Some("wrong")).await.expect("send").status(), StatusCode::FORBIDDEN);
    assert_eq!(with_cookie(Some("csrf-1")).await.expect("send").status(), StatusCode::OK);
    api.patch("/dags/hello", op, r#"{"is_paused": false}"#).await;

    let errors = api.get_ok("/importErrors", v).await;
    assert_eq!(errors["total_entries"], json!(1), "{errors}");
    let e = &errors["import_errors"][0];
    assert_eq!(e["filename"], json!("broken.yaml"));
    assert!(e["line"].as_u64().unwrap_or(0) > 0 && e["column"].as_u64().unwrap_or(0) > 0, "{e}");
    assert!(e["message"].as_str().unwrap_or_default().contains("comand"), "{e}");

    let health = api.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["metadatabase"], json!("healthy"));
    let wrong = api.call(Method::DELETE, "/dags/hello", Some(op), None).await;
    assert_error(&wrong, StatusCode::METHOD_NOT_ALLOWED, "method");
    let unknown = api.get("/dags/hello/nothing/here", op).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "no such API path");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_lifecycle_sqlite() {
    run_lifecycle(Env::new(Db::Sqlite).await.expect("sqlite env")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_lifecycle_postgres() {
    if let Some(env) = Env::new(Db::Postgres).await {
        run_lifecycle(env).await;
    }
}

/// Trigger with conf, watch the run, read logs with offsets, clear with downstream, mark.
async fn run_lifecycle(env: Env) {
    let api = ApiEnv::start(env, &[("hello.yaml", HELLO.to_string())], &["hello"]).await;
    let (v, op) = (&api.viewer, &api.operator);
    let body = r#"{"conf": {"greeting": "hey"}, "dag_run_id": "api-run-1"}"#;
    assert_error(&api.post("/dags/hello/dagRuns", v, body).await, StatusCode::FORBIDDEN, "");
    let created = api.post("/dags/hello/dagRuns", op, body).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.body["dag_run_id"], json!("api-run-1"));
    assert_eq!(created.body["conf"], json!({"greeting": "hey"}));
    assert_eq!(created.body["run_type"], json!("manual"));
    assert_eq!(created.body["triggered_by"], json!("user:operator"));
    let again = api.post("/dags/hello/dagRuns", op, body).await;
    assert_error(&again, StatusCode::CONFLICT, "api-run-1");
    assert_error(&api.post("/dags/nope/dagRuns", op, "{}").await, StatusCode::NOT_FOUND, "nope");
    let bad_conf = api.post("/dags/hello/dagRuns", op, r#"{"conf": [1]}"#).await;
    assert_error(&bad_conf, StatusCode::BAD_REQUEST, "`conf`");
    let bad_date = api.post("/dags/hello/dagRuns", op, r#"{"logical_date": "yesterday"}"#).await;
    assert_error(&bad_date, StatusCode::BAD_REQUEST, "`logical_date`");

    let run = api.wait_run("hello", "api-run-1", LIMIT).await;
    assert_eq!(run["state"], json!("success"), "{run}");
    for field in ["logical_date", "queued_at", "start_date", "end_date"] {
        let text = run[field].as_str().unwrap_or_default();
        assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{field}: `{text}`");
    }

    // Keyset pages of runs, newest first; a body may be left out.
    let second = api.call(Method::POST, "/dags/hello/dagRuns", Some(op), None).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let second_id = second.body["dag_run_id"].as_str().expect("run id").to_string();
    assert!(second_id.starts_with("manual__"), "{second_id}");
    let page = api.get_ok("/dags/hello/dagRuns?limit=1", v).await;
    assert_eq!(ids(&page, "dag_runs", "dag_run_id"), std::slice::from_ref(&second_id));
    assert_eq!(page["total_entries"], json!(2));
    let cursor = page["next_before"].as_i64().expect("a cursor");
    let older = api.get_ok(&format!("/dags/hello/dagRuns?limit=1&before={cursor}"), v).await;
    assert_eq!(ids(&older, "dag_runs", "dag_run_id"), ["api-run-1"]);
    assert_eq!(older["next_before"], Value::Null);
    assert_error(&api.get("/dags/nope/dagRuns", v).await, StatusCode::NOT_FOUND, "nope");
    assert_error(&api.get("/dags/hello/dagRuns/zzz", v).await, StatusCode::NOT_FOUND, "zzz");
    api.wait_run("hello", &second_id, LIMIT).await;

    let run_path = "/dags/hello/dagRuns/api-run-1";
    let tis = api.get_ok(&format!("{run_path}/taskInstances"), v).await;
    assert_eq!(ids(&tis, "task_instances", "task_id"), ["first", "second", "third"]);
    for ti in tis["task_instances"].as_array().expect("tis") {
        assert_eq!((ti["state"].as_str(), ti["try_number"].as_i64()), (Some("success"), Some(1)));
        assert_eq!((ti["operator"].as_str(), ti["map_index"].as_i64()), (Some("bash"), Some(-1)));
        assert!(ti["duration"].as_f64().is_some_and(|d| d >= 0.0), "{ti}");
        assert!(ti["hostname"].is_string(), "{ti}");
    }
    let first = api.get_ok(&format!("{run_path}/taskInstances/first"), v).await;
    assert_eq!(first["tries"].as_array().map(Vec::len), Some(1), "{first}");
    let missing = api.get(&format!("{run_path}/taskInstances/first?map_index=3"), v).await;
    assert_error(&missing, StatusCode::NOT_FOUND, "first[3]");

    // The log, whole and tailed from offsets.
    let logs = format!("{run_path}/taskInstances/first/logs");
    let whole = api.get_ok(&format!("{logs}/1"), v).await;
    let text = whole["content"].as_str().expect("content").to_string();
    assert!(text.contains("line one hey") && text.contains("line three"), "{text}");
    assert_eq!(whole["offset"], json!(text.len()));
    assert_eq!(whole["finished"], json!(true));
    let mid = text.find("line two").expect("line two");
    let tail = api.get_ok(&format!("{logs}/1?offset={mid}"), v).await;
    assert_eq!(tail["content"].as_str(), Some(&text[mid..]));
    assert_eq!(tail["offset"], json!(text.len()));
    let end = api.get_ok(&format!("{logs}/1?offset={}", text.len()), v).await;
    assert_eq!((end["content"].as_str(), end["finished"].as_bool()), (Some(""), Some(true)));
    // Past the end: nothing, and where the log ends (as the raw log page answers).
    let past = api.get_ok(&format!("{logs}/1?offset={}", text.len() + 10), v).await;
    assert_eq!((past["content"].as_str(), past["offset"].clone()), (Some(""), json!(text.len())));
    assert_error(&api.get(&format!("{logs}/2"), v).await, StatusCode::NOT_FOUND, "try 2");
    assert_error(&api.get(&format!("{logs}/x"), v).await, StatusCode::BAD_REQUEST, "path");

    // Path traversal: refused before any lookup, and a symlink out of the log folder too.
    let sneaky = [
        format!("{run_path}/taskInstances/..%2F..%2Fsecret/logs/1"),
        "/dags/hello%00/dagRuns/api-run-1/taskInstances/first/logs/1".to_string(),
        "/dags/hello/dagRuns/..%2Fapi-run-1/taskInstances/first/logs/1".to_string(),
    ];
    for path in sneaky {
        assert_error(&api.get(&path, v).await, StatusCode::BAD_REQUEST, "ids contain no");
    }
    let secret = api.env.path("secret.txt");
    std::fs::write(&secret, "do not show").expect("secret");
    let pk = api.env.store.find_run("hello", "api-run-1").await.expect("store").expect("run").id;
    let tis_rows = api.env.tis(pk).await;
    let third = tis_rows.iter().find(|t| t.task_id == "third").expect("third");
    let third_log = updraft::worker::log_path(&api.env.settings, third, 1);
    std::fs::remove_file(&third_log).expect("remove log");
    std::os::unix::fs::symlink(&secret, &third_log).expect("symlink");
    let out = api.get(&format!("{run_path}/taskInstances/third/logs/1"), v).await;
    assert_error(&out, StatusCode::BAD_REQUEST, "outside the log folder");

    // Clear with downstream: second and third run again.
    let clear = format!("{run_path}/taskInstances/second/clear");
    let down = r#"{"include_downstream": true}"#;
    assert_error(&api.post(&clear, v, down).await, StatusCode::FORBIDDEN, "operator");
    assert_error(&api.post(&clear, op, r#"{"downstream": 1}"#).await, StatusCode::BAD_REQUEST, "");
    let cleared = api.post(&clear, op, down).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.body["cleared"], json!(2));
    let rerun = api.wait_run("hello", "api-run-1", LIMIT).await;
    assert_eq!(rerun["state"], json!("success"), "{rerun}");
    let second_ti = api.get_ok(&format!("{run_path}/taskInstances/second"), v).await;
    assert_eq!(second_ti["try_number"], json!(2), "{second_ti}");
    assert_eq!(second_ti["tries"].as_array().map(Vec::len), Some(2));
    let log2 = api.get_ok(&format!("{run_path}/taskInstances/second/logs/2"), v).await;
    assert!(log2["content"].as_str().unwrap_or_default().contains("second saw hey"), "{log2}");

    // Mark.
    let ti = format!("{run_path}/taskInstances/first");
    let failed = r#"{"state": "failed"}"#;
    assert_error(&api.patch(&ti, v, failed).await, StatusCode::FORBIDDEN, "operator");
    let running = api.patch(&ti, op, r#"{"state": "running"}"#).await;
    assert_error(&running, StatusCode::BAD_REQUEST, "`state`");
    let marked = api.patch(&ti, op, failed).await;
    assert_eq!(marked.status, StatusCode::OK, "{}", marked.body);
    assert_eq!(marked.body["state"], json!("failed"));
    assert_eq!(api.get_ok(&ti, v).await["state"], json!("failed"));
    assert_error(&api.patch(&ti, op, failed).await, StatusCode::CONFLICT, "cannot mark");
    let audit = api.env.store.list_audit(None, None, 50).await.expect("audit");
    for event in ["trigger", "clear", "mark"] {
        assert!(audit.iter().any(|a| a.event == event && a.username == "operator"), "{event}");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_exactly_the_served_routes() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    // A scheduled DAG, paused, for the backfill routes (its runs stay queued), with an
    // outlet for the asset routes.
    let daily = "dag_id: daily\nschedule: '@daily'\nstart_date: 2026-01-01\n\
                 is_paused_upon_creation: true\ntasks:\n  a: {type: empty, outlets: [lake]}\n";
    let files = [("hello.yaml", HELLO.to_string()), ("daily.yaml", daily.to_string())];
    let api = ApiEnv::start(env, &files, &["hello"]).await;
    let created = api.post("/dags/hello/dagRuns", &api.operator, r#"{"dag_run_id": "r1"}"#).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    api.wait_run("hello", "r1", LIMIT).await;
    let range = r#"{"dag_id": "daily", "from_date": "2026-01-01T00:00:00Z", "to_date": "2026-01-03T00:00:00Z"}"#;
    let backfill = api.post("/backfills", &api.operator, range).await;
    assert_eq!(backfill.status, StatusCode::OK, "{}", backfill.body);
    assert_eq!(backfill.body["backfill"]["id"], json!(1), "{}", backfill.body);

    let doc = api.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.body;
    assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3.0"));
    assert_eq!(doc["servers"][0]["url"], json!("/api/v1"));
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], json!("bearer"));
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            documented.push((method.to_uppercase(), path.clone()));
            // Every `{param}` of the path is a declared parameter.
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .filter(|p| p["in"] == json!("path"))
                .filter_map(|p| p["name"].as_str())
                .collect();
            let in_path: Vec<&str> =
                path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            assert_eq!(declared, in_path, "{method} {path}");
            let success = &op["responses"][if method == "delete" { "204" } else { "200" }];
            assert!(success.is_object(), "{method} {path}");
        }
    }
    let mut table: Vec<(String, String)> = updraft::web::api::ROUTES
        .iter()
        .map(|r| (r.verb.as_str().to_uppercase(), r.path.to_string()))
        .collect();
    documented.sort();
    table.sort();
    assert_eq!(documented, table, "the document and the route table differ");
    // The delete last, on a run of its own (r2, triggered below).
    documented.sort_by_key(|(method, _)| method == "DELETE");

    // Every documented operation answers (real ids substituted), JSON, and not 404/405;
    // without a token every non-public one is a JSON 401.
    for (method, path) in &documented {
        let real = path
            .replace("{dag_id}", "hello")
            .replace("{dag_run_id}", "r1")
            .replace("{task_id}", "first")
            .replace("{try_number}", "1")
            .replace("{backfill_id}", "1");
        let body = match (method.as_str(), path.rsplit('/').next().unwrap_or_default()) {
            ("PATCH", "{dag_id}") => Some(r#"{"is_paused": false}"#),
            ("POST", "dagRuns") => Some(r#"{"dag_run_id": "r2"}"#),
            ("PATCH", "{task_id}") => Some(r#"{"state": "failed"}"#),
            ("POST", "clear") if path.contains("taskInstances") => {
                Some(r#"{"include_downstream": true}"#)
            }
            ("POST", "clear") => Some(r#"{"only_failed": false}"#),
            ("POST", "backfills") => Some(
                r#"{"dag_id": "daily", "from_date": "2026-01-04T00:00:00Z", "to_date": "2026-01-05T00:00:00Z", "dry_run": true}"#,
            ),
            ("PATCH", "{backfill_id}") => Some(r#"{"is_paused": true}"#),
            ("POST", "events") => Some(r#"{"asset_uri": "lake", "extra": {"rows": 1}}"#),
            ("PATCH", "{dag_run_id}") => Some(r#"{"state": "failed"}"#),
            ("PATCH", "setNote") => Some(r#"{"note": "checked by the API test"}"#),
            _ => None,
        };
        let verb = Method::from_bytes(method.as_bytes()).expect("method");
        let (real, want) = if method == "DELETE" {
            // Mark r2 failed (its tries stop), wait until nothing of it is queued or running.
            let run = "/dags/hello/dagRuns/r2";
            // First wait for the run to start (its instances exist): a run still queued could
            // start between the mark and the delete.
            let mut started = false;
            for _ in 0..100 {
                let tis = api.get_ok(&format!("{run}/taskInstances"), &api.admin).await;
                if !tis["task_instances"].as_array().expect("list").is_empty() {
                    started = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(started, "r2 did not start within 10 s");
            let failed = r#"{"state": "failed"}"#;
            let marked = api.call(Method::PATCH, run, Some(&api.admin), Some(failed)).await;
            assert_eq!(marked.status, StatusCode::OK, "mark r2 failed: {}", marked.body);
            let mut idle = false;
            for _ in 0..100 {
                let tis = api.get_ok(&format!("{run}/taskInstances"), &api.admin).await;
                let busy = tis["task_instances"]
                    .as_array()
                    .expect("list")
                    .iter()
                    .any(|t| matches!(t["state"].as_str(), Some("queued" | "running")));
                if !busy {
                    idle = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(idle, "r2 still has queued or running instances after 10 s");
            (run.to_string(), StatusCode::NO_CONTENT)
        } else {
            (real, StatusCode::OK)
        };
        let a = api.call(verb.clone(), &real, Some(&api.admin), body).await;
        assert_eq!(a.status, want, "{method} {real}: {}", a.body);
        if !matches!(path.as_str(), "/health" | "/openapi.json") {
            let anon = api.call(verb, &real, None, body).await;
            assert_error(&anon, StatusCode::UNAUTHORIZED, "log in");
        }
    }
    api.stop().await;
}
