//! The DAG page, run page and task-instance page over HTTP: a real store, a DAG run to its
//! end by the real engine, the real router on a local port, users of each role with sessions.

use crate::support::common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use common::{Db, Env, both};
use reqwest::StatusCode;
use serde_json::json;
use updraft::model::{DagRunState, TaskState};
use updraft::store::RunRow;

use crate::support::web::{Creds, WebApp, role_users};

const LIMIT: Duration = Duration::from_secs(60);

both!(
    pages_show_a_finished_run,
    logs_are_served_safely,
    clear_and_mark,
    run_marks_notes_filters_bulk_and_delete,
    a_link_cannot_write_the_banners,
    the_dag_list_searches_every_field_and_sorts_by_column,
    a_changed_dag_shows_at_once,
    task_groups_run_and_fold_in_the_grid_and_graph,
    task_instances_act_in_bulk,
    backfills_are_previewed_created_and_cancelled_from_their_tab
);

const DAG: &str = r#"
dag_id: pages
description: web pages test
owner: web
tags: [t]
tasks:
  first:
    type: bash
    command: echo "hello from first"; echo "second line"
  middle:
    type: bash
    depends_on: [first]
    command: echo middle
  last:
    type: bash
    depends_on: [middle]
    command: echo last
  broken:
    type: bash
    depends_on: [first]
    command: echo "about to fail <b>"; exit 3
  fan:
    type: bash
    depends_on: [first]
    foreach: [1, 2]
    command: echo "item {{ item }}"
  done:
    type: empty
    depends_on: [last]
"#;

/// A served app with one logged-in user per role.
struct Web {
    app: WebApp,
    users: HashMap<&'static str, Creds>,
}

impl Web {
    async fn start(env: &Env) -> Web {
        Web { app: WebApp::serve(env).await, users: role_users(&env.store).await }
    }

    fn cookie(&self, role: &str) -> String {
        self.users[role].cookie()
    }

    fn csrf(&self, role: &str) -> String {
        self.users[role].csrf.clone()
    }

    async fn get(
        &self,
        role: &str,
        path: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let r = self
            .app
            .http
            .get(self.app.url(path))
            .header("cookie", self.cookie(role))
            .send()
            .await
            .expect("GET");
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.text().await.expect("body"))
    }

    /// The page a post redirected to, as the browser shows it next.
    async fn follow(&self, role: &str, location: &str) -> String {
        let (status, _, page) = self.get(role, location.trim_start_matches(&self.app.base)).await;
        assert_eq!(status, StatusCode::OK, "{location}: {page}");
        page
    }

    async fn post(&self, role: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let r = self
            .app
            .http
            .post(self.app.url(path))
            .header("cookie", self.cookie(role))
            .form(form)
            .send()
            .await
            .expect("POST");
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (r.status(), location)
    }
}

fn enc(s: &str) -> String {
    updraft::web::pages::url_encode(s)
}

/// Runs DAG `pages` once to its end and stops the engine, so states hold still.
async fn finished_run(env: &Env) -> RunRow {
    env.write_dag("pages.yaml", DAG);
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("pages").await.is_ok() })
        .await;
    env.store.set_paused("pages", false).await.expect("unpause");
    let run = env.trigger("pages", json!({"k": "v"})).await;
    let done = env.wait_run(run.id, LIMIT).await;
    running.stop().await;
    assert_eq!(done.state, DagRunState::Failed, "`broken` is a leaf that fails");
    done
}

