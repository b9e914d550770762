//! One DAG file's text -> validated [`Dag`], or every problem in it with line and column.
//!
//! This file owns the top level of the file and the checks that need every task (dependencies,
//! cycles). It reads the file in [`parse_dag`], and the Avro schema files its tasks name (in
//! `kind_records`), nothing else: the folder walk is `loader`'s.
//! It must not stop at the first problem: each reader records its error and parsing goes on,
//! so a user fixes a file in one pass.
//!
//! serde_yaml gives the syntax errors and the value tree; `positions` gives locations to the
//! problems found after that.

mod assets;
mod ctx;
mod deadline;
mod groups;
mod kind;
mod kind_records;
mod kind_sql;
mod kind_sql_kafka;
mod kind_streaming;
mod merge;
mod params;
mod task;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_records;
#[cfg(test)]
mod tests_streaming;
#[cfg(test)]
mod tests_yaml;
mod yaml;

use std::collections::HashSet;
use std::path::Path;

use indexmap::IndexMap;
use serde_yaml::Value;

use self::ctx::{Ctx, child, did_you_mean};
use self::task::{Common, Draft, key_str, parse_default_args, parse_task};
use super::positions::Pos;
use super::{Dag, DagGraph, LoadError, ParseResult, Schedule};

/// Top-level keys of a DAG file.
const TOP_FIELDS: [&str; 20] = [
    "dag_id",
    "description",
    "schedule",
    "timezone",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "tags",
    "owner",
    "params",
    "is_paused_upon_creation",
    "doc",
    "default_args",
    "groups",
    "tasks",
    "on_run_failure",
    "on_run_success",
    "deadline",
];

/// Airflow's defaults for the concurrency caps.
const DEFAULT_MAX_ACTIVE_RUNS: u32 = 16;
const DEFAULT_MAX_ACTIVE_TASKS: u32 = 16;
/// Airflow's limit on id length (the database column is this wide).
const MAX_ID_LEN: usize = 250;

/// Reads and parses the DAG file at `abs_path`; errors and `Dag::fileloc` name `display_path`.
pub fn parse_dag(abs_path: &Path, display_path: &Path) -> ParseResult {
    let fail = |line, column, message| {
        Err(vec![LoadError { file: display_path.to_path_buf(), line, column, message }])
    };
    let bytes = match std::fs::read(abs_path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return fail(Pos::START.line, Pos::START.column, format!("cannot read the file: {e}"));
        }
    };
    match yaml::decode(&bytes) {
        Ok(src) => parse_dag_in(src, display_path, abs_path.parent()),
        Err(e) => fail(e.line, e.column, e.message),
    }
}

/// Parses the text of a DAG file; `file` is used for `Dag::fileloc`, errors and the default
/// `dag_id` (its stem). Files a task names (an Avro schema's `{file: ...}`) cannot be read
/// without the file's folder: [`parse_dag_in`] takes one.
pub fn parse_dag_str(src: &str, file: &Path) -> ParseResult {
    parse_dag_in(src, file, None)
}

/// [`parse_dag_str`], reading the files a task names from `dir` (the DAG file's folder).
pub fn parse_dag_in(src: &str, file: &Path, dir: Option<&Path>) -> ParseResult {
    let root = match yaml::load(src) {
        Ok(v) => v,
        Err(e) => {
            let (line, column, message) = (e.line, e.column, e.message);
            return Err(vec![LoadError { file: file.to_path_buf(), line, column, message }]);
        }
    };
    let mut cx = Ctx::new(file, src);
    cx.dir = dir;
    report_duplicates(&mut cx);
    let dag = parse_root(&mut cx, &root, src, file);
    let mut errors = cx.errors;
    match dag {
        Some(dag) if errors.is_empty() => Ok(dag),
        _ => {
            // Stable sort: top to bottom, and in order of discovery on one position.
            errors.sort_by_key(|e| (e.line, e.column));
            Err(errors)
        }
    }
}

fn report_duplicates(cx: &mut Ctx) {
    for d in cx.pos.duplicates().to_vec() {
        let line = d.first.line;
        let msg = match d.parent.as_slice() {
            [tasks] if tasks == "tasks" => {
                format!("duplicate task id `{}`; it is already defined on line {line}", d.key)
            }
            [] => format!("duplicate field `{}`; it is already set on line {line}", d.key),
            parent => format!(
                "duplicate key `{}` in {}; it is already set on line {line}",
                d.key,
                ctx::what(parent)
            ),
        };
        cx.at(d.second.line, d.second.column, msg);
    }
}

