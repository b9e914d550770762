//! Runs and task instances: trigger, backfill, pause, clear, mark, and the lookups they share.
//!
//! Invariants: every run created here passed [`check_run_id`] and had its conf checked by
//! `dag::params` — whichever door it came through (API, form, CLI trigger, backfill, `dags
//! test`). A trigger only writes a queued run; the scheduler starts it. Which instances may be
//! cleared or marked, and what that writes, is `model::user_change`'s decision.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{ActionError, Actor, Audit, Result, audit};
use crate::dag::params::{check_conf, form_conf};
use crate::dag::{Dag, DagCache};
use crate::model::run_id::{RUN_ID_RULE, run_id_problem};
use crate::model::{ClearScope, DagRunState, RunType, TaskState, user_change};
use crate::store::{DagRecord, NewRun, NewTi, NoteOn, RunRow, Store, StoreError, TiChange, TiRow};

pub use crate::model::run_id::MAX_RUN_ID;

/// Most runs one backfill creates: past this the range is refused rather than flooding the
/// scheduler (split it).
pub const MAX_BACKFILL_RUNS: usize = 10_000;

/// Refuses run ids that could not safely name a folder or be told apart: empty, longer than
/// [`MAX_RUN_ID`] characters, `.` or `..`, containing `/`, `\` or a control character, or
/// starting or ending with white space.
pub fn check_run_id(id: &str) -> Result<()> {
    match run_id_problem(id) {
        None => Ok(()),
        Some(why) => {
            let shown: String = id.chars().take(60).flat_map(char::escape_default).collect();
            Err(ActionError::Invalid(format!("run id `{shown}` {why}: {RUN_ID_RULE}")))
        }
    }
}

/// Refuses ids that could climb out of a directory once joined to a path, before any file is
/// read (log pages). Log paths are built safely anyway (`operators::log_path`); this answers
/// a clear 400 instead of a confusing 404.
pub fn check_ids(ids: &[&str]) -> Result<()> {
    for id in ids {
        if id.is_empty() || id.contains(['/', '\\', '\0']) || id.contains("..") || *id == "." {
            return Err(ActionError::Invalid(format!(
                "invalid id `{}`: ids contain no `/`, `\\`, `..` or NUL and are not `.`",
                id.replace('\0', "\\0")
            )));
        }
    }
    Ok(())
}

/// Where a trigger's conf comes from, which decides how its values are read.
#[derive(Debug, Clone)]
pub enum ConfInput {
    /// A JSON object (API, CLI): values are taken as typed, never converted.
    Json(Map<String, Value>),
    /// A trigger form: `typed` is the text of each param's own field (converted by the param's
    /// type), `extra` the free JSON object, which may add only undeclared keys.
    Form {
        /// (param name, field text).
        typed: Vec<(String, String)>,
        /// The free JSON object.
        extra: Map<String, Value>,
    },
}

/// A manual run to create.
#[derive(Debug, Clone)]
pub struct TriggerRequest {
    /// The params given.
    pub conf: ConfInput,
    /// The run id; `manual__<now>` when None.
    pub run_id: Option<String>,
    /// The logical date; now when None.
    pub logical_date: Option<DateTime<Utc>>,
}

/// The DAG `dag_id` as the scheduler last recorded it, parsed from its stored source through
/// `dags` (parsed once per version of the source).
pub async fn stored_dag(
    store: &Store,
    dags: &DagCache,
    dag_id: &str,
) -> Result<(DagRecord, Arc<Dag>)> {
    let rec = store.get_dag(dag_id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ActionError::NotFound(format!("no DAG `{dag_id}`")),
        other => other.into(),
    })?;
    let dag = dags.parse(dag_id, Path::new(&rec.fileloc), &rec.source).map_err(|errs| {
        let first = errs.first().map(|e| e.to_string()).unwrap_or_default();
        ActionError::Internal(format!("stored source of `{dag_id}` no longer parses: {first}"))
    })?;
    Ok((rec, dag))
}

/// [`stored_dag`], refused when its file is gone or broken (nothing of it can run).
pub async fn active_dag(store: &Store, dags: &DagCache, dag_id: &str) -> Result<Arc<Dag>> {
    let (rec, dag) = stored_dag(store, dags, dag_id).await?;
    if !rec.is_active {
        return Err(ActionError::Conflict(format!(
            "DAG `{dag_id}` is not active (its file is gone or broken)"
        )));
    }
    Ok(dag)
}

