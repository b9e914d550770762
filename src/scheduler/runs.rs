//! Run-level scheduling: creating scheduled runs, starting queued runs, and examining a running
//! run's task instances.
//!
//! Invariant: this file decides nothing itself. It reads the store, asks `model` (which runs
//! are due, whether a run may start, what each pending instance does and why, what a rendered
//! `foreach` means) and applies the answers as compare-and-set writes. A waiting instance's
//! reason is written only when it differs from its stored note, so re-examining a run whose
//! waits have not changed writes nothing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Scheduler, SchedulerError};
use crate::dag::{Dag, Foreach};
use crate::model::{
    self, DagRunState, Expansion, Next, RunPk, RunType, TaskState, TiFacts, UpstreamCounts,
};
use crate::operators::template::{RenderInput, Renderer};
use crate::store::{NewRun, NewTi, RunRow, StoreError, TiRow, TiUpdate};

pub(super) use super::counts::Counts;

/// The DAG version a running run is pinned to: its DAG and the source hash its task
/// instances were created from (None for a run started before versions were recorded,
/// which follows the folder's current DAG).
#[derive(Debug, Clone)]
pub(super) struct Pin {
    dag_id: String,
    version: Option<String>,
}

impl Pin {
    pub(super) fn of(run: &RunRow) -> Pin {
        Pin { dag_id: run.dag_id.clone(), version: run.dag_version.clone() }
    }
}

fn upstream_counts(dag: &Dag, task_id: &str, counts: &Counts) -> UpstreamCounts {
    let mut c = UpstreamCounts::default();
    for up in dag.graph.upstream(task_id) {
        let states = counts.get(up).into_iter().flatten();
        c.add_task(up, states.map(|(state, n)| (*state, (*n).max(0) as usize)));
    }
    c
}

fn shift(counts: &mut Counts, task_id: &str, from: TaskState, to: TaskState) {
    let per_task = counts.entry(task_id.to_string()).or_default();
    *per_task.entry(from).or_insert(0) -= 1;
    *per_task.entry(to).or_insert(0) += 1;
}

/// What one pass over a run decided.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// State changes and changed waiting notes, each applied only if the instance is still in
    /// the state it was read in.
    pub updates: Vec<TiUpdate>,
    /// Mapped placeholders whose `foreach` is to be rendered.
    pub expand: Vec<TiRow>,
}

impl Plan {
    /// Whether the plan moves an instance or expands a mapped task (rather than only noting
    /// why instances wait).
    fn moves(&self) -> bool {
        !self.expand.is_empty() || self.updates.iter().any(|u| u.from != u.to)
    }

    fn apply(&mut self, ti: &TiRow, next: Next, counts: &mut Counts) {
        match next {
            Next::Move(d) => {
                let note = d.why.note();
                self.updates.push(TiUpdate { id: ti.id, from: ti.state, to: d.to, note });
                shift(counts, &ti.task_id, ti.state, d.to);
            }
            // The hot path: an unchanged wait costs a string comparison, not a write.
            Next::Hold(reason) => {
                if let Some(note) = reason.note().filter(|n| ti.note.as_ref() != Some(n)) {
                    let (id, state) = (ti.id, ti.state);
                    self.updates.push(TiUpdate { id, from: state, to: state, note: Some(note) });
                }
            }
            Next::Expand => self.expand.push(ti.clone()),
            Next::Untouched => {}
        }
    }
}

/// The run's state by `model` from its instance counts.
fn run_state(dag: &Dag, counts: &Counts) -> DagRunState {
    let present = |(s, n): (&TaskState, &i64)| (*n > 0).then_some(*s);
    let all: Vec<TaskState> = counts.values().flat_map(|m| m.iter().filter_map(present)).collect();
    let leaves: Vec<TaskState> = dag
        .graph
        .leaves()
        .iter()
        .filter_map(|t| counts.get(t))
        .flat_map(|m| m.iter().filter_map(present))
        .collect();
    model::run_state(&all, &leaves)
}

