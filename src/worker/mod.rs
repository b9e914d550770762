//! Runs one queued task instance: claim the try, run the operator under its timeout, record
//! the outcome decided by `model`, report back.
//!
//! Invariants: a try starts only through `Store::start_try` (queued -> running, compare-and-set)
//! and ends only through [`record_end`] (running -> final, compare-and-set on the try, or the
//! outcome of a user's stop request), so a task instance changed meanwhile is never
//! overwritten. The worker never decides a state itself: `model` does. Every known connection
//! secret is registered with the try's log before the operator runs, and the error, rendered
//! fields and XCom recorded are masked the same way.

mod dags;
pub mod remote;
mod stop;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::dag::{DagCache, Task, TaskKind};
use crate::model::{self, RunPk, TaskState, TiId, TryResult};
use crate::operators::{self, OperatorError, Outcome, TaskContext, TaskLog};
use crate::store::{FinishTry, Store, StoreError, TiRow};

pub use stop::{RunningTries, Stopped, record_end, watch};

/// What a worker needs, shared by every try it runs.
pub struct WorkerEnv {
    /// The metadata database.
    pub store: Store,
    /// Process settings.
    pub settings: Arc<Settings>,
    /// Where DAG definitions come from.
    pub dags: Arc<DagCache>,
    /// This process's id in the `process` table (owner of the tries it runs).
    pub process_id: String,
    /// Host name recorded on each try.
    pub hostname: String,
    /// Fires on shutdown: running tries are cancelled and handed back (they run again, the cut
    /// try not counted).
    pub shutdown: CancellationToken,
    /// Where hand-off latency is recorded.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The tries running now, so that a user's stop request reaches them ([`watch`]).
    pub tries: RunningTries,
    /// Where the tries' OpenLineage events go (off unless configured).
    pub lineage: crate::lineage::Lineage,
}

/// What happened to one task instance handed to [`run_ti`].
#[derive(Debug, Clone, PartialEq)]
pub struct TryReport {
    /// The task instance.
    pub ti_id: TiId,
    /// Its run.
    pub run_pk: RunPk,
    /// Its task.
    pub task_id: String,
    /// The state the try ended in; None when the try never started (not queued any more).
    pub state: Option<TaskState>,
}

/// The log file of one try: `<logs>/<dag>/<run>/<task>[/<map_index>]/<try>.log`.
/// Each id is one folder name whatever it holds (`operators::log_path`).
pub fn log_path(settings: &Settings, ti: &TiRow, try_number: i64) -> PathBuf {
    let ids = (ti.dag_id.as_str(), ti.run_id.as_str(), ti.task_id.as_str());
    crate::operators::log_path::try_log(&settings.log_dir(), ids, ti.map_index, try_number)
}

impl TryReport {
    /// The report of an instance whose try never started.
    pub fn never_started(ti: &TiRow) -> TryReport {
        TryReport { ti_id: ti.id, run_pk: ti.run_pk, task_id: ti.task_id.clone(), state: None }
    }
}