/// Creates a manual run of `dag` in state queued, after checking its run id and its conf
/// against the DAG's params; the scheduler starts it.
pub async fn trigger(
    store: &Store,
    actor: &Actor,
    dag: &Dag,
    req: TriggerRequest,
) -> Result<RunRow> {
    let now = Utc::now();
    if let Some(r) = &req.run_id {
        check_run_id(r)?;
    }
    let conf = match req.conf {
        ConfInput::Json(conf) => check_conf(&dag.param_specs, conf)?,
        ConfInput::Form { typed, extra } => form_conf(&dag.param_specs, &typed, extra)?,
    };
    let logical = req.logical_date.unwrap_or(now);
    let run = NewRun {
        dag_id: dag.dag_id.clone(),
        run_id: req.run_id.unwrap_or_else(|| NewRun::default_run_id(RunType::Manual, now)),
        run_type: RunType::Manual,
        logical_date: logical,
        data_interval_start: logical,
        data_interval_end: logical,
        conf,
        triggered_by: actor.triggered_by(),
        deadlines: Vec::new(),
    }
    .with_deadlines(dag, now);
    let row = store.create_run(&run, now).await.map_err(|e| match e {
        StoreError::Conflict(_) => ActionError::Conflict(format!(
            "a run `{}` of `{}` already exists",
            run.run_id, run.dag_id
        )),
        other => other.into(),
    })?;
    audit(store, actor, Audit::new("trigger").dag(&row.dag_id).run(&row.run_id)).await?;
    Ok(row)
}

/// Backfills `dag` over `from..=to` without running existing runs again (the CLI's
/// `dags backfill`): a backfill like the API's, with the DAG's `max_active_runs`. Returns
/// (created, already existing).
pub async fn backfill(
    store: &Store,
    dags: &DagCache,
    actor: &Actor,
    dag: &Dag,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    conf: Map<String, Value>,
) -> Result<(u64, u64)> {
    let req = super::backfills::BackfillRequest { from, to, conf, ..Default::default() };
    let done = super::backfills::create_backfill(store, dags, actor, dag, req).await?;
    let created = done.dates.iter().filter(|d| d.step == crate::model::BackfillStep::Create);
    let created = created.count() as u64;
    Ok((created, done.dates.len() as u64 - created))
}

/// Pauses or unpauses a DAG the store knows.
pub async fn set_paused(store: &Store, actor: &Actor, dag_id: &str, paused: bool) -> Result<()> {
    let not_found = |e| match e {
        StoreError::NotFound(_) => ActionError::NotFound(format!(
            "no DAG `{dag_id}` in the database (a scheduler records a DAG once it reads its file)"
        )),
        other => ActionError::from(other),
    };
    store.get_dag(dag_id).await.map_err(not_found)?;
    store.set_paused(dag_id, paused).await.map_err(not_found)?;
    let event = if paused { "pause" } else { "unpause" };
    audit(store, actor, Audit::new(event).dag(dag_id)).await
}

/// The run `run_id` of `dag_id`, or NotFound naming both.
pub async fn find_run(store: &Store, dag_id: &str, run_id: &str) -> Result<RunRow> {
    store
        .find_run(dag_id, run_id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("no run `{run_id}` of DAG `{dag_id}`")))
}

fn ti_name(task_id: &str, map_index: Option<i64>) -> String {
    match map_index {
        Some(m) if m >= 0 => format!("{task_id}[{m}]"),
        _ => task_id.to_string(),
    }
}

/// The task instance (`task_id`, `map_index`) of a run, or NotFound naming it.
pub async fn find_ti(store: &Store, run: &RunRow, task_id: &str, map_index: i64) -> Result<TiRow> {
    store.find_ti(run.id, task_id, map_index).await?.ok_or_else(|| {
        ActionError::NotFound(format!(
            "no task instance `{}` in run `{}`",
            ti_name(task_id, Some(map_index)),
            run.run_id
        ))
    })
}

