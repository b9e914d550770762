//! One task entry (`tasks.<id>`) -> [`Task`], and `default_args`.
//!
//! This file owns the split of a task's keys between the settings every task has (retries,
//! pool, depends_on...) and the settings of its type, which go to the typed structs of
//! [`kinds`](crate::dag::kinds). It must not check the graph (that needs every task; see
//! `parse.rs`). Every problem is recorded and parsing goes on, so one run shows them all.

use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::ctx::{Ctx, YPath, child, did_you_mean, near_miss, what};
use super::kind::{self, KindDef};
use crate::dag::{Foreach, Task, TaskKind, TriggerRule};

/// Keys every task may have besides its type's settings.
pub(super) const TASK_FIELDS: [&str; 20] = [
    "type",
    "group",
    "depends_on",
    "trigger_rule",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "pool",
    "pool_slots",
    "priority_weight",
    "queue",
    "foreach",
    "doc",
    "outlets",
    "inlets",
    "on_failure",
    "on_retry",
    "on_success",
];

/// Keys `default_args` may have: task settings worth sharing, and the owner.
pub(super) const DEFAULT_ARGS_FIELDS: [&str; 14] = [
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "pool",
    "pool_slots",
    "priority_weight",
    "queue",
    "trigger_rule",
    "owner",
    "on_failure",
    "on_retry",
    "on_success",
];

/// Airflow's default retry delay.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(300);

/// Settings shared by `default_args` and tasks; `None` when not written.
#[derive(Debug, Default, Clone)]
pub(super) struct Common {
    pub(super) trigger_rule: Option<TriggerRule>,
    pub(super) retries: Option<u32>,
    pub(super) retry_delay: Option<Duration>,
    pub(super) retry_exponential_backoff: Option<bool>,
    pub(super) max_retry_delay: Option<Duration>,
    pub(super) execution_timeout: Option<Duration>,
    pub(super) pool: Option<String>,
    pub(super) pool_slots: Option<u32>,
    pub(super) priority_weight: Option<i32>,
    pub(super) queue: Option<String>,
    /// Only in `default_args`: the DAG's owner when the top level does not name one.
    pub(super) owner: Option<String>,
    /// Notifier connections of a failed try (after its last retry).
    pub(super) on_failure: Option<Vec<String>>,
    /// Notifier connections of a try that will be retried.
    pub(super) on_retry: Option<Vec<String>>,
    /// Notifier connections of a successful try.
    pub(super) on_success: Option<Vec<String>>,
}

impl Common {
    /// These settings where written, `base`'s elsewhere: a group's `default_args` over the
    /// enclosing group's over the DAG's.
    pub(super) fn over(&self, base: &Common) -> Common {
        Common {
            trigger_rule: self.trigger_rule.or(base.trigger_rule),
            retries: self.retries.or(base.retries),
            retry_delay: self.retry_delay.or(base.retry_delay),
            retry_exponential_backoff: self
                .retry_exponential_backoff
                .or(base.retry_exponential_backoff),
            max_retry_delay: self.max_retry_delay.or(base.max_retry_delay),
            execution_timeout: self.execution_timeout.or(base.execution_timeout),
            pool: self.pool.clone().or_else(|| base.pool.clone()),
            pool_slots: self.pool_slots.or(base.pool_slots),
            priority_weight: self.priority_weight.or(base.priority_weight),
            queue: self.queue.clone().or_else(|| base.queue.clone()),
            owner: self.owner.clone().or_else(|| base.owner.clone()),
            on_failure: self.on_failure.clone().or_else(|| base.on_failure.clone()),
            on_retry: self.on_retry.clone().or_else(|| base.on_retry.clone()),
            on_success: self.on_success.clone().or_else(|| base.on_success.clone()),
        }
    }

