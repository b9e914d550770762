//! Tries of task instances: the compare-and-set writes that start and end a try, what
//! identifies a running try's processes (for crash recovery), and the per-try timings
//! (runnable, queued, started, ended) that make latency measurable per phase.
//!
//! Invariant: the state and try number a try starts or ends with are `model`'s answers
//! (`start_try`, `try_end`); these writes only apply them, by compare-and-set.

use chrono::{DateTime, Utc};
use sqlx::Row;

use tokio::sync::oneshot;

use super::group::{Job, StartTry};
use super::tis::{TI_COLS, TiRow, ti_row};
use super::{Result, Store, opt_time, parse_col, to_us};
use crate::model::{self, TaskState, TiId};

/// The end of a try, applied only if the instance is still running that try.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishTry {
    /// Task instance primary key.
    pub ti_id: TiId,
    /// The try that ends.
    pub try_number: i64,
    /// Final or waiting state decided by `model`.
    pub state: TaskState,
    /// For up_for_retry / up_for_reschedule.
    pub next_try_at: Option<DateTime<Utc>>,
    /// For sensors: when the current try first poked (kept across reschedules).
    pub first_poke_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub end: DateTime<Utc>,
    /// Error message of a failed try.
    pub error: Option<String>,
    /// Rendered template fields (JSON object).
    pub rendered: Option<serde_json::Value>,
    /// Return value, stored as XCom `return_value`.
    pub xcom: Option<serde_json::Value>,
    /// The process the try belongs to (its worker, or the dead one recovery ends it for):
    /// the end is written only while the instance is still that process's.
    pub owner_process: String,
    /// The try does not count against the task's tries (handed back at shutdown): the
    /// instance's `max_tries` is raised by one.
    pub give_back_try: bool,
    /// Assets the try updated: each gets an event if it ends in success (the task's
    /// `outlets`).
    pub outlets: Vec<String>,
    /// What those events tell (the try's return value, bounded).
    pub outlet_extra: serde_json::Value,
    /// The notifications the end causes (`model::notify::for_try_end`), written with it.
    pub notify: Option<super::Notify>,
}

/// One row of `task_try`: the timing of one try, for latency per phase.
#[derive(Debug, Clone, PartialEq)]
pub struct TryRow {
    /// Try number (1-based).
    pub try_number: i64,
    /// State the try ended in (running while it runs).
    pub state: TaskState,
    /// Dependencies met.
    pub runnable_at: Option<DateTime<Utc>>,
    /// Handed to the executor.
    pub queued_at: Option<DateTime<Utc>>,
    /// Started by a worker.
    pub start_date: Option<DateTime<Utc>>,
    /// Ended.
    pub end_date: Option<DateTime<Utc>>,
    /// Host.
    pub hostname: Option<String>,
    /// Log file.
    pub log_path: Option<String>,
    /// Error of a failed try.
    pub error: Option<String>,
}

/// What identifies the processes of a running try on its host (see
/// `operators::containment`): recorded right after the command is spawned, read by crash
/// recovery to kill what is left of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TryProcess {
    /// The command's leader.
    pub pid: i64,
    /// Its process group (the leader's pid).
    pub pgid: Option<i64>,
    /// Its session (the leader's pid: the command starts with `setsid`).
    pub sid: Option<i64>,
    /// Its cgroup v2 folder, when the try has one.
    pub cgroup: Option<String>,
    /// The boot under which the ids above were recorded.
    pub boot_id: Option<String>,
}

impl Store {
    /// Starts the next try of the instance `queued` (as queueing handed it out): queued ->
    /// running with the try number `model::start_try` decides from it (a sensor's re-poke
    /// keeps its try), by a compare-and-set on what it shows; stamps host, pid and owner, and
    /// records the try (written with the other tries starting or ending meanwhile:
    /// `group.rs`). Returns None when the instance is not as queued any more (someone else
    /// took or changed it).
    pub async fn start_try(
        &self,
        queued: &TiRow,
        hostname: &str,
        pid: i64,
        owner_process: &str,
        log_path: impl Fn(i64) -> String + Send + Sync + 'static,
        now: DateTime<Utc>,
    ) -> Result<Option<TiRow>> {
        // Queued without an owner: no worker claimed it yet, so none may start it.
        let Some(queued_by) = queued.owner_process.clone() else { return Ok(None) };
        let start = StartTry {
            ti_id: queued.id,
            seen: (queued.state, queued.try_number, queued.first_poke_at.map(to_us)),
            queued_by,
            hostname: hostname.to_string(),
            pid,
            owner_process: owner_process.to_string(),
            log_path: Box::new(log_path),
            now,
        };
        let (to, answer) = oneshot::channel();
        self.group_write(Job::Start(start, to), answer).await
    }