/// Clears a task instance (every map index of its task when `map_index` is None) and, with
/// `downstream`, every instance of every task downstream of it. NotFound when no instance has
/// that task and map index; Conflict when every one picked is still queued (left
/// alone). Returns the number cleared.
pub async fn clear(
    store: &Store,
    dags: &DagCache,
    actor: &Actor,
    run: &RunRow,
    task_id: &str,
    map_index: Option<i64>,
    downstream: bool,
) -> Result<u64> {
    let (_, dag) = stored_dag(store, dags, &run.dag_id).await?;
    if !dag.tasks.contains_key(task_id) {
        return Err(ActionError::NotFound(format!("no task `{task_id}` in DAG `{}`", run.dag_id)));
    }
    let downstream = if downstream { dag.graph.all_downstream(task_id) } else { Vec::new() };
    let scope = ClearScope { task_id, map_index, downstream: &downstream };
    let tis = store.run_tis(run.id).await?;
    if !tis.iter().any(|ti| scope.targets(&ti.task_id, ti.map_index)) {
        return Err(ActionError::NotFound(format!(
            "no task instance `{}` in run `{}`",
            ti_name(task_id, map_index),
            run.run_id
        )));
    }
    let picked =
        clear_writes(&dag, tis.iter().filter(|ti| scope.touches(&ti.task_id, ti.map_index)));
    if picked.is_empty() {
        return Err(ActionError::Conflict(
            "nothing to clear: the task instances are queued (about to run)".into(),
        ));
    }
    let note = format!("cleared by {}", actor.name());
    let n = store.change_tis(run.id, &picked, &note, Utc::now()).await?;
    let with = if downstream.is_empty() { "" } else { " with downstream" };
    let extra = format!("{n} task instance(s){with}");
    let entry = Audit::new("clear").dag(&run.dag_id).run(&run.run_id).task(task_id, map_index);
    audit(store, actor, entry.extra(extra)).await?;
    Ok(n)
}

/// What clearing each of `tis` writes, as `model::user_change::clear` decides with its task's
/// retries; instances that may not be cleared now (queued) are left out.
fn clear_writes<'a>(dag: &Dag, tis: impl Iterator<Item = &'a TiRow>) -> Vec<TiChange> {
    tis.filter_map(|ti| {
        let retries = dag.tasks.get(&ti.task_id).map(|t| t.retries).unwrap_or(0);
        let write = user_change::clear(ti.state, ti.try_number, retries)?;
        Some(TiChange { id: ti.id, from: ti.state, write })
    })
    .collect()
}

/// Clears a whole run: every instance, or with `only_failed` the failed and upstream-failed
/// ones (`model::user_change::run_clear_picks`); queued instances are left alone. Conflict
/// when nothing could be picked. Returns the number cleared.
pub async fn clear_run(
    store: &Store,
    dags: &DagCache,
    actor: &Actor,
    run: &RunRow,
    only_failed: bool,
    version: RunVersion,
) -> Result<u64> {
    let (_, dag) = stored_dag(store, dags, &run.dag_id).await?;
    let tis = store.run_tis(run.id).await?;
    let picked = clear_writes(
        &dag,
        tis.iter().filter(|ti| user_change::run_clear_picks(ti.state, only_failed)),
    );
    // On the latest version: the run moves to the DAG as it is now, with an instance of each
    // task it gained.
    let moves = version == RunVersion::Latest && run.dag_version.as_deref() != Some(&dag.version);
    let add: Vec<NewTi> = if moves {
        let has: std::collections::HashSet<&str> = tis.iter().map(|t| t.task_id.as_str()).collect();
        dag.graph
            .topo_order()
            .iter()
            .filter(|t| !has.contains(t.as_str()))
            .map(|t| NewTi::for_task(&dag.tasks[t]))
            .collect()
    } else {
        Vec::new()
    };
    if picked.is_empty() && add.is_empty() {
        let what = if only_failed { "no failed task instance" } else { "every instance is queued" };
        return Err(ActionError::Conflict(format!(
            "nothing to clear in run `{}`: {what}",
            run.run_id
        )));
    }
    let note = format!("cleared by {}", actor.name());
    let now = Utc::now();
    let n = if moves {
        store.change_tis_on_version(run.id, &picked, &note, &dag, &add, now).await?
    } else {
        store.change_tis(run.id, &picked, &note, now).await?
    };
    let scope = if only_failed { "failed only" } else { "all" };
    let mut extra = format!("{n} task instance(s), {scope}");
    if moves {
        let short: String = dag.version.chars().take(12).collect();
        extra.push_str(&format!(", on the latest version {short} (+{} task(s))", add.len()));
    }
    let entry = Audit::new("clear_run").dag(&run.dag_id).run(&run.run_id);
    audit(store, actor, entry.extra(extra)).await?;
    Ok(n)
}

