//! The notification sender: delivers the outbox's due rows (`store/notifications.rs`), at most
//! [`CONCURRENT`] at once, each bounded by `notify::TIMEOUT`, in a task of its own, so a slow or
//! dead receiver never delays the scheduler or a task.
//!
//! Each attempt is claimed with a lease first; a sender that dies mid-delivery leaves the row
//! to be tried again once the lease is over (the receiver drops a repeat by its
//! `Idempotency-Key`). After a failed attempt `model::notify::retry_at` decides when to try
//! again, or that the row is failed; a failed row is written to the audit log.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::store::{AuditEntry, Delivery, NotificationRow, Store};

/// Deliveries in flight at once.
const CONCURRENT: usize = 8;
/// Rows read per pass.
const BATCH: i64 = 64;
/// The longest wait between two looks at the outbox (a lost wake-up, another process's rows).
const POLL: Duration = Duration::from_secs(1);

/// Runs until `stop` fires.
pub(super) async fn run(store: Store, settings: Arc<Settings>, stop: CancellationToken) {
    let announced = store.notifications_announced();
    while !stop.is_cancelled() {
        let due = match store.due_notifications(Utc::now(), BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the notification outbox; retrying");
                Vec::new()
            }
        };
        if !due.is_empty() {
            let stored = match store.list_connections().await {
                Ok(rows) => {
                    crate::operators::decrypt_connections(&settings, rows).unwrap_or_default()
                }
                Err(_) => Default::default(),
            };
            let (store, settings, stored) = (&store, &settings, &stored);
            futures::stream::iter(due)
                .for_each_concurrent(CONCURRENT, |n| async move {
                    if let Err(e) = attempt(store, settings, stored, n).await {
                        tracing::warn!(error = %e, "recording a notification attempt failed");
                    }
                })
                .await;
            continue;
        }
        if !super::nap(store.next_notification_at().await, POLL, &announced, &stop).await {
            break;
        }
    }
}

/// One attempt of `n`: claim, deliver, record.
async fn attempt(
    store: &Store,
    settings: &Settings,
    stored: &crate::operators::DbConnections,
    n: NotificationRow,
) -> Result<(), crate::store::StoreError> {
    let lease =
        Utc::now() + chrono::Duration::from_std(crate::notify::TIMEOUT * 3).unwrap_or_default();
    if !store.claim_notification(&n, lease).await? {
        return Ok(());
    }
    let attempt = n.attempts + 1;
    let result = match crate::operators::find_connection_uri(settings, stored, &n.conn_id) {
        Ok(uri) => crate::notify::deliver(uri, &n, &settings.base_url).await,
        Err(e) => Err(crate::notify::DeliveryError::fatal(e.to_string())),
    };
    let now = Utc::now();
    let outcome = match &result {
        Ok(answer) => Delivery::Sent { answer: answer.as_deref() },
        Err(e) => {
            let again = e.retryable.then(|| {
                crate::model::notify::retry_at(
                    attempt,
                    settings.notify_attempts,
                    settings.notify_retry_delay,
                    now,
                )
            });
            match again.flatten() {
                Some(at) => Delivery::Retry { at, error: &e.error, answer: e.answer.as_deref() },
                None => Delivery::Failed { error: &e.error, answer: e.answer.as_deref() },
            }
        }
    };
    let recorded = store.end_notification_attempt(n.id, attempt, outcome, now).await?;
    match (&result, outcome) {
        (Ok(_), _) => {
            tracing::info!(id = n.id, conn = %n.conn_id, event = %n.event, "notification sent")
        }
        (Err(e), Delivery::Retry { at, .. }) => {
            tracing::warn!(id = n.id, conn = %n.conn_id, error = %e, retry_at = %at, "notification not delivered; will retry")
        }
        (Err(e), _) if recorded => {
            tracing::error!(id = n.id, conn = %n.conn_id, error = %e, "notification failed");
            let extra = serde_json::json!({
                "notification": n.id, "connection": n.conn_id, "event": n.event,
                "attempts": attempt, "error": e.error, "answer": e.answer,
            });
            let entry = AuditEntry {
                username: "scheduler",
                event: "notification_failed",
                dag_id: Some(&n.dag_id),
                run_id: Some(&n.run_id),
                task_id: n.task_id.as_deref(),
                map_index: n.map_index,
                extra: Some(extra.to_string()),
            };
            store.record_audit(&entry, now).await?;
        }
        (Err(_), _) => {}
    }
    Ok(())
}