/// Decides, through `model`, what happens to each pending instance of a run: instances of
/// removed tasks first, then task by task in topological order, with `counts` updated as it
/// goes so skips and upstream failures cascade in one pass.
pub(super) fn plan_run(
    dag: &Dag,
    pending: &[TiRow],
    counts: &mut Counts,
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let mut by_task: HashMap<&str, Vec<&TiRow>> = HashMap::new();
    let facts = |ti: &TiRow| TiFacts {
        state: ti.state,
        map_index: ti.map_index,
        next_try_at: ti.next_try_at,
    };
    let nothing_upstream = UpstreamCounts::default();
    for ti in pending {
        if dag.tasks.contains_key(&ti.task_id) {
            by_task.entry(ti.task_id.as_str()).or_default().push(ti);
        } else {
            let next = model::schedule_ti(&facts(ti), None, &nothing_upstream, now);
            plan.apply(ti, next, counts);
        }
    }
    for task_id in dag.graph.topo_order() {
        let Some(tis) = by_task.get(task_id.as_str()) else { continue };
        let task = &dag.tasks[task_id];
        for ti in tis {
            let upstream = upstream_counts(dag, task_id, counts);
            let next = model::schedule_ti(&facts(ti), Some(task), &upstream, now);
            plan.apply(ti, next, counts);
        }
    }
    plan
}

impl Scheduler {
    /// Creates the scheduled runs that fell due, up to each DAG's `max_active_runs`.
    pub(super) async fn create_scheduled_runs(&mut self) -> Result<(), SchedulerError> {
        let now = self.clock.now();
        let active_by_dag = self.store.run_counts_by_dag(true).await?;
        for dag in self.dags.all() {
            if !dag.schedule.is_scheduled() || self.paused.contains(&dag.dag_id) {
                continue;
            }
            let last = match self.last_interval.get(&dag.dag_id) {
                Some(last) => *last,
                None => self.store.last_scheduled_interval(&dag.dag_id).await?,
            };
            let active = active_by_dag.get(&dag.dag_id).copied().unwrap_or(0);
            let due = model::due_runs(&dag, last, active, now);
            let mut last_created = last;
            for interval in due.create {
                let run = NewRun {
                    dag_id: dag.dag_id.clone(),
                    run_id: NewRun::default_run_id(RunType::Scheduled, interval.start),
                    run_type: RunType::Scheduled,
                    logical_date: interval.start,
                    data_interval_start: interval.start,
                    data_interval_end: interval.end,
                    conf: serde_json::Map::new(),
                    triggered_by: "scheduler".into(),
                    deadlines: Vec::new(),
                }
                .with_deadlines(&dag, now);
                match self.store.create_run(&run, now).await {
                    Ok(_) => {
                        tracing::info!(dag_id = %dag.dag_id, run_id = %run.run_id, "scheduled run created")
                    }
                    // Another scheduler created it first.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                last_created = Some(interval);
            }
            self.last_interval.insert(dag.dag_id.clone(), last_created);
            if self.next_dagrun.get(&dag.dag_id) != Some(&due.next) {
                self.store.set_next_dagrun(&dag.dag_id, due.next).await?;
                self.next_dagrun.insert(dag.dag_id.clone(), due.next);
            }
        }
        Ok(())
    }

    /// Starts queued runs while their DAG's `max_active_runs` allows, creating their task
    /// instances.
    pub(super) async fn start_queued_runs(&mut self) -> Result<(), SchedulerError> {
        let queued = self.store.runs_in_state(DagRunState::Queued, 1000).await?;
        if queued.is_empty() {
            return Ok(());
        }
        let mut running = self.store.run_counts_by_dag(false).await?;
        // A backfill's runs also wait for its own limit, and do not start while it is paused.
        let mut gates = if queued.iter().any(|r| r.backfill_id.is_some()) {
            self.store.backfill_gates().await?
        } else {
            Default::default()
        };
        for run in queued {
            let Some(dag) = self.dags.cached(&run.dag_id) else { continue };
            if self.paused.contains(&dag.dag_id) {
                continue;
            }
            let n = running.entry(dag.dag_id.clone()).or_insert(0);
            if !model::may_start_run(&dag, *n) {
                continue;
            }
            let gate = run.backfill_id.and_then(|id| gates.get_mut(&id));
            if let Some(g) = &gate
                && !model::backfill::may_start(
                    g.is_paused,
                    g.cancelled,
                    g.running,
                    g.max_active_runs,
                )
            {
                continue;
            }
            let tis: Vec<NewTi> = dag.tasks.values().map(NewTi::for_task).collect();
            if self.store.start_run(run.id, Some(&dag), &tis, self.clock.now()).await? {
                self.lineage.run_started(&run, self.clock.now());
                if let Some(g) = gate {
                    g.running += 1;
                }
                *n += 1;
                tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, "run started");
                let version = Some(dag.version.clone());
                self.running.insert(run.id, Pin { dag_id: run.dag_id.clone(), version });
                self.dirty.insert(run.id);
            }
        }
        Ok(())
    }

