//! Asset-triggered runs: a DAG scheduled on assets gets a run when `model::assets` says its
//! condition holds over the events it has not consumed; the run consumes them in the same
//! transaction (`Store::create_asset_run`).
//!
//! Invariant: decides nothing itself. Events committed by this process wake the scheduler at
//! once (`Store::asset_events_announced`); other processes' arrive through PostgreSQL's
//! `NOTIFY`, or at the latest with the next poll.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Scheduler, SchedulerError};
use crate::dag::Dag;
use crate::model::{self, RunType};
use crate::store::{AssetQueue, NewRun, RunRow, StoreError};

/// Runs a DAG with `each_event` gets in one pass at most (the rest in the next).
const EACH_EVENT_RUNS: i64 = 500;

impl Scheduler {
    /// Creates a run for each asset-scheduled DAG whose condition is met, then starts what
    /// may start.
    pub(super) async fn create_asset_runs(&mut self) -> Result<(), SchedulerError> {
        // `dags test` runs one run and creates no other.
        if !self.opts.create_scheduled_runs {
            return Ok(());
        }
        let dags: Vec<_> = self
            .dags
            .all()
            .into_iter()
            .filter(|d| d.asset_schedule.is_some() && !self.paused.contains(&d.dag_id))
            .collect();
        if dags.is_empty() {
            return Ok(());
        }
        let queues = self.store.asset_queues().await?;
        let mut by_dag: HashMap<&str, Vec<&AssetQueue>> = HashMap::new();
        for q in &queues {
            by_dag.entry(q.dag_id.as_str()).or_default().push(q);
        }
        let mut created = false;
        for dag in dags {
            let (Some(schedule), Some(of_dag)) =
                (&dag.asset_schedule, by_dag.get(dag.dag_id.as_str()))
            else {
                continue;
            };
            let listened: Vec<&AssetQueue> =
                of_dag.iter().copied().filter(|q| schedule.uris().any(|u| u == q.uri)).collect();
            let counts: HashMap<&str, i64> =
                listened.iter().map(|q| (q.uri.as_str(), q.new_events)).collect();
            if !model::assets::schedule_met(schedule, &counts) {
                continue;
            }
            created |= if schedule.each_event {
                self.run_per_event(&dag, &listened).await?
            } else {
                // To the microsecond the store keeps, so the run id and the logical date agree.
                let now = crate::store::from_us(crate::store::to_us(self.clock.now()));
                let first = listened.iter().map(|q| q.first_at).min().unwrap_or(now);
                let last = listened.iter().map(|q| q.last_at).max().unwrap_or(now).max(first);
                let run = asset_run(
                    &dag,
                    NewRun::default_run_id(RunType::AssetTriggered, now),
                    now,
                    (first, last),
                );
                let events: i64 = listened.iter().map(|q| q.new_events).sum();
                self.created(self.store.create_asset_run(&run, &listened, now).await, events)?
            };
        }
        if created {
            self.start_queued_runs().await?;
        }
        Ok(())
    }
}

/// An asset-triggered run of `dag`, queued, for events recorded between `interval.0` and
/// `interval.1`.
fn asset_run(
    dag: &Dag,
    run_id: String,
    now: DateTime<Utc>,
    interval: (DateTime<Utc>, DateTime<Utc>),
) -> NewRun {
    NewRun {
        dag_id: dag.dag_id.clone(),
        run_id,
        run_type: RunType::AssetTriggered,
        logical_date: now,
        data_interval_start: interval.0,
        data_interval_end: interval.1,
        conf: serde_json::Map::new(),
        triggered_by: "assets".into(),
        deadlines: Vec::new(),
    }
    .with_deadlines(dag, now)
}

impl Scheduler {
    /// One run per waiting event (oldest first, up to [`EACH_EVENT_RUNS`] a pass), each
    /// consuming exactly its event. Its logical date is the event's time.
    async fn run_per_event(
        &mut self,
        dag: &Dag,
        listened: &[&AssetQueue],
    ) -> Result<bool, SchedulerError> {
        let mut created = false;
        for q in listened {
            let mut consumed = q.consumed_id;
            for (id, at) in self.store.events_after(&q.uri, q.consumed_id, EACH_EVENT_RUNS).await? {
                let one = AssetQueue {
                    consumed_id: consumed,
                    last_id: id,
                    new_events: 1,
                    first_at: at,
                    last_at: at,
                    ..(*q).clone()
                };
                let run_id =
                    format!("{}__event_{id}", NewRun::default_run_id(RunType::AssetTriggered, at));
                let run = asset_run(dag, run_id, at, (at, at));
                let now = self.clock.now();
                let done = self.store.create_asset_run(&run, &[&one], now).await;
                let made = matches!(done, Ok(Some(_)));
                created |= self.created(done, 1)?;
                if !made {
                    // Another scheduler moved the cursor: the next pass reads it again.
                    break;
                }
                consumed = id;
            }
        }
        Ok(created)
    }

    /// Logs a created run; false when another scheduler consumed the events first.
    fn created(
        &self,
        done: Result<Option<RunRow>, StoreError>,
        events: i64,
    ) -> Result<bool, SchedulerError> {
        match done {
            Ok(Some(r)) => {
                tracing::info!(dag_id = %r.dag_id, run_id = %r.run_id, events, "asset-triggered run created");
                Ok(true)
            }
            // Another scheduler consumed the events, or took the run id, first.
            Ok(None) | Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
