//! Task groups: the `groups:` section, a task's `group:`, and what a name in `depends_on`
//! stands for once groups exist.
//!
//! A group's full id is its parent's id, a dot and its own name (`extract.raw`); a task in it
//! has the id `<group>.<key>`, as Airflow prefixes group ids. A group's `default_args` lay
//! over the enclosing group's, which lay over the DAG's. Without a `groups:` section a task's
//! `group:` creates the group (and its parents); with one, every group must be declared, so a
//! typo is an error instead of a new box.
//!
//! In `depends_on` (of a task or a group) a name is a task's full id, a task of the same
//! group (or an enclosing one) by its key, or a group: depending on a group means depending on
//! its leaves (members no other member depends on), and a group's own `depends_on` is given to
//! its roots (members depending on no other member), as Airflow's `group >> task` and
//! `task >> group` do. Leaves and roots are taken from the dependencies between tasks, before
//! group names are expanded.
//!
//! This file must not check the graph (cycles are `parse.rs`'s); every problem is recorded and
//! parsing goes on.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde_yaml::Value;

use super::ctx::{Ctx, YPath, child, did_you_mean, near_miss};
use super::task::{Common, Draft, key_str, parse_default_args};
use crate::dag::TaskGroup;

/// Keys a group may have.
const GROUP_FIELDS: [&str; 4] = ["doc", "default_args", "depends_on", "groups"];

/// One group as read.
pub(super) struct GroupDef {
    pub(super) group: TaskGroup,
    /// Its `default_args` over its parents' and the DAG's.
    pub(super) defaults: Common,
    /// Its `depends_on` as written, each with its path.
    deps: Vec<(String, YPath)>,
    /// Where it is declared (`groups.a.groups.b`), or the `group:` of the task that made it.
    path: YPath,
}

/// Every group of the file, by full id, parents first.
#[derive(Default)]
pub(super) struct Groups {
    pub(super) defs: IndexMap<String, GroupDef>,
    /// Whether the file has a `groups:` section (then a `group:` must name a declared group).
    declared: bool,
}

/// Letters, digits, `_` and `-`: a `.` separates a group from what it holds.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

fn name_rule() -> &'static str {
    "use letters, digits, `_` and `-` only (a `.` separates a group from what it holds)"
}

/// Reads the `groups:` section (absent: no groups declared).
pub(super) fn parse_groups(cx: &mut Ctx, v: Option<&Value>, dag_defaults: &Common) -> Groups {
    let mut groups = Groups { defs: IndexMap::new(), declared: v.is_some() };
    if let Some(v) = v {
        read_level(cx, v, &["groups".to_string()], None, dag_defaults, &mut groups);
    }
    groups
}

/// One `groups:` mapping, at `path`, inside `parent`.
fn read_level(
    cx: &mut Ctx,
    v: &Value,
    path: &[String],
    parent: Option<&str>,
    defaults: &Common,
    out: &mut Groups,
) {
    let map = match v {
        Value::Mapping(m) => m,
        Value::Null => return,
        _ => return cx.wrong(path, "a mapping of group names to their settings", v),
    };
    for (k, v) in map {
        let Some(name) = key_str(cx, k, path) else { continue };
        let gpath = child(path, name);
        if !is_valid_name(name) {
            cx.at_key(&gpath, format!("invalid group name `{name}`; {}", name_rule()));
            continue;
        }
        let id = match parent {
            Some(p) => format!("{p}.{name}"),
            None => name.to_string(),
        };
        let mut def = GroupDef {
            group: TaskGroup {
                group_id: id.clone(),
                parent: parent.map(str::to_string),
                doc: None,
            },
            defaults: defaults.clone(),
            deps: Vec::new(),
            path: gpath.clone(),
        };
        let mut nested = None;
        match v {
            Value::Mapping(m) => {
                if let Some(args) = m.get("default_args") {
                    let own = parse_default_args(cx, args, &child(&gpath, "default_args"));
                    def.defaults = own.over(defaults);
                }
                for (k, val) in m {
                    let Some(key) = key_str(cx, k, &gpath) else { continue };
                    let p = child(&gpath, key);
                    match key {
                        "doc" => def.group.doc = cx.string(val, &p),
                        "depends_on" => def.deps = cx.string_list(val, &p).unwrap_or_default(),
                        "default_args" => {}
                        "groups" => nested = Some((val, p)),
                        _ => {
                            let hint = match near_miss(key, GROUP_FIELDS) {
                                Some(near) => format!("; did you mean `{near}`?"),
                                None => format!(" (valid fields: {})", GROUP_FIELDS.join(", ")),
                            };
                            cx.at_key(&p, format!("unknown field `{key}` in group `{id}`{hint}"));
                        }
                    }
                }
            }
            Value::Null => {}
            _ => cx.wrong(&gpath, "a mapping of group settings (doc, default_args, ...)", v),
        }
        let inner = def.defaults.clone();
        out.defs.insert(id.clone(), def);
        if let Some((val, p)) = nested {
            read_level(cx, val, &p, Some(&id), &inner, out);
        }
    }
}

