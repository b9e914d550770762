//! Backfills from the API, the pages and the CLI: plan a date range (`model::backfill` decides
//! each date), create the backfill with its new runs, run existing ones again by its
//! `reprocess` policy, pause, unpause and cancel it. Every change is audited.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::runs::{MAX_BACKFILL_RUNS, RunVersion, check_run_id, clear_run};
use super::{ActionError, Actor, Audit, Result, audit};
use crate::dag::params::check_conf;
use crate::dag::{Dag, DagCache};
use crate::model::backfill::{BackfillStep, step};
use crate::model::{Reprocess, RunType};
use crate::store::{BackfillRow, NewBackfill, NewRun, RunFilter, RunRow, Store, StoreError};

/// `max_active_runs` of a backfill, at most.
pub const MAX_BACKFILL_ACTIVE: i64 = 1_000;

/// What a user asks a backfill for.
#[derive(Debug, Clone, Default)]
pub struct BackfillRequest {
    /// First logical date (included).
    pub from: DateTime<Utc>,
    /// Last logical date (included).
    pub to: DateTime<Utc>,
    /// Which existing runs run again.
    pub reprocess: Reprocess,
    /// Its runs running at once, at most (the DAG's `max_active_runs` when None).
    pub max_active_runs: Option<i64>,
    /// The conf of the runs it creates (checked against the DAG's params).
    pub conf: Map<String, Value>,
    /// Only say what it would do.
    pub dry_run: bool,
}

/// One logical date of the range and what the backfill does (or would do) with it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDate {
    /// The logical date (the start of the interval).
    pub logical_date: DateTime<Utc>,
    /// What happens to it.
    pub step: BackfillStep,
    /// The run it creates, or the existing one it runs again or leaves alone.
    pub run_id: String,
}

/// A backfill's plan, and the backfill when it was created (not for a dry run).
#[derive(Debug, Clone)]
pub struct BackfillOutcome {
    /// Every date of the range, oldest first.
    pub dates: Vec<PlannedDate>,
    /// The backfill as created; None for a dry run.
    pub backfill: Option<BackfillRow>,
}

