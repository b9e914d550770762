//! The notification outbox: rows written in the transaction of the state change that causes
//! them (a try's end in `finish_try`, a run's end in `finish_run`), and the sender's reads and
//! writes: due rows, a claim by lease, delivered, retried later, failed.
//!
//! Invariants: a row's idempotency key is unique, so the same event never gets two rows; every
//! sender write is a compare-and-set on the attempt it claimed, so two senders never deliver
//! the same attempt, and a sender that lost its lease writes nothing. Whether and when to try
//! again is `model::notify`'s decision.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, RunPk, Store, opt_time, time, to_us};
use crate::model::TaskState;
use crate::model::notify::NotifyEvent;

/// One notification as the sender and the pages see it.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRow {
    /// Its id.
    pub id: i64,
    /// Unique per event and connection: sent as `Idempotency-Key` (webhooks) or in the
    /// `Message-ID` (mail), so a receiver can drop a repeat.
    pub idempotency_key: String,
    /// `task_failure`, `task_retry`, `task_success`, `run_failure`, `run_success`,
    /// `deadline_missed`.
    pub event: String,
    /// The notifier's connection.
    pub conn_id: String,
    /// The DAG.
    pub dag_id: String,
    /// The run.
    pub run_id: String,
    /// The run's primary key.
    pub run_pk: RunPk,
    /// The task, for a task's event.
    pub task_id: Option<String>,
    /// Its map index.
    pub map_index: Option<i64>,
    /// Its try.
    pub try_number: Option<i64>,
    /// The state reached.
    pub state: String,
    /// The try's error.
    pub error: Option<String>,
    /// `pending`, `sending`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// What the receiver answered last (status and the start of its body).
    pub last_answer: Option<String>,
    /// When the state change happened.
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, idempotency_key, event, conn_id, dag_id, run_id, run_pk, task_id, \
    map_index, try_number, state, error, status, attempts, next_attempt_at, last_error, \
    last_answer, created_at, sent_at";

fn row(r: &sqlx::any::AnyRow) -> Result<NotificationRow> {
    Ok(NotificationRow {
        id: r.try_get("id")?,
        idempotency_key: r.try_get("idempotency_key")?,
        event: r.try_get("event")?,
        conn_id: r.try_get("conn_id")?,
        dag_id: r.try_get("dag_id")?,
        run_id: r.try_get("run_id")?,
        run_pk: r.try_get("run_pk")?,
        task_id: r.try_get("task_id")?,
        map_index: r.try_get("map_index")?,
        try_number: r.try_get("try_number")?,
        state: r.try_get("state")?,
        error: r.try_get("error")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: time(r, "next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        last_answer: r.try_get("last_answer")?,
        created_at: time(r, "created_at")?,
        sent_at: opt_time(r, "sent_at")?,
    })
}

/// What a state change tells, and to whom (carried by `FinishTry` and `finish_run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The event.
    pub event: NotifyEvent,
    /// The notifier connections.
    pub to: Vec<String>,
}