impl Groups {
    /// The group a task's `group:` names, at `path`: declared, or (without a `groups:`
    /// section) made, with its parents. None after reporting a bad name.
    pub(super) fn for_task(
        &mut self,
        cx: &mut Ctx,
        task: &str,
        written: &str,
        path: &[String],
        dag_defaults: &Common,
    ) -> Option<&GroupDef> {
        if self.defs.contains_key(written) {
            return self.defs.get(written);
        }
        if self.declared {
            let msg = format!(
                "task `{task}` is in group `{written}`, which `groups` does not declare{}",
                did_you_mean(written, self.defs.keys().map(String::as_str))
            );
            cx.at_value(path, msg);
            return None;
        }
        if let Some(bad) = written.split('.').find(|n| !is_valid_name(n)) {
            let msg = format!("invalid group name `{bad}` in `{written}`; {}", name_rule());
            cx.at_value(path, msg);
            return None;
        }
        let mut parent: Option<String> = None;
        for name in written.split('.') {
            let id = match &parent {
                Some(p) => format!("{p}.{name}"),
                None => name.to_string(),
            };
            self.defs.entry(id.clone()).or_insert_with(|| GroupDef {
                group: TaskGroup { group_id: id.clone(), parent: parent.clone(), doc: None },
                defaults: dag_defaults.clone(),
                deps: Vec::new(),
                path: path.to_vec(),
            });
            parent = Some(id);
        }
        self.defs.get(written)
    }

    /// The groups as the DAG keeps them.
    pub(super) fn into_dag_groups(self) -> IndexMap<String, TaskGroup> {
        self.defs.into_iter().map(|(id, d)| (id, d.group)).collect()
    }
}

/// What one name in `depends_on` stands for.
enum Target {
    Task(String),
    Group(String),
}

/// Whether `id` (a task's group, or a group) is `group` or inside it.
fn within(id: Option<&str>, group: &str) -> bool {
    id.is_some_and(|g| {
        g == group
            || (g.len() > group.len() && g.starts_with(group) && g[group.len()..].starts_with('.'))
    })
}

