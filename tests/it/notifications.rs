//! Notifications end to end, with a real HTTP receiver on 127.0.0.1: a failing task's retry and
//! failure and a task's success reach their webhooks with the documented body, a valid HMAC
//! signature and the idempotency key; a Slack-format notifier gets Block Kit blocks; a receiver
//! answering 500 is retried, then shown failed with its answer (run page data, audit log);
//! a hanging receiver does not delay the run.

use crate::support::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use common::{Db, Env, both};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use updraft::model::DagRunState;
use updraft::store::NotificationRow;

/// One request the receiver got: its path, headers and JSON body.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

/// A webhook receiver: `/ok/*` answers 200, `/fail/*` 500, `/hang/*` never in time.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(r): State<Receiver>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    if let Ok(mut got) = r.got.lock() {
        got.push(Received { path: format!("/{kind}/{name}"), headers, body });
    }
    match kind.as_str() {
        "ok" => (StatusCode::OK, "thanks".into()),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            (StatusCode::OK, "late".into())
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "receiver broke".into()),
    }
}

impl Receiver {
    /// Serves on 127.0.0.1; its base URL.
    pub async fn start(&self) -> String {
        let app = Router::new()
            .route("/{kind}/{name}", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    pub fn at(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .map(|g| g.iter().filter(|r| r.path == path).cloned().collect())
            .unwrap_or_default()
    }
}

const DAG: &str = "dag_id: alerts
on_run_failure: [run_hook]
default_args: {on_failure: [task_hook], on_retry: [task_hook]}
tasks:
  boom: {type: bash, command: 'echo going down >&2; exit 3', retries: 1, retry_delay: 0s}
  fine: {type: bash, command: 'true', on_success: [chat]}
  slow: {type: bash, command: 'true', on_success: [stuck]}
";

both!(webhooks_get_signed_bodies_slack_blocks_and_failures_are_shown);

async fn webhooks_get_signed_bodies_slack_blocks_and_failures_are_shown(mut env: Env) {
    let receiver = Receiver::default();
    let base = receiver.start().await;
    let conns = [
        ("task_hook", format!("{base}/ok/task?secret=s3cr3t&team=data")),
        ("chat", format!("{base}/ok/slack?format=slack")),
        ("run_hook", format!("{base}/fail/run")),
        ("stuck", format!("{base}/hang/stuck")),
    ];
    for (id, uri) in conns {
        env.settings.connections.insert(id.into(), uri);
    }
    env.settings.notify_attempts = 2;
    env.settings.notify_retry_delay = Duration::from_secs(1);
    env.settings.base_url = "https://updraft.example.com".into();
    env.write_dag("alerts.yaml", DAG);
    let _engine = env.start().await;
    env.wait_until("DAG loaded", Duration::from_secs(30), || async {
        env.store.get_dag("alerts").await.is_ok()
    })
    .await;
    let t0 = std::time::Instant::now();
    let run = env.trigger("alerts", serde_json::json!({})).await;
    let done = env.wait_run(run.id, Duration::from_secs(60)).await;
    // The hanging receiver (10 s timeout) held nothing back.
    assert!(t0.elapsed() < Duration::from_secs(8), "the run took {:?}", t0.elapsed());
    assert_eq!(done.state, DagRunState::Failed);
    let all = || async { env.store.run_notifications(run.id).await.expect("notifications") };
    env.wait_until("every notification settled", Duration::from_secs(90), || async {
        let n: Vec<NotificationRow> = all().await;
        n.len() == 5
            && n.iter()
                .filter(|n| n.conn_id != "stuck")
                .all(|n| n.status == "sent" || n.status == "failed")
    })
    .await;

    // The task's retry and its failure: two signed requests with the documented body.
    let task = receiver.at("/ok/task");
    assert_eq!(task.len(), 2, "{task:?}");
    let events: Vec<&str> = task.iter().map(|r| r.body["event"].as_str().unwrap_or("")).collect();
    assert_eq!(events, ["task_retry", "task_failure"]);
    for (r, try_number) in task.iter().zip([1, 2]) {
        let b = &r.body;
        assert_eq!((b["dag_id"].as_str(), b["task_id"].as_str()), (Some("alerts"), Some("boom")));
        assert_eq!(b["try_number"], serde_json::json!(try_number));
        assert_eq!(b["run_id"].as_str(), Some(done.run_id.as_str()));
        assert!(b["error"].as_str().unwrap_or("").contains("exit"), "{b}");
        let log = b["log_url"].as_str().unwrap_or("");
        assert!(
            log.starts_with("https://updraft.example.com/dags/alerts/runs/")
                && log.ends_with("/tasks/boom"),
            "{log}"
        );
        assert_eq!(
            r.headers.get("idempotency-key").map(String::as_str),
            b["idempotency_key"].as_str()
        );
        let ts = r.headers.get("x-updraft-timestamp").cloned().unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t").expect("key");
        mac.update(format!("{ts}.{}", serde_json::to_string(b).expect("json")).as_bytes());
        let want: String = mac.finalize().into_bytes().iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(r.headers.get("x-updraft-signature"), Some(&format!("sha256={want}")), "{r:?}");
    }
    // Updraft's own parameters stay home; the receiver's own are kept.
    let keys: Vec<&String> = task[0].headers.keys().collect();
    assert!(!keys.iter().any(|k| k.contains("secret")), "{keys:?}");

    // Slack: Block Kit with a header, the facts, a button to the log.
    let slack = receiver.at("/ok/slack");
    assert_eq!(slack.len(), 1);
    let blocks = slack[0].body["blocks"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap_or("")).collect();
    assert_eq!(kinds, ["header", "section", "actions"], "{}", slack[0].body);
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(
        blocks[1]["fields"].as_array().is_some_and(|f| f.iter().all(|x| x["type"] == "mrkdwn"))
    );
    let button = &blocks[2]["elements"][0];
    assert_eq!(button["type"], "button");
    assert!(button["url"].as_str().unwrap_or("").ends_with("/tasks/fine"), "{button}");
    assert!(slack[0].body["text"].as_str().unwrap_or("").contains("Task fine succeeded"));

    // The run's failure: a receiver answering 500, tried twice, then failed with its answer.
    assert_eq!(receiver.at("/fail/run").len(), 2, "retried once, then given up");
    let rows = all().await;
    let run_row = rows.iter().find(|n| n.conn_id == "run_hook").expect("run notification");
    assert_eq!(
        (run_row.event.as_str(), run_row.status.as_str(), run_row.attempts),
        ("run_failure", "failed", 2)
    );
    assert!(
        run_row.last_answer.as_deref().unwrap_or("").starts_with("500 receiver broke"),
        "{run_row:?}"
    );
    assert!(run_row.last_error.as_deref().unwrap_or("").contains("500"), "{run_row:?}");
    let audit = env.store.list_audit(None, None, 100).await.expect("audit");
    assert!(
        audit.iter().any(|a| a.event == "notification_failed"
            && a.run_id.as_deref() == Some(done.run_id.as_str())),
        "{audit:?}"
    );
    // The receiver that never answers in time: two attempts cut at the timeout, then failed.
    let stuck = rows.iter().find(|n| n.conn_id == "stuck").expect("stuck notification");
    assert_eq!((stuck.status.as_str(), stuck.attempts), ("failed", 2));
    assert!(
        stuck.last_error.as_deref().unwrap_or("").contains("no answer within 10s"),
        "{stuck:?}"
    );
    // Each notification exactly once.
    let keys: std::collections::BTreeSet<&str> =
        rows.iter().map(|n| n.idempotency_key.as_str()).collect();
    assert_eq!(keys.len(), rows.len());

    // The run page lists them with their delivery state and answer; /metrics counts them.
    let web = crate::support::web::WebApp::serve(&env).await;
    let user = crate::support::web::logged_in(&env.store, "vi", &["viewer"]).await;
    let client = updraft::tls::http_client().build().expect("client");
    let page = client
        .get(format!("{}/dags/alerts/runs/{}", web.base, crate::support::api::enc(&done.run_id)))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("run page")
        .text()
        .await
        .expect("body");
    assert!(page.contains("id=\"notifications\""), "{page}");
    assert!(page.contains("run failure") && page.contains("500 receiver broke"), "{page}");
    assert!(page.contains("boom (try 1)") && page.contains(">sent</span>"), "{page}");
    let metrics = client.get(format!("{}/metrics", web.base)).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("metrics body");
    assert!(metrics.contains("updraft_notifications{status=\"failed\"} 2"), "{metrics}");
    assert!(metrics.contains("updraft_notifications{status=\"sent\"} 3"), "{metrics}");
}

/// A free port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_outlives_kill_9_and_is_delivered_once() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    // The receiver is not up yet: the failure's notification waits in the outbox.
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/ok/late");
    env.write_dag(
        "doomed.yaml",
        "dag_id: doomed\ndefault_args: {on_failure: [late_hook]}\ntasks:\n  t: {type: bash, command: 'exit 1'}\n",
    );
    let vars = [
        ("UPDRAFT_CONN_LATE_HOOK", hook.as_str()),
        ("UPDRAFT_NOTIFY_ATTEMPTS", "20"),
        ("UPDRAFT_NOTIFY_RETRY_DELAY", "1"),
    ];
    let mut first = env.scheduler_process(vars);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("doomed").await.is_ok()
    })
    .await;
    let run = env.trigger("doomed", serde_json::json!({})).await;
    env.wait_until("a delivery attempted", Duration::from_secs(60), || async {
        env.store.run_notifications(run.id).await.expect("rows").iter().any(|n| n.attempts >= 1)
    })
    .await;
    first.kill().expect("kill -9");
    let _ = first.wait();
    let pending = env.store.run_notifications(run.id).await.expect("rows");
    assert_eq!(pending.len(), 1, "one notification for the failure: {pending:?}");
    assert_ne!(pending[0].status, "sent");

    // The receiver comes up on that port; a new scheduler delivers the notification, once.
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/{kind}/{name}", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the port");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let second = env.scheduler_process(vars);
    env.wait_until("delivered after the restart", Duration::from_secs(60), || async {
        env.store.run_notifications(run.id).await.expect("rows").iter().all(|n| n.status == "sent")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.at("/ok/late");
    assert_eq!(got.len(), 1, "delivered exactly once: {got:?}");
    assert_eq!(got[0].body["event"], "task_failure");
    assert_eq!(
        got[0].headers.get("idempotency-key").map(String::as_str),
        Some(pending[0].idempotency_key.as_str())
    );
    let mut second = second;
    let _ = second.kill();
    let _ = second.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_naming_no_connection_is_a_load_error_until_it_exists() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let src = "dag_id: alarmed\ntasks:\n  t:\n    type: empty\n    on_failure: [ops_pager]\n";
    env.write_dag("alarmed.yaml", src);
    // `dags validate` says where, and fails.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(["dags", "validate"])
        .env("UPDRAFT_HOME", &env.settings.home)
        .env("UPDRAFT_DAGS_FOLDER", env.dags_dir())
        .env("UPDRAFT_DATABASE_URL", &env.settings.database_url)
        .output()
        .expect("validate");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("alarmed.yaml:5:18: notifier `ops_pager` names no connection"), "{text}");
    // The scheduler records it as the file's import error; the DAG does not load.
    let opts = updraft::scheduler::SchedulerOptions {
        poll_interval: Duration::from_millis(200),
        rescan_interval: Duration::from_millis(500),
        ..Default::default()
    };
    let _engine = env.start_with(opts).await;
    env.wait_until("the import error", Duration::from_secs(30), || async {
        env.store
            .import_errors()
            .await
            .expect("errors")
            .iter()
            .any(|e| e.message.contains("ops_pager"))
    })
    .await;
    assert!(
        env.store.get_dag("alarmed").await.is_err()
            || !env.store.get_dag("alarmed").await.expect("dag").is_active
    );
    // Stored under Admin > Connections, it loads at the next scan, the file untouched.
    let secrets = updraft::secrets::SecretBox::for_settings(&env.settings).expect("key");
    let row = updraft::store::ConnectionRow {
        conn_id: "ops_pager".into(),
        conn_type: "https".into(),
        description: String::new(),
        uri_encrypted: secrets.encrypt("https://pager.example.com/hook"),
        updated_at: chrono::Utc::now(),
    };
    env.store.set_connection(&row).await.expect("store the connection");
    env.wait_until("the DAG loads", Duration::from_secs(30), || async {
        env.store.get_dag("alarmed").await.is_ok_and(|d| d.is_active)
    })
    .await;
    assert!(env.store.import_errors().await.expect("errors").is_empty());
}