async fn pages_show_a_finished_run(env: Env) {
    let run = finished_run(&env).await;
    let web = Web::start(&env).await;
    let (status, _, grid) = web.get("viewer", "/dags/pages").await;
    assert_eq!(status, StatusCode::OK, "{grid}");
    for task in ["first", "middle", "last", "broken", "fan", "done"] {
        assert!(grid.contains(&format!("data-task-id=\"{task}\"")), "grid row for {task}");
    }
    assert!(grid.contains(&format!("data-run-id=\"{}\"", run.run_id)));
    // A cell is its state and numbers; the page's script makes the link and the tooltip.
    assert!(grid.contains("<td class=\"s-success\" data-d=\""), "success cells");
    assert!(grid.contains("<td class=\"s-failed\" data-d=\""), "the failed cell");
    assert!(
        grid.contains("data-m=\"0\" data-n=\"2\" data-k=\"2 success\">2</td>"),
        "the mapped task folds into one cell with its count: {grid}"
    );
    assert!(grid.contains("data-dag-url=\"/dags/pages\""), "the cells' links start here");
    assert!(grid.contains("<body data-live=\"0\">"), "nothing runs: not live");
    // A viewer sees no operator buttons.
    assert!(!grid.contains("▶ Trigger"));

    let (status, _, graph) = web.get("viewer", "/dags/pages/graph").await;
    assert_eq!(status, StatusCode::OK);
    assert!(graph.contains("<svg class=\"graph\""));
    for task in ["first", "middle", "last", "broken", "fan", "done"] {
        assert!(graph.contains(&format!("data-task-id=\"{task}\"")), "graph node {task}");
    }
    assert_eq!(
        graph.matches("<path class=\"edge\"").count(),
        5,
        "first->middle->last->done, first->broken, first->fan"
    );
    assert!(graph.contains("class=\"node s-failed\" data-task-id=\"broken\""));

    let (status, _, code) = web.get("viewer", "/dags/pages/code").await;
    assert_eq!(status, StatusCode::OK);
    assert!(code.contains("pages.yaml") && code.contains("echo middle"));
    assert!(code.contains("about to fail") && !code.contains("about to fail <b>"), "escaped");

    let (status, _, runs) = web.get("viewer", "/dags/pages/runs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(runs.contains(&run.run_id) && runs.contains("{&#34;k&#34;:&#34;v&#34;}"));

    let run_url = format!("/dags/pages/runs/{}", enc(&run.run_id));
    let (status, _, page) = web.get("viewer", &run_url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"gantt\"") && page.contains("fan [1]"));
    assert_eq!(page.matches("class=\"bar s-").count(), 8, "a bar per instance and per mapped task");
    assert!(
        page.contains("fan [2]") && page.contains("2 success"),
        "the mapped task folds, counted"
    );
    assert!(page.matches("class=\"tick\"").count() >= 2, "a time axis");
    let gantt = &page[page.find("id=\"gantt\"").unwrap_or(0)..];
    let first_row = gantt.find("title=\"first\"").unwrap_or(usize::MAX);
    assert!(first_row < gantt.find("title=\"last\"").unwrap_or(0), "rows in start order");

    let (status, _, ti) = web.get("viewer", &format!("{run_url}/tasks/first")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ti.contains("hello from first"), "the try's log is on the page");
    assert!(ti.contains("Try 1"));
    assert!(ti.contains("return_value"), "XCom of the instance");
    let (_, _, broken) = web.get("viewer", &format!("{run_url}/tasks/broken")).await;
    assert!(broken.contains("about to fail") && !broken.contains("about to fail <b>"));
    // An empty task is done by the scheduler: the page says why no try ran.
    let (status, _, done) = web.get("viewer", &format!("{run_url}/tasks/done")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        done.contains("No try ran: marked success by the scheduler: an empty task runs nothing."),
        "{done}"
    );
    let (status, _, fan) = web.get("viewer", &format!("{run_url}/tasks/fan?map_index=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(fan.contains("item 2"), "map index 1 ran item 2");
    let (status, _, missing) = web.get("viewer", "/dags/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains("<nav>") && missing.contains("href=\"/workers\""), "{missing}");
    assert!(missing.contains("no DAG") || missing.contains("nope"), "says what is missing");
    let (status, _, refused) = web.get("viewer", "/admin/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(refused.contains("<nav>") && refused.contains("Log out"), "{refused}");
    // A mapped task opened without a map index leads to its instances.
    let (status, headers, _) = web.get("viewer", &format!("{run_url}/tasks/fan")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(to, format!("{run_url}/tasks/fan?map_index=0"));
    let (status, _, _) = web.get("viewer", &format!("{run_url}/tasks/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The DAG list: the last run (state, link) and the recent runs' dots, oldest left as in
    // the grid, and never an old drawing of them once a run is created, changed or deleted.
    let dag_row = |list: String| {
        list.split("<tr data-dag-id=\"pages\">")
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .map(str::to_string)
            .expect("the DAG's row")
    };
    let dots = |row: &str| -> Vec<String> {
        row.match_indices("<a class=\"dot s-")
            .map(|(i, _)| row[i + 16..].split('"').next().unwrap_or("").to_string())
            .collect()
    };
    let row = dag_row(web.get("viewer", "/dags").await.2);
    assert_eq!(dots(&row), ["failed"], "{row}");
    let newer = env.trigger("pages", json!({})).await;
    let row = dag_row(web.get("viewer", "/dags").await.2);
    let last = format!("href=\"/dags/pages/runs/{}\" class=\"last-run\"", enc(&newer.run_id));
    assert!(row.contains(&last), "the newest run is the last run: {row}");
    assert_eq!(dots(&row), ["failed", "queued"], "a new run is shown at once, newest right: {row}");
    let older = format!(
        "<a class=\"dot s-failed\" href=\"/dags/pages/runs/{}\" title=\"failed · ",
        enc(&run.run_id)
    );
    assert!(row.contains(&older), "a dot links to its run: {row}");
    let now = Utc::now();
    let marked = env.store.set_run_state(run.id, DagRunState::Failed, DagRunState::Success, now);
    assert!(marked.await.expect("mark"));
    let row = dag_row(web.get("viewer", "/dags").await.2);
    assert_eq!(dots(&row), ["success", "queued"], "a changed run is shown at once: {row}");
    assert!(env.store.delete_run(newer.id).await.expect("delete"));
    let row = dag_row(web.get("viewer", "/dags").await.2);
    assert_eq!(dots(&row), ["success"], "a deleted run is gone at once: {row}");

    // The run page names the DAG version the run is pinned to; once the file changes it
    // offers to clear the run on the latest version, which pins it there with the new task.
    let run_url = format!("/dags/pages/runs/{}", enc(&run.run_id));
    let (_, _, page) = web.get("operator", &run_url).await;
    assert!(page.contains("id=\"run-version\"><span class=\"mono\">v1 · "), "{page}");
    assert!(!page.contains("id=\"clear-latest\""), "nothing newer: {page}");
    let v2 = format!("{DAG}  extra:\n    type: empty\n");
    let v2 = updraft::dag::parse_dag_str(&v2, Path::new("pages.yaml")).expect("valid");
    env.store.sync_dags([&v2], [], Utc::now()).await.expect("sync");
    let (_, _, page) = web.get("operator", &run_url).await;
    assert!(page.contains("(the DAG is now at v2 · "), "{page}");
    assert!(page.contains("id=\"clear-latest\""), "{page}");
    let (_, _, viewer) = web.get("viewer", &run_url).await;
    assert!(!viewer.contains("id=\"clear-latest\""), "no button for a viewer");
    let csrf = web.csrf("operator");
    let form = [("csrf", csrf.as_str()), ("latest", "on")];
    let (status, _) = web.post("operator", &format!("{run_url}/clear"), &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let moved = env.store.get_run(run.id).await.expect("run");
    assert_eq!(moved.dag_version, Some(v2.version.clone()), "pinned to the new version");
    let tis = env.store.run_tis(run.id).await.expect("tis");
    assert!(tis.iter().any(|t| t.task_id == "extra"), "the new task has its instance");
    // The versions tab: both versions, the current one marked, and what changed between them.
    let (status, _, page) = web.get("viewer", "/dags/pages/versions").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-version=\"2\"") && page.contains("data-version=\"1\""), "{page}");
    assert!(page.contains("<span class=\"state s-success\">current</span>"), "{page}");
    assert!(page.contains("<span class=\"add\">+  extra:</span>"), "the diff of v1 to v2: {page}");
    assert!(page.contains("<span class=\"add\">+    type: empty</span>"), "{page}");
    let (_, _, same) = web.get("viewer", "/dags/pages/versions?from=2&to=2").await;
    assert!(same.contains("v2 compared with itself"), "{same}");
    let (status, _, _) = web.get("viewer", "/dags/pages/versions?from=1&to=9").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no v9");
    // A source's text is shown as text in the diff, whatever it holds.
    let hostile = format!("{DAG}  extra:\n    type: empty\n")
        .replace("web pages test", "\"<img src=x onerror=alert(1)>\"");
    let v3 = updraft::dag::parse_dag_str(&hostile, Path::new("pages.yaml")).expect("valid");
    env.store.sync_dags([&v3], [], Utc::now()).await.expect("sync");
    let (_, _, diff) = web.get("viewer", "/dags/pages/versions?from=2&to=3").await;
    assert!(diff.contains("&#60;img src=x onerror=alert(1)&#62;"), "{diff}");
    assert!(!diff.contains("<img src=x"), "{diff}");
    env.store.sync_dags([&v2], [], Utc::now()).await.expect("back to v2");
    // The grid marks the run where the version changes: a run started on v1 after this one.
    let third = env.trigger("pages", json!({})).await;
    let v1 = updraft::dag::parse_dag_str(DAG, Path::new("pages.yaml")).expect("valid");
    assert!(env.store.start_run(third.id, Some(&v1), &[], Utc::now()).await.expect("start"));
    let (_, _, grid) = web.get("viewer", "/dags/pages").await;
    assert!(grid.contains("class=\"runcol vchange\" data-version=\"v1\""), "{grid}");
    assert_eq!(grid.matches("vchange").count(), 1, "one change: {grid}");
}

async fn logs_are_served_safely(env: Env) {
    let run = finished_run(&env).await;
    let web = Web::start(&env).await;
    let logs = format!("/dags/pages/runs/{}/tasks/first/logs/1", enc(&run.run_id));
    let (status, headers, full) = web.get("viewer", &logs).await;
    assert_eq!(status, StatusCode::OK);
    assert!(full.contains("hello from first"));
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    // A log is what a task printed: never run as a page, never readable by other users.
    assert_eq!(headers["x-content-type-options"], "nosniff");
    {
        use std::os::unix::fs::PermissionsExt;
        let tis = env.tis(run.id).await;
        let first = tis.iter().find(|t| t.task_id == "first").expect("first");
        let file = updraft::worker::log_path(&env.settings, first, 1);
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
        };
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        let mut dir = file.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(env.settings.log_dir())) {
            assert_eq!(mode(d), 0o700, "{}", d.display());
            dir = d.parent();
        }
    }
    let end: usize = headers["x-log-offset"].to_str().expect("ascii").parse().expect("number");
    assert_eq!(end, full.len());
    let (_, headers, tail) = web.get("viewer", &format!("{logs}?offset={}", end - 12)).await;
    assert_eq!(tail, &full[end - 12..]);
    assert_eq!(headers["x-log-offset"], end.to_string().as_str());
    let (status, _, rest) = web.get("viewer", &format!("{logs}?offset={}", end + 100)).await;
    assert_eq!((status, rest.as_str()), (StatusCode::OK, ""));
    let (status, _, _) = web
        .get("viewer", &format!("/dags/pages/runs/{}/tasks/first/logs/2", enc(&run.run_id)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no second try");

    // The finished try's stream sends every line, then `end`, then closes.
    let (status, headers, sse) = web.get("viewer", &format!("{logs}/stream")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap_or("").starts_with("text/event-stream"));
    assert!(
        sse.contains("[out] hello from first\n") && sse.contains("[out] second line\n"),
        "{sse}"
    );
    assert!(sse.contains("event: end"), "{sse}");
    // From an offset (where the page's shown part ends): only what follows.
    let second = full.find("[out] second line").expect("second line in the log");
    let line_start = full[..second].rfind('\n').map_or(0, |i| i + 1);
    let (_, _, sse) = web.get("viewer", &format!("{logs}/stream?offset={line_start}")).await;
    assert!(sse.contains("[out] second line\n") && !sse.contains("hello from first"), "{sse}");

    // "Load earlier": the whole lines before a byte, with where they start and their number.
    let (status, headers, earlier) =
        web.get("viewer", &format!("{logs}?before={line_start}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(earlier, &full[..line_start]);
    assert_eq!(
        (&headers["x-log-start"], &headers["x-log-first-line"]),
        (&"0".parse().unwrap(), &"1".parse().unwrap())
    );
    // The download: the whole file, as an attachment named after the try.
    let (status, headers, file) = web.get("viewer", &format!("{logs}?download=1")).await;
    assert_eq!((status, file.as_str()), (StatusCode::OK, full.as_str()));
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(
        disposition.starts_with("attachment; filename=\"pages__")
            && disposition.ends_with("__first__try-1.log\""),
        "{disposition}"
    );

    // Climbing out of the logs folder: refused before any file is opened.
    std::fs::write(env.settings.home.join("secret.txt"), "TOP SECRET").expect("secret");
    let run_id = enc(&run.run_id);
    for path in [
        format!("/dags/pages/runs/{run_id}/tasks/..%2F..%2Fsecret.txt/logs/1"),
        format!("/dags/pages/runs/{run_id}/tasks/..%2F..%2F..%2Fsecret.txt/logs/1/stream"),
        format!("/dags/..%2F..%2Fsecret.txt/runs/{run_id}/tasks/first/logs/1"),
        "/dags/pages/runs/..%2F..%2F/tasks/first/logs/1".to_string(),
        format!("/dags/pages/runs/{run_id}/tasks/first%00/logs/1"),
        format!("/dags/pages/runs/{run_id}/tasks/..%2Fsecret.txt"),
    ] {
        let (status, _, body) = web.get("viewer", &path).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
        assert!(!body.contains("TOP SECRET"), "{path}");
    }
    let (status, _, _) =
        web.get("viewer", &format!("/dags/pages/runs/{run_id}/tasks/..%2Fx/logs/1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn clear_and_mark(env: Env) {
    let run = finished_run(&env).await;
    let web = Web::start(&env).await;
    let ti = |task: &str| format!("/dags/pages/runs/{}/tasks/{task}", enc(&run.run_id));
    let state_of = |task: &'static str| {
        let store = env.store.clone();
        async move {
            let tis = store.run_tis(run.id).await.expect("tis");
            tis.into_iter().find(|t| t.task_id == task).map(|t| t.state).expect("task")
        }
    };

    // Refusals: a viewer, and a post without (or with a wrong) CSRF token.
    let (status, _) = web
        .post("viewer", &format!("{}/clear", ti("middle")), &[("csrf", &web.csrf("viewer"))])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = web
        .post(
            "viewer",
            &format!("{}/mark", ti("broken")),
            &[("csrf", &web.csrf("viewer")), ("state", "success")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        web.post("operator", &format!("{}/clear", ti("middle")), &[("downstream", "on")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let (status, _) = web
        .post(
            "operator",
            &format!("{}/mark", ti("broken")),
            &[("csrf", "forged"), ("state", "success")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "wrong CSRF token");
    assert_eq!(state_of("middle").await, TaskState::Success);

    // Clear without downstream: only that instance; the run reopens.
    let csrf = web.csrf("operator");
    let (status, location) = web
        .post("operator", &format!("{}/clear", ti("last")), &[("csrf", &csrf), ("map_index", "-1")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with(&ti("last")) && !location.contains("flash"), "{location}");
    let page = web.follow("operator", &location).await;
    assert!(page.contains("id=\"flash\"") && page.contains("Cleared 1"), "{page}");
    let again = web.follow("operator", &location).await;
    assert!(!again.contains("id=\"flash\""), "a flash is shown once");
    assert_eq!(state_of("last").await, TaskState::None);
    assert_eq!(env.store.get_run(run.id).await.expect("run").state, DagRunState::Running);

    // With downstream: middle and last.
    let (status, _) = web
        .post(
            "operator",
            &format!("{}/clear", ti("middle")),
            &[("csrf", &csrf), ("map_index", "-1"), ("downstream", "on")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(state_of("middle").await, TaskState::None);
    assert_eq!(state_of("first").await, TaskState::Success, "upstream untouched");

    // Mark: failed -> success; a bad state is shown as an error on the page.
    let (status, location) = web
        .post(
            "operator",
            &format!("{}/mark", ti("broken")),
            &[("csrf", &csrf), ("map_index", ""), ("state", "success")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(web.follow("operator", &location).await.contains("Marked success"), "{location}");
    assert_eq!(state_of("broken").await, TaskState::Success);
    let (status, location) = web
        .post(
            "operator",
            &format!("{}/mark", ti("broken")),
            &[("csrf", &csrf), ("state", "running")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!location.contains("error"), "{location}");
    let page = web.follow("operator", &location).await;
    assert!(
        page.contains("id=\"action-error\"") && page.contains("expected success or failed"),
        "{page}"
    );
    // Marking it success again is refused by the model, and said so.
    let (_, location) = web
        .post(
            "operator",
            &format!("{}/mark", ti("broken")),
            &[("csrf", &csrf), ("state", "success")],
        )
        .await;
    let page = web.follow("operator", &location).await;
    assert!(page.contains("id=\"action-error\"") && page.contains("cannot mark"), "{page}");
    // A run-level clear of the failed instances only: `broken` is success by now, so it is
    // marked failed first.
    let (_, location) = web
        .post(
            "operator",
            &format!("{}/mark", ti("broken")),
            &[("csrf", &csrf), ("state", "failed")],
        )
        .await;
    assert!(web.follow("operator", &location).await.contains("Marked failed"));
    let run_url = format!("/dags/pages/runs/{}", enc(&run.run_id));
    let (status, location) = web
        .post("operator", &format!("{run_url}/clear"), &[("csrf", &csrf), ("only_failed", "on")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.trim_start_matches(&web.app.base), run_url);
    assert!(web.follow("operator", &location).await.contains("Cleared 1 task instance(s)"));
    assert_eq!(state_of("broken").await, TaskState::None, "the failed one is cleared");
    assert_eq!(state_of("first").await, TaskState::Success, "the others are not");
    let (_, location) = web
        .post("operator", &format!("{run_url}/clear"), &[("csrf", &csrf), ("only_failed", "on")])
        .await;
    let page = web.follow("operator", &location).await;
    assert!(
        page.contains("id=\"action-error\"") && page.contains("no failed task instance"),
        "{page}"
    );
    let (_, location) = web.post("operator", &format!("{run_url}/clear"), &[("csrf", &csrf)]).await;
    assert!(web.follow("operator", &location).await.contains("Cleared"), "clear all");
    assert_eq!(state_of("first").await, TaskState::None, "everything runs again");
    // The operator sees the buttons; the audit log has the actions.
    let (_, _, page) = web.get("operator", &ti("broken")).await;
    assert!(page.contains("id=\"clear\"") && page.contains("id=\"mark-failed\""));
    let audit = env.store.list_audit(None, None, 100).await.expect("audit");
    assert!(audit.iter().filter(|a| a.event == "clear").count() >= 2, "{audit:?}");
    assert_eq!(audit.iter().filter(|a| a.event == "clear_run").count(), 2, "{audit:?}");
}

/// A link cannot put its own words in the success or error banner: messages after a post are
/// kept in the session, never read from the URL.
async fn a_link_cannot_write_the_banners(env: Env) {
    let run = finished_run(&env).await;
    let web = Web::start(&env).await;
    let forged = "flash=Your%20session%20expired%3A%20log%20in%20at%20evil.example\
                  &error=Call%20support%20at%20evil.example";
    let ti = format!("/dags/pages/runs/{}/tasks/first", enc(&run.run_id));
    for path in ["/dags", "/dags/pages", "/dags/pages/runs", "/editor", ti.as_str()] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, _, page) = web.get("admin", &format!("{path}{sep}{forged}")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!page.contains("evil.example"), "{path} shows text from its URL");
        assert!(!page.contains("id=\"flash\"") && !page.contains("id=\"action-error\""));
    }
    // A live refresh (`X-Live`) of the page a post led to leaves the message for that page.
    let (status, location) = web
        .post(
            "operator",
            &format!("{ti}/clear"),
            &[("csrf", &web.csrf("operator")), ("map_index", "-1")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let live = web
        .app
        .http
        .get(web.app.url(location.trim_start_matches(&web.app.base)))
        .header("cookie", web.cookie("operator"))
        .header("x-live", "1")
        .send()
        .await
        .expect("live refresh");
    assert_eq!(live.status(), StatusCode::OK);
    assert!(web.follow("operator", &location).await.contains("Cleared 1"));
}

/// The DAG list's search looks at ids, tags, owners and descriptions; its column headers sort.
async fn the_dag_list_searches_every_field_and_sorts_by_column(env: Env) {
    let dag = |y: &str| updraft::dag::parse_dag_str(y, Path::new("x.yaml")).expect("valid");
    let dags = [
        dag("dag_id: alpha\nowner: ann\ntags: [x]\ntasks:\n  t: { type: empty }\n"),
        dag("dag_id: beta\nowner: bob\ndescription: Quote INGEST\ntasks:\n  t: { type: empty }\n"),
        dag("dag_id: gamma\nowner: cat\ntags: [ingest]\ntasks:\n  t: { type: empty }\n"),
        dag("dag_id: delta_ingest\nowner: ann\ntasks:\n  t: { type: empty }\n"),
    ];
    env.store.sync_dags(dags.iter(), [], Utc::now()).await.expect("sync");
    let web = Web::start(&env).await;
    let listed = |page: &str| -> Vec<String> {
        page.split("<tr data-dag-id=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next().map(str::to_string))
            .collect()
    };
    let (status, _, page) = web.get("viewer", "/dags?q=ingest").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&page), ["beta", "delta_ingest", "gamma"], "id, tag and description");
    let (_, _, page) = web.get("viewer", "/dags?q=BOB").await;
    assert_eq!(listed(&page), ["beta"], "owner, case-insensitive");
    let (_, _, page) = web.get("viewer", "/dags?q=%25").await;
    assert!(listed(&page).is_empty(), "a % is a character, not a wildcard");
    let (_, _, page) = web.get("viewer", "/dags?sort=-owner").await;
    assert_eq!(
        listed(&page),
        ["gamma", "beta", "alpha", "delta_ingest"],
        "owner descending, then id"
    );
    assert!(page.contains("aria-sort=\"descending\""), "the sorted column says so");
    assert!(page.contains("sort=owner&#38;page=1"), "its header flips the order");
    let (_, _, page) = web.get("viewer", "/dags?sort=owner;DROP").await;
    assert_eq!(listed(&page), ["alpha", "beta", "delta_ingest", "gamma"], "unknown: by id");
}

/// A DAG whose file changed is shown as it is now: the page's parsed DAG is looked up by the
/// stored source, never kept by id.
async fn a_changed_dag_shows_at_once(env: Env) {
    let version = |task: &str| {
        let src = format!("dag_id: changing\ntasks:\n  {task}:\n    type: empty\n");
        updraft::dag::parse_dag_str(&src, Path::new("changing.yaml")).expect("valid")
    };
    env.store.sync_dags([&version("alpha")], [], Utc::now()).await.expect("sync");
    let web = Web::start(&env).await;
    let (status, _, page) = web.get("viewer", "/dags/changing").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("alpha"), "{page}");
    env.store.sync_dags([&version("beta")], [], Utc::now()).await.expect("sync");
    let (_, _, page) = web.get("viewer", "/dags/changing").await;
    assert!(page.contains("beta") && !page.contains("alpha"), "the new version: {page}");
    assert_eq!(web.app.state.dags.stored_len(), 2, "each version parsed once");
    let (_, _, again) = web.get("viewer", "/dags/changing").await;
    assert!(again.contains("beta"));
    assert_eq!(web.app.state.dags.stored_len(), 2, "a page view parses nothing known");
    // A DAG's zone is shown beside its schedule, and its next run is the zone's 02:00.
    let src = "dag_id: changing\nschedule: '0 2 * * *'\ntimezone: Europe/Paris\n\
               start_date: 2026-01-01\ntasks:\n  gamma: {type: empty}\n";
    let zoned = updraft::dag::parse_dag_str(src, Path::new("changing.yaml")).expect("valid");
    env.store.sync_dags([&zoned], [], Utc::now()).await.expect("sync");
    let (_, _, page) = web.get("viewer", "/dags/changing").await;
    assert!(page.contains("<code>0 2 * * * (Europe/Paris)</code>"), "{page}");
}

/// The grid at its largest (100 runs x 50 tasks) costs two queries: it renders in well
/// under a second even in a debug build on a loaded machine; a query per cell would not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_of_100_runs_by_50_tasks_is_fast() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let mut yaml = String::from("dag_id: big\ntasks:\n");
    for i in 0..50 {
        yaml.push_str(&format!("  t{i:02}:\n    type: bash\n    command: echo {i}\n"));
        if i % 5 != 0 {
            yaml.push_str(&format!("    depends_on: [t{:02}]\n", i - 1));
        }
    }
    env.write_dag("big.yaml", &yaml);
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("big").await.is_ok() }).await;
    running.stop().await;
    let tis: Vec<updraft::store::NewTi> = (0..50)
        .map(|i| updraft::store::NewTi {
            task_id: format!("t{i:02}"),
            map_index: -1,
            map_item: None,
            operator: "bash".into(),
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: 1,
            queue: "default".into(),
            max_tries: 1,
        })
        .collect();
    for _ in 0..100 {
        let run = env.trigger("big", json!({})).await;
        assert!(env.store.start_run(run.id, None, &tis, Utc::now()).await.expect("start"));
    }
    let web = Web::start(&env).await;
    // Its speed is measured by `updraft-bench web`, not here.
    let (status, _, page) = web.get("viewer", "/dags/big?runs=100").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("class=\"runcol\"").count(), 100);
    assert_eq!(page.matches("<td class=\"s-none\"></td>").count(), 5000);
    assert!(page.contains("<body data-live=\"1\">"), "running runs make the page live");
}

async fn run_marks_notes_filters_bulk_and_delete(env: Env) {
    let run = finished_run(&env).await;
    let web = Web::start(&env).await;
    let csrf = web.csrf("operator");
    let run_url = format!("/dags/pages/runs/{}", enc(&run.run_id));
    let state = || {
        let store = env.store.clone();
        async move { store.get_run(run.id).await.expect("run").state }
    };
    let ti_state = |task: &'static str| {
        let store = env.store.clone();
        async move {
            let tis = store.run_tis(run.id).await.expect("tis");
            tis.into_iter().find(|t| t.task_id == task).map(|t| t.state).expect("task")
        }
    };

    // Home: the run that failed in the last 24 hours, the pools' slots, health.
    let home = web.get("viewer", "/home").await.2;
    let failed_box = &home[home.find("id=\"home-failed\"").expect("failed box")..];
    assert!(
        failed_box[..failed_box.find("</section>").expect("end")].contains(&run.run_id),
        "{home}"
    );
    assert!(home.contains("data-pool=\"default_pool\""), "{home}");
    assert!(home.contains("Nothing runs."), "{home}");

    // The Code tab links an author to the file in the editor.
    let code = web.get("author", "/dags/pages/code").await.2;
    assert!(code.contains("href=\"/editor/edit?file=pages.yaml\""), "{code}");
    assert!(!web.get("viewer", "/dags/pages/code").await.2.contains("/editor/edit"));

    // Notes: kept as written, shown escaped, a viewer may not write one.
    let (status, location) = web
        .post(
            "operator",
            &format!("{run_url}/note"),
            &[("csrf", &csrf), ("note", " re-run <b>after</b> the fix ")],
        )
        .await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, run_url.as_str()));
    assert_eq!(
        env.store.get_run(run.id).await.expect("run").note.as_deref(),
        Some("re-run <b>after</b> the fix")
    );
    let page = web.get("viewer", &run_url).await.2;
    assert!(
        page.contains("re-run &#60;b&#62;after&#60;/b&#62; the fix")
            || page.contains("re-run &lt;b&gt;after"),
        "{page}"
    );
    let long = "x".repeat(1001);
    let (_, location) =
        web.post("operator", &format!("{run_url}/note"), &[("csrf", &csrf), ("note", &long)]).await;
    assert!(
        web.follow("operator", &location).await.contains("at most 1000"),
        "a note over 1,000 characters is refused"
    );
    let (status, _) = web
        .post(
            "viewer",
            &format!("{run_url}/note"),
            &[("csrf", &web.csrf("viewer")), ("note", "mine")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = web
        .post(
            "operator",
            &format!("{run_url}/tasks/first/note"),
            &[("csrf", &csrf), ("map_index", "-1"), ("note", "looked fine")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = web.get("viewer", &format!("{run_url}/tasks/first")).await.2;
    assert!(page.contains("id=\"ti-note\"><span class=\"note\">looked fine"), "{page}");

    // Filters: by state, on one DAG's list and across DAGs; a bad value is a 400 naming it.
    let failed = web.get("viewer", "/dags/pages/runs?state=failed").await.2;
    assert!(failed.contains(&format!("data-run-id=\"{}\"", run.run_id)), "{failed}");
    let success = web.get("viewer", "/dags/pages/runs?state=success&run_type=manual").await.2;
    assert!(success.contains("No run matches the filter"), "{success}");
    let (status, _, body) = web.get("viewer", "/runs?state=broken").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("filter `state`") && body.contains("broken"), "{body}");
    let (status, _, body) =
        web.get("viewer", "/runs?from=2026-02-01T00:00&to=2026-01-01T00:00").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let later = web.get("viewer", "/runs?from=2999-01-01T00:00").await.2;
    assert!(later.contains("No run matches the filter"), "{later}");
    let every = web.get("viewer", "/runs").await.2;
    assert!(every.contains(&run.run_id) && every.contains("href=\"/dags/pages\""), "{every}");
    assert!(!every.contains("bulk-pick"), "no check boxes for a viewer");
    let tis = web.get("viewer", "/task-instances?dag=pages&state=failed").await.2;
    assert!(tis.contains("/tasks/broken") && !tis.contains("/tasks/first"), "{tis}");
    let tis = web.get("viewer", "/task-instances?task=FIR").await.2;
    assert!(tis.contains("/tasks/first") && !tis.contains("/tasks/broken"), "{tis}");

    // Mark the run success: the failed leaf becomes a success, the run too, times kept.
    let end_before = env.store.get_run(run.id).await.expect("run").end_date;
    let (status, _) = web
        .post("operator", &format!("{run_url}/mark"), &[("csrf", &csrf), ("state", "success")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        (state().await, ti_state("broken").await),
        (DagRunState::Success, TaskState::Success)
    );
    assert_eq!(
        env.store.get_run(run.id).await.expect("run").end_date,
        end_before,
        "the run's real end"
    );
    // Marking it success again is refused, and said so.
    let (_, location) = web
        .post("operator", &format!("{run_url}/mark"), &[("csrf", &csrf), ("state", "success")])
        .await;
    assert!(web.follow("operator", &location).await.contains("it is success"), "{location}");

    // Bulk: mark failed from the list, back to the filtered list; an unknown run is refused
    // and named, the others still done.
    let back = "/dags/pages/runs?state=success";
    let key = format!("pages/{}", run.run_id);
    let (status, location) = web
        .post(
            "operator",
            "/runs/bulk",
            &[
                ("csrf", &csrf),
                ("back", back),
                ("action", "mark_failed"),
                ("run", &key),
                ("run", "pages/nope"),
            ],
        )
        .await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, back));
    let page = web.follow("operator", &location).await;
    assert!(page.contains("1 run(s) marked failed; 1 refused: pages nope"), "{page}");
    assert_eq!(state().await, DagRunState::Failed);
    assert_eq!(ti_state("broken").await, TaskState::Success, "a finished instance keeps its state");
    // A return path off the site is not followed.
    let (_, location) = web
        .post(
            "operator",
            "/runs/bulk",
            &[("csrf", &csrf), ("back", "https://evil.example/"), ("action", "clear")],
        )
        .await;
    assert!(location.starts_with('/') && !location.contains("evil"), "{location}");
    let (status, _) = web
        .post(
            "viewer",
            "/runs/bulk",
            &[("csrf", &web.csrf("viewer")), ("action", "delete"), ("run", &key)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Delete: the run, its instances and its logs are gone; every action was audited.
    let logs = updraft::operators::log_path::run_dir(&env.settings.log_dir(), "pages", &run.run_id);
    assert!(logs.is_dir(), "{}", logs.display());
    let (status, location) =
        web.post("operator", &format!("{run_url}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/dags/pages/runs"));
    assert!(env.store.find_run("pages", &run.run_id).await.expect("find").is_none());
    assert!(env.store.run_tis(run.id).await.expect("tis").is_empty());
    assert!(!logs.exists(), "the run's logs are removed");
    let tis = web.get("viewer", "/task-instances?dag=pages").await.2;
    assert!(tis.contains("No task instance matches the filter"), "{tis}");
    let audit = env.store.list_audit(Some("pages"), None, 50).await.expect("audit");
    let events: Vec<&str> = audit.iter().map(|a| a.event.as_str()).collect();
    for e in ["set_note", "mark_run", "delete_run"] {
        assert!(events.contains(&e), "{e} audited: {events:?}");
    }
    assert_eq!(events.iter().filter(|e| **e == "mark_run").count(), 2, "{events:?}");
    // The audit log links an entry to its DAG and run.
    let audit = web.get("admin", "/admin/audit?dag_id=pages").await.2;
    assert!(audit.contains(&format!("<a href=\"{run_url}\">")), "{audit}");
    assert!(audit.contains("<a href=\"/dags/pages\">pages</a>"), "{audit}");
}

const GROUPED: &str = r#"
dag_id: grouped
groups:
  extract:
    doc: Pull the sources
    default_args: {retries: 1}
    depends_on: [start]
    groups:
      raw: {}
tasks:
  start: {type: empty}
  fetch:
    type: bash
    group: extract
    command: echo "fetching {{ ti.task_id }}"
  parse: {type: bash, group: extract, depends_on: [fetch], command: "exit 0"}
  dump: {type: bash, group: extract.raw, command: "exit 0"}
  load: {type: empty, depends_on: [extract]}
"#;

/// A DAG with nested task groups runs with Airflow's `group.task` ids, its grid shows each
/// group as a toggle row over its tasks, and its graph folds a group into one box whose
/// edges stand for the tasks inside.
async fn task_groups_run_and_fold_in_the_grid_and_graph(env: Env) {
    env.write_dag("grouped.yaml", GROUPED);
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("grouped").await.is_ok() })
        .await;
    env.store.set_paused("grouped", false).await.expect("unpause");
    let run = env.trigger("grouped", json!({})).await;
    let done = env.wait_run(run.id, LIMIT).await;
    running.stop().await;
    assert_eq!(done.state, DagRunState::Success);
    let tis = env.store.run_tis(run.id).await.expect("tis");
    let mut ids: Vec<&str> = tis.iter().map(|t| t.task_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["extract.fetch", "extract.parse", "extract.raw.dump", "load", "start"]);
    // Dependencies through the groups: load after every leaf, the roots after start.
    let ti = |id: &str| tis.iter().find(|t| t.task_id == id).expect("ti");
    for leaf in ["extract.parse", "extract.raw.dump"] {
        assert!(ti(leaf).end_date <= ti("load").start_date, "{leaf} before load");
    }
    assert!(ti("start").end_date <= ti("extract.fetch").start_date);
    assert_eq!(ti("extract.fetch").max_tries, 2, "the group's default_args: retries 1");

    let web = Web::start(&env).await;
    let (status, _, grid) = web.get("viewer", "/dags/grouped").await;
    assert_eq!(status, StatusCode::OK, "{grid}");
    assert!(grid.contains("data-task-id=\"extract\" class=\"group-row\""), "{grid}");
    assert!(grid.contains("data-group-toggle=\"extract.raw\""), "the nested group's toggle");
    assert!(grid.contains("data-task-id=\"extract.raw.dump\" data-in=\"extract extract.raw\""));
    assert!(
        grid.contains("data-k=\"3 success\" data-task=\"extract."),
        "the group's cell sums its tasks and names the one it shows: {grid}"
    );
    // Rows: the group right where its first task is, its tasks inside it, then the rest.
    let order: Vec<usize> =
        ["\"start\"", "\"extract\"", "\"extract.fetch\"", "\"extract.raw\"", "\"load\""]
            .iter()
            .map(|id| grid.find(&format!("<tr data-task-id={id}")).expect(id))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "row order {order:?}");
    // Each task's name leads to it across runs; the run column has its date; the bars an axis.
    assert!(grid.contains("href=\"/task-instances?dag=grouped&#38;task=extract.fetch\""), "{grid}");
    let label = done.logical_date.format("%m-%d %H:%M").to_string();
    assert!(grid.contains(&format!("<span>{label}</span>")), "the run's label {label}");
    assert!(grid.contains("class=\"axis-top\""));
    let (status, _, across) =
        web.get("viewer", "/task-instances?dag=grouped&task=extract.fetch").await;
    assert_eq!(status, StatusCode::OK);
    assert!(across.contains("extract.fetch") && !across.contains(">extract.parse<"), "{across}");

    let (_, _, graph) = web.get("viewer", "/dags/grouped/graph").await;
    assert!(graph.contains("data-task-id=\"extract.fetch\""), "unfolded by default");
    assert!(graph.contains("aria-label=\"Task groups\""), "the groups' toolbar");
    let (status, _, folded) = web.get("viewer", "/dags/grouped/graph?collapsed=extract").await;
    assert_eq!(status, StatusCode::OK);
    assert!(folded.contains("class=\"node s-success group\" data-task-id=\"extract\""), "{folded}");
    assert!(!folded.contains("data-task-id=\"extract.fetch\""), "its tasks are inside the box");
    assert!(folded.contains("data-from=\"start\" data-to=\"extract\""));
    assert!(folded.contains("data-from=\"extract\" data-to=\"load\""));
    assert_eq!(folded.matches("<path class=\"edge\"").count(), 2);
    assert!(folded.contains("name=\"collapsed\" value=\"extract\""), "the run selector keeps it");
    let (_, _, unknown) = web.get("viewer", "/dags/grouped/graph?collapsed=%3Cb%3E,nope").await;
    assert!(unknown.contains("data-task-id=\"extract.fetch\"") && !unknown.contains("<b>"));

    let path = format!("/dags/grouped/runs/{}/tasks/extract.fetch", enc(&run.run_id));
    let (status, _, page) = web.get("viewer", &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("fetching extract.fetch"), "the log of the grouped task");
}

/// The task-instance browser's ticked rows are marked or cleared one by one, each its own
/// action (checked and audited); a refused one is named, a viewer is refused, and a key that
/// is not one is a clear error.
async fn task_instances_act_in_bulk(env: Env) {
    let run = finished_run(&env).await;
    let web = Web::start(&env).await;
    let (_, _, page) = web.get("operator", "/task-instances?dag=pages").await;
    let key = |task: &str, m: i64| format!("pages/{}/{task}/{m}", run.run_id);
    assert!(page.contains(&format!("value=\"{}\"", key("broken", -1))), "a tick per row: {page}");
    let (_, _, viewer_page) = web.get("viewer", "/task-instances?dag=pages").await;
    assert!(!viewer_page.contains("class=\"bulk-pick\""), "no ticks for a viewer");
    let csrf = web.csrf("operator");
    let back = "/task-instances?dag=pages";
    let (broken, done, fan1) = (key("broken", -1), key("done", -1), key("fan", 1));
    let form = [
        ("csrf", csrf.as_str()),
        ("back", back),
        ("action", "mark_success"),
        ("ti", broken.as_str()),
        ("ti", done.as_str()),
    ];
    let (status, location) = web.post("operator", "/task-instances/bulk", &form).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, back));
    let page = web.follow("operator", &location).await;
    assert!(page.contains("1 task instance(s) marked success; 1 refused: pages"), "{page}");
    assert!(page.contains("done: cannot mark"), "the refused one says why: {page}");
    let state = |task: &'static str, m: i64| {
        let store = &env.store;
        async move {
            let tis = store.run_tis(run.id).await.expect("tis");
            tis.iter().find(|t| t.task_id == task && t.map_index == m).expect("ti").state
        }
    };
    assert_eq!(state("broken", -1).await, TaskState::Success);
    let form =
        [("csrf", csrf.as_str()), ("back", back), ("action", "clear"), ("ti", fan1.as_str())];
    let (status, _) = web.post("operator", "/task-instances/bulk", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(state("fan", 1).await, TaskState::None, "the one mapped instance cleared");
    assert_eq!(state("fan", 0).await, TaskState::Success, "its sibling left alone");
    // The grid's mapped cell now shows both states, split, the one that needs a look on top.
    let (_, _, grid) = web.get("viewer", "/dags/pages").await;
    assert!(grid.contains("<td class=\"s-none\""), "{grid}");
    assert!(
        grid.contains(
            "data-m=\"1\" data-n=\"2\" data-k=\"1 none, 1 success\" style=\"background:linear-gradient(to bottom, var(--s-none) 0% 50%, var(--s-success) 50% 100%)\">2</td>"
        ),
        "{grid}"
    );
    let audit = env.store.list_audit(Some("pages"), None, 50).await.expect("audit");
    assert!(audit.iter().any(|a| a.event == "mark" && a.task_id.as_deref() == Some("broken")));
    assert!(audit.iter().any(|a| a.event == "clear" && a.task_id.as_deref() == Some("fan")));
    // Hostile or malformed input.
    let form = [("csrf", csrf.as_str()), ("action", "clear"), ("ti", "pages/x")];
    let (_, location) = web.post("operator", "/task-instances/bulk", &form).await;
    let page = web.follow("operator", &location).await;
    assert!(page.contains("not dag_id/run_id/task_id/map_index"), "{page}");
    let form = [("csrf", csrf.as_str()), ("back", "//evil.example/"), ("action", "drop")];
    let (_, location) = web.post("operator", "/task-instances/bulk", &form).await;
    assert!(location.starts_with('/') && !location.contains("evil"), "{location}");
    let viewer = web.csrf("viewer");
    let form = [("csrf", viewer.as_str()), ("action", "mark_failed"), ("ti", broken.as_str())];
    let (status, _) = web.post("viewer", "/task-instances/bulk", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(state("broken", -1).await, TaskState::Success);
}

/// The Backfills tab: a preview (a dry run: nothing written) lists what each date would get;
/// creating it queues the runs, which the runs list shows as one group; pause and cancel act
/// on it; a viewer sees the list but no form and cannot post.
async fn backfills_are_previewed_created_and_cancelled_from_their_tab(env: Env) {
    let yaml =
        "dag_id: filled\nschedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n  a: {type: empty}\n";
    let dag = updraft::dag::parse_dag_str(yaml, Path::new("filled.yaml")).expect("valid");
    env.store.sync_dags([&dag], [], Utc::now()).await.expect("sync");
    let web = Web::start(&env).await;
    let query = "from=2026-01-01T00%3A00&to=2026-01-03T00%3A00&reprocess=none&max_active_runs=2";
    let (status, _, page) = web.get("operator", &format!("/dags/filled/backfills?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("3 date(s): 3 run(s) to create, 0 to run again, 0 left alone."),
        "{page}"
    );
    assert!(page.contains("id=\"backfill-create\""), "{page}");
    assert!(
        env.store.list_runs("filled", None, 10).await.expect("runs").is_empty(),
        "a preview writes nothing"
    );
    let (_, _, viewer) = web.get("viewer", &format!("/dags/filled/backfills?{query}")).await;
    assert!(!viewer.contains("backfill-form") && !viewer.contains("backfill-plan"), "{viewer}");
    let csrf = web.csrf("operator");
    let form = [
        ("csrf", csrf.as_str()),
        ("from", "2026-01-01T00:00"),
        ("to", "2026-01-03T00:00"),
        ("reprocess", "none"),
        ("max_active_runs", "2"),
    ];
    let (status, location) = web.post("operator", "/dags/filled/backfills", &form).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/dags/filled/backfills"));
    let page = web.follow("operator", &location).await;
    assert!(page.contains("Backfill #1 created: 3 run(s) queued"), "{page}");
    assert!(page.contains("3 queued, 0 running, 0 success, 0 failed"), "{page}");
    let other = env.trigger("filled", json!({})).await;
    let (_, _, runs) = web.get("viewer", "/dags/filled/runs?backfill=1").await;
    for d in 1..=3 {
        assert!(runs.contains(&format!("backfill__2026-01-0{d}T00:00:00+00:00")), "{runs}");
    }
    assert!(!runs.contains(&other.run_id), "only the backfill's runs: {runs}");
    assert!(runs.contains("id=\"filter-backfill\""), "{runs}");
    let (status, _) = web.post("viewer", "/dags/filled/backfills", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let with_csrf = [("csrf", csrf.as_str())];
    let (status, _) = web.post("operator", "/dags/filled/backfills/1/pause", &with_csrf).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(env.store.get_backfill(1).await.expect("backfill").is_paused);
    let (status, location) =
        web.post("operator", "/dags/filled/backfills/1/cancel", &with_csrf).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = web.follow("operator", &location).await;
    assert!(page.contains("Backfill #1 cancelled") && page.contains(">cancelled</span>"), "{page}");
    let (status, _) = web.post("operator", "/dags/filled/backfills/1/explode", &with_csrf).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, bad) = web.get("operator", "/dags/filled/backfills?from=yesterday&to=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad.contains("backfill field `from`"), "{bad}");
    // The runs' conf: a JSON object, checked against the DAG's params, given to every run.
    let (status, _, bad) =
        web.get("operator", &format!("/dags/filled/backfills?{query}&conf=%5B1%5D")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad.contains("backfill field `conf`: write a JSON object"), "{bad}");
    let conf = [
        ("csrf", csrf.as_str()),
        ("from", "2026-01-05T00:00"),
        ("to", "2026-01-05T00:00"),
        ("reprocess", "none"),
        ("max_active_runs", "1"),
        ("conf", r#"{"rows": 7}"#),
    ];
    let (status, _) = web.post("operator", "/dags/filled/backfills", &conf).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let runs = env.store.list_runs("filled", None, 20).await.expect("runs");
    let day5 = runs.iter().find(|r| r.run_id.starts_with("backfill__2026-01-05")).expect("day 5");
    assert_eq!(day5.conf.get("rows"), Some(&json!(7)), "{day5:?}");
}

both!(assets_have_their_pages_graph_and_dag_tab);

async fn assets_have_their_pages_graph_and_dag_tab(env: Env) {
    let producer = "dag_id: lake\ntasks:\n  w: {type: empty, outlets: ['s3://lake/<in>/']}\n";
    let consumer = "dag_id: mart\nschedule:\n  assets: ['s3://lake/<in>/', 'kafka://typo']\n\
                    tasks:\n  t: {type: empty, inlets: ['s3://lake/<in>/']}\n";
    let dags: Vec<_> = [("lake.yaml", producer), ("mart.yaml", consumer)]
        .iter()
        .map(|(f, y)| updraft::dag::parse_dag_str(y, Path::new(f)).expect("valid"))
        .collect();
    env.store.sync_dags(&dags, [], Utc::now()).await.expect("sync");
    let web = Web::start(&env).await;
    let (status, _, page) = web.get("viewer", "/assets").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // URIs are text, never markup; the graph links both kinds of node.
    assert!(page.contains("s3://lake/&#60;in&#62;/") && !page.contains("<in>"), "{page}");
    assert!(page.contains("id=\"asset-graph\"") && page.contains("href=\"/dags/lake\""), "{page}");
    assert!(page.contains("/assets/detail?uri=s3%3A%2F%2Flake%2F%3Cin%3E%2F"), "{page}");
    let typo = page.split("data-asset=\"kafka://typo\"").nth(1).unwrap_or_default();
    assert!(
        typo.split("</tr>").next().unwrap_or_default().contains("nothing produces it"),
        "{page}"
    );

    let uri = "/assets/detail?uri=s3%3A%2F%2Flake%2F%3Cin%3E%2F";
    let (status, _, detail) = web.get("viewer", uri).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert!(detail.contains("produced by task <span class=\"mono\">w</span>"), "{detail}");
    assert!(detail.contains("read by task <span class=\"mono\">t</span>"), "{detail}");
    assert!(!detail.contains("asset-event-form"), "a viewer cannot post: {detail}");
    assert!(detail.contains("No event yet."), "{detail}");
    let (status, _, _) = web.get("viewer", "/assets/detail?uri=nothing-names-it").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An operator records an event from the page; the JSON it gives is checked first.
    let (_, _, as_operator) = web.get("operator", uri).await;
    assert!(as_operator.contains("asset-event-form"), "{as_operator}");
    let csrf = web.csrf("operator");
    let bad = [("csrf", csrf.as_str()), ("uri", "s3://lake/<in>/"), ("extra", "[1]")];
    let (status, location) = web.post("operator", "/assets/events", &bad).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = web.follow("operator", &location).await;
    assert!(page.contains("field `extra`: write a JSON object"), "{page}");
    let form =
        [("csrf", csrf.as_str()), ("uri", "s3://lake/<in>/"), ("extra", r#"{"rows": "<b>3</b>"}"#)];
    let (status, _) = web.post("viewer", "/assets/events", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, location) = web.post("operator", "/assets/events", &form).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, uri));
    let page = web.follow("operator", &location).await;
    assert!(page.contains("Event #1 recorded for s3://lake/&#60;in&#62;/"), "{page}");
    assert!(page.contains("api · operator") && !page.contains("<b>3</b>"), "{page}");

    // The consumer's tab: what it waits for (one new event), the warning, the events.
    let (status, _, tab) = web.get("viewer", "/dags/mart/assets").await;
    assert_eq!(status, StatusCode::OK, "{tab}");
    assert!(tab.contains("every one of these assets has a new event"), "{tab}");
    let waited = tab.split("data-asset=\"s3://lake/&#60;in&#62;/\"").nth(1).unwrap_or_default();
    assert!(waited.contains("<td data-label=\"New events waiting\">1</td>"), "{tab}");
    assert!(tab.contains("data-unproduced=\"kafka://typo\""), "{tab}");
    assert!(!tab.contains("data-unproduced=\"s3://"), "{tab}");
    assert!(tab.contains("data-event=\"1\""), "{tab}");
    let (_, _, grid) = web.get("viewer", "/dags/mart").await;
    assert!(grid.contains("href=\"/dags/mart/assets\""), "the tab is linked: {grid}");
    assert!(grid.contains("assets: s3://lake/&#60;in&#62;/ &#38; kafka://typo"), "{grid}");
    let (_, _, plain) = web.get("viewer", "/dags/lake").await;
    assert!(plain.contains("href=\"/dags/lake/assets\""), "outlets count: {plain}");
}
