//! Run-level scheduling: creating scheduled runs, starting queued runs, and examining a running
//! run's task instances against their trigger rules.

use std::collections::HashMap;

use super::{Scheduler, SchedulerError};
use crate::dag::{Dag, Foreach, Task};
use crate::model::{self, DagRunState, Readiness, RunType, TaskState, UpstreamCounts};
use crate::operators::template::{RenderInput, Renderer};
use crate::store::{NewRun, NewTi, RunRow, StoreError, TiRow, TiUpdate};

/// The task instance row a task starts as (mapped tasks start as one placeholder, -1).
pub fn new_ti(task: &Task) -> NewTi {
    NewTi {
        task_id: task.task_id.clone(),
        map_index: -1,
        map_item: None,
        operator: task.kind.type_name().to_string(),
        pool: task.pool.clone(),
        pool_slots: i64::from(task.pool_slots),
        priority_weight: i64::from(task.priority_weight),
        queue: task.queue.clone(),
        max_tries: i64::from(task.retries) + 1,
    }
}

/// Task instance counts of one run, per task and state.
type Counts = HashMap<String, HashMap<TaskState, i64>>;

fn upstream_counts(dag: &Dag, task_id: &str, counts: &Counts) -> UpstreamCounts {
    let mut c = UpstreamCounts::default();
    for up in dag.graph.upstream(task_id) {
        for (state, n) in counts.get(up).into_iter().flatten() {
            c.add_n(*state, (*n).max(0) as usize);
        }
    }
    c
}

