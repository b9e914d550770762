//! DAG files: YAML text -> validated [`Dag`].
//!
//! This module owns the user contract: the DAG file format. It is pure and synchronous: no tokio,
//! no database, no network. Only [`loader`] touches the filesystem. Every problem found in a file
//! is reported as a [`LoadError`] with file, line and column; one bad file never hides the others.
//!
//! Task settings are parsed into one typed struct per task type ([`kinds`]), so later layers never
//! look at raw YAML. Templated strings stay strings here; they are rendered at run time.

pub mod assets;
pub mod cache;
pub mod check;
pub mod deadline;
pub mod graph;
pub mod kinds;
pub mod lint;
pub mod loader;
pub mod params;
pub mod parse;
pub mod positions;
pub mod schedule;
pub mod sql_text;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use cache::DagCache;
pub use graph::DagGraph;
pub use kinds::TaskKind;
pub use parse::{parse_dag, parse_dag_in, parse_dag_str};
pub use schedule::Schedule;

/// A validated DAG: what one YAML file says, with defaults applied.
#[derive(Debug, Clone)]
pub struct Dag {
    /// Unique id; defaults to the file stem.
    pub dag_id: String,
    /// The file this DAG was read from (relative to the DAGs folder when loaded from it).
    pub fileloc: PathBuf,
    /// Free text shown in the UI.
    pub description: Option<String>,
    /// When runs are created; `Schedule::None` means manual triggers only.
    pub schedule: Schedule,
    /// The zone whose wall clock the schedule and the file's dates are read on (`timezone:`,
    /// UTC unless set).
    pub timezone: chrono_tz::Tz,
    /// The connections told when a run fails (`on_run_failure`).
    pub on_run_failure: Vec<String>,
    /// The connections told when a run succeeds (`on_run_success`).
    pub on_run_success: Vec<String>,
    /// The deadline alerts (`deadline:`), in file order.
    pub deadlines: Vec<deadline::Deadline>,
    /// Runs when assets get new events (`schedule: {assets: [...]}`), besides any cron in
    /// `schedule`.
    pub asset_schedule: Option<assets::AssetSchedule>,
    /// First logical date the scheduler may create a run for.
    pub start_date: Option<DateTime<Utc>>,
    /// No scheduled run has a logical date after this.
    pub end_date: Option<DateTime<Utc>>,
    /// Create runs for every missed interval since `start_date` (true) or only the latest.
    pub catchup: bool,
    /// At most this many runs of the DAG are running at once.
    pub max_active_runs: u32,
    /// At most this many task instances of the DAG (over all its runs) are queued or running.
    pub max_active_tasks: u32,
    /// Labels for filtering in the UI and CLI.
    pub tags: Vec<String>,
    /// Team or person responsible; shown in the UI.
    pub owner: String,
    /// Default params; a trigger's conf overrides them key by key.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The declaration of every param (type, constraints, default), which a run's conf is
    /// checked against by [`params::check_conf`].
    pub param_specs: params::ParamSpecs,
    /// Whether a newly seen DAG starts paused.
    pub is_paused_upon_creation: bool,
    /// Tasks in file order.
    pub tasks: IndexMap<String, Task>,
    /// Task groups by full id (`extract`, `extract.raw`), parents before their children.
    pub groups: IndexMap<String, TaskGroup>,
    /// The dependency graph of `tasks`, checked acyclic.
    pub graph: DagGraph,
    /// The YAML text the DAG was parsed from; other processes re-parse it from the store.
    pub source: String,
    /// The version of `source`: its SHA-256 in hex ([`version_of`]). A run is pinned to the
    /// version it started with; the store keeps every version a DAG had under this key.
    pub version: String,
}