    /// Records the processes of a running try (its command's leader, group, session, cgroup).
    /// Returns false, writing nothing, when the instance no longer runs this try.
    pub async fn set_try_process(
        &self,
        ti_id: TiId,
        try_number: i64,
        p: &TryProcess,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE task_instance SET pid = $1, pgid = $2, sid = $3, cgroup = $4, boot_id = $5 \
             WHERE id = $6 AND try_number = $7 AND state = 'running'",
        )
        .bind(p.pid)
        .bind(p.pgid)
        .bind(p.sid)
        .bind(p.cgroup.clone())
        .bind(p.boot_id.clone())
        .bind(ti_id)
        .bind(try_number)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The processes recorded for the current try of an instance, if any were.
    pub async fn try_process(&self, ti_id: TiId) -> Result<Option<TryProcess>> {
        let row = sqlx::query(
            "SELECT pid, pgid, sid, cgroup, boot_id FROM task_instance WHERE id = $1 AND pid IS NOT NULL",
        )
        .bind(ti_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TryProcess {
                pid: r.try_get("pid")?,
                pgid: r.try_get("pgid")?,
                sid: r.try_get("sid")?,
                cgroup: r.try_get("cgroup")?,
                boot_id: r.try_get("boot_id")?,
            })
        })
        .transpose()
    }

    /// Ends a try: running -> `f.state`, with its XCom and timings, in one transaction (with
    /// the other tries starting or ending meanwhile: `group.rs`). Returns false (and writes
    /// nothing) when the instance is no longer running this try (marked or cleared before it
    /// started running, or recovered meanwhile), or when a user asked to stop it: then
    /// `finish_stopped` records the outcome the request decides.
    pub async fn finish_try(&self, f: &FinishTry) -> Result<bool> {
        let (to, answer) = oneshot::channel();
        let done = self.group_write(Job::Finish(f.clone(), to), answer).await?;
        if done && f.state == TaskState::Success && !f.outlets.is_empty() {
            self.announce_asset_events().await;
        }
        if done && f.notify.is_some() {
            self.notifications_changed.notify_one();
        }
        Ok(done)
    }

    /// The tries of a task instance, first to last.
    pub async fn tries(&self, ti_id: TiId) -> Result<Vec<TryRow>> {
        let rows = sqlx::query(
            "SELECT try_number, state, runnable_at, queued_at, start_date, end_date, hostname, \
             log_path, error FROM task_try WHERE ti_id = $1 ORDER BY try_number",
        )
        .bind(ti_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TryRow {
                    try_number: r.try_get("try_number")?,
                    state: parse_col(r, "state")?,
                    runnable_at: opt_time(r, "runnable_at")?,
                    queued_at: opt_time(r, "queued_at")?,
                    start_date: opt_time(r, "start_date")?,
                    end_date: opt_time(r, "end_date")?,
                    hostname: r.try_get("hostname")?,
                    log_path: r.try_get("log_path")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }
}

/// The statements of [`Store::start_try`], in `tx`.
pub(super) async fn start_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    s: &StartTry,
) -> Result<Option<TiRow>> {
    let (state, try_number, first_poke) = s.seen;
    let Some(start) = model::start_try(state, try_number, first_poke.is_some()) else {
        return Ok(None);
    };
    // Compare-and-set on everything the decision read: a claimer that got there first, or a
    // clear or a new queueing in between, makes this write miss. A worker's claim must still
    // hold: its lease not expired (the sweep would take it back).
    let poke_cas = if first_poke.is_some() { "= $11" } else { "IS NULL" };
    let sql = format!(
        "UPDATE task_instance SET state = $1, try_number = $2, \
         start_date = $3, end_date = NULL, hostname = $4, pid = $5, owner_process = $6, \
         pgid = NULL, sid = NULL, cgroup = NULL, boot_id = NULL, requested_state = NULL, \
         requested_max_tries = NULL, requested_note = NULL, updated_at = $3 \
         WHERE id = $7 AND state = $8 AND try_number = $9 AND owner_process = $10 \
         AND (lease_expires_at IS NULL OR lease_expires_at >= $3) AND first_poke_at {poke_cas} \
         RETURNING {TI_COLS}"
    );
    let mut update = sqlx::query(&sql)
        .bind(start.state.as_str())
        .bind(start.try_number)
        .bind(to_us(s.now))
        .bind(s.hostname.as_str())
        .bind(s.pid)
        .bind(s.owner_process.as_str())
        .bind(s.ti_id)
        .bind(state.as_str())
        .bind(try_number)
        .bind(s.queued_by.as_str());
    if let Some(first_poke) = first_poke {
        update = update.bind(first_poke);
    }
    let row = update.fetch_optional(&mut **tx).await?;
    let Some(row) = row else { return Ok(None) };
    let ti = ti_row(&row)?;
    sqlx::query(
        "INSERT INTO task_try (ti_id, try_number, state, runnable_at, queued_at, start_date, \
         hostname, pid, owner_process, log_path) \
         VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (ti_id, try_number) DO UPDATE SET state = 'running'",
    )
    .bind(ti.id)
    .bind(ti.try_number)
    .bind(ti.runnable_at.map(to_us))
    .bind(ti.queued_at.map(to_us))
    .bind(to_us(s.now))
    .bind(s.hostname.as_str())
    .bind(s.pid)
    .bind(s.owner_process.as_str())
    .bind((s.log_path)(ti.try_number))
    .execute(&mut **tx)
    .await?;
    Ok(Some(ti))
}