/// Top-level fields, as read; `None` when absent or invalid.
#[derive(Default)]
struct Top {
    dag_id: Option<String>,
    description: Option<String>,
    schedule: Option<Schedule>,
    asset_schedule: Option<crate::dag::assets::AssetSchedule>,
    on_run_failure: Option<Vec<String>>,
    on_run_success: Option<Vec<String>>,
    deadlines: Option<Vec<crate::dag::deadline::Deadline>>,
    start_date: Option<chrono::DateTime<chrono::Utc>>,
    end_date: Option<chrono::DateTime<chrono::Utc>>,
    catchup: Option<bool>,
    max_active_runs: Option<u32>,
    max_active_tasks: Option<u32>,
    tags: Option<Vec<String>>,
    owner: Option<String>,
    params: Option<crate::dag::params::ParamSpecs>,
    is_paused_upon_creation: Option<bool>,
    doc: Option<String>,
}

fn parse_root(cx: &mut Ctx, root: &Value, src: &str, file: &Path) -> Option<Dag> {
    let map = match root {
        Value::Mapping(m) => m,
        Value::Null => {
            cx.at(1, 1, "the file is empty; a DAG needs at least `tasks`");
            return None;
        }
        _ => {
            let found = ctx::describe(root);
            let msg =
                format!("a DAG file must be a mapping with `tasks` and settings, not {found}");
            cx.at(1, 1, msg);
            return None;
        }
    };
    let mut top = Top::default();
    let (mut tasks_value, mut default_args) = (None, Common::default());
    // default_args first: tasks fall back on it wherever it is written in the file.
    if let Some(v) = map.get("default_args") {
        default_args = parse_default_args(cx, v, &["default_args".to_string()]);
    }
    // The zone next: dates written without an offset are wall times in it.
    if let Some(v) = map.get("timezone") {
        let p = ["timezone".to_string()];
        if let Some(text) = cx.string(v, &p) {
            match ctx::parse_zone(&text) {
                Ok(zone) => cx.zone = zone,
                Err(why) => cx.at_value(&p, why),
            }
        }
    }
    let mut groups = groups::parse_groups(cx, map.get("groups"), &default_args);
    for (k, v) in map {
        let Some(key) = key_str(cx, k, &[]) else { continue };
        let p = vec![key.to_string()];
        match key {
            "dag_id" => top.dag_id = cx.string(v, &p),
            "description" => top.description = cx.string(v, &p),
            "schedule" => {
                if let Value::Mapping(m) = v {
                    let (cron, assets) = assets::parse_schedule_map(cx, m, &p);
                    top.schedule = Some(cron.unwrap_or(Schedule::None));
                    top.asset_schedule = assets;
                } else {
                    top.schedule = parse_schedule(cx, v, &p);
                }
            }
            "start_date" => top.start_date = cx.datetime(v, &p),
            "end_date" => top.end_date = cx.datetime(v, &p),
            "catchup" => top.catchup = cx.bool(v, &p),
            "max_active_runs" => top.max_active_runs = cx.u32(v, &p, 1),
            "max_active_tasks" => top.max_active_tasks = cx.u32(v, &p, 1),
            "tags" => {
                let tags = cx.string_list(v, &p);
                top.tags = tags.map(|t| t.into_iter().map(|(s, _)| s).collect());
            }
            "owner" => top.owner = cx.string(v, &p),
            "params" => top.params = params::parse_params(cx, v, &p),
            "is_paused_upon_creation" => top.is_paused_upon_creation = cx.bool(v, &p),
            "doc" => top.doc = cx.string(v, &p),
            "on_run_failure" => top.on_run_failure = task::notifier_list(cx, v, &p),
            "on_run_success" => top.on_run_success = task::notifier_list(cx, v, &p),
            "deadline" => top.deadlines = deadline::parse_deadlines(cx, v, &p),
            "sla" | "sla_miss_callback" | "deadlines" => {
                let msg = format!(
                    "`{key}` is not a field; a DAG's deadline alert is `deadline: {{reference: \
                     logical_date | run_start | queued, interval: 2h, notify: [connection]}}`"
                );
                cx.at_key(&p, msg);
            }
            "on_failure" | "on_retry" | "on_success" => {
                let msg = format!(
                    "`{key}` is a task setting: put it in `default_args` (every task) or a task; \
                     a DAG's own are `on_run_failure` and `on_run_success`"
                );
                cx.at_key(&p, msg);
            }
            "default_args" | "groups" | "timezone" => {}
            "tasks" => tasks_value = Some(v),
            // docker-compose's convention: a home for YAML anchors, ignored.
            _ if key.starts_with("x-") => {}
            _ => {
                let hint = match key {
                    "schedule_interval" | "timetable" => "; it is called `schedule`".to_string(),
                    "retries" | "retry_delay" | "pool" | "queue" | "execution_timeout" => {
                        "; task settings shared by all tasks go in `default_args`".to_string()
                    }
                    _ => match did_you_mean(key, TOP_FIELDS) {
                        near if near.is_empty() => {
                            format!(" (valid fields: {})", TOP_FIELDS.join(", "))
                        }
                        near => near,
                    },
                };
                cx.at_key(&p, format!("unknown top-level field `{key}`{hint}"));
            }
        }
    }
    let dag_id = check_dag_id(cx, top.dag_id.take(), file);
    if let (Some(start), Some(end)) = (top.start_date, top.end_date)
        && end < start
    {
        cx.at_value(&["end_date".to_string()], "`end_date` is before `start_date`");
    }
    // Without a date, `@once` would silently never run.
    if top.schedule == Some(Schedule::Once) && top.start_date.is_none() {
        let msg = "`schedule: \"@once\"` needs a `start_date`: the run is for that date";
        cx.at_value(&["schedule".to_string()], msg);
    }
    let specs = top.params.take().unwrap_or_default();
    if top.schedule.as_ref().is_some_and(Schedule::is_scheduled) || top.asset_schedule.is_some() {
        params::check_required(cx, &specs);
    }
    let mut drafts = parse_tasks(cx, tasks_value, &default_args, &mut groups);
    groups::check_ids(cx, &drafts, &groups);
    groups::resolve_deps(cx, &mut drafts, &groups);
    for d in &mut drafts {
        if let Some(task) = &mut d.task {
            for (dep, _) in &d.deps {
                if !task.depends_on.contains(dep) {
                    task.depends_on.push(dep.clone());
                }
            }
        }
    }
    let graph = check_graph(cx, &drafts);
    let tasks: IndexMap<String, _> =
        drafts.into_iter().filter_map(|d| d.task.map(|t| (d.id, t))).collect();
    Some(Dag {
        dag_id: dag_id?,
        fileloc: file.to_path_buf(),
        // `doc` has no field of its own yet; it stands in for a missing description.
        description: top.description.or(top.doc),
        schedule: top.schedule.unwrap_or(Schedule::None).in_zone(cx.zone),
        timezone: cx.zone,
        asset_schedule: top.asset_schedule.take(),
        on_run_failure: top.on_run_failure.take().unwrap_or_default(),
        on_run_success: top.on_run_success.take().unwrap_or_default(),
        deadlines: top.deadlines.take().unwrap_or_default(),
        start_date: top.start_date,
        end_date: top.end_date,
        catchup: top.catchup.unwrap_or(false),
        max_active_runs: top.max_active_runs.unwrap_or(DEFAULT_MAX_ACTIVE_RUNS),
        max_active_tasks: top.max_active_tasks.unwrap_or(DEFAULT_MAX_ACTIVE_TASKS),
        tags: top.tags.unwrap_or_default(),
        owner: top.owner.or(default_args.owner).unwrap_or_else(|| "updraft".to_string()),
        params: crate::dag::params::defaults(&specs),
        param_specs: specs,
        is_paused_upon_creation: top.is_paused_upon_creation.unwrap_or(false),
        tasks,
        groups: groups.into_dag_groups(),
        graph: graph?,
        source: src.to_string(),
        version: crate::dag::version_of(src),
    })
}