    /// Examines one running run: applies what `model` decides for its pending instances
    /// (see [`plan_run`]), expands mapped tasks, and finishes the run when every instance is
    /// finished.
    pub(super) async fn schedule_run(&mut self, run_pk: RunPk) -> Result<(), SchedulerError> {
        // A DAG this scheduler does not know (file removed or broken): leave its runs alone.
        let Some(dag) = self.run_dag(run_pk).await? else { return Ok(()) };
        let now = self.clock.now();
        let pending = self.store.run_pending_tis(run_pk).await?;
        // Kept counts may only decide that instances wait (`counts.rs`): a plan from them that
        // moves an instance or finishes the run is made again from the store's counts.
        let from_kept = self.counts.get(run_pk).and_then(|kept| {
            let mut counts = kept.clone();
            let mut plan = plan_run(&dag, &pending, &mut counts, now);
            if plan.moves() || run_state(&dag, &counts).is_finished() {
                return None;
            }
            // Notes from kept counts may name an upstream state that moved on unseen; the
            // next plan from the store's counts writes them.
            plan.updates.clear();
            Some((counts, plan))
        });
        let (counts, plan) = match from_kept {
            Some(kept) => kept,
            None => {
                let mut counts = self.read_counts(run_pk).await?;
                let plan = plan_run(&dag, &pending, &mut counts, now);
                (counts, plan)
            }
        };
        // Written at the time of writing, not of the plan's start: an empty task marked done
        // must not seem to start before the upstream end this pass read.
        let applied = self.store.apply_ti_updates(&plan.updates, self.clock.now()).await?;
        self.queue_wanted |= plan.updates.iter().any(|u| u.to == TaskState::Scheduled);
        if !plan.expand.is_empty() {
            self.counts.forget(run_pk);
            let run = self.store.get_run(run_pk).await?;
            for placeholder in plan.expand {
                self.expand(&dag, &run, &placeholder).await?;
            }
            self.dirty.insert(run_pk);
            return Ok(());
        }
        self.finish_run_if_done(&dag, run_pk, &counts).await?;
        // Counts are kept while the run runs and every decision of this pass was applied.
        if applied == plan.updates.len() as u64 && self.running.contains_key(&run_pk) {
            self.counts.keep(run_pk, counts);
        } else {
            self.counts.forget(run_pk);
        }
        Ok(())
    }