/// Which version of its DAG a cleared run runs: the one it is pinned to (what it started
/// with), or the DAG as it is now (Airflow's `run_on_latest_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunVersion {
    /// The version the run is pinned to.
    #[default]
    Pinned,
    /// The DAG's current version; the run is pinned to it from then on.
    Latest,
}

/// Marks a task instance success or failed.
pub async fn mark(
    store: &Store,
    actor: &Actor,
    run: &RunRow,
    ti: &TiRow,
    to: TaskState,
) -> Result<()> {
    let Some(write) = user_change::mark(ti.state, to) else {
        return Err(ActionError::Conflict(format!(
            "cannot mark a task instance in state {} as {to}: only success or failed, and not the state it has",
            ti.state
        )));
    };
    let now = Utc::now();
    let when = now.format("%Y-%m-%d %H:%M:%S UTC");
    let note = format!("marked {to} by {} at {when}", actor.name());
    let change = TiChange { id: ti.id, from: ti.state, write };
    let applied = store.change_tis(run.id, &[change], &note, now).await?;
    if applied == 0 {
        return Err(ActionError::Conflict(
            "the task instance changed state meanwhile: reload and try again".into(),
        ));
    }
    let entry = Audit::new("mark").dag(&run.dag_id).run(&run.run_id);
    let entry = entry.task(&ti.task_id, Some(ti.map_index)).extra(format!("{} -> {to}", ti.state));
    audit(store, actor, entry).await
}

/// Most characters of a note on a run or a task instance.
pub const MAX_NOTE: usize = 1000;

/// Marks a whole run success or failed: its unfinished instances are decided as
/// `model::user_change::run_mark` says (running tries stopped first) and the run takes the
/// state at once. Conflict when the mark is not allowed or the run changed meanwhile.
/// Returns how many instances it changed. A run that was running gets its OpenLineage ABORT
/// through `lineage`.
pub async fn mark_run(
    store: &Store,
    lineage: &crate::lineage::Lineage,
    actor: &Actor,
    run: &RunRow,
    to: DagRunState,
) -> Result<usize> {
    if !user_change::can_mark_run(run.state, to) {
        return Err(ActionError::Conflict(format!(
            "cannot mark run `{}` {to}: it is {} (a run is marked success or failed, not the state it has)",
            run.run_id, run.state
        )));
    }
    let tis = store.run_tis(run.id).await?;
    let changes: Vec<TiChange> = tis
        .iter()
        .filter_map(|ti| {
            let write = user_change::run_mark(ti.state, to)?;
            Some(TiChange { id: ti.id, from: ti.state, write })
        })
        .collect();
    let now = Utc::now();
    let when = now.format("%Y-%m-%d %H:%M:%S UTC");
    let note = format!("run marked {to} by {} at {when}", actor.name());
    if !store.mark_run(run.id, run.state, to, &changes, &note, now).await? {
        return Err(ActionError::Conflict(format!(
            "run `{}` changed state meanwhile: reload and try again",
            run.run_id
        )));
    }
    lineage.run_aborted(run, to);
    let extra = format!("{} -> {to}, {} task instance(s)", run.state, changes.len());
    audit(store, actor, Audit::new("mark_run").dag(&run.dag_id).run(&run.run_id).extra(extra))
        .await?;
    Ok(changes.len())
}

/// Deletes a run with its task instances, tries, XComs and log files. Conflict while one of
/// its instances is queued or running: mark the run failed first, which stops them.
pub async fn delete_run(store: &Store, log_dir: &Path, actor: &Actor, run: &RunRow) -> Result<()> {
    check_ids(&[&run.dag_id, &run.run_id])?;
    if !store.delete_run(run.id).await? {
        return Err(ActionError::Conflict(format!(
            "run `{}` has queued or running task instances: mark it failed first (that stops them), then delete it",
            run.run_id
        )));
    }
    // The logs go too, so a new run with the same id does not append to the old files.
    let dir = crate::operators::log_path::run_dir(log_dir, &run.dag_id, &run.run_id);
    if let (Ok(root), Ok(real)) = (std::fs::canonicalize(log_dir), std::fs::canonicalize(&dir))
        && real.starts_with(&root)
        && real != root
        && let Err(e) = std::fs::remove_dir_all(&real)
    {
        tracing::warn!(dir = %real.display(), error = %e, "cannot remove a deleted run's logs");
    }
    let entry = Audit::new("delete_run").dag(&run.dag_id).run(&run.run_id);
    audit(store, actor, entry.extra(format!("was {}", run.state))).await
}

