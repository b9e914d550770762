//! OpenLineage: a RunEvent (spec 2-0-2) when a DAG run or a task try starts (START) and when
//! it ends (COMPLETE, FAIL, ABORT), with the input and output datasets the task types know,
//! sent to `UPDRAFT_LINEAGE_URL` (HTTP POST, or a JSON-lines file) by a task of this process.
//!
//! [`Lineage`] is the handle every emitting site holds (the scheduler, the workers, the run
//! actions); its hooks build the event and put it in a bounded queue with `try_send`. `event`
//! builds the JSON (deterministic run ids, facets), `datasets` and `kinds` name what each task
//! type reads and writes, `transport` empties the queue.
//!
//! Invariants: a hook never waits — a full queue drops the event and counts it
//! (`updraft_lineage_events_total{result="dropped"}`), and only the transport waits on the
//! endpoint (a timeout per request, a bounded number at once), so a slow or dead endpoint never
//! delays a task, a worker or the scheduler. With lineage off (no URL) every hook returns at
//! once and builds nothing. Lineage decides no state and fails nothing: its errors are counted
//! and logged at debug level.

mod datasets;
mod event;
mod kinds;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::model::{DagRunState, RunPk, TaskState};
use crate::operators::TaskContext;
use crate::store::{FinishTry, RunRow, Store, TiRow};

pub use datasets::{Dataset, Datasets};
pub use event::{EventType, run_uuid, try_uuid};

/// The lineage emitter of a process: cheap to clone, off when no URL is set.
#[derive(Clone, Default)]
pub struct Lineage {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    queue: mpsc::Sender<Value>,
    /// The job namespace and the producer URL every event carries.
    ids: event::Ids,
    metrics: Arc<Metrics>,
}

impl Lineage {
    /// Lineage off: every hook does nothing.
    pub fn off() -> Lineage {
        Lineage { inner: None }
    }

    /// The emitter `settings.lineage` asks for, counting into `metrics`; off without a target,
    /// or outside a tokio runtime (nothing could send).
    pub fn start(settings: &Settings, metrics: Arc<Metrics>) -> Lineage {
        let Some(target) = settings.lineage.target.clone() else { return Lineage::off() };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("OpenLineage is configured but no runtime runs here: lineage off");
            return Lineage::off();
        };
        let (queue, rx) = mpsc::channel(settings.lineage.queue);
        runtime.spawn(transport::run(rx, target, metrics.clone()));
        let ids = event::Ids::new(&settings.lineage.namespace, &settings.base_url);
        Lineage { inner: Some(Arc::new(Inner { queue, ids, metrics })) }
    }

    /// Whether events are sent.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// The run started running (the scheduler's `start_run` succeeded).
    pub fn run_started(&self, run: &RunRow, at: DateTime<Utc>) {
        if let Some(inner) = &self.inner {
            inner.send(inner.ids.run_event(EventType::Start, run, at, None));
        }
    }

    /// The scheduler finished the run in `state` (success: COMPLETE, failed: FAIL naming the
    /// tasks that failed, from the run's instance `counts`). Reads the run once, only when
    /// lineage is on.
    pub async fn run_ended(
        &self,
        store: &Store,
        run_pk: RunPk,
        state: DagRunState,
        counts: &HashMap<String, HashMap<TaskState, i64>>,
    ) {
        let Some(inner) = &self.inner else { return };
        let run = match store.get_run(run_pk).await {
            Ok(run) => run,
            Err(e) => {
                tracing::debug!(run_pk = run_pk.0, error = %e, "lineage: run not read, no event");
                return;
            }
        };
        let (kind, error) = match state {
            DagRunState::Success => (EventType::Complete, None),
            _ => (EventType::Fail, Some(event::failed_tasks(counts))),
        };
        let at = run.end_date.unwrap_or_else(Utc::now);
        inner.send(inner.ids.run_event(kind, &run, at, error.as_deref()));
    }

    /// A user ended the running run `run` (marked it success or failed): ABORT. A run that was
    /// not running sent no START, so it gets nothing.
    pub fn run_aborted(&self, run: &RunRow, to: DagRunState) {
        if let Some(inner) = &self.inner
            && run.state == DagRunState::Running
        {
            let why = format!("marked {to} by a user while it ran");
            inner.send(inner.ids.run_event(EventType::Abort, run, Utc::now(), Some(&why)));
        }
    }

    /// A try of `ti` started (`Store::start_try` claimed it) and `ctx` was prepared for it
    /// (None: it could not be, and the try fails before it runs — no events then, as its run's
    /// logical date is unknown). Sends START with the task's datasets, except for a sensor's
    /// later poke (the same try goes on), and returns what its end needs.
    pub fn try_started(&self, ti: &TiRow, ctx: Option<&TaskContext>) -> TryLineage {
        let (Some(inner), Some(ctx)) = (&self.inner, ctx) else { return TryLineage { on: None } };
        let datasets = datasets::of(ctx);
        let t = event::Try::new(ti, &ctx.run, ctx.task.kind.type_name());
        if ti.first_poke_at.is_none() {
            let at = ti.start_date.unwrap_or_else(Utc::now);
            inner.send(inner.ids.try_event(EventType::Start, &t, at, &datasets, None));
        }
        TryLineage { on: Some((inner.clone(), t, datasets)) }
    }
}

impl Inner {
    /// Queues `event`, or drops and counts it when the queue is full.
    fn send(&self, event: Value) {
        if self.queue.try_send(event).is_err() {
            self.metrics.lineage_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the end of one try's lineage needs: its ids and datasets (nothing when lineage is off).
pub struct TryLineage {
    on: Option<(Arc<Inner>, event::Try, Datasets)>,
}

impl TryLineage {
    /// Adds what the try found out while it ran (the tables of an `sql` task's statements) to
    /// the datasets its end reports.
    pub fn observe(&mut self, ctx: &TaskContext) {
        if let Some((_, _, datasets)) = &mut self.on {
            datasets.merge(datasets::reported(ctx));
        }
    }

    /// The try's end was recorded as `recorded` (None: the instance had left the try, whoever
    /// took it over records it — no event here). `own`: the state it reached itself, None when a
    /// user's request stopped it (ABORT); a try cut by this process's shutdown is handed back
    /// (ABORT); success and skipped are COMPLETE (a skip is the task's own, normal answer);
    /// failed and up_for_retry are FAIL with the error; a sensor's "not yet" sends nothing (the
    /// try goes on at its next poke).
    pub fn ended(self, f: &FinishTry, recorded: Option<TaskState>, own: Option<TaskState>) {
        let (Some((inner, t, datasets)), Some(state)) = (self.on, recorded) else { return };
        let kind = match (own, state) {
            (_, TaskState::UpForReschedule) => return,
            (None, _) => EventType::Abort,
            (_, _) if f.give_back_try => EventType::Abort,
            (_, TaskState::Success) => EventType::Complete,
            (_, TaskState::Skipped) => EventType::Complete,
            _ => EventType::Fail,
        };
        let datasets = if state == TaskState::Skipped { Datasets::default() } else { datasets };
        let error = match kind {
            EventType::Fail | EventType::Abort => {
                Some(f.error.clone().unwrap_or_else(|| format!("ended {state}")))
            }
            _ => None,
        };
        inner.send(inner.ids.try_event(kind, &t, f.end, &datasets, error.as_deref()));
    }
}