/// The version key of a DAG source: the SHA-256 of its text, in hex. Stable across builds and
/// machines, so every process agrees on which stored version a run names.
pub fn version_of(source: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(source.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// One task of a DAG, with DAG defaults applied.
#[derive(Debug, Clone)]
pub struct Task {
    /// Unique id within the DAG.
    pub task_id: String,
    /// What the task does: the `type:` field and its typed settings.
    pub kind: TaskKind,
    /// Upstream task ids.
    pub depends_on: Vec<String>,
    /// When the task may run given its upstream states.
    pub trigger_rule: TriggerRule,
    /// Tries after the first one.
    pub retries: u32,
    /// Wait before a retry (the base of the back-off when exponential).
    pub retry_delay: Duration,
    /// Double the delay on each retry.
    pub retry_exponential_backoff: bool,
    /// Upper bound of an exponential back-off delay.
    pub max_retry_delay: Option<Duration>,
    /// A try running longer than this is killed and failed.
    pub execution_timeout: Option<Duration>,
    /// Pool whose slots the task occupies while queued or running.
    pub pool: String,
    /// Slots of `pool` the task takes.
    pub pool_slots: u32,
    /// Higher runs first when slots are scarce.
    pub priority_weight: i32,
    /// Queue a distributed worker must listen on to take the task.
    pub queue: String,
    /// Dynamic fan-out: one mapped instance per item.
    pub foreach: Option<Foreach>,
    /// Free text shown in the UI.
    pub doc: Option<String>,
    /// The innermost task group holding the task (its full id, the prefix of `task_id`).
    pub group: Option<String>,
    /// Whether a text among the type's settings names `xcom_pull`. A try of a task whose
    /// templates cannot pull an XCom is spared reading its run's XComs: for a wide mapped
    /// task that would be every sibling's, again for each of them.
    pub pulls_xcom: bool,
    /// Assets a successful try updates: each gets an event (`outlets:`).
    pub outlets: Vec<String>,
    /// Assets the task reads (`inlets:`), for the asset graph.
    pub inlets: Vec<String>,
    /// The connections told when a try fails, is retried or succeeds.
    pub notify: TaskNotifiers,
}

/// A task's notifiers (`on_failure`, `on_retry`, `on_success`, from the task or its
/// `default_args`): connection ids whose URIs say how to tell (webhook, Slack, email).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskNotifiers {
    /// A try failed and will not be retried.
    pub on_failure: Vec<String>,
    /// A try failed and will be retried.
    pub on_retry: Vec<String>,
    /// A try succeeded.
    pub on_success: Vec<String>,
}

/// A task group: a named box of tasks (and groups) in the UI, a shared `default_args`
/// overlay in the file, and the prefix of its tasks' ids (`extract.fetch`), as in Airflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskGroup {
    /// Full id: the parent's id, a dot, and the group's own name.
    pub group_id: String,
    /// The enclosing group's full id.
    pub parent: Option<String>,
    /// Free text shown in the UI.
    pub doc: Option<String>,
}

impl Dag {
    /// The schedule as people read it: the cron expression, the assets (`a & b` when every
    /// one is needed, `a | b` when one is enough), or both joined by "or"; None when only
    /// triggers create runs.
    pub fn schedule_text(&self) -> Option<String> {
        let cron = self.schedule.is_scheduled().then(|| self.schedule.to_string());
        let assets = self.asset_schedule.as_ref().map(|s| {
            let sep = match s.mode {
                assets::AssetMode::All => " & ",
                assets::AssetMode::Any => " | ",
            };
            format!("assets: {}", s.uris().collect::<Vec<_>>().join(sep))
        });
        match (cron, assets) {
            (Some(c), Some(a)) => Some(format!("{c} or {a}")),
            (c, a) => c.or(a),
        }
    }