/// The rows of a try's end, in its transaction.
pub(super) async fn enqueue_try_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ti_id: crate::model::TiId,
    try_number: i64,
    state: TaskState,
    error: Option<&str>,
    n: &Notify,
    now: DateTime<Utc>,
) -> Result<()> {
    for conn in &n.to {
        let key =
            format!("{}:ti{}:try{try_number}:{}:{conn}", n.event.as_str(), ti_id.0, to_us(now));
        sqlx::query(
            "INSERT INTO notification (idempotency_key, event, conn_id, dag_id, run_id, run_pk, \
             task_id, map_index, try_number, state, error, next_attempt_at, created_at) \
             SELECT $1, $2, $3, r.dag_id, r.run_id, r.id, ti.task_id, ti.map_index, $4, $5, $6, $7, $7 \
             FROM task_instance ti JOIN dag_run r ON r.id = ti.run_pk WHERE ti.id = $8 \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key)
        .bind(n.event.as_str())
        .bind(conn)
        .bind(try_number)
        .bind(state.as_str())
        .bind(error)
        .bind(to_us(now))
        .bind(ti_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Woken when this process committed notifications, for the sender.
    pub fn notifications_announced(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.notifications_changed.clone()
    }

    /// Ends a running run in `to` and writes its notifications, in one transaction; false (and
    /// nothing written) when the run was no longer in `from`.
    pub async fn finish_run(
        &self,
        run_pk: RunPk,
        from: crate::model::DagRunState,
        to: crate::model::DagRunState,
        notify: Option<&Notify>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let done = super::runs::set_run_state_in(&mut tx, run_pk, from, to, now).await?;
        if !done {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(n) = notify {
            for conn in &n.to {
                let key = format!("{}:run{}:{}:{conn}", n.event.as_str(), run_pk.0, to_us(now));
                sqlx::query(
                    "INSERT INTO notification (idempotency_key, event, conn_id, dag_id, run_id, \
                     run_pk, state, next_attempt_at, created_at) \
                     SELECT $1, $2, $3, dag_id, run_id, id, $4, $5, $5 FROM dag_run WHERE id = $6 \
                     ON CONFLICT (idempotency_key) DO NOTHING",
                )
                .bind(key)
                .bind(n.event.as_str())
                .bind(conn)
                .bind(to.as_str())
                .bind(to_us(now))
                .bind(run_pk)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        if notify.is_some() {
            self.notifications_changed.notify_one();
        }
        Ok(true)
    }

    /// Rows due for an attempt at `now`: pending ones whose time came, and sending ones whose
    /// sender's lease ran out (it died mid-delivery). Oldest first, at most `limit`.
    pub async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<NotificationRow>> {
        let sql = format!(
            "SELECT {COLS} FROM notification WHERE status IN ('pending', 'sending') \
             AND next_attempt_at <= $1 AND (status = 'pending' OR lease_until < $1) \
             ORDER BY next_attempt_at, id LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(to_us(now)).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// When the next row is due (for the sender's sleep), if any is.
    pub async fn next_notification_at(&self) -> Result<Option<DateTime<Utc>>> {
        let r = sqlx::query(
            "SELECT MIN(next_attempt_at) AS at FROM notification WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        opt_time(&r, "at")
    }

    /// Claims `n` for one attempt (its `attempts` as read) until `lease_until`; false when
    /// another sender took it first.
    pub async fn claim_notification(
        &self,
        n: &NotificationRow,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notification SET status = 'sending', attempts = attempts + 1, lease_until = $1, \
             next_attempt_at = $1 WHERE id = $2 AND attempts = $3 AND status IN ('pending', 'sending')",
        )
        .bind(to_us(lease_until))
        .bind(n.id)
        .bind(n.attempts)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the end of attempt `attempt` (1-based) of `id`: delivered (`retry` None and
    /// `failed` false), due again at `retry`, or failed for good. Only while that attempt is
    /// still the row's.
    pub async fn end_notification_attempt(
        &self,
        id: i64,
        attempt: i64,
        outcome: Delivery<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (status, next, error, answer) = match outcome {
            Delivery::Sent { answer } => ("sent", now, None, answer),
            Delivery::Retry { at, error, answer } => ("pending", at, Some(error), answer),
            Delivery::Failed { error, answer } => ("failed", now, Some(error), answer),
        };
        let done = sqlx::query(
            "UPDATE notification SET status = $1, next_attempt_at = $2, lease_until = NULL, \
             last_error = $3, last_answer = $4, sent_at = CASE WHEN $1 = 'sent' THEN $5 ELSE sent_at END \
             WHERE id = $6 AND attempts = $7 AND status = 'sending'",
        )
        .bind(status)
        .bind(to_us(next))
        .bind(error)
        .bind(answer)
        .bind(to_us(now))
        .bind(id)
        .bind(attempt)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many notifications are in each delivery state.
    pub async fn notification_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM notification GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("status")?, r.try_get("n")?))).collect()
    }

    /// A run's notifications, oldest first.
    pub async fn run_notifications(&self, run_pk: RunPk) -> Result<Vec<NotificationRow>> {
        let sql = format!("SELECT {COLS} FROM notification WHERE run_pk = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(run_pk).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// The notifications the tries of one task instance caused, oldest first.
    pub async fn ti_notifications(
        &self,
        run_pk: RunPk,
        task_id: &str,
        map_index: i64,
    ) -> Result<Vec<NotificationRow>> {
        let sql = format!(
            "SELECT {COLS} FROM notification WHERE run_pk = $1 AND task_id = $2 AND map_index = $3 \
             ORDER BY id"
        );
        let q = sqlx::query(&sql).bind(run_pk).bind(task_id).bind(map_index);
        q.fetch_all(&self.pool).await?.iter().map(row).collect()
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    /// The receiver took it.
    Sent {
        /// Its answer.
        answer: Option<&'a str>,
    },
    /// It failed; try again at `at`.
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// Why it failed.
        error: &'a str,
        /// The receiver's answer, if it gave one.
        answer: Option<&'a str>,
    },
    /// It failed for the last time.
    Failed {
        /// Why.
        error: &'a str,
        /// The receiver's answer, if it gave one.
        answer: Option<&'a str>,
    },
}