/// Runs the next try of the queued task instance `ti` to its end and records the outcome.
pub async fn run_ti(env: &WorkerEnv, ti: &TiRow) -> Result<TryReport, StoreError> {
    let started = Utc::now();
    let pid = i64::from(std::process::id());
    let (settings, row) = (env.settings.clone(), ti.clone());
    let paths = move |n| log_path(&settings, &row, n).display().to_string();
    let Some(ti) =
        env.store.start_try(ti, &env.hostname, pid, &env.process_id, paths, started).await?
    else {
        return Ok(TryReport::never_started(ti));
    };
    if let Some(runnable) = ti.runnable_at {
        env.metrics.handoff.observe((started - runnable).to_std().unwrap_or_default());
    }
    let path = log_path(&env.settings, &ti, ti.try_number);
    let log = TaskLog::open(&path).unwrap_or_else(|e| {
        tracing::warn!(path = %path.display(), error = %e, "cannot open task log");
        TaskLog::sink()
    });
    let failed = |error: String| FinishTry {
        ti_id: ti.id,
        try_number: ti.try_number,
        state: TaskState::Failed,
        next_try_at: None,
        first_poke_at: None,
        end: Utc::now(),
        error: Some(error),
        rendered: None,
        xcom: None,
        owner_process: env.process_id.clone(),
        give_back_try: false,
        outlets: Vec::new(),
        outlet_extra: serde_json::Value::Null,
        notify: None,
    };
    // `own`: the state the try reached by itself; None when a user's stop request ended it.
    let prepared = prepare(env, &ti, log.clone()).await;
    let mut lineage = env.lineage.try_started(&ti, prepared.as_ref().ok().map(|(ctx, _)| ctx));
    let (own, mut finish) = match prepared {
        Ok((ctx, task)) => {
            log.line(format!(
                "Starting try {} of {} for {}.{} (run {}) on {}",
                ti.try_number, ti.max_tries, ti.dag_id, ti.task_id, ti.run_id, env.hostname
            ));
            env.tries.insert(ti.id, ti.try_number, ctx.cancel.clone(), log.clone());
            let run = run_with_timeout(&ctx, &task);
            tokio::pin!(run);
            // A try still running after a moment shows what it rendered (the command, the
            // query) at once; short tries write it with their end only, off the hot path.
            let result = tokio::select! {
                result = &mut run => result,
                () = tokio::time::sleep(SHOW_RENDERED_AFTER) => {
                    show_rendered(env, &ti, &ctx, &log).await;
                    run.await
                }
            };
            let stopped = env.tries.remove(ti.id);
            lineage.observe(&ctx);
            let rendered = ctx.rendered.lock().map(|r| r.clone()).unwrap_or_default();
            if stopped == Some(Stopped::LeaseLost) {
                // The sweep took the try back (or will, its lease being over): it records the
                // end; whatever this try did is discarded.
                log.line("This worker lost its lease on the try: outcome discarded");
                return Ok(TryReport::never_started(&ti));
            }
            if stopped == Some(Stopped::ByRequest) {
                let mut f = failed("stopped on request".into());
                f.rendered = Some(serde_json::Value::Object(rendered));
                (None, f)
            } else {
                // Cancelled because this process shuts down (not by a timeout or a user): the
                // try is handed back.
                let shut_down = env.shutdown.is_cancelled();
                let times = (started, Utc::now());
                let (state, f) = decide(&ti, &task, result, shut_down, &log, times, rendered);
                (Some(state), f)
            }
        }
        Err(e) => {
            log.line(format!("Cannot start: {e}"));
            (Some(TaskState::Failed), failed(e.to_string()))
        }
    };
    // What the UI and the API show passes the same masker as the log.
    finish.error = finish.error.map(|e| log.mask(&e));
    finish.rendered = finish.rendered.map(|v| log.mask_value(v));
    finish.xcom = finish.xcom.map(|v| log.mask_value(v));
    if !finish.outlets.is_empty() {
        finish.outlet_extra = event_extra(finish.xcom.as_ref());
    }
    let recorded = record_end(&env.store, &finish, own, &log).await?;
    lineage.ended(&finish, recorded, own);
    if recorded.is_none() {
        tracing::warn!(ti_id = ti.id.0, try_number = ti.try_number, dag_id = %ti.dag_id, task_id = %ti.task_id, "late result discarded: the instance left this try while it ran");
        log.line(
            "The task instance left this try while it ran (taken back after a missed heartbeat, recovered, or changed): outcome discarded",
        );
    }
    Ok(TryReport { ti_id: ti.id, run_pk: ti.run_pk, task_id: ti.task_id.clone(), state: recorded })
}

/// The notifications a try of `task` ending in `state` causes, as its end records them.
pub fn notify_of(task: &Task, state: TaskState) -> Option<crate::store::Notify> {
    crate::model::notify::for_try_end(task, state)
        .map(|(event, to)| crate::store::Notify { event, to: to.to_vec() })
}

/// Events grouped by asset URI, each list oldest first: Airflow's `triggering_asset_events`.
pub fn by_asset(events: Vec<crate::store::AssetEventRow>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for e in events {
        let list = out.entry(e.uri.clone()).or_insert_with(|| serde_json::json!([]));
        if let (Some(list), Ok(v)) = (list.as_array_mut(), serde_json::to_value(&e)) {
            list.push(v);
        }
    }
    serde_json::Value::Object(out)
}

/// The largest return value an outlet's asset event carries as its `extra`, in JSON bytes.
const EVENT_EXTRA_MAX: usize = 16 * 1024;