    /// Every asset URI the DAG names: its schedule's, then its tasks' outlets and inlets,
    /// each once, with how it names it.
    pub fn asset_uses(&self) -> Vec<(&str, assets::Use<'_>)> {
        let mut out: Vec<(&str, assets::Use<'_>)> = Vec::new();
        if let Some(s) = &self.asset_schedule {
            out.extend(s.uris().map(|u| (u, assets::Use::Schedule)));
        }
        for t in self.tasks.values() {
            let task = t.task_id.as_str();
            out.extend(t.outlets.iter().map(|u| (u.as_str(), assets::Use::Outlet(task))));
            out.extend(t.inlets.iter().map(|u| (u.as_str(), assets::Use::Inlet(task))));
        }
        out
    }

    /// The groups holding `task_id`, outermost first (empty for a task outside any group).
    pub fn task_groups(&self, task_id: &str) -> Vec<&str> {
        let inner = self.tasks.get(task_id).and_then(|t| t.group.as_deref());
        self.group_chain(inner)
    }

    /// The tasks inside `group` or a group nested in it, in file order.
    pub fn group_members(&self, group: &str) -> Vec<&str> {
        let nested = format!("{group}.");
        self.tasks
            .values()
            .filter(|t| t.group.as_deref().is_some_and(|g| g == group || g.starts_with(&nested)))
            .map(|t| t.task_id.as_str())
            .collect()
    }

    /// `group` and its ancestors, outermost first.
    pub fn group_chain<'a>(&'a self, group: Option<&'a str>) -> Vec<&'a str> {
        let mut chain = Vec::new();
        let mut at = group;
        // Bounded by the number of groups: parents are declared before children.
        while let Some(g) = at {
            if chain.len() > self.groups.len() {
                break;
            }
            chain.push(g);
            at = self.groups.get(g).and_then(|g| g.parent.as_deref());
        }
        chain.reverse();
        chain
    }
}

/// Where the items of a mapped task come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Foreach {
    /// Items written in the file.
    List(#[serde(with = "shared_list")] std::sync::Arc<Vec<serde_json::Value>>),
    /// A template rendered when the upstream tasks are done; must render to a JSON/YAML list.
    Template(String),
}

/// `Foreach::List`'s items, shared by every clone of the task (a try clones its task; a list
/// of 10,000 items copied per try made a wide fan-out quadratic), serialized as the list.
mod shared_list {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(items: &Arc<Vec<Value>>, s: S) -> Result<S::Ok, S::Error> {
        items.as_slice().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Vec<Value>>, D::Error> {
        Vec::<Value>::deserialize(d).map(Arc::new)
    }
}

/// Airflow's trigger rules: when a task may run given its upstream tasks' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every upstream succeeded (the default).
    #[default]
    AllSuccess,
    /// Every upstream failed or was upstream_failed.
    AllFailed,
    /// Every upstream is finished, whatever the outcome.
    AllDone,
    /// At least one upstream succeeded; does not wait for the others.
    OneSuccess,
    /// At least one upstream failed; does not wait for the others.
    OneFailed,
    /// No upstream failed or upstream_failed (skipped is fine); all finished.
    NoneFailed,
    /// Like `none_failed`, and at least one upstream succeeded.
    NoneFailedMinOneSuccess,
    /// No upstream was skipped; all finished.
    NoneSkipped,
    /// Run as soon as the run starts, whatever the upstream states.
    Always,
}

impl TriggerRule {
    /// Every rule with its YAML spelling, for error messages and docs.
    pub const ALL: [(&'static str, TriggerRule); 9] = [
        ("all_success", TriggerRule::AllSuccess),
        ("all_failed", TriggerRule::AllFailed),
        ("all_done", TriggerRule::AllDone),
        ("one_success", TriggerRule::OneSuccess),
        ("one_failed", TriggerRule::OneFailed),
        ("none_failed", TriggerRule::NoneFailed),
        ("none_failed_min_one_success", TriggerRule::NoneFailedMinOneSuccess),
        ("none_skipped", TriggerRule::NoneSkipped),
        ("always", TriggerRule::Always),
    ];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, r)| *r == self).map(|(s, _)| *s).unwrap_or("all_success")
    }
}

/// One problem in one DAG file, located precisely enough to jump to it in an editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadError {
    /// The file, as given to the parser (relative to the DAGs folder when loaded from it).
    pub file: PathBuf,
    /// 1-based line, never 0: a problem of the whole file (unreadable, not UTF-8 up to its
    /// first byte, an invalid id taken from the file name) sits at 1:1, where an editor opens.
    pub line: usize,
    /// 1-based column, never 0.
    pub column: usize,
    /// A sentence a user understands, naming what is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
    }
}

impl std::error::Error for LoadError {}

/// The result of reading one DAG file: either a DAG or every error found in it.
pub type ParseResult = Result<Dag, Vec<LoadError>>;

/// What a folder of DAG files loads to.
#[derive(Debug, Default)]
pub struct DagBag {
    /// Valid DAGs by id.
    pub dags: BTreeMap<String, Dag>,
    /// Errors by file (relative path); a file with errors contributes no DAG.
    pub errors: BTreeMap<PathBuf, Vec<LoadError>>,
}
