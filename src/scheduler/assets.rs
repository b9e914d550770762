//! Asset-triggered runs: a DAG scheduled on assets gets a run when `model::assets` says its
//! condition holds over the events it has not consumed; the run consumes them in the same
//! transaction (`Store::create_asset_run`).
//!
//! Invariant: decides nothing itself. Events committed by this process wake the scheduler at
//! once (`Store::asset_events_announced`); other processes' arrive through PostgreSQL's
//! `NOTIFY`, or at the latest with the next poll.

use std::collections::HashMap;

use super::{Scheduler, SchedulerError};
use crate::model::{self, RunType};
use crate::store::{AssetQueue, NewRun, StoreError};

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
            // To the microsecond the store keeps, so the run id and the logical date agree.
            let now = crate::store::from_us(crate::store::to_us(self.clock.now()));
            let first = listened.iter().map(|q| q.first_at).min().unwrap_or(now);
            let last = listened.iter().map(|q| q.last_at).max().unwrap_or(now).max(first);
            let run = NewRun {
                dag_id: dag.dag_id.clone(),
                run_id: NewRun::default_run_id(RunType::AssetTriggered, now),
                run_type: RunType::AssetTriggered,
                logical_date: now,
                data_interval_start: first,
                data_interval_end: last,
                conf: serde_json::Map::new(),
                triggered_by: "assets".into(),
            };
            match self.store.create_asset_run(&run, &listened, now).await {
                Ok(Some(r)) => {
                    let events: i64 = listened.iter().map(|q| q.new_events).sum();
                    tracing::info!(dag_id = %r.dag_id, run_id = %r.run_id, events, "asset-triggered run created");
                    created = true;
                }
                // Another scheduler consumed the events, or took the run id, first.
                Ok(None) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if created {
            self.start_queued_runs().await?;
        }
        Ok(())
    }
}