fn shift(counts: &mut Counts, task_id: &str, from: TaskState, to: TaskState) {
    let per_task = counts.entry(task_id.to_string()).or_default();
    *per_task.entry(from).or_insert(0) -= 1;
    *per_task.entry(to).or_insert(0) += 1;
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
            let mut active = active_by_dag.get(&dag.dag_id).copied().unwrap_or(0);
            let mut last_created = last;
            let mut next;
            // Bounded by max_active_runs: each pass creates one run or stops.
            loop {
                next = dag.schedule.next_interval(
                    last_created,
                    dag.start_date,
                    dag.end_date,
                    dag.catchup,
                    now,
                );
                let Some(interval) = next.filter(|i| i.end <= now) else { break };
                if active >= i64::from(dag.max_active_runs) {
                    break;
                }
                let run = NewRun {
                    dag_id: dag.dag_id.clone(),
                    run_id: NewRun::default_run_id(RunType::Scheduled, interval.start),
                    run_type: RunType::Scheduled,
                    logical_date: interval.start,
                    data_interval_start: interval.start,
                    data_interval_end: interval.end,
                    conf: serde_json::Map::new(),
                    triggered_by: "scheduler".into(),
                };
                match self.store.create_run(&run, now).await {
                    Ok(_) => {
                        tracing::info!(dag_id = %dag.dag_id, run_id = %run.run_id, "scheduled run created")
                    }
                    // Another scheduler created it first.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                active += 1;
                last_created = Some(interval);
            }
            self.last_interval.insert(dag.dag_id.clone(), last_created);
            if self.next_dagrun.get(&dag.dag_id) != Some(&next) {
                self.store.set_next_dagrun(&dag.dag_id, next).await?;
                self.next_dagrun.insert(dag.dag_id.clone(), next);
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
        for run in queued {
            let Some(dag) = self.dags.cached(&run.dag_id) else { continue };
            if self.paused.contains(&dag.dag_id) {
                continue;
            }
            let n = running.entry(dag.dag_id.clone()).or_insert(0);
            if *n >= i64::from(dag.max_active_runs) {
                continue;
            }
            let tis: Vec<NewTi> = dag.tasks.values().map(new_ti).collect();
            if self.store.start_run(run.id, &tis, self.clock.now()).await? {
                *n += 1;
                tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, "run started");
                self.running.insert(run.id, run.dag_id.clone());
                self.dirty.insert(run.id);
            }
        }
        Ok(())
    }

    /// Examines one running run: moves ready task instances to scheduled, applies skips and
    /// upstream failures (cascading in topological order), expands mapped tasks, and finishes
    /// the run when every instance is finished.
    pub(super) async fn schedule_run(&mut self, run_pk: i64) -> Result<(), SchedulerError> {
        let dag_id = match self.running.get(&run_pk) {
            Some(id) => id.clone(),
            None => {
                let run = self.store.get_run(run_pk).await?;
                if run.state != DagRunState::Running {
                    return Ok(());
                }
                self.running.insert(run_pk, run.dag_id.clone());
                run.dag_id
            }
        };
        // A DAG this scheduler does not know (file removed or broken): leave its runs alone.
        let Some(dag) = self.dags.cached(&dag_id) else { return Ok(()) };
        let now = self.clock.now();
        let mut counts: Counts = HashMap::new();
        for (task_id, state, n) in self.store.run_state_counts(run_pk).await? {
            counts.entry(task_id).or_default().insert(state, n);
        }
        let pending = self.store.run_pending_tis(run_pk).await?;
        let mut by_task: HashMap<&str, Vec<&TiRow>> = HashMap::new();
        for ti in &pending {
            by_task.entry(ti.task_id.as_str()).or_default().push(ti);
        }
        let mut updates = Vec::new();
        let mut expand = Vec::new();
        for ti in pending.iter().filter(|ti| !dag.tasks.contains_key(&ti.task_id)) {
            let note = Some("the task is no longer in the DAG".to_string());
            updates.push(TiUpdate { id: ti.id, from: ti.state, to: TaskState::Removed, note });
            shift(&mut counts, &ti.task_id, ti.state, TaskState::Removed);
        }
        for task_id in dag.graph.topo_order() {
            let Some(tis) = by_task.get(task_id.as_str()) else { continue };
            let task = &dag.tasks[task_id];
            for ti in tis {
                let to = match ti.state {
                    TaskState::UpForRetry | TaskState::UpForReschedule => {
                        if ti.next_try_at.is_some_and(|t| t > now) {
                            continue;
                        }
                        (TaskState::Scheduled, None)
                    }
                    _ => match model::readiness(
                        task.trigger_rule,
                        &upstream_counts(&dag, task_id, &counts),
                    ) {
                        Readiness::Ready if task.foreach.is_some() && ti.map_index < 0 => {
                            expand.push((*ti).clone());
                            continue;
                        }
                        Readiness::Ready => (TaskState::Scheduled, None),
                        Readiness::Wait(_) => continue,
                        Readiness::Skip(why) => (TaskState::Skipped, Some(why)),
                        Readiness::UpstreamFailed(why) => (TaskState::UpstreamFailed, Some(why)),
                    },
                };
                updates.push(TiUpdate { id: ti.id, from: ti.state, to: to.0, note: to.1 });
                shift(&mut counts, task_id, ti.state, to.0);
            }
        }
        self.store.apply_ti_updates(&updates, now).await?;
        self.queue_wanted |= updates.iter().any(|u| u.to == TaskState::Scheduled);
        if !expand.is_empty() {
            let run = self.store.get_run(run_pk).await?;
            for placeholder in expand {
                self.expand(&dag, &run, &placeholder).await?;
            }
            self.dirty.insert(run_pk);
            return Ok(());
        }
        self.finish_run_if_done(&dag, run_pk, &counts).await
    }

    async fn finish_run_if_done(
        &mut self,
        dag: &Dag,
        run_pk: i64,
        counts: &Counts,
    ) -> Result<(), SchedulerError> {
        let present = |(s, n): (&TaskState, &i64)| (*n > 0).then_some(*s);
        let all: Vec<TaskState> =
            counts.values().flat_map(|m| m.iter().filter_map(present)).collect();
        let leaves: Vec<TaskState> = dag
            .graph
            .leaves()
            .iter()
            .filter_map(|t| counts.get(t))
            .flat_map(|m| m.iter().filter_map(present))
            .collect();
        let state = model::run_state(&all, &leaves);
        if state.is_finished()
            && self
                .store
                .set_run_state(run_pk, DagRunState::Running, state, self.clock.now())
                .await?
        {
            tracing::info!(dag_id = %dag.dag_id, run_pk, state = %state, "run finished");
            self.running.remove(&run_pk);
            if self.opts.exit_after_run == Some(run_pk) {
                self.finished_target = true;
            }
        }
        Ok(())
    }

    /// Replaces a mapped task's placeholder by one instance per item. A `foreach` template
    /// that fails to render or is not a list fails the placeholder with the reason.
    async fn expand(
        &mut self,
        dag: &Dag,
        run: &RunRow,
        placeholder: &TiRow,
    ) -> Result<(), SchedulerError> {
        let task = &dag.tasks[&placeholder.task_id];
        let items = match &task.foreach {
            Some(Foreach::List(items)) => Ok(items.clone()),
            Some(Foreach::Template(text)) => {
                let xcoms = self.store.run_xcoms(run.id).await?;
                let db_variables = self.store.list_variables().await?;
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
                });
                renderer.render_list(text).map_err(|e| e.to_string())
            }
            None => Ok(Vec::new()),
        };
        let now = self.clock.now();
        match items {
            Ok(items) => self.store.expand_mapped(placeholder, &new_ti(task), &items, now).await?,
            Err(why) => {
                let note = Some(format!("foreach could not be expanded: {why}"));
                let fail = TiUpdate {
                    id: placeholder.id,
                    from: TaskState::None,
                    to: TaskState::Failed,
                    note,
                };
                self.store.apply_ti_updates(&[fail], now).await?;
            }
        }
        Ok(())
    }
}