    /// The DAG a running run is planned from: the version it is pinned to (the folder's DAG
    /// when the file still holds that source, else the stored version's source). None when
    /// the run is not running, or its DAG is unknown here (a run without a version whose file
    /// is gone or broken, or a stored version that no longer parses).
    pub(super) async fn run_dag(
        &mut self,
        run_pk: RunPk,
    ) -> Result<Option<Arc<Dag>>, SchedulerError> {
        let pin = match self.running.get(&run_pk) {
            Some(pin) => pin.clone(),
            None => {
                let run = self.store.get_run(run_pk).await?;
                if run.state != DagRunState::Running {
                    return Ok(None);
                }
                let pin = Pin::of(&run);
                self.running.insert(run_pk, pin.clone());
                pin
            }
        };
        let Some(version) = pin.version.as_deref() else {
            return Ok(self.dags.cached(&pin.dag_id));
        };
        if let Some(dag) = self.dags.pinned(&pin.dag_id, version) {
            return Ok(Some(dag));
        }
        let stored = match self.store.dag_version(&pin.dag_id, version).await {
            Ok(v) => v,
            Err(StoreError::NotFound(what)) => {
                tracing::warn!(run_pk = run_pk.0, "run left alone: {what} is not recorded");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        match self.dags.parse(&pin.dag_id, Path::new(&stored.fileloc), &stored.source) {
            Ok(dag) => Ok(Some(dag)),
            Err(errors) => {
                let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(run_pk = run_pk.0, dag_id = %pin.dag_id, "run left alone: its pinned version no longer parses: {first}");
                Ok(None)
            }
        }
    }

    /// A run's instance counts per task and state, from the store.
    pub(super) async fn read_counts(&self, run_pk: RunPk) -> Result<Counts, SchedulerError> {
        let mut counts: Counts = HashMap::new();
        for (task_id, state, n) in self.store.run_state_counts(run_pk).await? {
            counts.entry(task_id).or_default().insert(state, n);
        }
        Ok(counts)
    }

    async fn finish_run_if_done(
        &mut self,
        dag: &Dag,
        run_pk: RunPk,
        counts: &Counts,
    ) -> Result<(), SchedulerError> {
        let state = run_state(dag, counts);
        let notify = model::notify::for_run_end(dag, state)
            .map(|(event, to)| crate::store::Notify { event, to: to.to_vec() });
        if state.is_finished()
            && self
                .store
                .finish_run(run_pk, DagRunState::Running, state, notify.as_ref(), self.clock.now())
                .await?
        {
            tracing::info!(dag_id = %dag.dag_id, run_pk = run_pk.0, state = %state, "run finished");
            self.lineage.run_ended(&self.store, run_pk, state, counts).await;
            self.running.remove(&run_pk);
            self.run_ended = true;
            if self.opts.exit_after_run == Some(run_pk) {
                self.finished_target = true;
            }
        }
        Ok(())
    }

    /// Renders a mapped task's `foreach` and applies what `model::expansion` makes of it: one
    /// instance per item in place of the placeholder, or the placeholder skipped or failed with
    /// the reason.
    async fn expand(
        &mut self,
        dag: &Dag,
        run: &RunRow,
        placeholder: &TiRow,
    ) -> Result<(), SchedulerError> {
        let task = &dag.tasks[&placeholder.task_id];
        let items = match &task.foreach {
            Some(Foreach::List(items)) => Ok(items.to_vec()),
            Some(Foreach::Template(text)) => {
                let xcoms = self.store.run_xcoms(run.id).await?;
                let db_variables = self.store.list_variables().await?;
                // A mapped task of an asset-triggered run may fan out over its events.
                let events = if run.run_type == RunType::AssetTriggered {
                    crate::worker::by_asset(self.store.triggering_asset_events(run.id).await?.0)
                } else {
                    serde_json::json!({})
                };
                let renderer = Renderer::new(RenderInput {
                    dag,
                    task_id: &task.task_id,
                    run,
                    map_index: -1,
                    item: None,
                    try_number: 0,
                    xcoms: &xcoms,
                    settings: &self.settings,
                    db_variables: &db_variables,
                    triggering_asset_events: Some(&events),
                });
                renderer.render_list(text).map_err(|e| e.to_string())
            }
            None => Ok(Vec::new()),
        };
        let now = self.clock.now();
        match model::expansion(items) {
            Expansion::Map(items) => {
                self.store.expand_mapped(placeholder, &NewTi::for_task(task), &items, now).await?
            }
            Expansion::Move(d) => {
                let note = d.why.note();
                let (id, from) = (placeholder.id, placeholder.state);
                self.store.apply_ti_updates(&[TiUpdate { id, from, to: d.to, note }], now).await?;
            }
        }
        Ok(())
    }
}