/// Rewrites every draft's `deps` to task ids: names resolved (see the module's comment),
/// groups expanded, the group's own `depends_on` given to its roots. A name that is nothing
/// of this DAG, a group depending on itself, or a group without tasks is reported and dropped.
pub(super) fn resolve_deps(cx: &mut Ctx, drafts: &mut [Draft], groups: &Groups) {
    let tasks: HashSet<String> = drafts.iter().map(|d| d.id.clone()).collect();
    let group_of: HashMap<String, Option<String>> =
        drafts.iter().map(|d| (d.id.clone(), d.group.clone())).collect();
    let find = |name: &str, from: Option<&str>| -> Option<Target> {
        if tasks.contains(name) {
            return Some(Target::Task(name.to_string()));
        }
        // The same group's task or group by its key, then the enclosing groups'.
        let mut scope = from.map(str::to_string);
        while let Some(g) = scope {
            let full = format!("{g}.{name}");
            if tasks.contains(&full) {
                return Some(Target::Task(full));
            }
            if groups.defs.contains_key(&full) {
                return Some(Target::Group(full));
            }
            scope = groups.defs.get(&g).and_then(|d| d.group.parent.clone());
        }
        groups.defs.contains_key(name).then(|| Target::Group(name.to_string()))
    };
    let unknown = |cx: &mut Ctx, who: &str, name: &str, path: &[String]| {
        let candidates = tasks.iter().chain(groups.defs.keys()).map(String::as_str);
        let what = if groups.defs.is_empty() { "a task" } else { "a task or a group" };
        let msg = format!(
            "{who} depends on `{name}`, which is not {what} of this DAG{}",
            did_you_mean(name, candidates)
        );
        cx.at_value(path, msg);
    };
    // Pass 1: names of tasks; group names kept aside.
    let mut resolved: Vec<Vec<(String, YPath)>> = Vec::with_capacity(drafts.len());
    let mut on_groups: Vec<(usize, String, YPath)> = Vec::new();
    for (i, d) in drafts.iter().enumerate() {
        let mut out = Vec::with_capacity(d.deps.len());
        for (name, path) in &d.deps {
            match find(name, d.group.as_deref()) {
                Some(Target::Task(t)) => out.push((t, path.clone())),
                Some(Target::Group(g)) => on_groups.push((i, g, path.clone())),
                None => unknown(cx, &format!("task `{}`", d.id), name, path),
            }
        }
        resolved.push(out);
    }
    let members = |g: &str| -> Vec<&str> {
        drafts.iter().filter(|d| within(d.group.as_deref(), g)).map(|d| d.id.as_str()).collect()
    };
    let inside = |t: &str, g: &str| within(group_of.get(t).and_then(|g| g.as_deref()), g);
    // Members no other member depends on, from the task-to-task dependencies.
    let leaves = |g: &str, resolved: &[Vec<(String, YPath)>]| -> Vec<String> {
        let mut needed: HashSet<&str> = HashSet::new();
        for (d, deps) in drafts.iter().zip(resolved) {
            if within(d.group.as_deref(), g) {
                needed.extend(deps.iter().filter(|(t, _)| inside(t, g)).map(|(t, _)| t.as_str()));
            }
        }
        members(g).into_iter().filter(|t| !needed.contains(t)).map(str::to_string).collect()
    };
    let expand =
        |cx: &mut Ctx, g: &str, who: &str, path: &[String], resolved: &[Vec<(String, YPath)>]| {
            let l = leaves(g, resolved);
            if l.is_empty() {
                cx.at_value(path, format!("{who} depends on group `{g}`, which holds no task"));
            }
            l
        };
    let mut added: Vec<(usize, String, YPath)> = Vec::new();
    for (i, g, path) in &on_groups {
        let d = &drafts[*i];
        if within(d.group.as_deref(), g) {
            let msg = format!("task `{}` depends on `{g}`, the group it is in", d.id);
            cx.at_value(path, msg);
            continue;
        }
        for t in expand(cx, g, &format!("task `{}`", d.id), path, &resolved) {
            added.push((*i, t, path.clone()));
        }
    }
    // A group's depends_on goes to its roots: members depending on no other member.
    for (gid, def) in &groups.defs {
        if def.deps.is_empty() {
            continue;
        }
        let mut upstream: Vec<(String, YPath)> = Vec::new();
        for (name, path) in &def.deps {
            let who = format!("group `{gid}`");
            match find(name, def.group.parent.as_deref()) {
                Some(Target::Task(t)) if inside(&t, gid) => {
                    let msg = format!("group `{gid}` depends on `{t}`, a task inside it");
                    cx.at_value(path, msg);
                }
                Some(Target::Task(t)) => upstream.push((t, path.clone())),
                Some(Target::Group(g)) if within(Some(&g), gid) || within(Some(gid), &g) => {
                    let msg =
                        format!("group `{gid}` depends on `{g}`, which holds it or is inside it");
                    cx.at_value(path, msg);
                }
                Some(Target::Group(g)) => {
                    let l = expand(cx, &g, &who, path, &resolved);
                    upstream.extend(l.into_iter().map(|t| (t, path.clone())));
                }
                None => unknown(cx, &who, name, path),
            }
        }
        let roots: Vec<usize> = drafts
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                within(d.group.as_deref(), gid) && !resolved[*i].iter().any(|(t, _)| inside(t, gid))
            })
            .map(|(i, _)| i)
            .collect();
        if roots.is_empty() {
            cx.at_key(&def.path, format!("group `{gid}` has `depends_on` but holds no task"));
        }
        for i in roots {
            added.extend(upstream.iter().map(|(t, p)| (i, t.clone(), p.clone())));
        }
    }
    for (i, t, p) in added {
        resolved[i].push((t, p));
    }
    for (d, deps) in drafts.iter_mut().zip(resolved) {
        d.deps = deps;
    }
}

/// A group whose full id is also a task's makes names ambiguous: reported at the group.
pub(super) fn check_ids(cx: &mut Ctx, drafts: &[Draft], groups: &Groups) {
    let tasks: HashSet<&str> = drafts.iter().map(|d| d.id.as_str()).collect();
    for (id, def) in &groups.defs {
        if tasks.contains(id.as_str()) {
            cx.at_key(&def.path, format!("group `{id}` has the id of a task; rename one of them"));
        }
    }
}