fn parse_schedule(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<Schedule> {
    match v {
        Value::Null => Some(Schedule::None),
        Value::String(s) => match Schedule::parse(s) {
            Ok(s) => Some(s),
            Err(why) => {
                cx.at_value(path, why);
                None
            }
        },
        _ => {
            cx.wrong(
                path,
                "a cron expression, a preset such as \"@daily\", a mapping with `assets:`, or null",
                v,
            );
            None
        }
    }
}

/// "; did you mean `x`?" or nothing (for checks outside the parser).
pub(crate) fn ctx_did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    ctx::did_you_mean(word, candidates)
}

/// Letters, digits, `_`, `-` and `.`, as Airflow allows.
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn id_rule() -> String {
    format!("use letters, digits, `_`, `-` and `.` only (at most {MAX_ID_LEN})")
}

fn check_dag_id(cx: &mut Ctx, written: Option<String>, file: &Path) -> Option<String> {
    let path = ["dag_id".to_string()];
    if let Some(id) = written {
        if !is_valid_id(&id) {
            cx.at_value(&path, format!("invalid dag_id `{id}`; {}", id_rule()));
        }
        return Some(id);
    }
    if cx.pos.get(&path).is_some() {
        return None; // written but not a string: already reported
    }
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if !is_valid_id(&stem) {
        let msg = format!(
            "the file name gives the dag_id `{stem}`, which is invalid; {}, or set `dag_id:`",
            id_rule()
        );
        cx.at(Pos::START.line, Pos::START.column, msg);
    }
    Some(stem)
}

