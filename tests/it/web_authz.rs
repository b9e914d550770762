//! The authorization matrix: every route of the web server (pages, form posts, API) called
//! with no login and with each role, checking allowed / refused on the server. A second test
//! scans the source for `.route(...)` registrations so that a new route cannot be added without
//! a row here.

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use tower::ServiceExt;
use updraft::config::Settings;
use updraft::dag::parse_dag_str;
use updraft::model::{DagRunState, RunType, TaskState};
use updraft::store::{NewRun, Store, TiUpdate};
use updraft::web::AppState;

use crate::support::web::{Creds, ROLES, app_state, logged_in};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// Anyone, without login.
    Public,
    /// Any logged-in user.
    Login,
    /// viewer, operator, author, admin.
    Read,
    /// operator, admin.
    Operate,
    /// author, admin.
    Author,
    /// admin.
    Admin,
}

/// (method, path as registered, path with real ids, body, need). Page posts get the session's
/// CSRF token added; API bodies are JSON.
const ROUTES: &[(&str, &str, &str, &str, Need)] = &[
    ("GET", "/", "/", "", Need::Public),
    ("GET", "/login", "/login", "", Need::Public),
    ("POST", "/login", "/login", "username=nobody&password=wrong-password", Need::Public),
    ("GET", "/health", "/health", "", Need::Public),
    ("GET", "/metrics", "/metrics", "", Need::Public),
    ("GET", "/static/app.css", "/static/app.css", "", Need::Public),
    ("GET", "/static/app.js", "/static/app.js", "", Need::Public),
    ("GET", "/static/codemirror.js", "/static/codemirror.js", "", Need::Public),
    ("GET", "/static/editor.js", "/static/editor.js", "", Need::Public),
    ("GET", "/dags", "/dags", "", Need::Read),
    ("GET", "/workers", "/workers", "", Need::Read),
    ("POST", "/dags/{dag_id}/pause", "/dags/d/pause", "paused=false", Need::Operate),
    ("GET", "/dags/{dag_id}/trigger", "/dags/d/trigger", "", Need::Operate),
    ("POST", "/dags/{dag_id}/trigger", "/dags/d/trigger", "run_id=", Need::Operate),
    ("GET", "/dags/{dag_id}", "/dags/d", "", Need::Read),
    ("GET", "/dags/{dag_id}/graph", "/dags/d/graph", "", Need::Read),
    ("GET", "/dags/{dag_id}/code", "/dags/d/code", "", Need::Read),
    ("GET", "/dags/{dag_id}/versions", "/dags/d/versions", "", Need::Read),
    ("GET", "/dags/{dag_id}/backfills", "/dags/d/backfills", "", Need::Read),
    ("GET", "/dags/{dag_id}/assets", "/dags/d/assets", "", Need::Read),
    ("GET", "/assets", "/assets", "", Need::Read),
    ("GET", "/assets/detail", "/assets/detail?uri=x", "", Need::Read),
    ("POST", "/assets/events", "/assets/events", "uri=x&extra=", Need::Operate),
    (
        "POST",
        "/dags/{dag_id}/backfills",
        "/dags/d/backfills",
        "from=2026-01-01T00:00&to=2026-01-02T00:00&reprocess=none&max_active_runs=1",
        Need::Operate,
    ),
    (
        "POST",
        "/dags/{dag_id}/backfills/{id}/{action}",
        "/dags/d/backfills/1/pause",
        "",
        Need::Operate,
    ),
    ("GET", "/dags/{dag_id}/runs", "/dags/d/runs", "", Need::Read),
    ("GET", "/dags/{dag_id}/runs/{run_id}", "/dags/d/runs/r1", "", Need::Read),
    (
        "GET",
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}",
        "/dags/d/runs/r1/tasks/a",
        "",
        Need::Read,
    ),
    (
        "GET",
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/logs/{try_number}",
        "/dags/d/runs/r1/tasks/a/logs/1",
        "",
        Need::Read,
    ),
    (
        "GET",
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/logs/{try_number}/stream",
        "/dags/d/runs/r1/tasks/a/logs/1/stream",
        "",
        Need::Read,
    ),
    (
        "POST",
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/clear",
        "/dags/d/runs/r1/tasks/b/clear",
        "map_index=-1",
        Need::Operate,
    ),
    (
        "POST",
        "/dags/{dag_id}/runs/{run_id}/clear",
        "/dags/d/runs/r1/clear",
        "only_failed=on",
        Need::Operate,
    ),
    (
        "POST",
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/mark",
        "/dags/d/runs/r1/tasks/b/mark",
        "map_index=-1&state=failed",
        Need::Operate,
    ),
    (
        "POST",
        "/dags/{dag_id}/runs/{run_id}/mark",
        "/dags/d/runs/r1/mark",
        "state=running",
        Need::Operate,
    ),
    ("POST", "/dags/{dag_id}/runs/{run_id}/delete", "/dags/d/runs/gone/delete", "", Need::Operate),
    ("POST", "/dags/{dag_id}/runs/{run_id}/note", "/dags/d/runs/r1/note", "note=n", Need::Operate),
    (
        "POST",
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/note",
        "/dags/d/runs/r1/tasks/a/note",
        "map_index=-1&note=n",
        Need::Operate,
    ),
    ("GET", "/home", "/home", "", Need::Read),
    ("GET", "/runs", "/runs?state=failed", "", Need::Read),
    ("POST", "/runs/bulk", "/runs/bulk", "action=mark_success&back=%2Fruns", Need::Operate),
    (
        "POST",
        "/task-instances/bulk",
        "/task-instances/bulk",
        "action=mark_success&back=%2Ftask-instances",
        Need::Operate,
    ),
    ("GET", "/task-instances", "/task-instances?dag=d", "", Need::Read),
    ("GET", "/editor", "/editor", "", Need::Author),
    ("GET", "/editor/new", "/editor/new", "", Need::Author),
    ("GET", "/editor/edit", "/editor/edit?file=d.yaml", "", Need::Author),
    (
        "POST",
        "/editor/validate",
        "/editor/validate",
        "file=x.yaml&content=dag_id%3A+x",
        Need::Author,
    ),
    ("POST", "/editor/save", "/editor/save", "file=x.yaml&content=nope%3A", Need::Author),
    ("POST", "/editor/delete", "/editor/delete", "file=missing.yaml", Need::Author),
    ("GET", "/admin/users", "/admin/users", "", Need::Admin),
    ("POST", "/admin/users", "/admin/users", "username=&password=", Need::Admin),
    ("POST", "/admin/users/{id}/roles", "/admin/users/999999/roles", "roles=viewer", Need::Admin),
    (
        "POST",
        "/admin/users/{id}/password",
        "/admin/users/999999/password",
        "password=short",
        Need::Admin,
    ),
    ("POST", "/admin/users/{id}/active", "/admin/users/999999/active", "active=false", Need::Admin),
    ("POST", "/admin/users/{id}/delete", "/admin/users/999999/delete", "", Need::Admin),
    ("GET", "/admin/connections", "/admin/connections", "", Need::Admin),
    ("POST", "/admin/connections", "/admin/connections", "conn_id=&uri=", Need::Admin),
    (
        "POST",
        "/admin/connections/delete",
        "/admin/connections/delete",
        "conn_id=missing",
        Need::Admin,
    ),
    ("POST", "/admin/connections/test", "/admin/connections/test", "conn_id=missing", Need::Admin),
    (
        "POST",
        "/admin/connections/test-notification",
        "/admin/connections/test-notification",
        "conn_id=missing",
        Need::Admin,
    ),
    ("GET", "/admin/variables", "/admin/variables", "", Need::Admin),
    ("POST", "/admin/variables", "/admin/variables", "key=&value=", Need::Admin),
    ("POST", "/admin/variables/delete", "/admin/variables/delete", "key=missing", Need::Admin),
    ("GET", "/admin/pools", "/admin/pools", "", Need::Admin),
    ("POST", "/admin/pools", "/admin/pools", "name=&slots=x", Need::Admin),
    ("POST", "/admin/pools/delete", "/admin/pools/delete", "name=missing", Need::Admin),
    ("GET", "/admin/audit", "/admin/audit", "", Need::Admin),
    ("GET", "/account", "/account", "", Need::Login),
    ("POST", "/account/password", "/account/password", "current=wrong&new=short", Need::Login),
    ("POST", "/account/tokens", "/account/tokens", "name=", Need::Login),
    ("POST", "/account/tokens/revoke", "/account/tokens/revoke", "id=999999", Need::Login),
    ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", "", Need::Public),
    ("GET", "/api/v1/health", "/api/v1/health", "", Need::Public),
    ("GET", "/api/v1/dags", "/api/v1/dags", "", Need::Read),
    ("GET", "/api/v1/backfills", "/api/v1/backfills?dag_id=d", "", Need::Read),
    ("GET", "/api/v1/assets", "/api/v1/assets", "", Need::Read),
    ("GET", "/api/v1/assets/events", "/api/v1/assets/events?limit=5", "", Need::Read),
    (
        "POST",
        "/api/v1/assets/events",
        "/api/v1/assets/events",
        r#"{"asset_uri": "x"}"#,
        Need::Operate,
    ),
    (
        "POST",
        "/api/v1/backfills",
        "/api/v1/backfills",
        r#"{"dag_id": "d", "from_date": "2026-01-01T00:00:00Z", "to_date": "2026-01-02T00:00:00Z", "dry_run": true}"#,
        Need::Operate,
    ),
    ("GET", "/api/v1/backfills/{backfill_id}", "/api/v1/backfills/1", "", Need::Read),
    (
        "PATCH",
        "/api/v1/backfills/{backfill_id}",
        "/api/v1/backfills/1",
        r#"{"is_paused": true}"#,
        Need::Operate,
    ),
    (
        "POST",
        "/api/v1/backfills/{backfill_id}/cancel",
        "/api/v1/backfills/1/cancel",
        "",
        Need::Operate,
    ),
    ("GET", "/api/v1/dags/{dag_id}", "/api/v1/dags/d", "", Need::Read),
    ("PATCH", "/api/v1/dags/{dag_id}", "/api/v1/dags/d", r#"{"is_paused": false}"#, Need::Operate),
    ("GET", "/api/v1/dags/{dag_id}/dagRuns", "/api/v1/dags/d/dagRuns", "", Need::Read),
    (
        "POST",
        "/api/v1/dags/{dag_id}/dagRuns",
        "/api/v1/dags/d/dagRuns",
        r#"{"dag_run_id": "r1"}"#,
        Need::Operate,
    ),
    (
        "GET",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}",
        "/api/v1/dags/d/dagRuns/r1",
        "",
        Need::Read,
    ),
    (
        "PATCH",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}",
        "/api/v1/dags/d/dagRuns/r1",
        r#"{"state": "running"}"#,
        Need::Operate,
    ),
    (
        "DELETE",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}",
        "/api/v1/dags/d/dagRuns/gone",
        "",
        Need::Operate,
    ),
    (
        "PATCH",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/setNote",
        "/api/v1/dags/d/dagRuns/r1/setNote",
        r#"{"note": "n"}"#,
        Need::Operate,
    ),
    (
        "PATCH",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/setNote",
        "/api/v1/dags/d/dagRuns/r1/taskInstances/a/setNote",
        r#"{"note": "n"}"#,
        Need::Operate,
    ),
    (
        "GET",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
        "/api/v1/dags/d/dagRuns/r1/taskInstances",
        "",
        Need::Read,
    ),
    (
        "GET",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
        "/api/v1/dags/d/dagRuns/r1/taskInstances/a",
        "",
        Need::Read,
    ),
    (
        "PATCH",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
        "/api/v1/dags/d/dagRuns/r1/taskInstances/b",
        r#"{"state": "failed"}"#,
        Need::Operate,
    ),
    (
        "POST",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/clear",
        "/api/v1/dags/d/dagRuns/r1/taskInstances/b/clear",
        r#"{"include_downstream": false}"#,
        Need::Operate,
    ),
    (
        "POST",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/clear",
        "/api/v1/dags/d/dagRuns/r1/clear",
        r#"{"only_failed": false}"#,
        Need::Operate,
    ),
    (
        "GET",
        "/api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
        "/api/v1/dags/d/dagRuns/r1/taskInstances/a/logs/1",
        "",
        Need::Read,
    ),
    ("GET", "/api/v1/importErrors", "/api/v1/importErrors", "", Need::Read),
    // Last: it ends the session it is called with.
    ("POST", "/logout", "/logout", "", Need::Login),
];