/// A note as stored: trimmed, None when empty; Invalid past [`MAX_NOTE`] characters.
fn note_text(note: &str) -> Result<Option<&str>> {
    let note = note.trim();
    if note.chars().count() > MAX_NOTE {
        return Err(ActionError::Invalid(format!(
            "note: {} characters, at most {MAX_NOTE}",
            note.chars().count()
        )));
    }
    Ok(Some(note).filter(|n| !n.is_empty()))
}

/// Sets the note on a run, or on one of its task instances (`ti`); an empty note removes it.
pub async fn set_note(
    store: &Store,
    actor: &Actor,
    run: &RunRow,
    ti: Option<&TiRow>,
    note: &str,
) -> Result<()> {
    let text = note_text(note)?;
    let entry = Audit::new("set_note").dag(&run.dag_id).run(&run.run_id);
    let entry = match ti {
        Some(ti) => {
            store.set_note(NoteOn::Ti(ti.id), text).await?;
            entry.task(&ti.task_id, Some(ti.map_index))
        }
        None => {
            store.set_note(NoteOn::Run(run.id), text).await?;
            entry
        }
    };
    let extra = match text {
        Some(t) => format!("{} character(s)", t.chars().count()),
        None => "removed".to_string(),
    };
    audit(store, actor, entry.extra(extra)).await
}

/// An action on many runs at once (the runs lists' check boxes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    ClearFailed,
    ClearAll,
    MarkSuccess,
    MarkFailed,
    Delete,
}

impl BulkAction {
    /// From the form's spelling.
    pub fn parse(text: &str) -> Result<BulkAction> {
        Ok(match text {
            "clear_failed" => BulkAction::ClearFailed,
            "clear" => BulkAction::ClearAll,
            "mark_success" => BulkAction::MarkSuccess,
            "mark_failed" => BulkAction::MarkFailed,
            "delete" => BulkAction::Delete,
            other => {
                return Err(ActionError::Invalid(format!(
                    "action `{other}`: one of clear_failed, clear, mark_success, mark_failed, delete"
                )));
            }
        })
    }

    /// What was done, for the message.
    fn done(self) -> &'static str {
        match self {
            BulkAction::ClearFailed => "cleared (failed only)",
            BulkAction::ClearAll => "cleared",
            BulkAction::MarkSuccess => "marked success",
            BulkAction::MarkFailed => "marked failed",
            BulkAction::Delete => "deleted",
        }
    }
}

/// Most runs one bulk action takes.
pub const MAX_BULK: usize = 500;