impl Store {
    /// Records the rendered fields of a try that is still running (its end writes them again),
    /// only while the try is this owner's.
    pub async fn show_rendered(
        &self,
        ti_id: TiId,
        try_number: i64,
        owner_process: &str,
        rendered: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE task_instance SET rendered = $1 WHERE id = $2 AND try_number = $3 \
             AND state = 'running' AND owner_process = $4",
        )
        .bind(rendered.to_string())
        .bind(ti_id)
        .bind(try_number)
        .bind(owner_process)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

/// The statements of [`Store::finish_try`], in `tx`.
pub(super) async fn finish_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    f: &FinishTry,
) -> Result<bool> {
    let end = to_us(f.end);
    let finished_end = (f.state != TaskState::UpForReschedule).then_some(end);
    let done = sqlx::query(
        "UPDATE task_instance SET state = $1, next_try_at = $2, first_poke_at = $3, \
         end_date = $4, rendered = COALESCE($5, rendered), note = $6, updated_at = $7, \
         max_tries = max_tries + $11 \
         WHERE id = $8 AND try_number = $9 AND state = 'running' AND owner_process = $10 \
         AND requested_state IS NULL",
    )
    .bind(f.state.as_str())
    .bind(f.next_try_at.map(to_us))
    .bind(f.first_poke_at.map(to_us))
    .bind(finished_end)
    .bind(f.rendered.as_ref().map(|v| v.to_string()))
    .bind(f.error.clone())
    .bind(end)
    .bind(f.ti_id)
    .bind(f.try_number)
    .bind(f.owner_process.as_str())
    .bind(i64::from(f.give_back_try))
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    end_try_row(tx, f, f.state, f.error.clone()).await?;
    if let Some(value) = &f.xcom {
        put_return_value(tx, f.ti_id, value).await?;
    }
    if f.state == TaskState::Success && !f.outlets.is_empty() {
        super::assets::record_outlets_in(tx, f.ti_id, &f.outlets, &f.outlet_extra, f.end).await?;
    }
    if let Some(n) = &f.notify {
        let error = f.error.as_deref();
        super::notifications::enqueue_try_in(tx, f.ti_id, f.try_number, f.state, error, n, f.end)
            .await?;
    }
    Ok(true)
}

/// Closes the history row of try `f.try_number` as `state`.
pub(super) async fn end_try_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    f: &FinishTry,
    state: TaskState,
    error: Option<String>,
) -> Result<()> {
    sqlx::query(
        "UPDATE task_try SET state = $1, end_date = $2, error = $3 \
         WHERE ti_id = $4 AND try_number = $5",
    )
    .bind(state.as_str())
    .bind(to_us(f.end))
    .bind(error)
    .bind(f.ti_id)
    .bind(f.try_number)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a try's return value as the instance's XCom `return_value`.
pub(super) async fn put_return_value(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ti_id: TiId,
    value: &serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO xcom (ti_id, run_pk, task_id, map_index, key, value) \
         SELECT id, run_pk, task_id, map_index, 'return_value', $1 FROM task_instance \
         WHERE id = $2 ON CONFLICT (ti_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(value.to_string())
    .bind(ti_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