fn allowed(need: Need, role: &str) -> bool {
    match need {
        Need::Public | Need::Login | Need::Read => true,
        Need::Operate => matches!(role, "operator" | "admin"),
        Need::Author => matches!(role, "author" | "admin"),
        Need::Admin => role == "admin",
    }
}

struct Fixture {
    state: AppState,
    /// One logged-in user per role, named after the role.
    creds: Vec<Creds>,
    _home: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let home = tempfile::tempdir().expect("home");
    let dags = home.path().join("dags");
    std::fs::create_dir_all(&dags).expect("dags");
    let src = "dag_id: d\ntasks:\n  a: { type: bash, command: echo a }\n  b: { type: bash, command: echo b, depends_on: [a] }\n";
    std::fs::write(dags.join("d.yaml"), src).expect("write");
    let settings = Settings::for_home(home.path(), &dags);
    let store = Store::open(&settings.database_url).await.expect("store");
    let dag = parse_dag_str(src, "d.yaml".as_ref()).expect("valid");
    let now = Utc::now();
    store.sync_dags([&dag], std::iter::empty(), now).await.expect("sync");
    let run = NewRun {
        dag_id: "d".into(),
        run_id: "r1".into(),
        run_type: RunType::Manual,
        logical_date: now,
        data_interval_start: now,
        data_interval_end: now,
        conf: Default::default(),
        triggered_by: "test".into(),
        deadlines: Vec::new(),
    };
    let run = store.create_run(&run, now).await.expect("run");
    let tis: Vec<_> = dag
        .graph
        .topo_order()
        .iter()
        .map(|t| updraft::store::NewTi::for_task(&dag.tasks[t]))
        .collect();
    store.start_run(run.id, None, &tis, now).await.expect("start");
    let updates: Vec<TiUpdate> = store
        .run_tis(run.id)
        .await
        .expect("tis")
        .into_iter()
        .map(|t| TiUpdate { id: t.id, from: TaskState::None, to: TaskState::Success, note: None })
        .collect();
    store.apply_ti_updates(&updates, now).await.expect("finish");
    store
        .set_run_state(run.id, DagRunState::Running, DagRunState::Success, now)
        .await
        .expect("done");
    let mut creds = Vec::new();
    for role in ROLES {
        creds.push(logged_in(&store, role, &[role]).await);
    }
    let state = app_state(&store, &settings);
    Fixture { state, creds, _home: home }
}

