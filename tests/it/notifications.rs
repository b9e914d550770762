//! Notifications end to end, with a real HTTP receiver on 127.0.0.1: a failing task's retry and
//! failure and a task's success reach their webhooks with the documented body, a valid HMAC
//! signature and the idempotency key; a Slack-format notifier gets Block Kit blocks; a receiver
//! answering 500 is retried, then shown failed with its answer (run page data, audit log);
//! a hanging receiver does not delay the run.

use crate::support::common;

use std::time::Duration;

use common::{Db, Env, both};
use updraft::model::DagRunState;
use updraft::store::NotificationRow;

use crate::support::receivers::{Receiver, mails_to, smtp_server, unique_recipient};

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
    let run = env.trigger("alerts", serde_json::json!({})).await;
    let done = env.wait_run(run.id, Duration::from_secs(60)).await;
    // The hanging receiver held nothing back: the run ended while its first delivery was
    // still waiting for an answer (cut only at 10 s).
    let stuck = env.store.run_notifications(run.id).await.expect("notifications");
    let stuck = stuck.iter().find(|n| n.conn_id == "stuck").expect("the stuck notification");
    let in_flight = stuck.attempts <= 1 && stuck.last_error.is_none() && stuck.sent_at.is_none();
    assert!(in_flight, "the run waited for the hanging receiver: {stuck:?}");
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
    let mut task = receiver.at("/ok/task");
    assert_eq!(task.len(), 2, "{task:?}");
    // Delivered concurrently, so in either order: by try.
    task.sort_by_key(|r| r.body["try_number"].as_i64());
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
        assert!(r.signed_with("s3cr3t"), "{r:?}");
        assert!(!r.signed_with("another secret"), "{r:?}");
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
    // The task instance's page lists its own: boom's retry and failure, not the run's.
    let ti_notifications = |task: &'static str| {
        let url = format!(
            "{}/dags/alerts/runs/{}/tasks/{task}",
            web.base,
            crate::support::api::enc(&done.run_id)
        );
        let (client, token) = (client.clone(), user.token.clone());
        async move {
            let page = client.get(url).bearer_auth(token).send().await.expect("task page");
            let page = page.text().await.expect("body");
            let listed = page.split(" id=\"notifications\"").nth(1).expect("notifications listed");
            listed.split("</table>").next().unwrap_or("").to_string()
        }
    };
    let listed = ti_notifications("boom").await;
    assert!(listed.contains("task retry") && listed.contains("task failure"), "{listed}");
    assert!(listed.contains("boom (try 2)") && !listed.contains("run failure"), "{listed}");
    let listed = ti_notifications("fine").await;
    assert!(listed.contains("task success") && !listed.contains("boom"), "{listed}");
    let metrics = client.get(format!("{}/metrics", web.base)).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("metrics body");
    assert!(metrics.contains("updraft_notifications{status=\"failed\"} 2"), "{metrics}");
    assert!(metrics.contains("updraft_notifications{status=\"sent\"} 3"), "{metrics}");

    // Deleting the run takes its settled notifications with it; one still to be delivered
    // stays in the outbox (its row holds all it says).
    let before = all().await;
    let unsettled = before.iter().filter(|n| n.status != "sent" && n.status != "failed").count();
    assert!(env.store.delete_run(run.id).await.expect("delete"), "the run is deleted");
    let after = all().await;
    assert_eq!(after.len(), unsettled, "{after:?}");
    assert!(after.iter().all(|n| n.conn_id == "stuck"), "{after:?}");
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
    let app = receiver.app();
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

const MAIL_DAG: &str = "dag_id: mailed
tasks:
  boom: {type: bash, command: 'echo disk full >&2; exit 3', on_failure: [mail_plain]}
  bust: {type: bash, command: 'exit 4', on_failure: [mail_templated]}
";