    /// Reads `key` if it is a shared setting; false when it is not one.
    fn read(&mut self, cx: &mut Ctx, key: &str, v: &Value, path: &[String]) -> bool {
        match key {
            "trigger_rule" => self.trigger_rule = cx.trigger_rule(v, path),
            "retries" => self.retries = cx.u32(v, path, 0),
            "retry_delay" => self.retry_delay = cx.duration(v, path),
            "retry_exponential_backoff" => self.retry_exponential_backoff = cx.bool(v, path),
            "max_retry_delay" => self.max_retry_delay = cx.duration(v, path),
            "execution_timeout" => self.execution_timeout = cx.duration(v, path),
            "pool" => self.pool = cx.string(v, path),
            "pool_slots" => self.pool_slots = cx.u32(v, path, 1),
            "priority_weight" => self.priority_weight = cx.i32(v, path),
            "queue" => self.queue = cx.string(v, path),
            "owner" => self.owner = cx.string(v, path),
            "on_failure" => self.on_failure = notifier_list(cx, v, path),
            "on_retry" => self.on_retry = notifier_list(cx, v, path),
            "on_success" => self.on_success = notifier_list(cx, v, path),
            _ => return false,
        }
        true
    }
}

/// A list of notifier connection ids (`on_failure: [ops_slack, oncall_mail]`, or one id),
/// each a valid connection id, each at most once.
pub(super) fn notifier_list(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<Vec<String>> {
    let items = cx.string_list(v, path)?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (id, p) in items {
        if !crate::dag::parse::is_valid_id(&id) {
            let msg = format!(
                "`{id}` is not a connection id: a notifier names a connection (letters, digits, `_`, `-`, `.`) whose URI says how to notify"
            );
            cx.at_value(&p, msg);
            return None;
        }
        if out.contains(&id) {
            cx.at_value(&p, format!("notifier `{id}` is listed twice"));
            return None;
        }
        out.push(id);
    }
    Some(out)
}

/// Parses a `default_args` mapping at `path` (the DAG's, or a group's).
pub(super) fn parse_default_args(cx: &mut Ctx, v: &Value, path: &[String]) -> Common {
    let path = path.to_vec();
    let mut common = Common::default();
    let map = match v {
        Value::Mapping(m) => m,
        Value::Null => return common,
        _ => {
            cx.wrong(&path, "a mapping of task settings", v);
            return common;
        }
    };
    for (k, v) in map {
        let Some(key) = key_str(cx, k, &path) else { continue };
        let p = child(&path, key);
        if !DEFAULT_ARGS_FIELDS.contains(&key) || !common.read(cx, key, v, &p) {
            let hint = match key {
                "start_date" | "end_date" | "catchup" | "schedule" | "tags" | "params" => {
                    format!("; `{key}` belongs at the top level of the file")
                }
                _ => match did_you_mean(key, DEFAULT_ARGS_FIELDS) {
                    near if near.is_empty() => {
                        format!(" (valid fields: {})", DEFAULT_ARGS_FIELDS.join(", "))
                    }
                    near => near,
                },
            };
            cx.at_key(&p, format!("unknown field `{key}` in default_args{hint}"));
        }
    }
    common
}

/// A task as far as it could be parsed: its dependencies are kept even when other settings are
/// wrong, so graph problems are reported in the same run.
pub(super) struct Draft {
    pub(super) id: String,
    /// The innermost group holding the task (its full id).
    pub(super) group: Option<String>,
    /// Upstream ids, each with the path of where it is written.
    pub(super) deps: Vec<(String, YPath)>,
    /// The task, when every setting was valid.
    pub(super) task: Option<Task>,
}

/// Parses `tasks.<key>` as the task `id` (the key, prefixed by its group's id), falling back
/// on `defaults` (its groups' and the DAG's `default_args`) for unset shared settings. The
/// `group` key is read by the caller, which needs it for the id.
pub(super) fn parse_task(cx: &mut Ctx, key: &str, id: &str, v: &Value, defaults: &Common) -> Draft {
    let path = vec!["tasks".to_string(), key.to_string()];
    let errors_before = cx.errors.len();
    let mut draft = Draft { id: id.to_string(), group: None, deps: Vec::new(), task: None };
    let empty = Mapping::new();
    let map = match v {
        Value::Mapping(m) => m,
        Value::Null => {
            cx.at_key(&path, format!("task `{id}` is empty; it needs at least a `type`"));
            &empty
        }
        _ => {
            cx.wrong(&path, "a mapping of settings", v);
            return draft;
        }
    };
    let mut common = Common::default();
    let (mut type_name, mut foreach, mut doc) = (None, None, None);
    let (mut outlets, mut inlets) = (Vec::new(), Vec::new());
    let mut kind_fields = Mapping::new();
    for (k, val) in map {
        let Some(key) = key_str(cx, k, &path) else { continue };
        let p = child(&path, key);
        match key {
            "type" => type_name = cx.string(val, &p).map(|t| (t, p)),
            "depends_on" => draft.deps = cx.string_list(val, &p).unwrap_or_default(),
            "foreach" => foreach = parse_foreach(cx, val, &p),
            "doc" => doc = cx.string(val, &p),
            "outlets" => outlets = super::assets::parse_uri_list(cx, val, &p).unwrap_or_default(),
            "inlets" => inlets = super::assets::parse_uri_list(cx, val, &p).unwrap_or_default(),
            "group" => {}
            "owner" => {
                let msg = format!("unknown field `owner` in task `{id}`; set it at the top level");
                cx.at_key(&p, msg);
            }
            _ if common.read(cx, key, val, &p) => {}
            _ => {
                kind_fields.insert(k.clone(), val.clone());
            }
        }
    }
    let pulls_xcom = names_xcom_pull(&kind_fields);
    let kind = match &type_name {
        Some((name, type_path)) => match kind::find(name) {
            Some(def) => parse_kind(cx, def, kind_fields, &path),
            None => {
                let msg = format!(
                    "unknown task type `{name}` in task `{id}`{} (valid types: {})",
                    did_you_mean(name, TaskKind::TYPE_NAMES),
                    TaskKind::TYPE_NAMES.join(", ")
                );
                cx.at_value(type_path, msg);
                None
            }
        },
        None => {
            // An empty task or a `type` that is not text has already been reported.
            if !map.is_empty() && !map.contains_key("type") {
                let msg = format!(
                    "task `{id}` is missing the required field `type`; valid types: {}",
                    TaskKind::TYPE_NAMES.join(", ")
                );
                cx.at_key(&path, msg);
            }
            None
        }
    };
    if cx.errors.len() > errors_before {
        return draft;
    }
    let Some(kind) = kind else { return draft };
    let c = common;
    let d = defaults;
    draft.task = Some(Task {
        task_id: id.to_string(),
        kind,
        // Set by the caller once names (siblings, groups) are resolved to task ids.
        depends_on: Vec::new(),
        trigger_rule: c.trigger_rule.or(d.trigger_rule).unwrap_or_default(),
        retries: c.retries.or(d.retries).unwrap_or(0),
        retry_delay: c.retry_delay.or(d.retry_delay).unwrap_or(DEFAULT_RETRY_DELAY),
        retry_exponential_backoff: c
            .retry_exponential_backoff
            .or(d.retry_exponential_backoff)
            .unwrap_or(false),
        max_retry_delay: c.max_retry_delay.or(d.max_retry_delay),
        execution_timeout: c.execution_timeout.or(d.execution_timeout),
        pool: c.pool.or_else(|| d.pool.clone()).unwrap_or_else(|| "default_pool".to_string()),
        pool_slots: c.pool_slots.or(d.pool_slots).unwrap_or(1),
        priority_weight: c.priority_weight.or(d.priority_weight).unwrap_or(1),
        queue: c.queue.or_else(|| d.queue.clone()).unwrap_or_else(|| "default".to_string()),
        foreach,
        doc,
        group: None,
        pulls_xcom,
        outlets,
        inlets,
        notify: crate::dag::TaskNotifiers {
            on_failure: c.on_failure.clone().or_else(|| d.on_failure.clone()).unwrap_or_default(),
            on_retry: c.on_retry.clone().or_else(|| d.on_retry.clone()).unwrap_or_default(),
            on_success: c.on_success.clone().or_else(|| d.on_success.clone()).unwrap_or_default(),
        },
    });
    draft
}

/// Whether any text among a task type's settings names `xcom_pull`: only then can its
/// templates pull an XCom when it runs (`foreach` is rendered by the scheduler, not here).
fn names_xcom_pull(fields: &Mapping) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains("xcom_pull"),
            Value::Sequence(items) => items.iter().any(walk),
            Value::Mapping(m) => m.iter().any(|(k, v)| walk(k) || walk(v)),
            Value::Tagged(t) => walk(&t.value),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    fields.iter().any(|(k, v)| walk(k) || walk(v))
}