/// What the asset events of a successful try tell: its return value (the rows, offsets or
/// objects it wrote, as its XCom says) when that is small, else only its size.
fn event_extra(xcom: Option<&serde_json::Value>) -> serde_json::Value {
    let Some(v) = xcom else { return serde_json::json!({}) };
    let len = v.to_string().len();
    if len <= EVENT_EXTRA_MAX {
        serde_json::json!({ "return_value": v })
    } else {
        serde_json::json!({ "return_value_bytes": len })
    }
}

/// Loads what the operator needs, reading again while the database cannot be reached (for at
/// most [`stop::RECONNECT_FOR`]). Any other error is fatal for the try (no retry helps a DAG
/// that is gone).
async fn prepare(
    env: &WorkerEnv,
    ti: &TiRow,
    log: TaskLog,
) -> Result<(TaskContext, Task), OperatorError> {
    let fatal = |e: StoreError| OperatorError::Fatal(e.to_string());
    let run = stop::retrying(&log, || env.store.get_run(ti.run_pk)).await.map_err(fatal)?;
    let dag =
        dags::dag_for(&env.store, &env.dags, &run, &log).await.map_err(OperatorError::Fatal)?;
    let task = dag.tasks.get(&ti.task_id).cloned().ok_or_else(|| {
        OperatorError::Fatal(format!("task `{}` is no longer in DAG `{}`", ti.task_id, ti.dag_id))
    })?;
    // XCom and variables feed templates; an `empty` task renders none and prints nothing, so
    // skip the reads, and XComs are read only where a template can pull one. Every other task
    // gets every stored connection's secrets masked, whether it names the connection or not.
    let (xcoms, db_variables, db_connections) = if matches!(task.kind, TaskKind::Empty(_)) {
        Default::default()
    } else {
        let conns = match db_connections(env, &log).await {
            Ok(c) => c,
            Err(e) if task.kind.uses_connections() => return Err(e),
            Err(e) => {
                // A task that reads no connection still runs; none can be masked, but it can
                // read none either (they are stored encrypted).
                log.line(format!("warning: stored connections unreadable, none masked: {e}"));
                Default::default()
            }
        };
        let xcoms = if task.pulls_xcom {
            stop::retrying(&log, || env.store.run_xcoms(ti.run_pk)).await.map_err(fatal)?
        } else {
            Vec::new()
        };
        (xcoms, stop::retrying(&log, || env.store.list_variables()).await.map_err(fatal)?, conns)
    };
    register_secrets(&log, &env.settings, &db_connections, &db_variables);
    let triggering_asset_events = if run.run_type == crate::model::RunType::AssetTriggered {
        let (events, _) = stop::retrying(&log, || env.store.triggering_asset_events(run.id))
            .await
            .map_err(fatal)?;
        by_asset(events)
    } else {
        serde_json::json!({})
    };
    let ctx = TaskContext {
        dag,
        task: task.clone(),
        run,
        ti: ti.clone(),
        xcoms,
        db_variables,
        db_connections,
        store: env.store.clone(),
        settings: env.settings.clone(),
        log,
        cancel: env.shutdown.child_token(),
        rendered: Mutex::new(serde_json::Map::new()),
        triggering_asset_events,
        tables: Default::default(),
    };
    Ok((ctx, task))
}

/// Registers every known secret with the try's log: those of the environment's connections and
/// of the stored ones, in each form they may be printed in, and the values of variables whose
/// name looks secret (`api_token`), as Airflow masks them.
fn register_secrets(
    log: &TaskLog,
    settings: &Settings,
    db: &crate::operators::DbConnections,
    db_variables: &std::collections::BTreeMap<String, String>,
) {
    use crate::operators::connection::{is_sensitive_name, secrets_of};
    let uris = settings.connections.values().chain(db.values().filter_map(|c| c.as_ref().ok()));
    for uri in uris {
        for secret in secrets_of(uri) {
            log.add_secret(secret);
        }
    }
    for (name, value) in settings.variables.iter().chain(db_variables) {
        if is_sensitive_name(name) {
            log.add_secret(value.clone());
        }
    }
}

/// Connections stored in the metadata database, decrypted. One that cannot be decrypted is
/// kept as its error, which fails only a try that uses it.
async fn db_connections(
    env: &WorkerEnv,
    log: &TaskLog,
) -> Result<crate::operators::DbConnections, OperatorError> {
    let rows = stop::retrying(log, || env.store.list_connections())
        .await
        .map_err(|e| OperatorError::Fatal(e.to_string()))?;
    crate::operators::decrypt_connections(&env.settings, rows)
        .map_err(|e| OperatorError::Fatal(e.to_string()))
}