/// Plans a backfill of `dag` and, unless it is a dry run, creates it: its new runs in one
/// transaction, then each existing run it runs again is cleared (failed instances only with
/// `reprocess: failed`) and counted as its own. A DAG without a schedule is a conflict; a
/// range holding no interval (`from` after `to` included) plans nothing and creates nothing.
pub async fn create_backfill(
    store: &Store,
    dags: &DagCache,
    actor: &Actor,
    dag: &Dag,
    req: BackfillRequest,
) -> Result<BackfillOutcome> {
    if !dag.schedule.is_scheduled() {
        let msg = format!("DAG `{}` has no schedule: nothing to backfill", dag.dag_id);
        return Err(ActionError::Conflict(msg));
    }
    let max_active_runs = req.max_active_runs.unwrap_or(i64::from(dag.max_active_runs));
    if !(1..=MAX_BACKFILL_ACTIVE).contains(&max_active_runs) {
        return Err(ActionError::Invalid(format!(
            "max_active_runs {max_active_runs}: use 1 to {MAX_BACKFILL_ACTIVE}"
        )));
    }
    let conf = check_conf(&dag.param_specs, req.conf)?;
    let intervals = dag.schedule.intervals_between(req.from, req.to);
    if intervals.len() > MAX_BACKFILL_RUNS {
        return Err(ActionError::Invalid(format!(
            "{} runs: at most {MAX_BACKFILL_RUNS} per backfill; split the range",
            intervals.len()
        )));
    }
    // The range's existing runs in one read, the newest for a date (as
    // `find_run_by_logical_date` picks): a large range must not cost a query per date.
    let mut by_date: HashMap<DateTime<Utc>, RunRow> = HashMap::new();
    let mut complete = true;
    if let (Some(first), Some(last)) = (intervals.first(), intervals.last()) {
        let f = RunFilter {
            dag_id: Some(dag.dag_id.clone()),
            from: Some(first.start),
            to: Some(last.start),
            ..RunFilter::default()
        };
        // Newest first (by id): the first row seen for a date is its newest run.
        let limit = i64::try_from(MAX_BACKFILL_RUNS * 4).unwrap_or(i64::MAX);
        let runs = store.browse_runs(&f, None, limit).await?;
        // More runs in the range than read (many manual ones): the dates not found are
        // looked up one by one.
        complete = (runs.len() as i64) < limit;
        for run in runs {
            by_date.entry(run.logical_date).or_insert(run);
        }
    }
    let mut dates = Vec::with_capacity(intervals.len());
    let (mut new_runs, mut again) = (Vec::new(), Vec::new());
    for i in &intervals {
        let existing = match by_date.remove(&i.start) {
            None if !complete => store.find_run_by_logical_date(&dag.dag_id, i.start).await?,
            found => found,
        };
        let decided = step(existing.as_ref().map(|r| r.state), req.reprocess);
        let run_id = match &existing {
            Some(r) => r.run_id.clone(),
            None => NewRun::default_run_id(RunType::Backfill, i.start),
        };
        match (decided, existing) {
            (BackfillStep::Create, _) => {
                check_run_id(&run_id)?;
                new_runs.push(NewRun {
                    dag_id: dag.dag_id.clone(),
                    run_id: run_id.clone(),
                    run_type: RunType::Backfill,
                    logical_date: i.start,
                    data_interval_start: i.start,
                    data_interval_end: i.end,
                    conf: conf.clone(),
                    triggered_by: actor.triggered_by(),
                    deadlines: Vec::new(),
                });
            }
            (BackfillStep::Reprocess { only_failed }, Some(run)) => again.push((run, only_failed)),
            _ => {}
        }
        dates.push(PlannedDate { logical_date: i.start, step: decided, run_id });
    }
    // A range in which no interval starts (or that ends before it starts) has nothing to do:
    // the empty plan says so, and no backfill is created.
    if req.dry_run || dates.is_empty() {
        return Ok(BackfillOutcome { dates, backfill: None });
    }
    let new = NewBackfill {
        dag_id: dag.dag_id.clone(),
        from: req.from,
        to: req.to,
        reprocess: req.reprocess,
        max_active_runs,
        conf,
        created_by: Some(actor.name().to_string()),
    };
    let (id, created) = store.create_backfill(&new, &new_runs, Utc::now()).await?;
    let mut rerun = 0;
    for (run, only_failed) in again {
        store.attach_to_backfill(run.id, id).await?;
        match clear_run(store, dags, actor, &run, only_failed, RunVersion::Pinned).await {
            Ok(_) => rerun += 1,
            // It started or was changed meanwhile: left as it is.
            Err(ActionError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let extra = format!(
        "backfill {id}: {}..{}, reprocess {}, {created} run(s) created, {rerun} run again",
        req.from.to_rfc3339(),
        req.to.to_rfc3339(),
        req.reprocess
    );
    audit(store, actor, Audit::new("backfill").dag(&dag.dag_id).extra(extra)).await?;
    Ok(BackfillOutcome { dates, backfill: Some(store.get_backfill(id).await?) })
}

/// A backfill by id, or a 404 naming it.
pub async fn find_backfill(store: &Store, id: i64) -> Result<BackfillRow> {
    store.get_backfill(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ActionError::NotFound(format!("no backfill {id}")),
        other => other.into(),
    })
}

/// Pauses (none of its queued runs starts) or unpauses a backfill; a cancelled one cannot.
pub async fn pause_backfill(
    store: &Store,
    actor: &Actor,
    id: i64,
    paused: bool,
) -> Result<BackfillRow> {
    let b = find_backfill(store, id).await?;
    if !store.set_backfill_paused(id, paused).await? {
        return Err(ActionError::Conflict(format!("backfill {id} is cancelled")));
    }
    let event = if paused { "backfill_paused" } else { "backfill_unpaused" };
    audit(store, actor, Audit::new(event).dag(&b.dag_id).extra(format!("backfill {id}"))).await?;
    find_backfill(store, id).await
}

/// Cancels a backfill: its queued runs fail and none starts again; running ones run on.
pub async fn cancel_backfill(store: &Store, actor: &Actor, id: i64) -> Result<BackfillRow> {
    let b = find_backfill(store, id).await?;
    let Some(failed) = store.cancel_backfill(id, Utc::now()).await? else {
        return Err(ActionError::Conflict(format!("backfill {id} is cancelled already")));
    };
    let extra = format!("backfill {id}: {failed} queued run(s) failed");
    audit(store, actor, Audit::new("backfill_cancelled").dag(&b.dag_id).extra(extra)).await?;
    find_backfill(store, id).await
}