fn parse_tasks(
    cx: &mut Ctx,
    v: Option<&Value>,
    defaults: &Common,
    groups: &mut groups::Groups,
) -> Vec<Draft> {
    let path = vec!["tasks".to_string()];
    let map = match v {
        Some(Value::Mapping(m)) if !m.is_empty() => m,
        None => {
            cx.at(1, 1, "missing the required field `tasks`; a DAG needs at least one task");
            return Vec::new();
        }
        Some(Value::Mapping(_) | Value::Null) => {
            cx.at_key(&path, "`tasks` is empty; a DAG needs at least one task");
            return Vec::new();
        }
        Some(other) => {
            let expected = "a mapping of task ids to tasks (a list is not accepted)";
            cx.wrong(&path, expected, other);
            return Vec::new();
        }
    };
    let mut drafts: Vec<Draft> = Vec::with_capacity(map.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(map.len());
    for (k, v) in map {
        let Some(key) = key_str(cx, k, &path) else { continue };
        let at = child(&path, key);
        // The group comes first: the task's id and defaults depend on it.
        let gpath = child(&at, "group");
        let group = match v.as_mapping().and_then(|m| m.get("group")) {
            Some(g) => cx.string(g, &gpath).and_then(|name| {
                let def = groups.for_task(cx, key, &name, &gpath, defaults)?;
                Some((def.group.group_id.clone(), def.defaults.clone()))
            }),
            None => None,
        };
        let (id, task_defaults) = match &group {
            Some((g, d)) => {
                if key.contains('.') {
                    let msg = format!(
                        "invalid task id `{key}` in group `{g}`; a task in a group is named \
                         without dots (its id becomes `{g}.<name>`)"
                    );
                    cx.at_key(&at, msg);
                }
                (format!("{g}.{key}"), d)
            }
            None => (key.to_string(), defaults),
        };
        if !is_valid_id(&id) {
            cx.at_key(&at, format!("invalid task id `{id}`; {}", id_rule()));
        }
        if !seen.insert(id.clone()) {
            let msg = format!(
                "two tasks have the id `{id}`; a task in a group has the id `<group>.<name>`"
            );
            cx.at_key(&at, msg);
        }
        let mut draft = parse_task(cx, key, &id, v, task_defaults);
        draft.group = group.map(|(g, _)| g);
        if let Some(task) = &mut draft.task {
            task.group = draft.group.clone();
        }
        drafts.push(draft);
    }
    drafts
}

/// Self and unknown dependencies, then cycles. Tasks with other errors still take part, so a
/// user sees graph problems together with the rest.
fn check_graph(cx: &mut Ctx, drafts: &[Draft]) -> Option<DagGraph> {
    let ids: HashSet<&str> = drafts.iter().map(|d| d.id.as_str()).collect();
    for d in drafts {
        for (dep, path) in &d.deps {
            if *dep == d.id {
                cx.at_value(path, format!("task `{dep}` depends on itself"));
            } else if !ids.contains(dep.as_str()) {
                let msg = format!(
                    "task `{}` depends on `{dep}`, which is not a task of this DAG{}",
                    d.id,
                    did_you_mean(dep, ids.iter().copied())
                );
                cx.at_value(path, msg);
            }
        }
    }
    let edges = drafts.iter().map(|d| {
        let deps = d.deps.iter().map(|(dep, _)| dep.as_str()).filter(|dep| *dep != d.id);
        (d.id.as_str(), deps)
    });
    match DagGraph::build(edges) {
        Ok(graph) => Some(graph),
        Err(err) => {
            for cycle in err.cycles {
                // Point at the dependency closing the cycle: the first task's depends_on entry
                // naming the last task.
                let (first, last) = (&cycle[0], &cycle[cycle.len() - 2]);
                let at = drafts
                    .iter()
                    .find(|d| d.id == *first)
                    .and_then(|d| d.deps.iter().find(|(dep, _)| dep == last))
                    .map(|(_, p)| p.clone())
                    .unwrap_or_else(|| vec!["tasks".to_string(), first.clone()]);
                let msg =
                    format!("cycle: {}; remove one of these dependencies", cycle.join(" -> "));
                cx.at_value(&at, msg);
            }
            None
        }
    }
}