/// The type's settings: unknown keys are all reported first (with a near miss), then the rest
/// is deserialized into the type's struct, whose first error is reported at its exact path.
fn parse_kind(
    cx: &mut Ctx,
    def: &KindDef,
    mut fields: Mapping,
    path: &[String],
) -> Option<TaskKind> {
    let allowed = (def.fields)();
    let id = &path[1];
    let unknown: Vec<Value> = fields
        .keys()
        .filter(|k| k.as_str().is_some_and(|k| !allowed.contains(&k)))
        .cloned()
        .collect();
    // Fields the unknown keys were probably meant to be: a "missing field" error for one of
    // them would only repeat the typo.
    let mut meant: Vec<&str> = Vec::new();
    for k in &unknown {
        let key = k.as_str().unwrap_or_default();
        meant.extend(near_miss(key, allowed.iter().copied()));
        let mut hint = did_you_mean(key, allowed.iter().chain(TASK_FIELDS.iter()).copied());
        if hint.is_empty() {
            let own = if allowed.is_empty() {
                format!("`{}` tasks have no settings of their own", def.name)
            } else {
                format!("`{}` tasks accept {}", def.name, allowed.join(", "))
            };
            hint = format!(" ({own}; every task accepts {})", TASK_FIELDS.join(", "));
        }
        let msg = format!("unknown field `{key}` in task `{id}`{hint}");
        cx.at_key(&child(path, key), msg);
        fields.remove(k);
    }
    match (def.build)(Value::Mapping(fields)) {
        Ok(kind) => kind::check(cx, kind, path),
        Err(err) => {
            let mut p = path.to_vec();
            p.extend(err.path().iter().map(|seg| seg.to_string()));
            let inner = err.inner().to_string();
            if let Some(field) = inner.strip_prefix("missing field ") {
                if meant.contains(&field.trim_matches('`')) {
                    return None;
                }
                let msg = format!(
                    "task `{id}` (type {}) is missing the required field {field}",
                    def.name
                );
                cx.at_key(&p, msg);
            } else {
                cx.at_value(&p, format!("{}{}", what(&p), kind::serde_message(&inner)));
            }
            None
        }
    }
}

/// `foreach:` a list of items, or a template rendering to one.
fn parse_foreach(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<Foreach> {
    match v {
        Value::Sequence(_) => match cx.json(v, path)? {
            serde_json::Value::Array(items) => Some(Foreach::List(items.into())),
            _ => None,
        },
        Value::String(s) if s.contains("{{") => Some(Foreach::Template(s.clone())),
        _ => {
            let expected = "a list, or a template such as \"{{ ti.xcom_pull('task') }}\"";
            cx.wrong(path, expected, v);
            None
        }
    }
}

/// A mapping key as text; other keys (numbers, lists) are reported.
pub(super) fn key_str<'v>(cx: &mut Ctx, k: &'v Value, parent: &[String]) -> Option<&'v str> {
    match k {
        Value::String(s) => Some(s),
        _ => {
            let text = serde_yaml::to_string(k).unwrap_or_default();
            let text = text.trim();
            let msg = format!("keys in {} must be text; quote `{text}`", what(parent));
            cx.at_key(&child(parent, text), msg);
            None
        }
    }
}
