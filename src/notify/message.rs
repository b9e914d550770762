//! What a notification says, the same for every kind of notifier: a title, the facts, links,
//! and the template context of a connection's `body` and `subject`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::store::NotificationRow;
use crate::web::pages::url_encode;

/// One notification's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The outbox row.
    pub n: NotificationRow,
    /// "Task etl.load failed (try 2) in run scheduled__2026-…".
    pub title: String,
    /// The run's page.
    pub run_url: String,
    /// The task instance's log, for a task's event.
    pub log_url: Option<String>,
}

/// The event of a test send (Admin > Connections), which no run caused.
pub const TEST_EVENT: &str = "test";

/// The notification a test send delivers through `conn_id`, asked for by `by` at `now`: event
/// `test`, no task, a key of its own; never stored.
pub fn test_notification(conn_id: &str, by: &str, now: DateTime<Utc>) -> NotificationRow {
    let nanos = now.timestamp_nanos_opt().unwrap_or_default();
    NotificationRow {
        id: 0,
        idempotency_key: format!("test:{conn_id}:{nanos}"),
        event: TEST_EVENT.into(),
        conn_id: conn_id.into(),
        dag_id: "updraft".into(),
        run_id: "test".into(),
        run_pk: crate::model::RunPk(0),
        task_id: None,
        map_index: None,
        try_number: None,
        state: format!("sent by {by} from Admin > Connections"),
        error: None,
        status: "sending".into(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        last_answer: None,
        created_at: now,
        sent_at: None,
    }
}

impl Message {
    /// The content of `n`, with links under `base_url`.
    pub fn of(n: &NotificationRow, base_url: &str) -> Message {
        let run_url = if n.event == TEST_EVENT {
            // No run caused it: the link goes where it was sent from.
            format!("{base_url}/admin/connections")
        } else {
            format!("{base_url}/dags/{}/runs/{}", url_encode(&n.dag_id), url_encode(&n.run_id))
        };
        let log_url = n.task_id.as_ref().map(|t| {
            let mut url = format!(
                "{base_url}/dags/{}/runs/{}/tasks/{}",
                url_encode(&n.dag_id),
                url_encode(&n.run_id),
                url_encode(t)
            );
            if let Some(i) = n.map_index.filter(|i| *i >= 0) {
                url.push_str(&format!("?map_index={i}"));
            }
            url
        });
        let what = match n.event.as_str() {
            "task_failure" => "failed",
            "task_retry" => "failed and will be retried",
            "task_success" => "succeeded",
            "run_failure" => "failed",
            "run_success" => "succeeded",
            "deadline_missed" => "missed its deadline",
            other => other,
        };
        let title = match (&n.task_id, n.try_number) {
            _ if n.event == TEST_EVENT => {
                format!("[updraft] Test notification through {}: {}", n.conn_id, n.state)
            }
            _ if n.event == "deadline_missed" => {
                let detail = n.error.as_deref().unwrap_or_default();
                format!("[{}] Run {} {what}: {detail}", n.dag_id, n.run_id)
            }
            (Some(t), Some(try_number)) => {
                format!("[{}] Task {t} {what} (try {try_number}) in run {}", n.dag_id, n.run_id)
            }
            _ => format!("[{}] Run {} {what}", n.dag_id, n.run_id),
        };
        Message { n: n.clone(), title, run_url, log_url }
    }

    /// The facts as JSON: the webhook's body, and the templates' context.
    pub fn json(&self) -> Value {
        let n = &self.n;
        json!({
            "event": n.event,
            "title": self.title,
            "dag_id": n.dag_id,
            "run_id": n.run_id,
            "task_id": n.task_id,
            "map_index": n.map_index,
            "try_number": n.try_number,
            "state": n.state,
            "error": n.error,
            "run_url": self.run_url,
            "log_url": self.log_url,
            "timestamp": n.created_at.to_rfc3339(),
            "idempotency_key": n.idempotency_key,
        })
    }

    /// Renders a connection's template (`body`, `subject`) over [`json`](Self::json)'s fields.
    /// Values print as they are: a JSON body template writes `{{ error | tojson }}`.
    pub fn render(&self, template: &str) -> Result<String, String> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.render_str(template, self.json()).map_err(|e| format!("notification template: {e}"))
    }
}