/// Applies `action` to each run named `(dag_id, run_id)`, one by one, each as its own action
/// (own checks, own audit entry): the message says how many it did and why the others were
/// refused. Invalid when nothing was picked or more than [`MAX_BULK`].
pub async fn bulk(
    store: &Store,
    dags: &DagCache,
    lineage: &crate::lineage::Lineage,
    log_dir: &Path,
    actor: &Actor,
    runs: &[(String, String)],
    action: BulkAction,
) -> Result<String> {
    if runs.is_empty() {
        return Err(ActionError::Invalid("no run picked: tick the runs to act on".into()));
    }
    if runs.len() > MAX_BULK {
        return Err(ActionError::Invalid(format!(
            "{} runs picked: at most {MAX_BULK} at once",
            runs.len()
        )));
    }
    let mut done = 0;
    let mut refused = Vec::new();
    for (dag_id, run_id) in runs {
        let result = async {
            let run = find_run(store, dag_id, run_id).await?;
            match action {
                BulkAction::ClearFailed => {
                    clear_run(store, dags, actor, &run, true, RunVersion::Pinned).await.map(drop)
                }
                BulkAction::ClearAll => {
                    clear_run(store, dags, actor, &run, false, RunVersion::Pinned).await.map(drop)
                }
                BulkAction::MarkSuccess => {
                    mark_run(store, lineage, actor, &run, DagRunState::Success).await.map(drop)
                }
                BulkAction::MarkFailed => {
                    mark_run(store, lineage, actor, &run, DagRunState::Failed).await.map(drop)
                }
                BulkAction::Delete => delete_run(store, log_dir, actor, &run).await,
            }
        }
        .await;
        match result {
            Ok(()) => done += 1,
            Err(ActionError::Internal(e)) => return Err(ActionError::Internal(e)),
            Err(e) => refused.push(format!("{dag_id} {run_id}: {e}")),
        }
    }
    Ok(bulk_message(format!("{done} run(s) {}", action.done()), &refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_that_could_leave_a_folder_are_refused() {
        let long = "x".repeat(MAX_RUN_ID + 1);
        let bad = [
            ("", "is empty"),
            (".", "cannot be `.` or `..`"),
            ("..", "cannot be `.` or `..`"),
            ("a/b", "contains `/`"),
            ("../x", "contains `/`"),
            ("a\\b", "contains `/` or `\\`"),
            ("a\nb", "control character"),
            ("a\u{7f}b", "control character"),
            ("a\0", "control character"),
            (" a", "white space"),
            ("a ", "white space"),
            ("a\u{a0}", "white space"),
            (long.as_str(), "longer than 250"),
        ];
        for (id, why) in bad {
            let e = check_run_id(id).expect_err(id).to_string();
            assert!(e.contains(why), "{id:?}: {e}");
            assert!(!e.contains('\n'), "the message escapes control characters: {e}");
        }
        let max = "y".repeat(MAX_RUN_ID);
        for ok in ["manual__2026-01-01T00:00:00+00:00", "a.b", "...", "a b", "ü", max.as_str()] {
            check_run_id(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }
}

/// What a bulk action on ticked task instances does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TiBulkAction {
    /// Clear each (it runs again), without its downstream.
    Clear,
    /// Mark each success.
    MarkSuccess,
    /// Mark each failed.
    MarkFailed,
}

impl TiBulkAction {
    /// From the form's spelling.
    pub fn parse(text: &str) -> Result<TiBulkAction> {
        Ok(match text {
            "clear" => TiBulkAction::Clear,
            "mark_success" => TiBulkAction::MarkSuccess,
            "mark_failed" => TiBulkAction::MarkFailed,
            other => {
                return Err(ActionError::Invalid(format!(
                    "action `{other}`: one of clear, mark_success, mark_failed"
                )));
            }
        })
    }

    fn done(self) -> &'static str {
        match self {
            TiBulkAction::Clear => "cleared",
            TiBulkAction::MarkSuccess => "marked success",
            TiBulkAction::MarkFailed => "marked failed",
        }
    }
}

/// One ticked task instance: DAG, run, task and map index.
pub type TiKey = (String, String, String, i64);

/// Applies `action` to each task instance named, one by one, each as its own action (own
/// checks, own audit entry), like [`bulk`] for runs.
pub async fn bulk_tis(
    store: &Store,
    dags: &DagCache,
    actor: &Actor,
    tis: &[TiKey],
    action: TiBulkAction,
) -> Result<String> {
    if tis.is_empty() {
        return Err(ActionError::Invalid(
            "no task instance picked: tick the task instances to act on".into(),
        ));
    }
    if tis.len() > MAX_BULK {
        return Err(ActionError::Invalid(format!(
            "{} task instances picked: at most {MAX_BULK} at once",
            tis.len()
        )));
    }
    let mut done = 0;
    let mut refused = Vec::new();
    for (dag_id, run_id, task_id, map_index) in tis {
        let result = async {
            let run = find_run(store, dag_id, run_id).await?;
            match action {
                TiBulkAction::Clear => {
                    clear(store, dags, actor, &run, task_id, Some(*map_index), false)
                        .await
                        .map(drop)
                }
                TiBulkAction::MarkSuccess | TiBulkAction::MarkFailed => {
                    let ti = find_ti(store, &run, task_id, *map_index).await?;
                    let to = if action == TiBulkAction::MarkSuccess {
                        TaskState::Success
                    } else {
                        TaskState::Failed
                    };
                    mark(store, actor, &run, &ti, to).await
                }
            }
        }
        .await;
        match result {
            Ok(()) => done += 1,
            Err(ActionError::Internal(e)) => return Err(ActionError::Internal(e)),
            Err(e) => refused
                .push(format!("{dag_id} {run_id} {}: {e}", ti_name(task_id, Some(*map_index)))),
        }
    }
    Ok(bulk_message(format!("{done} task instance(s) {}", action.done()), &refused))
}

/// "n done; m refused: the first five reasons and k more".
fn bulk_message(mut message: String, refused: &[String]) -> String {
    if !refused.is_empty() {
        let shown: Vec<&str> = refused.iter().take(5).map(String::as_str).collect();
        let more = refused.len().saturating_sub(shown.len());
        message.push_str(&format!("; {} refused: {}", refused.len(), shown.join("; ")));
        if more > 0 {
            message.push_str(&format!(" and {more} more"));
        }
    }
    message
}