async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    body: &str,
    who: Option<&Creds>,
) -> (StatusCode, String) {
    let api = path.starts_with("/api/");
    let mut req = Request::builder().method(method).uri(path);
    let mut body = body.to_string();
    if let Some(who) = who {
        let csrf = &who.csrf;
        if api {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", who.token));
        } else {
            req = req.header(header::COOKIE, who.cookie());
            if method == "POST" {
                body = if body.is_empty() {
                    format!("csrf={csrf}")
                } else {
                    format!("csrf={csrf}&{body}")
                };
            }
        }
    }
    if method != "GET" {
        let kind = if api { "application/json" } else { "application/x-www-form-urlencoded" };
        req = req.header(header::CONTENT_TYPE, kind);
    }
    let resp = updraft::web::router(state.clone())
        .oneshot(req.body(Body::from(body)).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, location)
}

#[tokio::test]
async fn every_route_checks_the_role_on_the_server() {
    let f = fixture().await;
    let mut failures = Vec::new();
    for (method, _, path, body, need) in ROUTES {
        // No login.
        let (status, location) = call(&f.state, method, path, body, None).await;
        let refused_anonymous = if path.starts_with("/api/") {
            status == StatusCode::UNAUTHORIZED
        } else {
            status == StatusCode::SEE_OTHER && location.starts_with("/login")
        };
        if (*need == Need::Public) == refused_anonymous {
            failures.push(format!("{method} {path} without login: {status} {location}"));
        }
        if *need == Need::Public {
            // Public routes answer the same with or without a login (POST /login without its
            // form's token is a 403 for everyone).
            continue;
        }
        for who in &f.creds {
            let (status, location) = call(&f.state, method, path, body, Some(who)).await;
            // Logging out redirects to the login page: that is its success.
            let login_redirect = status == StatusCode::SEE_OTHER
                && location.starts_with("/login")
                && *path != "/logout";
            let refused = status == StatusCode::FORBIDDEN
                || status == StatusCode::UNAUTHORIZED
                || login_redirect;
            if allowed(*need, &who.name) == refused {
                failures.push(format!(
                    "{method} {path} as {}: {status} {location} (needs {need:?})",
                    who.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "authorization matrix violations:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_page_post_without_the_csrf_token_is_refused() {
    let f = fixture().await;
    let admin = f.creds.iter().find(|c| c.name == "admin").expect("admin");
    for (method, _, path, body, _) in ROUTES {
        if *method != "POST" || path.starts_with("/api/") || *path == "/login" {
            continue;
        }
        let req = Request::builder()
            .method("POST")
            .uri(*path)
            .header(header::COOKIE, admin.cookie())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf=forged&{body}")))
            .expect("request");
        let resp = updraft::web::router(f.state.clone()).oneshot(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "POST {path} with a forged CSRF token");
    }
}

/// Every `.route("PATH", METHOD(..)...)` in src/web, as (METHOD, PATH).
fn registered_routes() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("read source");
            let compact: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for chunk in compact.split(".route(").skip(1) {
                let Some(path) =
                    chunk.trim_start().strip_prefix('"').and_then(|c| c.split('"').next())
                else {
                    continue;
                };
                // The handler chain runs up to the closing parenthesis of `.route(`.
                let mut depth = 1;
                let mut end = chunk.len();
                for (i, ch) in chunk.char_indices() {
                    match ch {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let chain = &chunk[..end];
                for m in ["get", "post", "patch", "put", "delete"] {
                    if chain.contains(&format!(" {m}("))
                        || chain.contains(&format!(",{m}("))
                        || chain.contains(&format!(".{m}("))
                        || chain.contains(&format!("routing::{m}("))
                    {
                        found.insert((m.to_uppercase(), path.to_string()));
                    }
                }
            }
        }
    }
    found
}

/// Every operation of the OpenAPI document, as (METHOD, PATH) with the `/api/v1` prefix.
async fn documented_api_routes(state: &AppState) -> BTreeSet<(String, String)> {
    let req = Request::builder().uri("/api/v1/openapi.json").body(Body::empty()).expect("request");
    let resp = updraft::web::router(state.clone()).oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK, "the OpenAPI document is served");
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22).await.expect("body");
    let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            let full =
                if path.starts_with("/api/v1") { path.clone() } else { format!("/api/v1{path}") };
            out.insert((method.to_uppercase(), full));
        }
    }
    out
}

#[tokio::test]
async fn the_matrix_covers_every_registered_route() {
    let f = fixture().await;
    let mut registered: BTreeSet<(String, String)> =
        registered_routes().into_iter().filter(|(_, p)| !p.starts_with("/api/")).collect();
    registered.extend(documented_api_routes(&f.state).await);
    let listed: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p, ..)| (m.to_string(), p.to_string())).collect();
    let missing: Vec<_> = registered.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&registered).collect();
    assert!(missing.is_empty(), "routes without a row in the matrix: {missing:?}");
    assert!(stale.is_empty(), "matrix rows for routes that do not exist: {stale:?}");
}