/// A failure's mail through the real SMTP server: the envelope (sender, recipients, AUTH
/// user), the templated subject, the default body (DAG, task, try, error, log URL), and a
/// connection with its own body template, plus-addressed sender and recipients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_mailed_once_with_its_templates() {
    let Some((smtp, maildir)) = smtp_server() else { return };
    let mut env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let plain_to = unique_recipient("oncall");
    let (local, domain) = unique_recipient("team")
        .split_once('@')
        .map(|(l, d)| (l.to_string(), d.to_string()))
        .expect("address");
    let plus_to = format!("{local}+updraft@{domain}");
    let other_to = unique_recipient("lead");
    let subject = enc("{{ dag_id }}.{{ task_id }} {{ event }} (try {{ try_number }})");
    let body = enc("{{ title }}\nerror={{ error }}\nlog={{ log_url }}\nkey={{ idempotency_key }}");
    let conns = [
        (
            "mail_plain",
            format!(
                "smtp://user:pass@{smtp}?security=none&from=updraft-alerts@example.test\
                 &to={plain_to}&subject={subject}"
            ),
        ),
        (
            "mail_templated",
            format!(
                "smtp://ops%40example.test:p%40ss@{smtp}?security=none\
                 &from=alerts+ops@example.test&to={plus_to},%20{other_to}&subject={subject}\
                 &body={body}"
            ),
        ),
    ];
    for (id, uri) in conns {
        env.settings.connections.insert(id.into(), uri);
    }
    env.settings.base_url = "https://updraft.example.com".into();
    env.write_dag("mailed.yaml", MAIL_DAG);
    let _engine = env.start().await;
    env.wait_until("DAG loaded", Duration::from_secs(30), || async {
        env.store.get_dag("mailed").await.is_ok()
    })
    .await;
    let run = env.trigger("mailed", serde_json::json!({})).await;
    let done = env.wait_run(run.id, Duration::from_secs(60)).await;
    assert_eq!(done.state, DagRunState::Failed);
    let all = || async { env.store.run_notifications(run.id).await.expect("notifications") };
    env.wait_until("both mails settled", Duration::from_secs(60), || async {
        let n: Vec<NotificationRow> = all().await;
        n.len() == 2 && n.iter().all(|n| n.status == "sent" || n.status == "failed")
    })
    .await;
    let rows = all().await;
    for n in &rows {
        assert_eq!((n.status.as_str(), n.attempts), ("sent", 1), "{n:?}");
        // The server's answer: "250 OK: saved as NAME".
        assert!(n.last_answer.as_deref().unwrap_or("").starts_with("250 "), "{n:?}");
    }
    let row = |task: &str| rows.iter().find(|n| n.task_id.as_deref() == Some(task)).expect("row");
    let log_url = |task: &str| {
        format!("https://updraft.example.com/dags/mailed/runs/{}/tasks/{task}", enc(&done.run_id))
    };

    // The default body, with a templated subject.
    let mails = mails_to(&maildir, &plain_to);
    assert_eq!(mails.len(), 1, "delivered exactly once: {mails:?}");
    let m = &mails[0];
    assert_eq!(m.envelope["mail_from"], "updraft-alerts@example.test", "{:?}", m.envelope);
    assert_eq!(m.envelope["rcpt_tos"], serde_json::json!([plain_to]));
    assert_eq!(m.envelope["auth_user"], "user");
    assert_eq!(
        m.headers.get("subject").map(String::as_str),
        Some("mailed.boom task_failure (try 1)")
    );
    assert_eq!(m.headers.get("to").map(String::as_str), Some(plain_to.as_str()));
    let boom = row("boom");
    let error = boom.error.as_deref().expect("the try's error");
    for want in [
        "DAG: mailed".to_string(),
        "Task: boom (try 1)".into(),
        format!("Error: {error}"),
        format!("Log: {}", log_url("boom")),
        format!("Run: {done_run}", done_run = done.run_id),
    ] {
        assert!(m.body.contains(&want), "{want:?} not in the body:\n{}", m.body);
    }
    // The idempotency key is in the Message-ID, as a valid msg-id (RFC 5322 dot-atom).
    let id = m.headers.get("message-id").cloned().unwrap_or_default();
    let key = boom.idempotency_key.replace(':', ".");
    assert_eq!(id, format!("<{key}@updraft>"), "{}", m.raw);
    assert!(m.headers.contains_key("date"), "{}", m.raw);

    // A body template; a `+` in an address is a plus, and both recipients get the one mail.
    let mails = mails_to(&maildir, &plus_to);
    assert_eq!(mails.len(), 1, "delivered exactly once: {mails:?}");
    let m = &mails[0];
    assert_eq!(m.envelope["mail_from"], "alerts+ops@example.test", "{:?}", m.envelope);
    assert_eq!(m.envelope["rcpt_tos"], serde_json::json!([plus_to, other_to]));
    assert_eq!(m.envelope["auth_user"], "ops@example.test", "the login is percent-decoded");
    assert_eq!(
        m.headers.get("subject").map(String::as_str),
        Some("mailed.bust task_failure (try 1)")
    );
    let bust = row("bust");
    let want = format!(
        "[mailed] Task bust failed (try 1) in run {}\nerror={}\nlog={}\nkey={}",
        done.run_id,
        bust.error.as_deref().expect("the try's error"),
        log_url("bust"),
        bust.idempotency_key
    );
    assert_eq!(m.body.trim_end(), want, "{}", m.raw);
    assert!(!m.raw.contains("p@ss") && !m.raw.contains("p%40ss"), "no password in the mail");
}

/// A URL's query value, percent-encoded.
fn enc(s: &str) -> String {
    crate::support::api::enc(s)
}