/// Grace given to an operator to return after its cancellation fired (it kills its process
/// group within this); past it the operator's future is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(15);

/// A try running longer than this records its rendered fields before it ends, for the UI.
const SHOW_RENDERED_AFTER: Duration = Duration::from_secs(1);

/// Records what a running try rendered so far (masked like its log), for the pages to show
/// while it runs. Only for display: a failure is logged and the try goes on.
async fn show_rendered(env: &WorkerEnv, ti: &TiRow, ctx: &TaskContext, log: &TaskLog) {
    let rendered = ctx.rendered.lock().map(|r| r.clone()).unwrap_or_default();
    if rendered.is_empty() {
        return;
    }
    let value = log.mask_value(serde_json::Value::Object(rendered));
    let shown = env.store.show_rendered(ti.id, ti.try_number, &env.process_id, &value).await;
    if let Err(e) = shown {
        tracing::debug!(error = %e, ti_id = ti.id.0, "could not record the rendered fields early");
    }
}

/// Runs the operator; when `execution_timeout` passes, cancels it, waits for it to clean up
/// (a bash command's process group is killed) and reports the timeout.
async fn run_with_timeout(ctx: &TaskContext, task: &Task) -> Result<Outcome, OperatorError> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let timer = task.execution_timeout.map(|limit| {
        let (flag, cancel) = (timed_out.clone(), ctx.cancel.clone());
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            flag.store(true, Ordering::SeqCst);
            cancel.cancel();
        })
    });
    let fut = operators::execute(ctx);
    tokio::pin!(fut);
    let result = tokio::select! {
        r = &mut fut => r,
        _ = ctx.cancel.cancelled() => match tokio::time::timeout(CANCEL_GRACE, &mut fut).await {
            Ok(r) => r,
            Err(_) => Err(OperatorError::Retryable("did not stop after cancellation".into())),
        },
    };
    if let Some(timer) = timer {
        timer.abort();
    }
    match (timed_out.load(Ordering::SeqCst), task.execution_timeout, result) {
        (true, Some(limit), Err(_)) => Err(OperatorError::Retryable(format!(
            "execution_timeout of {} exceeded",
            humantime::format_duration(limit)
        ))),
        (_, _, result) => result,
    }
}

/// Turns an operator result into the state to record: `model::try_end` decides, this logs its
/// line and builds the write. `shut_down`: this process is shutting down, so a try that did not
/// finish was cut short by it. `times`: when the try started and when it ended.
fn decide(
    ti: &TiRow,
    task: &Task,
    result: Result<Outcome, OperatorError>,
    shut_down: bool,
    log: &TaskLog,
    (started, now): (DateTime<Utc>, DateTime<Utc>),
    rendered: serde_json::Map<String, serde_json::Value>,
) -> (TaskState, FinishTry) {
    let facts = model::TryFacts {
        try_number: ti.try_number,
        max_tries: ti.max_tries,
        first_poke_at: ti.first_poke_at,
        started,
    };
    let (end, xcom) = match result {
        Ok(Outcome::Done(value)) => (model::try_end(task, facts, TryResult::Done, now), value),
        Ok(Outcome::NotYet(reason)) => {
            (model::try_end(task, facts, TryResult::NotYet(&reason), now), None)
        }
        Err(OperatorError::Skip(reason)) => {
            (model::try_end(task, facts, TryResult::Skip(&reason), now), None)
        }
        Err(_) if shut_down => (model::try_end(task, facts, TryResult::HandedBack, now), None),
        Err(e) => {
            let error = e.to_string();
            let failed = TryResult::Failed { error: &error, retryable: e.is_retryable() };
            (model::try_end(task, facts, failed, now), None)
        }
    };
    log.line(&end.log_line);
    let f = FinishTry {
        ti_id: ti.id,
        try_number: ti.try_number,
        state: end.state,
        next_try_at: end.next_try_at,
        first_poke_at: end.first_poke_at,
        end: now,
        error: end.error,
        rendered: Some(serde_json::Value::Object(rendered)),
        xcom,
        owner_process: ti.owner_process.clone().unwrap_or_default(),
        give_back_try: end.give_back_try,
        outlets: task.outlets.clone(),
        outlet_extra: serde_json::Value::Null,
        notify: notify_of(task, end.state),
    };
    (f.state, f)
}
