//! Workers' claims (`UPDRAFT_EXECUTOR=distributed`): a worker takes queued instances nobody
//! owns, with a lease its heartbeat renews; and the notifications that wake workers and
//! schedulers without being needed for correctness.
//!
//! Invariants: a claim writes the claimer as the instance's owner only on a row still queued
//! and unowned, under `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never claim the
//! same instance and never wait for each other; a lease is renewed only while it has not
//! expired, so once the sweep may take a try back its worker can no longer keep it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::tis::{TI_COLS, TiRow, ti_row};
use super::{Backend, Result, Store, to_us};
use crate::model::TiId;

/// The channel schedulers queue on: workers listen to it to claim at once.
pub const QUEUED_CHANNEL: &str = "updraft_queued";
/// The channel workers report the end of tries on (payload: `run_pk task_id state`).
pub const ENDED_CHANNEL: &str = "updraft_ended";

/// Calls `on` with the payload of every notification on the PostgreSQL channel `channel` of
/// the database at `url`, until `stop`; a lost connection is made again with back-off (from
/// 0.2 s, at most 10 s). Notifications sent while it reconnects are lost: listeners only use
/// them to act sooner than their poll.
pub async fn listen(url: &str, channel: &str, stop: CancellationToken, mut on: impl FnMut(&str)) {
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        let connect = async {
            let mut l = PgListener::connect(url).await?;
            l.listen(channel).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match connect.await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(channel, error = %e, "cannot listen; polling meanwhile");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                n = listener.recv() => n,
            };
            match next {
                Ok(n) => on(n.payload()),
                Err(e) => {
                    tracing::debug!(channel, error = %e, "lost the notification connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// The claim's choice of rows: up to `$<limit>` unowned queued instances of the queues bound at
/// `marks`, highest priority first, locked with `lock`. `claim_queued` runs it; `explain_claim`
/// asks PostgreSQL for its plan, so the test of the plan tests this very text.
fn claimable(marks: &[String], limit: &str, lock: &str) -> String {
    format!(
        "SELECT id FROM task_instance \
         WHERE state = 'queued' AND owner_process IS NULL AND queue IN ({}) \
         ORDER BY priority_weight DESC, queued_at, id LIMIT {limit} {lock}",
        marks.join(", ")
    )
}

impl Store {
    /// Claims up to `n` queued instances of `queues` nobody owns, highest priority first, for
    /// `worker`, leased until `lease_until`. Pools, `max_active_tasks` and the executor's
    /// parallelism were counted when the scheduler queued them.
    pub async fn claim_queued(
        &self,
        worker: &str,
        queues: &[String],
        n: usize,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TiRow>> {
        if n == 0 || queues.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..queues.len()).map(|i| format!("${}", i + 5)).collect();
        // SKIP LOCKED: a row another worker is claiming right now is passed over, not waited
        // for. SQLite has one writer and no row locks.
        let lock = if self.backend == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        // The rows to claim are chosen once, in a materialized CTE: as a plain `IN (SELECT ...
        // LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may run the subquery again for the
        // outer rows, and with SKIP LOCKED each run picks other rows, so more than `n` would
        // be claimed.
        let sql = format!(
            "WITH chosen AS MATERIALIZED ({}) \
             UPDATE task_instance SET owner_process = $1, lease_expires_at = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM chosen) AND state = 'queued' AND owner_process IS NULL \
             RETURNING {TI_COLS}",
            claimable(&marks, "$4", lock)
        );
        let mut query =
            sqlx::query(&sql).bind(worker).bind(to_us(lease_until)).bind(to_us(now)).bind(n as i64);
        for q in queues {
            query = query.bind(q.as_str());
        }
        let rows = query.fetch_all(&self.writer).await?;
        let mut tis: Vec<TiRow> = rows.iter().map(ti_row).collect::<Result<_>>()?;
        // RETURNING gives no order: run them as claimed, highest priority first.
        tis.sort_by(|a, b| b.priority_weight.cmp(&a.priority_weight).then(a.id.cmp(&b.id)));
        Ok(tis)
    }

    /// Renews the leases of the running tries `worker` holds that have not expired at `now`,
    /// until `lease_until`. Returns the tries it still holds: any other try it runs is lost
    /// (taken back by the sweep, cleared, marked) and must stop. A claim not started yet keeps
    /// the lease it was claimed with: unstarted past it, the sweep gives it to another worker.
    pub async fn renew_leases(
        &self,
        worker: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(TiId, i64)>> {
        // On PostgreSQL the rows are locked first, in id order, as a batch of try starts and
        // ends locks them (`group.rs`): else the two could deadlock, each holding a row of this
        // worker the other waits for. SQLite has one writer and no row locks.
        let held = match self.backend {
            Backend::Postgres => {
                "owner_process = $2 AND state = 'running' AND id IN (SELECT id FROM \
                 task_instance WHERE owner_process = $2 AND state = 'running' \
                 AND lease_expires_at >= $3 ORDER BY id FOR UPDATE)"
            }
            Backend::Sqlite => {
                "owner_process = $2 AND state = 'running' AND lease_expires_at >= $3"
            }
        };
        let sql = format!(
            "UPDATE task_instance SET lease_expires_at = $1 WHERE {held} RETURNING id, try_number"
        );
        let rows = sqlx::query(&sql)
            .bind(to_us(lease_until))
            .bind(worker)
            .bind(to_us(now))
            .fetch_all(&self.writer)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("try_number")?))).collect()
    }

    /// Gives back what `worker` claimed and did not start (it stops): those instances are
    /// queued for any worker again.
    pub async fn release_claims(&self, worker: &str, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE task_instance SET owner_process = NULL, lease_expires_at = NULL, \
             updated_at = $1 WHERE owner_process = $2 AND state = 'queued'",
        )
        .bind(to_us(now))
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Sends `payload` on the PostgreSQL channel `channel` (nothing on SQLite, where every
    /// process that could listen is this one).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The query plan PostgreSQL chooses for a claim of `queue` (for tests and `EXPLAIN`-minded
    /// operators).
    pub async fn explain_claim(&self, queue: &str) -> Result<String> {
        let sql = format!("EXPLAIN {}", claimable(&["$1".into()], "8", "FOR UPDATE SKIP LOCKED"));
        let rows = sqlx::query(&sql).bind(queue).fetch_all(&self.pool).await?;
        let lines: Vec<String> =
            rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?;
        Ok(lines.join("\n"))
    }
}
